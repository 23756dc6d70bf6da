/* qwenc tokenizer benchmark: load time, single-thread encode MB/s (best of reps), peak RSS,
 * and the time to encode 1 MB inputs that have no pre-tokenizer split points.
 * usage: bench_tokenizer MODEL_DIR CORPUS [REPS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "qwenc.h"
#include "base/clock.h"

static double encode_s(const qwen_tokenizer *tok, const char *text, size_t len, size_t *n_ids) {
    int32_t *ids;
    double t0 = clock_seconds();
    qwen_error *err = NULL;
    if (qwen_tokenize(tok, text, len, NULL, &ids, n_ids, &err)) {
        fprintf(stderr, "encode failed: %s\n", qwen_error_message(err));
        exit(1);
    }
    double dt = clock_seconds() - t0;
    free(ids);
    return dt;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL_DIR CORPUS [REPS]\n", argv[0]); return 2; }
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    qwen_error *err = NULL;
    double t0 = clock_seconds();
    qwen_tokenizer *tok = qwen_tokenizer_open(argv[1], &err);
    double load = clock_seconds() - t0;
    if (!tok) { fprintf(stderr, "%s\n", qwen_error_message(err)); return 1; }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc(len);
    if (fread(text, 1, len, f) != len) return 1;
    fclose(f);
    double best = 1e9, best_docs = 1e9;
    size_t n = 0, n_docs = 0;
    for (int r = 0; r < reps; r++) {
        double dt = encode_s(tok, text, len, &n);
        if (dt < best) best = dt;
        /* documents: split after the first newline once a piece reaches 4096 bytes */
        double t_docs = 0;
        n_docs = 0;
        for (size_t start = 0; start < len;) {
            size_t end = start + 4096 < len ? start + 4096 : len;
            while (end < len && text[end - 1] != '\n') end++;
            size_t k;
            t_docs += encode_s(tok, text + start, end - start, &k);
            n_docs += k;
            start = end;
        }
        if (t_docs < best_docs) best_docs = t_docs;
    }
    /* no split points: one CJK character repeated, and letters without spaces */
    size_t big = 1 << 20;
    char *run = malloc(big + 4);
    for (size_t i = 0; i + 3 <= big; i += 3) memcpy(run + i, "\xE5\x95\x8A", 3); /* 啊 */
    size_t n2, n3;
    double cjk = encode_s(tok, run, big / 3 * 3, &n2);
    for (size_t i = 0; i < big; i++) run[i] = (char)('a' + (i * 131 % 26));
    double letters = encode_s(tok, run, big, &n3);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"load_s\": %.4f, \"mb_per_s\": %.2f, \"docs_mb_per_s\": %.2f, \"doc_tokens\": %zu, \"tokens\": %zu, \"peak_rss_mb\": %.1f, \"cjk_1mb_s\": %.4f, \"letters_1mb_s\": %.4f}\n",
           load, len / 1e6 / best, len / 1e6 / best_docs, n_docs, n, ru.ru_maxrss / 1024.0, cjk, letters);
    free(run);
    free(text);
    qwen_tokenizer_close(tok);
    return 0;
}
