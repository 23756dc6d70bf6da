/* strmap: an open-addressing hash map from byte strings to uint32 values.
 * Keys are borrowed: they must outlive the map. */
#ifndef QWENC_BASE_STRMAP_H
#define QWENC_BASE_STRMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct strmap_entry {
    const char *key;
    uint32_t len;
    uint32_t value;
    uint64_t hash;
} strmap_entry;

typedef struct strmap {
    strmap_entry *slots; /* capacity entries; key == NULL marks an empty slot */
    size_t cap, count;
} strmap;

uint64_t strmap_hash(const void *key, size_t len);
/* Inserts or replaces. Returns false when out of memory. */
bool strmap_put(strmap *m, const char *key, size_t len, uint32_t value);
/* Looks a key up; returns true and sets *value when found. */
bool strmap_get(const strmap *m, const char *key, size_t len, uint32_t *value);
void strmap_free(strmap *m);

#endif
