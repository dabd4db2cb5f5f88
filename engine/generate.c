/* generate.c - token choice as transformers' `generate` makes it: parameter checks
 * and defaults, the logits processors (repetition penalty, no-repeat n-grams,
 * min_new_tokens), the sampling warpers (temperature, top-k, top-p), log-softmax,
 * argmax and seeded sampling. Sampling is safe whatever the scores: a temperature below
 * T5_GREEDY_TEMPERATURE (0 included) is greedy, as llama.cpp makes it (float32 logits
 * divided by it would overflow), and non-finite scores are never drawn as NaN (t5_logits_warp).
 * What it is not: no model calls and no beam bookkeeping (batch.c, beam.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5_private.h"

void t5_gen_default_params(t5_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_new_tokens = 20;
    p->temperature = 1.0f;
    p->top_k = 50;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
    p->num_beams = 1;
    p->num_return_sequences = 1;
    p->length_penalty = 1.0f;
    p->decoder_start_token_id = -1;
    p->eos_token_id = -1;
}

int t5_gen_resolve(const t5_model *m, const t5_gen_params *p, t5_gen_params *o, char *err, size_t errlen) {
    const t5_config *c = &m->cfg;
    *o = *p;
    if (o->decoder_start_token_id < 0) o->decoder_start_token_id = c->decoder_start_token_id;
    if (o->eos_token_id < 0) o->eos_token_id = c->eos_token_id;
#define BAD(...) return snprintf(err, errlen, __VA_ARGS__), T5_ERR_ARG
    if (!c->has_decoder) BAD("the model has no decoder");
    if (o->max_new_tokens < 1 || o->max_new_tokens > 1 << 20) BAD("max_new_tokens must be in [1, 1048576]");
    if (o->min_new_tokens < 0) BAD("min_new_tokens must be >= 0");
    if (o->num_beams < 1 || o->num_beams > T5_MAX_BEAMS) BAD("num_beams must be in [1, %d]", T5_MAX_BEAMS);
    if (o->num_return_sequences < 1) BAD("num_return_sequences must be >= 1");
    if (o->num_beams > 1 && o->num_return_sequences > o->num_beams)
        BAD("num_return_sequences must be <= num_beams");
    if (o->num_beams == 1 && !o->do_sample && o->num_return_sequences > 1)
        BAD("greedy decoding returns one sequence: use num_beams or do_sample for num_return_sequences > 1");
    if (o->num_return_sequences > T5_MAX_BEAMS) BAD("num_return_sequences must be <= %d", T5_MAX_BEAMS);
    if (o->do_sample) {
        if (!(o->temperature >= 0) || !isfinite(o->temperature))
            BAD("temperature must be >= 0 when sampling (below 1e-5: greedy)");
        if (o->top_k < 0) BAD("top_k must be >= 0");
        if (!(o->top_p > 0 && o->top_p <= 1)) BAD("top_p must be in (0, 1]");
    }
    if (!(o->repetition_penalty > 0) || !isfinite(o->repetition_penalty))
        BAD("repetition_penalty must be > 0");
    if (o->no_repeat_ngram_size < 0) BAD("no_repeat_ngram_size must be >= 0");
    if (!(o->length_penalty >= -100 && o->length_penalty <= 100))
        BAD("length_penalty must be in [-100, 100]");
    if (o->early_stopping != T5_EARLY_STOPPING_FALSE && o->early_stopping != T5_EARLY_STOPPING_TRUE &&
        o->early_stopping != T5_EARLY_STOPPING_NEVER)
        BAD("early_stopping must be false, true or \"never\"");
    if (o->decoder_start_token_id >= c->vocab_size || o->eos_token_id >= c->vocab_size)
        BAD("decoder_start_token_id / eos_token_id outside the vocabulary");
#undef BAD
    return T5_OK;
}

int t5_gen_check(const t5_model *m, const t5_gen_params *p, char *err, size_t errlen) {
    t5_gen_params resolved;
    return t5_gen_resolve(m, p, &resolved, err, errlen);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void t5_logits_process(const t5_gen_params *p, float *scores, int V, const int32_t *seq, int len) {
    if (p->repetition_penalty != 1.0f && len > 0) {
        /* gather then scatter: each distinct token is penalised once */
        int32_t small[256], *u = len <= 256 ? small : malloc((size_t)len * sizeof *u);
        if (u) {
            memcpy(u, seq, (size_t)len * sizeof *u);
            qsort(u, (size_t)len, sizeof *u, cmp_i32);
            for (int i = 0; i < len; i++) {
                if ((i && u[i] == u[i - 1]) || u[i] < 0 || u[i] >= V) continue;
                float s = scores[u[i]];
                scores[u[i]] = s < 0 ? s * p->repetition_penalty : s / p->repetition_penalty;
            }
            if (u != small) free(u);
        }
    }
    int n = p->no_repeat_ngram_size;
    if (n > 0 && len + 1 >= n) {
        const int32_t *prefix = seq + len - (n - 1); /* the last n-1 tokens */
        for (int i = 0; i + n <= len; i++)
            if (!memcmp(seq + i, prefix, (size_t)(n - 1) * sizeof *seq) && seq[i + n - 1] >= 0 &&
                seq[i + n - 1] < V)
                scores[seq[i + n - 1]] = -INFINITY;
    }
    if (len - 1 < p->min_new_tokens && p->eos_token_id >= 0 && p->eos_token_id < V)
        scores[p->eos_token_id] = -INFINITY;
}

/* k-th largest (1-based) of a[n], by quickselect on the copy a (reordered). */
static float kth_largest(float *a, int n, int k) {
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float piv = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] > piv)
                i++;
            while (a[j] < piv)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j], a[j] = t;
                i++, j--;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            break;
    }
    return a[want];
}

static int cmp_float_asc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Non-finite scores (a model gone wrong, or a division that overflowed): NaN becomes -inf
 * (never drawn); when some are +inf, those share the draw equally and the rest go. */
static void scores_make_finite(float *x, int V) {
    int pinf = 0;
    for (int i = 0; i < V; i++) {
        if (isnan(x[i])) x[i] = -INFINITY;
        pinf |= x[i] == INFINITY;
    }
    if (pinf)
        for (int i = 0; i < V; i++)
            x[i] = x[i] == INFINITY ? 0.0f : -INFINITY;
}

void t5_logits_warp(const t5_gen_params *p, float *scores, int V, float *tmp, int min_keep) {
    if (p->temperature < T5_GREEDY_TEMPERATURE) { /* greedy: all the mass on the (first) argmax */
        int a = t5_argmax(scores, V);
        for (int i = 0; i < V; i++)
            if (i != a) scores[i] = -INFINITY;
    } else if (p->temperature != 1.0f) {
        for (int i = 0; i < V; i++)
            scores[i] = scores[i] / p->temperature;
    }
    scores_make_finite(scores, V);
    if (p->top_k > 0) {
        int k = p->top_k < V ? p->top_k : V;
        if (k < min_keep) k = min_keep < V ? min_keep : V;
        memcpy(tmp, scores, (size_t)V * sizeof *tmp);
        float th = kth_largest(tmp, V, k);
        for (int i = 0; i < V; i++)
            if (scores[i] < th) scores[i] = -INFINITY;
    }
    if (p->top_p < 1.0f) {
        /* ascending sort of the finite scores (the -inf ones are removed already) */
        int n = 0;
        for (int i = 0; i < V; i++)
            if (scores[i] != -INFINITY) tmp[n++] = scores[i];
        if (n == 0) return;
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_float_asc);
        float *pr = tmp + V;
        memcpy(pr, tmp, (size_t)n * sizeof *pr);
        t5_softmax(pr, n);
        /* remove the sorted prefix whose cumulative probability is <= 1 - top_p, keeping min_keep */
        float cum = 0, thresh = -INFINITY;
        for (int i = 0; i < n - min_keep; i++) {
            cum += pr[i];
            if (cum <= 1.0f - p->top_p)
                thresh = tmp[i];
            else
                break;
        }
        /* scores <= thresh go, but keep ties of the first kept value */
        if (thresh != -INFINITY) {
            int cut = 0;
            while (cut < n && tmp[cut] <= thresh)
                cut++;
            float keep_from = cut < n ? tmp[cut] : INFINITY;
            for (int i = 0; i < V; i++)
                if (scores[i] < keep_from) scores[i] = -INFINITY;
        }
    }
}

void t5_log_softmax(float *x, int V) {
    float mx = t5_max(x, V);
    if (mx == -INFINITY) return;
    float ls = logf((float)t5_sum_exp(x, V, mx));
    for (int i = 0; i < V; i++)
        x[i] = (x[i] - mx) - ls;
}

uint64_t t5_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int t5_sample(const float *scores, int V, uint64_t *rng, float *tmp) {
    memcpy(tmp, scores, (size_t)V * sizeof *tmp);
    t5_softmax(tmp, V);
    double u = (double)(t5_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0), cum = 0;
    int last = -1;
    for (int i = 0; i < V; i++) {
        if (tmp[i] <= 0) continue;
        last = i;
        cum += tmp[i];
        if (u < cum) return i;
    }
    return last >= 0 ? last : t5_argmax(scores, V);
}
