/* cmd_score.c - `t5 score --model DIR [--compute-type T] [--ref-compute-type R]`:
 * teacher-forced scoring (engine t5_score), one `input<TAB>target` per stdin line (texts
 * through the folder's tokenizer, the target with eos appended; or with --input ids,
 * space-separated ids on each side, the target as given). One JSON line per input: the
 * target's per-token logprobs and their sum; with a reference compute type (the same
 * folder loaded a second time), the reference's sum, how many steps the two agree on the
 * most probable next token and the mean KL(reference || this type) per token. A summary
 * of all lines goes to stderr.
 * What it is not: no generation; the target is given. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "tok.h"

static void usage(FILE *f) {
    fprintf(
        f, "usage: t5 score --model DIR [--input text|ids] [--threads N] " T5_LOAD_USAGE "\n"
           "         [--ref-compute-type T [--ref-int8-float CLASSES]]\n"
           "Reads `input<TAB>target` lines (texts, or with --input ids space-separated ids; a text\n"
           "target gets eos appended, an ids target is scored as given) and writes one JSON line each:\n"
           "{\"logprob\": sum, \"n\": tokens, \"tokens\": [{\"id\", \"logprob\"}]}; with --ref-compute-type\n"
           "also \"ref_logprob\", \"agree\" (steps whose most probable next token is the reference's)\n"
           "and \"kl\" (mean KL(reference || this type) per token, nats). Summary on stderr.\n" T5_LOAD_HELP);
}

/* The ids of one side of a line into *ids[*n] (caller frees); a text side through tok
 * with eos (WordPiece: [SEP], and a target drops its leading [CLS]: that is the decoder start). */
static int side_ids(const tok_model *tok, int is_ids, int is_target, const char *s, int vocab, int32_t **ids,
                    int *n, char *err, size_t errlen) {
    *ids = NULL, *n = 0;
    if (is_ids) {
        size_t cap = strlen(s) / 2 + 1;
        int32_t *v = malloc(cap * sizeof *v);
        if (!v) return snprintf(err, errlen, "out of memory"), -1;
        for (const char *p = s; *p;) {
            char *end;
            long x = strtol(p, &end, 10);
            if (end == p) {
                if (*p == ' ' || *p == ',') {
                    p++;
                    continue;
                }
                free(v);
                return snprintf(err, errlen, "expected space-separated ids"), -1;
            }
            if (x < 0 || x >= vocab) {
                free(v);
                return snprintf(err, errlen, "id %ld outside the vocabulary (0..%d)", x, vocab - 1), -1;
            }
            v[(*n)++] = (int32_t)x;
            p = end;
        }
        *ids = v;
        return 0;
    }
    tok_encode_params ep;
    tok_encode_default_params(&ep);
    ep.add_eos = 1;
    tok_encoding e;
    if (tok_encode(tok, s, strlen(s), &ep, &e, err, errlen) != 0) return -1;
    int skip =
        is_target && tok_model_kind(tok) == TOK_KIND_WORDPIECE && e.n > 0 && e.ids[0] == tok_bos_id(tok);
    *n = (int)e.n - skip;
    *ids = malloc((size_t)(*n > 0 ? *n : 1) * sizeof **ids);
    if (*ids) memcpy(*ids, e.ids + skip, (size_t)*n * sizeof **ids);
    tok_encoding_free(&e);
    return *ids ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

/* KL(p || q) of two log-probability rows, in double; terms with p = 0 are 0. */
static double kl_div(const float *lp, const float *lq, int V) {
    double s = 0;
    for (int v = 0; v < V; v++)
        if (lp[v] > -INFINITY) s += exp((double)lp[v]) * ((double)lp[v] - (double)lq[v]);
    return s;
}

int cmd_score(int argc, char **argv) {
    const char *dir = NULL, *input = "text";
    int threads = 2, have_ref = 0;
    t5_load_params lp, rp;
    t5_load_default_params(&lp);
    t5_load_default_params(&rp);
    enum { OPT_REF = 0x200, OPT_REF_INT8 };
    static const struct option opts[] = {{"model", 1, 0, 'm'},
                                         {"input", 1, 0, 'i'},
                                         {"threads", 1, 0, 't'},
                                         {"ref-compute-type", 1, 0, OPT_REF},
                                         {"ref-int8-float", 1, 0, OPT_REF_INT8},
                                         {"help", 0, 0, 'h'},
                                         T5_LOAD_OPTIONS,
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        int lo = cli_load_option("score", c, optarg, &lp);
        if (lo == 0 && (c == OPT_REF || c == OPT_REF_INT8))
            lo = cli_load_option("score", c == OPT_REF ? CLI_OPT_COMPUTE_TYPE : CLI_OPT_INT8_FLOAT, optarg,
                                 &rp),
            have_ref |= c == OPT_REF;
        if (lo < 0) return 2;
        if (lo) continue;
        char *end = NULL;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'i':
            input = optarg;
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (*end) threads = 0;
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
        threads > 256) {
        usage(stderr);
        return 2;
    }
    int is_ids = !strcmp(input, "ids");
    char err[512];
    t5_model *m = t5_model_load_with(dir, &lp, err, sizeof err);
    t5_model *ref = m && have_ref ? t5_model_load_with(dir, &rp, err, sizeof err) : NULL;
    if (!m || (have_ref && !ref)) {
        fprintf(stderr, "t5 score: %s\n", err);
        t5_model_free(m);
        return 1;
    }
    tok_model *tok = is_ids ? NULL : tok_model_load(dir, err, sizeof err); /* as `t5 generate` */
    if (!tok && !is_ids) {
        fprintf(stderr, "t5 score: the model folder's tokenizer: %s\n", err);
        t5_model_free(m), t5_model_free(ref);
        return 1;
    }
    int V = t5_model_config(m)->vocab_size;
    int32_t start = tok && tok_model_kind(tok) == TOK_KIND_WORDPIECE ? tok_bos_id(tok) : -1;
    long lineno = 0, tokens = 0, agree_all = 0, bad = 0;
    double sum_lp = 0, sum_ref = 0, sum_kl = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *tab = strchr(line, '\t');
        int32_t *in = NULL, *tg = NULL;
        int n = 0, nt = 0;
        t5_score_result r = {0}, rr = {0};
        int ok = 0;
        if (!tab)
            snprintf(err, sizeof err, "expected input<TAB>target");
        else {
            *tab = 0;
            ok = side_ids(tok, is_ids, 0, line, V, &in, &n, err, sizeof err) == 0 &&
                 side_ids(tok, is_ids, 1, tab + 1, V, &tg, &nt, err, sizeof err) == 0 &&
                 t5_score(m, in, n, tg, nt, start, have_ref, threads, &r, err, sizeof err) == 0 &&
                 (!ref || t5_score(ref, in, n, tg, nt, start, 1, threads, &rr, err, sizeof err) == 0);
        }
        free(in);
        if (!ok) {
            fprintf(stderr, "t5 score: line %ld: %s\n", lineno, err);
            printf("{}\n");
            free(tg);
            t5_score_result_free(&r);
            bad = 1;
            continue;
        }
        json_t *o = json_object(), *jt = json_array();
        for (int i = 0; i < r.n; i++) {
            json_t *t = json_object();
            json_object_set_new(t, "id", json_integer(tg[i]));
            json_object_set_new(t, "logprob", json_real(r.logprobs[i]));
            json_array_append_new(jt, t);
        }
        json_object_set_new(o, "logprob", json_real(r.total));
        json_object_set_new(o, "n", json_integer(r.n));
        sum_lp += r.total, tokens += r.n;
        if (ref) {
            long agree = 0;
            double kl = 0;
            for (int i = 0; i < r.n; i++) {
                agree += r.argmax[i] == rr.argmax[i];
                kl += kl_div(rr.dist + (size_t)i * V, r.dist + (size_t)i * V, V);
            }
            json_object_set_new(o, "ref_logprob", json_real(rr.total));
            json_object_set_new(o, "agree", json_integer(agree));
            json_object_set_new(o, "kl", json_real(kl / r.n));
            agree_all += agree, sum_kl += kl, sum_ref += rr.total;
        }
        json_object_set_new(o, "tokens", jt);
        char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
        fflush(stdout);
        free(tg);
        t5_score_result_free(&r), t5_score_result_free(&rr);
    }
    free(line);
    fprintf(stderr, "t5 score: %ld lines, %ld target tokens, log-likelihood %.4f (%s)", lineno, tokens,
            sum_lp, t5_compute_type_name(lp.compute_type));
    if (ref && tokens)
        fprintf(stderr, "; reference %s %.4f; argmax agreement %.4f (%ld/%ld), mean KL %.3g nats/token",
                t5_compute_type_name(rp.compute_type), sum_ref, (double)agree_all / tokens, agree_all, tokens,
                sum_kl / tokens);
    fprintf(stderr, "\n");
    tok_model_free(tok);
    t5_model_free(m), t5_model_free(ref);
    return bad;
}
