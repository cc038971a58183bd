/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_spec12.c - the rules of SPEC section 12: SPLIT_PURCHASE,
 * PARCEL_CHECK_MISSING, CUSTODY_GAP, TRANSIT_OVERDUE and
 * APPLICATION_OVERDUE (the table is in rules.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "rules_int.h"

/* SPLIT_PURCHASE (SPEC 12): one buyer's purchases of one substance from
 * at least K sellers within D days, each below its category's threshold,
 * together reaching it.  Walked per (buyer, substance) in time order with
 * a sliding window; the window's purchases are the evidence, and once
 * raised the walk starts afresh after them, so one splitting gives one
 * alert. */
struct split {
    struct walk w; /* first: push_change grows it */
    size_t start;
    double sum; /* of purchases [start, n) */
};

static double split_threshold(const struct run *r, const struct cfg *c,
                              const rec *e)
{
    /* the class's threshold parameter (regime table) */
    int k = rec_class(r->l, e)->split;
    int64_t factor = 1;
    if (k < 0 || !e->sub || e->sub->dim == DIM_COUNT)
        return 0;
    /* thresholds are given in kg (category 3 volumes in L) */
    unit_lookup(e->sub->dim == DIM_VOLUME ? "L" : "kg", NULL, &factor);
    return c->p[2 + k] * (double)factor;
}

int rule_split(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(16);
    int64_t window = (int64_t)(c->p[1] * (double)US_PER_DAY);
    size_t min_sellers = c->p[0] < 2 ? 2 : (size_t)c->p[0];
    struct walks ws = {strmap_new(sizeof(struct split)), NULL, 0, 0};
    char key[KEY_MAX];
    int rc = TRACE_OK;

    if (!ws.m)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        struct split *sp;
        double limit = e->kind == TRACE__V1__EVENT__BODY_SALE_BODY
                           ? split_threshold(r, c, e)
                           : 0;
        if (limit <= 0 || (double)e->qty >= limit)
            continue; /* a purchase at the threshold is no split */
        snprintf(key, sizeof(key), "%s\x01%s", e->to, e->substance);
        if ((rc = push_change(r, &ws, key, (struct change){e, e->qty, 0, 0})))
            break;
        sp = strmap_get(ws.m, key, 0);
        sp->sum += (double)e->qty;
        while (sp->start < sp->w.n && e->at - sp->w.c[sp->start].e->at > window)
            sp->sum -= (double)sp->w.c[sp->start++].delta;
        double total = sp->sum;
        size_t sellers = 0, n = sp->w.n - sp->start;
        if (total < limit)
            continue;
        /* distinct sellers of the window (interned: compared as pointers) */
        for (size_t j = sp->start; j < sp->w.n && sellers < min_sellers; j++) {
            int seen = 0;
            for (size_t k = sp->start; k < j && !seen; k++)
                seen = sp->w.c[k].e->party == sp->w.c[j].e->party;
            sellers += !seen;
        }
        if (sellers < min_sellers ||
            !scope_complete(r, SCOPE_ORDERS, e->to, e->substance))
            continue;
        for (size_t j = sp->start, k2 = 0; j < sp->w.n; j++) {
            int seen = 0;
            for (size_t k = sp->start; k < j && !seen; k++)
                seen = sp->w.c[k].e->party == sp->w.c[j].e->party;
            k2 += !seen;
            sellers = k2;
        }
        const rec **ev = arena_alloc(r->a, n * sizeof(*ev));
        if (!ev) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; j < n; j++)
            ev[j] = sp->w.c[sp->start + j].e;
        rc = RAISE(r, ev, n, e->to, NULL, e->substance, NULL, NULL,
                   "%s bought %s %s of %s from %zu sellers in %zu purchases "
                   "within %.0f days, each below the %s %s threshold",
                   e->to, fmt_qty(r, (int64_t)total, e->unit), e->unit,
                   e->substance, sellers, n, c->p[1],
                   fmt_qty(r, (int64_t)limit, e->unit), e->unit);
        sp->start = sp->w.n; /* one splitting, one alert */
        sp->sum = 0;
    }
    walks_free(&ws);
    return rc;
}

/* PARCEL_CHECK_MISSING (SPEC 12, 三个100%): a parcel accepted without
 * one of the three checks; one alert per parcel naming which. */
int rule_parcel(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(17);
    int rc = TRACE_OK;

    (void)c;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        if (e->kind != TRACE__V1__EVENT__BODY_PARCEL_BODY ||
            e->pchecks == (PCHECK_SENDER | PCHECK_OPENED | PCHECK_SCANNED))
            continue;
        rc = RAISE(
            r, &e, 1, e->party, NULL, NULL, NULL, NULL,
            "parcel %s at outlet %s accepted%s%s%s", e->waybill, e->outlet,
            e->pchecks & PCHECK_SENDER ? ""
                                       : ", sender not verified by real name",
            e->pchecks & PCHECK_OPENED ? "" : ", not opened for inspection",
            e->pchecks & PCHECK_SCANNED ? "" : ", not X-rayed");
    }
    return rc;
}

/* CUSTODY_GAP and TRANSIT_OVERDUE (SPEC 12, carriers).
 *
 * CUSTODY_GAP, one alert per sale naming a carrier with no pickup citing
 * it within `pickup_hours` of its `at` (once the as-of time is past that;
 * a late pickup is named in the detail), evidence the sale; and one per
 * receipt of such a sale that has custody events but no delivery citing
 * it at or before the receipt's `at`, evidence the sale and the receipt
 * (a sale with no custody event at all is the first gap, not two).
 *
 * TRANSIT_OVERDUE, one alert per sale with a pickup, once the as-of time
 * is `transit_hours` past its first pickup: its first delivery came
 * later than that, or none came; evidence the pickup, either way, so a
 * delivery arriving after the alert does not make a second one.
 *
 * A partial run judges a sale only when every event citing it is loaded
 * (SCOPE_CITED); a sale or pickup whose window is still open keeps its
 * lot open for the next incremental run. */
int rule_custody(struct run *r, const struct cfg *c)
{
    const struct rule *gap = RULE(18), *overdue = RULE(19);
    int64_t w_pick = (int64_t)(r->cfg[18].p[0] * (double)US_PER_HOUR);
    int64_t w_transit = (int64_t)(r->cfg[19].p[0] * (double)US_PER_HOUR);
    int rc;

    (void)c;
    if ((rc = custody_build(r)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const rec *pick = NULL, *late = NULL, *deliv = NULL;
        uint32_t cfirst;

        if (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY && e->carrier &&
            r->cfg[18].enabled) {
            if (!scope_complete(r, SCOPE_CITED, e->party, e->id))
                continue;
            cfirst = custody_first(r, e->party, e->id);
            for (uint32_t j = cfirst; j && !pick; j = r->cnext[j - 1]) {
                const rec *x = r->by_at[j - 1];
                if (x->kind != TRACE__V1__EVENT__BODY_PICKUP_BODY)
                    continue;
                if (x->at - e->at <= w_pick)
                    pick = x;
                else if (!late)
                    late = x;
            }
            if (pick)
                continue;
            if (r->as_of <= e->at + w_pick) { /* still open */
                rc = inc_keep_open(r, 'L', e->lot);
                continue;
            }
            if (late)
                rc = raise_alert(
                    r, gap, &e, 1, e->party, e->carrier, e->substance, e->lot,
                    NULL,
                    "sale %s names carrier %s, whose first pickup %s came "
                    "%.1f h after it (allowed %.0f h)",
                    e->id, e->carrier, late->id,
                    (double)(late->at - e->at) / (double)US_PER_HOUR,
                    r->cfg[18].p[0]);
            else
                rc = raise_alert(r, gap, &e, 1, e->party, e->carrier,
                                 e->substance, e->lot, NULL,
                                 "sale %s names carrier %s, but no pickup "
                                 "cites it within %.0f h",
                                 e->id, e->carrier, r->cfg[18].p[0]);
        } else if (e->kind == TRACE__V1__EVENT__BODY_RECEIPT_BODY && e->from &&
                   e->ref && r->cfg[18].enabled) {
            const rec *sale;
            if (!(cfirst = custody_first(r, e->from, e->ref)) ||
                !(sale = find_rec(r, e->from, e->ref)) ||
                sale->kind != TRACE__V1__EVENT__BODY_SALE_BODY ||
                !sale->carrier ||
                !scope_complete(r, SCOPE_CITED, e->from, e->ref))
                continue;
            for (uint32_t j = cfirst; j && !deliv; j = r->cnext[j - 1]) {
                const rec *x = r->by_at[j - 1];
                if (x->kind == TRACE__V1__EVENT__BODY_DELIVERY_BODY &&
                    x->at <= e->at)
                    deliv = x;
            }
            if (deliv)
                continue;
            const rec *ev[2] = {sale, e};
            rc = raise_alert(r, gap, ev, 2, sale->party, e->party, e->substance,
                             e->lot, NULL,
                             "receipt %s of sale %s (carrier %s): no delivery "
                             "cites the sale at or before it",
                             e->id, sale->id, sale->carrier);
        } else if (e->kind == TRACE__V1__EVENT__BODY_PICKUP_BODY && e->from &&
                   e->ref && r->cfg[19].enabled) {
            if (!scope_complete(r, SCOPE_CITED, e->from, e->ref))
                continue;
            cfirst = custody_first(r, e->from, e->ref);
            /* judged once, at the sale's first pickup */
            for (uint32_t j = cfirst; j && !pick; j = r->cnext[j - 1])
                if (r->by_at[j - 1]->kind == TRACE__V1__EVENT__BODY_PICKUP_BODY)
                    pick = r->by_at[j - 1];
            if (pick != e)
                continue;
            for (uint32_t j = cfirst; j && !deliv; j = r->cnext[j - 1])
                if (r->by_at[j - 1]->kind ==
                    TRACE__V1__EVENT__BODY_DELIVERY_BODY)
                    deliv = r->by_at[j - 1];
            if (deliv && deliv->at - e->at <= w_transit)
                continue;
            if (r->as_of <= e->at + w_transit) { /* still open */
                rc = inc_keep_open(r, 'L', e->lot);
            } else if (deliv) {
                rc = raise_alert(
                    r, overdue, &e, 1, e->party, e->from, e->substance, e->lot,
                    NULL,
                    "sale %s of %s: delivery %s came %.1f h after pickup %s "
                    "(allowed %.0f h)",
                    e->ref, e->from, deliv->id,
                    (double)(deliv->at - e->at) / (double)US_PER_HOUR, e->id,
                    r->cfg[19].p[0]);
            } else {
                rc = raise_alert(r, overdue, &e, 1, e->party, e->from,
                                 e->substance, e->lot, NULL,
                                 "sale %s of %s: no delivery %.0f h after "
                                 "pickup %s by %s",
                                 e->ref, e->from, r->cfg[19].p[0], e->id,
                                 e->party);
            }
        }
    }
    return rc;
}

/* APPLICATION_OVERDUE (SPEC 12, 网上审批): an application with neither a
 * permit citing it nor a decision by the end of the N-th working day
 * after the day it was made, once the run's time is past that.  An
 * application whose answer is not due yet is kept for the next
 * incremental run ('A'). */
int rule_app_overdue(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(20);
    int days = (int)c->p[0];
    strmap *answered = NULL; /* party \x01 id -> earliest answer's at + 1 */
    const rec **apps = NULL; /* the applications, in journal order */
    size_t n_apps = 0, cap = 0;
    char key[KEY_MAX];
    int rc = TRACE_OK;

    /* one pass in memory order (most ledgers hold none of these) */
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = &r->recs[i];
        int64_t *first;
        if (e->kind == TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY) {
            if (n_apps == cap) {
                size_t nc = cap ? cap * 2 : 64;
                const rec **p = realloc(apps, nc * sizeof(*p));
                if (!p) {
                    rc = trace_fail(TRACE_ENOMEM, "out of memory");
                    break;
                }
                apps = p;
                cap = nc;
            }
            apps[n_apps++] = e;
            continue;
        }
        if ((e->kind != TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY &&
             e->kind != TRACE__V1__EVENT__BODY_PERMIT_BODY) ||
            !e->app_id || !e->app_party)
            continue;
        snprintf(key, sizeof(key), "%s\x01%s", e->app_party, e->app_id);
        if ((!answered && !(answered = strmap_new(sizeof(int64_t)))) ||
            !(first = strmap_get(answered, key, 1))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            break;
        }
        if (!*first || e->at + 1 < *first)
            *first = e->at + 1;
    }
    for (size_t i = 0; i < n_apps && rc == TRACE_OK; i++) {
        const rec *e = apps[i];
        const int64_t *first;
        char due[11];
        int64_t deadline;
        if (!scope_complete(r, SCOPE_APP, e->party, e->id))
            continue;
        snprintf(key, sizeof(key), "%s\x01%s", e->party, e->id);
        deadline = workday_deadline(e->at, r->l->tz_offset_min, days, due);
        if (r->as_of <= deadline) {
            rc = inc_keep_open(r, 'A', key);
            continue;
        }
        first = answered ? strmap_get(answered, key, 0) : NULL;
        if (first && *first - 1 <= deadline)
            continue;
        rc = RAISE(r, &e, 1, e->party, NULL, e->substance, NULL, NULL,
                   "application %s of %s (%s) has neither a permit nor a "
                   "decision after %d working days (due by the end of %s)%s",
                   e->id, e->party, e->substance ? e->substance : "?", days,
                   due, first ? "; answered late" : "");
    }
    free(apps);
    strmap_free(answered);
    return rc;
}
