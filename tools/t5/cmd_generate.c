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
#include "t5.h"
#include "tok.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: t5 generate --model DIR [--max-new-tokens N] [--min-new-tokens N] [--num-beams B]\n"
            "         [--num-return-sequences K] [--length-penalty X] [--early-stopping[=never]]\n"
            "         [--repetition-penalty X] [--no-repeat-ngram-size N]\n"
            "         [--do-sample --temperature T --top-k K --top-p P --seed S]\n"
            "         [--format text|ids|json] [--input text|ids] [--threads N]\n"
            "         [--isa auto|generic|avx2|avx512]\n"
            "Reads one input per stdin line (text, or with --input ids space-separated ids, eos included)\n"
            "and writes one line per returned sequence, best first. ids: generated ids, the decoder\n"
            "start token dropped and eos kept. json: one object per input with every sequence's ids,\n"
            "text, score, finish_reason and per-token logprobs.\n");
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

static const char *finish_name(int f) {
    return f == T5_FINISH_EOS      ? "eos"
           : f == T5_FINISH_LENGTH ? "length"
           : f == T5_FINISH_STOP   ? "stop"
                                   : "cancelled";
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
    t5_load_opts lo = {0};
    t5_gen_params p;
    t5_gen_default_params(&p);
    static const struct option opts[] = {{"model", 1, 0, 'm'},
                                         {"max-new-tokens", 1, 0, 'n'},
                                         {"min-new-tokens", 1, 0, 'N'},
                                         {"num-beams", 1, 0, 'b'},
                                         {"num-return-sequences", 1, 0, 'k'},
                                         {"length-penalty", 1, 0, 'l'},
                                         {"early-stopping", 2, 0, 'e'},
                                         {"repetition-penalty", 1, 0, 'r'},
                                         {"no-repeat-ngram-size", 1, 0, 'g'},
                                         {"do-sample", 0, 0, 'S'},
                                         {"temperature", 1, 0, 'T'},
                                         {"top-k", 1, 0, 'K'},
                                         {"top-p", 1, 0, 'P'},
                                         {"seed", 1, 0, 's'},
                                         {"format", 1, 0, 'f'},
                                         {"input", 1, 0, 'i'},
                                         {"threads", 1, 0, 't'},
                                         {"isa", 1, 0, 'I'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'n':
            p.max_new_tokens = (int)strtol(optarg, &end, 10);
            break;
        case 'N':
            p.min_new_tokens = (int)strtol(optarg, &end, 10);
            break;
        case 'b':
            p.num_beams = (int)strtol(optarg, &end, 10);
            break;
        case 'k':
            p.num_return_sequences = (int)strtol(optarg, &end, 10);
            break;
        case 'l':
            p.length_penalty = strtof(optarg, &end);
            break;
        case 'e':
            if (optarg && strcmp(optarg, "never")) {
                fprintf(stderr, "t5 generate: --early-stopping takes no value or =never\n");
                return 2;
            }
            p.early_stopping = optarg ? 2 : 1;
            break;
        case 'r':
            p.repetition_penalty = strtof(optarg, &end);
            break;
        case 'g':
            p.no_repeat_ngram_size = (int)strtol(optarg, &end, 10);
            break;
        case 'S':
            p.do_sample = 1;
            break;
        case 'T':
            p.temperature = strtof(optarg, &end);
            break;
        case 'K':
            p.top_k = (int)strtol(optarg, &end, 10);
            break;
        case 'P':
            p.top_p = strtof(optarg, &end);
            break;
        case 's':
            p.seed = strtoull(optarg, &end, 10);
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
        case 'I':
            if (t5_isa_parse(optarg, &lo.isa)) {
                fprintf(stderr, "t5 generate: --isa must be auto, generic, avx2 or avx512\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
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
    t5_model *m = t5_model_load_opts(dir, &lo, err, sizeof err);
    if (!m) {
        fprintf(stderr, "t5 generate: %s\n", err);
        return 1;
    }
    tok_model *tok = NULL;
    if (!strcmp(input, "text") || strcmp(format, "ids")) {
        tok = tok_model_load(dir, err, sizeof err);
        if (!tok && (!strcmp(input, "text") || !strcmp(format, "text"))) {
            fprintf(stderr, "t5 generate: the model folder's tokenizer: %s\n", err);
            t5_model_free(m);
            return 1;
        }
    }
    if (tok && tok_model_kind(tok) == TOK_KIND_WORDPIECE) { /* T5 PEGASUS: [CLS] ... [SEP] */
        if (p.decoder_start_token_id < 0) p.decoder_start_token_id = tok_bos_id(tok);
        if (p.eos_token_id < 0) p.eos_token_id = tok_eos_id(tok);
    }
    /* check the parameters once, before reading input */
    {
        int32_t eos = t5_model_config(m)->eos_token_id;
        t5_batch *b =
            t5_batch_create(m, p.num_beams > 1 ? p.num_beams : p.num_return_sequences, 1, err, sizeof err);
        int h = b ? t5_batch_add(b, &eos, 1, &p, NULL, NULL, NULL, err, sizeof err) : -1;
        t5_batch_free(b);
        if (h < 0) {
            fprintf(stderr, "t5 generate: %s\n", err);
            tok_model_free(tok);
            t5_model_free(m);
            return 2;
        }
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
            tok_encode_params ep;
            tok_encode_default_params(&ep);
            ep.add_eos = 1;
            tok_encoding e;
            if (tok_encode(tok, line, (size_t)len, &ep, &e, err, sizeof err) != 0) {
                fprintf(stderr, "t5 generate: line %ld: %s\n", lineno, err);
                printf("\n");
                rc = 1;
                continue;
            }
            n = (int)e.n;
            ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
            if (ids) memcpy(ids, e.ids, (size_t)n * sizeof *ids);
            tok_encoding_free(&e);
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
                json_object_set_new(js, "finish_reason", json_string(finish_name(s->finish)));
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
