/* sse.c - Server-Sent Events for `stream: true` (sse.h): workers append `data: {...}\n\n`
 * events to a request's buffer (under the request's lock, http.c); MHD pulls them
 * through http.c's content reader, which suspends the connection when the buffer is
 * empty (no thread waits) and ends the chunked response once the stream is done. */
#include <stdlib.h>
#include <string.h>

#include "sse.h"

void srv_sse_append(srv_sse *s, const char *data, size_t len) {
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + len)
            cap *= 2;
        char *p = realloc(s->buf, cap);
        if (!p) return;
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

void srv_sse_event(srv_sse *s, json_t *json) {
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) return;
    srv_sse_append(s, "data: ", 6);
    srv_sse_append(s, text, strlen(text));
    srv_sse_append(s, "\n\n", 2);
    free(text);
}

size_t srv_sse_take(srv_sse *s, char *out, size_t max) {
    size_t n = s->len - s->off;
    if (n > max) n = max;
    if (!n) return 0;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    if (s->off == s->len) s->off = s->len = 0;
    return n;
}

void srv_sse_free(srv_sse *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

struct MHD_Response *srv_sse_response(MHD_ContentReaderCallback reader, void *cls) {
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, cls, NULL);
    if (!resp) return NULL;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return resp;
}
