/* fuzz_models.h - the fixture tokenizers the encode and decode harnesses share, loaded once
 * per process: spm_a.model (NFKC, bare file), the t5-tiny-gated and t5-tiny-relu folders (T5
 * sentinels, byte fallback, user-defined <sep>), the relu folder's tokenizer.json, and the
 * T5 PEGASUS vocab.txt (jieba + WordPiece). A missing fixture ends the process with a message. */
#ifndef T5SERVE_FUZZ_MODELS_H
#define T5SERVE_FUZZ_MODELS_H

#include "fuzz_tok.h"
#include "tok_dev.h"

#define N_MODELS 4
static tok_model *models[N_MODELS];
static wp_model *pegasus;

static inline tok_model *fuzz_load_fixture(const char *rel) {
    char err[256];
    tok_model *m = tok_model_load(fuzz_fixture(rel), err, sizeof err);
    if (!m) {
        fprintf(stderr, "fuzz: cannot load %s: %s (set FIXTURES)\n", rel, err);
        exit(1);
    }
    return m;
}

static inline void fuzz_load_models(void) {
    models[0] = fuzz_load_fixture("tokenizer/spm_a.model");
    models[1] = fuzz_load_fixture("models/t5-tiny-gated");
    models[2] = fuzz_load_fixture("models/t5-tiny-relu");
    models[3] = fuzz_load_fixture("models/t5-tiny-relu/tokenizer.json");
    char err[256];
    pegasus = wp_model_load(fuzz_fixture("models/t5-tiny-pegasus/vocab.txt"), NULL, err, sizeof err);
    if (!pegasus) {
        fprintf(stderr, "fuzz: cannot load the pegasus vocab.txt: %s\n", err);
        exit(1);
    }
}

#endif
