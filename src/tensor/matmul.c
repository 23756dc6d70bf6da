/* matmul: y = x · wᵀ (+ bias), threads over blocks of output rows. */
#include "tensor/tensor.h"

#include <stdlib.h>

const dot_kernels *dot_kernels_best(void) {
    const dot_kernels *k = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vnni"))
        k = dot_kernels_avx512();
    if (!k && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        k = dot_kernels_avx2();
    return k ? k : dot_kernels_ref();
}

enum { TILE_ROWS = 16 }; /* weight rows converted to f32 at a time in prefill */

typedef struct matmul_job {
    float *y;
    const float *x;
    int T;
    const qtensor *w;
    const float *bias;
    const dot_kernels *k;
    float *scratch; /* [threads][TILE_ROWS][cols] weight rows converted to f32 when T > 1 */
    const block_q8_0 *xq; /* [T][cols / QK] activations quantized for block-quantized weights */
    int64_t rows_per_block;
} matmul_job;

static void matmul_rows_quant(const matmul_job *j, int64_t r0, int64_t r1) {
    const qtensor *w = j->w;
    int64_t nb = w->cols / QK;
    size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols);
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = (const char *)w->data + (size_t)r * row_bytes;
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->T; t++) {
            const block_q8_0 *xt = j->xq + (int64_t)t * nb;
            float d = w->dtype == QDT_Q8_0 ? j->k->dot_q8_0(wr, xt, nb) : j->k->dot_q4_0(wr, xt, nb);
            j->y[(int64_t)t * w->rows + r] = d + b;
        }
    }
}

/* Prefill with plain weights: convert a tile of rows to f32 once, then run 4x4 tiles of
 * (tokens x rows) so each loaded weight serves four tokens. */
static void matmul_rows_batched(const matmul_job *j, int64_t r0, int64_t r1, float *tile) {
    const qtensor *w = j->w;
    int64_t n = w->cols, T = j->T;
    for (int64_t rb = r0; rb < r1; rb += TILE_ROWS) {
        int64_t nr = r1 - rb < TILE_ROWS ? r1 - rb : TILE_ROWS;
        for (int64_t i = 0; i < nr; i++) qtensor_row_f32(w, rb + i, tile + i * n);
        for (int64_t t = 0; t < T; t += 4) {
            for (int64_t i = 0; i < nr; i += 4) {
                if (t + 4 <= T && i + 4 <= nr) {
                    float out[16];
                    j->k->gemm4x4_f32(tile + i * n, n, j->x + t * n, n, n, out);
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++)
                            j->y[(t + a) * w->rows + rb + i + b] = out[a * 4 + b] + (j->bias ? j->bias[rb + i + b] : 0.0f);
                } else {
                    for (int64_t a = t; a < T && a < t + 4; a++)
                        for (int64_t b = i; b < nr && b < i + 4; b++)
                            j->y[a * w->rows + rb + b] = j->k->dot_f32(j->x + a * n, tile + b * n, n) + (j->bias ? j->bias[rb + b] : 0.0f);
                }
            }
        }
    }
}

static void matmul_rows(const matmul_job *j, int64_t r0, int64_t r1, float *row) {
    const qtensor *w = j->w;
    int64_t n = w->cols;
    if (j->xq) { matmul_rows_quant(j, r0, r1); return; }
    if (j->T > 1) { matmul_rows_batched(j, r0, r1, row); return; }
    for (int64_t r = r0; r < r1; r++) {
        float b = j->bias ? j->bias[r] : 0.0f;
        float d = w->dtype == QDT_F32    ? j->k->dot_f32(j->x, (const float *)w->data + r * n, n)
                  : w->dtype == QDT_BF16 ? j->k->dot_bf16(j->x, (const uint16_t *)w->data + r * n, n)
                                         : j->k->dot_f16(j->x, (const uint16_t *)w->data + r * n, n);
        j->y[r] = d + b;
    }
}

static void matmul_block(void *ctx, int block, int thread_index) {
    const matmul_job *j = ctx;
    int64_t r0 = (int64_t)block * j->rows_per_block, r1 = r0 + j->rows_per_block;
    if (r1 > j->w->rows) r1 = j->w->rows;
    matmul_rows(j, r0, r1, j->scratch ? j->scratch + (int64_t)thread_index * TILE_ROWS * j->w->cols : NULL);
}

void *workspace_get(workspace *ws, size_t size) {
    if (size <= ws->cap) return ws->data;
    free(ws->data);
    size_t cap = size + size / 4;
    ws->data = aligned_alloc(64, (cap + 63) / 64 * 64);
    ws->cap = ws->data ? cap : 0;
    return ws->data;
}

void workspace_free(workspace *ws) {
    free(ws->data);
    ws->data = NULL;
    ws->cap = 0;
}

void matmul(thread_pool *pool, workspace *ws, float *y, const float *x, int T, const qtensor *w, const float *bias) {
    workspace local = { 0 };
    if (!ws) ws = &local;
    int threads = thread_pool_size(pool);
    matmul_job j = { y, x, T, w, bias, dot_kernels_best(), NULL, NULL, 0 };
    if (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0) {
        int64_t nb = w->cols / QK;
        block_q8_0 *xq = workspace_get(ws, (size_t)T * (size_t)nb * sizeof *xq);
        if (!xq) { /* no memory for the quantized activations: the slow exact way */
            matmul_ref(y, x, T, w, bias);
            return;
        }
        for (int t = 0; t < T; t++) quantize_row_q8_0(x + (int64_t)t * w->cols, xq + (int64_t)t * nb, w->cols);
        j.xq = xq;
    } else if (T > 1) {
        j.scratch = workspace_get(ws, (size_t)threads * TILE_ROWS * (size_t)w->cols * sizeof(float));
        if (!j.scratch) { /* no memory for converted rows: one token at a time */
            for (int t = 0; t < T; t++) matmul(pool, NULL, y + (int64_t)t * w->rows, x + (int64_t)t * w->cols, 1, w, bias);
            return;
        }
    }
    /* Enough blocks to balance the threads, each big enough to amortise the hand-out. */
    int64_t blocks = (int64_t)threads * 8;
    j.rows_per_block = (w->rows + blocks - 1) / blocks;
    if (j.rows_per_block < 4) j.rows_per_block = 4;
    if (j.scratch) j.rows_per_block = (j.rows_per_block + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS;
    int n_blocks = (int)((w->rows + j.rows_per_block - 1) / j.rows_per_block);
    thread_pool_run(pool, n_blocks, matmul_block, &j);
    workspace_free(&local);
}

void matmul_ref(float *y, const float *x, int T, const qtensor *w, const float *bias) {
    if (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0) {
        /* the quantized path's definition: activations quantized to Q8_0, integer block dots */
        int64_t nb = w->cols / QK;
        block_q8_0 *xq = malloc((size_t)nb * sizeof *xq);
        if (!xq) return;
        size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols);
        for (int t = 0; t < T; t++) {
            quantize_row_q8_0(x + (int64_t)t * w->cols, xq, w->cols);
            for (int64_t r = 0; r < w->rows; r++) {
                const void *wr = (const char *)w->data + (size_t)r * row_bytes;
                float d = w->dtype == QDT_Q8_0 ? ref_dot_q8_0(wr, xq, nb) : ref_dot_q4_0(wr, xq, nb);
                y[(int64_t)t * w->rows + r] = d + (bias ? bias[r] : 0.0f);
            }
        }
        free(xq);
        return;
    }
    float *row = malloc((size_t)w->cols * sizeof(float));
    if (!row) return;
    for (int64_t r = 0; r < w->rows; r++) {
        qtensor_row_f32(w, r, row);
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int64_t i = 0; i < w->cols; i++) s += (double)x[(int64_t)t * w->cols + i] * row[i];
            y[(int64_t)t * w->rows + r] = (float)s + (bias ? bias[r] : 0.0f);
        }
    }
    free(row);
}
