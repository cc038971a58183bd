/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile.h - reconciliation: the rules of SPEC section 4 run over the
 * ledger, raising alerts that are stored in the ledger folder.
 *
 * Each rule is one line of a table (code, default severity, thresholds,
 * function); thresholds and severities can be overridden by a rules file:
 *
 *   {"SHIPMENT_UNCONFIRMED": {"window_hours": 48, "severity": "high"},
 *    "UNUSUAL_ORDER": {"factor": 4}, "LATE_REPORT": {"enabled": false}}
 *
 * (`tracectl reconcile --help` lists every rule and its parameters.)
 *
 * Quantities are summed with checked arithmetic: a lot whose book stock
 * goes beyond an int64 of base units (held at several sites, or a ledger
 * written before sums were checked) gets one NEGATIVE_STOCK alert whose
 * detail says "quantity overflow" and is not judged further; permit
 * write-offs beyond an int64 are PERMIT_EXCEEDED.  No run wraps a sum.
 *
 * An alert's id is derived from its rule and evidence, so re-running over
 * the same ledger finds the same alerts with the same ids; each is stored
 * once, and its status (open, acknowledged, resolved) follows the
 * `alert_ack` events recorded for it.
 */
#ifndef TRACE_RECONCILE_H
#define TRACE_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include "trace/ledger.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trace_event_ref {
    const char *party;
    const char *id;
} trace_event_ref;

typedef struct trace_alert {
    const char *id;       /* stable: "A" + 16 hex digits */
    const char *rule;     /* e.g. "PERMIT_MISSING" */
    const char *severity; /* info, low, medium, high, critical */
    const char *party, *counterparty, *substance, *lot, *permit; /* or NULL */
    size_t n_events;
    const trace_event_ref *events; /* the evidence */
    const char *detail;
    const char *status; /* open, acknowledged, resolved */
    int is_new;         /* first found by this run */
    const char *json;   /* the alert as one SPEC section 4 JSON object */
    uint64_t position;  /* order in which stored alerts were found (1, 2,
                           ...; 0 for a dry run's alerts) */
    /* the latest acknowledgement (trace_alerts), or NULL: who, when (RFC
     * 3339 in the ledger's zone) and the note; by and note are NULL for
     * acknowledgements stored before they were kept */
    const char *ack_by, *ack_at, *ack_note;
} trace_alert;

typedef int (*trace_alert_fn)(const trace_alert *a, void *ctx);

#define TRACE_RECONCILE_OPTS_VERSION 3
typedef struct trace_reconcile_opts {
    unsigned version;
    int64_t as_of_us;       /* TRACE_AT_NOW (query.h) for now */
    const char *rules_json; /* overrides, or NULL */
    size_t rules_len;
    int dry_run; /* non-zero: do not store the alerts */
    /* version 2: non-zero for an incremental run - only the entries
     * appended since the previous incremental run, and what the rules need
     * to judge what they touch (their lots, permits, buyers' orders,
     * patients, prescriptions, the parties a registration changes, what
     * was still pending at the previous run) are read; the alerts are
     * those a full run would find about them.  The first such run, or one
     * after the rules changed, a `correction` was appended or an id is too
     * long to index, reads everything.
     * CHAIN_BROKEN then verifies from where the previous run stopped. */
    int incremental;
    /* version 2, with `incremental`: read and verify everything this time
     * (a periodic check of the whole journal) and keep the state for the
     * next incremental run */
    int full;
    /* version 3: who runs the write transaction that stores the alerts
     * (and an incremental run's state).  NULL: the calling thread.
     * Otherwise store_via is called once (never with dry_run), after the
     * run's own read transaction has ended, and must call store(arg)
     * exactly once, on any thread (a daemon's single writer, say), and
     * return what it returned; trace_reconcile waits for it, and its
     * alerts' statuses are read after it.  A full map is grown by
     * `store` (the thread running it must hold no transaction). */
    int (*store_via)(int (*store)(void *arg), void *arg, void *store_ctx);
    void *store_ctx;
} trace_reconcile_opts;
#define TRACE_RECONCILE_OPTS_INIT                                              \
    {                                                                          \
        TRACE_RECONCILE_OPTS_VERSION, INT64_MAX, NULL, 0, 0, 0, 0, NULL, NULL  \
    }

typedef struct trace_reconcile_summary {
    uint64_t events; /* events examined */
    uint64_t alerts; /* alerts found */
    uint64_t new_alerts;
    double seconds;
    int partial;         /* an incremental run that read only a part */
    uint64_t new_events; /* events appended since the previous run (all
                            events for a full run) */
} trace_reconcile_summary;

/*
 * Runs every enabled rule over the ledger as of `as_of_us`, calls
 * `fn` for each alert found (in rule order, then evidence order), and
 * stores the new ones.  TRACE_EINVAL for a bad rules file.
 */
int trace_reconcile(trace_ledger *l, const trace_reconcile_opts *opts,
                    trace_alert_fn fn, void *ctx,
                    trace_reconcile_summary *summary);

#define TRACE_ALERT_FILTER_VERSION 1
typedef struct trace_alert_filter {
    unsigned version;
    const char *status; /* "open", ... or NULL */
    const char *rule;
    const char *party; /* alerts naming it as party or counterparty */
    uint64_t after;    /* only alerts stored after this position */
} trace_alert_filter;
#define TRACE_ALERT_FILTER_INIT                                                \
    {                                                                          \
        TRACE_ALERT_FILTER_VERSION, NULL, NULL, NULL, 0                        \
    }

/* Stored alerts matching the filter, in the order they were first found. */
int trace_alerts(trace_ledger *l, const trace_alert_filter *filter,
                 trace_alert_fn fn, void *ctx);

/* Describes the rules and their parameters (for help), one per call. */
typedef int (*trace_rule_info_fn)(const char *code, const char *severity,
                                  const char *params, const char *summary,
                                  void *ctx);
int trace_rules_describe(trace_rule_info_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
