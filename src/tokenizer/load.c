/* Loading tokenizer.json (Hugging Face `tokenizers` format) into a qwen_tokenizer.
 * Supported: normalizer NFC (or none), the Qwen Split + ByteLevel pre-tokenizer, a byte-level BPE
 * model, added tokens, ByteLevel / TemplateProcessing post-processors, the ByteLevel decoder.
 * Anything else is refused with QWEN_ERR_UNSUPPORTED naming the part. */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/utf8.h"
#include "tokenizer/json_scan.h"

static const char QWEN_SPLIT_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

uint32_t byte_level_char(unsigned char b) {
    /* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
     * U+0100 onwards in byte order. */
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    uint32_t n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) n++;
    return 256 + n;
}

/* Decodes a byte-level token string (each code point stands for one byte) into raw bytes. */
static bool byte_level_decode(const int16_t *char_to_byte, const char *s, size_t len, char *out, size_t *out_len) {
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        int k = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!k || cp >= 512 || char_to_byte[cp] < 0) return false;
        out[n++] = (char)char_to_byte[cp];
        i += (size_t)k;
    }
    *out_len = n;
    return true;
}

static const char *type_of(json_t *obj) {
    json_t *t = json_object_get(obj, "type");
    return json_is_string(t) ? json_string_value(t) : "";
}

static qwen_status check_normalizer(json_t *n, qwen_error **err) {
    if (!n || json_is_null(n)) return QWEN_OK;
    const char *t = type_of(n);
    if (!strcmp(t, "NFC")) return QWEN_OK;
    if (!strcmp(t, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers"), *item;
        size_t i;
        if (!json_is_array(list)) return qwen_fail(err, QWEN_ERR_FORMAT, "normalizer Sequence without a list");
        json_array_foreach(list, i, item) if (check_normalizer(item, err)) return QWEN_ERR_UNSUPPORTED;
        return QWEN_OK;
    }
    return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported normalizer type '%s' (qwenc supports NFC)", t);
}

static qwen_status check_pre_tokenizer(json_t *p, qwen_error **err) {
    if (!p || strcmp(type_of(p), "Sequence"))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported pre_tokenizer (expected Qwen's Split + ByteLevel sequence)");
    json_t *list = json_object_get(p, "pretokenizers");
    if (!json_is_array(list) || json_array_size(list) != 2)
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported pre_tokenizer sequence (expected Split + ByteLevel)");
    json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    json_t *pattern = json_object_get(json_object_get(split, "pattern"), "Regex");
    json_t *behavior = json_object_get(split, "behavior");
    if (strcmp(type_of(split), "Split") || !json_is_string(pattern) ||
        strcmp(json_string_value(pattern), QWEN_SPLIT_REGEX) || !json_is_string(behavior) ||
        strcmp(json_string_value(behavior), "Isolated") || json_is_true(json_object_get(split, "invert")))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported Split pre-tokenizer (only Qwen's regex, Isolated, is built in)");
    if (strcmp(type_of(bl), "ByteLevel") || json_is_true(json_object_get(bl, "add_prefix_space")) ||
        json_is_true(json_object_get(bl, "use_regex")))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported ByteLevel pre-tokenizer options");
    return QWEN_OK;
}

static int32_t *ids_of_special(json_t *specials, const char *name, size_t *n, qwen_error **err) {
    json_t *ids = json_object_get(json_object_get(specials, name), "ids");
    if (!json_is_array(ids)) {
        qwen_fail(err, QWEN_ERR_FORMAT, "post_processor: special token '%s' has no ids", name);
        return NULL;
    }
    *n = json_array_size(ids);
    int32_t *out = malloc((*n ? *n : 1) * sizeof *out);
    for (size_t i = 0; out && i < *n; i++) out[i] = (int32_t)json_integer_value(json_array_get(ids, i));
    return out;
}

/* Reads a TemplateProcessing "single" template: specials before and after the sequence "A". */
static qwen_status load_template_processing(qwen_tokenizer *tok, json_t *pp, qwen_error **err) {
    json_t *single = json_object_get(pp, "single"), *specials = json_object_get(pp, "special_tokens"), *item;
    size_t i;
    bool seen_seq = false;
    if (!json_is_array(single)) return qwen_fail(err, QWEN_ERR_FORMAT, "TemplateProcessing without 'single'");
    json_array_foreach(single, i, item) {
        if (json_object_get(item, "Sequence")) {
            seen_seq = true;
            continue;
        }
        json_t *st = json_object_get(json_object_get(item, "SpecialToken"), "id");
        if (!json_is_string(st)) return qwen_fail(err, QWEN_ERR_FORMAT, "TemplateProcessing: malformed template item");
        size_t n;
        int32_t *ids = ids_of_special(specials, json_string_value(st), &n, err);
        if (!ids) return QWEN_ERR_FORMAT;
        int32_t **dst = seen_seq ? &tok->post_suffix : &tok->post_prefix;
        size_t *dn = seen_seq ? &tok->n_post_suffix : &tok->n_post_prefix;
        int32_t *grown = realloc(*dst, (*dn + n + 1) * sizeof **dst);
        if (!grown) { free(ids); return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); }
        memcpy(grown + *dn, ids, n * sizeof *ids);
        *dst = grown;
        *dn += n;
        free(ids);
    }
    return QWEN_OK;
}

static qwen_status load_post_processor(qwen_tokenizer *tok, json_t *pp, qwen_error **err) {
    if (!pp || json_is_null(pp)) return QWEN_OK;
    const char *t = type_of(pp);
    if (!strcmp(t, "ByteLevel")) return QWEN_OK; /* only adjusts offsets */
    if (!strcmp(t, "TemplateProcessing")) return load_template_processing(tok, pp, err);
    if (!strcmp(t, "Sequence")) {
        json_t *list = json_object_get(pp, "processors"), *item;
        size_t i;
        json_array_foreach(list, i, item) if (load_post_processor(tok, item, err)) return QWEN_ERR_UNSUPPORTED;
        return QWEN_OK;
    }
    return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported post_processor type '%s'", t);
}

/* Makes sure id `id` fits in the id tables, growing them geometrically. */
static qwen_status ensure_id(qwen_tokenizer *tok, json_int_t id, qwen_error **err) {
    if (id < 0 || id >= (1 << 24)) return qwen_fail(err, QWEN_ERR_FORMAT, "token id %lld out of range", (long long)id);
    if (id < tok->n_ids) return QWEN_OK;
    if (id >= tok->id_cap) {
        int32_t cap = tok->id_cap ? tok->id_cap : 1024;
        while (cap <= id) cap *= 2;
        const char **b = realloc(tok->id_bytes, (size_t)cap * sizeof *b);
        if (b) tok->id_bytes = b;
        uint32_t *l = realloc(tok->id_len, (size_t)cap * sizeof *l);
        if (l) tok->id_len = l;
        uint8_t *s = realloc(tok->id_special, (size_t)cap);
        if (s) tok->id_special = s;
        if (!b || !l || !s) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
        tok->id_cap = cap;
    }
    for (int32_t i = tok->n_ids; i <= id; i++) {
        tok->id_bytes[i] = NULL;
        tok->id_len[i] = 0;
        tok->id_special[i] = 0;
    }
    tok->n_ids = (int32_t)id + 1;
    return QWEN_OK;
}

/* State shared by the vocab and merge readers (jansson or the text scanner). */
typedef struct loader {
    qwen_tokenizer *tok;
    int16_t char_to_byte[512]; /* byte-level code point -> byte, -1 for others */
    qwen_error **err;
} loader;

static void loader_init(loader *ld, qwen_tokenizer *tok, qwen_error **err) {
    ld->tok = tok;
    ld->err = err;
    for (int i = 0; i < 512; i++) ld->char_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) ld->char_to_byte[byte_level_char((unsigned char)b)] = (int16_t)b;
    for (int b = 0; b < 256; b++) tok->byte_id[b] = -1;
}

/* One vocab entry: a byte-level token string and its id. Returns non-zero (with *err) on failure. */
static int vocab_add(void *user, const char *key, size_t klen, long long id) {
    loader *ld = user;
    qwen_tokenizer *tok = ld->tok;
    char buf[1024];
    size_t blen;
    if (klen > sizeof buf || !byte_level_decode(ld->char_to_byte, key, klen, buf, &blen))
        return qwen_fail(ld->err, QWEN_ERR_FORMAT, "vocab entry '%.40s' is not a byte-level token", key);
    if (ensure_id(tok, id, ld->err)) return QWEN_ERR_FORMAT;
    char *bytes = arena_strndup(&tok->strings, buf, blen);
    if (!bytes || !strmap_put(&tok->vocab, bytes, blen, (uint32_t)id)) return qwen_fail(ld->err, QWEN_ERR_NOMEM, "out of memory");
    tok->id_bytes[id] = bytes;
    tok->id_len[id] = (uint32_t)blen;
    if (blen == 1) tok->byte_id[(unsigned char)bytes[0]] = (int32_t)id;
    return 0;
}

static qwen_status check_byte_tokens(const loader *ld) {
    for (int b = 0; b < 256; b++)
        if (ld->tok->byte_id[b] < 0) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "vocab lacks a token for byte 0x%02x", b);
    return QWEN_OK;
}

static qwen_status load_vocab(loader *ld, json_t *vocab) {
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val)) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "vocab entry '%.40s' has no integer id", key);
        if (vocab_add(ld, key, strlen(key), json_integer_value(val))) return QWEN_ERR_FORMAT;
    }
    return check_byte_tokens(ld);
}

/* Looks up the id of a byte-level token string from merges. */
static int32_t vocab_id_of(const loader *ld, const char *s, size_t len) {
    char buf[1024];
    size_t blen;
    uint32_t id;
    if (len > sizeof buf || !byte_level_decode(ld->char_to_byte, s, len, buf, &blen)) return -1;
    return strmap_get(&ld->tok->vocab, buf, blen, &id) ? (int32_t)id : -1;
}

/* Sizes the merge table for n merges (at most half full). */
static qwen_status merges_init(loader *ld, size_t n) {
    qwen_tokenizer *tok = ld->tok;
    tok->merge_cap = 64;
    while (tok->merge_cap < 2 * n) tok->merge_cap *= 2;
    tok->merges = malloc(tok->merge_cap * sizeof *tok->merges);
    if (!tok->merges) return qwen_fail(ld->err, QWEN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < tok->merge_cap; i++) tok->merges[i].pair = UINT64_MAX;
    return QWEN_OK;
}

/* One merge "a b" of rank `rank`. Returns non-zero (with *err) on failure. */
static int merge_add(void *user, const char *a, size_t alen, const char *b, size_t blen, long rank) {
    loader *ld = user;
    char joined[2048];
    if (alen + blen > sizeof joined) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "merge %ld is too long", rank);
    memcpy(joined, a, alen);
    memcpy(joined + alen, b, blen);
    int32_t ia = vocab_id_of(ld, a, alen), ib = vocab_id_of(ld, b, blen), ij = vocab_id_of(ld, joined, alen + blen);
    if (ia < 0 || ib < 0 || ij < 0)
        return qwen_fail(ld->err, QWEN_ERR_FORMAT, "merge %ld ('%.*s' '%.*s') uses a token missing from the vocab", rank,
                         (int)(alen > 40 ? 40 : alen), a, (int)(blen > 40 ? 40 : blen), b);
    bpe_merge_put(ld->tok, ia, ib, (uint32_t)rank, ij);
    return 0;
}

static qwen_status load_merges(loader *ld, json_t *merges) {
    if (!json_is_array(merges)) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "model.merges is not a list");
    size_t n = json_array_size(merges);
    if (merges_init(ld, n)) return QWEN_ERR_NOMEM;
    for (size_t r = 0; r < n; r++) {
        json_t *m = json_array_get(merges, r);
        const char *a, *b;
        size_t alen, blen;
        if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
            json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            alen = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            blen = json_string_length(json_array_get(m, 1));
        } else if (json_is_string(m) && strchr(json_string_value(m), ' ')) {
            a = json_string_value(m);
            const char *sp = strchr(a, ' ');
            alen = (size_t)(sp - a);
            b = sp + 1;
            blen = strlen(b);
        } else {
            return qwen_fail(ld->err, QWEN_ERR_FORMAT, "merge %zu is malformed", r);
        }
        if (merge_add(ld, a, alen, b, blen, (long)r)) return QWEN_ERR_FORMAT;
    }
    return QWEN_OK;
}

/* The same from the raw text (json_scan.c). */
static qwen_status load_vocab_and_merges_fast(loader *ld, const char *text, tj_span vocab, tj_span merges) {
    if (tj_each_vocab(text, vocab, vocab_add, ld) < 0) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "model.vocab is malformed");
    if (check_byte_tokens(ld)) return QWEN_ERR_FORMAT;
    long n = tj_count_elements(text, merges);
    if (n < 0) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "model.merges is malformed");
    if (merges_init(ld, (size_t)n)) return QWEN_ERR_NOMEM;
    if (tj_each_merge(text, merges, merge_add, ld) != n) return qwen_fail(ld->err, QWEN_ERR_FORMAT, "model.merges is malformed");
    return QWEN_OK;
}

static int added_longest_first(const void *x, const void *y) {
    const added_token *a = x, *b = y;
    return a->len < b->len ? 1 : a->len > b->len ? -1 : (a->id > b->id) - (a->id < b->id);
}

static qwen_status load_added_tokens(qwen_tokenizer *tok, json_t *list, qwen_error **err) {
    if (!list || json_is_null(list)) return QWEN_OK;
    if (!json_is_array(list)) return qwen_fail(err, QWEN_ERR_FORMAT, "added_tokens is not a list");
    size_t n = json_array_size(list), i;
    tok->added = calloc(n ? n : 1, sizeof *tok->added);
    if (!tok->added) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *id = json_object_get(item, "id"), *content = json_object_get(item, "content");
        if (!json_is_integer(id) || !json_is_string(content) || json_string_length(content) == 0)
            return qwen_fail(err, QWEN_ERR_FORMAT, "added token %zu needs an integer id and non-empty content", i);
        if (ensure_id(tok, json_integer_value(id), err)) return QWEN_ERR_FORMAT;
        added_token *t = &tok->added[tok->n_added++];
        t->len = json_string_length(content);
        t->content = arena_strndup(&tok->strings, json_string_value(content), t->len);
        if (!t->content) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
        t->id = (int32_t)json_integer_value(id);
        t->special = json_is_true(json_object_get(item, "special"));
        t->lstrip = json_is_true(json_object_get(item, "lstrip"));
        t->rstrip = json_is_true(json_object_get(item, "rstrip"));
        t->single_word = json_is_true(json_object_get(item, "single_word"));
        t->normalized = json_is_true(json_object_get(item, "normalized"));
        tok->id_bytes[t->id] = t->content;
        tok->id_len[t->id] = (uint32_t)t->len;
        tok->id_special[t->id] = t->special;
        tok->added_first_byte[(unsigned char)t->content[0]] = true;
    }
    qsort(tok->added, tok->n_added, sizeof *tok->added, added_longest_first);
    return QWEN_OK;
}

/* Fills tok from the parsed document. With `text` non-NULL, model.vocab and model.merges are read
 * from those spans of the raw text (the parsed document holds empty placeholders there). */
static qwen_status tokenizer_load_json(qwen_tokenizer *tok, json_t *root, const char *text, tj_span vocab_span,
                                       tj_span merges_span, qwen_error **err) {
    if (!json_is_object(root)) return qwen_fail(err, QWEN_ERR_FORMAT, "the top level is not an object");
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return qwen_fail(err, QWEN_ERR_FORMAT, "no 'model' object");
    json_t *mtype = json_object_get(model, "type");
    if (mtype && (!json_is_string(mtype) || strcmp(json_string_value(mtype), "BPE")))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported model type '%s' (qwenc supports byte-level BPE)",
                         json_is_string(mtype) ? json_string_value(mtype) : "?");
    if (json_is_true(json_object_get(model, "byte_fallback")))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "BPE byte_fallback is not supported");
    if (json_is_true(json_object_get(model, "ignore_merges")))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "BPE ignore_merges is not supported");
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return qwen_fail(err, QWEN_ERR_FORMAT, "model.vocab is not an object");
    qwen_status st;
    if ((st = check_normalizer(json_object_get(root, "normalizer"), err))) return st;
    if ((st = check_pre_tokenizer(json_object_get(root, "pre_tokenizer"), err))) return st;
    json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec) && strcmp(type_of(dec), "ByteLevel"))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "unsupported decoder type '%s'", type_of(dec));
    loader ld;
    loader_init(&ld, tok, err);
    if (text) {
        if ((st = load_vocab_and_merges_fast(&ld, text, vocab_span, merges_span))) return st;
    } else {
        if ((st = load_vocab(&ld, vocab))) return st;
        if ((st = load_merges(&ld, json_object_get(model, "merges")))) return st;
    }
    if ((st = load_added_tokens(tok, json_object_get(root, "added_tokens"), err))) return st;
    if ((st = load_post_processor(tok, json_object_get(root, "post_processor"), err))) return st;
    for (size_t i = 0; i < tok->n_post_prefix; i++)
        if (tok->post_prefix[i] < 0 || tok->post_prefix[i] >= tok->n_ids) return qwen_fail(err, QWEN_ERR_FORMAT, "post_processor id out of range");
    for (size_t i = 0; i < tok->n_post_suffix; i++)
        if (tok->post_suffix[i] < 0 || tok->post_suffix[i] >= tok->n_ids) return qwen_fail(err, QWEN_ERR_FORMAT, "post_processor id out of range");
    tok->bpe_is_self = calloc((size_t)tok->n_ids, sizeof *tok->bpe_is_self);
    if (!tok->bpe_is_self) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    tok->cp_class = unicode_class_table();
    if (!tok->cp_class) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    return QWEN_OK;
}

qwen_tokenizer *qwen_tokenizer_open(const char *path, qwen_error **err) {
    if (!path) {
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "no tokenizer path given");
        return NULL;
    }
    char *file = file_is_dir(path) ? path_join(path, "tokenizer.json") : strdup(path);
    if (!file) {
        qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t len;
    char *text = file_read_all(file, &len, err);
    qwen_tokenizer *tok = NULL;
    if (text) {
        /* jansson parses everything but the vocab and merges, which are blanked out (same length, so
         * error positions still match the file) and read straight from the text */
        tj_span vocab = { 0, 0 }, merges = { 0, 0 };
        char *rest = NULL;
        bool fast = tj_find_spans(text, len, &vocab, &merges) && (rest = malloc(len + 1));
        if (fast) {
            memcpy(rest, text, len + 1);
            memset(rest + vocab.begin, ' ', vocab.end - vocab.begin);
            memcpy(rest + vocab.begin, "{}", 2);
            memset(rest + merges.begin, ' ', merges.end - merges.begin);
            memcpy(rest + merges.begin, "[]", 2);
        }
        json_t *root = json_load_text(fast ? rest : text, len, file, err);
        free(rest);
        if (root) {
            tok = calloc(1, sizeof *tok);
            if (!tok) {
                qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
            } else if (tokenizer_load_json(tok, root, fast ? text : NULL, vocab, merges, err)) {
                qwen_error_prefix(err, "%s: ", file);
                qwen_tokenizer_close(tok);
                tok = NULL;
            }
            json_decref(root);
        }
        free(text);
    }
    free(file);
    return tok;
}

void qwen_tokenizer_close(qwen_tokenizer *tok) {
    if (!tok) return;
    free(tok->id_bytes);
    free(tok->id_len);
    free(tok->id_special);
    strmap_free(&tok->vocab);
    free(tok->merges);
    free(tok->added);
    free(tok->post_prefix);
    free(tok->post_suffix);
    free(tok->cp_class);
    free((void *)tok->bpe_is_self);
    arena_free(&tok->strings);
    free(tok);
}

int32_t qwen_tokenizer_vocab_size(const qwen_tokenizer *tok) { return tok ? tok->n_ids : 0; }

const char *qwen_token_bytes(const qwen_tokenizer *tok, int32_t id, size_t *len) {
    if (!tok || id < 0 || id >= tok->n_ids || !tok->id_bytes[id]) return NULL;
    if (len) *len = tok->id_len[id];
    return tok->id_bytes[id];
}

bool qwen_token_is_special(const qwen_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n_ids && tok->id_special[id];
}

int32_t qwen_token_id(const qwen_tokenizer *tok, const char *text, size_t len) {
    if (!tok || !text) return -1;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == len && !memcmp(tok->added[i].content, text, len)) return tok->added[i].id;
    uint32_t id;
    return strmap_get(&tok->vocab, text, len, &id) ? (int32_t)id : -1;
}
