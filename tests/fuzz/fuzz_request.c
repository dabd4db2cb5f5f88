/* fuzz_request.c - libFuzzer harness for the server's request parsing, validation and
 * answering, route by route, without the network: a srv_server is built in-process as
 * server/main.c builds it (the t5-tiny-gated fixture, config defaults with small limits,
 * a real scheduler with one worker), and each input becomes the body of one request that
 * is handed to the route handler as http.c's access handler does once the body is in.
 * Input: byte 0 picks the route (generate, tokenize, detokenize, or the GET routes), the
 * rest is the body. Generation requests that pass validation really run on the worker;
 * the harness waits for the answer. Checks: every request gets exactly one reply with a
 * designed status (200 400 413 429 503 504; 500 is a failure), error bodies are short
 * JSON in the design's shape, 200 bodies are JSON (or SSE ending in [DONE]), and no
 * reference is leaked (LeakSanitizer). What it is not: a test of http.c's routing,
 * headers, auth and body-size checks (the 61-faults and 62-soak suites do those). */
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
    char err[300];
    s->metrics = srv_metrics_create();
    s->tok = tok_model_load(s->cfg.model, err, sizeof err);
    s->model = s->tok ? t5_model_load(s->cfg.model, err, sizeof err) : NULL;
    if (!s->metrics || !s->tok || !s->model || !(s->sched = srv_sched_create(s, err, sizeof err))) {
        fprintf(stderr, "fuzz_request: cannot set the server up: %s (set FIXTURES)\n", err);
        exit(1);
    }
    snprintf(s->model_name, sizeof s->model_name, "t5-tiny-gated");
    return 0;
}

static void check_reply(srv_request *r) {
    srv_reply *rep = &r->reply;
    int st = rep->status;
    FUZZ_CHECK(st == 200 || st == 400 || st == 413 || st == 429 || st == 503 || st == 504);
    FUZZ_CHECK(rep->body != NULL);
    json_error_t je;
    if (st != 200) {
        FUZZ_CHECK(rep->len < 1000);
        json_t *j = json_loadb(rep->body, rep->len, 0, &je);
        FUZZ_CHECK(j != NULL);
        json_t *e = json_object_get(j, "error");
        FUZZ_CHECK(json_integer_value(json_object_get(e, "code")) == st);
        FUZZ_CHECK(json_is_string(json_object_get(e, "message")) &&
                   json_is_string(json_object_get(e, "type")));
        json_decref(j);
    } else if (rep->content_type && strstr(rep->content_type, "json")) {
        json_t *j = json_loadb(rep->body, rep->len, 0, &je);
        FUZZ_CHECK(j != NULL);
        json_decref(j);
    }
}

static const char *const get_paths[] = {"/health", "/ready", "/metrics", "/info"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    srv_server *s = &S;
    unsigned which = data[0] % 7;
    static const char *const post_paths[] = {"/generate", "/tokenize", "/detokenize"};
    const char *path = which < 3 ? post_paths[which] : get_paths[which - 3];
    srv_request *r = srv_request_create(s, NULL, which < 3 ? "POST" : "GET", path);
    FUZZ_CHECK(r != NULL);
    /* the body as http.c collects it: malloc'd, NUL-terminated */
    r->body_len = size - 1;
    r->body_cap = size;
    r->body = malloc(size);
    memcpy(r->body, data + 1, size - 1);
    r->body[size - 1] = 0;
    switch (which) {
    case 0:
        r->route = SRV_ROUTE_GENERATE;
        srv_route_generate(r);
        break;
    case 1:
        r->route = SRV_ROUTE_TOKENIZE;
        srv_route_tokenize(r);
        break;
    case 2:
        r->route = SRV_ROUTE_DETOKENIZE;
        srv_route_detokenize(r);
        break;
    case 3:
        r->route = SRV_ROUTE_HEALTH;
        srv_route_health(r);
        break;
    case 4:
        r->route = SRV_ROUTE_READY;
        srv_route_ready(r);
        break;
    case 5:
        r->route = SRV_ROUTE_METRICS;
        srv_route_metrics(r);
        break;
    default:
        r->route = SRV_ROUTE_INFO;
        srv_route_info(r);
        break;
    }
    if (r->state == SRV_ST_WAIT) {
        /* queued for generation: the worker answers (or fails it: deadline, 5 s) */
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        double t0 = srv_now();
        for (;;) {
            uv_mutex_lock(&r->lock);
            int done = r->stream ? r->stream_done || r->have_reply : r->have_reply;
            uv_mutex_unlock(&r->lock);
            if (done && atomic_load(&r->refs) == 1) break;
            FUZZ_CHECK(srv_now() - t0 < 30); /* a hang */
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        if (r->stream && !r->have_reply) {
            /* ends with [DONE], or with an error event after the first token */
            FUZZ_CHECK(r->sse && r->sse_len >= 14);
            FUZZ_CHECK(!memcmp(r->sse + r->sse_len - 14, "data: [DONE]\n\n", 14) ||
                       memmem(r->sse, r->sse_len, "data: {\"error\"", 15) != NULL);
        } else {
            check_reply(r);
        }
    } else {
        FUZZ_CHECK(r->have_reply);
        check_reply(r);
    }
    free(r->reply.body); /* MHD would have taken it */
    r->reply.body = NULL;
    srv_request_release(r);
    FUZZ_CHECK(atomic_load(&s->inflight) == 0);
    return 0;
}
