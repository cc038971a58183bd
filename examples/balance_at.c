/* SPDX-License-Identifier: Apache-2.0 */
/*
 * balance_at - a party's book stock at the end of a date.
 *
 *   example_balance_at LEDGER_DIR PARTY YYYY-MM-DD
 *
 * The date is read in +08:00 (the ledger's default zone); the balance
 * includes every event up to 23:59:59.999999 that day.
 */
#include <stdio.h>
#include <time.h>

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
    struct tm tm = {0};
    trace_ledger *l;
    int rc;

    if (argc != 4 || sscanf(argv[3], "%d-%d-%d", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday) != 3) {
        fprintf(stderr, "usage: %s LEDGER_DIR PARTY YYYY-MM-DD\n", argv[0]);
        return 1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    /* end of that day in +08:00 */
    int64_t at = ((int64_t)timegm(&tm) + 86400 - 8 * 3600) * 1000000 - 1;
    if ((rc = trace_ledger_open(&l, argv[1])) != TRACE_OK) {
        fprintf(stderr, "error: %s\n", trace_error_last());
        return trace_error_exit_code(rc);
    }
    printf("book stock of %s at the end of %s\n", argv[2], argv[3]);
    rc = trace_balance(l, argv[2], at, NULL, print_holding, NULL);
    if (rc != TRACE_OK)
        fprintf(stderr, "error: %s\n", trace_error_last());
    trace_ledger_close(l);
    return trace_error_exit_code(rc);
}
