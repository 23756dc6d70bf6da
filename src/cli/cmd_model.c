/* qwenc logits / run */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/error.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

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
    fprintf(f, "usage: qwenc logits -m MODEL --ids 1,2,3 -o OUT.npy [-t THREADS]\n\n"
               "Runs the ids through the model in one batch and writes the float32 logits of every\n"
               "position, shape [T, vocab], as a NumPy .npy file.\n");
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL, *out = NULL, *threads = "0";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { logits_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--ids", &ids_arg) ||
                 cli_flag_value(argc, argv, &i, "-o", &out) || cli_flag_value(argc, argv, &i, "-t", &threads)) {}
        else { fprintf(stderr, "qwenc logits: unknown option '%s'\n", argv[i]); logits_usage(stderr); return 2; }
    }
    if (!model || !ids_arg || !out) { fprintf(stderr, "qwenc logits: -m, --ids and -o are required\n"); logits_usage(stderr); return 2; }
    size_t n;
    int32_t *ids = parse_ids(ids_arg, &n);
    if (!ids) { fprintf(stderr, "qwenc logits: --ids must be a comma-separated list of token ids\n"); return 2; }
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = atoi(threads) }, &err);
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

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static void run_usage(FILE *f) {
    fprintf(f, "usage: qwenc run -m MODEL -p TEXT [options]\n\n"
               "Streams a continuation of the raw prompt TEXT (no chat template) to stdout.\n"
               "  -n N              tokens to generate (default 256; stops earlier at an end-of-sequence token)\n"
               "  --temp T          temperature; 0 = greedy (default: generation_config.json)\n"
               "  --top-k K         keep the K most likely tokens (0 = off)\n"
               "  --top-p P         nucleus sampling threshold (1 = off)\n"
               "  --min-p P         drop tokens below P x the top probability (0 = off)\n"
               "  --repeat-penalty R  HF repetition penalty (1 = off)\n"
               "  --presence-penalty X  subtract X from tokens already seen (0 = off)\n"
               "  --seed S          random seed (default: time)\n"
               "  --ignore-eos      keep going past end-of-sequence tokens\n"
               "  -t THREADS        worker threads (default: all CPUs)\n"
               "Speed is reported on stderr.\n");
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *v = NULL;
    int n_gen = 256, threads = 0;
    bool ignore_eos = false;
    bool have_temp = false, have_k = false, have_p = false, have_minp = false, have_seed = false, have_rep = false, have_pres = false;
    qwen_sampling over = { 0 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { run_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "-p", &prompt)) {}
        else if (cli_flag_value(argc, argv, &i, "-n", &v)) n_gen = atoi(v);
        else if (cli_flag_value(argc, argv, &i, "-t", &v)) threads = atoi(v);
        else if (cli_flag_value(argc, argv, &i, "--temp", &v)) { over.temperature = strtof(v, NULL); have_temp = true; }
        else if (cli_flag_value(argc, argv, &i, "--top-k", &v)) { over.top_k = atoi(v); have_k = true; }
        else if (cli_flag_value(argc, argv, &i, "--top-p", &v)) { over.top_p = strtof(v, NULL); have_p = true; }
        else if (cli_flag_value(argc, argv, &i, "--min-p", &v)) { over.min_p = strtof(v, NULL); have_minp = true; }
        else if (cli_flag_value(argc, argv, &i, "--repeat-penalty", &v)) { over.repetition_penalty = strtof(v, NULL); have_rep = true; }
        else if (cli_flag_value(argc, argv, &i, "--presence-penalty", &v)) { over.presence_penalty = strtof(v, NULL); have_pres = true; }
        else if (cli_flag_value(argc, argv, &i, "--seed", &v)) { over.seed = strtoull(v, NULL, 10); have_seed = true; }
        else if (!strcmp(argv[i], "--ignore-eos")) ignore_eos = true;
        else { fprintf(stderr, "qwenc run: unknown option '%s'\n", argv[i]); run_usage(stderr); return 2; }
    }
    if (!model || !prompt) { fprintf(stderr, "qwenc run: -m MODEL and -p TEXT are required\n"); run_usage(stderr); return 2; }
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = threads }, &err);
    if (!m) return cli_fail("run", err);
    const qwen_tokenizer *tok = qwen_model_tokenizer(m);
    if (!tok) {
        qwen_model_close(m);
        fprintf(stderr, "qwenc run: %s has no tokenizer.json\n", model);
        return 1;
    }
    qwen_sampling sp = qwen_model_default_sampling(m);
    if (have_temp) sp.temperature = over.temperature;
    if (have_k) sp.top_k = over.top_k;
    if (have_p) sp.top_p = over.top_p;
    if (have_minp) sp.min_p = over.min_p;
    if (have_rep) sp.repetition_penalty = over.repetition_penalty;
    if (have_pres) sp.presence_penalty = over.presence_penalty;
    sp.seed = have_seed ? over.seed : (uint64_t)time(NULL);

    int32_t *ids = NULL;
    size_t n_prompt = 0;
    int rc = 0;
    if (qwen_tokenize(tok, prompt, strlen(prompt), NULL, &ids, &n_prompt, &err)) { qwen_model_close(m); return cli_fail("run", err); }
    if (n_prompt == 0) { free(ids); qwen_model_close(m); fprintf(stderr, "qwenc run: the prompt is empty\n"); return 2; }
    if (n_gen < 0) n_gen = 0;
    int ctx = (int)n_prompt + n_gen;
    if (ctx > qwen_model_max_context(m)) ctx = qwen_model_max_context(m);
    qwen_session *s = qwen_session_new(m, ctx, &err);
    int32_t vocab = qwen_model_vocab_size(m);
    float *logits = malloc((size_t)vocab * sizeof(float));
    int32_t *seen = realloc(ids, ((size_t)n_prompt + (size_t)n_gen + 1) * sizeof *seen);
    qwen_sampler *sampler = qwen_sampler_new(&sp);
    qwen_stream_decoder *sd = qwen_stream_decoder_new(tok, false);
    if (!s || !logits || !seen || !sampler || !sd) {
        rc = cli_fail("run", err);
        if (!seen) free(ids);
        goto done;
    }
    ids = seen;
    signal(SIGINT, on_sigint);
    double t0 = now_s();
    if (qwen_session_forward(s, ids, n_prompt, logits, false, &err)) { rc = cli_fail("run", err); goto done; }
    double t1 = now_s();
    int generated = 0;
    size_t n_seen = n_prompt;
    while (generated < n_gen && !interrupted) {
        int32_t next = qwen_sampler_sample(sampler, logits, vocab, seen, n_seen);
        generated++;
        if (!ignore_eos && qwen_model_is_eos(m, next)) break;
        char *piece;
        if (qwen_stream_decoder_push(sd, next, &piece, &err)) { rc = cli_fail("run", err); goto done; }
        fputs(piece, stdout);
        fflush(stdout);
        free(piece);
        seen[n_seen++] = next;
        if (generated == n_gen || qwen_session_length(s) >= ctx) break;
        if (qwen_session_forward(s, &next, 1, logits, false, &err)) { rc = cli_fail("run", err); goto done; }
    }
    char *rest = qwen_stream_decoder_flush(sd);
    if (rest) { fputs(rest, stdout); free(rest); }
    fputc('\n', stdout);
    double t2 = now_s();
    fprintf(stderr, "qwenc: prompt %zu tokens in %.3f s (%.1f tok/s), generated %d tokens in %.3f s (%.1f tok/s)\n", n_prompt,
            t1 - t0, n_prompt / (t1 - t0), generated, t2 - t1, generated > 0 ? generated / (t2 - t1) : 0.0);
done:
    qwen_stream_decoder_free(sd);
    qwen_sampler_free(sampler);
    free(logits);
    free(ids);
    qwen_session_free(s);
    qwen_model_close(m);
    return rc;
}
