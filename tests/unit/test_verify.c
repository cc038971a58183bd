/* test_verify.c - full verification and what it catches (verify.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "internal.h"

static const char *const demo =
    "{\"type\":\"party\",\"id\":\"r1\",\"party\":\"REGULATOR\",\"at\":"
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P1\",\"name\":\"One\","
    "\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":[]}\n"
    "{\"type\":\"produce\",\"id\":\"p1\",\"party\":\"P1\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"L1\","
    "\"qty\":\"5\",\"unit\":\"kg\"}\n"
    "{\"type\":\"produce\",\"id\":\"p2\",\"party\":\"P1\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"L2\","
    "\"qty\":\"5\",\"unit\":\"kg\"}\n"
    "{\"type\":\"produce\",\"id\":\"p3\",\"party\":\"P1\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"L3\","
    "\"qty\":\"5\",\"unit\":\"kg\"}";

/* Entries after the import: 1 genesis, 2 party P1, 3 provisioned key,
 * 4..6 the produce events (one signature group). */

static int setup(void **state)
{
    trace_append_result r;
    if (fixture_setup(state) != 0)
        return -1;
    return fixture_import(*state, demo, TRACE_APPEND_PROVISION_KEYS, &r);
}

/* Deletes entry `seq`, or changes a byte of it, behind the library's back. */
static void edit_journal(fixture *f, uint64_t seq, int delete_it)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t key[8];
    MDB_val k = {8, key}, v;

    be64_put(key, seq);
    raw_begin(f, "journal", &env, &txn, &dbi);
    if (delete_it) {
        assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    } else {
        assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size / 2] ^= 0x01;
        v.mv_data = copy;
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        free(copy);
    }
    raw_end(f, env, txn);
}

static void test_intact(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, 6);
    assert_int_equal(res.groups, 3); /* regulator x2 (1, 2-3), P1 (4-6) */
    assert_int_equal(res.bad_seq, 0);
}

static void test_flipped_bit_in_each_entry(void **state)
{
    fixture *f = *state;
    for (uint64_t seq = 1; seq <= 6; seq++) {
        trace_verify_result res;
        /* fresh ledger each round */
        fixture_teardown(state);
        assert_int_equal(setup(state), 0);
        f = *state;
        edit_journal(f, seq, 0);
        assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                         TRACE_EVERIFY);
        if (res.bad_seq != seq)
            fail_msg("flipped entry %llu, verify named %llu: %s",
                     (unsigned long long)seq, (unsigned long long)res.bad_seq,
                     res.reason);
    }
}

static void test_deleted_entry(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    edit_journal(f, 5, 1);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                     TRACE_EVERIFY);
    assert_int_equal(res.bad_seq, 5);
}

static void test_truncated_tail(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    edit_journal(f, 6, 1);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                     TRACE_EVERIFY);
    assert_non_null(strstr(res.reason, "signature"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_intact, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bit_in_each_entry, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deleted_entry, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail, setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
