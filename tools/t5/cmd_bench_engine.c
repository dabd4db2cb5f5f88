/* cmd_bench_engine.c - `t5 bench engine --model DIR`: the engine's speed next to
 * the machine's limits, all measured in the same run: memory read bandwidth (a
 * streaming read over a buffer much larger than the caches, same thread count) and
 * the OpenBLAS rate on a 2048^3 sgemm; then encoder time for 128 input tokens and
 * the decoder step time at batch 1, 8, 32 with 64 new tokens forced
 * (min_new_tokens; e2e counts the first step, which runs the B encoders in one pass),
 * tokens/s, peak RSS, and each step time over its bound:
 * batch 1 vs weight bytes / bandwidth, batch 32 vs that plus step FLOPs / GEMM rate.
 * What it is not: a pass/fail test; it prints figures. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "t5_dev.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    t5_pool *pool;
    const float *buf;
    size_t n;
    double sums[64];
} bw_job;

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"), noinline)) static float sum_avx2(const float *p, size_t n) {
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(p + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(p + i + 8));
        c = _mm256_add_ps(c, _mm256_loadu_ps(p + i + 16));
        d = _mm256_add_ps(d, _mm256_loadu_ps(p + i + 24));
    }
    a = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
    float t[8], s = 0;
    _mm256_storeu_ps(t, a);
    for (int k = 0; k < 8; k++)
        s += t[k];
    (void)i;
    return s; /* n is a multiple of 32 */
}
#endif

/* items: 1 MiB pieces of the buffer */
static void bw_worker(void *arg, int ith, int nth) {
    bw_job *j = arg;
    (void)nth;
    size_t piece = (size_t)1 << 18, n_items = j->n / piece;
    for (int it; (size_t)(it = t5_pool_next(j->pool)) < n_items;) {
        const float *p = j->buf + (size_t)it * piece;
#if defined(__x86_64__)
        if (__builtin_cpu_supports("avx2")) {
            j->sums[ith] += sum_avx2(p, piece);
            continue;
        }
#endif
        float s = 0;
        for (size_t i = 0; i < piece; i++)
            s += p[i];
        j->sums[ith] += s;
    }
}

/* Best of several streaming reads of a 512 MiB buffer, in GB/s. */
static double measure_bandwidth(t5_pool *pool) {
    size_t n = (size_t)1 << 27; /* 512 MiB of floats */
    float *buf = malloc(n * sizeof *buf);
    if (!buf) return 0;
    /* Write every page with non-zero data: an untouched or zeroed buffer (malloc+memset 0 may
     * become calloc) maps the shared zero page, and reading it measures a cache, not memory. */
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(i & 7);
    bw_job j = {pool, buf, n, {0}};
    double best = 1e9;
    for (int r = 0; r < 8; r++) {
        double t0 = now();
        t5_pool_run(pool, bw_worker, &j);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(buf);
    return (double)n * sizeof(float) / best / 1e9;
}

static double measure_sgemm(void) {
    int n = 2048;
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b),
          *c = malloc((size_t)n * n * sizeof *c);
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = (float)(i % 13) * 0.01f, b[i] = (float)(i % 7) * 0.02f;
    double best = 1e9;
    for (int r = 0; r < 4; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * n / best / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best-of-5 GFLOP/s of y[rows, n] = x[rows, k] w[n, k]^T: our t5_matmul path (w as the
 * model holds it) and plain OpenBLAS (w in float32). */
static void compare_gemm(const t5_model *m, int threads, int rows, t5_mat w, int n, int k) {
    float *x = malloc((size_t)rows * k * sizeof *x), *y = malloc((size_t)rows * n * sizeof *y);
    float *wf = malloc((size_t)n * k * sizeof *wf); /* OpenBLAS reads float32 only */
    for (int j = 0; j < n; j++)
        t5_mat_row(&w, k, j, wf + (size_t)j * k);
    for (size_t i = 0; i < (size_t)rows * k; i++)
        x[i] = (float)(i % 17) * 0.01f;
    t5_pool *pool = t5_pool_create(threads);
    double best_ours = 1e9, best_blas = 1e9;
    t5_mm_out o = {w, y, n};
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        t5_matmul(m, pool, x, rows, k, &o, 1);
        double t1 = now();
        openblas_set_num_threads(threads); /* plain OpenBLAS, its own threads */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, k, 1.0f, x, k, wf, k, 0.0f, y, n);
        double t2 = now();
        openblas_set_num_threads(1);
        best_ours = t1 - t0 < best_ours ? t1 - t0 : best_ours;
        best_blas = t2 - t1 < best_blas ? t2 - t1 : best_blas;
    }
    double fl = 2.0 * rows * n * k;
    printf("  [%2d x %d] x [%d x %d]^T: t5_matmul %.1f GFLOP/s (%.2f ms), OpenBLAS sgemm %.1f GFLOP/s (%.2f "
           "ms)\n",
           rows, k, n, k, fl / best_ours / 1e9, best_ours * 1e3, fl / best_blas / 1e9, best_blas * 1e3);
    t5_pool_free(pool);
    free(x), free(y), free(wf);
}

static void usage(FILE *f) {
    fprintf(f, "usage: t5 bench engine --model DIR [--threads N] [--input-tokens N] [--new-tokens N]\n"
               "       [--batches 1,8,32] " T5_LOAD_USAGE "\n"
               "Make a model of the T5 PEGASUS small shape with `t5 random-model --out DIR`.\n");
}

int cmd_bench_engine(int argc, char **argv) {
    const char *dir = NULL, *batches = "1,8,32";
    int threads = 2, n_in = 128, n_new = 64;
    static const struct option opts[] = {{"model", 1, 0, 'm'},
                                         {"threads", 1, 0, 't'},
                                         {"input-tokens", 1, 0, 'i'},
                                         {"new-tokens", 1, 0, 'n'},
                                         {"batches", 1, 0, 'b'},
                                         {"help", 0, 0, 'h'},
                                         T5_LOAD_OPTIONS,
                                         {0, 0, 0, 0}};
    t5_load_params lp;
    t5_load_default_params(&lp);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        int lo = cli_load_option("bench engine", c, optarg, &lp);
        if (lo < 0) return 2;
        if (lo) continue;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'i':
            n_in = atoi(optarg);
            break;
        case 'n':
            n_new = atoi(optarg);
            break;
        case 'b':
            batches = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dir || threads < 1 || threads > 64 || n_in < 1 || n_new < 1) {
        usage(stderr);
        return 2;
    }
    char err[512];
    double t0 = now();
    t5_model *m = t5_model_load_with(dir, &lp, err, sizeof err);
    if (!m) {
        fprintf(stderr, "t5 bench engine: %s\n", err);
        return 1;
    }
    const t5_config *cf = t5_model_config(m);
    printf("model: vocab %d, d_model %d, %d heads x %d, d_ff %d, %d+%d layers, %s%s, %s head; loaded in %.2f "
           "s\n",
           cf->vocab_size, cf->d_model, cf->num_heads, cf->d_kv, cf->d_ff, cf->num_layers,
           cf->num_decoder_layers, cf->gated ? "gated-" : "",
           cf->act == T5_ACT_RELU   ? "relu"
           : cf->act == T5_ACT_SILU ? "silu"
                                    : "gelu",
           cf->tied ? "tied" : "untied", now() - t0);
    printf("threads: %d; kernels: %s; compute type %s (%d int8 matrices)\n", threads,
           m->simd == 3   ? "AVX-512"
           : m->simd == 2 ? "AVX2+FMA"
                          : "scalar",
           t5_compute_type_name(lp.compute_type), m->n_int8);
    /* bandwidth and GEMM rate in a child process, so that their buffers stay out of our peak RSS */
    double lim[2] = {0, 0};
    int pfd[2];
    fflush(stdout);
    if (pipe(pfd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            t5_pool *pool = t5_pool_create(threads);
            double r[2] = {measure_bandwidth(pool), 0};
            t5_pool_free(pool);
            openblas_set_num_threads(threads);
            r[1] = measure_sgemm();
            ssize_t w = write(pfd[1], r, sizeof r);
            _exit(w == (ssize_t)sizeof r ? 0 : 1);
        }
        close(pfd[1]);
        if (pid > 0 && read(pfd[0], lim, sizeof lim) != (ssize_t)sizeof lim) lim[0] = lim[1] = 0;
        close(pfd[0]);
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    double bw = lim[0], gemm = lim[1];
    if (bw <= 0 || gemm <= 0) {
        fprintf(stderr, "t5 bench engine: could not measure bandwidth / GEMM rate\n");
        return 1;
    }
    printf("memory read bandwidth: %.1f GB/s (%d threads, 512 MiB streaming read, best of 8)\n", bw, threads);
    printf("OpenBLAS sgemm 2048^3: %.1f GFLOP/s (%d threads)\n", gemm, threads);

    int32_t *ids = malloc((size_t)n_in * sizeof *ids);
    uint64_t rng = 7;
    for (int i = 0; i < n_in - 1; i++)
        ids[i] = 2 + (int32_t)(t5_rng_next(&rng) % (uint64_t)(cf->vocab_size - 2));
    ids[n_in - 1] = cf->eos_token_id;
    float *enc = malloc((size_t)n_in * cf->d_model * sizeof *enc);
    double enc_best = 1e9;
    for (int r = 0; r < 3; r++) {
        t0 = now();
        if (t5_encode(m, ids, n_in, enc, threads, err, sizeof err) != 0) {
            fprintf(stderr, "t5 bench engine: %s\n", err);
            return 1;
        }
        double t = now() - t0;
        enc_best = t < enc_best ? t : enc_best;
    }
    free(enc);
    double enc_params = (double)cf->num_layers *
                        (4.0 * m->inner * cf->d_model + (cf->gated ? 3.0 : 2.0) * cf->d_ff * cf->d_model);
    printf("encoder, %d tokens: %.2f ms (%.1f GFLOP/s)\n", n_in, enc_best * 1e3,
           2.0 * n_in * enc_params / enc_best / 1e9);

    /* parameters one decoder step multiplies: self q,k,v,o + cross q,o + FFN per layer, and the head */
    double step_params = (double)cf->num_decoder_layers * (6.0 * m->inner * cf->d_model +
                                                           (cf->gated ? 3.0 : 2.0) * cf->d_ff * cf->d_model) +
                         (double)cf->vocab_size * cf->d_model;
    double bytes = (double)m->dec_step_bytes;
    printf("decoder weights read per step: %.1f MB (head %.1f MB, %s); bandwidth floor %.2f ms\n",
           bytes / 1e6,
           (m->lm_head.dtype == ST_I8                                   ? 1.0
            : m->lm_head.dtype == ST_BF16 || m->lm_head.dtype == ST_F16 ? 2.0
                                                                        : 4.0) *
               cf->vocab_size * cf->d_model / 1e6,
           m->n_half ? "16-bit matrices streamed as stored" : "float32", bytes / bw / 1e6);
    printf("%-6s %10s %10s %10s %12s %14s %10s\n", "batch", "ms/step", "mean ms", "bound ms", "median/bound",
           "tokens/s dec", "tok/s e2e");
    double tps1 = 0, tps32 = 0;
    const char *p = batches;
    while (*p) {
        int B = atoi(p);
        if (B < 1) break;
        t5_batch *b = t5_batch_create(m, B, threads, err, sizeof err);
        if (!b) {
            fprintf(stderr, "t5 bench engine: %s\n", err);
            return 1;
        }
        t5_gen_params gp;
        t5_gen_default_params(&gp);
        gp.max_new_tokens = gp.min_new_tokens = n_new;
        double ta = now();
        for (int i = 0; i < B; i++)
            if (t5_batch_add(b, ids, n_in, &gp, NULL, NULL, NULL, err, sizeof err) < 0) {
                fprintf(stderr, "t5 bench engine: %s\n", err);
                return 1;
            }
        int more = t5_batch_step(b); /* the first step runs the B encoders (one pass) too */
        double t_add = now() - ta;
        int steps = 0;
        double *st = malloc((size_t)(n_new + 8) * sizeof *st);
        t0 = now();
        while (more > 0 && steps < n_new + 8) {
            double ts = now();
            more = t5_batch_step(b);
            st[steps++] = now() - ts;
        }
        double t = now() - t0;
        qsort(st, (size_t)steps, sizeof *st, cmp_double);
        double ms = st[steps / 2] * 1e3, mean_ms = t * 1e3 / steps;
        free(st);
        t5_batch_free(b);
        double bound = bytes / bw / 1e6 + 2.0 * B * step_params / gemm / 1e6;
        double tps = B * (double)(n_new - 1) / t, e2e = B * (double)n_new / (t + t_add);
        printf("%-6d %10.2f %10.2f %10.2f %12.2f %14.1f %10.1f\n", B, ms, mean_ms, bound, ms / bound, tps,
               e2e);
        if (B == 1) tps1 = tps;
        if (B == 32) tps32 = tps;
        while (*p && *p != ',')
            p++;
        if (*p == ',') p++;
    }
    if (tps1 > 0 && tps32 > 0) printf("tokens/s batch 32 / batch 1: %.2f\n", tps32 / tps1);
    printf("decoder matmul shapes, best of 5 (t5_matmul: the engine's own kernels):\n");
    for (int rows = 1; rows <= 32; rows *= 4 + (rows == 16 ? -2 : 0))
        compare_gemm(m, threads, rows == 1 ? 1 : rows, m->lm_head, cf->vocab_size, cf->d_model);
    compare_gemm(m, threads, 32, m->dec[0].ffn.wi, cf->d_ff, cf->d_model);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MB (weights: %.1f MB mapped, %.1f MB copied by the loader, %.1f MB converted on "
           "the heap)\n",
           ru.ru_maxrss / 1024.0, st_mapped_bytes(m->st) / 1e6, st_copied_bytes(m->st) / 1e6,
           m->owned_bytes / 1e6);
    free(ids);
    t5_model_free(m);
    return 0;
}
