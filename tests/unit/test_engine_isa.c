/* test_engine_isa.c - one answer on every CPU: the engine's outputs are the same bits
 * under every instruction set the CPU has (generic C, AVX2, AVX-512), alone and
 * batched, with any thread count. For each fixture model: greedy, beam and seeded
 * sampling results (ids, per-token logprobs, scores) of several inputs, each run
 * alone (1 thread) and all in one continuous batch (3 threads), compared bit for
 * bit with the generic path alone; the encoder output too. And the kernels
 * themselves (t5_kernel_ops) on random data with every tail length: products (float32
 * and 16-bit panels, K blocks), max, argmax, sum of exp, softmax, RMSNorm, gelu and
 * relu equal across the ISAs; the int8 kernels (generic, AVX2, AVX-512 VNNI and AMX-INT8 where
 * the CPU has them) equal to an int64 reference. (Exactness to transformers: test_engine_golden.c.)
 * Fixtures come from $FIXTURES (tests/run.sh sets it), default tests/fixtures. */
#include <check.h>
#include "check_run.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5.h"
#include "t5_dev.h"

static const char *fixtures(void) {
    const char *f = getenv("FIXTURES");
    return f && *f ? f : "tests/fixtures";
}

/* the ISAs this CPU runs, generic first */
static int isas(t5_isa *out) {
    int n = 0;
    for (int i = T5_ISA_GENERIC; i <= T5_ISA_AMX; i++)
        if (t5_cpu_isa((t5_isa)i) == (t5_isa)i) out[n++] = (t5_isa)i;
    return n;
}

enum { N_IN = 3, N_KIND = 3 };

typedef struct {
    t5_result r;
    int got;
} slot;

static void on_done(void *user, t5_result *r) {
    slot *s = user;
    s->r = *r;
    s->got = 1;
}

static t5_gen_params params(int kind) {
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = 10;
    p.want_logprobs = 1;
    if (kind == 1) p.num_beams = 3, p.num_return_sequences = 2;
    if (kind == 2) p.do_sample = 1, p.seed = 11, p.num_return_sequences = 2, p.top_k = 20;
    return p;
}

/* results of every (input, kind): alone through t5_generate on 1 thread, or all in one batch on 3 */
static void run_all(const t5_model *m, const int32_t ids[N_IN][8], int batched, slot *out) {
    char err[256];
    if (!batched) {
        for (int i = 0; i < N_IN * N_KIND; i++) {
            t5_gen_params p = params(i % N_KIND);
            ck_assert_msg(t5_generate(m, ids[i / N_KIND], 8, &p, 1, &out[i].r, err, sizeof err) == 0, "%s",
                          err);
            out[i].got = 1;
        }
        return;
    }
    t5_batch *b = t5_batch_create(m, 64, 3, err, sizeof err);
    ck_assert_msg(b, "%s", err);
    for (int i = 0; i < N_IN * N_KIND; i++) {
        t5_gen_params p = params(i % N_KIND);
        ck_assert_msg(t5_batch_add(b, ids[i / N_KIND], 8, &p, NULL, on_done, &out[i], err, sizeof err) >= 0,
                      "%s", err);
    }
    while (t5_batch_step(b) > 0)
        ;
    t5_batch_free(b);
}

static void same_result(const t5_result *a, const t5_result *b, const char *what) {
    ck_assert_msg(a->n_seqs == b->n_seqs, "%s: %d vs %d sequences", what, a->n_seqs, b->n_seqs);
    for (int s = 0; s < a->n_seqs; s++) {
        const t5_sequence *x = &a->seqs[s], *y = &b->seqs[s];
        ck_assert_msg(x->n == y->n && !memcmp(x->ids, y->ids, (size_t)x->n * sizeof *x->ids),
                      "%s: ids of sequence %d", what, s);
        ck_assert_msg(!memcmp(x->logprobs, y->logprobs, (size_t)x->n * sizeof *x->logprobs),
                      "%s: logprobs of sequence %d differ", what, s);
        ck_assert_msg(!memcmp(&x->score, &y->score, sizeof x->score) && x->finish == y->finish,
                      "%s: score / finish of sequence %d", what, s);
    }
}

static void check_model(const char *name) {
    char path[1024], err[512], what[256];
    snprintf(path, sizeof path, "%s/models/%s", fixtures(), name);
    t5_isa list[8];
    int n_isa = isas(list);
    slot base[N_IN * N_KIND], cur[N_IN * N_KIND];
    float *enc0 = NULL;
    int32_t ids[N_IN][8];
    for (int k = 0; k < n_isa; k++) {
        t5_load_params o;
        t5_load_default_params(&o);
        o.isa = list[k];
        t5_model *m = t5_model_load_with(path, &o, err, sizeof err);
        ck_assert_msg(m, "cannot load %s: %s", path, err);
        ck_assert_int_eq(t5_model_isa(m), list[k]);
        const t5_config *c = t5_model_config(m);
        uint64_t rng = 3;
        for (int i = 0; i < N_IN; i++) {
            for (int j = 0; j < 7; j++)
                ids[i][j] = 2 + (int32_t)(t5_rng_next(&rng) % (uint64_t)(c->vocab_size - 2));
            ids[i][7] = c->eos_token_id;
        }
        float *enc = malloc(8 * (size_t)c->d_model * sizeof *enc);
        ck_assert_int_eq(t5_encode(m, ids[0], 8, enc, 2, err, sizeof err), 0);
        if (!enc0)
            enc0 = enc;
        else {
            ck_assert_msg(!memcmp(enc, enc0, 8 * (size_t)c->d_model * sizeof *enc),
                          "%s: encoder output under %s", name, t5_isa_name(list[k]));
            free(enc);
        }
        for (int batched = 0; batched < 2; batched++) {
            slot *dst = k == 0 && !batched ? base : cur;
            memset(dst, 0, sizeof cur);
            run_all(m, ids, batched, dst);
            if (dst == base) continue;
            for (int i = 0; i < N_IN * N_KIND; i++) {
                snprintf(what, sizeof what, "%s, input %d, %s, %s %s", name, i / N_KIND,
                         (const char *[]){"greedy", "beam", "sampling"}[i % N_KIND], t5_isa_name(list[k]),
                         batched ? "batched" : "alone");
                ck_assert_msg(cur[i].got, "%s: no result", what);
                same_result(&base[i].r, &cur[i].r, what);
                t5_result_free(&cur[i].r);
            }
        }
        t5_model_free(m);
    }
    for (int i = 0; i < N_IN * N_KIND; i++)
        t5_result_free(&base[i].r);
    free(enc0);
    printf("%s: greedy, beam, sampling with logprobs identical under", name);
    for (int k = 0; k < n_isa; k++)
        printf(" %s", t5_isa_name(list[k]));
    printf(", alone and batched\n");
}

START_TEST(models) {
    check_model("t5-tiny-gated");
    check_model("t5-tiny-relu");
    check_model("t5-tiny-pegasus");
}
END_TEST

static float frand(uint64_t *s) {
    return (float)((double)(t5_rng_next(s) >> 11) / 9007199254740992.0 * 4.0 - 2.0);
}

/* every kernel of every ISA against the generic one, bit for bit */
START_TEST(kernels) {
    t5_isa list[8];
    int n_isa = isas(list);
    uint64_t rng = 5;
    enum { R = 19, K = 300, N = 53, V = 1000, NP = 11, WN = 16 * 13 };
    float *x = malloc(R * K * sizeof *x), *w = malloc(K * N * sizeof *w), *y0 = malloc(R * WN * sizeof *y0),
          *y = malloc(R * WN * sizeof *y);
    float *widef = malloc((size_t)K * WN * sizeof *widef); /* row-major [K, WN], and as bf16 */
    uint16_t *wideh = malloc((size_t)K * WN * sizeof *wideh);
    for (int i = 0; i < K * WN; i++) {
        widef[i] = frand(&rng);
        wideh[i] = t5_bf16_round(widef[i]);
    }
    uint16_t *wp = calloc((size_t)4 * 16 * K, sizeof *wp); /* 16-bit panels: 4 groups of 16 columns */
    for (int i = 0; i < R * K; i++)
        x[i] = frand(&rng);
    for (int i = 0; i < K * N; i++)
        w[i] = frand(&rng);
    float *wf = malloc((size_t)NP * 16 * K * sizeof *wf);
    for (int i = 4 * 16 * K; i < NP * 16 * K; i++)
        wf[i] = frand(&rng);
    uint16_t *wh = calloc((size_t)4 * 16 * K, sizeof *wh);
    for (int i = 0; i < 4 * 16 * K;
         i++) { /* bf16: rounded-down floats; f16: exponents 2^-15.. 2^5, subnormals */
        wf[i] = frand(&rng);
        uint32_t bits;
        memcpy(&bits, &wf[i], 4);
        wp[i] = (uint16_t)(bits >> 16);
        uint64_t r = t5_rng_next(&rng);
        wh[i] = (uint16_t)((r & 0x83ff) | (r >> 32) % 21 << 10);
    }
    float *v = malloc(V * sizeof *v), *v0 = malloc(V * sizeof *v0), *v1 = malloc(V * sizeof *v1);
    for (int i = 0; i < V; i++)
        v[i] = frand(&rng) * 20.0f;
    v[V / 3] = -INFINITY, v[V / 2] = NAN;
    for (int k = 1; k < n_isa; k++) {
        const t5k_ops *g = t5_kernel_ops(T5_ISA_GENERIC), *o = t5_kernel_ops(list[k]);
        const char *nm = t5_isa_name(list[k]);
        for (int rows = 1; rows <= R; rows++)  /* every row tile and leftover */
            for (int n = 1; n <= N; n += 13) { /* row-major float32 B, k in two blocks */
                t5k_bop b = {w, ST_F32, 16, N};
                for (int k0 = 0; k0 < K; k0 += 128) {
                    int k1 = k0 + 128 < K ? k0 + 128 : K;
                    g->gemm(x, K, rows, k0, k1, &b, 0, n, y0, N);
                    o->gemm(x, K, rows, k0, k1, &b, 0, n, y, N);
                }
                for (int r = 0; r < rows; r++)
                    ck_assert_msg(!memcmp(y0 + r * N, y + r * N, (size_t)n * sizeof *y),
                                  "%s gemm %dx%d row %d", nm, rows, n, r);
            }
        for (int dt = ST_F32; dt <= ST_BF16; dt += ST_BF16 - ST_F32) /* one row over a wide row-major B */
            for (int rows = 1; rows <= 2; rows++)                    /* (attention: 8-group row tiles) */
                for (int c0 = 0; c0 <= 16; c0 += 16)
                    for (int n = c0 + 1; n <= WN; n += 17) {
                        t5k_bop b = {dt == ST_BF16 ? (const void *)wideh : widef, dt, 16, WN};
                        for (int k0 = 0; k0 < K; k0 += 128) {
                            int k1 = k0 + 128 < K ? k0 + 128 : K;
                            g->gemm(x, K, rows, k0, k1, &b, c0, n, y0, WN);
                            o->gemm(x, K, rows, k0, k1, &b, c0, n, y, WN);
                        }
                        for (int r = 0; r < rows; r++)
                            ck_assert_msg(
                                !memcmp(y0 + r * WN + c0, y + r * WN + c0, (size_t)(n - c0) * sizeof *y),
                                "%s gemm row-major dtype %d %dx[%d, %d) row %d", nm, dt, rows, c0, n, r);
                    }
        for (int rows = 1; rows <= R; rows++) /* float32 panels: blocks of several panels, a masked tail */
            for (int n = 1; n <= NP * 16; n += n < 40 ? 13 : 29) {
                t5k_bop b = {wf, ST_F32, (size_t)16 * K, 16};
                g->gemm(x, K, rows, 0, K, &b, 0, n, y0, NP * 16);
                o->gemm(x, K, rows, 0, K, &b, 0, n, y, NP * 16);
                for (int r = 0; r < rows; r++)
                    ck_assert_msg(!memcmp(y0 + r * NP * 16, y + r * NP * 16, (size_t)n * sizeof *y),
                                  "%s gemm f32 panels %dx%d row %d", nm, rows, n, r);
                if (n > 16) { /* a column range starting at a later group */
                    g->gemm(x, K, rows, 0, K, &b, 16, n, y0, NP * 16);
                    o->gemm(x, K, rows, 0, K, &b, 16, n, y, NP * 16);
                    for (int r = 0; r < rows; r++)
                        ck_assert_msg(!memcmp(y0 + r * NP * 16 + 16, y + r * NP * 16 + 16,
                                              (size_t)(n - 16) * sizeof *y),
                                      "%s gemm f32 panels %dx[16, %d) row %d", nm, rows, n, r);
                }
            }
        for (int dt = ST_F16; dt <= ST_BF16; dt++) {
            t5k_bop b = {dt == ST_BF16 ? wp : wh, dt, (size_t)16 * K, 16};
            for (int n = 1; n <= 64; n += 21) {
                g->gemm(x, K, R, 0, K, &b, 0, n, y0, 64);
                o->gemm(x, K, R, 0, K, &b, 0, n, y, 64);
                for (int r = 0; r < R; r++)
                    ck_assert_msg(!memcmp(y0 + r * 64, y + r * 64, (size_t)n * sizeof *y),
                                  "%s gemm dtype %d n %d", nm, dt, n);
            }
        }
        for (int n = 1; n <= V; n += n < 40 ? 1 : 97) {
            ck_assert_msg(g->argmax(v, n) == o->argmax(v, n), "%s argmax n %d", nm, n);
            float a = g->max(v, n), b = o->max(v, n);
            ck_assert_msg(!memcmp(&a, &b, 4), "%s max n %d", nm, n);
            float mx = a > -INFINITY ? a : 0;
            a = g->sum_exp(v, n, mx), b = o->sum_exp(v, n, mx);
            ck_assert_msg(!memcmp(&a, &b, 4), "%s sum_exp n %d: %g vs %g", nm, n, a, b);
            memcpy(v0, x, (size_t)n * sizeof *v0), memcpy(v1, x, (size_t)n * sizeof *v1);
            g->softmax(v0, n, mx), o->softmax(v1, n, mx);
            ck_assert_msg(!memcmp(v0, v1, (size_t)n * sizeof *v0), "%s softmax n %d", nm, n);
            g->rmsnorm(v0, x, x + 7, n, 1e-6f), o->rmsnorm(v1, x, x + 7, n, 1e-6f);
            ck_assert_msg(!memcmp(v0, v1, (size_t)n * sizeof *v0), "%s rmsnorm n %d", nm, n);
            for (int f = 0; f < 2; f++) {
                for (int i = 0; i < n; i++) /* finite values over the whole range of gelu's tanh */
                    v0[i] = v1[i] = x[i] * 4.0f;
                (f ? g->gelu : g->relu)(v0, n > 1 ? x + 11 : NULL, (size_t)n);
                (f ? o->gelu : o->relu)(v1, n > 1 ? x + 11 : NULL, (size_t)n);
                ck_assert_msg(!memcmp(v0, v1, (size_t)n * sizeof *v0), "%s %s n %d", nm, f ? "gelu" : "relu",
                              n);
            }
        }
        printf("kernels: %s equal to generic C bit for bit\n", nm);
    }
    /* the exp polynomial near its edges, against libm: ~2e-7 plus the rounding of x log2 e */
    for (float t = -90.0f; t <= 88.0f; t += 0.37f) {
        float e = t5_kernel_ops(T5_ISA_GENERIC)->sum_exp(&t, 1, 0.0f), ref = expf(t);
        ck_assert_msg(t < -87.0f ? e == 0.0f : fabsf(e - ref) <= (3e-7f + 6e-8f * fabsf(t)) * ref,
                      "exp(%g) = %g vs %g", t, e, ref);
    }
    free(x), free(w), free(y0), free(y), free(wp), free(wf), free(wh), free(v), free(v0), free(v1);
    free(widef), free(wideh);
}
END_TEST

/* Whether column c is in [c0, c1); outside, the kernel must not have written y (0xff bytes). */
static int in_range(const char *name, float got, int c, int c0, int c1) {
    if (c >= c0 && c < c1) return 1;
    uint32_t b;
    memcpy(&b, &got, 4);
    if (b != 0xffffffffu) ck_abort_msg("%s wrote column %d outside [%d, %d)", name, c, c0, c1);
    return 0;
}

/* The int8 products (t5_kernel_i8_list: every int8 table this CPU runs) on random data and on
 * extremes (every product +-127 * 127: vpmaddubsw would saturate here), every tail (k not a
 * multiple of 4 or 64, partial panels, column ranges from inside the matrix): each table's
 * quantizer gives the C quantizer's values and scales, and its product the bits of an
 * independent reference: int64 dot products per group of 64 over the row-major int8 values,
 * then the float epilogue s = fma((float)acc, xs * ws, s) in increasing group, y = s. Both
 * activation widths: int8, and a16 (16-bit values, the X2 layouts' halves recombined here). */
START_TEST(kernels_i8) {
    const t5k_i8_ops *tabs[8];
    int n_tab = t5_kernel_i8_list(tabs, 8);
    ck_assert_int_ge(n_tab, 1);
    ck_assert_str_eq(tabs[0]->name, "generic");
    enum { R = 40, N = 53, KMAX = 333 };
    static const int ks[] = {1, 3, 4, 63, 64, 65, 130, 200, 256, 333};
    uint64_t rng = 9;
    float *x = malloc(R * KMAX * sizeof *x), *wf = malloc(KMAX * sizeof *wf),
          *xs = malloc(R * 8 * sizeof *xs);
    float *xs0 = malloc(R * 8 * sizeof *xs0), *y = malloc(R * N * sizeof *y),
          *ws = malloc(N * 8 * sizeof *ws), *ref = malloc(R * N * sizeof *ref);
    int8_t *wq = malloc(N * KMAX);
    int16_t *xq0 = malloc(R * (KMAX + 4) * 2);
    void *xq = malloc(R * (KMAX + 4) * 2);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int extreme = 0; extreme < 2; extreme++)
            for (int a16 = 0; a16 < 2; a16++) {
                int K = ks[ki], ng = (K + 63) / 64;
                size_t ldq = (size_t)(K + 3) / 4 * 4;
                void *buf = aligned_alloc(64, t5_mat_i8_bytes(N, K));
                memset(buf, 0, t5_mat_i8_bytes(N, K));
                t5_mat w;
                t5_mat_i8_init(&w, buf, N, K);
                w.a16 = a16;
                for (int j = 0; j < N; j++) {
                    for (int i = 0; i < K; i++) /* extreme: +-1 (all 127 after scaling), signs per column */
                        wf[i] = extreme ? (j % 3 ? 1.0f : -1.0f) : frand(&rng) * (1 + j % 5);
                    for (int g = 0; g < ng; g++)
                        t5_quantize_row_i8(wf + 64 * g, K - 64 * g < 64 ? K - 64 * g : 64,
                                           wq + (size_t)j * K + 64 * g, &ws[j * ng + g]);
                    t5_mat_i8_set(&w, j, wq + (size_t)j * K, ws + j * ng);
                }
                for (int i = 0; i < R * K; i++)
                    x[i] = extreme ? (i / K % 2 ? -3.0f : 3.0f) : frand(&rng) * (i % 17 == 0 ? 50.0f : 1.0f);
                if (!extreme)
                    x[K / 2] = 0, x[R * K - 1] = NAN; /* a NaN activation: quantized like the C code */
                t5_quantize_x_i8(x, (size_t)K, R, K, T5K_XQ_S16, a16, xq0, ldq, xs0);
                for (int r = 0; r < R; r++) /* the reference, independent of the rows and columns asked */
                    for (int c = 0; c < N; c++) {
                        float sum = 0.0f;
                        for (int g = 0; g < ng; g++) {
                            int64_t acc = 0;
                            for (int i = 64 * g; i < K && i < 64 * (g + 1); i++)
                                acc += (int64_t)xq0[(size_t)r * ldq + i] * wq[(size_t)c * K + i];
                            ck_assert(acc > -(1 << (a16 ? 29 : 24)) && acc < (1 << (a16 ? 29 : 24)));
                            sum = fmaf((float)acc, xs0[r * ng + g] * ws[c * ng + g], sum);
                        }
                        ref[r * N + c] = sum;
                    }
                for (int t = 0; t < n_tab; t++) {
                    const t5k_i8_ops *o = tabs[t];
                    int f = a16 ? o->xfmt_a16 : o->xfmt, x2 = f == T5K_XQ_S8X2 || f == T5K_XQ_U8X2;
                    size_t ld = x2 ? 2 * ldq : ldq; /* X2: the hi half, then the lo half */
                    o->quantize(x, (size_t)K, R, K, a16, xq, ld, xs);
                    ck_assert_msg(!memcmp(xs, xs0, (size_t)R * ng * sizeof *xs),
                                  "%s quantize scales K %d a16 %d", o->name, K, a16);
                    for (int r = 0; r < R; r++)
                        for (size_t i = 0; i < ldq; i++) {
                            size_t at = (size_t)r * ld + i;
                            const uint8_t *u = xq;
                            int v = f == T5K_XQ_S16    ? ((int16_t *)xq)[at]
                                    : f == T5K_XQ_U8   ? u[at] - 128
                                    : f == T5K_XQ_S8   ? ((int8_t *)xq)[at]
                                    : f == T5K_XQ_S8X2 ? 256 * (int8_t)u[at] + (int8_t)u[at + ldq]
                                                       : 256 * (u[at] - 128) + u[at + ldq] - 128;
                            int want = xq0[(size_t)r * ldq + i];
                            ck_assert_msg(v == want, "%s quantize K %d a16 %d row %d value %zu: %d vs %d",
                                          o->name, K, a16, r, i, v, want);
                        }
                    for (int rows = 1; rows <= R; rows++) /* every row count: AMX's partial tiles */
                        for (int c0 = 0; c0 < N; c0 += 16)
                            for (int c1 = N; c1 > c0; c1 -= 19) {
                                t5k_xq xv = {xq, ld, xs, ng};
                                memset(y, 0xff, R * N * sizeof *y);
                                o->gemm(&xv, rows, &w, c0, c1, y, N);
                                for (int r = 0; r < R; r++)
                                    for (int c = 0; c < N; c++) {
                                        float got = y[(size_t)r * N + c], want = ref[r * N + c];
                                        /* (ck_assert only on a failure: each one writes to Check's pipe) */
                                        if (r >= rows || c < c0 || c >= c1) {
                                            uint32_t b;
                                            memcpy(&b, &got, 4);
                                            if (b != 0xffffffffu)
                                                ck_abort_msg("%s rows %d wrote y[%d, %d] outside [%d, %d)",
                                                             o->name, rows, r, c, c0, c1);
                                            continue;
                                        }
                                        if (memcmp(&got, &want, 4))
                                            ck_abort_msg("%s int8 K %d a16 %d rows %d [%d, %d) y[%d, %d] = "
                                                         "%g, reference %g",
                                                         o->name, K, a16, rows, c0, c1, r, c, got, want);
                                    }
                            }
                }
                free(buf);
            }
    printf("int8 kernels:");
    for (int t = 0; t < n_tab; t++)
        printf(" %s", tabs[t]->name);
    printf(" equal to the int64 reference bit for bit\n");
    free(x), free(wf), free(xs), free(xs0), free(y), free(ws), free(wq), free(xq0), free(xq), free(ref);
}
END_TEST

/* The bfloat16 products (t5_kernel_bf16_list: every bfloat16 table this CPU runs, vdpbf16ps
 * among them where the CPU has AVX512_BF16) against the definition written out here: per
 * output, the pairs in increasing order, s + x[2i+1] w[2i+1] then s + x[2i] w[2i], each sum
 * rounded once (fmaf: the product is exact) and flushed to a zero of its sign below FLT_MIN.
 * Random data, tiny data (sums in the denormal range), every tail (odd k, k blocks, partial
 * panels, row tiles, column ranges from inside the matrix); and the rounding of activations
 * (ties to even, denormals to zero). */
static float bf16_f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

START_TEST(kernels_bf16) {
    const t5k_bf16_ops *tabs[8];
    int n_tab = t5_kernel_bf16_list(tabs, 8);
    ck_assert_int_ge(n_tab, 1);
    ck_assert_str_eq(tabs[0]->name, "generic");
    ck_assert_uint_eq(t5_bf16_round(1.0f + 1.0f / 256), 0x3f80); /* a tie: to even */
    ck_assert_uint_eq(t5_bf16_round(1.0f + 3.0f / 256), 0x3f82);
    ck_assert_uint_eq(t5_bf16_round(1e-39f), 0);       /* a denormal: zero */
    ck_assert_uint_eq(t5_bf16_round(-1e-39f), 0x8000); /* of its sign */
    { /* each table's rounding of activations: the reference's bits, specials included */
        enum { PR = 3, PK = 41 };
        float px[PR * PK];
        uint32_t want[PR * (PK + 1)], got[PR * (PK + 1)];
        uint64_t prng = 5;
        for (int i = 0; i < PR * PK; i++)
            px[i] = frand(&prng) * (i % 3 ? 1.0f : 1e3f);
        static const float specials[] = {NAN,        -NAN,    INFINITY,          -INFINITY,
                                         1e-39f,     -1e-39f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256,
                                         3.3895e38f, -0.0f,   1.1754944e-38f,    1.1754942e-38f};
        for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
            px[5 * i + 2] = specials[i];
        for (int t = 0; t < n_tab; t++) {
            int f = tabs[t]->xfmt;
            size_t words = (size_t)PR * t5_bf16_ldx(f, PK);
            t5_bf16_pack_rows(px, PK, PR, PK, f, want);
            memset(got, 0xee, sizeof got);
            tabs[t]->pack(px, PK, PR, PK, got);
            ck_assert_msg(!memcmp(got, want, words * 4), "%s: the rounded activations differ", tabs[t]->name);
        }
    }
    enum { R = 21, N = 101, KMAX = 1100 }; /* N: one row's 4-panel tiles and the panels after them */
    static const int ks[] = {1, 2, 3, 64, 255, 1100};
    uint64_t rng = 11;
    float *x = malloc(R * KMAX * sizeof *x), *y = malloc(R * N * sizeof *y);
    uint16_t *wh = malloc((size_t)N * KMAX * 2);
    uint32_t *xb = malloc(R * (KMAX + 2) * sizeof *xb), *xp = malloc(R * (KMAX / 2 + 1) * sizeof *xp);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int tiny = 0; tiny < 2; tiny++) {
            int K = ks[ki], np = (K + 1) / 2;
            size_t bytes = ((size_t)N + 15) / 16 * 16 * (size_t)np * 2 * 2;
            uint16_t *panels = aligned_alloc(64, bytes);
            memset(panels, 0, bytes);
            t5_mat w = {panels, NULL, ST_BF16X2, 1, N, K, NULL, 0};
            for (int j = 0; j < N; j++)
                for (int i = 0; i < K; i++) { /* tiny: products near 1e-38, sums that cancel into denormals */
                    wh[(size_t)j * K + i] = t5_bf16_round(frand(&rng) * (tiny ? 1e-19f : 1 + j % 5));
                    panels[t5_bf16x2_at(K, j, i)] = wh[(size_t)j * K + i];
                }
            for (int i = 0; i < R * K; i++)
                x[i] = frand(&rng) * (tiny ? 2e-19f : i % 17 == 0 ? 50.0f : 1.0f);
            t5_bf16_pack_rows(x, (size_t)K, R, K, T5K_BF16_X_PAIRS, xp); /* both layouts: the same values */
            t5_bf16_pack_rows(x, (size_t)K, R, K, T5K_BF16_X_F32, xb);
            for (int r = 0; r < R; r++)
                for (int i = 0; i < 2 * np; i++) {
                    uint32_t want = i < K ? t5_bf16_round(x[(size_t)r * K + i]) : 0, f;
                    memcpy(&f, (float *)xb + (size_t)r * 2 * np + 2 * (i / 2) + 1 - i % 2, 4);
                    ck_assert_uint_eq((xp[(size_t)r * np + i / 2] >> (16 * (i % 2))) & 0xffff, want);
                    ck_assert_uint_eq(f, want << 16);
                }
            long flushed = 0;
            for (int t = 0; t < n_tab; t++) {
                const t5k_bf16_ops *o = tabs[t];
                for (int rows = 1; rows <= R; rows += rows < 9 ? 1 : 6)
                    for (int c0 = 0, n = rows <= 2 ? N : 53; c0 < n; c0 += 16)
                        for (int c1 = n; c1 > c0; c1 -= 19) {
                            memset(y, 0xff, R * N * sizeof *y);
                            o->gemm(o->xfmt == T5K_BF16_X_F32 ? xb : xp, t5_bf16_ldx(o->xfmt, K), rows, &w,
                                    c0, c1, y, N);
                            for (int r = 0; r < rows; r++)
                                for (int c = 0; c < N; c++) {
                                    float got = y[(size_t)r * N + c];
                                    if (!in_range(o->name, got, c, c0, c1)) continue;
                                    float s = 0;
                                    for (int i = 0; i < K; i += 2) {
                                        for (int h = 1; h >= 0; h--) {
                                            int in = i + h < K; /* odd K: the padding pair's +0 * +0 */
                                            float xv =
                                                in ? bf16_f(t5_bf16_round(x[(size_t)r * K + i + h])) : 0;
                                            s = fmaf(xv, in ? bf16_f(wh[(size_t)c * K + i + h]) : 0, s);
                                            if (fabsf(s) < FLT_MIN) {
                                                flushed += s != 0;
                                                s = copysignf(0.0f, s);
                                            }
                                        }
                                    }
                                    if (memcmp(&got, &s, 4)) /* (no ck_assert per value: Check's pipe) */
                                        ck_abort_msg(
                                            "%s bf16 K %d rows %d [%d, %d) y[%d, %d] = %a, reference %a",
                                            o->name, K, rows, c0, c1, r, c, got, s);
                                }
                        }
            }
            ck_assert_msg(!tiny || flushed > 0, "K %d: the tiny data flushed no sum", K);
            free(panels);
        }
    printf("bfloat16 kernels:");
    for (int t = 0; t < n_tab; t++)
        printf(" %s", tabs[t]->name);
    printf(" equal to the definition bit for bit\n");
    free(x), free(y), free(wh), free(xb), free(xp);
}
END_TEST

int main(void) {
    Suite *s = suite_create("engine_isa");
    TCase *tc = tcase_create("isa");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, kernels);
    tcase_add_test(tc, kernels_i8);
    tcase_add_test(tc, kernels_bf16);
    tcase_add_test(tc, models);
    suite_add_tcase(s, tc);
    return check_run(s);
}
