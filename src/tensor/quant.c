/* Block quantization (Q8_0, Q4_0): the plain-C reference for quantizing, dequantizing and the
 * integer dot products; fast paths in dot_avx2.c / dot_avx512.c are tested against these. */
#include "tensor/tensor.h"

#include <math.h>
#include <string.h>

uint16_t f32_to_f16(float f) {
    /* round to nearest even, with subnormals, infinities and NaN */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = x & 0x7FFFFF;
    if (((x >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7C00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - exp;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float f32_to_f16_value(float f) { return f16_to_f32(f32_to_f16(f)); }

size_t qdtype_row_bytes(qdtype t, int64_t cols) {
    switch (t) {
    case QDT_Q8_0: return (size_t)(cols / QK) * sizeof(block_q8_0);
    case QDT_Q4_0: return (size_t)(cols / QK) * sizeof(block_q4_0);
    default: return (size_t)cols * qdtype_size(t);
    }
}

void quantize_row_q8_0(const float *x, block_q8_0 *out, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++) {
        const float *v = x + b * QK;
        float amax = 0;
        for (int i = 0; i < QK; i++) if (fabsf(v[i]) > amax) amax = fabsf(v[i]);
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int i = 0; i < QK; i++) out[b].qs[i] = (int8_t)roundf(v[i] * id);
    }
}

void quantize_row_q4_0(const float *x, block_q4_0 *out, int64_t n) {
    for (int64_t b = 0; b < n / QK; b++) {
        const float *v = x + b * QK;
        float amax = 0, max = 0;
        for (int i = 0; i < QK; i++) if (fabsf(v[i]) > amax) { amax = fabsf(v[i]); max = v[i]; }
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            int lo = (int)(v[j] * id + 8.5f), hi = (int)(v[j + QK / 2] * id + 8.5f);
            if (lo > 15) lo = 15;
            if (hi > 15) hi = 15;
            if (lo < 0) lo = 0;
            if (hi < 0) hi = 0;
            out[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void dequantize_row(qdtype t, const void *row, float *out, int64_t n) {
    if (t == QDT_Q8_0) {
        const block_q8_0 *b = row;
        for (int64_t k = 0; k < n / QK; k++) {
            float d = f16_to_f32(b[k].d);
            for (int i = 0; i < QK; i++) out[k * QK + i] = d * b[k].qs[i];
        }
    } else if (t == QDT_Q4_0) {
        const block_q4_0 *b = row;
        for (int64_t k = 0; k < n / QK; k++) {
            float d = f16_to_f32(b[k].d);
            for (int j = 0; j < QK / 2; j++) {
                out[k * QK + j] = d * ((b[k].qs[j] & 0xF) - 8);
                out[k * QK + j + QK / 2] = d * ((b[k].qs[j] >> 4) - 8);
            }
        }
    } else {
        qtensor q = { t, 1, n, row };
        qtensor_row_f32(&q, 0, out);
    }
}

float ref_dot_q8_0(const block_q8_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks) {
    (void)xd;
    (void)xs;
    float s = 0;
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t acc = 0;
        for (int i = 0; i < QK; i++) acc += (int32_t)w[b].qs[i] * x[b].qs[i];
        s += (float)acc * f16_to_f32(w[b].d) * f16_to_f32(x[b].d);
    }
    return s;
}

float ref_dot_q4_0(const block_q4_0 *w, const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks) {
    (void)xd;
    (void)xs;
    float s = 0;
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK / 2; j++) {
            acc += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j];
            acc += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + QK / 2];
        }
        s += (float)acc * f16_to_f32(w[b].d) * f16_to_f32(x[b].d);
    }
    return s;
}

void q8_0_block_sums(const block_q8_0 *x, int64_t n_blocks, float *xd, float *xs) {
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t sum = 0;
        for (int i = 0; i < QK; i++) sum += x[b].qs[i];
        xd[b] = f16_to_f32(x[b].d);
        xs[b] = xd[b] * (float)sum;
    }
}

float repack_q_tile(const qtensor *w, int64_t r0, uint8_t *packed, float *pdw) {
    int64_t nb = w->cols / QK;
    size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols);
    for (int r = 0; r < 32; r++) {
        const char *row = (const char *)w->data + (size_t)(r0 + r) * row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t u[QK];
            if (w->dtype == QDT_Q8_0) {
                const block_q8_0 *blk = (const block_q8_0 *)row + b;
                pdw[b * 32 + r] = f16_to_f32(blk->d);
                for (int i = 0; i < QK; i++) u[i] = (uint8_t)(blk->qs[i] ^ 0x80);
            } else {
                const block_q4_0 *blk = (const block_q4_0 *)row + b;
                pdw[b * 32 + r] = f16_to_f32(blk->d);
                for (int i = 0; i < QK / 2; i++) { u[i] = blk->qs[i] & 0xF; u[i + QK / 2] = blk->qs[i] >> 4; }
            }
            for (int g = 0; g < 8; g++)
                for (int j = 0; j < 4; j++) packed[((b * 8 + g) * 32 + r) * 4 + j] = u[4 * g + j];
        }
    }
    return w->dtype == QDT_Q8_0 ? 128.0f : 8.0f;
}

void ref_gemm6x32_q(const uint8_t *packed, const float *pdw, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                    int64_t n_blocks, float offset, float *out) {
    for (int t = 0; t < 6; t++)
        for (int r = 0; r < 32; r++) {
            float acc = 0;
            for (int64_t b = 0; b < n_blocks; b++) {
                int32_t dot = 0;
                for (int g = 0; g < 8; g++)
                    for (int j = 0; j < 4; j++) dot += packed[((b * 8 + g) * 32 + r) * 4 + j] * x[t * ldx + b].qs[4 * g + j];
                acc += pdw[b * 32 + r] * (xd[t * ldx + b] * (float)dot - offset * xs[t * ldx + b]);
            }
            out[t * 32 + r] = acc;
        }
}
