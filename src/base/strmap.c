#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t strmap_hash(const void *key, size_t len) {
    /* FNV-1a over 8-byte words, then a final mix: fast for short tokens, fine for long ones. */
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull ^ (len * 0x9E3779B97F4A7C15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    while (len--) h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static bool strmap_grow(strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    strmap_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < m->cap; i++) {
        strmap_entry *e = &m->slots[i];
        if (!e->key) continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return true;
}

bool strmap_put(strmap *m, const char *key, size_t len, uint32_t value) {
    if ((m->count + 1) * 4 > m->cap * 3 && !strmap_grow(m)) return false;
    uint64_t h = strmap_hash(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        strmap_entry *e = &m->slots[j];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            e->value = value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (strmap_entry){ key, (uint32_t)len, value, h };
    m->count++;
    return true;
}

bool strmap_get(const strmap *m, const char *key, size_t len, uint32_t *value) {
    if (!m->cap) return false;
    uint64_t h = strmap_hash(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        const strmap_entry *e = &m->slots[j];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            *value = e->value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

void strmap_free(strmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
