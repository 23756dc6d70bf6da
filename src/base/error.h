/* Errors: a status code plus a formatted one-line message, returned through `qwen_error **`. */
#ifndef QWENC_BASE_ERROR_H
#define QWENC_BASE_ERROR_H

#include "qwenc.h"

struct qwen_error {
    qwen_status status;
    char message[1024];
};

/* Sets *err (when err is non-NULL and *err is still NULL) to a new error with a printf-style
 * message. Returns `status` so callers can write `return qwen_fail(err, ...)`. An earlier error
 * already in *err is kept: the first cause is the most useful one. */
qwen_status qwen_fail(qwen_error **err, qwen_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing error's message with context ("loading X: "). No-op if *err is NULL. */
void qwen_error_prefix(qwen_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
