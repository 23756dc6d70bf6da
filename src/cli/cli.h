/* The qwenc command: one file per subcommand, all thin layers over the library. */
#ifndef QWENC_CLI_H
#define QWENC_CLI_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "qwenc.h"

int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_rerank(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_list(int argc, char **argv);

/* Generation options shared by run and chat. */
typedef struct cli_gen_opts {
    int n_predict; /* -1: until end-of-sequence or the context is full; 0: the prompt only */
    int threads;
    const char *quant, *kv_type;
    const char *stops[16]; /* --stop, in the order given */
    int n_stops;
    bool ignore_eos, mmap, bf16_prefill;
    bool have_n, have_temp, have_top_k, have_top_p, have_min_p, have_rep, have_pres, have_seed;
    qwen_sampling over;
} cli_gen_opts;
#define CLI_GEN_HELP \
    "  -n N              tokens to generate at most (default 256 for run, 4096 for chat; -1: until\n" \
    "                    end-of-sequence or the context is full)\n" \
    "  --temp T          temperature; 0 = greedy (default: the model's generation_config.json)\n" \
    "  --top-k K         keep the K most likely tokens (0 = off)\n" \
    "  --top-p P         nucleus sampling threshold (1 = off)\n" \
    "  --min-p P         drop tokens below P x the top probability (0 = off)\n" \
    "  --repeat-penalty R    HF repetition penalty (1 = off)\n" \
    "  --presence-penalty X  subtract X from tokens already seen (0 = off)\n" \
    "  --seed S          random seed (default: from the clock)\n" \
    "  --ignore-eos      keep going past end-of-sequence tokens\n" \
    "  --stop TEXT       end the answer where TEXT appears, TEXT not printed (repeatable, up to 16;\n" \
    "                    in bash $'\\n\\n' for a blank line)\n" \
    "  -t THREADS        worker threads (default: one per core this process may use)\n" \
    "  --quant q8|q4     quantize the weights at load time (Q8_0 / Q4_0 blocks)\n" \
    "  --kv-type f32|f16|q8_0  KV cache precision (default f32; f16 halves its memory and reads,\n" \
    "                    q8_0 (heads a multiple of 32 wide) keeps 56% of f16's; logits move by ~1e-2)\n" \
    CLI_MMAP_HELP CLI_PREFILL_HELP
#define CLI_MMAP_HELP \
    "  --mmap            compute from the mapped weight files as stored (quicker start, less memory;\n" \
    "                    by default bf16 matrices are repacked into memory and a quantized checkpoint's\n" \
    "                    matrices copied there: faster decode and prefill)\n"
#define CLI_PREFILL_HELP \
    "  --bf16-prefill    prompt processing with activations rounded to bf16 (AVX512-BF16 dot products,\n" \
    "                    ~1.5x faster on bf16 weights; logits move by ~1e-2 of their scale; decode stays f32)\n"
/* qwen_model_opts.progress for the commands: "qwenc: packing weights 42%" on stderr, rewritten in
 * place when the percentage changes, when stderr is a terminal (the line erased when done).
 * `user`: an int holding the percentage last shown (start it at -1), or NULL. */
void cli_load_progress(void *user, const char *stage, double fraction);
/* qwen_generate_opts.progress for a terminal: the prompt's tokens processed so far, on stderr
 * (prompts over one batch only; nothing where stderr is not a terminal). */
void cli_prefill_progress(void *user, size_t done, size_t total);
void cli_gen_opts_init(cli_gen_opts *g);
/* Consumes argv[*i] (and its value) if it is a generation option; returns 0 otherwise. */
int cli_gen_opts_parse(cli_gen_opts *g, int argc, char **argv, int *i);
/* The model's defaults with the command-line overrides applied. */
qwen_sampling cli_gen_sampling(const cli_gen_opts *g, const qwen_model *m);
void cli_print_stats(const qwen_generate_stats *st);

/* Prints "qwenc <cmd>: <message>" to stderr, frees err, and returns 1 (the exit status). */
int cli_fail(const char *cmd, qwen_error *err);
/* Prints ids as a JSON array and a newline. */
void cli_print_ids(FILE *f, const int32_t *ids, size_t n);
/* Opens the tokenizer of a model spec (directory or hub id). */
qwen_tokenizer *cli_open_tokenizer(const char *spec, qwen_error **err);
/* True when argv[i] is `flag` and a value follows; advances i past the value into *value. */
int cli_flag_value(int argc, char **argv, int *i, const char *flag, const char **value);
/* `flag`'s value v as a whole decimal int / a real number / an unsigned 64-bit integer (the whole
 * string, in range); anything else prints "qwenc: FLAG wants ..." and exits with status 2, as a
 * missing value does. */
int cli_int(const char *flag, const char *v);
float cli_real(const char *flag, const char *v);
uint64_t cli_u64(const char *flag, const char *v);

#endif
