/* kernels.c - the numeric building blocks of the T5 forward pass: matmul against
 * [out, in] weight matrices (our weight-streaming AVX-512 / AVX2 kernels, chosen at
 * run time and split over the pool; OpenBLAS without them), a vector-matrix product
 * for attention, RMSNorm, activations, softmax, argmax, logsumexp and the relative
 * position buckets.
 * All math is float32 as transformers does it.
 * What it is not: no model structure here (encoder.c, decoder.c). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "t5_dev.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define T5_X86 1
#endif

/* Products go through our weight-streaming kernels at every row count: one decoder
 * row or a thousand encoder tokens (in blocks of 64 rows). They beat OpenBLAS's packed
 * sgemm on these shapes here (`t5 bench engine`), and each output element is the same
 * dot product whatever the other rows are, so a sequence's result does not depend on
 * what it is batched with; OpenBLAS's does (its edge kernels depend on the row count).
 * OpenBLAS remains for CPUs without AVX2 (column blocks over our pool when it is
 * single-threaded, as the applications set it; one call split by its own threads
 * otherwise) and for the encoder's attention products. */

int t5_cpu_simd(void) {
#ifdef T5_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
    return 0;
}

static int simd_now(void) {
#ifdef T5_X86
    return __builtin_cpu_supports("avx512f") ? 3 : 0;
#else
    return 0;
#endif
}

/* ---- streaming matmul: y[r, j] = x[r, :] . w[j, :] for j in [j0, j1) ---- */

#ifdef T5_X86
__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* tile: 4 weight rows x 2 input rows (8 accumulators of the 16 ymm registers) */
__attribute__((target("avx2,fma"))) static void mm_avx2(const float *x, int rows, int k, const float *w,
                                                        float *y, int ldy, int j0, int j1) {
    int k8 = k & ~7;
    int j = j0;
    for (; j + 4 <= j1; j += 4) {
        const float *w0 = w + (size_t)j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        int r = 0;
        for (; r + 2 <= rows; r += 2) {
            const float *xa = x + (size_t)r * k, *xb = xa + k;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int i = 0; i < k8; i += 8) {
                __m256 va = _mm256_loadu_ps(xa + i), vb = _mm256_loadu_ps(xb + i), t;
                t = _mm256_loadu_ps(w0 + i), a0 = _mm256_fmadd_ps(t, va, a0), b0 = _mm256_fmadd_ps(t, vb, b0);
                t = _mm256_loadu_ps(w1 + i), a1 = _mm256_fmadd_ps(t, va, a1), b1 = _mm256_fmadd_ps(t, vb, b1);
                t = _mm256_loadu_ps(w2 + i), a2 = _mm256_fmadd_ps(t, va, a2), b2 = _mm256_fmadd_ps(t, vb, b2);
                t = _mm256_loadu_ps(w3 + i), a3 = _mm256_fmadd_ps(t, va, a3), b3 = _mm256_fmadd_ps(t, vb, b3);
            }
            float s[8] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3),
                          hsum8(b0), hsum8(b1), hsum8(b2), hsum8(b3)};
            for (int i = k8; i < k; i++) {
                s[0] += w0[i] * xa[i], s[1] += w1[i] * xa[i], s[2] += w2[i] * xa[i], s[3] += w3[i] * xa[i];
                s[4] += w0[i] * xb[i], s[5] += w1[i] * xb[i], s[6] += w2[i] * xb[i], s[7] += w3[i] * xb[i];
            }
            memcpy(y + (size_t)r * ldy + j, s, 4 * sizeof(float));
            memcpy(y + (size_t)(r + 1) * ldy + j, s + 4, 4 * sizeof(float));
        }
        for (; r < rows; r++) {
            const float *xa = x + (size_t)r * k;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < k8; i += 8) {
                __m256 va = _mm256_loadu_ps(xa + i);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), va, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), va, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), va, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), va, a3);
            }
            float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
            for (int i = k8; i < k; i++)
                s[0] += w0[i] * xa[i], s[1] += w1[i] * xa[i], s[2] += w2[i] * xa[i], s[3] += w3[i] * xa[i];
            memcpy(y + (size_t)r * ldy + j, s, sizeof s);
        }
    }
    for (; j < j1; j++) { /* leftover weight rows: the same sums as inside a tile */
        const float *w0 = w + (size_t)j * k;
        for (int r = 0; r < rows; r++) {
            const float *xa = x + (size_t)r * k;
            __m256 a0 = _mm256_setzero_ps();
            for (int i = 0; i < k8; i += 8)
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), _mm256_loadu_ps(xa + i), a0);
            float s0 = hsum8(a0);
            for (int i = k8; i < k; i++)
                s0 += w0[i] * xa[i];
            y[(size_t)r * ldy + j] = s0;
        }
    }
}

/* Weights as float32, or as bfloat16 / float16 widened exactly (bf16: bits << 16; f16:
 * vcvtph2ps; rows a multiple of 16 values, so no tail). */
#define LOADW_f32(mk, p) _mm512_maskz_loadu_ps(mk, p)
#define LOADW_bf16(mk, p)                                                                                    \
    _mm512_castsi512_ps(                                                                                     \
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define LOADW_f16(mk, p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))

/* tile: 4 weight rows x NR input rows (NR = 1..4, a literal: 4 x NR accumulators in zmm registers) */
#define TILE512(NR, WT, TYPE)                                                                                \
    __attribute__((target("avx512f"))) static void tile512_##WT##_##NR(                                      \
        const float *x, int r, int k, const TYPE *w0, float *y, int ldy, int j) {                            \
        int k16 = k & ~15;                                                                                   \
        __mmask16 tail = (__mmask16)((1u << (k - k16)) - 1);                                                 \
        const TYPE *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;                                                 \
        const float *x0 = x + (size_t)r * k, *x1 = x0 + (NR > 1 ? k : 0), *x2 = x0 + (NR > 2 ? 2 * k : 0),   \
                    *x3 = x0 + (NR > 3 ? 3 * k : 0);                                                         \
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,  \
               a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00,       \
               a33 = a00;                                                                                    \
        for (int i = 0; i <= k16; i += 16) {                                                                 \
            __mmask16 mk = i < k16 ? (__mmask16)0xffff : tail;                                               \
            if (!mk) break;                                                                                  \
            if (r == 0) { /* first pass over these weight rows: fetch the next tile's rows ahead */          \
                _mm_prefetch((const char *)(w0 + 4 * k + i), _MM_HINT_T0);                                   \
                _mm_prefetch((const char *)(w1 + 4 * k + i), _MM_HINT_T0);                                   \
                _mm_prefetch((const char *)(w2 + 4 * k + i), _MM_HINT_T0);                                   \
                _mm_prefetch((const char *)(w3 + 4 * k + i), _MM_HINT_T0);                                   \
            }                                                                                                \
            __m512 v0 = LOADW_##WT(mk, w0 + i), v1 = LOADW_##WT(mk, w1 + i), v2 = LOADW_##WT(mk, w2 + i),    \
                   v3 = LOADW_##WT(mk, w3 + i), xv;                                                          \
            xv = _mm512_maskz_loadu_ps(mk, x0 + i);                                                          \
            a00 = _mm512_fmadd_ps(v0, xv, a00), a01 = _mm512_fmadd_ps(v1, xv, a01);                          \
            a02 = _mm512_fmadd_ps(v2, xv, a02), a03 = _mm512_fmadd_ps(v3, xv, a03);                          \
            if (NR > 1) {                                                                                    \
                xv = _mm512_maskz_loadu_ps(mk, x1 + i);                                                      \
                a10 = _mm512_fmadd_ps(v0, xv, a10), a11 = _mm512_fmadd_ps(v1, xv, a11);                      \
                a12 = _mm512_fmadd_ps(v2, xv, a12), a13 = _mm512_fmadd_ps(v3, xv, a13);                      \
            }                                                                                                \
            if (NR > 2) {                                                                                    \
                xv = _mm512_maskz_loadu_ps(mk, x2 + i);                                                      \
                a20 = _mm512_fmadd_ps(v0, xv, a20), a21 = _mm512_fmadd_ps(v1, xv, a21);                      \
                a22 = _mm512_fmadd_ps(v2, xv, a22), a23 = _mm512_fmadd_ps(v3, xv, a23);                      \
            }                                                                                                \
            if (NR > 3) {                                                                                    \
                xv = _mm512_maskz_loadu_ps(mk, x3 + i);                                                      \
                a30 = _mm512_fmadd_ps(v0, xv, a30), a31 = _mm512_fmadd_ps(v1, xv, a31);                      \
                a32 = _mm512_fmadd_ps(v2, xv, a32), a33 = _mm512_fmadd_ps(v3, xv, a33);                      \
            }                                                                                                \
        }                                                                                                    \
        float *y0 = y + (size_t)r * ldy + j;                                                                 \
        y0[0] = _mm512_reduce_add_ps(a00), y0[1] = _mm512_reduce_add_ps(a01);                                \
        y0[2] = _mm512_reduce_add_ps(a02), y0[3] = _mm512_reduce_add_ps(a03);                                \
        if (NR > 1) {                                                                                        \
            y0 += ldy;                                                                                       \
            y0[0] = _mm512_reduce_add_ps(a10), y0[1] = _mm512_reduce_add_ps(a11);                            \
            y0[2] = _mm512_reduce_add_ps(a12), y0[3] = _mm512_reduce_add_ps(a13);                            \
        }                                                                                                    \
        if (NR > 2) {                                                                                        \
            y0 += ldy;                                                                                       \
            y0[0] = _mm512_reduce_add_ps(a20), y0[1] = _mm512_reduce_add_ps(a21);                            \
            y0[2] = _mm512_reduce_add_ps(a22), y0[3] = _mm512_reduce_add_ps(a23);                            \
        }                                                                                                    \
        if (NR > 3) {                                                                                        \
            y0 += ldy;                                                                                       \
            y0[0] = _mm512_reduce_add_ps(a30), y0[1] = _mm512_reduce_add_ps(a31);                            \
            y0[2] = _mm512_reduce_add_ps(a32), y0[3] = _mm512_reduce_add_ps(a33);                            \
        }                                                                                                    \
    }

/* y[r, j] for j in [j0, j1): tiles of 4 weight rows; leftover rows make the same sums */
#define MM512(WT, TYPE)                                                                                      \
    __attribute__((target("avx512f"))) static void mm_avx512_##WT(                                           \
        const float *x, int rows, int k, const TYPE *w, float *y, int ldy, int j0, int j1) {                 \
        int k16 = k & ~15;                                                                                   \
        __mmask16 tail = (__mmask16)((1u << (k - k16)) - 1);                                                 \
        int j = j0;                                                                                          \
        for (; j + 4 <= j1; j += 4) {                                                                        \
            const TYPE *w0 = w + (size_t)j * k;                                                              \
            int r = 0;                                                                                       \
            for (; r + 4 <= rows; r += 4)                                                                    \
                tile512_##WT##_4(x, r, k, w0, y, ldy, j);                                                    \
            switch (rows - r) {                                                                              \
            case 3:                                                                                          \
                tile512_##WT##_3(x, r, k, w0, y, ldy, j);                                                    \
                break;                                                                                       \
            case 2:                                                                                          \
                tile512_##WT##_2(x, r, k, w0, y, ldy, j);                                                    \
                break;                                                                                       \
            case 1:                                                                                          \
                tile512_##WT##_1(x, r, k, w0, y, ldy, j);                                                    \
                break;                                                                                       \
            default:                                                                                         \
                break;                                                                                       \
            }                                                                                                \
        }                                                                                                    \
        for (; j < j1; j++) {                                                                                \
            const TYPE *wj = w + (size_t)j * k;                                                              \
            for (int r = 0; r < rows; r++) {                                                                 \
                const float *xr = x + (size_t)r * k;                                                         \
                __m512 a = _mm512_setzero_ps();                                                              \
                for (int i = 0; i <= k16; i += 16) {                                                         \
                    __mmask16 mk = i < k16 ? (__mmask16)0xffff : tail;                                       \
                    if (!mk) break;                                                                          \
                    a = _mm512_fmadd_ps(LOADW_##WT(mk, wj + i), _mm512_maskz_loadu_ps(mk, xr + i), a);       \
                }                                                                                            \
                y[(size_t)r * ldy + j] = _mm512_reduce_add_ps(a);                                            \
            }                                                                                                \
        }                                                                                                    \
    }
/* the four tiles and the product, for each weight type */
#define KERNELS512(WT, TYPE)                                                                                 \
    TILE512(1, WT, TYPE) TILE512(2, WT, TYPE) TILE512(3, WT, TYPE) TILE512(4, WT, TYPE) MM512(WT, TYPE)
KERNELS512(f32, float)
KERNELS512(bf16, uint16_t)
KERNELS512(f16, uint16_t)

/* ---- vector-matrix product, for attention ---- */

/* y[m] = sum_{t < T} a[t] * b[t * ldb + 0..m): 16 outputs per vector, four accumulators
 * over t to hide the FMA latency, no horizontal sums. */
__attribute__((target("avx512f"))) static void vecmat512(const float *a, int T, const float *b, int ldb,
                                                         int m, float *y) {
    for (int c = 0; c < m; c += 16) {
        __mmask16 mk = m - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (m - c)) - 1);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *bc = b + c;
        int t = 0;
        for (; t + 4 <= T; t += 4, bc += 4 * (size_t)ldb) {
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(a[t]), _mm512_maskz_loadu_ps(mk, bc), a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(a[t + 1]), _mm512_maskz_loadu_ps(mk, bc + ldb), a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(a[t + 2]), _mm512_maskz_loadu_ps(mk, bc + 2 * (size_t)ldb),
                                 a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(a[t + 3]), _mm512_maskz_loadu_ps(mk, bc + 3 * (size_t)ldb),
                                 a3);
        }
        for (; t < T; t++, bc += ldb)
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(a[t]), _mm512_maskz_loadu_ps(mk, bc), a0);
        _mm512_mask_storeu_ps(y + c, mk, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

/* exp(x) for x <= 0 region and beyond: 2^(x log2 e) = 2^n * 2^f, f in [-0.5, 0.5], degree-6
 * polynomial (relative error ~2e-7); -inf gives 0. */
__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) static double sumexp512(const float *x, int n, float mx) {
    __m512 s = _mm512_setzero_ps(), m = _mm512_set1_ps(mx);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        s = _mm512_add_ps(s, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), m)));
    double tot = _mm512_reduce_add_ps(s);
    for (; i < n; i++)
        tot += expf(x[i] - mx);
    return tot;
}

/* gelu_new (tanh form), optionally times b: tanh(y) = 1 - 2 / (exp(2y) + 1) */
__attribute__((target("avx512f"))) static void gelu512(float *a, const float *b, size_t n) {
    const __m512 c = _mm512_set1_ps(0.7978845608028654f), k = _mm512_set1_ps(0.044715f),
                 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(a + i);
        __m512 y = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_mul_ps(k, x), _mm512_mul_ps(x, x), x));
        y = _mm512_min_ps(y, _mm512_set1_ps(40.0f));
        __m512 th = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp512(_mm512_mul_ps(two, y)), one)));
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, th));
        if (b) v = _mm512_mul_ps(v, _mm512_loadu_ps(b + i));
        _mm512_storeu_ps(a + i, v);
    }
    for (; i < n; i++) {
        float x = a[i], v = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * (x * x * x))));
        a[i] = b ? v * b[i] : v;
    }
}

__attribute__((target("avx512f"))) static float max512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    float r = _mm512_reduce_max_ps(m);
    for (; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

/* first index of the maximum: the maximum (NaNs skipped), then the first lane equal to it */
__attribute__((target("avx512f"))) static int argmax512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(_mm512_loadu_ps(x + i), m); /* a NaN lane keeps m */
    float mx = _mm512_reduce_max_ps(m);
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    if (!(mx > -INFINITY)) return 0;
    __m512 vm = _mm512_set1_ps(mx);
    for (i = 0; i + 16 <= n; i += 16) {
        __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), vm, _CMP_EQ_OQ);
        if (eq) return i + __builtin_ctz(eq);
    }
    for (; i < n; i++)
        if (x[i] == mx) return i;
    return 0;
}

/* softmax with the vector exp (relative error ~2e-7) */
__attribute__((target("avx512f"))) static void softmax512(float *x, int n, float mx) {
    __m512 m = _mm512_set1_ps(mx), s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        _mm512_storeu_ps(x + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < n) {
        __mmask16 mk = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), m));
        _mm512_mask_storeu_ps(x + i, mk, e);
        s = _mm512_add_ps(s, _mm512_maskz_mov_ps(mk, e));
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n) {
        __mmask16 mk = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), inv));
    }
}
#endif

/* ---- int8: y[r, j] = (xq[r, :] . w[j, :]) * xs[r] * ws[j], exact int32 dot products ---- */

/* The reference of the int8 compute type, not yet fast (the VNNI / AMX kernels of the
 * packed layout replace it): one int32 dot product per output, in plain C or with AVX2's
 * vpmaddwd on sign-extended values; integer sums are exact, so both give the same bits. */
static int32_t dot_i8(const int8_t *a, const int8_t *b, int k) {
    int32_t acc = 0;
    for (int i = 0; i < k; i++)
        acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}

#ifdef T5_X86
__attribute__((target("avx2"))) static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, int k) {
    __m256i acc = _mm256_setzero_si256();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s) + dot_i8(a + i, b + i, k - i);
}
#endif

static void mm_i8(int simd, const int8_t *xq, const float *xs, int rows, int k, const int8_t *w,
                  const float *ws, float *y, int ldy, int j0, int j1) {
    (void)simd; /* x86 only */
    for (int j = j0; j < j1; j++) {
        const int8_t *wj = w + (size_t)j * k;
        for (int r = 0; r < rows; r++) {
            const int8_t *xr = xq + (size_t)r * k;
#ifdef T5_X86
            int32_t acc = simd >= 2 ? dot_i8_avx2(xr, wj, k) : dot_i8(xr, wj, k);
#else
            int32_t acc = dot_i8(xr, wj, k);
#endif
            y[(size_t)r * ldy + j] = (float)acc * (xs[r] * ws[j]);
        }
    }
}

typedef struct {
    const t5_model *m;
    t5_pool *pool;
    const float *x;
    const int8_t *xq; /* [rows, k] x quantized per row, when an output is int8 */
    const float *xs;  /* [rows] their scales */
    int rows, k;
    const t5_mm_out *outs;
    int n_outs;
    int total; /* sum of outs[i].n */
    int chunk; /* output rows per work item, a multiple of 16 */
} mm_job;

static void mm_part(const mm_job *jb, int o, int j0, int j1) {
    const t5_mm_out *out = &jb->outs[o];
    int k = jb->k;
    if (out->w.dtype == ST_I8) {
        mm_i8(jb->m->simd, jb->xq, jb->xs, jb->rows, k, out->w.p, out->w.scale, out->y, out->n, j0, j1);
        return;
    }
    if (jb->m->simd == 0) { /* a column block of the product, OpenBLAS on this thread */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, jb->rows, j1 - j0, k, 1.0f, jb->x, k,
                    (const float *)out->w.p + (size_t)j0 * k, k, 0.0f, out->y + j0, out->n);
        return;
    }
#ifdef T5_X86                                   /* (simd is 0 elsewhere) */
    for (int r0 = 0; r0 < jb->rows; r0 += 64) { /* 64 input rows stay in cache across the weight rows */
        int nr = jb->rows - r0 < 64 ? jb->rows - r0 : 64;
        const float *x = jb->x + (size_t)r0 * k;
        float *y = out->y + (size_t)r0 * out->n;
        if (out->w.dtype == ST_BF16)
            mm_avx512_bf16(x, nr, k, out->w.p, y, out->n, j0, j1);
        else if (out->w.dtype == ST_F16)
            mm_avx512_f16(x, nr, k, out->w.p, y, out->n, j0, j1);
        else if (jb->m->simd == 3)
            mm_avx512_f32(x, nr, k, out->w.p, y, out->n, j0, j1);
        else
            mm_avx2(x, nr, k, out->w.p, y, out->n, j0, j1);
    }
#endif
}

/* Work items are chunks of `chunk` rows of the concatenated outputs. */
static void mm_worker(void *arg, int ith, int nth) {
    const mm_job *jb = arg;
    (void)ith, (void)nth;
    int n_items = (jb->total + jb->chunk - 1) / jb->chunk;
    for (int it; (it = t5_pool_next(jb->pool)) < n_items;) {
        int g0 = it * jb->chunk, g1 = g0 + jb->chunk < jb->total ? g0 + jb->chunk : jb->total;
        int base = 0;
        for (int o = 0; o < jb->n_outs && base < g1; o++) {
            int n = jb->outs[o].n;
            int a = g0 > base ? g0 - base : 0, b = g1 - base < n ? g1 - base : n;
            if (a < b) mm_part(jb, o, a, b);
            base += n;
        }
    }
}

/* The activations as the compute type multiplies them (t5.h): bfloat16 rounds them to
 * bfloat16 values (*xr, rows x k floats), int8 quantizes them per row when an output is
 * int8 (*xq, *xs). Returns 0, or -1 out of memory (buffers the caller frees). */
static int prepare_x(const t5_model *m, const float *x, int rows, int k, const t5_mm_out *outs, int n_outs,
                     float **xr, int8_t **xq, float **xs) {
    size_t n = (size_t)rows * k;
    if (m->lp.compute_type == T5_COMPUTE_BFLOAT16) {
        if (!(*xr = malloc(n * sizeof **xr))) return -1;
        for (size_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)t5_float_to_bf16(x[i]) << 16;
            memcpy(&(*xr)[i], &b, 4);
        }
    }
    int any_i8 = 0;
    for (int i = 0; i < n_outs; i++)
        any_i8 |= outs[i].w.dtype == ST_I8;
    if (!any_i8) return 0;
    *xq = malloc(n);
    *xs = malloc((size_t)rows * sizeof **xs);
    if (!*xq || !*xs) return -1;
    for (int r = 0; r < rows; r++)
        t5_quantize_row_i8(x + (size_t)r * k, k, *xq + (size_t)r * k, &(*xs)[r]);
    return 0;
}

int t5_matmul(const t5_model *m, t5_pool *pool, const float *x, int rows, int k, const t5_mm_out *outs,
              int n_outs) {
    if (rows <= 0) return 0;
    float *xr = NULL, *xs = NULL;
    int8_t *xq = NULL;
    if (prepare_x(m, x, rows, k, outs, n_outs, &xr, &xq, &xs) != 0) {
        free(xr), free(xq), free(xs);
        return -1;
    }
    if (xr) x = xr;
    int nth = t5_pool_threads(pool);
    if (m->simd == 0 && !xq && (nth == 1 || openblas_get_num_threads() > 1)) { /* OpenBLAS splits it */
        for (int i = 0; i < n_outs; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, outs[i].n, k, 1.0f, x, k,
                        (const float *)outs[i].w.p, k, 0.0f, outs[i].y, outs[i].n);
        free(xr);
        return 0;
    }
    mm_job jb = {m, pool, x, xq, xs, rows, k, outs, n_outs, 0, 0};
    for (int i = 0; i < n_outs; i++)
        jb.total += outs[i].n;
    /* our kernels: ~8 items per thread, 16..256 weight rows each; OpenBLAS column blocks:
     * one item per thread, a multiple of 64 columns */
    int chunk = m->simd == 0 ? (jb.total / nth + 63) & ~63 : (jb.total / (8 * nth) + 15) & ~15;
    jb.chunk = m->simd == 0 ? (chunk < 64 ? 64 : chunk) : chunk < 16 ? 16 : chunk > 256 ? 256 : chunk;
    t5_pool_run(pool, mm_worker, &jb);
    free(xr), free(xq), free(xs);
    return 0;
}

void t5_vecmat(const float *a, int T, const float *b, int ldb, int m, float *y) {
#ifdef T5_X86
    if (simd_now() == 3) return vecmat512(a, T, b, ldb, m, y);
#endif
    for (int c = 0; c < m; c++)
        y[c] = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < m; c++)
            y[c] += a[t] * b[(size_t)t * ldb + c];
}

float t5_max(const float *x, int n) {
#ifdef T5_X86
    if (simd_now() == 3) return max512(x, n);
#endif
    float r = -INFINITY;
    for (int i = 0; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

double t5_sum_exp(const float *x, int n, float mx) {
#ifdef T5_X86
    if (simd_now() == 3) return sumexp512(x, n, mx);
#endif
    double s = 0;
    for (int i = 0; i < n; i++)
        s += expf(x[i] - mx);
    return s;
}

void t5_rmsnorm(float *y, const float *x, const float *w, int rows, int d, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        double ss = 0;
        for (int i = 0; i < d; i++)
            ss += (double)xr[i] * xr[i];
        float var = (float)(ss / d);
        float inv = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < d; i++)
            yr[i] = w[i] * (xr[i] * inv);
    }
}

void t5_activate(int act, float *a, const float *b, size_t n) {
#ifdef T5_X86
    if (act == T5_ACT_GELU_NEW && simd_now() == 3) return gelu512(a, b, n);
#endif
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        float x = a[i], v;
        switch (act) {
        case T5_ACT_GELU_NEW:
            v = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * (x * x * x))));
            break;
        case T5_ACT_GELU:
            v = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
            break;
        case T5_ACT_SILU:
            v = x / (1.0f + expf(-x));
            break;
        default:
            v = x > 0 ? x : 0;
            break;
        }
        a[i] = b ? v * b[i] : v;
    }
}

int t5_argmax(const float *x, int V) {
#ifdef T5_X86
    if (simd_now() == 3) return argmax512(x, V);
#endif
    int best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < V; i++)
        if (x[i] > bv) bv = x[i], best = i;
    return best;
}

void t5_softmax_fast(float *x, int n) {
#ifdef T5_X86
    if (simd_now() == 3) {
        float mx = max512(x, n);
        if (mx > -INFINITY) return softmax512(x, n, mx);
    }
#endif
    t5_softmax(x, n);
}

void t5_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) { /* everything masked: uniform, as no valid choice exists */
        for (int i = 0; i < n; i++)
            x[i] = 1.0f / n;
        return;
    }
    float s = 0;
    for (int i = 0; i < n; i++)
        s += (x[i] = expf(x[i] - mx));
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

float t5_logsumexp(const float *x, int n) {
    float mx = t5_max(x, n);
    if (mx == -INFINITY) return -INFINITY;
    return mx + (float)log(t5_sum_exp(x, n, mx));
}

int t5_rel_bucket(int rel, int bidirectional, int num_buckets, int max_distance) {
    int bucket = 0, n = num_buckets, rp;
    if (bidirectional) {
        n /= 2;
        if (rel > 0) bucket += n;
        rp = rel < 0 ? -rel : rel;
    } else
        rp = rel < 0 ? -rel : 0;
    int max_exact = n / 2;
    if (rp < max_exact) return bucket + rp;
    if (max_exact == 0) return bucket + (n > 0 ? n - 1 : 0);
    /* float32 like torch: log(rp / max_exact) / log(max_distance / max_exact) * (n - max_exact) */
    float denom = (float)log((double)max_distance / max_exact);
    float v = logf((float)rp / (float)max_exact) / denom * (float)(n - max_exact);
    long large = max_exact + (long)v;
    if (large > n - 1) large = n - 1;
    return bucket + (int)large;
}
