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

#endif
