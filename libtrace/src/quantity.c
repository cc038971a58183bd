/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quantity.c - exact quantities.
 *
 * A quantity is stored as an int64 count of base units: micrograms for
 * mass, microlitres for volume and milli-units for counts.  Parsing works
 * on the decimal text itself, never through a float: "12.5" kg becomes
 * 12500000000 ug exactly, and a digit finer than the base unit is an
 * error rather than something to round.
 *
 * One event's quantity is at most the ledger's ceiling for its dimension
 * (qty_check_ceiling; default TRACE_MAX_QTY_DEFAULT = 10^18 base units),
 * and sums of quantities are computed with the checked helpers of
 * internal.h, never with a bare + or -: an int64 holds about 9.2 * 10^18
 * base units, so ten events at the ceiling already overflow it.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const struct unit {
    const char *name;
    dimension dim;
    int64_t factor; /* base units per unit */
} units[] = {
    {"ug", DIM_MASS, 1},
    {"mg", DIM_MASS, 1000},
    {"g", DIM_MASS, 1000000},
    {"kg", DIM_MASS, 1000000000},
    {"t", DIM_MASS, 1000000000000},
    {"uL", DIM_VOLUME, 1},
    {"mL", DIM_VOLUME, 1000},
    {"L", DIM_VOLUME, 1000000},
    {"m3", DIM_VOLUME, 1000000000},
    {"unit", DIM_COUNT, 1000},
};

/* Chinese spellings of the units, taken on input and stored as the
 * canonical name. */
static const struct {
    const char *alias, *unit;
} unit_aliases[] = {
    {"微克", "ug"}, {"毫克", "mg"},   {"克", "g"},      {"千克", "kg"},
    {"公斤", "kg"}, {"吨", "t"},      {"微升", "uL"},   {"毫升", "mL"},
    {"升", "L"},    {"立方米", "m3"}, {"单位", "unit"}, {"片", "unit"},
    {"粒", "unit"}, {"支", "unit"},   {"贴", "unit"},   {"个", "unit"},
};

const char *unit_canonical(const char *unit)
{
    for (size_t i = 0; i < sizeof(unit_aliases) / sizeof(*unit_aliases); i++)
        if (strcmp(unit_aliases[i].alias, unit) == 0)
            return unit_aliases[i].unit;
    return unit;
}

int unit_lookup(const char *unit, dimension *dim, int64_t *factor)
{
    unit = unit_canonical(unit);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(units[i].name, unit) == 0) {
            if (dim)
                *dim = units[i].dim;
            if (factor)
                *factor = units[i].factor;
            return TRACE_OK;
        }
    }
    return trace_fail(TRACE_EINVAL,
                      "unknown unit \"%.32s\" (use ug mg g kg t, uL mL L m3 "
                      "or unit; or 克 千克 吨 毫升 升 ...)",
                      unit);
}

int unit_index(const char *unit)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(units[i].name, unit) == 0)
            return (int)i;
    return -1;
}

const char *unit_name(int index)
{
    if (index < 0 || (size_t)index >= sizeof(units) / sizeof(units[0]))
        return NULL;
    return units[index].name;
}

const char *dimension_name(dimension d)
{
    static const char *names[] = {"mass", "volume", "count"};
    return names[d];
}

int qty_parse(int64_t *out, const char *text, int64_t factor, int allow_zero)
{
    const char *p = text;
    int64_t whole = 0, frac = 0, scale = factor;
    int digits = 0;

    if (*p == '-')
        return trace_fail(TRACE_EINVAL, "negative quantity \"%.40s\"", text);
    if (*p < '0' || *p > '9')
        return trace_fail(TRACE_EINVAL, "malformed quantity \"%.40s\"", text);
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (whole > (INT64_MAX - (*p - '0')) / 10) /* exact: up to MAX */
            return trace_fail(TRACE_EINVAL, "quantity too large \"%.40s\"",
                              text);
        whole = whole * 10 + (*p - '0');
    }
    if (digits > 1 && text[0] == '0')
        return trace_fail(TRACE_EINVAL,
                          "malformed quantity \"%.40s\" (leading zero)", text);
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return trace_fail(TRACE_EINVAL, "malformed quantity \"%.40s\"",
                              text);
        for (; *p >= '0' && *p <= '9'; p++) {
            int d = *p - '0';
            if (scale == 1) {
                if (d != 0)
                    return trace_fail(TRACE_EINVAL,
                                      "quantity \"%.40s\" is more precise "
                                      "than the base unit",
                                      text);
                continue;
            }
            scale /= 10;
            frac += d * scale;
        }
    }
    if (*p != '\0')
        return trace_fail(TRACE_EINVAL,
                          "malformed quantity \"%.40s\" (only digits and "
                          "one decimal point)",
                          text);
    if (whole > (INT64_MAX - frac) / factor)
        return trace_fail(TRACE_EINVAL, "quantity too large \"%.40s\"", text);
    *out = whole * factor + frac;
    if (*out == 0 && !allow_zero)
        return trace_fail(TRACE_EINVAL, "quantity must be greater than zero");
    return TRACE_OK;
}

int qty_format(char *buf, size_t cap, int64_t base, int64_t factor)
{
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64 */
    uint64_t mag = base < 0 ? 0 - (uint64_t)base : (uint64_t)base;
    uint64_t f = (uint64_t)factor, whole = mag / f, frac = mag % f;
    int n, width = 0;
    const char *sign = base < 0 ? "-" : "";

    if (frac == 0) {
        n = snprintf(buf, cap, "%s%llu", sign, (unsigned long long)whole);
    } else {
        for (uint64_t d = f; d > 1; d /= 10)
            width++;
        while (frac % 10 == 0) {
            frac /= 10;
            width--;
        }
        n = snprintf(buf, cap, "%s%llu.%0*llu", sign, (unsigned long long)whole,
                     width, (unsigned long long)frac);
    }
    return (n < 0 || (size_t)n >= cap) ? TRACE_EINVAL : TRACE_OK;
}

int qty_spec_parse(const char *spec, dimension *dim, int64_t *amount)
{
    char text[48], unit[8];
    size_t n = strspn(spec, "0123456789.");
    const char *u = spec + n + strspn(spec + n, " ");
    int64_t factor;
    int rc;

    if (n == 0 || n >= sizeof(text) || !*u || strlen(u) >= sizeof(unit))
        return trace_fail(TRACE_EINVAL,
                          "a quantity ceiling is QTY UNIT, e.g. \"1000000 "
                          "t\" or \"5000kg\", not \"%.40s\"",
                          spec);
    memcpy(text, spec, n);
    text[n] = '\0';
    snprintf(unit, sizeof(unit), "%s", u);
    if ((rc = unit_lookup(unit, dim, &factor)) != TRACE_OK ||
        (rc = qty_parse(amount, text, factor, 0)) != TRACE_OK)
        return trace_fail(rc, "quantity ceiling: %s", trace_error_last());
    return TRACE_OK;
}

int qty_check_ceiling(const trace_ledger *l, const char *field, int64_t amount,
                      const char *unit)
{
    dimension dim;
    int64_t factor;
    char got[48], max[48];

    if (unit_lookup(unit, &dim, &factor) != TRACE_OK)
        return TRACE_EINVAL;
    if (amount <= l->max_qty[dim])
        return TRACE_OK;
    qty_format(got, sizeof(got), amount, factor);
    qty_format(max, sizeof(max), l->max_qty[dim], factor);
    return trace_fail(TRACE_EINVAL,
                      "field \"%s\": %s %s exceeds this ledger's ceiling of "
                      "%s %s per event for %s (see tracectl init --max-qty)",
                      field, got, unit, max, unit, dimension_name(dim));
}
