/* cfg.h - t5serve's configuration: one public header.
 *
 * Every setting has one key (`max_batch`) that names it everywhere: in the
 * configuration file (`max_batch = 32`), in the environment (`T5SERVE_MAX_BATCH=32`)
 * and on the command line (`--max-batch 32` or `--max-batch=32`). Precedence, lowest
 * first: built-in defaults < file < environment < command line. The file is the one
 * named by `--config FILE` (or T5SERVE_CONFIG); without one, only defaults, the
 * environment and the command line apply. config/t5serve.conf is the shipped default
 * file and lists every key with its default.
 * What it is not: it knows nothing of HTTP or models; it only fills and checks a
 * plain struct. No global state: everything goes through the cfg_t the caller owns.
 * Errors: cfg_load returns -1 and writes one clear NUL-terminated line (naming the key,
 * the source and what is allowed) into err[errlen]. */
#ifndef T5SERVE_CFG_H
#define T5SERVE_CFG_H

#include <stddef.h>
#include <stdio.h>

#define CFG_PATH_MAX 4096
#define CFG_KEY_MAX 256

typedef struct {
    char model[CFG_PATH_MAX];        /* model folder (or a bare tokenizer file/folder) */
    char host[256];                  /* listen address */
    int port;                        /* listen port */
    int workers;                     /* generation workers, each running one continuous batch */
    int threads_per_worker;          /* GEMM threads per worker; 0 = CPUs / workers */
    char isa[16];                    /* kernels' instruction set cap: auto, generic, avx2, avx512, amx */
    int http_threads;                /* libmicrohttpd event-loop threads */
    int max_batch;                   /* decoder rows per worker batch */
    int queue_size;                  /* queued sequences before 429 */
    long long max_body_bytes;        /* request body limit (413 above) */
    int max_json_depth;              /* nesting limit of request JSON */
    int max_texts;                   /* texts per request */
    int max_input_tokens;            /* encoder input tokens per text */
    int max_new_tokens_limit;        /* largest max_new_tokens accepted (400 above) */
    int default_max_new_tokens;      /* max_new_tokens when the request gives none */
    int max_num_beams;               /* largest num_beams accepted */
    int max_nbest;                   /* largest /tokenize nbest accepted */
    int max_connections;             /* concurrent HTTP connections; 0: what the descriptors allow */
    int max_connections_per_ip;      /* from one client address; 0: no limit */
    int connection_timeout_s;        /* idle connections closed after this */
    int request_timeout_ms;          /* deadline of every request (504 past it) */
    int drain_timeout_ms;            /* SIGTERM: longest wait for in-flight requests */
    int retry_after_s;               /* Retry-After of a 429 */
    char api_key[CFG_KEY_MAX];       /* when set: `Authorization: Bearer KEY` needed */
    char api_key_file[CFG_PATH_MAX]; /* file whose first line is the API key */
    char log_level[16];              /* error, warn, info (access log), debug */
    char compute_type[16];           /* auto, float32, bfloat16, int8 (engine t5_compute_type) */
    char int8_float[256];            /* int8: matrix classes kept in float ("": the engine's default) */
    char int8_a16[256];              /* int8: classes with 16-bit activations ("": the engine's default) */
    char model_name[128];            /* model id of the OpenAI routes and /info ("": the folder's name) */
    char chat_template[4096];        /* /v1/chat/completions messages -> input ("": the last user message) */
    char config[CFG_PATH_MAX];       /* the configuration file read ("" none) */
    /* modes, command line only */
    int help;         /* --help: print usage and every key, exit 0 */
    int version;      /* --version */
    int probe;        /* --probe: exit 0 when GET /health on host:port is 200 */
    int print_config; /* --print-config: print the effective configuration */
} cfg_t;

/* Fills c with the built-in defaults. */
void cfg_init_defaults(cfg_t *c);

/* Builds the effective configuration: defaults, then the file (--config FILE on argv,
 * else T5SERVE_CONFIG in envp), then every T5SERVE_KEY of envp (a NULL-terminated
 * "NAME=value" array, e.g. `environ`; NULL for none), then argv[1..argc).
 * Then reads api_key_file and validates the whole. Returns 0, or -1 with err set.
 * Unknown T5SERVE_* variables are ignored (orchestrators inject some); unknown file
 * keys and unknown flags are errors. With --help/--version/--probe/--print-config the
 * mode field is set and `model` may stay empty. */
int cfg_load(cfg_t *c, int argc, char **argv, char **envp, char *err, size_t errlen);

/* Sets one key from a string as the given source would ("file line 3", "T5SERVE_PORT",
 * "--port"): parses and range-checks the value. Returns 0, or -1 with err set. */
int cfg_set(cfg_t *c, const char *key, const char *value, const char *source, char *err, size_t errlen);

/* Reads a `key = value` file (# comments, blank lines, optional "quotes") into c.
 * Returns 0, or -1 with err naming the line. */
int cfg_load_file(cfg_t *c, const char *path, char *err, size_t errlen);

/* Checks ranges that involve several keys and required keys. Returns 0 or -1. */
int cfg_validate(const cfg_t *c, char *err, size_t errlen);

/* Prints the usage text listing every key, its flag, env variable and default. */
void cfg_print_help(FILE *f, const char *prog);

/* Prints the effective configuration as a valid configuration file (the API key masked). */
void cfg_print(FILE *f, const cfg_t *c);

#endif
