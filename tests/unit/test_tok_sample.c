/* test_tok_sample.c - subword sampling follows the exact distribution. For short words
 * under spm_a.model, every segmentation of the normalized text into vocabulary pieces
 * is enumerated by brute force (from the piece strings and scores alone, independently
 * of the lattice code), giving P(seg) = exp(alpha * score) / Z. Then 20000 draws of
 * each sampler (forward-filtering backward-sampling, one-pass Viterbi sampling, and
 * sampling among the n best, whose exact law is the brute-force top n renormalized)
 * are compared with a chi-square test at p = 0.001. Also: same seed, same answer. */
#include <check.h>
#include "check_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok.h"
#include "tok_testutil.h"

#define MAXSEG 4096
#define MAXP 16

typedef struct {
    int32_t ids[MAXP];
    int n;
    double score;
} seg;

static const tok_model *M;
static int32_t *sorted_ids; /* NORMAL pieces */
static int n_sorted;

static int32_t piece_id(const char *s, size_t len) {
    for (int i = 0; i < n_sorted; i++) {
        const char *p = tok_id_to_piece(M, sorted_ids[i]);
        if (strlen(p) == len && !memcmp(p, s, len)) return sorted_ids[i];
    }
    return -1;
}

static void enumerate(const char *s, size_t len, size_t pos, seg *cur, seg *out, int *nout) {
    if (pos == len) {
        ck_assert_int_lt(*nout, MAXSEG);
        out[(*nout)++] = *cur;
        return;
    }
    for (size_t e = pos + 1; e <= len; e++) {
        if (e < len && ((unsigned char)s[e] & 0xC0) == 0x80) continue; /* inside a character */
        int32_t id = piece_id(s + pos, e - pos);
        if (id < 0) continue;
        ck_assert_int_lt(cur->n, MAXP);
        cur->ids[cur->n++] = id;
        double old = cur->score;
        cur->score += tok_piece_score(M, id);
        enumerate(s, len, e, cur, out, nout);
        cur->score = old;
        cur->n--;
    }
}

static int cmp_seg_desc(const void *a, const void *b) {
    double x = ((const seg *)a)->score, y = ((const seg *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* chi-square critical value at p = 0.001 (Wilson-Hilferty) */
static double chi2_crit(int df) {
    double z = 3.090232, h = 2.0 / (9.0 * df);
    return df * pow(1 - h + z * sqrt(h), 3);
}

static double chi_square(const double *expect_p, const int *count, int k, int n, int *df) {
    double chi = 0, pool_e = 0, pool_o = 0;
    int bins = 0;
    for (int i = 0; i < k; i++) {
        double e = expect_p[i] * n;
        if (e < 5) { /* pool the rare segmentations into one bin */
            pool_e += e;
            pool_o += count[i];
            continue;
        }
        chi += (count[i] - e) * (count[i] - e) / e;
        bins++;
    }
    if (pool_e >= 5) {
        chi += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
        bins++;
    } else if (pool_o > 20) {
        chi += 1e9; /* rare outcomes drawn far too often */
    }
    *df = bins - 1;
    return chi;
}

static void check_word(const char *word, float alpha, int nbest) {
    /* normalized form: the dummy prefix, then the word (plain lower-case ASCII / CJK, which
     * spm_a's nmt_nfkc leaves unchanged) */
    char norm[256];
    snprintf(norm, sizeof norm, "\xe2\x96\x81%s", word);
    static seg segs[MAXSEG];
    int ns = 0;
    seg cur = {{0}, 0, 0};
    enumerate(norm, strlen(norm), 0, &cur, segs, &ns);
    ck_assert_int_ge(ns, 4);
    qsort(segs, (size_t)ns, sizeof segs[0], cmp_seg_desc);
    int k = nbest > 1 && nbest < ns ? nbest : ns;
    if (k < ns) ck_assert(segs[k - 1].score - segs[k].score > 1e-4); /* no tie at the cut */
    double p[MAXSEG], z = 0;
    for (int i = 0; i < k; i++)
        z += exp(alpha * segs[i].score - alpha * segs[0].score);
    for (int i = 0; i < k; i++)
        p[i] = exp(alpha * segs[i].score - alpha * segs[0].score) / z;
    const int draws = 20000;
    for (int method = 0; method < (nbest > 1 ? 1 : 2); method++) {
        static int count[MAXSEG];
        memset(count, 0, sizeof count);
        tok_encode_params par;
        tok_encode_default_params(&par);
        par.sample = 1;
        par.alpha = alpha;
        par.nbest_size = nbest > 1 ? nbest : -1;
        par.one_pass = method;
        for (int d = 0; d < draws; d++) {
            par.seed = 1000003ull * (uint64_t)d + 17;
            tok_encoding e;
            char err[128];
            ck_assert_int_eq(tok_encode(M, word, strlen(word), &par, &e, err, sizeof err), 0);
            int found = -1;
            for (int i = 0; i < k && found < 0; i++)
                if (segs[i].n == (int)e.n && !memcmp(segs[i].ids, e.ids, e.n * sizeof *e.ids)) found = i;
            ck_assert_msg(found >= 0, "sampled a segmentation outside the support (%s)", word);
            count[found]++;
            tok_encoding_free(&e);
        }
        int df;
        double chi = chi_square(p, count, k, draws, &df);
        fprintf(stderr, "%-12s alpha %.2f %-22s: %4d segmentations, chi2 %.1f on %d df (critical %.1f)\n",
                word, alpha,
                nbest > 1 ? "n-best sampling"
                : method  ? "one-pass Viterbi"
                          : "FFBS",
                k, chi, df, chi2_crit(df > 0 ? df : 1));
        ck_assert_int_ge(df, 1);
        ck_assert(chi < chi2_crit(df));
    }
}

static tok_model *load(void) {
    char err[256];
    tok_model *m = tok_model_load(tt_fixture("tokenizer/spm_a.model"), err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    M = m;
    n_sorted = 0;
    sorted_ids = malloc((size_t)tok_vocab_size(m) * sizeof *sorted_ids);
    for (int32_t i = 0; i < tok_vocab_size(m); i++)
        if (tok_piece_type(m, i) == TOK_PIECE_NORMAL) sorted_ids[n_sorted++] = i;
    return m;
}

START_TEST(sampling_matches_enumeration) {
    tok_model *m = load();
    check_word("hello", 0.5f, -1);
    check_word("tokenizer", 0.3f, -1);
    check_word("information", 0.1f, -1);
    check_word("中文分词", 0.5f, -1);
    check_word("tokenizer", 0.3f, 6);
    check_word("information", 0.1f, 10);
    free(sorted_ids);
    tok_model_free(m);
}
END_TEST

START_TEST(same_seed_same_answer) {
    tok_model *m = load();
    tok_encode_params p;
    tok_encode_default_params(&p);
    p.sample = 1;
    p.alpha = 0.2f;
    const char *t = "The quick brown fox jumps over the lazy dog, 中文分词测试";
    int differs = 0;
    for (int nb = -1; nb <= 8; nb += 9)
        for (uint64_t seed = 1; seed < 30; seed++) {
            tok_encoding a, b, c;
            char err[128];
            p.nbest_size = nb;
            p.seed = seed;
            ck_assert_int_eq(tok_encode(m, t, strlen(t), &p, &a, err, sizeof err), 0);
            ck_assert_int_eq(tok_encode(m, t, strlen(t), &p, &b, err, sizeof err), 0);
            p.seed = seed + 1000;
            ck_assert_int_eq(tok_encode(m, t, strlen(t), &p, &c, err, sizeof err), 0);
            ck_assert_int_eq(a.n, b.n);
            ck_assert(!memcmp(a.ids, b.ids, a.n * sizeof *a.ids));
            differs += a.n != c.n || memcmp(a.ids, c.ids, a.n * sizeof *a.ids);
            /* a sample decodes back to the normalized text */
            size_t n;
            char *s = tok_decode(m, a.ids, a.n, &n, err, sizeof err);
            ck_assert_str_eq(s, t);
            free(s);
            tok_encoding_free(&a);
            tok_encoding_free(&b);
            tok_encoding_free(&c);
        }
    ck_assert_int_gt(differs, 10); /* different seeds do sample */
    free(sorted_ids);
    tok_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tok_sample");
    TCase *tc = tcase_create("sample");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sampling_matches_enumeration);
    tcase_add_test(tc, same_seed_same_answer);
    suite_add_tcase(s, tc);
    return check_run(s);
}
