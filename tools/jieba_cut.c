/* jieba_cut.c - segments text with the project's jieba (tokenizer/jieba.c, as
 * wp_jieba_cut does), for the differential test against Python's jieba and for eyeballing.
 * Reads stdin (or FILE), and for each line ("\n"-terminated) prints its words joined
 * by "/", one output line per input line. Not a tokenizer front-end: `build/t5 tokenize`
 * is that.
 * usage: build/jieba_cut [-d DICT] [FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_dev.h"

typedef struct {
    FILE *out;
    int first;
} cut_ctx;

static void print_word(void *user, const char *w, size_t n) {
    cut_ctx *c = user;
    if (!c->first) fputc('/', c->out);
    fwrite(w, 1, n, c->out);
    c->first = 0;
}

int main(int argc, char **argv) {
    const char *dict = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dict = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "usage: jieba_cut [-d DICT] [FILE]\n");
            return 2;
        } else
            file = argv[i];
    }
    char err[256];
    wp_jieba *j = wp_jieba_load(dict, err, sizeof err);
    if (!j) {
        fprintf(stderr, "jieba_cut: %s\n", err);
        return 1;
    }
    FILE *in = file ? fopen(file, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "jieba_cut: cannot open the input file\n");
        wp_jieba_free(j);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    cut_ctx c = {stdout, 1};
    while ((n = getline(&line, &cap, in)) >= 0) {
        if (n > 0 && line[n - 1] == '\n') n--;
        c.first = 1;
        if (wp_jieba_segment(j, line, (size_t)n, print_word, &c) != 0) {
            fprintf(stderr, "jieba_cut: out of memory\n");
            rc = 1;
            break;
        }
        fputc('\n', stdout);
    }
    free(line);
    if (in != stdin) fclose(in);
    wp_jieba_free(j);
    return rc;
}
