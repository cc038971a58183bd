/*
 * reconcile.c - the rule engine.
 *
 * A run loads every effective event once (a corrected event is replaced
 * by its replacement, a voided one dropped) into compact records with
 * interned strings, then runs each enabled rule of the rules[] table over
 * them.  Rules read events in `at` order (ties in journal order) where
 * order matters.  Each rule reports anomalies through raise(), which
 * derives the alert's stable id from the rule and its evidence.
 *
 * Alerts are stored in the "alerts" database (id -> JSON without status),
 * with a sequence index ("alertseq") to list them in the order they were
 * first found.  Status comes from the latest `alert_ack` event for the
 * alert (state.c files them in "acks").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "internal.h"
#include "trace/query.h"
#include "trace/reconcile.h"

#define US_PER_HOUR 3600000000LL
#define US_PER_DAY  86400000000LL

/* ------------------------------------------------------------------ */
/* Records                                                              */

struct input {
    const char *lot, *substance;
    int64_t qty;
};

typedef struct rec {
    size_t pos; /* position in `at` order */
    uint64_t seq;
    int64_t at, recorded;
    uint32_t kind; /* body case */
    const char *type, *party, *id;
    const char *substance; /* catalog code */
    const char *lot, *site;
    int64_t qty;      /* base units; stocktake: counted */
    const char *unit; /* as recorded */
    /* type-specific */
    const char *to, *from, *ref, *permit, *tpermit, *carrier, *witness;
    const char *rx, *prescriber, *patient, *form, *reason;
    uint32_t days;
    int chronic, historic;
    const char *subject, *pkind, *pstatus; /* party events */
    char **licenses;
    size_t n_licenses, n_inputs;
    struct input *inputs;
} rec;

struct alert {
    const struct rule *rule;
    const char *severity;
    size_t pos; /* `at` position of the first evidence: output order */
    const char *party, *counterparty, *substance, *lot, *permit;
    trace_event_ref *events;
    size_t n_events;
    char *detail;
    char id[18];
};

#define MAX_PARAMS 8

struct cfg {
    int enabled;
    const char *severity;
    double p[MAX_PARAMS];
};

struct run {
    trace_ledger *l;
    MDB_txn *txn;
    arena *a;
    strmap *strings; /* interned strings */
    int64_t as_of;
    rec *recs;
    size_t n, cap;
    rec **by_at; /* recs in (at, seq) order */
    rec **by_id; /* recs in (party, id) order, built on first use */
    struct alert *alerts;
    size_t n_alerts, cap_alerts;
    sha256_stream *digest; /* for alert ids */
    struct cfg cfg[32];
};

typedef int (*rule_fn)(struct run *r, const struct cfg *c);

struct rule {
    const char *code, *severity, *summary;
    const char *pname[MAX_PARAMS];
    double pdef[MAX_PARAMS];
    rule_fn fn;
};

static const char *intern(struct run *r, const char *s)
{
    const char **slot;
    if (!s)
        return NULL;
    slot = strmap_get(r->strings, s, 1);
    if (!slot)
        return NULL;
    if (!*slot)
        *slot = arena_strdup(r->a, s, strlen(s));
    return *slot;
}

#define N_RULES 17
static const struct rule rules[N_RULES];

/* ------------------------------------------------------------------ */
/* Raising alerts                                                       */

static int raise_alert(struct run *r, const struct rule *rule,
                       const rec *const *ev, size_t n_ev, const char *party,
                       const char *counterparty, const char *substance,
                       const char *lot, const char *permit, const char *fmt,
                       ...) __attribute__((format(printf, 10, 11)));

static int raise_alert(struct run *r, const struct rule *rule,
                       const rec *const *ev, size_t n_ev, const char *party,
                       const char *counterparty, const char *substance,
                       const char *lot, const char *permit, const char *fmt,
                       ...)
{
    struct alert *al;
    uint8_t h[32];
    char detail[512];
    va_list ap;
    sha256_stream *s;

    if (r->n_alerts == r->cap_alerts) {
        size_t nc = r->cap_alerts ? r->cap_alerts * 2 : 64;
        struct alert *p = realloc(r->alerts, nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        r->alerts = p;
        r->cap_alerts = nc;
    }
    al = &r->alerts[r->n_alerts];
    memset(al, 0, sizeof(*al));
    al->rule = rule;
    al->severity = r->cfg[rule - rules].severity;
    al->party = party;
    al->counterparty = counterparty;
    al->substance = substance;
    al->lot = lot;
    al->permit = permit;
    al->events = arena_alloc(r->a, (n_ev ? n_ev : 1) * sizeof(*al->events));
    if (!al->events)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    /* the id: rule and evidence, which do not change between runs */
    if (!r->digest && !(r->digest = sha256_stream_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    s = r->digest;
    sha256_stream_reset(s);
    sha256_stream_update(s, rule->code, strlen(rule->code) + 1);
    for (size_t i = 0; i < n_ev; i++) {
        al->events[i].party = ev[i]->party;
        al->events[i].id = ev[i]->id;
        sha256_stream_update(s, ev[i]->party, strlen(ev[i]->party) + 1);
        sha256_stream_update(s, ev[i]->id, strlen(ev[i]->id) + 1);
    }
    if (permit)
        sha256_stream_update(s, permit, strlen(permit) + 1);
    if (n_ev == 0 && party)
        sha256_stream_update(s, party, strlen(party) + 1);
    sha256_stream_final(s, h);
    al->id[0] = 'A';
    hex_encode(al->id + 1, h, 8);
    al->n_events = n_ev;
    al->pos = n_ev ? ev[0]->pos : 0;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    al->detail = arena_strdup(r->a, detail, strlen(detail));
    r->n_alerts++;
    return TRACE_OK;
}

#define RAISE(r, ...) raise_alert(r, self, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Helpers for rules                                                    */

static const subst_info *sub_of(const struct run *r, const rec *e)
{
    return e->substance ? catalog_find(r->l->cat, e->substance) : NULL;
}

/* The CN precursor category of a substance (1-3), or 0. */
static int pc_category(const subst_info *s)
{
    static const char *const cats[] = {"CN-PC-1", "CN-PC-2", "CN-PC-3"};
    for (int i = 0; i < 3; i++)
        if (subst_has_scope(s, cats[i]))
            return i + 1;
    return 0;
}

static int is_drug(const subst_info *s)
{
    return subst_has_scope(s, "CN-NARC") || subst_has_scope(s, "CN-PSY-1") ||
           subst_has_scope(s, "CN-PSY-2");
}

static char *fmt_qty(struct run *r, int64_t amount, const char *unit)
{
    return format_qty(r->a, amount, unit);
}

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

/* ------------------------------------------------------------------ */
/* Rules                                                                */

#define RULE(i) (&rules[i])

/* PERMIT_MISSING, PERMIT_INVALID and PERMIT_EXCEEDED share the judging
 * of permit.c: each cited permit is shown as of the run's time. */
struct permit_view {
    struct run *r;
    int exists;
    const char *permit;
    int64_t budget, used;
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

static int cmp_id(const void *a, const void *b)
{
    const rec *x = *(rec *const *)a, *y = *(rec *const *)b;
    if (x->party != y->party) /* interned: pointer order is enough */
        return (uintptr_t)x->party < (uintptr_t)y->party ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The event (party, id), or NULL; the index is built on first use. */
static const rec *find_rec(struct run *r, const char *party, const char *id)
{
    rec key;
    const rec *kp = &key, **hit;

    if (!r->n)
        return NULL;
    if (!r->by_id) {
        if (!(r->by_id = malloc((r->n + 1) * sizeof(*r->by_id))))
            return NULL;
        for (size_t i = 0; i < r->n; i++)
            r->by_id[i] = &r->recs[i];
        qsort(r->by_id, r->n, sizeof(*r->by_id), cmp_id);
    }
    key.party = intern(r, party);
    key.id = id;
    hit = bsearch(&kp, r->by_id, r->n, sizeof(*r->by_id), cmp_id);
    return hit ? *hit : NULL;
}

static int rule_permits(struct run *r, const struct cfg *c)
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
        const subst_info *s = sub_of(r, e);
        const char *cited[2] = {e->permit, e->tpermit};
        int cat = pc_category(s), need = 0, need_transport = 0;

        if (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY) {
            need = cat != 0 && r->cfg[0].enabled;
            need_transport = e->carrier && (cat == 1 || cat == 2 ||
                                            (cat == 3 && r->cfg[0].p[0] != 0));
        } else if (e->kind == TRACE__V1__EVENT__BODY_IMPORT_BODY ||
                   e->kind == TRACE__V1__EVENT__BODY_EXPORT_BODY) {
            need = cat != 0 || is_drug(s);
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
                        r, missing, &e, 1, e->party, e->to, e->substance,
                        e->lot, NULL,
                        "%s %s of %s (category %d) cites no %s "
                        "permit",
                        e->type, e->id, e->substance, cat,
                        k == 0 ? (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY
                                      ? "purchase"
                                      : e->type)
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
            struct permit_view v = {r, 0, pm, 0, 0, NULL, NULL, 0};
            int prc = trace_permit_show(r->l, pm, r->as_of, keep_permit, &v);
            if (prc == TRACE_ENOTFOUND) {
                /* every citation of an unknown permit */
                for (size_t j = i; j < r->n && rc == TRACE_OK; j++) {
                    const rec *x = r->by_at[j];
                    if (!((x->permit && strcmp(x->permit, pm) == 0) ||
                          (x->tpermit && strcmp(x->tpermit, pm) == 0)))
                        continue;
                    if (r->cfg[0].enabled)
                        rc = raise_alert(r, missing, &x, 1, x->party, x->to,
                                         x->substance, x->lot, pm,
                                         "%s %s cites permit %s, which was "
                                         "never issued",
                                         x->type, x->id, pm);
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
                        rc = raise_alert(r, invalid, &x, 1, x->party, x->to,
                                         x->substance, x->lot, pm,
                                         "%s %s cites permit %s: %s", x->type,
                                         x->id, pm, use->reason);
                    continue;
                }
                used += use->qty;
                if (used > v.budget && n_over < 64)
                    over[n_over++] = x;
            }
            if (rc == TRACE_OK && n_over && r->cfg[2].enabled)
                rc = raise_alert(r, exceeded, over, n_over,
                                 over[0]->to ? over[0]->to : over[0]->party,
                                 over[0]->to ? over[0]->party : NULL,
                                 over[0]->substance, over[0]->lot, pm,
                                 "permit %s: %s %s written off against a "
                                 "budget of %s %s",
                                 pm, fmt_qty(r, v.used, v.unit), v.unit,
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
    int64_t diff = want > got ? want - got : got - want;
    if (!s || s->dim == DIM_COUNT)
        return diff == 0;
    return (double)diff <= (double)(want < 0 ? -want : want) * pct / 100.0;
}

static int rule_two_way(struct run *r, const struct cfg *c)
{
    const struct rule *unconfirmed = RULE(3), *mismatch = RULE(4),
                      *unmatched = RULE(5);
    int64_t window = (int64_t)(r->cfg[3].p[0] * (double)US_PER_HOUR);
    double pct = r->cfg[4].p[0];
    size_t *confirmed = NULL; /* per rec: receipts in the window */
    int rc = TRACE_OK;

    (void)c;
    if (!(confirmed = calloc(r->n + 1, sizeof(*confirmed))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
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
        if (!within_tolerance(sub_of(r, sale), sale->qty, e->qty, pct)) {
            const rec *ev[2] = {sale, e};
            confirmed[sale - r->recs]++; /* a short receipt is a mismatch */
            if (r->cfg[4].enabled)
                rc = raise_alert(
                    r, mismatch, ev, 2, sale->party, e->party, e->substance,
                    e->lot, NULL, "sale %s: %s %s sent, %s %s received",
                    sale->id, fmt_qty(r, sale->qty, sale->unit), sale->unit,
                    fmt_qty(r, e->qty, sale->unit), sale->unit);
        }
    }
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        if (e->kind != TRACE__V1__EVENT__BODY_SALE_BODY ||
            confirmed[e - r->recs] || !r->cfg[3].enabled)
            continue;
        if (r->as_of <= e->at + window)
            continue; /* the window is still open */
        rc = raise_alert(r, unconfirmed, &e, 1, e->party, e->to, e->substance,
                         e->lot, NULL,
                         "sale %s to %s has no receipt within %.0f h", e->id,
                         e->to, r->cfg[3].p[0]);
    }
    free(confirmed);
    return rc;
}

/* Stock walks: NEGATIVE_STOCK per (party, substance, lot) over all
 * sites, STOCKTAKE_VARIANCE per (party, site, substance, lot). */
struct change {
    const rec *e;
    int64_t delta;
    int is_count;
    int input; /* 1 + index of the produce input it consumes, or 0 */
};

struct walk {
    struct change *c;
    size_t n, cap;
};

/* Walks in the order their keys were first seen (deterministic output). */
struct walks {
    strmap *m;
    const char **keys;
    size_t n, cap;
};

static int push_change(struct run *r, struct walks *ws, const char *key,
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

static void walks_free(struct walks *ws)
{
    strmap_free(ws->m);
    free(ws->keys);
}

/* One change of a holding; holdings are told apart by their interned
 * names, so grouping is a sort, not a hash lookup per event. */
struct hchange {
    const char *party, *sub, *lot, *site; /* site NULL: all sites */
    size_t order;                         /* position in `at` order */
    struct change ch;
};

struct hlist {
    struct hchange *v;
    size_t n, cap;
};

static int hpush(struct hlist *h, const char *party, const char *sub,
                 const char *lot, const char *site, size_t order,
                 struct change ch)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 1024;
        struct hchange *p = realloc(h->v, nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        h->v = p;
        h->cap = nc;
    }
    h->v[h->n++] = (struct hchange){party, sub, lot, site, order, ch};
    return TRACE_OK;
}

static int cmp_ptr(const void *a, const void *b)
{
    return (uintptr_t)a < (uintptr_t)b ? -1 : (uintptr_t)a > (uintptr_t)b;
}

static int same_lot(const struct hchange *x, const struct hchange *y)
{
    return x->party == y->party && x->sub == y->sub && x->lot == y->lot;
}

/* By (party, substance, lot), then time; sites mix within a lot. */
static int cmp_hchange(const void *a, const void *b)
{
    const struct hchange *x = a, *y = b;
    int c;
    if ((c = cmp_ptr(x->party, y->party)) || (c = cmp_ptr(x->sub, y->sub)) ||
        (c = cmp_ptr(x->lot, y->lot)))
        return c;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return cmp_ptr(x->site, y->site);
}

/* Every stock change and count, grouped by (party, substance, lot), each
 * group in `at` order; each change names its site. */
static int stock_changes(struct run *r, struct hlist *h)
{
    int rc = TRACE_OK;

    memset(h, 0, sizeof(*h));
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const char *site = e->site;
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
            rc = hpush(h, e->party, e->substance, e->lot, e->from, i,
                       (struct change){e, -e->qty, 0, 0});
            if (rc == TRACE_OK)
                rc = hpush(h, e->party, e->substance, e->lot, e->to, i,
                           (struct change){e, e->qty, 0, 0});
            continue;
        case TRACE__V1__EVENT__BODY_STOCKTAKE_BODY:
            rc = hpush(h, e->party, e->substance, e->lot, site, i,
                       (struct change){e, e->qty, 1, 0});
            continue;
        default:
            continue;
        }
        for (size_t k = 0; k < e->n_inputs && rc == TRACE_OK; k++)
            rc = hpush(h, e->party, e->inputs[k].substance, e->inputs[k].lot,
                       site, i,
                       (struct change){e, -e->inputs[k].qty, 0, (int)k + 1});
        if (rc == TRACE_OK)
            rc = hpush(h, e->party, e->substance, e->lot, site, i,
                       (struct change){e, sign * e->qty, 0, 0});
    }
    if (rc != TRACE_OK) {
        free(h->v);
        return rc;
    }
    qsort(h->v, h->n, sizeof(*h->v), cmp_hchange);
    return TRACE_OK;
}

/* NEGATIVE_STOCK over all sites of a (party, substance, lot), and
 * STOCKTAKE_VARIANCE against the counted site's book stock, in one walk. */
struct site_book {
    const char *site;
    int64_t book;
};

static int rule_stock(struct run *r, const struct cfg *c)
{
    const struct rule *negative = RULE(6), *variance = RULE(7);
    double pct = r->cfg[7].p[0];
    struct site_book *sites = NULL;
    size_t n_sites = 0, cap_sites = 0;
    struct hlist h;
    int64_t total = 0, before = 0;
    int rc;

    (void)c;
    if ((rc = stock_changes(r, &h)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < h.n && rc == TRACE_OK; i++) {
        const struct hchange *x = &h.v[i];
        const rec *e = x->ch.e;
        struct site_book *sb = NULL;
        int first = i == 0 || !same_lot(x, &h.v[i - 1]);
        if (first) {
            total = 0;
            n_sites = 0;
        }
        for (size_t k = 0; k < n_sites; k++)
            if (sites[k].site == x->site)
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
            *sb = (struct site_book){x->site, 0};
        }
        if (x->ch.is_count) {
            if (r->cfg[7].enabled &&
                !within_tolerance(sub_of(r, e), sb->book, x->ch.delta, pct))
                rc = raise_alert(r, variance, &e, 1, e->party, NULL,
                                 e->substance, e->lot, NULL,
                                 "stocktake %s at site %s counted %s %s, "
                                 "book stock %s %s",
                                 e->id, e->site,
                                 fmt_qty(r, x->ch.delta, e->unit), e->unit,
                                 fmt_qty(r, sb->book, e->unit), e->unit);
            continue;
        }
        /* an event's changes (a transfer has two) count together */
        if (first || h.v[i - 1].ch.e != e)
            before = total;
        sb->book += x->ch.delta;
        total += x->ch.delta;
        int last =
            i + 1 == h.n || h.v[i + 1].ch.e != e || !same_lot(x, &h.v[i + 1]);
        if (last && before >= 0 && total < 0 && r->cfg[6].enabled)
            rc = raise_alert(
                r, negative, &e, 1, e->party, NULL, x->sub, x->lot, NULL,
                "book stock of %s lot %s at %s goes below zero "
                "(%s %s) with %s %s",
                x->sub, x->lot, e->party, fmt_qty(r, total, e->unit), e->unit,
                e->type, e->id);
    }
    free(sites);
    free(h.v);
    return rc;
}

/* UNUSUAL_ORDER: orders are sales to a buyer of a substance.  Each
 * (buyer, substance) keeps its orders in time order with a sliding
 * one-year window and its running sum. */
struct orders {
    struct walk w;
    size_t start; /* first order inside the window */
    double sum;   /* of orders [start, n) */
};

static int rule_unusual(struct run *r, const struct cfg *c)
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
            (double)e->qty * (double)n > c->p[0] * o->sum)
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
static int rule_unlicensed(struct run *r, const struct cfg *c)
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
        const subst_info *s = sub_of(r, e);
        if (e->kind == TRACE__V1__EVENT__BODY_SALE_BODY)
            who = e->to;
        else if (e->kind == TRACE__V1__EVENT__BODY_RECEIPT_BODY)
            who = e->from;
        else
            continue;
        const rec *p = party_at(r, parties, who, e->at);
        char need[64] = "";
        for (size_t k = 0; s && k < s->n_scopes; k++)
            if (strncmp(s->scopes[k], "CN-", 3) == 0) {
                snprintf(need, sizeof(need), "%s", s->scopes[k]);
                break;
            }
        if (!p)
            why = "is not registered";
        else if (p->pstatus && strcmp(p->pstatus, "suspended") == 0)
            why = "is suspended";
        else if (need[0] && !has_license(p, need))
            why = "lacks the licence scope";
        if (!why)
            continue;
        rc = RAISE(r, &e, 1, who, e->party, e->substance, e->lot, NULL,
                   "%s %s%s%s for %s (%s %s)", who, why,
                   why[0] == 'l' ? " " : "", why[0] == 'l' ? need : "",
                   e->substance, e->type, e->id);
    }
    free_parties(parties);
    return rc;
}

static int rule_destroy(struct run *r, const struct cfg *c)
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
        if (why)
            rc = RAISE(r, &e, 1, e->party, e->witness, e->substance, e->lot,
                       NULL, "destruction %s of %s %s %s", e->id,
                       fmt_qty(r, e->qty, e->unit), e->unit, why);
    }
    free_parties(parties);
    return rc;
}

static int rule_loss(struct run *r, const struct cfg *c)
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

static int rule_late(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(12);
    int rc = TRACE_OK;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        const subst_info *s;
        int cat;
        double days;
        if (e->kind != TRACE__V1__EVENT__BODY_SALE_BODY || e->historic)
            continue;
        s = sub_of(r, e);
        cat = pc_category(s);
        if (cat)
            days = cat == 1 ? c->p[0] : c->p[1];
        else if (is_drug(s) && c->p[2] > 0)
            days = c->p[2];
        else
            continue;
        if ((double)(e->recorded - e->at) > days * (double)US_PER_DAY)
            rc = RAISE(r, &e, 1, e->party, e->to, e->substance, e->lot, NULL,
                       "sale %s recorded %.1f days after it happened "
                       "(deadline %.0f days)",
                       e->id, (double)(e->recorded - e->at) / US_PER_DAY, days);
    }
    return rc;
}

/* RX_LIMIT, RX_REUSE, DOCTOR_SHOPPING. */
static int rx_class(const subst_info *s)
{
    if (subst_has_scope(s, "CN-NARC") || subst_has_scope(s, "CN-PSY-1"))
        return 1;
    if (subst_has_scope(s, "CN-PSY-2"))
        return 2;
    return 0;
}

static int rule_rx_limit(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(13);
    int rc = TRACE_OK;
    (void)c;
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++) {
        const rec *e = r->by_at[i];
        int cls, limit;
        if (e->kind != TRACE__V1__EVENT__BODY_DISPENSE_BODY)
            continue;
        cls = rx_class(sub_of(r, e));
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

/* Dispensings of controlled drugs (or all, with `all`), grouped by a
 * field (interned, so grouping is a pointer sort) and in `at` order. */
struct by_field {
    const char *key;
    const rec *e;
};

static int cmp_by_field(const void *a, const void *b)
{
    const struct by_field *x = a, *y = b;
    int c = cmp_ptr(x->key, y->key);
    if (c)
        return c;
    return x->e->pos < y->e->pos ? -1 : x->e->pos > y->e->pos;
}

static int dispensings(struct run *r, int patient, int all,
                       struct by_field **out, size_t *n_out)
{
    struct by_field *v = malloc((r->n + 1) * sizeof(*v));
    size_t n = 0;

    if (!v)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        const rec *e = r->by_at[i];
        if (e->kind != TRACE__V1__EVENT__BODY_DISPENSE_BODY ||
            (!all && !rx_class(sub_of(r, e))))
            continue;
        v[n++] = (struct by_field){patient ? e->patient : e->rx, e};
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_by_field);
    *out = v;
    *n_out = n;
    return TRACE_OK;
}

static int rule_rx_reuse(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(14);
    struct by_field *v = NULL;
    size_t n = 0, first = 0;
    int rc;

    (void)c;
    if ((rc = dispensings(r, 0, 1, &v, &n)) != TRACE_OK)
        return rc;
    for (size_t i = 0; i < n && rc == TRACE_OK; i++) {
        if (i == 0 || v[i].key != v[i - 1].key) {
            first = i;
            continue;
        }
        const rec *ev[2] = {v[first].e, v[i].e};
        rc = RAISE(r, ev, 2, ev[1]->party, ev[0]->party, ev[1]->substance,
                   ev[1]->lot, NULL,
                   "prescription %s dispensed again by %s (first by %s, %s)",
                   ev[1]->rx, ev[1]->party, ev[0]->party, ev[0]->id);
    }
    free(v);
    return rc;
}

static int count_distinct(const rec *const *ev, size_t n, int prescribers)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = prescribers ? ev[i]->prescriber : ev[i]->party;
        size_t j;
        for (j = 0; j < i; j++)
            if (strcmp(prescribers ? ev[j]->prescriber : ev[j]->party, v) == 0)
                break;
        count += j == i;
    }
    return count;
}

/* One patient, >= P prescribers and >= Q pharmacies within D days (last
 * minus first <= D days); one alert per episode. */
static int rule_doctor_shopping(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(15);
    int64_t span = (int64_t)(c->p[2] * (double)US_PER_DAY);
    struct by_field *v = NULL;
    const rec **ev = NULL;
    size_t n_all = 0;
    int rc;

    if ((rc = dispensings(r, 1, 0, &v, &n_all)) != TRACE_OK)
        return rc;
    if (!(ev = malloc((n_all + 1) * sizeof(*ev)))) {
        free(v);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t g = 0; g < n_all && rc == TRACE_OK;) {
        size_t end = g, start = g;
        while (end < n_all && v[end].key == v[g].key)
            end++;
        for (size_t k = g; k < end && rc == TRACE_OK; k++) {
            while (v[k].e->at - v[start].e->at > span)
                start++;
            size_t n = k - start + 1;
            if (n < (size_t)c->p[0] || n < (size_t)c->p[1])
                continue;
            for (size_t j = 0; j < n; j++)
                ev[j] = v[start + j].e;
            int prescribers = count_distinct(ev, n, 1);
            int pharmacies = count_distinct(ev, n, 0);
            if (prescribers < (int)c->p[0] || pharmacies < (int)c->p[1])
                continue;
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
    free(ev);
    free(v);
    return rc;
}

static int rule_chain(struct run *r, const struct cfg *c)
{
    const struct rule *self = RULE(16);
    trace_verify_result res;
    int rc;
    (void)c;
    rc = trace_ledger_verify(r->l, &res, NULL, NULL);
    if (rc == TRACE_OK)
        return TRACE_OK;
    if (rc != TRACE_EVERIFY)
        return rc;
    char ref[32];
    snprintf(ref, sizeof(ref), "entry-%llu", (unsigned long long)res.bad_seq);
    rec fake = {0};
    fake.party = "journal";
    fake.id = intern(r, ref);
    const rec *ev = &fake;
    return RAISE(r, &ev, 1, NULL, NULL, NULL, NULL, NULL, "%s", res.reason);
}

/* The rule table: code, default severity, summary, parameters. */
static const struct rule rules[N_RULES] = {
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
     "a receipt's quantity differs from its sale's beyond tolerance (any "
     "difference for counts)",
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
     "a destruction names no witness, or one that is not a regulator",
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
    {"CHAIN_BROKEN",
     "critical",
     "verification finds an entry whose hash, link or signature fails",
     {NULL},
     {0},
     rule_chain},
};

static const char *const severities[] = {"info", "low",      "medium",
                                         "high", "critical", NULL};

static int load_config(struct run *r, const trace_reconcile_opts *o)
{
    json_error_t jerr;
    json_t *root;
    const char *code;
    json_t *val;
    int rc = TRACE_OK;

    for (size_t i = 0; i < N_RULES; i++) {
        r->cfg[i].enabled = 1;
        r->cfg[i].severity = rules[i].severity;
        memcpy(r->cfg[i].p, rules[i].pdef, sizeof(r->cfg[i].p));
    }
    if (!o->rules_json)
        return TRACE_OK;
    root =
        json_loadb(o->rules_json, o->rules_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return trace_fail(TRACE_EINVAL, "rules file: %s (line %d)",
                          root ? "must be an object" : jerr.text, jerr.line);
    }
    json_object_foreach(root, code, val)
    {
        size_t i;
        const char *key;
        json_t *v;
        for (i = 0; i < N_RULES && strcmp(rules[i].code, code) != 0; i++)
            ;
        if (i == N_RULES || !json_is_object(val)) {
            rc = trace_fail(TRACE_EINVAL,
                            "rules file: unknown rule %s or "
                            "not an object",
                            code);
            break;
        }
        json_object_foreach(val, key, v)
        {
            int k;
            if (strcmp(key, "enabled") == 0 && json_is_boolean(v)) {
                r->cfg[i].enabled = json_is_true(v);
                continue;
            }
            if (strcmp(key, "severity") == 0 && json_is_string(v)) {
                for (k = 0; severities[k]; k++)
                    if (strcmp(severities[k], json_string_value(v)) == 0)
                        r->cfg[i].severity = severities[k];
                if (r->cfg[i].severity != rules[i].severity ||
                    strcmp(rules[i].severity, json_string_value(v)) == 0)
                    continue;
            }
            for (k = 0; k < MAX_PARAMS && rules[i].pname[k]; k++)
                if (strcmp(rules[i].pname[k], key) == 0 && json_is_number(v) &&
                    json_number_value(v) >= 0)
                    break;
            if (k == MAX_PARAMS || !rules[i].pname[k]) {
                rc = trace_fail(TRACE_EINVAL,
                                "rules file: %s.%s is not a parameter of the "
                                "rule, or its value is wrong",
                                code, key);
                break;
            }
            r->cfg[i].p[k] = json_number_value(v);
        }
        if (rc != TRACE_OK)
            break;
    }
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Loading the effective events                                         */

static int add_rec(struct run *r, const Trace__V1__Event *ev,
                   const Trace__V1__Entry *e, uint64_t seq)
{
    const ProtobufCMessage *body = event_body(ev);
    const Trace__V1__Quantity *q = msg_field(body, "qty");
    rec *x;

    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 1024;
        rec *p = realloc(r->recs, nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        r->recs = p;
        r->cap = nc;
    }
    x = &r->recs[r->n];
    memset(x, 0, sizeof(*x));
    x->seq = seq;
    x->at = ev->at->us;
    x->recorded = e->recorded_us;
    x->historic = e->has_historic && e->historic;
    x->kind = ev->body_case;
    x->type = event_type_by_case(ev->body_case)->name;
    x->party = intern(r, ev->party);
    x->id = arena_strdup(r->a, ev->id, strlen(ev->id));
    x->substance =
        intern(r, canonical_substance(r->l, msg_field(body, "substance")));
    x->lot = intern(r, msg_field(body, "lot"));
    x->site = intern(r, msg_field(body, "site"));
    if (!x->site)
        x->site = intern(r, "main");
    if (!q && ev->body_case == TRACE__V1__EVENT__BODY_STOCKTAKE_BODY)
        q = ev->stocktake_body->counted;
    if (q) {
        x->qty = q->amount;
        x->unit = unit_name(unit_index(q->unit));
    }
    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_SALE_BODY:
        x->to = intern(r, ev->sale_body->to);
        x->permit = intern(r, ev->sale_body->permit);
        x->tpermit = intern(r, ev->sale_body->transport_permit);
        x->carrier = intern(r, ev->sale_body->carrier);
        break;
    case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        x->from = intern(r, ev->receipt_body->from);
        x->ref = arena_strdup(r->a, ev->receipt_body->ref,
                              strlen(ev->receipt_body->ref));
        break;
    case TRACE__V1__EVENT__BODY_TRANSFER_BODY:
        x->from = intern(r, ev->transfer_body->from_site);
        x->to = intern(r, ev->transfer_body->to_site);
        break;
    case TRACE__V1__EVENT__BODY_IMPORT_BODY:
        x->permit = intern(r, ev->import_body->permit);
        break;
    case TRACE__V1__EVENT__BODY_EXPORT_BODY:
        x->permit = intern(r, ev->export_body->permit);
        break;
    case TRACE__V1__EVENT__BODY_DESTROY_BODY:
        x->witness = intern(r, ev->destroy_body->witness);
        break;
    case TRACE__V1__EVENT__BODY_LOSS_BODY:
        x->reason = intern(r, ev->loss_body->reason);
        break;
    case TRACE__V1__EVENT__BODY_DISPENSE_BODY: {
        const Trace__V1__Rx *rx = ev->dispense_body->rx;
        x->rx = intern(r, rx->id);
        x->prescriber = intern(r, rx->prescriber);
        x->patient = intern(r, rx->patient);
        x->form = intern(r, rx->form);
        x->days = rx->days_supply;
        x->chronic = rx->has_chronic && rx->chronic;
        break;
    }
    case TRACE__V1__EVENT__BODY_PRODUCE_BODY: {
        const Trace__V1__ProduceBody *p = ev->produce_body;
        x->n_inputs = p->n_inputs;
        x->inputs = arena_alloc(r->a, (p->n_inputs + 1) * sizeof(*x->inputs));
        if (!x->inputs)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_inputs; i++) {
            x->inputs[i].lot = intern(r, p->inputs[i]->lot);
            x->inputs[i].substance =
                intern(r, canonical_substance(r->l, p->inputs[i]->substance));
            x->inputs[i].qty = p->inputs[i]->qty->amount;
        }
        break;
    }
    case TRACE__V1__EVENT__BODY_PARTY_BODY: {
        const Trace__V1__PartyBody *p = ev->party_body;
        x->subject = intern(r, p->subject);
        x->pkind = intern(r, p->kind);
        x->pstatus = intern(r, p->status);
        x->n_licenses = p->n_licenses;
        x->licenses = arena_alloc(r->a, (p->n_licenses + 1) * sizeof(char *));
        if (!x->licenses)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_licenses; i++)
            x->licenses[i] = (char *)intern(r, p->licenses[i]);
        break;
    }
    default:
        break;
    }
    r->n++;
    return TRACE_OK;
}

static int cmp_at(const void *a, const void *b)
{
    const rec *x = *(rec *const *)a, *y = *(rec *const *)b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the journal once: every event in force, corrections applied. */
static int load_events(struct run *r)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    arena *tmp = arena_new(64u << 20);
    strmap *eff = strmap_new(sizeof(uint64_t));
    int rc;

    if (!tmp || !eff) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    /* the corrections in force, by corrected (party, id) */
    if ((rc = mdb_cursor_open(r->txn, r->l->dbi_eff, &cur))) {
        rc = trace_fail_mdb(rc, "eff");
        goto out;
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        char key[KEY_MAX];
        uint64_t *slot;
        if (k.mv_size >= sizeof(key) || v.mv_size != 8)
            continue;
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        key[strlen(key)] = '\x01'; /* party \0 id -> party \1 id */
        if (!(slot = strmap_get(eff, key, 1))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        *slot = be64_get(v.mv_data);
    }
    mdb_cursor_close(cur);
    if ((rc = mdb_cursor_open(r->txn, r->l->dbi_journal, &cur))) {
        cur = NULL;
        rc = trace_fail_mdb(rc, "journal");
        goto out;
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;
        char key[KEY_MAX];
        uint64_t seq = be64_get(k.mv_data), *in_force;

        arena_reset(tmp);
        e = trace__v1__entry__unpack(arena_allocator(tmp), v.mv_size,
                                     v.mv_data);
        /* a damaged entry is left out; CHAIN_BROKEN reports it */
        if (!e || !(ev = event_decode(tmp, e->event.data, e->event.len)))
            continue;
        if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY) {
            const Trace__V1__CorrectionBody *c = ev->correction_body;
            snprintf(key, sizeof(key), "%s\x01%s", ev->party, c->corrects);
            in_force = strmap_get(eff, key, 0);
            if (!in_force || *in_force != seq || !c->has_replacement)
                continue;
            ev = event_decode(tmp, c->replacement.data, c->replacement.len);
            if (!ev)
                continue;
        } else {
            snprintf(key, sizeof(key), "%s\x01%s", ev->party, ev->id);
            if (strmap_get(eff, key, 0))
                continue; /* corrected: its replacement stands instead */
        }
        if ((rc = add_rec(r, ev, e, seq)) != TRACE_OK)
            goto out;
    }
    if (rc != MDB_NOTFOUND) {
        rc = trace_fail_mdb(rc, "journal");
        goto out;
    }
    rc = TRACE_OK;
    if (!(r->by_at = malloc((r->n + 1) * sizeof(*r->by_at)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->n; i++)
        r->by_at[i] = &r->recs[i];
    qsort(r->by_at, r->n, sizeof(*r->by_at), cmp_at);
    for (size_t i = 0; i < r->n; i++)
        r->by_at[i]->pos = i;
out:
    if (cur)
        mdb_cursor_close(cur);
    arena_free(tmp);
    strmap_free(eff);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Alerts: JSON, storage, status                                        */

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static char *alert_json(const struct alert *al, const char *status)
{
    json_t *o = json_object(), *evs = json_array();
    char *s;

    json_object_set_new(o, "id", json_string(al->id));
    json_object_set_new(o, "rule", json_string(al->rule->code));
    json_object_set_new(o, "severity", json_string(al->severity));
    json_object_set_new(o, "party", opt_str(al->party));
    json_object_set_new(o, "counterparty", opt_str(al->counterparty));
    json_object_set_new(o, "substance", opt_str(al->substance));
    json_object_set_new(o, "lot", opt_str(al->lot));
    json_object_set_new(o, "permit", opt_str(al->permit));
    for (size_t i = 0; i < al->n_events; i++) {
        json_t *ev = json_object();
        json_object_set_new(ev, "party", json_string(al->events[i].party));
        json_object_set_new(ev, "id", json_string(al->events[i].id));
        json_array_append_new(evs, ev);
    }
    json_object_set_new(o, "events", evs);
    json_object_set_new(o, "detail", json_string(al->detail));
    if (status)
        json_object_set_new(o, "status", json_string(status));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Status of an alert from the acks index (state.c). */
static const char *alert_status(MDB_txn *txn, const trace_ledger *l,
                                const char *id, char *buf, size_t cap)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    if (mdb_get(txn, l->dbi_acks, &k, &v) != 0 || v.mv_size <= 8 ||
        v.mv_size - 8 >= cap)
        return "open";
    memcpy(buf, (char *)v.mv_data + 8, v.mv_size - 8);
    buf[v.mv_size - 8] = '\0';
    return buf;
}

/* Stores the alerts not stored yet; marks which were new. */
static int store_alerts(struct run *r, int *is_new)
{
    MDB_txn *txn;
    MDB_val k, v, sk;
    uint64_t next = 0;
    uint8_t seqb[8];
    MDB_cursor *cur;
    int rc;

    if ((rc = mdb_txn_begin(r->l->env, NULL, 0, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, r->l->dbi_alertseq, &cur)) == 0) {
        if (mdb_cursor_get(cur, &sk, &v, MDB_LAST) == 0 && sk.mv_size == 8)
            next = be64_get(sk.mv_data);
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; i < r->n_alerts && rc == 0; i++) {
        struct alert *al = &r->alerts[i];
        char *json = alert_json(al, NULL);
        if (!json) {
            rc = ENOMEM;
            break;
        }
        k = (MDB_val){strlen(al->id), al->id};
        v = (MDB_val){strlen(json), json};
        rc = mdb_put(txn, r->l->dbi_alerts, &k, &v, MDB_NOOVERWRITE);
        if (rc == 0) {
            is_new[i] = 1;
            be64_put(seqb, ++next);
            sk = (MDB_val){8, seqb};
            rc = mdb_put(txn, r->l->dbi_alertseq, &sk, &k, MDB_APPEND);
        } else if (rc == MDB_KEYEXIST) {
            rc = 0;
        }
        free(json);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc == ENOMEM ? trace_fail(TRACE_ENOMEM, "out of memory")
                            : trace_fail_mdb(rc, "alerts");
    }
    if ((rc = mdb_txn_commit(txn)))
        return trace_fail_mdb(rc, "commit");
    return TRACE_OK;
}

static int emit_alert(struct run *r, const struct alert *al, int is_new,
                      trace_alert_fn fn, void *ctx)
{
    char buf[32];
    const char *status;
    char *json;

    if (!fn)
        return TRACE_OK;
    status = alert_status(r->txn, r->l, al->id, buf, sizeof(buf));
    json = alert_json(al, status);
    trace_alert a = {al->id,           al->rule->code,
                     al->severity,     al->party,
                     al->counterparty, al->substance,
                     al->lot,          al->permit,
                     al->n_events,     al->events,
                     al->detail,       status,
                     is_new,           json};
    int rc;
    if (!json)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    rc = fn(&a, ctx);
    free(json);
    return rc;
}

static int cmp_alert(const void *a, const void *b)
{
    const struct alert *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return strcmp(x->id, y->id);
}

int trace_reconcile(trace_ledger *l, const trace_reconcile_opts *opts,
                    trace_alert_fn fn, void *ctx,
                    trace_reconcile_summary *summary)
{
    trace_reconcile_opts def = TRACE_RECONCILE_OPTS_INIT;
    struct run r;
    int *is_new = NULL;
    struct timespec t0, t1;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!opts)
        opts = &def;
    memset(&r, 0, sizeof(r));
    r.l = l;
    r.as_of = opts->as_of_us == INT64_MAX ? time_now_us() : opts->as_of_us;
    r.a = arena_new(0);
    r.strings = strmap_new(sizeof(char *));
    if (!r.a || !r.strings) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load_config(&r, opts)) != TRACE_OK)
        goto out;
    if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &r.txn))) {
        r.txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if ((rc = load_events(&r)) != TRACE_OK)
        goto out;
    /* A rule without a function is raised by the function of the rule
     * before it (permits, two-way verification): run each function if
     * any rule of its group is enabled. */
    for (size_t i = 0; i < N_RULES && rc == TRACE_OK; i++) {
        int any = r.cfg[i].enabled;
        if (!rules[i].fn)
            continue;
        for (size_t j = i + 1; j < N_RULES && !rules[j].fn; j++)
            any |= r.cfg[j].enabled;
        if (any)
            rc = rules[i].fn(&r, &r.cfg[i]);
    }
    if (rc != TRACE_OK)
        goto out;
    /* the same order on every run: rule, then evidence in time */
    if (r.n_alerts)
        qsort(r.alerts, r.n_alerts, sizeof(*r.alerts), cmp_alert);
    /* drop alerts of disabled rules raised by shared functions */
    size_t kept = 0;
    for (size_t i = 0; i < r.n_alerts; i++)
        if (r.cfg[r.alerts[i].rule - rules].enabled)
            r.alerts[kept++] = r.alerts[i];
    r.n_alerts = kept;
    if (!(is_new = calloc(r.n_alerts + 1, sizeof(*is_new)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if (!opts->dry_run && (rc = store_alerts(&r, is_new)) != TRACE_OK)
        goto out;
    for (size_t i = 0; i < r.n_alerts && rc == TRACE_OK; i++)
        rc = emit_alert(&r, &r.alerts[i], is_new[i], fn, ctx);
    if (summary) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        summary->events = r.n;
        summary->alerts = r.n_alerts;
        summary->new_alerts = 0;
        for (size_t i = 0; i < r.n_alerts; i++)
            summary->new_alerts += (uint64_t)is_new[i];
        summary->seconds = (double)(t1.tv_sec - t0.tv_sec) +
                           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    }
out:
    if (r.txn)
        mdb_txn_abort(r.txn);
    free(is_new);
    free(r.recs);
    free(r.by_at);
    free(r.by_id);
    free(r.alerts);
    sha256_stream_free(r.digest);
    strmap_free(r.strings);
    arena_free(r.a);
    return rc;
}

int trace_alerts(trace_ledger *l, const trace_alert_filter *f,
                 trace_alert_fn fn, void *ctx)
{
    trace_alert_filter def = TRACE_ALERT_FILTER_INIT;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v, av;
    int rc;

    if (!f)
        f = &def;
    if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, l->dbi_alertseq, &cur))) {
        rc = trace_fail_mdb(rc, "alerts");
        goto out;
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        json_t *o, *evs;
        char buf[32], id[64];
        const char *status;
        trace_event_ref refs[64];
        size_t n = 0;

        if (v.mv_size >= sizeof(id) ||
            mdb_get(txn, l->dbi_alerts, &v, &av) != 0)
            continue;
        memcpy(id, v.mv_data, v.mv_size);
        id[v.mv_size] = '\0';
        status = alert_status(txn, l, id, buf, sizeof(buf));
        if (!(o = json_loadb(av.mv_data, av.mv_size, 0, NULL)))
            continue;
#define S(key) json_string_value(json_object_get(o, key))
        if ((f->status && strcmp(f->status, status) != 0) ||
            (f->rule && (!S("rule") || strcmp(f->rule, S("rule")) != 0)) ||
            (f->party && !((S("party") && strcmp(S("party"), f->party) == 0) ||
                           (S("counterparty") &&
                            strcmp(S("counterparty"), f->party) == 0)))) {
            json_decref(o);
            continue;
        }
        evs = json_object_get(o, "events");
        for (size_t i = 0; i < json_array_size(evs) && n < 64; i++, n++) {
            refs[n].party = json_string_value(
                json_object_get(json_array_get(evs, i), "party"));
            refs[n].id = json_string_value(
                json_object_get(json_array_get(evs, i), "id"));
        }
        json_object_set_new(o, "status", json_string(status));
        char *json = json_dumps(o, JSON_COMPACT);
        trace_alert a = {id,
                         S("rule"),
                         S("severity"),
                         S("party"),
                         S("counterparty"),
                         S("substance"),
                         S("lot"),
                         S("permit"),
                         n,
                         refs,
                         S("detail"),
                         status,
                         0,
                         json};
#undef S
        rc = json ? fn(&a, ctx) : TRACE_ENOMEM;
        free(json);
        json_decref(o);
        if (rc != 0)
            goto out;
    }
    rc = rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "alerts");
out:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int trace_rules_describe(trace_rule_info_fn fn, void *ctx)
{
    for (size_t i = 0; i < N_RULES; i++) {
        char params[256] = "";
        size_t o = 0;
        for (int k = 0; k < MAX_PARAMS && rules[i].pname[k]; k++)
            o += (size_t)snprintf(params + o, sizeof(params) - o, "%s%s=%g",
                                  k ? " " : "", rules[i].pname[k],
                                  rules[i].pdef[k]);
        int rc =
            fn(rules[i].code, rules[i].severity, params, rules[i].summary, ctx);
        if (rc)
            return rc;
    }
    return TRACE_OK;
}
