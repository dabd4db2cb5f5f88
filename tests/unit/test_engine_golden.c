/* test_engine_golden.c - the engine against transformers 5.17's own outputs
 * (tests/fixtures/models/NAME.golden.json) for the t5-tiny-gated (gated-gelu,
 * untied, float32) and t5-tiny-relu (relu, tied, float16) checkpoints: encoder
 * output (max abs error 1e-4), per-step top-5 logits and logsumexp of greedy
 * decoding (1e-4), and exact ids of greedy, beam4 (with scores, 1e-4),
 * greedy_penalties, greedy_min_new and batch_greedy; plus the continuous batch:
 * sequences joining a running batch mid-flight get the ids they get alone, and
 * inputs encoded together get the encoder output they get alone, bit for bit; an
 * input whose encoder runs out of memory fails alone; and beam search under the
 * early_stopping / length_penalty settings of tests/data/beam_goldens.json.
 * One Check test per check and model (a failure hides no other check); each prints the
 * largest error it saw. Fixtures come from $FIXTURES (tests/run.sh sets it), default
 * tests/fixtures. */
#include <check.h>
#include "check_run.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "t5.h"
#include "t5_dev.h"
#include "tok_testutil.h"

typedef struct {
    const char *name;
    t5_model *m;
    json_t *g;
} golden;

static golden load(const char *name) {
    golden G = {.name = name};
    char path[1024], err[512];
    snprintf(path, sizeof path, "models/%s", name);
    snprintf(path, sizeof path, "%s", tt_fixture(path));
    G.m = t5_model_load(path, err, sizeof err);
    ck_assert_msg(G.m, "cannot load %s: %s", path, err);
    snprintf(path, sizeof path, "models/%s.golden.json", name);
    snprintf(path, sizeof path, "%s", tt_fixture(path));
    json_error_t je;
    G.g = json_load_file(path, 0, &je);
    ck_assert_msg(G.g, "cannot read %s: %s", path, je.text);
    return G;
}

static void unload(golden *G) {
    t5_model_free(G->m);
    json_decref(G->g);
}

static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

static void assert_ids(const t5_sequence *s, json_t *want, const char *what, int case_no) {
    int n;
    int32_t *w = ids_of(want, &n);
    int same = s->n == n && !memcmp(s->ids, w, (size_t)n * sizeof *w);
    if (!same) {
        fprintf(stderr, "%s case %d: got", what, case_no);
        for (int i = 0; i < s->n; i++)
            fprintf(stderr, " %d", s->ids[i]);
        fprintf(stderr, "\n   expected");
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %d", w[i]);
        fprintf(stderr, "\n");
    }
    free(w);
    ck_assert_msg(same, "%s ids differ from transformers in case %d", what, case_no);
}

static void check_encoder(golden *G) {
    const t5_config *c = t5_model_config(G->m);
    json_t *cases = json_object_get(G->g, "cases");
    double worst = 0;
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k);
        int n;
        int32_t *ids = ids_of(json_object_get(cs, "input_ids"), &n);
        float *out = malloc((size_t)n * c->d_model * sizeof *out);
        char err[256];
        ck_assert_int_eq(t5_encode(G->m, ids, n, out, 2, err, sizeof err), 0);
        json_t *want = json_object_get(cs, "encoder_last_hidden_state");
        ck_assert_int_eq((int)json_array_size(want), n);
        double mx = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c->d_model; j++) {
                double w = json_number_value(json_array_get(json_array_get(want, (size_t)i), (size_t)j));
                double e = fabs(w - out[(size_t)i * c->d_model + j]);
                mx = e > mx ? e : mx;
            }
        if (mx > worst) worst = mx;
        ck_assert_msg(mx <= 1e-4, "encoder output of case %zu: max abs error %g > 1e-4", k, mx);
        free(out);
        free(ids);
    }
    printf("%s: encoder output max abs error %.2e\n", G->name, worst);
}

/* All cases encoded in one pass (as t5_batch_step encodes the inputs that arrive
 * together): each case's encoder output and cross K/V equal its own alone, bit for
 * bit, on every ISA the CPU has (the model's kernel level forced). */
static void check_encoder_grouped(golden *G) {
    t5_model *m = (t5_model *)G->m;
    int d = m->cfg.d_model, isa0 = m->isa;
    size_t kvn = (size_t)m->cfg.num_decoder_layers * m->inner; /* cross K/V floats per token */
    json_t *cases = json_object_get(G->g, "cases");
    int nc = (int)json_array_size(cases), total = 0, lens[64];
    int32_t *all = NULL;
    ck_assert_int_le(nc, 64);
    for (int k = 0; k < nc; k++) {
        int32_t *ids = ids_of(json_object_get(json_array_get(cases, (size_t)k), "input_ids"), &lens[k]);
        all = realloc(all, (size_t)(total + lens[k]) * sizeof *all);
        memcpy(all + total, ids, (size_t)lens[k] * sizeof *ids);
        total += lens[k];
        free(ids);
    }
    t5_pool *pool = t5_pool_create(2);
    float *grouped = malloc((size_t)total * d * sizeof *grouped),
          *alone = malloc((size_t)total * d * sizeof *alone);
    t5_cross_kv cg[64], ca[64], *pg[64], *pa[64];
    for (int isa = isa0; isa >= T5_ISA_GENERIC; isa--) {
        m->isa = (t5_isa)isa;
        for (int k = 0; k < nc; k++)
            pg[k] = &cg[k], pa[k] = &ca[k];
        /* the cases alone reuse the grouped pass's scratch (larger, holding its values): as a batch
         * keeps it, and nothing of an earlier pass may leak into the next */
        t5_enc_scratch *sc = t5_enc_scratch_create();
        ck_assert_ptr_nonnull(sc);
        ck_assert_int_eq(t5_encoder_forward(m, pool, all, lens, nc, grouped), 0);
        ck_assert_int_eq(t5_cross_compute(m, pool, grouped, lens, nc, pg), 0);
        ck_assert_int_eq(t5_encoder_forward_with(m, pool, sc, all, lens, nc, alone), 0);
        ck_assert_msg(!memcmp(grouped, alone, (size_t)total * d * sizeof(float)),
                      "kernels %s: the encoder with a scratch differs from the one without",
                      t5_isa_name(m->isa));
        for (int k = 0, off = 0; k < nc; off += lens[k++]) {
            float *mine = alone + (size_t)off * d;
            ck_assert_int_eq(t5_encoder_forward_with(m, pool, sc, all + off, &lens[k], 1, mine), 0);
            ck_assert_int_eq(t5_cross_compute(m, pool, mine, &lens[k], 1, &pa[k]), 0);
            size_t bytes = (size_t)lens[k] * sizeof(float);
            ck_assert_msg(!memcmp(grouped + (size_t)off * d, mine, bytes * d),
                          "kernels %s: case %d encoded with the others differs from case %d alone",
                          t5_isa_name(m->isa), k, k);
            ck_assert_msg(!memcmp(cg[k].k, ca[k].k, bytes * kvn) && !memcmp(cg[k].v, ca[k].v, bytes * kvn),
                          "kernels %s: case %d's cross K/V with the others differs from its own alone",
                          t5_isa_name(m->isa), k);
            t5_cross_free(&cg[k]);
            t5_cross_free(&ca[k]);
        }
        t5_enc_scratch_free(sc);
    }
    m->isa = isa0;
    free(grouped), free(alone), free(all);
    t5_pool_free(pool);
}

/* Teacher-forced greedy steps through the decoder: logits of each step vs the golden top 5 / logsumexp. */
static void check_steps(golden *G) {
    const t5_model *m = G->m;
    const t5_config *c = t5_model_config(m);
    json_t *cases = json_object_get(G->g, "cases");
    t5_pool *pool = t5_pool_create(2);
    t5_dec_scratch *s = t5_dec_scratch_create(m, 1, 2);
    double worst_logit = 0, worst_lse = 0;
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k), *gr = json_object_get(cs, "greedy");
        int n, ng;
        int32_t *ids = ids_of(json_object_get(cs, "input_ids"), &n);
        int32_t *gen = ids_of(json_object_get(gr, "ids"), &ng);
        float *enc = malloc((size_t)n * c->d_model * sizeof *enc);
        ck_assert_int_eq(t5_encoder_forward(m, pool, ids, &n, 1, enc), 0);
        t5_cross_kv cross, *crw = &cross;
        ck_assert_int_eq(t5_cross_compute(m, pool, enc, &n, 1, &crw), 0);
        t5_kv kv;
        ck_assert_int_eq(t5_kv_init(m, &kv, ng + 1), 0);
        t5_kv *kvp = &kv;
        const t5_cross_kv *crp = &cross;
        json_t *steps = json_object_get(gr, "steps");
        ck_assert_int_eq((int)json_array_size(steps), ng);
        int32_t tok = c->decoder_start_token_id;
        for (int t = 0; t < ng; t++) {
            float *lg = t5_decoder_step(m, pool, s, 1, &tok, &kvp, &crp);
            ck_assert_ptr_nonnull(lg);
            json_t *st = json_array_get(steps, (size_t)t), *top = json_object_get(st, "top");
            for (size_t i = 0; i < json_array_size(top); i++) {
                json_t *pair = json_array_get(top, i);
                int id = (int)json_integer_value(json_array_get(pair, 0));
                double e = fabs(json_number_value(json_array_get(pair, 1)) - lg[id]);
                if (e > worst_logit) worst_logit = e;
                ck_assert_msg(e <= 1e-4, "case %zu step %d: logit of %d off by %g", k, t, id, e);
            }
            /* the golden top-1 is our argmax unless within 1e-4 of a tie */
            int best = (int)json_integer_value(json_array_get(json_array_get(top, 0), 0));
            ck_assert_msg(lg[t5_argmax(m->isa, lg, c->vocab_size)] - lg[best] <= 1e-4,
                          "case %zu step %d: argmax", k, t);
            double e = fabs(json_number_value(json_object_get(st, "logsumexp")) -
                            t5_logsumexp(m->isa, lg, c->vocab_size));
            if (e > worst_lse) worst_lse = e;
            ck_assert_msg(e <= 1e-4, "case %zu step %d: logsumexp off by %g", k, t, e);
            tok = gen[t];
        }
        t5_kv_free(&kv);
        t5_cross_free(&cross);
        free(enc);
        free(ids);
        free(gen);
    }
    t5_dec_scratch_free(s);
    t5_pool_free(pool);
    printf("%s: decoder steps max abs error logits %.2e, logsumexp %.2e\n", G->name, worst_logit, worst_lse);
}

static void check_generate(golden *G) {
    json_t *cases = json_object_get(G->g, "cases");
    char err[256];
    double worst = 0;
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k);
        int n;
        int32_t *ids = ids_of(json_object_get(cs, "input_ids"), &n);
        t5_gen_params p;
        t5_result r;
        /* greedy */
        t5_gen_default_params(&p);
        p.max_new_tokens = 24;
        p.want_logprobs = 1;
        ck_assert_msg(t5_generate(G->m, ids, n, &p, 2, &r, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(r.n_seqs, 1);
        assert_ids(&r.seqs[0], json_object_get(json_object_get(cs, "greedy"), "ids"), "greedy", (int)k);
        ck_assert_int_eq(r.input_tokens, n);
        /* logprobs are the model's: logit - logsumexp of the golden step */
        json_t *steps = json_object_get(json_object_get(cs, "greedy"), "steps");
        for (int t = 0; t < r.seqs[0].n; t++) {
            json_t *st = json_array_get(steps, (size_t)t);
            double want =
                json_number_value(json_array_get(json_array_get(json_object_get(st, "top"), 0), 1)) -
                json_number_value(json_object_get(st, "logsumexp"));
            ck_assert_msg(fabs(want - r.seqs[0].logprobs[t]) < 2e-4, "logprob of step %d", t);
        }
        int last = r.seqs[0].ids[r.seqs[0].n - 1];
        ck_assert_int_eq(r.seqs[0].finish, last == 1 ? T5_FINISH_EOS : T5_FINISH_LENGTH);
        t5_result_free(&r);
        /* beam4 */
        t5_gen_default_params(&p);
        p.max_new_tokens = 24, p.num_beams = 4, p.num_return_sequences = 4, p.early_stopping = 1;
        ck_assert_msg(t5_generate(G->m, ids, n, &p, 2, &r, err, sizeof err) == 0, "%s", err);
        json_t *b4 = json_object_get(cs, "beam4");
        ck_assert_int_eq(r.n_seqs, 4);
        for (int i = 0; i < 4; i++) {
            assert_ids(&r.seqs[i], json_array_get(json_object_get(b4, "sequences"), (size_t)i), "beam4",
                       (int)k);
            double e =
                fabs(json_number_value(json_array_get(json_object_get(b4, "sequences_scores"), (size_t)i)) -
                     r.seqs[i].score);
            if (e > worst) worst = e;
            ck_assert_msg(e <= 1e-4, "beam4 case %zu seq %d: score off by %g", k, i, e);
        }
        t5_result_free(&r);
        /* penalties */
        t5_gen_default_params(&p);
        p.max_new_tokens = 24, p.repetition_penalty = 1.3f, p.no_repeat_ngram_size = 3;
        ck_assert_msg(t5_generate(G->m, ids, n, &p, 1, &r, err, sizeof err) == 0, "%s", err);
        assert_ids(&r.seqs[0], json_object_get(json_object_get(cs, "greedy_penalties"), "ids"), "penalties",
                   (int)k);
        t5_result_free(&r);
        /* min_new_tokens */
        t5_gen_default_params(&p);
        p.max_new_tokens = 24, p.min_new_tokens = 16;
        ck_assert_msg(t5_generate(G->m, ids, n, &p, 2, &r, err, sizeof err) == 0, "%s", err);
        assert_ids(&r.seqs[0], json_object_get(json_object_get(cs, "greedy_min_new"), "ids"), "min_new",
                   (int)k);
        t5_result_free(&r);
        free(ids);
    }
    printf("%s: beam4 scores max abs error %.2e\n", G->name, worst);
}

/* ---- continuous batch ---- */

typedef struct {
    t5_result r;
    int done;
    int tokens; /* on_token calls */
} sink;

static void on_done(void *user, t5_result *r) {
    sink *s = user;
    s->r = *r;
    s->done++;
}

static int on_token(void *user, int32_t tok, float lp) {
    (void)tok;
    ck_assert(lp <= 0);
    ((sink *)user)->tokens++;
    return 0;
}

/* The first 4 texts in one batch (transformers: one padded batch) give batch_greedy's ids. */
static void check_batch_greedy(golden *G) {
    json_t *cases = json_object_get(G->g, "cases"),
           *bg = json_object_get(json_object_get(G->g, "batch_greedy"), "ids");
    char err[256];
    t5_batch *b = t5_batch_create(G->m, 4, 2, err, sizeof err);
    ck_assert_msg(b, "%s", err);
    sink s[4];
    memset(s, 0, sizeof s);
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = 24;
    for (int i = 0; i < 4; i++) {
        int n;
        int32_t *ids = ids_of(json_object_get(json_array_get(cases, (size_t)i), "input_ids"), &n);
        ck_assert_int_ge(t5_batch_add(b, ids, n, &p, on_token, on_done, &s[i], err, sizeof err), 0);
        free(ids);
    }
    ck_assert_int_eq(t5_batch_rows_available(b), 0);
    while (t5_batch_step(b) > 0) {
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(s[i].done, 1);
        assert_ids(&s[i].r.seqs[0], json_array_get(bg, (size_t)i), "batch_greedy", i);
        ck_assert_int_eq(s[i].tokens, s[i].r.seqs[0].n);
        t5_result_free(&s[i].r);
    }
    ck_assert_int_eq(t5_batch_rows_available(b), 4);
    t5_batch_free(b);
}

/* Every case joins a running batch at a different step, mixed greedy / beam / penalties:
 * each gets exactly the ids transformers gives it alone. One is cancelled mid-flight. */
static void check_midflight(golden *G) {
    json_t *cases = json_object_get(G->g, "cases");
    int nc = (int)json_array_size(cases);
    char err[256];
    t5_batch *b = t5_batch_create(G->m, 64, 2, err, sizeof err);
    ck_assert_msg(b, "%s", err);
    sink *s = calloc((size_t)nc * 3 + 1, sizeof *s);
    int step = 0, next = 0, total = nc * 3, cancel_handle = -1;
    while (next < total || t5_batch_active(b) > 0) {
        /* admit one or two new sequences every other step */
        for (int j = 0; j < 2 && next < total && step % 2 == 0; j++, next++) {
            int k = next % nc, kind = next / nc;
            int n;
            int32_t *ids = ids_of(json_object_get(json_array_get(cases, (size_t)k), "input_ids"), &n);
            t5_gen_params p;
            t5_gen_default_params(&p);
            p.max_new_tokens = 24;
            if (kind == 1) p.num_beams = 4, p.num_return_sequences = 4, p.early_stopping = 1;
            if (kind == 2) p.repetition_penalty = 1.3f, p.no_repeat_ngram_size = 3;
            int h = t5_batch_add(b, ids, n, &p, NULL, on_done, &s[next], err, sizeof err);
            ck_assert_msg(h >= 0, "%s", err);
            free(ids);
        }
        if (step == 3) { /* an extra sequence, cancelled two steps after it joined */
            int32_t one = 1;
            t5_gen_params p;
            t5_gen_default_params(&p);
            p.max_new_tokens = 24;
            p.min_new_tokens = 20;
            cancel_handle = t5_batch_add(b, &one, 1, &p, NULL, on_done, &s[total], err, sizeof err);
            ck_assert_int_ge(cancel_handle, 0);
        }
        if (step == 5) t5_batch_cancel(b, cancel_handle);
        ck_assert_int_ge(t5_batch_step(b), 0);
        step++;
    }
    for (int i = 0; i < total; i++) {
        int k = i % nc, kind = i / nc;
        json_t *cs = json_array_get(cases, (size_t)k);
        ck_assert_int_eq(s[i].done, 1);
        if (kind == 0)
            assert_ids(&s[i].r.seqs[0], json_object_get(json_object_get(cs, "greedy"), "ids"), "mid greedy",
                       k);
        if (kind == 1)
            for (int j = 0; j < 4; j++)
                assert_ids(
                    &s[i].r.seqs[j],
                    json_array_get(json_object_get(json_object_get(cs, "beam4"), "sequences"), (size_t)j),
                    "mid beam4", k);
        if (kind == 2)
            assert_ids(&s[i].r.seqs[0], json_object_get(json_object_get(cs, "greedy_penalties"), "ids"),
                       "mid penalties", k);
        t5_result_free(&s[i].r);
    }
    ck_assert_int_eq(s[total].done, 1);
    ck_assert_int_eq(s[total].r.seqs[0].finish, T5_FINISH_CANCELLED);
    ck_assert_int_eq(s[total].r.seqs[0].n, 2);
    t5_result_free(&s[total].r);
    free(s);
    t5_batch_free(b);
}

/* An input whose encoder cannot get its memory (an address-space limit set after it
 * was admitted) ends with T5_FINISH_ERROR; the sequence admitted with it still gets its
 * golden ids. Not under ASan, whose shadow memory needs the address space. */
static void check_encode_oom(golden *G) {
#if !defined(__SANITIZE_ADDRESS__)
    json_t *cs = json_array_get(json_object_get(G->g, "cases"), 0);
    int n, big = 4 << 20; /* 4M tokens: gigabytes of encoder activations */
    int32_t *ids = ids_of(json_object_get(cs, "input_ids"), &n), *huge = malloc((size_t)big * sizeof *huge);
    for (int i = 0; i < big; i++)
        huge[i] = ids[i % n];
    char err[256];
    t5_batch *b = t5_batch_create(G->m, 2, 2, err, sizeof err);
    sink s[2];
    memset(s, 0, sizeof s);
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = 24;
    ck_assert_int_ge(t5_batch_add(b, ids, n, &p, NULL, on_done, &s[0], err, sizeof err), 0);
    ck_assert_int_ge(t5_batch_add(b, huge, big, &p, NULL, on_done, &s[1], err, sizeof err), 0);
    free(huge);
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert(f && fscanf(f, "%ld", &pages) == 1);
    fclose(f);
    struct rlimit old, lim;
    getrlimit(RLIMIT_AS, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (256u << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
    int rc;
    while ((rc = t5_batch_step(b)) > 0) {
    }
    setrlimit(RLIMIT_AS, &old);
    ck_assert_int_eq(rc, 0);
    ck_assert(s[0].done == 1 && s[1].done == 1);
    ck_assert_int_eq(s[1].r.seqs[0].finish, T5_FINISH_ERROR);
    assert_ids(&s[0].r.seqs[0], json_object_get(json_object_get(cs, "greedy"), "ids"), "next to an OOM", 0);
    t5_result_free(&s[0].r);
    t5_result_free(&s[1].r);
    t5_batch_free(b);
    free(ids);
#else
    (void)G;
#endif
}

/* Beam search for the settings the fixture goldens leave out: early_stopping false / true /
 * "never" x length_penalty 0.5 / 1 / 2 (4 beams, 4 sequences, 24 new tokens), every case:
 * the same 4 sequences in the same order, scores within 1e-4. Expected values from
 * transformers: tests/data/beam_goldens.json (tools/goldens/mk_beam_goldens.py, run on the
 * accelerator machine); read relative to the repository root, where tests/run.sh runs. */
static void check_beam_settings(golden *G) {
    json_error_t je;
    json_t *want = json_load_file("tests/data/beam_goldens.json", 0, &je);
    ck_assert_msg(want, "cannot read tests/data/beam_goldens.json (run from the repository root): %s",
                  je.text);
    json_t *runs = json_object_get(json_object_get(want, "models"), G->name),
           *cases = json_object_get(G->g, "cases");
    ck_assert_int_eq((int)json_array_size(runs), 9 * (int)json_array_size(cases)); /* 9 settings per case */
    int never = 0;
    double worst = 0;
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_t *run = json_array_get(runs, i), *es = json_object_get(run, "early_stopping");
        int c = (int)json_integer_value(json_object_get(run, "case")), n;
        int32_t *ids = ids_of(json_object_get(json_array_get(cases, (size_t)c), "input_ids"), &n);
        t5_gen_params p;
        t5_gen_default_params(&p);
        p.max_new_tokens = 24, p.num_beams = 4, p.num_return_sequences = 4;
        p.length_penalty = (float)json_number_value(json_object_get(run, "length_penalty"));
        p.early_stopping = json_is_string(es) ? 2 : json_is_true(es);
        never += p.early_stopping == 2;
        t5_result r;
        char err[256];
        ck_assert_msg(t5_generate(G->m, ids, n, &p, 2, &r, err, sizeof err) == 0, "%s", err);
        json_t *seqs = json_object_get(run, "sequences"), *scores = json_object_get(run, "sequences_scores");
        ck_assert_int_eq(r.n_seqs, 4);
        for (int k = 0; k < 4; k++) {
            char what[96];
            snprintf(what, sizeof what, "early_stopping %d, length_penalty %g, sequence %d", p.early_stopping,
                     p.length_penalty, k);
            assert_ids(&r.seqs[k], json_array_get(seqs, (size_t)k), what, c);
            double e = fabs(r.seqs[k].score - json_number_value(json_array_get(scores, (size_t)k)));
            if (e > worst) worst = e;
            ck_assert_msg(e <= 1e-4, "case %d, %s: score off by %g", c, what, e);
        }
        t5_result_free(&r);
        free(ids);
    }
    ck_assert_int_gt(never, 0);
    json_decref(want);
    printf("%s: beam settings scores max abs error %.2e\n", G->name, worst);
}

/* Parameters are checked before any batch exists (t5_gen_check), with the statuses of t5.h;
 * t5_batch_add answers T5_ERR_FULL and T5_ERR_ARG; a beam search as wide as its batch runs
 * to the end (its step scratch is the batch's, sized once for the batch's rows). */
static void check_params(golden *G) {
    const t5_config *c = t5_model_config(G->m);
    char err[256];
    t5_gen_params p;
    t5_gen_default_params(&p);
    ck_assert_int_eq(t5_gen_check(G->m, &p, err, sizeof err), T5_OK);
    t5_gen_params q = p;
    q.num_beams = 0;
    ck_assert_int_eq(t5_gen_check(G->m, &q, err, sizeof err), T5_ERR_ARG);
    ck_assert_str_eq(err, "num_beams must be in [1, 1024]");
    q = p, q.num_beams = T5_MAX_BEAMS + 1;
    ck_assert_int_eq(t5_gen_check(G->m, &q, err, sizeof err), T5_ERR_ARG);
    q = p, q.num_return_sequences = T5_MAX_BEAMS + 1, q.do_sample = 1;
    ck_assert_int_eq(t5_gen_check(G->m, &q, err, sizeof err), T5_ERR_ARG);
    ck_assert_str_eq(err, "num_return_sequences must be <= 1024");
    q = p, q.num_beams = 4, q.early_stopping = T5_EARLY_STOPPING_NEVER + 1;
    ck_assert_int_eq(t5_gen_check(G->m, &q, err, sizeof err), T5_ERR_ARG);
    q = p, q.eos_token_id = c->vocab_size;
    ck_assert_int_eq(t5_gen_check(G->m, &q, err, sizeof err), T5_ERR_ARG);
    q = p, q.num_beams = 4, q.early_stopping = T5_EARLY_STOPPING_NEVER;
    ck_assert_int_eq(t5_gen_check(G->m, &q, err, sizeof err), T5_OK);

    enum { W = 16 };
    t5_batch *b = t5_batch_create(G->m, W, 2, err, sizeof err);
    ck_assert_msg(b, "%s", err);
    int32_t ids[] = {5, 6, 7, c->eos_token_id}, bad_id = c->vocab_size;
    ck_assert_int_eq(t5_batch_add(b, &bad_id, 1, &p, NULL, NULL, NULL, err, sizeof err), T5_ERR_ARG);
    q = p, q.num_beams = W + 1;
    ck_assert_int_eq(t5_batch_add(b, ids, 4, &q, NULL, NULL, NULL, err, sizeof err), T5_ERR_FULL);
    sink out = {0};
    q = p, q.num_beams = W, q.num_return_sequences = W, q.max_new_tokens = 12;
    ck_assert_int_ge(t5_batch_add(b, ids, 4, &q, NULL, on_done, &out, err, sizeof err), 0);
    ck_assert_int_eq(t5_batch_rows_available(b), 0);
    while (t5_batch_step(b) > 0) {
    }
    ck_assert_int_eq(out.done, 1);
    ck_assert_int_eq(out.r.n_seqs, W);
    for (int i = 1; i < W; i++)
        ck_assert(out.r.seqs[i - 1].score >= out.r.seqs[i].score);
    t5_result_free(&out.r);
    t5_batch_free(b);
}

/* One Check test per check, run once per model: the loop index picks the model. */
static const char *const MODELS[] = {"t5-tiny-gated", "t5-tiny-relu"};
enum { N_MODELS = sizeof MODELS / sizeof *MODELS };

#define MODEL_TEST(check)                                                                                    \
    START_TEST(test_##check) {                                                                               \
        golden G = load(MODELS[_i]);                                                                         \
        check(&G);                                                                                           \
        unload(&G);                                                                                          \
    }                                                                                                        \
    END_TEST

MODEL_TEST(check_encoder)
MODEL_TEST(check_encoder_grouped)
MODEL_TEST(check_steps)
MODEL_TEST(check_generate)
MODEL_TEST(check_batch_greedy)
MODEL_TEST(check_midflight)
MODEL_TEST(check_encode_oom)
MODEL_TEST(check_beam_settings)
MODEL_TEST(check_params)

int main(void) {
    Suite *s = suite_create("engine_golden");
    for (int i = 0; i < N_MODELS; i++) { /* one test case per model, named after it */
        TCase *tc = tcase_create(MODELS[i]);
        tcase_set_timeout(tc, 300);
        tcase_add_loop_test(tc, test_check_encoder, i, i + 1);
        tcase_add_loop_test(tc, test_check_encoder_grouped, i, i + 1);
        tcase_add_loop_test(tc, test_check_steps, i, i + 1);
        tcase_add_loop_test(tc, test_check_generate, i, i + 1);
        tcase_add_loop_test(tc, test_check_batch_greedy, i, i + 1);
        tcase_add_loop_test(tc, test_check_midflight, i, i + 1);
        tcase_add_loop_test(tc, test_check_encode_oom, i, i + 1);
        tcase_add_loop_test(tc, test_check_beam_settings, i, i + 1);
        tcase_add_loop_test(tc, test_check_params, i, i + 1);
        suite_add_tcase(s, tc);
    }
    return check_run(s);
}
