/* fuzz_model_load.c - libFuzzer harness for the engine's checkpoint loader
 * (engine/config.c + engine/safetensors.c + engine/model.c behind t5_model_load).
 * Input: a little-endian uint16 L, then L bytes of config.json, then the bytes of
 * model.safetensors; both are written into a tmpfs model folder and loaded. A load
 * must fail cleanly (NULL, a message naming no file path) or give a model that encodes
 * and generates a few tokens without a crash. Seeds: tests/fuzz/mk_model_seeds.py.
 * What it is not: a numerical check (the engine goldens do that). */
#include "fuzz_util.h"
#include "t5.h"

static char folder[300], cfg_path[340], st_path[340];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(folder, sizeof folder, "%s/model", fuzz_scratch());
    mkdir(folder, 0700);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", folder);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", folder);
    return 0;
}

static void exercise(const t5_model *m) {
    const t5_config *c = t5_model_config(m);
    FUZZ_CHECK(c->vocab_size > 0 && c->d_model > 0);
    char err[256];
    int32_t ids[3] = {0, c->vocab_size - 1, c->eos_token_id < c->vocab_size ? c->eos_token_id : 0};
    float *out = malloc(sizeof(float) * 3 * (size_t)c->d_model);
    FUZZ_CHECK(out != NULL);
    (void)t5_encode(m, ids, 3, out, 1, err, sizeof err);
    free(out);
    t5_gen_params p;
    t5_gen_default_params(&p);
    p.max_new_tokens = 3;
    t5_result r;
    if (t5_generate(m, ids, 3, &p, 1, &r, err, sizeof err) == 0) {
        FUZZ_CHECK(r.n_seqs >= 1);
        for (int i = 0; i < r.n_seqs; i++)
            for (int k = 0; k < r.seqs[i].n; k++)
                FUZZ_CHECK(r.seqs[i].ids[k] >= 0 && r.seqs[i].ids[k] < c->vocab_size);
        t5_result_free(&r);
    }
    p.num_beams = 2;
    p.num_return_sequences = 2;
    if (t5_generate(m, ids, 3, &p, 1, &r, err, sizeof err) == 0) t5_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t L = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2, size -= 2;
    if (L > size) L = size;
    fuzz_write(cfg_path, data, L);
    fuzz_write(st_path, data + L, size - L);
    char err[256];
    memset(err, 'x', sizeof err);
    t5_model *m = t5_model_load(folder, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_model_load: %s\n", m ? "loaded" : err);
    if (!m) {
        fuzz_check_err(err, sizeof err);
        fuzz_check_no_path(err, data - 2, size + 2); /* no internal paths in messages */
        return 0;
    }
    exercise(m);
    t5_model_free(m);
    return 0;
}
