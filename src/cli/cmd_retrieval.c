/* qwenc embed / qwenc rerank */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Calls fn for each line of stdin (without its newline or CR), empty ones too, so that the output
 * lines stay aligned with the input's; stops at the first failure. */
static int each_line(int (*fn)(const char *line, size_t len, void *user), void *user) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while (!rc && (got = getline(&line, &cap, stdin)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        rc = fn(line, (size_t)got, user);
    }
    free(line);
    return rc;
}

typedef struct embed_job {
    qwen_model *m;
    int dims;   /* 0: all */
    float *out; /* the model's hidden size */
    size_t line; /* lines read so far */
} embed_job;

static int embed_line(const char *line, size_t len, void *user) {
    embed_job *j = user;
    qwen_error *err = NULL;
    int32_t *ids;
    size_t n;
    j->line++;
    if (qwen_tokenize(qwen_model_tokenizer(j->m), line, len, NULL, &ids, &n, &err)) return cli_fail("embed", err);
    if (n == 0) {
        free(ids);
        fprintf(stderr, "qwenc embed: line %zu is empty and this tokenizer adds no end-of-text token to it: nothing to embed\n", j->line);
        return 1;
    }
    int d = qwen_embed(j->m, ids, n, j->dims, j->out, &err);
    free(ids);
    if (d < 0) return cli_fail("embed", err);
    putchar('[');
    for (int i = 0; i < d; i++) printf(i ? ", %.7g" : "%.7g", j->out[i]);
    puts("]");
    return 0;
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *v;
    embed_job j = { NULL, 0, NULL, 0 };
    int threads = 0;
    bool bf16_prefill = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qwenc embed -m MODEL [--dims N] [-t THREADS] [--bf16-prefill]\n\n"
                   "Embeds each line of stdin (Qwen3-Embedding: last token, final norm, L2-normalised; --dims truncates\n"
                   "Matryoshka-style) and prints one JSON array per line. Queries take the model's instruction format,\n"
                   "e.g. \"Instruct: Given a web search query, retrieve relevant passages that answer the query\\nQuery:...\".\n"
                   "Every line gets its output line, empty ones too.\n\n"
                   "  --dims N          the first N dimensions, normalised again (0, the default: all)\n" CLI_PREFILL_HELP);
            return 0;
        } else if (cli_flag_value(argc, argv, &i, "-m", &model)) {
        } else if (cli_flag_value(argc, argv, &i, "--dims", &v)) {
            if ((j.dims = cli_int("--dims", v)) < 0) { fprintf(stderr, "qwenc embed: --dims wants a whole number from 0 (0: all), not '%s'\n", v); return 2; }
        }
        else if (cli_flag_value(argc, argv, &i, "-t", &v)) threads = cli_int("-t", v);
        else if (!strcmp(argv[i], "--bf16-prefill")) bf16_prefill = true;
        else { fprintf(stderr, "qwenc embed: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc embed: -m MODEL is required\n"); return 2; }
    qwen_error *err = NULL;
    j.m = qwen_model_open(model, &(qwen_model_opts){ .threads = threads, .bf16_prefill = bf16_prefill }, &err);
    if (!j.m) return cli_fail("embed", err);
    int hidden = qwen_model_hidden_size(j.m), rc = 1;
    if (!qwen_model_tokenizer(j.m)) fprintf(stderr, "qwenc embed: the model has no tokenizer\n");
    else if (j.dims > hidden) fprintf(stderr, "qwenc embed: --dims %d is more than the model's %d dimensions\n", j.dims, hidden);
    else if (!(j.out = malloc((size_t)hidden * sizeof *j.out))) fprintf(stderr, "qwenc embed: out of memory\n");
    else rc = each_line(embed_line, &j);
    free(j.out);
    qwen_model_close(j.m);
    return rc;
}

typedef struct rerank_job { qwen_model *m; const char *instruction, *query; } rerank_job;

static int rerank_line(const char *line, size_t len, void *user) {
    (void)len;
    rerank_job *j = user;
    qwen_error *err = NULL;
    double score;
    if (qwen_rerank(j->m, j->instruction, j->query, line, &score, &err)) return cli_fail("rerank", err);
    printf("%.6f\n", score);
    return 0;
}

int cmd_rerank(int argc, char **argv) {
    const char *model = NULL, *v;
    rerank_job j = { NULL, NULL, NULL };
    int threads = 0;
    bool bf16_prefill = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qwenc rerank -m MODEL -q QUERY [--instruction TEXT] [-t THREADS] [--bf16-prefill]\n\n"
                   "Scores each line of stdin as a document for QUERY (Qwen3-Reranker: p(\"yes\")) and prints one score per line\n"
                   "(empty lines too).\n\n"
                   CLI_PREFILL_HELP);
            return 0;
        } else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "-q", &j.query) ||
                   cli_flag_value(argc, argv, &i, "--instruction", &j.instruction)) {
        } else if (cli_flag_value(argc, argv, &i, "-t", &v)) threads = cli_int("-t", v);
        else if (!strcmp(argv[i], "--bf16-prefill")) bf16_prefill = true;
        else { fprintf(stderr, "qwenc rerank: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (!model || !j.query) { fprintf(stderr, "qwenc rerank: -m MODEL and -q QUERY are required\n"); return 2; }
    qwen_error *err = NULL;
    j.m = qwen_model_open(model, &(qwen_model_opts){ .threads = threads, .bf16_prefill = bf16_prefill }, &err);
    if (!j.m) return cli_fail("rerank", err);
    int rc = each_line(rerank_line, &j);
    qwen_model_close(j.m);
    return rc;
}
