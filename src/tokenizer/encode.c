/* The encode pipeline, in Hugging Face's order:
 *   1. split the raw text on added tokens (those with normalized=false), leftmost-longest;
 *   2. NFC-normalize each remaining segment, then split it on normalized added tokens;
 *   3. pre-tokenize into pieces (pretokenize.c) and BPE each piece (bpe.c);
 *   4. wrap the result with the post-processor's tokens. */
#include "tokenizer/tokenizer.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"

typedef struct encoder {
    const qwen_tokenizer *tok;
    id_vec *out;
    /* Optional cache of piece -> ids for long inputs, where words repeat a lot. */
    bool use_cache;
    strmap cache;      /* piece bytes (in `cache_keys`) -> offset in `cache_ids` */
    arena cache_keys;
    id_vec cache_ids;  /* at each offset: count, then the ids */
} encoder;

static bool is_word_char(const qwen_tokenizer *tok, uint32_t cp) {
    return cp == '_' || (tok->cp_class[cp] & (CP_LETTER | CP_NUMBER));
}

/* The code point ending just before s[i] (i > 0). */
static uint32_t cp_before(const unsigned char *s, size_t i) {
    size_t j = i - 1;
    while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
    uint32_t cp = 0xFFFD;
    utf8_decode(s + j, i - j, &cp);
    return cp;
}

/* Finds the leftmost-longest added token (with the given `normalized` flag) in s[from..len).
 * On a match stores the span to replace (widened by lstrip/rstrip) and the token; returns false
 * when there is none. */
static bool find_added(const qwen_tokenizer *tok, const unsigned char *s, size_t len, size_t from, bool normalized,
                       size_t *start, size_t *end, int32_t *id) {
    for (size_t i = from; i < len; i++) {
        if (!tok->added_first_byte[s[i]]) continue;
        for (size_t k = 0; k < tok->n_added; k++) {
            const added_token *t = &tok->added[k];
            if (t->normalized != normalized || t->len > len - i || memcmp(s + i, t->content, t->len)) continue;
            size_t a = i, b = i + t->len;
            if (t->single_word) {
                uint32_t after = 0;
                if ((a > 0 && is_word_char(tok, cp_before(s, a))) ||
                    (b < len && utf8_decode(s + b, len - b, &after) && is_word_char(tok, after)))
                    continue;
            }
            if (t->lstrip)
                while (a > from) {
                    uint32_t cp = cp_before(s, a);
                    if (!(tok->cp_class[cp] & CP_SPACE)) break;
                    unsigned char tmp[4];
                    a -= (size_t)utf8_encode(cp, tmp);
                }
            if (t->rstrip)
                while (b < len) {
                    uint32_t cp;
                    int n = utf8_decode(s + b, len - b, &cp);
                    if (!n || !(tok->cp_class[cp] & CP_SPACE)) break;
                    b += (size_t)n;
                }
            *start = a;
            *end = b;
            *id = t->id;
            return true;
        }
    }
    return false;
}

/* Most pieces are whole tokens: when the piece's bytes are a token whose BPE is itself (memoised
 * per token), the answer is that token without running BPE. Returns the id, or -1. */
static int32_t whole_token(const qwen_tokenizer *tok, const unsigned char *s, size_t len) {
    uint32_t id;
    if (len < 2 || !strmap_get(&tok->vocab, (const char *)s, len, &id)) return -1;
    uint8_t known = atomic_load_explicit(&tok->bpe_is_self[id], memory_order_relaxed);
    if (!known) {
        id_vec tmp = { 0 };
        if (!bpe_encode_piece(tok, s, len, &tmp)) return -1;
        known = tmp.len == 1 && tmp.data[0] == (int32_t)id ? 1 : 2;
        free(tmp.data);
        atomic_store_explicit(&tok->bpe_is_self[id], known, memory_order_relaxed);
    }
    return known == 1 ? (int32_t)id : -1;
}

static bool encode_piece(encoder *e, const unsigned char *s, size_t len) {
    int32_t whole = whole_token(e->tok, s, len);
    if (whole >= 0) return id_vec_push(e->out, whole);
    if (!e->use_cache || len > 48) return bpe_encode_piece(e->tok, s, len, e->out);
    uint32_t off;
    if (strmap_get(&e->cache, (const char *)s, len, &off)) {
        int32_t n = e->cache_ids.data[off];
        for (int32_t i = 0; i < n; i++)
            if (!id_vec_push(e->out, e->cache_ids.data[off + 1 + i])) return false;
        return true;
    }
    size_t before = e->out->len;
    if (!bpe_encode_piece(e->tok, s, len, e->out)) return false;
    if (e->cache.count > (1u << 20)) return true; /* enough */
    char *key = arena_strndup(&e->cache_keys, (const char *)s, len);
    off = (uint32_t)e->cache_ids.len;
    if (!key || !id_vec_push(&e->cache_ids, (int32_t)(e->out->len - before))) return false;
    for (size_t i = before; i < e->out->len; i++)
        if (!id_vec_push(&e->cache_ids, e->out->data[i])) return false;
    return strmap_put(&e->cache, key, len, off);
}

static bool pretokenize_and_encode(encoder *e, const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t j = pretok_next(e->tok, s, len, i);
        if (!encode_piece(e, s + i, j - i)) return false;
        i = j;
    }
    return true;
}

/* Step 2 and 3 for one segment of raw text that holds no unnormalized added token. */
static bool encode_segment(encoder *e, const char *raw, size_t raw_len, bool match_added) {
    size_t len;
    const char *norm = unicode_nfc(e->tok, raw, raw_len, &len);
    if (!norm) return false;
    const unsigned char *s = (const unsigned char *)norm;
    bool ok = true;
    size_t pos = 0, a, b;
    int32_t id;
    while (ok && match_added && find_added(e->tok, s, len, pos, true, &a, &b, &id)) {
        ok = pretokenize_and_encode(e, s + pos, a - pos) && id_vec_push(e->out, id);
        pos = b;
    }
    if (ok) ok = pretokenize_and_encode(e, s + pos, len - pos);
    if (norm != raw) free((void *)norm);
    return ok;
}

qwen_status qwen_tokenize(const qwen_tokenizer *tok, const char *text, size_t len, const qwen_encode_opts *opts,
                          int32_t **ids_out, size_t *n_out, qwen_error **err) {
    static const qwen_encode_opts defaults = { 0 };
    if (!opts) opts = &defaults;
    if (!tok || !ids_out || !n_out || (!text && len)) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_tokenize: missing tokenizer, text or output");
    if (!text) text = ""; /* no text, no bytes */
    *ids_out = NULL;
    *n_out = 0;
    size_t bad = utf8_validate((const unsigned char *)text, len);
    if (bad != len)
        return qwen_fail(err, QWEN_ERR_INVALID_ARG, "input is not valid UTF-8 (byte 0x%02x at offset %zu)",
                         (unsigned char)text[bad], bad);

    id_vec out = { 0 };
    encoder e = { .tok = tok, .out = &out, .use_cache = len >= 4096 };
    bool ok = true, match_added = !opts->no_added_tokens && tok->n_added > 0;
    if (!opts->no_post_processor)
        for (size_t i = 0; ok && i < tok->n_post_prefix; i++) ok = id_vec_push(&out, tok->post_prefix[i]);

    const unsigned char *s = (const unsigned char *)text;
    size_t pos = 0, a, b;
    int32_t id;
    while (ok && match_added && find_added(tok, s, len, pos, false, &a, &b, &id)) {
        ok = encode_segment(&e, text + pos, a - pos, match_added) && id_vec_push(&out, id);
        pos = b;
    }
    if (ok) ok = encode_segment(&e, text + pos, len - pos, match_added);

    if (!opts->no_post_processor)
        for (size_t i = 0; ok && i < tok->n_post_suffix; i++) ok = id_vec_push(&out, tok->post_suffix[i]);
    strmap_free(&e.cache);
    arena_free(&e.cache_keys);
    free(e.cache_ids.data);
    if (!ok) {
        free(out.data);
        return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory while tokenizing");
    }
    *ids_out = out.data ? out.data : malloc(sizeof(int32_t));
    *n_out = out.len;
    if (!*ids_out) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    return QWEN_OK;
}
