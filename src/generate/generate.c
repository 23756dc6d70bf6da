/* The generation loop: reuse the cached prefix, prefill the rest, sample until a stop. */
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/strbuf.h"
#include "base/utf8.h"
#include "model/model.h"

/* Where the earliest of the stop strings begins in text[len], or len if none occurs; *held gets
 * the length of the longest tail of the text that begins one of them (and might grow into it). */
static size_t find_stop(const char *text, size_t len, const char *const *stops, size_t n_stops, size_t *held) {
    size_t at = len;
    *held = 0;
    for (size_t k = 0; k < n_stops; k++) {
        size_t sl = strlen(stops[k]);
        for (size_t i = 0; i + sl <= len && i < at; i++)
            if (!memcmp(text + i, stops[k], sl)) { at = i; break; }
        for (size_t t = sl - 1 < len ? sl - 1 : len; t > *held; t--) /* tails shorter than the string */
            if (!memcmp(text + len - t, stops[k], t)) { *held = t; break; }
    }
    return at;
}

qwen_status qwen_generate(qwen_session *s, const int32_t *prompt, size_t n_prompt, const qwen_sampling *sampling,
                          const qwen_generate_opts *opts, qwen_token_fn on_token, void *user, qwen_generate_stats *stats,
                          qwen_error **err) {
    qwen_generate_stats local = { 0 };
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!s || !sampling || (!prompt && n_prompt)) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_generate: missing session, prompt or sampling");
    qwen_model *m = s->model;
    const qwen_tokenizer *tok = qwen_model_tokenizer(m);
    if (!tok) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "the model has no tokenizer");
    if (n_prompt == 0) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "empty prompt");
    if (n_prompt > (size_t)s->max_tokens)
        return qwen_fail(err, QWEN_ERR_INVALID_ARG, "the prompt (%zu tokens) does not fit the context (%d)", n_prompt, s->max_tokens);
    const char *const *stops = opts ? opts->stop_strings : NULL;
    size_t n_stops = stops ? opts->n_stop_strings : 0;
    for (size_t k = 0; k < n_stops; k++)
        if (!stops[k] || !*stops[k] || utf8_validate((const unsigned char *)stops[k], strlen(stops[k])) != strlen(stops[k]))
            return qwen_fail(err, QWEN_ERR_INVALID_ARG, "stop string %zu is empty or not UTF-8", k);

    /* reuse the longest cached prefix, keeping at least one token to run for fresh logits */
    size_t keep = 0, cached = (size_t)qwen_session_length(s);
    const int32_t *have = qwen_session_tokens(s);
    while (keep < cached && keep < n_prompt - 1 && have[keep] == prompt[keep]) keep++;
    qwen_session_truncate(s, (int)keep);
    stats->prompt_tokens = n_prompt;
    stats->reused_tokens = keep;

    int32_t vocab = qwen_model_vocab_size(m);
    float *logits = malloc((size_t)vocab * sizeof(float));
    int32_t *seen = malloc((n_prompt + (size_t)s->max_tokens + 1) * sizeof *seen);
    qwen_sampler *sampler = qwen_sampler_new(sampling);
    qwen_stream_decoder *sd = qwen_stream_decoder_new(tok, false);
    strbuf held = { 0 }; /* text not yet passed on: it may begin a stop string */
    qwen_status st = QWEN_OK;
    if (!logits || !seen || !sampler || !sd) { st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); goto done; }
    memcpy(seen, prompt, n_prompt * sizeof *seen);
    size_t n_seen = n_prompt;

    double t0 = clock_seconds();
    for (size_t done_n = keep; done_n < n_prompt;) { /* in the forward pass's own batches, so that progress can be told */
        size_t n = n_prompt - done_n < MODEL_BATCH_TOKENS ? n_prompt - done_n : MODEL_BATCH_TOKENS;
        if ((st = qwen_session_forward(s, prompt + done_n, n, done_n + n == n_prompt ? logits : NULL, false, err))) goto done;
        done_n += n;
        if (opts && opts->progress) opts->progress(opts->progress_user, done_n - keep, n_prompt - keep);
    }
    double t1 = clock_seconds();
    stats->prefill_seconds = t1 - t0;
    int limit = opts && opts->max_tokens > 0 ? opts->max_tokens : s->max_tokens;
    for (;;) {
        if (opts && opts->stop && *opts->stop) { stats->stopped = true; break; }
        int32_t next = qwen_sampler_sample(sampler, logits, vocab, seen, n_seen);
        if (next < 0) { st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory for sampling"); break; }
        if (qwen_model_is_eos(m, next) && !(opts && opts->ignore_eos)) { stats->hit_eos = true; break; }
        stats->generated_tokens++;
        seen[n_seen++] = next;
        /* an id past the tokenizer's vocabulary (an embedding row of the padding to 151,936) has
         * no text, as HF decodes it */
        char *text = NULL;
        size_t token_len;
        if (qwen_token_bytes(tok, next, &token_len) && (st = qwen_stream_decoder_push(sd, next, &text, err))) break;
        const char *piece = text ? text : "";
        bool more = true;
        if (!n_stops) {
            more = on_token ? on_token(next, piece, strlen(piece), user) : true;
        } else { /* pass on what can no longer be part of a stop string */
            strbuf_puts(&held, piece);
            size_t keep = 0, at = held.data ? find_stop(held.data, held.len, stops, n_stops, &keep) : 0;
            size_t out = at < held.len ? at : held.len - keep;
            if (on_token) more = on_token(next, held.data ? held.data : "", out, user);
            if (at < held.len) stats->hit_stop_string = true;
            strbuf_consume(&held, at < held.len ? held.len : out);
        }
        free(text);
        if (held.oom) { st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); break; }
        if (stats->hit_stop_string) break;
        if (!more) { stats->stopped = true; break; }
        if ((int)stats->generated_tokens >= limit || qwen_session_length(s) >= s->max_tokens) { stats->hit_limit = true; break; }
        if ((st = qwen_session_forward(s, &next, 1, logits, false, err))) break;
    }
    /* the last sampled token is not in the cache yet: a later call re-runs it as part of its prompt */
    if (!st && !stats->hit_stop_string) { /* what was held back, and the decoder's incomplete bytes */
        char *rest = qwen_stream_decoder_flush(sd);
        if (rest) strbuf_puts(&held, rest);
        free(rest);
        if (held.len && on_token) on_token(-1, held.data, held.len, user);
    }
    stats->decode_seconds = clock_seconds() - t1;
done:
    free(held.data);
    qwen_stream_decoder_free(sd);
    qwen_sampler_free(sampler);
    free(seen);
    free(logits);
    return st;
}
