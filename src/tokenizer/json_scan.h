/* Reading tokenizer.json's vocab and merges straight from the text (see json_scan.c). */
#ifndef QWENC_TOKENIZER_JSON_SCAN_H
#define QWENC_TOKENIZER_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tj_span { size_t begin, end; } tj_span; /* a value's bytes [begin, end) */

/* Locates model.vocab (an object) and model.merges (an array). False when not found as expected. */
bool tj_find_spans(const char *s, size_t n, tj_span *vocab, tj_span *merges);

/* Calls fn for each "token": id pair (token decoded from JSON escapes); fn returns non-zero to
 * stop with failure. Returns the number of pairs, or -1 on malformed text or a failed callback. */
typedef int (*tj_vocab_fn)(void *user, const char *key, size_t len, long long id);
long tj_each_vocab(const char *s, tj_span span, tj_vocab_fn fn, void *user);

/* Calls fn for each merge, written either "a b" or ["a", "b"], with its rank. Same returns. */
typedef int (*tj_merge_fn)(void *user, const char *a, size_t alen, const char *b, size_t blen, long rank);
long tj_each_merge(const char *s, tj_span span, tj_merge_fn fn, void *user);

/* Number of elements of an array or object span, or -1. */
long tj_count_elements(const char *s, tj_span span);

#endif
