/* check_run.h - the one way every unit test binary runs its Check suite. */
#ifndef T5SERVE_CHECK_RUN_H
#define T5SERVE_CHECK_RUN_H

#include <check.h>

/* Runs s (and frees it), printing Check's summary; returns the exit status: 0 all passed. */
int check_run(Suite *s);

#endif
