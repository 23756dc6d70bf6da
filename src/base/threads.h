/* A fixed pool of worker threads for data-parallel loops. */
#ifndef QWENC_BASE_THREADS_H
#define QWENC_BASE_THREADS_H

#include <stdbool.h>

typedef struct thread_pool thread_pool;

/* Creates a pool that runs loops on `n_threads` threads in all (the caller's thread counts as
 * one; 0 means the number of online CPUs). Returns NULL when threads cannot be started. */
thread_pool *thread_pool_new(int n_threads);
void thread_pool_free(thread_pool *pool);
int thread_pool_size(const thread_pool *pool);

/* Calls fn(ctx, i, thread_index) for every i in [0, n), spread over the pool's threads, and
 * returns when all calls are done. Each thread first walks its own contiguous share of [0, n) in
 * increasing order (thread t from n * t / threads), then helps with the others' from their ends.
 * `thread_index` < thread_pool_size(pool) lets a callee use per-thread scratch. A NULL pool runs
 * everything on the calling thread. */
void thread_pool_run(thread_pool *pool, int n, void (*fn)(void *ctx, int i, int thread_index), void *ctx);

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
