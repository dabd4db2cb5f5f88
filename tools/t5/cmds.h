/* cmds.h - the subcommands of the `t5` command-line tool, one file each.
 * Each takes the arguments after its name (argv[0] is the subcommand name) and
 * returns the process exit status: 0 success, 1 runtime error, 2 usage error. */
#ifndef T5SERVE_CMDS_H
#define T5SERVE_CMDS_H

#include "t5_dev.h"

int cmd_tokenize(int argc, char **argv);        /* cmd_tokenize.c */
int cmd_detokenize(int argc, char **argv);      /* cmd_tokenize.c */
int cmd_generate(int argc, char **argv);        /* cmd_generate.c */
int cmd_bench_tokenizer(int argc, char **argv); /* cmd_bench_tokenizer.c */
int cmd_bench_engine(int argc, char **argv);    /* cmd_bench_engine.c */
int cmd_random_model(int argc, char **argv);    /* cmd_random_model.c */
int cmd_embed(int argc, char **argv);           /* cmd_embed.c */
int cmd_bench_embed(int argc, char **argv);     /* cmd_bench_embed.c */

/* Shared by the subcommands. */
/* GFLOP/s of register-only float32 FMA chains on every thread of pool, on the widest ISA
 * the CPU has (best of 5; *isa names it); 0 without AVX2 / AVX-512. bench_fma.c */
double bench_fma_peak(t5_pool *pool, const char **isa);
/* Parses an --isa value into o->isa: 0, or 2 (usage error, printed for CMD). t5.c */
int cmd_parse_isa(const char *cmd, const char *arg, t5_load_opts *o);

#endif
