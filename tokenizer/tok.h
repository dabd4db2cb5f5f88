/* tok.h - the tokenizer library: one public header.
 *
 * Loads a tokenizer and turns UTF-8 text into token ids and back, exactly as the
 * reference implementations do:
 *   - Unigram (SentencePiece) from a `spiece.model` or a transformers `tokenizer.json`,
 *     bit-exact with SentencePiece 0.1.97 (Viterbi, n-best, sampling);
 *   - T5 PEGASUS's BERT `vocab.txt` applied after jieba segmentation.
 * What it is not: it knows no model weights, no HTTP and no JSON of requests.
 *
 * Thread safety: a tok_model is immutable after tok_model_load(); any number of
 * threads may encode/decode with one model at once. No global state.
 * Errors: functions that can fail return NULL or a negative tok_status and write a
 * NUL-terminated message (never containing the input text) into err[errlen]. */
#ifndef T5SERVE_TOK_H
#define T5SERVE_TOK_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_model tok_model;

typedef enum {
    TOK_OK = 0,
    TOK_ERR_IO = -1,     /* file missing or unreadable */
    TOK_ERR_FORMAT = -2, /* corrupt, truncated or foreign file */
    TOK_ERR_ARG = -3,    /* bad argument: id out of range, bad option value */
    TOK_ERR_NOMEM = -4,
} tok_status;

typedef enum {
    TOK_KIND_UNIGRAM = 1,  /* SentencePiece Unigram */
    TOK_KIND_WORDPIECE = 2 /* T5 PEGASUS: jieba + BERT WordPiece from vocab.txt */
} tok_kind;

/* Loads a tokenizer from PATH: a `spiece.model`, a `tokenizer.json`, a `vocab.txt`,
 * or a model folder holding one of them (spiece.model preferred over tokenizer.json;
 * vocab.txt only when neither exists). A folder with a `config.json` is a T5 model
 * folder and gets T5's conventions (100 sentinels, `</s>`, padding rows up to the
 * config's vocab_size); a bare file stays plain.
 * Returns a model the caller owns (free with tok_model_free), or NULL with err set. */
tok_model *tok_model_load(const char *path, char *err, size_t errlen);
void tok_model_free(tok_model *m);

tok_kind tok_model_kind(const tok_model *m);
/* Number of valid ids: ids are 0 .. tok_vocab_size()-1 (padding rows included). */
int32_t tok_vocab_size(const tok_model *m);
/* Special ids, -1 where the tokenizer has none. For WordPiece: bos = [CLS], eos = [SEP]. */
int32_t tok_eos_id(const tok_model *m);
int32_t tok_bos_id(const tok_model *m);
int32_t tok_pad_id(const tok_model *m);
int32_t tok_unk_id(const tok_model *m);
/* The piece string of an id (owned by the model; "" for padding rows), NULL if out of range. */
const char *tok_id_to_piece(const tok_model *m, int32_t id);

/* Unigram only: the score of a piece (0 for sentinels, padding rows, other kinds). */
float tok_piece_score(const tok_model *m, int32_t id);
/* The kind of an id: SentencePiece's piece types, then T5's additions; 0 if out of range. */
enum {
    TOK_PIECE_NORMAL = 1,
    TOK_PIECE_UNKNOWN = 2,
    TOK_PIECE_CONTROL = 3,
    TOK_PIECE_USER_DEFINED = 4,
    TOK_PIECE_UNUSED = 5,
    TOK_PIECE_BYTE = 6,
    TOK_PIECE_SENTINEL = 7,
    TOK_PIECE_PADDING = 8
};
int tok_piece_type(const tok_model *m, int32_t id);

typedef struct {
    int add_eos;    /* append `</s>` (WordPiece: wrap in [CLS] ... [SEP]) */
    int sample;     /* subword regularization (Unigram only) */
    float alpha;    /* inverse temperature of sampling; 0: uniform over all segmentations
                     * (over the n best with nbest_size > 1), as SentencePiece */
    int nbest_size; /* as SentencePiece: -1 (or any < 0): sample from the whole lattice;
                     * > 1: among the n best; 0 or 1: no sampling (Viterbi) */
    int one_pass;   /* with nbest_size < 0: draw with the one-pass Viterbi sampler instead
                     * of forward-filtering backward-sampling (same distribution) */
    uint64_t seed;  /* sampling seed: same seed, same answer. Any 64-bit value: the library
                     * hashes it before use, so related seeds (s, s + 1, s * K + line)
                     * give unrelated random streams */
} tok_encode_params;

/* add_eos 0, sample 0 (alpha 0.1, nbest_size -1, one_pass 0, seed 0 when sample is set) */
void tok_encode_default_params(tok_encode_params *p);

/* One encoding: n tokens, each with its byte span [start, end) in the original input. */
typedef struct {
    int32_t *ids;    /* [n] */
    int32_t *starts; /* [n] byte offsets into the input text */
    int32_t *ends;   /* [n] */
    size_t n;
    float score; /* n-best: the segmentation's score; else 0 */
} tok_encoding;

/* Encodes text[0..len) (any bytes; invalid UTF-8 handled as SentencePiece does).
 * On success fills *out, which the caller frees with tok_encoding_free. */
int tok_encode(const tok_model *m, const char *text, size_t len, const tok_encode_params *p,
               tok_encoding *out, char *err, size_t errlen);

/* The nbest (1..1024) best segmentations, best first, in SentencePiece's own order
 * (fewer when the text has fewer); each encoding's score is the segmentation's score.
 * T5 folders: text around sentinels is encoded piece by piece; the n-best varies the
 * first text piece (score: that piece's) and the rest keeps its best segmentation.
 * WordPiece: one answer (its only segmentation), score 0.
 * *out is a caller-owned array of *n_out encodings: free with tok_nbest_free. */
int tok_encode_nbest(const tok_model *m, const char *text, size_t len, int nbest, int add_eos,
                     tok_encoding **out, size_t *n_out, char *err, size_t errlen);

void tok_encoding_free(tok_encoding *e);
void tok_nbest_free(tok_encoding *list, size_t n);

/* Decodes ids[0..n) to UTF-8 text as the reference does. Returns a NUL-terminated
 * string the caller frees with free(), its length in *out_len (may be NULL);
 * NULL with err set when an id is outside 0 .. tok_vocab_size()-1. */
char *tok_decode(const tok_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err, size_t errlen);

#endif
