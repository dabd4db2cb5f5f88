/* routes_embed.c - POST /embed: reads the request ({"text": "..." | [...]} or {"ids":
 * [...] | [[...], ...]}, pooling, normalize, truncate, timeout_ms), hands the inputs to
 * the embedding core (embed.c: one scheduler task per input) and writes the answer on
 * the worker that ends the last of them: {"embedding": [...], "usage": {...}} (or
 * "token_embeddings" for pooling none) per input, {"results": [...]} for an array.
 * Vectors are printed by gen_put_floats (9 significant digits: they read back as the
 * same float32 values, as `t5 embed` prints them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

typedef struct {
    int is_array, tokens; /* tokens: pooling none */
} embed_answer;

/* One input's answer object into p (room from answer_room); returns the end. */
static char *put_answer(char *p, const srv_embed_vector *v, int tokens) {
    if (tokens) {
        p += sprintf(p, "{\"token_embeddings\":[");
        for (int t = 0; t < v->rows; t++) {
            if (t) *p++ = ',';
            p = gen_put_floats(p, v->v + (size_t)t * (size_t)v->dim, v->dim);
        }
        *p++ = ']';
    } else {
        p += sprintf(p, "{\"embedding\":");
        p = gen_put_floats(p, v->v, v->dim);
    }
    return p + sprintf(p, ",\"usage\":{\"input_tokens\":%d}}", v->tokens);
}

static size_t answer_room(const srv_embed_vector *v) {
    return (size_t)v->rows * GEN_FLOATS_CHARS(v->dim) + 96;
}

/* The core's callback (on a worker): the answer. */
static void on_vectors(void *user, srv_request *r, const srv_embed_result *res) {
    embed_answer *a = user;
    if (res->status) {
        srv_http_reply(r, srv_reply_error(res->status, "%s", res->message));
        free(a);
        return;
    }
    size_t room = 32;
    for (int i = 0; i < res->n; i++)
        room += answer_room(&res->vec[i]);
    char *body = malloc(room), *p = body;
    if (!body) {
        srv_http_reply(r, srv_reply_error(500, "out of memory"));
        free(a);
        return;
    }
    if (a->is_array) p += sprintf(p, "{\"results\":[");
    for (int i = 0; i < res->n; i++) {
        if (i) *p++ = ',';
        p = put_answer(p, &res->vec[i], a->tokens);
    }
    if (a->is_array) p += sprintf(p, "]}");
    p += sprintf(p, "\n");
    srv_http_reply(r, srv_reply_text(200, "application/json", body, (size_t)(p - body)));
    free(a);
}

/* pooling, normalize, truncate, timeout_ms into o. 0, or -1 with err. */
static int parse_options(srv_request *r, json_t *b, srv_embed_opts *o, char *err, size_t errlen) {
    const srv_server *s = srv_http_server(r);
    static const char *const known[] = {"text",     "ids",        "pooling", "normalize",
                                        "truncate", "timeout_ms", NULL};
    const cfg_t *c = &s->cfg;
    if (srv_json_fields(b, known, err, errlen)) return -1;
    json_t *v = json_object_get(b, "pooling");
    if (v && !json_is_null(v)) {
        int mode = json_is_string(v) ? t5_pooling_from_name(json_string_value(v)) : -1;
        if (mode < 0)
            return snprintf(err, errlen,
                            "pooling must be one of \"mean\", \"max\", \"cls\", \"last\", \"none\" (or "
                            "\"mean_sqrt_len_tokens\", \"weightedmean\")"),
                   -1;
        o->params.pooling = mode;
    }
    if (srv_json_bool(b, "normalize", &o->params.normalize, err, errlen)) return -1;
    v = json_object_get(b, "truncate");
    long long truncate = o->truncate, timeout_ms = c->request_timeout_ms;
    if (json_is_boolean(v))
        truncate = json_is_true(v) ? GEN_TRUNCATE_LIMIT : 0;
    else if (srv_json_int(b, "truncate", 1, c->max_input_tokens - 1, &truncate, err, errlen)) {
        snprintf(err, errlen, "truncate must be true, false or an integer from 1 to %d",
                 c->max_input_tokens - 1);
        return -1;
    }
    o->truncate = (int)truncate;
    if (srv_json_int(b, "timeout_ms", 1, 86400000, &timeout_ms, err, errlen)) return -1;
    if (timeout_ms > c->request_timeout_ms) timeout_ms = c->request_timeout_ms;
    o->deadline = srv_http_t_start(r) + (double)timeout_ms / 1000.0;
    return 0;
}

/* The inputs of the request into in[0..*n) (texts point into b; ids into idv[0..*n),
 * malloc'd, the caller frees them). 0, or -1 with err. */
static int parse_inputs(const srv_server *s, json_t *b, srv_embed_opts *o, srv_embed_input **in, int *n,
                        int32_t ***idv, char *err, size_t errlen) {
    const cfg_t *c = &s->cfg;
    json_t *jtext = json_object_get(b, "text"), *jids = json_object_get(b, "ids");
    if (jtext && jids) return snprintf(err, errlen, "give either text or ids, not both"), -1;
    if (!jtext && !jids)
        return snprintf(err, errlen, "text (a string or an array of strings) or ids is required"), -1;
    if (jtext) {
        const char **texts;
        size_t *lens;
        int rc = srv_json_texts(b, "text", c->max_texts, &texts, &lens, n, &o->is_array, err, errlen);
        if (!rc && !(*in = calloc((size_t)*n, sizeof **in))) rc = -1, snprintf(err, errlen, "out of memory");
        for (int i = 0; !rc && i < *n; i++)
            (*in)[i] = (srv_embed_input){texts[i], lens[i], NULL, 0};
        free(texts);
        free(lens);
        return rc;
    }
    o->field = "ids";
    o->is_array = json_is_array(jids) && json_array_size(jids) > 0 && json_is_array(json_array_get(jids, 0));
    *n = o->is_array ? (int)json_array_size(jids) : 1;
    if (*n > c->max_texts)
        return snprintf(err, errlen, "ids has %d inputs, more than this server's limit of %d (max_texts)", *n,
                        c->max_texts),
               -1;
    *in = calloc((size_t)*n, sizeof **in);
    *idv = calloc((size_t)*n, sizeof **idv);
    if (!*in || !*idv) return snprintf(err, errlen, "out of memory"), -1;
    int32_t vocab = t5_model_config(s->model)->vocab_size;
    for (int i = 0; i < *n; i++) {
        char name[32];
        snprintf(name, sizeof name, o->is_array ? "ids[%d]" : "ids", i);
        srv_embed_input *x = &(*in)[i];
        if (srv_json_ids(o->is_array ? json_array_get(jids, (size_t)i) : jids, name, vocab,
                         c->max_input_tokens, &(*idv)[i], &x->n, err, errlen))
            return -1;
        x->ids = (*idv)[i];
    }
    return 0;
}

void srv_route_embed(srv_request *r) {
    srv_server *s = srv_http_server(r);
    char err[300];
    size_t body_len;
    const char *body = srv_http_body(r, &body_len);
    json_t *b = s->model ? srv_json_parse(body, body_len, s->cfg.max_json_depth, err, sizeof err) : NULL;
    srv_embed_input *in = NULL;
    int32_t **idv = NULL;
    int n = 0, status = 400;
    embed_answer *a = NULL;
    srv_embed_opts o;
    srv_embed_default_opts(s, r, &o);
    if (s->model && !b) goto done;
    if (b &&
        (parse_options(r, b, &o, err, sizeof err) || parse_inputs(s, b, &o, &in, &n, &idv, err, sizeof err)))
        goto done;
    if (!(a = calloc(1, sizeof *a))) {
        status = 500;
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    a->is_array = o.is_array;
    a->tokens = o.params.pooling == 0;
    /* without a model the core says why (503) */
    if (!(status = srv_embed_submit(r, in, n, &o, on_vectors, a, err, sizeof err)))
        a = NULL; /* the core's now */
done:
    if (status) srv_http_reply(r, srv_reply_error(status, "%s", err));
    free(a);
    for (int i = 0; idv && i < n; i++)
        free(idv[i]);
    free(idv);
    free(in);
    json_decref(b);
}
