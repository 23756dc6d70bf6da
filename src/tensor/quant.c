/* Block quantization (Q8_0, Q4_0): the plain-C reference for quantizing, dequantizing and the
 * integer dot products; fast paths in dot_avx2.c / dot_avx512.c are tested against these. */
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
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

size_t qtensor_bytes(const qtensor *w) { return (size_t)w->rows * qdtype_row_bytes(w->dtype, w->cols); }

void qtensor_read(const qtensor *w, size_t offset, size_t len, void *out) {
    if (!w->piece_rows) {
        memcpy(out, (const char *)w->data + offset, len);
        return;
    }
    size_t row_bytes = qdtype_row_bytes(w->dtype, w->cols), piece = (size_t)w->piece_rows * row_bytes;
    for (char *o = out; len > 0;) { /* a piece's rows lie together: piece by piece */
        size_t k = offset / piece, in = offset % piece, n = piece - in < len ? piece - in : len;
        memcpy(o, q_row(w, (int64_t)k * w->piece_rows, row_bytes) + in, n);
        o += n;
        offset += n;
        len -= n;
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

bool q_interleaved(const qtensor *w) {
    return (w->dtype == QDT_Q8_0 || w->dtype == QDT_Q4_0) && w->rows % QROWS == 0;
}

/* Start of superblock b of the group holding row r. */
static const uint8_t *superblock(const qtensor *w, int64_t r, int64_t b) {
    size_t sb = QROWS * qdtype_row_bytes(w->dtype, QK);
    return q_row(w, r / QROWS * QROWS, qdtype_row_bytes(w->dtype, w->cols)) + (size_t)b * sb;
}

void q_block(const qtensor *w, int64_t r, int64_t b, void *out) {
    size_t block = qdtype_row_bytes(w->dtype, QK);
    if (!q_interleaved(w)) {
        memcpy(out, (const char *)w->data + (size_t)r * qdtype_row_bytes(w->dtype, w->cols) + (size_t)b * block, block);
        return;
    }
    const uint8_t *sb = superblock(w, r, b);
    int lane = (int)(r % QROWS);
    if (w->dtype == QDT_Q8_0) {
        block_q8_0 *o = out;
        memcpy(&o->d, sb + 2 * lane, 2);
        for (int i = 0; i < QK; i++) o->qs[i] = (int8_t)(sb[32 + (i / 4) * 64 + 4 * lane + i % 4] ^ 0x80);
    } else {
        block_q4_0 *o = out;
        memcpy(&o->d, sb + 2 * lane, 2);
        for (int i = 0; i < QK / 2; i++) o->qs[i] = sb[32 + (i / 4) * 64 + 4 * lane + i % 4];
    }
}

/* Rewrites 16 plain rows (row_bytes apart) as one interleaved group. */
static void interleave16(qdtype t, int64_t cols, const uint8_t *plain, uint8_t *group) {
    size_t row_bytes = qdtype_row_bytes(t, cols), block = qdtype_row_bytes(t, QK);
    int chunks = t == QDT_Q8_0 ? 8 : 4;
    for (int64_t b = 0; b < cols / QK; b++) {
        uint8_t *sb = group + (size_t)b * QROWS * block;
        for (int r = 0; r < QROWS; r++) {
            const uint8_t *blk = plain + (size_t)r * row_bytes + (size_t)b * block;
            memcpy(sb + 2 * r, blk, 2);
            for (int g = 0; g < chunks; g++)
                for (int j = 0; j < 4; j++) sb[32 + g * 64 + 4 * r + j] = (uint8_t)(blk[2 + 4 * g + j] ^ (t == QDT_Q8_0 ? 0x80 : 0));
        }
    }
}

bool quantize_rows_f32(qdtype t, const float *x, int64_t n_rows, int64_t cols, bool interleave, void *out) {
    size_t row_bytes = qdtype_row_bytes(t, cols);
    uint8_t *plain = interleave ? malloc(QROWS * row_bytes) : NULL;
    if (interleave && !plain) return false;
    for (int64_t r0 = 0; r0 < n_rows; r0 += interleave ? QROWS : 1) {
        int64_t n = interleave ? QROWS : 1;
        uint8_t *dst = interleave ? plain : (uint8_t *)out + (size_t)r0 * row_bytes;
        for (int64_t r = 0; r < n; r++) {
            if (t == QDT_Q8_0) quantize_row_q8_0(x + (r0 + r) * cols, (block_q8_0 *)(dst + (size_t)r * row_bytes), cols);
            else quantize_row_q4_0(x + (r0 + r) * cols, (block_q4_0 *)(dst + (size_t)r * row_bytes), cols);
        }
        if (interleave) interleave16(t, cols, plain, (uint8_t *)out + (size_t)r0 * row_bytes);
    }
    free(plain);
    return true;
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
        qtensor q = { .dtype = t, .rows = 1, .cols = n, .data = row };
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

float ref_row_dot_q(const qtensor *w, int64_t r, const block_q8_0 *x) {
    float s = 0;
    for (int64_t b = 0; b < w->cols / QK; b++) {
        block_q8_0 blk; /* the larger block type */
        q_block(w, r, b, &blk);
        s += w->dtype == QDT_Q8_0 ? ref_dot_q8_0(&blk, x + b, NULL, NULL, 1) : ref_dot_q4_0((const block_q4_0 *)&blk, x + b, NULL, NULL, 1);
    }
    return s;
}

/* The 16 rows of one interleaved group of type t, each by ref_row_dot_q. */
static void ref_dot16(qdtype t, const uint8_t *group, const block_q8_0 *x, int64_t n_blocks, float *out) {
    qtensor w = { .dtype = t, .rows = QROWS, .cols = n_blocks * QK, .data = group };
    for (int r = 0; r < QROWS; r++) out[r] = ref_row_dot_q(&w, r, x);
}

void q8_0_block_sums(const block_q8_0 *x, int64_t n_blocks, float *xd, float *xs) {
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t sum = 0;
        for (int i = 0; i < QK; i++) sum += x[b].qs[i];
        xd[b] = f16_to_f32(x[b].d);
        xs[b] = xd[b] * (float)sum;
    }
}

void ref_quantize_q8_0(const float *x, block_q8_0 *out, float *xd, float *xs, int64_t n) {
    quantize_row_q8_0(x, out, n);
    q8_0_block_sums(out, n / QK, xd, xs);
}

/* Both groups against each of `rows` tokens, by the 16-row reference. */
static void ref_gemm_x16(qdtype t, const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, int64_t ldx, int64_t n_blocks, int rows,
                         float *out) {
    for (int r = 0; r < rows; r++) {
        ref_dot16(t, g0, x + r * ldx, n_blocks, out + r * 32);
        ref_dot16(t, g1, x + r * ldx, n_blocks, out + r * 32 + QROWS);
    }
}

/* Four groups against one token, by the 16-row reference. */
static void ref_gemv4(qdtype t, const uint8_t *const g[4], const block_q8_0 *x, int64_t n_blocks, float *out) {
    for (int s = 0; s < 4; s++) ref_dot16(t, g[s], x, n_blocks, out + 16 * s);
}

void ref_gemv4_q8_0(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out) {
    (void)xd;
    (void)xs;
    ref_gemv4(QDT_Q8_0, g, x, n_blocks, out);
}

void ref_gemv4_q4_0(const uint8_t *const g[4], const block_q8_0 *x, const float *xd, const float *xs, int64_t n_blocks, float *out) {
    (void)xd;
    (void)xs;
    ref_gemv4(QDT_Q4_0, g, x, n_blocks, out);
}

void ref_gemm_q8_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                       int64_t n_blocks, int rows, float *out) {
    (void)xd;
    (void)xs;
    ref_gemm_x16(QDT_Q8_0, g0, g1, x, ldx, n_blocks, rows, out);
}

void ref_gemm_q4_0_x16(const uint8_t *g0, const uint8_t *g1, const block_q8_0 *x, const float *xd, const float *xs, int64_t ldx,
                       int64_t n_blocks, int rows, float *out) {
    (void)xd;
    (void)xs;
    ref_gemm_x16(QDT_Q4_0, g0, g1, x, ldx, n_blocks, rows, out);
}
