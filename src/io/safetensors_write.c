/* Writing safetensors files (synthetic checkpoints, quantized exports). */
#include "io/safetensors_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

qwen_status st_write(const char *path, const st_write_tensor *tensors, size_t n, st_fill_fn fill, void *user, qwen_error **err) {
    return st_write_meta(path, NULL, tensors, n, fill, user, err);
}

qwen_status st_write_meta(const char *path, const char *meta, const st_write_tensor *tensors, size_t n, st_fill_fn fill, void *user,
                          qwen_error **err) {
    /* header: {"name": {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, ...} padded to 8 bytes */
    size_t cap = 256 + n * 256 + (meta ? strlen(meta) : 0), len = 0, offset = 0;
    char *hdr = malloc(cap);
    if (!hdr) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"%s%s}", meta ? "," : "", meta ? meta : "");
    for (size_t i = 0; i < n; i++) {
        const st_write_tensor *t = &tensors[i];
        if (cap - len < 512) {
            cap *= 2;
            char *h = realloc(hdr, cap);
            if (!h) { free(hdr); return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); }
            hdr = h;
        }
        size_t bytes = t->nbytes;
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++) len += (size_t)snprintf(hdr + len, cap - len, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) { free(hdr); return qwen_fail(err, QWEN_ERR_IO, "cannot create %s: %s", path, strerror(errno)); }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)(((uint64_t)len >> (8 * i)) & 0xFF);
    bool ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    free(hdr);
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    for (size_t i = 0; ok && buf && i < n; i++)
        for (size_t done = 0; ok && done < tensors[i].nbytes; done += CHUNK) {
            size_t k = tensors[i].nbytes - done < CHUNK ? tensors[i].nbytes - done : CHUNK;
            fill(user, i, done, buf, k);
            ok = fwrite(buf, 1, k, f) == k;
        }
    if (!buf) ok = false;
    free(buf);
    if (fclose(f) != 0) ok = false;
    return ok ? QWEN_OK : qwen_fail(err, QWEN_ERR_IO, "error writing %s", path);
}
