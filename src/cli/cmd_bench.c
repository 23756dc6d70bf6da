/* qwenc bench: prompt processing (pp) and generation (tg) speed, time to first token, peak RSS,
 * and decode bandwidth against the machine's measured memory bandwidth. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "base/bwprobe.h"
#include "base/clock.h"
#include "tensor/tensor.h"

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    fprintf(f, "usage: qwenc bench -m MODEL [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS] [--quant q8|q4] [--kv-type f32|f16|q8_0] [--mmap] [--bf16-prefill] [--profile] [--json]\n\n"
               "Prefills a random prompt of -p tokens in one batch (pp), then decodes -n tokens (tg) after\n"
               "DEPTH positions of context: by default the prompt's; -d 0 decodes from an empty context, as\n"
               "llama-bench's tg does (a longer depth is prefilled, untimed, after the prompt).\n"
               "Reports the best of -r repetitions (default 2): tokens/s, time to first token, peak RSS, and\n"
               "the GB/s a decode step reads (weights and KV cache) against the memory bandwidth, which all\n"
               "threads probe by reading 1 GiB (four streams each): from the second repetition on, once after\n"
               "every 16 decode tokens (untimed; every -n/4 under 64), each window's read rate set against the\n"
               "probe that follows it (their median and range); and 8 times after each repetition, the fastest\n"
               "decode against the best read beside it (and the 8 reads' mean rate, a sustained read). This\n"
               "VM's bandwidth moves by a third from minute to minute: the windows compare the decode with\n"
               "the bandwidth of the same seconds.\n"
               "The session's whole KV cache is made resident before anything is timed (qwen_session_reserve).\n"
               "--profile: where the fastest repetition's decode steps spent their time: the loops spread over\n"
               "the threads (and the calling thread's waits at their ends), attention, and the calling thread\n"
               "alone between loops (qwen_session_profile; it reads the clock a few times a loop).\n"
               "--json prints one JSON line instead.\n\n" CLI_MMAP_HELP CLI_PREFILL_HELP
               "\nThe kernels are the widest this CPU runs (the model line names them); the environment\n"
               "variable QWENC_KERNELS=avx2, avx2+vnni, neon or reference measures a narrower table instead.\n");
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *v, *quant = NULL, *kv_type = NULL;
    int pp = 512, tg = 128, depth = 0, threads = 0, reps = 2;
    bool depth_given = false;
    bool json = false, mmap = false, bf16_prefill = false, profile = false;
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
        else if (!strcmp(argv[i], "--profile")) profile = true;
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
    /* decode windows between bandwidth probes: each window's share of the probe, the probe's rate */
    int window = tg >= 64 ? 16 : (tg + 3) / 4, max_windows = reps * (tg / window + 1);
    double *ratios = malloc((size_t)max_windows * 2 * sizeof *ratios), *probes = ratios ? ratios + max_windows : NULL;
    if (!s || !logits || !ids || !ratios) {
        free(logits), free(ids), free(ratios);
        qwen_session_free(s);
        qwen_model_close(m);
        return cli_fail("bench", err);
    }
    /* the whole cache made resident before any timing, as llama-bench's context holds it cleared:
     * a cache chunk's first touch would otherwise cost the step that makes it (~0.1 s per 1024
     * positions of a Qwen3-0.6B f16 cache here), in the first repetition only */
    double t_reserve = clock_seconds();
    qwen_session_reserve(s, prompt + tg);
    t_reserve = clock_seconds() - t_reserve;
    uint64_t x = 12345;
    for (int i = 0; i < prompt; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; ids[i] = (int32_t)(x % 150000); }
    /* This VM's bandwidth swings by a third from minute to minute, so it is probed beside the
     * decode twice over: best of 8 reads right after each repetition (the bandwidth reported beside
     * the fastest decode), and, from the second repetition on, one read after every `window`
     * tokens (untimed), each window's decode rate set against the read that follows it. */
    double best_pp = 1e9, best_tg = 1e9, bw = 0, bw_mean = 0, rss_mb = 0;
    double weight_bytes = (double)qwen_model_weight_bytes(m), kv_bytes = (double)qwen_model_kv_bytes_per_position(m);
    bw_probe probe = { 0 };
    qwen_step_profile prof = { 0 }; /* the fastest repetition's decode steps, with --profile */
    int rc = 0, windows = 0;
    for (int r = 0; r < reps && !rc; r++) {
        qwen_session_truncate(s, 0);
        double t0 = clock_seconds();
        if (qwen_session_forward(s, ids, (size_t)pp, logits, false, &err)) { rc = cli_fail("bench", err); break; }
        double pp_s = clock_seconds() - t0;
        if (depth < pp) qwen_session_truncate(s, depth);
        else if (depth > pp && qwen_session_forward(s, ids + pp, (size_t)(depth - pp), logits, false, &err)) { rc = cli_fail("bench", err); break; }
        double tg_s = 0, w0 = clock_seconds(), w_bytes = 0;
        qwen_session_profile(s, profile);
        for (int k = 0; k < tg; k++) {
            int32_t next = (int32_t)argmax_f32(logits, vocab); /* greedy, as qwen_sampler at temperature 0 */
            if (qwen_session_forward(s, &next, 1, logits, false, &err)) { rc = cli_fail("bench", err); break; }
            w_bytes += weight_bytes + kv_bytes * (depth + k + 1);
            if (probe.buf && ((k + 1) % window == 0 || k + 1 == tg)) {
                double w_s = clock_seconds() - w0, probe_gbps = bw_probe_between(&probe);
                tg_s += w_s;
                probes[windows] = probe_gbps;
                ratios[windows++] = w_bytes / w_s / 1e9 / probe_gbps;
                w0 = clock_seconds(), w_bytes = 0;
            }
        }
        qwen_step_profile rep_prof = qwen_session_profile(s, false);
        if (rc) break;
        if (!probe.buf) tg_s = clock_seconds() - w0;
        if (r == 0) { /* before the probe's buffer exists */
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            rss_mb = ru.ru_maxrss / 1024.0;
            double huge = -1;
            if (!bw_probe_open(&probe, threads, &huge))
                fprintf(stderr, "qwenc bench: no memory for the bandwidth probe (1 GiB): bandwidth not measured\n");
            else if (huge >= 0 && huge < 0.9)
                fprintf(stderr, "qwenc bench: only %.0f%% of the bandwidth probe's buffer is on huge pages (transparent huge pages off, or memory "
                                "fragmented): its reads may understate the bandwidth\n", 100 * huge);
        }
        /* 8 reads after each repetition: the best is the figure the fastest decode is set against (as
         * STREAM reports its best rate), their mean a sustained read (4-10% lower on this VM) */
        double mean_now = 0, bw_now = probe.buf ? bw_probe_read(&probe, 8, &mean_now) : 0;
        if (pp_s < best_pp) best_pp = pp_s;
        if (tg_s < best_tg) { best_tg = tg_s; bw = bw_now; bw_mean = mean_now; prof = rep_prof; }
    }
    if (probe.buf) bw_probe_close(&probe);
    /* the windows' median share of the probe, their range, and the probe's median rate */
    double share = 0, share_lo = 0, share_hi = 0, probe_median = 0;
    if (windows > 0) {
        qsort(ratios, (size_t)windows, sizeof *ratios, compare_doubles);
        qsort(probes, (size_t)windows, sizeof *probes, compare_doubles);
        share = ratios[windows / 2], share_lo = ratios[0], share_hi = ratios[windows - 1], probe_median = probes[windows / 2];
    }
    if (!rc) {
        double pp_tps = pp / best_pp, tg_tps = tg / best_tg;
        /* a decode step reads every weight and the KV cache so far (depth + tg / 2 positions on average) */
        double weights_gbps = weight_bytes * tg_tps / 1e9;
        double kv_gbps = kv_bytes * (depth + tg / 2.0) * tg_tps / 1e9;
        double gbps = weights_gbps + kv_gbps;
        if (json) {
            printf("{\"pp\": %d, \"tg\": %d, \"depth\": %d, \"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, \"ttft_s\": %.4f, \"load_s\": %.3f, \"kv_reserve_s\": %.3f, \"peak_rss_mb\": %.1f, "
                   "\"anon_rss_after_load_mb\": %.1f, \"anon_rss_mb\": %.1f, \"weight_gb\": %.4f, \"decode_gb_s\": %.2f, \"decode_weights_gb_s\": %.2f, "
                   "\"decode_kv_gb_s\": %.2f, \"mem_bw_gb_s\": ",
                   pp, tg, depth, pp_tps, tg_tps, best_pp, t_load, t_reserve, rss_mb, anon_after_load, anon_rss_mb(), weight_bytes / 1e9, gbps,
                   weights_gbps, kv_gbps);
            if (bw > 0) printf("%.2f, \"mem_bw_mean_gb_s\": %.2f, ", bw, bw_mean);
            else printf("null, \"mem_bw_mean_gb_s\": null, "); /* not measured */
            if (prof.steps > 0)
                printf("\"step_ms\": %.4f, \"step_loops\": %.1f, \"step_loop_ms\": %.4f, \"step_wait_ms\": %.4f, \"step_attention_ms\": %.4f, ", 1e3 * prof.step_s / prof.steps,
                       (double)prof.loops / prof.steps, 1e3 * prof.loop_s / prof.steps, 1e3 * prof.wait_s / prof.steps, 1e3 * prof.attention_s / prof.steps);
            if (windows > 0)
                printf("\"bw_windows\": %d, \"mem_bw_between_tokens_gb_s\": %.2f, \"decode_share_between_tokens\": %.4f, \"decode_share_lo\": %.4f, "
                       "\"decode_share_hi\": %.4f}\n", windows, probe_median, share, share_lo, share_hi);
            else printf("\"bw_windows\": 0, \"mem_bw_between_tokens_gb_s\": null, \"decode_share_between_tokens\": null, \"decode_share_lo\": null, "
                        "\"decode_share_hi\": null}\n");
        } else {
            printf("model   %s\n", qwen_model_describe(m));
            printf("load    %.3f s (and %.3f s to make the KV cache of %d positions resident before timing)\n", t_load, t_reserve, prompt + tg);
            printf("pp%-4d  %8.2f tok/s   (time to first token %.3f s)\n", pp, pp_tps, best_pp);
            printf("tg%-4d  %8.2f tok/s   (after %d positions; reads %.2f GB/s: weights %.2f + KV cache %.2f)\n", tg, tg_tps, depth, gbps, weights_gbps,
                   kv_gbps);
            if (windows > 0)
                printf("memory bandwidth: decode windows read %.0f%% of the probe run between them (median of %d windows of %d tokens, %.0f-%.0f%%;\n"
                       "        probe median %.1f GB/s); the fastest decode %.0f%% of the best read after it (%.1f GB/s; %.0f%% of its sustained %.1f)\n",
                       100 * share, windows, window, 100 * share_lo, 100 * share_hi, probe_median, 100 * gbps / bw, bw, 100 * gbps / bw_mean, bw_mean);
            else if (bw > 0)
                printf("memory bandwidth: the fastest decode %.0f%% of the best read after it (%.1f GB/s; %.0f%% of its sustained %.1f)\n", 100 * gbps / bw,
                       bw, 100 * gbps / bw_mean, bw_mean);
            else printf("memory bandwidth: not measured\n");
            if (prof.steps > 0 && prof.loops == 0)
                printf("profile a decode step %.3f ms on one thread, attention %.3f ms of it\n", 1e3 * prof.step_s / prof.steps, 1e3 * prof.attention_s / prof.steps);
            else if (prof.steps > 0) {
                double n = prof.steps;
                printf("profile a decode step %.3f ms: %.0f loops over the threads %.3f ms (the calling thread waiting at their ends %.3f ms),\n"
                       "        attention %.3f ms (loops included), the calling thread alone %.3f ms (norms, residuals, SwiGLU, quantizing)\n",
                       1e3 * prof.step_s / n, prof.loops / n, 1e3 * prof.loop_s / n, 1e3 * prof.wait_s / n, 1e3 * prof.attention_s / n,
                       1e3 * (prof.step_s - prof.loop_s) / n);
            }
            printf("memory  %.1f MB not file-backed after load (weights packed or quantized into memory, tables), %.1f MB after\n"
                   "        the run (+ KV cache, scratch); peak RSS %.1f MB (with any weight pages mapped from the files)\n",
                   anon_after_load, anon_rss_mb(), rss_mb);
        }
    }
    free(ids);
    free(logits);
    free(ratios);
    qwen_session_free(s);
    qwen_model_close(m);
    return rc;
}
