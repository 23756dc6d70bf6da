#include "base/threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Workers spin on the job counter for a while before sleeping on a condition variable: a decode
 * step runs a few hundred short loops, and waking sleeping threads for each would cost more than
 * the loops themselves. */
enum { SPIN_ROUNDS = 1 << 16 };

typedef struct worker {
    struct thread_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct thread_pool {
    int n_threads;
    worker *workers;              /* n_threads - 1 of them; the caller is thread 0 */
    pthread_mutex_t mu;
    pthread_cond_t start;
    atomic_ulong generation;      /* bumped for each loop */
    atomic_int busy;              /* workers still inside the current loop */
    atomic_int stop;
    int sleepers;                 /* workers waiting on `start` (under mu) */
    void (*fn)(void *, int, int); /* the current loop */
    void *ctx;
    int n;
    atomic_int next;              /* next index to hand out */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_share(thread_pool *p, int thread_index) {
    for (;;) {
        int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->n) break;
        p->fn(p->ctx, i, thread_index);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    thread_pool *p = w->pool;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spin = 0; g == seen && spin < SPIN_ROUNDS && !atomic_load(&p->stop); spin++) {
            cpu_relax();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!atomic_load(&p->stop) && (g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->start, &p->mu);
            p->sleepers--;
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
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    thread_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) { free(p); return NULL; }
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
    free(p);
}

int thread_pool_size(const thread_pool *p) { return p ? p->n_threads : 1; }

void thread_pool_run(thread_pool *p, int n, void (*fn)(void *ctx, int i, int thread_index), void *ctx) {
    if (!p || p->n_threads == 1 || n <= 1) {
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    /* the previous loop has fully ended (busy == 0), so no worker reads these while they change */
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_share(p, 0);
    while (atomic_load_explicit(&p->busy, memory_order_acquire) > 0) cpu_relax();
}
