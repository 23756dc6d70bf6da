/* Output parsing: reasoning / content / tool calls, at once and streamed in any chunking. */
#include <string.h>

#include "harness.h"
#include "qwenc.h"

typedef struct expect_call { const char *name, *arguments; bool malformed; } expect_call;

typedef struct stream_result {
    char reasoning[4096], content[4096];
    qwen_tool_call calls[8];
    size_t n_calls;
} stream_result;

static void on_delta(const qwen_delta *d, void *user) {
    stream_result *r = user;
    if (d->kind == QWEN_DELTA_REASONING) strncat(r->reasoning, d->text, d->len);
    else if (d->kind == QWEN_DELTA_CONTENT) strncat(r->content, d->text, d->len);
    else if (r->n_calls < 8) {
        qwen_tool_call *c = &r->calls[r->n_calls++];
        c->name = d->call->name ? strdup(d->call->name) : NULL;
        c->arguments = d->call->arguments ? strdup(d->call->arguments) : NULL;
        c->raw = d->call->raw ? strdup(d->call->raw) : NULL;
        c->error = d->call->error ? strdup(d->call->error) : NULL;
    }
}

static void check(const char *label, const char *text, bool in_reasoning, const char *reasoning, const char *content,
                  const expect_call *calls, size_t n_calls) {
    qwen_parsed_output out;
    REQUIRE(qwen_parse_output(text, strlen(text), in_reasoning, &out) == QWEN_OK, "parse");
    CHECK(!strcmp(out.reasoning, reasoning), "%s: reasoning [%s] want [%s]", label, out.reasoning, reasoning);
    CHECK(!strcmp(out.content, content), "%s: content [%s] want [%s]", label, out.content, content);
    CHECK(out.n_calls == n_calls, "%s: %zu calls, want %zu", label, out.n_calls, n_calls);
    for (size_t i = 0; i < out.n_calls && i < n_calls; i++) {
        qwen_tool_call *c = &out.calls[i];
        CHECK(c->raw != NULL, "%s: call %zu keeps its raw text", label, i);
        if (calls[i].malformed) {
            CHECK(c->error != NULL, "%s: call %zu should be malformed", label, i);
        } else {
            CHECK(!c->error && c->name && !strcmp(c->name, calls[i].name), "%s: call %zu name [%s] (%s)", label, i, c->name ? c->name : "", c->error ? c->error : "");
            CHECK(c->arguments && !strcmp(c->arguments, calls[i].arguments), "%s: call %zu arguments [%s] want [%s]", label, i,
                  c->arguments ? c->arguments : "", calls[i].arguments);
        }
    }
    /* Streaming in chunks of 1, 2, 3, 5 and 7 bytes gives the same result. */
    size_t sizes[] = { 1, 2, 3, 5, 7, 1000 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        stream_result r = { 0 };
        qwen_output_parser *p = qwen_output_parser_new(in_reasoning, on_delta, &r);
        for (size_t i = 0; i < strlen(text); i += sizes[s]) {
            size_t n = strlen(text) - i < sizes[s] ? strlen(text) - i : sizes[s];
            qwen_output_parser_feed(p, text + i, n);
        }
        qwen_output_parser_finish(p);
        qwen_output_parser_free(p);
        CHECK(!strcmp(r.reasoning, out.reasoning) && !strcmp(r.content, out.content) && r.n_calls == out.n_calls,
              "%s: streaming in chunks of %zu differs: [%s] [%s] %zu", label, sizes[s], r.reasoning, r.content, r.n_calls);
        for (size_t i = 0; i < r.n_calls && i < out.n_calls; i++) {
            CHECK(!strcmp(r.calls[i].raw, out.calls[i].raw), "%s: streamed call raw", label);
            CHECK((r.calls[i].arguments == NULL) == (out.calls[i].arguments == NULL) &&
                  (!r.calls[i].arguments || !strcmp(r.calls[i].arguments, out.calls[i].arguments)), "%s: streamed call arguments", label);
            qwen_tool_call_free(&r.calls[i]);
        }
    }
    qwen_parsed_output_free(&out);
}

int main(void) {
    check("empty output", "", false, "", "", NULL, 0); /* a parser finished without any text (the fuzzer found a NULL memmove here) */
    check("thinking+content", "<think>\nLet me think.\nStep two.\n</think>\n\nHello there!", false, "Let me think.\nStep two.", "Hello there!", NULL, 0);
    check("content only", "Hello there. How are you?\n", false, "", "Hello there. How are you?\n", NULL, 0);
    check("thinking off", "<think>\n\n</think>\n\nHi!", false, "", "Hi!", NULL, 0);
    check("prompt opened think", "I should greet.\n</think>\n\nHello.", true, "I should greet.", "Hello.", NULL, 0);
    check("literal tag-like text", "a < b and <thinking> is not a tag; x</think", false, "", "a < b and <thinking> is not a tag; x</think", NULL, 0);
    expect_call one[] = { { "get_weather", "{\"city\":\"Paris\",\"unit\":\"c\"}", false } };
    check("one call", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>", false,
          "", "", one, 1);
    expect_call two[] = { { "a", "{\"x\":1}", false }, { "b", "{}", false } };
    check("several calls with text", "<think>\nneed tools\n</think>\n\nCalling.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
          "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>", false, "need tools", "Calling.", two, 2);
    expect_call str_args[] = { { "f", "{\"q\": 1}", false } };
    check("string arguments", "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 1}\"}\n</tool_call>", false, "", "", str_args, 1);
    expect_call bad[] = { { NULL, NULL, true }, { "ok", "{}", false } };
    check("malformed JSON", "<tool_call>\n{\"name\": \"broken\", \"arguments\": {\"x\": }\n</tool_call>\n<tool_call>\n{\"name\": \"ok\"}\n</tool_call>", false,
          "", "", bad, 2);
    expect_call cut[] = { { NULL, NULL, true } };
    check("cut off mid-call", "Sure.\n<tool_call>\n{\"name\": \"x\", \"argu", false, "", "Sure.", cut, 1);
    expect_call xml[] = { { "search", "{\"query\":\"cats\",\"limit\":5}", false } };
    check("xml call", "<tool_call>\n<function=search>\n<parameter=query>\ncats\n</parameter>\n<parameter=limit>\n5\n</parameter>\n</function>\n</tool_call>",
          false, "", "", xml, 1);
    check("think cut off", "<think>\nstill thinking", false, "still thinking", "", NULL, 0);
    return test_finish("output_parser");
}
