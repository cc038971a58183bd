/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_stock.c - the rules on permits, on the two sides of a sale and on
 * book stock: PERMIT_MISSING, PERMIT_INVALID, PERMIT_EXCEEDED,
 * SHIPMENT_UNCONFIRMED, QTY_MISMATCH, RECEIPT_UNMATCHED, NEGATIVE_STOCK and
 * STOCKTAKE_VARIANCE (SPEC section 4; the table is in rules.c).
 */
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* PERMIT_MISSING, PERMIT_INVALID and PERMIT_EXCEEDED share the judging
 * of permit.c: each cited permit is shown as of the run's time. */
struct permit_view {
    struct run *r;
    int exists;
    const char *permit;
    int64_t budget, used;
    int used_overflow; /* used is a bound: the sum is beyond an int64 */
    const char *unit;
    trace_permit_use *uses;
    size_t n;
};

static int keep_permit(const trace_permit_state *p, void *ctx)
{
    struct permit_view *v = ctx;
    v->exists = 1;
    v->budget = p->budget;
    v->used = p->used;
    v->used_overflow = p->used_overflow;
    v->unit = arena_strdup(v->r->a, p->unit, strlen(p->unit));
    v->n = p->n_uses;
    v->uses = arena_alloc(v->r->a, (p->n_uses + 1) * sizeof(*v->uses));
    if (!v->uses)
        return TRACE_ENOMEM;
    for (size_t i = 0; i < p->n_uses; i++) {
        v->uses[i] = p->use[i];
        v->uses[i].party = intern(v->r, p->use[i].party);
        v->uses[i].event =
            arena_strdup(v->r->a, p->use[i].event, strlen(p->use[i].event));
        v->uses[i].reason =
            p->use[i].reason ? intern(v->r, p->use[i].reason) : NULL;
    }
    return 0;
}

/* The buyer of a sale; NULL for any other record (a permit's uses name
 * events by id, and a correction's replacement may reuse any id). */
static const char *rec_buyer(const rec *x)
{
    return x->kind == TRACE__V1__EVENT__BODY_SALE_BODY ? x->to : NULL;
}

int rule_permits(struct run *r, const struct cfg *c)
{
    const struct rule *missing = RULE(0), *invalid = RULE(1),
                      *exceeded = RULE(2);
    strmap *seen = strmap_new(sizeof(int));
    int rc = TRACE_OK;

    (void)c;
    if (!seen)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const char *cited[2] = {
            e->permit,
            e->kind == TRACE__V1__EVENT__BODY_SALE_BODY ? e->tpermit : NULL};
        const regime_class *cls;
        int need = 0, need_transport = 0;

        /* judged as of r->as_of, which does not count this event yet: the
         * next incremental run looks at the permit again */
        if (e->at > r->as_of)
            for (int k = 0; k < 2 && rc == TRACE_OK; k++)
                rc = inc_keep_open(r, 'P', cited[k]);
        if (rc != TRACE_OK)
            break;

        /* what the regime table asks of the class (regime.c) */
        cls = rec_class(r->l, e);
        if (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY) {
            uint8_t t = cls->move[MOVE_TRANSPORT].required;
            need =
                cls->move[MOVE_SALE].required == REQ_YES && r->cfg[0].enabled;
            need_transport =
                e->carrier && (t == REQ_YES ||
                               (t == REQ_CONFIGURABLE && r->cfg[0].p[0] != 0));
        } else if (e->kind == TRACE__V1__EVENT__BODY_IMPORT_BODY) {
            need = cls->move[MOVE_IMPORT].required == REQ_YES;
        } else if (e->kind == TRACE__V1__EVENT__BODY_EXPORT_BODY) {
            need = cls->move[MOVE_EXPORT].required == REQ_YES;
        } else {
            continue;
        }
        for (int k = 0; k < 2 && rc == TRACE_OK; k++) {
            const char *pm = cited[k];
            int *mark;
            if (!pm) {
                int required = k == 0 ? need : need_transport;
                if (required && r->cfg[0].enabled)
                    rc = raise_alert(
                        r, missing, &e, 1, e->party, rec_buyer(e), e->substance,
                        e->lot, NULL,
                        "%s %s of %s (%s) cites no %s "
                        "permit",
                        rec_type(e), e->id, e->substance, cls->label,
                        k == 0 ? (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY
                                      ? "purchase"
                                      : rec_type(e))
                               : "transport");
                continue;
            }
            if (!(mark = strmap_get(seen, pm, 1))) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                break;
            }
            if (*mark)
                continue; /* judged with its first citation */
            *mark = 1;
            if (!scope_complete(r, SCOPE_PERMIT, pm, NULL))
                continue; /* some citations not loaded (incremental) */
            struct permit_view v = {r, 0, pm, 0, 0, 0, NULL, NULL, 0};
            int prc = trace_permit_show(r->l, pm, r->as_of, keep_permit, &v);
            if (prc == TRACE_ENOTFOUND) {
                /* every citation of an unknown permit */
                for (size_t j = i; j < r->n && rc == TRACE_OK; j++) {
                    const rec *x = r->by_at[j];
                    if (!(x->kind == TRACE__V1__EVENT__BODY_SALE_BODY ||
                          x->kind == TRACE__V1__EVENT__BODY_IMPORT_BODY ||
                          x->kind == TRACE__V1__EVENT__BODY_EXPORT_BODY) ||
                        !((x->permit && strcmp(x->permit, pm) == 0) ||
                          (x->kind == TRACE__V1__EVENT__BODY_SALE_BODY &&
                           x->tpermit && strcmp(x->tpermit, pm) == 0)))
                        continue;
                    if (r->cfg[0].enabled)
                        rc = raise_alert(r, missing, &x, 1, x->party,
                                         rec_buyer(x), x->substance, x->lot, pm,
                                         "%s %s cites permit %s, which was "
                                         "never issued",
                                         rec_type(x), x->id, pm);
                }
                continue;
            }
            if (prc != TRACE_OK) {
                rc = prc;
                break;
            }
            /* one PERMIT_INVALID per bad citation; one PERMIT_EXCEEDED
             * per permit, naming the citations from the one that crossed
             * the budget on */
            int64_t used = 0;
            const rec *over[64];
            size_t n_over = 0;
            for (size_t u = 0; u < v.n && rc == TRACE_OK; u++) {
                const trace_permit_use *use = &v.uses[u];
                const rec *x = find_rec(r, use->party, use->event);
                if (!x)
                    continue;
                if (!use->valid) {
                    if (r->cfg[1].enabled)
                        rc = raise_alert(r, invalid, &x, 1, x->party,
                                         rec_buyer(x), x->substance, x->lot, pm,
                                         "%s %s cites permit %s: %s",
                                         rec_type(x), x->id, pm, use->reason);
                    continue;
                }
                /* beyond an int64 is beyond any budget: saturate */
                if (qty_add(&used, used, use->qty))
                    used = INT64_MAX;
                if (used > v.budget && n_over < 64)
                    over[n_over++] = x;
            }
            if (rc == TRACE_OK && n_over && r->cfg[2].enabled)
                rc = raise_alert(r, exceeded, over, n_over,
                                 rec_buyer(over[0]) ? rec_buyer(over[0])
                                                    : over[0]->party,
                                 rec_buyer(over[0]) ? over[0]->party : NULL,
                                 over[0]->substance, over[0]->lot, pm,
                                 "permit %s: %s%s %s written off against a "
                                 "budget of %s %s",
                                 pm, v.used_overflow ? "more than " : "",
                                 fmt_qty(r, v.used, v.unit), v.unit,
                                 fmt_qty(r, v.budget, v.unit), v.unit);
        }
    }
    strmap_free(seen);
    return rc;
}

/* SHIPMENT_UNCONFIRMED, QTY_MISMATCH, RECEIPT_UNMATCHED. */
static int within_tolerance(const subst_info *s, int64_t want, int64_t got,
                            double pct)
{
    /* magnitudes as unsigned: |INT64_MIN| and INT64_MAX - INT64_MIN do
     * not fit an int64, and a stored book stock may be either */
    uint64_t diff = want > got ? (uint64_t)want - (uint64_t)got
                               : (uint64_t)got - (uint64_t)want;
    uint64_t mag = want < 0 ? 0 - (uint64_t)want : (uint64_t)want;
    if (!s || s->dim == DIM_COUNT)
        return diff == 0;
    return (double)diff <= (double)mag * pct / 100.0;
}

/* One step of a sale's custody chain: the events of one kind (the sale,
 * its pickups, one handover, its deliveries, its receipts) and what they
 * add up to. */
struct step {
    const char *what; /* "sold", "picked up", ... */
    const rec **ev;
    size_t n;
    int64_t qty;
    int wrapped;
};

static void step_add(struct step *s, const rec *e)
{
    s->ev[s->n++] = e;
    if (__builtin_add_overflow(s->qty, e->qty, &s->qty))
        s->wrapped = 1;
}

/* QTY_MISMATCH along a carried sale's chain (SPEC 12): sale, pickups,
 * each handover, deliveries, receipts; one alert at the first step whose
 * quantity differs from the step before it (steps with no event are
 * skipped), its evidence the sale and the events of both steps. */
static int custody_qty(struct run *r, const rec *sale, uint32_t cfirst,
                       const rec *const *receipts, size_t n_receipts,
                       double pct)
{
    const struct rule *self = RULE(4);
    size_t n_c = 0, n_steps = 0;
    struct step *st;
    const rec **pool;

    for (uint32_t j = cfirst; j; j = r->cnext[j - 1])
        n_c++;
    st = arena_alloc(r->a, (n_c + 4) * sizeof(*st));
    pool = arena_alloc(r->a, (n_c + n_receipts + 2) * sizeof(*pool));
    if (!st || !pool)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memset(st, 0, (n_c + 4) * sizeof(*st));
    /* the sale, the pickups, each handover, the deliveries, the receipts */
    st[0] = (struct step){"sold", pool, 0, 0, 0};
    step_add(&st[0], sale);
    pool += 1;
    n_steps = 1;
    struct step *pick = &st[n_steps++];
    *pick = (struct step){"picked up", pool, 0, 0, 0};
    for (uint32_t j = cfirst; j; j = r->cnext[j - 1])
        if (r->by_at[j - 1]->kind == TRACE__V1__EVENT__BODY_PICKUP_BODY)
            step_add(pick, r->by_at[j - 1]);
    pool += pick->n;
    for (uint32_t j = cfirst; j; j = r->cnext[j - 1])
        if (r->by_at[j - 1]->kind == TRACE__V1__EVENT__BODY_HANDOVER_BODY) {
            struct step *h = &st[n_steps++];
            *h = (struct step){"handed over", pool++, 0, 0, 0};
            step_add(h, r->by_at[j - 1]);
        }
    struct step *dl = &st[n_steps++];
    *dl = (struct step){"delivered", pool, 0, 0, 0};
    for (uint32_t j = cfirst; j; j = r->cnext[j - 1])
        if (r->by_at[j - 1]->kind == TRACE__V1__EVENT__BODY_DELIVERY_BODY)
            step_add(dl, r->by_at[j - 1]);
    pool += dl->n;
    struct step *rc_ = &st[n_steps++];
    *rc_ = (struct step){"received", pool, 0, 0, 0};
    for (size_t k = 0; k < n_receipts; k++)
        step_add(rc_, receipts[k]);

    const struct step *prev = &st[0];
    for (size_t k = 1; k < n_steps; k++) {
        const struct step *cur = &st[k];
        const rec **ev;
        size_t m = 0;
        if (!cur->n)
            continue;
        if (!prev->wrapped && !cur->wrapped &&
            within_tolerance(sale->sub, prev->qty, cur->qty, pct)) {
            prev = cur;
            continue;
        }
        if (!(ev = arena_alloc(r->a, (1 + prev->n + cur->n) * sizeof(*ev))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        ev[m++] = sale;
        for (size_t i = 0; prev != &st[0] && i < prev->n; i++)
            ev[m++] = prev->ev[i];
        for (size_t i = 0; i < cur->n; i++)
            ev[m++] = cur->ev[i];
        if (prev->wrapped || cur->wrapped)
            return RAISE(r, ev, m, sale->party, cur->ev[0]->party,
                         sale->substance, sale->lot, NULL,
                         "sale %s: the quantities %s and %s add up beyond "
                         "any quantity",
                         sale->id, prev->what, cur->what);
        return RAISE(r, ev, m, sale->party, cur->ev[0]->party, sale->substance,
                     sale->lot, NULL,
                     "sale %s: %s %s %s, %s %s %s (%s %s by %s)", sale->id,
                     fmt_qty(r, prev->qty, sale->unit), sale->unit, prev->what,
                     fmt_qty(r, cur->qty, sale->unit), sale->unit, cur->what,
                     rec_type(cur->ev[0]), cur->ev[0]->id, cur->ev[0]->party);
    }
    return TRACE_OK;
}

int rule_two_way(struct run *r, const struct cfg *c)
{
    const struct rule *unconfirmed = RULE(3), *mismatch = RULE(4),
                      *unmatched = RULE(5);
    int64_t window = (int64_t)(r->cfg[3].p[0] * (double)US_PER_HOUR);
    double pct = r->cfg[4].p[0];
    uint32_t *confirmed = NULL; /* per rec: receipts in the window */
    /* per sale: what its matching receipts add up to, how many, and the
     * first of them (1 + index in by_at; each links to the next) */
    int64_t *got = NULL;
    uint32_t *n_got = NULL, *first = NULL, *next = NULL, *last = NULL;
    uint8_t *wrapped = NULL;
    int rc = TRACE_OK;

    (void)c;
    if (r->n >= UINT32_MAX)
        return trace_fail(TRACE_EINVAL, "too many events for one run");
    if ((rc = custody_build(r)) != TRACE_OK)
        return rc;
    if (!(confirmed = big_alloc((r->n + 1) * sizeof(*confirmed))) ||
        !(got = big_alloc((r->n + 1) * sizeof(*got))) ||
        !(n_got = big_alloc((r->n + 1) * sizeof(*n_got))) ||
        !(first = big_alloc((r->n + 1) * sizeof(*first))) ||
        !(next = big_alloc((r->n + 1) * sizeof(*next))) ||
        !(last = big_alloc((r->n + 1) * sizeof(*last))) ||
        !(wrapped = big_alloc(r->n + 1))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const rec *sale;
        if (e->kind != TRACE__V1__EVENT__BODY_RECEIPT_BODY)
            continue;
        sale = find_rec(r, e->from, e->ref);
        if (!sale || sale->kind != TRACE__V1__EVENT__BODY_SALE_BODY ||
            strcmp(sale->to, e->party) != 0 ||
            strcmp(sale->substance, e->substance) != 0 ||
            strcmp(sale->lot, e->lot) != 0) {
            const rec *ev[2] = {e, sale};
            if (r->cfg[5].enabled)
                rc = raise_alert(
                    r, unmatched, ev, sale ? 2 : 1, e->party, e->from,
                    e->substance, e->lot, NULL,
                    !sale ? "receipt %s cites %s, which is not a sale of %s"
                    : sale->kind != TRACE__V1__EVENT__BODY_SALE_BODY
                        ? "receipt %s cites %s, which is not a sale of %s"
                        : "receipt %s does not match sale %s of %s (buyer, "
                          "substance or lot differ)",
                    e->id, e->ref, e->from);
            continue;
        }
        /* a matching receipt: confirms the sale if in the window */
        if (e->at >= sale->at && e->at - sale->at <= window)
            confirmed[sale - r->recs]++;
        else if (e->at < sale->at)
            confirmed[sale - r->recs]++; /* recorded out of order */
        /* what the sale's receipts add up to: judged below, once */
        {
            size_t si = (size_t)(sale - r->recs);
            if (__builtin_add_overflow(got[si], e->qty, &got[si]))
                wrapped[si] = 1;
            if (n_got[si]++ == 0)
                first[si] = (uint32_t)i + 1;
            else
                next[last[si] - 1] = (uint32_t)i + 1;
            last[si] = (uint32_t)i + 1;
        }
    }
    /* QTY_MISMATCH: one per sale whose receipts together differ from it
     * (a short receipt, an over-receipt, several receipts adding up to
     * more than was shipped), its evidence the sale and every receipt */
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *sale = r->by_at[i], **ev;
        size_t si = (size_t)(sale - r->recs), k = 0;
        uint32_t cfirst;
        if (sale->kind != TRACE__V1__EVENT__BODY_SALE_BODY)
            continue;
        /* a sale in the hands of carriers: the whole chain (SPEC 12) */
        cfirst = custody_first(r, sale->party, sale->id);
        if (cfirst) {
            if (n_got[si] &&
                (wrapped[si] ||
                 !within_tolerance(sale->sub, sale->qty, got[si], pct)))
                confirmed[si]++;
            if (!r->cfg[4].enabled ||
                !scope_complete(r, SCOPE_CITED, sale->party, sale->id))
                continue;
            if (!(ev = arena_alloc(r->a,
                                   ((size_t)n_got[si] + 1) * sizeof(*ev)))) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                break;
            }
            for (uint32_t j = first[si]; j; j = next[j - 1])
                ev[k++] = r->by_at[j - 1];
            rc = custody_qty(r, sale, cfirst, ev, k, pct);
            continue;
        }
        if (!n_got[si] ||
            (!wrapped[si] &&
             within_tolerance(sale->sub, sale->qty, got[si], pct)))
            continue;
        confirmed[si]++; /* a short receipt is a mismatch, not missing */
        if (!r->cfg[4].enabled)
            continue;
        if (!(ev = arena_alloc(r->a, ((size_t)n_got[si] + 1) * sizeof(*ev)))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            break;
        }
        ev[k++] = sale;
        for (uint32_t j = first[si]; j; j = next[j - 1])
            ev[k++] = r->by_at[j - 1];
        const rec *e1 = ev[1];
        if (n_got[si] == 1)
            rc = raise_alert(r, mismatch, ev, k, sale->party, e1->party,
                             e1->substance, e1->lot, NULL,
                             "sale %s: %s %s sent, %s %s received", sale->id,
                             fmt_qty(r, sale->qty, sale->unit), sale->unit,
                             fmt_qty(r, e1->qty, sale->unit), sale->unit);
        else if (wrapped[si])
            rc = raise_alert(r, mismatch, ev, k, sale->party, e1->party,
                             e1->substance, e1->lot, NULL,
                             "sale %s: %s %s sent; its %u receipts add up "
                             "beyond any quantity",
                             sale->id, fmt_qty(r, sale->qty, sale->unit),
                             sale->unit, n_got[si]);
        else
            rc = raise_alert(r, mismatch, ev, k, sale->party, e1->party,
                             e1->substance, e1->lot, NULL,
                             "sale %s: %s %s sent, %s %s received in %u "
                             "receipts",
                             sale->id, fmt_qty(r, sale->qty, sale->unit),
                             sale->unit, fmt_qty(r, got[si], sale->unit),
                             sale->unit, n_got[si]);
    }
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        if (e->kind != TRACE__V1__EVENT__BODY_SALE_BODY ||
            confirmed[e - r->recs] || !r->cfg[3].enabled ||
            !scope_complete(r, SCOPE_LOT, e->lot, NULL))
            continue;
        if (r->as_of <= e->at + window) {
            /* the window is still open: the next incremental run
             * looks at this lot again */
            rc = inc_keep_open(r, 'L', e->lot);
            continue;
        }
        rc = raise_alert(r, unconfirmed, &e, 1, e->party, e->to, e->substance,
                         e->lot, NULL,
                         "sale %s to %s has no receipt within %.0f h", e->id,
                         e->to, r->cfg[3].p[0]);
    }
out:
    big_free(confirmed);
    big_free(got);
    big_free(n_got);
    big_free(first);
    big_free(next);
    big_free(last);
    big_free(wrapped);
    return rc;
}

/* One change of a holding; holdings are told apart by their interned
 * names, so grouping is a sort, not a hash lookup per event. */
/* A stock change of the run: its event, and which of the event's
 * (substance, lot) and site it changes.  24 bytes: a 10M-event run has
 * more changes than events, and each byte is a page the kernel zeroes
 * first. */
struct hchange {
    const rec *e;
    int64_t delta;
    uint32_t input;   /* 1 + index of the produce input it consumes, or 0 */
    uint8_t is_count; /* a stocktake's count, not a change */
    uint8_t site_of;  /* HSITE_*: which site of the event */
};
#define HSITE_EVENT 0 /* e->site */
#define HSITE_FROM  1 /* a transfer's from site */
#define HSITE_TO    2 /* a transfer's to site */

struct hlist {
    struct hchange *v;
    size_t n, cap;
};

static const char *hsub(const struct hchange *x)
{
    return x->input ? x->e->inputs[x->input - 1].substance : x->e->substance;
}

static const char *hlot(const struct hchange *x)
{
    return x->input ? x->e->inputs[x->input - 1].lot : x->e->lot;
}

static const char *hsite(const struct hchange *x)
{
    return x->site_of == HSITE_FROM ? x->e->from
           : x->site_of == HSITE_TO ? x->e->to
                                    : x->e->site;
}

static int hpush(struct hlist *h, const rec *e, uint32_t input, uint8_t site_of,
                 int64_t delta, uint8_t is_count)
{
    if (h->n == h->cap) /* sized by stock_changes() */
        return trace_fail(TRACE_EUNAVAIL, "stock changes miscounted");
    h->v[h->n++] = (struct hchange){e, delta, input, is_count, site_of};
    return TRACE_OK;
}

static int same_lot(const struct hchange *x, const struct hchange *y)
{
    return x->e->party == y->e->party && hsub(x) == hsub(y) &&
           hlot(x) == hlot(y);
}

static int same_lot_at(const void *ctx, size_t a, size_t b)
{
    const struct hchange *v = ctx;
    return same_lot(&v[a], &v[b]);
}

/* -q; parsing admits no negative quantity, so only a forged INT64_MIN
 * has no negation: it is taken as INT64_MAX (the walk then reports the
 * overflow it causes) */
static int64_t neg_qty(int64_t q)
{
    return q == INT64_MIN ? INT64_MAX : -q;
}

/* Every stock change and count, grouped by (party, substance, lot), each
 * group in `at` order (an event's changes in the order pushed); each
 * change names its site. */
static int stock_changes(struct run *r, struct hlist *h)
{
    int rc = TRACE_OK;

    /* at most two changes an event (a transfer) and one per produce input:
     * one buffer, of which the pages never written cost nothing */
    memset(h, 0, sizeof(*h));
    h->cap = 2 * r->n + 1;
    for (size_t i = 0; i < r->n; i++)
        h->cap += r->recs[i].n_inputs;
    if (!(h->v = big_alloc(h->cap * sizeof(*h->v))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        int sign = 0;
        switch (e->kind) {
        case TRACE__V1__EVENT__BODY_PRODUCE_BODY:
        case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        case TRACE__V1__EVENT__BODY_IMPORT_BODY:
            sign = 1;
            break;
        case TRACE__V1__EVENT__BODY_SALE_BODY:
        case TRACE__V1__EVENT__BODY_CONSUME_BODY:
        case TRACE__V1__EVENT__BODY_DISPENSE_BODY:
        case TRACE__V1__EVENT__BODY_EXPORT_BODY:
        case TRACE__V1__EVENT__BODY_DESTROY_BODY:
        case TRACE__V1__EVENT__BODY_LOSS_BODY:
            sign = -1;
            break;
        case TRACE__V1__EVENT__BODY_TRANSFER_BODY:
            rc = hpush(h, e, 0, HSITE_FROM, neg_qty(e->qty), 0);
            if (rc == TRACE_OK)
                rc = hpush(h, e, 0, HSITE_TO, e->qty, 0);
            continue;
        case TRACE__V1__EVENT__BODY_STOCKTAKE_BODY:
            rc = hpush(h, e, 0, HSITE_EVENT, e->qty, 1);
            continue;
        default:
            continue;
        }
        for (size_t k = 0; k < e->n_inputs && rc == TRACE_OK; k++)
            rc = hpush(h, e, (uint32_t)k + 1, HSITE_EVENT,
                       neg_qty(e->inputs[k].qty), 0);
        if (rc == TRACE_OK)
            rc = hpush(h, e, 0, HSITE_EVENT,
                       sign < 0 ? neg_qty(e->qty) : e->qty, 0);
    }
    /* group by (party, substance, lot); each group stays in `at` order */
    uint64_t *hash = NULL;
    uint32_t *perm = NULL;
    struct hchange *v = NULL;
    if (rc == TRACE_OK && (!(hash = big_alloc((h->n + 1) * sizeof(*hash))) ||
                           !(perm = big_alloc((h->n + 1) * sizeof(*perm))) ||
                           !(v = big_alloc((h->n + 1) * sizeof(*v)))))
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; rc == TRACE_OK && i < h->n; i++)
        hash[i] = mix64((uintptr_t)h->v[i].e->party) ^
                  mix64((uintptr_t)hsub(&h->v[i]) + 1) ^
                  mix64((uintptr_t)hlot(&h->v[i]) + 2);
    if (rc == TRACE_OK)
        rc = group_items(h->n, hash, same_lot_at, h->v, perm);
    for (size_t i = 0; rc == TRACE_OK && i < h->n; i++)
        v[i] = h->v[perm[i]];
    big_free(hash);
    big_free(perm);
    big_free(h->v);
    h->v = v;
    if (rc != TRACE_OK) {
        big_free(h->v);
        h->v = NULL;
    }
    return rc;
}

/* NEGATIVE_STOCK over all sites of a (party, substance, lot), and
 * STOCKTAKE_VARIANCE against the counted site's book stock, in one walk.
 * Stock is summed with checked arithmetic: a lot whose stock (over all
 * sites, or at one site) goes beyond an int64 gets one NEGATIVE_STOCK
 * alert saying so, naming the event that took it there, and is not
 * judged further - its stock is not known, so neither rule can judge
 * it. */
struct site_book {
    const char *site;
    int64_t book;
};

int rule_stock(struct run *r, const struct cfg *c)
{
    const struct rule *negative = RULE(6), *variance = RULE(7);
    double pct = r->cfg[7].p[0];
    struct site_book *sites = NULL;
    size_t n_sites = 0, cap_sites = 0;
    struct hlist h;
    int64_t total = 0, before = 0;
    int rc, judge = 1;

    (void)c;
    if ((rc = stock_changes(r, &h)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < h.n && rc == TRACE_OK; i++) {
        const struct hchange *x = &h.v[i];
        const rec *e = x->e;
        const char *xsub = hsub(x), *xlot = hlot(x), *xsite = hsite(x);
        struct site_book *sb = NULL;
        int first = i == 0 || !same_lot(x, &h.v[i - 1]);
        if (first) {
            total = 0;
            n_sites = 0;
            judge = scope_complete(r, SCOPE_LOT, xlot, NULL);
        }
        if (!judge)
            continue; /* a holding of a lot not loaded whole */
        for (size_t k = 0; k < n_sites; k++)
            if (sites[k].site == xsite)
                sb = &sites[k];
        if (!sb) {
            if (n_sites == cap_sites) {
                size_t nc = cap_sites ? cap_sites * 2 : 8;
                struct site_book *p = realloc(sites, nc * sizeof(*p));
                if (!p) {
                    rc = trace_fail(TRACE_ENOMEM, "out of memory");
                    break;
                }
                sites = p;
                cap_sites = nc;
            }
            sb = &sites[n_sites++];
            *sb = (struct site_book){xsite, 0};
        }
        if (x->is_count) {
            if (r->cfg[7].enabled &&
                !within_tolerance(e->sub, sb->book, x->delta, pct))
                rc = raise_alert(r, variance, &e, 1, e->party, NULL,
                                 e->substance, e->lot, NULL,
                                 "stocktake %s at site %s counted %s %s, "
                                 "book stock %s %s",
                                 e->id, e->site, fmt_qty(r, x->delta, e->unit),
                                 e->unit, fmt_qty(r, sb->book, e->unit),
                                 e->unit);
            continue;
        }
        /* an event's changes (a transfer has two) count together */
        if (first || h.v[i - 1].e != e)
            before = total;
        if (qty_add(&sb->book, sb->book, x->delta) ||
            qty_add(&total, total, x->delta)) {
            /* beyond an int64 of base units (a ledger of an older version,
             * or a lot held at several sites): reported once, and the
             * lot is not judged further, as its stock is not known */
            judge = 0;
            if (r->cfg[6].enabled)
                rc = raise_alert(
                    r, negative, &e, 1, e->party, NULL, xsub, xlot, NULL,
                    "book stock of %s lot %s at %s goes beyond the %s "
                    "representable quantity with %s %s: quantity overflow, "
                    "the lot's stock is not judged further",
                    xsub, xlot, e->party, x->delta > 0 ? "largest" : "smallest",
                    rec_type(e), e->id);
            continue;
        }
        int last =
            i + 1 == h.n || h.v[i + 1].e != e || !same_lot(x, &h.v[i + 1]);
        if (last && before >= 0 && total < 0 && r->cfg[6].enabled)
            rc = raise_alert(r, negative, &e, 1, e->party, NULL, xsub, xlot,
                             NULL,
                             "book stock of %s lot %s at %s goes below zero "
                             "(%s %s) with %s %s",
                             xsub, xlot, e->party, fmt_qty(r, total, e->unit),
                             e->unit, rec_type(e), e->id);
    }
    free(sites);
    big_free(h.v);
    return rc;
}
