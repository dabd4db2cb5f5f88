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

/* y[R rows, P panels of 16 columns] over k in [k0, k1): b at the first panel, panels gs
 * bytes apart, k steps ks bytes apart; the last panel masked by mk when !full. R x P x 2
 * accumulators (at most 12: 6 x 1, 3 x 2, 2 x 2, 1 x 4). Each k step also prefetches
 * the line at pf (advancing pfs bytes a step): the weights the next tiles read from
 * memory, fetched while this one computes. */
INLINE void tile(const int R, const int P, const int dt, const int full, const float *x, size_t ldx, int k0,
                 int k1, const char *b, size_t gs, size_t ks, size_t es, float *y, size_t ldy, mask16 mk,
                 const char *pf, size_t pfs) {
    __m256 lo[6][4], hi[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            int f = full || p < P - 1;
            lo[r][p] = k0 ? loady(y + r * ldy + 16 * p, f, mk.lo) : _mm256_setzero_ps();
            hi[r][p] = k0 ? loady(y + r * ldy + 16 * p + 8, f, mk.hi) : _mm256_setzero_ps();
        }
    const char *bk = b + (size_t)k0 * ks;
    const float *xk = x + k0;
    for (int k = k0; k < k1; k++, bk += ks, xk++, pf += pfs) {
        _mm_prefetch(pf, _MM_HINT_T0);
        __m256 w0[4], w1[4];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            int f = full || p < P - 1;
            w0[p] = load8(bk + p * gs, dt, f, mk.lo), w1[p] = load8(bk + p * gs + 8 * es, dt, f, mk.hi);
        }
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(xk + r * ldx);
#pragma GCC unroll 4
            for (int p = 0; p < P; p++) {
                lo[r][p] = _mm256_fmadd_ps(xv, w0[p], lo[r][p]);
                hi[r][p] = _mm256_fmadd_ps(xv, w1[p], hi[r][p]);
            }
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            int f = full || p < P - 1;
            storey(y + r * ldy + 16 * p, f, mk.lo, lo[r][p]);
            storey(y + r * ldy + 16 * p + 8, f, mk.hi, hi[r][p]);
        }
}

/* Panels of one block (np <= BLOCK of them, the last masked by mk when !FULL) for every row:
 * each panel by tiles of 6 rows (the panel read from L1/L2 once per tile), which also
 * prefetch the block's successor at pf (one panel's worth of lines per panel, spread over
 * the tiles); then the rows left over (1..5) by tiles across several panels, so that
 * each tile still has 8 to 12 independent accumulators. */
enum { BLOCK = 4 };
#define TILE(DT, R, P, FULL_LAST, X, Y, G, MK, PF, PFS)                                                      \
    tile(R, P, DT, FULL_LAST, X, ldx, k0, k1, b + (G)*gs, gs, ks, es, (Y) + 16 * (G), ldy, MK, PF, PFS)
#define ACROSS(DT, FULL, R, P, X, Y)                                                                         \
    do {                                                                                                     \
        int g = 0, nfull = FULL ? np : np - 1;                                                               \
        for (; g + P <= nfull; g += P)                                                                       \
            TILE(DT, R, P, 1, X, Y, g, mk, b, 0);                                                            \
        if (P > 2)                                                                                           \
            for (; g + 2 <= nfull; g += 2)                                                                   \
                TILE(DT, R, 2, 1, X, Y, g, mk, b, 0);                                                        \
        for (; g < nfull; g++)                                                                               \
            TILE(DT, R, 1, 1, X, Y, g, mk, b, 0);                                                            \
        if (g < np) TILE(DT, R, 1, 0, X, Y, g, mk, b, 0);                                                    \
    } while (0)
#define BLOCK_FN(DT, FULL)                                                                                   \
    static void block_##DT##_##FULL(const float *x, size_t ldx, int rows, int k0, int k1, const char *b,     \
                                    int np, size_t gs, size_t ks, size_t es, float *y, size_t ldy,           \
                                    mask16 mk, const char *pf) {                                             \
        int r6 = rows / 6 * 6, t6 = rows / 6;                                                                \
        size_t len = (size_t)(k1 - k0) * ks, pfs = t6 ? (ks + t6 - 1) / t6 : 0;                              \
        for (int g = 0; g < np; g++) {                                                                       \
            const char *pg = pf + g * gs + (size_t)k0 * ks;                                                  \
            for (int r = 0, t = 0; r < r6; r += 6, t++) {                                                    \
                const char *pt = pg + len * t / t6;                                                          \
                if (g < np - 1 || FULL)                                                                      \
                    TILE(DT, 6, 1, 1, x + r * ldx, y + r * ldy, g, mk, pt, pfs);                             \
                else                                                                                         \
                    TILE(DT, 6, 1, 0, x + r * ldx, y + r * ldy, g, mk, pt, pfs);                             \
            }                                                                                                \
        }                                                                                                    \
        const float *xr = x + r6 * ldx;                                                                      \
        float *yr = y + r6 * ldy;                                                                            \
        switch (rows - r6) {                                                                                 \
        case 5:                                                                                              \
            ACROSS(DT, FULL, 5, 1, xr, yr);                                                                  \
            break;                                                                                           \
        case 4:                                                                                              \
            ACROSS(DT, FULL, 4, 1, xr, yr);                                                                  \
            break;                                                                                           \
        case 3:                                                                                              \
            ACROSS(DT, FULL, 3, 2, xr, yr);                                                                  \
            break;                                                                                           \
        case 2:                                                                                              \
            ACROSS(DT, FULL, 2, 2, xr, yr);                                                                  \
            break;                                                                                           \
        case 1:                                                                                              \
            ACROSS(DT, FULL, 1, 4, xr, yr);                                                                  \
            break;                                                                                           \
        }                                                                                                    \
    }
#define BLOCKS(DT) BLOCK_FN(DT, 1) BLOCK_FN(DT, 0)
BLOCKS(ST_F32)
BLOCKS(ST_BF16)
BLOCKS(ST_F16)

typedef void (*block_fn)(const float *, size_t, int, int, int, const char *, int, size_t, size_t, size_t,
                         float *, size_t, mask16, const char *);

static void gemm2(const float *x, size_t ldx, int rows, int k0, int k1, const t5k_bop *b, int c0, int c1,
                  float *y, size_t ldy) {
    block_fn s, sm;
    size_t es = b->dtype == ST_F32 ? 4 : 2;
    if (b->dtype == ST_BF16)
        s = block_ST_BF16_1, sm = block_ST_BF16_0;
    else if (b->dtype == ST_F16)
        s = block_ST_F16_1, sm = block_ST_F16_0;
    else
        s = block_ST_F32_1, sm = block_ST_F32_0;
    size_t gs = b->gs * es, ks = b->ks * es;
    /* packed panels (each panel's k steps contiguous) prefetch the next block of the range;
     * a row-major B (attention) and the range's last block prefetch nothing new */
    int packed = b->gs > b->ks;
    const char *base = b->p;
    int g = c0 / 16, gend = (c1 + 15) / 16;
    for (; g < gend; g += BLOCK) {
        int np = gend - g < BLOCK ? gend - g : BLOCK, last = g + np == gend;
        const char *pf = base + (size_t)g * gs + (packed && !last ? (size_t)np * gs : 0);
        float *yg = y + 16 * g;
        if (last && 16 * gend > c1)
            sm(x, ldx, rows, k0, k1, base + (size_t)g * gs, np, gs, ks, es, yg, ldy,
               mask_of(c1 - 16 * (gend - 1)), pf);
        else
            s(x, ldx, rows, k0, k1, base + (size_t)g * gs, np, gs, ks, es, yg, ldy, mask_of(16), pf);
    }
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
