/* amx_emulated.h - the AMX tile intrinsics engine/kernels_i8_amx.c uses, in C, for the
 * emulated build of test_engine_isa (make's test_engine_isa_emulated, suite 13-isa): so the
 * AMX-INT8 kernel is checked bit for bit against the C reference on any CPU. Per-thread tile
 * state (8 tiles of 16 rows x 64 bytes and the configuration, _Thread_local as the hardware's
 * is per thread), the instructions' semantics as Intel's SDM gives them: ldtilecfg (palette 1;
 * palette 0 = tilerelease), tileloadd / tilestored of rows x colsb bytes (the rest of a loaded
 * row zeroed), tilezero, tdpbssd (C[m][n] += sum over k, t of A[m][4k + t] * B[k][4n + t], signed
 * bytes, int32 wrapping, no saturation). What the hardware faults on (#UD: a tile used while
 * unconfigured or outside its configured shape, tdpbssd operands whose shapes disagree) aborts
 * here, so a kernel that misconfigures fails the test instead of passing by luck. Never part of
 * the served binaries. */
#ifndef T5SERVE_AMX_EMULATED_H
#define T5SERVE_AMX_EMULATED_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int on;               /* a palette-1 configuration is loaded */
    uint16_t colsb[8];    /* bytes per row of each tile */
    uint8_t rows[8];      /* rows of each tile */
    uint8_t t[8][16][64]; /* the tiles */
} amx_emu_state;

static _Thread_local amx_emu_state amx_emu;

static inline void amx_emu_fail(const char *what, int t) {
    fprintf(stderr, "amx_emulated: %s (tmm%d): the hardware would fault (#UD)\n", what, t);
    abort();
}

static inline void amx_emu_check(int t) {
    if (t < 0 || t > 7) amx_emu_fail("no such tile", t);
    if (!amx_emu.on) amx_emu_fail("tile instruction without a tile configuration", t);
    if (!amx_emu.rows[t] || !amx_emu.colsb[t]) amx_emu_fail("tile not configured", t);
}

/* ldtilecfg: 64 bytes: palette, start_row, 14 reserved, colsb[16] (uint16), rows[16] (uint8) */
static inline void amx_emu_loadconfig(const void *cfg) {
    const uint8_t *c = cfg;
    memset(&amx_emu, 0, sizeof amx_emu);
    if (c[0] == 0) return; /* palette 0: the init state */
    if (c[0] != 1 || c[1] != 0) amx_emu_fail("palette other than 1 or start_row set", -1);
    for (int i = 2; i < 16; i++)
        if (c[i]) amx_emu_fail("reserved configuration byte set", -1);
    for (int t = 0; t < 16; t++) {
        uint16_t cb;
        memcpy(&cb, c + 16 + 2 * t, 2);
        uint8_t r = c[48 + t];
        if (t >= 8) {
            if (cb || r) amx_emu_fail("tile 8..15 configured", t);
            continue;
        }
        if (cb > 64 || r > 16 || (!cb) != (!r)) amx_emu_fail("tile shape out of range", t);
        amx_emu.colsb[t] = cb, amx_emu.rows[t] = r;
    }
    amx_emu.on = 1;
}

static inline void amx_emu_release(void) {
    memset(&amx_emu, 0, sizeof amx_emu);
}

static inline void amx_emu_loadd(int t, const void *base, long stride) {
    amx_emu_check(t);
    memset(amx_emu.t[t], 0, sizeof amx_emu.t[t]);
    for (int r = 0; r < amx_emu.rows[t]; r++)
        memcpy(amx_emu.t[t][r], (const uint8_t *)base + (long)r * stride, amx_emu.colsb[t]);
}

static inline void amx_emu_stored(int t, void *base, long stride) {
    amx_emu_check(t);
    for (int r = 0; r < amx_emu.rows[t]; r++)
        memcpy((uint8_t *)base + (long)r * stride, amx_emu.t[t][r], amx_emu.colsb[t]);
}

static inline void amx_emu_zero(int t) {
    amx_emu_check(t);
    memset(amx_emu.t[t], 0, sizeof amx_emu.t[t]);
}

static inline void amx_emu_dpbssd(int c, int a, int b) {
    amx_emu_check(c), amx_emu_check(a), amx_emu_check(b);
    if (c == a || c == b || a == b) amx_emu_fail("tdpbssd operands not distinct", c);
    int M = amx_emu.rows[c], N = amx_emu.colsb[c] / 4, K = amx_emu.colsb[a] / 4;
    if (amx_emu.rows[a] != M || amx_emu.rows[b] != K || amx_emu.colsb[b] != amx_emu.colsb[c] ||
        amx_emu.colsb[c] % 4 || amx_emu.colsb[a] % 4)
        amx_emu_fail("tdpbssd shapes disagree", c);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            uint32_t acc;
            memcpy(&acc, &amx_emu.t[c][m][4 * n], 4);
            for (int k = 0; k < K; k++)
                for (int t = 0; t < 4; t++) /* int32 wrap-around, as the instruction */
                    acc += (uint32_t)((int32_t)(int8_t)amx_emu.t[a][m][4 * k + t] *
                                      (int32_t)(int8_t)amx_emu.t[b][k][4 * n + t]);
            memcpy(&amx_emu.t[c][m][4 * n], &acc, 4);
        }
}

/* <immintrin.h> (included by SIMDe) has its own: these replace them */
#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbssd
#define _tile_loadconfig(cfg) amx_emu_loadconfig(cfg)
#define _tile_release() amx_emu_release()
#define _tile_loadd(t, base, stride) amx_emu_loadd(t, base, (long)(stride))
#define _tile_stored(t, base, stride) amx_emu_stored(t, base, (long)(stride))
#define _tile_zero(t) amx_emu_zero(t)
#define _tile_dpbssd(c, a, b) amx_emu_dpbssd(c, a, b)

#endif
