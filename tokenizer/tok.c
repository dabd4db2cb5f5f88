/* tok.c - the public tokenizer API (tok.h): finds and loads the model file, checks the
 * arguments and dispatches each call through its kind's table of functions (as
 * llama.cpp's llama-vocab does per tokenizer type). The Unigram kind lives here: T5's
 * model-folder conventions (sentinels `<extra_id_N>` recognised in the input before
 * normalization, `</s>`, padding rows), Unigram segmentations turned into ids with byte
 * offsets exactly as SentencePieceProcessor does (consecutive UNKs merged, byte
 * fallback), and ids back into text (SentencePiece's Decode).
 * The algorithms themselves live in normalizer.c and unigram.c; the file formats in
 * spm_proto.c and tok_json.c. The WordPiece kind (T5 PEGASUS vocab.txt) is wordpiece.c's. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"
#include "tok_dev.h"

#define N_SENTINELS 100

/* What a tokenizer kind does behind the public functions of the same names, called
 * once they have checked their arguments (ids in range, text length, nbest). */
typedef struct {
    const char *(*id_to_piece)(const tok_model *m, int32_t id);
    float (*piece_score)(const tok_model *m, int32_t id);
    int (*piece_type)(const tok_model *m, int32_t id);
    int (*encode)(const tok_model *m, const char *text, size_t len, const tok_encode_params *p,
                  tok_encoding *out, char *err, size_t errlen);
    int (*encode_nbest)(const tok_model *m, const char *text, size_t len, int nbest, int add_eos,
                        tok_encoding **out, size_t *n_out, char *err, size_t errlen);
    char *(*decode)(const tok_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err,
                    size_t errlen);
} tok_kind_ops;

static const tok_kind_ops unigram_ops, wordpiece_ops; /* defined at the end */

struct tok_model {
    tok_kind kind;
    const tok_kind_ops *ops;
    wp_model *wp;  /* TOK_KIND_WORDPIECE only; everything below is Unigram */
    spm_spec spec; /* pieces, flags */
    tok_normalizer *norm;
    unigram *uni;
    int32_t sp_size;               /* pieces of the SentencePiece model */
    int32_t vocab_size;            /* ids 0 .. vocab_size-1 (sentinels and padding rows included) */
    int t5;                        /* T5 model folder conventions */
    int32_t sentinel[N_SENTINELS]; /* id of <extra_id_N> (T5 only) */
    int32_t sent_lo, sent_hi;      /* id range holding the sentinels */
    char *sentinel_piece[N_SENTINELS];
    int32_t unk, bos, eos, pad;
    int32_t byte_id[256]; /* id of <0xNN>, unk when missing */
    const char *unk_surface;
};

/* ------------------------------------------------------------------ loading */

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int32_t find_piece(const spm_spec *s, const char *p, int type) {
    for (int32_t i = 0; i < s->n; i++)
        if ((type < 0 || s->type[i] == type) && !strcmp(s->piece[i], p)) return i;
    return -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Reads vocab_size from a T5 folder's config.json; 0 when absent. */
static int32_t config_vocab_size(const char *cfg) {
    json_error_t je;
    json_t *j = json_load_file(cfg, 0, &je);
    int32_t v = 0;
    if (j) {
        json_t *x = json_object_get(j, "vocab_size");
        if (json_is_integer(x) && json_integer_value(x) > 0 && json_integer_value(x) < (1 << 24))
            v = (int32_t)json_integer_value(x);
        json_decref(j);
    }
    return v;
}

static size_t match_sentinel(const char *s, size_t len, int *num);

static int setup_unigram(tok_model *m, int t5, int32_t cfg_vocab, char *err, size_t errlen) {
    spm_spec *s = &m->spec;
    m->kind = TOK_KIND_UNIGRAM;
    m->ops = &unigram_ops;
    if (!(m->norm = norm_create(s, err, errlen))) return TOK_ERR_FORMAT;
    if (!(m->uni = unigram_create(s, err, errlen))) return TOK_ERR_FORMAT;
    m->sp_size = s->n;
    m->unk = find_piece(s, s->unk_piece ? s->unk_piece : "<unk>", SPM_UNKNOWN);
    for (int32_t i = 0; m->unk < 0 && i < s->n; i++)
        if (s->type[i] == SPM_UNKNOWN) m->unk = i;
    m->bos = find_piece(s, s->bos_piece ? s->bos_piece : "<s>", SPM_CONTROL);
    m->eos = find_piece(s, s->eos_piece ? s->eos_piece : "</s>", SPM_CONTROL);
    m->pad = find_piece(s, s->pad_piece ? s->pad_piece : "<pad>", SPM_CONTROL);
    m->unk_surface = s->unk_surface ? s->unk_surface : " \xE2\x81\x87 ";
    for (int b = 0; b < 256; b++)
        m->byte_id[b] = -1;
    for (int32_t i = 0; i < s->n; i++) { /* byte pieces <0xNN>, the first of each */
        unsigned v;
        char tail;
        if (s->type[i] == SPM_BYTE && s->piece_len[i] == 6 &&
            sscanf(s->piece[i], "<0x%2X%c", &v, &tail) == 2 && tail == '>' && m->byte_id[v] < 0)
            m->byte_id[v] = i;
    }
    for (int b = 0; b < 256; b++)
        if (m->byte_id[b] < 0) m->byte_id[b] = m->unk;
    m->vocab_size = s->n;
    m->t5 = t5;
    if (t5) {
        m->sent_lo = INT32_MAX;
        m->sent_hi = -1;
        int32_t listed[N_SENTINELS]; /* tokenizer.json lists the sentinels among its pieces */
        for (int k = 0; k < N_SENTINELS; k++)
            listed[k] = -1;
        for (int32_t i = 0; i < s->n; i++) {
            int num;
            if (s->piece[i][0] == '<' &&
                match_sentinel(s->piece[i], s->piece_len[i], &num) == s->piece_len[i] && listed[num] < 0)
                listed[num] = i;
        }
        for (int k = 0; k < N_SENTINELS; k++) {
            char p[32];
            snprintf(p, sizeof p, "<extra_id_%d>", k);
            int32_t id = listed[k] >= 0 ? listed[k] : s->n + N_SENTINELS - 1 - k;
            m->sentinel[k] = id;
            if (!(m->sentinel_piece[k] = strdup(p))) return TOK_ERR_NOMEM;
            if (id < m->sent_lo) m->sent_lo = id;
            if (id > m->sent_hi) m->sent_hi = id;
            if (id + 1 > m->vocab_size) m->vocab_size = id + 1;
        }
        if (cfg_vocab > m->vocab_size) m->vocab_size = cfg_vocab;
        if (m->eos < 0) m->eos = find_piece(s, "</s>", -1);
    }
    return 0;
}

tok_model *tok_model_load(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        snprintf(err, errlen, "no tokenizer path given");
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(err, errlen, "it does not exist (neither a model folder nor a tokenizer file)");
        else
            snprintf(err, errlen, "cannot access it: %s", strerror(errno));
        return NULL;
    }
    size_t pl = strlen(path) + 32;
    char *file = malloc(pl), *cfg = malloc(pl);
    tok_model *m = calloc(1, sizeof *m);
    char *buf = NULL;
    size_t len = 0;
    int t5 = 0, json = 0, wordpiece = 0;
    int32_t cfg_vocab = 0;
    if (!file || !cfg || !m) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(cfg, pl, "%s/config.json", path);
        if (is_file(cfg)) {
            t5 = 1;
            cfg_vocab = config_vocab_size(cfg);
        }
        snprintf(file, pl, "%s/spiece.model", path);
        if (!is_file(file)) {
            snprintf(file, pl, "%s/tokenizer.json", path);
            json = 1;
            if (!is_file(file)) {
                snprintf(file, pl, "%s/vocab.txt", path);
                if (!is_file(file)) {
                    snprintf(err, errlen,
                             "the model folder has no spiece.model, tokenizer.json or vocab.txt");
                    goto fail;
                }
                wordpiece = 1;
            }
        }
    } else {
        snprintf(file, pl, "%s", path);
        json = ends_with(path, ".json");
        wordpiece = ends_with(path, ".txt");
    }
    if (wordpiece) {
        if (!(m->wp = wp_model_load(file, NULL, err, errlen))) goto fail;
        m->kind = TOK_KIND_WORDPIECE;
        m->ops = &wordpiece_ops;
        m->vocab_size = wp_vocab_size(m->wp);
        m->bos = wp_token_id(m->wp, "[CLS]");
        m->eos = wp_token_id(m->wp, "[SEP]");
        m->pad = wp_token_id(m->wp, "[PAD]");
        m->unk = wp_token_id(m->wp, "[UNK]");
        free(file);
        free(cfg);
        return m;
    }
    if (tok_file_read(file, "the tokenizer file", &buf, &len, err, errlen)) goto fail;
    if (!json && len > 0 && buf[0] == '{') json = 1;
    int rc = json ? spm_spec_parse_json(buf, len, &m->spec, err, errlen)
                  : spm_spec_parse((const uint8_t *)buf, len, &m->spec, err, errlen);
    free(buf);
    buf = NULL;
    if (rc) goto fail;
    if (setup_unigram(m, t5, cfg_vocab, err, errlen)) goto fail;
    free(file);
    free(cfg);
    return m;
fail:
    free(buf);
    free(file);
    free(cfg);
    tok_model_free(m);
    return NULL;
}

void tok_model_free(tok_model *m) {
    if (!m) return;
    wp_model_free(m->wp);
    norm_free(m->norm);
    unigram_free(m->uni);
    spm_spec_free(&m->spec);
    for (int k = 0; k < N_SENTINELS; k++)
        free(m->sentinel_piece[k]);
    free(m);
}

tok_kind tok_model_kind(const tok_model *m) {
    return m->kind;
}
int32_t tok_vocab_size(const tok_model *m) {
    return m->vocab_size;
}
int32_t tok_eos_id(const tok_model *m) {
    return m->eos;
}
int32_t tok_bos_id(const tok_model *m) {
    return m->bos;
}
int32_t tok_pad_id(const tok_model *m) {
    return m->pad;
}
int32_t tok_unk_id(const tok_model *m) {
    return m->unk;
}

const char *tok_id_to_piece(const tok_model *m, int32_t id) {
    if (id < 0 || id >= m->vocab_size) return NULL;
    return m->ops->id_to_piece(m, id);
}

float tok_piece_score(const tok_model *m, int32_t id) {
    if (id < 0 || id >= m->vocab_size) return 0;
    return m->ops->piece_score(m, id);
}

int tok_piece_type(const tok_model *m, int32_t id) {
    if (id < 0 || id >= m->vocab_size) return 0;
    return m->ops->piece_type(m, id);
}

void tok_encode_default_params(tok_encode_params *p) {
    memset(p, 0, sizeof *p);
    p->alpha = 0.1f;
    p->nbest_size = -1;
}

static int check_len(size_t len, char *err, size_t errlen) {
    if (len > (size_t)INT32_MAX / 4) {
        snprintf(err, errlen, "input text too long");
        return TOK_ERR_ARG;
    }
    return 0;
}

int tok_encode(const tok_model *m, const char *text, size_t len, const tok_encode_params *p,
               tok_encoding *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!text && len) {
        snprintf(err, errlen, "no text given");
        return TOK_ERR_ARG;
    }
    if (check_len(len, err, errlen)) return TOK_ERR_ARG;
    return m->ops->encode(m, text, len, p, out, err, errlen);
}

int tok_encode_nbest(const tok_model *m, const char *text, size_t len, int nbest, int add_eos,
                     tok_encoding **out, size_t *n_out, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    if (nbest < 1 || nbest > 1024) {
        snprintf(err, errlen, "nbest must be 1 to 1024");
        return TOK_ERR_ARG;
    }
    if ((!text && len) || check_len(len, err, errlen)) {
        snprintf(err, errlen, "bad text argument");
        return TOK_ERR_ARG;
    }
    return m->ops->encode_nbest(m, text, len, nbest, add_eos, out, n_out, err, errlen);
}

void tok_encoding_free(tok_encoding *e) {
    if (!e) return;
    free(e->ids);
    free(e->starts);
    free(e->ends);
    memset(e, 0, sizeof *e);
}

void tok_nbest_free(tok_encoding *list, size_t n) {
    if (!list) return;
    for (size_t i = 0; i < n; i++)
        tok_encoding_free(&list[i]);
    free(list);
}

char *tok_decode(const tok_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err,
                 size_t errlen) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab_size) {
            snprintf(err, errlen, "id %ld at position %zu is outside the vocabulary (0..%d)", (long)ids[i], i,
                     (int)m->vocab_size - 1);
            return NULL;
        }
    return m->ops->decode(m, ids, n, out_len, err, errlen);
}

/* Subword regularization asked for (the Unigram kind only can); alpha 0 included: uniform
 * over the segmentations, as SentencePiece. */
static int wants_sampling(const tok_encode_params *p) {
    return p && p->sample && p->nbest_size != 0 && p->nbest_size != 1;
}

/* ------------------------------------------------------------------ the WordPiece kind */

static const char *wordpiece_id_to_piece(const tok_model *m, int32_t id) {
    return wp_id_to_piece(m->wp, id);
}

static float wordpiece_piece_score(const tok_model *m, int32_t id) {
    (void)m, (void)id;
    return 0;
}

static int wordpiece_piece_type(const tok_model *m, int32_t id) {
    return id == m->bos || id == m->eos || id == m->pad ? TOK_PIECE_CONTROL
           : id == m->unk                               ? TOK_PIECE_UNKNOWN
                                                        : TOK_PIECE_NORMAL;
}

static int wordpiece_encode(const tok_model *m, const char *text, size_t len, const tok_encode_params *p,
                            tok_encoding *out, char *err, size_t errlen) {
    if (wants_sampling(p)) {
        snprintf(err, errlen, "sampling needs a Unigram (SentencePiece) tokenizer");
        return TOK_ERR_ARG;
    }
    return wp_encode(m->wp, text, len, p ? p->add_eos : 0, out, err, errlen);
}

/* WordPiece has one segmentation */
static int wordpiece_encode_nbest(const tok_model *m, const char *text, size_t len, int nbest, int add_eos,
                                  tok_encoding **out, size_t *n_out, char *err, size_t errlen) {
    (void)nbest;
    tok_encoding *one = calloc(1, sizeof *one);
    if (!one) {
        snprintf(err, errlen, "out of memory");
        return TOK_ERR_NOMEM;
    }
    int r = wp_encode(m->wp, text, len, add_eos, one, err, errlen);
    if (r) {
        free(one);
        return r;
    }
    *out = one;
    *n_out = 1;
    return 0;
}

static char *wordpiece_decode(const tok_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err,
                              size_t errlen) {
    return wp_decode(m->wp, ids, n, out_len, err, errlen);
}

static const tok_kind_ops wordpiece_ops = {
    .id_to_piece = wordpiece_id_to_piece,
    .piece_score = wordpiece_piece_score,
    .piece_type = wordpiece_piece_type,
    .encode = wordpiece_encode,
    .encode_nbest = wordpiece_encode_nbest,
    .decode = wordpiece_decode,
};

/* ------------------------------------------------------------------ the Unigram kind: pieces */

/* The sentinel number of id, or -1. */
static int sentinel_of(const tok_model *m, int32_t id) {
    if (!m->t5 || id < m->sent_lo || id > m->sent_hi) return -1;
    for (int k = 0; k < N_SENTINELS; k++)
        if (m->sentinel[k] == id) return k;
    return -1;
}

static const char *unigram_id_to_piece(const tok_model *m, int32_t id) {
    int k = sentinel_of(m, id);
    if (k >= 0) return m->sentinel_piece[k];
    if (id >= m->sp_size) return ""; /* padding row */
    return m->spec.piece[id];
}

static float unigram_piece_score(const tok_model *m, int32_t id) {
    return id < m->sp_size ? m->spec.score[id] : 0;
}

static int unigram_piece_type(const tok_model *m, int32_t id) {
    if (sentinel_of(m, id) >= 0) return TOK_PIECE_SENTINEL;
    if (id >= m->sp_size) return TOK_PIECE_PADDING;
    return m->spec.type[id];
}

/* ------------------------------------------------------------------ the Unigram kind: encoding */

typedef struct {
    int32_t *ids, *starts, *ends;
    size_t n, cap;
} enc_builder;

static int eb_push(enc_builder *b, int32_t id, int32_t s, int32_t e) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *a = realloc(b->ids, cap * sizeof *a);
        if (!a) return TOK_ERR_NOMEM;
        b->ids = a;
        a = realloc(b->starts, cap * sizeof *a);
        if (!a) return TOK_ERR_NOMEM;
        b->starts = a;
        a = realloc(b->ends, cap * sizeof *a);
        if (!a) return TOK_ERR_NOMEM;
        b->ends = a;
        b->cap = cap;
    }
    b->ids[b->n] = id;
    b->starts[b->n] = s;
    b->ends[b->n++] = e;
    return 0;
}

static void eb_free(enc_builder *b) {
    free(b->ids);
    free(b->starts);
    free(b->ends);
}

/* PopulateSentencePieceText: pieces of a segmentation of nb->s to ids with offsets
 * (shifted by off into the caller's text), UNKs merged or split into bytes. */
static int emit_path(const tok_model *m, const norm_buf *nb, const uni_path *path, int32_t off,
                     enc_builder *b) {
    int prev_unk = 0;
    for (size_t i = 0; i < path->n; i++) {
        const uni_piece *p = &path->p[i];
        int is_unk = p->id == m->unk;
        int32_t ob = nb->n2o[p->begin] + off, oe = nb->n2o[p->end] + off;
        int rc = 0;
        if (is_unk && m->spec.byte_fallback) {
            for (int32_t k = p->begin; k < p->end && !rc; k++)
                rc = eb_push(b, m->byte_id[(uint8_t)nb->s[k]], ob, k == p->end - 1 ? oe : ob);
        } else if (is_unk && prev_unk) {
            b->ends[b->n - 1] = oe;
        } else {
            rc = eb_push(b, p->id, ob, oe);
        }
        if (rc) return rc;
        prev_unk = is_unk;
    }
    return 0;
}

/* Encodes one piece of text (no sentinels in it) the SentencePiece way. */
static int encode_plain(const tok_model *m, const char *text, size_t len, int32_t off,
                        const tok_encode_params *p, uint64_t *rng, norm_buf *nb, uni_path *path,
                        enc_builder *b) {
    int rc = norm_run(m->norm, text, len, nb);
    if (rc) return rc;
    if (wants_sampling(p)) {
        if (p->nbest_size > 1)
            rc = unigram_sample_nbest(m->uni, nb->s, nb->len, p->nbest_size, p->alpha, rng, path);
        else
            rc = unigram_sample(m->uni, nb->s, nb->len, p->alpha, p->one_pass ? 1 : 0, rng, path);
    } else {
        rc = unigram_viterbi(m->uni, nb->s, nb->len, path);
    }
    if (rc) return rc;
    return emit_path(m, nb, path, off, b);
}

/* Length of a sentinel `<extra_id_N>` (N = 0..99 written canonically) at s, 0 if none. */
static size_t match_sentinel(const char *s, size_t len, int *num) {
    static const char pre[] = "<extra_id_";
    if (len < sizeof pre + 1 || memcmp(s, pre, sizeof pre - 1)) return 0;
    size_t i = sizeof pre - 1;
    int v = 0, nd = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && nd < 3)
        v = v * 10 + (s[i++] - '0'), nd++;
    if (nd == 0 || nd > 2 || i >= len || s[i] != '>' || (nd == 2 && s[i - 2] == '0')) return 0;
    *num = v;
    return i + 1;
}

/* The first sentinel in text[from..len) of a T5 folder's text (none for other models):
 * its length, 0 when there is none; its offset in *at, its number in *num. */
static size_t next_sentinel(const tok_model *m, const char *text, size_t len, size_t from, size_t *at,
                            int *num) {
    if (!m->t5) return 0;
    for (const char *q; from < len && (q = memchr(text + from, '<', len - from));
         from = (size_t)(q - text) + 1) {
        size_t sl = match_sentinel(q, len - (size_t)(q - text), num);
        if (sl) {
            *at = (size_t)(q - text);
            return sl;
        }
    }
    return 0;
}

/* Encodes text into b: for a T5 folder, sentinels become their ids and the text between
 * them is encoded piece by piece; otherwise the whole text is one piece. */
static int encode_all(const tok_model *m, const char *text, size_t len, const tok_encode_params *p,
                      int add_eos, enc_builder *b) {
    norm_buf nb = {0};
    uni_path path = {0};
    uint64_t rng = uni_rng_init(p ? p->seed : 0);
    int rc = 0, num;
    size_t seg = 0, at, sl;
    while (!rc && (sl = next_sentinel(m, text, len, seg, &at, &num))) {
        if (at > seg) rc = encode_plain(m, text + seg, at - seg, (int32_t)seg, p, &rng, &nb, &path, b);
        if (!rc) rc = eb_push(b, m->sentinel[num], (int32_t)at, (int32_t)(at + sl));
        seg = at + sl;
    }
    if (!rc && seg < len) rc = encode_plain(m, text + seg, len - seg, (int32_t)seg, p, &rng, &nb, &path, b);
    if (!rc && add_eos && m->eos >= 0) rc = eb_push(b, m->eos, (int32_t)len, (int32_t)len);
    norm_buf_free(&nb);
    uni_path_free(&path);
    return rc;
}

static void eb_to_encoding(enc_builder *b, tok_encoding *out) {
    out->ids = b->ids;
    out->starts = b->starts;
    out->ends = b->ends;
    out->n = b->n;
    out->score = 0;
}

static int unigram_encode(const tok_model *m, const char *text, size_t len, const tok_encode_params *p,
                          tok_encoding *out, char *err, size_t errlen) {
    enc_builder b = {0};
    int rc = encode_all(m, text, len, p, p ? p->add_eos : 0, &b);
    if (!rc && b.n == 0) rc = eb_push(&b, 0, 0, 0), b.n = 0; /* non-NULL arrays for empty results */
    if (rc) {
        eb_free(&b);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    eb_to_encoding(&b, out);
    return 0;
}

/* n-best: for T5 text with sentinels, the first text piece gets the n-best and the
 * other pieces (encoded once, 1-best) are copied around each of its answers. */
static int unigram_encode_nbest(const tok_model *m, const char *text, size_t len, int nbest, int add_eos,
                                tok_encoding **out, size_t *n_out, char *err, size_t errlen) {
    norm_buf nb = {0};
    uni_path *paths = NULL;
    float *scores = NULL;
    size_t np = 0;
    int rc = 0;
    size_t seg_b = len, seg_e = len; /* the first text piece (between sentinels) gets the n-best */
    for (size_t seg = 0, at = 0, sl = 1; sl; seg = at + sl) {
        int num;
        sl = next_sentinel(m, text, len, seg, &at, &num);
        size_t end = sl ? at : len;
        if (end > seg) {
            seg_b = seg, seg_e = end;
            break;
        }
    }
    enc_builder pre = {0}, post = {0};
    tok_encode_params p1;
    tok_encode_default_params(&p1);
    rc = encode_all(m, text, seg_b, &p1, 0, &pre);
    if (!rc && seg_e < len) {
        enc_builder tail = {0};
        rc = encode_all(m, text + seg_e, len - seg_e, &p1, add_eos, &tail);
        for (size_t i = 0; i < tail.n && !rc; i++)
            rc = eb_push(&post, tail.ids[i], tail.starts[i] + (int32_t)seg_e, tail.ends[i] + (int32_t)seg_e);
        eb_free(&tail);
    } else if (!rc && add_eos && m->eos >= 0) {
        rc = eb_push(&post, m->eos, (int32_t)len, (int32_t)len);
    }
    if (!rc) rc = norm_run(m->norm, text + seg_b, seg_e - seg_b, &nb);
    if (!rc) rc = unigram_nbest(m->uni, nb.s, nb.len, nbest, &paths, &scores, &np);
    tok_encoding *list = NULL;
    if (!rc && !(list = calloc(np ? np : 1, sizeof *list))) rc = TOK_ERR_NOMEM;
    for (size_t k = 0; k < np && !rc; k++) {
        enc_builder b = {0};
        for (size_t i = 0; i < pre.n && !rc; i++)
            rc = eb_push(&b, pre.ids[i], pre.starts[i], pre.ends[i]);
        if (!rc) rc = emit_path(m, &nb, &paths[k], (int32_t)seg_b, &b);
        for (size_t i = 0; i < post.n && !rc; i++)
            rc = eb_push(&b, post.ids[i], post.starts[i], post.ends[i]);
        if (!rc && b.n == 0) rc = eb_push(&b, 0, 0, 0), b.n = 0;
        if (rc) {
            eb_free(&b);
            break;
        }
        eb_to_encoding(&b, &list[k]);
        list[k].score = scores[k];
    }
    for (size_t k = 0; k < np; k++)
        uni_path_free(&paths[k]);
    free(paths);
    free(scores);
    norm_buf_free(&nb);
    eb_free(&pre);
    eb_free(&post);
    if (rc) {
        tok_nbest_free(list, np);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    *out = list;
    *n_out = np;
    return 0;
}

/* ------------------------------------------------------------------ the Unigram kind: decoding */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *x = realloc(b->s, cap);
        if (!x) return -1;
        b->s = x;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

/* the bytes of a run of byte pieces as UTF-8, invalid bytes as U+FFFD */
static int flush_bytes(sbuf *out, const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t l = tok_utf8_len(bytes + i, n - i);
        if (l == 0) {
            if (sb_add(out, "\xEF\xBF\xBD", 3)) return -1;
            i++;
        } else {
            if (sb_add(out, (const char *)bytes + i, l)) return -1;
            i += l;
        }
    }
    return 0;
}

static char *unigram_decode(const tok_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err,
                            size_t errlen) {
    sbuf out = {0};
    uint8_t *bytes = malloc(n + 1);
    size_t nbytes = 0;
    int bos_ws = 1, fail = !bytes || sb_add(&out, "", 0);
    const spm_spec *s = &m->spec;
    for (size_t i = 0; i < n && !fail; i++) {
        int32_t id = ids[i];
        int k = sentinel_of(m, id);
        if (k < 0 && id < m->sp_size && s->type[id] == SPM_BYTE) {
            unsigned v = 0;
            sscanf(s->piece[id], "<0x%2X>", &v);
            bytes[nbytes++] = (uint8_t)v;
            continue;
        }
        if (nbytes) {
            fail = flush_bytes(&out, bytes, nbytes);
            nbytes = 0;
        }
        if (fail) break;
        if (out.n) bos_ws = 0;
        if (k >= 0) {
            fail = sb_add(&out, m->sentinel_piece[k], strlen(m->sentinel_piece[k]));
            continue;
        }
        if (id >= m->sp_size || s->type[id] == SPM_CONTROL) continue; /* padding, <s>, </s> */
        if (s->type[id] == SPM_UNKNOWN) {
            fail = sb_add(&out, m->unk_surface, strlen(m->unk_surface));
            continue;
        }
        const char *p = s->piece[id];
        size_t pl = s->piece_len[id];
        if (bos_ws && (s->add_dummy_prefix || s->remove_extra_ws) && pl >= 3 &&
            !memcmp(p, "\xe2\x96\x81", 3)) {
            p += 3, pl -= 3;
            if (!s->remove_extra_ws) bos_ws = 0;
        }
        for (size_t j = 0; j < pl && !fail;) { /* ▁ -> space */
            if (pl - j >= 3 && !memcmp(p + j, "\xe2\x96\x81", 3)) {
                fail = sb_add(&out, " ", 1);
                j += 3;
            } else {
                size_t r = j;
                while (r < pl && !(pl - r >= 3 && !memcmp(p + r, "\xe2\x96\x81", 3)))
                    r++;
                fail = sb_add(&out, p + j, r - j);
                j = r;
            }
        }
    }
    if (!fail && nbytes) fail = flush_bytes(&out, bytes, nbytes);
    free(bytes);
    if (fail) {
        free(out.s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (out_len) *out_len = out.n;
    return out.s;
}

static const tok_kind_ops unigram_ops = {
    .id_to_piece = unigram_id_to_piece,
    .piece_score = unigram_piece_score,
    .piece_type = unigram_piece_type,
    .encode = unigram_encode,
    .encode_nbest = unigram_encode_nbest,
    .decode = unigram_decode,
};
