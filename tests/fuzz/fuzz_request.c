/* fuzz_request.c - libFuzzer harness for the server's request parsing, validation and
 * answering, route by route, without the network: a srv_server is built in-process as
 * server/main.c builds it (the t5-tiny-gated fixture, config defaults with small limits,
 * a real scheduler with one worker), and each input becomes the body of one request that
 * is handed to the route handler as http.c's access handler does once the body is in.
 * Input: byte 0 picks the route of the route table (routes.c), the rest is the body;
 * the request runs through http.h's in-process entry (srv_http_local_run). Generation requests that pass
 * validation really run on the worker; the harness waits for the answer. Checks: every request gets exactly
 * one reply with a designed status (200 400 413 429 503 504; 500 is a failure), error bodies are short JSON
 * in the design's shape, 200 bodies are JSON (or SSE ending in [DONE]), and no reference is leaked
 * (LeakSanitizer). What it is not: a test of http.c's routing, headers, auth and body-size checks (the
 * 61-faults and 62-soak suites do those). */
#include <jansson.h>
#include <time.h>

#include "fuzz_util.h"
#include "srv.h"

static srv_server S;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    srv_server *s = &S;
    cfg_init_defaults(&s->cfg);
    snprintf(s->cfg.model, sizeof s->cfg.model, "%s", fuzz_fixture("models/t5-tiny-gated"));
    s->cfg.workers = 1;
    s->cfg.max_batch = 4;
    s->cfg.queue_size = 4;
    s->cfg.max_texts = 4;
    s->cfg.max_input_tokens = 64;
    s->cfg.max_new_tokens_limit = 16;
    s->cfg.default_max_new_tokens = 8;
    s->cfg.max_num_beams = 4;
    s->cfg.max_nbest = 8;
    s->cfg.request_timeout_ms = 5000;
    srv_log_set_level("error");
    s->threads_per_worker = 1;
    s->t_started = srv_now();
    uv_mutex_init(&s->resume_lock);
    atomic_init(&s->draining, 0);
    atomic_init(&s->inflight, 0);
    char err[300] = "";
    s->metrics = srv_metrics_create(srv_routes, srv_n_routes);
    s->tok = tok_model_load(s->cfg.model, err, sizeof err);
    s->model = s->tok ? t5_model_load(s->cfg.model, err, sizeof err) : NULL;
    /* as server/main.c: a model comes with its embedding pipeline (here mean pooling) */
    s->embedder =
        s->model ? t5_embedder_load(s->cfg.model, t5_model_config(s->model)->d_model, err, sizeof err) : NULL;
    srv_sched_config sc = {s->model, 1, s->cfg.max_batch, 1, s->cfg.queue_size, NULL, NULL};
    if (!s->metrics || !s->tok || !s->model || !s->embedder ||
        !(s->sched = srv_sched_create(&sc, err, sizeof err))) {
        fprintf(stderr, "fuzz_request: cannot set the server up: %s (set FIXTURES)\n", err);
        exit(1);
    }
    snprintf(s->model_name, sizeof s->model_name, "t5-tiny-gated");
    return 0;
}

static void check_reply(const srv_reply *rep) {
    int st = rep->status;
    /* 404: a /v1 request naming a model this server does not serve (model_not_found) */
    FUZZ_CHECK(st == 200 || st == 400 || st == 404 || st == 413 || st == 429 || st == 503 || st == 504);
    FUZZ_CHECK(rep->body != NULL);
    json_error_t je;
    if (st != 200) {
        FUZZ_CHECK(rep->len < 1000);
        json_t *j = json_loadb(rep->body, rep->len, 0, &je);
        FUZZ_CHECK(j != NULL);
        /* each API's error shape: ours {"error": {code, type, message}}, OpenAI's (/v1) {"error":
         * {message, type, param, code}}, TGI's ({"inputs"} bodies, /generate_stream, /) {"error",
         * "error_type"} */
        json_t *e = json_object_get(j, "error");
        if (json_is_string(e)) {
            FUZZ_CHECK(json_is_string(json_object_get(j, "error_type")));
        } else {
            json_t *code = json_object_get(e, "code");
            FUZZ_CHECK(!json_is_integer(code) || json_integer_value(code) == st);
            FUZZ_CHECK(json_is_string(json_object_get(e, "message")) &&
                       json_is_string(json_object_get(e, "type")));
        }
        json_decref(j);
    } else if (rep->content_type && strstr(rep->content_type, "json")) {
        json_t *j = json_loadb(rep->body, rep->len, 0, &je);
        FUZZ_CHECK(j != NULL);
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    srv_server *s = &S;
    const srv_route *rt = &srv_routes[data[0] % srv_n_routes];
    srv_request *r = srv_http_local_run(s, rt, rt->post ? "POST" : "GET", (const char *)data + 1, size - 1);
    FUZZ_CHECK(r != NULL);
    /* a deferred request (generation) is answered by the worker (or fails: deadline, 5 s) */
    const srv_reply *rep;
    const char *sse;
    size_t sse_len;
    double t0 = srv_now();
    while (!srv_http_local_done(r, &rep, &sse, &sse_len)) {
        FUZZ_CHECK(srv_now() - t0 < 30); /* a hang */
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    if (!rep->status) {
        /* a stream: ends with [DONE], or with an error event after the first token */
        FUZZ_CHECK(sse_len >= 14);
        FUZZ_CHECK(!memcmp(sse + sse_len - 14, "data: [DONE]\n\n", 14) ||
                   memmem(sse, sse_len, "data: {\"error\"", 15) != NULL);
    } else {
        check_reply(rep);
    }
    srv_http_release(r);
    FUZZ_CHECK(atomic_load(&s->inflight) == 0);
    return 0;
}
