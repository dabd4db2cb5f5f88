/* fuzz_tokjson_load.c - libFuzzer harness for the `tokenizer.json` loader (tokenizer/tok_json.c
 * behind tok_model_load). Each input is written to a tmpfs file and loaded twice: as a
 * bare file and as the tokenizer.json of a T5 model folder (config.json with vocab_size 300,
 * so sentinels and padding rows are added). A load must fail cleanly (NULL, a message)
 * or give a model that survives every tokenizer call (fuzz_tok.h).
 * What it is not: a check of the loaded vocabulary against SentencePiece. */
#include "fuzz_tok.h"

static char plain_path[300], folder[300], folder_model[320];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *d = fuzz_scratch();
    snprintf(plain_path, sizeof plain_path, "%s/plain.json", d);
    snprintf(folder, sizeof folder, "%s/t5", d);
    snprintf(folder_model, sizeof folder_model, "%s/tokenizer.json", folder);
    mkdir(folder, 0700);
    char cfg[340];
    snprintf(cfg, sizeof cfg, "%s/config.json", folder);
    const char *json = "{\"model_type\": \"t5\", \"vocab_size\": 300}";
    fuzz_write(cfg, json, strlen(json));
    return 0;
}

static void load_one(const char *path, const uint8_t *data, size_t size) {
    char err[256];
    memset(err, 'x', sizeof err);
    tok_model *m = tok_model_load(path, err, sizeof err);
    if (!m) {
        fuzz_check_err(err, sizeof err);
        fuzz_check_no_path(err, data, size); /* no internal paths in messages */
        return;
    }
    fuzz_exercise_model(m);
    tok_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(plain_path, data, size);
    load_one(plain_path, data, size);
    fuzz_write(folder_model, data, size);
    load_one(folder, data, size);
    return 0;
}
