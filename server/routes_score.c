/* routes_score.c - POST /score: the model's log-likelihood of a given target given an
 * input, teacher forced (engine t5_score), as monoT5-style rerankers and reference
 * likelihoods need. Reads {"text": "..." | "ids": [...], "target": "..." | "target_ids":
 * [...], "truncate", "timeout_ms"}: the input as /generate takes it, a target text with
 * `</s>` appended (gen_target_ids, as transformers' tokenizer makes labels), target ids as
 * given. One SRV_TASK_SCORE task runs it on a worker, which answers {"logprob": sum,
 * "tokens": [{"id", "text", "logprob"}], "usage": {"input_tokens", "target_tokens"}}
 * (token texts are whole-UTF-8-character deltas that concatenate to the target's text,
 * as /generate's details). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

/* One /score request: one scheduler task; freed when it ends. */
typedef struct {
    srv_task task;
    srv_request *req; /* one reference, released when answered */
    srv_server *srv;
    int32_t *ids, *target; /* [task.n], [task.u.score.nt] */
} score_job;

static void job_free(score_job *j) {
    free(j->ids);
    free(j->target);
    free(j);
}

/* The answer for a scored target; NULL on out of memory. */
static json_t *build_answer(const score_job *j, const t5_score_result *r) {
    json_t *toks = json_array();
    gen_text ts;
    gen_text_init(&ts);
    for (int i = 0; toks && i < r->n; i++) {
        size_t off = 0, len = 0;
        gen_text_push(&ts, j->srv->tok, NULL, j->target[i], &off, &len);
        json_array_append_new(toks, json_pack("{s:i,s:s%,s:f}", "id", j->target[i], "text",
                                              ts.text ? ts.text + off : "", ts.text ? len : 0, "logprob",
                                              (double)r->logprobs[i]));
    }
    gen_text_free(&ts);
    if (!toks || json_array_size(toks) != (size_t)r->n) {
        json_decref(toks);
        return NULL;
    }
    return json_pack("{s:f,s:o,s:{s:i,s:i}}", "logprob", (double)r->total, "tokens", toks, "usage",
                     "input_tokens", j->task.n, "target_tokens", r->n);
}

/* The task's end (on the worker, or the main thread when it expired queued): the answer. */
static void job_on_done(void *user, srv_task_end *e) {
    score_job *j = user;
    srv_request *r = j->req;
    char msg[200];
    int status = srv_end_status(e, "scoring", msg, sizeof msg);
    json_t *ans = NULL;
    if (!status && !(e->score && (ans = build_answer(j, e->score))))
        status = 500, snprintf(msg, sizeof msg, "could not build the answer");
    if (!status) srv_http_count_tokens(r, j->task.n, 0);
    srv_http_reply(r, status ? srv_reply_error(status, "%s", msg) : srv_reply_json(200, ans));
    job_free(j);
    srv_http_release(r);
}

/* 0 when /score can take requests, else the reply sent. */
static int unavailable(srv_request *r, srv_server *s) {
    if (!s->model)
        srv_http_reply(r, srv_reply_error(503,
                                          "this server runs tokenize-only (its model folder has a tokenizer "
                                          "but no config.json/model weights): /score is not available; "
                                          "/tokenize and /detokenize are"));
    else if (!t5_model_has_decoder(s->model))
        srv_http_reply(r, srv_reply_error(400, "the model has no decoder (an encoder-only checkpoint): "
                                               "/score is not available; /embed is"));
    else if (atomic_load(&s->draining))
        srv_http_reply(r,
                       srv_reply_error(503, "the server is shutting down and takes no new scoring requests"));
    else
        return 0;
    return 1;
}

/* The encoder input (text or ids) into j. 0, or the HTTP status with err. */
static int parse_input(score_job *j, json_t *b, long long truncate, char *err, size_t errlen) {
    const cfg_t *c = &j->srv->cfg;
    json_t *jtext = json_object_get(b, "text"), *jids = json_object_get(b, "ids");
    if (jtext && jids) return snprintf(err, errlen, "give either text or ids, not both"), 400;
    if (jids) {
        int32_t vocab = t5_model_config(j->srv->model)->vocab_size;
        if (srv_json_ids(jids, "ids", vocab, c->max_input_tokens, &j->ids, &j->task.n, err, errlen))
            return 400;
        if (j->task.n == 0) return snprintf(err, errlen, "ids must not be empty"), 400;
        return 0;
    }
    if (!json_is_string(jtext)) return snprintf(err, errlen, "text (a string) or ids is required"), 400;
    return srv_text_ids(j->srv, "text", json_string_value(jtext), json_string_length(jtext), 0, 0,
                        (int)truncate, &j->ids, &j->task.n, err, errlen);
}

/* The target (text or ids) into j, at most max_new_tokens_limit ids. 0, or the HTTP
 * status with err. */
static int parse_target(score_job *j, json_t *b, char *err, size_t errlen) {
    const srv_server *s = j->srv;
    int max = s->cfg.max_new_tokens_limit, *nt = &j->task.u.score.nt;
    json_t *jt = json_object_get(b, "target"), *jids = json_object_get(b, "target_ids");
    if (jt && jids) return snprintf(err, errlen, "give either target or target_ids, not both"), 400;
    if (jids) {
        int32_t vocab = t5_model_config(s->model)->vocab_size;
        if (srv_json_ids(jids, "target_ids", vocab, max, &j->target, nt, err, errlen)) return 400;
        if (*nt == 0) return snprintf(err, errlen, "target_ids must not be empty"), 400;
        return 0;
    }
    if (!json_is_string(jt)) return snprintf(err, errlen, "target (a string) or target_ids is required"), 400;
    char terr[200];
    switch (gen_target_ids(s->tok, json_string_value(jt), json_string_length(jt), max, &j->target, nt, terr,
                           sizeof terr)) {
    case GEN_OK:
        return 0;
    case GEN_ERR_TOKENIZE:
        return snprintf(err, errlen, "target could not be tokenized: %s", terr), 400;
    case GEN_ERR_TOO_LONG:
        return snprintf(err, errlen,
                        "target has %d tokens, more than this server's max_new_tokens_limit (%d)", *nt, max),
               400;
    case GEN_ERR_EMPTY:
        return snprintf(err, errlen, "the target gives no tokens (this tokenizer adds no </s>)"), 400;
    case GEN_ERR_NOMEM:
        break;
    }
    return snprintf(err, errlen, "out of memory"), 500;
}

void srv_route_score(srv_request *r) {
    srv_server *s = srv_http_server(r);
    const cfg_t *c = &s->cfg;
    static const char *const known[] = {"text",     "ids",        "target", "target_ids",
                                        "truncate", "timeout_ms", NULL};
    char err[300];
    if (unavailable(r, s)) return;
    size_t body_len;
    const char *body = srv_http_body(r, &body_len);
    json_t *b = srv_json_parse(body, body_len, c->max_json_depth, err, sizeof err);
    score_job *j = b ? calloc(1, sizeof *j) : NULL;
    long long truncate = 0, timeout_ms = c->request_timeout_ms;
    int status = b && !j ? (snprintf(err, sizeof err, "out of memory"), 500) : 400;
    if (!j || srv_json_fields(b, known, err, sizeof err) ||
        srv_json_int(b, "truncate", 1, c->max_input_tokens - 1, &truncate, err, sizeof err) ||
        srv_json_int(b, "timeout_ms", 1, 86400000, &timeout_ms, err, sizeof err))
        goto fail;
    j->req = r, j->srv = s;
    if ((status = parse_input(j, b, truncate, err, sizeof err)) ||
        (status = parse_target(j, b, err, sizeof err)))
        goto fail;
    t5_gen_params p; /* the decoder start generation would use (T5 PEGASUS: [CLS]) */
    t5_gen_default_params(&p);
    gen_params_for_tokenizer(&p, s->tok);
    if (timeout_ms > c->request_timeout_ms) timeout_ms = c->request_timeout_ms;
    srv_task *t = &j->task;
    t->kind = SRV_TASK_SCORE;
    t->ids = j->ids;
    t->rows = 0;
    t->deadline = srv_http_t_start(r) + (double)timeout_ms / 1000.0;
    t->cancel = srv_http_cancel_flag(r);
    t->u.score.target = j->target;
    t->u.score.start = p.decoder_start_token_id;
    t->on_done = job_on_done;
    t->user = j;
    json_decref(b);
    srv_http_retain(r);
    srv_http_defer(r);
    if (srv_sched_submit(s->sched, &t, 1) != 0) {
        srv_http_reply(r, srv_reply_error(429, "the server is overloaded (its queue is full); retry later"));
        job_free(j);
        srv_http_release(r); /* never the last reference: MHD holds one */
    }
    return;
fail:
    srv_http_reply(r, srv_reply_error(status, "%s", err));
    if (j) job_free(j);
    json_decref(b);
}
