/* SPDX-License-Identifier: Apache-2.0 */
/*
 * append.c - the append transaction: the writer, its window, appends
 * with the key folder and streaming imports (batches: batch.c; appends
 * signed elsewhere and group commits: commit.c).
 *
 * One append is one LMDB write transaction.  Events are processed in
 * batch order; for each one the writer
 *
 *   1. skips it if the party already recorded the same id with the same
 *      bytes (idempotent re-submission), and refuses it if the bytes
 *      differ;
 *   2. checks the recorder: registered, a regulator for regulator-only
 *      types, and its key in the key folder registered to it (or, when
 *      provisioning, registers a new key with a synthesized `party` event
 *      signed by the root regulator);
 *   3. applies what the event changes in the indexes (party states and
 *      keys for `party` events);
 *   4. adds it to the window, in its party's signature group.
 *
 * The window holds checked and indexed events not yet written (a copy of
 * their bytes, WINDOW_ENTRIES or WINDOW_BYTES at most).  When it is full,
 * at the end of an append, or when a party's key changes, each party's
 * group is signed and the entries are written in order, each party's
 * last one carrying its signature (entry version 2, see ledger.h).  Look-
 * ups of events of the window (a duplicate id, a correction naming one)
 * go to the window, not the journal.  Any failure aborts the transaction,
 * so nothing of a rejected batch is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "writer.h"

size_t writer_window_entries = WINDOW_ENTRIES;

/* Reading indexes ---------------------------------------------------- */

int party_state_get(MDB_txn *txn, const trace_ledger *l, arena *a,
                    const char *party, Trace__V1__PartyState **out)
{
    MDB_val k = {strlen(party), (void *)party}, v;
    int rc = mdb_get(txn, l->dbi_parties, &k, &v);

    if (rc == MDB_NOTFOUND)
        return trace_fail(TRACE_ENOTFOUND, "party %s is not registered", party);
    if (rc)
        return trace_fail_mdb(rc, "parties");
    *out = trace__v1__party_state__unpack(arena_allocator(a), v.mv_size,
                                          v.mv_data);
    if (!*out)
        return trace_fail(TRACE_EVERIFY, "state of party %s is damaged", party);
    return TRACE_OK;
}

/* The writer whose checks at entry run on this thread (check_entry):
 * its window's events, indexed but not yet in the journal, are read as
 * entries of its transaction. */
static __thread struct writer *checking;

static int window_by_seq(void *ctx, uint64_t seq, const uint8_t **bytes,
                         size_t *len);

int entry_get(MDB_txn *txn, const trace_ledger *l, arena *a, uint64_t seq,
              Trace__V1__Entry **out)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    const uint8_t *bytes;
    size_t len;
    int rc;

    be64_put(kb, seq);
    rc = mdb_get(txn, l->dbi_journal, &k, &v);
    if (rc == MDB_NOTFOUND && checking && checking->txn == txn &&
        window_by_seq(checking, seq, &bytes, &len) == TRACE_OK) {
        /* only the event: what queries read of an entry */
        if (!(*out = arena_alloc(a, sizeof(**out))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        trace__v1__entry__init(*out);
        (*out)->seq = seq;
        (*out)->event.data = (uint8_t *)bytes;
        (*out)->event.len = len;
        return TRACE_OK;
    }
    if (rc)
        return trace_fail_mdb(rc, "journal");
    *out = trace__v1__entry__unpack(arena_allocator(a), v.mv_size, v.mv_data);
    if (!*out)
        return trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                          (unsigned long long)seq);
    return TRACE_OK;
}

int entry_raw(MDB_txn *txn, const trace_ledger *l, uint64_t seq,
              const uint8_t **bytes, size_t *len)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    be64_put(kb, seq);
    rc = mdb_get(txn, l->dbi_journal, &k, &v);
    if (rc == MDB_NOTFOUND && checking && checking->txn == txn &&
        window_by_seq(checking, seq, bytes, len) == TRACE_OK)
        return TRACE_OK;
    if (rc)
        return trace_fail_mdb(rc, "journal");
    *bytes = v.mv_data;
    *len = v.mv_size;
    return TRACE_OK;
}

/* The writer ------------------------------------------------------- */

int writer_begin(struct writer *w, trace_ledger *l, trace_append_result *res)
{
    int rc;

    memset(w, 0, sizeof(*w));
    memset(res, 0, sizeof(*res));
    w->l = l;
    w->res = res;
    w->now = time_now_us();
    w->tmp = arena_new(0);
    w->keep = arena_new(0);
    w->gdigest = sha256_stream_new();
    w->tails = state_tails_new();
    w->win = arena_new(0);
    w->head_ix = strmap_new(sizeof(size_t));
    w->gindex = strmap_new(sizeof(size_t));
    w->idindex = strmap_new(sizeof(size_t));
    if (!w->tmp || !w->keep || !w->gdigest || !w->tails || !w->win ||
        !w->head_ix || !w->gindex || !w->idindex)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, 0, &w->txn))) {
        w->txn = NULL;
        return trace_fail_mdb(rc, "begin");
    }
    if ((rc = ledger_head_get(w->txn, l, &w->size, w->head)) != TRACE_OK)
        return rc;
    return tree_load(w->txn, l, w->size, &w->tree);
}

void writer_end(struct writer *w)
{
    /* before the abort: the next write transaction has the same handle */
    if (w->bulk)
        bulk_end(w->l);
    w->bulk = 0;
    if (w->txn)
        ledger_txn_abort(w->l, w->txn);
    for (size_t i = 0; i < w->n_heads; i++)
        free(w->heads[i].party);
    free(w->heads);
    free(w->buf);
    arena_free(w->tmp);
    arena_free(w->keep);
    sha256_stream_free(w->gdigest);
    strmap_free(w->tails);
    arena_free(w->win);
    strmap_free(w->head_ix);
    free(w->went);
    free(w->groups);
    strmap_free(w->gindex);
    strmap_free(w->idindex);
}

static int head_for(struct writer *w, const char *party, struct phead **out)
{
    MDB_val k = {strlen(party), (void *)party}, v;
    struct phead *h;
    int rc;

    size_t *ix = strmap_get(w->head_ix, party, 1);

    if (!ix)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (*ix) {
        *out = &w->heads[*ix - 1];
        return TRACE_OK;
    }
    if ((rc = room_for_one(&w->heads, &w->cap_heads, w->n_heads,
                           sizeof(*w->heads), 16)) != TRACE_OK)
        return rc;
    h = &w->heads[w->n_heads];
    memset(h, 0, sizeof(*h));
    rc = mdb_get(w->txn, w->l->dbi_heads, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 8 + TRACE_HASH_LEN)
            return trace_fail(TRACE_EVERIFY, "chain head of %s is damaged",
                              party);
        h->pseq = be64_get(v.mv_data);
        memcpy(h->hash, (uint8_t *)v.mv_data + 8, TRACE_HASH_LEN);
    } else if (rc != MDB_NOTFOUND) {
        return trace_fail_mdb(rc, "heads");
    }
    if (!(h->party = strdup(party)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *ix = ++w->n_heads;
    *out = h;
    return TRACE_OK;
}

static int ensure_buf(struct writer *w, size_t n)
{
    if (n <= w->bufcap)
        return TRACE_OK;
    size_t cap = n < 4096 ? 4096 : n * 2;
    uint8_t *p = realloc(w->buf, cap);
    if (!p)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    w->buf = p;
    w->bufcap = cap;
    return TRACE_OK;
}

static int write_entry(struct writer *w, const struct event_ref *p,
                       const uint8_t *sig, uint32_t count)
{
    Trace__V1__Entry e = TRACE__V1__ENTRY__INIT;
    uint8_t seqb[8], key[TRACE_MAX_ID + 80], leaf[TRACE_HASH_LEN];
    struct phead *h = NULL;
    MDB_val k, v;
    size_t len, klen;
    int rc, held;

    if ((rc = head_for(w, p->party, &h)) != TRACE_OK)
        return rc;
    e.version = 2; /* its signature group may interleave (ledger.h) */
    e.seq = w->size + 1;
    e.party = (char *)p->party;
    e.party_seq = h->pseq + 1;
    e.prev_hash.data = w->head;
    e.prev_hash.len = TRACE_HASH_LEN;
    e.prev_party_hash.data = h->hash;
    e.prev_party_hash.len = TRACE_HASH_LEN;
    e.recorded_us = w->now;
    e.key_id.data = (uint8_t *)p->key_id;
    e.key_id.len = TRACE_KEY_ID_LEN;
    e.event.data = (uint8_t *)p->bytes;
    e.event.len = p->len;
    if (w->historic) {
        e.has_historic = 1;
        e.historic = 1;
    }
    if (sig) {
        e.has_sig_count = 1;
        e.sig_count = count;
        e.has_sig = 1;
        e.sig.data = (uint8_t *)sig;
        e.sig.len = TRACE_SIG_LEN;
    }
    len = trace__v1__entry__get_packed_size(&e);
    if ((rc = ensure_buf(w, len)) != TRACE_OK)
        return rc;
    trace__v1__entry__pack(&e, w->buf);
    leaf_hash(leaf, w->buf, len);

    be64_put(seqb, e.seq);
    k = (MDB_val){8, seqb};
    v = (MDB_val){len, w->buf};
    if ((rc = mdb_put(w->txn, w->l->dbi_journal, &k, &v, MDB_APPEND)))
        return trace_fail_mdb(rc, "journal");

    klen = compose_key(key, sizeof(key), p->party, p->id, strlen(p->id));
    k = (MDB_val){klen, key};
    v = (MDB_val){8, seqb};
    if ((rc = bulk_put(w->l, w->txn, w->l->dbi_ids, &k, &v, &held)))
        return rc;
    if (!held && (rc = mdb_put(w->txn, w->l->dbi_ids, &k, &v, MDB_NOOVERWRITE)))
        return trace_fail_mdb(rc, "ids");

    /* the party's entries, in order: appended at the end of its list */
    k = (MDB_val){strlen(p->party), (void *)p->party};
    if ((rc = mdb_put(w->txn, w->l->dbi_pchain, &k, &v, MDB_APPENDDUP)) ==
        MDB_KEYEXIST)
        rc = mdb_put(w->txn, w->l->dbi_pchain, &k, &v, 0);
    if (rc)
        return trace_fail_mdb(rc, "pchain");

    if ((rc = tree_add(w->txn, w->l, &w->tree, leaf)) != TRACE_OK)
        return rc;
    w->size = e.seq;
    memcpy(w->head, leaf, TRACE_HASH_LEN);
    h->pseq = e.party_seq;
    memcpy(h->hash, leaf, TRACE_HASH_LEN);
    if (!w->res->first_seq)
        w->res->first_seq = e.seq;
    w->res->last_seq = e.seq;
    w->res->appended++;
    return TRACE_OK;
}

/* Forgets the window (after it was written, or when a child transaction
 * that filled it is aborted). */
int window_reset(struct writer *w)
{
    arena_reset(w->win);
    w->n_went = 0;
    w->n_groups = 0;
    w->win_bytes = 0;
    strmap_free(w->gindex);
    strmap_free(w->idindex);
    w->gindex = strmap_new(sizeof(size_t));
    w->idindex = strmap_new(sizeof(size_t));
    if (!w->gindex || !w->idindex)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    return TRACE_OK;
}

/* Signs each party's group of the window and writes its entries in
 * order, the last of each group carrying the signature. */
int window_flush(struct writer *w)
{
    uint8_t digest[TRACE_HASH_LEN];
    int rc;

    for (size_t gi = 0; gi < w->n_groups; gi++) {
        struct wgroup *g = &w->groups[gi];
        group_digest_begin(w->gdigest, g->party, g->kid);
        for (size_t i = g->first + 1; i; i = w->went[i - 1].next)
            sha256_stream_update(w->gdigest, w->went[i - 1].hash,
                                 TRACE_HASH_LEN);
        group_digest_end(w->gdigest, g->count, digest);
        if (g->presig)
            memcpy(g->sig, g->presig, TRACE_SIG_LEN);
        else if ((rc = trace_key_sign(g->key, digest, sizeof(digest),
                                      g->sig)) != TRACE_OK)
            return rc;
    }
    for (size_t i = 0; i < w->n_went; i++) {
        const struct went *e = &w->went[i];
        const struct wgroup *g = &w->groups[e->group];
        if ((rc = write_entry(w, &e->p, g->last == i ? g->sig : NULL,
                              g->count)) != TRACE_OK)
            return rc;
    }
    return window_reset(w);
}

/* The window's entry for (party, id), or NULL. */
static const struct went *window_find(struct writer *w, const char *party,
                                      const char *id)
{
    char key[TRACE_MAX_ID + 80];
    size_t *ix;

    if (!w->n_went ||
        (size_t)snprintf(key, sizeof(key), "%s\n%s", party, id) >= sizeof(key))
        return NULL;
    ix = strmap_get(w->idindex, key, 0);
    return ix && *ix ? &w->went[*ix - 1] : NULL;
}

static int window_by_id(void *ctx, const char *party, const char *id,
                        uint64_t *seq, const uint8_t **bytes, size_t *len)
{
    struct writer *w = ctx;
    const struct went *e = window_find(w, party, id);
    if (!e)
        return TRACE_ENOTFOUND;
    *seq = w->size + (uint64_t)(e - w->went) + 1;
    *bytes = e->p.bytes;
    *len = e->p.len;
    return TRACE_OK;
}

static int window_by_seq(void *ctx, uint64_t seq, const uint8_t **bytes,
                         size_t *len)
{
    struct writer *w = ctx;
    if (seq <= w->size || seq - w->size > w->n_went)
        return TRACE_ENOTFOUND;
    *bytes = w->went[seq - w->size - 1].p.bytes;
    *len = w->went[seq - w->size - 1].p.len;
    return TRACE_OK;
}

/* Adds an event (already checked and indexed) to the window, in its
 * party's group; `presig` is that group's signature when it was signed
 * elsewhere. */
static int add_event(struct writer *w, const char *party, const char *id,
                     const trace_key *key, const uint8_t *bytes, size_t len)
{
    const uint8_t *kid = key ? trace_key_id(key) : w->presig_key_id;
    char idkey[TRACE_MAX_ID + 80];
    struct wgroup *g = NULL;
    struct went *e;
    size_t *gx, *ix;
    int rc;

    if ((size_t)snprintf(idkey, sizeof(idkey), "%s\n%s", party, id) >=
        sizeof(idkey))
        return trace_fail(TRACE_EINVAL, "id too long");
    if (w->n_went >= writer_window_entries || w->win_bytes >= WINDOW_BYTES) {
        if (w->presig)
            return trace_fail(TRACE_EINVAL,
                              "a signed request holds at most %zu events",
                              writer_window_entries);
        if ((rc = window_flush(w)) != TRACE_OK)
            return rc;
    }
    gx = strmap_get(w->gindex, party, 0);
    if (gx && *gx) {
        g = &w->groups[*gx - 1];
        if (memcmp(g->kid, kid, TRACE_KEY_ID_LEN) != 0 ||
            g->count == UINT32_MAX || g->presig != w->presig) {
            /* another key (or another signed group) of the same party:
             * its group so far is written first */
            if (w->presig && g->presig)
                return trace_fail(TRACE_EINVAL,
                                  "two signed groups of %s in one request",
                                  party);
            if ((rc = window_flush(w)) != TRACE_OK)
                return rc;
            g = NULL;
        }
    }
    if ((rc = room_for_one(&w->went, &w->cap_went, w->n_went, sizeof(*w->went),
                           1024)) != TRACE_OK)
        return rc;
    if (!g) {
        if ((rc = room_for_one(&w->groups, &w->cap_groups, w->n_groups,
                               sizeof(*w->groups), 64)) != TRACE_OK)
            return rc;
        g = &w->groups[w->n_groups];
        memset(g, 0, sizeof(*g));
        if (!(g->party = arena_strdup(w->win, party, strlen(party))) ||
            !(g->kid = arena_alloc(w->win, TRACE_KEY_ID_LEN)) ||
            !(gx = strmap_get(w->gindex, party, 1)))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        g->key = key;
        memcpy(g->kid, kid, TRACE_KEY_ID_LEN);
        g->presig = w->presig;
        g->first = w->n_went;
        *gx = ++w->n_groups;
    } else {
        w->went[g->last].next = w->n_went + 1;
    }
    e = &w->went[w->n_went];
    memset(e, 0, sizeof(*e));
    e->p.party = g->party;
    e->p.key_id = g->kid;
    e->p.len = len;
    if (!(e->p.id = arena_strdup(w->win, id, strlen(id))) ||
        !(e->p.bytes = arena_alloc(w->win, len ? len : 1)) ||
        !(ix = strmap_get(w->idindex, idkey, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy((uint8_t *)e->p.bytes, bytes, len);
    sha256(e->hash, bytes, len);
    e->group = (size_t)(g - w->groups);
    *ix = w->n_went + 1;
    g->last = w->n_went;
    g->count++;
    w->n_went++;
    w->win_bytes += len + 64;
    return TRACE_OK;
}

/* Looks up (party, id): 0 if new, 1 if the same bytes are recorded,
 * TRACE_EEXIST if different bytes are. */
static int check_id(struct writer *w, const char *party, const char *id,
                    const uint8_t *bytes, size_t len)
{
    uint8_t key[TRACE_MAX_ID + 80];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    Trace__V1__Entry *e;
    int rc;

    const struct went *pe = window_find(w, party, id);

    if (pe) {
        if (pe->p.len == len && memcmp(pe->p.bytes, bytes, len) == 0)
            return 1;
        goto differs;
    }
    rc = bulk_find_id(w->l, w->txn, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return trace_fail_mdb(rc, "ids");
    if ((rc = entry_get(w->txn, w->l, w->tmp, be64_get(v.mv_data), &e)))
        return rc;
    if (e->event.len == len && memcmp(e->event.data, bytes, len) == 0)
        return 1;
differs:
    return trace_fail(TRACE_EEXIST,
                      "id \"%s\" was already recorded by %s with different "
                      "content",
                      id, party);
}

static int has_key(const Trace__V1__PartyState *st, const trace_key *key)
{
    for (size_t i = 0; i < st->n_keys; i++)
        if (st->keys[i].len == TRACE_PUBKEY_LEN &&
            memcmp(st->keys[i].data, trace_key_public(key), TRACE_PUBKEY_LEN) ==
                0)
            return 1;
    return 0;
}

int party_is_regulator(const trace_ledger *l, const Trace__V1__PartyState *st)
{
    const Trace__V1__PartyBody *b = st->body;

    if (strcmp(b->kind, "regulator") != 0)
        return 0;
    if (b->status && strcmp(b->status, "suspended") == 0)
        return 0;
    return strcmp(b->subject, l->regulator) == 0 ||
           (st->registered_by && strcmp(st->registered_by, l->regulator) == 0);
}

/* Stores the new state of the party a `party` event describes (the
 * event will be the entry after the window's). */
static int apply_party(struct writer *w, const Trace__V1__PartyBody *body,
                       const char *recorder)
{
    int rc = party_apply(w->txn, w->l, w->tmp, body, recorder,
                         w->size + w->n_went + 1);
    if (rc == TRACE_OK)
        w->auth_party[0] = '\0'; /* states changed: check recorders again */
    return rc;
}

int party_apply(MDB_txn *txn, const trace_ledger *l, arena *tmp,
                const Trace__V1__PartyBody *body, const char *recorder,
                uint64_t seq)
{
    Trace__V1__PartyState *old = NULL, st = TRACE__V1__PARTY_STATE__INIT;
    Trace__V1__PartyBody b = *body;
    ProtobufCBinaryData *keys, *revoked;
    MDB_val k, v;
    size_t len;
    int rc, found_revoke = 0;
    int is_root = strcmp(body->subject, l->regulator) == 0;

    rc = party_state_get(txn, l, tmp, body->subject, &old);
    if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
        return rc;
    if (is_root && (strcmp(body->kind, "regulator") != 0 ||
                    (body->status && strcmp(body->status, "active") != 0)))
        return trace_fail(TRACE_EINVAL,
                          "the root regulator %s must stay an active "
                          "regulator",
                          body->subject);
    if (body->n_scopes && strcmp(body->kind, "regulator") != 0)
        return trace_fail(TRACE_EINVAL,
                          "scopes: only a regulator's departments have "
                          "scopes; %s is a %s",
                          body->subject, body->kind);
    if (body->n_scopes && is_root)
        return trace_fail(TRACE_EINVAL,
                          "scopes: the root regulator %s sees everything and "
                          "takes no scopes",
                          body->subject);
    for (size_t i = 0; i < body->n_scopes; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(body->scopes[i], body->scopes[j]) == 0)
                return trace_fail(TRACE_EINVAL, "scopes: %s is named twice",
                                  body->scopes[i]);
    keys = arena_alloc(tmp, ((old ? old->n_keys : 0) + 1) * sizeof(*keys));
    revoked =
        arena_alloc(tmp, ((old ? old->n_revoked : 0) + 1) * sizeof(*revoked));
    if (!keys || !revoked)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; old && i < old->n_revoked; i++) {
        revoked[st.n_revoked++] = old->revoked[i];
        if (body->has_pubkey && old->revoked[i].len == TRACE_PUBKEY_LEN &&
            memcmp(old->revoked[i].data, body->pubkey.data, TRACE_PUBKEY_LEN) ==
                0)
            return trace_fail(TRACE_EINVAL,
                              "pubkey was revoked from %s and "
                              "cannot be registered again",
                              body->subject);
    }
    for (size_t i = 0; old && i < old->n_keys; i++) {
        if (body->has_revoke && memcmp(old->keys[i].data, body->revoke.data,
                                       TRACE_PUBKEY_LEN) == 0) {
            /* withdrawn: off the party's keys and the key index, so
             * nothing signed with it is accepted from now on */
            uint8_t kid[TRACE_KEY_ID_LEN];
            trace_pubkey_id(kid, body->revoke.data);
            k = (MDB_val){TRACE_KEY_ID_LEN, kid};
            if ((rc = mdb_del(txn, l->dbi_keys, &k, NULL)) &&
                rc != MDB_NOTFOUND)
                return trace_fail_mdb(rc, "keys");
            revoked[st.n_revoked++] = body->revoke;
            found_revoke = 1;
            continue;
        }
        keys[st.n_keys++] = old->keys[i];
    }
    if (body->has_revoke && !found_revoke)
        return trace_fail(TRACE_EINVAL, "revoke: not a registered key of %s",
                          body->subject);
    if (body->has_revoke && body->has_pubkey &&
        memcmp(body->revoke.data, body->pubkey.data, TRACE_PUBKEY_LEN) == 0)
        return trace_fail(TRACE_EINVAL, "pubkey and revoke name the same key");
    if (body->has_pubkey) {
        uint8_t kid[TRACE_KEY_ID_LEN], val[80];
        size_t slen = strlen(body->subject);
        int known = 0;
        trace_pubkey_id(kid, body->pubkey.data);
        for (size_t i = 0; i < st.n_keys; i++)
            known |=
                memcmp(keys[i].data, body->pubkey.data, TRACE_PUBKEY_LEN) == 0;
        memcpy(val, body->subject, slen + 1);
        memcpy(val + slen + 1, body->pubkey.data, TRACE_PUBKEY_LEN);
        k = (MDB_val){TRACE_KEY_ID_LEN, kid};
        v = (MDB_val){slen + 1 + TRACE_PUBKEY_LEN, val};
        rc = mdb_put(txn, l->dbi_keys, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST && !(v.mv_size == slen + 1 + TRACE_PUBKEY_LEN &&
                                    memcmp(v.mv_data, val, v.mv_size) == 0))
            return trace_fail(TRACE_EINVAL,
                              "pubkey is already registered to another "
                              "party");
        if (rc && rc != MDB_KEYEXIST)
            return trace_fail_mdb(rc, "keys");
        if (!known)
            keys[st.n_keys++] = body->pubkey;
    }
    b.has_pubkey = 0;
    b.has_revoke = 0;
    st.body = &b;
    st.keys = keys;
    st.revoked = revoked;
    st.registered_by =
        old && old->registered_by ? old->registered_by : (char *)recorder;
    st.has_seq = 1;
    st.seq = seq;
    len = trace__v1__party_state__get_packed_size(&st);
    uint8_t *buf = arena_alloc(tmp, len);
    if (!buf)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    trace__v1__party_state__pack(&st, buf);
    k = (MDB_val){strlen(body->subject), body->subject};
    v = (MDB_val){len, buf};
    if ((rc = mdb_put(txn, l->dbi_parties, &k, &v, 0)))
        return trace_fail_mdb(rc, "parties");
    return TRACE_OK;
}

/* Registers a new key for `party` with a `party` event signed by the root
 * regulator, placed just before the party's first event. */
static int provision(struct writer *w, trace_keyring *ring,
                     const Trace__V1__PartyState *st, const trace_key **key)
{
    const trace_key *rk = NULL;
    Trace__V1__Event ev = TRACE__V1__EVENT__INIT;
    Trace__V1__Time at = TRACE__V1__TIME__INIT;
    Trace__V1__PartyBody body = *st->body;
    char id[128], hex[2 * TRACE_KEY_ID_LEN + 1];
    const char *party = st->body->subject;
    uint8_t *bytes;
    size_t len;
    int rc;

    if (trace_keyring_get(ring, w->l->regulator, &rk) != TRACE_OK)
        return trace_fail(TRACE_EPERM,
                          "cannot provision a key for %s: the root regulator "
                          "key %s.key is not in %s",
                          party, w->l->regulator, trace_keyring_dir(ring));
    if (!*key && (rc = trace_keyring_generate(ring, party, key)) != TRACE_OK)
        return rc;
    hex_encode(hex, trace_key_id(*key), TRACE_KEY_ID_LEN);
    snprintf(id, sizeof(id), "key:%s:%s", party, hex);
    body.has_pubkey = 1;
    body.pubkey.data = (uint8_t *)trace_key_public(*key);
    body.pubkey.len = TRACE_PUBKEY_LEN;
    at.us = w->now;
    ev.type = "party";
    ev.id = id;
    ev.party = w->l->regulator;
    ev.at = &at;
    ev.body_case = TRACE__V1__EVENT__BODY_PARTY_BODY;
    ev.party_body = &body;
    len = trace__v1__event__get_packed_size(&ev);
    if (!(bytes = arena_alloc(w->keep, len)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    trace__v1__event__pack(&ev, bytes);
    const char *kid = arena_strdup(w->keep, id, strlen(id));
    if (!kid)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = check_id(w, w->l->regulator, kid, bytes, len)) < 0)
        return rc;
    if ((rc = apply_party(w, &body, w->l->regulator)) != TRACE_OK)
        return rc;
    w->res->provisioned++;
    return add_event(w, w->l->regulator, kid, rk, bytes, len);
}

/* TRACE_APPEND_HISTORIC marks migrated records, which LATE_REPORT spares:
 * only a regulator may set it.  Acting as `as`, that party must be a
 * regulator; acting with the key folder alone (as NULL), the folder must
 * hold a registered key of the root regulator. */
int check_historic(struct writer *w, trace_keyring *ring, const char *as,
                   unsigned flags)
{
    const char *who = as ? as : w->l->regulator;
    Trace__V1__PartyState *st;
    const trace_key *key = NULL;
    int rc;

    if (!(flags & TRACE_APPEND_HISTORIC))
        return TRACE_OK;
    rc = party_state_get(w->txn, w->l, w->tmp, who, &st);
    if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
        return rc;
    if (rc == TRACE_OK && party_is_regulator(w->l, st)) {
        if (as)
            return TRACE_OK;
        rc = ring ? trace_keyring_get(ring, who, &key) : TRACE_ENOTFOUND;
        if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
            return rc;
        if (key && has_key(st, key))
            return TRACE_OK;
    }
    return trace_fail(TRACE_EPERM,
                      "only a regulator may mark events as historic "
                      "(migrated records): %s",
                      as ? "the acting party is not one"
                         : "the key folder has no key of the root regulator");
}

/* Checks the recorder of `ev` and returns the key to sign with. */
static int check_recorder(struct writer *w, const Trace__V1__Event *ev,
                          int regulator_only, trace_keyring *ring,
                          unsigned flags, const trace_key **out)
{
    Trace__V1__PartyState *st;
    const trace_key *key;
    int rc;

    if (w->auth_party[0] && strcmp(w->auth_party, ev->party) == 0 &&
        (!regulator_only || w->auth_regulator)) {
        *out = w->auth_key;
        return TRACE_OK;
    }
    rc = party_state_get(w->txn, w->l, w->tmp, ev->party, &st);
    if (rc == TRACE_ENOTFOUND)
        return trace_fail(TRACE_EPERM,
                          "%s is not a registered party (a regulator "
                          "registers it with a `party` event first)",
                          ev->party);
    if (rc != TRACE_OK)
        return rc;
    if (regulator_only && !party_is_regulator(w->l, st))
        return trace_fail(TRACE_EPERM,
                          "only a regulator may record `%s` events; %s is "
                          "a %s",
                          ev->type, ev->party, st->body->kind);
    if (w->presig) {
        /* the batch's signature was checked against a key of this party */
        *out = NULL;
        snprintf(w->auth_party, sizeof(w->auth_party), "%s", ev->party);
        w->auth_key = NULL;
        w->auth_regulator = party_is_regulator(w->l, st);
        w->auth_scopes = party_scopes(w->l, st);
        return TRACE_OK;
    }
    rc = trace_keyring_get(ring, ev->party, &key);
    if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
        return rc;
    if (!key || !has_key(st, key)) {
        if (st->n_keys == 0 && (flags & TRACE_APPEND_PROVISION_KEYS)) {
            if ((rc = provision(w, ring, st, &key)) != TRACE_OK)
                return rc;
        } else if (!key) {
            return trace_fail(TRACE_EPERM,
                              "no key for %s in %s (create one with `tracectl "
                              "keygen %s` and have it registered, or import "
                              "with --provision-keys)",
                              ev->party, trace_keyring_dir(ring), ev->party);
        } else {
            for (size_t i = 0; i < st->n_revoked; i++)
                if (st->revoked[i].len == TRACE_PUBKEY_LEN &&
                    memcmp(st->revoked[i].data, trace_key_public(key),
                           TRACE_PUBKEY_LEN) == 0)
                    return trace_fail(TRACE_EPERM,
                                      "the key %s/%s.key was revoked for %s: "
                                      "sign with its new key",
                                      trace_keyring_dir(ring), ev->party,
                                      ev->party);
            return trace_fail(TRACE_EPERM,
                              "the key %s/%s.key is not registered to %s in "
                              "this ledger",
                              trace_keyring_dir(ring), ev->party, ev->party);
        }
    }
    snprintf(w->auth_party, sizeof(w->auth_party), "%s", ev->party);
    w->auth_key = key;
    w->auth_regulator = party_is_regulator(w->l, st);
    w->auth_scopes = party_scopes(w->l, st);
    *out = key;
    return TRACE_OK;
}

/* Updates the domain indexes for an event about to be added; its entry
 * will come right after the window's. */
static int apply_state(struct writer *w, const Trace__V1__Event *ev)
{
    state_ctx sc = {w->txn,      w->l,         w->tmp,        w->tails,
                    w->size + 1, window_by_id, window_by_seq, w};

    return state_apply(&sc, ev, w->size + w->n_went + 1);
}

/* A finding of the checks at entry: a warning, or under strict checks
 * the first one, which refuses the event. */
struct entry_check {
    struct writer *w;
    const struct item *it;
    char refusal[640];
};

static int on_finding(const trace_finding *f, void *ctx)
{
    struct entry_check *c = ctx;
    struct writer *w = c->w;

    if (w->checks == WRITER_CHECKS_STRICT) {
        snprintf(c->refusal, sizeof(c->refusal), "%s: %s", f->code, f->message);
        return 1;
    }
    w->res->warnings++;
    return w->on_finding ? w->on_finding(w->finding_ctx, c->it->lineno, f) : 0;
}

/* The checks at entry of one event, against what this transaction holds
 * (the journal, the events before it in the window, their indexes). */
static int check_entry(struct writer *w, const struct item *it)
{
    struct entry_check c = {w, it, ""};
    int rc;

    /* the checks read the indexes through the lent transaction */
    if ((rc = bulk_sync(w->l, w->txn)) != TRACE_OK)
        return rc;
    ledger_lend(w->l, w->txn);
    checking = w;
    rc = check_event(w->l, it->ev, TRACE_CHECK_SKEW_US, on_finding, &c);
    checking = NULL;
    ledger_lend(w->l, NULL);
    if (c.refusal[0])
        return trace_fail(TRACE_EINVAL,
                          "%s (refused by --strict; import "
                          "without it to record it with a warning)",
                          c.refusal);
    return rc;
}

/* A scoped regulator (a department, w->auth_scopes) issues permits,
 * changes their status, registers products and acknowledges alerts only
 * within its scopes (SPEC 12). */
static int check_scope(struct writer *w, const Trace__V1__Event *ev)
{
    const char *type = NULL, *substance = NULL, *what = NULL, *name = "";
    char scopes[64];
    int rc;

    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_CORRECTION_BODY: {
        /* a replacement is judged as the event itself (the corrected
         * event is the department's own, judged when recorded) */
        const Trace__V1__CorrectionBody *c = ev->correction_body;
        Trace__V1__Event *rep;
        if (!c->has_replacement)
            return TRACE_OK;
        if (!(rep = event_decode(w->tmp, c->replacement.data,
                                 c->replacement.len)) ||
            rep->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY)
            return TRACE_OK; /* refused when applied */
        return check_scope(w, rep);
    }
    case TRACE__V1__EVENT__BODY_PARTY_BODY: {
        /* registrations are within every scope, but a department makes
         * no regulator of wider scopes than its own: not itself without
         * scopes (it would see everything), not another */
        const Trace__V1__PartyBody *b = ev->party_body;
        Trace__V1__PartyState *st;
        unsigned m;
        char want[64];
        if (strcmp(b->subject, ev->party) != 0) {
            /* a registered party: only one it registered (or itself),
             * else it could take keys to act as any enterprise, suspend
             * one or change its licences outside its scopes */
            rc = party_state_get(w->txn, w->l, w->tmp, b->subject, &st);
            if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
                return rc;
            if (rc == TRACE_OK && (!st->registered_by ||
                                   strcmp(st->registered_by, ev->party) != 0)) {
                trace_scope_names(w->auth_scopes, scopes, sizeof(scopes));
                return trace_fail(TRACE_EPERM,
                                  "%s works within scopes %s and may not "
                                  "change %s, which it did not register "
                                  "(its keys, status, licences or scopes)",
                                  ev->party, scopes, b->subject);
            }
        }
        if (!b->kind || strcmp(b->kind, "regulator") != 0)
            return TRACE_OK;
        m = trace_scope_mask((const char *const *)b->scopes, b->n_scopes);
        if (m && (m & ~w->auth_scopes) == 0 &&
            strcmp(b->subject, w->l->regulator) != 0)
            return TRACE_OK;
        trace_scope_names(w->auth_scopes, scopes, sizeof(scopes));
        trace_scope_names(m, want, sizeof(want));
        return trace_fail(TRACE_EPERM,
                          "%s works within scopes %s and may not make %s a "
                          "regulator of %s%s",
                          ev->party, scopes, b->subject,
                          m ? "scopes " : "every scope", m ? want : "");
    }
    case TRACE__V1__EVENT__BODY_PERMIT_BODY:
        type = ev->permit_body->kind;
        substance = ev->permit_body->substance;
        what = "issue permit";
        name = ev->permit_body->permit;
        break;
    case TRACE__V1__EVENT__BODY_PRODUCT_BODY: {
        /* a new product event for a GTIN changes the product: the one in
         * force is judged too */
        Trace__V1__ProductBody *old;
        substance = ev->product_body->substance;
        what = "register product";
        name = ev->product_body->gtin;
        rc = product_get(w->txn, w->l, w->tmp, name, &old, NULL, NULL);
        if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
            return rc;
        if (rc == TRACE_OK &&
            !trace_in_scope(w->l, w->auth_scopes, NULL, old->substance))
            substance = old->substance;
        break;
    }
    case TRACE__V1__EVENT__BODY_PERMIT_STATUS_BODY: {
        MDB_val k = {strlen(ev->permit_status_body->permit),
                     ev->permit_status_body->permit},
                v;
        Trace__V1__Entry *e;
        Trace__V1__Event *pe;
        what = "change the status of permit";
        name = ev->permit_status_body->permit;
        rc = mdb_get(w->txn, w->l->dbi_permits, &k, &v);
        if (rc == MDB_NOTFOUND)
            return TRACE_OK; /* refused as an unknown permit later */
        if (rc)
            return trace_fail_mdb(rc, "permits");
        if (v.mv_size != 8)
            return trace_fail(TRACE_EVERIFY, "permit index is damaged");
        if ((rc = entry_get(w->txn, w->l, w->tmp, be64_get(v.mv_data), &e)))
            return rc;
        if (!(pe = event_decode(w->tmp, e->event.data, e->event.len)) ||
            pe->body_case != TRACE__V1__EVENT__BODY_PERMIT_BODY)
            return trace_fail(TRACE_EVERIFY,
                              "permit %s: its entry is not a "
                              "permit",
                              name);
        type = pe->permit_body->kind;
        substance = pe->permit_body->substance;
        break;
    }
    case TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY: {
        const Trace__V1__ApplicationRef *ar =
            ev->application_decision_body->application;
        const struct went *we = window_find(w, ar->party, ar->id);
        uint8_t key[KEY_MAX];
        size_t klen =
            compose_key(key, sizeof(key), ar->party, ar->id, strlen(ar->id));
        MDB_val k = {klen, key}, v;
        const uint8_t *bytes = NULL;
        size_t blen = 0;
        Trace__V1__Event *ae;
        what = "decide on application";
        name = ar->id;
        if (we) {
            bytes = we->p.bytes;
            blen = we->p.len;
        } else if (klen && bulk_find_id(w->l, w->txn, &k, &v) == 0 &&
                   v.mv_size == 8) {
            Trace__V1__Entry *e;
            if ((rc = entry_get(w->txn, w->l, w->tmp, be64_get(v.mv_data),
                                &e)) != TRACE_OK)
                return rc;
            bytes = e->event.data;
            blen = e->event.len;
        }
        if (!bytes || !(ae = event_decode(w->tmp, bytes, blen)) ||
            ae->body_case != TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY)
            return TRACE_OK; /* refused as an unknown application later */
        type = ae->permit_application_body->kind;
        substance = ae->permit_application_body->substance;
        break;
    }
    case TRACE__V1__EVENT__BODY_ALERT_ACK_BODY: {
        const char *alert = ev->alert_ack_body->alert;
        MDB_val k = {strlen(alert), (void *)alert}, v;
        json_t *j;
        what = "acknowledge alert";
        name = alert;
        rc = mdb_get(w->txn, w->l->dbi_alerts, &k, &v);
        if (rc && rc != MDB_NOTFOUND)
            return trace_fail_mdb(rc, "alerts");
        if (rc == MDB_NOTFOUND ||
            !(j = json_loadb(v.mv_data, v.mv_size, 0, NULL))) {
            trace_scope_names(w->auth_scopes, scopes, sizeof(scopes));
            return trace_fail(TRACE_EPERM,
                              "%s (scopes %s) may acknowledge only alerts "
                              "found within its scopes; %s is not a known "
                              "alert",
                              ev->party, scopes, alert);
        }
        const char *about = json_string_value(json_object_get(j, "substance"));
        int in = alert_in_scope(w->txn, w->l, w->tmp, w->auth_scopes, j, 0);
        trace_scope_names(w->auth_scopes, scopes, sizeof(scopes));
        rc = in ? TRACE_OK
                : trace_fail(TRACE_EPERM,
                             "%s works within scopes %s and may not "
                             "acknowledge alert %s of %s",
                             ev->party, scopes, alert, about ? about : "");
        json_decref(j);
        return rc;
    }
    default:
        return TRACE_OK;
    }
    if (trace_in_scope(w->l, w->auth_scopes, type, substance))
        return TRACE_OK;
    trace_scope_names(w->auth_scopes, scopes, sizeof(scopes));
    return trace_fail(
        TRACE_EPERM, "%s works within scopes %s and may not %s %s%s%s",
        ev->party, scopes, what, name, substance && substance[0] ? " of " : "",
        substance ? substance : "");
}

/* The event at journal position seq, written or in the window (NULL if
 * none). */
static Trace__V1__Event *event_at_seq(struct writer *w, uint64_t seq)
{
    const uint8_t *bytes;
    size_t len;
    Trace__V1__Entry *e;

    if (seq > w->size) {
        if (window_by_seq(w, seq, &bytes, &len) != TRACE_OK)
            return NULL;
    } else {
        if (entry_get(w->txn, w->l, w->tmp, seq, &e) != TRACE_OK)
            return NULL;
        bytes = e->event.data;
        len = e->event.len;
    }
    return event_decode(w->tmp, bytes, len);
}

/* 1 if a handover of sale `ref` (of `lot`) to `carrier` is recorded. */
static int handed_to(struct writer *w, const char *lot,
                     const Trace__V1__EventRef *ref, const char *carrier)
{
    uint8_t key[KEY_MAX];
    size_t klen =
        compose_key(key, sizeof(key), lot, ref->party, strlen(ref->party));
    MDB_val k = {klen, key}, v;
    MDB_cursor *cur;
    int rc, found = 0;

    if (!klen || mdb_cursor_open(w->txn, w->l->dbi_lots, &cur) != 0)
        return 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0 && !found;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        Trace__V1__Event *h;
        if (v.mv_size != 9 || ((uint8_t *)v.mv_data)[8] != LOT_CUSTODY_OF ||
            !(h = event_at_seq(w, be64_get(v.mv_data))) ||
            h->body_case != TRACE__V1__EVENT__BODY_HANDOVER_BODY)
            continue;
        const Trace__V1__HandoverBody *hb = h->handover_body;
        found = hb->ref && hb->ref->party && hb->ref->id && hb->to &&
                strcmp(hb->ref->party, ref->party) == 0 &&
                strcmp(hb->ref->id, ref->id) == 0 &&
                strcmp(hb->to, carrier) == 0;
    }
    mdb_cursor_close(cur);
    return found;
}

/* Carriers (SPEC 12): a pickup, handover or delivery citing a recorded
 * sale cites a sale and is recorded by the carrier the sale names
 * or one its load was handed over to (a handover or delivery).
 * Otherwise any party could file itself under another's lot, and so
 * read its history, or mask a CUSTODY_GAP.  A sale not yet recorded
 * (reported late) cannot be judged here: the rules see it. */
static int check_custody(struct writer *w, const Trace__V1__Event *ev)
{
    const ProtobufCMessage *body = event_body(ev);
    const Trace__V1__EventRef *ref = msg_field(body, "ref");
    const char *lot = msg_field(body, "lot");
    const struct went *we;
    const char *carrier;
    Trace__V1__Event *sale = NULL;

    if (!ref || !ref->party || !ref->id || !lot)
        return TRACE_OK; /* refused by the parser */
    if ((we = window_find(w, ref->party, ref->id)))
        sale = event_decode(w->tmp, we->p.bytes, we->p.len);
    else {
        uint8_t key[KEY_MAX];
        size_t klen =
            compose_key(key, sizeof(key), ref->party, ref->id, strlen(ref->id));
        MDB_val k = {klen, key}, v;
        if (klen && bulk_find_id(w->l, w->txn, &k, &v) == 0 && v.mv_size == 8)
            sale = event_at_seq(w, be64_get(v.mv_data));
    }
    /* the custody of a load is filed under its lot, which lets the
     * carrier read the lot's movements, and shows in the seller's trace:
     * only a recorded sale of that lot and substance may be cited */
    if (!sale)
        return trace_fail(TRACE_EINVAL,
                          "%s %s cites sale %s/%s, which is not recorded (the "
                          "seller records the sale first)",
                          ev->type, ev->id, ref->party, ref->id);
    if (sale->body_case != TRACE__V1__EVENT__BODY_SALE_BODY)
        return trace_fail(TRACE_EINVAL,
                          "%s %s cites %s/%s, which is not a sale (a %s)",
                          ev->type, ev->id, ref->party, ref->id, sale->type);
    if (strcmp(sale->sale_body->lot, lot) != 0)
        return trace_fail(
            TRACE_EINVAL, "%s %s names lot %s, but sale %s/%s is of lot %s",
            ev->type, ev->id, lot, ref->party, ref->id, sale->sale_body->lot);
    {
        const char *sub = msg_field(body, "substance");
        const subst_info *a = sub ? catalog_find(w->l->cat, sub) : NULL,
                         *b = catalog_find(w->l->cat,
                                           sale->sale_body->substance);
        if (!a || a != b)
            return trace_fail(TRACE_EINVAL,
                              "%s %s names substance %s, but sale %s/%s is of "
                              "%s",
                              ev->type, ev->id, sub ? sub : "(none)",
                              ref->party, ref->id, sale->sale_body->substance);
    }
    carrier = sale->sale_body->carrier;
    if (carrier && carrier[0] && strcmp(carrier, ev->party) == 0)
        return TRACE_OK;
    if (ev->body_case != TRACE__V1__EVENT__BODY_PICKUP_BODY) {
        /* handed_to reads lots: what an import holds is written first */
        int rc = bulk_sync(w->l, w->txn);
        if (rc != TRACE_OK)
            return rc;
        if (handed_to(w, lot, ref, ev->party))
            return TRACE_OK;
    }
    if (!carrier || !carrier[0])
        return trace_fail(TRACE_EPERM,
                          "%s %s: sale %s/%s names no carrier, so %s may not "
                          "record its custody",
                          ev->type, ev->id, ref->party, ref->id, ev->party);
    return trace_fail(TRACE_EPERM,
                      "%s %s: sale %s/%s is carried by %s%s, not by %s",
                      ev->type, ev->id, ref->party, ref->id, carrier,
                      ev->body_case == TRACE__V1__EVENT__BODY_PICKUP_BODY
                          ? ""
                          : " (or a carrier it handed the load to)",
                      ev->party);
}

/* check_custody for a custody event, or a correction's replacement
 * that is one. */
static int check_custody_of(struct writer *w, const Trace__V1__Event *ev)
{
    if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY &&
        ev->correction_body->has_replacement) {
        const Trace__V1__Event *rep =
            event_decode(w->tmp, ev->correction_body->replacement.data,
                         ev->correction_body->replacement.len);
        if (!rep) /* refused when applied */
            return TRACE_OK;
        ev = rep;
    }
    if (ev->body_case == TRACE__V1__EVENT__BODY_PICKUP_BODY ||
        ev->body_case == TRACE__V1__EVENT__BODY_HANDOVER_BODY ||
        ev->body_case == TRACE__V1__EVENT__BODY_DELIVERY_BODY)
        return check_custody(w, ev);
    return TRACE_OK;
}

int process(struct writer *w, const struct item *it, trace_keyring *ring,
            const char *as, unsigned flags)
{
    const Trace__V1__Event *ev = it->ev;
    const event_type *t = event_type_by_case(ev->body_case);
    const trace_key *key = NULL;
    int rc;

    arena_reset(w->tmp);
    /* a commit of many events into large indexes maps tens of KB of
     * the file per event: looked at every 256 events */
    if (w->l->map_limit && (++w->since_trim & 255) == 0)
        ledger_trim_over(w->l);
    if (w->bulk) {
        /* past the budget what is held is written; with nothing held the
         * stock tails are read back as needed, and their memory goes */
        int wrote;
        if ((rc = bulk_trim(w->l, w->txn, &wrote)) != TRACE_OK)
            return rc;
        if (wrote) {
            strmap_free(w->tails);
            if (!(w->tails = state_tails_new()))
                return trace_fail(TRACE_ENOMEM, "out of memory");
        }
    }
    if (as && strcmp(ev->party, as) != 0)
        return trace_fail(TRACE_EPERM,
                          "event recorded by %s, but acting as %s: a party "
                          "writes only its own ledger",
                          ev->party, as);
    if ((rc = check_id(w, ev->party, ev->id, it->bytes, it->len)) < 0)
        return rc;
    if (rc == 1) {
        w->res->duplicates++;
        return TRACE_OK;
    }
    if ((rc = check_recorder(w, ev, t->regulator_only, ring, flags, &key)))
        return rc;
    if (w->auth_scopes && (rc = check_scope(w, ev)) != TRACE_OK)
        return rc;
    if ((rc = check_custody_of(w, ev)) != TRACE_OK)
        return rc;
    if (w->checks && !w->historic && (rc = check_entry(w, it)) != TRACE_OK)
        return rc;
    if (ev->body_case == TRACE__V1__EVENT__BODY_PARTY_BODY &&
        (rc = apply_party(w, ev->party_body, ev->party)) != TRACE_OK)
        return rc;
    if ((rc = apply_state(w, ev)) != TRACE_OK)
        return rc;
    return add_event(w, ev->party, ev->id, key, it->bytes, it->len);
}

/* Forgets what the writer cached about a child transaction that was
 * aborted: chain heads, stock tails and the journal head go back to
 * what the parent transaction holds. */
int writer_rewind(struct writer *w, uint64_t size,
                  const uint8_t head[TRACE_HASH_LEN])
{
    for (size_t i = 0; i < w->n_heads; i++)
        free(w->heads[i].party);
    w->n_heads = 0;
    strmap_free(w->head_ix);
    w->head_ix = strmap_new(sizeof(size_t));
    strmap_free(w->tails);
    w->tails = state_tails_new();
    w->size = size;
    memcpy(w->head, head, TRACE_HASH_LEN);
    if (window_reset(w) != TRACE_OK)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (tree_load(w->txn, w->l, size, &w->tree) != TRACE_OK)
        return trace_fail(TRACE_EVERIFY, "cannot read the Merkle tree back");
    w->auth_party[0] = '\0';
    w->presig = NULL;
    w->presig_key_id = NULL;
    if (!w->tails || !w->head_ix)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    return TRACE_OK;
}

/* Stores the cached party chain heads in the current transaction. */
int writer_put_heads(struct writer *w)
{
    int rc;

    for (size_t i = 0; i < w->n_heads; i++) {
        uint8_t val[8 + TRACE_HASH_LEN];
        MDB_val k = {strlen(w->heads[i].party), w->heads[i].party};
        MDB_val v = {sizeof(val), val};
        be64_put(val, w->heads[i].pseq);
        memcpy(val + 8, w->heads[i].hash, TRACE_HASH_LEN);
        if ((rc = mdb_put(w->txn, w->l->dbi_heads, &k, &v, 0)))
            return trace_fail_mdb(rc, "heads");
    }
    return TRACE_OK;
}

int writer_commit(struct writer *w)
{
    int rc;

    if ((rc = window_flush(w)) != TRACE_OK)
        return rc;
    /* no more events: the stock tails go before the held index entries
     * are written (their pages and the tails are the peak of an import) */
    strmap_free(w->tails);
    w->tails = NULL;
    if ((rc = bulk_finish(w->l, w->txn)) != TRACE_OK ||
        (rc = writer_put_heads(w)) != TRACE_OK)
        return rc;
    if ((rc = ledger_head_put(w->txn, w->l, w->size, w->head)) != TRACE_OK ||
        (rc = checkpoint_commit(w->txn, w->l, w->size)) != TRACE_OK)
        return rc;
    /* all written: forgotten before the commit, after which another
     * thread's write transaction has the same handle */
    if (w->bulk)
        bulk_end(w->l);
    w->bulk = 0;
    rc = ledger_txn_commit(w->l, w->txn);
    w->txn = NULL;
    if (rc) {
        memset(w->res, 0, sizeof(*w->res));
        return ledger_commit_failed(w->l, rc);
    }
    return TRACE_OK;
}

int writer_check(struct writer *w)
{
    int rc;

    /* everything a commit does but the commit: writer_end aborts */
    if ((rc = window_flush(w)) != TRACE_OK ||
        (rc = bulk_finish(w->l, w->txn)) != TRACE_OK ||
        (rc = writer_put_heads(w)) != TRACE_OK)
        return rc;
    return ledger_head_put(w->txn, w->l, w->size, w->head);
}

static int append_once(trace_ledger *l, trace_batch *b, trace_keyring *ring,
                       const char *as, unsigned flags,
                       trace_append_result *res);

int trace_ledger_append(trace_ledger *l, trace_batch *b, trace_keyring *ring,
                        const char *as, unsigned flags,
                        trace_append_result *res)
{
    int rc;

    /* A full map is grown and the whole batch tried again (the failed
     * transaction left nothing behind); a full disk is reported. */
    for (int attempt = 0;; attempt++) {
        rc = append_once(l, b, ring, as, flags, res);
        if (rc != TRACE_EFULL || last_mdb_error() != MDB_MAP_FULL ||
            attempt == 8)
            return rc;
        if (ledger_grow_map(l) != TRACE_OK)
            return rc;
    }
}

static int append_once(trace_ledger *l, trace_batch *b, trace_keyring *ring,
                       const char *as, unsigned flags, trace_append_result *res)
{
    trace_append_result local;
    struct writer w;
    int rc;

    if (!res)
        res = &local;
    if ((rc = writer_begin(&w, l, res)) != TRACE_OK ||
        (rc = check_historic(&w, ring, as, flags)) != TRACE_OK)
        goto out;
    w.historic = (flags & TRACE_APPEND_HISTORIC) != 0;
    for (size_t i = 0; i < b->n; i++) {
        if ((rc = process(&w, &b->items[i], ring, as, flags)) != TRACE_OK) {
            trace_fail_line(rc, b->items[i].lineno);
            goto out;
        }
    }
    rc = writer_commit(&w);
out:
    if (rc != TRACE_OK)
        memset(res, 0, sizeof(*res));
    writer_end(&w);
    return rc;
}

int ledger_genesis(trace_ledger *l, const trace_key *key)
{
    Trace__V1__Event ev = TRACE__V1__EVENT__INIT;
    Trace__V1__Time at = TRACE__V1__TIME__INIT;
    Trace__V1__PartyBody body = TRACE__V1__PARTY_BODY__INIT;
    trace_append_result res;
    struct writer w;
    uint8_t *bytes = NULL;
    size_t len;
    int rc;

    if ((rc = writer_begin(&w, l, &res)) != TRACE_OK)
        goto out;
    body.subject = l->regulator;
    body.name = "Root regulator";
    body.kind = "regulator";
    body.region = "CN";
    body.has_pubkey = 1;
    body.pubkey.data = (uint8_t *)trace_key_public(key);
    body.pubkey.len = TRACE_PUBKEY_LEN;
    at.us = w.now;
    ev.type = "party";
    ev.id = "genesis";
    ev.party = l->regulator;
    ev.at = &at;
    ev.body_case = TRACE__V1__EVENT__BODY_PARTY_BODY;
    ev.party_body = &body;
    len = trace__v1__event__get_packed_size(&ev);
    if (!(bytes = malloc(len))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    trace__v1__event__pack(&ev, bytes);
    if ((rc = apply_party(&w, &body, l->regulator)) != TRACE_OK ||
        (rc = add_event(&w, l->regulator, "genesis", key, bytes, len)) !=
            TRACE_OK)
        goto out;
    rc = writer_commit(&w);
out:
    writer_end(&w);
    free(bytes);
    return rc;
}
