/* normalizer.c - SentencePiece's text normalizer (normalizer.cc of 0.1.97), exactly:
 * user-defined symbols first (longest match, copied unchanged), else the longest rule of
 * the precompiled charsmap (a Darts-clone double array followed by NUL-terminated
 * replacement strings), else one valid UTF-8 character unchanged, else one invalid byte
 * as U+FFFD. Whitespace rules: leading spaces dropped, runs collapsed, trailing dropped
 * (remove_extra_whitespaces), a dummy `▁` prefix (or suffix with
 * treat_whitespace_as_suffix), spaces escaped to U+2581. Alongside the text it writes
 * the normalized->original byte map from which piece offsets come.
 * It does not segment (unigram.c) and knows nothing of T5 sentinels (tok.c). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "tok_internal.h"

struct tok_normalizer {
    uint32_t *da; /* Darts-clone units, NULL when the model has no charsmap */
    size_t da_n;
    char *repl; /* replacement strings, NUL-terminated, indexed by trie values */
    size_t repl_n;
    trie ud; /* user-defined symbols (value 1) */
    int has_ud;
    int add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix;
    uint8_t first_byte[256]; /* 1 if some charsmap rule starts with this byte */
};

static const char kSpace[] = "\xe2\x96\x81"; /* U+2581 */

/* Darts-clone unit accessors */
static inline uint32_t da_offset(uint32_t u) {
    return (u >> 10) << ((u & (1u << 9)) >> 6);
}
static inline uint32_t da_label(uint32_t u) {
    return u & ((1u << 31) | 0xFFu);
}
static inline int da_has_leaf(uint32_t u) {
    return (u >> 8) & 1;
}
static inline uint32_t da_value(uint32_t u) {
    return u & ((1u << 31) - 1);
}

/* Darts commonPrefixSearch keeping the longest of the first 32 matches (as
 * Normalizer::NormalizePrefix does). Returns the match length, 0 when none. */
static size_t da_longest(const tok_normalizer *n, const uint8_t *key, size_t len, uint32_t *value) {
    const uint32_t *a = n->da;
    size_t best = 0, found = 0;
    uint32_t pos = da_offset(a[0]);
    for (size_t i = 0; i < len; i++) {
        pos ^= key[i];
        if (pos >= n->da_n) break;
        uint32_t u = a[pos];
        if (da_label(u) != key[i]) break;
        pos ^= da_offset(u);
        if (pos >= n->da_n) break;
        if (da_has_leaf(u)) {
            if (found < 32) {
                best = i + 1;
                *value = da_value(a[pos]);
            }
            found++;
        }
    }
    return best;
}

tok_normalizer *norm_create(const spm_spec *s, char *err, size_t errlen) {
    tok_normalizer *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->add_dummy_prefix = s->add_dummy_prefix;
    n->remove_extra_ws = s->remove_extra_ws;
    n->escape_ws = s->escape_ws;
    n->ws_suffix = s->treat_ws_suffix;
    if (s->charsmap && s->charsmap_len > 0) {
        const uint8_t *b = s->charsmap;
        if (s->charsmap_len < 4) goto corrupt;
        uint32_t tsize = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (tsize == 0 || tsize % 4 || tsize > s->charsmap_len - 4) goto corrupt;
        n->da_n = tsize / 4;
        n->da = malloc(tsize);
        n->repl_n = s->charsmap_len - 4 - tsize;
        n->repl = malloc(n->repl_n + 1);
        if (!n->da || !n->repl) {
            norm_free(n);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < n->da_n; i++) {
            const uint8_t *p = b + 4 + 4 * i;
            n->da[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        }
        memcpy(n->repl, b + 4 + tsize, n->repl_n);
        n->repl[n->repl_n] = 0; /* a missing final NUL cannot run past the end */
        /* which first bytes can start a rule; also validates every reachable value */
        for (int c = 0; c < 256; c++) {
            uint8_t k = (uint8_t)c;
            uint32_t pos = da_offset(n->da[0]) ^ k;
            if (pos < n->da_n && da_label(n->da[pos]) == k) n->first_byte[c] = 1;
        }
    }
    int32_t nud = 0;
    for (int32_t i = 0; i < s->n; i++)
        nud += s->type[i] == SPM_USER_DEFINED;
    if (nud > 0) {
        char **keys = malloc((size_t)nud * sizeof *keys);
        uint32_t *lens = malloc((size_t)nud * sizeof *lens);
        int32_t *vals = malloc((size_t)nud * sizeof *vals);
        int rc = -1;
        if (keys && lens && vals) {
            int32_t k = 0;
            for (int32_t i = 0; i < s->n; i++)
                if (s->type[i] == SPM_USER_DEFINED) {
                    keys[k] = s->piece[i];
                    lens[k] = s->piece_len[i];
                    vals[k++] = i;
                }
            rc = trie_build(&n->ud, keys, lens, vals, nud);
        }
        free(keys);
        free(lens);
        free(vals);
        if (rc) {
            norm_free(n);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        n->has_ud = 1;
    }
    return n;
corrupt:
    norm_free(n);
    snprintf(err, errlen, "corrupt SentencePiece model (bad precompiled charsmap)");
    return NULL;
}

void norm_free(tok_normalizer *n) {
    if (!n) return;
    free(n->da);
    free(n->repl);
    trie_free(&n->ud);
    free(n);
}

void norm_buf_free(norm_buf *b) {
    free(b->s);
    free(b->n2o);
    memset(b, 0, sizeof *b);
}

static int buf_reserve(norm_buf *b, size_t need) {
    if (need + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) return -1;
    b->s = s;
    int32_t *m = realloc(b->n2o, cap * sizeof *m);
    if (!m) return -1;
    b->n2o = m;
    b->cap = cap;
    return 0;
}

/* NormalizePrefix: the normalized form of the next unit of in[0..len) and the
 * number of input bytes it consumes. */
static const char *norm_prefix(const tok_normalizer *n, const char *in, size_t len, size_t *out_len,
                               size_t *consumed) {
    const uint8_t *u = (const uint8_t *)in;
    if (n->has_ud) {
        int32_t v;
        size_t m = trie_longest_prefix(&n->ud, in, len, &v);
        if (m) {
            *out_len = *consumed = m;
            return in;
        }
    }
    if (n->da && n->first_byte[u[0]]) {
        uint32_t v = 0;
        size_t m = da_longest(n, u, len, &v);
        if (m) {
            *consumed = m;
            if (v >= n->repl_n) { /* value outside the strings: treat as empty */
                *out_len = 0;
                return "";
            }
            *out_len = strlen(n->repl + v);
            return n->repl + v;
        }
    }
    size_t m = tok_utf8_len(u, len);
    if (m == 0) {
        *consumed = 1;
        *out_len = 3;
        return "\xEF\xBF\xBD";
    }
    *out_len = *consumed = m;
    return in;
}

int norm_run(const tok_normalizer *n, const char *in, size_t len, norm_buf *b) {
    b->len = 0;
    if (buf_reserve(b, len * 3 + 8)) return TOK_ERR_NOMEM;
    if (len == 0) {
        b->n2o[0] = 0;
        return 0;
    }
    size_t consumed = 0, ol, cl;
    if (n->remove_extra_ws) {
        while (consumed < len) {
            const char *p = norm_prefix(n, in + consumed, len - consumed, &ol, &cl);
            if (!(ol == 1 && p[0] == ' ')) break;
            consumed += cl;
        }
    }
    if (consumed == len) {
        b->n2o[0] = 0; /* SentencePiece: empty text, offsets start at 0 */
        return 0;
    }
    char *s = b->s;
    int32_t *m = b->n2o;
    size_t k = 0;
    if (!n->ws_suffix && n->add_dummy_prefix) {
        if (n->escape_ws) {
            memcpy(s, kSpace, 3);
            m[0] = m[1] = m[2] = (int32_t)consumed;
            k = 3;
        } else {
            s[0] = ' ';
            m[0] = (int32_t)consumed;
            k = 1;
        }
    }
    int prev_space = n->remove_extra_ws;
    while (consumed < len) {
        const char *p = norm_prefix(n, in + consumed, len - consumed, &ol, &cl);
        if (prev_space)
            while (ol > 0 && p[0] == ' ')
                p++, ol--;
        if (ol > 0) {
            if (k + ol * 3 + 8 > b->cap) {
                if (buf_reserve(b, k + ol * 3 + 8 + (len - consumed) * 3)) return TOK_ERR_NOMEM;
                s = b->s;
                m = b->n2o;
            }
            for (size_t i = 0; i < ol; i++) {
                if (p[i] == ' ' && n->escape_ws) {
                    memcpy(s + k, kSpace, 3);
                    m[k] = m[k + 1] = m[k + 2] = (int32_t)consumed;
                    k += 3;
                } else {
                    s[k] = p[i];
                    m[k++] = (int32_t)consumed;
                }
            }
            prev_space = p[ol - 1] == ' ';
        }
        consumed += cl;
        if (!n->remove_extra_ws) prev_space = 0;
    }
    if (n->remove_extra_ws) {
        const char *sp = n->escape_ws ? kSpace : " ";
        size_t sl = n->escape_ws ? 3 : 1;
        while (k >= sl && memcmp(s + k - sl, sp, sl) == 0) {
            k -= sl;
            consumed = (size_t)m[k];
        }
    }
    if (n->ws_suffix && n->add_dummy_prefix) {
        if (buf_reserve(b, k + 8)) return TOK_ERR_NOMEM;
        s = b->s;
        m = b->n2o;
        if (n->escape_ws) {
            memcpy(s + k, kSpace, 3);
            m[k] = m[k + 1] = m[k + 2] = (int32_t)consumed;
            k += 3;
        } else {
            s[k] = ' ';
            m[k++] = (int32_t)consumed;
        }
    }
    m[k] = (int32_t)consumed;
    s[k] = 0;
    b->len = k;
    return 0;
}
