/* qwen_generate's stop strings on the golden qwen3-tiny, greedy: the text passed on ends where the
 * earliest stop string begins (one that spans tokens, one that begins mid-token, one at the very
 * start, one of several, one that never occurs), each piece passed on is never a part of it, and a
 * stop string that only partly occurs at the end is passed on after the last token. A long prompt
 * goes through in batches, its progress told, with the logits of one forward call. An id past the
 * tokenizer's vocabulary passes with no text. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "qwenc.h"

typedef struct collected {
    char text[4096];
    size_t len, calls, last_id_calls;
} collected;

static bool collect(int32_t id, const char *text, size_t len, void *user) {
    collected *c = user;
    if (c->len + len < sizeof c->text) memcpy(c->text + c->len, text, len), c->len += len;
    c->text[c->len] = 0;
    c->calls++;
    c->last_id_calls += id == -1;
    return true;
}

typedef struct progress_log { size_t calls, last_done, total; bool monotone; } progress_log;
static void note_progress(void *user, size_t done, size_t total) {
    progress_log *p = user;
    p->monotone = (p->calls == 0 || done > p->last_done) && (p->calls == 0 || p->monotone);
    p->calls++;
    p->last_done = done;
    p->total = total;
}

typedef struct id_log { int32_t id[64]; size_t n; char text[4096]; size_t len; } id_log;
static bool log_ids(int32_t id, const char *text, size_t len, void *user) {
    id_log *l = user;
    if (l->n < 64) l->id[l->n++] = id;
    if (l->len + len < sizeof l->text) memcpy(l->text + l->len, text, len), l->len += len;
    return true;
}

typedef struct first_token { int32_t id; } first_token;
static bool take_first(int32_t id, const char *text, size_t len, void *user) {
    (void)text, (void)len;
    first_token *f = user;
    if (f->id == -2) f->id = id;
    return true;
}

/* Greedy continuation of `prompt` with these stop strings, its text in *out. */
static qwen_generate_stats run(qwen_model *m, const int32_t *prompt, size_t n, const char *const *stops, size_t n_stops, int max_tokens,
                               collected *out) {
    qwen_error *err = NULL;
    qwen_session *s = qwen_session_new(m, 256, &err);
    REQUIRE(s, "session: %s", qwen_error_message(err));
    qwen_sampling greedy = { .temperature = 0, .top_p = 1, .repetition_penalty = 1 };
    qwen_generate_opts go = { .max_tokens = max_tokens, .ignore_eos = true, .stop_strings = stops, .n_stop_strings = n_stops };
    qwen_generate_stats st;
    memset(out, 0, sizeof *out);
    REQUIRE(qwen_generate(s, prompt, n, &greedy, &go, collect, out, &st, &err) == QWEN_OK, "generate: %s", qwen_error_message(err));
    qwen_session_free(s);
    return st;
}

int main(void) {
    char *dir = golden_path("models/qwen3-tiny");
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2 }, &err);
    REQUIRE(m, "open: %s", qwen_error_message(err));
    int32_t *prompt;
    size_t n;
    REQUIRE(qwen_tokenize(qwen_model_tokenizer(m), "The capital of France is", 24, NULL, &prompt, &n, NULL) == QWEN_OK, "tokenize");

    collected all, got;
    qwen_generate_stats st = run(m, prompt, n, NULL, 0, 40, &all);
    REQUIRE(all.len >= 24 && st.generated_tokens == 40 && !st.hit_stop_string, "a plain run: %zu bytes", all.len);
    /* stop strings cut from the plain text: across the middle (mid-token most likely), its very start */
    size_t cuts[][2] = { { all.len / 2 - 3, 7 }, { all.len / 3 + 1, 2 }, { 0, 3 } };
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        char stop[64];
        memcpy(stop, all.text + cuts[c][0], cuts[c][1]);
        stop[cuts[c][1]] = 0;
        const char *stops[] = { stop };
        st = run(m, prompt, n, stops, 1, 40, &got);
        size_t first = (size_t)(strstr(all.text, stop) - all.text); /* its earliest occurrence */
        CHECK(st.hit_stop_string && !st.hit_limit && got.len == first && !memcmp(got.text, all.text, first),
              "stop '%s': passed on %zu bytes, want the %zu before it", stop, got.len, first);
        CHECK(got.last_id_calls == 0, "stop '%s': nothing held back is passed on after a stop", stop);
    }
    /* of several, the earliest wins; one that never occurs changes nothing */
    char late[8], early[8];
    memcpy(late, all.text + all.len - 6, 5), late[5] = 0;
    memcpy(early, all.text + 4, 4), early[4] = 0;
    const char *several[] = { late, "\x01never\x02", early };
    st = run(m, prompt, n, several, 3, 40, &got);
    size_t first = (size_t)(strstr(all.text, early) - all.text);
    CHECK(st.hit_stop_string && got.len == first, "several stops: %zu bytes, want %zu", got.len, first);
    const char *never[] = { "\x01never\x02" };
    st = run(m, prompt, n, never, 1, 40, &got);
    CHECK(!st.hit_stop_string && st.hit_limit && got.len == all.len && !memcmp(got.text, all.text, all.len), "a stop that never occurs");
    /* a stop string whose start ends the text: held back, then passed on with id -1 */
    char tail[64];
    snprintf(tail, sizeof tail, "%s\x03", all.text + all.len - 3);
    const char *partial[] = { tail };
    st = run(m, prompt, n, partial, 1, 40, &got);
    CHECK(!st.hit_stop_string && got.len == all.len && !memcmp(got.text, all.text, all.len) && got.last_id_calls == 1,
          "a stop string begun at the end: %zu bytes, %zu calls with id -1", got.len, got.last_id_calls);
    CHECK(got.calls == 41, "one call per token (%zu)", got.calls - got.last_id_calls);
    /* a long prompt is processed in batches of 512 tokens, progress told after each, with the same
     * logits as one forward call: the first token generated is the argmax of those */
    char longtext[16384] = "";
    for (int r = 0; r < 160; r++) strcat(longtext, "The capital of France is Paris. ");
    int32_t *lp;
    size_t ln;
    REQUIRE(qwen_tokenize(qwen_model_tokenizer(m), longtext, strlen(longtext), NULL, &lp, &ln, NULL) == QWEN_OK && ln > 1024, "long prompt");
    qwen_session *s1 = qwen_session_new(m, 2048, NULL), *s2 = qwen_session_new(m, 2048, NULL);
    REQUIRE(s1 && s2, "sessions");
    int32_t vocab = qwen_model_vocab_size(m);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    REQUIRE(logits && qwen_session_forward(s1, lp, ln, logits, false, NULL) == QWEN_OK, "one forward call");
    int32_t best = 0;
    for (int32_t v = 1; v < vocab; v++) best = logits[v] > logits[best] ? v : best;
    progress_log log = { 0 };
    first_token got_first = { -2 };
    qwen_sampling greedy = { .temperature = 0, .top_p = 1, .repetition_penalty = 1 };
    qwen_generate_opts go = { .max_tokens = 1, .ignore_eos = true, .progress = note_progress, .progress_user = &log };
    REQUIRE(qwen_generate(s2, lp, ln, &greedy, &go, take_first, &got_first, NULL, NULL) == QWEN_OK, "generate after a long prompt");
    CHECK(got_first.id == best, "first token %d, argmax of one forward call %d", got_first.id, best);
    size_t want_calls = (ln + 511) / 512;
    CHECK(log.calls == want_calls && log.last_done == ln && log.total == ln && log.monotone, "progress: %zu calls (want %zu), last %zu of %zu",
          log.calls, want_calls, log.last_done, log.total);
    free(logits);
    free(lp);
    qwen_session_free(s1);
    qwen_session_free(s2);
    /* an id past the tokenizer's vocabulary (the embedding table's padding rows), which this random
     * model picks greedily after a chat prompt: generation goes on, the id passes with no text, as
     * HF's decode skips it (it failed with "unknown token id") */
    static const char chat[] = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there, how are you doing today?<|im_end|>\n"
                               "<|im_start|>assistant\n";
    int32_t *cp;
    size_t cn;
    REQUIRE(qwen_tokenize(qwen_model_tokenizer(m), chat, strlen(chat), NULL, &cp, &cn, NULL) == QWEN_OK, "chat prompt");
    id_log ids = { 0 };
    qwen_session *s3 = qwen_session_new(m, 256, NULL);
    qwen_generate_opts go20 = { .max_tokens = 20, .ignore_eos = true };
    err = NULL;
    CHECK(qwen_generate(s3, cp, cn, &greedy, &go20, log_ids, &ids, NULL, &err) == QWEN_OK, "generate: %s", qwen_error_message(err));
    qwen_error_free(err);
    size_t padded = 0, known_n = 0;
    int32_t known[32];
    for (size_t i = 0; i < ids.n; i++) {
        size_t bl;
        if (ids.id[i] >= 0 && !qwen_token_bytes(qwen_model_tokenizer(m), ids.id[i], &bl)) padded++;
        else if (ids.id[i] >= 0) known[known_n++] = ids.id[i];
    }
    CHECK(ids.n >= 20 && padded > 0, "%zu ids, %zu past the vocabulary (this check needs one)", ids.n, padded);
    char *want_text = NULL;
    size_t want_len = 0;
    REQUIRE(qwen_detokenize(qwen_model_tokenizer(m), known, known_n, false, &want_text, &want_len, NULL) == QWEN_OK, "detokenize");
    CHECK(ids.len == want_len && !memcmp(ids.text, want_text, want_len), "the text is the known ids' decoding");
    free(want_text);
    free(cp);
    qwen_session_free(s3);
    /* bad stop strings are refused */
    const char *bad[][1] = { { "" }, { "\xff" }, { NULL } };
    for (size_t b = 0; b < 3; b++) {
        qwen_session *s = qwen_session_new(m, 64, NULL);
        qwen_sampling greedy = { .temperature = 0, .top_p = 1, .repetition_penalty = 1 };
        qwen_generate_opts go = { .max_tokens = 4, .stop_strings = bad[b], .n_stop_strings = 1 };
        err = NULL;
        CHECK(qwen_generate(s, prompt, n, &greedy, &go, collect, &got, NULL, &err) == QWEN_ERR_INVALID_ARG && err, "bad stop string %zu accepted", b);
        qwen_error_free(err);
        qwen_session_free(s);
    }
    free(prompt);
    qwen_model_close(m);
    free(dir);
    return test_finish("generate");
}
