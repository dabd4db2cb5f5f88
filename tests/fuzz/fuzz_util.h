/* fuzz_util.h - small helpers shared by the libFuzzer harnesses in tests/fuzz/: where the
 * fixtures are, a private scratch folder on tmpfs, writing a fuzz input to a file, and a
 * check that aborts (so libFuzzer records a crash) when an invariant breaks.
 * What it is not: a library; each harness is one translation unit including this. */
#ifndef T5SERVE_FUZZ_UTIL_H
#define T5SERVE_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);               \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* $FIXTURES, else tests/fixtures relative to the working directory (the repo root). */
static inline const char *fuzz_fixtures(void) {
    const char *f = getenv("FIXTURES");
    return f && *f ? f : "tests/fixtures";
}

/* "$FIXTURES/rel" in a static buffer (one at a time). */
static inline const char *fuzz_fixture(const char *rel) {
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", fuzz_fixtures(), rel);
    return p;
}

/* A scratch folder of this process on tmpfs (/dev/shm when present), created once. */
static inline const char *fuzz_scratch(void) {
    static char dir[256];
    if (!dir[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/t5serve-fuzz-%ld", base, (long)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

/* Writes data[0..len) to path (replacing it); aborts when that fails (not the input's fault). */
static inline void fuzz_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(len == 0 || fwrite(data, 1, len, f) == len);
    FUZZ_CHECK(fclose(f) == 0);
}

/* An error message must be NUL-terminated within its buffer and not empty. */
static inline void fuzz_check_err(const char *err, size_t errlen) {
    FUZZ_CHECK(memchr(err, 0, errlen) != NULL);
    FUZZ_CHECK(err[0] != 0);
}

/* An error message must not reveal the scratch folder (an internal path), unless the
 * input itself carried that text (the loaders may quote a name read from the file). */
static inline void fuzz_check_no_path(const char *err, const uint8_t *data, size_t size) {
    const char *dir = fuzz_scratch();
    if (strstr(err, dir)) FUZZ_CHECK(memmem(data, size, dir, strlen(dir)) != NULL);
    if (strstr(err, "t5serve-fuzz-")) FUZZ_CHECK(memmem(data, size, "t5serve-fuzz-", 13) != NULL);
}

#endif
