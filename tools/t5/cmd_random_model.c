/* cmd_random_model.c - `t5 random-model --out DIR [shape options]`: writes a
 * random-weight T5 checkpoint in the Hugging Face layout (config.json +
 * model.safetensors) of a given shape, by default the T5 PEGASUS small shape
 * (vocab 50000, d_model 512, 6 heads x 64, d_ff 1024, 8+8 layers, gated-gelu,
 * untied head). For benchmarks and tests of shapes we have no checkpoint of.
 * What it is not: a trained model; its outputs are meaningless text. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "t5_internal.h"

typedef struct {
    int vocab, d_model, d_kv, heads, d_ff, layers, dec_layers, buckets, max_dist, tied;
    const char *ff, *dtype;
    uint64_t seed;
} shape;

typedef struct {
    st_out *t;
    int n, cap;
    void **bufs;
    const shape *s;
    uint64_t rng;
} writer;

/* Adds tensor NAME [d0, d1] (d1 = 0: 1-D) filled with uniform(-a, a), or `fill` when a == 0. */
static int add(writer *w, const char *name, int64_t d0, int64_t d1, float a, float fill) {
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 256;
        w->t = realloc(w->t, (size_t)w->cap * sizeof *w->t);
        w->bufs = realloc(w->bufs, (size_t)w->cap * sizeof *w->bufs);
        if (!w->t || !w->bufs) return -1;
    }
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    int f32 = !strcmp(w->s->dtype, "F32");
    void *buf = malloc(n * (f32 ? 4 : 2));
    if (!buf) return -1;
    for (size_t i = 0; i < n; i++) {
        float v = fill;
        if (a != 0)
            v = (float)((double)(t5_rng_next(&w->rng) >> 11) * (1.0 / 9007199254740992.0) * 2 - 1) * a;
        if (f32)
            ((float *)buf)[i] = v;
        else
            ((uint16_t *)buf)[i] = !strcmp(w->s->dtype, "BF16") ? st_float_to_bf16(v) : st_float_to_half(v);
    }
    st_out *t = &w->t[w->n];
    t->name = strdup(name);
    t->dtype = w->s->dtype;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0, t->shape[1] = d1;
    t->data = buf;
    t->nbytes = n * (f32 ? 4 : 2);
    w->bufs[w->n++] = buf;
    return t->name ? 0 : -1;
}

static int add_attn(writer *w, const char *pre, const char *kind) {
    const shape *s = w->s;
    int in = s->heads * s->d_kv;
    char name[256];
    const char *proj[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s.%s.weight", pre, kind, proj[i]);
        int fan_in = i == 3 ? in : s->d_model;
        if (add(w, name, i == 3 ? s->d_model : in, i == 3 ? in : s->d_model, sqrtf(3.0f / fan_in), 0))
            return -1;
    }
    snprintf(name, sizeof name, "%s.layer_norm.weight", pre);
    return add(w, name, s->d_model, 0, 0, 1.0f);
}

static int add_ffn(writer *w, const char *pre, int gated) {
    const shape *s = w->s;
    char name[256];
    float a = sqrtf(3.0f / s->d_model);
    if (gated) {
        snprintf(name, sizeof name, "%s.DenseReluDense.wi_0.weight", pre);
        if (add(w, name, s->d_ff, s->d_model, a, 0)) return -1;
        snprintf(name, sizeof name, "%s.DenseReluDense.wi_1.weight", pre);
        if (add(w, name, s->d_ff, s->d_model, a, 0)) return -1;
    } else {
        snprintf(name, sizeof name, "%s.DenseReluDense.wi.weight", pre);
        if (add(w, name, s->d_ff, s->d_model, a, 0)) return -1;
    }
    snprintf(name, sizeof name, "%s.DenseReluDense.wo.weight", pre);
    if (add(w, name, s->d_model, s->d_ff, sqrtf(3.0f / s->d_ff), 0)) return -1;
    snprintf(name, sizeof name, "%s.layer_norm.weight", pre);
    return add(w, name, s->d_model, 0, 0, 1.0f);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: t5 random-model --out DIR [--vocab N] [--d-model N] [--d-kv N] [--heads N] [--d-ff N]\n"
            "         [--layers N] [--decoder-layers N] [--ff relu|gated-gelu|gated-silu] [--tied]\n"
            "         [--buckets N] [--max-distance N] [--dtype f32|f16|bf16] [--seed S]\n"
            "defaults: the T5 PEGASUS small shape: vocab 50000, d_model 512, 6 heads x 64, d_ff 1024,\n"
            "8+8 layers, gated-gelu, untied head, 32 buckets, max distance 128, f32.\n");
}

int cmd_random_model(int argc, char **argv) {
    shape s = {50000, 512, 64, 6, 1024, 8, -1, 32, 128, 0, "gated-gelu", "F32", 1};
    const char *out = NULL;
    static const struct option opts[] = {
        {"out", 1, 0, 'o'},   {"vocab", 1, 0, 'V'}, {"d-model", 1, 0, 'd'}, {"d-kv", 1, 0, 'k'},
        {"heads", 1, 0, 'H'}, {"d-ff", 1, 0, 'f'},  {"layers", 1, 0, 'l'},  {"decoder-layers", 1, 0, 'L'},
        {"ff", 1, 0, 'F'},    {"tied", 0, 0, 't'},  {"buckets", 1, 0, 'b'}, {"max-distance", 1, 0, 'm'},
        {"dtype", 1, 0, 'D'}, {"seed", 1, 0, 's'},  {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'V':
            s.vocab = atoi(optarg);
            break;
        case 'd':
            s.d_model = atoi(optarg);
            break;
        case 'k':
            s.d_kv = atoi(optarg);
            break;
        case 'H':
            s.heads = atoi(optarg);
            break;
        case 'f':
            s.d_ff = atoi(optarg);
            break;
        case 'l':
            s.layers = atoi(optarg);
            break;
        case 'L':
            s.dec_layers = atoi(optarg);
            break;
        case 'F':
            s.ff = optarg;
            break;
        case 't':
            s.tied = 1;
            break;
        case 'b':
            s.buckets = atoi(optarg);
            break;
        case 'm':
            s.max_dist = atoi(optarg);
            break;
        case 'D':
            s.dtype = !strcmp(optarg, "f32")    ? "F32"
                      : !strcmp(optarg, "f16")  ? "F16"
                      : !strcmp(optarg, "bf16") ? "BF16"
                                                : NULL;
            break;
        case 's':
            s.seed = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (s.dec_layers < 0) s.dec_layers = s.layers;
    int gated = !strncmp(s.ff, "gated-", 6);
    if (!out || !s.dtype || s.vocab < 2 || s.d_model < 1 || s.d_kv < 1 || s.heads < 1 || s.d_ff < 1 ||
        s.layers < 1 || s.dec_layers < 1 || s.buckets < 2 || s.max_dist < 1 ||
        (strcmp(s.ff, "relu") && strcmp(s.ff, "gated-gelu") && strcmp(s.ff, "gated-silu"))) {
        usage(stderr);
        return 2;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "t5 random-model: cannot create the output folder: %s\n", strerror(errno));
        return 1;
    }
    writer w = {.s = &s, .rng = s.seed};
    int rc = add(&w, "shared.weight", s.vocab, s.d_model, 1.0f, 0);
    if (!s.tied && !rc) rc = add(&w, "lm_head.weight", s.vocab, s.d_model, sqrtf(3.0f / s.d_model), 0);
    char pre[128];
    for (int st = 0; st < 2 && !rc; st++) {
        const char *stack = st ? "decoder" : "encoder";
        int nl = st ? s.dec_layers : s.layers;
        for (int i = 0; i < nl && !rc; i++) {
            snprintf(pre, sizeof pre, "%s.block.%d.layer.0", stack, i);
            rc = add_attn(&w, pre, "SelfAttention");
            if (!rc && i == 0) {
                char name[256];
                snprintf(name, sizeof name, "%s.SelfAttention.relative_attention_bias.weight", pre);
                rc = add(&w, name, s.buckets, s.heads, 0.5f, 0);
            }
            if (!rc && st) {
                snprintf(pre, sizeof pre, "decoder.block.%d.layer.1", i);
                rc = add_attn(&w, pre, "EncDecAttention");
            }
            snprintf(pre, sizeof pre, "%s.block.%d.layer.%d", stack, i, st ? 2 : 1);
            if (!rc) rc = add_ffn(&w, pre, gated);
        }
        char name[64];
        snprintf(name, sizeof name, "%s.final_layer_norm.weight", stack);
        if (!rc) rc = add(&w, name, s.d_model, 0, 0, 1.0f);
    }
    char path[4096], err[256];
    if (rc)
        fprintf(stderr, "t5 random-model: out of memory\n");
    else {
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        rc = st_write(path, w.t, w.n, err, sizeof err);
        if (rc) fprintf(stderr, "t5 random-model: %s\n", err);
    }
    for (int i = 0; i < w.n; i++)
        free((void *)w.t[i].name), free(w.bufs[i]);
    free(w.t);
    free(w.bufs);
    if (rc) return 1;
    json_t *cfg = json_pack(
        "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:b, s:i, s:i, s:f, s:i, s:i, s:i, s:i, s:b, s:s}",
        "architectures", "T5ForConditionalGeneration", "model_type", gated ? "mt5" : "t5", "vocab_size",
        s.vocab, "d_model", s.d_model, "d_kv", s.d_kv, "num_heads", s.heads, "d_ff", s.d_ff, "num_layers",
        s.layers, "feed_forward_proj", s.ff, "tie_word_embeddings", s.tied, "relative_attention_num_buckets",
        s.buckets, "relative_attention_max_distance", s.max_dist, "layer_norm_epsilon", 1e-6,
        "num_decoder_layers", s.dec_layers, "pad_token_id", 0, "eos_token_id", 1, "decoder_start_token_id", 0,
        "is_encoder_decoder", 1, "torch_dtype",
        !strcmp(s.dtype, "F32")   ? "float32"
        : !strcmp(s.dtype, "F16") ? "float16"
                                  : "bfloat16");
    snprintf(path, sizeof path, "%s/config.json", out);
    if (!cfg || json_dump_file(cfg, path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "t5 random-model: cannot write config.json\n");
        json_decref(cfg);
        return 1;
    }
    json_decref(cfg);
    return 0;
}
