/* batch.c - the continuous batch: sequences join between decoder steps (their encoder
 * and cross K/V run once, together with the other arrivals, at the next step) and
 * leave when finished; t5_batch_step gathers every active row (a greedy or
 * sampled sequence's rows, a beam search's beams) into one decoder step, so each
 * weight matrix is read once per step for the whole batch, then chooses each
 * row's next token (generate.c, beam.c) and retires finished sequences.
 * t5_generate is a one-input batch driven to completion.
 * What it is not: thread-safe; one thread owns a batch at a time (the model is shared). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t5_private.h"

typedef struct {
    int handle;
    t5_gen_params p;
    t5_token_fn on_token;
    t5_done_fn on_done;
    t5_hidden_fn on_hidden; /* embedding entries: gets the encoder output, takes no rows */
    void *user;
    int embed;     /* 1: an embedding entry (t5_batch_add_embed) */
    int delivered; /* embedding entries: on_hidden has been called */
    int rows;      /* rows reserved: num_beams (beam search) or num_return_sequences; 0 to embed */
    int beam;      /* 1: beam search */
    int cancel;
    int error; /* its encoder could not run (out of memory): finishes T5_FINISH_ERROR */
    int done;
    int input_tokens;
    int32_t *ids; /* [input_tokens] until the encoder has run (NULL after) */
    int max_len;  /* max_new_tokens + 1: decoder length limit with the start token */
    t5_cross_kv cross;
    t5_kv *kv;         /* [rows] self-attention caches */
    t5_kv *kv2;        /* [rows] beams: reorder targets */
    int32_t *tok;      /* [rows][max_len] non-beam rows: start token + generated */
    float *lpr;        /* [rows][max_len] model log-probability of each token */
    int32_t *top_id;   /* [rows][max_len][p.top_logprobs] most likely tokens per step, or NULL */
    float *top_lp;     /* [rows][max_len][p.top_logprobs] their log-probabilities */
    float *sum;        /* [rows] sum of those log-probabilities */
    int *len;          /* [rows] tokens in tok, start included */
    int *fin;          /* [rows] T5_FINISH_* or 0 while running */
    uint64_t *rng;     /* [rows] sampling state per row */
    uint64_t rng_beam; /* beam sampling state */
    t5_beam bs;
} seq;

struct t5_batch {
    const t5_model *m;
    int max_rows, used_rows;
    t5_pool *pool;
    t5_dec_scratch *s;
    t5_enc_scratch *es; /* the encoder passes' buffers, kept between passes */
    seq **seqs;         /* [n_seqs] in admission order */
    int n_seqs, cap_seqs;
    int next_handle;
    int32_t *tokens;         /* [max_rows] step inputs */
    t5_kv **kvp;             /* [max_rows] */
    const t5_cross_kv **crp; /* [max_rows] */
    float *tmp;              /* [threads][3 vocab] raw logits, then warper / sampling scratch */
    struct pick *picks;      /* [max_rows] the step's non-beam rows, whose tokens the pool chooses */
    t5_beam_scratch beam;    /* for beam searches of up to min(max_rows, T5_MAX_BEAMS) beams */
};

/* One non-beam row of a step: sequence q's row r, logits row `at` of the step. */
struct pick {
    seq *q;
    int r, at;
};

static void seq_free(const t5_model *m, seq *q) {
    if (!q) return;
    (void)m;
    t5_cross_free(&q->cross);
    free(q->ids);
    for (int r = 0; q->kv && r < q->rows; r++)
        t5_kv_free(&q->kv[r]);
    for (int r = 0; q->kv2 && r < q->rows; r++)
        t5_kv_free(&q->kv2[r]);
    free(q->kv), free(q->kv2), free(q->tok), free(q->lpr), free(q->top_id), free(q->top_lp), free(q->sum),
        free(q->len), free(q->fin), free(q->rng);
    if (q->beam) t5_beam_free(&q->bs);
    free(q);
}

t5_batch *t5_batch_create(const t5_model *m, int max_rows, int n_threads, char *err, size_t errlen) {
    if (!m || max_rows < 1 || max_rows > 65536) {
        snprintf(err, errlen, "t5_batch_create: max_rows must be in [1, 65536]");
        return NULL;
    }
    if (n_threads < 1) n_threads = 1;
    t5_batch *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->m = m;
    b->max_rows = max_rows;
    b->pool = t5_pool_create(n_threads);
    b->s = t5_dec_scratch_create(m, max_rows, t5_pool_threads(b->pool));
    b->es = t5_enc_scratch_create();
    b->tokens = malloc((size_t)max_rows * sizeof *b->tokens);
    b->kvp = malloc((size_t)max_rows * sizeof *b->kvp);
    b->crp = malloc((size_t)max_rows * sizeof *b->crp);
    b->tmp =
        b->pool ? malloc((size_t)t5_pool_threads(b->pool) * 3 * m->cfg.vocab_size * sizeof *b->tmp) : NULL;
    b->picks = malloc((size_t)max_rows * sizeof *b->picks);
    if (!b->pool || !b->s || !b->es || !b->tokens || !b->kvp || !b->crp || !b->tmp || !b->picks ||
        t5_beam_scratch_init(&b->beam, max_rows < T5_MAX_BEAMS ? max_rows : T5_MAX_BEAMS) != 0)
        goto oom;
    return b;
oom:
    t5_batch_free(b);
    snprintf(err, errlen, "out of memory creating a batch of %d rows", max_rows);
    return NULL;
}

void t5_batch_free(t5_batch *b) {
    if (!b) return;
    for (int i = 0; i < b->n_seqs; i++)
        seq_free(b->m, b->seqs[i]);
    free(b->seqs);
    t5_dec_scratch_free(b->s);
    t5_enc_scratch_free(b->es);
    t5_pool_free(b->pool);
    free(b->tokens), free(b->kvp), free(b->crp), free(b->tmp), free(b->picks);
    t5_beam_scratch_free(&b->beam);
    free(b);
}

int t5_batch_rows_available(const t5_batch *b) {
    return b->max_rows - b->used_rows;
}
int t5_batch_active(const t5_batch *b) {
    return b->n_seqs;
}

/* 0 when ids[n] is a non-empty input of the model's vocabulary, else -1 with err set. */
static int check_ids(const t5_model *m, const int32_t *ids, int n, char *err, size_t errlen) {
    if (!ids || n <= 0) {
        snprintf(err, errlen, "empty input: at least one token id (eos) is needed");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size) {
            snprintf(err, errlen, "input id %d at position %d is outside the vocabulary (0..%d)", ids[i], i,
                     m->cfg.vocab_size - 1);
            return -1;
        }
    return 0;
}

/* Appends q to the batch with a new handle (the seqs array grown as needed). 0 or -1. */
static int admit(t5_batch *b, seq *q) {
    if (b->n_seqs == b->cap_seqs) {
        int cap = b->cap_seqs ? 2 * b->cap_seqs : 16;
        seq **ns = realloc(b->seqs, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        b->seqs = ns, b->cap_seqs = cap;
    }
    q->handle = b->next_handle;
    b->next_handle = (b->next_handle + 1) & 0x3fffffff;
    b->seqs[b->n_seqs++] = q;
    b->used_rows += q->rows;
    return 0;
}

int t5_batch_add(t5_batch *b, const int32_t *ids, int n, const t5_gen_params *pin, t5_token_fn on_token,
                 t5_done_fn on_done, void *user, char *err, size_t errlen) {
    const t5_model *m = b->m;
    const t5_config *c = &m->cfg;
    t5_gen_params p;
    if (!pin) {
        t5_gen_default_params(&p);
        pin = &p;
    }
    if (t5_gen_resolve(m, pin, &p, err, errlen) != 0 || check_ids(m, ids, n, err, errlen) != 0)
        return T5_ERR_ARG;
    int beam = p.num_beams > 1, rows = beam ? p.num_beams : p.num_return_sequences;
    if (rows > b->max_rows - b->used_rows) {
        snprintf(err, errlen, "not enough free rows in the batch (%d needed, %d free)", rows,
                 b->max_rows - b->used_rows);
        return T5_ERR_FULL;
    }
    seq *q = calloc(1, sizeof *q);
    if (!q) goto oom0;
    q->p = p, q->on_token = on_token, q->on_done = on_done, q->user = user;
    q->rows = rows, q->beam = beam, q->input_tokens = n, q->max_len = p.max_new_tokens + 1;
    size_t rl = (size_t)rows * q->max_len;
    q->kv = calloc((size_t)rows, sizeof *q->kv);
    if (!q->kv) goto oom;
    for (int r = 0; r < rows; r++)
        if (t5_kv_init(m, &q->kv[r], q->max_len) != 0) goto oom;
    if (beam) {
        q->kv2 = calloc((size_t)rows, sizeof *q->kv2);
        if (!q->kv2) goto oom;
        for (int r = 0; r < rows; r++)
            if (t5_kv_init(m, &q->kv2[r], q->max_len) != 0) goto oom;
        if (t5_beam_init(&q->bs, rows, c->vocab_size, q->max_len, p.decoder_start_token_id) != 0) goto oom;
        q->bs.isa = m->isa;
    } else {
        q->tok = calloc(rl, sizeof *q->tok);
        q->lpr = calloc(rl, sizeof *q->lpr);
        q->sum = calloc((size_t)rows, sizeof *q->sum);
        q->len = calloc((size_t)rows, sizeof *q->len);
        q->fin = calloc((size_t)rows, sizeof *q->fin);
        q->rng = calloc((size_t)rows, sizeof *q->rng);
        if (!q->tok || !q->lpr || !q->sum || !q->len || !q->fin || !q->rng) goto oom;
        if (p.top_logprobs > 0) {
            q->top_id = calloc(rl * (size_t)p.top_logprobs, sizeof *q->top_id);
            q->top_lp = calloc(rl * (size_t)p.top_logprobs, sizeof *q->top_lp);
            if (!q->top_id || !q->top_lp) goto oom;
        }
        for (int r = 0; r < rows; r++) {
            q->tok[(size_t)r * q->max_len] = p.decoder_start_token_id;
            q->len[r] = 1;
            q->rng[r] = p.seed + 0x632be59bd9b4e019ULL * (uint64_t)r;
        }
    }
    q->rng_beam = p.seed;
    q->ids = malloc((size_t)n * sizeof *q->ids);
    if (!q->ids) goto oom;
    memcpy(q->ids, ids, (size_t)n * sizeof *ids);
    if (admit(b, q) != 0) goto oom;
    return q->handle;
oom:
    seq_free(m, q);
oom0:
    snprintf(err, errlen, "out of memory admitting a sequence");
    return T5_ERR_NOMEM;
}

int t5_batch_add_embed(t5_batch *b, const int32_t *ids, int n, t5_hidden_fn on_hidden, void *user, char *err,
                       size_t errlen) {
    if (check_ids(b->m, ids, n, err, errlen) != 0) return T5_ERR_ARG;
    seq *q = calloc(1, sizeof *q);
    if (q) q->ids = malloc((size_t)n * sizeof *q->ids);
    if (!q || !q->ids || admit(b, q) != 0) {
        seq_free(b->m, q);
        snprintf(err, errlen, "out of memory admitting an input to embed");
        return T5_ERR_NOMEM;
    }
    memcpy(q->ids, ids, (size_t)n * sizeof *ids);
    q->embed = 1, q->on_hidden = on_hidden, q->user = user, q->input_tokens = n;
    return q->handle;
}

void t5_batch_cancel(t5_batch *b, int handle) {
    for (int i = 0; i < b->n_seqs; i++)
        if (b->seqs[i]->handle == handle) b->seqs[i]->cancel = 1;
}

static int cmp_seq_score(const void *a, const void *b) {
    const t5_sequence *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

/* Fills one result sequence from tokens t[1..len), their log-probs and (k > 0) the k
 * most likely tokens of each step, top_id / top_lp [len][k]. */
static int fill_seq(t5_sequence *o, const int32_t *t, const float *lp, int len, float score, int finish,
                    int want_lp, const int32_t *top_id, const float *top_lp, int k) {
    o->n = len - 1;
    size_t n1 = (size_t)(o->n > 0 ? o->n : 1);
    o->ids = malloc(n1 * sizeof *o->ids);
    o->logprobs = want_lp ? malloc(n1 * sizeof *o->logprobs) : NULL;
    if (!o->ids || (want_lp && !o->logprobs)) return -1;
    memcpy(o->ids, t + 1, (size_t)o->n * sizeof *o->ids);
    if (want_lp) memcpy(o->logprobs, lp + 1, (size_t)o->n * sizeof *o->logprobs);
    if (k > 0 && top_id) {
        o->top_ids = malloc(n1 * (size_t)k * sizeof *o->top_ids);
        o->top_logprobs = malloc(n1 * (size_t)k * sizeof *o->top_logprobs);
        if (!o->top_ids || !o->top_logprobs) return -1;
        memcpy(o->top_ids, top_id + k, (size_t)o->n * k * sizeof *o->top_ids);
        memcpy(o->top_logprobs, top_lp + k, (size_t)o->n * k * sizeof *o->top_logprobs);
        o->n_top = k;
    }
    o->score = score;
    o->finish = finish;
    return 0;
}

static void build_result(seq *q, t5_result *r) {
    memset(r, 0, sizeof *r);
    r->input_tokens = q->input_tokens;
    int want = q->p.want_logprobs, eos = q->p.eos_token_id, L = q->max_len;
    if (q->beam) {
        t5_beam *bs = &q->bs;
        int k = q->p.num_return_sequences, nf = 0;
        for (int i = 0; i < bs->B; i++)
            nf += bs->ffin[i];
        int use_fin = nf >= k && !q->cancel;
        r->seqs = calloc((size_t)k, sizeof *r->seqs);
        if (!r->seqs) return;
        r->n_seqs = k;
        for (int i = 0; i < k; i++) {
            const int32_t *t = use_fin ? bs->ftok + (size_t)i * L : bs->tok + (size_t)i * L;
            const float *lp = use_fin ? bs->flpr + (size_t)i * L : bs->lpr + (size_t)i * L;
            int len = use_fin ? bs->flen[i] : bs->cur_len;
            float sc = t5_beam_key_score(
                use_fin ? bs->fkey[i]
                        : t5_beam_key(bs->score[i], len > 1 ? len - 1 : 1, q->p.length_penalty));
            int fin = q->error                       ? T5_FINISH_ERROR
                      : q->cancel                    ? T5_FINISH_CANCELLED
                      : len > 1 && t[len - 1] == eos ? T5_FINISH_EOS
                                                     : T5_FINISH_LENGTH;
            if (fill_seq(&r->seqs[i], t, lp, len, sc, fin, want, NULL, NULL, 0) != 0) {
                t5_result_free(r);
                return;
            }
        }
        return;
    }
    r->seqs = calloc((size_t)q->rows, sizeof *r->seqs);
    if (!r->seqs) return;
    r->n_seqs = q->rows;
    for (int i = 0; i < q->rows; i++) {
        int fin = q->fin[i] ? q->fin[i] : q->error ? T5_FINISH_ERROR : T5_FINISH_CANCELLED;
        size_t k = (size_t)q->p.top_logprobs, at = (size_t)i * L * k;
        if (fill_seq(&r->seqs[i], q->tok + (size_t)i * L, q->lpr + (size_t)i * L, q->len[i], q->sum[i], fin,
                     want, q->top_id ? q->top_id + at : NULL, q->top_lp ? q->top_lp + at : NULL,
                     (int)k) != 0) {
            t5_result_free(r);
            return;
        }
    }
    if (q->rows > 1) qsort(r->seqs, (size_t)q->rows, sizeof *r->seqs, cmp_seq_score);
}

void t5_result_free(t5_result *r) {
    if (!r) return;
    for (int i = 0; r->seqs && i < r->n_seqs; i++) {
        free(r->seqs[i].ids);
        free(r->seqs[i].logprobs);
        free(r->seqs[i].top_ids);
        free(r->seqs[i].top_logprobs);
    }
    free(r->seqs);
    r->seqs = NULL;
    r->n_seqs = 0;
}

/* The k largest of raw[V] (best first, the lower id first among equals) as ids and
 * log-probabilities raw - norm. */
static void record_top(const float *raw, int V, float norm, int k, int32_t *id, float *lp) {
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (n == k && !(raw[v] > raw[id[n - 1]])) continue;
        int i = n < k ? n++ : n - 1;
        while (i > 0 && raw[v] > raw[id[i - 1]]) {
            id[i] = id[i - 1];
            i--;
        }
        id[i] = v;
    }
    for (int i = 0; i < n; i++)
        lp[i] = (raw[id[i]] - norm);
}

/* Chooses the next token of non-beam row r from its logits x[V] (overwritten) and
 * records it with its model log-probability; tmp[3V] scratch. It touches only row r's state,
 * so the rows of a step are chosen on the pool's threads at once. */
static void choose_row(const t5_model *m, seq *q, int r, float *x, float *tmp) {
    int V = m->cfg.vocab_size, L = q->max_len;
    int32_t *t = q->tok + (size_t)r * L;
    int len = q->len[r];
    /* the raw logits, kept for the log-probability whatever the processors and warpers
     * do to x (they use tmp + V) */
    float *raw = tmp;
    memcpy(raw, x, (size_t)V * sizeof *raw);
    float mx = t5_max(m->isa, raw, V), ls = logf(t5_sum_exp(m->isa, raw, V, mx));
    t5_logits_process(&q->p, x, V, t, len);
    int32_t tok;
    if (q->p.do_sample) {
        t5_logits_warp(&q->p, x, V, tmp + V, 1);
        tok = t5_sample(x, V, &q->rng[r], tmp + V);
    } else
        tok = t5_argmax(m->isa, x, V);
    /* log_softmax of the raw logits at tok, as torch computes it */
    float lp = (raw[tok] - mx) - ls;
    if (q->top_id)
        record_top(raw, V, mx + ls, q->p.top_logprobs, q->top_id + ((size_t)r * L + len) * q->p.top_logprobs,
                   q->top_lp + ((size_t)r * L + len) * q->p.top_logprobs);
    t[len] = tok;
    q->lpr[(size_t)r * L + len] = lp;
    q->sum[r] += lp;
    q->len[r] = len + 1;
}

/* The tokens of picks[0..n) from the step's logits [rows, V], an item per pick; thread ith's
 * scratch at tmp + ith * 3V. */
typedef struct {
    const t5_batch *b;
    int n;
    float *logits;
} choose_job;

static void choose_worker(void *arg, int ith, int nth) {
    const choose_job *jb = arg;
    const t5_batch *b = jb->b;
    size_t V = (size_t)b->m->cfg.vocab_size;
    (void)nth;
    for (int i; (i = t5_pool_next(b->pool)) < jb->n;) {
        const struct pick *pk = &b->picks[i];
        choose_row(b->m, pk->q, pk->r, jb->logits + (size_t)pk->at * V, b->tmp + (size_t)ith * 3 * V);
    }
}

/* Removes sequence i from the batch and hands its result to on_done. */
static void retire(t5_batch *b, int i) {
    seq *q = b->seqs[i];
    memmove(b->seqs + i, b->seqs + i + 1, (size_t)(b->n_seqs - i - 1) * sizeof *b->seqs);
    b->n_seqs--;
    b->used_rows -= q->rows;
    if (q->embed) { /* delivered at its encoder pass, unless cancelled or out of memory there */
        t5_hidden_fn hid = q->delivered ? NULL : q->on_hidden;
        void *user = q->user;
        seq_free(b->m, q);
        if (hid) hid(user, NULL, 0);
        return;
    }
    t5_result res;
    build_result(q, &res);
    t5_done_fn done = q->on_done;
    void *user = q->user;
    seq_free(b->m, q);
    if (done)
        done(user, &res);
    else
        t5_result_free(&res);
}

/* Runs the encoder of every sequence admitted since the last step, in groups of up to
 * ENC_GROUP_TOKENS tokens (an input longer than that alone): one encoder pass and one
 * cross K/V pass per group, so each weight matrix is streamed once for the group. The
 * bound keeps the group's activations (~18 kB per token at the T5 PEGASUS small shape)
 * under glibc's largest mmap threshold, so the heap reuses them. A group that runs out
 * of memory ends its sequences with T5_FINISH_ERROR; the others go on. */
enum { ENC_GROUP_TOKENS = 1024 };
static void encode_pending(t5_batch *b) {
    const t5_model *m = b->m;
    int pending = 0;
    for (int i = 0; i < b->n_seqs; i++)
        pending += b->seqs[i]->ids && !b->seqs[i]->cancel;
    if (!pending) return;
    seq **grp = malloc((size_t)b->n_seqs * sizeof *grp);
    int *lens = malloc((size_t)b->n_seqs * sizeof *lens);
    t5_cross_kv **cr = malloc((size_t)b->n_seqs * sizeof *cr);
    for (int i = 0; i < b->n_seqs;) {
        int cnt = 0, tokens = 0;
        for (; i < b->n_seqs; i++) {
            seq *q = b->seqs[i];
            if (!q->ids || q->cancel) continue;
            if (!grp || !lens || !cr) { /* no room even to group them */
                q->error = q->cancel = 1;
                continue;
            }
            if (cnt > 0 && tokens + q->input_tokens > ENC_GROUP_TOKENS) break;
            grp[cnt] = q, lens[cnt] = q->input_tokens, cr[cnt++] = &q->cross;
            tokens += q->input_tokens;
        }
        if (cnt == 0) break;
        /* generation inputs first (stable): their rows of enc feed the cross K/V pass */
        int ng = 0;
        for (int g = 0; g < cnt; g++)
            if (!grp[g]->embed) {
                seq *t = grp[g];
                memmove(grp + ng + 1, grp + ng, (size_t)(g - ng) * sizeof *grp);
                grp[ng++] = t;
            }
        for (int g = 0; g < cnt; g++)
            lens[g] = grp[g]->input_tokens, cr[g] = &grp[g]->cross;
        int32_t *ids = malloc((size_t)tokens * sizeof *ids);
        float *enc = malloc((size_t)tokens * m->cfg.d_model * sizeof *enc);
        for (int g = 0, off = 0; ids && g < cnt; off += lens[g++])
            memcpy(ids + off, grp[g]->ids, (size_t)lens[g] * sizeof *ids);
        int enc_ok = ids && enc && t5_encoder_forward_with(m, b->pool, b->es, ids, lens, cnt, enc) == 0;
        int cross_ok = enc_ok && (ng == 0 || t5_cross_compute(m, b->pool, enc, lens, ng, cr) == 0);
        for (int g = 0, off = 0; g < cnt; off += lens[g++]) {
            seq *q = grp[g];
            free(q->ids);
            q->ids = NULL;
            if (!(q->embed ? enc_ok : cross_ok))
                q->error = q->cancel = 1;
            else if (q->embed) {
                q->delivered = 1;
                if (q->on_hidden) q->on_hidden(q->user, enc + (size_t)off * m->cfg.d_model, lens[g]);
            }
        }
        free(ids), free(enc);
    }
    free(grp), free(lens), free(cr);
}

int t5_batch_step(t5_batch *b) {
    const t5_model *m = b->m;
    int V = m->cfg.vocab_size, rows = 0;
    encode_pending(b);
    /* gather the running rows of every sequence, in admission order */
    int n_picks = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        seq *q = b->seqs[i];
        if (q->cancel) continue;
        for (int r = 0; r < q->rows; r++) {
            if (!q->beam && q->fin[r]) continue;
            if (!q->beam) b->picks[n_picks++] = (struct pick){q, r, rows};
            b->tokens[rows] = q->beam ? q->bs.tok[(size_t)r * q->max_len + q->bs.cur_len - 1]
                                      : q->tok[(size_t)r * q->max_len + q->len[r] - 1];
            b->kvp[rows] = &q->kv[r];
            b->crp[rows++] = &q->cross;
        }
    }
    float *logits = NULL;
    if (rows > 0 && !(logits = t5_decoder_step(m, b->pool, b->s, rows, b->tokens, b->kvp, b->crp)))
        return T5_ERR_NOMEM;
    /* every non-beam row's token (on the pool: the rows are independent), then, in admission
     * order, the beams' steps and each sequence's callbacks and finish */
    choose_job cj = {b, n_picks, logits};
    if (n_picks > 1)
        t5_pool_run(b->pool, choose_worker, &cj);
    else if (n_picks == 1)
        choose_row(m, b->picks[0].q, b->picks[0].r, logits + (size_t)b->picks[0].at * V, b->tmp);
    int off = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        seq *q = b->seqs[i];
        if (q->cancel) {
            q->done = 1;
            continue;
        }
        if (q->beam) {
            int more = t5_beam_step(&q->bs, &q->p, logits + (size_t)off * V, &q->rng_beam, &b->beam);
            for (int r = 0; r < q->rows; r++)
                t5_kv_copy(m, &q->kv2[r], &q->kv[q->bs.parent[r]]);
            t5_kv *tmp = q->kv;
            q->kv = q->kv2, q->kv2 = tmp;
            off += q->rows;
            q->done = !more;
            continue;
        }
        int running = 0;
        for (int r = 0; r < q->rows; r++) {
            if (q->fin[r]) continue;
            off++;
            int len = q->len[r];
            int32_t tok = q->tok[(size_t)r * q->max_len + len - 1];
            if (q->rows == 1 && q->on_token &&
                q->on_token(q->user, tok, q->lpr[(size_t)r * q->max_len + len - 1]) != 0)
                q->fin[r] = T5_FINISH_STOP;
            else if (tok == q->p.eos_token_id)
                q->fin[r] = T5_FINISH_EOS;
            else if (len >= q->max_len)
                q->fin[r] = T5_FINISH_LENGTH;
            running += !q->fin[r];
        }
        q->done = running == 0;
    }
    for (int i = 0; i < b->n_seqs;)
        if (b->seqs[i]->done)
            retire(b, i);
        else
            i++;
    return b->n_seqs;
}

typedef struct {
    t5_result *out;
    int got;
} gen_sink;

static void gen_done(void *user, t5_result *r) {
    gen_sink *g = user;
    *g->out = *r;
    g->got = 1;
}

int t5_generate(const t5_model *m, const int32_t *ids, int n, const t5_gen_params *p, int n_threads,
                t5_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    t5_gen_params def;
    if (!p) t5_gen_default_params(&def), p = &def;
    int rc = t5_gen_check(m, p, err, errlen);
    if (rc != T5_OK) return rc;
    t5_batch *b =
        t5_batch_create(m, p->num_beams > 1 ? p->num_beams : p->num_return_sequences, n_threads, err, errlen);
    if (!b) return T5_ERR_NOMEM;
    gen_sink g = {out, 0};
    if ((rc = t5_batch_add(b, ids, n, p, NULL, gen_done, &g, err, errlen)) < 0) {
        t5_batch_free(b);
        return rc;
    }
    while ((rc = t5_batch_step(b)) > 0) {
    }
    t5_batch_free(b);
    if (rc < 0 || !g.got || !out->seqs || out->seqs[0].finish == T5_FINISH_ERROR) {
        t5_result_free(out);
        snprintf(err, errlen, "out of memory during generation");
        return T5_ERR_NOMEM;
    }
    return T5_OK;
}
