/* fuzz_tok.h - shared by the tokenizer harnesses: runs a loaded tok_model through every
 * public call (piece queries, encode, n-best, both samplers, decode) on a few fixed texts
 * and checks the results' invariants (ids in range, byte spans inside the input, decode
 * of any in-range id succeeds). A model that loads must be usable without a crash.
 * What it is not: a correctness test (the fixture suites compare against SentencePiece). */
#ifndef T5SERVE_FUZZ_TOK_H
#define T5SERVE_FUZZ_TOK_H

#include "fuzz_util.h"
#include "tok.h"

/* Checks one encoding of text[0..len) from m. */
static inline void fuzz_check_encoding(const tok_model *m, const tok_encoding *e, size_t len) {
    int32_t v = tok_vocab_size(m);
    FUZZ_CHECK(e->n == 0 || (e->ids && e->starts && e->ends));
    for (size_t i = 0; i < e->n; i++) {
        FUZZ_CHECK(e->ids[i] >= 0 && e->ids[i] < v);
        FUZZ_CHECK(e->starts[i] >= 0 && e->starts[i] <= e->ends[i] && (size_t)e->ends[i] <= len);
    }
    char err[256];
    size_t out_len = 0;
    char *s = tok_decode(m, e->ids, e->n, &out_len, err, sizeof err);
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(strlen(s) <= out_len);
    free(s);
}

/* Encodes text[0..len) every way tok.h offers; sel picks parameters. */
static inline void fuzz_encode_all(const tok_model *m, const char *text, size_t len, unsigned sel) {
    char err[256];
    tok_encode_params p;
    tok_encode_default_params(&p);
    p.add_eos = sel & 1;
    tok_encoding e;
    int rc = tok_encode(m, text, len, &p, &e, err, sizeof err);
    FUZZ_CHECK(rc == 0);
    fuzz_check_encoding(m, &e, len);
    tok_encoding_free(&e);

    if (tok_model_kind(m) != TOK_KIND_UNIGRAM) return;
    static const int nb_choice[] = {1, 2, 4, 17};
    int nbest = nb_choice[(sel >> 1) & 3];
    tok_encoding *list = NULL;
    size_t n = 0;
    rc = tok_encode_nbest(m, text, len, nbest, sel & 1, &list, &n, err, sizeof err);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(n <= (size_t)nbest);
    for (size_t k = 0; k < n; k++)
        fuzz_check_encoding(m, &list[k], len);
    tok_nbest_free(list, n);

    static const int sz_choice[] = {-1, 0, 1, 3};
    p.sample = 1;
    p.alpha = (sel & 16) ? 0.1f : 1.0f;
    p.nbest_size = sz_choice[(sel >> 3) & 3];
    p.one_pass = (sel >> 5) & 1;
    p.seed = sel;
    rc = tok_encode(m, text, len, &p, &e, err, sizeof err);
    FUZZ_CHECK(rc == 0);
    fuzz_check_encoding(m, &e, len);
    tok_encoding_free(&e);
}

/* Everything a freshly loaded (possibly hostile) model must survive. */
static inline void fuzz_exercise_model(const tok_model *m) {
    int32_t v = tok_vocab_size(m);
    FUZZ_CHECK(v >= 0);
    FUZZ_CHECK(tok_id_to_piece(m, -1) == NULL && tok_id_to_piece(m, v) == NULL);
    int32_t specials[] = {tok_eos_id(m), tok_bos_id(m), tok_pad_id(m), tok_unk_id(m)};
    for (int i = 0; i < 4; i++)
        FUZZ_CHECK(specials[i] >= -1 && specials[i] < v);
    int32_t ids[512];
    size_t n = 0;
    for (int32_t id = 0; id < v; id++) {
        if (id >= 256 && id < v - 256) id = v - 256;
        FUZZ_CHECK(tok_id_to_piece(m, id) != NULL);
        int t = tok_piece_type(m, id);
        FUZZ_CHECK(t >= TOK_PIECE_NORMAL && t <= TOK_PIECE_PADDING);
        (void)tok_piece_score(m, id);
        ids[n++] = id;
    }
    char err[256];
    size_t out_len;
    char *s = tok_decode(m, ids, n, &out_len, err, sizeof err);
    FUZZ_CHECK(s != NULL);
    free(s);
    int32_t bad = v;
    FUZZ_CHECK(tok_decode(m, &bad, 1, &out_len, err, sizeof err) == NULL);
    fuzz_check_err(err, sizeof err);

    static const char *texts[] = {"Hello world, this is a test.",
                                  "  a \t b  \n",
                                  "\xe4\xb8\xad\xe6\x96\x87 \xe3\x83\x86\xe3\x82\xad",
                                  "<extra_id_0> x <extra_id_99><extra_id_5>",
                                  "\xff\xfe\x80\x61\x62\x63\xc3",
                                  "",
                                  "<sep><s></s><unk>",
                                  "\xef\xbd\x81\xef\xbd\x82\xe2\x91\xa0 \xf0\x9f\x98\x80 e\xcc\x81"};
    for (unsigned i = 0; i < sizeof texts / sizeof *texts; i++)
        fuzz_encode_all(m, texts[i], strlen(texts[i]), i * 7);
}

#endif
