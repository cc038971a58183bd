/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tamper - changes a stored journal record behind libtrace's back, the
 * way someone with write access to the files could, so tests can check
 * that verify notices.
 *
 *   tamper DIR SEQ flip     flip one bit in the middle of entry SEQ
 *   tamper DIR SEQ delete   remove entry SEQ
 *   tamper DIR index DB PREFIX key|value|delete
 *                           in index DB, the first record whose key
 *                           begins with PREFIX (\0 in it is a NUL):
 *                           flip one bit of the byte in the middle of
 *                           its key (a NUL there: the next byte), or of
 *                           its value's last byte, or remove it
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

/* The index form: one record of a (possibly DUPSORT) database. */
static int index_edit(const char *dir, const char *db, const char *prefix,
                      const char *what)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v, nk, nv;
    uint8_t p[512], kb[512], *vb = NULL;
    size_t plen = 0, at;
    int rc;

    for (const char *s = prefix; *s && plen < sizeof(p); s++)
        if (s[0] == '\\' && s[1] == '0') {
            p[plen++] = 0;
            s++;
        } else {
            p[plen++] = (uint8_t)*s;
        }
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 32)) ||
        (rc = mdb_env_set_mapsize(env, 64ULL << 30)) ||
        (rc = mdb_env_open(env, dir, 0, 0600)) ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, db, 0, &dbi)) ||
        (rc = mdb_cursor_open(txn, dbi, &cur))) {
        fprintf(stderr, "tamper: %s\n", mdb_strerror(rc));
        return 1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (k.mv_size >= plen && memcmp(k.mv_data, p, plen) == 0)
            break;
    if (rc || k.mv_size > sizeof(kb) || !(vb = malloc(v.mv_size + 1))) {
        fprintf(stderr, "tamper: no record in %s begins with %s\n", db, prefix);
        return 1;
    }
    memcpy(kb, k.mv_data, k.mv_size);
    memcpy(vb, v.mv_data, v.mv_size);
    nk = (MDB_val){k.mv_size, kb};
    nv = (MDB_val){v.mv_size, vb};
    mdb_cursor_close(cur);
    rc = mdb_del(txn, dbi, &nk, &nv);
    if (rc == 0 && strcmp(what, "key") == 0) {
        for (at = nk.mv_size / 2; at + 1 < nk.mv_size && !kb[at]; at++)
            ;
        kb[at] ^= 0x01;
    } else if (rc == 0 && strcmp(what, "value") == 0 && nv.mv_size) {
        vb[nv.mv_size - 1] ^= 0x01;
    }
    if (rc == 0 && strcmp(what, "delete") != 0)
        rc = mdb_put(txn, dbi, &nk, &nv, 0);
    free(vb);
    if (rc || (rc = mdb_txn_commit(txn))) {
        fprintf(stderr, "tamper: %s\n", mdb_strerror(rc));
        return 1;
    }
    mdb_env_close(env);
    return 0;
}

int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    uint8_t key[8];
    unsigned long long seq;
    int rc;

    if (argc == 6 && strcmp(argv[2], "index") == 0)
        return index_edit(argv[1], argv[3], argv[4], argv[5]);
    if (argc != 4) {
        fprintf(stderr, "usage: tamper DIR SEQ flip|delete\n"
                        "       tamper DIR index DB PREFIX "
                        "key|value|delete\n");
        return 1;
    }
    seq = strtoull(argv[2], NULL, 10);
    for (int i = 7; i >= 0; i--, seq >>= 8)
        key[i] = (uint8_t)seq;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 16)) ||
        (rc = mdb_env_set_mapsize(env, 64ULL << 30)) ||
        (rc = mdb_env_open(env, argv[1], 0, 0600)) ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "journal", 0, &dbi))) {
        fprintf(stderr, "tamper: %s\n", mdb_strerror(rc));
        return 1;
    }
    k.mv_size = 8;
    k.mv_data = key;
    if (strcmp(argv[3], "delete") == 0) {
        rc = mdb_del(txn, dbi, &k, NULL);
    } else if ((rc = mdb_get(txn, dbi, &k, &v)) == 0) {
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size / 2] ^= 0x01;
        v.mv_data = copy;
        rc = mdb_put(txn, dbi, &k, &v, 0);
        free(copy);
    }
    if (rc || (rc = mdb_txn_commit(txn))) {
        fprintf(stderr, "tamper: %s\n", mdb_strerror(rc));
        return 1;
    }
    mdb_env_close(env);
    return 0;
}
