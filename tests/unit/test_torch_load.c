/* test_torch_load.c - pytorch_model.bin folders written by torch.save itself (Debian's
 * python3-torch, through tests/torch/mk_torch_files.py) from the fixture checkpoints, in
 * every layout: zip, legacy, sharded with an index (both formats), shared storages,
 * views at storage offsets and with column-major strides, float16 / bfloat16 copies.
 * Each must load to the same tensors as its safetensors reference: encoder output bit
 * for bit and the same greedy ids. Also: zip storages are used in place from the mapping
 * (zero-copy), the format is reported, and safetensors wins over torch files. */
#include <check.h>
#include "check_run.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5.h"
#include "t5_dev.h"
#include "tok_testutil.h"

static char tmp[256];

static const char *fixture(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    return tt_fixture(rel);
}

static void setup(void) {
    snprintf(tmp, sizeof tmp, "/tmp/t5-torch-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes the torch variants of fixture NAME into tmp/NAME; returns variants.json's object. */
static json_t *make_variants(const char *name) {
    char cmd[2048], out[512];
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/torch/mk_torch_files.py '%s' '%s' > /dev/null",
             fixture(name), out);
    ck_assert_msg(system(cmd) == 0, "%s failed (python3-torch installed? run from the repository root)", cmd);
    char p[600];
    snprintf(p, sizeof p, "%s/variants.json", out);
    json_error_t je;
    json_t *v = json_load_file(p, 0, &je);
    ck_assert_msg(json_is_object(v), "%s: %s", p, je.text);
    return v;
}

typedef struct {
    float enc[16 * 512];
    int32_t ids[32];
    int n;
} outputs;

static void run(const char *dir, outputs *o, char *format, size_t flen) {
    char err[512];
    t5_model *m = t5_model_load(dir, err, sizeof err);
    ck_assert_msg(m, "%s: %s", dir, err);
    ck_assert_int_le(t5_model_config(m)->d_model * 6, (int)(sizeof o->enc / sizeof o->enc[0]));
    int32_t in[] = {57, 300, 12, 9, 77, 1};
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(t5_encode(m, in, 6, o->enc, 1, err, sizeof err), 0);
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = 12;
    t5_result r;
    ck_assert_int_eq(t5_generate(m, in, 6, &p, 1, &r, err, sizeof err), 0);
    o->n = r.seqs[0].n;
    memcpy(o->ids, r.seqs[0].ids, (size_t)o->n * sizeof *o->ids);
    t5_result_free(&r);
    snprintf(format, flen, "%s", t5_model_format(m));
    t5_model_free(m);
}

static void same_as_reference(const char *name) {
    json_t *v = make_variants(name);
    const char *variant;
    json_t *ref;
    int n = 0;
    static outputs a, b;
    json_object_foreach(v, variant, ref) {
        char dir[600], fa[32], fb[32];
        snprintf(dir, sizeof dir, "%s/%s/%s", tmp, name, variant);
        run(dir, &a, fa, sizeof fa);
        run(json_string_value(ref), &b, fb, sizeof fb);
        ck_assert_msg(!memcmp(a.enc, b.enc, sizeof a.enc), "%s/%s: encoder output differs from %s", name,
                      variant, json_string_value(ref));
        ck_assert_int_eq(a.n, b.n);
        ck_assert_msg(!memcmp(a.ids, b.ids, sizeof a.ids), "%s/%s: greedy ids differ", name, variant);
        ck_assert_str_eq(fa, strstr(variant, "legacy") ? "pytorch-legacy" : "pytorch-zip");
        ck_assert_str_eq(fb, "safetensors");
        n++;
    }
    ck_assert_int_ge(n, 8); /* 9 when the fixture is float16: a float32 copy too */
    json_decref(v);
}

START_TEST(gated_f32_variants) {
    same_as_reference("t5-tiny-gated");
}
END_TEST

START_TEST(relu_f16_variants) {
    same_as_reference("t5-tiny-relu");
}
END_TEST

START_TEST(pegasus_variants) {
    same_as_reference("t5-tiny-pegasus");
}
END_TEST

/* torch's zip storages sit at 64-byte offsets: the tensors point into the mapping, no copy;
 * shared / embed_tokens saved from one storage point at the same bytes. */
START_TEST(zip_is_zero_copy) {
    json_decref(make_variants("t5-tiny-gated"));
    char dir[600], err[512];
    snprintf(dir, sizeof dir, "%s/t5-tiny-gated/zip", tmp);
    st_set *s = st_open_dir(dir, err, sizeof err);
    ck_assert_msg(s, "%s", err);
    ck_assert_uint_eq(st_copied_bytes(s), 0);
    ck_assert_str_eq(st_notes(s), "");
    ck_assert_str_eq(st_format(s), "pytorch-zip");
    size_t total = 0;
    for (int i = 0; i < st_count(s); i++)
        total += st_get(s, i)->nbytes;
    ck_assert_uint_gt(st_mapped_bytes(s), total);
    st_close(s);
    snprintf(dir, sizeof dir, "%s/t5-tiny-gated/views", tmp);
    s = st_open_dir(dir, err, sizeof err);
    ck_assert_msg(s, "%s", err);
    const st_tensor *sh = st_find(s, "shared.weight"), *e = st_find(s, "encoder.embed_tokens.weight"),
                    *d = st_find(s, "decoder.embed_tokens.weight");
    ck_assert(sh && e && d);
    ck_assert_ptr_eq(sh->data, e->data);
    ck_assert_ptr_eq(sh->data, d->data);
    ck_assert_msg(strstr(st_notes(s), "strided tensor views copied"), "%s", st_notes(s));
    st_close(s);
}
END_TEST

/* A folder with both: model.safetensors is read (a garbage pytorch_model.bin beside it is not). */
START_TEST(safetensors_wins) {
    json_decref(make_variants("t5-tiny-pegasus"));
    char dir[600], cmd[2048], err[512];
    snprintf(dir, sizeof dir, "%s/t5-tiny-pegasus/zip", tmp);
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/'", fixture("t5-tiny-pegasus"), dir);
    ck_assert_int_eq(system(cmd), 0);
    t5_model *m = t5_model_load(dir, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    ck_assert_str_eq(t5_model_format(m), "safetensors");
    t5_model_free(m);
    snprintf(cmd, sizeof cmd, "echo garbage > '%s/pytorch_model.bin'", dir);
    ck_assert_int_eq(system(cmd), 0);
    m = t5_model_load(dir, err, sizeof err);
    ck_assert_msg(m, "%s", err);
    t5_model_free(m);
    snprintf(cmd, sizeof cmd, "rm '%s/model.safetensors'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_ptr_null(t5_model_load(dir, err, sizeof err));
    ck_assert_msg(strstr(err, "pytorch_model.bin is not a torch checkpoint"), "%s", err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("torch_load");
    TCase *tc = tcase_create("torch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gated_f32_variants);
    tcase_add_test(tc, relu_f16_variants);
    tcase_add_test(tc, pegasus_variants);
    tcase_add_test(tc, zip_is_zero_copy);
    tcase_add_test(tc, safetensors_wins);
    suite_add_tcase(s, tc);
    return check_run(s);
}
