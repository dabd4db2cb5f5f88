/* text.c - the text of a sequence being generated (gen.h): decodes the ids so far with the
 * tokenizer, finds stop strings, and says which new bytes are safe to stream: only
 * whole UTF-8 characters (bytes of a character split over byte-fallback pieces wait
 * for the piece that completes it) and never bytes that might begin a stop string.
 * Decoding the whole prefix each token costs O(n^2) bytes per sequence, which is
 * small next to a decoder step for the lengths a server allows. Not the engine. */
#include <stdlib.h>
#include <string.h>

#include "gen.h"

/* tok_decode of the ids the tokenizer knows: a model whose vocabulary is larger than
 * its tokenizer's (padding rows, a mismatched pair) may generate ids past it. */
static char *decode_known(const tok_model *tok, const int32_t *ids, int n, size_t *len) {
    int32_t V = tok_vocab_size(tok);
    int32_t *tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp);
    if (!tmp) return NULL;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < V) tmp[k++] = ids[i];
    char err[128];
    char *text = tok_decode(tok, tmp, (size_t)k, len, err, sizeof err);
    free(tmp);
    return text;
}

/* first occurrence of any stop string in text[0..len): offset or -1 */
static long find_stop(const char *text, size_t len, const gen_stops *st) {
    long best = -1;
    for (int i = 0; st && i < st->n; i++) {
        const char *hit = memmem(text, len, st->s[i], st->len[i]);
        if (hit && (best < 0 || hit - text < best)) best = hit - text;
    }
    return best;
}

/* longest suffix of text that is a proper prefix of some stop string */
static size_t stop_prefix_suffix(const char *text, size_t len, const gen_stops *st) {
    size_t hold = 0;
    for (int i = 0; st && i < st->n; i++) {
        size_t m = st->len[i] - 1 < len ? st->len[i] - 1 : len;
        for (size_t k = m; k > hold; k--)
            if (memcmp(text + len - k, st->s[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

int gen_text_push(gen_text *t, const tok_model *tok, const gen_stops *st, int32_t id, size_t *d_off,
                  size_t *d_len) {
    *d_off = t->emitted;
    *d_len = 0;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        int32_t *p = realloc(t->ids, (size_t)cap * sizeof *p);
        if (!p) return GEN_ERR_NOMEM;
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    if (t->stop_at >= 0) return 1;
    size_t len = 0;
    char *text = decode_known(tok, t->ids, t->n, &len);
    if (!text) return GEN_ERR_NOMEM;
    free(t->text);
    t->text = text;
    t->len = len;
    long stop = find_stop(text, len, st);
    size_t safe = len;
    if (stop >= 0) {
        t->stop_at = stop;
        t->len = safe = (size_t)stop;
        text[safe] = 0;
    } else {
        /* a character still split over byte pieces decodes to U+FFFD for now */
        if (tok_piece_type(tok, id) == TOK_PIECE_BYTE)
            while (safe >= 3 && memcmp(text + safe - 3, "\xEF\xBF\xBD", 3) == 0)
                safe -= 3;
        size_t hold = stop_prefix_suffix(text, safe, st);
        safe -= hold;
        while (safe > 0 && safe < len && ((unsigned char)text[safe] & 0xC0) == 0x80)
            safe--;
    }
    if (safe > t->emitted) {
        *d_off = t->emitted;
        *d_len = safe - t->emitted;
        t->emitted = safe;
    }
    return stop >= 0;
}

int gen_stops_add(gen_stops *st, const char *s, size_t len) {
    char **ns = realloc(st->s, (size_t)(st->n + 1) * sizeof *ns);
    if (!ns) return GEN_ERR_NOMEM;
    st->s = ns;
    size_t *nl = realloc(st->len, (size_t)(st->n + 1) * sizeof *nl);
    if (!nl) return GEN_ERR_NOMEM;
    st->len = nl;
    char *c = malloc(len + 1);
    if (!c) return GEN_ERR_NOMEM;
    memcpy(c, s, len);
    c[len] = 0;
    st->s[st->n] = c;
    st->len[st->n++] = len;
    return 0;
}

void gen_stops_free(gen_stops *st) {
    for (int i = 0; i < st->n; i++)
        free(st->s[i]);
    free(st->s);
    free(st->len);
    memset(st, 0, sizeof *st);
}

void gen_text_init(gen_text *t) {
    memset(t, 0, sizeof *t);
    t->stop_at = -1;
}

void gen_text_free(gen_text *t) {
    free(t->ids);
    free(t->text);
    gen_text_init(t);
}

char *gen_text_final(const tok_model *tok, const int32_t *ids, int n, const gen_stops *st, int *stopped,
                     size_t *len) {
    size_t l = 0;
    *stopped = 0;
    char *text = decode_known(tok, ids, n, &l);
    if (!text) return NULL;
    long stop = find_stop(text, l, st);
    if (stop >= 0) {
        *stopped = 1;
        l = (size_t)stop;
        text[l] = 0;
    }
    if (len) *len = l;
    return text;
}
