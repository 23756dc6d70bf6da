#include "base/bwprobe.h"

#include <time.h>

#include "base/bigmem.h"
#include "base/clock.h"

typedef struct bw_job { const uint64_t *buf; size_t per_thread; uint64_t sink[64]; } bw_job;

/* Thread i reads its own slice once, as four sequential streams a quarter of it apart, a 64-byte
 * line of each in turn (XORed into 8 words): measured here, four streams per thread read 5-25%
 * more bytes per second than two (and two than one), and plain C reads as fast as AVX-512 loads. */
static void bw_read(void *ctx, int i, int thread_index) {
    bw_job *j = ctx;
    size_t quarter = j->per_thread / 4 / 8 * 8;
    const uint64_t *a = j->buf + (size_t)i * j->per_thread, *b = a + quarter, *c = b + quarter, *d = c + quarter;
    uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0, x4 = 0, x5 = 0, x6 = 0, x7 = 0;
    for (size_t w = 0; w < quarter; w += 8) {
        x0 ^= a[w] ^ b[w] ^ c[w] ^ d[w], x1 ^= a[w + 1] ^ b[w + 1] ^ c[w + 1] ^ d[w + 1];
        x2 ^= a[w + 2] ^ b[w + 2] ^ c[w + 2] ^ d[w + 2], x3 ^= a[w + 3] ^ b[w + 3] ^ c[w + 3] ^ d[w + 3];
        x4 ^= a[w + 4] ^ b[w + 4] ^ c[w + 4] ^ d[w + 4], x5 ^= a[w + 5] ^ b[w + 5] ^ c[w + 5] ^ d[w + 5];
        x6 ^= a[w + 6] ^ b[w + 6] ^ c[w + 6] ^ d[w + 6], x7 ^= a[w + 7] ^ b[w + 7] ^ c[w + 7] ^ d[w + 7];
    }
    j->sink[thread_index % 64] ^= x0 ^ x1 ^ x2 ^ x3 ^ x4 ^ x5 ^ x6 ^ x7;
}

bool bw_probe_open(bw_probe *p, int threads, double *huge) {
    p->n = (size_t)1 << 27; /* 64-bit words */
    p->buf = big_alloc(p->n * sizeof *p->buf);
    p->pool = p->buf ? thread_pool_new(threads) : NULL;
    if (!p->pool) {
        big_free(p->buf, p->n * sizeof *p->buf);
        p->buf = NULL;
        return false;
    }
    for (size_t i = 0; i < p->n; i++) p->buf[i] = i * 0x9E3779B97F4A7C15u;
    /* in 4 KB pages the same reads run slower (TLB misses, prefetchers stopping at each page) */
    long huge_kb = big_huge_kb(p->buf, "AnonHugePages");
    if (huge) *huge = huge_kb < 0 ? -1 : huge_kb * 1024.0 / (double)(p->n * sizeof *p->buf);
    return true;
}

void bw_probe_close(bw_probe *p) {
    thread_pool_free(p->pool);
    big_free(p->buf, p->n * sizeof *p->buf);
    p->buf = NULL;
    p->pool = NULL;
}

/* Every thread reads its slice of the buffer once: the seconds it took; *bytes, the bytes read. */
static double bw_read_once(bw_probe *p, double *bytes) {
    int parts = thread_pool_size(p->pool);
    bw_job j = { p->buf, p->n / (size_t)parts, { 0 } };
    *bytes = (double)parts * 4.0 * (double)(j.per_thread / 4 / 8 * 8) * sizeof *p->buf;
    double t0 = clock_seconds();
    thread_pool_run(p->pool, parts, bw_read, &j);
    return clock_seconds() - t0;
}

double bw_probe_read(bw_probe *p, int reads, double *mean) {
    double best = 1e9, total = 0, bytes = 0;
    for (int r = 0; r < reads; r++) {
        double dt = bw_read_once(p, &bytes);
        if (dt < best) best = dt;
        total += dt;
    }
    if (mean) *mean = reads * bytes / total / 1e9;
    return bytes / best / 1e9;
}

/* (the first read after the pause ran a median 10-18% slower than the next one here) */
double bw_probe_between(bw_probe *p) {
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    double gbps = bw_probe_read(p, 3, NULL);
    nanosleep(&pause, NULL);
    return gbps;
}
