/* kernels_bf16.c - the bfloat16 products (compute type bfloat16): the activations' rounding
 * into pairs, the portable C kernel that defines every output (t5_dev.h: one chain over the
 * pairs, odd k first, each sum rounded to nearest even and flushed below FLT_MIN, exactly
 * vdpbf16ps), and the choice of kernel per ISA: generic C, AVX2 (kernels_bf16_avx2.c, FMAs),
 * AVX-512 (kernels_bf16_avx512.c: FMAs; its vdpbf16ps table is the tests' reference). Every
 * table gives the same bits: a product of two bfloat16 values is exact in float32, so an FMA
 * under DAZ and FTZ rounds each sum as vdpbf16ps does.
 * What it is not: no threading (t5_matmul in kernels.c splits the work), no packing (model.c). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels_bf16.h"

uint16_t t5_bf16_round(float x) {
    uint16_t h = t5_float_to_bf16(x);
    return (h & 0x7f80u) == 0 ? (uint16_t)(h & 0x8000u) : h; /* denormal: a zero of its sign */
}

/* x[i] rounded (0 beyond k) as bfloat16 bits */
static uint32_t rounded(const float *x, int i, int k) {
    return i < k ? t5_bf16_round(x[i]) : 0;
}

void t5_bf16_pack_rows(const float *x, size_t ldx, int rows, int k, int xfmt, void *xb) {
    int np = (k + 1) / 2;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        if (xfmt == T5K_BF16_X_PAIRS) {
            uint32_t *o = (uint32_t *)xb + (size_t)r * np;
            for (int i = 0; i < np; i++)
                o[i] = rounded(xr, 2 * i, k) | rounded(xr, 2 * i + 1, k) << 16;
            continue;
        }
        t5k_bf16_pack_f32_tail(xr, ldx, 1, k, 0, (float *)xb + (size_t)r * 2 * np);
    }
}

void t5k_bf16_pack_f32_tail(const float *x, size_t ldx, int rows, int k, int i0, float *xb) {
    size_t ld = t5_bf16_ldx(T5K_BF16_X_F32, k);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *o = xb + (size_t)r * ld;
        for (int i = i0 / 2; i < (k + 1) / 2; i++) {
            uint32_t odd = rounded(xr, 2 * i + 1, k) << 16, even = rounded(xr, 2 * i, k) << 16;
            memcpy(&o[2 * i], &odd, 4);
            memcpy(&o[2 * i + 1], &even, 4);
        }
    }
}

/* the low (even k) and high (odd k) halves of a pair as float32 */
static inline float pair_lo(uint32_t p) {
    uint32_t u = p << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float pair_hi(uint32_t p) {
    uint32_t u = p & 0xffff0000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* a sum below FLT_MIN as FTZ leaves it (also where no MXCSR does it) */
static inline float ftz(float s) {
    return fabsf(s) < FLT_MIN ? copysignf(0.0f, s) : s;
}

/* The definition, one output at a time. */
static void gemm_bf16_c(const void *xv, size_t ldx, int rows, const t5_mat *w, int c0, int c1, float *y,
                        size_t ldy) {
    int np = (w->k + 1) / 2;
    const uint32_t *P = w->p, *x = xv;
    unsigned csr = t5k_bf16_csr_begin();
    for (int c = c0; c < c1; c++) {
        const uint32_t *pc = P + (size_t)(c / T5_PANEL) * T5_PANEL * np + c % T5_PANEL;
        for (int r = 0; r < rows; r++) {
            const uint32_t *xr = x + (size_t)r * ldx;
            float s = 0;
            for (int i = 0; i < np; i++) {
                uint32_t a = xr[i], b = pc[(size_t)i * T5_PANEL];
                s = ftz(fmaf(pair_hi(a), pair_hi(b), s));
                s = ftz(fmaf(pair_lo(a), pair_lo(b), s));
            }
            y[(size_t)r * ldy + c] = s;
        }
    }
    t5k_bf16_csr_end(csr);
}

void t5k_bf16_pack_pairs(const float *x, size_t ldx, int rows, int k, void *xb) {
    t5_bf16_pack_rows(x, ldx, rows, k, T5K_BF16_X_PAIRS, xb);
}

const t5k_bf16_ops t5k_bf16_generic = {"generic", T5K_BF16_X_PAIRS, t5k_bf16_pack_pairs, gemm_bf16_c};

#if defined(__x86_64__)
#include <cpuid.h>
/* AVX512_BF16: CPUID.(7, 1):EAX bit 5 (the OS's AVX-512 state is t5_cpu_isa's check) */
static int cpu_has_avx512_bf16(void) {
#ifdef T5_EMULATE_AVX512 /* test_engine_isa_emulated: vdpbf16ps as tests/unit/simde_avx512.h defines it */
    return 1;
#else
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
#endif
}
#endif

const t5k_bf16_ops *t5_kernel_bf16_ops(t5_isa isa) {
#if defined(__x86_64__)
    /* vdpbf16ps: AMD's (Zen 4, Zen 5) runs at twice the FMA table's rate, Intel's (Sapphire
     * Rapids: one port) at 0.6x (t5_dev.h); AMX too takes the FMA table on Intel */
    if (isa >= T5_ISA_AVX512 && cpu_has_avx512_bf16() && __builtin_cpu_is("amd"))
        return &t5k_bf16_avx512_bf16;
    if (isa >= T5_ISA_AVX512) return &t5k_bf16_avx512;
    if (isa == T5_ISA_AVX2) return &t5k_bf16_avx2;
#endif
    (void)isa;
    return &t5k_bf16_generic;
}

int t5_kernel_bf16_list(const t5k_bf16_ops **out, int max) {
    int n = 0;
    if (n < max) out[n++] = &t5k_bf16_generic;
#if defined(__x86_64__)
    t5_isa best = t5_cpu_isa(T5_ISA_AUTO);
    if (best >= T5_ISA_AVX2 && n < max) out[n++] = &t5k_bf16_avx2;
    if (best >= T5_ISA_AVX512 && n < max) out[n++] = &t5k_bf16_avx512;
    if (best >= T5_ISA_AVX512 && cpu_has_avx512_bf16() && n < max) out[n++] = &t5k_bf16_avx512_bf16;
#endif
    return n;
}
