/* encoder.c - the T5 encoder stack for one or several inputs at once, and the
 * decoder's cross-attention K/V computed once from its output. The inputs' tokens
 * go through every projection together (t5_matmul: one product over all of them, so
 * each weight matrix is streamed once per group, not once per input);
 * attention runs per (input, head) on the pool, its two products (QK^T, PV) through
 * the same kernel as the projections (t5_gemm).
 * No padding: each input attends over its own tokens only, so it gets the result it
 * would get alone, bit for bit (t5_matmul's result for a row does not depend on the
 * other rows).
 * What it is not: no decoding (decoder.c), no generation (generate.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5_dev.h"

typedef struct {
    t5_pool *pool;
    t5_isa isa;
    const float *q, *k, *v; /* [T, inner] all inputs' tokens */
    float *ctx;             /* [T, inner] */
    const int *lens, *offs; /* [n_inputs] each input's length and first row */
    const float *bias;      /* [heads][2 nmax - 1]: bias of relative position j - i at j - i + nmax - 1 */
    float *scores;          /* [nth][ATT_ROWS, nmax] */
    float *kt;              /* [nth][d_kv, nmax] one head's keys transposed */
    int n_inputs, nmax, heads, dkv, inner;
} enc_att_job;

enum { ATT_ROWS = 64 }; /* query rows per block: the scores scratch grows with n, not n^2 */

/* One (input, head) per work item, in blocks of query rows: S = Q_h K_h^T + bias,
 * softmax over each row, ctx_h = S V_h (K_h transposed first: B operands are [K, N]). */
static void enc_att_worker(void *arg, int ith, int nth) {
    const enc_att_job *jb = arg;
    int dkv = jb->dkv, inner = jb->inner, nmax = jb->nmax;
    float *s = jb->scores + (size_t)ith * ATT_ROWS * nmax, *kt = jb->kt + (size_t)ith * dkv * nmax;
    (void)nth;
    for (int item; (item = t5_pool_next(jb->pool)) < jb->n_inputs * jb->heads;) {
        int in = item / jb->heads, h = item % jb->heads, n = jb->lens[in];
        size_t head = (size_t)jb->offs[in] * inner + h * dkv;
        for (int j = 0; j < n; j++)
            for (int e = 0; e < dkv; e++)
                kt[(size_t)e * n + j] = jb->k[head + (size_t)j * inner + e];
        for (int i0 = 0; i0 < n; i0 += ATT_ROWS) {
            int rows = n - i0 < ATT_ROWS ? n - i0 : ATT_ROWS;
            size_t blk = head + (size_t)i0 * inner;
            t5_gemm(jb->isa, jb->q + blk, (size_t)inner, rows, dkv, kt, (size_t)n, n, s, (size_t)n);
            for (int i = 0; i < rows; i++) {
                float *si = s + (size_t)i * n;
                t5_add_rows(si, jb->bias + (size_t)h * (2 * nmax - 1) + (nmax - 1 - (i0 + i)), n);
                t5_softmax_isa(jb->isa, si, n);
            }
            t5_gemm(jb->isa, s, (size_t)n, rows, n, jb->v + head, (size_t)inner, dkv, jb->ctx + blk,
                    (size_t)inner);
        }
    }
}

struct t5_enc_scratch {
    float *buf; /* the activations, bias table and attention scratch of the largest pass so far */
    size_t cap; /* floats */
    int *offs;  /* [cap_offs] */
    int cap_offs;
};

t5_enc_scratch *t5_enc_scratch_create(void) {
    return calloc(1, sizeof(t5_enc_scratch));
}

void t5_enc_scratch_free(t5_enc_scratch *s) {
    if (!s) return;
    free(s->buf), free(s->offs);
    free(s);
}

/* s's buffers at least floats / n_offs long (their contents not kept). 0 or -1 (out of memory) */
static int enc_scratch_reserve(t5_enc_scratch *s, size_t floats, int n_offs) {
    if (floats > s->cap) {
        free(s->buf);
        s->cap = 0;
        if (!(s->buf = malloc(floats * sizeof(float)))) return -1;
        s->cap = floats;
    }
    if (n_offs > s->cap_offs) {
        free(s->offs);
        s->cap_offs = 0;
        if (!(s->offs = malloc((size_t)n_offs * sizeof(int)))) return -1;
        s->cap_offs = n_offs;
    }
    return 0;
}

int t5_encoder_forward(const t5_model *m, t5_pool *pool, const int32_t *ids, const int *lens, int n_inputs,
                       float *out) {
    t5_enc_scratch s = {NULL, 0, NULL, 0};
    int rc = t5_encoder_forward_with(m, pool, &s, ids, lens, n_inputs, out);
    free(s.buf), free(s.offs);
    return rc;
}

int t5_encoder_forward_with(const t5_model *m, t5_pool *pool, t5_enc_scratch *sc, const int32_t *ids,
                            const int *lens, int n_inputs, float *out) {
    const t5_config *c = &m->cfg;
    int d = c->d_model, in = m->inner, ff = c->d_ff, H = c->num_heads, nth = t5_pool_threads(pool);
    int n = 0, nmax = 0;
    for (int i = 0; i < n_inputs; i++) {
        n += lens[i];
        nmax = lens[i] > nmax ? lens[i] : nmax;
    }
    size_t nd = (size_t)n * d, ni = (size_t)n * in, nf = (size_t)n * ff;
    if (enc_scratch_reserve(sc,
                            nd * 2 + ni * 4 + nf * 2 + (size_t)H * (2 * nmax - 1) +
                                (size_t)nth * (ATT_ROWS + c->d_kv) * nmax,
                            n_inputs) != 0)
        return -1;
    float *buf = sc->buf;
    int *offs = sc->offs;
    for (int i = 0, o = 0; i < n_inputs; o += lens[i++])
        offs[i] = o;
    float *h = buf, *xn = h + nd, *q = xn + nd, *k = q + ni, *v = k + ni, *ctx = v + ni, *a = ctx + ni,
          *b = a + nf, *bias = b + nf, *scores = bias + (size_t)H * (2 * nmax - 1),
          *kt = scores + (size_t)nth * ATT_ROWS * nmax;
    for (int i = 0; i < n; i++)
        t5_mat_row(&m->shared, d, ids[i], h + (size_t)i * d);
    for (int rel = -(nmax - 1); rel <= nmax - 1; rel++) {
        int bk = t5_rel_bucket(rel, 1, c->num_buckets, c->max_distance);
        for (int hh = 0; hh < H; hh++)
            bias[(size_t)hh * (2 * nmax - 1) + rel + nmax - 1] = m->enc_rel[bk * H + hh];
    }
    int bad = 0; /* a product ran out of memory */
    for (int l = 0; l < c->num_layers && !bad; l++) {
        const t5_block_w *bw = &m->enc[l];
        /* h += the previous layer's FFN output (xn), then the norm (the pool's threads) */
        t5_residual_rmsnorm(m->isa, pool, h, l ? xn : NULL, xn, bw->self.ln, n, d, c->eps);
        t5_mm_out qkv[3] = {{bw->self.q, q, in}, {bw->self.k, k, in}, {bw->self.v, v, in}};
        bad |= t5_matmul(m, pool, xn, n, d, qkv, 3);
        enc_att_job jb = {pool, m->isa, q,  k,        v,    ctx, lens,    offs,
                          bias, scores, kt, n_inputs, nmax, H,   c->d_kv, in};
        t5_pool_run(pool, enc_att_worker, &jb);
        t5_mm_out o = {bw->self.o, xn, d};
        bad |= t5_matmul(m, pool, ctx, n, in, &o, 1);
        t5_residual_rmsnorm(m->isa, pool, h, xn, xn, bw->ffn.ln, n, d, c->eps);
        t5_mm_out wi[2] = {{bw->ffn.wi, a, ff}, {bw->ffn.wi1, b, ff}};
        bad |= t5_matmul_act(m, pool, xn, n, d, wi, c->gated ? 2 : 1, c->act); /* a = act(a) (* b) */
        t5_mm_out wo = {bw->ffn.wo, xn, d};
        bad |= t5_matmul(m, pool, a, n, ff, &wo, 1);
    }
    if (!bad)
        t5_residual_rmsnorm(m->isa, pool, h, c->num_layers ? xn : NULL, out, m->enc_final, n, d, c->eps);
    return bad ? -1 : 0;
}

int t5_cache_ldv(const t5_model *m) {
    int dkv = m->cfg.d_kv;
    return m->cache_dtype == ST_F32 ? dkv : (int)t5_panels_round((size_t)dkv);
}

t5k_bop t5_cross_kop(const t5_model *m, const t5_cross_kv *cr, int l, int h) {
    size_t dkv = (size_t)m->cfg.d_kv,
           off = ((size_t)l * m->cfg.num_heads + h) * t5_panels_round((size_t)cr->n) * dkv;
    size_t es = t5_cache_es(m->cache_dtype);
    return (t5k_bop){(const char *)cr->k + off * es, m->cache_dtype, T5_PANEL * dkv, T5_PANEL};
}

t5k_bop t5_cross_vop(const t5_model *m, const t5_cross_kv *cr, int l, int h) {
    size_t ldv = (size_t)t5_cache_ldv(m), off = ((size_t)l * m->cfg.num_heads + h) * cr->n * ldv;
    size_t es = t5_cache_es(m->cache_dtype);
    return (t5k_bop){(const char *)cr->v + off * es, m->cache_dtype, T5_PANEL, ldv};
}

/* One layer's K, V [all inputs' tokens, inner] into each input's cross K/V, an item per input and
 * head on the pool's threads. */
typedef struct {
    const t5_model *m;
    t5_pool *pool;
    const float *k, *v;
    const int *offs; /* [n_inputs] first token of input i */
    t5_cross_kv *const *cr;
    int n_inputs, layer;
} cross_job;

static void cross_worker(void *arg, int ith, int nth) {
    const cross_job *jb = arg;
    const t5_model *m = jb->m;
    int dt = m->cache_dtype, H = m->cfg.num_heads;
    size_t in = (size_t)m->inner, dkv = (size_t)m->cfg.d_kv, ldv = (size_t)t5_cache_ldv(m),
           l = (size_t)jb->layer;
    (void)ith, (void)nth;
    for (int item; (item = t5_pool_next(jb->pool)) < jb->n_inputs * H;) {
        int i = item / H;
        size_t hh = (size_t)(item % H), ni = (size_t)jb->cr[i]->n, np = t5_panels_round(ni);
        const float *k = jb->k + (size_t)jb->offs[i] * in + hh * dkv,
                    *v = jb->v + (size_t)jb->offs[i] * in + hh * dkv;
        size_t kp = (l * H + hh) * np * dkv, vp = (l * H + hh) * ni * ldv; /* head hh's K panels, V rows */
        for (size_t t = 0; t < ni; t++) { /* key t: its K column (stride 16) and V row */
            const float *kt = k + t * in, *vt = v + t * in;
            size_t ko = kp + (t / 16) * 16 * dkv + t % 16, vo = vp + t * ldv;
            if (dt == ST_F32) {
                float *kd = (float *)jb->cr[i]->k + ko;
                for (size_t e = 0; e < dkv; e++)
                    kd[e * 16] = kt[e];
                memcpy((float *)jb->cr[i]->v + vo, vt, dkv * sizeof *vt);
            } else { /* the same rounding as t5_cache_put, inline: the loops vectorize */
                uint16_t *kd = (uint16_t *)jb->cr[i]->k + ko, *vd = (uint16_t *)jb->cr[i]->v + vo;
                for (size_t e = 0; e < dkv; e++)
                    kd[e * 16] = t5_float_to_bf16(kt[e]);
                for (size_t e = 0; e < dkv; e++)
                    vd[e] = t5_float_to_bf16(vt[e]);
            }
        }
    }
}

int t5_cross_compute(const t5_model *m, t5_pool *pool, const float *enc, const int *lens, int n_inputs,
                     t5_cross_kv *const *cr) {
    const t5_config *c = &m->cfg;
    size_t in = (size_t)m->inner, L = (size_t)c->num_decoder_layers, H = (size_t)c->num_heads;
    size_t dkv = (size_t)c->d_kv, ldv = (size_t)t5_cache_ldv(m), es = t5_cache_es(m->cache_dtype);
    int n = 0;
    int *offs = malloc((size_t)n_inputs * sizeof *offs);
    if (!offs) return -1;
    for (int i = 0; i < n_inputs; i++)
        offs[i] = n, n += lens[i];
    float *k = malloc((size_t)n * in * 2 * sizeof *k), *v = k + (size_t)n * in; /* one layer, all inputs */
    if (!k) {
        free(offs);
        return -1;
    }
    int rc = 0, i = 0;
    for (; i < n_inputs; i++) { /* zeroed: the padding of the last key panel and of V's rows */
        cr[i]->n = lens[i];
        cr[i]->k = calloc(L * H * t5_panels_round((size_t)cr[i]->n) * dkv, es);
        cr[i]->v = calloc(L * H * lens[i] * ldv, es);
        if (!cr[i]->k || !cr[i]->v) {
            rc = -1, i++;
            break;
        }
    }
    for (size_t l = 0; l < L && !rc; l++) {
        t5_mm_out kv[2] = {{m->dec[l].cross.k, k, (int)in}, {m->dec[l].cross.v, v, (int)in}};
        rc = t5_matmul(m, pool, enc, n, c->d_model, kv, 2);
        cross_job jb = {m, pool, k, v, offs, cr, n_inputs, (int)l};
        if (!rc) t5_pool_run(pool, cross_worker, &jb);
    }
    if (rc)
        while (i > 0)
            t5_cross_free(cr[--i]);
    free(k), free(offs);
    return rc ? -1 : 0;
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
        return T5_ERR_ARG;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size) {
            snprintf(err, errlen, "input id %d at position %d is outside the vocabulary (0..%d)", ids[i], i,
                     m->cfg.vocab_size - 1);
            return T5_ERR_ARG;
        }
    t5_pool *pool = t5_pool_create(n_threads);
    if (!pool || t5_encoder_forward(m, pool, ids, &n, 1, out) != 0) {
        t5_pool_free(pool);
        snprintf(err, errlen, "out of memory");
        return T5_ERR_NOMEM;
    }
    t5_pool_free(pool);
    return T5_OK;
}
