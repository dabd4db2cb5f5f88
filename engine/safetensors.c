/* safetensors.c - the .safetensors reader behind the stored-tensor set (t5_dev.h): maps one file read-only
 * and checks its header (JSON via jansson) as the reference implementation does: no duplicate names, shapes
 * whose element count fits (checked before it can wrap), byte counts that match, tensors that tile the data
 * buffer without overlap or hole; a truncated or corrupt file is an error naming the tensor, never a crash.
 * st_write writes such a file (`t5 random-model`, `t5 convert`, the tests).
 * What it is not: it does not convert dtypes or know T5 names (model.c does). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t5_dev.h"

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

typedef struct {
    uint64_t begin, end;
    const char *name;
} span;

static int by_begin(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : (x->end < y->end ? -1 : x->end > y->end);
}

/* The reference implementation's rule: the tensors tile the data buffer exactly, in some
 * order, with no overlap, no hole and nothing after the last one. */
static int check_tiling(span *sp, int n, uint64_t data_len, const char *label, char *err, size_t errlen) {
    qsort(sp, (size_t)n, sizeof *sp, by_begin);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (sp[i].begin < pos) {
            snprintf(err, errlen, "%s: tensors '%.100s' and '%.100s' overlap (data_offsets)", label,
                     sp[i - 1].name, sp[i].name);
            return -1;
        }
        if (sp[i].begin > pos) {
            snprintf(err, errlen, "%s: %llu bytes before tensor '%.200s' belong to no tensor (data_offsets)",
                     label, (unsigned long long)(sp[i].begin - pos), sp[i].name);
            return -1;
        }
        pos = sp[i].end;
    }
    if (pos != data_len) {
        snprintf(err, errlen, "%s: %llu bytes after the last tensor belong to no tensor", label,
                 (unsigned long long)(data_len - pos));
        return -1;
    }
    return 0;
}

int st_read_safetensors(st_set *s, const char *path, const char *label, char *err, size_t errlen) {
    size_t size;
    const unsigned char *b = st_map_file(s, path, label, &size, err, errlen);
    if (!b) return -1;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > size - 8 || hlen > (100u << 20)) {
        snprintf(err, errlen, "%s is truncated or not safetensors (header of %llu bytes in a %zu-byte file)",
                 label, (unsigned long long)hlen, size);
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        if (!root && strstr(je.text, "duplicate"))
            snprintf(err, errlen, "%s: a tensor name appears twice in the header (%.200s)", label, je.text);
        else
            snprintf(err, errlen, "%s: header is not a JSON object (%s)", label,
                     root ? "wrong type" : je.text);
        json_decref(root);
        return -1;
    }
    size_t data_start = 8 + (size_t)hlen, data_len = size - data_start;
    span *sp = calloc(json_object_size(root) + 1, sizeof *sp);
    if (!sp) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *key;
    json_t *val;
    int rc = 0, n = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
               *off = json_object_get(val, "data_offsets");
        if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) || json_array_size(off) != 2 ||
            json_array_size(sh) > ST_MAX_DIMS) {
            snprintf(err, errlen, "%s: tensor '%.200s' has a malformed header entry", label, key);
            rc = -1;
            break;
        }
        size_t elsize;
        int dtype = dtype_of(json_string_value(dt), &elsize);
        int ndim = (int)json_array_size(sh);
        int64_t shape[ST_MAX_DIMS];
        int bad = 0;
        for (int i = 0; i < ndim && !bad; i++) {
            json_t *d = json_array_get(sh, (size_t)i);
            bad = !json_is_integer(d) || json_integer_value(d) < 0;
            if (!bad) shape[i] = json_integer_value(d);
        }
        uint64_t numel = 0;
        bad = bad || st_numel(shape, ndim, 1ULL << 40, &numel) != 0;
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
        sp[n++] = (span){begin, end, key};
        if (st_add(s, key, dtype, json_string_value(dt), ndim, shape, b + data_start + begin,
                   (size_t)(end - begin), err, errlen) != 0) {
            rc = -1;
            break;
        }
    }
    if (!rc) rc = check_tiling(sp, n, data_len, label, err, errlen);
    free(sp);
    json_decref(root);
    return rc;
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
    size_t pl = strlen(path) + 5;
    char *tmp = malloc(pl);
    if (tmp) snprintf(tmp, pl, "%s.tmp", path);
    FILE *f = tmp ? fopen(tmp, "wb") : NULL;
    if (!f) {
        free(txt);
        free(tmp);
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
    ok = ok && rename(tmp, path) == 0;
    free(txt);
    if (!ok) {
        snprintf(err, errlen, "cannot write the safetensors file: %s", strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}
