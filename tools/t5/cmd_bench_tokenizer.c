/* cmd_bench_tokenizer.c - placeholder until its module lands; replaced by the real subcommand. */
#include <stdio.h>
#include "cmds.h"
int cmd_bench_tokenizer(int argc, char **argv) { (void)argc; fprintf(stderr, "t5: %s is not built yet\n", argv[0]); return 1; }
