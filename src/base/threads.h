/* A fixed pool of worker threads for data-parallel loops. */
#ifndef QWENC_BASE_THREADS_H
#define QWENC_BASE_THREADS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct thread_pool thread_pool;

/* Creates a pool that runs loops on `n_threads` threads in all (the caller's thread counts as
 * one; 0 means cpus_default_threads(), base/cpus.h). Returns NULL when threads cannot be started. */
thread_pool *thread_pool_new(int n_threads);
void thread_pool_free(thread_pool *pool);
int thread_pool_size(const thread_pool *pool);

/* Calls fn(ctx, i, thread_index) for every i in [0, n), spread over the pool's threads, and
 * returns when all calls are done. Each thread first walks its own contiguous share of [0, n) in
 * increasing order (thread t from n * t / threads), then helps with the others' from their ends.
 * `thread_index` < thread_pool_size(pool) lets a callee use per-thread scratch. A NULL pool runs
 * everything on the calling thread. */
void thread_pool_run(thread_pool *pool, int n, void (*fn)(void *ctx, int i, int thread_index), void *ctx);

/* Where thread `thread` (0, the caller, .. size - 1) begins reading in the pool's next loop that
 * reads memory (n <= THREAD_POOL_NEXT_STREAMS streams, addresses as integers: prefetched, never
 * dereferenced, so they may lie anywhere; n == 0 forgets them). Done with its share of the current
 * loop, a thread prefetches up to THREAD_POOL_NEXT_BYTES of each, a kilobyte a stream at a time
 * between its looks at the others (the caller until the loop ends, a worker until the next loop
 * starts): memory otherwise idle while the threads wait for each other and the caller works alone
 * (the serial steps between a decode step's matmuls) brings in what each reads first. Set before
 * the thread_pool_run whose end should start it; it holds until changed, through loops that set
 * none. */
enum { THREAD_POOL_NEXT_STREAMS = 4, THREAD_POOL_NEXT_BYTES = 64 << 10 };
void thread_pool_prefetch_next(thread_pool *pool, int thread, const uintptr_t *streams, int n);

/* What a pool's loops cost the thread that runs them, while counting is on: loops spread over the
 * threads (not those of one index, or on one thread, which the caller runs alone), their seconds
 * from start to the last thread done, and of those the seconds the caller waited for the other
 * threads after running out of indices to take. */
typedef struct thread_pool_counts {
    long loops;
    double loop_s, wait_s;
} thread_pool_counts;
/* Starts counting from zero (`on`) or stops; returns the counts so far (as they were before a
 * start). Counting reads the clock three times a loop. A NULL pool counts nothing. */
thread_pool_counts thread_pool_count(thread_pool *pool, bool on);

#endif
