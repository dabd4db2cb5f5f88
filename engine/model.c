/* model.c - builds a t5_model from a model folder: config.json + safetensors.
 * The weight matrices of the products are repacked once into panels (t5_mat: 16
 * output columns, K-major) on the heap in their stored dtype (float32, bfloat16 or
 * float16: a 16-bit checkpoint keeps half the bytes), and the mapped pages of each
 * are dropped as it is packed, so the packed copy replaces the mapping in memory
 * (docs/engine.md says why not a shared cache file). An untied embedding is read a
 * row at a time from the mapping; small float32 tensors are used in place, other
 * dtypes converted to float32 on the heap.
 * An encoder-only checkpoint (T5EncoderModel: config.has_decoder 0) loads shared.weight +
 * encoder.* only. Every expected tensor is checked for presence, dtype and shape; errors name it.
 * What it is not: no forward pass here (encoder.c, decoder.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5_private.h"

static int keep_owned(t5_model *m, void *p, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **n = realloc(m->owned, (size_t)cap * sizeof *n);
        if (!n) return -1;
        m->owned = n, m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    m->owned_bytes += bytes;
    return 0;
}

/* Tensor NAME, checked: present, shape [d0] or [d0, d1] (d1 = 0: 1-D), a float dtype. */
static const st_tensor *checked(t5_model *m, const char *name, int64_t d0, int64_t d1, char *err,
                                size_t errlen) {
    const st_tensor *t = st_find(m->st, name);
    if (!t) {
        snprintf(err, errlen, "missing tensor '%s'", name);
        return NULL;
    }
    int want_nd = d1 ? 2 : 1;
    if (t->ndim != want_nd || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
        char got[96] = "", *p = got;
        for (int i = 0; i < t->ndim && p < got + sizeof got - 24; i++)
            p += sprintf(p, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (d1)
            snprintf(err, errlen, "tensor '%s' has shape [%s], expected [%lld, %lld]", name, got,
                     (long long)d0, (long long)d1);
        else
            snprintf(err, errlen, "tensor '%s' has shape [%s], expected [%lld]", name, got, (long long)d0);
        return NULL;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
        snprintf(err, errlen, "tensor '%s' has unsupported dtype %s (float32, float16, bfloat16 only)", name,
                 t->dtype_name);
        return NULL;
    }
    return t;
}

/* The float32 data of tensor NAME with shape [d0] or [d0, d1] (d1 = 0: 1-D). */
static const float *tensor(t5_model *m, const char *name, int64_t d0, int64_t d1, char *err, size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return NULL;
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) return t->data;
    float *out = malloc(n * sizeof *out);
    if (!out || keep_owned(m, out, n * sizeof *out) != 0) {
        free(out);
        snprintf(err, errlen, "out of memory converting tensor '%s'", name);
        return NULL;
    }
    const unsigned char *b = t->data;
    if (t->dtype == ST_F32)
        memcpy(out, b, n * 4);
    else
        for (size_t i = 0; i < n; i++)
            out[i] = t5_widen(t->dtype, (uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
    return out;
}

/* Packs t [n, k] into panels (t5_mat) in its dtype, dropping the source's pages as
 * each panel is done (the transient extra memory is one panel, not one matrix). */
static int pack(t5_model *m, t5_mat *w, const st_tensor *t, int n, int k) {
    size_t es = t->dtype == ST_F32 ? 4 : 2, G = ((size_t)n + T5_PANEL - 1) / T5_PANEL;
    size_t bytes = G * T5_PANEL * (size_t)k * es, row = (size_t)k * es;
    unsigned char *dst = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!dst || keep_owned(m, dst, bytes) != 0) {
        free(dst);
        return -1;
    }
    const unsigned char *src = t->data;
    for (size_t g = 0; g < G; g++) {
        unsigned char *pg = dst + g * T5_PANEL * row;
        size_t rows = (size_t)n - g * T5_PANEL < T5_PANEL ? (size_t)n - g * T5_PANEL : T5_PANEL;
        if (rows < T5_PANEL) memset(pg, 0, T5_PANEL * row); /* the last panel's padding */
        for (size_t l = 0; l < rows; l++) {
            const unsigned char *sr = src + (g * T5_PANEL + l) * row;
            if (es == 4)
                for (int i = 0; i < k; i++)
                    memcpy(pg + ((size_t)i * T5_PANEL + l) * 4, sr + (size_t)i * 4, 4);
            else
                for (int i = 0; i < k; i++)
                    memcpy(pg + ((size_t)i * T5_PANEL + l) * 2, sr + (size_t)i * 2, 2);
        }
        st_drop(m->st, src + g * T5_PANEL * row, rows * row);
    }
    *w = (t5_mat){dst, t->dtype, 1, n, k};
    if (t->dtype != ST_F32) m->n_half++;
    return 0;
}

/* Weight matrix NAME [d0, d1] of the products, packed. 0 or -1 with err set. */
static int matrix(t5_model *m, t5_mat *w, const char *name, int64_t d0, int64_t d1, char *err,
                  size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return -1;
    if (pack(m, w, t, (int)d0, (int)d1) != 0) {
        snprintf(err, errlen, "out of memory packing tensor '%s'", name);
        return -1;
    }
    return 0;
}

/* An embedding read a row at a time (untied): [d0, d1] in place from the mapping. */
static int lookup_matrix(t5_model *m, t5_mat *w, const char *name, int64_t d0, int64_t d1, char *err,
                         size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return -1;
    *w = (t5_mat){t->data, t->dtype, 0, (int)d0, (int)d1};
    return 0;
}

void t5_mat_row(const t5_mat *w, int k, int row, float *out) {
    size_t es = w->dtype == ST_F32 ? 4 : 2, first, step; /* element offsets */
    if (w->packed)
        first = (size_t)(row / T5_PANEL) * T5_PANEL * k + (size_t)(row % T5_PANEL), step = T5_PANEL;
    else
        first = (size_t)row * k, step = 1;
    const unsigned char *p = (const unsigned char *)w->p + first * es;
    for (int i = 0; i < k; i++, p += step * es) {
        if (es == 4)
            memcpy(&out[i], p, 4);
        else {
            uint16_t h;
            memcpy(&h, p, 2);
            out[i] = t5_widen(w->dtype, h);
        }
    }
}

/* bytes of a matrix as held (packed: with the padding of its last panel) */
static size_t mat_bytes(const t5_mat *w) {
    size_t rows = w->packed ? ((size_t)w->n + T5_PANEL - 1) / T5_PANEL * T5_PANEL : (size_t)w->n;
    return (w->dtype == ST_F32 ? 4 : 2) * rows * (size_t)w->k;
}

static int load_attn(t5_model *m, t5_attn_w *a, const char *pre, const char *kind, char *err, size_t errlen) {
    char name[256];
    int d = m->cfg.d_model, in = m->inner;
    snprintf(name, sizeof name, "%s.layer_norm.weight", pre);
    if (!(a->ln = tensor(m, name, d, 0, err, errlen))) return -1;
    const char *proj[4] = {"q", "k", "v", "o"};
    t5_mat *dst[4] = {&a->q, &a->k, &a->v, &a->o};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s.%s.weight", pre, kind, proj[i]);
        if (matrix(m, dst[i], name, i == 3 ? d : in, i == 3 ? in : d, err, errlen)) return -1;
    }
    return 0;
}

static int load_ffn(t5_model *m, t5_ffn_w *f, const char *pre, char *err, size_t errlen) {
    char name[256];
    int d = m->cfg.d_model, ff = m->cfg.d_ff;
    snprintf(name, sizeof name, "%s.layer_norm.weight", pre);
    if (!(f->ln = tensor(m, name, d, 0, err, errlen))) return -1;
    snprintf(name, sizeof name, "%s.DenseReluDense.%s.weight", pre, m->cfg.gated ? "wi_0" : "wi");
    if (matrix(m, &f->wi, name, ff, d, err, errlen)) return -1;
    if (m->cfg.gated) {
        snprintf(name, sizeof name, "%s.DenseReluDense.wi_1.weight", pre);
        if (matrix(m, &f->wi1, name, ff, d, err, errlen)) return -1;
    }
    snprintf(name, sizeof name, "%s.DenseReluDense.wo.weight", pre);
    if (matrix(m, &f->wo, name, d, ff, err, errlen)) return -1;
    return 0;
}

static int load_weights(t5_model *m, char *err, size_t errlen) {
    const t5_config *c = &m->cfg;
    int d = c->d_model;
    char name[256];
    /* shared embedding; some checkpoints only carry the embed_tokens copies */
    const char *emb = "shared.weight";
    if (!st_find(m->st, emb) && st_find(m->st, "encoder.embed_tokens.weight"))
        emb = "encoder.embed_tokens.weight";
    /* tied: one packed matrix serves the head and the lookups; untied: the lookups read the mapping */
    if ((c->tied && c->has_decoder ? matrix : lookup_matrix)(m, &m->shared, emb, c->vocab_size, d, err,
                                                             errlen))
        return -1;
    const char *copies[2] = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"};
    for (int i = 0; i < 2; i++) /* optional copies: accepted when well-shaped, otherwise unused */
        if (st_find(m->st, copies[i]) && !checked(m, copies[i], c->vocab_size, d, err, errlen)) return -1;
    if (c->tied || !c->has_decoder) /* encoder-only: no head */
        m->lm_head = m->shared;
    else if (matrix(m, &m->lm_head, "lm_head.weight", c->vocab_size, d, err, errlen))
        return -1;
    if (!(m->enc_rel = tensor(m, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                              c->num_buckets, c->num_heads, err, errlen)) ||
        !(m->enc_final = tensor(m, "encoder.final_layer_norm.weight", d, 0, err, errlen)))
        return -1;
    if (c->has_decoder &&
        (!(m->dec_rel = tensor(m, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                               c->num_buckets, c->num_heads, err, errlen)) ||
         !(m->dec_final = tensor(m, "decoder.final_layer_norm.weight", d, 0, err, errlen))))
        return -1;
    for (int i = 0; i < c->num_layers; i++) {
        char pre[128];
        snprintf(pre, sizeof pre, "encoder.block.%d.layer.0", i);
        if (load_attn(m, &m->enc[i].self, pre, "SelfAttention", err, errlen)) return -1;
        snprintf(pre, sizeof pre, "encoder.block.%d.layer.1", i);
        if (load_ffn(m, &m->enc[i].ffn, pre, err, errlen)) return -1;
    }
    for (int i = 0; i < c->num_decoder_layers; i++) {
        char pre[128];
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.0", i);
        if (load_attn(m, &m->dec[i].self, pre, "SelfAttention", err, errlen)) return -1;
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.1", i);
        if (load_attn(m, &m->dec[i].cross, pre, "EncDecAttention", err, errlen)) return -1;
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.2", i);
        if (load_ffn(m, &m->dec[i].ffn, pre, err, errlen)) return -1;
    }
    (void)name;
    /* weight bytes streamed by one decoder step: self q,k,v,o + cross q,o + FFN + head */
    m->dec_step_bytes = c->has_decoder ? mat_bytes(&m->lm_head) : 0;
    for (int i = 0; i < c->num_decoder_layers; i++) {
        const t5_block_w *b = &m->dec[i];
        m->dec_step_bytes += mat_bytes(&b->self.q) + mat_bytes(&b->self.k) + mat_bytes(&b->self.v) +
                             mat_bytes(&b->self.o) + mat_bytes(&b->cross.q) + mat_bytes(&b->cross.o) +
                             mat_bytes(&b->ffn.wi) + mat_bytes(&b->ffn.wo) +
                             (c->gated ? mat_bytes(&b->ffn.wi1) : 0);
    }
    return 0;
}

t5_model *t5_model_load(const char *dir, char *err, size_t errlen) {
    return t5_model_load_opts(dir, NULL, err, errlen);
}

t5_isa t5_model_isa(const t5_model *m) {
    return m->isa;
}

t5_model *t5_model_load_opts(const char *dir, const t5_load_opts *o, char *err, size_t errlen) {
    if (!dir) {
        snprintf(err, errlen, "no model folder given");
        return NULL;
    }
    t5_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (t5_config_load(dir, &m->cfg, err, errlen) != 0) goto fail;
    m->inner = m->cfg.num_heads * m->cfg.d_kv;
    m->enc = calloc((size_t)m->cfg.num_layers, sizeof *m->enc);
    m->dec = calloc((size_t)m->cfg.num_decoder_layers + 1, sizeof *m->dec); /* + 1: none when encoder-only */
    if (!m->enc || !m->dec) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(m->st = st_open_dir(dir, err, errlen))) goto fail;
    m->isa = t5_cpu_isa(o ? o->isa : T5_ISA_AUTO);
    if (load_weights(m, err, errlen) != 0) goto fail;
    return m;
fail:
    t5_model_free(m);
    return NULL;
}

void t5_model_free(t5_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->enc);
    free(m->dec);
    st_close(m->st);
    free(m);
}

const t5_config *t5_model_config(const t5_model *m) {
    return &m->cfg;
}

int t5_model_has_decoder(const t5_model *m) {
    return m->cfg.has_decoder;
}
