/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c - the operation table, who may run what, and the handlers.
 *
 * One row per operation (redis's command table): its name, its Call
 * field, flags, a line on rights, the authorization check and the
 * handler.  ops_call() finds the row, runs its check, then its handler;
 * both take the principal, and nothing outside this file decides who
 * may read what for these operations.
 *
 * Rights (SPEC 5): a regulator reads everything; a party reads its own
 * stock and events, the movements of lots it held, and the permits it
 * holds, is the counterparty of, or cited; any party reads the head and
 * the catalog, checkpoints and consistency proofs, and hands in a
 * witness's cosignature (which authenticates the witness).  The owner
 * of a ledger folder (tracectl --data without --as) has every right.
 *
 * Handlers turn the library's borrowed structs into Items on the stack
 * (the strings stay borrowed) and pass them on; they keep no state
 * between calls and touch no global, so traced runs them on all workers
 * at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ops.h"
#include "trace/proof.h"
#include "trace/query.h"
#include "trace/reconcile.h"
#include "trace/trace.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x

/* What a handler shares with its library callbacks. */
struct run {
    trace_ledger *l;
    const ops_env *env;
    const ops_principal *who;
    const ops_call_t *call;
    ops_item_fn fn;
    void *ctx;
    ops_status *st;
    size_t rows;
    uint64_t last; /* paged operations: position of the last row taken */
    int paged;     /* the row is OPS_PAGED */
};

typedef int (*check_fn)(struct run *r);
typedef int (*handler_fn)(struct run *r);

struct row {
    ops_op op;
    check_fn check;     /* 0 or an exit code in r->st; NULL: anyone */
    handler_fn handler; /* 0 or an exit code in r->st */
};

int ops_status_set(ops_status *st, int code, const char *fmt, ...)
{
    va_list ap;

    st->code = code;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
    va_end(ap);
    return code;
}

/* A library error: its message and exit code. */
static int failed(struct run *r, int rc)
{
    const char *m = trace_error_last();
    return ops_status_set(r->st, trace_error_exit_code(rc), "%s",
                          m[0] ? m : trace_strerror(rc));
}

static int denied(struct run *r, const char *fmt, const char *arg)
{
    char m[512];
    snprintf(m, sizeof(m), fmt, arg);
    return ops_status_set(r->st, 5, "permission denied: %s", m);
}

/* 1 if the principal may read `party`'s own data. */
static int reads_party(const ops_principal *who, const char *party)
{
    return !who->party || who->regulator ||
           (party && strcmp(who->party, party) == 0);
}

/* 1 if the bundle (JSON text) is within scopes: judged as its event; a
 * bundle of no event (a consistency proof) is within every scope. */
static int bundle_in_scope(struct run *r, const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL, *o;
    int in = 1;

    if (!j)
        return 0;
    if ((o = json_object_get(j, "event")) != NULL) {
        char *ev = json_dumps(o, JSON_COMPACT);
        in = ev && trace_event_in_scope(r->l, r->who->scopes, ev, strlen(ev));
        free(ev);
    }
    json_decref(j);
    return in;
}

/* Departments (SPEC 12): 1 if a scoped regulator may see the row.  The
 * one place that filters what operations read for them. */
static int item_in_scope(struct run *r, const ops_item_t *it)
{
    unsigned sc = r->who->scopes;

    if (!sc)
        return 1;
    switch (it->item_case) {
    case TRACE__OPS__V1__ITEM__ITEM_HOLDING:
        return trace_in_scope(r->l, sc, NULL, it->holding->substance);
    case TRACE__OPS__V1__ITEM__ITEM_HOP:
        return trace_in_scope(r->l, sc, it->hop->kind, it->hop->substance);
    case TRACE__OPS__V1__ITEM__ITEM_PERMIT:
        return trace_in_scope(r->l, sc, it->permit->kind,
                              it->permit->substance);
    case TRACE__OPS__V1__ITEM__ITEM_EVENT:
        return trace_event_in_scope(r->l, sc, it->event->json,
                                    strlen(it->event->json));
    case TRACE__OPS__V1__ITEM__ITEM_DAY:
        return trace_in_scope(r->l, sc, NULL, it->day->substance);
    case TRACE__OPS__V1__ITEM__ITEM_PRODUCT:
        return trace_in_scope(r->l, sc, NULL, it->product->substance);
    case TRACE__OPS__V1__ITEM__ITEM_APPLICATION:
        return trace_in_scope(r->l, sc, it->application->kind,
                              it->application->substance);
    case TRACE__OPS__V1__ITEM__ITEM_LINE:
        return trace_event_in_scope(r->l, sc, it->line->json,
                                    strlen(it->line->json));
    case TRACE__OPS__V1__ITEM__ITEM_ALERT:
        /* by its substance, or its evidence (imports, exports; what
         * names no substance); neither: unscoped regulators only */
        return trace_alert_in_scope(r->l, sc, it->alert->json,
                                    strlen(it->alert->json));
    case TRACE__OPS__V1__ITEM__ITEM_BUNDLE:
        return bundle_in_scope(r, it->bundle->json);
    default:
        return 1; /* head, catalog, parties, notes, summaries */
    }
}

static int emit(struct run *r, ops_item_t *it)
{
    if (!item_in_scope(r, it))
        return 0; /* not counted: outside the regulator's scopes */
    int rc = r->fn(it, r->ctx);
    if (rc == 0)
        r->rows++;
    return rc;
}

/* Emits a row of a paged operation at position pos. */
static int emit_at(struct run *r, ops_item_t *it, uint64_t pos)
{
    int rc = emit(r, it);
    if (rc == 0)
        r->last = pos;
    return rc;
}

/* A stopped query: the callee's code, else the library's error. */
static int ended(struct run *r, int rc)
{
    if (rc == TRACE_OK)
        return 0;
    if (rc == OPS_FULL) {
        if (r->paged && r->rows > 0) {
            r->st->next = r->last;
            return 0;
        }
        return ops_status_set(r->st, 6,
                              "the output is larger than the daemon's "
                              "max-reply: narrow the request (--party, "
                              "--from, --to)");
    }
    if (rc > 0) /* stopped by the item callback */
        return r->st->code ? r->st->code : (r->st->code = rc);
    return failed(r, rc);
}

/* ------------------------------------------------------------------ */
/* balance                                                              */

static int check_balance(struct run *r)
{
    const char *p = r->call->balance->party;
    if (!reads_party(r->who, p))
        return denied(r, "the stock of %s is not yours to read", p);
    return 0;
}

static int on_holding(const trace_holding *h, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Holding m = TRACE__OPS__V1__HOLDING__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.party = (char *)h->party;
    m.site = (char *)h->site;
    m.substance = (char *)h->substance;
    m.lot = (char *)h->lot;
    m.qty = (char *)h->qty_text;
    m.unit = (char *)h->unit;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_HOLDING;
    it.holding = &m;
    return emit(r, &it);
}

static int run_balance(struct run *r)
{
    const Trace__Ops__V1__Balance *b = r->call->balance;
    int64_t at = b->has_at_us ? b->at_us : TRACE_AT_NOW;

    trace_party_name(r->l, b->party, r->st->name, sizeof(r->st->name));
    return ended(
        r, trace_balance(r->l, b->party, at, b->substance, on_holding, r));
}

/* ------------------------------------------------------------------ */
/* trace                                                                */

static int check_trace(struct run *r)
{
    const char *lot = r->call->trace->lot;
    if (!reads_party(r->who, "") && !trace_lot_held(r->l, lot, r->who->party))
        return denied(r, "%s never held the lot", r->who->party);
    return 0;
}

static int on_hop(const trace_hop *h, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Hop m = TRACE__OPS__V1__HOP__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.lot = (char *)h->lot;
    m.substance = (char *)h->substance;
    m.from = (char *)h->from;
    m.to = (char *)h->to;
    m.qty = (char *)h->qty_text;
    m.unit = (char *)h->unit;
    m.event = (char *)h->event;
    m.at = (char *)h->at_text;
    m.kind = (char *)h->kind;
    m.party = (char *)h->party;
    m.into_lot = (char *)h->into_lot;
    m.depth = h->depth;
    m.from_name = (char *)h->from_name;
    m.to_name = (char *)h->to_name;
    m.ref = (char *)h->ref;
    m.leaves = (char *)h->leaves;
    m.holder = (char *)h->holder;
    m.holder_name = (char *)h->holder_name;
    m.held = (char *)h->held_text;
    m.held_unit = (char *)h->held_unit;
    m.vehicle = (char *)h->vehicle;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_HOP;
    it.hop = &m;
    return emit(r, &it);
}

static int run_trace(struct run *r)
{
    const Trace__Ops__V1__Trace *t = r->call->trace;
    return ended(r, trace_lot(r->l, t->lot, t->party,
                              t->backward ? TRACE_BACKWARD : TRACE_FORWARD,
                              on_hop, r));
}

/* ------------------------------------------------------------------ */
/* permit show                                                          */

/* The holder, the designated counterparty (or, for a purchase permit
 * without one, any seller, who must check it before selling) and
 * whoever cited it may read a permit. */
static int reads_permit(const ops_principal *who, const trace_permit_state *p)
{
    int purchase = strcmp(p->kind, "purchase_license") == 0 ||
                   strcmp(p->kind, "purchase_filing") == 0;
    if (reads_party(who, p->holder) || (purchase && !p->counterparty) ||
        (p->counterparty && strcmp(p->counterparty, who->party) == 0))
        return 1;
    for (size_t i = 0; i < p->n_uses; i++)
        if (strcmp(p->use[i].party, who->party) == 0)
            return 1;
    return 0;
}

static int on_permit(const trace_permit_state *p, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Permit m = TRACE__OPS__V1__PERMIT__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    Trace__Ops__V1__PermitUse *uses = NULL, **up = NULL;
    int rc;

    if (!reads_permit(r->who, p))
        return denied(r, "permit %s is not yours to read", p->permit);
    if (p->n_uses && (!(uses = calloc(p->n_uses, sizeof(*uses))) ||
                      !(up = calloc(p->n_uses, sizeof(*up))))) {
        free(uses);
        return ops_status_set(r->st, 6, "out of memory");
    }
    for (size_t i = 0; i < p->n_uses; i++) {
        const trace_permit_use *u = &p->use[i];
        trace__ops__v1__permit_use__init(&uses[i]);
        uses[i].party = (char *)u->party;
        uses[i].id = (char *)u->event;
        uses[i].role = (char *)u->role;
        uses[i].at = (char *)u->at_text;
        uses[i].qty = (char *)u->qty_text;
        uses[i].counted = u->valid != 0;
        uses[i].reason = (char *)u->reason;
        up[i] = &uses[i];
    }
    m.permit = (char *)p->permit;
    m.kind = (char *)p->kind;
    m.holder = (char *)p->holder;
    m.counterparty = (char *)p->counterparty;
    m.substance = (char *)p->substance;
    m.uses = (char *)p->uses;
    m.valid_from = (char *)p->valid_from;
    m.valid_until = (char *)p->valid_until;
    m.status = (char *)p->status;
    m.budget = (char *)p->budget_text;
    m.used = (char *)p->used_text;
    m.remaining = (char *)p->remaining_text;
    m.unit = (char *)p->unit;
    m.issuer = (char *)p->issuer;
    m.has_used_overflow = p->used_overflow != 0;
    m.used_overflow = p->used_overflow != 0;
    m.n_events = p->n_uses;
    m.events = up;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_PERMIT;
    it.permit = &m;
    rc = emit(r, &it);
    free(uses);
    free(up);
    return rc;
}

static int run_permit(struct run *r)
{
    const Trace__Ops__V1__PermitShow *p = r->call->permit_show;
    int64_t at = p->has_at_us ? p->at_us : TRACE_AT_NOW;
    return ended(r, trace_permit_show(r->l, p->permit, at, on_permit, r));
}

/* ------------------------------------------------------------------ */
/* history                                                              */

/* One's own events, or those of a lot one held. */
static int check_history(struct run *r)
{
    const Trace__Ops__V1__History *h = r->call->history;
    const char *what = h->lot ? h->lot : h->party;
    trace_party pi;

    if (reads_party(r->who, ""))
        return 0;
    if (h->party && strcmp(h->party, r->who->party) != 0 &&
        trace_party_info(r->l, h->party, &pi) == TRACE_OK)
        return denied(r, "the events of %s are not yours to read", h->party);
    if ((h->lot || strcmp(h->party, r->who->party) != 0) &&
        !trace_lot_held(r->l, what, r->who->party))
        return denied(r, "%s never held the lot", r->who->party);
    return 0;
}

static int on_event(const trace_event_info *e, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Event m = TRACE__OPS__V1__EVENT__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.seq = e->seq;
    m.type = (char *)e->type;
    m.id = (char *)e->id;
    m.party = (char *)e->party;
    m.substance = (char *)e->substance;
    m.lot = (char *)e->lot;
    m.qty = (char *)e->qty_text;
    m.unit = (char *)e->unit;
    m.at = (char *)e->at_text;
    m.corrected = e->corrected != 0;
    m.json = (char *)e->json;
    m.party_name = (char *)e->party_name;
    m.corrected_by = (char *)e->corrected_by;
    m.has_voided = e->corrected != 0;
    m.voided = e->voided != 0;
    m.corrects = (char *)e->corrects;
    m.has_voids = e->corrects != NULL;
    m.voids = e->voids != 0;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_EVENT;
    it.event = &m;
    return emit_at(r, &it, e->seq);
}

static int run_history(struct run *r)
{
    const Trace__Ops__V1__History *h = r->call->history;
    trace_history_opts ho = TRACE_HISTORY_OPTS_INIT;
    int rc;

    ho.party = h->lot ? NULL : h->party;
    ho.lot = h->lot;
    ho.has_from = h->has_from_us;
    ho.from_us = h->from_us;
    ho.has_to = h->has_to_us;
    ho.to_us = h->to_us;
    ho.after = h->after;
    ho.limit = (size_t)h->limit;
    rc = trace_history(r->l, &ho, on_event, r);
    if (rc == TRACE_ENOTFOUND && ho.party && r->rows == 0) {
        /* `history X`: X may also be a lot */
        ho.lot = ho.party;
        ho.party = NULL;
        rc = trace_history(r->l, &ho, on_event, r);
        if (rc == TRACE_ENOTFOUND)
            return ops_status_set(r->st, 4, "no party or lot named %s", ho.lot);
    }
    return ended(r, rc);
}

/* ------------------------------------------------------------------ */
/* head, catalog                                                        */

static int run_head(struct run *r)
{
    Trace__Ops__V1__HeadState m = TRACE__OPS__V1__HEAD_STATE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    uint8_t hash[32];
    uint64_t size;
    int rc;

    if ((rc = trace_ledger_head(r->l, &size, hash)) != TRACE_OK)
        return failed(r, rc);
    m.size = size;
    m.head.data = hash;
    m.head.len = sizeof(hash);
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_HEAD;
    it.head = &m;
    return ended(r, emit(r, &it));
}

static int on_substance(const trace_substance *s, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Substance m = TRACE__OPS__V1__SUBSTANCE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.code = (char *)s->code;
    m.cas = (char *)s->cas;
    m.name = (char *)s->name;
    m.dimension = (char *)s->dimension;
    m.n_scopes = s->n_scopes;
    m.scopes = (char **)s->scopes;
    m.name_zh = (char *)s->name_zh;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_SUBSTANCE;
    it.substance = &m;
    return emit(r, &it);
}

static int run_catalog(struct run *r)
{
    return ended(r, trace_ledger_substances(r->l, on_substance, r));
}

/* regime: one row, the regime and the table the ledger stores */
static int run_regime(struct run *r)
{
    Trace__Ops__V1__RegimeTable m = TRACE__OPS__V1__REGIME_TABLE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.regime = (char *)trace_ledger_regime(r->l);
    m.table = (char *)trace_ledger_regime_json(r->l);
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_REGIME;
    it.regime = &m;
    return ended(r, emit(r, &it));
}

/* ------------------------------------------------------------------ */
/* register                                                             */

static int check_register(struct run *r)
{
    const char *p = r->call->special_register->party;
    if (!reads_party(r->who, p))
        return denied(r, "the register of %s is not yours to read", p);
    return 0;
}

static int on_day(const trace_register_day *d, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__RegisterDay m = TRACE__OPS__V1__REGISTER_DAY__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    Trace__Ops__V1__RegisterLine *ls = NULL, **lp = NULL;
    int rc;

    if (d->n_lines && (!(ls = calloc(d->n_lines, sizeof(*ls))) ||
                       !(lp = calloc(d->n_lines, sizeof(*lp))))) {
        free(ls);
        return ops_status_set(r->st, 6, "out of memory");
    }
    for (size_t i = 0; i < d->n_lines; i++) {
        const trace_register_line *x = &d->lines[i];
        trace__ops__v1__register_line__init(&ls[i]);
        ls[i].kind = (char *)x->kind;
        ls[i].id = (char *)x->event;
        ls[i].at = (char *)x->at_text;
        ls[i].lot = (char *)x->lot;
        ls[i].qty = (char *)x->qty_text;
        ls[i].counterparty = (char *)x->counterparty;
        ls[i].rx = (char *)x->rx;
        ls[i].balance = (char *)x->balance_text;
        ls[i].handler = (char *)x->handler;
        ls[i].checker = (char *)x->checker;
        ls[i].spec = (char *)x->spec;
        lp[i] = &ls[i];
    }
    m.date = (char *)d->date;
    m.party = (char *)d->party;
    m.substance = (char *)d->substance;
    m.unit = (char *)d->unit;
    m.opening = (char *)d->opening_text;
    m.received = (char *)d->received_text;
    m.dispensed = (char *)d->dispensed_text;
    m.destroyed = (char *)d->destroyed_text;
    m.other_out = (char *)d->other_out_text;
    m.closing = (char *)d->closing_text;
    m.n_entries = d->n_lines;
    m.entries = lp;
    m.substance_name = (char *)d->name;
    m.substance_name_zh = (char *)d->name_zh;
    m.category = (char *)d->category;
    m.spec = (char *)d->spec;
    m.period_received = (char *)d->period_received_text;
    m.period_dispensed = (char *)d->period_dispensed_text;
    m.period_destroyed = (char *)d->period_destroyed_text;
    m.period_other_out = (char *)d->period_other_out_text;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_DAY;
    it.day = &m;
    rc = emit(r, &it);
    free(ls);
    free(lp);
    return rc;
}

static int run_register(struct run *r)
{
    const Trace__Ops__V1__Register *g = r->call->special_register;

    trace_party_name(r->l, g->party, r->st->name, sizeof(r->st->name));
    return ended(r, trace_register(r->l, g->party, g->substance, g->from_us,
                                   g->to_us, on_day, r));
}

/* ------------------------------------------------------------------ */
/* export                                                               */

/* Through traced a party exports its own events; a regulator any. */
static int check_export(struct run *r)
{
    const char *p = r->call->export->party;
    if (p && !trace_party_id_valid(p))
        return ops_status_set(r->st, 1, "export: invalid party id %s", p);
    if (p && !reads_party(r->who, p))
        return denied(r, "the events of %s are not yours to read", p);
    return 0;
}

static int on_line(uint64_t seq, const char *line, size_t len, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__ExportLine m = TRACE__OPS__V1__EXPORT_LINE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    (void)len;
    m.seq = seq;
    m.json = (char *)line;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_LINE;
    it.line = &m;
    return emit_at(r, &it, seq);
}

static int run_export(struct run *r)
{
    const Trace__Ops__V1__Export *x = r->call->export;
    trace_export_opts eo = TRACE_EXPORT_OPTS_INIT;

    eo.party = x->party;
    if (!eo.party && !reads_party(r->who, ""))
        eo.party = r->who->party; /* one's own events */
    eo.has_from = x->has_from_us;
    eo.from_us = x->from_us;
    eo.has_to = x->has_to_us;
    eo.to_us = x->to_us;
    return ended(r, trace_ledger_export_after(r->l, &eo, x->after, on_line, r));
}

/* ------------------------------------------------------------------ */
/* alerts, reconcile                                                    */

static int check_alerts(struct run *r)
{
    const char *p = r->call->alerts->party;
    if (p && !reads_party(r->who, p))
        return denied(r, "the alerts of %s are not yours to read", p);
    return 0;
}

static int on_alert(const trace_alert *a, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Alert m = TRACE__OPS__V1__ALERT__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.id = (char *)a->id;
    m.rule = (char *)a->rule;
    m.severity = (char *)a->severity;
    m.status = (char *)a->status;
    m.party = (char *)a->party;
    m.detail = (char *)a->detail;
    m.json = (char *)a->json;
    m.position = a->position;
    m.ack_by = (char *)a->ack_by;
    m.ack_at = (char *)a->ack_at;
    m.ack_note = (char *)a->ack_note;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_ALERT;
    it.alert = &m;
    return emit_at(r, &it, a->position);
}

static int run_alerts(struct run *r)
{
    const Trace__Ops__V1__Alerts *x = r->call->alerts;
    trace_alert_filter f = TRACE_ALERT_FILTER_INIT;

    f.status = x->status;
    f.rule = x->rule;
    f.party = x->party;
    if (!reads_party(r->who, ""))
        f.party = r->who->party; /* alerts naming the requester */
    f.after = x->after;
    return ended(r, trace_alerts(r->l, &f, on_alert, r));
}

static int check_regulator(struct run *r)
{
    static const struct {
        int op_case;
        const char *why;
    } why[] = {
        {C(RECONCILE), "only a regulator runs reconciliation"},
        {C(VERIFY), "only a regulator verifies the whole ledger"},
        {C(BACKUP), "only a regulator backs up the ledger"},
    };
    if (reads_party(r->who, ""))
        return 0;
    for (size_t i = 0; i < sizeof(why) / sizeof(*why); i++)
        if (why[i].op_case == (int)r->call->op_case)
            return denied(r, "%s", why[i].why);
    return denied(r, "%s", "only a regulator may");
}

/* A rules file travels in a request only to a ledger folder: traced
 * judges with its own (rules = FILE). */
static int rules_refused(struct run *r, const char *op, int has_rules)
{
    if (r->env->daemon && has_rules)
        return ops_status_set(r->st, 1,
                              "%s: --rules is a setting of traced "
                              "(rules = FILE), not of a request",
                              op);
    return 0;
}

static int check_reconcile(struct run *r)
{
    int rc = check_regulator(r);
    return rc ? rc
              : rules_refused(r, "reconcile", r->call->reconcile->has_rules);
}

static int run_reconcile(struct run *r)
{
    const Trace__Ops__V1__Reconcile *x = r->call->reconcile;
    Trace__Ops__V1__ReconcileSummary m =
        TRACE__OPS__V1__RECONCILE_SUMMARY__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum = {0};
    int rc;

    if (x->has_as_of_us)
        ro.as_of_us = x->as_of_us;
    ro.dry_run = x->has_dry_run && x->dry_run;
    ro.incremental = x->has_incremental && x->incremental;
    if (x->has_rules) {
        ro.rules_json = (const char *)x->rules.data;
        ro.rules_len = x->rules.len;
    } else if (r->env->rules_json) {
        ro.rules_json = r->env->rules_json;
        ro.rules_len = r->env->rules_len;
    }
    ro.store_via = r->env->store_via;
    ro.store_ctx = r->env->store_ctx;
    if ((rc = trace_reconcile(r->l, &ro, on_alert, r, &sum)) != TRACE_OK)
        return ended(r, rc);
    m.alerts = sum.alerts;
    m.new_alerts = sum.new_alerts;
    m.events = sum.events;
    m.new_events = sum.new_events;
    m.seconds = sum.seconds;
    m.partial = sum.partial != 0;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_SUMMARY;
    it.summary = &m;
    return ended(r, emit(r, &it));
}

/* ------------------------------------------------------------------ */
/* verify, backup                                                       */

/* verify --deep reports its two passes as one: the journal's entries
 * are the first half of the work, the indexes' the second. */
struct two_phase {
    const ops_env *env;
    int second;
};

static void phase_progress(uint64_t done, uint64_t total, void *ctx)
{
    const struct two_phase *p = ctx;
    if (!p->env->progress || !total)
        return;
    /* in units of 1/1000 of each half */
    p->env->progress(p->second * 1000 + done * 1000 / total, 2000,
                     p->env->progress_ctx);
}

static int phase_stop(void *ctx)
{
    const struct two_phase *p = ctx;
    return p->env->stop ? p->env->stop(p->env->progress_ctx) : 0;
}

static int run_verify(struct run *r)
{
    Trace__Ops__V1__Verified m = TRACE__OPS__V1__VERIFIED__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    const int deep = r->call->verify->has_deep && r->call->verify->deep;
    struct two_phase ph = {r->env, 0};
    trace_verify_deep_result *dres = NULL;
    trace_verify_result res;
    uint8_t head[32];
    uint64_t size;
    int rc, erc;

    memset(&res, 0, sizeof(res));
    if (r->call->verify->from_checkpoint)
        rc = trace_ledger_verify_checkpoint(
            r->l, &res, r->call->verify->from_checkpoint,
            strlen(r->call->verify->from_checkpoint),
            deep ? (r->env->progress ? phase_progress : NULL)
                 : r->env->progress,
            deep ? (r->env->stop ? phase_stop : NULL) : r->env->stop,
            deep ? (void *)&ph : r->env->progress_ctx);
    else if (deep)
        rc = trace_ledger_verify_stoppable(
            r->l, &res, r->env->progress ? phase_progress : NULL,
            r->env->stop ? phase_stop : NULL, &ph);
    else
        rc = trace_ledger_verify_stoppable(r->l, &res, r->env->progress,
                                           r->env->stop, r->env->progress_ctx);
    if (rc == TRACE_OK && (rc = trace_ledger_head(r->l, &size, head)) != 0)
        return failed(r, rc);
    if (rc == TRACE_OK && deep) {
        /* the indexes, once the journal they derive from holds */
        if (!(dres = calloc(1, sizeof(*dres))))
            return failed(r, TRACE_ENOMEM);
        ph.second = 1;
        rc = trace_ledger_verify_deep(r->l, NULL, dres,
                                      r->env->progress ? phase_progress : NULL,
                                      r->env->stop ? phase_stop : NULL, &ph);
        if (rc != TRACE_OK && rc != TRACE_EVERIFY) {
            free(dres);
            return failed(r, rc);
        }
        m.has_deep = m.deep = 1;
        m.has_index_records = 1;
        m.index_records = dres->records;
        if (rc == TRACE_EVERIFY) {
            res.bad_seq = dres->bad_seq;
            if (dres->index[0]) {
                m.index = dres->index;
                m.index_key = dres->key;
                m.problem = dres->problem;
                m.expected = dres->expected;
                m.found = dres->found;
            }
        }
    }
    if (rc != TRACE_OK && rc != TRACE_EVERIFY)
        return failed(r, rc);
    m.ok = rc == TRACE_OK;
    m.has_entries = m.has_signatures = 1;
    m.entries = res.entries;
    m.signatures = res.groups;
    m.has_checkpoints = 1;
    m.checkpoints = res.checkpoints;
    if (m.ok) {
        m.has_head = 1;
        m.head.data = head;
        m.head.len = sizeof(head);
    } else {
        m.has_bad_seq = 1;
        m.bad_seq = res.bad_seq;
        m.reason = dres && dres->reason[0] ? dres->reason : res.reason;
    }
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_VERIFIED;
    it.verified = &m;
    if ((erc = emit(r, &it)) != 0) {
        free(dres);
        return ended(r, erc);
    }
    if (!m.ok) {
        erc = ops_status_set(r->st, 3, "verify FAILED: %s",
                             m.reason[0] ? m.reason : trace_error_last());
        free(dres);
        return erc;
    }
    free(dres);
    return 0;
}

static int run_backup(struct run *r)
{
    const char *dest = r->call->backup->dest;
    Trace__Ops__V1__BackedUp m = TRACE__OPS__V1__BACKED_UP__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    char path[4096];
    int rc;

    if (r->env->daemon) {
        /* a plain name inside the daemon's backup-dir, never a path a
         * client chooses */
        if (!r->env->backup_dir)
            return denied(r, "%s",
                          "this daemon takes no backups (set backup-dir)");
        if (!trace_party_id_valid(dest))
            return ops_status_set(r->st, 1,
                                  "backup: DEST must be a plain name "
                                  "(letters, digits, . _ : -), not %.200s",
                                  dest);
        snprintf(path, sizeof(path), "%s/%s", r->env->backup_dir, dest);
        dest = path;
    }
    if ((rc = trace_ledger_backup(r->l, dest)) != TRACE_OK)
        return failed(r, rc);
    m.source = (char *)(r->env->data_dir ? r->env->data_dir : "");
    m.dest = (char *)dest;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_BACKED_UP;
    it.backed_up = &m;
    return ended(r, emit(r, &it));
}

/* ------------------------------------------------------------------ */
/* parties, permit list                                                 */

static int on_party(const trace_party_row *p, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Party m = TRACE__OPS__V1__PARTY__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.party = (char *)p->party;
    m.name = (char *)p->name;
    m.kind = (char *)p->kind;
    m.region = (char *)p->region;
    m.n_licenses = p->n_licenses;
    m.licenses = (char **)p->licenses;
    m.status = (char *)p->status;
    m.keys = (uint32_t)p->n_keys;
    m.registered_by = (char *)p->registered_by;
    Trace__Ops__V1__PartySite sites[64], *sp[64];
    m.gln = (char *)p->gln;
    /* a party's sites: at most 64 go on the wire */
    for (size_t i = 0; i < p->n_sites && i < 64; i++) {
        trace__ops__v1__party_site__init(&sites[i]);
        sites[i].site = (char *)p->sites[i].site;
        sites[i].sgln = (char *)p->sites[i].sgln;
        sp[i] = &sites[i];
    }
    m.n_sites = p->n_sites < 64 ? p->n_sites : 64;
    m.sites = sp;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_PARTY;
    it.party = &m;
    return emit(r, &it);
}

/* The registry is a directory every registered party may read: a seller
 * checks a buyer's licences and status in it. */
static int run_parties(struct run *r)
{
    return ended(r, trace_parties(r->l, r->call->parties->kind, on_party, r));
}

static int on_product(const trace_product_row *p, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Product m = TRACE__OPS__V1__PRODUCT__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.gtin = (char *)p->gtin;
    m.substance = (char *)p->substance;
    m.content = (char *)p->content;
    m.content_unit = (char *)p->content_unit;
    m.units_per_pack = p->units_per_pack;
    m.name = (char *)p->name;
    m.form = (char *)p->form;
    m.registered_by = (char *)p->registered_by;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_PRODUCT;
    it.product = &m;
    return emit(r, &it);
}

/* The product master is public like the registry: anyone who records a
 * movement by GTIN reads what it amounts to. */
static int run_products(struct run *r)
{
    return ended(
        r, trace_products(r->l, r->call->products->substance, on_product, r));
}

/* credit: the party itself and regulators (it is published with the
 * enterprise's record) */
static int check_credit(struct run *r)
{
    const Trace__Ops__V1__Credit *x = r->call->credit;
    if (!reads_party(r->who, x->party))
        return denied(r, "the credit of %s is not yours to read", x->party);
    return rules_refused(r, "credit", x->has_rules);
}

static int run_credit(struct run *r)
{
    const Trace__Ops__V1__Credit *x = r->call->credit;
    Trace__Ops__V1__CreditScore m = TRACE__OPS__V1__CREDIT_SCORE__INIT;
    Trace__Ops__V1__CreditFactor f[TRACE_CREDIT_FACTORS],
        *fp[TRACE_CREDIT_FACTORS];
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    trace_credit_score c;
    char grade[2], name[256], scopes[64];
    int rc;

    /* a department's score counts what it may read (its scopes) */
    if (x->has_rules)
        rc = trace_credit_within(
            r->l, x->party, x->has_at_us ? x->at_us : TRACE_AT_NOW,
            r->who->scopes, (const char *)x->rules.data, x->rules.len, &c);
    else
        rc = trace_credit_within(
            r->l, x->party, x->has_at_us ? x->at_us : TRACE_AT_NOW,
            r->who->scopes, r->env->rules_json, r->env->rules_len, &c);
    if (rc != TRACE_OK)
        return ended(r, rc);
    grade[0] = c.grade;
    grade[1] = '\0';
    m.party = c.party;
    m.from = c.from;
    m.to = c.to;
    m.score = c.score;
    m.grade = grade;
    if (trace_party_name(r->l, c.party, name, sizeof(name)) == TRACE_OK)
        m.name = name;
    if (r->who->scopes) {
        trace_scope_names(r->who->scopes, scopes, sizeof(scopes));
        m.scopes = scopes;
    }
    for (size_t i = 0; i < c.n_factors; i++) {
        Trace__Ops__V1__CreditFactor z = TRACE__OPS__V1__CREDIT_FACTOR__INIT;
        z.factor = (char *)c.factors[i].factor;
        z.label_zh = (char *)c.factors[i].label_zh;
        z.count = c.factors[i].count;
        z.weight = c.factors[i].weight;
        z.points = c.factors[i].points;
        f[i] = z;
        fp[i] = &f[i];
    }
    m.n_factors = c.n_factors;
    m.factors = fp;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_CREDIT;
    it.credit = &m;
    return ended(r, emit(r, &it));
}

/* Applications (SPEC 12): an applicant reads its own, a regulator all
 * (its queue of pending ones with --pending). */
static int check_applications(struct run *r)
{
    const char *p = r->call->applications->party;
    if (p && !reads_party(r->who, p))
        return denied(r, "the applications of %s are not yours to list", p);
    return 0;
}

static int on_application(const trace_application_row *a, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Application m = TRACE__OPS__V1__APPLICATION__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    if (r->call->applications->has_pending && r->call->applications->pending &&
        strcmp(a->state, "pending") != 0)
        return 0;
    m.party = (char *)a->party;
    m.id = (char *)a->id;
    m.at = (char *)a->at;
    m.kind = (char *)a->kind;
    m.substance = (char *)a->substance;
    m.qty = (char *)a->qty;
    m.unit = (char *)a->unit;
    m.counterparty = (char *)a->counterparty;
    m.purpose = (char *)a->purpose;
    m.valid_from = (char *)a->valid_from;
    m.valid_until = (char *)a->valid_until;
    m.uses = (char *)a->uses;
    m.state = (char *)a->state;
    m.permit = (char *)a->permit;
    m.decided_by = (char *)a->decided_by;
    m.decision = (char *)a->decision;
    m.decided_at = (char *)a->decided_at;
    m.reason = (char *)a->reason;
    m.days = a->days;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_APPLICATION;
    it.application = &m;
    return emit(r, &it);
}

static int run_applications(struct run *r)
{
    const Trace__Ops__V1__Applications *x = r->call->applications;
    /* a party without --party: its own */
    const char *p = x->party                  ? x->party
                    : reads_party(r->who, "") ? NULL
                                              : r->who->party;
    int64_t now = x->has_now_us ? x->now_us : TRACE_AT_NOW;
    return ended(r, trace_applications(r->l, p, now, on_application, r));
}

/* A party lists the permits it holds or is the named counterparty of
 * (permit show, not the list, serves a seller checking a buyer's). */
static int check_permit_list(struct run *r)
{
    const char *h = r->call->permit_list->holder;
    if (h && !reads_party(r->who, h))
        return denied(r, "the permits of %s are not yours to list", h);
    return 0;
}

static int on_listed_permit(const trace_permit_state *p, void *ctx)
{
    struct run *r = ctx;
    const Trace__Ops__V1__PermitList *x = r->call->permit_list;

    if (x->holder && strcmp(p->holder, x->holder) != 0)
        return 0;
    if (x->status && strcmp(p->status, x->status) != 0)
        return 0;
    if (!reads_party(r->who, p->holder) &&
        !(p->counterparty && strcmp(p->counterparty, r->who->party) == 0))
        return 0;
    return on_permit(p, ctx);
}

static int each_permit(const char *permit, void *ctx)
{
    struct run *r = ctx;
    const Trace__Ops__V1__PermitList *x = r->call->permit_list;
    int64_t at = x->has_at_us ? x->at_us : TRACE_AT_NOW;
    int rc = trace_permit_show(r->l, permit, at, on_listed_permit, r);

    return rc == TRACE_ENOTFOUND ? 0 : rc;
}

static int run_permit_list(struct run *r)
{
    return ended(r, trace_permit_ids(r->l, each_permit, r));
}

/* ------------------------------------------------------------------ */
/* check                                                                */

/* A party checks its own events (they read its stock and the permits it
 * cites); a regulator any. */
static int check_check(struct run *r)
{
    const char *line = r->call->check->line;
    json_t *j = json_loads(line, 0, NULL);
    const char *party =
        j ? json_string_value(json_object_get(j, "party")) : NULL;
    int rc = 0;

    if (!party)
        rc = ops_status_set(r->st, 2, "check: the event names no party");
    else if (!reads_party(r->who, party))
        rc = denied(r, "%s's events are not yours to check", party);
    else if (r->who->scopes &&
             !trace_event_in_scope(r->l, r->who->scopes, line, strlen(line))) {
        /* its findings would tell stock and permits outside the scopes */
        char sc[64];
        trace_scope_names(r->who->scopes, sc, sizeof(sc));
        rc = ops_status_set(r->st, 5,
                            "permission denied: %s works within scopes %s "
                            "and may not check this event",
                            r->who->party, sc);
    }
    json_decref(j);
    return rc;
}

static int on_finding(const trace_finding *f, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Finding m = TRACE__OPS__V1__FINDING__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.code = (char *)f->code;
    m.message = (char *)f->message;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_FINDING;
    it.finding = &m;
    return emit(r, &it);
}

static int run_check(struct run *r)
{
    const char *line = r->call->check->line;
    return ended(r, trace_check_json(r->l, line, strlen(line),
                                     TRACE_CHECK_SKEW_US, on_finding, r));
}

/* ------------------------------------------------------------------ */
/* checkpoint, prove                                                    */

/* The log's checkpoints and its key are for anyone: they prove nothing
 * about an event without a bundle. */
static int run_checkpoint(struct run *r)
{
    const Trace__Ops__V1__Checkpoint *c = r->call->checkpoint;
    Trace__Ops__V1__Note m = TRACE__OPS__V1__NOTE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    trace_checkpoint *cp = NULL;
    char vkey[512], *note = NULL;
    size_t len;
    int rc;

    if (c->has_public_key && c->public_key) {
        if ((rc = trace_checkpoint_vkey(r->l, vkey, sizeof(vkey))) != TRACE_OK)
            return failed(r, rc);
        m.vkey = vkey;
    } else {
        if ((rc = trace_checkpoint_note(r->l, c->has_size ? c->size : 0, &note,
                                        &len)) != TRACE_OK)
            return failed(r, rc);
        if (!(cp = malloc(sizeof(*cp)))) {
            free(note);
            return ops_status_set(r->st, 6, "out of memory");
        }
        if ((rc = trace_checkpoint_parse(cp, note, len)) != TRACE_OK) {
            free(note);
            free(cp);
            return failed(r, rc);
        }
        m.note = note;
        m.origin = cp->origin;
        m.has_tree_size = 1;
        m.tree_size = cp->size;
        m.has_root = 1;
        m.root.data = cp->root;
        m.root.len = sizeof(cp->root);
    }
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_NOTE;
    it.note = &m;
    rc = ended(r, emit(r, &it));
    free(note);
    free(cp);
    return rc;
}

/* An event's proof: its recorder or a regulator; a chain's: the party
 * itself or a regulator; a consistency proof: anyone (two tree sizes
 * and hashes of inner nodes). */
static int check_prove(struct run *r)
{
    const Trace__Ops__V1__Prove *p = r->call->prove;

    if (p->history && !reads_party(r->who, p->history))
        return denied(r, "the chain of %s is not yours to prove", p->history);
    if (!p->history && p->party && !reads_party(r->who, p->party))
        return denied(r, "the events of %s are not yours to prove", p->party);
    return 0;
}

static int run_prove(struct run *r)
{
    const Trace__Ops__V1__Prove *p = r->call->prove;
    Trace__Ops__V1__Bundle m = TRACE__OPS__V1__BUNDLE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    char *json = NULL;
    size_t len;
    int rc;

    if (p->has_consistency && p->consistency)
        rc = trace_prove_consistency(r->l, p->old_size, p->new_size, &json,
                                     &len);
    else if (p->history)
        rc = trace_prove_history(r->l, p->history, &json, &len);
    else
        rc = trace_prove_event(r->l, p->party, p->id, &json, &len);
    if (rc != TRACE_OK)
        return failed(r, rc);
    m.json = json;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_BUNDLE;
    it.bundle = &m;
    rc = ended(r, emit(r, &it));
    free(json);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cosign                                                               */

/* A witness's cosignature: any registered party hands one in (an
 * outside auditor has no party key, and hands its cosignature to a
 * regulator); the cosignature itself, verifying under the vkey it
 * names, is the witness's authentication.  The library keeps a name's
 * first key and at most TRACE_CHECKPOINT_MAX_WITNESSES names per
 * checkpoint.  It is checked here first, so that nothing unsigned
 * reaches traced's writer, which stores it (env->store_via). */
struct cosign_job {
    trace_ledger *l;
    const Trace__Ops__V1__Cosign *x;
    char err[512]; /* a failure's message, for the handler's thread */
};

static int cosign_store(void *arg)
{
    struct cosign_job *j = arg;
    int rc = trace_checkpoint_add_cosig(j->l, j->x->note, strlen(j->x->note),
                                        j->x->witness_vkey);

    if (rc != TRACE_OK)
        snprintf(j->err, sizeof(j->err), "%s", trace_error_last());
    return rc;
}

static int run_cosign(struct run *r)
{
    const Trace__Ops__V1__Cosign *x = r->call->cosign;
    Trace__Ops__V1__Cosigned m = TRACE__OPS__V1__COSIGNED__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    struct cosign_job job = {r->l, x, ""};
    trace_checkpoint *cp = malloc(sizeof(*cp));
    uint8_t pub[32];
    char name[256];
    int rc;

    if (!cp)
        return ops_status_set(r->st, 6, "out of memory");
    if ((rc = trace_vkey_parse(x->witness_vkey, name, sizeof(name), pub)) !=
            TRACE_OK ||
        (rc = trace_checkpoint_parse(cp, x->note, strlen(x->note))) !=
            TRACE_OK ||
        (rc = trace_checkpoint_verify_cosig(cp, name, pub, NULL)) != TRACE_OK) {
        free(cp);
        return failed(r, rc);
    }
    rc = r->env->store_via
             ? r->env->store_via(cosign_store, &job, r->env->store_ctx)
             : cosign_store(&job);
    if (rc != TRACE_OK) {
        free(cp);
        return ops_status_set(r->st, trace_error_exit_code(rc), "%s",
                              job.err[0] ? job.err : trace_strerror(rc));
    }
    m.origin = cp->origin;
    m.tree_size = cp->size;
    m.witness = name;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_COSIGNED;
    it.cosigned = &m;
    rc = ended(r, emit(r, &it));
    free(cp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The table                                                            */

static const struct row rows[] = {
    {{"balance", C(BALANCE), OPS_READ, "the party itself, regulators"},
     check_balance,
     run_balance},
    {{"trace", C(TRACE), OPS_READ, "parties that held the lot, regulators"},
     check_trace,
     run_trace},
    {{"permit", C(PERMIT_SHOW), OPS_READ | OPS_PER_ROWS,
      "holder, counterparty, citing parties, sellers (purchase permits "
      "without a counterparty), regulators"},
     NULL,
     run_permit},
    {{"history", C(HISTORY), OPS_READ | OPS_PAGED,
      "the party itself, parties that held the lot, regulators"},
     check_history,
     run_history},
    {{"head", C(HEAD), OPS_READ, "any registered party"}, NULL, run_head},
    {{"catalog", C(CATALOG), OPS_READ, "any registered party"},
     NULL,
     run_catalog},
    {{"regime", C(REGIME), OPS_READ, "any registered party"}, NULL, run_regime},
    {{"register", C(SPECIAL_REGISTER), OPS_READ,
      "the party itself, regulators"},
     check_register,
     run_register},
    {{"export", C(EXPORT), OPS_READ | OPS_PAGED | OPS_LONG,
      "a party its own events, regulators all"},
     check_export,
     run_export},
    {{"alerts", C(ALERTS), OPS_READ | OPS_PAGED,
      "alerts naming the party, regulators all"},
     check_alerts,
     run_alerts},
    {{"reconcile", C(RECONCILE), OPS_REGULATOR | OPS_WRITE | OPS_LONG,
      "regulators"},
     check_reconcile,
     run_reconcile},
    {{"verify", C(VERIFY), OPS_READ | OPS_REGULATOR | OPS_LONG, "regulators"},
     check_regulator,
     run_verify},
    {{"backup", C(BACKUP), OPS_READ | OPS_REGULATOR | OPS_LONG, "regulators"},
     check_regulator,
     run_backup},
    {{"parties", C(PARTIES), OPS_READ, "any registered party"},
     NULL,
     run_parties},
    {{"products", C(PRODUCTS), OPS_READ, "any registered party"},
     NULL,
     run_products},
    {{"credit", C(CREDIT), OPS_READ, "the party itself, regulators"},
     check_credit,
     run_credit},
    {{"check", C(CHECK), OPS_READ, "a party its own events, regulators any"},
     check_check,
     run_check},
    {{"permit list", C(PERMIT_LIST), OPS_READ,
      "regulators all; a party those it holds or is the counterparty of"},
     check_permit_list,
     run_permit_list},
    {{"applications", C(APPLICATIONS), OPS_READ,
      "regulators all; a party its own"},
     check_applications,
     run_applications},
    {{"checkpoint", C(CHECKPOINT), OPS_READ, "any registered party"},
     NULL,
     run_checkpoint},
    {{"prove", C(PROVE), OPS_READ,
      "an event: its recorder, regulators; a chain: the party itself, "
      "regulators; consistency: any registered party"},
     check_prove,
     run_prove},
    {{"cosign", C(COSIGN), OPS_WRITE,
      "any registered party, for a cosignature that verifies under the "
      "witness key it names"},
     NULL,
     run_cosign},
};

#define N_ROWS (sizeof(rows) / sizeof(*rows))

static const struct row *row_of_case(int op_case)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (rows[i].op.op_case == op_case)
            return &rows[i];
    return NULL;
}

const ops_op *ops_find(const char *name)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (strcmp(rows[i].op.name, name) == 0)
            return &rows[i].op;
    return NULL;
}

const ops_op *ops_of_call(const ops_call_t *call)
{
    const struct row *w = call ? row_of_case((int)call->op_case) : NULL;
    return w ? &w->op : NULL;
}

const ops_op *ops_at(size_t i)
{
    return i < N_ROWS ? &rows[i].op : NULL;
}

/* The request's own strings: what no handler may meet. */
static int well_formed(const ops_call_t *c)
{
    switch (c->op_case) {
    case C(BALANCE):
        return c->balance && c->balance->party;
    case C(TRACE):
        return c->trace && c->trace->lot;
    case C(PERMIT_SHOW):
        return c->permit_show && c->permit_show->permit;
    case C(HISTORY):
        return c->history && (c->history->party || c->history->lot);
    case C(SPECIAL_REGISTER):
        return c->special_register && c->special_register->party &&
               c->special_register->substance;
    case C(EXPORT):
        return c->export != NULL;
    case C(ALERTS):
        return c->alerts != NULL;
    case C(RECONCILE):
        return c->reconcile != NULL;
    case C(BACKUP):
        return c->backup && c->backup->dest;
    case C(HEAD):
        return c->head != NULL;
    case C(CATALOG):
        return c->catalog != NULL;
    case C(REGIME):
        return c->regime != NULL;
    case C(VERIFY):
        return c->verify != NULL;
    case C(CHECK):
        return c->check && c->check->line;
    case C(PARTIES):
        return c->parties != NULL;
    case C(PRODUCTS):
        return c->products != NULL;
    case C(CREDIT):
        return c->credit && c->credit->party;
    case C(PERMIT_LIST):
        return c->permit_list != NULL;
    case C(APPLICATIONS):
        return c->applications != NULL;
    case C(CHECKPOINT):
        return c->checkpoint != NULL;
    case C(PROVE):
        /* exactly one of PARTY/EVENT-ID, --history, --consistency */
        return c->prove &&
               (c->prove->has_consistency && c->prove->consistency) +
                       (c->prove->history != NULL) +
                       (c->prove->party && c->prove->id) ==
                   1;
    case C(COSIGN):
        return c->cosign && c->cosign->note && c->cosign->witness_vkey;
    default:
        return 0;
    }
}

void ops_continue(ops_cont *c, const ops_call_t *call, uint64_t next,
                  size_t taken)
{
    c->call = *call;
    switch (call->op_case) {
    case C(EXPORT):
        c->u.export_ = *call->export;
        c->u.export_.has_after = 1;
        c->u.export_.after = next;
        c->call.export = &c->u.export_;
        break;
    case C(ALERTS):
        c->u.alerts = *call->alerts;
        c->u.alerts.has_after = 1;
        c->u.alerts.after = next;
        c->call.alerts = &c->u.alerts;
        break;
    case C(HISTORY):
        c->u.history = *call->history;
        c->u.history.has_after = 1;
        c->u.history.after = next;
        if (c->u.history.limit)
            c->u.history.limit =
                c->u.history.limit > taken ? c->u.history.limit - taken : 1;
        c->call.history = &c->u.history;
        break;
    default:
        break;
    }
}

/* The row of a Call that is well formed and that `who` may run: 0 and
 * *out, or the code in st. */
static int admit(struct run *r, const struct row **out)
{
    const struct row *w = r->call ? row_of_case((int)r->call->op_case) : NULL;

    memset(r->st, 0, sizeof(*r->st));
    if (!w)
        return ops_status_set(r->st, 1, "unknown operation");
    if (!well_formed(r->call))
        return ops_status_set(r->st, 1, "%s: a required field is missing",
                              w->op.name);
    *out = w;
    if (r->who && r->who->scopes) {
        /* a department sees only its scopes: what covers the whole
         * ledger is for the root or an unscoped regulator */
        char sc[64];
        trace_scope_names(r->who->scopes, sc, sizeof(sc));
        if (r->call->op_case == C(RECONCILE) || r->call->op_case == C(BACKUP))
            return ops_status_set(r->st, 5,
                                  "permission denied: %s covers the whole "
                                  "ledger; %s works within scopes %s",
                                  w->op.name, r->who->party, sc);
        if (r->call->op_case == C(PROVE) && r->call->prove->history)
            return ops_status_set(r->st, 5,
                                  "permission denied: a party's whole chain "
                                  "is not within scopes %s (prove single "
                                  "events)",
                                  sc);
    }
    return w->check ? w->check(r) : 0;
}

int ops_authorize(trace_ledger *l, const ops_env *env, const ops_principal *who,
                  const ops_call_t *call, ops_status *st)
{
    static const ops_env owner;
    struct run r = {l, env ? env : &owner, who, call, NULL, NULL, st, 0, 0, 0};
    const struct row *w = NULL;

    return admit(&r, &w);
}

int ops_call(trace_ledger *l, const ops_env *env, const ops_principal *who,
             const ops_call_t *call, ops_item_fn fn, void *ctx, ops_status *st)
{
    static const ops_env owner;
    struct run r = {l, env ? env : &owner, who, call, fn, ctx, st, 0, 0, 0};
    const struct row *w = NULL;
    int code;

    if ((code = admit(&r, &w)) != 0)
        return code;
    st->ran = 1;
    r.paged = (w->op.flags & OPS_PAGED) != 0;
    code = w->handler(&r);
    st->code = code;
    if (code == 0)
        st->msg[0] = '\0';
    return code;
}
