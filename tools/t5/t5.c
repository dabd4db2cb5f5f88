/* t5.c - the `t5` command-line tool: offline tokenize / detokenize / generate /
 * score / bench over the tokenizer and engine libraries, without the HTTP server.
 * This file only dispatches to the subcommands in cmds.h. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"tokenize", cmd_tokenize, "text lines on stdin -> ids / pieces / JSON"},
    {"detokenize", cmd_detokenize, "lines of ids on stdin -> text"},
    {"generate", cmd_generate, "text lines on stdin -> generated text / ids / JSON"},
    {"embed", cmd_embed, "text lines on stdin -> sentence / token embeddings (JSON lines)"},
    {"score", cmd_score,
     "input<TAB>target lines on stdin -> teacher-forced logprobs (and vs a reference type)"},
    {"bench-tokenizer", cmd_bench_tokenizer, "tokenizer throughput next to SentencePiece"},
    {"bench-engine", cmd_bench_engine, "engine speed next to memory bandwidth and GEMM rate"},
    {"bench-embed", cmd_bench_embed, "embedding throughput (sentences/s, tokens/s) next to the FMA peak"},
    {"random-model", cmd_random_model, "writes a random-weight T5 checkpoint of a given shape"},
    {"convert", cmd_convert, "a model folder (safetensors or pytorch_model.bin) to model.safetensors"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: t5 COMMAND [OPTIONS]   (t5 COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  bench tokenizer|engine|embed   same as bench-tokenizer / ...\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* the engine splits its GEMMs over its own threads; OpenBLAS's would compete with them */
    openblas_set_num_threads(1);
    const char *name = argv[1];
    char joined[64];
    if (!strcmp(name, "bench") && argc >= 3) { /* `t5 bench engine` == `t5 bench-engine` */
        snprintf(joined, sizeof joined, "bench-%s", argv[2]);
        name = joined;
        argv++, argc--;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "t5: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
