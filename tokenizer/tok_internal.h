/* tok_internal.h - internal to tokenizer/: what its files share (the file reader, UTF-8
 * lengths) and the pieces of the Unigram side (model description filled by the loaders,
 * the normalizer, the piece trie and the Unigram encoder). Nothing outside tokenizer/
 * includes this header; the public API is tok.h. Same error convention as tok.h:
 * functions that can fail return NULL or a negative tok_status and write a message
 * (never the input text) into err. */
#ifndef T5SERVE_TOK_INTERNAL_H
#define T5SERVE_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

/* ---- tok_file.c ---- */
/* Reads the whole file at path into *buf (NUL-terminated; caller frees), *len bytes.
 * what names the file in messages ("the tokenizer file"). Returns TOK_OK, TOK_ERR_IO
 * (cannot open or read it), TOK_ERR_FORMAT (2 GiB or more) or TOK_ERR_NOMEM. */
int tok_file_read(const char *path, const char *what, char **buf, size_t *len, char *err, size_t errlen);

/* The length of the valid UTF-8 character at s[0..len), len >= 1, or 0 when s starts
 * with an invalid sequence (SentencePiece's string_util::DecodeUTF8 +
 * IsValidDecodeUTF8: no overlongs, surrogates or code points past U+10FFFF). */
static inline size_t tok_utf8_len(const uint8_t *s, size_t len) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (len >= 2 && (c & 0xE0) == 0xC0) {
        uint32_t cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        if ((s[1] & 0xC0) == 0x80 && cp >= 0x80) return 2;
    } else if (len >= 3 && (c & 0xF0) == 0xE0) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && cp >= 0x800 && (cp < 0xD800 || cp >= 0xE000))
            return 3;
    } else if (len >= 4 && (c & 0xF8) == 0xF0) {
        uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                      ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 && cp >= 0x10000 &&
            cp <= 0x10FFFF)
            return 4;
    }
    return 0;
}

/* ModelProto.SentencePiece.Type */
enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4, SPM_UNUSED = 5, SPM_BYTE = 6 };

/* What a loader (spm_proto.c, tok_json.c) extracts from a model file: the vocabulary
 * and the few trainer/normalizer flags the encoder needs. Owns every pointer. */
typedef struct {
    int32_t n;           /* number of pieces */
    char **piece;        /* [n] NUL-terminated piece strings (may contain no NUL) */
    uint32_t *piece_len; /* [n] */
    float *score;        /* [n] */
    uint8_t *type;       /* [n] SPM_* */
    int byte_fallback, treat_ws_suffix;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    uint8_t *charsmap; /* precompiled charsmap blob, NULL when none */
    size_t charsmap_len;
    char *unk_surface;                                   /* NULL = " \xE2\x81\x87 " */
    char *unk_piece, *bos_piece, *eos_piece, *pad_piece; /* NULL = SentencePiece defaults */
} spm_spec;

void spm_spec_free(spm_spec *s);
/* Parses a serialized ModelProto (spm_proto.c). Fills *s (caller frees with spm_spec_free). */
int spm_spec_parse(const uint8_t *buf, size_t len, spm_spec *s, char *err, size_t errlen);
/* Parses a transformers tokenizer.json with a Unigram model (tok_json.c). */
int spm_spec_parse_json(const char *buf, size_t len, spm_spec *s, char *err, size_t errlen);

/* ---- trie.c: a byte-wise double-array trie mapping byte strings to int32 values ---- */
typedef struct {
    int32_t base, check, value; /* value -1: no key ends here */
} trie_node;
typedef struct {
    trie_node *node; /* [size] */
    int32_t size;
} trie;
/* keys[i] of length lens[i] -> values[i]; keys need not be sorted; duplicates keep the first. */
int trie_build(trie *t, char *const *keys, const uint32_t *lens, const int32_t *values, int32_t n);
void trie_free(trie *t);
/* Value of the exact key, or -1. */
int32_t trie_find(const trie *t, const char *key, size_t len);
/* Longest key that is a prefix of s[0..len): its length (0 = none), value in *value. */
size_t trie_longest_prefix(const trie *t, const char *s, size_t len, int32_t *value);

/* ---- normalizer.c: SentencePiece's normalizer ---- */
typedef struct tok_normalizer tok_normalizer;
/* Builds from spec (charsmap copied) and the user-defined pieces (matched first, never
 * normalized). Returns NULL with err set on a corrupt charsmap. */
tok_normalizer *norm_create(const spm_spec *s, char *err, size_t errlen);
void norm_free(tok_normalizer *n);

/* A growable byte buffer with its normalized->original map, reused across calls. */
typedef struct {
    char *s;      /* [len] normalized text */
    int32_t *n2o; /* [len + 1] original byte offset of every normalized byte */
    size_t len, cap;
} norm_buf;
void norm_buf_free(norm_buf *b);
/* Normalizes in[0..len) into *out (resized as needed). Returns 0 or TOK_ERR_NOMEM. */
int norm_run(const tok_normalizer *n, const char *in, size_t len, norm_buf *out);

/* ---- unigram.c: the Unigram model (piece trie, Viterbi, n-best, sampling) ---- */
typedef struct unigram unigram;
unigram *unigram_create(const spm_spec *s, char *err, size_t errlen);
void unigram_free(unigram *u);

/* One token of a raw segmentation: id and byte span in the normalized text. */
typedef struct {
    int32_t id, begin, end;
} uni_piece;
typedef struct {
    uni_piece *p;
    size_t n, cap;
} uni_path;
void uni_path_free(uni_path *p);

/* Best segmentation as SentencePiece's default (optimized) encoder finds it. */
int unigram_viterbi(const unigram *u, const char *s, size_t len, uni_path *out);
/* The nbest best segmentations in SentencePiece's A* order; *paths[*n_out], scores. */
int unigram_nbest(const unigram *u, const char *s, size_t len, int nbest, uni_path **paths, float **scores,
                  size_t *n_out);
/* Samples one segmentation with probability prop. to exp(alpha * score).
 * method 0: forward-filtering backward-sampling; 1: one-pass Viterbi sampling. */
int unigram_sample(const unigram *u, const char *s, size_t len, float alpha, int method, uint64_t *rng,
                   uni_path *out);
/* Samples among the nbest best with probability prop. to exp(alpha * score). */
int unigram_sample_nbest(const unigram *u, const char *s, size_t len, int nbest, float alpha, uint64_t *rng,
                         uni_path *out);

/* Random numbers for sampling: a splitmix64 stream. uni_rng_init hashes a caller's seed
 * into the start state (related seeds, unrelated streams); uni_rand draws a uniform
 * double in [0, 1). */
uint64_t uni_rng_init(uint64_t seed);
double uni_rand(uint64_t *state);

#endif
