/* kernels.c - the numeric building blocks of the T5 forward pass, on the instruction
 * set the model chose at load (t5_isa): products against packed weight panels split
 * over the pool (t5_matmul), the same kernel for attention's products (t5_gemm),
 * RMSNorm, activations, softmax, argmax, logsumexp and the relative position buckets.
 * Each ISA (kernels_avx512.c, kernels_avx2.c, and the portable C here) computes
 * every value by the same sequence of float32 operations (kernels.h), so the answer
 * does not depend on the CPU, the ISA chosen, the thread count or the batch.
 * What it is not: no model structure here (encoder.c, decoder.c); no packing (model.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kernels_bf16.h"
#include "kernels_i8.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define T5_X86 1

/* F16C (CPUID.1:ECX bit 29): asked directly, as clang's __builtin_cpu_supports knows no "f16c" */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

t5_isa t5_cpu_isa(t5_isa cap) {
    if (cap == T5_ISA_AUTO) cap = T5_ISA_AMX;
#ifdef T5_X86
    __builtin_cpu_init();
#ifdef T5_EMULATE_AVX512 /* test_engine_isa_emulated: the AVX-512 kernels run through SIMDe */
    if (cap >= T5_ISA_AVX512) return cap >= T5_ISA_AMX && t5_cpu_has_amx() ? T5_ISA_AMX : T5_ISA_AVX512;
#endif
    if (cap >= T5_ISA_AVX512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma") && cpu_has_f16c())
        return cap >= T5_ISA_AMX && t5_cpu_has_amx() ? T5_ISA_AMX : T5_ISA_AVX512;
    if (cap >= T5_ISA_AVX2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c())
        return T5_ISA_AVX2;
#endif
    return T5_ISA_GENERIC;
}

int t5_isa_parse(const char *s, t5_isa *out) {
    static const char *names[] = {"auto", "generic", "avx2", "avx512", "amx"};
    for (int i = 0; i < 5; i++)
        if (s && !strcmp(s, names[i])) {
            *out = (t5_isa)i;
            return 0;
        }
    return -1;
}

const char *t5_isa_name(t5_isa isa) {
    return isa == T5_ISA_AMX       ? "amx"
           : isa == T5_ISA_AVX512  ? "avx512"
           : isa == T5_ISA_AVX2    ? "avx2"
           : isa == T5_ISA_GENERIC ? "generic"
                                   : "auto";
}

const t5k_ops *t5_kernel_ops(t5_isa isa) {
#ifdef T5_X86
    if (isa >= T5_ISA_AVX512) return &t5k_avx512_ops; /* AMX: AVX-512's float32 kernels */
    if (isa == T5_ISA_AVX2) return &t5k_avx2_ops;
#endif
    (void)isa;
    return &t5k_generic_ops;
}

/* ---- the portable C reference ---- */

float t5_widen(int dtype, uint16_t v) {
    if (dtype == ST_F16) return st_half_to_float(v); /* the loader's exact widening */
    uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void gemm_c(const float *x, size_t ldx, int rows, int k0, int k1, const t5k_bop *b, int c0, int c1,
                   float *y, size_t ldy) {
    for (int r = 0; r < rows; r++)
        for (int g = c0 / T5_PANEL; g * T5_PANEL < c1; g++) {
            int nc = c1 - g * T5_PANEL < T5_PANEL ? c1 - g * T5_PANEL : T5_PANEL;
            float acc[T5_PANEL];
            float *yr = y + (size_t)r * ldy + (size_t)g * T5_PANEL;
            for (int l = 0; l < nc; l++)
                acc[l] = k0 ? yr[l] : 0.0f;
            size_t off = (size_t)g * b->gs + (size_t)k0 * b->ks;
            for (int k = k0; k < k1; k++, off += b->ks) {
                float xv = x[(size_t)r * ldx + k];
                if (b->dtype == ST_F32) {
                    const float *w = (const float *)b->p + off;
                    for (int l = 0; l < nc; l++)
                        acc[l] = fmaf(xv, w[l], acc[l]);
                } else {
                    const uint16_t *w = (const uint16_t *)b->p + off;
                    for (int l = 0; l < nc; l++)
                        acc[l] = fmaf(xv, t5_widen(b->dtype, w[l]), acc[l]);
                }
            }
            memcpy(yr, acc, (size_t)nc * sizeof *acc);
        }
}

/* the 16-lane tree of kernels.h */
static float tree_sum(float *l) {
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            l[i] = l[i] + l[i + w];
    return l[0];
}

static float max_c(const float *x, int n) {
    float l[16];
    for (int i = 0; i < 16; i++)
        l[i] = -INFINITY;
    for (int i = 0; i < n; i++) /* as vmaxps(x, lane): the lane unless x is greater */
        l[i % 16] = x[i] > l[i % 16] ? x[i] : l[i % 16];
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            l[i] = l[i] > l[i + w] ? l[i] : l[i + w];
    return l[0];
}

static int argmax_c(const float *x, int n) {
    float mx = max_c(x, n);
    if (!(mx > -INFINITY)) return 0;
    for (int i = 0; i < n; i++)
        if (x[i] == mx) return i;
    return 0;
}

static float sum_exp_c(const float *x, int n, float mx) {
    float l[16] = {0};
    for (int i = 0; i < n; i++)
        l[i % 16] += t5k_exp(x[i] - mx);
    return tree_sum(l);
}

static void softmax_c(float *x, int n, float mx) {
    float l[16] = {0};
    for (int i = 0; i < n; i++)
        l[i % 16] += (x[i] = t5k_exp(x[i] - mx));
    float inv = 1.0f / tree_sum(l);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void rmsnorm_c(float *y, const float *x, const float *w, int d, float eps) {
    float l[16] = {0};
    for (int i = 0; i < d; i++)
        l[i % 16] = fmaf(x[i], x[i], l[i % 16]);
    float inv = 1.0f / sqrtf(tree_sum(l) / (float)d + eps);
    for (int i = 0; i < d; i++)
        y[i] = w[i] * (x[i] * inv);
}

static void gelu_c(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        a[i] = b ? t5k_gelu(a[i]) * b[i] : t5k_gelu(a[i]);
}

static void relu_c(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = a[i] > 0.0f ? a[i] : 0.0f; /* as vmaxps(a, 0): 0 for -0 and NaN */
        a[i] = b ? v * b[i] : v;
    }
}

const t5k_ops t5k_generic_ops = {gemm_c, max_c, argmax_c, sum_exp_c, softmax_c, rmsnorm_c, gelu_c, relu_c};

/* ---- products ---- */

/* k steps per block (a strip's panels, 96 KB at most, stay in L2 across the row tiles, each
 * panel read contiguously; measured best of 128..1024 on the model's shapes; one row tile
 * streams all of k at once), rows per work item */
enum { KC = 512, MC = 64 };
/* x bytes above which a product's work items go row block by row block (mm_worker) */
#define BY_ROWS_BYTES ((size_t)512 * 1024)

static t5k_bop mat_bop(const t5_mat *w) {
    return (t5k_bop){w->p, w->dtype, (size_t)T5_PANEL * w->k, T5_PANEL};
}

/* one thread: the chain over all of k in blocks of KC, accumulators carried in y */
static void gemm_blocked(const t5k_ops *o, const float *x, size_t ldx, int rows, int K, const t5k_bop *b,
                         int c0, int c1, float *y, size_t ldy) {
    if (K == 0) {
        for (int r = 0; r < rows; r++)
            memset(y + (size_t)r * ldy + c0, 0, (size_t)(c1 - c0) * sizeof *y);
        return;
    }
    int kc = rows > 8 ? KC : K;
    for (int k0 = 0; k0 < K; k0 += kc)
        o->gemm(x, ldx, rows, k0, k0 + kc < K ? k0 + kc : K, b, c0, c1, y, ldy);
}

void t5_gemm(t5_isa isa, const float *x, size_t ldx, int rows, int K, const float *b, size_t ldb, int n,
             float *y, size_t ldy) {
    t5k_bop bo = {b, ST_F32, T5_PANEL, ldb};
    gemm_blocked(t5_kernel_ops(isa), x, ldx, rows, K, &bo, 0, n, y, ldy);
}

typedef struct {
    const t5k_ops *o;
    t5_isa isa;
    t5_pool *pool;
    const float *x;
    const t5k_i8_ops *i8;     /* when an output is int8: its kernels, and x quantized for them */
    t5k_xq xq[2];             /* [a16]: for int8 matrices, for a16 ones */
    const t5k_bf16_ops *bf16; /* when an output is bfloat16: its kernels, and x rounded for them */
    const uint32_t *xb;       /* [rows][t5_bf16_ldx] words in bf16's xfmt */
    int rows, k;
    const t5_mm_out *outs;
    int n_outs;
    int mc;       /* rows per item */
    int al;       /* column groups per unit of the split (the ISA's widest register tile) */
    int nch[8];   /* column chunks of outs[i]: its units spread evenly over them */
    int items[8]; /* work items of outs[0..i] together */
    int act;      /* T5_ACT_* applied to outs[0] (times outs[1]) after the product, or -1 */
    int rb;       /* row blocks */
    int by_rows;  /* items in row block major order (mm_worker) */
} mm_job;

/* One output's product over rows [r0, r0 + nr) and columns [c0, c1). */
static void mm_block(const mm_job *jb, const t5_mm_out *out, int r0, int nr, int c0, int c1) {
    if (out->w.dtype == ST_I8) {
        t5k_xq xr = t5k_i8_rows(jb->i8, &jb->xq[out->w.a16], r0, out->w.a16);
        jb->i8->gemm(&xr, nr, &out->w, c0, c1, out->y + (size_t)r0 * out->n, (size_t)out->n);
        return;
    }
    if (out->w.dtype == ST_BF16X2) {
        size_t ldx = t5_bf16_ldx(jb->bf16->xfmt, jb->k);
        jb->bf16->gemm(jb->xb + (size_t)r0 * ldx, ldx, nr, &out->w, c0, c1, out->y + (size_t)r0 * out->n,
                       (size_t)out->n);
        return;
    }
    t5k_bop b = mat_bop(&out->w);
    gemm_blocked(jb->o, jb->x + (size_t)r0 * jb->k, jb->k, nr, jb->k, &b, c0, c1,
                 out->y + (size_t)r0 * out->n, out->n);
}

/* Work items: for each output, its column chunks x row blocks; with by_rows (an x larger than
 * L2 can hold beside the weights: the encoder's inputs together) row block major instead, so
 * that a thread's consecutive items share the row block, whose x stays in L2 while the chunks'
 * weights stream through, prefetched strip by strip (chunk major, each row block's x came from
 * L3 again for every chunk: 0.93-0.96x the rate on 4096 rows, Sapphire Rapids). With an
 * activation, one item computes the block of both outputs (of one) and applies act to it while
 * it is in cache. */
static void mm_worker(void *arg, int ith, int nth) {
    const mm_job *jb = arg;
    (void)ith, (void)nth;
    int n_items = jb->items[jb->act >= 0 ? 0 : jb->n_outs - 1];
    for (int it; (it = t5_pool_next(jb->pool)) < n_items;) {
        int o = 0;
        while (it >= jb->items[o])
            o++;
        int local = it - (o ? jb->items[o - 1] : 0), nch = jb->nch[o];
        int chunk = jb->by_rows ? local % nch : local / jb->rb,
            r0 = (jb->by_rows ? local / nch : local % jb->rb) * jb->mc;
        const t5_mm_out *out = &jb->outs[o];
        int units = (out->n + jb->al * T5_PANEL - 1) / (jb->al * T5_PANEL);
        int c0 = chunk * units / nch * jb->al * T5_PANEL, c1 = (chunk + 1) * units / nch * jb->al * T5_PANEL;
        c1 = c1 < out->n ? c1 : out->n;
        int nr = jb->rows - r0 < jb->mc ? jb->rows - r0 : jb->mc;
        mm_block(jb, out, r0, nr, c0, c1);
        if (jb->act < 0) continue;
        const t5_mm_out *g = jb->n_outs > 1 ? &jb->outs[1] : NULL;
        if (g) mm_block(jb, g, r0, nr, c0, c1);
        for (int r = r0; r < r0 + nr; r++)
            t5_activate(jb->isa, jb->act, out->y + (size_t)r * out->n + c0,
                        g ? g->y + (size_t)r * g->n + c0 : NULL, (size_t)(c1 - c0));
    }
}

/* The activations as the compute type multiplies them (t5.h): rounded to bfloat16 for the
 * bfloat16 kernels bf when an output is bfloat16 (xb), quantized for the int8 kernels i8 when
 * an output is int8 (xq), by blocks of rows over the pool. */
typedef struct {
    t5_pool *pool;
    const float *x; /* [rows][k] */
    int rows, k;
    const t5k_bf16_ops *bf;
    uint32_t *xb; /* NULL when no output is bfloat16 */
    const t5k_i8_ops *i8;
    t5k_xq xq[2]; /* [a16]: q NULL when no output is int8 (a16) */
} prep_job;

/* rows per item; values prepared on the calling thread at most, divided by the threads (what
 * one thread does in about the time of waking the pool: a batch-32 decoder step's on 2 threads) */
enum { PREP_ROWS = 8, PREP_INLINE = 1 << 16 };

static void prep_rows(const prep_job *jb, int r0) {
    int nr = jb->rows - r0 < PREP_ROWS ? jb->rows - r0 : PREP_ROWS;
    const float *x = jb->x + (size_t)r0 * jb->k;
    if (jb->xb)
        jb->bf->pack(x, (size_t)jb->k, nr, jb->k, jb->xb + (size_t)r0 * t5_bf16_ldx(jb->bf->xfmt, jb->k));
    for (int a16 = 0; a16 < 2; a16++)
        if (jb->xq[a16].q) {
            t5k_xq xr = t5k_i8_rows(jb->i8, &jb->xq[a16], r0, a16);
            jb->i8->quantize(x, (size_t)jb->k, nr, jb->k, a16, (void *)xr.q, xr.ldq, (float *)xr.s);
        }
}

static void prep_worker(void *arg, int ith, int nth) {
    const prep_job *jb = arg;
    (void)ith, (void)nth;
    for (int it; (it = t5_pool_next(jb->pool)) * PREP_ROWS < jb->rows;)
        prep_rows(jb, it * PREP_ROWS);
}

/* Fills jb->xb / jb->xq as outs need them. 0, or -1 out of memory (buffers the caller frees). */
static int prepare_x(prep_job *jb, const t5_mm_out *outs, int n_outs) {
    int any_i8[2] = {0, 0}, any_bf16 = 0;
    for (int i = 0; i < n_outs; i++) {
        if (outs[i].w.dtype == ST_I8) any_i8[outs[i].w.a16] = 1;
        any_bf16 |= outs[i].w.dtype == ST_BF16X2;
    }
    if (!any_i8[0] && !any_i8[1] && !any_bf16) return 0;
    if (any_bf16 &&
        !(jb->xb = malloc((size_t)jb->rows * t5_bf16_ldx(jb->bf->xfmt, jb->k) * sizeof *jb->xb + 1)))
        return -1;
    for (int a16 = 0; a16 < 2; a16++)
        if (any_i8[a16] && t5k_i8_alloc(jb->i8, jb->rows, jb->k, a16, &jb->xq[a16]) != 0) return -1;
    if ((size_t)jb->rows * jb->k * t5_pool_threads(jb->pool) <= PREP_INLINE)
        for (int r0 = 0; r0 < jb->rows; r0 += PREP_ROWS)
            prep_rows(jb, r0);
    else
        t5_pool_run(jb->pool, prep_worker, jb);
    return 0;
}

static void free_prepared(prep_job *jb) {
    free(jb->xb);
    for (int a16 = 0; a16 < 2; a16++)
        free((void *)jb->xq[a16].q), free((void *)jb->xq[a16].s);
}

int t5_matmul(const t5_model *m, t5_pool *pool, const float *x, int rows, int k, const t5_mm_out *outs,
              int n_outs) {
    return t5_matmul_act(m, pool, x, rows, k, outs, n_outs, -1);
}

int t5_matmul_act(const t5_model *m, t5_pool *pool, const float *x, int rows, int k, const t5_mm_out *outs,
                  int n_outs, int act) {
    if (rows <= 0 || n_outs <= 0) return 0;
    if (act >= 0 && (n_outs > 2 || (n_outs == 2 && outs[1].n != outs[0].n))) return -1;
    for (; n_outs > 8; n_outs -= 8, outs += 8) /* (never more than 3 today) */
        if (t5_matmul(m, pool, x, rows, k, outs, 8) != 0) return -1;
    const t5k_i8_ops *i8 = m->i8 ? m->i8 : t5_kernel_i8_ops(m->isa);
    if (i8->fewer && rows < i8->min_rows) i8 = i8->fewer; /* AMX: VNNI for few rows */
    const t5k_bf16_ops *bf = m->bf16 ? m->bf16 : t5_kernel_bf16_ops(m->isa);
    prep_job pj = {pool, x, rows, k, bf, NULL, i8, {{NULL, 0, NULL, 0}, {NULL, 0, NULL, 0}}};
    if (prepare_x(&pj, outs, n_outs) != 0) {
        free_prepared(&pj);
        return -1;
    }
    int nth = t5_pool_threads(pool), groups = 0;
    for (int i = 0; i < n_outs; i++)
        groups += (outs[i].n + T5_PANEL - 1) / T5_PANEL;
    /* rows per item: 64, fewer when the columns alone give too few items (rows when columns run short) */
    int mc = MC;
    while (mc > 8 && ((rows + mc - 1) / mc) * ((groups + 2) / 3) < 4 * nth)
        mc /= 2;
    int rb = (rows + mc - 1) / mc;
    /* column chunks: about 8 items per thread of at most 24 groups (12 per output when an item
     * computes two, with an activation), each chunk a whole number of
     * the ISA's register tile widths (3 groups on AVX-512, 4 on AVX2), spread evenly (chunks of
     * one output differ by one unit at most, so that the threads finish together) */
    int al = m->isa >= T5_ISA_AVX512 ? 3 : m->isa == T5_ISA_AVX2 ? 4 : 1;
    if (((groups + al - 1) / al) * rb < 4 * nth)
        al = 1; /* too few units for the threads (many cores, small products) */
    int cg = (groups * rb + 8 * nth - 1) / (8 * nth), cmax = act >= 0 && n_outs == 2 ? 12 : 24;
    cg = cg < 1 ? 1 : cg > cmax ? cmax : cg; /* a gated item reads both outputs' chunks: 24 groups */
    int cu = (cg + al - 1) / al;             /* units per chunk */
    mm_job jb = {t5_kernel_ops(m->isa),
                 m->isa,
                 pool,
                 x,
                 i8,
                 {pj.xq[0], pj.xq[1]},
                 pj.bf,
                 pj.xb,
                 rows,
                 k,
                 outs,
                 n_outs,
                 mc,
                 al,
                 {0},
                 {0},
                 act,
                 rb,
                 (size_t)rows * k * sizeof *x > BY_ROWS_BYTES};
    for (int i = 0, acc = 0; i < n_outs; i++) {
        int units = (outs[i].n + al * T5_PANEL - 1) / (al * T5_PANEL);
        jb.nch[i] = (units + cu - 1) / cu;
        acc += jb.nch[i] * rb;
        jb.items[i] = acc;
    }
    t5_pool_run(pool, mm_worker, &jb);
    free_prepared(&pj);
    return 0;
}

void t5_vecmat(t5_isa isa, const float *a, int T, const t5k_bop *b, int m, float *y) {
    gemm_blocked(t5_kernel_ops(isa), a, (size_t)T, 1, T, b, 0, m, y, (size_t)m);
}

/* ---- the rest of the step ---- */

float t5_max(t5_isa isa, const float *x, int n) {
    return t5_kernel_ops(isa)->max(x, n);
}

float t5_sum_exp(t5_isa isa, const float *x, int n, float mx) {
    return t5_kernel_ops(isa)->sum_exp(x, n, mx);
}

int t5_argmax(t5_isa isa, const float *x, int V) {
    return t5_kernel_ops(isa)->argmax(x, V);
}

void t5_activate(t5_isa isa, int act, float *a, const float *b, size_t n) {
    if (act == T5_ACT_GELU_NEW) return t5_kernel_ops(isa)->gelu(a, b, n);
    if (act == T5_ACT_RELU) return t5_kernel_ops(isa)->relu(a, b, n);
    for (size_t i = 0; i < n; i++) { /* the same scalar code on every ISA */
        float x = a[i], v;
        if (act == T5_ACT_SILU)
            v = x / (1.0f + t5k_exp(-x));
        else
            v = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        a[i] = b ? v * b[i] : v;
    }
}

/* ---- residual adds and norms on the pool (large inputs: the encoder's) ---- */

enum { PAR_MIN = 32768, PAR_CHUNK = 16384 }; /* elements: below PAR_MIN one thread does it all */

typedef struct {
    t5_pool *pool;
    t5_isa isa;
    const t5k_ops *o;
    float *h, *y;
    const float *add, *w;
    int rows, d, rows_per_item;
    float eps;
} elem_job;

void t5_add_rows(float *restrict h, const float *restrict a, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        h[i] += a[i];
        h[i + 1] += a[i + 1];
        h[i + 2] += a[i + 2];
        h[i + 3] += a[i + 3];
    }
    for (; i < n; i++)
        h[i] += a[i];
}

static void residual_norm_rows(const elem_job *j, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        float *hr = j->h + (size_t)r * j->d;
        if (j->add) t5_add_rows(hr, j->add + (size_t)r * j->d, j->d);
        j->o->rmsnorm(j->y + (size_t)r * j->d, hr, j->w, j->d, j->eps);
    }
}

static void residual_norm_worker(void *arg, int ith, int nth) {
    const elem_job *j = arg;
    (void)ith, (void)nth;
    for (int it; (it = t5_pool_next(j->pool)) * j->rows_per_item < j->rows;) {
        int r0 = it * j->rows_per_item,
            r1 = r0 + j->rows_per_item < j->rows ? r0 + j->rows_per_item : j->rows;
        residual_norm_rows(j, r0, r1);
    }
}

void t5_residual_rmsnorm(t5_isa isa, t5_pool *pool, float *h, const float *add, float *y, const float *w,
                         int rows, int d, float eps) {
    elem_job j = {pool, isa, t5_kernel_ops(isa), h, y, add, w, rows, d, 1, eps};
    if ((size_t)rows * d < PAR_MIN || t5_pool_threads(pool) == 1) return residual_norm_rows(&j, 0, rows);
    j.rows_per_item = PAR_CHUNK / d > 0 ? PAR_CHUNK / d : 1;
    t5_pool_run(pool, residual_norm_worker, &j);
}

void t5_softmax_isa(t5_isa isa, float *x, int n) {
    const t5k_ops *o = t5_kernel_ops(isa);
    float mx = o->max(x, n);
    if (!(mx > -INFINITY)) { /* everything masked: uniform, as no valid choice exists */
        for (int i = 0; i < n; i++)
            x[i] = 1.0f / n;
        return;
    }
    o->softmax(x, n, mx);
}

void t5_softmax(float *x, int n) {
    t5_softmax_isa(T5_ISA_GENERIC, x, n);
}

float t5_logsumexp(t5_isa isa, const float *x, int n) {
    float mx = t5_max(isa, x, n);
    if (mx == -INFINITY) return -INFINITY;
    return mx + logf(t5_sum_exp(isa, x, n, mx));
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
    /* a degenerate max_distance (<= max_exact: denom 0 or negative) gives inf/NaN: clamp before
     * the conversion (valid configurations never reach these) */
    if (!(v < (float)n)) v = (float)n;
    if (!(v > 0)) v = 0;
    long large = max_exact + (long)v;
    if (large > n - 1) large = n - 1;
    return bucket + (int)large;
}
