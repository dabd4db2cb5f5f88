/* routes_gen.c - POST /generate: validates the request (design section 5 names and
 * ranges), tokenizes the texts, queues one job per text, and builds the answers when
 * the workers finish them: JSON for a plain request, Server-Sent Events for
 * `stream: true` (sse.c carries the bytes). Also the worker-side token hook: time to
 * first token, stop strings, streamed text deltas. Not the scheduling (scheduler.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

struct srv_gen {
    int n, is_array, remaining, stream, details, num_return;
    srv_stops stops;
    json_t **answers; /* [n], filled as jobs finish */
    int status;       /* first error of any job */
    char msg[200];
};

static const char *const gen_fields[] = {"text",
                                         "ids",
                                         "max_new_tokens",
                                         "min_new_tokens",
                                         "do_sample",
                                         "temperature",
                                         "top_k",
                                         "top_p",
                                         "repetition_penalty",
                                         "no_repeat_ngram_size",
                                         "num_beams",
                                         "num_return_sequences",
                                         "length_penalty",
                                         "early_stopping",
                                         "seed",
                                         "stop",
                                         "stream",
                                         "details",
                                         "truncate",
                                         "timeout_ms",
                                         NULL};

void srv_gen_free(srv_gen *g) {
    if (!g) return;
    for (int i = 0; g->answers && i < g->n; i++)
        json_decref(g->answers[i]);
    free(g->answers);
    for (int i = 0; i < g->stops.n; i++)
        free(g->stops.s[i]);
    free(g->stops.s);
    free(g->stops.len);
    free(g);
}

static void job_free(srv_job *j) {
    free(j->ids);
    t5_result_free(&j->result);
    srv_text_free(&j->text);
    free(j);
}

static const char *finish_name(int finish) {
    switch (finish) {
    case T5_FINISH_EOS:
        return "eos";
    case T5_FINISH_STOP:
        return "stop";
    default:
        return "length";
    }
}

/* The answer for one finished job (design section 5). NULL on out of memory. */
static json_t *build_answer(srv_server *s, srv_gen *g, srv_job *j, int with_extras) {
    t5_result *res = &j->result;
    if (res->n_seqs < 1) return NULL;
    json_t *seqs = with_extras && g->num_return > 1 ? json_array() : NULL;
    json_t *ans = NULL;
    for (int k = 0; k < res->n_seqs && k < g->num_return; k++) {
        t5_sequence *q = &res->seqs[k];
        int stopped = 0;
        size_t len = 0;
        char *text = srv_text_final(s->tok, q->ids, q->n, &g->stops, &stopped, &len);
        if (!text) {
            json_decref(seqs);
            json_decref(ans);
            return NULL;
        }
        const char *fin = stopped ? "stop" : finish_name(q->finish);
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
        srv_textstate ts;
        memset(&ts, 0, sizeof ts);
        ts.stop_at = -1;
        for (int i = 0; i < q->n; i++) {
            size_t off = 0, dl = 0;
            srv_text_push(&ts, s->tok, NULL, q->ids[i], &off, &dl);
            json_t *lp = q->logprobs ? json_real(q->logprobs[i]) : json_null();
            json_array_append_new(toks,
                                  json_pack("{s:i,s:s%,s:o}", "id", q->ids[i], "text",
                                            ts.text ? ts.text + off : "", ts.text ? dl : 0, "logprob", lp));
        }
        srv_text_free(&ts);
        json_object_set_new(ans, "tokens", toks);
    }
    return ans;
}

int srv_gen_on_token(srv_job *j, int32_t token, float logprob) {
    srv_request *r = j->req;
    srv_gen *g = r->gen;
    srv_server *s = r->srv;
    double now = srv_now();
    if (j->t_first == 0) {
        j->t_first = now;
        srv_metrics_ttft(s->metrics, now - r->t_start);
    } else {
        srv_metrics_token_latency(s->metrics, now - j->t_last);
    }
    j->t_last = now;
    if (!g->stream && g->stops.n == 0) return 0;
    size_t off = 0, len = 0;
    int stop = srv_text_push(&j->text, s->tok, &g->stops, token, &off, &len);
    if (g->stream) {
        json_t *ev = json_pack("{s:{s:i,s:s%}}", "token", "id", token, "text",
                               j->text.text ? j->text.text + off : "", j->text.text ? len : 0);
        if (ev && g->details)
            json_object_set_new(json_object_get(ev, "token"), "logprob", json_real(logprob));
        uv_mutex_lock(&r->lock);
        srv_sse_event(r, ev);
        r->stream_started = 1;
        srv_request_wake_locked(r);
        uv_mutex_unlock(&r->lock);
    }
    return stop == 1;
}

/* With r->lock held, once every job of r is done. */
static void finish_request_locked(srv_request *r) {
    srv_gen *g = r->gen;
    int status = g->status == 499 ? 503 : g->status;
    if (g->stream) {
        if (status && !r->stream_started) {
            srv_reply_error(r, status, "%s", g->msg);
        } else if (status) {
            srv_sse_event(r, srv_error_json(status, g->msg));
        } else {
            json_t *fin = g->answers[0];
            g->answers[0] = NULL;
            srv_sse_event(r, fin);
            srv_sse_append(r, "data: [DONE]\n\n", 14);
        }
        r->stream_started = 1;
        r->stream_done = 1;
    } else if (status) {
        srv_reply_error(r, status, "%s", g->msg);
    } else if (g->is_array) {
        json_t *arr = json_array();
        for (int i = 0; i < g->n; i++) {
            json_array_append_new(arr, g->answers[i]);
            g->answers[i] = NULL;
        }
        srv_reply_json(r, 200, json_pack("{s:o}", "results", arr));
    } else {
        json_t *a = g->answers[0];
        g->answers[0] = NULL;
        srv_reply_json(r, 200, a);
    }
    srv_request_wake_locked(r);
}

void srv_gen_job_done(srv_job *j) {
    srv_request *r = j->req;
    srv_gen *g = r->gen;
    srv_server *s = r->srv;
    json_t *ans = NULL;
    long out = 0;
    if (!j->status && j->have_result) {
        ans = build_answer(s, g, j, !g->stream);
        if (!ans) {
            j->status = 500;
            snprintf(j->msg, sizeof j->msg, "could not build the answer");
        }
        out = j->result.n_seqs > 0 ? j->result.seqs[0].n : 0;
    } else if (!j->status) {
        j->status = 500;
        snprintf(j->msg, sizeof j->msg, "generation ended without a result");
    }
    srv_metrics_tokens(s->metrics, j->have_result ? j->n : 0, out);
    uv_mutex_lock(&r->lock);
    if (j->status && !g->status) {
        g->status = j->status;
        snprintf(g->msg, sizeof g->msg, "%s", j->msg);
    }
    g->answers[j->index] = ans;
    r->tokens_in += j->n;
    r->tokens_out += out;
    if (--g->remaining == 0) finish_request_locked(r);
    uv_mutex_unlock(&r->lock);
    job_free(j);
    srv_request_release(r);
}

/* ---- request parsing ---- */

static int parse_stops(json_t *body, srv_stops *st, char *err, size_t errlen) {
    json_t *v = json_object_get(body, "stop");
    if (!v || json_is_null(v)) return 0;
    json_t *one = json_is_string(v) ? v : NULL;
    size_t n = one ? 1 : json_is_array(v) ? json_array_size(v) : (size_t)-1;
    if (n == (size_t)-1) return snprintf(err, errlen, "stop must be a string or an array of strings"), -1;
    if (n > 16) return snprintf(err, errlen, "stop has more than 16 strings"), -1;
    st->s = calloc(n ? n : 1, sizeof *st->s);
    st->len = calloc(n ? n : 1, sizeof *st->len);
    if (!st->s || !st->len) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = one ? one : json_array_get(v, i);
        if (!json_is_string(e)) return snprintf(err, errlen, "stop[%zu] must be a string", i), -1;
        size_t l = json_string_length(e);
        if (l == 0 || l > 256) return snprintf(err, errlen, "stop strings must be 1 to 256 bytes long"), -1;
        st->s[i] = malloc(l + 1);
        if (!st->s[i]) return snprintf(err, errlen, "out of memory"), -1;
        memcpy(st->s[i], json_string_value(e), l + 1);
        st->len[i] = l;
        st->n = (int)i + 1;
    }
    return 0;
}

/* Fills p from the request; returns 0 or -1 with err. */
static int parse_params(srv_server *s, json_t *b, t5_gen_params *p, int *rows, char *err, size_t errlen) {
    const cfg_t *c = &s->cfg;
    long long v;
    double d;
    int f;
    t5_gen_default_params(p);
    p->max_new_tokens = c->default_max_new_tokens;
    if (tok_model_kind(s->tok) == TOK_KIND_WORDPIECE) {
        /* T5 PEGASUS: generation starts from [CLS] and stops at [SEP], whatever config.json says */
        p->decoder_start_token_id = tok_bos_id(s->tok);
        p->eos_token_id = tok_eos_id(s->tok);
    }
    json_t *mnt = json_object_get(b, "max_new_tokens");
    if (mnt && json_is_integer(mnt) && json_integer_value(mnt) > c->max_new_tokens_limit)
        return snprintf(err, errlen,
                        "max_new_tokens %lld is more than this server's limit of %d (max_new_tokens_limit)",
                        (long long)json_integer_value(mnt), c->max_new_tokens_limit),
               -1;
    v = p->max_new_tokens;
    if (srv_json_int(b, "max_new_tokens", 1, c->max_new_tokens_limit, &v, err, errlen)) return -1;
    p->max_new_tokens = (int)v;
    v = p->min_new_tokens;
    if (srv_json_int(b, "min_new_tokens", 0, p->max_new_tokens, &v, err, errlen)) return -1;
    p->min_new_tokens = (int)v;
    f = p->do_sample;
    if (srv_json_bool(b, "do_sample", &f, err, errlen)) return -1;
    p->do_sample = f;
    d = p->temperature;
    if (srv_json_num(b, "temperature", 0, 100, 1, &d, err, errlen)) return -1;
    p->temperature = (float)d;
    v = p->top_k;
    if (srv_json_int(b, "top_k", 0, 1000000, &v, err, errlen)) return -1;
    p->top_k = (int)v;
    d = p->top_p;
    if (srv_json_num(b, "top_p", 0, 1, 1, &d, err, errlen)) return -1;
    p->top_p = (float)d;
    d = p->repetition_penalty;
    if (srv_json_num(b, "repetition_penalty", 0, 100, 1, &d, err, errlen)) return -1;
    p->repetition_penalty = (float)d;
    v = p->no_repeat_ngram_size;
    if (srv_json_int(b, "no_repeat_ngram_size", 0, 1024, &v, err, errlen)) return -1;
    p->no_repeat_ngram_size = (int)v;
    v = p->num_beams;
    int max_beams = c->max_num_beams < c->max_batch ? c->max_num_beams : c->max_batch;
    if (srv_json_int(b, "num_beams", 1, max_beams, &v, err, errlen)) return -1;
    p->num_beams = (int)v;
    v = p->num_return_sequences;
    long long max_ret = p->do_sample ? max_beams : p->num_beams;
    if (srv_json_int(b, "num_return_sequences", 1, max_ret, &v, err, errlen)) return -1;
    p->num_return_sequences = (int)v;
    d = p->length_penalty;
    if (srv_json_num(b, "length_penalty", -100, 100, 0, &d, err, errlen)) return -1;
    p->length_penalty = (float)d;
    json_t *es = json_object_get(b, "early_stopping"); /* true, false or "never", as transformers takes it */
    if (json_is_boolean(es))
        p->early_stopping = json_is_true(es);
    else if (json_is_string(es) && !strcmp(json_string_value(es), "never"))
        p->early_stopping = 2;
    else if (es && !json_is_null(es)) {
        snprintf(err, errlen, "early_stopping must be true, false or \"never\"");
        return -1;
    }
    v = (long long)p->seed;
    if (srv_json_int(b, "seed", 0, INT64_MAX, &v, err, errlen)) return -1;
    p->seed = (uint64_t)v;
    *rows = p->num_beams > p->num_return_sequences ? p->num_beams : p->num_return_sequences;
    return 0;
}

void srv_route_generate(srv_request *r) {
    srv_server *s = r->srv;
    const cfg_t *c = &s->cfg;
    char err[300];
    if (!s->model) {
        srv_reply_error(
            r, 503,
            "this server runs tokenize-only (its model folder has a tokenizer but no "
            "config.json/model weights): /generate is not available; /tokenize and /detokenize are");
        return;
    }
    if (atomic_load(&s->draining)) {
        srv_reply_error(r, 503, "the server is shutting down and takes no new generation requests");
        return;
    }
    json_t *b = srv_json_parse(r->body, r->body_len, c->max_json_depth, err, sizeof err);
    if (!b) {
        srv_reply_error(r, 400, "%s", err);
        return;
    }
    srv_gen *g = calloc(1, sizeof *g);
    const char **texts = NULL;
    size_t *lens = NULL;
    srv_job **jobs = NULL;
    int n = 0, rows = 1, njobs = 0;
    t5_gen_params p;
    long long truncate = 0, timeout_ms = c->request_timeout_ms;
    if (!g) {
        snprintf(err, sizeof err, "out of memory");
        goto bad500;
    }
    if (srv_json_fields(b, gen_fields, err, sizeof err) || parse_params(s, b, &p, &rows, err, sizeof err) ||
        parse_stops(b, &g->stops, err, sizeof err) ||
        srv_json_bool(b, "stream", &g->stream, err, sizeof err) ||
        srv_json_bool(b, "details", &g->details, err, sizeof err) ||
        srv_json_int(b, "truncate", 1, c->max_input_tokens - 1, &truncate, err, sizeof err) ||
        srv_json_int(b, "timeout_ms", 1, 86400000, &timeout_ms, err, sizeof err))
        goto bad;
    if (rows > c->max_batch) {
        snprintf(err, sizeof err, "this request needs %d batch rows, more than max_batch (%d)", rows,
                 c->max_batch);
        goto bad;
    }
    p.want_logprobs = g->details;
    g->num_return = p.num_return_sequences;
    if (timeout_ms > c->request_timeout_ms) timeout_ms = c->request_timeout_ms;
    json_t *jtext = json_object_get(b, "text"), *jids = json_object_get(b, "ids");
    if (jtext && jids) {
        snprintf(err, sizeof err, "give either text or ids, not both");
        goto bad;
    }
    if (!jtext && !jids) {
        snprintf(err, sizeof err, "text (a string or an array of strings) or ids is required");
        goto bad;
    }
    int32_t vocab = t5_model_config(s->model)->vocab_size;
    if (jids) {
        n = 1;
    } else if (srv_json_texts(b, "text", c->max_texts, &texts, &lens, &n, &g->is_array, err, sizeof err)) {
        goto bad;
    }
    if (g->stream && (n != 1 || g->is_array || p.num_beams > 1 || p.num_return_sequences > 1)) {
        snprintf(err, sizeof err, "stream needs one text, num_beams 1 and num_return_sequences 1");
        goto bad;
    }
    g->n = n;
    g->answers = calloc((size_t)n, sizeof *g->answers);
    jobs = calloc((size_t)n, sizeof *jobs);
    if (!g->answers || !jobs) {
        snprintf(err, sizeof err, "out of memory");
        goto bad500;
    }
    double deadline = r->t_start + (double)timeout_ms / 1000.0;
    for (int i = 0; i < n; i++) {
        srv_job *j = calloc(1, sizeof *j);
        if (!j) {
            snprintf(err, sizeof err, "out of memory");
            goto bad500;
        }
        jobs[njobs++] = j;
        j->req = r;
        srv_request_retain(r);
        j->index = i;
        j->params = p;
        j->rows = rows;
        j->deadline = deadline;
        j->text.stop_at = -1;
        if (jids) {
            if (srv_json_ids(jids, "ids", vocab, c->max_input_tokens, &j->ids, &j->n, err, sizeof err))
                goto bad;
            if (j->n == 0) {
                snprintf(err, sizeof err, "ids must not be empty");
                goto bad;
            }
            continue;
        }
        tok_encode_params tp;
        tok_encode_default_params(&tp);
        tp.add_eos = 1;
        tok_encoding e;
        char terr[200];
        if (tok_encode(s->tok, texts[i], lens[i], &tp, &e, terr, sizeof terr) != TOK_OK) {
            snprintf(err, sizeof err, "text %d could not be tokenized: %s", i, terr);
            goto bad;
        }
        size_t m = e.n;
        if (truncate > 0 && m > (size_t)truncate + 1) {
            e.ids[truncate] = e.ids[m - 1]; /* keep the first N tokens, then the closing </s> */
            m = (size_t)truncate + 1;
        }
        if (m > (size_t)c->max_input_tokens) {
            if (g->is_array)
                snprintf(err, sizeof err,
                         "text[%d] has %zu tokens, more than this server's max_input_tokens (%d); "
                         "shorten it or pass truncate",
                         i, m, c->max_input_tokens);
            else
                snprintf(err, sizeof err,
                         "text has %zu tokens, more than this server's max_input_tokens (%d); "
                         "shorten it or pass truncate",
                         m, c->max_input_tokens);
            tok_encoding_free(&e);
            goto bad;
        }
        j->ids = malloc((m ? m : 1) * sizeof *j->ids);
        if (!j->ids) {
            tok_encoding_free(&e);
            snprintf(err, sizeof err, "out of memory");
            goto bad500;
        }
        memcpy(j->ids, e.ids, m * sizeof *j->ids);
        j->n = (int)m;
        tok_encoding_free(&e);
        if (j->n == 0) {
            snprintf(err, sizeof err, "the text gives no tokens (this tokenizer adds no </s>)");
            goto bad;
        }
    }
    g->remaining = n;
    r->gen = g;
    double now = srv_now();
    for (int i = 0; i < n; i++)
        jobs[i]->t_submit = now;
    r->state = SRV_ST_WAIT;
    r->stream = g->stream;
    r->counted_inflight = 1;
    atomic_fetch_add(&s->inflight, 1);
    if (srv_sched_submit(s->sched, jobs, n) != 0) {
        r->state = SRV_ST_RECV;
        srv_reply_error(r, 429, "the server is overloaded (its queue is full); retry later");
        for (int i = 0; i < n; i++) {
            job_free(jobs[i]);
            srv_request_release(r); /* never the last reference: MHD holds one */
        }
    }
    free(jobs);
    free(texts);
    free(lens);
    json_decref(b);
    return;
bad500:
    srv_reply_error(r, 500, "%s", err);
    goto cleanup;
bad:
    srv_reply_error(r, 400, "%s", err);
cleanup:
    for (int i = 0; i < njobs; i++) {
        job_free(jobs[i]);
        srv_request_release(r);
    }
    free(jobs);
    free(texts);
    free(lens);
    srv_gen_free(g);
    r->gen = NULL;
    json_decref(b);
}
