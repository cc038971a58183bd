/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tamper - changes a stored journal record behind libtrace's back, the
 * way someone with write access to the files could, so tests can check
 * that verify notices.
 *
 *   tamper DIR SEQ flip     flip one bit in the middle of entry SEQ
 *   tamper DIR SEQ delete   remove entry SEQ
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    uint8_t key[8];
    unsigned long long seq;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: tamper DIR SEQ flip|delete\n");
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
