/* pickle.c - the restricted unpickler behind torchfile.h, written by hand so that a
 * checkpoint is data, never code. It runs the pickle machine (stack, marks, memo) for
 * the protocol 2-5 opcodes a torch state dict uses and builds plain values. GLOBAL and
 * STACK_GLOBAL resolve only collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter and torch.{Float,Half,BFloat16}Storage; any other name
 * is an error naming it (the other torch storage types name their dtype). REDUCE "calls"
 * only those three functions, by building a dict or a tensor record; BUILD keeps the
 * object and drops its state (OrderedDict's _metadata). INST, OBJ, NEWOBJ, EXT and
 * text-protocol opcodes are refused. Every length is checked against the input, and the
 * stack, marks, memo, values and container items are bounded; values live in arenas.
 * What it is not: a general unpickler (no sets, no classes, no protocol 0/1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torchfile.h"

#define PK_MAX_VALUES (1u << 21) /* values built, all pickles of a context together */
#define PK_MAX_ITEMS (1u << 24)  /* container slots filled, all together */
#define PK_MAX_STACK (1u << 20)  /* stack depth */
#define PK_MAX_MARKS 1024        /* nested marks */
#define PK_MAX_MEMO (1u << 22)   /* memo indices */
#define PK_MAX_BIGINT 64         /* bytes of a LONG1/LONG4 integer */
#define PK_VALUES_PER_CHUNK 4096

typedef struct chunk {
    struct chunk *next;
    pk_val v[PK_VALUES_PER_CHUNK];
} chunk;

struct pk_ctx {
    pk_persid_fn persid;
    void *user;
    chunk *chunks;
    size_t used_in_chunk;
    size_t n_values, n_items;
    void **extra; /* other allocations (item arrays, tensor records) */
    size_t n_extra, cap_extra;
    /* per pickle */
    pk_val **stack;
    size_t sp, stack_cap;
    size_t marks[PK_MAX_MARKS];
    int n_marks;
    pk_val **memo;
    size_t memo_cap, memo_len; /* memo_len: indices set (MEMOIZE's next index) */
};

pk_ctx *pk_ctx_create(pk_persid_fn persid, void *user) {
    pk_ctx *c = calloc(1, sizeof *c);
    if (c) c->persid = persid, c->user = user, c->used_in_chunk = PK_VALUES_PER_CHUNK;
    return c;
}

void pk_ctx_free(pk_ctx *c) {
    if (!c) return;
    while (c->chunks) {
        chunk *n = c->chunks->next;
        free(c->chunks);
        c->chunks = n;
    }
    for (size_t i = 0; i < c->n_extra; i++)
        free(c->extra[i]);
    free(c->extra);
    free(c->stack);
    free(c->memo);
    free(c);
}

#define FAIL(...)                                                                                            \
    do {                                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                                  \
        return -1;                                                                                           \
    } while (0)

/* remembers p to free with the context; p NULL or tracking fails: -1 (p freed) */
static int track(pk_ctx *c, void *p) {
    if (!p) return -1;
    if (c->n_extra == c->cap_extra) {
        size_t cap = c->cap_extra ? 2 * c->cap_extra : 256;
        void **n = realloc(c->extra, cap * sizeof *n);
        if (!n) {
            free(p);
            return -1;
        }
        c->extra = n, c->cap_extra = cap;
    }
    c->extra[c->n_extra++] = p;
    return 0;
}

static pk_val *new_val(pk_ctx *c, int kind) {
    if (c->n_values >= PK_MAX_VALUES) return NULL;
    if (c->used_in_chunk == PK_VALUES_PER_CHUNK) {
        chunk *k = malloc(sizeof *k);
        if (!k) return NULL;
        k->next = c->chunks, c->chunks = k, c->used_in_chunk = 0;
    }
    pk_val *v = &c->chunks->v[c->used_in_chunk++];
    c->n_values++;
    memset(v, 0, sizeof *v);
    v->kind = kind;
    return v;
}

/* appends x to container v's items (item arrays grow geometrically; old arrays stay tracked) */
static int add_item(pk_ctx *c, pk_val *v, pk_val *x) {
    if (c->n_items >= PK_MAX_ITEMS) return -1;
    if (v->n_items == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 4;
        pk_val **n = malloc(cap * sizeof *n);
        if (track(c, n) != 0) return -1;
        if (v->n_items) memcpy(n, v->items, v->n_items * sizeof *n);
        v->items = n, v->cap = cap;
    }
    v->items[v->n_items++] = x;
    c->n_items++;
    return 0;
}

static int push(pk_ctx *c, pk_val *v) {
    if (!v) return -1;
    if (c->sp == c->stack_cap) {
        if (c->stack_cap >= PK_MAX_STACK) return -1;
        size_t cap = c->stack_cap ? 2 * c->stack_cap : 64;
        pk_val **n = realloc(c->stack, cap * sizeof *n);
        if (!n) return -1;
        c->stack = n, c->stack_cap = cap;
    }
    c->stack[c->sp++] = v;
    return 0;
}

static size_t mark_base(pk_ctx *c) {
    return c->n_marks ? c->marks[c->n_marks - 1] : (size_t)-1;
}

/* The items above the last mark: into a new tuple/list (kind) or, for DICT, pairs. */
static pk_val *collect(pk_ctx *c, int kind) {
    size_t b = c->marks[--c->n_marks];
    pk_val *v = new_val(c, kind);
    if (!v) return NULL;
    for (size_t i = b; i < c->sp; i++)
        if (add_item(c, v, c->stack[i]) != 0) return NULL;
    c->sp = b;
    return v;
}

const pk_val *pk_dict_get(const pk_val *d, const char *key) {
    if (!d || d->kind != PK_DICT) return NULL;
    for (size_t i = 0; i + 1 < d->n_items; i += 2)
        if (pk_str_is(d->items[i], key)) return d->items[i + 1];
    return NULL;
}

int pk_str_is(const pk_val *v, const char *s) {
    return v && v->kind == PK_STR && v->n == strlen(s) && !memcmp(v->s, s, v->n);
}

/* The global MODULE.NAME: an allowed one, or an error naming it. */
static pk_val *resolve_global(pk_ctx *c, const char *mod, size_t ml, const char *name, size_t nl, char *err,
                              size_t errlen) {
    char full[300];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml > 120 ? 120 : ml), mod, (int)(nl > 120 ? 120 : nl),
             name);
    for (char *p = full; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) *p = '?';
    static const struct {
        const char *name;
        int g, dtype;
    } ok[] = {{"collections.OrderedDict", PK_G_ODICT, 0},
              {"torch._utils._rebuild_tensor_v2", PK_G_REBUILD_TENSOR, 0},
              {"torch._utils._rebuild_parameter", PK_G_REBUILD_PARAM, 0},
              {"torch.FloatStorage", PK_G_STORAGE, ST_F32},
              {"torch.HalfStorage", PK_G_STORAGE, ST_F16},
              {"torch.BFloat16Storage", PK_G_STORAGE, ST_BF16}};
    size_t fl = strlen(full);
    if (fl == ml + 1 + nl && !memchr(mod, 0, ml) && !memchr(name, 0, nl))
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            if (!strcmp(full, ok[i].name)) {
                pk_val *v = new_val(c, PK_GLOBAL);
                if (!v) {
                    snprintf(err, errlen, "pickle too large (more than %u values)", PK_MAX_VALUES);
                    return NULL;
                }
                v->i = ok[i].g, v->dtype = ok[i].dtype;
                return v;
            }
    static const struct {
        const char *name, *dtype;
    } other[] = {{"torch.DoubleStorage", "float64"},
                 {"torch.LongStorage", "int64"},
                 {"torch.IntStorage", "int32"},
                 {"torch.ShortStorage", "int16"},
                 {"torch.CharStorage", "int8"},
                 {"torch.ByteStorage", "uint8"},
                 {"torch.BoolStorage", "bool"},
                 {"torch.ComplexFloatStorage", "complex64"},
                 {"torch.ComplexDoubleStorage", "complex128"},
                 {"torch.QInt8Storage", "qint8"},
                 {"torch.QUInt8Storage", "quint8"},
                 {"torch.QInt32Storage", "qint32"}};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (!strcmp(full, other[i].name)) {
            snprintf(err, errlen,
                     "a tensor is stored as %s (%s): only float32, float16 and bfloat16 are supported", full,
                     other[i].dtype);
            return NULL;
        }
    snprintf(err, errlen,
             "the pickle refers to the global '%s', which is refused: a checkpoint may only use "
             "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and "
             "torch.{Float,Half,BFloat16}Storage (nothing in it is run)",
             full);
    return NULL;
}

static int int_arg(const pk_val *v, int64_t *out) {
    if (!v || (v->kind != PK_INT && v->kind != PK_BOOL)) return -1;
    *out = v->i;
    return 0;
}

/* REDUCE: fn(*args) for the allowed functions, as values. */
static pk_val *reduce(pk_ctx *c, const pk_val *fn, const pk_val *args, char *err, size_t errlen) {
    if (fn->kind != PK_GLOBAL || !args || args->kind != PK_TUPLE) {
        snprintf(err, errlen, "pickle: REDUCE of something that is not an allowed global");
        return NULL;
    }
    size_t na = args->n_items;
    pk_val *const *a = args->items;
    if (fn->i == PK_G_ODICT) { /* OrderedDict() or OrderedDict([(k, v), ...]) */
        pk_val *d = new_val(c, PK_DICT);
        if (!d) goto too_big;
        if (na == 0) return d;
        if (na == 1 && (a[0]->kind == PK_LIST || a[0]->kind == PK_TUPLE)) {
            for (size_t i = 0; i < a[0]->n_items; i++) {
                const pk_val *p = a[0]->items[i];
                if ((p->kind != PK_TUPLE && p->kind != PK_LIST) || p->n_items != 2) {
                    snprintf(err, errlen, "pickle: OrderedDict of something other than pairs");
                    return NULL;
                }
                if (add_item(c, d, p->items[0]) || add_item(c, d, p->items[1])) goto too_big;
            }
            return d;
        }
        snprintf(err, errlen, "pickle: OrderedDict with unexpected arguments");
        return NULL;
    }
    if (fn->i ==
        PK_G_REBUILD_TENSOR) { /* (storage, offset, size, stride, requires_grad, hooks[, metadata]) */
        int64_t off;
        if ((na != 6 && na != 7) || a[0]->kind != PK_STORAGE || int_arg(a[1], &off) || off < 0 ||
            a[2]->kind != PK_TUPLE || a[3]->kind != PK_TUPLE || a[2]->n_items != a[3]->n_items ||
            a[2]->n_items > ST_MAX_DIMS) {
            snprintf(err, errlen,
                     "pickle: _rebuild_tensor_v2 with unexpected arguments (storage, offset, size, "
                     "stride; at most 8 dimensions)");
            return NULL;
        }
        pk_tensor *t = calloc(1, sizeof *t);
        if (track(c, t) != 0) goto too_big;
        t->storage = (int)a[0]->i, t->offset = off, t->ndim = (int)a[2]->n_items;
        for (int i = 0; i < t->ndim; i++)
            if (int_arg(a[2]->items[i], &t->shape[i]) || int_arg(a[3]->items[i], &t->stride[i]) ||
                t->shape[i] < 0 || t->stride[i] < 0) {
                snprintf(err, errlen, "pickle: a tensor with a bad size or stride");
                return NULL;
            }
        pk_val *v = new_val(c, PK_TENSOR);
        if (!v) goto too_big;
        v->t = t;
        return v;
    }
    if (fn->i == PK_G_REBUILD_PARAM) { /* (tensor, requires_grad, hooks) */
        if (na != 3 || a[0]->kind != PK_TENSOR) {
            snprintf(err, errlen, "pickle: _rebuild_parameter with unexpected arguments");
            return NULL;
        }
        return a[0];
    }
    snprintf(err, errlen, "pickle: a storage type is called (storages come only from persistent ids)");
    return NULL;
too_big:
    snprintf(err, errlen, "pickle too large (values or items past the bound)");
    return NULL;
}

static const char *opname(unsigned char op) {
    static char b[8];
    if (op >= 0x20 && op < 0x7f)
        snprintf(b, sizeof b, "'%c'", op);
    else
        snprintf(b, sizeof b, "0x%02x", op);
    return b;
}

int pk_parse(pk_ctx *c, const unsigned char *buf, size_t len, size_t *used, pk_val **out, char *err,
             size_t errlen) {
    c->sp = 0, c->n_marks = 0, c->memo_len = 0;
    for (size_t i = 0; i < c->memo_cap; i++)
        c->memo[i] = NULL;
    size_t p = 0;
#define NEED(k)                                                                                              \
    do {                                                                                                     \
        if ((k) > len - p) FAIL("pickle is truncated (at byte %zu)", p);                                     \
    } while (0)
#define POP(v)                                                                                               \
    do {                                                                                                     \
        if (c->sp == 0 || (c->n_marks && c->sp <= mark_base(c)))                                             \
            FAIL("pickle: stack underflow at byte %zu", p);                                                  \
        (v) = c->stack[--c->sp];                                                                             \
    } while (0)
#define PUSH(v)                                                                                              \
    do {                                                                                                     \
        if (push(c, (v)) != 0) FAIL("pickle too large (stack or values past the bound at byte %zu)", p);     \
    } while (0)
#define TOP() (c->sp && (!c->n_marks || c->sp > mark_base(c)) ? c->stack[c->sp - 1] : NULL)
    while (1) {
        NEED(1);
        unsigned char op = buf[p++];
        pk_val *v, *x, *y;
        uint64_t n = 0;
        switch (op) {
        case 0x80: /* PROTO */
            NEED(1);
            if (buf[p] < 2 || buf[p] > 5) FAIL("pickle protocol %d is not supported (2 to 5)", buf[p]);
            p++;
            break;
        case 0x95: /* FRAME: a length hint */
            NEED(8);
            p += 8;
            break;
        case '.': /* STOP */
            POP(v);
            *out = v, *used = p;
            return 0;
        case '(': /* MARK */
            if (c->n_marks == PK_MAX_MARKS) FAIL("pickle: marks nested deeper than %d", PK_MAX_MARKS);
            c->marks[c->n_marks++] = c->sp;
            break;
        case '0': /* POP */
            if (c->n_marks && c->sp == mark_base(c))
                c->n_marks--; /* POP of a mark (pickletools' semantics) */
            else
                POP(v);
            break;
        case '1': /* POP_MARK */
            if (!c->n_marks) FAIL("pickle: POP_MARK without a mark");
            c->sp = c->marks[--c->n_marks];
            break;
        case '2': /* DUP */
            if (!(v = TOP())) FAIL("pickle: DUP of nothing");
            PUSH(v);
            break;
        case 'N':
            PUSH(new_val(c, PK_NONE));
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if ((v = new_val(c, PK_BOOL))) v->i = op == 0x88;
            PUSH(v);
            break;
        case 'J': /* BININT */
        case 'K': /* BININT1 */
        case 'M': /* BININT2 */ {
            int k = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            NEED((size_t)k);
            uint64_t u = 0;
            for (int i = k - 1; i >= 0; i--)
                u = u << 8 | buf[p + i];
            p += (size_t)k;
            if ((v = new_val(c, PK_INT))) v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            PUSH(v);
            break;
        }
        case 0x8a: /* LONG1 */
        case 0x8b: /* LONG4 */ {
            int k = op == 0x8a ? 1 : 4;
            NEED((size_t)k);
            for (int i = k - 1; i >= 0; i--)
                n = n << 8 | buf[p + i];
            p += (size_t)k;
            if (n > PK_MAX_BIGINT) FAIL("pickle: an integer of %llu bytes", (unsigned long long)n);
            NEED(n);
            if (n <= 8) {
                uint64_t u = 0;
                for (int i = (int)n - 1; i >= 0; i--)
                    u = u << 8 | buf[p + (size_t)i];
                if (n && n < 8 && (buf[p + n - 1] & 0x80)) u |= ~0ULL << (8 * n); /* sign-extend */
                if ((v = new_val(c, PK_INT))) v->i = (int64_t)u;
            } else if ((v = new_val(c, PK_BIGINT)))
                v->s = (const char *)buf + p, v->n = n;
            p += n;
            PUSH(v);
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            NEED(8);
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = u << 8 | buf[p + (size_t)i];
            p += 8;
            if ((v = new_val(c, PK_FLOAT))) memcpy(&v->f, &u, 8);
            PUSH(v);
            break;
        }
        case 'X':  /* BINUNICODE */
        case 0x8c: /* SHORT_BINUNICODE */
        case 0x8d: /* BINUNICODE8 */
        case 'T':  /* BINSTRING */
        case 'U':  /* SHORT_BINSTRING */
        case 'B':  /* BINBYTES */
        case 'C':  /* SHORT_BINBYTES */
        case 0x8e: /* BINBYTES8 */ {
            int k = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            NEED((size_t)k);
            for (int i = k - 1; i >= 0; i--)
                n = n << 8 | buf[p + (size_t)i];
            p += (size_t)k;
            NEED(n);
            if ((v = new_val(c, PK_STR))) v->s = (const char *)buf + p, v->n = (size_t)n;
            p += (size_t)n;
            PUSH(v);
            break;
        }
        case ')': /* EMPTY_TUPLE */
            PUSH(new_val(c, PK_TUPLE));
            break;
        case ']': /* EMPTY_LIST */
            PUSH(new_val(c, PK_LIST));
            break;
        case '}': /* EMPTY_DICT */
            PUSH(new_val(c, PK_DICT));
            break;
        case 0x85: /* TUPLE1..3 */
        case 0x86:
        case 0x87: {
            size_t k = (size_t)(op - 0x84);
            if (c->sp < k || (c->n_marks && c->sp - k < mark_base(c)))
                FAIL("pickle: stack underflow at byte %zu", p);
            if (!(v = new_val(c, PK_TUPLE))) FAIL("pickle too large");
            for (size_t i = c->sp - k; i < c->sp; i++)
                if (add_item(c, v, c->stack[i])) FAIL("pickle too large");
            c->sp -= k;
            PUSH(v);
            break;
        }
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 'd': /* DICT */
            if (!c->n_marks) FAIL("pickle: %s without a mark", opname(op));
            if (op == 'd' && (c->sp - mark_base(c)) % 2) FAIL("pickle: DICT of an odd number of items");
            if (!(v = collect(c, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_DICT)))
                FAIL("pickle too large");
            PUSH(v);
            break;
        case 'a': /* APPEND */
            POP(x);
            if (!(v = TOP()) || v->kind != PK_LIST) FAIL("pickle: APPEND to something not a list");
            if (add_item(c, v, x)) FAIL("pickle too large");
            break;
        case 'e': /* APPENDS */
        case 'u': /* SETITEMS */ {
            if (!c->n_marks) FAIL("pickle: %s without a mark", opname(op));
            size_t b = mark_base(c);
            if (b == 0) FAIL("pickle: %s with nothing under its mark", opname(op));
            v = c->stack[b - 1];
            if (v->kind != (op == 'e' ? PK_LIST : PK_DICT) || (op == 'u' && (c->sp - b) % 2))
                FAIL("pickle: %s to the wrong kind of object", opname(op));
            for (size_t i = b; i < c->sp; i++)
                if (add_item(c, v, c->stack[i])) FAIL("pickle too large");
            c->sp = b;
            c->n_marks--;
            break;
        }
        case 's': /* SETITEM */
            POP(y);
            POP(x);
            if (!(v = TOP()) || v->kind != PK_DICT) FAIL("pickle: SETITEM to something not a dict");
            if (add_item(c, v, x) || add_item(c, v, y)) FAIL("pickle too large");
            break;
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
        case 0x94: /* MEMOIZE */ {
            if (op == 0x94)
                n = c->memo_len;
            else {
                int k = op == 'q' ? 1 : 4;
                NEED((size_t)k);
                for (int i = k - 1; i >= 0; i--)
                    n = n << 8 | buf[p + (size_t)i];
                p += (size_t)k;
            }
            if (!(v = TOP())) FAIL("pickle: memo of nothing");
            if (n >= PK_MAX_MEMO) FAIL("pickle: memo index %llu past the bound", (unsigned long long)n);
            if (n >= c->memo_cap) {
                size_t cap = c->memo_cap ? c->memo_cap : 256;
                while (cap <= n)
                    cap *= 2;
                pk_val **m = realloc(c->memo, cap * sizeof *m);
                if (!m) FAIL("out of memory");
                memset(m + c->memo_cap, 0, (cap - c->memo_cap) * sizeof *m);
                c->memo = m, c->memo_cap = cap;
            }
            c->memo_len += !c->memo[n];
            c->memo[n] = v;
            break;
        }
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */ {
            int k = op == 'h' ? 1 : 4;
            NEED((size_t)k);
            for (int i = k - 1; i >= 0; i--)
                n = n << 8 | buf[p + (size_t)i];
            p += (size_t)k;
            if (n >= c->memo_cap || !c->memo[n])
                FAIL("pickle: memo %llu read before it is set", (unsigned long long)n);
            PUSH(c->memo[n]);
            break;
        }
        case 'c': { /* GLOBAL: "module\nname\n" */
            const char *m = (const char *)buf + p;
            const unsigned char *e1 = memchr(buf + p, '\n', len - p < 256 ? len - p : 256);
            if (!e1) FAIL("pickle: GLOBAL without its module line");
            size_t ml = (size_t)(e1 - (buf + p));
            p += ml + 1;
            const char *nm = (const char *)buf + p;
            const unsigned char *e2 = memchr(buf + p, '\n', len - p < 256 ? len - p : 256);
            if (!e2) FAIL("pickle: GLOBAL without its name line");
            size_t nl = (size_t)(e2 - (buf + p));
            p += nl + 1;
            if (!(v = resolve_global(c, m, ml, nm, nl, err, errlen))) return -1;
            PUSH(v);
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            POP(y);
            POP(x);
            if (x->kind != PK_STR || y->kind != PK_STR) FAIL("pickle: STACK_GLOBAL of something not strings");
            if (!(v = resolve_global(c, x->s, x->n, y->s, y->n, err, errlen))) return -1;
            PUSH(v);
            break;
        case 'R': /* REDUCE */
            POP(y);
            POP(x);
            if (!(v = reduce(c, x, y, err, errlen))) return -1;
            PUSH(v);
            break;
        case 'b': /* BUILD: the state is dropped */
            POP(y);
            if (!(v = TOP()) || (v->kind != PK_DICT && v->kind != PK_TENSOR))
                FAIL("pickle: BUILD of something other than a dict or a tensor");
            break;
        case 'Q': /* BINPERSID */ {
            POP(x);
            int idx = c->persid ? c->persid(c->user, x, err, errlen) : -1;
            if (idx < 0) {
                if (!c->persid) snprintf(err, errlen, "pickle: a persistent id where none may be");
                return -1;
            }
            if ((v = new_val(c, PK_STORAGE))) v->i = idx;
            PUSH(v);
            break;
        }
        default:
            FAIL("pickle: opcode %s at byte %zu is not allowed in a checkpoint", opname(op), p - 1);
        }
    }
#undef NEED
#undef POP
#undef PUSH
#undef TOP
}
