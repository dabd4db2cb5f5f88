/* kernels_i8.c - the int8 products (compute type int8): the activations' quantization per
 * group of T5_I8_GROUP values (to 8 bits, or 16 for a16 matrices), the portable C kernel that
 * defines every output (t5_dev.h:
 * exact int32 group sums, then one fixed float epilogue), and the choice of kernel per
 * ISA: generic C, AVX2 (kernels_i8_avx2.c, vpmaddwd on sign-extended values), AVX-512
 * VNNI (kernels_i8_avx512.c, vpdpbusd) where the CPU has it, AMX-INT8 (kernels_i8_amx.c,
 * tdpbssd tiles) where the CPU and the OS allow it (t5_cpu_has_amx). Every table gives the same
 * bits: integer sums are exact in any order, and the float epilogue is the same operations
 * in the same order everywhere.
 * What it is not: no threading (t5_matmul in kernels.c splits the work), no packing (model.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels_i8.h"

void t5_quantize_x_i8(const float *x, size_t ldx, int rows, int k, int xfmt, int a16, void *q, size_t ldq,
                      float *s) {
    int ng = (k + T5_I8_GROUP - 1) / T5_I8_GROUP, kp = (k + 3) & ~3;
    const float lim = a16 ? (float)T5_I8_A16_MAX : 127.0f;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        for (int g = 0; g < ng; g++) { /* t5_quantize_row_i8's steps, in the range lim */
            int i0 = g * T5_I8_GROUP, n = k - i0 < T5_I8_GROUP ? k - i0 : T5_I8_GROUP;
            float inv = t5_quantize_scale(xr + i0, n, lim, &s[(size_t)r * ng + g]);
            for (int i = 0; i < n; i++)
                t5k_xq_put(q, xfmt, ldq, r, i0 + i, t5_quantize_to(xr[i0 + i], inv, lim));
        }
        for (int i = k; i < kp; i++) /* the padding of the last group of 4: zero */
            t5k_xq_put(q, xfmt, ldq, r, i, 0);
    }
}

static int xfmt_of(const t5k_i8_ops *o, int a16) {
    return a16 ? o->xfmt_a16 : o->xfmt;
}

/* bytes per element of ldq */
static size_t xfmt_size(int xfmt) {
    return xfmt == T5K_XQ_S16 ? 2 : 1;
}

int t5k_i8_alloc(const t5k_i8_ops *o, int rows, int k, int a16, t5k_xq *out) {
    int ng = (k + T5_I8_GROUP - 1) / T5_I8_GROUP, f = xfmt_of(o, a16);
    size_t ldq = (((size_t)k + 3) & ~(size_t)3) * (t5k_xq_halves(f) ? 2 : 1);
    void *q = malloc((size_t)rows * ldq * xfmt_size(f) + 1);
    float *s = malloc((size_t)rows * ng * sizeof *s + 1);
    if (!q || !s) {
        free(q), free(s);
        return -1;
    }
    *out = (t5k_xq){q, ldq, s, ng};
    return 0;
}

t5k_xq t5k_i8_rows(const t5k_i8_ops *o, const t5k_xq *x, int r0, int a16) {
    return (t5k_xq){(const char *)x->q + (size_t)r0 * x->ldq * xfmt_size(xfmt_of(o, a16)), x->ldq,
                    x->s + (size_t)r0 * x->ng, x->ng};
}

/* The definition: per output, per group the exact int32 sum, then s = fma(acc, xs * ws, s) in
 * increasing g, y = s. */
static void gemm_i8_c(const t5k_xq *x, int rows, const t5_mat *w, int c0, int c1, float *y, size_t ldy) {
    int kq = (w->k + 3) / 4, ng = x->ng;
    const int8_t *P = w->p;
    for (int c = c0; c < c1; c++) {
        const int8_t *pc = P + (size_t)(c / T5_PANEL) * kq * 64 + (c % T5_PANEL) * 4;
        const float *ws = w->scale + (size_t)(c / T5_PANEL) * ng * T5_PANEL + c % T5_PANEL;
        for (int r = 0; r < rows; r++) {
            const int8_t *x8 = (const int8_t *)x->q + (size_t)r * x->ldq; /* int8, or a16: int16 */
            const int16_t *x16 = (const int16_t *)x->q + (size_t)r * x->ldq;
            const float *xs = x->s + (size_t)r * ng;
            float s = 0.0f;
            for (int g = 0; g < ng; g++) {
                int q0 = g * (T5_I8_GROUP / 4), q1 = q0 + T5_I8_GROUP / 4 < kq ? q0 + T5_I8_GROUP / 4 : kq;
                int32_t acc = 0;
                for (int q = q0; q < q1; q++)
                    for (int t = 0; t < 4; t++)
                        if (w->a16)
                            acc += x16[4 * q + t] * (int32_t)pc[(size_t)q * 64 + t];
                        else
                            acc += x8[4 * q + t] * (int32_t)pc[(size_t)q * 64 + t];
                s = fmaf((float)acc, xs[g] * ws[(size_t)g * T5_PANEL], s);
            }
            y[(size_t)r * ldy + c] = s;
        }
    }
}

static void quantize_c(const float *x, size_t ldx, int rows, int k, int a16, void *q, size_t ldq, float *s) {
    t5_quantize_x_i8(x, ldx, rows, k, a16 ? T5K_XQ_S16 : T5K_XQ_S8, a16, q, ldq, s);
}

const t5k_i8_ops t5k_i8_generic = {"generic", T5K_XQ_S8, T5K_XQ_S16, quantize_c, gemm_i8_c, 0, NULL};

#if defined(__x86_64__)
static int cpu_has_vnni(void) {
#ifdef T5_EMULATE_AVX512 /* test_engine_isa_emulated: the VNNI kernel runs through SIMDe */
    return 1;
#endif
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
}
#endif

int t5_cpu_has_amx(void) {
#if defined(__x86_64__)
#ifdef T5_EMULATE_AMX /* test_engine_isa_emulated: the tiles are tests/unit/amx_emulated.h's */
    return 1;
#endif
    unsigned a, b, c, d;
    /* CPUID.7.0:EDX bit 24 AMX-TILE, bit 25 AMX-INT8; the kernel needs VNNI too (fewer rows) */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)) || !cpu_has_vnni())
        return 0;
    /* the OS saves the tile state (XCR0 bits 17 XTILECFG and 18 XTILEDATA) */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & (3u << 17)) != (3u << 17)) return 0;
    /* and Linux lets this process use it: ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA (per
     * process, for every thread; asking again is harmless) */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return 0;
#endif
}

const t5k_i8_ops *t5_kernel_i8_ops(t5_isa isa) {
#if defined(__x86_64__)
    if (isa == T5_ISA_AMX) return &t5k_i8_amx;
    if (isa == T5_ISA_AVX512 && cpu_has_vnni()) return &t5k_i8_avx512_vnni;
    if (isa == T5_ISA_AVX512 || isa == T5_ISA_AVX2) return &t5k_i8_avx2;
#endif
    (void)isa;
    return &t5k_i8_generic;
}

int t5_kernel_i8_list(const t5k_i8_ops **out, int max) {
    int n = 0;
    if (n < max) out[n++] = &t5k_i8_generic;
#if defined(__x86_64__)
    if (n < max && t5_cpu_isa(T5_ISA_AVX2) == T5_ISA_AVX2) out[n++] = &t5k_i8_avx2;
    if (n < max && t5_cpu_isa(T5_ISA_AVX512) == T5_ISA_AVX512 && cpu_has_vnni())
        out[n++] = &t5k_i8_avx512_vnni;
    if (n < max && t5_cpu_isa(T5_ISA_AMX) == T5_ISA_AMX) out[n++] = &t5k_i8_amx;
#endif
    return n;
}
