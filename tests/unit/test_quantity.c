/* SPDX-License-Identifier: Apache-2.0 */
/* test_quantity.c - exact decimal quantities (quantity.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static const struct {
    const char *text, *unit;
    int ok;
    int64_t base;
} cases[] = {
    {"500", "kg", 1, 500000000000LL},
    {"12.5", "kg", 1, 12500000000LL},
    {"0.000000001", "kg", 1, 1},
    {"0.0000000001", "kg", 0, 0}, /* finer than 1 ug */
    {"0.0000000010", "kg", 1, 1}, /* trailing zero is fine */
    {"1.5", "ug", 0, 0},          /* finer than the base unit */
    {"3", "unit", 1, 3000},
    {"0.001", "unit", 1, 1},
    {"0.0005", "unit", 0, 0},
    {"2", "m3", 1, 2000000000LL},
    {"-1", "kg", 0, 0},
    {"0", "kg", 0, 0}, /* zero is not a movement */
    {"1e3", "kg", 0, 0},
    {"+5", "kg", 0, 0},
    {".5", "kg", 0, 0},
    {"5.", "kg", 0, 0},
    {"05", "kg", 0, 0},
    {"1.2.3", "kg", 0, 0},
    {"", "kg", 0, 0},
    {"9999999999999999999", "ug", 0, 0}, /* overflow */
    {"9223373", "t", 0, 0},              /* overflow after scaling */
    {"9223372", "t", 1, 9223372000000000000LL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t factor, out = -1;
        assert_int_equal(unit_lookup(cases[i].unit, NULL, &factor), TRACE_OK);
        int rc = qty_parse(&out, cases[i].text, factor, 0);
        if (cases[i].ok) {
            assert_int_equal(rc, TRACE_OK);
            assert_true(out == cases[i].base);
        } else if (rc != TRACE_EINVAL) {
            fail_msg("\"%s\" %s was accepted", cases[i].text, cases[i].unit);
        }
    }
}

static void test_zero_allowed_for_counts(void **state)
{
    int64_t out = -1;
    (void)state;
    assert_int_equal(qty_parse(&out, "0", 1000, 1), TRACE_OK);
    assert_true(out == 0);
}

static void test_format_round_trip(void **state)
{
    static const char *texts[] = {"500", "12.5", "0.000000001", "99.95",
                                  "1234567.891"};
    char buf[64];
    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int64_t v;
        assert_int_equal(qty_parse(&v, texts[i], 1000000000, 0), TRACE_OK);
        assert_int_equal(qty_format(buf, sizeof(buf), v, 1000000000), TRACE_OK);
        assert_string_equal(buf, texts[i]);
    }
    assert_int_equal(qty_format(buf, sizeof(buf), -1500, 1000), TRACE_OK);
    assert_string_equal(buf, "-1.5");
}

static void test_units(void **state)
{
    dimension d;
    (void)state;
    assert_int_equal(unit_lookup("mL", &d, NULL), TRACE_OK);
    assert_int_equal(d, DIM_VOLUME);
    assert_int_equal(unit_lookup("unit", &d, NULL), TRACE_OK);
    assert_int_equal(d, DIM_COUNT);
    assert_int_equal(unit_lookup("KG", &d, NULL), TRACE_EINVAL);
    assert_int_equal(unit_lookup("lb", &d, NULL), TRACE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_zero_allowed_for_counts),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
