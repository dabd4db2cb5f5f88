/* test_config.c - unit tests (Check) of config/: defaults, the file reader, the
 * precedence defaults < file < environment < command line, and the validation
 * messages. Not tested here: the server's use of the values (tests/suites/3*). */
#include <check.h>
#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

static char tmpl[64];

static const char *write_file(const char *text) {
    strcpy(tmpl, "/tmp/t5serve-cfg-XXXXXX");
    int fd = mkstemp(tmpl);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return tmpl;
}

START_TEST(test_defaults) {
    cfg_t c;
    cfg_init_defaults(&c);
    ck_assert_int_eq(c.port, 8080);
    ck_assert_int_eq(c.max_batch, 32);
    ck_assert_int_eq(c.workers, 1);
    ck_assert_str_eq(c.host, "0.0.0.0");
    ck_assert_str_eq(c.log_level, "info");
    ck_assert_str_eq(c.compute_type, "auto");
    ck_assert_str_eq(c.int8_float, "");
    ck_assert_int_eq(c.max_body_bytes, 1048576);
    ck_assert_str_eq(c.model, "");
}
END_TEST

START_TEST(test_precedence) {
    const char *f = write_file("# comment line\n"
                               "model = /models/a   # trailing comment\n"
                               "max_batch = 4\n"
                               "port = 9000\n"
                               "queue_size = 77\n"
                               "host = \"127.0.0.1\"\n\n");
    char cfgarg[80];
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", f);
    char *argv[] = {"t5serve", cfgarg, "--port", "9100", "--max-batch=2", NULL};
    char *envp[] = {"PATH=/bin",
                    "T5SERVE_PORT=9050",
                    "T5SERVE_QUEUE_SIZE=99",
                    "T5SERVE_WORKERS=3",
                    "T5SERVE_SERVICE_HOST=10.0.0.1",
                    "T5SERVE_COMPUTE_TYPE=bfloat16",
                    NULL};
    cfg_t c;
    char err[256] = "";
    int rc = cfg_load(&c, 5, argv, envp, err, sizeof err);
    ck_assert_msg(rc == 0, "cfg_load: %s", err);
    ck_assert_str_eq(c.model, "/models/a");       /* file only */
    ck_assert_str_eq(c.host, "127.0.0.1");        /* file, quotes removed */
    ck_assert_int_eq(c.queue_size, 99);           /* env beats file */
    ck_assert_int_eq(c.workers, 3);               /* env beats default */
    ck_assert_str_eq(c.compute_type, "bfloat16"); /* env */
    ck_assert_int_eq(c.port, 9100);               /* command line beats env and file */
    ck_assert_int_eq(c.max_batch, 2);             /* command line beats file */
    ck_assert_int_eq(c.max_input_tokens, 512);    /* default */
    ck_assert_str_eq(c.config, f);
    unlink(f);
}
END_TEST

START_TEST(test_config_from_env) {
    const char *f = write_file("model = m\nport = 1234\n");
    char envvar[80];
    snprintf(envvar, sizeof envvar, "T5SERVE_CONFIG=%s", f);
    char *argv[] = {"t5serve", NULL};
    char *envp[] = {envvar, NULL};
    cfg_t c;
    char err[256] = "";
    ck_assert_msg(cfg_load(&c, 1, argv, envp, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.port, 1234);
    unlink(f);
}
END_TEST

static void expect_error(int argc, char **argv, char **envp, const char *needle) {
    cfg_t c;
    char err[256] = "";
    ck_assert_int_eq(cfg_load(&c, argc, argv, envp, err, sizeof err), -1);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
}

START_TEST(test_errors) {
    char *a1[] = {"t5serve", "--model", "m", "--port", "70000", NULL};
    expect_error(5, a1, NULL, "--port: port must be an integer from 1 to 65535");
    char *a2[] = {"t5serve", "--model", "m", "--bogus", "1", NULL};
    expect_error(5, a2, NULL, "unknown option '--bogus'");
    char *a3[] = {"t5serve", NULL};
    expect_error(1, a3, NULL, "no model");
    char *a4[] = {"t5serve", "--model", "m", NULL};
    char *e4[] = {"T5SERVE_MAX_BATCH=abc", NULL};
    expect_error(3, a4, e4, "T5SERVE_MAX_BATCH: max_batch must be an integer");
    char *e5[] = {"T5SERVE_LOG_LEVEL=loud", NULL};
    expect_error(3, a4, e5, "log_level must be one of");
    char *e5b[] = {"T5SERVE_COMPUTE_TYPE=int4", NULL};
    expect_error(3, a4, e5b, "compute_type must be one of auto, float32, bfloat16, int8");
    char *a6[] = {"t5serve", "--model", "m", "--default-max-new-tokens", "600", NULL};
    expect_error(5, a6, NULL, "default_max_new_tokens (600) must not exceed max_new_tokens_limit (512)");
    char *a7[] = {"t5serve", "--model", NULL};
    expect_error(2, a7, NULL, "--model needs a value");
    char *a8[] = {"t5serve", "stray", NULL};
    expect_error(2, a8, NULL, "unexpected argument 'stray'");

    const char *f = write_file("model = m\nmax_batch 3\n");
    char cfgarg[80];
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", f);
    char *a9[] = {"t5serve", cfgarg, NULL};
    expect_error(2, a9, NULL, "configuration file line 2: expected `key = value`");
    unlink(f);
    f = write_file("model = m\n\nspeed = 3\n");
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", f);
    expect_error(2, a9, NULL, "configuration file line 3: unknown key 'speed'");
    unlink(f);
    char *a10[] = {"t5serve", "--config", "/nonexistent/t5serve.conf", NULL};
    expect_error(3, a10, NULL, "cannot read the configuration file");
}
END_TEST

START_TEST(test_api_key_file) {
    const char *f = write_file("s3cret-key\n");
    char path[64];
    strcpy(path, f);
    char *argv[] = {"t5serve", "--model", "m", "--api-key-file", path, NULL};
    cfg_t c;
    char err[256] = "";
    ck_assert_msg(cfg_load(&c, 5, argv, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.api_key, "s3cret-key");
    char *e2[] = {"T5SERVE_API_KEY=other", NULL};
    expect_error(5, argv, e2, "api_key and api_key_file are both set");
    unlink(path);
}
END_TEST

START_TEST(test_modes_need_no_model) {
    char *argv[] = {"t5serve", "--help", NULL};
    cfg_t c;
    char err[256] = "";
    ck_assert_int_eq(cfg_load(&c, 2, argv, NULL, err, sizeof err), 0);
    ck_assert_int_eq(c.help, 1);
    char *a2[] = {"t5serve", "--probe", "--port", "81", NULL};
    ck_assert_int_eq(cfg_load(&c, 4, a2, NULL, err, sizeof err), 0);
    ck_assert_int_eq(c.probe, 1);
    ck_assert_int_eq(c.port, 81);
}
END_TEST

START_TEST(test_help_lists_every_key) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_print_help(f, "t5serve");
    fclose(f);
    const char *flags[] = {"--model",
                           "--host",
                           "--port",
                           "--workers",
                           "--threads-per-worker",
                           "--max-batch",
                           "--queue-size",
                           "--max-body-bytes",
                           "--max-input-tokens",
                           "--max-new-tokens-limit",
                           "--request-timeout-ms",
                           "--drain-timeout-ms",
                           "--api-key",
                           "--api-key-file",
                           "--log-level",
                           "--config",
                           "T5SERVE_MAX_BATCH",
                           "default: 32"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ck_assert_msg(strstr(buf, flags[i]) != NULL, "--help lacks %s", flags[i]);
    free(buf);
}
END_TEST

START_TEST(test_print_roundtrip) {
    /* the printed configuration is itself a valid file giving the same values */
    cfg_t a, b;
    char err[256] = "";
    char *argv[] = {"t5serve", "--model", "/m", "--max-batch", "12", "--log-level", "debug", NULL};
    ck_assert_int_eq(cfg_load(&a, 7, argv, NULL, err, sizeof err), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_print(f, &a);
    fclose(f);
    const char *path = write_file(buf);
    free(buf);
    cfg_init_defaults(&b);
    ck_assert_msg(cfg_load_file(&b, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(b.max_batch, 12);
    ck_assert_str_eq(b.log_level, "debug");
    ck_assert_str_eq(b.model, "/m");
    unlink(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_config_from_env);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_api_key_file);
    tcase_add_test(tc, test_modes_need_no_model);
    tcase_add_test(tc, test_help_lists_every_key);
    tcase_add_test(tc, test_print_roundtrip);
    suite_add_tcase(s, tc);
    return check_run(s);
}
