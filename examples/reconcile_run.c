/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_run - runs every reconciliation rule and prints the alerts.
 *
 *   example_reconcile_run LEDGER_DIR
 */
#include <stdio.h>

#include <trace/trace.h>

static int print_alert(const trace_alert *a, void *ctx)
{
    (void)ctx;
    printf("%s %-20s %-8s %s%s\n", a->id, a->rule, a->severity, a->detail,
           a->is_new ? "  (new)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    trace_reconcile_opts opts = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    trace_ledger *l;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s LEDGER_DIR\n", argv[0]);
        return 1;
    }
    if ((rc = trace_ledger_open(&l, argv[1])) != TRACE_OK) {
        fprintf(stderr, "error: %s\n", trace_error_last());
        return trace_error_exit_code(rc);
    }
    rc = trace_reconcile(l, &opts, print_alert, NULL, &sum);
    if (rc == TRACE_OK)
        printf("%llu alerts, %llu new, over %llu events in %.2f s\n",
               (unsigned long long)sum.alerts,
               (unsigned long long)sum.new_alerts,
               (unsigned long long)sum.events, sum.seconds);
    else
        fprintf(stderr, "error: %s\n", trace_error_last());
    trace_ledger_close(l);
    return trace_error_exit_code(rc);
}
