/* SPDX-License-Identifier: Apache-2.0 */
/* helpers.h - shared fixtures of the unit tests. */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include <lmdb.h>

#include "trace/trace.h"

/* A fresh ledger in a new temporary folder, with the root regulator key
 * in DIR/keys. */
typedef struct fixture {
    char dir[256];
    char keys[300];
    trace_ledger *l;
    trace_keyring *ring;
} fixture;

int fixture_setup(void **state);
int fixture_teardown(void **state);
/* Imports JSON lines (separated by \n) as one batch; returns the code. */
int fixture_import(fixture *f, const char *jsonl, unsigned flags,
                   trace_append_result *res);
/* Changes the ledger behind the library's back: raw_begin() closes f->l
 * and opens a write transaction on LMDB database `db`; raw_end() commits
 * it and opens f->l again. */
void raw_begin(fixture *f, const char *db, MDB_env **env, MDB_txn **txn,
               MDB_dbi *dbi);
void raw_end(fixture *f, MDB_env *env, MDB_txn *txn);
/* Removes a folder tree. */
void rm_tree(const char *dir);

#endif
