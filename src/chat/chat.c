/* Conversations: history -> the model's template -> tokens -> generation -> parsed reply. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "qwenc.h"
#include "base/error.h"
#include "base/json.h"
#include "base/strbuf.h"

struct qwen_chat {
    qwen_model *model;          /* borrowed */
    qwen_chat_template *tpl;
    qwen_session *session;
    json_t *messages;           /* array of OpenAI-shaped messages */
    json_t *tools;              /* array or NULL */
    json_t *last_turn;          /* the last reply's template context + "prompt", or NULL */
    char *system;
    bool thinking;
    int context;                /* the session's positions */
};

qwen_chat *qwen_chat_new(qwen_model *model, const qwen_chat_opts *opts, qwen_error **err) {
    static const qwen_chat_opts defaults = { 0 };
    if (!opts) opts = &defaults;
    if (!qwen_model_tokenizer(model)) {
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "%s has no tokenizer.json", qwen_model_dir(model));
        return NULL;
    }
    qwen_chat *c = calloc(1, sizeof *c);
    if (!c) { qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); return NULL; }
    c->model = model;
    c->thinking = !opts->disable_thinking;
    c->messages = json_array();
    c->tpl = qwen_chat_template_open(qwen_model_dir(model), err);
    int ctx = opts->context > 0 ? opts->context : 8192;
    if (ctx > qwen_model_max_context(model)) ctx = qwen_model_max_context(model);
    c->context = ctx;
    if (c->tpl) c->session = qwen_session_new(model, ctx, err);
    if (!c->tpl || !c->session || !c->messages) {
        qwen_chat_free(c);
        return NULL;
    }
    if (opts->system && (!(c->system = strdup(opts->system)) || qwen_chat_add(c, "system", opts->system, err))) {
        qwen_chat_free(c);
        return NULL;
    }
    return c;
}

void qwen_chat_free(qwen_chat *c) {
    if (!c) return;
    qwen_chat_template_free(c->tpl);
    qwen_session_free(c->session);
    json_decref(c->messages);
    json_decref(c->tools);
    json_decref(c->last_turn);
    free(c->system);
    free(c);
}

qwen_status qwen_chat_add(qwen_chat *c, const char *role, const char *content, qwen_error **err) {
    json_t *msg = json_pack("{s:s, s:s}", "role", role, "content", content);
    if (!msg) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "the %s message is not valid UTF-8", role);
    json_array_append_new(c->messages, msg);
    return QWEN_OK;
}

qwen_status qwen_chat_set_tools(qwen_chat *c, const char *tools_json, qwen_error **err) {
    json_t *tools = NULL;
    if (tools_json) {
        tools = json_load_text(tools_json, strlen(tools_json), "tools", err);
        if (!tools) return QWEN_ERR_FORMAT;
        if (!json_is_array(tools)) {
            json_decref(tools);
            return qwen_fail(err, QWEN_ERR_INVALID_ARG, "tools must be a JSON array");
        }
    }
    json_decref(c->tools);
    c->tools = tools;
    return QWEN_OK;
}

void qwen_chat_set_thinking(qwen_chat *c, bool enable) { c->thinking = enable; }

void qwen_chat_reset(qwen_chat *c) {
    json_array_clear(c->messages);
    if (c->system) qwen_chat_add(c, "system", c->system, NULL);
}

char *qwen_chat_messages_json(const qwen_chat *c) { return json_dumps(c->messages, JSON_COMPACT); }
char *qwen_chat_last_turn_json(const qwen_chat *c) { return c->last_turn ? json_dumps(c->last_turn, JSON_COMPACT) : NULL; }

typedef struct reply_state {
    qwen_output_parser *parser;
    qwen_delta_fn on_delta;
    void *user;
    json_t *calls;
    strbuf reasoning, content;
} reply_state;

static void collect_delta(const qwen_delta *d, void *user) {
    reply_state *r = user;
    if (d->kind == QWEN_DELTA_REASONING) {
        strbuf_put(&r->reasoning, d->text, d->len);
    } else if (d->kind == QWEN_DELTA_CONTENT) {
        strbuf_put(&r->content, d->text, d->len);
    } else if (d->call->error) {
        /* a malformed call stays in the history as the text the model wrote */
        strbuf_puts(&r->content, "<tool_call>");
        if (d->call->raw) strbuf_puts(&r->content, d->call->raw);
        strbuf_puts(&r->content, "</tool_call>");
    } else {
        json_t *args = json_loads(d->call->arguments, JSON_DECODE_ANY, NULL);
        json_array_append_new(r->calls, json_pack("{s:s, s:{s:s, s:o}}", "type", "function", "function", "name", d->call->name,
                                                  "arguments", args ? args : json_string(d->call->arguments)));
    }
    if (r->on_delta) r->on_delta(d, r->user);
}

static bool feed_token(int32_t id, const char *text, size_t len, void *user) {
    (void)id;
    qwen_output_parser_feed(((reply_state *)user)->parser, text, len);
    return true;
}

/* The template context of a turn over the history's messages from `first` on (and a leading
 * system message, always kept); NULL when out of memory. */
static json_t *turn_context(const qwen_chat *c, size_t first) {
    json_t *msgs = json_array();
    json_t *m0 = json_array_get(c->messages, 0);
    const char *role0 = json_string_value(json_object_get(m0, "role"));
    bool system = role0 && !strcmp(role0, "system");
    if (system && first == 0) first = 1;
    if (system) json_array_append_new(msgs, json_deep_copy(m0));
    for (size_t i = first; i < json_array_size(c->messages); i++) json_array_append_new(msgs, json_deep_copy(json_array_get(c->messages, i)));
    json_t *ctx = json_pack("{s:o, s:b, s:b}", "messages", msgs, "add_generation_prompt", 1, "enable_thinking", c->thinking);
    if (ctx && c->tools) json_object_set_new(ctx, "tools", json_deep_copy(c->tools));
    return ctx;
}

/* The index of the first user message at or after `i`; SIZE_MAX when there is none. */
static size_t user_turn_from(const qwen_chat *c, size_t i) {
    for (size_t k = i; k < json_array_size(c->messages); k++) {
        const char *role = json_string_value(json_object_get(json_array_get(c->messages, k), "role"));
        if (role && !strcmp(role, "user")) return k;
    }
    return SIZE_MAX;
}

qwen_status qwen_chat_reply(qwen_chat *c, const qwen_sampling *sampling, const qwen_generate_opts *gen, qwen_delta_fn on_delta,
                            void *user, qwen_generate_stats *stats, qwen_error **err) {
    /* The history's turns from the oldest that leaves room for the answer (a quarter of the
     * context, or the answer's max_tokens if fewer; the system message always stays): the oldest
     * user turns drop out of what the model sees once the conversation outgrows its context, as
     * Ollama truncates, while the history keeps them. */
    int room = c->context / 4;
    if (gen && gen->max_tokens > 0 && gen->max_tokens < room) room = gen->max_tokens;
    json_t *ctx = NULL;
    char *prompt = NULL;
    size_t prompt_len = 0, first = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    for (;;) {
        ctx = turn_context(c, first);
        char *ctx_text = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
        if (!ctx_text) { json_decref(ctx); return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); }
        prompt = qwen_chat_template_render(c->tpl, ctx_text, strlen(ctx_text), &prompt_len, err);
        free(ctx_text);
        if (!prompt) {
            json_decref(ctx);
            return err && *err ? qwen_error_status(*err) : QWEN_ERR_FORMAT;
        }
        qwen_status st = qwen_tokenize(qwen_model_tokenizer(c->model), prompt, prompt_len, NULL, &ids, &n_ids, err);
        if (st) { free(prompt); json_decref(ctx); return st; }
        if (n_ids + (size_t)room <= (size_t)c->context) break;
        size_t oldest = user_turn_from(c, first), next = oldest == SIZE_MAX ? SIZE_MAX : user_turn_from(c, oldest + 1);
        if (next == SIZE_MAX) break; /* the last user turn stays, whatever it takes */
        free(prompt);
        free(ids);
        json_decref(ctx);
        first = next;
    }
    json_object_set_new(ctx, "prompt", json_stringn(prompt, prompt_len));
    json_decref(c->last_turn);
    c->last_turn = ctx;
    qwen_status st = QWEN_OK;
    /* a template that opens <think> in the prompt starts the answer inside the reasoning */
    size_t tail = prompt_len;
    while (tail > 0 && (prompt[tail - 1] == '\n' || prompt[tail - 1] == ' ')) tail--;
    bool opened = tail >= 7 && !memcmp(prompt + tail - 7, "<think>", 7);
    free(prompt);

    reply_state r = { .on_delta = on_delta, .user = user, .calls = json_array() };
    r.parser = qwen_output_parser_new(opened, collect_delta, &r);
    if (!r.parser) { free(ids); json_decref(r.calls); return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); }
    st = qwen_generate(c->session, ids, n_ids, sampling, gen, feed_token, &r, stats, err);
    qwen_output_parser_finish(r.parser);
    qwen_output_parser_free(r.parser);
    free(ids);
    if (!st) {
        json_t *reply = json_pack("{s:s, s:s}", "role", "assistant", "content", r.content.data ? r.content.data : "");
        if (r.reasoning.len) json_object_set_new(reply, "reasoning_content", json_string(r.reasoning.data));
        if (json_array_size(r.calls)) json_object_set(reply, "tool_calls", r.calls);
        if (reply) json_array_append_new(c->messages, reply);
    }
    json_decref(r.calls);
    free(r.reasoning.data);
    free(r.content.data);
    return st;
}
