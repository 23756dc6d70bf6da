/* The memory-bandwidth probe that benchmarks set a decode's reads against: every thread of its
 * own pool reads its slice of a 1 GiB buffer (on transparent huge pages where the kernel gives
 * them) as four sequential streams, best of several reads (as STREAM reports its best rate). */
#ifndef QWENC_BASE_BWPROBE_H
#define QWENC_BASE_BWPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threads.h"

typedef struct bw_probe { uint64_t *buf; size_t n; thread_pool *pool; } bw_probe;

/* Allocates and fills the buffer and starts `threads` threads (0: cpus_default_threads()). *huge (may be NULL)
 * receives the fraction of the buffer on huge pages (-1: unknown); below ~0.9 the reads may
 * understate the bandwidth. False when out of memory (nothing to close). */
bool bw_probe_open(bw_probe *p, int threads, double *huge);
void bw_probe_close(bw_probe *p);
/* Read bandwidth in GB/s, the buffer read `reads` times: the best of them (returned) and, in
 * *mean (may be NULL), all of them together. */
double bw_probe_read(bw_probe *p, int reads, double *mean);
/* The probe between the timed steps of a benchmark, in GB/s: the best of 3 reads, with 20 ms
 * untimed pauses before and after, so that neither the benchmark's pool nor the probe's spins on a
 * core the other is measured on (workers spin ~2 ms before they sleep). */
double bw_probe_between(bw_probe *p);

#endif
