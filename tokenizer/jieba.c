/* jieba.c - jieba 0.42.1's accurate-mode segmentation without HMM, exactly as the Python
 * reference computes it (see tok_dev.h). The prefix dictionary is a trie over code points
 * whose edges live in one open-addressing hash table keyed by (parent node, code point),
 * so loading 349k words is a single pass with no sorting. What it is not: jieba's HMM for
 * unknown words, its other cut modes, or user dictionaries. */
#include "tok_dev.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "wp_unicode.h"

struct wp_jieba {
    /* edges, one 64-bit word each (one cache miss per probe): bit 63 set (0 = empty slot),
     * parent node << 42 | code point << 21 | child node; hence at most 2^21 - 1 nodes */
    uint64_t *slots; /* [cap] */
    size_t cap, nedges;
    /* nodes (0 = root = the empty prefix): every prefix of a dictionary word is a node */
    int64_t *freq;   /* [nnodes] the word's frequency, 0 for a prefix that is no word; freed after load */
    double *w;       /* [nnodes] log(freq) - log(total), as jieba's calc() computes it */
    uint8_t *isword; /* [nnodes] freq > 0: the node ends a DAG edge */
    size_t nnodes, node_cap;
    double fallback_w; /* log(1) - log(total): a character that starts no word */
    size_t nwords;
};

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

#define NODE_MAX ((1u << 21) - 1)
#define CHILD_MASK ((uint64_t)NODE_MAX)

/* The key part of a slot: 1 << 42 | parent << 21 | cp (a slot >> 21). */
static inline uint64_t edge_key(uint32_t parent, uint32_t cp) {
    return (uint64_t)1 << 42 | (uint64_t)parent << 21 | cp;
}

static inline size_t edge_slot(uint64_t key, size_t cap) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

/* The child of node parent by code point cp, or -1. */
static inline int64_t trie_child(const wp_jieba *j, uint32_t parent, uint32_t cp) {
    uint64_t key = edge_key(parent, cp);
    for (size_t s = edge_slot(key, j->cap);; s = (s + 1) & (j->cap - 1)) {
        uint64_t v = j->slots[s];
        if ((v >> 21) == key) return (int64_t)(v & CHILD_MASK);
        if (v == 0) return -1;
    }
}

static int edges_grow(wp_jieba *j) {
    size_t ncap = j->cap * 2;
    uint64_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t s = 0; s < j->cap; s++) {
        if (!j->slots[s]) continue;
        size_t t = edge_slot(j->slots[s] >> 21, ncap);
        while (ns[t])
            t = (t + 1) & (ncap - 1);
        ns[t] = j->slots[s];
    }
    free(j->slots);
    j->slots = ns;
    j->cap = ncap;
    return 0;
}

/* The child of parent by cp, created (as a prefix with freq 0) when absent; -1 on no memory,
 * -3 when the dictionary has too many prefixes. */
static int64_t trie_add(wp_jieba *j, uint32_t parent, uint32_t cp) {
    uint64_t key = edge_key(parent, cp);
    size_t s = edge_slot(key, j->cap);
    for (uint64_t v; (v = j->slots[s]) != 0; s = (s + 1) & (j->cap - 1))
        if ((v >> 21) == key) return (int64_t)(v & CHILD_MASK);
    if (j->nnodes >= NODE_MAX) return -3;
    if (j->nnodes == j->node_cap) {
        size_t nc = j->node_cap * 2;
        int64_t *nf = realloc(j->freq, nc * sizeof *nf);
        if (!nf) return -1;
        j->freq = nf;
        j->node_cap = nc;
    }
    uint32_t child = (uint32_t)j->nnodes++;
    j->freq[child] = 0;
    j->slots[s] = key << 21 | child;
    if (++j->nedges * 2 > j->cap && edges_grow(j) != 0) return -1;
    return child;
}

void wp_jieba_free(wp_jieba *j) {
    if (!j) return;
    free(j->slots);
    free(j->freq);
    free(j->w);
    free(j->isword);
    free(j);
}

static int is_ascii_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* One line of dict.txt as gen_pfdict() reads it: bytes.strip(), strict UTF-8, split(' '),
 * word = [0], freq = int([1]) (ASCII digits with an optional '+' here). */
static int parse_line(wp_jieba *j, const unsigned char *p, size_t n, int64_t *total) {
    while (n && is_ascii_space(p[0])) {
        p++;
        n--;
    }
    while (n && is_ascii_space(p[n - 1]))
        n--;
    size_t wl = 0;
    while (wl < n && p[wl] != ' ')
        wl++;
    if (wl == 0 || wl == n) return -2; /* no word or no frequency */
    const unsigned char *f = p + wl + 1, *fe = p + n;
    const unsigned char *sp = memchr(f, ' ', (size_t)(fe - f));
    if (sp) fe = sp;
    if (f < fe && *f == '+') f++;
    if (f == fe) return -2;
    int64_t freq = 0;
    for (; f < fe; f++) {
        if (*f < '0' || *f > '9' || freq > (INT64_MAX - 9) / 10) return -2;
        freq = freq * 10 + (*f - '0');
    }
    for (size_t i = wl + 1; i < n; i++) /* the rest of the line (tag) must be valid UTF-8 too */
        if (p[i] >= 0x80) {
            size_t adv;
            if (wp_utf8_decode(p + i, n - i, &adv) < 0) return -2;
            i += adv - 1;
        }
    uint32_t node = 0;
    for (size_t i = 0; i < wl;) {
        size_t adv;
        int32_t cp = wp_utf8_decode(p + i, wl - i, &adv);
        if (cp < 0) return -2;
        int64_t c = trie_add(j, node, (uint32_t)cp);
        if (c < 0) return (int)c;
        node = (uint32_t)c;
        i += adv;
    }
    j->freq[node] = freq;
    if (*total > INT64_MAX - freq) return -2;
    *total += freq;
    return 0;
}

wp_jieba *wp_jieba_load_mem(const char *data, size_t len, char *err, size_t errlen) {
    wp_jieba *j = calloc(1, sizeof *j);
    if (!j) {
        set_err(err, errlen, "jieba dictionary: out of memory");
        return NULL;
    }
    j->cap = 1u << 20;
    j->node_cap = 1u << 18;
    j->slots = calloc(j->cap, sizeof *j->slots);
    j->freq = malloc(j->node_cap * sizeof *j->freq);
    if (!j->slots || !j->freq) goto nomem;
    j->nnodes = 1;
    j->freq[0] = 0;
    int64_t total = 0;
    size_t lineno = 0;
    for (const char *p = data, *end = data + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        int rc = parse_line(j, (const unsigned char *)p, (size_t)(le - p), &total);
        if (rc == -1) goto nomem;
        if (rc == -3) {
            set_err(err, errlen, "jieba dictionary: too many words (at most 2097150 prefixes)");
            wp_jieba_free(j);
            return NULL;
        }
        if (rc < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "jieba dictionary: invalid entry at line %zu", lineno);
            set_err(err, errlen, msg);
            wp_jieba_free(j);
            return NULL;
        }
        p = nl ? nl + 1 : end;
    }
    if (total <= 0) {
        set_err(err, errlen, "jieba dictionary: no word with a frequency");
        wp_jieba_free(j);
        return NULL;
    }
    j->w = malloc(j->nnodes * sizeof *j->w);
    j->isword = malloc(j->nnodes);
    if (!j->w || !j->isword) goto nomem;
    double logtotal = log((double)total);
    j->fallback_w = log(1.0) - logtotal;
    for (size_t i = 0; i < j->nnodes; i++) {
        j->isword[i] = j->freq[i] > 0;
        j->w[i] = j->freq[i] > 0 ? log((double)j->freq[i]) - logtotal : 0.0;
        j->nwords += j->isword[i];
    }
    free(j->freq);
    j->freq = NULL;
    return j;
nomem:
    set_err(err, errlen, "jieba dictionary: out of memory");
    wp_jieba_free(j);
    return NULL;
}

wp_jieba *wp_jieba_load(const char *path, char *err, size_t errlen) {
    if (!path) {
        size_t n;
        const char *d = wp_jieba_default_dict(&n);
        return wp_jieba_load_mem(d, n, err, errlen);
    }
    char *buf;
    size_t n;
    if (tok_file_read(path, "the jieba dictionary", &buf, &n, err, errlen) != TOK_OK) return NULL;
    wp_jieba *j = wp_jieba_load_mem(buf, n, err, errlen);
    free(buf);
    return j;
}

size_t wp_jieba_word_count(const wp_jieba *j) {
    return j->nwords;
}

/* re_han_default: [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-] */
static inline int is_han(int32_t cp) {
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
               cp == '+' || cp == '#' || cp == '&' || cp == '.' || cp == '_' || cp == '%' || cp == '-';
    return cp >= 0x4E00 && cp <= 0x9FD5;
}

/* re_eng: [a-zA-Z0-9] */
static inline int is_eng(uint32_t cp) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
}

typedef struct {
    uint32_t *cp; /* [cap] the block's code points */
    size_t *off;  /* [cap + 1] byte offset of each code point in the text */
    double *rw;   /* [cap + 1] route[i][0]: best log probability of the suffix from i */
    int32_t *rx;  /* [cap + 1] route[i][1]: end (inclusive) of the first word from i */
    size_t cap;
} scratch;

static int scratch_reserve(scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t nc = s->cap ? s->cap : 256;
    while (nc < n)
        nc *= 2;
    uint32_t *cp = realloc(s->cp, nc * sizeof *cp);
    if (cp) s->cp = cp;
    size_t *off = realloc(s->off, (nc + 1) * sizeof *off);
    if (off) s->off = off;
    double *rw = realloc(s->rw, (nc + 1) * sizeof *rw);
    if (rw) s->rw = rw;
    int32_t *rx = realloc(s->rx, (nc + 1) * sizeof *rx);
    if (rx) s->rx = rx;
    if (!cp || !off || !rw || !rx) return -1;
    s->cap = nc;
    return 0;
}

/* __cut_DAG_NO_HMM over one re_han block of n code points (get_DAG + calc fused: the DAG
 * edges from idx are the dictionary words found walking the trie from idx). */
static void cut_block(const wp_jieba *j, const char *text, const scratch *s, size_t n,
                      void (*emit)(void *, const char *, size_t), void *user) {
    s->rw[n] = 0.0;
    s->rx[n] = 0;
    for (size_t idx = n; idx-- > 0;) {
        double best = 0.0;
        int32_t bx = -1;
        uint32_t node = 0;
        for (size_t i = idx; i < n; i++) {
            int64_t c = trie_child(j, node, s->cp[i]);
            if (c < 0) break;
            node = (uint32_t)c;
            if (!j->isword[node]) continue;
            double cand = j->w[node] + s->rw[i + 1];
            if (bx < 0 || cand >= best) { /* max() of (score, x) tuples: ties go to the larger x */
                best = cand;
                bx = (int32_t)i;
            }
        }
        if (bx < 0) {
            best = j->fallback_w + s->rw[idx + 1];
            bx = (int32_t)idx;
        }
        s->rw[idx] = best;
        s->rx[idx] = bx;
    }
    size_t bs = 0, be = 0; /* buffered run of single Latin letters / digits, [bs, be) */
    for (size_t x = 0; x < n;) {
        size_t y = (size_t)s->rx[x] + 1;
        if (y - x == 1 && is_eng(s->cp[x])) {
            if (be == bs) bs = x;
            be = y;
        } else {
            if (be > bs) emit(user, text + s->off[bs], s->off[be] - s->off[bs]);
            bs = be = 0;
            emit(user, text + s->off[x], s->off[y] - s->off[x]);
        }
        x = y;
    }
    if (be > bs) emit(user, text + s->off[bs], s->off[be] - s->off[bs]);
}

int wp_jieba_segment(const wp_jieba *j, const char *text, size_t len,
                     void (*emit)(void *user, const char *word, size_t len), void *user) {
    const unsigned char *t = (const unsigned char *)text;
    scratch s = {0};
    int rc = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        int32_t cp = wp_utf8_decode(t + i, len - i, &adv);
        if (cp >= 0 && is_han(cp)) {
            size_t n = 0, k = i;
            for (;;) { /* the whole block */
                if (n + 1 > s.cap && scratch_reserve(&s, n + 1) != 0) {
                    rc = -1;
                    goto out;
                }
                s.cp[n] = (uint32_t)cp;
                s.off[n++] = k;
                k += adv;
                if (k >= len) break;
                cp = wp_utf8_decode(t + k, len - k, &adv);
                if (cp < 0 || !is_han(cp)) break;
            }
            s.off[n] = k;
            cut_block(j, text, &s, n, emit, user);
            i = k;
        } else if (t[i] == '\r' && i + 1 < len && t[i + 1] == '\n') { /* re_skip's "\r\n" */
            emit(user, text + i, 2);
            i += 2;
        } else { /* outside blocks every character (whitespace or not) is a word */
            emit(user, text + i, adv);
            i += adv;
        }
    }
out:
    free(s.cp);
    free(s.off);
    free(s.rw);
    free(s.rx);
    return rc;
}
