/* qwenc show: what a model directory holds, as Ollama's `show` tells it: architecture, context,
 * weights, chat template abilities, sampling defaults. Opens the weights mapped (no packing). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Renders `context` (JSON) through t; true if the result contains `needle`. */
static bool renders_with(const qwen_chat_template *t, const char *context, const char *needle) {
    size_t len;
    char *out = qwen_chat_template_render(t, context, strlen(context), &len, NULL);
    bool found = out && strstr(out, needle);
    free(out);
    return found;
}

int cmd_show(int argc, char **argv) {
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qwenc show -m MODEL\n\n"
                   "Prints what MODEL (a Hugging Face directory or a repo id in the hub cache) is: its architecture,\n"
                   "context length, weights, what its chat template does (tools, Qwen3's thinking switch) and the\n"
                   "sampling defaults of its generation_config.json. The weights are only mapped, not loaded.\n");
            return 0;
        } else if (cli_flag_value(argc, argv, &i, "-m", &model)) {
        } else { fprintf(stderr, "qwenc show: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc show: -m MODEL is required\n"); return 2; }
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .mmap = true }, &err); /* default threads: what run would take */
    if (!m) return cli_fail("show", err);
    const char *dir = qwen_model_dir(m);
    printf("model      %s\n", dir);
    printf("           %s\n", qwen_model_describe(m));
    printf("context    %d positions\n", qwen_model_max_context(m));
    printf("weights    %.2f GB read per token (the matrices as stored, one embedding row)\n", qwen_model_weight_bytes(m) / 1e9);
    printf("tokenizer  %s\n", qwen_model_tokenizer(m) ? "tokenizer.json" : "none (logits and bench only)");
    qwen_chat_template *t = qwen_chat_template_open(dir, NULL);
    if (t) {
        static const char user[] = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"add_generation_prompt\": true";
        char ctx[512];
        snprintf(ctx, sizeof ctx, "{%s, \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"qwenc_probe\"}}]}", user);
        bool tools = renders_with(t, ctx, "qwenc_probe");
        snprintf(ctx, sizeof ctx, "{%s, \"enable_thinking\": false}", user);
        bool thinking_switch = renders_with(t, ctx, "<think>");
        printf("chat       template: tools %s, thinking switch (enable_thinking, /think, /no_think) %s\n", tools ? "yes" : "no",
               thinking_switch ? "yes" : "no");
        qwen_chat_template_free(t);
    } else {
        printf("chat       no chat template (a base model: use run, not chat)\n");
    }
    qwen_sampling sp = qwen_model_default_sampling(m);
    printf("sampling   temperature %g, top_k %d, top_p %g, min_p %g, repetition_penalty %g (generation_config.json)\n", sp.temperature,
           sp.top_k, sp.top_p, sp.min_p, sp.repetition_penalty);
    qwen_model_close(m);
    return 0;
}
