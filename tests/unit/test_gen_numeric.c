/* test_gen_numeric.c - the engine's token choice at numeric edges (issue 17), without a model:
 *   - t5_logits_warp + t5_sample never draw a NaN score; scores that overflowed to +inf share
 *     the draw (each drawn about equally often) and nothing else is drawn; a temperature below
 *     T5_GREEDY_TEMPERATURE (denormal 1e-39, 0) draws the argmax only (llama.cpp's rule);
 *   - t5_beam_key orders (sum, len) pairs as the length-normalised score sum / len^lp does in
 *     double arithmetic (transformers' BeamHypotheses), for lp from -100 to 100, where float32
 *     overflows; and where float32 holds the score it is exactly the float32 score's order and
 *     value (t5_beam_key_score gives that float back bit for bit). */
#include <check.h>
#include "check_run.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "t5.h"
#include "t5_dev.h"

#define V 64

static void sampling_params(t5_gen_params *p, float temperature) {
    t5_gen_default_params(p);
    p->do_sample = 1;
    p->temperature = temperature;
}

START_TEST(sampler_never_draws_nan) {
    float tmp[3 * V];
    uint64_t rng = 1;
    int count[V] = {0};
    for (int d = 0; d < 4000; d++) {
        float x[V];
        for (int i = 0; i < V; i++)
            x[i] = i % 3 ? NAN : (float)(i % 7) - 3.0f; /* two thirds NaN */
        t5_gen_params p;
        sampling_params(&p, 1.0f);
        p.top_k = 0;
        t5_logits_warp(&p, x, V, tmp, 1);
        int t = t5_sample(x, V, &rng, tmp);
        ck_assert_int_ge(t, 0);
        ck_assert_int_lt(t, V);
        count[t]++;
    }
    for (int i = 0; i < V; i++)
        if (i % 3) ck_assert_msg(count[i] == 0, "drew id %d, whose score is NaN", i);
}
END_TEST

START_TEST(infinite_scores_share_the_draw) {
    float tmp[3 * V];
    uint64_t rng = 7;
    int count[V] = {0};
    const int draws = 6000;
    for (int d = 0; d < draws; d++) {
        float x[V];
        for (int i = 0; i < V; i++)
            x[i] = (float)i;
        x[5] = x[40] = x[63] = INFINITY; /* e.g. a tiny repetition_penalty dividing positive logits */
        x[9] = NAN;
        t5_gen_params p;
        sampling_params(&p, 0.7f);
        t5_logits_warp(&p, x, V, tmp, 1);
        count[t5_sample(x, V, &rng, tmp)]++;
    }
    ck_assert_int_eq(count[5] + count[40] + count[63], draws);
    for (int i = 0; i < 3; i++) { /* each about a third: 5 standard deviations */
        int c = i == 0 ? count[5] : i == 1 ? count[40] : count[63];
        ck_assert_msg(fabs(c - draws / 3.0) < 5 * sqrt(draws * (1 / 3.0) * (2 / 3.0)), "count %d", c);
    }
}
END_TEST

START_TEST(tiny_temperature_is_greedy) {
    float tmp[3 * V];
    const float temps[] = {1e-39f, 0.0f, 1e-6f};
    for (size_t k = 0; k < sizeof temps / sizeof temps[0]; k++) {
        uint64_t rng = 3;
        for (int d = 0; d < 200; d++) {
            float x[V];
            for (int i = 0; i < V; i++)
                x[i] = sinf((float)(i * 7 + d)) * 3.0f; /* logits of float32 size: /1e-39 overflows */
            int want = t5_argmax(x, V);
            t5_gen_params p;
            sampling_params(&p, temps[k]);
            t5_logits_warp(&p, x, V, tmp, 1);
            ck_assert_int_eq(t5_sample(x, V, &rng, tmp), want);
        }
    }
}
END_TEST

START_TEST(beam_key_orders_as_double_scores) {
    const float lps[] = {-100, -20, -5, -1, 0, 0.5f, 1, 2, 20, 100};
    const float sums[] = {-0.001f, -0.5f, -1.9f, -3, -24.5f, -27, -100, -1e4f};
    for (size_t a = 0; a < sizeof lps / sizeof lps[0]; a++) {
        float lp = lps[a];
        for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++)
            for (int li = 1; li <= 300; li += 13)
                for (size_t j = 0; j < sizeof sums / sizeof sums[0]; j++)
                    for (int lj = 1; lj <= 300; lj += 17) {
                        /* log of the magnitude of sum / len^lp, in double: no overflow */
                        double mi = log(-(double)sums[i]) - lp * log((double)li);
                        double mj = log(-(double)sums[j]) - lp * log((double)lj);
                        if (fabs(mi - mj) < 1e-5) continue; /* a near tie: float32 may round either way */
                        double ki = t5_beam_key(sums[i], li, lp), kj = t5_beam_key(sums[j], lj, lp);
                        ck_assert_msg((mi < mj) == (ki > kj), "lp %g: (%g, %d) vs (%g, %d)", lp, sums[i], li,
                                      sums[j], lj);
                    }
    }
    /* where float32 holds the score: transformers 5's float32 value, exactly */
    for (int len = 1; len <= 40; len++) {
        float want = -24.5f / (float)pow(len, 2.0);
        ck_assert(t5_beam_key_score(t5_beam_key(-24.5f, len, 2.0f)) == want);
        want = -3.0f / (float)pow(len, -1.0);
        ck_assert(t5_beam_key_score(t5_beam_key(-3.0f, len, -1.0f)) == want);
    }
    ck_assert(t5_beam_key(0, 5, 1) == INFINITY);
    ck_assert(t5_beam_key(-INFINITY, 5, 1) == -INFINITY);
    ck_assert(t5_beam_key(NAN, 5, 1) == -INFINITY);
    ck_assert(t5_beam_key_score(t5_beam_key(-5, 300, -100)) == -FLT_MAX);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gen_numeric");
    TCase *tc = tcase_create("numeric");
    tcase_add_test(tc, sampler_never_draws_nan);
    tcase_add_test(tc, infinite_scores_share_the_draw);
    tcase_add_test(tc, tiny_temperature_is_greedy);
    tcase_add_test(tc, beam_key_orders_as_double_scores);
    suite_add_tcase(s, tc);
    return check_run(s);
}
