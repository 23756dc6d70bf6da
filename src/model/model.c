/* Opening a model directory: config, mapped weights bound by name with their shapes checked,
 * RoPE frequencies, generation defaults, the tokenizer. */
#include "model/model.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bigmem.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "io/hfdir.h"

/* Finds a weight by name with or without the "model." prefix (embedding checkpoints drop it). */
static const st_tensor *find_weight(const qwen_model *m, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "model.%s", name);
    const st_tensor *t = st_find(&m->ck, full);
    return t ? t : st_find(&m->ck, name);
}

static qwen_status bind_matrix(qwen_model *m, qtensor *out, const char *name, int64_t rows, int64_t cols, qwen_error **err) {
    const st_tensor *t = find_weight(m, name);
    if (!t) return qwen_fail(err, QWEN_ERR_FORMAT, "missing tensor '%s'", name);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return qwen_fail(err, QWEN_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                         (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)rows, (long long)cols);
    *out = (qtensor){ .dtype = t->dtype, .rows = rows, .cols = cols, .data = t->data };
    return QWEN_OK;
}

/* Binds a 1-D tensor and converts it to f32 (norm weights and biases are small). */
static qwen_status bind_vector(qwen_model *m, const float **out, const char *name, int64_t n, qwen_error **err) {
    const st_tensor *t = find_weight(m, name);
    if (!t) return qwen_fail(err, QWEN_ERR_FORMAT, "missing tensor '%s'", name);
    if (t->ndim != 1 || t->shape[0] != n)
        return qwen_fail(err, QWEN_ERR_FORMAT, "tensor '%s' has the wrong shape (expected [%lld])", name, (long long)n);
    float *v = arena_alloc(&m->small, (size_t)n * sizeof(float));
    if (!v) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    qtensor q = { .dtype = t->dtype, .rows = 1, .cols = n, .data = t->data };
    qtensor_row_f32(&q, 0, v);
    *out = v;
    return QWEN_OK;
}

static qwen_status bind_weights(qwen_model *m, qwen_error **err) {
    const model_config *c = &m->cfg;
    int64_t H = c->hidden, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim, I = c->intermediate;
    qwen_status st;
    if ((st = bind_matrix(m, &m->embed, "embed_tokens.weight", c->vocab, H, err))) return st;
    if ((st = bind_vector(m, &m->final_norm, "norm.weight", H, err))) return st;
    if (c->tie_embeddings) {
        m->lm_head = m->embed;
    } else if (!st_find(&m->ck, "lm_head.weight")) {
        return qwen_fail(err, QWEN_ERR_FORMAT, "missing tensor 'lm_head.weight' (tie_word_embeddings is false)");
    } else if ((st = bind_matrix(m, &m->lm_head, "lm_head.weight", c->vocab, H, err))) {
        return st;
    }
    char n[128];
    /* every layer has a norm: a layer count beyond the checkpoint's fails here, before allocating */
    snprintf(n, sizeof n, "layers.%d.input_layernorm.weight", c->n_layers - 1);
    if (!find_weight(m, n))
        return qwen_fail(err, QWEN_ERR_FORMAT, "config.json says %d layers but the weights have no tensor '%s'", c->n_layers, n);
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
#define NAME(fmt) (snprintf(n, sizeof n, "layers.%d." fmt, l), n)
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *w = &m->layers[l];
        if ((st = bind_vector(m, &w->attn_norm, NAME("input_layernorm.weight"), H, err)) ||
            (st = bind_matrix(m, &w->wq, NAME("self_attn.q_proj.weight"), Q, H, err)) ||
            (st = bind_matrix(m, &w->wk, NAME("self_attn.k_proj.weight"), KV, H, err)) ||
            (st = bind_matrix(m, &w->wv, NAME("self_attn.v_proj.weight"), KV, H, err)) ||
            (st = bind_matrix(m, &w->wo, NAME("self_attn.o_proj.weight"), H, Q, err)) ||
            (st = bind_vector(m, &w->mlp_norm, NAME("post_attention_layernorm.weight"), H, err)))
            return st;
        w->sparse = c->n_experts > 0 && !(l < MAX_LAYER_BITS && (c->mlp_only_layers[l / 64] >> (l % 64)) & 1) && (l + 1) % c->decoder_sparse_step == 0;
        if (!w->sparse) {
            if ((st = bind_matrix(m, &w->gate, NAME("mlp.gate_proj.weight"), I, H, err)) ||
                (st = bind_matrix(m, &w->up, NAME("mlp.up_proj.weight"), I, H, err)) ||
                (st = bind_matrix(m, &w->down, NAME("mlp.down_proj.weight"), H, I, err)))
                return st;
        } else {
            int64_t E = c->n_experts, MI = c->moe_intermediate, SI = c->shared_intermediate;
            w->e_gate = arena_alloc(&m->small, 3 * (size_t)E * sizeof(qtensor));
            if (!w->e_gate) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
            w->e_up = w->e_gate + E;
            w->e_down = w->e_up + E;
            if ((st = bind_matrix(m, &w->router, NAME("mlp.gate.weight"), E, H, err))) return st;
            for (int64_t e = 0; e < E; e++) {
                char en[160];
                snprintf(en, sizeof en, "layers.%d.mlp.experts.%lld.", l, (long long)e);
                size_t base = strlen(en);
                if ((snprintf(en + base, sizeof en - base, "gate_proj.weight"), st = bind_matrix(m, &w->e_gate[e], en, MI, H, err)) ||
                    (snprintf(en + base, sizeof en - base, "up_proj.weight"), st = bind_matrix(m, &w->e_up[e], en, MI, H, err)) ||
                    (snprintf(en + base, sizeof en - base, "down_proj.weight"), st = bind_matrix(m, &w->e_down[e], en, H, MI, err)))
                    return st;
            }
            if (SI &&
                ((st = bind_matrix(m, &w->sh_gate, NAME("mlp.shared_expert.gate_proj.weight"), SI, H, err)) ||
                 (st = bind_matrix(m, &w->sh_up, NAME("mlp.shared_expert.up_proj.weight"), SI, H, err)) ||
                 (st = bind_matrix(m, &w->sh_down, NAME("mlp.shared_expert.down_proj.weight"), H, SI, err)) ||
                 (st = bind_matrix(m, &w->sh_router, NAME("mlp.shared_expert_gate.weight"), 1, H, err))))
                return st;
        }
        if (c->qkv_bias &&
            ((st = bind_vector(m, &w->bq, NAME("self_attn.q_proj.bias"), Q, err)) ||
             (st = bind_vector(m, &w->bk, NAME("self_attn.k_proj.bias"), KV, err)) ||
             (st = bind_vector(m, &w->bv, NAME("self_attn.v_proj.bias"), KV, err))))
            return st;
        if (c->o_bias && (st = bind_vector(m, &w->bo, NAME("self_attn.o_proj.bias"), H, err))) return st;
        if (c->qk_norm &&
            ((st = bind_vector(m, &w->q_norm, NAME("self_attn.q_norm.weight"), c->head_dim, err)) ||
             (st = bind_vector(m, &w->k_norm, NAME("self_attn.k_norm.weight"), c->head_dim, err))))
            return st;
    }
#undef NAME
    return QWEN_OK;
}

typedef struct quant_job {
    const qtensor *src;
    qtensor *dst;
    int64_t rows_per_part; /* a multiple of QROWS */
    bool *failed;          /* [parts] out of memory */
} quant_job;

/* Quantizes rows [part * rows_per_part, ...) 16 at a time (interleaved when the matrix is). */
static void quantize_part(void *ctx, int part, int thread_index) {
    (void)thread_index;
    const quant_job *j = ctx;
    int64_t r0 = part * j->rows_per_part, r1 = r0 + j->rows_per_part, cols = j->src->cols;
    if (r1 > j->src->rows) r1 = j->src->rows;
    float *rows = malloc((size_t)QROWS * (size_t)cols * sizeof(float));
    if (!rows) { j->failed[part] = true; return; }
    size_t row_bytes = qdtype_row_bytes(j->dst->dtype, cols);
    bool interleave = q_interleaved(j->dst);
    for (int64_t r = r0; r < r1; r += QROWS) {
        int64_t n = r1 - r < QROWS ? r1 - r : QROWS;
        for (int64_t i = 0; i < n; i++) qtensor_row_f32(j->src, r + i, rows + i * cols);
        if (!quantize_rows_f32(j->dst->dtype, rows, n, cols, interleave, (void *)q_row(j->dst, r, row_bytes))) j->failed[part] = true;
    }
    free(rows);
}

/* big_alloc'ed memory the model owns (freed in qwen_model_close); NULL when out of memory. */
static void *owned_alloc(qwen_model *m, size_t size) {
    struct owned_block *owned = realloc(m->owned, (m->n_owned + 1) * sizeof *owned);
    if (!owned) return NULL;
    m->owned = owned;
    void *data = big_alloc(size);
    if (data) m->owned[m->n_owned++] = (struct owned_block){ data, size };
    return data;
}

/* Whether p lies in memory the model owns (a copy made at load), rather than in a mapped file. */
static bool model_owns(const qwen_model *m, const void *p) {
    for (size_t i = 0; i < m->n_owned; i++)
        if ((const char *)p >= (const char *)m->owned[i].data && (const char *)p < (const char *)m->owned[i].data + m->owned[i].size) return true;
    return false;
}

/* Calls fn on every matrix a forward pass multiplies with: each layer's attention and
 * feed-forward matrices (experts and the shared expert included; the routers only when
 * `routers`), then the output head. Matrices a layer does not have (rows 0) are skipped. Stops
 * at the first failure and returns it. */
typedef qwen_status (*matrix_fn)(qwen_model *m, qtensor *t, void *ctx, qwen_error **err);
static qwen_status for_each_matrix(qwen_model *m, bool routers, matrix_fn fn, void *ctx, qwen_error **err) {
    qwen_status st = QWEN_OK;
#define VISIT(T) if ((T)->rows > 0 && (T)->data && (st = fn(m, (T), ctx, err))) return st
    for (int l = 0; l < m->cfg.n_layers; l++) {
        layer_weights *w = &m->layers[l];
        qtensor *ts[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->gate, &w->up, &w->down, &w->sh_gate, &w->sh_up, &w->sh_down };
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) VISIT(ts[i]);
        for (int e = 0; w->sparse && e < m->cfg.n_experts; e++) {
            VISIT(&w->e_gate[e]);
            VISIT(&w->e_up[e]);
            VISIT(&w->e_down[e]);
        }
        if (routers) {
            VISIT(&w->router);
            VISIT(&w->sh_router);
        }
    }
    VISIT(&m->lm_head);
#undef VISIT
    return st;
}

/* One stage of load-time work over the matrices (quantizing, or packing and copying): a first
 * pass counts the bytes it will read and write, the second does the work, reports progress and
 * puts every copy into one region, in the order for_each_matrix visits them (the order a forward
 * pass reads them), each copy WEIGHT_ALIGN-aligned. One region rather than one big_alloc per
 * matrix: each of those took whole 2 MB huge pages (a Qwen3-0.6B shape quantized to Q4_0 at load
 * held 392 MB for 248 MB of layer weights), and a matrix now ends where the next one starts. */
enum { WEIGHT_ALIGN = 4096 };
/* Planar copies (see PLANE_STREAMS): for pools of 2 to MAX_PLANE_THREADS threads; each matrix's
 * pieces PIECE_ALIGN-aligned in their planes (a stream runs on into the next matrix), the planes
 * a multiple of PLANE_ALIGN apart (further apart read a little faster than packed, BENCHMARKS.md;
 * what a plane does not fill is address space only, never touched). */
enum { MAX_PLANE_THREADS = 8, PIECE_ALIGN = 64 };
#define PLANE_ALIGN ((size_t)64 << 20)
typedef struct load_work {
    const qwen_model_opts *opts;
    const char *stage;
    qdtype type;      /* quantizing: the target */
    bool counting;    /* first pass */
    size_t total, done;
    size_t out_total; /* bytes of the copies, each rounded up to WEIGHT_ALIGN */
    char *out;        /* second pass: the region they go to, and how much of it is taken */
    size_t out_used;
    int piece_threads; /* > 0: interleaved Q8_0/Q4_0 copies go into planes for this many threads */
    size_t plane_total; /* bytes each plane holds (first pass), */
    char *planes;       /* the planes (second pass), plane_gap apart, */
    size_t plane_gap, plane_used; /* and how much of each is taken */
} load_work;

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
static size_t align_weight(size_t n) { return align_up(n, WEIGHT_ALIGN); }

/* Threads the stage lays planar copies out for: the pool's, where planes can serve it (2 to
 * MAX_PLANE_THREADS threads, a dense model: experts' matrices are
 * read a few tokens at a time), unless the environment sets QWENC_NO_PLANES (to compare, or to
 * rule them out); 0: no planes. */
static int planar_threads(const qwen_model *m) {
    int threads = thread_pool_size(m->pool);
    bool ok = threads >= 2 && threads <= MAX_PLANE_THREADS && m->cfg.n_experts == 0 && !getenv("QWENC_NO_PLANES");
    return ok ? threads : 0;
}

/* Rows of a piece of the copy `dst` in planes, or 0 when it stays contiguous (not interleaved
 * Q8_0/Q4_0 with a four-group tile in the kernel table, or rows not a whole number of groups in
 * every piece). */
static int64_t planar_piece_rows(const load_work *w, const qtensor *dst) {
    const dot_kernels *k = dot_kernels_best();
    bool tile = (dst->dtype == QDT_Q4_0 && k->gemv4_q4_0) || (dst->dtype == QDT_Q8_0 && k->gemv4_q8_0);
    int64_t pieces = (int64_t)PLANE_STREAMS * w->piece_threads;
    if (!pieces || !tile || !q_interleaved(dst) || dst->rows % (pieces * QROWS)) return 0;
    return dst->rows / pieces;
}

/* Where the copy of src goes (dst: its type, rows and cols): into the planes when it can be
 * planar, otherwise the stage's region. The first pass counts it and returns true; the second
 * sets dst->data (and its planar layout) and returns false: do the work now. */
static bool load_place(load_work *w, const qtensor *src, qtensor *dst) {
    int64_t piece_rows = planar_piece_rows(w, dst);
    size_t piece_bytes = (size_t)piece_rows * qdtype_row_bytes(dst->dtype, dst->cols), bytes = qtensor_bytes(dst);
    if (w->counting) {
        w->total += qtensor_bytes(src);
        if (piece_rows) w->plane_total += align_up(piece_bytes, PIECE_ALIGN);
        else w->out_total += align_weight(bytes);
        return true;
    }
    if (piece_rows) {
        dst->data = w->planes + w->plane_used;
        dst->piece_rows = piece_rows;
        dst->piece_threads = w->piece_threads;
        dst->plane_gap = w->plane_gap;
        w->plane_used += align_up(piece_bytes, PIECE_ALIGN);
    } else {
        dst->data = w->out + w->out_used;
        w->out_used += align_weight(bytes);
    }
    return false;
}

/* Bytes of memory the copies the first pass counted will touch. */
static size_t load_bytes(const load_work *w) { return w->out_total + w->plane_total * PLANE_STREAMS * (size_t)w->piece_threads; }

/* Reserves the region and the planes the first pass counted (nothing when it counted nothing). */
static qwen_status load_reserve(qwen_model *m, load_work *w, qwen_error **err) {
    w->counting = false;
    if (w->out_total && !(w->out = owned_alloc(m, w->out_total))) goto nomem;
    if (w->plane_total) {
        w->plane_gap = align_up(w->plane_total, PLANE_ALIGN);
        if (!(w->planes = owned_alloc(m, w->plane_gap * PLANE_STREAMS * (size_t)w->piece_threads))) goto nomem;
    }
    return QWEN_OK;
nomem:
    return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory %s weights (%zu MB)", w->stage, load_bytes(w) >> 20);
}

static void load_report(load_work *w, size_t bytes) {
    w->done += bytes;
    if (w->opts && w->opts->progress && w->total) w->opts->progress(w->opts->progress_user, w->stage, (double)w->done / (double)w->total);
}

/* Replaces *t by its copy quantized into q (type, shape and place set: memory the model owns). */
static qwen_status quantize_matrix(qwen_model *m, qtensor *t, qtensor q, qwen_error **err) {
    int parts = (int)((t->rows + 63) / 64);
    bool *failed = calloc((size_t)parts, sizeof *failed);
    if (!failed) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory quantizing weights");
    quant_job j = { t, &q, 64, failed };
    thread_pool_run(m->pool, parts, quantize_part, &j);
    bool ok = true;
    for (int i = 0; i < parts; i++) ok &= !failed[i];
    free(failed);
    if (!ok) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory quantizing weights");
    *t = q;
    return QWEN_OK;
}

/* Quantizes a matrix to w->type unless it has that type already or its rows are not whole blocks
 * (then it stays as it is). */
static qwen_status quantize_visit(qwen_model *m, qtensor *t, void *ctx, qwen_error **err) {
    load_work *w = ctx;
    qtensor q = { .dtype = w->type, .rows = t->rows, .cols = t->cols };
    if (t->dtype == w->type || t->cols % QK || load_place(w, t, &q)) return QWEN_OK;
    size_t bytes = qtensor_bytes(t);
    qwen_status st = quantize_matrix(m, t, q, err);
    if (!st) load_report(w, bytes);
    return st;
}

qwen_status quant_type_parse(const char *name, qdtype *type, qwen_error **err) {
    if (!strcmp(name, "q8_0") || !strcmp(name, "q8")) *type = QDT_Q8_0;
    else if (!strcmp(name, "q4_0") || !strcmp(name, "q4")) *type = QDT_Q4_0;
    else return qwen_fail(err, QWEN_ERR_INVALID_ARG, "unknown quantization '%s' (use q8_0 or q4_0)", name);
    return QWEN_OK;
}

static qwen_status quantize_weights(qwen_model *m, const qwen_model_opts *opts, qwen_error **err) {
    const char *quant = opts->quant;
    load_work w = { .opts = opts, .stage = "quantizing", .type = QDT_Q8_0, .counting = true, .piece_threads = planar_threads(m) };
    qwen_status st = quant_type_parse(quant, &w.type, err);
    if (st) return st;
    /* not the routers: their small outputs decide which experts run */
    for_each_matrix(m, false, quantize_visit, &w, err);
    if ((st = load_reserve(m, &w, err))) return st;
    return for_each_matrix(m, false, quantize_visit, &w, err);
}

typedef struct pack_job { const uint16_t *src; uint16_t *dst; int64_t cols, rows_per_part, rows; } pack_job;

static void pack_part(void *ctx, int part, int thread_index) {
    (void)thread_index;
    const pack_job *j = ctx;
    int64_t r0 = part * j->rows_per_part, n = j->rows - r0 < j->rows_per_part ? j->rows - r0 : j->rows_per_part;
    pack_bf16x32(j->src + r0 * j->cols, n, j->cols, j->dst + r0 * j->cols);
}

typedef struct copy_job { const char *src; char *dst; size_t bytes; } copy_job;
enum { COPY_PART = 1 << 20 };

static void copy_part(void *ctx, int part, int thread_index) {
    (void)thread_index;
    const copy_job *j = ctx;
    size_t o = (size_t)part * COPY_PART, n = j->bytes - o < COPY_PART ? j->bytes - o : COPY_PART;
    memcpy(j->dst + o, j->src + o, n);
}

/* Makes a matrix's working copy in memory the model owns: a bf16 matrix of whole 32-row groups
 * packed for the tile kernels (QDT_BF16X32); a Q8_0/Q4_0 matrix still in its mapped file (a
 * `qwenc quantize` checkpoint) copied as it is, so that it reads from huge pages like one
 * quantized at load (the file's page cache may hold it partly in 4 KB pieces: of the Qwen3-0.6B-
 * shaped Q4_0 file here 408 of 588 MB were mapped in 2 MB pages, and a first prefill from the
 * mapping ran at 0.76-0.90x of the same weights quantized at load; decode within the VM's noise).
 * Other matrices stay as they are. The mapped
 * pages are released; a tied embedding then reads its rows from the copy when it has the
 * embedding's layout, or back from the file. */
static qwen_status pack_visit(qwen_model *m, qtensor *t, void *ctx, qwen_error **err) {
    load_work *w = ctx;
    bool pack = t->dtype == QDT_BF16 && t->rows % PROWS == 0;
    bool copy = (t->dtype == QDT_Q8_0 || t->dtype == QDT_Q4_0) && !model_owns(m, t->data);
    qtensor dst = { .dtype = pack ? QDT_BF16X32 : t->dtype, .rows = t->rows, .cols = t->cols, .act_bf16 = pack && w->opts && w->opts->bf16_prefill };
    size_t bytes = qtensor_bytes(t);
    if ((!pack && !copy) || load_place(w, t, &dst)) return QWEN_OK;
    const void *old = t->data;
    if (pack) {
        pack_job j = { t->data, (void *)dst.data, t->cols, 2 * PROWS, t->rows }; /* small parts: an expert has few rows */
        thread_pool_run(m->pool, (int)((t->rows + j.rows_per_part - 1) / j.rows_per_part), pack_part, &j);
    } else { /* piece by piece (a contiguous copy is one piece) */
        int64_t piece_rows = dst.piece_rows ? dst.piece_rows : t->rows;
        size_t row_bytes = qdtype_row_bytes(t->dtype, t->cols), piece = (size_t)piece_rows * row_bytes;
        for (int64_t r = 0; r < t->rows; r += piece_rows) {
            copy_job j = { (const char *)t->data + (size_t)r * row_bytes, (char *)q_row(&dst, r, row_bytes), piece };
            thread_pool_run(m->pool, (int)((piece + COPY_PART - 1) / COPY_PART), copy_part, &j);
        }
        if (m->embed.data == old && m->embed.dtype == t->dtype) m->embed = dst; /* a tied embedding: the same matrix */
    }
    *t = dst;
    file_map_release(old, bytes);
    load_report(w, bytes);
    return QWEN_OK;
}

/* Links each planar matrix to the one a decode step reads after it (qtensor.plane_next): the
 * order for_each_matrix visits them, which is the order of their pieces in the planes. */
typedef struct plane_links { qtensor *first, *last; } plane_links;

static qwen_status link_visit(qwen_model *m, qtensor *t, void *ctx, qwen_error **err) {
    (void)m, (void)err;
    plane_links *links = ctx;
    if (!t->piece_rows) return QWEN_OK;
    if (links->last) links->last->plane_next = t;
    else links->first = t;
    links->last = t;
    return QWEN_OK;
}

static void link_planes(qwen_model *m) {
    plane_links links = { NULL, NULL };
    for_each_matrix(m, true, link_visit, &links, NULL);
    if (links.last) links.last->plane_next = links.first;
}

/* Packs the bf16 matrices for the tile kernels (see QDT_BF16X32) and copies quantized ones still
 * mapped from their files (pack_visit) when the copies fit in the memory available, with 1 GB to
 * spare; otherwise they stay mapped (not an error). */
static qwen_status pack_weights(qwen_model *m, const qwen_model_opts *opts, qwen_error **err) {
    load_work w = { .opts = opts, .stage = "packing", .type = QDT_BF16X32, .counting = true, .piece_threads = planar_threads(m) };
    for_each_matrix(m, true, pack_visit, &w, err);
    size_t avail = big_available(), spare = (size_t)1 << 30;
    if (load_bytes(&w) == 0 || (avail && load_bytes(&w) + spare > avail)) return QWEN_OK;
    qwen_status st = load_reserve(m, &w, err);
    return st ? st : for_each_matrix(m, true, pack_visit, &w, err);
}

/* RoPE inverse frequencies, in double as the reference computes them; YaRN blends interpolated
 * and extrapolated frequencies over a ramp (transformers' _compute_yarn_parameters). */
static qwen_status init_rope(qwen_model *m, qwen_error **err) {
    const model_config *c = &m->cfg;
    int half = c->head_dim / 2;
    m->inv_freq = malloc((size_t)half * sizeof *m->inv_freq);
    if (!m->inv_freq) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    m->rope_scale = 1.0;
    for (int i = 0; i < half; i++) m->inv_freq[i] = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);
    if (c->rope != ROPE_YARN) return QWEN_OK;
    double dim = c->head_dim, base = c->rope_theta, orig = c->yarn_original_max;
    double low = dim * log(orig / (c->yarn_beta_fast * 2 * M_PI)) / (2 * log(base));
    double high = dim * log(orig / (c->yarn_beta_slow * 2 * M_PI)) / (2 * log(base));
    if (c->yarn_truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > dim - 1) high = dim - 1;
    if (low == high) high += 0.001;
    for (int i = 0; i < half; i++) {
        /* transformers computes these in float32 */
        float pos_freq = powf((float)base, (float)(2 * i) / (float)dim);
        double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (c->yarn_factor * pos_freq);
        double ramp = ((double)i - low) / (high - low);
        if (ramp < 0) ramp = 0;
        if (ramp > 1) ramp = 1;
        double extra_factor = 1.0 - ramp;
        m->inv_freq[i] = interpolation * (1 - extra_factor) + extrapolation * extra_factor;
    }
    m->rope_scale = c->yarn_attn_factor;
    return QWEN_OK;
}

/* A JSON number as a float, saturating (a double beyond float's range may not be converted). */
static float json_float(const json_t *v) {
    double x = json_number_value(v);
    return x > FLT_MAX ? INFINITY : x < -FLT_MAX ? -INFINITY : (float)x;
}

static void load_generation_config(qwen_model *m, const char *dir) {
    qwen_sampling d = { .temperature = 0, .top_k = 0, .top_p = 1, .min_p = 0, .repetition_penalty = 1, .presence_penalty = 0, .seed = 0 };
    char *path = path_join(dir, "generation_config.json");
    json_t *g = path && file_exists(path) ? json_load_path(path, NULL) : NULL;
    free(path);
    if (g) {
        json_t *v;
        bool sample = json_is_true(json_object_get(g, "do_sample"));
        if (sample && json_is_number(v = json_object_get(g, "temperature"))) d.temperature = json_float(v);
        else if (sample) d.temperature = 1.0f;
        if (json_is_integer(v = json_object_get(g, "top_k"))) { /* any value: <= 0 is off, beyond int as good as all */
            json_int_t k = json_integer_value(v);
            d.top_k = k < 0 ? 0 : k > INT_MAX ? INT_MAX : (int)k;
        }
        if (json_is_number(v = json_object_get(g, "top_p"))) d.top_p = json_float(v);
        if (json_is_number(v = json_object_get(g, "min_p"))) d.min_p = json_float(v);
        if (json_is_number(v = json_object_get(g, "repetition_penalty"))) d.repetition_penalty = json_float(v);
        json_t *eos = json_object_get(g, "eos_token_id");
        if (eos) {
            m->cfg.n_eos = 0; /* generation_config's list is the authority when present */
            model_config_add_eos(&m->cfg, eos);
        }
        json_decref(g);
    }
    m->defaults = d;
}

qwen_model *qwen_model_open(const char *spec, const qwen_model_opts *opts, qwen_error **err) {
    char *dir = hf_resolve_model_dir(spec, err);
    if (!dir) return NULL;
    qwen_model *m = calloc(1, sizeof *m);
    qwen_status st = m ? QWEN_OK : qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    if (!st) st = model_config_load(&m->cfg, dir, err);
    if (!st) st = st_open_dir(&m->ck, dir, err);
    if (!st) {
        m->pool = thread_pool_new(opts ? opts->threads : 0);
        if (!m->pool) st = qwen_fail(err, QWEN_ERR_NOMEM, "cannot start threads");
    }
    if (!st) st = bind_weights(m, err);
    if (!st && opts && opts->kv_type && *opts->kv_type && strcmp(opts->kv_type, "f32")) {
        if (!strcmp(opts->kv_type, "f16")) m->kv = KV_F16;
        else if (!strcmp(opts->kv_type, "q8_0") || !strcmp(opts->kv_type, "q8")) m->kv = KV_Q8;
        else st = qwen_fail(err, QWEN_ERR_INVALID_ARG, "unknown KV cache type '%s' (use f32, f16 or q8_0)", opts->kv_type);
        if (!st && m->kv == KV_Q8 && m->cfg.head_dim % 32)
            st = qwen_fail(err, QWEN_ERR_INVALID_ARG, "a q8_0 KV cache needs head_dim a multiple of 32 (this model's is %d): use f16",
                           m->cfg.head_dim);
    }
    if (!st && opts && opts->quant && *opts->quant) st = quantize_weights(m, opts, err);
    if (!st && !(opts && opts->mmap)) st = pack_weights(m, opts, err);
    if (!st) link_planes(m);
    if (!st) st = init_rope(m, err);
    if (!st) {
        load_generation_config(m, dir);
        char *tj = path_join(dir, "tokenizer.json");
        if (tj && file_exists(tj)) {
            m->tokenizer = qwen_tokenizer_open(tj, err);
            if (!m->tokenizer) st = QWEN_ERR_FORMAT;
        }
        free(tj);
    }
    if (st) {
        qwen_error_prefix(err, "%s: ", dir);
        qwen_model_close(m);
        free(dir);
        return NULL;
    }
    m->dir = dir;
    return m;
}

void qwen_model_close(qwen_model *m) {
    if (!m) return;
    thread_pool_free(m->pool);
    free(m->dir);
    qwen_tokenizer_close(m->tokenizer);
    free(m->layers);
    free(m->inv_freq);
    for (size_t i = 0; i < m->n_owned; i++) big_free(m->owned[i].data, m->owned[i].size);
    free(m->owned);
    arena_free(&m->small);
    st_close(&m->ck);
    free(m);
}

const qwen_tokenizer *qwen_model_tokenizer(const qwen_model *m) { return m ? m->tokenizer : NULL; }
const char *qwen_model_dir(const qwen_model *m) { return m ? m->dir : NULL; }
int32_t qwen_model_vocab_size(const qwen_model *m) { return m ? m->cfg.vocab : 0; }
int32_t qwen_model_max_context(const qwen_model *m) { return m ? m->cfg.max_positions : 0; }
int32_t qwen_model_hidden_size(const qwen_model *m) { return m ? m->cfg.hidden : 0; }
qwen_sampling qwen_model_default_sampling(const qwen_model *m) { return m ? m->defaults : (qwen_sampling){ 0 }; }

bool qwen_model_is_eos(const qwen_model *m, int32_t id) {
    if (!m) return false;
    for (int i = 0; i < m->cfg.n_eos; i++) if (m->cfg.eos[i] == id) return true;
    return false;
}

qwen_session *session_new_chunked(qwen_model *m, int max_tokens, int kv_chunk, qwen_error **err) {
    if (!m) { qwen_fail(err, QWEN_ERR_INVALID_ARG, "no model given for the session"); return NULL; }
    if (max_tokens <= 0) max_tokens = m->cfg.max_positions < 8192 ? m->cfg.max_positions : 8192;
    if (kv_chunk <= 0 || kv_chunk % 32) kv_chunk = kv_default_chunk(max_tokens);
    qwen_session *s = calloc(1, sizeof *s);
    if (!s) { qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); return NULL; }
    s->model = m;
    s->max_tokens = max_tokens;
    s->kv_chunk = kv_chunk;
    s->tokens = malloc((size_t)max_tokens * sizeof *s->tokens);
    s->kv = big_alloc(kv_cache_bytes(m, max_tokens, kv_chunk)); /* zeroed (the padding must be), touched as the context grows */
    size_t stage_bytes = kv_stage_elems(&m->cfg) * kv_stage_elem_size(m);
    s->k_stage = malloc(stage_bytes);
    s->scores = malloc((size_t)thread_pool_size(m->pool) * attention_scratch_floats(&m->cfg) * sizeof(float));
    size_t parts = attention_parts_floats(m);
    if (parts) {
        s->att_parts = malloc(parts * sizeof(float));
        s->att_parts_done = calloc((size_t)m->cfg.n_kv_heads, sizeof *s->att_parts_done);
    }
    if (!s->tokens || !s->kv || !s->k_stage || !s->scores || (parts && (!s->att_parts || !s->att_parts_done))) {
        qwen_fail(err, QWEN_ERR_NOMEM, "out of memory for a %d-token KV cache", max_tokens);
        qwen_session_free(s);
        return NULL;
    }
    /* commit the first chunk now (huge pages zeroed by the kernel), so that the first prompt's
     * time does not include it; later chunks come as the context grows */
    memset(s->kv, 0, kv_chunk_bytes(m, kv_chunk));
    /* and the staging blocks (every layer and KV head's incomplete block of keys): left to be
     * touched by the decode, a page at a time, their first writes cost the first 32 tokens after a
     * short prompt 5-7 us a layer each here (attention 13.5-16.6 us a layer instead of 8.2-9.5) */
    memset(s->k_stage, 0, stage_bytes);
    return s;
}

qwen_session *qwen_session_new(qwen_model *m, int max_tokens, qwen_error **err) { return session_new_chunked(m, max_tokens, 0, err); }

void qwen_session_free(qwen_session *s) {
    if (!s) return;
    free(s->tokens);
    big_free(s->kv, kv_cache_bytes(s->model, s->max_tokens, s->kv_chunk));
    free(s->k_stage);
    free(s->scores);
    free(s->att_parts);
    free((void *)s->att_parts_done);
    free(s->x);
    free(s->xb);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->hb);
    free(s->hb2);
    free(s->rope_cs);
    free(s->moe_x);
    free(s->moe_y);
    free(s->moe_logits);
    workspace_free(&s->ws);
    free(s);
}

int qwen_session_length(const qwen_session *s) { return s ? s->len : 0; }
const int32_t *qwen_session_tokens(const qwen_session *s) { return s ? s->tokens : NULL; }
void qwen_session_truncate(qwen_session *s, int n) {
    if (!s || n < 0 || n >= s->len) return;
    kv_cache_truncate(s, s->len, n);
    s->len = n;
}

void qwen_session_reserve(qwen_session *s, int n_tokens) {
    if (!s || !s->kv) return;
    if (n_tokens <= 0 || n_tokens > s->max_tokens) n_tokens = s->max_tokens;
    size_t chunks = ((size_t)n_tokens + (size_t)s->kv_chunk - 1) / (size_t)s->kv_chunk; /* chunk c: the c-th span of kv_chunk_bytes */
    size_t bytes = chunks * kv_chunk_bytes(s->model, s->kv_chunk);
    volatile char *kv = s->kv;
    for (size_t at = 0; at < bytes; at += 4096) kv[at] = kv[at]; /* a write per page, of what is there */
}

static qwen_status session_run(qwen_session *s, const int32_t *ids, size_t n, float *out, bool all_positions, bool hidden_only,
                               qwen_error **err) {
    if (!s || (!ids && n)) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "forward: missing session or ids");
    if (n == 0) return QWEN_OK;
    if (n > (size_t)(s->max_tokens - s->len))
        return qwen_fail(err, QWEN_ERR_INVALID_ARG, "context full: %d tokens cached, %zu more do not fit in %d", s->len, n, s->max_tokens);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->model->cfg.vocab)
            return qwen_fail(err, QWEN_ERR_INVALID_ARG, "token id %d at position %zu is outside the vocabulary (%d)", ids[i], i, s->model->cfg.vocab);
    memcpy(s->tokens + s->len, ids, n * sizeof *ids);
    return model_forward(s, ids, (int)n, out, all_positions, hidden_only, err);
}

qwen_status qwen_session_forward(qwen_session *s, const int32_t *ids, size_t n, float *logits, bool all_positions,
                                 qwen_error **err) {
    return session_run(s, ids, n, logits, all_positions, false, err);
}

qwen_status qwen_session_forward_hidden(qwen_session *s, const int32_t *ids, size_t n, float *hidden, bool all_positions,
                                        qwen_error **err) {
    return session_run(s, ids, n, hidden, all_positions, true, err);
}

qwen_step_profile qwen_session_profile(qwen_session *s, bool on) {
    if (!s) return (qwen_step_profile){ 0 };
    qwen_step_profile so_far = s->profile;
    if (on) s->profile = (qwen_step_profile){ 0 };
    s->profiling = on;
    return so_far;
}

int qwen_embed(qwen_model *m, const int32_t *ids, size_t n, int dims, float *out, qwen_error **err) {
    if (!m || !out || (!ids && n)) return -qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_embed: missing model, ids or output");
    int H = m->cfg.hidden;
    if (n == 0) return -qwen_fail(err, QWEN_ERR_INVALID_ARG, "nothing to embed");
    if (dims <= 0 || dims > H) dims = H;
    float *hidden = malloc((size_t)H * sizeof(float));
    qwen_session *s = hidden ? qwen_session_new(m, (int)n, err) : NULL;
    qwen_status st = s ? qwen_session_forward_hidden(s, ids, n, hidden, false, err) : QWEN_ERR_NOMEM;
    if (!st) {
        double ss = 0;
        for (int i = 0; i < dims; i++) ss += (double)hidden[i] * hidden[i];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int i = 0; i < dims; i++) out[i] = hidden[i] * inv;
    } else if (!s && hidden) {
        st = QWEN_ERR_NOMEM;
    }
    qwen_session_free(s);
    free(hidden);
    return st ? -(int)st : dims;
}

qwen_status qwen_rerank(qwen_model *m, const char *instruction, const char *query, const char *document, double *score,
                        qwen_error **err) {
    static const char prefix[] = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
                                 "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";
    static const char suffix[] = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    if (!m || !query || !document || !score) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "qwen_rerank: missing model, query, document or score");
    if (!m->tokenizer) return qwen_fail(err, QWEN_ERR_INVALID_ARG, "the model has no tokenizer");
    if (!instruction) instruction = "Given a web search query, retrieve relevant passages that answer the query";
    int32_t yes = qwen_token_id(m->tokenizer, "yes", 3), no = qwen_token_id(m->tokenizer, "no", 2);
    if (yes < 0 || no < 0 || yes >= m->cfg.vocab || no >= m->cfg.vocab)
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "the vocabulary has no single \"yes\" / \"no\" tokens");
    size_t len = strlen(prefix) + strlen(instruction) + strlen(query) + strlen(document) + strlen(suffix) + 64;
    char *text = malloc(len);
    if (!text) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    /* tokenized as one string, special markers included, as the reference does */
    int n = snprintf(text, len, "%s<Instruct>: %s\n<Query>: %s\n<Document>: %s%s", prefix, instruction, query, document, suffix);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    qwen_status st = qwen_tokenize(m->tokenizer, text, (size_t)n, NULL, &ids, &n_ids, err);
    free(text);
    float *logits = st ? NULL : malloc((size_t)m->cfg.vocab * sizeof(float));
    qwen_session *s = logits ? qwen_session_new(m, (int)n_ids, err) : NULL;
    if (!st && !s) st = logits ? QWEN_ERR_NOMEM : qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    if (!st) st = qwen_session_forward(s, ids, n_ids, logits, false, err);
    if (!st) {
        double a = logits[no], b = logits[yes], mx = a > b ? a : b;
        *score = exp(b - mx) / (exp(a - mx) + exp(b - mx));
    }
    qwen_session_free(s);
    free(logits);
    free(ids);
    return st;
}

size_t qwen_model_weight_bytes(const qwen_model *m) {
    if (!m) return 0;
    size_t total = qtensor_bytes(&m->lm_head) + qdtype_row_bytes(m->embed.dtype, m->cfg.hidden);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const qtensor *ts[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->gate, &w->up, &w->down,
                                &w->router, &w->sh_gate, &w->sh_up, &w->sh_down, &w->sh_router };
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) total += qtensor_bytes(ts[i]);
        if (w->sparse) /* the experts a token is routed to (they are all the same size) */
            total += (size_t)m->cfg.n_experts_used * (qtensor_bytes(&w->e_gate[0]) + qtensor_bytes(&w->e_up[0]) + qtensor_bytes(&w->e_down[0]));
    }
    return total;
}

size_t qwen_model_kv_bytes_per_position(const qwen_model *m) {
    return m ? kv_bytes_per_position(m) : 0;
}

const char *qwen_model_describe(qwen_model *m) {
    if (!m) return "";
    const model_config *c = &m->cfg;
    qdtype wt = m->layers[0].wq.dtype;
    const dot_kernels *k = dot_kernels_best();
    bool bf16_prefill = m->layers[0].wq.act_bf16 && k->gemm6x32_bf16dp; /* what --bf16-prefill took effect on */
    /* packed bf16, or quantized at load or copied from a quantized file: in memory; else mapped */
    const char *where = wt == QDT_BF16X32                        ? " (packed in memory)"
                        : m->layers[0].wq.piece_rows               ? " (in planes)"
                        : model_owns(m, m->layers[0].wq.data) ? ""
                                                                   : " (mapped)";
    snprintf(m->description, sizeof m->description,
             "%s: %d layers, hidden %d, %d/%d heads x %d, ffn %d, vocab %d, weights %s%s, %d thread%s, kernels %s%s", c->model_type,
             c->n_layers, c->hidden, c->n_heads, c->n_kv_heads, c->head_dim, c->intermediate, c->vocab,
             qdtype_name(wt == QDT_BF16X32 ? QDT_BF16 : wt), where,
             thread_pool_size(m->pool), thread_pool_size(m->pool) == 1 ? "" : "s", k->name, bf16_prefill ? ", prefill activations bf16" : "");
    return m->description;
}
