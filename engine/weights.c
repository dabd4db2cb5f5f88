/* weights.c - the set of stored tensors (st_*, declared in t5_dev.h): which files of a model
 * folder to read (safetensors first, then torch files; a single file or the shards an index names), the
 * mappings and copies the set owns, name lookup, the load notes, and one pass over every float tensor for
 * NaN/Inf (a note naming the tensors). What it is not: a file-format parser (safetensors.c, torch.c). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t5_dev.h"

typedef struct {
    void *p;
    size_t n;
} st_map;

struct st_set {
    st_map *maps; /* [n_maps] file mappings */
    int n_maps;
    void **own; /* [n_own] heap copies */
    int n_own;
    size_t own_bytes;
    st_tensor *t; /* [n] */
    int n, cap;
    char format[32];
    char *notes; /* NUL-terminated lines */
    size_t notes_len;
};

const char *const st_weight_files[] = {"model.safetensors", "model.safetensors.index.json",
                                       "pytorch_model.bin", "pytorch_model.bin.index.json", NULL};

size_t st_elsize(int dtype) {
    return dtype == ST_F32 ? 4 : dtype == ST_F16 || dtype == ST_BF16 ? 2 : 0;
}

int st_numel(const int64_t *shape, int ndim, uint64_t limit, uint64_t *out) {
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        uint64_t d = (uint64_t)shape[i];
        if (d && n > limit / d) return -1; /* checked before the product can wrap */
        n *= d;
    }
    *out = n;
    return n > limit ? -1 : 0;
}

void st_note(st_set *s, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    size_t n = strlen(line);
    if (s->notes_len > (64u << 10)) return; /* bounded: the first notes say enough */
    char *p = realloc(s->notes, s->notes_len + n + 2);
    if (!p) return;
    s->notes = p;
    memcpy(p + s->notes_len, line, n);
    p[s->notes_len + n] = '\n';
    p[s->notes_len + n + 1] = 0;
    s->notes_len += n + 1;
}

void st_set_format(st_set *s, const char *format) {
    snprintf(s->format, sizeof s->format, "%s", format);
}

const unsigned char *st_map_file(st_set *s, const char *path, const char *label, size_t *size, char *err,
                                 size_t errlen) {
    st_map *nm = realloc(s->maps, (size_t)(s->n_maps + 1) * sizeof *nm);
    if (!nm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->maps = nm;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", label, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", label);
        close(fd);
        return NULL;
    }
    if (sb.st_size < 8) {
        snprintf(err, errlen, "%s is truncated (%lld bytes)", label, (long long)sb.st_size);
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", label, strerror(errno));
        return NULL;
    }
    s->maps[s->n_maps++] = (st_map){p, (size_t)sb.st_size};
    *size = (size_t)sb.st_size;
    return p;
}

void *st_alloc(st_set *s, size_t n, char *err, size_t errlen) {
    void **no = realloc(s->own, (size_t)(s->n_own + 1) * sizeof *no);
    if (no) s->own = no;
    void *p = no ? aligned_alloc(64, (n + 64) & ~(size_t)63) : NULL; /* never 0 bytes */
    if (!p) {
        snprintf(err, errlen, "out of memory (%zu bytes)", n);
        return NULL;
    }
    s->own[s->n_own++] = p;
    s->own_bytes += n;
    return p;
}

int st_add(st_set *s, const char *name, int dtype, const char *dtype_name, int ndim, const int64_t *shape,
           const void *data, size_t nbytes, char *err, size_t errlen) {
    if (st_find(s, name)) {
        snprintf(err, errlen, "tensor '%.200s' is stored twice", name);
        return -1;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        st_tensor *nt = realloc(s->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->t = nt, s->cap = cap;
    }
    size_t es = st_elsize(dtype);
    if (es && ((uintptr_t)data % es) != 0) { /* misaligned in the file: a copy the kernels can read */
        void *c = st_alloc(s, nbytes, err, errlen);
        if (!c) return -1;
        memcpy(c, data, nbytes);
        data = c;
    }
    st_tensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->dtype = dtype;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype_name);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = data;
    t->nbytes = nbytes;
    s->n++;
    return 0;
}

void st_close(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++)
        free(s->t[i].name);
    free(s->t);
    for (int i = 0; i < s->n_maps; i++)
        munmap(s->maps[i].p, s->maps[i].n);
    free(s->maps);
    for (int i = 0; i < s->n_own; i++)
        free(s->own[i]);
    free(s->own);
    free(s->notes);
    free(s);
}

const st_tensor *st_find(const st_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

int st_count(const st_set *s) {
    return s->n;
}

const st_tensor *st_get(const st_set *s, int i) {
    return i >= 0 && i < s->n ? &s->t[i] : NULL;
}

size_t st_mapped_bytes(const st_set *s) {
    size_t n = 0;
    for (int i = 0; i < s->n_maps; i++)
        n += s->maps[i].n;
    return n;
}

void st_drop(const st_set *s, const void *p, size_t len) {
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + pg - 1) & ~(pg - 1),
              b = ((uintptr_t)p + len) & ~(pg - 1);
    for (int i = 0; i < s->n_maps && b > a; i++) {
        uintptr_t lo = (uintptr_t)s->maps[i].p, hi = lo + s->maps[i].n;
        if (a >= lo && b <= hi) madvise((void *)a, b - a, MADV_DONTNEED);
    }
}

size_t st_copied_bytes(const st_set *s) {
    return s->own_bytes;
}

const char *st_format(const st_set *s) {
    return s->format;
}

const char *st_notes(const st_set *s) {
    return s->notes ? s->notes : "";
}

uint16_t st_float_to_half(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000, man = b & 0x7fffff;
    if ((b & 0x7f800000u) == 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0)); /* Inf, NaN */
    int e = (int)((b >> 23) & 0xff) - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) { /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}

float st_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0)
            bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31)
        bits = sign | 0x7f800000u | man << 13;
    else
        bits = sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void st_convert(const void *src, int from, void *dst, int to, size_t n) {
    if (from == to) {
        memcpy(dst, src, n * st_elsize(from));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float f;
        if (from == ST_F32)
            memcpy(&f, (const char *)src + 4 * i, 4);
        else {
            uint16_t h;
            memcpy(&h, (const char *)src + 2 * i, 2);
            if (from == ST_F16)
                f = st_half_to_float(h);
            else {
                uint32_t b = (uint32_t)h << 16;
                memcpy(&f, &b, 4);
            }
        }
        if (to == ST_F32)
            memcpy((char *)dst + 4 * i, &f, 4);
        else {
            uint16_t h = to == ST_F16 ? st_float_to_half(f) : st_float_to_bf16(f);
            memcpy((char *)dst + 2 * i, &h, 2);
        }
    }
}

/* 1 when n values of a float dtype hold a NaN or an infinity: all exponent bits set. Blocks
 * of 64 values with a fixed trip count and no branch, which gcc -O2 vectorises. */
#define NF_BLOCK 64
#define NONFINITE(T, x, n, m)                                                                                \
    do {                                                                                                     \
        unsigned bad = 0;                                                                                    \
        size_t i = 0;                                                                                        \
        for (; i + NF_BLOCK <= (n); i += NF_BLOCK) {                                                         \
            T acc = 0;                                                                                       \
            for (int j = 0; j < NF_BLOCK; j++)                                                               \
                acc |= (T)(((x)[i + j] & (m)) == (m) ? 1 : 0);                                               \
            bad |= acc;                                                                                      \
        }                                                                                                    \
        for (; i < (n); i++)                                                                                 \
            bad |= ((x)[i] & (m)) == (m);                                                                    \
        return bad != 0;                                                                                     \
    } while (0)

static int nonfinite(const void *p, size_t n, int dtype) {
    if (dtype == ST_F32) NONFINITE(uint32_t, (const uint32_t *)p, n, 0x7f800000u);
    const uint16_t *x = p;
    if (dtype == ST_F16) NONFINITE(uint16_t, x, n, 0x7c00);
    NONFINITE(uint16_t, x, n, 0x7f80);
}

/* One pass over the float tensors (each distinct buffer once): a note naming those with
 * NaN or Inf. Weights are not expected to hold either; transformers loads them silently
 * and every output is garbage, so the server logs this at start-up. */
static void check_finite(st_set *s) {
    int n_bad = 0;
    char names[400] = "";
    size_t used = 0;
    for (int i = 0; i < s->n; i++) {
        const st_tensor *t = &s->t[i];
        size_t es = st_elsize(t->dtype);
        if (!es || !t->nbytes) continue;
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = s->t[j].data == t->data && s->t[j].nbytes == t->nbytes;
        if (dup || !nonfinite(t->data, t->nbytes / es, t->dtype)) continue;
        if (n_bad++ < 4 && used < sizeof names - 1)
            used +=
                (size_t)snprintf(names + used, sizeof names - used, "%s'%.80s'", used ? ", " : "", t->name);
    }
    if (n_bad)
        st_note(s, "warning: %d tensor%s hold%s NaN or Inf values (%s%s); the outputs will be garbage", n_bad,
                n_bad == 1 ? "" : "s", n_bad == 1 ? "s" : "", names, n_bad > 4 ? ", ..." : "");
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

typedef int (*reader_fn)(st_set *s, const char *path, const char *label, char *err, size_t errlen);

static int read_one(st_set *s, reader_fn rd, const char *dir, const char *name, char *err, size_t errlen) {
    char *p = path_join(dir, name);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = rd(s, p, name, err, errlen);
    free(p);
    return rc;
}

/* The shards an index (INDEX, a name in DIR) lists in its weight_map, each read once, then
 * every name of the weight map checked to be in the set. */
static int read_index(st_set *s, reader_fn rd, const char *dir, const char *index, char *err, size_t errlen) {
    char *path = path_join(dir, index);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    free(path);
    json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        snprintf(err, errlen, "%s: no weight_map object%s%.200s", index, root ? "" : ": ",
                 root ? "" : je.text);
        json_decref(root);
        return -1;
    }
    const char *key;
    json_t *val;
    const char **names = calloc(json_object_size(wm) + 1, sizeof *names);
    int nn = 0, rc = 0;
    if (!names) rc = -1, snprintf(err, errlen, "out of memory");
    json_object_foreach(wm, key, val) {
        if (rc) break;
        const char *fn = json_string_value(val);
        if (!fn || !*fn || strchr(fn, '/') || !strcmp(fn, "..") || !strcmp(fn, ".")) {
            snprintf(err, errlen, "%s: bad shard name for '%.200s'", index, key);
            rc = -1;
            break;
        }
        int seen = 0;
        for (int i = 0; i < nn && !seen; i++)
            seen = !strcmp(names[i], fn);
        if (!seen) names[nn++] = fn;
    }
    for (int i = 0; !rc && i < nn; i++)
        rc = read_one(s, rd, dir, names[i], err, errlen);
    if (!rc) json_object_foreach(wm, key, val) {
            if (!st_find(s, key)) {
                snprintf(err, errlen, "tensor '%.200s' listed in %s is missing from its shard", key, index);
                rc = -1;
                break;
            }
        }
    if (!rc && nn == 0) rc = -1, snprintf(err, errlen, "%s lists no shards", index);
    free(names);
    json_decref(root);
    return rc;
}

st_set *st_open_dir(const char *dir, char *err, size_t errlen) {
    st_set *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int which = -1;
    for (int i = 0; st_weight_files[i] && which < 0; i++) {
        char *p = path_join(dir, st_weight_files[i]);
        if (p && access(p, F_OK) == 0) which = i;
        free(p);
    }
    int rc = -1;
    switch (which) {
    case 0:
        rc = read_one(s, st_read_safetensors, dir, st_weight_files[0], err, errlen);
        break;
    case 1:
        rc = read_index(s, st_read_safetensors, dir, st_weight_files[1], err, errlen);
        break;
    case 2:
        rc = read_one(s, st_read_torch, dir, st_weight_files[2], err, errlen);
        break;
    case 3:
        rc = read_index(s, st_read_torch, dir, st_weight_files[3], err, errlen);
        break;
    default:
        snprintf(
            err, errlen,
            "no weights in the model folder: looked for model.safetensors, model.safetensors.index.json, "
            "pytorch_model.bin and pytorch_model.bin.index.json");
    }
    if (rc != 0) {
        st_close(s);
        return NULL;
    }
    if (which <= 1) st_set_format(s, "safetensors");
    check_finite(s);
    return s;
}
