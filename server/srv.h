/* srv.h - t5serve's shared header: the server object and the small modules every
 * route uses (metrics, request validation), plus the route functions.
 *
 * Threads and who owns what:
 *   - the main thread runs a libuv loop: SIGTERM/SIGINT, a 50 ms tick (deadlines of
 *     queued tasks, drain progress) and an async handle that resumes suspended
 *     connections when work completes (http.c, main.c);
 *   - libmicrohttpd's poll thread(s) run the access handler: parse, validate, tokenize,
 *     answer cheap routes at once, queue tasks and defer the answer (http.h);
 *   - worker threads (scheduler.c, scheduler.h) each own one t5_batch and decode continuously.
 * The layers, each using only those below it: main.c -> routes.c (the route table) ->
 * routes_*.c -> {http.c, scheduler.c, validate.c} -> {metrics.c, sse.c, reply.c, log.c},
 * and gen/ (the library shared with the tools). What it is not: a public API; nothing
 * outside server/ includes it. */
#ifndef T5SERVE_SRV_H
#define T5SERVE_SRV_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cfg.h"
#include "gen.h"
#include "http.h"
#include "log.h"
#include "reply.h"
#include "scheduler.h"
#include "t5.h"
#include "tok.h"

#define SRV_VERSION "0.1.0"

/* ---- routes.c: the route table (paths, methods, auth; names for the metrics) ---- */
extern const srv_route srv_routes[];
extern const int srv_n_routes;

/* ---- metrics.c ---- */
typedef struct srv_metrics srv_metrics;
/* Requests are counted by route index into routes[0..n) (the table must outlive the
 * metrics), index n being "other". */
srv_metrics *srv_metrics_create(const srv_route *routes, int n);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int route, int status, double seconds);
void srv_metrics_tokens(srv_metrics *m, long in, long out);
void srv_metrics_embed_tokens(srv_metrics *m, long in);
void srv_metrics_ttft(srv_metrics *m, double seconds);
void srv_metrics_token_latency(srv_metrics *m, double seconds);
void srv_metrics_batch_rows(srv_metrics *m, int rows);
/* Prometheus text; caller frees. Gauges are passed in. */
char *srv_metrics_render(srv_metrics *m, int queued, int active, int ready, int draining);

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

/* ---- tasks.c: what the routes that queue work share ---- */
/* Encoder ids of text[0..len), input i of the request's `field` (messages say field[i]
 * when is_array), through gen_input_ids with truncate at this server's max_input_tokens.
 * 0 (*ids malloc'd), or the HTTP status (400, 500) with err. */
int srv_text_ids(const srv_server *s, const char *field, const char *text, size_t len, int i, int is_array,
                 int truncate, int32_t **ids, int *n, char *err, size_t errlen);
/* How a task's end reads in an answer: 0 (done), or an HTTP status (503, 504, 500) with
 * msg; work names what ran ("generation", "embedding"). */
int srv_end_status(const srv_task_end *e, const char *work, char *msg, size_t len);

/* ---- embed.c: the embedding core (POST /embed; other embedding routes call it too) ----
 * parse (the route's) -> srv_embed_submit: ids, one SRV_TASK_EMBED task per input,
 * pooling / Dense / Normalize on the worker -> the route's srv_embed_fn with the vectors,
 * which builds and sends its answer. */
typedef struct {
    const char *text; /* a text (tokenized, `</s>` added, truncated per srv_embed_opts), or NULL: */
    size_t len;
    const int32_t *ids; /* the exact encoder ids, `</s>` included (checked against the vocabulary) */
    int n;
} srv_embed_input;

typedef struct {
    t5_embed_params params; /* pooling (-1: the folder's; 0: none, the token embeddings), normalize */
    int truncate;           /* texts: GEN_TRUNCATE_FOLDER (default), GEN_TRUNCATE_LIMIT, 0 none, N */
    double deadline;        /* srv_now() seconds */
    const char *field;      /* the request's name of the inputs, for messages ("text", "input") */
    int is_array;           /* messages name field[i] */
} srv_embed_opts;

void srv_embed_default_opts(const srv_server *s, const srv_request *r, srv_embed_opts *o);

typedef struct {
    const float *v; /* [rows][dim] */
    int rows;       /* 1, or the input's tokens for pooling none */
    int dim;        /* the embedding's size (d_model for pooling none) */
    int tokens;     /* encoder input tokens (usage) */
} srv_embed_vector;

typedef struct {
    int status;                  /* 0: vec[0..n) holds every input's vector, in input order; */
    const char *message;         /* else the HTTP status (500/503/504) and why */
    const srv_embed_vector *vec; /* valid during the call only */
    int n;
    long tokens; /* all inputs' tokens */
} srv_embed_result;

/* Called once per submitted request, on a worker (or, for a request that expired in the
 * queue, the main thread); it must answer r (srv_http_reply). */
typedef void (*srv_embed_fn)(void *user, srv_request *r, const srv_embed_result *res);

/* Checks o and the inputs in[0..n) (availability, pooling against the folder's Dense
 * layers, ids, lengths), turns them into tasks, defers r and queues them whole.
 * Returns 0: on_done(user, ...) will be called exactly once; or an HTTP status (400, 429,
 * 500, 503) with err: nothing queued, on_done never called, and the caller answers r.
 * HTTP thread, inside the route; in is read during the call only. */
int srv_embed_submit(srv_request *r, const srv_embed_input *in, int n, const srv_embed_opts *o,
                     srv_embed_fn on_done, void *user, char *err, size_t errlen);

/* ---- routes_gen.c, routes_embed.c, routes_score.c, routes_tok.c, routes_info.c: the route
 * functions ---- */
void srv_route_generate(srv_request *r);
void srv_route_embed(srv_request *r);
void srv_route_score(srv_request *r);
void srv_route_tokenize(srv_request *r);
void srv_route_detokenize(srv_request *r);
void srv_route_health(srv_request *r);
void srv_route_ready(srv_request *r);
void srv_route_metrics(srv_request *r);
void srv_route_info(srv_request *r);
/* routes_tgi.c: text-generation-inference's routes; /generate takes both bodies */
void srv_route_generate_any(srv_request *r); /* {"inputs"}: TGI's; else srv_route_generate */
void srv_route_tgi_stream(srv_request *r);   /* /generate_stream */
void srv_route_tgi_compat(srv_request *r);   /* / */
/* routes_v1.c: the OpenAI-compatible routes */
void srv_route_v1_models(srv_request *r);
void srv_route_v1_model(srv_request *r); /* /v1/models/{id} */
void srv_route_v1_completions(srv_request *r);
void srv_route_v1_chat(srv_request *r);
void srv_route_v1_embeddings(srv_request *r);
/* an error reply of ours ({"error": {"code": status, ...}}) in OpenAI's shape */
srv_reply srv_v1_reshape_error(srv_reply p);
/* the request's "model": absent, this server's name or an http(s) URL (0); else -1
 * with the 404 model_not_found (or 400) reply in *reply */
int srv_v1_check_model(const srv_server *s, json_t *body, srv_reply *reply);

/* ---- probe.c ---- */
int srv_probe(const cfg_t *c); /* exit status: 0 when GET /health answers 200 */

/* ---- the server ---- */
struct MHD_Daemon;
struct srv_server {
    cfg_t cfg;
    tok_model *tok;
    t5_model *model;       /* NULL: tokenize-only */
    t5_embedder *embedder; /* with a model: its sentence-transformers pipeline (or mean pooling) */
    int threads_per_worker;
    srv_metrics *metrics;
    srv_sched *sched;
    uv_loop_t loop;
    uv_async_t wake;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    atomic_int draining;
    atomic_int inflight; /* deferred requests not yet fully answered */
    atomic_int tok_jobs; /* long tokenizations running on their own threads (routes_tok.c) */
    double drain_deadline;
    int aborted;
    double t_started;
    long t_started_wall; /* time(NULL) when it started: /v1/models' created, the same in every answer */
    char model_name[128];
    /* http.c's */
    int listen_fd,
        ipv6;       /* srv_http_listen's socket until the daemon takes it (-1), and again once quiesced */
    int conn_limit; /* max_connections resolved (srv_http_start) */
    uv_mutex_t conn_lock;
    struct srv_conn *idle; /* idle connections, oldest first (a circular list), and their count: */
    int n_conns;           /* guarded by conn_lock */
    struct MHD_Daemon *daemon;
    const srv_route *routes;
    int n_routes;
    char route_list[512]; /* for the 404 message */
    uv_mutex_t resume_lock;
    srv_request **resume; /* pending resumptions (each holds a reference) */
    size_t n_resume, cap_resume;
};

#endif
