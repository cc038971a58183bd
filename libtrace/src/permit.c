/* SPDX-License-Identifier: Apache-2.0 */
/*
 * permit.c - permit state and write-off.
 *
 * The append transaction files every citation of a permit (and every
 * status change) in the pev index; this module judges them.  Citations
 * are judged in `at` order, so the outcome does not depend on the order
 * in which events were imported: a single-use permit counts its first
 * use in time, and a status change applies from its own `at`.
 *
 * Which permit kinds a movement accepts depends on the substance's
 * control class in the ledger's regime: the regime table (regime.c,
 * data/regimes.json), not code paths.
 *
 * Write-offs are added with checked arithmetic: valid citations may sum
 * beyond an int64 (each is at most the ledger's ceiling, but nothing
 * bounds their number), and then `used` is reported as a bound
 * (used_overflow, query.h), never wrapped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const role_names[] = {
    [PEV_STATUS] = "status",       [PEV_PURCHASE] = "purchase",
    [PEV_TRANSPORT] = "transport", [PEV_IMPORT] = "import",
    [PEV_EXPORT] = "export",
};

int subst_has_scope(const subst_info *s, const char *scope)
{
    for (size_t i = 0; s && i < s->n_scopes; i++)
        if (strcmp(s->scopes[i], scope) == 0)
            return 1;
    return 0;
}

/* The ledger's regime table says which kinds a movement of the
 * substance's control class accepts (regime.c). */
static int kind_accepted(const trace_ledger *l, const subst_info *s,
                         uint8_t role, const char *kind)
{
    static const int move_of[] = {
        [PEV_PURCHASE] = MOVE_SALE,
        [PEV_TRANSPORT] = MOVE_TRANSPORT,
        [PEV_IMPORT] = MOVE_IMPORT,
        [PEV_EXPORT] = MOVE_EXPORT,
    };
    if (role < PEV_PURCHASE || role > PEV_EXPORT)
        return 0;
    return regime_accepts(regime_class_of(l->regime, s), move_of[role], kind);
}

/* Who must hold the permit and who must be its counterparty. */
static void parties_for(const Trace__V1__Event *ev, uint8_t role,
                        const char **holder, const char **counterparty)
{
    *holder = ev->party;
    *counterparty = NULL;
    if (ev->body_case != TRACE__V1__EVENT__BODY_SALE_BODY)
        return;
    if (role == PEV_PURCHASE) {
        *holder = ev->sale_body->to;
        *counterparty = ev->party;
    } else {
        *counterparty = ev->sale_body->to;
    }
}

/* Why a citation does not count, or NULL if it does. */
static const char *judge(const trace_ledger *l, const Trace__V1__PermitBody *p,
                         const char *status, const Trace__V1__Event *ev,
                         uint8_t role, int used_before)
{
    const subst_info *ps = catalog_find(l->cat, p->substance);
    const char *sub = msg_field(event_body(ev), "substance");
    const char *holder, *cp;

    if (status && strcmp(status, "active") != 0)
        return status; /* suspended, revoked, exhausted */
    if (ev->at->us < p->valid_from->us)
        return "not yet valid";
    if (ev->at->us > time_end_us(p->valid_until, l->tz_offset_min))
        return "expired";
    parties_for(ev, role, &holder, &cp);
    if (strcmp(p->holder, holder) != 0)
        return "held by another party";
    if (p->counterparty && cp && strcmp(p->counterparty, cp) != 0)
        return "for another counterparty";
    if (!sub || catalog_find(l->cat, sub) != ps)
        return "for another substance";
    if (!kind_accepted(l, ps, role, p->kind))
        return "wrong kind of permit for this movement";
    if (used_before && strcmp(p->uses, "single") == 0)
        return "single-use permit already used";
    return NULL;
}

struct rec {
    uint64_t seq;
    uint8_t role;
    Trace__V1__Event *ev;
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->ev->at->us != y->ev->at->us)
        return x->ev->at->us < y->ev->at->us ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* "<sign><text>": a bound, for sums beyond an int64. */
static const char *bound_text(arena *a, char sign, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    char *p = text ? arena_alloc(a, n + 2) : NULL;
    if (p) {
        p[0] = sign;
        memcpy(p + 1, text, n + 1);
    }
    return p;
}

int trace_permit_show(trace_ledger *l, const char *permit, int64_t at_us,
                      trace_permit_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = {strlen(permit), (void *)permit}, v;
    arena *a = arena_new(0);
    Trace__V1__Event *issue;
    const Trace__V1__PermitBody *p;
    trace_permit_state st = {0};
    trace_permit_use *uses = NULL;
    struct rec *recs = NULL;
    size_t n = 0, nrec = 0, caprec = 0, valid_uses = 0;
    const char *status = NULL;
    int64_t now = at_us == TRACE_AT_NOW ? time_now_us() : at_us;
    int rc;

    if (!a)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (strlen(permit) > TRACE_MAX_STRING) {
        rc = trace_fail(TRACE_EINVAL, "permit id too long");
        goto out;
    }
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    rc = mdb_get(txn, l->dbi_permits, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = trace_fail(TRACE_ENOTFOUND, "unknown permit %s", permit);
        goto out;
    }
    if (rc) {
        rc = trace_fail_mdb(rc, "permits");
        goto out;
    }
    if ((rc = load_effective(txn, l, a, be64_get(v.mv_data), &issue)))
        goto out;
    if (issue->body_case != TRACE__V1__EVENT__BODY_PERMIT_BODY) {
        rc = trace_fail(TRACE_EVERIFY, "permit index is damaged");
        goto out;
    }
    p = issue->permit_body;
    st.budget = p->qty->amount;
    if ((rc = mdb_cursor_open(txn, l->dbi_pev, &cur))) {
        rc = trace_fail_mdb(rc, "pev");
        goto out;
    }
    /* Collect the citations and status changes, then judge them in `at`
     * order. */
    k = (MDB_val){strlen(permit), (void *)permit};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != 9)
            continue;
        if (nrec == caprec) {
            size_t nc = caprec ? caprec * 2 : 8;
            struct rec *nr = arena_alloc(a, nc * sizeof(*nr));
            if (!nr) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                goto out;
            }
            if (nrec)
                memcpy(nr, recs, nrec * sizeof(*nr));
            recs = nr;
            caprec = nc;
        }
        recs[nrec].seq = be64_get(v.mv_data);
        recs[nrec].role = ((uint8_t *)v.mv_data)[8];
        nrec++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = trace_fail_mdb(rc, "pev");
        goto out;
    }
    for (size_t i = 0; i < nrec; i++)
        if ((rc = load_effective(txn, l, a, recs[i].seq, &recs[i].ev)))
            goto out;
    if (nrec)
        qsort(recs, nrec, sizeof(*recs), cmp_rec);
    if (nrec && !(uses = arena_alloc(a, nrec * sizeof(*uses)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nrec; i++) {
        const Trace__V1__Event *ev = recs[i].ev;
        uint8_t role = recs[i].role;

        if (ev->at->us > at_us)
            break;
        if (role == PEV_STATUS) {
            status = ev->permit_status_body->status;
            continue;
        }
        if (role < PEV_PURCHASE || role > PEV_EXPORT)
            continue;
        trace_permit_use *u = &uses[n++];
        const Trace__V1__Quantity *q = msg_field(event_body(ev), "qty");
        memset(u, 0, sizeof(*u));
        u->party = ev->party;
        u->event = ev->id;
        u->role = role_names[role];
        u->at_us = ev->at->us;
        u->at_text = format_time(a, ev->at);
        u->qty = q ? q->amount : 0;
        u->qty_text = format_qty(a, u->qty, p->qty->unit);
        u->reason = judge(l, p, status, ev, role, valid_uses > 0);
        u->valid = u->reason == NULL;
        if (u->valid) {
            valid_uses++;
            if (!st.used_overflow && qty_add(&st.used, st.used, u->qty)) {
                st.used_overflow = 1; /* stays a bound from here on */
                st.used = INT64_MAX;
            }
        }
    }
    st.permit = p->permit;
    st.kind = p->kind;
    st.holder = p->holder;
    st.counterparty = p->counterparty;
    st.substance = canonical_substance(l, p->substance);
    st.uses = p->uses;
    st.issuer = issue->party;
    st.issue_event = issue->id;
    st.valid_from = format_time(a, p->valid_from);
    st.valid_until = format_time(a, p->valid_until);
    st.unit = p->qty->unit;
    if (qty_sub(&st.remaining, st.budget, st.used)) {
        st.used_overflow = 1; /* only with a damaged budget */
        st.remaining = INT64_MIN;
    }
    st.budget_text = format_qty(a, st.budget, st.unit);
    st.used_text = format_qty(a, st.used, st.unit);
    st.remaining_text = format_qty(a, st.remaining, st.unit);
    if (st.used_overflow) {
        st.used_text = bound_text(a, '>', st.used_text);
        st.remaining_text = bound_text(a, '<', st.remaining_text);
        if (!st.used_text || !st.remaining_text) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (status && strcmp(status, "active") != 0)
        st.status = status;
    else if (now > time_end_us(p->valid_until, l->tz_offset_min))
        st.status = "expired";
    else if (now < p->valid_from->us)
        st.status = "not_yet_valid";
    else if (st.remaining <= 0 ||
             (strcmp(p->uses, "single") == 0 && valid_uses > 0))
        st.status = "exhausted";
    else
        st.status = "active";
    st.n_uses = n;
    st.use = uses;
    rc = fn(&st, ctx);
out:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}
