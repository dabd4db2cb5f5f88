/* log.h - t5serve's log lines and clock (log.c): used by every server/ file, uses none. */
#ifndef T5SERVE_LOG_H
#define T5SERVE_LOG_H

enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN = 1, SRV_LOG_INFO = 2, SRV_LOG_DEBUG = 3 };
void srv_log_set_level(const char *level);
int srv_log_enabled(int level);
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double srv_now(void); /* monotonic seconds (CLOCK_MONOTONIC) */

#endif
