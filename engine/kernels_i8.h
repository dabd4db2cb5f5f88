/* kernels_i8.h - the int8 kernel tables behind t5_kernel_i8_ops (private to kernels_i8*.c):
 * one t5k_i8_ops per instruction set, all computing t5_dev.h's definition bit for bit.
 * What it is not: the dispatch (kernels_i8.c) or the threading (kernels.c). */
#ifndef T5SERVE_KERNELS_I8_H
#define T5SERVE_KERNELS_I8_H

#include "t5_dev.h"

extern const t5k_i8_ops t5k_i8_generic;
#if defined(__x86_64__)
extern const t5k_i8_ops t5k_i8_avx2;
extern const t5k_i8_ops t5k_i8_avx512_vnni;
#endif

/* x[rows, k] quantized for the kernels o: out->q, out->s allocated (the caller frees both).
 * 0, or -1 out of memory (nothing to free). */
int t5k_i8_prepare(const t5k_i8_ops *o, const float *x, int rows, int k, t5k_xq *out);
/* The rows from r0 on of x (quantized for o). */
t5k_xq t5k_i8_rows(const t5k_i8_ops *o, const t5k_xq *x, int r0);

#endif
