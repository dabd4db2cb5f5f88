/* reply.c - building reply bodies: JSON bodies and the error object of design section
 * 5 ({"error": {"code", "type", "message"}}). Builds values only; sending them (and
 * the headers that go with a status) is http.c's. Uses no other server/ file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

const char *srv_error_type(int status) {
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 404:
        return "not_found_error";
    case 405:
        return "method_not_allowed_error";
    case 413:
        return "payload_too_large_error";
    case 429:
        return "overloaded_error";
    case 501:
        return "not_implemented_error";
    case 503:
        return "unavailable_error";
    case 504:
        return "timeout_error";
    default:
        return "server_error";
    }
}

json_t *srv_error_json(int status, const char *message) {
    return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "type", srv_error_type(status), "message",
                     message);
}

srv_reply srv_reply_text(int status, const char *content_type, char *body, size_t len) {
    srv_reply p = {status, content_type, body, len};
    return p;
}

srv_reply srv_reply_json(int status, json_t *json) {
    char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!s) {
        status = 500;
        s = strdup("{\"error\":{\"code\":500,\"type\":\"server_error\",\"message\":\"out of memory\"}}");
        if (!s) abort();
    }
    size_t n = strlen(s);
    char *body = realloc(s, n + 2); /* newline at the end, for curl users */
    if (body) {
        body[n++] = '\n';
        body[n] = 0;
    } else
        body = s;
    return srv_reply_text(status, "application/json", body, n);
}

srv_reply srv_reply_error(int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return srv_reply_json(status, srv_error_json(status, msg));
}
