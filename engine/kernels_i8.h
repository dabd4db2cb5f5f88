/* kernels_i8.h - the int8 kernel tables behind t5_kernel_i8_ops (private to kernels_i8*.c):
 * one t5k_i8_ops per instruction set, all computing t5_dev.h's definition bit for bit.
 * What it is not: the dispatch (kernels_i8.c) or the threading (kernels.c). */
#ifndef T5SERVE_KERNELS_I8_H
#define T5SERVE_KERNELS_I8_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "t5_dev.h"

extern const t5k_i8_ops t5k_i8_generic;
#if defined(__x86_64__)
extern const t5k_i8_ops t5k_i8_avx2;
extern const t5k_i8_ops t5k_i8_avx512_vnni;
extern const t5k_i8_ops t5k_i8_amx;
#endif

/* 1 when AMX-INT8 runs here: CPUID (AMX-TILE, AMX-INT8, and AVX-512 VNNI), XCR0's tile state
 * bits, and Linux's permission for this process (arch_prctl, asked here: once is enough, again
 * is harmless); 0 otherwise. kernels_i8.c */
int t5_cpu_has_amx(void);

/* 1 for the layouts that hold each row as two int8 halves (a16 on VNNI and AMX) */
static inline int t5k_xq_halves(int xfmt) {
    return xfmt == T5K_XQ_S8X2 || xfmt == T5K_XQ_U8X2;
}

/* quantized value v stored as element i of row r of q (rows ldq elements apart) in format
 * xfmt: U8 shifted by +128; X2 split as q = 256 hi + lo, hi at i, lo at ldq / 2 + i */
static inline void t5k_xq_put(void *q, int xfmt, size_t ldq, int r, int i, int v) {
    size_t at = (size_t)r * ldq + (size_t)i;
    if (xfmt == T5K_XQ_S16)
        ((int16_t *)q)[at] = (int16_t)v;
    else if (xfmt == T5K_XQ_U8)
        ((uint8_t *)q)[at] = (uint8_t)(v + 128);
    else if (xfmt == T5K_XQ_S8)
        ((int8_t *)q)[at] = (int8_t)v;
    else {
        int hi = (v + 128) >> 8, sh = xfmt == T5K_XQ_U8X2 ? 128 : 0;
        ((uint8_t *)q)[at] = (uint8_t)(hi + sh);
        ((uint8_t *)q)[at + ldq / 2] = (uint8_t)(v - 256 * hi + sh);
    }
}

#if defined(__AVX2__)
#include <immintrin.h>
/* 8 int32 values (each within int8's range) stored as bytes at p, xor sh (0x80: the +128 shift) */
static inline void t5k_i8_store8(int8_t *p, __m256i w, __m128i sh) {
    __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64((__m128i *)p, _mm_xor_si128(_mm_packs_epi16(h, h), sh));
}

/* t5_quantize_x_i8 with 8 values per step, for the SIMD tables (compiled with AVX2): the same
 * operations (absolute maximum, x * inv, vminps / vmaxps clamps, +- 1.5 * 2^23), so the same
 * bits. */
static inline void t5k_i8_quantize_avx2(const float *x, size_t ldx, int rows, int k, int xfmt, int a16,
                                        void *q, size_t ldq, float *s) {
    int ng = (k + T5_I8_GROUP - 1) / T5_I8_GROUP, kp = (k + 3) & ~3;
    const float lim = a16 ? (float)T5_I8_A16_MAX : 127.0f;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 hi = _mm256_set1_ps(lim), lo = _mm256_set1_ps(-lim), mg = _mm256_set1_ps(12582912.0f);
    const __m128i sh = _mm_set1_epi8(xfmt == T5K_XQ_U8 || xfmt == T5K_XQ_U8X2 ? (char)0x80 : 0);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        for (int g = 0; g < ng; g++) {
            int i0 = g * T5_I8_GROUP, n = k - i0 < T5_I8_GROUP ? k - i0 : T5_I8_GROUP, i = 0;
            __m256 m = _mm256_setzero_ps();
            for (; i + 8 <= n; i += 8) /* vmaxps(|x|, m): m when x is NaN, as fabsf(x) > mx */
                m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xr + i0 + i), absm), m);
            float l[8], mx = 0;
            _mm256_storeu_ps(l, m);
            for (int j = 0; j < 8; j++)
                mx = l[j] > mx ? l[j] : mx;
            for (; i < n; i++)
                mx = fabsf(xr[i0 + i]) > mx ? fabsf(xr[i0 + i]) : mx;
            s[(size_t)r * ng + g] = mx / lim;
            float inv = mx > 0 ? lim / mx : 0;
            __m256 vi = _mm256_set1_ps(inv);
            size_t at = (size_t)r * ldq + (size_t)i0;
            for (i = 0; i + 8 <= n; i += 8) {
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + i0 + i), vi);
                v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
                __m256i w = _mm256_cvtps_epi32(_mm256_sub_ps(_mm256_add_ps(v, mg), mg));
                if (t5k_xq_halves(xfmt)) { /* hi = (q + 128) >> 8, lo = q - 256 hi */
                    __m256i wh = _mm256_srai_epi32(_mm256_add_epi32(w, _mm256_set1_epi32(128)), 8);
                    t5k_i8_store8((int8_t *)q + at + i, wh, sh);
                    t5k_i8_store8((int8_t *)q + at + ldq / 2 + i,
                                  _mm256_sub_epi32(w, _mm256_slli_epi32(wh, 8)), sh);
                } else if (xfmt == T5K_XQ_S16)
                    _mm_storeu_si128(
                        (__m128i *)((int16_t *)q + at + i),
                        _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
                else
                    t5k_i8_store8((int8_t *)q + at + i, w, sh);
            }
            for (; i < n; i++)
                t5k_xq_put(q, xfmt, ldq, r, i0 + i, t5_quantize_to(xr[i0 + i], inv, lim));
        }
        for (int i = k; i < kp; i++) /* the padding of the last group of 4: zero */
            t5k_xq_put(q, xfmt, ldq, r, i, 0);
    }
}
#endif

#if defined(__AVX512F__) || defined(T5_EMULATE_AVX512)
/* t5_quantize_x_i8 for the byte layouts (U8, S8 and their X2 halves) with a whole group (64
 * values: 4 zmm) per step, for the AVX-512 tables: the same operations as the AVX2 one, so the
 * same bits (the absolute maximum in any order: each lane's vmaxps keeps the maximum, NaN
 * skipped); 16 values stored per vpmovdb. A last partial group takes the definition's loop.
 * 0.54x the AVX2 quantizer's time on Zen 5 (docs/engine.md, int8, "Activations"). */
static inline __attribute__((always_inline)) void
t5k_i8_quantize_avx512(const float *x, size_t ldx, int rows, int k, int xfmt, void *q, size_t ldq, float *s) {
    int ng = (k + T5_I8_GROUP - 1) / T5_I8_GROUP, kp = (k + 3) & ~3, halves = t5k_xq_halves(xfmt);
    const float lim = halves ? (float)T5_I8_A16_MAX : 127.0f; /* the halves hold a16's 16 bits */
    const __m512 hi = _mm512_set1_ps(lim), lo = _mm512_set1_ps(-lim), mg = _mm512_set1_ps(12582912.0f);
    const __m128i sh = _mm_set1_epi8(xfmt == T5K_XQ_U8 || xfmt == T5K_XQ_U8X2 ? (char)0x80 : 0);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        int8_t *qr = (int8_t *)q + (size_t)r * ldq;
        for (int g = 0; g < ng; g++) {
            int i0 = g * T5_I8_GROUP;
            float *sg = &s[(size_t)r * ng + g];
            if (k - i0 < T5_I8_GROUP) { /* the definition's steps */
                float inv = t5_quantize_scale(xr + i0, k - i0, lim, sg);
                for (int i = i0; i < k; i++)
                    t5k_xq_put(q, xfmt, ldq, r, i, t5_quantize_to(xr[i], inv, lim));
                break;
            }
            __m512 v[4], m = _mm512_setzero_ps();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) /* vmaxps(|x|, m): m when x is NaN */
                m = _mm512_max_ps(_mm512_abs_ps(v[j] = _mm512_loadu_ps(xr + i0 + 16 * j)), m);
            __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(m), _mm512_extractf32x8_ps(m, 1));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            float mx = _mm_cvtss_f32(_mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1)));
            *sg = mx / lim;
            __m512 vi = _mm512_set1_ps(mx > 0 ? lim / mx : 0);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m512 u = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(v[j], vi), hi), lo);
                __m512i w = _mm512_cvtps_epi32(_mm512_sub_ps(_mm512_add_ps(u, mg), mg));
                int8_t *p = qr + i0 + 16 * j;
                if (halves) { /* hi = (q + 128) >> 8, lo = q - 256 hi */
                    __m512i wh = _mm512_srai_epi32(_mm512_add_epi32(w, _mm512_set1_epi32(128)), 8);
                    w = _mm512_sub_epi32(w, _mm512_slli_epi32(wh, 8));
                    _mm_storeu_si128((__m128i *)p, _mm_xor_si128(_mm512_cvtepi32_epi8(wh), sh));
                    p += ldq / 2;
                }
                _mm_storeu_si128((__m128i *)p, _mm_xor_si128(_mm512_cvtepi32_epi8(w), sh));
            }
        }
        for (int i = k; i < kp; i++) /* the padding of the last group of 4: zero */
            t5k_xq_put(q, xfmt, ldq, r, i, 0);
    }
}
#endif

/* The buffers of x[rows, k] quantized for the kernels o (o->quantize fills them, by rows; a16: for a16
 * matrices): out->q, out->s allocated (the caller frees both). 0, or -1 out of memory (nothing to free). */
int t5k_i8_alloc(const t5k_i8_ops *o, int rows, int k, int a16, t5k_xq *out);
/* The rows from r0 on of x (quantized for o, a16 or not). */
t5k_xq t5k_i8_rows(const t5k_i8_ops *o, const t5k_xq *x, int r0, int a16);

#endif
