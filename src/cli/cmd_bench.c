/* qwenc bench: prompt processing (pp) and generation (tg) speed, time to first token, peak RSS,
 * and decode bandwidth against the machine's measured memory bandwidth. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "base/bigmem.h"
#include "base/clock.h"
#include "base/threads.h"
#include "tensor/tensor.h"

typedef struct bw_job { const float *buf; size_t per_thread; float sink[64]; } bw_job;

/* Thread i reads its own slice once, as two sequential streams (a dot product of its halves). */
static void bw_read(void *ctx, int i, int thread_index) {
    bw_job *j = ctx;
    const float *p = j->buf + (size_t)i * j->per_thread;
    size_t half = j->per_thread / 2;
    j->sink[thread_index % 64] += dot_kernels_best()->dot_f32(p, p + half, (int64_t)half);
}

/* The memory-bandwidth probe: a 1 GiB buffer (on huge pages where the kernel gives them) and a
 * pool of the bench's threads. */
typedef struct bw_probe { float *buf; size_t n; thread_pool *pool; } bw_probe;

static bool bw_probe_open(bw_probe *p, int threads) {
    p->n = (size_t)1 << 28; /* floats */
    p->buf = big_alloc(p->n * sizeof *p->buf);
    p->pool = p->buf ? thread_pool_new(threads) : NULL;
    if (!p->pool) { big_free(p->buf, p->n * sizeof *p->buf); return false; }
    for (size_t i = 0; i < p->n; i++) p->buf[i] = (float)(i & 7);
    return true;
}

static void bw_probe_close(bw_probe *p) {
    thread_pool_free(p->pool);
    big_free(p->buf, p->n * sizeof *p->buf);
}

/* Read bandwidth in GB/s, every thread streaming its slice of the buffer 8 times: the best of
 * the 8 (returned; the figure decode is measured against, as STREAM reports its best rate) and,
 * in *mean, all 8 together (a sustained read: 4-10% lower on this VM). */
static double bw_probe_run(bw_probe *p, double *mean) {
    int parts = thread_pool_size(p->pool);
    bw_job j = { p->buf, p->n / (size_t)parts, { 0 } };
    double best = 1e9, total = 0, bytes = (double)(p->n / (size_t)parts * (size_t)parts) * sizeof *p->buf;
    for (int r = 0; r < 8; r++) {
        double t0 = clock_seconds();
        thread_pool_run(p->pool, parts, bw_read, &j);
        double dt = clock_seconds() - t0;
        if (dt < best) best = dt;
        total += dt;
    }
    *mean = 8 * bytes / total / 1e9;
    return bytes / best / 1e9;
}

/* Resident memory that is not a mapped file (KV cache, scratch, tables), in MB, from /proc. */
static double anon_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kb = atof(line + 8);
    if (f) fclose(f);
    return kb / 1024.0;
}

static void bench_usage(FILE *f) {
    fprintf(f, "usage: qwenc bench -m MODEL [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS] [--quant q8|q4] [--kv-type f32|f16|q8_0] [--mmap] [--bf16-prefill] [--json]\n\n"
               "Prefills a random prompt of -p tokens in one batch (pp), then decodes -n tokens (tg) after\n"
               "DEPTH positions of context: by default the prompt's; -d 0 decodes from an empty context, as\n"
               "llama-bench's tg does (a longer depth is prefilled, untimed, after the prompt).\n"
               "Reports the best of -r repetitions (default 2): tokens/s, time to first token, peak RSS, and\n"
               "the GB/s a decode step reads (weights and KV cache) against the memory bandwidth, probed (all\n"
               "threads reading 1 GiB, 8 times) right after each repetition: the probe beside the fastest\n"
               "decode, its best read (and the 8 reads' mean rate, a sustained read, beside it).\n"
               "--json prints one JSON line instead.\n\n" CLI_MMAP_HELP CLI_PREFILL_HELP
               "\nThe kernels are the widest this CPU runs (the model line names them); the environment\n"
               "variable QWENC_KERNELS=avx2, avx2+vnni, neon or reference measures a narrower table instead.\n");
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *v, *quant = NULL, *kv_type = NULL;
    int pp = 512, tg = 128, depth = 0, threads = 0, reps = 2;
    bool depth_given = false;
    bool json = false, mmap = false, bf16_prefill = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { bench_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "-m", &model) || cli_flag_value(argc, argv, &i, "--quant", &quant) ||
                 cli_flag_value(argc, argv, &i, "--kv-type", &kv_type)) {}
        else if (cli_flag_value(argc, argv, &i, "-p", &v)) pp = cli_int("-p", v);
        else if (cli_flag_value(argc, argv, &i, "-n", &v)) tg = cli_int("-n", v);
        else if (cli_flag_value(argc, argv, &i, "-d", &v)) depth = cli_int("-d", v), depth_given = true;
        else if (cli_flag_value(argc, argv, &i, "-t", &v)) threads = cli_int("-t", v);
        else if (cli_flag_value(argc, argv, &i, "-r", &v)) reps = cli_int("-r", v);
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--mmap")) mmap = true;
        else if (!strcmp(argv[i], "--bf16-prefill")) bf16_prefill = true;
        else { fprintf(stderr, "qwenc bench: unknown option '%s'\n", argv[i]); bench_usage(stderr); return 2; }
    }
    if (!depth_given) depth = pp;
    enum { MOST = 1 << 24 }; /* tokens for -p, -n and -d each: their sum stays an int */
    if (!model || pp < 1 || tg < 1 || reps < 1 || depth < 0 || pp > MOST || tg > MOST || depth > MOST) {
        fprintf(stderr, "qwenc bench: -m MODEL is required; -p, -n, -r positive, -d not negative (-p, -n, -d at most %d)\n", MOST);
        return 2;
    }
    int prompt = depth > pp ? depth : pp; /* tokens of random prompt: the timed batch, then any depth beyond it */
    qwen_error *err = NULL;
    double t_load = clock_seconds();
    qwen_model *m = qwen_model_open(model, &(qwen_model_opts){ .threads = threads, .quant = quant, .kv_type = kv_type, .mmap = mmap, .bf16_prefill = bf16_prefill, .progress = cli_load_progress, .progress_user = &(int){ -1 } }, &err);
    if (!m) return cli_fail("bench", err);
    t_load = clock_seconds() - t_load;
    double anon_after_load = anon_rss_mb();
    int32_t vocab = qwen_model_vocab_size(m);
    qwen_session *s = qwen_session_new(m, prompt + tg + 8, &err);
    float *logits = malloc((size_t)vocab * sizeof(float));
    int32_t *ids = malloc((size_t)prompt * sizeof *ids);
    if (!s || !logits || !ids) { free(logits); free(ids); qwen_model_close(m); return cli_fail("bench", err); }
    uint64_t x = 12345;
    for (int i = 0; i < prompt; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; ids[i] = (int32_t)(x % 150000); }
    /* the probe runs right after each repetition, and the bandwidth reported is the one measured
     * beside the fastest decode (this VM's bandwidth swings by a third from minute to minute) */
    double best_pp = 1e9, best_tg = 1e9, bw = 0, bw_mean = 0, rss_mb = 0;
    bw_probe probe = { 0 };
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        qwen_session_truncate(s, 0);
        double t0 = clock_seconds();
        if (qwen_session_forward(s, ids, (size_t)pp, logits, false, &err)) { rc = cli_fail("bench", err); break; }
        double pp_s = clock_seconds() - t0;
        if (depth < pp) qwen_session_truncate(s, depth);
        else if (depth > pp && qwen_session_forward(s, ids + pp, (size_t)(depth - pp), logits, false, &err)) { rc = cli_fail("bench", err); break; }
        double t1 = clock_seconds();
        for (int k = 0; k < tg; k++) {
            int32_t next = (int32_t)argmax_f32(logits, vocab); /* greedy, as qwen_sampler at temperature 0 */
            if (qwen_session_forward(s, &next, 1, logits, false, &err)) { rc = cli_fail("bench", err); break; }
        }
        double t2 = clock_seconds();
        if (rc) break;
        if (r == 0) { /* before the probe's buffer exists */
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            rss_mb = ru.ru_maxrss / 1024.0;
            if (!bw_probe_open(&probe, threads))
                fprintf(stderr, "qwenc bench: no memory for the bandwidth probe (1 GiB): bandwidth not measured\n");
        }
        double mean_now = 0, bw_now = probe.buf ? bw_probe_run(&probe, &mean_now) : 0;
        if (pp_s < best_pp) best_pp = pp_s;
        if (t2 - t1 < best_tg) { best_tg = t2 - t1; bw = bw_now; bw_mean = mean_now; }
    }
    if (probe.buf) bw_probe_close(&probe);
    if (!rc) {
        double pp_tps = pp / best_pp, tg_tps = tg / best_tg;
        /* a decode step reads every weight and the KV cache so far (depth + tg / 2 positions on average) */
        double weights_gbps = (double)qwen_model_weight_bytes(m) * tg_tps / 1e9;
        double kv_gbps = (double)qwen_model_kv_bytes_per_position(m) * (depth + tg / 2.0) * tg_tps / 1e9;
        double gbps = weights_gbps + kv_gbps;
        if (json) {
            printf("{\"pp\": %d, \"tg\": %d, \"depth\": %d, \"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, \"ttft_s\": %.4f, \"load_s\": %.3f, \"peak_rss_mb\": %.1f, "
                   "\"anon_rss_after_load_mb\": %.1f, \"anon_rss_mb\": %.1f, \"weight_gb\": %.4f, \"decode_gb_s\": %.2f, \"decode_weights_gb_s\": %.2f, "
                   "\"decode_kv_gb_s\": %.2f, \"mem_bw_gb_s\": ",
                   pp, tg, depth, pp_tps, tg_tps, best_pp, t_load, rss_mb, anon_after_load, anon_rss_mb(), qwen_model_weight_bytes(m) / 1e9, gbps,
                   weights_gbps, kv_gbps);
            if (bw > 0) printf("%.2f, \"mem_bw_mean_gb_s\": %.2f}\n", bw, bw_mean);
            else printf("null, \"mem_bw_mean_gb_s\": null}\n"); /* not measured */
        } else {
            printf("model   %s\n", qwen_model_describe(m));
            printf("load    %.3f s\n", t_load);
            printf("pp%-4d  %8.2f tok/s   (time to first token %.3f s)\n", pp, pp_tps, best_pp);
            printf("tg%-4d  %8.2f tok/s   (after %d positions; reads %.2f GB/s: weights %.2f + KV cache %.2f", tg, tg_tps, depth, gbps, weights_gbps,
                   kv_gbps);
            if (bw > 0)
                printf(" = %.0f%% of the measured %.1f GB/s memory bandwidth; %.0f%% of its sustained %.1f)\n", 100 * gbps / bw, bw, 100 * gbps / bw_mean,
                       bw_mean);
            else printf("; memory bandwidth not measured)\n");
            printf("memory  %.1f MB not file-backed after load (weights packed or quantized into memory, tables), %.1f MB after\n"
                   "        the run (+ KV cache, scratch); peak RSS %.1f MB (with any weight pages mapped from the files)\n",
                   anon_after_load, anon_rss_mb(), rss_mb);
        }
    }
    free(ids);
    free(logits);
    qwen_session_free(s);
    qwen_model_close(m);
    return rc;
}
