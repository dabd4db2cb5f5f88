/* trie.c - a byte-wise double-array trie (base/check arrays) from byte strings to
 * int32 values: the vocabulary trie of the Unigram encoder and the user-defined symbol
 * matcher of the normalizer. Built once at model load, then read-only (thread-safe).
 * Transition from node s on byte c: t = base[s] + c, valid when check[t] == s.
 * It is not SentencePiece's Darts format (normalizer.c reads that one itself). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

typedef struct {
    char *const *keys;
    const uint32_t *lens;
} sort_ctx;

static int key_cmp(const sort_ctx *c, int32_t a, int32_t b) {
    uint32_t la = c->lens[a], lb = c->lens[b];
    int r = memcmp(c->keys[a], c->keys[b], la < lb ? la : lb);
    if (r) return r;
    if (la != lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b; /* stable: the first duplicate wins */
}

/* merge sort of indices (qsort has no context argument in C11) */
static void sort_idx(const sort_ctx *c, int32_t *a, int32_t *tmp, int32_t n) {
    if (n < 2) return;
    int32_t h = n / 2;
    sort_idx(c, a, tmp, h);
    sort_idx(c, a + h, tmp, n - h);
    int32_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = key_cmp(c, a[i], a[j]) <= 0 ? a[i++] : a[j++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

static int grow(trie *t, int32_t need) {
    if (need <= t->size) return 0;
    int32_t cap = t->size ? t->size : 1024;
    while (cap < need)
        cap *= 2;
    trie_node *n = realloc(t->node, (size_t)cap * sizeof *n);
    if (!n) return -1;
    for (int32_t i = t->size; i < cap; i++)
        n[i] = (trie_node){0, -1, -1};
    t->node = n;
    t->size = cap;
    return 0;
}

typedef struct {
    int32_t s, lo, hi, depth;
} job;

int trie_build(trie *t, char *const *keys, const uint32_t *lens, const int32_t *values, int32_t n) {
    memset(t, 0, sizeof *t);
    int32_t *idx = malloc(((size_t)n + 1) * sizeof *idx), *tmp = malloc(((size_t)n + 1) * sizeof *tmp);
    job *stack = malloc(((size_t)n + 2) * sizeof *stack);
    int rc = -1;
    if (!idx || !tmp || !stack || grow(t, 1024)) goto out;
    for (int32_t i = 0; i < n; i++)
        idx[i] = i;
    sort_ctx c = {keys, lens};
    sort_idx(&c, idx, tmp, n);
    t->node[0].check = -2; /* root */
    int32_t sp = 0, next_free = 1, max_used = 0;
    stack[sp++] = (job){0, 0, n, 0};
    uint8_t labels[256];
    int32_t starts[257];
    while (sp > 0) {
        job j = stack[--sp];
        int32_t lo = j.lo;
        if (lo < j.hi && lens[idx[lo]] == (uint32_t)j.depth) {
            t->node[j.s].value = values[idx[lo]];
            while (lo < j.hi && lens[idx[lo]] == (uint32_t)j.depth)
                lo++; /* duplicates */
        }
        if (lo >= j.hi) continue;
        int nl = 0;
        for (int32_t k = lo; k < j.hi; k++) {
            uint8_t b = (uint8_t)keys[idx[k]][j.depth];
            if (nl == 0 || labels[nl - 1] != b) {
                labels[nl] = b;
                starts[nl++] = k;
            }
        }
        starts[nl] = j.hi;
        /* first base whose slots base+label are all free */
        int32_t pos = next_free, base, occupied = 0;
        for (;;) {
            if (grow(t, pos + 257)) goto out;
            if (t->node[pos].check == -1) {
                base = pos - labels[0];
                if (base >= 1) {
                    int ok = 1;
                    for (int k = 1; k < nl && ok; k++)
                        ok = t->node[base + labels[k]].check == -1;
                    if (ok) break;
                }
            } else {
                occupied++;
            }
            pos++;
        }
        /* as Darts does: when the scanned stretch is nearly full, start later next time */
        if (occupied >= 0.95 * (pos - next_free + 1)) next_free = pos;
        t->node[j.s].base = base;
        for (int k = 0; k < nl; k++) {
            int32_t ch = base + labels[k];
            t->node[ch].check = j.s;
            if (ch > max_used) max_used = ch;
        }
        while (next_free < t->size && t->node[next_free].check != -1)
            next_free++;
        if (next_free < 1) next_free = 1;
        for (int k = nl - 1; k >= 0; k--)
            stack[sp++] = (job){base + labels[k], starts[k], starts[k + 1], j.depth + 1};
    }
    if (grow(t, max_used + 258)) goto out;
    rc = 0;
out:
    free(idx);
    free(tmp);
    free(stack);
    if (rc) trie_free(t);
    return rc;
}

void trie_free(trie *t) {
    free(t->node);
    t->node = NULL;
    t->size = 0;
}

int32_t trie_find(const trie *t, const char *key, size_t len) {
    int32_t s = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t nx = t->node[s].base + (uint8_t)key[i];
        if (nx >= t->size || t->node[nx].check != s) return -1;
        s = nx;
    }
    return t->node[s].value;
}

size_t trie_longest_prefix(const trie *t, const char *s, size_t len, int32_t *value) {
    int32_t cur = 0;
    size_t best = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t nx = t->node[cur].base + (uint8_t)s[i];
        if (nx >= t->size || t->node[nx].check != cur) break;
        cur = nx;
        if (t->node[cur].value >= 0) {
            best = i + 1;
            *value = t->node[cur].value;
        }
    }
    return best;
}
