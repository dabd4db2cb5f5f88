/* scheduler.c - the bounded task queue and the worker pool (scheduler.h). Each worker is
 * a libuv thread that owns one t5_batch and loops: admit queued tasks while the batch
 * has free rows, send a cancellation for tasks whose client left, whose deadline
 * passed or that a shutdown ends, then one step for all of them (the step encodes the
 * new arrivals together first). A new task therefore joins a running batch at the
 * next step. Embedding tasks take no rows: a step admits at most max_batch of them and
 * about EMBED_TOKENS_PER_STEP of their tokens (at least one), so a burst of them cannot
 * stall the running generations for long. The queue counts tasks; a submission that
 * does not fit is refused whole.
 * Whether a task must stop is decided in one place (stop_reason). Not HTTP, not the
 * answers: a task's owner learns how it ended through on_done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "scheduler.h"

enum { EMBED_TOKENS_PER_STEP = 4096 };

typedef struct {
    srv_sched *q;
    int id;
    uv_thread_t thread;
    t5_batch *batch;
    srv_task **active; /* [2 * max_batch] tasks in the batch (generation, then this step's embeddings) */
    int n_active;
} srv_worker;

struct srv_sched {
    srv_sched_config cfg;
    uv_mutex_t lock;
    uv_cond_t cond;
    srv_task *head, *tail;
    int queued;        /* tasks in the queue */
    atomic_int active; /* tasks in batches */
    int stop, abort;   /* guarded by lock */
    srv_worker *workers;
    int started; /* threads running */
};

/* Why a task must end now, SRV_END_DONE when it may go on. */
static srv_end stop_reason(const srv_task *t, int aborting, double now) {
    if (aborting) return SRV_END_SHUTDOWN;
    if (t->cancel && atomic_load(t->cancel)) return SRV_END_CANCELLED;
    if (now > t->deadline) return SRV_END_DEADLINE;
    return SRV_END_DONE;
}

static void end_task(srv_task *t, srv_end why, int started, const char *detail) {
    srv_task_end e = {why, started, detail, t->sched.have_result ? &t->sched.result : NULL};
    t->on_done(t->user, &e);
}

static int engine_token(void *user, int32_t token, float logprob) {
    srv_task *t = user;
    return t->u.gen.on_token ? t->u.gen.on_token(t->user, token, logprob) : 0;
}

static void engine_hidden(void *user, const float *h, int n) {
    srv_task *t = user;
    if (h) {
        t->u.embed.on_hidden(t->user, h, n);
        t->sched.delivered = 1;
    }
    t->sched.finished = 1;
}

static void engine_done(void *user, t5_result *r) {
    srv_task *t = user;
    t->sched.result = *r; /* the task owns the arrays now */
    memset(r, 0, sizeof *r);
    t->sched.have_result = 1;
    t->sched.finished = 1;
}

/* Admits t into the worker's batch: the engine call of each task kind. */
static int task_start(srv_worker *w, srv_task *t, char *err, size_t errlen) {
    switch (t->kind) {
    case SRV_TASK_GENERATE:
        return t5_batch_add(w->batch, t->ids, t->n, &t->u.gen.params, engine_token, engine_done, t, err,
                            errlen);
    case SRV_TASK_EMBED:
        return t5_batch_add_embed(w->batch, t->ids, t->n, engine_hidden, t, err, errlen);
    }
    return -1;
}

/* How a task that left the batch ended. */
static void task_retire(srv_task *t) {
    if (t->kind == SRV_TASK_EMBED) { /* it got its output, or it never ran */
        if (t->sched.delivered)
            end_task(t, SRV_END_DONE, 1, NULL);
        else if (t->sched.cancel_sent)
            end_task(t, t->sched.why, 1, NULL);
        else
            end_task(t, SRV_END_FAILED, 1,
                     t->sched.failed ? t->sched.failed : "out of memory encoding the input");
        return;
    }
    int fin = t->sched.have_result && t->sched.result.n_seqs > 0 ? t->sched.result.seqs[0].finish : 0;
    if (t->sched.failed)
        end_task(t, SRV_END_FAILED, 1, t->sched.failed);
    else if (fin == T5_FINISH_ERROR)
        end_task(t, SRV_END_FAILED, 1, "out of memory encoding the input");
    else if (fin == T5_FINISH_CANCELLED)
        end_task(t, t->sched.cancel_sent ? t->sched.why : SRV_END_SHUTDOWN, 1, NULL);
    else
        end_task(t, SRV_END_DONE, 1, NULL);
}

static void worker_retire_finished(srv_worker *w) {
    int k = 0;
    for (int i = 0; i < w->n_active; i++) {
        srv_task *t = w->active[i];
        if (!t->sched.finished) {
            w->active[k++] = t;
            continue;
        }
        atomic_fetch_sub(&w->q->active, 1);
        task_retire(t);
    }
    w->n_active = k;
}

static void worker_main(void *arg) {
    srv_worker *w = arg;
    srv_sched *q = w->q;
    char err[256];
    for (;;) {
        srv_task *admit = NULL, **tail = &admit;
        uv_mutex_lock(&q->lock);
        while (!q->stop && !q->head && w->n_active == 0)
            uv_cond_wait(&q->cond, &q->lock);
        if (q->stop && !q->head && w->n_active == 0) {
            uv_mutex_unlock(&q->lock);
            break;
        }
        int free_rows = t5_batch_rows_available(w->batch), embeds = 0, embed_tokens = 0;
        while (q->head) {
            srv_task *t = q->head;
            if (t->kind != SRV_TASK_EMBED && t->rows > free_rows) break;
            if (t->kind == SRV_TASK_EMBED) {
                if (embeds == q->cfg.max_batch || (embeds && embed_tokens + t->n > EMBED_TOKENS_PER_STEP))
                    break;
                embeds++;
                embed_tokens += t->n;
            }
            q->head = t->sched.next;
            if (!q->head) q->tail = NULL;
            q->queued--;
            t->sched.next = NULL;
            *tail = t;
            tail = &t->sched.next;
            free_rows -= t->rows;
        }
        int aborting = q->abort;
        uv_mutex_unlock(&q->lock);

        double now = srv_now();
        while (admit) {
            srv_task *t = admit;
            admit = t->sched.next;
            t->sched.next = NULL;
            srv_end why = stop_reason(t, aborting, now);
            if (why != SRV_END_DONE) {
                end_task(t, why, 0, NULL);
                continue;
            }
            int h = task_start(w, t, err, sizeof err);
            if (h < 0) {
                srv_log(SRV_LOG_WARN, "worker %d: admitting a task failed: %s", w->id, err);
                end_task(t, SRV_END_FAILED, 0,
                         t->kind == SRV_TASK_EMBED ? "the embedding failed to start"
                                                   : "generation failed to start");
                continue;
            }
            t->sched.handle = h;
            w->active[w->n_active++] = t;
            atomic_fetch_add(&q->active, 1);
        }
        now = srv_now();
        for (int i = 0; i < w->n_active; i++) {
            srv_task *t = w->active[i];
            if (t->sched.cancel_sent || t->sched.finished) continue;
            srv_end why = stop_reason(t, aborting, now);
            if (why != SRV_END_DONE) {
                t->sched.why = why;
                t->sched.cancel_sent = 1;
                t5_batch_cancel(w->batch, t->sched.handle);
            }
        }
        if (w->n_active == 0) continue;
        int rows = t5_batch_active(w->batch) > 0 ? q->cfg.max_batch - t5_batch_rows_available(w->batch) : -1;
        if (q->cfg.on_step && rows != 0) /* 0: embeddings only, no decoder step */
            q->cfg.on_step(q->cfg.user, rows > 0 ? rows : 0);
        if (t5_batch_step(w->batch) < 0) {
            srv_log(SRV_LOG_ERROR, "worker %d: t5_batch_step failed", w->id);
            for (int i = 0; i < w->n_active; i++) {
                srv_task *t = w->active[i];
                if (!t->sched.finished) t5_batch_cancel(w->batch, t->sched.handle);
                t->sched.failed = "generation failed";
            }
            t5_batch_step(w->batch); /* hands back what was cancelled */
            for (int i = 0; i < w->n_active; i++)
                w->active[i]->sched.finished = 1;
        }
        worker_retire_finished(w);
    }
}

srv_sched *srv_sched_create(const srv_sched_config *c, char *err, size_t errlen) {
    srv_sched *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->cfg = *c;
    uv_mutex_init(&q->lock);
    uv_cond_init(&q->cond);
    q->workers = calloc((size_t)c->workers, sizeof *q->workers);
    if (!q->workers) {
        snprintf(err, errlen, "out of memory");
        srv_sched_free(q);
        return NULL;
    }
    for (int i = 0; i < c->workers; i++) {
        srv_worker *w = &q->workers[i];
        w->q = q;
        w->id = i;
        w->active = calloc(2 * (size_t)c->max_batch, sizeof *w->active);
        w->batch = t5_batch_create(c->model, c->max_batch, c->threads_per_worker, err, errlen);
        if (!w->active || !w->batch) {
            if (!w->active) snprintf(err, errlen, "out of memory");
            srv_sched_free(q);
            return NULL;
        }
    }
    for (int i = 0; i < c->workers; i++) {
        if (uv_thread_create(&q->workers[i].thread, worker_main, &q->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            srv_sched_free(q);
            return NULL;
        }
        q->started = i + 1;
    }
    return q;
}

int srv_sched_submit(srv_sched *q, srv_task *const *tasks, int n) {
    uv_mutex_lock(&q->lock);
    if (q->stop || q->queued + n > q->cfg.queue_size) {
        uv_mutex_unlock(&q->lock);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        tasks[i]->sched.next = NULL;
        if (q->tail)
            q->tail->sched.next = tasks[i];
        else
            q->head = tasks[i];
        q->tail = tasks[i];
    }
    q->queued += n;
    uv_cond_broadcast(&q->cond);
    uv_mutex_unlock(&q->lock);
    return 0;
}

void srv_sched_expire(srv_sched *q, double now) {
    srv_task *dead = NULL;
    uv_mutex_lock(&q->lock);
    srv_task **pp = &q->head, *prev = NULL;
    while (*pp) {
        srv_task *t = *pp;
        srv_end why = stop_reason(t, 0, now); /* an abort is the workers' to carry out */
        if (why != SRV_END_DONE) {
            *pp = t->sched.next;
            q->queued--;
            t->sched.why = why;
            t->sched.next = dead;
            dead = t;
        } else {
            prev = t;
            pp = &t->sched.next;
        }
    }
    q->tail = prev;
    uv_mutex_unlock(&q->lock);
    while (dead) {
        srv_task *t = dead;
        dead = t->sched.next;
        t->sched.next = NULL;
        end_task(t, t->sched.why, 0, NULL);
    }
}

void srv_sched_abort(srv_sched *q) {
    uv_mutex_lock(&q->lock);
    q->abort = 1;
    uv_cond_broadcast(&q->cond);
    uv_mutex_unlock(&q->lock);
}

int srv_sched_queued(srv_sched *q) {
    uv_mutex_lock(&q->lock);
    int n = q->queued;
    uv_mutex_unlock(&q->lock);
    return n;
}

int srv_sched_active(srv_sched *q) {
    return atomic_load(&q->active);
}

void srv_sched_free(srv_sched *q) {
    if (!q) return;
    uv_mutex_lock(&q->lock);
    q->stop = 1;
    uv_cond_broadcast(&q->cond);
    uv_mutex_unlock(&q->lock);
    for (int i = 0; i < q->started; i++)
        uv_thread_join(&q->workers[i].thread);
    for (int i = 0; q->workers && i < q->cfg.workers; i++) {
        t5_batch_free(q->workers[i].batch);
        free(q->workers[i].active);
    }
    free(q->workers);
    uv_cond_destroy(&q->cond);
    uv_mutex_destroy(&q->lock);
    free(q);
}
