/* http.h - the HTTP layer (http.c, on libmicrohttpd): the request lifecycle and the
 * only way routes answer. A route is a function of the route table (routes.c) called
 * on the HTTP thread once the request's body is in. It answers at once with
 * srv_http_reply, or defers: srv_http_defer, then (from any thread, later) either
 * srv_http_reply or a stream (srv_http_stream_event/_write ... srv_http_stream_end).
 * While an answer is deferred the connection is suspended (no thread waits) and
 * resumed through the main loop when the answer (or stream bytes) arrive.
 *
 * A srv_request lives as long as someone holds a reference: libmicrohttpd (until the
 * request completes), and whoever called srv_http_retain (a route's queued work,
 * which releases it when done). Only http.c touches its state. */
#ifndef T5SERVE_HTTP_H
#define T5SERVE_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "reply.h"

typedef struct srv_server srv_server;
typedef struct srv_request srv_request;

/* One entry of the route table. */
typedef struct {
    const char *path;           /* "/a/b"; "/a/{name}": "/a/" and one more segment */
    int post;                   /* 1: POST with a JSON body; 0: GET/HEAD */
    int open;                   /* 1: no API key needed */
    void (*fn)(srv_request *r); /* answers or defers r */
    /* optional: rewrites every error reply of the route (status >= 400, those of http.c
     * too: 401, 405, 413) into the route's API's error shape */
    srv_reply (*reshape_error)(srv_reply p);
} srv_route;

/* ---- what a route reads ---- */
srv_server *srv_http_server(const srv_request *r);
const char *srv_http_body(const srv_request *r, size_t *len); /* the request body (NUL-terminated) */
const char *srv_http_path(const srv_request *r);              /* the URL's path (printable, bounded) */
double srv_http_t_start(const srv_request *r);                /* srv_now() when it arrived */
const atomic_int *srv_http_cancel_flag(const srv_request *r); /* nonzero once the client is gone */

/* ---- how a route answers ---- */
/* Sends p (the request owns p.body from here; a later reply replaces an earlier one not
 * yet sent). 429 gets Retry-After (retry_after_s), 401 WWW-Authenticate. Any thread. */
void srv_http_reply(srv_request *r, srv_reply p);
/* The answer comes later (from any thread); the request counts as in flight (drain)
 * until it is freed. HTTP thread, inside the route. */
void srv_http_defer(srv_request *r);
/* A deferred answer as a 200 event stream: the first write starts it. Any thread. */
void srv_http_stream_event(srv_request *r, json_t *json); /* `data: JSON` event; consumes json */
void srv_http_stream_write(srv_request *r, const char *data, size_t len);
void srv_http_stream_end(srv_request *r); /* the stream is complete */
/* Tokens of the request, for the access log line. Any thread. */
void srv_http_count_tokens(srv_request *r, long in, long out);
void srv_http_retain(srv_request *r);
void srv_http_release(srv_request *r);

/* ---- the daemon (main.c) ---- */
/* Binds and listens on cfg host:port (s->listen_fd), before the model loads, so that a port
 * in use is reported at once. 0, or -1 with err. */
int srv_http_listen(srv_server *s, char *err, size_t errlen);
/* Serves routes[0..n) on the listening socket (the table must outlive the daemon);
 * requests for no route are counted as route n in the metrics. */
int srv_http_start(srv_server *s, const srv_route *routes, int n, char *err, size_t errlen);
void srv_http_stop_accepting(srv_server *s);
void srv_http_stop(srv_server *s);
void srv_http_resume_pending(srv_server *s); /* main thread: resume what workers finished */

/* ---- in-process requests without a connection (the tests/fuzz harnesses) ---- */
/* Runs route rt (method "POST" or "GET") on a copy of body[0..len) as the access handler
 * does once a body is in. The caller holds the result (srv_http_release). NULL: no memory. */
srv_request *srv_http_local_run(srv_server *s, const srv_route *rt, const char *method, const char *body,
                                size_t len);
/* 1 once r's answer is complete and only the caller holds r: *reply is the reply (status 0
 * for a stream), *stream[0..*stream_len) the stream's bytes; both valid until the release. */
int srv_http_local_done(srv_request *r, const srv_reply **reply, const char **stream, size_t *stream_len);

#endif
