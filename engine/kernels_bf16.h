/* kernels_bf16.h - the bfloat16 kernel tables behind t5_kernel_bf16_ops (private to
 * kernels_bf16*.c): one t5k_bf16_ops per instruction set, all computing t5_dev.h's chain bit
 * for bit, and the MXCSR bracket that makes an FMA behave as vdpbf16ps's sums.
 * What it is not: the dispatch (kernels_bf16.c) or the threading (kernels.c). */
#ifndef T5SERVE_KERNELS_BF16_H
#define T5SERVE_KERNELS_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "t5_dev.h"

extern const t5k_bf16_ops t5k_bf16_generic;
#if defined(__x86_64__)
extern const t5k_bf16_ops t5k_bf16_avx2;
extern const t5k_bf16_ops t5k_bf16_avx512;
extern const t5k_bf16_ops t5k_bf16_avx512_bf16;
#include <xmmintrin.h>
/* Sets MXCSR's DAZ and FTZ (denormal inputs read as zero, denormal results flushed to zero,
 * as vdpbf16ps does) for the products of one call; returns the state to restore. */
static inline unsigned t5k_bf16_csr_begin(void) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);
    return csr;
}
static inline void t5k_bf16_csr_end(unsigned csr) {
    _mm_setcsr(csr);
}
#else
static inline unsigned t5k_bf16_csr_begin(void) {
    return 0;
}
static inline void t5k_bf16_csr_end(unsigned csr) {
    (void)csr;
}
#endif

/* t5_bf16_pack_rows in T5K_BF16_X_PAIRS (the tables that read pairs) */
void t5k_bf16_pack_pairs(const float *x, size_t ldx, int rows, int k, void *xb);
/* The rows' values from i0 on (i0 even) in T5K_BF16_X_F32 (rows t5_bf16_ldx apart in xb), as
 * t5_bf16_pack_rows writes them: the SIMD packers round the whole 16 / 8 values before. */
void t5k_bf16_pack_f32_tail(const float *x, size_t ldx, int rows, int k, int i0, float *xb);

/* pairs of k per block of the SIMD kernels: a strip of 3 panels (96 KB at most) stays in L2
 * across the row tiles; y carries the chain between blocks */
enum { T5K_BF16_KC = 256 };

#endif
