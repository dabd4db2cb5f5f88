/* test_validate.c - the server's request JSON checks (server/validate.c) alone: each
 * malformed body gets its own clear message (empty, too deep, invalid UTF-8, duplicate
 * key, NUL, truncated, trailing data, number overflow, not an object); unknown fields
 * are named (at most 40 bytes, cut on a character boundary); the typed getters accept
 * what the API documents (integers also as 2.0, null as absent) and name the field and
 * its range otherwise; texts and ids arrays with their limits. The messages are the
 * ones the HTTP API answers (design section 5). Links server/validate.o only. */
#include <check.h>
#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static char err[300];

static json_t *parse(const char *s, int depth) {
    err[0] = 0;
    return srv_json_parse(s, strlen(s), depth, err, sizeof err);
}

static void parse_fails(const char *body, const char *msg) {
    json_t *j = parse(body, 16);
    ck_assert_msg(!j, "accepted %s", body);
    ck_assert_str_eq(err, msg);
}

START_TEST(test_parse_errors) {
    parse_fails("", "the request body is empty: a JSON object is expected");
    json_t *j = parse("{\"a\":[[[1]]]}", 3); /* 4 levels */
    ck_assert_ptr_null(j);
    ck_assert_str_eq(err, "JSON nesting deeper than 3 levels");
    j = parse("{\"a\":\"[[[[\"}", 2); /* brackets inside strings do not count */
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    parse_fails("{\"text\": \"\xff\"}", "the request body is not valid UTF-8");
    parse_fails("{\"a\": 1, \"a\": 2}", "duplicate key in JSON object (line 1, column 12)");
    parse_fails("{\"a\": \"x\\u0000y\"}", "NUL characters are not allowed in JSON strings");
    parse_fails("{\"a\": 1", "malformed JSON: unexpected end of input");
    parse_fails("{\"a\": 1} x", "malformed JSON: extra data after the value (line 1, column 10)");
    parse_fails("{\"a\": 1e400}", "malformed JSON: number out of range (line 1, column 11)");
    parse_fails("{a: 1}", "malformed JSON (line 1, column 2)");
    parse_fails("[1]", "the request body must be a JSON object");
    parse_fails("\"text\"", "malformed JSON (line 1, column 6)");
}
END_TEST

START_TEST(test_fields) {
    static const char *const allowed[] = {"text", "ids", NULL};
    json_t *j = parse("{\"text\": 1, \"ids\": 2}", 16);
    ck_assert_int_eq(srv_json_fields(j, allowed, err, sizeof err), 0);
    json_decref(j);
    j = parse("{\"text\": 1, \"temprature\": 2}", 16);
    ck_assert_int_eq(srv_json_fields(j, allowed, err, sizeof err), -1);
    ck_assert_str_eq(err, "unknown field 'temprature' (unknown fields are rejected)");
    json_decref(j);
    /* 39 ASCII bytes then a 3-byte character across byte 40: cut before the character */
    char body[200];
    snprintf(body, sizeof body, "{\"%s\xe4\xb8\xad\xe6\x96\x87\": 1}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    j = parse(body, 16);
    ck_assert_int_eq(srv_json_fields(j, allowed, err, sizeof err), -1);
    ck_assert_str_eq(
        err, "unknown field 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'... (unknown fields are rejected)");
    json_decref(j);
}
END_TEST

START_TEST(test_typed_getters) {
    json_t *j =
        parse("{\"i\": 7, \"f\": 2.0, \"h\": 2.5, \"s\": \"5\", \"n\": null, \"x\": 0.5, \"b\": true, "
              "\"one\": 1, \"big\": 1e300}",
              16);
    long long v = -1;
    ck_assert_int_eq(srv_json_int(j, "absent", 0, 10, &v, err, sizeof err), 0);
    ck_assert_int_eq(v, -1); /* absent: unchanged */
    ck_assert_int_eq(srv_json_int(j, "n", 0, 10, &v, err, sizeof err), 0);
    ck_assert_int_eq(v, -1); /* null: as absent */
    ck_assert_int_eq(srv_json_int(j, "i", 0, 10, &v, err, sizeof err), 0);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(srv_json_int(j, "f", 0, 10, &v, err, sizeof err), 0);
    ck_assert_int_eq(v, 2); /* 2.0 is an integer */
    ck_assert_int_eq(srv_json_int(j, "h", 0, 10, &v, err, sizeof err), -1);
    ck_assert_str_eq(err, "h must be an integer");
    ck_assert_int_eq(srv_json_int(j, "s", 0, 10, &v, err, sizeof err), -1);
    ck_assert_str_eq(err, "s must be an integer");
    ck_assert_int_eq(srv_json_int(j, "big", 0, 10, &v, err, sizeof err), -1);
    ck_assert_str_eq(err, "big must be an integer");
    ck_assert_int_eq(srv_json_int(j, "i", 8, 10, &v, err, sizeof err), -1);
    ck_assert_str_eq(err, "i must be from 8 to 10");
    ck_assert_int_eq(v, 2); /* a failed read leaves the value */

    double d = -1;
    ck_assert_int_eq(srv_json_num(j, "x", 0, 1, 1, &d, err, sizeof err), 0);
    ck_assert(d == 0.5);
    ck_assert_int_eq(srv_json_num(j, "i", 0, 1, 1, &d, err, sizeof err), -1);
    ck_assert_str_eq(err, "i must be greater than 0 and at most 1");
    ck_assert_int_eq(srv_json_num(j, "x", 1, 2, 0, &d, err, sizeof err), -1);
    ck_assert_str_eq(err, "x must be at least 1 and at most 2");
    ck_assert_int_eq(srv_json_num(j, "b", 0, 1, 0, &d, err, sizeof err), -1);
    ck_assert_str_eq(err, "b must be a number");
    ck_assert(d == 0.5);

    int f = 0;
    ck_assert_int_eq(srv_json_bool(j, "b", &f, err, sizeof err), 0);
    ck_assert_int_eq(f, 1);
    ck_assert_int_eq(srv_json_bool(j, "one", &f, err, sizeof err), -1);
    ck_assert_str_eq(err, "one must be true or false");
    json_decref(j);
}
END_TEST

START_TEST(test_texts) {
    const char **texts;
    size_t *lens;
    int n, is_array;
    json_t *j = parse("{\"text\": \"ab\\u00e9\"}", 16);
    ck_assert_int_eq(srv_json_texts(j, "text", 4, &texts, &lens, &n, &is_array, err, sizeof err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(is_array, 0);
    ck_assert_uint_eq(lens[0], 4);
    ck_assert_str_eq(texts[0], "ab\xc3\xa9");
    free(texts);
    free(lens);
    json_decref(j);
    j = parse("{\"text\": [\"a\", \"\", \"c\"]}", 16);
    ck_assert_int_eq(srv_json_texts(j, "text", 4, &texts, &lens, &n, &is_array, err, sizeof err), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(is_array, 1);
    ck_assert_uint_eq(lens[1], 0);
    free(texts);
    free(lens);
    ck_assert_int_eq(srv_json_texts(j, "text", 2, &texts, &lens, &n, &is_array, err, sizeof err), -1);
    ck_assert_str_eq(err, "text has 3 texts, more than this server's limit of 2 (max_texts)");
    free(texts);
    free(lens);
    ck_assert_int_eq(srv_json_texts(j, "other", 2, &texts, &lens, &n, &is_array, err, sizeof err), -1);
    ck_assert_str_eq(err, "other is required");
    json_decref(j);
    static const char *const bad[][2] = {{"{\"text\": []}", "text must not be an empty array"},
                                         {"{\"text\": 5}", "text must be a string or an array of strings"},
                                         {"{\"text\": [\"a\", 3]}", "text[1] must be a string"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = parse(bad[i][0], 16);
        ck_assert_int_eq(srv_json_texts(j, "text", 4, &texts, &lens, &n, &is_array, err, sizeof err), -1);
        ck_assert_str_eq(err, bad[i][1]);
        free(texts);
        free(lens);
        json_decref(j);
    }
}
END_TEST

START_TEST(test_ids) {
    int32_t *ids;
    int n;
    json_t *j = parse("{\"a\": [0, 5, 9], \"e\": [], \"s\": \"1 2\", \"m\": [1, \"2\"], \"o\": [1, 10], "
                      "\"neg\": [-1]}",
                      16);
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "a"), "ids", 10, 8, &ids, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[2], 9);
    free(ids);
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "e"), "ids", 10, 8, &ids, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 0);
    free(ids);
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "a"), "ids", 10, 2, &ids, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "ids has 3 ids, more than the limit of 2");
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "s"), "ids", 10, 8, &ids, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "ids must be an array of integers");
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "m"), "ids", 10, 8, &ids, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "ids[1] must be an integer");
    ck_assert_ptr_null(ids);
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "o"), "ids", 10, 8, &ids, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "ids[1] = 10 is outside the vocabulary (0 to 9)");
    ck_assert_int_eq(srv_json_ids(json_object_get(j, "neg"), "ids", 10, 8, &ids, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "ids[0] = -1 is outside the vocabulary (0 to 9)");
    json_decref(j);
}
END_TEST

int main(void) {
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("validate");
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_typed_getters);
    tcase_add_test(tc, test_texts);
    tcase_add_test(tc, test_ids);
    suite_add_tcase(s, tc);
    return check_run(s);
}
