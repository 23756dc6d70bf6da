/* qwenc quantize IN OUT --type q8|q4 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void quantize_usage(FILE *f) {
    fprintf(f, "usage: qwenc quantize MODEL OUT_DIR [--type q8|q4] [-t THREADS]\n\n"
               "Writes MODEL with its matrices stored as Q8_0 (default) or Q4_0 blocks, as a Hugging Face\n"
               "directory that qwenc maps directly (no quantization at every load). OUT_DIR must be new or\n"
               "hold no checkpoint yet: weights are never written over (MODEL's own directory is refused).\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = "q8_0", *threads = "0";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { quantize_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "--type", &type) || cli_flag_value(argc, argv, &i, "-t", &threads)) {}
        else if (argv[i][0] != '-' && !in) in = argv[i];
        else if (argv[i][0] != '-' && !out) out = argv[i];
        else { fprintf(stderr, "qwenc quantize: unknown option '%s'\n", argv[i]); quantize_usage(stderr); return 2; }
    }
    if (!in || !out) { fprintf(stderr, "qwenc quantize: MODEL and OUT_DIR are required\n"); quantize_usage(stderr); return 2; }
    qwen_error *err = NULL;
    fprintf(stderr, "qwenc quantize: %s -> %s (%s)...\n", in, out, type);
    if (qwen_model_save_quantized(in, out, type, cli_int("-t", threads), &err)) return cli_fail("quantize", err);
    return 0;
}
