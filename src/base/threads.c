#define _GNU_SOURCE /* sched_yield */
#include "base/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/cpus.h"

/* Workers spin on the job counter for a while before sleeping on a condition variable: a decode
 * step runs a few hundred short loops, and waking sleeping threads for each would cost more than
 * the loops themselves. SPIN_ROUNDS pauses (~1.3 ms here), or SPIN_YIELDS rounds once the waits
 * yield the CPU (wait_relax; each a system call, ~1.2 us here: ~2.5 ms in all). */
enum { SPIN_ROUNDS = 1 << 16, SPIN_YIELDS = 1 << 11 };

/* A loop's indices are dealt out as one contiguous share per thread, which its thread walks
 * front to back (a matmul's rows then stream as one sequence per thread, which the prefetchers
 * follow better than interleaved blocks: 6-11% faster decode here); a thread done with its own
 * share takes indices from the back of the others'. `range` packs the share's next index (low 32
 * bits) and its end (high 32 bits), so both ends move with one compare-and-swap. */
typedef struct share {
    _Alignas(64) atomic_ullong range;
} share;

/* What a thread prefetches while it waits (thread_pool_prefetch_next; workers[0], which is no
 * thread, holds the caller's): written by the caller, read by the worker, both relaxed (a stale
 * address only costs a useless prefetch). */
enum { NEXT_CHUNK = 1024 };
typedef struct worker {
    struct thread_pool *pool;
    int index;
    pthread_t thread;
    _Alignas(64) _Atomic uintptr_t next[THREAD_POOL_NEXT_STREAMS]; /* 0: none */
} worker;

/* What a loop's start hands the workers shares one cache line (the main thread writes it once per
 * loop, each worker reads it once): every line that passes between cores costs ~0.1-0.2 us here,
 * and a decode step runs ~110 loops. */
struct thread_pool {
    _Alignas(64) atomic_ulong generation; /* bumped for each loop */
    void (*fn)(void *, int, int);         /* the current loop */
    void *ctx;
    int n;
    atomic_int sleepers;                  /* workers waiting on `start` (changed under mu) */
    atomic_int stop;
    _Alignas(64) atomic_int busy;         /* workers still inside the current loop */
    int n_threads;
    worker *workers;                      /* n_threads - 1 of them; the caller is thread 0 */
    share *shares;                        /* [n_threads] the current loop's shares */
    pthread_mutex_t mu;
    pthread_cond_t start;
    bool yield_waits;                     /* more threads than CPUs to run them: waits yield their CPU */
    bool counting;                        /* the caller's own: counts kept by thread_pool_run */
    thread_pool_counts counts;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A spinning thread's pause between two looks at what it waits for, its `round`-th. A thread that
 * has waited long (YIELD_AFTER rounds, ~0.1 ms: a decode step's loops and the serial work between
 * them take a few us to tens of us), or that shares the CPUs with more threads of its pool than
 * there are, gives up its CPU instead: spinning on, it would hold the CPU that the thread it waits
 * for needs until the scheduler's time slice ends, a few ms at each of a decode step's loops (a
 * Q4_0 0.6B-shape decode ran 5.7 tok/s with 3 threads on 2 CPUs against 202 with 2; two processes
 * decoding side by side, each with both CPUs: see BENCHMARKS.md, twenty-fifth session). */
enum { YIELD_AFTER = 4096 };
static inline bool wait_relax(const struct thread_pool *p, int round) {
    bool yield = p->yield_waits || round >= YIELD_AFTER;
    if (yield) sched_yield();
    else cpu_relax();
    return yield; /* whether it yielded */
}

/* Takes part of what is left of a share, at least one index: half of it from its front (the
 * share's own thread), 1 / (2 * n_threads) of it from its back (a thief); returns how many, the
 * first in *first, 0 when the share is empty. Either way the caller runs the indices it took in
 * ascending order, so that a thief's reads run forwards too (the prefetchers follow ascending runs:
 * a decode step's attention reading its blocks descending took 1.3-1.7x as long here; thieves
 * taking runs instead of single indices from the back made a Q4_0 decode step 0.2-2% faster token
 * by token, BENCHMARKS.md).
 * Each take is a locked compare-and-swap, which waits for the thread's outstanding loads: one per
 * 16 KB block cost a decode step's matmuls ~3% of their bandwidth here, taking several at a time
 * does not; the owner taking half of what is left (rather than 1 / (2 * n_threads), as a thief
 * does) made Q4_0 decode steps ~0.7% faster still, token by token (BENCHMARKS.md, twentieth
 * session). The takes shrink with what is left, so the last index a thread takes still ends
 * within about one index of the others. */
static int take(share *s, bool front, int n_threads, int *first) {
    unsigned long long r = atomic_load_explicit(&s->range, memory_order_relaxed);
    for (;;) {
        uint32_t next = (uint32_t)r, end = (uint32_t)(r >> 32);
        if (next >= end) return 0;
        uint32_t k = front ? (end - next) / 2 : (end - next) / (2u * (unsigned)n_threads);
        if (k < 1) k = 1;
        unsigned long long taken = front ? r + k : r - ((unsigned long long)k << 32);
        if (atomic_compare_exchange_weak_explicit(&s->range, &r, taken, memory_order_relaxed, memory_order_relaxed)) {
            *first = (int)(front ? next : end - k);
            return (int)k;
        }
    }
}

static void run_share(thread_pool *p, int thread_index) {
    for (int v = 0; v < p->n_threads; v++) {
        share *s = &p->shares[(thread_index + v) % p->n_threads];
        for (int i, k; (k = take(s, v == 0, p->n_threads, &i)) > 0;)
            for (int end = i + k; i < end; i++) p->fn(p->ctx, i, thread_index);
    }
}

/* Prefetches round `round`'s kilobyte of each of w's next streams; false when it has none left. */
static bool prefetch_next_round(worker *w, int round) {
    if (round >= THREAD_POOL_NEXT_BYTES / NEXT_CHUNK) return false;
    bool any = false;
    for (int s = 0; s < THREAD_POOL_NEXT_STREAMS; s++) {
        uintptr_t a = atomic_load_explicit(&w->next[s], memory_order_relaxed);
        if (!a) continue;
        any = true;
        a += (uintptr_t)round * NEXT_CHUNK;
        for (uintptr_t o = 0; o < NEXT_CHUNK; o += 64) __builtin_prefetch((const void *)(a + o), 0, 3);
    }
    return any;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    thread_pool *p = w->pool;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        bool prefetching = true; /* until its next streams are done (or it has none) */
        for (int spin = 0, yields = 0; g == seen && spin < SPIN_ROUNDS && yields < SPIN_YIELDS && !atomic_load(&p->stop); spin++) {
            if (prefetching) prefetching = prefetch_next_round(w, spin);
            if (!prefetching) yields += wait_relax(p, spin);
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->stop) && (g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = g;
        run_share(p, w->index);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
    }
    return NULL;
}

thread_pool *thread_pool_new(int n_threads) {
    if (n_threads <= 0) n_threads = cpus_default_threads();
    thread_pool *p = aligned_alloc(_Alignof(thread_pool), sizeof *p); /* a multiple of its alignment */
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->n_threads = n_threads;
    p->yield_waits = n_threads > cpus_allowed();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    p->workers = aligned_alloc(_Alignof(worker), (size_t)n_threads * sizeof *p->workers); /* a multiple of its alignment */
    for (int i = 0; p->workers && i < n_threads; i++) {
        memset(&p->workers[i], 0, sizeof p->workers[i]);
        for (int s = 0; s < THREAD_POOL_NEXT_STREAMS; s++) atomic_init(&p->workers[i].next[s], 0);
    }
    p->shares = aligned_alloc(_Alignof(share), (size_t)n_threads * sizeof *p->shares);
    if (!p->workers || !p->shares) { free(p->workers); free(p->shares); free(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            p->n_threads = i; /* keep the ones that started */
            break;
        }
    }
    return p;
}

void thread_pool_free(thread_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    free(p->workers);
    free(p->shares);
    free(p);
}

int thread_pool_size(const thread_pool *p) { return p ? p->n_threads : 1; }

void thread_pool_prefetch_next(thread_pool *p, int thread, const uintptr_t *streams, int n) {
    if (!p || thread < 0 || thread >= p->n_threads) return;
    for (int s = 0; s < THREAD_POOL_NEXT_STREAMS; s++) { /* written only when it changes: the worker reads this line */
        uintptr_t a = s < n ? streams[s] : 0;
        if (atomic_load_explicit(&p->workers[thread].next[s], memory_order_relaxed) != a)
            atomic_store_explicit(&p->workers[thread].next[s], a, memory_order_relaxed);
    }
}

void thread_pool_run(thread_pool *p, int n, void (*fn)(void *ctx, int i, int thread_index), void *ctx) {
    if (!p || p->n_threads == 1 || n <= 1) {
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    double t0 = p->counting ? clock_seconds() : 0;
    /* the previous loop has fully ended (busy == 0), so no worker reads these while they change */
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    for (int t = 0; t < p->n_threads; t++) {
        unsigned long long lo = (unsigned long long)n * (unsigned)t / (unsigned)p->n_threads;
        unsigned long long hi = (unsigned long long)n * (unsigned)(t + 1) / (unsigned)p->n_threads;
        atomic_store_explicit(&p->shares[t].range, lo | hi << 32, memory_order_relaxed);
    }
    atomic_store_explicit(&p->busy, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1);
    /* a worker counts itself a sleeper before its last look at `generation` (both sequentially
     * consistent, as this bump and this read are): it sees the new loop, or we see it asleep */
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    run_share(p, 0);
    double t1 = p->counting ? clock_seconds() : 0;
    for (int round = 0; atomic_load_explicit(&p->busy, memory_order_acquire) > 0; round++)
        if (!prefetch_next_round(&p->workers[0], round)) wait_relax(p, round); /* the caller's own next reads (workers[0] is no thread) */
    if (p->counting) {
        double t2 = clock_seconds();
        p->counts.loops++;
        p->counts.loop_s += t2 - t0;
        p->counts.wait_s += t2 - t1;
    }
}

thread_pool_counts thread_pool_count(thread_pool *p, bool on) {
    if (!p) return (thread_pool_counts){ 0 };
    thread_pool_counts so_far = p->counts;
    if (on) p->counts = (thread_pool_counts){ 0 };
    p->counting = on;
    return so_far;
}
