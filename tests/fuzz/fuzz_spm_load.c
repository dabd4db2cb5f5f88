/* fuzz_spm_load.c - libFuzzer harness for the `spiece.model` loader (tokenizer/spm_proto.c
 * behind tok_model_load), loaded as a bare file and inside a T5 folder (fuzz_loader.h).
 * What it is not: a check of the loaded vocabulary against SentencePiece. */
#include "fuzz_loader.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_loader_init("plain.model", "spiece.model");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_loader_run(data, size);
    return 0;
}
