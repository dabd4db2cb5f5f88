/* pool.c - a tiny fork-join thread pool for the engine's kernels: the calling
 * thread and whichever of the n-1 workers join in time run one function, which
 * takes its work items from a shared counter (t5_pool_next). The owner never waits
 * for a worker that has not started (on a busy machine a descheduled worker would
 * otherwise stall every step): when the owner runs out of items it closes the job
 * and waits only for the workers inside it. Workers spin briefly between jobs (a
 * decoder step issues ~70 short jobs back to back), then sleep on a condition
 * variable, so an idle pool costs no CPU.
 * What it is not: a task queue; one job at a time, driven by one owner thread. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "t5_dev.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { CLOSED = 1 << 30 };
enum { SPIN_WORKER = 4000, SPIN_OWNER_YIELD = 1000 }; /* pause loops: ~100 us, ~25 us */

struct t5_pool {
    int n;
    pthread_t *threads; /* [n-1] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;  /* bumped once per job */
    atomic_int state; /* workers inside the current job, | CLOSED once the owner is done */
    atomic_int item;  /* next work item of the current job */
    atomic_int quit;
    t5_pool_fn fn;
    void *arg;
};

typedef struct {
    t5_pool *p;
    int ith;
} worker_arg;

static void *worker(void *a) {
    worker_arg w = *(worker_arg *)a;
    free(a);
    t5_pool *p = w.p;
    unsigned seen = 0; /* gen at creation: a job posted before this thread runs is still seen as new */
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && spins < SPIN_WORKER) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
                   !atomic_load(&p->quit))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        /* join the job unless the owner already closed it */
        int st = atomic_load_explicit(&p->state, memory_order_acquire), joined = 0;
        while (!(st & CLOSED))
            if (atomic_compare_exchange_weak_explicit(&p->state, &st, st + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                joined = 1;
                break;
            }
        if (!joined) continue;
        p->fn(p->arg, w.ith, p->n);
        atomic_fetch_sub_explicit(&p->state, 1, memory_order_acq_rel);
    }
}

t5_pool *t5_pool_create(int n) {
    if (n < 1) n = 1;
    t5_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n > 1) {
        p->threads = calloc((size_t)n - 1, sizeof *p->threads);
        if (!p->threads) goto fail;
        for (int i = 1; i < n; i++) {
            worker_arg *a = malloc(sizeof *a);
            if (!a) goto partial;
            a->p = p, a->ith = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker, a) != 0) {
                free(a);
            partial:
                p->n = i; /* the workers started so far */
                t5_pool_free(p);
                return NULL;
            }
        }
    }
    return p;
fail:
    free(p);
    return NULL;
}

void t5_pool_free(t5_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int t5_pool_threads(const t5_pool *p) {
    return p->n;
}

int t5_pool_next(t5_pool *p) {
    return atomic_fetch_add_explicit(&p->item, 1, memory_order_relaxed);
}

void t5_pool_run(t5_pool *p, t5_pool_fn fn, void *arg) {
    if (p->n == 1) {
        atomic_store(&p->item, 0);
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->item, 0);
    atomic_store(&p->state, 0);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    atomic_fetch_or(&p->state, CLOSED);
    int spins = 0;
    while ((atomic_load_explicit(&p->state, memory_order_acquire) & ~CLOSED) != 0) {
        if (++spins < SPIN_OWNER_YIELD)
            CPU_RELAX();
        else
            sched_yield();
    }
}
