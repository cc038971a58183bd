/* SPDX-License-Identifier: Apache-2.0 */
/*
 * query.h - what the ledger knows: book stock at any time, where a lot
 * came from and went, permits and their write-off, and event history.
 *
 * All answers come from indexes kept in the append transaction, never
 * from replaying the journal.  Results are passed to a callback one item
 * at a time; the strings in an item are borrowed and valid only during
 * the call.  A callback returning non-zero stops the query, which then
 * returns that value.
 *
 * Times are microseconds since the epoch (UTC); "at T" always includes
 * events whose `at` equals T.  TRACE_AT_NOW asks for the latest state.
 * Corrections are retroactive: a corrected event never counts, its
 * replacement counts from the replacement's own `at`.
 */
#ifndef TRACE_QUERY_H
#define TRACE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "trace/ledger.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRACE_AT_NOW INT64_MAX

/* ------------------------------------------------------------------ */
/* Balances                                                             */

typedef struct trace_holding {
    const char *party;
    const char *site;      /* "main" when events named no site */
    const char *substance; /* catalog code */
    const char *lot;
    int64_t qty;          /* base units (ug, uL, milli-units); may be < 0 */
    const char *unit;     /* unit the holding was first recorded in */
    const char *qty_text; /* exact decimal of qty in `unit` */
} trace_holding;

typedef int (*trace_holding_fn)(const trace_holding *h, void *ctx);

/*
 * Book stock of `party` per (site, substance, lot) as of `at_us`, in
 * substance, lot, site order; holdings at zero are skipped.  `substance`
 * (code or CAS number) filters, NULL for all.  TRACE_ENOTFOUND if the
 * party is not registered or the substance unknown.  TRACE_EVERIFY
 * ("quantity overflow: the stock of ...") if the change into a holding's
 * balance is not one event's: the stock index holds a sum that wrapped
 * (written before sums were checked, or altered).  Only the last change
 * before `at_us` is checked, to keep one seek per holding; reconcile
 * recomputes every stock from the events.
 */
int trace_balance(trace_ledger *l, const char *party, int64_t at_us,
                  const char *substance, trace_holding_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Lot tracing                                                          */

#define TRACE_FORWARD  1
#define TRACE_BACKWARD 2

typedef struct trace_hop {
    const char *lot;
    const char *substance;
    const char *from;     /* party (or country for imports); NULL: none */
    const char *to;       /* party (or country for exports); NULL: none */
    const char *kind;     /* event type: sale, receipt, produce, ... */
    const char *into_lot; /* produce: the new lot an input went into */
    int64_t qty;
    const char *unit;
    const char *qty_text;
    const char *party; /* recorder of the evidence event */
    const char *event; /* its id */
    int64_t at_us;
    const char *at_text; /* RFC 3339 as recorded */
    int depth;           /* hops from the starting point (for indenting) */
    /* the registered names of `from` and `to` (NULL: not a registered
     * party, e.g. a country) */
    const char *from_name, *to_name;
    /* receipt: the id of the seller's sale it cites (`ref`) */
    const char *ref;
    /* where goods leave the chain (NULL: they do not): dispensed (to
     * patients), consumed (used in production), destroyed, lost,
     * exported */
    const char *leaves;
    /* a backward trace without a party walks back from every current
     * holder of the lot in turn: the holder whose stock this hop
     * explains, its name and its book stock of the lot now (in
     * `held_unit`); all NULL otherwise */
    const char *holder, *holder_name, *held_text, *held_unit;
    /* a pickup (SPEC 12, carriers): the vehicle; NULL otherwise.  Custody
     * hops (kind pickup, handover, delivery) follow their sale, before
     * its receipts, `ref` naming the sale: seller -> carrier, carrier ->
     * next carrier, carrier -> buyer; they move no stock. */
    const char *vehicle;
} trace_hop;

typedef int (*trace_hop_fn)(const trace_hop *h, void *ctx);

/*
 * Forward: every movement of lot `lot` from its origin (or, with
 * `party`, from that party on) to the parties that received it, and on
 * through `produce` events that consumed it into new lots.  A sale is
 * followed by its custody hops (pickup, handover, delivery by carriers,
 * SPEC 12) and the buyer's receipts that cite it (kind "receipt", `ref`
 * the sale, at the sale's depth); dispensing, use in production,
 * destruction, loss and export end a branch (`leaves`).
 *
 * Backward: how the lot reached `party`, hop by hop back to its
 * producer or importer, and through a produced lot's inputs; a sale
 * into a holder is followed by the holder's receipts of it, and a
 * receipt citing no sale on record stands in for a missing sale.
 * Without `party`, the walk starts from every current holder of the lot
 * (a party whose book stock of it, over all its sites, is not zero
 * now), in party id order, each walk complete on its own (`holder`,
 * `held_text`); if nobody holds any, from every party that ever held
 * stock of it; a lot with no stock records at all starts from its
 * producers and importers.
 *
 * Hops come in `at` order per lot.  TRACE_ENOTFOUND if no event names
 * the lot.
 */
int trace_lot(trace_ledger *l, const char *lot, const char *party,
              int direction, trace_hop_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Permits                                                              */

typedef struct trace_permit_use {
    const char *party; /* recorder of the citing event */
    const char *event; /* its id */
    const char *role;  /* purchase, transport, import, export */
    int64_t at_us;
    const char *at_text;
    int64_t qty;
    const char *qty_text; /* in the permit's unit */
    int valid;            /* 1 if it wrote the permit off */
    const char *reason;   /* why not, when !valid */
} trace_permit_use;

typedef struct trace_permit_state {
    const char *permit, *kind, *holder, *counterparty, *substance, *uses,
        *issuer, *issue_event;
    const char *valid_from, *valid_until; /* as recorded */
    const char *unit;                     /* of the budget */
    int64_t budget, used, remaining;      /* base units */
    const char *budget_text, *used_text, *remaining_text;
    /* active, suspended, revoked, exhausted, expired or not_yet_valid */
    const char *status;
    size_t n_uses;
    const trace_permit_use *use; /* in `at` order */
    /* non-zero if the valid write-offs sum beyond what an int64 holds:
     * `used` is then INT64_MAX and `remaining` budget - INT64_MAX, both
     * bounds, their texts start with ">" and "<", and the status is
     * exhausted (unless suspended, revoked or out of its dates) */
    int used_overflow;
} trace_permit_state;

typedef int (*trace_permit_fn)(const trace_permit_state *p, void *ctx);

/*
 * The state of a permit as of `at_us`: its budget, what valid citations
 * wrote off (in `at` order), what remains, its status, and every citation
 * with whether it counted.  A citation counts if, at its `at`, the permit
 * is active and within its validity window, held by the right party
 * (the buyer for a purchase permit, the consignor for a transport permit,
 * the recorder for import and export), for the same substance and
 * counterparty, of a kind the movement and the substance's category
 * accept, and, if single-use, not used before.  TRACE_ENOTFOUND if no
 * such permit was issued.
 */
int trace_permit_show(trace_ledger *l, const char *permit, int64_t at_us,
                      trace_permit_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* History                                                              */

#define TRACE_HISTORY_OPTS_VERSION 1
typedef struct trace_history_opts {
    unsigned version;
    const char *party;      /* events recorded by this party ... */
    const char *lot;        /* ... or events naming this lot (one of the two) */
    int64_t from_us, to_us; /* `at` window, if has_from / has_to */
    int has_from, has_to;
    uint64_t after; /* page: only entries after this journal position */
    size_t limit;   /* page size; 0: no limit */
} trace_history_opts;
#define TRACE_HISTORY_OPTS_INIT                                                \
    {                                                                          \
        TRACE_HISTORY_OPTS_VERSION, NULL, NULL, 0, 0, 0, 0, 0, 0               \
    }

typedef struct trace_event_info {
    uint64_t seq; /* journal position (the paging cursor) */
    const char *type, *id, *party, *substance, *lot, *qty_text, *unit;
    int64_t at_us;
    const char *at_text;
    int corrected;          /* 1 if a later correction replaced or voided it */
    const char *json;       /* the event as SPEC section 3 JSON */
    const char *party_name; /* the recorder's registered name, or NULL */
    const char *corrected_by; /* when corrected: the correction in force */
    int voided;               /* when corrected: 1 if that one voids it */
    /* a correction: the id of the event it corrects, and 1 if it voids
     * it (no replacement).  Its substance, lot and quantity are its
     * replacement's (what stands now), or for a void the substance and
     * lot of the voided event and no quantity. */
    const char *corrects;
    int voids;
} trace_event_info;

typedef int (*trace_event_fn)(const trace_event_info *e, void *ctx);

/*
 * Events recorded by a party, or naming a lot, in journal order, in the
 * `at` window, after journal position `after`, at most `limit` of them
 * (pass the last seq seen as `after` for the next page).
 *
 * A lot's history keeps what corrections changed: an event that named
 * the lot and was voided or replaced is listed (corrected, with the
 * correction in force), and so is that correction, also when its
 * replacement names another lot.  (A correction superseded by a later
 * one of the same event is listed only in its party's history.)  This
 * reads every correction in force once: a lot's history costs time in
 * proportion to the corrections in the ledger.
 *
 * TRACE_ENOTFOUND for an unknown party or lot.
 */
int trace_history(trace_ledger *l, const trace_history_opts *opts,
                  trace_event_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Special register (专用账册)                                           */

typedef struct trace_register_line {
    const char *kind;  /* receipt, produce, import, dispense, destroy,
                          sale, consume, loss, export */
    const char *event; /* id of the event (recorded by the party) */
    const char *lot;
    const char *qty_text;     /* in the day's unit; negative for outflows */
    const char *counterparty; /* supplier, buyer or prescriber */
    const char *rx;           /* prescription id of a dispensing */
    const char *at_text;
    /* The running balance after this entry, over all the party's lots
     * and sites of the substance, in `at` order (ties in journal
     * order): the opening balance of the register plus every entry up
     * to this one. */
    int64_t balance;
    const char *balance_text;
    const char *handler; /* staff who handled it (经手人), or NULL */
    const char *checker; /* staff who checked it (复核人), or NULL */
    const char *spec;    /* 规格: the event's own, else its lot's (see
                            trace_register), or NULL */
} trace_register_line;

typedef struct trace_register_day {
    const char *date; /* YYYY-MM-DD in the ledger's zone */
    const char *party, *substance, *unit;
    int64_t opening, received, dispensed, destroyed, other_out, closing;
    const char *opening_text, *received_text, *dispensed_text, *destroyed_text,
        *other_out_text, *closing_text;
    size_t n_lines;
    const trace_register_line *lines; /* in `at` order */
    /* The same on every day of one register: */
    const char *name;     /* the substance's name in the catalog */
    const char *name_zh;  /* its Chinese name, or NULL */
    const char *category; /* "drug" (a narcotic or psychotropic drug:
                             CN-NARC, CN-PSY-1/2), "precursor" (CN-PC-1/2/3)
                             or NULL */
    const char *spec;     /* the distinct specifications (规格) of the lots
                             in the register, "; " between them, or NULL */
    /* Totals from the register's first day through this one (the last
     * day's are the period's; its opening is the first day's). */
    int64_t period_received, period_dispensed, period_destroyed,
        period_other_out;
    const char *period_received_text, *period_dispensed_text,
        *period_destroyed_text, *period_other_out_text;
} trace_register_day;

typedef int (*trace_register_fn)(const trace_register_day *d, void *ctx);

/*
 * The special register of `party` for one substance, one entry per day
 * from the day of `from_us` to the day of `to_us` (inclusive, in the
 * ledger's zone): opening balance, what came in (receipts with their
 * supplier and lot), what was dispensed (with prescription ids),
 * destroyed, and otherwise went out (sales or returns, use, losses),
 * and the closing balance, over all the party's sites and lots.  Every
 * day is passed to fn, those without entries too; each entry carries
 * the running balance after it, its handler and checker, and its
 * specification: the event's own `spec`, else the lot's (the `spec` of
 * the party's receipt or produce event of that lot, else of the lot's
 * produce event by whoever produced it).
 * TRACE_ENOTFOUND for an unknown party or substance; TRACE_EINVAL
 * ("quantity overflow: the register of PARTY for SUBSTANCE on DAY ...")
 * when a balance or total over several holdings does not fit an int64
 * (days before it have been passed to fn); TRACE_EVERIFY for a stock
 * index holding a wrapped sum (see trace_balance).
 */
int trace_register(trace_ledger *l, const char *party, const char *substance,
                   int64_t from_us, int64_t to_us, trace_register_fn fn,
                   void *ctx);

/* ------------------------------------------------------------------ */
/* Access: what a daemon checks before serving a request                */

typedef struct trace_party {
    char kind[32];   /* manufacturer, pharmacy, regulator ... */
    int suspended;   /* status suspended */
    int regulator;   /* an active regulator: the root one or registered by it */
    size_t n_keys;   /* registered public keys */
    unsigned scopes; /* a regulator's departments (TRACE_SCOPE_*); 0: all
                        (unscoped, the root regulator, or not a regulator) */
} trace_party;

/* Departments (SPEC 12): a regulator may carry scopes; a scoped
 * regulator reads, issues, witnesses and acknowledges only what is
 * within one of them.  Something is within a scope when its substance
 * has a control of that class (CN-PC: any CN-PC category, CN-NARC,
 * CN-PSY: any CN-PSY category) or its type is import or export (an
 * import_license / export_license permit counts as its type).  What
 * names no substance and is no import or export (a party's
 * registration) is within every scope; an alert is judged by its
 * substance and its evidence (trace_alert_in_scope). */
#define TRACE_SCOPE_PC     0x01u /* CN-PC: precursor chemicals (易制毒化学品) */
#define TRACE_SCOPE_NARC   0x02u /* CN-NARC: narcotic drugs (麻醉药品) */
#define TRACE_SCOPE_PSY    0x04u /* CN-PSY: psychotropic substances (精神药品) */
#define TRACE_SCOPE_IMPORT 0x08u /* import (进口) */
#define TRACE_SCOPE_EXPORT 0x10u /* export (出口) */

/* Enterprise credit (企业信用评价, SPEC 12): a party's score from 0 to
 * 100 over the twelve months before a time: 100 less, for each factor,
 * its count times its weight (alerts naming it by severity, open or
 * resolved; late reports; stocktake variances; losses).  Weights
 * default as listed by `tracectl credit` and may be set in the rules
 * file: {"credit": {"weights": {"open_high": 10, ...}}}. */
#define TRACE_CREDIT_FACTORS 11
typedef struct trace_credit_factor {
    const char *factor;   /* open_high, late_reports ... (static) */
    const char *label_zh; /* its Chinese label (static) */
    unsigned count;
    double weight, points; /* points = count * weight, taken off 100 */
} trace_credit_factor;
typedef struct trace_credit_score {
    char party[72];
    int64_t from_us, to_us; /* the window: after from, up to to */
    char from[40], to[40];  /* the same in RFC 3339, the ledger's zone */
    unsigned score;         /* 0 to 100 */
    char grade;             /* A (>= 90), B (>= 75), C (>= 60), D */
    size_t n_factors;
    trace_credit_factor factors[TRACE_CREDIT_FACTORS];
} trace_credit_score;
/* The credit of `party` as of at_us (TRACE_AT_NOW: now), with the rules
 * file's weights (rules_json may be NULL).  TRACE_ENOTFOUND for an
 * unknown party, TRACE_EINVAL for a bad rules file. */
int trace_credit(trace_ledger *l, const char *party, int64_t at_us,
                 const char *rules_json, size_t rules_len,
                 trace_credit_score *out);
/* The same counting only what a department of `scopes` (TRACE_SCOPE_*;
 * 0: everything) may read: the alerts within its scopes
 * (trace_alert_in_scope) and the losses of its substances.  A scoped
 * regulator asking for a credit gets this one. */
int trace_credit_within(trace_ledger *l, const char *party, int64_t at_us,
                        unsigned scopes, const char *rules_json,
                        size_t rules_len, trace_credit_score *out);

/* The mask of n scope names (CN-PC, CN-NARC, CN-PSY, import, export);
 * unknown names count for nothing. */
unsigned trace_scope_mask(const char *const *names, size_t n);
/* The scope names of a mask, comma-separated, into buf (cap bytes). */
void trace_scope_names(unsigned scopes, char *buf, size_t cap);
/* 1 if something of `type` (an event type, or a permit's kind; may be
 * NULL) about `substance` (catalog code, CAS number or name; NULL or ""
 * for none) is within `scopes` (0: everything is), else 0. */
int trace_in_scope(const trace_ledger *l, unsigned scopes, const char *type,
                   const char *substance);
/* 1 if the event (SPEC section 3 JSON, len bytes) is within `scopes`:
 * by its type (a permit's kind) and substance, or, for an event naming
 * another record, by that record: the permit of a permit_status, the
 * application of an application_decision, the alert of an alert_ack,
 * the corrected event or the replacement of a correction. */
int trace_event_in_scope(trace_ledger *l, unsigned scopes, const char *json,
                         size_t len);
/* 1 if the alert (SPEC section 4 JSON as stored, len bytes) is within
 * `scopes`: an alert about a substance when the substance is of one of
 * the control-class scopes, or, for the customs scopes (import, export),
 * when one of its evidence events is an import or export (or an
 * import/export licence); an alert about no substance (a party, a
 * parcel, the chain) when one of its evidence events is within scopes
 * (trace_event_in_scope).  An alert with neither (CHAIN_BROKEN, whose
 * evidence is a journal entry) is within no scope: only the root and
 * unscoped regulators see it.  0 for what is not an alert object,
 * unless unscoped. */
int trace_alert_in_scope(trace_ledger *l, unsigned scopes, const char *json,
                         size_t len);

/* The party that registered the key `key_id` (into party, cap bytes) and
 * its raw public key.  TRACE_ENOTFOUND if no party registered it. */
int trace_key_owner(trace_ledger *l, const uint8_t key_id[TRACE_KEY_ID_LEN],
                    char *party, size_t cap, uint8_t pub[TRACE_PUBKEY_LEN]);

/* What the ledger knows of a registered party (TRACE_ENOTFOUND if none). */
int trace_party_info(trace_ledger *l, const char *party, trace_party *out);

/* A registered party's name (as registered, cut to cap - 1 bytes at a
 * character boundary); TRACE_ENOTFOUND if none. */
int trace_party_name(trace_ledger *l, const char *party, char *buf, size_t cap);

/* 1 if `party` recorded or received an event naming `lot`, else 0. */
int trace_lot_held(trace_ledger *l, const char *lot, const char *party);

/* ------------------------------------------------------------------ */
/* Checks at entry                                                      */

typedef struct trace_finding {
    const char *code;    /* FUTURE_TIME, NEGATIVE_STOCK, PERMIT_MISSING,
                            PERMIT_INVALID, PERMIT_EXCEEDED,
                            RECEIPT_EXCEEDS_SALE, LICENCE_SCOPE,
                            RX_REUSE */
    const char *message; /* for people, naming the event */
} trace_finding;

typedef int (*trace_finding_fn)(const trace_finding *f, void *ctx);

#define TRACE_CHECK_SKEW_US (300LL * 1000000) /* default allowed skew */

/*
 * The checks at entry on one event (a SPEC 3 JSON line) that is not yet
 * recorded, against the ledger as it is now: `at` beyond `skew_us` in
 * the future, stock going negative, a cited permit missing, invalid or
 * exceeded, the receipts of a sale exceeding it, a prescription dispensed
 * before.  Each finding goes to
 * fn (a non-zero return stops and is returned).  Nothing is written.
 * TRACE_OK whether or not there were findings; TRACE_EINVAL for a line
 * that does not parse (as trace_batch_add_json says).
 */
int trace_check_json(trace_ledger *l, const char *line, size_t len,
                     int64_t skew_us, trace_finding_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Registries                                                           */

typedef struct trace_party_row {
    const char *party, *name, *kind, *region;
    size_t n_licenses;
    const char *const *licenses;
    const char *status;        /* active or suspended */
    size_t n_keys;             /* registered public keys in force */
    const char *registered_by; /* the regulator that registered it */
    const char *gln;           /* GS1 GLN (13 digits), or NULL */
    size_t n_sites;            /* its sites with an SGLN (SPEC 11) */
    const struct trace_party_site {
        const char *site, *sgln;
    } * sites;
} trace_party_row;

typedef int (*trace_party_row_fn)(const trace_party_row *p, void *ctx);

/* The registered parties, by id; `kind` filters (NULL: all). */
int trace_parties(trace_ledger *l, const char *kind, trace_party_row_fn fn,
                  void *ctx);

/* A registered product (SPEC 11); strings borrowed for the call. */
typedef struct trace_product_row {
    const char *gtin;      /* 14 digits */
    const char *substance; /* catalog code */
    const char *content;   /* per dosage unit or item, in content_unit */
    const char *content_unit;
    uint32_t units_per_pack;
    const char *name;
    const char *form;          /* or NULL */
    const char *registered_by; /* recorder of the product event in force */
    uint64_t seq;              /* its journal entry */
} trace_product_row;

typedef int (*trace_product_row_fn)(const trace_product_row *p, void *ctx);

/* The registered products, by GTIN; `substance` (code, CAS number or
 * name) filters, NULL for all.  A non-zero return of fn stops the walk
 * and is returned.  TRACE_OK, or TRACE_EVERIFY for a damaged record. */
int trace_products(trace_ledger *l, const char *substance,
                   trace_product_row_fn fn, void *ctx);

/* A permit application (SPEC 12, 网上审批) and where it stands; strings
 * borrowed for the call. */
typedef struct trace_application_row {
    const char *party;        /* the applicant */
    const char *id;           /* its permit_application event */
    const char *at;           /* when it was made, as recorded */
    const char *kind;         /* the permit kind asked for */
    const char *substance;    /* catalog code */
    const char *qty, *unit;   /* the budget asked for */
    const char *counterparty; /* or NULL */
    const char *purpose, *valid_from, *valid_until, *uses;
    const char *state;      /* "pending", "approved" or "rejected" */
    const char *permit;     /* approved: the permit's id; else NULL */
    const char *decided_by; /* the regulator that answered, or NULL */
    const char *decision;   /* the answer's event id, or NULL */
    const char *decided_at; /* its `at` as recorded, or NULL */
    const char *reason;     /* rejected: why; else NULL */
    uint32_t days; /* working days (Monday to Friday in the ledger's zone)
                      after the day it was made, up to the day of its
                      answer or, pending, of `now_us` */
} trace_application_row;

typedef int (*trace_application_fn)(const trace_application_row *a, void *ctx);

/* The permit applications in force (a voided one is not listed), by
 * applicant and id; `party` filters by applicant (NULL: all).  now_us
 * (TRACE_AT_NOW: the clock) counts the days of a pending application.
 * A non-zero return of fn stops the walk and is returned.  TRACE_OK, or
 * TRACE_EVERIFY for a damaged record.  Read from the apps index, not
 * the journal.  Thread-safe like the other queries. */
int trace_applications(trace_ledger *l, const char *party, int64_t now_us,
                       trace_application_fn fn, void *ctx);

/* The ids of the permits issued, in id order, one per call (borrowed for
 * the call); a non-zero return stops the walk and is returned. */
int trace_permit_ids(trace_ledger *l, int (*fn)(const char *permit, void *ctx),
                     void *ctx);

#ifdef __cplusplus
}
#endif

#endif
