/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace_lot - where a lot went, or where it came from.
 *
 *   example_trace_lot LEDGER_DIR LOT [PARTY] [--backward]
 */
#include <stdio.h>
#include <string.h>

#include <trace/trace.h>

static int print_hop(const trace_hop *h, void *ctx)
{
    (void)ctx;
    printf("%*s%s %s: %s -> %s, %s %s (%s/%s, %s)\n", 2 * h->depth, "", h->kind,
           h->lot, h->from ? h->from : "origin",
           h->into_lot ? h->into_lot : (h->to ? h->to : "gone"),
           h->qty_text ? h->qty_text : "", h->unit ? h->unit : "", h->party,
           h->event, h->at_text);
    return 0;
}

int main(int argc, char **argv)
{
    const char *party = NULL;
    int backward = 0, rc;
    trace_ledger *l;

    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--backward") == 0)
            backward = 1;
        else
            party = argv[i];
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s LEDGER_DIR LOT [PARTY] [--backward]\n",
                argv[0]);
        return 1;
    }
    if ((rc = trace_ledger_open(&l, argv[1])) != TRACE_OK) {
        fprintf(stderr, "error: %s\n", trace_error_last());
        return trace_error_exit_code(rc);
    }
    rc = trace_lot(l, argv[2], party, backward ? TRACE_BACKWARD : TRACE_FORWARD,
                   print_hop, NULL);
    if (rc != TRACE_OK)
        fprintf(stderr, "error: %s\n", trace_error_last());
    trace_ledger_close(l);
    return trace_error_exit_code(rc);
}
