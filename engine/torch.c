/* torch.c - the reader of torch checkpoints (pytorch_model.bin) behind the stored-tensor set (t5_dev.h), with
 * no torch: both formats torch.save writes.
 *   zip (torch >= 1.6): a zip (zip.c) of PREFIX/data.pkl, PREFIX/data/KEY (one entry per
 *     storage, raw little-endian values), PREFIX/version and, since torch 2.1,
 *     PREFIX/byteorder. A stored entry at a 64-byte-aligned offset (what torch writes) is
 *     used in place from the read-only mapping, like safetensors data; a deflated or
 *     misaligned one is copied, with a note.
 *   legacy (_use_new_zipfile_serialization=False): a sequence of pickles (the magic
 *     number, the protocol version 1001, the sys info, the object, the sorted storage
 *     keys), then each storage as an int64 element count and its raw bytes, used in
 *     place where aligned to the element size, else copied.
 * data.pkl / the object is read by the restricted unpickler (pickle.c): storages come
 * from persistent ids ('storage', torch.XStorage, key, location, numel[, view]), tensors
 * from _rebuild_tensor_v2 (storage, offset, size, stride). Tensors sharing a storage
 * (shared / embed_tokens) point at the same bytes; a view with a row-major layout
 * points into its storage at its offset; any other layout is copied. Every view is
 * bounds-checked against its storage.
 * What it is not: a writer; storages of other dtypes are refused by the unpickler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torchfile.h"

#define TORCH_MAX_STORAGES (1 << 14)
#define TORCH_MAX_NUMEL (1ULL << 40)
#define TORCH_MAX_PICKLE (1ULL << 30)

typedef struct {
    const char *key; /* in the pickle */
    size_t key_len;
    int dtype;
    uint64_t numel;
    const unsigned char *data; /* numel values once resolved */
} storage;

typedef struct {
    st_set *s;
    const char *label;
    int legacy;
    storage *st; /* [n] */
    int n, cap;
    int copied, views; /* storages copied, strided views copied */
} tctx;

static const char *dtype_name(int dt) {
    return dt == ST_F32 ? "F32" : dt == ST_F16 ? "F16" : "BF16";
}

/* The persistent id of a storage: ('storage', torch.XStorage, key, location, numel) in the
 * zip format, with a sixth item (a view of another storage, or None) in the legacy one. */
static int persid(void *user, const pk_val *pid, char *err, size_t errlen) {
    tctx *t = user;
    size_t want = t->legacy ? 6 : 5;
    if (!pid || pid->kind != PK_TUPLE || pid->n_items != want || !pk_str_is(pid->items[0], "storage") ||
        pid->items[1]->kind != PK_GLOBAL || pid->items[1]->i != PK_G_STORAGE ||
        pid->items[2]->kind != PK_STR || pid->items[2]->n == 0 || pid->items[2]->n > 64 ||
        pid->items[4]->kind != PK_INT || pid->items[4]->i < 0 ||
        (uint64_t)pid->items[4]->i > TORCH_MAX_NUMEL) {
        snprintf(err, errlen, "%s: a persistent id that is not a float storage", t->label);
        return -1;
    }
    if (t->legacy && pid->items[5]->kind != PK_NONE) {
        snprintf(err, errlen, "%s: storage views (files of torch before 0.4) are not supported", t->label);
        return -1;
    }
    const pk_val *key = pid->items[2];
    int dtype = pid->items[1]->dtype;
    uint64_t numel = (uint64_t)pid->items[4]->i;
    for (int i = 0; i < t->n; i++)
        if (t->st[i].key_len == key->n && !memcmp(t->st[i].key, key->s, key->n)) {
            if (t->st[i].dtype != dtype || t->st[i].numel != numel) {
                snprintf(err, errlen, "%s: storage '%.64s' is described two ways", t->label, t->st[i].key);
                return -1;
            }
            return i;
        }
    if (t->n == TORCH_MAX_STORAGES) {
        snprintf(err, errlen, "%s: more than %d storages", t->label, TORCH_MAX_STORAGES);
        return -1;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        storage *n = realloc(t->st, (size_t)cap * sizeof *n);
        if (!n) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        t->st = n, t->cap = cap;
    }
    t->st[t->n] = (storage){key->s, key->n, dtype, numel, NULL};
    return t->n++;
}

/* A storage's bytes, in place (aligned: ALIGN bytes in the zip, the element size in the
 * legacy format) or copied into the set. */
static int place(tctx *t, storage *S, const unsigned char *p, size_t align, char *err, size_t errlen) {
    size_t nb = (size_t)S->numel * st_elsize(S->dtype);
    if ((uintptr_t)p % align == 0) {
        S->data = p;
        return 0;
    }
    unsigned char *c = st_alloc(t->s, nb, err, errlen);
    if (!c) return -1;
    memcpy(c, p, nb);
    S->data = c;
    t->copied++;
    return 0;
}

/* One tensor of the state dict: in place when row-major, else copied; bounds-checked. */
static int add_tensor(tctx *t, const pk_val *key, const pk_tensor *pt, char *err, size_t errlen) {
    char name[1025];
    if (key->kind != PK_STR || key->n == 0 || key->n >= sizeof name || memchr(key->s, 0, key->n)) {
        snprintf(err, errlen, "%s: a state-dict key that is not a tensor name", t->label);
        return -1;
    }
    memcpy(name, key->s, key->n);
    name[key->n] = 0;
    const storage *S = &t->st[pt->storage];
    size_t es = st_elsize(S->dtype);
    uint64_t numel;
    if (st_numel(pt->shape, pt->ndim, TORCH_MAX_NUMEL, &numel) != 0) {
        snprintf(err, errlen, "%s: tensor '%.200s' has too many elements", t->label, name);
        return -1;
    }
    /* the last element it reaches: offset + sum((size - 1) * stride), each term <= 2^80 avoided */
    uint64_t last = (uint64_t)pt->offset;
    int contiguous = 1;
    uint64_t expect = 1;
    for (int i = pt->ndim - 1; i >= 0; i--) {
        uint64_t sz = (uint64_t)pt->shape[i], sd = (uint64_t)pt->stride[i], term;
        if (numel &&
            (__builtin_mul_overflow(sz - 1, sd, &term) || __builtin_add_overflow(last, term, &last))) {
            snprintf(err, errlen, "%s: tensor '%.200s' reaches past its storage", t->label, name);
            return -1;
        }
        if (sz != 1 && sd != expect) contiguous = 0;
        expect *= sz;
    }
    if (numel ? last >= S->numel : (uint64_t)pt->offset > S->numel) {
        snprintf(err, errlen, "%s: tensor '%.200s' reaches past its storage (%llu elements)", t->label, name,
                 (unsigned long long)S->numel);
        return -1;
    }
    const unsigned char *data = S->data + (numel ? (size_t)pt->offset * es : 0);
    if (!contiguous && numel) { /* a strided view: gather it row-major */
        unsigned char *c = st_alloc(t->s, (size_t)numel * es, err, errlen);
        if (!c) return -1;
        int64_t idx[ST_MAX_DIMS] = {0};
        for (uint64_t k = 0; k < numel; k++) {
            uint64_t off = (uint64_t)pt->offset;
            for (int i = 0; i < pt->ndim; i++)
                off += (uint64_t)idx[i] * (uint64_t)pt->stride[i];
            memcpy(c + k * es, S->data + off * es, es);
            for (int i = pt->ndim - 1; i >= 0 && ++idx[i] == pt->shape[i]; i--)
                idx[i] = 0;
        }
        data = c;
        t->views++;
    }
    return st_add(t->s, name, S->dtype, dtype_name(S->dtype), pt->ndim, pt->shape, data, (size_t)numel * es,
                  err, errlen);
}

/* The tensors of the unpickled object: a dict of name -> tensor (or {"state_dict": that}). */
static int add_state_dict(tctx *t, const pk_val *root, char *err, size_t errlen) {
    if (!root || root->kind != PK_DICT) {
        snprintf(err, errlen, "%s: the checkpoint holds no state dict (a dict of tensors)", t->label);
        return -1;
    }
    const pk_val *inner = pk_dict_get(root, "state_dict");
    if (inner && inner->kind == PK_DICT) root = inner;
    int added = 0, other = 0;
    for (size_t i = 0; i + 1 < root->n_items; i += 2) {
        const pk_val *v = root->items[i + 1];
        if (v->kind != PK_TENSOR) {
            other++;
            continue;
        }
        if (add_tensor(t, root->items[i], v->t, err, errlen) != 0) return -1;
        added++;
    }
    if (!added) {
        snprintf(err, errlen, "%s: the state dict holds no tensors", t->label);
        return -1;
    }
    if (other) st_note(t->s, "%s: %d state-dict entries that are not tensors were ignored", t->label, other);
    if (t->copied)
        st_note(t->s, "%s: %d storages copied to memory (compressed, or not aligned in the file), not mapped",
                t->label, t->copied);
    if (t->views) st_note(t->s, "%s: %d strided tensor views copied to row-major", t->label, t->views);
    return 0;
}

static const zip_entry *zip_find(const zip_entry *e, int n, const char *prefix, size_t pl, const char *name) {
    size_t nl = strlen(name);
    for (int i = 0; i < n; i++)
        if (e[i].name_len == pl + nl && !memcmp(e[i].name, prefix, pl) && !memcmp(e[i].name + pl, name, nl))
            return &e[i];
    return NULL;
}

static int read_zip(tctx *t, const unsigned char *buf, size_t size, char *err, size_t errlen) {
    zip_entry *e;
    int n;
    char zerr[256];
    if (zip_list(buf, size, &e, &n, zerr, sizeof zerr) != 0) {
        snprintf(err, errlen, "%s: %s", t->label, zerr);
        return -1;
    }
    int rc = -1;
    unsigned char *pkl_copy = NULL;
    pk_ctx *pc = NULL;
    /* PREFIX/data.pkl: the prefix is the archive's folder name (the file's base name, or "archive") */
    const zip_entry *pkl = NULL;
    for (int i = 0; i < n && !pkl; i++) {
        const char *sl = memchr(e[i].name, '/', e[i].name_len);
        if (sl && (size_t)(sl - e[i].name) + 1 + 8 == e[i].name_len && !memcmp(sl + 1, "data.pkl", 8))
            pkl = &e[i];
    }
    if (!pkl) {
        snprintf(err, errlen, "%s: a zip archive without data.pkl: not a torch checkpoint", t->label);
        goto done;
    }
    const char *prefix = pkl->name;
    size_t pl = pkl->name_len - 8;
    const zip_entry *bo = zip_find(e, n, prefix, pl, "byteorder");
    if (bo && !(bo->method == 0 && bo->usize == 6 && !memcmp(buf + bo->data_off, "little", 6))) {
        snprintf(err, errlen, "%s: the checkpoint is not little-endian", t->label);
        goto done;
    }
    const unsigned char *pbytes = buf + pkl->data_off;
    if (pkl->usize > TORCH_MAX_PICKLE) {
        snprintf(err, errlen, "%s: data.pkl is too large (%llu bytes)", t->label,
                 (unsigned long long)pkl->usize);
        goto done;
    }
    if (pkl->method == 8) {
        if (!(pkl_copy = malloc(pkl->usize + 1)) || zip_inflate(buf, pkl, pkl_copy, zerr, sizeof zerr) != 0) {
            snprintf(err, errlen, "%s: %s", t->label, pkl_copy ? zerr : "out of memory");
            goto done;
        }
        pbytes = pkl_copy;
    }
    pk_val *root;
    size_t used;
    if (!(pc = pk_ctx_create(persid, t))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (pk_parse(pc, pbytes, (size_t)pkl->usize, &used, &root, zerr, sizeof zerr) != 0) {
        snprintf(err, errlen, "%s: %s", t->label, zerr);
        goto done;
    }
    for (int i = 0; i < t->n; i++) { /* PREFIX/data/KEY */
        storage *S = &t->st[i];
        char name[80];
        snprintf(name, sizeof name, "data/%.*s", (int)S->key_len, S->key);
        const zip_entry *se = zip_find(e, n, prefix, pl, name);
        uint64_t nb = S->numel * st_elsize(S->dtype);
        if (!se || se->usize < nb) {
            snprintf(err, errlen, "%s: storage '%.64s' is %s the archive", t->label, name + 5,
                     se ? "shorter than its tensors in" : "missing from");
            goto done;
        }
        if (se->method == 8) {
            /* deflate expands at most ~1032:1: a larger claimed size is a corrupt (or hostile)
             * header, refused before anything is allocated for it */
            if (se->usize / 1032 > se->csize + 64) {
                snprintf(err, errlen, "%s: storage '%.64s' claims %llu bytes from %llu compressed", t->label,
                         name + 5, (unsigned long long)se->usize, (unsigned long long)se->csize);
                goto done;
            }
            unsigned char *c = st_alloc(t->s, (size_t)se->usize + 1, err, errlen);
            if (!c) goto done;
            if (zip_inflate(buf, se, c, zerr, sizeof zerr) != 0) {
                snprintf(err, errlen, "%s: %s", t->label, zerr);
                goto done;
            }
            S->data = c;
            t->copied++;
        } else if (place(t, S, buf + se->data_off, 64, err, errlen) != 0)
            goto done;
    }
    rc = add_state_dict(t, root, err, errlen);
done:
    pk_ctx_free(pc);
    free(pkl_copy);
    free(e);
    return rc;
}

static int read_legacy(tctx *t, const unsigned char *buf, size_t size, char *err, size_t errlen) {
    static const unsigned char magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    char perr[256];
    int rc = -1;
    pk_ctx *pc = pk_ctx_create(persid, t);
    if (!pc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pk_val *v[5];
    size_t pos = 0, used;
    t->legacy = 1;
    for (int i = 0; i < 5; i++) {
        if (pk_parse(pc, buf + pos, size - pos, &used, &v[i], perr, sizeof perr) != 0) {
            if (i == 0)
                snprintf(err, errlen,
                         "%s is not a torch checkpoint (neither a zip archive nor torch's legacy format)",
                         t->label);
            else
                snprintf(err, errlen, "%s: %s", t->label, perr);
            goto done;
        }
        pos += used;
        if (i == 0 && !(v[0]->kind == PK_BIGINT && v[0]->n == 10 && !memcmp(v[0]->s, magic, 10))) {
            snprintf(err, errlen, "%s is not a torch checkpoint (a pickle without torch's magic number)",
                     t->label);
            goto done;
        }
        if (i == 1 && !(v[1]->kind == PK_INT && v[1]->i == 1001)) {
            snprintf(err, errlen, "%s: legacy protocol version is not 1001", t->label);
            goto done;
        }
        if (i == 2) {
            const pk_val *le = pk_dict_get(v[2], "little_endian");
            if (v[2]->kind != PK_DICT || (le && !(le->kind == PK_BOOL && le->i == 1))) {
                snprintf(err, errlen, "%s: the checkpoint is not little-endian", t->label);
                goto done;
            }
        }
    }
    if (v[4]->kind != PK_LIST) {
        snprintf(err, errlen, "%s: the storage keys are not a list", t->label);
        goto done;
    }
    for (size_t k = 0; k < v[4]->n_items; k++) { /* each storage: int64 numel, then its bytes */
        const pk_val *key = v[4]->items[k];
        storage *S = NULL;
        for (int i = 0; i < t->n && !S; i++)
            if (key->kind == PK_STR && t->st[i].key_len == key->n && !memcmp(t->st[i].key, key->s, key->n))
                S = &t->st[i];
        if (!S || S->data || size - pos < 8) {
            snprintf(err, errlen, "%s: storage %zu is %s", t->label, k,
                     !S        ? "not used by any tensor"
                     : S->data ? "stored twice"
                               : "truncated");
            goto done;
        }
        uint64_t numel = 0;
        for (int i = 7; i >= 0; i--)
            numel = numel << 8 | buf[pos + (size_t)i];
        pos += 8;
        uint64_t nb = S->numel * st_elsize(S->dtype);
        if (numel != S->numel || nb > size - pos) {
            snprintf(err, errlen, "%s: storage '%.64s' is %s", t->label, S->key,
                     numel != S->numel ? "not the size its tensors say" : "truncated");
            goto done;
        }
        if (place(t, S, buf + pos, st_elsize(S->dtype), err, errlen) != 0) goto done;
        pos += (size_t)nb;
    }
    for (int i = 0; i < t->n; i++)
        if (!t->st[i].data) {
            snprintf(err, errlen, "%s: storage '%.64s' is missing", t->label, t->st[i].key);
            goto done;
        }
    rc = add_state_dict(t, v[3], err, errlen);
done:
    pk_ctx_free(pc);
    return rc;
}

int st_read_torch(st_set *s, const char *path, const char *label, char *err, size_t errlen) {
    size_t size;
    const unsigned char *buf = st_map_file(s, path, label, &size, err, errlen);
    if (!buf) return -1;
    tctx t = {.s = s, .label = label};
    int zip = size >= 4 && !memcmp(buf, "PK\x03\x04", 4);
    int rc = zip ? read_zip(&t, buf, size, err, errlen) : read_legacy(&t, buf, size, err, errlen);
    if (rc == 0) st_set_format(s, zip ? "pytorch-zip" : "pytorch-legacy");
    free(t.st);
    return rc;
}
