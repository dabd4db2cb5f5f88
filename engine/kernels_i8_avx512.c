/* kernels_i8_avx512.c - the int8 product with AVX-512 VNNI (t5_dev.h's definition, bit for
 * bit): vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes and adds the 4 products
 * into an int32 lane without saturation, so the activations come shifted to uint8
 * (q + 128, t5_quantize_x_i8's T5K_XQ_U8) and each group sum is compensated exactly:
 * sum (q + 128) w - 128 * wsum = sum q w. One zmm of weights is one k group of 4 of a
 * whole panel (16 columns x 4 k, 64 bytes), read as packed. Register tiles: 4 rows x 3
 * panels (12 int32 + 12 float accumulators). a16 matrices (16-bit activations as two shifted
 * byte halves, T5K_XQ_U8X2): the same tile over 2 rows' 4 halves, each pair's sums combined.
 * What it is not: no dispatch (kernels_i8.c: only on CPUs with avx512_vnni; AVX-512 CPUs
 * without it take the AVX2 kernel). */
#if defined(__x86_64__)
#ifdef T5_EMULATE_AVX512 /* test_engine_isa_emulated: SIMDe's portable AVX-512 (tests/unit) */
#include "simde_avx512.h"
#else
#include <immintrin.h>
#endif
#include <string.h>

#include "kernels_i8.h"

#define INLINE static inline __attribute__((always_inline))
/* acc += x . w (vpdpbusd): in asm, where GCC 12 copied each accumulator out and back around
 * every intrinsic (two register moves per vpdpbusd: the tile ran at 410 GOP/s, now 674-704 on
 * one Zen 5 core) */
#ifdef T5_EMULATE_AVX512
#define DPBUSD(acc, x, w) ((acc) = _mm512_dpbusd_epi32((acc), (x), (w)))
#else
#define DPBUSD(acc, x, w) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w))
#endif

/* y[R rows, NP panels] (the last panel's columns masked by last); pw at the first panel's
 * bytes, panels ps bytes apart; wsum and ws at the first panel's group sums and scales.
 * W (a16, T5K_XQ_U8X2): x's R rows are R / 2 rows' hi and lo halves, each output row's group
 * sum 256 (hi - comp) + (lo - comp) exactly (|.| < 2^29), then the same epilogue.
 * pf, unless 0: this tile prefetches the next NP panels (their bytes, sums and scales) line by
 * line as it reads its own: the weights stream from memory once per strip, and the strip's
 * later tiles find them in cache. */
INLINE void tile(const int W, const int R, const int NP, const uint8_t *x, size_t ldq, const float *xs,
                 int ng, const int8_t *pw, size_t ps, const int32_t *wsum, int kq, const float *ws, float *y,
                 size_t ldy, __mmask16 last, int pf) {
    const int RO = W ? R / 2 : R; /* output rows */
    __m512 s[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++)
            s[r][p] = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        int q0 = g * (T5_I8_GROUP / 4), q1 = q0 + T5_I8_GROUP / 4 < kq ? q0 + T5_I8_GROUP / 4 : kq;
        __m512i a[4][3];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
#pragma GCC unroll 3
            for (int p = 0; p < NP; p++)
                a[r][p] = _mm512_setzero_si512();
        if (pf)
#pragma GCC unroll 3
            for (int p = 0; p < NP; p++) {
                _mm_prefetch((const char *)(wsum + ((size_t)(NP + p) * ng + g) * 16), _MM_HINT_T0);
                _mm_prefetch((const char *)(ws + ((size_t)(NP + p) * ng + g) * 16), _MM_HINT_T0);
            }
        for (int q = q0; q < q1; q++) {
            __m512i wv[3];
            if (pf)
#pragma GCC unroll 3
                for (int p = 0; p < NP; p++)
                    _mm_prefetch((const char *)(pw + (NP + p) * ps + (size_t)q * 64), _MM_HINT_T0);
#pragma GCC unroll 3
            for (int p = 0; p < NP; p++)
                wv[p] = _mm512_loadu_si512((const void *)(pw + p * ps + (size_t)q * 64));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                int x4;
                memcpy(&x4, x + (size_t)r * ldq + 4 * (size_t)q, 4);
                __m512i xb = _mm512_set1_epi32(x4);
#pragma GCC unroll 3
                for (int p = 0; p < NP; p++)
                    DPBUSD(a[r][p], xb, wv[p]);
            }
        }
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) {
            __m512i comp =
                _mm512_slli_epi32(_mm512_loadu_si512((const void *)(wsum + ((size_t)p * ng + g) * 16)), 7);
            __m512 wsg = _mm512_loadu_ps(ws + ((size_t)p * ng + g) * 16);
#pragma GCC unroll 4
            for (int r = 0; r < RO; r++) {
                __m512i v = _mm512_sub_epi32(a[W ? 2 * r : r][p], comp);
                if (W) v = _mm512_add_epi32(_mm512_slli_epi32(v, 8), _mm512_sub_epi32(a[2 * r + 1][p], comp));
                s[r][p] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(v),
                                    _mm512_mul_ps(_mm512_set1_ps(xs[(size_t)r * ng + g]), wsg), s[r][p]);
            }
        }
    }
#pragma GCC unroll 3
    for (int p = 0; p < NP; p++) {
        __mmask16 mk = p == NP - 1 ? last : (__mmask16)0xffff;
#pragma GCC unroll 4
        for (int r = 0; r < RO; r++)
            _mm512_mask_storeu_ps(y + (size_t)r * ldy + 16 * p, mk, s[r][p]);
    }
}

/* every row of one strip of NP panels, 4 rows per tile (W: 2 rows, as 4 halves); with pf, the
 * first tile prefetches the next NP panels */
#define STRIP(W, NP)                                                                                         \
    static void strip_##W##_##NP(const t5k_xq *x, int rows, const int8_t *pw, size_t ps,                     \
                                 const int32_t *wsum, int kq, const float *ws, float *y, size_t ldy,         \
                                 __mmask16 last, int pf) {                                                   \
        const uint8_t *xq = x->q;                                                                            \
        size_t ld = x->ldq >> W; /* between the tile's rows (W: halves) */                                   \
        int ng = x->ng, r = 0, hr = rows << W;                                                               \
        for (; r + 4 <= hr; r += 4)                                                                          \
            tile(W, 4, NP, xq + r * ld, ld, x->s + (size_t)(r >> W) * ng, ng, pw, ps, wsum, kq, ws,          \
                 y + (r >> W) * ldy, ldy, last, pf && !r);                                                   \
        xq += r * ld, y += (r >> W) * ldy;                                                                   \
        const float *sr = x->s + (size_t)(r >> W) * ng;                                                      \
        switch (hr - r) {                                                                                    \
        case 3:                                                                                              \
            tile(W, 3, NP, xq, ld, sr, ng, pw, ps, wsum, kq, ws, y, ldy, last, pf && !r);                    \
            break;                                                                                           \
        case 2:                                                                                              \
            tile(W, 2, NP, xq, ld, sr, ng, pw, ps, wsum, kq, ws, y, ldy, last, pf && !r);                    \
            break;                                                                                           \
        case 1:                                                                                              \
            tile(W, 1, NP, xq, ld, sr, ng, pw, ps, wsum, kq, ws, y, ldy, last, pf && !r);                    \
            break;                                                                                           \
        }                                                                                                    \
    }
STRIP(0, 3)
STRIP(0, 1)
STRIP(1, 3)
STRIP(1, 1)
typedef void strip_fn(const t5k_xq *x, int rows, const int8_t *pw, size_t ps, const int32_t *wsum, int kq,
                      const float *ws, float *y, size_t ldy, __mmask16 last, int pf);

/* strips of 3 whole panels, then single panels, the last one masked when partial */
static void gemm_i8_vnni(const t5k_xq *x, int rows, const t5_mat *w, int c0, int c1, float *y, size_t ldy) {
    int kq = (w->k + 3) / 4, ng = x->ng;
    size_t ps = (size_t)kq * 64;
    int p = c0 / T5_PANEL, pfull = c1 / T5_PANEL, pend = (c1 + T5_PANEL - 1) / T5_PANEL;
#define ARGS(P)                                                                                              \
    (const int8_t *)w->p + (size_t)(P)*ps, ps, w->wsum + (size_t)(P)*ng * 16, kq,                            \
        w->scale + (size_t)(P)*ng * 16, y + (size_t)(P)*T5_PANEL, ldy
    strip_fn *s3 = w->a16 ? strip_1_3 : strip_0_3, *s1 = w->a16 ? strip_1_1 : strip_0_1;
    for (; p + 3 <= pfull; p += 3)
        s3(x, rows, ARGS(p), 0xffff, p + 6 <= pfull);
    for (; p < pfull; p++)
        s1(x, rows, ARGS(p), 0xffff, 0);
    if (p < pend) s1(x, rows, ARGS(p), (__mmask16)((1u << (c1 - T5_PANEL * p)) - 1), 0);
#undef ARGS
}

static void quantize_u8(const float *x, size_t ldx, int rows, int k, int a16, void *q, size_t ldq, float *s) {
    if (a16) /* (each layout its own inlined copy) */
        t5k_i8_quantize_avx512(x, ldx, rows, k, T5K_XQ_U8X2, q, ldq, s);
    else
        t5k_i8_quantize_avx512(x, ldx, rows, k, T5K_XQ_U8, q, ldq, s);
}

const t5k_i8_ops t5k_i8_avx512_vnni = {"avx512-vnni", T5K_XQ_U8, T5K_XQ_U8X2, quantize_u8,
                                       gemm_i8_vnni,  0,         NULL};
#endif
