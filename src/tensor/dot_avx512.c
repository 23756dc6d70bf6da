/* AVX-512 dot products (compiled with -mavx512f/bw/vl/bf16; used only when CPUID says so). */
#include "tensor/tensor.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline __m512 load_bf16x16(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static float avx512_dot_f32(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float avx512_dot_bf16(const float *a, const uint16_t *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_bf16x16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_bf16x16(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_bf16x16(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m256i h = _mm256_maskz_loadu_epi16(m, b + i);
        __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), w, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float avx512_dot_f16(const float *a, const uint16_t *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + i))), s0);
    float s = _mm512_reduce_add_ps(s0);
    for (; i < n; i++) s += a[i] * f16_to_f32(b[i]);
    return s;
}

/* Quantized dots, two blocks per 512-bit step. VNNI multiplies unsigned by signed bytes, so the
 * weights enter unsigned and the offset comes off at the end with the activation sums:
 * Q4_0 nibbles are w + 8 and Q8_0 bytes flipped by 0x80 are w + 128; sum((w + c) x) = dot + c sum(x). */
static inline __m512 two_scales(float a, float b) {
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

static inline __m512i two_x(const block_q8_0 *x, int64_t b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs)),
                              _mm256_loadu_si256((const __m256i *)x[b + 1].qs), 1);
}

static float avx512_dot_q4_0(const block_q4_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    float corr = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m512i order = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0); /* lo0 hi0 lo1 hi1 */
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        __m256i q = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)w[b + 1].qs), _mm_loadu_si128((const __m128i *)w[b].qs));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        __m512i wu = _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), order, _mm512_castsi256_si512(hi));
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, two_x(x, b));
        float d0 = _cvtsh_ss(w[b].d), d1 = _cvtsh_ss(w[b + 1].d);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), two_scales(d0 * xd[b], d1 * xd[b + 1]), acc);
        corr += d0 * xs[b] + d1 * xs[b + 1];
    }
    float s = _mm512_reduce_add_ps(acc) - 8 * corr;
    if (b < nb) s += ref_dot_q4_0(w + b, x + b, NULL, NULL, 1);
    return s;
}

static float avx512_dot_q8_0(const block_q8_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    float corr = 0;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        __m512i wu = _mm512_xor_si512(two_x(w, b), flip);
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, two_x(x, b));
        float d0 = _cvtsh_ss(w[b].d), d1 = _cvtsh_ss(w[b + 1].d);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), two_scales(d0 * xd[b], d1 * xd[b + 1]), acc);
        corr += d0 * xs[b] + d1 * xs[b + 1];
    }
    float s = _mm512_reduce_add_ps(acc) - 128 * corr;
    if (b < nb) s += ref_dot_q8_0(w + b, x + b, NULL, NULL, 1);
    return s;
}

/* 16 interleaved rows at once (see QROWS in tensor.h): each 64-byte chunk is 16 rows x 4 weights,
 * multiplied with one broadcast group of 4 activations by a single VNNI instruction. */
static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static inline __m512i load64(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

static inline __m512 load_f16x16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

/* How a tile's weights are stored: f32 [n][32], f16 [n][32] (an f16 KV cache), int8 [n][32] (the
 * integers of a q8_0 KV cache's group, scaled by gemm_q8_rx32), or a packed bf16
 * group (QDT_BF16X32: each 64-byte step holds rows 0-15 in the low and 16-31 in the high halves of
 * its 32-bit words). */
enum { WT_F32, WT_F16, WT_I8, WT_BF16X32 };

/* Step k of a tile's weights as two f32 vectors: rows 0-15 and rows 16-31. */
static inline __attribute__((always_inline)) void load_w32(const void *wt, const int kind, int64_t k, __m512 *w0, __m512 *w1) {
    if (kind == WT_F32) {
        *w0 = _mm512_loadu_ps((const float *)wt + k * 32);
        *w1 = _mm512_loadu_ps((const float *)wt + k * 32 + 16);
    } else if (kind == WT_F16) {
        *w0 = load_f16x16((const uint16_t *)wt + k * 32);
        *w1 = load_f16x16((const uint16_t *)wt + k * 32 + 16);
    } else if (kind == WT_I8) {
        const int8_t *q = (const int8_t *)wt + k * 32;
        *w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
        *w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))));
    } else {
        __m512i d = _mm512_loadu_si512((const uint16_t *)wt + k * 32);
        *w0 = _mm512_castsi512_ps(_mm512_slli_epi32(d, 16));
        *w1 = _mm512_castsi512_ps(_mm512_and_si512(d, _mm512_set1_epi32((int)0xffff0000u)));
    }
}

/* R tokens x 32 weight rows with the weights transposed: each step loads the 32 weights of one
 * column (widened to f32 in registers unless stored so) and broadcasts one activation per token
 * into 2R FMAs; no horizontal sums. R and the storage kind are constants in each instance below,
 * so the accumulators live in registers. */
static inline __attribute__((always_inline)) void gemm_rx32(const void *wt, const int kind, const float *x, int64_t ldx, int64_t n,
                                                            bool accumulate, float *out, const int R) {
    __m512 c[6][2];
    const float *xr[6];
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        c[t][0] = accumulate ? _mm512_loadu_ps(out + t * 32) : _mm512_setzero_ps();
        c[t][1] = accumulate ? _mm512_loadu_ps(out + t * 32 + 16) : _mm512_setzero_ps();
        xr[t] = x + t * ldx;
    }
    int64_t k = 0;
    if (R <= 3) {
        /* few tokens: 2R accumulator chains cannot cover the FMA latency, so odd steps of k go to a
         * second set, added in at the end (decode and decode attention run here) */
        __m512 e[3][2];
#pragma GCC unroll 3
        for (int t = 0; t < R; t++) e[t][0] = e[t][1] = _mm512_setzero_ps();
        for (; k + 1 < n; k += 2) {
            __m512 w0, w1, v0, v1;
            load_w32(wt, kind, k, &w0, &w1);
            load_w32(wt, kind, k + 1, &v0, &v1);
#pragma GCC unroll 3
            for (int t = 0; t < R; t++) {
                __m512 b = _mm512_set1_ps(xr[t][k]), b1 = _mm512_set1_ps(xr[t][k + 1]);
                c[t][0] = _mm512_fmadd_ps(b, w0, c[t][0]);
                c[t][1] = _mm512_fmadd_ps(b, w1, c[t][1]);
                e[t][0] = _mm512_fmadd_ps(b1, v0, e[t][0]);
                e[t][1] = _mm512_fmadd_ps(b1, v1, e[t][1]);
            }
        }
#pragma GCC unroll 3
        for (int t = 0; t < R; t++) {
            c[t][0] = _mm512_add_ps(c[t][0], e[t][0]);
            c[t][1] = _mm512_add_ps(c[t][1], e[t][1]);
        }
    }
    for (; k < n; k++) {
        __m512 w0, w1;
        load_w32(wt, kind, k, &w0, &w1);
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) {
            __m512 b = _mm512_set1_ps(xr[t][k]);
            c[t][0] = _mm512_fmadd_ps(b, w0, c[t][0]);
            c[t][1] = _mm512_fmadd_ps(b, w1, c[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        _mm512_storeu_ps(out + t * 32, c[t][0]);
        _mm512_storeu_ps(out + t * 32 + 16, c[t][1]);
    }
}

#define GEMM_RX32(NAME, WT, KIND)                                                                                     \
    static void NAME(const WT *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {   \
        switch (rows) {                                                                                               \
        case 1: gemm_rx32(wt, KIND, x, ldx, n, accumulate, out, 1); break;                                            \
        case 2: gemm_rx32(wt, KIND, x, ldx, n, accumulate, out, 2); break;                                            \
        case 3: gemm_rx32(wt, KIND, x, ldx, n, accumulate, out, 3); break;                                            \
        case 4: gemm_rx32(wt, KIND, x, ldx, n, accumulate, out, 4); break;                                            \
        case 5: gemm_rx32(wt, KIND, x, ldx, n, accumulate, out, 5); break;                                            \
        default: gemm_rx32(wt, KIND, x, ldx, n, accumulate, out, 6); break;                                           \
        }                                                                                                             \
    }
GEMM_RX32(avx512_gemm6x32_f32, float, WT_F32)
GEMM_RX32(avx512_gemm6x32_f16, uint16_t, WT_F16)
GEMM_RX32(avx512_gemm6x32_bf16x32, uint16_t, WT_BF16X32)
#undef GEMM_RX32

/* The q8 tile (a q8_0 KV cache, see dot_kernels.gemm6x32_q8), a group of 32 steps at a time: with
 * column scales (keys) the group's sums go to their own accumulators (two sets for few tokens, as
 * in gemm_rx32) and are scaled into the total; with step scales (values) the group's activations
 * are first scaled into a copy, 16 at a time. The scales lead each group, so a block streams
 * front to back. */
static inline __attribute__((always_inline)) void gemm_q8_rx32(const uint8_t *w, const bool step_scales, const float *x, int64_t ldx,
                                                               int64_t n, bool accumulate, float *out, const int R) {
    __m512 c[6][2];
    float xg[6 * 32];
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        c[t][0] = accumulate ? _mm512_loadu_ps(out + t * 32) : _mm512_setzero_ps();
        c[t][1] = accumulate ? _mm512_loadu_ps(out + t * 32 + 16) : _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < n; g += 32, w += Q8G_BYTES) {
        const float *scale = (const float *)w;
        const int8_t *q = (const int8_t *)(w + 32 * sizeof(float));
        int64_t len = n - g < 32 ? n - g : 32;
        const float *xp = x + g; /* step g + k's activations at xp[t * lx + k] */
        int64_t lx = ldx;
        if (step_scales) {
            __mmask16 m0 = len >= 16 ? 0xffff : (__mmask16)((1u << len) - 1), m1 = len >= 32 ? 0xffff : len > 16 ? (__mmask16)((1u << (len - 16)) - 1) : 0;
            __m512 s0 = _mm512_loadu_ps(scale), s1 = _mm512_loadu_ps(scale + 16);
#pragma GCC unroll 6
            for (int t = 0; t < R; t++) {
                _mm512_storeu_ps(xg + t * 32, _mm512_mul_ps(_mm512_maskz_loadu_ps(m0, x + t * ldx + g), s0));
                _mm512_storeu_ps(xg + t * 32 + 16, _mm512_mul_ps(_mm512_maskz_loadu_ps(m1, x + t * ldx + g + 16), s1));
            }
            xp = xg;
            lx = 32;
        }
        __m512 e[6][2], f[6][2];
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) e[t][0] = e[t][1] = f[t][0] = f[t][1] = _mm512_setzero_ps();
        int64_t k = 0;
        for (; R <= 3 && k + 1 < len; k += 2) {
            __m512 w0, w1, v0, v1;
            load_w32(q, WT_I8, k, &w0, &w1);
            load_w32(q, WT_I8, k + 1, &v0, &v1);
#pragma GCC unroll 3
            for (int t = 0; t < R; t++) {
                __m512 b = _mm512_set1_ps(xp[t * lx + k]), b1 = _mm512_set1_ps(xp[t * lx + k + 1]);
                e[t][0] = _mm512_fmadd_ps(b, w0, e[t][0]);
                e[t][1] = _mm512_fmadd_ps(b, w1, e[t][1]);
                f[t][0] = _mm512_fmadd_ps(b1, v0, f[t][0]);
                f[t][1] = _mm512_fmadd_ps(b1, v1, f[t][1]);
            }
        }
        for (; k < len; k++) {
            __m512 w0, w1;
            load_w32(q, WT_I8, k, &w0, &w1);
#pragma GCC unroll 6
            for (int t = 0; t < R; t++) {
                __m512 b = _mm512_set1_ps(xp[t * lx + k]);
                e[t][0] = _mm512_fmadd_ps(b, w0, e[t][0]);
                e[t][1] = _mm512_fmadd_ps(b, w1, e[t][1]);
            }
        }
        __m512 g0 = step_scales ? _mm512_set1_ps(1.0f) : _mm512_loadu_ps(scale), g1 = step_scales ? g0 : _mm512_loadu_ps(scale + 16);
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) {
            c[t][0] = _mm512_fmadd_ps(_mm512_add_ps(e[t][0], f[t][0]), g0, c[t][0]);
            c[t][1] = _mm512_fmadd_ps(_mm512_add_ps(e[t][1], f[t][1]), g1, c[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        _mm512_storeu_ps(out + t * 32, c[t][0]);
        _mm512_storeu_ps(out + t * 32 + 16, c[t][1]);
    }
}

static void avx512_gemm6x32_q8(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate,
                               float *out) {
    switch (rows) {
    case 1: gemm_q8_rx32(w, step_scales, x, ldx, n, accumulate, out, 1); break;
    case 2: gemm_q8_rx32(w, step_scales, x, ldx, n, accumulate, out, 2); break;
    case 3: gemm_q8_rx32(w, step_scales, x, ldx, n, accumulate, out, 3); break;
    case 4: gemm_q8_rx32(w, step_scales, x, ldx, n, accumulate, out, 4); break;
    case 5: gemm_q8_rx32(w, step_scales, x, ldx, n, accumulate, out, 5); break;
    default: gemm_q8_rx32(w, step_scales, x, ldx, n, accumulate, out, 6); break;
    }
}

/* The packed bf16 tile with bf16 activations (AVX512-BF16): each step takes columns k and k + 1,
 * re-pairs their two 64-byte steps in registers into words (w[k], w[k + 1]) for rows 0-15 and
 * rows 16-31, and multiplies each with a token's broadcast (x[k], x[k + 1]) in one vdpbf16ps:
 * 32 products per instruction where the f32 tile makes 16. An odd last column pairs with zero. */
static inline __attribute__((always_inline)) void gemm_rx32_dp(const uint16_t *wt, const uint16_t *xb, int64_t ldx, int64_t n,
                                                               bool accumulate, float *out, const int R) {
    __m512 c[6][2];
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        c[t][0] = accumulate ? _mm512_loadu_ps(out + t * 32) : _mm512_setzero_ps();
        c[t][1] = accumulate ? _mm512_loadu_ps(out + t * 32 + 16) : _mm512_setzero_ps();
    }
    const __mmask32 high = 0xAAAAAAAAu; /* the upper 16 bits of each word */
    int64_t k = 0;
    for (; k + 1 < n; k += 2) {
        __m512i d0 = _mm512_loadu_si512(wt + k * 32), d1 = _mm512_loadu_si512(wt + (k + 1) * 32);
        __m512i lo = _mm512_mask_blend_epi16(high, d0, _mm512_slli_epi32(d1, 16)); /* rows 0-15 */
        __m512i hi = _mm512_mask_blend_epi16(high, _mm512_srli_epi32(d0, 16), d1); /* rows 16-31 */
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) {
            int32_t pair;
            memcpy(&pair, xb + t * ldx + k, sizeof pair);
            __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
            c[t][0] = _mm512_dpbf16_ps(c[t][0], (__m512bh)lo, xv);
            c[t][1] = _mm512_dpbf16_ps(c[t][1], (__m512bh)hi, xv);
        }
    }
    if (k < n) {
        __m512i d0 = _mm512_loadu_si512(wt + k * 32);
        __m512i lo = _mm512_and_si512(d0, _mm512_set1_epi32(0xffff)), hi = _mm512_srli_epi32(d0, 16);
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32(xb[t * ldx + k]);
            c[t][0] = _mm512_dpbf16_ps(c[t][0], (__m512bh)lo, xv);
            c[t][1] = _mm512_dpbf16_ps(c[t][1], (__m512bh)hi, xv);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        _mm512_storeu_ps(out + t * 32, c[t][0]);
        _mm512_storeu_ps(out + t * 32 + 16, c[t][1]);
    }
}

static void avx512_gemm6x32_bf16dp(const uint16_t *wt, const uint16_t *xb, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {
    switch (rows) {
    case 1: gemm_rx32_dp(wt, xb, ldx, n, accumulate, out, 1); break;
    case 2: gemm_rx32_dp(wt, xb, ldx, n, accumulate, out, 2); break;
    case 3: gemm_rx32_dp(wt, xb, ldx, n, accumulate, out, 3); break;
    case 4: gemm_rx32_dp(wt, xb, ldx, n, accumulate, out, 4); break;
    case 5: gemm_rx32_dp(wt, xb, ldx, n, accumulate, out, 5); break;
    default: gemm_rx32_dp(wt, xb, ldx, n, accumulate, out, 6); break;
    }
}

static void avx512_f32_to_bf16_row(const float *in, uint16_t *out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(in + i)));
    for (; i < n; i++) out[i] = f32_to_bf16_daz(in[i]);
}

/* G packed groups side by side for one token (decode's streams): 4 accumulator chains per group
 * (even and odd steps of k), each 64-byte step widened in registers as in load_w32; 16 of the 32
 * vector registers hold the sums of four groups. */
static inline __attribute__((always_inline)) void gemv_bf16x32(const uint16_t *const *w, const float *x, int64_t n, float *out, const int G) {
    __m512 c[4][2], e[4][2];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) c[g][0] = c[g][1] = e[g][0] = e[g][1] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 1 < n; k += 2) {
        __m512 b = _mm512_set1_ps(x[k]), b1 = _mm512_set1_ps(x[k + 1]);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            __m512 u0, u1, v0, v1;
            _mm_prefetch((const char *)(w[g] + k * 32) + DECODE_PREFETCH_BF16, _MM_HINT_NTA);
            _mm_prefetch((const char *)(w[g] + k * 32) + DECODE_PREFETCH_BF16 + 64, _MM_HINT_NTA);
            load_w32(w[g], WT_BF16X32, k, &u0, &u1);
            load_w32(w[g], WT_BF16X32, k + 1, &v0, &v1);
            c[g][0] = _mm512_fmadd_ps(b, u0, c[g][0]);
            c[g][1] = _mm512_fmadd_ps(b, u1, c[g][1]);
            e[g][0] = _mm512_fmadd_ps(b1, v0, e[g][0]);
            e[g][1] = _mm512_fmadd_ps(b1, v1, e[g][1]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        c[g][0] = _mm512_add_ps(c[g][0], e[g][0]);
        c[g][1] = _mm512_add_ps(c[g][1], e[g][1]);
        if (k < n) {
            __m512 b = _mm512_set1_ps(x[k]), u0, u1;
            load_w32(w[g], WT_BF16X32, k, &u0, &u1);
            c[g][0] = _mm512_fmadd_ps(b, u0, c[g][0]);
            c[g][1] = _mm512_fmadd_ps(b, u1, c[g][1]);
        }
        _mm512_storeu_ps(out + g * 32, c[g][0]);
        _mm512_storeu_ps(out + g * 32 + 16, c[g][1]);
    }
}

static void avx512_gemv2_bf16x32(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out) {
    const uint16_t *w[2] = { w0, w1 };
    gemv_bf16x32(w, x, n, out, 2);
}

/* Four streams: a bf16 decode step 8-13% faster than with two token by token on this machine,
 * 3-12% in whole processes (BENCHMARKS.md, twelfth session); the quantized tiles are not (a
 * four-group Q4_0 tile was slower in 17 of 18 runs, a Q8_0 one ~7%). */
static void avx512_gemv4_bf16x32(const uint16_t *w0, int64_t stride, const float *x, int64_t n, float *out) {
    const uint16_t *w[4] = { w0, w0 + stride, w0 + 2 * stride, w0 + 3 * stride };
    gemv_bf16x32(w, x, n, out, 4);
}

/* A quantized decode block's first 4 KB of each stream prefetched at once before its tiles run
 * (dot_kernels.decode_burst), although these tiles prefetch 2-4 KB ahead themselves: token by token
 * (BENCHMARKS.md, fifteenth session) Q4_0 steps 4-6% faster in fast spells (pair medians 0.940-0.961,
 * faster in 103-121 of 128 pairs; 0.974-0.999 in slow ones), Q8_0 0.992; 8 KB 0.961-0.966, 2 KB
 * 0.986, 4 KB only where a thread's run of blocks starts 0.987-0.998. The AVX2 tiles take none:
 * with it their Q4_0 steps were 1.21-1.25x slower. */
enum { DECODE_BURST = 4096 };

/* The AVX-512 Q8_0 decode tile prefetches 2 KB ahead (Q4_0 DECODE_PREFETCH, see tensor.h): token
 * by token against 4 KB a median 0.97 (9 of 11 runs, Qwen3-0.6B and Qwen2.5-1.5B shapes); the
 * AVX2 Q8_0 tile is not faster at 2 KB (1.00-1.08). */
enum { Q8_DECODE_PREFETCH = 2048 };

/* Quantized tile: two interleaved groups (32 rows, anywhere in memory) against R tokens (decode:
 * one, two groups half a matrix apart). Each 64-byte chunk (16 rows x 4 weights) is loaded once
 * and multiplied with every token's broadcast 4 activations; integer sums are scaled once per
 * block. Q4_0 chunks are split into nibbles once per tile. */
static inline __attribute__((always_inline)) void gemm_q_x16(const uint8_t *g0, const uint8_t *g1, const bool q4, const block_q8_0 *x,
                                                             const float *xd, const float *xs, int64_t ldx, int64_t nb, float *out, const int R) {
    __m512 acc[6][2];
    const size_t sb_bytes = q4 ? QROWS * sizeof(block_q4_0) : QROWS * sizeof(block_q8_0);
    const float offset = q4 ? 8.0f : 128.0f;
    const size_t ahead = q4 ? DECODE_PREFETCH : Q8_DECODE_PREFETCH;
    const __m512i m4 = _mm512_set1_epi8(0x0F), mh = _mm512_set1_epi8((char)0xF0);
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *s0 = g0 + b * sb_bytes, *s1 = g1 + b * sb_bytes;
        if (R == 1) /* decode: each stream's bytes a little ahead, non-temporal (read once) */
            for (size_t o = 0; o < sb_bytes; o += 64) {
                _mm_prefetch((const char *)s0 + ahead + o, _MM_HINT_NTA);
                _mm_prefetch((const char *)s1 + ahead + o, _MM_HINT_NTA);
            }
        /* one token: a second pair of chains (high nibbles / odd chunks) so that VNNI latency does
         * not bound a decode step; more tokens give enough chains */
        __m512i sum[6][2], ext[2] = { _mm512_setzero_si512(), _mm512_setzero_si512() };
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) sum[t][0] = sum[t][1] = _mm512_setzero_si512();
        if (q4) {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i v0 = load64(s0 + 32 + 64 * c), v1 = load64(s1 + 32 + 64 * c);
                __m512i lo0 = _mm512_and_si512(v0, m4), lo1 = _mm512_and_si512(v1, m4);
                if (R == 1) { /* high nibbles masked in place: 16x their sums, shifted back once per block */
                    __m512i hi0 = _mm512_and_si512(v0, mh), hi1 = _mm512_and_si512(v1, mh);
                    __m512i xl = bcast4(x[b].qs + 4 * c), xh = bcast4(x[b].qs + 16 + 4 * c);
                    sum[0][0] = _mm512_dpbusd_epi32(sum[0][0], lo0, xl);
                    ext[0] = _mm512_dpbusd_epi32(ext[0], hi0, xh);
                    sum[0][1] = _mm512_dpbusd_epi32(sum[0][1], lo1, xl);
                    ext[1] = _mm512_dpbusd_epi32(ext[1], hi1, xh);
                    continue;
                }
                __m512i hi0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4), hi1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
#pragma GCC unroll 6
                for (int t = 0; t < R; t++) {
                    __m512i xl = bcast4(x[t * ldx + b].qs + 4 * c), xh = bcast4(x[t * ldx + b].qs + 16 + 4 * c);
                    sum[t][0] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum[t][0], lo0, xl), hi0, xh);
                    sum[t][1] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum[t][1], lo1, xl), hi1, xh);
                }
            }
        } else {
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++) {
                __m512i w0 = load64(s0 + 32 + 64 * c), w1 = load64(s1 + 32 + 64 * c);
                if (R == 1 && c % 2) {
                    __m512i xb = bcast4(x[b].qs + 4 * c);
                    ext[0] = _mm512_dpbusd_epi32(ext[0], w0, xb);
                    ext[1] = _mm512_dpbusd_epi32(ext[1], w1, xb);
                    continue;
                }
#pragma GCC unroll 6
                for (int t = 0; t < R; t++) {
                    __m512i xb = bcast4(x[t * ldx + b].qs + 4 * c);
                    sum[t][0] = _mm512_dpbusd_epi32(sum[t][0], w0, xb);
                    sum[t][1] = _mm512_dpbusd_epi32(sum[t][1], w1, xb);
                }
            }
        }
        if (R == 1) { /* Q4_0's ext holds 16 x the high nibbles' sums (at most 4 x 4 x 240 x 128 a lane: exact), Q8_0's the odd chunks' */
            sum[0][0] = _mm512_add_epi32(sum[0][0], q4 ? _mm512_srai_epi32(ext[0], 4) : ext[0]);
            sum[0][1] = _mm512_add_epi32(sum[0][1], q4 ? _mm512_srai_epi32(ext[1], 4) : ext[1]);
        }
        __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)s0)), d1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)s1));
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) {
            __m512 xdv = _mm512_set1_ps(xd[t * ldx + b]), corr = _mm512_set1_ps(offset * xs[t * ldx + b]);
            acc[t][0] = _mm512_fmadd_ps(d0, _mm512_fmsub_ps(xdv, _mm512_cvtepi32_ps(sum[t][0]), corr), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(d1, _mm512_fmsub_ps(xdv, _mm512_cvtepi32_ps(sum[t][1]), corr), acc[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        _mm512_storeu_ps(out + t * 32, acc[t][0]);
        _mm512_storeu_ps(out + t * 32 + 16, acc[t][1]);
    }
}

/* One token against four Q8_0 or Q4_0 groups anywhere (dot_kernels.gemv4_q8_0 / gemv4_q4_0: a
 * planar matrix's four streams), the one-token tile's arithmetic group by group (the same sums),
 * the loads interleaved across the groups, each prefetched ahead: Q4_0 1 KB (~4 KB in flight a
 * thread; 2 KB, what the two-stream tile keeps in flight at 4 KB, read a planar Q4_0 step's
 * matmuls 0.91 where 1 KB read 0.88), Q8_0 2 KB (about as many superblocks ahead; planar Q8_0
 * steps 0.87-0.93 of contiguous ones in fast spells where 1 KB gave 0.98-0.99, 3 KB 1.01;
 * BENCHMARKS.md, nineteenth session). */
enum { PLANAR_PREFETCH = 1024, Q8_PLANAR_PREFETCH = 2048 };
static inline __attribute__((always_inline)) void gemv4_q(const uint8_t *const g[4], const bool q4, const block_q8_0 *x, const float *xd,
                                                          const float *xs, int64_t nb, float *out) {
    const size_t sb = q4 ? QROWS * sizeof(block_q4_0) : QROWS * sizeof(block_q8_0);
    const __m512i m4 = _mm512_set1_epi8(0x0F), mh = _mm512_set1_epi8((char)0xF0);
    __m512 acc[4];
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) acc[s] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++)
            for (size_t o = 0; o < sb; o += 64) _mm_prefetch((const char *)g[s] + b * sb + (q4 ? PLANAR_PREFETCH : Q8_PLANAR_PREFETCH) + o, _MM_HINT_NTA);
        /* two chains a group: Q4_0 low nibbles and 16 x the high ones (masked in place), Q8_0 even
         * and odd chunks */
        __m512i sum[4], ext[4];
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) sum[s] = ext[s] = _mm512_setzero_si512();
        if (q4) {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i xl = bcast4(x[b].qs + 4 * c), xh = bcast4(x[b].qs + 16 + 4 * c);
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) {
                    __m512i v = load64(g[s] + b * sb + 32 + 64 * c);
                    sum[s] = _mm512_dpbusd_epi32(sum[s], _mm512_and_si512(v, m4), xl);
                    ext[s] = _mm512_dpbusd_epi32(ext[s], _mm512_and_si512(v, mh), xh);
                }
            }
        } else {
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++) {
                __m512i xb = bcast4(x[b].qs + 4 * c);
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) {
                    __m512i v = load64(g[s] + b * sb + 32 + 64 * c);
                    if (c % 2) ext[s] = _mm512_dpbusd_epi32(ext[s], v, xb);
                    else sum[s] = _mm512_dpbusd_epi32(sum[s], v, xb);
                }
            }
        }
        __m512 xdv = _mm512_set1_ps(xd[b]), corr = _mm512_set1_ps((q4 ? 8.0f : 128.0f) * xs[b]);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            __m512i t = _mm512_add_epi32(sum[s], q4 ? _mm512_srai_epi32(ext[s], 4) : ext[s]);
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g[s] + b * sb)));
            acc[s] = _mm512_fmadd_ps(d, _mm512_fmsub_ps(xdv, _mm512_cvtepi32_ps(t), corr), acc[s]);
        }
    }
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) _mm512_storeu_ps(out + 16 * s, acc[s]);
}

static void avx512_gemv4_q8_0(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t nb, float *out) {
    gemv4_q(g, false, x, xd, xs, nb, out);
}
static void avx512_gemv4_q4_0(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t nb, float *out) {
    gemv4_q(g, true, x, xd, xs, nb, out);
}

#define GEMM_Q_X16(NAME, Q4)                                                                                                  \
    static void NAME(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx, \
                     int64_t nb, int rows, float *out) {                                                                      \
        switch (rows) {                                                                                                       \
        case 1: gemm_q_x16(g0, g1, Q4, x, xd, xs, ldx, nb, out, 1); break;                                                    \
        case 2: gemm_q_x16(g0, g1, Q4, x, xd, xs, ldx, nb, out, 2); break;                                                    \
        case 3: gemm_q_x16(g0, g1, Q4, x, xd, xs, ldx, nb, out, 3); break;                                                    \
        case 4: gemm_q_x16(g0, g1, Q4, x, xd, xs, ldx, nb, out, 4); break;                                                    \
        case 5: gemm_q_x16(g0, g1, Q4, x, xd, xs, ldx, nb, out, 5); break;                                                    \
        default: gemm_q_x16(g0, g1, Q4, x, xd, xs, ldx, nb, out, 6); break;                                                   \
        }                                                                                                                     \
    }
GEMM_Q_X16(avx512_gemm_q8_0_x16, false)
GEMM_Q_X16(avx512_gemm_q4_0_x16, true)
#undef GEMM_Q_X16

static void avx512_axpy(float *y, float a, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* e^x: x = n ln2 + r, |r| <= ln2 / 2, e^r by Cephes' degree-7 polynomial, times 2^n with scalef
 * (underflows to 0 below -104, overflows to infinity above 88.8). */
static inline __m512 exp_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* exp(x - max) for up to 32 values in registers, one pass: a decode step's block of attention
 * scores (the general loop below reads them twice; this path made a Q4_0 decode step's attention
 * 1.3-1.5% faster after 512 positions, token by token). The same results bit for bit. */
static float exp_sum32(float *x, int64_t n, float *max) {
    __mmask16 k0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 k1 = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    __m512 a = _mm512_maskz_loadu_ps(k0, x), b = _mm512_maskz_loadu_ps(k1, x + 16), mv = _mm512_set1_ps(*max);
    mv = _mm512_mask_max_ps(mv, k0, mv, a);
    mv = _mm512_mask_max_ps(mv, k1, mv, b);
    *max = _mm512_reduce_max_ps(mv);
    mv = _mm512_set1_ps(*max);
    const __m512 floor = _mm512_set1_ps(EXP_SUM_FLOOR);
    __m512 da = _mm512_sub_ps(a, mv), db = _mm512_sub_ps(b, mv);
    __m512 ea = _mm512_maskz_mov_ps(k0 & _mm512_cmp_ps_mask(da, floor, _CMP_GE_OQ), exp_ps(_mm512_max_ps(da, floor)));
    __m512 eb = _mm512_maskz_mov_ps(k1 & _mm512_cmp_ps_mask(db, floor, _CMP_GE_OQ), exp_ps(_mm512_max_ps(db, floor)));
    _mm512_mask_storeu_ps(x, k0, ea);
    _mm512_mask_storeu_ps(x + 16, k1, eb);
    return _mm512_reduce_add_ps(_mm512_add_ps(ea, eb));
}

static float avx512_exp_sum(float *x, int64_t n, float *max) {
    if (n <= 32) return exp_sum32(x, n, max);
    __m512 mv = _mm512_set1_ps(*max), sum = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
    if (tail) mv = _mm512_mask_max_ps(mv, tail, mv, _mm512_maskz_loadu_ps(tail, x + i));
    *max = _mm512_reduce_max_ps(mv);
    mv = _mm512_set1_ps(*max);
    i = 0;
    const __m512 floor = _mm512_set1_ps(EXP_SUM_FLOOR);
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), mv); /* no subnormal weights, nor any computed on the way */
        __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, floor, _CMP_GE_OQ), exp_ps(_mm512_max_ps(d, floor)));
        _mm512_storeu_ps(x + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (tail) {
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), mv);
        __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, floor, _CMP_GE_OQ), exp_ps(_mm512_max_ps(d, floor)));
        _mm512_mask_storeu_ps(x + i, tail, e);
        sum = _mm512_mask_add_ps(sum, tail, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static void avx512_swiglu(float *a, const float *b, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, a + i);
        __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_mask_storeu_ps(a + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, b + i)));
    }
}

static void avx512_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        s0 = _mm512_fmadd_pd(lo, lo, s0);
        s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    __m512 scale = _mm512_set1_ps((float)(1.0 / sqrt(ss / (double)n + eps)));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), scale), _mm512_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = x[i] * _mm512_cvtss_f32(scale) * w[i];
}

static void avx512_bf16_to_f32(const uint16_t *in, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_bf16x16(in + i));
    for (; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

static void avx512_f32_to_f16_row(const float *in, uint16_t *out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) out[i] = f32_to_f16(in[i]);
}

/* roundf (half away from zero) exactly: truncate, then step away from zero when the dropped part
 * is at least one half (y - trunc(y) is exact in float). */
static inline __m512 round_half_away(__m512 y) {
    __m512 t = _mm512_roundscale_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 frac = _mm512_abs_ps(_mm512_sub_ps(y, t));
    __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(y, _mm512_set1_ps(-0.0f))); /* copysign(1, y) */
    return _mm512_mask_add_ps(t, up, t, one);
}

/* argmax_f32 as the reference computes it: each block of 1024 values' maximum, 64 lanes at a
 * time (vmaxps keeps the running maximum where a value is NaN, as the reference's comparison
 * does), the first block holding the largest, then the first index in it equal to that. */
static int64_t avx512_argmax(const float *x, int64_t n) {
    enum { BLOCK = 1024 };
    float best = -INFINITY;
    int64_t best_block = -1;
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t e = n - b < BLOCK ? n : b + BLOCK, i = b;
        __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
        for (; i + 64 <= e; i += 64) {
            m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
            m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
            m2 = _mm512_max_ps(_mm512_loadu_ps(x + i + 32), m2);
            m3 = _mm512_max_ps(_mm512_loadu_ps(x + i + 48), m3);
        }
        for (; i < e; i += 16) {
            __mmask16 k = e - i >= 16 ? 0xffff : (__mmask16)((1u << (e - i)) - 1);
            m0 = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + i), m0);
        }
        float mb = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
        if (mb > best || best_block < 0) {
            best = mb;
            best_block = b;
        }
    }
    __m512 want = _mm512_set1_ps(best);
    for (int64_t i = best_block < 0 ? n : best_block; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __mmask16 eq = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, x + i), want, _CMP_EQ_OQ);
        if (eq) return i + __builtin_ctz(eq);
    }
    return 0; /* only NaNs */
}

/* In-register transpose of 16 vectors of 16 floats (m[i][j] -> m[j][i]): four butterfly stages;
 * at stage b, vectors i and i + b swap their b-blocks of lanes. */
static inline void transpose16x16(__m512 m[16]) {
#pragma GCC unroll 4
    for (int b = 8; b >= 1; b >>= 1) {
        int lo[16], hi[16];
        for (int j = 0; j < 16; j++) {
            lo[j] = (j & b) ? 16 + j - b : j;
            hi[j] = (j & b) ? 16 + j : j + b;
        }
        __m512i ilo = _mm512_loadu_si512(lo), ihi = _mm512_loadu_si512(hi);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            if (!(i & b)) {
                __m512 a = m[i], c = m[i + b];
                m[i] = _mm512_permutex2var_ps(a, ilo, c);
                m[i + b] = _mm512_permutex2var_ps(a, ihi, c);
            }
    }
}

/* One block's quantization with its reciprocal step id (x / step, rounded half away from zero):
 * the integers stored, their sum returned in 16 lanes. */
static inline __m512i quantize_block(const float *x, __m512 vid, int8_t *qs) {
    __m512i q0 = _mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(_mm512_loadu_ps(x), vid)));
    __m512i q1 = _mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(_mm512_loadu_ps(x + 16), vid)));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtepi32_epi8(q1));
    return _mm512_add_epi32(q0, q1);
}

/* 16 blocks at a time, their horizontal maxima and sums taken together: the 16 vectors of
 * per-lane partial results are transposed, so that one vector's lanes end as the 16 blocks'
 * totals (~4x fewer shuffles than a reduction per block); the scales' division and f16
 * conversions then run 16 blocks wide too. Bit for bit quantize_row_q8_0 + q8_0_block_sums. */
static void avx512_quantize_q8_0(const float *x, block_q8_0 *out, float *xd, float *xs, int64_t n) {
    int64_t nb = n / QK, b = 0;
    for (; b + 16 <= nb; b += 16) {
        const float *xg = x + b * QK;
        __m512 m[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) m[i] = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xg + i * QK)), _mm512_abs_ps(_mm512_loadu_ps(xg + i * QK + 16)));
        transpose16x16(m);
        __m512 amax = m[0];
#pragma GCC unroll 15
        for (int i = 1; i < 16; i++) amax = _mm512_max_ps(amax, m[i]);
        __m512 d = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
        __m512 id = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ), _mm512_set1_ps(1.0f), d);
        __m256i h = _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); /* round to nearest even, as f32_to_f16 */
        uint16_t hs[16];
        float ids[16];
        _mm256_storeu_si256((__m256i *)hs, h);
        _mm512_storeu_ps(ids, id);
        __m512 sums[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            out[b + i].d = hs[i];
            sums[i] = _mm512_castsi512_ps(quantize_block(xg + i * QK, _mm512_set1_ps(ids[i]), out[b + i].qs));
        }
        transpose16x16(sums);
        __m512i total = _mm512_castps_si512(sums[0]);
#pragma GCC unroll 15
        for (int i = 1; i < 16; i++) total = _mm512_add_epi32(total, _mm512_castps_si512(sums[i]));
        __m512 scale = _mm512_cvtph_ps(h);
        _mm512_storeu_ps(xd + b, scale);
        _mm512_storeu_ps(xs + b, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(total)));
    }
    for (; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * QK), v1 = _mm512_loadu_ps(x + b * QK + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT); /* round to nearest even, as f32_to_f16 */
        out[b].d = h;
        xd[b] = _cvtsh_ss(h);
        xs[b] = xd[b] * (float)_mm512_reduce_add_epi32(quantize_block(x + b * QK, _mm512_set1_ps(id), out[b].qs));
    }
}

static void avx512_bf16_tile_f32(const uint16_t *w, int64_t stride, int64_t n, float *tile) {
    for (int64_t k0 = 0; k0 < n; k0 += 16) {
        int64_t width = n - k0 < 16 ? n - k0 : 16;
        __mmask16 mask = (__mmask16)((1u << width) - 1);
        for (int h = 0; h < 2; h++) {
            __m512 m[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                __m256i v = _mm256_maskz_loadu_epi16(mask, w + (h * 16 + i) * stride + k0);
                m[i] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
            }
            transpose16x16(m);
            for (int c = 0; c < width; c++) _mm512_storeu_ps(tile + (k0 + c) * 32 + h * 16, m[c]);
        }
    }
}

/* ref_rope 16 pairs at a time, the rest masked (the products may fuse into one rounding with
 * the sum) */
static void avx512_rope(float *v, const float *cs, int64_t half, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < half; i += 16) {
        __mmask16 m = half - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (half - i)) - 1);
        __m512 c = _mm512_maskz_loadu_ps(m, cs + i), s = _mm512_maskz_loadu_ps(m, cs + half + i);
        __m512 a = _mm512_maskz_loadu_ps(m, v + i), b = _mm512_maskz_loadu_ps(m, v + half + i);
        _mm512_mask_storeu_ps(v + i, m, _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)), sc));
        _mm512_mask_storeu_ps(v + half + i, m, _mm512_mul_ps(_mm512_add_ps(_mm512_mul_ps(b, c), _mm512_mul_ps(a, s)), sc));
    }
}

static void avx512_transpose(const float *in, int64_t ld_in, float *out, int64_t ld_out, int64_t rows, int64_t cols) {
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t nr = rows - r0 < 16 ? rows - r0 : 16;
        __mmask16 mr = (__mmask16)((1u << nr) - 1);
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int64_t nc = cols - c0 < 16 ? cols - c0 : 16;
            __mmask16 mc = (__mmask16)((1u << nc) - 1);
            __m512 m[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) m[i] = i < nr ? _mm512_maskz_loadu_ps(mc, in + (r0 + i) * ld_in + c0) : _mm512_setzero_ps();
            transpose16x16(m);
            for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(out + (c0 + c) * ld_out + r0, mr, m[c]);
        }
    }
}

/* The AVX-512 table; with AVX512-BF16 (CPUID) it has the bf16 dot-product tile too. */
const dot_kernels *dot_kernels_avx512(void) {
#define AVX512_KERNELS                                                                                                              \
    avx512_dot_f32, avx512_dot_bf16, avx512_dot_f16, avx512_dot_q8_0, avx512_dot_q4_0, avx512_gemm6x32_f32, avx512_gemm6x32_f16,  \
        avx512_gemm6x32_bf16x32, avx512_gemv2_bf16x32, avx512_gemm_q8_0_x16, avx512_gemm_q4_0_x16, avx512_axpy, avx512_exp_sum,   \
        avx512_swiglu, avx512_rmsnorm, avx512_bf16_to_f32, avx512_bf16_tile_f32, avx512_quantize_q8_0, avx512_f32_to_f16_row,      \
        avx512_transpose, avx512_rope
    static const dot_kernels plain = { "avx512", AVX512_KERNELS, NULL, NULL, avx512_gemm6x32_q8, avx512_gemv4_bf16x32, avx512_gemv4_q8_0, avx512_gemv4_q4_0, avx512_argmax, DECODE_BURST };
    static const dot_kernels bf16 = { "avx512", AVX512_KERNELS, avx512_gemm6x32_bf16dp, avx512_f32_to_bf16_row, avx512_gemm6x32_q8, avx512_gemv4_bf16x32, avx512_gemv4_q8_0, avx512_gemv4_q4_0, avx512_argmax,
                                      DECODE_BURST };
#undef AVX512_KERNELS
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? &bf16 : &plain;
}
