/* t5_dev.h - the engine's developer interface: the checkpoint reader (stored tensors: safetensors
 * and torch files) and the safetensors writer, the
 * model's weight layout, the thread pool, the kernels, the encoder and the decoder step.
 * For the engine's own files, its white-box unit tests and the developer tools
 * (`t5 bench engine`, `t5 random-model`); no stability promised.
 * What it is not: the API. Applications (server/, gen/) include t5.h only. */
#ifndef T5SERVE_T5_DEV_H
#define T5SERVE_T5_DEV_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "t5.h"

/* ---------------- stored tensors (weights.c, safetensors.c, torch.c) ----------------
 * The engine's one loader interface for checkpoint files: open a model folder, find a
 * tensor by name -> {dtype, shape, pointer}. The pointer is into a read-only mapping of the file where
 * the bytes can be used in place, else into a copy the set owns. Behind it:
 *   safetensors.c  model.safetensors, or the shards of model.safetensors.index.json
 *   torch.c        pytorch_model.bin (torch's zip format and the legacy pickle
 *                  sequence), or the shards of pytorch_model.bin.index.json,
 *                  through zip.c and the restricted unpickler pickle.c.
 * "st" reads "stored tensors": the set is the same whatever the file format.
 * Every tensor's data is aligned to its element size, lies wholly inside its mapping or
 * copy, and its name is unique in the set (duplicates are load errors).
 * No T5 names here (model.c); st_convert is the one dtype conversion, for writers. */

/* ST_I8 and ST_BF16X2 are never read from a file: they mark the matrices the int8 and
 * bfloat16 compute types lay out at load (t5_mat). */
enum { ST_F32 = 1, ST_F16 = 2, ST_BF16 = 3, ST_OTHER = 4, ST_I8 = 5, ST_BF16X2 = 6 };

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    int dtype; /* ST_* */
    char dtype_name[16];
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* nbytes long: in a mapping or a copy owned by the set */
    size_t nbytes;
} st_tensor;

typedef struct st_set st_set; /* the tensors of one model folder */

/* The weight files looked for, in order of preference (the first present is loaded:
 * safetensors wins over torch files); NULL-terminated. */
extern const char *const st_weight_files[];

/* Opens the weights of DIR: the first of st_weight_files present. Returns a set the
 * caller frees with st_close, or NULL with err set (naming the files looked for when
 * there are none). */
st_set *st_open_dir(const char *dir, char *err, size_t errlen);
void st_close(st_set *s);
const st_tensor *st_find(const st_set *s, const char *name); /* NULL if absent */
int st_count(const st_set *s);                               /* tensors in the set */
const st_tensor *st_get(const st_set *s, int i);             /* 0 <= i < st_count, file order */
size_t st_mapped_bytes(const st_set *s);                     /* bytes of file mapped */
/* The caller no longer reads p[0..len) (tensor data of s, copied elsewhere): the whole pages
 * of a file mapping in that range are dropped from RSS (they fault in again from the file if
 * read); heap copies are left alone. */
void st_drop(const st_set *s, const void *p, size_t len);
size_t st_copied_bytes(const st_set *s); /* bytes of heap copies */
/* "safetensors", "pytorch-zip" or "pytorch-legacy" (the format of the files read). */
const char *st_format(const st_set *s);
/* What the load noticed, one line each ("" when nothing): entries copied instead of
 * mapped (compressed, misaligned, non-contiguous views), non-finite weights. */
const char *st_notes(const st_set *s);

/* dst[n] in dtype TO from src[n] in dtype FROM (ST_F32 / ST_F16 / ST_BF16): widening is
 * exact, narrowing rounds to nearest even (NaN stays NaN, float16 overflow is Inf). */
void st_convert(const void *src, int from, void *dst, int to, size_t n);
/* f rounded to the nearest bfloat16 (ties to even; NaN stays a quiet NaN), as 16 bits: inline,
 * for the loops that convert whole rows (the cross-attention caches). */
static inline uint16_t st_float_to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
}
uint16_t st_float_to_half(float f);
float st_half_to_float(uint16_t h);

/* ---- for the format readers (safetensors.c, torch.c) ---- */

/* Maps PATH read-only (LABEL, a name without folders, in errors); the set unmaps it on
 * st_close. Returns the mapping (size in *size) or NULL with err set. */
const unsigned char *st_map_file(st_set *s, const char *path, const char *label, size_t *size, char *err,
                                 size_t errlen);
/* n bytes of heap the set owns (freed by st_close), or NULL with err set. */
void *st_alloc(st_set *s, size_t n, char *err, size_t errlen);
/* Adds a tensor (name copied; data must stay valid as long as the set). data is copied
 * into the set when not aligned to the element size. 0, or <0 with err set (duplicate
 * name, out of memory). */
int st_add(st_set *s, const char *name, int dtype, const char *dtype_name, int ndim, const int64_t *shape,
           const void *data, size_t nbytes, char *err, size_t errlen);
/* Appends a line to the notes (printf format). */
void st_note(st_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_set_format(st_set *s, const char *format);
/* Bytes per element of ST_F32 / ST_F16 / ST_BF16 (0 for others). */
size_t st_elsize(int dtype);
/* *out = product of shape[0..ndim), 0 when any is 0; -1 when it exceeds limit (no wrap). */
int st_numel(const int64_t *shape, int ndim, uint64_t limit, uint64_t *out);

/* The readers: each adds the tensors of one file to s. 0 or <0 with err set. */
int st_read_safetensors(st_set *s, const char *path, const char *label, char *err, size_t errlen);
int st_read_torch(st_set *s, const char *path, const char *label, char *err, size_t errlen);

/* One tensor to write: dtype "F32", "F16" or "BF16" (or any name, for tests); data
 * holds nbytes bytes in that dtype, little-endian. */
typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_out;

/* Writes a .safetensors file (header padded to 8 bytes; tensors in the given order,
 * contiguous) through PATH.tmp renamed to PATH. 0 or <0 with err set. */
int st_write(const char *path, const st_out *t, int n, char *err, size_t errlen);

/* ---------------- weights (model.c) ---------------- */

/* A weight matrix [n, k] (n outputs, k inputs) as the kernels read it. Packed (the
 * products' matrices): repacked once at load into panels of T5_PANEL output columns,
 * K-major: element (j, i) at (j / 16) * 16 k + i * 16 + j % 16, the last panel
 * zero-padded; the values as stored in the checkpoint (float32, or bfloat16 / float16
 * that the kernels widen exactly: half the bytes), or as the compute type converted them
 * (t5.h). int8 (ST_I8, compute type int8, always packed): the same panels over columns,
 * inside a panel the k values in groups of 4 as vpdpbusd / vpmaddwd consume them:
 * element (j, i) at (j / 16) * 16 kp + (i / 4) * 64 + (j % 16) * 4 + i % 4, kp = k
 * rounded up to 4 (zeros); per column and group of T5_I8_GROUP k values one float scale
 * (w[j, i] = scale[((j / 16) * ng + g) * 16 + j % 16] * q, g = i / T5_I8_GROUP, ng groups)
 * and the int32 sum of the group's values (the +128 compensation of vpdpbusd, wsum, the
 * same layout).
 * ST_BF16X2 (compute type bfloat16): panels of 16 columns, k in pairs as vdpbf16ps
 * consumes them: element (j, i) at 16-bit index (j / 16) * 16 kp + (i / 2) * 32 +
 * (j % 16) * 2 + i % 2, kp = k rounded up to 2 (zeros); bfloat16 denormals stored as zeros.
 * Not packed: [n, k] row-major: an untied embedding (read a row at a time, where the
 * checkpoint has it). */
enum { T5_PANEL = 16, T5_I8_GROUP = 64 };
/* n rounded up to whole panels (of columns, keys or value elements) */
static inline size_t t5_panels_round(size_t n) {
    return (n + T5_PANEL - 1) / T5_PANEL * T5_PANEL;
}
typedef struct {
    const void *p;      /* packed: [ceil(n / 16)][k][16] (int8: [ceil(n / 16)][kp / 4][16][4], bf16x2:
                           [ceil(n / 16)][kp / 2][16][2]); else [n][k] */
    const float *scale; /* ST_I8: [ceil(n / 16)][ng][16] group scales (0 in the padding) */
    int dtype;          /* ST_F32, ST_BF16, ST_F16, ST_I8 or ST_BF16X2 */
    int packed;         /* ST_I8, ST_BF16X2: always 1 */
    int n, k;
    const int32_t *wsum; /* ST_I8: [ceil(n / 16)][ng][16] group sums, ng = ceil(k / T5_I8_GROUP) */
    int a16;             /* ST_I8: its activations quantized to 16 bits (T5_I8_A16_MAX), not 8 */
} t5_mat;

/* out[k] = row `row` of w as float32 (int8 rows dequantized: q * scale). */
void t5_mat_row(const t5_mat *w, int k, int row, float *out);
/* Bytes of the one block an int8 matrix [n, k] lives in (panels, scales, group sums; each
 * part 64-byte aligned in it). */
size_t t5_mat_i8_bytes(int n, int k);
/* Lays out an int8 matrix [n, k] in buf (64-byte aligned, t5_mat_i8_bytes long, zeroed):
 * every column 0 until set. */
void t5_mat_i8_init(t5_mat *w, void *buf, int n, int k);
/* Column j of w (row j of the checkpoint's [n, k]): its int8 values q[k] and the scales of its
 * groups scale[ng] (t5_quantize_row_i8 on each group of T5_I8_GROUP values) written into its
 * panel, with its group sums. */
void t5_mat_i8_set(t5_mat *w, int j, const int8_t *q, const float *scale);
/* A bfloat16 / float16 value as float32 (exact). */
float t5_widen(int dtype, uint16_t v);

/* Symmetric int8 quantization of x[k]: *scale = max|x| / 127 (0 for a zero row) and
 * q[i] = round(x[i] * (127 / max|x|)) in [-127, 127], so |q[i] * scale - x[i]| <= scale / 2.
 * Weights at load and activations at run time take it per group of T5_I8_GROUP values of a
 * row (t5_quantize_x_i8 for activations). */
void t5_quantize_row_i8(const float *x, int k, int8_t *q, float *scale);
/* One value of it: x * inv clamped to [-127, 127] ([-lim, lim]: t5_quantize_to; NaN: lim, as
 * vminps), rounded to the
 * nearest integer, ties to even, by adding and subtracting 1.5 * 2^23: plain float operations
 * that SIMD code repeats exactly (kernels_i8.h). */
static inline int t5_quantize_to(float x, float inv, float lim) {
    float v = x * inv;
    v = v < lim ? v : lim;
    v = v > -lim ? v : -lim;
    v = (v + 12582912.0f) - 12582912.0f;
    return (int)v;
}
static inline int8_t t5_quantize_i8(float x, float inv) {
    return (int8_t)t5_quantize_to(x, inv, 127.0f);
}
/* The scale step of both quantizers over x[n] for the range lim: *scale = max|x| / lim (NaN
 * ignored), and the multiplier lim / max|x| it returns (0 for a zero group). */
static inline float t5_quantize_scale(const float *x, int n, float lim, float *scale) {
    float mx = 0;
    for (int i = 0; i < n; i++)
        mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    *scale = mx / lim;
    return mx > 0 ? lim / mx : 0;
}
/* x rounded to the nearest bfloat16 (ties to even; NaN stays NaN), as 16 bits. */
static inline uint16_t t5_float_to_bf16(float x) {
    return st_float_to_bf16(x);
}

typedef struct {
    const float *ln; /* [d_model] layer norm before the attention */
    t5_mat q;        /* [inner, d_model] */
    t5_mat k;        /* [inner, d_model] */
    t5_mat v;        /* [inner, d_model] */
    t5_mat o;        /* [d_model, inner] */
} t5_attn_w;

typedef struct {
    const float *ln; /* [d_model] */
    t5_mat wi;       /* [d_ff, d_model] (wi, or wi_0 when gated) */
    t5_mat wi1;      /* [d_ff, d_model] when gated, else NULL */
    t5_mat wo;       /* [d_model, d_ff] */
} t5_ffn_w;

typedef struct {
    t5_attn_w self;  /* layer.0 */
    t5_attn_w cross; /* layer.1 (decoder only) */
    t5_ffn_w ffn;    /* layer.1 (encoder) / layer.2 (decoder) */
} t5_block_w;

struct t5_model {
    t5_config cfg;
    int inner;              /* num_heads * d_kv */
    t5_mat shared;          /* [vocab, d_model] */
    t5_mat lm_head;         /* [vocab, d_model] (== shared when tied) */
    const float *enc_rel;   /* [num_buckets, num_heads] */
    const float *dec_rel;   /* [num_buckets, num_heads] */
    const float *enc_final; /* [d_model] */
    const float *dec_final; /* [d_model] */
    t5_block_w *enc;        /* [num_layers] */
    t5_block_w *dec;        /* [num_decoder_layers] */
    st_set *st;             /* the mappings the float32 pointers point into */
    t5_load_params lp;      /* as loaded (compute_type, int8_float, isa as asked) */
    void **owned;           /* packed matrices, converted, quantized or realigned tensors */
    int n_owned, cap_owned;
    size_t owned_bytes;              /* heap held by packed and converted tensors */
    size_t dec_step_bytes;           /* weight bytes one decoder step reads (all decoder matrices + head) */
    t5_isa isa;                      /* kernels' instruction set, chosen at load (never AUTO) */
    int n_half;                      /* matrices kept as bfloat16 / float16 */
    int n_int8;                      /* matrices quantized to int8 */
    const struct t5k_i8_ops *i8;     /* int8 kernels, chosen at load with isa (t5_kernel_i8_ops) */
    const struct t5k_bf16_ops *bf16; /* bfloat16 kernels, chosen at load with isa (t5_kernel_bf16_ops) */
    int cache_dtype; /* the attention caches' elements (t5_kv, t5_cross_kv): ST_F32, or ST_BF16
                        under the bfloat16 and int8 compute types */
};

/* ---------------- thread pool (pool.c) ---------------- */

typedef struct t5_pool t5_pool;
typedef void (*t5_pool_fn)(void *arg, int ith, int nth);

/* n threads in all (the caller is thread 0; n-1 workers are started). NULL on failure. */
t5_pool *t5_pool_create(int n);
void t5_pool_free(t5_pool *p);
int t5_pool_threads(const t5_pool *p);
/* Runs fn(arg, ith, n) on the calling thread (ith 0) and on the workers that join in
 * time (ith 1..n-1, each at most once at a time); returns when every joined call has
 * returned. fn must take its work items with t5_pool_next until they run out, so the
 * job completes whoever joins; ith only indexes per-thread scratch. */
void t5_pool_run(t5_pool *p, t5_pool_fn fn, void *arg);
/* The next work item (0, 1, 2, ...) of the job being run. */
int t5_pool_next(t5_pool *p);

/* ---------------- kernels (kernels.c) ---------------- */

/* The B operand of a product, [K, N] in column groups of T5_PANEL: column c of step
 * k at element (c / 16) * gs + k * ks + c % 16 of p. Weight panels: gs = 16 K,
 * ks = 16 (t5_mat). A row-major [K, N] float32 matrix with rows ldb apart: gs = 16,
 * ks = ldb. 16-bit B (bf16 / f16) comes only as panels, zero-padded to whole groups. */
typedef struct {
    const void *p;
    int dtype; /* ST_F32, ST_BF16, ST_F16 */
    size_t gs, ks;
} t5k_bop;

/* One output of a matmul: y[rows, n] = x[rows, k] . w[n, k]^T. */
typedef struct {
    t5_mat w; /* [n, k], packed */
    float *y; /* [rows, n] */
    int n;
} t5_mm_out;

/* Computes every output in outs for the same x[rows, k] on the pool's threads (work
 * items: column chunks x row blocks). Each output element is one chain of FMAs over
 * k (kernels.h): the result depends neither on the other rows, nor on the threads,
 * nor on the ISA; int8 matrices take their exact int32 kernel. The compute type
 * rounds or quantizes x for the product (t5.h). Returns 0, or -1 out of memory for
 * that (nothing computed). */
int t5_matmul(const t5_model *m, t5_pool *pool, const float *x, int rows, int k, const t5_mm_out *outs,
              int n_outs);
/* t5_matmul, then a = act(a) (one output a) or a = act(a) * b (two of the same n: gated) in
 * t5_activate's values, each block while it is in cache; act T5_ACT_*, -1 for none (t5_matmul).
 * b is overwritten scratch. 0, or -1 (out of memory, or more outputs than that). */
int t5_matmul_act(const t5_model *m, t5_pool *pool, const float *x, int rows, int k, const t5_mm_out *outs,
                  int n_outs, int act);
/* The same kernel on the calling thread for a row-major B: y[rows, n] (rows ldy apart)
 * = x[rows, K] (rows ldx apart) . b[K, n] (rows ldb apart). */
void t5_gemm(t5_isa isa, const float *x, size_t ldx, int rows, int K, const float *b, size_t ldb, int n,
             float *y, size_t ldy);
/* y[m] = sum_{t < T} a[t] * b[t, 0..m) (t5_gemm with one row, over any B operand: float32
 * rows, panels, bf16). Attention uses it twice: scores over keys stored transposed, then the
 * context over the value rows. */
void t5_vecmat(t5_isa isa, const float *a, int T, const t5k_bop *b, int m, float *y);
/* x[n] = act(x) ; gated: a[n] = act(a) * b */
void t5_activate(t5_isa isa, int act, float *a, const float *b, size_t n);
/* h[n] += a[n], four at a time (plain float adds: the compiler's SSE code gives the same values). */
void t5_add_rows(float *restrict h, const float *restrict a, int n);
/* h[rows, d] += add (when add; add does not overlap h, y may be add), then y = w * (h * 1 /
 * sqrt(mean(h^2) + eps)), row by row; on the pool's threads for large inputs (one thread below
 * 32 K values), the same values either way. */
void t5_residual_rmsnorm(t5_isa isa, t5_pool *pool, float *h, const float *add, float *y, const float *w,
                         int rows, int d, float eps);
/* max (NaNs skipped), and sum(exp(x - mx)) with the engine's exp (kernels.h). */
float t5_max(t5_isa isa, const float *x, int n);
float t5_sum_exp(t5_isa isa, const float *x, int n, float mx);
/* In-place softmax over x[n] (uniform when every value is -inf). */
void t5_softmax_isa(t5_isa isa, float *x, int n);
/* The same on the portable path (logits processing and sampling). */
void t5_softmax(float *x, int n);
/* First index of the maximum of x[V] (NaNs are never chosen; 0 when nothing beats -inf). */
int t5_argmax(t5_isa isa, const float *x, int V);
/* log(sum(exp(x))) of x[n] in float32 (max-shifted). */
float t5_logsumexp(t5_isa isa, const float *x, int n);
/* T5's relative position bucket (transformers' _relative_position_bucket, float32 logs). */
int t5_rel_bucket(int rel, int bidirectional, int num_buckets, int max_distance);
/* The best instruction set the CPU has at or below cap (AUTO: no cap). AMX asks Linux for the
 * tile state once per process (arch_prctl ARCH_REQ_XCOMP_PERM, idempotent) and is AMX only when
 * that succeeds. */
t5_isa t5_cpu_isa(t5_isa cap);

/* The kernels of one ISA as a table (kernels.h has the rule they all keep; tests compare
 * the tables bit for bit). */

/* y[r * ldy + c] for r < rows, c0 <= c < c1 (c0 a multiple of 16): the chain over
 * k0 <= k < k1 of x[r * ldx + k] * B[k, c], starting from 0 when k0 == 0 and from y
 * otherwise. */
typedef void (*t5k_gemm_fn)(const float *x, size_t ldx, int rows, int k0, int k1, const t5k_bop *b, int c0,
                            int c1, float *y, size_t ldy);

typedef struct {
    t5k_gemm_fn gemm;
    float (*max)(const float *x, int n);               /* NaNs skipped; -inf for none */
    int (*argmax)(const float *x, int n);              /* first index of max, 0 if none > -inf */
    float (*sum_exp)(const float *x, int n, float mx); /* 16-lane sum of exp(x - mx) */
    void (*softmax)(float *x, int n, float mx);        /* x = exp(x - mx) / sum, mx > -inf */
    void (*rmsnorm)(float *y, const float *x, const float *w, int d, float eps); /* one row */
    void (*gelu)(float *a, const float *b, size_t n); /* tanh form, times b when b */
    void (*relu)(float *a, const float *b, size_t n); /* max(a, 0), times b when b */
} t5k_ops;

/* The table of isa (AUTO: generic). */
const t5k_ops *t5_kernel_ops(t5_isa isa);

/* ---- int8 products (kernels_i8*.c, docs/engine.md) ----
 * y[r, c] for an int8 matrix: activations quantized per row in groups of T5_I8_GROUP k
 * values (t5_quantize_x_i8: q in [-127, 127], or in [-T5_I8_A16_MAX, T5_I8_A16_MAX] for a
 * matrix with a16, one scale xs[r, g] per group), then per output one exact int32 sum per
 * group, acc_g = sum over the group of q[r, i] * w[c, i] (|acc_g| < 2^24, 2^29 with a16), and
 * one fixed float epilogue on every ISA:
 *     s = 0; for g = 0, 1, ...: s = fma((float)acc_g, xs[r, g] * ws[c, g], s);   y[r, c] = s
 * The activations come in the layout the table asks for (xfmt, xfmt_a16): int8 (C), int16
 * (AVX2's vpmaddwd; C's a16), uint8 q + 128 (vpdpbusd, compensated by 128 * the group sums),
 * or, for a16 on the int8 instruction sets, each row split in two halves of int8 (X2: q =
 * 256 hi + lo, lo in [-128, 127], the hi half first, then the lo half, each ldq / 2 long; U8X2
 * both shifted by +128), which the kernels multiply as two rows and combine exactly:
 * acc = 256 acc_hi + acc_lo. */
enum { T5K_XQ_S8 = 1, T5K_XQ_S16 = 2, T5K_XQ_U8 = 3, T5K_XQ_S8X2 = 4, T5K_XQ_U8X2 = 5 };
/* the a16 range: 127 * 256, so that hi = (q + 128) >> 8 stays in [-127, 127] */
enum { T5_I8_A16_MAX = 32512 };
typedef struct {
    const void *q;  /* [rows][ldq] in xfmt, zero (U8: 128) beyond k */
    size_t ldq;     /* elements between rows, >= kp (k rounded up to 4; X2: 2 kp bytes) */
    const float *s; /* [rows][ng] group scales */
    int ng;         /* groups per row: ceil(k / T5_I8_GROUP) */
} t5k_xq;

/* y[r * ldy + c] = the product above for r < rows, c0 <= c < c1 (c0 a multiple of 16); x in
 * the layout of w->a16. */
typedef void (*t5k_gemm_i8_fn)(const t5k_xq *x, int rows, const t5_mat *w, int c0, int c1, float *y,
                               size_t ldy);

/* x[rows, k] (rows ldx apart) quantized into q (rows ldq apart) and s[rows][ng]: exactly
 * t5_quantize_x_i8 in one layout (a16: the 16-bit range, in xfmt_a16). */
typedef void (*t5k_quantize_i8_fn)(const float *x, size_t ldx, int rows, int k, int a16, void *q, size_t ldq,
                                   float *s);

/* One int8 kernel: its name, the activation layout it reads and its quantizer, its product;
 * and the table that a product of fewer than min_rows rows takes instead (t5_matmul decides
 * per call, before quantizing: AMX tiles cost more than VNNI's registers at batch 1), NULL:
 * none. */
typedef struct t5k_i8_ops {
    const char *name;   /* "generic", "avx2" (vpmaddwd), "avx512-vnni" (vpdpbusd), "amx" (tdpbssd) */
    int xfmt, xfmt_a16; /* T5K_XQ_*: the activations' layout for int8 and for a16 matrices */
    t5k_quantize_i8_fn quantize;
    t5k_gemm_i8_fn gemm;
    int min_rows;
    const struct t5k_i8_ops *fewer;
} t5k_i8_ops;

/* The int8 kernels for isa: generic C; AVX2; on AVX512, the VNNI kernel where the CPU has
 * avx512_vnni, else AVX2's; on AMX the AMX-INT8 one (VNNI below its min_rows). The same
 * answers, bit for bit. */
const t5k_i8_ops *t5_kernel_i8_ops(t5_isa isa);
/* Every int8 table this CPU runs, generic first (tests compare them): up to max; the count. */
int t5_kernel_i8_list(const t5k_i8_ops **out, int max);
/* x[rows, k] (rows ldx apart) quantized per group into q (xfmt, rows ldq apart, ldq >= kp;
 * X2: 2 kp) and s[rows][ng]: per group of T5_I8_GROUP values as t5_quantize_row_i8 does per
 * row, or, a16, into [-T5_I8_A16_MAX, T5_I8_A16_MAX] (scale max|x| / T5_I8_A16_MAX). */
void t5_quantize_x_i8(const float *x, size_t ldx, int rows, int k, int xfmt, int a16, void *q, size_t ldq,
                      float *s);

/* ---- bfloat16 products (kernels_bf16*.c, docs/engine.md) ----
 * y[r, c] for an ST_BF16X2 matrix: the activations rounded to bfloat16 per row
 * (t5_bf16_pack_rows: pairs of k values in one 32-bit word, even k in the low half; an odd
 * k padded with a zero, weights too), then
 * per output one chain over the pairs i in increasing order, odd k first,
 *     s = 0; for i: s = s + x[2i+1] w[2i+1]; s = s + x[2i] w[2i];   y[r, c] = s
 * each product exact (bfloat16 significands have 8 bits), each sum rounded to nearest even,
 * and every sum below FLT_MIN flushed to a zero of its sign (inputs hold no denormals):
 * exactly AVX512_BF16's vdpbf16ps (probed on silicon, docs/engine.md), and an FMA under
 * MXCSR's DAZ and FTZ everywhere else. */
/* The activations as a table reads them (xfmt), rows t5_bf16_ldx 32-bit words apart: PAIRS, one
 * word per pair as vdpbf16ps takes it; F32, per pair the odd then the even value as float32 (the
 * chain's order: a broadcast each, no splitting in the loop). */
enum { T5K_BF16_X_PAIRS = 1, T5K_BF16_X_F32 = 2 };
static inline size_t t5_bf16_ldx(int xfmt, int k) {
    return (size_t)(k + 1) / 2 * (xfmt == T5K_BF16_X_F32 ? 2 : 1);
}
/* y = x w^T over columns [c0, c1); x [rows][ldx] words in xfmt; c0 a multiple of 16; k >= 1 */
typedef void (*t5k_gemm_bf16_fn)(const void *x, size_t ldx, int rows, const t5_mat *w, int c0, int c1,
                                 float *y, size_t ldy);
/* x[rows, k] (rows ldx apart) rounded into xb in xfmt: t5_bf16_pack_rows's bits */
typedef void (*t5k_pack_bf16_fn)(const float *x, size_t ldx, int rows, int k, void *xb);
typedef struct t5k_bf16_ops {
    const char *name; /* "generic", "avx2", "avx512" (FMAs), "avx512-bf16" (vdpbf16ps) */
    int xfmt;         /* T5K_BF16_X_* */
    t5k_pack_bf16_fn pack;
    t5k_gemm_bf16_fn gemm;
} t5k_bf16_ops;

/* The bfloat16 kernels for isa: generic C; AVX2; on AVX512, AVX-512 FMAs, or the vdpbf16ps
 * table (the instruction that defines the chain) on AMD CPUs with AVX512_BF16: the same bits,
 * at 2.0x the FMA table's rate on Zen 5 but 0.6x on a Sapphire Rapids Xeon (`t5 bench engine
 * --compute-type bfloat16` prints both). Asks CPUID: call it once, at load (t5_model.bf16). */
const t5k_bf16_ops *t5_kernel_bf16_ops(t5_isa isa);
/* Every bfloat16 table this CPU runs, generic first (tests compare them): up to max; the count. */
int t5_kernel_bf16_list(const t5k_bf16_ops **out, int max);
/* x rounded to bfloat16 as the products read it: t5_float_to_bf16, a denormal to a zero of its sign. */
uint16_t t5_bf16_round(float x);
/* x[rows, k] (rows ldx apart) rounded into xb[rows][t5_bf16_ldx(xfmt, k)] (a zero beyond k). */
void t5_bf16_pack_rows(const float *x, size_t ldx, int rows, int k, int xfmt, void *xb);
/* The 16-bit index of element (j, i) of an ST_BF16X2 matrix of k columns (t5_mat). */
static inline size_t t5_bf16x2_at(int k, int j, int i) {
    size_t kp = ((size_t)k + 1) & ~(size_t)1;
    return (size_t)(j / T5_PANEL) * T5_PANEL * kp + (size_t)(i / 2) * 2 * T5_PANEL +
           (size_t)(j % T5_PANEL) * 2 + (size_t)(i % 2);
}

/* ---------------- encoder (encoder.c) ---------------- */

/* Encoder forward of n_inputs inputs, their ids concatenated (lens[i] tokens each,
 * T in all), into out[T, d_model] in the same order. 0 or <0 (out of memory). */
int t5_encoder_forward(const t5_model *m, t5_pool *pool, const int32_t *ids, const int *lens, int n_inputs,
                       float *out);
/* The encoder's working memory (activations, bias table, attention scratch: 75 MB for 32 x 128
 * tokens of the T5 PEGASUS small shape), kept from one pass to the next by its owner (a batch),
 * so that a pass does not fault in freshly mapped pages: it grows to the largest pass seen and
 * is freed with t5_enc_scratch_free. One pass at a time. */
typedef struct t5_enc_scratch t5_enc_scratch;
t5_enc_scratch *t5_enc_scratch_create(void); /* empty; NULL out of memory */
void t5_enc_scratch_free(t5_enc_scratch *s);
/* t5_encoder_forward with its buffers from s (t5_encoder_forward: a scratch of the call's own). */
int t5_encoder_forward_with(const t5_model *m, t5_pool *pool, t5_enc_scratch *s, const int32_t *ids,
                            const int *lens, int n_inputs, float *out);

/* Cross-attention K/V of one input, computed once, elements of t5_model.cache_dtype (float32,
 * or bf16 rounded to nearest even): k [num_decoder_layers][heads][ceil(n / 16)][d_kv][16]
 * (each head's keys as panels of 16 keys, K-major like the weights, zero-padded: the scores
 * are a product over packed panels, read front to back), v [num_decoder_layers][heads][n]
 * [t5_cache_ldv] (each head's values contiguous): a decoder step streams each head's K^T and
 * V once, front to back. */
typedef struct {
    void *k;
    void *v;
    int n;
} t5_cross_kv;
/* The length of one head's value row in the caches: d_kv, or in bf16 d_kv rounded up to 16
 * (zero-padded: a 16-bit B operand is read in whole groups of 16). */
int t5_cache_ldv(const t5_model *m);
/* Bytes of one cache element, and element i of cache buffer p := x (bf16: rounded to nearest even). */
static inline size_t t5_cache_es(int dtype) {
    return dtype == ST_F32 ? sizeof(float) : sizeof(uint16_t);
}
static inline void t5_cache_put(int dtype, void *p, size_t i, float x) {
    if (dtype == ST_F32)
        ((float *)p)[i] = x;
    else
        ((uint16_t *)p)[i] = t5_float_to_bf16(x);
}
/* The B operands of the attention of head h of layer l over cr: K^T [d_kv, n] and V [n, d_kv]. */
t5k_bop t5_cross_kop(const t5_model *m, const t5_cross_kv *cr, int l, int h);
t5k_bop t5_cross_vop(const t5_model *m, const t5_cross_kv *cr, int l, int h);

/* Fills cr[i] (allocating its k, v) for each of n_inputs inputs from their encoder
 * output enc[T, d_model] (lens[i] rows each, in order). 0 or <0 (out of memory,
 * nothing allocated). */
int t5_cross_compute(const t5_model *m, t5_pool *pool, const float *enc, const int *lens, int n_inputs,
                     t5_cross_kv *const *cr);
void t5_cross_free(t5_cross_kv *c);

/* ---------------- decoder (decoder.c) ---------------- */

/* Self-attention cache of one decoder row, elements of t5_model.cache_dtype: k
 * [num_decoder_layers][inner][ldk] (transposed, position p in column p; ldk = cap, in bf16
 * rounded up to 16), v [num_decoder_layers][cap][heads][t5_cache_ldv] (float32: [cap][inner]). */
typedef struct {
    void *k;
    void *v;
    int len; /* positions filled */
    int cap; /* positions allocated */
} t5_kv;

int t5_kv_init(const t5_model *m, t5_kv *kv, int cap); /* 0 or <0 */
void t5_kv_free(t5_kv *kv);
/* dst := src (positions 0..src->len-1); both with the same cap. */
void t5_kv_copy(const t5_model *m, t5_kv *dst, const t5_kv *src);

typedef struct t5_dec_scratch t5_dec_scratch;
t5_dec_scratch *t5_dec_scratch_create(const t5_model *m, int max_rows, int n_threads);
void t5_dec_scratch_free(t5_dec_scratch *s);

/* One decoder step for rows rows: row r feeds token tokens[r] at position kv[r]->len
 * (appending to its cache) and attends over cross[r]. Writes logits[rows, vocab]
 * (a scratch buffer owned by s) and returns it. */
float *t5_decoder_step(const t5_model *m, t5_pool *pool, t5_dec_scratch *s, int rows, const int32_t *tokens,
                       t5_kv *const *kv, const t5_cross_kv *const *cross);

/* ---------------- random numbers (generate.c) ---------------- */

uint64_t t5_rng_next(uint64_t *state); /* splitmix64 */

/* ---------------- token choice (generate.c, beam.c) ---------------- */

/* The sampling warpers in transformers' order: temperature (below T5_GREEDY_TEMPERATURE:
 * the argmax only), top_k, top_p; non-finite scores made safe (NaN never drawn, +inf ones
 * share the draw); tmp[2V] scratch. */
void t5_logits_warp(const t5_gen_params *p, float *scores, int V, float *tmp, int min_keep);
/* Draws from softmax(scores) (scores may hold -inf); tmp[V] scratch. */
int t5_sample(const float *scores, int V, uint64_t *rng, float *tmp);
/* Rank key of a hypothesis whose processed log-probabilities (<= 0) sum to sum over len
 * tokens: a monotone function of sum / len^length_penalty, so keys order hypotheses as
 * those scores do, for any finite length_penalty. Where float32 holds the score (the usual
 * penalties) it is -log(-score) of the float32 score transformers 5 computes (float
 * denominator, float division): its ranks and ties exactly; where float32 would overflow,
 * underflow or lose the denominator to 0 (a large |length_penalty|), the score's log in
 * double, which never overflows: the order of BeamHypotheses' double arithmetic.
 * sum 0: +inf; -inf or NaN: -inf (never ranked). */
double t5_beam_key(float sum, int len, float length_penalty);
/* The score a key stands for, clamped to float's range (-FLT_MAX for scores beyond it). */
float t5_beam_key_score(double key);

#endif
