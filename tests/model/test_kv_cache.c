/* The KV cache's layout never changes a result: a long prompt (past the default 1024-position
 * chunk) and decode steps after it give bit-identical logits whatever the chunk size (and whether
 * qwen_session_reserve made the cache resident before or after the prompt), f32, f16
 * and q8_0 caches, so that every address across chunk boundaries (prefill passes and decode steps that span
 * them, staged key blocks flushed into a new chunk) is checked against layouts that put the
 * boundaries elsewhere, down to a chunk per block of 32 positions. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "qwenc.h"
#include "model/model.h"

enum { PROMPT = 1090, STEPS = 24 };

/* Last-position logits of the prompt, then of each greedy decode step: [STEPS + 1][V]. `reserve`:
 * qwen_session_reserve on the whole cache before the prompt (1), after it (2; the cache then holds
 * the prompt, which must survive), or not (0). */
static float *run(qwen_model *m, int kv_chunk, int reserve, const int32_t *prompt, int V) {
    qwen_error *err = NULL;
    qwen_session *s = session_new_chunked(m, PROMPT + STEPS + 8, kv_chunk, &err);
    REQUIRE(s, "session: %s", qwen_error_message(err));
    float *out = malloc((size_t)(STEPS + 1) * V * sizeof(float));
    if (reserve == 1) qwen_session_reserve(s, 0);
    REQUIRE(out && qwen_session_forward(s, prompt, PROMPT, out, false, &err) == QWEN_OK, "prefill: %s", qwen_error_message(err));
    if (reserve == 2) qwen_session_reserve(s, PROMPT + STEPS + 100); /* more than it holds: all */
    for (int i = 0; i < STEPS; i++) {
        int32_t next = (int32_t)argmax_f32(out + (size_t)i * V, V);
        REQUIRE(qwen_session_forward(s, &next, 1, out + (size_t)(i + 1) * V, false, &err) == QWEN_OK, "decode: %s", qwen_error_message(err));
    }
    qwen_session_free(s);
    return out;
}

/* A session cut back into an already flushed block (a reused prompt prefix) decodes as one that
 * never went past the cut: with f32 and f16 caches up to the float rounding of prefill batches cut
 * differently (the staged keys come back exactly); with q8_0 the re-staged keys are the
 * dequantized ones, so within a quantization-sized bound. */
static void check_truncate(qwen_model *m, const char *label, double bound, const int32_t *prompt, int V) {
    enum { KEEP = 1050 }; /* inside block 32 (positions 1024-1055), complete and flushed at PROMPT */
    qwen_error *err = NULL;
    qwen_session *a = qwen_session_new(m, PROMPT + STEPS + 8, &err), *b = qwen_session_new(m, PROMPT + STEPS + 8, &err);
    REQUIRE(a && b, "sessions: %s", qwen_error_message(err));
    float *la = malloc((size_t)V * sizeof(float)), *lb = malloc((size_t)V * sizeof(float));
    REQUIRE(la && lb && qwen_session_forward(a, prompt, PROMPT, NULL, false, &err) == QWEN_OK, "prefill: %s", qwen_error_message(err));
    qwen_session_truncate(a, KEEP);
    REQUIRE(qwen_session_forward(b, prompt, KEEP, NULL, false, &err) == QWEN_OK, "prefill: %s", qwen_error_message(err));
    double worst = 0, scale = 0;
    for (int i = 0; i < STEPS; i++) { /* the prompt's own tokens again, past the next block boundary (1056) */
        const int32_t *next = prompt + KEEP + i;
        REQUIRE(qwen_session_forward(a, next, 1, la, false, &err) == QWEN_OK && qwen_session_forward(b, next, 1, lb, false, &err) == QWEN_OK,
                "decode: %s", qwen_error_message(err));
        for (int v = 0; v < V; v++) {
            worst = fmax(worst, fabs((double)la[v] - lb[v]));
            scale = fmax(scale, fabs((double)lb[v]));
        }
    }
    printf("%s: cut back to %d positions, then %d decode steps: max |err| %.3g of max|logit|\n", label, KEEP, STEPS, worst / scale);
    CHECK(worst <= bound * scale, "%s: decoding after a cut back to %d positions differs by %g (max|logit| %g)", label, KEEP,
          worst, scale);
    free(la);
    free(lb);
    qwen_session_free(a);
    qwen_session_free(b);
}

/* With more threads than KV heads, a decode step splits each head's positions into parts and
 * combines their softmax sums (attention.c, decode_parts): the same logits as one thread, which
 * never splits, up to float rounding (the tiny models have 2 KV heads: 3 parts each at 6 threads). */
static void check_split_heads(const char *dir, const char *kv_type, const char *label, const int32_t *prompt, int V) {
    qwen_error *err = NULL;
    qwen_model *one = qwen_model_open(dir, &(qwen_model_opts){ .threads = 1, .kv_type = kv_type }, &err);
    qwen_model *six = qwen_model_open(dir, &(qwen_model_opts){ .threads = 6, .kv_type = kv_type }, &err);
    REQUIRE(one && six, "open %s: %s", dir, qwen_error_message(err));
    CHECK(attention_parts_floats(one) == 0 && attention_parts_floats(six) > 0, "%s: 6 threads split a decode step's heads, 1 does not",
          label);
    float *a = run(one, 0, 0, prompt, V), *b = run(six, 0, 0, prompt, V);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < (size_t)(STEPS + 1) * V; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    printf("%s: decode with heads split over 6 threads: max |err| %.3g of max|logit| against 1 thread\n", label, worst / scale);
    CHECK(worst <= 1e-5 * scale, "%s: splitting heads moves the logits by %g (max|logit| %g)", label, worst, scale);
    free(a);
    free(b);
    qwen_model_close(one);
    qwen_model_close(six);
}

/* qwen_session_profile counts decode steps only (not a prefill), each step's loops over the
 * threads (at least attention's in every layer: the tiny models have 2 KV heads, and matrices so
 * small that some fit in one block, which the caller runs alone), and times that nest: waits within
 * loops, loops and attention within steps; stopped, it counts no more. */
static void check_profile(qwen_model *m, const int32_t *prompt) {
    qwen_error *err = NULL;
    qwen_session *s = qwen_session_new(m, 64, &err);
    REQUIRE(s, "session: %s", qwen_error_message(err));
    qwen_session_profile(s, true);
    REQUIRE(qwen_session_forward(s, prompt, 40, NULL, false, &err) == QWEN_OK, "prefill: %s", qwen_error_message(err));
    for (int i = 0; i < 5; i++) REQUIRE(qwen_session_forward(s, prompt + 40 + i, 1, NULL, false, &err) == QWEN_OK, "decode: %s", qwen_error_message(err));
    qwen_step_profile p = qwen_session_profile(s, false);
    int layers = s->model->cfg.n_layers;
    printf("profile of 5 decode steps: %.0f loops a step, %.3f ms a step, %.3f in loops (%.3f waiting), attention %.3f\n", p.loops / 5.0,
           1e3 * p.step_s / 5, 1e3 * p.loop_s / 5, 1e3 * p.wait_s / 5, 1e3 * p.attention_s / 5);
    CHECK(p.steps == 5, "profile counted %d decode steps of 5 (a prefill is not one)", p.steps);
    CHECK(p.loops >= 5L * layers, "profile counted %ld loops in 5 steps of %d layers", p.loops, layers);
    CHECK(p.step_s > 0 && p.loop_s <= p.step_s && p.wait_s >= 0 && p.wait_s <= p.loop_s && p.attention_s > 0 && p.attention_s <= p.step_s,
          "profile times do not nest: step %g, loops %g, waits %g, attention %g", p.step_s, p.loop_s, p.wait_s, p.attention_s);
    REQUIRE(qwen_session_forward(s, prompt + 45, 1, NULL, false, &err) == QWEN_OK, "decode: %s", qwen_error_message(err));
    qwen_step_profile after = qwen_session_profile(s, false);
    CHECK(after.steps == 5 && after.loops == p.loops, "a stopped profile still counts (%d steps, %ld loops)", after.steps, after.loops);
    qwen_session_free(s);
}

int main(void) {
    check_kernel_choice();
    const char *models[] = { "models/qwen3-tiny", "models/qwen2.5-tiny" };
    const char *kv_types[] = { "f32", "f16", "q8_0" };
    const int chunks[] = { 32, 96, 1056, 0 /* the default: 1024 */ };
    int32_t prompt[PROMPT];
    for (int i = 0; i < PROMPT; i++) prompt[i] = (int32_t)((i * 7919u + 13) % 150000u);
    for (size_t mi = 0; mi < sizeof models / sizeof *models; mi++)
        for (size_t k = 0; k < 3 - mi; k++) { /* q8_0 needs heads 32 wide: qwen3-tiny's (qwen2.5-tiny's are 16) */
            char *dir = golden_path(models[mi]);
            qwen_error *err = NULL;
            qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2, .kv_type = kv_types[k] }, &err);
            REQUIRE(m, "open %s: %s", dir, qwen_error_message(err));
            int V = qwen_model_vocab_size(m);
            if (k == 0) check_profile(m, prompt);
            float *ref = run(m, 32, 0, prompt, V);
            for (size_t c = 1; c < sizeof chunks / sizeof *chunks + 2; c++) { /* then the default chunks reserved before / after the prompt */
                int chunk = c < sizeof chunks / sizeof *chunks ? chunks[c] : 0, reserve = c < sizeof chunks / sizeof *chunks ? 0 : (int)(c - sizeof chunks / sizeof *chunks) + 1;
                float *got = run(m, chunk, reserve, prompt, V);
                double worst = 0;
                for (size_t i = 0; i < (size_t)(STEPS + 1) * V; i++)
                    if (fabs((double)got[i] - ref[i]) > worst || got[i] != ref[i]) worst = fmax(worst, fabs((double)got[i] - ref[i]) + 1e-30);
                CHECK(worst == 0, "%s, %s cache: chunks of %d positions (reserved: %s) move the logits by %g against chunks of 32", models[mi],
                      kv_types[k], chunk ? chunk : 1024, reserve == 1 ? "before the prompt" : reserve == 2 ? "after it" : "no", worst);
                free(got);
            }
            printf("%s, %s cache: %d-token prompt and %d decode steps equal in chunks of 32, 96, 1056 and the default (also reserved before and after the prompt)\n", models[mi],
                   kv_types[k], PROMPT, STEPS);
            char label[96];
            snprintf(label, sizeof label, "%s, %s cache", models[mi], kv_types[k]);
            check_truncate(m, label, k < 2 ? 1e-5 : 5e-3, prompt, V);
            check_split_heads(dir, kv_types[k], label, prompt, V);
            free(ref);
            qwen_model_close(m);
            free(dir);
        }
    return test_finish("kv_cache");
}
