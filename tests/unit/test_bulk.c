/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_bulk.c - an import holds its ids, bal and lots entries back and
 * puts them in key order at the end (bulk.c): the indexes it leaves must
 * be, entry for entry, those that appending the same lines one batch at
 * a time leaves, with back-dated events and corrections in the middle
 * (which make it write what it holds early), duplicates, imports into a
 * ledger that has entries already, and a failed import leaving nothing.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "internal.h" /* bulk_set_budget */
#include "writer.h"   /* writer_window_entries */

#define PARTIES 4

struct text {
    char *s;
    size_t n, cap;
};

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    char line[1024];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(line));
    if (t->n + (size_t)n + 2 > t->cap) {
        t->cap = (t->cap + (size_t)n + 2) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->n, line, (size_t)n);
    t->n += (size_t)n;
    t->s[t->n++] = '\n';
    t->s[t->n] = '\0';
}

/* Minute m after 2026-02-01T00:00 (+08:00). */
static const char *at(char *buf, int m)
{
    snprintf(buf, 40, "2026-02-%02dT%02d:%02d:00+08:00", 1 + m / 1440,
             m / 60 % 24, m % 60);
    return buf;
}

static void parties(struct text *t)
{
    for (int p = 0; p < PARTIES; p++)
        add(t,
            "{\"type\":\"party\",\"id\":\"reg-%d\",\"party\":\"REGULATOR\","
            "\"at\":\"2026-01-01T00:00:00+08:00\",\"subject\":\"P%d\","
            "\"name\":\"n\",\"kind\":\"manufacturer\",\"region\":\"CN-31\","
            "\"licenses\":[\"CN-PC-3\"]}",
            p, p);
}

/* Stock flows of events [from, to): parties in turn, a lot per ten of a
 * party's events, made at the plant, moved to the store, used at both. */
static void flows(struct text *t, int from, int to, const char *tag)
{
    char b[40];
    for (int i = from; i < to; i++) {
        int p = i % PARTIES, k = i / PARTIES;
        int lot = k / 10;
        const char *s = "toluene";
        switch (k % 10) {
        case 0:
            add(t,
                "{\"type\":\"produce\",\"id\":\"%s%d\",\"party\":\"P%d\","
                "\"at\":\"%s\",\"substance\":\"%s\",\"lot\":\"L%d-%d\","
                "\"site\":\"plant\",\"qty\":\"1000\",\"unit\":\"L\"}",
                tag, i, p, at(b, i), s, p, lot);
            break;
        case 1:
        case 4:
            add(t,
                "{\"type\":\"transfer\",\"id\":\"%s%d\",\"party\":\"P%d\","
                "\"at\":\"%s\",\"substance\":\"%s\",\"lot\":\"L%d-%d\","
                "\"from_site\":\"plant\",\"to_site\":\"store\",\"qty\":"
                "\"100\",\"unit\":\"L\"}",
                tag, i, p, at(b, i), s, p, lot);
            break;
        case 9:
            add(t,
                "{\"type\":\"stocktake\",\"id\":\"%s%d\",\"party\":\"P%d\","
                "\"at\":\"%s\",\"substance\":\"%s\",\"lot\":\"L%d-%d\","
                "\"site\":\"store\",\"counted\":\"160\",\"unit\":\"L\"}",
                tag, i, p, at(b, i), s, p, lot);
            break;
        default:
            add(t,
                "{\"type\":\"consume\",\"id\":\"%s%d\",\"party\":\"P%d\","
                "\"at\":\"%s\",\"substance\":\"%s\",\"lot\":\"L%d-%d\","
                "\"site\":\"%s\",\"qty\":\"%d\",\"unit\":\"L\","
                "\"purpose\":\"production\"}",
                tag, i, p, at(b, i), s, p, lot, k % 2 ? "plant" : "store",
                1 + k % 7);
        }
    }
}

/* Appends the lines a batch of at most 50 lines at a time (no import,
 * so nothing is held back). */
static void append_batches(fixture *f, const char *jsonl, unsigned flags)
{
    const char *p = jsonl;
    while (*p) {
        const char *q = p;
        for (int i = 0; i < 50 && *q; i++)
            q = strchr(q, '\n') + 1;
        char *part = strndup(p, (size_t)(q - p));
        trace_append_result r;
        assert_non_null(part);
        assert_int_equal(fixture_import(f, part, flags, &r), TRACE_OK);
        free(part);
        p = q;
    }
}

/* One streaming import of the lines (the bulk path). */
static int import(fixture *f, const char *jsonl, unsigned flags,
                  trace_append_result *r)
{
    trace_import *im;
    unsigned long lineno = 0;
    const char *p = jsonl;
    int rc;

    assert_int_equal(trace_import_begin(&im, f->l, f->ring, NULL, flags, 0),
                     TRACE_OK);
    while (*p) {
        const char *nl = strchr(p, '\n');
        trace_import_line(im, p, (size_t)(nl - p), ++lineno);
        p = nl + 1;
    }
    rc = trace_import_next_error(im);
    if (rc == TRACE_OK)
        rc = trace_import_commit(im, r);
    trace_import_free(im);
    return rc;
}

struct digest {
    uint64_t h;
    size_t entries, leaf_pages;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ s[i]) * 0x100000001b3ull;
}

/* Every entry of database `db`, in order, folded into a digest. */
static struct digest digest_of(fixture *f, const char *db)
{
    struct digest d = {0xcbf29ce484222325ull, 0, 0};
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat st;

    raw_begin(f, db, &env, &txn, &dbi);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, d.entries ? MDB_NEXT : MDB_FIRST) == 0) {
        uint32_t n[2] = {(uint32_t)k.mv_size, (uint32_t)v.mv_size};
        d.entries++;
        /* provisioned keys' events are named by the key's fingerprint,
         * which differs from ledger to ledger */
        if (k.mv_size > 14 && memcmp(k.mv_data, "REGULATOR\0key:", 14) == 0)
            continue;
        mix(&d.h, n, sizeof(n));
        mix(&d.h, k.mv_data, k.mv_size);
        mix(&d.h, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    d.leaf_pages = st.ms_leaf_pages;
    raw_end(f, env, txn);
    return d;
}

static const char *const dbs[] = {"ids", "bal", "lots", "journal"};

/* The two ledgers' indexes are the same, entry for entry (the journals
 * hold the same number of entries; their bytes differ by keys and
 * times). */
static void same_indexes(fixture *a, fixture *b)
{
    for (size_t i = 0; i < sizeof(dbs) / sizeof(*dbs); i++) {
        struct digest x = digest_of(a, dbs[i]), y = digest_of(b, dbs[i]);
        assert_int_equal(x.entries, y.entries);
        if (strcmp(dbs[i], "journal") != 0) {
            if (x.h != y.h)
                fail_msg("%s differs (%zu entries)", dbs[i], x.entries);
        }
    }
}

/* The journal verifies and every index is what it implies. */
static void verified(fixture *f)
{
    trace_verify_result vr;
    trace_verify_deep_result dr;

    if (trace_ledger_verify(f->l, &vr, NULL, NULL) != TRACE_OK)
        fail_msg("verify: %s", vr.reason);
    if (trace_ledger_verify_deep(f->l, NULL, &dr, NULL, NULL, NULL) != TRACE_OK)
        fail_msg("verify --deep: %s", dr.reason);
}

static void same_as_batches(int fill)
{
    void *sa = NULL, *sb = NULL;
    struct text t = {0}, t2 = {0}, t3 = {0};
    trace_append_result r;
    char b[40];
    const unsigned flags = TRACE_APPEND_PROVISION_KEYS | TRACE_APPEND_HISTORIC;

    assert_int_equal(fixture_setup(&sa), 0);
    assert_int_equal(fixture_setup(&sb), 0);
    fixture *a = sa, *bb = sb;

    /* a first file: registrations, flows, then in the middle a
     * back-dated consumption (before the holding's last change), a
     * correction of an earlier event and the same line twice */
    parties(&t);
    flows(&t, 0, 400, "a");
    add(&t,
        "{\"type\":\"consume\",\"id\":\"late1\",\"party\":\"P1\",\"at\":"
        "\"%s\",\"substance\":\"toluene\",\"lot\":\"L1-0\",\"site\":"
        "\"plant\",\"qty\":\"3\",\"unit\":\"L\",\"purpose\":"
        "\"production\"}",
        at(b, 10));
    add(&t,
        "{\"type\":\"correction\",\"id\":\"fix1\",\"party\":\"P2\",\"at\":"
        "\"%s\",\"corrects\":\"a6\",\"reason\":\"typo\",\"replacement\":"
        "{\"type\":\"consume\",\"id\":\"a6\",\"party\":\"P2\",\"at\":\"%s\","
        "\"substance\":\"toluene\",\"lot\":\"L2-0\",\"site\":\"store\","
        "\"qty\":\"2\",\"unit\":\"L\",\"purpose\":\"production\"}}",
        at(b, 401), "2026-02-01T00:06:00+08:00");
    flows(&t, 400, 800, "a");
    flows(&t, 790, 800, "a"); /* the same lines again: already present */

    append_batches(a, t.s, flags);
    assert_int_equal(import(bb, t.s, flags, &r), TRACE_OK);
    assert_int_equal(r.duplicates, 10);
    same_indexes(a, bb);
    verified(bb);

    /* a second, larger file into the ledger that has the first: the small
     * indexes are written again in order with the new entries */
    flows(&t2, 800, 9000, "b");
    append_batches(a, t2.s, flags);
    assert_int_equal(import(bb, t2.s, flags, &r), TRACE_OK);
    same_indexes(a, bb);
    verified(bb);
    /* ...and fill their pages: fewer pages than the same entries put one
     * batch at a time */
    if (fill) {
        struct digest x = digest_of(a, "ids"), y = digest_of(bb, "ids");
        assert_true(y.leaf_pages < x.leaf_pages);
        x = digest_of(a, "bal");
        y = digest_of(bb, "bal");
        assert_true(y.leaf_pages < x.leaf_pages);
    }

    /* a third, small one: put among the existing entries */
    flows(&t3, 9000, 9100, "c");
    add(&t3,
        "{\"type\":\"consume\",\"id\":\"late2\",\"party\":\"P3\",\"at\":"
        "\"%s\",\"substance\":\"toluene\",\"lot\":\"L3-0\",\"site\":"
        "\"plant\",\"qty\":\"1\",\"unit\":\"L\",\"purpose\":"
        "\"production\"}",
        at(b, 20));
    flows(&t3, 9100, 9200, "c");
    append_batches(a, t3.s, flags);
    assert_int_equal(import(bb, t3.s, flags, &r), TRACE_OK);
    same_indexes(a, bb);
    verified(bb);

    free(t.s);
    free(t2.s);
    free(t3.s);
    fixture_teardown(&sa);
    fixture_teardown(&sb);
}

/* A consumption of P0 reusing `id` with content of its own. */
static void reused_id(struct text *t, const char *id, const char *at)
{
    add(t,
        "{\"type\":\"consume\",\"id\":\"%s\",\"party\":\"P0\",\"at\":"
        "\"%s\",\"substance\":\"toluene\",\"lot\":\"L0-7\",\"site\":"
        "\"plant\",\"qty\":\"9\",\"unit\":\"L\",\"purpose\":"
        "\"production\"}",
        id, at);
}

/* The import of `jsonl` fails (an id reused) and leaves every index as
 * it was; the ledger verifies. */
static void fails_leaving_nothing(fixture *f, const char *jsonl, unsigned flags)
{
    struct digest before[3];
    trace_append_result r;

    for (int i = 0; i < 3; i++)
        before[i] = digest_of(f, dbs[i]);
    assert_int_equal(import(f, jsonl, flags, &r), TRACE_EEXIST);
    for (int i = 0; i < 3; i++) {
        struct digest d = digest_of(f, dbs[i]);
        assert_int_equal(d.entries, before[i].entries);
        assert_true(d.h == before[i].h);
    }
    verified(f);
}

/* A file whose last line reuses an id with other content: nothing of it
 * is written, the indexes are as before, and appends go on as usual. */
static void test_bulk_failure_leaves_nothing(void **state)
{
    fixture *f = *state;
    struct text t = {0}, t2 = {0}, bad = {0};
    trace_append_result r;
    const unsigned flags = TRACE_APPEND_PROVISION_KEYS | TRACE_APPEND_HISTORIC;

    parties(&t);
    flows(&t, 0, 200, "a");
    assert_int_equal(import(f, t.s, flags, &r), TRACE_OK);

    flows(&t2, 200, 2000, "a");
    flows(&bad, 200, 2000, "a");
    reused_id(&bad, "a300", "2026-02-03T00:00:00+08:00");
    fails_leaving_nothing(f, bad.s, flags);
    /* the same lines without the last one go in by the other path */
    assert_int_equal(fixture_import(f, t2.s, flags, &r), TRACE_OK);
    assert_int_equal(r.appended, 1800);
    verified(f);
    free(t.s);
    free(t2.s);
    free(bad.s);
}

static void test_bulk_same_as_batches(void **state)
{
    (void)state;
    same_as_batches(1);
}

/* Held entries past the memory budget are written in the middle of the
 * import (here every few hundred): the same indexes again. */
static void test_bulk_budget(void **state)
{
    (void)state;
    bulk_set_budget(48u << 10);
    same_as_batches(0);
    bulk_set_budget(0);
}

/* The lines of `in` in a fixed shuffled order, appended to `out`. */
static void shuffled(struct text *out, const char *in)
{
    size_t n = 0, cap = 64;
    char **lines = malloc(cap * sizeof(*lines));
    uint64_t x = 0x2545f4914f6cdd1dull;

    assert_non_null(lines);
    for (const char *p = in; *p;) {
        const char *nl = strchr(p, '\n');
        if (n == cap) {
            lines = realloc(lines, (cap *= 2) * sizeof(*lines));
            assert_non_null(lines);
        }
        lines[n++] = strndup(p, (size_t)(nl - p));
        p = nl + 1;
    }
    for (size_t i = n; i > 1; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = (size_t)(x % i);
        char *tmp = lines[i - 1];
        lines[i - 1] = lines[j];
        lines[j] = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        add(out, "%s", lines[i]);
        free(lines[i]);
    }
    free(lines);
}

/* A file out of time order: nearly every stock change is back-dated, so
 * the import writes what it holds at almost every event and goes on
 * holding (the ids of each window of entries among them); ids written
 * that way are still found (the same lines again
 * are already present, an id reused with other content fails the file)
 * and the indexes are those the batch appends leave. */
static void test_bulk_shuffled(void **state)
{
    void *sa = NULL, *sb = NULL;
    struct text flow = {0}, dup = {0}, t = {0}, bad = {0};
    trace_append_result r;
    const unsigned flags = TRACE_APPEND_PROVISION_KEYS | TRACE_APPEND_HISTORIC;

    (void)state;
    assert_int_equal(fixture_setup(&sa), 0);
    assert_int_equal(fixture_setup(&sb), 0);
    fixture *a = sa, *b = sb;
    /* entries and ids written every 97 events, so that the writes of what
     * is held at back-dated changes find ids held */
    writer_window_entries = 97;

    parties(&t);
    flows(&flow, 0, 3000, "s");
    shuffled(&t, flow.s);
    flows(&dup, 1200, 1240, "s"); /* already present, once synced */
    shuffled(&t, dup.s);

    append_batches(a, t.s, flags);
    assert_int_equal(import(b, t.s, flags, &r), TRACE_OK);
    assert_int_equal(r.duplicates, 40);
    same_indexes(a, b);
    verified(b);

    free(flow.s);
    flow = (struct text){0};
    flows(&flow, 3000, 3400, "s");
    shuffled(&bad, flow.s);
    reused_id(&bad, "s3100", "2026-02-01T00:00:00+08:00");
    fails_leaving_nothing(b, bad.s, flags);
    writer_window_entries = WINDOW_ENTRIES;

    free(flow.s);
    free(dup.s);
    free(t.s);
    free(bad.s);
    fixture_teardown(&sa);
    fixture_teardown(&sb);
}

/* Appends of another thread while imports commit one after another in
 * the same process: LMDB gives every top-level write transaction the
 * same handle, so an append that begins right after an import committed
 * must not take the import's held entries for its own (they would be
 * freed with the import, and its ids, bal and lots entries lost). */
struct racer {
    fixture *f;
    int n, rc;
    int by_import; /* imports of one line rather than appends */
    char why[512];
};

/* One line into the ledger, by an import or a batch append. */
static int racer_put(struct racer *r, trace_keyring *ring, const char *line,
                     size_t n)
{
    trace_append_result res;
    trace_batch *b;
    int rc;

    if (r->by_import) {
        trace_import *im;
        if ((rc = trace_import_begin(&im, r->f->l, ring, NULL, 0, 0)) !=
            TRACE_OK)
            return rc;
        rc = trace_import_line(im, line, n, 1);
        if (rc == TRACE_OK)
            rc = trace_import_next_error(im);
        if (rc == TRACE_OK)
            rc = trace_import_commit(im, &res);
        trace_import_free(im);
        return rc;
    }
    if ((rc = trace_batch_new(&b, r->f->l)) != TRACE_OK)
        return rc;
    rc = trace_batch_add_json(b, line, n, 1);
    if (rc == TRACE_OK)
        rc = trace_ledger_append(r->f->l, b, ring, NULL, 0, &res);
    trace_batch_free(b);
    return rc;
}

static void *racer_loop(void *arg)
{
    struct racer *r = arg;
    trace_keyring *ring;

    if (trace_keyring_open(&ring, r->f->keys, 0) != TRACE_OK) {
        r->rc = -1;
        return NULL;
    }
    for (int i = 0; i < r->n && r->rc == TRACE_OK; i++) {
        char line[512];
        int n = snprintf(line, sizeof(line),
                         "{\"type\":\"produce\",\"id\":\"t%d\",\"party\":"
                         "\"P1\",\"at\":\"2026-03-01T00:00:00+08:00\","
                         "\"substance\":\"toluene\",\"lot\":\"LT-%d\","
                         "\"site\":\"plant\",\"qty\":\"5\",\"unit\":\"L\"}",
                         i, i);
        if ((r->rc = racer_put(r, ring, line, (size_t)n)) != TRACE_OK)
            snprintf(r->why, sizeof(r->why), "%s", trace_error_last());
    }
    trace_keyring_free(ring);
    __atomic_store_n(&r->n, -1, __ATOMIC_RELEASE);
    return NULL;
}

static void alongside(fixture *f, int by_import)
{
    struct text t = {0};
    struct racer r = {f, 400, TRACE_OK, by_import, ""};
    trace_append_result res;
    pthread_t th;
    int imports = 0;

    parties(&t);
    flows(&t, 0, PARTIES, "a"); /* their keys made */
    assert_int_equal(fixture_import(f, t.s, TRACE_APPEND_PROVISION_KEYS, &res),
                     TRACE_OK);
    assert_int_equal(pthread_create(&th, NULL, racer_loop, &r), 0);
    while (__atomic_load_n(&r.n, __ATOMIC_ACQUIRE) != -1) {
        char line[512];
        snprintf(line, sizeof(line),
                 "{\"type\":\"produce\",\"id\":\"i%d\",\"party\":\"P0\","
                 "\"at\":\"2026-03-01T00:00:00+08:00\",\"substance\":"
                 "\"toluene\",\"lot\":\"LI-%d\",\"site\":\"plant\",\"qty\":"
                 "\"5\",\"unit\":\"L\"}\n",
                 imports, imports);
        if (import(f, line, 0, &res) != TRACE_OK)
            fail_msg("import %d: %s", imports, trace_error_last());
        imports++;
    }
    pthread_join(th, NULL);
    if (r.rc != TRACE_OK)
        fail_msg("%s: %s", by_import ? "import" : "append", r.why);
    /* every entry of both threads is in the indexes (and the genesis,
     * the registrations and a key event per party) */
    verified(f);
    assert_int_equal(digest_of(f, "ids").entries,
                     (size_t)(2 * PARTIES + 400 + imports) + 1 + PARTIES);
    free(t.s);
}

static void test_bulk_appends_alongside(void **state)
{
    alongside(*state, 0);
}

/* ...and imports of another thread: the import that ends forgets its
 * own held entries, not those of the import that began after it. */
static void test_bulk_imports_alongside(void **state)
{
    alongside(*state, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_same_as_batches),
        cmocka_unit_test(test_bulk_budget),
        cmocka_unit_test(test_bulk_shuffled),
        cmocka_unit_test_setup_teardown(test_bulk_failure_leaves_nothing,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bulk_appends_alongside,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bulk_imports_alongside,
                                        fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
