/* sgemm_rate.c - measures the float32 GEMM rate OpenBLAS reaches on this machine: the
 * best of R runs of an N x N x N sgemm (default 2048, 5 runs), printed as GFLOP/s.
 * The server benchmark (tools/bench_server.sh) divides by it to say what fraction of
 * the compute limit generation reaches. Threads: OpenBLAS's own setting
 * (OPENBLAS_NUM_THREADS, default all cores). Not a test.
 * usage: build/sgemm_rate [N [R]] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2048, runs = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 16 || n > 16384 || runs < 1) {
        fprintf(stderr, "usage: sgemm_rate [N (16..16384) [RUNS]]\n");
        return 2;
    }
    size_t sz = (size_t)n * (size_t)n;
    float *a = malloc(sz * sizeof *a), *b = malloc(sz * sizeof *b), *c = malloc(sz * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_rate: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < sz; i++) {
        a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                n); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%.1f\n", 2.0 * n * (double)n * n / best / 1e9);
    fprintf(stderr, "sgemm %dx%dx%d: best of %d runs %.1f ms (c[0] %.3f)\n", n, n, n, runs, best * 1e3, c[0]);
    free(a);
    free(b);
    free(c);
    return 0;
}
