/* AVX2 + FMA dot products (compiled with -mavx2 -mfma -mf16c; used only when CPUID says so). */
#include "tensor/tensor.h"

#include <immintrin.h>
#include <string.h>

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_bf16x8(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static float avx2_dot_f32(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static float avx2_dot_bf16(const float *a, const uint16_t *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_bf16x8(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_bf16x8(b + i + 8), s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * bf16_to_f32(b[i]);
    return s;
}

static float avx2_dot_f16(const float *a, const uint16_t *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
    float s = hsum256(s0);
    for (; i < n; i++) s += a[i] * f16_to_f32(b[i]);
    return s;
}

/* Sum of 32 int8 products as 8 float lanes: |x| (unsigned) times sign-adjusted y. */
static inline __m256 mul_sum_i8(__m256i x, __m256i y) {
    __m256i dot = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)));
}

static inline __m256i unpack_q4(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

static float avx2_dot_q8_0(const block_q8_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n) {
    (void)xs;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * xd[b]);
        __m256i wq = _mm256_loadu_si256((const __m256i *)w[b].qs), xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        acc = _mm256_fmadd_ps(d, mul_sum_i8(wq, xq), acc);
    }
    return hsum256(acc);
}

static float avx2_dot_q4_0(const block_q4_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n) {
    (void)xs;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * xd[b]);
        acc = _mm256_fmadd_ps(d, mul_sum_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs)), acc);
    }
    return hsum256(acc);
}

/* 16 interleaved rows at once (see QROWS in tensor.h): a 64-byte chunk is rows 0-7 and 8-15 x 4
 * weights; each 32-bit lane's 4 products are summed by maddubs + madd into that row's total. */
static inline __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static inline __m256i sum4_u8_i8(__m256i u, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

static void avx2_dot16_q8_0(const uint8_t *group, const block_q8_0 *x, const float *xd, const float *xs, int64_t nb, float *out) {
    (void)xs;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sb = group + b * (QROWS * sizeof(block_q8_0));
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (int g = 0; g < 8; g++) {
            /* signed weights against signed activations: |x| times w with x's sign (no overflow: |x| <= 127) */
            __m256i xv = bcast4(x[b].qs + 4 * g), ax = _mm256_sign_epi8(xv, xv);
            __m256i w0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * g)), flip);
            __m256i w1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * g)), flip);
            s0 = _mm256_add_epi32(s0, sum4_u8_i8(ax, _mm256_sign_epi8(w0, xv)));
            s1 = _mm256_add_epi32(s1, sum4_u8_i8(ax, _mm256_sign_epi8(w1, xv)));
        }
        __m256 xdv = _mm256_set1_ps(xd[b]);
        acc0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), xdv), _mm256_cvtepi32_ps(s0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16))), xdv), _mm256_cvtepi32_ps(s1), acc1);
    }
    _mm256_storeu_ps(out, acc0);
    _mm256_storeu_ps(out + 8, acc1);
}

static void avx2_dot16_q4_0(const uint8_t *group, const block_q8_0 *x, const float *xd, const float *xs, int64_t nb, float *out) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sb = group + b * (QROWS * sizeof(block_q4_0));
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (int g = 0; g < 4; g++) {
            __m256i lo = bcast4(x[b].qs + 4 * g), hi = bcast4(x[b].qs + 16 + 4 * g);
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * g)), v1 = _mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * g));
            s0 = _mm256_add_epi32(s0, _mm256_add_epi32(sum4_u8_i8(_mm256_and_si256(v0, m4), lo),
                                                       sum4_u8_i8(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), hi)));
            s1 = _mm256_add_epi32(s1, _mm256_add_epi32(sum4_u8_i8(_mm256_and_si256(v1, m4), lo),
                                                       sum4_u8_i8(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), hi)));
        }
        __m256 xdv = _mm256_set1_ps(xd[b]), corr = _mm256_set1_ps(8.0f * xs[b]);
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), _mm256_fmsub_ps(xdv, _mm256_cvtepi32_ps(s0), corr), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16))), _mm256_fmsub_ps(xdv, _mm256_cvtepi32_ps(s1), corr), acc1);
    }
    _mm256_storeu_ps(out, acc0);
    _mm256_storeu_ps(out + 8, acc1);
}

/* Prefill tiles. AVX2 has 16 registers, so the 32 rows of a tile run as two halves of 16: R tokens
 * x 16 rows in 2R accumulators, two weight vectors and a broadcast per step. The weights are f32,
 * f16 or int8 [n][32] (wt then points at the half's first row), or a packed bf16 group (QDT_BF16X32,
 * wt at the group: rows 0-15 are the low halves of each step's 16 words, rows 16-31 the high). */
enum { WT_F32, WT_F16, WT_I8, WT_BF16X32_LO, WT_BF16X32_HI };
static inline __attribute__((always_inline)) void gemm_rx16(const void *wt, const int kind, const float *x, int64_t ldx, int64_t n, bool accumulate,
                                                            float *out, const int R) {
    __m256 c[6][2];
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        c[t][0] = accumulate ? _mm256_loadu_ps(out + t * 32) : _mm256_setzero_ps();
        c[t][1] = accumulate ? _mm256_loadu_ps(out + t * 32 + 8) : _mm256_setzero_ps();
    }
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int64_t k = 0; k < n; k++) {
        const uint16_t *h = (const uint16_t *)wt + k * 32;
        const float *f = (const float *)wt + k * 32;
        __m256 w0, w1;
        if (kind == WT_F32) {
            w0 = _mm256_loadu_ps(f);
            w1 = _mm256_loadu_ps(f + 8);
        } else if (kind == WT_F16) {
            w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
            w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 8)));
        } else if (kind == WT_I8) {
            const int8_t *q = (const int8_t *)wt + k * 32;
            w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
            w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8))));
        } else {
            __m256i a = _mm256_loadu_si256((const __m256i *)h), b = _mm256_loadu_si256((const __m256i *)(h + 16));
            w0 = _mm256_castsi256_ps(kind == WT_BF16X32_HI ? _mm256_and_si256(a, high) : _mm256_slli_epi32(a, 16));
            w1 = _mm256_castsi256_ps(kind == WT_BF16X32_HI ? _mm256_and_si256(b, high) : _mm256_slli_epi32(b, 16));
        }
#pragma GCC unroll 6
        for (int t = 0; t < R; t++) {
            __m256 b = _mm256_broadcast_ss(x + t * ldx + k);
            c[t][0] = _mm256_fmadd_ps(b, w0, c[t][0]);
            c[t][1] = _mm256_fmadd_ps(b, w1, c[t][1]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < R; t++) {
        _mm256_storeu_ps(out + t * 32, c[t][0]);
        _mm256_storeu_ps(out + t * 32 + 8, c[t][1]);
    }
}

/* One 16-row half h (0 or 16, a constant) of a tile: HALF(h) is where its weights start and
 * KIND(h) how they are read. */
#define GEMM_HALF(HALF, KIND, h)                                                                      \
    switch (rows) {                                                                                   \
    case 1: gemm_rx16(HALF(h), KIND(h), x, ldx, n, accumulate, out + (h), 1); break;                  \
    case 2: gemm_rx16(HALF(h), KIND(h), x, ldx, n, accumulate, out + (h), 2); break;                  \
    case 3: gemm_rx16(HALF(h), KIND(h), x, ldx, n, accumulate, out + (h), 3); break;                  \
    case 4: gemm_rx16(HALF(h), KIND(h), x, ldx, n, accumulate, out + (h), 4); break;                  \
    case 5: gemm_rx16(HALF(h), KIND(h), x, ldx, n, accumulate, out + (h), 5); break;                  \
    default: gemm_rx16(HALF(h), KIND(h), x, ldx, n, accumulate, out + (h), 6); break;                 \
    }
#define GEMM_RX32(NAME, WT, HALF, KIND)                                                                             \
    static void NAME(const WT *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) { \
        GEMM_HALF(HALF, KIND, 0)                                                                                    \
        GEMM_HALF(HALF, KIND, 16)                                                                                   \
    }
#define PLAIN_HALF(h) (wt + (h))
#define PACKED_HALF(h) (wt)
#define F32_KIND(h) WT_F32
#define F16_KIND(h) WT_F16
#define I8_KIND(h) WT_I8
#define PACKED_KIND(h) ((h) ? WT_BF16X32_HI : WT_BF16X32_LO)
GEMM_RX32(avx2_gemm6x32_f32, float, PLAIN_HALF, F32_KIND)
GEMM_RX32(avx2_gemm6x32_f16, uint16_t, PLAIN_HALF, F16_KIND)
GEMM_RX32(avx2_gemm6x32_i8, int8_t, PLAIN_HALF, I8_KIND)
GEMM_RX32(avx2_gemm6x32_bf16x32, uint16_t, PACKED_HALF, PACKED_KIND)

/* The q8 tile (see dot_kernels.gemm6x32_q8), a group of 32 steps at a time through the plain int8
 * half-tiles: step scales fold into a copy of the activations, column scales multiply the
 * group's sums into the total. */
static void avx2_gemm6x32_q8(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate,
                             float *out) {
    for (int64_t g = 0; g < n; g += 32, w += Q8G_BYTES) {
        const float *scale = (const float *)w;
        const int8_t *q = (const int8_t *)(w + 32 * sizeof(float));
        int64_t len = n - g < 32 ? n - g : 32;
        bool first = g == 0 && !accumulate;
        if (step_scales) {
            float xg[6 * 32];
            for (int t = 0; t < rows; t++)
                for (int64_t k = 0; k < len; k++) xg[t * 32 + k] = x[t * ldx + g + k] * scale[k];
            avx2_gemm6x32_i8(q, xg, 32, len, rows, !first, out);
            continue;
        }
        float part[6 * 32];
        avx2_gemm6x32_i8(q, x + g, ldx, len, rows, false, part);
        for (int t = 0; t < rows; t++)
            for (int i = 0; i < 32; i += 8) {
                __m256 p = _mm256_mul_ps(_mm256_loadu_ps(part + t * 32 + i), _mm256_loadu_ps(scale + i));
                _mm256_storeu_ps(out + t * 32 + i, first ? p : _mm256_add_ps(_mm256_loadu_ps(out + t * 32 + i), p));
            }
    }
}

static void avx2_gemv2_bf16x32(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out) {
    avx2_gemm6x32_bf16x32(w0, x, n, n, 1, false, out);
    avx2_gemm6x32_bf16x32(w1, x, n, n, 1, false, out + PROWS);
}
#undef GEMM_HALF
#undef PLAIN_HALF
#undef PACKED_HALF
#undef F32_KIND
#undef F16_KIND
#undef PACKED_KIND
#undef GEMM_RX32

/* Quantized tiles: the 16-row dots per token (too few registers for a multi-token integer tile). */
static void avx2_gemm_q8_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                               int64_t nb, int rows, float *out) {
    for (int t = 0; t < rows; t++) {
        avx2_dot16_q8_0(g0, x + t * ldx, xd + t * ldx, xs + t * ldx, nb, out + t * 32);
        avx2_dot16_q8_0(g1, x + t * ldx, xd + t * ldx, xs + t * ldx, nb, out + t * 32 + QROWS);
    }
}

static void avx2_gemm_q4_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                               int64_t nb, int rows, float *out) {
    for (int t = 0; t < rows; t++) {
        avx2_dot16_q4_0(g0, x + t * ldx, xd + t * ldx, xs + t * ldx, nb, out + t * 32);
        avx2_dot16_q4_0(g1, x + t * ldx, xd + t * ldx, xs + t * ldx, nb, out + t * 32 + QROWS);
    }
}

const dot_kernels *dot_kernels_avx2(void) {
    static const dot_kernels k = { "avx2", avx2_dot_f32, avx2_dot_bf16, avx2_dot_f16, avx2_dot_q8_0, avx2_dot_q4_0, avx2_gemm6x32_f32, avx2_gemm6x32_f16, avx2_gemm6x32_bf16x32, avx2_gemv2_bf16x32, avx2_gemm_q8_0_x16, avx2_gemm_q4_0_x16, ref_axpy, ref_exp_sum, ref_swiglu, ref_rmsnorm, ref_bf16_to_f32, ref_bf16_tile_f32, ref_quantize_q8_0, ref_f32_to_f16_row, ref_transpose, NULL, NULL, avx2_gemm6x32_q8 };
    return &k;
}
