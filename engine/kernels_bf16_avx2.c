/* kernels_bf16_avx2.c - the AVX2 bfloat16 products (t5_dev.h's chain): register tiles of up
 * to 6 rows x one panel of 16 columns (two ymm of 8 column pairs; one row: 4 panels), a pair of k values per
 * step: the weight words split into their odd and even halves, the activations broadcast as
 * float32, two FMAs per accumulator under DAZ and FTZ (the sums vdpbf16ps rounds). Bit for bit the results of
 * kernels_bf16.c's C code. What it is not: no dispatch (kernels_bf16.c), nothing for CPUs without AVX2 and
 * FMA. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels_bf16.h"

#define INLINE static inline __attribute__((always_inline))

/* y[R rows, NP panels of 16 columns] (rows ldy apart, the panels' columns contiguous in y) over
 * pairs [p0, p1) of the panels at b (gs words apart); x as float32 (T5K_BF16_X_F32: per pair the
 * odd value, then the even). R x NP x 2 accumulators: 6 x 1, or 1 x 4 for one row, whose single
 * panel's two chains of two dependent FMAs per pair would wait on the FMA latency. Each
 * output's chain is the same whatever R and NP, so the same bits. pf, unless NULL: the next
 * NP panels, whose line of each pair this tile prefetches as it reads its own. */
INLINE void tile(const int R, const int NP, const float *x, size_t ldx, int p0, int p1, const uint32_t *b,
                 size_t gs, float *y, size_t ldy, const uint32_t *pf) {
    __m256 acc[6][4][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            for (int h = 0; h < 2; h++)
                acc[r][j][h] = p0 ? _mm256_loadu_ps(y + r * ldy + 16 * j + 8 * h) : _mm256_setzero_ps();
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int i = p0; i < p1; i++) {
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) {
            const uint32_t *bj = b + j * gs + (size_t)i * 16;
            if (pf) _mm_prefetch((const char *)(pf + j * gs + (size_t)i * 16), _MM_HINT_T0);
            __m256i w0 = _mm256_loadu_si256((const __m256i *)bj),
                    w1 = _mm256_loadu_si256((const __m256i *)(bj + 8));
            __m256 o0 = _mm256_castsi256_ps(_mm256_and_si256(w0, hi)),
                   o1 = _mm256_castsi256_ps(_mm256_and_si256(w1, hi));
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                __m256 xo = _mm256_broadcast_ss(x + r * ldx + 2 * i);
                acc[r][j][0] = _mm256_fmadd_ps(xo, o0, acc[r][j][0]);
                acc[r][j][1] = _mm256_fmadd_ps(xo, o1, acc[r][j][1]);
            }
            __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)),
                   e1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                __m256 xe = _mm256_broadcast_ss(x + r * ldx + 2 * i + 1);
                acc[r][j][0] = _mm256_fmadd_ps(xe, e0, acc[r][j][0]);
                acc[r][j][1] = _mm256_fmadd_ps(xe, e1, acc[r][j][1]);
            }
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            for (int h = 0; h < 2; h++)
                _mm256_storeu_ps(y + r * ldy + 16 * j + 8 * h, acc[r][j][h]);
}

static void tile_1x4(const float *x, int p0, int p1, const uint32_t *b, size_t gs, float *y,
                     const uint32_t *pf) {
    tile(1, 4, x, 0, p0, p1, b, gs, y, 0, pf);
}

typedef void (*tile_fn)(const float *, size_t, int, int, const uint32_t *, float *, size_t, const uint32_t *);
#define TILE(R)                                                                                              \
    static void tile_##R(const float *x, size_t ldx, int p0, int p1, const uint32_t *b, float *y,            \
                         size_t ldy, const uint32_t *pf) {                                                   \
        tile(R, 1, x, ldx, p0, p1, b, 0, y, ldy, pf);                                                        \
    }
TILE(1)
TILE(2)
TILE(3)
TILE(4)
TILE(5)
TILE(6)
static const tile_fn tiles[7] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

/* pair blocks of T5K_BF16_KC (all pairs for one row tile), one panel at a time, its first row
 * tile prefetching the next; a partial last panel goes through a 16-column buffer */
static void gemm_avx2(const void *xv, size_t ldx, int rows, const t5_mat *w, int c0, int c1, float *y,
                      size_t ldy) {
    int np = (w->k + 1) / 2, kc = rows > 6 ? T5K_BF16_KC : np;
    size_t gs = (size_t)T5_PANEL * np;
    const uint32_t *P = w->p;
    const float *x = xv;
    unsigned csr = t5k_bf16_csr_begin();
    for (int p0 = 0; p0 < np; p0 += kc) {
        int p1 = p0 + kc < np ? p0 + kc : np;
        int g = c0 / 16;
        if (rows == 1) /* whole panels four at a time, the rest below */
            for (; 16 * (g + 4) <= c1; g += 4)
                tile_1x4(x, p0, p1, P + g * gs, gs, y + 16 * g, 16 * (g + 8) <= c1 ? P + (g + 4) * gs : NULL);
        for (; g < (c1 + 15) / 16; g++) {
            int nc = c1 - 16 * g < 16 ? c1 - 16 * g : 16;
            const uint32_t *pf = 16 * (g + 1) < c1 ? P + (g + 1) * gs : NULL;
            for (int r = 0; r < rows; r += 6, pf = NULL) {
                int R = rows - r < 6 ? rows - r : 6;
                float *yt = y + (size_t)r * ldy + 16 * g, buf[6 * 16] = {0};
                if (nc == 16) {
                    tiles[R](x + r * ldx, ldx, p0, p1, P + g * gs, yt, ldy, pf);
                    continue;
                }
                for (int i = 0; p0 && i < R; i++)
                    memcpy(buf + 16 * i, yt + i * ldy, (size_t)nc * sizeof *buf);
                tiles[R](x + r * ldx, ldx, p0, p1, P + g * gs, buf, 16, pf);
                for (int i = 0; i < R; i++)
                    memcpy(yt + i * ldy, buf + 16 * i, (size_t)nc * sizeof *buf);
            }
        }
    }
    t5k_bf16_csr_end(csr);
}

/* t5_bf16_pack_rows in T5K_BF16_X_F32, 8 values at a time (kernels_bf16_avx512.c's steps) */
static void pack_f32(const float *x, size_t ldx, int rows, int k, void *xb) {
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff),
                  top = _mm256_set1_epi32((int)0xffff0000u);
    const __m256i absm = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x00400000), sign = _mm256_set1_epi32((int)0x80000000u);
    size_t ld = t5_bf16_ldx(T5K_BF16_X_F32, k);
    int i8 = k / 8 * 8;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *o = (float *)xb + (size_t)r * ld;
        for (int i = 0; i < i8; i += 8) {
            __m256i b = _mm256_castps_si256(_mm256_loadu_ps(xr + i));
            __m256i v =
                _mm256_add_epi32(_mm256_add_epi32(b, half), _mm256_and_si256(_mm256_srli_epi32(b, 16), one));
            v = _mm256_and_si256(v, top);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, absm), inf); /* |b| as signed: >= 0 */
            v = _mm256_blendv_epi8(v, _mm256_or_si256(_mm256_and_si256(b, top), quiet), nan);
            __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(v, inf), _mm256_setzero_si256());
            v = _mm256_blendv_epi8(v, _mm256_and_si256(v, sign), den);
            _mm256_storeu_ps(o + i, _mm256_permute_ps(_mm256_castsi256_ps(v), 0xb1));
        }
    }
    t5k_bf16_pack_f32_tail(x, ldx, rows, k, i8, xb);
}

const t5k_bf16_ops t5k_bf16_avx2 = {"avx2", T5K_BF16_X_F32, pack_f32, gemm_avx2};
#endif
