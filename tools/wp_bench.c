/* wp_bench.c - speed of the T5 PEGASUS tokenizer (tokenizer/wordpiece.c + jieba.c): model load
 * time (vocab.txt + the 349k-word jieba dictionary), jieba segmentation alone and the whole
 * encode (jieba + BERT basic + WordPiece + [CLS]/[SEP]) over a corpus, one line at a time,
 * one thread; best of 3 passes, in CPU time. tools/bench_wordpiece.sh prints it next to Python's jieba +
 * BERT on the same corpus. Not a test: it asserts nothing.
 * usage: build/wp_bench VOCAB CORPUS [DICT] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tok_dev.h"

/* CPU time of this (single-threaded) process: the machine may be shared, and wall time
 * would then measure the neighbours. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void count_word(void *user, const char *w, size_t n) {
    (void)w;
    (void)n;
    ++*(size_t *)user;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: wp_bench VOCAB CORPUS [DICT]\n");
        return 2;
    }
    char err[256];
    double best_load = 1e9, best_dict = 1e9;
    wp_model *m = NULL;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        wp_jieba *j = wp_jieba_load(argc > 3 ? argv[3] : NULL, err, sizeof err);
        double t1 = now();
        if (!j) {
            fprintf(stderr, "wp_bench: %s\n", err);
            return 1;
        }
        wp_jieba_free(j);
        if (t1 - t0 < best_dict) best_dict = t1 - t0;
        wp_model_free(m);
        t0 = now();
        m = wp_model_load(argv[1], argc > 3 ? argv[3] : NULL, err, sizeof err);
        t1 = now();
        if (!m) {
            fprintf(stderr, "wp_bench: %s\n", err);
            return 1;
        }
        if (t1 - t0 < best_load) best_load = t1 - t0;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "wp_bench: cannot open the corpus\n");
        wp_model_free(m);
        return 1;
    }
    char *data = NULL;
    size_t len = 0, cap = 0, r;
    do {
        if (cap - len < 1 << 20) {
            cap = cap ? cap * 2 : 16 << 20;
            char *nd = realloc(data, cap);
            if (!nd) {
                fprintf(stderr, "wp_bench: out of memory\n");
                return 1;
            }
            data = nd;
        }
        r = fread(data + len, 1, cap - len, f);
        len += r;
    } while (r > 0);
    fclose(f);
    double best_cut = 1e9, best_enc = 1e9;
    size_t words = 0, tokens = 0, lines = 0;
    uint64_t hash = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t w = 0, t = 0, l = 0;
        uint64_t h = 1469598103934665603ull; /* FNV-1a over every id (4 bytes, little-endian) */
        double t0 = now();
        for (size_t i = 0; i < len;) {
            char *nl = memchr(data + i, '\n', len - i);
            size_t e = nl ? (size_t)(nl - data) : len;
            wp_jieba_cut(m, data + i, e - i, count_word, &w);
            i = e + 1;
        }
        double t1 = now();
        for (size_t i = 0; i < len;) {
            char *nl = memchr(data + i, '\n', len - i);
            size_t e = nl ? (size_t)(nl - data) : len;
            tok_encoding enc;
            if (wp_encode(m, data + i, e - i, 1, &enc, err, sizeof err) != 0) {
                fprintf(stderr, "wp_bench: %s\n", err);
                return 1;
            }
            t += enc.n;
            for (size_t k = 0; k < enc.n; k++)
                for (int b = 0; b < 4; b++)
                    h = (h ^ (((uint32_t)enc.ids[k] >> (8 * b)) & 0xFF)) * 1099511628211ull;
            tok_encoding_free(&enc);
            l++;
            i = e + 1;
        }
        double t2 = now();
        if (t1 - t0 < best_cut) best_cut = t1 - t0;
        if (t2 - t1 < best_enc) best_enc = t2 - t1;
        words = w, tokens = t, lines = l, hash = h;
    }
    double mb = len / 1e6;
    printf("C   load: dictionary %.1f ms, model (vocab + dictionary) %.1f ms\n", best_dict * 1e3,
           best_load * 1e3);
    printf("C   corpus: %zu lines, %.2f MB, %zu jieba words, %zu ids, ids hash %016llx\n", lines, mb, words,
           tokens, (unsigned long long)hash);
    printf("C   jieba only: %.2f MB/s   jieba + BERT WordPiece (encode): %.2f MB/s\n", mb / best_cut,
           mb / best_enc);
    free(data);
    wp_model_free(m);
    return 0;
}
