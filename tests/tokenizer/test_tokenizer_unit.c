/* Tokenizer behaviour beyond the parity file: options, post-processor, bad input, streaming. */
#include <string.h>
#include <jansson.h>
#include <unistd.h>
#include <utf8proc.h>

#include "harness.h"
#include "qwenc.h"
#include "tokenizer/tokenizer.h"

static qwen_tokenizer *tok;

static int encode_eq(const char *text, const qwen_encode_opts *opts, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    qwen_error *err = NULL;
    if (qwen_tokenize(tok, text, strlen(text), opts, &ids, &n, &err)) {
        fprintf(stderr, "encode failed: %s\n", qwen_error_message(err));
        qwen_error_free(err);
        return 0;
    }
    int same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        fprintf(stderr, "got:");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return same;
}

static void test_added_tokens(void) {
    const int32_t special[] = { 151644, 872, 198 };
    CHECK(encode_eq("<|im_start|>user\n", NULL, special, 3), "special token matched in text");
    /* As plain text the marker is split by the pre-tokenizer and BPE like any other text. */
    qwen_encode_opts plain = { .no_added_tokens = true };
    int32_t *ids;
    size_t n;
    REQUIRE(qwen_tokenize(tok, "<|im_start|>", 12, &plain, &ids, &n, NULL) == QWEN_OK, "encode");
    CHECK(n > 1, "plain-text mode must not produce the special id (got %zu ids)", n);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != 151644, "special id leaked in plain mode");
    char *text;
    size_t len;
    REQUIRE(qwen_detokenize(tok, ids, n, false, &text, &len, NULL) == QWEN_OK, "decode");
    CHECK(len == 12 && !memcmp(text, "<|im_start|>", 12), "plain-text round trip");
    free(text);
    free(ids);
    CHECK(qwen_token_id(tok, "<think>", 7) == 151667, "added token lookup");
    CHECK(!qwen_token_is_special(tok, 151667) && qwen_token_is_special(tok, 151645), "special flags");
    /* skip_special drops special tokens but keeps non-special added ones. */
    const int32_t mixed[] = { 151644, 151667, 9707 };
    REQUIRE(qwen_detokenize(tok, mixed, 3, true, &text, &len, NULL) == QWEN_OK, "decode");
    CHECK(!strcmp(text, "<think>Hello"), "skip_special decode gave '%s'", text);
    free(text);
}

static void test_invalid_input(void) {
    int32_t *ids;
    size_t n;
    qwen_error *err = NULL;
    const char bad[] = "ok\xff\xfe";
    CHECK(qwen_tokenize(tok, bad, 4, NULL, &ids, &n, &err) == QWEN_ERR_INVALID_ARG, "invalid UTF-8 refused");
    CHECK(err && strstr(qwen_error_message(err), "offset 2"), "error names the offset: %s", qwen_error_message(err));
    qwen_error_free(err);
    err = NULL;
    const char truncated[] = "abc\xe4\xbd";
    CHECK(qwen_tokenize(tok, truncated, 5, NULL, &ids, &n, &err) == QWEN_ERR_INVALID_ARG, "truncated UTF-8 refused");
    qwen_error_free(err);
    err = NULL;
    const char nul[] = "a\0b";
    CHECK(qwen_tokenize(tok, nul, 3, NULL, &ids, &n, &err) == QWEN_OK && n >= 1, "embedded NUL encodes");
    if (!err) free(ids);
    qwen_error_free(err);
    err = NULL;
    const int32_t unknown[] = { 9707, 151660 + 1000 };
    char *text;
    size_t len;
    CHECK(qwen_detokenize(tok, unknown, 2, false, &text, &len, &err) == QWEN_ERR_INVALID_ARG, "unknown id refused");
    qwen_error_free(err);
}

static void test_stream_decoder(void) {
    /* "你好" is one token; split "好" bytes across tokens via byte tokens to exercise holding back. */
    const char *s = "héllo 你好 🙂!";
    int32_t *ids;
    size_t n;
    REQUIRE(qwen_tokenize(tok, s, strlen(s), NULL, &ids, &n, NULL) == QWEN_OK, "encode");
    qwen_stream_decoder *sd = qwen_stream_decoder_new(tok, false);
    char joined[256] = "";
    for (size_t i = 0; i < n; i++) {
        char *piece;
        REQUIRE(qwen_stream_decoder_push(sd, ids[i], &piece, NULL) == QWEN_OK, "push");
        /* every piece must itself be complete UTF-8 */
        size_t pl = strlen(piece);
        CHECK(pl == 0 || (((unsigned char)piece[pl - 1]) < 0x80 || (((unsigned char)piece[pl - 1]) & 0xC0) == 0x80), "piece boundary");
        strcat(joined, piece);
        free(piece);
    }
    char *rest = qwen_stream_decoder_flush(sd);
    strcat(joined, rest);
    free(rest);
    CHECK(!strcmp(joined, s), "streamed text '%s'", joined);
    qwen_stream_decoder_free(sd);
    free(ids);

    /* The emoji's 4 bytes fed one byte-token at a time come out only when complete. */
    sd = qwen_stream_decoder_new(tok, false);
    const unsigned char emoji[4] = { 0xF0, 0x9F, 0x99, 0x82 };
    for (int i = 0; i < 4; i++) {
        int32_t id = qwen_token_id(tok, (const char *)emoji + i, 1);
        REQUIRE(id >= 0, "byte token");
        char *piece;
        REQUIRE(qwen_stream_decoder_push(sd, id, &piece, NULL) == QWEN_OK, "push");
        CHECK(i < 3 ? piece[0] == 0 : !memcmp(piece, emoji, 4), "byte %d: id %d, piece of %zu bytes", i, id, strlen(piece));
        free(piece);
    }
    /* A lone continuation byte is invalid forever: U+FFFD at once. */
    char *piece;
    qwen_stream_decoder_push(sd, qwen_token_id(tok, "\x80", 1), &piece, NULL);
    CHECK(!strcmp(piece, "\xEF\xBF\xBD"), "invalid byte becomes U+FFFD");
    free(piece);
    qwen_stream_decoder_free(sd);

    /* Ill-formed bytes become one U+FFFD per maximal subpart, as HF tokenizers' decode (Rust's
     * from_utf8_lossy) has them: the whole text and the streamed pieces alike. */
    static const struct { const char *bytes, *text; } lossy[] = {
        { "\xEF\xB6.", "\xEF\xBF\xBD." },                     /* a 3-byte character cut after 2 */
        { "\xE0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD" },          /* E0 needs A0..BF next: two subparts */
        { "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" }, /* a surrogate: three */
        { "\xF4\x90", "\xEF\xBF\xBD\xEF\xBF\xBD" },          /* above U+10FFFF */
        { "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD" },          /* overlong lead */
        { "a\xF0\x9F\x99", "a\xEF\xBF\xBD" },                 /* cut at the end: one, at flush */
        { "\xF0\x9F\x99\x82\x82", "\xF0\x9F\x99\x82\xEF\xBF\xBD" },
    };
    for (size_t c = 0; c < sizeof lossy / sizeof *lossy; c++) {
        int32_t bytes_ids[8];
        size_t nb = strlen(lossy[c].bytes);
        for (size_t i = 0; i < nb; i++) REQUIRE((bytes_ids[i] = qwen_token_id(tok, lossy[c].bytes + i, 1)) >= 0, "byte token");
        char *text;
        size_t len;
        REQUIRE(qwen_detokenize(tok, bytes_ids, nb, false, &text, &len, NULL) == QWEN_OK, "decode");
        CHECK(len == strlen(lossy[c].text) && !strcmp(text, lossy[c].text), "lossy case %zu: detokenize", c);
        free(text);
        sd = qwen_stream_decoder_new(tok, false);
        char streamed[64] = "";
        for (size_t i = 0; i < nb; i++) {
            REQUIRE(qwen_stream_decoder_push(sd, bytes_ids[i], &piece, NULL) == QWEN_OK, "push");
            strcat(streamed, piece);
            free(piece);
        }
        rest = qwen_stream_decoder_flush(sd);
        strcat(streamed, rest);
        free(rest);
        qwen_stream_decoder_free(sd);
        CHECK(!strcmp(streamed, lossy[c].text), "lossy case %zu: streamed", c);
    }
}

static void test_post_processor(void) {
    char *dir = golden_path("models/qwen3-embedding-tiny");
    qwen_tokenizer *emb = qwen_tokenizer_open(dir, NULL);
    REQUIRE(emb, "open embedding tokenizer");
    int32_t *ids;
    size_t n;
    REQUIRE(qwen_tokenize(emb, "Hello world", 11, NULL, &ids, &n, NULL) == QWEN_OK, "encode");
    CHECK(n == 3 && ids[0] == 9707 && ids[1] == 1879 && ids[2] == 151643, "TemplateProcessing appends <|endoftext|>");
    free(ids);
    qwen_encode_opts raw = { .no_post_processor = true };
    REQUIRE(qwen_tokenize(emb, "Hello world", 11, &raw, &ids, &n, NULL) == QWEN_OK, "encode");
    CHECK(n == 2, "no_post_processor skips it");
    free(ids);
    qwen_tokenizer_close(emb);
    free(dir);
}

static void test_long_unsplittable(void) {
    /* 1 MB of one CJK character and 1 MB of letters: single pre-tokens, BPE must stay n log n. */
    size_t reps = (1 << 20) / 3;
    char *s = malloc(reps * 3 + 1);
    for (size_t i = 0; i < reps; i++) memcpy(s + 3 * i, "\xE4\xBD\xA0", 3); /* 你 */
    int32_t *ids;
    size_t n;
    REQUIRE(qwen_tokenize(tok, s, reps * 3, NULL, &ids, &n, NULL) == QWEN_OK, "encode CJK run");
    char *back;
    size_t blen;
    REQUIRE(qwen_detokenize(tok, ids, n, false, &back, &blen, NULL) == QWEN_OK, "decode");
    CHECK(blen == reps * 3 && !memcmp(back, s, blen), "CJK run round trip");
    free(back);
    free(ids);
    for (size_t i = 0; i < (1 << 20); i++) s[i] = (char)('a' + (i * 7 % 26));
    REQUIRE(qwen_tokenize(tok, s, 1 << 20, NULL, &ids, &n, NULL) == QWEN_OK, "encode letter run");
    CHECK(n > 1000, "letters split into many tokens");
    free(ids);
    free(s);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_bad_files(void) {
    char dir[] = "/tmp/qwenc-tok-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    qwen_error *err = NULL;
    /* missing file */
    CHECK(!qwen_tokenizer_open(dir, &err) && qwen_error_status(err) == QWEN_ERR_IO, "missing file: %s", qwen_error_message(err));
    qwen_error_free(err);
    err = NULL;
    const char *bad[] = {
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {",                  /* truncated */
        "[1, 2, 3]",                                                    /* not an object */
        "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",        /* unknown model type */
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}}}", /* bad id */
        "not json at all",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(path, bad[i]);
        qwen_tokenizer *t = qwen_tokenizer_open(dir, &err);
        CHECK(!t && err && strlen(qwen_error_message(err)) > 0 && !strchr(qwen_error_message(err), '\n'),
              "bad tokenizer.json %zu: %s", i, qwen_error_message(err));
        qwen_tokenizer_close(t);
        qwen_error_free(err);
        err = NULL;
    }
    /* Every truncation of the real file must fail cleanly (sampled). */
    char *real = golden_path("models/qwen3-tiny/tokenizer.json");
    FILE *f = fopen(real, "rb");
    REQUIRE(f, "open real tokenizer.json");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    REQUIRE(fread(buf, 1, (size_t)size, f) == (size_t)size, "read");
    fclose(f);
    for (long cut = 1; cut < size; cut = cut * 3 + 7) {
        FILE *o = fopen(path, "wb");
        fwrite(buf, 1, (size_t)cut, o);
        fclose(o);
        qwen_tokenizer *t = qwen_tokenizer_open(dir, &err);
        CHECK(!t && err, "truncated at %ld must fail", cut);
        qwen_tokenizer_close(t);
        qwen_error_free(err);
        err = NULL;
    }
    /* Corrupted bytes inside the vocab and merges (read by the fast scanner) must not crash. */
    uint64_t x = 7;
    for (int k = 0; k < 8; k++) {
        char *copy = malloc((size_t)size);
        memcpy(copy, buf, (size_t)size);
        for (int flips = 0; flips < 3; flips++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            long at = 2000 + (long)(x % (uint64_t)(size - 4000));
            const char junk[] = "\"\\{}[],:0u";
            copy[at] = junk[x % (sizeof junk - 1)];
        }
        FILE *o = fopen(path, "wb");
        fwrite(copy, 1, (size_t)size, o);
        fclose(o);
        qwen_tokenizer *t = qwen_tokenizer_open(dir, &err);
        CHECK(t || err, "corrupted copy %d: either loads or fails with an error", k);
        qwen_tokenizer_close(t);
        qwen_error_free(err);
        err = NULL;
        free(copy);
    }
    free(buf);
    free(real);
    unlink(path);
    rmdir(dir);
}

/* The same tokenizer re-serialized differently (every non-ASCII character escaped, indented,
 * merges in the older "a b" form) must load and encode identically. */
static void test_reserialized(void) {
    char *src = golden_path("models/qwen3-tiny/tokenizer.json");
    json_t *root = json_load_file(src, 0, NULL);
    REQUIRE(root, "load %s", src);
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges"), *m;
    size_t i;
    json_t *old = json_array();
    json_array_foreach(merges, i, m) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(m, 0)), json_string_value(json_array_get(m, 1)));
        json_array_append_new(old, json_string(buf));
    }
    json_object_set_new(json_object_get(root, "model"), "merges", old);
    char dir[] = "/tmp/qwenc-reser-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    REQUIRE(json_dump_file(root, path, JSON_ENSURE_ASCII | JSON_INDENT(1)) == 0, "write");
    json_decref(root);
    qwen_error *err = NULL;
    qwen_tokenizer *other = qwen_tokenizer_open(dir, &err);
    CHECK(other, "re-serialized tokenizer opens: %s", qwen_error_message(err));
    const char *texts[] = { "Hello world, this is a test.", "你好，世界！今天天气很好。", "  def f(x):\n\treturn x**2  # ok\n",
                            "<|im_start|>user\nHi 🙂<|im_end|>", "Ünïcödé façade naïve 1234567 'll 're" };
    for (size_t t = 0; other && t < sizeof texts / sizeof *texts; t++) {
        int32_t *a, *b;
        size_t na, nb;
        REQUIRE(qwen_tokenize(tok, texts[t], strlen(texts[t]), NULL, &a, &na, NULL) == QWEN_OK, "encode");
        REQUIRE(qwen_tokenize(other, texts[t], strlen(texts[t]), NULL, &b, &nb, NULL) == QWEN_OK, "encode");
        CHECK(na == nb && !memcmp(a, b, na * sizeof *a), "same ids for text %zu", t);
        free(a);
        free(b);
    }
    qwen_tokenizer_close(other);
    qwen_error_free(err);
    unlink(path);
    rmdir(dir);
    free(src);
}

/* Where HF tokenizers' Unicode data is not the linked utf8proc's (scripts/gen_unicode_classes.sh):
 * its regex knows the letters and digits of Unicode 16.0, its NFC only Unicode 9.0. The ids are
 * Hugging Face tokenizers' own (@anush008/tokenizers, the Rust library, on this tokenizer.json). */
static void test_unicode_versions(void) {
    static const struct { const char *text; int32_t ids[12]; size_t n; } cases[] = {
        /* an Egyptian hieroglyph of 16.0 is a letter: "'re" after it is a contraction */
        { u8"\U000134DE're", { 124373, 241, 252, 2299 }, 4 },
        /* a CJK Extension I ideograph (15.1) and an outlined digit (16.0) */
        { u8"a\U0002EBF0're \U0002EBF0a", { 64, 172, 106, 107, 108, 2299, 220, 172, 106, 107, 108, 64 }, 12 },
        { u8"a\U0001CCF0're \U0001CCF0a", { 64, 172, 250, 111, 108, 2299, 220, 172, 250, 111, 108, 64 }, 12 },
        /* U+08D3 (11.0, combining class 220 since) is not reordered before a mark of class 230 */
        { u8"q\u0301\u08D3", { 80, 53839, 156, 96, 241 }, 5 },
        { u8"a\u1DD9\u08D3", { 64, 157, 115, 247, 156, 96, 241 }, 7 },
        /* U+11935 U+11930 (13.0) are not composed into U+11938 */
        { u8"\U00011935\U00011930", { 128240, 97, 113, 128240, 97, 108 }, 6 },
        /* what Unicode 9.0 knows is normalized as before */
        { u8"e\u0301 \u1E0A\u0323", { 963, 86089, 116, 234, 136, 229 }, 6 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK(encode_eq(cases[i].text, NULL, cases[i].ids, cases[i].n), "Unicode case %zu", i);
    /* the generated letter and number ranges agree with utf8proc wherever it knows the code point:
     * they only add what it has unassigned (Debian's 2.8 lacks 15.1 and 16.0) */
    uint8_t *t = unicode_class_table();
    REQUIRE(t, "class table");
    size_t added = 0, disagree = 0;
    for (uint32_t c = 0; c < 0x110000; c++) {
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
        bool letter = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        bool number = cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
        bool t_letter = t[c] & CP_LETTER, t_number = t[c] & CP_NUMBER;
        if (cat == UTF8PROC_CATEGORY_CN) added += t_letter || t_number;
        else disagree += letter != t_letter || number != t_number;
    }
    CHECK(disagree == 0, "%zu code points classed unlike utf8proc", disagree);
    CHECK(added == 0 || strcmp(utf8proc_unicode_version(), "16.0.0") < 0, "utf8proc %s lacks %zu letters and digits", utf8proc_unicode_version(), added);
    CHECK((t[0x134DE] & CP_LETTER) && (t[0x1CCF0] & CP_NUMBER) && (t[0x8D3] & CP_NFC_INERT) && !(t[0x301] & CP_NFC_INERT) && !(t[0x9FFF] & CP_NFC_INERT),
          "class bits of sample code points");
    free(t);
}

int main(void) {
    char *model = golden_path("models/qwen3-tiny");
    qwen_error *err = NULL;
    tok = qwen_tokenizer_open(model, &err);
    REQUIRE(tok, "open %s: %s", model, qwen_error_message(err));
    test_added_tokens();
    test_invalid_input();
    test_stream_decoder();
    test_post_processor();
    test_long_unsplittable();
    test_bad_files();
    test_reserialized();
    test_unicode_versions();
    qwen_tokenizer_close(tok);
    free(model);
    return test_finish("tokenizer_unit");
}
