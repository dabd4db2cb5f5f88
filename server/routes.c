/* routes.c - the route table: every path the server answers, its method, whether it
 * needs the API key, and the function that answers it. http.c routes through it, the
 * 404 message lists it and the metrics name requests by it. A new route is one line
 * here plus its function (routes_*.c, declared in srv.h). */
#include "srv.h"

/* clang-format off: one route a line */
const srv_route srv_routes[] = {
    /* path, POST (else GET/HEAD), open (no API key), function, error reshaping */
    {"/generate", 1, 0, srv_route_generate_any, NULL}, /* ours, or TGI's {"inputs"} */
    {"/embed", 1, 0, srv_route_embed, NULL},
    {"/generate_stream", 1, 0, srv_route_tgi_stream, NULL},
    {"/", 1, 0, srv_route_tgi_compat, NULL},
    {"/tokenize", 1, 0, srv_route_tokenize, NULL},
    {"/detokenize", 1, 0, srv_route_detokenize, NULL},
    {"/health", 0, 1, srv_route_health, NULL},
    {"/ready", 0, 1, srv_route_ready, NULL},
    {"/metrics", 0, 0, srv_route_metrics, NULL},
    {"/info", 0, 0, srv_route_info, NULL},
    {"/score", 1, 0, srv_route_score, NULL},
    /* OpenAI-compatible (routes_v1.c): errors in OpenAI's shape */
    {"/v1/models", 0, 0, srv_route_v1_models, srv_v1_reshape_error},
    {"/v1/models/{id}", 0, 0, srv_route_v1_model, srv_v1_reshape_error},
    {"/v1/completions", 1, 0, srv_route_v1_completions, srv_v1_reshape_error},
    {"/v1/chat/completions", 1, 0, srv_route_v1_chat, srv_v1_reshape_error},
    {"/v1/embeddings", 1, 0, srv_route_v1_embeddings, srv_v1_reshape_error},
};
/* clang-format on */
const int srv_n_routes = (int)(sizeof srv_routes / sizeof srv_routes[0]);
