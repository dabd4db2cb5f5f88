/* fuzz_embed_config.c - libFuzzer harness for the sentence-transformers folder reader
 * (engine/embed.c behind t5_embedder_load: modules.json, sentence_bert_config.json, the
 * Pooling and Dense configs and the Dense weights) and the pipeline it builds.
 * Input: five files, each but the last a little-endian uint16 length then its bytes:
 * modules.json, sentence_bert_config.json, 1_Pooling/config.json, 2_Dense/config.json,
 * then 2_Dense/model.safetensors (the rest; an empty file is left out). They are written into a tmpfs model
 * folder and read for a 16-feature encoder. A load must fail cleanly (NULL, a message naming no internal
 * path) or give an embedder whose size and sentence embeddings (default and overridden pooling /
 * normalisation) compute without a crash. Seeds: tests/fuzz/mk_embed_seeds.py. What it is not: a numerical
 * check (tests/embed_check.py). */
#include "fuzz_util.h"
#include "t5.h"

enum { D = 16, FILES = 5 };
static char folder[300], paths[FILES][360];
static const char *const names[FILES] = {"modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
                                         "2_Dense/config.json", "2_Dense/model.safetensors"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char sub[340];
    snprintf(folder, sizeof folder, "%s/st", fuzz_scratch());
    mkdir(folder, 0700);
    snprintf(sub, sizeof sub, "%s/1_Pooling", folder), mkdir(sub, 0700);
    snprintf(sub, sizeof sub, "%s/2_Dense", folder), mkdir(sub, 0700);
    snprintf(sub, sizeof sub, "%s/3_Normalize", folder), mkdir(sub, 0700);
    for (int i = 0; i < FILES; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s", folder, names[i]);
    return 0;
}

static void exercise(const t5_embedder *e) {
    char err[256];
    float h[3 * D], out[1 << 12];
    for (int i = 0; i < 3 * D; i++)
        h[i] = (float)((i * 37) % 11) - 5.0f;
    const t5_embed_params ps[4] = {{-1, -1}, {-1, 0}, {T5_POOL_MEAN, 1}, {T5_POOL_CLS | T5_POOL_LAST, -1}};
    for (int k = 0; k < 4; k++) {
        int dim = t5_embedder_dim(e, &ps[k], err, sizeof err);
        if (dim < 0) {
            fuzz_check_err(err, sizeof err);
            continue;
        }
        FUZZ_CHECK(dim >= 1);
        if (dim > (int)(sizeof out / sizeof *out)) continue;
        for (int n = 1; n <= 3; n++)
            FUZZ_CHECK(t5_embed_sentence(e, &ps[k], h, n, out, err, sizeof err) == 0);
    }
    char desc[512];
    t5_embedder_describe(e, desc, sizeof desc);
    FUZZ_CHECK(memchr(desc, 0, sizeof desc) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data;
    size_t left = size;
    for (int i = 0; i < FILES; i++) {
        size_t L = left;
        if (i < FILES - 1) {
            L = left >= 2 ? (size_t)p[0] | (size_t)p[1] << 8 : 0;
            p += left >= 2 ? 2 : left, left -= left >= 2 ? 2 : left;
            if (L > left) L = left;
        }
        if (L == 0)
            unlink(paths[i]); /* an empty file stands for an absent one */
        else
            fuzz_write(paths[i], p, L);
        p += L, left -= L;
    }
    char err[256];
    memset(err, 'x', sizeof err);
    t5_embedder *e = t5_embedder_load(folder, D, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_embed_config: %s\n", e ? "loaded" : err);
    if (!e) {
        fuzz_check_err(err, sizeof err);
        fuzz_check_no_path(err, data, size);
        return 0;
    }
    exercise(e);
    t5_embedder_free(e);
    return 0;
}
