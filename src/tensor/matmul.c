/* matmul: y = x · wᵀ (+ bias), threads over blocks of output rows. */
#include "tensor/tensor.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>

/* AVX-VNNI (CPUID leaf 7, subleaf 1, EAX bit 4), read directly: not every compiler's
 * __builtin_cpu_supports knows the name (clang 14 does not). */
static bool cpu_has_avxvnni(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1);
}
#endif

bool dot_kernels_runnable(const dot_kernels *k) {
    if (!k) return false;
    if (k == dot_kernels_ref()) return true;
#if defined(__x86_64__)
    __builtin_cpu_init();
    /* every AVX2 CPU also has F16C (not a feature name every compiler accepts here) */
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == dot_kernels_avx2()) return avx2;
    if (k == dot_kernels_avxvnni()) return avx2 && cpu_has_avxvnni();
    if (k == dot_kernels_avx512())
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    if (k == dot_kernels_neon()) return true; /* Advanced SIMD is part of every AArch64 CPU */
    if (k == dot_kernels_neon_dotprod()) return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    return false;
}

enum { TABLES = 6 };

/* Every table, widest first (the SIMD ones are NULL where not built). */
static void all_tables(const dot_kernels *t[TABLES]) {
    t[0] = dot_kernels_avx512();
    t[1] = dot_kernels_avxvnni();
    t[2] = dot_kernels_avx2();
    t[3] = dot_kernels_neon_dotprod();
    t[4] = dot_kernels_neon();
    t[5] = dot_kernels_ref();
}

const dot_kernels *dot_kernels_named(const char *name) {
    const dot_kernels *t[TABLES];
    all_tables(t);
    for (int i = 0; name && i < TABLES; i++)
        if (t[i] && !strcmp(t[i]->name, name)) return t[i];
    return NULL;
}

static const dot_kernels *choose_kernels(void) {
    const dot_kernels *want = dot_kernels_named(getenv("QWENC_KERNELS")), *t[TABLES];
    if (dot_kernels_runnable(want)) return want;
    all_tables(t);
    for (int i = 0; i < TABLES; i++)
        if (dot_kernels_runnable(t[i])) return t[i];
    return dot_kernels_ref();
}

const dot_kernels *dot_kernels_best(void) {
    static _Atomic(const dot_kernels *) chosen; /* the same value whichever thread sets it first */
    const dot_kernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
    if (!k) {
        k = choose_kernels();
        atomic_store_explicit(&chosen, k, memory_order_release);
    }
    return k;
}

enum { TILE_ROWS = 32, SCRATCH_ROWS = TILE_ROWS + 1 }; /* prefill tile: 32 transposed rows and a row (then [T][32] sums) */

typedef struct matmul_job {
    float *y;
    const float *x;
    int T;
    const qtensor *w;
    const float *bias;
    const dot_kernels *k;
    float *scratch; /* per-thread prefill tiles (matmul_rows_batched) */
    int64_t scratch_stride; /* floats from one thread's scratch to the next */
    const block_q8_0 *xq; /* [T][cols / QK] activations quantized for block-quantized weights */
    const float *xd, *xs; /* [T][cols / QK] their f32 scales and scaled sums (q8_0_block_sums) */
    const uint16_t *xb;   /* [T][cols] activations rounded to bf16 (packed weights with act_bf16) */
    int64_t rows_per_block;
    int64_t stream_offset; /* > 0: each block reads `streams` streams this many rows apart (set_block_rows) */
    int streams;           /* 2, or 4 (packed bf16 with a gemv4_bf16x32 kernel) */
} matmul_job;

/* Rows r0..r1 of a quantized matrix in plain rows (not interleaved) against each token's Q8_0
 * activations, one row at a time. */
static void matmul_rows_quant(const matmul_job *j, int64_t r0, int64_t r1) {
    const qtensor *w = j->w;
    int64_t nb = w->cols / QK;
    size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols);
    for (int64_t r = r0; r < r1; r++) {
        const void *wr = (const char *)w->data + (size_t)r * row_bytes;
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->T; t++) {
            int64_t o = (int64_t)t * nb;
            float d = w->dtype == QDT_Q8_0 ? j->k->dot_q8_0(wr, j->xq + o, j->xd + o, j->xs + o, nb)
                                           : j->k->dot_q4_0(wr, j->xq + o, j->xd + o, j->xs + o, nb);
            j->y[(int64_t)t * w->rows + r] = d + b;
        }
    }
}

/* y[t][r .. r + n) = sums (+ bias) */
static inline void store_rows(const matmul_job *j, int64_t t, int64_t r, const float *sums, int n) {
    float *y = j->y + t * j->w->rows + r;
    memcpy(y, sums, (size_t)n * sizeof(float));
    if (j->bias) j->k->axpy(y, 1.0f, j->bias + r, n);
}

/* Prefetches the first `bytes` of a decode block's streams a and b (b may be NULL) at once,
 * non-temporally as the tiles prefetch (dot_kernels.decode_burst). A short block's burst runs on
 * into the next block or past the matrix: a prefetch never faults, and the addresses are formed as
 * integers, not as pointers beyond the matrix. */
static void prefetch_burst(const uint8_t *a, const uint8_t *b, int bytes) {
    for (int o = 0; o < bytes; o += 64) {
        __builtin_prefetch((const void *)((uintptr_t)a + (uintptr_t)o), 0, 0);
        if (b) __builtin_prefetch((const void *)((uintptr_t)b + (uintptr_t)o), 0, 0);
    }
}

/* Interleaved quantized weights: the 16-row groups at rows r0..r1 (multiples of QROWS), each with
 * the group `offset` rows further on (the block's second stream, see set_block_rows), through the
 * two-group tile (gemm_q*_x16) against every group of up to 6 tokens, so that each weight byte is
 * loaded once per 6 tokens. offset 0: each group alone (computed twice, kept once). */
static void matmul_rows_quant_pairs(const matmul_job *j, int64_t r0, int64_t r1, int64_t offset) {
    const qtensor *w = j->w;
    int64_t nb = w->cols / QK, T = j->T;
    size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols);
    if (T == 1 && r0 < r1 && j->k->decode_burst)
        prefetch_burst(q_row(w, r0, row_bytes), offset ? q_row(w, r0 + offset, row_bytes) : NULL, j->k->decode_burst);
    for (int64_t r = r0; r < r1; r += QROWS) {
        const uint8_t *g0 = q_row(w, r, row_bytes), *g1 = q_row(w, r + offset, row_bytes);
        for (int64_t t = 0; t < T; t += 6) {
            float out[6 * TILE_ROWS];
            int nt = T - t < 6 ? (int)(T - t) : 6;
            if (w->dtype == QDT_Q8_0) j->k->gemm_q8_0_x16(g0, g1, j->xq + t * nb, j->xd + t * nb, j->xs + t * nb, nb, nb, nt, out);
            else j->k->gemm_q4_0_x16(g0, g1, j->xq + t * nb, j->xd + t * nb, j->xs + t * nb, nb, nb, nt, out);
            for (int64_t a = 0; a < nt; a++) {
                store_rows(j, t + a, r, out + a * TILE_ROWS, QROWS);
                if (offset) store_rows(j, t + a, r + offset, out + a * TILE_ROWS + QROWS, QROWS);
            }
        }
    }
}

/* A planar Q8_0/Q4_0 matrix for one token (see PLANE_STREAMS): rows r0..r1 of each of the four
 * quarters (offset rows apart), each quarter's rows in their plane, through the four-group tile.
 * The tile prefetches each stream 1-2 KB ahead, so a thread's next block in its planes comes
 * prefetched; a block's first 1 KB is asked for at its start too (after a steal it is cold; at
 * 0 or 2 KB instead planar Q4_0 steps were no faster than contiguous ones, BENCHMARKS.md). */
enum { PLANAR_BURST = 1024 };
typedef void (*planar_fn)(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out);
static planar_fn planar_tile(const matmul_job *j) { return j->w->dtype == QDT_Q4_0 ? j->k->gemv4_q4_0 : j->w->dtype == QDT_Q8_0 ? j->k->gemv4_q8_0 : NULL; }

static void matmul_rows_planar(const matmul_job *j, int64_t r0, int64_t r1, int64_t offset) {
    const qtensor *w = j->w;
    int64_t nb = w->cols / QK;
    size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols);
    planar_fn tile = planar_tile(j);
    const uint8_t *g[PLANE_STREAMS]; /* a block's rows lie within one piece a stream: contiguous */
    for (int s = 0; s < PLANE_STREAMS; s++) g[s] = q_row(w, r0 + s * offset, row_bytes);
    if (r0 < r1)
        for (int s = 0; s < PLANE_STREAMS; s += 2) prefetch_burst(g[s], g[s + 1], PLANAR_BURST);
    for (int64_t r = r0; r < r1; r += QROWS) {
        float out[PLANE_STREAMS * QROWS];
        tile(g, j->xq, j->xd, j->xs, nb, out);
        for (int s = 0; s < PLANE_STREAMS; s++) g[s] += QROWS * row_bytes;
        for (int s = 0; s < PLANE_STREAMS; s++) store_rows(j, 0, r + s * offset, out + s * QROWS, QROWS);
    }
}

/* Prefill: 32 weight rows at a time are converted to f32 and transposed ([cols][32]) once, then
 * multiplied with every token in groups of up to 6 (gemm6x32), K_CHUNK columns at a time so that
 * the slice of weights being reused (16 KB) stays in L1 across all the tokens; the 32 sums of each
 * token accumulate in `acc` [T][32]. Rows beyond a multiple of 32 go through the plain dot. */
enum { K_CHUNK = 128 };
static void matmul_rows_batched(const matmul_job *j, int64_t r0, int64_t r1, float *tile) {
    const qtensor *w = j->w;
    int64_t n = w->cols, T = j->T;
    float *row = tile + TILE_ROWS * n;           /* one converted row */
    float *acc = row + n;                        /* [T][32] */
    int64_t r = r0;
    for (; r + TILE_ROWS <= r1; r += TILE_ROWS) {
        if (w->dtype == QDT_BF16) {
            j->k->bf16_tile_f32((const uint16_t *)w->data + r * n, n, n, tile);
        } else {
            for (int i = 0; i < TILE_ROWS; i++) {
                qtensor_row_f32(w, r + i, row);
                for (int64_t k = 0; k < n; k++) tile[k * TILE_ROWS + i] = row[k];
            }
        }
        for (int64_t k0 = 0; k0 < n; k0 += K_CHUNK) {
            int64_t kn = n - k0 < K_CHUNK ? n - k0 : K_CHUNK;
            for (int64_t t = 0; t < T; t += 6) {
                int nt = T - t < 6 ? (int)(T - t) : 6;
                j->k->gemm6x32_f32(tile + k0 * TILE_ROWS, j->x + t * n + k0, n, kn, nt, k0 > 0, acc + t * TILE_ROWS);
            }
        }
        for (int64_t t = 0; t < T; t++) store_rows(j, t, r, acc + t * TILE_ROWS, TILE_ROWS);
    }
    for (; r < r1; r++) {
        qtensor_row_f32(w, r, row);
        for (int64_t t = 0; t < T; t++) j->y[t * w->rows + r] = j->k->dot_f32(j->x + t * n, row, n) + (j->bias ? j->bias[r] : 0.0f);
    }
}

/* Packed bf16 (QDT_BF16X32): the tile reads the groups straight from memory, widened in
 * registers (or, with bf16 activations in j->xb, paired for bf16 dot products). One token reads
 * each group once into y. Several are blocked for the caches, as a BLAS would: PACKED_RB rows
 * (8 groups) at a time, then PACKED_TB tokens at a time, then PACKED_KC columns at a time — the
 * tokens' slice of x (96 x 512 floats, 192 KB) stays in L2 across the 8 groups, a group's slice
 * of weights (32 KB) in L1 across the tokens — their sums accumulating in `acc` [8 groups]
 * [PACKED_TB][32] (measured ~6% faster prefill than one group at a time). */
enum { PACKED_RB = 256, PACKED_TB = 96, PACKED_KC = 512 };
static void matmul_rows_packed(const matmul_job *j, int64_t r0, int64_t r1, float *acc) {
    const qtensor *w = j->w;
    int64_t n = w->cols, T = j->T;
    if (T == 1) {
        for (int64_t r = r0; r < r1; r += PROWS) {
            float out[PROWS];
            j->k->gemm6x32_bf16x32((const uint16_t *)w->data + r * n, j->x, n, n, 1, false, out);
            store_rows(j, 0, r, out, PROWS);
        }
        return;
    }
    for (int64_t rb = r0; rb < r1; rb += PACKED_RB) {
        int64_t re = r1 - rb < PACKED_RB ? r1 : rb + PACKED_RB;
        for (int64_t t0 = 0; t0 < T; t0 += PACKED_TB) {
            int64_t tn = T - t0 < PACKED_TB ? T - t0 : PACKED_TB;
            for (int64_t k0 = 0; k0 < n; k0 += PACKED_KC) {
                int64_t kn = n - k0 < PACKED_KC ? n - k0 : PACKED_KC;
                for (int64_t r = rb; r < re; r += PROWS) {
                    const uint16_t *wt = (const uint16_t *)w->data + r * n + k0 * PROWS;
                    float *a = acc + (r - rb) * tn; /* this group's [tn][32] */
                    for (int64_t t = 0; t < tn; t += 6) {
                        int nt = tn - t < 6 ? (int)(tn - t) : 6;
                        if (j->xb) j->k->gemm6x32_bf16dp(wt, j->xb + (t0 + t) * n + k0, n, kn, nt, k0 > 0, a + t * PROWS);
                        else j->k->gemm6x32_bf16x32(wt, j->x + (t0 + t) * n + k0, n, kn, nt, k0 > 0, a + t * PROWS);
                    }
                }
            }
            for (int64_t r = rb; r < re; r += PROWS)
                for (int64_t t = 0; t < tn; t++) store_rows(j, t0 + t, r, acc + (r - rb) * tn + t * PROWS, PROWS);
        }
    }
}

/* One token against packed bf16 groups at rows r0..r1, each with the groups `offset`, (and with
 * four streams 2 * offset and 3 * offset) rows further on (the block's other streams, see
 * set_block_rows). */
static void matmul_rows_packed_streams(const matmul_job *j, int64_t r0, int64_t r1, int64_t offset, int streams) {
    const uint16_t *w = j->w->data;
    int64_t n = j->w->cols;
    for (int64_t r = r0; r < r1; r += PROWS) {
        float out[4 * PROWS];
        if (streams == 4) j->k->gemv4_bf16x32(w + r * n, offset * n, j->x, n, out);
        else j->k->gemv2_bf16x32(w + r * n, w + (r + offset) * n, j->x, n, out);
        for (int s = 0; s < streams; s++) store_rows(j, 0, r + s * offset, out + s * PROWS, PROWS);
    }
}

static void matmul_rows(const matmul_job *j, int64_t r0, int64_t r1, float *row) {
    const qtensor *w = j->w;
    int64_t n = w->cols;
    if (w->dtype == QDT_BF16X32) { matmul_rows_packed(j, r0, r1, row); return; }
    if (j->xq) {
        if (q_interleaved(w)) matmul_rows_quant_pairs(j, r0, r1, 0);
        else matmul_rows_quant(j, r0, r1);
        return;
    }
    if (j->T > 1) { matmul_rows_batched(j, r0, r1, row); return; }
    for (int64_t r = r0; r < r1; r++) {
        float b = j->bias ? j->bias[r] : 0.0f;
        float d = w->dtype == QDT_F32    ? j->k->dot_f32(j->x, (const float *)w->data + r * n, n)
                  : w->dtype == QDT_BF16 ? j->k->dot_bf16(j->x, (const uint16_t *)w->data + r * n, n)
                                         : j->k->dot_f16(j->x, (const uint16_t *)w->data + r * n, n);
        j->y[r] = d + b;
    }
}

/* Block `block` of a job (see set_block_rows). */
static void matmul_block(void *ctx, int block, int thread_index) {
    const matmul_job *j = ctx;
    int64_t span = j->stream_offset ? j->stream_offset : j->w->rows;
    int64_t r0 = (int64_t)block * j->rows_per_block, r1 = r0 + j->rows_per_block;
    if (r1 > span) r1 = span;
    float *scratch = j->scratch ? j->scratch + (int64_t)thread_index * j->scratch_stride : NULL;
    if (!j->stream_offset) {
        matmul_rows(j, r0, r1, scratch);
        return;
    }
    if (j->w->dtype == QDT_BF16X32) matmul_rows_packed_streams(j, r0, r1, j->stream_offset, j->streams);
    else if (j->streams == PLANE_STREAMS) matmul_rows_planar(j, r0, r1, j->stream_offset);
    else matmul_rows_quant_pairs(j, r0, r1, j->stream_offset);
    /* the groups beyond the last whole set of streams */
    if (r1 == span && j->streams * span < j->w->rows) matmul_rows(j, j->streams * span, j->w->rows, scratch);
}

typedef struct quant_job {
    const float *x;
    int64_t cols;
    block_q8_0 *xq;
    float *xd, *xs;
} quant_job;

/* Quantizes activation row t to Q8_0 with its block scales and sums (rows run on the pool). */
static void quantize_activation_row(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const quant_job *j = ctx;
    int64_t nb = j->cols / QK, o = (int64_t)t * nb;
    dot_kernels_best()->quantize_q8_0(j->x + (int64_t)t * j->cols, j->xq + o, j->xd + o, j->xs + o, j->cols);
}

typedef struct round_job { const float *x; int64_t cols; uint16_t *xb; } round_job;

/* Rounds activation row t to bf16 (rows run on the pool). */
static void round_activation_row(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const round_job *j = ctx;
    dot_kernels_best()->f32_to_bf16_row(j->x + (int64_t)t * j->cols, j->xb + (int64_t)t * j->cols, j->cols);
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

/* Whether job j reads a planar matrix in its planes (see PLANE_STREAMS): one token, laid out for
 * this many threads, and a table with the four-group tile (otherwise its rows are read as any
 * interleaved matrix's, through q_row). */
static bool planar_decode(const matmul_job *j, int threads) {
    return j->w->piece_rows && j->T == 1 && planar_tile(j) && j->w->piece_threads == threads;
}

/* Enough blocks of rows to balance the threads, each big enough to amortise the hand-out, whole
 * tiles or groups where the kernels need them.
 *
 * Interleaved quantized weights, and packed bf16 ones for one token, are read as two streams half
 * the matrix apart: block b covers its rows in the first half (stream_offset rows, a whole number
 * of groups) and the same rows stream_offset further on, which one kernel call reads side by side
 * (groups left over go with the last block). Two distant streams per thread keep more reads in
 * flight than one: measured here, a decode step's matmuls read 15-20% more bytes per second (and
 * adjacent groups as the second stream are slower than one stream). Packed bf16 decode reads four
 * quarters of the matrix where the table has a four-group tile (gemv4_bf16x32): 3-13% faster
 * still. */
enum { BLOCK_BYTES = 16 << 10 };
static void set_block_rows(matmul_job *j, int threads) {
    const qtensor *w = j->w;
    int64_t span = w->rows, unit = j->scratch ? TILE_ROWS : 1;
    j->stream_offset = 0;
    j->streams = 2;
    if (planar_decode(j, threads)) {
        /* a quarter a stream; each thread's share of a quarter is its piece (the pool deals each
         * thread 1 / threads of the blocks, in order): blocks of whole groups that divide a piece,
         * none over BLOCK_BYTES unless a single group is */
        j->streams = PLANE_STREAMS;
        j->stream_offset = w->rows / PLANE_STREAMS;
        int64_t groups = w->piece_rows / QROWS, per = 1;
        size_t group_bytes = PLANE_STREAMS * QROWS * qdtype_row_bytes(w->dtype, w->cols);
        for (int64_t d = 2; d <= groups && (size_t)d * group_bytes <= BLOCK_BYTES; d++)
            if (groups % d == 0) per = d;
        j->rows_per_block = per * QROWS;
        return;
    }
    if (q_interleaved(w)) {
        unit = QROWS;
        if (w->rows >= 2 * QROWS) span = j->stream_offset = w->rows / (2 * QROWS) * QROWS;
    } else if (w->dtype == QDT_BF16X32 && j->T == 1 && w->rows >= 2 * PROWS) {
        unit = PROWS;
        if (j->k->gemv4_bf16x32 && w->rows >= 4 * PROWS) j->streams = 4;
        span = j->stream_offset = w->rows / (j->streams * PROWS) * PROWS;
    }
    /* at least 8 per thread; for up to one tile of tokens (6), when the weights stream through
     * once, none over BLOCK_BYTES of them, or the kernel's unit (the last block a thread takes
     * bounds how long the others wait for it: 16 KB blocks cut those waits by a third against
     * 64 KB in a Q4_0 decode step; a large lm_head would otherwise come in blocks of megabytes) */
    int64_t blocks = (int64_t)threads * 8, bytes = (int64_t)qtensor_bytes(w);
    if (j->T <= 6 && blocks < bytes / BLOCK_BYTES) blocks = bytes / BLOCK_BYTES;
    j->rows_per_block = (span + blocks - 1) / blocks;
    if (j->rows_per_block < 4) j->rows_per_block = 4;
    j->rows_per_block = (j->rows_per_block + unit - 1) / unit * unit;
}

/* Readies job j for x [T][w->cols]: quantizes the activations once (block-quantized weights) or
 * reserves the per-thread prefill tiles. Returns false when out of memory. */
static bool matmul_prepare(thread_pool *pool, workspace *ws, matmul_job *j, const float *x, int T, const qtensor *w) {
    int threads = thread_pool_size(pool);
    *j = (matmul_job){ .x = x, .T = T, .w = w, .k = dot_kernels_best() };
    if (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0) {
        /* [xd | xs | blocks]: the floats first, as blocks are 34 bytes, unaligned for floats */
        int64_t nb = w->cols / QK;
        size_t blocks = (size_t)T * (size_t)nb;
        size_t act = (blocks * (2 * sizeof(float) + sizeof(block_q8_0)) + 63) / 64 * 64;
        float *xd = workspace_get(ws, act);
        if (!xd) return false;
        float *xs = xd + blocks;
        block_q8_0 *xq = (block_q8_0 *)(xs + blocks);
        quant_job qj = { x, w->cols, xq, xd, xs };
        thread_pool_run(pool, T, quantize_activation_row, &qj);
        j->xq = xq;
        j->xd = xd;
        j->xs = xs;
    } else if (w->dtype == QDT_BF16X32) {
        /* [per-thread sums | the activations in bf16, for batches when w->act_bf16] */
        j->scratch_stride = PACKED_RB * PACKED_TB;
        size_t sums = (size_t)threads * (size_t)j->scratch_stride * sizeof(float);
        bool rounded = w->act_bf16 && T > 1 && j->k->gemm6x32_bf16dp;
        j->scratch = workspace_get(ws, sums + (rounded ? (size_t)T * (size_t)w->cols * sizeof(uint16_t) : 0));
        if (!j->scratch) return false;
        if (rounded) {
            uint16_t *xb = (uint16_t *)((char *)j->scratch + sums);
            thread_pool_run(pool, T, round_activation_row, &(round_job){ x, w->cols, xb });
            j->xb = xb;
        }
    } else if (T > 1) {
        j->scratch_stride = SCRATCH_ROWS * w->cols + (int64_t)T * TILE_ROWS;
        j->scratch = workspace_get(ws, (size_t)threads * (size_t)j->scratch_stride * sizeof(float));
        if (!j->scratch) return false;
    }
    set_block_rows(j, threads);
    return true;
}

static int matmul_n_blocks(const matmul_job *j) {
    int64_t span = j->stream_offset ? j->stream_offset : j->w->rows;
    return (int)((span + j->rows_per_block - 1) / j->rows_per_block);
}

/* Fallback without workspace memory: the reference (quantized), or one token at a time. */
static void matmul_low_memory(thread_pool *pool, float *y, const float *x, int T, const qtensor *w, const float *bias) {
    if (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0 || T == 1) { matmul_ref(y, x, T, w, bias); return; }
    for (int t = 0; t < T; t++) matmul(pool, NULL, y + (int64_t)t * w->rows, x + (int64_t)t * w->cols, 1, w, bias);
}

void matmul(thread_pool *pool, workspace *ws, float *y, const float *x, int T, const qtensor *w, const float *bias) {
    matmul_multi(pool, ws, x, T, 1, &(matmul_out){ y, w, bias });
}

/* Several jobs in one pool loop: job m owns blocks first_block[m] .. first_block[m + 1] - 1. With
 * `sections` > 1 (planar matrices, one token) the loop runs in that many sections, one a thread
 * (the pool deals each thread its section): section t holds every job's t-th share of its blocks,
 * job after job, first_block[m] / sections into the section, so that each thread reads its own
 * planes from matrix to matrix. */
typedef struct multi_job {
    matmul_job *jobs;
    const int *first_block; /* [n + 1] */
    int n, sections;
} multi_job;

static void multi_block(void *ctx, int block, int thread_index) {
    const multi_job *mj = ctx;
    int per = mj->first_block[mj->n] / mj->sections, section = block / per, at = block % per;
    int lo = 0, hi = mj->n - 1; /* the last job starting at or before `at` (in its section) */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (mj->first_block[mid] / mj->sections <= at) lo = mid;
        else hi = mid - 1;
    }
    int share = (mj->first_block[lo + 1] - mj->first_block[lo]) / mj->sections;
    matmul_block(&mj->jobs[lo], section * share + at - mj->first_block[lo] / mj->sections, thread_index);
}

/* Whether every group's matrix shares the first one's dtype, width and activation rounding (one
 * activation preparation then serves them all). */
static bool alike(int n, const matmul_group *groups) {
    for (int i = 1; i < n; i++)
        if (groups[i].w->dtype != groups[0].w->dtype || groups[i].w->cols != groups[0].w->cols ||
            groups[i].w->act_bf16 != groups[0].w->act_bf16)
            return false;
    return true;
}

/* Runs jobs made from `base` (prepared for all the activations, x [rows][cols]) in one pool loop:
 * group i multiplies its rows of x by its matrix into its y (+ bias[i] when bias is not NULL);
 * groups without rows are skipped. jobs [n] and first_block [n + 1] are the caller's memory. */
/* Where the pool's threads read next, for them to prefetch once done with this loop (see
 * thread_pool_prefetch_next): after a planar decode loop, the start of their shares of the next
 * planar matrix, whose pieces follow this one's in each plane (the first matrix after the last:
 * the next step's); after any other loop nothing (a prefill's next reads are not known here).
 * The serial steps between a decode step's loops leave the workers idle for a few microseconds
 * each: their prefetching then made Q4_0 and Q8_0 steps 0.5-2% faster, token by token, and the
 * caller's while it waits at a loop's end another 0.5-1% (BENCHMARKS.md, twenty-fourth session).
 * Prefetching the caller's next reads into a worker's caches too was slower (1.002-1.012). */
static void tell_next_reads(thread_pool *pool, const matmul_job *last) {
    int threads = thread_pool_size(pool);
    const qtensor *next = last && planar_decode(last, threads) ? last->w->plane_next : NULL;
    for (int t = 0; t < threads; t++) {
        uintptr_t streams[PLANE_STREAMS];
        for (int s = 0; next && s < PLANE_STREAMS; s++)
            streams[s] = (uintptr_t)next->data + (uintptr_t)(PLANE_STREAMS * t + s) * next->plane_gap;
        thread_pool_prefetch_next(pool, t, streams, next ? PLANE_STREAMS : 0);
    }
}

static void run_groups(thread_pool *pool, const matmul_job *base, int n, const matmul_group *groups, const float *const *bias,
                       matmul_job *jobs, int *first_block) {
    int64_t cols = base->w->cols, nb = cols / QK;
    int m = 0;
    first_block[0] = 0;
    for (int i = 0; i < n; i++) {
        const matmul_group *g = &groups[i];
        if (g->n <= 0) continue;
        matmul_job *j = &jobs[m];
        *j = *base;
        j->x = base->x + (int64_t)g->first * cols;
        j->T = g->n;
        j->w = g->w;
        j->y = g->y;
        j->bias = bias ? bias[i] : NULL;
        if (j->xb) j->xb += (int64_t)g->first * cols;
        if (j->xq) { /* this group's rows of the quantized activations */
            j->xq += (int64_t)g->first * nb;
            j->xd += (int64_t)g->first * nb;
            j->xs += (int64_t)g->first * nb;
        }
        set_block_rows(j, thread_pool_size(pool));
        first_block[m + 1] = first_block[m] + matmul_n_blocks(j);
        m++;
    }
    int threads = thread_pool_size(pool), sections = m > 1 ? threads : 1; /* one job: its blocks are in section order already */
    for (int i = 0; i < m && sections > 1; i++)
        if (!planar_decode(&jobs[i], threads)) sections = 1;
    tell_next_reads(pool, m ? &jobs[m - 1] : NULL);
    multi_job mj = { jobs, first_block, m, sections };
    if (m) thread_pool_run(pool, first_block[m], multi_block, &mj);
}

enum { MAX_MULTI = 4 };

void matmul_multi(thread_pool *pool, workspace *ws, const float *x, int T, int n, const matmul_out *outs) {
    matmul_group groups[MAX_MULTI] = { { 0 } };
    const float *bias[MAX_MULTI];
    for (int i = 0; i < n && i < MAX_MULTI; i++) {
        groups[i] = (matmul_group){ 0, T, outs[i].w, outs[i].y };
        bias[i] = outs[i].bias;
    }
    if (n > MAX_MULTI || !alike(n, groups)) {
        for (int i = 0; i < n; i++) matmul(pool, ws, outs[i].y, x, T, outs[i].w, outs[i].bias);
        return;
    }
    workspace local = { 0 };
    if (!ws) ws = &local;
    matmul_job base, jobs[MAX_MULTI];
    int first_block[MAX_MULTI + 1];
    if (matmul_prepare(pool, ws, &base, x, T, outs[0].w)) run_groups(pool, &base, n, groups, bias, jobs, first_block);
    else
        for (int i = 0; i < n; i++) matmul_low_memory(pool, outs[i].y, x, T, outs[i].w, outs[i].bias);
    workspace_free(&local);
}

void matmul_grouped(thread_pool *pool, workspace *ws, const float *x, int rows, int n, const matmul_group *groups) {
    if (n <= 0) return;
    workspace local = { 0 };
    if (!ws) ws = &local;
    matmul_job base, *jobs = malloc((size_t)n * sizeof *jobs);
    int *first_block = malloc((size_t)(n + 1) * sizeof *first_block);
    if (jobs && first_block && alike(n, groups) && matmul_prepare(pool, ws, &base, x, rows, groups[0].w)) {
        run_groups(pool, &base, n, groups, NULL, jobs, first_block);
    } else { /* different shapes, or no memory for the batch: one matmul each */
        for (int i = 0; i < n; i++)
            if (groups[i].n > 0) matmul(pool, ws, groups[i].y, x + (int64_t)groups[i].first * groups[i].w->cols, groups[i].n, groups[i].w, NULL);
    }
    free(jobs);
    free(first_block);
    workspace_free(&local);
}

void matmul_ref(float *y, const float *x, int T, const qtensor *w, const float *bias) {
    if (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0) {
        /* the quantized path's definition: activations quantized to Q8_0, integer block dots */
        int64_t nb = w->cols / QK;
        block_q8_0 *xq = malloc((size_t)nb * sizeof *xq);
        if (!xq) return;
        for (int t = 0; t < T; t++) {
            quantize_row_q8_0(x + (int64_t)t * w->cols, xq, w->cols);
            for (int64_t r = 0; r < w->rows; r++) {
                float d = ref_row_dot_q(w, r, xq);
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
