/* SPDX-License-Identifier: Apache-2.0 */
/* test_verify.c - full verification and what it catches (verify.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "helpers.h"
#include "internal.h"
#include "trace/reconcile.h"

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

/* Two parties whose events alternate, in one append: one signature
 * group per party, not one per event. */
static const char *const interleaved =
    "{\"type\":\"party\",\"id\":\"r1\",\"party\":\"REGULATOR\",\"at\":"
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P1\",\"name\":\"One\","
    "\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":[]}\n"
    "{\"type\":\"party\",\"id\":\"r2\",\"party\":\"REGULATOR\",\"at\":"
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P2\",\"name\":\"Two\","
    "\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":[]}\n"
    "{\"type\":\"produce\",\"id\":\"a1\",\"party\":\"P1\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"L1\","
    "\"qty\":\"5\",\"unit\":\"kg\"}\n"
    "{\"type\":\"produce\",\"id\":\"b1\",\"party\":\"P2\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"M1\","
    "\"qty\":\"5\",\"unit\":\"kg\"}\n"
    "{\"type\":\"produce\",\"id\":\"a2\",\"party\":\"P1\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"L2\","
    "\"qty\":\"5\",\"unit\":\"kg\"}\n"
    "{\"type\":\"produce\",\"id\":\"b2\",\"party\":\"P2\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"M2\","
    "\"qty\":\"5\",\"unit\":\"kg\"}\n"
    "{\"type\":\"correction\",\"id\":\"a3\",\"party\":\"P1\",\"at\":"
    "\"2026-01-08T09:00:00+08:00\",\"corrects\":\"a2\",\"reason\":\"typo\"}\n"
    "{\"type\":\"produce\",\"id\":\"b3\",\"party\":\"P2\",\"at\":"
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":\"M3\","
    "\"qty\":\"5\",\"unit\":\"kg\"}";

/* Entries: 1 genesis, 2 party P1, 3 party P2, 4 P1's key, 5 a1, 6 P2's
 * key, 7 b1, 8 a2, 9 b2, 10 a3 (corrects a2, in the same window), 11 b3. */
static int setup_interleaved(void **state)
{
    trace_append_result r;
    if (fixture_setup(state) != 0)
        return -1;
    return fixture_import(*state, interleaved, TRACE_APPEND_PROVISION_KEYS, &r);
}

static void entry_at(fixture *f, uint64_t seq, Trace__V1__Entry **e, arena *a)
{
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->l->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(entry_get(txn, f->l, a, seq, e), TRACE_OK);
    mdb_txn_abort(txn);
}

static void test_interleaved_groups(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    arena *a = arena_new(0);
    Trace__V1__Entry *e;

    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, 11);
    /* genesis, then one group each: REGULATOR, P1, P2 */
    assert_int_equal(res.groups, 4);
    /* the signatures sit on each party's last entry of the append */
    entry_at(f, 10, &e, a);
    assert_string_equal(e->party, "P1");
    assert_true(e->has_sig);
    assert_int_equal(e->sig_count, 3);
    assert_int_equal(e->version, 2);
    entry_at(f, 8, &e, a);
    assert_false(e->has_sig);
    entry_at(f, 11, &e, a);
    assert_true(e->has_sig);
    assert_int_equal(e->sig_count, 3);
    entry_at(f, 6, &e, a);
    assert_string_equal(e->party, "REGULATOR");
    assert_true(e->has_sig);
    assert_int_equal(e->sig_count, 4);
    arena_free(a);
}

static void test_interleaved_flipped_bits(void **state)
{
    fixture *f = *state;
    trace_verify_result res;

    for (uint64_t seq = 2; seq <= 11; seq++) {
        edit_journal(f, seq, 0);
        assert_int_not_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                             TRACE_OK);
        assert_true(res.bad_seq > 0);
        edit_journal(f, seq, 0); /* flips it back */
        assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    }
}

/* Group commit with one signed group per party (what traced receives):
 * the signatures are checked over each party's events in order; a wrong
 * one, a wrong count or an uncovered party refuses the batch. */
static void party_groups_batch(fixture *f, trace_batch **b,
                               trace_signed_group g[2], int spoil)
{
    static const char *const lines[] = {
        "{\"type\":\"produce\",\"id\":\"c1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-09T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"
        "\"L9\",\"qty\":\"1\",\"unit\":\"kg\"}",
        "{\"type\":\"produce\",\"id\":\"d1\",\"party\":\"P2\",\"at\":"
        "\"2026-01-09T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"
        "\"M9\",\"qty\":\"1\",\"unit\":\"kg\"}",
        "{\"type\":\"produce\",\"id\":\"c2\",\"party\":\"P1\",\"at\":"
        "\"2026-01-09T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"
        "\"L9\",\"qty\":\"1\",\"unit\":\"kg\"}"};
    const char *party[2] = {"P1", "P2"};

    assert_int_equal(trace_batch_new(b, f->l), TRACE_OK);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(
            trace_batch_add_json(*b, lines[i], strlen(lines[i]), i + 1),
            TRACE_OK);
    for (int k = 0; k < 2; k++) {
        const trace_key *key;
        const uint8_t *ev[3];
        size_t lens[3], n = 0;
        uint8_t digest[32];
        for (size_t i = 0; i < 3; i++) {
            const char *rec;
            trace_batch_event(*b, i, NULL, &rec, &ev[n], &lens[n], NULL);
            if (strcmp(rec, party[k]) == 0)
                n++;
        }
        assert_int_equal(trace_keyring_get(f->ring, party[k], &key), TRACE_OK);
        assert_int_equal(trace_group_digest(party[k], trace_key_id(key), ev,
                                            lens, n, digest),
                         TRACE_OK);
        memset(&g[k], 0, sizeof(g[k]));
        snprintf(g[k].party, sizeof(g[k].party), "%s", party[k]);
        memcpy(g[k].key_id, trace_key_id(key), TRACE_KEY_ID_LEN);
        assert_int_equal(trace_key_sign(key, digest, 32, g[k].sig), TRACE_OK);
        g[k].count = n;
    }
    if (spoil == 1)
        g[1].sig[5] ^= 1;
    if (spoil == 2)
        g[0].count = 1;
}

static int commit_one(fixture *f, trace_batch *b, trace_signed_group *g,
                      size_t n)
{
    trace_commit *c;
    trace_append_result r;
    int rc;
    assert_int_equal(trace_commit_begin(&c, f->l), TRACE_OK);
    rc = trace_commit_add(c, b, g, n, TRACE_APPEND_PARTY_GROUPS, &r);
    if (rc == TRACE_OK)
        assert_int_equal(trace_commit_end(c, NULL), TRACE_OK);
    trace_commit_free(c);
    return rc;
}

static void test_commit_party_groups(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    trace_signed_group g[2];
    trace_batch *b;

    for (int spoil = 1; spoil <= 3; spoil++) {
        party_groups_batch(f, &b, g, spoil);
        assert_int_not_equal(commit_one(f, b, g, spoil == 3 ? 1 : 2), TRACE_OK);
        trace_batch_free(b);
    }
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, 11);
    party_groups_batch(f, &b, g, 0);
    assert_int_equal(commit_one(f, b, g, 2), TRACE_OK);
    /* sent again (a retry): accepted, nothing new */
    assert_int_equal(commit_one(f, b, g, 2), TRACE_OK);
    trace_batch_free(b);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, 14);
    assert_int_equal(res.groups, 6);
}

/* A commit with a signed group for each of many parties (their
 * signatures are checked ahead on two threads): one bad signature, in
 * either half, refuses the whole batch and names its party; with all
 * good ones every event is stored. */
#define MANY 24
static void many_groups_batch(fixture *f, trace_batch **b,
                              trace_signed_group g[MANY], int spoil)
{
    char line[320];

    assert_int_equal(trace_batch_new(b, f->l), TRACE_OK);
    for (int i = 0; i < 2 * MANY; i++) {
        snprintf(line, sizeof(line),
                 "{\"type\":\"produce\",\"id\":\"m%d-%d\",\"party\":"
                 "\"Q%02d\",\"at\":\"2026-01-10T08:00:00+08:00\","
                 "\"substance\":\"ephedrine\",\"lot\":\"Q%02d\",\"qty\":"
                 "\"1\",\"unit\":\"kg\"}",
                 spoil, i, i % MANY, i % MANY);
        assert_int_equal(trace_batch_add_json(*b, line, strlen(line), i + 1),
                         TRACE_OK);
    }
    for (int k = 0; k < MANY; k++) {
        const trace_key *key;
        const uint8_t *ev[2];
        size_t lens[2];
        uint8_t digest[32];
        char party[8];
        snprintf(party, sizeof(party), "Q%02d", k);
        trace_batch_event(*b, (size_t)k, NULL, NULL, &ev[0], &lens[0], NULL);
        trace_batch_event(*b, (size_t)(k + MANY), NULL, NULL, &ev[1], &lens[1],
                          NULL);
        assert_int_equal(trace_keyring_get(f->ring, party, &key), TRACE_OK);
        assert_int_equal(
            trace_group_digest(party, trace_key_id(key), ev, lens, 2, digest),
            TRACE_OK);
        memset(&g[k], 0, sizeof(g[k]));
        snprintf(g[k].party, sizeof(g[k].party), "%s", party);
        memcpy(g[k].key_id, trace_key_id(key), TRACE_KEY_ID_LEN);
        assert_int_equal(trace_key_sign(key, digest, 32, g[k].sig), TRACE_OK);
        g[k].count = 2;
    }
    if (spoil > 0)
        g[spoil - 1].sig[7] ^= 0x40;
}

static void test_commit_many_groups(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    trace_signed_group g[MANY];
    trace_batch *b;
    char reg[16384];
    size_t o = 0;

    /* registered, each with a first event (which provisions its key) */
    for (int k = 0; k < MANY; k++)
        o += (size_t)snprintf(
            reg + o, sizeof(reg) - o,
            "{\"type\":\"party\",\"id\":\"q%d\",\"party\":\"REGULATOR\","
            "\"at\":\"2026-01-01T00:00:00+08:00\",\"subject\":\"Q%02d\","
            "\"name\":\"Q\",\"kind\":\"manufacturer\",\"region\":\"CN\","
            "\"licenses\":[\"CN-PC-1\"]}\n"
            "{\"type\":\"produce\",\"id\":\"q0\",\"party\":\"Q%02d\","
            "\"at\":\"2026-01-02T08:00:00+08:00\",\"substance\":"
            "\"ephedrine\",\"lot\":\"Q%02d\",\"qty\":\"1\",\"unit\":"
            "\"kg\"}\n",
            k, k, k, k);
    assert_int_equal(fixture_import(f, reg, TRACE_APPEND_PROVISION_KEYS, NULL),
                     TRACE_OK);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    uint64_t before = res.entries;
    static const int spoils[] = {2, MANY - 1};
    for (size_t s = 0; s < 2; s++) {
        char want[16];
        many_groups_batch(f, &b, g, spoils[s]);
        assert_int_equal(commit_one(f, b, g, MANY), TRACE_EPERM);
        snprintf(want, sizeof(want), "Q%02d", spoils[s] - 1);
        assert_non_null(strstr(trace_error_last(), want));
        trace_batch_free(b);
    }
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, before);
    many_groups_batch(f, &b, g, 0);
    assert_int_equal(commit_one(f, b, g, MANY), TRACE_OK);
    trace_batch_free(b);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, before + 2 * MANY);
}

/* A ledger written by the first format (a signature per run of one
 * party's consecutive events) verifies, and takes new appends. */
static void test_first_format_ledger(void **state)
{
    char dir[] = "/tmp/trace-v1-XXXXXX", cmd[512], keys[300];
    trace_ledger *l;
    trace_keyring *ring;
    trace_verify_result res;
    trace_batch *b;
    static const char *const more[] = {
        "{\"type\":\"produce\",\"id\":\"v2-1\",\"party\":"
        "\"91310000MA1K000001\","
        "\"at\":\"2026-03-01T08:00:00+08:00\",\"substance\":\"acetone\","
        "\"lot\":\"V2\",\"qty\":\"1\",\"unit\":\"L\"}",
        "{\"type\":\"produce\",\"id\":\"v2-2\",\"party\":"
        "\"91320000MA1K000002\","
        "\"at\":\"2026-03-01T08:00:00+08:00\",\"substance\":\"acetone\","
        "\"lot\":\"V2B\",\"qty\":\"1\",\"unit\":\"L\"}",
        "{\"type\":\"produce\",\"id\":\"v2-3\",\"party\":"
        "\"91310000MA1K000001\","
        "\"at\":\"2026-03-01T08:00:00+08:00\",\"substance\":\"acetone\","
        "\"lot\":\"V2\",\"qty\":\"1\",\"unit\":\"L\"}"};

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "cp -r '%s'/. '%s'/ && chmod 600 '%s'/pseudonym.key",
             TRACE_TEST_DATA "/ledger-v1", dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(trace_ledger_open(&l, dir), TRACE_OK);
    assert_int_equal(trace_ledger_verify(l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, 38);
    assert_int_equal(res.groups, 16);
    /* its indexes are what the journal gives (--deep), party states that
     * name the first entry of their append included */
    trace_verify_deep_result dres;
    if (trace_ledger_verify_deep(l, NULL, &dres, NULL, NULL, NULL) != TRACE_OK)
        fail_msg("deep: %s", dres.reason);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    assert_int_equal(trace_keyring_open(&ring, keys, 0), TRACE_OK);
    assert_int_equal(trace_batch_new(&b, l), TRACE_OK);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(
            trace_batch_add_json(b, more[i], strlen(more[i]), i + 1), TRACE_OK);
    assert_int_equal(trace_ledger_append(l, b, ring, NULL, 0, NULL), TRACE_OK);
    trace_batch_free(b);
    assert_int_equal(trace_ledger_verify(l, &res, NULL, NULL), TRACE_OK);
    assert_int_equal(res.entries, 41);
    assert_int_equal(res.groups, 18);
    if (trace_ledger_verify_deep(l, NULL, &dres, NULL, NULL, NULL) != TRACE_OK)
        fail_msg("deep after appends: %s", dres.reason);
    trace_keyring_free(ring);
    trace_ledger_close(l);
    rm_tree(dir);
}

/* A forged signature on a chain whose hashes were all made to agree (the
 * last entry's signature changed, the stored head recomputed): only the
 * signature check finds it, and names that entry. */
static void test_forged_signature(void **state)
{
    fixture *f = *state;
    trace_verify_result res;
    arena *a = arena_new(0);
    Trace__V1__Entry *e;
    uint8_t *buf, leaf[TRACE_HASH_LEN];
    size_t len;
    MDB_txn *txn;
    MDB_val k, v;
    uint8_t key[8];

    entry_at(f, 11, &e, a);
    assert_true(e->has_sig);
    e->sig.data[7] ^= 0x40;
    len = trace__v1__entry__get_packed_size(e);
    buf = malloc(len);
    trace__v1__entry__pack(e, buf);
    leaf_hash(leaf, buf, len);
    assert_int_equal(mdb_txn_begin(f->l->env, NULL, 0, &txn), 0);
    be64_put(key, 11);
    k = (MDB_val){8, key};
    v = (MDB_val){len, buf};
    assert_int_equal(mdb_put(txn, f->l->dbi_journal, &k, &v, 0), 0);
    assert_int_equal(ledger_head_put(txn, f->l, 11, leaf), TRACE_OK);
    /* the checkpoint of 11 entries would no longer match the tree: the
     * forger drops it too, leaving the signature as the only witness */
    assert_int_equal(mdb_del(txn, f->l->dbi_ckpt, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    free(buf);
    arena_free(a);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                     TRACE_EVERIFY);
    assert_int_equal(res.bad_seq, 11);
    assert_non_null(strstr(res.reason, "bad signature"));
}

/* ------------------------------------------------------------------ */
/* verify --deep: the indexes against the journal (deep.c)              */

/* An alert's id, for an acknowledgement. */
static int first_alert(const trace_alert *a, void *ctx)
{
    char *id = ctx;
    if (!id[0])
        snprintf(id, 32, "%s", a->id);
    return 0;
}

/* examples/demo.jsonl (permits, sales, receipts, a correction, dispenses,
 * a destruction), an incremental reconciliation (alerts, rcidx) and an
 * acknowledgement of one alert (acks). */
static int deep_setup(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_append_result r;
    char *text, ack[512], id[32] = "";
    FILE *fp;
    long n;
    int rc;

    if (fixture_setup(state) != 0)
        return -1;
    fixture *f = *state;
    fp = fopen(TRACE_TEST_DATA "/../../examples/demo.jsonl", "rb");
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    text = calloc(1, (size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        free(text);
        return -1;
    }
    fclose(fp);
    rc = fixture_import(f, text, TRACE_APPEND_PROVISION_KEYS, &r);
    free(text);
    if (rc != TRACE_OK)
        return -1;
    o.incremental = 1;
    if (trace_reconcile(f->l, &o, first_alert, id, NULL) != TRACE_OK || !id[0])
        return -1;
    snprintf(ack, sizeof(ack),
             "{\"type\":\"alert_ack\",\"id\":\"ack-1\",\"party\":"
             "\"REGULATOR\",\"at\":\"2026-03-06T09:00:00+08:00\",\"alert\":"
             "\"%s\",\"status\":\"acknowledged\",\"note\":\"seen\"}",
             id);
    return fixture_import(f, ack, 0, &r) == TRACE_OK ? 0 : -1;
}

/* Whether a scratch directory of verify --deep was left in dir. */
static int scratch_left(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int left = 0;
    while (d && (e = readdir(d)))
        left |= strncmp(e->d_name, ".deep-verify-", 13) == 0;
    if (d)
        closedir(d);
    return left;
}

static void test_deep_intact(void **state)
{
    fixture *f = *state;
    trace_verify_deep_result res;
    int rc = trace_ledger_verify_deep(f->l, NULL, &res, NULL, NULL, NULL);

    if (rc != TRACE_OK)
        fail_msg("deep: %s", res.reason[0] ? res.reason : trace_error_last());
    assert_int_equal(res.entries, 39); /* genesis, 5 keys, 32 events, ack */
    assert_true(res.records > 150);
    assert_string_equal(res.index, "");
    assert_false(scratch_left(f->dir));
}

enum edit { E_KEY, E_VALUE, E_DELETE };

/* Changes, behind the library's back, the first record of `db` whose
 * key begins with `prefix` (NULL: the first record): a byte in the
 * middle of its key, a byte of its value (the byte after `needle` in
 * it, or its last byte), or deletes it. */
static void edit_index(fixture *f, const char *db, const char *prefix,
                       enum edit what, const char *needle)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v, nk, nv;
    uint8_t kb[KEY_MAX], *vb;
    size_t at;
    int rc;

    raw_begin(f, db, &env, &txn, &dbi);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (!prefix || (k.mv_size >= strlen(prefix) &&
                        memcmp(k.mv_data, prefix, strlen(prefix)) == 0))
            break;
    assert_int_equal(rc, 0);
    memcpy(kb, k.mv_data, k.mv_size);
    vb = malloc(v.mv_size + 1);
    memcpy(vb, v.mv_data, v.mv_size);
    nk = (MDB_val){k.mv_size, kb};
    nv = (MDB_val){v.mv_size, vb};
    mdb_cursor_close(cur);
    assert_int_equal(mdb_del(txn, dbi, &nk, &nv), 0);
    if (what == E_KEY) {
        for (at = nk.mv_size / 2; at < nk.mv_size && !kb[at]; at++)
            ;
        assert_true(at < nk.mv_size);
        kb[at] ^= 0x01;
    } else if (what == E_VALUE) {
        at = nv.mv_size - 1;
        for (size_t i = 0; needle && i + strlen(needle) <= nv.mv_size; i++)
            if (memcmp(vb + i, needle, strlen(needle)) == 0) {
                at = i + strlen(needle) < nv.mv_size ? i + strlen(needle) : i;
                break;
            }
        vb[at] ^= 0x01;
    }
    if (what != E_DELETE)
        assert_int_equal(mdb_put(txn, dbi, &nk, &nv, 0), 0);
    free(vb);
    raw_end(f, env, txn);
}

/* A byte changed in a key or value of each index, or a record deleted:
 * plain verify still passes, --deep names the index and the record. */
static void test_deep_catches(void **state)
{
    static const struct {
        const char *db, *prefix;
        enum edit what;
        const char *needle, *problem;
    } cases[] = {
        {"bal", NULL, E_KEY, NULL, NULL},
        {"bal", NULL, E_VALUE, NULL, "differs"},
        {"lots", NULL, E_KEY, NULL, NULL},
        {"lots", NULL, E_VALUE, NULL, "differs"},
        {"permits", NULL, E_KEY, NULL, NULL},
        {"permits", NULL, E_VALUE, NULL, "differs"},
        {"parties", NULL, E_KEY, NULL, NULL},
        {"parties", NULL, E_VALUE, "Hospital", "differs"},
        {"pev", NULL, E_VALUE, NULL, "differs"},
        {"ids", NULL, E_KEY, NULL, NULL},
        {"ids", NULL, E_VALUE, NULL, "differs"},
        {"pchain", NULL, E_VALUE, NULL, NULL},
        {"heads", NULL, E_VALUE, NULL, "differs"},
        {"keys", NULL, E_VALUE, NULL, "differs"},
        {"eff", NULL, E_VALUE, NULL, "differs"},
        {"acks", NULL, E_VALUE, NULL, "differs"},
        {"rcidx", "o", E_KEY, NULL, NULL},
        {"alerts", NULL, E_VALUE, "\"rule\":\"", "inconsistent"},
        {"alerts", NULL, E_VALUE, "\"events\":[{\"party\":\"", "inconsistent"},
        {"alerts", NULL, E_VALUE, "{", "inconsistent"},
        {"lots", NULL, E_DELETE, NULL, "missing"},
        {"bal", NULL, E_DELETE, NULL, "missing"},
        {"parties", NULL, E_DELETE, NULL, "missing"},
        {"alertseq", NULL, E_DELETE, NULL, "inconsistent"},
        {"alerts", NULL, E_DELETE, NULL, "inconsistent"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trace_verify_deep_result res;
        trace_verify_result vres;
        const char *want_db = cases[i].db;
        fixture *f;
        int rc;

        fixture_teardown(state);
        assert_int_equal(deep_setup(state), 0);
        f = *state;
        edit_index(f, cases[i].db, cases[i].prefix, cases[i].what,
                   cases[i].needle);
        assert_int_equal(trace_ledger_verify(f->l, &vres, NULL, NULL),
                         TRACE_OK);
        rc = trace_ledger_verify_deep(f->l, NULL, &res, NULL, NULL, NULL);
        if (rc != TRACE_EVERIFY || strcmp(res.index, want_db) != 0 ||
            !res.key[0] ||
            (cases[i].problem && strcmp(res.problem, cases[i].problem)) ||
            (!cases[i].problem && strcmp(res.problem, "missing") != 0 &&
             strcmp(res.problem, "unexpected") != 0))
            fail_msg("case %zu (%s %d): rc %d, %s", i, cases[i].db,
                     cases[i].what, rc, res.reason);
        assert_non_null(strstr(res.reason, want_db));
        assert_non_null(strstr(res.reason, res.key));
        assert_false(scratch_left(f->dir));
    }
}

/* The reason names the record readably: the holding's strings as text. */
static void test_deep_names_record(void **state)
{
    fixture *f = *state;
    trace_verify_deep_result res;

    edit_index(f, "bal", "91320000MA1K000002", E_VALUE, NULL);
    assert_int_equal(
        trace_ledger_verify_deep(f->l, NULL, &res, NULL, NULL, NULL),
        TRACE_EVERIFY);
    assert_string_equal(res.index, "bal");
    assert_string_equal(res.problem, "differs");
    assert_string_equal(res.key,
                        "91320000MA1K000002\\0ephedrine\\0EPH-2601-A\\0main");
    assert_non_null(strstr(res.expected, "unit kg"));
    assert_non_null(strstr(res.found, "unit "));
    assert_string_not_equal(res.expected, res.found);
}

/* A party state written by an older version names the first entry of
 * its append's window: accepted when only that differs and the entry it
 * names was recorded in the same append; any other seq is not. */
static void test_deep_party_seq(void **state)
{
    fixture *f = *state;
    trace_verify_deep_result res;

    for (int round = 0; round < 2; round++) {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_val k = {18, "91310000MA1K000001"}, v;
        Trace__V1__PartyState *st;
        uint8_t *buf;
        size_t len;

        raw_begin(f, "parties", &env, &txn, &dbi);
        assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
        st = trace__v1__party_state__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(st);
        assert_true(st->has_seq && (round == 1 || st->seq > 2));
        st->seq = round == 0 ? 2 : 1; /* 1: genesis, another append */
        len = trace__v1__party_state__get_packed_size(st);
        buf = malloc(len);
        trace__v1__party_state__pack(st, buf);
        trace__v1__party_state__free_unpacked(st, NULL);
        v = (MDB_val){len, buf};
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        free(buf);
        raw_end(f, env, txn);
        assert_int_equal(
            trace_ledger_verify_deep(f->l, NULL, &res, NULL, NULL, NULL),
            round == 0 ? TRACE_OK : TRACE_EVERIFY);
    }
    assert_string_equal(res.index, "parties");
    assert_string_equal(res.key, "91310000MA1K000001");
}

/* Progress reaches its total; stop ends the work (and leaves nothing). */
static void progress_seen(uint64_t done, uint64_t total, void *ctx)
{
    uint64_t *last = ctx;
    assert_true(done <= total);
    *last = done == total ? total : 0;
}

static int stop_now(void *ctx)
{
    (void)ctx;
    return 1;
}

static void test_deep_progress_stop(void **state)
{
    fixture *f = *state;
    trace_verify_deep_result res;
    uint64_t last = 0;

    assert_int_equal(
        trace_ledger_verify_deep(f->l, NULL, &res, progress_seen, NULL, &last),
        TRACE_OK);
    assert_true(last > 0);
    assert_int_equal(
        trace_ledger_verify_deep(f->l, NULL, &res, NULL, stop_now, NULL),
        TRACE_EUNAVAIL);
    assert_false(scratch_left(f->dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_intact, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_interleaved_groups,
                                        setup_interleaved, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_interleaved_flipped_bits,
                                        setup_interleaved, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_commit_party_groups,
                                        setup_interleaved, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_commit_many_groups, setup,
                                        fixture_teardown),
        cmocka_unit_test(test_first_format_ledger),
        cmocka_unit_test_setup_teardown(test_deep_intact, deep_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deep_catches, deep_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deep_names_record, deep_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deep_party_seq, deep_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deep_progress_stop, deep_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_forged_signature,
                                        setup_interleaved, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bit_in_each_entry, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_deleted_entry, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail, setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
