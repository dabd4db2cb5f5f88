/* wp_unicode.c - lookups in the generated Unicode tables (wp_unicode_tables.inc) for the
 * T5 PEGASUS tokenizer, plus strict UTF-8 decoding. See wp_unicode.h. Not a general
 * Unicode library. */
#include "wp_unicode.h"

#include "wp_unicode_tables.inc"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int32_t wp_utf8_decode(const unsigned char *s, size_t len, size_t *adv) {
    unsigned c = s[0];
    *adv = 1;
    if (c < 0x80) return (int32_t)c;
    size_t n;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else
        return -1;
    if (len < n) return -1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *adv = n;
    return (int32_t)cp;
}

size_t wp_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Index of the last run starting at or before cp (starts[0] is 0). */
static size_t run_find(const uint32_t *starts, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n; /* starts[lo] <= cp < starts[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (starts[mid] <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Sorted-array lookup: index of cp in a[n], or -1. */
static long sorted_find(const uint32_t *a, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && a[lo] == cp) ? (long)lo : -1;
}

unsigned wp_uni_flags(uint32_t cp) {
    if (cp < 0x100) return wp_flag_latin1[cp];
    if (cp >= 0x110000) return WP_U_CTRL;
    return wp_flag_val[run_find(wp_flag_start, NELEM(wp_flag_start), cp)];
}

int wp_uni_ccc(uint32_t cp) {
    if (cp < 0x300 || cp >= 0x110000) return 0;
    return wp_ccc_val[run_find(wp_ccc_start, NELEM(wp_ccc_start), cp)];
}

int wp_uni_lower(uint32_t cp, uint32_t *out) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (cp == 0x130) {
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    long i = sorted_find(wp_lower_from, NELEM(wp_lower_from), cp);
    out[0] = i < 0 ? cp : wp_lower_to[i];
    return 1;
}

int wp_uni_decompose(uint32_t cp, uint32_t *out) {
    if (cp < 0xC0) {
        out[0] = cp;
        return 1;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: L V (T) */
        uint32_t s = cp - 0xAC00, t = s % 28;
        out[0] = 0x1100 + s / (21 * 28);
        out[1] = 0x1161 + (s % (21 * 28)) / 28;
        if (t == 0) return 2;
        out[2] = 0x11A7 + t;
        return 3;
    }
    long i = sorted_find(wp_decomp_cp, NELEM(wp_decomp_cp), cp);
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    int n = 0;
    for (uint16_t k = wp_decomp_off[i]; k < wp_decomp_off[i + 1]; k++)
        out[n++] = wp_decomp_pool[k];
    return n;
}
