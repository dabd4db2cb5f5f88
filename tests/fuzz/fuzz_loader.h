/* fuzz_loader.h - shared by the tokenizer-file harnesses (fuzz_spm_load, fuzz_tokjson_load):
 * each input is written to a tmpfs file and loaded twice, as a bare file and as the tokenizer
 * file of a T5 model folder (config.json with vocab_size 300, so sentinels and padding rows
 * are added). A load must fail cleanly (NULL, a message without internal paths) or give a
 * model that survives every tokenizer call (fuzz_tok.h). One harness per binary, so the
 * state here is per process. */
#ifndef T5SERVE_FUZZ_LOADER_H
#define T5SERVE_FUZZ_LOADER_H

#include "fuzz_tok.h"

static char plain_path[300], folder[300], folder_model[320];

/* Prepares the scratch files: PLAIN is the bare file's name, IN_FOLDER its name inside a T5 folder. */
static inline void fuzz_loader_init(const char *plain, const char *in_folder) {
    const char *d = fuzz_scratch();
    snprintf(plain_path, sizeof plain_path, "%s/%s", d, plain);
    snprintf(folder, sizeof folder, "%s/t5", d);
    snprintf(folder_model, sizeof folder_model, "%s/%s", folder, in_folder);
    mkdir(folder, 0700);
    char cfg[340];
    snprintf(cfg, sizeof cfg, "%s/config.json", folder);
    const char *json = "{\"model_type\": \"t5\", \"vocab_size\": 300}";
    fuzz_write(cfg, json, strlen(json));
}

static inline void load_one(const char *path, const uint8_t *data, size_t size) {
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

/* Loads data as the bare file, then as the file of the T5 folder. */
static inline void fuzz_loader_run(const uint8_t *data, size_t size) {
    fuzz_write(plain_path, data, size);
    load_one(plain_path, data, size);
    fuzz_write(folder_model, data, size);
    load_one(folder, data, size);
}

#endif
