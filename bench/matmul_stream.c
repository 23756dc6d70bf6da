/* bench_matmul_stream: how fast a decode step's matrix-vector products alone stream a model's
 * weights: every layer's q/k/v, o, gate/up and down products for one token, as model_forward
 * calls them (the same pool loops, the same kernels), then the output head; no attention, norms
 * or sampling. Prints the median GB/s of the weight bytes over the repetitions (rounds of 16 steps),
 * beside the median of `qwenc bench`'s bandwidth probe run between them (this VM's bandwidth moves from minute to
 * minute, so only figures from the same run compare). With --layers N only the first N layers run,
 * over and over, and the probes follow them (a slice small enough for the caches shows the
 * kernels' own ceiling).
 * With --few each step runs the same products in 3 pool loops instead of one or three a matrix:
 * every matrix of a width (q, k, v, gate, up and the head; o; down) in one loop, their order and
 * the activations as before (the products' dependencies ignored: a bound on what the loops'
 * hand-offs cost). --ab alternates the two step by step in one process (the VM's bandwidth moves
 * too much between runs) and prints the median of the few / usual ratios instead.
 *   bench_matmul_stream MODEL_DIR [--quant q8|q4] [-t THREADS] [-r REPS] [--layers N] [--few | --ab] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"
#include "base/bwprobe.h"
#include "base/clock.h"
#include "model/model.h"

enum { STEPS = 16 }; /* steps a round, between two probes (as `qwenc bench` probes after 16 tokens) */

static int usage(void) {
    fprintf(stderr, "usage: bench_matmul_stream MODEL_DIR [--quant q8|q4] [-t THREADS] [-r REPS] [--layers N] [--few | --ab]\n");
    return 2;
}

/* A step's products as model_forward runs them: q/k/v in one loop, o, gate/up in one, down, the head. */
static void step_usual(qwen_model *m, workspace *ws, const float *x, float *const y[3], int L, bool head) {
    for (int l = 0; l < L; l++) {
        const layer_weights *w = &m->layers[l];
        matmul_multi(m->pool, ws, x, 1, 3, (matmul_out[]){ { y[0], &w->wq, w->bq }, { y[1], &w->wk, w->bk }, { y[2], &w->wv, w->bv } });
        matmul(m->pool, ws, y[0], x, 1, &w->wo, NULL);
        matmul_multi(m->pool, ws, x, 1, 2, (matmul_out[]){ { y[0], &w->gate, NULL }, { y[1], &w->up, NULL } });
        matmul(m->pool, ws, y[0], x, 1, &w->down, NULL);
    }
    if (head) matmul(m->pool, ws, y[0], x, 1, &m->lm_head, NULL);
}

/* The same products in three loops, one a width: groups[0 .. n[0]) the hidden-wide matrices,
 * then n[1] o projections, then n[2] down projections. */
static void step_few(qwen_model *m, workspace *ws, const float *x, const matmul_group *groups, const int n[3]) {
    for (int k = 0, at = 0; k < 3; at += n[k++]) matmul_grouped(m->pool, ws, x, 1, n[k], groups + at);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *quant = NULL;
    int threads = 0, reps = 10, layers = 0;
    bool few = false, ab = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quant") && i + 1 < argc) quant = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--few")) few = true;
        else if (!strcmp(argv[i], "--ab")) ab = true;
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
    /* --few / --ab: the groups of the three loops (see step_few), each product into its own rows of `out` */
    matmul_group *groups = calloc(7 * (size_t)L + 1, sizeof *groups);
    const qtensor **mats = calloc(7 * (size_t)L + 1, sizeof *mats);
    double *ratio = ab ? calloc((size_t)reps * STEPS, sizeof *ratio) : NULL;
    if (!groups || !mats || (ab && !ratio)) {
        fprintf(stderr, "bench_matmul_stream: out of memory\n");
        return 1;
    }
    int n[3] = { 0, 0, 0 }, g = 0;
    for (int l = 0; l < L; l++) {
        const layer_weights *w = &m->layers[l];
        const qtensor *wide[] = { &w->wq, &w->wk, &w->wv, &w->gate, &w->up };
        for (int i = 0; i < 5; i++) mats[g++] = wide[i], n[0]++;
    }
    if (head) mats[g++] = &m->lm_head, n[0]++;
    for (int l = 0; l < L; l++) mats[g++] = &m->layers[l].wo, n[1]++;
    for (int l = 0; l < L; l++) mats[g++] = &m->layers[l].down, n[2]++;
    size_t out_rows = 0;
    for (int i = 0; i < g; i++) out_rows += (size_t)mats[i]->rows;
    float *out = calloc(out_rows, sizeof *out), *o = out;
    if (!out) {
        fprintf(stderr, "bench_matmul_stream: out of memory\n");
        return 1;
    }
    for (int i = 0; i < g; o += mats[i++]->rows) groups[i] = (matmul_group){ 0, 1, mats[i], o };
    if (ab) { /* usual and few in alternate steps, the order swapped from pair to pair */
        int pairs = reps * STEPS;
        for (int i = -4; i < pairs; i++) {
            double t[2];
            for (int k = 0; k < 2; k++) {
                int v = (i + k) & 1;
                double t0 = clock_seconds();
                if (v) step_few(m, &ws, x, groups, n);
                else step_usual(m, &ws, x, y, L, head);
                t[v] = clock_seconds() - t0;
            }
            if (i >= 0) ratio[i] = t[1] / t[0];
        }
        qsort(ratio, (size_t)pairs, sizeof *ratio, compare_doubles);
        printf("%s: %d of %d layers%s: steps in 3 loops / as the decode runs them: median %.4f of %d pairs (quartiles %.4f, %.4f)\n",
               qwen_model_describe(m), L, c->n_layers, head ? " and the head" : "", ratio[pairs / 2], pairs, ratio[pairs / 4],
               ratio[3 * pairs / 4]);
    }
    for (int r = -2; !ab && r < reps; r++) { /* two untimed rounds first; a round: STEPS steps back to back, as a decode runs them */
        double t0 = clock_seconds();
        for (int step = 0; step < STEPS; step++) {
            if (few) step_few(m, &ws, x, groups, n);
            else step_usual(m, &ws, x, y, L, head);
        }
        double t1 = clock_seconds();
        if (r >= 0) {
            times[r] = (t1 - t0) / STEPS;
            if (head) reads[r] = bw_probe_between(&probe); /* a slice (--layers) stays in the caches */
        }
    }
    if (!ab) {
        for (int r = 0; !head && r < reps; r++) reads[r] = bw_probe_between(&probe); /* then the probes, for the slice */
        qsort(times, (size_t)reps, sizeof *times, compare_doubles);
        qsort(reads, (size_t)reps, sizeof *reads, compare_doubles);
        double gbs = (double)bytes / times[reps / 2] / 1e9, probe_gbs = reads[reps / 2];
        printf("%s: %d of %d layers%s%s, %.1f MB of weights a step: median %.3f ms = %.1f GB/s; probe between them (median) %.1f GB/s (%.0f%%)\n",
               qwen_model_describe(m), L, c->n_layers, head ? " and the head" : "", few ? " in 3 loops" : "", (double)bytes / 1e6,
               times[reps / 2] * 1e3, gbs, probe_gbs, 100 * gbs / probe_gbs);
    }
    free(x), free(y[0]), free(y[1]), free(y[2]), free(times), free(reads);
    free(groups);
    free(mats);
    free(out);
    free(ratio);
    bw_probe_close(&probe);
    workspace_free(&ws);
    qwen_model_close(m);
    return 0;
}
