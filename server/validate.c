/* validate.c - request JSON: parsing with clear messages (invalid UTF-8, malformed
 * JSON with line/column, nesting depth), unknown-field rejection and typed getters
 * with range checks. Messages name the field and the allowed range, never echo the
 * input beyond a short field name. Not the per-route rules (routes_*.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Nesting depth of JSON text, brackets inside strings skipped. */
static int json_text_depth(const char *s, size_t n) {
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return max;
}

json_t *srv_json_parse(const char *body, size_t len, int max_depth, char *err, size_t errlen) {
    if (len == 0) {
        fail(err, errlen, "the request body is empty: a JSON object is expected");
        return NULL;
    }
    if (json_text_depth(body, len) > max_depth) {
        fail(err, errlen, "JSON nesting deeper than %d levels", max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        switch (json_error_code(&je)) {
        case json_error_invalid_utf8:
            fail(err, errlen, "the request body is not valid UTF-8");
            break;
        case json_error_duplicate_key:
            fail(err, errlen, "duplicate key in JSON object (line %d, column %d)", je.line, je.column);
            break;
        case json_error_null_character:
        case json_error_null_byte_in_key:
            fail(err, errlen, "NUL characters are not allowed in JSON strings");
            break;
        case json_error_premature_end_of_input:
            fail(err, errlen, "malformed JSON: unexpected end of input");
            break;
        case json_error_end_of_input_expected:
            fail(err, errlen, "malformed JSON: extra data after the value (line %d, column %d)", je.line,
                 je.column);
            break;
        case json_error_numeric_overflow:
            fail(err, errlen, "malformed JSON: number out of range (line %d, column %d)", je.line, je.column);
            break;
        default:
            fail(err, errlen, "malformed JSON (line %d, column %d)", je.line, je.column);
        }
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(err, errlen, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

int srv_json_fields(json_t *obj, const char *const *allowed, char *err, size_t errlen) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            /* print at most 40 bytes of the name, cut on a character boundary */
            size_t n = strlen(key);
            if (n > 40) {
                n = 40;
                while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
                    n--;
            }
            return fail(err, errlen, "unknown field '%.*s'%s (unknown fields are rejected)", (int)n, key,
                        strlen(key) > n ? "..." : "");
        }
    }
    return 0;
}

int srv_json_int(json_t *obj, const char *key, long long lo, long long hi, long long *out, char *err,
                 size_t errlen) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    long long x;
    if (json_is_integer(v))
        x = json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v) &&
             fabs(json_real_value(v)) < 9e15)
        x = (long long)json_real_value(v);
    else
        return fail(err, errlen, "%s must be an integer", key);
    if (x < lo || x > hi) return fail(err, errlen, "%s must be from %lld to %lld", key, lo, hi);
    *out = x;
    return 0;
}

int srv_json_num(json_t *obj, const char *key, double lo, double hi, int lo_open, double *out, char *err,
                 size_t errlen) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return fail(err, errlen, "%s must be a number", key);
    double x = json_number_value(v);
    if (!isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
        return fail(err, errlen, "%s must be %s %g and at most %g", key,
                    lo_open ? "greater than" : "at least", lo, hi);
    *out = x;
    return 0;
}

int srv_json_bool(json_t *obj, const char *key, int *out, char *err, size_t errlen) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return fail(err, errlen, "%s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int srv_json_texts(json_t *obj, const char *key, int max, const char ***texts, size_t **lens, int *n,
                   int *is_array, char *err, size_t errlen) {
    json_t *v = json_object_get(obj, key);
    *texts = NULL;
    *lens = NULL;
    *n = 0;
    *is_array = 0;
    if (!v) return fail(err, errlen, "%s is required", key);
    if (json_is_string(v)) {
        *texts = malloc(sizeof **texts);
        *lens = malloc(sizeof **lens);
        if (!*texts || !*lens) return fail(err, errlen, "out of memory");
        (*texts)[0] = json_string_value(v);
        (*lens)[0] = json_string_length(v);
        *n = 1;
        return 0;
    }
    if (!json_is_array(v)) return fail(err, errlen, "%s must be a string or an array of strings", key);
    size_t m = json_array_size(v);
    if (m == 0) return fail(err, errlen, "%s must not be an empty array", key);
    if (m > (size_t)max)
        return fail(err, errlen, "%s has %zu texts, more than this server's limit of %d (max_texts)", key, m,
                    max);
    *texts = malloc(m * sizeof **texts);
    *lens = malloc(m * sizeof **lens);
    if (!*texts || !*lens) return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < m; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) return fail(err, errlen, "%s[%zu] must be a string", key, i);
        (*texts)[i] = json_string_value(e);
        (*lens)[i] = json_string_length(e);
    }
    *n = (int)m;
    *is_array = 1;
    return 0;
}

int srv_json_ids(json_t *v, const char *key, int32_t vocab, int max, int32_t **ids, int *n, char *err,
                 size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (!json_is_array(v)) return fail(err, errlen, "%s must be an array of integers", key);
    size_t m = json_array_size(v);
    if (m > (size_t)max) return fail(err, errlen, "%s has %zu ids, more than the limit of %d", key, m, max);
    *ids = malloc((m ? m : 1) * sizeof **ids);
    if (!*ids) return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < m; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e)) {
            free(*ids);
            *ids = NULL;
            return fail(err, errlen, "%s[%zu] must be an integer", key, i);
        }
        long long x = json_integer_value(e);
        if (x < 0 || x >= vocab) {
            free(*ids);
            *ids = NULL;
            return fail(err, errlen, "%s[%zu] = %lld is outside the vocabulary (0 to %d)", key, i, x,
                        vocab - 1);
        }
        (*ids)[i] = (int32_t)x;
    }
    *n = (int)m;
    return 0;
}
