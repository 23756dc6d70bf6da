/* The qwen_chat API: history, replies appended, reset, tools, bad input. */
#include <string.h>
#include <jansson.h>

#include "harness.h"
#include "qwenc.h"

static void count_delta(const qwen_delta *d, void *user) { (void)d; ++*(int *)user; }

int main(void) {
    char *dir = golden_path("models/qwen3-tiny");
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2 }, &err);
    REQUIRE(m, "open: %s", qwen_error_message(err));
    qwen_chat *c = qwen_chat_new(m, &(qwen_chat_opts){ .system = "Be brief.", .context = 512 }, &err);
    REQUIRE(c, "chat: %s", qwen_error_message(err));
    CHECK(qwen_chat_add(c, "user", "Hello!", NULL) == QWEN_OK, "add");
    CHECK(qwen_chat_add(c, "user", "bad \xff utf-8", &err) == QWEN_ERR_INVALID_ARG, "invalid UTF-8 refused");
    qwen_error_free(err);
    err = NULL;
    qwen_sampling greedy = { .temperature = 0, .top_p = 1, .repetition_penalty = 1 };
    qwen_generate_opts go = { .max_tokens = 6, .ignore_eos = true };
    qwen_generate_stats st;
    int deltas = 0;
    REQUIRE(qwen_chat_reply(c, &greedy, &go, count_delta, &deltas, &st, &err) == QWEN_OK, "reply: %s", qwen_error_message(err));
    CHECK(st.generated_tokens == 6 && deltas > 0, "generated %zu tokens, %d deltas", st.generated_tokens, deltas);
    char *msgs = qwen_chat_messages_json(c);
    json_t *arr = json_loads(msgs, 0, NULL);
    CHECK(json_array_size(arr) == 3, "system, user, assistant: %s", msgs);
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(arr, 2), "role")), "assistant"), "reply appended");
    json_decref(arr);
    free(msgs);
    /* the turn record holds the prompt, which the template renders from the messages of that turn */
    char *turn = qwen_chat_last_turn_json(c);
    json_t *t = json_loads(turn, 0, NULL);
    CHECK(json_array_size(json_object_get(t, "messages")) == 2, "the turn saw two messages");
    CHECK(strstr(json_string_value(json_object_get(t, "prompt")), "<|im_start|>system\nBe brief.<|im_end|>") != NULL, "system in the prompt");
    json_decref(t);
    free(turn);
    /* a second turn reuses the cache */
    qwen_chat_add(c, "user", "More?", NULL);
    REQUIRE(qwen_chat_reply(c, &greedy, &go, NULL, NULL, &st, &err) == QWEN_OK, "second reply");
    CHECK(st.reused_tokens > 10, "second turn reused %zu cached tokens", st.reused_tokens);
    CHECK(qwen_chat_set_tools(c, "[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]", NULL) == QWEN_OK, "tools");
    CHECK(qwen_chat_set_tools(c, "{\"not\": \"a list\"}", &err) != QWEN_OK, "tools must be a list");
    qwen_error_free(err);
    err = NULL;
    qwen_chat_reset(c);
    msgs = qwen_chat_messages_json(c);
    CHECK(!strcmp(msgs, "[{\"role\":\"system\",\"content\":\"Be brief.\"}]"), "reset keeps the system message: %s", msgs);
    free(msgs);
    qwen_chat_free(c);

    /* a conversation longer than the context: each turn still answers, the oldest user turns drop out
     * of the prompt (the system message stays; room is left for the answer), the history keeps them */
    qwen_chat *small = qwen_chat_new(m, &(qwen_chat_opts){ .system = "Be brief.", .context = 96 }, &err);
    REQUIRE(small, "small chat: %s", qwen_error_message(err));
    qwen_generate_opts go8 = { .max_tokens = 8, .ignore_eos = true };
    const char *asks[] = { "Hello there, how are you doing today?", "Tell me more about it please.", "And then what happened next?",
                           "One more question for you.", "And the very last one." };
    size_t shown = 0;
    for (size_t t = 0; t < sizeof asks / sizeof *asks; t++) {
        CHECK(qwen_chat_add(small, "user", asks[t], NULL) == QWEN_OK, "add");
        err = NULL;
        CHECK(qwen_chat_reply(small, &greedy, &go8, NULL, NULL, &st, &err) == QWEN_OK, "turn %zu: %s", t, qwen_error_message(err));
        qwen_error_free(err);
        char *last = qwen_chat_last_turn_json(small);
        json_t *lt = json_loads(last, 0, NULL), *seen = json_object_get(lt, "messages");
        shown = json_array_size(seen);
        const char *role0 = json_string_value(json_object_get(json_array_get(seen, 0), "role"));
        const char *role1 = json_string_value(json_object_get(json_array_get(seen, 1), "role"));
        const char *lastq = json_string_value(json_object_get(json_array_get(seen, shown - 1), "content"));
        CHECK(role0 && !strcmp(role0, "system") && role1 && !strcmp(role1, "user") && lastq && !strcmp(lastq, asks[t]),
              "turn %zu sees the system message, then user turns, ending with its question", t);
        CHECK(st.prompt_tokens + 8 <= 96, "turn %zu: a %zu-token prompt leaves room for the answer", t, st.prompt_tokens);
        json_decref(lt);
        free(last);
    }
    msgs = qwen_chat_messages_json(small);
    arr = json_loads(msgs, 0, NULL);
    CHECK(json_array_size(arr) == 11 && shown < 11, "the history keeps all 11 messages (%zu), the last prompt saw %zu", json_array_size(arr), shown);
    json_decref(arr);
    free(msgs);
    qwen_chat_free(small);
    qwen_model_close(m);
    free(dir);
    return test_finish("chat_api");
}
