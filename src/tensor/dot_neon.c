/* AArch64 Advanced SIMD (NEON) kernels: every AArch64 CPU has them, so this table is taken
 * there without a feature check, and uses base ARMv8.0 instructions only: the int8 products go
 * through widening multiplies (smull) and pairwise accumulation (sadalp). dot_neon_dotprod.c
 * compiles this file again with NEON_DOTPROD for CPUs with the dot-product instructions (ARMv8.2+,
 * HWCAP_ASIMDDP: Neoverse, Cortex-A76 on, Apple): the int8 products then use sdot, 4 a lane per
 * instruction. Every entry is vectorized but the bf16 dot-product ones, NULL as on x86 CPUs
 * without AVX512-BF16. Tested against the reference by test_kernels like the x86 tables (on this
 * project's x86 machines only under emulation). */
#include "tensor/tensor.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

static float neon_dot_f32(const float *a, const float *b, int64_t n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* 4 bf16 as f32: the bits moved to the top half. */
static inline float32x4_t load_bf16x4(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

static inline float32x4_t load_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

/* f32 activations against a row of 16-bit floats, bf16 or f16 (a constant in each caller). */
static inline __attribute__((always_inline)) float dot_half(const float *a, const uint16_t *b, int64_t n, const bool bf16) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), bf16 ? load_bf16x4(b + i) : load_f16x4(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), bf16 ? load_bf16x4(b + i + 4) : load_f16x4(b + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += a[i] * (bf16 ? bf16_to_f32(b[i]) : f16_to_f32(b[i]));
    return s;
}

static float neon_dot_bf16(const float *a, const uint16_t *b, int64_t n) { return dot_half(a, b, n, true); }
static float neon_dot_f16(const float *a, const uint16_t *b, int64_t n) { return dot_half(a, b, n, false); }

/* The 4 activation bytes at p repeated over 16 lanes (once per row of a vector's 4 rows). */
static inline int8x16_t bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

/* Signed-byte products. dot16_i8: acc's lanes + the 16 products of w and x (sdot: 4 per lane;
 * without it, pairs of widened products, add_products8). row_sums: the integer sums of 4 rows of
 * a superblock (one 16-byte vector of each chunk: 4 rows x 4 weights), lane i row i's with sdot;
 * without, rows 0-1 in lo and 2-3 in hi (2 lanes a row), paired at the end. */
#ifdef NEON_DOTPROD
static inline int32x4_t dot16_i8(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_s32(acc, w, x); }
typedef struct row_sums { int32x4_t s; } row_sums;
static inline void sums_add(row_sums *r, int8x16_t w, int8x16_t x) { r->s = dot16_i8(r->s, w, x); }
static inline int32x4_t sums_get(const row_sums *r) { return r->s; }
#else
static inline int32x4_t add_products8(int32x4_t acc, int8x8_t w, int8x8_t x) { return vpadalq_s16(acc, vmull_s8(w, x)); }
static inline int32x4_t dot16_i8(int32x4_t acc, int8x16_t w, int8x16_t x) {
    return add_products8(add_products8(acc, vget_low_s8(w), vget_low_s8(x)), vget_high_s8(w), vget_high_s8(x));
}
typedef struct row_sums { int32x4_t lo, hi; } row_sums;
static inline void sums_add(row_sums *r, int8x16_t w, int8x16_t x) {
    r->lo = add_products8(r->lo, vget_low_s8(w), vget_low_s8(x));
    r->hi = add_products8(r->hi, vget_high_s8(w), vget_high_s8(x));
}
static inline int32x4_t sums_get(const row_sums *r) { return vpaddq_s32(r->lo, r->hi); }
#endif

/* Plain rows of blocks (matrices whose rows are not a multiple of QROWS): as ref_dot_q8_0 and
 * ref_dot_q4_0, each block's integer dot scaled by both scales. */
static float neon_dot_q8_0(const block_q8_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n) {
    (void)xs;
    float s = 0;
    for (int64_t b = 0; b < n; b++) {
        int32x4_t acc = dot16_i8(vdupq_n_s32(0), vld1q_s8(w[b].qs), vld1q_s8(x[b].qs));
        acc = dot16_i8(acc, vld1q_s8(w[b].qs + 16), vld1q_s8(x[b].qs + 16));
        s += (float)vaddvq_s32(acc) * f16_to_f32(w[b].d) * xd[b];
    }
    return s;
}

static float neon_dot_q4_0(const block_q4_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n) {
    (void)xs;
    const int8x16_t eight = vdupq_n_s8(8);
    float s = 0;
    for (int64_t b = 0; b < n; b++) {
        uint8x16_t u = vld1q_u8(w[b].qs);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(u, vdupq_n_u8(0x0F))), eight);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(u, 4)), eight);
        int32x4_t acc = dot16_i8(dot16_i8(vdupq_n_s32(0), lo, vld1q_s8(x[b].qs)), hi, vld1q_s8(x[b].qs + 16));
        s += (float)vaddvq_s32(acc) * f16_to_f32(w[b].d) * xd[b];
    }
    return s;
}

/* One superblock (16 rows x 32 weights of an interleaved group, see QROWS) against one token's
 * block: acc[v] (rows 4v..4v+3) += d_w * (xd * sum(u * x) - 8 * xs) for Q4_0's nibbles u = q + 8,
 * d_w * xd * sum(q * x) for Q8_0 (its stored bytes q + 128 made signed again). */
static inline __attribute__((always_inline)) void q_superblock(const bool q4, const uint8_t *sb, const block_q8_0 *x, float xd, float xs,
                                                                 float32x4_t acc[4]) {
    row_sums s[4];
    memset(s, 0, sizeof s);
    if (q4) {
        const uint8x16_t m4 = vdupq_n_u8(0x0F);
        for (int c = 0; c < 4; c++) {
            int8x16_t xl = bcast4(x->qs + 4 * c), xh = bcast4(x->qs + 16 + 4 * c);
            for (int v = 0; v < 4; v++) {
                uint8x16_t u = vld1q_u8(sb + 32 + 64 * c + 16 * v);
                sums_add(&s[v], vreinterpretq_s8_u8(vandq_u8(u, m4)), xl);
                sums_add(&s[v], vreinterpretq_s8_u8(vshrq_n_u8(u, 4)), xh);
            }
        }
    } else {
        const uint8x16_t flip = vdupq_n_u8(0x80);
        for (int c = 0; c < 8; c++) {
            int8x16_t xv = bcast4(x->qs + 4 * c);
            for (int v = 0; v < 4; v++) sums_add(&s[v], vreinterpretq_s8_u8(veorq_u8(vld1q_u8(sb + 32 + 64 * c + 16 * v), flip)), xv);
        }
    }
    float32x4_t xdv = vdupq_n_f32(xd), corr = vdupq_n_f32(q4 ? 8.0f * xs : 0.0f);
    for (int v = 0; v < 4; v++) {
        float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(sb + 8 * v)));
        acc[v] = vfmaq_f32(acc[v], d, vsubq_f32(vmulq_f32(xdv, vcvtq_f32_s32(sums_get(&s[v]))), corr));
    }
}

/* Both groups (anywhere in memory) against `rows` tokens, a token at a time, the two groups
 * superblock by superblock side by side (decode reads them as two streams at once, fetched
 * DECODE_PREFETCH ahead): out[t * 32 + r], rows 0-15 from g0, 16-31 from g1. */
static inline __attribute__((always_inline)) void q_tile(const bool q4, const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd,
                                                           const float *xs, int64_t ldx, int64_t nb, int rows, float *out) {
    const size_t sb_bytes = q4 ? QROWS * sizeof(block_q4_0) : QROWS * sizeof(block_q8_0);
    for (int t = 0; t < rows; t++) {
        float32x4_t a0[4], a1[4];
        for (int v = 0; v < 4; v++) a0[v] = a1[v] = vdupq_n_f32(0);
        const block_q8_0 *xt = x + t * ldx;
        const float *dt = xd + t * ldx, *st = xs + t * ldx;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *s0 = g0 + b * sb_bytes, *s1 = g1 + b * sb_bytes;
            if (rows == 1)
                for (size_t o = 0; o < sb_bytes; o += 64) {
                    __builtin_prefetch(s0 + DECODE_PREFETCH + o, 0, 0);
                    __builtin_prefetch(s1 + DECODE_PREFETCH + o, 0, 0);
                }
            q_superblock(q4, s0, xt + b, dt[b], st[b], a0);
            q_superblock(q4, s1, xt + b, dt[b], st[b], a1);
        }
        for (int v = 0; v < 4; v++) {
            vst1q_f32(out + t * 32 + 4 * v, a0[v]);
            vst1q_f32(out + t * 32 + 16 + 4 * v, a1[v]);
        }
    }
}

static void neon_gemm_q8_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                               int64_t nb, int rows, float *out) {
    q_tile(false, g0, g1, x, xd, xs, ldx, nb, rows, out);
}

static void neon_gemm_q4_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                               int64_t nb, int rows, float *out) {
    q_tile(true, g0, g1, x, xd, xs, ldx, nb, rows, out);
}

enum { WT_F32, WT_F16, WT_I8, WT_BF16X32 };

/* Step k of a tile's weights as eight f32 vectors, rows 0-31 in order (see dot_kernels). */
static inline __attribute__((always_inline)) void load_w32(const void *wt, const int kind, int64_t k, float32x4_t w[8]) {
    if (kind == WT_F32) {
        for (int i = 0; i < 8; i++) w[i] = vld1q_f32((const float *)wt + k * 32 + 4 * i);
    } else if (kind == WT_F16) {
        for (int i = 0; i < 4; i++) {
            float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)wt + k * 32 + 8 * i));
            w[2 * i] = vcvt_f32_f16(vget_low_f16(h));
            w[2 * i + 1] = vcvt_high_f32_f16(h);
        }
    } else if (kind == WT_I8) {
        for (int h = 0; h < 2; h++) {
            int8x16_t q = vld1q_s8((const int8_t *)wt + k * 32 + 16 * h);
            int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
            w[4 * h] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
            w[4 * h + 1] = vcvtq_f32_s32(vmovl_high_s16(lo));
            w[4 * h + 2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
            w[4 * h + 3] = vcvtq_f32_s32(vmovl_high_s16(hi));
        }
    } else { /* packed bf16: word i holds row i (low half) and row 16 + i (high half) */
        for (int i = 0; i < 4; i++) {
            uint32x4_t d = vld1q_u32((const uint32_t *)((const uint16_t *)wt + k * 32) + 4 * i);
            w[i] = vreinterpretq_f32_u32(vshlq_n_u32(d, 16));
            w[4 + i] = vreinterpretq_f32_u32(vandq_u32(d, vdupq_n_u32(0xffff0000u)));
        }
    }
}

/* R (1 or 2) tokens x 32 weight rows, the weights transposed ([n][32]): each step widens the 32
 * weights once and broadcasts one activation per token into 8 FMAs. */
static inline __attribute__((always_inline)) void gemm_rx32(const void *wt, const int kind, const float *x, int64_t ldx, int64_t n,
                                                              bool accumulate, float *out, const int R) {
    float32x4_t c[2][8];
    for (int t = 0; t < R; t++)
        for (int i = 0; i < 8; i++) c[t][i] = accumulate ? vld1q_f32(out + t * 32 + 4 * i) : vdupq_n_f32(0);
    for (int64_t k = 0; k < n; k++) {
        float32x4_t w[8];
        load_w32(wt, kind, k, w);
        for (int t = 0; t < R; t++) {
            float32x4_t b = vdupq_n_f32(x[t * ldx + k]);
            for (int i = 0; i < 8; i++) c[t][i] = vfmaq_f32(c[t][i], b, w[i]);
        }
    }
    for (int t = 0; t < R; t++)
        for (int i = 0; i < 8; i++) vst1q_f32(out + t * 32 + 4 * i, c[t][i]);
}

#define GEMM_RX32(NAME, WT, KIND)                                                                                   \
    static void NAME(const WT *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) { \
        for (int t = 0; t < rows; t += 2) {                                                                         \
            if (rows - t >= 2) gemm_rx32(wt, KIND, x + t * ldx, ldx, n, accumulate, out + t * 32, 2);               \
            else gemm_rx32(wt, KIND, x + t * ldx, ldx, n, accumulate, out + t * 32, 1);                             \
        }                                                                                                           \
    }
GEMM_RX32(neon_gemm6x32_f32, float, WT_F32)
GEMM_RX32(neon_gemm6x32_f16, uint16_t, WT_F16)
GEMM_RX32(neon_gemm6x32_bf16x32, uint16_t, WT_BF16X32)
GEMM_RX32(neon_gemm6x32_i8, int8_t, WT_I8)
#undef GEMM_RX32

/* The q8 tile (see dot_kernels.gemm6x32_q8) through the int8 tile (gemm6x32_q8_by_groups). */
static void neon_gemm6x32_q8(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate,
                             float *out) {
    gemm6x32_q8_by_groups(neon_gemm6x32_i8, w, step_scales, x, ldx, n, rows, accumulate, out);
}

/* One token against two packed bf16 groups, both read at once, column by column. */
static void neon_gemv2_bf16x32(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out) {
    float32x4_t c0[8], c1[8];
    for (int i = 0; i < 8; i++) c0[i] = c1[i] = vdupq_n_f32(0);
    for (int64_t k = 0; k < n; k++) {
        __builtin_prefetch(w0 + k * 32 + DECODE_PREFETCH / 2, 0, 0);
        __builtin_prefetch(w1 + k * 32 + DECODE_PREFETCH / 2, 0, 0);
        float32x4_t b = vdupq_n_f32(x[k]), w[8];
        load_w32(w0, WT_BF16X32, k, w);
        for (int i = 0; i < 8; i++) c0[i] = vfmaq_f32(c0[i], b, w[i]);
        load_w32(w1, WT_BF16X32, k, w);
        for (int i = 0; i < 8; i++) c1[i] = vfmaq_f32(c1[i], b, w[i]);
    }
    for (int i = 0; i < 8; i++) {
        vst1q_f32(out + 4 * i, c0[i]);
        vst1q_f32(out + 32 + 4 * i, c1[i]);
    }
}

static void neon_axpy(float *y, float a, const float *x, int64_t n) {
    float32x4_t av = vdupq_n_f32(a);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* e^x as the AVX tiles compute it (Cephes' degree-7 polynomial on x - n ln2, times 2^n as two
 * halves so that n up to 127 + 23 stays in range), 4 lanes. */
static inline float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0f)), vdupq_n_f32(89.0f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtq_s32_f32(n), n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

/* exp(d) where d >= EXP_SUM_FLOOR, else 0 (see dot_kernels.exp_sum). */
static inline float32x4_t exp_floored(float32x4_t d) {
    const float32x4_t floor = vdupq_n_f32(EXP_SUM_FLOOR);
    return vreinterpretq_f32_u32(vandq_u32(vcgeq_f32(d, floor), vreinterpretq_u32_f32(exp4(vmaxq_f32(d, floor)))));
}

static float neon_exp_sum(float *x, int64_t n, float *max) {
    float32x4_t mv = vdupq_n_f32(*max), sum = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
    float m = vmaxvq_f32(mv);
    for (int64_t t = i; t < n; t++) m = x[t] > m ? x[t] : m;
    *max = m;
    mv = vdupq_n_f32(m);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp_floored(vsubq_f32(vld1q_f32(x + i), mv));
        vst1q_f32(x + i, e);
        sum = vaddq_f32(sum, e);
    }
    float total = vaddvq_f32(sum);
    if (i < n) { /* the tail through the same polynomial, padded below the floor */
        float t[4];
        for (int k = 0; k < 4; k++) t[k] = i + k < n ? x[i + k] - m : EXP_SUM_FLOOR - 1.0f;
        vst1q_f32(t, exp_floored(vld1q_f32(t)));
        for (int k = 0; i + k < n; k++) {
            x[i + k] = t[k];
            total += t[k];
        }
    }
    return total;
}

static void neon_swiglu(float *a, const float *b, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t x = vld1q_f32(a + i);
        float32x4_t silu = vdivq_f32(x, vaddq_f32(one, exp4(vnegq_f32(x))));
        vst1q_f32(a + i, vmulq_f32(silu, vld1q_f32(b + i)));
    }
    if (i < n) ref_swiglu(a + i, b + i, n - i);
}

/* out = x / rms(x) * w, the squares summed in double (two lanes, then added). */
static void neon_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = s0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, lo, lo);
        s1 = vfmaq_f64(s1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    float32x4_t scale = vdupq_n_f32((float)(1.0 / sqrt(ss / (double)n + eps)));
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++) out[i] = x[i] * vgetq_lane_f32(scale, 0) * w[i];
}

/* quantize_row_q8_0 bit for bit (the products rounded half away from zero by fcvtas, as roundf
 * does), then q8_0_block_sums. */
static void neon_quantize_q8_0(const float *x, block_q8_0 *out, float *xd, float *xs, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++) {
        const float *v = x + b * QK;
        float32x4_t m = vdupq_n_f32(0);
        for (int i = 0; i < QK; i += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(v + i)));
        float amax = vmaxvq_f32(m), d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int i = 0; i < QK; i += 8) {
            int32x4_t q0 = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(v + i), id)), q1 = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(v + i + 4), id));
            vst1_s8(out[b].qs + i, vmovn_s16(vcombine_s16(vmovn_s32(q0), vmovn_s32(q1))));
        }
    }
    q8_0_block_sums(out, n / QK, xd, xs);
}

/* f32_to_f16 of each element: fcvtn rounds to nearest even, subnormals and infinities included,
 * as the reference does (NaN payloads aside, as in the x86 tables). */
static void neon_f32_to_f16_row(const float *in, uint16_t *out, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
    for (; i < n; i++) out[i] = f32_to_f16(in[i]);
}

static void neon_bf16_to_f32(const uint16_t *in, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load_bf16x4(in + i));
    for (; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

/* In-register transpose of 4 vectors of 4 floats (m[i][j] -> m[j][i]). */
static inline void transpose4x4(float32x4_t m[4]) {
    float32x4x2_t a = vtrnq_f32(m[0], m[1]), b = vtrnq_f32(m[2], m[3]);
    m[0] = vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(a.val[0]), vreinterpretq_f64_f32(b.val[0])));
    m[1] = vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(a.val[1]), vreinterpretq_f64_f32(b.val[1])));
    m[2] = vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(a.val[0]), vreinterpretq_f64_f32(b.val[0])));
    m[3] = vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(a.val[1]), vreinterpretq_f64_f32(b.val[1])));
}

/* ref_rope 4 pairs at a time (the products may fuse into one rounding with the sum) */
static void neon_rope(float *v, const float *cs, int64_t half, float scale) {
    int64_t i = 0;
    for (; i + 4 <= half; i += 4) {
        float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(cs + half + i), a = vld1q_f32(v + i), b = vld1q_f32(v + half + i);
        vst1q_f32(v + i, vmulq_n_f32(vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s)), scale));
        vst1q_f32(v + half + i, vmulq_n_f32(vaddq_f32(vmulq_f32(b, c), vmulq_f32(a, s)), scale));
    }
    ref_rope_from(v, cs, half, i, scale);
}

/* out[c * ld_out + r] = in[r * ld_in + c], 4 x 4 at a time (the edges element by element). */
static void neon_transpose(const float *in, int64_t ld_in, float *out, int64_t ld_out, int64_t rows, int64_t cols) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        int64_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            float32x4_t m[4];
            for (int i = 0; i < 4; i++) m[i] = vld1q_f32(in + (r + i) * ld_in + c);
            transpose4x4(m);
            for (int i = 0; i < 4; i++) vst1q_f32(out + (c + i) * ld_out + r, m[i]);
        }
        for (; c < cols; c++)
            for (int i = 0; i < 4; i++) out[c * ld_out + r + i] = in[(r + i) * ld_in + c];
    }
    for (; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[c * ld_out + r] = in[r * ld_in + c];
}

/* 32 bf16 rows (row i at w + i * stride) to the f32 tile [n][32], 4 rows x 4 columns at a time. */
static void neon_bf16_tile_f32(const uint16_t *w, int64_t stride, int64_t n, float *tile) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int i = 0; i < 32; i += 4) {
            float32x4_t m[4];
            for (int j = 0; j < 4; j++) m[j] = load_bf16x4(w + (i + j) * stride + k);
            transpose4x4(m);
            for (int j = 0; j < 4; j++) vst1q_f32(tile + (k + j) * 32 + i, m[j]);
        }
    for (; k < n; k++)
        for (int i = 0; i < 32; i++) tile[k * 32 + i] = bf16_to_f32(w[i * stride + k]);
}

#define NEON_KERNELS                                                                                                  \
    neon_dot_f32, neon_dot_bf16, neon_dot_f16, neon_dot_q8_0, neon_dot_q4_0, neon_gemm6x32_f32, neon_gemm6x32_f16,             \
        neon_gemm6x32_bf16x32, neon_gemv2_bf16x32, neon_gemm_q8_0_x16, neon_gemm_q4_0_x16, neon_axpy, neon_exp_sum, neon_swiglu, \
        neon_rmsnorm, neon_bf16_to_f32, neon_bf16_tile_f32, neon_quantize_q8_0, neon_f32_to_f16_row, neon_transpose, neon_rope, NULL, NULL, \
        neon_gemm6x32_q8, NULL, NULL, NULL, NULL, 0

#ifdef NEON_DOTPROD
const dot_kernels *dot_kernels_neon_dotprod(void) {
    static const dot_kernels k = { "neon+dotprod", NEON_KERNELS };
    return &k;
}
#else
const dot_kernels *dot_kernels_neon(void) {
    static const dot_kernels k = { "neon", NEON_KERNELS };
    return &k;
}
#endif
