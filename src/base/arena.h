/* Arena: many small allocations freed together. */
#ifndef QWENC_BASE_ARENA_H
#define QWENC_BASE_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;
typedef struct arena {
    arena_chunk *head; /* newest chunk first */
} arena;

/* Returns `size` bytes aligned to 8, or NULL when out of memory. Freed by arena_free(). */
void *arena_alloc(arena *a, size_t size);
/* Copies `len` bytes into the arena and NUL-terminates them. */
char *arena_strndup(arena *a, const char *s, size_t len);
void arena_free(arena *a);

#endif
