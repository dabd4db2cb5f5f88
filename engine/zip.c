/* zip.c - the zip reader torch.c needs for torch's zip checkpoints (torch >= 1.6 writes
 * a zip of stored entries, each padded to a 64-byte offset): the central directory
 * (ZIP64 too), each entry's local header for where its bytes start, and inflate (zlib)
 * for a deflated entry. Every offset and length is checked against the file size.
 * What it is not: a writer, encryption, multi-disk archives, or a CRC check of stored
 * entries (that would read every weight byte at load; torch does not check them either). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "torchfile.h"

#define ZIP_MAX_ENTRIES (1 << 20)

static uint64_t rd(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The ZIP64 extra field of a central header: replaces the values that were 0xffffffff. */
static int zip64_extra(const unsigned char *x, size_t xlen, uint64_t *usize, uint64_t *csize,
                       uint64_t *loff) {
    size_t p = 0;
    while (p + 4 <= xlen) {
        unsigned id = (unsigned)rd(x + p, 2), len = (unsigned)rd(x + p + 2, 2);
        if (p + 4 + len > xlen) return -1;
        if (id == 1) {
            size_t q = p + 4, end = q + len;
            uint64_t *f[3] = {usize, csize, loff};
            for (int i = 0; i < 3; i++)
                if (*f[i] == 0xffffffffu) {
                    if (q + 8 > end) return -1;
                    *f[i] = rd(x + q, 8), q += 8;
                }
            return 0;
        }
        p += 4 + len;
    }
    return 0;
}

int zip_list(const unsigned char *buf, size_t size, zip_entry **out, int *n_out, char *err, size_t errlen) {
    *out = NULL, *n_out = 0;
    if (size < 22) {
        snprintf(err, errlen, "not a zip archive (too short)");
        return -1;
    }
    /* end of central directory: the last signature within 64 KiB + 22 of the end */
    size_t lo = size > 65557 ? size - 65557 : 0, eocd = 0;
    int found = 0;
    for (size_t p = size - 22 + 1; p-- > lo;)
        if (rd(buf + p, 4) == 0x06054b50) {
            eocd = p, found = 1;
            break;
        }
    if (!found) {
        snprintf(err, errlen, "not a zip archive (no end of central directory)");
        return -1;
    }
    uint64_t count = rd(buf + eocd + 10, 2), cd_size = rd(buf + eocd + 12, 4),
             cd_off = rd(buf + eocd + 16, 4);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) { /* ZIP64 */
        if (eocd < 20 || rd(buf + eocd - 20, 4) != 0x07064b50) {
            snprintf(err, errlen, "zip archive: ZIP64 locator missing");
            return -1;
        }
        uint64_t z = rd(buf + eocd - 20 + 8, 8);
        if (size < 56 || z > size - 56 || rd(buf + z, 4) != 0x06064b50) {
            snprintf(err, errlen, "zip archive: bad ZIP64 end of central directory");
            return -1;
        }
        count = rd(buf + z + 32, 8), cd_size = rd(buf + z + 40, 8), cd_off = rd(buf + z + 48, 8);
    }
    if (count > ZIP_MAX_ENTRIES || cd_off > size || cd_size > size - cd_off) {
        snprintf(err, errlen, "zip archive: central directory out of bounds (%llu entries)",
                 (unsigned long long)count);
        return -1;
    }
    zip_entry *e = calloc(count + 1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const unsigned char *cd = buf + cd_off;
    size_t p = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (p + 46 > cd_size || rd(cd + p, 4) != 0x02014b50) {
            snprintf(err, errlen, "zip archive: central directory entry %llu is corrupt",
                     (unsigned long long)i);
            free(e);
            return -1;
        }
        const unsigned char *h = cd + p;
        unsigned flags = (unsigned)rd(h + 8, 2), method = (unsigned)rd(h + 10, 2);
        uint64_t csize = rd(h + 20, 4), usize = rd(h + 24, 4), loff = rd(h + 42, 4);
        size_t nlen = (size_t)rd(h + 28, 2), xlen = (size_t)rd(h + 30, 2), clen = (size_t)rd(h + 32, 2);
        if (p + 46 + nlen + xlen + clen > cd_size ||
            zip64_extra(h + 46 + nlen, xlen, &usize, &csize, &loff) != 0) {
            snprintf(err, errlen, "zip archive: central directory entry %llu is corrupt",
                     (unsigned long long)i);
            free(e);
            return -1;
        }
        e[i].name = (const char *)h + 46, e[i].name_len = nlen;
        e[i].method = (int)method, e[i].csize = csize, e[i].usize = usize;
        /* the local header: its own name and extra lengths decide where the bytes start */
        if (loff > size - 30 || rd(buf + loff, 4) != 0x04034b50) {
            snprintf(err, errlen, "zip archive: entry '%.*s' has a bad local header",
                     (int)(nlen > 200 ? 200 : nlen), e[i].name);
            free(e);
            return -1;
        }
        uint64_t data = loff + 30 + rd(buf + loff + 26, 2) + rd(buf + loff + 28, 2);
        if ((flags & 1) || (method != 0 && method != 8) || (method == 0 && csize != usize) || data > size ||
            csize > size - data) {
            snprintf(err, errlen, "zip archive: entry '%.*s' is %s", (int)(nlen > 200 ? 200 : nlen),
                     e[i].name,
                     (flags & 1)                    ? "encrypted"
                     : (method != 0 && method != 8) ? "compressed with an unknown method"
                                                    : "out of bounds");
            free(e);
            return -1;
        }
        e[i].data_off = data;
        p += 46 + nlen + xlen + clen;
    }
    *out = e, *n_out = (int)count;
    return 0;
}

int zip_inflate(const unsigned char *buf, const zip_entry *e, void *dst, char *err, size_t errlen) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
        snprintf(err, errlen, "out of memory (inflate)");
        return -1;
    }
    const unsigned char *src = buf + e->data_off;
    uint64_t in_left = e->csize, out_left = e->usize + 1; /* one spare byte: room to see the end */
    unsigned char *o = dst;
    int rc;
    for (;;) { /* in steps of at most 1 GiB: z_stream counts in 32 bits */
        int refilled = 0;
        if (!z.avail_in && in_left) {
            z.avail_in = (uInt)(in_left < (1u << 30) ? in_left : (1u << 30));
            z.next_in = (unsigned char *)src, src += z.avail_in, in_left -= z.avail_in, refilled = 1;
        }
        if (!z.avail_out && out_left) {
            z.avail_out = (uInt)(out_left < (1u << 30) ? out_left : (1u << 30));
            z.next_out = o, o += z.avail_out, out_left -= z.avail_out, refilled = 1;
        }
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_OK || (rc == Z_BUF_ERROR && refilled)) continue; /* progress, or a refill consumed */
        break;
    }
    int ok = rc == Z_STREAM_END && e->usize + 1 - out_left - z.avail_out == e->usize;
    inflateEnd(&z);
    if (!ok) {
        snprintf(err, errlen, "zip entry '%.*s': corrupt deflate data",
                 (int)(e->name_len > 200 ? 200 : e->name_len), e->name);
        return -1;
    }
    return 0;
}
