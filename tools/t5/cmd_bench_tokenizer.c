/* cmd_bench_tokenizer.c - `t5 bench tokenizer`: single-thread encode throughput of the
 * tokenizer library on a corpus, side by side with SentencePiece's own C++ encoder
 * (build/spm_bench, tools/bench/spm_bench.cc) measured in the same run, plus model load
 * times. Both sides read the corpus into memory first and time only the encode of every
 * line to ids (best of --repeat runs, ours and SentencePiece's interleaved); both hash the ids the same way,
 * so "identical" means every id of every line agrees. With --alpha A: subword sampling from the whole
 * lattice instead, ours by forward-filtering backward-sampling and by one-pass Viterbi sampling next
 * to SentencePiece's SampleEncode (nbest_size -1; random draws: no identity check).
 * A benchmark prints figures; it never fails on speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "tok.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench_usage(FILE *f) {
    fprintf(
        f,
        "usage: t5 bench tokenizer --corpus FILE [--model PATH] [--repeat N] [--spm-bench PATH] [--alpha A]\n"
        "  FILE: text lines, e.g. from tools/make_corpus.sh corpus.txt\n"
        "  PATH: a spiece.model (default tests/fixtures/tokenizer/spm_a.model, 8000 pieces)\n");
}

/* Encodes every line with p; seconds taken, FNV-1a hash of the ids in *h, their count in *tokens. */
static double encode_all_lines(const tok_model *m, char **lines, const size_t *lens, size_t n,
                               const tok_encode_params *p, uint64_t *h, size_t *tokens) {
    char err[256];
    *h = 1469598103934665603ull;
    *tokens = 0;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        tok_encoding e;
        if (tok_encode(m, lines[i], lens[i], p, &e, err, sizeof err)) {
            fprintf(stderr, "t5 bench tokenizer: %s\n", err);
            exit(1);
        }
        for (size_t k = 0; k < e.n; k++)
            *h = (*h ^ (uint64_t)(uint32_t)e.ids[k]) * 1099511628211ull;
        *h = (*h ^ 0xffffffffull) * 1099511628211ull;
        *tokens += e.n;
        tok_encoding_free(&e);
    }
    return now_s() - t0;
}

int cmd_bench_tokenizer(int argc, char **argv) {
    const char *model = "tests/fixtures/tokenizer/spm_a.model", *corpus = NULL, *spm = NULL;
    int repeat = 3;
    double alpha = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
            corpus = argv[++i];
        else if (!strcmp(argv[i], "--spm-bench") && i + 1 < argc)
            spm = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--alpha") && i + 1 < argc)
            alpha = atof(argv[++i]);
        else if (!strcmp(argv[i], "--help")) {
            bench_usage(stdout);
            return 0;
        } else {
            bench_usage(stderr);
            return 2;
        }
    }
    if (!corpus || repeat < 1 || repeat > 100 || (alpha != -1 && !(alpha >= 0))) {
        bench_usage(stderr);
        return 2;
    }
    /* the corpus, in memory */
    FILE *f = fopen(corpus, "rb");
    if (!f) {
        fprintf(stderr, "t5 bench tokenizer: cannot read the corpus\n");
        return 1;
    }
    char **lines = NULL;
    size_t *lens = NULL, n = 0, cap = 0, bytes = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
            if (!lines || !lens) return 1;
        }
        lines[n] = malloc((size_t)len + 1);
        memcpy(lines[n], line, (size_t)len + 1);
        lens[n++] = (size_t)len;
        bytes += (size_t)len;
    }
    free(line);
    fclose(f);
    /* load time: best of 10 */
    char err[256];
    double load_best = 1e30;
    tok_model *m = NULL;
    for (int i = 0; i < 10; i++) {
        double t0 = now_s();
        tok_model *x = tok_model_load(model, err, sizeof err);
        double dt = now_s() - t0;
        if (!x) {
            fprintf(stderr, "t5 bench tokenizer: %s\n", err);
            return 1;
        }
        if (dt < load_best) load_best = dt;
        if (m) tok_model_free(m);
        m = x;
    }
    tok_encode_params p;
    tok_encode_default_params(&p);
    char self[4096], cmd[8192];
    if (!spm) {
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 16);
        if (k <= 0) k = 0;
        self[k] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
            strcpy(slash + 1, "spm_bench");
        else
            strcpy(self, "spm_bench");
        spm = self;
    }
    int sampling = alpha >= 0;
    if (sampling)
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' 1 %.9g", spm, model, corpus, alpha);
    else
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' 1", spm, model, corpus);
    /* interleaved: one run of ours (each sampler), one of SentencePiece, repeat; best of each */
    double best = 1e30, best1 = 1e30, spm_s = 1e30, spm_load = 1e30;
    uint64_t h = 0, h1;
    unsigned long long spm_h = 0;
    size_t tokens = 0, tokens1;
    int spm_ok = 1;
    tok_encode_params p1 = p;
    if (sampling) {
        p.sample = p1.sample = 1;
        p.alpha = p1.alpha = (float)alpha;
        p1.one_pass = 1;
    }
    for (int r = 0; r < repeat; r++) {
        double dt = encode_all_lines(m, lines, lens, n, &p, &h, &tokens);
        if (dt < best) best = dt;
        if (sampling && (dt = encode_all_lines(m, lines, lens, n, &p1, &h1, &tokens1)) < best1) best1 = dt;
        FILE *pp = spm_ok ? popen(cmd, "r") : NULL;
        double s1 = 0, l1 = 0;
        char buf[256];
        int got = 0;
        while (pp && fgets(buf, sizeof buf, pp)) {
            got += sscanf(buf, "seconds=%lf", &s1) == 1;
            got += sscanf(buf, "load_ms=%lf", &l1) == 1;
            got += sscanf(buf, "checksum=%llx", &spm_h) == 1;
        }
        int st = pp ? pclose(pp) : -1;
        if (st != 0 || got != 3 || s1 <= 0) {
            spm_ok = 0;
            continue;
        }
        if (s1 < spm_s) spm_s = s1;
        if (l1 < spm_load) spm_load = l1;
    }
    tok_model_free(m);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(lens);
    double ours = bytes / best / 1e6;
    printf("corpus: %zu lines, %.2f MB; model %s; best of %d interleaved runs\n", n, bytes / 1e6, model,
           repeat);
    if (sampling) {
        printf("sampling, alpha %g, nbest_size -1 (whole lattice)\n", alpha);
        printf("t5serve FFBS      : %8.2f MB/s  (%.3f s)\n", ours, best);
        printf("t5serve one-pass  : %8.2f MB/s  (%.3f s)\n", bytes / best1 / 1e6, best1);
    } else {
        printf("t5serve tokenizer : %8.2f MB/s  (%.3f s, %zu tokens, %.2f Mtokens/s)  load %.2f ms\n", ours,
               best, tokens, tokens / best / 1e6, load_best * 1e3);
    }
    if (!spm_ok) {
        printf("SentencePiece     : not measured (run `make` to build %s)\n", spm);
        return 1;
    }
    double ref = bytes / spm_s / 1e6;
    printf("SentencePiece C++ : %8.2f MB/s  (%.3f s)  load %.2f ms%s\n", ref, spm_s, spm_load,
           sampling ? "  (SampleEncode)" : "");
    if (sampling) return 0; /* random draws: nothing to compare */
    printf("ratio             : %.2fx SentencePiece's throughput; output %s\n", ours / ref,
           (unsigned long long)h == spm_h ? "identical (same ids on every line)" : "DIFFERENT");
    return (unsigned long long)h == spm_h ? 0 : 1;
}
