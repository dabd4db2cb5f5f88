/* scheduler.h - the task scheduler: a bounded FIFO queue of tasks and a pool of worker
 * threads, each owning one continuous t5_batch (engine/t5.h). It knows the engine and
 * nothing else: no HTTP, no JSON, no tokenizer, no request objects. A task ends with a
 * reason (srv_end) that its owner translates into whatever it answers (the routes: an
 * HTTP status).
 *
 * Threads: srv_sched_submit, _expire, _abort, _queued and _active may be called from
 * any thread. Tasks run on the workers; on_token is called on a worker, on_done on a
 * worker or (for a queued task that expires) on the thread calling srv_sched_expire.
 *
 * Task kinds: SRV_TASK_GENERATE (encoder + decoder: t5_batch_add) and SRV_TASK_EMBED
 * (the encoder only: t5_batch_add_embed; it takes no decoder rows, joins the next step's
 * grouped encoder pass with the generation inputs admitted with it and leaves the batch
 * in that step). A new kind adds: an enum value here, its parameters to the union `u`
 * of srv_task, its result to srv_task_end (or a hook in u), and one case in scheduler.c's
 * task_start() (the engine call that admits it into the batch); queueing, admission,
 * cancellation, deadlines and shutdown are shared by every kind. */
#ifndef T5SERVE_SCHEDULER_H
#define T5SERVE_SCHEDULER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "t5.h"

typedef enum {
    SRV_TASK_GENERATE = 1, /* u.gen: generate from ids (t5_batch_add) */
    SRV_TASK_EMBED = 2,    /* u.embed: the encoder's last hidden state (t5_batch_add_embed); rows 0 */
} srv_task_kind;

/* Why a task ended. */
typedef enum {
    SRV_END_DONE = 0,  /* the engine finished it (result holds the sequences) */
    SRV_END_CANCELLED, /* *cancel became nonzero (the client went away) */
    SRV_END_DEADLINE,  /* its deadline passed */
    SRV_END_SHUTDOWN,  /* srv_sched_abort (the server's drain timed out) */
    SRV_END_FAILED,    /* the engine could not run it (detail says what) */
} srv_end;

/* What on_done receives; valid during the call only. */
typedef struct {
    srv_end reason;
    int started;        /* 1: it had joined a batch; 0: it ended in the queue */
    const char *detail; /* SRV_END_FAILED: what failed, in words; else NULL */
    t5_result *result;  /* generation: the engine's result once it ran (any reason), else
                         * NULL; the callee owns the arrays inside (t5_result_free).
                         * SRV_TASK_EMBED: always NULL (the output went to u.embed.on_hidden) */
} srv_task_end;

typedef struct srv_task srv_task;

/* Called exactly once per submitted task; the task may be freed from here on. */
typedef void (*srv_task_done_fn)(void *user, srv_task_end *end);

/* One unit of work. The caller allocates it (usually inside its own job object),
 * fills the public fields, zeroes `sched`, and keeps it (and ids) alive until on_done. */
struct srv_task {
    srv_task_kind kind;
    const int32_t *ids; /* [n] encoder input (the caller's) */
    int n;
    int rows;                 /* batch rows it takes (generation: max(num_beams, num_return_sequences);
                               * SRV_TASK_EMBED: 0) */
    double deadline;          /* srv_now() seconds (CLOCK_MONOTONIC); past it: SRV_END_DEADLINE */
    const atomic_int *cancel; /* nonzero: end it (SRV_END_CANCELLED); NULL: never */
    union {
        struct {
            t5_gen_params params;
            t5_token_fn on_token; /* may be NULL; called with user */
        } gen;                    /* SRV_TASK_GENERATE */
        struct {
            /* h [n][d_model]: the encoder's last hidden state of the task's n ids, valid
             * during the call only; called on the worker (once, before on_done ends the
             * task with SRV_END_DONE; never when it ends otherwise). Must not block long:
             * the batch waits for it. */
            void (*on_hidden)(void *user, const float *h, int n);
        } embed; /* SRV_TASK_EMBED */
    } u;
    srv_task_done_fn on_done;
    void *user;
    struct { /* the scheduler's own; zero at submission */
        srv_task *next;
        int handle, cancel_sent, finished, have_result, delivered;
        srv_end why;        /* the reason a cancellation was sent for */
        const char *failed; /* set when the batch failed under it */
        t5_result result;
    } sched;
};

typedef struct {
    const t5_model *model; /* must outlive the scheduler */
    int workers;           /* worker threads, each with one batch */
    int max_batch;         /* rows per batch */
    int threads_per_worker;
    int queue_size; /* tasks waiting at most; a submission that does not fit is refused */
    /* optional: before each batched step, the rows in use (metrics) */
    void (*on_step)(void *user, int rows);
    void *user;
} srv_sched_config;

typedef struct srv_sched srv_sched;

/* Starts the workers. NULL with err set on failure. */
srv_sched *srv_sched_create(const srv_sched_config *c, char *err, size_t errlen);
/* Queues all n tasks or none: 0, or -1 when the queue lacks room or the scheduler is
 * stopping (nothing is called back then; the tasks stay the caller's). */
int srv_sched_submit(srv_sched *q, srv_task *const *tasks, int n);
/* Ends queued tasks whose deadline passed or whose cancel flag is set. Any thread. */
void srv_sched_expire(srv_sched *q, double now);
/* Ends every queued and running task with SRV_END_SHUTDOWN (at their next step). */
void srv_sched_abort(srv_sched *q);
/* Lets the workers finish every task they hold or find queued, then joins them. */
void srv_sched_free(srv_sched *q);
int srv_sched_queued(srv_sched *q); /* tasks waiting */
int srv_sched_active(srv_sched *q); /* tasks in batches */

#endif
