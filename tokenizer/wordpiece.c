/* wordpiece.c - T5 PEGASUS's tokenizer (see tok_dev.h): jieba segmentation without HMM
 * (jieba.c), then for each word the word itself when `vocab.txt` has it, else transformers'
 * BERT BasicTokenizer (lowercase, NFD accent stripping, control removal, punctuation and
 * CJK splitting) and greedy longest-match WordPiece with `##` and `[UNK]`; `[CLS] ... [SEP]`.
 * Byte offsets of every token point into the caller's text. Decoding is the fixture
 * README's rule. Not here: the Unigram tokenizer and the dispatch (tok.c). */
#include "tok_dev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "wp_unicode.h"

#define WP_MAX_CHARS_PER_WORD 100 /* WordpieceTokenizer.max_input_chars_per_word */

struct wp_model {
    wp_jieba *jieba;
    char *buf;          /* vocab.txt bytes, each line NUL-terminated in place */
    const char **piece; /* [n] line i (id i) */
    uint32_t *plen;     /* [n] its byte length */
    int32_t n;
    int32_t *slot; /* [cap] open-addressing hash: id, or -1 for empty */
    size_t cap;
    int32_t unk, cls, sep;
};

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* FNV-1a over an optional "##" and s[0..n). */
static uint64_t hash_bytes(int hashes, const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    if (hashes) {
        h = (h ^ '#') * 1099511628211ull;
        h = (h ^ '#') * 1099511628211ull;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The id of ("##" if hashes) + s[0..n), or -1. */
static int32_t vocab_find(const wp_model *m, int hashes, const char *s, size_t n) {
    size_t full = n + (hashes ? 2 : 0);
    for (size_t i = hash_bytes(hashes, s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int32_t id = m->slot[i];
        if (id < 0) return -1;
        const char *p = m->piece[id];
        if (m->plen[id] != full) continue;
        if (hashes) {
            if (p[0] != '#' || p[1] != '#') continue;
            p += 2;
        }
        if (memcmp(p, s, n) == 0) return id;
    }
}

void wp_model_free(wp_model *m) {
    if (!m) return;
    wp_jieba_free(m->jieba);
    free(m->buf);
    free(m->piece);
    free(m->plen);
    free(m->slot);
    free(m);
}

/* Lines as Python's text mode reads them (universal newlines); vocab[token] = first line. */
static int vocab_parse(wp_model *m, size_t len, char *err, size_t errlen) {
    char *b = m->buf;
    for (size_t i = 0; i < len;) {
        size_t adv;
        if (b[i] == 0 || wp_utf8_decode((unsigned char *)b + i, len - i, &adv) < 0) {
            set_err(err, errlen, "vocab.txt: not a UTF-8 text file");
            return -1;
        }
        i += adv;
    }
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        if (b[i] == '\n' || (b[i] == '\r' && (i + 1 >= len || b[i + 1] != '\n'))) lines++;
    if (len && b[len - 1] != '\n' && b[len - 1] != '\r') lines++;
    if (lines == 0 || lines > INT32_MAX / 4) {
        set_err(err, errlen, lines ? "vocab.txt: too many lines" : "vocab.txt: empty");
        return -1;
    }
    m->piece = malloc(lines * sizeof *m->piece);
    m->plen = malloc(lines * sizeof *m->plen);
    for (m->cap = 1024; m->cap < lines * 2; m->cap *= 2) {
    }
    m->slot = malloc(m->cap * sizeof *m->slot);
    if (!m->piece || !m->plen || !m->slot) {
        set_err(err, errlen, "vocab.txt: out of memory");
        return -1;
    }
    memset(m->slot, 0xff, m->cap * sizeof *m->slot);
    size_t start = 0, id = 0;
    for (size_t i = 0; i <= len && id < lines; i++) {
        if (i < len && b[i] != '\n' && b[i] != '\r') continue;
        size_t end = i;
        if (i + 1 < len && b[i] == '\r' && b[i + 1] == '\n') i++;
        b[end] = 0;
        m->piece[id] = b + start;
        m->plen[id] = (uint32_t)(end - start);
        if (end > start && vocab_find(m, 0, b + start, end - start) < 0) {
            size_t s = hash_bytes(0, b + start, end - start) & (m->cap - 1);
            while (m->slot[s] >= 0)
                s = (s + 1) & (m->cap - 1);
            m->slot[s] = (int32_t)id;
        }
        id++;
        start = i + 1;
    }
    m->n = (int32_t)lines;
    return 0;
}

wp_model *wp_model_load(const char *vocab_path, const char *dict_path, char *err, size_t errlen) {
    wp_model *m = calloc(1, sizeof *m);
    if (!m) {
        set_err(err, errlen, "wordpiece: out of memory");
        return NULL;
    }
    size_t len = 0;
    if (tok_file_read(vocab_path, "vocab.txt", &m->buf, &len, err, errlen) != TOK_OK) {
        wp_model_free(m);
        return NULL;
    }
    if (vocab_parse(m, len, err, errlen) != 0) {
        wp_model_free(m);
        return NULL;
    }
    m->unk = wp_token_id(m, "[UNK]");
    m->cls = wp_token_id(m, "[CLS]");
    m->sep = wp_token_id(m, "[SEP]");
    if (m->unk < 0 || m->cls < 0 || m->sep < 0) {
        set_err(err, errlen, "vocab.txt: [UNK], [CLS] or [SEP] is missing");
        wp_model_free(m);
        return NULL;
    }
    m->jieba = wp_jieba_load(dict_path, err, errlen);
    if (!m->jieba) {
        wp_model_free(m);
        return NULL;
    }
    return m;
}

int32_t wp_vocab_size(const wp_model *m) {
    return m->n;
}

int32_t wp_token_id(const wp_model *m, const char *token) {
    return vocab_find(m, 0, token, strlen(token));
}

const char *wp_id_to_piece(const wp_model *m, int32_t id) {
    return (id >= 0 && id < m->n) ? m->piece[id] : NULL;
}

/* ---- encoding ---- */

typedef struct {
    uint32_t cp;
    int32_t s, e; /* the source character's byte span in the text */
} uchar;

typedef struct { /* a growable array of uchar */
    uchar *a;
    size_t n, cap;
} ubuf;

static int ubuf_push(ubuf *b, uint32_t cp, int32_t s, int32_t e) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        uchar *na = realloc(b->a, nc * sizeof *na);
        if (!na) return -1;
        b->a = na;
        b->cap = nc;
    }
    b->a[b->n++] = (uchar){cp, s, e};
    return 0;
}

typedef struct {
    const wp_model *m;
    const char *text;
    tok_encoding *out;
    size_t cap;   /* of out's arrays */
    ubuf clean;   /* the word after _clean_text and _tokenize_chinese_chars */
    ubuf low;     /* one token lowercased */
    ubuf nfd;     /* ... then NFD without Mn */
    char *bytes;  /* UTF-8 of one WordPiece input */
    size_t *boff; /* [WP_MAX_CHARS_PER_WORD + 1] its characters' byte offsets */
    size_t bytes_cap;
    int failed; /* out of memory */
} enc_state;

static void out_push(enc_state *st, int32_t id, int32_t s, int32_t e) {
    tok_encoding *o = st->out;
    if (st->failed) return;
    if (o->n == st->cap) {
        size_t nc = st->cap * 2;
        int32_t *a = realloc(o->ids, nc * sizeof *a);
        if (a) o->ids = a;
        int32_t *b = realloc(o->starts, nc * sizeof *b);
        if (b) o->starts = b;
        int32_t *c = realloc(o->ends, nc * sizeof *c);
        if (c) o->ends = c;
        if (!a || !b || !c) {
            st->failed = 1;
            return;
        }
        st->cap = nc;
    }
    o->ids[o->n] = id;
    o->starts[o->n] = s;
    o->ends[o->n] = e;
    o->n++;
}

/* transformers' BasicTokenizer._is_chinese_char */
static int is_bert_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* WordpieceTokenizer.tokenize of one token w[0..n) (no whitespace in it). */
static void wordpiece(enc_state *st, const uchar *w, size_t n) {
    const wp_model *m = st->m;
    int32_t s0 = w[0].s, e0 = w[0].e;
    for (size_t k = 1; k < n; k++) {
        if (w[k].s < s0) s0 = w[k].s;
        if (w[k].e > e0) e0 = w[k].e;
    }
    if (n > WP_MAX_CHARS_PER_WORD) {
        out_push(st, m->unk, s0, e0);
        return;
    }
    if (st->bytes_cap < n * 4) {
        char *nb = realloc(st->bytes, n * 4);
        if (!nb) {
            st->failed = 1;
            return;
        }
        st->bytes = nb;
        st->bytes_cap = n * 4;
    }
    st->boff[0] = 0;
    for (size_t k = 0; k < n; k++)
        st->boff[k + 1] = st->boff[k] + wp_utf8_encode(w[k].cp, st->bytes + st->boff[k]);
    size_t first = st->out->n;
    for (size_t start = 0; start < n;) {
        int32_t id = -1;
        size_t end = n;
        for (; end > start; end--) {
            id = vocab_find(m, start > 0, st->bytes + st->boff[start], st->boff[end] - st->boff[start]);
            if (id >= 0) break;
        }
        if (id < 0) { /* no piece fits: the whole token is [UNK] */
            st->out->n = first;
            out_push(st, m->unk, s0, e0);
            return;
        }
        int32_t s = w[start].s, e = w[start].e;
        for (size_t k = start + 1; k < end; k++) {
            if (w[k].s < s) s = w[k].s;
            if (w[k].e > e) e = w[k].e;
        }
        out_push(st, id, s, e);
        start = end;
    }
}

/* Python's str.lower() final-sigma test for U+03A3 at t[i] of the token t[0..n). */
static int final_sigma(const uchar *t, size_t n, size_t i) {
    size_t j = i;
    uint32_t c = 0;
    int found = 0;
    while (j-- > 0) {
        c = t[j].cp;
        if (!(wp_uni_flags(c) & WP_U_CASEIGN)) {
            found = 1;
            break;
        }
    }
    if (!found || !(wp_uni_flags(c) & WP_U_CASED)) return 0;
    for (j = i + 1; j < n; j++) {
        c = t[j].cp;
        if (!(wp_uni_flags(c) & WP_U_CASEIGN)) break;
    }
    return j == n || !(wp_uni_flags(c) & WP_U_CASED);
}

/* One whitespace token of the cleaned word: lower(), NFD minus Mn, split on punctuation,
 * WordPiece each piece. */
static void basic_token(enc_state *st, const uchar *t, size_t n) {
    st->low.n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t l[2];
        int k;
        if (t[i].cp == 0x3A3) {
            l[0] = final_sigma(t, n, i) ? 0x3C2 : 0x3C3;
            k = 1;
        } else
            k = wp_uni_lower(t[i].cp, l);
        for (int q = 0; q < k; q++)
            if (ubuf_push(&st->low, l[q], t[i].s, t[i].e) != 0) {
                st->failed = 1;
                return;
            }
    }
    ubuf *d = &st->nfd;
    d->n = 0;
    for (size_t i = 0; i < st->low.n; i++) {
        uint32_t dec[8];
        int k = wp_uni_decompose(st->low.a[i].cp, dec);
        for (int q = 0; q < k; q++) {
            if (ubuf_push(d, dec[q], st->low.a[i].s, st->low.a[i].e) != 0) {
                st->failed = 1;
                return;
            }
            /* canonical ordering: a mark moves before marks of a higher class (stable) */
            int cc = wp_uni_ccc(dec[q]);
            if (cc == 0) continue;
            for (size_t j = d->n - 1; j > 0; j--) {
                int pc = wp_uni_ccc(d->a[j - 1].cp);
                if (pc <= cc) break;
                uchar tmp = d->a[j - 1];
                d->a[j - 1] = d->a[j];
                d->a[j] = tmp;
            }
        }
    }
    size_t w = 0; /* drop Mn */
    for (size_t i = 0; i < d->n; i++)
        if (!(wp_uni_flags(d->a[i].cp) & WP_U_MN)) d->a[w++] = d->a[i];
    d->n = w;
    size_t s = 0; /* _run_split_on_punc, then the final whitespace_tokenize */
    for (size_t i = 0; i <= d->n && !st->failed; i++) {
        unsigned f = i < d->n ? wp_uni_flags(d->a[i].cp) : WP_U_PYSPACE;
        if (!(f & (WP_U_PUNCT | WP_U_PYSPACE))) continue;
        if (i > s) wordpiece(st, d->a + s, i - s);
        if (f & WP_U_PUNCT) wordpiece(st, d->a + i, 1);
        s = i + 1;
    }
}

/* One jieba word: itself if in the vocabulary, else BasicTokenizer + WordPiece. */
static void encode_word(void *user, const char *word, size_t len) {
    enc_state *st = user;
    if (st->failed) return;
    int32_t base = (int32_t)(word - st->text);
    int32_t id = vocab_find(st->m, 0, word, len);
    if (id >= 0) {
        out_push(st, id, base, base + (int32_t)len);
        return;
    }
    ubuf *c = &st->clean; /* _clean_text + _tokenize_chinese_chars */
    c->n = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        int32_t cp = wp_utf8_decode((const unsigned char *)word + i, len - i, &adv);
        int32_t s = base + (int32_t)i, e = s + (int32_t)adv;
        i += adv;
        if (cp <= 0 || cp == 0xFFFD) continue; /* invalid bytes count as U+FFFD */
        unsigned f = wp_uni_flags((uint32_t)cp);
        if (f & WP_U_CTRL) continue;
        if (f & WP_U_BWS) cp = ' ';
        int cjk = is_bert_cjk((uint32_t)cp);
        if ((cjk && ubuf_push(c, ' ', s, e) != 0) || ubuf_push(c, (uint32_t)cp, s, e) != 0 ||
            (cjk && ubuf_push(c, ' ', s, e) != 0)) {
            st->failed = 1;
            return;
        }
    }
    size_t s = 0; /* whitespace_tokenize */
    for (size_t i = 0; i <= c->n && !st->failed; i++) {
        if (i < c->n && !(wp_uni_flags(c->a[i].cp) & WP_U_PYSPACE)) continue;
        if (i > s) basic_token(st, c->a + s, i - s);
        s = i + 1;
    }
}

int wp_encode(const wp_model *m, const char *text, size_t len, int add_special, tok_encoding *out, char *err,
              size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!text && len) {
        set_err(err, errlen, "wordpiece: no text");
        return TOK_ERR_ARG;
    }
    if (len > (size_t)INT32_MAX - 8) {
        set_err(err, errlen, "wordpiece: text too long");
        return TOK_ERR_ARG;
    }
    size_t boff[WP_MAX_CHARS_PER_WORD + 1];
    enc_state st = {.m = m, .text = text, .out = out, .cap = 64, .boff = boff};
    out->ids = malloc(st.cap * sizeof *out->ids);
    out->starts = malloc(st.cap * sizeof *out->starts);
    out->ends = malloc(st.cap * sizeof *out->ends);
    if (!out->ids || !out->starts || !out->ends) st.failed = 1;
    if (add_special) out_push(&st, m->cls, 0, 0);
    if (!st.failed && len && wp_jieba_segment(m->jieba, text, len, encode_word, &st) != 0) st.failed = 1;
    if (add_special) out_push(&st, m->sep, (int32_t)len, (int32_t)len);
    free(st.clean.a);
    free(st.low.a);
    free(st.nfd.a);
    free(st.bytes);
    if (st.failed) {
        free(out->ids);
        free(out->starts);
        free(out->ends);
        memset(out, 0, sizeof *out);
        set_err(err, errlen, "wordpiece: out of memory");
        return TOK_ERR_NOMEM;
    }
    return TOK_OK;
}

int wp_jieba_cut(const wp_model *m, const char *text, size_t len,
                 void (*emit)(void *user, const char *word, size_t len), void *user) {
    if (!text && len) return TOK_ERR_ARG;
    return wp_jieba_segment(m->jieba, text, len, emit, user) == 0 ? TOK_OK : TOK_ERR_NOMEM;
}

/* ---- decoding ---- */

/* The decode rule's CJK test: CJK ideographs and CJK / full-width punctuation. */
static int is_decode_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2FFFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF00 && cp <= 0xFFEF);
}

/* In place: every occurrence of pat (scanning left to right, no overlaps) removed. */
static size_t remove_all(char *s, size_t n, const char *pat, size_t pn) {
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        if (r + pn <= n && memcmp(s + r, pat, pn) == 0) {
            r += pn;
            continue;
        }
        s[w++] = s[r++];
    }
    return w;
}

static int is_dropped_special(const char *p) {
    return !strcmp(p, "[PAD]") || !strcmp(p, "[CLS]") || !strcmp(p, "[SEP]") || !strcmp(p, "[MASK]");
}

char *wp_decode(const wp_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err, size_t errlen) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->n) {
            set_err(err, errlen, "wordpiece: id out of range");
            return NULL;
        }
        total += m->plen[ids[i]] + 1;
    }
    char *s = malloc(total);
    if (!s) {
        set_err(err, errlen, "wordpiece: out of memory");
        return NULL;
    }
    size_t k = 0;
    int any = 0;
    for (size_t i = 0; i < n; i++) { /* " ".join(tokens) */
        const char *p = m->piece[ids[i]];
        if (is_dropped_special(p)) continue;
        if (any) s[k++] = ' ';
        memcpy(s + k, p, m->plen[ids[i]]);
        k += m->plen[ids[i]];
        any = 1;
    }
    k = remove_all(s, k, " ##", 3);
    k = remove_all(s, k, "##", 2);
    /* drop every space next to a CJK character, judged on the string before removal */
    size_t w = 0;
    uint32_t prev = 0; /* the character before position r in the original string */
    for (size_t r = 0; r < k;) {
        size_t adv;
        int32_t cp = wp_utf8_decode((unsigned char *)s + r, k - r, &adv);
        uint32_t c = cp < 0 ? 0xFFFD : (uint32_t)cp;
        if (c == ' ') {
            int drop = (r > 0 && is_decode_cjk(prev));
            if (!drop && r + 1 < k) {
                size_t a2;
                int32_t nx = wp_utf8_decode((unsigned char *)s + r + 1, k - r - 1, &a2);
                drop = nx >= 0 && is_decode_cjk((uint32_t)nx);
            }
            if (!drop) s[w++] = ' ';
        } else {
            memmove(s + w, s + r, adv);
            w += adv;
        }
        prev = c;
        r += adv;
    }
    s[w] = 0;
    if (out_len) *out_len = w;
    return s;
}
