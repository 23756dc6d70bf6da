#include "io/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"

typedef struct span { size_t begin, end; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* U8 tensors are the block-quantized matrices qwenc quantize writes (see st_open_file). */
enum { DT_U8 = -1 };

static int parse_dtype(const char *s, qdtype *out) {
    if (!strcmp(s, "U8")) *out = (qdtype)DT_U8;
    else if (!strcmp(s, "F32")) *out = QDT_F32;
    else if (!strcmp(s, "F16")) *out = QDT_F16;
    else if (!strcmp(s, "BF16")) *out = QDT_BF16;
    else return 0;
    return 1;
}

qwen_status st_open_file(st_checkpoint *ck, const char *path, qwen_error **err) {
    file_map map;
    if (file_map_open(&map, path, err)) return QWEN_ERR_IO;
    if (map.size < 8) {
        file_unmap(&map);
        return qwen_fail(err, QWEN_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes, no header)", path, map.size);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map.data[i];
    if (hlen > map.size - 8 || hlen > (100u << 20)) {
        file_unmap(&map);
        return qwen_fail(err, QWEN_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                         (unsigned long long)hlen, map.size);
    }
    qwen_error *jerr = NULL;
    json_t *hdr = json_load_text((const char *)map.data + 8, (size_t)hlen, "header", &jerr);
    if (!hdr || !json_is_object(hdr)) {
        qwen_fail(err, QWEN_ERR_FORMAT, "%s: %s", path, jerr ? qwen_error_message(jerr) : "header is not a JSON object");
        qwen_error_free(jerr);
        json_decref(hdr);
        file_unmap(&map);
        return QWEN_ERR_FORMAT;
    }
    const unsigned char *base = map.data + 8 + hlen;
    size_t data_size = map.size - 8 - (size_t)hlen;
    size_t n_new = json_object_size(hdr);
    st_tensor *grown = realloc(ck->tensors, (ck->n_tensors + n_new) * sizeof *grown);
    file_map *maps = realloc(ck->maps, (ck->n_maps + 1) * sizeof *maps);
    span *spans = malloc((n_new ? n_new : 1) * sizeof *spans);
    if (grown) ck->tensors = grown;
    if (maps) ck->maps = maps;
    if (!grown || !maps || !spans) {
        free(spans);
        json_decref(hdr);
        file_unmap(&map);
        return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    }
    ck->maps[ck->n_maps++] = map;
    size_t n_spans = 0;
    const char *name;
    json_t *info;
    qwen_status st = QWEN_OK;
    /* "qwenc.quant": "q8_0" | "q4_0" in the metadata: 2-D U8 tensors hold rows of such blocks */
    json_t *quant = json_object_get(json_object_get(hdr, "__metadata__"), "qwenc.quant");
    int quant_type = !json_is_string(quant) ? -1 : !strcmp(json_string_value(quant), "q8_0") ? QDT_Q8_0
                   : !strcmp(json_string_value(quant), "q4_0") ? QDT_Q4_0 : -2;
    /* "qwenc.layout": "rows16": matrices with a multiple of 16 rows are interleaved (tensor.h, QROWS) */
    json_t *layout = json_object_get(json_object_get(hdr, "__metadata__"), "qwenc.layout");
    if (quant_type >= 0 && !(json_is_string(layout) && !strcmp(json_string_value(layout), "rows16"))) {
        qwen_fail(err, QWEN_ERR_UNSUPPORTED, "%s: written by an older qwenc quantize (no qwenc.layout rows16); run qwenc quantize on the original model again", path);
        quant_type = -3;
    } else if (quant_type == -2) {
        qwen_fail(err, QWEN_ERR_UNSUPPORTED, "%s: unknown qwenc.quant '%s'", path, json_string_value(quant));
    }
    if (quant_type < -1) {
        free(spans);
        json_decref(hdr);
        return QWEN_ERR_UNSUPPORTED;
    }
    json_object_foreach(hdr, name, info) {
        if (!strcmp(name, "__metadata__")) continue;
        json_t *dt = json_object_get(info, "dtype"), *shape = json_object_get(info, "shape"),
               *offs = json_object_get(info, "data_offsets");
        st_tensor t = { 0 };
        if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2) {
            st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", path, name);
            break;
        }
        if (!parse_dtype(json_string_value(dt), &t.dtype)) {
            st = qwen_fail(err, QWEN_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s", path, name, json_string_value(dt));
            break;
        }
        t.ndim = (int)json_array_size(shape);
        if (t.ndim > 4) {
            st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensor '%s' has %d dimensions", path, name, t.ndim);
            break;
        }
        uint64_t count = 1;
        for (int d = 0; d < t.ndim; d++) {
            json_t *v = json_array_get(shape, (size_t)d);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1ll << 40)) {
                st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensor '%s' has an invalid shape", path, name);
                break;
            }
            t.shape[d] = json_integer_value(v);
            if (t.shape[d] && count > (1ull << 40) / (uint64_t)t.shape[d]) { /* before the product can wrap */
                st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensor '%s' is impossibly large", path, name);
                break;
            }
            count *= (uint64_t)t.shape[d];
        }
        if (st) break;
        json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > data_size) {
            st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensor '%s' has data offsets outside the file's %zu data bytes", path, name, data_size);
            break;
        }
        size_t begin = (size_t)json_integer_value(b), end = (size_t)json_integer_value(e);
        size_t elem = (int)t.dtype == DT_U8 ? 1 : qdtype_size(t.dtype);
        if (end - begin != count * elem) {
            st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensor '%s' holds %zu bytes but its shape and dtype need %llu", path, name,
                           end - begin, (unsigned long long)(count * elem));
            break;
        }
        if ((int)t.dtype == DT_U8) {
            size_t block = quant_type == QDT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
            if (quant_type < 0 || t.ndim != 2 || t.shape[1] % (int64_t)block) {
                st = qwen_fail(err, QWEN_ERR_UNSUPPORTED, "%s: tensor '%s' is U8 but not a qwenc block-quantized matrix", path, name);
                break;
            }
            t.dtype = (qdtype)quant_type;
            t.shape[1] = t.shape[1] / (int64_t)block * QK; /* the logical number of columns */
        }
        t.data = base + begin;
        size_t align = t.dtype == QDT_Q8_0 || t.dtype == QDT_Q4_0 ? 2 : elem; /* the blocks start with an f16 scale */
        if ((uintptr_t)t.data % align) {
            /* an unpadded header leaves the data misaligned: keep an aligned copy of this tensor */
            void *copy = malloc(end - begin ? end - begin : 1);
            void **copies = realloc(ck->copies, (ck->n_copies + 1) * sizeof *copies);
            if (copies) ck->copies = copies;
            if (!copy || !copies) {
                free(copy);
                st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(copy, base + begin, end - begin);
            ck->copies[ck->n_copies++] = copy;
            t.data = copy;
        }
        t.name = strdup(name);
        t.nbytes = end - begin;
        if (!t.name) { st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); break; }
        spans[n_spans++] = (span){ begin, end };
        ck->tensors[ck->n_tensors++] = t;
    }
    if (!st) {
        qsort(spans, n_spans, sizeof *spans, span_cmp);
        for (size_t i = 1; i < n_spans; i++)
            if (spans[i].begin < spans[i - 1].end && spans[i].end > spans[i].begin) {
                st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: tensors overlap at data bytes %zu..%zu", path, spans[i].begin, spans[i - 1].end);
                break;
            }
    }
    free(spans);
    json_decref(hdr);
    return st;
}

static qwen_status index_tensors(st_checkpoint *ck, qwen_error **err) {
    for (size_t i = 0; i < ck->n_tensors; i++) {
        uint32_t prev;
        const char *n = ck->tensors[i].name;
        if (strmap_get(&ck->by_name, n, strlen(n), &prev))
            return qwen_fail(err, QWEN_ERR_FORMAT, "tensor '%s' appears twice", n);
        if (!strmap_put(&ck->by_name, n, strlen(n), (uint32_t)i)) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    }
    return QWEN_OK;
}

const char *st_dir_checkpoint(const char *dir) {
    static const char *const names[] = { "model.safetensors.index.json", "model.safetensors" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *path = path_join(dir, names[i]);
        bool there = path && file_exists(path);
        free(path);
        if (there) return names[i];
    }
    return NULL;
}

/* The shards an index file lists, each opened once in order of first mention; every tensor the
 * index names must exist. */
static qwen_status open_sharded(st_checkpoint *ck, const char *dir, const char *index, qwen_error **err) {
    qwen_status st = QWEN_OK;
    json_t *root = json_load_path(index, err);
    json_t *map = json_object_get(root, "weight_map");
    if (!root) st = QWEN_ERR_FORMAT;
    else if (!json_is_object(map)) st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: no weight_map object", index);
    const char *name;
    json_t *file;
    strmap seen = { 0 };
    if (!st) json_object_foreach(map, name, file) {
        uint32_t dummy;
        if (!json_is_string(file) || strchr(json_string_value(file), '/')) {
            st = qwen_fail(err, QWEN_ERR_FORMAT, "%s: bad shard name for '%s'", index, name);
            break;
        }
        const char *f = json_string_value(file);
        if (strmap_get(&seen, f, strlen(f), &dummy)) continue;
        strmap_put(&seen, f, strlen(f), 0);
        char *path = path_join(dir, f);
        st = path ? st_open_file(ck, path, err) : QWEN_ERR_NOMEM;
        free(path);
        if (st) break;
    }
    strmap_free(&seen);
    if (!st && (st = index_tensors(ck, err)) == QWEN_OK) {
        json_object_foreach(map, name, file) if (!st_find(ck, name)) {
            st = qwen_fail(err, QWEN_ERR_FORMAT, "%s lists tensor '%s' but %s lacks it", index, name, json_string_value(file));
            break;
        }
    }
    json_decref(root);
    return st;
}

qwen_status st_open_dir(st_checkpoint *ck, const char *dir, qwen_error **err) {
    memset(ck, 0, sizeof *ck);
    const char *which = st_dir_checkpoint(dir); /* the index first, as Hugging Face reads it */
    if (!which) return qwen_fail(err, QWEN_ERR_IO, "%s has no model.safetensors or model.safetensors.index.json", dir);
    char *path = path_join(dir, which);
    if (!path) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    qwen_status st;
    if (strcmp(which, "model.safetensors")) {
        st = open_sharded(ck, dir, path, err);
    } else {
        st = st_open_file(ck, path, err);
        if (!st) st = index_tensors(ck, err);
    }
    free(path);
    return st;
}

const st_tensor *st_find(const st_checkpoint *ck, const char *name) {
    uint32_t i;
    return strmap_get(&ck->by_name, name, strlen(name), &i) ? &ck->tensors[i] : NULL;
}

void st_close(st_checkpoint *ck) {
    for (size_t i = 0; i < ck->n_tensors; i++) free(ck->tensors[i].name);
    free(ck->tensors);
    for (size_t i = 0; i < ck->n_maps; i++) file_unmap(&ck->maps[i]);
    for (size_t i = 0; i < ck->n_copies; i++) free(ck->copies[i]);
    free(ck->copies);
    free(ck->maps);
    strmap_free(&ck->by_name);
    memset(ck, 0, sizeof *ck);
}
