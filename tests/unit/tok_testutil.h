/* tok_testutil.h - helpers shared by the unit tests (tok_testutil.c, linked into each): where
 * the fixtures are (the one lookup every unit test uses), and reading JSON-lines files with
 * jansson. Test code only. */
#ifndef T5SERVE_TOK_TESTUTIL_H
#define T5SERVE_TOK_TESTUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* $FIXTURES (tests/run.sh sets it) or tests/fixtures (run from the repository root), made
 * absolute and joined with rel into a static buffer (one at a time: the next call overwrites
 * it). Exits the test program with a clear message when the folder or the file is missing. */
const char *tt_fixture(const char *rel);

/* The fixtures folder itself, as tt_fixture finds it (absolute; a static buffer of its own). */
const char *tt_fixtures_dir(void);

/* Reads a .jsonl file: returns an array of its objects (caller json_decref's it). */
json_t *tt_read_jsonl(const char *path);

/* Copies a JSON array of integers into a malloc'd int32 array; *n its length. */
int32_t *tt_int_array(json_t *a, size_t *n);

#endif
