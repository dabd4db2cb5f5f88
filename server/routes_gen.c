/* routes_gen.c - POST /generate: validates the request (design section 5 names and
 * ranges), turns each text into encoder ids, queues one scheduler task per text, and
 * builds the answer when the tasks end: JSON for a plain request, Server-Sent Events
 * for `stream: true` (through http.h). Also the per-token hook of its tasks: time to
 * first token, stop strings, streamed text deltas. Not the scheduling (scheduler.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genreq.h"

typedef srv_genreq generate_req;
typedef srv_genjob generate_job;

static void req_free(generate_req *g) {
    if (!g) return;
    for (int i = 0; g->answers && i < g->n; i++)
        json_decref(g->answers[i]);
    free(g->answers);
    free(g->tasks);
    free(g->ctx);
    gen_stops_free(&g->stops);
    uv_mutex_destroy(&g->lock);
    free(g);
}

static void job_free(generate_job *j) {
    free(j->ids);
    t5_result_free(&j->result);
    gen_text_free(&j->text);
    json_decref(j->held);
    free(j);
}

/* The answer for one finished job (design section 5). NULL on out of memory. */
static json_t *build_answer(generate_req *g, generate_job *j, int with_extras) {
    const tok_model *tok = g->srv->tok;
    t5_result *res = &j->result;
    if (res->n_seqs < 1) return NULL;
    json_t *seqs = with_extras && g->num_return > 1 ? json_array() : NULL;
    json_t *ans = NULL;
    for (int k = 0; k < res->n_seqs && k < g->num_return; k++) {
        t5_sequence *q = &res->seqs[k];
        int stopped = 0;
        size_t len = 0;
        char *text = gen_text_final(tok, q->ids, q->n, &g->stops, &stopped, &len);
        if (!text) {
            json_decref(seqs);
            json_decref(ans);
            return NULL;
        }
        const char *fin = gen_finish_name(stopped ? T5_FINISH_STOP : q->finish);
        if (k == 0)
            ans = json_pack("{s:s%,s:s,s:{s:i,s:i}}", "text", text, len, "finish_reason", fin, "usage",
                            "input_tokens", j->n, "output_tokens", q->n);
        if (seqs)
            json_array_append_new(seqs, json_pack("{s:s%,s:f,s:s}", "text", text, len, "score",
                                                  (double)q->score, "finish_reason", fin));
        free(text);
    }
    if (!ans) {
        json_decref(seqs);
        return NULL;
    }
    if (seqs) json_object_set_new(ans, "sequences", seqs);
    if (with_extras && g->details) {
        t5_sequence *q = &res->seqs[0];
        json_t *toks = json_array();
        gen_text ts;
        gen_text_init(&ts);
        /* the tokens' texts concatenate to `text`: cut at a stop string as it is, and the
         * last token carries what was held back (a possible stop-string prefix) */
        for (int i = 0; i < q->n; i++) {
            size_t off = 0, dl = 0;
            int stop = gen_text_push(&ts, tok, &g->stops, q->ids[i], &off, &dl);
            if ((stop == 1 || i == q->n - 1) && ts.len > off) dl = ts.len - off;
            json_t *lp = q->logprobs ? json_real(q->logprobs[i]) : json_null();
            json_array_append_new(toks,
                                  json_pack("{s:i,s:s%,s:o}", "id", q->ids[i], "text",
                                            ts.text ? ts.text + off : "", ts.text ? dl : 0, "logprob", lp));
            if (stop == 1) break;
        }
        gen_text_free(&ts);
        json_object_set_new(ans, "tokens", toks);
    }
    return ans;
}

/* ---- the task hooks (on a worker; on_done also on the main thread) ---- */

static int job_on_token(void *user, int32_t token, float logprob) {
    generate_job *j = user;
    generate_req *g = j->g;
    srv_server *s = g->srv;
    double now = srv_now();
    if (j->t_first == 0) {
        j->t_first = now;
        srv_metrics_ttft(s->metrics, now - g->t_start);
    } else {
        srv_metrics_token_latency(s->metrics, now - j->t_last);
    }
    j->t_last = now;
    if (!g->stream && g->stops.n == 0) return 0;
    size_t off = 0, len = 0;
    int stop = gen_text_push(&j->text, s->tok, &g->stops, token, &off, &len);
    if (g->stream) {
        json_t *ev = g->d->token_event(g, j, token, j->text.text ? j->text.text + off : "",
                                       j->text.text ? len : 0, logprob);
        if (ev) {
            srv_http_stream_event(g->req, ev);
            g->streamed = 1;
        }
    }
    return stop == 1;
}

static json_t *native_token_event(generate_req *g, generate_job *j, int32_t id, const char *text, size_t len,
                                  float logprob) {
    (void)j;
    json_t *ev = json_pack("{s:{s:i,s:s%}}", "token", "id", id, "text", text, len);
    if (ev && g->details) json_object_set_new(json_object_get(ev, "token"), "logprob", json_real(logprob));
    return ev;
}

/* Sends the request's answer once every job has ended. */
static void native_finish(generate_req *g) {
    srv_request *r = g->req;
    if (g->stream) {
        if (g->status && !g->streamed) {
            srv_http_reply(r, srv_reply_error(g->status, "%s", g->msg));
            return;
        }
        if (g->status) {
            srv_http_stream_event(r, srv_error_json(g->status, g->msg));
        } else {
            srv_http_stream_event(r, g->answers[0]);
            g->answers[0] = NULL;
            srv_http_stream_write(r, "data: [DONE]\n\n", 14);
        }
        srv_http_stream_end(r);
    } else if (g->status) {
        srv_http_reply(r, srv_reply_error(g->status, "%s", g->msg));
    } else if (g->is_array) {
        json_t *arr = json_array();
        for (int i = 0; i < g->n; i++) {
            json_array_append_new(arr, g->answers[i]);
            g->answers[i] = NULL;
        }
        srv_http_reply(r, srv_reply_json(200, json_pack("{s:o}", "results", arr)));
    } else {
        json_t *a = g->answers[0];
        g->answers[0] = NULL;
        srv_http_reply(r, srv_reply_json(200, a));
    }
}

static void job_on_done(void *user, srv_task_end *e) {
    generate_job *j = user;
    generate_req *g = j->g;
    srv_server *s = g->srv;
    if (e->result) {
        j->result = *e->result; /* ours now */
        memset(e->result, 0, sizeof *e->result);
    }
    char msg[200];
    int status = srv_end_status(e, "generation", msg, sizeof msg);
    json_t *ans = NULL;
    long out = 0;
    if (!status && e->result) {
        ans = g->d->job_answer(g, j);
        if (!ans) {
            status = 500;
            snprintf(msg, sizeof msg, "could not build the answer");
        }
        out = j->result.n_seqs > 0 ? j->result.seqs[0].n : 0;
    } else if (!status) {
        status = 500;
        snprintf(msg, sizeof msg, "generation ended without a result");
    }
    srv_metrics_tokens(s->metrics, e->result ? j->n : 0, out);
    srv_http_count_tokens(g->req, j->n, out);
    uv_mutex_lock(&g->lock);
    if (status && !g->status) {
        g->status = status;
        snprintf(g->msg, sizeof g->msg, "%s", msg);
    }
    g->answers[j->index] = ans;
    g->tokens_in += j->n;
    g->tokens_out += out;
    int last = --g->remaining == 0;
    uv_mutex_unlock(&g->lock);
    srv_request *r = g->req;
    if (last) {
        g->d->finish(g);
        req_free(g);
    }
    job_free(j);
    srv_http_release(r);
}

static json_t *native_job_answer(generate_req *g, generate_job *j) {
    return build_answer(g, j, !g->stream);
}

static srv_reply native_error(generate_req *g, int status, const char *msg) {
    (void)g;
    return srv_reply_error(status, "%s", msg);
}

static const srv_gendialect native = {native_job_answer, native_token_event, native_finish, native_error};

/* ---- the request's life ---- */

srv_genreq *srv_genreq_create(srv_request *r, const srv_gendialect *d, size_t ctx_size) {
    generate_req *g = calloc(1, sizeof *g);
    if (g && ctx_size && !(g->ctx = calloc(1, ctx_size))) {
        free(g);
        g = NULL;
    }
    if (!g) return NULL;
    uv_mutex_init(&g->lock);
    g->req = r;
    g->srv = srv_http_server(r);
    g->d = d;
    g->t_start = srv_http_t_start(r);
    g->num_return = 1;
    return g;
}

int srv_genreq_add_job(generate_req *g, int32_t *ids, int n, const t5_gen_params *p, int rows,
                       double deadline) {
    generate_job *j = NULL;
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 4;
        srv_task **t = realloc(g->tasks, (size_t)cap * sizeof *t);
        json_t **a = t ? realloc(g->answers, (size_t)cap * sizeof *a) : NULL;
        if (t) g->tasks = t;
        if (!a) goto oom;
        g->answers = a;
        g->cap = cap;
    }
    if (!(j = calloc(1, sizeof *j))) goto oom;
    srv_http_retain(g->req);
    j->g = g;
    j->index = g->n;
    j->ids = ids;
    j->n = n;
    gen_text_init(&j->text);
    srv_task *t = &j->task;
    t->user = j;
    t->kind = SRV_TASK_GENERATE;
    t->ids = ids;
    t->n = n;
    t->rows = rows;
    t->deadline = deadline;
    t->cancel = srv_http_cancel_flag(g->req);
    t->u.gen.params = *p;
    t->u.gen.on_token = job_on_token;
    t->on_done = job_on_done;
    g->answers[g->n] = NULL;
    g->tasks[g->n++] = t;
    return 0;
oom:
    free(ids);
    return -1;
}

static void jobs_free(generate_req *g) {
    for (int i = 0; i < g->n; i++) {
        job_free(g->tasks[i]->user);
        srv_http_release(g->req); /* never the last reference: MHD holds one */
    }
}

void srv_genreq_abandon(generate_req *g, srv_reply p) {
    srv_http_reply(g->req, p);
    jobs_free(g);
    req_free(g);
}

void srv_genreq_fail(generate_req *g, int status, const char *msg) {
    srv_genreq_abandon(g, g->d->error(g, status, msg));
}

void srv_genreq_run(generate_req *g) {
    srv_request *r = g->req;
    g->remaining = g->n;
    srv_http_defer(r);
    if (srv_sched_submit(g->srv->sched, g->tasks, g->n) != 0) {
        srv_http_reply(r, g->d->error(g, 429, "the server is overloaded (its queue is full); retry later"));
        jobs_free(g);
        req_free(g);
    }
}

/* ---- request parsing ---- */

int srv_gen_parse_stops(json_t *body, const char *key, int max, gen_stops *st, char *err, size_t errlen) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return 0;
    json_t *one = json_is_string(v) ? v : NULL;
    size_t n = one ? 1 : json_is_array(v) ? json_array_size(v) : (size_t)-1;
    if (n == (size_t)-1) return snprintf(err, errlen, "%s must be a string or an array of strings", key), -1;
    if (n > (size_t)max) return snprintf(err, errlen, "%s has more than %d strings", key, max), -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = one ? one : json_array_get(v, i);
        if (!json_is_string(e)) return snprintf(err, errlen, "%s[%zu] must be a string", key, i), -1;
        size_t l = json_string_length(e);
        if (l == 0 || l > 256)
            return snprintf(err, errlen, "%s strings must be 1 to 256 bytes long", key), -1;
        if (gen_stops_add(st, json_string_value(e), l)) return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

/* The most a request on this server may ask of a parameter (the table's, or a limit of
 * the configuration or of another parameter read before it). */
static double param_hi(const srv_server *s, const gen_param *gp, const t5_gen_params *p) {
    const cfg_t *c = &s->cfg;
    int max_beams = c->max_num_beams < c->max_batch ? c->max_num_beams : c->max_batch;
    if (gp->offset == offsetof(t5_gen_params, max_new_tokens)) return c->max_new_tokens_limit;
    if (gp->offset == offsetof(t5_gen_params, min_new_tokens)) return p->max_new_tokens;
    if (gp->offset == offsetof(t5_gen_params, num_beams)) return max_beams;
    if (gp->offset == offsetof(t5_gen_params, num_return_sequences))
        return p->do_sample ? max_beams : p->num_beams;
    return gp->hi;
}

/* Reads one parameter of the table into its field of p (absent or null: unchanged). */
static int parse_param(json_t *b, const gen_param *gp, double hi, t5_gen_params *p, char *err,
                       size_t errlen) {
    void *field = (char *)p + gp->offset;
    long long v;
    double d;
    int f;
    switch (gp->type) {
    case GEN_PARAM_INT:
        v = *(int *)field;
        if (srv_json_int(b, gp->name, (long long)gp->lo, (long long)hi, &v, err, errlen)) return -1;
        *(int *)field = (int)v;
        return 0;
    case GEN_PARAM_FLOAT:
        d = *(float *)field;
        if (srv_json_num(b, gp->name, gp->lo, hi, gp->lo_open, &d, err, errlen)) return -1;
        /* checked again as the engine gets it: 1e-50 is > 0, but 0 as a float */
        if (gp->lo_open ? (float)d <= (float)gp->lo : (float)d < (float)gp->lo)
            return snprintf(err, errlen, "%s must be %s %g and at most %g (%g is %g as a 32-bit float)",
                            gp->name, gp->lo_open ? "greater than" : "at least", gp->lo, hi, d,
                            (double)(float)d),
                   -1;
        *(float *)field = (float)d;
        return 0;
    case GEN_PARAM_BOOL:
        f = *(int *)field;
        if (srv_json_bool(b, gp->name, &f, err, errlen)) return -1;
        *(int *)field = f;
        return 0;
    case GEN_PARAM_SEED:
        v = (long long)*(uint64_t *)field;
        if (srv_json_int(b, gp->name, 0, INT64_MAX, &v, err, errlen)) return -1;
        *(uint64_t *)field = (uint64_t)v;
        return 0;
    case GEN_PARAM_EARLY_STOP: { /* true, false or "never", as transformers takes it */
        json_t *es = json_object_get(b, gp->name);
        if (json_is_boolean(es))
            *(int *)field = json_is_true(es);
        else if (json_is_string(es) && !strcmp(json_string_value(es), "never"))
            *(int *)field = 2;
        else if (es && !json_is_null(es))
            return snprintf(err, errlen, "%s must be true, false or \"never\"", gp->name), -1;
        return 0;
    }
    }
    return 0;
}

void srv_gen_default_params(const srv_server *s, t5_gen_params *p) {
    t5_gen_default_params(p);
    p->max_new_tokens = s->cfg.default_max_new_tokens;
    gen_params_for_tokenizer(p, s->tok);
}

int srv_gen_parse_params(srv_server *s, json_t *b, t5_gen_params *p, int *rows, char *err, size_t errlen) {
    const cfg_t *c = &s->cfg;
    json_t *mnt = json_object_get(b, "max_new_tokens");
    if (mnt && json_is_integer(mnt) && json_integer_value(mnt) > c->max_new_tokens_limit)
        return snprintf(err, errlen,
                        "max_new_tokens %lld is more than this server's limit of %d (max_new_tokens_limit)",
                        (long long)json_integer_value(mnt), c->max_new_tokens_limit),
               -1;
    for (int i = 0; i < gen_n_params; i++)
        if (parse_param(b, &gen_params[i], param_hi(s, &gen_params[i], p), p, err, errlen)) return -1;
    *rows = p->num_beams > p->num_return_sequences ? p->num_beams : p->num_return_sequences;
    return 0;
}

/* Unknown fields are refused: the route's own and the parameters are known. */
static int check_fields(json_t *b, char *err, size_t errlen) {
    static const char *const own[] = {"text", "ids", "stop", "stream", "details", "truncate", "timeout_ms"};
    enum { N_OWN = sizeof own / sizeof own[0] };
    const char *known[N_OWN + 64 + 1];
    int n = 0;
    for (int i = 0; i < N_OWN; i++)
        known[n++] = own[i];
    for (int i = 0; i < gen_n_params && i < 64; i++)
        known[n++] = gen_params[i].name;
    known[n] = NULL;
    return srv_json_fields(b, known, err, errlen);
}

/* truncate N keeps the text's first N tokens; the closing </s> makes the input N + 1 ids,
 * which must fit max_input_tokens (docs/server.md). */
static int parse_truncate(json_t *b, int max_input, long long *out, char *err, size_t errlen) {
    if (!srv_json_int(b, "truncate", 1, max_input - 1, out, err, errlen)) return 0;
    if (json_is_integer(json_object_get(b, "truncate")))
        snprintf(err, errlen,
                 "truncate must be from 1 to %d: it counts the text's tokens, and the closing </s> makes "
                 "the input truncate + 1 tokens, at most max_input_tokens (%d)",
                 max_input - 1, max_input);
    return -1;
}

/* The request's options: everything but the inputs. 0, or -1 with err. */
static int parse_options(srv_server *s, json_t *b, generate_req *g, t5_gen_params *p, int *rows,
                         long long *truncate, long long *timeout_ms, char *err, size_t errlen) {
    const cfg_t *c = &s->cfg;
    srv_gen_default_params(s, p);
    if (check_fields(b, err, errlen) || srv_gen_parse_params(s, b, p, rows, err, errlen) ||
        srv_gen_parse_stops(b, "stop", 16, &g->stops, err, errlen) ||
        srv_json_bool(b, "stream", &g->stream, err, errlen) ||
        srv_json_bool(b, "details", &g->details, err, errlen) ||
        parse_truncate(b, c->max_input_tokens, truncate, err, errlen) ||
        srv_json_int(b, "timeout_ms", 1, 86400000, timeout_ms, err, errlen))
        return -1;
    if (*rows > c->max_batch) {
        snprintf(err, errlen, "this request needs %d batch rows, more than max_batch (%d)", *rows,
                 c->max_batch);
        return -1;
    }
    p->want_logprobs = g->details;
    g->num_return = p->num_return_sequences;
    if (*timeout_ms > c->request_timeout_ms) *timeout_ms = c->request_timeout_ms;
    return 0;
}

/* The jobs of a request, one per input (text or ids). 0, or the HTTP status (400/500)
 * with err. */
static int make_jobs(generate_req *g, json_t *b, const t5_gen_params *p, int rows, long long truncate,
                     double deadline, char *err, size_t errlen) {
    srv_server *s = g->srv;
    const cfg_t *c = &s->cfg;
    json_t *jtext = json_object_get(b, "text"), *jids = json_object_get(b, "ids");
    const char **texts = NULL;
    size_t *lens = NULL;
    int n = 0, rc = 400;
    if (jtext && jids) {
        snprintf(err, errlen, "give either text or ids, not both");
        return 400;
    }
    if (!jtext && !jids) {
        snprintf(err, errlen, "text (a string or an array of strings) or ids is required");
        return 400;
    }
    if (jids)
        n = 1;
    else if (srv_json_texts(b, "text", c->max_texts, &texts, &lens, &n, &g->is_array, err, errlen))
        goto done;
    if (g->stream && (n != 1 || g->is_array || p->num_beams > 1 || p->num_return_sequences > 1)) {
        snprintf(err, errlen, "stream needs one text, num_beams 1 and num_return_sequences 1");
        goto done;
    }
    int32_t vocab = t5_model_config(s->model)->vocab_size;
    for (int i = 0; i < n; i++) {
        int32_t *ids = NULL;
        int m = 0;
        rc = 400;
        if (jids) {
            if (srv_json_ids(jids, "ids", vocab, c->max_input_tokens, &ids, &m, err, errlen)) goto done;
            if (m == 0) {
                free(ids);
                snprintf(err, errlen, "ids must not be empty");
                goto done;
            }
        } else if ((rc = srv_text_ids(s, "text", texts[i], lens[i], i, g->is_array, (int)truncate, &ids, &m,
                                      err, errlen))) {
            goto done;
        }
        if (srv_genreq_add_job(g, ids, m, p, rows, deadline)) {
            snprintf(err, errlen, "out of memory");
            rc = 500;
            goto done;
        }
    }
    rc = 0;
done:
    free(texts);
    free(lens);
    return rc;
}

int srv_gen_unavailable(const srv_server *s, const char *route, char *err, size_t errlen) {
    if (!s->model)
        snprintf(err, errlen,
                 "this server runs tokenize-only (its model folder has a tokenizer but no config.json/model "
                 "weights): %s is not available; /tokenize and /detokenize are",
                 route);
    else if (!t5_model_has_decoder(s->model))
        return snprintf(
                   err, errlen,
                   "the model has no decoder (an encoder-only checkpoint): %s is not available; /embed is",
                   route),
               400;
    else if (atomic_load(&s->draining))
        snprintf(err, errlen, "the server is shutting down and takes no new generation requests");
    else
        return 0;
    return 503;
}

void srv_route_generate(srv_request *r) {
    srv_server *s = srv_http_server(r);
    const cfg_t *c = &s->cfg;
    char err[300];
    int status = srv_gen_unavailable(s, "/generate", err, sizeof err);
    if (status) {
        srv_http_reply(r, srv_reply_error(status, "%s", err));
        return;
    }
    size_t body_len;
    const char *body = srv_http_body(r, &body_len);
    json_t *b = srv_json_parse(body, body_len, c->max_json_depth, err, sizeof err);
    if (!b) {
        srv_http_reply(r, srv_reply_error(400, "%s", err));
        return;
    }
    int rows = 1;
    t5_gen_params p;
    long long truncate = 0, timeout_ms = c->request_timeout_ms;
    generate_req *g = srv_genreq_create(r, &native, 0);
    if (!g) {
        srv_http_reply(r, srv_reply_error(500, "out of memory"));
        json_decref(b);
        return;
    }
    status = 400;
    if (!parse_options(s, b, g, &p, &rows, &truncate, &timeout_ms, err, sizeof err)) {
        double deadline = g->t_start + (double)timeout_ms / 1000.0;
        status = make_jobs(g, b, &p, rows, truncate, deadline, err, sizeof err);
    }
    json_decref(b);
    if (status)
        srv_genreq_fail(g, status, err);
    else
        srv_genreq_run(g);
}
