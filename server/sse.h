/* sse.h - Server-Sent Events framing and buffering (sse.c) for http.c's streams: a
 * byte buffer that producers append `data: ...\n\n` events to and the content reader
 * drains, and the MHD response that reads through such a reader. The buffer has no
 * lock of its own: its owner (a request, http.c) guards it. Uses no other server/ file. */
#ifndef T5SERVE_SSE_H
#define T5SERVE_SSE_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t len, off, cap; /* bytes [off, len) not yet read */
} srv_sse;

/* Appends bytes (an event is lost on out of memory: the final event still carries the whole text). */
void srv_sse_append(srv_sse *s, const char *data, size_t len);
/* Appends `data: JSON\n\n`; consumes json (NULL: nothing). */
void srv_sse_event(srv_sse *s, json_t *json);
/* Moves up to max unread bytes into out; returns how many (0: nothing waits). */
size_t srv_sse_take(srv_sse *s, char *out, size_t max);
void srv_sse_free(srv_sse *s);
/* A 200 text/event-stream response pulling its bytes from reader(cls, ...). NULL on failure. */
struct MHD_Response *srv_sse_response(MHD_ContentReaderCallback reader, void *cls);

#endif
