/* Tensors and kernels. Weights stay in their stored dtype (mapped from disk); activations are f32.
 * Every kernel has a plain-C reference (`*_ref`); fast paths live in *_avx2.c / *_avx512.c and
 * are chosen at run time from CPUID (dot_kernels_best, matmul.c), each tested against the reference. */
#ifndef QWENC_TENSOR_TENSOR_H
#define QWENC_TENSOR_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "base/threads.h"

typedef enum qdtype { QDT_F32, QDT_F16, QDT_BF16, QDT_Q8_0, QDT_Q4_0, QDT_BF16X32 } qdtype;

/* Block-quantized formats, byte-compatible with GGUF's Q8_0 and Q4_0: 32 weights per block with
 * one f16 scale. Q8_0: w = d * q (q int8). Q4_0: w = d * (nibble - 8); byte j holds weight j in its
 * low nibble and weight j + 16 in its high nibble. */
enum { QK = 32 };
#define EXP_SUM_FLOOR (-86.6f) /* see dot_kernels.exp_sum: exp(-86.6) = 2.4e-38, above FLT_MIN */
typedef struct block_q8_0 { uint16_t d; int8_t qs[QK]; } block_q8_0;
typedef struct block_q4_0 { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;

/* Row-interleaved storage. A Q8_0/Q4_0 matrix whose rows are a multiple of QROWS = 16 is kept in
 * groups of 16 rows so that one pass over a group's bytes yields 16 outputs with full-width vector
 * instructions (matrix-vector products are then memory-bound, not instruction-bound). Group G
 * (rows 16G..16G+15) holds its n_blocks "superblocks" one after another, superblock b being:
 *   16 f16 scales (row order), then 64-byte chunks whose byte 4r + j belongs to row r:
 *   Q8_0: 8 chunks; chunk g byte 4r + j = weight 4g + j of row r as an unsigned byte (q + 128)
 *   Q4_0: 4 chunks; chunk g byte 4r + j = byte 4g + j of row r's Q4_0 block (low nibble weight
 *         4g + j, high nibble weight 16 + 4g + j, each q + 8)
 * A superblock has the size of 16 blocks, so the matrix has as many bytes as in plain rows. Other
 * matrices (rows not a multiple of 16) keep plain rows of blocks. */
enum { QROWS = 16 };

/* Packed bf16 (QDT_BF16X32): a bf16 matrix whose rows are a multiple of PROWS = 32, repacked at
 * load time (model.c) for the 6x32 tile, so that decode and prefill read it straight, with no
 * transposition and no horizontal sums. Group G (rows 32G..32G+31) holds, for each column k in
 * order, 32 values (64 bytes) ordered r0, r16, r1, r17, ..., r15, r31: read as 16 32-bit words,
 * word i holds row i in its low half and row 16 + i in its high half, so (word << 16) and
 * (word & 0xffff0000) are rows 0-15 and rows 16-31 as f32. As many bytes as plain bf16 rows. */
enum { PROWS = 32 };
static inline size_t bf16x32_index(int64_t cols, int64_t r, int64_t k) {
    return (size_t)(r / PROWS) * (size_t)cols * PROWS + (size_t)k * PROWS + (size_t)(2 * (r % 16) + (r % PROWS) / 16);
}
/* Packs plain bf16 rows [n_rows][cols] (n_rows a multiple of PROWS) into `out`, same size. */
void pack_bf16x32(const uint16_t *rows, int64_t n_rows, int64_t cols, uint16_t *out);

/* Bytes of one row of `cols` weights (cols a multiple of QK for the block formats). */
size_t qdtype_row_bytes(qdtype t, int64_t cols);
/* Element size for the plain formats (4 or 2); the block formats use qdtype_row_bytes. */
size_t qdtype_size(qdtype t);
const char *qdtype_name(qdtype t);

/* A 2-D weight matrix, row-major: `rows` output features of `cols` inputs each (PyTorch's
 * Linear layout, [out, in]). A 1-D tensor is rows = 1. `data` is borrowed (usually mapped). */
typedef struct qtensor {
    qdtype dtype;
    int64_t rows, cols;
    const void *data;
    /* packed bf16 only: batches of tokens (prefill) are multiplied with their activations rounded
     * to bf16, by AVX512-BF16 dot products where the CPU has them (dot_kernels.gemm6x32_bf16dp);
     * one token at a time, and without those instructions, the activations stay f32 */
    bool act_bf16;
    /* Interleaved Q8_0/Q4_0 in planes (see PLANE_STREAMS) when piece_rows > 0: the rows come in
     * PLANE_STREAMS * piece_threads pieces of piece_rows rows, piece k (rows k * piece_rows ..) in
     * plane PLANE_STREAMS * (k % piece_threads) + k / piece_threads, the planes plane_gap bytes
     * apart; `data` is row 0. Each piece is laid out as in a contiguous matrix. */
    int64_t piece_rows;
    int piece_threads;
    size_t plane_gap;
    const struct qtensor *plane_next; /* the planar matrix a decode step reads next (the last one's: the first) */
} qtensor;

/* Planar weights. A decode step reads each interleaved Q8_0/Q4_0 matrix as PLANE_STREAMS streams a
 * thread (the rows a quarter of the matrix apart, each thread its share of every quarter). Laid
 * out contiguously, a thread's streams start over at every matrix and lie a quarter of a matrix
 * apart; in planes (model.c lays them out at load), stream s of thread t reads plane
 * PLANE_STREAMS * t + s, which holds that stream's rows of every matrix in the order a step reads
 * them, so each stream runs on from matrix to matrix, far from the others, as the bandwidth
 * probe's streams do: measured here (BENCHMARKS.md, nineteenth session), a Q4_0 step's matmuls
 * ~9% faster where the memory is fast, its decode steps 5-7% (bench_planes_ab), Q8_0's 0-13%. */
enum { PLANE_STREAMS = 4 };

/* Address of row r of a block-quantized matrix, row_bytes = qdtype_row_bytes(w->dtype, w->cols):
 * in a contiguous matrix data + r * row_bytes, in a planar one inside its piece. */
static inline const uint8_t *q_row(const qtensor *w, int64_t r, size_t row_bytes) {
    if (!w->piece_rows) return (const uint8_t *)w->data + (size_t)r * row_bytes;
    int64_t k = r / w->piece_rows;
    size_t plane = (size_t)(PLANE_STREAMS * (k % w->piece_threads) + k / w->piece_threads);
    return (const uint8_t *)w->data + plane * w->plane_gap + (size_t)(r % w->piece_rows) * row_bytes;
}

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { (uint32_t)h << 16 };
    return v.f;
}
float f16_to_f32(uint16_t h);
/* f32 to bf16 as AVX512-BF16 converts: round to nearest even, subnormals to signed zero, NaN stays
 * a (quiet) NaN */
static inline uint16_t f32_to_bf16_daz(float f) {
    union { float f; uint32_t u; } v = { f };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* NaN */
    if ((v.u & 0x7f800000u) == 0) return (uint16_t)((v.u >> 16) & 0x8000);       /* zero, subnormal */
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1)) >> 16);
}

/* Whether w is block-quantized with rows interleaved in groups of QROWS (see above). */
bool q_interleaved(const qtensor *w);
/* Copies block b of row r of a block-quantized matrix (either layout) as a plain block into *out
 * (a block_q8_0 or block_q4_0). */
void q_block(const qtensor *w, int64_t r, int64_t b, void *out);
/* Quantizes rows [n_rows][cols] of f32 into `out` (n_rows * qdtype_row_bytes bytes); interleaved
 * when `interleave` (n_rows a multiple of QROWS), plain rows otherwise. Returns false when out of
 * memory (interleaving needs a 16-row buffer). */
bool quantize_rows_f32(qdtype t, const float *x, int64_t n_rows, int64_t cols, bool interleave, void *out);

/* Bytes of w's data (rows * qdtype_row_bytes). */
size_t qtensor_bytes(const qtensor *w);
/* Copies bytes [offset, offset + len) of w's data as a contiguous matrix would hold them (a planar
 * matrix's pieces in row order) into out. */
void qtensor_read(const qtensor *w, size_t offset, size_t len, void *out);

/* Converts row `r` of `w` to f32 into out[cols]. */
void qtensor_row_f32(const qtensor *w, int64_t r, float *out);

/* Scratch memory a caller keeps across matmuls so that none of them allocates (large fresh
 * allocations cost page faults). Zero-initialise; free with workspace_free. */
typedef struct workspace { void *data; size_t cap; } workspace;
/* Returns at least `size` bytes (64-byte aligned), growing the workspace; NULL when out of memory. */
void *workspace_get(workspace *ws, size_t size);
void workspace_free(workspace *ws);

/* y[t, r] = sum_i x[t, i] * w[r, i] + (bias ? bias[r] : 0), for t < T, r < w->rows.
 * x is [T, w->cols] and y [T, w->rows], both f32 row-major. Uses the pool's threads and the
 * workspace's memory (ws may be NULL: then it allocates per call). */
void matmul(thread_pool *pool, workspace *ws, float *y, const float *x, int T, const qtensor *w, const float *bias);
/* Several matrices applied to the same x (q, k and v; gate and up): outs[i].y = x · outs[i].wᵀ
 * (+ bias). When their dtypes and widths agree the activations are prepared once and all rows run
 * in one loop on the pool (one synchronisation instead of n); otherwise one matmul each. */
typedef struct matmul_out { float *y; const qtensor *w; const float *bias; } matmul_out;
void matmul_multi(thread_pool *pool, workspace *ws, const float *x, int T, int n, const matmul_out *outs);
/* Groups of rows of one activation matrix x [rows][cols], each through its own weight matrix, in
 * one loop on the pool (a mixture-of-experts layer: the tokens routed to each expert): group i
 * multiplies rows first .. first + n - 1 by w into y [n][w->rows]; groups with n = 0 are skipped.
 * The activations are prepared once for all groups when the matrices share dtype and width;
 * otherwise (or short of memory) each group runs as its own matmul. No bias. */
typedef struct matmul_group { int first, n; const qtensor *w; float *y; } matmul_group;
void matmul_grouped(thread_pool *pool, workspace *ws, const float *x, int rows, int n, const matmul_group *groups);

void ref_axpy(float *y, float a, const float *x, int64_t n);
void ref_softmax(float *x, int64_t n);
float ref_exp_sum(float *x, int64_t n, float *max);
void ref_swiglu(float *a, const float *b, int64_t n);
void ref_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
void ref_bf16_to_f32(const uint16_t *in, float *out, int64_t n);
void ref_bf16_tile_f32(const uint16_t *w, int64_t stride, int64_t n, float *tile);
void ref_gemm6x32_bf16x32(const uint16_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
void ref_gemv2_bf16x32(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out);
void ref_gemv4_bf16x32(const uint16_t *w, int64_t stride, const float *x, int64_t n, float *out);
void ref_gemm6x32_bf16dp(const uint16_t *wt, const uint16_t *xb, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
void ref_f32_to_bf16_row(const float *in, uint16_t *out, int64_t n);
void ref_gemm6x32_f16(const uint16_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
enum { Q8G_BYTES = 32 * 4 + 32 * 32 }; /* a q8 group: 32 scales, 32 x 32 int8 */
void ref_gemm6x32_q8(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
/* gemm6x32_q8 through a SIMD table's int8 tile (gemm6x32_f32 with int8 weights [n][32]), a group
 * of 32 steps at a time: step scales fold into a copy of the activations, column scales multiply
 * each group's sums into the total (the AVX2 and NEON tables' gemm6x32_q8). */
typedef void (*gemm6x32_i8_fn)(const int8_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
void gemm6x32_q8_by_groups(gemm6x32_i8_fn tile, const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows,
                           bool accumulate, float *out);
void ref_f32_to_f16_row(const float *in, uint16_t *out, int64_t n);
void ref_transpose(const float *in, int64_t ld_in, float *out, int64_t ld_out, int64_t rows, int64_t cols);
void ref_rope(float *v, const float *cs, int64_t half, float scale);
/* ref_rope of the pairs from `from` on (the fast paths' last pairs) */
void ref_rope_from(float *v, const float *cs, int64_t half, int64_t from, float scale);
/* The single-threaded plain-C reference for matmul. With block-quantized weights it defines the
 * numerics: the activations are quantized to Q8_0 too and multiplied with integer block dots. */
void matmul_ref(float *y, const float *x, int T, const qtensor *w, const float *bias);

/* Dot products of one weight row against f32 vectors. The kernel table is chosen once. */
typedef struct dot_kernels {
    const char *name;
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    /* f32 activations against a weight row stored as bf16 / f16 */
    float (*dot_bf16)(const float *a, const uint16_t *b, int64_t n);
    float (*dot_f16)(const float *a, const uint16_t *b, int64_t n);
    /* quantized weight rows against activations quantized to Q8_0, n_blocks blocks of QK;
     * xd[b] is activation block b's scale as f32 and xs[b] = xd[b] * (sum of its quants), from
     * q8_0_block_sums (fast kernels take weights as unsigned bytes and correct with xs) */
    float (*dot_q8_0)(const block_q8_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks);
    float (*dot_q4_0)(const block_q4_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks);
    /* A tile of a batched matmul (prefill, attention): out[t * 32 + r] (+)= sum_k x[t * ldx + k] * wt[k * 32 + r]
     * for `rows` (1..6) activation rows t and 32 weight rows r, the weights transposed to f32 [n][32];
     * adds to out when `accumulate`, else overwrites; out rows >= `rows` are left alone. */
    void (*gemm6x32_f32)(const float *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
    /* the same with wt stored as f16 (an f16 KV cache), widened in registers */
    void (*gemm6x32_f16)(const uint16_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
    /* the same with wt a packed bf16 group (QDT_BF16X32) from column k0 on: wt[k * 32 + j] holds
     * row j / 2 + 16 * (j % 2) of column k0 + k; out[t * 32 + r] in natural row order */
    void (*gemm6x32_bf16x32)(const uint16_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
    /* One token against two packed bf16 groups, anywhere in memory (decode reads a matrix as two
     * distant streams): out[0..32) = group w0's rows, out[32..64) = group w1's, each as
     * gemm6x32_bf16x32 with rows = 1 over all n columns */
    void (*gemv2_bf16x32)(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out);
    /* The same tile for two interleaved groups of 16 rows anywhere in memory (g0: out rows 0-15,
     * g1: 16-31; g1 may equal g0) against `rows` (1..6) tokens' Q8_0 activations, whose blocks,
     * scales and scaled sums lie `ldx` blocks apart: out[t * 32 + r]. Decode runs it with one token
     * on two groups half a matrix apart, prefill with up to 6. */
    void (*gemm_q8_0_x16)(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                          int64_t n_blocks, int rows, float *out);
    void (*gemm_q4_0_x16)(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                          int64_t n_blocks, int rows, float *out);
    void (*axpy)(float *y, float a, const float *x, int64_t n);   /* y += a * x */
    /* Attention's online softmax, a chunk of scores at a time: *max = the larger of *max and every
     * x[i], then x[i] = exp(x[i] - *max) for i < n (n >= 0), or 0 where x[i] - *max is below
     * EXP_SUM_FLOOR (weights under 2^-125 of the largest, whose subnormal products would slow
     * every multiply they enter, and change no f32 sum); returns their sum (fast paths: a
     * polynomial exp within 2 ulp of expf). */
    float (*exp_sum)(float *x, int64_t n, float *max);
    /* a[i] = silu(a[i]) * b[i] (SwiGLU's gate), same exp */
    void (*swiglu)(float *a, const float *b, int64_t n);
    /* out = x / rms(x) * w, the mean of squares summed in double */
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    void (*bf16_to_f32)(const uint16_t *in, float *out, int64_t n);
    /* 32 bf16 rows (row i at w + i * stride) to the f32 prefill tile: tile[k * 32 + i], k < n */
    void (*bf16_tile_f32)(const uint16_t *w, int64_t stride, int64_t n, float *tile);
    /* quantize_row_q8_0, bit for bit, and q8_0_block_sums of the result (xd, xs: [n / QK]): the
     * activations before a quantized matmul */
    void (*quantize_q8_0)(const float *x, block_q8_0 *out, float *xd, float *xs, int64_t n);
    /* out[i] = f16(in[i]), round to nearest even (f32_to_f16) */
    void (*f32_to_f16_row)(const float *in, uint16_t *out, int64_t n);
    /* out[c * ld_out + r] = in[r * ld_in + c] for r < rows, c < cols */
    void (*transpose)(const float *in, int64_t ld_in, float *out, int64_t ld_out, int64_t rows, int64_t cols);
    /* Rotate-half RoPE of one head vector, then a scale: for i < half, (v[i], v[half + i]) turned
     * by the angle whose cosine is cs[i] and sine cs[half + i], each result rounded, then times
     * `scale` (a query's 1 / sqrt(head_dim), 1 for a key). Fast paths may fuse a multiply and an
     * add (within an ulp of the terms' magnitude). */
    void (*rope)(float *v, const float *cs, int64_t half, float scale);
    /* NULL unless the CPU has AVX512-BF16 (NULL in the reference table too; ref_gemm6x32_bf16dp
     * and ref_f32_to_bf16_row define them): gemm6x32_bf16x32 with the activations given as bf16
     * (xb), two columns per instruction at twice the f32 tile's multiply rate; products exact,
     * sums in f32 */
    void (*gemm6x32_bf16dp)(const uint16_t *wt, const uint16_t *xb, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
    /* out[i] = bf16(in[i]) rounded to nearest even, subnormals to signed zero (f32_to_bf16_daz) */
    void (*f32_to_bf16_row)(const float *in, uint16_t *out, int64_t n);
    /* gemm6x32_f32 with the weights in q8 groups (a q8_0 KV cache): group i, Q8G_BYTES at
     * w + i * Q8G_BYTES, holds steps k = 32i .. 32i + 31 as 32 f32 scales, then int8 [32][32]
     * (step k's 32 columns at byte 128 + (k % 32) * 32). The scales belong to the columns
     * (step_scales false: keys, a scale per position and 32 dimensions) or to the steps (true:
     * values, a scale per position): out[t * 32 + r] (+)= sum_k x[t * ldx + k] * q[k][r] * scale. */
    void (*gemm6x32_q8)(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
    /* One token against four packed bf16 groups `stride` elements apart (w, w + stride, w + 2 *
     * stride, w + 3 * stride): out[32 * g .. 32 * g + 32) = group g's rows, as gemv2_bf16x32.
     * Decode then reads a bf16 matrix as four distant streams instead of two. NULL where a table
     * keeps two (AVX2 and NEON: four groups' sums would not fit in their vector registers; the
     * reference table, whose decode the tests run as the other tables do). */
    void (*gemv4_bf16x32)(const uint16_t *w, int64_t stride, const float *x, int64_t n, float *out);
    /* One token against four interleaved Q8_0 / Q4_0 groups anywhere in memory (g[0..3], n_blocks
     * superblocks each): out[16 * s .. 16 * s + 16) = group s's rows, the sums of
     * gemm_q8_0_x16's / gemm_q4_0_x16's one-token tile. Decode reads a planar matrix with it (see
     * PLANE_STREAMS); NULL where a table has none (its matrices then stay contiguous). */
    void (*gemv4_q8_0)(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out);
    void (*gemv4_q4_0)(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out);
    /* argmax_f32 (greedy decoding's pick among the vocabulary's logits); NULL: the reference */
    int64_t (*argmax)(const float *x, int64_t n);
    /* Bytes at the start of each of a quantized decode block's two streams that matmul prefetches
     * at once (non-temporally) before the block's tiles run (0: none; measured per table, see
     * where a table sets it) */
    int decode_burst;
} dot_kernels;

void ref_gemm6x32_f32(const float *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out);
void ref_gemm_q8_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                       int64_t n_blocks, int rows, float *out);
void ref_gemm_q4_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                       int64_t n_blocks, int rows, float *out);
void ref_gemv4_q8_0(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out);
void ref_gemv4_q4_0(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out);

/* quant.c: reference quantization (round to nearest, as llama.cpp does) */
float f32_to_f16_value(float f); /* rounds through f16 */
uint16_t f32_to_f16(float f);
void quantize_row_q8_0(const float *x, block_q8_0 *out, int64_t n);
void quantize_row_q4_0(const float *x, block_q4_0 *out, int64_t n);
void dequantize_row(qdtype t, const void *row, float *out, int64_t n);
float ref_dot_q8_0(const block_q8_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks);
float ref_dot_q4_0(const block_q4_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks);
/* Row r of a block-quantized matrix (either layout) against Q8_0 activations: integer block dots,
 * each scaled by both f16 scales, summed in order (the definition the fast kernels are tested against). */
float ref_row_dot_q(const qtensor *w, int64_t r, const block_q8_0 *x);
void q8_0_block_sums(const block_q8_0 *x, int64_t n_blocks, float *xd, float *xs);
/* quantize_row_q8_0, then q8_0_block_sums (dot_kernels.quantize_q8_0's reference) */
void ref_quantize_q8_0(const float *x, block_q8_0 *out, float *xd, float *xs, int64_t n);

/* The tables. Each fast one is compiled for its ISA (AVX2 + FMA + F16C; the same with AVX-VNNI;
 * AVX-512 F/BW/VL/VNNI, with AVX512-BF16 where CPUID has it; AArch64 NEON, which every AArch64
 * CPU has, and the same with the dot-product instructions): run it only where the CPU has that. They are NULL in builds for other architectures. */
const dot_kernels *dot_kernels_ref(void);
const dot_kernels *dot_kernels_avx2(void);
const dot_kernels *dot_kernels_avxvnni(void);
const dot_kernels *dot_kernels_avx512(void);
const dot_kernels *dot_kernels_neon(void);
const dot_kernels *dot_kernels_neon_dotprod(void);
/* Whether this CPU runs table k (CPUID on x86-64; false for NULL). */
bool dot_kernels_runnable(const dot_kernels *k);
/* The table whose name is `name` ("reference", "avx2", "avx2+vnni", "avx512", "neon", "neon+dotprod"),
 * NULL for none. */
const dot_kernels *dot_kernels_named(const char *name);
/* The table the environment variable QWENC_KERNELS names when this CPU runs it (to measure a
 * narrower table on a wider machine), else the widest it runs; decided once per process. */
const dot_kernels *dot_kernels_best(void);

/* How far ahead a decode step's weights are prefetched by the SIMD decode tiles, non-temporally
 * (prefetchnta: into L1 without displacing what L2 holds; each weight is read once per token):
 * measured in alternation on a Q4_0 decode, 2-8 KB ahead made tokens 6-11% faster (won 5-6 of 6
 * pairs), while T0/T1 prefetches at 1-16 KB did nothing; with the weights on huge pages (ninth
 * session) Q4_0 tokens are 0-4% slower at 2 KB, 7-13% at 1 KB, no faster at 6-8 KB. The packed
 * bf16 tiles, which go through their bytes with the least arithmetic, run best at 1-2 KB: 2 KB
 * against 4 KB, token by token, made bf16 tokens a median 3-6% faster (Qwen3-0.6B, Qwen2.5-1.5B
 * and Qwen3-1.7B shapes, 20 of 22 runs; AVX2 5 of 6), while no prefetch at all was better or
 * worse with the spell (the AVX-512 Q8_0 tile has its own distance: dot_avx512.c). (The NEON tiles
 * keep DECODE_PREFETCH: not measured on ARM hardware.)
 * Past a matrix's end the prefetches touch the next one or nothing (they never fault). */
enum { DECODE_PREFETCH = 4096, DECODE_PREFETCH_BF16 = 2048 };

/* x[i] = x[i] / rms(x) * w[i] over n elements (the reference; see dot_kernels.rmsnorm). */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void softmax(float *x, int n); /* the reference (see dot_kernels.exp_sum for attention's) */
/* The index of the largest of x[0..n), the first one on ties; NaNs never win (0 when all are
 * NaN or n < 1): the best kernel table's argmax, else ref_argmax_f32, written as 16 independent
 * lanes that the compiler vectorizes for the baseline ISA (a 151,936-token vocabulary in ~34 us
 * here; AVX-512 ~2.7 us). */
int64_t argmax_f32(const float *x, int64_t n);
int64_t ref_argmax_f32(const float *x, int64_t n);
static inline float silu(float x);
static inline float silu(float x) { return x / (1.0f + __builtin_expf(-x)); }

#endif
