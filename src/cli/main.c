/* qwenc: the command-line entry point. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cli/cli.h"
#include "tensor/tensor.h"
#include "qwenc_version.h" /* QWENC_GIT_DESCRIBE, written by the build */
#include "base/error.h"
#include "io/hfdir.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
    { "tokenize", cmd_tokenize, "text on stdin -> token ids as a JSON array" },
    { "detokenize", cmd_detokenize, "a JSON array of ids on stdin -> text" },
    { "logits", cmd_logits, "run a forward pass over ids and write the logits as .npy" },
    { "run", cmd_run, "generate a continuation of a raw prompt" },
    { "chat", cmd_chat, "interactive multi-turn chat with the model's own template" },
    { "synth", cmd_synth, "write a random-weight checkpoint with real Qwen shapes (for benchmarks)" },
    { "quantize", cmd_quantize, "write a model with its matrices stored as Q8_0 / Q4_0 blocks" },
    { "bench", cmd_bench, "measure prompt processing and generation speed" },
    { "embed", cmd_embed, "embed each line of stdin (Qwen3-Embedding)" },
    { "rerank", cmd_rerank, "score each line of stdin against a query (Qwen3-Reranker)" },
    { "template", cmd_template, "render the model's chat template for a JSON context on stdin" },
    { "list", cmd_list, "the models in the Hugging Face hub cache, by the repo ids -m takes" },
    { "show", cmd_show, "what a model is: architecture, context, weights, chat template, sampling defaults" },
};

static void usage(FILE *f) {
    fprintf(f, "qwenc — the Qwen model family in pure C\n\nusage: qwenc <command> [options]   (qwenc <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "  %-12s %s\n", "--version", "the version, the commit it was built from, and the kernels this CPU takes");
    fprintf(f, "\nMODEL is a Hugging Face model directory or a repo id in the local hub cache (e.g. Qwen/Qwen3-0.6B).\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("qwenc %s (%s), kernels %s\n", QWENC_VERSION, QWENC_GIT_DESCRIBE, dot_kernels_best()->name);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "qwenc: unknown command '%s' (see qwenc --help)\n", argv[1]);
    return 2;
}

int cli_fail(const char *cmd, qwen_error *err) {
    fprintf(stderr, "qwenc %s: %s\n", cmd, err ? qwen_error_message(err) : "failed");
    qwen_error_free(err);
    return 1;
}

void cli_print_ids(FILE *f, const int32_t *ids, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", ids[i]);
    fputs("]\n", f);
}

qwen_tokenizer *cli_open_tokenizer(const char *spec, qwen_error **err) {
    char *dir = hf_resolve_model_dir(spec, err);
    if (!dir) return NULL;
    qwen_tokenizer *tok = qwen_tokenizer_open(dir, err);
    free(dir);
    return tok;
}

int cli_flag_value(int argc, char **argv, int *i, const char *flag, const char **value) {
    if (strcmp(argv[*i], flag)) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "qwenc: %s needs a value\n", flag);
        exit(2);
    }
    *value = argv[++*i];
    return 1;
}

static _Noreturn void bad_number(const char *flag, const char *v, const char *what) {
    fprintf(stderr, "qwenc: %s wants %s, not '%s'\n", flag, what, v);
    exit(2);
}

int cli_int(const char *flag, const char *v) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < INT_MIN || n > INT_MAX) bad_number(flag, v, "a whole number");
    return (int)n;
}

float cli_real(const char *flag, const char *v) {
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (end == v || *end || errno || x != x) bad_number(flag, v, "a number");
    return x;
}

uint64_t cli_u64(const char *flag, const char *v) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end || errno || *v == '-') bad_number(flag, v, "a whole number from 0");
    return (uint64_t)n;
}

void cli_load_progress(void *user, const char *stage, double fraction) {
    int *shown = user, percent = (int)(fraction * 100);
    if (!isatty(STDERR_FILENO) || (shown && *shown == percent)) return;
    if (shown) *shown = percent;
    if (fraction >= 1.0) fprintf(stderr, "\r\033[K");
    else fprintf(stderr, "\rqwenc: %s weights %3d%%", stage, percent);
    fflush(stderr);
}

void cli_prefill_progress(void *user, size_t done, size_t total) {
    (void)user;
    if (total <= 512 || !isatty(STDERR_FILENO)) return;
    if (done >= total) fprintf(stderr, "\r\033[K");
    else fprintf(stderr, "\rqwenc: prompt %zu/%zu tokens (%zu%%)", done, total, done * 100 / total);
    fflush(stderr);
}

void cli_gen_opts_init(cli_gen_opts *g) {
    memset(g, 0, sizeof *g);
}

int cli_gen_opts_parse(cli_gen_opts *g, int argc, char **argv, int *i) {
    const char *v;
    if (cli_flag_value(argc, argv, i, "-n", &v)) {
        g->n_predict = cli_int("-n", v);
        if (g->n_predict < -1) bad_number("-n", v, "a whole number from -1 (-1: until end-of-sequence or the context is full)");
        g->have_n = true;
    }
    else if (cli_flag_value(argc, argv, i, "-t", &v)) g->threads = cli_int("-t", v);
    else if (cli_flag_value(argc, argv, i, "--quant", &v)) g->quant = v;
    else if (cli_flag_value(argc, argv, i, "--kv-type", &v)) g->kv_type = v;
    else if (cli_flag_value(argc, argv, i, "--temp", &v)) { g->over.temperature = cli_real("--temp", v); g->have_temp = true; }
    else if (cli_flag_value(argc, argv, i, "--top-k", &v)) { g->over.top_k = cli_int("--top-k", v); g->have_top_k = true; }
    else if (cli_flag_value(argc, argv, i, "--top-p", &v)) { g->over.top_p = cli_real("--top-p", v); g->have_top_p = true; }
    else if (cli_flag_value(argc, argv, i, "--min-p", &v)) { g->over.min_p = cli_real("--min-p", v); g->have_min_p = true; }
    else if (cli_flag_value(argc, argv, i, "--repeat-penalty", &v)) { g->over.repetition_penalty = cli_real("--repeat-penalty", v); g->have_rep = true; }
    else if (cli_flag_value(argc, argv, i, "--presence-penalty", &v)) { g->over.presence_penalty = cli_real("--presence-penalty", v); g->have_pres = true; }
    else if (cli_flag_value(argc, argv, i, "--seed", &v)) { g->over.seed = cli_u64("--seed", v); g->have_seed = true; }
    else if (cli_flag_value(argc, argv, i, "--stop", &v)) {
        if (g->n_stops == (int)(sizeof g->stops / sizeof *g->stops)) { fprintf(stderr, "qwenc: at most 16 --stop strings\n"); exit(2); }
        if (!*v) { fprintf(stderr, "qwenc: --stop wants a non-empty text\n"); exit(2); }
        g->stops[g->n_stops++] = v;
    }
    else if (!strcmp(argv[*i], "--ignore-eos")) g->ignore_eos = true;
    else if (!strcmp(argv[*i], "--mmap")) g->mmap = true;
    else if (!strcmp(argv[*i], "--bf16-prefill")) g->bf16_prefill = true;
    else return 0;
    return 1;
}

qwen_sampling cli_gen_sampling(const cli_gen_opts *g, const qwen_model *m) {
    qwen_sampling sp = qwen_model_default_sampling(m);
    if (g->have_temp) sp.temperature = g->over.temperature;
    if (g->have_top_k) sp.top_k = g->over.top_k;
    if (g->have_top_p) sp.top_p = g->over.top_p;
    if (g->have_min_p) sp.min_p = g->over.min_p;
    if (g->have_rep) sp.repetition_penalty = g->over.repetition_penalty;
    if (g->have_pres) sp.presence_penalty = g->over.presence_penalty;
    sp.seed = g->have_seed ? g->over.seed : (uint64_t)time(NULL);
    return sp;
}

void cli_print_stats(const qwen_generate_stats *st) {
    size_t prefilled = st->prompt_tokens - st->reused_tokens;
    fprintf(stderr, "qwenc: prompt %zu tokens (%zu reused) in %.3f s (%.1f tok/s), generated %zu tokens in %.3f s (%.1f tok/s)\n",
            st->prompt_tokens, st->reused_tokens, st->prefill_seconds, st->prefill_seconds > 0 ? prefilled / st->prefill_seconds : 0.0,
            st->generated_tokens, st->decode_seconds, st->decode_seconds > 0 ? st->generated_tokens / st->decode_seconds : 0.0);
}
