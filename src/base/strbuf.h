/* strbuf: a growing, malloc'ed, always NUL-terminated byte string. Zero-initialise to start;
 * free(b.data) when done. Out of memory (or past `limit`) sets `oom` and drops further text instead of
 * crashing. */
#ifndef QWENC_BASE_STRBUF_H
#define QWENC_BASE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct strbuf {
    char *data;
    size_t len, cap;
    size_t limit; /* 0: none; else text that would take len past it is dropped, setting oom */
    bool oom;
} strbuf;

void strbuf_put(strbuf *b, const char *s, size_t n);
static inline void strbuf_puts(strbuf *b, const char *s) { strbuf_put(b, s, strlen(s)); }
/* Appends n copies of the byte c (nothing once oom is set). */
void strbuf_repeat(strbuf *b, char c, size_t n);
/* Removes the first n bytes. */
void strbuf_consume(strbuf *b, size_t n);

#endif
