/* fuzz_torch_load.c - libFuzzer harness for the torch checkpoint reader (engine/torch.c,
 * zip.c and the restricted unpickler pickle.c, behind st_open_dir). Input: the bytes of a
 * pytorch_model.bin, written into a tmpfs folder and opened. An open must fail cleanly
 * (NULL, a message naming no internal path) or give a set whose every tensor's bytes can
 * be read (ASan checks they lie inside the mapping or copy) with a consistent byte count.
 * Seeds: real torch.save files, tests/fuzz/mk_torch_seeds.py.
 * What it is not: a model check (fuzz_model_load builds models). */
#include "fuzz_util.h"
#include "t5_dev.h"

static char folder[300], bin_path[340];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(folder, sizeof folder, "%s/model", fuzz_scratch());
    mkdir(folder, 0700);
    snprintf(bin_path, sizeof bin_path, "%s/pytorch_model.bin", folder);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(bin_path, data, size);
    char err[256];
    memset(err, 'x', sizeof err);
    st_set *s = st_open_dir(folder, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_torch_load: %s\n", s ? st_format(s) : err);
    if (!s) {
        fuzz_check_err(err, sizeof err);
        fuzz_check_no_path(err, data, size);
        return 0;
    }
    unsigned sum = 0;
    for (int i = 0; i < st_count(s); i++) {
        const st_tensor *t = st_get(s, i);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= (uint64_t)t->shape[d];
        FUZZ_CHECK(t->nbytes == numel * st_elsize(t->dtype));
        FUZZ_CHECK(st_elsize(t->dtype) && (uintptr_t)t->data % st_elsize(t->dtype) == 0);
        const unsigned char *b = t->data;
        if (t->nbytes) sum += b[0] + b[t->nbytes - 1] + b[t->nbytes / 2];
    }
    FUZZ_CHECK(st_format(s)[0] == 'p');
    (void)sum;
    st_close(s);
    return 0;
}
