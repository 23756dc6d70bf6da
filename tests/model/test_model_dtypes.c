/* The same checkpoint stored as f32, f16 and bf16 (one file instead of shards) gives the same
 * logits up to the rounding of the weights: exercises the f16/bf16 paths end to end. */
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "qwenc.h"
#include "base/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "tensor/tensor.h"

typedef struct convert { const st_checkpoint *ck; qdtype to; } convert;

static void fill(void *user, size_t index, size_t offset, unsigned char *out, size_t len) {
    const convert *c = user;
    const st_tensor *t = &c->ck->tensors[index];
    const float *src = (const float *)t->data + offset / 2;
    for (size_t i = 0; i < len / 2; i++) {
        uint16_t h = c->to == QDT_F16 ? f32_to_f16(src[i]) : to_bf16(src[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

/* Logits of every position of ids, with optional load-time quantization, from weights copied
 * into memory (the default) or computed from the mapped files (`mapped`); `where` (may be NULL)
 * must appear in the model's description. */
static float *logits_mapped(const char *dir, const char *quant, bool mapped, const char *where, const int32_t *ids, size_t n, int *vocab) {
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2, .quant = quant, .mmap = mapped }, &err);
    REQUIRE(m, "open %s: %s", dir, qwen_error_message(err));
    CHECK(!where || strstr(qwen_model_describe(m), where), "%s: '%s' not in '%s'", dir, where, qwen_model_describe(m));
    CHECK(mapped || !where || !strstr(qwen_model_describe(m), "(mapped)"), "%s: copied weights described as mapped: '%s'", dir, qwen_model_describe(m));
    *vocab = qwen_model_vocab_size(m);
    float *out = malloc(n * (size_t)*vocab * sizeof(float));
    qwen_session *s = qwen_session_new(m, (int)n, NULL);
    REQUIRE(s && qwen_session_forward(s, ids, n, out, true, NULL) == QWEN_OK, "forward");
    qwen_session_free(s);
    qwen_model_close(m);
    return out;
}

static float *logits_of(const char *dir, const char *quant, const int32_t *ids, size_t n, int *vocab) {
    return logits_mapped(dir, quant, false, NULL, ids, n, vocab);
}

/* A model directory's files: what copy_tiny_model copies, qwenc quantize writes and remove_model removes. */
static const char *const MODEL_FILES[] = { "model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json" };
enum { N_MODEL_FILES = sizeof MODEL_FILES / sizeof *MODEL_FILES };

/* Copies the golden Qwen3-tiny's files into `dir` (a writable model). */
static void copy_tiny_model(const char *dir) {
    char *golden = golden_path("models/qwen3-tiny");
    for (size_t f = 0; f < N_MODEL_FILES; f++) {
        char *from = path_join(golden, MODEL_FILES[f]), *to = path_join(dir, MODEL_FILES[f]);
        size_t len;
        char *data = file_read_all(from, &len, NULL);
        FILE *o = data ? fopen(to, "wb") : NULL;
        REQUIRE(o && fwrite(data, 1, len, o) == len && fclose(o) == 0, "copy %s", MODEL_FILES[f]);
        free(data);
        free(from);
        free(to);
    }
    free(golden);
}

/* Removes a model directory made by a test (its MODEL_FILES, then the directory). */
static void remove_model(const char *dir) {
    for (size_t f = 0; f < N_MODEL_FILES; f++) {
        char *p = path_join(dir, MODEL_FILES[f]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
}

/* qwen_model_save_quantized writes a directory that maps to exactly the load-time quantized model;
 * MoE experts and shared experts are quantized too (routers stay as stored). */
static void test_saved_quantized(void) {
    const char *models[] = { "models/qwen3-tiny", "models/qwen2-untied-f32", "models/qwen3-moe-tiny", "models/qwen2-moe-tiny" };
    const char *quants[] = { "q8_0", "q4_0" };
    const int32_t ids[] = { 151644, 872, 198, 9707, 1879, 0, 5, 17, 2000, 13 };
    for (int mi = 0; mi < 4; mi++)
        for (int q = 0; q < 2; q++) {
            char *src = golden_path(models[mi]);
            char dir[] = "/tmp/qwenc-quant-XXXXXX";
            REQUIRE(mkdtemp(dir), "mkdtemp");
            qwen_error *err = NULL;
            REQUIRE(qwen_model_save_quantized(src, dir, quants[q], 2, &err) == QWEN_OK, "save %s: %s", quants[q], qwen_error_message(err));
            size_t n = mi == 0 ? 10 : 6; /* the other models' vocab is 2048 */
            const int32_t *use = mi == 0 ? ids : ids + 4;
            /* the saved matrices copied into memory (the default; the description names no mapping)
             * and computed from the mapped file */
            const char *weights = q ? "weights Q4_0" : "weights Q8_0", *mapped_weights = q ? "weights Q4_0 (mapped)" : "weights Q8_0 (mapped)";
            int v1, v2, v3;
            float *a = logits_of(src, quants[q], use, n, &v1), *b = logits_mapped(dir, NULL, false, weights, use, n, &v2),
                  *c = logits_mapped(dir, NULL, true, mapped_weights, use, n, &v3);
            double e = 0, em = 0;
            for (size_t i = 0; v1 == v2 && i < n * (size_t)v1; i++) if (fabs(a[i] - b[i]) > e) e = fabs(a[i] - b[i]);
            for (size_t i = 0; v1 == v3 && i < n * (size_t)v1; i++) if (fabs(a[i] - c[i]) > em) em = fabs(a[i] - c[i]);
            CHECK(v1 == v2 && e <= 1e-5, "%s %s: saved file differs from load-time quantization by %g", models[mi], quants[q], e);
            CHECK(v1 == v3 && em <= 1e-5, "%s %s: saved file, mapped, differs from load-time quantization by %g", models[mi], quants[q], em);
            free(a);
            free(b);
            free(c);
            if (mi >= 2) { /* the experts went into the file quantized, the router did not */
                st_checkpoint ck;
                REQUIRE(st_open_dir(&ck, dir, NULL) == QWEN_OK, "open the saved MoE checkpoint");
                const st_tensor *ex = st_find(&ck, "model.layers.0.mlp.experts.1.up_proj.weight"), *router = st_find(&ck, "model.layers.0.mlp.gate.weight");
                CHECK(ex && (ex->dtype == QDT_Q8_0 || ex->dtype == QDT_Q4_0), "%s: expert matrix not quantized in the saved file", models[mi]);
                CHECK(router && router->dtype != QDT_Q8_0 && router->dtype != QDT_Q4_0, "%s: router quantized", models[mi]);
                if (mi == 3) {
                    const st_tensor *sh = st_find(&ck, "model.layers.0.mlp.shared_expert.down_proj.weight");
                    CHECK(sh && (sh->dtype == QDT_Q8_0 || sh->dtype == QDT_Q4_0), "shared expert not quantized");
                }
                st_close(&ck);
            }
            remove_model(dir);
            free(src);
        }
}

/* Bytes of a file (-1 when it cannot be read). */
static long file_size(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    FILE *f = fopen(p, "rb");
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (f) fclose(f);
    free(p);
    return n;
}

/* generation_config.json's sampling defaults: numbers beyond a float's range saturate, a top_k
 * beyond an int's range means all (and a negative one none), never an undefined conversion. */
static void test_generation_config_bounds(void) {
    char dir[] = "/tmp/qwenc-genconfig-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    copy_tiny_model(dir);
    const char *configs[] = { "{\"do_sample\": true, \"temperature\": 1e300, \"top_k\": 1000000000000000, \"top_p\": -1e300, \"min_p\": 0.05}",
                              "{\"do_sample\": true, \"top_k\": -5, \"repetition_penalty\": 1e39}" };
    for (int c = 0; c < 2; c++) {
        char *path = path_join(dir, "generation_config.json");
        FILE *f = fopen(path, "wb");
        REQUIRE(f && fputs(configs[c], f) >= 0 && fclose(f) == 0, "write generation_config.json");
        free(path);
        qwen_error *err = NULL;
        qwen_model *m = qwen_model_open(dir, NULL, &err);
        REQUIRE(m, "open: %s", qwen_error_message(err));
        qwen_sampling d = qwen_model_default_sampling(m);
        if (c == 0)
            CHECK(isinf(d.temperature) && d.temperature > 0 && d.top_k == INT_MAX && isinf(d.top_p) && d.top_p < 0 && d.min_p == 0.05f,
                  "saturated defaults: temperature %g top_k %d top_p %g min_p %g", d.temperature, d.top_k, d.top_p, d.min_p);
        else
            CHECK(d.temperature == 1.0f && d.top_k == 0 && isinf(d.repetition_penalty), "defaults: temperature %g top_k %d repetition_penalty %g",
                  d.temperature, d.top_k, d.repetition_penalty);
        qwen_model_close(m);
    }
    remove_model(dir);
}

/* qwenc quantize never writes over weights: not into the model's own directory (the mapped file
 * it reads would be truncated: data lost, then SIGBUS), not into a directory that already holds a
 * checkpoint; both fail naming the directory, and nothing there changes. */
static void test_quantize_refuses_overwrite(void) {
    char dir[] = "/tmp/qwenc-inplace-XXXXXX", out[] = "/tmp/qwenc-inplace-out-XXXXXX";
    REQUIRE(mkdtemp(dir) && mkdtemp(out), "mkdtemp");
    copy_tiny_model(dir); /* a writable copy of the model */
    long before = file_size(dir, "model.safetensors");
    qwen_error *err = NULL;
    CHECK(qwen_model_save_quantized(dir, dir, "q8_0", 2, &err) != QWEN_OK && strstr(qwen_error_message(err), "own directory"),
          "quantize into the model's own directory: %s", err ? qwen_error_message(err) : "accepted");
    qwen_error_free(err);
    err = NULL;
    CHECK(file_size(dir, "model.safetensors") == before, "the source weights changed size: %ld -> %ld", before, file_size(dir, "model.safetensors"));
    REQUIRE(qwen_model_save_quantized(dir, out, "q4_0", 2, &err) == QWEN_OK, "quantize: %s", qwen_error_message(err));
    long q4 = file_size(out, "model.safetensors");
    CHECK(file_size(out, "model.safetensors.part") < 0, "a .part file was left behind");
    CHECK(qwen_model_save_quantized(dir, out, "q8_0", 2, &err) != QWEN_OK && strstr(qwen_error_message(err), "already holds a checkpoint"),
          "quantize over an existing checkpoint: %s", err ? qwen_error_message(err) : "accepted");
    qwen_error_free(err);
    CHECK(file_size(out, "model.safetensors") == q4, "the existing checkpoint was touched");
    /* an unknown type is refused before anything is loaded or created */
    char *fresh = path_join(out, "never-made");
    err = NULL;
    CHECK(qwen_model_save_quantized(dir, fresh, "q5", 2, &err) != QWEN_OK && strstr(qwen_error_message(err), "unknown quantization 'q5'"),
          "quantize to 'q5': %s", err ? qwen_error_message(err) : "accepted");
    qwen_error_free(err);
    struct stat st;
    CHECK(stat(fresh, &st) != 0, "quantize to 'q5' created %s", fresh);
    err = NULL;
    CHECK(qwen_model_save_quantized(dir, fresh, NULL, 2, &err) == QWEN_ERR_INVALID_ARG && err, "quantize with no type accepted");
    qwen_error_free(err);
    err = NULL;
    CHECK(qwen_model_save_quantized(dir, NULL, "q8_0", 2, &err) == QWEN_ERR_INVALID_ARG && err, "quantize with no OUT_DIR accepted");
    qwen_error_free(err);
    free(fresh);
    remove_model(dir);
    remove_model(out);
}

/* The API refuses missing arguments with an error (its getters answer empty) instead of crashing. */
static void test_null_arguments(void) {
    qwen_error *err = NULL;
    CHECK(!qwen_model_open(NULL, NULL, &err) && qwen_error_status(err) == QWEN_ERR_INVALID_ARG, "qwen_model_open(NULL): %s", qwen_error_message(err));
    qwen_error_free(err);
    err = NULL;
    CHECK(!qwen_model_open("", NULL, &err) && qwen_error_status(err) == QWEN_ERR_INVALID_ARG, "qwen_model_open(\"\"): %s", qwen_error_message(err));
    qwen_error_free(err);
    err = NULL;
    CHECK(!qwen_session_new(NULL, 16, &err) && qwen_error_status(err) == QWEN_ERR_INVALID_ARG, "qwen_session_new(NULL): %s", qwen_error_message(err));
    qwen_error_free(err);
    err = NULL;
    CHECK(!qwen_tokenizer_open(NULL, &err) && qwen_error_status(err) == QWEN_ERR_INVALID_ARG, "qwen_tokenizer_open(NULL): %s", qwen_error_message(err));
    qwen_error_free(err);
    /* NULL handles to the calls that return a status */
    int32_t ids[2] = { 1, 2 }, *out_ids = NULL;
    size_t n = 0;
    char *text = NULL;
    float out[4];
    double score = 0;
    qwen_status st[5];
    qwen_error *errs[5] = { 0 };
    st[0] = qwen_tokenize(NULL, "hi", 2, NULL, &out_ids, &n, &errs[0]);
    st[1] = qwen_detokenize(NULL, ids, 2, false, &text, &n, &errs[1]);
    st[2] = qwen_session_forward(NULL, ids, 2, out, false, &errs[2]);
    st[3] = (qwen_status)-qwen_embed(NULL, ids, 2, 4, out, &errs[3]);
    st[4] = qwen_rerank(NULL, NULL, "q", "d", &score, &errs[4]);
    for (int i = 0; i < 5; i++) {
        CHECK(st[i] == QWEN_ERR_INVALID_ARG && errs[i], "call %d with a NULL handle: status %d", i, (int)st[i]);
        qwen_error_free(errs[i]);
    }
    CHECK(!qwen_sampler_new(NULL), "qwen_sampler_new(NULL) gave a sampler");
    /* and to the getters: an empty answer */
    CHECK(qwen_model_vocab_size(NULL) == 0 && qwen_model_max_context(NULL) == 0 && !qwen_model_tokenizer(NULL) && !qwen_model_dir(NULL) &&
              qwen_model_weight_bytes(NULL) == 0 && qwen_model_kv_bytes_per_position(NULL) == 0 && !qwen_model_is_eos(NULL, 0) &&
              !strcmp(qwen_model_describe(NULL), ""),
          "a model getter answered for NULL");
    CHECK(qwen_session_length(NULL) == 0 && !qwen_session_tokens(NULL), "a session getter answered for NULL");
    qwen_session_truncate(NULL, 0);
    CHECK(qwen_tokenizer_vocab_size(NULL) == 0 && !qwen_token_bytes(NULL, 0, NULL) && qwen_token_id(NULL, "a", 1) == -1 && !qwen_token_is_special(NULL, 0),
          "a tokenizer getter answered for NULL");
    CHECK(!qwen_stream_decoder_new(NULL, false) && !qwen_stream_decoder_flush(NULL), "a stream decoder without a tokenizer");
    qwen_error *e = NULL;
    char *piece = NULL;
    CHECK(qwen_stream_decoder_push(NULL, 0, &piece, &e) == QWEN_ERR_INVALID_ARG && e, "qwen_stream_decoder_push(NULL) accepted");
    qwen_error_free(e);
    e = NULL;
    qwen_sampling greedy = { 0 };
    CHECK(qwen_generate(NULL, ids, 2, &greedy, NULL, NULL, NULL, NULL, &e) == QWEN_ERR_INVALID_ARG && e, "qwen_generate(NULL) accepted");
    qwen_error_free(e);
    CHECK(qwen_sampler_sample(NULL, out, 4, NULL, 0) == -1, "qwen_sampler_sample(NULL) picked an id");
    e = NULL;
    CHECK(!qwen_chat_template_open(NULL, &e) && qwen_error_status(e) == QWEN_ERR_INVALID_ARG, "qwen_chat_template_open(NULL)");
    qwen_error_free(e);
    e = NULL;
    CHECK(!qwen_chat_template_from_source(NULL, 3, &e) && qwen_error_status(e) == QWEN_ERR_INVALID_ARG, "qwen_chat_template_from_source(NULL)");
    qwen_error_free(e);
    e = NULL;
    CHECK(!qwen_chat_template_render(NULL, "{}", 2, NULL, &e) && qwen_error_status(e) == QWEN_ERR_INVALID_ARG, "qwen_chat_template_render(NULL)");
    qwen_error_free(e);
    CHECK(!qwen_output_parser_new(false, NULL, NULL), "an output parser without a callback");
    qwen_output_parser_feed(NULL, "x", 1);
    qwen_output_parser_finish(NULL);
}

/* Q8_0 and Q4_0 weights in planes (an AVX-512 table and 2-8 threads: model.c lays them out, see
 * PLANE_STREAMS) give the logits of the same weights kept contiguous (QWENC_NO_PLANES), bit for
 * bit: a prompt (prefill reads the planes through q_row) and decode steps (the four-group tiles).
 * Qwen3-tiny's q_proj (128 rows) and output head go into planes, its other matrices cannot. */
static void test_planes(const char *quant) {
    char *dir = golden_path("models/qwen3-tiny");
    const int32_t prompt[] = { 151644, 872, 198, 9707, 1879 };
    qwen_model *m[2];
    for (int i = 0; i < 2; i++) {
        if (i == 0) setenv("QWENC_NO_PLANES", "1", 1);
        qwen_error *err = NULL;
        m[i] = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2, .quant = quant }, &err);
        unsetenv("QWENC_NO_PLANES");
        REQUIRE(m[i], "open %s: %s", dir, qwen_error_message(err));
    }
    const dot_kernels *k = dot_kernels_best();
    bool planes = strcmp(quant, "q4_0") ? k->gemv4_q8_0 != NULL : k->gemv4_q4_0 != NULL;
    CHECK(!strstr(qwen_model_describe(m[0]), "in planes"), "QWENC_NO_PLANES: %s", qwen_model_describe(m[0]));
    CHECK(!!strstr(qwen_model_describe(m[1]), "(in planes)") == planes, "%s in planes where the %s table %s a four-group tile: %s", quant, k->name,
          planes ? "has" : "lacks", qwen_model_describe(m[1]));
    int vocab = qwen_model_vocab_size(m[0]);
    float *out[2] = { malloc((size_t)5 * vocab * sizeof(float)), malloc((size_t)5 * vocab * sizeof(float)) };
    qwen_session *s[2] = { qwen_session_new(m[0], 32, NULL), qwen_session_new(m[1], 32, NULL) };
    REQUIRE(out[0] && out[1] && s[0] && s[1], "sessions");
    for (int i = 0; i < 2; i++) REQUIRE(qwen_session_forward(s[i], prompt, 5, out[i], true, NULL) == QWEN_OK, "prompt");
    CHECK(!memcmp(out[0], out[1], (size_t)5 * vocab * sizeof(float)), "%s: planar prompt logits differ from contiguous", quant);
    for (int step = 0; step < 8; step++) {
        int32_t next = 100 + 37 * step;
        for (int i = 0; i < 2; i++) REQUIRE(qwen_session_forward(s[i], &next, 1, out[i], false, NULL) == QWEN_OK, "decode");
        CHECK(!memcmp(out[0], out[1], (size_t)vocab * sizeof(float)), "%s: planar decode step %d logits differ from contiguous", quant, step);
    }
    for (int i = 0; i < 2; i++) {
        qwen_session_free(s[i]);
        qwen_model_close(m[i]);
        free(out[i]);
    }
    free(dir);
}

int main(void) {
    test_null_arguments();
    test_planes("q8_0");
    test_planes("q4_0");
    check_kernel_choice();
    test_quantize_refuses_overwrite();
    test_generation_config_bounds();
    char *src = golden_path("models/qwen2-untied-f32");
    const int32_t ids[] = { 1, 17, 300, 2000, 5, 99, 1024, 7, 42, 1500 };
    size_t n = sizeof ids / sizeof *ids;
    int vocab;
    float *ref = logits_of(src, NULL, ids, n, &vocab);
    st_checkpoint ck;
    REQUIRE(st_open_dir(&ck, src, NULL) == QWEN_OK, "open checkpoint");
    qdtype types[] = { QDT_F16, QDT_BF16 };
    const double bound[] = { 2e-3, 2e-2 }; /* relative to max|logit|: f16 keeps 11 bits, bf16 8 */
    for (int k = 0; k < 2; k++) {
        char dir[] = "/tmp/qwenc-dtype-XXXXXX";
        REQUIRE(mkdtemp(dir), "mkdtemp");
        st_write_tensor *ts = calloc(ck.n_tensors, sizeof *ts);
        for (size_t i = 0; i < ck.n_tensors; i++) {
            ts[i].name = ck.tensors[i].name;
            ts[i].dtype = types[k] == QDT_F16 ? "F16" : "BF16";
            ts[i].ndim = ck.tensors[i].ndim;
            memcpy(ts[i].shape, ck.tensors[i].shape, sizeof ts[i].shape);
            ts[i].nbytes = ck.tensors[i].nbytes / 2;
        }
        convert c = { &ck, types[k] };
        char *st_path = path_join(dir, "model.safetensors"), *cfg_from = path_join(src, "config.json"), *cfg_to = path_join(dir, "config.json");
        REQUIRE(st_write(st_path, ts, ck.n_tensors, fill, &c, NULL) == QWEN_OK, "write");
        size_t len;
        char *cfg = file_read_all(cfg_from, &len, NULL);
        FILE *f = fopen(cfg_to, "w");
        fwrite(cfg, 1, len, f);
        fclose(f);
        float *got = logits_of(dir, NULL, ids, n, &vocab);
        double err = 0, scale = 0;
        size_t same = 0;
        for (size_t t = 0; t < n; t++) {
            int a = 0, b = 0;
            for (int i = 0; i < vocab; i++) {
                size_t o = t * (size_t)vocab + (size_t)i;
                if (fabs(got[o] - ref[o]) > err) err = fabs(got[o] - ref[o]);
                if (fabs(ref[o]) > scale) scale = fabs(ref[o]);
                if (got[o] > got[t * (size_t)vocab + (size_t)a]) a = i;
                if (ref[o] > ref[t * (size_t)vocab + (size_t)b]) b = i;
            }
            same += a == b;
        }
        printf("%s copy: max |err| %.3g of max|logit|, argmax equal %zu/%zu\n", ts[0].dtype, err / scale, same, n);
        CHECK(err <= bound[k] * scale, "%s copy differs by %.3g of max|logit|", ts[0].dtype, err / scale);
        free(got);
        free(cfg);
        unlink(st_path);
        unlink(cfg_to);
        rmdir(dir);
        free(st_path);
        free(cfg_from);
        free(cfg_to);
        free(ts);
    }
    st_close(&ck);
    free(ref);
    free(src);
    test_saved_quantized();
    return test_finish("model_dtypes");
}
