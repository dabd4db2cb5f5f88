/* encoder.c - the T5 encoder stack for one input, and the decoder's cross-attention
 * K/V computed once from its output. Projections go through t5_matmul (OpenBLAS
 * sgemm for inputs longer than a few tokens); attention runs one head per work item
 * on the pool, its two products through sgemm. One unpadded input at a time, so no
 * padding mask is needed: a batch of inputs of different lengths gives each the
 * result it gets alone.
 * What it is not: no decoding (decoder.c), no generation (generate.c). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5_internal.h"

typedef struct {
    t5_pool *pool;
    const float *q, *k, *v; /* [n, inner] */
    float *ctx;             /* [n, inner] */
    const float *bias;      /* [heads][2n-1]: bias of relative position j - i at index j - i + n - 1 */
    float *scores;          /* [nth][n, n] */
    int n, heads, dkv, inner;
} enc_att_job;

/* One head per work item: S = Q_h K_h^T + bias, softmax over each row, ctx_h = S V_h. */
static void enc_att_worker(void *arg, int ith, int nth) {
    const enc_att_job *jb = arg;
    int n = jb->n, dkv = jb->dkv, inner = jb->inner;
    float *s = jb->scores + (size_t)ith * n * n;
    (void)nth;
    for (int h; (h = t5_pool_next(jb->pool)) < jb->heads;) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dkv, 1.0f, jb->q + h * dkv, inner,
                    jb->k + h * dkv, inner, 0.0f, s, n);
        for (int i = 0; i < n; i++) {
            float *si = s + (size_t)i * n;
            const float *bias = jb->bias + (size_t)h * (2 * n - 1) + (n - 1 - i);
            for (int j = 0; j < n; j++) si[j] += bias[j];
            t5_softmax_fast(si, n);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dkv, n, 1.0f, s, n, jb->v + h * dkv, inner, 0.0f,
                    jb->ctx + h * dkv, inner);
    }
}

int t5_encoder_forward(const t5_model *m, t5_pool *pool, const int32_t *ids, int n, float *out) {
    const t5_config *c = &m->cfg;
    int d = c->d_model, in = m->inner, ff = c->d_ff, H = c->num_heads, nth = t5_pool_threads(pool);
    size_t nd = (size_t)n * d, ni = (size_t)n * in, nf = (size_t)n * ff;
    float *buf = malloc((nd * 2 + ni * 4 + nf * 2 + (size_t)H * (2 * n - 1) + (size_t)nth * n * n) * sizeof(float));
    if (!buf) return -1;
    float *h = buf, *xn = h + nd, *q = xn + nd, *k = q + ni, *v = k + ni, *ctx = v + ni, *a = ctx + ni,
          *b = a + nf, *bias = b + nf, *scores = bias + (size_t)H * (2 * n - 1);
    for (int i = 0; i < n; i++) memcpy(h + (size_t)i * d, m->shared + (size_t)ids[i] * d, d * sizeof(float));
    for (int rel = -(n - 1); rel <= n - 1; rel++) {
        int bk = t5_rel_bucket(rel, 1, c->num_buckets, c->max_distance);
        for (int hh = 0; hh < H; hh++) bias[(size_t)hh * (2 * n - 1) + rel + n - 1] = m->enc_rel[bk * H + hh];
    }
    for (int l = 0; l < c->num_layers; l++) {
        const t5_block_w *bw = &m->enc[l];
        t5_rmsnorm(xn, h, bw->self.ln, n, d, c->eps);
        t5_mm_out qkv[3] = {{bw->self.q, q, in}, {bw->self.k, k, in}, {bw->self.v, v, in}};
        t5_matmul(m, pool, xn, n, d, qkv, 3);
        enc_att_job jb = {pool, q, k, v, ctx, bias, scores, n, H, c->d_kv, in};
        t5_pool_run(pool, enc_att_worker, &jb);
        t5_mm_out o = {bw->self.o, xn, d};
        t5_matmul(m, pool, ctx, n, in, &o, 1);
        for (size_t i = 0; i < nd; i++) h[i] += xn[i];
        t5_rmsnorm(xn, h, bw->ffn.ln, n, d, c->eps);
        t5_mm_out wi[2] = {{bw->ffn.wi, a, ff}, {bw->ffn.wi1, b, ff}};
        t5_matmul(m, pool, xn, n, d, wi, c->gated ? 2 : 1);
        t5_activate(c->act, a, c->gated ? b : NULL, nf);
        t5_mm_out wo = {bw->ffn.wo, xn, d};
        t5_matmul(m, pool, a, n, ff, &wo, 1);
        for (size_t i = 0; i < nd; i++) h[i] += xn[i];
    }
    t5_rmsnorm(out, h, m->enc_final, n, d, c->eps);
    free(buf);
    return 0;
}

int t5_cross_compute(const t5_model *m, t5_pool *pool, const float *enc, int n, t5_cross_kv *cr) {
    const t5_config *c = &m->cfg;
    size_t per = (size_t)n * m->inner;
    cr->n = n;
    cr->k = malloc((size_t)c->num_decoder_layers * per * sizeof(float));
    cr->v = malloc((size_t)c->num_decoder_layers * per * sizeof(float));
    if (!cr->k || !cr->v) {
        t5_cross_free(cr);
        return -1;
    }
    for (int l = 0; l < c->num_decoder_layers; l++) {
        t5_mm_out kt = {enc, cr->k + l * per, n}; /* K^T [inner, n] = W_k [inner, d] . enc[n, d]^T */
        t5_matmul(m, pool, m->dec[l].cross.k, m->inner, c->d_model, &kt, 1);
        t5_mm_out v = {m->dec[l].cross.v, cr->v + l * per, m->inner};
        t5_matmul(m, pool, enc, n, c->d_model, &v, 1);
    }
    return 0;
}

void t5_cross_free(t5_cross_kv *c) {
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
    c->n = 0;
}

int t5_encode(const t5_model *m, const int32_t *ids, int n, float *out, int n_threads, char *err,
              size_t errlen) {
    if (!m || !ids || !out || n <= 0) {
        snprintf(err, errlen, "t5_encode: empty input");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size) {
            snprintf(err, errlen, "input id %d at position %d is outside the vocabulary (0..%d)", ids[i], i,
                     m->cfg.vocab_size - 1);
            return -1;
        }
    t5_pool *pool = t5_pool_create(n_threads);
    if (!pool || t5_encoder_forward(m, pool, ids, n, out) != 0) {
        t5_pool_free(pool);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t5_pool_free(pool);
    return 0;
}
