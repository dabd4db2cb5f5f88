/* reply.c - building and sending replies: JSON bodies, the error object of design
 * section 5 ({"error": {"code", "type", "message"}}), and the MHD response with its
 * headers (Content-Type, Retry-After, Allow, WWW-Authenticate). Not the routing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

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

void srv_reply_text(srv_request *r, int status, const char *content_type, char *body, size_t len) {
    free(r->reply.body);
    memset(&r->reply, 0, sizeof r->reply);
    r->reply.status = status;
    r->reply.body = body;
    r->reply.len = len;
    r->reply.content_type = content_type;
    r->have_reply = 1;
}

void srv_reply_json(srv_request *r, int status, json_t *json) {
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
    srv_reply_text(r, status, "application/json", body, n);
}

void srv_reply_error(srv_request *r, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_reply_json(r, status, srv_error_json(status, msg));
    if (status == 429) r->reply.retry_after = r->srv->cfg.retry_after_s > 0 ? r->srv->cfg.retry_after_s : 1;
    if (status == 401) r->reply.www_auth = 1;
}

enum MHD_Result srv_reply_queue(srv_request *r) {
    srv_reply *p = &r->reply;
    struct MHD_Response *resp = MHD_create_response_from_buffer(p->len, p->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    p->body = NULL; /* MHD owns it now */
    r->bytes_out = p->len;
    MHD_add_response_header(resp, "Content-Type", p->content_type ? p->content_type : "application/json");
    if (p->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", p->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (p->allow) MHD_add_response_header(resp, "Allow", p->allow);
    if (p->www_auth) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    r->state = SRV_ST_SENT;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)p->status, resp);
    MHD_destroy_response(resp);
    return rc;
}
