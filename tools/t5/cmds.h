/* cmds.h - the subcommands of the `t5` command-line tool, one file each.
 * Each takes the arguments after its name (argv[0] is the subcommand name) and
 * returns the process exit status: 0 success, 1 runtime error, 2 usage error. */
#ifndef T5SERVE_CMDS_H
#define T5SERVE_CMDS_H

int cmd_tokenize(int argc, char **argv);        /* cmd_tokenize.c */
int cmd_detokenize(int argc, char **argv);      /* cmd_tokenize.c */
int cmd_generate(int argc, char **argv);        /* cmd_generate.c */
int cmd_bench_tokenizer(int argc, char **argv); /* cmd_bench_tokenizer.c */
int cmd_bench_engine(int argc, char **argv);    /* cmd_bench_engine.c */
int cmd_random_model(int argc, char **argv);    /* cmd_random_model.c */
int cmd_convert(int argc, char **argv);         /* cmd_convert.c */
int cmd_embed(int argc, char **argv);           /* cmd_embed.c */
int cmd_bench_embed(int argc, char **argv);     /* cmd_bench_embed.c */
int cmd_score(int argc, char **argv);           /* cmd_score.c */

/* ---- model-load options (loadopt.c), for getopt_long tables and usage texts ---- */
#include "t5.h"
enum { CLI_OPT_COMPUTE_TYPE = 0x1000, CLI_OPT_INT8_FLOAT }; /* above the commands' own codes */
#define T5_LOAD_OPTIONS                                                                                      \
    {"compute-type", 1, 0, CLI_OPT_COMPUTE_TYPE}, {                                                          \
        "int8-float", 1, 0, CLI_OPT_INT8_FLOAT                                                               \
    }
#define T5_LOAD_USAGE "[--compute-type auto|float32|bfloat16|int8] [--int8-float CLASSES]"
#define T5_LOAD_HELP                                                                                         \
    "--compute-type: how the weights are held and multiplied (auto: as stored, exact; bfloat16; int8 with\n" \
    "row scales); --int8-float: matrix classes int8 keeps as stored (enc-attn, enc-wi, enc-wo, dec-self,\n"  \
    "dec-cross, dec-wi, dec-wo, head, embed, wo, wi, attn, none, all; default wo,embed,head).\n"
/* Handles getopt_long's code c for subcommand cmd: 1 when it was a load option (*p
 * updated), 0 when it is not one, -1 for a bad value (message printed). */
int cli_load_option(const char *cmd, int c, const char *arg, t5_load_params *p);

#endif
