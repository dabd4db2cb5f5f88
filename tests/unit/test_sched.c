/* test_sched.c - the server's scheduler (server/scheduler.h) alone, without HTTP, on
 * the t5-tiny-gated fixture: tasks end DONE with transformers' greedy ids (the
 * fixture's goldens) in submission order; a full queue refuses a submission whole;
 * a cancel flag, a deadline and an abort end queued and running tasks with the right
 * reason (and whether they had started); a task the engine refuses ends FAILED; the
 * scheduler's free finishes what it holds. Links server/scheduler.o and log.o only. */
#include <check.h>
#include "check_run.h"
#include "tok_testutil.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scheduler.h"
#include "t5.h"

static t5_model *model;
static int32_t in_ids[64], want_ids[64]; /* golden case "Hello world": input, greedy output */
static int n_in, n_want, want_max_new;

static void setup(void) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/t5-tiny-gated", tt_fixtures_dir());
    model = t5_model_load(path, err, sizeof err);
    ck_assert_msg(model, "cannot load %s: %s", path, err);
    snprintf(path, sizeof path, "%s/models/t5-tiny-gated.golden.json", tt_fixtures_dir());
    json_error_t je;
    json_t *g = json_load_file(path, 0, &je);
    ck_assert_msg(g, "cannot read %s: %s", path, je.text);
    json_t *cases = json_object_get(g, "cases"), *c = NULL;
    for (size_t i = 0; i < json_array_size(cases); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(cases, i), "text")), "Hello world"))
            c = json_array_get(cases, i);
    ck_assert_msg(c, "no 'Hello world' case in the goldens");
    json_t *in = json_object_get(c, "input_ids"), *greedy = json_object_get(c, "greedy");
    json_t *out = json_object_get(greedy, "ids");
    n_in = (int)json_array_size(in);
    n_want = (int)json_array_size(out);
    ck_assert(n_in > 0 && n_in <= 64 && n_want > 0 && n_want <= 64);
    for (int i = 0; i < n_in; i++)
        in_ids[i] = (int32_t)json_integer_value(json_array_get(in, i));
    for (int i = 0; i < n_want; i++)
        want_ids[i] = (int32_t)json_integer_value(json_array_get(out, i));
    want_max_new = (int)json_integer_value(json_object_get(greedy, "max_new_tokens"));
    json_decref(g);
}

static void teardown(void) {
    t5_model_free(model);
}

/* One task and what became of it. */
typedef struct {
    srv_task task;
    atomic_int done, tokens, started_tokens;
    atomic_int cancel;   /* the task's cancel flag */
    int cancel_after;    /* >0: set cancel after this many tokens */
    int sleep_us;        /* per token: keeps a task running for a while */
    atomic_int *counter; /* order of ends */
    int order;
    srv_end reason;
    int started, n_seqs, finish, n_out;
    int32_t out[64];
    char detail[128];
} probe;

static int on_token(void *user, int32_t token, float logprob) {
    (void)token;
    (void)logprob;
    probe *p = user;
    int n = atomic_fetch_add(&p->tokens, 1) + 1;
    if (p->cancel_after && n >= p->cancel_after) atomic_store(&p->cancel, 1);
    if (p->sleep_us) usleep((useconds_t)p->sleep_us);
    return 0;
}

static void on_done(void *user, srv_task_end *e) {
    probe *p = user;
    p->reason = e->reason;
    p->started = e->started;
    snprintf(p->detail, sizeof p->detail, "%s", e->detail ? e->detail : "");
    if (e->result) {
        p->n_seqs = e->result->n_seqs;
        if (p->n_seqs > 0) {
            p->finish = e->result->seqs[0].finish;
            p->n_out = e->result->seqs[0].n < 64 ? e->result->seqs[0].n : 64;
            memcpy(p->out, e->result->seqs[0].ids, (size_t)p->n_out * sizeof *p->out);
        }
        t5_result_free(e->result);
    }
    if (p->counter) p->order = atomic_fetch_add(p->counter, 1);
    atomic_store(&p->done, 1);
}

/* A greedy task for the golden input; max_new tokens (min_new_tokens too when force). */
static void probe_init(probe *p, int max_new, int force, double deadline) {
    memset(p, 0, sizeof *p);
    srv_task *t = &p->task;
    t->kind = SRV_TASK_GENERATE;
    t->ids = in_ids;
    t->n = n_in;
    t->rows = 1;
    t->deadline = deadline;
    t->cancel = &p->cancel;
    t5_gen_default_params(&t->u.gen.params);
    t->u.gen.params.max_new_tokens = max_new;
    if (force) t->u.gen.params.min_new_tokens = max_new;
    t->u.gen.on_token = on_token;
    t->on_done = on_done;
    t->user = p;
}

static srv_sched *sched_new(int workers, int max_batch, int queue_size) {
    srv_sched_config c = {model, workers, max_batch, 1, queue_size, NULL, NULL};
    char err[256];
    srv_sched *q = srv_sched_create(&c, err, sizeof err);
    ck_assert_msg(q, "srv_sched_create: %s", err);
    return q;
}

static void wait_until(atomic_int *flag, int at_least) {
    for (int i = 0; i < 60000 && atomic_load(flag) < at_least; i++)
        usleep(1000);
    ck_assert_msg(atomic_load(flag) >= at_least, "timed out waiting");
}

static double far(void) {
    return srv_now() + 600;
}

START_TEST(test_done_in_order) {
    srv_sched *q = sched_new(1, 1, 8);
    atomic_int counter = 0;
    probe p[4];
    srv_task *tasks[4];
    for (int i = 0; i < 4; i++) {
        probe_init(&p[i], want_max_new, 0, far());
        p[i].counter = &counter;
        tasks[i] = &p[i].task;
    }
    ck_assert_int_eq(srv_sched_submit(q, tasks, 4), 0);
    for (int i = 0; i < 4; i++)
        wait_until(&p[i].done, 1);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(p[i].reason, SRV_END_DONE);
        ck_assert_int_eq(p[i].started, 1);
        ck_assert_int_eq(p[i].order, i); /* one row: strictly first in, first out */
        ck_assert_int_eq(p[i].n_seqs, 1);
        ck_assert_int_eq(p[i].finish, T5_FINISH_EOS);
        ck_assert_int_eq(p[i].n_out, n_want);
        ck_assert_mem_eq(p[i].out, want_ids, (size_t)n_want * sizeof *want_ids);
        ck_assert_int_eq(atomic_load(&p[i].tokens), n_want); /* on_token saw every token */
    }
    ck_assert_int_eq(srv_sched_queued(q), 0);
    ck_assert_int_eq(srv_sched_active(q), 0);
    srv_sched_free(q);
}
END_TEST

START_TEST(test_batched_equals_alone) {
    /* eight tasks in one batch of eight rows on two workers: each = the golden ids */
    srv_sched *q = sched_new(2, 8, 16);
    probe p[8];
    srv_task *tasks[8];
    for (int i = 0; i < 8; i++) {
        probe_init(&p[i], want_max_new, 0, far());
        tasks[i] = &p[i].task;
    }
    ck_assert_int_eq(srv_sched_submit(q, tasks, 8), 0);
    for (int i = 0; i < 8; i++) {
        wait_until(&p[i].done, 1);
        ck_assert_int_eq(p[i].reason, SRV_END_DONE);
        ck_assert_int_eq(p[i].n_out, n_want);
        ck_assert_mem_eq(p[i].out, want_ids, (size_t)n_want * sizeof *want_ids);
    }
    srv_sched_free(q);
}
END_TEST

START_TEST(test_queue_full) {
    srv_sched *q = sched_new(1, 1, 2);
    probe a, b[4];
    probe_init(&a, 400, 1, far());
    a.sleep_us = 2000;
    srv_task *ta = &a.task;
    ck_assert_int_eq(srv_sched_submit(q, &ta, 1), 0);
    wait_until(&a.tokens, 1); /* a holds the only row */
    srv_task *tb[4];
    for (int i = 0; i < 4; i++) {
        probe_init(&b[i], 3, 0, far());
        tb[i] = &b[i].task;
    }
    ck_assert_int_eq(srv_sched_submit(q, tb, 3), -1); /* 3 > queue_size 2: none queued */
    ck_assert_int_eq(srv_sched_queued(q), 0);
    ck_assert_int_eq(srv_sched_submit(q, tb, 2), 0);
    ck_assert_int_eq(srv_sched_queued(q), 2);
    ck_assert_int_eq(srv_sched_submit(q, tb + 2, 1), -1); /* full */
    ck_assert_int_eq(srv_sched_active(q), 1);
    atomic_store(&a.cancel, 1);
    wait_until(&a.done, 1);
    wait_until(&b[0].done, 1);
    wait_until(&b[1].done, 1);
    ck_assert_int_eq(a.reason, SRV_END_CANCELLED);
    ck_assert_int_eq(b[0].reason, SRV_END_DONE);
    ck_assert_int_eq(b[1].reason, SRV_END_DONE);
    ck_assert_int_eq(atomic_load(&b[2].done) + atomic_load(&b[3].done), 0); /* refused: never called */
    srv_sched_free(q);
}
END_TEST

START_TEST(test_cancel) {
    srv_sched *q = sched_new(1, 4, 8);
    probe before, during;
    probe_init(&before, 10, 0, far());
    atomic_store(&before.cancel, 1); /* the client left before its turn */
    probe_init(&during, 300, 1, far());
    during.cancel_after = 3;
    srv_task *t[2] = {&before.task, &during.task};
    ck_assert_int_eq(srv_sched_submit(q, t, 2), 0);
    wait_until(&before.done, 1);
    wait_until(&during.done, 1);
    ck_assert_int_eq(before.reason, SRV_END_CANCELLED);
    ck_assert_int_eq(before.started, 0);
    ck_assert_int_eq(before.n_seqs, 0); /* no result: it never ran */
    ck_assert_int_eq(during.reason, SRV_END_CANCELLED);
    ck_assert_int_eq(during.started, 1);
    ck_assert_int_eq(during.finish, T5_FINISH_CANCELLED);
    ck_assert_int_lt(atomic_load(&during.tokens), 300); /* it left the batch early */
    srv_sched_free(q);
}
END_TEST

START_TEST(test_deadline) {
    srv_sched *q = sched_new(1, 1, 8);
    probe late, running, queued;
    probe_init(&late, 10, 0, srv_now() - 1); /* already past */
    probe_init(&running, 400, 1, srv_now() + 0.2);
    running.sleep_us = 2000; /* 400 tokens take 0.8 s at least */
    srv_task *t[2] = {&late.task, &running.task};
    ck_assert_int_eq(srv_sched_submit(q, t, 2), 0);
    wait_until(&running.tokens, 1);
    /* queued behind the running task (one row): expire() ends it on this thread */
    probe_init(&queued, 10, 0, srv_now() + 0.01);
    srv_task *tq = &queued.task;
    ck_assert_int_eq(srv_sched_submit(q, &tq, 1), 0);
    ck_assert_int_eq(srv_sched_queued(q), 1);
    srv_sched_expire(q, srv_now() + 0.05);
    ck_assert_int_eq(atomic_load(&queued.done), 1);
    ck_assert_int_eq(queued.reason, SRV_END_DEADLINE);
    ck_assert_int_eq(queued.started, 0);
    ck_assert_int_eq(srv_sched_queued(q), 0);
    wait_until(&late.done, 1);
    wait_until(&running.done, 1);
    ck_assert_int_eq(late.reason, SRV_END_DEADLINE);
    ck_assert_int_eq(late.started, 0);
    ck_assert_int_eq(running.reason, SRV_END_DEADLINE);
    ck_assert_int_eq(running.started, 1);
    ck_assert_int_lt(atomic_load(&running.tokens), 400);
    srv_sched_free(q);
}
END_TEST

START_TEST(test_shutdown) {
    srv_sched *q = sched_new(1, 1, 8);
    probe running, queued, after;
    probe_init(&running, 400, 1, far());
    running.sleep_us = 2000;
    probe_init(&queued, 10, 0, far());
    srv_task *t[2] = {&running.task, &queued.task};
    ck_assert_int_eq(srv_sched_submit(q, t, 2), 0);
    wait_until(&running.tokens, 1);
    srv_sched_abort(q);
    wait_until(&running.done, 1);
    wait_until(&queued.done, 1);
    ck_assert_int_eq(running.reason, SRV_END_SHUTDOWN);
    ck_assert_int_eq(running.started, 1);
    ck_assert_int_eq(queued.reason, SRV_END_SHUTDOWN);
    ck_assert_int_eq(queued.started, 0);
    probe_init(&after, 10, 0, far()); /* submitted after the abort: ends at once */
    srv_task *ta = &after.task;
    ck_assert_int_eq(srv_sched_submit(q, &ta, 1), 0);
    wait_until(&after.done, 1);
    ck_assert_int_eq(after.reason, SRV_END_SHUTDOWN);
    srv_sched_free(q);
}
END_TEST

START_TEST(test_failed_and_free_drains) {
    srv_sched *q = sched_new(1, 2, 8);
    probe bad, p[3];
    probe_init(&bad, 10, 0, far());
    static int32_t oov[2];
    oov[0] = t5_model_config(model)->vocab_size; /* outside the vocabulary */
    oov[1] = 1;
    bad.task.ids = oov;
    bad.task.n = 2;
    srv_task *t[4] = {&bad.task};
    for (int i = 0; i < 3; i++) {
        probe_init(&p[i], want_max_new, 0, far());
        t[i + 1] = &p[i].task;
    }
    ck_assert_int_eq(srv_sched_submit(q, t, 4), 0);
    srv_sched_free(q); /* finishes every task it holds or finds queued */
    ck_assert_int_eq(atomic_load(&bad.done), 1);
    ck_assert_int_eq(bad.reason, SRV_END_FAILED);
    ck_assert_int_eq(bad.started, 0);
    ck_assert_str_eq(bad.detail, "generation failed to start");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&p[i].done), 1);
        ck_assert_int_eq(p[i].reason, SRV_END_DONE);
        ck_assert_mem_eq(p[i].out, want_ids, (size_t)n_want * sizeof *want_ids);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_done_in_order);
    tcase_add_test(tc, test_batched_equals_alone);
    tcase_add_test(tc, test_queue_full);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_deadline);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_failed_and_free_drains);
    suite_add_tcase(s, tc);
    return check_run(s);
}
