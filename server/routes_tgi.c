/* routes_tgi.c - the text-generation-inference compatible routes (TGI's router types are
 * the contract): POST /generate with {"inputs", "parameters"} answers {"generated_text",
 * "details"?}, POST /generate_stream its Server-Sent Events ({"index", "token": {"id",
 * "text", "logprob", "special"}, "generated_text", "details"}), POST / with {"inputs",
 * "parameters", "stream"} [{"generated_text"}] or the stream. /generate with our own
 * body ({"text"} or {"ids"}) goes on to routes_gen.c unchanged. A request is one job of
 * the generation machinery (genreq.h); this file is the dialect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genreq.h"

typedef struct {
    int details, decoder_input_details, best_of, top_n, sampling, compat;
    uint64_t seed;
    int32_t start_id, eos_id;
} tgi_ctx;

static srv_reply tgi_error(srv_genreq *g, int status, const char *msg) {
    (void)g;
    const char *type = status == 400 ? "validation" : status == 429 ? "overloaded" : srv_error_type(status);
    return srv_reply_json(status, json_pack("{s:s,s:s}", "error", msg, "error_type", type));
}

static const char *finish_name(int finish, int stopped) {
    if (stopped || finish == T5_FINISH_STOP) return "stop_sequence";
    return finish == T5_FINISH_EOS ? "eos_token" : "length";
}

static json_t *token_json(const srv_genreq *g, int32_t id, const char *text, size_t len, double lp) {
    const tgi_ctx *cx = g->ctx;
    int type = tok_piece_type(g->srv->tok, id);
    int special = id == cx->eos_id || type == TOK_PIECE_CONTROL || type == TOK_PIECE_PADDING;
    return json_pack("{s:i,s:s%,s:f,s:b}", "id", id, "text", text, len, "logprob", lp, "special", special);
}

/* The "tokens" (and "top_tokens") of q, texts as they extend the text. */
static void tokens_json(const srv_genreq *g, const t5_sequence *q, json_t **tokens, json_t **tops) {
    const tgi_ctx *cx = g->ctx;
    const tok_model *tok = g->srv->tok;
    *tokens = json_array();
    *tops = json_array();
    gen_text ts;
    gen_text_init(&ts);
    for (int i = 0; i < q->n; i++) {
        size_t off = 0, dl = 0;
        if (gen_text_push(&ts, tok, NULL, q->ids[i], &off, &dl) < 0) break;
        json_array_append_new(*tokens, token_json(g, q->ids[i], ts.text ? ts.text + off : "",
                                                  ts.text ? dl : 0, q->logprobs ? q->logprobs[i] : 0));
        json_t *top = json_array();
        for (int k = 0; q->top_ids && k < cx->top_n && k < q->n_top; k++) {
            int32_t id = q->top_ids[(size_t)i * q->n_top + k];
            const char *piece = tok_id_to_piece(tok, id);
            json_array_append_new(top, token_json(g, id, piece ? piece : "", piece ? strlen(piece) : 0,
                                                  q->top_logprobs[(size_t)i * q->n_top + k]));
        }
        json_array_append_new(*tops, top);
    }
    gen_text_free(&ts);
}

/* One sequence's {"generated_text", "finish_reason", "generated_tokens", "seed",
 * "prefill", "tokens", "top_tokens"?}. */
static json_t *sequence_json(const srv_genreq *g, const t5_sequence *q, int input_len) {
    const tgi_ctx *cx = g->ctx;
    int stopped = 0;
    size_t len = 0;
    char *text = gen_text_final(g->srv->tok, q->ids, q->n, &g->stops, &stopped, &len);
    if (!text) return NULL;
    json_t *tokens, *tops;
    tokens_json(g, q, &tokens, &tops);
    json_t *prefill = json_array();
    if (cx->decoder_input_details) {
        const char *piece = tok_id_to_piece(g->srv->tok, cx->start_id);
        json_array_append_new(
            prefill, json_pack("{s:i,s:s,s:n}", "id", cx->start_id, "text", piece ? piece : "", "logprob"));
    }
    json_t *s = json_pack("{s:s%,s:s,s:i,s:o,s:o,s:o,s:i}", "generated_text", text, len, "finish_reason",
                          finish_name(q->finish, stopped), "generated_tokens", q->n, "seed",
                          cx->sampling ? json_integer((json_int_t)cx->seed) : json_null(), "prefill", prefill,
                          "tokens", tokens, "input_length", input_len);
    if (cx->top_n)
        json_object_set_new(s, "top_tokens", tops);
    else
        json_decref(tops);
    free(text);
    return s;
}

/* GenerateResponse: {"generated_text", "details"?}; in a stream the closing event. */
static json_t *tgi_job_answer(srv_genreq *g, srv_genjob *j) {
    const tgi_ctx *cx = g->ctx;
    t5_result *res = &j->result;
    if (res->n_seqs < 1) return NULL;
    json_t *best = sequence_json(g, &res->seqs[0], j->n);
    if (!best) return NULL;
    json_t *text = json_incref(json_object_get(best, "generated_text"));
    if (g->stream) { /* the last token, with the text and StreamDetails */
        const t5_sequence *q = &res->seqs[0];
        json_t *toks = json_object_get(best, "tokens");
        json_t *last = json_incref(json_array_get(toks, json_array_size(toks) - 1));
        size_t full = json_string_length(text), emitted = j->text.emitted;
        /* the bytes held back while they could start a stop string go with the last token */
        if (last && emitted < full)
            json_object_set_new(last, "text",
                                json_stringn(json_string_value(text) + emitted, full - emitted));
        json_t *ev = json_pack("{s:i,s:o,s:o,s:{s:O,s:i,s:O,s:i}}", "index", q->n, "token",
                               last ? last : json_null(), "generated_text", text, "details", "finish_reason",
                               json_object_get(best, "finish_reason"), "generated_tokens", q->n, "seed",
                               json_object_get(best, "seed"), "input_length", j->n);
        json_decref(best);
        return ev;
    }
    json_t *ans = json_pack("{s:o}", "generated_text", text);
    if (!cx->details) {
        json_decref(best);
        return ans;
    }
    json_object_del(best, "generated_text");
    json_object_del(best, "input_length");
    if (res->n_seqs > 1) {
        json_t *others = json_array();
        for (int k = 1; k < res->n_seqs; k++) {
            json_t *o = sequence_json(g, &res->seqs[k], j->n);
            if (o) json_object_del(o, "input_length");
            json_array_append_new(others, o ? o : json_null());
        }
        json_object_set_new(best, "best_of_sequences", others);
    }
    json_object_set_new(ans, "details", best);
    return ans;
}

/* A token's event goes out when the next one arrives (the last one closes the stream
 * with the text and the details): j->held. */
static json_t *tgi_token_event(srv_genreq *g, srv_genjob *j, int32_t id, const char *text, size_t len,
                               float logprob) {
    json_t *prev = j->held;
    j->held = json_pack("{s:i,s:o,s:n,s:n}", "index", j->text.n, "token",
                        token_json(g, id, text, len, logprob), "generated_text", "details");
    return prev;
}

static void tgi_finish(srv_genreq *g) {
    const tgi_ctx *cx = g->ctx;
    srv_request *r = g->req;
    if (g->status && !(g->stream && g->streamed)) {
        srv_http_reply(r, tgi_error(g, g->status, g->msg));
        return;
    }
    if (g->stream) {
        json_t *ev =
            g->status ? json_pack("{s:s,s:s}", "error", g->msg, "error_type", "generation") : g->answers[0];
        g->answers[0] = NULL;
        srv_http_stream_event(r, ev);
        srv_http_stream_end(r);
        return;
    }
    json_t *a = g->answers[0];
    g->answers[0] = NULL;
    srv_http_reply(r, srv_reply_json(200, cx->compat ? json_pack("[o]", a) : a));
}

static const srv_gendialect tgi_dialect = {tgi_job_answer, tgi_token_event, tgi_finish, tgi_error};

/* TGI's GenerateParameters into p and cx. 0, or -1 with err. */
static int parse_parameters(srv_server *s, json_t *pa, tgi_ctx *cx, srv_genreq *g, t5_gen_params *p,
                            long long *truncate, char *err, size_t errlen) {
    static const char *const known[] = {"best_of",
                                        "temperature",
                                        "repetition_penalty",
                                        "frequency_penalty",
                                        "top_k",
                                        "top_p",
                                        "typical_p",
                                        "do_sample",
                                        "max_new_tokens",
                                        "return_full_text",
                                        "stop",
                                        "truncate",
                                        "watermark",
                                        "details",
                                        "decoder_input_details",
                                        "seed",
                                        "top_n_tokens",
                                        "grammar",
                                        "adapter_id",
                                        NULL};
    const cfg_t *c = &s->cfg;
    srv_gen_default_params(s, p);
    p->top_k = 0; /* TGI's default: no top-k */
    if (pa && !json_is_null(pa) && !json_is_object(pa))
        return snprintf(err, errlen, "parameters must be an object"), -1;
    json_t *o = pa && json_is_object(pa) ? json_incref(pa) : json_object();
    int rows = 1, rc = -1;
    double typical = 1;
    long long best_of = 1, top_n = 0;
    int watermark = 0, full_text = 0;
    if (srv_json_fields(o, known, err, errlen) ||
        srv_json_num(o, "typical_p", 0, 1, 1, &typical, err, errlen) ||
        srv_json_bool(o, "watermark", &watermark, err, errlen) ||
        srv_json_bool(o, "return_full_text", &full_text, err, errlen) ||
        srv_json_bool(o, "details", &cx->details, err, errlen) ||
        srv_json_bool(o, "decoder_input_details", &cx->decoder_input_details, err, errlen) ||
        srv_json_int(o, "best_of", 1, c->max_batch, &best_of, err, errlen) ||
        srv_json_int(o, "top_n_tokens", 0, 5, &top_n, err, errlen) ||
        srv_json_int(o, "truncate", 1, c->max_input_tokens - 1, truncate, err, errlen) ||
        srv_gen_parse_stops(o, "stop", 16, &g->stops, err, errlen))
        goto done;
    if (typical != 1) {
        snprintf(err, errlen, "typical_p is not supported by this server (only 1.0)");
        goto done;
    }
    if (watermark || full_text) {
        snprintf(err, errlen, "%s is not supported by this server (only false)",
                 watermark ? "watermark" : "return_full_text");
        goto done;
    }
    json_t *g_ = json_object_get(o, "grammar"), *ad = json_object_get(o, "adapter_id");
    if ((g_ && !json_is_null(g_)) || (ad && !json_is_null(ad))) {
        snprintf(err, errlen, "%s is not supported by this server",
                 g_ && !json_is_null(g_) ? "grammar" : "adapter_id");
        goto done;
    }
    json_t *rest = json_deep_copy(o); /* the generation parameters' table reads the rest */
    const char *const own[] = {"best_of",      "typical_p", "return_full_text", "stop",
                               "truncate",     "watermark", "details",          "decoder_input_details",
                               "top_n_tokens", "grammar",   "adapter_id"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        json_object_del(rest, own[i]);
    int bad = srv_gen_parse_params(s, rest, p, &rows, err, errlen);
    json_decref(rest);
    if (bad) goto done;
    /* TGI samples when do_sample is set or a warper is (temperature, top_k, top_p) */
    cx->sampling = p->do_sample || p->temperature != 1.0f || p->top_k > 0 || p->top_p < 1.0f || best_of > 1;
    p->do_sample = cx->sampling;
    if (best_of > 1) p->num_return_sequences = (int)best_of;
    if (cx->sampling && !json_object_get(o, "seed"))
        p->seed = (uint64_t)(srv_now() * 1e9) * 0x9e3779b97f4a7c15ULL; /* TGI: a random seed, reported */
    cx->seed = p->seed;
    cx->best_of = (int)best_of;
    cx->top_n = (int)top_n;
    p->want_logprobs = 1;
    p->top_logprobs = (int)top_n;
    if (g->stream && best_of > 1) {
        snprintf(err, errlen, "best_of cannot be used with stream");
        goto done;
    }
    rc = 0;
done:
    json_decref(o);
    return rc;
}

/* {"inputs", "parameters"[, "stream"]}: compat is POST / (an array answer, "stream"). */
static void tgi_generate(srv_request *r, json_t *b, int stream, int compat) {
    srv_server *s = srv_http_server(r);
    char err[300];
    srv_genreq *g = srv_genreq_create(r, &tgi_dialect, sizeof(tgi_ctx));
    if (!g) {
        srv_http_reply(r, tgi_error(NULL, 500, "out of memory"));
        return;
    }
    tgi_ctx *cx = g->ctx;
    cx->compat = compat;
    g->stream = stream;
    static const char *const top[] = {"inputs", "parameters", "stream", NULL};
    t5_gen_params p;
    long long truncate = 0;
    int status = 400;
    json_t *in = json_object_get(b, "inputs");
    int want_stream = 0; /* @huggingface/inference up to 4.13.16 adds "stream": true */
    if (srv_json_fields(b, top, err, sizeof err) || srv_json_bool(b, "stream", &want_stream, err, sizeof err))
        goto fail;
    g->stream |= want_stream;
    if (!json_is_string(in)) {
        snprintf(err, sizeof err, "inputs (a string) is required");
        goto fail;
    }
    if (parse_parameters(s, json_object_get(b, "parameters"), cx, g, &p, &truncate, err, sizeof err))
        goto fail;
    cx->start_id = p.decoder_start_token_id >= 0 ? p.decoder_start_token_id
                                                 : t5_model_config(s->model)->decoder_start_token_id;
    cx->eos_id = p.eos_token_id >= 0 ? p.eos_token_id : t5_model_config(s->model)->eos_token_id;
    int32_t *ids = NULL;
    int n = 0;
    if ((status = srv_text_ids(s, "inputs", json_string_value(in), json_string_length(in), 0, 0,
                               (int)truncate, &ids, &n, err, sizeof err)))
        goto fail;
    int rows = p.num_return_sequences;
    if (rows > s->cfg.max_batch) {
        free(ids);
        status = 400;
        snprintf(err, sizeof err, "best_of needs more batch rows than max_batch (%d)", s->cfg.max_batch);
        goto fail;
    }
    if (srv_genreq_add_job(g, ids, n, &p, rows, g->t_start + s->cfg.request_timeout_ms / 1000.0)) {
        status = 500;
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    srv_genreq_run(g);
    return;
fail:
    srv_genreq_fail(g, status, err);
}

/* The body as JSON for a TGI route, or NULL with the reply sent. */
static json_t *tgi_body(srv_request *r, const char *route) {
    srv_server *s = srv_http_server(r);
    char err[300];
    int status = srv_gen_unavailable(s, route, err, sizeof err);
    size_t len;
    const char *body = srv_http_body(r, &len);
    json_t *b = status ? NULL : srv_json_parse(body, len, s->cfg.max_json_depth, err, sizeof err);
    if (!b) srv_http_reply(r, tgi_error(NULL, status ? status : 400, err));
    return b;
}

void srv_route_generate_any(srv_request *r) {
    srv_server *s = srv_http_server(r);
    size_t len;
    const char *body = srv_http_body(r, &len);
    char err[300];
    json_t *b = s->model ? srv_json_parse(body, len, s->cfg.max_json_depth, err, sizeof err) : NULL;
    if (!json_is_object(b) || !json_object_get(b, "inputs")) { /* ours: {"text"} / {"ids"} */
        json_decref(b);
        srv_route_generate(r);
        return;
    }
    int status = srv_gen_unavailable(s, "/generate", err, sizeof err);
    if (status)
        srv_http_reply(r, tgi_error(NULL, status, err));
    else
        tgi_generate(r, b, 0, 0);
    json_decref(b);
}

void srv_route_tgi_stream(srv_request *r) {
    json_t *b = tgi_body(r, "/generate_stream");
    if (!b) return;
    tgi_generate(r, b, 1, 0);
    json_decref(b);
}

void srv_route_tgi_compat(srv_request *r) {
    json_t *b = tgi_body(r, "/");
    if (!b) return;
    tgi_generate(r, b, 0, 1);
    json_decref(b);
}
