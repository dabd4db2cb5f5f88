/* metrics.c - counters and histograms behind GET /metrics, rendered in the
 * Prometheus text format: requests by route and status, request duration, tokens
 * in/out, embedding tokens, time to first token, per-token latency, batch rows per decoder step; the
 * gauges (queue depth, active sequences, readiness) are passed in at render time.
 * One mutex guards everything: updates are a few adds. Not a metrics library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static const int statuses[] = {200, 400, 401, 404, 405, 413, 429, 500, 503, 504};
#define NSTATUS (int)(sizeof statuses / sizeof statuses[0])

typedef struct {
    const double *le;
    int n;
    unsigned long long counts[16]; /* per bucket (not cumulative) + the +Inf one at n */
    double sum;
    unsigned long long count;
} hist;

static const double le_latency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,      2.5,   5,    10,    30,   60};
static const double le_token[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
static const double le_rows[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

struct srv_metrics {
    uv_mutex_t lock;
    const srv_route *routes;
    int n_routes;
    unsigned long long (*requests)[NSTATUS + 1]; /* [n_routes + 1][]: last route and status: other */
    hist duration, ttft, token, rows;
    unsigned long long tokens_in, tokens_out, embed_tokens;
};

static void hist_init(hist *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->le = le;
    h->n = n;
}

static void hist_add(hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->le[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

srv_metrics *srv_metrics_create(const srv_route *routes, int n) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->routes = routes;
    m->n_routes = n;
    m->requests = calloc((size_t)n + 1, sizeof *m->requests);
    if (!m->requests) {
        free(m);
        return NULL;
    }
    uv_mutex_init(&m->lock);
    hist_init(&m->duration, le_latency, sizeof le_latency / sizeof le_latency[0]);
    hist_init(&m->ttft, le_latency, sizeof le_latency / sizeof le_latency[0]);
    hist_init(&m->token, le_token, sizeof le_token / sizeof le_token[0]);
    hist_init(&m->rows, le_rows, sizeof le_rows / sizeof le_rows[0]);
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    uv_mutex_destroy(&m->lock);
    free(m->requests);
    free(m);
}

void srv_metrics_request(srv_metrics *m, int route, int status, double seconds) {
    int si = NSTATUS;
    for (int i = 0; i < NSTATUS; i++)
        if (statuses[i] == status) si = i;
    uv_mutex_lock(&m->lock);
    m->requests[route][si]++;
    hist_add(&m->duration, seconds);
    uv_mutex_unlock(&m->lock);
}

void srv_metrics_tokens(srv_metrics *m, long in, long out) {
    uv_mutex_lock(&m->lock);
    m->tokens_in += (unsigned long long)in;
    m->tokens_out += (unsigned long long)out;
    uv_mutex_unlock(&m->lock);
}

void srv_metrics_embed_tokens(srv_metrics *m, long in) {
    uv_mutex_lock(&m->lock);
    m->embed_tokens += (unsigned long long)in;
    uv_mutex_unlock(&m->lock);
}

#define HIST_ADDER(fn, field, T)                                                                             \
    void fn(srv_metrics *m, T v) {                                                                           \
        uv_mutex_lock(&m->lock);                                                                             \
        hist_add(&m->field, (double)v);                                                                      \
        uv_mutex_unlock(&m->lock);                                                                           \
    }
HIST_ADDER(srv_metrics_ttft, ttft, double)
HIST_ADDER(srv_metrics_token_latency, token, double)
HIST_ADDER(srv_metrics_batch_rows, rows, int)

static void put_hist(FILE *f, const char *name, const char *help, const hist *h) {
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], cum);
    }
    cum += h->counts[h->n];
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, cum, name, h->sum, name,
            h->count);
}

char *srv_metrics_render(srv_metrics *m, int queued, int active, int ready, int draining) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    uv_mutex_lock(&m->lock);
    fprintf(f, "# HELP t5serve_requests_total HTTP requests answered, by route and status.\n"
               "# TYPE t5serve_requests_total counter\n");
    for (int r = 0; r <= m->n_routes; r++)
        for (int s = 0; s <= NSTATUS; s++) {
            if (!m->requests[r][s]) continue;
            char st[16];
            if (s < NSTATUS)
                snprintf(st, sizeof st, "%d", statuses[s]);
            else
                strcpy(st, "other");
            fprintf(f, "t5serve_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    r < m->n_routes ? m->routes[r].path : "other", st, m->requests[r][s]);
        }
    put_hist(f, "t5serve_request_duration_seconds",
             "Time from request start to the last byte handed to the socket.", &m->duration);
    fprintf(f,
            "# HELP t5serve_queue_depth Sequences waiting for a worker.\n# TYPE t5serve_queue_depth gauge\n"
            "t5serve_queue_depth %d\n"
            "# HELP t5serve_active_sequences Sequences in the workers' batches.\n"
            "# TYPE t5serve_active_sequences gauge\nt5serve_active_sequences %d\n"
            "# HELP t5serve_ready 1 when the model is loaded and the server is not draining.\n"
            "# TYPE t5serve_ready gauge\nt5serve_ready %d\n"
            "# HELP t5serve_draining 1 after SIGTERM/SIGINT.\n# TYPE t5serve_draining "
            "gauge\nt5serve_draining %d\n"
            "# HELP t5serve_input_tokens_total Encoder input tokens of generation requests.\n"
            "# TYPE t5serve_input_tokens_total counter\nt5serve_input_tokens_total %llu\n"
            "# HELP t5serve_output_tokens_total Generated tokens.\n"
            "# TYPE t5serve_output_tokens_total counter\nt5serve_output_tokens_total %llu\n"
            "# HELP t5serve_embedding_tokens_total Encoder input tokens of embedding requests.\n"
            "# TYPE t5serve_embedding_tokens_total counter\nt5serve_embedding_tokens_total %llu\n",
            queued, active, ready, draining, m->tokens_in, m->tokens_out, m->embed_tokens);
    put_hist(f, "t5serve_batch_rows", "Decoder rows per batched step (batch size).", &m->rows);
    put_hist(f, "t5serve_time_to_first_token_seconds", "From request arrival to its first generated token.",
             &m->ttft);
    put_hist(f, "t5serve_time_per_output_token_seconds",
             "Time between consecutive generated tokens of a sequence.", &m->token);
    uv_mutex_unlock(&m->lock);
    fclose(f);
    return buf;
}
