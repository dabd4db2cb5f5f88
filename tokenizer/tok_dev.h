/* tok_dev.h - the tokenizer's developer interface: T5 PEGASUS's tokenizer in its two
 * stages, for the differential tools (jieba_cut), benchmarks (wp_bench), fuzzers and
 * white-box tests; tok.c reaches it through the WordPiece kind's table. No stability
 * promised; applications (server/, gen/) include tok.h only. Same error and ownership
 * rules as tok.h. A wp_jieba and a wp_model are immutable after loading: any number of
 * threads may use one at once. */
#ifndef T5SERVE_TOK_DEV_H
#define T5SERVE_TOK_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

/* jieba.c: jieba 0.42.1's `cut(sentence, HMM=False)` (accurate
 * mode, no HMM) in C, word for word the same as the Python reference: the prefix
 * dictionary from a `dict.txt`, the DAG of dictionary words, the maximum-probability route
 * over log frequencies (in double, as Python floats), its blocks of [U+4E00-U+9FD5 a-z A-Z
 * 0-9 + # & . _ % -] and the handling of runs of Latin letters and digits.
 * Not part of it: HMM (finalseg), cut_all, cut_for_search, user dictionaries, POS tags. */
typedef struct wp_jieba wp_jieba;

/* Loads a jieba dict.txt ("word freq [tag]" lines). path NULL = the dictionary built into
 * the library (jieba 0.42.1's own dict.txt, tokenizer/data/jieba_dict.txt).
 * Returns a dictionary the caller owns (wp_jieba_free), or NULL with err set. */
wp_jieba *wp_jieba_load(const char *path, char *err, size_t errlen);
/* The same from dict.txt bytes in memory (not kept after the call). */
wp_jieba *wp_jieba_load_mem(const char *data, size_t len, char *err, size_t errlen);
void wp_jieba_free(wp_jieba *j);

/* The built-in dict.txt bytes (jieba_dict_data.c), *len set; owned by the library. */
const char *wp_jieba_default_dict(size_t *len);

size_t wp_jieba_word_count(const wp_jieba *j); /* distinct words (prefix-only entries excluded) */

/* Segments text[0..len) (UTF-8; an invalid byte is a word of its own) and calls
 * emit(user, word, word_len) for each word in order; words point into text and together
 * cover it exactly. Returns 0, or -1 when out of memory. */
int wp_jieba_segment(const wp_jieba *j, const char *text, size_t len,
                     void (*emit)(void *user, const char *word, size_t len), void *user);

/* wordpiece.c: T5 PEGASUS's tokenizer (jieba segmentation without HMM, then BERT basic
 * tokenization + WordPiece over a `vocab.txt`), behind models of kind TOK_KIND_WORDPIECE. */
typedef struct wp_model wp_model;

/* vocab_path: a BERT vocab.txt (one token a line, id = line number).
 * dict_path: jieba's dict.txt ("word freq [tag]" lines); NULL = the default one.
 * Returns a model the caller owns (wp_model_free) or NULL with err set. */
wp_model *wp_model_load(const char *vocab_path, const char *dict_path, char *err, size_t errlen);
void wp_model_free(wp_model *m);

int32_t wp_vocab_size(const wp_model *m);
int32_t wp_token_id(const wp_model *m, const char *token); /* -1 if absent */
const char *wp_id_to_piece(const wp_model *m, int32_t id); /* owned by m; NULL if out of range */

/* [CLS] tokens [SEP] when add_special, byte spans into text (specials: empty spans).
 * Fills *out (caller frees with tok_encoding_free). */
int wp_encode(const wp_model *m, const char *text, size_t len, int add_special, tok_encoding *out, char *err,
              size_t errlen);

/* The fixture's decode rule: tokens joined by spaces, `##` glued, [PAD]/[CLS]/[SEP]/[MASK]
 * dropped, spaces next to CJK characters / CJK punctuation removed. Caller frees. */
char *wp_decode(const wp_model *m, const int32_t *ids, size_t n, size_t *out_len, char *err, size_t errlen);

/* jieba segmentation alone (for the differential test and the fixture's `jieba` field):
 * calls emit(user, word, len) for each word of text in order. Returns 0 or <0. */
int wp_jieba_cut(const wp_model *m, const char *text, size_t len,
                 void (*emit)(void *user, const char *word, size_t len), void *user);

#endif
