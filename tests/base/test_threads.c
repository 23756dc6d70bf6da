/* The thread pool runs every index of a loop exactly once, on any number of threads, when one
 * thread is much slower than the others (its share is then taken from the back, in runs that the
 * thieves walk forwards), for loops smaller than the pool, and after pauses long enough for the
 * workers to fall asleep, all with the workers prefetching between loops. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/threads.h"
#include "harness.h"

typedef struct job {
    atomic_int *calls;   /* [n] times index i ran */
    atomic_int *by;      /* [n] the thread that ran it */
    atomic_int *when;    /* [n] when it ran: the value of `clock` then */
    atomic_int clock;
    int slow_thread;     /* this thread sleeps at each index (-1: none) */
    int threads;
    atomic_int bad_thread;
} job;

static void count(void *ctx, int i, int thread_index) {
    job *j = ctx;
    atomic_fetch_add(&j->calls[i], 1);
    atomic_store(&j->by[i], thread_index);
    atomic_store(&j->when[i], atomic_fetch_add(&j->clock, 1));
    if (thread_index < 0 || thread_index >= j->threads) atomic_store(&j->bad_thread, 1);
    if (thread_index == j->slow_thread) nanosleep(&(struct timespec){ 0, 200000 }, NULL);
}

int main(void) {
    int sizes[] = { 0, 1, 2, 3, 7, 64, 1000 };
    for (int threads = 1; threads <= 4; threads++) {
        thread_pool *pool = thread_pool_new(threads);
        REQUIRE(pool && thread_pool_size(pool) == threads, "pool of %d threads", threads);
        /* the workers prefetch between loops wherever they are told, even where nothing is mapped
         * (prefetches never fault); threads out of range are ignored */
        uintptr_t anywhere[] = { 64, (uintptr_t)-4096, (uintptr_t)sizes, 0 };
        for (int t = -1; t <= threads; t++) thread_pool_prefetch_next(pool, t, anywhere, THREAD_POOL_NEXT_STREAMS);
        for (int slow = -1; slow < threads; slow++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                int n = sizes[s];
                atomic_int calls[1000], by[1000], when[1000];
                for (int i = 0; i < n; i++) { atomic_init(&calls[i], 0); atomic_init(&by[i], -1); atomic_init(&when[i], 0); }
                job j = { calls, by, when, 0, slow, threads, 0 };
                for (int rep = 0; rep < 3; rep++) thread_pool_run(pool, n, count, &j);
                int wrong = 0, stolen = 0;
                for (int i = 0; i < n; i++) {
                    wrong += atomic_load(&calls[i]) != 3;
                    stolen += slow >= 0 && atomic_load(&by[i]) != slow && i >= n * slow / threads && i < n * (slow + 1) / threads;
                }
                CHECK(!wrong, "%d threads, n=%d, slow thread %d: %d indices not run exactly once per loop", threads, n, slow, wrong);
                CHECK(!atomic_load(&j.bad_thread), "%d threads: thread_index out of range", threads);
                /* a thread that sleeps at every index leaves most of a large share to the others */
                if (slow >= 0 && threads > 1 && n == 1000) CHECK(stolen > 0, "%d threads: no index of slow thread %d's share was taken over", threads, slow);
                /* in the last loop, each thief's indices from the slow share in the order it ran them:
                 * runs walked forwards (one that took over 8 x threads of them took a run of two or
                 * more, as takes shrink to single indices only when fewer than 4 x threads are left;
                 * taken one at a time from the back, each index lies below the last) */
                for (int t = 0; slow >= 0 && n == 1000 && t < threads; t++) {
                    int prev = -1, forwards = 0, taken = 0;
                    for (int step = 2 * n; step < 3 * n; step++) /* the clock's values in the last loop */
                        for (int i = n * slow / threads; i < n * (slow + 1) / threads; i++)
                            if (t != slow && atomic_load(&by[i]) == t && atomic_load(&when[i]) == step) {
                                forwards += prev >= 0 && i == prev + 1;
                                prev = i;
                                taken++;
                            }
                    if (taken > 8 * threads) CHECK(forwards > 0, "%d threads: thief %d took %d of slow thread %d's indices, none right after another", threads, t, taken, slow);
                }
            }
        /* loops far apart: the workers stop spinning and sleep in between, and each loop wakes them */
        for (int rep = 0; rep < 4 && threads > 1; rep++) {
            nanosleep(&(struct timespec){ 0, 30000000 }, NULL);
            atomic_int calls[64] = { 0 }, by[64] = { 0 }, when[64] = { 0 };
            job j = { calls, by, when, 0, -1, threads, 0 };
            thread_pool_run(pool, 64, count, &j);
            int wrong = 0;
            for (int i = 0; i < 64; i++) wrong += atomic_load(&calls[i]) != 1;
            CHECK(!wrong, "%d threads, after a pause: %d indices not run exactly once", threads, wrong);
        }
        thread_pool_free(pool);
    }
    thread_pool_run(NULL, 5, count, &(job){ (atomic_int[5]){ 0 }, (atomic_int[5]){ 0 }, (atomic_int[5]){ 0 }, 0, -1, 1, 0 }); /* no pool: inline */
    return test_finish("threads");
}
