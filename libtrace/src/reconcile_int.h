/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_int.h - what the rule engine (reconcile.c) and the rules
 * (rules*.c) share: the compact event records of a run, the run itself,
 * the rule table and the way rules raise alerts.  Private to libtrace.
 */
#ifndef TRACE_RECONCILE_INT_H
#define TRACE_RECONCILE_INT_H

#include <pthread.h>

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

/* One event of a run: 160 bytes, as a full run holds every event of the
 * ledger at once.  The fields of one event type share a union: a rule
 * reads them only after checking `kind` (sale: to, carrier, tpermit;
 * receipt: from, ref; pickup, handover, delivery: from and ref the sale
 * they cite, to the next carrier or the buyer; transfer: from and to, the
 * sites; destroy: witness; loss: reason; dispense: rx, prescriber, patient,
 * form; produce: inputs; party: subject, pkind, pstatus, licenses;
 * application_decision and permit: app_party, app_id, the application
 * they answer).  The
 * fields outside it apply to every type (NULL or 0 where they do not). */
typedef struct rec {
    uint64_t seq;
    int64_t at, recorded;
    const char *party, *id;
    const char *substance; /* catalog code */
    const subst_info *sub; /* its catalog entry, or NULL */
    const char *lot, *site;
    int64_t qty;        /* base units; stocktake: counted */
    const char *unit;   /* as recorded */
    const char *permit; /* sale, import, export, permit, permit_status */
    uint32_t pos;       /* position in `at` order */
    uint32_t days;      /* dispense: days_supply */
    uint32_t n_inputs, n_licenses;
    uint8_t kind;  /* body case (< 64) */
    uint8_t cls;   /* 1 + its control class in the ledger's regime, or 0 */
    uint8_t rxcls; /* 1: 麻/精一, 2: 精二, 0: neither */
    uint8_t chronic, historic;
    union {
        struct {
            const char *to, *from, *ref, *carrier, *tpermit;
        };
        struct {
            const char *rx, *prescriber, *patient, *form;
        };
        struct {
            const char *witness;
        };
        struct {
            const char *reason;
        };
        struct {
            struct input *inputs;
        };
        struct {
            const char *subject, *pkind, *pstatus;
            char **licenses;
            uint8_t pscopes; /* a regulator's TRACE_SCOPE_* (0: all) */
        };
        struct {
            const char *waybill, *outlet;
            uint8_t pchecks; /* PCHECK_* passed */
        };
        struct { /* application_decision, a permit answering one */
            const char *app_party, *app_id;
        };
    };
} rec;
#define PCHECK_SENDER  1
#define PCHECK_OPENED  2
#define PCHECK_SCANNED 4

/* The event type's name ("sale"). */
const char *rec_type(const rec *x);

/* The regime class of the event's substance (never NULL: the regime's
 * "other" entry for a substance without one). */
static inline const regime_class *rec_class(const trace_ledger *l, const rec *x)
{
    return x->cls ? &l->regime->classes[x->cls - 1] : &l->regime->other;
}

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

/* Where the common fields sit in each body message: looked up by name
 * once per body type rather than once per event. */
struct body_layout {
    int known;
    int qty, substance, lot, site; /* offsets, or -1 */
};

/* The scopes of an incremental run (reconcile_inc.c). */
enum {
    SCOPE_LOT,
    SCOPE_PERMIT,
    SCOPE_ORDERS,
    SCOPE_PATIENT,
    SCOPE_RX,
    SCOPE_SUBJECT, /* events naming a party as buyer, seller or witness */
    SCOPE_CITED,   /* receipts citing an event (party, id) */
    SCOPE_APP,     /* a permit application (party, id) and its answers */
    N_SCOPES
};

/* Full verification for CHAIN_BROKEN, run on a thread of its own while
 * the events are loaded and the other rules run. */
struct verify_job {
    trace_ledger *l;
    pthread_t thread;
    int started;
    int rc;
    trace_verify_result res;
    char err[256];  /* the thread's error message when rc is not OK */
    int resume;     /* incremental: from where the previous run stopped */
    int keep;       /* incremental: make a state for the next run */
    uint8_t *state; /* incremental: what the next run resumes from */
    size_t state_len;
};

/* Runs the job's verification (as a thread's function, or inline). */
void *verify_job_run(void *job);

struct run {
    trace_ledger *l;
    MDB_txn *txn;
    arena *a;
    arena *a2;       /* strings of the records the second loader made */
    arena *a3;       /* alerts raised by the rules' second thread */
    strmap *strings; /* interned strings */
    strmap *subs;    /* substance as recorded -> struct subst_facts */
    int64_t as_of;
    rec *recs;
    size_t n, cap;
    rec **by_at;     /* recs in (at, seq) order */
    uint32_t *by_id; /* (party, id) hash index: 1 + index into recs */
    size_t id_cap;
    /* custody events by the sale they cite ("party\x01id" -> struct
     * chain), each chain linked in `at` order through cnext (1 + by_at
     * index of the next, 0: the last); built on first use (rules.c) */
    strmap *custody;
    uint32_t *cnext;
    int custody_built;
    struct alert *alerts;
    size_t n_alerts, cap_alerts;
    sha256_stream *digest; /* for alert ids */
    struct cfg cfg[32];
    struct body_layout layouts[64]; /* by body case */
    /* rec_add's last interned string of each field, and the facts of the
     * last substance: consecutive events of a journal mostly name the
     * same party, lot and substance */
    const char *last[16];
    const void *last_facts;
    struct verify_job verify;

    /* incremental runs (reconcile_inc.c) */
    int incremental;         /* asked for: keep the state */
    int partial;             /* only the new events and their scopes loaded */
    uint64_t since;          /* last entry of the previous run */
    uint64_t plan_state;     /* 1 + the state's position when read, 0: none */
    uint64_t last_seq;       /* last entry of this run's snapshot */
    size_t n_new;            /* events of entries after `since` */
    const void *prev_reopen; /* the previous run's `reopen` (in r->txn) */
    size_t prev_reopen_len;
    arena *tmp;               /* decoding one entry */
    strmap *loaded;           /* entries loaded, by seq */
    strmap *scopes[N_SCOPES]; /* keys whose scope is loaded whole */
    strmap *reopen; /* what the next run loads again (inc_keep_open) */
};

typedef int (*rule_fn)(struct run *r, const struct cfg *c);

struct rule {
    const char *code, *severity, *summary;
    const char *pname[MAX_PARAMS];
    double pdef[MAX_PARAMS];
    rule_fn fn;
};

#define N_RULES 22
/* The rules, in output order (rules.c). */
extern const struct rule reconcile_rules[N_RULES];

/* A journal of at least this many entries is loaded by two threads, a
 * half each (reconcile_load.c; tests change it). */
extern size_t reconcile_split_min;
extern size_t reconcile_split_runs; /* loads that split (for tests) */

/* What the rules ask of a substance, worked out once per name
 * (reconcile_load.c; r->subs holds them by the name recorded). */
struct subst_facts {
    const char *code; /* interned catalog code (or the name as recorded) */
    const subst_info *sub;
    uint8_t cls, rxcls;
};

/* Adds the record of an event in force at `seq` (reconcile_load.c). */
int rec_add(struct run *r, const Trace__V1__Event *ev,
            const Trace__V1__Entry *e, uint64_t seq);
/* Reads the journal once into r->recs: every event in force, corrections
 * applied (reconcile_load.c). */
int load_events(struct run *r);
/* r->by_at: the records in (at, seq) order (reconcile_load.c). */
int sort_by_at(struct run *r);
/* qsort's order of records by journal position. */
int cmp_seq(const void *a, const void *b);

/* Incremental runs (reconcile_inc.c): inc_plan() decides whether the run
 * can be partial, inc_load() loads it, inc_store() writes the state in
 * the transaction that stores the alerts. */
int inc_plan(struct run *r);
int inc_load(struct run *r);
int inc_store(struct run *r, MDB_txn *txn);
/* Whether a rule may judge the key (a, or a and b) of `scope`: always in
 * a full run; in a partial run only if the scope was loaded whole. */
int scope_complete(const struct run *r, int scope, const char *a,
                   const char *b);
/* Remembers what the next incremental run loads again: 'L' the lot of a
 * sale still inside its receipt window, 'P' a permit with an event dated
 * after the as-of time, 'A' an application (party \x01 id) whose answer
 * is not yet due. */
int inc_keep_open(struct run *r, char tag, const char *key);

/* The interned copy of s for this run (NULL for NULL). */
const char *intern(struct run *r, const char *s);

/* Raises an alert of `rule` with its evidence; the id derives from both. */
int raise_alert(struct run *r, const struct rule *rule, const rec *const *ev,
                size_t n_ev, const char *party, const char *counterparty,
                const char *substance, const char *lot, const char *permit,
                const char *fmt, ...) __attribute__((format(printf, 10, 11)));

/* An alert's id: "A" and 16 hex digits of SHA-256 over its rule code and
 * evidence (each event's party and id), its permit and, without
 * evidence, its party; the same alert gets the same id in every run
 * (verify --deep recomputes it, deep.c). */
void alert_id_make(char id[18], sha256_stream *s, const char *rule,
                   const trace_event_ref *ev, size_t n_ev, const char *permit,
                   const char *party);

/* The keys an event in force at rec->seq files in rcidx (the fields
 * index_rec reads: kind, seq and the kind's names), put straight into
 * `dbi` of `txn` (reconcile_inc.c; verify --deep re-derives rcidx). */
int inc_index_rec(MDB_txn *txn, MDB_dbi dbi, const rec *e);

/* In a rule function whose rule is `self`. */
#define RAISE(r, ...) raise_alert(r, self, __VA_ARGS__)

/* What loading needs of a journal entry, read from its wire format
 * (reconcile.c): 1 when every required field of the Entry is there with
 * its wire type and nothing runs past the end, else 0. */
struct entry_peek {
    int64_t recorded_us;
    int historic;
    const uint8_t *event;
    size_t event_len;
};
int entry_peek(const uint8_t *p, size_t n, struct entry_peek *out);

#endif
