/* kernels_avx2.c - the AVX2 + FMA kernels (kernels.h's contract): the product as
 * register tiles of up to 6 rows x 1 column group (16 columns in two ymm, 12
 * accumulators), weights widened exactly from bf16 / f16 panels (F16C), and the
 * 16-lane reductions in two ymm (lanes 0-7 and 8-15). Bit for bit the results of
 * kernels.c's C code and of the AVX-512 kernels.
 * What it is not: no dispatch (kernels.c). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

/* lane masks of the first n of 16 columns, as two ymm of int */
typedef struct {
    __m256i lo, hi;
} mask16;

INLINE mask16 mask_of(int n) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), nv = _mm256_set1_epi32(n);
    return (mask16){_mm256_cmpgt_epi32(nv, idx),
                    _mm256_cmpgt_epi32(nv, _mm256_add_epi32(idx, _mm256_set1_epi32(8)))};
}

/* 8 weights as float32 */
INLINE __m256 load8(const void *p, int dt, int full, __m256i mk) {
    if (dt == ST_F32) return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mk);
    __m128i h = _mm_loadu_si128(p); /* 16-bit panels are padded to whole groups */
    if (dt == ST_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

INLINE __m256 loady(const float *p, int full, __m256i mk) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mk);
}

INLINE void storey(float *p, int full, __m256i mk, __m256 v) {
    if (full)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, mk, v);
}

/* y[R rows, 16 columns] over k in [k0, k1) */
INLINE void tile(const int R, const int dt, const int full, const float *x, size_t ldx, int k0, int k1,
                 const char *b, size_t ks, size_t es, float *y, size_t ldy, mask16 mk) {
    __m256 lo[6], hi[6];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        lo[r] = k0 ? loady(y + r * ldy, full, mk.lo) : _mm256_setzero_ps();
        hi[r] = k0 ? loady(y + r * ldy + 8, full, mk.hi) : _mm256_setzero_ps();
    }
    const char *bk = b + (size_t)k0 * ks;
    const float *xk = x + k0;
    for (int k = k0; k < k1; k++, bk += ks, xk++) {
        __m256 w0 = load8(bk, dt, full, mk.lo), w1 = load8(bk + 8 * es, dt, full, mk.hi);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(xk + r * ldx);
            lo[r] = _mm256_fmadd_ps(xv, w0, lo[r]);
            hi[r] = _mm256_fmadd_ps(xv, w1, hi[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        storey(y + r * ldy, full, mk.lo, lo[r]);
        storey(y + r * ldy + 8, full, mk.hi, hi[r]);
    }
}

#define STRIP(DT, FULL)                                                                                      \
    static void strip_##DT##_##FULL(const float *x, size_t ldx, int rows, int k0, int k1, const char *b,     \
                                    size_t ks, size_t es, float *y, size_t ldy, mask16 mk) {                 \
        int r = 0;                                                                                           \
        for (; r + 6 <= rows; r += 6)                                                                        \
            tile(6, DT, FULL, x + r * ldx, ldx, k0, k1, b, ks, es, y + r * ldy, ldy, mk);                    \
        x += r * ldx, y += r * ldy;                                                                          \
        switch (rows - r) {                                                                                  \
        case 5:                                                                                              \
            tile(5, DT, FULL, x, ldx, k0, k1, b, ks, es, y, ldy, mk);                                        \
            break;                                                                                           \
        case 4:                                                                                              \
            tile(4, DT, FULL, x, ldx, k0, k1, b, ks, es, y, ldy, mk);                                        \
            break;                                                                                           \
        case 3:                                                                                              \
            tile(3, DT, FULL, x, ldx, k0, k1, b, ks, es, y, ldy, mk);                                        \
            break;                                                                                           \
        case 2:                                                                                              \
            tile(2, DT, FULL, x, ldx, k0, k1, b, ks, es, y, ldy, mk);                                        \
            break;                                                                                           \
        case 1:                                                                                              \
            tile(1, DT, FULL, x, ldx, k0, k1, b, ks, es, y, ldy, mk);                                        \
            break;                                                                                           \
        }                                                                                                    \
    }
#define STRIPS(DT) STRIP(DT, 1) STRIP(DT, 0)
STRIPS(ST_F32)
STRIPS(ST_BF16)
STRIPS(ST_F16)

typedef void (*strip_fn)(const float *, size_t, int, int, int, const char *, size_t, size_t, float *, size_t,
                         mask16);

static void gemm2(const float *x, size_t ldx, int rows, int k0, int k1, const t5k_bop *b, int c0, int c1,
                  float *y, size_t ldy) {
    strip_fn s, sm;
    size_t es = b->dtype == ST_F32 ? 4 : 2;
    if (b->dtype == ST_BF16)
        s = strip_ST_BF16_1, sm = strip_ST_BF16_0;
    else if (b->dtype == ST_F16)
        s = strip_ST_F16_1, sm = strip_ST_F16_0;
    else
        s = strip_ST_F32_1, sm = strip_ST_F32_0;
    size_t gs = b->gs * es, ks = b->ks * es;
    const char *base = b->p;
    int g = c0 / 16, gfull = c1 / 16;
    mask16 all = mask_of(16);
    for (; g < gfull; g++)
        s(x, ldx, rows, k0, k1, base + g * gs, ks, es, y + 16 * g, ldy, all);
    if (16 * g < c1) sm(x, ldx, rows, k0, k1, base + g * gs, ks, es, y + 16 * g, ldy, mask_of(c1 - 16 * g));
}

/* ---- reductions and elementwise: 16 lanes as (lo, hi) ---- */

INLINE float tree_add(__m256 lo, __m256 hi) {
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

INLINE float tree_max(__m256 lo, __m256 hi) {
    __m256 a = _mm256_max_ps(lo, hi);
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

INLINE __m256 exp8(__m256 x) {
    __m256 ok = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(T5K_LOG2E));
    __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(t, n);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(T5K_EXP_C6), f, _mm256_set1_ps(T5K_EXP_C5));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(T5K_EXP_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(T5K_EXP_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(T5K_EXP_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(T5K_EXP_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(ok, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* the values i..i+15 (first n of them; the rest read as `fill`) */
INLINE void load16(const float *x, int n, float fill, __m256 *lo, __m256 *hi) {
    if (n >= 16) {
        *lo = _mm256_loadu_ps(x), *hi = _mm256_loadu_ps(x + 8);
        return;
    }
    mask16 m = mask_of(n);
    __m256 f = _mm256_set1_ps(fill);
    *lo = _mm256_blendv_ps(f, _mm256_maskload_ps(x, m.lo), _mm256_castsi256_ps(m.lo));
    *hi = _mm256_blendv_ps(f, _mm256_maskload_ps(x + 8, m.hi), _mm256_castsi256_ps(m.hi));
}

INLINE void store16(float *x, int n, __m256 lo, __m256 hi) {
    if (n >= 16) {
        _mm256_storeu_ps(x, lo), _mm256_storeu_ps(x + 8, hi);
        return;
    }
    mask16 m = mask_of(n);
    _mm256_maskstore_ps(x, m.lo, lo), _mm256_maskstore_ps(x + 8, m.hi, hi);
}

static float max2(const float *x, int n) {
    __m256 ml = _mm256_set1_ps(-INFINITY), mh = ml;
    for (int i = 0; i < n; i += 16) {
        __m256 lo, hi;
        load16(x + i, n - i, -INFINITY, &lo, &hi); /* -inf lanes leave the maximum as it is */
        ml = _mm256_max_ps(lo, ml), mh = _mm256_max_ps(hi, mh);
    }
    return tree_max(ml, mh);
}

static int argmax2(const float *x, int n) {
    float mx = max2(x, n);
    if (!(mx > -INFINITY)) return 0;
    __m256 vm = _mm256_set1_ps(mx);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vm, _CMP_EQ_OQ));
        if (eq) return i + __builtin_ctz((unsigned)eq);
    }
    for (; i < n; i++)
        if (x[i] == mx) return i;
    return 0;
}

static float sum_exp2(const float *x, int n, float mx) {
    __m256 sl = _mm256_setzero_ps(), sh = sl, m = _mm256_set1_ps(mx);
    for (int i = 0; i < n; i += 16) {
        __m256 lo, hi;
        load16(x + i, n - i, -INFINITY, &lo, &hi); /* exp(-inf) adds +0: the lane unchanged */
        sl = _mm256_add_ps(sl, exp8(_mm256_sub_ps(lo, m)));
        sh = _mm256_add_ps(sh, exp8(_mm256_sub_ps(hi, m)));
    }
    return tree_add(sl, sh);
}

static void softmax2(float *x, int n, float mx) {
    __m256 sl = _mm256_setzero_ps(), sh = sl, m = _mm256_set1_ps(mx);
    for (int i = 0; i < n; i += 16) {
        __m256 lo, hi;
        load16(x + i, n - i, -INFINITY, &lo, &hi);
        lo = exp8(_mm256_sub_ps(lo, m)), hi = exp8(_mm256_sub_ps(hi, m));
        store16(x + i, n - i, lo, hi);
        sl = _mm256_add_ps(sl, lo), sh = _mm256_add_ps(sh, hi);
    }
    __m256 inv = _mm256_set1_ps(1.0f / tree_add(sl, sh));
    for (int i = 0; i < n; i += 16) {
        __m256 lo, hi;
        load16(x + i, n - i, 0.0f, &lo, &hi);
        store16(x + i, n - i, _mm256_mul_ps(lo, inv), _mm256_mul_ps(hi, inv));
    }
}

static void rmsnorm2(float *y, const float *x, const float *w, int d, float eps) {
    __m256 sl = _mm256_setzero_ps(), sh = sl;
    for (int i = 0; i < d; i += 16) {
        __m256 lo, hi;
        load16(x + i, d - i, 0.0f, &lo, &hi); /* fma(0, 0, s) = s */
        sl = _mm256_fmadd_ps(lo, lo, sl), sh = _mm256_fmadd_ps(hi, hi, sh);
    }
    __m256 inv = _mm256_set1_ps(1.0f / sqrtf(tree_add(sl, sh) / (float)d + eps));
    for (int i = 0; i < d; i += 16) {
        __m256 xl, xh, wl, wh;
        load16(x + i, d - i, 0.0f, &xl, &xh);
        load16(w + i, d - i, 0.0f, &wl, &wh);
        store16(y + i, d - i, _mm256_mul_ps(wl, _mm256_mul_ps(xl, inv)),
                _mm256_mul_ps(wh, _mm256_mul_ps(xh, inv)));
    }
}

INLINE __m256 gelu_v(__m256 x) {
    __m256 y =
        _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                      _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x), _mm256_mul_ps(x, x), x));
    y = _mm256_min_ps(y, _mm256_set1_ps(40.0f));
    __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    __m256 th = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_mul_ps(two, y)), one)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, th));
}

INLINE __m256 relu_v(__m256 x) {
    return _mm256_max_ps(x, _mm256_setzero_ps());
}

#define ELEMENTWISE(NAME, F)                                                                                 \
    static void NAME(float *a, const float *b, size_t n) {                                                   \
        for (size_t i = 0; i < n; i += 16) {                                                                 \
            int m = n - i < 16 ? (int)(n - i) : 16;                                                          \
            __m256 lo, hi;                                                                                   \
            load16(a + i, m, 0.0f, &lo, &hi);                                                                \
            lo = F(lo), hi = F(hi);                                                                          \
            if (b) {                                                                                         \
                __m256 bl, bh;                                                                               \
                load16(b + i, m, 0.0f, &bl, &bh);                                                            \
                lo = _mm256_mul_ps(lo, bl), hi = _mm256_mul_ps(hi, bh);                                      \
            }                                                                                                \
            store16(a + i, m, lo, hi);                                                                       \
        }                                                                                                    \
    }
ELEMENTWISE(gelu2, gelu_v)
ELEMENTWISE(relu2, relu_v)

const t5k_ops t5k_avx2_ops = {gemm2, max2, argmax2, sum_exp2, softmax2, rmsnorm2, gelu2, relu2};
#endif
