/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prove.c - offline proof bundles (SPEC 8) and their check.
 *
 * An event bundle ("bundle": "trace.v1.event") carries, for one event:
 *   checkpoint             the latest signed note (with cosignatures)
 *   tree_size, leaf_index, leaf_hash (hex), inclusion ([hex])
 *   entry                  base64 of the exact Entry bytes (the leaf)
 *   event                  the event as JSON; event_bytes its stored bytes
 *   signature              what checks the recorder's signature over it:
 *                          party, key_id (hex), pubkey (base64), group
 *                          (hex SHA-256 of each event of the signature
 *                          group, in order), position (this event's),
 *                          sig (base64), signer (the group's closing
 *                          entry: leaf_index, entry, inclusion)
 *   registration           the `party` entry that registered pubkey to
 *                          the party (leaf_index, entry, inclusion)
 * A receipt ("trace.v1.receipt", trace/proof.h) carries a write's
 * entries with their inclusion proofs, per commit.
 * A history bundle ("trace.v1.history") carries every entry of a party's
 * chain with its inclusion proof, and each key the chain was signed
 * with and its registration.  A consistency bundle ("trace.v1.
 * consistency") carries two checkpoints and the proof between them.
 *
 * The check needs nothing but the bundle and the keys given: every
 * base64, hex and protobuf field is bounded and decoded defensively.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "trace/proof.h"

#define MAX_BUNDLE (256u << 20)

/* Proofs of the stored tree --------------------------------------------- */

/* A read transaction, once `size` is known to be the journal's or less. */
static int with_tree(trace_ledger *l, uint64_t size, MDB_txn **txn)
{
    uint8_t head[32];
    uint64_t have;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, txn))) {
        *txn = NULL;
        return trace_fail_mdb(rc, "begin");
    }
    if ((rc = ledger_head_get(*txn, l, &have, head)) != TRACE_OK) {
        ledger_txn_abort(l, *txn);
        return rc;
    }
    if (size > have) {
        ledger_txn_abort(l, *txn);
        return trace_fail(TRACE_EINVAL,
                          "the journal has %llu entries, not %llu",
                          (unsigned long long)have, (unsigned long long)size);
    }
    return TRACE_OK;
}

int trace_inclusion_proof(trace_ledger *l, uint64_t index, uint64_t size,
                          uint8_t (*proof)[32], size_t *n)
{
    MDB_txn *txn;
    int rc;

    if ((rc = with_tree(l, size, &txn)) != TRACE_OK)
        return rc;
    rc = tree_inclusion(txn, l, index, size, proof, n);
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_consistency_proof(trace_ledger *l, uint64_t old_size,
                            uint64_t new_size, uint8_t (*proof)[32], size_t *n)
{
    MDB_txn *txn;
    int rc;

    if ((rc = with_tree(l, new_size, &txn)) != TRACE_OK)
        return rc;
    rc = tree_consistency(txn, l, old_size, new_size, proof, n);
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_tree_root(trace_ledger *l, uint64_t size, uint8_t root[32])
{
    MDB_txn *txn;
    int rc;

    if ((rc = with_tree(l, size, &txn)) != TRACE_OK)
        return rc;
    rc = tree_root(txn, l, size, root);
    ledger_txn_abort(l, txn);
    return rc;
}

/* Building ------------------------------------------------------------ */

static json_t *hex_json(const uint8_t *h, size_t n)
{
    char buf[2 * 64 + 1];
    hex_encode(buf, h, n);
    return json_string(buf);
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *buf = malloc(cap);
    json_t *j;

    if (!buf)
        return NULL;
    base64_encode(buf, cap, p, n);
    j = json_string(buf);
    free(buf);
    return j;
}

/* leaf_index, entry, inclusion of journal entry `seq` in the tree of
 * `size`; its decoded Entry in *out if not NULL. */
static int leaf_json(MDB_txn *txn, trace_ledger *l, arena *a, uint64_t seq,
                     uint64_t size, json_t *obj, Trace__V1__Entry **out)
{
    uint8_t kb[8], proof[TREE_MAX_PROOF][32], leaf[32];
    MDB_val k = {8, kb}, v;
    json_t *arr;
    size_t n;
    int rc;

    be64_put(kb, seq);
    if ((rc = mdb_get(txn, l->dbi_journal, &k, &v)))
        return trace_fail_mdb(rc, "journal");
    if ((rc = tree_inclusion(txn, l, seq - 1, size, proof, &n)) != TRACE_OK)
        return rc;
    leaf_hash(leaf, v.mv_data, v.mv_size);
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, hex_json(proof[i], 32));
    json_object_set_new(obj, "leaf_index", json_integer((json_int_t)seq - 1));
    json_object_set_new(obj, "leaf_hash", hex_json(leaf, 32));
    json_object_set_new(obj, "inclusion", arr);
    json_object_set_new(obj, "entry", b64_json(v.mv_data, v.mv_size));
    if (out) {
        *out =
            trace__v1__entry__unpack(arena_allocator(a), v.mv_size, v.mv_data);
        if (!*out)
            return trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                              (unsigned long long)seq);
    }
    return TRACE_OK;
}

/* The latest checkpoint, parsed, and its note into the bundle. */
static int bundle_checkpoint(MDB_txn *txn, trace_ledger *l, json_t *obj,
                             trace_checkpoint *cp)
{
    char *note;
    size_t len;
    int rc;

    if ((rc = checkpoint_note_txn(txn, l, 0, &note, &len)) != TRACE_OK)
        return rc;
    rc = trace_checkpoint_parse(cp, note, len);
    if (rc == TRACE_OK) {
        json_object_set_new(obj, "origin", json_string(cp->origin));
        json_object_set_new(obj, "tree_size",
                            json_integer((json_int_t)cp->size));
        json_object_set_new(obj, "checkpoint", json_stringn(note, len));
    }
    free(note);
    return rc;
}

/* The `party` entry that registered pubkey to `party`: searched in the
 * chain of the regulator that registered the party, then everywhere. */
static int find_registration(MDB_txn *txn, trace_ledger *l, arena *a,
                             const char *party, const uint8_t pub[32],
                             uint64_t limit, uint64_t *seq)
{
    Trace__V1__PartyState *st;
    const char *reg = NULL;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, pass;

    if (party_state_get(txn, l, a, party, &st) == TRACE_OK)
        reg = st->registered_by;
    for (pass = reg ? 0 : 1; pass < 2; pass++) {
        if ((rc = mdb_cursor_open(txn, pass ? l->dbi_journal : l->dbi_pchain,
                                  &cur)))
            return trace_fail_mdb(rc, "cursor");
        if (pass == 0) {
            k = (MDB_val){strlen(reg), (void *)reg};
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        }
        for (; rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, pass ? MDB_NEXT : MDB_NEXT_DUP)) {
            Trace__V1__Entry *e;
            Trace__V1__Event *ev;
            uint64_t s = pass ? be64_get(k.mv_data) : be64_get(v.mv_data);
            if (s > limit)
                break;
            if (pass == 0) {
                if (entry_get(txn, l, a, s, &e) != TRACE_OK)
                    continue;
            } else if (!(e = trace__v1__entry__unpack(arena_allocator(a),
                                                      v.mv_size, v.mv_data))) {
                continue;
            }
            ev = event_decode(a, e->event.data, e->event.len);
            if (ev && ev->body_case == TRACE__V1__EVENT__BODY_PARTY_BODY &&
                strcmp(ev->party_body->subject, party) == 0 &&
                ev->party_body->has_pubkey &&
                ev->party_body->pubkey.len == 32 &&
                memcmp(ev->party_body->pubkey.data, pub, 32) == 0) {
                *seq = s;
                mdb_cursor_close(cur);
                return TRACE_OK;
            }
        }
        mdb_cursor_close(cur);
    }
    return trace_fail(TRACE_ENOTFOUND, "no registration of %s's key found",
                      party);
}

/* The signature group of the party's entry `seq`: the group's event
 * hashes, this entry's position, and the closing entry's seq. */
static int find_group(MDB_txn *txn, trace_ledger *l, arena *a,
                      const char *party, uint64_t seq, json_t *group,
                      size_t *position, uint64_t *closing,
                      Trace__V1__Entry **closer)
{
    MDB_cursor *cur;
    uint8_t sb[8];
    MDB_val k = {strlen(party), (void *)party}, v = {8, sb};
    Trace__V1__Entry *e;
    uint64_t s = 0;
    int rc;

    if ((rc = mdb_cursor_open(txn, l->dbi_pchain, &cur)))
        return trace_fail_mdb(rc, "pchain");
    be64_put(sb, seq);
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
    /* forward to the entry that closes the group */
    while (rc == 0) {
        s = be64_get(v.mv_data);
        if ((rc = entry_get(txn, l, a, s, &e)) != TRACE_OK)
            break;
        if (e->has_sig)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }
    if (rc != 0 || !e->has_sig || e->sig_count == 0) {
        mdb_cursor_close(cur);
        return rc > 0 || rc == MDB_NOTFOUND
                   ? trace_fail(TRACE_EVERIFY,
                                "entry %llu's signature group is not closed",
                                (unsigned long long)seq)
                   : rc;
    }
    *closing = s;
    *closer = e;
    /* back over the group's sig_count entries */
    {
        uint32_t count = e->sig_count;
        uint8_t(*h)[32] = arena_alloc(a, (size_t)count * 32);
        uint64_t *seqs = arena_alloc(a, (size_t)count * sizeof(*seqs));
        if (!h || !seqs) {
            mdb_cursor_close(cur);
            return trace_fail(TRACE_ENOMEM, "out of memory");
        }
        for (uint32_t i = count; i-- > 0;) {
            Trace__V1__Entry *g;
            if (rc != 0) {
                mdb_cursor_close(cur);
                return trace_fail(TRACE_EVERIFY,
                                  "signature group of entry "
                                  "%llu is short",
                                  (unsigned long long)seq);
            }
            seqs[i] = be64_get(v.mv_data);
            if ((rc = entry_get(txn, l, a, seqs[i], &g)) != TRACE_OK) {
                mdb_cursor_close(cur);
                return rc;
            }
            sha256(h[i], g->event.data, g->event.len);
            if (i)
                rc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP);
        }
        *position = count;
        for (uint32_t i = 0; i < count; i++) {
            json_array_append_new(group, hex_json(h[i], 32));
            if (seqs[i] == seq)
                *position = i;
        }
        if (*position == count) {
            mdb_cursor_close(cur);
            return trace_fail(TRACE_EVERIFY,
                              "entry %llu is not in the group "
                              "its signature closes",
                              (unsigned long long)seq);
        }
    }
    mdb_cursor_close(cur);
    return TRACE_OK;
}

/* signature and registration of a party's entry, into obj */
static int signature_json(MDB_txn *txn, trace_ledger *l, arena *a,
                          const Trace__V1__Entry *e, uint64_t seq,
                          uint64_t size, json_t *obj)
{
    json_t *sig = json_object(), *group = json_array(), *signer = json_object(),
           *reg = json_object();
    Trace__V1__Entry *closer = NULL;
    uint8_t pub[32];
    uint64_t closing = 0, rseq = 0;
    size_t position = 0;
    MDB_val k = {e->key_id.len, e->key_id.data}, v;
    const char *sep;
    int rc;

    json_object_set_new(obj, "signature", sig);
    json_object_set_new(sig, "group", group);
    json_object_set_new(sig, "signer", signer);
    json_object_set_new(obj, "registration", reg);
    if ((rc = mdb_get(txn, l->dbi_keys, &k, &v)))
        return trace_fail_mdb(rc, "keys");
    if (!(sep = memchr(v.mv_data, '\0', v.mv_size)) ||
        v.mv_size - (size_t)(sep - (const char *)v.mv_data) - 1 != 32)
        return trace_fail(TRACE_EVERIFY, "keys index damaged");
    memcpy(pub, sep + 1, 32);
    if ((rc = find_group(txn, l, a, e->party, seq, group, &position, &closing,
                         &closer)) != TRACE_OK ||
        (rc = leaf_json(txn, l, a, closing, size, signer, NULL)) != TRACE_OK ||
        (rc = find_registration(txn, l, a, e->party, pub, size, &rseq)) !=
            TRACE_OK ||
        (rc = leaf_json(txn, l, a, rseq, size, reg, NULL)) != TRACE_OK)
        return rc;
    json_object_set_new(sig, "party", json_string(e->party));
    json_object_set_new(sig, "key_id", hex_json(e->key_id.data, e->key_id.len));
    json_object_set_new(sig, "pubkey", b64_json(pub, 32));
    json_object_set_new(sig, "position", json_integer((json_int_t)position));
    json_object_set_new(sig, "sig",
                        b64_json(closer->sig.data, closer->sig.len));
    return TRACE_OK;
}

static int dump(json_t *obj, char **json, size_t *len)
{
    char *s = json_dumps(obj, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!s)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *json = s;
    *len = strlen(s);
    return TRACE_OK;
}

int trace_prove_event(trace_ledger *l, const char *party, const char *id,
                      char **json, size_t *len)
{
    uint8_t key[TRACE_MAX_ID + 80];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    json_t *obj = json_object();
    trace_checkpoint *cp = malloc(sizeof(*cp));
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    MDB_txn *txn = NULL;
    arena *a = arena_new(0);
    uint64_t seq;
    char *ej;
    size_t ejlen;
    int rc;

    if (!obj || !cp || !a) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if (!klen) {
        rc = trace_fail(TRACE_EINVAL, "event id too long");
        goto out;
    }
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if ((rc = mdb_get(txn, l->dbi_ids, &k, &v))) {
        rc = rc == MDB_NOTFOUND
                 ? trace_fail(TRACE_ENOTFOUND, "%s recorded no event %s", party,
                              id)
                 : trace_fail_mdb(rc, "ids");
        goto out;
    }
    seq = be64_get(v.mv_data);
    json_object_set_new(obj, "bundle", json_string("trace.v1.event"));
    if ((rc = bundle_checkpoint(txn, l, obj, cp)) != TRACE_OK)
        goto out;
    if (seq > cp->size) {
        rc = trace_fail(TRACE_ENOTFOUND, "no checkpoint covers entry %llu yet",
                        (unsigned long long)seq);
        goto out;
    }
    if ((rc = leaf_json(txn, l, a, seq, cp->size, obj, &e)) != TRACE_OK)
        goto out;
    if (!(ev = event_decode(a, e->event.data, e->event.len))) {
        rc = trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                        (unsigned long long)seq);
        goto out;
    }
    if ((rc = event_to_json(&ej, &ejlen, ev, l)) != TRACE_OK)
        goto out;
    json_object_set_new(obj, "event", json_loadb(ej, ejlen, 0, NULL));
    free(ej);
    json_object_set_new(obj, "event_bytes",
                        b64_json(e->event.data, e->event.len));
    rc = signature_json(txn, l, a, e, seq, cp->size, obj);
out:
    if (txn)
        ledger_txn_abort(l, txn);
    arena_free(a);
    free(cp);
    if (rc == TRACE_OK)
        return dump(obj, json, len);
    json_decref(obj);
    return rc;
}

int trace_prove_history(trace_ledger *l, const char *party, char **json,
                        size_t *len)
{
    json_t *obj = json_object(), *entries = json_array(), *keys = json_array();
    trace_checkpoint *cp = malloc(sizeof(*cp));
    MDB_val k = {strlen(party), (void *)party}, v;
    MDB_cursor *cur = NULL;
    MDB_txn *txn = NULL;
    arena *a = arena_new(0);
    int rc;

    if (!obj || !entries || !keys || !cp || !a) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(obj, "bundle", json_string("trace.v1.history"));
    json_object_set_new(obj, "party", json_string(party));
    json_object_set_new(obj, "entries", entries);
    json_object_set_new(obj, "keys", keys);
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if ((rc = bundle_checkpoint(txn, l, obj, cp)) != TRACE_OK)
        goto out;
    if ((rc = mdb_cursor_open(txn, l->dbi_pchain, &cur))) {
        cur = NULL;
        rc = trace_fail_mdb(rc, "pchain");
        goto out;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) {
        rc = trace_fail(TRACE_ENOTFOUND, "%s recorded nothing", party);
        goto out;
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        uint64_t seq = be64_get(v.mv_data);
        json_t *one = json_object();
        Trace__V1__Entry *e;
        size_t i;
        json_t *kj;
        int known = 0;
        if (seq > cp->size)
            break;
        json_array_append_new(entries, one);
        if ((rc = leaf_json(txn, l, a, seq, cp->size, one, &e)) != TRACE_OK)
            goto out;
        /* each key the chain was signed with, and its registration */
        json_array_foreach(keys, i, kj)
        {
            char hex[17];
            const char *have = json_string_value(json_object_get(kj, "key_id"));
            if (e->key_id.len != 8)
                break;
            hex_encode(hex, e->key_id.data, 8);
            known |= have && strcmp(have, hex) == 0;
        }
        if (!known && e->key_id.len == 8) {
            MDB_val kk = {8, e->key_id.data}, kv;
            json_t *reg = json_object(), *kjn = json_object();
            const char *sep;
            uint64_t rseq;
            if ((rc = mdb_get(txn, l->dbi_keys, &kk, &kv))) {
                rc = trace_fail_mdb(rc, "keys");
                goto out;
            }
            if (!(sep = memchr(kv.mv_data, '\0', kv.mv_size)) ||
                kv.mv_size - (size_t)(sep - (const char *)kv.mv_data) - 1 !=
                    32) {
                rc = trace_fail(TRACE_EVERIFY, "keys index damaged");
                goto out;
            }
            json_object_set_new(kjn, "key_id", hex_json(e->key_id.data, 8));
            json_object_set_new(kjn, "pubkey",
                                b64_json((const uint8_t *)sep + 1, 32));
            json_object_set_new(kjn, "registration", reg);
            json_array_append_new(keys, kjn);
            if ((rc = find_registration(txn, l, a, party,
                                        (const uint8_t *)sep + 1, cp->size,
                                        &rseq)) != TRACE_OK ||
                (rc = leaf_json(txn, l, a, rseq, cp->size, reg, NULL)) !=
                    TRACE_OK)
                goto out;
        }
        arena_reset(a);
    }
    rc =
        rc == MDB_NOTFOUND || rc == 0 ? TRACE_OK : trace_fail_mdb(rc, "pchain");
out:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        ledger_txn_abort(l, txn);
    arena_free(a);
    free(cp);
    if (rc == TRACE_OK)
        return dump(obj, json, len);
    json_decref(obj);
    return rc;
}

int trace_prove_consistency(trace_ledger *l, uint64_t old_size,
                            uint64_t new_size, char **json, size_t *len)
{
    uint8_t proof[TREE_MAX_PROOF][32];
    json_t *obj = json_object(), *arr = json_array();
    char *o = NULL, *n = NULL;
    size_t ol, nl, np;
    MDB_txn *txn = NULL;
    int rc;

    if (!obj || !arr) {
        json_decref(obj);
        json_decref(arr);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    json_object_set_new(obj, "bundle", json_string("trace.v1.consistency"));
    json_object_set_new(obj, "old_size", json_integer((json_int_t)old_size));
    json_object_set_new(obj, "new_size", json_integer((json_int_t)new_size));
    json_object_set_new(obj, "proof", arr);
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if ((rc = tree_consistency(txn, l, old_size, new_size, proof, &np)) !=
            TRACE_OK ||
        (rc = checkpoint_note_txn(txn, l, old_size, &o, &ol)) != TRACE_OK ||
        (rc = checkpoint_note_txn(txn, l, new_size, &n, &nl)) != TRACE_OK)
        goto out;
    for (size_t i = 0; i < np; i++)
        json_array_append_new(arr, hex_json(proof[i], 32));
    json_object_set_new(obj, "old_checkpoint", json_stringn(o, ol));
    json_object_set_new(obj, "new_checkpoint", json_stringn(n, nl));
out:
    if (txn)
        ledger_txn_abort(l, txn);
    free(o);
    free(n);
    if (rc == TRACE_OK)
        return dump(obj, json, len);
    json_decref(obj);
    return rc;
}

/* Receipts ------------------------------------------------------------ */

/* What trace_receipt_get allocates behind the public struct. */
struct receipt_mem {
    trace_receipt r;
    char *note;
    trace_receipt_leaf *leaves;
};

void trace_receipt_free(trace_receipt *r)
{
    struct receipt_mem *m = (struct receipt_mem *)r;

    if (!m)
        return;
    for (size_t i = 0; m->leaves && i < m->r.n_leaves; i++) {
        free((void *)m->leaves[i].entry);
        free((void *)m->leaves[i].proof);
    }
    free(m->leaves);
    free(m->note);
    free(m);
}

/* leaf_index, hash, entry bytes and inclusion of entry `seq`. */
static int receipt_leaf(MDB_txn *txn, trace_ledger *l, uint64_t seq,
                        uint64_t size, trace_receipt_leaf *out)
{
    uint8_t kb[8], proof[TREE_MAX_PROOF][32], *entry, (*p)[32] = NULL;
    MDB_val k = {8, kb}, v;
    size_t n;
    int rc;

    be64_put(kb, seq);
    if ((rc = mdb_get(txn, l->dbi_journal, &k, &v)))
        return trace_fail_mdb(rc, "journal");
    if ((rc = tree_inclusion(txn, l, seq - 1, size, proof, &n)) != TRACE_OK)
        return rc;
    if (!(entry = malloc(v.mv_size ? v.mv_size : 1)) ||
        (n && !(p = malloc(n * 32)))) {
        free(entry);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    memcpy(entry, v.mv_data, v.mv_size);
    if (n)
        memcpy(p, proof, n * 32);
    out->leaf_index = seq - 1;
    leaf_hash(out->leaf_hash, entry, v.mv_size);
    out->entry = entry;
    out->entry_len = v.mv_size;
    out->proof = (const uint8_t(*)[32])p;
    out->n_proof = n;
    return TRACE_OK;
}

int trace_receipt_get(trace_ledger *l, uint64_t first_seq, uint64_t last_seq,
                      trace_receipt **out)
{
    struct receipt_mem *m = NULL;
    trace_checkpoint *cp = malloc(sizeof(*cp));
    uint64_t count = first_seq ? last_seq - first_seq + 1 : 0;
    size_t n_leaves;
    MDB_txn *txn = NULL;
    int rc;

    *out = NULL;
    if ((first_seq == 0) != (last_seq == 0) || last_seq < first_seq) {
        free(cp);
        return trace_fail(TRACE_EINVAL, "a receipt of entries %llu to %llu",
                          (unsigned long long)first_seq,
                          (unsigned long long)last_seq);
    }
    n_leaves = count <= TRACE_RECEIPT_MAX_PROOFS ? (size_t)count : 2;
    if (!cp || !(m = calloc(1, sizeof(*m))) ||
        (n_leaves && !(m->leaves = calloc(n_leaves, sizeof(*m->leaves))))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if ((rc = checkpoint_note_txn(txn, l, 0, &m->note, &m->r.checkpoint_len)) !=
            TRACE_OK ||
        (rc = trace_checkpoint_parse(cp, m->note, m->r.checkpoint_len)) !=
            TRACE_OK)
        goto out;
    if (cp->size < last_seq) {
        rc = trace_fail(TRACE_ENOTFOUND, "no checkpoint covers entry %llu yet",
                        (unsigned long long)last_seq);
        goto out;
    }
    m->r.checkpoint = m->note;
    m->r.first_seq = first_seq;
    m->r.last_seq = last_seq;
    m->r.leaves = m->leaves;
    for (size_t i = 0; i < n_leaves; i++) {
        uint64_t seq = count <= TRACE_RECEIPT_MAX_PROOFS ? first_seq + i
                       : i == 0                          ? first_seq
                                                         : last_seq;
        if ((rc = receipt_leaf(txn, l, seq, cp->size, &m->leaves[i])) !=
            TRACE_OK)
            goto out;
        m->r.n_leaves = i + 1;
    }
out:
    if (txn)
        ledger_txn_abort(l, txn);
    free(cp);
    if (rc != TRACE_OK) {
        trace_receipt_free(m ? &m->r : NULL);
        return rc;
    }
    *out = &m->r;
    return TRACE_OK;
}

int trace_receipt_json(const trace_receipt *parts, size_t n, char **json,
                       size_t *len)
{
    json_t *obj = json_object(), *commits = json_array();
    const trace_receipt *last = NULL;
    trace_checkpoint *cp = malloc(sizeof(*cp));
    uint64_t count = 0, first = 0;
    int rc = TRACE_OK;

    if (!obj || !commits || !cp) {
        json_decref(obj);
        json_decref(commits);
        free(cp);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        if (parts[i].first_seq)
            last = &parts[i];
    if (!last) {
        rc = trace_fail(TRACE_ENOTFOUND, "the write appended nothing: no "
                                         "receipt");
        goto out;
    }
    if ((rc = trace_checkpoint_parse(cp, last->checkpoint,
                                     last->checkpoint_len)) != TRACE_OK)
        goto out;
    json_object_set_new(obj, "bundle", json_string("trace.v1.receipt"));
    json_object_set_new(obj, "origin", json_string(cp->origin));
    json_object_set_new(obj, "tree_size", json_integer((json_int_t)cp->size));
    json_object_set_new(obj, "checkpoint",
                        json_stringn(last->checkpoint, last->checkpoint_len));
    for (size_t i = 0; i < n; i++) {
        const trace_receipt *p = &parts[i];
        json_t *c, *leaves;
        if (!p->first_seq)
            continue;
        if ((rc = trace_checkpoint_parse(cp, p->checkpoint,
                                         p->checkpoint_len)) != TRACE_OK)
            goto out;
        if (!first)
            first = p->first_seq;
        count += p->last_seq - p->first_seq + 1;
        c = json_object();
        leaves = json_array();
        json_object_set_new(c, "first_seq",
                            json_integer((json_int_t)p->first_seq));
        json_object_set_new(c, "last_seq",
                            json_integer((json_int_t)p->last_seq));
        json_object_set_new(c, "tree_size", json_integer((json_int_t)cp->size));
        if (p->checkpoint_len != last->checkpoint_len ||
            memcmp(p->checkpoint, last->checkpoint, p->checkpoint_len) != 0)
            json_object_set_new(c, "checkpoint",
                                json_stringn(p->checkpoint, p->checkpoint_len));
        for (size_t k = 0; k < p->n_leaves; k++) {
            const trace_receipt_leaf *lf = &p->leaves[k];
            json_t *o = json_object(), *inc = json_array();
            for (size_t h = 0; h < lf->n_proof; h++)
                json_array_append_new(inc, hex_json(lf->proof[h], 32));
            json_object_set_new(o, "leaf_index",
                                json_integer((json_int_t)lf->leaf_index));
            json_object_set_new(o, "leaf_hash", hex_json(lf->leaf_hash, 32));
            json_object_set_new(o, "entry", b64_json(lf->entry, lf->entry_len));
            json_object_set_new(o, "inclusion", inc);
            json_array_append_new(leaves, o);
        }
        json_object_set_new(c, "leaves", leaves);
        json_array_append_new(commits, c);
    }
    json_object_set_new(obj, "first_seq", json_integer((json_int_t)first));
    json_object_set_new(obj, "last_seq",
                        json_integer((json_int_t)last->last_seq));
    json_object_set_new(obj, "count", json_integer((json_int_t)count));
    json_object_set_new(obj, "commits", commits);
    commits = NULL;
out:
    json_decref(commits);
    free(cp);
    if (rc == TRACE_OK)
        return dump(obj, json, len);
    json_decref(obj);
    return rc;
}

int trace_receipt_match(const trace_receipt *r, const uint8_t *const *events,
                        const size_t *lens, size_t n)
{
    size_t next = 0;

    for (size_t i = 0; i < r->n_leaves; i++) {
        const trace_receipt_leaf *lf = &r->leaves[i];
        Trace__V1__Entry *e;
        uint8_t h[32];
        int found = 0;

        leaf_hash(h, lf->entry, lf->entry_len);
        if (memcmp(h, lf->leaf_hash, 32) != 0)
            return trace_fail(TRACE_EVERIFY,
                              "receipt: leaf %llu's hash is not that of its "
                              "entry",
                              (unsigned long long)lf->leaf_index);
        e = trace__v1__entry__unpack(NULL, lf->entry_len, lf->entry);
        if (!e || e->seq != lf->leaf_index + 1 || e->seq < r->first_seq ||
            e->seq > r->last_seq) {
            if (e)
                trace__v1__entry__free_unpacked(e, NULL);
            return trace_fail(TRACE_EVERIFY,
                              "receipt: leaf %llu is not an entry of this "
                              "write",
                              (unsigned long long)lf->leaf_index);
        }
        for (; next < n && !found; next++)
            found = lens[next] == e->event.len &&
                    memcmp(events[next], e->event.data, e->event.len) == 0;
        trace__v1__entry__free_unpacked(e, NULL);
        if (!found)
            return trace_fail(TRACE_EVERIFY,
                              "receipt: entry %llu does not hold an event "
                              "this write sent (in its order)",
                              (unsigned long long)lf->leaf_index + 1);
    }
    return TRACE_OK;
}

/* Checking ------------------------------------------------------------ */

struct chk {
    json_t *b;
    trace_checkpoint *cp;
    char log_name[256];
    uint8_t log_pub[32];
};

static int hex_get(json_t *v, uint8_t *out, size_t n)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        if (sscanf(s + 2 * i, "%2x", &x) != 1 ||
            !strchr("0123456789abcdef", s[2 * i]) ||
            !strchr("0123456789abcdef", s[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)x;
    }
    return 0;
}

/* A base64 field, malloc'd (bounded by the bundle's size). */
static uint8_t *b64_get(json_t *v, size_t *len)
{
    const char *s = json_string_value(v);
    size_t n, cap;
    uint8_t *out;

    if (!s || !(n = strlen(s)) || n % 4 || n > 4 * 1024 * 1024)
        return NULL;
    cap = n / 4 * 3;
    if (!(out = malloc(cap)))
        return NULL;
    /* base64_decode works in chunks of at most 4 KiB of output */
    {
        size_t done = 0, off = 0;
        while (off < n) {
            char chunk[4097];
            size_t take = n - off > 4096 ? 4096 : n - off, got;
            memcpy(chunk, s + off, take);
            chunk[take] = '\0';
            if (base64_decode(out + done, cap - done, &got, chunk) !=
                TRACE_OK) {
                free(out);
                return NULL;
            }
            done += got;
            off += take;
            if (off < n && got != take / 4 * 3) {
                free(out);
                return NULL; /* padding inside */
            }
        }
        *len = done;
    }
    return out;
}

static int fail_at(const char *what, const char *why)
{
    return trace_fail(TRACE_EVERIFY, "%s: %s", what, why);
}

/* A leaf object (leaf_index, entry, inclusion): included in the
 * checkpoint's tree; its Entry (decoded into a) in *out. */
static int check_leaf(struct chk *c, json_t *o, const char *what, arena *a,
                      Trace__V1__Entry **out, uint64_t *index)
{
    uint8_t leaf[32], given[32], proof[TREE_MAX_PROOF][32];
    json_t *inc = json_object_get(o, "inclusion"), *x;
    uint8_t *entry;
    size_t elen, n = 0, i;
    json_int_t ix = json_integer_value(json_object_get(o, "leaf_index"));

    if (!json_is_integer(json_object_get(o, "leaf_index")) || ix < 0 ||
        !json_is_array(inc) || json_array_size(inc) > TREE_MAX_PROOF)
        return trace_fail(TRACE_EINVAL,
                          "%s: leaf_index and inclusion are "
                          "required",
                          what);
    json_array_foreach(inc, i, x)
    {
        if (hex_get(x, proof[n++], 32) != 0)
            return trace_fail(TRACE_EINVAL,
                              "%s: inclusion[%zu] is not 32 "
                              "bytes of hex",
                              what, i);
    }
    if (!(entry = b64_get(json_object_get(o, "entry"), &elen)))
        return trace_fail(TRACE_EINVAL, "%s: entry is not base64", what);
    leaf_hash(leaf, entry, elen);
    if (json_object_get(o, "leaf_hash") &&
        (hex_get(json_object_get(o, "leaf_hash"), given, 32) != 0 ||
         memcmp(given, leaf, 32) != 0)) {
        free(entry);
        return fail_at(what, "leaf_hash is not the hash of the entry");
    }
    if (!merkle_verify_inclusion((uint64_t)ix, c->cp->size, leaf,
                                 (const uint8_t(*)[32])proof, n, c->cp->root)) {
        free(entry);
        return fail_at(what, "the inclusion proof does not lead to the "
                             "checkpoint's root");
    }
    *out = trace__v1__entry__unpack(arena_allocator(a), elen, entry);
    free(entry);
    if (!*out || (*out)->seq != (uint64_t)ix + 1)
        return fail_at(what, "the entry does not decode as journal entry "
                             "leaf_index + 1");
    *index = (uint64_t)ix;
    return TRACE_OK;
}

/* The registration of pub to party. */
static int check_registration(struct chk *c, json_t *reg, arena *a,
                              const char *party, const uint8_t pub[32],
                              char *by, size_t cap)
{
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    uint64_t ix;
    int rc;

    if ((rc = check_leaf(c, reg, "registration", a, &e, &ix)) != TRACE_OK)
        return rc;
    ev = event_decode(a, e->event.data, e->event.len);
    if (!ev || ev->body_case != TRACE__V1__EVENT__BODY_PARTY_BODY ||
        strcmp(ev->party_body->subject, party) != 0 ||
        !ev->party_body->has_pubkey || ev->party_body->pubkey.len != 32 ||
        memcmp(ev->party_body->pubkey.data, pub, 32) != 0)
        return fail_at("registration", "the entry does not register this key "
                                       "to the party");
    snprintf(by, cap, "%s (leaf %llu)", ev->party, (unsigned long long)ix);
    return TRACE_OK;
}

static int check_event_bundle(struct chk *c, arena *a, char *summary,
                              size_t cap)
{
    json_t *b = c->b, *sig = json_object_get(b, "signature"), *x;
    json_t *group = json_object_get(sig, "group");
    Trace__V1__Entry *e, *closer;
    Trace__V1__Event *ev;
    uint8_t pub[32], kid[8], want_kid[32], h[32], digest[32], *sigb, *evb;
    size_t slen, evlen, i, n;
    json_int_t pos = json_integer_value(json_object_get(sig, "position"));
    uint64_t ix, cix;
    char *ej, by[128];
    size_t ejlen;
    sha256_stream *s;
    int rc;

    if ((rc = check_leaf(c, b, "event", a, &e, &ix)) != TRACE_OK)
        return rc;
    if (!(ev = event_decode(a, e->event.data, e->event.len)))
        return fail_at("event", "the entry's event does not decode");
    /* the JSON shown is the stored event */
    if ((evb = b64_get(json_object_get(b, "event_bytes"), &evlen))) {
        int same =
            evlen == e->event.len && memcmp(evb, e->event.data, evlen) == 0;
        free(evb);
        if (!same)
            return fail_at("event", "event_bytes are not the entry's event");
    }
    if (event_to_json(&ej, &ejlen, ev, NULL) != TRACE_OK)
        return fail_at("event", "cannot be rendered");
    {
        json_t *mine = json_loadb(ej, ejlen, 0, NULL);
        int same = mine && json_equal(mine, json_object_get(b, "event"));
        json_decref(mine);
        free(ej);
        if (!same)
            return fail_at("event", "the JSON is not the stored event");
    }
    /* the recorder's signature over its group */
    if (!json_is_object(sig) || !json_is_array(group) ||
        (n = json_array_size(group)) == 0 || n > UINT32_MAX || pos < 0 ||
        (size_t)pos >= n || hex_get(json_object_get(sig, "key_id"), kid, 8) ||
        !(sigb = b64_get(json_object_get(sig, "sig"), &slen)))
        return trace_fail(TRACE_EINVAL, "signature: party, key_id, group, "
                                        "position and sig are required");
    {
        size_t plen = 0;
        uint8_t *pk = b64_get(json_object_get(sig, "pubkey"), &plen);
        int ok = pk && plen == 32;
        if (ok)
            memcpy(pub, pk, 32);
        free(pk);
        if (!ok) {
            free(sigb);
            return trace_fail(TRACE_EINVAL, "signature: pubkey is not 32 "
                                            "bytes of base64");
        }
    }
    sha256(want_kid, pub, 32);
    sha256(h, e->event.data, e->event.len);
    if (memcmp(want_kid, kid, 8) != 0 || e->key_id.len != 8 ||
        memcmp(e->key_id.data, kid, 8) != 0) {
        free(sigb);
        return fail_at("signature", "the key is not the one the entry names");
    }
    if (!(s = sha256_stream_new())) {
        free(sigb);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    group_digest_begin(s, e->party, kid);
    json_array_foreach(group, i, x)
    {
        uint8_t gh[32];
        if (hex_get(x, gh, 32) != 0 ||
            ((json_int_t)i == pos && memcmp(gh, h, 32) != 0)) {
            sha256_stream_free(s);
            free(sigb);
            return fail_at("signature", "the group does not hold the event at "
                                        "its position");
        }
        sha256_stream_update(s, gh, 32);
    }
    group_digest_end(s, (uint32_t)n, digest);
    sha256_stream_free(s);
    rc = slen == TRACE_SIG_LEN ? trace_sig_verify(pub, digest, 32, sigb)
                               : TRACE_EVERIFY;
    if (rc != TRACE_OK) {
        free(sigb);
        return fail_at("signature", "the recorder's signature over the group "
                                    "does not verify");
    }
    /* the signature is the one the ledger stored, closing the group */
    rc = check_leaf(c, json_object_get(sig, "signer"), "signer", a, &closer,
                    &cix);
    if (rc == TRACE_OK &&
        (!closer->has_sig || closer->sig.len != slen ||
         memcmp(closer->sig.data, sigb, slen) != 0 || closer->sig_count != n ||
         strcmp(closer->party, e->party) != 0 || cix < ix))
        rc = fail_at("signer", "the closing entry does not carry this "
                               "signature");
    free(sigb);
    if (rc != TRACE_OK)
        return rc;
    if ((rc = check_registration(c, json_object_get(b, "registration"), a,
                                 e->party, pub, by, sizeof(by))) != TRACE_OK)
        return rc;
    snprintf(summary, cap,
             "event %s/%s (%s) is leaf %llu of the %llu-entry tree; signed "
             "by %s with key %02x%02x%02x%02x..., registered by %s",
             ev->party, ev->id, ev->type, (unsigned long long)ix,
             (unsigned long long)c->cp->size, e->party, kid[0], kid[1], kid[2],
             kid[3], by);
    return TRACE_OK;
}

static int check_history_bundle(struct chk *c, arena *a, char *summary,
                                size_t cap)
{
    const char *party = json_string_value(json_object_get(c->b, "party"));
    json_t *entries = json_object_get(c->b, "entries"), *keys, *x, *k;
    uint8_t prev[32] = {0}, digest[32];
    uint64_t pseq = 0, ix, groups = 0;
    uint32_t open = 0;
    sha256_stream *s;
    size_t i, j;
    int rc = TRACE_OK;

    keys = json_object_get(c->b, "keys");
    if (!party || !json_is_array(entries) || !json_is_array(keys))
        return trace_fail(TRACE_EINVAL, "a history bundle has party, entries "
                                        "and keys");
    /* every key: registered to the party */
    json_array_foreach(keys, j, k)
    {
        uint8_t *pk;
        size_t plen;
        char by[128];
        if (!(pk = b64_get(json_object_get(k, "pubkey"), &plen)) ||
            plen != 32) {
            free(pk);
            return trace_fail(TRACE_EINVAL, "keys[%zu]: bad pubkey", j);
        }
        rc = check_registration(c, json_object_get(k, "registration"), a, party,
                                pk, by, sizeof(by));
        free(pk);
        if (rc != TRACE_OK)
            return rc;
    }
    if (!(s = sha256_stream_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    json_array_foreach(entries, i, x)
    {
        Trace__V1__Entry *e;
        uint8_t h[32], leaf[32], pub[32] = {0};
        char what[64];
        int found = 0;
        snprintf(what, sizeof(what), "entries[%zu]", i);
        if ((rc = check_leaf(c, x, what, a, &e, &ix)) != TRACE_OK)
            break;
        /* the chain: every entry of the party, in order, linked */
        if (strcmp(e->party, party) != 0 || e->party_seq != pseq + 1 ||
            e->prev_party_hash.len != 32 ||
            memcmp(e->prev_party_hash.data, prev, 32) != 0) {
            rc = fail_at(what, "the party's chain is broken here (an entry "
                               "missing, reordered or of another party)");
            break;
        }
        if (e->key_id.len != 8) {
            rc = fail_at(what, "the entry names no 8-byte key id");
            break;
        }
        pseq = e->party_seq;
        {
            uint8_t *eb;
            size_t el;
            eb = b64_get(json_object_get(x, "entry"), &el);
            if (!eb) {
                rc = trace_fail(TRACE_EINVAL, "%s: entry", what);
                break;
            }
            leaf_hash(leaf, eb, el);
            free(eb);
        }
        memcpy(prev, leaf, 32);
        /* its signature group */
        if (open == 0)
            group_digest_begin(s, party, e->key_id.data);
        sha256(h, e->event.data, e->event.len);
        sha256_stream_update(s, h, 32);
        open++;
        if (!e->has_sig)
            continue;
        json_array_foreach(keys, j, k)
        {
            uint8_t kid[8], *pk;
            size_t plen;
            if (hex_get(json_object_get(k, "key_id"), kid, 8) == 0 &&
                e->key_id.len == 8 && memcmp(kid, e->key_id.data, 8) == 0 &&
                (pk = b64_get(json_object_get(k, "pubkey"), &plen))) {
                if (plen == 32) {
                    memcpy(pub, pk, 32);
                    found = 1;
                }
                free(pk);
            }
        }
        group_digest_end(s, open, digest);
        if (!found || e->sig_count != open || e->sig.len != TRACE_SIG_LEN ||
            trace_sig_verify(pub, digest, 32, e->sig.data) != TRACE_OK) {
            rc = fail_at(what, "the party's signature over its group does "
                               "not verify");
            break;
        }
        open = 0;
        groups++;
        arena_reset(a);
    }
    sha256_stream_free(s);
    if (rc == TRACE_OK && open)
        rc = fail_at("entries", "the last signature group is not closed");
    if (rc == TRACE_OK)
        snprintf(summary, cap,
                 "%s's chain: entries 1 to %llu, linked, each in the "
                 "%llu-entry tree, %llu signature groups verified",
                 party, (unsigned long long)pseq,
                 (unsigned long long)c->cp->size, (unsigned long long)groups);
    return rc;
}

static int check_consistency_bundle(struct chk *c, char *summary, size_t cap)
{
    json_t *b = c->b, *x;
    trace_checkpoint *o = malloc(sizeof(*o));
    uint8_t proof[TREE_MAX_PROOF][32];
    const char *on = json_string_value(json_object_get(b, "old_checkpoint"));
    size_t n = 0, i;
    int rc;

    if (!o)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (!on || !json_is_array(json_object_get(b, "proof")) ||
        json_array_size(json_object_get(b, "proof")) > TREE_MAX_PROOF) {
        free(o);
        return trace_fail(TRACE_EINVAL, "a consistency bundle has "
                                        "old_checkpoint, new_checkpoint and "
                                        "proof");
    }
    if ((rc = trace_checkpoint_parse(o, on, strlen(on))) != TRACE_OK ||
        (rc = trace_checkpoint_verify(o, c->log_name, c->log_pub)) !=
            TRACE_OK) {
        free(o);
        return fail_at("old_checkpoint", trace_error_last());
    }
    json_array_foreach(json_object_get(b, "proof"), i, x)
    {
        if (hex_get(x, proof[n++], 32) != 0) {
            free(o);
            return trace_fail(TRACE_EINVAL,
                              "proof[%zu] is not 32 bytes of "
                              "hex",
                              i);
        }
    }
    if (!merkle_verify_consistency(o->size, c->cp->size, o->root, c->cp->root,
                                   (const uint8_t(*)[32])proof, n)) {
        free(o);
        return fail_at("consistency", "the proof does not show the newer "
                                      "tree extends the older one");
    }
    snprintf(summary, cap,
             "the tree of %llu entries extends the tree of %llu entries",
             (unsigned long long)c->cp->size, (unsigned long long)o->size);
    free(o);
    return TRACE_OK;
}

/* A receipt: each commit's checkpoint and the inclusion of its leaves
 * (see trace/proof.h). */
static int check_receipt_bundle(struct chk *c, arena *a, char *summary,
                                size_t cap)
{
    json_t *commits = json_object_get(c->b, "commits"), *x;
    trace_checkpoint *top = c->cp, *own = malloc(sizeof(*own));
    uint64_t prev_last = 0, count = 0, proofs = 0, first = 0;
    size_t i;
    int rc = TRACE_OK;

    if (!own)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (!json_is_array(commits) || json_array_size(commits) == 0) {
        free(own);
        return trace_fail(TRACE_EINVAL, "a receipt has commits");
    }
    json_array_foreach(commits, i, x)
    {
        json_t *leaves = json_object_get(x, "leaves"), *lf;
        json_t *jf = json_object_get(x, "first_seq"),
               *jl = json_object_get(x, "last_seq");
        const char *note = json_string_value(json_object_get(x, "checkpoint"));
        uint64_t f, l, want_next;
        char what[64];
        size_t k;

        snprintf(what, sizeof(what), "commits[%zu]", i);
        if (!json_is_integer(jf) || !json_is_integer(jl) ||
            json_integer_value(jf) < 1 ||
            json_integer_value(jl) < json_integer_value(jf) ||
            !json_is_array(leaves)) {
            rc = trace_fail(TRACE_EINVAL,
                            "%s: first_seq, last_seq and leaves are "
                            "required",
                            what);
            break;
        }
        f = (uint64_t)json_integer_value(jf);
        l = (uint64_t)json_integer_value(jl);
        /* its checkpoint: the top-level one, or an earlier one of the
         * same log */
        c->cp = top;
        if (note) {
            if (trace_checkpoint_parse(own, note, strlen(note)) != TRACE_OK ||
                strcmp(own->origin, c->log_name) != 0 ||
                trace_checkpoint_verify(own, c->log_name, c->log_pub) !=
                    TRACE_OK) {
                rc = fail_at(what, "its checkpoint is not signed by the log "
                                   "key");
                break;
            }
            if (own->size > top->size) {
                rc = fail_at(what, "its checkpoint is larger than the last");
                break;
            }
            c->cp = own;
        }
        if (l > c->cp->size || f <= prev_last) {
            rc = fail_at(what, l > c->cp->size
                                   ? "its checkpoint does not cover it"
                                   : "the commits overlap or are out of "
                                     "order");
            break;
        }
        /* the first and the last proven; every one of a small commit */
        want_next = f;
        json_array_foreach(leaves, k, lf)
        {
            Trace__V1__Entry *e;
            uint64_t ix;
            char lwhat[96];
            snprintf(lwhat, sizeof(lwhat), "%s.leaves[%zu]", what, k);
            if (!json_object_get(lf, "leaf_hash")) {
                rc = trace_fail(TRACE_EINVAL, "%s: leaf_hash is required",
                                lwhat);
                break;
            }
            if ((rc = check_leaf(c, lf, lwhat, a, &e, &ix)) != TRACE_OK)
                break;
            if (ix + 1 < want_next || ix + 1 > l) {
                rc = fail_at(lwhat, "not an entry of this commit, in order");
                break;
            }
            if (l - f + 1 <= TRACE_RECEIPT_MAX_PROOFS && ix + 1 != want_next) {
                rc = fail_at(lwhat, "an entry of the commit is left out");
                break;
            }
            if (k == 0 && ix + 1 != f) {
                rc = fail_at(lwhat, "the commit's first entry is not proven");
                break;
            }
            want_next = ix + 2;
            proofs++;
            arena_reset(a);
        }
        if (rc != TRACE_OK)
            break;
        if (want_next != l + 1) {
            rc = fail_at(what, "the commit's last entry is not proven");
            break;
        }
        if (!first)
            first = f;
        count += l - f + 1;
        prev_last = l;
    }
    c->cp = top;
    free(own);
    if (rc != TRACE_OK)
        return rc;
    if ((json_is_integer(json_object_get(c->b, "count")) &&
         (uint64_t)json_integer_value(json_object_get(c->b, "count")) !=
             count) ||
        (json_is_integer(json_object_get(c->b, "last_seq")) &&
         (uint64_t)json_integer_value(json_object_get(c->b, "last_seq")) !=
             prev_last))
        return fail_at("count", "not the commits' entries");
    snprintf(summary, cap,
             "receipt of %llu entr%s (journal positions %llu to %llu) in "
             "%zu commit%s; %llu inclusion proof%s checked, the last in the "
             "%llu-entry tree",
             (unsigned long long)count, count == 1 ? "y" : "ies",
             (unsigned long long)first, (unsigned long long)prev_last,
             json_array_size(commits), json_array_size(commits) == 1 ? "" : "s",
             (unsigned long long)proofs, proofs == 1 ? "" : "s",
             (unsigned long long)top->size);
    return TRACE_OK;
}

int trace_check_bundle(const char *json, size_t len, const char *log_vkey,
                       const char *const *witness_vkeys, size_t n_witnesses,
                       size_t min_cosigs, char *summary, size_t cap)
{
    struct chk c = {0};
    const char *type, *note;
    json_error_t err;
    size_t cosigs = 0;
    arena *a = NULL;
    int rc;

    summary[0] = '\0';
    if (len > MAX_BUNDLE)
        return trace_fail(TRACE_EINVAL, "bundle too large");
    if (!(c.b = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err)) ||
        !json_is_object(c.b)) {
        rc = trace_fail(TRACE_EINVAL, "the bundle is not a JSON object: %s",
                        c.b ? "" : err.text);
        goto out;
    }
    type = json_string_value(json_object_get(c.b, "bundle"));
    note = json_string_value(
        json_object_get(c.b, type && strcmp(type, "trace.v1.consistency") == 0
                                 ? "new_checkpoint"
                                 : "checkpoint"));
    if (!type || !note) {
        rc = trace_fail(TRACE_EINVAL, "not a proof bundle (no bundle type or "
                                      "checkpoint)");
        goto out;
    }
    if (!(c.cp = malloc(sizeof(*c.cp))) || !(a = arena_new(0))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = trace_vkey_parse(log_vkey, c.log_name, sizeof(c.log_name),
                               c.log_pub)) != TRACE_OK)
        goto out;
    if ((rc = trace_checkpoint_parse(c.cp, note, strlen(note))) != TRACE_OK) {
        rc = trace_fail(TRACE_EVERIFY, "checkpoint: %s", trace_error_last());
        goto out;
    }
    if (strcmp(c.cp->origin, c.log_name) != 0) {
        rc = fail_at("checkpoint", "its origin is not the log key's name");
        goto out;
    }
    if (trace_checkpoint_verify(c.cp, c.log_name, c.log_pub) != TRACE_OK) {
        rc = fail_at("checkpoint", "not signed by the log key");
        goto out;
    }
    if (json_is_integer(json_object_get(c.b, "tree_size")) &&
        (uint64_t)json_integer_value(json_object_get(c.b, "tree_size")) !=
            c.cp->size) {
        rc = fail_at("tree_size", "not the checkpoint's size");
        goto out;
    }
    for (size_t i = 0; i < n_witnesses; i++) {
        char name[256];
        uint8_t pub[32];
        if ((rc = trace_vkey_parse(witness_vkeys[i], name, sizeof(name),
                                   pub)) != TRACE_OK)
            goto out;
        cosigs +=
            trace_checkpoint_verify_cosig(c.cp, name, pub, NULL) == TRACE_OK;
    }
    if (cosigs < min_cosigs) {
        rc = trace_fail(TRACE_EVERIFY,
                        "checkpoint: %zu valid witness cosignatures of the "
                        "%zu keys given, %zu required",
                        cosigs, n_witnesses, min_cosigs);
        goto out;
    }
    if (strcmp(type, "trace.v1.event") == 0)
        rc = check_event_bundle(&c, a, summary, cap);
    else if (strcmp(type, "trace.v1.history") == 0)
        rc = check_history_bundle(&c, a, summary, cap);
    else if (strcmp(type, "trace.v1.consistency") == 0)
        rc = check_consistency_bundle(&c, summary, cap);
    else if (strcmp(type, "trace.v1.receipt") == 0)
        rc = check_receipt_bundle(&c, a, summary, cap);
    else
        rc = trace_fail(TRACE_EINVAL, "unknown bundle type %.40s", type);
    if (rc == TRACE_OK && n_witnesses) {
        size_t used = strlen(summary);
        snprintf(summary + used, cap - used,
                 "; checkpoint cosigned by %zu of "
                 "%zu witnesses",
                 cosigs, n_witnesses);
    }
out:
    json_decref(c.b);
    free(c.cp);
    arena_free(a);
    return rc;
}
