/* fuzz_http.c - libFuzzer harness for the raw HTTP request head: each input is sent as it
 * is, bytes on a loopback TCP connection, to a real libmicrohttpd daemon running http.c
 * (the route table of routes.c) in this process, tokenize-only (the t5-tiny-gated
 * tokenizer: /generate answers 503 without a model, so no worker is needed), with small
 * limits. The connection's sending side is then shut and the answers read. Checks:
 * every answer starts with an HTTP/1.x
 * status line with a status of 100..599 other than 500, and ASan/UBSan/LeakSanitizer see
 * nothing in the daemon's threads. Seeds: tests/fuzz/corpus/fuzz_http/ (plain requests,
 * a chunked body, the smuggling shapes of docs/reliability.md). What it is not: a test of
 * the answers' content (the 3x and 6x suites do that). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "srv.h"

static srv_server S;
static struct sockaddr_in addr;

static void on_wake(uv_async_t *h) {
    srv_http_resume_pending(h->data);
}

static void *loop_main(void *arg) {
    uv_run(arg, UV_RUN_DEFAULT);
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    srv_server *s = &S;
    cfg_init_defaults(&s->cfg);
    snprintf(s->cfg.model, sizeof s->cfg.model, "%s", fuzz_fixture("models/t5-tiny-gated/spiece.model"));
    snprintf(s->cfg.host, sizeof s->cfg.host, "127.0.0.1");
    s->cfg.port = 0; /* any free port */
    s->cfg.max_body_bytes = 4096;
    s->cfg.max_texts = 4;
    s->cfg.max_input_tokens = 64;
    s->cfg.connection_timeout_s = 5;
    s->cfg.request_timeout_ms = 2000;
    srv_log_set_level("error");
    s->t_started = srv_now();
    s->listen_fd = -1;
    uv_mutex_init(&s->resume_lock);
    uv_mutex_init(&s->conn_lock);
    atomic_init(&s->draining, 0);
    atomic_init(&s->inflight, 0);
    char err[300] = "";
    s->metrics = srv_metrics_create(srv_routes, srv_n_routes);
    s->tok = tok_model_load(s->cfg.model, err, sizeof err);
    snprintf(s->model_name, sizeof s->model_name, "spiece.model");
    static uv_loop_t loop;
    static pthread_t th;
    if (!s->metrics || !s->tok || uv_loop_init(&loop) || uv_async_init(&loop, &s->wake, on_wake) ||
        srv_http_listen(s, err, sizeof err)) {
        fprintf(stderr, "fuzz_http: cannot set the server up: %s (set FIXTURES)\n", err);
        exit(1);
    }
    s->wake.data = s;
    socklen_t len = sizeof addr;
    getsockname(s->listen_fd, (struct sockaddr *)&addr, &len);
    if (srv_http_start(s, srv_routes, srv_n_routes, err, sizeof err) ||
        pthread_create(&th, NULL, loop_main, &loop)) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 64 * 1024) return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    size_t off = 0;
    while (off < size) { /* the server may close early (an answer before the body): stop there */
        ssize_t k = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (k <= 0) break;
        off += (size_t)k;
    }
    shutdown(fd, SHUT_WR);
    /* Read until the server closes, or until it is silent for 20 ms: libmicrohttpd notices
     * a client's half-close only at the idle timeout when the header block is incomplete or
     * a body was read (docs/reliability.md), so silence is not a hang here. */
    static char buf[1 << 16];
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) <= 0) break;
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0) break; /* closed (or reset after an early answer) */
        got += (size_t)k;
        if (got == sizeof buf - 1) got = 12; /* only the first answer's status line is checked */
    }
    close(fd);
    if (got >= 12) {
        buf[got] = 0;
        FUZZ_CHECK(!memcmp(buf, "HTTP/1.1 ", 9) || !memcmp(buf, "HTTP/1.0 ", 9));
        int status = atoi(buf + 9);
        FUZZ_CHECK(status >= 100 && status < 600 && status != 500);
    }
    return 0;
}
