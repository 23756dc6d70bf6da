/* qwenc logits / run */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/file.h"

/* Parses "1,2,3" into a malloc'ed array. Returns NULL on a malformed list. */
static int32_t *parse_ids(const char *s, size_t *n) {
    size_t cap = 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    *n = 0;
    while (ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) { free(ids); return NULL; }
        if (*n == cap) {
            int32_t *b = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!b) { free(ids); return NULL; }
            ids = b;
        }
        ids[(*n)++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    if (ids && *n == 0) { free(ids); return NULL; }
    return ids;
}

/* Writes a float32 [rows, cols] array as NumPy .npy (format 1.0). */
static int write_npy(const char *path, const float *data, size_t rows, size_t cols) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xFF, f);
    fputc(hlen >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t w = fwrite(data, sizeof(float), rows * cols, f);
    return fclose(f) == 0 && w == rows * cols ? 0 : -1;
}

static void logits_usage(FILE *f) {
    fprintf(f, "usage: qwenc logits -m MODEL --ids 1,2,3 -o OUT.npy [-t THREADS] [--quant q8|q4] [--mmap] [--bf16-prefill]\n\n"
               "Runs the ids through the model in one batch and writes the float32 logits of every\n"
               "position, shape [T, vocab], as a NumPy .npy file.\n\n" CLI_MMAP_HELP CLI_PREFILL_HELP);
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL, *out = NULL, *threads = "0", *quant = NULL;
    bool mmap = false, bf16_prefill = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { logits_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--ids", &ids_arg) ||
                 cli_flag_value(argc, argv, &i, "-o", &out) || cli_flag_value(argc, argv, &i, "-t", &threads) ||
                 cli_flag_value(argc, argv, &i, "--quant", &quant)) {}
        else if (!strcmp(argv[i], "--mmap")) mmap = true;
        else if (!strcmp(argv[i], "--bf16-prefill")) bf16_prefill = true;
        else { fprintf(stderr, "qwenc logits: unknown option '%s'\n", argv[i]); logits_usage(stderr); return 2; }
    }
    if (!model || !ids_arg || !out) { fprintf(stderr, "qwenc logits: -m, --ids and -o are required\n"); logits_usage(stderr); return 2; }
    size_t n;
    int32_t *ids = parse_ids(ids_arg, &n);
    if (!ids) { fprintf(stderr, "qwenc logits: --ids must be a comma-separated list of token ids\n"); return 2; }
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = cli_int("-t", threads), .quant = quant, .mmap = mmap, .bf16_prefill = bf16_prefill }, &err);
    if (!m) { free(ids); return cli_fail("logits", err); }
    int rc = 0;
    size_t vocab = (size_t)qwen_model_vocab_size(m);
    float *logits = malloc(n * vocab * sizeof(float));
    qwen_session *s = logits ? qwen_session_new(m, (int)n, &err) : NULL;
    if (!s || qwen_session_forward(s, ids, n, logits, true, &err)) rc = cli_fail("logits", err);
    else if (write_npy(out, logits, n, vocab)) { fprintf(stderr, "qwenc logits: cannot write %s: %s\n", out, strerror(errno)); rc = 1; }
    qwen_session_free(s);
    free(logits);
    free(ids);
    qwen_model_close(m);
    return rc;
}

static volatile int interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static void run_usage(FILE *f) {
    fprintf(f, "usage: qwenc run -m MODEL (-p TEXT | -f FILE) [options]\n\n"
               "Streams a continuation of the raw prompt TEXT (no chat template) to stdout.\n"
               "  -f FILE           read the prompt from FILE as it is (- : standard input)\n"
               "%s"
               "Speed is reported on stderr.\n", CLI_GEN_HELP);
}

static bool print_token(int32_t id, const char *text, size_t len, void *user) {
    (void)id;
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

/* Loads `model`, continues the prompt's `len` bytes as g asks and prints the continuation; returns
 * the exit status. */
static int run_prompt(const char *model, const char *prompt, size_t len, const cli_gen_opts *g) {
    qwen_error *err = NULL;
    double t_load = clock_seconds();
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = g->threads, .quant = g->quant, .kv_type = g->kv_type, .mmap = g->mmap, .bf16_prefill = g->bf16_prefill, .progress = cli_load_progress, .progress_user = &(int){ -1 } }, &err);
    if (!m) return cli_fail("run", err);
    fprintf(stderr, "qwenc: loaded %s in %.2f s\n", qwen_model_describe(m), clock_seconds() - t_load);
    const qwen_tokenizer *tok = qwen_model_tokenizer(m);
    if (!tok) {
        qwen_model_close(m);
        fprintf(stderr, "qwenc run: %s has no tokenizer.json\n", model);
        return 1;
    }
    qwen_sampling sp = cli_gen_sampling(g, m);
    int32_t *ids = NULL;
    size_t n_prompt = 0;
    if (qwen_tokenize(tok, prompt, len, NULL, &ids, &n_prompt, &err)) { qwen_model_close(m); return cli_fail("run", err); }
    if (n_prompt == 0) { free(ids); qwen_model_close(m); fprintf(stderr, "qwenc run: the prompt is empty\n"); return 2; }
    int max_ctx = qwen_model_max_context(m);
    int ctx = g->n_predict < 0 || (size_t)max_ctx < n_prompt + 1 + (size_t)g->n_predict ? max_ctx : (int)n_prompt + g->n_predict + 1;
    int rc = 0;
    qwen_session *s = qwen_session_new(m, ctx, &err);
    if (!s) {
        rc = cli_fail("run", err);
    } else {
        signal(SIGINT, on_sigint);
        qwen_generate_opts go = { .max_tokens = g->n_predict < 0 ? 0 : g->n_predict, .ignore_eos = g->ignore_eos, .stop = &interrupted,
                                  .stop_strings = g->stops, .n_stop_strings = (size_t)g->n_stops,
                                  .progress = cli_prefill_progress };
        qwen_generate_stats stats = { .prompt_tokens = n_prompt };
        double t0 = clock_seconds();
        if (g->n_predict == 0 ? qwen_session_forward(s, ids, n_prompt, NULL, false, &err) /* -n 0: the prompt only */
                              : qwen_generate(s, ids, n_prompt, &sp, &go, print_token, NULL, &stats, &err))
            rc = cli_fail("run", err);
        else {
            if (g->n_predict == 0) stats.prefill_seconds = clock_seconds() - t0;
            if (isatty(STDOUT_FILENO)) fputc('\n', stdout); /* piped output is exactly the continuation */
            cli_print_stats(&stats);
        }
    }
    qwen_session_free(s);
    free(ids);
    qwen_model_close(m);
    return rc;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *prompt_file = NULL;
    cli_gen_opts g;
    cli_gen_opts_init(&g);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { run_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "-p", &prompt) ||
                 cli_flag_value(argc, argv, &i, "-f", &prompt_file)) {}
        else if (cli_gen_opts_parse(&g, argc, argv, &i)) {}
        else { fprintf(stderr, "qwenc run: unknown option '%s'\n", argv[i]); run_usage(stderr); return 2; }
    }
    if (prompt && prompt_file) { fprintf(stderr, "qwenc run: -p and -f both give a prompt: use one\n"); return 2; }
    if (!model || (!prompt && !prompt_file)) {
        fprintf(stderr, "qwenc run: -m MODEL and one of -p TEXT or -f FILE are required\n");
        run_usage(stderr);
        return 2;
    }
    if (!g.have_n) g.n_predict = 256;
    if (prompt) return run_prompt(model, prompt, strlen(prompt), &g);
    qwen_error *err = NULL;
    size_t len;
    char *text = strcmp(prompt_file, "-") ? file_read_all(prompt_file, &len, &err) : file_read_stream(stdin, &len);
    if (!text && !err) fprintf(stderr, "qwenc run: cannot read the prompt from standard input\n");
    int rc = text ? run_prompt(model, text, len, &g) : err ? cli_fail("run", err) : 1;
    free(text);
    return rc;
}
