/* config.c - reads a Hugging Face T5-family `config.json` (T5 v1.0, T5 v1.1 / FLAN,
 * mT5, T5 PEGASUS layouts) into a t5_config, with transformers' T5Config defaults
 * for absent keys, and rejects values that cannot make a model.
 * What it is not: it reads no weights and no generation_config.json. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "t5_private.h"

/* Integer key: *out = value, or def when absent/null (def < 0: required). */
static int get_int(json_t *root, const char *key, int64_t def, int64_t lo, int64_t hi, int32_t *out,
                   char *err, size_t errlen) {
    json_t *v = json_object_get(root, key);
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0); /* eos_token_id: [1] */
    if (!v || json_is_null(v)) {
        if (def < 0 && lo >= 0) {
            snprintf(err, errlen, "config.json: missing '%s'", key);
            return -1;
        }
        *out = (int32_t)def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "config.json: '%s' must be an integer in [%lld, %lld]", key, (long long)lo,
                 (long long)hi);
        return -1;
    }
    *out = (int32_t)json_integer_value(v);
    return 0;
}

int t5_config_load(const char *dir, t5_config *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path) {
        snprintf(err, errlen, "model folder path too long");
        return -1;
    }
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, errlen, "config.json: cannot read (%s, line %d)", je.text, je.line);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "config.json: not a JSON object");
        json_decref(root);
        return -1;
    }
    int rc = -1;
    const int64_t BIG = 1 << 24;
    if (get_int(root, "vocab_size", -1, 1, 1 << 26, &c->vocab_size, err, errlen) ||
        get_int(root, "d_model", -1, 1, 1 << 16, &c->d_model, err, errlen) ||
        get_int(root, "num_heads", -1, 1, 1024, &c->num_heads, err, errlen) ||
        get_int(root, "d_kv", 64, 1, 1 << 14, &c->d_kv, err, errlen) ||
        get_int(root, "d_ff", -1, 1, 1 << 20, &c->d_ff, err, errlen) ||
        get_int(root, "num_layers", -1, 1, 1024, &c->num_layers, err, errlen) ||
        get_int(root, "num_decoder_layers", c->num_layers, 1, 1024, &c->num_decoder_layers, err, errlen) ||
        get_int(root, "relative_attention_num_buckets", 32, 2, 1 << 16, &c->num_buckets, err, errlen) ||
        get_int(root, "relative_attention_max_distance", 128, 1, BIG, &c->max_distance, err, errlen) ||
        get_int(root, "decoder_start_token_id", 0, 0, (1 << 26) - 1, &c->decoder_start_token_id, err,
                errlen) ||
        get_int(root, "eos_token_id", 1, 0, (1 << 26) - 1, &c->eos_token_id, err, errlen) ||
        get_int(root, "pad_token_id", 0, 0, (1 << 26) - 1, &c->pad_token_id, err, errlen))
        goto done;
    if ((int64_t)c->num_heads * c->d_kv > (1 << 16)) {
        snprintf(err, errlen, "config.json: num_heads * d_kv is too large");
        goto done;
    }
    if (c->decoder_start_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size) {
        snprintf(err, errlen, "config.json: decoder_start_token_id / eos_token_id outside the vocabulary");
        goto done;
    }
    json_t *eps = json_object_get(root, "layer_norm_epsilon");
    c->eps = 1e-6f;
    if (eps && !json_is_null(eps)) {
        if (!json_is_number(eps) || json_number_value(eps) < 0 || json_number_value(eps) > 1) {
            snprintf(err, errlen, "config.json: 'layer_norm_epsilon' must be a number in [0, 1]");
            goto done;
        }
        c->eps = (float)json_number_value(eps);
    }
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tied = 1; /* T5 v1.0 default */
    if (tie && !json_is_null(tie)) {
        if (!json_is_boolean(tie)) {
            snprintf(err, errlen, "config.json: 'tie_word_embeddings' must be true or false");
            goto done;
        }
        c->tied = json_is_true(tie);
    }
    /* feed_forward_proj as T5Config reads it: "[gated-]ACT"; gated-gelu means gelu_new */
    json_t *ff = json_object_get(root, "feed_forward_proj");
    const char *proj = json_is_string(ff) ? json_string_value(ff) : "relu";
    if (ff && !json_is_null(ff) && !json_is_string(ff)) {
        snprintf(err, errlen, "config.json: 'feed_forward_proj' must be a string");
        goto done;
    }
    const char *act = proj;
    c->gated = 0;
    if (!strncmp(proj, "gated-", 6)) c->gated = 1, act = proj + 6;
    json_t *ga = json_object_get(root, "is_gated_act");
    if (json_is_true(ga)) c->gated = 1;
    if (!strcmp(act, "relu"))
        c->act = T5_ACT_RELU;
    else if (!strcmp(act, "gelu_new") || (c->gated && !strcmp(act, "gelu")))
        c->act = T5_ACT_GELU_NEW;
    else if (!strcmp(act, "gelu"))
        c->act = T5_ACT_GELU;
    else if (!strcmp(act, "silu") || !strcmp(act, "swish"))
        c->act = T5_ACT_SILU;
    else {
        snprintf(err, errlen, "config.json: unsupported feed_forward_proj '%.40s'", proj);
        goto done;
    }
    /* T5EncoderModel checkpoints (sentence-t5, GTR, the SD3 / Flux text encoders) carry no
     * decoder: architectures naming only *EncoderModel, or is_encoder_decoder false */
    c->has_decoder = 1;
    json_t *arch = json_object_get(root, "architectures"), *a;
    size_t ai;
    int enc_only = 0, full = 0;
    json_array_foreach(arch, ai, a) {
        const char *an = json_string_value(a);
        if (an && strstr(an, "EncoderModel"))
            enc_only = 1;
        else if (an)
            full = 1;
    }
    if ((enc_only && !full) ||
        (!json_array_size(arch) && json_is_false(json_object_get(root, "is_encoder_decoder"))))
        c->has_decoder = 0, c->num_decoder_layers = 0;
    json_t *mt = json_object_get(root, "model_type");
    snprintf(c->model_type, sizeof c->model_type, "%s", json_is_string(mt) ? json_string_value(mt) : "t5");
    rc = 0;
done:
    json_decref(root);
    return rc;
}
