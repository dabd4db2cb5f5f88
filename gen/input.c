/* input.c - what a tokenizer means for generation (gen.h): the encoder ids of a text
 * as the model is given them (`</s>` added, truncation keeping the closing `</s>`, an
 * input limit), and the decoder start / end ids a tokenizer implies (T5 PEGASUS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

void gen_params_for_tokenizer(t5_gen_params *p, const tok_model *tok) {
    if (tok_model_kind(tok) != TOK_KIND_WORDPIECE) return;
    /* T5 PEGASUS: generation starts from [CLS] and stops at [SEP], whatever config.json says */
    if (p->decoder_start_token_id < 0) p->decoder_start_token_id = tok_bos_id(tok);
    if (p->eos_token_id < 0) p->eos_token_id = tok_eos_id(tok);
}

gen_status gen_input_ids(const tok_model *tok, const char *text, size_t len, int truncate, int max_tokens,
                         int32_t **ids, int *n, char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    tok_encode_params tp;
    tok_encode_default_params(&tp);
    tp.add_eos = 1;
    tok_encoding e;
    if (tok_encode(tok, text, len, &tp, &e, err, errlen) != TOK_OK) return GEN_ERR_TOKENIZE;
    size_t m = e.n;
    if (truncate > 0 && m > (size_t)truncate + 1) {
        e.ids[truncate] = e.ids[m - 1]; /* keep the first N tokens, then the closing </s> */
        m = (size_t)truncate + 1;
    }
    gen_status rc = GEN_OK;
    if (max_tokens > 0 && m > (size_t)max_tokens)
        rc = GEN_ERR_TOO_LONG;
    else if (m == 0)
        rc = GEN_ERR_EMPTY;
    else if (!(*ids = malloc(m * sizeof **ids)))
        rc = GEN_ERR_NOMEM;
    else
        memcpy(*ids, e.ids, m * sizeof **ids);
    *n = (int)m;
    tok_encoding_free(&e);
    if (rc == GEN_ERR_NOMEM) snprintf(err, errlen, "out of memory");
    return rc;
}
