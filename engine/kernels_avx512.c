/* kernels_avx512.c - the AVX-512 kernels (kernels.h's contract): the product as
 * register tiles of up to 8 rows x 3 column groups (24 zmm accumulators, one
 * output column per lane), weights widened exactly from bf16 / f16 panels, and the
 * 16-lane reductions in one zmm. Bit for bit the results of kernels.c's C code.
 * What it is not: no dispatch (kernels.c), nothing for CPUs without AVX-512. */
#if defined(__x86_64__)
#ifdef T5_EMULATE_AVX512 /* test_engine_isa_emulated: SIMDe's portable AVX-512 (tests/unit) */
#include "simde_avx512.h"
#else
#include <immintrin.h>
#endif

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

/* 16 weights of one k step as float32 (mask: the columns that exist) */
INLINE __m512 load_w(const void *p, int dt, int full, __mmask16 mk) {
    if (dt == ST_F32) return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mk, p);
    __m256i h = _mm256_loadu_si256(p); /* 16-bit panels are padded to whole groups */
    if (dt == ST_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* y[R rows, NP groups] over k in [k0, k1); b at the first group, k step ks bytes,
 * groups gs bytes apart; the last group masked by mk when !full. With PF, each k step
 * also prefetches one line of each of the NP groups at pf (+ p gs), advancing pfs bytes a
 * step: the next strip's weights, fetched from memory while this tile computes. */
INLINE void tile(const int R, const int NP, const int dt, const int full, const int PF, const float *x,
                 size_t ldx, int k0, int k1, const char *b, size_t gs, size_t ks, float *y, size_t ldy,
                 __mmask16 mk, const char *pf, size_t pfs) {
    __m512 acc[8][8]; /* R x NP of them: at most 8 x 3, or 1 x 8 */
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int p = 0; p < NP; p++) {
            __mmask16 m = full || p < NP - 1 ? (__mmask16)0xffff : mk;
            acc[r][p] = k0 ? _mm512_maskz_loadu_ps(m, y + r * ldy + 16 * p) : _mm512_setzero_ps();
        }
    const char *bk = b + (size_t)k0 * ks;
    const float *xk = x + k0;
    for (int k = k0; k < k1; k++, bk += ks, xk++) {
        if (PF) {
#pragma GCC unroll 8
            for (int p = 0; p < NP; p++)
                _mm_prefetch(pf + p * gs, _MM_HINT_T0);
            pf += pfs;
        }
        __m512 w[8];
#pragma GCC unroll 8
        for (int p = 0; p < NP; p++)
            w[p] = load_w(bk + p * gs, dt, full || p < NP - 1, mk);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_set1_ps(xk[r * ldx]);
#pragma GCC unroll 8
            for (int p = 0; p < NP; p++)
                acc[r][p] = _mm512_fmadd_ps(xv, w[p], acc[r][p]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int p = 0; p < NP; p++)
            _mm512_mask_storeu_ps(y + r * ldy + 16 * p, full || p < NP - 1 ? (__mmask16)0xffff : mk,
                                  acc[r][p]);
}

/* the R rows left over; with pf and no 8-row tile (1 to 7 rows: one tile streams the strip from
 * memory), that tile prefetches all of the strip at pf */
#define LEFT(R, NP, DT, FULL)                                                                                \
    do {                                                                                                     \
        if (pf && !t8)                                                                                       \
            tile(R, NP, DT, FULL, 1, x, ldx, k0, k1, b, gs, ks, y, ldy, mk, pf + (size_t)k0 * ks, ks);       \
        else                                                                                                 \
            tile(R, NP, DT, FULL, 0, x, ldx, k0, k1, b, gs, ks, y, ldy, mk, pf, 0);                          \
    } while (0)
/* every row of one column strip of NP groups, 8 rows per tile; with pf (not NULL), the
 * 8-row tiles prefetch the strip at pf over k in [k0, k1), each tile its share of it */
#define STRIP(NP, DT, FULL)                                                                                  \
    static void strip_##NP##_##DT##_##FULL(const float *x, size_t ldx, int rows, int k0, int k1,             \
                                           const char *b, size_t gs, size_t ks, float *y, size_t ldy,        \
                                           __mmask16 mk, const char *pf) {                                   \
        int r = 0, t8 = rows / 8;                                                                            \
        size_t len = (size_t)(k1 - k0) * ks, pfs = t8 ? (ks + t8 - 1) / t8 : 0;                              \
        for (int t = 0; r + 8 <= rows; r += 8, t++)                                                          \
            if (pf)                                                                                          \
                tile(8, NP, DT, FULL, 1, x + r * ldx, ldx, k0, k1, b, gs, ks, y + r * ldy, ldy, mk,          \
                     pf + (size_t)k0 * ks + len * t / t8, pfs);                                              \
            else                                                                                             \
                tile(8, NP, DT, FULL, 0, x + r * ldx, ldx, k0, k1, b, gs, ks, y + r * ldy, ldy, mk, pf, 0);  \
        x += r * ldx, y += r * ldy;                                                                          \
        switch (rows - r) {                                                                                  \
        case 7:                                                                                              \
            LEFT(7, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        case 6:                                                                                              \
            LEFT(6, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        case 5:                                                                                              \
            LEFT(5, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        case 4:                                                                                              \
            LEFT(4, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        case 3:                                                                                              \
            LEFT(3, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        case 2:                                                                                              \
            LEFT(2, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        case 1:                                                                                              \
            LEFT(1, NP, DT, FULL);                                                                           \
            break;                                                                                           \
        }                                                                                                    \
    }
#define STRIPS(DT) STRIP(3, DT, 1) STRIP(2, DT, 1) STRIP(1, DT, 1) STRIP(1, DT, 0)
STRIPS(ST_F32)
STRIPS(ST_BF16)
STRIPS(ST_F16)

typedef void (*strip_fn)(const float *, size_t, int, int, int, const char *, size_t, size_t, float *, size_t,
                         __mmask16, const char *);

/* One row over a row-major B (attention's q . K^T and p V, t5_vecmat): up to 8 groups per
 * tile, the last masked by mk (16-bit B: padded to whole groups), so each k step reads one
 * contiguous stretch of B and 8 independent chains cover the FMA latency; a 3-group strip
 * (3 chains) ran at the latency and read each B row in pieces. Each output's chain is the
 * strips' (k in order), so the same bits. */
#define ROW(NP, DT)                                                                                          \
    static void row_##NP##_##DT(const float *x, int k0, int k1, const char *b, size_t gs, size_t ks,         \
                                float *y, __mmask16 mk) {                                                    \
        tile(1, NP, DT, 0, 0, x, 0, k0, k1, b, gs, ks, y, 0, mk, NULL, 0);                                   \
    }
#define ROWS(DT) ROW(1, DT) ROW(2, DT) ROW(3, DT) ROW(4, DT) ROW(5, DT) ROW(6, DT) ROW(7, DT) ROW(8, DT)
ROWS(ST_F32)
ROWS(ST_BF16)
typedef void (*row_fn)(const float *, int, int, const char *, size_t, size_t, float *, __mmask16);
static const row_fn rows_f32[8] = {row_1_ST_F32, row_2_ST_F32, row_3_ST_F32, row_4_ST_F32,
                                   row_5_ST_F32, row_6_ST_F32, row_7_ST_F32, row_8_ST_F32};
static const row_fn rows_bf16[8] = {row_1_ST_BF16, row_2_ST_BF16, row_3_ST_BF16, row_4_ST_BF16,
                                    row_5_ST_BF16, row_6_ST_BF16, row_7_ST_BF16, row_8_ST_BF16};

/* column strips of 3 groups, then up to two of 2 groups or a single group, a last partial one masked */
static void gemm512(const float *x, size_t ldx, int rows, int k0, int k1, const t5k_bop *b, int c0, int c1,
                    float *y, size_t ldy) {
    strip_fn s3, s2, s1, s1m;
    size_t es = b->dtype == ST_F32 ? 4 : 2;
    if (b->dtype == ST_BF16)
        s3 = strip_3_ST_BF16_1, s2 = strip_2_ST_BF16_1, s1 = strip_1_ST_BF16_1, s1m = strip_1_ST_BF16_0;
    else if (b->dtype == ST_F16)
        s3 = strip_3_ST_F16_1, s2 = strip_2_ST_F16_1, s1 = strip_1_ST_F16_1, s1m = strip_1_ST_F16_0;
    else
        s3 = strip_3_ST_F32_1, s2 = strip_2_ST_F32_1, s1 = strip_1_ST_F32_1, s1m = strip_1_ST_F32_0;
    size_t gs = b->gs * es, ks = b->ks * es;
    /* packed panels (each group's k steps contiguous): each 3- and 2-group strip prefetches as
     * many groups of what follows it in the range (a prefetch past the matrix's end is dropped,
     * never a fault); a row-major B (attention) and the range's last strip prefetch nothing */
    int packed = b->gs > b->ks;
    const char *base = b->p;
    int g = c0 / 16, gfull = c1 / 16, gend = (c1 + 15) / 16;
    if (rows == 1 && !packed && b->dtype != ST_F16) {
        const row_fn *rf = b->dtype == ST_BF16 ? rows_bf16 : rows_f32;
        for (; g < gend; g += 8) {
            int np = gend - g < 8 ? gend - g : 8;
            __mmask16 mk = g + np > gfull ? (__mmask16)((1u << (c1 - 16 * (g + np - 1))) - 1) : 0xffff;
            rf[np - 1](x, k0, k1, base + g * gs, gs, ks, y + 16 * g, mk);
        }
        return;
    }
    for (; g + 3 <= gfull && gfull - g != 4; g += 3)
        s3(x, ldx, rows, k0, k1, base + g * gs, gs, ks, y + 16 * g, ldy, 0xffff,
           packed && g + 3 < gend ? base + (g + 3) * gs : NULL);
    /* four groups left (attention's d_kv = 64, a 1024-column chunk's end): two 2-group strips, two
     * groups: one (16 accumulators each, not 3 + 1 with an 8-accumulator strip) */
    for (; g + 2 <= gfull; g += 2)
        s2(x, ldx, rows, k0, k1, base + g * gs, gs, ks, y + 16 * g, ldy, 0xffff,
           packed && g + 2 < gend ? base + (g + 2) * gs : NULL);
    for (; g < gfull; g++)
        s1(x, ldx, rows, k0, k1, base + g * gs, gs, ks, y + 16 * g, ldy, 0xffff, NULL);
    if (g < gend)
        s1m(x, ldx, rows, k0, k1, base + g * gs, gs, ks, y + 16 * g, ldy,
            (__mmask16)((1u << (c1 - 16 * g)) - 1), NULL);
}

/* ---- reductions and elementwise ---- */

/* the 16-lane tree: l + l+8, + 4, + 2, + 1 */
INLINE float tree_add(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

INLINE float tree_max(__m512 v) { /* vmaxps(lo, hi): hi unless lo is greater, as kernels.c */
    __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

INLINE __mmask16 tail(int n) {
    return (__mmask16)((1u << n) - 1);
}

INLINE __m512 exp512(__m512 x) {
    __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(T5K_LOG2E));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(T5K_EXP_C6), f, _mm512_set1_ps(T5K_EXP_C5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(T5K_EXP_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(T5K_EXP_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(T5K_EXP_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(T5K_EXP_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(ok, p, _mm512_castsi512_ps(e));
}

static float max512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(_mm512_loadu_ps(x + i), m);
    if (i < n) m = _mm512_mask_max_ps(m, tail(n - i), _mm512_maskz_loadu_ps(tail(n - i), x + i), m);
    return tree_max(m);
}

static int argmax512(const float *x, int n) {
    float mx = max512(x, n);
    if (!(mx > -INFINITY)) return 0;
    __m512 vm = _mm512_set1_ps(mx);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), vm, _CMP_EQ_OQ);
        if (eq) return i + __builtin_ctz(eq);
    }
    for (; i < n; i++)
        if (x[i] == mx) return i;
    return 0;
}

static float sum_exp512(const float *x, int n, float mx) {
    __m512 s = _mm512_setzero_ps(), m = _mm512_set1_ps(mx);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_add_ps(s, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), m)));
    if (i < n) {
        __mmask16 mk = tail(n - i);
        s = _mm512_mask_add_ps(s, mk, s, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), m)));
    }
    return tree_add(s);
}

static void softmax512(float *x, int n, float mx) {
    __m512 m = _mm512_set1_ps(mx), s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        _mm512_storeu_ps(x + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < n) {
        __mmask16 mk = tail(n - i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), m));
        _mm512_mask_storeu_ps(x + i, mk, e);
        s = _mm512_mask_add_ps(s, mk, s, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / tree_add(s));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n)
        _mm512_mask_storeu_ps(x + i, tail(n - i),
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(tail(n - i), x + i), inv));
}

static void rmsnorm512(float *y, const float *x, const float *w, int d, float eps) {
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        s = _mm512_fmadd_ps(v, v, s);
    }
    if (i < d) {
        __m512 v = _mm512_maskz_loadu_ps(tail(d - i), x + i);
        s = _mm512_mask3_fmadd_ps(v, v, s, tail(d - i));
    }
    __m512 inv = _mm512_set1_ps(1.0f / sqrtf(tree_add(s) / (float)d + eps));
    for (i = 0; i + 16 <= d; i += 16)
        _mm512_storeu_ps(y + i,
                         _mm512_mul_ps(_mm512_loadu_ps(w + i), _mm512_mul_ps(_mm512_loadu_ps(x + i), inv)));
    if (i < d) {
        __mmask16 mk = tail(d - i);
        _mm512_mask_storeu_ps(y + i, mk,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, w + i),
                                            _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), inv)));
    }
}

INLINE __m512 gelu_v(__m512 x) {
    __m512 y =
        _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                      _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x), _mm512_mul_ps(x, x), x));
    y = _mm512_min_ps(y, _mm512_set1_ps(40.0f));
    __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
    __m512 th = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp512(_mm512_mul_ps(two, y)), one)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(one, th));
}

INLINE __m512 relu_v(__m512 x) {
    return _mm512_max_ps(x, _mm512_setzero_ps());
}

#define ELEMENTWISE(NAME, F)                                                                                 \
    static void NAME(float *a, const float *b, size_t n) {                                                   \
        size_t i = 0;                                                                                        \
        for (; i + 16 <= n; i += 16) {                                                                       \
            __m512 v = F(_mm512_loadu_ps(a + i));                                                            \
            _mm512_storeu_ps(a + i, b ? _mm512_mul_ps(v, _mm512_loadu_ps(b + i)) : v);                       \
        }                                                                                                    \
        if (i < n) {                                                                                         \
            __mmask16 mk = tail((int)(n - i));                                                               \
            __m512 v = F(_mm512_maskz_loadu_ps(mk, a + i));                                                  \
            _mm512_mask_storeu_ps(a + i, mk, b ? _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, b + i)) : v);    \
        }                                                                                                    \
    }
ELEMENTWISE(gelu512, gelu_v)
ELEMENTWISE(relu512, relu_v)

const t5k_ops t5k_avx512_ops = {gemm512,    max512,     argmax512, sum_exp512,
                                softmax512, rmsnorm512, gelu512,   relu512};
#endif
