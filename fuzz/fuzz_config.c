/* libFuzzer target: any bytes as a model's config.json (and, after a NUL byte, its
 * generation_config.json), beside the weights of a small golden model; where the model opens, a
 * session runs a short prompt and a decode step through it. The first byte picks the weights:
 * qwen3-yarn-tiny, qwen3-moe-tiny, qwen2-moe-tiny or qwen2-untied-f32 (sharded, with an index),
 * from the golden models folder QWENC_FUZZ_MODELS (default ../shared/golden/models).
 * Seed with the four models' own config.json files, each behind its selector byte. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qwenc.h"

static const char *const MODELS[] = { "qwen3-yarn-tiny", "qwen3-moe-tiny", "qwen2-moe-tiny", "qwen2-untied-f32" };
enum { N_MODELS = sizeof MODELS / sizeof *MODELS };
static const char *const WEIGHT_FILES[] = { "model.safetensors", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                            "model-00002-of-00002.safetensors" };

/* Writes `len` bytes to dir/name; false on failure. */
static bool write_file(const char *dir, const char *name, const uint8_t *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* One directory per golden model under /tmp, its weight files linked in (made once a process). */
static const char *model_dir(int which) {
    static char dirs[N_MODELS][128];
    if (!dirs[which][0]) {
        const char *root = getenv("QWENC_FUZZ_MODELS");
        if (!root) root = "../shared/golden/models";
        snprintf(dirs[which], sizeof dirs[which], "/tmp/qwenc-fuzz-config-%d-%s", (int)getpid(), MODELS[which]);
        if (mkdir(dirs[which], 0700) != 0 && errno != EEXIST) abort();
        for (size_t i = 0; i < sizeof WEIGHT_FILES / sizeof *WEIGHT_FILES; i++) {
            char src[512], dst[512], real[4096];
            snprintf(src, sizeof src, "%s/%s/%s", root, MODELS[which], WEIGHT_FILES[i]);
            snprintf(dst, sizeof dst, "%s/%s", dirs[which], WEIGHT_FILES[i]);
            unlink(dst);
            if (realpath(src, real) && symlink(real, dst) != 0) abort();
        }
    }
    return dirs[which];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *dir = model_dir(data[0] % N_MODELS);
    const uint8_t *config = data + 1, *nul = memchr(config, 0, size - 1);
    size_t config_len = nul ? (size_t)(nul - config) : size - 1;
    const uint8_t *gen = nul ? nul + 1 : (const uint8_t *)"{}";
    size_t gen_len = nul ? size - 1 - config_len - 1 : 2;
    if (!write_file(dir, "config.json", config, config_len) || !write_file(dir, "generation_config.json", gen, gen_len)) return 0;

    qwen_model_opts opts = { .threads = 2, .mmap = true };
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, &opts, &err);
    qwen_error_free(err);
    if (!m) return 0;
    err = NULL;
    qwen_session *s = qwen_session_new(m, 8, &err);
    qwen_error_free(err);
    if (s) {
        int32_t vocab = qwen_model_vocab_size(m), ids[3] = { 1 % vocab, 7 % vocab, 42 % vocab };
        float *logits = malloc((size_t)vocab * sizeof *logits);
        err = NULL;
        if (logits && qwen_session_forward(s, ids, 3, logits, false, &err) == QWEN_OK) {
            qwen_error_free(err);
            err = NULL;
            qwen_session_forward(s, ids, 1, logits, false, &err);
        }
        qwen_error_free(err);
        free(logits);
        qwen_session_free(s);
    }
    qwen_model_close(m);
    return 0;
}
