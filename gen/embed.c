/* embed.c - what a tool or the server needs around an embedding (gen.h): how a text to
 * embed is truncated (the model folder's max_seq_length, as sentence-transformers'
 * tokenizer truncates: the first max_seq_length - 1 tokens, then `</s>`), and vectors
 * printed as JSON number arrays that read back as the same float32 values. */
#include <math.h>
#include <stdio.h>

#include "gen.h"

int gen_embed_truncate(const t5_embedder *e, int truncate, int max_tokens) {
    if (truncate >= 0) return truncate;
    int folder = t5_embedder_max_seq_length(e), keep = folder > 1 ? folder - 1 : 0;
    if (truncate == GEN_TRUNCATE_LIMIT && max_tokens > 1 && (keep == 0 || keep > max_tokens - 1))
        keep = max_tokens - 1;
    return keep;
}

char *gen_put_floats(char *p, const float *v, int n) {
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i) *p++ = ',';
        p += isfinite(v[i]) ? sprintf(p, "%.9g", (double)v[i]) : sprintf(p, "null");
    }
    *p++ = ']';
    *p = 0;
    return p;
}
