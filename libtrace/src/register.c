/* SPDX-License-Identifier: Apache-2.0 */
/*
 * register.c - the special register (专用账册) of a pharmacy or any
 * holder: per day, opening balance, receipts, dispensings, destructions,
 * other outflows and closing balance of one substance.
 *
 * Built from the stock index (state.c): for each holding of the party
 * and substance, one seek gives the balance before the first day, and the
 * records inside the window are exactly the day's movements, so the cost
 * follows the window, not the party's whole history.
 *
 * Each entry carries the running balance after it over all holdings (the
 * opening balance plus the changes before it in `at` order), and its
 * specification (规格): the event's own `spec`, else the lot's, looked
 * up once per lot in the lots index (the party's receipt or produce of
 * the lot, else the lot's produce event by its producer).
 *
 * The opening balance and the day's totals add up several holdings, so
 * they may not fit an int64 even though every holding does: those sums
 * are checked, and one that overflows fails the register with "quantity
 * overflow" naming the party, substance and day rather than print a
 * wrapped figure.  A movement that is not one event's change (a wrapped
 * index of an older version) is reported as damage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace/query.h"

#define US_PER_DAY 86400000000LL
#define MAX_DAYS   3700

struct move {
    int64_t at;
    uint64_t seq;
    uint8_t n;
    int64_t delta;
};

static int cmp_move(const void *a, const void *b)
{
    const struct move *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->n - y->n;
}

static int64_t day_start(int64_t t, int tz_min)
{
    int64_t off = (int64_t)tz_min * 60000000LL, local = t + off;
    int64_t d = local >= 0 ? local / US_PER_DAY
                           : -((-local + US_PER_DAY - 1) / US_PER_DAY);
    return d * US_PER_DAY - off;
}

/* The error of a day whose balance or totals do not fit an int64. */
static int day_overflow(const char *party, const char *code, int64_t day,
                        int tz_min)
{
    Trace__V1__Time date = TRACE__V1__TIME__INIT;
    char text[48] = "?";

    date.us = day;
    date.has_offset_min = 1;
    date.offset_min = tz_min;
    date.has_date_only = 1;
    date.date_only = 1;
    time_format(text, sizeof(text), &date);
    return trace_fail(TRACE_EINVAL,
                      "quantity overflow: the register of %s for %s on %s "
                      "sums beyond the largest representable quantity",
                      party, code, text);
}

/* Collects the party's movements of `code` in [from, to] and its
 * opening balance; the lots of the holdings that moved in the window or
 * held stock at its start go into `lots` (as keys). */
static int collect(MDB_txn *txn, trace_ledger *l, const char *party,
                   const char *code, int64_t from, int64_t to, int64_t *opening,
                   struct move **out, size_t *n_out, const char **unit,
                   strmap *lots)
{
    uint8_t prefix[KEY_MAX], probe[BAL_SIZE], hold[KEY_MAX];
    size_t plen, n = 0, cap = 0;
    struct move *mv = NULL;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    plen = compose_key(prefix, sizeof(prefix), party, code, strlen(code) + 1);
    if ((rc = mdb_cursor_open(txn, l->dbi_bal, &cur)))
        return trace_fail_mdb(rc, "bal");
    *opening = 0;
    be64_put(probe, time_key(from));
    memset(probe + 8, 0, BAL_SIZE - 8);
    k = (MDB_val){plen, prefix};
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > plen && k.mv_size <= sizeof(hold) &&
           memcmp(k.mv_data, prefix, plen) == 0) {
        size_t hlen = k.mv_size, n_before = n;
        int64_t cum = 0, at_start;
        memcpy(hold, k.mv_data, hlen);
        if (!*unit && v.mv_size == BAL_SIZE)
            *unit = unit_name(((uint8_t *)v.mv_data)[25]);
        /* balance before the window, then the window's records */
        MDB_val hk = {hlen, hold}, hv = {BAL_SIZE, probe};
        rc = mdb_cursor_get(cur, &hk, &hv, MDB_GET_BOTH_RANGE);
        if (rc == 0) {
            MDB_val pk, pv;
            if (mdb_cursor_get(cur, &pk, &pv, MDB_PREV_DUP) == 0) {
                cum = bal_balance(pv.mv_data);
                rc = mdb_cursor_get(cur, &pk, &pv, MDB_NEXT_DUP);
                hv = pv;
            } else {
                hk = (MDB_val){hlen, hold};
                hv = (MDB_val){BAL_SIZE, probe};
                rc = mdb_cursor_get(cur, &hk, &hv, MDB_GET_BOTH_RANGE);
            }
        } else if (rc == MDB_NOTFOUND) {
            hk = (MDB_val){hlen, hold};
            if (mdb_cursor_get(cur, &hk, &hv, MDB_SET_KEY) == 0 &&
                mdb_cursor_get(cur, &hk, &hv, MDB_LAST_DUP) == 0)
                cum = bal_balance(hv.mv_data);
            rc = MDB_NOTFOUND;
        }
        at_start = cum;
        if (qty_add(opening, *opening, cum)) {
            mdb_cursor_close(cur);
            free(mv);
            return trace_fail(TRACE_EINVAL,
                              "quantity overflow: the stock of %s held by %s "
                              "before the register's first day is beyond "
                              "the largest representable quantity",
                              code, party);
        }
        while (rc == 0 && hv.mv_size == BAL_SIZE) {
            const uint8_t *d = hv.mv_data;
            int64_t at = time_unkey(be64_get(d)), now = bal_balance(d), step;
            if (at > to)
                break;
            if (qty_step(&step, cum, now)) {
                mdb_cursor_close(cur);
                free(mv);
                return trace_fail(TRACE_EVERIFY,
                                  "quantity overflow: a stock of %s held by "
                                  "%s is beyond the representable quantity "
                                  "(the stock index holds a wrapped sum)",
                                  code, party);
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct move *p = realloc(mv, nc * sizeof(*p));
                if (!p) {
                    mdb_cursor_close(cur);
                    free(mv);
                    return trace_fail(TRACE_ENOMEM, "out of memory");
                }
                mv = p;
                cap = nc;
            }
            mv[n++] = (struct move){at, be64_get(d + 8), d[16], step};
            cum = now;
            rc = mdb_cursor_get(cur, &hk, &hv, MDB_NEXT_DUP);
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
        if (at_start != 0 || n > n_before) {
            /* the lot: between the substance's \0 and the site's */
            char lot[KEY_MAX + 1];
            size_t ll = strnlen((const char *)hold + plen, hlen - plen);
            memcpy(lot, hold + plen, ll);
            lot[ll] = '\0';
            if (!strmap_get(lots, lot, 1)) {
                mdb_cursor_close(cur);
                free(mv);
                return trace_fail(TRACE_ENOMEM, "out of memory");
            }
        }
        /* next holding */
        hk = (MDB_val){hlen, hold};
        rc = mdb_cursor_get(cur, &hk, &hv, MDB_SET_KEY);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(mv);
        return trace_fail_mdb(rc, "bal");
    }
    if (n)
        qsort(mv, n, sizeof(*mv), cmp_move);
    *out = mv;
    *n_out = n;
    return TRACE_OK;
}

/* A lot's specification, found once per register. */
struct lot_spec {
    int looked;       /* looked up (spec may still be NULL) */
    const char *spec; /* in the register's arena */
};

/* The spec of `lot` as `party` knows it: its own receipt, import or
 * produce event of the lot that names one, else a produce event of the
 * lot by anyone (the producer's).  NULL if none names one. */
static int find_lot_spec(MDB_txn *txn, trace_ledger *l, arena *a,
                         const char *party, const char *lot, const char **out)
{
    uint8_t key[KEY_MAX];
    size_t llen = strlen(lot) + 1, plen = strlen(party);
    const char *other = NULL;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, err = TRACE_OK;

    *out = NULL;
    if (llen >= sizeof(key))
        return TRACE_OK;
    memcpy(key, lot, llen);
    if ((rc = mdb_cursor_open(txn, l->dbi_lots, &cur)))
        return trace_fail_mdb(rc, "lots");
    k = (MDB_val){llen, key};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > llen && memcmp(k.mv_data, key, llen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *d = v.mv_data;
        int own = k.mv_size - llen == plen &&
                  memcmp((const char *)k.mv_data + llen, party, plen) == 0;
        Trace__V1__Event *ev;
        const ProtobufCMessage *body;
        const char *spec, *its_lot;

        if (v.mv_size != 9 || (!own && other))
            continue;
        if (!(d[8] == LOT_PRODUCE ||
              (own && (d[8] == LOT_RECEIPT || d[8] == LOT_IMPORT))))
            continue;
        if ((err = load_effective(txn, l, a, be64_get(d), &ev)) != TRACE_OK)
            break;
        if (!(body = event_body(ev)) || !(spec = msg_field(body, "spec")) ||
            !(its_lot = msg_field(body, "lot")) || strcmp(its_lot, lot) != 0)
            continue; /* none, or a correction moved it to another lot */
        if (own) {
            *out = spec;
            break;
        }
        other = spec;
    }
    mdb_cursor_close(cur);
    if (err != TRACE_OK)
        return err;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, "lots");
    if (!*out)
        *out = other;
    return TRACE_OK;
}

/* The spec of `lot` from the cache, looked up on first use. */
static int lot_spec(MDB_txn *txn, trace_ledger *l, arena *a, strmap *specs,
                    const char *party, const char *lot, const char **out)
{
    struct lot_spec *ls = strmap_get(specs, lot, 1);
    int rc;

    if (!ls)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (!ls->looked) {
        if ((rc = find_lot_spec(txn, l, a, party, lot, &ls->spec)))
            return rc;
        ls->looked = 1;
    }
    *out = ls->spec;
    return TRACE_OK;
}

struct keys {
    const char **v;
    size_t n, cap;
};

static int add_key(const char *key, void *val, void *ctx)
{
    struct keys *k = ctx;
    (void)val;
    if (room_for_one(&k->v, &k->cap, k->n, sizeof(*k->v), 16) != TRACE_OK)
        return TRACE_ENOMEM;
    k->v[k->n++] = key;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The register's specifications: those of its lots, in lot order, each
 * once, "; " between them (NULL if none has one). */
static int register_spec(MDB_txn *txn, trace_ledger *l, arena *a, strmap *specs,
                         strmap *lots, const char *party, const char **out)
{
    struct keys k = {0};
    char *buf = NULL;
    size_t len = 0;
    int rc = TRACE_OK;

    *out = NULL;
    if (strmap_each(lots, add_key, &k) != 0) {
        free(k.v);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    if (k.n)
        qsort(k.v, k.n, sizeof(*k.v), cmp_str);
    for (size_t i = 0; i < k.n && rc == TRACE_OK; i++) {
        const char *sp = NULL;
        if ((rc = lot_spec(txn, l, a, specs, party, k.v[i], &sp)) || !sp)
            continue;
        /* each spec once */
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            struct lot_spec *o = strmap_get(specs, k.v[j], 0);
            seen = o && o->spec && strcmp(o->spec, sp) == 0;
        }
        if (seen)
            continue;
        size_t n = strlen(sp);
        char *nb = arena_alloc(a, len + (len ? 2 : 0) + n + 1);
        if (!nb) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            break;
        }
        if (len)
            memcpy(nb, buf, len), memcpy(nb + len, "; ", 2), len += 2;
        memcpy(nb + len, sp, n + 1);
        len += n;
        buf = nb;
    }
    free(k.v);
    *out = buf;
    return rc;
}

/* "drug" or "precursor": the kind of register a substance is kept in. */
static const char *category_of(const subst_info *s)
{
    for (size_t i = 0; i < s->n_scopes; i++)
        if (strncmp(s->scopes[i], "CN-NARC", 7) == 0 ||
            strncmp(s->scopes[i], "CN-PSY", 6) == 0)
            return "drug";
    for (size_t i = 0; i < s->n_scopes; i++)
        if (strncmp(s->scopes[i], "CN-PC", 5) == 0)
            return "precursor";
    return NULL;
}

int trace_register(trace_ledger *l, const char *party, const char *substance,
                   int64_t from_us, int64_t to_us, trace_register_fn fn,
                   void *ctx)
{
    static const char *const dim_units[] = {"g", "mL", "unit"};
    const subst_info *s = catalog_find(l->cat, substance);
    Trace__V1__PartyState *st;
    MDB_txn *txn = NULL;
    arena *a = arena_new(0), *day = arena_new(0);
    strmap *lots = strmap_new(1), *specs = strmap_new(sizeof(struct lot_spec));
    struct move *mv = NULL;
    trace_register_line *lines = NULL;
    const char *unit = NULL, *spec = NULL;
    size_t n = 0, i = 0;
    int64_t bal = 0, from = day_start(from_us, l->tz_offset_min),
            to = day_start(to_us, l->tz_offset_min) + US_PER_DAY - 1;
    int64_t total[4] = {0, 0, 0, 0}; /* received, dispensed, destroyed, other */
    int rc;

    if (!a || !day || !lots || !specs) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if (!s) {
        rc = trace_fail(TRACE_ENOTFOUND, "unknown substance %s", substance);
        goto out;
    }
    if (to < from || (to - from) / US_PER_DAY >= MAX_DAYS) {
        rc = trace_fail(TRACE_EINVAL, "the register covers 1 to %d days",
                        MAX_DAYS);
        goto out;
    }
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if ((rc = party_state_get(txn, l, a, party, &st)) != TRACE_OK) {
        if (rc == TRACE_ENOTFOUND)
            rc = trace_fail(rc, "unknown party %s", party);
        goto out;
    }
    if ((rc = collect(txn, l, party, s->code, from, to, &bal, &mv, &n, &unit,
                      lots)) != TRACE_OK)
        goto out;
    if ((rc = register_spec(txn, l, a, specs, lots, party, &spec)) != TRACE_OK)
        goto out;
    if (!unit)
        unit = dim_units[s->dim];
    if (!(lines = malloc((n + 1) * sizeof(*lines)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t d = from; d <= to && rc == TRACE_OK; d += US_PER_DAY) {
        trace_register_day r = {0};
        Trace__V1__Time date = TRACE__V1__TIME__INIT;
        size_t nl = 0;

        arena_reset(day);
        r.party = party;
        r.substance = s->code;
        r.unit = unit;
        r.opening = bal;
        for (; i < n && mv[i].at < d + US_PER_DAY; i++) {
            Trace__V1__Event *ev;
            const ProtobufCMessage *body;
            trace_register_line *ln = &lines[nl];
            if ((rc = load_effective(txn, l, day, mv[i].seq, &ev)))
                break;
            body = event_body(ev);
            if (qty_add(&bal, bal, mv[i].delta)) {
                rc = day_overflow(party, s->code, d, l->tz_offset_min);
                break;
            }
            if (ev->body_case == TRACE__V1__EVENT__BODY_TRANSFER_BODY)
                continue; /* between the party's own sites */
            memset(ln, 0, sizeof(*ln));
            ln->kind = ev->type;
            ln->event = ev->id;
            ln->lot = msg_field(body, "lot");
            ln->qty_text = format_qty(day, mv[i].delta, unit);
            ln->at_text = format_time(day, ev->at);
            ln->balance = bal;
            ln->balance_text = format_qty(day, bal, unit);
            ln->handler = msg_field(body, "handler");
            ln->checker = msg_field(body, "checker");
            ln->spec = msg_field(body, "spec");
            if (!ln->spec && ln->lot &&
                (rc = lot_spec(txn, l, a, specs, party, ln->lot, &ln->spec)))
                break;
            switch (ev->body_case) {
            case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
                ln->counterparty = ev->receipt_body->from;
                break;
            case TRACE__V1__EVENT__BODY_SALE_BODY:
                ln->counterparty = ev->sale_body->to;
                break;
            case TRACE__V1__EVENT__BODY_DISPENSE_BODY:
                ln->counterparty = ev->dispense_body->rx->prescriber;
                ln->rx = ev->dispense_body->rx->id;
                break;
            case TRACE__V1__EVENT__BODY_IMPORT_BODY:
                ln->counterparty = ev->import_body->country;
                break;
            case TRACE__V1__EVENT__BODY_DESTROY_BODY:
                ln->counterparty = ev->destroy_body->witness;
                break;
            default:
                break;
            }
            int which =
                mv[i].delta > 0                                         ? 0
                : ev->body_case == TRACE__V1__EVENT__BODY_DISPENSE_BODY ? 1
                : ev->body_case == TRACE__V1__EVENT__BODY_DESTROY_BODY  ? 2
                                                                        : 3;
            int64_t *sum = which == 0   ? &r.received
                           : which == 1 ? &r.dispensed
                           : which == 2 ? &r.destroyed
                                        : &r.other_out;
            if (mv[i].delta > 0
                    ? qty_add(sum, *sum, mv[i].delta) ||
                          qty_add(&total[which], total[which], mv[i].delta)
                    : qty_sub(sum, *sum, mv[i].delta) ||
                          qty_sub(&total[which], total[which], mv[i].delta)) {
                rc = day_overflow(party, s->code, d, l->tz_offset_min);
                break;
            }
            nl++;
        }
        if (rc != TRACE_OK)
            break;
        r.closing = bal;
        date.us = d;
        date.has_offset_min = 1;
        date.offset_min = l->tz_offset_min;
        date.has_date_only = 1;
        date.date_only = 1;
        r.date = format_time(day, &date);
        r.opening_text = format_qty(day, r.opening, unit);
        r.received_text = format_qty(day, r.received, unit);
        r.dispensed_text = format_qty(day, r.dispensed, unit);
        r.destroyed_text = format_qty(day, r.destroyed, unit);
        r.other_out_text = format_qty(day, r.other_out, unit);
        r.closing_text = format_qty(day, r.closing, unit);
        r.n_lines = nl;
        r.lines = lines;
        r.name = s->name;
        r.name_zh = s->name_zh;
        r.category = category_of(s);
        r.spec = spec;
        r.period_received = total[0];
        r.period_dispensed = total[1];
        r.period_destroyed = total[2];
        r.period_other_out = total[3];
        r.period_received_text = format_qty(day, total[0], unit);
        r.period_dispensed_text = format_qty(day, total[1], unit);
        r.period_destroyed_text = format_qty(day, total[2], unit);
        r.period_other_out_text = format_qty(day, total[3], unit);
        rc = fn(&r, ctx);
    }
out:
    if (txn)
        ledger_txn_abort(l, txn);
    free(mv);
    free(lines);
    strmap_free(lots);
    strmap_free(specs);
    arena_free(a);
    arena_free(day);
    return rc;
}
