/* gen.h - the generation join library: one public header.
 *
 * What the server and the tools both need between the tokenizer (tok.h) and the
 * engine (t5.h) when they generate text:
 *   - the generation parameters as one table (JSON name = transformers' name, the
 *     `t5 generate` flag derived from it, the field of t5_gen_params, type, range);
 *   - the tokenizer-specific generation ids (T5 PEGASUS: [CLS] ... [SEP]);
 *   - encoder input ids for a text (`</s>` added, truncation, an input limit);
 *   - the text of a sequence being generated: stop strings, and the new bytes that
 *     are safe to hand out (whole UTF-8 characters, no possible stop-string start);
 *   - finish-reason names;
 *   - for embeddings: how a text to embed is truncated (the folder's max_seq_length, as
 *     sentence-transformers does) and the vectors printed as JSON number arrays that
 *     round-trip to the same float32 values (`t5 embed` and the server print the same).
 * What it is not: it knows no HTTP, parses no JSON, knows no configuration, no threads;
 * it holds no global state. Depends on engine/ and tokenizer/ only.
 * Errors: functions that can fail return a negative gen_status (NULL for pointers). */
#ifndef T5SERVE_GEN_H
#define T5SERVE_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "t5.h"
#include "tok.h"

typedef enum {
    GEN_OK = 0,
    GEN_ERR_TOKENIZE = -1, /* the tokenizer failed (its message in err) */
    GEN_ERR_TOO_LONG = -2, /* more tokens than the limit (*n says how many) */
    GEN_ERR_EMPTY = -3,    /* no tokens at all (a tokenizer that adds no `</s>`) */
    GEN_ERR_NOMEM = -4,
} gen_status;

/* ---- the generation parameters (params.c) ---- */
typedef enum {
    GEN_PARAM_INT = 1,   /* int field; an integer in [lo, hi] */
    GEN_PARAM_FLOAT,     /* float field; a number in [lo, hi] ((lo, hi] when lo_open) */
    GEN_PARAM_BOOL,      /* int field 0/1; a flag without a value on the command line */
    GEN_PARAM_SEED,      /* uint64_t field; an integer in [0, 2^63 - 1] */
    GEN_PARAM_EARLY_STOP /* int field: false 0, true 1, "never" 2 (transformers' early_stopping) */
} gen_param_type;

typedef struct {
    const char *name; /* transformers' name, the JSON field; `t5 generate --name-with-dashes` */
    size_t offset;    /* offsetof(t5_gen_params, field) */
    gen_param_type type;
    double lo, hi; /* the range a request may ask for (INT, FLOAT); a server may narrow hi */
    int lo_open;   /* FLOAT: lo itself excluded */
} gen_param;

/* The user-settable parameters, in the order they are checked. Adding one is a field in
 * t5_gen_params (engine) and one line in params.c; the server's request parser and the
 * `t5 generate` flags follow the table. */
extern const gen_param gen_params[];
extern const int gen_n_params;

/* The name of a T5_FINISH_* value: "eos", "length", "stop", "cancelled", "error". */
const char *gen_finish_name(int finish);

/* ---- inputs and the tokenizer's generation ids (input.c) ---- */
/* Where p leaves them to the model's config (-1), the ids the tokenizer implies:
 * T5 PEGASUS (a WordPiece tokenizer) starts from [CLS] and stops at [SEP], whatever its
 * config.json says. Other tokenizers change nothing. */
void gen_params_for_tokenizer(t5_gen_params *p, const tok_model *tok);

/* Encoder ids of text[0..len), as the model is given them: `</s>` added; truncate > 0
 * keeps the first truncate tokens and then the closing `</s>`; max_tokens > 0 is the
 * most allowed (else GEN_ERR_TOO_LONG with *n the count). *ids is malloc'd (caller frees). */
gen_status gen_input_ids(const tok_model *tok, const char *text, size_t len, int truncate, int max_tokens,
                         int32_t **ids, int *n, char *err, size_t errlen);

/* ---- embeddings: inputs and printed vectors (embed.c) ---- */
enum {
    GEN_TRUNCATE_FOLDER = -1, /* the folder's max_seq_length, when it gives one (the default) */
    GEN_TRUNCATE_LIMIT = -2,  /* that, and at most the server's input limit */
};
/* The `truncate` of gen_input_ids for a text to embed with e: GEN_TRUNCATE_FOLDER keeps at
 * most max_seq_length ids (the first max_seq_length - 1 tokens, then `</s>`, as the
 * sentence-transformers tokenizer truncates), nothing when the folder gives none;
 * GEN_TRUNCATE_LIMIT also at most max_tokens ids (> 0); a value >= 0 is returned as is
 * (0: no truncation; N: the first N tokens, then `</s>`). */
int gen_embed_truncate(const t5_embedder *e, int truncate, int max_tokens);

/* Room gen_put_floats needs for n values (9 significant digits, a comma each, brackets, NUL). */
#define GEN_FLOATS_CHARS(n) ((size_t)(n)*16 + 3)
/* Writes v[0..n) into p as a JSON array "[v0,v1,...]" of 9-significant-digit numbers
 * (each reads back as the same float32; a non-finite value as null), NUL-terminated.
 * p has GEN_FLOATS_CHARS(n) bytes; returns the end (the NUL). */
char *gen_put_floats(char *p, const float *v, int n);

/* ---- the text of a sequence being generated (text.c) ---- */
typedef struct {
    char **s;
    size_t *len;
    int n;
} gen_stops;

/* Adds a copy of s[0..len) (len > 0). 0, or GEN_ERR_NOMEM. */
int gen_stops_add(gen_stops *st, const char *s, size_t len);
void gen_stops_free(gen_stops *st);

typedef struct {
    int32_t *ids;
    int n, cap;
    char *text; /* decode of ids (cut at a stop string once found) */
    size_t len;
    size_t emitted; /* bytes already handed out as deltas */
    long stop_at;   /* byte offset of the first stop string, -1 none */
} gen_text;

void gen_text_init(gen_text *t);
/* Appends id; returns 1 when a stop string is now complete, 0 otherwise, GEN_ERR_NOMEM.
 * [*d_off, *d_off + *d_len) of t->text is the new text safe to hand out (whole UTF-8
 * characters that cannot be the start of a stop string). st may be NULL. */
int gen_text_push(gen_text *t, const tok_model *tok, const gen_stops *st, int32_t id, size_t *d_off,
                  size_t *d_len);
void gen_text_free(gen_text *t); /* and ready for reuse */
/* Decodes ids (those the tokenizer knows) and cuts at the first stop string
 * (*stopped = 1). Returns a string the caller frees, its length in *len (may be NULL). */
char *gen_text_final(const tok_model *tok, const int32_t *ids, int n, const gen_stops *st, int *stopped,
                     size_t *len);

#endif
