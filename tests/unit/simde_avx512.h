/* simde_avx512.h - the AVX-512 intrinsics of engine/kernels_avx512.c and kernels_i8_avx512.c
 * on any x86-64 CPU with AVX2, for the emulated build of test_engine_isa (make's
 * test_engine_isa_emulated, suite 13-isa): SIMDe's portable implementations (Debian's
 * libsimde-dev), plus the few SIMDe 0.7.4 lacks, written here lane by lane with the
 * instruction's semantics (vdpbf16ps as probed on silicon: docs/engine.md). So the AVX-512,
 * VNNI and BF16 kernels are checked bit for bit against
 * the C reference on machines that cannot run them. Never part of the served binaries. */
#ifndef T5SERVE_SIMDE_AVX512_H
#define T5SERVE_SIMDE_AVX512_H
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <math.h>
#include <simde/x86/avx512.h>
#include <stdint.h>
#include <string.h>

/* a lane-by-lane shim: NAME(a) is EXPR of each of a's N lanes v[i] (TIN; a: VIN), as TOUT lanes
 * of a VOUT */
#define SHIM_LANES(NAME, VOUT, TOUT, VIN, TIN, N, EXPR)                                                      \
    static inline VOUT NAME(VIN a) {                                                                         \
        TIN v[N];                                                                                            \
        TOUT o[N];                                                                                           \
        memcpy(v, &a, sizeof v);                                                                             \
        for (int i = 0; i < N; i++)                                                                          \
            o[i] = EXPR;                                                                                     \
        VOUT r;                                                                                              \
        memcpy(&r, o, sizeof o);                                                                             \
        return r;                                                                                            \
    }
SHIM_LANES(shim_cvtepi32_ps, simde__m512, float, simde__m512i, int32_t, 16, (float)v[i]) /* vcvtdq2ps */
SHIM_LANES(shim_cvtepu16_epi32, simde__m512i, uint32_t, simde__m256i, uint16_t, 16, v[i])
SHIM_LANES(shim_cvtepi32_epi8, simde__m128i, int8_t, simde__m512i, int32_t, 16, (int8_t)v[i]) /* vpmovdb */
/* vcvtps2dq: round to even, 0x80000000 out of range */
SHIM_LANES(shim_cvtps_epi32, simde__m512i, int32_t, simde__m512, float, 16,
           v[i] >= -2147483648.0f && v[i] < 2147483648.0f ? (int32_t)nearbyintf(v[i]) : INT32_MIN)
#define _mm512_cvtepi32_ps shim_cvtepi32_ps
#define _mm512_cvtepu16_epi32 shim_cvtepu16_epi32
#define _mm512_cvtepi32_epi8 shim_cvtepi32_epi8
#define _mm512_cvtps_epi32 shim_cvtps_epi32
/* vmovups with a mask: */
static inline void shim_mask_storeu_ps(void *p, uint16_t m, simde__m512 a) {
    float f[16];
    memcpy(f, &a, 64);
    for (int i = 0; i < 16; i++)
        if (m >> i & 1) ((float *)p)[i] = f[i];
}
#define _mm512_mask_storeu_ps shim_mask_storeu_ps
static inline simde__m512i shim_srai_epi32(simde__m512i a, int n) { /* vpsrad: sign-filling */
    int32_t v[16];
    memcpy(v, &a, 64);
    for (int i = 0; i < 16; i++)
        v[i] = v[i] < 0 ? ~(~v[i] >> n) : v[i] >> n;
    memcpy(&a, v, 64);
    return a;
}
#define _mm512_srai_epi32 shim_srai_epi32
static inline simde__m512 shim_cvtph_ps(simde__m256i a) {
    __m128i lo, hi;
    memcpy(&lo, &a, 16);
    memcpy(&hi, (char *)&a + 16, 16);
    __m256 fl = _mm256_cvtph_ps(lo), fh = _mm256_cvtph_ps(hi);
    simde__m512 r;
    memcpy(&r, &fl, 32);
    memcpy((char *)&r + 32, &fh, 32);
    return r;
}
static inline simde__m512 shim_maskz_loadu_ps(uint16_t m, const void *p) {
    float f[16];
    for (int i = 0; i < 16; i++)
        f[i] = m >> i & 1 ? ((const float *)p)[i] : 0.0f;
    simde__m512 r;
    memcpy(&r, f, 64);
    return r;
}
#define _mm512_cvtph_ps shim_cvtph_ps
#define _mm512_maskz_loadu_ps shim_maskz_loadu_ps
static inline simde__m256 shim_extractf32x8_ps(simde__m512 a, int i) {
    simde__m256 r;
    memcpy(&r, (char *)&a + 32 * (i & 1), 32);
    return r;
}
#define _mm512_extractf32x8_ps shim_extractf32x8_ps
static inline simde__m512 shim_mask3_fmadd_ps(simde__m512 a, simde__m512 b, simde__m512 c,
                                              uint16_t m) { /* lanes not in m: c */
    float x[16], y[16], z[16];
    memcpy(x, &a, 64);
    memcpy(y, &b, 64);
    memcpy(z, &c, 64);
    for (int i = 0; i < 16; i++)
        if (m >> i & 1) z[i] = fmaf(x[i], y[i], z[i]);
    simde__m512 r;
    memcpy(&r, z, 64);
    return r;
}
#define _mm512_mask3_fmadd_ps shim_mask3_fmadd_ps
/* vdpbf16ps on 32-bit pairs (the kernels' t5_dpbf16 takes integer vectors): per lane, the odd
 * products' sum, then the even's, each rounded to nearest even; denormal inputs read as zero
 * and denormal sums flushed, to zeros of their sign */
static inline float shim_daz(float v) {
    return fabsf(v) < 1.17549435e-38f ? copysignf(0.0f, v) : v;
}
static inline simde__m512 shim_dpbf16_si(simde__m512 src, simde__m512i a, simde__m512i b) {
    uint32_t x[16], y[16];
    float s[16];
    memcpy(x, &a, 64);
    memcpy(y, &b, 64);
    memcpy(s, &src, 64);
    for (int i = 0; i < 16; i++) {
        uint32_t u[4] = {x[i] & 0xffff0000u, y[i] & 0xffff0000u, x[i] << 16, y[i] << 16};
        float f[4];
        memcpy(f, u, 16);
        s[i] = shim_daz(fmaf(shim_daz(f[0]), shim_daz(f[1]), shim_daz(s[i])));
        s[i] = shim_daz(fmaf(shim_daz(f[2]), shim_daz(f[3]), s[i]));
    }
    simde__m512 r;
    memcpy(&r, s, 64);
    return r;
}

#endif
