/* Writing safetensors files. */
#ifndef QWENC_IO_SAFETENSORS_WRITE_H
#define QWENC_IO_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include "qwenc.h"

typedef struct st_write_tensor {
    const char *name;
    const char *dtype; /* "BF16", "F32", "U8" ... */
    int ndim;
    int64_t shape[4];
    size_t nbytes;
} st_write_tensor;

/* Fills out[0..len) with bytes [offset, offset+len) of tensor `index`. */
typedef void (*st_fill_fn)(void *user, size_t index, size_t offset, unsigned char *out, size_t len);

/* Writes `n` tensors to `path`, streaming their bytes from `fill` in 1 MiB pieces. */
qwen_status st_write(const char *path, const st_write_tensor *tensors, size_t n, st_fill_fn fill, void *user, qwen_error **err);
/* The same with extra "__metadata__" members: `meta` is JSON object members text ("\"k\":\"v\"") or NULL. */
qwen_status st_write_meta(const char *path, const char *meta, const st_write_tensor *tensors, size_t n, st_fill_fn fill, void *user,
                          qwen_error **err);

#endif
