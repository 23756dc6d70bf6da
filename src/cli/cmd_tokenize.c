/* qwenc tokenize / detokenize */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cli/cli.h"
#include "base/file.h"
#include "base/error.h"

/* Steps *at through [*at, end) a line at a time: true with the next line (without its '\n') in
 * *line and *line_len and its 1-based number in *line_no, false at the end. */
static bool next_line(const char **at, const char *end, const char **line, size_t *line_len, size_t *line_no) {
    if (*at >= end) return false;
    const char *nl = memchr(*at, '\n', (size_t)(end - *at));
    *line = *at;
    *line_len = nl ? (size_t)(nl - *at) : (size_t)(end - *at);
    *at = nl ? nl + 1 : end;
    ++*line_no;
    return true;
}

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: qwenc tokenize -m MODEL [--jsonl] [--no-special] [--no-post]\n\n"
               "Reads UTF-8 text on stdin and prints its token ids as one JSON array.\n"
               "  -m MODEL      model directory (with tokenizer.json) or hub repo id\n"
               "  --jsonl       read lines {\"text\": \"...\"}; print one JSON array per line\n"
               "  --no-special  treat added/special token strings in the text as plain text\n"
               "  --no-post     do not add the post-processor's tokens\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int jsonl = 0;
    qwen_encode_opts opts = { 0 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { tokenize_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--model", &model)) {}
        else if (!strcmp(argv[i], "--jsonl")) jsonl = 1;
        else if (!strcmp(argv[i], "--no-special")) opts.no_added_tokens = true;
        else if (!strcmp(argv[i], "--no-post")) opts.no_post_processor = true;
        else { fprintf(stderr, "qwenc tokenize: unknown option '%s'\n", argv[i]); tokenize_usage(stderr); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc tokenize: -m MODEL is required\n"); tokenize_usage(stderr); return 2; }
    qwen_error *err = NULL;
    qwen_tokenizer *tok = cli_open_tokenizer(model, &err);
    if (!tok) return cli_fail("tokenize", err);
    size_t len;
    char *input = file_read_stream(stdin, &len);
    if (!input) { qwen_tokenizer_close(tok); fprintf(stderr, "qwenc tokenize: out of memory\n"); return 1; }
    int rc = 0;
    int32_t *ids;
    size_t n;
    if (!jsonl) {
        if (qwen_tokenize(tok, input, len, &opts, &ids, &n, &err)) rc = cli_fail("tokenize", err);
        else { cli_print_ids(stdout, ids, n); free(ids); }
    } else {
        const char *at = input, *line;
        size_t line_len, line_no = 0;
        while (rc == 0 && next_line(&at, input + len, &line, &line_len, &line_no)) {
            if (line_len == 0) continue;
            json_error_t je;
            json_t *obj = json_loadb(line, line_len, JSON_ALLOW_NUL, &je);
            json_t *text = json_object_get(obj, "text");
            if (!json_is_string(text)) {
                fprintf(stderr, "qwenc tokenize: line %zu: expected {\"text\": \"...\"}%s%s\n", line_no,
                        obj ? "" : ": ", obj ? "" : je.text);
                rc = 1;
            } else if (qwen_tokenize(tok, json_string_value(text), json_string_length(text), &opts, &ids, &n, &err)) {
                qwen_error_prefix(&err, "line %zu: ", line_no);
                rc = cli_fail("tokenize", err);
            } else {
                cli_print_ids(stdout, ids, n);
                free(ids);
            }
            json_decref(obj);
        }
    }
    free(input);
    qwen_tokenizer_close(tok);
    return rc;
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: qwenc detokenize -m MODEL [--jsonl] [--skip-special]\n\n"
               "Reads a JSON array of token ids on stdin and prints the text they decode to (bytes that are\n"
               "not valid UTF-8 become U+FFFD, one per maximal ill-formed subsequence, as HF tokenizers has it).\n"
               "  -m MODEL        model directory (with tokenizer.json) or hub repo id\n"
               "  --jsonl         read one JSON array per line; print one line {\"text\": \"...\"} for each\n"
               "  --skip-special  leave special tokens out\n");
}

/* The token ids of a JSON array, malloc'ed in *ids (n in *n). Returns false after printing which
 * element is not an id (where: "" or "line N: "), or when out of memory. */
static bool ids_from_json(const json_t *arr, const char *where, int32_t **ids, size_t *n) {
    *n = json_array_size(arr);
    *ids = malloc((*n ? *n : 1) * sizeof **ids);
    if (!*ids) { fprintf(stderr, "qwenc detokenize: out of memory\n"); return false; }
    for (size_t i = 0; i < *n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
            fprintf(stderr, "qwenc detokenize: %selement %zu is not a token id\n", where, i);
            free(*ids);
            *ids = NULL;
            return false;
        }
        (*ids)[i] = (int32_t)json_integer_value(v);
    }
    return true;
}

/* Decodes the JSON array of ids in json[0..len) and prints the text: raw, or (as_json) as one line
 * {"text": ...}. Returns the exit status; errors go to stderr, prefixed with `where`. */
static int detokenize_one(const qwen_tokenizer *tok, const char *json, size_t len, const char *where, bool skip_special, bool as_json) {
    json_error_t je;
    json_t *arr = json_loadb(json, len, 0, &je);
    int32_t *ids = NULL;
    size_t n, tlen;
    char *text;
    qwen_error *err = NULL;
    int rc = 0;
    if (!json_is_array(arr)) {
        fprintf(stderr, "qwenc detokenize: %s%s must be a JSON array of token ids\n", where, as_json ? "the line" : "stdin");
        rc = 1;
    } else if (!ids_from_json(arr, where, &ids, &n)) {
        rc = 1;
    } else if (qwen_detokenize(tok, ids, n, skip_special, &text, &tlen, &err)) {
        qwen_error_prefix(&err, "%s", where);
        rc = cli_fail("detokenize", err);
    } else if (as_json) {
        json_t *obj = json_pack("{s:s%}", "text", text, tlen);
        char *out = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (out) printf("%s\n", out);
        else rc = cli_fail("detokenize", NULL);
        free(out);
        json_decref(obj);
        free(text);
    } else {
        fwrite(text, 1, tlen, stdout);
        free(text);
    }
    free(ids);
    json_decref(arr);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    bool skip_special = false, jsonl = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { detokenize_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--model", &model)) {}
        else if (!strcmp(argv[i], "--skip-special")) skip_special = true;
        else if (!strcmp(argv[i], "--jsonl")) jsonl = true;
        else { fprintf(stderr, "qwenc detokenize: unknown option '%s'\n", argv[i]); detokenize_usage(stderr); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc detokenize: -m MODEL is required\n"); detokenize_usage(stderr); return 2; }
    qwen_error *err = NULL;
    qwen_tokenizer *tok = cli_open_tokenizer(model, &err);
    if (!tok) return cli_fail("detokenize", err);
    size_t len;
    char *input = file_read_stream(stdin, &len);
    if (!input) { qwen_tokenizer_close(tok); fprintf(stderr, "qwenc detokenize: out of memory\n"); return 1; }
    int rc = 0;
    if (!jsonl) rc = detokenize_one(tok, input, len, "", skip_special, false);
    const char *at = input, *line;
    size_t line_len, line_no = 0;
    while (jsonl && rc == 0 && next_line(&at, input + len, &line, &line_len, &line_no)) { /* each non-empty line */
        char where[32];
        snprintf(where, sizeof where, "line %zu: ", line_no);
        if (line_len > 0) rc = detokenize_one(tok, line, line_len, where, skip_special, true);
    }
    free(input);
    qwen_tokenizer_close(tok);
    return rc;
}
