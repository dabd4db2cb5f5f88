/* params.c - the table of generation parameters (gen.h) and the finish-reason names.
 * Names and meanings are transformers' generate ones; the ranges are what a request
 * may ask for (the engine checks the combinations). */
#include <stddef.h>

#include "gen.h"

#define F(field) offsetof(t5_gen_params, field)

const gen_param gen_params[] = {
    /* name, field, type, lo, hi, lo_open */
    {"max_new_tokens", F(max_new_tokens), GEN_PARAM_INT, 1, 1 << 20, 0}, /* a server caps it */
    {"min_new_tokens", F(min_new_tokens), GEN_PARAM_INT, 0, 1 << 20, 0}, /* at most max_new_tokens */
    {"do_sample", F(do_sample), GEN_PARAM_BOOL, 0, 1, 0},
    {"temperature", F(temperature), GEN_PARAM_FLOAT, 0, 100, 1},
    {"top_k", F(top_k), GEN_PARAM_INT, 0, 1000000, 0},
    {"top_p", F(top_p), GEN_PARAM_FLOAT, 0, 1, 1},
    {"repetition_penalty", F(repetition_penalty), GEN_PARAM_FLOAT, 0, 100, 1},
    {"presence_penalty", F(presence_penalty), GEN_PARAM_FLOAT, -2, 2, 0},   /* OpenAI's, additive */
    {"frequency_penalty", F(frequency_penalty), GEN_PARAM_FLOAT, -2, 2, 0}, /* OpenAI's, additive */
    {"no_repeat_ngram_size", F(no_repeat_ngram_size), GEN_PARAM_INT, 0, 1024, 0},
    {"num_beams", F(num_beams), GEN_PARAM_INT, 1, 1024, 0}, /* TODO(libs): T5_MAX_BEAMS */
    {"num_return_sequences", F(num_return_sequences), GEN_PARAM_INT, 1, 1024, 0},
    {"length_penalty", F(length_penalty), GEN_PARAM_FLOAT, -100, 100, 0},
    {"early_stopping", F(early_stopping), GEN_PARAM_EARLY_STOP, 0, 2, 0},
    {"seed", F(seed), GEN_PARAM_SEED, 0, 0, 0},
};
const int gen_n_params = (int)(sizeof gen_params / sizeof gen_params[0]);

const char *gen_finish_name(int finish) {
    switch (finish) {
    case T5_FINISH_EOS:
        return "eos";
    case T5_FINISH_LENGTH:
        return "length";
    case T5_FINISH_STOP:
        return "stop";
    case T5_FINISH_CANCELLED:
        return "cancelled";
    default:
        return "error";
    }
}
