/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_inc.c - incremental reconciliation runs.
 *
 * A full run loads every event and judges everything.  An incremental run
 * loads the entries appended since the previous incremental run (the new
 * events) and, around them, exactly the events that the rules need to
 * judge what the new events touch:
 *
 *   scope       loaded from                   judged completely
 *   lot         the lots index (state.c)      stock walks, confirmation
 *                                             of the lot's sales
 *   permit      the pev index (state.c)       PERMIT_INVALID/EXCEEDED
 *   orders      rcidx 'o' buyer\0substance     UNUSUAL_ORDER
 *   patient     rcidx 'p' patient              DOCTOR_SHOPPING
 *   rx          rcidx 'x' prescription id      RX_REUSE
 *   application the apps index (state.c)      APPLICATION_OVERDUE
 *
 * plus every `party` event (rcidx 'g': the registration history that
 * UNLICENSED_PARTY and DESTROY_UNWITNESSED read), for a new `party` event
 * the events that name its subject as buyer, seller or witness (rcidx
 * 'u': verdicts on them may change), the sale each loaded
 * receipt cites, for carriers (SPEC 12) every event citing a loaded sale
 * that names a carrier or that a loaded receipt, pickup, handover or
 * delivery cites (rcidx 'r' holds the custody events too), and the lots of the
 * sales whose receipt window was still open at the previous run and the
 * applications whose answer was not yet due then (kept in the state).  The
 * rules run over that subset as over a whole ledger, but a rule judges a key (a
 * lot, a permit, ...) only if the key's scope was loaded whole; a per-event
 * rule judges any loaded event, which gives the same verdict as a full run as
 * the registration history is complete.  So a run costs in proportion to what
 * the new events touch, and finds what a full run would find.
 *
 * A run falls back to a full one when there is no state yet, when the
 * rules configuration changed, or when a new event is a correction (it
 * can change any verdict on the event it corrects).
 * CHAIN_BROKEN resumes verification where the previous incremental run
 * stopped (verify.c), after checking that the entry it stopped at still
 * hashes to the head it recorded; if not, or if the kept state is not
 * usable, it verifies the whole journal.  Entries before that point are
 * not looked at again: `tracectl verify` and a full run do that.
 *
 * The state ("reconcile.state" in meta; its position is repeated in
 * rcidx under the key "\0", so an emptied rcidx is noticed) and rcidx are
 * written in the transaction that stores the run's alerts, so they always
 * describe the same run; a dry run writes neither.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile_int.h"

#define STATE_KEY     "reconcile.state"
#define STATE_VERSION 2
#define STATE_FIXED   (1 + 8 + 8 + TRACE_HASH_LEN)

/* ------------------------------------------------------------------ */
/* Scopes                                                               */

int scope_complete(const struct run *r, int scope, const char *a, const char *b)
{
    char key[KEY_MAX];
    if (!r->partial)
        return 1;
    if (!a)
        return 0;
    if (b) {
        snprintf(key, sizeof(key), "%s\x01%s", a, b);
        a = key;
    }
    return strmap_get(r->scopes[scope], a, 0) != NULL;
}

/* Marks a scope as loaded whole; 1 if it was not marked before. */
static int scope_mark(struct run *r, int scope, const char *a, const char *b)
{
    char key[KEY_MAX];
    int *mark;
    if (b) {
        snprintf(key, sizeof(key), "%s\x01%s", a, b);
        a = key;
    }
    if (!(mark = strmap_get(r->scopes[scope], a, 1)))
        return -1;
    if (*mark)
        return 0;
    *mark = 1;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The rules configuration, as a digest: a change means a full run      */

static void rules_digest(const struct run *r, uint8_t out[TRACE_HASH_LEN])
{
    char buf[8192];
    size_t o = 0;
    for (size_t i = 0; i < N_RULES && o < sizeof(buf); i++) {
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s %d %s",
                              reconcile_rules[i].code, r->cfg[i].enabled,
                              r->cfg[i].severity);
        for (int k = 0; k < MAX_PARAMS && o < sizeof(buf); k++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %.17g",
                                  r->cfg[i].p[k]);
        if (o < sizeof(buf))
            buf[o++] = '\n';
    }
    sha256(out, buf, o < sizeof(buf) ? o : sizeof(buf));
}

/* ------------------------------------------------------------------ */
/* Loading one entry by its sequence number                             */

static int seen_seq(struct run *r, uint64_t seq)
{
    char key[24];
    int *mark;
    snprintf(key, sizeof(key), "%llx", (unsigned long long)seq);
    if (!(mark = strmap_get(r->loaded, key, 1)))
        return -1;
    if (*mark)
        return 1;
    *mark = 1;
    return 0;
}

/* The event in force at `seq` (the replacement when the entry is the
 * correction in force; nothing for a corrected event or a correction not
 * in force), added to the run once. */
static int load_seq(struct run *r, uint64_t seq)
{
    uint8_t kb[8], key[KEY_MAX];
    MDB_val k = {8, kb}, v, ek, ev_;
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    size_t klen;
    int rc;

    if ((rc = seen_seq(r, seq)) != 0)
        return rc < 0 ? trace_fail(TRACE_ENOMEM, "out of memory") : TRACE_OK;
    be64_put(kb, seq);
    if ((rc = mdb_get(r->txn, r->l->dbi_journal, &k, &v)))
        return rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "journal");
    arena_reset(r->tmp);
    e = trace__v1__entry__unpack(arena_allocator(r->tmp), v.mv_size, v.mv_data);
    if (!e || !(ev = event_decode(r->tmp, e->event.data, e->event.len)))
        return TRACE_OK; /* damage: CHAIN_BROKEN reports it */
    if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY) {
        const Trace__V1__CorrectionBody *c = ev->correction_body;
        klen = compose_key(key, sizeof(key), ev->party, c->corrects,
                           strlen(c->corrects));
        ek = (MDB_val){klen, key};
        if (!klen || mdb_get(r->txn, r->l->dbi_eff, &ek, &ev_) != 0 ||
            ev_.mv_size != 8 || be64_get(ev_.mv_data) != seq ||
            !c->has_replacement)
            return TRACE_OK;
        if (!(ev = event_decode(r->tmp, c->replacement.data,
                                c->replacement.len)))
            return TRACE_OK;
    } else {
        klen = compose_key(key, sizeof(key), ev->party, ev->id, strlen(ev->id));
        ek = (MDB_val){klen, key};
        if (klen && mdb_get(r->txn, r->l->dbi_eff, &ek, &ev_) == 0)
            return TRACE_OK; /* corrected: the correction stands instead */
    }
    return rec_add(r, ev, e, seq);
}

/* Every sequence number filed under `prefix` in a DUPSORT index whose
 * values begin with a u64be seq (lots, pev), or at the end of the key
 * (rcidx: prefix || u64be seq). */
static int load_dups(struct run *r, MDB_dbi dbi, const void *prefix,
                     size_t plen, int exact)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v;
    int rc, op;

    if ((rc = mdb_cursor_open(r->txn, dbi, &cur)))
        return trace_fail_mdb(rc, "index");
    rc = mdb_cursor_get(cur, &k, &v, exact ? MDB_SET_KEY : MDB_SET_RANGE);
    for (op = exact ? MDB_NEXT_DUP : MDB_NEXT; rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, op)) {
        uint64_t seq;
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (exact) {
            if (v.mv_size < 8)
                continue;
            seq = be64_get(v.mv_data);
        } else {
            if (k.mv_size != plen + 8)
                continue;
            seq = be64_get((const uint8_t *)k.mv_data + plen);
        }
        if ((rc = load_seq(r, seq)) != TRACE_OK) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND && rc != TRACE_OK)
        return trace_fail_mdb(rc, "index");
    return TRACE_OK;
}

/* A lot's events: lots is keyed lot \0 party, so the lot's prefix with
 * its NUL covers every holder. */
static int load_lot(struct run *r, const char *lot)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = strlen(lot) + 1;
    int rc = scope_mark(r, SCOPE_LOT, lot, NULL);

    if (rc <= 0)
        return rc < 0 ? trace_fail(TRACE_ENOMEM, "out of memory") : TRACE_OK;
    if ((rc = mdb_cursor_open(r->txn, r->l->dbi_lots, &cur)))
        return trace_fail_mdb(rc, "lots");
    k = (MDB_val){n, (void *)lot};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < n || memcmp(k.mv_data, lot, n) != 0)
            break;
        if (v.mv_size >= 8 && (rc = load_seq(r, be64_get(v.mv_data))) != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK
                                         : trace_fail_mdb(rc, "lots");
}

static int load_keyed(struct run *r, int scope, char tag, const char *a,
                      const char *b)
{
    uint8_t key[KEY_MAX];
    size_t n = 0, la = strlen(a), lb = b ? strlen(b) : 0;
    int rc;

    if (1 + la + 1 + lb + 1 + 8 > sizeof(key)) {
        r->partial = 0; /* too long to be indexed: judge everything */
        return TRACE_OK;
    }
    if ((rc = scope_mark(r, scope, a, b)) <= 0)
        return rc < 0 ? trace_fail(TRACE_ENOMEM, "out of memory") : TRACE_OK;
    if (scope == SCOPE_PERMIT) { /* its issue, citations, status changes */
        MDB_val pk = {la, (void *)a}, pv;
        if (mdb_get(r->txn, r->l->dbi_permits, &pk, &pv) == 0 &&
            pv.mv_size == 8 && (rc = load_seq(r, be64_get(pv.mv_data))) != 0)
            return rc;
        return load_dups(r, r->l->dbi_pev, a, la, 1);
    }
    key[n++] = (uint8_t)tag;
    memcpy(key + n, a, la + 1);
    n += la + 1;
    if (b) {
        memcpy(key + n, b, lb + 1);
        n += lb + 1;
    }
    return load_dups(r, r->l->dbi_rcidx, key, n, 0);
}

/* The sale a receipt cites, by (from, ref), if it is in force. */
static int load_cited(struct run *r, const char *party, const char *id)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;

    if (!klen)
        return TRACE_OK;
    if (mdb_get(r->txn, r->l->dbi_eff, &k, &v) == 0 && v.mv_size == 8)
        return load_seq(r, be64_get(v.mv_data));
    if (mdb_get(r->txn, r->l->dbi_ids, &k, &v) == 0 && v.mv_size == 8)
        return load_seq(r, be64_get(v.mv_data));
    return TRACE_OK;
}

/* An application and every answer to it (the apps index, state.c). */
static int load_app(struct run *r, const char *party, const char *id)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    int rc;

    if (!klen) {
        r->partial = 0; /* too long to be indexed: judge everything */
        return TRACE_OK;
    }
    if ((rc = scope_mark(r, SCOPE_APP, party, id)) <= 0)
        return rc < 0 ? trace_fail(TRACE_ENOMEM, "out of memory") : TRACE_OK;
    if ((rc = load_cited(r, party, id)) != TRACE_OK)
        return rc;
    if (!r->l->dbi_apps) {
        r->partial = 0; /* no index in this process: judge everything */
        return TRACE_OK;
    }
    return load_dups(r, r->l->dbi_apps, key, klen, 1);
}

/* ------------------------------------------------------------------ */
/* Planning and loading a run                                           */

int inc_plan(struct run *r)
{
    MDB_val k = {strlen(STATE_KEY), STATE_KEY}, v;
    MDB_cursor *cur;
    uint8_t digest[TRACE_HASH_LEN];
    const uint8_t *p;
    int rc;

    r->partial = 0;
    if ((rc = mdb_cursor_open(r->txn, r->l->dbi_journal, &cur)))
        return trace_fail_mdb(rc, "journal");
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
        r->last_seq = be64_get(k.mv_data);
    mdb_cursor_close(cur);
    rules_digest(r, digest);
    k = (MDB_val){strlen(STATE_KEY), STATE_KEY};
    if (mdb_get(r->txn, r->l->dbi_meta, &k, &v) != 0 || v.mv_size < STATE_FIXED)
        return TRACE_OK; /* no state: a full run makes one */
    p = v.mv_data;
    r->plan_state = be64_get(p + 1) + 1; /* see inc_store() */
    if (p[0] != STATE_VERSION || memcmp(p + 17, digest, TRACE_HASH_LEN) != 0 ||
        be64_get(p + 1) > r->last_seq)
        return TRACE_OK;
    /* rcidx must be the one filed with this state (not emptied since) */
    MDB_val mk = {1, "\0"}, mv;
    if (mdb_get(r->txn, r->l->dbi_rcidx, &mk, &mv) != 0 || mv.mv_size != 8 ||
        memcmp(mv.mv_data, p + 1, 8) != 0)
        return TRACE_OK;
    r->since = be64_get(p + 1);
    r->prev_reopen = p + STATE_FIXED;
    r->prev_reopen_len = v.mv_size - STATE_FIXED;
    r->partial = 1;
    return TRACE_OK;
}

int inc_load(struct run *r)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t start[8];
    size_t n_new;
    int rc;

    if (!(r->tmp = arena_new(64u << 20)) ||
        !(r->loaded = strmap_new(sizeof(int))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (int i = 0; i < N_SCOPES; i++)
        if (!(r->scopes[i] = strmap_new(sizeof(int))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
    /* the new entries; a correction among them can change verdicts
     * outside every scope: judge everything */
    if ((rc = mdb_cursor_open(r->txn, r->l->dbi_journal, &cur)))
        return trace_fail_mdb(rc, "journal");
    be64_put(start, r->since + 1);
    k = (MDB_val){8, start};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq = be64_get(k.mv_data);
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;
        if (seq > r->last_seq)
            break;
        arena_reset(r->tmp);
        e = trace__v1__entry__unpack(arena_allocator(r->tmp), v.mv_size,
                                     v.mv_data);
        if (!e || !(ev = event_decode(r->tmp, e->event.data, e->event.len)))
            continue;
        if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY) {
            mdb_cursor_close(cur);
            r->partial = 0;
            return TRACE_OK;
        }
        if ((rc = load_seq(r, seq)) != TRACE_OK) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, "journal");
    n_new = r->n;
    r->n_new = n_new;
    /* the registration history */
    if ((rc = load_dups(r, r->l->dbi_rcidx, "g", 1, 0)) != TRACE_OK)
        return rc;
    /* the scopes of the new events */
    for (size_t i = 0; i < n_new && rc == TRACE_OK && r->partial; i++) {
        /* a copy: loading grows (moves) r->recs */
        const rec ev = r->recs[i], *e = &ev;
        if (e->lot)
            rc = load_lot(r, e->lot);
        for (size_t j = 0; j < e->n_inputs && rc == TRACE_OK; j++)
            rc = load_lot(r, e->inputs[j].lot);
        if (rc == TRACE_OK && e->permit)
            rc = load_keyed(r, SCOPE_PERMIT, 0, e->permit, NULL);
        if (rc == TRACE_OK && e->kind == TRACE__V1__EVENT__BODY_SALE_BODY &&
            e->tpermit)
            rc = load_keyed(r, SCOPE_PERMIT, 0, e->tpermit, NULL);
        if (rc == TRACE_OK && e->kind == TRACE__V1__EVENT__BODY_SALE_BODY &&
            e->to && e->substance)
            rc = load_keyed(r, SCOPE_ORDERS, 'o', e->to, e->substance);
        /* receipts that cited this event before it was recorded */
        if (rc == TRACE_OK)
            rc = load_keyed(r, SCOPE_CITED, 'r', e->party, e->id);
        if (rc == TRACE_OK && e->kind == TRACE__V1__EVENT__BODY_PARTY_BODY &&
            e->subject)
            rc = load_keyed(r, SCOPE_SUBJECT, 'u', e->subject, NULL);
        if (rc == TRACE_OK &&
            e->kind == TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY)
            rc = load_app(r, e->party, e->id);
        if (rc == TRACE_OK &&
            (e->kind == TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY ||
             e->kind == TRACE__V1__EVENT__BODY_PERMIT_BODY) &&
            e->app_party && e->app_id)
            rc = load_app(r, e->app_party, e->app_id);
        if (rc == TRACE_OK && e->kind == TRACE__V1__EVENT__BODY_DISPENSE_BODY) {
            if (e->patient)
                rc = load_keyed(r, SCOPE_PATIENT, 'p', e->patient, NULL);
            if (rc == TRACE_OK && e->rx)
                rc = load_keyed(r, SCOPE_RX, 'x', e->rx, NULL);
        }
    }
    /* permits issued or changed: their citations */
    for (size_t i = 0; i < n_new && rc == TRACE_OK && r->partial; i++)
        if (r->recs[i].kind == TRACE__V1__EVENT__BODY_PERMIT_BODY ||
            r->recs[i].kind == TRACE__V1__EVENT__BODY_PERMIT_STATUS_BODY)
            rc = r->recs[i].permit
                     ? load_keyed(r, SCOPE_PERMIT, 0, r->recs[i].permit, NULL)
                     : TRACE_OK;
    /* sales whose window was open at the previous run */
    for (size_t o = 0;
         o < r->prev_reopen_len && rc == TRACE_OK && r->partial;) {
        const char *item = (const char *)r->prev_reopen + o;
        size_t len = strnlen(item, r->prev_reopen_len - o);
        if (len == r->prev_reopen_len - o || len < 2)
            break; /* not terminated: damaged state, ignore the rest */
        if (item[0] == 'L')
            rc = load_lot(r, item + 1);
        else if (item[0] == 'P')
            rc = load_keyed(r, SCOPE_PERMIT, 0, item + 1, NULL);
        else if (item[0] == 'A' && strchr(item, '\x01')) {
            char app[KEY_MAX];
            snprintf(app, sizeof(app), "%s", item + 1);
            *strchr(app, '\x01') = '\0';
            rc = load_app(r, app, app + strlen(app) + 1);
        }
        o += len + 1;
    }
    /* the sale each receipt cites (the loop sees the ones it adds) */
    for (size_t i = 0; i < r->n && rc == TRACE_OK && r->partial; i++)
        if (r->recs[i].kind == TRACE__V1__EVENT__BODY_RECEIPT_BODY &&
            r->recs[i].from && r->recs[i].ref)
            rc = load_cited(r, r->recs[i].from, r->recs[i].ref);
    /* carriers (SPEC 12): a sale's custody chain is judged with every
     * event citing it, so for each sale naming a carrier, each sale a
     * receipt cites and each sale a custody event cites: the sale and
     * everything citing it (the loop sees what it adds; a copy of the
     * record, as loading moves r->recs) */
    for (size_t i = 0; i < r->n && rc == TRACE_OK && r->partial; i++) {
        const rec x = r->recs[i];
        if (x.kind == TRACE__V1__EVENT__BODY_SALE_BODY && x.carrier)
            rc = load_keyed(r, SCOPE_CITED, 'r', x.party, x.id);
        else if ((x.kind == TRACE__V1__EVENT__BODY_RECEIPT_BODY ||
                  x.kind == TRACE__V1__EVENT__BODY_PICKUP_BODY ||
                  x.kind == TRACE__V1__EVENT__BODY_HANDOVER_BODY ||
                  x.kind == TRACE__V1__EVENT__BODY_DELIVERY_BODY) &&
                 x.from && x.ref) {
            rc = load_cited(r, x.from, x.ref);
            if (rc == TRACE_OK)
                rc = load_keyed(r, SCOPE_CITED, 'r', x.from, x.ref);
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Storing the state with the alerts                                    */

/* Where index keys go: straight into rcidx (the few keys of an
 * incremental run), or collected, sorted and appended (a rebuild: LMDB
 * appends sorted keys several times faster than it inserts random ones). */
struct sink {
    MDB_txn *txn;
    MDB_dbi dbi;
    arena *a;       /* collecting: key bytes, each after a u16 length */
    uint8_t **keys; /* collecting */
    size_t n, cap;
};

static int put_idx(struct sink *sk, char tag, const char *a, const char *b,
                   uint64_t seq)
{
    uint8_t key[KEY_MAX];
    size_t n = 0, la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    MDB_val k, v = {0, ""};
    int rc;

    if (1 + la + 1 + lb + 1 + 8 > sizeof(key))
        return TRACE_OK; /* see load_keyed() */
    key[n++] = (uint8_t)tag;
    if (a) {
        memcpy(key + n, a, la + 1);
        n += la + 1;
    }
    if (b) {
        memcpy(key + n, b, lb + 1);
        n += lb + 1;
    }
    be64_put(key + n, seq);
    n += 8;
    if (sk->a) {
        uint8_t *p = arena_alloc(sk->a, n + 2);
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        p[0] = (uint8_t)(n >> 8);
        p[1] = (uint8_t)n;
        memcpy(p + 2, key, n);
        if (sk->n == sk->cap) {
            size_t nc = sk->cap ? sk->cap * 2 : 4096;
            uint8_t **q = realloc(sk->keys, nc * sizeof(*q));
            if (!q)
                return trace_fail(TRACE_ENOMEM, "out of memory");
            sk->keys = q;
            sk->cap = nc;
        }
        sk->keys[sk->n++] = p;
        return TRACE_OK;
    }
    k = (MDB_val){n, key};
    rc = mdb_put(sk->txn, sk->dbi, &k, &v, 0);
    return rc ? trace_fail_mdb(rc, "rcidx") : TRACE_OK;
}

/* LMDB's default key order: bytes, then the shorter first. */
static int cmp_key(const void *x, const void *y)
{
    const uint8_t *a = *(uint8_t *const *)x, *b = *(uint8_t *const *)y;
    size_t la = (size_t)a[0] << 8 | a[1], lb = (size_t)b[0] << 8 | b[1];
    int c = memcmp(a + 2, b + 2, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int sink_flush(struct sink *sk)
{
    MDB_val k, v = {0, ""};
    int rc = 0;

    if (sk->n)
        qsort(sk->keys, sk->n, sizeof(*sk->keys), cmp_key);
    for (size_t i = 0; i < sk->n && rc == 0; i++) {
        if (i && cmp_key(&sk->keys[i - 1], &sk->keys[i]) == 0)
            continue;
        k = (MDB_val){(size_t)sk->keys[i][0] << 8 | sk->keys[i][1],
                      sk->keys[i] + 2};
        rc = mdb_put(sk->txn, sk->dbi, &k, &v, MDB_APPEND);
    }
    return rc ? trace_fail_mdb(rc, "rcidx") : TRACE_OK;
}

static int index_rec(struct sink *sk, const rec *e)
{
    int rc = TRACE_OK;
    switch (e->kind) {
    case TRACE__V1__EVENT__BODY_SALE_BODY:
        if (e->to && e->substance)
            rc = put_idx(sk, 'o', e->to, e->substance, e->seq);
        if (rc == TRACE_OK && e->to)
            rc = put_idx(sk, 'u', e->to, NULL, e->seq);
        break;
    case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        if (e->from)
            rc = put_idx(sk, 'u', e->from, NULL, e->seq);
        if (rc == TRACE_OK && e->from && e->ref)
            rc = put_idx(sk, 'r', e->from, e->ref, e->seq);
        break;
    case TRACE__V1__EVENT__BODY_PICKUP_BODY:
    case TRACE__V1__EVENT__BODY_HANDOVER_BODY:
    case TRACE__V1__EVENT__BODY_DELIVERY_BODY:
        if (e->from && e->ref)
            rc = put_idx(sk, 'r', e->from, e->ref, e->seq);
        break;
    case TRACE__V1__EVENT__BODY_DESTROY_BODY:
        if (e->witness)
            rc = put_idx(sk, 'u', e->witness, NULL, e->seq);
        break;
    case TRACE__V1__EVENT__BODY_DISPENSE_BODY:
        if (e->patient)
            rc = put_idx(sk, 'p', e->patient, NULL, e->seq);
        if (rc == TRACE_OK && e->rx)
            rc = put_idx(sk, 'x', e->rx, NULL, e->seq);
        break;
    case TRACE__V1__EVENT__BODY_PARTY_BODY:
        rc = put_idx(sk, 'g', NULL, NULL, e->seq);
        break;
    default:
        break;
    }
    return rc;
}

int inc_index_rec(MDB_txn *txn, MDB_dbi dbi, const rec *e)
{
    struct sink sk = {txn, dbi, NULL, NULL, 0, 0};
    return index_rec(&sk, e);
}

/* The state's list of items to load again: NUL-terminated strings. */
static int item_size(const char *item, void *val, void *ctx)
{
    (void)val;
    *(size_t *)ctx += strlen(item) + 1;
    return 0;
}

struct item_copy {
    uint8_t *buf;
    size_t o;
};

static int item_copy(const char *item, void *val, void *ctx)
{
    struct item_copy *c = ctx;
    size_t n = strlen(item) + 1;
    (void)val;
    memcpy(c->buf + c->o, item, n);
    c->o += n;
    return 0;
}

int inc_store(struct run *r, MDB_txn *txn)
{
    uint8_t *buf;
    size_t len = STATE_FIXED;
    MDB_val k = {strlen(STATE_KEY), STATE_KEY}, v;
    int rc = TRACE_OK;

    /* Another run may have stored its state since this one read it (a
     * tracectl beside traced): then that state and rcidx stand, and this
     * run stores only its alerts. */
    uint64_t now_state = 0;
    if (mdb_get(txn, r->l->dbi_meta, &k, &v) == 0 && v.mv_size >= STATE_FIXED)
        now_state = be64_get((const uint8_t *)v.mv_data + 1) + 1;
    if (now_state != r->plan_state)
        return TRACE_OK;
    /* rcidx: rebuilt after a full run, else the new events added */
    struct sink sk = {txn, r->l->dbi_rcidx, NULL, NULL, 0, 0};
    if (!r->partial) {
        if ((rc = mdb_drop(txn, r->l->dbi_rcidx, 0)))
            return trace_fail_mdb(rc, "rcidx");
        if (!(sk.a = arena_new(0)))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        arena_set_block(sk.a, 4u << 20);
    }
    for (size_t i = 0; i < r->n && rc == TRACE_OK; i++)
        if (!r->partial || r->recs[i].seq > r->since)
            rc = index_rec(&sk, &r->recs[i]);
    if (rc == TRACE_OK && sk.a)
        rc = sink_flush(&sk);
    arena_free(sk.a);
    free(sk.keys);
    if (rc != TRACE_OK)
        return rc;
    if (r->reopen)
        strmap_each(r->reopen, item_size, &len);
    if (!(buf = malloc(len)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    buf[0] = STATE_VERSION;
    be64_put(buf + 1, r->last_seq);
    /* the same position inside rcidx, under a key no scope reads */
    k = (MDB_val){1, "\0"};
    v = (MDB_val){8, buf + 1};
    if ((rc = mdb_put(txn, r->l->dbi_rcidx, &k, &v, 0))) {
        free(buf);
        return trace_fail_mdb(rc, "rcidx");
    }
    k = (MDB_val){strlen(STATE_KEY), STATE_KEY};
    be64_put(buf + 9, (uint64_t)r->as_of);
    rules_digest(r, buf + 17);
    struct item_copy ic = {buf, STATE_FIXED};
    if (r->reopen)
        strmap_each(r->reopen, item_copy, &ic);
    v = (MDB_val){len, buf};
    rc = mdb_put(txn, r->l->dbi_meta, &k, &v, 0);
    free(buf);
    return rc ? trace_fail_mdb(rc, "reconcile state") : TRACE_OK;
}

/* Remembers what the next incremental run must load again whatever is
 * appended: the lot of a sale still inside its receipt window ('L'), a
 * permit with a citation, status change or issue dated after the run's
 * as-of time, which it did not count yet ('P'). */
int inc_keep_open(struct run *r, char tag, const char *key)
{
    char item[KEY_MAX];
    if (!r->incremental || !key)
        return TRACE_OK;
    if ((size_t)snprintf(item, sizeof(item), "%c%s", tag, key) >= sizeof(item))
        return TRACE_OK; /* ids are far shorter */
    if (!r->reopen && !(r->reopen = strmap_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (!strmap_intern(r->reopen, item))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    return TRACE_OK;
}
