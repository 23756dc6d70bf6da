/* safetensors: memory-mapped checkpoints, single-file or sharded through model.safetensors.index.json.
 * Every header is validated before any tensor is touched: header length inside the file, known
 * dtypes, shapes whose byte size matches the offsets, offsets inside the data, no overlaps. */
#ifndef QWENC_IO_SAFETENSORS_H
#define QWENC_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "qwenc.h"
#include "base/file.h"
#include "base/strmap.h"
#include "tensor/tensor.h"

typedef struct st_tensor {
    char *name;
    qdtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data; /* inside a mapping */
    size_t nbytes;
} st_tensor;

typedef struct st_checkpoint {
    file_map *maps;   /* one per shard */
    size_t n_maps;
    st_tensor *tensors;
    size_t n_tensors;
    strmap by_name;   /* name -> index in tensors */
    void **copies;    /* aligned copies of tensors whose mapped data was misaligned */
    size_t n_copies;
} st_checkpoint;

/* Opens the safetensors weights of a model directory (model.safetensors, or the shards listed
 * by model.safetensors.index.json). Returns non-zero with *err naming the file and the problem. */
qwen_status st_open_dir(st_checkpoint *ck, const char *dir, qwen_error **err);
/* The checkpoint file a directory already holds (model.safetensors.index.json or
 * model.safetensors, the one st_open_dir would read), or NULL: writers refuse such a directory
 * rather than overwrite weights. */
const char *st_dir_checkpoint(const char *dir);
/* Opens one safetensors file, adding its tensors to ck (ck zeroed before the first call). */
qwen_status st_open_file(st_checkpoint *ck, const char *path, qwen_error **err);
const st_tensor *st_find(const st_checkpoint *ck, const char *name);
void st_close(st_checkpoint *ck);

#endif
