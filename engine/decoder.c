/* decoder.c - one T5 decoder step for a set of rows (the sequences and beams of a
 * continuous batch): every row feeds one token, the whole set goes through each
 * weight matrix once (t5_matmul), self-attention reads and extends each row's own
 * KV cache, cross-attention reads the K/V its input computed once, and the head
 * gives logits[rows, vocab].
 * What it is not: no token choice here (generate.c) and no row bookkeeping (batch.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "t5_dev.h"

struct t5_dec_scratch {
    int max_rows, nth;
    float *h;            /* [max_rows, d_model] residual stream */
    float *xn;           /* [max_rows, d_model] normed input / sublayer output */
    float *q;            /* [max_rows, inner] */
    float *k;            /* [max_rows, inner] */
    float *v;            /* [max_rows, inner] */
    float *ctx;          /* [max_rows, inner] */
    float *a;            /* [max_rows, d_ff] */
    float *b;            /* [max_rows, d_ff] */
    float *logits;       /* [max_rows, vocab] */
    float *att;          /* [nth, att_cap] attention scores per thread */
    float *bias;         /* [num_heads, att_cap] self-attention bias of key distance 0, 1, .. (pos - j) */
    int att_cap, bias_n; /* bias holds distances below bias_n */
};

static size_t kv_ldk(const t5_model *m, int cap) { /* K^T's row length */
    return m->cache_dtype == ST_F32 ? (size_t)cap : t5_panels_round((size_t)cap);
}

static size_t kv_ldv(const t5_model *m) { /* V's row length: the heads' value rows, padded */
    return (size_t)m->cfg.num_heads * t5_cache_ldv(m);
}

int t5_kv_init(const t5_model *m, t5_kv *kv, int cap) {
    size_t L = (size_t)m->cfg.num_decoder_layers, es = t5_cache_es(m->cache_dtype);
    /* zeroed: a 16-bit operand's padding (K^T's columns past cap, V's past d_kv) reads as 0 */
    kv->k = calloc(L * m->inner * kv_ldk(m, cap), es);
    kv->v = calloc(L * cap * kv_ldv(m), es);
    kv->len = 0;
    kv->cap = cap;
    if (!kv->k || !kv->v) {
        t5_kv_free(kv);
        return -1;
    }
    return 0;
}

void t5_kv_free(t5_kv *kv) {
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
    kv->len = kv->cap = 0;
}

void t5_kv_copy(const t5_model *m, t5_kv *dst, const t5_kv *src) {
    size_t len = (size_t)src->len, in = (size_t)m->inner, es = t5_cache_es(m->cache_dtype);
    size_t ldk = kv_ldk(m, src->cap), ldv = kv_ldv(m), cap = (size_t)src->cap;
    for (size_t l = 0; l < (size_t)m->cfg.num_decoder_layers; l++) {
        for (size_t i = l * in; i < (l + 1) * in; i++) /* K^T: the first len columns of each row */
            memcpy((char *)dst->k + i * ldk * es, (const char *)src->k + i * ldk * es, len * es);
        memcpy((char *)dst->v + l * cap * ldv * es, (const char *)src->v + l * cap * ldv * es,
               len * ldv * es);
    }
    dst->len = src->len;
}

/* Appends position kv->len of head h in layer l: its part of k_row[inner] as a column of K^T,
 * of v_row[inner] as a row of V (each head's items of a step append their own part). */
static void kv_append(const t5_model *m, t5_kv *kv, int l, int h, const float *k_row, const float *v_row) {
    size_t dkv = (size_t)m->cfg.d_kv, ldk = kv_ldk(m, kv->cap), pos = (size_t)kv->len;
    size_t kl = ((size_t)l * m->inner + h * dkv) * ldk + pos;
    size_t vr = ((size_t)l * kv->cap + pos) * kv_ldv(m) + (size_t)h * t5_cache_ldv(m);
    k_row += h * dkv, v_row += h * dkv;
    for (size_t e = 0; e < dkv; e++) {
        t5_cache_put(m->cache_dtype, kv->k, kl + e * ldk, k_row[e]);
        t5_cache_put(m->cache_dtype, kv->v, vr + e, v_row[e]);
    }
}

/* The B operands of head h's self-attention in layer l: K^T [d_kv, positions], V [positions, d_kv]. */
static t5k_bop kv_kop(const t5_model *m, const t5_kv *kv, int l, int h) {
    size_t ldk = kv_ldk(m, kv->cap), es = t5_cache_es(m->cache_dtype);
    size_t off = ((size_t)l * m->inner + (size_t)h * m->cfg.d_kv) * ldk;
    return (t5k_bop){(const char *)kv->k + off * es, m->cache_dtype, T5_PANEL, ldk};
}

static t5k_bop kv_vop(const t5_model *m, const t5_kv *kv, int l, int h) {
    size_t ldv = kv_ldv(m), es = t5_cache_es(m->cache_dtype);
    size_t off = (size_t)l * kv->cap * ldv + (size_t)h * t5_cache_ldv(m);
    return (t5k_bop){(const char *)kv->v + off * es, m->cache_dtype, T5_PANEL, ldv};
}

t5_dec_scratch *t5_dec_scratch_create(const t5_model *m, int max_rows, int n_threads) {
    t5_dec_scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t R = (size_t)max_rows, d = (size_t)m->cfg.d_model, in = (size_t)m->inner, ff = (size_t)m->cfg.d_ff;
    s->max_rows = max_rows;
    s->nth = n_threads < 1 ? 1 : n_threads;
    s->h = malloc(R * d * sizeof(float));
    s->xn = malloc(R * d * sizeof(float));
    s->q = malloc(R * in * sizeof(float));
    s->k = malloc(R * in * sizeof(float));
    s->v = malloc(R * in * sizeof(float));
    s->ctx = malloc(R * in * sizeof(float));
    s->a = malloc(R * ff * sizeof(float));
    s->b = malloc(R * ff * sizeof(float));
    s->logits = malloc(R * (size_t)m->cfg.vocab_size * sizeof(float));
    if (!s->h || !s->xn || !s->q || !s->k || !s->v || !s->ctx || !s->a || !s->b || !s->logits) {
        t5_dec_scratch_free(s);
        return NULL;
    }
    return s;
}

void t5_dec_scratch_free(t5_dec_scratch *s) {
    if (!s) return;
    free(s->h), free(s->xn), free(s->q), free(s->k), free(s->v), free(s->ctx), free(s->a), free(s->b);
    free(s->logits), free(s->att), free(s->bias);
    free(s);
}

typedef struct {
    const t5_model *m;
    t5_pool *pool;
    t5_dec_scratch *s;
    int rows, layer, cross;
    t5_kv *const *kv;
    const t5_cross_kv *const *cr;
} dec_att_job;

/* Attention of one query q[dkv] over n keys: K^T [dkv, n] and V [n, dkv] as B operands;
 * self-attention (the query at position n - 1) adds its head's bias of distance n - 1 - j to
 * key j, bias_h[n - 1 - j]. */
static void attend(t5_isa isa, const float *q, const t5k_bop *kt, const t5k_bop *v, int n, int dkv,
                   const float *bias_h, float *s, float *out) {
    t5_vecmat(isa, q, dkv, kt, n, s); /* s[j] = q . K[j] */
    if (bias_h)
        for (int j = 0; j < n; j++)
            s[j] += bias_h[n - 1 - j];
    t5_softmax_isa(isa, s, n);
    t5_vecmat(isa, s, n, v, dkv, out); /* out = sum_j s[j] V[j] */
}

/* Prefetches (into L2) rows stretches of bytes, stride apart, from p. */
static void prefetch_rows(const char *p, size_t rows, size_t bytes, size_t stride) {
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < bytes; o += 64)
            __builtin_prefetch(p + r * stride + o, 0, 2);
}

/* Item (row r, head h)'s B operands, K^T and V, and its number of keys. */
static int item_ops(const dec_att_job *jb, int r, int h, t5k_bop *kb, t5k_bop *vb) {
    const t5_model *m = jb->m;
    if (jb->cross) {
        *kb = t5_cross_kop(m, jb->cr[r], jb->layer, h), *vb = t5_cross_vop(m, jb->cr[r], jb->layer, h);
        return jb->cr[r]->n;
    }
    *kb = kv_kop(m, jb->kv[r], jb->layer, h), *vb = kv_vop(m, jb->kv[r], jb->layer, h);
    return jb->kv[r]->len + 1;
}

/* The keys and values item (r, h) will read: a step streams every row's caches from memory
 * once (tens of MB at batch 32), so each thread fetches its next item's while it computes the
 * current one. K^T as packed panels (cross) is one stretch, row-major (self) d_kv rows. */
static void prefetch_item(const dec_att_job *jb, int r, int h) {
    t5k_bop kb, vb;
    size_t n = (size_t)item_ops(jb, r, h, &kb, &vb), dkv = (size_t)jb->m->cfg.d_kv;
    size_t es = t5_cache_es(jb->m->cache_dtype);
    if (kb.gs > kb.ks)
        prefetch_rows(kb.p, 1, t5_panels_round(n) * dkv * es, 0);
    else
        prefetch_rows(kb.p, dkv, n * es, kb.ks * es);
    prefetch_rows(vb.p, n, dkv * es, vb.ks * es);
}

static void dec_att_worker(void *arg, int ith, int nth) {
    const dec_att_job *jb = arg;
    const t5_model *m = jb->m;
    const t5_config *c = &m->cfg;
    int H = c->num_heads, dkv = c->d_kv, in = m->inner, n_items = jb->rows * H;
    float *s = jb->s->att + (size_t)ith * jb->s->att_cap;
    (void)nth;
    for (int item = t5_pool_next(jb->pool), next; item < n_items; item = next) {
        if ((next = t5_pool_next(jb->pool)) < n_items) prefetch_item(jb, next / H, next % H);
        int r = item / H, h = item % H;
        const float *q = jb->s->q + (size_t)r * in + h * dkv;
        float *out = jb->s->ctx + (size_t)r * in + h * dkv;
        if (!jb->cross)
            kv_append(m, jb->kv[r], jb->layer, h, jb->s->k + (size_t)r * in, jb->s->v + (size_t)r * in);
        t5k_bop kb, vb;
        int n = item_ops(jb, r, h, &kb, &vb);
        attend(m->isa, q, &kb, &vb, n, dkv, jb->cross ? NULL : jb->s->bias + (size_t)h * jb->s->att_cap, s,
               out);
    }
}

float *t5_decoder_step(const t5_model *m, t5_pool *pool, t5_dec_scratch *s, int rows, const int32_t *tokens,
                       t5_kv *const *kv, const t5_cross_kv *const *cross) {
    const t5_config *c = &m->cfg;
    int d = c->d_model, in = m->inner, ff = c->d_ff;
    size_t rd = (size_t)rows * d;
    /* attention buffers: scores per thread, the bias of each key distance per head */
    int need = 1;
    for (int r = 0; r < rows; r++) {
        if (kv[r]->len + 1 > need) need = kv[r]->len + 1;
        if (cross[r]->n > need) need = cross[r]->n;
    }
    if (need > s->att_cap) {
        int cap = need + 64;
        float *na = realloc(s->att, (size_t)s->nth * cap * sizeof(float));
        if (!na) return NULL;
        s->att = na;
        float *nb = realloc(s->bias, (size_t)c->num_heads * cap * sizeof(float));
        if (!nb) return NULL;
        s->bias = nb, s->att_cap = cap, s->bias_n = 0;
    }
    for (; s->bias_n < need; s->bias_n++) { /* distance bias_n: key pos - bias_n */
        int bk = t5_rel_bucket(-s->bias_n, 0, c->num_buckets, c->max_distance);
        for (int h = 0; h < c->num_heads; h++)
            s->bias[(size_t)h * s->att_cap + s->bias_n] = m->dec_rel[bk * c->num_heads + h];
    }
    for (int r = 0; r < rows; r++)
        t5_mat_row(&m->shared, d, tokens[r], s->h + (size_t)r * d);
    int bad = 0; /* a product ran out of memory: the caches stay as they were */
    /* each sublayer's output (in xn) joins the residual stream h in the next norm's pass */
    const float *add = NULL;
    for (int l = 0; l < c->num_decoder_layers; l++) {
        const t5_block_w *bw = &m->dec[l];
        /* self-attention */
        t5_residual_rmsnorm(m->isa, pool, s->h, add, s->xn, bw->self.ln, rows, d, c->eps);
        t5_mm_out qkv[3] = {{bw->self.q, s->q, in}, {bw->self.k, s->k, in}, {bw->self.v, s->v, in}};
        bad |= t5_matmul(m, pool, s->xn, rows, d, qkv, 3);
        dec_att_job jb = {m, pool, s, rows, l, 0, kv, cross};
        t5_pool_run(pool, dec_att_worker, &jb);
        t5_mm_out o = {bw->self.o, s->xn, d};
        bad |= t5_matmul(m, pool, s->ctx, rows, in, &o, 1);
        /* cross-attention */
        t5_residual_rmsnorm(m->isa, pool, s->h, s->xn, s->xn, bw->cross.ln, rows, d, c->eps);
        t5_mm_out cq = {bw->cross.q, s->q, in};
        bad |= t5_matmul(m, pool, s->xn, rows, d, &cq, 1);
        jb.cross = 1;
        t5_pool_run(pool, dec_att_worker, &jb);
        t5_mm_out co = {bw->cross.o, s->xn, d};
        bad |= t5_matmul(m, pool, s->ctx, rows, in, &co, 1);
        /* feed-forward: a = act(a) (* b) in the product's items */
        t5_residual_rmsnorm(m->isa, pool, s->h, s->xn, s->xn, bw->ffn.ln, rows, d, c->eps);
        t5_mm_out wi[2] = {{bw->ffn.wi, s->a, ff}, {bw->ffn.wi1, s->b, ff}};
        bad |= t5_matmul_act(m, pool, s->xn, rows, d, wi, c->gated ? 2 : 1, c->act);
        t5_mm_out wo = {bw->ffn.wo, s->xn, d};
        bad |= t5_matmul(m, pool, s->a, rows, ff, &wo, 1);
        add = s->xn;
    }
    if (bad) return NULL;
    for (int r = 0; r < rows; r++)
        kv[r]->len++;
    t5_residual_rmsnorm(m->isa, pool, s->h, add, s->xn, m->dec_final, rows, d, c->eps);
    if (c->tied) { /* T5 v1.0: rescale before the tied head */
        float sc = (float)pow((double)d, -0.5);
        for (size_t i = 0; i < rd; i++)
            s->xn[i] *= sc;
    }
    t5_mm_out head = {m->lm_head, s->logits, c->vocab_size};
    return t5_matmul(m, pool, s->xn, rows, d, &head, 1) ? NULL : s->logits;
}
