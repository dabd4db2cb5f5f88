/* tok_testutil.c - fixture lookup (every unit test) and JSON-lines reading for the unit tests. */
#include "tok_testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *tt_fixtures_dir(void) {
    static char abs[PATH_MAX]; /* absolute, so that symlinks made from it work anywhere */
    const char *root = getenv("FIXTURES");
    if (!root || !*root) root = "tests/fixtures";
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode) || !realpath(root, abs)) {
        fprintf(stderr,
                "FATAL: fixtures folder '%s' is missing: set FIXTURES or run from the repository "
                "root (tests/fixtures)\n",
                root);
        exit(2);
    }
    return abs;
}

const char *tt_fixture(const char *rel) {
    static char buf[PATH_MAX + 256];
    const char *root = tt_fixtures_dir();
    struct stat st;
    if (snprintf(buf, sizeof buf, "%s/%s", root, rel) >= (int)sizeof buf) {
        fprintf(stderr, "FATAL: fixture path too long: %s/%s\n", root, rel);
        exit(2);
    }
    if (stat(buf, &st) != 0) {
        fprintf(stderr, "FATAL: fixture file '%s' is missing\n", buf);
        exit(2);
    }
    return buf;
}

json_t *tt_read_jsonl(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FATAL: cannot open %s\n", path);
        exit(2);
    }
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t e;
        json_t *o = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &e);
        if (!o) {
            fprintf(stderr, "FATAL: bad JSON line in %s: %s\n", path, e.text);
            exit(2);
        }
        json_array_append_new(all, o);
    }
    free(line);
    fclose(f);
    return all;
}

int32_t *tt_int_array(json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}
