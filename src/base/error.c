#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qwen_status qwen_fail(qwen_error **err, qwen_status status, const char *fmt, ...) {
    if (!err || *err) return status;
    qwen_error *e = calloc(1, sizeof *e);
    if (!e) return status;
    e->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    *err = e;
    return status;
}

void qwen_error_prefix(qwen_error **err, const char *fmt, ...) {
    if (!err || !*err) return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), cap = sizeof((*err)->message);
    if (plen >= cap) plen = cap - 1;
    size_t mlen = strnlen((*err)->message, cap - 1);
    if (plen + mlen >= cap) mlen = cap - 1 - plen;
    memmove((*err)->message + plen, (*err)->message, mlen);
    memcpy((*err)->message, prefix, plen);
    (*err)->message[plen + mlen] = 0;
}

const char *qwen_error_message(const qwen_error *err) { return err ? err->message : ""; }
qwen_status qwen_error_status(const qwen_error *err) { return err ? err->status : QWEN_OK; }
void qwen_error_free(qwen_error *err) { free(err); }
