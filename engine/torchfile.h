/* torchfile.h - the two parsers under torch.c (private to engine/; the set they fill is in
 * t5_dev.h): a zip reader for
 * torch's zip checkpoints (zip.c) and a restricted unpickler that builds a state dict's
 * values without running anything (pickle.c).
 * What it is not: a general zip or pickle library. The zip reader lists entries and
 * inflates; the unpickler knows protocol 2-5 opcodes and exactly the globals a state dict
 * of float tensors needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter, torch.FloatStorage / HalfStorage / BFloat16Storage):
 * any other global is an error naming it, and no global is ever called. */
#ifndef T5SERVE_TORCHFILE_H
#define T5SERVE_TORCHFILE_H

#include <stddef.h>
#include <stdint.h>

#include "t5_dev.h"

/* ---------------- zip (zip.c) ---------------- */

typedef struct {
    const char *name; /* name_len bytes inside the mapping, not NUL-terminated */
    size_t name_len;
    int method;        /* 0 stored, 8 deflated */
    uint64_t csize;    /* bytes in the file */
    uint64_t usize;    /* bytes uncompressed */
    uint64_t data_off; /* offset of the entry's bytes in the file */
} zip_entry;

/* Lists the entries of the zip archive buf[size] (ZIP64 too). *out is allocated (caller
 * frees). Every entry's bytes lie inside buf. 0 or <0 with err set. */
int zip_list(const unsigned char *buf, size_t size, zip_entry **out, int *n, char *err, size_t errlen);
/* Inflates a deflated entry into dst, which holds e->usize + 1 bytes (the spare one lets
 * inflate reach the end of an empty entry). 0 or <0 with err set. */
int zip_inflate(const unsigned char *buf, const zip_entry *e, void *dst, char *err, size_t errlen);

/* ---------------- restricted unpickler (pickle.c) ---------------- */

enum {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_BIGINT, /* an integer wider than 64 bits: its little-endian bytes in s[n] */
    PK_FLOAT,
    PK_STR, /* str or bytes: s[n], pointing into the pickle */
    PK_TUPLE,
    PK_LIST,
    PK_DICT, /* items: key, value, key, value, ... */
    PK_GLOBAL,
    PK_STORAGE, /* what the persistent-id callback made of a pid: i = its index */
    PK_TENSOR
};

/* The allowed globals (PK_GLOBAL's i). */
enum { PK_G_ODICT = 1, PK_G_REBUILD_TENSOR, PK_G_REBUILD_PARAM, PK_G_STORAGE };

typedef struct {
    int storage; /* the PK_STORAGE index */
    int64_t offset;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t stride[ST_MAX_DIMS];
} pk_tensor;

typedef struct pk_val pk_val;
struct pk_val {
    int kind;
    int dtype; /* PK_GLOBAL of a storage type: ST_F32 / ST_F16 / ST_BF16 */
    int64_t i;
    double f;
    const char *s;
    size_t n;
    pk_val **items; /* PK_TUPLE, PK_LIST: n_items; PK_DICT: 2 * pairs */
    size_t n_items, cap;
    pk_tensor *t;
};

typedef struct pk_ctx pk_ctx;

/* Called for each persistent id (BINPERSID): returns a storage index >= 0 for the
 * PK_STORAGE value, or <0 with err set. */
typedef int (*pk_persid_fn)(void *user, const pk_val *pid, char *err, size_t errlen);

/* A context holds every value of the pickles parsed with it (freed by pk_ctx_free). */
pk_ctx *pk_ctx_create(pk_persid_fn persid, void *user);
void pk_ctx_free(pk_ctx *c);

/* Parses one pickle from buf[len]; *used = its bytes (through STOP), *out = its value
 * (owned by c). The values' strings point into buf. 0 or <0 with err set. */
int pk_parse(pk_ctx *c, const unsigned char *buf, size_t len, size_t *used, pk_val **out, char *err,
             size_t errlen);

/* Helpers for reading values: the dict entry whose key is the string KEY (NULL if none). */
const pk_val *pk_dict_get(const pk_val *d, const char *key);
/* 1 when v is a string equal to s. */
int pk_str_is(const pk_val *v, const char *s);

#endif
