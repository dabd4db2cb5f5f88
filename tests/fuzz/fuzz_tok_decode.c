/* fuzz_tok_decode.c - libFuzzer harness: arbitrary id sequences through tok_decode (and
 * the T5 PEGASUS WordPiece decoder). Input: byte 0 picks the model, byte 1 bit 0 says how
 * the rest becomes ids: raw little-endian int32s (mostly out of range), or uint16s mapped
 * onto [-2, vocab + 2) so that nearly all are valid (controls, unknown, byte pieces,
 * sentinels, padding rows). Decode must give a string iff every id is in range, else NULL
 * and a short message. What it is not: a comparison with SentencePiece (the detok goldens). */
#include "fuzz_models.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_load_models();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    unsigned which = data[0] % (N_MODELS + 1);
    int raw = data[1] & 1;
    int32_t vocab = which == N_MODELS ? wp_vocab_size(pegasus) : tok_vocab_size(models[which]);
    data += 2, size -= 2;
    size_t n = raw ? size / 4 : size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    int all_valid = 1;
    for (size_t i = 0; i < n; i++) {
        if (raw) {
            uint32_t u = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                         (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
            ids[i] = (int32_t)u;
        } else {
            uint32_t u = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
            ids[i] = (int32_t)(u % (uint32_t)(vocab + 4)) - 2;
        }
        if (ids[i] < 0 || ids[i] >= vocab) all_valid = 0;
    }
    char err[256];
    memset(err, 'x', sizeof err);
    size_t out_len = (size_t)-1;
    char *s = which == N_MODELS ? wp_decode(pegasus, ids, n, &out_len, err, sizeof err)
                                : tok_decode(models[which], ids, n, &out_len, err, sizeof err);
    if (all_valid) {
        FUZZ_CHECK(s != NULL);
        FUZZ_CHECK(strlen(s) <= out_len);
    } else {
        FUZZ_CHECK(s == NULL);
        fuzz_check_err(err, sizeof err);
        FUZZ_CHECK(strlen(err) < 200);
    }
    free(s);
    free(ids);
    return 0;
}
