/* bench_planes_ab: planar Q4_0 weights (see PLANE_STREAMS in src/tensor/tensor.h) against the same
 * weights contiguous, in one process: the model is opened twice, once with QWENC_NO_PLANES set,
 * and the two sessions' decode steps alternate token by token, so that both meet the same moments
 * of the machine (this VM's bandwidth moves from minute to minute; whole processes minutes apart
 * do not compare). A step's place in its pair moves its time by ~15% here, so the order alternates
 * from pair to pair and the figure is the geometric middle of the two orders' median ratios, beside
 * the ratio of the mean step times. Checks that both give the same logits, bit for bit.
 *   bench_planes_ab MODEL_DIR [-n STEPS] [-d DEPTH] [-t THREADS] [--quant q4_0] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"
#include "base/clock.h"

static int usage(FILE *to, int status) {
    fprintf(to, "usage: bench_planes_ab MODEL_DIR [-n STEPS] [-d DEPTH] [-t THREADS] [--quant q4_0]\n"
                    "  decode steps of the model with its Q4_0 weights in planes against the same weights contiguous,\n"
                    "  alternating in one process; DEPTH positions of context first (default 0)\n");
    return status;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *quant = "q4_0";
    int steps = 256, depth = 0, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) depth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quant") && i + 1 < argc) quant = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage(stderr, 2);
    }
    if (!dir || steps < 2 || steps > 100000 || depth < 0 || depth > 100000) return usage(stderr, 2);
    qwen_model *m[2] = { NULL, NULL }; /* 0: contiguous, 1: planes */
    qwen_session *s[2] = { NULL, NULL };
    qwen_error *err = NULL;
    for (int v = 0; v < 2; v++) {
        if (v == 0) setenv("QWENC_NO_PLANES", "1", 1);
        m[v] = qwen_model_open(dir, &(qwen_model_opts){ .threads = threads, .quant = quant }, &err);
        unsetenv("QWENC_NO_PLANES");
        if (m[v]) s[v] = qwen_session_new(m[v], depth + steps + 8, &err);
        if (!s[v]) {
            fprintf(stderr, "bench_planes_ab: %s\n", qwen_error_message(err));
            return 1;
        }
        printf("%s: %s\n", v ? "planes    " : "contiguous", qwen_model_describe(m[v]));
    }
    int vocab = qwen_model_vocab_size(m[0]);
    float *logits[2] = { malloc((size_t)vocab * sizeof(float)), malloc((size_t)vocab * sizeof(float)) };
    int32_t *prompt = malloc(((size_t)depth + 1) * sizeof *prompt);
    double *ratio[2] = { malloc((size_t)steps * sizeof(double)), malloc((size_t)steps * sizeof(double)) }, total[2] = { 0, 0 };
    if (!logits[0] || !logits[1] || !prompt || !ratio[0] || !ratio[1]) return 1;
    for (int i = 0; i <= depth; i++) prompt[i] = (int32_t)((i * 7919) % (vocab < 150000 ? vocab : 150000));
    int32_t next[2];
    for (int v = 0; v < 2; v++) {
        if (qwen_session_forward(s[v], prompt, (size_t)depth + 1, logits[v], false, &err)) {
            fprintf(stderr, "bench_planes_ab: %s\n", qwen_error_message(err));
            return 1;
        }
        next[v] = argmax(logits[v], vocab);
    }
    bool same = !memcmp(logits[0], logits[1], (size_t)vocab * sizeof(float));
    int n[2] = { 0, 0 };
    for (int i = 0; i < steps; i++) {
        int first = i % 2; /* which variant runs first in this pair */
        double t[2];
        for (int k = 0; k < 2; k++) {
            int v = k ? 1 - first : first;
            double t0 = clock_seconds();
            if (qwen_session_forward(s[v], &next[v], 1, logits[v], false, &err)) {
                fprintf(stderr, "bench_planes_ab: %s\n", qwen_error_message(err));
                return 1;
            }
            t[v] = clock_seconds() - t0;
            total[v] += t[v];
        }
        ratio[first][n[first]++] = t[1] / t[0];
        same = same && !memcmp(logits[0], logits[1], (size_t)vocab * sizeof(float));
        next[0] = argmax(logits[0], vocab);
        next[1] = argmax(logits[1], vocab);
    }
    for (int k = 0; k < 2; k++) qsort(ratio[k], (size_t)n[k], sizeof(double), compare_doubles);
    double a = ratio[1][n[1] / 2], b = ratio[0][n[0] / 2];
    printf("%d steps after %d positions: planes / contiguous %.4f (medians %.4f with planes first, %.4f second); mean step %.3f / %.3f ms = "
           "%.4f; logits %s\n",
           steps, depth, sqrt(a * b), a, b, total[1] / steps * 1e3, total[0] / steps * 1e3, total[1] / total[0],
           same ? "the same, bit for bit" : "DIFFER");
    for (int v = 0; v < 2; v++) {
        qwen_session_free(s[v]);
        qwen_model_close(m[v]);
        free(logits[v]);
        free(ratio[v]);
    }
    free(prompt);
    return same ? 0 : 1;
}
