/* embed.c - the embedding core shared by the embedding routes (srv.h): a request's
 * inputs become encoder ids (texts through gen/, truncated to the folder's
 * max_seq_length unless told otherwise), one SRV_TASK_EMBED task each, queued whole;
 * on the worker each task's hidden state goes through the folder's pipeline
 * (t5_embed_sentence: pooling, Dense, Normalize) or is copied (pooling none); when the
 * last task ends the route's callback gets every vector (or the status the request
 * ends with) and answers. No answer shapes here: those are the routes'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

typedef struct embed_req embed_req;

/* One input: one scheduler task. */
typedef struct {
    srv_task task;
    embed_req *e;
    int32_t *ids;
    srv_embed_vector vec; /* vec.v malloc'd by the hidden hook */
} embed_job;

/* One request: its jobs live in it; freed after the callback. */
struct embed_req {
    srv_request *req; /* one reference, released after the callback */
    srv_server *srv;
    t5_embed_params params;
    int dim;
    srv_embed_fn on_done;
    void *user;
    uv_mutex_t lock; /* guards what follows (tasks end on several workers) */
    int remaining;
    int status; /* first error of any job */
    char msg[200];
    embed_job *jobs; /* [n] */
    int n;
};

void srv_embed_default_opts(const srv_server *s, const srv_request *r, srv_embed_opts *o) {
    memset(o, 0, sizeof *o);
    t5_embed_default_params(&o->params);
    o->truncate = GEN_TRUNCATE_FOLDER;
    o->deadline = srv_http_t_start(r) + s->cfg.request_timeout_ms / 1000.0;
    o->field = "text";
}

static void req_free(embed_req *e) {
    for (int i = 0; i < e->n; i++) {
        free(e->jobs[i].ids);
        free((void *)e->jobs[i].vec.v);
    }
    free(e->jobs);
    uv_mutex_destroy(&e->lock);
    free(e);
}

static void set_error(embed_req *e, int status, const char *msg) {
    uv_mutex_lock(&e->lock);
    if (!e->status) {
        e->status = status;
        snprintf(e->msg, sizeof e->msg, "%s", msg);
    }
    uv_mutex_unlock(&e->lock);
}

/* On the worker, during the batch step: the pipeline of one input. */
static void job_on_hidden(void *user, const float *h, int n) {
    embed_job *j = user;
    embed_req *e = j->e;
    int rows = e->params.pooling == 0 ? n : 1;
    float *v = malloc((size_t)rows * (size_t)e->dim * sizeof *v);
    char err[200];
    if (!v) {
        set_error(e, 500, "out of memory");
        return;
    }
    if (e->params.pooling == 0)
        memcpy(v, h, (size_t)n * (size_t)e->dim * sizeof *v);
    else if (t5_embed_sentence(e->srv->embedder, &e->params, h, n, v, err, sizeof err) != 0) {
        free(v);
        set_error(e, 500, err);
        return;
    }
    j->vec = (srv_embed_vector){v, rows, e->dim, n};
}

static void job_on_done(void *user, srv_task_end *end) {
    embed_job *j = user;
    embed_req *e = j->e;
    char msg[200];
    int status = srv_end_status(end, "embedding", msg, sizeof msg);
    if (!status && !j->vec.v && !e->status) status = 500, snprintf(msg, sizeof msg, "the embedding failed");
    if (status) set_error(e, status, msg);
    if (!status) {
        srv_metrics_embed_tokens(e->srv->metrics, j->task.n);
        srv_http_count_tokens(e->req, j->task.n, 0);
    }
    uv_mutex_lock(&e->lock);
    int last = --e->remaining == 0;
    uv_mutex_unlock(&e->lock);
    if (!last) return;
    srv_embed_vector *vec = malloc((size_t)e->n * sizeof *vec);
    srv_embed_result res = {e->status, e->msg, vec, e->n, 0};
    if (!res.status && !vec) res.status = 500, res.message = "out of memory";
    for (int i = 0; !res.status && i < e->n; i++) {
        vec[i] = e->jobs[i].vec;
        res.tokens += vec[i].tokens;
    }
    srv_request *r = e->req;
    e->on_done(e->user, r, &res);
    free(vec);
    req_free(e);
    srv_http_release(r);
}

/* 0 when embeddings can be asked of this server, else the status with err. */
static int unavailable(const srv_server *s, char *err, size_t errlen) {
    if (!s->model)
        snprintf(err, errlen,
                 "this server runs tokenize-only (its model folder has a tokenizer but no "
                 "config.json/model weights): embeddings are not available; /tokenize and /detokenize are");
    else if (atomic_load(&s->draining))
        snprintf(err, errlen, "the server is shutting down and takes no new embedding requests");
    else
        return 0;
    return 503;
}

/* The ids of input i into j. 0, or the HTTP status with err. */
static int input_ids(const srv_server *s, const srv_embed_input *in, int i, const srv_embed_opts *o,
                     embed_job *j, char *err, size_t errlen) {
    const cfg_t *c = &s->cfg;
    if (in->text) {
        int truncate = gen_embed_truncate(s->embedder, o->truncate, c->max_input_tokens);
        return srv_text_ids(s, o->field, in->text, in->len, i, o->is_array, truncate, &j->ids, &j->task.n,
                            err, errlen);
    }
    char name[64];
    if (o->is_array)
        snprintf(name, sizeof name, "%s[%d]", o->field, i);
    else
        snprintf(name, sizeof name, "%s", o->field);
    int32_t vocab = t5_model_config(s->model)->vocab_size;
    if (in->n <= 0) return snprintf(err, errlen, "%s must not be empty", name), 400;
    if (in->n > c->max_input_tokens)
        return snprintf(err, errlen, "%s has %d ids, more than this server's max_input_tokens (%d)", name,
                        in->n, c->max_input_tokens),
               400;
    for (int k = 0; k < in->n; k++)
        if (in->ids[k] < 0 || in->ids[k] >= vocab)
            return snprintf(err, errlen, "%s[%d] = %d is outside the vocabulary (0 to %d)", name, k,
                            in->ids[k], vocab - 1),
                   400;
    if (!(j->ids = malloc((size_t)in->n * sizeof *j->ids)))
        return snprintf(err, errlen, "out of memory"), 500;
    memcpy(j->ids, in->ids, (size_t)in->n * sizeof *j->ids);
    j->task.n = in->n;
    return 0;
}

int srv_embed_submit(srv_request *r, const srv_embed_input *in, int n, const srv_embed_opts *o,
                     srv_embed_fn on_done, void *user, char *err, size_t errlen) {
    srv_server *s = srv_http_server(r);
    int status = unavailable(s, err, errlen);
    if (status) return status;
    char derr[200];
    int dim = t5_embedder_dim(s->embedder, &o->params, derr, sizeof derr);
    if (dim < 0) return snprintf(err, errlen, "pooling: %s", derr), 400;
    embed_req *e = calloc(1, sizeof *e);
    if (!e || !(e->jobs = calloc((size_t)n, sizeof *e->jobs))) {
        free(e);
        return snprintf(err, errlen, "out of memory"), 500;
    }
    uv_mutex_init(&e->lock);
    e->req = r, e->srv = s, e->params = o->params, e->dim = dim;
    e->on_done = on_done, e->user = user, e->remaining = e->n = n;
    srv_task **tasks = malloc((size_t)n * sizeof *tasks);
    status = tasks ? 0 : (snprintf(err, errlen, "out of memory"), 500);
    for (int i = 0; !status && i < n; i++) {
        embed_job *j = &e->jobs[i];
        j->e = e;
        if ((status = input_ids(s, &in[i], i, o, j, err, errlen))) break;
        srv_task *t = &j->task;
        t->kind = SRV_TASK_EMBED;
        t->ids = j->ids;
        t->rows = 0;
        t->deadline = o->deadline;
        t->cancel = srv_http_cancel_flag(r);
        t->u.embed.on_hidden = job_on_hidden;
        t->on_done = job_on_done;
        t->user = j;
        tasks[i] = t;
    }
    if (!status) {
        srv_http_retain(r);
        srv_http_defer(r);
        if (srv_sched_submit(s->sched, tasks, n) != 0) {
            snprintf(err, errlen, "the server is overloaded (its queue is full); retry later");
            srv_http_release(r); /* never the last reference: MHD holds one */
            status = 429;
        }
    }
    free(tasks);
    if (status) req_free(e);
    return status;
}
