/* test_wordpiece.c - the T5 PEGASUS tokenizer (tokenizer/wordpiece.c, jieba.c) against
 * references made by jieba 0.42.1 and transformers' BERT tokenizer: every line of
 * $FIXTURES/pegasus-tokenizer/tok_public.pegasus.jsonl (jieba words, tokens, ids with
 * [CLS]/[SEP], decoded text), the input_ids and decoded outputs of
 * $FIXTURES/models/t5-tiny-pegasus.golden.json, and the error paths (bad vocab, bad
 * dictionary, bad ids, invalid UTF-8). Needs FIXTURES (tests/run.sh sets it). */
#include <check.h>
#include "check_run.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tok_dev.h"
#include "tok_testutil.h"

static wp_model *model; /* the fixture vocab with the built-in jieba dictionary */
static char path_buf[4096];

static const char *fx(const char *rel) {
    snprintf(path_buf, sizeof path_buf, "%s", tt_fixture(rel));
    return path_buf;
}

static void setup_model(void) {
    char err[256] = "";
    model = wp_model_load(fx("pegasus-tokenizer/vocab.txt"), NULL, err, sizeof err);
    if (!model) {
        fprintf(stderr, "test_wordpiece: cannot load the fixture vocab: %s\n", err);
        exit(1);
    }
}

static void teardown_model(void) {
    wp_model_free(model);
    model = NULL;
}

typedef struct {
    json_t *words;
    char err[256];
} words_ctx;

static void collect_word(void *user, const char *w, size_t n) {
    json_array_append_new(((words_ctx *)user)->words, json_stringn(w, n));
}

/* Compares ids with the expected JSON ids array; describes the first difference in msg. */
static int same_ids(const int32_t *ids, size_t n, json_t *want, char *msg, size_t msglen) {
    if (json_array_size(want) != n) {
        snprintf(msg, msglen, "%zu ids, expected %zu", n, json_array_size(want));
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(want, i))) {
            snprintf(msg, msglen, "id %zu is %d, expected %lld", i, ids[i],
                     (long long)json_integer_value(json_array_get(want, i)));
            return 0;
        }
    return 1;
}

START_TEST(test_fixture_lines) {
    FILE *f = fopen(fx("pegasus-tokenizer/tok_public.pegasus.jsonl"), "rb");
    ck_assert_msg(f != NULL, "missing %s", path_buf);
    char *line = NULL;
    size_t cap = 0, lineno = 0, bad = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *d = json_loadb(line, (size_t)got, 0, &jerr);
        ck_assert_msg(d != NULL, "line %zu: bad JSON", lineno);
        json_t *jt = json_object_get(d, "text");
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt);
        char msg[256] = "";
        int ok = 1;
        /* jieba */
        words_ctx wc = {.words = json_array()};
        ck_assert_int_eq(wp_jieba_cut(model, text, len, collect_word, &wc), 0);
        if (!json_equal(wc.words, json_object_get(d, "jieba"))) {
            ok = 0;
            snprintf(msg, sizeof msg, "jieba words differ");
        }
        json_decref(wc.words);
        /* ids, tokens, offsets */
        tok_encoding e;
        char err[256];
        ck_assert_int_eq(wp_encode(model, text, len, 1, &e, err, sizeof err), 0);
        if (ok && !same_ids(e.ids, e.n, json_object_get(d, "ids"), msg, sizeof msg)) ok = 0;
        json_t *toks = json_object_get(d, "tokens");
        if (ok && json_array_size(toks) + 2 != e.n) {
            ok = 0;
            snprintf(msg, sizeof msg, "token count");
        }
        for (size_t i = 0; ok && i + 2 < e.n; i++)
            if (strcmp(wp_id_to_piece(model, e.ids[i + 1]), json_string_value(json_array_get(toks, i)))) {
                ok = 0;
                snprintf(msg, sizeof msg, "token %zu differs", i);
            }
        if (ok && (e.starts[0] != 0 || e.ends[0] != 0 || e.starts[e.n - 1] != (int32_t)len ||
                   e.ends[e.n - 1] != (int32_t)len)) {
            ok = 0;
            snprintf(msg, sizeof msg, "special spans");
        }
        for (size_t i = 1; ok && i + 1 < e.n; i++) {
            if (e.starts[i] < 0 || e.starts[i] >= e.ends[i] || e.ends[i] > (int32_t)len ||
                (i > 1 && e.starts[i] < e.starts[i - 1])) {
                ok = 0;
                snprintf(msg, sizeof msg, "bad span of token %zu", i);
            }
            /* a token taken whole from the vocabulary covers exactly its own text */
            const char *p = wp_id_to_piece(model, e.ids[i]);
            size_t pl = strlen(p);
            if (ok && e.ids[i] != 100 && strncmp(p, "##", 2) != 0 &&
                (size_t)(e.ends[i] - e.starts[i]) == pl && memcmp(text + e.starts[i], p, pl) != 0 &&
                strcmp(p, "[UNK]") != 0) {
                /* same length but other bytes is only possible after lowercasing/NFD */
                int ascii_ci = 1;
                for (size_t k = 0; k < pl; k++) {
                    char a = text[e.starts[i] + k], b = p[k];
                    if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
                    if (a != b) ascii_ci = 0;
                }
                if (ascii_ci == 0 && (unsigned char)p[0] < 0x80) {
                    ok = 0;
                    snprintf(msg, sizeof msg, "span of token %zu does not hold it", i);
                }
            }
        }
        /* decode */
        size_t dl = 0;
        char *dec = wp_decode(model, e.ids, e.n, &dl, err, sizeof err);
        ck_assert_msg(dec != NULL, "line %zu: decode failed: %s", lineno, err);
        const char *want = json_string_value(json_object_get(d, "decoded"));
        if (ok && (dl != strlen(want) || strcmp(dec, want))) {
            ok = 0;
            snprintf(msg, sizeof msg, "decoded text differs");
        }
        free(dec);
        tok_encoding_free(&e);
        if (!ok) {
            bad++;
            if (bad <= 10) fprintf(stderr, "tok_public.pegasus.jsonl line %zu: %s\n", lineno, msg);
        }
        json_decref(d);
    }
    free(line);
    fclose(f);
    fprintf(stderr, "tok_public.pegasus.jsonl: %zu lines, %zu differ\n", lineno, bad);
    ck_assert_msg(lineno == 1534, "expected 1534 fixture lines, read %zu", lineno);
    ck_assert_msg(bad == 0, "%zu of %zu fixture lines differ", bad, lineno);
}
END_TEST

START_TEST(test_tiny_pegasus_golden) {
    char err[256] = "";
    wp_model *m = wp_model_load(fx("models/t5-tiny-pegasus/vocab.txt"), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "load: %s", err);
    json_error_t jerr;
    json_t *g = json_load_file(fx("models/t5-tiny-pegasus.golden.json"), 0, &jerr);
    ck_assert_msg(g != NULL, "missing or bad %s", path_buf);
    json_t *cases = json_object_get(g, "cases");
    ck_assert_int_ge(json_array_size(cases), 7);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *jt = json_object_get(c, "text");
        tok_encoding e;
        ck_assert_int_eq(wp_encode(m, json_string_value(jt), json_string_length(jt), 1, &e, err, sizeof err),
                         0);
        char msg[128];
        ck_assert_msg(same_ids(e.ids, e.n, json_object_get(c, "input_ids"), msg, sizeof msg), "case %zu: %s",
                      i, msg);
        tok_encoding_free(&e);
        /* decoding the generated ids gives the golden texts */
        json_t *gr = json_object_get(c, "greedy");
        json_t *ids = json_object_get(gr, "ids");
        int32_t buf[256];
        size_t n = json_array_size(ids);
        ck_assert_uint_le(n, 256);
        for (size_t k = 0; k < n; k++)
            buf[k] = (int32_t)json_integer_value(json_array_get(ids, k));
        char *dec = wp_decode(m, buf, n, NULL, err, sizeof err);
        ck_assert_ptr_nonnull(dec);
        ck_assert_str_eq(dec, json_string_value(json_object_get(gr, "text")));
        free(dec);
        json_t *b4 = json_object_get(c, "beam4"); /* `text` is the best sequence's */
        json_t *seq = json_array_get(json_object_get(b4, "sequences"), 0);
        n = json_array_size(seq);
        ck_assert_uint_le(n, 256);
        ck_assert_uint_gt(n, 0);
        for (size_t k = 0; k < n; k++)
            buf[k] = (int32_t)json_integer_value(json_array_get(seq, k));
        dec = wp_decode(m, buf, n, NULL, err, sizeof err);
        ck_assert_ptr_nonnull(dec);
        ck_assert_str_eq(dec, json_string_value(json_object_get(b4, "text")));
        free(dec);
    }
    json_decref(g);
    wp_model_free(m);
}
END_TEST

START_TEST(test_specials_and_lookup) {
    ck_assert_int_eq(wp_vocab_size(model), 19225);
    ck_assert_int_eq(wp_token_id(model, "[UNK]"), 100);
    ck_assert_int_eq(wp_token_id(model, "[CLS]"), 101);
    ck_assert_int_eq(wp_token_id(model, "[SEP]"), 102);
    ck_assert_int_eq(wp_token_id(model, "no-such-token-here"), -1);
    ck_assert_str_eq(wp_id_to_piece(model, 101), "[CLS]");
    ck_assert_ptr_null(wp_id_to_piece(model, -1));
    ck_assert_ptr_null(wp_id_to_piece(model, 19225));
    tok_encoding e;
    char err[256];
    ck_assert_int_eq(wp_encode(model, "", 0, 0, &e, err, sizeof err), 0); /* no specials */
    ck_assert_uint_eq(e.n, 0);
    tok_encoding_free(&e);
    ck_assert_int_eq(wp_encode(model, "Hello", 5, 0, &e, err, sizeof err), 0);
    ck_assert_uint_eq(e.n, 1);
    ck_assert_str_eq(wp_id_to_piece(model, e.ids[0]), "hello");
    ck_assert_int_eq(e.starts[0], 0);
    ck_assert_int_eq(e.ends[0], 5);
    tok_encoding_free(&e);
}
END_TEST

static void count_bytes(void *user, const char *w, size_t n) {
    (void)w;
    *(size_t *)user += n;
}

START_TEST(test_invalid_utf8_and_controls) {
    /* invalid bytes are words of their own for jieba and vanish in BERT's cleaning (as U+FFFD) */
    const char text[] = "\xff"
                        "abc\xe4\xb8"
                        "\x00\x01中文\xc0\xaf";
    size_t len = sizeof text - 1;
    size_t total = 0;
    ck_assert_int_eq(wp_jieba_cut(model, text, len, count_bytes, &total), 0);
    ck_assert_uint_eq(total, len);
    tok_encoding e;
    char err[256];
    ck_assert_int_eq(wp_encode(model, text, len, 1, &e, err, sizeof err), 0);
    ck_assert_int_eq(e.ids[0], 101);
    ck_assert_int_eq(e.ids[e.n - 1], 102);
    for (size_t k = 0; k < e.n; k++)
        ck_assert_int_ne(e.ids[k], -1);
    ck_assert_uint_ge(e.n, 4); /* [CLS] abc 中文 [SEP] at least */
    tok_encoding_free(&e);
    /* a word longer than 100 characters is [UNK] */
    char longw[301];
    memset(longw, 'x', 300);
    longw[300] = 0;
    ck_assert_int_eq(wp_encode(model, longw, 300, 0, &e, err, sizeof err), 0);
    ck_assert_uint_eq(e.n, 1);
    ck_assert_int_eq(e.ids[0], 100);
    ck_assert_int_eq(e.ends[0], 300);
    tok_encoding_free(&e);
}
END_TEST

/* Random byte strings from a tricky alphabet: no crash, [CLS] ... [SEP], spans in bounds and
 * ordered, jieba covers every byte, decode succeeds (run under ASan by 10-unit). */
START_TEST(test_random_bytes) {
    static const char *alpha[] = {"a",
                                  "Z",
                                  "9",
                                  "+",
                                  "#",
                                  "&",
                                  ".",
                                  "_",
                                  "%",
                                  "-",
                                  " ",
                                  "\t",
                                  "\r",
                                  "\n",
                                  "\r\n",
                                  "中",
                                  "文",
                                  "的",
                                  "是",
                                  "。",
                                  "，",
                                  "Ａ",
                                  "é",
                                  "e\xcc\x81",
                                  "\xce\xa3",
                                  "\xf0\x9f\x98\x80",
                                  "\xe3\x80\x80",
                                  "\xc2\x85",
                                  "\xe2\x80\xa8",
                                  "\xff",
                                  "\xe4\xb8",
                                  "\xc0\xaf",
                                  "\xed\xa0\x80",
                                  "\x01",
                                  "\xef\xbf\xbd",
                                  "İ"};
    const size_t na = sizeof alpha / sizeof alpha[0];
    uint64_t rng = 12345;
    char text[512];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int parts = (int)((rng >> 33) % 60);
        for (int k = 0; k < parts; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            const char *a = alpha[(rng >> 33) % na];
            size_t al = strlen(a);
            if (len + al >= sizeof text) break;
            memcpy(text + len, a, al);
            len += al;
        }
        size_t total = 0;
        ck_assert_int_eq(wp_jieba_cut(model, text, len, count_bytes, &total), 0);
        ck_assert_uint_eq(total, len);
        tok_encoding e;
        char err[256];
        ck_assert_int_eq(wp_encode(model, text, len, 1, &e, err, sizeof err), 0);
        ck_assert_uint_ge(e.n, 2);
        ck_assert_int_eq(e.ids[0], 101);
        ck_assert_int_eq(e.ids[e.n - 1], 102);
        for (size_t k = 1; k + 1 < e.n; k++) {
            ck_assert_int_ge(e.starts[k], e.starts[k - 1]);
            ck_assert_int_lt(e.starts[k], e.ends[k]);
            ck_assert_int_le(e.ends[k], (int32_t)len);
        }
        char *dec = wp_decode(model, e.ids, e.n, NULL, err, sizeof err);
        ck_assert_ptr_nonnull(dec);
        free(dec);
        tok_encoding_free(&e);
    }
}
END_TEST

START_TEST(test_decode_errors) {
    char err[256] = "";
    int32_t ids[] = {101, 19225, 102};
    ck_assert_ptr_null(wp_decode(model, ids, 3, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "range") != NULL, "err: %s", err);
    ids[1] = -5;
    ck_assert_ptr_null(wp_decode(model, ids, 3, NULL, err, sizeof err));
    size_t n = 7;
    char *s = wp_decode(model, ids, 0, &n, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

static char *write_tmp(const char *content, size_t len) {
    static char name[64];
    snprintf(name, sizeof name, "/tmp/test_wordpiece.XXXXXX");
    int fd = mkstemp(name);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return name;
}

START_TEST(test_bad_files) {
    char err[256] = "";
    ck_assert_ptr_null(wp_model_load("/nonexistent/vocab.txt", NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent") == NULL && err[0], "err: %s", err);
    const char novocab[] = "[PAD]\nhello\n";
    char *p = write_tmp(novocab, sizeof novocab - 1);
    ck_assert_ptr_null(wp_model_load(p, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "[UNK]") != NULL, "err: %s", err);
    unlink(p);
    const char badutf[] = "[UNK]\n[CLS]\n[SEP]\n\xff\xfe\n";
    p = write_tmp(badutf, sizeof badutf - 1);
    ck_assert_ptr_null(wp_model_load(p, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "UTF-8") != NULL, "err: %s", err);
    unlink(p);
    /* CRLF vocab, duplicates (the first line wins) and a tiny dictionary */
    const char crlf[] = "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n\r\n中\r\n中文\r\n文\r\n中\r\n";
    char vpath[64];
    snprintf(vpath, sizeof vpath, "%s", write_tmp(crlf, sizeof crlf - 1));
    const char dict[] = "中文 10 n\n文 3\n中 2 n\n";
    char dpath[64];
    snprintf(dpath, sizeof dpath, "%s", write_tmp(dict, sizeof dict - 1));
    wp_model *m = wp_model_load(vpath, dpath, err, sizeof err);
    ck_assert_msg(m != NULL, "err: %s", err);
    ck_assert_int_eq(wp_vocab_size(m), 9);
    ck_assert_int_eq(wp_token_id(m, "中"), 5);
    ck_assert_str_eq(wp_id_to_piece(m, 4), "");
    tok_encoding e;
    ck_assert_int_eq(wp_encode(m, "中文中", strlen("中文中"), 1, &e, err, sizeof err), 0);
    ck_assert_uint_eq(e.n, 4);
    ck_assert_int_eq(e.ids[1], 6);
    ck_assert_int_eq(e.ids[2], 5);
    tok_encoding_free(&e);
    wp_model_free(m);
    const char baddict[] = "中文 10 n\n\n文 3\n";
    char bpath[64];
    snprintf(bpath, sizeof bpath, "%s", write_tmp(baddict, sizeof baddict - 1));
    ck_assert_ptr_null(wp_model_load(vpath, bpath, err, sizeof err));
    ck_assert_msg(strstr(err, "line 2") != NULL, "err: %s", err);
    const char baddict2[] = "中文 x\n";
    unlink(bpath);
    snprintf(bpath, sizeof bpath, "%s", write_tmp(baddict2, sizeof baddict2 - 1));
    ck_assert_ptr_null(wp_model_load(vpath, bpath, err, sizeof err));
    ck_assert_ptr_null(wp_model_load(vpath, "/nonexistent/dict.txt", err, sizeof err));
    unlink(bpath);
    unlink(vpath);
    unlink(dpath);
}
END_TEST

START_TEST(test_builtin_dictionary) {
    char err[256];
    wp_jieba *j = wp_jieba_load(NULL, err, sizeof err);
    ck_assert_msg(j != NULL, "err: %s", err);
    ck_assert_uint_gt(wp_jieba_word_count(j), 340000);
    wp_jieba_free(j);
}
END_TEST

int main(void) {
    tt_fixture("pegasus-tokenizer/tok_public.pegasus.jsonl"); /* exits when the fixtures are missing */
    Suite *s = suite_create("wordpiece");
    TCase *tc = tcase_create("fixtures");
    tcase_add_unchecked_fixture(tc, setup_model, teardown_model);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fixture_lines);
    tcase_add_test(tc, test_tiny_pegasus_golden);
    tcase_add_test(tc, test_specials_and_lookup);
    tcase_add_test(tc, test_invalid_utf8_and_controls);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_decode_errors);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_builtin_dictionary);
    suite_add_tcase(s, tc);
    return check_run(s);
}
