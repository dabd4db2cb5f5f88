/* safetensors.c - read-only memory-mapped reader of .safetensors files: one
 * `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
 * It validates the header (JSON via jansson) against the file size so that a
 * truncated or corrupt file is an error naming the tensor, never a crash.
 * st_write writes such a file (for `t5 random-model` and the tests).
 * What it is not: it does not convert dtypes or know T5 names (model.c does). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t5_dev.h"

typedef struct {
    void *map;
    size_t size;
    st_tensor *t; /* [n] */
    int n;
} st_file;

struct st_set {
    st_file *f; /* [n_files] */
    int n_files;
};

static int dtype_of(const char *s, size_t *elsize) {
    if (!strcmp(s, "F32")) return *elsize = 4, ST_F32;
    if (!strcmp(s, "F16")) return *elsize = 2, ST_F16;
    if (!strcmp(s, "BF16")) return *elsize = 2, ST_BF16;
    if (!strcmp(s, "F64") || !strcmp(s, "I64") || !strcmp(s, "U64")) return *elsize = 8, ST_OTHER;
    if (!strcmp(s, "I32") || !strcmp(s, "U32")) return *elsize = 4, ST_OTHER;
    if (!strcmp(s, "I16") || !strcmp(s, "U16")) return *elsize = 2, ST_OTHER;
    if (!strcmp(s, "I8") || !strcmp(s, "U8") || !strcmp(s, "BOOL") || !strcmp(s, "F8_E4M3") ||
        !strcmp(s, "F8_E5M2"))
        return *elsize = 1, ST_OTHER;
    return *elsize = 0, ST_OTHER;
}

static void file_close(st_file *f) {
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    if (f->map) munmap(f->map, f->size);
    memset(f, 0, sizeof *f);
}

/* Maps PATH (shown in errors as LABEL, a file name without folders) and parses its header. */
static int file_open(st_file *f, const char *path, const char *label, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", label, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", label);
        close(fd);
        return -1;
    }
    if (sb.st_size < 8) {
        snprintf(err, errlen, "%s is truncated (%lld bytes, no header)", label, (long long)sb.st_size);
        close(fd);
        return -1;
    }
    f->size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        snprintf(err, errlen, "cannot map %s: %s", label, strerror(errno));
        return -1;
    }
    const unsigned char *b = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > f->size - 8 || hlen > (100u << 20)) {
        snprintf(err, errlen, "%s is truncated or not safetensors (header of %llu bytes in a %zu-byte file)",
                 label, (unsigned long long)hlen, f->size);
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, 0, &je);
    if (!root || !json_is_object(root)) {
        snprintf(err, errlen, "%s: header is not a JSON object (%s)", label, root ? "wrong type" : je.text);
        json_decref(root);
        return -1;
    }
    size_t data_start = 8 + (size_t)hlen, data_len = f->size - data_start;
    f->t = calloc(json_object_size(root) + 1, sizeof *f->t);
    if (!f->t) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        st_tensor *t = &f->t[f->n];
        json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
               *off = json_object_get(val, "data_offsets");
        if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) || json_array_size(off) != 2 ||
            json_array_size(sh) > 8) {
            snprintf(err, errlen, "%s: tensor '%.200s' has a malformed header entry", label, key);
            rc = -1;
            break;
        }
        size_t elsize;
        t->dtype = dtype_of(json_string_value(dt), &elsize);
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", json_string_value(dt));
        t->ndim = (int)json_array_size(sh);
        uint64_t numel = 1;
        int bad = 0;
        for (int i = 0; i < t->ndim; i++) {
            json_t *d = json_array_get(sh, (size_t)i);
            if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1LL << 40)) {
                bad = 1;
                break;
            }
            t->shape[i] = json_integer_value(d);
            numel *= (uint64_t)t->shape[i];
            if (numel > (1ULL << 40)) bad = 1;
        }
        json_t *o0 = json_array_get(off, 0), *o1 = json_array_get(off, 1);
        if (bad || !json_is_integer(o0) || !json_is_integer(o1) || json_integer_value(o0) < 0 ||
            json_integer_value(o1) < json_integer_value(o0)) {
            snprintf(err, errlen, "%s: tensor '%.200s' has a bad shape or data_offsets", label, key);
            rc = -1;
            break;
        }
        uint64_t begin = (uint64_t)json_integer_value(o0), end = (uint64_t)json_integer_value(o1);
        if (end > data_len) {
            snprintf(err, errlen, "%s is truncated: tensor '%.200s' ends at byte %llu of %zu data bytes",
                     label, key, (unsigned long long)end, data_len);
            rc = -1;
            break;
        }
        if (elsize && end - begin != numel * elsize) {
            snprintf(err, errlen, "%s: tensor '%.200s' holds %llu bytes, its shape needs %llu", label, key,
                     (unsigned long long)(end - begin), (unsigned long long)(numel * elsize));
            rc = -1;
            break;
        }
        t->name = strdup(key);
        if (!t->name) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        t->data = b + data_start + begin;
        t->nbytes = (size_t)(end - begin);
        f->n++;
    }
    json_decref(root);
    return rc;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int add_file(st_set *s, const char *dir, const char *name, char *err, size_t errlen) {
    st_file *nf = realloc(s->f, (size_t)(s->n_files + 1) * sizeof *nf);
    if (!nf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->f = nf;
    char *p = path_join(dir, name);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = file_open(&s->f[s->n_files], p, name, err, errlen);
    free(p);
    s->n_files++; /* counted even on failure so st_close releases it */
    return rc;
}

st_set *st_open_dir(const char *dir, char *err, size_t errlen) {
    st_set *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    if (!single || !index) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (access(single, F_OK) == 0) {
        if (add_file(s, dir, "model.safetensors", err, errlen) != 0) goto fail;
    } else if (access(index, F_OK) == 0) {
        json_error_t je;
        json_t *root = json_load_file(index, 0, &je);
        json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
        if (!json_is_object(wm)) {
            snprintf(err, errlen, "model.safetensors.index.json: no weight_map object%s%s", root ? "" : ": ",
                     root ? "" : je.text);
            json_decref(root);
            goto fail;
        }
        /* the distinct shard names, in order of first appearance */
        const char *key;
        json_t *val;
        const char **names = calloc(json_object_size(wm) + 1, sizeof *names);
        int nn = 0, rc = 0;
        if (!names) rc = -1, snprintf(err, errlen, "out of memory");
        json_object_foreach(wm, key, val) {
            if (rc) break;
            const char *fn = json_string_value(val);
            if (!fn || !*fn || strchr(fn, '/') || !strcmp(fn, "..")) {
                snprintf(err, errlen, "model.safetensors.index.json: bad shard name for '%.200s'", key);
                rc = -1;
                break;
            }
            int seen = 0;
            for (int i = 0; i < nn; i++)
                seen |= !strcmp(names[i], fn);
            if (!seen) names[nn++] = fn;
        }
        for (int i = 0; !rc && i < nn; i++)
            rc = add_file(s, dir, names[i], err, errlen);
        /* every tensor of the weight map must be in its shard */
        if (!rc) json_object_foreach(wm, key, val) {
                if (!st_find(s, key)) {
                    snprintf(err, errlen, "tensor '%.200s' listed in the index is missing from its shard",
                             key);
                    rc = -1;
                    break;
                }
            }
        free(names);
        json_decref(root);
        if (rc) goto fail;
        if (nn == 0) {
            snprintf(err, errlen, "model.safetensors.index.json lists no shards");
            goto fail;
        }
    } else {
        snprintf(err, errlen, "no model.safetensors or model.safetensors.index.json in the model folder");
        goto fail;
    }
    free(single);
    free(index);
    return s;
fail:
    free(single);
    free(index);
    st_close(s);
    return NULL;
}

void st_close(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++)
        file_close(&s->f[i]);
    free(s->f);
    free(s);
}

const st_tensor *st_find(const st_set *s, const char *name) {
    for (int i = 0; i < s->n_files; i++)
        for (int j = 0; j < s->f[i].n; j++)
            if (!strcmp(s->f[i].t[j].name, name)) return &s->f[i].t[j];
    return NULL;
}

size_t st_mapped_bytes(const st_set *s) {
    size_t n = 0;
    for (int i = 0; i < s->n_files; i++)
        n += s->f[i].size;
    return n;
}

void st_drop(const st_set *s, const void *p, size_t len) {
    /* the mapping is read-only and file-backed: its dropped pages would fault in again from the file */
    (void)s;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + pg - 1) & ~(pg - 1),
              b = ((uintptr_t)p + len) & ~(pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

int st_write(const char *path, const st_out *t, int n, char *err, size_t errlen) {
    json_t *h = json_object();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", t[i].dtype, "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + t[i].nbytes));
        json_object_set_new(h, t[i].name, e);
        off += t[i].nbytes;
    }
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    char *txt = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    if (!txt) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t hl = strlen(txt), padded = (hl + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(txt);
        snprintf(err, errlen, "cannot create the safetensors file: %s", strerror(errno));
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(txt, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < n; i++)
        ok = fwrite(t[i].data, 1, t[i].nbytes, f) == t[i].nbytes;
    ok = (fclose(f) == 0) && ok;
    free(txt);
    if (!ok) {
        snprintf(err, errlen, "cannot write the safetensors file: %s", strerror(errno));
        return -1;
    }
    return 0;
}
