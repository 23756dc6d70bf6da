/* Checkpoint variants the golden models do not cover, checked through identities that hold
 * exactly in the reference's arithmetic and that a missing feature would break:
 * - Qwen3 with attention_bias: biases on q, k, v and o (transformers' Qwen3Attention). A value
 *   projection of zeros with a bias c makes every head attend to exactly c, so its output is
 *   W_o c; the same model with c moved into o_proj's bias instead gives the same logits.
 * - Qwen2-MoE with qkv_bias false: no q/k/v biases, the same as zero ones.
 * - Sliding-window attention (use_sliding_window): see check_window.
 * - transformers 5's rope_parameters, YaRN's truncate; partial_rotary_factor refused. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "qwenc.h"
#include "base/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"

enum { MAX_TENSORS = 256 };

/* A checkpoint being written: the base model's tensors (pointing into its mapping) and tensors
 * replaced or added by the test (owned, f32). */
typedef struct variant {
    st_write_tensor ts[MAX_TENSORS];
    char names[MAX_TENSORS][96];
    const void *data[MAX_TENSORS];
    float *owned[MAX_TENSORS];
    size_t n;
} variant;

static void fill(void *user, size_t index, size_t offset, unsigned char *out, size_t len) {
    const variant *v = user;
    memcpy(out, (const unsigned char *)v->data[index] + offset, len);
}

static void variant_from(variant *v, const st_checkpoint *ck) {
    memset(v, 0, sizeof *v);
    REQUIRE(ck->n_tensors <= MAX_TENSORS, "too many tensors");
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const st_tensor *t = &ck->tensors[i];
        snprintf(v->names[i], sizeof v->names[i], "%s", t->name);
        v->ts[i] = (st_write_tensor){ v->names[i], t->dtype == QDT_F32 ? "F32" : t->dtype == QDT_F16 ? "F16" : "BF16", t->ndim,
                                      { t->shape[0], t->shape[1], t->shape[2], t->shape[3] }, t->nbytes };
        v->data[i] = t->data;
    }
    v->n = ck->n_tensors;
}

/* Sets tensor `name` (replacing one of that name, or added) to an f32 copy of x[rows * cols]
 * (cols 0: a vector of `rows`). */
static void variant_set(variant *v, const char *name, const float *x, int64_t rows, int64_t cols) {
    size_t i = 0;
    while (i < v->n && strcmp(v->names[i], name)) i++;
    REQUIRE(i < MAX_TENSORS, "too many tensors");
    if (i == v->n) v->n++;
    size_t count = (size_t)rows * (size_t)(cols ? cols : 1);
    free(v->owned[i]);
    v->owned[i] = malloc(count * sizeof(float));
    REQUIRE(v->owned[i], "out of memory");
    memcpy(v->owned[i], x, count * sizeof(float));
    snprintf(v->names[i], sizeof v->names[i], "%s", name);
    v->ts[i] = (st_write_tensor){ v->names[i], "F32", cols ? 2 : 1, { rows, cols }, count * sizeof(float) };
    v->data[i] = v->owned[i];
}

/* Removes tensor `name` (which must be there). */
static void variant_drop(variant *v, const char *name) {
    size_t i = 0;
    while (i < v->n && strcmp(v->names[i], name)) i++;
    REQUIRE(i < v->n, "no tensor %s", name);
    free(v->owned[i]);
    for (size_t j = i; j + 1 < v->n; j++) {
        memcpy(v->names[j], v->names[j + 1], sizeof v->names[j]);
        v->ts[j] = v->ts[j + 1];
        v->ts[j].name = v->names[j];
        v->data[j] = v->data[j + 1];
        v->owned[j] = v->owned[j + 1];
    }
    v->n--;
}

static void variant_free(variant *v) {
    for (size_t i = 0; i < v->n; i++) free(v->owned[i]);
}

/* The golden model at `rel` (under the golden directory): its directory (malloc'ed) and its
 * tensors opened into *ck; close_golden undoes both. */
static char *open_golden(const char *rel, st_checkpoint *ck) {
    char *dir = golden_path(rel);
    REQUIRE(st_open_dir(ck, dir, NULL) == QWEN_OK, "open %s", dir);
    return dir;
}

static void close_golden(char *dir, st_checkpoint *ck) {
    st_close(ck);
    free(dir);
}

/* Writes the variant with the base model's config.json changed by `edits` (a JSON object whose
 * members replace the config's) into a new temporary directory, returned (malloc'ed). */
static char *variant_write(const variant *v, const char *base_dir, const char *edits) {
    char tmpl[] = "/tmp/qwenc-variant-XXXXXX";
    REQUIRE(mkdtemp(tmpl), "mkdtemp");
    char *dir = strdup(tmpl), *st_path = path_join(dir, "model.safetensors");
    REQUIRE(st_write(st_path, v->ts, v->n, fill, (void *)v, NULL) == QWEN_OK, "write %s", st_path);
    char *cfg_from = path_join(base_dir, "config.json"), *cfg_to = path_join(dir, "config.json");
    json_error_t je;
    json_t *cfg = json_load_file(cfg_from, 0, &je), *patch = json_loads(edits, 0, &je);
    REQUIRE(cfg && patch && json_object_update(cfg, patch) == 0, "config edits: %s", je.text);
    REQUIRE(json_dump_file(cfg, cfg_to, 0) == 0, "write %s", cfg_to);
    json_decref(cfg);
    json_decref(patch);
    free(st_path);
    free(cfg_from);
    free(cfg_to);
    return dir;
}

static void remove_variant(char *dir) {
    char *a = path_join(dir, "model.safetensors"), *b = path_join(dir, "config.json");
    unlink(a);
    unlink(b);
    rmdir(dir);
    free(a);
    free(b);
    free(dir);
}

/* Logits of every position of ids: [n][*vocab], malloc'ed, from one batch, or with `steps` one
 * decode step per token; NULL when the model does not open (*err then says why). */
static float *logits_run(const char *dir, int threads, bool steps, const int32_t *ids, int n, int *vocab, qwen_error **err) {
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = threads }, err);
    if (!m) return NULL;
    *vocab = qwen_model_vocab_size(m);
    float *out = malloc((size_t)n * (size_t)*vocab * sizeof(float));
    qwen_session *s = qwen_session_new(m, n, NULL);
    REQUIRE(out && s, "session %s", dir);
    if (!steps) REQUIRE(qwen_session_forward(s, ids, n, out, true, NULL) == QWEN_OK, "forward %s", dir);
    for (int i = 0; steps && i < n; i++)
        REQUIRE(qwen_session_forward(s, ids + i, 1, out + (size_t)i * *vocab, false, NULL) == QWEN_OK, "step %d %s", i, dir);
    qwen_session_free(s);
    qwen_model_close(m);
    return out;
}

static float *logits(const char *dir, const int32_t *ids, int n, int *vocab, qwen_error **err) {
    return logits_run(dir, 2, false, ids, n, vocab, err);
}

/* out[c] = logits of every position of ids from the variant written with configs[c]. */
static void logits_per_config(const variant *v, const char *base, const char *const *configs, int n_configs, const int32_t *ids, int n,
                              float **out, int *vocab) {
    for (int c = 0; c < n_configs; c++) {
        qwen_error *err = NULL;
        char *d = variant_write(v, base, configs[c]);
        out[c] = logits(d, ids, n, vocab, &err);
        REQUIRE(out[c], "open %s: %s", configs[c], qwen_error_message(err));
        remove_variant(d);
    }
}

/* max |a - b| / max |b| over n values. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return worst / scale;
}

static float bf16_value(const void *p, size_t i) {
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float random_unit(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static void test_qwen3_attention_bias(void) {
    st_checkpoint ck;
    char *base = open_golden("models/qwen3-tiny", &ck);
    const int H = 64, HEADS = 4, KV_HEADS = 2, D = 32, Q = HEADS * D, KV = KV_HEADS * D, LAYERS = 2;
    const int32_t ids[] = { 9707, 11, 1879, 0, 220, 16, 17, 18, 151644, 872 };
    int n = (int)(sizeof ids / sizeof *ids), vocab;
    unsigned seed = 7;
    /* A: v = 0·x + c (every head's attention output is exactly c), o_proj without a bias;
     * B: v = 0, o_proj's bias W_o·c; B0: B without that bias (what B is if it went unread) */
    variant a, b, b0;
    variant_from(&a, &ck);
    variant_from(&b, &ck);
    variant_from(&b0, &ck);
    float *zeros = calloc((size_t)Q * H, sizeof(float)), qb[128], kb[64], c[64], ob[64];
    REQUIRE(zeros, "out of memory");
    for (int l = 0; l < LAYERS; l++) {
        char name[96];
        for (int i = 0; i < Q; i++) qb[i] = 0.5f * random_unit(&seed);
        for (int i = 0; i < KV; i++) kb[i] = 0.5f * random_unit(&seed);
        for (int i = 0; i < KV; i++) c[i] = random_unit(&seed);
        snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", l);
        const st_tensor *wo = st_find(&ck, name);
        REQUIRE(wo && wo->dtype == QDT_BF16 && wo->shape[0] == H && wo->shape[1] == Q, "%s", name);
        for (int r = 0; r < H; r++) { /* W_o times c repeated for each query head of its KV head */
            double sum = 0;
            for (int j = 0; j < Q; j++) sum += (double)bf16_value(wo->data, (size_t)r * Q + j) * c[(j / D) / (HEADS / KV_HEADS) * D + j % D];
            ob[r] = (float)sum;
        }
        variant *all[] = { &a, &b, &b0 };
        for (int k = 0; k < 3; k++) {
            variant *v = all[k];
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.bias", l);
            variant_set(v, name, qb, Q, 0);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.bias", l);
            variant_set(v, name, kb, KV, 0);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.weight", l);
            variant_set(v, name, zeros, KV, H);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.bias", l);
            variant_set(v, name, v == &a ? c : zeros, KV, 0);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.bias", l);
            variant_set(v, name, v == &b ? ob : zeros, H, 0);
        }
    }
    const char *edit = "{\"attention_bias\": true}";
    char *da = variant_write(&a, base, edit), *db = variant_write(&b, base, edit), *db0 = variant_write(&b0, base, edit);
    qwen_error *err = NULL;
    float *la = logits(da, ids, n, &vocab, &err), *lb = logits(db, ids, n, &vocab, &err), *lb0 = logits(db0, ids, n, &vocab, &err);
    REQUIRE(la && lb && lb0, "open: %s", qwen_error_message(err));
    double ab = rel_diff(la, lb, (size_t)n * vocab), bb0 = rel_diff(lb, lb0, (size_t)n * vocab);
    printf("qwen3 attention_bias: v bias through attention vs o_proj bias %.3g of max|logit|; o_proj bias dropped %.3g\n", ab, bb0);
    CHECK(ab < 1e-5, "a value bias c and an o_proj bias W_o c differ by %g of max|logit|", ab);
    CHECK(bb0 > 1e-2, "the o_proj bias changes the logits by only %g of max|logit|", bb0);
    /* without attention_bias the biases are not part of the model (transformers leaves them unread) */
    char *dn = variant_write(&b, base, "{\"attention_bias\": false}");
    float *ln = logits(dn, ids, n, &vocab, &err);
    REQUIRE(ln, "open: %s", qwen_error_message(err));
    CHECK(rel_diff(ln, lb, (size_t)n * vocab) > 1e-2, "attention_bias false still adds the o_proj bias");
    /* a checkpoint that says attention_bias but lacks the o_proj bias: an error naming it */
    variant_free(&b0);
    variant_from(&b0, &ck);
    remove_variant(db0);
    for (int l = 0; l < LAYERS; l++) {
        char name[96];
        const char *which[] = { "q_proj", "k_proj", "v_proj" };
        const float *vals[] = { qb, kb, c };
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.bias", l, which[k]);
            variant_set(&b0, name, vals[k], k ? KV : Q, 0);
        }
    }
    db0 = variant_write(&b0, base, edit);
    qwen_error_free(err);
    err = NULL;
    float *lm = logits(db0, ids, n, &vocab, &err);
    CHECK(!lm && err && strstr(qwen_error_message(err), "o_proj.bias"), "a missing o_proj bias: %s", err ? qwen_error_message(err) : "opened");
    printf("without o_proj.bias: %s\n", qwen_error_message(err));
    qwen_error_free(err);
    free(lm);
    free(la);
    free(lb);
    free(lb0);
    free(ln);
    free(zeros);
    variant_free(&a);
    variant_free(&b);
    variant_free(&b0);
    remove_variant(da);
    remove_variant(db);
    remove_variant(db0);
    remove_variant(dn);
    close_golden(base, &ck);
}

/* Qwen2-MoE's qkv_bias (true unless the config says false): without it the q/k/v biases are not
 * in the checkpoint, and the model is the same one with zero biases. */
static void test_qwen2_moe_qkv_bias(void) {
    st_checkpoint ck;
    char *base = open_golden("models/qwen2-moe-tiny", &ck);
    const int32_t ids[] = { 1, 17, 300, 1000, 5, 99, 12, 7 };
    int n = (int)(sizeof ids / sizeof *ids), vocab;
    variant zero, none;
    variant_from(&zero, &ck);
    variant_from(&none, &ck);
    static const float zeros[4096];
    for (size_t i = 0; i < ck.n_tensors; i++) {
        const st_tensor *t = &ck.tensors[i];
        if (!strstr(t->name, "_proj.bias")) continue;
        REQUIRE(t->ndim == 1 && t->shape[0] <= 4096, "%s", t->name);
        variant_set(&zero, t->name, zeros, t->shape[0], 0);
        variant_drop(&none, t->name);
    }
    REQUIRE(none.n < zero.n, "qwen2-moe-tiny has no q/k/v biases");
    char *dz = variant_write(&zero, base, "{}"), *dn = variant_write(&none, base, "{\"qkv_bias\": false}");
    char *dmissing = variant_write(&none, base, "{}");
    qwen_error *err = NULL;
    float *lz = logits(dz, ids, n, &vocab, &err), *ln = logits(dn, ids, n, &vocab, &err);
    REQUIRE(lz && ln, "open: %s", qwen_error_message(err));
    CHECK(rel_diff(ln, lz, (size_t)n * vocab) == 0, "qwen2_moe with qkv_bias false differs from zero biases by %g", rel_diff(ln, lz, (size_t)n * vocab));
    float *lm = logits(dmissing, ids, n, &vocab, &err);
    CHECK(!lm && err && strstr(qwen_error_message(err), "q_proj.bias"), "qwen2_moe without biases nor qkv_bias false: %s",
          err ? qwen_error_message(err) : "opened");
    qwen_error_free(err);
    free(lz);
    free(ln);
    free(lm);
    variant_free(&zero);
    variant_free(&none);
    remove_variant(dz);
    remove_variant(dn);
    remove_variant(dmissing);
    close_golden(base, &ck);
}

/* Sliding-window attention with window W over n tokens, `threads` threads:
 * - a one-layer model whose layer slides sees only a query's last W positions, and attention
 *   depends on positions only through their differences (RoPE), so its logits at position p are
 *   those of the last position of the W tokens ending at p, run alone (the same model without
 *   the window gives others);
 * - decode steps give what one batch of all the tokens gives (each path masks on its own). */
static void check_window(int W, int n, int threads) {
    st_checkpoint ck;
    char *base = open_golden("models/qwen3-tiny", &ck);
    variant v;
    variant_from(&v, &ck);
    char edits[256];
    snprintf(edits, sizeof edits, "{\"num_hidden_layers\": 1, \"use_sliding_window\": true, \"sliding_window\": %d, \"max_window_layers\": 0}", W);
    char *dw = variant_write(&v, base, edits), *df = variant_write(&v, base, "{\"num_hidden_layers\": 1}");
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    unsigned seed = (unsigned)(W * 31 + n);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((seed = seed * 1664525u + 1013904223u) >> 8) % 150000;
    int vocab;
    qwen_error *err = NULL;
    float *batch = logits_run(dw, threads, false, ids, n, &vocab, &err), *steps = logits_run(dw, threads, true, ids, n, &vocab, &err);
    float *full = logits_run(df, threads, false, ids, n, &vocab, &err);
    REQUIRE(batch && steps && full, "open: %s", qwen_error_message(err));
    double worst_steps = rel_diff(steps, batch, (size_t)n * vocab), worst_alone = 0, least_full = INFINITY;
    const int at[] = { W - 1, W + 1, n - 1 };
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        int p = at[k];
        if (p >= n) continue;
        float *alone = logits_run(dw, threads, false, ids + p - W + 1, W, &vocab, &err);
        REQUIRE(alone, "open: %s", qwen_error_message(err));
        const float *last = alone + (size_t)(W - 1) * vocab;
        worst_alone = fmax(worst_alone, rel_diff(batch + (size_t)p * vocab, last, (size_t)vocab));
        if (p > W - 1) least_full = fmin(least_full, rel_diff(full + (size_t)p * vocab, last, (size_t)vocab));
        free(alone);
    }
    printf("sliding window %d over %d tokens, %d threads: steps vs batch %.3g, a window run alone %.3g, without the window >= %.3g "
           "(of max|logit|)\n", W, n, threads, worst_steps, worst_alone, least_full);
    CHECK(worst_steps < 1e-4, "window %d: decode steps differ from the batch by %g", W, worst_steps);
    CHECK(worst_alone < 1e-4, "window %d: a position's logits differ from its window's run alone by %g", W, worst_alone);
    CHECK(least_full > 1e-3, "window %d: the model without its window gives the same logits (%g)", W, least_full);
    free(batch);
    free(steps);
    free(full);
    free(ids);
    variant_free(&v);
    remove_variant(dw);
    remove_variant(df);
    close_golden(base, &ck);
}

/* Which layers slide: layer_types as given, else those from max_window_layers on; without
 * use_sliding_window (or with a null window) none; a malformed layer_types is an error. */
static void test_window_layers(void) {
    st_checkpoint ck;
    char *base = open_golden("models/qwen3-tiny", &ck);
    variant v;
    variant_from(&v, &ck);
    const char *configs[] = {
        "{\"use_sliding_window\": true, \"sliding_window\": 5, \"max_window_layers\": 1}",
        "{\"use_sliding_window\": true, \"sliding_window\": 5, \"layer_types\": [\"full_attention\", \"sliding_attention\"]}",
        "{\"use_sliding_window\": true, \"sliding_window\": 5, \"max_window_layers\": 2}",
        "{\"use_sliding_window\": false, \"sliding_window\": 5, \"max_window_layers\": 0}",
        "{\"use_sliding_window\": true, \"sliding_window\": null, \"max_window_layers\": 0}",
        "{}",
    };
    enum { N = 24, C = sizeof configs / sizeof *configs };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 1000 + 37 * i;
    float *out[C];
    int vocab;
    logits_per_config(&v, base, configs, C, ids, N, out, &vocab);
    qwen_error *err = NULL;
    size_t all = (size_t)N * vocab;
    CHECK(rel_diff(out[0], out[1], all) == 0, "layer_types and max_window_layers for the same layers differ");
    CHECK(rel_diff(out[0], out[5], all) > 1e-3, "a sliding layer 1 changes nothing");
    for (int c = 2; c < 5; c++) CHECK(rel_diff(out[c], out[5], all) == 0, "config %s slides a layer", configs[c]);
    const char *bad[] = { "{\"use_sliding_window\": true, \"sliding_window\": 5, \"layer_types\": [\"full_attention\"]}",
                          "{\"use_sliding_window\": true, \"sliding_window\": 5, \"layer_types\": [\"full_attention\", \"local\"]}",
                          "{\"use_sliding_window\": true, \"sliding_window\": -3}", "{\"hidden_act\": \"gelu\"}",
                          "{\"partial_rotary_factor\": 0.5}", "{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4}}" };
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        char *d = variant_write(&v, base, bad[b]);
        qwen_error_free(err);
        err = NULL;
        float *o = logits(d, ids, N, &vocab, &err);
        CHECK(!o && err, "%s opened", bad[b]);
        printf("%s: %s\n", bad[b], err ? qwen_error_message(err) : "opened");
        free(o);
        remove_variant(d);
    }
    qwen_error_free(err);
    for (int c = 0; c < (int)C; c++) free(out[c]);
    variant_free(&v);
    close_golden(base, &ck);
}

/* transformers 5's rope_parameters (rope_theta and the scaling in one object) read as
 * rope_theta and rope_scaling are: the same logits bit for bit. */
static void test_rope_parameters(void) {
    st_checkpoint ck;
    char *base = open_golden("models/qwen3-yarn-tiny", &ck);
    variant v;
    variant_from(&v, &ck);
    const char *configs[] = {
        "{\"rope_theta\": 50000.0, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 128}}",
        "{\"rope_theta\": null, \"rope_scaling\": null, \"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 50000.0, "
        "\"factor\": 4.0, \"original_max_position_embeddings\": 128}}",
        "{\"rope_theta\": 50000.0, \"rope_scaling\": null}",
        "{\"rope_theta\": null, \"rope_scaling\": null, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 50000.0}}",
        "{\"rope_theta\": null, \"rope_scaling\": null}",
        "{\"rope_theta\": 50000.0, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 128, "
        "\"truncate\": true}}",
        "{\"rope_theta\": 50000.0, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 128, "
        "\"truncate\": false}}",
    };
    enum { N = 200, C = sizeof configs / sizeof *configs };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (7 + 131 * i) % 2048;
    float *out[C];
    int vocab;
    logits_per_config(&v, base, configs, C, ids, N, out, &vocab);
    size_t all = (size_t)N * vocab;
    CHECK(rel_diff(out[1], out[0], all) == 0, "rope_parameters with yarn differ from rope_theta and rope_scaling");
    CHECK(rel_diff(out[3], out[2], all) == 0, "rope_parameters' rope_theta differs from rope_theta");
    CHECK(rel_diff(out[0], out[2], all) > 1e-3 && rel_diff(out[2], out[4], all) > 1e-3, "neither yarn nor rope_theta changes the logits");
    /* yarn's truncate (transformers 5): true is the default; false keeps the ramp's ends fractional */
    CHECK(rel_diff(out[5], out[0], all) == 0, "yarn with truncate true differs from the default");
    CHECK(rel_diff(out[6], out[0], all) > 1e-6, "yarn's truncate false changes nothing");
    for (int c = 0; c < (int)C; c++) free(out[c]);
    variant_free(&v);
    close_golden(base, &ck);
}

/* The MoE models' own rules: Qwen2-MoE's even-numbered layers below max_window_layers slide by
 * default (layer_types otherwise), Qwen3-MoE's every layer whatever layer_types says. */
static void test_moe_window_layers(void) {
    enum { N = 24 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (11 + 97 * i) % 2048;
    const char *models[] = { "models/qwen2-moe-tiny", "models/qwen3-moe-tiny" };
    const char *configs[2][3] = {
        { "{\"use_sliding_window\": true, \"sliding_window\": 3, \"max_window_layers\": 2}",
          "{\"use_sliding_window\": true, \"sliding_window\": 3, \"layer_types\": [\"sliding_attention\", \"full_attention\"]}",
          "{\"use_sliding_window\": true, \"sliding_window\": 3, \"layer_types\": [\"full_attention\", \"sliding_attention\"]}" },
        { "{\"use_sliding_window\": true, \"sliding_window\": 3}",
          "{\"use_sliding_window\": true, \"sliding_window\": 3, \"layer_types\": [\"full_attention\", \"full_attention\", \"full_attention\"]}",
          "{\"use_sliding_window\": false, \"sliding_window\": 3}" },
    };
    for (int k = 0; k < 2; k++) {
        st_checkpoint ck;
        char *base = open_golden(models[k], &ck);
        variant v;
        variant_from(&v, &ck);
        float *out[3];
        int vocab;
        logits_per_config(&v, base, configs[k], 3, ids, N, out, &vocab);
        size_t all = (size_t)N * vocab;
        CHECK(rel_diff(out[0], out[1], all) == 0, "%s: the default sliding layers differ from the expected ones", models[k]);
        CHECK(rel_diff(out[0], out[2], all) > 1e-3, "%s: other sliding layers give the same logits", models[k]);
        for (int c = 0; c < 3; c++) free(out[c]);
        variant_free(&v);
        close_golden(base, &ck);
    }
}

int main(void) {
    test_moe_window_layers();
    test_rope_parameters();
    check_window(37, 100, 2);
    check_window(600, 700, 4); /* past 512 positions with more threads than KV heads: heads split over positions */
    test_window_layers();
    test_qwen3_attention_bias();
    test_qwen2_moe_qkv_bias();
    return test_finish("test_model_variants");
}
