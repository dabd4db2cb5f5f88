/* test_engine_load.c - the checkpoint loader on rewritten copies of the fixture
 * checkpoints: sharded index, float16 / bfloat16 / float32 storage of the same
 * weights give identical outputs, embed_tokens copies are accepted; a missing or
 * misshapen tensor, an unknown dtype, a truncated or garbage file and bad
 * config.json values are clear errors naming the problem, never a crash. */
#include <check.h>
#include "check_run.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t5.h"
#include "t5_dev.h"
#include "tok_testutil.h"

static char tmp[256];

static const char *fixture(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    return tt_fixture(rel);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert_msg(a && b, "copy %s", from);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

/* A fresh folder DIR = tmp/NAME with the fixture's config.json. */
static const char *mkmodel(const char *name, const char *from) {
    static char dir[512];
    char p[2048], q[2048];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", fixture(from));
    snprintf(q, sizeof q, "%s/config.json", dir);
    copy_file(p, q);
    return dir;
}

typedef struct {
    st_set *s;
    st_out *t;
    int n;
    void **own;
} tensors;

/* All tensors of a fixture, as float32 (converted from f16 where stored so). */
static tensors read_all(const char *name) {
    char err[256];
    tensors T = {0};
    T.s = st_open_dir(fixture(name), err, sizeof err);
    ck_assert_msg(T.s, "%s", err);
    /* walk the names through the public layout: a fixture has at most a few hundred tensors */
    T.t = calloc(512, sizeof *T.t);
    T.own = calloc(512, sizeof *T.own);
    return T;
}

static uint16_t f2bf(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7fff + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

/* The model's tensor list, via the names a T5 checkpoint has. */
static int names_of(const t5_config *c, char names[][128]) {
    int n = 0;
    snprintf(names[n++], 128, "shared.weight");
    if (!c->tied) snprintf(names[n++], 128, "lm_head.weight");
    for (int st = 0; st < 2; st++) {
        const char *s = st ? "decoder" : "encoder";
        int L = st ? c->num_decoder_layers : c->num_layers;
        snprintf(names[n++], 128, "%s.final_layer_norm.weight", s);
        snprintf(names[n++], 128, "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight", s);
        for (int i = 0; i < L; i++) {
            const char *pr[4] = {"q", "k", "v", "o"};
            for (int a = 0; a < (st ? 2 : 1); a++) {
                for (int k = 0; k < 4; k++)
                    snprintf(names[n++], 128, "%s.block.%d.layer.%d.%s.%s.weight", s, i, a,
                             a ? "EncDecAttention" : "SelfAttention", pr[k]);
                snprintf(names[n++], 128, "%s.block.%d.layer.%d.layer_norm.weight", s, i, a);
            }
            int f = st ? 2 : 1;
            const char *w[3] = {c->gated ? "wi_0" : "wi", c->gated ? "wi_1" : NULL, "wo"};
            for (int k = 0; k < 3; k++)
                if (w[k])
                    snprintf(names[n++], 128, "%s.block.%d.layer.%d.DenseReluDense.%s.weight", s, i, f, w[k]);
            snprintf(names[n++], 128, "%s.block.%d.layer.%d.layer_norm.weight", s, i, f);
        }
    }
    return n;
}

static char names[512][128];

/* Rewrites fixture FROM into tmp/NAME: every tensor in dtype DT ("F32", "BF16"; NULL: as stored),
 * skipping SKIP, with extra copies when copies != 0, split over `shards` files. */
static const char *rewrite(const char *name, const char *from, const char *dt, const char *skip, int copies,
                           int shards) {
    char err[256];
    t5_model *m = t5_model_load(fixture(from), err, sizeof err);
    ck_assert_msg(m, "%s", err);
    tensors T = read_all(from);
    int n = names_of(&m->cfg, names), k = 0;
    for (int i = 0; i < n; i++) {
        if (skip && !strcmp(names[i], skip)) continue;
        const st_tensor *t = st_find(T.s, names[i]);
        ck_assert_msg(t, "fixture lacks %s", names[i]);
        st_out *o = &T.t[k];
        o->name = names[i];
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        size_t ne = 1;
        for (int d = 0; d < t->ndim; d++)
            ne *= (size_t)t->shape[d];
        if (!dt) {
            o->dtype = t->dtype_name;
            o->data = t->data, o->nbytes = t->nbytes;
        } else {
            /* convert through the engine's float32 view of the tensor */
            const float *src = NULL;
            if (!strcmp(names[i], "shared.weight") && m->shared.dtype != ST_BF16 && m->shared.dtype != ST_F16)
                src = m->shared.p;
            /* other tensors: decode from the file */
            float *f32 = malloc(ne * 4);
            if (src)
                memcpy(f32, src, ne * 4);
            else if (t->dtype == ST_F32)
                memcpy(f32, t->data, ne * 4);
            else
                ck_abort_msg("test converts f32 fixtures only (%s)", names[i]);
            if (!strcmp(dt, "BF16")) {
                uint16_t *h = malloc(ne * 2);
                for (size_t j = 0; j < ne; j++)
                    h[j] = f2bf(f32[j]);
                free(f32);
                o->data = h, o->nbytes = ne * 2;
                T.own[k] = h;
            } else if (!strcmp(dt, "F32R")) { /* f32 holding bf16-rounded values */
                for (size_t j = 0; j < ne; j++) {
                    uint32_t b = (uint32_t)f2bf(f32[j]) << 16;
                    memcpy(&f32[j], &b, 4);
                }
                o->data = f32, o->nbytes = ne * 4;
                T.own[k] = f32;
            } else {
                o->data = f32, o->nbytes = ne * 4;
                T.own[k] = f32;
            }
            o->dtype = !strcmp(dt, "BF16") ? "BF16" : "F32";
        }
        k++;
    }
    if (copies) { /* transformers-style copies of the shared embedding */
        const st_tensor *sh = st_find(T.s, "shared.weight");
        for (int c = 0; c < 2; c++)
            T.t[k++] = (st_out){c ? "decoder.embed_tokens.weight" : "encoder.embed_tokens.weight",
                                sh->dtype_name,
                                2,
                                {sh->shape[0], sh->shape[1]},
                                sh->data,
                                sh->nbytes};
    }
    const char *dir = mkmodel(name, from);
    char path[1024];
    if (shards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        ck_assert_msg(st_write(path, T.t, k, err, sizeof err) == 0, "%s", err);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        FILE *ix = fopen(path, "w");
        fprintf(ix, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        int per = (k + shards - 1) / shards;
        for (int s = 0; s < shards; s++) {
            int a = s * per, b = a + per < k ? a + per : k;
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, shards);
            ck_assert_msg(st_write(path, T.t + a, b - a, err, sizeof err) == 0, "%s", err);
            for (int i = a; i < b; i++)
                fprintf(ix, "%s\"%s\": \"model-%05d-of-%05d.safetensors\"", i ? ", " : "", T.t[i].name, s + 1,
                        shards);
        }
        fprintf(ix, "}}\n");
        fclose(ix);
    }
    for (int i = 0; i < k; i++)
        free(T.own[i]);
    free(T.own);
    free(T.t);
    st_close(T.s);
    t5_model_free(m);
    return dir;
}

/* Encoder output + greedy ids of an input, for comparing two checkpoints. */
static void run(const char *dir, float *enc, int32_t *gen, int *ng) {
    char err[256];
    t5_model *m = t5_model_load(dir, err, sizeof err);
    ck_assert_msg(m, "%s: %s", dir, err);
    int32_t ids[] = {57, 300, 12, 9, 77, 1};
    ck_assert_int_eq(t5_encode(m, ids, 6, enc, 1, err, sizeof err), 0);
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = 8;
    t5_result r;
    ck_assert_int_eq(t5_generate(m, ids, 6, &p, 1, &r, err, sizeof err), 0);
    *ng = r.seqs[0].n;
    memcpy(gen, r.seqs[0].ids, (size_t)*ng * sizeof *gen);
    t5_result_free(&r);
    t5_model_free(m);
}

static void expect_err(const char *dir, const char *want) {
    char err[512] = "";
    t5_model *m = t5_model_load(dir, err, sizeof err);
    if (m) t5_model_free(m);
    ck_assert_msg(!m, "loading %s should fail with '%s'", dir, want);
    ck_assert_msg(strstr(err, want), "error '%s' lacks '%s'", err, want);
}

static void setup(void) {
    snprintf(tmp, sizeof tmp, "/tmp/t5-load-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(same_weights_same_outputs) {
    float a[6 * 64], b[6 * 64];
    int32_t ga[16], gb[16];
    int na, nb;
    run(fixture("t5-tiny-gated"), a, ga, &na);
    /* sharded (3 files) with embed_tokens copies */
    run(rewrite("shards", "t5-tiny-gated", NULL, NULL, 1, 3), b, gb, &nb);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_int_eq(na, nb);
    ck_assert_mem_eq(ga, gb, (size_t)na * 4);
    /* bfloat16 storage == float32 storage of the bf16-rounded values */
    run(rewrite("bf16", "t5-tiny-gated", "BF16", NULL, 0, 1), a, ga, &na);
    run(rewrite("f32r", "t5-tiny-gated", "F32R", NULL, 0, 1), b, gb, &nb);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_int_eq(na, nb);
    ck_assert_mem_eq(ga, gb, (size_t)na * 4);
}
END_TEST

/* The float16 fixture decodes to the float32 values transformers used (golden tests check
 * the numbers); here: shared.weight only (via copies) still loads. */
START_TEST(embed_copies_only) {
    char err[256];
    const char *dir = rewrite("copies", "t5-tiny-gated", NULL, "shared.weight", 1, 1);
    t5_model *m = t5_model_load(dir, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    t5_model_free(m);
}
END_TEST

START_TEST(missing_and_misshapen) {
    expect_err(
        rewrite("missing", "t5-tiny-gated", NULL, "decoder.block.2.layer.2.DenseReluDense.wo.weight", 0, 1),
        "missing tensor 'decoder.block.2.layer.2.DenseReluDense.wo.weight'");
    /* misshapen: a q projection stored as [32, 128] */
    char err[256];
    const char *dir = mkmodel("shape", "t5-tiny-gated");
    tensors T = read_all("t5-tiny-gated");
    t5_model *m = t5_model_load(fixture("t5-tiny-gated"), err, sizeof err);
    int n = names_of(&m->cfg, names);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(T.s, names[i]);
        T.t[i] = (st_out){names[i], "F32", t->ndim, {t->shape[0], t->shape[1]}, t->data, t->nbytes};
        if (!strcmp(names[i], "encoder.block.1.layer.0.SelfAttention.q.weight"))
            T.t[i].shape[0] = 32, T.t[i].shape[1] = 128;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(st_write(path, T.t, n, err, sizeof err), 0);
    expect_err(
        dir,
        "tensor 'encoder.block.1.layer.0.SelfAttention.q.weight' has shape [32, 128], expected [64, 64]");
    /* unknown dtype on a used tensor (same byte count, so the header itself is consistent) */
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], "lm_head.weight")) T.t[i].dtype = "I32";
    ck_assert_int_eq(st_write(path, T.t, n, err, sizeof err), 0);
    expect_err(dir, "tensor 'lm_head.weight' has unsupported dtype I32");
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], "lm_head.weight")) T.t[i].dtype = "Q4_WHATEVER";
    ck_assert_int_eq(st_write(path, T.t, n, err, sizeof err), 0);
    expect_err(dir, "unsupported dtype Q4_WHATEVER");
    /* shape and byte count disagree */
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], "lm_head.weight")) T.t[i].dtype = "F32", T.t[i].nbytes -= 4;
    ck_assert_int_eq(st_write(path, T.t, n, err, sizeof err), 0);
    expect_err(dir, "'lm_head.weight' holds");
    t5_model_free(m);
    free(T.t);
    free(T.own);
    st_close(T.s);
}
END_TEST

START_TEST(truncated_and_garbage) {
    const char *dir = mkmodel("trunc", "t5-tiny-relu");
    char from[2048], path[2048];
    snprintf(from, sizeof from, "%s/model.safetensors", fixture("t5-tiny-relu"));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    copy_file(from, path);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size / 2), 0);
    expect_err(dir, "is truncated: tensor '");
    ck_assert_int_eq(truncate(path, 5), 0);
    expect_err(dir, "truncated");
    FILE *f = fopen(path, "wb");
    fwrite("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 1, 10, f);
    fclose(f);
    expect_err(dir, "truncated or not safetensors");
    f = fopen(path, "wb");
    fwrite("\x04\0\0\0\0\0\0\0[1,2", 1, 12, f);
    fclose(f);
    expect_err(dir, "header is not a JSON object");
    unlink(path);
    expect_err(dir, "looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin");
    /* an index naming a shard that is not there, or outside the folder */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"weight_map\": {\"shared.weight\": \"model-00001-of-00002.safetensors\"}}");
    fclose(f);
    expect_err(dir, "cannot open model-00001-of-00002.safetensors");
    f = fopen(path, "w");
    fprintf(f, "{\"weight_map\": {\"shared.weight\": \"../../etc/passwd\"}}");
    fclose(f);
    expect_err(dir, "bad shard name");
}
END_TEST

/* tmp/NAME/model.safetensors with this header (padded to 8 bytes) and data; returns the folder. */
static const char *write_raw(const char *name, const char *header, const void *data, size_t n) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    mkdir(dir, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    size_t hl = strlen(header), pad = (8 - hl % 8) % 8;
    uint64_t len = hl + pad;
    ck_assert_uint_eq(fwrite(&len, 8, 1, f), 1);
    fputs(header, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    if (n) ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    return dir;
}

static void expect_open_err(const char *dir, const char *want) {
    char err[512] = "";
    st_set *s = st_open_dir(dir, err, sizeof err);
    st_close(s);
    ck_assert_msg(!s, "opening %s should fail with '%s'", dir, want);
    ck_assert_msg(strstr(err, want), "error '%s' lacks '%s'", err, want);
}

/* The reference implementation's header rules (each loaded before, serving garbage): no
 * duplicate names, tensors tile the data without overlap, hole or tail, and an element
 * count that wraps 64 bits is not a small count. */
START_TEST(header_rules) {
    float d[4] = {1, 2, 3, 4};
    expect_open_err(write_raw("dup",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                              d, 16),
                    "appears twice");
    expect_open_err(write_raw("overlap",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                              d, 16),
                    "tensors 'a' and 'b' overlap");
    expect_open_err(write_raw("same",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                              d, 16),
                    "overlap");
    expect_open_err(write_raw("hole",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                              d, 16),
                    "4 bytes before tensor 'b' belong to no tensor");
    expect_open_err(
        write_raw("tail", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 16),
        "8 bytes after the last tensor");
    /* 2^32 * 2^32 elements wrap to 0 in 64 bits, which matched 0 bytes */
    expect_open_err(write_raw("wrap",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                              "\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
                              "\"data_offsets\":[0,16]}}",
                              d, 16),
                    "tensor 'a' has a bad shape");
    expect_open_err(write_raw("wrap2",
                              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,16],"
                              "\"data_offsets\":[0,16]}}",
                              d, 16),
                    "bad shape");
    /* a well-formed file still opens: zero-size tensors anywhere, any order of offsets */
    char err[512];
    st_set *s = st_open_dir(write_raw("good",
                                      "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]},"
                                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                      d, 16),
                            err, sizeof err);
    ck_assert_msg(s, "%s", err);
    ck_assert_int_eq(st_count(s), 3);
    ck_assert_str_eq(st_notes(s), "");
    st_close(s);
}
END_TEST

/* NaN / Inf in weights: one pass at load names the tensors (a warning the server logs). */
START_TEST(nonfinite_weights) {
    float f[4] = {1, 2, 3, 4};
    uint16_t h[4] = {0x3c00, 0x3c00, 0x3c00, 0x3c00}, b[4] = {0x3f80, 0x3f80, 0x3f80, 0x3f80};
    unsigned char data[32];
    const char *hdr = "{\"f\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[16,24]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}}";
    char err[512];
    for (int round = 0; round < 4; round++) {
        float ff[4];
        uint16_t hh[4], bb[4];
        memcpy(ff, f, 16), memcpy(hh, h, 8), memcpy(bb, b, 8);
        if (round == 1) ff[3] = NAN;
        if (round == 2) hh[1] = 0x7c00;                    /* +Inf */
        if (round == 3) bb[0] = 0xff81, ff[2] = -INFINITY; /* NaN, -Inf */
        memcpy(data, ff, 16), memcpy(data + 16, hh, 8), memcpy(data + 24, bb, 8);
        st_set *s = st_open_dir(write_raw("nan", hdr, data, 32), err, sizeof err);
        ck_assert_msg(s, "%s", err);
        const char *n = st_notes(s);
        if (round == 0) ck_assert_str_eq(n, "");
        if (round == 1) ck_assert_msg(strstr(n, "1 tensor holds NaN or Inf values ('f')"), "%s", n);
        if (round == 2) ck_assert_msg(strstr(n, "('h')"), "%s", n);
        if (round == 3) ck_assert_msg(strstr(n, "2 tensors hold NaN or Inf values ('f', 'b')"), "%s", n);
        st_close(s);
    }
    /* through the model: a NaN in one weight of a fixture is named in t5_model_notes */
    const char *dir = mkmodel("nanmodel", "t5-tiny-gated");
    tensors T = read_all("t5-tiny-gated");
    t5_model *m = t5_model_load(fixture("t5-tiny-gated"), err, sizeof err);
    int n = names_of(&m->cfg, names);
    float *bad = NULL;
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_find(T.s, names[i]);
        T.t[i] = (st_out){names[i], "F32", t->ndim, {t->shape[0], t->shape[1]}, t->data, t->nbytes};
        if (!strcmp(names[i], "decoder.block.1.layer.1.EncDecAttention.v.weight")) {
            bad = malloc(t->nbytes);
            memcpy(bad, t->data, t->nbytes);
            bad[100] = NAN;
            T.t[i].data = bad;
        }
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(st_write(path, T.t, n, err, sizeof err), 0);
    t5_model *m2 = t5_model_load(dir, err, sizeof err);
    ck_assert_msg(m2, "%s", err);
    ck_assert_msg(strstr(t5_model_notes(m2), "'decoder.block.1.layer.1.EncDecAttention.v.weight'"), "%s",
                  t5_model_notes(m2));
    ck_assert_str_eq(t5_model_notes(m), "");
    t5_model_free(m2);
    t5_model_free(m);
    free(bad);
    free(T.t);
    free(T.own);
    st_close(T.s);
}
END_TEST

static void write_config(const char *dir, const char *json) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
}

START_TEST(bad_config) {
    const char *dir = mkmodel("cfg", "t5-tiny-gated");
    char d[512], from[2048], to[2048];
    snprintf(d, sizeof d, "%s", dir);
    snprintf(from, sizeof from, "%s/model.safetensors", fixture("t5-tiny-gated"));
    snprintf(to, sizeof to, "%s/model.safetensors", d);
    copy_file(from, to);
    write_config(d, "{\"d_model\": 64");
    expect_err(d, "config.json: cannot read");
    write_config(d, "[]");
    expect_err(d, "not a JSON object");
    write_config(d, "{\"vocab_size\": 8128, \"num_heads\": 4, \"d_ff\": 160, \"num_layers\": 2}");
    expect_err(d, "missing 'd_model'");
    write_config(
        d, "{\"vocab_size\": 8128, \"d_model\": -3, \"num_heads\": 4, \"d_ff\": 160, \"num_layers\": 2}");
    expect_err(d, "'d_model' must be an integer");
    write_config(d,
                 "{\"vocab_size\": 8128, \"d_model\": 64, \"num_heads\": 4, \"d_ff\": 160, \"num_layers\": 2,"
                 " \"feed_forward_proj\": \"gated-tanhshrink\"}");
    expect_err(d, "unsupported feed_forward_proj");
    /* valid config, wrong for these weights: the first tensor that disagrees is named */
    write_config(d, "{\"vocab_size\": 8128, \"d_model\": 64, \"num_heads\": 4, \"d_kv\": 16, \"d_ff\": 160,"
                    " \"num_layers\": 2, \"num_decoder_layers\": 3, \"feed_forward_proj\": \"relu\"}");
    expect_err(d, "missing tensor 'encoder.block.0.layer.1.DenseReluDense.wi.weight'");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/none", tmp);
    expect_err(sub, "config.json");
}
END_TEST

int main(void) {
    Suite *s = suite_create("engine_load");
    TCase *tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, same_weights_same_outputs);
    tcase_add_test(tc, embed_copies_only);
    tcase_add_test(tc, missing_and_misshapen);
    tcase_add_test(tc, truncated_and_garbage);
    tcase_add_test(tc, bad_config);
    tcase_add_test(tc, header_rules);
    tcase_add_test(tc, nonfinite_weights);
    suite_add_tcase(s, tc);
    return check_run(s);
}
