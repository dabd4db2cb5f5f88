/* log.c - t5serve's log lines on stderr: `TIME LEVEL message`, one line per call,
 * written with one fputs so lines of different threads never interleave. The access
 * log (http.c) goes through here at level info. Not a general logging library. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log_level = SRV_LOG_INFO; /* set once at start, before any thread */

void srv_log_set_level(const char *level) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(level, names[i]) == 0) log_level = i;
}

int srv_log_enabled(int level) {
    return level <= log_level;
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void srv_log(int level, const char *fmt, ...) {
    static const char *tags[] = {"error", "warn", "info", "debug"};
    if (level > log_level) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000, tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len] = '\n';
    line[len + 1] = 0;
    fputs(line, stderr);
}
