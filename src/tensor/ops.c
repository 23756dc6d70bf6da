/* Plain-C kernels: the reference for every fast path, and the small ops that are not hot. */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

size_t qdtype_size(qdtype t) { return t == QDT_F32 ? 4 : 2; }
const char *qdtype_name(qdtype t) {
    static const char *names[] = { "F32", "F16", "BF16", "Q8_0", "Q4_0", "BF16X32" };
    return names[t];
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void qtensor_row_f32(const qtensor *w, int64_t r, float *out) {
    int64_t n = w->cols;
    if (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0) {
        for (int64_t b = 0; b < n / QK; b++) {
            block_q8_0 blk; /* the larger of the two block types */
            q_block(w, r, b, &blk);
            dequantize_row(w->dtype, &blk, out + b * QK, QK);
        }
    } else if (w->dtype == QDT_F32) {
        memcpy(out, (const float *)w->data + r * n, (size_t)n * sizeof(float));
    } else if (w->dtype == QDT_BF16) {
        dot_kernels_best()->bf16_to_f32((const uint16_t *)w->data + r * n, out, n);
    } else if (w->dtype == QDT_BF16X32) {
        const uint16_t *p = w->data;
        for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(p[bf16x32_index(n, r, i)]);
    } else {
        const uint16_t *p = (const uint16_t *)w->data + r * n;
        for (int64_t i = 0; i < n; i++) out[i] = f16_to_f32(p[i]);
    }
}

static float ref_dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static float ref_dot_bf16(const float *a, const uint16_t *b, int64_t n) {
    float acc[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * bf16_to_f32(b[i + k]);
    float s = 0;
    for (; i < n; i++) s += a[i] * bf16_to_f32(b[i]);
    return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static float ref_dot_f16(const float *a, const uint16_t *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * f16_to_f32(b[i]);
    return s;
}

void ref_axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void ref_softmax(float *x, int64_t n) {
    float max = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] > max) max = x[i];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - max); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

float ref_exp_sum(float *x, int64_t n, float *max) {
    for (int64_t i = 0; i < n; i++) *max = x[i] > *max ? x[i] : *max;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = x[i] - *max >= EXP_SUM_FLOOR ? expf(x[i] - *max) : 0.0f; sum += x[i]; }
    return (float)sum;
}

void ref_bf16_to_f32(const uint16_t *in, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

void ref_bf16_tile_f32(const uint16_t *w, int64_t stride, int64_t n, float *tile) {
    for (int i = 0; i < 32; i++)
        for (int64_t k = 0; k < n; k++) tile[k * 32 + i] = bf16_to_f32(w[i * stride + k]);
}

void ref_gemm6x32_f16(const uint16_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {
    for (int t = 0; t < rows; t++)
        for (int r = 0; r < 32; r++) {
            float s = accumulate ? out[t * 32 + r] : 0;
            for (int64_t k = 0; k < n; k++) s += x[t * ldx + k] * f16_to_f32(wt[k * 32 + r]);
            out[t * 32 + r] = s;
        }
}

void ref_gemm6x32_q8(const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {
    for (int t = 0; t < rows; t++)
        for (int r = 0; r < 32; r++) {
            float s = accumulate ? out[t * 32 + r] : 0;
            for (int64_t g = 0; g < n; g += 32) { /* a group's sum, then its column scale */
                const uint8_t *grp = w + g / 32 * Q8G_BYTES;
                float scale[32], part = 0;
                memcpy(scale, grp, sizeof scale);
                const int8_t *q = (const int8_t *)(grp + sizeof scale);
                for (int64_t k = g; k < g + 32 && k < n; k++) part += x[t * ldx + k] * (step_scales ? scale[k - g] : 1.0f) * (float)q[(k - g) * 32 + r];
                s += step_scales ? part : part * scale[r];
            }
            out[t * 32 + r] = s;
        }
}

void gemm6x32_q8_by_groups(gemm6x32_i8_fn tile, const uint8_t *w, bool step_scales, const float *x, int64_t ldx, int64_t n, int rows,
                           bool accumulate, float *out) {
    for (int64_t g = 0; g < n; g += 32, w += Q8G_BYTES) {
        const float *scale = (const float *)w;
        const int8_t *q = (const int8_t *)(w + 32 * sizeof(float));
        int64_t len = n - g < 32 ? n - g : 32;
        bool first = g == 0 && !accumulate;
        if (step_scales) {
            float xg[6 * 32];
            for (int t = 0; t < rows; t++)
                for (int64_t k = 0; k < len; k++) xg[t * 32 + k] = x[t * ldx + g + k] * scale[k];
            tile(q, xg, 32, len, rows, !first, out);
            continue;
        }
        float part[6 * 32];
        tile(q, x + g, ldx, len, rows, false, part);
        for (int t = 0; t < rows; t++)
            for (int i = 0; i < 32; i++) out[t * 32 + i] = first ? part[t * 32 + i] * scale[i] : out[t * 32 + i] + part[t * 32 + i] * scale[i];
    }
}

void ref_gemm6x32_bf16x32(const uint16_t *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {
    for (int t = 0; t < rows; t++)
        for (int r = 0; r < 32; r++) {
            float s = accumulate ? out[t * 32 + r] : 0;
            for (int64_t k = 0; k < n; k++) s += x[t * ldx + k] * bf16_to_f32(wt[k * 32 + 2 * (r % 16) + r / 16]);
            out[t * 32 + r] = s;
        }
}

void ref_gemm6x32_bf16dp(const uint16_t *wt, const uint16_t *xb, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {
    for (int t = 0; t < rows; t++)
        for (int r = 0; r < 32; r++) {
            float s = accumulate ? out[t * 32 + r] : 0;
            for (int64_t k = 0; k < n; k++) s += bf16_to_f32(xb[t * ldx + k]) * bf16_to_f32(wt[k * 32 + 2 * (r % 16) + r / 16]);
            out[t * 32 + r] = s;
        }
}

void ref_f32_to_bf16_row(const float *in, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16_daz(in[i]);
}

void ref_gemv2_bf16x32(const uint16_t *w0, const uint16_t *w1, const float *x, int64_t n, float *out) {
    ref_gemm6x32_bf16x32(w0, x, n, n, 1, false, out);
    ref_gemm6x32_bf16x32(w1, x, n, n, 1, false, out + PROWS);
}

void ref_gemv4_bf16x32(const uint16_t *w, int64_t stride, const float *x, int64_t n, float *out) {
    ref_gemv2_bf16x32(w, w + stride, x, n, out);
    ref_gemv2_bf16x32(w + 2 * stride, w + 3 * stride, x, n, out + 2 * PROWS);
}

void pack_bf16x32(const uint16_t *rows, int64_t n_rows, int64_t cols, uint16_t *out) {
    for (int64_t g = 0; g < n_rows; g += PROWS)
        for (int i = 0; i < 16; i++) { /* rows i and 16 + i of the group share 32-bit word i of each column */
            const uint16_t *lo = rows + (g + i) * cols, *hi = rows + (g + 16 + i) * cols;
            uint16_t *dst = out + g * cols + 2 * i;
            for (int64_t k = 0; k < cols; k++) {
                dst[k * PROWS] = lo[k];
                dst[k * PROWS + 1] = hi[k];
            }
        }
}

void ref_f32_to_f16_row(const float *in, uint16_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = f32_to_f16(in[i]);
}

void ref_transpose(const float *in, int64_t ld_in, float *out, int64_t ld_out, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) out[c * ld_out + r] = in[r * ld_in + c];
}

void ref_gemm6x32_f32(const float *wt, const float *x, int64_t ldx, int64_t n, int rows, bool accumulate, float *out) {
    for (int t = 0; t < rows; t++)
        for (int r = 0; r < 32; r++) {
            float s = accumulate ? out[t * 32 + r] : 0;
            for (int64_t k = 0; k < n; k++) s += x[t * ldx + k] * wt[k * 32 + r];
            out[t * 32 + r] = s;
        }
}

void ref_rope_from(float *v, const float *cs, int64_t half, int64_t from, float scale) {
    for (int64_t i = from; i < half; i++) {
        float c = cs[i], s = cs[half + i], a = v[i], b = v[half + i];
        float x = a * c - b * s, y = b * c + a * s;
        v[i] = x * scale;
        v[half + i] = y * scale;
    }
}

void ref_rope(float *v, const float *cs, int64_t half, float scale) { ref_rope_from(v, cs, half, 0, scale); }

const dot_kernels *dot_kernels_ref(void) {
    static const dot_kernels k = { "reference", ref_dot_f32, ref_dot_bf16, ref_dot_f16, ref_dot_q8_0, ref_dot_q4_0, ref_gemm6x32_f32, ref_gemm6x32_f16, ref_gemm6x32_bf16x32, ref_gemv2_bf16x32, ref_gemm_q8_0_x16, ref_gemm_q4_0_x16, ref_axpy, ref_exp_sum, ref_swiglu, ref_rmsnorm, ref_bf16_to_f32, ref_bf16_tile_f32, ref_quantize_q8_0, ref_f32_to_f16_row, ref_transpose, ref_rope, NULL, NULL, ref_gemm6x32_q8, NULL, NULL, NULL, ref_argmax_f32, 0 };
    return &k;
}

#if !defined(__x86_64__)
/* Without x86-64 there are no x86 tables (dot_kernels_best takes NEON or the reference). */
const dot_kernels *dot_kernels_avx2(void) { return NULL; }
const dot_kernels *dot_kernels_avxvnni(void) { return NULL; }
const dot_kernels *dot_kernels_avx512(void) { return NULL; }
#endif
#if !defined(__aarch64__)
const dot_kernels *dot_kernels_neon(void) { return NULL; }
const dot_kernels *dot_kernels_neon_dotprod(void) { return NULL; }
#endif

void ref_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void rmsnorm(float *out, const float *x, const float *w, int n, float eps) { ref_rmsnorm(out, x, w, n, eps); }

int64_t argmax_f32(const float *x, int64_t n) {
    const dot_kernels *k = dot_kernels_best();
    return k->argmax ? k->argmax(x, n) : ref_argmax_f32(x, n);
}

int64_t ref_argmax_f32(const float *x, int64_t n) {
    enum { LANES = 16, BLOCK = 1024 };
    float best = -INFINITY;
    int64_t best_block = -1;
    /* the largest value of each block of BLOCK, 16 lanes at a time; the first block holding the largest */
    for (int64_t b = 0; b < n; b += BLOCK) {
        int64_t e = n - b < BLOCK ? n : b + BLOCK, i = b;
        float m[LANES];
        for (int j = 0; j < LANES; j++) m[j] = -INFINITY;
        for (; i + LANES <= e; i += LANES)
            for (int j = 0; j < LANES; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
        for (; i < e; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
        float mb = m[0];
        for (int j = 1; j < LANES; j++) mb = m[j] > mb ? m[j] : mb;
        if (mb > best || best_block < 0) {
            best = mb;
            best_block = b;
        }
    }
    for (int64_t i = best_block < 0 ? n : best_block; i < n; i++)
        if (x[i] == best) return i;
    return 0; /* only NaNs */
}

void ref_swiglu(float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) a[i] = silu(a[i]) * b[i];
}

void softmax(float *x, int n) { ref_softmax(x, n); }
