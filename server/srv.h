/* srv.h - t5serve's internal header: the objects the server's files share.
 *
 * Threads and who owns what:
 *   - the main thread runs a libuv loop: SIGTERM/SIGINT, a 50 ms tick (deadlines of
 *     queued jobs, drain progress) and an async handle that resumes suspended
 *     connections when work completes (http.c, main.c);
 *   - libmicrohttpd's epoll thread(s) run the access handler: parse, validate, tokenize,
 *     answer cheap routes at once, queue generation jobs and suspend the connection;
 *   - worker threads (scheduler.c) each own one t5_batch and decode continuously.
 * A srv_request lives as long as someone holds a reference: MHD (until its completed
 * callback), every unfinished job, and every pending resume. srv_request_release frees it.
 * What it is not: a public API; nothing outside server/ includes it. */
#ifndef T5SERVE_SRV_H
#define T5SERVE_SRV_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cfg.h"
#include "t5.h"
#include "tok.h"

#define SRV_VERSION "0.1.0"

/* ---- log.c ---- */
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN = 1, SRV_LOG_INFO = 2, SRV_LOG_DEBUG = 3 };
void srv_log_set_level(const char *level);
int srv_log_enabled(int level);
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double srv_now(void); /* monotonic seconds */

/* ---- routes (index into metrics) ---- */
enum {
    SRV_ROUTE_GENERATE,
    SRV_ROUTE_TOKENIZE,
    SRV_ROUTE_DETOKENIZE,
    SRV_ROUTE_HEALTH,
    SRV_ROUTE_READY,
    SRV_ROUTE_METRICS,
    SRV_ROUTE_INFO,
    SRV_ROUTE_OTHER,
    SRV_ROUTE_COUNT
};
const char *srv_route_name(int route);

/* ---- metrics.c ---- */
typedef struct srv_metrics srv_metrics;
srv_metrics *srv_metrics_create(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int route, int status, double seconds);
void srv_metrics_tokens(srv_metrics *m, long in, long out);
void srv_metrics_ttft(srv_metrics *m, double seconds);
void srv_metrics_token_latency(srv_metrics *m, double seconds);
void srv_metrics_batch_rows(srv_metrics *m, int rows);
/* Prometheus text; caller frees. Gauges are passed in. */
char *srv_metrics_render(srv_metrics *m, int queued, int active, int ready, int draining);

typedef struct srv_server srv_server;
typedef struct srv_request srv_request;
typedef struct srv_job srv_job;
typedef struct srv_sched srv_sched;
typedef struct srv_gen srv_gen;

/* ---- the reply a request will send (owned by the request until queued) ---- */
typedef struct {
    int status;
    char *body; /* malloc'd; MHD frees it once queued */
    size_t len;
    const char *content_type;
    int retry_after;   /* >0: send Retry-After */
    const char *allow; /* 405: Allow header */
    int www_auth;      /* 401: WWW-Authenticate */
} srv_reply;

enum { SRV_ST_RECV = 0, SRV_ST_WAIT, SRV_ST_SENT };

struct srv_request {
    srv_server *srv;
    struct MHD_Connection *conn;
    uv_mutex_t lock; /* guards reply, suspended, stream buffer, stream flags */
    atomic_int refs;
    atomic_int cancel; /* set when the client is gone: workers cancel its sequences */
    int route, state, counted_inflight;
    char method[8], path[96];
    double t_start;
    /* body (access handler only) */
    char *body;
    size_t body_len, body_cap, dropped; /* dropped: body bytes read after an early error */
    /* reply */
    srv_reply reply;
    int have_reply, suspended;
    size_t bytes_out;
    long tokens_in, tokens_out;
    /* generation (routes_gen.c) */
    srv_gen *gen;
    /* stream (sse.c): bytes produced by workers, consumed by MHD */
    char *sse;
    size_t sse_len, sse_off, sse_cap;
    int stream, stream_started, stream_done;
};

srv_request *srv_request_create(srv_server *s, struct MHD_Connection *conn, const char *method,
                                const char *url);
void srv_request_retain(srv_request *r);
void srv_request_release(srv_request *r);
/* With r->lock held: if the connection is suspended, schedule its resumption. */
void srv_request_wake_locked(srv_request *r);

/* reply.c: fill r->reply (replacing any previous one). json is consumed (decref'd). */
void srv_reply_json(srv_request *r, int status, json_t *json);
void srv_reply_error(srv_request *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void srv_reply_text(srv_request *r, int status, const char *content_type, char *body, size_t len);
const char *srv_error_type(int status);
json_t *srv_error_json(int status, const char *message); /* {"error": {...}} */
enum MHD_Result srv_reply_queue(srv_request *r);         /* sends r->reply on r->conn */

/* ---- validate.c: request JSON helpers; each returns 0, or -1 with err set ---- */
json_t *srv_json_parse(const char *body, size_t len, int max_depth, char *err, size_t errlen);
int srv_json_fields(json_t *obj, const char *const *allowed, char *err, size_t errlen);
int srv_json_int(json_t *obj, const char *key, long long lo, long long hi, long long *out, char *err,
                 size_t errlen);
int srv_json_num(json_t *obj, const char *key, double lo, double hi, int lo_open, double *out, char *err,
                 size_t errlen);
int srv_json_bool(json_t *obj, const char *key, int *out, char *err, size_t errlen);
/* "text": a string or a non-empty array of at most max strings. *texts points into obj. */
int srv_json_texts(json_t *obj, const char *key, int max, const char ***texts, size_t **lens, int *n,
                   int *is_array, char *err, size_t errlen);
/* an array of ints in [0, vocab): *ids malloc'd */
int srv_json_ids(json_t *v, const char *key, int32_t vocab, int max, int32_t **ids, int *n, char *err,
                 size_t errlen);

/* ---- gentext.c: text of a generated sequence, stop strings, streamed deltas ---- */
typedef struct {
    char **s;
    size_t *len;
    int n;
} srv_stops;
typedef struct {
    int32_t *ids;
    int n, cap;
    char *text; /* decode of ids (cut at a stop string once found) */
    size_t len;
    size_t emitted; /* bytes already handed out as deltas */
    long stop_at;   /* byte offset of the first stop string, -1 none */
} srv_textstate;
/* Appends id; returns 1 when a stop string is now complete, 0 otherwise, -1 on error.
 * [*d_off, *d_off + *d_len) of t->text is the new text safe to hand out (whole UTF-8
 * characters that cannot be the start of a stop string). */
int srv_text_push(srv_textstate *t, const tok_model *tok, const srv_stops *st, int32_t id, size_t *d_off,
                  size_t *d_len);
void srv_text_free(srv_textstate *t);
/* Decodes ids and cuts at the first stop string (*stopped = 1). Caller frees. */
char *srv_text_final(const tok_model *tok, const int32_t *ids, int n, const srv_stops *st, int *stopped,
                     size_t *len);

/* ---- a generation job: one encoder input, one batch sequence ---- */
struct srv_job {
    srv_job *next; /* queue link */
    srv_request *req;
    int index; /* which text of the request */
    int32_t *ids;
    int n;
    t5_gen_params params;
    int rows;
    double deadline, t_submit, t_first, t_last;
    /* worker side */
    int handle, cancel_sent, cancel_status, finished;
    t5_result result;
    int have_result;
    int status; /* 0 ok, else the HTTP error status */
    char msg[200];
    srv_textstate text; /* streaming / stop strings */
};

/* ---- scheduler.c: bounded queue + workers, each with a continuous t5_batch ---- */
srv_sched *srv_sched_create(srv_server *s, char *err, size_t errlen);
/* Queues all n jobs or none: returns 0, or -1 when the queue lacks room (429). */
int srv_sched_submit(srv_sched *q, srv_job **jobs, int n);
/* Fails queued jobs whose deadline passed (504). Main thread, any time. */
void srv_sched_expire(srv_sched *q, double now);
/* Cancels every queued and running job (they fail with 503). */
void srv_sched_abort(srv_sched *q);
/* Lets the workers finish what they hold, then joins them. */
void srv_sched_free(srv_sched *q);
int srv_sched_queued(srv_sched *q);
int srv_sched_active(srv_sched *q);

/* ---- routes_gen.c ---- */
void srv_route_generate(srv_request *r);
/* worker-side hooks */
int srv_gen_on_token(srv_job *j, int32_t token, float logprob);
void srv_gen_job_done(srv_job *j); /* j finished (result or status): answer, release, free j */
void srv_gen_free(srv_gen *g);

/* ---- routes_tok.c, routes_info.c ---- */
void srv_route_tokenize(srv_request *r);
void srv_route_detokenize(srv_request *r);
void srv_route_health(srv_request *r);
void srv_route_ready(srv_request *r);
void srv_route_metrics(srv_request *r);
void srv_route_info(srv_request *r);

/* ---- sse.c ---- */
void srv_sse_append(srv_request *r, const char *data, size_t len); /* with r->lock held */
void srv_sse_event(srv_request *r, json_t *json);                  /* with r->lock held; consumes json */
enum MHD_Result srv_sse_queue(srv_request *r);                     /* 200 + event stream */

/* ---- probe.c ---- */
int srv_probe(const cfg_t *c); /* exit status: 0 when GET /health answers 200 */

/* ---- the server ---- */
struct srv_server {
    cfg_t cfg;
    tok_model *tok;
    t5_model *model; /* NULL: tokenize-only */
    int threads_per_worker;
    struct MHD_Daemon *daemon;
    srv_metrics *metrics;
    srv_sched *sched;
    uv_loop_t loop;
    uv_async_t wake;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    uv_mutex_t resume_lock;
    srv_request **resume; /* pending resumptions (each holds a reference) */
    size_t n_resume, cap_resume;
    atomic_int draining;
    atomic_int inflight; /* generation requests not yet fully answered */
    double drain_deadline;
    int aborted;
    double t_started;
    char model_name[128];
};

/* http.c */
int srv_http_start(srv_server *s, char *err, size_t errlen);
void srv_http_stop_accepting(srv_server *s);
void srv_http_stop(srv_server *s);
void srv_http_resume_pending(srv_server *s); /* main thread: resume what workers finished */

#endif
