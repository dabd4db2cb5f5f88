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
int cmd_convert(int argc, char **argv);         /* cmd_convert.c */
int cmd_embed(int argc, char **argv);           /* cmd_embed.c */
int cmd_bench_embed(int argc, char **argv);     /* cmd_bench_embed.c */
int cmd_score(int argc, char **argv);           /* cmd_score.c */

/* ---- model-load options (loadopt.c), for getopt_long tables and usage texts ---- */
#include "t5.h"
enum {
    CLI_OPT_COMPUTE_TYPE = 0x1000,
    CLI_OPT_INT8_FLOAT,
    CLI_OPT_INT8_A16,
    CLI_OPT_ISA
}; /* above the commands' own codes */
#define T5_LOAD_OPTIONS                                                                                      \
    {"compute-type", 1, 0, CLI_OPT_COMPUTE_TYPE}, {"int8-float", 1, 0, CLI_OPT_INT8_FLOAT},                  \
        {"int8-a16", 1, 0, CLI_OPT_INT8_A16}, {                                                              \
        "isa", 1, 0, CLI_OPT_ISA                                                                             \
    }
#define T5_LOAD_USAGE                                                                                        \
    "[--compute-type auto|float32|bfloat16|int8] [--int8-float CLASSES] [--int8-a16 CLASSES] [--isa "        \
    "auto|generic|avx2|avx512|amx]"
#define T5_LOAD_HELP                                                                                         \
    "--compute-type: how the weights are held and multiplied (auto: as stored, exact; bfloat16; int8 with\n" \
    "row scales); --int8-float: matrix classes int8 keeps in float (enc-qk, enc-vo, enc-wi, enc-wo,\n"       \
    "dec-self-qk, dec-self-vo, dec-cross-qk, dec-cross-vo, dec-wi, dec-wo, head, embed; enc-attn,\n"         \
    "dec-self, dec-cross, qk, vo, attn, wo, wi, layers (all but head and embed), none, all; "                \
    "default " T5_INT8_FLOAT_DEFAULT_NAMES ");\n"                                                            \
    "--int8-a16: classes int8 multiplies with 16-bit activations (int8 weights; the same names;\n"           \
    "default " T5_INT8_A16_DEFAULT_NAMES ");\n"                                                              \
    "--isa: the kernels' instruction set, a cap (the same answers on every one; auto: the best).\n"
/* Handles getopt_long's code c for subcommand cmd: 1 when it was a load option (*p
 * updated), 0 when it is not one, -1 for a bad value (message printed). */
int cli_load_option(const char *cmd, int c, const char *arg, t5_load_params *p);

/* Shared by the subcommands. */
/* GFLOP/s of register-only float32 FMA chains on every thread of pool, on the widest ISA
 * the CPU has at or below the kernels' isa (a model's t5_model_isa: `--isa avx2` on an
 * AVX-512 CPU measures AVX2's peak, the ceiling of the kernels it runs; generic: the widest),
 * best of 5; *isa names it; 0 without AVX2 / AVX-512. bench_fma.c */
double bench_fma_peak(t5_pool *pool, t5_isa kernels, const char **isa);
/* GOP/s (2 per multiply-add) of register-only chains of the instruction the int8 kernel
 * `kernel` (t5k_i8_ops.name) multiplies with, on every thread of pool (best of 5; *insn
 * names it): "avx2": vpmaddwd + vpaddd (ymm), "avx512-vnni": vpdpbusd (zmm), "amx": tdpbssd (tiles); 0 for
 * others. */
double bench_i8_peak(t5_pool *pool, const char *kernel, const char **insn);

#endif
