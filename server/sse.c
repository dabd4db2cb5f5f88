/* sse.c - Server-Sent Events for `stream: true`: workers append `data: {...}\n\n`
 * events to the request's buffer (under its lock); MHD pulls them through a content
 * reader callback. When the buffer is empty the reader suspends the connection (no
 * thread waits); the next event resumes it. Once the stream is done the reader ends
 * the chunked response. A failed write ends the request in MHD, which sets the
 * request's cancel flag (http.c), so the sequence leaves the batch at the next step. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

void srv_sse_append(srv_request *r, const char *data, size_t len) {
    if (r->sse_len + len > r->sse_cap) {
        size_t cap = r->sse_cap ? r->sse_cap : 1024;
        while (cap < r->sse_len + len)
            cap *= 2;
        char *p = realloc(r->sse, cap);
        if (!p) return; /* the event is lost; the final event still carries the whole text */
        r->sse = p;
        r->sse_cap = cap;
    }
    memcpy(r->sse + r->sse_len, data, len);
    r->sse_len += len;
}

void srv_sse_event(srv_request *r, json_t *json) {
    char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!s) return;
    srv_sse_append(r, "data: ", 6);
    srv_sse_append(r, s, strlen(s));
    srv_sse_append(r, "\n\n", 2);
    free(s);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_request *r = cls;
    uv_mutex_lock(&r->lock);
    if (r->sse_off < r->sse_len) {
        size_t n = r->sse_len - r->sse_off;
        if (n > max) n = max;
        memcpy(buf, r->sse + r->sse_off, n);
        r->sse_off += n;
        if (r->sse_off == r->sse_len) r->sse_off = r->sse_len = 0;
        r->bytes_out += n;
        uv_mutex_unlock(&r->lock);
        return (ssize_t)n;
    }
    if (r->stream_done) {
        uv_mutex_unlock(&r->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    uv_mutex_unlock(&r->lock);
    return 0;
}

enum MHD_Result srv_sse_queue(srv_request *r) {
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->reply.status = 200;
    r->state = SRV_ST_SENT;
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}
