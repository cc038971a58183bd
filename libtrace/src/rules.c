/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - the table of the reconciliation rules of SPEC section 4 (their
 * codes, default severities and thresholds), CHAIN_BROKEN, and the helpers
 * the rule files share (rules_int.h).  The rules themselves sit in
 * rules_stock.c (permits, two-way matching, stock), rules_party.c (orders,
 * licences, destruction, loss, late reports), rules_drugs.c (prescriptions)
 * and rules_spec12.c (split purchases, parcels, carriers, applications).
 *
 * Every rule function reads the run's compact records (reconcile_int.h), in
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

/* Grouping without sorting: items 0..n-1 with 64-bit hashes and an
 * equality test are given group numbers by an open-addressing table, then
 * placed group after group by a counting sort.  Groups come in the order
 * of their first item and keep their items in item order, so callers that
 * feed items in `at` order get each group in `at` order. */

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

/* Walks of changes by key (UNUSUAL_ORDER, SPLIT_PURCHASE) ------------ */

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

/* ------------------------------------------------------------------ */
/* CHAIN_BROKEN and the table                                           */

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
