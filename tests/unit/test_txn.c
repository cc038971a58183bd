/* SPDX-License-Identifier: Apache-2.0 */
/* test_txn.c - transactions beside map growth (ledger.c): readers on
 * other threads go on querying while appends fill a small map and grow
 * it; every answer is one the ledger gave at some moment, and nothing
 * crashes.  A thread that holds a transaction and appends gets a full
 * map reported instead of waiting for itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "helpers.h"

#define READERS   3
#define ROUNDS    100
#define PER_ROUND 200                  /* events per append */
#define KG        1000000000LL         /* base units (ug) of 1 kg */
#define SMALL_MAP "1048576"            /* TRACE_MAPSIZE: 1 MiB */
#define MAKER     "91310000MA1K00000M" /* a registered manufacturer */

static const char *const maker =
    "{\"type\":\"party\",\"id\":\"r1\",\"party\":\"REGULATOR\",\"at\":"
    "\"2026-01-01T00:00:00+08:00\",\"subject\":\"" MAKER "\",\"name\":"
    "\"Maker\",\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":"
    "[\"CN-PC-1\"]}\n";

/* Appends `n` events of 1 kg of lot `lot` by MAKER, ids
 * <lot>-<round>-<i>. */
static int append_lot(fixture *f, const char *lot, int round, int n)
{
    trace_batch *b;
    char line[512];
    int rc;

    if ((rc = trace_batch_new(&b, f->l)) != TRACE_OK)
        return rc;
    for (int i = 0; i < n && rc == TRACE_OK; i++) {
        int len = snprintf(line, sizeof(line),
                           "{\"type\":\"produce\",\"id\":\"%s-%d-%d\","
                           "\"party\":\"" MAKER "\",\"at\":"
                           "\"2026-02-01T00:00:00Z\",\"substance\":"
                           "\"ephedrine\",\"lot\":\"%s\",\"qty\":\"1\","
                           "\"unit\":\"kg\"}",
                           lot, round, i, lot);
        rc = trace_batch_add_json(b, line, (size_t)len, (unsigned long)i + 1);
    }
    if (rc == TRACE_OK)
        rc = trace_ledger_append(f->l, b, f->ring, NULL,
                                 TRACE_APPEND_PROVISION_KEYS, NULL);
    trace_batch_free(b);
    return rc;
}

static int append_round(fixture *f, int round, int n)
{
    return append_lot(f, "L1", round, n);
}

static int setup_small(void **state)
{
    fixture *f;
    int rc;

    setenv("TRACE_MAPSIZE", SMALL_MAP, 1);
    rc = fixture_setup(state);
    unsetenv("TRACE_MAPSIZE");
    if (rc != 0)
        return rc;
    f = *state;
    /* MAKER, its key (provisioned with its first event) and a holding
     * of lot L0 */
    if (fixture_import(f, maker, TRACE_APPEND_PROVISION_KEYS, NULL) !=
            TRACE_OK ||
        append_lot(f, "L0", 0, 1) != TRACE_OK) {
        fprintf(stderr, "setup: %s\n", trace_error_last());
        return -1;
    }
    return 0;
}

/* Readers ---------------------------------------------------------------- */

struct shared {
    fixture *f;
    uint64_t base;     /* entries before the first round */
    atomic_int done;   /* the appender finished */
    atomic_int rounds; /* rounds appended so far */
    atomic_int failed; /* a reader saw a wrong answer */
    pthread_mutex_t mu;
    char error[512]; /* the first wrong answer */
    unsigned long reads;
};

static void wrong(struct shared *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void wrong(struct shared *sh, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&sh->mu);
    if (!sh->error[0]) {
        va_start(ap, fmt);
        vsnprintf(sh->error, sizeof(sh->error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&sh->mu);
    atomic_store(&sh->failed, 1);
}

static int sum_holding(const trace_holding *h, void *ctx)
{
    if (strcmp(h->lot, "L1") == 0)
        *(int64_t *)ctx += h->qty;
    return 0;
}

static int count_line(const char *line, size_t len, void *ctx)
{
    (void)line;
    (void)len;
    ++*(uint64_t *)ctx;
    return 0;
}

/* A count of entries is right if it is the base plus whole rounds, and
 * not fewer than a read before it saw. */
static int entries_ok(const struct shared *sh, uint64_t n, uint64_t seen)
{
    return n >= sh->base && (n - sh->base) % PER_ROUND == 0 &&
           (n - sh->base) / PER_ROUND <= ROUNDS && n >= seen;
}

static void *reader_main(void *arg)
{
    struct shared *sh = arg;
    trace_ledger *l = sh->f->l;
    uint64_t head_seen = 0, export_seen = 0;
    int64_t stock_seen = 0;
    unsigned long reads = 0;

    /* one more pass after the appender finished: the final answers */
    for (int last = 0; !last && !atomic_load(&sh->failed); reads++) {
        trace_export_opts eo = TRACE_EXPORT_OPTS_INIT;
        uint8_t hash[32];
        uint64_t size, lines = 0;
        int64_t stock = 0;
        int rc;

        last = atomic_load(&sh->done);
        if ((rc = trace_ledger_head(l, &size, hash)) != TRACE_OK)
            wrong(sh, "head: %s", trace_error_last());
        else if (!entries_ok(sh, size, head_seen))
            wrong(sh, "head: %llu entries after %llu", (unsigned long long)size,
                  (unsigned long long)head_seen);
        head_seen = size;
        if ((rc = trace_balance(l, MAKER, TRACE_AT_NOW, NULL, sum_holding,
                                &stock)) != TRACE_OK)
            wrong(sh, "balance: %s", trace_error_last());
        else if (stock % (PER_ROUND * KG) != 0 || stock < stock_seen ||
                 stock > (int64_t)ROUNDS * PER_ROUND * KG)
            wrong(sh, "balance: %lld ug after %lld", (long long)stock,
                  (long long)stock_seen);
        stock_seen = stock;
        if ((rc = trace_ledger_export(l, &eo, count_line, &lines)) != TRACE_OK)
            wrong(sh, "export: %s", trace_error_last());
        else if (!entries_ok(sh, lines, export_seen))
            wrong(sh, "export: %llu lines after %llu",
                  (unsigned long long)lines, (unsigned long long)export_seen);
        export_seen = lines;
        if (last && !atomic_load(&sh->failed) &&
            (head_seen != sh->base + ROUNDS * PER_ROUND ||
             export_seen != head_seen ||
             stock_seen != (int64_t)ROUNDS * PER_ROUND * KG))
            wrong(sh, "at the end: %llu entries, %llu lines, %lld ug",
                  (unsigned long long)head_seen,
                  (unsigned long long)export_seen, (long long)stock_seen);
    }
    pthread_mutex_lock(&sh->mu);
    sh->reads += reads;
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

/* Reads on other threads while appends grow a 1 MiB map several times:
 * LMDB may move the map as it grows, which a reader still inside a
 * transaction would not survive. */
static void test_readers_beside_growth(void **state)
{
    fixture *f = *state;
    struct shared sh;
    pthread_t t[READERS];
    uint8_t hash[32];
    trace_verify_result vr;
    int rc = TRACE_OK;

    memset(&sh, 0, sizeof(sh));
    sh.f = f;
    assert_int_equal(pthread_mutex_init(&sh.mu, NULL), 0);
    assert_int_equal(trace_ledger_head(f->l, &sh.base, hash), TRACE_OK);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &sh), 0);
    for (int r = 0; r < ROUNDS && rc == TRACE_OK && !atomic_load(&sh.failed);
         r++) {
        rc = append_round(f, r, PER_ROUND);
        atomic_fetch_add(&sh.rounds, 1);
    }
    atomic_store(&sh.done, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&sh.mu);
    if (rc != TRACE_OK)
        fail_msg("append: %s", trace_error_last());
    if (atomic_load(&sh.failed))
        fail_msg("a reader saw %s (after %d rounds)", sh.error,
                 atomic_load(&sh.rounds));
    assert_true(sh.reads > READERS);
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);
    assert_int_equal(vr.entries, sh.base + ROUNDS * PER_ROUND);
}

/* An append from inside a read (a callback runs in its transaction) that
 * fills the map cannot grow it: that would wait for the read, which
 * waits for the append.  The map is reported full; the same append
 * after the read grows the map and succeeds. */
struct inner {
    fixture *f;
    int rc;
    int calls;
    char msg[256]; /* the append's error */
};

static int append_inside(const trace_holding *h, void *ctx)
{
    struct inner *in = ctx;
    (void)h;
    if (in->calls++ == 0) {
        in->rc = append_round(in->f, 1, 4000);
        snprintf(in->msg, sizeof(in->msg), "%s", trace_error_last());
    }
    return 0;
}

static void test_no_growth_inside_a_read(void **state)
{
    fixture *f = *state;
    struct inner in = {f, TRACE_OK, 0, ""};
    trace_verify_result vr;

    assert_int_equal(
        trace_balance(f->l, MAKER, TRACE_AT_NOW, NULL, append_inside, &in),
        TRACE_OK);
    assert_int_equal(in.calls, 1);
    assert_int_equal(in.rc, TRACE_EFULL);
    assert_non_null(strstr(in.msg, "holds a transaction"));
    assert_int_equal(append_round(f, 1, 4000), TRACE_OK);
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readers_beside_growth, setup_small,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_no_growth_inside_a_read,
                                        setup_small, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
