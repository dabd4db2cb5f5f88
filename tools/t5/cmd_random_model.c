/* cmd_random_model.c - `t5 random-model --out DIR [shape options]`: writes a
 * random-weight T5 checkpoint in the Hugging Face layout (config.json +
 * model.safetensors) of a given shape, by default the T5 PEGASUS small shape
 * (vocab 50000, d_model 512, 6 heads x 64, d_ff 1024, 8+8 layers, gated-gelu,
 * untied head). For benchmarks and tests of shapes we have no checkpoint of.
 * --encoder-only writes a T5EncoderModel checkpoint (shared.weight + encoder.*);
 * --shard-size writes model-0000i-of-0000N.safetensors shards and their
 * model.safetensors.index.json, holding one shard in memory at a time (a T5 v1.1 XXL
 * encoder in bfloat16 is 9.5 GB).
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
#include "t5_dev.h"

typedef struct {
    int vocab, d_model, d_kv, heads, d_ff, layers, dec_layers, buckets, max_dist, tied;
    const char *ff, *dtype;
    uint64_t seed;
} shape;

/* One tensor to write: [d0, d1] (d1 = 0: 1-D), uniform(-a, a), or `fill` when a == 0. */
typedef struct {
    char *name;
    int64_t d0, d1;
    float a, fill;
} spec;

typedef struct {
    spec *t;
    int n, cap;
    const shape *s;
    uint64_t rng;
} writer;

/* Adds tensor NAME [d0, d1] (d1 = 0: 1-D) filled with uniform(-a, a), or `fill` when a == 0. */
static int add(writer *w, const char *name, int64_t d0, int64_t d1, float a, float fill) {
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 256;
        spec *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return -1;
        w->t = t, w->cap = cap;
    }
    w->t[w->n] = (spec){strdup(name), d0, d1, a, fill};
    return w->t[w->n++].name ? 0 : -1;
}

static size_t spec_bytes(const writer *w, const spec *t) {
    return (size_t)t->d0 * (size_t)(t->d1 ? t->d1 : 1) * (!strcmp(w->s->dtype, "F32") ? 4 : 2);
}

/* Fills o with tensor t's values, drawn from the writer's generator in order (the data
 * of a given shape and seed does not depend on the sharding). 0 or -1 (out of memory). */
static int generate(writer *w, const spec *t, st_out *o) {
    size_t n = (size_t)t->d0 * (size_t)(t->d1 ? t->d1 : 1);
    int f32 = !strcmp(w->s->dtype, "F32"), bf16 = !strcmp(w->s->dtype, "BF16");
    void *buf = malloc(n * (f32 ? 4 : 2));
    if (!buf) return -1;
    for (size_t i = 0; i < n; i++) {
        float v = t->fill;
        if (t->a != 0)
            v = (float)((double)(t5_rng_next(&w->rng) >> 11) * (1.0 / 9007199254740992.0) * 2 - 1) * t->a;
        if (f32)
            ((float *)buf)[i] = v;
        else
            ((uint16_t *)buf)[i] = bf16 ? st_float_to_bf16(v) : st_float_to_half(v);
    }
    *o = (st_out){t->name, w->s->dtype, t->d1 ? 2 : 1, {t->d0, t->d1, 0, 0}, buf, n * (f32 ? 4 : 2)};
    return 0;
}

/* Writes the tensors [from, to) into OUT/NAME, generating them first. 0 or -1. */
static int write_file(writer *w, const char *out, const char *name, int from, int to) {
    st_out *o = calloc((size_t)(to - from) + 1, sizeof *o);
    int rc = o ? 0 : -1, made = 0;
    for (int i = from; !rc && i < to; i++, made++)
        rc = generate(w, &w->t[i], &o[i - from]);
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", out, name);
    if (rc)
        fprintf(stderr, "t5 random-model: out of memory\n");
    else if ((rc = st_write(path, o, to - from, err, sizeof err)) != 0)
        fprintf(stderr, "t5 random-model: %s\n", err);
    for (int i = 0; o && i < made; i++)
        free((void *)o[i].data);
    free(o);
    return rc;
}

/* model.safetensors, or shards of at most shard_size bytes (a larger tensor alone) with
 * model.safetensors.index.json. 0 or -1 with a message printed. */
static int write_weights(writer *w, const char *out, double shard_size) {
    if (shard_size <= 0) return write_file(w, out, "model.safetensors", 0, w->n);
    int *first = malloc(((size_t)w->n + 1) * sizeof *first), nshards = 0;
    if (!first) return -1;
    size_t bytes = 0, total = 0;
    for (int i = 0; i < w->n; i++) { /* the shard boundaries */
        size_t b = spec_bytes(w, &w->t[i]);
        if (i == 0 || (bytes > 0 && (double)(bytes + b) > shard_size)) first[nshards++] = i, bytes = 0;
        bytes += b, total += b;
    }
    first[nshards] = w->n;
    json_t *map = json_object();
    int rc = 0;
    for (int s = 0; !rc && s < nshards; s++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, nshards);
        for (int i = first[s]; i < first[s + 1]; i++)
            json_object_set_new(map, w->t[i].name, json_string(name));
        rc = write_file(w, out, name, first[s], first[s + 1]);
    }
    free(first);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
    json_t *idx = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
    if (!rc && (!idx || json_dump_file(idx, path, JSON_INDENT(2)) != 0)) {
        fprintf(stderr, "t5 random-model: cannot write model.safetensors.index.json\n");
        rc = -1;
    }
    json_decref(idx);
    return rc;
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
            "         [--encoder-only] [--shard-size BYTES]\n"
            "defaults: the T5 PEGASUS small shape: vocab 50000, d_model 512, 6 heads x 64, d_ff 1024,\n"
            "8+8 layers, gated-gelu, untied head, 32 buckets, max distance 128, f32.\n"
            "--encoder-only: a T5EncoderModel checkpoint (shared.weight + encoder.*, no decoder, no head).\n"
            "--shard-size: shards of at most BYTES (suffix k, M, G: powers of 1000) and an index.\n"
            "A T5 v1.1 XXL encoder (the SD3 / Flux text encoder's shape, 4.7B parameters, 9.5 GB):\n"
            "  --encoder-only --vocab 32128 --d-model 4096 --heads 64 --d-kv 64 --d-ff 10240 --layers 24\n"
            "  --ff gated-gelu --dtype bf16 --shard-size 5G\n");
}

int cmd_random_model(int argc, char **argv) {
    shape s = {50000, 512, 64, 6, 1024, 8, -1, 32, 128, 0, "gated-gelu", "F32", 1};
    const char *out = NULL;
    int encoder_only = 0;
    double shard_size = 0;
    static const struct option opts[] = {
        {"encoder-only", 0, 0, 'E'},   {"shard-size", 1, 0, 'S'},   {"out", 1, 0, 'o'},
        {"vocab", 1, 0, 'V'},          {"d-model", 1, 0, 'd'},      {"d-kv", 1, 0, 'k'},
        {"heads", 1, 0, 'H'},          {"d-ff", 1, 0, 'f'},         {"layers", 1, 0, 'l'},
        {"decoder-layers", 1, 0, 'L'}, {"ff", 1, 0, 'F'},           {"tied", 0, 0, 't'},
        {"buckets", 1, 0, 'b'},        {"max-distance", 1, 0, 'm'}, {"dtype", 1, 0, 'D'},
        {"seed", 1, 0, 's'},           {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
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
        case 'E':
            encoder_only = 1;
            break;
        case 'S': {
            char *end;
            shard_size = strtod(optarg, &end);
            shard_size *= *end == 'k' ? 1e3 : *end == 'M' ? 1e6 : *end == 'G' ? 1e9 : 1;
            if (shard_size < 1 || (*end && (strchr("kMG", *end) == NULL || end[1]))) {
                fprintf(stderr, "t5 random-model: bad --shard-size '%s'\n", optarg);
                return 2;
            }
            break;
        }
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
    if (!s.tied && !encoder_only && !rc)
        rc = add(&w, "lm_head.weight", s.vocab, s.d_model, sqrtf(3.0f / s.d_model), 0);
    char pre[128];
    for (int st = 0; st < (encoder_only ? 1 : 2) && !rc; st++) {
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
    char path[4096];
    if (rc)
        fprintf(stderr, "t5 random-model: out of memory\n");
    else
        rc = write_weights(&w, out, shard_size);
    for (int i = 0; i < w.n; i++)
        free(w.t[i].name);
    free(w.t);
    if (rc) return 1;
    json_t *cfg = json_pack(
        "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:b, s:i, s:i, s:f, s:i, s:i, s:i, s:i, s:b, s:s}",
        "architectures", encoder_only ? "T5EncoderModel" : "T5ForConditionalGeneration", "model_type",
        gated ? "mt5" : "t5", "vocab_size", s.vocab, "d_model", s.d_model, "d_kv", s.d_kv, "num_heads",
        s.heads, "d_ff", s.d_ff, "num_layers", s.layers, "feed_forward_proj", s.ff, "tie_word_embeddings",
        s.tied, "relative_attention_num_buckets", s.buckets, "relative_attention_max_distance", s.max_dist,
        "layer_norm_epsilon", 1e-6, "num_decoder_layers", s.dec_layers, "pad_token_id", 0, "eos_token_id", 1,
        "decoder_start_token_id", 0, "is_encoder_decoder", !encoder_only, "torch_dtype",
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
