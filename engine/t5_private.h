/* t5_private.h - private to engine/: what its .c files share beyond t5_dev.h (the
 * config.json reader, generation's parameter resolution, logits processors and warpers,
 * beam search). Nothing outside engine/ includes it (`make include-check`). */
#ifndef T5SERVE_T5_PRIVATE_H
#define T5SERVE_T5_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "t5.h"
#include "t5_dev.h"

/* ---------------- config (config.c) ---------------- */

/* Parses DIR/config.json into *c. Returns 0 or <0 with err set. */
int t5_config_load(const char *dir, t5_config *c, char *err, size_t errlen);

/* ---------------- logits processing (generate.c) ---------------- */

/* Checks p against the model and fills *out with p's values, the config's start /
 * eos ids where p has -1. Returns 0 or <0 with err set. */
int t5_gen_resolve(const t5_model *m, const t5_gen_params *p, t5_gen_params *out, char *err, size_t errlen);
/* transformers' logits processors in its order: repetition_penalty, no_repeat_ngram_size,
 * min_new_tokens; seq[len] is the decoder sequence so far (start token included). */
void t5_logits_process(const t5_gen_params *p, float *scores, int V, const int32_t *seq, int len);
/* log_softmax in place, as torch computes it: (x - max) - log(sum(exp(x - max))). */
void t5_log_softmax(float *x, int V);

/* ---------------- beam search (beam.c) ---------------- */

/* transformers' vectorised beam search for one input: B running beams, up to B
 * finished hypotheses ranked by sum_logprobs / generated_len^length_penalty. */
typedef struct {
    int B, V, max_len; /* max_len: decoder length limit, start token included */
    int cur_len;       /* running length, start token included */
    int32_t *tok;      /* [B][max_len] running sequences */
    float *lpr;        /* [B][max_len] model log-probability of each token (index = position) */
    float *score;      /* [B] running sum of processed log-probabilities */
    int32_t *ftok;     /* [B][max_len] finished hypotheses */
    float *flpr;       /* [B][max_len] */
    double *fkey;      /* [B] rank key of each finished hypothesis (t5_beam_key); -inf: empty */
    int *ffin;         /* [B] slot holds a finished hypothesis */
    int *flen;         /* [B] finished length, start token included */
    int heur;          /* is_early_stop_heuristic_unsatisfied */
    int *parent;       /* [B] after a step: the running beam each new beam continues */
    int32_t *tmp_tok;  /* [3B][max_len] scratch */
    float *tmp_lpr;    /* [3B][max_len] scratch */
    float *work;       /* [(B + 2) V]: model log-probs of each beam, then warper scratch */
} t5_beam;

int t5_beam_init(t5_beam *b, int B, int V, int max_len, int32_t start); /* 0 or <0 */
void t5_beam_free(t5_beam *b);

/* The per-step candidate arrays of beam searches of up to max_beams beams: one per batch
 * (its searches step one at a time), allocated once. */
typedef struct {
    int max_beams;
    float *cval;    /* [2 max_beams] candidates: accumulated score */
    float *cmodel;  /* [2 max_beams] model log-probability of the candidate's token */
    double *radj;   /* [2 max_beams] candidate score with finished ones masked (float sums) */
    double *merged; /* [3 max_beams] finished hypotheses' keys, then the candidates' */
    double *nkey;   /* [max_beams] */
    float *nscore;  /* [max_beams] */
    int *cidx;      /* [2 max_beams] flat index beam * V + token */
    int *chit;      /* [2 max_beams] the candidate ends its hypothesis */
    int *order;     /* [max_beams] */
    int *nfin;      /* [max_beams] */
    int *nlen;      /* [max_beams] */
} t5_beam_scratch;

int t5_beam_scratch_init(t5_beam_scratch *s, int max_beams); /* 0 or <0 */
void t5_beam_scratch_free(t5_beam_scratch *s);

/* One step from logits[B][V] (overwritten), B <= s->max_beams. Returns 1 to continue,
 * 0 when done. */
int t5_beam_step(t5_beam *b, const t5_gen_params *p, float *logits, uint64_t *rng, t5_beam_scratch *s);

#endif
