/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timefmt.c - RFC 3339 times.
 *
 * Times are int64 microseconds since the epoch (UTC) plus the UTC offset
 * they were written with, so an export prints the same local time that
 * was imported.  A bare date (YYYY-MM-DD), where allowed, means that
 * whole day in the ledger's zone: it is stored as the day's first
 * microsecond with date_only set.  Leap seconds are not accepted.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "internal.h"

#define US_PER_DAY 86400000000LL

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

int time_parse(Trace__V1__Time *out, const char *s, int allow_date,
               int tz_offset_min)
{
    int y, mo, d, h = 0, mi = 0, se = 0, off = 0;
    int64_t us = 0;
    size_t len = strlen(s);
    const char *p;

    if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || y < 1900 || mo < 1 || mo > 12 ||
        d < 1 || d > days_in_month(y, mo))
        goto bad;
    trace__v1__time__init(out);
    if (len == 10) {
        if (!allow_date)
            return trace_fail(TRACE_EINVAL,
                              "\"%.40s\" is a date; a date-time with a zone "
                              "is needed here",
                              s);
        out->us = days_from_civil(y, mo, d) * US_PER_DAY -
                  (int64_t)tz_offset_min * 60000000LL;
        out->has_offset_min = 1;
        out->offset_min = tz_offset_min;
        out->has_date_only = 1;
        out->date_only = 1;
        return TRACE_OK;
    }
    if ((s[10] != 'T' && s[10] != 't') || len < 20 || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se) || h > 23 || mi > 59 || se > 59)
        goto bad;
    p = s + 19;
    if (*p == '.') {
        int64_t scale = 100000;
        p++;
        if (*p < '0' || *p > '9')
            goto bad;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 0) {
                if (*p != '0')
                    return trace_fail(TRACE_EINVAL,
                                      "time \"%.40s\" is finer than a "
                                      "microsecond",
                                      s);
                continue;
            }
            us += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) ||
            oh > 23 || om > 59)
            goto bad;
        off = oh * 60 + om;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return trace_fail(TRACE_EINVAL,
                          "time \"%.40s\" has no zone (add Z or +08:00)", s);
    }
    if (*p != '\0')
        goto bad;
    out->us = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
               (int64_t)off * 60) *
                  1000000LL +
              us;
    if (off != 0) {
        out->has_offset_min = 1;
        out->offset_min = off;
    }
    return TRACE_OK;
bad:
    return trace_fail(TRACE_EINVAL,
                      "malformed time \"%.40s\" (RFC 3339, e.g. "
                      "2026-03-01T09:30:00+08:00%s)",
                      s, allow_date ? " or 2026-03-01" : "");
}

int trace_time_parse(int64_t *out_us, const char *text, int tz_offset_min,
                     int end_of_day)
{
    Trace__V1__Time t;
    int rc = time_parse(&t, text, 1, tz_offset_min);

    if (rc != TRACE_OK)
        return rc;
    *out_us = end_of_day ? time_end_us(&t, tz_offset_min) : t.us;
    return TRACE_OK;
}

int time_format(char *buf, size_t cap, const Trace__V1__Time *t)
{
    int off = t->has_offset_min ? t->offset_min : 0;
    int64_t local = t->us + (int64_t)off * 60000000LL;
    int64_t days = local >= 0 ? local / US_PER_DAY
                              : -((-local + US_PER_DAY - 1) / US_PER_DAY);
    int64_t rem = local - days * US_PER_DAY;
    int y, n;
    unsigned m, d;
    char frac[16] = "", zone[24];

    civil_from_days(days, &y, &m, &d);
    if (t->has_date_only && t->date_only) {
        n = snprintf(buf, cap, "%04d-%02u-%02u", y, m, d);
        return (n < 0 || (size_t)n >= cap) ? TRACE_EINVAL : TRACE_OK;
    }
    int64_t secs = rem / 1000000, us = rem % 1000000;
    if (us) {
        int w = 6;
        while (us % 10 == 0) {
            us /= 10;
            w--;
        }
        snprintf(frac, sizeof(frac), ".%0*lld", w, (long long)us);
    }
    if (off == 0)
        snprintf(zone, sizeof(zone), "Z");
    else
        snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+',
                 (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
    n = snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d%s%s", y, m, d,
                 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
                 frac, zone);
    return (n < 0 || (size_t)n >= cap) ? TRACE_EINVAL : TRACE_OK;
}

int64_t time_end_us(const Trace__V1__Time *t, int tz_offset_min)
{
    (void)tz_offset_min;
    if (t->has_date_only && t->date_only)
        return t->us + US_PER_DAY - 1;
    return t->us;
}

int64_t time_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}
