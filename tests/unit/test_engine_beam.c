/* test_engine_beam.c - beam search against transformers 5.17 for the settings the
 * fixture goldens leave out: early_stopping false / true / "never" with length_penalty
 * 0.5, 1.0 and 2.0 (4 beams, 4 returned sequences, 24 new tokens), every case of the
 * t5-tiny-gated and t5-tiny-relu fixtures: the same 4 sequences in the same order, and
 * their scores within 1e-4. Expected values: tests/data/beam_goldens.json, made by
 * tools/goldens/mk_beam_goldens.py with transformers (on the accelerator machine).
 * Run from the repository root (tests/run.sh does); fixtures from $FIXTURES. */
#include <cblas.h>
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "t5.h"

static const char *fixtures(void) {
    const char *f = getenv("FIXTURES");
    return f && *f ? f : "../shared/fixtures";
}

static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

static void run_model(const char *name) {
    char path[1024], err[512];
    json_error_t je;
    json_t *want = json_load_file("tests/data/beam_goldens.json", 0, &je);
    ck_assert_msg(want, "cannot read tests/data/beam_goldens.json (run from the repository root): %s", je.text);
    snprintf(path, sizeof path, "%s/models/%s", fixtures(), name);
    t5_model *m = t5_model_load(path, err, sizeof err);
    ck_assert_msg(m, "cannot load %s: %s", path, err);
    snprintf(path, sizeof path, "%s/models/%s.golden.json", fixtures(), name);
    json_t *golden = json_load_file(path, 0, &je);
    ck_assert_msg(golden, "cannot read %s: %s", path, je.text);
    json_t *runs = json_object_get(json_object_get(want, "models"), name), *cases = json_object_get(golden, "cases");
    ck_assert_int_eq((int)json_array_size(runs), 9 * (int)json_array_size(cases)); /* 9 settings per case */
    int never_differs = 0;
    double max_err = 0;
    for (size_t i = 0; i < json_array_size(runs); i++) {
        json_t *run = json_array_get(runs, i), *es = json_object_get(run, "early_stopping");
        int c = (int)json_integer_value(json_object_get(run, "case")), n;
        int32_t *ids = ids_of(json_object_get(json_array_get(cases, (size_t)c), "input_ids"), &n);
        t5_gen_params p;
        t5_gen_default_params(&p);
        p.max_new_tokens = 24, p.num_beams = 4, p.num_return_sequences = 4;
        p.length_penalty = (float)json_number_value(json_object_get(run, "length_penalty"));
        p.early_stopping = json_is_string(es) ? 2 : json_is_true(es);
        never_differs += p.early_stopping == 2;
        t5_result r;
        ck_assert_msg(t5_generate(m, ids, n, &p, 2, &r, err, sizeof err) == 0, "%s", err);
        json_t *seqs = json_object_get(run, "sequences"), *scores = json_object_get(run, "sequences_scores");
        ck_assert_int_eq(r.n_seqs, 4);
        for (int k = 0; k < 4; k++) {
            int wn;
            int32_t *w = ids_of(json_array_get(seqs, (size_t)k), &wn);
            int same = r.seqs[k].n == wn && !memcmp(r.seqs[k].ids, w, (size_t)wn * sizeof *w);
            ck_assert_msg(same, "%s case %d, early_stopping %d, length_penalty %g: sequence %d differs", name, c,
                          p.early_stopping, p.length_penalty, k);
            double e = fabs(r.seqs[k].score - json_number_value(json_array_get(scores, (size_t)k)));
            max_err = e > max_err ? e : max_err;
            ck_assert_msg(e <= 1e-4, "%s case %d: score %d off by %g", name, c, k, e);
            free(w);
        }
        t5_result_free(&r);
        free(ids);
    }
    ck_assert_int_gt(never_differs, 0);
    printf("%s: %zu beam runs equal transformers' (max score error %.2e)\n", name, json_array_size(runs), max_err);
    json_decref(golden);
    json_decref(want);
    t5_model_free(m);
}

START_TEST(gated) { run_model("t5-tiny-gated"); }
END_TEST

START_TEST(relu) { run_model("t5-tiny-relu"); }
END_TEST

int main(void) {
    openblas_set_num_threads(1); /* as t5serve and t5 run it */
    Suite *s = suite_create("engine_beam");
    TCase *tc = tcase_create("transformers");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gated);
    tcase_add_test(tc, relu);
    suite_add_tcase(s, tc);
    return check_run(s);
}
