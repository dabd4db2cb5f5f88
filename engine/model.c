/* model.c - builds a t5_model from a model folder: config.json + the weights the loader reads
 * (safetensors or torch files).
 * Float32 tensors are used in place from the read-only mapping (shared by every
 * thread and every process mapping the same file), and so are the bfloat16 / float16
 * weight matrices when the CPU has AVX-512 (the kernels widen them exactly as they stream);
 * other float16 / bfloat16 tensors are converted once to float32 on the heap (memory
 * cost: 2x their file size). The compute types other than auto convert the matrices at
 * load instead (t5.h: float32, bfloat16 rounding, int8 quantization with row scales).
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

/* Tensor NAME with shape [d0] or [d0, d1] (d1 = 0: 1-D) in a float dtype, or NULL with
 * err set. */
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

static float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t t5_float_to_bf16(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40); /* NaN stays a (quiet) NaN */
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
}

void t5_quantize_row_i8(const float *x, int k, int8_t *q, float *scale) {
    float mx = 0;
    for (int i = 0; i < k; i++)
        mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    float s = mx / 127.0f, inv = mx > 0 ? 127.0f / mx : 0;
    for (int i = 0; i < k; i++) {
        float v = nearbyintf(x[i] * inv);
        q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    *scale = s;
}

/* The stored matrix t [n, k] as a heap copy of type dtype: ST_F32 (rounded to bfloat16
 * values when round_bf16), ST_BF16 or ST_I8 (with its row scales). 0 or -1 with err set. */
static int convert(t5_model *m, t5_mat *w, const st_tensor *t, size_t n, size_t k, int dtype, int round_bf16,
                   char *err, size_t errlen) {
    size_t es = dtype == ST_I8 ? 1 : dtype == ST_BF16 ? 2 : 4;
    void *p = malloc(n * k * es);
    float *scale = NULL, *row = malloc(k * sizeof *row);
    int ok = p && row && keep_owned(m, p, n * k * es) == 0;
    if (!ok) free(p);
    if (ok && dtype == ST_I8) {
        scale = malloc(n * sizeof *scale);
        if (!scale || keep_owned(m, scale, n * sizeof *scale) != 0) ok = 0, free(scale);
    }
    if (!ok) {
        free(row);
        snprintf(err, errlen, "out of memory converting tensor '%s'", t->name);
        return -1;
    }
    t5_mat src = {t->data, NULL, t->dtype};
    for (size_t r = 0; r < n; r++) {
        t5_mat_row(&src, (int)k, (int)r, row);
        if (dtype == ST_I8)
            t5_quantize_row_i8(row, (int)k, (int8_t *)p + r * k, &scale[r]);
        else if (dtype == ST_BF16)
            for (size_t i = 0; i < k; i++)
                ((uint16_t *)p)[r * k + i] = t5_float_to_bf16(row[i]);
        else
            for (size_t i = 0; i < k; i++)
                ((float *)p)[r * k + i] = round_bf16 ? bf16_to_float(t5_float_to_bf16(row[i])) : row[i];
    }
    free(row);
    w->p = p, w->scale = scale, w->dtype = dtype;
    return 0;
}

/* The float32 data of tensor NAME with shape [d0] or [d0, d1] (d1 = 0: 1-D). */
static const float *tensor(t5_model *m, const char *name, int64_t d0, int64_t d1, char *err, size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return NULL;
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) return t->data;
    t5_mat w;
    return convert(m, &w, t, 1, (size_t)d0 * (size_t)(d1 ? d1 : 1), ST_F32, 0, err, errlen) ? NULL : w.p;
}

/* Weight matrix NAME [d0, d1] of class cls (T5_MATS_*) as the compute type holds it:
 * 16-bit ones in place when the AVX-512 kernels can read them (rows a multiple of 16
 * values), converted on the heap otherwise (t5.h says how per type). 0 or -1 with err set. */
static int matrix(t5_model *m, t5_mat *w, const char *name, int64_t d0, int64_t d1, unsigned cls, char *err,
                  size_t errlen) {
    const st_tensor *t = checked(m, name, d0, d1, err, errlen);
    if (!t) return -1;
    t5_compute_type ct = m->lp.compute_type;
    if (ct == T5_COMPUTE_INT8 && (cls & m->lp.int8_float)) ct = T5_COMPUTE_AUTO;
    int stream16 = m->simd == 3 && d1 % 16 == 0; /* the kernels read 16-bit rows in place */
    memset(w, 0, sizeof *w);
    if (ct == T5_COMPUTE_INT8) {
        m->n_int8++;
        return convert(m, w, t, (size_t)d0, (size_t)d1, ST_I8, 0, err, errlen);
    }
    if (ct == T5_COMPUTE_BFLOAT16 && t->dtype != ST_BF16) {
        m->n_half += stream16;
        return convert(m, w, t, (size_t)d0, (size_t)d1, stream16 ? ST_BF16 : ST_F32, 1, err, errlen);
    }
    if (ct != T5_COMPUTE_FLOAT32 && (t->dtype == ST_BF16 || t->dtype == ST_F16) && stream16) {
        w->p = t->data, w->dtype = t->dtype;
        m->n_half++;
        return 0;
    }
    w->dtype = ST_F32;
    return (w->p = tensor(m, name, d0, d1, err, errlen)) ? 0 : -1;
}

void t5_mat_row(const t5_mat *w, int k, int row, float *out) {
    if (w->dtype == ST_I8) {
        const int8_t *q = (const int8_t *)w->p + (size_t)row * k;
        for (int i = 0; i < k; i++)
            out[i] = (float)q[i] * w->scale[row];
        return;
    }
    if (w->dtype != ST_BF16 && w->dtype != ST_F16) {
        memcpy(out, (const float *)w->p + (size_t)row * k, (size_t)k * sizeof *out);
        return;
    }
    const uint16_t *b = (const uint16_t *)w->p + (size_t)row * k;
    for (int i = 0; i < k; i++)
        out[i] = w->dtype == ST_F16 ? st_half_to_float(b[i]) : bf16_to_float(b[i]);
}

/* bytes of an n-value matrix as held */
static size_t mat_bytes(const t5_mat *w, size_t n) {
    return (w->dtype == ST_I8 ? 1 : w->dtype == ST_BF16 || w->dtype == ST_F16 ? 2 : 4) * n;
}

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
        if (matrix(m, dst[i], name, i == 3 ? d : in, i == 3 ? in : d, cls, err, errlen)) return -1;
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
    /* a tied head is the embedding: in float when either class is */
    if (matrix(m, &m->shared, emb, c->vocab_size, d, T5_MATS_EMBED | (c->tied ? T5_MATS_HEAD : 0), err,
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
        if (load_attn(m, &m->enc[i].self, pre, "SelfAttention", T5_MATS_ENC_ATTN, err, errlen)) return -1;
        snprintf(pre, sizeof pre, "encoder.block.%d.layer.1", i);
        if (load_ffn(m, &m->enc[i].ffn, pre, T5_MATS_ENC_WI, err, errlen)) return -1;
    }
    for (int i = 0; i < c->num_decoder_layers; i++) {
        char pre[128];
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.0", i);
        if (load_attn(m, &m->dec[i].self, pre, "SelfAttention", T5_MATS_DEC_SELF, err, errlen)) return -1;
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.1", i);
        if (load_attn(m, &m->dec[i].cross, pre, "EncDecAttention", T5_MATS_DEC_CROSS, err, errlen)) return -1;
        snprintf(pre, sizeof pre, "decoder.block.%d.layer.2", i);
        if (load_ffn(m, &m->dec[i].ffn, pre, T5_MATS_DEC_WI, err, errlen)) return -1;
    }
    (void)name;
    /* weight bytes streamed by one decoder step: self q,k,v,o + cross q,o + FFN + head */
    size_t in = (size_t)m->inner * d, ff = (size_t)c->d_ff * d;
    m->dec_step_bytes = c->has_decoder ? mat_bytes(&m->lm_head, (size_t)c->vocab_size * d) : 0;
    for (int i = 0; i < c->num_decoder_layers; i++) {
        const t5_block_w *b = &m->dec[i];
        m->dec_step_bytes += mat_bytes(&b->self.q, in) + mat_bytes(&b->self.k, in) +
                             mat_bytes(&b->self.v, in) + mat_bytes(&b->self.o, in) +
                             mat_bytes(&b->cross.q, in) + mat_bytes(&b->cross.o, in) +
                             mat_bytes(&b->ffn.wi, ff) + mat_bytes(&b->ffn.wo, ff) +
                             (c->gated ? mat_bytes(&b->ffn.wi1, ff) : 0);
    }
    return 0;
}

void t5_load_default_params(t5_load_params *p) {
    memset(p, 0, sizeof *p);
    p->compute_type = T5_COMPUTE_AUTO;
    p->int8_float = T5_INT8_FLOAT_DEFAULT;
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
    } names[] = {{"enc-attn", T5_MATS_ENC_ATTN},
                 {"enc-wi", T5_MATS_ENC_WI},
                 {"enc-wo", T5_MATS_ENC_WO},
                 {"dec-self", T5_MATS_DEC_SELF},
                 {"dec-cross", T5_MATS_DEC_CROSS},
                 {"dec-wi", T5_MATS_DEC_WI},
                 {"dec-wo", T5_MATS_DEC_WO},
                 {"head", T5_MATS_HEAD},
                 {"embed", T5_MATS_EMBED},
                 {"wo", T5_MATS_ENC_WO | T5_MATS_DEC_WO},
                 {"wi", T5_MATS_ENC_WI | T5_MATS_DEC_WI},
                 {"attn", T5_MATS_ENC_ATTN | T5_MATS_DEC_SELF | T5_MATS_DEC_CROSS},
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
                     "unknown matrix class '%.*s' (enc-attn, enc-wi, enc-wo, dec-self, dec-cross, dec-wi, "
                     "dec-wo, head, embed, wo, wi, attn, none, all)",
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
    m->simd = t5_cpu_simd();
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
