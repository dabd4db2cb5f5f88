/* spm_proto.c - reads SentencePiece's `spiece.model` (a serialized ModelProto) from the
 * protobuf wire format by hand into an spm_spec: the pieces (string, score, type), the
 * trainer flags (byte_fallback, treat_whitespace_as_suffix, special pieces, unk surface)
 * and the normalizer spec (precompiled charsmap and its three booleans).
 * Unknown fields are skipped. It is not a general protobuf library and builds no tries
 * (unigram.c and normalizer.c do). Also holds spm_spec_free. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "tok_internal.h"

typedef struct {
    const uint8_t *p, *end;
} rd;

static int rd_varint(rd *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Reads one field key; *wt wire type, *field number. */
static int rd_key(rd *r, uint32_t *field, int *wt) {
    uint64_t k;
    if (rd_varint(r, &k) || (k >> 3) == 0 || (k >> 3) > 0x1fffffff) return -1;
    *field = (uint32_t)(k >> 3);
    *wt = (int)(k & 7);
    return 0;
}

static int rd_bytes(rd *r, rd *sub) {
    uint64_t n;
    if (rd_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return -1;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

static int rd_skip(rd *r, int wt) {
    uint64_t v;
    rd sub;
    switch (wt) {
    case 0:
        return rd_varint(r, &v);
    case 1:
        if (r->end - r->p < 8) return -1;
        r->p += 8;
        return 0;
    case 2:
        return rd_bytes(r, &sub);
    case 5:
        if (r->end - r->p < 4) return -1;
        r->p += 4;
        return 0;
    default:
        return -1; /* groups (3, 4) never appear in ModelProto */
    }
}

static char *dup_bytes(rd s) {
    size_t n = (size_t)(s.end - s.p);
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s.p, n);
    c[n] = 0;
    return c;
}

static int parse_piece(rd r, spm_spec *s, int32_t i) {
    uint32_t f;
    int wt;
    int have_piece = 0;
    s->type[i] = SPM_NORMAL;
    s->score[i] = 0;
    while (r.p < r.end) {
        if (rd_key(&r, &f, &wt)) return -1;
        if (f == 1 && wt == 2) {
            rd sub;
            if (rd_bytes(&r, &sub)) return -1;
            free(s->piece[i]);
            if (!(s->piece[i] = dup_bytes(sub))) return TOK_ERR_NOMEM;
            s->piece_len[i] = (uint32_t)(sub.end - sub.p);
            have_piece = 1;
        } else if (f == 2 && wt == 5) {
            if (r.end - r.p < 4) return -1;
            uint32_t u =
                (uint32_t)r.p[0] | (uint32_t)r.p[1] << 8 | (uint32_t)r.p[2] << 16 | (uint32_t)r.p[3] << 24;
            memcpy(&s->score[i], &u, 4);
            r.p += 4;
        } else if (f == 3 && wt == 0) {
            uint64_t v;
            if (rd_varint(&r, &v)) return -1;
            if (v < 1 || v > 6) return -2;
            s->type[i] = (uint8_t)v;
        } else if (rd_skip(&r, wt)) {
            return -1;
        }
    }
    return have_piece ? 0 : -3;
}

static int parse_trainer(rd r, spm_spec *s, char *err, size_t errlen) {
    uint32_t f;
    int wt;
    while (r.p < r.end) {
        if (rd_key(&r, &f, &wt)) return -1;
        uint64_t v;
        if (wt == 0 && (f == 3 || f == 24 || f == 35)) {
            if (rd_varint(&r, &v)) return -1;
            if (f == 3 && v != 1) { /* model_type: UNIGRAM=1, BPE=2, WORD=3, CHAR=4 */
                snprintf(err, errlen, "not a Unigram model (SentencePiece model type %d)", (int)v);
                return TOK_ERR_FORMAT;
            }
            if (f == 24) s->treat_ws_suffix = v != 0;
            if (f == 35) s->byte_fallback = v != 0;
        } else if (wt == 2 && f >= 44 && f <= 48) {
            rd sub;
            if (rd_bytes(&r, &sub)) return -1;
            char **dst = f == 44   ? &s->unk_surface
                         : f == 45 ? &s->unk_piece
                         : f == 46 ? &s->bos_piece
                         : f == 47 ? &s->eos_piece
                                   : &s->pad_piece;
            free(*dst);
            if (!(*dst = dup_bytes(sub))) return TOK_ERR_NOMEM;
        } else if (rd_skip(&r, wt)) {
            return -1;
        }
    }
    return 0;
}

static int parse_normalizer(rd r, spm_spec *s) {
    uint32_t f;
    int wt;
    while (r.p < r.end) {
        if (rd_key(&r, &f, &wt)) return -1;
        if (f == 2 && wt == 2) {
            rd sub;
            if (rd_bytes(&r, &sub)) return -1;
            free(s->charsmap);
            s->charsmap_len = (size_t)(sub.end - sub.p);
            s->charsmap = malloc(s->charsmap_len + 1);
            if (!s->charsmap) return TOK_ERR_NOMEM;
            memcpy(s->charsmap, sub.p, s->charsmap_len);
        } else if (f >= 3 && f <= 5 && wt == 0) {
            uint64_t v;
            if (rd_varint(&r, &v)) return -1;
            int *dst = f == 3 ? &s->add_dummy_prefix : f == 4 ? &s->remove_extra_ws : &s->escape_ws;
            *dst = v != 0;
        } else if (rd_skip(&r, wt)) {
            return -1;
        }
    }
    return 0;
}

void spm_spec_free(spm_spec *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n; i++)
        free(s->piece[i]);
    free(s->piece);
    free(s->piece_len);
    free(s->score);
    free(s->type);
    free(s->charsmap);
    free(s->unk_surface);
    free(s->unk_piece);
    free(s->bos_piece);
    free(s->eos_piece);
    free(s->pad_piece);
    memset(s, 0, sizeof *s);
}

int spm_spec_parse(const uint8_t *buf, size_t len, spm_spec *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->add_dummy_prefix = s->remove_extra_ws = s->escape_ws = 1;
    rd r = {buf, buf + len};
    uint32_t f;
    int wt, rc = 0;
    /* pass 1: count the pieces so the arrays are allocated once */
    int32_t n = 0;
    while (r.p < r.end) {
        if (rd_key(&r, &f, &wt) || rd_skip(&r, wt)) goto corrupt;
        if (f == 1 && wt == 2) {
            if (n == INT32_MAX / 2) goto corrupt;
            n++;
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "not a SentencePiece model (no pieces)");
        return TOK_ERR_FORMAT;
    }
    s->piece = calloc((size_t)n, sizeof *s->piece);
    s->piece_len = calloc((size_t)n, sizeof *s->piece_len);
    s->score = calloc((size_t)n, sizeof *s->score);
    s->type = calloc((size_t)n, sizeof *s->type);
    if (!s->piece || !s->piece_len || !s->score || !s->type) {
        s->n = 0;
        spm_spec_free(s);
        snprintf(err, errlen, "out of memory");
        return TOK_ERR_NOMEM;
    }
    s->n = n;
    r.p = buf;
    int32_t i = 0;
    while (r.p < r.end) {
        rd sub;
        if (rd_key(&r, &f, &wt)) goto corrupt;
        if (wt != 2) {
            if (rd_skip(&r, wt)) goto corrupt;
            continue;
        }
        if (rd_bytes(&r, &sub)) goto corrupt;
        if (f == 1) {
            rc = parse_piece(sub, s, i);
            if (rc == -2 || rc == -3) {
                snprintf(err, errlen, "not a SentencePiece model (piece %d: %s)", (int)i,
                         rc == -2 ? "bad type" : "no string");
                spm_spec_free(s);
                return TOK_ERR_FORMAT;
            }
            if (rc == TOK_ERR_NOMEM) goto nomem;
            if (rc) goto corrupt;
            i++;
        } else if (f == 2) {
            rc = parse_trainer(sub, s, err, errlen);
            if (rc == TOK_ERR_FORMAT) {
                spm_spec_free(s);
                return rc;
            }
            if (rc == TOK_ERR_NOMEM) goto nomem;
            if (rc) goto corrupt;
        } else if (f == 3) {
            rc = parse_normalizer(sub, s);
            if (rc == TOK_ERR_NOMEM) goto nomem;
            if (rc) goto corrupt;
        }
    }
    for (i = 0; i < n; i++)
        if (s->piece_len[i] == 0) {
            snprintf(err, errlen, "not a SentencePiece model (empty piece %d)", (int)i);
            spm_spec_free(s);
            return TOK_ERR_FORMAT;
        }
    return 0;
corrupt:
    spm_spec_free(s);
    snprintf(err, errlen, "corrupt or truncated SentencePiece model (bad protobuf data)");
    return TOK_ERR_FORMAT;
nomem:
    spm_spec_free(s);
    snprintf(err, errlen, "out of memory");
    return TOK_ERR_NOMEM;
}
