/* The thread pool runs every index of a loop exactly once, on any number of threads, when one
 * thread is much slower than the others (its share is then taken from the back), for loops
 * smaller than the pool, and after pauses long enough for the workers to fall asleep. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/threads.h"
#include "harness.h"

typedef struct job {
    atomic_int *calls;   /* [n] times index i ran */
    atomic_int *by;      /* [n] the thread that ran it */
    int slow_thread;     /* this thread sleeps at each index (-1: none) */
    int threads;
    atomic_int bad_thread;
} job;

static void count(void *ctx, int i, int thread_index) {
    job *j = ctx;
    atomic_fetch_add(&j->calls[i], 1);
    atomic_store(&j->by[i], thread_index);
    if (thread_index < 0 || thread_index >= j->threads) atomic_store(&j->bad_thread, 1);
    if (thread_index == j->slow_thread) nanosleep(&(struct timespec){ 0, 200000 }, NULL);
}

int main(void) {
    int sizes[] = { 0, 1, 2, 3, 7, 64, 1000 };
    for (int threads = 1; threads <= 4; threads++) {
        thread_pool *pool = thread_pool_new(threads);
        REQUIRE(pool && thread_pool_size(pool) == threads, "pool of %d threads", threads);
        for (int slow = -1; slow < threads; slow++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                int n = sizes[s];
                atomic_int calls[1000], by[1000];
                for (int i = 0; i < n; i++) { atomic_init(&calls[i], 0); atomic_init(&by[i], -1); }
                job j = { calls, by, slow, threads, 0 };
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
            }
        /* loops far apart: the workers stop spinning and sleep in between, and each loop wakes them */
        for (int rep = 0; rep < 4 && threads > 1; rep++) {
            nanosleep(&(struct timespec){ 0, 30000000 }, NULL);
            atomic_int calls[64] = { 0 }, by[64] = { 0 };
            job j = { calls, by, -1, threads, 0 };
            thread_pool_run(pool, 64, count, &j);
            int wrong = 0;
            for (int i = 0; i < 64; i++) wrong += atomic_load(&calls[i]) != 1;
            CHECK(!wrong, "%d threads, after a pause: %d indices not run exactly once", threads, wrong);
        }
        thread_pool_free(pool);
    }
    thread_pool_run(NULL, 5, count, &(job){ (atomic_int[5]){ 0 }, (atomic_int[5]){ 0 }, -1, 1, 0 }); /* no pool: inline */
    return test_finish("threads");
}
