/* kernels_i8_amx.c - the int8 product on AMX-INT8 tiles (t5_dev.h's definition, bit for bit):
 * tdpbssd multiplies signed bytes by signed bytes (the activations as int8, T5K_XQ_S8: no
 * +128 shift, no compensation) and adds every 4-byte dot product into int32 without
 * saturation, so one tile product over one group of 64 k values is exactly that group's sums.
 * The weights are read as packed: one group of one panel (16 k steps of 4 x 16 columns, 64
 * bytes each) is 1 KB contiguous, one B tile (16 rows of 64 bytes, stride 64); an A tile is 16
 * rows of the quantized activations, 64 bytes (one group) each, stride ldq.
 * Unit of work: 16 rows x 1 panel, its 16 float accumulators in zmm registers. Per group: zero
 * a C tile, load A and B, tdpbssd, store the 16 x 16 int32 sums; then the float epilogue of the
 * previous group with AVX-512 in the contract's order (s = fma((float)acc_g, xs * ws, s),
 * increasing g), while this group's product runs: two tile sets (tmm0-5) by the parity of g.
 * a16 matrices (16-bit activations as two int8 halves, T5K_XQ_S8X2): per group the hi halves'
 * product into TC, the lo halves' through the same A tile into TL (tmm6-7), and the epilogue
 * takes 256 hi + lo (exact in int32).
 * Partial units configure fewer rows (1..16 per A / C tile) and the last group of a k that is
 * not a multiple of 64 fewer k steps (A: 4 kk bytes a row, B: kk rows), so that no load reads
 * beyond the activations (kp bytes a row) or the panel (kq * 64 bytes). The first row unit of
 * a panel prefetches the B tiles 8 groups ahead (the weights stream from memory at batch 32).
 * Measured (docs/engine.md): 2x2 blocks with the accumulators in memory, 4 C tiles in turn, a
 * 32-row unit sharing each B tile (32 accumulators: spills) and other prefetch distances were no
 * faster.
 * Tile configuration: per call (ldtilecfg at the first group, again only when a partial unit
 * or group needs other shapes, tilerelease at the end): it is per thread, and this keeps the
 * library free of per-thread state; about 60 ns a call (measured), 0.2% of a batch-32 step.
 * What it is not: no dispatch (kernels_i8.c: only where t5_cpu_has_amx; t5_matmul takes the VNNI
 * kernel for products of fewer than min_rows rows). */
#if defined(__x86_64__)
#ifdef T5_EMULATE_AMX /* test_engine_isa_emulated: SIMDe's AVX-512 and C tiles (tests/unit) */
#include "simde_avx512.h"
/* after SIMDe, which includes <immintrin.h>: these macros replace its tile intrinsics */
#include "amx_emulated.h"
#else
#include <immintrin.h>
#endif
#include <string.h>

#include "kernels_i8.h"

/* ldtilecfg's 64-byte operand (palette 1) */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

/* the tiles (macros: the intrinsics paste the number into the instruction): two sets, one per
 * parity of the group, so that a group's loads and product overlap the previous group's store
 * and epilogue (the tiles are not renamed: one set would wait for each store); TL: a16's sums
 * of the lo halves (TC: of the hi halves) */
#define TC0 0
#define TC1 1
#define TA0 2
#define TA1 3
#define TB0 4
#define TB1 5
#define TL0 6
#define TL1 7

/* the shapes for m (1..16) rows and kk (1..16) k steps */
static void cfg_set(int m, int kk) {
    tile_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    c.rows[TC0] = c.rows[TC1] = c.rows[TL0] = c.rows[TL1] = c.rows[TA0] = c.rows[TA1] = (uint8_t)m;
    c.colsb[TC0] = c.colsb[TC1] = c.colsb[TL0] = c.colsb[TL1] = 64;
    c.colsb[TA0] = c.colsb[TA1] = (uint16_t)(4 * kk);
    c.rows[TB0] = c.rows[TB1] = (uint8_t)kk;
    c.colsb[TB0] = c.colsb[TB1] = 64;
    __asm__ volatile("" ::: "memory"); /* _tile_loadconfig's asm names only 8 bytes of c */
    _tile_loadconfig(&c);
}

#define INLINE static inline __attribute__((always_inline))
enum { PF_AHEAD = 8 }; /* groups (KB) of B prefetched ahead */

/* One group's products with the tile set (TC, TL, TA, TB) into c[0] (and with W, a16, the lo
 * halves' into c[1]); a, b, ldq, W from unit() */
#define GROUP(TC, TL, TA, TB, c)                                                                             \
    do {                                                                                                     \
        _tile_zero(TC);                                                                                      \
        _tile_loadd(TA, a, ldq);                                                                             \
        _tile_loadd(TB, b, 64);                                                                              \
        _tile_dpbssd(TC, TA, TB);                                                                            \
        if (W) {                                                                                             \
            _tile_zero(TL);                                                                                  \
            _tile_loadd(TA, a + ldq / 2, ldq);                                                               \
            _tile_dpbssd(TL, TA, TB);                                                                        \
            _tile_stored(TL, (c)[1], 64);                                                                    \
        }                                                                                                    \
        _tile_stored(TC, (c)[0], 64);                                                                        \
    } while (0)

/* s[r] = fma((float)acc, xs[r, g] * ws, s[r]) for the rows r < m (16 when FULL), acc = c[0][r],
 * or with W (a16) c[0][r] * 256 + c[1][r]: the hi and lo halves' sums */
INLINE void epilogue(const int FULL, const int W, __m512 *s, const int32_t (*c)[16][16], const float *xs,
                     int ng, int m, __m512 ws) {
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++)
        if (FULL || r < m) {
            __m512i v = _mm512_load_si512((const void *)c[0][r]);
            if (W) v = _mm512_add_epi32(_mm512_slli_epi32(v, 8), _mm512_load_si512((const void *)c[1][r]));
            s[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v),
                                   _mm512_mul_ps(_mm512_set1_ps(xs[(size_t)r * ng]), ws), s[r]);
        }
}

/* One unit: rows m (1..16, FULL: 16) of x from xq (rows ldq apart, scales xs, ng a row) times
 * the panel at pw (scales ws[ng][16]) into y (rows ldy apart, columns masked by last). W (a16,
 * T5K_XQ_S8X2): the rows' hi halves into TC, then their lo halves (ldq / 2 on) through the
 * same A tile into TL. *key: the shape configured now (m | kk << 8), 0: none. */
INLINE void unit(const int FULL, const int W, const int8_t *xq, size_t ldq, const float *xs, int ng, int m,
                 const int8_t *pw, const float *ws, int kq, float *y, size_t ldy, __mmask16 last, int *key,
                 int pf) {
    _Alignas(64) int32_t cb[2][2][16][16]; /* [parity][hi, lo] */
    __m512 s[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++)
        s[r] = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        int kk = kq - 16 * g < 16 ? kq - 16 * g : 16, want = m | kk << 8;
        if (*key != want) {
            cfg_set(m, kk);
            *key = want;
        }
        const int8_t *a = xq + (size_t)g * 64, *b = pw + (size_t)g * 1024;
        if (pf) /* the B tile PF_AHEAD groups on (the next panel's after this one's end) */
            for (int l = 0; l < 16; l++)
                _mm_prefetch((const char *)b + PF_AHEAD * 1024 + l * 64, _MM_HINT_T0);
        if (g & 1)
            GROUP(TC1, TL1, TA1, TB1, cb[1]);
        else
            GROUP(TC0, TL0, TA0, TB0, cb[0]);
        if (g) /* the previous group's epilogue, while this group's product runs */
            epilogue(FULL, W, s, cb[(g - 1) & 1], xs + g - 1, ng, m,
                     _mm512_loadu_ps(ws + (size_t)(g - 1) * 16));
    }
    epilogue(FULL, W, s, cb[(ng - 1) & 1], xs + ng - 1, ng, m, _mm512_loadu_ps(ws + (size_t)(ng - 1) * 16));
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++)
        if (FULL || r < m) _mm512_mask_storeu_ps(y + (size_t)r * ldy, last, s[r]);
}

static void gemm_i8_amx(const t5k_xq *x, int rows, const t5_mat *w, int c0, int c1, float *y, size_t ldy) {
    int kq = (w->k + 3) / 4, ng = x->ng, key = 0;
    size_t ps = (size_t)kq * 64, ldq = x->ldq;
    int p0 = c0 / T5_PANEL, pend = (c1 + T5_PANEL - 1) / T5_PANEL;
    for (int p = p0; p < pend; p++) {
        __mmask16 last = p == pend - 1 && c1 % T5_PANEL ? (__mmask16)((1u << (c1 % T5_PANEL)) - 1) : 0xffff;
        const int8_t *pw = (const int8_t *)w->p + (size_t)p * ps;
        const float *ws = w->scale + (size_t)p * ng * 16;
        for (int r0 = 0; r0 < rows; r0 += 16) {
            const int8_t *xq = (const int8_t *)x->q + (size_t)r0 * ldq;
            const float *xs = x->s + (size_t)r0 * ng;
            float *yr = y + (size_t)r0 * ldy + (size_t)p * T5_PANEL;
            int m = rows - r0 < 16 ? rows - r0 : 16;
            if (w->a16 && m == 16)
                unit(1, 1, xq, ldq, xs, ng, m, pw, ws, kq, yr, ldy, last, &key, r0 == 0);
            else if (w->a16)
                unit(0, 1, xq, ldq, xs, ng, m, pw, ws, kq, yr, ldy, last, &key, r0 == 0);
            else if (m == 16)
                unit(1, 0, xq, ldq, xs, ng, m, pw, ws, kq, yr, ldy, last, &key, r0 == 0);
            else
                unit(0, 0, xq, ldq, xs, ng, m, pw, ws, kq, yr, ldy, last, &key, r0 == 0);
        }
    }
    if (key) _tile_release();
}

static void quantize_s8(const float *x, size_t ldx, int rows, int k, int a16, void *q, size_t ldq, float *s) {
    if (a16) /* (each layout its own inlined copy) */
        t5k_i8_quantize_avx512(x, ldx, rows, k, T5K_XQ_S8X2, q, ldq, s);
    else
        t5k_i8_quantize_avx512(x, ldx, rows, k, T5K_XQ_S8, q, ldq, s);
}

/* below AMX_MIN_ROWS rows t5_matmul takes the VNNI kernel: 1 row, 1024 x 512, one thread: VNNI
 * 0.004 ms, AMX 0.006; 2 rows: equal; 8 rows: VNNI 0.016, AMX 0.008 (docs/engine.md) */
enum { AMX_MIN_ROWS = 2 };

const t5k_i8_ops t5k_i8_amx = {"amx",       T5K_XQ_S8,    T5K_XQ_S8X2,        quantize_s8,
                               gemm_i8_amx, AMX_MIN_ROWS, &t5k_i8_avx512_vnni};
#endif
