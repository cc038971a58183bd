/* SPDX-License-Identifier: Apache-2.0 */
/* test_timefmt.c - RFC 3339 times (timefmt.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void test_parse_and_format(void **state)
{
    static const struct {
        const char *in, *out;
        int64_t us;
    } ok[] = {
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", 0},
        {"1970-01-01T08:00:00+08:00", "1970-01-01T08:00:00+08:00", 0},
        {"2026-03-01T09:30:00.25-05:00", "2026-03-01T09:30:00.25-05:00",
         1772375400250000LL},
        {"2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z", 1709251199000000LL},
        {"2026-01-05T10:00:00.123456000+00:00", "2026-01-05T10:00:00.123456Z",
         1767607200123456LL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        Trace__V1__Time t;
        char buf[64];
        assert_int_equal(time_parse(&t, ok[i].in, 0, 480), TRACE_OK);
        assert_true(t.us == ok[i].us);
        assert_int_equal(time_format(buf, sizeof(buf), &t), TRACE_OK);
        assert_string_equal(buf, ok[i].out);
    }
}

static void test_rejects(void **state)
{
    static const char *bad[] = {"2026-02-30T00:00:00Z",
                                "2025-02-29T00:00:00Z",
                                "2026-13-01T00:00:00Z",
                                "2026-01-01T24:00:00Z",
                                "2026-01-01T10:00:00",
                                "2026-01-01 10:00:00Z",
                                "2026-01-01T10:00:60Z",
                                "2026-1-01T10:00:00Z",
                                "yesterday",
                                "2026-01-01T10:00:00.1234567Z",
                                "2026-01-01T10:00:00+8:00",
                                "",
                                "2026-01-01T10:00:00Zjunk"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Trace__V1__Time t;
        assert_int_equal(time_parse(&t, bad[i], 0, 480), TRACE_EINVAL);
    }
}

static void test_bare_date_is_whole_day(void **state)
{
    Trace__V1__Time t;
    char buf[64];
    (void)state;
    assert_int_equal(time_parse(&t, "2026-01-01", 0, 480), TRACE_EINVAL);
    assert_int_equal(time_parse(&t, "2026-01-01", 1, 480), TRACE_OK);
    /* 2026-01-01T00:00:00+08:00 == 2025-12-31T16:00:00Z */
    assert_true(t.us == 1767196800000000LL);
    assert_true(time_end_us(&t, 480) == 1767196800000000LL + 86400000000LL - 1);
    assert_int_equal(time_format(buf, sizeof(buf), &t), TRACE_OK);
    assert_string_equal(buf, "2026-01-01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_bare_date_is_whole_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
