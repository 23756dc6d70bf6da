#include "base/json.h"
#include "base/error.h"
#include "base/file.h"

#include <stdlib.h>

json_t *json_load_text(const char *text, size_t len, const char *what, qwen_error **err) {
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!root) qwen_fail(err, QWEN_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", what, je.line, je.column, je.text);
    return root;
}

json_t *json_load_path(const char *path, qwen_error **err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text) return NULL;
    json_t *root = json_load_text(text, len, path, err);
    free(text);
    return root;
}
