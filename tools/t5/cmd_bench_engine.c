/* cmd_bench_engine.c - `t5 bench engine --model DIR`: the engine's speed next to
 * the machine's limits, all measured in the same run: memory read bandwidth (a
 * streaming read over a buffer much larger than the caches, same thread count), the
 * fp32 FMA peak (a register-only FMA loop on the widest ISA the CPU has, AVX2 under
 * --isa avx2; same thread count) and OpenBLAS's 2048^3 sgemm as a reference; then
 * the encoder's GFLOP/s for 128 tokens and for 32 x 128 tokens as a fraction of the FMA peak, and the decoder
 * step time at batch 1, 8, 32 with 64 new tokens forced (min_new_tokens; e2e counts
 * the first step, which runs the B encoders in one pass, as peers_bench.py counts
 * generate), tokens/s, and each step time over its bound: (weight bytes + the bytes of
 * the rows' self-attention caches and cross K/V, which every step reads too) / bandwidth +
 * step FLOPs (products and attention) / FMA peak; w-bound counts the weights' bytes only. Memory: RSS after
 * load next to the weights' size. cpu: the share of its threads' time the process got (below 100% on a shared
 * machine; the pool spins while waiting, so 100% does not mean useful work). The int8 peak: a register-only
 * loop of the instruction the model's int8 kernel multiplies with (vpmaddwd + vpaddd on AVX2, vpdpbusd with
 * AVX-512 VNNI), in int8 operations. With a list of compute types (--compute-type bfloat16,int8), a last
 * table puts each type's encoder time and batch-1 / batch-32 step medians next to float32's, all loaded
 * together and measured in interleaved rounds (best of 3), with its bandwidth floor
 * (decoder weight bytes / bandwidth).
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

/* CPU seconds of the process (every thread) */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

/* One line of the bench's matmul shapes: y[rows, n] = x[rows, k] w[n, k]^T, best of 5 seconds. */
typedef struct {
    int rows;
    t5_mat w;
    int n, k;
    double ours, blas;
} gemm_case;

/* Each case through our t5_matmul path (w as the model holds it), all of them first, then
 * through plain OpenBLAS (w in float32): OpenBLAS's threads spin for a while after a call, and
 * when the two alternated they took the cores from our pool (on 2 cores, half our rate). Prints
 * a line per case. */
static void compare_gemms(const t5_model *m, int threads, gemm_case *cs, int n_cases) {
    t5_pool *pool = t5_pool_create(threads);
    float *wf = NULL; /* OpenBLAS reads float32 only: a copy of wf_of */
    const void *wf_of = NULL;
    for (int blas = 0; blas < 2; blas++)
        for (int c = 0; c < n_cases; c++) {
            gemm_case *g = &cs[c];
            size_t xn = (size_t)g->rows * g->k;
            float *x = malloc(xn * sizeof *x), *y = malloc((size_t)g->rows * g->n * sizeof *y);
            if (blas && g->w.p != wf_of) { /* cases of one matrix follow each other */
                free(wf);
                wf = malloc((size_t)g->n * g->k * sizeof *wf), wf_of = g->w.p;
                for (int j = 0; j < g->n; j++)
                    t5_mat_row(&g->w, g->k, j, wf + (size_t)j * g->k);
            }
            for (size_t i = 0; i < xn; i++)
                x[i] = (float)(i % 17) * 0.01f;
            t5_mm_out o = {g->w, y, g->n};
            double best = 1e9;
            if (blas) openblas_set_num_threads(threads); /* plain OpenBLAS, its own threads */
            for (int r = 0; r < 5; r++) {
                double t0 = now();
                if (blas)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->rows, g->n, g->k, 1.0f, x, g->k,
                                wf, g->k, 0.0f, y, g->n);
                else
                    t5_matmul(m, pool, x, g->rows, g->k, &o, 1);
                double t = now() - t0;
                best = t < best ? t : best;
            }
            if (blas) openblas_set_num_threads(1);
            *(blas ? &g->blas : &g->ours) = best;
            free(x), free(y);
        }
    free(wf);
    t5_pool_free(pool);
    for (int c = 0; c < n_cases; c++) {
        const gemm_case *g = &cs[c];
        double fl = 2.0 * g->rows * g->n * g->k;
        printf("  [%2d x %d] x [%d x %d]^T: t5_matmul %.1f GFLOP/s (%.2f ms), OpenBLAS sgemm %.1f GFLOP/s "
               "(%.2f ms)\n",
               g->rows, g->k, g->n, g->k, fl / g->ours / 1e9, g->ours * 1e3, fl / g->blas / 1e9,
               g->blas * 1e3);
    }
}

/* Every bfloat16 kernel table of this CPU (t5_kernel_bf16_list) on [rows x k] x w^T, one
 * thread, best of 5: the measurement behind t5_kernel_bf16_ops's choice. */
static void compare_bf16_kernels(const t5_model *m, int rows, const t5_mat *w) {
    const t5k_bf16_ops *tabs[8];
    int n_tab = t5_kernel_bf16_list(tabs, 8), k = w->k;
    float *x = malloc((size_t)rows * k * sizeof *x), *y = malloc((size_t)rows * w->n * sizeof *y);
    uint32_t *xb = malloc((size_t)rows * t5_bf16_ldx(T5K_BF16_X_F32, k) * sizeof *xb);
    for (size_t i = 0; i < (size_t)rows * k; i++)
        x[i] = (float)(i % 17) * 0.01f;
    printf("bfloat16 kernels, [%d x %d] x [%d x %d]^T, 1 thread, best of 5 (the model uses %s):", rows, k,
           w->n, k, m->bf16->name);
    for (int t = 1; t < n_tab; t++) { /* (not the generic C) */
        size_t ldx = t5_bf16_ldx(tabs[t]->xfmt, k);
        t5_bf16_pack_rows(x, (size_t)k, rows, k, tabs[t]->xfmt, xb);
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t0 = now();
            tabs[t]->gemm(xb, ldx, rows, w, 0, w->n, y, (size_t)w->n);
            best = now() - t0 < best ? now() - t0 : best;
        }
        printf(" %s %.1f GFLOP/s%s", tabs[t]->name, 2.0 * rows * w->n * k / best / 1e9,
               t + 1 < n_tab ? "," : "\n");
    }
    free(x), free(y), free(xb);
}

/* Median step time (ms) of a batch of B copies of ids[n_in] over n_new forced steps after
 * the first (which also encodes); < 0 on failure. */
static double median_step_ms(const t5_model *m, int B, int threads, const int32_t *ids, int n_in, int n_new) {
    char err[256];
    t5_batch *b = t5_batch_create(m, B, threads, err, sizeof err);
    double *st = malloc((size_t)n_new * sizeof *st), ms = -1;
    t5_gen_params gp;
    t5_gen_default_params(&gp);
    gp.max_new_tokens = gp.min_new_tokens = n_new + 1;
    int ok = b && st, steps = 0;
    for (int i = 0; ok && i < B; i++)
        ok = t5_batch_add(b, ids, n_in, &gp, NULL, NULL, NULL, err, sizeof err) >= 0;
    for (int more = ok ? t5_batch_step(b) : 0; more > 0 && steps < n_new;) {
        double t0 = now();
        more = t5_batch_step(b);
        st[steps++] = now() - t0;
    }
    if (steps > 0) {
        qsort(st, (size_t)steps, sizeof *st, cmp_double);
        ms = st[steps / 2] * 1e3;
    }
    free(st);
    t5_batch_free(b);
    return ms;
}

/* float32 and each compute type of the comma-separated list, all loaded from dir with base's
 * other parameters, then measured in turn, in `rounds` interleaved rounds (the best of each figure
 * kept: a shared machine's load drifts less between neighbours): encoder (best of 3), batch-1
 * and batch-32 step medians, each beside float32's, and the batch-1 bandwidth floor.
 * 0, or 1 when a type fails to load. */
static int compare_compute_types(const char *dir, const char *list, const t5_load_params *base, int threads,
                                 const int32_t *ids, int n_in, int n_new, double bw, int rounds) {
    enum { MAXT = 6 };
    t5_model *ms[MAXT] = {0};
    double f[MAXT][3];
    int nt = 0, rc = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "float32,%s", list);
    for (char *save = NULL, *name = strtok_r(buf, ",", &save); name && nt < MAXT;
         name = strtok_r(NULL, ",", &save)) {
        t5_load_params lp = *base;
        char err[512];
        if (t5_compute_type_parse(name, &lp.compute_type) != 0) {
            fprintf(stderr, "t5 bench engine: --compute-type: unknown type '%s'\n", name);
            rc = 1;
            goto done;
        }
        if (name != buf && lp.compute_type == T5_COMPUTE_FLOAT32) continue; /* the reference already */
        if (!(ms[nt] = t5_model_load_with(dir, &lp, err, sizeof err))) {
            fprintf(stderr, "t5 bench engine: %s: %s\n", name, err);
            rc = 1;
            goto done;
        }
        f[nt][0] = f[nt][1] = f[nt][2] = 1e9;
        nt++;
    }
    float *enc = malloc((size_t)n_in * t5_model_config(ms[0])->d_model * sizeof *enc);
    if (!enc) {
        rc = 1;
        goto done;
    }
    for (int round = 0; round < rounds; round++)
        for (int t = 0; t < nt; t++) {
            char err[256];
            double b1 = median_step_ms(ms[t], 1, threads, ids, n_in, n_new),
                   b32 = median_step_ms(ms[t], 32, threads, ids, n_in, n_new);
            f[t][1] = b1 > 0 && b1 < f[t][1] ? b1 : f[t][1];
            f[t][2] = b32 > 0 && b32 < f[t][2] ? b32 : f[t][2];
            for (int r = 0; r < 3; r++) {
                double t0 = now();
                if (t5_encode(ms[t], ids, n_in, enc, threads, err, sizeof err) == 0 &&
                    (now() - t0) * 1e3 < f[t][0])
                    f[t][0] = (now() - t0) * 1e3;
            }
        }
    free(enc);
    printf("compute types, loaded together, measured in %d interleaved rounds, best of each (float32 the\n"
           "reference; x: time / float32's):\n",
           rounds);
    printf("%-9s %12s %6s %12s %6s %12s %6s %14s\n", "type", "encoder ms", "x", "b1 step ms", "x",
           "b32 step ms", "x", "b1 floor ms");
    for (int t = 0; t < nt; t++)
        printf("%-9s %12.2f %6.2f %12.2f %6.2f %12.2f %6.2f %14.2f\n",
               t5_compute_type_name(t5_model_load_params(ms[t])->compute_type), f[t][0], f[t][0] / f[0][0],
               f[t][1], f[t][1] / f[0][1], f[t][2], f[t][2] / f[0][2],
               (double)ms[t]->dec_step_bytes / bw / 1e6);
done:
    for (int t = 0; t < MAXT; t++)
        t5_model_free(ms[t]);
    return rc;
}

/* Encoder of n_inputs copies of ids[n] in one pass (best of 3, one scratch): GFLOP/s (projections and
 * attention products) and their fraction of the FMA peak. 0 or -1 (out of memory). */
static int bench_encoder(const t5_model *m, int threads, const int32_t *ids, int n, int n_inputs,
                         double peak) {
    const t5_config *cf = &m->cfg;
    int32_t *all = malloc((size_t)n * n_inputs * sizeof *all);
    int *lens = malloc((size_t)n_inputs * sizeof *lens);
    float *out = malloc((size_t)n * n_inputs * cf->d_model * sizeof *out);
    t5_pool *pool = t5_pool_create(threads);
    t5_enc_scratch *sc = t5_enc_scratch_create(); /* kept across the rounds, as a batch keeps it */
    int rc = all && lens && out && pool && sc ? 0 : -1;
    for (int i = 0; !rc && i < n_inputs; i++) {
        memcpy(all + (size_t)i * n, ids, (size_t)n * sizeof *ids);
        lens[i] = n;
    }
    double best = 1e9, share = 0;
    for (int r = 0; !rc && r < 3; r++) {
        double t0 = now(), c0 = cpu_now();
        rc = t5_encoder_forward_with(m, pool, sc, all, lens, n_inputs, out);
        double t = now() - t0;
        if (t < best) best = t, share = (cpu_now() - c0) / (t * threads);
    }
    double proj = (double)cf->num_layers *
                  (4.0 * m->inner * cf->d_model + (cf->gated ? 3.0 : 2.0) * cf->d_ff * cf->d_model);
    double flops = (double)n_inputs * (2.0 * n * proj + 4.0 * cf->num_layers * (double)n * n * m->inner);
    if (!rc)
        printf("encoder, %d x %d tokens: %.2f ms, %.1f GFLOP/s = %.2f of the FMA peak (cpu %.0f%%)\n",
               n_inputs, n, best * 1e3, flops / best / 1e9, flops / best / 1e9 / peak, 100 * share);
    else
        fprintf(stderr, "t5 bench engine: out of memory in the encoder\n");
    t5_enc_scratch_free(sc);
    t5_pool_free(pool);
    free(all), free(lens), free(out);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: t5 bench engine --model DIR [--threads N] [--input-tokens N] [--new-tokens N]\n"
               "       [--batches 1,8,32] [--rounds 3] " T5_LOAD_USAGE "\n"
               "--compute-type takes a list too (bfloat16,int8): the run uses the first, and a last\n"
               "table puts every listed type beside float32, each loaded in turn, measured in --rounds\n"
               "interleaved rounds (the best of each kept: more rounds, less of a shared machine's noise).\n"
               "Make a model of the T5 PEGASUS small shape with `t5 random-model --out DIR`.\n");
}

int cmd_bench_engine(int argc, char **argv) {
    const char *dir = NULL, *batches = "1,8,32", *types = NULL;
    int threads = 2, n_in = 128, n_new = 64, rounds = 3;
    static const struct option opts[] = {
        {"model", 1, 0, 'm'},      {"threads", 1, 0, 't'}, {"input-tokens", 1, 0, 'i'},
        {"new-tokens", 1, 0, 'n'}, {"batches", 1, 0, 'b'}, {"rounds", 1, 0, 'r'},
        {"help", 0, 0, 'h'},       T5_LOAD_OPTIONS,        {0, 0, 0, 0}};
    t5_load_params lp;
    t5_load_default_params(&lp);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        char first[32];
        if (c == CLI_OPT_COMPUTE_TYPE) { /* T[,T...]: the run uses the first, the last table all */
            types = optarg;
            snprintf(first, sizeof first, "%.*s", (int)strcspn(optarg, ","), optarg);
            optarg = first;
        }
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
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dir || threads < 1 || threads > 64 || n_in < 1 || n_new < 1 || rounds < 1 || rounds > 100) {
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
    printf("threads: %d; kernels: %s (--isa caps it); compute type %s (%d int8 matrices)\n", threads,
           t5_isa_name(m->isa), t5_compute_type_name(lp.compute_type), m->n_int8);
    /* the weights as held: packed panels and converted tensors on the heap, an untied embedding
     * read from the mapping a row at a time */
    double lookup = m->shared.packed || m->shared.dtype == ST_I8
                        ? 0
                        : (double)(m->shared.dtype == ST_F32 ? 4 : 2) * cf->vocab_size * cf->d_model;
    double weights = (double)m->owned_bytes + lookup;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("weights: %.1f MB (%.1f MB packed on the heap, %.1f MB embedding in the mapping); peak RSS after "
           "load "
           "%.1f MB = %.2f x the weights\n",
           weights / 1e6, m->owned_bytes / 1e6, lookup / 1e6, ru.ru_maxrss * 1024.0 / 1e6,
           ru.ru_maxrss * 1024.0 / weights);
    /* bandwidth and GEMM rate in a child process, so that their buffers stay out of our peak RSS */
    double lim[3] = {0, 0, 0};
    int pfd[2];
    fflush(stdout);
    if (pipe(pfd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            t5_pool *pool = t5_pool_create(threads);
            const char *pisa, *pi8;
            double r[3] = {measure_bandwidth(pool), 0, bench_fma_peak(pool, m->isa, &pisa)};
            /* the int8 kernel's instruction, and that of the kernel it hands few rows to (AMX: VNNI) */
            const t5k_i8_ops *k8 = t5_kernel_i8_ops(m->isa), *f8 = k8->fewer;
            const char *pf8 = NULL;
            double i8 = bench_i8_peak(pool, k8->name, &pi8),
                   f8p = f8 ? bench_i8_peak(pool, f8->name, &pf8) : 0;
            t5_pool_free(pool);
            openblas_set_num_threads(threads);
            r[1] = measure_sgemm();
            printf("fp32 FMA peak: %.1f GFLOP/s (%d threads, register-only %s FMA loop, best of 5)\n", r[2],
                   threads, pisa);
            if (i8 > 0)
                printf("int8 peak: %.1f GOP/s (%d threads, register-only %s loop of the %s int8 kernel, best "
                       "of 5) = %.2f x the fp32 FMA peak\n",
                       i8, threads, pi8, k8->name, i8 / r[2]);
            if (f8p > 0)
                printf(
                    "int8 peak below %d rows: %.1f GOP/s (%d threads, register-only %s loop of the %s int8 "
                    "kernel, best of 5) = %.2f x the fp32 FMA peak\n",
                    k8->min_rows, f8p, threads, pf8, f8->name, f8p / r[2]);
            fflush(stdout);
            ssize_t w = write(pfd[1], r, sizeof r);
            _exit(w == (ssize_t)sizeof r ? 0 : 1);
        }
        close(pfd[1]);
        if (pid > 0 && read(pfd[0], lim, sizeof lim) != (ssize_t)sizeof lim) lim[0] = lim[1] = lim[2] = 0;
        close(pfd[0]);
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    double bw = lim[0], gemm = lim[1], peak = lim[2];
    if (bw <= 0 || gemm <= 0 || peak <= 0) {
        fprintf(stderr, "t5 bench engine: could not measure bandwidth / FMA peak / GEMM rate\n");
        return 1;
    }
    printf("memory read bandwidth: %.1f GB/s (%d threads, 512 MiB streaming read, best of 8)\n", bw, threads);
    printf("OpenBLAS sgemm 2048^3 (reference): %.1f GFLOP/s (%d threads) = %.2f of the FMA peak\n", gemm,
           threads, gemm / peak);

    int32_t *ids = malloc((size_t)n_in * sizeof *ids);
    uint64_t rng = 7;
    for (int i = 0; i < n_in - 1; i++)
        ids[i] = 2 + (int32_t)(t5_rng_next(&rng) % (uint64_t)(cf->vocab_size - 2));
    ids[n_in - 1] = cf->eos_token_id;
    for (int n_inputs = 1; n_inputs <= 32; n_inputs *= 32)
        if (bench_encoder(m, threads, ids, n_in, n_inputs, peak) != 0) return 1;

    /* parameters one decoder step multiplies: self q,k,v,o + cross q,o + FFN per layer, and the head */
    double step_params = (double)cf->num_decoder_layers * (6.0 * m->inner * cf->d_model +
                                                           (cf->gated ? 3.0 : 2.0) * cf->d_ff * cf->d_model) +
                         (double)cf->vocab_size * cf->d_model;
    double bytes = (double)m->dec_step_bytes;
    printf(
        "decoder weights read per step: %.1f MB (head %.1f MB, %s); bandwidth floor %.2f ms\n", bytes / 1e6,
        (m->lm_head.dtype == ST_I8                                                                    ? 1.0
         : m->lm_head.dtype == ST_BF16 || m->lm_head.dtype == ST_F16 || m->lm_head.dtype == ST_BF16X2 ? 2.0
                                                                                                      : 4.0) *
            cf->vocab_size * cf->d_model / 1e6,
        m->n_int8                                   ? "int8 matrices, the float classes in 16 bits"
        : m->lp.compute_type == T5_COMPUTE_BFLOAT16 ? "bfloat16 pair panels"
        : m->n_half                                 ? "16-bit matrices streamed as stored"
                                                    : "float32",
        bytes / bw / 1e6);
    /* what each row of a step reads besides the weights, at the median step (position n_new / 2):
     * its self-attention cache and its input's cross K/V (t5_model.cache_dtype, V padded as
     * stored), and the attention's FLOPs over them */
    int H = cf->num_heads, dkv = cf->d_kv, L = cf->num_decoder_layers, pos = n_new / 2 + 1;
    double row_cache = (double)L * H * (dkv + t5_cache_ldv(m)) * (pos + n_in) * t5_cache_es(m->cache_dtype),
           row_att = (double)L * 4 * m->inner * (pos + n_in);
    printf("bound: (weights + the rows' caches and cross K/V, %.1f MB a row) / bandwidth + FLOPs / FMA "
           "peak; w-bound: the weights' bytes only\n",
           row_cache / 1e6);
    printf("%-6s %10s %10s %10s %12s %10s %14s %10s %6s\n", "batch", "ms/step", "mean ms", "bound ms",
           "median/bound", "w-bound", "tokens/s dec", "tok/s e2e", "cpu");
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
        double ta = now(), ca = cpu_now();
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
        double t = now() - t0, share = (cpu_now() - ca) / ((t + t_add) * threads);
        qsort(st, (size_t)steps, sizeof *st, cmp_double);
        double ms = st[steps / 2] * 1e3, mean_ms = t * 1e3 / steps;
        free(st);
        t5_batch_free(b);
        double compute_ms = B * (2.0 * step_params + row_att) / peak / 1e6,
               wbound = bytes / bw / 1e6 + compute_ms,
               bound = (bytes + B * row_cache) / bw / 1e6 + compute_ms;
        double tps = B * (double)(n_new - 1) / t, e2e = B * (double)n_new / (t + t_add);
        printf("%-6d %10.2f %10.2f %10.2f %12.2f %10.2f %14.1f %10.1f %5.0f%%\n", B, ms, mean_ms, bound,
               ms / bound, wbound, tps, e2e, 100 * share);
        if (B == 1) tps1 = tps;
        if (B == 32) tps32 = tps;
        while (*p && *p != ',')
            p++;
        if (*p == ',') p++;
    }
    if (tps1 > 0 && tps32 > 0) printf("tokens/s batch 32 / batch 1: %.2f\n", tps32 / tps1);
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MB (the weights and batch %s's activations, KV caches, cross K/V)\n",
           ru.ru_maxrss * 1024.0 / 1e6, batches);
    printf("decoder matmul shapes, best of 5 (t5_matmul: the engine's own kernels):\n");
    gemm_case shapes[5] = {{1, m->lm_head, cf->vocab_size, cf->d_model, 0, 0},
                           {4, m->lm_head, cf->vocab_size, cf->d_model, 0, 0},
                           {16, m->lm_head, cf->vocab_size, cf->d_model, 0, 0},
                           {32, m->lm_head, cf->vocab_size, cf->d_model, 0, 0},
                           {32, m->dec[0].ffn.wi, cf->d_ff, cf->d_model, 0, 0}};
    compare_gemms(m, threads, shapes, 5);
    if (m->dec[0].ffn.wi.dtype == ST_BF16X2) compare_bf16_kernels(m, 128, &m->dec[0].ffn.wi);
    t5_model_free(m);
    int rc = types ? compare_compute_types(dir, types, &lp, threads, ids, n_in, n_new, bw, rounds) : 0;
    free(ids);
    return rc;
}
