/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - the reconciliation rules of SPEC section 4, one function per
 * rule (or per group of rules that share a walk over the events), and the
 * table that names them with their default severities and thresholds.
 *
 * Every function reads the run's compact records (reconcile_int.h), in
 * `at` order (ties in journal order) through r->by_at, and reports through
 * RAISE().  Grouping is done by sorting interned pointers rather than by
 * hashing strings per event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* ------------------------------------------------------------------ */
/* Helpers for rules                                                    */

char *fmt_qty(struct run *r, int64_t amount, const char *unit)
{
    return format_qty(r->a, amount, unit);
}

/* ------------------------------------------------------------------ */
/* Rules                                                                */

/* Grouping without sorting: items 0..n-1 with 64-bit hashes and an
 * equality test are given group numbers by an open-addressing table, then
 * placed group after group by a counting sort.  Groups come in the order
 * of their first item and keep their items in item order, so callers that
 * feed items in `at` order get each group in `at` order. */

uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

int group_items(size_t n, const uint64_t *hash, same_fn same, const void *ctx,
                uint32_t *perm)
{
    /* a slot: 1 + the group's first item in the low 32 bits (0: empty),
     * the high 32 bits of its hash above them; 8 bytes a slot keeps the
     * table of a 10M-item run at 256 MiB (every byte of it is a page
     * the kernel zeroes first) */
    size_t cap = 16, n_groups = 0;
    uint64_t *t;
    uint32_t *group, *start;

    if (n >= UINT32_MAX)
        return trace_fail(TRACE_EINVAL, "too many events for one run");
    while (cap < 2 * n)
        cap *= 2;
    group = big_alloc((n + 1) * sizeof(*group));
    t = big_alloc(cap * sizeof(*t));
    if (!t || !group) {
        big_free(t);
        big_free(group);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t tag = hash[i] & 0xffffffff00000000ULL;
        size_t j = hash[i] & (cap - 1);
        while (t[j] && !((t[j] & 0xffffffff00000000ULL) == tag &&
                         same(ctx, (size_t)(uint32_t)t[j] - 1, i)))
            j = (j + 1) & (cap - 1);
        if (!t[j]) {
            t[j] = tag | (uint64_t)(i + 1);
            group[i] = (uint32_t)n_groups++;
        } else {
            group[i] = group[(uint32_t)t[j] - 1];
        }
    }
    big_free(t);
    if (!(start = big_alloc((n_groups + 1) * sizeof(*start)))) {
        big_free(group);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        start[group[i] + 1]++;
    for (size_t g = 0; g < n_groups; g++)
        start[g + 1] += start[g];
    for (size_t i = 0; i < n; i++)
        perm[start[group[i]]++] = (uint32_t)i;
    big_free(start);
    big_free(group);
    return TRACE_OK;
}

/* The event (party, id), or NULL: a hash index over the records, built
 * on first use (r->by_id holds 1 + the record's index, 0 when empty). */
static uint64_t id_hash(const char *party, const char *id)
{
    return mix64((uintptr_t)party) ^ strmap_hash(id);
}

const rec *find_rec(struct run *r, const char *party, const char *id)
{
    uint64_t h;
    size_t j;

    if (!r->n || r->n >= UINT32_MAX || !(party = intern(r, party)))
        return NULL;
    if (!r->by_id) {
        size_t cap = 16;
        while (cap < 2 * r->n)
            cap *= 2;
        if (!(r->by_id = big_alloc(cap * sizeof(*r->by_id))))
            return NULL;
        r->id_cap = cap;
        for (size_t i = 0; i < r->n; i++) {
            j = id_hash(r->recs[i].party, r->recs[i].id) & (cap - 1);
            while (r->by_id[j])
                j = (j + 1) & (cap - 1);
            r->by_id[j] = (uint32_t)i + 1;
        }
    }
    h = id_hash(party, id);
    for (j = h & (r->id_cap - 1); r->by_id[j]; j = (j + 1) & (r->id_cap - 1)) {
        const rec *x = &r->recs[r->by_id[j] - 1];
        if (x->party == party && strcmp(x->id, id) == 0)
            return x;
    }
    return NULL;
}

/* Carriers (SPEC 12) --------------------------------------------------- */

static int is_custody(uint8_t kind)
{
    return kind == TRACE__V1__EVENT__BODY_PICKUP_BODY ||
           kind == TRACE__V1__EVENT__BODY_HANDOVER_BODY ||
           kind == TRACE__V1__EVENT__BODY_DELIVERY_BODY;
}

struct chain {
    uint32_t first, last; /* 1 + by_at index */
};

/* r->custody: the pickups, handovers and deliveries citing each sale
 * (by its seller and id), in `at` order.  Nothing is built when the run
 * holds none, so a ledger without carriers pays one pass. */
int custody_build(struct run *r)
{
    char key[KEY_MAX];

    if (r->custody_built)
        return TRACE_OK;
    r->custody_built = 1;
    for (size_t i = 0; i < r->n; i++) {
        const rec *e = r->by_at[i];
        struct chain *ch;
        if (!is_custody(e->kind) || !e->from || !e->ref)
            continue;
        if (!r->custody &&
            (!(r->custody = strmap_new(sizeof(struct chain))) ||
             !(r->cnext = big_alloc((r->n + 1) * sizeof(*r->cnext)))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        snprintf(key, sizeof(key), "%s\x01%s", e->from, e->ref);
        if (!(ch = strmap_get(r->custody, key, 1)))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (ch->last)
            r->cnext[ch->last - 1] = (uint32_t)i + 1;
        else
            ch->first = (uint32_t)i + 1;
        ch->last = (uint32_t)i + 1;
    }
    return TRACE_OK;
}

/* The first custody event citing the sale (party, id): 1 + its by_at
 * index, 0 if none; the next of j is r->cnext[j - 1]. */
uint32_t custody_first(struct run *r, const char *party, const char *id)
{
    char key[KEY_MAX];
    const struct chain *ch;

    if (!r->custody)
        return 0;
    snprintf(key, sizeof(key), "%s\x01%s", party, id);
    ch = strmap_get(r->custody, key, 0);
    return ch ? ch->first : 0;
}

int push_change(struct run *r, struct walks *ws, const char *key,
                struct change ch)
{
    struct walk *w = strmap_get(ws->m, key, 1);
    if (!w)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (w->n == 0) {
        if (ws->n == ws->cap) {
            size_t nc = ws->cap ? ws->cap * 2 : 64;
            const char **p = realloc(ws->keys, nc * sizeof(*p));
            if (!p)
                return trace_fail(TRACE_ENOMEM, "out of memory");
            ws->keys = p;
            ws->cap = nc;
        }
        if (!(ws->keys[ws->n++] = arena_strdup(r->a, key, strlen(key))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 8;
        struct change *p = arena_alloc(r->a, nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (w->n)
            memcpy(p, w->c, w->n * sizeof(*p));
        w->c = p;
        w->cap = nc;
    }
    w->c[w->n++] = ch;
    return TRACE_OK;
}

void walks_free(struct walks *ws)
{
    strmap_free(ws->m);
    free(ws->keys);
}

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

static int rule_split(struct run *r, const struct cfg *c)
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
static int rule_parcel(struct run *r, const struct cfg *c)
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
static int rule_custody(struct run *r, const struct cfg *c)
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
static int rule_app_overdue(struct run *r, const struct cfg *c)
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

static int rule_chain(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(21);
    const trace_verify_result *res = &r->verify.res;
    (void)c;
    if (r->verify.started) { /* started with the run (reconcile.c) */
        pthread_join(r->verify.thread, NULL);
        r->verify.started = 0;
    } else {
        verify_job_run(&r->verify);
    }
    if (r->verify.rc == TRACE_OK)
        return TRACE_OK;
    if (r->verify.rc != TRACE_EVERIFY)
        return trace_fail(r->verify.rc, "%s", r->verify.err);
    char ref[32];
    snprintf(ref, sizeof(ref), "entry-%llu", (unsigned long long)res->bad_seq);
    rec fake = {0};
    fake.party = "journal";
    fake.id = intern(r, ref);
    const rec *ev = &fake;
    return RAISE(r, &ev, 1, NULL, NULL, NULL, NULL, NULL, "%s", res->reason);
}

/* The rule table: code, default severity, summary, parameters. */
const struct rule reconcile_rules[N_RULES] = {
    {"PERMIT_MISSING",
     "high",
     "a sale, import or export needing a permit cites none or an unknown "
     "one; a category 1/2 sale with a carrier has no transport permit",
     {"cat3_transport"},
     {0},
     rule_permits},
    {"PERMIT_INVALID",
     "high",
     "a cited permit is expired, not yet valid, suspended, revoked, held by "
     "another party, for another substance or counterparty, of the wrong "
     "kind, or single-use and used",
     {NULL},
     {0},
     NULL},
    {"PERMIT_EXCEEDED",
     "high",
     "valid citations write off more than the permit's budget",
     {NULL},
     {0},
     NULL},
    {"SHIPMENT_UNCONFIRMED",
     "medium",
     "no receipt within the window after a sale",
     {"window_hours"},
     {72},
     rule_two_way},
    {"QTY_MISMATCH",
     "medium",
     "the receipts of a sale add up to other than its quantity beyond "
     "tolerance (any difference for counts): one alert per sale, with "
     "every receipt",
     {"tolerance_pct"},
     {0.1},
     NULL},
    {"RECEIPT_UNMATCHED",
     "medium",
     "a receipt cites no sale of `from`, or one to another buyer, of "
     "another substance or lot",
     {NULL},
     {0},
     NULL},
    {"NEGATIVE_STOCK",
     "high",
     "book stock of a (party, substance, lot) goes below zero",
     {NULL},
     {0},
     rule_stock},
    {"STOCKTAKE_VARIANCE",
     "medium",
     "a stocktake differs from book stock beyond tolerance",
     {"tolerance_pct"},
     {0.1},
     NULL},
    {"UNUSUAL_ORDER",
     "medium",
     "an order is more than factor x the buyer's mean order of the "
     "substance over the past 365 days",
     {"factor", "min_orders"},
     {3, 3},
     rule_unusual},
    {"UNLICENSED_PARTY",
     "high",
     "a buyer (or the seller a receipt names) is unregistered, suspended or "
     "lacks the licence scope",
     {NULL},
     {0},
     rule_unlicensed},
    {"DESTROY_UNWITNESSED",
     "medium",
     "a destruction names no witness, or one that is not a regulator (or "
     "a department whose scopes do not cover the substance)",
     {NULL},
     {0},
     rule_destroy},
    {"LOSS_REPORTED",
     "high",
     "a loss or theft was recorded",
     {NULL},
     {0},
     rule_loss},
    {"LATE_REPORT",
     "low",
     "a sale recorded more than the deadline after it happened",
     {"cat1_days", "cat23_days", "drug_days"},
     {5, 30, 0},
     rule_late},
    {"RX_LIMIT",
     "medium",
     "days_supply over the limit for the drug class and form",
     {"injection", "controlled_release", "other", "chronic_injection",
      "chronic_controlled_release", "chronic_other", "psy2"},
     {1, 7, 3, 3, 15, 7, 7},
     rule_rx_limit},
    {"RX_REUSE",
     "high",
     "a prescription id dispensed twice",
     {NULL},
     {0},
     rule_rx_reuse},
    {"DOCTOR_SHOPPING",
     "high",
     "one patient gets controlled drugs from >= prescribers and >= "
     "pharmacies within days",
     {"prescribers", "pharmacies", "days"},
     {5, 5, 90},
     rule_doctor_shopping},
    {"SPLIT_PURCHASE",
     "high",
     "one buyer's purchases of a substance from >= sellers within days, "
     "each below its category's threshold (kg; category 3 volumes in L), "
     "together reach it",
     {"sellers", "days", "cat1", "cat2", "cat3"},
     {3, 30, 10, 100, 1000},
     rule_split},
    {"PARCEL_CHECK_MISSING",
     "medium",
     "a parcel accepted at a courier outlet without real-name verification "
     "of its sender, opening for inspection or X-ray (三个100%)",
     {NULL},
     {0},
     rule_parcel},
    {"CUSTODY_GAP",
     "high",
     "a sale naming a carrier has no pickup citing it within pickup_hours, "
     "or a receipt of a carried sale has no delivery at or before it",
     {"pickup_hours"},
     {24},
     rule_custody},
    {"TRANSIT_OVERDUE",
     "medium",
     "a sale's delivery came more than transit_hours after its pickup, or "
     "none came transit_hours after it",
     {"transit_hours"},
     {72},
     NULL},
    {"APPLICATION_OVERDUE",
     "medium",
     "a permit application has neither a permit citing it nor a decision "
     "after N working days (Monday to Friday in the ledger's zone)",
     {"days"},
     {5},
     rule_app_overdue},
    {"CHAIN_BROKEN",
     "critical",
     "verification finds an entry whose hash, link or signature fails",
     {NULL},
     {0},
     rule_chain},
};
