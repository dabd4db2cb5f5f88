/* beam.c - beam search for one input, step by step, as transformers 5's vectorised
 * `_beam_search` does it (float32 scores, the 2*num_beams candidate pool, the -1e9
 * masks of the running beams, length-normalised finished hypotheses, the early-stop
 * heuristic). The caller runs the model on the B running beams and reorders their KV
 * caches by b->parent after each step. Finished hypotheses are ranked by a key
 * (t5_beam_key) that is transformers' float32 score wherever float32 holds it and its
 * log-space value beyond (a large |length_penalty|), and masked candidates are left out
 * rather than pushed down by -1e9, so that scores below -1e9 still rank (BeamHypotheses'
 * order).
 * What it is not: no model calls, no KV caches (batch.c owns them). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "t5_private.h"

int t5_beam_init(t5_beam *b, int B, int V, int max_len, int32_t start) {
    memset(b, 0, sizeof *b);
    b->B = B, b->V = V, b->max_len = max_len, b->cur_len = 1, b->heur = 1;
    size_t bl = (size_t)B * max_len;
    b->tok = calloc(bl, sizeof *b->tok);
    b->lpr = calloc(bl, sizeof *b->lpr);
    b->score = malloc((size_t)B * sizeof *b->score);
    b->ftok = calloc(bl, sizeof *b->ftok);
    b->flpr = calloc(bl, sizeof *b->flpr);
    b->fkey = malloc((size_t)B * sizeof *b->fkey);
    b->ffin = calloc((size_t)B, sizeof *b->ffin);
    b->flen = calloc((size_t)B, sizeof *b->flen);
    b->parent = calloc((size_t)B, sizeof *b->parent);
    b->tmp_tok = calloc(3 * bl, sizeof *b->tmp_tok);
    b->tmp_lpr = calloc(3 * bl, sizeof *b->tmp_lpr);
    b->work = malloc((size_t)(B + 2) * V * sizeof *b->work);
    if (!b->tok || !b->lpr || !b->score || !b->ftok || !b->flpr || !b->fkey || !b->ffin || !b->flen ||
        !b->parent || !b->tmp_tok || !b->tmp_lpr || !b->work) {
        t5_beam_free(b);
        return -1;
    }
    for (int i = 0; i < B; i++) {
        b->tok[(size_t)i * max_len] = start;
        b->score[i] = i ? -1e9f : 0.0f;
        b->fkey[i] = -INFINITY; /* an empty slot */
    }
    return 0;
}

void t5_beam_free(t5_beam *b) {
    free(b->tok), free(b->lpr), free(b->score), free(b->ftok), free(b->flpr), free(b->fkey);
    free(b->ffin), free(b->flen), free(b->parent), free(b->tmp_tok), free(b->tmp_lpr), free(b->work);
    memset(b, 0, sizeof *b);
}

int t5_beam_scratch_init(t5_beam_scratch *s, int max_beams) {
    memset(s, 0, sizeof *s);
    size_t B = (size_t)max_beams, K = 2 * B;
    s->cval = malloc(K * sizeof *s->cval);
    s->cmodel = malloc(K * sizeof *s->cmodel);
    s->radj = malloc(K * sizeof *s->radj);
    s->merged = malloc((B + K) * sizeof *s->merged);
    s->nkey = malloc(B * sizeof *s->nkey);
    s->nscore = malloc(B * sizeof *s->nscore);
    s->cidx = malloc(K * sizeof *s->cidx);
    s->chit = malloc(K * sizeof *s->chit);
    s->order = malloc(B * sizeof *s->order);
    s->nfin = malloc(B * sizeof *s->nfin);
    s->nlen = malloc(B * sizeof *s->nlen);
    if (!s->cval || !s->cmodel || !s->radj || !s->merged || !s->nkey || !s->nscore || !s->cidx || !s->chit ||
        !s->order || !s->nfin || !s->nlen) {
        t5_beam_scratch_free(s);
        return -1;
    }
    s->max_beams = max_beams;
    return 0;
}

void t5_beam_scratch_free(t5_beam_scratch *s) {
    free(s->cval), free(s->cmodel), free(s->radj), free(s->merged), free(s->nkey), free(s->nscore);
    free(s->cidx), free(s->chit), free(s->order), free(s->nfin), free(s->nlen);
    memset(s, 0, sizeof *s);
}

double t5_beam_key(float sum, int len, float length_penalty) {
    if (!(sum < 0)) return sum == 0 ? INFINITY : -INFINITY; /* NaN: never ranked */
    if (isinf(sum)) return -INFINITY;
    float den = (float)pow((double)len, (double)length_penalty);
    if (isnormal(den)) {
        float q = sum / den; /* transformers 5: float32 scores / (len ** length_penalty) */
        if (isnormal(q)) return -log(-(double)q);
    }
    return (double)length_penalty * log((double)len) - log(-(double)sum);
}

float t5_beam_key_score(double key) {
    if (key == INFINITY) return 0;
    double s = -exp(-key);
    return s < -FLT_MAX ? -FLT_MAX : (float)s;
}

/* Indices of the k largest of v[n], best first; ties keep the lower index first. */
static void top_k(const double *v, int n, int k, int *idx) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == k && !(v[i] > v[idx[m - 1]])) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && v[i] > v[idx[j - 1]])
            idx[j] = idx[j - 1], j--;
        idx[j] = i;
    }
}

int t5_beam_step(t5_beam *b, const t5_gen_params *p, float *logits, uint64_t *rng, t5_beam_scratch *s) {
    int B = b->B, V = b->V, K = 2 * B, L = b->max_len, cur = b->cur_len;
    if (B > s->max_beams) return 0; /* the batch sizes s for its rows */
    float *cval = s->cval, *cmodel = s->cmodel, *nscore = s->nscore;
    double *merged = s->merged, *radj = s->radj, *nkey = s->nkey;
    int *cidx = s->cidx, *chit = s->chit, *order = s->order, *nfin = s->nfin, *nlen = s->nlen;
    /* a. log_softmax, processors, + running score; keep the K best of B*V */
    int m = 0;
    for (int bi = 0; bi < B; bi++) {
        float *x = logits + (size_t)bi * V;
        t5_log_softmax(x, V);
        float *model = b->work + (size_t)bi * V; /* model log-probs before processors */
        memcpy(model, x, (size_t)V * sizeof *model);
        t5_logits_process(p, x, V, b->tok + (size_t)bi * L, cur);
        if (p->do_sample) t5_logits_warp(p, x, V, b->work + (size_t)B * V, 2);
        for (int v = 0; v < V; v++)
            x[v] += b->score[bi];
        if (p->do_sample) continue;
        for (int v = 0; v < V; v++) { /* merge this beam's values into the running top-K */
            float xv = x[v];
            if (m == K && !(xv > cval[m - 1])) continue;
            int j = m < K ? m++ : K - 1;
            while (j > 0 && xv > cval[j - 1]) {
                cval[j] = cval[j - 1], cidx[j] = cidx[j - 1];
                j--;
            }
            cval[j] = xv, cidx[j] = bi * V + v;
        }
    }
    if (p->do_sample) {
        /* multinomial without replacement over softmax of the accumulated scores, in draw order */
        size_t N = (size_t)B * V;
        float mx = -INFINITY;
        for (size_t i = 0; i < N; i++)
            mx = logits[i] > mx ? logits[i] : mx;
        for (m = 0; m < K; m++) {
            double tot = 0;
            for (size_t i = 0; i < N; i++)
                tot += logits[i] == -INFINITY ? 0 : exp((double)logits[i] - mx);
            if (!(tot > 0)) break;
            double u = (double)(t5_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0) * tot, c = 0;
            size_t pick = N;
            for (size_t i = 0; i < N; i++) {
                if (logits[i] == -INFINITY) continue;
                c += exp((double)logits[i] - mx);
                pick = i;
                if (u < c) break;
            }
            if (pick == N) break;
            cval[m] = logits[pick], cidx[m] = (int)pick;
            logits[pick] = -INFINITY;
        }
        for (int i = m; i < K; i++)
            cval[i] = -INFINITY, cidx[i] = 0;
        m = K;
    }
    for (int c = 0; c < m; c++)
        cmodel[c] = b->work[cidx[c]];
    int all_hit = 1;
    for (int c = 0; c < m; c++) {
        int tok = cidx[c] % V;
        chit[c] = tok == p->eos_token_id || cur + 1 >= L;
        all_hit &= chit[c];
    }
    /* b. finished hypotheses: merge the old B with the K candidates, keep the B best */
    int all_fin = 1;
    for (int i = 0; i < B; i++)
        all_fin &= b->ffin[i];
    for (int i = 0; i < B; i++)
        merged[i] = b->fkey[i];
    for (int c = 0; c < m; c++) { /* masked: all finished with early stopping, heuristic met, not eligible */
        int masked =
            (all_fin && p->early_stopping == T5_EARLY_STOPPING_TRUE) || !b->heur || !(chit[c] && c < B);
        merged[B + c] = masked ? -INFINITY : t5_beam_key(cval[c], cur, p->length_penalty);
    }
    top_k(merged, B + m, B, order);
    int32_t *ntok = b->tmp_tok;
    float *nlpr = b->tmp_lpr;
    for (int i = 0; i < B; i++) {
        int o = order[i];
        int32_t *dt = ntok + (size_t)i * L;
        float *dl = nlpr + (size_t)i * L;
        if (o < B) {
            memcpy(dt, b->ftok + (size_t)o * L, (size_t)L * sizeof *dt);
            memcpy(dl, b->flpr + (size_t)o * L, (size_t)L * sizeof *dl);
            nfin[i] = b->ffin[o], nlen[i] = b->flen[o];
        } else {
            int c = o - B, par = cidx[c] / V;
            memcpy(dt, b->tok + (size_t)par * L, (size_t)cur * sizeof *dt);
            memcpy(dl, b->lpr + (size_t)par * L, (size_t)cur * sizeof *dl);
            dt[cur] = cidx[c] % V, dl[cur] = cmodel[c];
            nfin[i] = chit[c] && c < B, nlen[i] = cur + 1;
        }
        nkey[i] = merged[o];
    }
    memcpy(b->ftok, ntok, (size_t)B * L * sizeof *ntok);
    memcpy(b->flpr, nlpr, (size_t)B * L * sizeof *nlpr);
    for (int i = 0; i < B; i++)
        b->fkey[i] = nkey[i], b->ffin[i] = nfin[i], b->flen[i] = nlen[i];
    /* c. running beams: the B best candidates that did not stop */
    for (int c = 0; c < m; c++)
        radj[c] = cval[c] + (chit[c] ? -1.0e9f : 0.0f); /* float arithmetic, held as double */
    top_k(radj, m, B, order);
    for (int i = 0; i < B; i++) {
        int c = order[i], par = cidx[c] / V;
        int32_t *dt = ntok + (size_t)i * L;
        float *dl = nlpr + (size_t)i * L;
        memcpy(dt, b->tok + (size_t)par * L, (size_t)cur * sizeof *dt);
        memcpy(dl, b->lpr + (size_t)par * L, (size_t)cur * sizeof *dl);
        dt[cur] = cidx[c] % V, dl[cur] = cmodel[c];
        nscore[i] = (float)radj[c];
        b->parent[i] = par;
    }
    for (int i = 0; i < B; i++) {
        memcpy(b->tok + (size_t)i * L, ntok + (size_t)i * L, (size_t)(cur + 1) * sizeof *ntok);
        memcpy(b->lpr + (size_t)i * L, nlpr + (size_t)i * L, (size_t)(cur + 1) * sizeof *nlpr);
        b->score[i] = nscore[i];
    }
    b->cur_len = ++cur;
    /* d. early-stop heuristic and the loop condition; "never" with a positive length penalty
     * judges the best running beam at the longest length it could still reach */
    int hyp_len = p->early_stopping == T5_EARLY_STOPPING_NEVER && p->length_penalty > 0 ? L - 1 : cur - 1;
    double best = t5_beam_key(b->score[0], hyp_len, p->length_penalty);
    double fmin = b->fkey[0];
    all_fin = 1;
    for (int i = 0; i < B; i++) {
        fmin = b->fkey[i] < fmin ? b->fkey[i] : fmin;
        all_fin &= b->ffin[i];
    }
    /* an empty slot can always be improved on (BeamHypotheses.is_done: fewer than B) */
    b->heur = b->heur && (!all_fin || best > fmin);
    return b->heur && !(all_fin && p->early_stopping == T5_EARLY_STOPPING_TRUE) && !all_hit;
}
