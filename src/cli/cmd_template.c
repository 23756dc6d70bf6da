/* qwenc template: render a chat template for a JSON context read on stdin. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/error.h"
#include "base/file.h"
#include "io/hfdir.h"

static void template_usage(FILE *f) {
    fprintf(f, "usage: qwenc template (-m MODEL | --template FILE.jinja)\n\n"
               "Reads one JSON object on stdin (the template context: messages, tools, add_generation_prompt,\n"
               "enable_thinking, any other key) and prints the rendered text exactly, nothing added.\n"
               "With -m, the model's special tokens (bos_token, eos_token, ...) fill keys the context lacks.\n");
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { template_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--template", &file)) {}
        else { fprintf(stderr, "qwenc template: unknown option '%s'\n", argv[i]); template_usage(stderr); return 2; }
    }
    if (!model == !file) { fprintf(stderr, "qwenc template: give exactly one of -m MODEL or --template FILE\n"); return 2; }
    qwen_error *err = NULL;
    qwen_chat_template *t = NULL;
    if (model) {
        char *dir = hf_resolve_model_dir(model, &err);
        if (dir) t = qwen_chat_template_open(dir, &err);
        free(dir);
    } else {
        size_t len;
        char *src = file_read_all(file, &len, &err);
        if (src) t = qwen_chat_template_from_source(src, len, &err);
        free(src);
    }
    if (!t) return cli_fail("template", err);
    size_t len, out_len;
    char *ctx = file_read_stream(stdin, &len);
    char *out = ctx ? qwen_chat_template_render(t, ctx, len, &out_len, &err) : NULL;
    int rc = 0;
    if (!out) rc = cli_fail("template", err);
    else fwrite(out, 1, out_len, stdout);
    free(out);
    free(ctx);
    qwen_chat_template_free(t);
    return rc;
}
