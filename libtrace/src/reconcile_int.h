/*
 * reconcile_int.h - what the rule engine (reconcile.c) and the rules
 * (rules.c) share: the compact event records of a run, the run itself,
 * the rule table and the way rules raise alerts.  Private to libtrace.
 */
#ifndef TRACE_RECONCILE_INT_H
#define TRACE_RECONCILE_INT_H

#include "internal.h"
#include "trace/query.h"
#include "trace/reconcile.h"

#define US_PER_HOUR 3600000000LL
#define US_PER_DAY  86400000000LL

/* ------------------------------------------------------------------ */
/* Records                                                              */

struct input {
    const char *lot, *substance;
    int64_t qty;
};

typedef struct rec {
    size_t pos; /* position in `at` order */
    uint64_t seq;
    int64_t at, recorded;
    uint32_t kind; /* body case */
    const char *type, *party, *id;
    const char *substance; /* catalog code */
    const char *lot, *site;
    int64_t qty;      /* base units; stocktake: counted */
    const char *unit; /* as recorded */
    /* type-specific */
    const char *to, *from, *ref, *permit, *tpermit, *carrier, *witness;
    const char *rx, *prescriber, *patient, *form, *reason;
    uint32_t days;
    int chronic, historic;
    const char *subject, *pkind, *pstatus; /* party events */
    char **licenses;
    size_t n_licenses, n_inputs;
    struct input *inputs;
} rec;

struct alert {
    const struct rule *rule;
    const char *severity;
    size_t pos; /* `at` position of the first evidence: output order */
    const char *party, *counterparty, *substance, *lot, *permit;
    trace_event_ref *events;
    size_t n_events;
    char *detail;
    char id[18];
};

#define MAX_PARAMS 8

struct cfg {
    int enabled;
    const char *severity;
    double p[MAX_PARAMS];
};

struct run {
    trace_ledger *l;
    MDB_txn *txn;
    arena *a;
    strmap *strings; /* interned strings */
    int64_t as_of;
    rec *recs;
    size_t n, cap;
    rec **by_at; /* recs in (at, seq) order */
    rec **by_id; /* recs in (party, id) order, built on first use */
    struct alert *alerts;
    size_t n_alerts, cap_alerts;
    sha256_stream *digest; /* for alert ids */
    struct cfg cfg[32];
};

typedef int (*rule_fn)(struct run *r, const struct cfg *c);

struct rule {
    const char *code, *severity, *summary;
    const char *pname[MAX_PARAMS];
    double pdef[MAX_PARAMS];
    rule_fn fn;
};

#define N_RULES 17
/* The rules, in output order (rules.c). */
extern const struct rule reconcile_rules[N_RULES];

/* The interned copy of s for this run (NULL for NULL). */
const char *intern(struct run *r, const char *s);

/* Raises an alert of `rule` with its evidence; the id derives from both. */
int raise_alert(struct run *r, const struct rule *rule, const rec *const *ev,
                size_t n_ev, const char *party, const char *counterparty,
                const char *substance, const char *lot, const char *permit,
                const char *fmt, ...) __attribute__((format(printf, 10, 11)));

/* In a rule function whose rule is `self`. */
#define RAISE(r, ...) raise_alert(r, self, __VA_ARGS__)

#endif
