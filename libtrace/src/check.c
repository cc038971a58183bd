/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.c - checks at entry: what one event, not yet recorded, would do
 * to the ledger as it is now (SPEC 3, "Checks at entry").
 *
 * A ledger records facts, so these checks never make an event
 * unrecordable: `record` refuses on a finding unless the recorder states
 * an override (stored in the event), `check` only reports.  They read
 * the indexes the queries read (balances, permits, a lot's history) and
 * write nothing.
 *
 *   FUTURE_TIME           `at` lies beyond the allowed skew ahead of now
 *   NEGATIVE_STOCK        an outgoing movement (sale, consume, dispense,
 *                         export, destroy, loss, a produce's inputs) would
 *                         take the party's book stock of the lot, over all
 *                         sites, below zero as of `at`
 *   PERMIT_MISSING        the cited permit was never issued
 *   PERMIT_INVALID        the cited permit is not active at `at`, held by
 *                         another party, names another counterparty or
 *                         substance, is of the wrong kind, or is single-use
 *                         and used
 *   PERMIT_EXCEEDED       the movement would write off more than remains
 *   RECEIPT_EXCEEDS_SALE  the receipts of one sale, this one included,
 *                         would total more than the sale shipped
 *   LICENCE_SCOPE         a party registered with a scope its kind may not
 *                         hold (a retail pharmacy with narcotics or class 1
 *                         psychotropics), or a purchase or import permit
 *                         issued to a party without the licence scope the
 *                         regime asks of the substance's class
 *
 * Which permit kinds fit which movement, and which licence a class asks,
 * is the ledger's regime table (regime.c), as for the rules.
 *   RX_REUSE              a dispensing whose prescription id (`rx.id`, as
 *                         the reconciliation rule RX_REUSE keys it: the id
 *                         alone, whoever prescribed, any substance) was
 *                         dispensed already by anyone; names the earliest
 *                         such dispensing in force (a voided one does not
 *                         count; a replaced one counts as replaced).  Read
 *                         from the rx index (state.c), or from a scan of
 *                         the journal in a ledger opened while another
 *                         process wrote it before the index was built.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "writer.h"

struct checker {
    trace_ledger *l;
    const Trace__V1__Event *ev;
    trace_finding_fn fn;
    void *ctx;
    int rc; /* a callback's stop */
};

static int finding(struct checker *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int finding(struct checker *c, const char *code, const char *fmt, ...)
{
    char msg[512];
    trace_finding f;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    f.code = code;
    f.message = msg;
    if (!c->rc)
        c->rc = c->fn(&f, c->ctx);
    return c->rc;
}

/* A quantity as text in `unit`. */
static void amount_text(char *buf, size_t cap, int64_t base, const char *unit)
{
    int64_t factor = 1;

    unit_lookup(unit, NULL, &factor);
    if (qty_format(buf, cap, base, factor) != TRACE_OK)
        snprintf(buf, cap, "%lld base units", (long long)base);
}

/* Book stock of one lot, over all sites: one seek per site, whatever
 * else the party holds. */
static int check_stock(struct checker *c, const char *substance,
                       const char *lot, const Trace__V1__Quantity *q)
{
    const Trace__V1__Event *ev = c->ev;
    char have[64], after[64];
    int64_t left, sum;
    MDB_txn *txn;
    int rc;

    if ((rc = ledger_txn_begin(c->l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = lot_stock(txn, c->l, ev->party, canonical_substance(c->l, substance),
                   lot, ev->at->us, &sum);
    ledger_txn_abort(c->l, txn);
    if (rc == TRACE_EINVAL)
        return TRACE_OK; /* beyond an int64: reconciliation's to judge */
    if (rc != TRACE_OK)
        return rc;
    if (__builtin_sub_overflow(sum, q->amount, &left) || left >= 0)
        return TRACE_OK;
    amount_text(have, sizeof(have), sum, q->unit);
    amount_text(after, sizeof(after), left, q->unit);
    finding(c, "NEGATIVE_STOCK",
            "%s would take %s's book stock of lot %s (%s) to %s %s (it holds "
            "%s %s)",
            ev->id, ev->party, lot, substance, after, q->unit, have, q->unit);
    return TRACE_OK;
}

/* What the permit check needs of the cited permit. */
struct permit_seen {
    int found;
    char status[32], holder[72], counterparty[72], kind[32], uses[16];
    char substance[128], unit[16];
    int64_t remaining;
    size_t used;
};

static int keep_permit(const trace_permit_state *p, void *ctx)
{
    struct permit_seen *s = ctx;

    s->found = 1;
    snprintf(s->status, sizeof(s->status), "%s", p->status);
    snprintf(s->holder, sizeof(s->holder), "%s", p->holder);
    snprintf(s->counterparty, sizeof(s->counterparty), "%s",
             p->counterparty ? p->counterparty : "");
    snprintf(s->kind, sizeof(s->kind), "%s", p->kind);
    snprintf(s->uses, sizeof(s->uses), "%s", p->uses);
    snprintf(s->substance, sizeof(s->substance), "%s", p->substance);
    snprintf(s->unit, sizeof(s->unit), "%s", p->unit);
    s->remaining = p->remaining;
    s->used = 0;
    for (size_t i = 0; i < p->n_uses; i++)
        s->used += p->use[i].valid != 0;
    return 0;
}

/* A cited permit: `holder` must hold it, `counterparty` (or NULL) be the
 * one it names, and its kind be one the regime table accepts for the
 * movement `move` (MOVE_*) of the substance's class. */
static int check_permit(struct checker *c, const char *permit,
                        const char *holder, const char *counterparty, int move,
                        const char *substance, const Trace__V1__Quantity *q)
{
    const Trace__V1__Event *ev = c->ev;
    struct permit_seen s;
    const subst_info *a, *b;
    char want[64], have[64];
    int rc, kind_ok = 0;

    memset(&s, 0, sizeof(s));
    rc = trace_permit_show(c->l, permit, ev->at->us, keep_permit, &s);
    if (rc == TRACE_ENOTFOUND || (rc == TRACE_OK && !s.found)) {
        finding(c, "PERMIT_MISSING",
                "%s cites permit %s, which was never issued", ev->id, permit);
        return TRACE_OK;
    }
    if (rc != TRACE_OK)
        return rc;
    a = catalog_find(c->l->cat, substance);
    b = catalog_find(c->l->cat, s.substance);
    /* the kinds the regime accepts for the movement (regime.c) */
    kind_ok = regime_accepts(regime_class_of(c->l->regime, a), move, s.kind);
    if (strcmp(s.status, "active") != 0)
        finding(c, "PERMIT_INVALID", "permit %s is %s at %s's time", permit,
                s.status, ev->id);
    else if (strcmp(s.holder, holder) != 0)
        finding(c, "PERMIT_INVALID", "permit %s is held by %s, not %s", permit,
                s.holder, holder);
    else if (counterparty && s.counterparty[0] &&
             strcmp(s.counterparty, counterparty) != 0)
        finding(c, "PERMIT_INVALID", "permit %s names %s, not %s", permit,
                s.counterparty, counterparty);
    else if (!a || a != b)
        finding(c, "PERMIT_INVALID", "permit %s is for %s, not %s", permit,
                s.substance, substance);
    else if (!kind_ok)
        finding(c, "PERMIT_INVALID",
                "permit %s is a %s, which does not cover "
                "this movement",
                permit, s.kind);
    else if (strcmp(s.uses, "single") == 0 && s.used > 0)
        finding(c, "PERMIT_INVALID", "single-use permit %s was used before",
                permit);
    else if (q->amount > s.remaining) {
        amount_text(want, sizeof(want), q->amount, s.unit);
        amount_text(have, sizeof(have), s.remaining > 0 ? s.remaining : 0,
                    s.unit);
        finding(c, "PERMIT_EXCEEDED",
                "%s would write off %s %s of permit %s, which has %s %s left",
                ev->id, want, s.unit, permit, have, s.unit);
    }
    return TRACE_OK;
}

/* The receipts of one sale would exceed what it shipped. */
static int check_receipt(struct checker *c, const char *buyer,
                         const Trace__V1__ReceiptBody *b)
{
    sale_receipts_sum s;
    char shipped[64], total[64];
    int64_t all;
    int rc;

    rc = sale_receipts(c->l, b->from, b->ref, b->lot, buyer, &s);
    if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
        return rc;
    if (!s.found || s.bad ||
        __builtin_add_overflow(s.received, b->qty->amount, &all) ||
        all <= s.shipped)
        return TRACE_OK; /* an unmatched receipt is reconciliation's */
    amount_text(shipped, sizeof(shipped), s.shipped, s.unit);
    amount_text(total, sizeof(total), all, s.unit);
    finding(c, "RECEIPT_EXCEEDS_SALE",
            "the receipts of %s's sale %s would total %s %s, more than the "
            "%s %s it shipped",
            b->from, b->ref, total, s.unit, shipped, s.unit);
    return TRACE_OK;
}

/* The earliest other dispensing of one prescription. */
struct rx_seen {
    const Trace__V1__Event *ev; /* the one being checked */
    int found;
    int64_t at;
    uint64_t seq;
    char party[72], id[TRACE_MAX_ID + 1], date[16];
};

static int keep_rx(void *ctx, uint64_t seq, const Trace__V1__Event *d,
                   const char *recorded)
{
    struct rx_seen *s = ctx;
    char when[64];

    if (strcmp(d->party, s->ev->party) == 0 &&
        (strcmp(d->id, s->ev->id) == 0 || strcmp(recorded, s->ev->id) == 0))
        return 0; /* itself, recorded before (an idempotent re-submission) */
    if (s->found && (d->at->us > s->at || (d->at->us == s->at && seq > s->seq)))
        return 0;
    s->found = 1;
    s->at = d->at->us;
    s->seq = seq;
    snprintf(s->party, sizeof(s->party), "%s", d->party);
    snprintf(s->id, sizeof(s->id), "%s", d->id);
    if (time_format(when, sizeof(when), d->at) != TRACE_OK)
        snprintf(when, sizeof(when), "?");
    snprintf(s->date, sizeof(s->date), "%.10s", when);
    return 0;
}

static int check_rx(struct checker *c, const Trace__V1__DispenseBody *b)
{
    struct rx_seen s;
    MDB_txn *txn;
    int rc;

    if (!b->rx || !b->rx->id)
        return TRACE_OK;
    memset(&s, 0, sizeof(s));
    s.ev = c->ev;
    if ((rc = ledger_txn_begin(c->l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = rx_dispensings(txn, c->l, b->rx->id, keep_rx, &s);
    ledger_txn_abort(c->l, txn);
    if (rc != TRACE_OK || !s.found)
        return rc;
    finding(c, "RX_REUSE",
            "prescription %s was dispensed already: by %s as %s on %s",
            b->rx->id, s.party, s.id, s.date);
    return TRACE_OK;
}

/* Scopes a kind of party may not hold (China: retail pharmacies sell
 * neither narcotic nor class 1 psychotropic drugs). */
static const struct {
    const char *kind, *scope;
} forbidden_scopes[] = {
    {"pharmacy", "CN-NARC"},
    {"pharmacy", "CN-PSY-1"},
};

static int check_party(struct checker *c, const Trace__V1__PartyBody *b)
{
    for (size_t i = 0; i < b->n_licenses; i++)
        for (size_t k = 0;
             k < sizeof(forbidden_scopes) / sizeof(*forbidden_scopes); k++)
            if (strcmp(b->kind, forbidden_scopes[k].kind) == 0 &&
                strcmp(b->licenses[i], forbidden_scopes[k].scope) == 0)
                finding(c, "LICENCE_SCOPE",
                        "%s is registered as a %s with the scope %s, which a "
                        "%s may not hold",
                        b->subject, b->kind, b->licenses[i], b->kind);
    return TRACE_OK;
}

static int lists_kind(const regime_class *c, int move, const char *kind)
{
    return c->move[move].listed && regime_accepts(c, move, kind);
}

/* A purchase or import permit goes to a holder with the licence scope the
 * regime asks of the substance's class (CN: its category's scope). */
static int check_permit_issue(struct checker *c, const Trace__V1__PermitBody *b)
{
    const subst_info *s = catalog_find(c->l->cat, b->substance);
    Trace__V1__PartyState *st;
    MDB_txn *txn;
    arena *a;
    const regime_class *cls = regime_class_of(c->l->regime, s);
    int rc, has = 0;

    /* a kind of permit for buying or importing (the regime table lists it
     * for a sale or an import of the class or of uncontrolled
     * substances), for a class whose buyers need a licence */
    if (!s || !cls->licence ||
        !(lists_kind(cls, MOVE_SALE, b->kind) ||
          lists_kind(cls, MOVE_IMPORT, b->kind) ||
          lists_kind(&c->l->regime->other, MOVE_SALE, b->kind) ||
          lists_kind(&c->l->regime->other, MOVE_IMPORT, b->kind)))
        return TRACE_OK;
    if (!(a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(c->l, MDB_RDONLY, &txn))) {
        arena_free(a);
        return trace_fail_mdb(rc, "begin");
    }
    rc = party_state_get(txn, c->l, a, b->holder, &st);
    if (rc == TRACE_OK) {
        for (size_t k = 0; k < st->body->n_licenses; k++)
            has |= strcmp(st->body->licenses[k], cls->licence) == 0;
        if (!has)
            finding(c, "LICENCE_SCOPE",
                    "permit %s goes to %s, which holds no licence scope for "
                    "%s (%s)",
                    b->permit, b->holder, s->code, cls->licence);
    }
    ledger_txn_abort(c->l, txn);
    arena_free(a);
    return rc == TRACE_ENOTFOUND ? TRACE_OK : rc; /* unregistered: refused
                                                     at append */
}

int check_event(trace_ledger *l, const Trace__V1__Event *ev, int64_t skew_us,
                trace_finding_fn fn, void *ctx)
{
    struct checker c = {l, ev, fn, ctx, 0};
    struct timespec now;
    int rc = TRACE_OK;

    clock_gettime(CLOCK_REALTIME, &now);
    if (ev->at->us >
        (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 + skew_us) {
        char when[64];
        if (time_format(when, sizeof(when), ev->at) != TRACE_OK)
            snprintf(when, sizeof(when), "%lld us", (long long)ev->at->us);
        finding(&c, "FUTURE_TIME",
                "%s happens at %s, more than %lld s ahead of this ledger's "
                "clock",
                ev->id, when, (long long)(skew_us / 1000000));
    }
    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_SALE_BODY: {
        const Trace__V1__SaleBody *b = ev->sale_body;
        rc = check_stock(&c, b->substance, b->lot, b->qty);
        if (rc == TRACE_OK && b->permit)
            rc = check_permit(&c, b->permit, b->to, ev->party, MOVE_SALE,
                              b->substance, b->qty);
        break;
    }
    case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        rc = check_receipt(&c, ev->party, ev->receipt_body);
        break;
    case TRACE__V1__EVENT__BODY_CONSUME_BODY:
        rc = check_stock(&c, ev->consume_body->substance, ev->consume_body->lot,
                         ev->consume_body->qty);
        break;
    case TRACE__V1__EVENT__BODY_DISPENSE_BODY:
        rc = check_stock(&c, ev->dispense_body->substance,
                         ev->dispense_body->lot, ev->dispense_body->qty);
        if (rc == TRACE_OK)
            rc = check_rx(&c, ev->dispense_body);
        break;
    case TRACE__V1__EVENT__BODY_DESTROY_BODY:
        rc = check_stock(&c, ev->destroy_body->substance, ev->destroy_body->lot,
                         ev->destroy_body->qty);
        break;
    case TRACE__V1__EVENT__BODY_LOSS_BODY:
        rc = check_stock(&c, ev->loss_body->substance, ev->loss_body->lot,
                         ev->loss_body->qty);
        break;
    case TRACE__V1__EVENT__BODY_EXPORT_BODY:
        rc = check_stock(&c, ev->export_body->substance, ev->export_body->lot,
                         ev->export_body->qty);
        if (rc == TRACE_OK)
            rc = check_permit(&c, ev->export_body->permit, ev->party, NULL,
                              MOVE_EXPORT, ev->export_body->substance,
                              ev->export_body->qty);
        break;
    case TRACE__V1__EVENT__BODY_IMPORT_BODY:
        rc = check_permit(&c, ev->import_body->permit, ev->party, NULL,
                          MOVE_IMPORT, ev->import_body->substance,
                          ev->import_body->qty);
        break;
    case TRACE__V1__EVENT__BODY_PRODUCE_BODY:
        for (size_t i = 0; rc == TRACE_OK && i < ev->produce_body->n_inputs;
             i++) {
            const Trace__V1__Input *in = ev->produce_body->inputs[i];
            rc = check_stock(&c, in->substance, in->lot, in->qty);
        }
        break;
    case TRACE__V1__EVENT__BODY_PARTY_BODY:
        rc = check_party(&c, ev->party_body);
        break;
    case TRACE__V1__EVENT__BODY_PERMIT_BODY:
        rc = check_permit_issue(&c, ev->permit_body);
        break;
    default:
        break;
    }
    if (rc == TRACE_OK && c.rc)
        rc = c.rc;
    return rc;
}

int trace_check_json(trace_ledger *l, const char *line, size_t len,
                     int64_t skew_us, trace_finding_fn fn, void *ctx)
{
    Trace__V1__Event *ev;
    arena *a;
    int rc;

    if (!(a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = event_from_json(&ev, a, line, len, l)) == TRACE_OK)
        rc = check_event(l, ev, skew_us, fn, ctx);
    arena_free(a);
    return rc;
}
