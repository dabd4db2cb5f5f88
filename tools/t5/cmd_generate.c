/* cmd_generate.c - `t5 generate --model DIR [options]`: offline generation, one
 * input per stdin line (text through the model folder's tokenizer, or with
 * `--input ids` space-separated token ids, the exact encoder input), one output
 * line per returned sequence (best first) in text, ids or JSON. For WordPiece
 * (T5 PEGASUS vocab.txt) models, generation starts at [CLS] and stops at [SEP]
 * as T5 PEGASUS does, whatever config.json says.
 * What it is not: a server; inputs are processed one at a time. */
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
            "usage: t5 generate --model DIR [--max-new-tokens N] [--min-new-tokens N] [--num-beams B]\n"
            "         [--num-return-sequences K] [--length-penalty X] [--early-stopping[=never]]\n"
            "         [--repetition-penalty X] [--no-repeat-ngram-size N]\n"
            "         [--do-sample --temperature T --top-k K --top-p P --seed S]\n"
            "         [--format text|ids|json] [--input text|ids] [--threads N]\n"
            "         " T5_LOAD_USAGE "\n"
            "Reads one input per stdin line (text, or with --input ids space-separated ids, eos included)\n"
            "and writes one line per returned sequence, best first. ids: generated ids, the decoder\n"
            "start token dropped and eos kept. json: one object per input with every sequence's ids,\n"
            "text, score, finish_reason and per-token logprobs.\n" T5_LOAD_HELP);
}

static int parse_ids(char *line, int32_t **out, int *n, int vocab) {
    int cap = 64;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    *n = 0;
    char *p = line;
    while (v) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == ',')
            p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x >= vocab) {
            free(v);
            return -1;
        }
        if (*n == cap) {
            int32_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[(*n)++] = (int32_t)x;
        p = end;
    }
    if (!v) return -1;
    *out = v;
    return 0;
}

enum { OPT_PARAM = 256 }; /* getopt value of gen_params[i]: OPT_PARAM + i */

/* The long options: --model, one per generation parameter (gen_params[], `_` -> `-`;
 * a flag for booleans, an optional `=never` for early_stopping), then the tool's own and the load options.
 * names[] holds the flag names; opts ends with a zero entry. */
static void make_options(struct option *opts, char (*names)[48]) {
    int k = 0;
    opts[k++] = (struct option){"model", 1, 0, 'm'};
    for (int i = 0; i < gen_n_params; i++) {
        const gen_param *gp = &gen_params[i];
        snprintf(names[i], sizeof names[i], "%s", gp->name);
        for (char *c = names[i]; *c; c++)
            if (*c == '_') *c = '-';
        int arg = gp->type == GEN_PARAM_BOOL ? 0 : gp->type == GEN_PARAM_EARLY_STOP ? 2 : 1;
        opts[k++] = (struct option){names[i], arg, 0, OPT_PARAM + i};
    }
    opts[k++] = (struct option){"format", 1, 0, 'f'};
    opts[k++] = (struct option){"input", 1, 0, 'i'};
    opts[k++] = (struct option){"threads", 1, 0, 't'};
    opts[k++] = (struct option){"help", 0, 0, 'h'};
    const struct option load[] = {T5_LOAD_OPTIONS};
    for (size_t i = 0; i < sizeof load / sizeof load[0]; i++)
        opts[k++] = load[i];
    opts[k] = (struct option){0, 0, 0, 0};
}

/* Sets the parameter from its flag's value: 0, 1 bad number (*end past the number), 2 usage. */
static int set_param(const gen_param *gp, const char *arg, t5_gen_params *p, char **end) {
    void *field = (char *)p + gp->offset;
    switch (gp->type) {
    case GEN_PARAM_INT:
        *(int *)field = (int)strtol(arg, end, 10);
        break;
    case GEN_PARAM_FLOAT:
        *(float *)field = strtof(arg, end);
        break;
    case GEN_PARAM_SEED:
        *(uint64_t *)field = strtoull(arg, end, 10);
        break;
    case GEN_PARAM_BOOL:
        *(int *)field = 1;
        break;
    case GEN_PARAM_EARLY_STOP:
        if (arg && strcmp(arg, "never")) {
            fprintf(stderr, "t5 generate: --early-stopping takes no value or =never\n");
            return 2;
        }
        *(int *)field = arg ? 2 : 1;
        break;
    }
    return 0;
}

/* Text of a generated sequence, or NULL without a tokenizer (caller frees). */
static char *seq_text(const tok_model *tok, const t5_sequence *s) {
    if (!tok) return NULL;
    char err[256];
    char *t = tok_decode(tok, s->ids, (size_t)s->n, NULL, err, sizeof err);
    if (!t) return strdup("");
    for (char *q = t; *q; q++) /* keep one line per sequence */
        if (*q == '\n' || *q == '\r') *q = ' ';
    return t;
}

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *format = "text", *input = "text";
    int threads = 2;
    t5_gen_params p;
    t5_gen_default_params(&p);
    t5_load_params lp;
    t5_load_default_params(&lp);
    struct option opts[64 + 8];
    char names[64][48];
    make_options(opts, names);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        char *end = NULL;
        int lo = cli_load_option("generate", c, optarg, &lp);
        if (lo < 0) return 2;
        if (lo) continue;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'i':
            input = optarg;
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (c < OPT_PARAM || c >= OPT_PARAM + gen_n_params) {
                usage(stderr);
                return 2;
            }
            if (set_param(&gen_params[c - OPT_PARAM], optarg, &p, &end)) return 2;
        }
        if (end && (*end || end == optarg)) {
            fprintf(stderr, "t5 generate: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (!dir || optind != argc ||
        (strcmp(format, "text") && strcmp(format, "ids") && strcmp(format, "json")) ||
        (strcmp(input, "text") && strcmp(input, "ids")) || threads < 1 || threads > 256) {
        usage(stderr);
        return 2;
    }
    char err[512];
    t5_model *m = t5_model_load_with(dir, &lp, err, sizeof err);
    if (!m) {
        fprintf(stderr, "t5 generate: %s\n", err);
        return 1;
    }
    fputs(t5_model_notes(m), stderr); /* load notes: copies instead of mappings, NaN/Inf */
    tok_model *tok = NULL;
    if (!strcmp(input, "text") || strcmp(format, "ids")) {
        tok = tok_model_load(dir, err, sizeof err);
        if (!tok && (!strcmp(input, "text") || !strcmp(format, "text"))) {
            fprintf(stderr, "t5 generate: the model folder's tokenizer: %s\n", err);
            t5_model_free(m);
            return 1;
        }
    }
    if (tok) gen_params_for_tokenizer(&p, tok); /* T5 PEGASUS: [CLS] ... [SEP] */
    /* check the parameters once, before reading input */
    if (t5_gen_check(m, &p, err, sizeof err) != T5_OK) {
        fprintf(stderr, "t5 generate: %s\n", err);
        tok_model_free(tok);
        t5_model_free(m);
        return 2;
    }
    if (!strcmp(format, "json")) p.want_logprobs = 1;
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        int32_t *ids = NULL;
        int n = 0;
        if (!strcmp(input, "ids")) {
            if (parse_ids(line, &ids, &n, t5_model_config(m)->vocab_size) != 0 || n == 0) {
                fprintf(stderr, "t5 generate: line %ld: expected space-separated ids in [0, %d)\n", lineno,
                        t5_model_config(m)->vocab_size);
                free(ids);
                printf("\n");
                rc = 1;
                continue;
            }
        } else {
            gen_status st = gen_input_ids(tok, line, (size_t)len, 0, 0, &ids, &n, err, sizeof err);
            if (st == GEN_ERR_TOKENIZE) {
                fprintf(stderr, "t5 generate: line %ld: %s\n", lineno, err);
                printf("\n");
                rc = 1;
                continue;
            }
            if (st == GEN_ERR_EMPTY) ids = calloc(1, sizeof *ids); /* the engine says why it takes none */
        }
        t5_result r;
        if (!ids || t5_generate(m, ids, n, &p, threads, &r, err, sizeof err) != 0) {
            fprintf(stderr, "t5 generate: line %ld: %s\n", lineno, ids ? err : "out of memory");
            free(ids);
            printf("\n");
            rc = 1;
            continue;
        }
        free(ids);
        if (!strcmp(format, "json")) {
            json_t *o = json_object(), *arr = json_array();
            for (int i = 0; i < r.n_seqs; i++) {
                const t5_sequence *s = &r.seqs[i];
                json_t *js = json_object(), *jid = json_array(), *jlp = json_array();
                for (int j = 0; j < s->n; j++) {
                    json_array_append_new(jid, json_integer(s->ids[j]));
                    if (s->logprobs) json_array_append_new(jlp, json_real(s->logprobs[j]));
                }
                json_object_set_new(js, "ids", jid);
                char *t = seq_text(tok, s);
                json_t *jt = t ? json_string(t) : NULL; /* NULL also for invalid UTF-8 */
                if (t) json_object_set_new(js, "text", jt ? jt : json_string(""));
                free(t);
                json_object_set_new(js, "score", json_real(s->score));
                json_object_set_new(js, "finish_reason", json_string(gen_finish_name(s->finish)));
                json_object_set_new(js, "logprobs", jlp);
                json_array_append_new(arr, js);
            }
            json_object_set_new(o, "input_tokens", json_integer(r.input_tokens));
            json_object_set_new(o, "sequences", arr);
            char *txt = json_dumps(o, JSON_COMPACT);
            printf("%s\n", txt ? txt : "{}");
            free(txt);
            json_decref(o);
        } else
            for (int i = 0; i < r.n_seqs; i++) {
                const t5_sequence *s = &r.seqs[i];
                if (!strcmp(format, "ids")) {
                    for (int j = 0; j < s->n; j++)
                        printf(j ? " %d" : "%d", s->ids[j]);
                    printf("\n");
                } else {
                    char *t = seq_text(tok, s);
                    printf("%s\n", t ? t : "");
                    free(t);
                }
            }
        fflush(stdout);
        t5_result_free(&r);
    }
    free(line);
    tok_model_free(tok);
    t5_model_free(m);
    return rc;
}
