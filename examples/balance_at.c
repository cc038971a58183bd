/* SPDX-License-Identifier: Apache-2.0 */
/*
 * balance_at - a party's book stock at the end of a date.
 *
 *   example_balance_at LEDGER_DIR PARTY YYYY-MM-DD
 *
 * The date is read in the ledger's zone (+08:00 by default) by the
 * library's time parser; the balance includes every event up to
 * 23:59:59.999999 that day.  An RFC 3339 date-time works too.
 */
#include <stdio.h>

#include <trace/trace.h>

static int print_holding(const trace_holding *h, void *ctx)
{
    (void)ctx;
    printf("%-20s %-16s %-10s %14s %s\n", h->substance, h->lot, h->site,
           h->qty_text, h->unit);
    return 0;
}

int main(int argc, char **argv)
{
    trace_ledger *l;
    int64_t at;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: %s LEDGER_DIR PARTY YYYY-MM-DD\n", argv[0]);
        return 1;
    }
    if ((rc = trace_ledger_open(&l, argv[1])) != TRACE_OK) {
        fprintf(stderr, "error: %s\n", trace_error_last());
        return trace_error_exit_code(rc);
    }
    /* a bare date is that whole day in the ledger's zone: its end */
    if ((rc = trace_time_parse(&at, argv[3], trace_ledger_tz(l), 1)) !=
        TRACE_OK) {
        fprintf(stderr, "error: %s\n", trace_error_last());
        trace_ledger_close(l);
        return 1;
    }
    printf("book stock of %s at the end of %s\n", argv[2], argv[3]);
    rc = trace_balance(l, argv[2], at, NULL, print_holding, NULL);
    if (rc != TRACE_OK)
        fprintf(stderr, "error: %s\n", trace_error_last());
    trace_ledger_close(l);
    return trace_error_exit_code(rc);
}
