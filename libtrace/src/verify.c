/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify.c - full verification of a ledger from its first entry.
 *
 * Trusts nothing but the journal itself: keys are learnt by replaying
 * the `party` events in order (the genesis entry registers the root
 * regulator's own key), so a changed index cannot make a forged entry
 * pass.  For every entry it checks, in order: the LMDB key is the next
 * sequence number; the record decodes; prev_hash is the previous leaf;
 * party_seq and prev_party_hash continue that party's chain; the entry
 * continues its party's open signature group (same key; see check_group
 * for the two entry versions).  At the end of each group one Ed25519
 * signature is checked.  Finally the stored head must equal the
 * recomputed one.
 *
 * Signatures are checked on worker threads, one per core (sigq below),
 * while this one goes on hashing and linking: a group's digest, key and
 * signature are queued, and the first failure (the lowest entry) is
 * reported once the queue is drained - before any later structural
 * fault, which is only named if no earlier signature failed.
 *
 * Memory is bounded by the number of parties and keys, not the journal.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct pstate {
    uint64_t pseq;
    uint8_t hash[TRACE_HASH_LEN];
    int regulator;
    /* the party's open signature group */
    sha256_stream *digest; /* made at its first group, kept */
    int in_group;
    uint8_t gkid[TRACE_KEY_ID_LEN];
    uint32_t gcount;
    uint64_t gfirst; /* journal position of its first entry */
};

struct kstate {
    char party[72];
    uint8_t pub[TRACE_PUBKEY_LEN];
    uint64_t revoked_at; /* entry that revoked it, 0 if none */
};

/* Signature checks handed to a worker thread. */
struct sigjob {
    uint8_t pub[TRACE_PUBKEY_LEN];
    uint8_t digest[TRACE_HASH_LEN];
    uint8_t sig[TRACE_SIG_LEN];
    uint64_t seq;
    uint32_t count;
};

#define SIGQ_LEN     512
#define SIGQ_THREADS 8 /* at most; one per online core */

struct sigq {
    pthread_mutex_t mu;
    pthread_cond_t more, room;
    struct sigjob jobs[SIGQ_LEN];
    size_t head, n;
    int closed, started; /* started: worker threads running */
    uint64_t bad_seq;    /* lowest entry whose signature failed (0: none) */
    uint32_t bad_count;
    pthread_t t[SIGQ_THREADS];
};

static void *sigq_main(void *arg)
{
    struct sigq *q = arg;
    struct sigjob j;

    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->n && !q->closed)
            pthread_cond_wait(&q->more, &q->mu);
        if (!q->n)
            break;
        j = q->jobs[q->head];
        q->head = (q->head + 1) % SIGQ_LEN;
        q->n--;
        pthread_cond_signal(&q->room);
        pthread_mutex_unlock(&q->mu);
        int ok = trace_sig_verify(j.pub, j.digest, sizeof(j.digest), j.sig) ==
                 TRACE_OK;
        pthread_mutex_lock(&q->mu);
        if (!ok && (!q->bad_seq || j.seq < q->bad_seq)) {
            q->bad_seq = j.seq;
            q->bad_count = j.count;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void sigq_start(struct sigq *q)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cores < 1 ? 1 : cores > SIGQ_THREADS ? SIGQ_THREADS : (int)cores;

    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL) || pthread_cond_init(&q->more, NULL) ||
        pthread_cond_init(&q->room, NULL))
        return;
    while (q->started < want &&
           pthread_create(&q->t[q->started], NULL, sigq_main, q) == 0)
        q->started++;
}

/* Checks a signature: on the worker when there is one, else here (then a
 * failure is recorded at once). */
static void sigq_push(struct sigq *q, const uint8_t *pub, const uint8_t *digest,
                      const uint8_t *sig, uint64_t seq, uint32_t count)
{
    struct sigjob *j;

    if (!q->started) {
        if (trace_sig_verify(pub, digest, TRACE_HASH_LEN, sig) != TRACE_OK &&
            (!q->bad_seq || seq < q->bad_seq)) {
            q->bad_seq = seq;
            q->bad_count = count;
        }
        return;
    }
    pthread_mutex_lock(&q->mu);
    while (q->n == SIGQ_LEN)
        pthread_cond_wait(&q->room, &q->mu);
    j = &q->jobs[(q->head + q->n) % SIGQ_LEN];
    memcpy(j->pub, pub, TRACE_PUBKEY_LEN);
    memcpy(j->digest, digest, TRACE_HASH_LEN);
    memcpy(j->sig, sig, TRACE_SIG_LEN);
    j->seq = seq;
    j->count = count;
    q->n++;
    pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->mu);
}

/* Waits for every queued check and stops the worker. */
static void sigq_finish(struct sigq *q)
{
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->closed = 1;
        pthread_cond_broadcast(&q->more);
        pthread_mutex_unlock(&q->mu);
        for (int i = 0; i < q->started; i++)
            pthread_join(q->t[i], NULL);
        q->started = 0;
    }
}

struct verifier;
static int verify_run(trace_ledger *l, trace_verify_result *res,
                      trace_progress_fn progress, int (*stop)(void *ctx),
                      void *ctx, int resume, uint8_t **state, size_t *state_len,
                      const char *ext, size_t ext_len);

struct verifier {
    trace_ledger *l;
    trace_verify_result *res;
    strmap *parties;
    strmap *keys; /* hex key id -> kstate */
    arena *a;
    size_t open; /* parties with an open signature group */
    struct sigq *sq;
};

static int bad(struct verifier *v, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct verifier *v, uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    char msg[200];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    v->res->bad_seq = seq;
    if (seq)
        snprintf(v->res->reason, sizeof(v->res->reason), "entry %llu: %s",
                 (unsigned long long)seq, msg);
    else
        snprintf(v->res->reason, sizeof(v->res->reason), "%s", msg);
    return trace_fail(TRACE_EVERIFY, "%s", v->res->reason);
}

/* Reads a varint; returns bytes used or 0 on malformed input. */
static size_t varint(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

/* Is this encoded Event a `party` event?  Walks the top-level fields
 * without decoding the whole message. */
static int is_party_event(const uint8_t *p, size_t len)
{
    size_t i = 0, n;
    uint64_t tag, l;

    while (i < len) {
        if (!(n = varint(p + i, len - i, &tag)))
            return 0;
        i += n;
        switch (tag & 7) {
        case 0:
            if (!(n = varint(p + i, len - i, &l)))
                return 0;
            i += n;
            break;
        case 2:
            if (!(n = varint(p + i, len - i, &l)) || l > len - i - n)
                return 0;
            i += n;
            if (tag >> 3 == 1)
                return l == 5 && memcmp(p + i, "party", 5) == 0;
            i += l;
            break;
        case 1:
            i += 8;
            break;
        case 5:
            i += 4;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

static int replay_party(struct verifier *v, const Trace__V1__Entry *e,
                        struct pstate *recorder)
{
    Trace__V1__Event *ev = trace__v1__event__unpack(
        arena_allocator(v->a), e->event.len, e->event.data);
    const Trace__V1__PartyBody *b;
    struct pstate *subj;
    int genesis = e->seq == 1;

    if (!ev || ev->body_case != TRACE__V1__EVENT__BODY_PARTY_BODY)
        return bad(v, e->seq, "party event cannot be decoded");
    b = ev->party_body;
    if (strcmp(ev->party, e->party) != 0)
        return bad(v, e->seq, "event names %s but entry is %s's", ev->party,
                   e->party);
    if (genesis && (strcmp(b->subject, e->party) != 0 ||
                    strcmp(e->party, v->l->regulator) != 0))
        return bad(v, e->seq, "genesis entry is not the root regulator's");
    if (!genesis && !recorder->regulator)
        return bad(v, e->seq, "party event recorded by %s, not a regulator",
                   e->party);
    if (!(subj = strmap_get(v->parties, b->subject, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    subj->regulator = strcmp(b->kind, "regulator") == 0 &&
                      !(b->status && strcmp(b->status, "suspended") == 0);
    if (b->has_pubkey) {
        char hex[2 * TRACE_KEY_ID_LEN + 1];
        uint8_t kid[TRACE_KEY_ID_LEN];
        struct kstate *k;
        if (b->pubkey.len != TRACE_PUBKEY_LEN)
            return bad(v, e->seq, "registered key is not 32 bytes");
        trace_pubkey_id(kid, b->pubkey.data);
        hex_encode(hex, kid, sizeof(kid));
        if (!(k = strmap_get(v->keys, hex, 1)))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (k->party[0] && strcmp(k->party, b->subject) != 0)
            return bad(v, e->seq, "key registered to two parties");
        if (k->revoked_at)
            return bad(v, e->seq, "a revoked key is registered again");
        snprintf(k->party, sizeof(k->party), "%s", b->subject);
        memcpy(k->pub, b->pubkey.data, TRACE_PUBKEY_LEN);
    }
    if (b->has_revoke) {
        char hex[2 * TRACE_KEY_ID_LEN + 1];
        uint8_t kid[TRACE_KEY_ID_LEN];
        struct kstate *k;
        if (b->revoke.len != TRACE_PUBKEY_LEN)
            return bad(v, e->seq, "revoked key is not 32 bytes");
        trace_pubkey_id(kid, b->revoke.data);
        hex_encode(hex, kid, sizeof(kid));
        k = strmap_get(v->keys, hex, 0);
        if (!k || strcmp(k->party, b->subject) != 0)
            return bad(v, e->seq, "revokes a key %s never registered to %s",
                       hex, b->subject);
        if (!k->revoked_at)
            k->revoked_at = e->seq;
    }
    return TRACE_OK;
}

/* Signature groups (ledger.h): a party's group is its entries from its
 * last signed one on; the entry carrying sig closes it.  Version 1
 * entries were written as runs of consecutive journal entries: no other
 * party's group may be open beside one. */
static int check_group(struct verifier *v, struct pstate *ps,
                       const Trace__V1__Entry *e,
                       const uint8_t h[TRACE_HASH_LEN])
{
    if (e->version == 1 && v->open > (size_t)(ps->in_group ? 1 : 0))
        return bad(v, e->seq,
                   "a signature group ends without a signature before this "
                   "entry");
    if (!ps->in_group) {
        if (!ps->digest && !(ps->digest = sha256_stream_new()))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        ps->in_group = 1;
        ps->gcount = 0;
        ps->gfirst = e->seq;
        memcpy(ps->gkid, e->key_id.data, TRACE_KEY_ID_LEN);
        group_digest_begin(ps->digest, e->party, ps->gkid);
        v->open++;
    } else if (memcmp(ps->gkid, e->key_id.data, TRACE_KEY_ID_LEN) != 0) {
        return bad(v, e->seq, "signature group of %s ends without a signature",
                   e->party);
    }
    sha256_stream_update(ps->digest, h, TRACE_HASH_LEN);
    ps->gcount++;
    if (!e->has_sig)
        return TRACE_OK;

    char hex[2 * TRACE_KEY_ID_LEN + 1];
    uint8_t digest[TRACE_HASH_LEN];
    struct kstate *k;

    if (!e->has_sig_count || e->sig_count != ps->gcount)
        return bad(v, e->seq, "signature covers %u entries, group has %u",
                   e->has_sig_count ? e->sig_count : 0, ps->gcount);
    hex_encode(hex, ps->gkid, TRACE_KEY_ID_LEN);
    k = strmap_get(v->keys, hex, 0);
    if (!k || strcmp(k->party, e->party) != 0)
        return bad(v, e->seq, "signing key %s is not registered to %s", hex,
                   e->party);
    /* a key signs until the entry that revokes it: a group that began
     * later must not use it */
    if (k->revoked_at && ps->gfirst > k->revoked_at)
        return bad(v, e->seq,
                   "signed with key %s of %s, revoked at entry "
                   "%llu",
                   hex, e->party, (unsigned long long)k->revoked_at);
    group_digest_end(ps->digest, ps->gcount, digest);
    sigq_push(v->sq, k->pub, digest, e->sig.data, e->seq, ps->gcount);
    ps->in_group = 0;
    v->open--;
    v->res->groups++;
    return TRACE_OK;
}

static int open_party(const char *name, void *val, void *ctx)
{
    const struct pstate *ps = val;
    if (ps->in_group)
        snprintf(ctx, 72, "%s", name);
    return 0;
}

static int free_digest(const char *name, void *val, void *ctx)
{
    struct pstate *ps = val;
    (void)name;
    (void)ctx;
    sha256_stream_free(ps->digest);
    ps->digest = NULL;
    return 0;
}

/* An entry read ahead: its key and record (in the map, valid while the
 * read transaction lasts), decoded, and its two hashes. */
struct prepped {
    MDB_val key, val;
    Trace__V1__Entry *e;             /* NULL: it cannot be decoded */
    uint8_t leaf[TRACE_HASH_LEN];    /* of the stored record */
    uint8_t ev_hash[TRACE_HASH_LEN]; /* of its event bytes, when decoded */
    /* the first of 16 entries that fill a height-4 Merkle subtree, all
     * in this block: that subtree's hash (the tree check's work, done
     * on the reading-ahead threads) */
    int has_h16;
    uint8_t h16[TRACE_HASH_LEN];
};

static int check_entry(struct verifier *v, const struct prepped *x,
                       uint64_t seq, uint8_t head[32])
{
    const MDB_val *key = &x->key;
    Trace__V1__Entry *e = x->e;
    struct pstate *ps;
    int rc;

    if (key->mv_size != 8 || be64_get(key->mv_data) != seq)
        return bad(v, seq, "journal position missing or out of order");
    arena_reset(v->a);
    if (!e)
        return bad(v, seq, "record cannot be decoded");
    if (e->version != 1 && e->version != 2)
        return bad(v, seq, "unknown entry version %u", e->version);
    if (e->seq != seq)
        return bad(v, seq, "record says it is entry %llu",
                   (unsigned long long)e->seq);
    if (e->prev_hash.len != TRACE_HASH_LEN ||
        e->prev_party_hash.len != TRACE_HASH_LEN ||
        e->key_id.len != TRACE_KEY_ID_LEN ||
        (e->has_sig && e->sig.len != TRACE_SIG_LEN))
        return bad(v, seq, "hash, key id or signature has a wrong length");
    /* A broken link usually means the previous record was altered: name
     * that one, as the first bad entry. */
    if (memcmp(e->prev_hash.data, head, TRACE_HASH_LEN) != 0)
        return seq == 1 ? bad(v, seq, "first entry links to a predecessor")
                        : bad(v, seq - 1,
                              "record does not match the hash entry %llu "
                              "commits to (altered)",
                              (unsigned long long)seq);
    if (!trace_party_id_valid(e->party))
        return bad(v, seq, "invalid party id");
    if (!(ps = strmap_get(v->parties, e->party, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (e->party_seq != ps->pseq + 1 ||
        memcmp(e->prev_party_hash.data, ps->hash, TRACE_HASH_LEN) != 0)
        return bad(v, seq, "link to %s's previous entry does not hold",
                   e->party);
    if (is_party_event(e->event.data, e->event.len) &&
        (rc = replay_party(v, e, ps)) != TRACE_OK)
        return rc;
    /* replay_party may have grown the map: look the recorder up again. */
    ps = strmap_get(v->parties, e->party, 0);
    if ((rc = check_group(v, ps, e, x->ev_hash)) != TRACE_OK)
        return rc;
    memcpy(head, x->leaf, TRACE_HASH_LEN);
    ps->pseq = e->party_seq;
    memcpy(ps->hash, x->leaf, TRACE_HASH_LEN);
    return TRACE_OK;
}

/* Reading ahead ------------------------------------------------------
 *
 * The journal is read here in blocks of entries; decoding and hashing a
 * block (most of the work) falls to whichever thread takes it first,
 * this one or a helper, and this one checks the blocks in order.  At
 * most N_BLOCKS blocks of at most BLOCK_BYTES of records are in
 * memory. */
#define BLOCK_ENTRIES 4096
#define BLOCK_BYTES   (4u << 20)
#define N_BLOCKS      4

enum { B_FREE, B_FILLED, B_TAKEN, B_READY };

struct block {
    struct prepped *x;
    size_t n;
    arena *a; /* the decoded entries */
    int state;
};

struct ahead {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct block b[N_BLOCKS];
    int stop, started, inited;
    pthread_t t;
};

static void block_prep(struct block *b)
{
    arena_reset(b->a);
    for (size_t i = 0; i < b->n; i++) {
        struct prepped *x = &b->x[i];
        x->e = trace__v1__entry__unpack(arena_allocator(b->a), x->val.mv_size,
                                        x->val.mv_data);
        if (x->e)
            sha256(x->ev_hash, x->e->event.data, x->e->event.len);
        leaf_hash(x->leaf, x->val.mv_data, x->val.mv_size);
    }
    for (size_t i = 0; i < b->n; i++) {
        struct prepped *x = &b->x[i];
        uint64_t seq = x->key.mv_size == 8 ? be64_get(x->key.mv_data) : 0;
        x->has_h16 = 0;
        if (seq == 0 || (seq - 1) % 16 != 0 || i + 16 > b->n ||
            b->x[i + 15].key.mv_size != 8 ||
            be64_get(b->x[i + 15].key.mv_data) != seq + 15)
            continue;
        uint8_t h[16][TRACE_HASH_LEN];
        for (int j = 0; j < 16; j++)
            memcpy(h[j], b->x[i + j].leaf, TRACE_HASH_LEN);
        for (int n = 16; n > 1; n /= 2)
            for (int j = 0; j < n / 2; j++)
                merkle_node(h[j], h[2 * j], h[2 * j + 1]);
        memcpy(x->h16, h[0], TRACE_HASH_LEN);
        x->has_h16 = 1;
    }
}

/* Takes a filled block, if any, and prepares it; 0 if there was none.
 * Called and returns with ah->mu held. */
static int help_one(struct ahead *ah)
{
    for (int i = 0; i < N_BLOCKS; i++) {
        struct block *b = &ah->b[i];
        if (b->state != B_FILLED)
            continue;
        b->state = B_TAKEN;
        pthread_mutex_unlock(&ah->mu);
        block_prep(b);
        pthread_mutex_lock(&ah->mu);
        b->state = B_READY;
        pthread_cond_broadcast(&ah->cv);
        return 1;
    }
    return 0;
}

static void *ahead_main(void *arg)
{
    struct ahead *ah = arg;

    pthread_mutex_lock(&ah->mu);
    while (!ah->stop)
        if (!help_one(ah))
            pthread_cond_wait(&ah->cv, &ah->mu);
    pthread_mutex_unlock(&ah->mu);
    return NULL;
}

static int ahead_start(struct ahead *ah)
{
    memset(ah, 0, sizeof(*ah));
    pthread_mutex_init(&ah->mu, NULL);
    pthread_cond_init(&ah->cv, NULL);
    ah->inited = 1;
    for (int i = 0; i < N_BLOCKS; i++) {
        /* a block's decoded records stay well under this; a record that
         * alone would not fit cannot be decoded, as before */
        if (!(ah->b[i].a = arena_new(64u << 20)) ||
            !(ah->b[i].x = calloc(BLOCK_ENTRIES, sizeof(*ah->b[i].x))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        arena_set_block(ah->b[i].a, 1u << 20);
    }
    ah->started = pthread_create(&ah->t, NULL, ahead_main, ah) == 0;
    return TRACE_OK;
}

static void ahead_stop(struct ahead *ah)
{
    if (!ah->inited)
        return;
    if (ah->started) {
        pthread_mutex_lock(&ah->mu);
        ah->stop = 1;
        pthread_cond_broadcast(&ah->cv);
        pthread_mutex_unlock(&ah->mu);
        pthread_join(ah->t, NULL);
        ah->started = 0;
    }
    for (int i = 0; i < N_BLOCKS; i++) {
        arena_free(ah->b[i].a);
        free(ah->b[i].x);
        ah->b[i].a = NULL;
        ah->b[i].x = NULL;
    }
    pthread_mutex_destroy(&ah->mu);
    pthread_cond_destroy(&ah->cv);
    ah->inited = 0;
}

/* Waits until block b is prepared, preparing blocks meanwhile. */
static void block_wait(struct ahead *ah, struct block *b)
{
    pthread_mutex_lock(&ah->mu);
    while (b->state != B_READY)
        if (!help_one(ah))
            pthread_cond_wait(&ah->cv, &ah->mu);
    pthread_mutex_unlock(&ah->mu);
}

/* ------------------------------------------------------------------ */
/* The verifier's state, kept between incremental verifications          */
/*
 * 'V' 1 | seq u64 | head 32 | parties u32 | keys u32, then per party:
 * name-length u8, name, pseq u64, hash 32, regulator u8; per key: id-hex
 * length u8, id hex, party length u8, party, pubkey 32, revoked_at u64.
 * Integers big-endian.
 */
struct buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
};

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + n)
            nc *= 2;
        uint8_t *p = realloc(b->p, nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    be64_put(x, v);
    put(b, x, 8);
}

static void put_str(struct buf *b, const char *s)
{
    uint8_t n = (uint8_t)strlen(s); /* ids are at most 71 bytes */
    put(b, &n, 1);
    put(b, s, n);
}

static int save_party(const char *name, void *val, void *ctx)
{
    const struct pstate *ps = val;
    uint8_t reg = (uint8_t)ps->regulator;
    put_str(ctx, name);
    put64(ctx, ps->pseq);
    put(ctx, ps->hash, TRACE_HASH_LEN);
    put(ctx, &reg, 1);
    return 0;
}

static int save_key(const char *hex, void *val, void *ctx)
{
    const struct kstate *k = val;
    put_str(ctx, hex);
    put_str(ctx, k->party);
    put(ctx, k->pub, TRACE_PUBKEY_LEN);
    put64(ctx, k->revoked_at);
    return 0;
}

static int count_one(const char *key, void *val, void *ctx)
{
    (void)key;
    (void)val;
    (*(uint32_t *)ctx)++;
    return 0;
}

static int save_state(struct verifier *v, uint64_t seq, const uint8_t *head,
                      uint8_t **out, size_t *out_len)
{
    struct buf b = {0};
    uint32_t np = 0, nk = 0;
    uint8_t n4[4];

    strmap_each(v->parties, count_one, &np);
    strmap_each(v->keys, count_one, &nk);
    put(&b, "V\1", 2);
    put64(&b, seq);
    put(&b, head, TRACE_HASH_LEN);
    n4[0] = (uint8_t)(np >> 24), n4[1] = (uint8_t)(np >> 16);
    n4[2] = (uint8_t)(np >> 8), n4[3] = (uint8_t)np;
    put(&b, n4, 4);
    n4[0] = (uint8_t)(nk >> 24), n4[1] = (uint8_t)(nk >> 16);
    n4[2] = (uint8_t)(nk >> 8), n4[3] = (uint8_t)nk;
    put(&b, n4, 4);
    strmap_each(v->parties, save_party, &b);
    strmap_each(v->keys, save_key, &b);
    if (b.oom) {
        free(b.p);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    *out = b.p;
    *out_len = b.n;
    return TRACE_OK;
}

struct reader {
    const uint8_t *p;
    size_t n, o;
    int bad;
};

static const uint8_t *take(struct reader *r, size_t n)
{
    if (r->bad || r->n - r->o < n) {
        r->bad = 1;
        return NULL;
    }
    r->o += n;
    return r->p + r->o - n;
}

static int take_str(struct reader *r, char *out, size_t cap)
{
    const uint8_t *n = take(r, 1), *s;
    if (!n || *n >= cap || !(s = take(r, *n)))
        return r->bad = 1, -1;
    memcpy(out, s, *n);
    out[*n] = '\0';
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Loads the kept state; 0 if there is none or it does not parse (the
 * caller then verifies from the first entry). */
static int load_state(struct verifier *v, MDB_txn *txn, uint64_t *seq,
                      uint8_t head[TRACE_HASH_LEN])
{
    MDB_val k = {strlen(VERIFY_STATE_KEY), VERIFY_STATE_KEY}, val;
    struct reader r;
    const uint8_t *p;
    uint32_t np, nk;

    if (mdb_get(txn, v->l->dbi_meta, &k, &val) != 0)
        return 0;
    r = (struct reader){val.mv_data, val.mv_size, 0, 0};
    if (!(p = take(&r, 2 + 8 + TRACE_HASH_LEN + 8)) || memcmp(p, "V\1", 2) != 0)
        return 0;
    *seq = be64_get(p + 2);
    memcpy(head, p + 10, TRACE_HASH_LEN);
    np = get32(p + 42);
    nk = get32(p + 46);
    for (uint32_t i = 0; i < np && !r.bad; i++) {
        char name[80];
        struct pstate *ps;
        if (take_str(&r, name, sizeof(name)) || !(p = take(&r, 41)) ||
            !(ps = strmap_get(v->parties, name, 1)))
            return 0;
        ps->pseq = be64_get(p);
        memcpy(ps->hash, p + 8, TRACE_HASH_LEN);
        ps->regulator = p[40];
    }
    for (uint32_t i = 0; i < nk && !r.bad; i++) {
        char hex[2 * TRACE_KEY_ID_LEN + 1];
        struct kstate *ks;
        if (take_str(&r, hex, sizeof(hex)) ||
            !(ks = strmap_get(v->keys, hex, 1)) ||
            take_str(&r, ks->party, sizeof(ks->party)) ||
            !(p = take(&r, TRACE_PUBKEY_LEN + 8)))
            return 0;
        memcpy(ks->pub, p, TRACE_PUBKEY_LEN);
        ks->revoked_at = be64_get(p + TRACE_PUBKEY_LEN);
    }
    return !r.bad && r.o == r.n;
}

int trace_ledger_verify(trace_ledger *l, trace_verify_result *res,
                        trace_progress_fn progress, void *ctx)
{
    return verify_run(l, res, progress, NULL, ctx, 0, NULL, NULL, NULL, 0);
}

int trace_ledger_verify_stoppable(trace_ledger *l, trace_verify_result *res,
                                  trace_progress_fn progress,
                                  int (*stop)(void *ctx), void *ctx)
{
    return verify_run(l, res, progress, stop, ctx, 0, NULL, NULL, NULL, 0);
}

int trace_ledger_verify_checkpoint(trace_ledger *l, trace_verify_result *res,
                                   const char *note, size_t len,
                                   trace_progress_fn progress,
                                   int (*stop)(void *ctx), void *ctx)
{
    return verify_run(l, res, progress, stop, ctx, 0, NULL, NULL, note, len);
}

int ledger_verify_from(trace_ledger *l, trace_verify_result *res, int resume,
                       uint8_t **state, size_t *state_len)
{
    return verify_run(l, res, NULL, NULL, NULL, resume, state, state_len, NULL,
                      0);
}

static int verify_run(trace_ledger *l, trace_verify_result *res,
                      trace_progress_fn progress, int (*stop)(void *ctx),
                      void *ctx, int resume, uint8_t **state, size_t *state_len,
                      const char *ext, size_t ext_len)
{
    struct tree_check *tc = NULL;
    unsigned tree_skip = 0;
    trace_verify_result local;
    struct verifier v = {0};
    uint8_t head[TRACE_HASH_LEN] = {0}, stored[TRACE_HASH_LEN];
    uint64_t seq = 0, size = 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    struct ahead ah = {0};
    int rc, op = MDB_FIRST, end = MDB_NOTFOUND;

    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    v.l = l;
    v.res = res;
    v.parties = strmap_new(sizeof(struct pstate));
    v.keys = strmap_new(sizeof(struct kstate));
    v.a = arena_new(64u << 20);
    v.sq = malloc(sizeof(*v.sq));
    if (!v.parties || !v.keys || !v.a || !v.sq) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    sigq_start(v.sq);
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)) ||
        (rc = mdb_cursor_open(txn, l->dbi_journal, &cur))) {
        rc = trace_fail_mdb(rc, "journal");
        goto out;
    }
    if ((rc = ledger_head_get(txn, l, &size, stored)) != TRACE_OK)
        goto out;
    if (resume && load_state(&v, txn, &seq, head) && seq > 0 && seq <= size) {
        /* the entry verified last must still be the one verified; if it
         * is not (or the kept state is wrong), verify everything: the
         * full pass then says what is wrong, or writes a good state */
        uint8_t kb[8], leaf[TRACE_HASH_LEN];
        be64_put(kb, seq);
        key = (MDB_val){8, kb};
        if (mdb_cursor_get(cur, &key, &val, MDB_SET_KEY) == 0) {
            leaf_hash(leaf, val.mv_data, val.mv_size);
            if (memcmp(leaf, head, TRACE_HASH_LEN) == 0)
                op = MDB_NEXT;
        }
    }
    if (resume && op == MDB_FIRST) { /* from the start, with a clean state */
        strmap_free(v.parties);
        strmap_free(v.keys);
        v.parties = strmap_new(sizeof(struct pstate));
        v.keys = strmap_new(sizeof(struct kstate));
        seq = 0;
        memset(head, 0, sizeof(head));
        if (!v.parties || !v.keys) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
    }
    /* the Merkle tree, its stored subtrees and checkpoints, alongside */
    if ((rc = tree_check_begin(&tc, txn, l, seq, ext, ext_len)) != TRACE_OK) {
        if (rc == TRACE_EVERIFY)
            rc = bad(&v, 0, "%s", trace_error_last());
        goto out;
    }
    if ((rc = ahead_start(&ah)) != TRACE_OK)
        goto out;
    for (size_t filled = 0, checked = 0, eof = 0;;) {
        /* read up to N_BLOCKS blocks ahead of the checks */
        while (!eof && filled - checked < N_BLOCKS) {
            struct block *b = &ah.b[filled % N_BLOCKS];
            size_t bytes = 0;
            b->n = 0;
            while (b->n < BLOCK_ENTRIES && bytes < BLOCK_BYTES) {
                if ((end = mdb_cursor_get(cur, &key, &val, op)) != 0) {
                    eof = 1;
                    break;
                }
                op = MDB_NEXT;
                b->x[b->n].key = key;
                b->x[b->n++].val = val;
                bytes += val.mv_size;
            }
            if (b->n == 0)
                break;
            pthread_mutex_lock(&ah.mu);
            b->state = B_FILLED;
            pthread_cond_broadcast(&ah.cv);
            pthread_mutex_unlock(&ah.mu);
            filled++;
        }
        if (checked == filled)
            break;
        struct block *b = &ah.b[checked % N_BLOCKS];
        block_wait(&ah, b);
        for (size_t i = 0; i < b->n; i++) {
            if ((rc = check_entry(&v, &b->x[i], ++seq, head)) != TRACE_OK)
                goto out;
            /* the tree takes 16 leaves at once, once all 16 entries
             * passed their own checks */
            if (tree_skip) {
                if (--tree_skip == 0)
                    rc = tree_check_add16(tc, b->x[i - 15].h16);
            } else if (b->x[i].has_h16 && tree_check_can16(tc)) {
                tree_skip = 15;
            } else {
                rc = tree_check_leaf(tc, b->x[i].leaf);
            }
            if (rc != TRACE_OK) {
                if (rc == TRACE_EVERIFY)
                    rc = bad(&v, seq, "%s", trace_error_last());
                goto out;
            }
            res->entries++;
            if (progress && (seq & 0xffff) == 0)
                progress(seq, size, ctx);
            if ((seq & 0xfff) == 0) {
                if (stop && stop(ctx)) {
                    rc = trace_fail(TRACE_EUNAVAIL,
                                    "verification stopped at entry %llu",
                                    (unsigned long long)seq);
                    goto out;
                }
            }
        }
        /* only this thread fills a free block, but the helper reads the
         * states under the lock */
        pthread_mutex_lock(&ah.mu);
        b->state = B_FREE;
        pthread_mutex_unlock(&ah.mu);
        checked++;
    }
    if (end != MDB_NOTFOUND) {
        rc = bad(&v, seq + 1, "storage cannot be read: %s", mdb_strerror(end));
        goto out;
    }
    sigq_finish(v.sq);
    if (v.sq->bad_seq) {
        rc = TRACE_EVERIFY; /* named below, at out */
        goto out;
    }
    if (v.open) {
        char who[72] = "";
        strmap_each(v.parties, open_party, who);
        rc = bad(&v, seq, "the last entries of %s carry no signature", who);
        goto out;
    }
    if (size == seq && seq > 0 && memcmp(stored, head, TRACE_HASH_LEN)) {
        rc = bad(&v, seq, "record does not match the stored head (altered)");
        goto out;
    }
    if (size != seq) {
        rc = bad(&v, 0,
                 "stored head (%llu entries) does not match the "
                 "journal (%llu entries)",
                 (unsigned long long)size, (unsigned long long)seq);
        goto out;
    }
    if ((rc = tree_check_end(tc, &res->checkpoints)) != TRACE_OK) {
        if (rc == TRACE_EVERIFY)
            rc = bad(&v, 0, "%s", trace_error_last());
        goto out;
    }
    if (progress)
        progress(seq, size, ctx);
    rc = state ? save_state(&v, seq, head, state, state_len) : TRACE_OK;
out:
    if (v.sq) {
        /* a signature that failed before the fault found here (or with
         * none found) is the first bad entry */
        sigq_finish(v.sq);
        if ((rc == TRACE_OK || rc == TRACE_EVERIFY) && v.sq->bad_seq &&
            (rc == TRACE_OK || !res->bad_seq || v.sq->bad_seq < res->bad_seq))
            rc = bad(&v, v.sq->bad_seq,
                     "bad signature over the %u entries ending here",
                     v.sq->bad_count);
        free(v.sq);
    }
    ahead_stop(&ah); /* before the transaction its blocks point into */
    tree_check_free(tc);
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        ledger_txn_abort(l, txn);
    if (v.parties)
        strmap_each(v.parties, free_digest, NULL);
    strmap_free(v.parties);
    strmap_free(v.keys);
    arena_free(v.a);
    return rc;
}
