/* shuffle.c - shuffles the lines of a text file uniformly at random, within a memory bound, so
 * that files far larger than memory can be shuffled (the pretraining data pipeline uses it).
 *
 * Method: when the input fits in the memory bound it is shuffled in memory (Fisher-Yates over
 * the line offsets). Otherwise every line is sent to one of K temporary bucket files chosen
 * uniformly at random, and each bucket is shuffled the same way, recursively, and written out
 * in bucket order. Random scatter + uniform shuffle of each bucket + concatenation gives a
 * uniformly random permutation (Rao 1961, Sandelius 1962). The same seed, input and memory
 * bound give the same output, whether the input is a file or a pipe: the bucket count depends
 * on the memory bound only (never on the input size, which a pipe does not tell).
 *
 * Output: -o FILE is written to a temporary file in FILE's folder and renamed over FILE only
 * when the whole shuffle succeeded, so a failed run leaves an existing FILE as it was (a
 * device or other non-regular FILE, like /dev/null, is written in place).
 *
 * Memory: one block of -m bytes, allocated once: 3/4 of it holds lines and their offsets (data
 * from the front, 8-byte offsets from the back), 1/4 the bucket and output buffers. Nothing
 * else grows with the input. Lines end at '\n'; a last line without one gets one. A single
 * line longer than about 3/4 of the bound is an error, reported as soon as the line is read
 * that far.
 *
 * Not a sort, not a sampler, not for binary records other than '\n'-separated lines. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_MEM ((size_t)64 << 10)
#define MAX_BUCKETS 256
#define MIN_BUCKET_BUF 1024
#define MAX_DEPTH 24

/* xoshiro256** seeded by splitmix64: a small, well-tested generator with a 64-bit seed. */
typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return out;
}

/* uniform in [0, n), n > 0, without modulo bias (Lemire's multiply-and-reject) */
static uint64_t rng_below(rng_t *r, uint64_t n) {
    __uint128_t m = (__uint128_t)rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t floor = -n % n;
        while (lo < floor) {
            m = (__uint128_t)rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

typedef struct {
    char *arena; /* [arena_cap] lines from the front, uint64 line offsets from the back */
    size_t arena_cap;
    char *reserve; /* [reserve_cap] bucket write buffers, or the output buffer */
    size_t reserve_cap;
    const char *tmpdir; /* where bucket files are made (and unlinked at once) */
    int out_fd;
    rng_t rng;
    char err[160]; /* the first error, for main to print */
} shuffler_t;

static int fail(shuffler_t *s, const char *what, int errnum) {
    if (!s->err[0]) {
        if (errnum)
            snprintf(s->err, sizeof s->err, "%s: %s", what, strerror(errnum));
        else
            snprintf(s->err, sizeof s->err, "%s", what);
    }
    return -1;
}

/* reads up to n bytes; returns bytes read (0 at end of file) or -1 with errno set */
static ssize_t read_some(int fd, char *buf, size_t n) {
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r >= 0 || errno != EINTR) return r;
    }
}

static int write_all(shuffler_t *s, int fd, const char *buf, size_t n, const char *what) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return fail(s, what, errno);
        buf += w, n -= (size_t)w;
    }
    return 0;
}

/* A bucket: a temporary file (already unlinked) and its write buffer inside s->reserve. */
typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    uint64_t bytes; /* written so far */
} bucket_t;

static int bucket_write(shuffler_t *s, bucket_t *b, const char *p, size_t n) {
    b->bytes += n;
    if (b->len + n > b->cap) {
        if (write_all(s, b->fd, b->buf, b->len, "cannot write a temporary file") < 0) return -1;
        b->len = 0;
        if (n > b->cap) return write_all(s, b->fd, p, n, "cannot write a temporary file");
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

static int make_temp(shuffler_t *s) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/shuffle.XXXXXX", s->tmpdir) >= (int)sizeof path)
        return fail(s, "the temporary directory name is too long", 0);
    int fd = mkstemp(path);
    if (fd < 0) return fail(s, "cannot create a temporary file", errno);
    unlink(path);
    return fd;
}

/* Shuffles the lines in s->arena: offs[0..n) (pointing into arena[0..data_len)) and writes them
 * to s->out_fd through s->reserve. Every line ends with '\n'. */
static int shuffle_in_memory(shuffler_t *s, uint64_t *offs, size_t n, size_t data_len) {
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(&s->rng, i);
        uint64_t t = offs[i - 1];
        offs[i - 1] = offs[j], offs[j] = t;
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = s->arena + offs[i];
        const char *nl = memchr(p, '\n', data_len - offs[i]);
        size_t len = (size_t)(nl - p) + 1;
        if (used + len > s->reserve_cap) {
            if (write_all(s, s->out_fd, s->reserve, used, "cannot write the output") < 0) return -1;
            used = 0;
        }
        if (len > s->reserve_cap) {
            if (write_all(s, s->out_fd, p, len, "cannot write the output") < 0) return -1;
            continue;
        }
        memcpy(s->reserve + used, p, len);
        used += len;
    }
    return write_all(s, s->out_fd, s->reserve, used, "cannot write the output");
}

/* A line of n bytes (so far) must fit in the arena with two offsets, or no bucket could hold it. */
static int check_line(shuffler_t *s, size_t n) {
    if (n + 2 * sizeof(uint64_t) + 1 < s->arena_cap) return 0;
    return fail(s, "a line is longer than the memory bound allows (raise -m)", 0);
}

/* Shuffles the lines read from in_fd into s->out_fd. */
static int shuffle_fd(shuffler_t *s, int in_fd, int depth) {
    if (depth > MAX_DEPTH) return fail(s, "internal error: bucket recursion too deep", 0);
    char *a = s->arena;
    size_t cap = s->arena_cap, len = 0, scan = 0, nlines = 0;
    uint64_t *top = (uint64_t *)(void *)(a + cap); /* offsets grow down from here */
    size_t line_start = 0;
    int eof = 0;
    /* 1. fill the arena with whole lines and their offsets, or find that they do not fit */
    int full = 0;
    for (;;) {
        while (scan < len) { /* index the lines completed by the last read */
            char *p = memchr(a + scan, '\n', len - scan);
            if (!p) {
                scan = len;
                break;
            }
            if ((nlines + 2) * sizeof(uint64_t) + len + 1 > cap) { /* keep room for a last line */
                full = 1;
                break;
            }
            *--top = line_start;
            nlines++;
            line_start = scan = (size_t)(p - a) + 1;
        }
        size_t idx_bytes = (nlines + 1) * sizeof(uint64_t);
        if (full || len + 1 + idx_bytes >= cap) break;
        ssize_t r = read_some(in_fd, a + len, cap - idx_bytes - len - 1);
        if (r < 0) return fail(s, "cannot read the input", errno);
        if (r == 0) {
            eof = 1;
            break;
        }
        len += (size_t)r;
    }
    if (eof) {
        if (line_start < len) { /* a last line without '\n' */
            a[len++] = '\n';
            *--top = line_start;
            nlines++;
        }
        return shuffle_in_memory(s, top, nlines, len);
    }

    /* 2. too large: scatter every line into one of k random buckets; k depends on the memory
     * bound only, so that a file and a pipe of it (whose size is unknown) give the same output */
    size_t k = s->reserve_cap / MIN_BUCKET_BUF;
    if (k > MAX_BUCKETS) k = MAX_BUCKETS;
    if (k < 2) k = 2;
    bucket_t bk[MAX_BUCKETS];
    size_t nb = 0;
    int rc = 0;
    for (; nb < k; nb++) {
        bk[nb].fd = make_temp(s);
        if (bk[nb].fd < 0) {
            rc = -1;
            goto done;
        }
        bk[nb].cap = s->reserve_cap / k;
        bk[nb].buf = s->reserve + nb * bk[nb].cap;
        bk[nb].len = 0, bk[nb].bytes = 0;
    }
    /* the arena is now a plain read buffer: stream its bytes, then the rest of the input */
    bucket_t *cur = &bk[rng_below(&s->rng, k)];
    size_t this_line = 0;
    char last = '\n';
    for (;;) {
        size_t pos = 0;
        while (pos < len) {
            char *nl = memchr(a + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - a) + 1 : len;
            if ((rc = bucket_write(s, cur, a + pos, end - pos)) < 0) goto done;
            this_line += end - pos;
            if ((rc = check_line(s, this_line)) < 0) goto done;
            if (nl) {
                this_line = 0;
                cur = &bk[rng_below(&s->rng, k)];
            }
            pos = end;
        }
        if (len) last = a[len - 1];
        ssize_t r = read_some(in_fd, a, cap);
        if (r < 0) {
            rc = fail(s, "cannot read the input", errno);
            goto done;
        }
        if (r == 0) break;
        len = (size_t)r;
    }
    if (last != '\n' && ((rc = bucket_write(s, cur, "\n", 1)) < 0 || (rc = check_line(s, this_line + 1)) < 0))
        goto done;
    for (size_t i = 0; i < nb; i++) {
        if ((rc = write_all(s, bk[i].fd, bk[i].buf, bk[i].len, "cannot write a temporary file")) < 0)
            goto done;
        bk[i].len = 0;
    }
    /* 3. shuffle each bucket (the reserve is free again: buffers flushed) and append it */
    for (size_t i = 0; i < nb; i++) {
        if (lseek(bk[i].fd, 0, SEEK_SET) < 0) {
            rc = fail(s, "cannot rewind a temporary file", errno);
            goto done;
        }
        if (bk[i].bytes && (rc = shuffle_fd(s, bk[i].fd, depth + 1)) < 0) goto done;
        close(bk[i].fd);
        bk[i].fd = -1;
    }
done:
    for (size_t i = 0; i < nb; i++)
        if (bk[i].fd >= 0) close(bk[i].fd);
    return rc;
}

/* "64M", "1G", "65536": bytes, with K/M/G (binary) suffixes; 0 on a malformed or huge value */
static size_t parse_size(const char *t) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno || end == t || *t == '-') return 0;
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end || v > (SIZE_MAX >> 1) >> shift) return 0;
    return (size_t)(v << shift);
}

static void usage(FILE *f) {
    fprintf(f, "usage: shuffle [-m MEM] [-s SEED] [-T TMPDIR] [-o OUTPUT] [INPUT]\n"
               "Shuffles the lines of INPUT (or standard input) uniformly at random into OUTPUT\n"
               "(or standard output), using at most about MEM bytes of memory; larger inputs go\n"
               "through temporary files in TMPDIR.\n"
               "  -m MEM     memory bound, bytes or with a K/M/G suffix, at least 64K (default 256M)\n"
               "  -s SEED    random seed, an unsigned 64-bit integer (default: a random one);\n"
               "             the same seed, input and MEM give the same output\n"
               "  -T TMPDIR  directory for temporary files (default $TMPDIR, else /tmp)\n"
               "  -o OUTPUT  output file (default standard output); must not be the input; written\n"
               "             to a temporary file beside it, renamed over OUTPUT when all went well\n");
}

int main(int argc, char **argv) {
    size_t mem = (size_t)256 << 20;
    uint64_t seed = 0;
    int have_seed = 0, opt;
    const char *out_path = NULL, *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    if (argc == 2 && !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    while ((opt = getopt(argc, argv, "m:s:T:o:h")) != -1) {
        char *end;
        switch (opt) {
        case 'm':
            mem = parse_size(optarg);
            if (mem < MIN_MEM) {
                fprintf(stderr, "shuffle: -m needs a size of at least 64K (like 64M or 1G)\n");
                return 2;
            }
            break;
        case 's':
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || *optarg == '-') {
                fprintf(stderr, "shuffle: -s needs an unsigned 64-bit integer\n");
                return 2;
            }
            have_seed = 1;
            break;
        case 'T':
            tmpdir = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "shuffle: at most one input file\n");
        usage(stderr);
        return 2;
    }
    if (!have_seed && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        fprintf(stderr, "shuffle: cannot get a random seed: %s\n", strerror(errno));
        return 1;
    }
    int in_fd = 0;
    const char *in_path = optind < argc ? argv[optind] : NULL;
    if (in_path && strcmp(in_path, "-")) {
        in_fd = open(in_path, O_RDONLY);
        if (in_fd < 0) {
            fprintf(stderr, "shuffle: cannot open the input file: %s\n", strerror(errno));
            return 1;
        }
    }
    struct stat ist, ost;
    if (fstat(in_fd, &ist) < 0) {
        fprintf(stderr, "shuffle: cannot stat the input: %s\n", strerror(errno));
        return 1;
    }
    if (S_ISDIR(ist.st_mode)) {
        fprintf(stderr, "shuffle: the input is a directory\n");
        return 1;
    }
    int out_fd = 1;
    char tmp_out[PATH_MAX] = ""; /* -o FILE: the temporary file renamed over FILE at the end */
    if (out_path) {
        int exists = stat(out_path, &ost) == 0;
        if (exists && ost.st_dev == ist.st_dev && ost.st_ino == ist.st_ino) {
            fprintf(stderr, "shuffle: the output file is the input file\n");
            return 2;
        }
        if (exists && !S_ISREG(ost.st_mode)) { /* a device or a pipe: written in place */
            out_fd = open(out_path, O_WRONLY | O_TRUNC);
        } else {
            const char *slash = strrchr(out_path, '/');
            int dir_len = slash ? (int)(slash - out_path) + 1 : 0;
            if (snprintf(tmp_out, sizeof tmp_out, "%.*s.shuffle-out.XXXXXX", dir_len, out_path) >=
                (int)sizeof tmp_out) {
                fprintf(stderr, "shuffle: the output file name is too long\n");
                return 2;
            }
            out_fd = mkstemp(tmp_out);
            mode_t um = umask(0);
            umask(um);
            if (out_fd >= 0 && fchmod(out_fd, exists ? ost.st_mode & 07777 : 0666 & ~um) < 0) {
                close(out_fd);
                unlink(tmp_out);
                out_fd = -1;
            }
        }
        if (out_fd < 0) {
            fprintf(stderr, "shuffle: cannot create the output file: %s\n", strerror(errno));
            return 1;
        }
    }
    shuffler_t s = {0};
    s.arena_cap = (mem / 4 * 3) & ~(size_t)7;
    s.reserve_cap = mem - s.arena_cap;
    s.arena = malloc(mem);
    if (!s.arena) {
        fprintf(stderr, "shuffle: cannot allocate the memory bound (%zu bytes)\n", mem);
        return 1;
    }
    s.reserve = s.arena + s.arena_cap;
    s.tmpdir = tmpdir;
    s.out_fd = out_fd;
    rng_seed(&s.rng, seed);
    int rc = shuffle_fd(&s, in_fd, 0);
    free(s.arena);
    if (in_fd != 0) close(in_fd);
    if (out_fd != 1 && close(out_fd) < 0 && rc == 0) rc = fail(&s, "cannot write the output", errno);
    if (tmp_out[0] && rc == 0 && rename(tmp_out, out_path) < 0)
        rc = fail(&s, "cannot write the output", errno);
    if (tmp_out[0] && rc < 0) unlink(tmp_out);
    if (rc < 0) {
        fprintf(stderr, "shuffle: %s\n", s.err);
        return 1;
    }
    return 0;
}
