/* cmd_bench_embed.c - `t5 bench embed --model DIR`: embedding throughput next to the
 * machine's FMA peak, measured in the same run. For each batch size B it embeds B
 * random inputs (lengths uniform in [--min-tokens, --max-tokens], or --tokens N each)
 * the way a server would: all admitted to one continuous batch (t5_batch_add_embed),
 * one step (a grouped encoder pass), the folder's sentence pipeline (pooling, Dense,
 * Normalize) per input; after one untimed warm-up batch, repeated for about --seconds
 * (at least once). Prints sentences/s, tokens/s,
 * encoder GFLOP/s (projections + attention) over the FMA peak, the share of the threads'
 * time the process got (cpu: below 100% on a shared machine), load time and peak RSS.
 * What it is not: a pass/fail test; it prints figures. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cmds.h"
#include "t5_dev.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) {
    return clock_s(CLOCK_MONOTONIC);
}

/* ---- the benchmark ---- */

typedef struct {
    const t5_embedder *e;
    float *out; /* [dim] scratch */
    int done, failed;
} sink;

static void on_hidden(void *user, const float *h, int n) {
    sink *s = user;
    char err[256];
    if (!h || t5_embed_sentence(s->e, NULL, h, n, s->out, err, sizeof err) != 0) s->failed++;
    s->done++;
}

static void usage(FILE *f) {
    fprintf(f, "usage: t5 bench embed --model DIR [--threads N] [--batches 1,32,256] [--min-tokens 16]\n"
               "       [--max-tokens 128] [--tokens N] [--seconds S] [--seed S]\n"
               "       " T5_LOAD_USAGE "\n"
               "Sentences/s and tokens/s of the folder's embedding pipeline next to the FMA peak.\n");
}

int cmd_bench_embed(int argc, char **argv) {
    const char *dir = NULL, *batches = "1,32,256";
    int threads = 2, lo = 16, hi = 128;
    double seconds = 3;
    uint64_t seed = 1;
    static const struct option opts[] = {{"model", 1, 0, 'm'},
                                         {"threads", 1, 0, 't'},
                                         {"batches", 1, 0, 'b'},
                                         {"min-tokens", 1, 0, 'l'},
                                         {"max-tokens", 1, 0, 'u'},
                                         {"tokens", 1, 0, 'n'},
                                         {"seconds", 1, 0, 's'},
                                         {"seed", 1, 0, 'S'},
                                         {"help", 0, 0, 'h'},
                                         T5_LOAD_OPTIONS,
                                         {0, 0, 0, 0}};
    t5_load_params lp;
    t5_load_default_params(&lp);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:h", opts, NULL)) != -1) {
        int lc = cli_load_option("bench embed", c, optarg, &lp);
        if (lc < 0) return 2;
        if (lc) continue;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'b':
            batches = optarg;
            break;
        case 'l':
            lo = atoi(optarg);
            break;
        case 'u':
            hi = atoi(optarg);
            break;
        case 'n':
            lo = hi = atoi(optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'S':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dir || threads < 1 || threads > 64 || lo < 1 || hi < lo || hi > 1 << 16 || seconds < 0) {
        usage(stderr);
        return 2;
    }
    char err[512], desc[512];
    double t0 = now();
    t5_model *m = t5_model_load_with(dir, &lp, err, sizeof err);
    t5_embedder *e = m ? t5_embedder_load(dir, m->cfg.d_model, err, sizeof err) : NULL;
    if (!e) {
        fprintf(stderr, "t5 bench embed: %s\n", err);
        t5_model_free(m);
        return 1;
    }
    double t_load = now() - t0;
    const t5_config *cf = &m->cfg;
    t5_embedder_describe(e, desc, sizeof desc);
    printf("model: vocab %d, d_model %d, %d heads x %d, d_ff %d, %d encoder layers%s; %s\n", cf->vocab_size,
           cf->d_model, cf->num_heads, cf->d_kv, cf->d_ff, cf->num_layers,
           cf->has_decoder ? " (and a decoder)" : ", encoder-only", desc);
    printf("loaded in %.2f s: %.1f MB mapped, %.1f MB converted on the heap, %d matrices 16-bit as stored\n",
           t_load, st_mapped_bytes(m->st) / 1e6, m->owned_bytes / 1e6, m->n_half);
    t5_pool *pool = t5_pool_create(threads);
    const char *pisa = "none";
    double peak = pool ? bench_fma_peak(pool, t5_model_isa(m), &pisa) : 0;
    t5_pool_free(pool);
    printf("threads: %d; kernels: %s; FMA peak %.1f GFLOP/s (register-only float32 %s FMA chains)\n", threads,
           t5_isa_name(t5_model_isa(m)), peak, pisa);
    double params = (double)cf->num_layers *
                    (4.0 * m->inner * cf->d_model + (cf->gated ? 3.0 : 2.0) * cf->d_ff * cf->d_model);
    int dim = t5_embedder_dim(e, NULL, err, sizeof err);
    float *vec = malloc((size_t)(dim > 0 ? dim : 1) * sizeof *vec);
    printf("%-6s %8s %9s %12s %12s %10s %8s %6s\n", "batch", "tokens", "ms/batch", "sentences/s", "tokens/s",
           "GFLOP/s", "of peak", "cpu");
    int rc = 0, first_batch = 1;
    for (const char *p = batches; *p && !rc;) {
        int B = atoi(p);
        if (B < 1) break;
        while (*p && *p != ',')
            p++;
        if (*p == ',') p++;
        /* B inputs of random ids ending in eos */
        int *lens = malloc((size_t)B * sizeof *lens), total = 0;
        uint64_t rng = seed;
        for (int i = 0; i < B; i++)
            total += lens[i] = lo + (int)(t5_rng_next(&rng) % (uint64_t)(hi - lo + 1));
        int32_t *ids = malloc((size_t)total * sizeof *ids);
        double flops = 0;
        for (int i = 0, off = 0; i < B; off += lens[i++]) {
            for (int t = 0; t < lens[i] - 1; t++)
                ids[off + t] = 2 + (int32_t)(t5_rng_next(&rng) % (uint64_t)(cf->vocab_size - 2));
            ids[off + lens[i] - 1] = cf->eos_token_id;
            flops += 2.0 * lens[i] * params + 4.0 * lens[i] * lens[i] * m->inner * cf->num_layers;
        }
        t5_batch *b = t5_batch_create(m, 1, threads, err, sizeof err);
        if (!b) {
            fprintf(stderr, "t5 bench embed: %s\n", err);
            rc = 1;
        }
        sink s = {e, vec, 0, 0};
        int reps = -1; /* one untimed warm-up batch first (it also faults the mapped weights in) */
        double t_all = 0, t_first = 0, cpu = 0;
        while (b && (reps < 1 || t_all < seconds)) {
            double ts = now(), cs = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            for (int i = 0, off = 0; i < B; off += lens[i++])
                if (t5_batch_add_embed(b, ids + off, lens[i], on_hidden, &s, err, sizeof err) < 0) s.failed++;
            if (t5_batch_step(b) < 0) s.failed++;
            if (reps++ >= 0)
                t_all += now() - ts, cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - cs;
            else
                t_first = now() - ts;
        }
        if (first_batch) printf("(first batch, untimed: %.2f ms)\n", t_first * 1e3);
        first_batch = 0;
        if (s.failed || s.done != B * (reps + 1)) {
            fprintf(stderr, "t5 bench embed: %d of %d inputs failed\n", s.failed, B * (reps + 1));
            rc = 1;
        } else {
            double t = t_all / reps;
            printf("%-6d %8d %9.2f %12.1f %12.0f %10.1f %7.0f%% %5.0f%%\n", B, total, t * 1e3, B / t,
                   total / t, flops / t / 1e9, peak > 0 ? 100 * flops / t / 1e9 / peak : 0,
                   100 * cpu / t_all / threads);
        }
        fflush(stdout);
        t5_batch_free(b);
        free(lens), free(ids);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MB (weights: %.1f MB mapped)\n", ru.ru_maxrss / 1024.0,
           st_mapped_bytes(m->st) / 1e6);
    free(vec);
    t5_embedder_free(e);
    t5_model_free(m);
    return rc;
}
