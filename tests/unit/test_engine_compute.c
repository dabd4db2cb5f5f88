/* test_engine_compute.c - teacher-forced scoring and the compute types:
 * - t5_score of each golden greedy sequence ($FIXTURES/models/NAME.golden.json, transformers
 *   5.17 float32) gives, at every step, logprob = the golden's top logit - its logsumexp
 *   within 1e-4 and the golden token as argmax, under auto and float32, for the gated
 *   (float32) and relu (float16, tied) checkpoints; the T5 PEGASUS one ([CLS] start), whose
 *   golden has no logits, gets its golden ids as the argmax of every step; and the logprobs
 *   equal the ones t5_generate reports for the same tokens;
 * - every compute type loads every generative fixture and generates; float32 gives the
 *   golden ids exactly; bfloat16 and int8 stay close to float32 in the teacher-forced
 *   distributions (mean KL bound, argmax agreement), int8 holds one representation per
 *   matrix (its heap is the int8 bytes and row scales, no float copy);
 * - int8 quantization: roundtrip error at most scale / 2 per value, the extreme value exact,
 *   zero rows, and the int8 product against the dequantized float product;
 * - bfloat16 rounding: ties to even, NaN, overflow;
 * - the cross-attention K/V: bf16 under bfloat16 and int8, in the layout the attention reads;
 *   beams (which reorder the self-attention caches) report the logprobs t5_score gives them;
 * - bad arguments to t5_score, t5_compute_type_parse and t5_mats_parse give clear errors. */
#include <check.h>
#include "check_run.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5.h"
#include "t5_dev.h"
#include "tok_testutil.h"

static const char *fixtures(void) {
    return tt_fixtures_dir();
}

static const char *const generative[] = {"t5-tiny-gated", "t5-tiny-relu", "t5-tiny-pegasus"};

static t5_model *load(const char *name, t5_compute_type ct, unsigned int8_float) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/%s", fixtures(), name);
    t5_load_params lp;
    t5_load_default_params(&lp);
    lp.compute_type = ct;
    if (int8_float != ~0u) lp.int8_float = int8_float;
    t5_model *m = t5_model_load_with(path, &lp, err, sizeof err);
    ck_assert_msg(m, "cannot load %s as %s (is FIXTURES=%s right?): %s", path, t5_compute_type_name(ct),
                  fixtures(), err);
    return m;
}

static json_t *golden(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s.golden.json", fixtures(), name);
    json_error_t je;
    json_t *g = json_load_file(path, 0, &je);
    ck_assert_msg(g, "cannot read %s: %s", path, je.text);
    return g;
}

static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

/* the golden's decoder start and eos (T5 PEGASUS: [CLS] / [SEP]), -1: the config's */
static int32_t golden_id(json_t *g, const char *key) {
    json_t *v = json_object_get(g, key);
    return v ? (int32_t)json_integer_value(v) : -1;
}

START_TEST(test_score_goldens) {
    const char *name = generative[_i / 2];
    t5_compute_type ct = _i % 2 ? T5_COMPUTE_FLOAT32 : T5_COMPUTE_AUTO;
    t5_model *m = load(name, ct, ~0u);
    json_t *g = golden(name), *cases = json_object_get(g, "cases");
    int32_t start = golden_id(g, "decoder_start_token_id");
    char err[256];
    double max_err_lp = 0;
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k), *gr = json_object_get(cs, "greedy");
        int n, nt;
        int32_t *ids = ids_of(json_object_get(cs, "input_ids"), &n);
        int32_t *tg = ids_of(json_object_get(gr, "ids"), &nt);
        t5_score_result r;
        ck_assert_msg(t5_score(m, ids, n, tg, nt, start, 0, 2, &r, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(r.n, nt);
        ck_assert_ptr_null(r.dist);
        json_t *steps = json_object_get(gr, "steps"); /* absent in the T5 PEGASUS golden */
        float sum = 0;
        for (int t = 0; t < nt; t++) {
            ck_assert_msg(r.argmax[t] == tg[t], "%s case %zu step %d: argmax %d, golden %d", name, k, t,
                          r.argmax[t], tg[t]);
            sum += r.logprobs[t];
            if (!steps) continue;
            json_t *st = json_array_get(steps, (size_t)t),
                   *top0 = json_array_get(json_object_get(st, "top"), 0);
            ck_assert_int_eq((int)json_integer_value(json_array_get(top0, 0)), tg[t]);
            double want = json_number_value(json_array_get(top0, 1)) -
                          json_number_value(json_object_get(st, "logsumexp"));
            double e = fabs(want - r.logprobs[t]);
            max_err_lp = e > max_err_lp ? e : max_err_lp;
            ck_assert_msg(e <= 1e-4, "%s case %zu step %d: logprob %.7f, transformers %.7f", name, k, t,
                          r.logprobs[t], want);
        }
        ck_assert_float_eq(r.total, sum);
        /* generation reports the same logprobs for the same tokens */
        t5_gen_params p;
        t5_gen_default_params(&p);
        p.max_new_tokens = 24, p.want_logprobs = 1;
        p.decoder_start_token_id = start, p.eos_token_id = golden_id(g, "eos_token_id");
        t5_result res;
        ck_assert_int_eq(t5_generate(m, ids, n, &p, 2, &res, err, sizeof err), 0);
        ck_assert_int_eq(res.seqs[0].n, nt);
        ck_assert_msg(!memcmp(res.seqs[0].logprobs, r.logprobs, (size_t)nt * sizeof(float)),
                      "%s case %zu: t5_score's logprobs differ from t5_generate's", name, k);
        ck_assert_float_eq(res.seqs[0].score, r.total);
        t5_result_free(&res);
        t5_score_result_free(&r);
        free(ids), free(tg);
    }
    fprintf(stderr, "%s %s: t5_score vs transformers, max |logprob error| %.2e\n", name,
            t5_compute_type_name(ct), max_err_lp);
    json_decref(g);
    t5_model_free(m);
}
END_TEST

/* Every compute type loads and generates on every fixture. float32 is exact; bfloat16
 * and int8 (default classes, and everything in int8) score the golden greedy sequence
 * close to float32: mean KL(float32 || type) and argmax agreement within loose bounds
 * (these fixtures are tiny; tools/quality.sh measures the default model). */
START_TEST(test_types_generate) {
    const char *name = generative[_i];
    json_t *g = golden(name), *cases = json_object_get(g, "cases");
    int32_t start = golden_id(g, "decoder_start_token_id"), eos = golden_id(g, "eos_token_id");
    t5_model *ref = load(name, T5_COMPUTE_FLOAT32, ~0u);
    const struct {
        t5_compute_type ct;
        unsigned keep;
        double max_kl, min_agree;
    } types[] = {{T5_COMPUTE_AUTO, ~0u, 0, 1},
                 {T5_COMPUTE_BFLOAT16, ~0u, 0.01, 0.97},
                 {T5_COMPUTE_INT8, ~0u, 0.05, 0.9},
                 {T5_COMPUTE_INT8, 0, 0.2, 0.8}};
    char err[256];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        t5_model *m = load(name, types[ti].ct, types[ti].keep);
        const t5_config *c = t5_model_config(m);
        ck_assert_int_eq(t5_model_load_params(m)->compute_type, types[ti].ct);
        if (types[ti].ct == T5_COMPUTE_INT8) ck_assert_int_gt(m->n_int8, 0);
        double kl = 0;
        long agree = 0, tokens = 0;
        for (size_t k = 0; k < json_array_size(cases); k++) {
            json_t *cs = json_array_get(cases, k);
            int n, nt;
            int32_t *ids = ids_of(json_object_get(cs, "input_ids"), &n);
            int32_t *tg = ids_of(json_object_get(json_object_get(cs, "greedy"), "ids"), &nt);
            t5_gen_params p;
            t5_gen_default_params(&p);
            p.max_new_tokens = 24, p.decoder_start_token_id = start, p.eos_token_id = eos;
            t5_result res;
            ck_assert_int_eq(t5_generate(m, ids, n, &p, 2, &res, err, sizeof err), 0);
            const t5_sequence *s = &res.seqs[0];
            ck_assert(s->n >= 1 && s->n <= 24);
            for (int i = 0; i < s->n; i++)
                ck_assert(s->ids[i] >= 0 && s->ids[i] < c->vocab_size);
            ck_assert(s->finish == T5_FINISH_EOS || s->finish == T5_FINISH_LENGTH);
            if (types[ti].max_kl == 0)
                ck_assert_msg(s->n == nt && !memcmp(s->ids, tg, (size_t)nt * sizeof *tg),
                              "%s %s: case %zu ids differ from transformers", name,
                              t5_compute_type_name(types[ti].ct), k);
            t5_result_free(&res);
            t5_score_result a, b;
            ck_assert_int_eq(t5_score(ref, ids, n, tg, nt, start, 1, 1, &a, err, sizeof err), 0);
            ck_assert_int_eq(t5_score(m, ids, n, tg, nt, start, 1, 1, &b, err, sizeof err), 0);
            for (int t = 0; t < nt; t++) {
                agree += a.argmax[t] == b.argmax[t], tokens++;
                const float *pa = a.dist + (size_t)t * c->vocab_size,
                            *pb = b.dist + (size_t)t * c->vocab_size;
                for (int v = 0; v < c->vocab_size; v++)
                    kl += exp(pa[v]) * ((double)pa[v] - pb[v]);
            }
            t5_score_result_free(&a), t5_score_result_free(&b);
            free(ids), free(tg);
        }
        kl /= (double)tokens;
        fprintf(stderr, "%s %s%s: argmax agreement %ld/%ld, mean KL %.3g\n", name,
                t5_compute_type_name(types[ti].ct), types[ti].keep == 0 ? " (all int8)" : "", agree, tokens,
                kl);
        ck_assert_msg(kl <= types[ti].max_kl + 1e-12, "%s: mean KL %g above %g", name, kl, types[ti].max_kl);
        ck_assert_msg(agree >= types[ti].min_agree * tokens, "%s: agreement %ld/%ld", name, agree, tokens);
        t5_model_free(m);
    }
    t5_model_free(ref);
    json_decref(g);
}
END_TEST

/* The bytes of an int8 matrix [n, k]: panels of 16 columns x k rounded up to 4, and per
 * column (whole panels) and group of 64 k values a float scale and the int32 sum of the group
 * (vpdpbusd's compensation). */
static size_t i8_bytes(size_t n, size_t k) {
    size_t P = (n + 15) / 16;
    return P * 16 * ((k + 3) / 4 * 4) + 2 * P * 16 * ((k + 63) / 64) * 4;
}

/* int8 holds one representation per matrix: with every class int8 on a float32 checkpoint
 * the heap holds exactly the int8 panels, group scales and group sums of the weight matrices. */
START_TEST(test_int8_one_copy) {
    t5_model *m = load("t5-tiny-gated", T5_COMPUTE_INT8, 0);
    const t5_config *c = t5_model_config(m);
    size_t d = (size_t)c->d_model, in = (size_t)m->inner, ff = (size_t)c->d_ff, V = (size_t)c->vocab_size;
    size_t ffn = (c->gated ? 2 : 1) * i8_bytes(ff, d) + i8_bytes(d, ff);
    size_t attn = 3 * i8_bytes(in, d) + i8_bytes(d, in);
    size_t want = (size_t)c->num_layers * (attn + ffn) + (size_t)c->num_decoder_layers * (2 * attn + ffn) +
                  2 * i8_bytes(V, d); /* shared + lm_head */
    ck_assert_int_eq(m->n_int8, c->num_layers * (4 + (c->gated ? 3 : 2)) +
                                    c->num_decoder_layers * (8 + (c->gated ? 3 : 2)) + 2);
    ck_assert_uint_eq(m->owned_bytes, want);
    /* the row lookups read the panels back: q * scale of each row */
    float *row = malloc(d * sizeof *row);
    int8_t *q = malloc(d);
    for (int r = 0; r < (int)V; r += 97) {
        t5_mat_row(&m->shared, (int)d, r, row);
        for (size_t i = 0; i < d; i++) {
            float want_v =
                (float)((const int8_t *)m->shared.p)[(size_t)(r / 16) * ((d + 3) / 4) * 64 + (i / 4) * 64 +
                                                     (size_t)(r % 16) * 4 + i % 4] *
                m->shared.scale[((size_t)(r / 16) * ((d + 63) / 64) + i / 64) * 16 + (size_t)(r % 16)];
            ck_assert_msg(row[i] == want_v, "row %d value %zu", r, i);
        }
    }
    free(row), free(q);
    t5_model_free(m);
}
END_TEST

/* int8's float classes keep 16 bits: a float32 checkpoint's rounded to bfloat16 at load (the
 * values of t5_float_to_bf16, nearest even), a float16 one's as stored; the int8 classes int8
 * and the untied embedding (a row lookup) as stored. */
static void check_rounded(const t5_mat *got, const t5_mat *ref, int dtype) {
    ck_assert_int_eq(got->dtype, dtype);
    float *a = malloc((size_t)got->k * sizeof *a), *b = malloc((size_t)got->k * sizeof *b);
    for (int r = 0; r < got->n; r += 7) {
        t5_mat_row(got, got->k, r, a);
        t5_mat_row(ref, ref->k, r, b);
        for (int i = 0; i < got->k; i++) {
            float want = dtype == ST_BF16 ? t5_widen(ST_BF16, t5_float_to_bf16(b[i])) : b[i];
            ck_assert_msg(a[i] == want, "row %d value %d: %g, want %g", r, i, a[i], want);
        }
    }
    free(a), free(b);
}

/* mat is int8 with 16-bit activations (a16 1: the default's blocks) or 8-bit ones (0: its head) */
static void check_a16(const t5_mat *w, int a16) {
    ck_assert_int_eq(w->dtype, ST_I8);
    ck_assert_int_eq(w->a16, a16);
}

START_TEST(test_int8_float_classes) {
    t5_model *m = load("t5-tiny-gated", T5_COMPUTE_INT8, ~0u);
    const t5_config *c = t5_model_config(m);
    for (int l = 0; l < c->num_layers; l++) { /* the default: every matrix int8, the blocks' a16 */
        const t5_block_w *b = &m->enc[l];
        const t5_mat *e[] = {&b->self.q, &b->self.k,  &b->self.v, &b->self.o,
                             &b->ffn.wi, &b->ffn.wi1, &b->ffn.wo};
        for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
            check_a16(e[i], 1);
    }
    for (int l = 0; l < c->num_decoder_layers; l++) {
        const t5_block_w *b = &m->dec[l];
        const t5_mat *d[] = {&b->self.q,  &b->self.k,  &b->self.v,  &b->self.o, &b->cross.q,
                             &b->cross.k, &b->cross.v, &b->cross.o, &b->ffn.wo};
        for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
            check_a16(d[i], 1);
    }
    check_a16(&m->lm_head, 0);
    ck_assert_int_eq(m->shared.dtype, ST_F32); /* untied, the embedding in float: looked up in place */
    t5_model_free(m);
    m = load("t5-tiny-gated", T5_COMPUTE_INT8, T5_MATS_ENC_WO | T5_MATS_DEC_WO | T5_MATS_QK | T5_MATS_EMBED);
    t5_model *ref = load("t5-tiny-gated", T5_COMPUTE_AUTO, ~0u);
    c = t5_model_config(m);
    for (int l = 0; l < c->num_layers; l++) { /* wo, every q and k, the embedding in float */
        check_rounded(&m->enc[l].ffn.wo, &ref->enc[l].ffn.wo, ST_BF16);
        check_rounded(&m->enc[l].self.q, &ref->enc[l].self.q, ST_BF16);
        check_rounded(&m->enc[l].self.k, &ref->enc[l].self.k, ST_BF16);
        ck_assert_int_eq(m->enc[l].self.v.dtype, ST_I8);
        ck_assert_int_eq(m->enc[l].self.o.dtype, ST_I8);
        ck_assert_int_eq(m->enc[l].ffn.wi.dtype, ST_I8);
    }
    for (int l = 0; l < c->num_decoder_layers; l++) {
        const t5_attn_w *a[2] = {&m->dec[l].self, &m->dec[l].cross},
                        *r[2] = {&ref->dec[l].self, &ref->dec[l].cross};
        for (int i = 0; i < 2; i++) {
            check_rounded(&a[i]->q, &r[i]->q, ST_BF16);
            check_rounded(&a[i]->k, &r[i]->k, ST_BF16);
            ck_assert_int_eq(a[i]->v.dtype, ST_I8);
            ck_assert_int_eq(a[i]->o.dtype, ST_I8);
        }
        check_rounded(&m->dec[l].ffn.wo, &ref->dec[l].ffn.wo, ST_BF16);
    }
    ck_assert_int_eq(m->lm_head.dtype, ST_I8);
    ck_assert_int_eq(m->shared.dtype, ST_F32); /* untied: looked up in place */
    t5_model_free(m), t5_model_free(ref);
    m = load("t5-tiny-relu", T5_COMPUTE_INT8, T5_MATS_ALL), ref = load("t5-tiny-relu", T5_COMPUTE_AUTO, ~0u);
    c = t5_model_config(m);
    for (int l = 0; l < c->num_decoder_layers; l++) {
        check_rounded(&m->dec[l].ffn.wo, &ref->dec[l].ffn.wo, ST_F16);
        check_rounded(&m->dec[l].self.q, &ref->dec[l].self.q, ST_F16);
    }
    check_rounded(&m->shared, &ref->shared, ST_F16); /* tied: the head's panels */
    t5_model_free(m), t5_model_free(ref);
}
END_TEST

START_TEST(test_quantize_roundtrip) {
    enum { K = 333 };
    float x[K], back;
    int8_t q[K];
    uint64_t rng = 7;
    for (int trial = 0; trial < 200; trial++) {
        float amp = (float)ldexp(1.0, (int)(t5_rng_next(&rng) % 40) - 20);
        for (int i = 0; i < K; i++)
            x[i] = amp * (float)((double)(t5_rng_next(&rng) >> 11) / 9007199254740992.0 * 2 - 1);
        if (trial % 3 == 0) x[trial % K] = -2 * amp; /* a negative extreme */
        float s, mx = 0;
        t5_quantize_row_i8(x, K, q, &s);
        for (int i = 0; i < K; i++)
            mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
        ck_assert_float_eq_tol(s, mx / 127.0f, mx * 1e-7f);
        for (int i = 0; i < K; i++) {
            ck_assert(q[i] >= -127 && q[i] <= 127);
            back = (float)q[i] * s;
            ck_assert_msg(fabsf(back - x[i]) <= s * 0.5f * (1 + 1e-5f), "trial %d value %d: %g -> %d x %g",
                          trial, i, x[i], q[i], s);
            if (fabsf(x[i]) == mx) ck_assert_int_eq(abs(q[i]), 127);
        }
    }
    for (int i = 0; i < K; i++)
        x[i] = 0;
    float s = 1;
    t5_quantize_row_i8(x, K, q, &s);
    ck_assert_float_eq(s, 0);
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(q[i], 0);
}
END_TEST

/* The int8 product (t5_matmul with an int8 matrix) equals the product of the dequantized
 * activations and weights (one scale per group of 64 values of a row of each; the int32 sums
 * are exact), and stays within the quantization error bound of the float product:
 * |y - x.w| <= sum_i |x_i| sw_g/2 + |w_i| sx_g/2 + sx_g sw_g/4. */
START_TEST(test_int8_matmul) {
    enum { R = 5, K = 200, N = 37, NG = (K + 63) / 64 };
    static float x[R * K], w[N * K], y[R * N], ws[N * NG], xs[NG];
    static int8_t wq[N * K], xq[K + 4];
    uint64_t rng = 11;
    for (int i = 0; i < R * K; i++)
        x[i] = (float)((double)(t5_rng_next(&rng) >> 11) / 9007199254740992.0 * 2 - 1) * (1 + i % 7);
    for (int i = 0; i < N * K; i++)
        w[i] = (float)((double)(t5_rng_next(&rng) >> 11) / 9007199254740992.0 * 2 - 1) * 0.1f;
    void *buf = aligned_alloc(64, t5_mat_i8_bytes(N, K));
    memset(buf, 0, t5_mat_i8_bytes(N, K));
    t5_mat wm;
    t5_mat_i8_init(&wm, buf, N, K);
    for (int j = 0; j < N; j++) {
        for (int g = 0; g < NG; g++)
            t5_quantize_row_i8(w + (size_t)j * K + 64 * g, K - 64 * g < 64 ? K - 64 * g : 64,
                               wq + (size_t)j * K + 64 * g, &ws[j * NG + g]);
        t5_mat_i8_set(&wm, j, wq + (size_t)j * K, ws + j * NG);
    }
    t5_model m;
    memset(&m, 0, sizeof m);
    t5_load_default_params(&m.lp);
    m.lp.compute_type = T5_COMPUTE_INT8;
    t5_pool *pool = t5_pool_create(2);
    for (m.isa = t5_cpu_isa(T5_ISA_AUTO); m.isa >= T5_ISA_GENERIC; m.isa--) {
        t5_mm_out o = {wm, y, N};
        ck_assert_int_eq(t5_matmul(&m, pool, x, R, K, &o, 1), 0);
        for (int r = 0; r < R; r++) {
            t5_quantize_x_i8(x + (size_t)r * K, K, 1, K, T5K_XQ_S8, 0, xq, K + 4, xs);
            for (int j = 0; j < N; j++) {
                double deq = 0, mag = 0, exact = 0, bound = 0;
                for (int i = 0; i < K; i++) {
                    double sx = xs[i / 64], sw = ws[j * NG + i / 64];
                    deq += (double)xq[i] * wq[(size_t)j * K + i] * sx * sw;
                    mag += fabs((double)xq[i] * wq[(size_t)j * K + i] * sx * sw);
                    exact += (double)x[(size_t)r * K + i] * w[(size_t)j * K + i];
                    bound += fabs(x[(size_t)r * K + i]) * sw / 2 + fabs(w[(size_t)j * K + i]) * sx / 2 +
                             sx * sw / 4;
                }
                double got = y[(size_t)r * N + j];
                ck_assert_msg(fabs(got - deq) <= 1e-6 * (mag + 1e-3), "isa %d: %g vs dequantized %g",
                              (int)m.isa, got, deq);
                ck_assert_msg(fabs(got - exact) <= bound, "isa %d: %g vs float %g beyond %g", (int)m.isa, got,
                              exact, bound);
            }
        }
    }
    t5_pool_free(pool);
    free(buf);
}
END_TEST

static float bits_float(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

START_TEST(test_bf16_rounding) {
    ck_assert_uint_eq(t5_float_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(t5_float_to_bf16(bits_float(0x3f808000u)), 0x3f80); /* tie: to even (down) */
    ck_assert_uint_eq(t5_float_to_bf16(bits_float(0x3f818000u)), 0x3f82); /* tie: to even (up) */
    ck_assert_uint_eq(t5_float_to_bf16(bits_float(0x3f808001u)), 0x3f81); /* above the tie */
    ck_assert_uint_eq(t5_float_to_bf16(-2.0f), 0xc000);
    ck_assert_uint_eq(t5_float_to_bf16(bits_float(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to inf */
    ck_assert_uint_eq(t5_float_to_bf16(INFINITY), 0x7f80);
    uint16_t n = t5_float_to_bf16(NAN);
    ck_assert((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    ck_assert_uint_eq(t5_float_to_bf16(bits_float(0x7f800001u)) & 0x7f, 0x40); /* a NaN stays a NaN */
}
END_TEST

/* The cross-attention K/V under bfloat16 and int8 are bf16, element for element the rounded
 * float32 projections of the encoder output (the same products), where t5_cross_kop / vop say:
 * column c of step k at (c / 16) * gs + k * ks + c % 16, the padding of the last key panel and
 * of V's rows zero; float32 and auto keep them float32. */
START_TEST(test_cross_kv_types) {
    const t5_compute_type cts[] = {T5_COMPUTE_AUTO, T5_COMPUTE_BFLOAT16, T5_COMPUTE_INT8};
    for (size_t ti = 0; ti < sizeof cts / sizeof cts[0]; ti++) {
        t5_model *m = load("t5-tiny-gated", cts[ti], ~0u);
        const t5_config *c = t5_model_config(m);
        int dt = m->cache_dtype, in = m->inner, dkv = c->d_kv, n = 21; /* a partial last key panel */
        ck_assert_int_eq(dt, cts[ti] == T5_COMPUTE_AUTO ? ST_F32 : ST_BF16);
        int32_t ids[21];
        for (int i = 0; i < n; i++)
            ids[i] = 3 + 7 * i;
        t5_pool *pool = t5_pool_create(2);
        float *enc = malloc((size_t)n * c->d_model * sizeof *enc), *kf = malloc((size_t)n * in * sizeof *kf),
              *vf = malloc((size_t)n * in * sizeof *vf);
        ck_assert_int_eq(t5_encoder_forward(m, pool, ids, &n, 1, enc), 0);
        t5_cross_kv cross, *crw = &cross;
        ck_assert_int_eq(t5_cross_compute(m, pool, enc, &n, 1, &crw), 0);
        ck_assert_int_eq(cross.n, n);
        for (int l = 0; l < c->num_decoder_layers; l++) {
            t5_mm_out kv[2] = {{m->dec[l].cross.k, kf, in}, {m->dec[l].cross.v, vf, in}};
            ck_assert_int_eq(t5_matmul(m, pool, enc, n, c->d_model, kv, 2), 0);
            for (int h = 0; h < c->num_heads; h++) {
                t5k_bop ko = t5_cross_kop(m, &cross, l, h), vo = t5_cross_vop(m, &cross, l, h);
                ck_assert_int_eq(ko.dtype, dt);
                ck_assert_int_eq(vo.dtype, dt);
                /* K^T [dkv, keys padded to 16]; V [n, ldv] */
                for (int e = 0; e < dkv; e++)
                    for (int t = 0; t < (n + 15) / 16 * 16; t++) {
                        size_t i = (size_t)(t / 16) * ko.gs + (size_t)e * ko.ks + t % 16;
                        float want = t < n ? kf[(size_t)t * in + h * dkv + e] : 0.0f;
                        float got = dt == ST_F32 ? ((const float *)ko.p)[i]
                                                 : t5_widen(ST_BF16, ((const uint16_t *)ko.p)[i]);
                        if (dt == ST_BF16) want = t5_widen(ST_BF16, t5_float_to_bf16(want));
                        ck_assert_msg(got == want, "%s layer %d head %d: K of key %d, element %d: %g, not %g",
                                      t5_compute_type_name(cts[ti]), l, h, t, e, got, want);
                    }
                ck_assert_int_eq((int)vo.ks, t5_cache_ldv(m));
                for (int t = 0; t < n; t++)
                    for (int e = 0; e < t5_cache_ldv(m); e++) {
                        size_t i = (size_t)(e / 16) * vo.gs + (size_t)t * vo.ks + e % 16;
                        float want = e < dkv ? vf[(size_t)t * in + h * dkv + e] : 0.0f;
                        float got = dt == ST_F32 ? ((const float *)vo.p)[i]
                                                 : t5_widen(ST_BF16, ((const uint16_t *)vo.p)[i]);
                        if (dt == ST_BF16) want = t5_widen(ST_BF16, t5_float_to_bf16(want));
                        ck_assert_msg(got == want, "%s layer %d head %d: V of key %d, element %d: %g, not %g",
                                      t5_compute_type_name(cts[ti]), l, h, t, e, got, want);
                    }
            }
        }
        t5_cross_free(&cross);
        free(enc), free(kf), free(vf);
        t5_pool_free(pool);
        t5_model_free(m);
    }
}
END_TEST

/* Beam search under every compute type: the hypotheses reorder the rows' self-attention caches
 * (t5_kv_copy; bf16 under bfloat16 and int8), and each returned sequence's per-token logprobs are
 * the ones t5_score gives it teacher-forced, on a cache of its own, bit for bit (each value of a
 * row depends on nothing else in the batch). */
START_TEST(test_beam_caches) {
    const t5_compute_type cts[] = {T5_COMPUTE_AUTO, T5_COMPUTE_BFLOAT16, T5_COMPUTE_INT8};
    json_t *g = golden("t5-tiny-gated"), *cases = json_object_get(g, "cases");
    char err[256];
    for (size_t ti = 0; ti < sizeof cts / sizeof cts[0]; ti++) {
        t5_model *m = load("t5-tiny-gated", cts[ti], ~0u);
        for (size_t k = 0; k < json_array_size(cases); k++) {
            int n;
            int32_t *ids = ids_of(json_object_get(json_array_get(cases, k), "input_ids"), &n);
            t5_gen_params p;
            t5_gen_default_params(&p);
            p.max_new_tokens = 20, p.num_beams = 4, p.num_return_sequences = 3, p.want_logprobs = 1;
            t5_result res;
            ck_assert_int_eq(t5_generate(m, ids, n, &p, 2, &res, err, sizeof err), 0);
            ck_assert_int_eq(res.n_seqs, 3);
            for (int b = 0; b < res.n_seqs; b++) {
                const t5_sequence *sq = &res.seqs[b];
                t5_score_result sc;
                ck_assert_int_eq(t5_score(m, ids, n, sq->ids, sq->n, -1, 0, 1, &sc, err, sizeof err), 0);
                for (int t = 0; t < sq->n; t++)
                    ck_assert_msg(sq->logprobs[t] == sc.logprobs[t],
                                  "%s case %zu beam %d token %d: logprob %.9g, scored %.9g",
                                  t5_compute_type_name(cts[ti]), k, b, t, sq->logprobs[t], sc.logprobs[t]);
                t5_score_result_free(&sc);
            }
            t5_result_free(&res);
            free(ids);
        }
        t5_model_free(m);
    }
    json_decref(g);
}
END_TEST

START_TEST(test_bad_args) {
    t5_model *m = load("t5-tiny-gated", T5_COMPUTE_AUTO, ~0u);
    char err[256];
    t5_score_result r;
    int32_t ids[2] = {5, 1}, bad[2] = {5, 99999};
    ck_assert_int_eq(t5_score(m, ids, 2, bad, 2, -1, 0, 1, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "target id 99999 at position 1"), "%s", err);
    ck_assert_ptr_null(r.logprobs);
    ck_assert_int_eq(t5_score(m, bad, 2, ids, 2, -1, 0, 1, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "input id 99999"), "%s", err);
    ck_assert_int_eq(t5_score(m, ids, 2, ids, 0, -1, 0, 1, &r, err, sizeof err), -1);
    ck_assert_int_eq(t5_score(m, ids, 2, ids, 2, 99999, 0, 1, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "decoder start"), "%s", err);
    t5_model_free(m);
    t5_compute_type t;
    ck_assert_int_eq(t5_compute_type_parse("int8", &t), 0);
    ck_assert_int_eq(t, T5_COMPUTE_INT8);
    ck_assert_int_eq(t5_compute_type_parse("bf16", &t), 0);
    ck_assert_int_eq(t, T5_COMPUTE_BFLOAT16);
    ck_assert_int_eq(t5_compute_type_parse("int4", &t), -1);
    ck_assert_str_eq(t5_compute_type_name(T5_COMPUTE_FLOAT32), "float32");
    unsigned b;
    ck_assert_int_eq(t5_mats_parse(T5_INT8_FLOAT_DEFAULT_NAMES, &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_INT8_FLOAT_DEFAULT);
    ck_assert_int_eq(t5_mats_parse(T5_INT8_A16_DEFAULT_NAMES, &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_INT8_A16_DEFAULT);
    ck_assert_int_eq(t5_mats_parse("layers,head", &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_MATS_ALL & ~T5_MATS_EMBED);
    ck_assert_int_eq(t5_mats_parse("wo,head", &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_MATS_ENC_WO | T5_MATS_DEC_WO | T5_MATS_HEAD);
    ck_assert_int_eq(t5_mats_parse("dec-self,enc-vo", &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_MATS_DEC_SELF_QK | T5_MATS_DEC_SELF_VO | T5_MATS_ENC_VO);
    ck_assert_int_eq(t5_mats_parse("qk,vo,wi,wo,head,embed", &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_MATS_ALL);
    ck_assert_int_eq(t5_mats_parse("attn", &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, T5_MATS_QK | T5_MATS_ENC_VO | T5_MATS_DEC_SELF_VO | T5_MATS_DEC_CROSS_VO);
    ck_assert_int_eq(t5_mats_parse("", &b, err, sizeof err), 0);
    ck_assert_uint_eq(b, 0);
    ck_assert_int_eq(t5_mats_parse("wo,heads", &b, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown matrix class 'heads'"), "%s", err);
    t5_load_params lp;
    t5_load_default_params(&lp);
    lp.compute_type = (t5_compute_type)9;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/t5-tiny-gated", fixtures());
    ck_assert_ptr_null(t5_model_load_with(path, &lp, err, sizeof err));
    ck_assert_msg(strstr(err, "unknown compute type 9"), "%s", err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("engine_compute");
    TCase *tc = tcase_create("compute");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_score_goldens, 0, 6);
    tcase_add_loop_test(tc, test_types_generate, 0, 3);
    tcase_add_test(tc, test_int8_one_copy);
    tcase_add_test(tc, test_int8_float_classes);
    tcase_add_test(tc, test_quantize_roundtrip);
    tcase_add_test(tc, test_int8_matmul);
    tcase_add_test(tc, test_bf16_rounding);
    tcase_add_test(tc, test_cross_kv_types);
    tcase_add_test(tc, test_beam_caches);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return check_run(s);
}
