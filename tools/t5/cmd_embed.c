/* cmd_embed.c - `t5 embed --model DIR [options]`: offline embeddings, one input per
 * stdin line (text through the model folder's tokenizer, `</s>` appended and truncated
 * to the folder's max_seq_length; or with `--input ids` space-separated ids, the exact
 * encoder input), one JSON object per line: {"embedding": [...]} (the folder's
 * sentence-transformers pipeline, or mean pooling) or with --pooling none
 * {"token_embeddings": [[...] per token]}. Lines are embedded --batch at a time
 * through one continuous batch (t5_batch_add_embed: one grouped encoder pass per step).
 * What it is not: a server. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "gen.h"
#include "t5.h"
#include "tok.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: t5 embed --model DIR [--pooling mean|max|cls|last|none] [--normalize|--no-normalize]\n"
            "         [--input text|ids] [--batch N] [--threads N] " T5_LOAD_USAGE "\n"
            "Reads one input per stdin line (text, or with --input ids space-separated ids, eos included)\n"
            "and writes one JSON object per line: {\"embedding\": [...]}, or with --pooling none\n"
            "{\"token_embeddings\": [[...] per token]} (the encoder's last hidden state, </s> included).\n"
            "Defaults from the folder's sentence-transformers modules (modules.json: Pooling, Dense,\n"
            "Normalize), else mean pooling without normalization. Text is truncated to the folder's\n"
            "max_seq_length (sentence_bert_config.json), </s> kept last.\n" T5_LOAD_HELP);
}

/* One input line's answer, filled by the encoder callback. */
typedef struct {
    const t5_embedder *e;
    const t5_embed_params *p;
    int d_model, dim;
    char *json; /* the output line (malloc), or NULL */
    char err[256];
} slot;

/* Appends gen_put_floats' "[v0,v1,...]" to *buf (the server prints vectors the same way). */
static void put_vec(char **buf, size_t *len, size_t *cap, const float *v, int n) {
    size_t need = *len + GEN_FLOATS_CHARS(n) + 4;
    if (need > *cap) {
        char *nb = realloc(*buf, need * 2);
        if (!nb) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = nb, *cap = need * 2;
    }
    *len = (size_t)(gen_put_floats(*buf + *len, v, n) - *buf);
}

static void on_hidden(void *user, const float *h, int n) {
    slot *s = user;
    if (!h) {
        snprintf(s->err, sizeof s->err, "out of memory in the encoder");
        return;
    }
    size_t len = 0, cap = 0;
    char *buf = NULL;
    if (s->p->pooling == 0) {
        buf = malloc(cap = 64);
        if (buf) len = (size_t)sprintf(buf, "{\"token_embeddings\":[");
        for (int t = 0; buf && t < n; t++) {
            if (t) buf[len++] = ',';
            put_vec(&buf, &len, &cap, h + (size_t)t * s->d_model, s->d_model);
        }
    } else {
        float *v = malloc((size_t)s->dim * sizeof *v);
        if (!v || t5_embed_sentence(s->e, s->p, h, n, v, s->err, sizeof s->err) != 0) {
            if (!v) snprintf(s->err, sizeof s->err, "out of memory");
            free(v);
            return;
        }
        buf = malloc(cap = 64);
        if (buf) len = (size_t)sprintf(buf, "{\"embedding\":");
        if (buf) put_vec(&buf, &len, &cap, v, s->dim);
        free(v);
    }
    if (buf && len + 3 <= cap) {
        strcpy(buf + len, s->p->pooling == 0 ? "]}" : "}");
        s->json = buf;
    } else {
        free(buf);
        snprintf(s->err, sizeof s->err, "out of memory");
    }
}

/* Space-separated ids of line into *out (caller frees); -1 when malformed or empty. */
static int parse_ids(const char *line, int32_t **out, int *n, int vocab) {
    int cap = 64;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    *n = 0;
    for (const char *p = line; v;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == ',')
            p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x >= vocab) break;
        if (*n == cap) {
            int32_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[(*n)++] = (int32_t)x;
        p = end;
        if (!*p) {
            *out = v;
            return 0;
        }
    }
    free(v);
    return -1;
}

/* Embeds stdin, `batch` lines per step of b; one output line per input line. Returns 0,
 * or 1 when some line could not be embedded (its line is {"error": "..."}). */
static int embed_lines(const t5_model *m, const t5_embedder *e, const tok_model *tok, t5_batch *b,
                       const t5_embed_params *p, int dim, slot *slots, int batch) {
    const t5_config *cf = t5_model_config(m);
    int truncate = gen_embed_truncate(e, GEN_TRUNCATE_FOLDER, 0), eof = 0, rc = 0;
    char *line = NULL, err[256];
    size_t cap = 0;
    long lineno = 0;
    while (!eof) {
        int k = 0;
        ssize_t len;
        for (; k < batch && (len = getline(&line, &cap, stdin)) >= 0; k++) {
            lineno++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            slot *s = &slots[k];
            *s = (slot){e, p, cf->d_model, dim, NULL, ""};
            int32_t *ids = NULL;
            int n = 0;
            if (!tok) {
                if (parse_ids(line, &ids, &n, cf->vocab_size) != 0)
                    snprintf(s->err, sizeof s->err, "line %ld: expected space-separated ids in [0, %d)",
                             lineno, cf->vocab_size);
            } else { /* the folder's max_seq_length (gen.h: as /embed truncates) */
                gen_status st = gen_input_ids(tok, line, (size_t)len, truncate, 0, &ids, &n, err, sizeof err);
                if (st != GEN_OK)
                    snprintf(s->err, sizeof s->err, "line %ld: %.200s", lineno,
                             st == GEN_ERR_EMPTY ? "the text gives no tokens" : err);
            }
            if (!s->err[0] && t5_batch_add_embed(b, ids, n, on_hidden, s, err, sizeof err) < 0)
                snprintf(s->err, sizeof s->err, "line %ld: %.200s", lineno, err);
            free(ids);
        }
        eof = k < batch;
        if (k > 0) t5_batch_step(b); /* only embedding entries: no decoder step that could fail */
        for (int i = 0; i < k; i++) {
            slot *s = &slots[i];
            if (s->json)
                printf("%s\n", s->json);
            else {
                if (!s->err[0]) snprintf(s->err, sizeof s->err, "line %ld: not embedded", lineno - k + i + 1);
                fprintf(stderr, "t5 embed: %s\n", s->err);
                json_t *o = json_pack("{s:s}", "error", s->err);
                char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
                printf("%s\n", txt ? txt : "{\"error\":\"out of memory\"}");
                free(txt);
                json_decref(o);
                rc = 1;
            }
            free(s->json);
        }
        fflush(stdout);
    }
    free(line);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    const char *dir = NULL, *input = "text";
    int threads = 2, batch = 32;
    t5_embed_params p;
    t5_embed_default_params(&p);
    static const struct option opts[] = {{"model", 1, 0, 'm'},     {"pooling", 1, 0, 'p'},
                                         {"normalize", 0, 0, 'N'}, {"no-normalize", 0, 0, 'U'},
                                         {"input", 1, 0, 'i'},     {"batch", 1, 0, 'b'},
                                         {"threads", 1, 0, 't'},   {"help", 0, 0, 'h'},
                                         T5_LOAD_OPTIONS,          {0, 0, 0, 0}};
    t5_load_params lp;
    t5_load_default_params(&lp);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        int lo = cli_load_option("embed", c, optarg, &lp);
        if (lo < 0) return 2;
        if (lo) continue;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'p':
            if ((p.pooling = t5_pooling_from_name(optarg)) < 0) {
                fprintf(stderr, "t5 embed: unknown pooling '%s' (mean, max, cls, last, none)\n", optarg);
                return 2;
            }
            break;
        case 'N':
        case 'U':
            p.normalize = c == 'N';
            break;
        case 'i':
            input = optarg;
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dir || optind != argc || (strcmp(input, "text") && strcmp(input, "ids")) || threads < 1 ||
        threads > 256 || batch < 1 || batch > 65536) {
        usage(stderr);
        return 2;
    }
    char err[512], terr[400];
    int rc = 1, dim = -1;
    t5_embedder *e = NULL;
    tok_model *tok = NULL;
    t5_batch *b = NULL;
    slot *slots = NULL;
    t5_model *m = t5_model_load_with(dir, &lp, err, sizeof err);
    int ok = m && (e = t5_embedder_load(dir, t5_model_config(m)->d_model, err, sizeof err));
    if (ok && !strcmp(input, "text") && !(tok = tok_model_load(dir, terr, sizeof terr)))
        snprintf(err, sizeof err, "the model folder's tokenizer: %s", terr), ok = 0;
    if (ok && (dim = t5_embedder_dim(e, &p, err, sizeof err)) < 0) rc = 2, ok = 0; /* pooling vs Dense */
    if (ok && !(b = t5_batch_create(m, 1, threads, err, sizeof err))) ok = 0;
    if (ok && !(slots = calloc((size_t)batch, sizeof *slots)))
        snprintf(err, sizeof err, "out of memory"), ok = 0;
    if (ok)
        rc = embed_lines(m, e, tok, b, &p, dim, slots, batch);
    else
        fprintf(stderr, "t5 embed: %s\n", err);
    free(slots);
    t5_batch_free(b);
    tok_model_free(tok);
    t5_embedder_free(e);
    t5_model_free(m);
    return rc;
}
