/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops_query.c - the handlers of the ledger's queries: stock, a lot's
 * trace, permits, history, the head, catalog and regime, the special
 * register, export, the registry, products and applications.
 *
 * Handlers turn the library's borrowed structs into Items on the stack
 * (the strings stay borrowed) and pass them on through emit() (ops.c);
 * they keep no state between calls and touch no global, so traced runs
 * them on all workers at once.  Who may run them is decided in ops.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ops_int.h"
#include "trace/query.h"
#include "trace/trace.h"

/* ------------------------------------------------------------------ */
/* balance                                                              */

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

int run_balance(struct run *r)
{
    const Trace__Ops__V1__Balance *b = r->call->balance;
    int64_t at = b->has_at_us ? b->at_us : TRACE_AT_NOW;

    trace_party_name(r->l, b->party, r->st->name, sizeof(r->st->name));
    return ended(
        r, trace_balance(r->l, b->party, at, b->substance, on_holding, r));
}

/* ------------------------------------------------------------------ */
/* trace                                                                */

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

int run_trace(struct run *r)
{
    const Trace__Ops__V1__Trace *t = r->call->trace;
    return ended(r, trace_lot(r->l, t->lot, t->party,
                              t->backward ? TRACE_BACKWARD : TRACE_FORWARD,
                              on_hop, r));
}

/* ------------------------------------------------------------------ */
/* permit show                                                          */

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

int run_permit(struct run *r)
{
    const Trace__Ops__V1__PermitShow *p = r->call->permit_show;
    int64_t at = p->has_at_us ? p->at_us : TRACE_AT_NOW;
    return ended(r, trace_permit_show(r->l, p->permit, at, on_permit, r));
}

/* ------------------------------------------------------------------ */
/* history                                                              */

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

int run_history(struct run *r)
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

int run_head(struct run *r)
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

int run_catalog(struct run *r)
{
    return ended(r, trace_ledger_substances(r->l, on_substance, r));
}

/* regime: one row, the regime and the table the ledger stores */
int run_regime(struct run *r)
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

int run_register(struct run *r)
{
    const Trace__Ops__V1__Register *g = r->call->special_register;

    trace_party_name(r->l, g->party, r->st->name, sizeof(r->st->name));
    return ended(r, trace_register(r->l, g->party, g->substance, g->from_us,
                                   g->to_us, on_day, r));
}

/* ------------------------------------------------------------------ */
/* export                                                               */

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

int run_export(struct run *r)
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
int run_parties(struct run *r)
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
int run_products(struct run *r)
{
    return ended(
        r, trace_products(r->l, r->call->products->substance, on_product, r));
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

int run_applications(struct run *r)
{
    const Trace__Ops__V1__Applications *x = r->call->applications;
    /* a party without --party: its own */
    const char *p = x->party                  ? x->party
                    : reads_party(r->who, "") ? NULL
                                              : r->who->party;
    int64_t now = x->has_now_us ? x->now_us : TRACE_AT_NOW;
    return ended(r, trace_applications(r->l, p, now, on_application, r));
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

int run_permit_list(struct run *r)
{
    return ended(r, trace_permit_ids(r->l, each_permit, r));
}
