/* qwenc tokenize / detokenize */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cli/cli.h"
#include "base/file.h"
#include "base/error.h"

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
        size_t line_no = 0;
        for (char *line = input; line < input + len && rc == 0;) {
            char *nl = memchr(line, '\n', (size_t)(input + len - line));
            size_t line_len = nl ? (size_t)(nl - line) : (size_t)(input + len - line);
            line_no++;
            if (line_len > 0) {
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
            line = nl ? nl + 1 : input + len;
        }
    }
    free(input);
    qwen_tokenizer_close(tok);
    return rc;
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: qwenc detokenize -m MODEL [--skip-special]\n\n"
               "Reads a JSON array of token ids on stdin and prints the text they decode to.\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    bool skip_special = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { detokenize_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--model", &model)) {}
        else if (!strcmp(argv[i], "--skip-special")) skip_special = true;
        else { fprintf(stderr, "qwenc detokenize: unknown option '%s'\n", argv[i]); detokenize_usage(stderr); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc detokenize: -m MODEL is required\n"); detokenize_usage(stderr); return 2; }
    qwen_error *err = NULL;
    qwen_tokenizer *tok = cli_open_tokenizer(model, &err);
    if (!tok) return cli_fail("detokenize", err);
    size_t len;
    char *input = file_read_stream(stdin, &len);
    json_error_t je;
    json_t *arr = input ? json_loadb(input, len, 0, &je) : NULL;
    free(input);
    int rc = 0;
    if (!json_is_array(arr)) {
        fprintf(stderr, "qwenc detokenize: stdin must be a JSON array of token ids\n");
        rc = 1;
    } else {
        size_t n = json_array_size(arr);
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        for (size_t i = 0; ids && i < n; i++) {
            json_t *v = json_array_get(arr, i);
            if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
                fprintf(stderr, "qwenc detokenize: element %zu is not a token id\n", i);
                rc = 1;
                break;
            }
            ids[i] = (int32_t)json_integer_value(v);
        }
        char *text;
        size_t tlen;
        if (rc == 0 && ids) {
            if (qwen_detokenize(tok, ids, n, skip_special, &text, &tlen, &err)) rc = cli_fail("detokenize", err);
            else { fwrite(text, 1, tlen, stdout); free(text); }
        }
        free(ids);
    }
    json_decref(arr);
    qwen_tokenizer_close(tok);
    return rc;
}
