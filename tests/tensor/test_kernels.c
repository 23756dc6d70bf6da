/* Every fast kernel equals the plain-C reference on random shapes, odd sizes included. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "tensor/tensor.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint16_t to_f16(float f) {
    /* values in [-1, 1]: normal range only, round to nearest */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int exp = (int)((u >> 23) & 0xFF) - 127 + 15;
    if (exp <= 0) return (uint16_t)sign;
    uint32_t mant = (u >> 13) & 0x3FF;
    return (uint16_t)(sign | ((uint32_t)exp << 10) | mant);
}

static void test_dot_tables(void) {
    const dot_kernels *fast[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    const dot_kernels *ref = dot_kernels_ref();
    int sizes[] = { 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 257, 1000 };
    for (int k = 0; k < (int)(sizeof fast / sizeof *fast); k++) {
        if (!dot_kernels_runnable(fast[k])) { if (fast[k]) printf("skipping %s: this CPU lacks it\n", fast[k]->name); continue; }
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            int n = sizes[s];
            float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
            uint16_t *hb = malloc(n * 2), *hf = malloc(n * 2);
            double mag = 0;
            for (int i = 0; i < n; i++) {
                a[i] = frand();
                b[i] = frand();
                hb[i] = to_bf16(b[i]);
                hf[i] = to_f16(b[i]);
                mag += fabs(a[i] * b[i]);
            }
            double tol = 1e-5 * (mag + 1);
            CHECK(fabs(fast[k]->dot_f32(a, b, n) - ref->dot_f32(a, b, n)) <= tol, "%s dot_f32 n=%d", fast[k]->name, n);
            CHECK(fabs(fast[k]->dot_bf16(a, hb, n) - ref->dot_bf16(a, hb, n)) <= tol, "%s dot_bf16 n=%d", fast[k]->name, n);
            CHECK(fabs(fast[k]->dot_f16(a, hf, n) - ref->dot_f16(a, hf, n)) <= tol, "%s dot_f16 n=%d", fast[k]->name, n);
            free(a); free(b); free(hb); free(hf);
        }
    }
    printf("best kernels here: %s\n", dot_kernels_best()->name);
}

static void test_quant_dots(void) {
    const dot_kernels *fast[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    const dot_kernels *ref = dot_kernels_ref();
    int blocks[] = { 1, 2, 3, 7, 32, 33, 64 };
    for (size_t s = 0; s < sizeof blocks / sizeof *blocks; s++) {
        int n = blocks[s] * QK;
        float *w = malloc(n * 4), *x = malloc(n * 4), *back = malloc(n * 4);
        for (int i = 0; i < n; i++) { w[i] = frand(); x[i] = frand() * 3; }
        block_q8_0 *w8 = malloc(blocks[s] * sizeof *w8), *x8 = malloc(blocks[s] * sizeof *x8);
        block_q4_0 *w4 = malloc(blocks[s] * sizeof *w4);
        quantize_row_q8_0(w, w8, n);
        quantize_row_q4_0(w, w4, n);
        quantize_row_q8_0(x, x8, n);
        /* quantization error bounds: half a step per weight */
        dequantize_row(QDT_Q8_0, w8, back, n);
        double e8 = 0, e4 = 0;
        for (int i = 0; i < n; i++) if (fabs(back[i] - w[i]) > e8) e8 = fabs(back[i] - w[i]);
        dequantize_row(QDT_Q4_0, w4, back, n);
        for (int i = 0; i < n; i++) if (fabs(back[i] - w[i]) > e4) e4 = fabs(back[i] - w[i]);
        CHECK(e8 <= 1.0 / 127 * 0.5 + 1e-3, "q8_0 round trip error %g", e8);
        CHECK(e4 <= 1.0 / 8 + 2e-3, "q4_0 round trip error %g (range [-8, 7] steps: one step at the far end)", e4);
        float xd[64], xs[64];
        q8_0_block_sums(x8, blocks[s], xd, xs);
        float r8 = ref->dot_q8_0(w8, x8, xd, xs, blocks[s]), r4 = ref->dot_q4_0(w4, x8, xd, xs, blocks[s]);
        for (int k = 0; k < (int)(sizeof fast / sizeof *fast); k++) {
            if (!dot_kernels_runnable(fast[k])) continue;
            float f8 = fast[k]->dot_q8_0(w8, x8, xd, xs, blocks[s]), f4 = fast[k]->dot_q4_0(w4, x8, xd, xs, blocks[s]);
            CHECK(fabs(f8 - r8) <= 1e-4 * (fabs(r8) + 1), "%s dot_q8_0 %d blocks: %g vs %g", fast[k]->name, blocks[s], f8, r8);
            CHECK(fabs(f4 - r4) <= 1e-4 * (fabs(r4) + 1), "%s dot_q4_0 %d blocks: %g vs %g", fast[k]->name, blocks[s], f4, r4);
        }
        free(w); free(x); free(back); free(w8); free(x8); free(w4);
    }
    /* f16 conversion round trip on representative values */
    float vals[] = { 0.0f, 1.0f, -2.5f, 65504.0f, 6.1e-5f, 5.96e-8f, 1e-3f, 0.33333f };
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        CHECK(fabs(f32_to_f16_value(vals[i]) - vals[i]) <= fabs(vals[i]) * 1e-3 + 6e-8, "f16 round trip %g -> %g", vals[i], f32_to_f16_value(vals[i]));
}

static void test_matmul(thread_pool *pool) {
    int shapes[][3] = { { 1, 1, 1 }, { 5, 7, 1 }, { 33, 17, 3 }, { 64, 96, 1 }, { 129, 65, 7 }, { 300, 257, 2 }, { 37, 64, 5 }, { 70, 320, 1 }, { 67, 96, 9 }, { 64, 64, 13 },
                        { 48, 128, 5 }, { 32, 32, 9 }, { 160, 64, 8 }, { 16, 96, 2 }, { 64, 37, 7 }, { 96, 129, 1 }, { 32, 1, 3 }, { 32, 1100, 7 },
                        { 2080, 40, 100 }, { 64, 1100, 100 }, /* packed prefill: row sub-blocks, token blocks and column chunks */
                        { 16416, 128, 1 } }; /* decode blocks bounded in bytes, an odd number of groups */
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1], T = shapes[s][2];
        float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)T * cols * 4), *bias = malloc(rows * 4);
        uint16_t *wb = malloc((size_t)rows * cols * 2), *wh = malloc((size_t)rows * cols * 2);
        for (int i = 0; i < rows * cols; i++) { wf[i] = frand(); wb[i] = to_bf16(wf[i]); wh[i] = to_f16(wf[i]); }
        for (int i = 0; i < T * cols; i++) x[i] = frand();
        for (int i = 0; i < rows; i++) bias[i] = frand();
        int nq = cols % QK == 0 ? 2 : 0;
        block_q8_0 *w8 = malloc((size_t)rows * (cols / QK + 1) * sizeof *w8);
        block_q4_0 *w4 = malloc((size_t)rows * (cols / QK + 1) * sizeof *w4);
        if (nq)
            REQUIRE(quantize_rows_f32(QDT_Q8_0, wf, rows, cols, rows % QROWS == 0, w8) &&
                    quantize_rows_f32(QDT_Q4_0, wf, rows, cols, rows % QROWS == 0, w4), "quantize");
        /* packed bf16 (rows in whole groups of 32), checked against the plain bf16 reference */
        uint16_t *wp = malloc((size_t)rows * cols * 2);
        bool packed = rows % PROWS == 0;
        if (packed) {
            pack_bf16x32(wb, rows, cols, wp);
            qtensor pt = { .dtype = QDT_BF16X32, .rows = rows, .cols = cols, .data = wp };
            float *r1 = malloc(cols * 4), *r2 = malloc(cols * 4);
            for (int r = 0; r < rows; r++) {
                qtensor_row_f32(&pt, r, r1);
                for (int i = 0; i < cols; i++) r2[i] = bf16_to_f32(wb[r * cols + i]);
                CHECK(!memcmp(r1, r2, cols * 4), "packed bf16 row %d of %dx%d reads back", r, rows, cols);
            }
            free(r1); free(r2);
        }
        qtensor ws[] = { { .dtype = QDT_F32, .rows = rows, .cols = cols, .data = wf, .act_bf16 = false }, { .dtype = QDT_BF16, .rows = rows, .cols = cols, .data = wb, .act_bf16 = false }, { .dtype = QDT_F16, .rows = rows, .cols = cols, .data = wh, .act_bf16 = false },
                         { .dtype = QDT_BF16X32, .rows = rows, .cols = cols, .data = wp, .act_bf16 = false }, { .dtype = QDT_BF16X32, .rows = rows, .cols = cols, .data = wp, .act_bf16 = true },
                         { .dtype = QDT_Q8_0, .rows = rows, .cols = cols, .data = w8, .act_bf16 = false }, { .dtype = QDT_Q4_0, .rows = rows, .cols = cols, .data = w4, .act_bf16 = false } };
        float *y = malloc((size_t)T * rows * 4), *yr = malloc((size_t)T * rows * 4), *xr = malloc((size_t)T * cols * 4);
        for (int i = 0; i < T * cols; i++) xr[i] = bf16_to_f32(f32_to_bf16_daz(x[i]));
        for (int d = 0; d < 5 + nq; d++) {
            if (ws[d].dtype == QDT_BF16X32 && !packed) continue;
            for (int tt = 1; tt <= T; tt += T - 1 > 0 ? T - 1 : 1) {
                workspace wsp = { 0 };
                matmul(pool, &wsp, y, x, tt, &ws[d], bias);
                workspace_free(&wsp);
                /* bf16 activations: batches where the CPU has the dot products, as the reference with x rounded */
                bool rounded = ws[d].act_bf16 && tt > 1 && dot_kernels_best()->gemm6x32_bf16dp;
                matmul_ref(yr, rounded ? xr : x, tt, ws[d].dtype == QDT_BF16X32 ? &ws[1] : &ws[d], bias);
                double err = 0;
                for (int i = 0; i < tt * rows; i++) if (fabs(y[i] - yr[i]) > err) err = fabs(y[i] - yr[i]);
                CHECK(err <= 1e-4 * (cols + 1) / 16.0, "matmul %s %dx%d T=%d: err %g", qdtype_name(ws[d].dtype), rows, cols, tt, err);
                if (T == 1) break;
            }
        }
        free(wf); free(x); free(xr); free(bias); free(wb); free(wh); free(wp); free(y); free(yr); free(w8); free(w4);
    }
}

/* matmul_grouped: groups of rows (some empty, some single) through different matrices of each
 * dtype equal a matmul_ref per group; mixed dtypes fall back to one matmul each. */
static void test_matmul_grouped(thread_pool *pool) {
    enum { ROWS = 64, COLS = 96, N = 5, XR = 13 };
    int first[N] = { 0, 3, 3, 4, 12 }, count[N] = { 3, 0, 1, 8, 1 };
    float *x = malloc(XR * COLS * 4), *wf = malloc((size_t)N * ROWS * COLS * 4);
    for (int i = 0; i < XR * COLS; i++) x[i] = frand();
    for (int i = 0; i < N * ROWS * COLS; i++) wf[i] = frand();
    qdtype types[] = { QDT_F32, QDT_BF16, QDT_BF16X32, QDT_Q8_0, QDT_Q4_0 };
    for (size_t d = 0; d < sizeof types / sizeof *types; d++)
        for (int mixed = 0; mixed < 2; mixed++) {
            qtensor w[N], ref[N];
            void *mem[N];
            matmul_group g[N];
            float *y = calloc((size_t)XR * ROWS, 4), *yr = malloc((size_t)XR * ROWS * 4);
            for (int e = 0; e < N; e++) {
                qdtype t = mixed && e == 2 ? QDT_F32 : types[d];
                const float *src = wf + (size_t)e * ROWS * COLS;
                mem[e] = malloc((size_t)ROWS * COLS * 4);
                uint16_t *plain = malloc((size_t)ROWS * COLS * 2);
                for (int i = 0; i < ROWS * COLS; i++) plain[i] = to_bf16(src[i]);
                if (t == QDT_F32) memcpy(mem[e], src, (size_t)ROWS * COLS * 4);
                else if (t == QDT_BF16) memcpy(mem[e], plain, (size_t)ROWS * COLS * 2);
                else if (t == QDT_BF16X32) pack_bf16x32(plain, ROWS, COLS, mem[e]);
                else REQUIRE(quantize_rows_f32(t, src, ROWS, COLS, true, mem[e]), "quantize");
                w[e] = (qtensor){ .dtype = t, .rows = ROWS, .cols = COLS, .data = mem[e] };
                ref[e] = t == QDT_BF16X32 ? (qtensor){ .dtype = QDT_BF16, .rows = ROWS, .cols = COLS } : w[e];
                if (t == QDT_BF16X32) { ref[e].data = plain; plain = NULL; }
                free(plain);
                g[e] = (matmul_group){ first[e], count[e], &w[e], y + (size_t)first[e] * ROWS };
            }
            workspace ws = { 0 };
            matmul_grouped(pool, &ws, x, XR, N, g);
            workspace_free(&ws);
            double err = 0;
            for (int e = 0; e < N; e++) {
                if (!count[e]) continue;
                matmul_ref(yr, x + (size_t)first[e] * COLS, count[e], &ref[e], NULL);
                for (int i = 0; i < count[e] * ROWS; i++) {
                    double diff = fabs(y[(size_t)first[e] * ROWS + i] - yr[i]);
                    if (diff > err) err = diff;
                }
            }
            CHECK(err <= 1e-4 * (COLS + 1) / 16.0, "matmul_grouped %s%s: err %g", qdtype_name(types[d]), mixed ? " mixed with F32" : "", err);
            for (int e = 0; e < N; e++) {
                if (ref[e].data != mem[e]) free((void *)ref[e].data);
                free(mem[e]);
            }
            free(y);
            free(yr);
        }
    free(x);
    free(wf);
}

/* A gemm6x32 tile against its reference: `got` within the tolerance of `want` on the first `rows`
 * tokens, the rest of `got` left at `fill` (both were filled with it), and without `accumulate`
 * the reference really wrote its rows. */
static void check_tile(const char *name, const char *kernel, const float *want, const float *got, int n, int rows, bool accumulate, float fill) {
    for (int i = 0; i < 6 * 32; i++)
        CHECK(fabsf(want[i] - got[i]) <= 1e-5f * (n + 1) * (accumulate ? fill : 1) && (i < rows * 32 || got[i] == fill) &&
                  (accumulate || i >= rows * 32 || want[i] != fill),
              "%s %s n=%d rows=%d accumulate=%d", name, kernel, n, rows, accumulate);
}

static void test_axpy_convert_gemm(void) {
    const dot_kernels *ks[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
        if (!dot_kernels_runnable(ks[k])) continue;
        for (int n = 1; n < 70; n += 7) {
            float y1[80], y2[80], x[80], o1[80], o2[80];
            uint16_t h[80];
            for (int i = 0; i < n; i++) { y1[i] = y2[i] = frand(); x[i] = frand(); h[i] = to_bf16(frand()); }
            ref_axpy(y1, 0.7f, x, n);
            ks[k]->axpy(y2, 0.7f, x, n);
            ref_bf16_to_f32(h, o1, n);
            ks[k]->bf16_to_f32(h, o2, n);
            {   /* f32 -> f16 rows, bit for bit, over normal, subnormal, overflowing and zero values */
                float v[80];
                uint16_t a[80], b[80];
                for (int i = 0; i < n; i++) v[i] = frand() * (i % 4 == 0 ? 1e-6f : i % 4 == 1 ? 70000.0f : i % 4 == 2 ? 3.0f : 0.0f);
                ref_f32_to_f16_row(v, a, n);
                ks[k]->f32_to_f16_row(v, b, n);
                CHECK(!memcmp(a, b, (size_t)n * 2), "%s f32_to_f16_row n=%d", ks[k]->name, n);
            }
            if (ks[k]->f32_to_bf16_row) { /* f32 -> bf16 rows, bit for bit: ties, subnormals, infinities, NaN */
                float v[80];
                uint16_t a[80], b[80];
                for (int i = 0; i < n; i++) {
                    union { uint32_t u; float f; } t = { 0x3f808000u + (uint32_t)i * 0x10000u }; /* exact ties */
                    v[i] = i % 5 == 0 ? frand() * 1e-39f : i % 5 == 1 ? t.f : i % 5 == 2 ? frand() * 3e38f * 1.5f : i % 5 == 3 ? frand() : NAN;
                }
                ref_f32_to_bf16_row(v, a, n);
                ks[k]->f32_to_bf16_row(v, b, n);
                CHECK(!memcmp(a, b, (size_t)n * 2), "%s f32_to_bf16_row n=%d", ks[k]->name, n);
            }
            {   /* 32 rows of n bf16, 3 apart beyond n, to a transposed f32 tile */
                int64_t stride = n + 3;
                uint16_t *rows = malloc(32 * stride * 2);
                float *t1 = malloc(32 * n * 4), *t2 = malloc(32 * n * 4);
                for (int i = 0; i < 32 * stride; i++) rows[i] = to_bf16(frand());
                ref_bf16_tile_f32(rows, stride, n, t1);
                ks[k]->bf16_tile_f32(rows, stride, n, t2);
                CHECK(!memcmp(t1, t2, (size_t)32 * n * 4), "%s bf16_tile_f32 n=%d", ks[k]->name, n);
                for (int rows_ = 1; rows_ <= 33; rows_ += 8) { /* transposes of rows_ x n, n up to 64 */
                    float *in = malloc((size_t)rows_ * stride * 4), *a = calloc((size_t)n * 40, 4), *b = calloc((size_t)n * 40, 4);
                    for (int i = 0; i < rows_ * stride; i++) in[i] = frand();
                    ref_transpose(in, stride, a, 40, rows_, n);
                    ks[k]->transpose(in, stride, b, 40, rows_, n);
                    CHECK(!memcmp(a, b, (size_t)n * 40 * 4), "%s transpose %dx%d", ks[k]->name, rows_, n);
                    free(in); free(a); free(b);
                }
                free(rows); free(t1); free(t2);
            }
            for (int i = 0; i < n; i++) {
                CHECK(fabsf(y1[i] - y2[i]) <= 1e-6f, "%s axpy n=%d", ks[k]->name, n);
                CHECK(o1[i] == o2[i], "%s bf16_to_f32 n=%d", ks[k]->name, n);
            }
            float *wt = malloc(32 * n * 4), *xg = malloc(6 * n * 4), *g1 = malloc(6 * 32 * 4), *g2 = malloc(6 * 32 * 4);
            for (int i = 0; i < 32 * n; i++) wt[i] = frand();
            for (int i = 0; i < 6 * n; i++) xg[i] = frand();
            for (int rows = 1; rows <= 6; rows++) {
                uint16_t *wh = malloc(32 * n * 2);
                for (int i = 0; i < 32 * n; i++) wh[i] = f32_to_f16(wt[i]);
                for (int i = 0; i < 6 * 32; i++) g1[i] = g2[i] = 1.0f;
                ref_gemm6x32_f16(wh, xg, n, n, rows, true, g1);
                ks[k]->gemm6x32_f16(wh, xg, n, n, rows, true, g2);
                check_tile(ks[k]->name, "gemm6x32_f16", g1, g2, n, rows, true, 1.0f);
                free(wh);
                int groups = (n + 31) / 32;
                uint8_t *wq = malloc((size_t)groups * Q8G_BYTES);
                for (int g = 0; g < groups; g++) {
                    float sc[32];
                    for (int i = 0; i < 32; i++) sc[i] = frand() * 0.02f;
                    memcpy(wq + g * Q8G_BYTES, sc, sizeof sc);
                    int8_t *q = (int8_t *)(wq + g * Q8G_BYTES + sizeof sc);
                    for (int i = 0; i < 1024; i++) q[i] = (int8_t)(i % 7 == 0 ? -127 : i % 11 == 0 ? 127 : lrintf(frand() * 127));
                }
                for (int step = 0; step < 2; step++) /* scales per column (keys) or per step (values) */
                    for (int acc = 0; acc < 2; acc++) {
                        for (int i = 0; i < 6 * 32; i++) g1[i] = g2[i] = 2.0f;
                        ref_gemm6x32_q8(wq, step, xg, n, n, rows, acc, g1);
                        ks[k]->gemm6x32_q8(wq, step, xg, n, n, rows, acc, g2);
                        check_tile(ks[k]->name, "gemm6x32_q8", g1, g2, n, rows, acc, 2.0f);
                        for (int t = 0; t < rows && !acc; t++) /* the reference against a double sum */
                            for (int r = 0; r < 32; r++) {
                                double d = 0;
                                for (int i = 0; i < n; i++) {
                                    const uint8_t *grp = wq + i / 32 * Q8G_BYTES;
                                    float sc[32];
                                    memcpy(sc, grp, sizeof sc);
                                    d += (double)xg[t * n + i] * ((const int8_t *)(grp + sizeof sc))[i % 32 * 32 + r] * sc[step ? i % 32 : r];
                                }
                                CHECK(fabs(d - g1[t * 32 + r]) <= 1e-5 * (n + 1), "ref gemm6x32_q8 step scales %d row %d token %d", step, r, t);
                            }
                    }
                free(wq);
                uint16_t *wb = malloc(32 * n * 2), *wp = malloc(32 * n * 2);
                for (int i = 0; i < 32 * n; i++) wb[i] = to_bf16(wt[i]);
                pack_bf16x32(wb, 32, n, wp);
                for (int acc = 0; acc < 2; acc++) {
                    for (int i = 0; i < 6 * 32; i++) g1[i] = g2[i] = 3.0f;
                    ref_gemm6x32_bf16x32(wp, xg, n, n, rows, acc, g1);
                    ks[k]->gemm6x32_bf16x32(wp, xg, n, n, rows, acc, g2);
                    check_tile(ks[k]->name, "gemm6x32_bf16x32", g1, g2, n, rows, acc, 3.0f);
                    /* the reference itself against a plain dot of the unpacked rows */
                    for (int t = 0; t < rows && !acc; t++)
                        for (int r = 0; r < 32; r++) {
                            double d = 0;
                            for (int i = 0; i < n; i++) d += (double)xg[t * n + i] * bf16_to_f32(wb[r * n + i]);
                            CHECK(fabs(d - g1[t * 32 + r]) <= 1e-5 * (n + 1), "ref gemm6x32_bf16x32 row %d token %d", r, t);
                        }
                }
                {   /* bf16 activations: the dot-product tile against its reference, the reference against
                       a double sum of the rounded activations (n odd: the last column pairs with zero) */
                    uint16_t *xb = malloc(6 * n * 2);
                    ref_f32_to_bf16_row(xg, xb, 6 * n);
                    for (int acc = 0; acc < 2; acc++) {
                        for (int i = 0; i < 6 * 32; i++) g1[i] = g2[i] = 3.0f;
                        ref_gemm6x32_bf16dp(wp, xb, n, n, rows, acc, g1);
                        if (ks[k]->gemm6x32_bf16dp) {
                            ks[k]->gemm6x32_bf16dp(wp, xb, n, n, rows, acc, g2);
                            check_tile(ks[k]->name, "gemm6x32_bf16dp", g1, g2, n, rows, acc, 3.0f);
                        }
                        for (int t = 0; t < rows && !acc; t++)
                            for (int r = 0; r < 32; r++) {
                                double d = 0;
                                for (int i = 0; i < n; i++) d += (double)bf16_to_f32(xb[t * n + i]) * bf16_to_f32(wb[r * n + i]);
                                CHECK(fabs(d - g1[t * 32 + r]) <= 1e-5 * (n + 1), "ref gemm6x32_bf16dp row %d token %d", r, t);
                            }
                    }
                    free(xb);
                }
                if (rows == 1) { /* two groups at once: the second one's rows in reverse order */
                    uint16_t *wr = malloc(32 * n * 2), *wp2 = malloc(32 * n * 2);
                    for (int r = 0; r < 32; r++) memcpy(wr + r * n, wb + (31 - r) * n, n * 2);
                    pack_bf16x32(wr, 32, n, wp2);
                    float two[64], one[64], ref2[64];
                    ref_gemm6x32_bf16x32(wp, xg, n, n, 1, false, one);
                    ref_gemm6x32_bf16x32(wp2, xg, n, n, 1, false, one + 32);
                    ks[k]->gemv2_bf16x32(wp, wp2, xg, n, two);
                    ref_gemv2_bf16x32(wp, wp2, xg, n, ref2);
                    for (int i = 0; i < 64; i++)
                        CHECK(fabsf(one[i] - two[i]) <= 1e-5f * (n + 1) && ref2[i] == one[i],
                              "%s gemv2_bf16x32 n=%d row %d", ks[k]->name, n, i);
                    for (int r = 0; r < 32; r++) CHECK(fabsf(two[32 + r] - two[31 - r]) <= 1e-5f * (n + 1), "%s gemv2_bf16x32 second group row %d", ks[k]->name, r);
                    /* four groups a stride apart (the two above, each twice, with a gap of 7 columns' worth between) */
                    int64_t stride = 32 * (int64_t)n + 32 * 7;
                    uint16_t *w4 = malloc((size_t)(4 * stride) * 2);
                    for (int g = 0; g < 4; g++) memcpy(w4 + g * stride, g % 2 ? wp2 : wp, 32 * n * 2);
                    float four[128], ref4[128];
                    ref_gemv4_bf16x32(w4, stride, xg, n, ref4);
                    for (int i = 0; i < 128; i++) CHECK(ref4[i] == one[i % 64], "ref gemv4_bf16x32 n=%d row %d", n, i);
                    if (ks[k]->gemv4_bf16x32) {
                        ks[k]->gemv4_bf16x32(w4, stride, xg, n, four);
                        for (int i = 0; i < 128; i++)
                            CHECK(fabsf(four[i] - one[i % 64]) <= 1e-5f * (n + 1) && four[i] == two[i % 64], "%s gemv4_bf16x32 n=%d row %d", ks[k]->name, n, i);
                    }
                    free(w4); free(wr); free(wp2);
                }
                free(wb); free(wp);
                for (int acc = 0; acc < 2; acc++) {
                    for (int i = 0; i < 6 * 32; i++) g1[i] = g2[i] = 42.0f;
                    ref_gemm6x32_f32(wt, xg, n, n, rows, acc, g1);
                    ks[k]->gemm6x32_f32(wt, xg, n, n, rows, acc, g2);
                    check_tile(ks[k]->name, "gemm6x32", g1, g2, n, rows, acc, 42.0f);
                }
            }
            free(wt); free(xg); free(g1); free(g2);
        }
    }
}

/* argmax against the plain loop (the first index of the largest; NaNs never win; 0 when all are
 * NaN or n < 1): the reference, every table's own (where it has one) and argmax_f32's dispatch,
 * across 1024-value blocks and their ragged ends, with ties (within a block and across blocks),
 * NaNs, infinities and signed zeros. */
static void test_argmax(void) {
    const dot_kernels *ks[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    static float x[151936];
    const int64_t sizes[] = { 0, 1, 2, 15, 16, 17, 63, 64, 65, 1023, 1024, 1025, 2049, 5000, 151936 };
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int rep = 0; rep < 4; rep++)
            for (int variant = 0; variant < 10; variant++) {
                int64_t n = sizes[si], a = n ? (rep * 7919 + 13) % n : 0, b = n ? (rep * 104729 + 7) % n : 0;
                for (int64_t i = 0; i < n; i++) {
                    x[i] = variant == 1 ? (float)(int)(frand() * 3) : frand() * 8; /* variant 1: many ties */
                    if (variant == 2 && i % 3 == 0) x[i] = NAN;
                    if (variant == 3) x[i] = i % 2 ? NAN : -INFINITY;
                    if (variant == 4) x[i] = NAN;
                    if (variant == 5 && i == n - 1) x[i] = 9.0f; /* the largest in the very last slot */
                    if (variant == 7) x[i] = -INFINITY;
                    if (variant == 8) x[i] = i % 2 ? 0.0f : -0.0f;
                }
                if (n && variant == 6) x[a] = x[b] = 100; /* a tie, anywhere */
                if (n && variant == 7) x[a] = NAN;        /* nothing above -inf */
                if (n && variant == 9) x[a] = INFINITY, x[b] = NAN;
                int64_t want = -1;
                for (int64_t i = 0; i < n; i++)
                    if (!isnan(x[i]) && (want < 0 || x[i] > x[want])) want = i;
                if (want < 0) want = 0;
                int64_t got = ref_argmax_f32(x, n);
                CHECK(got == want, "reference argmax n=%lld variant %d: %lld, want %lld", (long long)n, variant, (long long)got, (long long)want);
                got = argmax_f32(x, n);
                CHECK(got == want, "argmax_f32 n=%lld variant %d: %lld, want %lld", (long long)n, variant, (long long)got, (long long)want);
                for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
                    if (!dot_kernels_runnable(ks[k]) || !ks[k]->argmax) continue;
                    got = ks[k]->argmax(x, n);
                    CHECK(got == want, "%s argmax n=%lld variant %d: %lld, want %lld", ks[k]->name, (long long)n, variant, (long long)got,
                          (long long)want);
                }
            }
}

static void test_softmax_kernel(void) {
    const dot_kernels *ks[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
        if (!dot_kernels_runnable(ks[k])) continue;
        for (int n = 1; n < 300; n += n < 40 ? 1 : 13) { /* every length up to a decode block's 32 and beyond, then a sample */
            float a[301], b[301];
            for (int i = 0; i < n; i++) a[i] = b[i] = frand() * (i % 3 ? 8.0f : 60.0f); /* some weights underflow */
            b[n] = 12345.0f; /* past the end: untouched */
            float want = -INFINITY;
            for (int i = 0; i < n; i++) want = a[i] > want ? a[i] : want;
            /* a running max below every value (the chunk's own max wins) or above them (it stays) */
            float ma = n % 2 ? -INFINITY : want + 3.0f, mb = ma;
            want = n % 2 ? want : want + 3.0f;
            float sa = ref_exp_sum(a, n, &ma), sb = ks[k]->exp_sum(b, n, &mb);
            CHECK(ma == want && mb == want, "%s exp_sum n=%d: max %g / %g, want %g", ks[k]->name, n, ma, mb, want);
            CHECK(fabsf(sa - sb) <= 4e-7f * sa * (float)n, "%s exp_sum n=%d: %g vs %g", ks[k]->name, n, sa, sb);
            for (int i = 0; i < n; i++) CHECK(fabsf(a[i] - b[i]) <= 4e-7f * a[i] + 1e-37f, "%s exp_sum n=%d i=%d: %g vs %g", ks[k]->name, n, i, a[i], b[i]);
            CHECK(b[n] == 12345.0f, "%s exp_sum n=%d wrote past the end", ks[k]->name, n);
            CHECK(ks[k]->exp_sum(b, 0, &mb) == 0.0f && mb == want, "%s exp_sum of nothing", ks[k]->name);
            float g1[300], g2[300], u[300], w[300], o1[300], o2[300];
            for (int i = 0; i < n; i++) { g1[i] = g2[i] = frand() * (i % 4 ? 10.0f : 100.0f); u[i] = frand(); w[i] = frand(); }
            ref_swiglu(g1, u, n);
            ks[k]->swiglu(g2, u, n);
            for (int i = 0; i < n; i++) CHECK(fabsf(g1[i] - g2[i]) <= 4e-7f * fabsf(g1[i]) + 1e-37f, "%s swiglu n=%d i=%d: %g vs %g", ks[k]->name, n, i, g1[i], g2[i]);
            ref_rmsnorm(o1, u, w, n, 1e-6f);
            ks[k]->rmsnorm(o2, u, w, n, 1e-6f);
            for (int i = 0; i < n; i++) CHECK(fabsf(o1[i] - o2[i]) <= 2e-7f * fabsf(o1[i]), "%s rmsnorm n=%d i=%d: %g vs %g", ks[k]->name, n, i, o1[i], o2[i]);
            /* RoPE on n pairs (v[i], v[n + i]), angles cos cs[i], sin cs[n + i], then a scale: within
             * an ulp of the products' size (a fast path may fuse a product into the sum) */
            float r1[600], r2[600], cs[600], scale = n % 2 ? 1.0f : 0.0883883f;
            for (int i = 0; i < n; i++) {
                float angle = frand() * 7.0f;
                cs[i] = cosf(angle);
                cs[n + i] = sinf(angle);
                r1[i] = r2[i] = frand() * 20.0f;
                r1[n + i] = r2[n + i] = frand() * 20.0f;
            }
            float v0[600];
            memcpy(v0, r1, 2 * (size_t)n * sizeof(float));
            ref_rope(r1, cs, n, scale);
            ks[k]->rope(r2, cs, n, scale);
            for (int i = 0; i < 2 * n; i++) {
                int p = i % n;
                float size = (fabsf(v0[p]) + fabsf(v0[n + p])) * (fabsf(cs[p]) + fabsf(cs[n + p])) * scale; /* bounds either output's terms */
                CHECK(fabsf(r1[i] - r2[i]) <= 2.5e-7f * size + 1e-30f, "%s rope n=%d i=%d: %g vs %g", ks[k]->name, n, i, r1[i], r2[i]);
            }
        }
    }
}

/* The fast activation quantizer equals quantize_row_q8_0 bit for bit, ties and zeros included,
 * in groups of 16 blocks (AVX-512) and in the blocks left over (27 = 16 + 11 blocks). */
static void test_quantize_kernel(void) {
    enum { NB = 27, N = NB * 32 };
    const dot_kernels *ks[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
        if (!dot_kernels_runnable(ks[k])) continue;
        for (int rep = 0; rep < 200; rep++) {
            float x[N];
            block_q8_0 a[NB], b[NB];
            for (int i = 0; i < N; i++) x[i] = frand() * (rep % 7 + 1);
            if (rep % 3 == 0) /* every block's maximum 127, so the step is 1 and k + 0.5 values are exact ties */
                for (int i = 0; i < N; i++) x[i] = i % 32 ? (float)((i * 37 + rep) % 254 - 127) + 0.5f : 127.0f;
            for (int g = 0; g < 2; g++) { /* in the first 16 blocks and among the rest */
                int at = g * 16 * 32 + (rep % 4) * 32;
                if (rep % 5 == 0) for (int i = at; i < at + 32; i++) x[i] = 0; /* an all-zero block */
                if (rep % 11 == 0) for (int i = at + 32; i < at + 64; i++) x[i] *= 1e-6f; /* a scale that is subnormal in f16 */
                if (rep % 13 == 0) for (int i = at + 64; i < at + 96; i++) x[i] *= 3e6f; /* one beyond f16's range */
            }
            float ad[NB], as[NB], bd[NB], bs[NB];
            quantize_row_q8_0(x, a, N);
            q8_0_block_sums(a, NB, ad, as);
            ks[k]->quantize_q8_0(x, b, bd, bs, N);
            CHECK(!memcmp(a, b, sizeof a), "%s quantize_q8_0 rep %d", ks[k]->name, rep);
            for (int i = 0; i < NB; i++)
                CHECK(!memcmp(&ad[i], &bd[i], 4) && (!memcmp(&as[i], &bs[i], 4) || (isnan(as[i]) && isnan(bs[i]))),
                      "%s quantize_q8_0 block %d sums rep %d: %g %g vs %g %g", ks[k]->name, i, rep, ad[i], as[i], bd[i], bs[i]);
        }
    }
}

/* Interleaved groups dequantize like plain rows, and the two-group tile reads any two groups
 * (here the first and the last of three, as decode pairs them) for one token. */
static void test_interleaved_groups(void) {
    const dot_kernels *ks[] = { dot_kernels_ref(), dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    int nbs[] = { 1, 2, 5, 32 };
    for (size_t s = 0; s < sizeof nbs / sizeof *nbs; s++) {
        int nb = nbs[s], cols = nb * QK, rows = 48;
        float *wf = malloc((size_t)rows * cols * 4), *xf = malloc((size_t)cols * 4), *back = malloc((size_t)cols * 4), *plainb = malloc((size_t)cols * 4);
        for (int i = 0; i < rows * cols; i++) wf[i] = frand();
        for (int i = 0; i < cols; i++) xf[i] = frand() * 3;
        block_q8_0 *xq = malloc(nb * sizeof *xq);
        float xd[32], xs[32];
        quantize_row_q8_0(xf, xq, cols);
        q8_0_block_sums(xq, nb, xd, xs);
        for (int q = 0; q < 2; q++) {
            qdtype type = q ? QDT_Q4_0 : QDT_Q8_0;
            size_t rb = qdtype_row_bytes(type, cols);
            uint8_t *wi = malloc(rows * rb), *wp = malloc(rows * rb);
            REQUIRE(quantize_rows_f32(type, wf, rows, cols, true, wi) && quantize_rows_f32(type, wf, rows, cols, false, wp), "quantize");
            qtensor ti = { .dtype = type, .rows = rows, .cols = cols, .data = wi };
            CHECK(q_interleaved(&ti), "48 rows interleave");
            for (int r = 0; r < rows; r++) {
                dequantize_row(type, wp + r * rb, plainb, cols);
                qtensor_row_f32(&ti, r, back);
                CHECK(!memcmp(back, plainb, (size_t)cols * 4), "%s row %d: interleaved and plain rows dequantize alike", qdtype_name(type), r);
            }
            for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
                if (!dot_kernels_runnable(ks[k])) continue;
                float out[2 * QROWS];
                (q ? ks[k]->gemm_q4_0_x16 : ks[k]->gemm_q8_0_x16)(wi, wi + (size_t)2 * QROWS * rb, xq, xd, xs, nb, nb, 1, out);
                for (int i = 0; i < 2 * QROWS; i++) {
                    int r = i < QROWS ? i : 2 * QROWS + i - QROWS;
                    const void *row = wp + (size_t)r * rb;
                    float want = q ? ref_dot_q4_0(row, xq, NULL, NULL, nb) : ref_dot_q8_0(row, xq, NULL, NULL, nb);
                    CHECK(fabsf(out[i] - want) <= 1e-4f * (fabsf(want) + 1), "%s two groups %s nb=%d row %d: %g vs %g", ks[k]->name,
                          qdtype_name(type), nb, r, out[i], want);
                }
            }
            free(wi); free(wp);
        }
        free(wf); free(xf); free(back); free(plainb); free(xq);
    }
}

/* The quantized prefill tile against the reference row dots, for every token count and for a
 * lone last group (g1 == g0). */
static void test_quant_gemm_tile(void) {
    const dot_kernels *ks[] = { dot_kernels_ref(), dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    int nbs[] = { 1, 3, 8 };
    for (size_t s = 0; s < sizeof nbs / sizeof *nbs; s++) {
        int nb = nbs[s], cols = nb * QK;
        float *wf = malloc((size_t)32 * cols * 4), *xf = malloc((size_t)6 * cols * 4);
        for (int i = 0; i < 32 * cols; i++) wf[i] = frand();
        for (int i = 0; i < 6 * cols; i++) xf[i] = frand() * 2;
        block_q8_0 *xq = malloc(6 * nb * sizeof *xq);
        float *xd = malloc(6 * nb * 4), *xs = malloc(6 * nb * 4);
        for (int t = 0; t < 6; t++) quantize_row_q8_0(xf + t * cols, xq + t * nb, cols);
        q8_0_block_sums(xq, 6 * nb, xd, xs);
        for (int q = 0; q < 2; q++) {
            qdtype type = q ? QDT_Q4_0 : QDT_Q8_0;
            size_t rb = qdtype_row_bytes(type, cols);
            uint8_t *wq = malloc((size_t)32 * rb);
            REQUIRE(quantize_rows_f32(type, wf, 32, cols, true, wq), "quantize");
            qtensor w = { .dtype = type, .rows = 32, .cols = cols, .data = wq };
            for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
                if (!dot_kernels_runnable(ks[k])) continue;
                for (int rows = 1; rows <= 6; rows++)
                    for (int lone = 0; lone < 2; lone++) {
                        float out[192];
                        for (int i = 0; i < 192; i++) out[i] = 42.0f;
                        const uint8_t *g1 = lone ? wq : wq + QROWS * rb;
                        (q ? ks[k]->gemm_q4_0_x16 : ks[k]->gemm_q8_0_x16)(wq, g1, xq, xd, xs, nb, nb, rows, out);
                        for (int t = 0; t < 6; t++)
                            for (int r = 0; r < 32; r++) {
                                if (t >= rows) { CHECK(out[t * 32 + r] == 42.0f, "%s gemm_q tile writes past its rows", ks[k]->name); continue; }
                                float want = ref_row_dot_q(&w, lone && r >= QROWS ? r - QROWS : r, xq + t * nb);
                                CHECK(fabsf(out[t * 32 + r] - want) <= 1e-4f * (fabsf(want) + 1), "%s gemm_q %s nb=%d rows=%d lone=%d: %g vs %g",
                                      ks[k]->name, qdtype_name(type), nb, rows, lone, out[t * 32 + r], want);
                            }
                    }
            }
            free(wq);
        }
        free(wf); free(xf); free(xq); free(xd); free(xs);
    }
}

/* The four-group tiles (planar decode) against the reference row dots, groups anywhere, and
 * against the two-group tiles bit for bit. */
static void test_gemv4_q(void) {
    const dot_kernels *ks[] = { dot_kernels_avx2(), dot_kernels_avx512(), dot_kernels_avxvnni(), dot_kernels_neon(), dot_kernels_neon_dotprod() };
    int nbs[] = { 1, 3, 37 };
    for (size_t n = 0; n < sizeof nbs / sizeof *nbs; n++)
        for (int q = 0; q < 2; q++) {
            qdtype type = q ? QDT_Q4_0 : QDT_Q8_0;
            int nb = nbs[n], cols = nb * QK, rows = 4 * QROWS;
            size_t rb = qdtype_row_bytes(type, cols);
            float *wf = malloc((size_t)rows * cols * 4), *xf = malloc((size_t)cols * 4), *xd = malloc((size_t)nb * 4), *xs = malloc((size_t)nb * 4);
            for (int i = 0; i < rows * cols; i++) wf[i] = frand();
            for (int i = 0; i < cols; i++) xf[i] = frand() * 2;
            block_q8_0 *xq = malloc((size_t)nb * sizeof *xq);
            quantize_row_q8_0(xf, xq, cols);
            q8_0_block_sums(xq, nb, xd, xs);
            uint8_t *wq = malloc((size_t)rows * rb);
            REQUIRE(quantize_rows_f32(type, wf, rows, cols, true, wq), "quantize");
            qtensor w = { .dtype = type, .rows = rows, .cols = cols, .data = wq };
            const uint8_t *g[4] = { wq + 2 * QROWS * rb, wq, wq + 3 * QROWS * rb, wq + QROWS * rb }; /* out of order: anywhere */
            const int first[4] = { 2 * QROWS, 0, 3 * QROWS, QROWS };
            float out[4 * QROWS];
            (q ? ref_gemv4_q4_0 : ref_gemv4_q8_0)(g, xq, xd, xs, nb, out);
            for (int i = 0; i < 4 * QROWS; i++)
                CHECK(out[i] == ref_row_dot_q(&w, first[i / QROWS] + i % QROWS, xq), "reference gemv4 %s nb=%d row %d", qdtype_name(type), nb, i);
            for (int k = 0; k < (int)(sizeof ks / sizeof *ks); k++) {
                void (*tile)(const uint8_t *const *, const block_q8_0 *, const float *, const float *, int64_t, float *) =
                    dot_kernels_runnable(ks[k]) ? (q ? ks[k]->gemv4_q4_0 : ks[k]->gemv4_q8_0) : NULL;
                if (!tile) continue;
                float got[4 * QROWS], pair[2 * QROWS];
                tile(g, xq, xd, xs, nb, got);
                for (int i = 0; i < 4 * QROWS; i++) {
                    float want = ref_row_dot_q(&w, first[i / QROWS] + i % QROWS, xq);
                    CHECK(fabsf(got[i] - want) <= 1e-4f * (fabsf(want) + 1), "%s gemv4 %s nb=%d row %d: %g vs %g", ks[k]->name, qdtype_name(type), nb, i,
                          got[i], want);
                }
                for (int p = 0; p < 4; p += 2) { /* the two-group tile's sums, bit for bit (planar and contiguous logits agree) */
                    (q ? ks[k]->gemm_q4_0_x16 : ks[k]->gemm_q8_0_x16)(g[p], g[p + 1], xq, xd, xs, nb, nb, 1, pair);
                    CHECK(!memcmp(pair, got + p * QROWS, sizeof pair), "%s gemv4 %s nb=%d: groups %d-%d differ from the two-group tile", ks[k]->name,
                          qdtype_name(type), nb, p, p + 1);
                }
            }
            free(wf); free(xf); free(xd); free(xs); free(xq); free(wq);
        }
}

/* A Q8_0 or Q4_0 matrix in planes (the layout model.c makes for a pool of `threads`) multiplies, reads
 * back and copies out exactly as the same matrix contiguous, one token (the four-group tile where
 * the table has it) and several (prefill, through q_row). */
static void test_planar_matrix(thread_pool *pool, qdtype type) {
    int threads = thread_pool_size(pool), nb = 5, cols = nb * QK, rows = PLANE_STREAMS * threads * QROWS * 3;
    size_t rb = qdtype_row_bytes(type, cols), piece_bytes = (size_t)rows / (PLANE_STREAMS * threads) * rb, gap = piece_bytes + 4096;
    float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)7 * cols * 4), *y1 = malloc((size_t)7 * rows * 4), *y2 = malloc((size_t)7 * rows * 4);
    float *r1 = malloc((size_t)cols * 4), *r2 = malloc((size_t)cols * 4);
    for (int i = 0; i < rows * cols; i++) wf[i] = frand();
    for (int i = 0; i < 7 * cols; i++) x[i] = frand() * 2;
    uint8_t *wc = malloc((size_t)rows * rb), *planes = calloc((size_t)PLANE_STREAMS * threads, gap), *back = malloc((size_t)rows * rb);
    REQUIRE(quantize_rows_f32(type, wf, rows, cols, true, wc), "quantize");
    qtensor c = { .dtype = type, .rows = rows, .cols = cols, .data = wc };
    qtensor p = { .dtype = type, .rows = rows, .cols = cols, .data = planes, .piece_rows = rows / (PLANE_STREAMS * threads), .piece_threads = threads, .plane_gap = gap };
    for (int64_t r = 0; r < rows; r += p.piece_rows) memcpy((void *)q_row(&p, r, rb), wc + (size_t)r * rb, piece_bytes);
    int64_t k = rows / p.piece_rows - 1; /* the last piece: stream 3 of the last thread, plane 4 * threads - 1 */
    CHECK(q_row(&p, k * p.piece_rows, rb) == planes + (size_t)(PLANE_STREAMS * threads - 1) * gap, "the last piece's plane");
    workspace ws = { 0 };
    for (int T = 1; T <= 7; T += 6) {
        matmul(pool, &ws, y1, x, T, &c, NULL);
        matmul(pool, &ws, y2, x, T, &p, NULL);
        CHECK(!memcmp(y1, y2, (size_t)T * rows * 4), "planar %s matmul, %d token(s), differs from contiguous", qdtype_name(type), T);
    }
    matmul_multi(pool, &ws, x, 1, 2, (matmul_out[]){ { y1, &c, NULL }, { y1 + rows, &c, NULL } });
    matmul_multi(pool, &ws, x, 1, 2, (matmul_out[]){ { y2, &p, NULL }, { y2 + rows, &p, NULL } });
    CHECK(!memcmp(y1, y2, (size_t)2 * rows * 4), "planar matrices in one loop (in sections) differ from contiguous");
    for (int r = 0; r < rows; r += 7) {
        qtensor_row_f32(&c, r, r1);
        qtensor_row_f32(&p, r, r2);
        CHECK(!memcmp(r1, r2, (size_t)cols * 4), "planar row %d reads back differently", r);
    }
    qtensor_read(&p, 0, (size_t)rows * rb, back);
    CHECK(!memcmp(back, wc, (size_t)rows * rb), "planar matrix copied out differs from contiguous");
    qtensor_read(&p, piece_bytes - 100, 300, back);
    CHECK(!memcmp(back, wc + piece_bytes - 100, 300), "planar bytes across a piece boundary");
    workspace_free(&ws);
    free(wf); free(x); free(y1); free(y2); free(r1); free(r2); free(wc); free(planes); free(back);
}

static void test_small_ops(void) {
    float x[5] = { 1, -2, 3, -4, 5 }, w[5] = { 1, 1, 1, 1, 2 }, out[5];
    rmsnorm(out, x, w, 5, 0);
    double rms = sqrt((1 + 4 + 9 + 16 + 25) / 5.0);
    CHECK(fabs(out[4] - 2 * 5 / rms) < 1e-5 && fabs(out[1] + 2 / rms) < 1e-5, "rmsnorm");
    float p[3] = { 1, 2, 3 };
    softmax(p, 3);
    CHECK(fabs(p[0] + p[1] + p[2] - 1) < 1e-6 && p[2] > p[1] && p[1] > p[0], "softmax");
    CHECK(f16_to_f32(0x3C00) == 1.0f && f16_to_f32(0xC000) == -2.0f && f16_to_f32(0x0001) > 0, "f16 conversion");
    CHECK(bf16_to_f32(0x3F80) == 1.0f, "bf16 conversion");
}

int main(void) {
    test_dot_tables();
    test_quant_dots();
    /* QWENC_TEST_THREADS=1 runs the pool inline (for emulators whose threads hang: qemu-user here) */
    const char *threads = getenv("QWENC_TEST_THREADS");
    thread_pool *pool = thread_pool_new(threads && atoi(threads) > 0 ? atoi(threads) : 3);
    test_matmul(pool);
    test_matmul(NULL);
    test_matmul_grouped(pool);
    test_matmul_grouped(NULL);
    for (int q = 0; q < 2; q++) {
        test_planar_matrix(pool, q ? QDT_Q4_0 : QDT_Q8_0);
        test_planar_matrix(NULL, q ? QDT_Q4_0 : QDT_Q8_0);
    }
    thread_pool_free(pool);
    test_small_ops();
    test_axpy_convert_gemm();
    test_softmax_kernel();
    test_argmax();
    test_quantize_kernel();
    test_interleaved_groups();
    test_quant_gemm_tile();
    test_gemv4_q();
    return test_finish("kernels");
}
