/* scheduler.c - the bounded job queue and the worker pool. Each worker is a libuv
 * thread that owns one t5_batch and loops: admit queued jobs while the batch has free
 * rows, cancel sequences whose client left or whose deadline passed, then one step for
 * all of them (the step encodes the new arrivals together first). A new job therefore
 * joins a running batch at the next step. Finished jobs go to srv_gen_job_done, which
 * answers the request. The queue counts sequences; a submission that does not fit is
 * refused whole (429). Not the HTTP side and not the answer building. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

typedef struct {
    srv_sched *q;
    int id;
    uv_thread_t thread;
    t5_batch *batch;
    srv_job **active; /* [max_batch] jobs in the batch */
    int n_active;
} srv_worker;

struct srv_sched {
    srv_server *srv;
    uv_mutex_t lock;
    uv_cond_t cond;
    srv_job *head, *tail;
    int queued;        /* jobs in the queue */
    atomic_int active; /* jobs in batches */
    int stop, abort;   /* guarded by lock */
    srv_worker *workers;
    int n_workers, started; /* workers allocated, threads running */
};

static int on_token(void *user, int32_t token, float logprob) {
    return srv_gen_on_token((srv_job *)user, token, logprob);
}

static void on_done(void *user, t5_result *r) {
    srv_job *j = user;
    j->result = *r; /* we own the arrays now */
    memset(r, 0, sizeof *r);
    j->have_result = 1;
    j->finished = 1;
}

static void fail_job(srv_job *j, int status, const char *msg) {
    j->status = status;
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    srv_gen_job_done(j);
}

static void worker_retire_finished(srv_worker *w) {
    int k = 0;
    for (int i = 0; i < w->n_active; i++) {
        srv_job *j = w->active[i];
        if (!j->finished) {
            w->active[k++] = j;
            continue;
        }
        atomic_fetch_sub(&w->q->active, 1);
        if (j->have_result && j->result.n_seqs > 0 && j->result.seqs[0].finish == T5_FINISH_ERROR &&
            !j->status) {
            j->status = 500;
            snprintf(j->msg, sizeof j->msg, "out of memory encoding the input");
        }
        if (j->have_result && j->result.n_seqs > 0 && j->result.seqs[0].finish == T5_FINISH_CANCELLED &&
            !j->status) {
            j->status = j->cancel_status ? j->cancel_status : 503;
            snprintf(j->msg, sizeof j->msg, "%s",
                     j->status == 504   ? "the request's deadline passed before generation finished"
                     : j->status == 499 ? "the client went away"
                                        : "the server is shutting down");
        }
        srv_gen_job_done(j);
    }
    w->n_active = k;
}

static void worker_main(void *arg) {
    srv_worker *w = arg;
    srv_sched *q = w->q;
    srv_server *s = q->srv;
    char err[256];
    for (;;) {
        srv_job *admit = NULL, **tail = &admit;
        uv_mutex_lock(&q->lock);
        while (!q->stop && !q->head && w->n_active == 0)
            uv_cond_wait(&q->cond, &q->lock);
        if (q->stop && !q->head && w->n_active == 0) {
            uv_mutex_unlock(&q->lock);
            break;
        }
        int free_rows = t5_batch_rows_available(w->batch);
        while (q->head && q->head->rows <= free_rows) {
            srv_job *j = q->head;
            q->head = j->next;
            if (!q->head) q->tail = NULL;
            q->queued--;
            j->next = NULL;
            *tail = j;
            tail = &j->next;
            free_rows -= j->rows;
        }
        int aborting = q->abort;
        uv_mutex_unlock(&q->lock);

        double now = srv_now();
        while (admit) {
            srv_job *j = admit;
            admit = j->next;
            j->next = NULL;
            if (aborting)
                fail_job(j, 503, "the server is shutting down");
            else if (atomic_load(&j->req->cancel))
                fail_job(j, 499, "the client went away");
            else if (now > j->deadline)
                fail_job(j, 504, "the request's deadline passed while it waited in the queue");
            else {
                int h =
                    t5_batch_add(w->batch, j->ids, j->n, &j->params, on_token, on_done, j, err, sizeof err);
                if (h < 0) {
                    srv_log(SRV_LOG_WARN, "worker %d: t5_batch_add failed: %s", w->id, err);
                    fail_job(j, 500, "generation failed to start");
                    continue;
                }
                j->handle = h;
                w->active[w->n_active++] = j;
                atomic_fetch_add(&q->active, 1);
            }
        }
        /* cancellations: client gone, deadline, shutdown */
        now = srv_now();
        for (int i = 0; i < w->n_active; i++) {
            srv_job *j = w->active[i];
            if (j->cancel_sent || j->finished) continue;
            int why = aborting ? 503 : atomic_load(&j->req->cancel) ? 499 : now > j->deadline ? 504 : 0;
            if (why) {
                j->cancel_status = why;
                j->cancel_sent = 1;
                t5_batch_cancel(w->batch, j->handle);
            }
        }
        if (w->n_active > 0) {
            srv_metrics_batch_rows(s->metrics, t5_batch_active(w->batch) > 0
                                                   ? s->cfg.max_batch - t5_batch_rows_available(w->batch)
                                                   : 0);
            int rc = t5_batch_step(w->batch);
            if (rc < 0) {
                srv_log(SRV_LOG_ERROR, "worker %d: t5_batch_step failed", w->id);
                for (int i = 0; i < w->n_active; i++) {
                    srv_job *j = w->active[i];
                    if (!j->finished) t5_batch_cancel(w->batch, j->handle);
                    j->status = 500;
                    snprintf(j->msg, sizeof j->msg, "generation failed");
                }
                t5_batch_step(w->batch);
                for (int i = 0; i < w->n_active; i++)
                    w->active[i]->finished = 1;
            }
            worker_retire_finished(w);
        }
    }
}

srv_sched *srv_sched_create(srv_server *s, char *err, size_t errlen) {
    srv_sched *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->srv = s;
    uv_mutex_init(&q->lock);
    uv_cond_init(&q->cond);
    q->n_workers = s->cfg.workers;
    q->workers = calloc((size_t)q->n_workers, sizeof *q->workers);
    if (!q->workers) {
        snprintf(err, errlen, "out of memory");
        srv_sched_free(q);
        return NULL;
    }
    for (int i = 0; i < q->n_workers; i++) {
        srv_worker *w = &q->workers[i];
        w->q = q;
        w->id = i;
        w->active = calloc((size_t)s->cfg.max_batch, sizeof *w->active);
        w->batch = t5_batch_create(s->model, s->cfg.max_batch, s->threads_per_worker, err, errlen);
        if (!w->active || !w->batch) {
            if (!w->active) snprintf(err, errlen, "out of memory");
            srv_sched_free(q);
            return NULL;
        }
    }
    for (int i = 0; i < q->n_workers; i++) {
        if (uv_thread_create(&q->workers[i].thread, worker_main, &q->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            srv_sched_free(q);
            return NULL;
        }
        q->started = i + 1;
    }
    return q;
}

int srv_sched_submit(srv_sched *q, srv_job **jobs, int n) {
    uv_mutex_lock(&q->lock);
    if (q->stop || q->queued + n > q->srv->cfg.queue_size) {
        uv_mutex_unlock(&q->lock);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        jobs[i]->next = NULL;
        if (q->tail)
            q->tail->next = jobs[i];
        else
            q->head = jobs[i];
        q->tail = jobs[i];
    }
    q->queued += n;
    uv_cond_broadcast(&q->cond);
    uv_mutex_unlock(&q->lock);
    return 0;
}

void srv_sched_expire(srv_sched *q, double now) {
    srv_job *dead = NULL;
    uv_mutex_lock(&q->lock);
    srv_job **pp = &q->head, *prev = NULL;
    while (*pp) {
        srv_job *j = *pp;
        if (now > j->deadline || atomic_load(&j->req->cancel)) {
            *pp = j->next;
            q->queued--;
            j->next = dead;
            dead = j;
        } else {
            prev = j;
            pp = &j->next;
        }
    }
    q->tail = prev;
    uv_mutex_unlock(&q->lock);
    while (dead) {
        srv_job *j = dead;
        dead = j->next;
        j->next = NULL;
        if (atomic_load(&j->req->cancel))
            fail_job(j, 499, "the client went away");
        else
            fail_job(j, 504, "the request's deadline passed while it waited in the queue");
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
    for (int i = 0; q->workers && i < q->n_workers; i++) {
        t5_batch_free(q->workers[i].batch);
        free(q->workers[i].active);
    }
    free(q->workers);
    uv_cond_destroy(&q->cond);
    uv_mutex_destroy(&q->lock);
    free(q);
}
