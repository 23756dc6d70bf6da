/* Every case of golden/tokenizer/qwen3-parity.jsonl: encode gives exactly the reference ids, and
 * decoding the reference ids gives back the NFC form of the text. */
#include <string.h>
#include <jansson.h>
#include <utf8proc.h>

#include "harness.h"
#include "qwenc.h"

int main(void) {
    char *model = golden_path("models/qwen3-tiny");
    char *cases = golden_path("tokenizer/qwen3-parity.jsonl");
    qwen_error *err = NULL;
    qwen_tokenizer *tok = qwen_tokenizer_open(model, &err);
    REQUIRE(tok, "open %s: %s", model, qwen_error_message(err));
    FILE *f = fopen(cases, "r");
    REQUIRE(f, "open %s", cases);
    char *line = NULL;
    size_t cap = 0, n_cases = 0, shown = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *c = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &je);
        REQUIRE(c, "bad case line: %s", je.text);
        json_t *text = json_object_get(c, "text"), *want = json_object_get(c, "ids");
        n_cases++;
        int32_t *ids;
        size_t n;
        qwen_status st = qwen_tokenize(tok, json_string_value(text), json_string_length(text), NULL, &ids, &n, &err);
        CHECK(st == QWEN_OK, "case %zu: %s", n_cases, qwen_error_message(err));
        if (st == QWEN_OK) {
            int same = n == json_array_size(want);
            for (size_t i = 0; same && i < n; i++) same = ids[i] == json_integer_value(json_array_get(want, i));
            CHECK(same, "case %zu: ids differ for text %.80s", n_cases, json_string_value(text));
            if (!same && shown++ < 5) {
                fprintf(stderr, "  got: ");
                for (size_t i = 0; i < n; i++) fprintf(stderr, "%d ", ids[i]);
                fprintf(stderr, "\n  want: ");
                for (size_t i = 0; i < json_array_size(want); i++) fprintf(stderr, "%lld ", json_integer_value(json_array_get(want, i)));
                fprintf(stderr, "\n");
            }
            free(ids);
        }
        qwen_error_free(err);
        err = NULL;

        /* decode(expected ids) == NFC(text) */
        size_t nw = json_array_size(want);
        int32_t *wids = malloc((nw + 1) * sizeof *wids);
        for (size_t i = 0; i < nw; i++) wids[i] = (int32_t)json_integer_value(json_array_get(want, i));
        char *dec;
        size_t dlen;
        st = qwen_detokenize(tok, wids, nw, false, &dec, &dlen, &err);
        CHECK(st == QWEN_OK, "case %zu: decode: %s", n_cases, qwen_error_message(err));
        if (st == QWEN_OK) {
            utf8proc_uint8_t *nfc = NULL;
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)json_string_value(text),
                                              (utf8proc_ssize_t)json_string_length(text), &nfc,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            CHECK(m >= 0 && (size_t)m == dlen && memcmp(nfc, dec, dlen) == 0, "case %zu: decode differs from NFC(text)", n_cases);
            free(nfc);
            free(dec);
        }
        qwen_error_free(err);
        err = NULL;
        free(wids);
        json_decref(c);
    }
    free(line);
    fclose(f);
    CHECK(n_cases == 1989, "expected 1989 cases, read %zu", n_cases);
    qwen_tokenizer_close(tok);
    free(model);
    free(cases);
    return test_finish("tokenizer_parity");
}
