/* cmd_tokenize.c - `t5 tokenize` and `t5 detokenize`: the tokenizer library on stdin
 * lines, for scripts and the differential tests. One output line per input line.
 * Not a server: no batching, no JSON requests. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "tok.h"

static void tok_usage(FILE *f) {
    fprintf(f, "usage: t5 tokenize --model PATH [--format ids|pieces|json] [--nbest N]\n"
               "                   [--alpha A [--sample-nbest K] [--one-pass] --seed S] [--eos]\n"
               "  reads UTF-8 text lines on stdin, writes one line per input line:\n"
               "  ids or pieces separated by spaces (with --nbest: the N segmentations\n"
               "  separated by tabs), or one JSON object {ids, pieces, offsets} per line\n"
               "  ({nbest: [{ids, pieces, offsets, score}...]} with --nbest).\n"
               "  PATH: a spiece.model, a tokenizer.json, a vocab.txt (T5 PEGASUS), or a model folder.\n"
               "  --alpha A: subword sampling with inverse temperature A (0: uniform), from the\n"
               "  whole lattice (forward-filtering backward-sampling, or --one-pass Viterbi\n"
               "  sampling), or among the K best with --sample-nbest K; --seed S makes it repeatable.\n"
               "  --eos: append </s>.\n");
}

static int parse_int(const char *s, long lo, long hi, long *v) {
    char *e;
    errno = 0;
    long x = strtol(s, &e, 10);
    if (errno || e == s || *e || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static void print_plain(const tok_model *m, const tok_encoding *e, int pieces) {
    for (size_t i = 0; i < e->n; i++) {
        if (i) putchar(' ');
        if (pieces)
            fputs(tok_id_to_piece(m, e->ids[i]), stdout);
        else
            printf("%d", (int)e->ids[i]);
    }
}

static json_t *enc_json(const tok_model *m, const tok_encoding *e, int with_score) {
    json_t *o = json_object(), *ids = json_array(), *ps = json_array(), *off = json_array();
    for (size_t i = 0; i < e->n; i++) {
        json_array_append_new(ids, json_integer(e->ids[i]));
        json_array_append_new(ps, json_string(tok_id_to_piece(m, e->ids[i])));
        json_t *pair = json_array();
        json_array_append_new(pair, json_integer(e->starts[i]));
        json_array_append_new(pair, json_integer(e->ends[i]));
        json_array_append_new(off, pair);
    }
    json_object_set_new(o, "ids", ids);
    json_object_set_new(o, "pieces", ps);
    json_object_set_new(o, "offsets", off);
    if (with_score) json_object_set_new(o, "score", json_real(e->score));
    return o;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *format = "ids";
    long nbest = 0, seed = 0, sample_nbest = -1;
    int eos = 0, sample = 0, one_pass = 0;
    double alpha = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            tok_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model") && more) {
            model = argv[++i];
        } else if (!strcmp(a, "--format") && more) {
            format = argv[++i];
        } else if (!strcmp(a, "--nbest") && more) {
            if (parse_int(argv[++i], 1, 1024, &nbest)) goto bad;
        } else if (!strcmp(a, "--alpha") && more) {
            char *e;
            alpha = strtod(argv[++i], &e);
            if (*e || e == argv[i] || !(alpha >= 0) || alpha > 1e6) goto bad;
            sample = 1;
        } else if (!strcmp(a, "--seed") && more) {
            if (parse_int(argv[++i], 0, 0x7fffffffL, &seed)) goto bad;
        } else if (!strcmp(a, "--sample-nbest") && more) {
            if (parse_int(argv[++i], 2, 1024, &sample_nbest)) goto bad;
        } else if (!strcmp(a, "--one-pass")) {
            one_pass = 1;
        } else if (!strcmp(a, "--eos")) {
            eos = 1;
        } else {
            goto bad;
        }
    }
    int fmt = !strcmp(format, "ids") ? 0 : !strcmp(format, "pieces") ? 1 : !strcmp(format, "json") ? 2 : -1;
    if (!model || fmt < 0 || (nbest && sample)) goto bad;
    char err[256];
    tok_model *m = tok_model_load(model, err, sizeof err);
    if (!m) {
        fprintf(stderr, "t5 tokenize: %s: %s\n", model, err);
        return 1;
    }
    tok_encode_params p;
    tok_encode_default_params(&p);
    p.add_eos = eos;
    p.sample = sample;
    p.alpha = (float)alpha;
    p.nbest_size = (int)sample_nbest;
    p.one_pass = one_pass;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;
    uint64_t lineno = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        p.seed = (uint64_t)seed << 32 ^ lineno++; /* one seed per (S, line); the library hashes it */
        if (nbest) {
            tok_encoding *list;
            size_t n;
            if (tok_encode_nbest(m, line, (size_t)len, (int)nbest, eos, &list, &n, err, sizeof err)) {
                fprintf(stderr, "t5 tokenize: line %llu: %s\n", (unsigned long long)lineno, err);
                status = 1;
                putchar('\n');
                continue;
            }
            if (fmt == 2) {
                json_t *o = json_object(), *a = json_array();
                for (size_t k = 0; k < n; k++)
                    json_array_append_new(a, enc_json(m, &list[k], 1));
                json_object_set_new(o, "nbest", a);
                char *s = json_dumps(o, JSON_COMPACT);
                if (s) fputs(s, stdout);
                free(s);
                json_decref(o);
            } else {
                for (size_t k = 0; k < n; k++) {
                    if (k) putchar('\t');
                    print_plain(m, &list[k], fmt == 1);
                }
            }
            putchar('\n');
            tok_nbest_free(list, n);
            continue;
        }
        tok_encoding e;
        if (tok_encode(m, line, (size_t)len, &p, &e, err, sizeof err)) {
            fprintf(stderr, "t5 tokenize: line %llu: %s\n", (unsigned long long)lineno, err);
            status = 1;
            putchar('\n');
            continue;
        }
        if (fmt == 2) {
            json_t *o = enc_json(m, &e, 0);
            char *s = json_dumps(o, JSON_COMPACT);
            if (s) fputs(s, stdout);
            free(s);
            json_decref(o);
        } else {
            print_plain(m, &e, fmt == 1);
        }
        putchar('\n');
        tok_encoding_free(&e);
    }
    free(line);
    tok_model_free(m);
    if (fflush(stdout)) status = 1;
    return status;
bad:
    tok_usage(stderr);
    return 2;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: t5 detokenize --model PATH\n"
                   "  reads lines of space-separated ids on stdin, writes one text line each\n");
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else {
            model = NULL;
            break;
        }
    }
    if (!model) {
        fprintf(stderr, "usage: t5 detokenize --model PATH\n");
        return 2;
    }
    char err[256];
    tok_model *m = tok_model_load(model, err, sizeof err);
    if (!m) {
        fprintf(stderr, "t5 detokenize: %s: %s\n", model, err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, icap = 0;
    int32_t *ids = NULL;
    int status = 0;
    unsigned long long lineno = 0;
    while (getline(&line, &cap, stdin) >= 0) {
        lineno++;
        size_t n = 0;
        int bad = 0;
        for (char *s = strtok(line, " \t\r\n"); s; s = strtok(NULL, " \t\r\n")) {
            long v;
            if (parse_int(s, -0x7fffffffL, 0x7fffffffL, &v)) {
                bad = 1;
                break;
            }
            if (n == icap) {
                icap = icap ? icap * 2 : 256;
                int32_t *x = realloc(ids, icap * sizeof *x);
                if (!x) {
                    bad = 1;
                    break;
                }
                ids = x;
            }
            ids[n++] = (int32_t)v;
        }
        size_t tlen = 0;
        char *text = bad ? NULL : tok_decode(m, ids, n, &tlen, err, sizeof err);
        if (!text) {
            fprintf(stderr, "t5 detokenize: line %llu: %s\n", lineno,
                    bad ? "not a list of integer ids" : err);
            status = 1;
            putchar('\n');
            continue;
        }
        fwrite(text, 1, tlen, stdout); /* the text may hold NUL bytes */
        putchar('\n');
        free(text);
    }
    free(line);
    free(ids);
    tok_model_free(m);
    if (fflush(stdout)) status = 1;
    return status;
}
