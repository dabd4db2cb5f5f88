/* fuzz_tok_encode.c - libFuzzer harness: arbitrary bytes through the tokenizer's encoders.
 * Input: byte 0 picks the model, byte 1 the call's parameters (add_eos, n-best size,
 * sampling alpha / nbest_size / one-pass), the rest is the text (any bytes: invalid UTF-8,
 * NULs, sentinels). Models, loaded once: spm_a.model (NFKC, bare file), the t5-tiny-gated
 * and t5-tiny-relu folders (T5 sentinels, byte fallback, user-defined <sep>), the relu
 * folder's tokenizer.json, and the T5 PEGASUS vocab.txt (jieba + WordPiece).
 * Every call must succeed with ids in range, byte spans inside the input, and a decode
 * of the result must succeed. What it is not: a comparison with SentencePiece. */
#include "fuzz_models.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_load_models();
    return 0;
}

static void encode_pegasus(const char *text, size_t len, unsigned sel) {
    char err[256];
    tok_encoding e;
    FUZZ_CHECK(wp_encode(pegasus, text, len, sel & 1, &e, err, sizeof err) == 0);
    int32_t v = wp_vocab_size(pegasus);
    for (size_t i = 0; i < e.n; i++) {
        FUZZ_CHECK(e.ids[i] >= 0 && e.ids[i] < v);
        FUZZ_CHECK(e.starts[i] >= 0 && e.starts[i] <= e.ends[i] && (size_t)e.ends[i] <= len);
    }
    size_t out_len;
    char *s = wp_decode(pegasus, e.ids, e.n, &out_len, err, sizeof err);
    FUZZ_CHECK(s != NULL);
    free(s);
    tok_encoding_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    unsigned which = data[0] % (N_MODELS + 1), sel = data[1];
    /* a private copy of exactly the text's bytes, so ASan sees any over-read */
    size_t len = size - 2;
    char *text = malloc(len ? len : 1);
    memcpy(text, data + 2, len);
    if (which == N_MODELS)
        encode_pegasus(text, len, sel);
    else
        fuzz_encode_all(models[which], text, len, sel);
    free(text);
    return 0;
}
