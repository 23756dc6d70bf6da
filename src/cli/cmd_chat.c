/* qwenc chat: interactive multi-turn chat in the terminal.
 * Each turn re-renders the whole history with the model's own template (so the prompt is
 * exactly what transformers would build); the KV cache keeps the common prefix, so only the new
 * part is prefilled. Output is split into reasoning / content / tool calls as it streams. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "cli/cli.h"

static volatile int chat_interrupted;
static void on_sigint(int sig) { (void)sig; chat_interrupted = 1; }

typedef struct chat_state {
    bool show_reasoning, tty;
    bool in_reasoning_shown;   /* the dim reasoning style is on */
    qwen_output_parser *parser;
    json_t *calls;             /* tool calls of this reply, OpenAI shape */
    char *reasoning, *content; /* accumulated, malloc'ed */
    size_t reasoning_len, content_len;
} chat_state;

static void append(char **buf, size_t *len, const char *s, size_t n) {
    char *b = realloc(*buf, *len + n + 1);
    if (!b) return;
    memcpy(b + *len, s, n);
    *len += n;
    b[*len] = 0;
    *buf = b;
}

static void style(chat_state *c, bool reasoning) {
    if (!c->tty || reasoning == c->in_reasoning_shown) return;
    fputs(reasoning ? "\x1b[2m" : "\x1b[0m", stdout);
    c->in_reasoning_shown = reasoning;
}

static void on_delta(const qwen_delta *d, void *user) {
    chat_state *c = user;
    if (d->kind == QWEN_DELTA_REASONING) {
        append(&c->reasoning, &c->reasoning_len, d->text, d->len);
        if (c->show_reasoning) {
            style(c, true);
            fwrite(d->text, 1, d->len, stdout);
        }
    } else if (d->kind == QWEN_DELTA_CONTENT) {
        if (c->show_reasoning && c->reasoning_len && !c->content_len) { style(c, false); fputs("\n\n", stdout); }
        style(c, false);
        append(&c->content, &c->content_len, d->text, d->len);
        fwrite(d->text, 1, d->len, stdout);
    } else {
        style(c, false);
        const qwen_tool_call *tc = d->call;
        if (tc->error) {
            fprintf(stdout, "\n[malformed tool call: %s]\n%s\n", tc->error, tc->raw ? tc->raw : "");
            /* keep the text in the history so nothing is lost */
            append(&c->content, &c->content_len, "<tool_call>", 11);
            if (tc->raw) append(&c->content, &c->content_len, tc->raw, strlen(tc->raw));
            append(&c->content, &c->content_len, "</tool_call>", 12);
        } else {
            fprintf(stdout, "\n[tool call] %s(%s)\n", tc->name, tc->arguments);
            json_t *args = json_loads(tc->arguments, JSON_DECODE_ANY, NULL);
            json_array_append_new(c->calls, json_pack("{s:s, s:{s:s, s:o}}", "type", "function", "function", "name", tc->name,
                                                      "arguments", args ? args : json_string(tc->arguments)));
        }
    }
    fflush(stdout);
}

static bool on_token(int32_t id, const char *text, size_t len, void *user) {
    (void)id;
    chat_state *c = user;
    qwen_output_parser_feed(c->parser, text, len);
    return !chat_interrupted;
}

static void chat_usage(FILE *f) {
    fprintf(f, "usage: qwenc chat -m MODEL [options]\n\n"
               "Chat with an instruction-tuned model in the terminal. Type a message and press Enter.\n"
               "Commands: /think and /no_think (thinking on/off for the next turns, Qwen3), /show and /hide\n"
               "(reasoning display), /reset (forget the history), /quit. Ctrl-C stops the current answer;\n"
               "Ctrl-C or Ctrl-D at the prompt quits.\n\n"
               "  -s, --system TEXT   a system message\n"
               "  --no-think          start with thinking off (enable_thinking=false)\n"
               "  --hide-reasoning    do not print the reasoning\n"
               "  --dump-prompts FILE append each turn's {\"messages\", \"enable_thinking\", \"prompt\"} as JSON lines\n"
               "  -c N                context size in tokens (default 8192, at most the model's)\n"
               "%s", CLI_GEN_HELP);
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *system = NULL, *dump_path = NULL, *v = NULL;
    bool thinking = true, show_reasoning = true;
    int ctx_size = 8192;
    cli_gen_opts g;
    cli_gen_opts_init(&g);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { chat_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "-s", &system) ||
                 cli_flag_value(argc, argv, &i, "--system", &system) || cli_flag_value(argc, argv, &i, "--dump-prompts", &dump_path)) {}
        else if (cli_flag_value(argc, argv, &i, "-c", &v)) ctx_size = atoi(v);
        else if (!strcmp(argv[i], "--no-think")) thinking = false;
        else if (!strcmp(argv[i], "--hide-reasoning")) show_reasoning = false;
        else if (cli_gen_opts_parse(&g, argc, argv, &i)) {}
        else { fprintf(stderr, "qwenc chat: unknown option '%s'\n", argv[i]); chat_usage(stderr); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc chat: -m MODEL is required\n"); chat_usage(stderr); return 2; }
    if (g.n_predict < 0) g.n_predict = 4096;
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = g.threads, .quant = g.quant }, &err);
    if (!m) return cli_fail("chat", err);
    qwen_chat_template *tpl = qwen_chat_template_open(qwen_model_dir(m), &err);
    const qwen_tokenizer *tok = qwen_model_tokenizer(m);
    if (!tpl || !tok) {
        qwen_model_close(m);
        if (!tok && !err) { fprintf(stderr, "qwenc chat: %s has no tokenizer.json\n", model); return 1; }
        return cli_fail("chat", err);
    }
    if (ctx_size <= 0 || ctx_size > qwen_model_max_context(m)) ctx_size = qwen_model_max_context(m);
    qwen_session *s = qwen_session_new(m, ctx_size, &err);
    if (!s) { qwen_chat_template_free(tpl); qwen_model_close(m); return cli_fail("chat", err); }
    FILE *dump = dump_path ? fopen(dump_path, "a") : NULL;
    if (dump_path && !dump) fprintf(stderr, "qwenc chat: cannot open %s; not dumping prompts\n", dump_path);
    qwen_sampling sp = cli_gen_sampling(&g, m);
    json_t *messages = json_array();
    if (system) json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content", system));
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (tty) fprintf(stderr, "qwenc chat — %s. /help for commands, Ctrl-D to quit.\n", qwen_model_dir(m));
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (tty) { fputs("\n> ", stdout); fflush(stdout); }
        ssize_t got = getline(&line, &cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/help")) { chat_usage(stdout); continue; }
        if (!strcmp(line, "/think") || !strcmp(line, "/no_think")) {
            thinking = !strcmp(line, "/think");
            printf("[thinking %s]\n", thinking ? "on" : "off");
            continue;
        }
        if (!strcmp(line, "/show") || !strcmp(line, "/hide")) { show_reasoning = line[1] == 's'; printf("[reasoning %s]\n", show_reasoning ? "shown" : "hidden"); continue; }
        if (!strcmp(line, "/reset")) {
            json_array_clear(messages);
            if (system) json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content", system));
            printf("[history cleared]\n");
            continue;
        }
        json_t *user_msg = json_pack("{s:s, s:s%}", "role", "user", "content", line, (size_t)got);
        if (!user_msg) { fprintf(stderr, "qwenc chat: the input is not valid UTF-8; please retype it\n"); continue; }
        json_array_append_new(messages, user_msg);
        json_t *context = json_pack("{s:O, s:b, s:b}", "messages", messages, "add_generation_prompt", 1, "enable_thinking", thinking);
        char *ctx_text = json_dumps(context, JSON_COMPACT);
        size_t prompt_len;
        char *prompt = qwen_chat_template_render(tpl, ctx_text, strlen(ctx_text), &prompt_len, &err);
        free(ctx_text);
        if (!prompt) {
            rc = cli_fail("chat", err);
            err = NULL;
            json_decref(context);
            json_array_remove(messages, json_array_size(messages) - 1);
            continue;
        }
        if (dump) {
            json_object_set_new(context, "prompt", json_stringn(prompt, prompt_len));
            json_object_del(context, "add_generation_prompt");
            json_dumpf(context, dump, JSON_COMPACT);
            fputc('\n', dump);
            fflush(dump);
        }
        json_decref(context);
        int32_t *ids;
        size_t n_ids;
        if (qwen_tokenize(tok, prompt, prompt_len, NULL, &ids, &n_ids, &err)) {
            rc = cli_fail("chat", err);
            err = NULL;
            free(prompt);
            continue;
        }
        /* a template that opens <think> in the prompt starts the answer inside the reasoning */
        size_t tail = prompt_len;
        while (tail > 0 && (prompt[tail - 1] == '\n' || prompt[tail - 1] == ' ')) tail--;
        bool opened = tail >= 7 && !memcmp(prompt + tail - 7, "<think>", 7);
        free(prompt);
        chat_state c = { .show_reasoning = show_reasoning, .tty = isatty(STDOUT_FILENO), .calls = json_array() };
        c.parser = qwen_output_parser_new(opened, on_delta, &c);
        chat_interrupted = 0;
        struct sigaction sa = { 0 }, old;
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, &old);
        qwen_generate_opts go = { .max_tokens = g.n_predict, .ignore_eos = g.ignore_eos, .stop = &chat_interrupted };
        qwen_generate_stats stats;
        qwen_status st = qwen_generate(s, ids, n_ids, &sp, &go, on_token, &c, &stats, &err);
        sigaction(SIGINT, &old, NULL);
        qwen_output_parser_finish(c.parser);
        qwen_output_parser_free(c.parser);
        style(&c, false);
        free(ids);
        if (chat_interrupted) printf(" [stopped]");
        printf("\n");
        if (st) {
            rc = cli_fail("chat", err);
            err = NULL;
        } else {
            json_t *reply = json_pack("{s:s, s:s}", "role", "assistant", "content", c.content ? c.content : "");
            if (c.reasoning_len) json_object_set_new(reply, "reasoning_content", json_string(c.reasoning));
            if (json_array_size(c.calls)) json_object_set(reply, "tool_calls", c.calls);
            json_array_append_new(messages, reply);
            if (tty) cli_print_stats(&stats);
        }
        json_decref(c.calls);
        free(c.reasoning);
        free(c.content);
    }
    if (tty) printf("\n");
    free(line);
    if (dump) fclose(dump);
    json_decref(messages);
    qwen_session_free(s);
    qwen_chat_template_free(tpl);
    qwen_model_close(m);
    return rc;
}
