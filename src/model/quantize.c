/* qwen_model_save_quantized: a checkpoint whose matrices are stored as Q8_0/Q4_0 blocks. The model
 * is opened with load-time quantization (model.c), and what it holds is written out: quantized
 * matrices as U8 tensors, everything else as stored. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "io/hfdir.h"
#include "io/safetensors_write.h"

typedef struct out_tensor {
    char name[160];
    const void *data;  /* the bytes to write, or */
    const qtensor *q;  /* a quantized matrix's (in planes, see PLANE_STREAMS, they are read piece by piece) */
    size_t nbytes;
} out_tensor;

static void fill(void *user, size_t index, size_t offset, unsigned char *out, size_t len) {
    const out_tensor *t = (const out_tensor *)user + index;
    if (t->q) qtensor_read(t->q, offset, len, out);
    else memcpy(out, (const unsigned char *)t->data + offset, len);
}

/* The quantized matrix bound under a checkpoint tensor name, or NULL. */
static const qtensor *quantized_for(const qwen_model *m, const char *name) {
    static const struct { const char *suffix; size_t offset; } mats[] = {
        { "self_attn.q_proj.weight", offsetof(layer_weights, wq) }, { "self_attn.k_proj.weight", offsetof(layer_weights, wk) },
        { "self_attn.v_proj.weight", offsetof(layer_weights, wv) }, { "self_attn.o_proj.weight", offsetof(layer_weights, wo) },
        { "mlp.gate_proj.weight", offsetof(layer_weights, gate) }, { "mlp.up_proj.weight", offsetof(layer_weights, up) },
        { "mlp.down_proj.weight", offsetof(layer_weights, down) },
        { "mlp.shared_expert.gate_proj.weight", offsetof(layer_weights, sh_gate) },
        { "mlp.shared_expert.up_proj.weight", offsetof(layer_weights, sh_up) },
        { "mlp.shared_expert.down_proj.weight", offsetof(layer_weights, sh_down) },
    };
    const char *p = strstr(name, "layers.");
    if (!p) return NULL;
    char *end;
    long l = strtol(p + 7, &end, 10);
    if (end == p + 7 || *end != '.' || l < 0 || l >= m->cfg.n_layers) return NULL;
    const layer_weights *w = &m->layers[l];
    const qtensor *q = NULL;
    for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
        if (!strcmp(end + 1, mats[i].suffix)) q = (const qtensor *)((const char *)w + mats[i].offset);
    if (!q && w->sparse && !strncmp(end + 1, "mlp.experts.", 12)) { /* mlp.experts.E.{gate,up,down}_proj.weight */
        char *tail;
        long e = strtol(end + 13, &tail, 10);
        if (tail != end + 13 && e >= 0 && e < m->cfg.n_experts) {
            if (!strcmp(tail, ".gate_proj.weight")) q = &w->e_gate[e];
            else if (!strcmp(tail, ".up_proj.weight")) q = &w->e_up[e];
            else if (!strcmp(tail, ".down_proj.weight")) q = &w->e_down[e];
        }
    }
    return q && (q->dtype == QDT_Q8_0 || q->dtype == QDT_Q4_0) ? q : NULL;
}

static qwen_status copy_if_present(const char *in_dir, const char *out_dir, const char *name, qwen_error **err) {
    char *from = path_join(in_dir, name), *to = path_join(out_dir, name);
    qwen_status st = QWEN_OK;
    if (from && to && file_exists(from)) {
        size_t len;
        char *data = file_read_all(from, &len, err);
        FILE *f = data ? fopen(to, "wb") : NULL;
        if (!data) st = QWEN_ERR_IO;
        else if (!f || fwrite(data, 1, len, f) != len) st = qwen_fail(err, QWEN_ERR_IO, "cannot write %s", to);
        if (f && fclose(f)) st = qwen_fail(err, QWEN_ERR_IO, "cannot write %s", to);
        free(data);
    }
    free(from);
    free(to);
    return st;
}

/* Refuses an output directory that would overwrite weights: the model's own directory (its
 * mapped files would be truncated while being read), or one that already holds a checkpoint (a
 * leftover model.safetensors.index.json would take precedence over the new single file). */
static qwen_status check_out_dir(const char *model_dir, const char *out_dir, qwen_error **err) {
    struct stat a, b;
    if (stat(out_dir, &b) != 0) return QWEN_OK; /* created below */
    if (!S_ISDIR(b.st_mode)) return qwen_fail(err, QWEN_ERR_IO, "%s exists and is not a directory", out_dir);
    if (stat(model_dir, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return qwen_fail(err, QWEN_ERR_IO, "%s is the model's own directory: quantizing in place would overwrite the weights being read; give a new OUT_DIR",
                         out_dir);
    const char *ckpt = st_dir_checkpoint(out_dir);
    if (ckpt) return qwen_fail(err, QWEN_ERR_IO, "%s already holds a checkpoint (%s): give a new or empty OUT_DIR, or remove it first", out_dir, ckpt);
    return QWEN_OK;
}

qwen_status qwen_model_save_quantized(const char *in_spec, const char *out_dir, const char *quant, int threads, qwen_error **err) {
    /* the arguments and OUT_DIR first: loading and quantizing a large model takes minutes */
    qdtype type;
    if (!in_spec || !out_dir || !quant) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "the model, the output directory and the quantization type are all required");
    qwen_status st = quant_type_parse(quant, &type, err);
    if (st) return st;
    char *in_dir = hf_resolve_model_dir(in_spec, err);
    if (!in_dir) return QWEN_ERR_IO;
    st = check_out_dir(in_dir, out_dir, err);
    free(in_dir);
    if (st) return st;
    qwen_model *m = qwen_model_open(in_spec, &(qwen_model_opts){ .threads = threads, .quant = quant, .mmap = true }, err);
    if (!m) return QWEN_ERR_FORMAT;
    const char *qname = type == QDT_Q8_0 ? "q8_0" : "q4_0";
    st = check_out_dir(m->dir, out_dir, err); /* again: it may have changed in the meantime */
    if (!st && mkdir(out_dir, 0755) != 0 && errno != EEXIST) st = qwen_fail(err, QWEN_ERR_IO, "cannot create %s: %s", out_dir, strerror(errno));
    out_tensor *outs = calloc(m->ck.n_tensors + 1, sizeof *outs);
    st_write_tensor *ts = calloc(m->ck.n_tensors + 1, sizeof *ts);
    size_t n = 0;
    if (!st && (!outs || !ts)) st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < m->ck.n_tensors; i++) {
        const st_tensor *t = &m->ck.tensors[i];
        const qtensor *q = quantized_for(m, t->name);
        if (!q && !strcmp(t->name, "lm_head.weight") && (m->lm_head.dtype == QDT_Q8_0 || m->lm_head.dtype == QDT_Q4_0)) q = &m->lm_head;
        snprintf(outs[n].name, sizeof outs[n].name, "%s", t->name);
        ts[n].name = outs[n].name;
        ts[n].ndim = t->ndim;
        memcpy(ts[n].shape, t->shape, sizeof ts[n].shape);
        if (q) {
            ts[n].dtype = "U8";
            ts[n].shape[1] = (int64_t)qdtype_row_bytes(q->dtype, q->cols);
            outs[n].q = q;
            outs[n].nbytes = qtensor_bytes(q);
        } else {
            ts[n].dtype = t->dtype == QDT_F32 ? "F32" : t->dtype == QDT_F16 ? "F16" : "BF16";
            outs[n].data = t->data;
            outs[n].nbytes = t->nbytes;
        }
        ts[n].nbytes = outs[n].nbytes;
        n++;
    }
    if (!st && m->cfg.tie_embeddings && (m->lm_head.dtype == QDT_Q8_0 || m->lm_head.dtype == QDT_Q4_0)) {
        snprintf(outs[n].name, sizeof outs[n].name, "lm_head.weight");
        outs[n].q = &m->lm_head;
        outs[n].nbytes = qtensor_bytes(&m->lm_head);
        ts[n] = (st_write_tensor){ outs[n].name, "U8", 2, { m->lm_head.rows, (int64_t)qdtype_row_bytes(m->lm_head.dtype, m->lm_head.cols) }, outs[n].nbytes };
        n++;
    }
    /* the weights go to a .part file first: an interrupted run leaves no model.safetensors */
    char *st_path = path_join(out_dir, "model.safetensors"), *part = path_join(out_dir, "model.safetensors.part");
    char meta[96];
    snprintf(meta, sizeof meta, "\"qwenc.quant\":\"%s\",\"qwenc.layout\":\"rows16\"", qname);
    if (!st && (!st_path || !part)) st = qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    if (!st) st = st_write_meta(part, meta, ts, n, fill, outs, err);
    if (!st && rename(part, st_path) != 0) st = qwen_fail(err, QWEN_ERR_IO, "cannot rename %s to %s: %s", part, st_path, strerror(errno));
    if (st && part) remove(part);
    free(st_path);
    free(part);
    /* config: the head is now its own tensor */
    if (!st) {
        char *cfg_in = path_join(m->dir, "config.json"), *cfg_out = path_join(out_dir, "config.json");
        json_t *cfg = json_load_path(cfg_in, err);
        if (!cfg) st = QWEN_ERR_FORMAT;
        else {
            json_object_set_new(cfg, "tie_word_embeddings", json_false());
            if (json_dump_file(cfg, cfg_out, JSON_INDENT(2))) st = qwen_fail(err, QWEN_ERR_IO, "cannot write %s", cfg_out);
            json_decref(cfg);
        }
        free(cfg_in);
        free(cfg_out);
    }
    const char *copies[] = { "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja" };
    for (size_t i = 0; !st && i < sizeof copies / sizeof *copies; i++) st = copy_if_present(m->dir, out_dir, copies[i], err);
    free(outs);
    free(ts);
    qwen_model_close(m);
    return st;
}
