/* The model's chat template: found in the model directory, rendered with the special tokens
 * transformers passes (bos_token, eos_token, ...). */
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "chat/jinja.h"

struct qwen_chat_template {
    jinja_template *tpl;
    json_t *defaults; /* special tokens: keys the context may lack */
};

qwen_chat_template *qwen_chat_template_from_source(const char *source, size_t len, qwen_error **err) {
    if (!source) {
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "no template source given");
        return NULL;
    }
    jinja_template *tpl = jinja_parse(source, len, err);
    if (!tpl) return NULL;
    qwen_chat_template *t = calloc(1, sizeof *t);
    if (!t) { jinja_free(tpl); qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); return NULL; }
    t->tpl = tpl;
    t->defaults = json_object();
    return t;
}

/* A special token in tokenizer_config.json is a string, {"content": ...} or null. */
static void add_special(json_t *defaults, json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    json_object_set_new(defaults, key, json_string(json_is_string(v) ? json_string_value(v) : ""));
}

qwen_chat_template *qwen_chat_template_open(const char *dir, qwen_error **err) {
    if (!dir) {
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "no model directory given for the chat template");
        return NULL;
    }
    char *cfg_path = path_join(dir, "tokenizer_config.json");
    char *jinja_path = path_join(dir, "chat_template.jinja");
    json_t *cfg = cfg_path && file_exists(cfg_path) ? json_load_path(cfg_path, err) : NULL;
    qwen_chat_template *t = NULL;
    char *source = NULL;
    size_t len = 0;
    if (jinja_path && file_exists(jinja_path)) {
        source = file_read_all(jinja_path, &len, err);
    } else if (cfg) {
        json_t *ct = json_object_get(cfg, "chat_template");
        if (json_is_array(ct)) { /* [{"name": "default", "template": ...}, ...] */
            size_t i;
            json_t *item, *chosen = NULL;
            json_array_foreach(ct, i, item) {
                json_t *name = json_object_get(item, "name");
                if (!chosen || (json_is_string(name) && !strcmp(json_string_value(name), "default"))) chosen = item;
            }
            ct = json_object_get(chosen, "template");
        }
        if (json_is_string(ct)) {
            len = json_string_length(ct);
            source = malloc(len + 1);
            if (source) memcpy(source, json_string_value(ct), len + 1);
        }
    }
    if (!source) {
        qwen_fail(err, QWEN_ERR_FORMAT, "%s has no chat template (tokenizer_config.json \"chat_template\" or chat_template.jinja): "
                  "is it a base model? use `qwenc run` for raw prompts", dir);
    } else {
        t = qwen_chat_template_from_source(source, len, err);
        if (t && cfg) {
            const char *keys[] = { "bos_token", "eos_token", "pad_token", "unk_token" };
            for (size_t i = 0; i < 4; i++) add_special(t->defaults, cfg, keys[i]);
        }
        if (!t) qwen_error_prefix(err, "%s: chat template: ", dir);
    }
    free(source);
    json_decref(cfg);
    free(cfg_path);
    free(jinja_path);
    return t;
}

void qwen_chat_template_free(qwen_chat_template *t) {
    if (!t) return;
    jinja_free(t->tpl);
    json_decref(t->defaults);
    free(t);
}

char *qwen_chat_template_render(const qwen_chat_template *t, const char *context_json, size_t len, size_t *out_len,
                                qwen_error **err) {
    if (!t || !context_json) {
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_chat_template_render: missing template or context");
        return NULL;
    }
    json_t *ctx = json_load_text(context_json, len, "template context", err);
    if (!ctx) return NULL;
    if (!json_is_object(ctx)) {
        json_decref(ctx);
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "the template context must be a JSON object");
        return NULL;
    }
    json_object_update_missing(ctx, t->defaults);
    char *out = jinja_render(t->tpl, ctx, out_len, err);
    json_decref(ctx);
    return out;
}
