/* bench_matmul_stream: how fast a decode step's matrix-vector products alone stream a model's
 * weights: every layer's q/k/v, o, gate/up and down products for one token, as model_forward
 * calls them (the same pool loops, the same kernels), then the output head; no attention, norms
 * or sampling. Prints the median GB/s of the weight bytes over the repetitions (rounds of 16 steps),
 * beside the median of `qwenc bench`'s bandwidth probe run between them (this VM's bandwidth moves from minute to
 * minute, so only figures from the same run compare). With --layers N only the first N layers run,
 * over and over, and the probes follow them (a slice small enough for the caches shows the
 * kernels' own ceiling).
 *   bench_matmul_stream MODEL_DIR [--quant q8|q4] [-t THREADS] [-r REPS] [--layers N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"
#include "base/bwprobe.h"
#include "base/clock.h"
#include "model/model.h"

enum { STEPS = 16 }; /* steps a round, between two probes (as `qwenc bench` probes after 16 tokens) */

static int usage(void) {
    fprintf(stderr, "usage: bench_matmul_stream MODEL_DIR [--quant q8|q4] [-t THREADS] [-r REPS] [--layers N]\n");
    return 2;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *quant = NULL;
    int threads = 0, reps = 10, layers = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quant") && i + 1 < argc) quant = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage();
    }
    if (!dir || reps < 1 || reps > 10000) return usage();
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = threads, .quant = quant }, &err);
    if (!m) {
        fprintf(stderr, "bench_matmul_stream: %s\n", qwen_error_message(err));
        return 1;
    }
    const model_config *c = &m->cfg;
    if (c->n_experts) {
        fprintf(stderr, "bench_matmul_stream: dense models only (this one routes its tokens to experts)\n");
        return 1;
    }
    int L = layers > 0 && layers < c->n_layers ? layers : c->n_layers;
    bool head = L == c->n_layers;
    size_t width = (size_t)c->vocab + (size_t)c->ffn_scratch + (size_t)c->n_heads * (size_t)c->head_dim + (size_t)c->hidden;
    float *x = calloc(width, sizeof *x), *y[3] = { calloc(width, sizeof(float)), calloc(width, sizeof(float)), calloc(width, sizeof(float)) };
    double *times = calloc((size_t)reps, sizeof *times), *reads = calloc((size_t)reps, sizeof *reads);
    bw_probe probe = { 0 };
    if (!x || !y[0] || !y[1] || !y[2] || !times || !reads || !bw_probe_open(&probe, threads, NULL)) {
        fprintf(stderr, "bench_matmul_stream: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < width; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    size_t bytes = head ? qtensor_bytes(&m->lm_head) : 0;
    for (int l = 0; l < L; l++) {
        const layer_weights *w = &m->layers[l];
        const qtensor *ts[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->gate, &w->up, &w->down };
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) bytes += qtensor_bytes(ts[i]);
    }
    workspace ws = { 0 };
    for (int r = -2; r < reps; r++) { /* two untimed rounds first; a round: STEPS steps back to back, as a decode runs them */
        double t0 = clock_seconds();
        for (int step = 0; step < STEPS; step++) {
            for (int l = 0; l < L; l++) {
                const layer_weights *w = &m->layers[l];
                matmul_multi(m->pool, &ws, x, 1, 3, (matmul_out[]){ { y[0], &w->wq, w->bq }, { y[1], &w->wk, w->bk }, { y[2], &w->wv, w->bv } });
                matmul(m->pool, &ws, y[0], x, 1, &w->wo, NULL);
                matmul_multi(m->pool, &ws, x, 1, 2, (matmul_out[]){ { y[0], &w->gate, NULL }, { y[1], &w->up, NULL } });
                matmul(m->pool, &ws, y[0], x, 1, &w->down, NULL);
            }
            if (head) matmul(m->pool, &ws, y[0], x, 1, &m->lm_head, NULL);
        }
        double t1 = clock_seconds();
        if (r >= 0) {
            times[r] = (t1 - t0) / STEPS;
            if (head) reads[r] = bw_probe_between(&probe); /* a slice (--layers) stays in the caches */
        }
    }
    for (int r = 0; !head && r < reps; r++) reads[r] = bw_probe_between(&probe); /* then the probes, for the slice */
    qsort(times, (size_t)reps, sizeof *times, compare_doubles);
    qsort(reads, (size_t)reps, sizeof *reads, compare_doubles);
    double gbs = (double)bytes / times[reps / 2] / 1e9, probe_gbs = reads[reps / 2];
    printf("%s: %d of %d layers%s, %.1f MB of weights a step: median %.3f ms = %.1f GB/s; probe between them (median) %.1f GB/s (%.0f%%)\n",
           qwen_model_describe(m), L, c->n_layers, head ? " and the head" : "", (double)bytes / 1e6, times[reps / 2] * 1e3, gbs, probe_gbs,
           100 * gbs / probe_gbs);
    bw_probe_close(&probe);
    workspace_free(&ws);
    qwen_model_close(m);
    return 0;
}
