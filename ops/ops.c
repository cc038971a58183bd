/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c - the operation table and who may run what.
 *
 * One row per operation (redis's command table): its name, its Call
 * field, flags, a line on rights, the authorization check and the
 * handler.  ops_call() finds the row, runs its check (admit(): every
 * request is authorized there), then its handler; both take the
 * principal.  The rights (reads_party, reads_permit), every row's check
 * and the department filter (emit) are in this file; the handlers that
 * narrow what they read per row (permit show and list, export, alerts,
 * applications) call these predicates, and decide nothing of their own.
 * The handlers are in ops_query.c (the ledger's queries) and
 * ops_checks.c (alerts, reconciliation, credit, check, verify, backup
 * and the log).
 *
 * Rights (SPEC 5): a regulator reads everything; a party reads its own
 * stock and events, the movements of lots it held, and the permits it
 * holds, is the counterparty of, or cited; any party reads the head and
 * the catalog, checkpoints and consistency proofs, and hands in a
 * witness's cosignature (which authenticates the witness).  The owner
 * of a ledger folder (tracectl --data without --as) has every right.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ops.h"
#include "ops_int.h"
#include "trace/query.h"
#include "trace/trace.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x

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
int failed(struct run *r, int rc)
{
    const char *m = trace_error_last();
    return ops_status_set(r->st, trace_error_exit_code(rc), "%s",
                          m[0] ? m : trace_strerror(rc));
}

int denied(struct run *r, const char *fmt, const char *arg)
{
    char m[512];
    snprintf(m, sizeof(m), fmt, arg);
    return ops_status_set(r->st, 5, "permission denied: %s", m);
}

/* 1 if the principal may read `party`'s own data. */
int reads_party(const ops_principal *who, const char *party)
{
    return !who->party || who->regulator ||
           (party && strcmp(who->party, party) == 0);
}

/* The holder, the designated counterparty (or, for a purchase permit
 * without one, any seller, who must check it before selling) and
 * whoever cited it may read a permit. */
int reads_permit(const ops_principal *who, const trace_permit_state *p)
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

int emit(struct run *r, ops_item_t *it)
{
    if (!item_in_scope(r, it))
        return 0; /* not counted: outside the regulator's scopes */
    int rc = r->fn(it, r->ctx);
    if (rc == 0)
        r->rows++;
    return rc;
}

/* Emits a row of a paged operation at position pos. */
int emit_at(struct run *r, ops_item_t *it, uint64_t pos)
{
    int rc = emit(r, it);
    if (rc == 0)
        r->last = pos;
    return rc;
}

/* A stopped query: the callee's code, else the library's error. */
int ended(struct run *r, int rc)
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
/* Who may run what: the rows' checks                                  */

static int check_balance(struct run *r)
{
    const char *p = r->call->balance->party;
    if (!reads_party(r->who, p))
        return denied(r, "the stock of %s is not yours to read", p);
    return 0;
}

static int check_trace(struct run *r)
{
    const char *lot = r->call->trace->lot;
    if (!reads_party(r->who, "") && !trace_lot_held(r->l, lot, r->who->party))
        return denied(r, "%s never held the lot", r->who->party);
    return 0;
}

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

static int check_register(struct run *r)
{
    const char *p = r->call->special_register->party;
    if (!reads_party(r->who, p))
        return denied(r, "the register of %s is not yours to read", p);
    return 0;
}

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

static int check_alerts(struct run *r)
{
    const char *p = r->call->alerts->party;
    if (p && !reads_party(r->who, p))
        return denied(r, "the alerts of %s are not yours to read", p);
    return 0;
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

/* credit: the party itself and regulators (it is published with the
 * enterprise's record) */
static int check_credit(struct run *r)
{
    const Trace__Ops__V1__Credit *x = r->call->credit;
    if (!reads_party(r->who, x->party))
        return denied(r, "the credit of %s is not yours to read", x->party);
    return rules_refused(r, "credit", x->has_rules);
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

/* A party lists the permits it holds or is the named counterparty of
 * (permit show, not the list, serves a seller checking a buyer's). */
static int check_permit_list(struct run *r)
{
    const char *h = r->call->permit_list->holder;
    if (h && !reads_party(r->who, h))
        return denied(r, "the permits of %s are not yours to list", h);
    return 0;
}

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
