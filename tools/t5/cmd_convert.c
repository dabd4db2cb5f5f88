/* cmd_convert.c - `t5 convert --model DIR --out DIR2 [--dtype bf16|f16|f32]`: any folder the
 * engine can load (safetensors, pytorch_model.bin in the zip or legacy format, sharded
 * either way) to model.safetensors, or to model-0000i-of-0000n.safetensors shards +
 * model.safetensors.index.json past --max-shard-size (default 5GB, as transformers'
 * save_pretrained), with every other file of the folder copied (config.json, tokenizer
 * files, sentence-transformers modules; subfolders with weights of their own, such as
 * 2_Dense/, are converted the same way). No torch: it reads through the engine's loader,
 * so nothing in a pickle runs. Tensors are written row-major, largest elements first (each
 * aligned to its element size); `*.embed_tokens.weight` entries that are the same bytes as
 * shared.weight are left out (the engine and transformers read shared.weight), as
 * transformers' own safetensors conversion does; --dtype converts the float tensors
 * (narrowing rounds to nearest even).
 * What it is not: a quantizer, or a converter of weights the engine cannot read. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "t5_dev.h"

typedef struct {
    int dtype; /* target ST_* for float tensors, 0: as stored */
    uint64_t max_shard;
    int force;
} conv_opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: t5 convert --model DIR --out DIR2 [--dtype bf16|f16|f32] [--max-shard-size N[KB|MB|GB]]\n"
            "                  [--force]\n"
            "Writes DIR's weights (safetensors or pytorch_model.bin, sharded or not) to DIR2 as\n"
            "model.safetensors (shards + model.safetensors.index.json past --max-shard-size, default\n"
            "5GB) and copies the folder's other files. --force replaces weights already in DIR2.\n");
}

static int is_weight_file(const char *n) {
    static const char *ends[] = {".safetensors", ".bin",  ".index.json", ".h5",  ".msgpack",
                                 ".ot",          ".onnx", ".pt",         ".pth", ".ckpt"};
    size_t l = strlen(n);
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        size_t k = strlen(ends[i]);
        if (l >= k && !strcmp(n + l - k, ends[i])) return 1;
    }
    return 0;
}

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb");
    if (!a) return -1;
    char *tmp = malloc(strlen(to) + 5);
    if (!tmp) {
        fclose(a);
        return -1;
    }
    sprintf(tmp, "%s.tmp", to);
    FILE *b = fopen(tmp, "wb");
    int ok = b != NULL;
    char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    ok = ok && !ferror(a);
    fclose(a);
    if (b) ok = (fclose(b) == 0) && ok;
    ok = ok && rename(tmp, to) == 0;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static int dtype_of_arg(const char *s) {
    return !strcmp(s, "bf16") || !strcmp(s, "bfloat16") ? ST_BF16
           : !strcmp(s, "f16") || !strcmp(s, "float16") ? ST_F16
           : !strcmp(s, "f32") || !strcmp(s, "float32") ? ST_F32
                                                        : -1;
}

static const char *st_name(int dt) {
    return dt == ST_F32 ? "F32" : dt == ST_F16 ? "F16" : "BF16";
}

/* "5GB", "200MB", "64KB", "12345" (bytes); 0 when malformed. Decimal units, as transformers'. */
static uint64_t parse_size(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return 0;
    double mul = 1;
    if (!strcasecmp(end, "KB") || !strcasecmp(end, "K"))
        mul = 1e3;
    else if (!strcasecmp(end, "MB") || !strcasecmp(end, "M"))
        mul = 1e6;
    else if (!strcasecmp(end, "GB") || !strcasecmp(end, "G"))
        mul = 1e9;
    else if (*end)
        return 0;
    return v * mul >= 1 && v * mul < 1e18 ? (uint64_t)(v * mul) : 0;
}

/* 1 when t holds the same bytes as shared.weight: an alias transformers writes once. */
static int alias_of_shared(const st_set *s, const st_tensor *t) {
    const st_tensor *sh = st_find(s, "shared.weight");
    size_t l = strlen(t->name);
    return sh && sh != t && l >= 19 && !strcmp(t->name + l - 19, "embed_tokens.weight") &&
           sh->data == t->data && sh->nbytes == t->nbytes && sh->dtype == t->dtype;
}

typedef struct {
    const st_tensor *t;
    int dtype; /* written as */
    size_t nbytes;
} item;

static int by_size(const void *a, const void *b) {
    const item *x = a, *y = b;
    size_t ex = st_elsize(x->dtype) ? st_elsize(x->dtype) : 1,
           ey = st_elsize(y->dtype) ? st_elsize(y->dtype) : 1;
    return ex != ey ? (ex > ey ? -1 : 1) : (x->t < y->t ? -1 : x->t > y->t);
}

/* Writes items[a..b) to PATH, converting where asked. */
static int write_shard(const char *path, const item *it, int a, int b, char *err, size_t errlen) {
    st_out *o = calloc((size_t)(b - a) + 1, sizeof *o);
    void **bufs = calloc((size_t)(b - a) + 1, sizeof *bufs);
    int rc = -1;
    if (!o || !bufs) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int i = a; i < b; i++) {
        const st_tensor *t = it[i].t;
        st_out *x = &o[i - a];
        x->name = t->name, x->ndim = t->ndim;
        memcpy(x->shape, t->shape, sizeof x->shape);
        x->nbytes = it[i].nbytes;
        if (it[i].dtype == t->dtype) {
            x->dtype = t->dtype_name, x->data = t->data;
            continue;
        }
        if (!(bufs[i - a] = malloc(it[i].nbytes + 1))) {
            snprintf(err, errlen, "out of memory converting '%s'", t->name);
            goto done;
        }
        st_convert(t->data, t->dtype, bufs[i - a], it[i].dtype, t->nbytes / st_elsize(t->dtype));
        x->dtype = st_name(it[i].dtype), x->data = bufs[i - a];
    }
    rc = st_write(path, o, b - a, err, errlen);
done:
    for (int i = 0; bufs && i < b - a; i++)
        free(bufs[i]);
    free(bufs);
    free(o);
    return rc;
}

static char *join(const char *a, const char *b) {
    char *p = malloc(strlen(a) + strlen(b) + 2);
    if (p) sprintf(p, "%s/%s", a, b);
    return p;
}

/* Safetensors weights already in OUT: refused, or with --force removed (a stale index or
 * single file would win over what is written). */
static int clear_weights(const char *out, int force) {
    for (int i = 0; i < 2; i++) {
        char *p = join(out, st_weight_files[i]);
        int there = p && access(p, F_OK) == 0;
        if (there && !force) {
            fprintf(stderr, "t5 convert: %s already holds %s (use --force to replace it)\n", out,
                    st_weight_files[i]);
            free(p);
            return -1;
        }
        if (there) unlink(p);
        free(p);
    }
    return 0;
}

static int convert_weights(const char *in, const char *out, const conv_opts *o) {
    char err[512];
    st_set *s = st_open_dir(in, err, sizeof err);
    if (!s) {
        fprintf(stderr, "t5 convert: %s\n", err);
        return 1;
    }
    for (const char *n = st_notes(s), *e; (e = strchr(n, '\n')); n = e + 1)
        fprintf(stderr, "t5 convert: %.*s\n", (int)(e - n), n);
    int n = st_count(s), k = 0, left_out = 0, rc = 1;
    item *it = calloc((size_t)n + 1, sizeof *it);
    if (!it) goto done;
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_get(s, i);
        if (alias_of_shared(s, t)) {
            left_out++;
            continue;
        }
        int dt = o->dtype && st_elsize(t->dtype) ? o->dtype : t->dtype;
        it[k++] = (item){t, dt, st_elsize(dt) ? t->nbytes / st_elsize(t->dtype) * st_elsize(dt) : t->nbytes};
    }
    qsort(it, (size_t)k, sizeof *it, by_size);
    /* shards: consecutive runs of at most max_shard bytes (one tensor larger than that is alone) */
    int *start = calloc((size_t)k + 2, sizeof *start), shards = 0;
    if (!start) goto done;
    uint64_t cur = 0, total = 0;
    for (int i = 0; i < k; i++) {
        if (i == 0 || (cur && cur + it[i].nbytes > o->max_shard)) start[shards++] = i, cur = 0;
        cur += it[i].nbytes, total += it[i].nbytes;
    }
    start[shards] = k;
    if (clear_weights(out, o->force) != 0) {
        free(start);
        goto done;
    }
    json_t *wm = json_object();
    for (int sh = 0; sh < shards; sh++) {
        char name[64];
        if (shards == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", sh + 1, shards);
        char *p = join(out, name);
        if (!p || write_shard(p, it, start[sh], start[sh + 1], err, sizeof err) != 0) {
            fprintf(stderr, "t5 convert: %s: %s\n", name, p ? err : "out of memory");
            free(p);
            json_decref(wm);
            free(start);
            goto done;
        }
        free(p);
        for (int i = start[sh]; i < start[sh + 1]; i++)
            json_object_set_new(wm, it[i].t->name, json_string(name));
    }
    if (shards > 1) {
        json_t *idx =
            json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        char *p = join(out, "model.safetensors.index.json"), *tmp = p ? malloc(strlen(p) + 5) : NULL;
        if (tmp) sprintf(tmp, "%s.tmp", p);
        int ok = tmp && json_dump_file(idx, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 && rename(tmp, p) == 0;
        json_decref(idx);
        free(p);
        free(tmp);
        if (!ok) {
            fprintf(stderr, "t5 convert: cannot write model.safetensors.index.json in %s\n", out);
            free(start);
            goto done;
        }
    } else
        json_decref(wm);
    free(start);
    printf("t5 convert: %s: %d tensors, %llu bytes, in %d file%s%s\n", out, k, (unsigned long long)total,
           shards, shards == 1 ? "" : "s + model.safetensors.index.json",
           left_out ? " (embed_tokens copies of shared.weight left out)" : "");
    rc = 0;
done:
    free(it);
    st_close(s);
    return rc;
}

/* IN's weights to OUT, its other files copied, its subfolders the same way (depth-bounded). */
static int convert_dir(const char *in, const char *out, const conv_opts *o, int depth) {
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "t5 convert: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    char ri[PATH_MAX], ro[PATH_MAX];
    int same = realpath(in, ri) && realpath(out, ro) && !strcmp(ri, ro);
    if (t5_weights_present(in) && convert_weights(in, out, o) != 0) return 1;
    DIR *d = opendir(in);
    if (!d) {
        fprintf(stderr, "t5 convert: cannot read %s: %s\n", in, strerror(errno));
        return 1;
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.' || (same && !depth)) continue; /* converting in place: nothing to copy */
        char *a = join(in, de->d_name), *b = join(out, de->d_name);
        struct stat sb;
        if (!a || !b || stat(a, &sb) != 0)
            rc = 1;
        else if (S_ISDIR(sb.st_mode) && depth < 4)
            rc = same ? 0 : convert_dir(a, b, o, depth + 1);
        else if (S_ISREG(sb.st_mode) && !is_weight_file(de->d_name) && !same && copy_file(a, b) != 0) {
            fprintf(stderr, "t5 convert: cannot copy %s\n", de->d_name);
            rc = 1;
        }
        free(a);
        free(b);
    }
    closedir(d);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"dtype", required_argument, 0, 'd'},
                                         {"max-shard-size", required_argument, 0, 's'},
                                         {"force", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *in = NULL, *out = NULL;
    conv_opts o = {0, 5000000000ULL, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            in = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'd':
            if ((o.dtype = dtype_of_arg(optarg)) < 0) {
                fprintf(stderr, "t5 convert: --dtype must be bf16, f16 or f32\n");
                return 2;
            }
            break;
        case 's':
            if (!(o.max_shard = parse_size(optarg))) {
                fprintf(stderr,
                        "t5 convert: --max-shard-size must be a size such as 5GB, 200MB or 1000000\n");
                return 2;
            }
            break;
        case 'f':
            o.force = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct stat sb;
    if (stat(in, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "t5 convert: %s is not a folder\n", in);
        return 1;
    }
    if (!t5_weights_present(in)) {
        fprintf(stderr,
                "t5 convert: no weights in %s (looked for model.safetensors, model.safetensors.index.json, "
                "pytorch_model.bin, pytorch_model.bin.index.json)\n",
                in);
        return 1;
    }
    return convert_dir(in, out, &o, 0);
}
