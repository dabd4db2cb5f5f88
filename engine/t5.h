/* t5.h - the T5 inference engine: one public header.
 *
 * Loads a T5-family checkpoint in the Hugging Face layout (config.json +
 * model.safetensors or pytorch_model.bin, or a sharded index of either;
 * float32/float16/bfloat16) memory-mapped read-only, and generates token ids exactly as transformers'
 * `generate` does. What it is not: it knows no tokenizer, no text, no HTTP. It works on token ids.
 *
 * Objects:
 *   t5_model  - immutable weights + config, shared by any number of threads.
 *   t5_batch  - a running continuous batch of sequences, owned by ONE thread at a
 *               time (a worker). Sequences join (t5_batch_add) and leave between
 *               steps; t5_batch_step advances every active sequence by one token,
 *               running the whole batch through each weight matrix once.
 * Errors: functions that can fail return NULL or a negative t5_status and write a
 * NUL-terminated message into err[errlen]. */
#ifndef T5SERVE_T5_H
#define T5SERVE_T5_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    T5_OK = 0,
    T5_ERR_ARG = -1,   /* bad parameters or input ids */
    T5_ERR_FULL = -2,  /* not enough free rows in the batch */
    T5_ERR_NOMEM = -3, /* out of memory */
} t5_status;

typedef struct {
    int32_t vocab_size;
    int32_t d_model;
    int32_t d_kv;
    int32_t num_heads;
    int32_t d_ff;
    int32_t num_layers;         /* encoder blocks */
    int32_t num_decoder_layers; /* decoder blocks */
    int32_t num_buckets;        /* relative_attention_num_buckets */
    int32_t max_distance;       /* relative_attention_max_distance */
    int32_t gated;              /* 1: wi_0/wi_1 gated FFN */
    int32_t act;                /* T5_ACT_RELU, T5_ACT_GELU_NEW, T5_ACT_SILU, T5_ACT_GELU */
    int32_t tied;               /* lm_head tied to shared (output scaled by d_model^-0.5) */
    float eps;                  /* layer_norm_epsilon */
    int32_t decoder_start_token_id;
    int32_t eos_token_id;
    int32_t pad_token_id;
    int32_t has_decoder; /* 0: an encoder-only checkpoint (T5EncoderModel): no decoder, no head */
    char model_type[32]; /* "t5", "mt5", ... */
} t5_config;

/* GELU_NEW is the tanh approximation (gated-gelu); GELU the exact erf form ("gelu"). */
enum { T5_ACT_RELU = 0, T5_ACT_GELU_NEW = 1, T5_ACT_SILU = 2, T5_ACT_GELU = 3 };

typedef struct t5_model t5_model;

/* ---- load options ---- */

/* Instruction set of the engine's kernels, chosen once at load. Every level gives the
 * same answer bit for bit (each output is one fixed sequence of float32 operations);
 * they differ in speed only. AUTO: the best the CPU has. AMX: AVX-512's kernels, and the
 * int8 products on AMX-INT8 tiles (tdpbssd) where the CPU and the OS allow them. */
typedef enum {
    T5_ISA_AUTO = 0,
    T5_ISA_GENERIC = 1,
    T5_ISA_AVX2 = 2,
    T5_ISA_AVX512 = 3,
    T5_ISA_AMX = 4
} t5_isa;
/* "auto", "generic", "avx2", "avx512", "amx" -> *out; 0, or -1 for another string. */
int t5_isa_parse(const char *s, t5_isa *out);
const char *t5_isa_name(t5_isa isa);

/* How the weight matrices are held and multiplied (norms, biases and the attention
 * arithmetic are float32 in every type; under BFLOAT16 and INT8 the attention caches, the
 * self-attention K/V and the cross K/V, hold bf16, widened exactly when read):
 *   AUTO      weight matrices as stored (float32, or bfloat16 / float16 streamed and
 *             widened exactly), float32 arithmetic: exact to transformers. The default.
 *   FLOAT32   every matrix converted to float32 at load (the same answers as AUTO).
 *   BFLOAT16  matrices rounded to bfloat16 at load (in place when stored so), and the
 *             activations rounded to bfloat16 inside each product; float32 accumulation.
 *   INT8      matrices quantized at load to int8, one float scale per output row
 *             (symmetric, scale = max|w| / 127), the activations quantized at run time
 *             with one scale per group of 64 values of a row, exact int32 sums per group
 *             and one fixed float epilogue (the same bits on every ISA: docs/engine.md);
 *             the classes of load_params.int8_float stay in float, in 16 bits: as
 *             stored when bfloat16 / float16, a float32 checkpoint's rounded to bfloat16
 *             at load (the embedding, a row lookup, stays as stored). One representation
 *             per matrix: no float copy beside the int8 one. */
typedef enum {
    T5_COMPUTE_AUTO = 0,
    T5_COMPUTE_FLOAT32,
    T5_COMPUTE_BFLOAT16,
    T5_COMPUTE_INT8
} t5_compute_type;

/* Classes of weight matrices, for the int8 choice of what stays in float (bit flags). Each
 * attention's q, k class is followed by its v, o class (the next bit). */
enum {
    T5_MATS_ENC_QK = 1 << 0,           /* encoder self-attention q, k */
    T5_MATS_ENC_VO = 1 << 1,           /* encoder self-attention v, o */
    T5_MATS_ENC_WI = 1 << 2,           /* encoder FFN input projections (wi, or wi_0 and wi_1) */
    T5_MATS_ENC_WO = 1 << 3,           /* encoder FFN output projection wo */
    T5_MATS_DEC_SELF_QK = 1 << 4,      /* decoder self-attention q, k */
    T5_MATS_DEC_SELF_VO = 1 << 5,      /* decoder self-attention v, o */
    T5_MATS_DEC_CROSS_QK = 1 << 6,     /* decoder cross-attention q, k */
    T5_MATS_DEC_CROSS_VO = 1 << 7,     /* decoder cross-attention v, o */
    T5_MATS_DEC_WI = 1 << 8,           /* decoder FFN input projections */
    T5_MATS_DEC_WO = 1 << 9,           /* decoder FFN output projection wo */
    T5_MATS_HEAD = 1 << 10,            /* lm_head (untied models) */
    T5_MATS_EMBED = 1 << 11,           /* the shared embedding (and the head, when tied) */
    T5_MATS_LAYERS = T5_MATS_HEAD - 1, /* every class of the encoder's and decoder's blocks */
    T5_MATS_ALL = (1 << 12) - 1,
    T5_MATS_QK = T5_MATS_ENC_QK | T5_MATS_DEC_SELF_QK | T5_MATS_DEC_CROSS_QK
};
/* int8's defaults, chosen by measurement on the default model (models/default/README.md,
 * tools/quality.sh): every matrix in int8, the blocks' with 16-bit activations and the output
 * head's with 8-bit ones (held-out test set: mean KL 2.45e-4, argmax agreement 0.9926, ROUGE-L
 * vs float32 0.907; the head with 16 bits too, the default of 2026-12-03: 2.15e-4, 0.9927,
 * 0.908, and 10% slower at batch 32 on VNNI, where 16 bits cost twice the vpdpbusd and the head
 * is over half a step's multiply-adds; 8-bit activations everywhere: 6.09e-4, 0.9860, 0.856;
 * the FFN output projections wo and the attentions' q, k in float with 8-bit activations, the
 * default until 2026-12-03: 2.58e-4, 0.9926, 0.915); the embedding in float (a row lookup: no
 * speed to gain). */
#define T5_INT8_FLOAT_DEFAULT T5_MATS_EMBED
#define T5_INT8_FLOAT_DEFAULT_NAMES "embed" /* the same, as t5_mats_parse reads it */
#define T5_INT8_A16_DEFAULT T5_MATS_LAYERS
#define T5_INT8_A16_DEFAULT_NAMES "layers"

typedef struct {
    t5_compute_type compute_type; /* T5_COMPUTE_AUTO */
    unsigned int8_float;          /* INT8 only: T5_MATS_* classes kept in float; T5_INT8_FLOAT_DEFAULT */
    unsigned int8_a16; /* INT8 only: T5_MATS_* classes (not kept in float) whose activations are quantized
                          to 16 bits, not 8; T5_INT8_A16_DEFAULT */
    t5_isa
        isa; /* kernels' instruction set, a cap: the best level the CPU has at or below it (AUTO: no cap) */
} t5_load_params;

void t5_load_default_params(t5_load_params *p);
/* "auto", "float32", "bfloat16", "int8" (also "f32", "fp32", "bf16"): 0 and *t set, or -1. */
int t5_compute_type_parse(const char *s, t5_compute_type *t);
const char *t5_compute_type_name(t5_compute_type t); /* "auto", "float32", ... */
/* A comma-separated list of class names into T5_MATS_* bits: enc-qk, enc-vo, enc-wi, enc-wo,
 * dec-self-qk, dec-self-vo, dec-cross-qk, dec-cross-vo, dec-wi, dec-wo, head, embed; also
 * "enc-attn", "dec-self", "dec-cross" (an attention's four), "qk" and "vo" (of the three
 * attentions), "attn" (all three), "wo" (enc-wo,dec-wo), "wi" (both), "none" and "all".
 * 0 and *bits set, or -1 with err naming the unknown name. */
int t5_mats_parse(const char *s, unsigned *bits, char *err, size_t errlen);

/* Loads DIR/config.json and the first of DIR/model.safetensors,
 * model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json
 * (torch files through a restricted unpickler: no code in them runs),
 * with the default load parameters.
 * A config whose architectures name T5EncoderModel (or that says is_encoder_decoder
 * false) is an encoder-only checkpoint: shared.weight + encoder.* only, loaded
 * without decoder (t5_model_has_decoder 0; generation is refused, encoding works).
 * Returns a model the caller owns (t5_model_free), or NULL with err naming the
 * problem (the tensor, for a missing/misshapen one; the refused global of a pickle). */
t5_model *t5_model_load(const char *dir, char *err, size_t errlen);
/* The same with load parameters p (NULL: defaults). */
t5_model *t5_model_load_with(const char *dir, const t5_load_params *p, char *err, size_t errlen);
void t5_model_free(t5_model *m);

t5_isa t5_model_isa(const t5_model *m); /* the level chosen at load (never AUTO) */
const t5_config *t5_model_config(const t5_model *m);
/* The load parameters the model was loaded with. */
const t5_load_params *t5_model_load_params(const t5_model *m);
/* 1 when the model has a decoder (it can generate), 0 for an encoder-only one. */
int t5_model_has_decoder(const t5_model *m);
/* 1 when DIR holds one of the weight files t5_model_load looks for. */
int t5_weights_present(const char *dir);
/* The weights' file format: "safetensors", "pytorch-zip" or "pytorch-legacy". */
const char *t5_model_format(const t5_model *m);
/* What the load noticed, one line each ("" when nothing), for the caller to log:
 * tensors copied instead of mapped (compressed or misaligned entries, strided views),
 * NaN/Inf in weights. Owned by the model. */
const char *t5_model_notes(const t5_model *m);

/* Encoder forward of one input: out[n * d_model] (caller-allocated) receives the
 * encoder's last hidden state. n_threads: threads for this call. Returns T5_OK or a
 * negative t5_status. */
int t5_encode(const t5_model *m, const int32_t *ids, int n, float *out, int n_threads, char *err,
              size_t errlen);

/* ---- generation parameters (transformers' generate names and defaults) ---- */
typedef struct {
    int max_new_tokens;             /* 20 */
    int min_new_tokens;             /* 0 */
    int do_sample;                  /* 0 */
    float temperature;              /* 1.0; >= 0; below T5_GREEDY_TEMPERATURE (0 too): greedy */
    int top_k;                      /* 50 when sampling; 0 = off */
    float top_p;                    /* 1.0; in (0, 1] */
    uint64_t seed;                  /* 0 */
    float repetition_penalty;       /* 1.0 */
    float presence_penalty;         /* 0: OpenAI's: minus this from a token already generated */
    float frequency_penalty;        /* 0: OpenAI's: minus this times a token's count so far */
    int no_repeat_ngram_size;       /* 0 */
    int num_beams;                  /* 1 */
    int num_return_sequences;       /* 1 */
    float length_penalty;           /* 1.0; in [-100, 100] (scores ranked in log space beyond float32) */
    int early_stopping;             /* T5_EARLY_STOPPING_*: FALSE (transformers' default) */
    int want_logprobs;              /* record per-token log-probabilities (model distribution) */
    int top_logprobs;               /* 0..T5_MAX_TOP_LOGPROBS: also record that many most likely
                                       tokens per step (non-beam sequences) */
    int32_t decoder_start_token_id; /* -1: the config's */
    int32_t eos_token_id;           /* -1: the config's */
} t5_gen_params;

/* Beam search's early_stopping, as transformers takes it: false (stop when the best
 * running beam cannot beat the finished ones at its current length), true (stop when
 * num_beams hypotheses have finished), "never" (judge at the longest reachable length). */
enum { T5_EARLY_STOPPING_FALSE = 0, T5_EARLY_STOPPING_TRUE = 1, T5_EARLY_STOPPING_NEVER = 2 };

/* The most alternatives top_logprobs may ask for per step. */
#define T5_MAX_TOP_LOGPROBS 20

/* The most decoder rows one sequence may take: num_beams, and num_return_sequences. */
#define T5_MAX_BEAMS 1024

void t5_gen_default_params(t5_gen_params *p);
/* Sampling with a smaller temperature (0 included) takes the argmax, as llama.cpp does:
 * float32 logits divided by it would overflow to inf and NaN. */
#define T5_GREEDY_TEMPERATURE 1e-5f

/* Checks p against m as t5_batch_add will (ranges, combinations, token ids in the
 * vocabulary; -1 ids stand for the config's). Returns T5_OK, or T5_ERR_ARG with err set. */
int t5_gen_check(const t5_model *m, const t5_gen_params *p, char *err, size_t errlen);

/* T5_FINISH_ERROR: the sequence never ran (out of memory encoding its input). */
enum {
    T5_FINISH_EOS = 1,
    T5_FINISH_LENGTH = 2,
    T5_FINISH_STOP = 3,
    T5_FINISH_CANCELLED = 4,
    T5_FINISH_ERROR = 5
};

/* One generated sequence: ids exclude the decoder start token and include eos. */
typedef struct {
    int32_t *ids;        /* [n] */
    float *logprobs;     /* [n] when want_logprobs, else NULL */
    int32_t *top_ids;    /* [n][top_logprobs] most likely tokens of each step, best first (model
                            distribution); NULL without top_logprobs or for beam search */
    float *top_logprobs; /* [n][top_logprobs] their log-probabilities */
    int n_top;           /* top_logprobs of the request when top_ids is set, else 0 */
    int n;
    float score; /* beams: sum_logprobs / len^length_penalty (len: generated tokens,
                    eos included; transformers' sequences_scores); else sum of logprobs */
    int finish;  /* T5_FINISH_* */
} t5_sequence;

typedef struct {
    t5_sequence *seqs; /* [n_seqs], best first */
    int n_seqs;
    int input_tokens;
} t5_result;

void t5_result_free(t5_result *r); /* frees the arrays inside r, not r itself */

/* Called after every new token of a one-row sequence (num_beams 1 and
 * num_return_sequences 1; never for beams or several samples), logprob being the
 * model's log-probability of the token. Returning nonzero ends the sequence with
 * T5_FINISH_STOP (the token is kept). Runs on the thread calling t5_batch_step. */
typedef int (*t5_token_fn)(void *user, int32_t token, float logprob);
/* Called once when the sequence leaves the batch (finished or cancelled). r points
 * to a struct valid during the call only; the callee owns the arrays inside it:
 * copy *r to keep them and release them with t5_result_free. */
typedef void (*t5_done_fn)(void *user, t5_result *r);

/* ---- continuous batch ---- */
typedef struct t5_batch t5_batch;

/* A batch for up to max_rows decoder rows (a beam request takes num_beams rows),
 * using n_threads threads for its GEMMs. The model must outlive the batch. */
t5_batch *t5_batch_create(const t5_model *m, int max_rows, int n_threads, char *err, size_t errlen);
void t5_batch_free(t5_batch *b); /* cancels (without callbacks) what is still in it */

/* Rows still available to new sequences. */
int t5_batch_rows_available(const t5_batch *b);
/* Sequences in the batch. */
int t5_batch_active(const t5_batch *b);

/* Admits one input (ids copied). Its encoder and cross-attention K/V run at the next
 * t5_batch_step, in one pass with every other input admitted since the previous step.
 * Returns a sequence handle >= 0, or a negative t5_status with err set: T5_ERR_ARG (bad
 * params or ids, or a model without decoder: "the model has no decoder"), T5_ERR_FULL
 * (not enough free rows), T5_ERR_NOMEM. Inputs are not padded (each attends
 * over its own tokens only), so batched results equal one-by-one results. Sampling is seeded by
 * p->seed (same seed, same output) but does not reproduce torch's random stream. */
int t5_batch_add(t5_batch *b, const int32_t *ids, int n, const t5_gen_params *p, t5_token_fn on_token,
                 t5_done_fn on_done, void *user, char *err, size_t errlen);

/* Receives an embedding entry's encoder output: h [n][d_model], the encoder's last hidden
 * state of its n input tokens, valid during the call only (copy what you keep); h is
 * NULL (n 0) when the entry never ran: cancelled, or out of memory in its encoder pass.
 * Called exactly once, on the thread calling t5_batch_step, which the callee must not
 * re-enter (no t5_batch_add* / t5_batch_step / t5_batch_free on this batch from inside). */
typedef void (*t5_hidden_fn)(void *user, const float *h, int n);

/* Admits one input to embed (ids copied): it joins the next t5_batch_step's grouped
 * encoder pass together with every generation input admitted since the previous step
 * (one product per weight matrix over all their tokens), gets its last hidden state
 * through on_hidden and leaves the batch in that step, taking no decoder rows. Works
 * on encoder-only models. Returns a handle >= 0 (t5_batch_cancel applies), or < 0 with
 * err set: -1 bad ids, -3 out of memory. Results equal t5_encode's, bit for bit. */
int t5_batch_add_embed(t5_batch *b, const int32_t *ids, int n, t5_hidden_fn on_hidden, void *user, char *err,
                       size_t errlen);

/* Marks a sequence to finish with T5_FINISH_CANCELLED at the next step (its on_done
 * is still called). Unknown/finished handles are ignored. */
void t5_batch_cancel(t5_batch *b, int handle);

/* One decoder step for every active sequence, after running the encoders of the
 * sequences admitted since the last step (those that run out of memory there end
 * with T5_FINISH_ERROR); calls on_token for new tokens and on_done for finished (and
 * cancelled) sequences. Returns the number of sequences still in the batch, or
 * T5_ERR_NOMEM (out of memory in the decoder step; the batch stays usable).
 * The batch's n_threads threads run every product (the engine's own kernels; no BLAS). */
int t5_batch_step(t5_batch *b);

/* ---- teacher-forced scoring ---- */

/* Scores a given target sequence: the encoder runs once over ids[n], then the decoder
 * runs over the target with its cache, one position per step, feeding the decoder start
 * token then target[0..nt-2], exactly as generation feeds its own tokens (so a greedy
 * sequence scores to the logprobs generation reported for it). Step i gives the
 * log-softmax of the raw logits (no processors); out->logprobs[i] is its value at
 * target[i], out->argmax[i] its first maximum. Uses: the likelihood of a reference
 * output, rerankers (monoT5 scores "true" after a query-document prompt), comparing
 * compute types (argmax agreement, KL).
 * target: ids after the decoder start token, normally ending with eos (nt >= 1).
 * start: the decoder start token, -1 for the config's (WordPiece models: [CLS]).
 * want_dist: also fill out->dist[nt][vocab] with every step's whole log-softmax.
 * Returns 0 with *out filled (free with t5_score_result_free), or <0 with err set
 * (-1 bad ids, -3 out of memory). Runs on the calling thread and n_threads-1 more. */
typedef struct {
    float *logprobs; /* [n] log p(target[i] | input, target[0..i)) */
    int32_t *argmax; /* [n] most probable token of each step */
    float *dist;     /* [n][vocab] log-probabilities of each step when asked, else NULL */
    float total;     /* sum of logprobs, summed in order in float32 as generation's score */
    int n;
} t5_score_result;

int t5_score(const t5_model *m, const int32_t *ids, int n, const int32_t *target, int nt, int32_t start,
             int want_dist, int n_threads, t5_score_result *out, char *err, size_t errlen);
void t5_score_result_free(t5_score_result *r); /* frees the arrays inside r */

/* Convenience: generates for one input to completion on the calling thread.
 * Returns T5_OK with *out holding the result (free with t5_result_free), or a negative
 * t5_status with err set. */
int t5_generate(const t5_model *m, const int32_t *ids, int n, const t5_gen_params *p, int n_threads,
                t5_result *out, char *err, size_t errlen);

/* ---- sentence embeddings (embed.c) ---- */

/* Pooling modes, a bit set: several are concatenated in this order, as
 * sentence-transformers' Pooling does; 0 is "none" (the token embeddings). */
enum {
    T5_POOL_CLS = 1,            /* the first token */
    T5_POOL_MAX = 2,            /* element-wise max over the tokens */
    T5_POOL_MEAN = 4,           /* mean over the tokens */
    T5_POOL_MEAN_SQRT_LEN = 8,  /* sum / sqrt(tokens) */
    T5_POOL_WEIGHTED_MEAN = 16, /* position-weighted mean (weights 1..n) */
    T5_POOL_LAST = 32           /* the last token (</s>) */
};
/* "none" 0, "mean", "max", "cls", "last" / "lasttoken", "mean_sqrt_len_tokens",
 * "weightedmean"; -1 for anything else. */
int t5_pooling_from_name(const char *name);

/* The sentence-transformers pipeline after the encoder, read from a model folder's
 * modules.json (a Transformer at the folder root with sentence_bert_config.json, a
 * Pooling, then Dense and Normalize modules in order); immutable, shared by threads. */
typedef struct t5_embedder t5_embedder;

/* Reads DIR's modules.json and its modules (Dense weights: model.safetensors; float32,
 * float16 or bfloat16) for an encoder of d_model features. Without modules.json: mean
 * pooling, nothing else. Any other module, a malformed file or mismatched sizes are
 * errors naming the file. Returns an embedder the caller owns (t5_embedder_free), or
 * NULL with err set. */
t5_embedder *t5_embedder_load(const char *dir, int d_model, char *err, size_t errlen);
void t5_embedder_free(t5_embedder *e);
/* The folder's pooling (T5_POOL_* bits) and max_seq_length (0: none given). */
int t5_embedder_pooling(const t5_embedder *e);
int t5_embedder_max_seq_length(const t5_embedder *e);
/* "Pooling(mean) -> Dense(768 -> 768, Identity) -> Normalize" into buf[len]. */
void t5_embedder_describe(const t5_embedder *e, char *buf, size_t len);

typedef struct {
    int pooling;   /* T5_POOL_* bits, 0 none; -1 (default): the folder's */
    int normalize; /* -1 (default): the folder's Normalize modules; 0: none of them; 1: also a
                      final L2 normalisation when the pipeline does not end with one */
} t5_embed_params;
void t5_embed_default_params(t5_embed_params *p);

/* Size of the embedding under p (d_model for pooling none), or -1 with err set when the
 * folder's Dense layers do not take what that pooling gives. */
int t5_embedder_dim(const t5_embedder *e, const t5_embed_params *p, char *err, size_t errlen);
/* out[t5_embedder_dim] (caller-allocated) = the sentence embedding of one input from its
 * encoder output h[n][d_model]: pooling, the Dense modules, normalisation. p may be
 * NULL (the folder's). Returns 0, or -1 with err set (pooling none, sizes). Thread-safe. */
int t5_embed_sentence(const t5_embedder *e, const t5_embed_params *p, const float *h, int n, float *out,
                      char *err, size_t errlen);

#endif
