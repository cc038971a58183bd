/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_drugs.c - the rules on dispensing controlled drugs: RX_LIMIT,
 * RX_REUSE and DOCTOR_SHOPPING (SPEC section 4; the table is in rules.c).
 */
#include <string.h>

#include "rules_int.h"

/* RX_LIMIT, RX_REUSE, DOCTOR_SHOPPING. */
int rule_rx_limit(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(13);
    int rc = TRACE_OK;
    (void)c;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        int cls, limit;
        if (e->kind != TRACE__V1__EVENT__BODY_DISPENSE_BODY)
            continue;
        cls = e->rxcls;
        if (!cls)
            continue;
        const int injection = strcmp(e->form, "injection") == 0;
        const int cr = strcmp(e->form, "controlled_release") == 0 ||
                       strcmp(e->form, "patch") == 0;
        if (cls == 2)
            limit = (int)c->p[6];
        else
            limit = (int)c->p[(e->chronic ? 3 : 0) + (injection ? 0
                                                      : cr      ? 1
                                                                : 2)];
        if ((int64_t)e->days > limit)
            rc = RAISE(r, &e, 1, e->party, e->prescriber, e->substance, e->lot,
                       NULL,
                       "prescription %s: %u days of %s (%s%s) exceeds the "
                       "limit of %d",
                       e->rx, e->days, e->substance, e->form,
                       e->chronic ? ", chronic" : "", limit);
    }
    return rc;
}

/* Dispensings of controlled drugs (or all, with `all`), grouped by
 * patient (interned: the pointer is the key) or by prescription id (not
 * interned, as nearly every one is unique: its hash, then its text), each
 * group in `at` order. */
struct by_field {
    uint64_t h;
    const char *key;
    const rec *e;
    int64_t at; /* e->at, at hand for the windows (no pointer chasing) */
};

static int same_key(const struct by_field *x, const struct by_field *y)
{
    return x->h == y->h && (x->key == y->key || strcmp(x->key, y->key) == 0);
}

static int same_key_at(const void *ctx, size_t a, size_t b)
{
    const struct by_field *v = ctx;
    return same_key(&v[a], &v[b]);
}

static int dispensings(struct run *r, int patient, int all,
                       struct by_field **out, size_t *n_out)
{
    struct by_field *v = big_alloc((r->n + 1) * sizeof(*v)), *g = NULL;
    uint64_t *hash = big_alloc((r->n + 1) * sizeof(*hash));
    uint32_t *perm = big_alloc((r->n + 1) * sizeof(*perm));
    size_t n = 0;
    int rc = TRACE_OK;

    if (!v || !hash || !perm) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->n; i++) {
        const rec *e = r->by_at[i];
        if (e->kind != TRACE__V1__EVENT__BODY_DISPENSE_BODY ||
            (!all && !e->rxcls))
            continue;
        if (patient)
            v[n] = (struct by_field){mix64((uintptr_t)e->patient), e->patient,
                                     e, e->at};
        else
            v[n] = (struct by_field){strmap_hash(e->rx), e->rx, e, e->at};
        hash[n] = v[n].h;
        n++;
    }
    if ((rc = group_items(n, hash, same_key_at, v, perm)) != TRACE_OK)
        goto out;
    if (!(g = big_alloc((n + 1) * sizeof(*g)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        g[i] = v[perm[i]];
    *out = g;
    *n_out = n;
out:
    big_free(v);
    big_free(hash);
    big_free(perm);
    return rc;
}

int rule_rx_reuse(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(14);
    struct by_field *v = NULL;
    size_t n = 0, first = 0;
    int rc;

    (void)c;
    if ((rc = dispensings(r, 0, 1, &v, &n)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < n && rc == TRACE_OK; i++) {
        if (i == 0 || !same_key(&v[i], &v[i - 1])) {
            first = i;
            continue;
        }
        if (!scope_complete(r, SCOPE_RX, v[i].e->rx, NULL))
            continue;
        const rec *ev[2] = {v[first].e, v[i].e};
        rc = RAISE(r, ev, 2, ev[1]->party, ev[0]->party, ev[1]->substance,
                   ev[1]->lot, NULL,
                   "prescription %s dispensed again by %s (first by %s, %s)",
                   ev[1]->rx, ev[1]->party, ev[0]->party, ev[0]->id);
    }
    big_free(v);
    return rc;
}

/* Distinct strings among who[0], who[2], ... who[2 * (n - 1)] (interned:
 * equal strings, equal pointers); the window's prescribers and pharmacies
 * sit side by side in one array so that the count reads no record. */
static int count_distinct(const char *const *who, size_t n)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j;
        for (j = 0; j < i; j++)
            if (who[2 * j] == who[2 * i])
                break;
        count += j == i;
    }
    return count;
}

/* One patient, >= P prescribers and >= Q pharmacies within D days (last
 * minus first <= D days); one alert per episode. */
int rule_doctor_shopping(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(15);
    int64_t span = (int64_t)(c->p[2] * (double)US_PER_DAY);
    struct by_field *v = NULL;
    const rec **ev = NULL;
    const char **who = NULL; /* per dispensing: prescriber, pharmacy */
    size_t n_all = 0;
    int rc;

    if ((rc = dispensings(r, 1, 0, &v, &n_all)) != TRACE_OK)
        return rc;
    if (!(ev = big_alloc((n_all + 1) * sizeof(*ev))) ||
        !(who = big_alloc((2 * n_all + 2) * sizeof(*who)))) {
        big_free(ev);
        big_free(v);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < n_all; k++) {
        who[2 * k] = v[k].e->prescriber;
        who[2 * k + 1] = v[k].e->party;
    }
    for (size_t g = 0; g < n_all && rc == TRACE_OK;) {
        size_t end = g, start = g;
        while (end < n_all && same_key(&v[end], &v[g]))
            end++;
        if (!scope_complete(r, SCOPE_PATIENT, v[g].e->patient, NULL)) {
            g = end;
            continue;
        }
        for (size_t k = g; k < end && rc == TRACE_OK; k++) {
            while (v[k].at - v[start].at > span)
                start++;
            size_t n = k - start + 1;
            if (n < (size_t)c->p[0] || n < (size_t)c->p[1])
                continue;
            int prescribers = count_distinct(who + 2 * start, n);
            int pharmacies = count_distinct(who + 2 * start + 1, n);
            if (prescribers < (int)c->p[0] || pharmacies < (int)c->p[1])
                continue;
            for (size_t j = 0; j < n; j++)
                ev[j] = v[start + j].e;
            rc = RAISE(r, ev, n, ev[n - 1]->party, NULL, ev[0]->substance, NULL,
                       NULL,
                       "patient %.16s... received controlled drugs from %d "
                       "prescribers and %d pharmacies within %.0f days",
                       ev[0]->patient, prescribers, pharmacies, c->p[2]);
            /* the episode ends here: the next one starts afresh */
            start = k + 1;
        }
        g = end;
    }
    big_free(who);
    big_free(ev);
    big_free(v);
    return rc;
}
