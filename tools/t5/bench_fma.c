/* bench_fma.c - the machine's float32 FMA peak for the `t5 bench` subcommands: 12
 * independent FMA chains in registers on every thread of a pool, on the widest ISA
 * the CPU has (AVX-512, else AVX2): the compute ceiling the engine's figures are
 * divided by.
 * What it is not: a model of the CPU; it measures. */
#include <string.h>
#include <time.h>

#include "cmds.h"

enum { FMA_ITERS = 1 << 22, FMA_ITEMS_PER_THREAD = 4 };

#if defined(__x86_64__)
#include <immintrin.h>
#define FMA_CHAINS(T, FMA, SET1, ADD, WIDTH)                                                                 \
    T a0 = SET1(1.0f), a1 = SET1(1.1f), a2 = SET1(1.2f), a3 = SET1(1.3f), a4 = SET1(1.4f), a5 = SET1(1.5f),  \
      a6 = SET1(1.6f), a7 = SET1(1.7f), a8 = SET1(1.8f), a9 = SET1(1.9f), a10 = SET1(2.0f),                  \
      a11 = SET1(2.1f);                                                                                      \
    T mul = SET1(0.999999f), add = SET1(1e-7f);                                                              \
    for (long i = 0; i < iters; i++) {                                                                       \
        a0 = FMA(a0, mul, add), a1 = FMA(a1, mul, add), a2 = FMA(a2, mul, add), a3 = FMA(a3, mul, add);      \
        a4 = FMA(a4, mul, add), a5 = FMA(a5, mul, add), a6 = FMA(a6, mul, add), a7 = FMA(a7, mul, add);      \
        a8 = FMA(a8, mul, add), a9 = FMA(a9, mul, add), a10 = FMA(a10, mul, add), a11 = FMA(a11, mul, add);  \
    }                                                                                                        \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                                 \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                                             \
    float out[WIDTH];                                                                                        \
    memcpy(out, &s, sizeof out);                                                                             \
    return out[0]

__attribute__((target("avx512f"), noinline)) static float fma_512(long iters) {
    FMA_CHAINS(__m512, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_add_ps, 16);
}
__attribute__((target("avx2,fma"), noinline)) static float fma_256(long iters) {
    FMA_CHAINS(__m256, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_add_ps, 8);
}
#endif

typedef struct {
    t5_pool *pool;
    int width; /* floats per vector: 16, 8, or 0 (no SIMD FMA) */
    float sink[64];
} fma_job;

static void fma_worker(void *arg, int ith, int nth) {
    fma_job *j = arg;
    for (int it; (it = t5_pool_next(j->pool)) < nth * FMA_ITEMS_PER_THREAD;) {
#if defined(__x86_64__)
        j->sink[ith & 63] += j->width == 16 ? fma_512(FMA_ITERS) : fma_256(FMA_ITERS);
#endif
    }
}

double bench_fma_peak(t5_pool *pool, const char **isa) {
    fma_job j = {pool, 0, {0}};
    *isa = "none";
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        j.width = 16, *isa = "AVX-512";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        j.width = 8, *isa = "AVX2";
#endif
    if (!j.width) return 0;
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        t5_pool_run(pool, fma_worker, &j);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double t = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
        best = t < best ? t : best;
    }
    double flops = 2.0 * 12 * j.width * (double)FMA_ITERS * FMA_ITEMS_PER_THREAD * t5_pool_threads(pool);
    return flops / best / 1e9;
}
