/* qwenc chat: interactive multi-turn chat in the terminal, over the library's qwen_chat. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/file.h"
#include "base/strbuf.h"

static volatile int chat_interrupted;
static void on_sigint(int sig) { (void)sig; chat_interrupted = 1; }

typedef struct display {
    bool show_reasoning, tty;
    bool dim;               /* the reasoning style is on */
    bool saw_reasoning, saw_content;
} display;

static void style(display *d, bool reasoning) {
    if (!d->tty || reasoning == d->dim) return;
    fputs(reasoning ? "\x1b[2m" : "\x1b[0m", stdout);
    d->dim = reasoning;
}

static void print_delta(const qwen_delta *delta, void *user) {
    display *d = user;
    if (delta->kind == QWEN_DELTA_REASONING) {
        d->saw_reasoning = true;
        if (!d->show_reasoning) return;
        style(d, true);
        fwrite(delta->text, 1, delta->len, stdout);
    } else if (delta->kind == QWEN_DELTA_CONTENT) {
        style(d, false);
        if (d->show_reasoning && d->saw_reasoning && !d->saw_content) fputs("\n\n", stdout);
        d->saw_content = true;
        fwrite(delta->text, 1, delta->len, stdout);
    } else {
        style(d, false);
        const qwen_tool_call *tc = delta->call;
        if (tc->error) fprintf(stdout, "\n[malformed tool call: %s]\n%s\n", tc->error, tc->raw ? tc->raw : "");
        else fprintf(stdout, "\n[tool call] %s(%s)\n", tc->name, tc->arguments);
    }
    fflush(stdout);
}

static void chat_usage(FILE *f) {
    fprintf(f, "usage: qwenc chat -m MODEL [options]\n\n"
               "Chat with an instruction-tuned model in the terminal. Type a message and press Enter.\n"
               "Commands: /think and /no_think (thinking on/off for the next turns, Qwen3), /show and /hide\n"
               "(reasoning display), /reset or /clear (forget the history), /quit or /bye. Ctrl-C stops the current answer;\n"
               "Ctrl-C or Ctrl-D at the prompt quits. A message over several lines: end a line with \\ to go on\n"
               "with the next, or wrap the lines in \"\"\" (a line that starts with \"\"\" opens the message, one that\n"
               "ends with \"\"\" closes it).\n\n"
               "  -s, --system TEXT   a system message\n"
               "  --tools FILE        offer the tools in FILE (a JSON array of OpenAI tool objects)\n"
               "  --no-think          start with thinking off (enable_thinking=false)\n"
               "  --hide-reasoning    do not print the reasoning\n"
               "  --dump-prompts FILE append each turn's template context and rendered prompt as JSON lines\n"
               "  -c N                context size in tokens (default 8192, at most the model's)\n"
               "%s", CLI_GEN_HELP);
}

/* Reads one line of stdin into *line (without its newline or CR); its length, or -1 at the end. */
static ssize_t read_line(char **line, size_t *cap) {
    ssize_t got = getline(line, cap, stdin);
    while (got > 0 && ((*line)[got - 1] == '\n' || (*line)[got - 1] == '\r')) (*line)[--got] = 0;
    return got;
}

/* Reads the next message: one line; or lines joined by newlines while each ends with a backslash
 * (dropped), as llama.cpp's chat reads them; or, from a line that starts with """ up to one that
 * ends with """, the lines between the quotes, as Ollama's does. Leaves it in *msg and returns its
 * length; -1 at the end of the input (a message cut off there is still returned first). */
static ssize_t read_message(strbuf *msg, bool tty) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = read_line(&line, &cap);
    msg->len = 0;
    if (msg->data) msg->data[0] = 0;
    if (got < 0) { free(line); return -1; }
    bool quoted = got >= 3 && !memcmp(line, "\"\"\"", 3);
    const char *part = quoted ? line + 3 : line;
    size_t len = quoted ? (size_t)got - 3 : (size_t)got;
    for (bool first = true, have = false;; first = false) {
        bool more;
        if (quoted) { /* closed by a line that ends with """ (the opening line's own quotes aside) */
            more = !(len >= 3 && !memcmp(part + len - 3, "\"\"\"", 3));
            if (!more) len -= 3;
        } else {
            more = len > 0 && part[len - 1] == '\\';
            if (more) len--;
        }
        if (!(quoted && len == 0 && (first || !more))) { /* the quotes alone on a line add no line */
            if (have) strbuf_put(msg, "\n", 1);
            strbuf_put(msg, part, len);
            have = true;
        }
        if (!more) break;
        if (tty) { fputs("... ", stdout); fflush(stdout); }
        if ((got = read_line(&line, &cap)) < 0) break;
        part = line;
        len = (size_t)got;
    }
    free(line);
    return (ssize_t)msg->len;
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *system = NULL, *dump_path = NULL, *tools_path = NULL, *v = NULL;
    bool thinking = true, show_reasoning = true;
    int ctx_size = 8192;
    cli_gen_opts g;
    cli_gen_opts_init(&g);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { chat_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "-s", &system) ||
                 cli_flag_value(argc, argv, &i, "--system", &system) || cli_flag_value(argc, argv, &i, "--dump-prompts", &dump_path) ||
                 cli_flag_value(argc, argv, &i, "--tools", &tools_path)) {}
        else if (cli_flag_value(argc, argv, &i, "-c", &v)) ctx_size = cli_int("-c", v);
        else if (!strcmp(argv[i], "--no-think")) thinking = false;
        else if (!strcmp(argv[i], "--hide-reasoning")) show_reasoning = false;
        else if (cli_gen_opts_parse(&g, argc, argv, &i)) {}
        else { fprintf(stderr, "qwenc chat: unknown option '%s'\n", argv[i]); chat_usage(stderr); return 2; }
    }
    if (!model) { fprintf(stderr, "qwenc chat: -m MODEL is required\n"); chat_usage(stderr); return 2; }
    if (!g.have_n) g.n_predict = 4096;
    if (g.n_predict == 0) { fprintf(stderr, "qwenc chat: -n 0 leaves no room for an answer (-1: until end-of-sequence or the context is full)\n"); return 2; }
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = g.threads, .quant = g.quant, .kv_type = g.kv_type, .mmap = g.mmap, .bf16_prefill = g.bf16_prefill, .progress = cli_load_progress, .progress_user = &(int){ -1 } }, &err);
    if (!m) return cli_fail("chat", err);
    qwen_chat *chat = qwen_chat_new(m, &(qwen_chat_opts){ .system = system, .disable_thinking = !thinking, .context = ctx_size }, &err);
    if (chat && tools_path) {
        size_t len;
        char *tools = file_read_all(tools_path, &len, &err);
        if (!tools || qwen_chat_set_tools(chat, tools, &err)) {
            qwen_chat_free(chat);
            chat = NULL;
        }
        free(tools);
    }
    if (!chat) { qwen_model_close(m); return cli_fail("chat", err); }
    FILE *dump = dump_path ? fopen(dump_path, "a") : NULL;
    if (dump_path && !dump) fprintf(stderr, "qwenc chat: cannot open %s; not dumping prompts\n", dump_path);
    qwen_sampling sp = cli_gen_sampling(&g, m);
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (tty) fprintf(stderr, "qwenc chat — %s. /help for commands, Ctrl-D to quit.\n", qwen_model_dir(m));
    strbuf message = { 0 };
    int rc = 0;
    for (;;) {
        if (tty) { fputs("\n> ", stdout); fflush(stdout); }
        ssize_t got = read_message(&message, tty);
        if (got < 0) break;
        if (got == 0) continue;
        const char *line = message.data;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit") || !strcmp(line, "/bye")) break;
        if (!strcmp(line, "/help")) { chat_usage(stdout); continue; }
        if (!strcmp(line, "/think") || !strcmp(line, "/no_think")) {
            qwen_chat_set_thinking(chat, !strcmp(line, "/think"));
            printf("[thinking %s]\n", !strcmp(line, "/think") ? "on" : "off");
            continue;
        }
        if (!strcmp(line, "/show") || !strcmp(line, "/hide")) {
            show_reasoning = line[1] == 's';
            printf("[reasoning %s]\n", show_reasoning ? "shown" : "hidden");
            continue;
        }
        if (!strcmp(line, "/reset") || !strcmp(line, "/clear")) { qwen_chat_reset(chat); printf("[history cleared]\n"); continue; }
        if (qwen_chat_add(chat, "user", line, &err)) {
            cli_fail("chat", err);
            err = NULL;
            continue;
        }
        display d = { .show_reasoning = show_reasoning, .tty = isatty(STDOUT_FILENO) };
        chat_interrupted = 0;
        struct sigaction sa = { 0 }, old;
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, &old);
        qwen_generate_opts go = { .max_tokens = g.n_predict < 0 ? 0 : g.n_predict, .ignore_eos = g.ignore_eos, .stop = &chat_interrupted,
                                  .stop_strings = g.stops, .n_stop_strings = (size_t)g.n_stops,
                                  .progress = cli_prefill_progress };
        qwen_generate_stats stats;
        qwen_status st = qwen_chat_reply(chat, &sp, &go, print_delta, &d, &stats, &err);
        sigaction(SIGINT, &old, NULL);
        style(&d, false);
        if (chat_interrupted) printf(" [stopped]");
        printf("\n");
        if (dump) {
            char *turn = qwen_chat_last_turn_json(chat);
            if (turn) { fprintf(dump, "%s\n", turn); fflush(dump); }
            free(turn);
        }
        if (st) {
            rc = cli_fail("chat", err);
            err = NULL;
        } else if (tty) {
            cli_print_stats(&stats);
        }
    }
    if (tty) printf("\n");
    free(message.data);
    if (dump) fclose(dump);
    qwen_chat_free(chat);
    qwen_model_close(m);
    return rc;
}
