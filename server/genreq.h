/* genreq.h - the generation request machinery of routes_gen.c, shared by every route
 * that generates (POST /generate in our shape, the OpenAI /v1 routes, TGI's routes):
 * a request is a set of jobs (one scheduler task each: one encoder input, one or more
 * sequences), the per-token hook (time to first token, stop strings, streamed deltas)
 * and the answer once every job has ended. What a route adds is its dialect: how a
 * job's result reads, how a streamed token reads, how the whole answer (or the end of
 * the stream) and an error are sent. Internal to server/.
 *
 * Life: srv_genreq_create, then the route parses its body into g (stops, stream,
 * num_return, ctx) and adds jobs (srv_genreq_add_job); srv_genreq_run queues them and
 * from then on the dialect's hooks run on workers; g is freed after finish. On an error
 * before run, srv_genreq_fail answers and frees. */
#ifndef T5SERVE_GENREQ_H
#define T5SERVE_GENREQ_H

#include "srv.h"

typedef struct srv_genreq srv_genreq;
typedef struct srv_genjob srv_genjob;

typedef struct {
    /* a job's part of the answer, at its end (a worker); NULL: out of memory */
    json_t *(*job_answer)(srv_genreq *g, srv_genjob *j);
    /* a stream's event for a new token of job j: text[0..len) the new whole characters
     * (may be empty); NULL: no event */
    json_t *(*token_event)(srv_genreq *g, srv_genjob *j, int32_t id, const char *text, size_t len,
                           float logprob);
    /* every job has ended: send the answer, the error (g->status) or the stream's end */
    void (*finish)(srv_genreq *g);
    /* an error answer in the dialect's shape */
    srv_reply (*error)(srv_genreq *g, int status, const char *msg);
} srv_gendialect;

struct srv_genreq {
    srv_request *req; /* each job holds a reference */
    srv_server *srv;
    const srv_gendialect *d;
    void *ctx; /* the dialect's, ctx_size zeroed bytes (freed with g) */
    double t_start;
    int n, is_array, stream, details, num_return;
    gen_stops stops;
    uv_mutex_t lock;  /* guards what follows (jobs end on several workers) */
    int remaining;    /* jobs not ended */
    json_t **answers; /* [n], filled as jobs end */
    int status;       /* first error of any job */
    char msg[200];
    int streamed; /* token events sent */
    long tokens_in, tokens_out;
    /* the jobs, until run */
    srv_task **tasks;
    int cap;
};

struct srv_genjob {
    srv_task task;
    srv_genreq *g;
    int index; /* which job of the request */
    int32_t *ids;
    int n;
    double t_first, t_last;
    gen_text text; /* streaming / stop strings */
    t5_result result;
    json_t *held; /* a dialect's stream event kept back for now (freed with the job) */
};

/* A request of route r answered in dialect d, with ctx_size zeroed bytes for the dialect
 * in g->ctx; NULL when out of memory (nothing sent). */
srv_genreq *srv_genreq_create(srv_request *r, const srv_gendialect *d, size_t ctx_size);
/* Adds a job generating from ids[n] (owned by the job from here, even on failure) with p
 * and rows batch rows. 0, or -1 (out of memory). */
int srv_genreq_add_job(srv_genreq *g, int32_t *ids, int n, const t5_gen_params *p, int rows, double deadline);
/* Queues the jobs and defers the answer (429 when the queue cannot take them). */
void srv_genreq_run(srv_genreq *g);
/* Answers status/msg in the dialect's shape and frees g (before run only). */
void srv_genreq_fail(srv_genreq *g, int status, const char *msg);
/* Answers p and frees g (before run only). */
void srv_genreq_abandon(srv_genreq *g, srv_reply p);

/* The parameters' defaults of this server and the tokenizer's generation ids. */
void srv_gen_default_params(const srv_server *s, t5_gen_params *p);
/* Reads every parameter of gen_params[] present in obj into p (after the defaults):
 * ranges narrowed by the server's limits; *rows the batch rows it needs. 0, or -1 with err. */
int srv_gen_parse_params(srv_server *s, json_t *obj, t5_gen_params *p, int *rows, char *err, size_t errlen);
/* "stop" of obj: a string or an array of at most max strings. 0, or -1 with err. */
int srv_gen_parse_stops(json_t *obj, const char *key, int max, gen_stops *st, char *err, size_t errlen);
/* Reasons not to generate (tokenize-only 503, no decoder 400, draining 503): 0, or the
 * status with err. */
int srv_gen_unavailable(const srv_server *s, const char *route, char *err, size_t errlen);

#endif
