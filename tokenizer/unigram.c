/* unigram.c - the Unigram model of SentencePiece 0.1.97 (unigram_model.cc), bit-exact:
 *   - unigram_viterbi: the default "optimized" encoder (no stored lattice; candidates
 *     computed in double and compared with the stored float best, as SentencePiece's
 *     `const auto` arithmetic does; UNK candidates in float);
 *   - unigram_nbest: the float32 lattice, its Viterbi, then A* with a max-heap that
 *     reproduces libstdc++'s std::priority_queue (push_heap/pop_heap) order on ties;
 *   - sampling: forward-filtering backward-sampling on the lattice, one-pass Viterbi
 *     sampling inside the trie scan with no lattice (forward sums of path weights with a
 *     reservoir choice of each position's predecessor: the same distribution), and
 *     sampling among the n best; alpha 0 is uniform over the segmentations (the n best);
 *     seeds are hashed before use (uni_rng_init).
 * Works on normalized text; normalization, UNK merging and byte fallback live in
 * normalizer.c and tok.c. Immutable after unigram_create: safe for concurrent readers. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define UNK_PENALTY 10.0f
#define MAX_AGENDA 10000 /* 0.1.97: kMaxAgendaSize */
#define MIN_AGENDA 512

struct unigram {
    int32_t n;
    uint8_t *types; /* [n] */
    float *score;   /* [n] piece score as stored */
    double *vscore; /* [n] score used by the optimized Viterbi (double) */
    float *lscore;  /* [n] score of a lattice node (float) */
    float min_score, max_score;
    int32_t unk_id;
    trie t; /* NORMAL, USER_DEFINED and UNUSED pieces -> id */
};

/* SentencePiece's OneCharLen: the length of a UTF-8 sequence from its first byte. */
static inline int one_char_len(uint8_t c) {
    return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4];
}

/* The length of the character at s[i], cut at len (a truncated sequence ends the text). */
static inline size_t char_len_at(const uint8_t *s, size_t i, size_t len) {
    size_t m = (size_t)one_char_len(s[i]);
    return m < len - i ? m : len - i;
}

unigram *unigram_create(const spm_spec *s, char *err, size_t errlen) {
    unigram *u = calloc(1, sizeof *u);
    if (!u) goto nomem;
    u->n = s->n;
    u->types = malloc((size_t)s->n);
    u->score = malloc((size_t)s->n * sizeof *u->score);
    u->vscore = malloc((size_t)s->n * sizeof *u->vscore);
    u->lscore = malloc((size_t)s->n * sizeof *u->lscore);
    if (!u->types || !u->score || !u->vscore || !u->lscore) goto nomem;
    memcpy(u->types, s->type, (size_t)s->n);
    memcpy(u->score, s->score, (size_t)s->n * sizeof *u->score);
    u->unk_id = -1;
    float mn = FLT_MAX, mx = FLT_MIN;
    for (int32_t i = 0; i < s->n; i++) {
        if (s->type[i] == SPM_NORMAL) {
            mn = s->score[i] < mn ? s->score[i] : mn;
            mx = s->score[i] > mx ? s->score[i] : mx;
        }
        if (s->type[i] == SPM_UNKNOWN) {
            if (u->unk_id >= 0) {
                snprintf(err, errlen, "bad SentencePiece model: two unknown pieces");
                unigram_free(u);
                return NULL;
            }
            u->unk_id = i;
        }
        if (s->type[i] == SPM_BYTE && !s->byte_fallback) {
            snprintf(err, errlen, "bad SentencePiece model: byte pieces without byte_fallback");
            unigram_free(u);
            return NULL;
        }
    }
    if (u->unk_id < 0) {
        snprintf(err, errlen, "bad SentencePiece model: no unknown piece");
        unigram_free(u);
        return NULL;
    }
    if (mn == FLT_MAX) mn = 0;
    if (mx == FLT_MIN) mx = 0;
    u->min_score = mn;
    u->max_score = mx;
    int32_t nt = 0;
    char **keys = malloc((size_t)s->n * sizeof *keys);
    uint32_t *lens = malloc((size_t)s->n * sizeof *lens);
    int32_t *vals = malloc((size_t)s->n * sizeof *vals);
    if (!keys || !lens || !vals) {
        free(keys), free(lens), free(vals);
        goto nomem;
    }
    for (int32_t i = 0; i < s->n; i++) {
        uint8_t ty = s->type[i];
        size_t bytes = s->piece_len[i];
        int chars = 0;
        for (size_t k = 0; k < bytes; chars++)
            k += (size_t)one_char_len((uint8_t)s->piece[i][k]);
        if (ty == SPM_USER_DEFINED) {
            /* optimized encoder: size_t length * float max_score - 0.1 (double) */
            u->vscore[i] = (double)((float)bytes * mx) - 0.1;
            /* lattice: int length (characters) * float max_score - 0.1, stored as float */
            u->lscore[i] = (float)((double)((float)chars * mx) - 0.1);
        } else {
            u->vscore[i] = (double)s->score[i];
            u->lscore[i] = s->score[i];
        }
        if (ty == SPM_NORMAL || ty == SPM_USER_DEFINED || ty == SPM_UNUSED) {
            keys[nt] = s->piece[i];
            lens[nt] = s->piece_len[i];
            vals[nt++] = i;
        }
    }
    int rc = nt > 0 ? trie_build(&u->t, keys, lens, vals, nt) : -2;
    free(keys), free(lens), free(vals);
    if (rc == -2) {
        snprintf(err, errlen, "bad SentencePiece model: no normal pieces");
        unigram_free(u);
        return NULL;
    }
    if (rc) goto nomem;
    return u;
nomem:
    unigram_free(u);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void unigram_free(unigram *u) {
    if (!u) return;
    free(u->types);
    free(u->score);
    free(u->vscore);
    free(u->lscore);
    trie_free(&u->t);
    free(u);
}

void uni_path_free(uni_path *p) {
    free(p->p);
    memset(p, 0, sizeof *p);
}

static int path_push(uni_path *p, int32_t id, int32_t b, int32_t e) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        uni_piece *np = realloc(p->p, cap * sizeof *np);
        if (!np) return TOK_ERR_NOMEM;
        p->p = np;
        p->cap = cap;
    }
    p->p[p->n++] = (uni_piece){id, b, e};
    return 0;
}

static void path_reverse(uni_path *p) {
    for (size_t i = 0, j = p->n ? p->n - 1 : 0; i < j; i++, j--) {
        uni_piece t = p->p[i];
        p->p[i] = p->p[j];
        p->p[j] = t;
    }
}

/* ------------------------------------------------------------------ Viterbi */

typedef struct {
    float score;
    int32_t start, id;
} best_node;

int unigram_viterbi(const unigram *u, const char *s, size_t len, uni_path *out) {
    out->n = 0;
    if (len == 0) return 0;
    best_node stack_buf[256];
    best_node *best = len < 256 ? stack_buf : malloc((len + 1) * sizeof *best);
    if (!best) return TOK_ERR_NOMEM;
    for (size_t i = 0; i <= len; i++)
        best[i] = (best_node){0, -1, -1};
    const float unk_score = u->min_score - UNK_PENALTY;
    const trie_node *tn = u->t.node;
    const int32_t tsize = u->t.size;
    const uint8_t *us = (const uint8_t *)s;
    size_t start = 0;
    while (start < len) {
        const float till_here = best[start].score;
        size_t mblen = char_len_at(us, start, len);
        int has_single = 0;
        int32_t cur = 0;
        for (size_t k = start; k < len; k++) {
            int32_t nx = tn[cur].base + us[k];
            if (nx >= tsize || tn[nx].check != cur) break;
            cur = nx;
            int32_t id = tn[cur].value;
            if (id < 0 || u->types[id] == SPM_UNUSED) continue;
            best_node *t = &best[k + 1];
            double cand = u->vscore[id] + (double)till_here;
            if (t->start == -1 || cand > (double)t->score) {
                t->score = (float)cand;
                t->start = (int32_t)start;
                t->id = id;
            }
            if (!has_single && k + 1 - start == mblen) has_single = 1;
        }
        if (!has_single) {
            best_node *t = &best[start + mblen];
            float cand = unk_score + till_here;
            if (t->start == -1 || cand > t->score) {
                t->score = cand;
                t->start = (int32_t)start;
                t->id = u->unk_id;
            }
        }
        start += mblen;
    }
    int rc = 0;
    for (size_t e = len; e > 0;) {
        const best_node *b = &best[e];
        if ((rc = path_push(out, b->id, b->start, (int32_t)e))) break;
        e = (size_t)b->start;
    }
    path_reverse(out);
    if (best != stack_buf) free(best);
    return rc;
}

/* ------------------------------------------------------------------ lattice */

typedef struct {
    int32_t pos, len; /* in characters */
    int32_t id;
    float score, bt; /* node score, Viterbi backtrace score */
    int32_t prev;
} lnode;

typedef struct {
    int32_t nchars;
    int32_t *cpos; /* [nchars + 1] byte offset of every character */
    lnode *node;   /* [nn]: 0 = BOS, 1 = EOS, then in insertion order */
    int32_t nn, ncap;
    int32_t *bstart; /* [nchars + 2] begin lists: nodes bstart[p] .. bstart[p+1]-1 */
    int32_t *blist;
    int32_t *estart; /* [nchars + 2] end lists (insertion order) */
    int32_t *elist;
} lattice;

static void lat_free(lattice *l) {
    free(l->cpos);
    free(l->node);
    free(l->bstart);
    free(l->blist);
    free(l->estart);
    free(l->elist);
}

static int lat_add(lattice *l, int32_t pos, int32_t len, int32_t id, float score) {
    if (l->nn == l->ncap) {
        int32_t cap = l->ncap ? l->ncap * 2 : 256;
        lnode *n = realloc(l->node, (size_t)cap * sizeof *n);
        if (!n) return TOK_ERR_NOMEM;
        l->node = n;
        l->ncap = cap;
    }
    l->node[l->nn++] = (lnode){pos, len, id, score, 0, -1};
    return 0;
}

/* SetSentence + PopulateNodes */
static int lat_build(const unigram *u, const char *s, size_t len, lattice *l) {
    memset(l, 0, sizeof *l);
    const uint8_t *us = (const uint8_t *)s;
    l->cpos = malloc((len + 2) * sizeof *l->cpos);
    int32_t *char_at = malloc((len + 2) * sizeof *char_at); /* byte offset -> char index */
    if (!l->cpos || !char_at) {
        free(char_at);
        return TOK_ERR_NOMEM;
    }
    int32_t nc = 0;
    for (size_t i = 0; i < len;) {
        size_t m = char_len_at(us, i, len);
        for (size_t k = 0; k < m; k++)
            char_at[i + k] = -1;
        char_at[i] = nc;
        l->cpos[nc++] = (int32_t)i;
        i += m;
    }
    l->cpos[nc] = (int32_t)len;
    char_at[len] = nc;
    l->nchars = nc;
    int rc = lat_add(l, 0, 0, -1, 0);
    if (!rc) rc = lat_add(l, nc, 0, -1, 0);
    l->node[1].pos = nc;
    const float unk_score = u->min_score - UNK_PENALTY;
    for (int32_t p = 0; p < nc && !rc; p++) {
        size_t b = (size_t)l->cpos[p];
        int has_single = 0;
        int32_t cur = 0;
        for (size_t k = b; k < len; k++) {
            int32_t nx = u->t.node[cur].base + us[k];
            if (nx >= u->t.size || u->t.node[nx].check != cur) break;
            cur = nx;
            int32_t id = u->t.node[cur].value;
            if (id < 0) continue;
            /* Darts returns every key that is a prefix; its char length counts surfaces */
            int32_t endc = char_at[k + 1];
            if (endc < 0) { /* piece ends inside a character: round up as SentencePiece does */
                size_t e = k + 1;
                while (char_at[e] < 0)
                    e++;
                endc = char_at[e];
            }
            if (u->types[id] == SPM_UNUSED) continue;
            int32_t clen = endc - p;
            if ((rc = lat_add(l, p, clen, id, u->lscore[id]))) break;
            if (clen == 1) has_single = 1;
        }
        if (!rc && !has_single) rc = lat_add(l, p, 1, u->unk_id, unk_score);
    }
    free(char_at);
    if (rc) return rc;
    /* begin and end lists (CSR, insertion order within each position) */
    int32_t nn = l->nn;
    l->bstart = calloc((size_t)nc + 2, sizeof *l->bstart);
    l->estart = calloc((size_t)nc + 2, sizeof *l->estart);
    l->blist = malloc((size_t)nn * sizeof *l->blist);
    l->elist = malloc((size_t)nn * sizeof *l->elist);
    if (!l->bstart || !l->estart || !l->blist || !l->elist) return TOK_ERR_NOMEM;
    for (int32_t i = 0; i < nn; i++) {
        if (i != 0) l->bstart[l->node[i].pos + 1]++;                  /* BOS begins nowhere */
        if (i != 1) l->estart[l->node[i].pos + l->node[i].len + 1]++; /* EOS ends nowhere */
    }
    for (int32_t p = 0; p <= nc; p++) {
        l->bstart[p + 1] += l->bstart[p];
        l->estart[p + 1] += l->estart[p];
    }
    int32_t *bf = malloc(((size_t)nc + 1) * sizeof *bf), *ef = malloc(((size_t)nc + 1) * sizeof *ef);
    if (!bf || !ef) {
        free(bf), free(ef);
        return TOK_ERR_NOMEM;
    }
    memcpy(bf, l->bstart, ((size_t)nc + 1) * sizeof *bf);
    memcpy(ef, l->estart, ((size_t)nc + 1) * sizeof *ef);
    /* BOS first in end list 0 and EOS first in begin list nc, as SentencePiece */
    l->elist[ef[0]++] = 0;
    for (int32_t i = 1; i < nn; i++) {
        l->blist[bf[l->node[i].pos]++] = i;
        if (i != 1) l->elist[ef[l->node[i].pos + l->node[i].len]++] = i;
    }
    free(bf), free(ef);
    return 0;
}

/* Lattice::Viterbi in float: fills bt and prev. */
static void lat_viterbi(lattice *l) {
    for (int32_t p = 0; p <= l->nchars; p++) {
        for (int32_t bi = l->bstart[p]; bi < l->bstart[p + 1]; bi++) {
            lnode *r = &l->node[l->blist[bi]];
            float best = 0;
            int32_t bn = -1;
            for (int32_t ei = l->estart[p]; ei < l->estart[p + 1]; ei++) {
                const lnode *ln = &l->node[l->elist[ei]];
                float sc = ln->bt + r->score;
                if (bn < 0 || sc > best) {
                    bn = l->elist[ei];
                    best = sc;
                }
            }
            r->prev = bn;
            r->bt = best;
        }
    }
}

static int lat_path(const lattice *l, const int32_t *nodes, size_t n, uni_path *out) {
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        const lnode *x = &l->node[nodes[i]];
        int rc = path_push(out, x->id, l->cpos[x->pos], l->cpos[x->pos + x->len]);
        if (rc) return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ n-best (A*) */

typedef struct {
    int32_t node, next;
    float fx, gx;
} hyp;

typedef struct {
    hyp *h;
    int32_t nh, hcap;
    int32_t *heap; /* indices into h, a max-heap on fx as libstdc++ keeps it */
    int32_t n, cap;
} agenda;

static int hyp_new(agenda *a, int32_t node, int32_t next, float fx, float gx) {
    if (a->nh == a->hcap) {
        int32_t cap = a->hcap ? a->hcap * 2 : 512;
        hyp *h = realloc(a->h, (size_t)cap * sizeof *h);
        if (!h) return -1;
        a->h = h;
        a->hcap = cap;
    }
    a->h[a->nh] = (hyp){node, next, fx, gx};
    return a->nh++;
}

/* std::push_heap(first, last, comp) with comp(x, y) = x.fx < y.fx */
static int heap_push(agenda *a, int32_t v) {
    if (a->n == a->cap) {
        int32_t cap = a->cap ? a->cap * 2 : 512;
        int32_t *h = realloc(a->heap, (size_t)cap * sizeof *h);
        if (!h) return -1;
        a->heap = h;
        a->cap = cap;
    }
    int32_t hole = a->n++;
    float fv = a->h[v].fx;
    while (hole > 0) {
        int32_t parent = (hole - 1) / 2;
        if (!(a->h[a->heap[parent]].fx < fv)) break;
        a->heap[hole] = a->heap[parent];
        hole = parent;
    }
    a->heap[hole] = v;
    return 0;
}

/* std::pop_heap + pop_back: libstdc++'s __adjust_heap then __push_heap */
static int32_t heap_pop(agenda *a) {
    int32_t *h = a->heap;
    int32_t top = h[0];
    int32_t len = a->n - 1;
    int32_t value = h[len];
    a->n = len;
    if (len == 0) return top;
    int32_t hole = 0, child = 0;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (a->h[h[child]].fx < a->h[h[child - 1]].fx) child--;
        h[hole] = h[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        h[hole] = h[child - 1];
        hole = child - 1;
    }
    float fv = a->h[value].fx;
    while (hole > 0) {
        int32_t parent = (hole - 1) / 2;
        if (!(a->h[h[parent]].fx < fv)) break;
        h[hole] = h[parent];
        hole = parent;
    }
    h[hole] = value;
    return top;
}

int unigram_nbest(const unigram *u, const char *s, size_t len, int nbest, uni_path **paths, float **scores,
                  size_t *n_out) {
    *paths = NULL;
    *scores = NULL;
    *n_out = 0;
    if (nbest < 1) nbest = 1;
    if (nbest > 1024) nbest = 1024;
    if (len == 0) { /* SentencePiece: one empty result */
        *paths = calloc(1, sizeof **paths);
        *scores = calloc(1, sizeof **scores);
        if (!*paths || !*scores) {
            free(*paths), free(*scores);
            *paths = NULL, *scores = NULL;
            return TOK_ERR_NOMEM;
        }
        *n_out = 1;
        return 0;
    }
    lattice l;
    int rc = lat_build(u, s, len, &l);
    agenda a = {0};
    uni_path *res = calloc((size_t)nbest, sizeof *res);
    float *sc = calloc((size_t)nbest, sizeof *sc);
    int32_t *tmp = malloc(((size_t)l.nchars + 2) * sizeof *tmp);
    size_t nres = 0;
    if (rc || !res || !sc || !tmp) {
        rc = TOK_ERR_NOMEM;
        goto out;
    }
    lat_viterbi(&l);
    rc = TOK_ERR_NOMEM;
    int32_t e = hyp_new(&a, 1, -1, l.node[1].bt, 0);
    if (e < 0 || heap_push(&a, e)) goto out;
    while (a.n > 0) {
        int32_t top = heap_pop(&a);
        hyp th = a.h[top];
        if (th.node == 0) { /* reached BOS */
            size_t k = 0;
            for (int32_t x = th.next; a.h[x].next != -1; x = a.h[x].next)
                tmp[k++] = a.h[x].node;
            if (lat_path(&l, tmp, k, &res[nres])) goto out;
            sc[nres++] = th.gx;
            if (nres == (size_t)nbest) break;
            continue;
        }
        int32_t p = l.node[th.node].pos;
        for (int32_t ei = l.estart[p]; ei < l.estart[p + 1]; ei++) {
            int32_t ln = l.elist[ei];
            int32_t h = hyp_new(&a, ln, top, l.node[ln].bt + th.gx, l.node[ln].score + th.gx);
            if (h < 0 || heap_push(&a, h)) goto out;
        }
        if (a.n >= MAX_AGENDA) { /* SentencePiece keeps the best min(512, 10 * nbest) */
            int32_t keep = nbest * 10 < MIN_AGENDA ? nbest * 10 : MIN_AGENDA;
            int32_t *kept = malloc((size_t)keep * sizeof *kept);
            if (!kept) goto out;
            for (int32_t i = 0; i < keep; i++)
                kept[i] = heap_pop(&a);
            a.n = 0;
            for (int32_t i = 0; i < keep; i++)
                heap_push(&a, kept[i]);
            free(kept);
        }
    }
    rc = 0;
out:
    if (rc) {
        for (size_t i = 0; i < nres; i++)
            uni_path_free(&res[i]);
        free(res), free(sc);
        nres = 0;
        res = NULL, sc = NULL;
    } else {
        for (size_t i = nres; i < (size_t)nbest; i++)
            uni_path_free(&res[i]);
    }
    free(tmp);
    free(a.h);
    free(a.heap);
    lat_free(&l);
    *paths = res;
    *scores = sc;
    *n_out = nres;
    return rc;
}

/* ------------------------------------------------------------------ sampling */

uint64_t uni_rng_init(uint64_t seed) {
    /* MurmurHash3's fmix64: a bijection, so distinct seeds give distinct, unrelated start
     * states (a raw seed would be splitmix64's own state: seed + k * increment would replay
     * seed's stream shifted by k draws) */
    seed ^= seed >> 33;
    seed *= 0xFF51AFD7ED558CCDull;
    seed ^= seed >> 33;
    seed *= 0xC4CEB9FE1A85EC53ull;
    return seed ^ (seed >> 33);
}

double uni_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static double lse(double x, double y) {
    if (x == -INFINITY) return y;
    if (y == -INFINITY) return x;
    double m = x > y ? x : y;
    return m + log1p(exp(-fabs(x - y)));
}

/* One-pass Viterbi sampling inside the forward trie scan, with no lattice (as
 * unigram_viterbi). Each byte position e accumulates the total weight of the paths to it,
 * exp(ref) * acc (acc in linear scale from the first edge's log-weight ref, rescaled
 * when a heavier edge comes: one exp per edge, one log per position), and keeps one
 * incoming edge, replaced by the k-th edge seen with probability w_k / (w_1 + .. + w_k) (a
 * reservoir over the edges in order of their start): each edge stays with probability
 * w / total, so the backtrace draws a path with probability exp(alpha * score) / Z.
 * The edges are the lattice's (lat_build): a piece ending inside a character ends at
 * that character's end; an unknown piece covers one character that no piece covers alone. */
typedef struct {
    double ref, acc; /* log of the paths' total weight: ref + log(acc) */
    int32_t start, id;
} sample_node;

static inline void sample_edge(sample_node *nd, size_t e, size_t start, int32_t id, double lw,
                               uint64_t *rng) {
    sample_node *n = &nd[e];
    if (n->start < 0) {
        *n = (sample_node){lw, 1, (int32_t)start, id};
        return;
    }
    if (lw > n->ref + 600) { /* keep acc well inside the double range */
        n->acc *= exp(n->ref - lw);
        n->ref = lw;
    }
    double w = exp(lw - n->ref);
    n->acc += w;
    if (uni_rand(rng) * n->acc < w) n->start = (int32_t)start, n->id = id;
}

static int sample_one_pass(const unigram *u, const char *s, size_t len, float alpha, uint64_t *rng,
                           uni_path *out) {
    sample_node stack_buf[256];
    sample_node *nd = len < 256 ? stack_buf : malloc((len + 1) * sizeof *nd);
    if (!nd) return TOK_ERR_NOMEM;
    for (size_t i = 0; i <= len; i++)
        nd[i].start = -1;
    nd[0] = (sample_node){0, 1, 0, -1};
    const double unk_w = (double)alpha * (u->min_score - UNK_PENALTY);
    const trie_node *tn = u->t.node;
    const int32_t tsize = u->t.size;
    const uint8_t *us = (const uint8_t *)s;
    for (size_t start = 0; start < len;) {
        const double base = nd[start].ref + log(nd[start].acc);
        size_t mblen = char_len_at(us, start, len);
        size_t cb = start + mblen; /* the first character boundary >= k + 1 */
        int has_single = 0;
        int32_t cur = 0;
        for (size_t k = start; k < len; k++) {
            int32_t nx = tn[cur].base + us[k];
            if (nx >= tsize || tn[nx].check != cur) break;
            cur = nx;
            if (k + 1 > cb) cb += char_len_at(us, cb, len);
            int32_t id = tn[cur].value;
            if (id < 0 || u->types[id] == SPM_UNUSED) continue;
            has_single |= cb == start + mblen;
            sample_edge(nd, cb, start, id, base + (double)alpha * u->lscore[id], rng);
        }
        if (!has_single) sample_edge(nd, start + mblen, start, u->unk_id, base + unk_w, rng);
        start += mblen;
    }
    int rc = 0;
    for (size_t e = len; e > 0 && !rc; e = (size_t)nd[e].start)
        rc = path_push(out, nd[e].id, nd[e].start, (int32_t)e);
    path_reverse(out);
    if (nd != stack_buf) free(nd);
    return rc;
}

/* method 1: sample_one_pass; 0: forward-filtering backward-sampling on the lattice
 * (SentencePiece's Lattice::Sample). */
int unigram_sample(const unigram *u, const char *s, size_t len, float alpha, int method, uint64_t *rng,
                   uni_path *out) {
    out->n = 0;
    if (len == 0) return 0;
    if (method == 1) return sample_one_pass(u, s, len, alpha, rng, out);
    lattice l;
    int rc = lat_build(u, s, len, &l);
    int32_t nc = l.nchars;
    double *A = malloc(((size_t)nc + 1) * sizeof *A); /* log-sum of all paths to a position */
    int32_t *nodes = malloc(((size_t)nc + 1) * sizeof *nodes);
    if (rc || !A || !nodes) {
        rc = TOK_ERR_NOMEM;
        goto out;
    }
    A[0] = 0;
    for (int32_t p = 1; p <= nc; p++) {
        double acc = -INFINITY;
        for (int32_t ei = l.estart[p]; ei < l.estart[p + 1]; ei++) {
            const lnode *x = &l.node[l.elist[ei]];
            acc = lse(acc, A[x->pos] + (double)alpha * x->score);
        }
        A[p] = acc;
    }
    size_t k = 0;
    for (int32_t p = nc; p > 0;) { /* predecessor in proportion to its forward weight */
        int32_t chosen = -1;
        double r = uni_rand(rng), c = 0;
        for (int32_t ei = l.estart[p]; ei < l.estart[p + 1]; ei++) {
            const lnode *x = &l.node[l.elist[ei]];
            c += exp(A[x->pos] + (double)alpha * x->score - A[p]);
            chosen = l.elist[ei];
            if (r < c) break;
        }
        nodes[k++] = chosen;
        p = l.node[chosen].pos;
    }
    for (size_t i = 0; i < k / 2; i++) {
        int32_t t = nodes[i];
        nodes[i] = nodes[k - 1 - i];
        nodes[k - 1 - i] = t;
    }
    rc = lat_path(&l, nodes, k, out);
out:
    free(A), free(nodes);
    lat_free(&l);
    return rc;
}

int unigram_sample_nbest(const unigram *u, const char *s, size_t len, int nbest, float alpha, uint64_t *rng,
                         uni_path *out) {
    uni_path *paths;
    float *sc;
    size_t n;
    out->n = 0;
    int rc = unigram_nbest(u, s, len, nbest, &paths, &sc, &n);
    if (rc) return rc;
    double mx = -INFINITY, tot = 0;
    for (size_t i = 0; i < n; i++)
        mx = (double)alpha * sc[i] > mx ? (double)alpha * sc[i] : mx;
    for (size_t i = 0; i < n; i++)
        tot += exp((double)alpha * sc[i] - mx);
    double r = uni_rand(rng) * tot, c = 0;
    size_t pick = n - 1;
    for (size_t i = 0; i < n; i++) {
        c += exp((double)alpha * sc[i] - mx);
        if (r < c) {
            pick = i;
            break;
        }
    }
    for (size_t i = 0; i < paths[pick].n && !rc; i++)
        rc = path_push(out, paths[pick].p[i].id, paths[pick].p[i].begin, paths[pick].p[i].end);
    for (size_t i = 0; i < n; i++)
        uni_path_free(&paths[i]);
    free(paths), free(sc);
    return rc;
}
