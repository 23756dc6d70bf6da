/* ids -> text: concatenate each token's bytes (byte-level tokens were decoded at load time). */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"

qwen_status qwen_detokenize(const qwen_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special,
                            char **text_out, size_t *len_out, qwen_error **err) {
    if (!tok || !text_out || (!ids && n)) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_detokenize: missing tokenizer, ids or output");
    *text_out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_ids || !tok->id_bytes[ids[i]])
            return qwen_fail(err, QWEN_ERR_INVALID_ARG, "unknown token id %d at position %zu", ids[i], i);
        total += tok->id_len[ids[i]];
    }
    char *bytes = malloc(total + 1), *out = malloc(3 * total + 1);
    if (!bytes || !out) {
        free(bytes), free(out);
        return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && tok->id_special[ids[i]]) continue;
        memcpy(bytes + k, tok->id_bytes[ids[i]], tok->id_len[ids[i]]);
        k += tok->id_len[ids[i]];
    }
    k = utf8_lossy((const unsigned char *)bytes, k, out);
    free(bytes);
    out[k] = 0;
    *text_out = out;
    if (len_out) *len_out = k;
    return QWEN_OK;
}

struct qwen_stream_decoder {
    const qwen_tokenizer *tok;
    bool skip_special;
    unsigned char held[8]; /* bytes of a character not complete yet */
    size_t n_held;
};

qwen_stream_decoder *qwen_stream_decoder_new(const qwen_tokenizer *tok, bool skip_special) {
    qwen_stream_decoder *sd = tok ? calloc(1, sizeof *sd) : NULL;
    if (sd) {
        sd->tok = tok;
        sd->skip_special = skip_special;
    }
    return sd;
}

qwen_status qwen_stream_decoder_push(qwen_stream_decoder *sd, int32_t id, char **out, qwen_error **err) {
    if (!sd || !out) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_stream_decoder_push: missing decoder or output");
    *out = NULL;
    size_t len;
    const char *bytes = qwen_token_bytes(sd->tok, id, &len);
    if (!bytes) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "unknown token id %d", id);
    if (sd->skip_special && qwen_token_is_special(sd->tok, id)) len = 0;
    size_t total = sd->n_held + len;
    unsigned char *buf = malloc(total + 1);
    char *text = malloc(3 * total + 1);
    if (!buf || !text) {
        free(buf);
        free(text);
        return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    }
    memcpy(buf, sd->held, sd->n_held);
    memcpy(buf + sd->n_held, bytes, len);
    size_t keep = utf8_incomplete_tail(buf, total);
    size_t k = utf8_lossy(buf, total - keep, text);
    text[k] = 0;
    memcpy(sd->held, buf + total - keep, keep);
    sd->n_held = keep;
    free(buf);
    *out = text;
    return QWEN_OK;
}

char *qwen_stream_decoder_flush(qwen_stream_decoder *sd) {
    if (!sd) return NULL;
    char *text = malloc(3 * sd->n_held + 1);
    if (!text) return NULL;
    size_t k = utf8_lossy(sd->held, sd->n_held, text); /* a cut-off character: one U+FFFD */
    text[k] = 0;
    sd->n_held = 0;
    return text;
}

void qwen_stream_decoder_free(qwen_stream_decoder *sd) { free(sd); }
