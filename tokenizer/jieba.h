/* jieba.h - internal to tokenizer/: jieba 0.42.1's `cut(sentence, HMM=False)` (accurate
 * mode, no HMM) in C, word for word the same as the Python reference: the prefix
 * dictionary from a `dict.txt`, the DAG of dictionary words, the maximum-probability route
 * over log frequencies (in double, as Python floats), its blocks of [U+4E00-U+9FD5 a-z A-Z
 * 0-9 + # & . _ % -] and the handling of runs of Latin letters and digits.
 * Not part of it: HMM (finalseg), cut_all, cut_for_search, user dictionaries, POS tags.
 * A wp_jieba is immutable after loading: any number of threads may segment at once. */
#ifndef T5SERVE_JIEBA_H
#define T5SERVE_JIEBA_H

#include <stddef.h>

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

#endif
