/* model.c - builds a t5_model from a model folder: config.json + the weights the loader reads
 * (safetensors or torch files).
 * The float weight matrices of the products are repacked once into panels (t5_mat: 16
 * output columns, K-major) on the heap in their stored dtype (float32, bfloat16 or
 * float16: a 16-bit checkpoint keeps half the bytes), and the mapped pages of each
 * are dropped as it is packed, so the packed copy replaces the mapping in memory
 * (docs/engine.md says why not a shared cache file). The compute types other than auto
 * convert them as they pack (t5.h: float32 panels, bfloat16 rounding); int8 quantizes
 * them into int8 panels (k in groups of 4, column scales and group sums: t5_mat) instead,
 * one row at a time (no float copy of a matrix). An untied embedding
 * is read a row at a time from the mapping; small float32 tensors are used in place,
 * other dtypes converted to float32 on the heap.
 * An encoder-only checkpoint (T5EncoderModel: config.has_decoder 0) loads shared.weight +
 * encoder.* only. Every expected tensor is checked for presence, dtype and shape; errors name it.
 * What it is not: no forward pass here (encoder.c, decoder.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void t5_quantize_row_i8(const float *x, int k, int8_t *q, float *scale) {
    float inv = t5_quantize_scale(x, k, 127.0f, scale);
    for (int i = 0; i < k; i++)
        q[i] = t5_quantize_i8(x[i], inv);
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

/* One stored element (dtype sd) at s into dtype dd at d: copied when the dtypes agree,
 * else widened exactly and stored as float32 or rounded to bfloat16 (ST_BF16 / ST_BF16X2). */
static void put(unsigned char *d, int dd, const unsigned char *s, int sd) {
    if (sd == dd) {
        memcpy(d, s, dd == ST_F32 ? 4 : 2);
        return;
    }
    float v;
    if (sd == ST_F32)
        memcpy(&v, s, 4);
    else
        v = t5_widen(sd, (uint16_t)(s[0] | s[1] << 8));
    if (dd == ST_F32)
        memcpy(d, &v, 4);
    else { /* ST_BF16X2 as its products read it: a denormal to zero */
        uint16_t h = dd == ST_BF16X2 ? t5_bf16_round(v) : t5_float_to_bf16(v);
        memcpy(d, &h, 2);
    }
}

/* Packs t [n, k] into panels (t5_mat) of dtype (t's, ST_F32, ST_BF16 or ST_BF16X2), dropping
 * the source's pages as each panel is done (the transient extra memory is one panel, not
 * one matrix). */
static int pack(t5_model *m, t5_mat *w, const st_tensor *t, int n, int k, int dtype) {
    size_t es = dtype == ST_F32 ? 4 : 2, ses = t->dtype == ST_F32 ? 4 : 2;
    size_t G = ((size_t)n + T5_PANEL - 1) / T5_PANEL,
           kp = dtype == ST_BF16X2 ? ((size_t)k + 1) & ~(size_t)1 : (size_t)k;
    size_t bytes = G * T5_PANEL * kp * es, row = kp * es, srow = (size_t)k * ses;
    unsigned char *dst = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!dst || keep_owned(m, dst, bytes) != 0) {
        free(dst);
        return -1;
    }
    const unsigned char *src = t->data;
    for (size_t g = 0; g < G; g++) {
        unsigned char *pg = dst + g * T5_PANEL * row;
        size_t rows = (size_t)n - g * T5_PANEL < T5_PANEL ? (size_t)n - g * T5_PANEL : T5_PANEL;
        if (rows < T5_PANEL || kp != (size_t)k) memset(pg, 0, T5_PANEL * row); /* the padding */
        for (size_t l = 0; l < rows; l++) {
            const unsigned char *sr = src + (g * T5_PANEL + l) * srow;
            for (int i = 0; i < k; i++)
                put(pg + (dtype == ST_BF16X2 ? 2 * t5_bf16x2_at(k, (int)l, i)
                                             : ((size_t)i * T5_PANEL + l) * es),
                    dtype, sr + (size_t)i * ses, t->dtype);
        }
        st_drop(m->st, src + g * T5_PANEL * srow, rows * srow);
    }
    *w = (t5_mat){dst, NULL, dtype, 1, n, k, NULL, 0};
    if (dtype != ST_F32) m->n_half++;
    return 0;
}

/* the parts of an int8 matrix's block: panels, then group scales, then group sums (each a
 * multiple of 64 bytes) */
static size_t i8_panels(int n, int k) {
    return (((size_t)n + T5_PANEL - 1) / T5_PANEL) * (((size_t)k + 3) / 4) * 64;
}
static size_t i8_sums(int n, int k) {
    return (((size_t)n + T5_PANEL - 1) / T5_PANEL) * (((size_t)k + T5_I8_GROUP - 1) / T5_I8_GROUP) *
           T5_PANEL * sizeof(int32_t);
}

size_t t5_mat_i8_bytes(int n, int k) {
    return i8_panels(n, k) + 2 * i8_sums(n, k); /* scales: the layout of the sums */
}

void t5_mat_i8_init(t5_mat *w, void *buf, int n, int k) {
    unsigned char *b = buf;
    *w = (t5_mat){b,
                  (const float *)(b + i8_panels(n, k)),
                  ST_I8,
                  1,
                  n,
                  k,
                  (const int32_t *)(b + i8_panels(n, k) + i8_sums(n, k)),
                  0};
}

void t5_mat_i8_set(t5_mat *w, int j, const int8_t *q, const float *scale) {
    int k = w->k, kq = (k + 3) / 4, ng = (k + T5_I8_GROUP - 1) / T5_I8_GROUP;
    int8_t *panel = (int8_t *)w->p + (size_t)(j / T5_PANEL) * kq * 64 + (j % T5_PANEL) * 4;
    size_t at = (size_t)(j / T5_PANEL) * ng * T5_PANEL + j % T5_PANEL;
    int32_t *sums = (int32_t *)w->wsum + at;
    for (int g = 0; g < ng; g++) {
        sums[(size_t)g * T5_PANEL] = 0;
        ((float *)w->scale)[at + (size_t)g * T5_PANEL] = scale[g];
    }
    for (int i = 0; i < k; i++) {
        panel[(size_t)(i / 4) * 64 + i % 4] = q[i];
        sums[(size_t)(i / T5_I8_GROUP) * T5_PANEL] += q[i];
    }
}

/* t [n, k] of class cls as int8 panels (t5_mat; compute type int8: one scale per group of
 * T5_I8_GROUP values of a row; a16 when cls is one of load_params.int8_a16), row by row through
 * one float row, dropping the source's pages as each panel is done. */
static int quantize(t5_model *m, t5_mat *w, const st_tensor *t, int n, int k, unsigned cls) {
    size_t bytes = t5_mat_i8_bytes(n, k);
    void *buf = aligned_alloc(64, bytes);
    float *row = malloc((size_t)k * sizeof *row);
    int8_t *q = malloc((size_t)k);
    float *sc = malloc(((size_t)k + T5_I8_GROUP - 1) / T5_I8_GROUP * sizeof *sc);
    if (!buf || !row || !q || !sc || keep_owned(m, buf, bytes) != 0) {
        free(buf), free(row), free(q), free(sc);
        return -1;
    }
    memset(buf, 0, bytes);
    t5_mat_i8_init(w, buf, n, k);
    w->a16 = (cls & m->lp.int8_a16) != 0;
    t5_mat src = {t->data, NULL, t->dtype, 0, n, k, NULL, 0};
    size_t srow = (size_t)k * st_elsize(t->dtype);
    for (int r = 0; r < n; r++) {
        t5_mat_row(&src, k, r, row);
        for (int i0 = 0; i0 < k; i0 += T5_I8_GROUP)
            t5_quantize_row_i8(row + i0, k - i0 < T5_I8_GROUP ? k - i0 : T5_I8_GROUP, q + i0,
                               &sc[i0 / T5_I8_GROUP]);
        t5_mat_i8_set(w, r, q, sc);
        if (r % T5_PANEL == T5_PANEL - 1 || r == n - 1) {
            int r0 = r / T5_PANEL * T5_PANEL;
            st_drop(m->st, (const unsigned char *)t->data + (size_t)r0 * srow, (size_t)(r + 1 - r0) * srow);
        }
    }
    free(row), free(q), free(sc);
    m->n_int8++;
    return 0;
}

/* The compute type matrices of class cls (T5_MATS_*) take: int8's float classes stay in float. */
static t5_compute_type class_type(const t5_model *m, unsigned cls) {
    t5_compute_type ct = m->lp.compute_type;
    return ct == T5_COMPUTE_INT8 && (cls & m->lp.int8_float) ? T5_COMPUTE_AUTO : ct;
}

/* The panels' dtype of a product's matrix stored as sd under compute type ct (class_type's).
 * int8's float classes keep 16 bits: as stored when bfloat16 or float16, float32 rounded to
 * bfloat16 (half the bytes a decoder step reads for them; docs/engine.md measures the cost). */
static int panel_dtype(const t5_model *m, t5_compute_type ct, int sd) {
    if (ct == T5_COMPUTE_FLOAT32) return ST_F32;
    if (ct == T5_COMPUTE_BFLOAT16) return ST_BF16X2;
    return m->lp.compute_type == T5_COMPUTE_INT8 && sd == ST_F32 ? ST_BF16 : sd;
}

/* Weight matrix NAME [d0, d1] of class cls of the products, as the compute type holds it:
 * panels (as stored, float32, bfloat16 or int8: panel_dtype). 0 or -1 with err set. */
static int matrix(t5_model *m, t5_mat *w, const char *name, int64_t d0, int64_t d1, unsigned cls, char *err,
                  size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return -1;
    t5_compute_type ct = class_type(m, cls);
    if ((ct == T5_COMPUTE_INT8 ? quantize(m, w, t, (int)d0, (int)d1, cls)
                               : pack(m, w, t, (int)d0, (int)d1, panel_dtype(m, ct, t->dtype))) != 0) {
        snprintf(err, errlen, "out of memory converting tensor '%s'", name);
        return -1;
    }
    return 0;
}

/* An embedding read a row at a time (untied): [d0, d1] in place from the mapping, or as
 * the compute type of cls holds it (int8 panels, or bfloat16 rounded row-major). */
static int lookup_matrix(t5_model *m, t5_mat *w, const char *name, int64_t d0, int64_t d1, unsigned cls,
                         char *err, size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return -1;
    t5_compute_type ct = class_type(m, cls);
    *w = (t5_mat){t->data, NULL, t->dtype, 0, (int)d0, (int)d1, NULL, 0};
    if (ct == T5_COMPUTE_INT8 && quantize(m, w, t, (int)d0, (int)d1, cls) != 0) goto oom;
    if (ct == T5_COMPUTE_BFLOAT16 && t->dtype != ST_BF16) {
        size_t n = (size_t)d0 * (size_t)d1, ses = t->dtype == ST_F32 ? 4 : 2;
        unsigned char *p = malloc(n * 2);
        if (!p || keep_owned(m, p, n * 2) != 0) {
            free(p);
            goto oom;
        }
        for (size_t i = 0; i < n; i++)
            put(p + 2 * i, ST_BF16, (const unsigned char *)t->data + i * ses, t->dtype);
        w->p = p, w->dtype = ST_BF16;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory converting tensor '%s'", name);
    return -1;
}

void t5_mat_row(const t5_mat *w, int k, int row, float *out) {
    if (w->dtype == ST_I8) { /* panels of k groups of 4 (t5_mat) */
        int ng = (k + T5_I8_GROUP - 1) / T5_I8_GROUP;
        const int8_t *q =
            (const int8_t *)w->p + (size_t)(row / T5_PANEL) * ((k + 3) / 4) * 64 + (row % T5_PANEL) * 4;
        const float *sc = w->scale + (size_t)(row / T5_PANEL) * ng * T5_PANEL + row % T5_PANEL;
        for (int i = 0; i < k; i++)
            out[i] = (float)q[(size_t)(i / 4) * 64 + i % 4] * sc[(size_t)(i / T5_I8_GROUP) * T5_PANEL];
        return;
    }
    if (w->dtype == ST_BF16X2) {
        const uint16_t *h = w->p;
        for (int i = 0; i < k; i++)
            out[i] = t5_widen(ST_BF16, h[t5_bf16x2_at(k, row, i)]);
        return;
    }
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

/* bytes of a matrix as held (packed: with the padding of its last panel; int8: with its scales
 * and group sums) */
static size_t mat_bytes(const t5_mat *w) {
    if (w->dtype == ST_I8) return t5_mat_i8_bytes(w->n, w->k);
    size_t rows = w->packed ? t5_panels_round((size_t)w->n) : (size_t)w->n;
    size_t k = w->dtype == ST_BF16X2 ? ((size_t)w->k + 1) & ~(size_t)1 : (size_t)w->k;
    return (w->dtype == ST_F32 ? 4 : 2) * rows * k;
}

/* cls: the class of q and k (v and o's is the next bit: T5_MATS_ENC_VO, ...) */
static int load_attn(t5_model *m, t5_attn_w *a, const char *pre, const char *kind, unsigned cls, char *err,
                     size_t errlen) {
    char name[256];
    int d = m->cfg.d_model, in = m->inner;
    snprintf(name, sizeof name, "%s.layer_norm.weight", pre);
    if (!(a->ln = tensor(m, name, d, 0, err, errlen))) return -1;
    const char *proj[4] = {"q", "k", "v", "o"};
    t5_mat *dst[4] = {&a->q, &a->k, &a->v, &a->o};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s.%s.weight", pre, kind, proj[i]);
        if (matrix(m, dst[i], name, i == 3 ? d : in, i == 3 ? in : d, i < 2 ? cls : cls << 1, err, errlen))
            return -1;
    }
    return 0;
}

/* cls: the class of wi (wo's is the next bit: T5_MATS_ENC_WO / T5_MATS_DEC_WO) */
static int load_ffn(t5_model *m, t5_ffn_w *f, const char *pre, unsigned cls, char *err, size_t errlen) {
    char name[256];
    int d = m->cfg.d_model, ff = m->cfg.d_ff;
    snprintf(name, sizeof name, "%s.layer_norm.weight", pre);
    if (!(f->ln = tensor(m, name, d, 0, err, errlen))) return -1;
    snprintf(name, sizeof name, "%s.DenseReluDense.%s.weight", pre, m->cfg.gated ? "wi_0" : "wi");
    if (matrix(m, &f->wi, name, ff, d, cls, err, errlen)) return -1;
    if (m->cfg.gated) {
        snprintf(name, sizeof name, "%s.DenseReluDense.wi_1.weight", pre);
        if (matrix(m, &f->wi1, name, ff, d, cls, err, errlen)) return -1;
    }
    snprintf(name, sizeof name, "%s.DenseReluDense.wo.weight", pre);
    if (matrix(m, &f->wo, name, d, ff, cls << 1, err, errlen)) return -1;
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
    /* tied: one matrix serves the head and the lookups (in float when either class is); untied: the
     * lookups read the mapping */
    unsigned ecls = T5_MATS_EMBED | (c->tied ? T5_MATS_HEAD : 0);
    if ((c->tied && c->has_decoder ? matrix : lookup_matrix)(m, &m->shared, emb, c->vocab_size, d, ecls, err,
                                                             errlen))
        return -1;
    const char *copies[2] = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"};
    for (int i = 0; i < 2; i++) /* optional copies: accepted when well-shaped, otherwise unused */
        if (st_find(m->st, copies[i]) && !checked(m, copies[i], c->vocab_size, d, err, errlen)) return -1;
    if (c->tied || !c->has_decoder) /* encoder-only: no head */
        m->lm_head = m->shared;
    else if (matrix(m, &m->lm_head, "lm_head.weight", c->vocab_size, d, T5_MATS_HEAD, err, errlen))
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
        if (load_attn(m, &m->enc[i].self, pre, "SelfAttention", T5_MATS_ENC_QK, err, errlen)) return -1;
        snprintf(pre, sizeof pre, "encoder.block.%d.layer.1", i);
        if (load_ffn(m, &m->enc[i].ffn, pre, T5_MATS_ENC_WI, err, errlen)) return -1;
    }
    for (int i = 0; i < c->num_decoder_layers; i++) {
        char pre[128];
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.0", i);
        if (load_attn(m, &m->dec[i].self, pre, "SelfAttention", T5_MATS_DEC_SELF_QK, err, errlen)) return -1;
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.1", i);
        if (load_attn(m, &m->dec[i].cross, pre, "EncDecAttention", T5_MATS_DEC_CROSS_QK, err, errlen))
            return -1;
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.2", i);
        if (load_ffn(m, &m->dec[i].ffn, pre, T5_MATS_DEC_WI, err, errlen)) return -1;
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

void t5_load_default_params(t5_load_params *p) {
    memset(p, 0, sizeof *p);
    p->compute_type = T5_COMPUTE_AUTO;
    p->int8_float = T5_INT8_FLOAT_DEFAULT;
    p->int8_a16 = T5_INT8_A16_DEFAULT;
}

static const char *const compute_names[] = {"auto", "float32", "bfloat16", "int8"};

int t5_compute_type_parse(const char *s, t5_compute_type *t) {
    static const struct {
        const char *name;
        t5_compute_type t;
    } names[] = {{"auto", T5_COMPUTE_AUTO},         {"float32", T5_COMPUTE_FLOAT32},
                 {"f32", T5_COMPUTE_FLOAT32},       {"fp32", T5_COMPUTE_FLOAT32},
                 {"bfloat16", T5_COMPUTE_BFLOAT16}, {"bf16", T5_COMPUTE_BFLOAT16},
                 {"int8", T5_COMPUTE_INT8}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) return *t = names[i].t, 0;
    return -1;
}

const char *t5_compute_type_name(t5_compute_type t) {
    return t >= T5_COMPUTE_AUTO && t <= T5_COMPUTE_INT8 ? compute_names[t] : "?";
}

int t5_mats_parse(const char *s, unsigned *bits, char *err, size_t errlen) {
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {{"enc-qk", T5_MATS_ENC_QK},
                 {"enc-vo", T5_MATS_ENC_VO},
                 {"enc-wi", T5_MATS_ENC_WI},
                 {"enc-wo", T5_MATS_ENC_WO},
                 {"dec-self-qk", T5_MATS_DEC_SELF_QK},
                 {"dec-self-vo", T5_MATS_DEC_SELF_VO},
                 {"dec-cross-qk", T5_MATS_DEC_CROSS_QK},
                 {"dec-cross-vo", T5_MATS_DEC_CROSS_VO},
                 {"dec-wi", T5_MATS_DEC_WI},
                 {"dec-wo", T5_MATS_DEC_WO},
                 {"head", T5_MATS_HEAD},
                 {"embed", T5_MATS_EMBED},
                 {"enc-attn", T5_MATS_ENC_QK | T5_MATS_ENC_VO},
                 {"dec-self", T5_MATS_DEC_SELF_QK | T5_MATS_DEC_SELF_VO},
                 {"dec-cross", T5_MATS_DEC_CROSS_QK | T5_MATS_DEC_CROSS_VO},
                 {"qk", T5_MATS_QK},
                 {"vo", T5_MATS_QK << 1},
                 {"attn", T5_MATS_QK | T5_MATS_QK << 1},
                 {"wo", T5_MATS_ENC_WO | T5_MATS_DEC_WO},
                 {"wi", T5_MATS_ENC_WI | T5_MATS_DEC_WI},
                 {"layers", T5_MATS_LAYERS},
                 {"none", 0},
                 {"all", T5_MATS_ALL}};
    unsigned b = 0;
    for (const char *p = s; p && *p;) {
        size_t n = strcspn(p, ",");
        size_t i = 0, N = sizeof names / sizeof names[0];
        while (i < N && !(strlen(names[i].name) == n && !strncmp(p, names[i].name, n)))
            i++;
        if (i == N) {
            snprintf(err, errlen,
                     "unknown matrix class '%.*s' (enc-qk, enc-vo, enc-wi, enc-wo, dec-self-qk, dec-self-vo, "
                     "dec-cross-qk, dec-cross-vo, dec-wi, dec-wo, head, embed, enc-attn, dec-self, "
                     "dec-cross, qk, vo, attn, wo, wi, layers, none, all)",
                     (int)(n > 32 ? 32 : n), p);
            return -1;
        }
        b |= names[i].bits;
        p += n + (p[n] == ',');
    }
    *bits = b;
    return 0;
}

t5_model *t5_model_load(const char *dir, char *err, size_t errlen) {
    return t5_model_load_with(dir, NULL, err, errlen);
}

t5_isa t5_model_isa(const t5_model *m) {
    return m->isa;
}

t5_model *t5_model_load_with(const char *dir, const t5_load_params *p, char *err, size_t errlen) {
    if (!dir) {
        snprintf(err, errlen, "no model folder given");
        return NULL;
    }
    t5_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (p)
        m->lp = *p;
    else
        t5_load_default_params(&m->lp);
    if (m->lp.compute_type < T5_COMPUTE_AUTO || m->lp.compute_type > T5_COMPUTE_INT8) {
        snprintf(err, errlen, "unknown compute type %d", (int)m->lp.compute_type);
        goto fail;
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
    m->isa = t5_cpu_isa(m->lp.isa);
    m->i8 = t5_kernel_i8_ops(m->isa);
    m->bf16 = t5_kernel_bf16_ops(m->isa);
    /* what a batched step reads most after the weights (docs/engine.md, "cross K/V"): halved
     * where the products already round to 16 bits or fewer */
    m->cache_dtype =
        m->lp.compute_type == T5_COMPUTE_BFLOAT16 || m->lp.compute_type == T5_COMPUTE_INT8 ? ST_BF16 : ST_F32;
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

const t5_load_params *t5_model_load_params(const t5_model *m) {
    return &m->lp;
}

int t5_model_has_decoder(const t5_model *m) {
    return m->cfg.has_decoder;
}

const char *t5_model_format(const t5_model *m) {
    return st_format(m->st);
}

const char *t5_model_notes(const t5_model *m) {
    return st_notes(m->st);
}

int t5_weights_present(const char *dir) {
    char p[4096];
    for (int i = 0; st_weight_files[i]; i++)
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, st_weight_files[i]) < sizeof p &&
            access(p, F_OK) == 0)
            return 1;
    return 0;
}
