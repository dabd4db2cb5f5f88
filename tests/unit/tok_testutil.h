/* tok_testutil.h - helpers shared by the tokenizer unit tests (tok_testutil.c): where
 * the fixtures are, and reading JSON-lines files with jansson. Test code only. */
#ifndef T5SERVE_TOK_TESTUTIL_H
#define T5SERVE_TOK_TESTUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* $FIXTURES or ../shared/fixtures, joined with rel into a static buffer. Aborts the
 * test program with a clear message when the fixtures folder is missing. */
const char *tt_fixture(const char *rel);

/* Reads a .jsonl file: returns an array of its objects (caller json_decref's it). */
json_t *tt_read_jsonl(const char *path);

/* Copies a JSON array of integers into a malloc'd int32 array; *n its length. */
int32_t *tt_int_array(json_t *a, size_t *n);

#endif
