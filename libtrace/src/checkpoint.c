/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.c - the ledger's signed checkpoints (trace/proof.h).
 *
 * Every append transaction ends with checkpoint_commit: the tree root of
 * the new size, signed with the log key, stored under u64be size in the
 * "ckpt" database beside the entries it covers.  Witnesses' cosignature
 * lines are stored under u64be size || witness name, after the
 * checkpoint they sign; trace_checkpoint_note returns both.  A name
 * keeps the key of its first cosignature, and a checkpoint takes at
 * most TRACE_CHECKPOINT_MAX_WITNESSES names: whoever hands cosignatures
 * in cannot replace a witness's nor flood a checkpoint with those of
 * throw-away keys.  The origin
 * is trace/<root regulator>/<ledger id>, the ledger id 16 random bytes
 * in hex made at init (meta "ledger_id"; for older ledgers at their
 * first checkpoint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace/proof.h"

_Static_assert(TRACE_CHECKPOINT_MAX_WITNESSES < TRACE_NOTE_MAX_SIGS,
               "a served note holds the log's signature and every "
               "witness's");

static int ledger_id(MDB_txn *txn, trace_ledger *l, int create, char *out,
                     size_t cap)
{
    MDB_val k = {9, "ledger_id"}, v;
    uint8_t raw[16];
    char hex[33];
    int rc = mdb_get(txn, l->dbi_meta, &k, &v);

    if (rc == MDB_NOTFOUND && create) {
        if ((rc = random_bytes(raw, sizeof(raw))) != TRACE_OK)
            return rc;
        hex_encode(hex, raw, sizeof(raw));
        v = (MDB_val){32, hex};
        if ((rc = mdb_put(txn, l->dbi_meta, &k, &v, 0)))
            return trace_fail_mdb(rc, "meta");
    } else if (rc == MDB_NOTFOUND) {
        return trace_fail(TRACE_ENOTFOUND, "this ledger has no checkpoint "
                                           "yet (it gets one at its next "
                                           "append)");
    } else if (rc) {
        return trace_fail_mdb(rc, "meta");
    }
    if (v.mv_size + 1 > sizeof(hex))
        return trace_fail(TRACE_EVERIFY, "ledger id damaged");
    memcpy(hex, v.mv_data, v.mv_size);
    hex[v.mv_size] = '\0';
    snprintf(out, cap, "trace/%s/%s", l->regulator, hex);
    return TRACE_OK;
}

int ledger_id_create(MDB_txn *txn, trace_ledger *l)
{
    char origin[256];
    return ledger_id(txn, l, 1, origin, sizeof(origin));
}

void trace_ledger_set_checkpoint_key(trace_ledger *l, const trace_key *key)
{
    l->ckpt_ext = key;
}

/* The log key: the one given, or DIR/traced.key (made if missing). */
static int log_key(trace_ledger *l, const trace_key **out)
{
    char path[4096];
    int rc;

    if (l->ckpt_ext) {
        *out = l->ckpt_ext;
        return TRACE_OK;
    }
    pthread_mutex_lock(&l->txn_mu);
    if (!l->ckpt_key) {
        snprintf(path, sizeof(path), "%s/traced.key", l->dir);
        rc = trace_key_load(&l->ckpt_key, path);
        if (rc == TRACE_ENOTFOUND &&
            (rc = trace_key_generate(&l->ckpt_key)) == TRACE_OK &&
            (rc = trace_key_save(l->ckpt_key, path)) != TRACE_OK) {
            trace_key_free(l->ckpt_key);
            l->ckpt_key = NULL;
        }
        if (rc != TRACE_OK) {
            pthread_mutex_unlock(&l->txn_mu);
            return rc;
        }
    }
    *out = l->ckpt_key;
    pthread_mutex_unlock(&l->txn_mu);
    return TRACE_OK;
}

/* Every key that ever signed this ledger's checkpoints, oldest first
 * (meta "log_keys": 32 bytes each): a daemon configured with another key
 * than the folder's leaves checkpoints of both, and verify accepts a
 * checkpoint signed by any of them (a witness pins one, and refuses the
 * others until told). */
static int remember_key(MDB_txn *txn, trace_ledger *l, const uint8_t pub[32])
{
    MDB_val k = {8, "log_keys"}, v;
    uint8_t *buf;
    int rc = mdb_get(txn, l->dbi_meta, &k, &v);

    if (rc && rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, "meta");
    if (rc == 0)
        for (size_t i = 0; i + 32 <= v.mv_size; i += 32)
            if (memcmp((uint8_t *)v.mv_data + i, pub, 32) == 0)
                return TRACE_OK;
    size_t n = rc == 0 ? v.mv_size : 0;
    if (!(buf = malloc(n + 32)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (n)
        memcpy(buf, v.mv_data, n);
    memcpy(buf + n, pub, 32);
    v = (MDB_val){n + 32, buf};
    rc = mdb_put(txn, l->dbi_meta, &k, &v, 0);
    free(buf);
    return rc ? trace_fail_mdb(rc, "meta") : TRACE_OK;
}

int checkpoint_log_keys(MDB_txn *txn, trace_ledger *l, uint8_t (*pubs)[32],
                        size_t cap, size_t *n)
{
    MDB_val k = {8, "log_keys"}, v;
    int rc = mdb_get(txn, l->dbi_meta, &k, &v);

    *n = 0;
    if (rc == MDB_NOTFOUND)
        return TRACE_OK;
    if (rc)
        return trace_fail_mdb(rc, "meta");
    for (size_t i = 0; i + 32 <= v.mv_size && *n < cap; i += 32)
        memcpy(pubs[(*n)++], (uint8_t *)v.mv_data + i, 32);
    return TRACE_OK;
}

int checkpoint_commit(MDB_txn *txn, trace_ledger *l, uint64_t size)
{
#ifdef TRACE_BENCH_NO_TREE
    (void)txn, (void)l, (void)size;
    return TRACE_OK;
#endif
    const trace_key *key;
    char origin[256], text[512], line[256], b64[64], note[1024];
    uint8_t kb[8], root[32];
    MDB_val k = {8, kb}, v;
    int rc, n;

    if (size == 0)
        return TRACE_OK;
    be64_put(kb, size);
    if ((rc = mdb_get(txn, l->dbi_ckpt, &k, &v)) == 0)
        return TRACE_OK; /* nothing appended since */
    if (rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, "ckpt");
    if ((rc = ledger_id(txn, l, 1, origin, sizeof(origin))) != TRACE_OK ||
        (rc = log_key(l, &key)) != TRACE_OK ||
        (rc = remember_key(txn, l, trace_key_public(key))) != TRACE_OK ||
        (rc = tree_root(txn, l, size, root)) != TRACE_OK)
        return rc;
    base64_encode(b64, sizeof(b64), root, 32);
    n = snprintf(text, sizeof(text), "%s\n%llu\n%s\n", origin,
                 (unsigned long long)size, b64);
    if ((rc = note_sign_line(key, origin, text, (size_t)n, line,
                             sizeof(line))) != TRACE_OK)
        return rc;
    n = snprintf(note, sizeof(note), "%s\n%s", text, line);
    v = (MDB_val){(size_t)n, note};
    if ((rc = mdb_put(txn, l->dbi_ckpt, &k, &v, 0)))
        return trace_fail_mdb(rc, "ckpt");
    return TRACE_OK;
}

int checkpoint_origin_txn(MDB_txn *txn, trace_ledger *l, char *out, size_t cap)
{
    return ledger_id(txn, l, 0, out, cap);
}

int checkpoint_pubkey(trace_ledger *l, uint8_t pub[32])
{
    char path[4096];
    trace_key *k;
    int rc;

    if (l->ckpt_ext) {
        memcpy(pub, trace_key_public(l->ckpt_ext), 32);
        return TRACE_OK;
    }
    pthread_mutex_lock(&l->txn_mu);
    k = l->ckpt_key;
    pthread_mutex_unlock(&l->txn_mu);
    if (k) {
        memcpy(pub, trace_key_public(k), 32);
        return TRACE_OK;
    }
    snprintf(path, sizeof(path), "%s/traced.key", l->dir);
    if ((rc = trace_key_load(&k, path)) != TRACE_OK)
        return rc;
    memcpy(pub, trace_key_public(k), 32);
    trace_key_free(k);
    return TRACE_OK;
}

int trace_checkpoint_origin(trace_ledger *l, char *out, size_t cap)
{
    MDB_txn *txn;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = ledger_id(txn, l, 0, out, cap);
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_checkpoint_vkey(trace_ledger *l, char *out, size_t cap)
{
    const trace_key *key;
    char origin[256];
    int rc;

    if ((rc = trace_checkpoint_origin(l, origin, sizeof(origin))) != TRACE_OK ||
        (rc = log_key(l, &key)) != TRACE_OK)
        return rc;
    return trace_vkey_format(out, cap, origin, trace_key_public(key));
}

/* The checkpoint of `size` (0: the latest) and its cosignatures. */
int checkpoint_note_txn(MDB_txn *txn, trace_ledger *l, uint64_t size,
                        char **note, size_t *len)
{
    MDB_cursor *cur = NULL;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    char *buf = NULL;
    size_t n = 0;
    int rc;

    *note = NULL;
    if (l->late_missing)
        return trace_fail(TRACE_ENOTFOUND, "this ledger has no checkpoint "
                                           "yet (it gets one at its next "
                                           "append)");
    if ((rc = mdb_cursor_open(txn, l->dbi_ckpt, &cur)))
        return trace_fail_mdb(rc, "ckpt");
    if (size == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (rc == 0 && k.mv_size >= 8)
            size = be64_get(k.mv_data);
        else if (rc == MDB_NOTFOUND)
            rc = TRACE_ENOTFOUND;
    }
    if (rc == 0) {
        be64_put(kb, size);
        k = (MDB_val){8, kb};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            rc = TRACE_ENOTFOUND;
    }
    /* the note, then each cosignature line stored after it */
    while (rc == 0) {
        char *nb = realloc(buf, n + v.mv_size + 1);
        if (!nb) {
            rc = TRACE_ENOMEM;
            break;
        }
        buf = nb;
        memcpy(buf + n, v.mv_data, v.mv_size);
        n += v.mv_size;
        buf[n] = '\0';
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        if (rc == 0 && (k.mv_size <= 8 || memcmp(k.mv_data, kb, 8) != 0))
            break;
    }
    mdb_cursor_close(cur);
    if (rc == TRACE_ENOTFOUND) {
        free(buf);
        return trace_fail(TRACE_ENOTFOUND,
                          "no checkpoint of %llu entries is stored (one is "
                          "stored at the end of each append)",
                          (unsigned long long)size);
    }
    if (rc == TRACE_ENOMEM) {
        free(buf);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    if (rc && rc != MDB_NOTFOUND) {
        free(buf);
        return trace_fail_mdb(rc, "ckpt");
    }
    *note = buf;
    *len = n;
    return TRACE_OK;
}

int trace_checkpoint_note(trace_ledger *l, uint64_t size, char **note,
                          size_t *len)
{
    MDB_txn *txn;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = checkpoint_note_txn(txn, l, size, note, len);
    ledger_txn_abort(l, txn);
    return rc;
}

/* 1 if cp's signature line i alone is a valid cosignature by (name,
 * pub); tmp is scratch room. */
static int cosig_line_ok(const trace_checkpoint *cp, size_t i,
                         trace_checkpoint *tmp, const char *name,
                         const uint8_t pub[32])
{
    memcpy(tmp->origin, cp->origin, sizeof(cp->origin));
    tmp->size = cp->size;
    memcpy(tmp->root, cp->root, 32);
    memcpy(tmp->text, cp->text, cp->text_len);
    tmp->text_len = cp->text_len;
    tmp->n_sigs = 1;
    tmp->sigs[0] = cp->sigs[i];
    return trace_checkpoint_verify_cosig(tmp, name, pub, NULL) == TRACE_OK;
}

/* The write of add_cosig: `line` under u64be size || name, after the
 * checks that need the stored checkpoint. */
static int store_cosig(trace_ledger *l, const trace_checkpoint *cp,
                       trace_checkpoint *ours, const char *name,
                       const uint8_t pub[32], const char *line)
{
    char *stored = NULL, *both = NULL;
    uint8_t key[8 + 256], kb[8];
    size_t slen, nlen = strlen(name), count = 0;
    MDB_cursor *cur = NULL;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if ((rc = ledger_txn_begin(l, 0, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    /* only for a checkpoint this log signed, as it signed it */
    if ((rc = checkpoint_note_txn(txn, l, cp->size, &stored, &slen)) !=
            TRACE_OK ||
        (rc = trace_checkpoint_parse(ours, stored, slen)) != TRACE_OK)
        goto out;
    if (ours->text_len != cp->text_len ||
        memcmp(ours->text, cp->text, cp->text_len) != 0) {
        rc = trace_fail(TRACE_EVERIFY,
                        "the cosigned checkpoint is not the one this ledger "
                        "stored for %llu entries",
                        (unsigned long long)cp->size);
        goto out;
    }
    be64_put(kb, cp->size);
    memcpy(key, kb, 8);
    memcpy(key + 8, name, nlen);
    k = (MDB_val){8 + nlen, key};
    rc = mdb_get(txn, l->dbi_ckpt, &k, &v);
    if (rc == 0) {
        /* a name keeps its key: only the same witness cosigns again */
        size_t n = ours->text_len + 1 + v.mv_size;
        int same = 0;
        if (!(both = malloc(n + 1))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(both, ours->text, ours->text_len);
        both[ours->text_len] = '\n';
        memcpy(both + ours->text_len + 1, v.mv_data, v.mv_size);
        both[n] = '\0';
        if (trace_checkpoint_parse(ours, both, n) == TRACE_OK)
            same = trace_checkpoint_verify_cosig(ours, name, pub, NULL) ==
                   TRACE_OK;
        if (!same) {
            rc = trace_fail(TRACE_EEXIST,
                            "another key's cosignature is stored under the "
                            "name %s for the checkpoint of %llu entries (a "
                            "witness's name keeps its first key)",
                            name, (unsigned long long)cp->size);
            goto out;
        }
    } else if (rc == MDB_NOTFOUND) {
        /* a new witness: is there room for one more? */
        if ((rc = mdb_cursor_open(txn, l->dbi_ckpt, &cur))) {
            rc = trace_fail_mdb(rc, "ckpt");
            goto out;
        }
        k = (MDB_val){8, kb};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0 &&
               k.mv_size > 8 && memcmp(k.mv_data, kb, 8) == 0)
            count++;
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND) {
            rc = trace_fail_mdb(rc, "ckpt");
            goto out;
        }
        if (count >= TRACE_CHECKPOINT_MAX_WITNESSES) {
            rc = trace_fail(TRACE_EPERM,
                            "the checkpoint of %llu entries already carries "
                            "the cosignatures of %d witnesses, the most "
                            "stored",
                            (unsigned long long)cp->size,
                            TRACE_CHECKPOINT_MAX_WITNESSES);
            goto out;
        }
    } else {
        rc = trace_fail_mdb(rc, "ckpt");
        goto out;
    }
    k = (MDB_val){8 + nlen, key};
    v = (MDB_val){strlen(line), (void *)line};
    if ((rc = mdb_put(txn, l->dbi_ckpt, &k, &v, 0))) {
        rc = trace_fail_mdb(rc, "ckpt");
        goto out;
    }
    rc = ledger_txn_commit(l, txn);
    txn = NULL;
    rc = rc ? trace_fail_mdb(rc, "commit") : TRACE_OK;
out:
    if (txn)
        ledger_txn_abort(l, txn);
    free(stored);
    free(both);
    return rc;
}

int trace_checkpoint_add_cosig(trace_ledger *l, const char *note, size_t len,
                               const char *witness_vkey)
{
    trace_checkpoint *cp = NULL, *ours = NULL;
    char name[256], line[512] = "";
    uint8_t pub[32];
    int rc;

    if ((rc = trace_vkey_parse(witness_vkey, name, sizeof(name), pub)) !=
        TRACE_OK)
        return rc;
    if (!(cp = malloc(sizeof(*cp))) || !(ours = malloc(sizeof(*ours)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = trace_checkpoint_parse(cp, note, len)) != TRACE_OK ||
        (rc = trace_checkpoint_verify_cosig(cp, name, pub, NULL)) != TRACE_OK)
        goto out;
    /* the witness's line that verifies, as it is in the note */
    for (size_t i = 0; i < cp->n_sigs && !line[0]; i++) {
        char b64[160];
        uint8_t raw[4 + 72];
        if (strcmp(cp->sigs[i].name, name) != 0 || cp->sigs[i].sig_len != 72 ||
            !cosig_line_ok(cp, i, ours, name, pub))
            continue;
        memcpy(raw, cp->sigs[i].key_id, 4);
        memcpy(raw + 4, cp->sigs[i].sig, 72);
        base64_encode(b64, sizeof(b64), raw, sizeof(raw));
        snprintf(line, sizeof(line), "\xe2\x80\x94 %s %s\n", name, b64);
    }
    /* a full map is grown (no transaction of this thread is open) and
     * the store tried again */
    for (int attempt = 0;; attempt++) {
        rc = store_cosig(l, cp, ours, name, pub, line);
        if (rc != TRACE_EFULL || last_mdb_error() != MDB_MAP_FULL ||
            attempt == 4 || ledger_grow_map(l) != TRACE_OK)
            break;
    }
out:
    free(cp);
    free(ours);
    return rc;
}
