/* A Jinja2 engine for chat templates, rendering byte-for-byte as transformers' apply_chat_template
 * configures jinja2: trim_blocks, lstrip_blocks, loop controls, tojson with ensure_ascii=False,
 * raise_exception(). The context is JSON (jansson); values keep JSON's int/float distinction and
 * object key order. Errors carry the template line and column. */
#ifndef QWENC_CHAT_JINJA_H
#define QWENC_CHAT_JINJA_H

#include <jansson.h>
#include "qwenc.h"

typedef struct jinja_template jinja_template;

/* Parses a template. Returns NULL with *err ("line L, column C: ...") on a syntax error. */
jinja_template *jinja_parse(const char *source, size_t len, qwen_error **err);
void jinja_free(jinja_template *t);

/* Renders with `context` (a JSON object; borrowed). Returns a malloc'ed NUL-terminated string
 * (*out_len its length), or NULL with *err on a runtime error (including raise_exception). */
char *jinja_render(const jinja_template *t, json_t *context, size_t *out_len, qwen_error **err);

#endif
