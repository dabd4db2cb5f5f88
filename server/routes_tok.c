/* routes_tok.c - POST /tokenize and POST /detokenize, answered in the HTTP handler
 * (tokenizing is cheap next to generation; a body over 32 KiB is tokenized on a thread
 * of its own, so that it never holds an HTTP thread): Viterbi ids (with `</s>` by default, as
 * the model receives them), optional pieces and byte offsets, subword sampling with
 * `alpha`, the n best with `nbest`. Shapes as in design section 5. Not generation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"

static const char *const tok_fields[] = {"text",       "add_eos", "pieces", "offsets", "alpha",
                                         "nbest_size", "seed",    "nbest",  NULL};

static json_t *ids_json(const int32_t *ids, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static json_t *pieces_json(const tok_model *tok, const int32_t *ids, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *p = tok_id_to_piece(tok, ids[i]);
        json_array_append_new(a, json_string(p ? p : ""));
    }
    return a;
}

static json_t *offsets_json(const tok_encoding *e) {
    json_t *a = json_array();
    for (size_t i = 0; i < e->n; i++)
        json_array_append_new(a, json_pack("[i,i]", e->starts[i], e->ends[i]));
    return a;
}

/* 1 (and err set) when text i has more than max_input_tokens tokens by plain Viterbi. */
static int too_long(srv_server *s, const char *text, size_t len, int i, char *err, size_t errlen) {
    tok_encode_params p;
    tok_encode_default_params(&p);
    tok_encoding e;
    char terr[200];
    if (tok_encode(s->tok, text, len, &p, &e, terr, sizeof terr)) {
        snprintf(err, errlen, "text %d could not be tokenized: %s", i, terr);
        return 1;
    }
    size_t n = e.n;
    tok_encoding_free(&e);
    if (n <= (size_t)s->cfg.max_input_tokens) return 0;
    snprintf(err, errlen,
             "text %d has %zu tokens: nbest and nbest_size > 1 take at most max_input_tokens (%d)", i, n,
             s->cfg.max_input_tokens);
    return 1;
}

/* Validates, tokenizes and answers the request b (consumed). Any thread. */
static void tokenize_json(srv_request *r, json_t *b) {
    srv_server *s = srv_http_server(r);
    char err[300], terr[200];
    const char **texts = NULL;
    size_t *lens = NULL;
    int n = 0, is_array = 0, add_eos = 1, pieces = 0, offsets = 0;
    long long nbest_size = -1, seed = 0, nbest = 0;
    double alpha = -1;
    json_t *results = NULL;
    if (srv_json_fields(b, tok_fields, err, sizeof err) ||
        srv_json_texts(b, "text", s->cfg.max_texts, &texts, &lens, &n, &is_array, err, sizeof err) ||
        srv_json_bool(b, "add_eos", &add_eos, err, sizeof err) ||
        srv_json_bool(b, "pieces", &pieces, err, sizeof err) ||
        srv_json_bool(b, "offsets", &offsets, err, sizeof err) ||
        srv_json_num(b, "alpha", 0, 1000, 1, &alpha, err, sizeof err) ||
        srv_json_int(b, "nbest_size", -1, s->cfg.max_nbest, &nbest_size, err, sizeof err) ||
        srv_json_int(b, "seed", 0, INT64_MAX, &seed, err, sizeof err) ||
        srv_json_int(b, "nbest", 1, s->cfg.max_nbest, &nbest, err, sizeof err))
        goto bad;
    int sampling = json_object_get(b, "alpha") != NULL;
    if (!sampling && (json_object_get(b, "nbest_size") || json_object_get(b, "seed"))) {
        snprintf(err, sizeof err, "nbest_size and seed apply only to sampling: give alpha too");
        goto bad;
    }
    if (sampling && nbest) {
        snprintf(err, sizeof err, "give either alpha (sampling) or nbest, not both");
        goto bad;
    }
    if (nbest && offsets) {
        snprintf(err, sizeof err, "offsets are not available with nbest");
        goto bad;
    }
    /* With pieces or offsets an answer is ~70 bytes a token: those answers hold at most
     * max_texts x max_input_tokens tokens (what one /generate request may hold). */
    long long listed = 0, max_listed = (long long)s->cfg.max_texts * s->cfg.max_input_tokens;
    results = json_array();
    for (int i = 0; i < n; i++) {
        json_t *ans;
        /* The n-best searches grow faster than the text: bound them like /generate's input. */
        if ((nbest || (sampling && nbest_size > 1)) && too_long(s, texts[i], lens[i], i, err, sizeof err))
            goto bad;
        if (nbest) {
            tok_encoding *list = NULL;
            size_t m = 0;
            if (tok_encode_nbest(s->tok, texts[i], lens[i], (int)nbest, add_eos, &list, &m, terr,
                                 sizeof terr)) {
                snprintf(err, sizeof err, "text %d could not be tokenized: %s", i, terr);
                goto bad;
            }
            json_t *arr = json_array();
            for (size_t k = 0; k < m; k++) {
                json_t *o = json_pack("{s:o,s:f}", "ids", ids_json(list[k].ids, list[k].n), "score",
                                      (double)list[k].score);
                if (pieces) json_object_set_new(o, "pieces", pieces_json(s->tok, list[k].ids, list[k].n));
                json_array_append_new(arr, o);
            }
            tok_nbest_free(list, m);
            ans = json_pack("{s:o}", "nbest", arr);
        } else {
            tok_encode_params p;
            tok_encode_default_params(&p);
            p.add_eos = add_eos;
            if (sampling) {
                p.sample = 1;
                p.alpha = (float)alpha;
                p.nbest_size = (int)nbest_size;
                p.seed = (uint64_t)seed;
            }
            tok_encoding e;
            if (tok_encode(s->tok, texts[i], lens[i], &p, &e, terr, sizeof terr)) {
                snprintf(err, sizeof err, "text %d could not be tokenized: %s", i, terr);
                goto bad;
            }
            if ((pieces || offsets) && (listed += (long long)e.n) > max_listed) {
                tok_encoding_free(&e);
                snprintf(err, sizeof err,
                         "with pieces or offsets an answer holds at most %lld tokens (max_texts x "
                         "max_input_tokens); this request has more by text %d: send less text, or ask for "
                         "ids only",
                         max_listed, i);
                goto bad;
            }
            ans = json_pack("{s:o}", "ids", ids_json(e.ids, e.n));
            if (pieces) json_object_set_new(ans, "pieces", pieces_json(s->tok, e.ids, e.n));
            if (offsets) json_object_set_new(ans, "offsets", offsets_json(&e));
            tok_encoding_free(&e);
        }
        json_array_append_new(results, ans);
    }
    if (is_array)
        srv_http_reply(r, srv_reply_json(200, json_pack("{s:o}", "results", results)));
    else {
        srv_http_reply(r, srv_reply_json(200, json_incref(json_array_get(results, 0))));
        json_decref(results);
    }
    free(texts);
    free(lens);
    json_decref(b);
    return;
bad:
    srv_http_reply(r, srv_reply_error(400, "%s", err));
    json_decref(results);
    free(texts);
    free(lens);
    json_decref(b);
}

/* A long tokenization, on its own thread. */
typedef struct {
    srv_request *r;
    json_t *b;
} tok_job;

static void *tok_job_run(void *arg) {
    tok_job *j = arg;
    srv_server *s = srv_http_server(j->r);
    tokenize_json(j->r, j->b);
    atomic_fetch_sub(&s->tok_jobs, 1);
    srv_http_release(j->r);
    free(j);
    return NULL;
}

/* Bodies above this are tokenized off the HTTP threads (~1 ms of Viterbi per 10 KB). */
enum { TOK_INLINE_BYTES = 32 << 10 };

void srv_route_tokenize(srv_request *r) {
    srv_server *s = srv_http_server(r);
    char err[300];
    size_t body_len;
    const char *body = srv_http_body(r, &body_len);
    json_t *b = srv_json_parse(body, body_len, s->cfg.max_json_depth, err, sizeof err);
    if (!b) {
        srv_http_reply(r, srv_reply_error(400, "%s", err));
        return;
    }
    if (body_len <= TOK_INLINE_BYTES) {
        tokenize_json(r, b);
        return;
    }
    /* a long one gets a thread of its own, so that the HTTP threads keep answering;
     * at most 2 per CPU at once (429 past it) */
    if (atomic_fetch_add(&s->tok_jobs, 1) >= 2 * sysconf(_SC_NPROCESSORS_ONLN)) {
        atomic_fetch_sub(&s->tok_jobs, 1);
        json_decref(b);
        srv_http_reply(r, srv_reply_error(429, "too many long tokenizations at once; retry later"));
        return;
    }
    tok_job *j = malloc(sizeof *j);
    pthread_attr_t at;
    pthread_t th;
    srv_http_defer(r);
    srv_http_retain(r);
    if (j) {
        j->r = r;
        j->b = b;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, tok_job_run, j);
        pthread_attr_destroy(&at);
        if (rc == 0) return;
    }
    free(j); /* no thread: answer here */
    tokenize_json(r, b);
    atomic_fetch_sub(&s->tok_jobs, 1);
    srv_http_release(r); /* never the last reference: MHD holds one */
}

void srv_route_detokenize(srv_request *r) {
    srv_server *s = srv_http_server(r);
    char err[300];
    static const char *const fields[] = {"ids", NULL};
    size_t body_len;
    const char *body = srv_http_body(r, &body_len);
    json_t *b = srv_json_parse(body, body_len, s->cfg.max_json_depth, err, sizeof err);
    if (!b) {
        srv_http_reply(r, srv_reply_error(400, "%s", err));
        return;
    }
    int32_t *ids = NULL;
    int n = 0;
    json_t *v = json_object_get(b, "ids");
    if (srv_json_fields(b, fields, err, sizeof err)) goto bad;
    if (!v) {
        snprintf(err, sizeof err, "ids (an array of integers) is required");
        goto bad;
    }
    if (srv_json_ids(v, "ids", tok_vocab_size(s->tok), 1 << 24, &ids, &n, err, sizeof err)) goto bad;
    size_t len = 0;
    char *text = tok_decode(s->tok, ids, (size_t)n, &len, err, sizeof err);
    if (!text) goto bad;
    srv_http_reply(r, srv_reply_json(200, json_pack("{s:s%}", "text", text, len)));
    free(text);
    free(ids);
    json_decref(b);
    return;
bad:
    srv_http_reply(r, srv_reply_error(400, "%s", err));
    free(ids);
    json_decref(b);
}
