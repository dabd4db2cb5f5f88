/* cfg.c - t5serve configuration: the key table, the file/environment/command-line
 * readers and the validation. One table (keys[] below) holds every key with its type,
 * range, default and help, so --help, the defaults and the parsers cannot disagree.
 * What it is not: no I/O besides reading the configuration and API key files. */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { T_STR, T_INT, T_LL };

typedef struct {
    const char *key;
    int type;
    size_t off;
    size_t size;        /* T_STR: buffer size */
    long long min, max; /* T_INT / T_LL */
    const char *def;    /* default, as text */
    const char *help;
} cfg_key;

#define S(f) T_STR, offsetof(cfg_t, f), sizeof(((cfg_t *)0)->f), 0, 0
#define I(f, lo, hi) T_INT, offsetof(cfg_t, f), 0, lo, hi
#define L(f, lo, hi) T_LL, offsetof(cfg_t, f), 0, lo, hi

static const cfg_key keys[] = {
    {"model", S(model), "",
     "model folder (config.json + model.safetensors + tokenizer); a folder or file with only a tokenizer "
     "gives a tokenize-only service"},
    {"host", S(host), "0.0.0.0", "listen address"},
    {"port", I(port, 1, 65535), "8080", "listen port"},
    {"workers", I(workers, 1, 256), "1", "generation workers, each running one continuous batch"},
    {"threads_per_worker", I(threads_per_worker, 0, 256), "0", "GEMM threads per worker (0: CPUs / workers)"},
    {"isa", S(isa), "auto",
     "kernels' instruction set cap: auto (the best the CPU has), generic, avx2, avx512 or amx (AVX-512 with "
     "AMX-INT8 int8 products); every level gives the same answers"},
    {"http_threads", I(http_threads, 1, 64), "2", "HTTP event-loop threads (epoll)"},
    {"max_batch", I(max_batch, 1, 4096), "32",
     "decoder rows per worker batch (a beam request takes num_beams rows)"},
    {"queue_size", I(queue_size, 1, 1000000), "256",
     "sequences waiting for a worker before requests get 429"},
    {"max_body_bytes", L(max_body_bytes, 64, 1LL << 32), "1048576", "largest request body (413 above)"},
    {"max_json_depth", I(max_json_depth, 2, 1000), "16", "deepest JSON nesting accepted"},
    {"max_texts", I(max_texts, 1, 100000), "64", "texts per request"},
    {"max_input_tokens", I(max_input_tokens, 1, 1000000), "512",
     "input tokens per text (400 above unless `truncate` is given)"},
    {"max_new_tokens_limit", I(max_new_tokens_limit, 1, 1000000), "512",
     "largest max_new_tokens a request may ask for (400 above)"},
    {"default_max_new_tokens", I(default_max_new_tokens, 1, 1000000), "20",
     "max_new_tokens of a request that gives none (transformers' 20)"},
    {"max_num_beams", I(max_num_beams, 1, 64), "8", "largest num_beams accepted (also at most max_batch)"},
    {"max_nbest", I(max_nbest, 1, 1024), "64", "largest /tokenize nbest accepted"},
    {"max_connections", I(max_connections, 0, 1000000), "0",
     "concurrent HTTP connections (0: what the open-file limit allows); when full, the oldest idle "
     "keep-alive connection is closed, or a new one gets 503 at once"},
    {"max_connections_per_ip", I(max_connections_per_ip, 0, 1000000), "0",
     "concurrent HTTP connections from one client address (0: no limit); past it, closed at once"},
    {"connection_timeout_s", I(connection_timeout_s, 1, 86400), "60",
     "closes a connection idle (nothing received or sent) this long; a request body still arriving after "
     "request_timeout_ms is cut off too"},
    {"request_timeout_ms", I(request_timeout_ms, 1, 86400000), "60000",
     "deadline of every request, queueing included (504 past it); a request's timeout_ms may only lower it"},
    {"drain_timeout_ms", I(drain_timeout_ms, 0, 86400000), "30000",
     "on SIGTERM/SIGINT, longest wait for in-flight requests before exiting"},
    {"retry_after_s", I(retry_after_s, 0, 3600), "1", "Retry-After seconds of a 429"},
    {"api_key", S(api_key), "",
     "when set, every route but /health and /ready needs `Authorization: Bearer KEY`"},
    {"api_key_file", S(api_key_file), "", "file whose first line is the API key (instead of api_key)"},
    {"log_level", S(log_level), "info", "error, warn, info (adds the access log) or debug"},
    {"compute_type", S(compute_type), "auto",
     "how the weights are held and multiplied: auto (as stored, exact), float32, bfloat16 or int8 "
     "(docs: README, Compute types)"},
    {"int8_float", S(int8_float), "",
     "with compute_type int8: the weight-matrix classes kept in float, comma-separated, as `t5 generate "
     "--int8-float` takes them (wo, qk, vo, wi, head, embed, enc-qk, dec-self-vo, ...); empty: the engine's "
     "default, embed"},
    {"int8_a16", S(int8_a16), "",
     "with compute_type int8: the classes multiplied with 16-bit activations instead of 8 (int8 weights "
     "either way), the same names; empty: the engine's default, layers: all but the head (none: faster with "
     "AMX, less exact)"},
    {"model_name", S(model_name), "",
     "the model's id on the OpenAI routes (/v1/models, the `model` field) and in /info; empty: the model "
     "folder's base name"},
    {"chat_template", S(chat_template), "",
     "how /v1/chat/completions turns messages into the encoder input: empty for the content of the last user "
     "message; else a format where {system}, {user}, {assistant} stand for the contents of the last message "
     "of that role and {messages} for every message as `role: content` lines"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const cfg_key *find_key(const char *name, size_t len) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strlen(keys[i].key) == len && memcmp(keys[i].key, name, len) == 0) return &keys[i];
    return NULL;
}

static int set_key(cfg_t *c, const cfg_key *k, const char *value, const char *source, char *err,
                   size_t errlen) {
    char *field = (char *)c + k->off;
    if (k->type == T_STR) {
        size_t n = strlen(value);
        if (n >= k->size) {
            seterr(err, errlen, "%s: %s is too long (at most %zu bytes)", source, k->key, k->size - 1);
            return -1;
        }
        memcpy(field, value, n + 1);
        return 0;
    }
    const char *p = value;
    while (isspace((unsigned char)*p))
        p++;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(p, &end, 10);
    while (end && isspace((unsigned char)*end))
        end++;
    if (*p == 0 || errno || !end || *end || v < k->min || v > k->max) {
        seterr(err, errlen, "%s: %s must be an integer from %lld to %lld", source, k->key, k->min, k->max);
        return -1;
    }
    if (k->type == T_INT)
        *(int *)field = (int)v;
    else
        *(long long *)field = v;
    return 0;
}

void cfg_init_defaults(cfg_t *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = set_key(c, &keys[i], keys[i].def, "default", NULL, 0);
        if (rc) abort(); /* a broken default is a bug in the table */
    }
}

int cfg_set(cfg_t *c, const char *key, const char *value, const char *source, char *err, size_t errlen) {
    const cfg_key *k = find_key(key, strlen(key));
    if (!k) {
        seterr(err, errlen, "%s: unknown key '%.64s' (see --help)", source, key);
        return -1;
    }
    return set_key(c, k, value, source, err, errlen);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

int cfg_load_file(cfg_t *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        seterr(err, errlen, "cannot read the configuration file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192], src[64];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(src, sizeof src, "configuration file line %d", lineno);
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            seterr(err, errlen, "%s: line too long", src);
            rc = -1;
            break;
        }
        /* '#' starts a comment at the start of a line or after a blank */
        for (char *h = line; *h; h++)
            if (*h == '#' && (h == line || isspace((unsigned char)h[-1]))) {
                *h = 0;
                break;
            }
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            seterr(err, errlen, "%s: expected `key = value`", src);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
            val[vl - 1] = 0;
            val++;
        }
        if (cfg_set(c, key, val, src, err, errlen)) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        seterr(err, errlen, "error reading the configuration file %s", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* "--max-batch" / "--max_batch" -> "max_batch" in out[outlen]; returns 0 or -1. */
static int flag_to_key(const char *flag, size_t len, char *out, size_t outlen) {
    if (len >= outlen) return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = flag[i] == '-' ? '_' : flag[i];
    out[len] = 0;
    return 0;
}

static const char *env_get(char **envp, const char *name) {
    if (!envp) return NULL;
    size_t n = strlen(name);
    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static int read_key_file(cfg_t *c, char *err, size_t errlen) {
    FILE *f = fopen(c->api_key_file, "r");
    if (!f) {
        seterr(err, errlen, "api_key_file: cannot read %s: %s", c->api_key_file, strerror(errno));
        return -1;
    }
    char buf[CFG_KEY_MAX + 2];
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    char *k = trim(buf);
    if (strlen(k) >= CFG_KEY_MAX) {
        seterr(err, errlen, "api_key_file: the key is too long (at most %d bytes)", CFG_KEY_MAX - 1);
        return -1;
    }
    if (!*k) {
        seterr(err, errlen, "api_key_file: the file's first line is empty");
        return -1;
    }
    strcpy(c->api_key, k);
    return 0;
}

int cfg_validate(const cfg_t *c, char *err, size_t errlen) {
    static const char *levels[] = {"error", "warn", "info", "debug"};
    int ok = 0;
    for (size_t i = 0; i < 4; i++)
        ok |= strcmp(c->log_level, levels[i]) == 0;
    if (!ok) {
        seterr(err, errlen, "log_level must be one of error, warn, info, debug");
        return -1;
    }
    if (strcmp(c->isa, "auto") && strcmp(c->isa, "generic") && strcmp(c->isa, "avx2") &&
        strcmp(c->isa, "avx512") && strcmp(c->isa, "amx")) {
        seterr(err, errlen, "isa must be one of auto, generic, avx2, avx512, amx");
        return -1;
    }
    static const char *types[] = {"auto", "float32", "bfloat16", "int8"};
    ok = 0;
    for (size_t i = 0; i < 4; i++)
        ok |= strcmp(c->compute_type, types[i]) == 0;
    if (!ok) {
        seterr(err, errlen, "compute_type must be one of auto, float32, bfloat16, int8");
        return -1;
    }
    if (!c->host[0]) {
        seterr(err, errlen, "host must not be empty");
        return -1;
    }
    if (c->default_max_new_tokens > c->max_new_tokens_limit) {
        seterr(err, errlen, "default_max_new_tokens (%d) must not exceed max_new_tokens_limit (%d)",
               c->default_max_new_tokens, c->max_new_tokens_limit);
        return -1;
    }
    if (!c->help && !c->version && !c->probe && !c->print_config && !c->model[0]) {
        seterr(err, errlen,
               "no model: give --model DIR (or T5SERVE_MODEL, or `model = DIR` in the configuration file)");
        return -1;
    }
    return 0;
}

int cfg_load(cfg_t *c, int argc, char **argv, char **envp, char *err, size_t errlen) {
    cfg_init_defaults(c);
    /* 1. which file: --config on the command line wins over T5SERVE_CONFIG */
    const char *file = env_get(envp, "T5SERVE_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                seterr(err, errlen, "--config needs a value");
                return -1;
            }
            file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        }
    }
    if (file && *file) {
        if (strlen(file) >= sizeof c->config) {
            seterr(err, errlen, "--config: path too long");
            return -1;
        }
        if (cfg_load_file(c, file, err, errlen)) return -1;
        strcpy(c->config, file);
    }
    /* 2. environment: T5SERVE_ + key in upper case */
    for (size_t i = 0; i < NKEYS; i++) {
        char name[80] = "T5SERVE_";
        size_t n = strlen(name);
        for (const char *k = keys[i].key; *k && n < sizeof name - 1; k++)
            name[n++] = (char)toupper((unsigned char)*k);
        name[n] = 0;
        const char *v = env_get(envp, name);
        if (v && set_key(c, &keys[i], v, name, err, errlen)) return -1;
    }
    /* 3. command line */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            c->version = 1;
            continue;
        }
        if (strcmp(a, "--probe") == 0) {
            c->probe = 1;
            continue;
        }
        if (strcmp(a, "--print-config") == 0) {
            c->print_config = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            seterr(err, errlen, "unexpected argument '%.64s' (options are --key value; see --help)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        char key[64];
        const char *val;
        if (flag_to_key(name, nlen, key, sizeof key)) {
            seterr(err, errlen, "unknown option '%.64s' (see --help)", a);
            return -1;
        }
        const cfg_key *k = strcmp(key, "config") == 0 ? NULL : find_key(key, strlen(key));
        if (!k && strcmp(key, "config") != 0) {
            seterr(err, errlen, "unknown option '--%.64s' (see --help)", key);
            return -1;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            seterr(err, errlen, "--%s needs a value", key);
            return -1;
        }
        if (!k) continue; /* --config: handled above */
        char src[80];
        snprintf(src, sizeof src, "--%.60s", name);
        for (char *s = src; *s; s++)
            if (*s == '_') *s = '-';
        if (eq) src[2 + nlen] = 0;
        if (set_key(c, k, val, src, err, errlen)) return -1;
    }
    if (c->api_key_file[0]) {
        if (c->api_key[0]) {
            seterr(err, errlen, "api_key and api_key_file are both set: use one");
            return -1;
        }
        if (read_key_file(c, err, errlen)) return -1;
    }
    return cfg_validate(c, err, errlen);
}

void cfg_print_help(FILE *f, const char *prog) {
    fprintf(f,
            "usage: %s --model DIR [--key value ...]\n"
            "       %s --probe [--host H --port P]   exit 0 when GET /health answers 200\n"
            "       %s --help | --version | --print-config\n\n"
            "t5serve serves T5 generation and SentencePiece tokenization over HTTP.\n"
            "Every key below is set, lowest precedence first, by its default, by the\n"
            "configuration file (--config FILE or T5SERVE_CONFIG; `key = value` lines, # comments),\n"
            "by the environment (T5SERVE_KEY in upper case) and by the command line (--key value).\n\n"
            "  --config FILE  (T5SERVE_CONFIG)  configuration file to read; default: none\n",
            prog, prog, prog);
    for (size_t i = 0; i < NKEYS; i++) {
        char flag[64], env[80];
        snprintf(flag, sizeof flag, "--%s", keys[i].key);
        for (char *s = flag + 2; *s; s++)
            if (*s == '_') *s = '-';
        snprintf(env, sizeof env, "T5SERVE_%s", keys[i].key);
        for (char *s = env + 8; *s; s++)
            *s = (char)toupper((unsigned char)*s);
        fprintf(f, "  %-24s (%s)\n      %s; default: %s\n", flag, env, keys[i].help,
                keys[i].def[0] ? keys[i].def : "(empty)");
    }
}

void cfg_print(FILE *f, const cfg_t *c) {
    fprintf(f, "# effective t5serve configuration%s%s\n", c->config[0] ? " (file: " : "",
            c->config[0] ? c->config : "");
    for (size_t i = 0; i < NKEYS; i++) {
        const char *field = (const char *)c + keys[i].off;
        if (keys[i].type == T_STR) {
            int secret = strcmp(keys[i].key, "api_key") == 0 && field[0];
            fprintf(f, "%s = \"%s\"\n", keys[i].key, secret ? "***" : field);
        } else if (keys[i].type == T_INT) {
            fprintf(f, "%s = %d\n", keys[i].key, *(const int *)field);
        } else {
            fprintf(f, "%s = %lld\n", keys[i].key, *(const long long *)field);
        }
    }
}
