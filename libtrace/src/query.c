/* SPDX-License-Identifier: Apache-2.0 */
/*
 * query.c - balances at any time, lot tracing and history, answered from
 * the indexes of state.c inside one read transaction.
 *
 * Balance at T: for each holding of the party (a key prefix of the bal
 * index) one seek to the last change at or before T, whose running
 * balance is the answer.  Tracing walks the lots index of a lot in time
 * order and decodes only the events it names.  Everything a query
 * allocates lives in one arena, freed when the query ends.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A read transaction and scratch memory for one query. */
typedef struct query {
    trace_ledger *l;
    MDB_txn *txn;
    arena *a;
} query;

static int query_begin(query *q, trace_ledger *l)
{
    int rc;

    q->l = l;
    q->txn = NULL;
    if (!(q->a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &q->txn))) {
        q->txn = NULL;
        return trace_fail_mdb(rc, "begin");
    }
    return TRACE_OK;
}

static void query_end(query *q)
{
    if (q->txn)
        ledger_txn_abort(q->l, q->txn);
    arena_free(q->a);
}

/* The event an index record filed under `seq` stands for: the entry's
 * own event, or the replacement a correction carries. */
int load_effective(MDB_txn *txn, const trace_ledger *l, arena *a, uint64_t seq,
                   Trace__V1__Event **out)
{
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    int rc;

    if ((rc = entry_get(txn, l, a, seq, &e)) != TRACE_OK)
        return rc;
    if (!(ev = event_decode(a, e->event.data, e->event.len)))
        return trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                          (unsigned long long)seq);
    if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY &&
        ev->correction_body->has_replacement) {
        const ProtobufCBinaryData *r = &ev->correction_body->replacement;
        if (!(ev = event_decode(a, r->data, r->len)))
            return trace_fail(TRACE_EVERIFY,
                              "replacement in entry %llu cannot be decoded",
                              (unsigned long long)seq);
    }
    *out = ev;
    return TRACE_OK;
}

char *format_qty(arena *a, int64_t amount, const char *unit)
{
    int64_t factor = 1;
    char buf[48];

    unit_lookup(unit, NULL, &factor);
    if (qty_format(buf, sizeof(buf), amount, factor) != TRACE_OK)
        snprintf(buf, sizeof(buf), "?");
    return arena_strdup(a, buf, strlen(buf));
}

char *format_time(arena *a, const Trace__V1__Time *t)
{
    char buf[48];
    if (time_format(buf, sizeof(buf), t) != TRACE_OK)
        snprintf(buf, sizeof(buf), "?");
    return arena_strdup(a, buf, strlen(buf));
}

/* ------------------------------------------------------------------ */
/* Balances                                                             */

int trace_balance(trace_ledger *l, const char *party, int64_t at_us,
                  const char *substance, trace_holding_fn fn, void *ctx)
{
    uint8_t prefix[KEY_MAX], probe[BAL_SIZE];
    const char *code = NULL;
    Trace__V1__PartyState *st;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t plen;
    query q;
    int rc;

    if (!time_asked_ok(at_us))
        return trace_fail(TRACE_EINVAL, "balance: the time is out of range "
                                        "(years 1 to 9999)");
    if ((rc = query_begin(&q, l)) != TRACE_OK)
        goto out;
    if ((rc = party_state_get(q.txn, l, q.a, party, &st)) != TRACE_OK) {
        if (rc == TRACE_ENOTFOUND)
            rc = trace_fail(rc, "unknown party %s", party);
        goto out;
    }
    if (substance) {
        const subst_info *s = catalog_find(l->cat, substance);
        if (!s) {
            rc = trace_fail(TRACE_ENOTFOUND, "unknown substance %s", substance);
            goto out;
        }
        code = s->code;
    }
    /* holdings: party \0 [code \0] ... */
    plen = compose_key(prefix, sizeof(prefix), party, code ? code : "",
                       code ? strlen(code) + 1 : 0);
    if ((rc = mdb_cursor_open(q.txn, l->dbi_bal, &cur))) {
        rc = trace_fail_mdb(rc, "bal");
        goto out;
    }
    /* the last change at or before at_us sorts just below this */
    be64_put(probe, time_key(at_us));
    memset(probe + 8, 0xff, BAL_SIZE - 8);
    k = (MDB_val){plen, prefix};
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > plen &&
           memcmp(k.mv_data, prefix, plen) == 0) {
        /* k names a holding: party \0 substance \0 lot \0 site */
        const char *parts[4];
        size_t hlen = k.mv_size, o = 0;
        char *hold = arena_alloc(q.a, hlen + 1);
        if (!hold) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(hold, k.mv_data, k.mv_size);
        hold[k.mv_size] = '\0';
        for (int i = 0; i < 4; i++) {
            if (o > k.mv_size) {
                rc = trace_fail(TRACE_EVERIFY, "stock index is damaged");
                goto out;
            }
            parts[i] = hold + o;
            o += strlen(hold + o) + 1;
        }
        /* the unit of the holding's first record */
        const char *unit = v.mv_size == BAL_SIZE
                               ? unit_name(((uint8_t *)v.mv_data)[25])
                               : NULL;
        MDB_val hk = {hlen, hold}, hv = {BAL_SIZE, probe};
        int64_t qty = 0;
        int found = 0;
        /* v is the holding's first change: none by at_us, nothing held.
         * Else its last change, when made by at_us (a holding looked at
         * now, or emptied before), or the last one before at_us: the
         * cursor stays on this holding, for the next one's step. */
        if (v.mv_size == BAL_SIZE && memcmp(v.mv_data, probe, BAL_SIZE) > 0) {
            rc = MDB_NOTFOUND;
        } else if ((rc = mdb_cursor_get(cur, &hk, &hv, MDB_LAST_DUP)) == 0 &&
                   hv.mv_size == BAL_SIZE &&
                   memcmp(hv.mv_data, probe, BAL_SIZE) > 0) {
            hk = (MDB_val){hlen, hold};
            hv = (MDB_val){BAL_SIZE, probe};
            rc = mdb_cursor_get(cur, &hk, &hv, MDB_GET_BOTH_RANGE);
            if (rc == 0)
                rc = mdb_cursor_get(cur, &hk, &hv, MDB_PREV_DUP);
        }
        if (rc == 0 && hv.mv_size == BAL_SIZE) {
            qty = bal_balance(hv.mv_data);
            found = 1;
            /* the change into this balance must be one event's: if not,
             * the sum wrapped when it was stored (an index written before
             * sums were checked, or altered) */
            MDB_val pk, pv;
            int64_t step;
            if (mdb_cursor_get(cur, &pk, &pv, MDB_PREV_DUP) == 0 &&
                pv.mv_size == BAL_SIZE &&
                qty_step(&step, bal_balance(pv.mv_data), qty)) {
                rc = trace_fail(TRACE_EVERIFY,
                                "quantity overflow: the stock of %s lot %s at "
                                "site %s of %s is beyond the %s representable "
                                "quantity (the stock index holds a wrapped "
                                "sum: run `tracectl reconcile`, which reports "
                                "the events)",
                                parts[1], parts[2], parts[3], party,
                                bal_balance(pv.mv_data) > 0 ? "largest"
                                                            : "smallest");
                goto out;
            }
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            rc = trace_fail_mdb(rc, "bal");
            goto out;
        }
        if (found && qty != 0 && unit) {
            trace_holding h = {party,
                               parts[3],
                               parts[1],
                               parts[2],
                               qty,
                               unit,
                               format_qty(q.a, qty, unit)};
            if ((rc = fn(&h, ctx)) != 0)
                goto out;
        }
        /* next holding */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
    }
    rc = rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "bal");
out:
    if (cur)
        mdb_cursor_close(cur);
    query_end(&q);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Lot records                                                          */

typedef struct lotrec {
    const char *party; /* the party the record is filed under */
    uint64_t seq;
    int64_t at;
    uint8_t role;
    Trace__V1__Event *ev; /* NULL unless decoded */
} lotrec;

static int cmp_lotrec(const void *a, const void *b)
{
    const lotrec *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int decode_rec(query *q, lotrec *r)
{
    int rc;
    if (r->ev)
        return TRACE_OK;
    if ((rc = load_effective(q->txn, q->l, q->a, r->seq, &r->ev)))
        return rc;
    r->at = r->ev->at->us;
    return TRACE_OK;
}

/*
 * The records of `lot` filed under `party` (NULL: every party).  With
 * `decode` the events are loaded and the records sorted by `at`;
 * otherwise they come in key order with only party, seq and role.
 */
static int lot_records(query *q, const char *lot, const char *party, int decode,
                       lotrec **out, size_t *n)
{
    uint8_t key[KEY_MAX];
    size_t llen = strlen(lot) + 1, plen = party ? strlen(party) : 0;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    lotrec *recs = NULL;
    size_t cnt = 0, cap = 0;
    int rc;

    /* lot \0 party, or with no party the prefix lot \0 of all of them */
    if (llen + plen > sizeof(key))
        return trace_fail(TRACE_EINVAL, "lot id too long");
    memcpy(key, lot, llen);
    if (party)
        memcpy(key + llen, party, plen);
    if ((rc = mdb_cursor_open(q->txn, q->l->dbi_lots, &cur)))
        return trace_fail_mdb(rc, "lots");
    k = (MDB_val){llen + plen, key};
    for (rc = mdb_cursor_get(cur, &k, &v, party ? MDB_SET_KEY : MDB_SET_RANGE);
         rc == 0 && k.mv_size > llen && memcmp(k.mv_data, key, llen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, party ? MDB_NEXT_DUP : MDB_NEXT)) {
        const char *who = party;
        if (v.mv_size != 9)
            continue;
        if (!party && !(who = arena_strdup(q->a, (const char *)k.mv_data + llen,
                                           k.mv_size - llen))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            lotrec *p = arena_alloc(q->a, nc * sizeof(*p));
            if (!p) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                goto out;
            }
            if (cnt)
                memcpy(p, recs, cnt * sizeof(*p));
            recs = p;
            cap = nc;
        }
        lotrec *r = &recs[cnt++];
        r->party = who;
        r->seq = be64_get(v.mv_data);
        r->at = 0;
        r->role = ((uint8_t *)v.mv_data)[8];
        r->ev = NULL;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = trace_fail_mdb(rc, "lots");
        goto out;
    }
    rc = TRACE_OK;
    for (size_t i = 0; decode && i < cnt && rc == TRACE_OK; i++)
        rc = decode_rec(q, &recs[i]);
    if (rc == TRACE_OK && decode && cnt) /* qsort wants a non-NULL base */
        qsort(recs, cnt, sizeof(*recs), cmp_lotrec);
    *out = recs;
    *n = cnt;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Tracing                                                              */

typedef struct walk {
    query *q;
    trace_hop_fn fn;
    void *ctx;
    strmap *seen;    /* "lot\x1party" pairs already expanded */
    strmap *names;   /* party -> its registered name (or NULL), in q->a */
    strmap *custody; /* "lot\x1seller" -> struct custody, in q->a */
    /* the holder a backward walk from every holder is explaining */
    const char *holder, *holder_name, *held_text, *held_unit;
} walk;

/* The registered name of `party`, or NULL (not a party: a country, or
 * unregistered).  Never fails: a name is an aid, not an answer. */
static const char *party_name(query *q, const char *party)
{
    Trace__V1__PartyState *st;
    MDB_val k, v;

    if (!party)
        return NULL;
    k = (MDB_val){strlen(party), (void *)party};
    if (mdb_get(q->txn, q->l->dbi_parties, &k, &v) != 0)
        return NULL;
    st = trace__v1__party_state__unpack(arena_allocator(q->a), v.mv_size,
                                        v.mv_data);
    return st && st->body && st->body->name && st->body->name[0]
               ? st->body->name
               : NULL;
}

/* party_name, remembered for the rest of the walk. */
static const char *walk_name(walk *w, const char *party)
{
    const char **slot;

    if (!party)
        return NULL;
    if (!w->names || !(slot = strmap_get(w->names, party, 1)))
        return party_name(w->q, party);
    if (!*slot)
        *slot = party_name(w->q, party);
    return *slot;
}

/* Where goods leave the chain, by the role of the event. */
static const char *leaves_of(uint8_t role)
{
    switch (role) {
    case LOT_DISPENSE:
        return "dispensed";
    case LOT_CONSUME:
        return "consumed";
    case LOT_DESTROY:
        return "destroyed";
    case LOT_LOSS:
        return "lost";
    case LOT_EXPORT:
        return "exported";
    default:
        return NULL;
    }
}

static int emit_hop(walk *w, const lotrec *r, const char *lot, const char *from,
                    const char *to, const char *into,
                    const Trace__V1__Quantity *qty, int depth)
{
    const ProtobufCMessage *body = event_body(r->ev);
    const char *sub = msg_field(body, "substance");
    trace_hop h = {0};

    if (r->role == LOT_INPUT) {
        for (size_t i = 0; i < r->ev->produce_body->n_inputs; i++)
            if (strcmp(r->ev->produce_body->inputs[i]->lot, lot) == 0) {
                sub = r->ev->produce_body->inputs[i]->substance;
                break;
            }
    }
    h.lot = lot;
    h.substance = canonical_substance(w->q->l, sub);
    h.from = from;
    h.to = to;
    h.kind = r->ev->type;
    h.into_lot = into;
    h.qty = qty ? qty->amount : 0;
    h.unit = qty ? qty->unit : NULL;
    h.qty_text = qty ? format_qty(w->q->a, qty->amount, qty->unit) : NULL;
    h.party = r->ev->party;
    h.event = r->ev->id;
    h.at_us = r->ev->at->us;
    h.at_text = format_time(w->q->a, r->ev->at);
    h.depth = depth;
    /* an import comes from a country, an export goes to one */
    h.from_name = r->role == LOT_IMPORT ? NULL : walk_name(w, from);
    h.to_name = r->role == LOT_EXPORT ? NULL : walk_name(w, to);
    if (r->ev->body_case == TRACE__V1__EVENT__BODY_RECEIPT_BODY)
        h.ref = r->ev->receipt_body->ref;
    if (r->role == LOT_CUSTODY || r->role == LOT_CUSTODY_OF) {
        const Trace__V1__EventRef *ref = msg_field(body, "ref");
        h.ref = ref ? ref->id : NULL;
        if (r->ev->body_case == TRACE__V1__EVENT__BODY_PICKUP_BODY)
            h.vehicle = r->ev->pickup_body->vehicle;
    }
    h.leaves = leaves_of(r->role);
    h.holder = w->holder;
    h.holder_name = w->holder_name;
    h.held_text = w->held_text;
    h.held_unit = w->held_unit;
    return w->fn(&h, w->ctx);
}

/* Has (lot, party) been expanded already?  Marks it if not. */
static int seen(walk *w, const char *lot, const char *party)
{
    char key[KEY_MAX];
    int *mark;
    snprintf(key, sizeof(key), "%s\x01%s", lot, party ? party : "");
    mark = strmap_get(w->seen, key, 1);
    if (!mark || *mark)
        return 1;
    *mark = 1;
    return 0;
}

static const Trace__V1__Input *input_of(const Trace__V1__Event *ev,
                                        const char *lot)
{
    for (size_t i = 0; i < ev->produce_body->n_inputs; i++)
        if (strcmp(ev->produce_body->inputs[i]->lot, lot) == 0)
            return ev->produce_body->inputs[i];
    return NULL;
}

static int forward(walk *w, const char *lot, const char *party, int depth);
static int backward(walk *w, const char *lot, const char *holder, int depth);

/* Is r a receipt of the sale `sale` (recorded by `seller`)? */
static int receipt_of(const lotrec *r, const Trace__V1__Event *sale)
{
    const Trace__V1__ReceiptBody *b;

    if (r->role != LOT_RECEIPT ||
        r->ev->body_case != TRACE__V1__EVENT__BODY_RECEIPT_BODY)
        return 0;
    b = r->ev->receipt_body;
    return b->from && b->ref && strcmp(b->from, sale->party) == 0 &&
           strcmp(b->ref, sale->id) == 0;
}

/* The receipts among recs[0..n) of the sale `sale`, at `depth`. */
static int emit_receipts(walk *w, const lotrec *recs, size_t n, const char *lot,
                         const Trace__V1__Event *sale, int depth)
{
    int rc = TRACE_OK;

    for (size_t i = 0; i < n && rc == TRACE_OK; i++)
        if (receipt_of(&recs[i], sale))
            rc = emit_hop(w, &recs[i], lot, sale->party, recs[i].ev->party,
                          NULL, recs[i].ev->receipt_body->qty, depth);
    return rc;
}

/* The custody hops of the sale `sale` of `lot` (SPEC 12: pickups,
 * handovers, deliveries citing it, filed under its seller), in `at`
 * order at `depth`: seller -> carrier, carrier -> next carrier, carrier
 * -> buyer. */
struct custody {
    int read;
    lotrec *recs; /* the seller's custody records of the lot, decoded */
    size_t n;
};

/* The custody records of `lot` filed under `seller`, read once per walk
 * (a lot sold many times by one seller would otherwise read the seller's
 * records per sale); `have`: the seller's records already decoded and
 * sorted (forward()), or NULL to read them. */
static int custody_of(walk *w, const char *lot, const char *seller,
                      const lotrec *have, size_t n_have, struct custody **out)
{
    char key[KEY_MAX];
    struct custody *c;
    lotrec *recs;
    size_t n, k = 0;
    int rc;

    snprintf(key, sizeof(key), "%s\x01%s", lot, seller);
    if (!w->custody || !(c = strmap_get(w->custody, key, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *out = c;
    if (c->read)
        return TRACE_OK;
    if (have) {
        for (size_t i = 0; i < n_have; i++)
            k += have[i].role == LOT_CUSTODY || have[i].role == LOT_CUSTODY_OF;
        if (!(recs = arena_alloc(w->q->a, (k + 1) * sizeof(*recs))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        k = 0;
        for (size_t i = 0; i < n_have; i++)
            if (have[i].role == LOT_CUSTODY || have[i].role == LOT_CUSTODY_OF)
                recs[k++] = have[i];
    } else {
        if ((rc = lot_records(w->q, lot, seller, 0, &recs, &n)))
            return rc;
        for (size_t i = 0; i < n; i++)
            if (recs[i].role == LOT_CUSTODY || recs[i].role == LOT_CUSTODY_OF)
                recs[k++] = recs[i];
        for (size_t i = 0; i < k; i++)
            if ((rc = decode_rec(w->q, &recs[i])) != TRACE_OK)
                return rc;
        qsort(recs, k, sizeof(*recs), cmp_lotrec);
    }
    c->read = 1;
    c->recs = recs;
    c->n = k;
    return TRACE_OK;
}

static int custody_hops(walk *w, const char *lot, const Trace__V1__Event *sale,
                        int depth)
{
    struct custody *c;
    const lotrec *recs;
    size_t k;
    int rc;

    if ((rc = custody_of(w, lot, sale->party, NULL, 0, &c)) != TRACE_OK)
        return rc;
    recs = c->recs;
    k = c->n;
    for (size_t i = 0; i < k && rc == TRACE_OK; i++) {
        const Trace__V1__Event *ev = recs[i].ev;
        const ProtobufCMessage *body = event_body(ev);
        const Trace__V1__EventRef *ref = body ? msg_field(body, "ref") : NULL;
        const char *from = ev->party, *to = NULL;
        if (!ref || !ref->party || !ref->id ||
            strcmp(ref->party, sale->party) != 0 ||
            strcmp(ref->id, sale->id) != 0)
            continue;
        switch (ev->body_case) {
        case TRACE__V1__EVENT__BODY_PICKUP_BODY:
            from = sale->party;
            to = ev->party;
            break;
        case TRACE__V1__EVENT__BODY_HANDOVER_BODY:
            to = ev->handover_body->to;
            break;
        case TRACE__V1__EVENT__BODY_DELIVERY_BODY:
            to = ev->delivery_body->to;
            break;
        default:
            continue;
        }
        rc = emit_hop(w, &recs[i], lot, from, to, NULL, msg_field(body, "qty"),
                      depth);
    }
    return rc;
}

/* The buyer's receipts of the sale `sale` of `lot`, at `depth`. */
static int buyer_receipts(walk *w, const char *lot,
                          const Trace__V1__Event *sale, int depth)
{
    lotrec *recs;
    size_t n, k = 0;
    int rc;

    /* only the receipts are decoded: the buyer's other records (all its
     * dispensings, say) are read when the walk reaches it */
    if ((rc = lot_records(w->q, lot, sale->sale_body->to, 0, &recs, &n)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if (recs[i].role == LOT_RECEIPT)
            recs[k++] = recs[i];
    for (size_t i = 0; i < k; i++)
        if ((rc = decode_rec(w->q, &recs[i])) != TRACE_OK)
            return rc;
    if (k)
        qsort(recs, k, sizeof(*recs), cmp_lotrec);
    return emit_receipts(w, recs, k, lot, sale, depth);
}

/* The produce and import records of a lot, decoded, in `at` order: where
 * the lot enters the ledger.  Then `next` continues from each. */
static int origins(walk *w, const char *lot, int depth, int dir)
{
    lotrec *recs;
    size_t n, k = 0;
    int rc;

    if ((rc = lot_records(w->q, lot, NULL, 0, &recs, &n)) != TRACE_OK)
        return rc;
    if (n == 0)
        return trace_fail(TRACE_ENOTFOUND, "no event names lot %s", lot);
    for (size_t i = 0; i < n; i++)
        if (recs[i].role == LOT_PRODUCE || recs[i].role == LOT_IMPORT)
            recs[k++] = recs[i];
    for (size_t i = 0; i < k; i++)
        if ((rc = decode_rec(w->q, &recs[i])) != TRACE_OK)
            return rc;
    qsort(recs, k, sizeof(*recs), cmp_lotrec);
    for (size_t i = 0; i < k && rc == TRACE_OK; i++) {
        const lotrec *r = &recs[i];
        const Trace__V1__Event *ev = r->ev;
        if (r->role == LOT_IMPORT)
            rc = emit_hop(w, r, lot, ev->import_body->country, ev->party, NULL,
                          ev->import_body->qty, depth);
        else
            rc = emit_hop(w, r, lot, NULL, ev->party, NULL,
                          ev->produce_body->qty, depth);
        if (rc != TRACE_OK)
            break;
        if (dir == TRACE_FORWARD) {
            rc = forward(w, lot, ev->party, depth + 1);
        } else if (r->role == LOT_PRODUCE && !seen(w, lot, ev->party)) {
            for (size_t j = 0; rc == TRACE_OK && j < ev->produce_body->n_inputs;
                 j++)
                rc = backward(w, ev->produce_body->inputs[j]->lot, ev->party,
                              depth + 1);
        }
    }
    return rc;
}

/* Where `party`'s holding of `lot` went. */
static int forward(walk *w, const char *lot, const char *party, int depth)
{
    lotrec *recs;
    size_t n;
    int rc;

    if (seen(w, lot, party))
        return TRACE_OK;
    if ((rc = lot_records(w->q, lot, party, 1, &recs, &n)) != TRACE_OK)
        return rc;
    if (n == 0 && depth == 0)
        return trace_fail(TRACE_ENOTFOUND, "%s has no record of lot %s", party,
                          lot);
    {
        struct custody *c; /* the party's custody records, as read here */
        if ((rc = custody_of(w, lot, party, recs, n, &c)) != TRACE_OK)
            return rc;
    }
    for (size_t i = 0; i < n && rc == TRACE_OK; i++) {
        const lotrec *r = &recs[i];
        const Trace__V1__Event *ev = r->ev;
        const Trace__V1__Quantity *qty = msg_field(event_body(ev), "qty");

        switch (r->role) {
        case LOT_SALE:
            rc =
                emit_hop(w, r, lot, party, ev->sale_body->to, NULL, qty, depth);
            if (rc == TRACE_OK)
                rc = custody_hops(w, lot, ev, depth);
            if (rc == TRACE_OK)
                rc = buyer_receipts(w, lot, ev, depth);
            if (rc == TRACE_OK)
                rc = forward(w, lot, ev->sale_body->to, depth + 1);
            break;
        case LOT_INPUT: {
            const Trace__V1__Input *in = input_of(ev, lot);
            if (!in)
                break;
            rc = emit_hop(w, r, lot, party, party, ev->produce_body->lot,
                          in->qty, depth);
            if (rc == TRACE_OK)
                rc = forward(w, ev->produce_body->lot, party, depth + 1);
            break;
        }
        case LOT_CONSUME:
        case LOT_DISPENSE:
        case LOT_DESTROY:
        case LOT_LOSS:
        case LOT_EXPORT:
            rc = emit_hop(w, r, lot, party,
                          r->role == LOT_EXPORT ? ev->export_body->country
                                                : NULL,
                          NULL, qty, depth);
            break;
        default: /* what came in, and moves inside the party */
            break;
        }
    }
    return rc;
}

/* How `holder` came to hold `lot`. */
static int backward(walk *w, const char *lot, const char *holder, int depth)
{
    lotrec *recs;
    size_t n;
    int rc;
    strmap *sellers, *sales;

    if (seen(w, lot, holder))
        return TRACE_OK;
    if ((rc = lot_records(w->q, lot, holder, 1, &recs, &n)) != TRACE_OK)
        return rc;
    if (n == 0 && depth == 0)
        return trace_fail(TRACE_ENOTFOUND, "%s has no record of lot %s", holder,
                          lot);
    /* Sales to the holder are the evidence, each followed by the
     * holder's receipts of it; a receipt of no sale on record is shown
     * on its own, and stands in for a sale when its seller has none on
     * record with the holder (`sellers`: who has; `sales`: "party\x01id"
     * of each sale). */
    if (!(sellers = strmap_new(sizeof(int))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (!(sales = strmap_new(sizeof(int)))) {
        strmap_free(sellers);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char key[KEY_MAX];
        if (recs[i].role != LOT_SALE_IN)
            continue;
        snprintf(key, sizeof(key), "%s\x01%s", recs[i].ev->party,
                 recs[i].ev->id);
        if (!strmap_get(sellers, recs[i].ev->party, 1) ||
            !strmap_get(sales, key, 1)) {
            strmap_free(sellers);
            strmap_free(sales);
            return trace_fail(TRACE_ENOMEM, "out of memory");
        }
    }
    for (size_t i = n; i-- > 0 && rc == TRACE_OK;) {
        const lotrec *r = &recs[i];
        const Trace__V1__Event *ev = r->ev;
        const Trace__V1__Quantity *qty = msg_field(event_body(ev), "qty");
        const char *src = NULL;

        switch (r->role) {
        case LOT_PRODUCE:
            rc = emit_hop(w, r, lot, NULL, holder, NULL, qty, depth);
            for (size_t k = 0; rc == TRACE_OK && k < ev->produce_body->n_inputs;
                 k++)
                rc = backward(w, ev->produce_body->inputs[k]->lot, holder,
                              depth + 1);
            break;
        case LOT_IMPORT:
            rc = emit_hop(w, r, lot, ev->import_body->country, holder, NULL,
                          qty, depth);
            break;
        case LOT_SALE_IN:
            src = ev->party;
            rc = emit_hop(w, r, lot, src, holder, NULL, qty, depth);
            if (rc == TRACE_OK)
                rc = custody_hops(w, lot, ev, depth);
            if (rc == TRACE_OK)
                rc = emit_receipts(w, recs, n, lot, ev, depth);
            break;
        case LOT_RECEIPT: {
            char key[KEY_MAX];
            const Trace__V1__ReceiptBody *b = ev->receipt_body;
            snprintf(key, sizeof(key), "%s\x01%s", b->from, b->ref);
            if (strmap_get(sales, key, 0))
                break; /* shown with its sale */
            rc = emit_hop(w, r, lot, b->from, holder, NULL, qty, depth);
            if (!strmap_get(sellers, b->from, 0))
                src = b->from;
            break;
        }
        default:
            break;
        }
        if (rc == TRACE_OK && src)
            rc = backward(w, lot, src, depth + 1);
    }
    strmap_free(sellers);
    strmap_free(sales);
    return rc;
}

/* A party's book stock of `lot` now, over all its sites: *held (base
 * units, saturated) and its unit; *any is 0 if it has no stock record of
 * it at all. */
static int stock_now(query *q, const char *party, const char *substance,
                     const char *lot, int64_t *held, const char **unit,
                     int *any)
{
    const char *parts[] = {party, substance, lot};
    uint8_t prefix[KEY_MAX];
    size_t plen = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *held = 0;
    *unit = NULL;
    *any = 0;
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]) + 1;
        if (plen + len > sizeof(prefix))
            return TRACE_OK; /* too long to be stored */
        memcpy(prefix + plen, parts[i], len);
        plen += len;
    }
    if ((rc = mdb_cursor_open(q->txn, q->l->dbi_bal, &cur)))
        return trace_fail_mdb(rc, "bal");
    k = (MDB_val){plen, prefix};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        if (v.mv_size == BAL_SIZE && !*unit)
            *unit = unit_name(((uint8_t *)v.mv_data)[25]);
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP)))
            break;
        if (v.mv_size != BAL_SIZE)
            continue;
        *any = 1;
        if (qty_add(held, *held, bal_balance(v.mv_data)))
            *held = bal_balance(v.mv_data) > 0 ? INT64_MAX : INT64_MIN;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "bal");
}

/* `trace LOT --backward` without a party: from every party holding
 * stock of the lot now (or, if none does, that ever held stock of it),
 * each walk on its own, or from its origins if no stock of it was ever
 * booked. */
static int from_holders(walk *w, const char *lot)
{
    lotrec *recs;
    size_t n, nh = 0;
    struct holder {
        const char *party;
        int64_t held;
        const char *unit;
        int now;
    } * hs;
    int rc, any_now = 0;

    if ((rc = lot_records(w->q, lot, NULL, 0, &recs, &n)) != TRACE_OK)
        return rc;
    if (n == 0)
        return trace_fail(TRACE_ENOTFOUND, "no event names lot %s", lot);
    if (!(hs = arena_alloc(w->q->a, n * sizeof(*hs))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    /* records come grouped by party, in party id order */
    for (size_t i = 0; i < n; i++) {
        const char *sub;
        int any;
        if (i > 0 && strcmp(recs[i].party, recs[i - 1].party) == 0)
            continue;
        if ((rc = decode_rec(w->q, &recs[i])) != TRACE_OK)
            return rc;
        sub = msg_field(event_body(recs[i].ev), "substance");
        if (recs[i].role == LOT_INPUT) {
            const Trace__V1__Input *in = input_of(recs[i].ev, lot);
            sub = in ? in->substance : NULL;
        }
        if (!(sub = canonical_substance(w->q->l, sub)))
            continue;
        hs[nh].party = recs[i].party;
        if ((rc = stock_now(w->q, recs[i].party, sub, lot, &hs[nh].held,
                            &hs[nh].unit, &any)) != TRACE_OK)
            return rc;
        if (!any)
            continue;
        hs[nh].now = hs[nh].held != 0;
        any_now |= hs[nh].now;
        nh++;
    }
    if (nh == 0)
        return origins(w, lot, 0, TRACE_BACKWARD);
    for (size_t i = 0; i < nh && rc == TRACE_OK; i++) {
        if (any_now && !hs[i].now)
            continue;
        /* each holder's walk is complete: what another holder's walk
         * passed through is shown again */
        strmap_free(w->seen);
        if (!(w->seen = strmap_new(sizeof(int))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        w->holder = hs[i].party;
        w->holder_name = walk_name(w, hs[i].party);
        w->held_unit = hs[i].unit;
        w->held_text =
            hs[i].unit ? format_qty(w->q->a, hs[i].held, hs[i].unit) : NULL;
        rc = backward(w, lot, hs[i].party, 0);
    }
    return rc;
}

int trace_lot(trace_ledger *l, const char *lot, const char *party,
              int direction, trace_hop_fn fn, void *ctx)
{
    Trace__V1__PartyState *st;
    walk w = {.fn = fn, .ctx = ctx};
    query q;
    int rc;

    if (direction != TRACE_FORWARD && direction != TRACE_BACKWARD)
        return trace_fail(TRACE_EINVAL, "direction must be forward or "
                                        "backward");
    if ((rc = query_begin(&q, l)) != TRACE_OK)
        goto out;
    w.q = &q;
    if (party &&
        (rc = party_state_get(q.txn, l, q.a, party, &st)) != TRACE_OK) {
        if (rc == TRACE_ENOTFOUND)
            rc = trace_fail(rc, "unknown party %s", party);
        goto out;
    }
    if (!(w.seen = strmap_new(sizeof(int))) ||
        !(w.names = strmap_new(sizeof(const char *))) ||
        !(w.custody = strmap_new(sizeof(struct custody)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if (!party && direction == TRACE_BACKWARD)
        rc = from_holders(&w, lot);
    else if (!party)
        rc = origins(&w, lot, 0, direction);
    else if (direction == TRACE_FORWARD)
        rc = forward(&w, lot, party, 0);
    else
        rc = backward(&w, lot, party, 0);
out:
    strmap_free(w.seen);
    strmap_free(w.names);
    strmap_free(w.custody);
    query_end(&q);
    return rc;
}

/* ------------------------------------------------------------------ */
/* History                                                              */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The event (party, id) and its journal position, looked up in `dbi`
 * (ids: the event itself; eff: the correction in force for it).
 * 0 if there is none. */
static int event_by_key(query *q, MDB_dbi dbi, const char *party,
                        const char *id, uint64_t *seq, Trace__V1__Event **out)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    Trace__V1__Entry *e;

    if (!klen || mdb_get(q->txn, dbi, &k, &v) != 0 || v.mv_size < 8)
        return 0;
    *seq = be64_get(v.mv_data);
    if (entry_get(q->txn, q->l, q->a, *seq, &e) != TRACE_OK ||
        !(*out = event_decode(q->a, e->event.data, e->event.len)))
        return 0;
    return 1;
}

static int emit_event(query *q, const trace_history_opts *o, uint64_t seq,
                      trace_event_fn fn, void *ctx, size_t *count)
{
    Trace__V1__Entry *e;
    Trace__V1__Event *ev, *eff = NULL, *c;
    trace_event_info info = {0};
    uint64_t cseq;
    char *json;
    size_t len;
    int rc;

    if (seq <= o->after || (o->limit && *count >= o->limit))
        return TRACE_OK;
    if ((rc = entry_get(q->txn, q->l, q->a, seq, &e)) != TRACE_OK)
        return rc;
    if (!(ev = event_decode(q->a, e->event.data, e->event.len)))
        return trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                          (unsigned long long)seq);
    if ((o->has_from && ev->at->us < o->from_us) ||
        (o->has_to && ev->at->us > o->to_us))
        return TRACE_OK;
    if ((rc = event_to_json(&json, &len, ev, q->l)) != TRACE_OK)
        return rc;
    /* what the row's substance, lot and quantity describe: the event, or
     * for a correction its replacement (or the event it voids) */
    eff = ev;
    if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY) {
        const Trace__V1__CorrectionBody *cb = ev->correction_body;
        uint64_t oseq;
        info.corrects = cb->corrects;
        info.voids = !cb->has_replacement;
        eff = NULL;
        if (cb->has_replacement)
            eff = event_decode(q->a, cb->replacement.data, cb->replacement.len);
        else if (!cb->corrects || !event_by_key(q, q->l->dbi_ids, ev->party,
                                                cb->corrects, &oseq, &eff))
            eff = NULL;
        /* superseded by a later correction of the same event? */
        if (cb->corrects &&
            event_by_key(q, q->l->dbi_eff, ev->party, cb->corrects, &cseq,
                         &c) &&
            cseq != seq) {
            info.corrected = 1;
            info.corrected_by = c->id;
            info.voided =
                c->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY &&
                !c->correction_body->has_replacement;
        }
    } else if (event_by_key(q, q->l->dbi_eff, ev->party, ev->id, &cseq, &c)) {
        info.corrected = 1;
        info.corrected_by = c->id;
        info.voided = c->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY &&
                      !c->correction_body->has_replacement;
    }
    const ProtobufCMessage *body = eff ? event_body(eff) : NULL;
    const Trace__V1__Quantity *qty = body ? msg_field(body, "qty") : NULL;
    if (!qty && eff && eff->body_case == TRACE__V1__EVENT__BODY_STOCKTAKE_BODY)
        qty = eff->stocktake_body->counted;
    if (info.voids)
        qty = NULL; /* a void moves nothing of its own */
    info.seq = seq;
    info.type = ev->type;
    info.id = ev->id;
    info.party = ev->party;
    info.party_name = party_name(q, ev->party);
    info.substance =
        body ? canonical_substance(q->l, msg_field(body, "substance")) : NULL;
    info.lot = body ? msg_field(body, "lot") : NULL;
    info.qty_text = qty ? format_qty(q->a, qty->amount, qty->unit) : NULL;
    info.unit = qty ? qty->unit : NULL;
    info.at_us = ev->at->us;
    info.at_text = format_time(q->a, ev->at);
    info.json = json;
    rc = fn(&info, ctx);
    free(json);
    (*count)++;
    return rc;
}

/* Does ev name `lot` (as its lot or one of its inputs)? */
static int names_lot(const Trace__V1__Event *ev, const char *lot)
{
    const char *l = msg_field(event_body(ev), "lot");

    if (l && strcmp(l, lot) == 0)
        return 1;
    if (ev->body_case == TRACE__V1__EVENT__BODY_PRODUCE_BODY)
        return input_of(ev, lot) != NULL;
    return 0;
}

/* Do the bytes b[0..n) contain the string s? (glibc's memmem: a check
 * at entry scans every sale and receipt of a lot per receipt.) */
static int bytes_have(const uint8_t *b, size_t n, const char *s)
{
    size_t m = strlen(s);
    return m && memmem(b, n, s, m) != NULL;
}

/*
 * The journal positions of what corrections took out of the lots index
 * for `lot`: each event that named the lot and is now voided or
 * replaced, and the correction in force for it.  Appended to *seqs
 * (malloc'd, *n of *cap).  Reads every correction in force; an event is
 * decoded only if its bytes hold the lot id.
 */
static int corrected_of_lot(query *q, const char *lot, uint64_t **seqs,
                            size_t *n, size_t *cap)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    arena *scratch;
    int rc, mrc = 0;

    if (!(scratch = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = mdb_cursor_open(q->txn, q->l->dbi_eff, &cur))) {
        arena_free(scratch);
        return trace_fail_mdb(rc, "eff");
    }
    rc = TRACE_OK;
    while (rc == TRACE_OK &&
           (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        MDB_val ik = k, iv;
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;
        uint64_t oseq;

        if (v.mv_size != 8 || mdb_get(q->txn, q->l->dbi_ids, &ik, &iv) != 0 ||
            iv.mv_size < 8)
            continue;
        oseq = be64_get(iv.mv_data);
        arena_reset(scratch);
        if ((rc = entry_get(q->txn, q->l, scratch, oseq, &e)) != TRACE_OK)
            continue;
        if (!bytes_have(e->event.data, e->event.len, lot))
            continue;
        if (!(ev = event_decode(scratch, e->event.data, e->event.len)) ||
            !names_lot(ev, lot))
            continue;
        if (*n + 2 > *cap) {
            size_t nc = *cap * 2 + 2;
            uint64_t *p = realloc(*seqs, nc * sizeof(*p));
            if (!p) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                continue;
            }
            *seqs = p;
            *cap = nc;
        }
        (*seqs)[(*n)++] = oseq;
        (*seqs)[(*n)++] = be64_get(v.mv_data);
    }
    mdb_cursor_close(cur);
    arena_free(scratch);
    if (rc == TRACE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = trace_fail_mdb(mrc, "eff");
    return rc;
}

/*
 * What the check at entry RECEIPT_EXCEEDS_SALE needs of one sale, read
 * from the lots index without building any event's JSON: among the
 * events of lot `lot` (those of the writer's window included), the sale
 * `ref` of `seller` and the receipts, recorded by anyone, from `seller`
 * citing `ref`, none of them corrected.  The events of a
 * lot are decoded once each, so a receipt costs one decode per event of
 * its lot.
 */
int sale_receipts(trace_ledger *l, const char *seller, const char *ref,
                  const char *lot, const char *buyer, sale_receipts_sum *out)
{
    Trace__V1__Event *c;
    lotrec *recs, *recs2 = NULL;
    uint64_t cseq, *seqs = NULL;
    size_t n, n2 = 0, m = 0;
    query qr;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = query_begin(&qr, l)) != TRACE_OK)
        goto done;
    /* the seller's sale and the buyer's receipts, or every holder's */
    if ((rc = lot_records(&qr, lot, buyer ? seller : NULL, 0, &recs, &n)) !=
        TRACE_OK)
        goto done;
    if (buyer && strcmp(buyer, seller) != 0 &&
        (rc = lot_records(&qr, lot, buyer, 0, &recs2, &n2)) != TRACE_OK)
        goto done;
    if (n + n2 && !(seqs = malloc((n + n2) * sizeof(*seqs)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto done;
    }
    /* only sales and receipts (a correction is filed by what it stands
     * for: it is decoded, and skipped, as before); a sale is filed under
     * its seller (LOT_SALE) and its buyer (LOT_SALE_IN) */
    for (size_t i = 0; i < n + n2; i++) {
        const lotrec *x = i < n ? &recs[i] : &recs2[i - n];
        if (x->role == LOT_SALE || x->role == LOT_RECEIPT ||
            x->role == LOT_SALE_IN)
            seqs[m++] = x->seq;
    }
    if (m)
        qsort(seqs, m, sizeof(*seqs), cmp_u64);
    for (size_t i = 0; i < m && !out->bad; i++) {
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;
        const Trace__V1__Quantity *q = NULL;
        int sale = 0;
        if (i && seqs[i] == seqs[i - 1])
            continue;
        const uint8_t *raw;
        size_t rlen;
        if ((i & 63) == 63)
            arena_reset(qr.a);
        /* an entry that does not hold the sale's id names it nowhere */
        if ((rc = entry_raw(qr.txn, l, seqs[i], &raw, &rlen)) != TRACE_OK)
            goto done;
        if (!bytes_have(raw, rlen, ref))
            continue;
        if ((rc = entry_get(qr.txn, l, qr.a, seqs[i], &e)) != TRACE_OK)
            goto done;
        if (!(ev = event_decode(qr.a, e->event.data, e->event.len))) {
            rc = trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                            (unsigned long long)seqs[i]);
            goto done;
        }
        if (ev->body_case == TRACE__V1__EVENT__BODY_SALE_BODY &&
            strcmp(ev->party, seller) == 0 && strcmp(ev->id, ref) == 0) {
            sale = 1;
            q = ev->sale_body->qty;
        } else if (ev->body_case == TRACE__V1__EVENT__BODY_RECEIPT_BODY &&
                   strcmp(ev->receipt_body->from, seller) == 0 &&
                   strcmp(ev->receipt_body->ref, ref) == 0) {
            q = ev->receipt_body->qty;
        }
        if (!q || !q->unit ||
            event_by_key(&qr, l->dbi_eff, ev->party, ev->id, &cseq, &c))
            continue; /* not of this sale, or corrected */
        if (sale) {
            out->found = 1;
            out->shipped = q->amount;
            snprintf(out->unit, sizeof(out->unit), "%s", q->unit);
        } else if (__builtin_add_overflow(out->received, q->amount,
                                          &out->received)) {
            out->bad = 1;
        }
    }
done:
    free(seqs);
    query_end(&qr);
    return rc;
}

int trace_history(trace_ledger *l, const trace_history_opts *opts,
                  trace_event_fn fn, void *ctx)
{
    MDB_cursor *cur = NULL;
    size_t count = 0;
    query q;
    int rc;

    if (!opts || (!opts->party == !opts->lot))
        return trace_fail(TRACE_EINVAL, "history needs a party or a lot");
    if ((rc = query_begin(&q, l)) != TRACE_OK)
        goto out;
    if (opts->party) {
        Trace__V1__PartyState *st;
        MDB_val k, v;

        if ((rc = party_state_get(q.txn, l, q.a, opts->party, &st))) {
            if (rc == TRACE_ENOTFOUND)
                rc = trace_fail(rc, "unknown party %s", opts->party);
            goto out;
        }
        if ((rc = mdb_cursor_open(q.txn, l->dbi_pchain, &cur))) {
            rc = trace_fail_mdb(rc, "pchain");
            goto out;
        }
        k = (MDB_val){strlen(opts->party), (void *)opts->party};
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
             rc == 0 && !(opts->limit && count >= opts->limit);
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
            if ((rc = emit_event(&q, opts, be64_get(v.mv_data), fn, ctx,
                                 &count)) != TRACE_OK)
                goto out;
            arena_reset(q.a);
        }
        rc = rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK
                                           : trace_fail_mdb(rc, "history");
    } else {
        lotrec *recs;
        size_t n, cap;
        uint64_t *seqs;
        if ((rc = lot_records(&q, opts->lot, NULL, 0, &recs, &n)) != TRACE_OK)
            goto out;
        cap = n + 2;
        if (!(seqs = malloc(cap * sizeof(*seqs)))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            seqs[i] = recs[i].seq;
        /* what corrections removed from the lots index */
        if ((rc = corrected_of_lot(&q, opts->lot, &seqs, &n, &cap)) !=
            TRACE_OK) {
            free(seqs);
            goto out;
        }
        if (n == 0) {
            free(seqs);
            rc =
                trace_fail(TRACE_ENOTFOUND, "no event names lot %s", opts->lot);
            goto out;
        }
        qsort(seqs, n, sizeof(*seqs), cmp_u64);
        for (size_t i = 0; i < n && rc == TRACE_OK; i++)
            if (i == 0 || seqs[i] != seqs[i - 1])
                rc = emit_event(&q, opts, seqs[i], fn, ctx, &count);
        free(seqs);
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    query_end(&q);
    return rc;
}
