/* kernels.h - the per-instruction-set kernels behind kernels.c (private to
 * kernels.c, kernels_avx2.c and kernels_avx512.c): one set of functions per ISA (the
 * t5k_ops table of t5_dev.h), the same contract and bit for bit the same results for
 * each. kernels.c picks the set from the model's t5_isa and holds the portable C
 * reference of every function.
 *
 * The one-answer rule every implementation keeps:
 * - a product output y[r, c] is ONE chain of float32 FMAs over k in increasing order,
 *   acc = fma(x[r, k], B[k, c], acc) from acc = 0 (vector lanes are different output
 *   columns, so the vector width never changes the order; blocks over K carry acc
 *   through y in memory, exactly);
 * - a reduction over n values (sums, maxima) keeps 16 lanes, value i going to lane
 *   i % 16 in increasing i, then combines them by one tree: lane l += lane l + 8
 *   (l < 8), then + 4, + 2, + 1 (AVX2 holds the 16 lanes in two registers);
 * - exp is one polynomial (t5k_exp below), the same operations in C and in SIMD.
 * What it is not: no threading (kernels.c splits products over the pool). */
#ifndef T5SERVE_KERNELS_H
#define T5SERVE_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "t5_dev.h"

extern const t5k_ops t5k_generic_ops;
#if defined(__x86_64__)
extern const t5k_ops t5k_avx2_ops;
extern const t5k_ops t5k_avx512_ops;
#endif

/* ---- the scalar definitions the SIMD code reproduces ---- */

/* exp(x): x < -87 (and NaN) gives 0, x is capped at 88; 2^(x log2 e) = 2^n p(f), n the
 * nearest integer (ties to even), f in [-0.5, 0.5], p a degree-6 polynomial by FMAs
 * (relative error ~2e-7), 2^n built from its exponent bits (always normal). */
#define T5K_EXP_C6 1.535336188319500e-4f
#define T5K_EXP_C5 1.339887440266574e-3f
#define T5K_EXP_C4 9.618437357674640e-3f
#define T5K_EXP_C3 5.550332471162809e-2f
#define T5K_EXP_C2 2.402264791363012e-1f
#define T5K_EXP_C1 6.931472028550421e-1f
#define T5K_LOG2E 1.44269504088896341f
static inline float t5k_exp(float x) {
    if (!(x >= -87.0f)) return 0.0f;
    x = x < 88.0f ? x : 88.0f;
    float t = x * T5K_LOG2E, n = nearbyintf(t), f = t - n;
    float p = fmaf(T5K_EXP_C6, f, T5K_EXP_C5);
    p = fmaf(p, f, T5K_EXP_C4);
    p = fmaf(p, f, T5K_EXP_C3);
    p = fmaf(p, f, T5K_EXP_C2);
    p = fmaf(p, f, T5K_EXP_C1);
    p = fmaf(p, f, 1.0f);
    uint32_t bits = (uint32_t)((int)n + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return p * s;
}

/* gelu_new (tanh form): 0.5 x (1 + tanh(c (x + 0.044715 x^3))), tanh(y) = 1 - 2 / (exp(2y) + 1) */
static inline float t5k_gelu(float x) {
    float y = 0.7978845608028654f * fmaf(0.044715f * x, x * x, x);
    y = y < 40.0f ? y : 40.0f;
    float th = 1.0f - 2.0f / (t5k_exp(2.0f * y) + 1.0f);
    return 0.5f * x * (1.0f + th);
}

#endif
