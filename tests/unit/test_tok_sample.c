/* test_tok_sample.c - subword sampling follows the exact distribution. For short words
 * under spm_a.model, every segmentation of the normalized text into vocabulary pieces
 * is enumerated by brute force (from the piece strings and scores alone, independently
 * of the lattice code), giving P(seg) = exp(alpha * score) / Z. Then 20000 draws of
 * each sampler (forward-filtering backward-sampling, one-pass Viterbi sampling, and
 * sampling among the n best, whose exact law is the brute-force top n renormalized)
 * are compared with a chi-square test at p = 0.001; alpha 0 is uniform (SentencePiece's
 * rule). Also: same seed, same answer; related seeds (s and s + 1, the per-line seeds of
 * `t5 tokenize --seed 7` and `--seed 8`, s and s + splitmix64's increment) sample as
 * independently as unrelated seeds (overlap of cut positions over tok_public.txt). */
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
    check_word("hello", 0.0f, -1);
    check_word("中文分词", 0.0f, -1);
    check_word("tokenizer", 0.0f, 6);
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

/* Jaccard overlap of the cut positions of two samplings of every line of tok_public.txt,
 * line i sampled with seed sa(i) and sb(i) (pooled: shared cuts / all cuts). */
typedef uint64_t (*seed_fn)(uint64_t line);
static double cut_overlap(const tok_model *m, seed_fn sa, seed_fn sb, int one_pass) {
    FILE *f = fopen(tt_fixture("tokenizer/tok_public.txt"), "r");
    ck_assert_msg(f != NULL, "tok_public.txt");
    char *line = NULL;
    size_t cap = 0, inter = 0, uni = 0;
    ssize_t len;
    tok_encode_params p;
    tok_encode_default_params(&p);
    p.sample = 1;
    p.alpha = 0.1f;
    p.one_pass = one_pass;
    for (uint64_t i = 0; (len = getline(&line, &cap, f)) >= 0; i++) {
        if (len > 0 && line[len - 1] == '\n') len--;
        tok_encoding a, b;
        char err[128];
        p.seed = sa(i);
        ck_assert_int_eq(tok_encode(m, line, (size_t)len, &p, &a, err, sizeof err), 0);
        p.seed = sb(i);
        ck_assert_int_eq(tok_encode(m, line, (size_t)len, &p, &b, err, sizeof err), 0);
        size_t x = 0, y = 0; /* the ends are increasing: merge */
        while (x < a.n || y < b.n) {
            if (y == b.n || (x < a.n && a.ends[x] < b.ends[y]))
                x++;
            else if (x == a.n || b.ends[y] < a.ends[x])
                y++;
            else
                x++, y++, inter++;
            uni++;
        }
        tok_encoding_free(&a);
        tok_encoding_free(&b);
    }
    free(line);
    fclose(f);
    return (double)inter / (double)uni;
}

static uint64_t s_plus0(uint64_t i) {
    return 1000 + 2 * i;
}
static uint64_t s_plus1(uint64_t i) {
    return 1000 + 2 * i + 1;
}
static uint64_t cli7(uint64_t i) {
    return 7ull << 32 ^ i;
} /* t5 tokenize's (seed, line) */
static uint64_t cli8(uint64_t i) {
    return 8ull << 32 ^ i;
}
static uint64_t gold7(uint64_t i) {
    return 7 * 0x9E3779B97F4A7C15ull + i;
} /* one splitmix64 draw apart */
static uint64_t gold8(uint64_t i) {
    return 8 * 0x9E3779B97F4A7C15ull + i;
}
static uint64_t far_a(uint64_t i) {
    return i * 0xD1342543DE82EF95ull + 0x5851F42D4C957F2Dull;
}
static uint64_t far_b(uint64_t i) {
    return i * 0xAF251AF3B0F025B5ull + 0x14057B7EF767814Full;
}

START_TEST(related_seeds_sample_independently) {
    tok_model *m = load();
    for (int one_pass = 0; one_pass < 2; one_pass++) {
        double base = cut_overlap(m, far_a, far_b, one_pass);
        const struct {
            const char *what;
            seed_fn a, b;
        } pairs[] = {{"s, s + 1", s_plus0, s_plus1},
                     {"t5 tokenize --seed 7 / 8", cli7, cli8},
                     {"s, s + 0x9E3779B97F4A7C15", gold7, gold8}};
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
            double j = cut_overlap(m, pairs[k].a, pairs[k].b, one_pass);
            fprintf(stderr, "%-9s cut overlap %-28s %.4f, unrelated seeds %.4f\n",
                    one_pass ? "one-pass" : "FFBS", pairs[k].what, j, base);
            ck_assert_msg(fabs(j - base) < 0.01, "seeds %s: overlap %.4f against %.4f for unrelated seeds",
                          pairs[k].what, j, base);
        }
    }
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
    tcase_add_test(tc, related_seeds_sample_independently);
    suite_add_tcase(s, tc);
    return check_run(s);
}
