/* main.c - t5serve's entry point: reads the configuration (config/), loads the
 * tokenizer and (when the folder has weights) the model, starts the workers and the
 * HTTP daemon, then runs the libuv main loop: SIGTERM/SIGINT start the drain (stop
 * accepting, /ready 503, finish in-flight requests up to drain_timeout_ms, exit 0),
 * a tick expires queued jobs past their deadline, an async handle resumes finished
 * connections. Everything is freed before exit so LeakSanitizer sees no leak.
 * Also `--probe` (container health check), `--help`, `--version`, `--print-config`. */
#include <cblas.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"

extern char **environ;

static void on_step(void *metrics, int rows) {
    srv_metrics_batch_rows(metrics, rows);
}

static void on_wake(uv_async_t *h) {
    srv_http_resume_pending(h->data);
}

/* Runs on the loop thread only. The listening stops before `draining` is published, so that
 * whoever sees /ready answer 503 also finds new connections refused. */
static void begin_drain(srv_server *s, const char *why) {
    if (atomic_load(&s->draining)) return;
    srv_log(SRV_LOG_INFO, "%s: draining (in flight: %d, up to %d ms), no longer accepting", why,
            atomic_load(&s->inflight), s->cfg.drain_timeout_ms);
    s->drain_deadline = srv_now() + s->cfg.drain_timeout_ms / 1000.0;
    srv_http_stop_accepting(s);
    atomic_store(&s->draining, 1);
}

static void on_signal(uv_signal_t *h, int signum) {
    begin_drain(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void close_cb(uv_handle_t *h) {
    (void)h;
}

static void on_tick(uv_timer_t *h) {
    srv_server *s = h->data;
    double now = srv_now();
    if (s->sched) srv_sched_expire(s->sched, now);
    if (!atomic_load(&s->draining)) return;
    if (now > s->drain_deadline && !s->aborted && s->sched) {
        srv_log(SRV_LOG_WARN, "drain timeout: cancelling %d in-flight requests", atomic_load(&s->inflight));
        srv_sched_abort(s->sched);
        s->aborted = 1;
    }
    /* done when nothing is in flight, or (after an abort) a grace second has passed */
    if (atomic_load(&s->inflight) == 0 || (s->aborted && now > s->drain_deadline + 2.0)) {
        uv_timer_stop(&s->tick);
        uv_close((uv_handle_t *)&s->tick, close_cb);
        uv_close((uv_handle_t *)&s->sigterm, close_cb);
        uv_close((uv_handle_t *)&s->sigint, close_cb);
        uv_close((uv_handle_t *)&s->wake, close_cb);
    }
}

static int file_exists(const char *dir, const char *name) {
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p) return 0;
    struct stat st;
    return stat(p, &st) == 0;
}

static int load_models(srv_server *s, char *err, size_t errlen) {
    const char *dir = s->cfg.model;
    char terr[512];
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen,
                 "the model folder %.300s does not exist (--model: a folder with "
                 "config.json, model.safetensors and the tokenizer, or a tokenizer file)",
                 dir);
        return -1;
    }
    s->tok = tok_model_load(dir, terr, sizeof terr);
    if (!s->tok) {
        snprintf(err, errlen, "cannot load the tokenizer from %.300s: %.500s", dir, terr);
        return -1;
    }
    int is_dir = S_ISDIR(st.st_mode);
    if (is_dir && file_exists(dir, "config.json") && t5_weights_present(dir)) {
        t5_load_params lp;
        t5_load_default_params(&lp);
        t5_compute_type_parse(s->cfg.compute_type, &lp.compute_type); /* cfg_validate checked it */
        t5_isa_parse(s->cfg.isa, &lp.isa);                            /* the same */
        if (s->cfg.int8_float[0] && t5_mats_parse(s->cfg.int8_float, &lp.int8_float, terr, sizeof terr)) {
            snprintf(err, errlen, "int8_float: %.500s", terr);
            return -1;
        }
        if (s->cfg.int8_a16[0] && t5_mats_parse(s->cfg.int8_a16, &lp.int8_a16, terr, sizeof terr)) {
            snprintf(err, errlen, "int8_a16: %.500s", terr);
            return -1;
        }
        s->model = t5_model_load_with(dir, &lp, terr, sizeof terr);
        if (!s->model) {
            snprintf(err, errlen, "cannot load the model from %.300s: %.500s", dir, terr);
            return -1;
        }
        const t5_config *c = t5_model_config(s->model);
        if (tok_vocab_size(s->tok) > c->vocab_size) {
            /* every id past the model's embedding rows would fail in the engine */
            snprintf(err, errlen,
                     "the tokenizer of %.300s has %d ids but the model's vocabulary (config.json vocab_size) "
                     "has %d: the tokenizer does not belong to these weights",
                     dir, (int)tok_vocab_size(s->tok), c->vocab_size);
            return -1;
        }
        srv_log(SRV_LOG_INFO, "model %s: %s, d_model %d, %d+%d layers, vocab %d, %s%s", dir, c->model_type,
                c->d_model, c->num_layers, c->num_decoder_layers, c->vocab_size, t5_model_format(s->model),
                c->has_decoder ? "" : " (encoder only: embeddings, no generation)");
        for (const char *n = t5_model_notes(s->model), *e; (e = strchr(n, '\n')); n = e + 1)
            srv_log(SRV_LOG_WARN, "model: %.*s", (int)(e - n), n);
        s->embedder = t5_embedder_load(dir, c->d_model, terr, sizeof terr);
        if (!s->embedder) {
            snprintf(err, errlen, "cannot load the embedding modules of %.300s: %.500s", dir, terr);
            return -1;
        }
        char desc[256];
        t5_embedder_describe(s->embedder, desc, sizeof desc);
        srv_log(SRV_LOG_INFO, "embeddings: %s, max_seq_length %d", desc,
                t5_embedder_max_seq_length(s->embedder));
    } else if (is_dir && file_exists(dir, "config.json")) {
        /* A model folder that lost its weights must not look healthy as a tokenize-only service. */
        snprintf(err, errlen,
                 "%.300s has config.json but the weights are missing (looked for model.safetensors, "
                 "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json); "
                 "for a tokenize-only service give the tokenizer file or a folder without config.json",
                 dir);
        return -1;
    } else if (is_dir && t5_weights_present(dir)) {
        srv_log(
            SRV_LOG_WARN,
            "%s has model.safetensors but no config.json: the weights are not used, tokenize-only service "
            "(/generate answers 503); add the model's config.json to serve generation",
            dir);
    } else {
        srv_log(SRV_LOG_INFO,
                "%s has a tokenizer but no config.json + weights: tokenize-only service "
                "(/generate answers 503)",
                dir);
    }
    char buf[CFG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = 0;
    const char *base = strrchr(buf, '/');
    snprintf(s->model_name, sizeof s->model_name, "%.127s",
             s->cfg.model_name[0] ? s->cfg.model_name
             : base               ? base + 1
                                  : buf);
    return 0;
}

static void server_free(srv_server *s) {
    /* workers first: they finish what they hold (aborted by now if the drain timed
     * out), so every suspended connection has its answer and a pending resume */
    srv_sched_free(s->sched);
    s->sched = NULL;
    srv_http_stop(s); /* resumes the pending ones, then closes every connection */
    t5_embedder_free(s->embedder);
    t5_model_free(s->model);
    tok_model_free(s->tok);
    srv_metrics_free(s->metrics);
    free(s->resume);
    uv_mutex_destroy(&s->resume_lock);
    uv_mutex_destroy(&s->conn_lock);
}

int main(int argc, char **argv) {
    static srv_server srv; /* big (cfg paths); one per process */
    srv_server *s = &srv;
    char err[1024];
    if (cfg_load(&s->cfg, argc, argv, environ, err, sizeof err)) {
        fprintf(stderr, "t5serve: %s\n", err);
        return 2;
    }
    if (s->cfg.help) {
        cfg_print_help(stdout, "t5serve");
        return 0;
    }
    if (s->cfg.version) {
        printf("t5serve %s\n", SRV_VERSION);
        return 0;
    }
    if (s->cfg.print_config) {
        cfg_print(stdout, &s->cfg);
        return 0;
    }
    if (s->cfg.probe) return srv_probe(&s->cfg);
    signal(SIGPIPE, SIG_IGN);
    srv_log_set_level(s->cfg.log_level);
    json_object_seed(0);
    s->t_started = srv_now();
    s->t_started_wall = (long)time(NULL);
    uv_mutex_init(&s->resume_lock);
    uv_mutex_init(&s->conn_lock);
    struct rlimit rl; /* descriptors for as many connections as the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    atomic_init(&s->draining, 0);
    atomic_init(&s->inflight, 0);
    atomic_init(&s->tok_jobs, 0);
    s->metrics = srv_metrics_create(srv_routes, srv_n_routes);
    openblas_set_num_threads(1); /* each worker splits its GEMMs over its own threads */
    /* Every request allocates and frees megabytes (encoder activations, cross K/V, KV
     * caches). Keep such blocks in the heap for reuse instead of a fresh mmap each
     * time, whose every page faults in again (a measured tenth of the encoder's time). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    s->threads_per_worker = s->cfg.threads_per_worker
                                ? s->cfg.threads_per_worker
                                : (ncpu / s->cfg.workers > 0 ? ncpu / s->cfg.workers : 1);
    int rc = 1;
    s->listen_fd = -1;
    /* the port first: a port in use is reported before seconds of model loading */
    if (!s->metrics || srv_http_listen(s, err, sizeof err) || load_models(s, err, sizeof err)) goto fail;
    if (s->model) {
        srv_sched_config sc = {s->model,          s->cfg.workers, s->cfg.max_batch, s->threads_per_worker,
                               s->cfg.queue_size, on_step,        s->metrics};
        if (!(s->sched = srv_sched_create(&sc, err, sizeof err))) goto fail;
    }
    if (uv_loop_init(&s->loop)) {
        snprintf(err, sizeof err, "uv_loop_init failed");
        goto fail;
    }
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_timer_init(&s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, 50, 50);
    if (srv_http_start(s, srv_routes, srv_n_routes, err, sizeof err)) {
        uv_close((uv_handle_t *)&s->tick, close_cb);
        uv_close((uv_handle_t *)&s->sigterm, close_cb);
        uv_close((uv_handle_t *)&s->sigint, close_cb);
        uv_close((uv_handle_t *)&s->wake, close_cb);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        goto fail;
    }
    srv_log(SRV_LOG_INFO, "t5serve %s listening on %s:%d (%s; %d worker(s) x %d thread(s), max_batch %d)",
            SRV_VERSION, s->cfg.host, s->cfg.port,
            !s->model                        ? "tokenize-only"
            : t5_model_has_decoder(s->model) ? "generate + embed + tokenize"
                                             : "embed + tokenize",
            s->cfg.workers, s->threads_per_worker, s->cfg.max_batch);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    server_free(s);
    srv_log(SRV_LOG_INFO, "drained, exiting");
    return 0;
fail:
    fprintf(stderr, "t5serve: %s\n", err);
    server_free(s);
    return rc;
}
