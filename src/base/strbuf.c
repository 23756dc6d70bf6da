#include "base/strbuf.h"

#include <stdlib.h>

void strbuf_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->limit && (n > b->limit || b->len > b->limit - n)) { b->oom = true; return; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) { b->oom = true; return; }
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void strbuf_repeat(strbuf *b, char c, size_t n) {
    char run[64];
    memset(run, c, sizeof run);
    while (n > 0 && !b->oom) {
        size_t k = n < sizeof run ? n : sizeof run;
        strbuf_put(b, run, k);
        n -= k;
    }
}

void strbuf_consume(strbuf *b, size_t n) {
    if (!b->data) return; /* nothing was ever appended (and memmove may not be given NULL) */
    if (n > b->len) n = b->len;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}
