/* SPDX-License-Identifier: Apache-2.0 */
/* test_overflow.c - quantities that do not fit an int64: the per-event
 * ceiling at parse time, running stock refused at append (import, the
 * signed/commit path), and queries and rules on ledgers that already hold
 * such sums (quantity.c, event_json.c, state.c, query.c, register.c,
 * permit.c, rules_stock.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

#define MAX_UG  "9223372036854775807" /* INT64_MAX */
#define HALF_UG "4611686018427387904" /* INT64_MAX / 2 + 1 */

#define REG(id, subject, kind)                                                 \
    "{\"type\":\"party\",\"id\":\"" id "\",\"party\":\"REGULATOR\",\"at\":"    \
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"" subject "\",\"name\":\"x\"" \
    ",\"kind\":\"" kind "\",\"region\":\"CN-31\",\"licenses\":[\"CN-PC-1\"]}"
#define PARTIES                                                                \
    REG("r1", "P1", "manufacturer") "\n" REG("r2", "P2", "distributor")

/* A stock movement of P1 of ephedrine in ug. */
#define MOVE(type, id, at, lot, site, qty)                                     \
    "{\"type\":\"" type "\",\"id\":\"" id "\",\"party\":\"P1\",\"at\":"        \
    "\"2026-01-" at "T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"   \
    "\"" lot "\",\"site\":\"" site "\",\"qty\":\"" qty "\",\"unit\":\"ug\""
#define PRODUCE(id, at, lot, site, qty)                                        \
    MOVE("produce", id, at, lot, site, qty) "}"
#define CONSUME(id, at, lot, qty)                                              \
    MOVE("consume", id, at, lot, "main", qty) ",\"purpose\":\"test\"}"

static uint64_t head_size(fixture *f)
{
    uint64_t n;
    uint8_t h[32];
    assert_int_equal(trace_ledger_head(f->l, &n, h), TRACE_OK);
    return n;
}

/* The fixture's ledger with the mass ceiling raised to INT64_MAX ug and
 * P1 and P2 registered with keys. */
static int setup(void **state)
{
    fixture *f;
    if (fixture_setup(state) != 0)
        return -1;
    f = *state;
    if (trace_ledger_set_max_qty(f->l, MAX_UG " ug") != TRACE_OK ||
        fixture_import(f, PARTIES, TRACE_APPEND_PROVISION_KEYS, NULL) !=
            TRACE_OK) {
        fprintf(stderr, "setup: %s\n", trace_error_last());
        return -1;
    }
    /* keys are provisioned with a party's first own event */
    if (fixture_import(f, PRODUCE("k1", "01", "K", "main", "1"),
                       TRACE_APPEND_PROVISION_KEYS, NULL) != TRACE_OK)
        return -1;
    return 0;
}

/* Book stock of P1 (lot -> qty) as one "lot@site=qty;" string. */
struct stock {
    char text[512];
    char texts[512]; /* qty_text of each, "text;" */
};

static int add_holding(const trace_holding *h, void *ctx)
{
    struct stock *s = ctx;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "%s@%s=%lld;", h->lot, h->site,
             (long long)h->qty);
    n = strlen(s->texts);
    snprintf(s->texts + n, sizeof(s->texts) - n, "%s;", h->qty_text);
    return 0;
}

static int balance_of(fixture *f, struct stock *s)
{
    memset(s, 0, sizeof(*s));
    return trace_balance(f->l, "P1", TRACE_AT_NOW, NULL, add_holding, s);
}

/* Two produce events of INT64_MAX ug each, one lot, one site: the
 * second is refused, nothing of the batch is stored. */
static void test_two_max_produce_refused(void **state)
{
    fixture *f = *state;
    uint64_t before = head_size(f);
    struct stock s;

    assert_int_equal(
        fixture_import(f,
                       PRODUCE("a1", "08", "L1", "main", MAX_UG) "\n" PRODUCE(
                           "a2", "08", "L1", "main", MAX_UG),
                       0, NULL),
        TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "line 2: quantity overflow"));
    assert_non_null(strstr(trace_error_last(),
                           "stock of ephedrine lot L1 at site main of P1 "
                           "would exceed"));
    assert_true(head_size(f) == before);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_string_equal(s.text, "K@main=1;");

    /* the same through the signed path a daemon commits with */
    const char *lines[] = {PRODUCE("b1", "08", "L1", "main", MAX_UG),
                           PRODUCE("b2", "08", "L1", "main", MAX_UG)};
    const trace_key *key;
    uint8_t digest[32], sig[TRACE_SIG_LEN];
    trace_batch *b;
    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            trace_batch_add_json(b, lines[i], strlen(lines[i]), i + 1),
            TRACE_OK);
    assert_int_equal(trace_keyring_get(f->ring, "P1", &key), TRACE_OK);
    assert_int_equal(trace_batch_digest(b, "P1", trace_key_id(key), digest),
                     TRACE_OK);
    assert_int_equal(trace_key_sign(key, digest, sizeof(digest), sig),
                     TRACE_OK);
    assert_int_equal(trace_ledger_append_signed(
                         f->l, b, "P1", trace_key_id(key), sig, 0, NULL),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "line 2: quantity overflow"));
    trace_batch_free(b);
    assert_true(head_size(f) == before);

    /* the streaming import (tracectl import) */
    trace_import *im;
    assert_int_equal(trace_import_begin(&im, f->l, f->ring, NULL, 0, 0),
                     TRACE_OK);
    for (int i = 0; i < 2; i++)
        trace_import_line(im, lines[i], strlen(lines[i]), i + 1);
    assert_int_equal(trace_import_commit(im, NULL), TRACE_EINVAL);
    trace_import_free(im);
    assert_true(head_size(f) == before);
}

/* A stock that reaches INT64_MAX exactly is fine; one more ug is not,
 * appended at the end or back-dated before existing records. */
static void test_exact_max_then_one_more(void **state)
{
    fixture *f = *state;
    struct stock s;

    assert_int_equal(
        fixture_import(f,
                       PRODUCE("c1", "08", "L2", "main",
                               "9223372036854775806") "\n" PRODUCE("c2", "09",
                                                                   "L2", "main",
                                                                   "1"),
                       0, NULL),
        TRACE_OK);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_non_null(strstr(s.text, "L2@main=" MAX_UG ";"));
    uint64_t before = head_size(f);
    assert_int_equal(
        fixture_import(f, PRODUCE("c3", "10", "L2", "main", "1"), 0, NULL),
        TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "quantity overflow"));
    /* back-dated: the later running balances would overflow */
    assert_int_equal(
        fixture_import(f, PRODUCE("c4", "07", "L2", "main", "1"), 0, NULL),
        TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "would exceed"));
    assert_true(head_size(f) == before);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_non_null(strstr(s.text, "L2@main=" MAX_UG ";"));
    /* the same holding at another site, and a sale out of it, are fine */
    assert_int_equal(
        fixture_import(f,
                       PRODUCE("c5", "10", "L2", "west",
                               "1") "\n" CONSUME("c6", "11", "L2", "1"),
                       0, NULL),
        TRACE_OK);
}

/* Outflows: the stock may reach INT64_MIN (an int64 holds it), not go
 * below. */
static void test_outflow_to_min(void **state)
{
    fixture *f = *state;
    struct stock s;

    assert_int_equal(
        fixture_import(f,
                       CONSUME("d1", "08", "L3",
                               MAX_UG) "\n" CONSUME("d2", "09", "L3", "1"),
                       0, NULL),
        TRACE_OK);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_non_null(strstr(s.text, "L3@main=-9223372036854775808;"));
    /* -INT64_MIN has no int64: the text is exact all the same */
    assert_non_null(strstr(s.texts, ";-9223372036854775808;"));
    assert_int_equal(fixture_import(f, CONSUME("d3", "10", "L3", "1"), 0, NULL),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "would fall below the "
                                               "smallest"));
    /* a correction voiding d1 would take the stock back up: allowed */
    assert_int_equal(
        fixture_import(f,
                       "{\"type\":\"correction\",\"id\":\"d4\",\"party\":"
                       "\"P1\",\"at\":\"2026-01-12T08:00:00+08:00\","
                       "\"corrects\":\"d1\",\"reason\":\"typo\"}",
                       0, NULL),
        TRACE_OK);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_non_null(strstr(s.text, "L3@main=-1;"));
}

/* The per-event ceiling: refused at parse time, configurable, stored
 * events above a lowered ceiling still count. */
static void test_ceiling(void **state)
{
    fixture *f = *state;
    trace_batch *b;
    struct stock s;
    const char *big = PRODUCE("e1", "08", "L4", "main", "5000000001");
    const char *ok = PRODUCE("e2", "08", "L4", "main", "5000000000");
    const char *count =
        "{\"type\":\"stocktake\",\"id\":\"e3\",\"party\":\"P1\",\"at\":"
        "\"2026-01-09T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"
        "\"L4\",\"counted\":\"5.000001\",\"unit\":\"kg\"}";
    const char *input =
        "{\"type\":\"produce\",\"id\":\"e4\",\"party\":\"P1\",\"at\":"
        "\"2026-01-09T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"
        "\"L5\",\"qty\":\"1\",\"unit\":\"kg\",\"inputs\":[{\"lot\":\"L4\","
        "\"substance\":\"ephedrine\",\"qty\":\"6\",\"unit\":\"kg\"}]}";
    const char *permit =
        "{\"type\":\"permit\",\"id\":\"e5\",\"party\":\"REGULATOR\",\"at\":"
        "\"2026-01-06T10:00:00+08:00\",\"permit\":\"PL-E\",\"kind\":"
        "\"purchase_license\",\"holder\":\"P2\",\"counterparty\":\"P1\","
        "\"substance\":\"ephedrine\",\"qty\":\"0.006\",\"unit\":\"t\","
        "\"valid_from\":\"2026-01-06\",\"valid_until\":\"2026-12-31\","
        "\"uses\":\"multi\"}";

    assert_int_equal(trace_ledger_set_max_qty(f->l, "5 kg"), TRACE_OK);
    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, big, strlen(big), 7),
                     TRACE_EINVAL);
    assert_string_equal(trace_error_last(),
                        "line 7: field \"qty\": 5000000001 ug exceeds this "
                        "ledger's ceiling of 5000000000 ug per event for "
                        "mass (see tracectl init --max-qty)");
    assert_int_equal(trace_batch_add_json(b, count, strlen(count), 8),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "field \"counted\""));
    assert_int_equal(trace_batch_add_json(b, input, strlen(input), 9),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "field \"inputs[0].qty\""));
    assert_int_equal(trace_batch_add_json(b, permit, strlen(permit), 10),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "0.006 t exceeds"));
    assert_int_equal(trace_batch_count(b), 0);
    assert_int_equal(trace_batch_add_json(b, ok, strlen(ok), 11), TRACE_OK);
    /* other dimensions keep their ceiling */
    const char *ml = "{\"type\":\"produce\",\"id\":\"e6\",\"party\":\"P1\","
                     "\"at\":\"2026-01-09T08:00:00+08:00\",\"substance\":"
                     "\"morphine\",\"lot\":\"V\",\"qty\":\"6000000\","
                     "\"unit\":\"unit\"}";
    assert_int_equal(trace_batch_add_json(b, ml, strlen(ml), 12), TRACE_OK);
    assert_int_equal(trace_ledger_append(f->l, b, f->ring, NULL, 0, NULL),
                     TRACE_OK);

    /* encoded events (a daemon's commit path) are held to it too */
    const uint8_t *bytes;
    size_t len;
    trace_batch *enc;
    assert_int_equal(trace_batch_event(b, 0, NULL, NULL, &bytes, &len, NULL),
                     TRACE_OK);
    assert_int_equal(trace_ledger_set_max_qty(f->l, "4 kg"), TRACE_OK);
    assert_int_equal(trace_batch_new(&enc, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_encoded(enc, bytes, len, 3), TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "line 3: field \"qty\""));
    trace_batch_free(enc);
    trace_batch_free(b);

    /* stored above the lowered ceiling: still counted, across a reopen */
    trace_ledger_close(f->l);
    assert_int_equal(trace_ledger_open(&f->l, f->dir), TRACE_OK);
    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, ok, strlen(ok), 1), TRACE_EINVAL);
    trace_batch_free(b);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_non_null(strstr(s.text, "L4@main=5000000000;"));

    /* malformed specs */
    assert_int_equal(trace_ledger_set_max_qty(f->l, "5"), TRACE_EINVAL);
    assert_int_equal(trace_ledger_set_max_qty(f->l, "5 parsecs"), TRACE_EINVAL);
    assert_int_equal(trace_ledger_set_max_qty(f->l, "0 kg"), TRACE_EINVAL);
}

/* Ceilings given to trace_ledger_init are stored with the ledger. */
static void test_ceiling_at_init(void **state)
{
    fixture *f = *state;
    char dir[300];
    const char *specs[] = {"2 t", "3m3", "1000 unit"};
    trace_init_opts io = TRACE_INIT_OPTS_INIT;
    const trace_key *key;
    trace_ledger *l;
    trace_batch *b;
    const char *line = "{\"type\":\"party\",\"id\":\"r1\",\"party\":"
                       "\"REGULATOR\",\"at\":\"2026-01-05T09:00:00+08:00\","
                       "\"subject\":\"P1\",\"name\":\"x\",\"kind\":"
                       "\"manufacturer\",\"region\":\"CN-31\",\"licenses\":[]}";
    const char *t3 = PRODUCE("x", "08", "L", "main", "3000000000000");

    snprintf(dir, sizeof(dir), "%s/other", f->dir);
    io.max_qty = specs;
    io.n_max_qty = 3;
    assert_int_equal(trace_keyring_get(f->ring, "REGULATOR", &key), TRACE_OK);
    assert_int_equal(trace_ledger_init(&l, dir, key, &io), TRACE_OK);
    trace_ledger_close(l);
    assert_int_equal(trace_ledger_open(&l, dir), TRACE_OK);
    assert_int_equal(trace_batch_new(&b, l), TRACE_OK);
    if (trace_batch_add_json(b, line, strlen(line), 1) != TRACE_OK)
        fail_msg("%s", trace_error_last());
    assert_int_equal(trace_batch_add_json(b, t3, strlen(t3), 2), TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "ceiling of 2000000000000 ug"));
    trace_batch_free(b);
    trace_ledger_close(l);

    /* a ledger made without ceilings: 10^18 base units each */
    snprintf(dir, sizeof(dir), "%s/fourth", f->dir);
    assert_int_equal(trace_ledger_init(&l, dir, key, NULL), TRACE_OK);
    const char *at_max = PRODUCE("y", "08", "L", "main", "1000000000000000000");
    const char *above = PRODUCE("z", "08", "L", "main", "1000000000000000001");
    assert_int_equal(trace_batch_new(&b, l), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, at_max, strlen(at_max), 1),
                     TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, above, strlen(above), 2),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "ceiling of "
                                               "1000000000000000000 ug per "
                                               "event for mass"));
    trace_batch_free(b);
    trace_ledger_close(l);

    snprintf(dir, sizeof(dir), "%s/other", f->dir);
    specs[0] = "two t";
    assert_int_equal(trace_ledger_init(&l, dir, key, &io), TRACE_EEXIST);
    snprintf(dir, sizeof(dir), "%s/third", f->dir);
    assert_int_equal(trace_ledger_init(&l, dir, key, &io), TRACE_EINVAL);
}

/* Valid write-offs of a permit that sum beyond an int64: a bound, and
 * PERMIT_EXCEEDED. */
struct permit_seen {
    int called, overflow;
    int64_t used;
    char used_text[64], status[32];
};

static int keep_permit(const trace_permit_state *p, void *ctx)
{
    struct permit_seen *s = ctx;
    s->called = 1;
    s->overflow = p->used_overflow;
    s->used = p->used;
    snprintf(s->used_text, sizeof(s->used_text), "%s", p->used_text);
    snprintf(s->status, sizeof(s->status), "%s", p->status);
    return 0;
}

struct alerts {
    char text[4096];
    int n;
};

static int collect(const trace_alert *a, void *ctx)
{
    struct alerts *t = ctx;
    size_t n = strlen(t->text);
    snprintf(t->text + n, sizeof(t->text) - n, "%s: %s\n", a->rule, a->detail);
    t->n++;
    return 0;
}

static int reconcile(fixture *f, struct alerts *t)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    memset(t, 0, sizeof(*t));
    o.dry_run = 1;
    return trace_reconcile(f->l, &o, collect, t, NULL);
}

#define SALE(id, lot)                                                          \
    "{\"type\":\"sale\",\"id\":\"" id "\",\"party\":\"P1\",\"at\":"            \
    "\"2026-01-10T09:30:00+08:00\",\"to\":\"P2\",\"substance\":\"ephedrine\"," \
    "\"lot\":\"" lot "\",\"qty\":\"" MAX_UG "\",\"unit\":\"ug\",\"permit\":"   \
    "\"PL-1\"}"

static void test_permit_writeoff_overflow(void **state)
{
    fixture *f = *state;
    struct permit_seen s = {0};
    struct alerts t;

    assert_int_equal(
        fixture_import(
            f,
            "{\"type\":\"permit\",\"id\":\"pm1\",\"party\":\"REGULATOR\","
            "\"at\":\"2026-01-06T10:00:00+08:00\",\"permit\":\"PL-1\","
            "\"kind\":\"purchase_license\",\"holder\":\"P2\","
            "\"counterparty\":\"P1\",\"substance\":\"ephedrine\",\"qty\":"
            "\"500\",\"unit\":\"kg\",\"valid_from\":\"2026-01-06\","
            "\"valid_until\":\"2099-12-31\",\"uses\":\"multi\"}\n" SALE(
                "s1", "SA") "\n" SALE("s2", "SB") "\n" SALE("s3", "SC"),
            0, NULL),
        TRACE_OK);
    assert_int_equal(
        trace_permit_show(f->l, "PL-1", TRACE_AT_NOW, keep_permit, &s),
        TRACE_OK);
    assert_true(s.called && s.overflow);
    assert_true(s.used == INT64_MAX);
    assert_string_equal(s.used_text, ">9223372036.854775807");
    assert_string_equal(s.status, "exhausted");
    assert_int_equal(reconcile(f, &t), TRACE_OK);
    assert_non_null(strstr(t.text, "PERMIT_EXCEEDED: permit PL-1: more than "
                                   "9223372036.854775807 kg written off"));
}

static int ignore_day(const trace_register_day *d, void *ctx)
{
    (void)d;
    (void)ctx;
    return 0;
}

/* P1's ephedrine register of 8-10 January 2026: its return code. */
static int register_jan(fixture *f)
{
    int64_t from, to;

    assert_int_equal(trace_ledger_parse_time(f->l, "2026-01-08", 0, &from),
                     TRACE_OK);
    assert_int_equal(trace_ledger_parse_time(f->l, "2026-01-10", 1, &to),
                     TRACE_OK);
    return trace_register(f->l, "P1", "ephedrine", from, to, ignore_day, NULL);
}

/* One lot of P1 at two sites, INT64_MAX each: every holding fits, the
 * lot's stock does not.  Nothing crashes; NEGATIVE_STOCK says so; the
 * register, which adds holdings up, fails naming the day. */
static void test_lot_over_sites(void **state)
{
    fixture *f = *state;
    struct alerts t;
    struct stock s;

    assert_int_equal(
        fixture_import(f,
                       PRODUCE("g1", "08", "L6", "main", MAX_UG) "\n" PRODUCE(
                           "g2", "09", "L6", "west",
                           MAX_UG) "\n" CONSUME("g3", "10", "L6", "5"),
                       0, NULL),
        TRACE_OK);
    assert_int_equal(balance_of(f, &s), TRACE_OK);
    assert_int_equal(reconcile(f, &t), TRACE_OK);
    assert_non_null(strstr(t.text,
                           "NEGATIVE_STOCK: book stock of ephedrine lot L6 "
                           "at P1 goes beyond the largest representable "
                           "quantity with produce g2: quantity overflow"));
    assert_int_equal(t.n, 1);

    assert_int_equal(register_jan(f), TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(),
                           "quantity overflow: the register of P1 for "
                           "ephedrine on 2026-01-0"));
}

/* An index written before sums were checked: the second produce of the
 * defect's example stored with the wrapped running balance -2.  Built by
 * storing it at another site, then moving its stock record onto the
 * first one's holding as the old code would have written it. */
static void test_wrapped_index(void **state)
{
    fixture *f = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t rec[26];
    struct stock s;
    struct alerts t;
    static const char main_key[] = "P1\0ephedrine\0LW\0main";
    static const char west_key[] = "P1\0ephedrine\0LW\0west";

    assert_int_equal(
        fixture_import(f,
                       PRODUCE("w1", "08", "LW", "main", MAX_UG) "\n" PRODUCE(
                           "w2", "09", "LW", "west", MAX_UG),
                       0, NULL),
        TRACE_OK);
    raw_begin(f, "bal", &env, &txn, &dbi);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    k = (MDB_val){sizeof(west_key) - 1, (void *)west_key};
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_SET_KEY), 0);
    assert_int_equal(v.mv_size, sizeof(rec));
    memcpy(rec, v.mv_data, sizeof(rec));
    assert_int_equal(mdb_cursor_del(cur, 0), 0);
    mdb_cursor_close(cur);
    memset(rec + 17, 0xff, 8);
    rec[24] = 0xfe; /* INT64_MAX + INT64_MAX, wrapped: -2 */
    k = (MDB_val){sizeof(main_key) - 1, (void *)main_key};
    v = (MDB_val){sizeof(rec), rec};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_end(f, env, txn);

    assert_int_equal(balance_of(f, &s), TRACE_EVERIFY);
    assert_non_null(strstr(trace_error_last(),
                           "quantity overflow: the stock of ephedrine lot LW "
                           "at site main of P1 is beyond the largest"));
    assert_int_equal(register_jan(f), TRACE_EVERIFY);
    assert_non_null(strstr(trace_error_last(), "wrapped"));
    /* the rules add the events up themselves */
    assert_int_equal(reconcile(f, &t), TRACE_OK);
    assert_non_null(strstr(t.text, "lot LW at P1 goes beyond the largest"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_max_produce_refused, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_exact_max_then_one_more, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_outflow_to_min, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ceiling, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ceiling_at_init, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_permit_writeoff_overflow, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lot_over_sites, setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_wrapped_index, setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
