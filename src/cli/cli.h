/* The qwenc command: one file per subcommand, all thin layers over the library. */
#ifndef QWENC_CLI_H
#define QWENC_CLI_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "qwenc.h"

int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_run(int argc, char **argv);

/* Prints "qwenc <cmd>: <message>" to stderr, frees err, and returns 1 (the exit status). */
int cli_fail(const char *cmd, qwen_error *err);
/* Reads all of a stream into a malloc'ed NUL-terminated buffer; NULL when out of memory. */
char *cli_read_stream(FILE *f, size_t *len);
/* Prints ids as a JSON array and a newline. */
void cli_print_ids(FILE *f, const int32_t *ids, size_t n);
/* Opens the tokenizer of a model spec (directory or hub id). */
qwen_tokenizer *cli_open_tokenizer(const char *spec, qwen_error **err);
/* True when argv[i] is `flag` and a value follows; advances i past the value into *value. */
int cli_flag_value(int argc, char **argv, int *i, const char *flag, const char **value);

#endif
