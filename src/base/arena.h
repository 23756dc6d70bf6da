/* Arena: many small allocations freed together. */
#ifndef QWENC_BASE_ARENA_H
#define QWENC_BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct arena_chunk arena_chunk;
typedef struct arena {
    arena_chunk *head; /* newest chunk first */
    size_t total;      /* bytes of its chunks */
    size_t limit;      /* 0: none; else allocations fail rather than take total past it */
    bool failed;       /* an allocation has failed (out of memory or over the limit); stays set */
} arena;

/* Returns `size` bytes aligned to 8, or NULL (and sets a->failed) when out of memory or over the
 * limit; once one allocation has failed, every later one does too. Freed by arena_free(). */
void *arena_alloc(arena *a, size_t size);
/* Copies `len` bytes into the arena and NUL-terminates them. */
char *arena_strndup(arena *a, const char *s, size_t len);
/* Frees every chunk; the arena is empty again (its limit kept, failed cleared). */
void arena_free(arena *a);

#endif
