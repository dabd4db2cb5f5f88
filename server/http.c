/* http.c - the HTTP layer on libmicrohttpd (poll internal thread(s), suspend/resume),
 * http.h: routing through the table it is given, method and auth checks, body
 * accumulation with the size limit, the request lifecycle (reference counts, replies,
 * streams, suspend while workers run, resume through the main loop's uv_async), the
 * access log line and the per-request metrics. The only file that touches a request's
 * state. Not the route logic (routes_*.c) and not the scheduling (scheduler.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "srv.h"
#include "sse.h"

enum { ST_RECV = 0, ST_WAIT, ST_SENT };

struct srv_request {
    srv_server *srv;
    struct MHD_Connection *conn;
    uv_mutex_t lock; /* guards reply, suspended, the stream and the token counts */
    atomic_int refs;
    atomic_int cancel;                   /* set when the client is gone: workers end its tasks */
    int route, state, deferred, started; /* started: the access handler has seen it */
    int escaped;                         /* the raw path holds a percent-escape */
    int close;                           /* answer with `Connection: close` */
    int raw_sent;                        /* answered on the socket itself (reply_mid_body) */
    char method[8], path[96];
    double t_start;
    /* body (access handler only) */
    char *body;
    size_t body_len, body_cap, dropped; /* dropped: body bytes read after an early error */
    /* reply */
    srv_reply reply;
    int have_reply, suspended, retry_after, www_auth;
    const char *allow; /* 405: Allow header */
    size_t bytes_out;
    long tokens_in, tokens_out;
    /* stream: bytes produced by workers, consumed by MHD */
    srv_sse sse;
    int stream_started, stream_done;
};

/* url: the raw request target, as the client sent it (for the log and the escape check) */
static srv_request *request_create(srv_server *s, struct MHD_Connection *conn, const char *method,
                                   const char *url) {
    srv_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = conn;
    uv_mutex_init(&r->lock);
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancel, 0);
    r->t_start = srv_now();
    r->route = s->n_routes;
    snprintf(r->method, sizeof r->method, "%s", method);
    /* a printable, bounded copy for the access log */
    size_t i = 0;
    for (; url[i] && i < sizeof r->path - 1; i++) {
        unsigned char ch = (unsigned char)url[i];
        r->path[i] = ch > 32 && ch < 127 ? (char)ch : '?';
    }
    r->path[i] = 0;
    r->escaped = strcspn(url, "%?#") < strcspn(url, "?#");
    return r;
}

srv_server *srv_http_server(const srv_request *r) {
    return r->srv;
}

const char *srv_http_body(const srv_request *r, size_t *len) {
    *len = r->body_len;
    return r->body;
}

const char *srv_http_path(const srv_request *r) {
    return r->path;
}

double srv_http_t_start(const srv_request *r) {
    return r->t_start;
}

const atomic_int *srv_http_cancel_flag(const srv_request *r) {
    return &r->cancel;
}

void srv_http_retain(srv_request *r) {
    atomic_fetch_add(&r->refs, 1);
}

void srv_http_release(srv_request *r) {
    if (atomic_fetch_sub(&r->refs, 1) != 1) return;
    if (r->deferred) atomic_fetch_sub(&r->srv->inflight, 1);
    free(r->body);
    free(r->reply.body);
    srv_sse_free(&r->sse);
    uv_mutex_destroy(&r->lock);
    free(r);
}

/* With r->lock held: if the connection is suspended, schedule its resumption. */
static void wake_locked(srv_request *r) {
    if (!r->suspended) return;
    r->suspended = 0;
    srv_server *s = r->srv;
    srv_http_retain(r);
    uv_mutex_lock(&s->resume_lock);
    if (s->n_resume == s->cap_resume) {
        size_t cap = s->cap_resume ? 2 * s->cap_resume : 64;
        srv_request **p = realloc(s->resume, cap * sizeof *p);
        if (!p) abort(); /* cannot leave a connection suspended forever */
        s->resume = p;
        s->cap_resume = cap;
    }
    s->resume[s->n_resume++] = r;
    uv_mutex_unlock(&s->resume_lock);
    uv_async_send(&s->wake);
}

/* With r->lock held (or on the HTTP thread before anyone else has r). */
static void set_reply_locked(srv_request *r, srv_reply p) {
    free(r->reply.body);
    r->reply = p;
    r->have_reply = 1;
    r->allow = NULL;
    r->retry_after = p.status == 429 ? (r->srv->cfg.retry_after_s > 0 ? r->srv->cfg.retry_after_s : 1) : 0;
    r->www_auth = p.status == 401;
}

void srv_http_reply(srv_request *r, srv_reply p) {
    uv_mutex_lock(&r->lock);
    set_reply_locked(r, p);
    wake_locked(r);
    uv_mutex_unlock(&r->lock);
}

void srv_http_defer(srv_request *r) {
    r->state = ST_WAIT;
    r->deferred = 1;
    atomic_fetch_add(&r->srv->inflight, 1);
}

void srv_http_stream_event(srv_request *r, json_t *json) {
    uv_mutex_lock(&r->lock);
    srv_sse_event(&r->sse, json);
    r->stream_started = 1;
    wake_locked(r);
    uv_mutex_unlock(&r->lock);
}

void srv_http_stream_write(srv_request *r, const char *data, size_t len) {
    uv_mutex_lock(&r->lock);
    srv_sse_append(&r->sse, data, len);
    r->stream_started = 1;
    wake_locked(r);
    uv_mutex_unlock(&r->lock);
}

void srv_http_stream_end(srv_request *r) {
    uv_mutex_lock(&r->lock);
    r->stream_started = 1;
    r->stream_done = 1;
    wake_locked(r);
    uv_mutex_unlock(&r->lock);
}

void srv_http_count_tokens(srv_request *r, long in, long out) {
    uv_mutex_lock(&r->lock);
    r->tokens_in += in;
    r->tokens_out += out;
    uv_mutex_unlock(&r->lock);
}

void srv_http_resume_pending(srv_server *s) {
    for (;;) {
        uv_mutex_lock(&s->resume_lock);
        size_t n = s->n_resume;
        srv_request **list = s->resume;
        s->resume = NULL;
        s->n_resume = s->cap_resume = 0;
        uv_mutex_unlock(&s->resume_lock);
        if (!n) {
            free(list);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            MHD_resume_connection(list[i]->conn);
            srv_http_release(list[i]);
        }
        free(list);
    }
}

/* Sends r->reply on r->conn. */
static enum MHD_Result queue_reply(srv_request *r) {
    srv_reply *p = &r->reply;
    const srv_route *rt = r->route < r->srv->n_routes ? &r->srv->routes[r->route] : NULL;
    if (rt && rt->reshape_error && p->status >= 400) *p = rt->reshape_error(*p);
    struct MHD_Response *resp = MHD_create_response_from_buffer(p->len, p->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    p->body = NULL; /* MHD owns it now */
    r->bytes_out = p->len;
    MHD_add_response_header(resp, "Content-Type", p->content_type ? p->content_type : "application/json");
    if (r->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    if (r->www_auth) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (r->close) MHD_add_response_header(resp, "Connection", "close");
    r->state = ST_SENT;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)p->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* MHD's content reader of a stream: what workers appended, else suspend until they append more. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_request *r = cls;
    uv_mutex_lock(&r->lock);
    size_t n = srv_sse_take(&r->sse, buf, max);
    if (n) {
        r->bytes_out += n;
        uv_mutex_unlock(&r->lock);
        return (ssize_t)n;
    }
    if (r->stream_done) {
        uv_mutex_unlock(&r->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    uv_mutex_unlock(&r->lock);
    return 0;
}

static enum MHD_Result queue_stream(srv_request *r) {
    struct MHD_Response *resp = srv_sse_response(stream_read, r);
    if (!resp) return MHD_NO;
    r->reply.status = 200;
    r->state = ST_SENT;
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Writes p as a whole HTTP answer with `Connection: close` straight onto socket fd, for the
 * places where libmicrohttpd cannot queue one, and shuts the sending side. The answer is
 * small: a socket's send buffer takes it whole; if not, the client sees a close. Returns
 * the bytes sent. */
static size_t send_raw(int fd, const srv_reply *p) {
    char head[256];
    int k = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     p->status, p->status == 413 ? "Payload Too Large" : "Service Unavailable",
                     p->content_type ? p->content_type : "application/json", p->len);
    if (k <= 0 || (size_t)k >= sizeof head) return 0;
    struct iovec iov[2] = {{head, (size_t)k}, {p->body, p->len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    return sent > 0 ? (size_t)sent : 0;
}

/* Answers r->reply while a body is still arriving (libmicrohttpd cannot queue an answer
 * then); the access handler then drops at most 1 MiB more of the body (so that closing
 * does not reset the connection under an answer the client has not read yet) and closes. */
static enum MHD_Result reply_mid_body(srv_request *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) r->bytes_out = send_raw(ci->connect_fd, &r->reply);
    r->state = ST_SENT;
    r->raw_sent = 1;
    return MHD_YES;
}

static int auth_ok(srv_server *s, struct MHD_Connection *conn) {
    const char *key = s->cfg.api_key;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ')
        h++;
    size_t a = strlen(h), b = strlen(key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

/* What check_message needs of the header block. */
typedef struct {
    int n_length, n_encoding, n_host, nul;
    const char *encoding;
    const char *prev_end; /* the byte after the previous header's value and its terminator */
} head_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size) {
    (void)kind;
    head_scan *h = cls;
    if (strlen(key) != key_size || (value && strlen(value) != value_size)) h->nul = 1;
#if MHD_VERSION <= 0x00097500
    /* libmicrohttpd 0.9.75 measures a value with strlen, so a NUL cuts it short unseen.
     * It parses the header block in place: the line's CR and LF become NULs, so after a
     * value comes a NUL and then either a NUL (CRLF), or (bare LF) the next header's name,
     * or (a NUL inside the value) the value's rest. This tells the three apart. */
    if (h->prev_end && *h->prev_end && h->prev_end != key) h->nul = 1;
    h->prev_end = value ? value + value_size + 1 : NULL;
#endif
    if (strcasecmp(key, "Content-Length") == 0) h->n_length++;
    if (strcasecmp(key, "Host") == 0) h->n_host++;
    if (strcasecmp(key, "Transfer-Encoding") == 0) {
        h->n_encoding++;
        h->encoding = value ? value : "";
    }
    return MHD_YES;
}

/* The message-level rules libmicrohttpd 0.9.75 does not enforce (docs/reliability.md),
 * checked before the body is read: an error here is answered at once and the connection
 * closed, since where the body ends is in doubt (RFC 9112 section 6.3). The path's rule:
 * routes are matched on the path as sent, so a percent-escape (which MHD would decode:
 * `%68ealth`, `/health%00junk`) is refused instead of being matched after decoding. */
static void check_message(srv_request *r, const char *version) {
    head_scan h = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &h);
    if (h.prev_end && *h.prev_end) h.nul = 1; /* after the last header comes the blank line: a NUL */
    const char *why = NULL;
    int status = 400;
    if (r->escaped)
        why = "percent-escapes are not allowed in the path (routes are plain ASCII paths)";
    else if (h.nul)
        why = "a header holds a NUL byte";
    else if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 ? h.n_host != 1 : h.n_host > 1)
        why = "an HTTP/1.1 request needs exactly one Host header";
    else if (h.n_length > 1)
        why = "more than one Content-Length header";
    else if (h.n_encoding && h.n_length)
        why = "both Content-Length and Transfer-Encoding";
    else if (h.n_encoding > 1 || (h.n_encoding && strcasecmp(h.encoding, "chunked") != 0)) {
        status = 501;
        why = "the only Transfer-Encoding accepted is one `chunked`";
    }
    if (!why) return;
    set_reply_locked(r, srv_reply_error(status, "%s", why));
    r->close = 1;
}

/* Checks made as soon as the headers are in: route, method, auth, declared size. */
static void check_headers(srv_request *r, const srv_route *rt) {
    srv_server *s = r->srv;
    if (!rt) {
        set_reply_locked(r, srv_reply_error(404, "no such route; routes: %s", s->route_list));
        return;
    }
    int is_get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    if (rt->post ? strcmp(r->method, "POST") != 0 : !is_get) {
        set_reply_locked(r, srv_reply_error(405, "%s needs %s", rt->path, rt->post ? "POST" : "GET"));
        r->allow = rt->post ? "POST" : "GET, HEAD";
        return;
    }
    if (s->cfg.api_key[0] && !rt->open && !auth_ok(s, r->conn)) {
        set_reply_locked(r,
                         srv_reply_error(401, "missing or wrong API key: send `Authorization: Bearer KEY`"));
        return;
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (rt->post && cl && strtoull(cl, NULL, 10) > (unsigned long long)s->cfg.max_body_bytes)
        set_reply_locked(r, srv_reply_error(413,
                                            "the request body is larger than this server's limit of %lld "
                                            "bytes (max_body_bytes)",
                                            s->cfg.max_body_bytes));
}

/* Whether an early error should wait until the body is read and dropped: replying and
 * closing while the client still sends makes its TCP stack reset the connection, and
 * the client may never see the answer. Not with `Expect: 100-continue` (the client
 * waits for us), not without a body, and not for bodies over 64 MiB. */
static int read_body_first(struct MHD_Connection *conn) {
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0) return 0;
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    if (te) return 1;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    return n > 0 && n <= (64ull << 20);
}

static enum MHD_Result send_ready(srv_request *r) {
    /* with r->lock held by the caller; unlocks */
    if (r->have_reply) {
        uv_mutex_unlock(&r->lock);
        return queue_reply(r);
    }
    if (r->stream_started) {
        uv_mutex_unlock(&r->lock);
        return queue_stream(r);
    }
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    uv_mutex_unlock(&r->lock);
    return MHD_YES;
}

/* path "/a/{name}" matches "/a/" and one more non-empty segment; others the url itself */
static int route_matches(const char *path, const char *url) {
    size_t n = strlen(path);
    if (!n || path[n - 1] != '}') return strcmp(url, path) == 0;
    size_t k = (size_t)(strrchr(path, '/') - path) + 1;
    return strncmp(url, path, k) == 0 && url[k] && !strchr(url + k, '/');
}

/* ---- connections: idle ones are closed oldest first when the table is full ---- */

/* One connection (MHD's socket context); on s->idle's list while no request is in progress. */
typedef struct srv_conn {
    struct srv_conn *prev, *next; /* NULL while busy or closing */
    int fd;                       /* -1 once ended early (conn_end) */
} srv_conn;

/* With conn_lock held. */
static void conn_unlink(srv_server *s, srv_conn *c) {
    if (!c->next) return;
    if (s->idle == c) s->idle = c->next == c ? NULL : c->next;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_append(srv_server *s, srv_conn *c) {
    if (c->next) return;
    if (!s->idle) {
        s->idle = c->prev = c->next = c;
        return;
    }
    c->next = s->idle;
    c->prev = s->idle->prev;
    c->prev->next = c;
    s->idle->prev = c;
}

static void conn_set_busy(srv_server *s, struct MHD_Connection *conn, int busy) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    srv_conn *c = ci ? ci->socket_context : NULL;
    if (!c) return;
    uv_mutex_lock(&s->conn_lock);
    if (busy)
        conn_unlink(s, c);
    else if (c->fd >= 0)
        conn_append(s, c);
    uv_mutex_unlock(&s->conn_lock);
}

/* Ends a connection from outside its MHD thread: MHD sees the end of the stream and closes
 * it. With conn_lock held, on a listed connection (MHD closes its descriptor only after the
 * CLOSED notification, which waits for the lock: the descriptor is still this one). */
static void conn_end(srv_server *s, srv_conn *c) {
    conn_unlink(s, c);
    shutdown(c->fd, SHUT_RDWR);
    c->fd = -1;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    srv_server *s = cls;
    srv_conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!c) return;
        uv_mutex_lock(&s->conn_lock);
        conn_unlink(s, c);
        s->n_conns--;
        uv_mutex_unlock(&s->conn_lock);
        free(c);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || !(c = calloc(1, sizeof *c))) return; /* untracked: never closed early */
    c->fd = ci->connect_fd;
    *socket_context = c;
    uv_mutex_lock(&s->conn_lock);
    s->n_conns++;
    conn_append(s, c);
    if (s->n_conns > s->conn_limit) {
        if (s->idle != c) { /* the oldest idle connection makes room */
            conn_end(s, s->idle);
        } else { /* every other connection has a request in progress: shed this one now */
            srv_reply p = srv_reply_error(503, "every connection of this server is busy; retry later");
            send_raw(c->fd, &p);
            free(p.body);
            conn_end(s, c);
        }
    }
    uv_mutex_unlock(&s->conn_lock);
}

/* MHD's URI callback: the request object is made here, where the raw target is known
 * (the access handler gets it decoded). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
    return request_create(cls, conn, "", uri);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size,
                                 void **con_cls) {
    srv_server *s = cls;
    srv_request *r = *con_cls;
    if (!r) return MHD_NO; /* on_uri was out of memory */
    if (!r->started) {
        r->started = 1;
        conn_set_busy(s, conn, 1);
        snprintf(r->method, sizeof r->method, "%s", method);
        const srv_route *rt = NULL;
        for (int i = 0; i < s->n_routes; i++)
            if (route_matches(s->routes[i].path, url)) {
                rt = &s->routes[i];
                r->route = i;
            }
        check_message(r, version);
        if (r->close) return queue_reply(r); /* the body is never read */
        check_headers(r, rt);
        if (r->have_reply && !read_body_first(conn)) return queue_reply(r); /* the body is never read */
        return MHD_YES; /* an early error is sent once the body is read (and dropped) */
    }
    if (r->raw_sent) { /* answered on the socket: drop a bounded tail of the body, then close */
        r->dropped += *upload_size;
        int more = *upload_size && r->dropped <= (1u << 20);
        *upload_size = 0;
        return more ? MHD_YES : MHD_NO;
    }
    if (*upload_size && r->state != ST_RECV) { /* body bytes after we answered: drop them */
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->state == ST_RECV) {
        if (*upload_size) {
            size_t n = *upload_size;
            *upload_size = 0;
            if (r->have_reply) { /* already refused: drop the rest, up to 64 MiB */
                r->dropped += n;
                return r->dropped > (64u << 20) ? queue_reply(r) : MHD_YES;
            }
            if ((srv_now() - r->t_start) * 1000 > s->cfg.request_timeout_ms) {
                /* a body dribbled in for longer than the request deadline: close the connection
                 * (libmicrohttpd cannot queue an answer while a body is arriving), so a slow
                 * sender holds it at most request_timeout_ms plus connection_timeout_s */
                srv_log(SRV_LOG_WARN, "closing a connection: its %s body took longer than request_timeout_ms",
                        r->path);
                return MHD_NO;
            }
            if (r->body_len + n > (size_t)s->cfg.max_body_bytes) {
                /* only a chunked body gets here (a declared length is checked with the
                 * headers): answer now, not once the client stops sending */
                set_reply_locked(r, srv_reply_error(413,
                                                    "the request body is larger than this server's limit of "
                                                    "%lld bytes (max_body_bytes)",
                                                    s->cfg.max_body_bytes));
                free(r->body);
                r->body = NULL;
                r->body_len = r->body_cap = 0;
                return reply_mid_body(r);
            }
            if (r->body_len + n + 1 > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 1024;
                while (cap < r->body_len + n + 1)
                    cap *= 2;
                char *p = realloc(r->body, cap);
                if (!p) {
                    set_reply_locked(r, srv_reply_error(500, "out of memory"));
                    return MHD_YES;
                }
                r->body = p;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload, n);
            r->body_len += n;
            r->body[r->body_len] = 0;
            return MHD_YES;
        }
        if (!r->have_reply) s->routes[r->route].fn(r); /* a route is known: else there is a reply */
        if (r->state == ST_RECV) {
            if (!r->have_reply) set_reply_locked(r, srv_reply_error(500, "the route gave no answer"));
            return queue_reply(r);
        }
        free(r->body); /* a deferred route keeps what it needs of the body */
        r->body = NULL;
        r->body_len = r->body_cap = 0;
    }
    if (r->state == ST_WAIT) {
        uv_mutex_lock(&r->lock);
        return send_ready(r);
    }
    return MHD_YES; /* already sent */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    srv_server *s = cls;
    srv_request *r = *con_cls;
    if (!r) return;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) conn_set_busy(s, conn, 0); /* keep-alive: idle again */
    *con_cls = NULL;
    int aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (aborted) atomic_store(&r->cancel, 1);
    double dt = srv_now() - r->t_start;
    int status = r->state == ST_SENT ? r->reply.status : 0;
    srv_metrics_request(s->metrics, r->route, status, dt);
    if (srv_log_enabled(SRV_LOG_INFO)) {
        uv_mutex_lock(&r->lock);
        size_t bytes = r->bytes_out;
        long tin = r->tokens_in, tout = r->tokens_out;
        uv_mutex_unlock(&r->lock);
        srv_log(SRV_LOG_INFO,
                "access method=%s path=%s status=%d bytes=%zu ms=%.1f tokens_in=%ld tokens_out=%ld%s",
                r->method, r->path, status, bytes, dt * 1000.0, tin, tout, aborted ? " aborted=1" : "");
    }
    srv_http_release(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    if (!srv_log_enabled(SRV_LOG_DEBUG)) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    srv_log(SRV_LOG_DEBUG, "libmicrohttpd: %s", msg);
}

/* "POST /a, /b; GET /c, /d": the routes, for the 404 message */
static void list_routes(srv_server *s) {
    char *p = s->route_list, *end = s->route_list + sizeof s->route_list;
    *p = 0;
    for (int post = 1; post >= 0; post--) {
        const char *sep = post ? "POST " : "; GET ";
        for (int i = 0; i < s->n_routes && p < end; i++) {
            if (s->routes[i].post != post) continue;
            int k = snprintf(p, (size_t)(end - p), "%s%s", sep, s->routes[i].path);
            p = k < end - p ? p + k : end;
            sep = ", ";
        }
    }
}

int srv_http_listen(srv_server *s, char *err, size_t errlen) {
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int rc = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve host '%.100s': %s", s->cfg.host, gai_strerror(rc));
        return -1;
    }
    s->ipv6 = ai->ai_family == AF_INET6;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %.100s:%d: %s%s", s->cfg.host, s->cfg.port, strerror(e),
                 e == EADDRINUSE ? " (another process holds this port: stop it or choose another with --port)"
                 : e == EADDRNOTAVAIL ? " (not an address of this host)"
                                      : "");
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    s->listen_fd = fd;
    return 0;
}

int srv_http_start(srv_server *s, const srv_route *routes, int n, char *err, size_t errlen) {
    s->routes = routes;
    s->n_routes = n;
    list_routes(s);
    /* poll, not epoll: MHD_quiesce_daemon on an epoll daemon with its own threads races the
     * event loop's removal of the listen socket and aborts the process ("Failed to remove
     * listen FD from epoll set", an open libmicrohttpd defect seen in the drain of 50-lb);
     * with poll the threads are told through the inter-thread channel (MHD_USE_ITC) */
    unsigned flags =
        MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (s->ipv6) flags |= MHD_USE_IPv6;
    unsigned pool = s->cfg.http_threads > 1 ? (unsigned)s->cfg.http_threads : 0;
    /* the connection table: what the open-file limit leaves (main.c raised it to the hard
     * limit), less descriptors for the rest of the process; libmicrohttpd's own limit sits
     * above ours, so that a new connection is accepted and the oldest idle one closed
     * (on_connection) instead of new ones waiting in the backlog */
    struct rlimit rl;
    long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 65536;
    long room = fds - 64 - 32 > 16 ? fds - 64 - 32 : 16;
    s->conn_limit =
        s->cfg.max_connections > 0 && s->cfg.max_connections < room ? s->cfg.max_connections : (int)room;
    if (s->cfg.max_connections > room)
        srv_log(SRV_LOG_WARN, "max_connections %d is more than the open-file limit allows: %d",
                s->cfg.max_connections, s->conn_limit);
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_access, s, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)s->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->conn_limit + 32),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections_per_ip,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->cfg.connection_timeout_s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot start the HTTP daemon on %.100s:%d", s->cfg.host, s->cfg.port);
        return -1;
    }
    s->listen_fd = -1; /* the daemon's now */
    return 0;
}

srv_request *srv_http_local_run(srv_server *s, const srv_route *rt, const char *method, const char *body,
                                size_t len) {
    srv_request *r = request_create(s, NULL, method, rt->path);
    if (!r || !(r->body = malloc(len + 1))) {
        if (r) srv_http_release(r);
        return NULL;
    }
    memcpy(r->body, body, len);
    r->body[len] = 0;
    r->body_len = len;
    r->body_cap = len + 1;
    rt->fn(r);
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    return r;
}

int srv_http_local_done(srv_request *r, const srv_reply **reply, const char **stream, size_t *stream_len) {
    uv_mutex_lock(&r->lock);
    int done = (r->have_reply || r->stream_done) && atomic_load(&r->refs) == 1;
    uv_mutex_unlock(&r->lock);
    if (!done) return 0;
    *reply = &r->reply;
    *stream = r->sse.buf ? r->sse.buf + r->sse.off : "";
    *stream_len = r->sse.len - r->sse.off;
    return 1;
}

void srv_http_stop_accepting(srv_server *s) {
    if (!s->daemon) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd == MHD_INVALID_SOCKET) return;
    /* the daemon's threads may still be polling the socket for a moment, so it is not closed
     * before MHD_stop_daemon; shutdown ends the listening at once: new connections are
     * refused (the balancer moves on) and a late accept gets EINVAL, which MHD ignores */
    shutdown(fd, SHUT_RDWR);
    s->listen_fd = fd;
}

void srv_http_stop(srv_server *s) {
    if (s->daemon) {
        srv_http_resume_pending(s);
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    if (s->listen_fd >= 0) close(s->listen_fd); /* never handed to a daemon, or quiesced */
    s->listen_fd = -1;
}
