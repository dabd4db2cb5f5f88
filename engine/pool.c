/* pool.c - a tiny fork-join thread pool for the engine's kernels: the calling
 * thread plus n-1 workers run one function over [0, n) and join. Workers spin
 * briefly between jobs (a decoder step issues ~100 short jobs back to back) and
 * then sleep on a condition variable, so an idle pool costs no CPU.
 * What it is not: a task queue; one job at a time, driven by one owner thread. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "t5_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { SPIN_WORKER = 20000, SPIN_OWNER_YIELD = 2000 };

struct t5_pool {
    int n;
    pthread_t *threads; /* [n-1] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;    /* bumped once per job */
    atomic_int done;    /* workers finished with the current job */
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
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        p->fn(p->arg, w.ith, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
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
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int t5_pool_threads(const t5_pool *p) { return p ? p->n : 1; }

void t5_pool_run(t5_pool *p, t5_pool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1) {
        if (++spins < SPIN_OWNER_YIELD)
            CPU_RELAX();
        else
            sched_yield();
    }
}
