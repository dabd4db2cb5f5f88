/* loadopt.c - the model-load options shared by every `t5` subcommand that loads a model
 * (cmds.h: T5_LOAD_OPTIONS, T5_LOAD_USAGE, cli_load_option), so they parse and fail alike.
 * What it is not: no model loading here (engine/t5.h t5_model_load_with). */
#include <stdio.h>

#include "cmds.h"

int cli_load_option(const char *cmd, int c, const char *arg, t5_load_params *p) {
    char err[256];
    switch (c) {
    case CLI_OPT_COMPUTE_TYPE:
        if (t5_compute_type_parse(arg, &p->compute_type) == 0) return 1;
        fprintf(stderr, "t5 %s: --compute-type must be auto, float32, bfloat16 or int8 (got '%s')\n", cmd,
                arg);
        return -1;
    case CLI_OPT_INT8_FLOAT:
        if (t5_mats_parse(arg, &p->int8_float, err, sizeof err) == 0) return 1;
        fprintf(stderr, "t5 %s: --int8-float: %s\n", cmd, err);
        return -1;
    case CLI_OPT_INT8_A16:
        if (t5_mats_parse(arg, &p->int8_a16, err, sizeof err) == 0) return 1;
        fprintf(stderr, "t5 %s: --int8-a16: %s\n", cmd, err);
        return -1;
    case CLI_OPT_ISA:
        if (t5_isa_parse(arg, &p->isa) == 0) return 1;
        fprintf(stderr, "t5 %s: --isa must be auto, generic, avx2, avx512 or amx (got '%s')\n", cmd, arg);
        return -1;
    default:
        return 0;
    }
}
