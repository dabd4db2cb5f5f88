/* tasks.c - what the routes that queue work share: the encoder ids of a request's text
 * at this server's limits (max_input_tokens), with messages naming the request's field,
 * and how a scheduler task's end reads as an HTTP status. Used by routes_gen.c and
 * embed.c; knows no route's answer shape. */
#include <stdio.h>

#include "srv.h"

int srv_text_ids(const srv_server *s, const char *field, const char *text, size_t len, int i, int is_array,
                 int truncate, int32_t **ids, int *n, char *err, size_t errlen) {
    const cfg_t *c = &s->cfg;
    char terr[200];
    switch (gen_input_ids(s->tok, text, len, truncate, c->max_input_tokens, ids, n, terr, sizeof terr)) {
    case GEN_OK:
        return 0;
    case GEN_ERR_TOKENIZE:
        snprintf(err, errlen, "%s %d could not be tokenized: %s", field, i, terr);
        return 400;
    case GEN_ERR_TOO_LONG:
        if (is_array)
            snprintf(err, errlen,
                     "%s[%d] has %d tokens, more than this server's max_input_tokens (%d); "
                     "shorten it or pass truncate",
                     field, i, *n, c->max_input_tokens);
        else
            snprintf(err, errlen,
                     "%s has %d tokens, more than this server's max_input_tokens (%d); "
                     "shorten it or pass truncate",
                     field, *n, c->max_input_tokens);
        return 400;
    case GEN_ERR_EMPTY:
        snprintf(err, errlen, "the %s gives no tokens (this tokenizer adds no </s>)", field);
        return 400;
    case GEN_ERR_NOMEM:
        break;
    }
    snprintf(err, errlen, "out of memory");
    return 500;
}

int srv_end_status(const srv_task_end *e, const char *work, char *msg, size_t len) {
    switch (e->reason) {
    case SRV_END_DONE:
        return 0;
    case SRV_END_CANCELLED: /* nobody reads it: the client is gone */
        snprintf(msg, len, "the client went away");
        return 503;
    case SRV_END_DEADLINE:
        if (e->started)
            snprintf(msg, len, "the request's deadline passed before %s finished", work);
        else
            snprintf(msg, len, "the request's deadline passed while it waited in the queue");
        return 504;
    case SRV_END_SHUTDOWN:
        snprintf(msg, len, "the server is shutting down");
        return 503;
    case SRV_END_FAILED:
        break;
    }
    if (e->detail)
        snprintf(msg, len, "%s", e->detail);
    else
        snprintf(msg, len, "%s failed", work);
    return 500;
}
