/* test_embed.c - encoder-only models, embedding entries of the continuous batch and the
 * sentence-transformers pipeline (engine/embed.c), against the fixtures' goldens
 * (t5-enc-tiny / st5-tiny, made by transformers 5.17 and sentence-transformers 6.0.1):
 * - t5-enc-tiny (T5EncoderModel) loads without decoder, refuses generation with a
 *   message, and encodes as t5-tiny-gated (the same encoder in a full folder) bit for
 *   bit and as transformers within 1e-4;
 * - t5_batch_add_embed entries share a step's grouped encoder pass with generation
 *   arrivals and with a batch already decoding: each gets t5_encode's output bit for bit,
 *   takes no rows, leaves in that step, and the generations' ids equal t5_generate's
 *   alone; cancelled entries get on_hidden(NULL) once; bad ids are refused;
 * - t5_embed_sentence over the golden token embeddings gives sentence-transformers'
 *   pooled (mean / max / cls / last) and st5-tiny pipeline embeddings within 1e-4. */
#include <cblas.h>
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "tok_testutil.h"
#include "t5.h"

static t5_model *load_model(const char *name) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/%s", tt_fixtures_dir(), name);
    t5_model *m = t5_model_load(path, err, sizeof err);
    ck_assert_msg(m, "cannot load %s: %s", path, err);
    return m;
}

static json_t *load_golden(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s.golden.json", tt_fixtures_dir(), name);
    json_error_t je;
    json_t *g = json_load_file(path, 0, &je);
    ck_assert_msg(g, "cannot read %s: %s", path, je.text);
    return g;
}

static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc((size_t)*n * sizeof *v);
    for (int i = 0; i < *n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

/* floats of a JSON array (of arrays: flattened) */
static float *floats_of(json_t *a, int *n) {
    *n = 0;
    size_t cap = 64;
    float *v = malloc(cap * sizeof *v);
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) {
        size_t k = json_is_array(x) ? json_array_size(x) : 1;
        if ((size_t)*n + k > cap) v = realloc(v, (cap = 2 * (cap + k)) * sizeof *v);
        for (size_t j = 0; j < k; j++)
            v[(*n)++] = (float)json_number_value(json_is_array(x) ? json_array_get(x, j) : x);
    }
    return v;
}

static void assert_close(const char *what, const float *got, const float *want, int n) {
    double err = 0, dot = 0, ng = 0, nw = 0;
    for (int i = 0; i < n; i++) {
        err = fmax(err, fabs((double)got[i] - want[i]));
        dot += (double)got[i] * want[i], ng += (double)got[i] * got[i], nw += (double)want[i] * want[i];
    }
    double cos = dot / fmax(sqrt(ng * nw), 1e-30);
    ck_assert_msg(err <= 1e-4 && cos >= 0.99999, "%s: max abs error %g, cosine %.7f", what, err, cos);
}

START_TEST(encoder_only) {
    t5_model *enc = load_model("t5-enc-tiny"), *full = load_model("t5-tiny-gated");
    ck_assert_int_eq(t5_model_has_decoder(enc), 0);
    ck_assert_int_eq(t5_model_has_decoder(full), 1);
    char err[256];
    int32_t ids[3] = {5, 6, 1};
    t5_result r;
    ck_assert_int_ne(t5_generate(enc, ids, 3, NULL, 1, &r, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "no decoder"), "%s", err);
    t5_batch *b = t5_batch_create(enc, 2, 1, err, sizeof err);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_lt(t5_batch_add(b, ids, 3, NULL, NULL, NULL, NULL, err, sizeof err), 0);
    t5_batch_free(b);
    json_t *g = load_golden("t5-enc-tiny");
    json_t *cases = json_object_get(g, "cases");
    int d = t5_model_config(enc)->d_model;
    for (size_t c = 0; c < json_array_size(cases); c++) {
        int n, nt;
        int32_t *in = ids_of(json_object_get(json_array_get(cases, c), "input_ids"), &n);
        float *want = floats_of(json_object_get(json_array_get(cases, c), "token_embeddings"), &nt);
        ck_assert_int_eq(nt, n * d);
        float *a = malloc((size_t)n * d * sizeof *a), *f = malloc((size_t)n * d * sizeof *f);
        ck_assert_int_eq(t5_encode(enc, in, n, a, 2, err, sizeof err), 0);
        ck_assert_int_eq(t5_encode(full, in, n, f, 2, err, sizeof err), 0);
        ck_assert_msg(!memcmp(a, f, (size_t)n * d * sizeof *a), "encoder-only and full folder differ");
        assert_close("t5-enc-tiny token embeddings", a, want, n * d);
        free(in), free(want), free(a), free(f);
    }
    json_decref(g);
    t5_model_free(enc);
    t5_model_free(full);
}
END_TEST

typedef struct {
    int calls, n;
    float *h; /* copy of the delivered state */
    int null;
} hidden_sink;

static void on_hidden(void *user, const float *h, int n) {
    hidden_sink *s = user;
    s->calls++;
    s->n = n;
    s->null = h == NULL;
    if (h) {
        s->h = malloc((size_t)n * 64 * sizeof *s->h);
        memcpy(s->h, h, (size_t)n * 64 * sizeof *s->h);
    }
}

typedef struct {
    t5_result r;
    int got;
} done_sink;

static void on_done(void *user, t5_result *r) {
    done_sink *d = user;
    d->r = *r;
    d->got = 1;
}

START_TEST(batch_embed) {
    t5_model *m = load_model("t5-tiny-gated");
    json_t *g = load_golden("t5-enc-tiny");
    json_t *cases = json_object_get(g, "cases");
    int nc = (int)json_array_size(cases), d = t5_model_config(m)->d_model;
    ck_assert_int_eq(d, 64);
    char err[256];
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = p.min_new_tokens = 8; /* every generation runs 8 steps */
    int32_t *in[16];
    int len[16];
    for (int c = 0; c < nc; c++)
        in[c] = ids_of(json_object_get(json_array_get(cases, c), "input_ids"), &len[c]);
    /* one step: generation arrivals interleaved with embedding entries (one grouped pass),
     * then an embedding entry joining the batch while it decodes */
    t5_batch *b = t5_batch_create(m, 4, 2, err, sizeof err);
    hidden_sink hs[16];
    done_sink ds[16];
    memset(hs, 0, sizeof hs), memset(ds, 0, sizeof ds);
    for (int c = 0; c < nc; c++) {
        int h = c % 3 == 0 ? t5_batch_add(b, in[c], len[c], &p, NULL, on_done, &ds[c], err, sizeof err)
                           : t5_batch_add_embed(b, in[c], len[c], on_hidden, &hs[c], err, sizeof err);
        ck_assert_msg(h >= 0, "%s", err);
    }
    ck_assert_int_eq(t5_batch_rows_available(b), 4 - (nc + 2) / 3); /* embedding entries take no rows */
    ck_assert_int_eq(t5_batch_active(b), nc);
    ck_assert_int_eq(t5_batch_step(b), (nc + 2) / 3); /* the embedding entries left */
    int late = 1;
    hidden_sink lh = {0};
    ck_assert_int_eq(t5_batch_step(b), (nc + 2) / 3);
    ck_assert_int_ge(t5_batch_add_embed(b, in[late], len[late], on_hidden, &lh, err, sizeof err), 0);
    while (t5_batch_step(b) > 0) {
    }
    ck_assert_int_eq(lh.calls, 1);
    for (int c = 0; c < nc; c++) {
        if (c % 3 == 0) {
            ck_assert(ds[c].got);
            t5_result alone;
            ck_assert_int_eq(t5_generate(m, in[c], len[c], &p, 1, &alone, err, sizeof err), 0);
            ck_assert_int_eq(ds[c].r.seqs[0].n, alone.seqs[0].n);
            ck_assert(!memcmp(ds[c].r.seqs[0].ids, alone.seqs[0].ids, (size_t)alone.seqs[0].n * 4));
            t5_result_free(&alone);
            t5_result_free(&ds[c].r);
            continue;
        }
        ck_assert_int_eq(hs[c].calls, 1);
        ck_assert_int_eq(hs[c].n, len[c]);
        float *want = malloc((size_t)len[c] * d * sizeof *want);
        ck_assert_int_eq(t5_encode(m, in[c], len[c], want, 1, err, sizeof err), 0);
        ck_assert_msg(!memcmp(hs[c].h, want, (size_t)len[c] * d * sizeof *want), "case %d differs", c);
        if (c == late) ck_assert(!memcmp(lh.h, want, (size_t)len[c] * d * sizeof *want));
        free(want);
        free(hs[c].h);
    }
    free(lh.h);
    /* cancelled before its step: on_hidden(NULL) once; bad ids refused */
    hidden_sink cs = {0};
    int h = t5_batch_add_embed(b, in[0], len[0], on_hidden, &cs, err, sizeof err);
    t5_batch_cancel(b, h);
    ck_assert_int_eq(t5_batch_step(b), 0);
    ck_assert(cs.calls == 1 && cs.null && cs.n == 0);
    int32_t bad[2] = {5, 1 << 20};
    ck_assert_int_eq(t5_batch_add_embed(b, bad, 2, on_hidden, &cs, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "outside the vocabulary"), "%s", err);
    ck_assert_int_eq(t5_batch_add_embed(b, bad, 0, on_hidden, &cs, err, sizeof err), -1);
    ck_assert_int_eq(cs.calls, 1);
    t5_batch_free(b);
    for (int c = 0; c < nc; c++)
        free(in[c]);
    json_decref(g);
    t5_model_free(m);
}
END_TEST

/* t5_embed_sentence over the golden token embeddings (transformers' encoder output) */
START_TEST(sentence_pipeline) {
    char path[1024], err[256];
    json_t *g = load_golden("t5-enc-tiny"), *gs = load_golden("st5-tiny");
    snprintf(path, sizeof path, "%s/models/t5-enc-tiny", tt_fixtures_dir());
    t5_embedder *plain = t5_embedder_load(path, 64, err, sizeof err);
    ck_assert_msg(plain, "%s", err);
    snprintf(path, sizeof path, "%s/models/st5-tiny", tt_fixtures_dir());
    t5_embedder *st = t5_embedder_load(path, 64, err, sizeof err);
    ck_assert_msg(st, "%s", err);
    ck_assert_int_eq(t5_embedder_pooling(st), T5_POOL_MEAN);
    ck_assert_int_eq(t5_embedder_max_seq_length(st), 512);
    ck_assert_int_eq(t5_embedder_dim(st, NULL, err, sizeof err), 32);
    t5_embedder_describe(st, path, sizeof path);
    ck_assert_str_eq(path, "Pooling(mean) -> Dense(64 -> 32, Identity) -> Normalize");
    ck_assert_int_eq(t5_pooling_from_name("last"), T5_POOL_LAST);
    ck_assert_int_eq(t5_pooling_from_name("lasttoken"), T5_POOL_LAST);
    ck_assert_int_eq(t5_pooling_from_name("none"), 0);
    ck_assert_int_eq(t5_pooling_from_name("median"), -1);
    json_t *cases = json_object_get(g, "cases"), *scases = json_object_get(gs, "cases");
    const char *keys[4] = {"mean", "max", "cls", "last"};
    const int modes[4] = {T5_POOL_MEAN, T5_POOL_MAX, T5_POOL_CLS, T5_POOL_LAST};
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        int nt, nw;
        float *tok = floats_of(json_object_get(cs, "token_embeddings"), &nt), out[64];
        for (int k = 0; k < 4; k++) {
            t5_embed_params p = {modes[k], -1};
            float *want = floats_of(json_object_get(cs, keys[k]), &nw);
            ck_assert_int_eq(t5_embed_sentence(plain, &p, tok, nt / 64, out, err, sizeof err), 0);
            assert_close(keys[k], out, want, 64);
            free(want);
        }
        const char *skeys[3] = {"embedding", "embedding_no_normalize", "embedding_normalize"};
        for (int k = 0; k < 3; k++) {
            t5_embed_params p = {-1, k == 0 ? -1 : k == 1 ? 0 : 1};
            float *want = floats_of(json_object_get(json_array_get(scases, c), skeys[k]), &nw);
            ck_assert_int_eq(nw, 32);
            ck_assert_int_eq(t5_embed_sentence(st, &p, tok, nt / 64, out, err, sizeof err), 0);
            assert_close(skeys[k], out, want, 32);
            free(want);
        }
        t5_embed_params none = {0, -1}, two = {T5_POOL_MEAN | T5_POOL_MAX, -1};
        ck_assert_int_eq(t5_embed_sentence(st, &none, tok, nt / 64, out, err, sizeof err), -1);
        ck_assert_int_eq(t5_embed_sentence(st, &two, tok, nt / 64, out, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "takes 64 features"), "%s", err);
        free(tok);
    }
    t5_embedder_free(plain);
    t5_embedder_free(st);
    json_decref(g);
    json_decref(gs);
}
END_TEST

int main(void) {
    openblas_set_num_threads(1);
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("embed");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, encoder_only);
    tcase_add_test(tc, batch_embed);
    tcase_add_test(tc, sentence_pipeline);
    suite_add_tcase(s, tc);
    return check_run(s);
}
