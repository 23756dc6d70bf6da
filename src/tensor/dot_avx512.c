/* AVX-512 dot products (compiled with -mavx512f/bw/vl/bf16; used only when CPUID says so). */
#include "tensor/tensor.h"

#include <immintrin.h>

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

/* VNNI: 32 int8 products summed into 8 int32 lanes by one instruction. */
static inline __m256 mul_sum_i8(__m256i x, __m256i y) {
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
    return _mm256_cvtepi32_ps(s);
}

static inline __m256i unpack_q4(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float avx512_dot_q8_0(const block_q8_0 *w, const block_q8_0 *x, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < n; b += 2) {
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256 d1 = _mm256_set1_ps(_cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d));
        acc0 = _mm256_fmadd_ps(d0, mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs)), acc0);
        acc1 = _mm256_fmadd_ps(d1, mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b + 1].qs), _mm256_loadu_si256((const __m256i *)x[b + 1].qs)), acc1);
    }
    for (; b < n; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        acc0 = _mm256_fmadd_ps(d, mul_sum_i8(_mm256_loadu_si256((const __m256i *)w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs)), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

static float avx512_dot_q4_0(const block_q4_0 *w, const block_q8_0 *x, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < n; b += 2) {
        __m256 d0 = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        __m256 d1 = _mm256_set1_ps(_cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d));
        acc0 = _mm256_fmadd_ps(d0, mul_sum_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs)), acc0);
        acc1 = _mm256_fmadd_ps(d1, mul_sum_i8(unpack_q4(w[b + 1].qs), _mm256_loadu_si256((const __m256i *)x[b + 1].qs)), acc1);
    }
    for (; b < n; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d));
        acc0 = _mm256_fmadd_ps(d, mul_sum_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs)), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

/* 6 tokens x 32 weight rows with the weights transposed: each step loads two vectors of weights
 * and broadcasts one activation per token into 12 FMAs; no horizontal sums. */
static void avx512_gemm6x32_f32(const float *wt, const float *x, int64_t ldx, int64_t n, float *out) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *x4 = x + 4 * ldx, *x5 = x + 5 * ldx;
    for (int64_t k = 0; k < n; k++) {
        __m512 w0 = _mm512_loadu_ps(wt + k * 32), w1 = _mm512_loadu_ps(wt + k * 32 + 16);
        __m512 b = _mm512_set1_ps(x0[k]);
        c00 = _mm512_fmadd_ps(b, w0, c00); c01 = _mm512_fmadd_ps(b, w1, c01);
        b = _mm512_set1_ps(x1[k]);
        c10 = _mm512_fmadd_ps(b, w0, c10); c11 = _mm512_fmadd_ps(b, w1, c11);
        b = _mm512_set1_ps(x2[k]);
        c20 = _mm512_fmadd_ps(b, w0, c20); c21 = _mm512_fmadd_ps(b, w1, c21);
        b = _mm512_set1_ps(x3[k]);
        c30 = _mm512_fmadd_ps(b, w0, c30); c31 = _mm512_fmadd_ps(b, w1, c31);
        b = _mm512_set1_ps(x4[k]);
        c40 = _mm512_fmadd_ps(b, w0, c40); c41 = _mm512_fmadd_ps(b, w1, c41);
        b = _mm512_set1_ps(x5[k]);
        c50 = _mm512_fmadd_ps(b, w0, c50); c51 = _mm512_fmadd_ps(b, w1, c51);
    }
    _mm512_storeu_ps(out, c00); _mm512_storeu_ps(out + 16, c01);
    _mm512_storeu_ps(out + 32, c10); _mm512_storeu_ps(out + 48, c11);
    _mm512_storeu_ps(out + 64, c20); _mm512_storeu_ps(out + 80, c21);
    _mm512_storeu_ps(out + 96, c30); _mm512_storeu_ps(out + 112, c31);
    _mm512_storeu_ps(out + 128, c40); _mm512_storeu_ps(out + 144, c41);
    _mm512_storeu_ps(out + 160, c50); _mm512_storeu_ps(out + 176, c51);
}

static void avx512_axpy(float *y, float a, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void avx512_bf16_to_f32(const uint16_t *in, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_bf16x16(in + i));
    for (; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

const dot_kernels *dot_kernels_avx512(void) {
    static const dot_kernels k = { "avx512", avx512_dot_f32, avx512_dot_bf16, avx512_dot_f16, avx512_dot_q8_0, avx512_dot_q4_0, avx512_gemm6x32_f32, avx512_axpy, avx512_bf16_to_f32 };
    return &k;
}
