/* routes.c - the route table: every path the server answers, its method, whether it
 * needs the API key, and the function that answers it. http.c routes through it, the
 * 404 message lists it and the metrics name requests by it. A new route is one line
 * here plus its function (routes_*.c, declared in srv.h). */
#include "srv.h"

/* clang-format off: one route a line */
const srv_route srv_routes[] = {
    /* path, POST (else GET/HEAD), open (no API key), function */
    {"/generate", 1, 0, srv_route_generate}, {"/embed", 1, 0, srv_route_embed},
    {"/tokenize", 1, 0, srv_route_tokenize}, {"/detokenize", 1, 0, srv_route_detokenize},
    {"/health", 0, 1, srv_route_health},     {"/ready", 0, 1, srv_route_ready},
    {"/metrics", 0, 0, srv_route_metrics},   {"/info", 0, 0, srv_route_info},
};
/* clang-format on */
const int srv_n_routes = (int)(sizeof srv_routes / sizeof srv_routes[0]);
