/* tok_file.c - the tokenizer's one whole-file reader, for every file it loads (spiece.model,
 * tokenizer.json, vocab.txt, jieba's dict.txt). What it is not: a mapping; files are copied
 * into the heap, which the loaders parse and then (but vocab.txt) free. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"

#define TOK_FILE_MAX ((size_t)1 << 31) /* larger files are refused */

int tok_file_read(const char *path, const char *what, char **buf, size_t *len, char *err, size_t errlen) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", what, strerror(errno));
        return TOK_ERR_IO;
    }
    /* a regular file is read in one go; anything else grows the buffer as it comes */
    struct stat st;
    size_t cap = 1 << 16, n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (size_t)st.st_size < TOK_FILE_MAX)
        cap = (size_t)st.st_size + 1;
    int rc = TOK_OK;
    char *b = malloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break; /* end of file or an error */
        if (cap >= TOK_FILE_MAX) {
            rc = TOK_ERR_FORMAT;
            snprintf(err, errlen, "%s is too large", what);
            break;
        }
        cap *= 2;
        char *nb = realloc(b, cap + 1);
        if (!nb) free(b);
        b = nb;
    }
    if (!b) {
        rc = TOK_ERR_NOMEM;
        snprintf(err, errlen, "out of memory");
    } else if (rc == TOK_OK && ferror(f)) {
        rc = TOK_ERR_IO;
        snprintf(err, errlen, "cannot read %s", what);
    }
    fclose(f);
    if (rc != TOK_OK) {
        free(b);
        return rc;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return TOK_OK;
}
