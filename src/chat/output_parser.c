#define _GNU_SOURCE /* memmem */
/* Turning generated text into reasoning, content and tool calls, incrementally.
 *
 * A small state machine over three modes (content, reasoning, tool call) driven by the tags
 * <think> </think> <tool_call> </tool_call>. Text that could be the start of a tag is held back
 * until the next feed decides it, so the deltas are the same however the text is chunked; the
 * one-shot qwen_parse_output() is this parser fed once. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "qwenc.h"
#include "base/strbuf.h"

typedef enum { MODE_CONTENT, MODE_REASONING, MODE_TOOL } parse_mode;

struct qwen_output_parser {
    qwen_delta_fn on_delta;
    void *user;
    parse_mode mode;
    strbuf pending;        /* fed text not processed yet (a possible tag prefix at most, between feeds) */
    strbuf tool;           /* the body of the tool call being read */
    strbuf held_ws;        /* content whitespace held until non-space text follows */
    size_t held_nl;      /* reasoning newlines held until non-newline text follows */
    bool reasoning_started, content_started, any_tool_call;
    bool skip_nl;        /* after </think>: drop leading newlines of content */
    bool skip_ws;        /* after </tool_call>: drop leading whitespace of content */
};

static const char TAG_THINK[] = "<think>", TAG_END_THINK[] = "</think>", TAG_CALL[] = "<tool_call>", TAG_END_CALL[] = "</tool_call>";

qwen_output_parser *qwen_output_parser_new(bool in_reasoning, qwen_delta_fn on_delta, void *user) {
    qwen_output_parser *p = on_delta ? calloc(1, sizeof *p) : NULL;
    if (!p) return NULL;
    p->on_delta = on_delta;
    p->user = user;
    p->mode = in_reasoning ? MODE_REASONING : MODE_CONTENT;
    return p;
}

static void emit(qwen_output_parser *p, qwen_delta_kind kind, const char *s, size_t n) {
    if (!n) return;
    qwen_delta d = { kind, s, n, NULL };
    p->on_delta(&d, p->user);
}

static void content_text(qwen_output_parser *p, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (p->skip_nl && c == '\n') continue;
        if (p->skip_ws && isspace((unsigned char)c)) continue;
        p->skip_nl = p->skip_ws = false;
        if (isspace((unsigned char)c)) { strbuf_put(&p->held_ws, &c, 1); continue; }
        /* a run of non-space text: flush held spaces, then emit up to the next space */
        emit(p, QWEN_DELTA_CONTENT, p->held_ws.data, p->held_ws.len);
        p->held_ws.len = 0;
        size_t j = i;
        while (j < n && !isspace((unsigned char)s[j])) j++;
        emit(p, QWEN_DELTA_CONTENT, s + i, j - i);
        p->content_started = true;
        i = j - 1;
    }
}

static void reasoning_text(qwen_output_parser *p, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            if (p->reasoning_started) p->held_nl++;
            continue;
        }
        for (; p->held_nl; p->held_nl--) emit(p, QWEN_DELTA_REASONING, "\n", 1);
        size_t j = i;
        while (j < n && s[j] != '\n') j++;
        emit(p, QWEN_DELTA_REASONING, s + i, j - i);
        p->reasoning_started = true;
        i = j - 1;
    }
}

static char *dup_range(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

/* Qwen3-Coder's XML form: <function=NAME><parameter=KEY>\nVALUE\n</parameter>...</function> */
static bool parse_xml_call(const char *s, qwen_tool_call *call) {
    const char *f = strstr(s, "<function=");
    if (!f) return false;
    f += strlen("<function=");
    const char *gt = strchr(f, '>');
    if (!gt) return false;
    json_t *args = json_object();
    const char *q = gt + 1;
    for (;;) {
        const char *pstart = strstr(q, "<parameter=");
        if (!pstart) break;
        pstart += strlen("<parameter=");
        const char *pgt = strchr(pstart, '>');
        const char *pend = pgt ? strstr(pgt, "</parameter>") : NULL;
        if (!pend) { json_decref(args); return false; }
        const char *v = pgt + 1, *ve = pend;
        if (v < ve && *v == '\n') v++;
        if (ve > v && ve[-1] == '\n') ve--;
        char *key = dup_range(pstart, (size_t)(pgt - pstart));
        json_t *val = json_loadb(v, (size_t)(ve - v), JSON_DECODE_ANY, NULL);
        if (!val || json_is_string(val)) { json_decref(val); val = json_stringn(v, (size_t)(ve - v)); }
        json_object_set_new(args, key ? key : "", val);
        free(key);
        q = pend + strlen("</parameter>");
    }
    call->name = dup_range(f, (size_t)(gt - f));
    call->arguments = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(args);
    return true;
}

static void parse_call(const char *body, size_t n, qwen_tool_call *call) {
    memset(call, 0, sizeof *call);
    call->raw = dup_range(body, n);
    size_t a = 0, b = n;
    while (a < b && isspace((unsigned char)body[a])) a++;
    while (b > a && isspace((unsigned char)body[b - 1])) b--;
    json_error_t je;
    json_t *obj = json_loadb(body + a, b - a, 0, &je);
    json_t *name = json_object_get(obj, "name");
    if (json_is_object(obj) && json_is_string(name)) {
        json_t *args = json_object_get(obj, "arguments");
        if (!args) args = json_object_get(obj, "parameters");
        call->name = dup_range(json_string_value(name), json_string_length(name));
        if (json_is_string(args)) call->arguments = dup_range(json_string_value(args), json_string_length(args));
        else if (args) call->arguments = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
        else call->arguments = dup_range("{}", 2);
    } else if (!parse_xml_call(call->raw ? call->raw : "", call)) {
        char msg[256];
        if (!obj) snprintf(msg, sizeof msg, "tool call is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        else snprintf(msg, sizeof msg, "tool call JSON has no string \"name\"");
        call->error = dup_range(msg, strlen(msg));
    }
    json_decref(obj);
}

static void finish_call(qwen_output_parser *p, const char *error) {
    qwen_tool_call call;
    parse_call(p->tool.data ? p->tool.data : "", p->tool.len, &call);
    if (error && !call.error) {
        free(call.name);
        free(call.arguments);
        call.name = call.arguments = NULL;
        call.error = dup_range(error, strlen(error));
    }
    qwen_delta d = { QWEN_DELTA_TOOL_CALL, NULL, 0, &call };
    p->on_delta(&d, p->user);
    qwen_tool_call_free(&call);
    p->tool.len = 0;
    p->any_tool_call = true;
}

static void mode_text(qwen_output_parser *p, const char *s, size_t n) {
    if (p->mode == MODE_CONTENT) content_text(p, s, n);
    else if (p->mode == MODE_REASONING) reasoning_text(p, s, n);
    else strbuf_put(&p->tool, s, n);
}

/* The tags that matter in the current mode. */
static size_t tags_for(const qwen_output_parser *p, const char **tags) {
    size_t n = 0;
    if (p->mode == MODE_CONTENT) {
        if (!p->content_started && !p->any_tool_call && !p->reasoning_started) tags[n++] = TAG_THINK;
        tags[n++] = TAG_CALL;
    } else if (p->mode == MODE_REASONING) {
        tags[n++] = TAG_END_THINK;
    } else {
        tags[n++] = TAG_END_CALL;
    }
    return n;
}

static void process(qwen_output_parser *p, bool final) {
    for (;;) {
        const char *tags[3];
        size_t n_tags = tags_for(p, tags);
        const char *buf = p->pending.data ? p->pending.data : "";
        size_t len = p->pending.len, best = len;
        const char *found = NULL;
        for (size_t t = 0; t < n_tags; t++) {
            const char *hit = len ? memmem(buf, len, tags[t], strlen(tags[t])) : NULL;
            if (hit && (size_t)(hit - buf) < best) { best = (size_t)(hit - buf); found = tags[t]; }
        }
        if (!found) {
            /* hold the longest suffix that may still become a tag */
            size_t hold = 0;
            if (!final)
                for (size_t t = 0; t < n_tags; t++)
                    for (size_t k = strlen(tags[t]) - 1; k > hold; k--)
                        if (k <= len && !memcmp(buf + len - k, tags[t], k)) { hold = k; break; }
            mode_text(p, buf, len - hold);
            strbuf_consume(&p->pending, len - hold);
            return;
        }
        mode_text(p, buf, best);
        size_t tag_len = strlen(found);
        if (found == TAG_THINK) {
            p->mode = MODE_REASONING;
            p->held_ws.len = 0; /* whitespace before <think> is not content */
        } else if (found == TAG_END_THINK) {
            p->mode = MODE_CONTENT;
            p->held_nl = 0;
            p->skip_nl = true;
        } else if (found == TAG_CALL) {
            p->mode = MODE_TOOL;
            p->held_ws.len = 0; /* whitespace right before a call is not content */
            p->skip_nl = p->skip_ws = false;
        } else {
            finish_call(p, NULL);
            p->mode = MODE_CONTENT;
            p->skip_ws = true;
        }
        strbuf_consume(&p->pending, best + tag_len);
    }
}

void qwen_output_parser_feed(qwen_output_parser *p, const char *text, size_t len) {
    if (!p || !text) return;
    strbuf_put(&p->pending, text, len);
    process(p, false);
}

void qwen_output_parser_finish(qwen_output_parser *p) {
    if (!p) return;
    process(p, true);
    if (p->mode == MODE_TOOL) {
        finish_call(p, "unterminated <tool_call> (the output was cut off?)");
        p->mode = MODE_CONTENT;
    }
    if (p->mode == MODE_CONTENT && !p->any_tool_call) {
        emit(p, QWEN_DELTA_CONTENT, p->held_ws.data, p->held_ws.len);
    }
    p->held_ws.len = 0;
    p->held_nl = 0;
}

void qwen_output_parser_free(qwen_output_parser *p) {
    if (!p) return;
    free(p->pending.data);
    free(p->tool.data);
    free(p->held_ws.data);
    free(p);
}

void qwen_tool_call_free(qwen_tool_call *call) {
    if (!call) return;
    free(call->name);
    free(call->arguments);
    free(call->raw);
    free(call->error);
    memset(call, 0, sizeof *call);
}

typedef struct collector {
    strbuf reasoning, content;
    qwen_tool_call *calls;
    size_t n_calls;
} collector;

static char *dup_or_null(const char *s) { return s ? dup_range(s, strlen(s)) : NULL; }

static void collect(const qwen_delta *d, void *user) {
    collector *c = user;
    if (d->kind == QWEN_DELTA_REASONING) strbuf_put(&c->reasoning, d->text, d->len);
    else if (d->kind == QWEN_DELTA_CONTENT) strbuf_put(&c->content, d->text, d->len);
    else {
        qwen_tool_call *calls = realloc(c->calls, (c->n_calls + 1) * sizeof *calls);
        if (!calls) return;
        c->calls = calls;
        qwen_tool_call *dst = &c->calls[c->n_calls++];
        dst->name = dup_or_null(d->call->name);
        dst->arguments = dup_or_null(d->call->arguments);
        dst->raw = dup_or_null(d->call->raw);
        dst->error = dup_or_null(d->call->error);
    }
}

qwen_status qwen_parse_output(const char *text, size_t len, bool in_reasoning, qwen_parsed_output *out) {
    memset(out, 0, sizeof *out);
    collector c = { 0 };
    qwen_output_parser *p = qwen_output_parser_new(in_reasoning, collect, &c);
    if (!p) return QWEN_ERR_NOMEM;
    qwen_output_parser_feed(p, text, len);
    qwen_output_parser_finish(p);
    qwen_output_parser_free(p);
    out->reasoning = c.reasoning.data ? c.reasoning.data : dup_range("", 0);
    out->content = c.content.data ? c.content.data : dup_range("", 0);
    out->calls = c.calls;
    out->n_calls = c.n_calls;
    return out->reasoning && out->content ? QWEN_OK : QWEN_ERR_NOMEM;
}

void qwen_parsed_output_free(qwen_parsed_output *out) {
    free(out->reasoning);
    free(out->content);
    for (size_t i = 0; i < out->n_calls; i++) qwen_tool_call_free(&out->calls[i]);
    free(out->calls);
    memset(out, 0, sizeof *out);
}
