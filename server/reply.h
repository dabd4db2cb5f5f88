/* reply.h - reply values (reply.c): a status, a content type and a body, built from
 * JSON or an error message; http.c sends them (srv_http_reply). Uses no other server/ file. */
#ifndef T5SERVE_REPLY_H
#define T5SERVE_REPLY_H

#include <jansson.h>
#include <stddef.h>

typedef struct {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'd; whoever holds the value owns it */
    size_t len;
} srv_reply;

/* JSON body with a trailing newline; json is consumed (decref'd). Out of memory: a 500. */
srv_reply srv_reply_json(int status, json_t *json);
/* {"error": {"code": status, "type": ..., "message": printf(fmt, ...)}} */
srv_reply srv_reply_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* body (malloc'd) as it is */
srv_reply srv_reply_text(int status, const char *content_type, char *body, size_t len);
const char *srv_error_type(int status);
json_t *srv_error_json(int status, const char *message); /* {"error": {...}} */

#endif
