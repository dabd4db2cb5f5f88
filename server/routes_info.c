/* routes_info.c - the operational routes: GET /health (alive), GET /ready (loaded and
 * not draining), GET /metrics (Prometheus text, metrics.c) and GET /info (model
 * configuration, mode, version, limits). Answered at once in the HTTP handler. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

void srv_route_health(srv_request *r) {
    srv_http_reply(r, srv_reply_json(200, json_pack("{s:s}", "status", "ok")));
}

void srv_route_ready(srv_request *r) {
    if (atomic_load(&srv_http_server(r)->draining))
        srv_http_reply(r, srv_reply_error(503, "the server is draining (shutting down)"));
    else
        srv_http_reply(r, srv_reply_json(200, json_pack("{s:s}", "status", "ready")));
}

void srv_route_metrics(srv_request *r) {
    srv_server *s = srv_http_server(r);
    int draining = atomic_load(&s->draining);
    char *text = srv_metrics_render(s->metrics, s->sched ? srv_sched_queued(s->sched) : 0,
                                    s->sched ? srv_sched_active(s->sched) : 0, !draining, draining);
    if (!text) {
        srv_http_reply(r, srv_reply_error(500, "out of memory"));
        return;
    }
    srv_http_reply(r, srv_reply_text(200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text)));
}

void srv_route_info(srv_request *r) {
    srv_server *s = srv_http_server(r);
    const cfg_t *c = &s->cfg;
    json_t *model =
        json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i}", "name", s->model_name, "mode",
                  !s->model                        ? "tokenize-only"
                  : t5_model_has_decoder(s->model) ? "generate"
                                                   : "embed",
                  "tokenizer", tok_model_kind(s->tok) == TOK_KIND_WORDPIECE ? "wordpiece" : "unigram",
                  "tokenizer_vocab_size", tok_vocab_size(s->tok), "eos_token_id", tok_eos_id(s->tok),
                  "pad_token_id", tok_pad_id(s->tok), "unk_token_id", tok_unk_id(s->tok));
    if (s->model) {
        const t5_config *m = t5_model_config(s->model);
        json_object_set_new(model, "format", json_string(t5_model_format(s->model)));
        static const char *acts[] = {"relu", "gelu_new", "silu", "gelu"};
        json_object_set_new(model, "config",
                            json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:s,s:b,s:f,s:i,s:i,s:i}",
                                      "model_type", m->model_type, "vocab_size", m->vocab_size, "d_model",
                                      m->d_model, "d_kv", m->d_kv, "num_heads", m->num_heads, "d_ff", m->d_ff,
                                      "num_layers", m->num_layers, "num_decoder_layers",
                                      m->num_decoder_layers, "relative_attention_num_buckets", m->num_buckets,
                                      "relative_attention_max_distance", m->max_distance, "gated", m->gated,
                                      "activation", m->act >= 0 && m->act < 4 ? acts[m->act] : "?",
                                      "tie_word_embeddings", m->tied, "layer_norm_epsilon", (double)m->eps,
                                      "decoder_start_token_id", m->decoder_start_token_id, "eos_token_id",
                                      m->eos_token_id, "pad_token_id", m->pad_token_id));
    }
    json_t *limits = json_pack(
        "{s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "max_body_bytes", (json_int_t)c->max_body_bytes,
        "max_json_depth", c->max_json_depth, "max_texts", c->max_texts, "max_input_tokens",
        c->max_input_tokens, "max_new_tokens_limit", c->max_new_tokens_limit, "default_max_new_tokens",
        c->default_max_new_tokens, "max_num_beams",
        c->max_num_beams < c->max_batch ? c->max_num_beams : c->max_batch, "max_nbest", c->max_nbest,
        "max_batch", c->max_batch, "queue_size", c->queue_size, "request_timeout_ms", c->request_timeout_ms);
    /* int8_float, int8_a16: the classes int8 keeps in float, and multiplies with 16-bit
     * activations (null under the other types) */
    int i8 = !strcmp(c->compute_type, "int8");
    json_t *int8_float =
               i8 ? json_string(c->int8_float[0] ? c->int8_float : T5_INT8_FLOAT_DEFAULT_NAMES) : json_null(),
           *int8_a16 =
               i8 ? json_string(c->int8_a16[0] ? c->int8_a16 : T5_INT8_A16_DEFAULT_NAMES) : json_null();
    json_t *info =
        json_pack("{s:s,s:s,s:o,s:o,s:i,s:i,s:s,s:o,s:o,s:f,s:b}", "name", "t5serve", "version", SRV_VERSION,
                  "model", model, "limits", limits, "workers", c->workers, "threads_per_worker",
                  s->threads_per_worker, "compute_type", c->compute_type, "int8_float", int8_float,
                  "int8_a16", int8_a16, "uptime_s", srv_now() - s->t_started, "auth", c->api_key[0] != 0);
    srv_http_reply(r, srv_reply_json(200, info));
}
