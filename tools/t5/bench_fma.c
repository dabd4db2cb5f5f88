/* bench_fma.c - the machine's float32 FMA peak for the `t5 bench` subcommands: 12
 * independent FMA chains in registers on every thread of a pool, on the widest ISA
 * the CPU has (AVX-512, else AVX2; AVX2 for kernels capped there): the compute ceiling
 * the engine's figures are divided by. And the int8 peak of the instruction the int8
 * kernel uses (AVX2: vpmaddwd + vpaddd, exact without VNNI; AVX-512 VNNI: vpdpbusd;
 * AMX-INT8: tdpbssd on tiles), the same way.
 * What it is not: a model of the CPU; it measures. */
#include <stdint.h>
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

#if defined(__x86_64__)
/* 6 chains of acc += vpmaddwd(a, b) (16 multiply-adds each), the add in place */
__attribute__((target("avx2"), noinline)) static float madd_256(long iters) {
    __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(5), z = _mm256_setzero_si256();
    __m256i c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z;
    for (long i = 0; i < iters; i++)
        __asm__("vpmaddwd %[a], %[b], %%ymm10\n\tvpaddd %%ymm10, %[c0], %[c0]\n\t"
                "vpmaddwd %[b], %[a], %%ymm11\n\tvpaddd %%ymm11, %[c1], %[c1]\n\t"
                "vpmaddwd %[a], %[a], %%ymm12\n\tvpaddd %%ymm12, %[c2], %[c2]\n\t"
                "vpmaddwd %[b], %[b], %%ymm13\n\tvpaddd %%ymm13, %[c3], %[c3]\n\t"
                "vpmaddwd %[a], %[b], %%ymm14\n\tvpaddd %%ymm14, %[c4], %[c4]\n\t"
                "vpmaddwd %[b], %[a], %%ymm15\n\tvpaddd %%ymm15, %[c5], %[c5]"
                : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4), [c5] "+x"(c5)
                : [a] "x"(a), [b] "x"(b)
                : "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                                 _mm256_add_epi32(c4, c5));
    return (float)_mm256_extract_epi32(s, 0);
}
/* 12 chains of vpdpbusd (64 multiply-adds each), in asm: as intrinsics GCC 12 saw twelve
 * equal chains (same start, same operands) and ran one */
#define DPBUSD_CHAIN(c) __asm__("vpdpbusd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b))
__attribute__((target("avx512f,avx512vnni"), noinline)) static float dpbusd_512(long iters) {
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5), z = _mm512_setzero_si512();
    __m512i c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z, c8 = z, c9 = z, c10 = z, c11 = z;
    for (long i = 0; i < iters; i++) {
        DPBUSD_CHAIN(c0);
        DPBUSD_CHAIN(c1);
        DPBUSD_CHAIN(c2);
        DPBUSD_CHAIN(c3);
        DPBUSD_CHAIN(c4);
        DPBUSD_CHAIN(c5);
        DPBUSD_CHAIN(c6);
        DPBUSD_CHAIN(c7);
        DPBUSD_CHAIN(c8);
        DPBUSD_CHAIN(c9);
        DPBUSD_CHAIN(c10);
        DPBUSD_CHAIN(c11);
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                 _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    return (float)_mm512_reduce_add_epi32(s);
}
#endif

#if defined(__x86_64__)
/* 4 chains of tdpbssd (16 x 16 x 64 = 16384 multiply-adds each) on 16 x 64-byte tiles: C0..3 +=
 * A0..1 x B0..1; the tiles configured and released here (per thread, as the kernel does). The
 * process already has the kernel's permission (t5_cpu_isa asked for it at load). */
__attribute__((target("amx-tile,amx-int8"), noinline)) static float tdpbssd_amx(long iters) {
    struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++)
        cfg.colsb[t] = 64, cfg.rows[t] = 16;
    static const int8_t src[16 * 64] = {3, 5, 7};
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    for (long i = 0; i < iters / 4; i++) { /* iters tdpbssd in all */
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    int32_t out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    return (float)out[0];
}
#endif

typedef struct {
    t5_pool *pool;
    int width; /* floats per vector: 16, 8, or 0 (no SIMD FMA); int8: 1 vpmaddwd, 2 vpdpbusd, 3 tdpbssd */
    int i8;
    float sink[64];
} fma_job;

static void fma_worker(void *arg, int ith, int nth) {
    fma_job *j = arg;
    for (int it; (it = t5_pool_next(j->pool)) < nth * FMA_ITEMS_PER_THREAD;) {
#if defined(__x86_64__)
        if (j->i8)
            j->sink[ith & 63] += j->i8 == 3   ? tdpbssd_amx(FMA_ITERS)
                                 : j->i8 == 2 ? dpbusd_512(FMA_ITERS)
                                              : madd_256(FMA_ITERS);
        else
            j->sink[ith & 63] += j->width == 16 ? fma_512(FMA_ITERS) : fma_256(FMA_ITERS);
#endif
    }
}

/* best of 5 seconds of one run of the job on the pool */
static double best_run(t5_pool *pool, fma_job *j) {
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        t5_pool_run(pool, fma_worker, j);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double t = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
        best = t < best ? t : best;
    }
    return best;
}

double bench_i8_peak(t5_pool *pool, const char *kernel, const char **insn) {
    fma_job j = {pool, 0, 0, {0}};
    *insn = "none";
    if (!strcmp(kernel, "avx2"))
        j.i8 = 1, *insn = "AVX2 vpmaddwd + vpaddd";
    else if (!strcmp(kernel, "avx512-vnni"))
        j.i8 = 2, *insn = "AVX-512 VNNI vpdpbusd";
    else if (!strcmp(kernel, "amx"))
        j.i8 = 3, *insn = "AMX-INT8 tdpbssd";
    else
        return 0;
    /* multiply-adds per iteration: 6 vpmaddwd x 16, 12 vpdpbusd x 64, a quarter of 4 tdpbssd x 16384 */
    double per = j.i8 == 3 ? 16384.0 : j.i8 == 2 ? 12.0 * 64 : 6.0 * 16;
    double macs = per * (double)FMA_ITERS * FMA_ITEMS_PER_THREAD * t5_pool_threads(pool);
    return 2.0 * macs / best_run(pool, &j) / 1e9;
}

double bench_fma_peak(t5_pool *pool, t5_isa kernels, const char **isa) {
    fma_job j = {pool, 0, 0, {0}};
    *isa = "none";
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && kernels != T5_ISA_AVX2)
        j.width = 16, *isa = "AVX-512";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        j.width = 8, *isa = "AVX2";
#endif
    if (!j.width) return 0;
    double best = best_run(pool, &j);
    double flops = 2.0 * 12 * j.width * (double)FMA_ITERS * FMA_ITEMS_PER_THREAD * t5_pool_threads(pool);
    return flops / best / 1e9;
}
