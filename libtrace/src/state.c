/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state.c - the domain indexes kept in the append transaction: book
 * stock, lots and permits.  Everything here is derived from the journal
 * and could be rebuilt from it.
 *
 * Index layouts (u64t = u64be(at_us + 2^63), so times sort as bytes; seq
 * is the journal entry whose effects the record belongs to):
 *
 *   bal      party \0 substance \0 lot \0 site
 *              -> u64t seq u8 n i64be running balance, u8 unit
 *            (sorted duplicates, so in time order)
 *            one record per change of a holding, in time order; the
 *            running balance after the change lets "stock at T" be one
 *            cursor seek per holding (a change is the difference from
 *            the record before it).
 *   lots     lot \0 party -> u64be seq, u8 role (sorted duplicates)
 *            every event naming the lot, under its recorder (a sale also
 *            under its buyer, role LOT_SALE_IN; a carrier's pickup,
 *            handover or delivery also under the seller of the sale it
 *            cites, role LOT_CUSTODY_OF), so tracing reads only the
 *            records of the parties it visits
 *   permits  permit -> u64be seq           the issuing `permit` event
 *   products gtin -> u64be seq, ProductBody  the product in force
 *            (product.c)
 *   pev      permit -> u64be seq, u8 role     status changes, citations
 *   apps     applicant \0 id -> u64be seq, u8 role   (sorted duplicates)
 *            a permit application (APP_FILED) and what answered it: a
 *            rejection (APP_REJECTED) or a permit citing it (APP_PERMIT);
 *            at most one answer in force (state_apply refuses a second),
 *            so "is it answered" is one look-up.  A late database.
 *
 * lots and pev are keyed by journal position, not time, so appends land
 * at the end of their range; readers sort the few records by `at`.
 *   eff      party \0 id -> u64be seq       the correction now in force
 *                                           for a corrected event
 *   rx       prescription id -> u64be seq, u8 1   (sorted duplicates)
 *            every dispensing in force, under its `rx.id` as stored in
 *            the event (its first RX_KEY_MAX bytes: readers compare the
 *            whole id), so a re-use of a prescription is one look-up
 *            (check.c).  Added after the first ledgers were made: a
 *            ledger without it gets it from rx_index_build (ledger.c),
 *            and until then l->rx_ready is 0, nothing is filed and
 *            rx_dispensings scans the journal.
 *
 * Effects of an event are derived by one function (derive) and either
 * inserted or deleted, so a correction removes exactly what the event it
 * corrects (or that event's previous replacement) added, then adds its own
 * replacement's effects under the correction's sequence number.
 * Corrections are retroactive: the replacement counts from its own `at`,
 * the corrected version never counted.
 *
 * Running balances never wrap.  Every balance written - the new record's
 * and, for a back-dated change or a correction, every later record's -
 * is computed with checked arithmetic (qty_add, internal.h); if one does
 * not fit an int64 of base units the event is refused with "quantity
 * overflow" naming the holding, and the append transaction, hence the
 * whole batch, is aborted.  So every stored balance is exact, and the
 * difference between two consecutive records of a holding is the change
 * of one event (qty_step lets readers tell a wrapped index of an older
 * version apart).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TIME_BIAS 0x8000000000000000ULL

uint64_t time_key(int64_t us)
{
    return (uint64_t)us + TIME_BIAS;
}

int64_t time_unkey(uint64_t k)
{
    return (int64_t)(k - TIME_BIAS);
}

/* Stock-moving types: the sign of `qty` on the event's site and the role
 * of the event for its lot. */
static const struct move {
    uint32_t body_case;
    int sign;
    uint8_t role;
} moves[] = {
    {TRACE__V1__EVENT__BODY_PRODUCE_BODY, +1, LOT_PRODUCE},
    {TRACE__V1__EVENT__BODY_SALE_BODY, -1, LOT_SALE},
    {TRACE__V1__EVENT__BODY_RECEIPT_BODY, +1, LOT_RECEIPT},
    {TRACE__V1__EVENT__BODY_TRANSFER_BODY, 0, LOT_TRANSFER},
    {TRACE__V1__EVENT__BODY_CONSUME_BODY, -1, LOT_CONSUME},
    {TRACE__V1__EVENT__BODY_DISPENSE_BODY, -1, LOT_DISPENSE},
    {TRACE__V1__EVENT__BODY_IMPORT_BODY, +1, LOT_IMPORT},
    {TRACE__V1__EVENT__BODY_EXPORT_BODY, -1, LOT_EXPORT},
    {TRACE__V1__EVENT__BODY_DESTROY_BODY, -1, LOT_DESTROY},
    {TRACE__V1__EVENT__BODY_LOSS_BODY, -1, LOT_LOSS},
    {TRACE__V1__EVENT__BODY_STOCKTAKE_BODY, 0, LOT_STOCKTAKE},
    /* custody is not ownership: no stock moves */
    {TRACE__V1__EVENT__BODY_PICKUP_BODY, 0, LOT_CUSTODY},
    {TRACE__V1__EVENT__BODY_HANDOVER_BODY, 0, LOT_CUSTODY},
    {TRACE__V1__EVENT__BODY_DELIVERY_BODY, 0, LOT_CUSTODY},
};

/* Permit fields and the kind of citation each makes. */
static const struct citation {
    uint32_t body_case;
    const char *field;
    uint8_t role;
} citations[] = {
    {TRACE__V1__EVENT__BODY_SALE_BODY, "permit", PEV_PURCHASE},
    {TRACE__V1__EVENT__BODY_SALE_BODY, "transport_permit", PEV_TRANSPORT},
    {TRACE__V1__EVENT__BODY_IMPORT_BODY, "permit", PEV_IMPORT},
    {TRACE__V1__EVENT__BODY_EXPORT_BODY, "permit", PEV_EXPORT},
    {TRACE__V1__EVENT__BODY_PERMIT_STATUS_BODY, "permit", PEV_STATUS},
};

const void *msg_field(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (!f)
        return NULL;
    return *(const void *const *)((const char *)m + f->offset);
}

const char *canonical_substance(const trace_ledger *l, const char *s)
{
    const subst_info *sub = s ? catalog_find(l->cat, s) : NULL;
    return sub ? sub->code : s;
}

struct effect {
    enum { EFF_BAL, EFF_LOT, EFF_PEV, EFF_RX, EFF_APP } kind;
    const char *party, *substance, *lot, *site, *permit; /* permit: the
                                                            rx id for EFF_RX,
                                                            the application's
                                                            id for EFF_APP */
    int64_t delta;
    uint8_t unit, role, n;
};

typedef int (*effect_fn)(void *ctx, const struct effect *e);

static int bal(effect_fn fn, void *ctx, const trace_ledger *l,
               const char *party, const char *sub, const char *lot,
               const char *site, const Trace__V1__Quantity *q, int sign,
               uint8_t n)
{
    if (q->amount < 0) /* parsing refuses these; -INT64_MIN would wrap */
        return trace_fail(TRACE_EINVAL, "negative quantity");
    struct effect e = {EFF_BAL,
                       party,
                       canonical_substance(l, sub),
                       lot,
                       site ? site : "main",
                       NULL,
                       sign * q->amount,
                       (uint8_t)unit_index(q->unit),
                       0,
                       n};
    return fn(ctx, &e);
}

/* The application an event files under in the apps index (its own
 * (party, id) for an application, the one it answers for a rejection or
 * an approving permit) and in which role; 0 if none. */
static int app_of(const Trace__V1__Event *ev, const char **party,
                  const char **id, uint8_t *role)
{
    const Trace__V1__ApplicationRef *ref = NULL;

    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY:
        *party = ev->party;
        *id = ev->id;
        *role = APP_FILED;
        return 1;
    case TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY:
        ref = ev->application_decision_body->application;
        *role = APP_REJECTED;
        break;
    case TRACE__V1__EVENT__BODY_PERMIT_BODY:
        ref = ev->permit_body->application;
        *role = APP_PERMIT;
        break;
    default:
        break;
    }
    if (!ref || !ref->party || !ref->id)
        return 0;
    *party = ref->party;
    *id = ref->id;
    return 1;
}

/* Calls fn for every index record the event implies. */
static int derive(const trace_ledger *l, const Trace__V1__Event *ev,
                  effect_fn fn, void *ctx)
{
    const ProtobufCMessage *body = event_body(ev);
    const struct move *mv = NULL;
    int rc;

    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
        if (moves[i].body_case == ev->body_case)
            mv = &moves[i];
    for (size_t i = 0; i < sizeof(citations) / sizeof(citations[0]); i++) {
        const char *permit;
        if (citations[i].body_case != ev->body_case ||
            !(permit = msg_field(body, citations[i].field)))
            continue;
        struct effect e = {
            EFF_PEV,           NULL, NULL, NULL, NULL, permit, 0, 0,
            citations[i].role, 0};
        if ((rc = fn(ctx, &e)) != TRACE_OK)
            return rc;
    }
    {
        const char *ap, *aid;
        uint8_t role;
        if (app_of(ev, &ap, &aid, &role)) {
            struct effect e = {EFF_APP, ap, NULL, NULL, NULL,
                               aid,     0,  0,    role, 0};
            if ((rc = fn(ctx, &e)) != TRACE_OK)
                return rc;
        }
    }
    if (ev->body_case == TRACE__V1__EVENT__BODY_DISPENSE_BODY &&
        ev->dispense_body->rx && ev->dispense_body->rx->id) {
        struct effect e = {
            EFF_RX, NULL, NULL, NULL, NULL, ev->dispense_body->rx->id,
            0,      0,    1,    0};
        if ((rc = fn(ctx, &e)) != TRACE_OK)
            return rc;
    }
    if (!mv)
        return TRACE_OK;

    const char *code = msg_field(body, "substance");
    const char *lot = msg_field(body, "lot");
    struct effect le = {EFF_LOT, ev->party, NULL, lot,      NULL,
                        NULL,    0,         0,    mv->role, 0};
    if ((rc = fn(ctx, &le)) != TRACE_OK)
        return rc;
    if (ev->body_case == TRACE__V1__EVENT__BODY_SALE_BODY) {
        le.party = ev->sale_body->to;
        le.role = LOT_SALE_IN;
        if ((rc = fn(ctx, &le)) != TRACE_OK)
            return rc;
    }
    if (mv->role == LOT_CUSTODY) {
        /* also under the seller, so a trace that reaches the sale finds
         * its custody hops; nothing else */
        const Trace__V1__EventRef *ref = msg_field(body, "ref");
        if (!ref || !ref->party || strcmp(ref->party, ev->party) == 0)
            return TRACE_OK;
        le.party = ref->party;
        le.role = LOT_CUSTODY_OF;
        return fn(ctx, &le);
    }
    if (ev->body_case == TRACE__V1__EVENT__BODY_TRANSFER_BODY) {
        const Trace__V1__TransferBody *t = ev->transfer_body;
        if ((rc = bal(fn, ctx, l, ev->party, code, lot, t->from_site, t->qty,
                      -1, 0)) != TRACE_OK)
            return rc;
        return bal(fn, ctx, l, ev->party, code, lot, t->to_site, t->qty, +1, 1);
    }
    if (mv->sign != 0) {
        rc = bal(fn, ctx, l, ev->party, code, lot, msg_field(body, "site"),
                 msg_field(body, "qty"), mv->sign, 0);
        if (rc != TRACE_OK)
            return rc;
    }
    if (ev->body_case == TRACE__V1__EVENT__BODY_PRODUCE_BODY) {
        const Trace__V1__ProduceBody *p = ev->produce_body;
        for (size_t i = 0; i < p->n_inputs; i++) {
            const Trace__V1__Input *in = p->inputs[i];
            struct effect ie = {EFF_LOT, ev->party, NULL, in->lot,   NULL,
                                NULL,    0,         0,    LOT_INPUT, 0};
            if ((rc = fn(ctx, &ie)) != TRACE_OK)
                return rc;
            rc = bal(fn, ctx, l, ev->party, in->substance, in->lot, p->site,
                     in->qty, -1, (uint8_t)(i + 1));
            if (rc != TRACE_OK)
                return rc;
        }
    }
    return TRACE_OK;
}

/* Applying effects ---------------------------------------------------- */

struct apply {
    state_ctx *sc;
    int64_t at;
    uint64_t seq;
    int insert; /* 1 insert, 0 delete */
};

/* Builds "a \0 b \0 c \0" into buf; returns the length or 0. */
static size_t join(uint8_t *buf, size_t cap, const char *const *parts, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]) + 1;
        if (o + len > cap)
            return 0;
        memcpy(buf + o, parts[i], len);
        o += len;
    }
    return o;
}

static void bal_pack(uint8_t *v, int64_t at, uint64_t seq, uint8_t n,
                     int64_t balance, uint8_t unit)
{
    be64_put(v, time_key(at));
    be64_put(v + 8, seq);
    v[16] = n;
    be64_put(v + 17, (uint64_t)balance);
    v[25] = unit;
}

int64_t bal_balance(const void *v)
{
    return (int64_t)be64_get((const uint8_t *)v + 17);
}

/* The last record of a holding, as far as this transaction knows. */
struct tail {
    int state; /* 0 unknown, 1 empty, 2 known */
    uint8_t order[BAL_ORDER];
    int64_t balance;
};

strmap *state_tails_new(void)
{
    return strmap_new(sizeof(struct tail));
}

/* Finds the cached tail of the holding `key`, loading it on first use. */
static int tail_of(struct apply *a, const MDB_val *key, struct tail **out)
{
    char name[KEY_MAX + 1];
    MDB_cursor *cur;
    MDB_val k = *key, v;
    struct tail *t;
    int rc;

    /* the map wants a C string: the NULs between fields become 0x01,
     * which no accepted name contains */
    for (size_t i = 0; i < key->mv_size; i++)
        name[i] = ((const char *)key->mv_data)[i]
                      ? ((const char *)key->mv_data)[i]
                      : '\x01';
    name[key->mv_size] = '\0';
    if (!(t = strmap_get(a->sc->tails, name, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *out = t;
    if (t->state)
        return TRACE_OK;
    if ((rc = mdb_cursor_open(a->sc->txn, a->sc->l->dbi_bal, &cur)))
        return trace_fail_mdb(rc, "bal");
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
    t->state = 1;
    if (rc == 0 && v.mv_size == BAL_SIZE) {
        t->state = 2;
        memcpy(t->order, v.mv_data, BAL_ORDER);
        t->balance = bal_balance(v.mv_data);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "bal");
}

/* Refuses a change that takes the running stock of the holding `key`
 * (party \0 substance \0 lot \0 site) past what an int64 holds; `up`
 * tells the direction. */
static int overflow(const MDB_val *key, int up)
{
    const char *p[4], *s = key->mv_data;
    size_t o = 0;

    for (int i = 0; i < 4; i++) {
        p[i] = o < key->mv_size ? s + o : "?";
        o += o < key->mv_size ? strnlen(s + o, key->mv_size - o) + 1 : 0;
    }
    return trace_fail(TRACE_EINVAL,
                      "quantity overflow: the stock of %.64s lot %.64s at "
                      "site %.64s of %.64s would %s the %s representable "
                      "quantity",
                      p[1], p[2], p[3], p[0], up ? "exceed" : "fall below",
                      up ? "largest" : "smallest");
}

/* Adds `delta` to the running balance of every record of the holding
 * after `from` (exclusive): back-dated events and corrections.  Values
 * are the sort order, so each is replaced by delete and insert.  Every
 * new balance is checked before anything is changed. */
static int shift_after(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key,
                       const uint8_t *from, int64_t delta)
{
    MDB_cursor *cur;
    MDB_val k = *key, v = {BAL_SIZE, (void *)from};
    uint8_t *later = NULL;
    size_t n = 0, cap = 0;
    int rc;

    if (delta == 0)
        return TRACE_OK;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)))
        return trace_fail_mdb(rc, "bal");
    uint8_t probe[BAL_SIZE];
    memcpy(probe, from, BAL_ORDER);
    memset(probe + BAL_ORDER, 0xff, BAL_SIZE - BAL_ORDER);
    v = (MDB_val){BAL_SIZE, probe};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != BAL_SIZE)
            continue;
        if (memcmp(v.mv_data, from, BAL_ORDER) <= 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint8_t *p = realloc(later, nc * BAL_SIZE);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            later = p;
            cap = nc;
        }
        memcpy(later + n++ * BAL_SIZE, v.mv_data, BAL_SIZE);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(later);
        return rc == ENOMEM ? trace_fail(TRACE_ENOMEM, "out of memory")
                            : trace_fail_mdb(rc, "bal");
    }
    for (size_t i = 0; i < n; i++) {
        int64_t moved;
        if (qty_add(&moved, bal_balance(later + i * BAL_SIZE), delta)) {
            free(later);
            return overflow(key, delta > 0);
        }
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t *old = later + i * BAL_SIZE, upd[BAL_SIZE];
        MDB_val ov = {BAL_SIZE, old}, nv = {BAL_SIZE, upd};
        memcpy(upd, old, BAL_SIZE);
        be64_put(upd + 17, (uint64_t)(bal_balance(old) + delta));
        if ((rc = mdb_del(txn, dbi, (MDB_val *)key, &ov)) == 0)
            rc = mdb_put(txn, dbi, (MDB_val *)key, &nv, MDB_NODUPDATA);
    }
    free(later);
    return rc ? trace_fail_mdb(rc, "bal") : TRACE_OK;
}

/* The record before `order` in the holding: its balance, or 0. */
static int balance_before(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key,
                          const uint8_t *order, int64_t *out)
{
    MDB_cursor *cur;
    MDB_val k = *key, v;
    uint8_t probe[BAL_SIZE];
    int rc;

    *out = 0;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)))
        return trace_fail_mdb(rc, "bal");
    memcpy(probe, order, BAL_ORDER);
    memset(probe + BAL_ORDER, 0, BAL_SIZE - BAL_ORDER);
    v = (MDB_val){BAL_SIZE, probe};
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP);
    else if (rc == MDB_NOTFOUND &&
             mdb_cursor_get(cur, &k, &v, MDB_SET_KEY) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
    if (rc == 0 && v.mv_size == BAL_SIZE)
        *out = bal_balance(v.mv_data);
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "bal");
}

int lot_stock(MDB_txn *txn, const trace_ledger *l, const char *party,
              const char *substance, const char *lot, int64_t at, int64_t *sum)
{
    const char *parts[] = {party, substance, lot};
    uint8_t prefix[KEY_MAX], order[BAL_ORDER];
    size_t plen = join(prefix, sizeof(prefix), parts, 3);
    MDB_cursor *cur;
    MDB_val k = {plen, prefix}, v;
    int rc;

    *sum = 0;
    if (!plen)
        return trace_fail(TRACE_EINVAL, "party, substance and lot names are "
                                        "too long together");
    if ((rc = bulk_sync(l, txn)) != TRACE_OK)
        return rc;
    /* each site's last record at or before `at` */
    be64_put(order, time_key(at));
    be64_put(order + 8, UINT64_MAX);
    order[16] = 0xff;
    if ((rc = mdb_cursor_open(txn, l->dbi_bal, &cur)))
        return trace_fail_mdb(rc, "bal");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        MDB_val site = k;
        int64_t b;
        int rc2 = balance_before(txn, l->dbi_bal, &site, order, &b);
        if (rc2 != TRACE_OK) {
            mdb_cursor_close(cur);
            return rc2;
        }
        if (__builtin_add_overflow(*sum, b, sum)) {
            mdb_cursor_close(cur);
            return trace_fail(TRACE_EINVAL, "quantity overflow");
        }
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "bal");
}

static int apply_bal(struct apply *a, const struct effect *e)
{
    MDB_txn *txn = a->sc->txn;
    MDB_dbi dbi = a->sc->l->dbi_bal;
    const char *parts[] = {e->party, e->substance, e->lot, e->site};
    uint8_t key[KEY_MAX], val[BAL_SIZE];
    size_t klen = join(key, sizeof(key), parts, 4);
    MDB_val k = {klen ? klen - 1 : 0, key}, v = {BAL_SIZE, val};
    int64_t before;
    int rc;

    if (!klen)
        return trace_fail(TRACE_EINVAL, "party, substance, lot and site "
                                        "names are too long together");
    bal_pack(val, a->at, a->seq, e->n, 0, e->unit);
    if (a->sc->tails) {
        struct tail *t = NULL;
        if ((rc = tail_of(a, &k, &t)) != TRACE_OK)
            return rc;
        if (a->insert &&
            (t->state == 1 || memcmp(val, t->order, BAL_ORDER) > 0)) {
            /* appended after the last record: nothing to shift */
            int64_t bal;
            if (qty_add(&bal, t->state == 2 ? t->balance : 0, e->delta))
                return overflow(&k, e->delta > 0);
            be64_put(val + 17, (uint64_t)bal);
            int held;
            if ((rc = bulk_put(a->sc->l, txn, dbi, &k, &v, &held)))
                return rc;
            rc = held ? 0 : mdb_put(txn, dbi, &k, &v, MDB_APPENDDUP);
            if (rc == MDB_KEYEXIST)
                rc = mdb_put(txn, dbi, &k, &v, MDB_NODUPDATA);
            if (rc)
                return trace_fail_mdb(rc, "bal");
            t->state = 2;
            memcpy(t->order, val, BAL_ORDER);
            t->balance = bal;
            return TRACE_OK;
        }
        t->state = 0; /* changed below: reload on next use */
    }
    /* before and after it: what is held is written first */
    if ((rc = bulk_sync(a->sc->l, txn)) != TRACE_OK)
        return rc;
    if ((rc = balance_before(txn, dbi, &k, val, &before)) != TRACE_OK)
        return rc;
    if (a->insert) {
        int64_t after;
        if (qty_add(&after, before, e->delta))
            return overflow(&k, e->delta > 0);
        be64_put(val + 17, (uint64_t)after);
        if ((rc = mdb_put(txn, dbi, &k, &v, MDB_NODUPDATA)))
            return trace_fail_mdb(rc, "bal");
        return shift_after(txn, dbi, &k, val, e->delta);
    }
    /* delete: find the record to learn its balance, then undo it */
    {
        MDB_cursor *cur;
        MDB_val fk = k, fv = {BAL_SIZE, val};
        int64_t mine;
        if ((rc = mdb_cursor_open(txn, dbi, &cur)))
            return trace_fail_mdb(rc, "bal");
        rc = mdb_cursor_get(cur, &fk, &fv, MDB_GET_BOTH_RANGE);
        if (rc || fv.mv_size != BAL_SIZE ||
            memcmp(fv.mv_data, val, BAL_ORDER) != 0) {
            mdb_cursor_close(cur);
            return trace_fail(TRACE_EVERIFY, "stock index lacks a record it "
                                             "should hold");
        }
        int64_t undo;
        mine = bal_balance(fv.mv_data);
        if (qty_sub(&undo, before, mine)) {
            mdb_cursor_close(cur);
            return overflow(&k, before > mine);
        }
        rc = mdb_cursor_del(cur, 0);
        mdb_cursor_close(cur);
        if (rc)
            return trace_fail_mdb(rc, "bal");
        return shift_after(txn, dbi, &k, val, undo);
    }
}

/* Files (or removes) seq and role under the key k of dbi; an import may
 * hold the entry back (bulk.c), and writes what it holds before one is
 * removed. */
static int file_seq(const trace_ledger *l, MDB_txn *txn, MDB_dbi dbi,
                    MDB_val *k, uint64_t seq, uint8_t role, int insert)
{
    uint8_t val[9];
    MDB_val v = {sizeof(val), val};
    int rc, held;

    be64_put(val, seq);
    val[8] = role;
    if (insert) {
        if ((rc = bulk_put(l, txn, dbi, k, &v, &held)) != TRACE_OK || held)
            return rc;
        rc = mdb_put(txn, dbi, k, &v, MDB_APPENDDUP);
        if (rc == MDB_KEYEXIST) /* not the newest: an earlier entry */
            rc = mdb_put(txn, dbi, k, &v, MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST)
            rc = 0; /* filed already */
    } else {
        if ((rc = bulk_sync(l, txn)) != TRACE_OK)
            return rc;
        rc = mdb_del(txn, dbi, k, &v);
    }
    if (rc && !(rc == MDB_NOTFOUND && !insert))
        return trace_fail_mdb(rc, "index");
    return TRACE_OK;
}

/* Files (or removes) seq and role under the key name [\0 party]. */
static int apply_keyed(struct apply *a, MDB_dbi dbi, const char *name,
                       const char *party, uint8_t role)
{
    const char *parts[] = {name, party};
    uint8_t key[KEY_MAX];
    size_t klen = join(key, sizeof(key), parts, party ? 2 : 1);
    MDB_val k;

    if (!klen)
        return trace_fail(TRACE_EINVAL, "lot or permit id too long");
    k = (MDB_val){klen - 1, key}; /* no NUL after the last part */
    return file_seq(a->sc->l, a->sc->txn, dbi, &k, a->seq, role, a->insert);
}

/* The rx index's key of a prescription id. */
static MDB_val rx_key(const char *id)
{
    size_t n = strlen(id);
    return (MDB_val){n < RX_KEY_MAX ? n : RX_KEY_MAX, (void *)id};
}

static int apply_one(void *ctx, const struct effect *e)
{
    struct apply *a = ctx;

    switch (e->kind) {
    case EFF_BAL:
        return apply_bal(a, e);
    case EFF_LOT:
        return apply_keyed(a, a->sc->l->dbi_lots, e->lot, e->party, e->role);
    case EFF_PEV:
        return apply_keyed(a, a->sc->l->dbi_pev, e->permit, NULL, e->role);
    case EFF_RX: {
        MDB_val k = rx_key(e->permit);
        if (!a->sc->l->rx_ready || !k.mv_size)
            return TRACE_OK; /* no index yet: built from the journal */
        return file_seq(a->sc->l, a->sc->txn, a->sc->l->dbi_rx, &k, a->seq,
                        e->role, a->insert);
    }
    case EFF_APP:
        if (!a->sc->l->dbi_apps)
            return TRACE_OK; /* a read-only open of an older ledger */
        return apply_keyed(a, a->sc->l->dbi_apps, e->party, e->permit, e->role);
    }
    return TRACE_OK;
}

static int apply_event(state_ctx *sc, const Trace__V1__Event *ev, uint64_t seq,
                       int insert)
{
    struct apply a = {sc, ev->at->us, seq, insert};
    return derive(sc->l, ev, apply_one, &a);
}

/* Looks up (party, id) in `dbi`, or among the events not yet written;
 * the event and the entry it is filed under.  TRACE_ENOTFOUND if absent. */
static int find_event(state_ctx *sc, MDB_dbi dbi, const char *party,
                      const char *id, Trace__V1__Event **out, uint64_t *seq)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    Trace__V1__Entry *e;
    const uint8_t *bytes;
    size_t len;
    int rc;

    /* ids an import holds back are found among those it holds */
    rc = dbi == sc->l->dbi_ids ? bulk_find_id(sc->l, sc->txn, &k, &v)
                               : mdb_get(sc->txn, dbi, &k, &v);
    if (rc == 0 && sc->unwritten_by_seq &&
        be64_get(v.mv_data) >= sc->unwritten) {
        /* filed under an event not yet written (the eff index is
         * updated before the entry is) */
        *seq = be64_get(v.mv_data);
        if ((rc = sc->unwritten_by_seq(sc->unwritten_ctx, *seq, &bytes,
                                       &len)) != TRACE_OK)
            return trace_fail(TRACE_EVERIFY, "entry %llu is missing",
                              (unsigned long long)*seq);
    } else if (rc == 0) {
        *seq = be64_get(v.mv_data);
        if ((rc = entry_get(sc->txn, sc->l, sc->tmp, *seq, &e)) != TRACE_OK)
            return rc;
        bytes = e->event.data;
        len = e->event.len;
    } else if (rc == MDB_NOTFOUND && dbi == sc->l->dbi_ids &&
               sc->unwritten_by_id &&
               sc->unwritten_by_id(sc->unwritten_ctx, party, id, seq, &bytes,
                                   &len) == TRACE_OK) {
        /* an event of the window */
    } else if (rc == MDB_NOTFOUND) {
        return TRACE_ENOTFOUND;
    } else {
        return trace_fail_mdb(rc, "ids");
    }
    *out = event_decode(sc->tmp, bytes, len);
    if (!*out)
        return trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                          (unsigned long long)*seq);
    return TRACE_OK;
}

static int apply_correction(state_ctx *sc, const Trace__V1__Event *ev,
                            uint64_t seq)
{
    const Trace__V1__CorrectionBody *c = ev->correction_body;
    Trace__V1__Event *old, *rep = NULL;
    uint64_t old_seq;
    uint8_t key[KEY_MAX], seqb[8];
    size_t klen;
    MDB_val k, v = {8, seqb};
    int rc;

    rc = find_event(sc, sc->l->dbi_ids, ev->party, c->corrects, &old, &old_seq);
    if (rc == TRACE_ENOTFOUND)
        return trace_fail(TRACE_EINVAL,
                          "corrects \"%s\", which %s never recorded",
                          c->corrects, ev->party);
    if (rc != TRACE_OK)
        return rc;
    if (old->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY)
        return trace_fail(TRACE_EINVAL,
                          "corrects \"%s\", a correction: name the original "
                          "event instead",
                          c->corrects);
    if (old->body_case == TRACE__V1__EVENT__BODY_PRODUCT_BODY)
        return trace_fail(TRACE_EINVAL,
                          "corrects \"%s\", a product: a new product event "
                          "for its GTIN changes it",
                          c->corrects);
    /* If it was corrected before, the correction in force holds the
     * version whose effects stand now (NULL: voided). */
    rc = find_event(sc, sc->l->dbi_eff, ev->party, c->corrects, &old, &old_seq);
    if (rc == TRACE_OK) {
        const Trace__V1__CorrectionBody *oc = old->correction_body;
        old = oc->has_replacement ? event_decode(sc->tmp, oc->replacement.data,
                                                 oc->replacement.len)
                                  : NULL;
    } else if (rc != TRACE_ENOTFOUND) {
        return rc;
    }
    if (old && (rc = apply_event(sc, old, old_seq, 0)) != TRACE_OK)
        return rc;
    if (c->has_replacement) {
        rep = event_decode(sc->tmp, c->replacement.data, c->replacement.len);
        if (!rep || strcmp(rep->party, ev->party) != 0)
            return trace_fail(TRACE_EINVAL,
                              "a replacement must be recorded by %s too",
                              ev->party);
        if (!event_type_by_case(rep->body_case) ||
            event_type_by_case(rep->body_case)->regulator_only ||
            rep->body_case == TRACE__V1__EVENT__BODY_PRODUCT_BODY)
            return trace_fail(TRACE_EINVAL,
                              "registrations and permits are changed by new "
                              "party, permit or permit_status events, not "
                              "corrections");
        if ((rc = apply_event(sc, rep, seq, 1)) != TRACE_OK)
            return rc;
    }
    klen = compose_key(key, sizeof(key), ev->party, c->corrects,
                       strlen(c->corrects));
    k = (MDB_val){klen, key};
    be64_put(seqb, seq);
    if ((rc = mdb_put(sc->txn, sc->l->dbi_eff, &k, &v, 0)))
        return trace_fail_mdb(rc, "eff");
    return TRACE_OK;
}

static int apply_permit(state_ctx *sc, const Trace__V1__Event *ev, uint64_t seq)
{
    const char *id = ev->permit_body->permit;
    uint8_t seqb[8];
    MDB_val k = {strlen(id), (void *)id}, v = {8, seqb};
    int rc;

    be64_put(seqb, seq);
    rc = mdb_put(sc->txn, sc->l->dbi_permits, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return trace_fail(TRACE_EINVAL,
                          "permit %s was already issued (change its status "
                          "with a permit_status event)",
                          id);
    return rc ? trace_fail_mdb(rc, "permits") : TRACE_OK;
}

/* The latest acknowledgement (by `at`) sets an alert's status.  The acks
 * value: i64be at || status || 0 || acknowledging party || 0 || note
 * (values written before hold only at || status). */
static int apply_ack(state_ctx *sc, const Trace__V1__Event *ev)
{
    const Trace__V1__AlertAckBody *b = ev->alert_ack_body;
    size_t slen = strlen(b->status), plen = strlen(ev->party),
           nlen = b->note ? strlen(b->note) : 0;
    MDB_val k = {strlen(b->alert), b->alert}, v;
    uint8_t *val;
    int rc;

    if (slen > 32)
        return trace_fail(TRACE_EINVAL, "alert status too long");
    rc = mdb_get(sc->txn, sc->l->dbi_acks, &k, &v);
    if (rc == 0 && v.mv_size >= 8 && (int64_t)be64_get(v.mv_data) > ev->at->us)
        return TRACE_OK; /* a later acknowledgement stands */
    if (rc && rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, "acks");
    if (!(val = malloc(8 + slen + 1 + plen + 1 + nlen)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    be64_put(val, (uint64_t)ev->at->us);
    memcpy(val + 8, b->status, slen);
    val[8 + slen] = 0;
    memcpy(val + 8 + slen + 1, ev->party, plen);
    val[8 + slen + 1 + plen] = 0;
    if (nlen)
        memcpy(val + 8 + slen + 1 + plen + 1, b->note, nlen);
    v = (MDB_val){8 + slen + 1 + plen + 1 + nlen, val};
    rc = mdb_put(sc->txn, sc->l->dbi_acks, &k, &v, 0);
    free(val);
    return rc ? trace_fail_mdb(rc, "acks") : TRACE_OK;
}

/* The event at journal position seq, written or in the window. */
static int event_at(state_ctx *sc, uint64_t seq, Trace__V1__Event **out)
{
    Trace__V1__Entry *e;
    const uint8_t *bytes;
    size_t len;
    int rc;

    if (sc->unwritten_by_seq && seq >= sc->unwritten) {
        if (sc->unwritten_by_seq(sc->unwritten_ctx, seq, &bytes, &len) !=
            TRACE_OK)
            return trace_fail(TRACE_EVERIFY, "entry %llu is missing",
                              (unsigned long long)seq);
    } else {
        if ((rc = entry_get(sc->txn, sc->l, sc->tmp, seq, &e)) != TRACE_OK)
            return rc;
        bytes = e->event.data;
        len = e->event.len;
    }
    if (!(*out = event_decode(sc->tmp, bytes, len)))
        return trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                          (unsigned long long)seq);
    return TRACE_OK;
}

/*
 * An answer to an application (a rejection, or a permit citing it) must
 * name an application in force that is not answered yet, and a permit
 * must grant what was asked: the same kind and substance, to the
 * applicant, a budget no larger.  Anything else is refused (EINVAL):
 * an answer to nothing cannot be reported on.
 */
static int check_answer(state_ctx *sc, const Trace__V1__Event *ev,
                        const Trace__V1__ApplicationRef *ref)
{
    const Trace__V1__PermitApplicationBody *ab;
    Trace__V1__Event *app, *cor, *other;
    uint64_t aseq, cseq;
    uint8_t key[KEY_MAX];
    size_t klen;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = find_event(sc, sc->l->dbi_ids, ref->party, ref->id, &app, &aseq);
    if (rc == TRACE_ENOTFOUND)
        return trace_fail(TRACE_EINVAL,
                          "%s cites application %s/%s, which %s never "
                          "recorded",
                          ev->id, ref->party, ref->id, ref->party);
    if (rc != TRACE_OK)
        return rc;
    if (app->body_case != TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY)
        return trace_fail(TRACE_EINVAL,
                          "%s cites application %s/%s, which is a `%s` "
                          "event, not a permit_application",
                          ev->id, ref->party, ref->id,
                          event_type_by_case(app->body_case)->name);
    /* the version in force, if the applicant corrected it */
    rc = find_event(sc, sc->l->dbi_eff, ref->party, ref->id, &cor, &cseq);
    if (rc == TRACE_OK) {
        const Trace__V1__CorrectionBody *c = cor->correction_body;
        if (!c->has_replacement)
            return trace_fail(TRACE_EINVAL,
                              "%s cites application %s/%s, which %s "
                              "withdrew (voided by its correction %s)",
                              ev->id, ref->party, ref->id, ref->party, cor->id);
        app = event_decode(sc->tmp, c->replacement.data, c->replacement.len);
        if (!app ||
            app->body_case != TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY)
            return trace_fail(TRACE_EINVAL,
                              "%s cites application %s/%s, which its "
                              "correction %s replaced by another type",
                              ev->id, ref->party, ref->id, cor->id);
    } else if (rc != TRACE_ENOTFOUND) {
        return rc;
    }
    /* answered already? */
    klen = compose_key(key, sizeof(key), ref->party, ref->id, strlen(ref->id));
    if (!klen)
        return trace_fail(TRACE_EINVAL, "application id too long");
    if (sc->l->dbi_apps) {
        uint64_t answer = 0;
        if ((rc = mdb_cursor_open(sc->txn, sc->l->dbi_apps, &cur)))
            return trace_fail_mdb(rc, "apps");
        k = (MDB_val){klen, key};
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP))
            if (v.mv_size == 9 && ((const uint8_t *)v.mv_data)[8] != APP_FILED)
                answer = be64_get(v.mv_data);
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return trace_fail_mdb(rc, "apps");
        if (answer) {
            if ((rc = event_at(sc, answer, &other)) != TRACE_OK)
                return rc;
            return trace_fail(
                TRACE_EINVAL,
                "application %s/%s was already decided: %s by %s's %s %s",
                ref->party, ref->id,
                other->body_case == TRACE__V1__EVENT__BODY_PERMIT_BODY
                    ? "approved"
                    : "rejected",
                other->party,
                other->body_case == TRACE__V1__EVENT__BODY_PERMIT_BODY
                    ? "permit"
                    : "decision",
                other->body_case == TRACE__V1__EVENT__BODY_PERMIT_BODY
                    ? other->permit_body->permit
                    : other->id);
        }
    }
    if (ev->body_case != TRACE__V1__EVENT__BODY_PERMIT_BODY)
        return TRACE_OK;
    const Trace__V1__PermitBody *pb = ev->permit_body;
    ab = app->permit_application_body;
    if (strcmp(pb->kind, ab->kind) != 0)
        return trace_fail(TRACE_EINVAL,
                          "permit %s is a %s, but application %s/%s asks for "
                          "a %s",
                          pb->permit, pb->kind, ref->party, ref->id, ab->kind);
    if (strcmp(canonical_substance(sc->l, pb->substance),
               canonical_substance(sc->l, ab->substance)) != 0)
        return trace_fail(TRACE_EINVAL,
                          "permit %s is for %s, but application %s/%s asks "
                          "for %s",
                          pb->permit, pb->substance, ref->party, ref->id,
                          ab->substance);
    if (strcmp(pb->holder, app->party) != 0)
        return trace_fail(TRACE_EINVAL,
                          "permit %s is held by %s, but application %s/%s "
                          "was made by %s",
                          pb->permit, pb->holder, ref->party, ref->id,
                          app->party);
    if (pb->qty->amount > ab->qty->amount) {
        char grant[48], asked[48];
        int64_t fg = 1, fa = 1;
        unit_lookup(pb->qty->unit, NULL, &fg);
        unit_lookup(ab->qty->unit, NULL, &fa);
        if (qty_format(grant, sizeof(grant), pb->qty->amount, fg) != TRACE_OK ||
            qty_format(asked, sizeof(asked), ab->qty->amount, fa) != TRACE_OK)
            grant[0] = asked[0] = '?', grant[1] = asked[1] = '\0';
        return trace_fail(TRACE_EINVAL,
                          "permit %s grants %s %s, more than the %s %s "
                          "application %s/%s asks for (a permit may grant "
                          "less, not more)",
                          pb->permit, grant, pb->qty->unit, asked,
                          ab->qty->unit, ref->party, ref->id);
    }
    return TRACE_OK;
}

int state_apply(state_ctx *sc, const Trace__V1__Event *ev, uint64_t seq)
{
    MDB_val k, v;
    int rc;

    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_ALERT_ACK_BODY:
        return apply_ack(sc, ev);
    case TRACE__V1__EVENT__BODY_CORRECTION_BODY:
        return apply_correction(sc, ev, seq);
    case TRACE__V1__EVENT__BODY_PERMIT_BODY:
        if (ev->permit_body->application &&
            (rc = check_answer(sc, ev, ev->permit_body->application)) !=
                TRACE_OK)
            return rc;
        if ((rc = apply_permit(sc, ev, seq)) != TRACE_OK)
            return rc;
        break; /* the apps index (derive) */
    case TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY:
        if ((rc = check_answer(sc, ev,
                               ev->application_decision_body->application)) !=
            TRACE_OK)
            return rc;
        break;
    case TRACE__V1__EVENT__BODY_PRODUCT_BODY:
        return product_apply(sc->txn, sc->l, sc->tmp, ev, seq);
    case TRACE__V1__EVENT__BODY_PERMIT_STATUS_BODY:
        k = (MDB_val){strlen(ev->permit_status_body->permit),
                      ev->permit_status_body->permit};
        rc = mdb_get(sc->txn, sc->l->dbi_permits, &k, &v);
        if (rc == MDB_NOTFOUND)
            return trace_fail(TRACE_EINVAL, "unknown permit %s",
                              ev->permit_status_body->permit);
        if (rc)
            return trace_fail_mdb(rc, "permits");
        break;
    default:
        break;
    }
    return apply_event(sc, ev, seq, 1);
}

Trace__V1__Event *event_decode(arena *a, const uint8_t *bytes, size_t len)
{
    Trace__V1__Event *ev =
        trace__v1__event__unpack(arena_allocator(a), len, bytes);
    if (!ev || !ev->at || !event_type_by_case(ev->body_case) || !event_body(ev))
        return NULL;
    return ev;
}

/* Dispensings by prescription ------------------------------------------ */

/* The entry (party, id) is corrected: 1 and its correction in force in
 * *seq, 0 if not, or an error. */
static int corrected_by(MDB_txn *txn, const trace_ledger *l, const char *party,
                        const char *id, uint64_t *seq)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    int rc;

    if (!klen)
        return 0;
    rc = mdb_get(txn, l->dbi_eff, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return trace_fail_mdb(rc, "eff");
    *seq = v.mv_size >= 8 ? be64_get(v.mv_data) : 0;
    return 1;
}

/* The dispensing entry `seq` (decoded as ev) stands for: its own event,
 * or the replacement a correction carries; *recorded is the id it was
 * recorded under (the corrected event's, for a replacement).  With
 * `check`, only if it is in force (not corrected since; for a
 * correction: the one in force).  *out NULL if none. */
static int dispensing_of(MDB_txn *txn, const trace_ledger *l, arena *a,
                         uint64_t seq, const Trace__V1__Event *ev, int check,
                         const Trace__V1__Event **out, const char **recorded)
{
    uint64_t by = 0;
    int rc;

    *out = NULL;
    if (ev->body_case == TRACE__V1__EVENT__BODY_DISPENSE_BODY) {
        if (check && (rc = corrected_by(txn, l, ev->party, ev->id, &by)))
            return rc < 0 ? rc : TRACE_OK;
        *out = ev;
        *recorded = ev->id;
    } else if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY &&
               ev->correction_body->has_replacement) {
        const Trace__V1__CorrectionBody *c = ev->correction_body;
        const Trace__V1__Event *rep;
        if (check) {
            rc = corrected_by(txn, l, ev->party, c->corrects, &by);
            if (rc <= 0 || by != seq)
                return rc < 0 ? rc : TRACE_OK;
        }
        rep = event_decode(a, c->replacement.data, c->replacement.len);
        if (!rep)
            return trace_fail(TRACE_EVERIFY,
                              "replacement in entry %llu cannot be decoded",
                              (unsigned long long)seq);
        if (rep->body_case != TRACE__V1__EVENT__BODY_DISPENSE_BODY)
            return TRACE_OK;
        *out = rep;
        *recorded = c->corrects;
    }
    if (*out && (!(*out)->dispense_body->rx || !(*out)->dispense_body->rx->id))
        *out = NULL;
    return TRACE_OK;
}

/* Every dispensing in force (of prescription `rx_id`, or all), from the
 * journal and then the events of a writer's window (entry_get), in
 * journal order. */
static int rx_scan(MDB_txn *txn, const trace_ledger *l, const char *rx_id,
                   rx_fn fn, void *ctx)
{
    arena *a = arena_new(0);
    int rc = TRACE_OK;

    if (!a)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (uint64_t seq = 1; rc == TRACE_OK; seq++) {
        const Trace__V1__Event *d;
        const char *recorded;
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;

        arena_reset(a);
        if ((rc = entry_get(txn, l, a, seq, &e)) != TRACE_OK) {
            if (rc == TRACE_ENOTFOUND) {
                trace_error_clear();
                rc = TRACE_OK;
            }
            break;
        }
        if (!(ev = event_decode(a, e->event.data, e->event.len))) {
            rc = trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                            (unsigned long long)seq);
            break;
        }
        if (ev->body_case == TRACE__V1__EVENT__BODY_DISPENSE_BODY && rx_id &&
            (!ev->dispense_body->rx || !ev->dispense_body->rx->id ||
             strcmp(ev->dispense_body->rx->id, rx_id) != 0))
            continue;
        rc = dispensing_of(txn, l, a, seq, ev, 1, &d, &recorded);
        if (rc == TRACE_OK && d &&
            (!rx_id || strcmp(d->dispense_body->rx->id, rx_id) == 0))
            rc = fn(ctx, seq, d, recorded);
    }
    arena_free(a);
    return rc;
}

int rx_dispensings(MDB_txn *txn, const trace_ledger *l, const char *rx_id,
                   rx_fn fn, void *ctx)
{
    MDB_val k = rx_key(rx_id), v;
    MDB_cursor *cur = NULL;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    arena *a = NULL;
    int rc;

    if (!l->rx_ready || !k.mv_size)
        return rx_scan(txn, l, rx_id, fn, ctx);
    /* collect first: fn may read the ledger */
    rc = mdb_cursor_open(txn, l->dbi_rx, &cur);
    if (rc == EINVAL) /* a transaction older than the index's handle */
        return rx_scan(txn, l, rx_id, fn, ctx);
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size < 8)
            continue;
        if (room_for_one(&seqs, &cap, n, sizeof(*seqs), 4) != TRACE_OK) {
            rc = ENOMEM;
            break;
        }
        seqs[n++] = be64_get(v.mv_data);
    }
    if (cur)
        mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        free(seqs);
        return rc == ENOMEM ? trace_fail(TRACE_ENOMEM, "out of memory")
                            : trace_fail_mdb(rc, "rx");
    }
    rc = TRACE_OK;
    if (n && !(a = arena_new(0)))
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == TRACE_OK; i++) {
        const Trace__V1__Event *d;
        const char *recorded;
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;

        arena_reset(a);
        if ((rc = entry_get(txn, l, a, seqs[i], &e)) != TRACE_OK)
            break;
        if (!(ev = event_decode(a, e->event.data, e->event.len))) {
            rc = trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                            (unsigned long long)seqs[i]);
            break;
        }
        rc = dispensing_of(txn, l, a, seqs[i], ev, 0, &d, &recorded);
        if (rc == TRACE_OK && d && strcmp(d->dispense_body->rx->id, rx_id) == 0)
            rc = fn(ctx, seqs[i], d, recorded);
    }
    arena_free(a);
    free(seqs);
    return rc;
}

struct rx_build {
    const trace_ledger *l;
    MDB_txn *txn;
    MDB_dbi dbi;
};

static int file_rx(void *ctx, uint64_t seq, const Trace__V1__Event *ev,
                   const char *recorded)
{
    struct rx_build *b = ctx;
    MDB_val k = rx_key(ev->dispense_body->rx->id);

    (void)recorded;
    return k.mv_size ? file_seq(b->l, b->txn, b->dbi, &k, seq, 1, 1) : TRACE_OK;
}

int rx_index_build(MDB_txn *txn, const trace_ledger *l, MDB_dbi dbi)
{
    struct rx_build b = {l, txn, dbi};
    return rx_scan(txn, l, NULL, file_rx, &b);
}
