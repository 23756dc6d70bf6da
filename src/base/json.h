/* JSON: thin helpers over jansson for reading configuration files with clear errors. */
#ifndef QWENC_BASE_JSON_H
#define QWENC_BASE_JSON_H

#include <jansson.h>
#include "qwenc.h"

/* Parses the JSON file at `path`. Returns a new reference or NULL with *err naming the file,
 * line and column of the problem. */
json_t *json_load_path(const char *path, qwen_error **err);

/* Parses a JSON text held in memory; `what` names it in the error message. */
json_t *json_load_text(const char *text, size_t len, const char *what, qwen_error **err);

#endif
