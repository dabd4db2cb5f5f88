/* routes_v1.c - the OpenAI-compatible routes: GET /v1/models, GET /v1/models/{id},
 * POST /v1/completions and POST /v1/chat/completions (the OpenAI API reference is the
 * contract: field names, defaults, answer and error shapes). A request becomes jobs of
 * the generation machinery (genreq.h): one per prompt and choice (`n`), or one per
 * prompt taking best_of rows (beams at temperature 0, else best_of samples, the n most
 * likely kept); this file is the dialect: the choices, the chunks of a stream, usage
 * and errors in {"error": {"message", "type", "param", "code"}}. Not the scheduling,
 * not the parameters' engine meaning (gen/params.c, the engine). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "genreq.h"

/* ---- errors ---- */

static json_t *v1_error_json(int status, const char *msg, const char *param, const char *code) {
    /* OpenAI's type for an unknown model is invalid_request_error (its status 404) */
    const char *type =
        code && !strcmp(code, "model_not_found") ? "invalid_request_error" : srv_error_type(status);
    return json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", msg, "type", type, "param", param, "code",
                     code);
}

static srv_reply v1_error(int status, const char *msg, const char *param, const char *code) {
    return srv_reply_json(status, v1_error_json(status, msg, param, code));
}

srv_reply srv_v1_reshape_error(srv_reply p) {
    json_t *b = json_loadb(p.body, p.len, 0, NULL);
    json_t *e = json_object_get(b, "error");
    json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
    if (!json_is_integer(code) || !json_is_string(msg)) { /* already ours (or not JSON) */
        json_decref(b);
        return p;
    }
    srv_reply q =
        v1_error(p.status, json_string_value(msg), NULL, p.status == 401 ? "invalid_api_key" : NULL);
    json_decref(b);
    free(p.body);
    return q;
}

/* ---- models ---- */

static json_t *model_json(const srv_server *s) {
    return json_pack("{s:s,s:s,s:i,s:s}", "id", s->model_name, "object", "model", "created",
                     (json_int_t)s->t_started_wall, "owned_by", "t5serve");
}

void srv_route_v1_models(srv_request *r) {
    srv_server *s = srv_http_server(r);
    srv_http_reply(r, srv_reply_json(200, json_pack("{s:s,s:[o]}", "object", "list", "data", model_json(s))));
}

static srv_reply model_not_found(const char *name) {
    char msg[300];
    snprintf(msg, sizeof msg,
             "The model '%.200s' does not exist (this server serves one model: see /v1/models)", name);
    return v1_error(404, msg, "model", "model_not_found");
}

void srv_route_v1_model(srv_request *r) {
    srv_server *s = srv_http_server(r);
    const char *id = srv_http_path(r) + strlen("/v1/models/");
    if (strcmp(id, s->model_name) == 0)
        srv_http_reply(r, srv_reply_json(200, model_json(s)));
    else
        srv_http_reply(r, model_not_found(id));
}

/* ---- completions ---- */

typedef struct {
    int chat;
    int n;        /* choices per prompt */
    int per_job;  /* choices per job: n (best_of) or 1 */
    int jobs_per; /* jobs per prompt: 1 (best_of) or n */
    int logprobs; /* -1 none; else the alternatives per token */
    int include_usage;
    long created;
    char id[48];
} v1_ctx;

/* Text of token alt after ids[0..i) (the decode of the prefix plus alt, less the
 * decode of the prefix); malloc'd, or NULL. */
static char *token_after(const tok_model *tok, const int32_t *ids, int i, int32_t alt, const char *prefix,
                         size_t plen, size_t *len) {
    int32_t *tmp = malloc((size_t)(i + 1) * sizeof *tmp);
    if (!tmp) return NULL;
    memcpy(tmp, ids, (size_t)i * sizeof *tmp);
    tmp[i] = alt;
    int stopped;
    size_t l = 0;
    char *t = gen_text_final(tok, tmp, i + 1, NULL, &stopped, &l);
    free(tmp);
    if (t && l >= plen && memcmp(t, prefix, plen) == 0) {
        memmove(t, t + plen, l - plen + 1);
        *len = l - plen;
    } else if (t) {
        *len = l;
    }
    return t;
}

/* characters (UTF-8 sequences) in s[0..n): OpenAI's text_offset counts characters */
static size_t chars(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; s && i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static json_t *bytes_json(const char *s, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* The logprobs of a choice, tokens up to text_len bytes: completions' {tokens,
 * token_logprobs, top_logprobs, text_offset} or chat's {content: [...]}. */
static json_t *logprobs_json(const v1_ctx *cx, const tok_model *tok, const t5_sequence *q, size_t text_len,
                             int stopped) {
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    json_t *content = json_array();
    gen_text ts;
    gen_text_init(&ts);
    for (int i = 0; i < q->n; i++) {
        size_t off = 0, dl = 0;
        if (gen_text_push(&ts, tok, NULL, q->ids[i], &off, &dl) < 0) break;
        if (stopped ? off >= text_len : off > text_len) break; /* past a stop string's cut */
        if (off + dl > text_len) dl = text_len - off;
        const char *t = ts.text ? ts.text + off : "";
        double lp = q->logprobs ? q->logprobs[i] : 0;
        json_t *top = cx->chat ? json_array() : json_object();
        for (int k = 0; q->top_ids && k < cx->logprobs && k < q->n_top; k++) {
            size_t al = 0;
            char *a = token_after(tok, q->ids, i, q->top_ids[(size_t)i * q->n_top + k],
                                  ts.text ? ts.text : "", off, &al);
            if (!a) continue;
            double alp = q->top_logprobs[(size_t)i * q->n_top + k];
            if (cx->chat)
                json_array_append_new(top, json_pack("{s:s%,s:f,s:o}", "token", a, al, "logprob", alp,
                                                     "bytes", bytes_json(a, al)));
            else if (!json_object_getn(top, a, al))
                json_object_setn_new(top, a, al, json_real(alp));
            free(a);
        }
        if (cx->chat) {
            json_array_append_new(content, json_pack("{s:s%,s:f,s:o,s:o}", "token", t, dl, "logprob", lp,
                                                     "bytes", bytes_json(t, dl), "top_logprobs", top));
        } else {
            json_object_setn_new(top, t, dl, json_real(lp)); /* the chosen token is always there */
            json_array_append_new(tokens, json_stringn(t, dl));
            json_array_append_new(lps, json_real(lp));
            json_array_append_new(tops, top);
            json_array_append_new(offs, json_integer((json_int_t)chars(ts.text, off)));
        }
    }
    gen_text_free(&ts);
    if (cx->chat) {
        json_decref(tokens), json_decref(lps), json_decref(tops), json_decref(offs);
        return json_pack("{s:o,s:n}", "content", content, "refusal");
    }
    json_decref(content);
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

static json_t *choice_json(const v1_ctx *cx, int index, const char *text, size_t len, json_t *logprobs,
                           const char *finish, int delta) {
    json_t *c = json_pack("{s:i}", "index", index);
    if (!cx->chat)
        json_object_set_new(c, "text", json_stringn(text, len));
    else if (delta)
        json_object_set_new(c, "delta", len ? json_pack("{s:s%}", "content", text, len) : json_object());
    else
        json_object_set_new(
            c, "message", json_pack("{s:s,s:s%,s:n}", "role", "assistant", "content", text, len, "refusal"));
    json_object_set_new(c, "logprobs", logprobs ? logprobs : json_null());
    json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null());
    return c;
}

/* {"choices": [...], "prompt_tokens", "completion_tokens"} of a job; in a stream the
 * choices are the closing chunks' (the text not streamed yet and the finish reason). */
static json_t *v1_job_answer(srv_genreq *g, srv_genjob *j) {
    const v1_ctx *cx = g->ctx;
    const tok_model *tok = g->srv->tok;
    json_t *choices = json_array();
    long out = 0;
    for (int k = 0; k < j->result.n_seqs && k < cx->per_job; k++) {
        t5_sequence *q = &j->result.seqs[k];
        int stopped = 0;
        size_t len = 0;
        char *text = gen_text_final(tok, q->ids, q->n, &g->stops, &stopped, &len);
        if (!text) {
            json_decref(choices);
            return NULL;
        }
        const char *fin =
            stopped || q->finish == T5_FINISH_EOS || q->finish == T5_FINISH_STOP ? "stop" : "length";
        int index = (j->index / cx->jobs_per) * cx->n + (j->index % cx->jobs_per) + k;
        size_t from = g->stream ? (j->text.emitted < len ? j->text.emitted : len) : 0;
        json_t *lp = cx->logprobs >= 0 && !g->stream ? logprobs_json(cx, tok, q, len, stopped) : NULL;
        json_array_append_new(choices, choice_json(cx, index, text + from, len - from, lp, fin, g->stream));
        out += q->n;
        free(text);
    }
    return json_pack("{s:o,s:i,s:i}", "choices", choices, "prompt_tokens",
                     (json_int_t)(j->index % cx->jobs_per == 0 ? j->n : 0), "completion_tokens",
                     (json_int_t)out);
}

static json_t *v1_object(const srv_genreq *g, json_t *choices) {
    const v1_ctx *cx = g->ctx;
    const char *obj =
        cx->chat ? (g->stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    return json_pack("{s:s,s:s,s:i,s:s,s:o}", "id", cx->id, "object", obj, "created", (json_int_t)cx->created,
                     "model", g->srv->model_name, "choices", choices);
}

static json_t *v1_token_event(srv_genreq *g, srv_genjob *j, int32_t id, const char *text, size_t len,
                              float logprob) {
    (void)id, (void)logprob;
    const v1_ctx *cx = g->ctx;
    int first = j->text.n == 1, index = (j->index / cx->jobs_per) * cx->n + j->index % cx->jobs_per;
    if (!len && !(first && cx->chat)) return NULL;
    json_t *c = choice_json(cx, index, text, len, NULL, NULL, 1);
    if (first && cx->chat) {
        json_t *d = json_object_get(c, "delta");
        json_object_set_new(d, "role", json_string("assistant"));
        if (!len) json_object_set_new(d, "content", json_string(""));
    }
    return v1_object(g, json_pack("[o]", c));
}

static srv_reply v1_genreq_error(srv_genreq *g, int status, const char *msg) {
    (void)g;
    return v1_error(status, msg, NULL, NULL);
}

static void v1_finish(srv_genreq *g) {
    const v1_ctx *cx = g->ctx;
    srv_request *r = g->req;
    if (g->status && !(g->stream && g->streamed)) {
        srv_http_reply(r, v1_error(g->status, g->msg, NULL, NULL));
        return;
    }
    if (g->status) { /* a stream already started */
        srv_http_stream_event(r, v1_error_json(g->status, g->msg, NULL, NULL));
        srv_http_stream_end(r);
        return;
    }
    json_t *choices = json_array();
    long in = 0, out = 0;
    for (int i = 0; i < g->n; i++) {
        json_t *a = g->answers[i];
        json_array_extend(choices, json_object_get(a, "choices"));
        in += (long)json_integer_value(json_object_get(a, "prompt_tokens"));
        out += (long)json_integer_value(json_object_get(a, "completion_tokens"));
    }
    json_t *usage = json_pack("{s:i,s:i,s:i}", "prompt_tokens", (json_int_t)in, "completion_tokens",
                              (json_int_t)out, "total_tokens", (json_int_t)(in + out));
    if (!g->stream) {
        json_t *ans = v1_object(g, choices);
        json_object_set_new(ans, "usage", usage);
        srv_http_reply(r, srv_reply_json(200, ans));
        return;
    }
    for (size_t i = 0; i < json_array_size(choices); i++)
        srv_http_stream_event(r, v1_object(g, json_pack("[O]", json_array_get(choices, i))));
    json_decref(choices);
    if (cx->include_usage) {
        json_t *ev = v1_object(g, json_array());
        json_object_set_new(ev, "usage", usage);
        srv_http_stream_event(r, ev);
    } else {
        json_decref(usage);
    }
    srv_http_stream_write(r, "data: [DONE]\n\n", 14);
    srv_http_stream_end(r);
}

static const srv_gendialect v1_dialect = {v1_job_answer, v1_token_event, v1_finish, v1_genreq_error};

/* ---- request parsing ---- */

typedef struct {
    int status;
    char param[48]; /* the field at fault, or "" */
    char msg[300];
} v1_err;

__attribute__((format(printf, 4, 5))) static int v1_fail(v1_err *e, int status, const char *param,
                                                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = status;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    return -1;
}

/* The fields of the routes: both's, then each one's own; the generation parameters' table
 * names (top_k, repetition_penalty, do_sample, ...) are accepted too, as extensions. */
/* clang-format off */
static const char *const shared_fields[] = {
    "model", "max_tokens", "temperature", "top_p", "n", "stop", "stream", "stream_options", "logprobs",
    "seed", "presence_penalty", "frequency_penalty", "user", "logit_bias", NULL};
static const char *const completion_fields[] = {"prompt", "best_of", "echo", "suffix", NULL};
static const char *const chat_fields[] = {
    "messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice", "response_format",
    "parallel_tool_calls", NULL};
/* clang-format on */

static int in_list(const char *const *l, const char *k) {
    for (; *l; l++)
        if (!strcmp(*l, k)) return 1;
    return 0;
}

static int is_gen_param(const char *k) {
    for (int i = 0; i < gen_n_params; i++)
        if (!strcmp(gen_params[i].name, k)) return 1;
    return 0;
}

/* "model": absent, this server's name, or an http(s) URL (what @huggingface/inference
 * sends: the endpoint's URL); else 404 model_not_found. */
int srv_v1_check_model(const srv_server *s, json_t *b, srv_reply *reply) {
    json_t *m = json_object_get(b, "model");
    if (!m || json_is_null(m)) return 0;
    if (!json_is_string(m)) {
        *reply = v1_error(400, "model must be a string", "model", NULL);
        return -1;
    }
    const char *name = json_string_value(m);
    if (!strcmp(name, s->model_name) || !strncmp(name, "http://", 7) || !strncmp(name, "https://", 8))
        return 0;
    *reply = model_not_found(name);
    return -1;
}

/* An int field in [lo, hi] (null or absent: unchanged). */
static int get_int(json_t *b, const char *k, long long lo, long long hi, long long *v, v1_err *e) {
    char m[300];
    if (srv_json_int(b, k, lo, hi, v, m, sizeof m)) return v1_fail(e, 400, k, "%s", m);
    return 0;
}

static int get_num(json_t *b, const char *k, double lo, double hi, double *v, v1_err *e) {
    char m[300];
    if (srv_json_num(b, k, lo, hi, 0, v, m, sizeof m)) return v1_fail(e, 400, k, "%s", m);
    return 0;
}

/* The sampling fields shared by both routes into p, and n / best_of into cx. */
static int parse_sampling(srv_server *s, json_t *b, v1_ctx *cx, t5_gen_params *p, int *best_of, v1_err *e) {
    const cfg_t *c = &s->cfg;
    const char *key;
    json_t *v;
    json_t *extra = json_object();
    json_object_foreach(b, key, v) {
        int own = in_list(shared_fields, key) || in_list(cx->chat ? chat_fields : completion_fields, key);
        if (!own && is_gen_param(key))
            json_object_set(extra, key, v);
        else if (!own) {
            json_decref(extra);
            return v1_fail(e, 400, key, "unknown field '%.40s' (unknown fields are rejected)", key);
        }
    }
    int rows = 1;
    char m[300];
    int bad = srv_gen_parse_params(s, extra, p, &rows, m, sizeof m);
    int explicit_sample = json_object_get(extra, "do_sample") != NULL;
    int explicit_top_k = json_object_get(extra, "top_k") != NULL;
    int explicit_mnt = json_object_get(extra, "max_new_tokens") != NULL;
    json_decref(extra);
    if (bad) return v1_fail(e, 400, NULL, "%s", m);
    long long mt = cx->chat ? c->default_max_new_tokens : 16;
    const char *mt_key =
        cx->chat && json_object_get(b, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    json_t *jmt = json_object_get(b, mt_key);
    if (jmt && json_is_integer(jmt) && json_integer_value(jmt) > c->max_new_tokens_limit)
        return v1_fail(e, 400, mt_key,
                       "%s %lld is more than this server's limit of %d (max_new_tokens_limit)", mt_key,
                       (long long)json_integer_value(jmt), c->max_new_tokens_limit);
    if (!explicit_mnt || jmt) {
        if (get_int(b, mt_key, 1, c->max_new_tokens_limit, &mt, e)) return -1;
        p->max_new_tokens = (int)mt;
    }
    double t = 1, top_p = 1, pp = 0, fp = 0;
    json_t *jt = json_object_get(b, "temperature");
    if (get_num(b, "temperature", 0, 2, &t, e) || get_num(b, "top_p", 0, 1, &top_p, e) ||
        get_num(b, "presence_penalty", -2, 2, &pp, e) || get_num(b, "frequency_penalty", -2, 2, &fp, e))
        return -1;
    if ((jt && !json_is_null(jt)) || !explicit_sample) {
        p->do_sample = t > 0;
        if (t > 0) p->temperature = (float)t;
        if (!explicit_top_k) p->top_k = 0; /* OpenAI samples from the whole distribution */
    }
    if (json_object_get(b, "top_p")) {
        if (!(top_p > 0)) return v1_fail(e, 400, "top_p", "top_p must be in (0, 1]");
        p->top_p = (float)top_p;
    }
    if (json_object_get(b, "presence_penalty")) p->presence_penalty = (float)pp;
    if (json_object_get(b, "frequency_penalty")) p->frequency_penalty = (float)fp;
    long long n = 1, bo = 0, seed = -1;
    if (get_int(b, "n", 1, c->max_batch, &n, e) || get_int(b, "best_of", 1, c->max_batch, &bo, e) ||
        get_int(b, "seed", INT64_MIN, INT64_MAX, &seed, e))
        return -1;
    if (bo && bo < n) return v1_fail(e, 400, "best_of", "best_of must be at least n");
    if (json_object_get(b, "seed") && !json_is_null(json_object_get(b, "seed")))
        p->seed = (uint64_t)seed;
    else if (p->do_sample) /* OpenAI's: random without a seed */
        p->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(srv_now() * 1e9);
    cx->n = (int)n;
    *best_of = bo > n ? (int)bo : 0;
    return 0;
}

/* The "messages" of a chat request as the encoder input, by chat_template. malloc'd. */
static char *chat_input(const srv_server *s, json_t *msgs, v1_err *e) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return v1_fail(e, 400, "messages", "messages must be a non-empty array of {role, content}"), NULL;
    const char *roles[] = {"system", "user", "assistant"};
    const char *last[3] = {NULL, NULL, NULL};
    size_t last_len[3] = {0, 0, 0};
    char *all = NULL;
    size_t all_len = 0;
    FILE *f = open_memstream(&all, &all_len);
    if (!f) return v1_fail(e, 500, NULL, "out of memory"), NULL;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role)) {
            fclose(f), free(all);
            return v1_fail(e, 400, "messages", "messages[%zu].role must be a string", i), NULL;
        }
        const char *text = "";
        size_t tl = 0;
        if (json_is_string(content)) {
            text = json_string_value(content), tl = json_string_length(content);
        } else if (json_is_array(content) && json_array_size(content) == 1 &&
                   json_is_string(json_object_get(json_array_get(content, 0), "text"))) {
            json_t *t = json_object_get(json_array_get(content, 0), "text");
            text = json_string_value(t), tl = json_string_length(t);
        } else if (!json_is_null(content) || strcmp(json_string_value(role), "assistant")) {
            fclose(f), free(all);
            return v1_fail(
                       e, 400, "messages",
                       "messages[%zu].content must be a string (or one {\"type\": \"text\", \"text\"} part)",
                       i),
                   NULL;
        }
        for (int k = 0; k < 3; k++)
            if (!strcmp(json_string_value(role), roles[k])) last[k] = text, last_len[k] = tl;
        fprintf(f, "%s%s: %.*s", i ? "\n" : "", json_string_value(role), (int)tl, text);
    }
    fclose(f);
    const char *tpl = s->cfg.chat_template;
    char *out = NULL;
    size_t out_len = 0;
    if (!tpl[0]) {
        if (!last[1]) {
            free(all);
            return v1_fail(e, 400, "messages", "messages has no user message"), NULL;
        }
        out = strndup(last[1], last_len[1]);
    } else if ((f = open_memstream(&out, &out_len))) {
        for (const char *c = tpl; *c;) {
            int done = 0;
            for (int k = 0; k < 3 && !done; k++) {
                size_t rl = strlen(roles[k]);
                if (c[0] == '{' && !strncmp(c + 1, roles[k], rl) && c[rl + 1] == '}') {
                    fwrite(last[k] ? last[k] : "", 1, last_len[k], f);
                    c += rl + 2, done = 1;
                }
            }
            if (!done && !strncmp(c, "{messages}", 10)) {
                fwrite(all, 1, all_len, f);
                c += 10, done = 1;
            }
            if (!done) fputc(*c++, f);
        }
        fclose(f);
    }
    free(all);
    if (!out) v1_fail(e, 500, NULL, "out of memory");
    return out;
}

/* The inputs of a completions request ("prompt"): strings, or token-id arrays. Adds the
 * jobs of each. 0, or -1 with e. */
static int add_prompt_jobs(srv_genreq *g, v1_ctx *cx, json_t *prompt, const char *chat_text,
                           const t5_gen_params *p, int best_of, double deadline, v1_err *e) {
    srv_server *s = g->srv;
    const cfg_t *c = &s->cfg;
    int32_t vocab = t5_model_config(s->model)->vocab_size;
    size_t n = 1;
    int ids_one = 0, is_array = 0;
    if (chat_text) {
    } else if (json_is_string(prompt)) {
    } else if (json_is_array(prompt) && json_array_size(prompt) > 0) {
        ids_one = json_is_integer(json_array_get(prompt, 0));
        is_array = !ids_one;
        n = ids_one ? 1 : json_array_size(prompt);
    } else {
        return v1_fail(
            e, 400, "prompt",
            "prompt (a string, an array of strings, an array of token ids or an array of such arrays) is "
            "required");
    }
    if (n > (size_t)c->max_texts)
        return v1_fail(e, 400, "prompt", "prompt has more than %d entries (max_texts)", c->max_texts);
    t5_gen_params q = *p;
    int rows = 1;
    if (best_of) {
        q.num_beams = q.do_sample ? 1 : best_of;
        q.num_return_sequences = q.do_sample ? best_of : cx->n;
        rows = best_of;
        if (!q.do_sample && best_of > c->max_num_beams)
            return v1_fail(e, 400, "best_of",
                           "best_of at temperature 0 is a beam search: at most %d beams (max_num_beams)",
                           c->max_num_beams);
    }
    if (rows > c->max_batch)
        return v1_fail(e, 400, "best_of", "best_of needs more batch rows than max_batch (%d)", c->max_batch);
    cx->per_job = best_of ? cx->n : 1;
    cx->jobs_per = best_of ? 1 : cx->n;
    if (n * (size_t)cx->jobs_per > (size_t)c->queue_size)
        return v1_fail(e, 400, "n", "prompts x n is more than this server's queue_size (%d)", c->queue_size);
    for (size_t i = 0; i < n; i++) {
        json_t *pi = ids_one ? prompt : is_array ? json_array_get(prompt, i) : prompt;
        int32_t *ids = NULL;
        int m = 0;
        char err[300];
        if (chat_text) {
            int st =
                srv_text_ids(s, "messages", chat_text, strlen(chat_text), 0, 0, 0, &ids, &m, err, sizeof err);
            if (st) return v1_fail(e, st, "messages", "%s", err);
        } else if (json_is_string(pi)) {
            int st = srv_text_ids(s, "prompt", json_string_value(pi), json_string_length(pi), (int)i,
                                  is_array, 0, &ids, &m, err, sizeof err);
            if (st) return v1_fail(e, st, "prompt", "%s", err);
        } else if (json_is_array(pi)) {
            if (srv_json_ids(pi, "prompt", vocab, c->max_input_tokens, &ids, &m, err, sizeof err))
                return v1_fail(e, 400, "prompt", "%s", err);
            if (m == 0) {
                free(ids);
                return v1_fail(e, 400, "prompt", "prompt token ids must not be empty");
            }
        } else {
            return v1_fail(e, 400, "prompt", "prompt[%zu] must be a string or an array of token ids", i);
        }
        for (int k = 0; k < cx->jobs_per; k++) {
            int32_t *own = ids;
            if (k + 1 < cx->jobs_per && !(own = malloc((size_t)m * sizeof *own))) {
                free(ids);
                return v1_fail(e, 500, NULL, "out of memory");
            }
            if (own != ids) memcpy(own, ids, (size_t)m * sizeof *own);
            t5_gen_params qk = q;
            qk.seed = q.seed + 0x9e3779b97f4a7c15ULL * (uint64_t)k; /* each choice its own draw */
            if (srv_genreq_add_job(g, own, m, &qk, rows, deadline)) {
                if (own != ids) free(ids);
                return v1_fail(e, 500, NULL, "out of memory");
            }
        }
    }
    return 0;
}

static int parse_request(srv_genreq *g, json_t *b, v1_ctx *cx, v1_err *e) {
    srv_server *s = g->srv;
    t5_gen_params p;
    srv_gen_default_params(s, &p);
    int best_of = 0;
    if (parse_sampling(s, b, cx, &p, &best_of, e)) return -1;
    char m[300];
    if (srv_gen_parse_stops(b, "stop", 4, &g->stops, m, sizeof m)) return v1_fail(e, 400, "stop", "%s", m);
    if (srv_json_bool(b, "stream", &g->stream, m, sizeof m)) return v1_fail(e, 400, "stream", "%s", m);
    json_t *so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!g->stream) return v1_fail(e, 400, "stream_options", "stream_options needs stream: true");
        if (!json_is_object(so) || srv_json_bool(so, "include_usage", &cx->include_usage, m, sizeof m))
            return v1_fail(e, 400, "stream_options",
                           "stream_options must be {\"include_usage\": true|false}");
    }
    cx->logprobs = -1;
    if (cx->chat) {
        int want = 0;
        long long top = 0;
        if (srv_json_bool(b, "logprobs", &want, m, sizeof m)) return v1_fail(e, 400, "logprobs", "%s", m);
        if (get_int(b, "top_logprobs", 0, 20, &top, e)) return -1;
        if (top && !want) return v1_fail(e, 400, "top_logprobs", "top_logprobs needs logprobs: true");
        if (want) cx->logprobs = (int)top;
        json_t *tools = json_object_get(b, "tools");
        if (tools && !json_is_null(tools) && !(json_is_array(tools) && json_array_size(tools) == 0))
            return v1_fail(e, 400, "tools",
                           "tools are not supported by this server (a T5 model calls no tools)");
        json_t *tc = json_object_get(b, "tool_choice");
        if (tc && !json_is_null(tc) && !(json_is_string(tc) && !strcmp(json_string_value(tc), "none")))
            return v1_fail(e, 400, "tool_choice",
                           "tool_choice other than \"none\" is not supported by this server");
        json_t *rf = json_object_get(b, "response_format");
        if (rf && !json_is_null(rf) &&
            !(json_is_object(rf) && json_is_string(json_object_get(rf, "type")) &&
              !strcmp(json_string_value(json_object_get(rf, "type")), "text")))
            return v1_fail(e, 400, "response_format",
                           "response_format other than {\"type\": \"text\"} is not supported by this server");
    } else {
        long long lp = -1;
        if (get_int(b, "logprobs", 0, 5, &lp, e)) return -1;
        cx->logprobs = (int)lp;
        json_t *echo = json_object_get(b, "echo"), *suffix = json_object_get(b, "suffix");
        if (json_is_true(echo))
            return v1_fail(e, 400, "echo",
                           "echo is not supported: an encoder-decoder model does not continue its prompt");
        if (echo && !json_is_boolean(echo) && !json_is_null(echo))
            return v1_fail(e, 400, "echo", "echo must be a boolean");
        if (suffix && !json_is_null(suffix))
            return v1_fail(e, 400, "suffix", "suffix is not supported by this server");
    }
    json_t *lb = json_object_get(b, "logit_bias");
    if (lb && !json_is_null(lb) && !(json_is_object(lb) && json_object_size(lb) == 0))
        return v1_fail(e, 400, "logit_bias", "logit_bias is not supported by this server");
    if (g->stream && best_of) return v1_fail(e, 400, "best_of", "best_of cannot be used with stream");
    if (g->stream && cx->logprobs >= 0)
        return v1_fail(e, 400, "logprobs",
                       "logprobs with stream is not supported by this server; ask without stream");
    if (cx->logprobs >= 0) {
        p.want_logprobs = 1;
        p.top_logprobs = cx->logprobs;
    }
    if (best_of && !p.do_sample && cx->logprobs > 0)
        return v1_fail(e, 400, "logprobs",
                       "logprobs alternatives are not recorded for best_of at temperature 0 (a beam search)");
    double deadline = g->t_start + s->cfg.request_timeout_ms / 1000.0;
    char *chat_text = NULL;
    if (cx->chat && !(chat_text = chat_input(s, json_object_get(b, "messages"), e))) return -1;
    int rc = add_prompt_jobs(g, cx, json_object_get(b, "prompt"), chat_text, &p, best_of, deadline, e);
    free(chat_text);
    return rc;
}

static void v1_generate(srv_request *r, int chat) {
    srv_server *s = srv_http_server(r);
    char err[300];
    int status = srv_gen_unavailable(s, chat ? "/v1/chat/completions" : "/v1/completions", err, sizeof err);
    if (status) {
        srv_http_reply(r, v1_error(status, err, NULL, NULL));
        return;
    }
    size_t len;
    const char *body = srv_http_body(r, &len);
    json_t *b = srv_json_parse(body, len, s->cfg.max_json_depth, err, sizeof err);
    if (!b || !json_is_object(b)) {
        srv_http_reply(r, v1_error(400, b ? "the body must be a JSON object" : err, NULL, NULL));
        json_decref(b);
        return;
    }
    srv_reply rep;
    if (srv_v1_check_model(s, b, &rep)) {
        srv_http_reply(r, rep);
        json_decref(b);
        return;
    }
    srv_genreq *g = srv_genreq_create(r, &v1_dialect, sizeof(v1_ctx));
    if (!g) {
        srv_http_reply(r, v1_error(500, "out of memory", NULL, NULL));
        json_decref(b);
        return;
    }
    v1_ctx *cx = g->ctx;
    cx->chat = chat;
    cx->created = (long)time(NULL);
    uint64_t x = (uint64_t)(srv_now() * 1e9) ^ (uint64_t)(uintptr_t)g;
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ULL;
    snprintf(cx->id, sizeof cx->id, "%s-%016llx%08x", chat ? "chatcmpl" : "cmpl", (unsigned long long)x,
             (unsigned)(x >> 17));
    v1_err e = {0};
    int bad = parse_request(g, b, cx, &e);
    json_decref(b);
    if (bad) {
        srv_genreq_abandon(g, v1_error(e.status, e.msg, e.param[0] ? e.param : NULL, NULL));
        return;
    }
    srv_genreq_run(g);
}

void srv_route_v1_completions(srv_request *r) {
    v1_generate(r, 0);
}

void srv_route_v1_chat(srv_request *r) {
    v1_generate(r, 1);
}

/* ---- embeddings (the embedding core of embed.c, as POST /embed runs it) ---- */

typedef struct {
    int base64;
    char model[128];
} v1_embed;

static char *put_base64(char *p, const unsigned char *b, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v =
            (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        *p++ = tab[v >> 18 & 63];
        *p++ = tab[v >> 12 & 63];
        *p++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? tab[v & 63] : '=';
    }
    return p;
}

/* The core's callback (a worker): {"object": "list", "data": [...], "model", "usage"}. */
static void on_embeddings(void *user, srv_request *r, const srv_embed_result *res) {
    v1_embed *a = user;
    if (res->status) {
        srv_http_reply(r, v1_error(res->status, res->message, NULL, NULL));
        free(a);
        return;
    }
    size_t room = 256 + strlen(a->model);
    for (int i = 0; i < res->n; i++)
        room += GEN_FLOATS_CHARS(res->vec[i].dim) + 96; /* more than base64 takes too */
    char *body = malloc(room), *p = body;
    if (!body) {
        srv_http_reply(r, v1_error(500, "out of memory", NULL, NULL));
        free(a);
        return;
    }
    p += sprintf(p, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < res->n; i++) {
        const srv_embed_vector *v = &res->vec[i];
        p += sprintf(p, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
        if (a->base64) { /* the float32 values' bytes, little-endian, as OpenAI sends them */
            *p++ = '"';
            p = put_base64(p, (const unsigned char *)v->v, (size_t)v->dim * sizeof *v->v);
            *p++ = '"';
        } else {
            p = gen_put_floats(p, v->v, v->dim);
        }
        *p++ = '}';
    }
    json_t *model = json_string(a->model);
    char *m = json_dumps(model, JSON_ENCODE_ANY);
    p += sprintf(p, "],\"model\":%s,\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}\n",
                 m ? m : "\"\"", res->tokens, res->tokens);
    free(m);
    json_decref(model);
    srv_http_reply(r, srv_reply_text(200, "application/json", body, (size_t)(p - body)));
    free(a);
}

/* "input" into in[0..*n) (texts point into b; ids malloc'd into idv). 0, or -1 with e. */
static int embed_inputs(const srv_server *s, json_t *b, srv_embed_opts *o, srv_embed_input **in, int *n,
                        int32_t ***idv, v1_err *e) {
    const cfg_t *c = &s->cfg;
    json_t *v = json_object_get(b, "input");
    int arr = json_is_array(v);
    json_t *first = arr ? json_array_get(v, 0) : NULL;
    int ids_one = arr && json_is_integer(first), ids_many = arr && json_is_array(first);
    if (!json_is_string(v) && !(arr && json_array_size(v) > 0))
        return v1_fail(
            e, 400, "input",
            "input (a string, an array of strings, an array of token ids or an array of such arrays) is "
            "required");
    *n = json_is_string(v) || ids_one ? 1 : (int)json_array_size(v);
    if (*n > c->max_texts)
        return v1_fail(e, 400, "input",
                       "input has %d entries, more than this server's limit of %d (max_texts)", *n,
                       c->max_texts);
    o->field = "input";
    o->is_array = arr && !ids_one;
    *in = calloc((size_t)*n, sizeof **in);
    *idv = calloc((size_t)*n, sizeof **idv);
    if (!*in || !*idv) return v1_fail(e, 500, NULL, "out of memory");
    int32_t vocab = t5_model_config(s->model)->vocab_size;
    for (int i = 0; i < *n; i++) {
        json_t *x = json_is_string(v) || ids_one ? v : json_array_get(v, (size_t)i);
        if (json_is_string(x) && !ids_many) {
            (*in)[i] = (srv_embed_input){json_string_value(x), json_string_length(x), NULL, 0};
            continue;
        }
        char name[32], err[300];
        snprintf(name, sizeof name, o->is_array ? "input[%d]" : "input", i);
        if (!json_is_array(x) || (!ids_one && !ids_many))
            return v1_fail(e, 400, "input", "%s must be %s", name,
                           ids_many ? "an array of token ids" : "a string (every entry of one kind)");
        if (srv_json_ids(x, name, vocab, c->max_input_tokens, &(*idv)[i], &(*in)[i].n, err, sizeof err))
            return v1_fail(e, 400, "input", "%s", err);
        (*in)[i].ids = (*idv)[i];
    }
    return 0;
}

void srv_route_v1_embeddings(srv_request *r) {
    srv_server *s = srv_http_server(r);
    static const char *const known[] = {"model", "input", "encoding_format", "dimensions", "user", NULL};
    char err[300];
    size_t len;
    const char *body = srv_http_body(r, &len);
    json_t *b = s->model ? srv_json_parse(body, len, s->cfg.max_json_depth, err, sizeof err) : NULL;
    srv_embed_input *in = NULL;
    int32_t **idv = NULL;
    int n = 0;
    v1_err e = {0};
    v1_embed *a = calloc(1, sizeof *a);
    srv_embed_opts o;
    srv_embed_default_opts(s, r, &o);
    srv_reply rep;
    if (!a) {
        v1_fail(&e, 500, NULL, "out of memory");
    } else if (s->model && !b) {
        v1_fail(&e, 400, NULL, "%s", err);
    } else if (b && srv_json_fields(b, known, err, sizeof err)) {
        v1_fail(&e, 400, NULL, "%s", err);
    } else if (b && srv_v1_check_model(s, b, &rep)) {
        srv_http_reply(r, rep);
        goto done;
    } else if (b) {
        json_t *ef = json_object_get(b, "encoding_format"), *dims = json_object_get(b, "dimensions");
        const char *f = json_is_string(ef) ? json_string_value(ef) : NULL;
        char derr[200];
        int dim = t5_embedder_dim(s->embedder, &o.params, derr, sizeof derr);
        if (ef && !json_is_null(ef) && (!f || (strcmp(f, "float") && strcmp(f, "base64"))))
            v1_fail(&e, 400, "encoding_format", "encoding_format must be \"float\" or \"base64\"");
        else if (dims && !json_is_null(dims) && (!json_is_integer(dims) || json_integer_value(dims) != dim))
            v1_fail(&e, 400, "dimensions",
                    "dimensions must be this model's embedding size, %d (no other is served)", dim);
        else if (!embed_inputs(s, b, &o, &in, &n, &idv, &e)) {
            a->base64 = f && !strcmp(f, "base64");
            snprintf(a->model, sizeof a->model, "%s", s->model_name);
            /* without a model the core says why (503) */
            if (!(e.status = srv_embed_submit(r, in, n, &o, on_embeddings, a, e.msg, sizeof e.msg))) a = NULL;
        }
    } else if ((e.status = srv_embed_submit(r, NULL, 0, &o, on_embeddings, a, e.msg, sizeof e.msg)) == 0) {
        a = NULL;
    }
    if (e.status) srv_http_reply(r, v1_error(e.status, e.msg, e.param[0] ? e.param : NULL, NULL));
done:
    free(a);
    for (int i = 0; idv && i < n; i++)
        free(idv[i]);
    free(idv);
    free(in);
    json_decref(b);
}
