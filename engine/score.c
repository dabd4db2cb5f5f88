/* score.c - teacher-forced scoring (t5_score): the encoder once, then the decoder over a
 * given target with its cache, one position per step as generation runs it, and the
 * log-softmax of each step's raw logits. The per-token log-probabilities equal the ones
 * generation reports for the same tokens.
 * What it is not: no token choice (generate.c) and no batching across requests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5_dev.h"

void t5_score_result_free(t5_score_result *r) {
    if (!r) return;
    free(r->logprobs), free(r->argmax), free(r->dist);
    memset(r, 0, sizeof *r);
}

static int check_ids(const t5_model *m, const int32_t *ids, int n, const char *what, char *err,
                     size_t errlen) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size) {
            snprintf(err, errlen, "%s id %d at position %d is outside the vocabulary (0..%d)", what, ids[i],
                     i, m->cfg.vocab_size - 1);
            return -1;
        }
    return 0;
}

int t5_score(const t5_model *m, const int32_t *ids, int n, const int32_t *target, int nt, int32_t start,
             int want_dist, int n_threads, t5_score_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!m || !ids || n <= 0 || !target || nt <= 0) {
        snprintf(err, errlen, "t5_score: the input and the target need at least one token each");
        return -1;
    }
    if (start < 0) start = m->cfg.decoder_start_token_id;
    if (check_ids(m, ids, n, "input", err, errlen) || check_ids(m, target, nt, "target", err, errlen) ||
        check_ids(m, &start, 1, "decoder start", err, errlen))
        return -1;
    int V = m->cfg.vocab_size;
    out->n = nt;
    out->logprobs = malloc((size_t)nt * sizeof *out->logprobs);
    out->argmax = malloc((size_t)nt * sizeof *out->argmax);
    if (want_dist) out->dist = malloc((size_t)nt * V * sizeof *out->dist);
    t5_pool *pool = t5_pool_create(n_threads < 1 ? 1 : n_threads);
    t5_dec_scratch *s = pool ? t5_dec_scratch_create(m, 1, t5_pool_threads(pool)) : NULL;
    float *enc = malloc((size_t)n * m->cfg.d_model * sizeof *enc);
    t5_cross_kv cross = {0};
    t5_kv kv = {0};
    const t5_cross_kv *crp = &cross;
    t5_kv *kvp = &kv;
    int rc = -3;
    if (!out->logprobs || !out->argmax || (want_dist && !out->dist) || !s || !enc ||
        t5_kv_init(m, &kv, nt) != 0)
        goto done;
    t5_cross_kv *crw = &cross;
    if (t5_encoder_forward(m, pool, ids, &n, 1, enc) != 0 || t5_cross_compute(m, pool, enc, &n, 1, &crw) != 0)
        goto done;
    float total = 0;
    for (int i = 0; i < nt; i++) {
        int32_t tok = i ? target[i - 1] : start;
        float *x = t5_decoder_step(m, pool, s, 1, &tok, &kvp, &crp);
        if (!x) goto done;
        /* log_softmax as generation computes its logprobs (batch.c choose_row) */
        float mx = t5_max(x, V), ls = logf((float)t5_sum_exp(x, V, mx));
        out->argmax[i] = t5_argmax(x, V);
        out->logprobs[i] = (x[target[i]] - mx) - ls;
        total += out->logprobs[i];
        if (want_dist) {
            float *d = out->dist + (size_t)i * V;
            for (int v = 0; v < V; v++)
                d[v] = (x[v] - mx) - ls;
        }
    }
    out->total = total;
    rc = 0;
done:
    if (rc) {
        t5_score_result_free(out);
        snprintf(err, errlen, "out of memory scoring %d target tokens", nt);
    }
    t5_cross_free(&cross);
    t5_kv_free(&kv);
    free(enc);
    t5_dec_scratch_free(s);
    t5_pool_free(pool);
    return rc;
}
