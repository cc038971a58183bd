/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_csvmap.c - the CSV mapping (csvmap.c): loading mappings, RFC 4180
 * records, header resolution, dates, units, and the refusals with their
 * line numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trace/csvmap.h"
#include "trace/trace.h"

struct got {
    char out[4096]; /* lines and rejections, each "N|text\n" */
    size_t len;
};

static int on_line(void *ctx, const char *line, size_t len,
                   unsigned long lineno)
{
    struct got *g = ctx;
    g->len += (size_t)snprintf(g->out + g->len, sizeof(g->out) - g->len,
                               "%lu|%.*s\n", lineno, (int)len, line);
    return 0;
}

static int on_reject(void *ctx, unsigned long lineno, const char *reason)
{
    struct got *g = ctx;
    g->len += (size_t)snprintf(g->out + g->len, sizeof(g->out) - g->len,
                               "%lu!%s\n", lineno, reason);
    return 0;
}

static int load(trace_csvmap **m, const char *json)
{
    FILE *f = fmemopen((void *)json, strlen(json), "r");
    int rc;

    assert_non_null(f);
    rc = trace_csvmap_load(m, f);
    fclose(f);
    return rc;
}

static int run(const char *map, const char *csv, struct got *g)
{
    trace_csvmap *m = NULL;
    FILE *f;
    int rc;

    memset(g, 0, sizeof(*g));
    assert_int_equal(load(&m, map), TRACE_OK);
    f = fmemopen((void *)csv, strlen(csv), "r");
    assert_non_null(f);
    rc = trace_csvmap_read(m, f, on_line, on_reject, g, NULL);
    fclose(f);
    trace_csvmap_free(m);
    return rc;
}

static const char *MAP =
    "{\"type\":\"loss\",\"columns\":{\"id\":\"id\",\"at\":\"when\","
    "\"qty\":\"q\",\"unit\":\"u\",\"reason\":\"why\"},"
    "\"fixed\":{\"party\":\"P\"},\"at_format\":\"%Y-%m-%d\","
    "\"units\":{\"公斤\":\"kg\"}}";

static void test_quoting_bom_crlf(void **state)
{
    struct got g;
    (void)state;
    assert_int_equal(
        run(MAP,
            "\xEF\xBB\xBF\"id\",when,q,u,why,note\r\n"
            "a1,2026-02-01,1.5,公斤,damage,\"x, \"\"y\"\"\r\nz\"\r\n"
            "\r\n"
            "\"a,2\",2026-02-02,,kg,theft,",
            &g),
        TRACE_OK);
    assert_string_equal(
        g.out, "2|{\"party\":\"P\",\"type\":\"loss\",\"id\":\"a1\",\"at\":"
               "\"2026-02-01T00:00:00+08:00\",\"qty\":\"1.5\",\"unit\":\"kg\","
               "\"reason\":\"damage\"}\n"
               "5|{\"party\":\"P\",\"type\":\"loss\",\"id\":\"a,2\",\"at\":"
               "\"2026-02-02T00:00:00+08:00\",\"unit\":\"kg\",\"reason\":"
               "\"theft\"}\n");
}

static void test_refusals(void **state)
{
    struct got g;
    trace_csvmap *m = NULL;
    (void)state;
    assert_int_equal(run(MAP, "id,when,q,u\n", &g), TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "line 1: the header has no "
                                               "column \"why\""));
    assert_int_equal(
        run(MAP, "id,when,q,u,why\na,2026-13-01,1,kg,x\nb,2026-01-01\n", &g),
        TRACE_OK);
    assert_non_null(strstr(g.out, "2!line 2: field at: \"2026-13-01\""));
    assert_non_null(strstr(g.out, "3!line 3: 2 columns, but field"));
    assert_int_equal(run(MAP, "id,when,q,u,why\n\"a,2026-01-01\n", &g),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "line 2: a quoted field"));
    assert_int_equal(load(&m, "{\"type\":\"sell\",\"columns\":{\"id\":1}}"),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "unknown event type"));
    assert_int_equal(load(&m, "{\"type\":\"sale\",\"columns\":{\"id\":1},"
                              "\"fixed\":{\"id\":\"x\"}}"),
                     TRACE_EINVAL);
    assert_int_equal(load(&m, "{\"type\":\"sale\",\"columns\":{\"id\":1},"
                              "\"tz\":\"+8\"}"),
                     TRACE_EINVAL);
    assert_int_equal(load(&m, "{\"type\":\"sale\",\"header\":false,"
                              "\"columns\":{\"id\":\"id\"}}"),
                     TRACE_EINVAL);
    assert_null(m);
}

static void test_numbers_and_nesting(void **state)
{
    struct got g;
    (void)state;
    assert_int_equal(
        run("{\"type\":\"dispense\",\"header\":false,\"delimiter\":\";\","
            "\"columns\":{\"id\":\"1\",\"rx.id\":2,\"rx.written\":3,"
            "\"at\":4},\"formats\":{\"rx.written\":\"%d/%m/%Y\"},"
            "\"at_format\":\"%d/%m/%Y %H:%M:%S\",\"tz\":\"Z\"}",
            "d1;R1;05/02/2026;06/02/2026 13:14:15\n", &g),
        TRACE_OK);
    assert_string_equal(
        g.out, "1|{\"type\":\"dispense\",\"id\":\"d1\",\"rx\":{\"id\":\"R1\","
               "\"written\":\"2026-02-05T00:00:00Z\"},\"at\":"
               "\"2026-02-06T13:14:15Z\"}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting_bom_crlf),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_numbers_and_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
