/* AVX2 + FMA dot products (compiled with -mavx2 -mfma -mf16c; used only when CPUID says so).
 * dot_avxvnni.c compiles this file again with AVX_VNNI defined (and -mavxvnni): the quantized
 * tiles then sum u8 x s8 products with vpdpbusd, one instruction into 32-bit lanes. */
#include "tensor/tensor.h"

#include <immintrin.h>
#include <math.h>
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

/* The DECODE_PREFETCH lines ahead of `bytes` at p, non-temporally (one token's pass). */
static inline void prefetch_nta(const uint8_t *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + DECODE_PREFETCH + o, _MM_HINT_NTA);
}

#ifdef AVX_VNNI
/* acc + the 4-product sums of u (u8) x s (s8) per 32-bit lane (vpdpbusd). The accumulator is tied
 * to the instruction's destination by hand: GCC 12 copies it through a spare register around each
 * intrinsic call in the multi-token tiles. */
static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
    return acc;
}
#endif

/* acc + the 4-product sums of u0 x s0 and u1 x s1 (u: nibbles, 0-15; s: activations): 16-bit
 * lanes of pair sums without VNNI (widen_sums makes them the 32-bit sums), 32-bit lanes with it. */
static inline __m256i dot4_pair(__m256i acc, __m256i u0, __m256i s0, __m256i u1, __m256i s1) {
#ifdef AVX_VNNI
    return dpbusd(dpbusd(acc, u0, s0), u1, s1);
#else
    return _mm256_add_epi16(acc, _mm256_add_epi16(_mm256_maddubs_epi16(u0, s0), _mm256_maddubs_epi16(u1, s1)));
#endif
}

static inline __m256i widen_sums(__m256i acc) {
#ifdef AVX_VNNI
    return acc;
#else
    return _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
#endif
}

/* Superblock sb (16 rows x 32 weights, see QROWS) against one token's block: acc[0] (rows 0-7)
 * and acc[1] (rows 8-15) += its 16 sums. */
static inline __attribute__((always_inline)) void q8_superblock(const uint8_t *sb, const block_q8_0 *x, float xd, float xs, __m256 acc[2]) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
#ifdef AVX_VNNI /* the stored bytes (q + 128) times x; 128 * sum(x) taken off after */
    for (int g = 0; g < 8; g++) {
        __m256i xv = bcast4(x->qs + 4 * g);
        s0 = dpbusd(s0, _mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * g)), xv);
        s1 = dpbusd(s1, _mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * g)), xv);
    }
    __m256 xdv = _mm256_set1_ps(xd), corr = _mm256_set1_ps(128.0f * xs);
    acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), _mm256_fmsub_ps(xdv, _mm256_cvtepi32_ps(s0), corr), acc[0]);
    acc[1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16))), _mm256_fmsub_ps(xdv, _mm256_cvtepi32_ps(s1), corr), acc[1]);
#else
    (void)xs;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int g = 0; g < 8; g++) {
        /* signed weights against signed activations: |x| times w with x's sign (no overflow: |x| <= 127) */
        __m256i xv = bcast4(x->qs + 4 * g), ax = _mm256_sign_epi8(xv, xv);
        __m256i w0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * g)), flip);
        __m256i w1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * g)), flip);
        s0 = _mm256_add_epi32(s0, sum4_u8_i8(ax, _mm256_sign_epi8(w0, xv)));
        s1 = _mm256_add_epi32(s1, sum4_u8_i8(ax, _mm256_sign_epi8(w1, xv)));
    }
    __m256 xdv = _mm256_set1_ps(xd);
    acc[0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), xdv), _mm256_cvtepi32_ps(s0), acc[0]);
    acc[1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16))), xdv), _mm256_cvtepi32_ps(s1), acc[1]);
#endif
}

static inline __attribute__((always_inline)) void q4_superblock(const uint8_t *sb, const block_q8_0 *x, float xd, float xs, __m256 acc[2]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i p0 = _mm256_setzero_si256(), p1 = p0;
#ifdef AVX_VNNI
    /* the high nibbles masked in place, no shift (16 x their sums, at most 4 x 4 x 240 x 127 a
     * lane: exact), in sums of their own shifted back once (as the AVX-512 tile does): the one-token
     * tile 4-6% faster from L1/L2 on this Zen 5 (67 -> 70-71 GB/s a core), the same sums */
    const __m256i mh = _mm256_set1_epi8((char)0xF0);
    __m256i e0 = p0, e1 = p0;
    for (int g = 0; g < 4; g++) {
        __m256i lo = bcast4(x->qs + 4 * g), hi = bcast4(x->qs + 16 + 4 * g);
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * g)), v1 = _mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * g));
        p0 = dpbusd(p0, _mm256_and_si256(v0, m4), lo);
        e0 = dpbusd(e0, _mm256_and_si256(v0, mh), hi);
        p1 = dpbusd(p1, _mm256_and_si256(v1, m4), lo);
        e1 = dpbusd(e1, _mm256_and_si256(v1, mh), hi);
    }
    __m256i s0 = _mm256_add_epi32(p0, _mm256_srai_epi32(e0, 4)), s1 = _mm256_add_epi32(p1, _mm256_srai_epi32(e1, 4));
#else
    /* 16-bit sums of the block's 16 products per row pair, widened once: |each| <= 16 * 15 * 127 */
    for (int g = 0; g < 4; g++) {
        __m256i lo = bcast4(x->qs + 4 * g), hi = bcast4(x->qs + 16 + 4 * g);
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * g)), v1 = _mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * g));
        p0 = dot4_pair(p0, _mm256_and_si256(v0, m4), lo, _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), hi);
        p1 = dot4_pair(p1, _mm256_and_si256(v1, m4), lo, _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), hi);
    }
    __m256i s0 = widen_sums(p0), s1 = widen_sums(p1);
#endif
    __m256 xdv = _mm256_set1_ps(xd), corr = _mm256_set1_ps(8.0f * xs);
    acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), _mm256_fmsub_ps(xdv, _mm256_cvtepi32_ps(s0), corr), acc[0]);
    acc[1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16))), _mm256_fmsub_ps(xdv, _mm256_cvtepi32_ps(s1), corr), acc[1]);
}

/* Both groups (16 rows each, anywhere in memory) against one token, superblock by superblock side
 * by side, so that a decode step's two streams are read at once: out[0..15] from g0, out[16..31]
 * from g1; `prefetch` (decode) fetches both DECODE_PREFETCH ahead. */
static inline __attribute__((always_inline)) void dot16_pair(const bool q4, const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd,
                                                             const float *xs, int64_t nb, float *out, bool prefetch) {
    __m256 a0[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() }, a1[2] = { a0[0], a0[0] };
    const size_t sb_bytes = q4 ? QROWS * sizeof(block_q4_0) : QROWS * sizeof(block_q8_0);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *s0 = g0 + b * sb_bytes, *s1 = g1 + b * sb_bytes;
        if (prefetch) {
            prefetch_nta(s0, sb_bytes);
            prefetch_nta(s1, sb_bytes);
        }
        if (q4) {
            q4_superblock(s0, x + b, xd[b], xs[b], a0);
            q4_superblock(s1, x + b, xd[b], xs[b], a1);
        } else {
            q8_superblock(s0, x + b, xd[b], xs[b], a0);
            q8_superblock(s1, x + b, xd[b], xs[b], a1);
        }
    }
    _mm256_storeu_ps(out, a0[0]);
    _mm256_storeu_ps(out + 8, a0[1]);
    _mm256_storeu_ps(out + 16, a1[0]);
    _mm256_storeu_ps(out + 24, a1[1]);
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

/* One or two tokens x all 32 rows of a plain tile ([n][32] f32, f16 or int8) in one pass: each
 * step's 32 weights widened once into 4 vectors for both tokens, 4 accumulators per token (one
 * token: a second set for the odd steps, so that 8 FMA chains run). This is a decode step's
 * attention over a GQA group of 1-2 heads; two 16-row halves would widen every weight twice and
 * run half as many chains. */
static inline __attribute__((always_inline)) void load_w32x4(const void *wt, const int kind, int64_t k, __m256 w[4]) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        if (kind == WT_F32) w[i] = _mm256_loadu_ps((const float *)wt + k * 32 + 8 * i);
        else if (kind == WT_F16) w[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)wt + k * 32 + 8 * i)));
        else w[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)wt + k * 32 + 8 * i))));
    }
}

static inline __attribute__((always_inline)) void gemm_r32(const void *wt, const int kind, const float *x, int64_t ldx, int64_t n, bool accumulate,
                                                           float *out, const int R) {
    __m256 c[2][4], w[4];
#pragma GCC unroll 4
    for (int t = 0; t < R; t++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) c[t][i] = accumulate ? _mm256_loadu_ps(out + t * 32 + 8 * i) : _mm256_setzero_ps();
    int64_t k = 0;
    if (R == 1) {
        __m256 e[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }, v[4];
        for (; k + 1 < n; k += 2) {
            load_w32x4(wt, kind, k, w);
            load_w32x4(wt, kind, k + 1, v);
            __m256 b = _mm256_broadcast_ss(x + k), b1 = _mm256_broadcast_ss(x + k + 1);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                c[0][i] = _mm256_fmadd_ps(b, w[i], c[0][i]);
                e[i] = _mm256_fmadd_ps(b1, v[i], e[i]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) c[0][i] = _mm256_add_ps(c[0][i], e[i]);
    }
    for (; k < n; k++) {
        load_w32x4(wt, kind, k, w);
#pragma GCC unroll 4
        for (int t = 0; t < R; t++) {
            __m256 b = _mm256_broadcast_ss(x + t * ldx + k);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) c[t][i] = _mm256_fmadd_ps(b, w[i], c[t][i]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < R; t++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + t * 32 + 8 * i, c[t][i]);
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
/* A plain tile: one or two tokens in one pass (gemm_r32), more in halves. */
#define GEMM_PLAIN(NAME, WT, KIND)                                                                                  \
    static void NAME(const WT *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) { \
        if (rows == 1) gemm_r32(wt, KIND, x, ldx, n, accumulate, out, 1);                                           \
        else if (rows == 2) gemm_r32(wt, KIND, x, ldx, n, accumulate, out, 2);                                      \
        else {                                                                                                      \
            GEMM_HALF(PLAIN_HALF, KIND##_OF, 0)                                                                     \
            GEMM_HALF(PLAIN_HALF, KIND##_OF, 16)                                                                    \
        }                                                                                                           \
    }
#define PLAIN_HALF(h) (wt + (h))
#define PACKED_HALF(h) (wt)
#define PACKED_KIND(h) ((h) ? WT_BF16X32_HI : WT_BF16X32_LO)
#define WT_F32_OF(h) WT_F32
#define WT_F16_OF(h) WT_F16
#define WT_I8_OF(h) WT_I8
GEMM_PLAIN(avx2_gemm6x32_f32, float, WT_F32)
GEMM_PLAIN(avx2_gemm6x32_f16, uint16_t, WT_F16)
GEMM_PLAIN(avx2_gemm6x32_i8, int8_t, WT_I8)
GEMM_RX32(avx2_gemm6x32_bf16x32, uint16_t, PACKED_HALF, PACKED_KIND)

/* The q8 tile (see dot_kernels.gemm6x32_q8) through the int8 tile (gemm6x32_q8_by_groups). */
static void avx2_gemm6x32_q8(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate,
                             float *out) {
    gemm6x32_q8_by_groups(avx2_gemm6x32_i8, w, step_scales, x, ldx, n, rows, accumulate, out);
}

/* Two packed groups side by side for one token, each read once: a 64-byte step is two loads of 8
 * words, whose low halves are rows 0-7 / 8-15 and high halves rows 16-23 / 24-31 (QDT_BF16X32), in
 * 4 accumulators per group (enough chains for a memory-bound step); both streams prefetched
 * DECODE_PREFETCH_BF16 ahead, non-temporally. */
static void avx2_gemv2_bf16x32(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out) {
    const uint16_t *w[2] = { w0, w1 };
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 c[2][4];
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) c[g][i] = _mm256_setzero_ps();
    for (int64_t k = 0; k < n; k++) {
        __m256 b = _mm256_broadcast_ss(x + k);
#pragma GCC unroll 2
        for (int g = 0; g < 2; g++) {
            const uint16_t *p = w[g] + k * 32;
            _mm_prefetch((const char *)p + DECODE_PREFETCH_BF16, _MM_HINT_NTA);
            __m256i a = _mm256_loadu_si256((const __m256i *)p), e = _mm256_loadu_si256((const __m256i *)(p + 16));
            c[g][0] = _mm256_fmadd_ps(b, _mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), c[g][0]);
            c[g][1] = _mm256_fmadd_ps(b, _mm256_castsi256_ps(_mm256_slli_epi32(e, 16)), c[g][1]);
            c[g][2] = _mm256_fmadd_ps(b, _mm256_castsi256_ps(_mm256_and_si256(a, hi)), c[g][2]);
            c[g][3] = _mm256_fmadd_ps(b, _mm256_castsi256_ps(_mm256_and_si256(e, hi)), c[g][3]);
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + g * 32 + i * 8, c[g][i]);
}
#undef GEMM_HALF
#undef PLAIN_HALF
#undef PACKED_HALF
#undef WT_F32_OF
#undef WT_F16_OF
#undef WT_I8_OF
#undef PACKED_KIND
#undef GEMM_RX32
#undef GEMM_PLAIN

/* One group (16 rows) against R tokens (prefill): each 64-byte chunk is loaded (Q4_0: its
 * nibbles unpacked; Q8_0 without VNNI: made signed) once for all R; each token's sums (as in
 * q4_superblock / q8_superblock) stay in registers over a superblock and are scaled into
 * out[t * 32 ..] (rows 0-15 of the token's 32) after it. */
static inline __attribute__((always_inline)) void q_group_rx16(const bool q4, const uint8_t *g, const block_q8_0 *x, const float *xd, const float *xs,
                                                               int64_t ldx, int64_t nb, float *out, const int R) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const size_t sb_bytes = q4 ? QROWS * sizeof(block_q4_0) : QROWS * sizeof(block_q8_0);
#ifdef AVX_VNNI
    const float offset = q4 ? 8.0f : 128.0f; /* the stored bytes are q + 128 */
#else
    const float offset = q4 ? 8.0f : 0.0f; /* made signed below */
#endif
    for (int t = 0; t < R; t++) {
        _mm256_storeu_ps(out + t * 32, _mm256_setzero_ps());
        _mm256_storeu_ps(out + t * 32 + 8, _mm256_setzero_ps());
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sb = g + b * sb_bytes;
        __m256i p[4][2];
#pragma GCC unroll 4
        for (int t = 0; t < R; t++) p[t][0] = p[t][1] = _mm256_setzero_si256();
        if (q4) {
            for (int c = 0; c < 4; c++) {
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * c)), v1 = _mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * c));
                __m256i lo0 = _mm256_and_si256(v0, m4), hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);
                __m256i lo1 = _mm256_and_si256(v1, m4), hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4);
#pragma GCC unroll 4
                for (int t = 0; t < R; t++) {
                    __m256i xl = bcast4(x[t * ldx + b].qs + 4 * c), xh = bcast4(x[t * ldx + b].qs + 16 + 4 * c);
                    p[t][0] = dot4_pair(p[t][0], lo0, xl, hi0, xh);
                    p[t][1] = dot4_pair(p[t][1], lo1, xl, hi1, xh);
                }
            }
        } else {
            for (int c = 0; c < 8; c++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(sb + 32 + 64 * c)), w1 = _mm256_loadu_si256((const __m256i *)(sb + 64 + 64 * c));
#ifdef AVX_VNNI
#pragma GCC unroll 4
                for (int t = 0; t < R; t++) {
                    __m256i xv = bcast4(x[t * ldx + b].qs + 4 * c);
                    p[t][0] = dpbusd(p[t][0], w0, xv);
                    p[t][1] = dpbusd(p[t][1], w1, xv);
                }
#else
                /* the weights signed once for all tokens, then as in q8_superblock: |x| times w
                 * with x's sign, each product pair widened at once (two would overflow 16 bits) */
                const __m256i flip = _mm256_set1_epi8((char)0x80);
                w0 = _mm256_xor_si256(w0, flip);
                w1 = _mm256_xor_si256(w1, flip);
#pragma GCC unroll 4
                for (int t = 0; t < R; t++) {
                    __m256i xv = bcast4(x[t * ldx + b].qs + 4 * c), ax = _mm256_sign_epi8(xv, xv);
                    p[t][0] = _mm256_add_epi32(p[t][0], sum4_u8_i8(ax, _mm256_sign_epi8(w0, xv)));
                    p[t][1] = _mm256_add_epi32(p[t][1], sum4_u8_i8(ax, _mm256_sign_epi8(w1, xv)));
                }
#endif
            }
        }
        __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 16)));
#pragma GCC unroll 4
        for (int t = 0; t < R; t++) {
            __m256 xdv = _mm256_set1_ps(xd[t * ldx + b]), corr = _mm256_set1_ps(offset * xs[t * ldx + b]);
            __m256 s0 = _mm256_cvtepi32_ps(q4 ? widen_sums(p[t][0]) : p[t][0]), s1 = _mm256_cvtepi32_ps(q4 ? widen_sums(p[t][1]) : p[t][1]);
            _mm256_storeu_ps(out + t * 32, _mm256_fmadd_ps(d0, _mm256_fmsub_ps(xdv, s0, corr), _mm256_loadu_ps(out + t * 32)));
            _mm256_storeu_ps(out + t * 32 + 8, _mm256_fmadd_ps(d1, _mm256_fmsub_ps(xdv, s1, corr), _mm256_loadu_ps(out + t * 32 + 8)));
        }
    }
}

/* Tokens in tiles of up to 4 (16 registers: 8 sums, 4 unpacked vectors, 2 broadcasts, the mask),
 * each group in turn. */
static inline __attribute__((always_inline)) void q_tiles(const bool q4, const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd,
                                                          const float *xs, int64_t ldx, int64_t nb, int rows, float *out) {
    for (int t = 0; t < rows; t += 4) {
        int n = rows - t < 4 ? rows - t : 4;
        for (int h = 0; h < 2; h++) {
            const uint8_t *g = h ? g1 : g0;
            const block_q8_0 *xt = x + t * ldx;
            const float *dt = xd + t * ldx, *st = xs + t * ldx;
            float *o = out + t * 32 + h * QROWS;
            switch (n) {
            case 2: q_group_rx16(q4, g, xt, dt, st, ldx, nb, o, 2); break;
            case 3: q_group_rx16(q4, g, xt, dt, st, ldx, nb, o, 3); break;
            case 4: q_group_rx16(q4, g, xt, dt, st, ldx, nb, o, 4); break;
            default: q_group_rx16(q4, g, xt, dt, st, ldx, nb, o, 1); break;
            }
        }
    }
}

/* Quantized tiles: one token (decode) reads both groups side by side with prefetch; more tokens
 * go through q_tiles. */
static void avx2_gemm_q8_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                               int64_t nb, int rows, float *out) {
    if (rows == 1) dot16_pair(false, g0, g1, x, xd, xs, nb, out, true);
    else q_tiles(false, g0, g1, x, xd, xs, ldx, nb, rows, out);
}

static void avx2_gemm_q4_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                               int64_t nb, int rows, float *out) {
    if (rows == 1) dot16_pair(true, g0, g1, x, xd, xs, nb, out, true);
    else q_tiles(true, g0, g1, x, xd, xs, ldx, nb, rows, out);
}

static void avx2_axpy(float *y, float a, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* e^x as the AVX-512 exp_ps computes it (Cephes' degree-7 polynomial on x - n ln2), times 2^n as
 * two powers of two built in the exponent field, so that n from -150 to 128 stays exact
 * (underflows to 0 below -104, overflows to infinity above 88.8). */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static inline float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* See dot_kernels.exp_sum: weights more than EXP_SUM_FLOOR below the maximum are 0, and the
 * polynomial never sees such a score (no subnormal is computed). */
static float avx2_exp_sum(float *x, int64_t n, float *max) {
    __m256 mv = _mm256_set1_ps(*max), sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float m = hmax256(mv);
    for (int64_t t = i; t < n; t++) m = x[t] > m ? x[t] : m;
    *max = m;
    mv = _mm256_set1_ps(m);
    const __m256 floor = _mm256_set1_ps(EXP_SUM_FLOOR);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
        __m256 e = _mm256_and_ps(_mm256_cmp_ps(d, floor, _CMP_GE_OQ), exp8(_mm256_max_ps(d, floor)));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = hsum256(sum);
    if (i < n) { /* the tail through the same polynomial, 8 lanes padded with the floor */
        float t[8];
        for (int k = 0; k < 8; k++) t[k] = i + k < n ? x[i + k] - m : EXP_SUM_FLOOR - 1.0f;
        __m256 d = _mm256_loadu_ps(t);
        _mm256_storeu_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, floor, _CMP_GE_OQ), exp8(_mm256_max_ps(d, floor))));
        for (int k = 0; i + k < n; k++) {
            x[i + k] = t[k];
            total += t[k];
        }
    }
    return total;
}

static void avx2_swiglu(float *a, const float *b, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(a + i, _mm256_mul_ps(s, _mm256_loadu_ps(b + i)));
    }
    if (i < n) ref_swiglu(a + i, b + i, n - i);
}

static void avx2_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    __m256d s = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = x[i] * scale * w[i];
}

static void avx2_f32_to_f16_row(const float *in, uint16_t *out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) out[i] = f32_to_f16(in[i]);
}

static void avx2_bf16_to_f32(const uint16_t *in, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_bf16x8(in + i));
    for (; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

/* In-register transpose of 8 vectors of 8 floats (m[i][j] -> m[j][i]). */
static inline __attribute__((always_inline)) void transpose8x8(__m256 m[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(m[i], m[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(m[i], m[i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        m[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        m[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* 32 rows of bf16 to the [n][32] f32 tile, 8 rows x 8 columns at a time (the last n % 8 columns
 * one by one). */
static void avx2_bf16_tile_f32(const uint16_t *w, int64_t stride, int64_t n, float *tile) {
    int64_t k0 = 0;
    for (; k0 + 8 <= n; k0 += 8)
        for (int r0 = 0; r0 < 32; r0 += 8) {
            __m256 m[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) m[i] = load_bf16x8(w + (r0 + i) * stride + k0);
            transpose8x8(m);
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++) _mm256_storeu_ps(tile + (k0 + c) * 32 + r0, m[c]);
        }
    for (; k0 < n; k0++)
        for (int i = 0; i < 32; i++) tile[k0 * 32 + i] = bf16_to_f32(w[i * stride + k0]);
}

/* ref_rope 8 pairs at a time (the products may fuse into one rounding with the sum) */
static void avx2_rope(float *v, const float *cs, int64_t half, float scale) {
    const __m256 sc = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= half; i += 8) {
        __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(cs + half + i), a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + half + i);
        _mm256_storeu_ps(v + i, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)), sc));
        _mm256_storeu_ps(v + half + i, _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(b, c), _mm256_mul_ps(a, s)), sc));
    }
    ref_rope_from(v, cs, half, i, scale);
}

static void avx2_transpose(const float *in, int64_t ld_in, float *out, int64_t ld_out, int64_t rows, int64_t cols) {
    int64_t r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
        int64_t c0 = 0;
        for (; c0 + 8 <= cols; c0 += 8) {
            __m256 m[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) m[i] = _mm256_loadu_ps(in + (r0 + i) * ld_in + c0);
            transpose8x8(m);
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++) _mm256_storeu_ps(out + (c0 + c) * ld_out + r0, m[c]);
        }
        for (int64_t r = r0; r < r0 + 8; r++)
            for (int64_t c = c0; c < cols; c++) out[c * ld_out + r] = in[r * ld_in + c];
    }
    for (int64_t r = r0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[c * ld_out + r] = in[r * ld_in + c];
}

/* roundf (half away from zero) exactly: truncate, then step away from zero when the dropped part
 * is at least one half (y - trunc(y) is exact in float). */
static inline __m256 round_half_away(__m256 y) {
    __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(y, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(y, _mm256_set1_ps(-0.0f))); /* copysign(1, y) */
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* As ref_quantize_q8_0, bit for bit. */
static void avx2_quantize_q8_0(const float *x, block_q8_0 *out, float *xd, float *xs, int64_t n) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / QK; b++) {
        __m256 v[4], am = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + b * QK + 8 * k);
            am = _mm256_max_ps(am, _mm256_and_ps(v[k], abs_mask));
        }
        float d = hmax256(am) / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT); /* round to nearest even, as f32_to_f16 */
        out[b].d = h;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v[k], vid)));
        /* 32 int32 to int8 (|q| <= 127): the packs interleave 128-bit lanes, the permutation undoes it */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)out[b].qs, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        xd[b] = _cvtsh_ss(h);
        xs[b] = xd[b] * (float)_mm_cvtsi128_si32(s4);
    }
}

#ifdef AVX_VNNI
const dot_kernels *dot_kernels_avxvnni(void) {
    static const dot_kernels k = { "avx2+vnni", avx2_dot_f32, avx2_dot_bf16, avx2_dot_f16, avx2_dot_q8_0, avx2_dot_q4_0, avx2_gemm6x32_f32, avx2_gemm6x32_f16, avx2_gemm6x32_bf16x32, avx2_gemv2_bf16x32, avx2_gemm_q8_0_x16, avx2_gemm_q4_0_x16, avx2_axpy, avx2_exp_sum, avx2_swiglu, avx2_rmsnorm, avx2_bf16_to_f32, avx2_bf16_tile_f32, avx2_quantize_q8_0, avx2_f32_to_f16_row, avx2_transpose, avx2_rope, NULL, NULL, avx2_gemm6x32_q8, NULL, NULL, NULL, NULL, 0 };
    return &k;
}
#else
const dot_kernels *dot_kernels_avx2(void) {
    static const dot_kernels k = { "avx2", avx2_dot_f32, avx2_dot_bf16, avx2_dot_f16, avx2_dot_q8_0, avx2_dot_q4_0, avx2_gemm6x32_f32, avx2_gemm6x32_f16, avx2_gemm6x32_bf16x32, avx2_gemv2_bf16x32, avx2_gemm_q8_0_x16, avx2_gemm_q4_0_x16, avx2_axpy, avx2_exp_sum, avx2_swiglu, avx2_rmsnorm, avx2_bf16_to_f32, avx2_bf16_tile_f32, avx2_quantize_q8_0, avx2_f32_to_f16_row, avx2_transpose, avx2_rope, NULL, NULL, avx2_gemm6x32_q8, NULL, NULL, NULL, NULL, 0 };
    return &k;
}
#endif
