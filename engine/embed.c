/* embed.c - sentence embeddings from the encoder's last hidden state, as
 * sentence-transformers computes them: a model folder's `modules.json` pipeline
 * (Transformer at the root, then Pooling, then any Dense and Normalize modules in
 * order) read into a t5_embedder, and applied to one input's hidden states.
 * Pooling is sentence-transformers' Pooling without padding (every token counts):
 * cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken, several concatenated
 * in that order; Dense is `act(W x + b)` with W [out, in]; Normalize divides by
 * max(L2 norm, 1e-12) (torch's F.normalize). A folder without modules.json gets
 * mean pooling and nothing else.
 * Here and not in a library of its own because the Dense weights come through the
 * engine's checkpoint reader (safetensors mapping, float16 / bfloat16 widening).
 * What it is not: no tokenization (the caller truncates to max_seq_length) and no
 * encoder pass (t5_encode, t5_batch_add_embed). */
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t5_dev.h"

enum { MOD_DENSE = 1, MOD_NORMALIZE = 2, MAX_MODULES = 64, MAX_FEATURES = 1 << 17 };

/* torch.nn activations a Dense module may name (sentence-transformers saves the class path) */
enum {
    ACT_IDENTITY,
    ACT_TANH,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_GELU,
    ACT_SILU,
    ACT_LEAKY_RELU,
    ACT_ELU,
    ACT_SOFTPLUS
};
static const char *const act_names[] = {"Identity", "Tanh",      "ReLU", "Sigmoid", "GELU",
                                        "SiLU",     "LeakyReLU", "ELU",  "Softplus"};

typedef struct {
    int kind;   /* MOD_DENSE or MOD_NORMALIZE */
    int in;     /* Dense: in_features */
    int out;    /* Dense: out_features */
    int act;    /* Dense: ACT_* */
    float *w;   /* Dense: [out, in] float32 (converted from the stored dtype) */
    float *b;   /* Dense: [out], or NULL without bias */
    char *path; /* the module's folder, relative to the model folder */
} emb_module;

struct t5_embedder {
    int d_model;
    int pooling;        /* T5_POOL_* bits of the folder's Pooling (T5_POOL_MEAN without modules.json) */
    int max_seq_length; /* 0: none given */
    emb_module *mods;   /* [n_mods] after the Pooling, in order */
    int n_mods;
};

static const struct {
    const char *name; /* pooling_mode value */
    const char *key;  /* pooling_mode_* boolean */
    int bit;
} pool_modes[] = {
    {"cls", "pooling_mode_cls_token", T5_POOL_CLS},
    {"max", "pooling_mode_max_tokens", T5_POOL_MAX},
    {"mean", "pooling_mode_mean_tokens", T5_POOL_MEAN},
    {"mean_sqrt_len_tokens", "pooling_mode_mean_sqrt_len_tokens", T5_POOL_MEAN_SQRT_LEN},
    {"weightedmean", "pooling_mode_weightedmean_tokens", T5_POOL_WEIGHTED_MEAN},
    {"lasttoken", "pooling_mode_lasttoken", T5_POOL_LAST},
};
enum { N_POOL_MODES = sizeof pool_modes / sizeof pool_modes[0] };

int t5_pooling_from_name(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "none")) return 0;
    if (!strcmp(s, "last")) return T5_POOL_LAST;
    for (int i = 0; i < N_POOL_MODES; i++)
        if (!strcmp(s, pool_modes[i].name)) return pool_modes[i].bit;
    return -1;
}

/* "mean", "cls+max", ... of a pooling bit set ("none" for 0) into buf. */
static void pooling_name(int bits, char *buf, size_t len) {
    snprintf(buf, len, "%s", bits ? "" : "none");
    for (int i = 0; i < N_POOL_MODES; i++)
        if (bits & pool_modes[i].bit) {
            size_t l = strlen(buf);
            snprintf(buf + l, len - l, "%s%s", l ? "+" : "", pool_modes[i].name);
        }
}

void t5_embed_default_params(t5_embed_params *p) {
    p->pooling = -1;
    p->normalize = -1;
}

void t5_embedder_free(t5_embedder *e) {
    if (!e) return;
    for (int i = 0; i < e->n_mods; i++)
        free(e->mods[i].w), free(e->mods[i].b), free(e->mods[i].path);
    free(e->mods);
    free(e);
}

/* DIR/REL/NAME (REL may be empty) into buf; -1 when too long. */
static int join(char *buf, size_t len, const char *dir, const char *rel, const char *name) {
    size_t n = (size_t)snprintf(buf, len, "%s%s%s/%s", dir, *rel ? "/" : "", rel, name);
    return n < len ? 0 : -1;
}

/* Parses the JSON object (array: the array) in DIR/REL/NAME, shown as REL/NAME in errors.
 * NULL with err set; *absent (when given) is set to 1 instead when the file does not exist. */
static json_t *load_json(const char *dir, const char *rel, const char *name, int array, int *absent,
                         char *err, size_t errlen) {
    char path[4096];
    if (absent) *absent = 0;
    if (join(path, sizeof path, dir, rel, name) != 0) {
        snprintf(err, errlen, "model folder path too long");
        return NULL;
    }
    if (access(path, F_OK) != 0) {
        if (absent)
            *absent = 1;
        else
            snprintf(err, errlen, "%.64s%s%s is missing", rel, *rel ? "/" : "", name);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root && !strncmp(je.text, "unable to open", 14)) /* jansson's message names the path */
        snprintf(je.text, sizeof je.text, "cannot read the file");
    if (!root || (array ? !json_is_array(root) : !json_is_object(root))) {
        snprintf(err, errlen, "%.64s%s%s: %s (line %d)", rel, *rel ? "/" : "", name,
                 !root   ? je.text
                 : array ? "not a JSON array"
                         : "not a JSON object",
                 root ? 1 : je.line);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Optional integer key in [lo, hi]: *out keeps its value when absent or null. */
static int get_int(json_t *o, const char *key, int lo, int hi, int *out, const char *file, char *err,
                   size_t errlen) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%.80s: '%s' must be an integer in [%d, %d]", file, key, lo, hi);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

/* Optional boolean key: *out keeps its value when absent or null. */
static int get_bool(json_t *o, const char *key, int *out, const char *file, char *err, size_t errlen) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "%.80s: '%s' must be true or false", file, key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* The Pooling module's config.json: its pooling_mode (a name or a list of names, ST 6)
 * wins over the pooling_mode_* booleans, as in sentence-transformers. */
static int load_pooling(t5_embedder *e, const char *dir, const char *rel, char *err, size_t errlen) {
    char file[128];
    snprintf(file, sizeof file, "%.64s/config.json", rel);
    json_t *c = load_json(dir, rel, "config.json", 0, NULL, err, errlen);
    if (!c) return -1;
    int rc = -1, dim = e->d_model, bits = 0;
    if (get_int(c, "word_embedding_dimension", 1, MAX_FEATURES, &dim, file, err, errlen) ||
        get_int(c, "embedding_dimension", 1, MAX_FEATURES, &dim, file, err, errlen))
        goto done;
    if (dim != e->d_model) {
        snprintf(err, errlen, "%s: embedding dimension %d differs from the model's d_model %d", file, dim,
                 e->d_model);
        goto done;
    }
    json_t *mode = json_object_get(c, "pooling_mode");
    if (mode && !json_is_null(mode)) {
        json_t *one = json_is_string(mode) ? mode : NULL, *arr = json_is_array(mode) ? mode : NULL;
        if (!one && (!arr || !json_array_size(arr))) {
            snprintf(err, errlen, "%s: 'pooling_mode' must be a name or a list of names", file);
            goto done;
        }
        for (size_t i = 0; i < (arr ? json_array_size(arr) : 1); i++) {
            json_t *s = arr ? json_array_get(arr, i) : one;
            int b = json_is_string(s) ? t5_pooling_from_name(json_string_value(s)) : -1;
            if (b <= 0 || !strcmp(json_string_value(s), "last")) {
                snprintf(
                    err, errlen,
                    "%s: unknown pooling_mode '%.40s' (cls, max, mean, mean_sqrt_len_tokens, weightedmean, "
                    "lasttoken)",
                    file, json_is_string(s) ? json_string_value(s) : "?");
                goto done;
            }
            bits |= b;
        }
    } else
        for (int i = 0; i < N_POOL_MODES; i++) {
            int on = 0;
            if (get_bool(c, pool_modes[i].key, &on, file, err, errlen)) goto done;
            bits |= on ? pool_modes[i].bit : 0;
        }
    if (!bits) {
        snprintf(err, errlen, "%s: no pooling mode is enabled", file);
        goto done;
    }
    e->pooling = bits;
    rc = 0;
done:
    json_decref(c);
    return rc;
}

/* A Dense module: config.json (in_features, out_features, bias, activation_function) and
 * linear.weight [out, in] / linear.bias [out] from its model.safetensors. */
static int load_dense(emb_module *md, const char *dir, const char *rel, char *err, size_t errlen) {
    char file[128];
    snprintf(file, sizeof file, "%.64s/config.json", rel);
    json_t *c = load_json(dir, rel, "config.json", 0, NULL, err, errlen);
    if (!c) return -1;
    int rc = -1, bias = 1;
    md->in = md->out = 0;
    if (get_int(c, "in_features", 1, MAX_FEATURES, &md->in, file, err, errlen) ||
        get_int(c, "out_features", 1, MAX_FEATURES, &md->out, file, err, errlen) ||
        get_bool(c, "bias", &bias, file, err, errlen))
        goto done;
    if (!md->in || !md->out) {
        snprintf(err, errlen, "%s: 'in_features' and 'out_features' are required", file);
        goto done;
    }
    /* sentence-transformers' Dense defaults to Tanh; the file names a torch.nn class */
    json_t *a = json_object_get(c, "activation_function");
    const char *an = "torch.nn.modules.activation.Tanh";
    if (a && !json_is_null(a)) {
        if (!json_is_string(a)) {
            snprintf(err, errlen, "%s: 'activation_function' must be a string", file);
            goto done;
        }
        an = json_string_value(a);
    }
    const char *cls = strrchr(an, '.');
    md->act = -1;
    for (int i = 0; cls && !strncmp(an, "torch.nn.", 9) && i < (int)(sizeof act_names / sizeof *act_names);
         i++)
        if (!strcmp(cls + 1, act_names[i])) md->act = i;
    if (md->act < 0) {
        snprintf(err, errlen,
                 "%s: unsupported activation_function '%.60s' (torch.nn Identity, Tanh, ReLU, Sigmoid, GELU, "
                 "SiLU, LeakyReLU, ELU, Softplus)",
                 file, an);
        goto done;
    }
    /* The weights: whatever the engine's checkpoint reader opens (safetensors or torch files) */
    char mdir[4096];
    if (join(mdir, sizeof mdir, dir, "", rel) != 0) {
        snprintf(err, errlen, "model folder path too long");
        goto done;
    }
    char serr[256];
    st_set *st = st_open_dir(mdir, serr, sizeof serr);
    if (!st) {
        snprintf(err, errlen, "%.64s: %s", rel, serr);
        goto done;
    }
    const char *names[2] = {"linear.weight", "linear.bias"};
    float **dst[2] = {&md->w, &md->b};
    for (int i = 0; i < 1 + bias; i++) {
        const st_tensor *t = st_find(st, names[i]);
        int rows = i ? 1 : md->out, k = i ? md->out : md->in;
        if (!t || t->ndim != (i ? 1 : 2) || t->shape[0] != md->out || (!i && t->shape[1] != md->in) ||
            (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)) {
            char shape[48];
            snprintf(shape, sizeof shape, i ? "[%d]" : "[%d, %d]", md->out, md->in);
            if (t)
                snprintf(err, errlen, "%.64s: tensor '%s' must be %s float32, float16 or bfloat16", rel,
                         names[i], shape);
            else
                snprintf(err, errlen, "%.64s: missing tensor '%s' %s", rel, names[i], shape);
            st_close(st);
            goto done;
        }
        *dst[i] = malloc((size_t)rows * k * sizeof(float));
        if (!*dst[i]) {
            snprintf(err, errlen, "out of memory");
            st_close(st);
            goto done;
        }
        t5_mat w = {t->data, NULL, t->dtype, 0, rows, k, NULL, 0};
        for (int r = 0; r < rows; r++)
            t5_mat_row(&w, k, r, *dst[i] + (size_t)r * k);
    }
    st_close(st);
    rc = 0;
done:
    json_decref(c);
    return rc;
}

/* A module path of modules.json: relative, inside the folder. */
static int safe_path(const char *p) {
    if (p[0] == '/' || strlen(p) > 200) return 0;
    for (const char *s = p; *s; s++)
        if (s[0] == '.' && s[1] == '.' && (s == p || s[-1] == '/') && (s[2] == '/' || !s[2])) return 0;
    return 1;
}

/* The Transformer module at the root: sentence_bert_config.json's max_seq_length. */
static int load_transformer(t5_embedder *e, const char *dir, char *err, size_t errlen) {
    int absent;
    json_t *c = load_json(dir, "", "sentence_bert_config.json", 0, &absent, err, errlen);
    if (!c) return absent ? 0 : -1;
    int lower = 0, rc = -1;
    if (get_int(c, "max_seq_length", 2, 1 << 20, &e->max_seq_length, "sentence_bert_config.json", err,
                errlen) ||
        get_bool(c, "do_lower_case", &lower, "sentence_bert_config.json", err, errlen))
        goto done;
    if (lower) {
        snprintf(err, errlen, "sentence_bert_config.json: do_lower_case true is not supported");
        goto done;
    }
    rc = 0;
done:
    json_decref(c);
    return rc;
}

t5_embedder *t5_embedder_load(const char *dir, int d_model, char *err, size_t errlen) {
    t5_embedder *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->d_model = d_model;
    e->pooling = T5_POOL_MEAN;
    int absent;
    json_t *mods = load_json(dir, "", "modules.json", 1, &absent, err, errlen);
    if (!mods) { /* no modules.json: mean pooling, nothing else */
        if (absent) return e;
        goto fail;
    }
    if (json_array_size(mods) > MAX_MODULES) {
        snprintf(err, errlen, "modules.json: more than %d modules", MAX_MODULES);
        goto fail;
    }
    e->mods = calloc(json_array_size(mods) + 1, sizeof *e->mods);
    if (!e->mods) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    size_t i;
    json_t *m;
    int have_pool = 0;
    json_array_foreach(mods, i, m) {
        json_t *jt = json_object_get(m, "type"), *jp = json_object_get(m, "path");
        const char *type = json_string_value(jt), *p = json_string_value(jp);
        if (!type || !p || !safe_path(p)) {
            snprintf(err, errlen,
                     "modules.json: module %zu needs a 'type' and a relative 'path' inside the folder", i);
            goto fail;
        }
        const char *cls = strrchr(type, '.');
        cls = cls ? cls + 1 : type;
        int st_type = !strncmp(type, "sentence_transformers.", 22);
        int root = !*p || !strcmp(p, ".") || !strcmp(p, "./");
        if (st_type && !strcmp(cls, "Transformer") && i == 0 && root) {
            if (load_transformer(e, dir, err, errlen) != 0) goto fail;
        } else if (st_type && !strcmp(cls, "Pooling") && i == 1) {
            if (load_pooling(e, dir, p, err, errlen) != 0) goto fail;
            have_pool = 1;
        } else if (st_type && (!strcmp(cls, "Dense") || !strcmp(cls, "Normalize")) && i >= 2) {
            emb_module *md = &e->mods[e->n_mods];
            md->kind = !strcmp(cls, "Dense") ? MOD_DENSE : MOD_NORMALIZE;
            if (!(md->path = strdup(p))) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            e->n_mods++;
            if (md->kind == MOD_DENSE && load_dense(md, dir, p, err, errlen) != 0) goto fail;
        } else {
            snprintf(
                err, errlen,
                "modules.json: module %zu '%.80s' at '%.64s' is not supported (a Transformer at the folder "
                "root, then Pooling, then Dense / Normalize modules)",
                i, type, p);
            goto fail;
        }
    }
    if (!have_pool) {
        snprintf(err, errlen,
                 "modules.json: needs a Transformer at the folder root followed by a Pooling module");
        goto fail;
    }
    t5_embed_params dp;
    t5_embed_default_params(&dp);
    if (t5_embedder_dim(e, &dp, err, errlen) < 0) goto fail;
    json_decref(mods);
    return e;
fail:
    json_decref(mods);
    t5_embedder_free(e);
    return NULL;
}

int t5_embedder_pooling(const t5_embedder *e) {
    return e->pooling;
}
int t5_embedder_max_seq_length(const t5_embedder *e) {
    return e->max_seq_length;
}

static int pooled_dim(const t5_embedder *e, int bits) {
    return __builtin_popcount((unsigned)bits) * e->d_model;
}

int t5_embedder_dim(const t5_embedder *e, const t5_embed_params *p, char *err, size_t errlen) {
    int bits = p && p->pooling >= 0 ? p->pooling : e->pooling;
    if (bits == 0) return e->d_model; /* token embeddings */
    int dim = pooled_dim(e, bits);
    for (int i = 0; i < e->n_mods; i++) {
        const emb_module *md = &e->mods[i];
        if (md->kind != MOD_DENSE) continue;
        if (md->in != dim) {
            char pn[96];
            pooling_name(bits, pn, sizeof pn);
            snprintf(err, errlen, "%.64s takes %d features, but pooling %s gives %d", md->path, md->in, pn,
                     dim);
            return -1;
        }
        dim = md->out;
    }
    return dim;
}

void t5_embedder_describe(const t5_embedder *e, char *buf, size_t len) {
    char pn[96];
    pooling_name(e->pooling, pn, sizeof pn);
    snprintf(buf, len, "Pooling(%s)", pn);
    for (int i = 0; i < e->n_mods; i++) {
        const emb_module *md = &e->mods[i];
        size_t l = strlen(buf);
        if (md->kind == MOD_DENSE)
            snprintf(buf + l, len - l, " -> Dense(%d -> %d%s, %s)", md->in, md->out, md->b ? ", bias" : "",
                     act_names[md->act]);
        else
            snprintf(buf + l, len - l, " -> Normalize");
    }
}

static void activate(int act, float *x, int n) {
    for (int i = 0; i < n; i++) {
        float v = x[i];
        switch (act) {
        case ACT_TANH:
            v = tanhf(v);
            break;
        case ACT_RELU:
            v = v > 0 ? v : 0;
            break;
        case ACT_SIGMOID:
            v = 1.0f / (1.0f + expf(-v));
            break;
        case ACT_GELU:
            v = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
            break;
        case ACT_SILU:
            v = v / (1.0f + expf(-v));
            break;
        case ACT_LEAKY_RELU:
            v = v >= 0 ? v : 0.01f * v;
            break;
        case ACT_ELU:
            v = v > 0 ? v : expm1f(v);
            break;
        case ACT_SOFTPLUS:
            v = v > 20.0f ? v : log1pf(expf(v));
            break; /* torch: beta 1, threshold 20 */
        default:
            break;
        }
        x[i] = v;
    }
}

static void l2_normalize(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    float norm = (float)sqrt(s);
    norm = norm > 1e-12f ? norm : 1e-12f;
    for (int i = 0; i < n; i++)
        x[i] /= norm;
}

/* out[d] = one pooling mode over h[n][d] (every token counts: no padding). */
static void pool_one(int bit, const float *h, int n, int d, float *out) {
    if (bit == T5_POOL_CLS || bit == T5_POOL_LAST) {
        memcpy(out, h + (size_t)(bit == T5_POOL_CLS ? 0 : n - 1) * d, (size_t)d * sizeof *out);
        return;
    }
    for (int j = 0; j < d; j++) {
        double acc = bit == T5_POOL_MAX ? -INFINITY : 0, wsum = 0;
        for (int t = 0; t < n; t++) {
            float v = h[(size_t)t * d + j];
            if (bit == T5_POOL_MAX)
                acc = v > acc ? v : acc;
            else {
                double w = bit == T5_POOL_WEIGHTED_MEAN ? t + 1 : 1; /* positions weigh 1..n */
                acc += w * v, wsum += w;
            }
        }
        out[j] = (float)(bit == T5_POOL_MAX             ? acc
                         : bit == T5_POOL_MEAN_SQRT_LEN ? acc / sqrt((double)n)
                                                        : acc / wsum);
    }
}

int t5_embed_sentence(const t5_embedder *e, const t5_embed_params *p, const float *h, int n, float *out,
                      char *err, size_t errlen) {
    int bits = p && p->pooling >= 0 ? p->pooling : e->pooling, norm = p ? p->normalize : -1;
    int dim_out = t5_embedder_dim(e, p, err, errlen);
    if (dim_out < 0) return -1;
    if (bits <= 0 || n <= 0 || !h) {
        snprintf(err, errlen,
                 bits <= 0 ? "pooling none gives token embeddings, not a sentence embedding" : "empty input");
        return -1;
    }
    /* the widest vector along the pipeline, twice (ping-pong) */
    int d = e->d_model, cur = pooled_dim(e, bits), wmax = cur;
    for (int i = 0; i < e->n_mods; i++)
        wmax = e->mods[i].kind == MOD_DENSE && e->mods[i].out > wmax ? e->mods[i].out : wmax;
    float *buf = malloc(2 * (size_t)wmax * sizeof *buf);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    float *x = buf, *y = buf + wmax;
    for (int i = 0, k = 0; i < N_POOL_MODES; i++)
        if (bits & pool_modes[i].bit) pool_one(pool_modes[i].bit, h, n, d, x + (size_t)d * k++);
    int normalized = 0;
    for (int i = 0; i < e->n_mods; i++) {
        const emb_module *md = &e->mods[i];
        if (md->kind == MOD_NORMALIZE) {
            if (norm != 0) l2_normalize(x, cur), normalized = 1;
            continue;
        }
        if (md->b) memcpy(y, md->b, (size_t)md->out * sizeof *y);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, md->out, md->in, 1.0f, md->w, md->in, x, 1,
                    md->b ? 1.0f : 0.0f, y, 1);
        activate(md->act, y, md->out);
        float *t = x;
        x = y, y = t, cur = md->out, normalized = 0;
    }
    if (norm == 1 && !normalized) l2_normalize(x, cur);
    memcpy(out, x, (size_t)cur * sizeof *out);
    free(buf);
    return 0;
}
