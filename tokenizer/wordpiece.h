/* wordpiece.h - internal to tokenizer/: T5 PEGASUS's tokenizer (jieba segmentation
 * without HMM, then BERT basic tokenization + WordPiece over a `vocab.txt`).
 * tok.c dispatches to it for models of kind TOK_KIND_WORDPIECE; nothing outside
 * tokenizer/ includes this header. Same error and ownership rules as tok.h. */
#ifndef T5SERVE_WORDPIECE_H
#define T5SERVE_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "tok.h"

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
