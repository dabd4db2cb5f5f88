/* kernels_bf16_avx512.c - the AVX-512 bfloat16 products (t5_dev.h's chain): register tiles
 * of up to 8 rows x NP column groups, a pair of k values per step. With AVX512_BF16 one
 * vdpbf16ps per accumulator and pair (its two sums, odd k first, are the definition); without
 * it, the pair split into its odd and even halves and two FMAs under DAZ and FTZ.
 * What it is not: no dispatch (kernels_bf16.c), nothing for CPUs without AVX-512. */
#if defined(__x86_64__)
#ifdef T5_EMULATE_AVX512 /* test_engine_isa_emulated: SIMDe's portable AVX-512 (tests/unit) */
#include "simde_avx512.h"
#else
#include <immintrin.h>
#endif
#include "kernels_bf16.h"

#define INLINE static inline __attribute__((always_inline))
#ifdef T5_EMULATE_AVX512
#define t5_dpbf16(acc, a, b) shim_dpbf16_si(acc, a, b)
#else
#define t5_dpbf16(acc, a, b) _mm512_dpbf16_ps(acc, (__m512bh)(a), (__m512bh)(b))
#endif

/* y[R rows, NP groups] over pairs [p0, p1): b at the first group's pair 0, groups gs words
 * apart; the stores of the last group masked by mk. DP: vdpbf16ps on x as pairs, else two FMAs
 * on x as float32 (T5K_BF16_X_F32: the odd value, then the even). pf, unless NULL: the next
 * strip's first group, whose line of each pair this tile prefetches as it reads its own (the
 * weights stream from memory once per strip; the strip's later tiles find them in cache). */
INLINE void tile(const int R, const int NP, const int DP, const void *xv, size_t ldx, int p0, int p1,
                 const uint32_t *b, size_t gs, float *y, size_t ldy, __mmask16 mk, const uint32_t *pf) {
    const uint32_t *x = xv;
    const float *xf = xv;
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++) {
            __mmask16 m = p < NP - 1 ? (__mmask16)0xffff : mk;
            acc[r][p] = p0 ? _mm512_maskz_loadu_ps(m, y + r * ldy + 16 * p) : _mm512_setzero_ps();
        }
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int i = p0; i < p1; i++) {
        __m512i w[3];
        if (pf)
#pragma GCC unroll 3
            for (int p = 0; p < NP; p++)
                _mm_prefetch((const char *)(pf + p * gs + (size_t)i * 16), _MM_HINT_T0);
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++)
            w[p] = _mm512_loadu_si512((const void *)(b + p * gs + (size_t)i * 16));
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            if (DP) {
                __m512i xp = _mm512_set1_epi32((int)x[r * ldx + i]);
#pragma GCC unroll 3
                for (int p = 0; p < NP; p++)
                    acc[r][p] = t5_dpbf16(acc[r][p], xp, w[p]);
            } else {
                __m512 xo = _mm512_set1_ps(xf[r * ldx + 2 * i]), xe = _mm512_set1_ps(xf[r * ldx + 2 * i + 1]);
#pragma GCC unroll 3
                for (int p = 0; p < NP; p++)
                    acc[r][p] =
                        _mm512_fmadd_ps(xo, _mm512_castsi512_ps(_mm512_and_si512(w[p], hi)), acc[r][p]);
#pragma GCC unroll 3
                for (int p = 0; p < NP; p++)
                    acc[r][p] =
                        _mm512_fmadd_ps(xe, _mm512_castsi512_ps(_mm512_slli_epi32(w[p], 16)), acc[r][p]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int p = 0; p < NP; p++)
            _mm512_mask_storeu_ps(y + r * ldy + 16 * p, p < NP - 1 ? (__mmask16)0xffff : mk, acc[r][p]);
}

typedef void (*tile_fn)(const void *, size_t, int, int, const uint32_t *, size_t, float *, size_t, __mmask16,
                        const uint32_t *);
#define TILE(R, NP, DP)                                                                                      \
    static void tile_##R##_##NP##_##DP(const void *x, size_t ldx, int p0, int p1, const uint32_t *b,         \
                                       size_t gs, float *y, size_t ldy, __mmask16 mk, const uint32_t *pf) {  \
        tile(R, NP, DP, x, ldx, p0, p1, b, gs, y, ldy, mk, pf);                                              \
    }
#define TILES(NP, DP)                                                                                        \
    TILE(1, NP, DP)                                                                                          \
    TILE(2, NP, DP)                                                                                          \
    TILE(3, NP, DP)                                                                                          \
    TILE(4, NP, DP)                                                                                          \
    TILE(5, NP, DP)                                                                                          \
    TILE(6, NP, DP)                                                                                          \
    TILE(7, NP, DP)                                                                                          \
    TILE(8, NP, DP)                                                                                          \
    static const tile_fn tiles_##NP##_##DP[9] = {NULL,                                                       \
                                                 tile_1_##NP##_##DP,                                         \
                                                 tile_2_##NP##_##DP,                                         \
                                                 tile_3_##NP##_##DP,                                         \
                                                 tile_4_##NP##_##DP,                                         \
                                                 tile_5_##NP##_##DP,                                         \
                                                 tile_6_##NP##_##DP,                                         \
                                                 tile_7_##NP##_##DP,                                         \
                                                 tile_8_##NP##_##DP};
TILES(3, 1)
TILES(1, 1)
TILES(2, 0)
TILES(1, 0)

/* every row of one strip, 8 rows per tile, the first prefetching the next strip at pf (NULL: none) */
static void strip(const tile_fn *t, const uint32_t *x, size_t ldx, int rows, int p0, int p1,
                  const uint32_t *b, size_t gs, float *y, size_t ldy, __mmask16 mk, const uint32_t *pf) {
    for (int r = 0; r < rows; r += 8)
        t[rows - r < 8 ? rows - r : 8](x + r * ldx, ldx, p0, p1, b, gs, y + r * ldy, ldy, mk, r ? NULL : pf);
}

/* pair blocks of T5K_BF16_KC (all pairs at once for one row tile), strips of NP groups, then
 * single groups, the last one's stores masked when partial */
static void gemm(const tile_fn *wide, int np_wide, const tile_fn *one, const uint32_t *x, size_t ldx,
                 int rows, const t5_mat *w, int c0, int c1, float *y, size_t ldy) {
    int np = (w->k + 1) / 2, kc = rows > 8 ? T5K_BF16_KC : np;
    size_t gs = (size_t)T5_PANEL * np;
    const uint32_t *P = w->p;
    unsigned csr = t5k_bf16_csr_begin();
    for (int p0 = 0; p0 < np; p0 += kc) {
        int p1 = p0 + kc < np ? p0 + kc : np, g = c0 / 16, gfull = c1 / 16, gend = (c1 + 15) / 16;
        for (; g + np_wide <= gfull; g += np_wide)
            strip(wide, x, ldx, rows, p0, p1, P + g * gs, gs, y + 16 * g, ldy, 0xffff,
                  g + 2 * np_wide <= gfull ? P + (g + np_wide) * gs : NULL);
        for (; g < gend; g++)
            strip(one, x, ldx, rows, p0, p1, P + g * gs, gs, y + 16 * g, ldy,
                  g < gfull ? (__mmask16)0xffff : (__mmask16)((1u << (c1 - 16 * g)) - 1), NULL);
    }
    t5k_bf16_csr_end(csr);
}

static void gemm_dp(const void *x, size_t ldx, int rows, const t5_mat *w, int c0, int c1, float *y,
                    size_t ldy) {
    gemm(tiles_3_1, 3, tiles_1_1, x, ldx, rows, w, c0, c1, y, ldy);
}

static void gemm_fma(const void *x, size_t ldx, int rows, const t5_mat *w, int c0, int c1, float *y,
                     size_t ldy) {
    gemm(tiles_2_0, 2, tiles_1_0, x, ldx, rows, w, c0, c1, y, ldy);
}

/* t5_bf16_pack_rows in T5K_BF16_X_F32, 16 values at a time: t5_float_to_bf16's rounding (ties to
 * even, a NaN quiet), a denormal to a zero of its sign, then each pair swapped (odd first) */
static void pack_f32(const float *x, size_t ldx, int rows, int k, void *xb) {
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff),
                  top = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i quiet = _mm512_set1_epi32(0x00400000), sign = _mm512_set1_epi32((int)0x80000000u);
    size_t ld = t5_bf16_ldx(T5K_BF16_X_F32, k);
    int i16 = k / 16 * 16;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *o = (float *)xb + (size_t)r * ld;
        for (int i = 0; i < i16; i += 16) {
            __m512i b = _mm512_castps_si512(_mm512_loadu_ps(xr + i));
            __m512i v =
                _mm512_add_epi32(_mm512_add_epi32(b, half), _mm512_and_si512(_mm512_srli_epi32(b, 16), one));
            v = _mm512_and_si512(v, top);
            __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(b, absm), inf); /* |b| as signed: >= 0 */
            v = _mm512_mask_mov_epi32(v, nan, _mm512_or_si512(_mm512_and_si512(b, top), quiet));
            __mmask16 den =
                _mm512_cmpeq_epi32_mask(_mm512_and_si512(v, inf), _mm512_setzero_si512()); /* exponent 0 */
            v = _mm512_mask_and_epi32(v, den, v, sign);
            v = _mm512_or_si512(_mm512_slli_epi64(v, 32), _mm512_srli_epi64(v, 32)); /* each pair swapped */
            _mm512_storeu_si512((void *)(o + i), v);
        }
    }
    t5k_bf16_pack_f32_tail(x, ldx, rows, k, i16, xb);
}

const t5k_bf16_ops t5k_bf16_avx512 = {"avx512", T5K_BF16_X_F32, pack_f32, gemm_fma};
const t5k_bf16_ops t5k_bf16_avx512_bf16 = {"avx512-bf16", T5K_BF16_X_PAIRS, t5k_bf16_pack_pairs, gemm_dp};
#endif
