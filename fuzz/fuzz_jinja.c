/* libFuzzer target: any bytes as a template, rendered with a small fixed context. Must never crash.
 * Build and run: fuzz/run.sh jinja */
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

#include "chat/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *ctx;
    if (!ctx) ctx = json_loads("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": null,"
                               " \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1.5}}}]}],"
                               " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"add_generation_prompt\": true}", 0, NULL);
    qwen_error *err = NULL;
    jinja_template *t = jinja_parse((const char *)data, size, &err);
    if (t) {
        size_t n;
        char *out = jinja_render(t, ctx, &n, &err);
        free(out);
        jinja_free(t);
    }
    qwen_error_free(err);
    return 0;
}
