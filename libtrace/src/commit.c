/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commit.c - appends of batches signed elsewhere: the group digest a
 * client signs, a single signed batch, and the group commit a daemon
 * runs (many clients' batches, each in a nested transaction of one
 * durable LMDB commit; groups either runs of one party's consecutive
 * events or, with TRACE_APPEND_PARTY_GROUPS, one per party).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"

int trace_group_digest(const char *party,
                       const uint8_t key_id[TRACE_KEY_ID_LEN],
                       const uint8_t *const *events, const size_t *lens,
                       size_t n, uint8_t digest[32])
{
    sha256_stream *s;
    uint8_t h[TRACE_HASH_LEN];

    if (n == 0 || n > UINT32_MAX)
        return trace_fail(TRACE_EINVAL, "a signed group holds 1 to 2^32-1 "
                                        "events");
    if (strlen(party) > 255)
        return trace_fail(TRACE_EINVAL, "party id too long");
    if (!(s = sha256_stream_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    group_digest_begin(s, party, key_id);
    for (size_t i = 0; i < n; i++) {
        sha256(h, events[i], lens[i]);
        sha256_stream_update(s, h, sizeof(h));
    }
    group_digest_end(s, (uint32_t)n, digest);
    sha256_stream_free(s);
    return TRACE_OK;
}

/* Digest of events [first, first + n) of a batch, all by `party`. */
static int batch_range_digest(const trace_batch *b, size_t first, size_t n,
                              const char *party,
                              const uint8_t key_id[TRACE_KEY_ID_LEN],
                              uint8_t digest[32])
{
    const uint8_t **ev;
    size_t *lens;
    int rc;

    if (n == 0 || first > b->n || b->n - first < n)
        return trace_fail(TRACE_EINVAL, "a signed group holds 1 to 2^32-1 "
                                        "events of the batch");
    for (size_t i = first; i < first + n; i++)
        if (strcmp(b->items[i].ev->party, party) != 0)
            return trace_fail(TRACE_EPERM,
                              "line %lu: recorded by %s, not %s: a signed "
                              "group holds one party's events",
                              b->items[i].lineno, b->items[i].ev->party, party);
    ev = malloc(n * sizeof(*ev));
    lens = malloc(n * sizeof(*lens));
    if (!ev || !lens) {
        free(ev);
        free(lens);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        ev[i] = b->items[first + i].bytes;
        lens[i] = b->items[first + i].len;
    }
    rc = trace_group_digest(party, key_id, ev, lens, n, digest);
    free(ev);
    free(lens);
    return rc;
}

int trace_batch_digest(const trace_batch *b, const char *party,
                       const uint8_t key_id[TRACE_KEY_ID_LEN],
                       uint8_t digest[32])
{
    return batch_range_digest(b, 0, b->n, party, key_id, digest);
}

/* The registered public key with this id, and whether it is `party`'s. */
static int registered_key(MDB_txn *txn, const trace_ledger *l,
                          const char *party,
                          const uint8_t key_id[TRACE_KEY_ID_LEN],
                          uint8_t pub[TRACE_PUBKEY_LEN])
{
    MDB_val k = {TRACE_KEY_ID_LEN, (void *)key_id}, v;
    size_t plen = strlen(party);
    int rc = mdb_get(txn, l->dbi_keys, &k, &v);

    if (rc == MDB_NOTFOUND ||
        (rc == 0 && !(v.mv_size == plen + 1 + TRACE_PUBKEY_LEN &&
                      memcmp(v.mv_data, party, plen + 1) == 0)))
        return trace_fail(TRACE_EPERM,
                          "the signing key is not registered to "
                          "%s",
                          party);
    if (rc)
        return trace_fail_mdb(rc, "keys");
    memcpy(pub, (uint8_t *)v.mv_data + plen + 1, TRACE_PUBKEY_LEN);
    return TRACE_OK;
}

/* Group commits ------------------------------------------------------- */

struct trace_commit {
    struct writer w;
    trace_append_result total; /* what every added batch appended */
    trace_append_result scratch;
    int broken; /* a failure left the transaction unusable */
};

int trace_commit_begin(trace_commit **out, trace_ledger *l)
{
    trace_commit *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = writer_begin(&c->w, l, &c->scratch)) != TRACE_OK) {
        writer_end(&c->w);
        free(c);
        return rc;
    }
    *out = c;
    return TRACE_OK;
}

/* A signature checked ahead, with the key registered before the batch. */
struct preverified {
    const uint8_t *sig;
    uint8_t pub[TRACE_PUBKEY_LEN];
    uint8_t digest[32];
    int have, ok;
};

struct prever_job {
    struct preverified *p;
    size_t from, to;
};

static void *preverify_run(void *arg)
{
    struct prever_job *j = arg;

    for (size_t i = j->from; i < j->to; i++)
        if (j->p[i].have)
            j->p[i].ok = trace_sig_verify(j->p[i].pub, j->p[i].digest, 32,
                                          j->p[i].sig) == TRACE_OK;
    return NULL;
}

/* Checks p[n]'s signatures, on a second thread too when there are many
 * (a bulk request carries a group for each of hundreds of parties). */
static void preverify(struct preverified *p, size_t n)
{
    struct prever_job a = {p, 0, n}, b = {p, n / 2, n};
    pthread_t t;

    if (n >= 16 && pthread_create(&t, NULL, preverify_run, &b) == 0) {
        a.to = n / 2;
        preverify_run(&a);
        pthread_join(t, NULL);
    } else {
        preverify_run(&a);
    }
}

/* Checks a group's signature over `digest` with the key registered to
 * its party now; `lineno` (of its first event) names it in messages.  A
 * signature `pre` found good with the same key is not checked again. */
static int check_group_sig(struct writer *w, const trace_signed_group *g,
                           const uint8_t digest[32], unsigned long lineno,
                           const struct preverified *pre)
{
    uint8_t pub[TRACE_PUBKEY_LEN];
    int rc;

    if ((rc = registered_key(w->txn, w->l, g->party, g->key_id, pub)))
        return rc;
    if (pre && pre->ok && memcmp(pre->pub, pub, sizeof(pub)) == 0)
        return TRACE_OK;
    if (trace_sig_verify(pub, digest, 32, g->sig) != TRACE_OK)
        return trace_fail(TRACE_EPERM,
                          "line %lu: the signature does not verify with "
                          "%s's key",
                          lineno, g->party);
    return TRACE_OK;
}

/* Groups per party (TRACE_APPEND_PARTY_GROUPS): each group covers every
 * event of its party in the batch, in batch order. */
static int commit_party_groups(struct writer *w, trace_batch *b,
                               const trace_signed_group *groups,
                               size_t n_groups, trace_append_result *res)
{
    strmap *gi = strmap_new(sizeof(size_t));
    size_t *of = calloc(b->n + 1, sizeof(*of)), *pos = NULL, *fill = NULL;
    uint64_t *dups = NULL;
    const uint8_t **ev = NULL;
    size_t *lens = NULL, *cnt = NULL;
    struct preverified *pre = NULL;
    int rc = TRACE_OK;

    if (!gi || !of || !(cnt = calloc(n_groups + 1, sizeof(*cnt))) ||
        !(pos = calloc(n_groups + 1, sizeof(*pos))) ||
        !(fill = calloc(n_groups + 1, sizeof(*fill))) ||
        !(dups = calloc(n_groups + 1, sizeof(*dups))) ||
        !(ev = calloc(b->n + 1, sizeof(*ev))) ||
        !(lens = calloc(b->n + 1, sizeof(*lens)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t g = 0; g < n_groups; g++) {
        size_t *x = strmap_get(gi, groups[g].party, 1);
        if (!x) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        if (*x) {
            rc = trace_fail(TRACE_EINVAL, "two signed groups of %s",
                            groups[g].party);
            goto out;
        }
        *x = g + 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        size_t *x = strmap_get(gi, b->items[i].ev->party, 0);
        if (!x || !*x) {
            rc = trace_fail(TRACE_EPERM,
                            "line %lu: no signature of %s covers this event",
                            b->items[i].lineno, b->items[i].ev->party);
            goto out;
        }
        of[i] = *x - 1;
        cnt[of[i]]++;
    }
    /* the events of each group, in batch order, side by side */
    for (size_t g = 1; g < n_groups; g++)
        pos[g] = pos[g - 1] + cnt[g - 1];
    for (size_t i = 0; i < b->n; i++) {
        size_t k = pos[of[i]] + fill[of[i]]++;
        ev[k] = b->items[i].bytes;
        lens[k] = b->items[i].len;
    }
    for (size_t g = 0; g < n_groups; g++) {
        if (cnt[g] != groups[g].count) {
            rc = trace_fail(TRACE_EINVAL,
                            "the signed group of %s counts %zu events, the "
                            "batch holds %zu of them",
                            groups[g].party, groups[g].count, cnt[g]);
            goto out;
        }
    }
    /* the signatures are checked ahead, on both cores, with the keys
     * registered before the batch; then, in order, as if one at a time */
    if (!(pre = calloc(n_groups + 1, sizeof(*pre)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t g = 0; g < n_groups; g++) {
        if ((rc = trace_group_digest(groups[g].party, groups[g].key_id,
                                     ev + pos[g], lens + pos[g], cnt[g],
                                     pre[g].digest)) != TRACE_OK)
            goto out;
        pre[g].sig = groups[g].sig;
        pre[g].have = registered_key(w->txn, w->l, groups[g].party,
                                     groups[g].key_id, pre[g].pub) == TRACE_OK;
    }
    preverify(pre, n_groups);
    for (size_t i = 0; i < b->n; i++) {
        const trace_signed_group *g = &groups[of[i]];
        uint64_t before = res->duplicates;
        /* a group's signature is checked at its first event (the first
         * of its events side by side), with the keys registered by the
         * events before it: a batch may register the key that signs its
         * later events */
        if (ev[pos[of[i]]] == b->items[i].bytes &&
            (rc = check_group_sig(w, g, pre[of[i]].digest, b->items[i].lineno,
                                  &pre[of[i]])))
            goto out;
        w->presig = g->sig;
        w->presig_key_id = g->key_id;
        if ((rc = process(w, &b->items[i], NULL, g->party, 0))) {
            trace_fail_line(rc, b->items[i].lineno);
            goto out;
        }
        dups[of[i]] += res->duplicates - before;
    }
    /* a signature covers its whole group: all of it new, or (a retry)
     * all of it recorded already */
    for (size_t g = 0; g < n_groups; g++)
        if (dups[g] && dups[g] != cnt[g]) {
            rc = trace_fail(TRACE_EEXIST,
                            "%llu of the %zu events %s signed together are "
                            "recorded already: sign and send only the new "
                            "ones",
                            (unsigned long long)dups[g], cnt[g],
                            groups[g].party);
            goto out;
        }
    rc = window_flush(w);
out:
    w->presig = NULL;
    w->presig_key_id = NULL;
    strmap_free(gi);
    free(of);
    free(cnt);
    free(pos);
    free(fill);
    free(dups);
    free(ev);
    free(lens);
    free(pre);
    return rc;
}

/* The groups of one request, inside the child transaction: each group
 * a run of consecutive events of one party (the first wire protocol), or
 * with TRACE_APPEND_PARTY_GROUPS one group per party. */
static int commit_groups(struct writer *w, trace_batch *b,
                         const trace_signed_group *groups, size_t n_groups,
                         unsigned flags, trace_append_result *res)
{
    size_t first = 0;
    int rc;

    if (flags & TRACE_APPEND_PARTY_GROUPS) {
        if ((rc = commit_party_groups(w, b, groups, n_groups, res)))
            return rc;
        return writer_put_heads(w);
    }
    for (size_t gi = 0; gi < n_groups; gi++) {
        const trace_signed_group *g = &groups[gi];
        uint64_t dups = res->duplicates;
        uint8_t digest[32];

        if ((rc = batch_range_digest(b, first, g->count, g->party, g->key_id,
                                     digest)) != TRACE_OK ||
            (rc = check_group_sig(w, g, digest, b->items[first].lineno, NULL)))
            return rc;
        w->presig = g->sig;
        w->presig_key_id = g->key_id;
        w->auth_party[0] = '\0';
        for (size_t i = first; i < first + g->count; i++) {
            if ((rc = process(w, &b->items[i], NULL, g->party, 0))) {
                trace_fail_line(rc, b->items[i].lineno);
                return rc;
            }
        }
        /* the signature covers the whole group: all of it new, or (a
         * retry) all of it recorded already */
        dups = res->duplicates - dups;
        if (dups && dups != g->count)
            return trace_fail(TRACE_EEXIST,
                              "line %lu: %llu of the %zu events signed "
                              "together are recorded already: sign and send "
                              "only the new ones",
                              b->items[first].lineno, (unsigned long long)dups,
                              g->count);
        /* each group of this protocol is a window of its own */
        if ((rc = window_flush(w)) != TRACE_OK)
            return rc;
        w->presig = NULL;
        w->presig_key_id = NULL;
        first += g->count;
    }
    if (first != b->n)
        return trace_fail(TRACE_EINVAL,
                          "the signed groups cover %zu of the "
                          "batch's %zu events",
                          first, b->n);
    return writer_put_heads(w);
}

int trace_commit_add(trace_commit *c, trace_batch *b,
                     const trace_signed_group *groups, size_t n_groups,
                     unsigned flags, trace_append_result *res)
{
    struct writer *w = &c->w;
    trace_append_result local;
    uint8_t head[TRACE_HASH_LEN];
    uint64_t size = w->size;
    MDB_txn *parent = w->txn, *child = NULL;
    int rc, rc2;

    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (c->broken)
        return trace_fail(TRACE_EUNAVAIL, "the group commit failed earlier");
    if (flags & TRACE_APPEND_PROVISION_KEYS)
        return trace_fail(TRACE_EINVAL, "a signed batch cannot provision "
                                        "keys");
    if (n_groups == 0 || b->n == 0)
        return trace_fail(TRACE_EINVAL, "nothing to append");
    memcpy(head, w->head, TRACE_HASH_LEN);
    if ((rc = mdb_txn_begin(w->l->env, parent, 0, &child))) {
        c->broken = 1;
        return trace_fail_mdb(rc, "begin");
    }
    w->txn = child;
    w->res = res;
    w->historic = (flags & TRACE_APPEND_HISTORIC) != 0;
    w->checks = (flags & TRACE_APPEND_STRICT)  ? WRITER_CHECKS_STRICT
                : (flags & TRACE_APPEND_CHECK) ? WRITER_CHECKS
                                               : 0;
    rc = commit_groups(w, b, groups, n_groups, flags, res);
    if (rc == TRACE_OK && (rc = mdb_txn_commit(child)) != 0) {
        rc = trace_fail_mdb(rc, "commit");
        c->broken = 1; /* a failed child commit is not recoverable */
        child = NULL;
    } else if (rc == TRACE_OK) {
        child = NULL;
    }
    if (child)
        mdb_txn_abort(child);
    w->txn = parent;
    w->res = &c->scratch;
    if (rc != TRACE_OK) {
        /* a full map poisons the parent transaction too */
        if (last_mdb_error() == MDB_MAP_FULL)
            c->broken = 1;
        memset(res, 0, sizeof(*res));
        if ((rc2 = writer_rewind(w, size, head)) != TRACE_OK) {
            c->broken = 1;
            return rc2;
        }
        return rc;
    }
    c->total.appended += res->appended;
    c->total.duplicates += res->duplicates;
    c->total.warnings += res->warnings;
    if (res->first_seq && !c->total.first_seq)
        c->total.first_seq = res->first_seq;
    if (res->last_seq)
        c->total.last_seq = res->last_seq;
    return TRACE_OK;
}

void trace_commit_on_finding(trace_commit *c,
                             int (*fn)(void *ctx, unsigned long lineno,
                                       const struct trace_finding *f),
                             void *ctx)
{
    c->w.on_finding = fn;
    c->w.finding_ctx = ctx;
}

int trace_commit_end(trace_commit *c, trace_append_result *total)
{
    struct writer *w = &c->w;
    int rc;

    if (total)
        memset(total, 0, sizeof(*total));
    if (c->broken)
        return trace_fail(TRACE_EUNAVAIL, "the group commit failed earlier; "
                                          "nothing of it was stored");
    if ((rc = ledger_head_put(w->txn, w->l, w->size, w->head)) != TRACE_OK ||
        (rc = checkpoint_commit(w->txn, w->l, w->size)) != TRACE_OK)
        return rc;
    rc = ledger_txn_commit(w->l, w->txn);
    w->txn = NULL;
    if (rc)
        return ledger_commit_failed(w->l, rc);
    if (total)
        *total = c->total;
    return TRACE_OK;
}

void trace_commit_free(trace_commit *c)
{
    if (!c)
        return;
    writer_end(&c->w); /* aborts what was not committed */
    free(c);
}

int trace_ledger_append_signed(trace_ledger *l, trace_batch *b,
                               const char *party,
                               const uint8_t key_id[TRACE_KEY_ID_LEN],
                               const uint8_t sig[TRACE_SIG_LEN], unsigned flags,
                               trace_append_result *res)
{
    trace_signed_group g;
    trace_commit *c = NULL;
    trace_append_result local;
    int rc;

    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (strlen(party) >= sizeof(g.party))
        return trace_fail(TRACE_EINVAL, "party id too long");
    memset(&g, 0, sizeof(g));
    snprintf(g.party, sizeof(g.party), "%s", party);
    memcpy(g.key_id, key_id, TRACE_KEY_ID_LEN);
    memcpy(g.sig, sig, TRACE_SIG_LEN);
    g.count = b->n;
    for (int attempt = 0;; attempt++) {
        if ((rc = trace_commit_begin(&c, l)) == TRACE_OK &&
            (rc = trace_commit_add(c, b, &g, 1, flags, res)) == TRACE_OK)
            rc = trace_commit_end(c, NULL);
        trace_commit_free(c);
        c = NULL;
        if (rc != TRACE_EFULL || last_mdb_error() != MDB_MAP_FULL ||
            attempt == 8 || ledger_grow_map(l) != TRACE_OK)
            break;
    }
    if (rc != TRACE_OK)
        memset(res, 0, sizeof(*res));
    return rc;
}
