/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_party.c - the rules on what parties order, whom they deal with and
 * what they report: UNUSUAL_ORDER, UNLICENSED_PARTY, DESTROY_UNWITNESSED,
 * LOSS_REPORTED and LATE_REPORT (SPEC section 4; the table is in rules.c).
 */
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

/* Registration of a party as of a time. */
struct snapshot {
    int64_t at;
    uint64_t seq;
    const rec *ev; /* the party event */
};

struct pstate {
    struct snapshot *s;
    size_t n, cap;
};

static const rec *party_at(struct run *r, strmap *parties, const char *party,
                           int64_t at)
{
    struct pstate *ps = strmap_get(parties, party, 0);
    const rec *found = NULL;
    (void)r;
    for (size_t i = 0; ps && i < ps->n; i++)
        if (ps->s[i].at <= at)
            found = ps->s[i].ev;
    return found;
}

static int party_history(struct run *r, strmap **out)
{
    strmap *m = strmap_new(sizeof(struct pstate));
    if (!m)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        rec *e = r->by_at[i];
        struct pstate *ps;
        if (e->kind != TRACE__V1__EVENT__BODY_PARTY_BODY)
            continue;
        if (!(ps = strmap_get(m, e->subject, 1)))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (ps->n == ps->cap) {
            size_t nc = ps->cap ? ps->cap * 2 : 4;
            struct snapshot *p = arena_alloc(r->a, nc * sizeof(*p));
            if (!p)
                return trace_fail(TRACE_ENOMEM, "out of memory");
            if (ps->n)
                memcpy(p, ps->s, ps->n * sizeof(*p));
            ps->s = p;
            ps->cap = nc;
        }
        ps->s[ps->n++] = (struct snapshot){e->at, e->seq, e};
    }
    *out = m;
    return TRACE_OK;
}

static void free_parties(strmap *m)
{
    strmap_free(m); /* snapshots live in the run arena */
}

static int has_license(const rec *p, const char *scope)
{
    for (size_t i = 0; i < p->n_licenses; i++)
        if (strcmp(p->licenses[i], scope) == 0)
            return 1;
    return 0;
}

/* UNUSUAL_ORDER: orders are sales to a buyer of a substance.  Each
 * (buyer, substance) keeps its orders in time order with a sliding
 * one-year window and its running sum. */
struct orders {
    struct walk w;
    size_t start; /* first order inside the window */
    double sum;   /* of orders [start, n) */
};

int rule_unusual(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(8);
    int64_t year = 365 * US_PER_DAY;
    struct walks ws = {strmap_new(sizeof(struct orders)), NULL, 0, 0};
    char key[KEY_MAX];
    int rc = TRACE_OK;

    if (!ws.m)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        struct orders *o;
        if (e->kind != TRACE__V1__EVENT__BODY_SALE_BODY)
            continue;
        snprintf(key, sizeof(key), "%s\x01%s", e->to, e->substance);
        if (!(o = strmap_get(ws.m, key, 1))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            break;
        }
        while (o->start < o->w.n && e->at - o->w.c[o->start].e->at > year)
            o->sum -= (double)o->w.c[o->start++].delta;
        size_t n = o->w.n - o->start;
        if (n >= (size_t)c->p[1] && o->sum > 0 &&
            (double)e->qty * (double)n > c->p[0] * o->sum &&
            scope_complete(r, SCOPE_ORDERS, e->to, e->substance))
            rc = RAISE(r, &e, 1, e->to, e->party, e->substance, e->lot, NULL,
                       "order %s of %s %s is %.1f times %s's mean order over "
                       "the past year (%zu orders)",
                       e->id, fmt_qty(r, e->qty, e->unit), e->unit,
                       (double)e->qty * (double)n / o->sum, e->to, n);
        /* struct orders begins with its walk, so push_change can grow it */
        if (rc == TRACE_OK)
            rc = push_change(r, &ws, key, (struct change){e, e->qty, 0, 0});
        o->sum += (double)e->qty;
    }
    walks_free(&ws);
    return rc;
}

/* UNLICENSED_PARTY: the buyer of a sale, the seller named by a receipt. */
int rule_unlicensed(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(9);
    strmap *parties;
    int rc;

    (void)c;
    if ((rc = party_history(r, &parties)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const char *who, *why = NULL;
        if (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY)
            who = e->to;
        else if (e->kind == TRACE__V1__EVENT__BODY_RECEIPT_BODY)
            who = e->from;
        else
            continue;
        const rec *p = party_at(r, parties, who, e->at);
        /* the licence scope the regime asks of the class (regime.c) */
        const char *need = rec_class(r->l, e)->licence;
        if (!p)
            why = "is not registered";
        else if (p->pstatus && strcmp(p->pstatus, "suspended") == 0)
            why = "is suspended";
        else if (need && !has_license(p, need))
            why = "lacks the licence scope";
        if (!why)
            continue;
        rc = RAISE(r, &e, 1, who, e->party, e->substance, e->lot, NULL,
                   "%s %s%s%s for %s (%s %s)", who, why,
                   why[0] == 'l' ? " " : "", why[0] == 'l' ? need : "",
                   e->substance, rec_type(e), e->id);
    }
    free_parties(parties);
    return rc;
}

int rule_destroy(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(10);
    strmap *parties;
    int rc;

    (void)c;
    if ((rc = party_history(r, &parties)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const rec *w;
        const char *why = NULL;
        if (e->kind != TRACE__V1__EVENT__BODY_DESTROY_BODY)
            continue;
        if (!e->witness)
            why = "names no witness";
        else if (!(w = party_at(r, parties, e->witness, e->at)) &&
                 strcmp(e->witness, r->l->regulator) != 0)
            why = "names an unregistered witness";
        else if (w && (strcmp(w->pkind, "regulator") != 0 ||
                       (w->pstatus && strcmp(w->pstatus, "suspended") == 0)))
            why = "names a witness who is not an active regulator";
        else if (w && w->pscopes && strcmp(e->witness, r->l->regulator) != 0 &&
                 !trace_in_scope(r->l, w->pscopes, NULL, e->substance))
            why = "names a regulator whose scopes do not cover the "
                  "substance as witness";
        if (why)
            rc = RAISE(r, &e, 1, e->party, e->witness, e->substance, e->lot,
                       NULL, "destruction %s of %s %s %s", e->id,
                       fmt_qty(r, e->qty, e->unit), e->unit, why);
    }
    free_parties(parties);
    return rc;
}

int rule_loss(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(11);
    int rc = TRACE_OK;
    (void)c;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        if (e->kind == TRACE__V1__EVENT__BODY_LOSS_BODY)
            rc = RAISE(r, &e, 1, e->party, NULL, e->substance, e->lot, NULL,
                       "%s of %s %s of %s lot %s (%s)", e->reason,
                       fmt_qty(r, e->qty, e->unit), e->unit, e->substance,
                       e->lot, e->id);
    }
    return rc;
}

int rule_late(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(12);
    int rc = TRACE_OK;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        int d;
        double days;
        if (e->kind != TRACE__V1__EVENT__BODY_SALE_BODY || e->historic)
            continue;
        d = rec_class(r->l, e)->deadline;
        /* the class's deadline parameter (regime table); drug_days 0: off */
        if (d < 0 || (d == 2 && c->p[2] <= 0))
            continue;
        days = c->p[d];
        if ((double)(e->recorded - e->at) > days * (double)US_PER_DAY)
            rc = RAISE(r, &e, 1, e->party, e->to, e->substance, e->lot, NULL,
                       "sale %s recorded %.1f days after it happened "
                       "(deadline %.0f days)",
                       e->id, (double)(e->recorded - e->at) / US_PER_DAY, days);
    }
    return rc;
}
