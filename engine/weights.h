/* weights.h - the engine's one loader interface for checkpoint files (private to engine/,
 * included through t5_internal.h): open a model folder, find a tensor by name ->
 * {dtype, shape, pointer}. The pointer is into a read-only mapping of the file where
 * the bytes can be used in place, else into a copy the set owns. Behind it:
 *   safetensors.c  model.safetensors, or the shards of model.safetensors.index.json
 *   torch.c        pytorch_model.bin (torch's zip format and the legacy pickle
 *                  sequence), or the shards of pytorch_model.bin.index.json,
 *                  through zip.c and the restricted unpickler pickle.c.
 * "st" reads "stored tensors": the set is the same whatever the file format.
 * Every tensor's data is aligned to its element size, lies wholly inside its mapping or
 * copy, and its name is unique in the set (duplicates are load errors).
 * What it is not: no dtype conversion and no T5 names (model.c). */
#ifndef T5SERVE_WEIGHTS_H
#define T5SERVE_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

enum { ST_F32 = 1, ST_F16 = 2, ST_BF16 = 3, ST_OTHER = 4 };

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    int dtype; /* ST_* */
    char dtype_name[16];
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* nbytes long: in a mapping or a copy owned by the set */
    size_t nbytes;
} st_tensor;

typedef struct st_set st_set; /* the tensors of one model folder */

/* The weight files looked for, in order of preference (the first present is loaded:
 * safetensors wins over torch files); NULL-terminated. */
extern const char *const st_weight_files[];

/* Opens the weights of DIR: the first of st_weight_files present. Returns a set the
 * caller frees with st_close, or NULL with err set (naming the files looked for when
 * there are none). */
st_set *st_open_dir(const char *dir, char *err, size_t errlen);
void st_close(st_set *s);
const st_tensor *st_find(const st_set *s, const char *name); /* NULL if absent */
int st_count(const st_set *s);                               /* tensors in the set */
const st_tensor *st_get(const st_set *s, int i);             /* 0 <= i < st_count, file order */
size_t st_mapped_bytes(const st_set *s);                     /* bytes of file mapped */
size_t st_copied_bytes(const st_set *s);                     /* bytes of heap copies */
/* "safetensors", "pytorch-zip" or "pytorch-legacy" (the format of the files read). */
const char *st_format(const st_set *s);
/* What the load noticed, one line each ("" when nothing): entries copied instead of
 * mapped (compressed, misaligned, non-contiguous views), non-finite weights. */
const char *st_notes(const st_set *s);

/* dst[n] in dtype TO from src[n] in dtype FROM (ST_F32 / ST_F16 / ST_BF16): widening is
 * exact, narrowing rounds to nearest even (NaN stays NaN, float16 overflow is Inf). */
void st_convert(const void *src, int from, void *dst, int to, size_t n);
uint16_t st_float_to_bf16(float f);
uint16_t st_float_to_half(float f);
float st_half_to_float(uint16_t h);

/* ---- for the format readers (safetensors.c, torch.c) ---- */

/* Maps PATH read-only (LABEL, a name without folders, in errors); the set unmaps it on
 * st_close. Returns the mapping (size in *size) or NULL with err set. */
const unsigned char *st_map_file(st_set *s, const char *path, const char *label, size_t *size, char *err,
                                 size_t errlen);
/* n bytes of heap the set owns (freed by st_close), or NULL with err set. */
void *st_alloc(st_set *s, size_t n, char *err, size_t errlen);
/* Adds a tensor (name copied; data must stay valid as long as the set). data is copied
 * into the set when not aligned to the element size. 0, or <0 with err set (duplicate
 * name, out of memory). */
int st_add(st_set *s, const char *name, int dtype, const char *dtype_name, int ndim, const int64_t *shape,
           const void *data, size_t nbytes, char *err, size_t errlen);
/* Appends a line to the notes (printf format). */
void st_note(st_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_set_format(st_set *s, const char *format);
/* Bytes per element of ST_F32 / ST_F16 / ST_BF16 (0 for others). */
size_t st_elsize(int dtype);
/* *out = product of shape[0..ndim), 0 when any is 0; -1 when it exceeds limit (no wrap). */
int st_numel(const int64_t *shape, int ndim, uint64_t limit, uint64_t *out);

/* The readers: each adds the tensors of one file to s. 0 or <0 with err set. */
int st_read_safetensors(st_set *s, const char *path, const char *label, char *err, size_t errlen);
int st_read_torch(st_set *s, const char *path, const char *label, char *err, size_t errlen);

/* One tensor to write: dtype "F32", "F16" or "BF16" (or any name, for tests); data
 * holds nbytes bytes in that dtype, little-endian. */
typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_out;

/* Writes a .safetensors file (header padded to 8 bytes; tensors in the given order,
 * contiguous) through PATH.tmp renamed to PATH. 0 or <0 with err set. */
int st_write(const char *path, const st_out *t, int n, char *err, size_t errlen);

#endif
