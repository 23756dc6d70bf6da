/* libFuzzer target: any bytes as tokenizer.json (loader, including the vocab/merges scanner).
 * Seed with a small valid file: fuzz/make_small_tokenizer.py. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "qwenc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/qwenc-fuzz-tok-%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    qwen_error *err = NULL;
    qwen_tokenizer *tok = qwen_tokenizer_open(path, &err);
    if (tok) {
        int32_t *ids;
        size_t n;
        if (qwen_tokenize(tok, "Hello, world! 你好", 19, NULL, &ids, &n, NULL) == QWEN_OK) free(ids);
        qwen_tokenizer_close(tok);
    }
    qwen_error_free(err);
    return 0;
}
