/* SPDX-License-Identifier: Apache-2.0 */
/* helpers.c - shared fixtures of the unit tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

void raw_begin(fixture *f, const char *db, MDB_env **env, MDB_txn **txn,
               MDB_dbi *dbi)
{
    trace_ledger_close(f->l);
    f->l = NULL;
    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_set_maxdbs(*env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(*env, 64ULL << 30), 0);
    assert_int_equal(mdb_env_open(*env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, db, 0, dbi), 0);
}

void raw_end(fixture *f, MDB_env *env, MDB_txn *txn)
{
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    if (trace_ledger_open(&f->l, f->dir) != TRACE_OK)
        fail_msg("reopen: %s", trace_error_last());
}

void rm_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    const trace_key *key;

    snprintf(f->dir, sizeof(f->dir), "/tmp/trace-test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    if (trace_keyring_open(&f->ring, f->keys, 1) != TRACE_OK ||
        trace_keyring_generate(f->ring, "REGULATOR", &key) != TRACE_OK ||
        trace_ledger_init(&f->l, f->dir, key, NULL) != TRACE_OK) {
        fprintf(stderr, "setup: %s\n", trace_error_last());
        return -1;
    }
    *state = f;
    return 0;
}

int fixture_teardown(void **state)
{
    fixture *f = *state;
    trace_ledger_close(f->l);
    trace_keyring_free(f->ring);
    rm_tree(f->dir);
    free(f);
    return 0;
}

int fixture_import(fixture *f, const char *jsonl, unsigned flags,
                   trace_append_result *res)
{
    trace_batch *b;
    const char *p = jsonl;
    unsigned long lineno = 0;
    int rc;

    if ((rc = trace_batch_new(&b, f->l)) != TRACE_OK)
        return rc;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if ((rc = trace_batch_add_json(b, p, len, ++lineno)) != TRACE_OK)
            goto out;
        p += len + (nl ? 1 : 0);
    }
    rc = trace_ledger_append(f->l, b, f->ring, NULL, flags, res);
out:
    trace_batch_free(b);
    return rc;
}
