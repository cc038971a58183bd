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
 * the catalog.  The owner of a ledger folder (tracectl --data without
 * --as) has every right.
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

#include "ops.h"
#include "trace/query.h"
#include "trace/trace.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x

/* What a handler shares with its library callbacks. */
struct run {
    trace_ledger *l;
    const ops_principal *who;
    const ops_call_t *call;
    ops_item_fn fn;
    void *ctx;
    ops_status *st;
    size_t rows;
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

static int emit(struct run *r, ops_item_t *it)
{
    int rc = r->fn(it, r->ctx);
    r->rows++;
    return rc;
}

/* A stopped query: the callee's code, else the library's error. */
static int ended(struct run *r, int rc)
{
    if (rc == TRACE_OK)
        return 0;
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
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_EVENT;
    it.event = &m;
    return emit(r, &it);
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
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_SUBSTANCE;
    it.substance = &m;
    return emit(r, &it);
}

static int run_catalog(struct run *r)
{
    return ended(r, trace_ledger_substances(r->l, on_substance, r));
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
    {{"history", C(HISTORY), OPS_READ,
      "the party itself, parties that held the lot, regulators"},
     check_history,
     run_history},
    {{"head", C(HEAD), OPS_READ, "any registered party"}, NULL, run_head},
    {{"catalog", C(CATALOG), OPS_READ, "any registered party"},
     NULL,
     run_catalog},
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
static int well_formed(const ops_call_t *c, ops_status *st)
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
    case C(HEAD):
    case C(CATALOG):
        return 1;
    default:
        (void)st;
        return 0;
    }
}

int ops_call(trace_ledger *l, const ops_principal *who, const ops_call_t *call,
             ops_item_fn fn, void *ctx, ops_status *st)
{
    const struct row *w = call ? row_of_case((int)call->op_case) : NULL;
    struct run r = {l, who, call, fn, ctx, st, 0};
    int code;

    memset(st, 0, sizeof(*st));
    if (!w)
        return ops_status_set(st, 1, "unknown operation");
    if (!well_formed(call, st))
        return ops_status_set(st, 1, "%s: a required field is missing",
                              w->op.name);
    if (w->check && (code = w->check(&r)) != 0)
        return code;
    st->ran = 1;
    code = w->handler(&r);
    st->code = code;
    if (code == 0)
        st->msg[0] = '\0';
    return code;
}
