/* kernels_i8_avx2.c - the int8 product on AVX2 (t5_dev.h's definition, bit for bit):
 * exact without VNNI by vpmaddwd on sign-extended values (vpmaddubsw would saturate
 * int16): the weights of one k group of 4 (16 bytes: 4 columns x 4 k) widened to int16
 * (vpmovsxbw), the 4 activations of a row (int16, quantized in that layout by
 * t5_quantize_x_i8) broadcast as 64 bits, vpmaddwd + vpaddd into int32 lanes that hold
 * 2 partial sums per column; each group of T5_I8_GROUP k values ends with vphaddd
 * (exact) and the float epilogue fma((float)acc, xs * ws, s). Register tiles: 6 rows x 8
 * columns (half a panel: 12 int32 accumulators, the float sums in L1 between groups), 1 row
 * x 16 columns when the product has one row (each panel's cache lines read once). a16
 * activations take the same path: a lane's 32 products of at most 32512 x 127 stay below
 * 2^28, the group sum below 2^29 (exact in int32).
 * What it is not: no dispatch (kernels_i8.c). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels_i8.h"

#define INLINE static inline __attribute__((always_inline))

enum { TR = 6 }; /* rows per tile: 12 int32 accumulators, 2 weight, 1 broadcast and 1 product register */

/* acc += vpmaddwd(w, x), the add in place: GCC otherwise adds into the product's register
 * and copies back (a move per accumulator and step, and spills in the 4-row tile) */
INLINE __m256i madd_acc(__m256i acc, __m256i w, __m256i x) {
    __m256i t = _mm256_madd_epi16(w, x);
    __asm__("vpaddd %1, %0, %0" : "+x"(acc) : "x"(t));
    return acc;
}

/* y[R rows, the first nc of 8 NH columns] from the panel bytes pw (at the first column's
 * half), activations x (rows ldq apart), their group scales xs (rows ng apart), the weights'
 * group scales ws (at the first column's; groups 16 apart). pf, unless NULL: the next panel,
 * whose line of each k group of 4 this tile prefetches as it reads its own (the weights
 * stream from memory once per panel; the panel's later tiles find them in cache). */
INLINE void tile(const int R, const int NH, const int16_t *x, size_t ldq, const float *xs, int ng,
                 const int8_t *pw, int kq, const float *ws, float *y, size_t ldy, int nc, const int8_t *pf) {
    /* the float sums stay in memory (L1) between groups: the inner loop needs all 16 registers */
    float sb[TR][2][8];
    memset(sb, 0, sizeof sb);
    for (int g = 0; g < ng; g++) {
        int q0 = g * (T5_I8_GROUP / 4), q1 = q0 + T5_I8_GROUP / 4 < kq ? q0 + T5_I8_GROUP / 4 : kq;
        __m256i a[TR][2][2];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++)
                a[r][h][0] = a[r][h][1] = _mm256_setzero_si256();
        const int8_t *pq = pw + (size_t)q0 * 64;
        const int16_t *xq = x + 4 * (size_t)q0;
        for (int q = q0; q < q1; q++, pq += 64, xq += 4) {
            __m256i wv[2][2];
            if (pf) _mm_prefetch((const char *)(pf + (size_t)q * 64), _MM_HINT_T0);
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                wv[h][0] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(pq + 32 * h)));
                wv[h][1] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(pq + 32 * h + 16)));
            }
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                long long x4;
                memcpy(&x4, xq + (size_t)r * ldq, 8);
                __m256i xb = _mm256_set1_epi64x(x4);
#pragma GCC unroll 2
                for (int h = 0; h < NH; h++) {
                    a[r][h][0] = madd_acc(a[r][h][0], wv[h][0], xb);
                    a[r][h][1] = madd_acc(a[r][h][1], wv[h][1], xb);
                }
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m256 sc = _mm256_set1_ps(xs[(size_t)r * ng + g]);
#pragma GCC unroll 2
            for (int h = 0; h < NH; h++) {
                /* lanes (c0 c0' c1 c1' | c2 ..) + (c4 ..): hadd -> c0 c1 c4 c5 | c2 c3 c6 c7 */
                __m256i t = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[r][h][0], a[r][h][1]), 0xd8);
                __m256 f = _mm256_mul_ps(sc, _mm256_loadu_ps(ws + (size_t)g * T5_PANEL + 8 * h));
                _mm256_storeu_ps(sb[r][h],
                                 _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), f, _mm256_loadu_ps(sb[r][h])));
            }
        }
        __asm__("" : "+m"(sb)); /* kept in memory */
    }
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 2
    for (int h = 0; h < NH; h++) {
        if (8 * h >= nc) break;
        __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8 * h), idx);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m256 v = _mm256_loadu_ps(sb[r][h]);
            if (nc - 8 * h >= 8)
                _mm256_storeu_ps(y + (size_t)r * ldy + 8 * h, v);
            else
                _mm256_maskstore_ps(y + (size_t)r * ldy + 8 * h, mk, v);
        }
    }
}

static void gemm_i8_avx2(const t5k_xq *x, int rows, const t5_mat *w, int c0, int c1, float *y, size_t ldy) {
    int kq = (w->k + 3) / 4, ng = x->ng;
    const int16_t *xq = x->q;
    size_t ldq = x->ldq;
    for (int p = c0 / T5_PANEL; p * T5_PANEL < c1; p++) {
        const int8_t *pw = (const int8_t *)w->p + (size_t)p * kq * 64;
        const float *ws = w->scale + (size_t)p * ng * T5_PANEL; /* the panel's group scales */
        float *yp = y + (size_t)p * T5_PANEL;
        int nc = c1 - p * T5_PANEL < T5_PANEL ? c1 - p * T5_PANEL : T5_PANEL;
        const int8_t *pf = (p + 1) * T5_PANEL < c1 ? pw + (size_t)kq * 64 : NULL;
        if (rows == 1) {
            if (nc > 8)
                tile(1, 2, xq, ldq, x->s, ng, pw, kq, ws, yp, ldy, nc, pf);
            else
                tile(1, 1, xq, ldq, x->s, ng, pw, kq, ws, yp, ldy, nc, pf);
            continue;
        }
        for (int h = 0; 8 * h < nc; h++) {
            int nh = nc - 8 * h < 8 ? nc - 8 * h : 8, r = 0;
            const int8_t *ph = pw + 32 * h;
            for (; r + TR <= rows; r += TR, pf = NULL) /* the panel's first tile prefetches */
                tile(TR, 1, xq + r * ldq, ldq, x->s + (size_t)r * ng, ng, ph, kq, ws + 8 * h,
                     yp + r * ldy + 8 * h, ldy, nh, pf);
            const int16_t *xr = xq + r * ldq;
            const float *sr = x->s + (size_t)r * ng;
            float *yr = yp + r * ldy + 8 * h;
            switch (rows - r) {
            case 5:
                tile(5, 1, xr, ldq, sr, ng, ph, kq, ws + 8 * h, yr, ldy, nh, pf);
                break;
            case 4:
                tile(4, 1, xr, ldq, sr, ng, ph, kq, ws + 8 * h, yr, ldy, nh, pf);
                break;
            case 3:
                tile(3, 1, xr, ldq, sr, ng, ph, kq, ws + 8 * h, yr, ldy, nh, pf);
                break;
            case 2:
                tile(2, 1, xr, ldq, sr, ng, ph, kq, ws + 8 * h, yr, ldy, nh, pf);
                break;
            case 1:
                tile(1, 1, xr, ldq, sr, ng, ph, kq, ws + 8 * h, yr, ldy, nh, pf);
                break;
            }
            pf = NULL;
        }
    }
}

static void quantize_avx2(const float *x, size_t ldx, int rows, int k, int a16, void *q, size_t ldq,
                          float *s) {
    t5k_i8_quantize_avx2(x, ldx, rows, k, T5K_XQ_S16, a16, q, ldq, s);
}

const t5k_i8_ops t5k_i8_avx2 = {"avx2", T5K_XQ_S16, T5K_XQ_S16, quantize_avx2, gemm_i8_avx2, 0, NULL};
#endif
