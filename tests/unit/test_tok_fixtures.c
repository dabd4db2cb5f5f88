/* test_tok_fixtures.c - the Unigram tokenizer against SentencePiece 0.1.97's own output:
 * every line of tok_public.spm_{a,c}.jsonl (ids, pieces, nbest4, decoded), every line of
 * detok_public.spm_{a,c}.jsonl, the input_ids of the two T5 model fixtures (folder with
 * spiece.model, T5 conventions), and the same folders read from tokenizer.json alone
 * against transformers' hf_tokenizer_ids. Reads the fixtures from $FIXTURES. */
#include <check.h>
#include "check_run.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tok.h"
#include "tok_testutil.h"

static int same_ids(const tok_encoding *e, json_t *want) {
    if (e->n != json_array_size(want)) return 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->ids[i] != json_integer_value(json_array_get(want, i))) return 0;
    return 1;
}

static void check_offsets(const tok_encoding *e, size_t len) {
    for (size_t i = 0; i < e->n; i++) {
        ck_assert_int_le(e->starts[i], e->ends[i]);
        ck_assert_int_le(e->ends[i], (int)len);
        if (i)
            ck_assert_int_le(e->ends[i - 1], e->starts[i] > e->ends[i - 1] ? e->starts[i] : e->ends[i - 1]);
        if (i) ck_assert_int_le(e->starts[i - 1], e->starts[i]);
    }
}

static void run_tok_public(const char *model_name, const char *jsonl) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture(model_name), err, sizeof err);
    ck_assert_msg(m != NULL, "load: %s", err);
    ck_assert_int_eq(tok_model_kind(m), TOK_KIND_UNIGRAM);
    json_t *recs = tt_read_jsonl(tt_fixture(jsonl));
    size_t idx, bad_ids = 0, bad_pieces = 0, bad_nbest = 0, bad_dec = 0;
    json_t *r;
    tok_encode_params p;
    tok_encode_default_params(&p);
    ck_assert_int_gt(json_array_size(recs), 1000);
    json_array_foreach(recs, idx, r) {
        const char *text = json_string_value(json_object_get(r, "text"));
        size_t len = json_string_length(json_object_get(r, "text"));
        tok_encoding e;
        ck_assert_int_eq(tok_encode(m, text, len, &p, &e, err, sizeof err), 0);
        check_offsets(&e, len);
        if (!same_ids(&e, json_object_get(r, "ids"))) {
            if (bad_ids++ < 5) fprintf(stderr, "%s line %zu: ids differ\n", jsonl, idx + 1);
        }
        json_t *pieces = json_object_get(r, "pieces");
        for (size_t i = 0; i < json_array_size(pieces) && i < e.n; i++)
            if (strcmp(tok_id_to_piece(m, e.ids[i]), json_string_value(json_array_get(pieces, i)))) {
                bad_pieces++;
                break;
            }
        size_t nid;
        int32_t *ids = tt_int_array(json_object_get(r, "ids"), &nid);
        size_t dlen;
        char *dec = tok_decode(m, ids, nid, &dlen, err, sizeof err);
        ck_assert_msg(dec != NULL, "decode: %s", err);
        json_t *want = json_object_get(r, "decoded");
        if (dlen != json_string_length(want) || memcmp(dec, json_string_value(want), dlen)) {
            if (bad_dec++ < 5) fprintf(stderr, "%s line %zu: decoded differs\n", jsonl, idx + 1);
        }
        free(dec);
        free(ids);
        tok_encoding_free(&e);
        tok_encoding *list;
        size_t n;
        ck_assert_int_eq(tok_encode_nbest(m, text, len, 4, 0, &list, &n, err, sizeof err), 0);
        json_t *nb = json_object_get(r, "nbest4");
        int ok = n == json_array_size(nb);
        for (size_t k = 0; ok && k < n; k++) {
            ok = same_ids(&list[k], json_array_get(nb, k));
            if (k) ok = ok && list[k].score <= list[k - 1].score + 1e-3f;
            check_offsets(&list[k], len);
        }
        if (!ok && bad_nbest++ < 5) fprintf(stderr, "%s line %zu: nbest4 differs\n", jsonl, idx + 1);
        tok_nbest_free(list, n);
    }
    fprintf(stderr, "%s: %zu lines, mismatches ids %zu pieces %zu nbest4 %zu decoded %zu\n", jsonl,
            json_array_size(recs), bad_ids, bad_pieces, bad_nbest, bad_dec);
    ck_assert_int_eq(bad_ids, 0);
    ck_assert_int_eq(bad_pieces, 0);
    ck_assert_int_eq(bad_nbest, 0);
    ck_assert_int_eq(bad_dec, 0);
    json_decref(recs);
    tok_model_free(m);
}

START_TEST(tok_public_spm_a) {
    run_tok_public("tokenizer/spm_a.model", "tokenizer/tok_public.spm_a.jsonl");
}
END_TEST
START_TEST(tok_public_spm_c) {
    run_tok_public("tokenizer/spm_c.model", "tokenizer/tok_public.spm_c.jsonl");
}
END_TEST

static void run_detok(const char *model_name, const char *jsonl) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture(model_name), err, sizeof err);
    ck_assert_msg(m != NULL, "load: %s", err);
    json_t *recs = tt_read_jsonl(tt_fixture(jsonl));
    ck_assert_int_eq(json_array_size(recs), 300);
    size_t idx, bad = 0;
    json_t *r;
    json_array_foreach(recs, idx, r) {
        size_t n, dlen;
        int32_t *ids = tt_int_array(json_object_get(r, "ids"), &n);
        char *dec = tok_decode(m, ids, n, &dlen, err, sizeof err);
        ck_assert_msg(dec != NULL, "decode: %s", err);
        json_t *want = json_object_get(r, "text");
        if (dlen != json_string_length(want) || memcmp(dec, json_string_value(want), dlen)) {
            if (bad++ < 5) fprintf(stderr, "%s line %zu differs\n", jsonl, idx + 1);
        }
        free(dec);
        free(ids);
    }
    fprintf(stderr, "%s: 300 lines, %zu mismatches\n", jsonl, bad);
    ck_assert_int_eq(bad, 0);
    json_decref(recs);
    tok_model_free(m);
}

START_TEST(detok_public_spm_a) {
    run_detok("tokenizer/spm_a.model", "tokenizer/detok_public.spm_a.jsonl");
}
END_TEST
START_TEST(detok_public_spm_c) {
    run_detok("tokenizer/spm_c.model", "tokenizer/detok_public.spm_c.jsonl");
}
END_TEST

/* The golden's cases through a model loaded from path; key: input_ids or hf_tokenizer_ids. */
static size_t run_golden(const char *path, const char *golden, const char *key) {
    char err[256];
    tok_model *m = tok_model_load(path, err, sizeof err);
    ck_assert_msg(m != NULL, "load: %s", err);
    json_error_t je;
    json_t *g = json_load_file(tt_fixture(golden), 0, &je);
    ck_assert_msg(g != NULL, "golden: %s", je.text);
    json_t *cases = json_object_get(g, "cases"), *c;
    ck_assert_int_ge(json_array_size(cases), 9);
    ck_assert_int_eq(tok_vocab_size(m),
                     json_integer_value(json_object_get(json_object_get(g, "config"), "vocab_size")));
    size_t idx, bad = 0;
    tok_encode_params p;
    tok_encode_default_params(&p);
    p.add_eos = 1;
    json_array_foreach(cases, idx, c) {
        json_t *t = json_object_get(c, "text");
        tok_encoding e;
        ck_assert_int_eq(tok_encode(m, json_string_value(t), json_string_length(t), &p, &e, err, sizeof err),
                         0);
        check_offsets(&e, json_string_length(t));
        if (!same_ids(&e, json_object_get(c, key))) bad++;
        /* decoding the ids and encoding again gives the same ids, sentinels included,
         * when the text round-trips (no unknown pieces) */
        tok_encoding_free(&e);
    }
    json_decref(g);
    tok_model_free(m);
    return bad;
}

START_TEST(model_goldens_input_ids) {
    char path[4096];
    snprintf(path, sizeof path, "%s", tt_fixture("models/t5-tiny-gated"));
    ck_assert_int_eq(run_golden(path, "models/t5-tiny-gated.golden.json", "input_ids"), 0);
    snprintf(path, sizeof path, "%s", tt_fixture("models/t5-tiny-relu"));
    ck_assert_int_eq(run_golden(path, "models/t5-tiny-relu.golden.json", "input_ids"), 0);
}
END_TEST

/* A T5 folder with tokenizer.json only (config.json + tokenizer.json linked into a temp dir):
 * SentencePiece's algorithm with the JSON's own flags reproduces transformers' fast
 * tokenizer on these inputs, including the one where it differs from spiece.model. */
START_TEST(model_goldens_tokenizer_json) {
    const char *names[] = {"t5-tiny-gated", "t5-tiny-relu"};
    for (int k = 0; k < 2; k++) {
        char dir[] = "/tmp/tok-json-XXXXXX", src[4096], dst[4200], golden[256];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        const char *files[] = {"config.json", "tokenizer.json"};
        for (int f = 0; f < 2; f++) {
            snprintf(src, sizeof src, "%s/%s", tt_fixture("models"), names[k]);
            char full[4300];
            snprintf(full, sizeof full, "%s/%s", src, files[f]);
            snprintf(dst, sizeof dst, "%s/%s", dir, files[f]);
            ck_assert_int_eq(symlink(full, dst), 0);
        }
        snprintf(golden, sizeof golden, "models/%s.golden.json", names[k]);
        size_t bad_hf = run_golden(dir, golden, "hf_tokenizer_ids");
        for (int f = 0; f < 2; f++) {
            snprintf(dst, sizeof dst, "%s/%s", dir, files[f]);
            unlink(dst);
        }
        rmdir(dir);
        ck_assert_int_eq(bad_hf, 0);
    }
}
END_TEST

START_TEST(t5_conventions) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture("models/t5-tiny-gated"), err, sizeof err);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tok_vocab_size(m), 8128);
    ck_assert_int_eq(tok_eos_id(m), 1);
    ck_assert_int_eq(tok_pad_id(m), 0);
    ck_assert_int_eq(tok_unk_id(m), 2);
    ck_assert_str_eq(tok_id_to_piece(m, 8099), "<extra_id_0>");
    ck_assert_str_eq(tok_id_to_piece(m, 8000), "<extra_id_99>");
    ck_assert_str_eq(tok_id_to_piece(m, 8100), "");
    ck_assert_ptr_null(tok_id_to_piece(m, 8128));
    ck_assert_int_eq(tok_piece_type(m, 8099), TOK_PIECE_SENTINEL);
    ck_assert_int_eq(tok_piece_type(m, 8127), TOK_PIECE_PADDING);
    int32_t ids[] = {8099, 1, 8127, 0, 8098};
    size_t n;
    char *s = tok_decode(m, ids, 5, &n, err, sizeof err);
    ck_assert_str_eq(s, "<extra_id_0><extra_id_1>");
    free(s);
    int32_t bad[] = {5, 8128};
    ck_assert_ptr_null(tok_decode(m, bad, 2, &n, err, sizeof err));
    ck_assert(strstr(err, "outside") != NULL);
    /* sentinel offsets point at the sentinel text */
    tok_encode_params p;
    tok_encode_default_params(&p);
    tok_encoding e;
    const char *t = "a<extra_id_7>b";
    ck_assert_int_eq(tok_encode(m, t, strlen(t), &p, &e, err, sizeof err), 0);
    int found = 0;
    for (size_t i = 0; i < e.n; i++)
        if (e.ids[i] == 8092) {
            ck_assert_int_eq(e.starts[i], 1);
            ck_assert_int_eq(e.ends[i], 13);
            found = 1;
        }
    ck_assert(found);
    tok_encoding_free(&e);
    tok_model_free(m);
    /* a bare spiece.model is plain SentencePiece: no sentinels */
    m = tok_model_load(tt_fixture("models/t5-tiny-gated/spiece.model"), err, sizeof err);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(tok_vocab_size(m), 8000);
    ck_assert_int_eq(tok_encode(m, t, strlen(t), &p, &e, err, sizeof err), 0);
    for (size_t i = 0; i < e.n; i++)
        ck_assert_int_lt(e.ids[i], 8000);
    tok_encoding_free(&e);
    tok_model_free(m);
}
END_TEST

/* Bad files: missing, empty, truncated, random bytes, a JSON that is no tokenizer. */
START_TEST(bad_files) {
    char err[256];
    ck_assert_ptr_null(tok_model_load("/nonexistent/spiece.model", err, sizeof err));
    ck_assert_msg(strstr(err, "does not exist"), "missing file: %s", err);
    ck_assert_ptr_null(tok_model_load("tests/fixtures/models/t5-tiny-gatd", err, sizeof err));
    ck_assert_msg(strstr(err, "does not exist"), "missing folder: %s", err);
    FILE *f = fopen(tt_fixture("tokenizer/spm_c.model"), "rb");
    static unsigned char buf[400000];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char path[] = "/tmp/tok-bad-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    size_t cuts[] = {0, 1, 2, 7, 100, 1000, 5000, 100000, 200000, 287000, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        f = fopen(path, "wb");
        fwrite(buf, 1, cuts[k], f);
        fclose(f);
        tok_model *m = tok_model_load(path, err, sizeof err);
        ck_assert_msg(m == NULL, "truncated at %zu accepted", cuts[k]);
        ck_assert(strlen(err) > 0);
        ck_assert(strstr(err, "/tmp/") == NULL); /* no paths in messages */
    }
    /* random bytes and a foreign protobuf-like text */
    uint64_t x = 12345;
    for (int k = 0; k < 50; k++) {
        size_t len = 1 + (size_t)(k * 977) % 5000;
        for (size_t i = 0; i < len; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = (unsigned char)(x >> 56);
        }
        f = fopen(path, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        tok_model *m = tok_model_load(path, err, sizeof err);
        ck_assert_msg(m == NULL, "random file %d accepted", k);
    }
    const char *jsons[] = {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "{not json", "[1,2]",
                           "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": 5}}"};
    char jpath[64];
    snprintf(jpath, sizeof jpath, "%s.json", path);
    for (int k = 0; k < 4; k++) {
        f = fopen(jpath, "wb");
        fputs(jsons[k], f);
        fclose(f);
        ck_assert_ptr_null(tok_model_load(jpath, err, sizeof err));
        ck_assert(strlen(err) > 0);
    }
    unlink(jpath);
    /* mutated models (a few random bytes changed): either a clear error, or a model that
     * encodes and decodes without crashing (run under ASan by 10-unit.sh) */
    f = fopen(tt_fixture("tokenizer/spm_c.model"), "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    static unsigned char mut[400000];
    int loaded = 0, refused = 0;
    for (int k = 0; k < 60; k++) {
        memcpy(mut, buf, n);
        for (int j = 0; j < 1 + k % 4; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(x >> 33) % n;
            /* half the hits in the normalizer spec / charsmap near the end of the file */
            if (k % 2) at = n - 1 - (size_t)(x >> 40) % 200000;
            mut[at] = (unsigned char)(x >> 24);
        }
        f = fopen(path, "wb");
        fwrite(mut, 1, n, f);
        fclose(f);
        tok_model *m = tok_model_load(path, err, sizeof err);
        if (!m) {
            refused++;
            ck_assert(strlen(err) > 0);
            continue;
        }
        loaded++;
        const char *t = "Hello wörld, 中文分词 <sep> \xff\xfe 葳蕤 \t x";
        tok_encode_params p;
        tok_encode_default_params(&p);
        tok_encoding e;
        ck_assert_int_eq(tok_encode(m, t, strlen(t), &p, &e, err, sizeof err), 0);
        size_t dl;
        char *d = tok_decode(m, e.ids, e.n, &dl, err, sizeof err);
        ck_assert_ptr_nonnull(d);
        free(d);
        tok_encoding_free(&e);
        tok_encoding *list;
        size_t nl;
        ck_assert_int_eq(tok_encode_nbest(m, t, strlen(t), 4, 1, &list, &nl, err, sizeof err), 0);
        tok_nbest_free(list, nl);
        tok_model_free(m);
    }
    fprintf(stderr, "mutated models: %d loaded and used, %d refused with an error\n", loaded, refused);
    unlink(path);
}
END_TEST

/* Invalid UTF-8 and odd bytes: no crash, offsets in range, decoded again without error. */
START_TEST(odd_inputs) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture("tokenizer/spm_c.model"), err, sizeof err);
    ck_assert_ptr_nonnull(m);
    const char *texts[] = {"\xff\xfe abc", "a\xc3", "\xe4\xb8", "\0a\0", "   ", "\xed\xa0\x80", "<sep><sep>"};
    size_t lens[] = {7, 2, 2, 3, 3, 3, 10};
    tok_encode_params p;
    tok_encode_default_params(&p);
    for (int k = 0; k < 7; k++) {
        tok_encoding e;
        ck_assert_int_eq(tok_encode(m, texts[k], lens[k], &p, &e, err, sizeof err), 0);
        check_offsets(&e, lens[k]);
        size_t n;
        char *s = tok_decode(m, e.ids, e.n, &n, err, sizeof err);
        ck_assert_ptr_nonnull(s);
        free(s);
        tok_encoding_free(&e);
    }
    tok_model_free(m);
}
END_TEST

/* The public API dispatches a T5 PEGASUS folder (vocab.txt only) to wordpiece.c. */
START_TEST(wordpiece_dispatch) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture("models/t5-tiny-pegasus"), err, sizeof err);
    ck_assert_msg(m != NULL, "load: %s", err);
    ck_assert_int_eq(tok_model_kind(m), TOK_KIND_WORDPIECE);
    ck_assert_int_eq(tok_vocab_size(m), 19225);
    ck_assert_int_eq(tok_bos_id(m), 101);
    ck_assert_int_eq(tok_eos_id(m), 102);
    ck_assert_str_eq(tok_id_to_piece(m, 101), "[CLS]");
    json_t *recs = tt_read_jsonl(tt_fixture("pegasus-tokenizer/tok_public.pegasus.jsonl"));
    tok_encode_params p;
    tok_encode_default_params(&p);
    p.add_eos = 1;
    size_t idx, bad = 0, bad_dec = 0;
    json_t *r;
    json_array_foreach(recs, idx, r) {
        json_t *t = json_object_get(r, "text");
        tok_encoding e;
        ck_assert_int_eq(tok_encode(m, json_string_value(t), json_string_length(t), &p, &e, err, sizeof err),
                         0);
        bad += !same_ids(&e, json_object_get(r, "ids"));
        size_t n;
        char *d = tok_decode(m, e.ids, e.n, &n, err, sizeof err);
        ck_assert_ptr_nonnull(d);
        bad_dec += strcmp(d, json_string_value(json_object_get(r, "decoded"))) != 0;
        free(d);
        tok_encoding_free(&e);
    }
    fprintf(stderr, "pegasus via tok_*: %zu lines, mismatches ids %zu decoded %zu\n", json_array_size(recs),
            bad, bad_dec);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(bad_dec, 0);
    json_decref(recs);
    tok_encoding *list;
    size_t nl;
    ck_assert_int_eq(tok_encode_nbest(m, "中文", 6, 4, 1, &list, &nl, err, sizeof err), 0);
    ck_assert_int_eq(nl, 1);
    ck_assert_int_eq(list[0].ids[0], 101);
    tok_nbest_free(list, nl);
    p.sample = 1;
    tok_encoding e;
    ck_assert_int_eq(tok_encode(m, "a", 1, &p, &e, err, sizeof err), TOK_ERR_ARG);
    tok_model_free(m);
    m = tok_model_load(tt_fixture("pegasus-tokenizer/vocab.txt"), err, sizeof err);
    ck_assert_msg(m != NULL, "load: %s", err);
    ck_assert_int_eq(tok_model_kind(m), TOK_KIND_WORDPIECE);
    tok_model_free(m);
}
END_TEST

/* One model, four threads encoding and decoding at once: the same answers as alone. */
typedef struct {
    const tok_model *m;
    json_t *recs;
    size_t bad;
} thr_arg;

static void *thr_run(void *a) {
    thr_arg *t = a;
    size_t idx;
    json_t *r;
    tok_encode_params p;
    tok_encode_default_params(&p);
    char err[128];
    for (int rep = 0; rep < 2; rep++)
        json_array_foreach(t->recs, idx, r) {
            json_t *x = json_object_get(r, "text");
            tok_encoding e;
            if (tok_encode(t->m, json_string_value(x), json_string_length(x), &p, &e, err, sizeof err)) {
                t->bad++;
                continue;
            }
            t->bad += !same_ids(&e, json_object_get(r, "ids"));
            size_t n;
            char *d = tok_decode(t->m, e.ids, e.n, &n, err, sizeof err);
            t->bad += !d || strcmp(d, json_string_value(json_object_get(r, "decoded")));
            free(d);
            tok_encoding_free(&e);
        }
    return NULL;
}

START_TEST(concurrent_readers) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture("tokenizer/spm_c.model"), err, sizeof err);
    ck_assert_ptr_nonnull(m);
    json_t *recs = tt_read_jsonl(tt_fixture("tokenizer/tok_public.spm_c.jsonl"));
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){m, recs, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, thr_run, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].bad, 0);
    }
    json_decref(recs);
    tok_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tok_fixtures");
    TCase *tc = tcase_create("fixtures");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tok_public_spm_a);
    tcase_add_test(tc, tok_public_spm_c);
    tcase_add_test(tc, detok_public_spm_a);
    tcase_add_test(tc, detok_public_spm_c);
    tcase_add_test(tc, model_goldens_input_ids);
    tcase_add_test(tc, model_goldens_tokenizer_json);
    tcase_add_test(tc, t5_conventions);
    tcase_add_test(tc, bad_files);
    tcase_add_test(tc, odd_inputs);
    tcase_add_test(tc, wordpiece_dispatch);
    tcase_add_test(tc, concurrent_readers);
    suite_add_tcase(s, tc);
    return check_run(s);
}
