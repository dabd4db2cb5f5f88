/* test_gen.c - the generation join library (gen/gen.h) on the fixtures: encoder ids
 * of a text = transformers' input_ids (the t5-tiny-gated goldens), truncation keeps
 * `</s>`, the input limit; T5 PEGASUS's decoder start / eos = the ids transformers
 * generated its goldens with; streamed text deltas of a byte-fallback output
 * (t5-tiny-relu goldens) are whole UTF-8 characters that add up to the decoded text;
 * stop strings cut the text where they begin and are never streamed; the parameter
 * table is consistent with t5_gen_params' defaults; finish-reason names. */
#include <check.h>
#include "check_run.h"
#include "tok_testutil.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static const char *fixture(const char *name) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/models/%s", tt_fixtures_dir(), name);
    return p;
}

static tok_model *load_tok(const char *name) {
    char err[256];
    tok_model *t = tok_model_load(fixture(name), err, sizeof err);
    ck_assert_msg(t, "%s: %s", name, err);
    return t;
}

static json_t *goldens(const char *name) {
    char path[1100];
    snprintf(path, sizeof path, "%s.golden.json", fixture(name));
    json_error_t je;
    json_t *g = json_load_file(path, 0, &je);
    ck_assert_msg(g, "%s: %s", path, je.text);
    return g;
}

/* ids of a JSON array into out[], their count */
static int ids_of(json_t *a, int32_t *out, int max) {
    int n = (int)json_array_size(a);
    ck_assert_int_le(n, max);
    for (int i = 0; i < n; i++)
        out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

START_TEST(test_input_ids_goldens) {
    tok_model *tok = load_tok("t5-tiny-gated");
    json_t *g = goldens("t5-tiny-gated"), *cases = json_object_get(g, "cases");
    char err[256];
    ck_assert_int_gt(json_array_size(cases), 3);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        const char *text = json_string_value(json_object_get(cs, "text"));
        int32_t want[1024];
        int nw = ids_of(json_object_get(cs, "input_ids"), want, 1024);
        int32_t *ids = NULL;
        int n = 0;
        ck_assert_int_eq(gen_input_ids(tok, text, strlen(text), 0, 0, &ids, &n, err, sizeof err), GEN_OK);
        ck_assert_int_eq(n, nw);
        ck_assert_mem_eq(ids, want, (size_t)n * sizeof *ids);
        free(ids);
        if (nw > 3) { /* truncate 2: the first two tokens, then </s> */
            ck_assert_int_eq(gen_input_ids(tok, text, strlen(text), 2, 0, &ids, &n, err, sizeof err), GEN_OK);
            ck_assert_int_eq(n, 3);
            ck_assert_int_eq(ids[0], want[0]);
            ck_assert_int_eq(ids[1], want[1]);
            ck_assert_int_eq(ids[2], want[nw - 1]);
            ck_assert_int_eq(ids[2], tok_eos_id(tok));
            free(ids);
            /* a limit below the count: refused, with the count */
            ck_assert_int_eq(gen_input_ids(tok, text, strlen(text), 0, nw - 1, &ids, &n, err, sizeof err),
                             GEN_ERR_TOO_LONG);
            ck_assert_ptr_null(ids);
            ck_assert_int_eq(n, nw);
            /* the limit applies after truncation */
            ck_assert_int_eq(gen_input_ids(tok, text, strlen(text), 2, 3, &ids, &n, err, sizeof err), GEN_OK);
            free(ids);
        }
    }
    json_decref(g);
    tok_model_free(tok);
}
END_TEST

START_TEST(test_pegasus_ids) {
    tok_model *peg = load_tok("t5-tiny-pegasus"), *uni = load_tok("t5-tiny-gated");
    json_t *g = goldens("t5-tiny-pegasus");
    t5_gen_params p;
    t5_gen_default_params(&p);
    ck_assert_int_eq(p.decoder_start_token_id, -1);
    gen_params_for_tokenizer(&p, peg);
    ck_assert_int_eq(p.decoder_start_token_id,
                     json_integer_value(json_object_get(g, "decoder_start_token_id")));
    ck_assert_int_eq(p.eos_token_id, json_integer_value(json_object_get(g, "eos_token_id")));
    t5_gen_default_params(&p); /* ids given explicitly stay */
    p.decoder_start_token_id = 7;
    p.eos_token_id = 8;
    gen_params_for_tokenizer(&p, peg);
    ck_assert_int_eq(p.decoder_start_token_id, 7);
    ck_assert_int_eq(p.eos_token_id, 8);
    t5_gen_default_params(&p); /* a SentencePiece tokenizer leaves them to the model */
    gen_params_for_tokenizer(&p, uni);
    ck_assert_int_eq(p.decoder_start_token_id, -1);
    ck_assert_int_eq(p.eos_token_id, -1);
    /* its input ids: [CLS] ... [SEP] as the goldens */
    json_t *c0 = json_array_get(json_object_get(g, "cases"), 0);
    const char *text = json_string_value(json_object_get(c0, "text"));
    int32_t want[1024], *ids = NULL;
    int nw = ids_of(json_object_get(c0, "input_ids"), want, 1024), n = 0;
    char err[256];
    ck_assert_int_eq(gen_input_ids(peg, text, strlen(text), 0, 0, &ids, &n, err, sizeof err), GEN_OK);
    ck_assert_int_eq(n, nw);
    ck_assert_mem_eq(ids, want, (size_t)n * sizeof *ids);
    free(ids);
    json_decref(g);
    tok_model_free(peg);
    tok_model_free(uni);
}
END_TEST

START_TEST(test_text_deltas_whole_characters) {
    tok_model *tok = load_tok("t5-tiny-relu");
    json_t *g = goldens("t5-tiny-relu"), *cases = json_object_get(g, "cases");
    int byte_cases = 0;
    for (size_t c = 0; c < json_array_size(cases); c++) {
        int32_t ids[1024];
        int n =
            ids_of(json_object_get(json_object_get(json_array_get(cases, c), "greedy"), "ids"), ids, 1024);
        int bytes = 0, held = 0;
        for (int i = 0; i < n; i++)
            bytes += tok_piece_type(tok, ids[i]) == TOK_PIECE_BYTE;
        byte_cases += bytes > 0;
        gen_text t;
        gen_text_init(&t);
        char *joined = calloc(1, 65536);
        size_t jn = 0;
        for (int i = 0; i < n; i++) {
            size_t off, len;
            ck_assert_int_eq(gen_text_push(&t, tok, NULL, ids[i], &off, &len), 0);
            ck_assert_msg(valid_utf8(t.text + off, len), "case %zu token %d: a delta splits a character", c,
                          i);
            ck_assert_uint_eq(off, jn);
            held += len == 0 && tok_piece_type(tok, ids[i]) == TOK_PIECE_BYTE;
            memcpy(joined + jn, t.text + off, len);
            jn += len;
        }
        int stopped = 1;
        size_t flen = 0;
        char *final = gen_text_final(tok, ids, n, NULL, &stopped, &flen);
        ck_assert_int_eq(stopped, 0);
        char err[128];
        size_t dlen = 0;
        char *dec = tok_decode(tok, ids, (size_t)n, &dlen, err, sizeof err); /* all ids are the tokenizer's */
        ck_assert_uint_eq(flen, dlen);
        ck_assert_mem_eq(final, dec, dlen);
        /* the deltas add up to the text, but for a trailing incomplete character */
        ck_assert_uint_le(jn, dlen);
        ck_assert_mem_eq(joined, dec, jn);
        if (dlen < 3 || memcmp(dec + dlen - 3, "\xEF\xBF\xBD", 3)) ck_assert_uint_eq(jn, dlen);
        if (bytes > 1) ck_assert_int_gt(held, 0); /* a character's first bytes wait */
        free(dec);
        free(final);
        free(joined);
        gen_text_free(&t);
    }
    ck_assert_int_gt(byte_cases, 0);
    json_decref(g);
    tok_model_free(tok);
}
END_TEST

START_TEST(test_stop_strings) {
    tok_model *tok = load_tok("t5-tiny-gated");
    json_t *g = goldens("t5-tiny-gated"), *cases = json_object_get(g, "cases");
    int tried = 0;
    for (size_t c = 0; c < json_array_size(cases); c++) {
        int32_t ids[1024];
        int n =
            ids_of(json_object_get(json_object_get(json_array_get(cases, c), "greedy"), "ids"), ids, 1024);
        char err[128];
        size_t dlen = 0;
        char *dec = tok_decode(tok, ids, (size_t)n, &dlen, err, sizeof err);
        if (dlen < 8) {
            free(dec);
            continue;
        }
        tried++;
        /* a stop string from the middle of the text, and one that never occurs */
        size_t at = dlen / 2;
        while (at > 0 && ((unsigned char)dec[at] & 0xC0) == 0x80)
            at--;
        const char *first = memmem(dec, dlen, dec + at, 3);
        size_t cut = (size_t)(first - dec);
        gen_stops st = {0};
        ck_assert_int_eq(gen_stops_add(&st, "\x01never", 6), 0);
        ck_assert_int_eq(gen_stops_add(&st, dec + at, 3), 0);
        gen_text t;
        gen_text_init(&t);
        size_t streamed = 0;
        int stop_at = -1;
        for (int i = 0; i < n && stop_at < 0; i++) {
            size_t off, len;
            int rc = gen_text_push(&t, tok, &st, ids[i], &off, &len);
            ck_assert_int_ge(rc, 0);
            streamed += len;
            if (rc == 1) stop_at = i;
        }
        ck_assert_int_ge(stop_at, 0);
        ck_assert_uint_eq(t.len, cut); /* the text ends where the stop string begins */
        ck_assert_mem_eq(t.text, dec, cut);
        ck_assert_uint_le(streamed, cut); /* never a byte of the stop string */
        int stopped = 0;
        size_t flen = 0;
        char *final = gen_text_final(tok, ids, n, &st, &stopped, &flen);
        ck_assert_int_eq(stopped, 1);
        ck_assert_uint_eq(flen, cut);
        ck_assert_mem_eq(final, dec, cut);
        free(final);
        gen_text_free(&t);
        gen_stops_free(&st);
        ck_assert_int_eq(st.n, 0);
        free(dec);
    }
    ck_assert_int_gt(tried, 0);
    json_decref(g);
    tok_model_free(tok);
}
END_TEST

START_TEST(test_param_table) {
    t5_gen_params p;
    t5_gen_default_params(&p);
    ck_assert_int_gt(gen_n_params, 10);
    for (int i = 0; i < gen_n_params; i++) {
        const gen_param *a = &gen_params[i];
        ck_assert_msg(a->offset < sizeof p, "%s: offset", a->name);
        ck_assert_msg(a->lo <= a->hi, "%s: range", a->name);
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(a->name, gen_params[j].name);
            ck_assert_msg(a->offset != gen_params[j].offset, "%s and %s share a field", a->name,
                          gen_params[j].name);
        }
        /* the engine's default is a value a request may give */
        const void *f = (const char *)&p + a->offset;
        double v = a->type == GEN_PARAM_FLOAT  ? *(const float *)f
                   : a->type == GEN_PARAM_SEED ? (double)*(const uint64_t *)f
                                               : *(const int *)f;
        if (a->type == GEN_PARAM_SEED) continue;
        ck_assert_msg(a->lo_open ? v > a->lo : v >= a->lo, "%s: default %g below the range", a->name, v);
        ck_assert_msg(v <= a->hi, "%s: default %g above the range", a->name, v);
    }
}
END_TEST

START_TEST(test_finish_names) {
    ck_assert_str_eq(gen_finish_name(T5_FINISH_EOS), "eos");
    ck_assert_str_eq(gen_finish_name(T5_FINISH_LENGTH), "length");
    ck_assert_str_eq(gen_finish_name(T5_FINISH_STOP), "stop");
    ck_assert_str_eq(gen_finish_name(T5_FINISH_CANCELLED), "cancelled");
    ck_assert_str_eq(gen_finish_name(T5_FINISH_ERROR), "error");
}
END_TEST

int main(void) {
    Suite *s = suite_create("gen");
    TCase *tc = tcase_create("gen");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_input_ids_goldens);
    tcase_add_test(tc, test_pegasus_ids);
    tcase_add_test(tc, test_text_deltas_whole_characters);
    tcase_add_test(tc, test_stop_strings);
    tcase_add_test(tc, test_param_table);
    tcase_add_test(tc, test_finish_names);
    suite_add_tcase(s, tc);
    return check_run(s);
}
