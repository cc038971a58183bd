/* SPDX-License-Identifier: Apache-2.0 */
/* test_query.c - balances, lot tracing, permits and history (state.c,
 * query.c, permit.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define EV(type, id, party, at, rest)                                          \
    "{\"type\":\"" type "\",\"id\":\"" id "\",\"party\":\"" party              \
    "\",\"at\":\"" at "\"," rest "}\n"
#define REG(id, subject, kind)                                                 \
    EV("party", id, "REGULATOR", "2026-01-01T00:00:00+08:00",                  \
       "\"subject\":\"" subject "\",\"name\":\"n\",\"kind\":\"" kind           \
       "\",\"region\":\"CN-31\",\"licenses\":[\"CN-PC-1\",\"CN-PC-2\"]")

/* 2026-01-08T08:00:00+08:00 */
#define T_PRODUCE 1767830400000000LL

static const char *const world = REG("r1", "MAKER", "manufacturer")
    REG("r2", "DIST", "distributor") REG("r3", "USER", "user") EV(
        "permit", "p1", "REGULATOR", "2026-01-02T00:00:00+08:00",
        "\"permit\":\"PL-1\",\"kind\":\"purchase_license\",\"holder\":"
        "\"DIST\",\"counterparty\":\"MAKER\",\"substance\":\"ephedrine\","
        "\"qty\":\"100\",\"unit\":\"kg\",\"valid_from\":\"2026-01-02\","
        "\"valid_until\":\"2026-01-31\",\"uses\":\"multi\"")
        EV("permit", "p2", "REGULATOR", "2026-01-02T00:00:00+08:00",
           "\"permit\":\"PL-2\",\"kind\":\"purchase_license\",\"holder\":"
           "\"DIST\",\"substance\":\"ephedrine\",\"qty\":\"10\",\"unit\":"
           "\"kg\","
           "\"valid_from\":\"2026-01-02\",\"valid_until\":\"2026-12-31\","
           "\"uses\":\"single\"") EV("produce", "m1", "MAKER",
                                     "2026-01-08T08:00:00+08:00",
                                     "\"substance\":\"ephedrine\",\"lot\":"
                                     "\"E1\",\"qty\":\"150\","
                                     "\"unit\":\"kg\"")
            EV("sale", "s1", "MAKER", "2026-01-10T09:00:00+08:00",
               "\"to\":\"DIST\",\"substance\":\"ephedrine\",\"lot\":\"E1\","
               "\"qty\":\"60\",\"unit\":\"kg\",\"permit\":\"PL-1\"")
                EV("receipt", "c1", "DIST", "2026-01-11T09:00:00+08:00",
                   "\"from\":\"MAKER\",\"ref\":\"s1\",\"substance\":\"299-42-"
                   "3\","
                   "\"lot\":\"E1\",\"qty\":\"60000\",\"unit\":\"g\"")
                    EV("sale", "s2", "MAKER", "2026-01-20T09:00:00+08:00",
                       "\"to\":\"DIST\",\"substance\":\"ephedrine\",\"lot\":"
                       "\"E1\","
                       "\"qty\":\"40\",\"unit\":\"kg\",\"permit\":\"PL-1\"")
                        EV("sale", "s3", "MAKER", "2026-02-20T09:00:00+08:00",
                           "\"to\":\"DIST\",\"substance\":\"ephedrine\","
                           "\"lot\":\"E1\","
                           "\"qty\":\"1\",\"unit\":\"kg\",\"permit\":\"PL-1\"")
                            EV("sale", "s4", "MAKER",
                               "2026-01-21T09:00:00+08:00",
                               "\"to\":\"USER\",\"substance\":\"ephedrine\","
                               "\"lot\":\"E1\","
                               "\"qty\":\"5\",\"unit\":\"kg\",\"permit\":\"PL-"
                               "2\"") EV("sale", "s5", "MAKER",
                                         "2026-01-22T09:00:00+08:00",
                                         "\"to\":\"DIST\",\"substance\":"
                                         "\"ephedrine\",\"lot\":\"E1\","
                                         "\"qty\":\"5\",\"unit\":\"kg\","
                                         "\"permit\":\"PL-2\"")
                                EV("sale", "s6", "MAKER",
                                   "2026-01-23T09:00:00+08:00",
                                   "\"to\":\"DIST\",\"substance\":"
                                   "\"ephedrine\",\"lot\":\"E1\","
                                   "\"qty\":\"5\",\"unit\":\"kg\",\"permit\":"
                                   "\"PL-2\"")
    /* DIST turns 0.5 kg of E1 into lot X1, sold to USER */
    EV("produce", "d1", "DIST", "2026-01-12T09:00:00+08:00",
       "\"substance\":\"pseudoephedrine\",\"lot\":\"X1\",\"qty\":\"400\","
       "\"unit\":\"g\",\"inputs\":[{\"lot\":\"E1\",\"substance\":"
       "\"ephedrine\",\"qty\":\"500\",\"unit\":\"g\"}]")
        EV("sale", "d2", "DIST", "2026-01-13T09:00:00+08:00",
           "\"to\":\"USER\",\"substance\":\"pseudoephedrine\",\"lot\":\"X1\","
           "\"qty\":\"0.1\",\"unit\":\"kg\"")
            EV("consume", "u1", "DIST", "2026-01-14T09:00:00+08:00",
               "\"substance\":\"ephedrine\",\"lot\":\"E1\",\"qty\":\"2.5\","
               "\"unit\":\"kg\",\"purpose\":\"synthesis\"");

static int setup(void **state)
{
    trace_append_result r;
    if (fixture_setup(state) != 0)
        return -1;
    if (fixture_import(*state, world, TRACE_APPEND_PROVISION_KEYS, &r) !=
        TRACE_OK) {
        fprintf(stderr, "setup: %s\n", trace_error_last());
        return -1;
    }
    return 0;
}

/* Sum of one party's holdings of (substance, lot), in base units, and
 * the text of the last one seen. */
struct sum {
    const char *lot;
    int64_t total;
    int rows;
    char text[64], unit[8];
};

static int add_holding(const trace_holding *h, void *ctx)
{
    struct sum *s = ctx;
    if (s->lot && strcmp(s->lot, h->lot) != 0)
        return 0;
    s->total += h->qty;
    s->rows++;
    snprintf(s->text, sizeof(s->text), "%s", h->qty_text);
    snprintf(s->unit, sizeof(s->unit), "%s", h->unit);
    return 0;
}

static int64_t stock(fixture *f, const char *party, const char *lot, int64_t at)
{
    struct sum s = {lot, 0, 0, "", ""};
    assert_int_equal(trace_balance(f->l, party, at, NULL, add_holding, &s),
                     TRACE_OK);
    return s.total;
}

#define KG 1000000000LL

static void test_balance_boundaries(void **state)
{
    fixture *f = *state;
    /* the produce counts from exactly its `at`, not a microsecond before */
    assert_true(stock(f, "MAKER", "E1", T_PRODUCE - 1) == 0);
    assert_true(stock(f, "MAKER", "E1", T_PRODUCE) == 150 * KG);
    /* after the first sale (2026-01-10T09:00+08:00) */
    assert_true(stock(f, "MAKER", "E1",
                      T_PRODUCE + 2 * 86400000000LL + 3600000000LL) == 90 * KG);
    /* now: 150 - 60 - 40 - 1 - 5 - 5 - 5 */
    assert_true(stock(f, "MAKER", "E1", TRACE_AT_NOW) == 34 * KG);
}

static void test_units_convert_exactly(void **state)
{
    fixture *f = *state;
    struct sum s = {"E1", 0, 0, "", ""};
    /* DIST: +60000 g (receipt, by CAS number) - 500 g (input) - 2.5 kg */
    assert_int_equal(
        trace_balance(f->l, "DIST", TRACE_AT_NOW, "ephedrine", add_holding, &s),
        TRACE_OK);
    assert_true(s.total == 57 * KG);
    assert_int_equal(s.rows, 1);
    /* shown in the unit the holding was first recorded in */
    assert_string_equal(s.unit, "g");
    assert_string_equal(s.text, "57000");
    struct sum x = {"X1", 0, 0, "", ""};
    assert_int_equal(
        trace_balance(f->l, "DIST", TRACE_AT_NOW, NULL, add_holding, &x),
        TRACE_OK);
    assert_true(x.total == 300000000LL); /* 400 g - 0.1 kg */
}

static void test_corrections(void **state)
{
    fixture *f = *state;
    trace_append_result r;

    /* replace the 2.5 kg consume by 1.25 kg (retroactively) */
    assert_int_equal(
        fixture_import(f,
                       EV("correction", "k1", "DIST",
                          "2026-03-01T09:00:00+08:00",
                          "\"corrects\":\"u1\",\"reason\":\"typo\","
                          "\"replacement\":{\"type\":\"consume\",\"id\":"
                          "\"u1\",\"party\":\"DIST\",\"at\":"
                          "\"2026-01-14T09:00:00+08:00\",\"substance\":"
                          "\"ephedrine\",\"lot\":\"E1\",\"qty\":\"1.25\","
                          "\"unit\":\"kg\",\"purpose\":\"synthesis\"}"),
                       0, &r),
        TRACE_OK);
    assert_true(stock(f, "DIST", "E1", TRACE_AT_NOW) == 57 * KG + 1250000000LL);
    /* correct it again: void it entirely */
    assert_int_equal(fixture_import(f,
                                    EV("correction", "k2", "DIST",
                                       "2026-03-02T09:00:00+08:00",
                                       "\"corrects\":\"u1\",\"reason\":"
                                       "\"never happened\""),
                                    0, &r),
                     TRACE_OK);
    assert_true(stock(f, "DIST", "E1", TRACE_AT_NOW) == 59500000000LL);
    /* correcting an unknown event is refused */
    assert_int_equal(fixture_import(f,
                                    EV("correction", "k3", "DIST",
                                       "2026-03-02T09:00:00+08:00",
                                       "\"corrects\":\"nope\",\"reason\":"
                                       "\"x\""),
                                    0, &r),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "never recorded"));
}

static void test_backdated_event_shifts_later_balances(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    int64_t before = stock(f, "MAKER", "E1", TRACE_AT_NOW);
    assert_int_equal(
        fixture_import(f,
                       EV("loss", "l1", "MAKER", "2026-01-09T00:00:00+08:00",
                          "\"substance\":\"ephedrine\",\"lot\":"
                          "\"E1\",\"qty\":\"1\",\"unit\":\"kg\","
                          "\"reason\":\"damage\""),
                       0, &r),
        TRACE_OK);
    assert_true(stock(f, "MAKER", "E1", TRACE_AT_NOW) == before - KG);
    assert_true(stock(f, "MAKER", "E1", T_PRODUCE) == 150 * KG);
}

struct hops {
    char seen[32][96];
    int n;
};

static int add_hop(const trace_hop *h, void *ctx)
{
    struct hops *s = ctx;
    if (s->n < 32)
        snprintf(s->seen[s->n++], 96, "%s %s %s>%s %s%s", h->kind, h->lot,
                 h->from ? h->from : "-", h->to ? h->to : "-",
                 h->qty_text ? h->qty_text : "",
                 h->into_lot ? h->into_lot : "");
    return 0;
}

static int has_hop(const struct hops *s, const char *want)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->seen[i], want) == 0)
            return 1;
    return 0;
}

static void test_trace_through_transformation(void **state)
{
    fixture *f = *state;
    struct hops fw = {0}, bw = {0};

    assert_int_equal(trace_lot(f->l, "E1", NULL, TRACE_FORWARD, add_hop, &fw),
                     TRACE_OK);
    assert_true(has_hop(&fw, "produce E1 ->MAKER 150"));
    assert_true(has_hop(&fw, "sale E1 MAKER>DIST 60"));
    assert_true(has_hop(&fw, "produce E1 DIST>DIST 500X1"));
    assert_true(has_hop(&fw, "sale X1 DIST>USER 0.1"));
    assert_true(has_hop(&fw, "consume E1 DIST>- 2.5"));
    /* backward from USER's X1: DIST made it from E1, which MAKER made */
    assert_int_equal(
        trace_lot(f->l, "X1", "USER", TRACE_BACKWARD, add_hop, &bw), TRACE_OK);
    assert_true(has_hop(&bw, "sale X1 DIST>USER 0.1"));
    assert_true(has_hop(&bw, "produce X1 ->DIST 400"));
    assert_true(has_hop(&bw, "sale E1 MAKER>DIST 60"));
    assert_true(has_hop(&bw, "produce E1 ->MAKER 150"));
    /* DIST's receipt of s1 follows the sale; USER received nothing */
    assert_true(has_hop(&bw, "receipt E1 MAKER>DIST 60000"));
    assert_false(has_hop(&bw, "receipt X1 DIST>USER 0.1"));
}

/* Every hop of a trace, with what the first-generation hops lacked. */
struct hops2 {
    char line[48][160];
    int n;
};

static int add_hop2(const trace_hop *h, void *ctx)
{
    struct hops2 *s = ctx;
    if (s->n < 48)
        snprintf(s->line[s->n++], 160,
                 "%d %s %s %s(%s)>%s(%s) %s ref=%s leaves=%s holder=%s/%s",
                 h->depth, h->kind, h->lot, h->from ? h->from : "-",
                 h->from_name ? h->from_name : "-", h->to ? h->to : "-",
                 h->to_name ? h->to_name : "-", h->qty_text ? h->qty_text : "",
                 h->ref ? h->ref : "-", h->leaves ? h->leaves : "-",
                 h->holder ? h->holder : "-",
                 h->held_text ? h->held_text : "-");
    return 0;
}

static int index_of(const struct hops2 *s, const char *want)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->line[i], want) == 0)
            return i;
    return -1;
}

/* A sale is followed by its receipts, at its depth, naming the sale;
 * where goods leave the chain is named; parties come with their names. */
static void test_trace_receipts_and_ends(void **state)
{
    fixture *f = *state;
    struct hops2 fw = {0};
    int sale, rcpt;

    assert_int_equal(trace_lot(f->l, "E1", NULL, TRACE_FORWARD, add_hop2, &fw),
                     TRACE_OK);
    sale = index_of(&fw, "1 sale E1 MAKER(n)>DIST(n) 60 ref=- leaves=- "
                         "holder=-/-");
    rcpt = index_of(&fw, "1 receipt E1 MAKER(n)>DIST(n) 60000 ref=s1 "
                         "leaves=- holder=-/-");
    assert_true(sale >= 0);
    assert_int_equal(rcpt, sale + 1);
    /* s4 to USER was never received: no receipt hop for it */
    for (int i = 0; i < fw.n; i++)
        assert_null(strstr(fw.line[i], "receipt E1 MAKER(n)>USER"));
    assert_true(index_of(&fw, "2 consume E1 DIST(n)>-(-) 2.5 ref=- "
                              "leaves=consumed holder=-/-") >= 0);
}

/* Backward without a party: from every current holder, each walk whole. */
static void test_trace_backward_from_holders(void **state)
{
    fixture *f = *state;
    struct hops2 bw = {0};
    int dist, maker;

    assert_int_equal(trace_lot(f->l, "E1", NULL, TRACE_BACKWARD, add_hop2, &bw),
                     TRACE_OK);
    /* DIST (57 kg, booked in g) then MAKER (34 kg), in id order; USER
     * was sold some but never booked a receipt: not a holder */
    dist = index_of(&bw, "0 sale E1 MAKER(n)>DIST(n) 60 ref=- leaves=- "
                         "holder=DIST/57000");
    assert_true(dist >= 0);
    assert_true(index_of(&bw, "0 receipt E1 MAKER(n)>DIST(n) 60000 ref=s1 "
                              "leaves=- holder=DIST/57000") == dist + 1);
    /* (newest first: MAKER's produce comes with the last sale, s3) */
    assert_true(index_of(&bw, "1 produce E1 -(-)>MAKER(n) 150 ref=- leaves=- "
                              "holder=DIST/57000") >= 0);
    maker = index_of(&bw, "0 produce E1 -(-)>MAKER(n) 150 ref=- leaves=- "
                          "holder=MAKER/34");
    assert_true(maker > dist);
    for (int i = 0; i < bw.n; i++)
        assert_null(strstr(bw.line[i], "holder=USER"));
}

static int ignore(const void *x, void *ctx)
{
    (void)x;
    (void)ctx;
    return 0;
}

static void test_unknowns(void **state)
{
    fixture *f = *state;
    assert_int_equal(trace_balance(f->l, "NOBODY", TRACE_AT_NOW, NULL,
                                   (trace_holding_fn)ignore, NULL),
                     TRACE_ENOTFOUND);
    assert_non_null(strstr(trace_error_last(), "unknown party NOBODY"));
    assert_int_equal(trace_balance(f->l, "MAKER", TRACE_AT_NOW, "unobtainium",
                                   (trace_holding_fn)ignore, NULL),
                     TRACE_ENOTFOUND);
    assert_int_equal(trace_lot(f->l, "NOLOT", NULL, TRACE_FORWARD,
                               (trace_hop_fn)ignore, NULL),
                     TRACE_ENOTFOUND);
    assert_int_equal(trace_permit_show(f->l, "NOPERMIT", TRACE_AT_NOW,
                                       (trace_permit_fn)ignore, NULL),
                     TRACE_ENOTFOUND);
}

struct permit_view {
    int64_t used, remaining;
    char status[32];
    int counted[8];
    char reason[8][64];
    size_t n;
};

static int keep_permit(const trace_permit_state *p, void *ctx)
{
    struct permit_view *v = ctx;
    v->used = p->used;
    v->remaining = p->remaining;
    snprintf(v->status, sizeof(v->status), "%s", p->status);
    v->n = p->n_uses;
    for (size_t i = 0; i < p->n_uses && i < 8; i++) {
        v->counted[i] = p->use[i].valid;
        snprintf(v->reason[i], 64, "%s",
                 p->use[i].reason ? p->use[i].reason : "");
    }
    return 0;
}

static void test_permit_write_off(void **state)
{
    fixture *f = *state;
    struct permit_view v = {0};

    /* PL-1: 60 + 40 = exactly the budget; the February sale is after the
     * permit expired and does not count */
    assert_int_equal(
        trace_permit_show(f->l, "PL-1", TRACE_AT_NOW, keep_permit, &v),
        TRACE_OK);
    assert_int_equal(v.n, 3);
    assert_true(v.used == 100 * KG);
    assert_true(v.remaining == 0);
    assert_int_equal(v.counted[0], 1);
    assert_int_equal(v.counted[1], 1);
    assert_int_equal(v.counted[2], 0);
    assert_string_equal(v.reason[2], "expired");
    assert_string_equal(v.status, "expired");
    /* as of 2026-01-15 only the first sale had been written off */
    memset(&v, 0, sizeof(v));
    assert_int_equal(
        trace_permit_show(f->l, "PL-1", 1768435200000000LL, keep_permit, &v),
        TRACE_OK);
    assert_true(v.used == 60 * KG);
    assert_string_equal(v.status, "active");

    /* PL-2 (single-use, held by DIST): a sale to USER is held by another
     * party, the first sale to DIST counts, the second does not */
    memset(&v, 0, sizeof(v));
    assert_int_equal(
        trace_permit_show(f->l, "PL-2", TRACE_AT_NOW, keep_permit, &v),
        TRACE_OK);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.reason[0], "held by another party");
    assert_int_equal(v.counted[1], 1);
    assert_string_equal(v.reason[2], "single-use permit already used");
    assert_true(v.used == 5 * KG);
    assert_string_equal(v.status, "exhausted");
}

static void test_permit_suspension_applies_from_its_time(void **state)
{
    fixture *f = *state;
    struct permit_view v = {0};
    trace_append_result r;

    /* suspended on 2026-01-15: the 2026-01-20 sale no longer counts */
    assert_int_equal(fixture_import(f,
                                    EV("permit_status", "ps1", "REGULATOR",
                                       "2026-01-15T00:00:00+08:00",
                                       "\"permit\":\"PL-1\",\"status\":"
                                       "\"suspended\",\"reason\":\"audit\""),
                                    0, &r),
                     TRACE_OK);
    assert_int_equal(
        trace_permit_show(f->l, "PL-1", TRACE_AT_NOW, keep_permit, &v),
        TRACE_OK);
    assert_true(v.used == 60 * KG);
    assert_string_equal(v.reason[1], "suspended");
    assert_string_equal(v.status, "suspended");
    /* a status for an unknown permit is refused */
    assert_int_equal(fixture_import(f,
                                    EV("permit_status", "ps2", "REGULATOR",
                                       "2026-01-15T00:00:00+08:00",
                                       "\"permit\":\"PL-9\",\"status\":"
                                       "\"revoked\",\"reason\":\"x\""),
                                    0, &r),
                     TRACE_EINVAL);
}

struct count {
    int n;
    uint64_t last;
};

static int count_event(const trace_event_info *e, void *ctx)
{
    struct count *c = ctx;
    c->n++;
    c->last = e->seq;
    return 0;
}

static void test_history_paging(void **state)
{
    fixture *f = *state;
    trace_history_opts o = TRACE_HISTORY_OPTS_INIT;
    struct count a = {0, 0}, b = {0, 0}, all = {0, 0};

    o.party = "MAKER";
    assert_int_equal(trace_history(f->l, &o, count_event, &all), TRACE_OK);
    assert_int_equal(all.n, 7);
    o.limit = 4;
    assert_int_equal(trace_history(f->l, &o, count_event, &a), TRACE_OK);
    assert_int_equal(a.n, 4);
    o.after = a.last;
    assert_int_equal(trace_history(f->l, &o, count_event, &b), TRACE_OK);
    assert_int_equal(b.n, 3);
    o = (trace_history_opts)TRACE_HISTORY_OPTS_INIT;
    o.lot = "X1";
    memset(&a, 0, sizeof(a));
    assert_int_equal(trace_history(f->l, &o, count_event, &a), TRACE_OK);
    assert_int_equal(a.n, 2);
    o.lot = "NOLOT";
    assert_int_equal(trace_history(f->l, &o, count_event, &a), TRACE_ENOTFOUND);
}

/* History rows as text: what corrections did is kept. */
struct rows {
    char line[16][200];
    int n;
};

static int add_row(const trace_event_info *e, void *ctx)
{
    struct rows *s = ctx;
    if (s->n < 16)
        snprintf(s->line[s->n++], 200,
                 "%s %s %s %s %s corrected=%d by=%s voided=%d corrects=%s "
                 "voids=%d name=%s",
                 e->type, e->id, e->lot ? e->lot : "-",
                 e->qty_text ? e->qty_text : "-", e->unit ? e->unit : "-",
                 e->corrected, e->corrected_by ? e->corrected_by : "-",
                 e->voided, e->corrects ? e->corrects : "-", e->voids,
                 e->party_name ? e->party_name : "-");
    return 0;
}

static int has_row(const struct rows *s, const char *want)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->line[i], want) == 0)
            return 1;
    return 0;
}

static void test_history_of_lot_keeps_corrections(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_history_opts o = TRACE_HISTORY_OPTS_INIT;
    struct rows x1 = {0}, e1 = {0}, e9 = {0};

    /* void DIST's sale d2 of X1; replace its consume u1 of E1 (same
     * lot); replace its receipt c1 of E1 by one of lot E9 */
    assert_int_equal(
        fixture_import(
            f,
            EV("correction", "k1", "DIST", "2026-03-01T09:00:00+08:00",
               "\"corrects\":\"d2\",\"reason\":\"never shipped\"")
                EV("correction", "k2", "DIST", "2026-03-01T10:00:00+08:00",
                   "\"corrects\":\"u1\",\"reason\":\"typo\","
                   "\"replacement\":{\"type\":\"consume\",\"id\":"
                   "\"u1\",\"party\":\"DIST\",\"at\":"
                   "\"2026-01-14T09:00:00+08:00\",\"substance\":"
                   "\"ephedrine\",\"lot\":\"E1\",\"qty\":\"1.25\","
                   "\"unit\":\"kg\",\"purpose\":\"synthesis\"}")
                    EV("correction", "k3", "DIST", "2026-03-01T11:00:00+08:00",
                       "\"corrects\":\"c1\",\"reason\":\"wrong lot\","
                       "\"replacement\":{\"type\":\"receipt\",\"id\":"
                       "\"c1\",\"party\":\"DIST\",\"at\":"
                       "\"2026-01-11T09:00:00+08:00\",\"from\":\"MAKER\","
                       "\"ref\":\"s1\",\"substance\":\"ephedrine\","
                       "\"lot\":\"E9\",\"qty\":\"60\",\"unit\":\"kg\"}"),
            0, &r),
        TRACE_OK);
    o.lot = "X1";
    assert_int_equal(trace_history(f->l, &o, add_row, &x1), TRACE_OK);
    assert_int_equal(x1.n, 3);
    assert_true(has_row(&x1, "sale d2 X1 0.1 kg corrected=1 by=k1 voided=1 "
                             "corrects=- voids=0 name=n"));
    assert_true(has_row(&x1, "correction k1 X1 - - corrected=0 by=- "
                             "voided=0 corrects=d2 voids=1 name=n"));
    o.lot = "E1";
    assert_int_equal(trace_history(f->l, &o, add_row, &e1), TRACE_OK);
    assert_true(has_row(&e1, "consume u1 E1 2.5 kg corrected=1 by=k2 "
                             "voided=0 corrects=- voids=0 name=n"));
    assert_true(has_row(&e1, "correction k2 E1 1.25 kg corrected=0 by=- "
                             "voided=0 corrects=u1 voids=0 name=n"));
    /* the receipt moved to E9: listed here, and its correction with it */
    assert_true(has_row(&e1, "receipt c1 E1 60000 g corrected=1 by=k3 "
                             "voided=0 corrects=- voids=0 name=n"));
    assert_true(has_row(&e1, "correction k3 E9 60 kg corrected=0 by=- "
                             "voided=0 corrects=c1 voids=0 name=n"));
    /* in journal order: the corrections last */
    assert_string_equal(e1.line[e1.n - 1],
                        "correction k3 E9 60 kg corrected=0 by=- voided=0 "
                        "corrects=c1 voids=0 name=n");
    o.lot = "E9";
    assert_int_equal(trace_history(f->l, &o, add_row, &e9), TRACE_OK);
    assert_int_equal(e9.n, 1);
    /* paging goes on after a correction's position */
    {
        struct count a = {0, 0}, b = {0, 0};
        o.lot = "X1";
        o.limit = 2;
        assert_int_equal(trace_history(f->l, &o, count_event, &a), TRACE_OK);
        assert_int_equal(a.n, 2);
        o.after = a.last;
        assert_int_equal(trace_history(f->l, &o, count_event, &b), TRACE_OK);
        assert_int_equal(b.n, 1);
    }
}

struct reg_days {
    int n;
    char line[8][160];
};

static int keep_day(const trace_register_day *d, void *ctx)
{
    struct reg_days *r = ctx;
    if (r->n < 8)
        snprintf(r->line[r->n], 160,
                 "%s %s>%s in %s disp %s destr %s out %s lines %zu", d->date,
                 d->opening_text, d->closing_text, d->received_text,
                 d->dispensed_text, d->destroyed_text, d->other_out_text,
                 d->n_lines);
    r->n++;
    return 0;
}

/* The special register: days in the ledger's zone, receipts in, moves
 * between the party's own sites left out, every kind of outflow apart. */
static void test_register(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    struct reg_days days = {0};
    int64_t from, to;
    const char *events = REG("r4", "PH", "pharmacy") EV(
        "produce", "m9", "MAKER", "2026-03-01T08:00:00+08:00",
        "\"substance\":\"morphine\",\"lot\":\"M9\",\"qty\":\"1000\","
        "\"unit\":\"unit\"")
        EV("receipt", "c9", "PH", "2026-03-02T23:30:00+08:00",
           "\"from\":\"MAKER\",\"ref\":\"x\",\"substance\":\"morphine\","
           "\"lot\":\"M9\",\"qty\":\"100\",\"unit\":\"unit\"")
            EV("transfer", "t9", "PH", "2026-03-03T09:00:00+08:00",
               "\"from_site\":\"main\",\"to_site\":\"safe\",\"substance\":"
               "\"morphine\",\"lot\":\"M9\",\"qty\":\"40\",\"unit\":\"unit\"")
                EV("dispense", "d9", "PH", "2026-03-03T10:00:00+08:00",
                   "\"substance\":\"morphine\",\"lot\":\"M9\",\"qty\":\"10\","
                   "\"unit\":\"unit\",\"site\":\"safe\",\"rx\":{\"id\":\"R9\","
                   "\"prescriber\":\"D9\",\"patient\":\"X\",\"written\":"
                   "\"2026-03-03\",\"days_supply\":3,\"form\":\"oral\"}")
                    EV("destroy", "x9", "PH", "2026-03-03T11:00:00+08:00",
                       "\"substance\":\"morphine\",\"lot\":\"M9\",\"qty\":"
                       "\"2\","
                       "\"unit\":\"unit\",\"method\":\"incineration\","
                       "\"witness\":"
                       "\"REGULATOR\"")
                        EV("loss", "l9", "PH", "2026-03-04T00:30:00+08:00",
                           "\"substance\":\"morphine\",\"lot\":\"M9\",\"qty\":"
                           "\"1\","
                           "\"unit\":\"unit\",\"reason\":\"damage\"");

    assert_int_equal(fixture_import(f, events, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    assert_int_equal(trace_ledger_parse_time(f->l, "2026-03-02", 0, &from),
                     TRACE_OK);
    assert_int_equal(trace_ledger_parse_time(f->l, "2026-03-04", 0, &to),
                     TRACE_OK);
    assert_int_equal(
        trace_register(f->l, "PH", "morphine", from, to, keep_day, &days),
        TRACE_OK);
    assert_int_equal(days.n, 3);
    /* 23:30 +08:00 is still the 2nd; the transfer is not a line */
    assert_string_equal(days.line[0], "2026-03-02 0>100 in 100 disp 0 destr 0 "
                                      "out 0 lines 1");
    assert_string_equal(days.line[1], "2026-03-03 100>88 in 0 disp 10 destr 2 "
                                      "out 0 lines 2");
    assert_string_equal(days.line[2], "2026-03-04 88>87 in 0 disp 0 destr 0 "
                                      "out 1 lines 1");
    assert_int_equal(
        trace_register(f->l, "NOBODY", "morphine", from, to, keep_day, &days),
        TRACE_ENOTFOUND);
    assert_int_equal(
        trace_register(f->l, "PH", "unobtainium", from, to, keep_day, &days),
        TRACE_ENOTFOUND);
}

struct reg_entries {
    int days;
    int n;
    char line[8][200];
    char spec[64], totals[96], names[64];
};

static int keep_entries(const trace_register_day *d, void *ctx)
{
    struct reg_entries *r = ctx;
    for (size_t i = 0; i < d->n_lines && r->n < 8; i++) {
        const trace_register_line *l = &d->lines[i];
        snprintf(r->line[r->n++], 200, "%s %s %s %s=%lld %s/%s %s", d->date,
                 l->kind, l->qty_text, l->balance_text, (long long)l->balance,
                 l->handler ? l->handler : "-", l->checker ? l->checker : "-",
                 l->spec ? l->spec : "-");
    }
    snprintf(r->spec, sizeof(r->spec), "%s", d->spec ? d->spec : "-");
    snprintf(r->totals, sizeof(r->totals),
             "%s: %s>%s in %s disp %s destr %s out %s", d->date,
             r->days ? "?" : d->opening_text, d->closing_text,
             d->period_received_text, d->period_dispensed_text,
             d->period_destroyed_text, d->period_other_out_text);
    snprintf(r->names, sizeof(r->names), "%s %s %s", d->name,
             d->name_zh ? d->name_zh : "-", d->category ? d->category : "-");
    r->days++;
    return 0;
}

#define DISPENSE_M(id, at, lot, qty, extra)                                    \
    EV("dispense", id, "PH", at,                                               \
       "\"substance\":\"morphine\",\"lot\":\"" lot "\",\"qty\":\"" qty         \
       "\",\"unit\":\"unit\",\"rx\":{\"id\":\"R-" id "\",\"prescriber\":"      \
       "\"D9\",\"patient\":\"X\",\"written\":\"2026-03-01\","                  \
       "\"days_supply\":3,\"form\":\"oral\"}" extra)

/* Entries of the register: the running balance after each over all lots
 * and sites, handler and checker, the spec of the event or else of its
 * lot (the party's receipt before the producer's), the period totals,
 * the drug's names and register category. */
static void test_register_entries(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    struct reg_entries e;
    int64_t from, to;
    const char *events = REG("r4", "PH", "pharmacy") EV(
        "produce", "p1", "MAKER", "2026-03-01T08:00:00+08:00",
        "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":\"1000\","
        "\"unit\":\"unit\",\"spec\":\"10mg×10片\"")
        EV("produce", "p2", "MAKER", "2026-03-01T08:00:00+08:00",
           "\"substance\":\"morphine\",\"lot\":\"M2\",\"qty\":\"1000\","
           "\"unit\":\"unit\",\"spec\":\"maker's\"")
            EV("receipt", "c1", "PH", "2026-03-01T09:00:00+08:00",
               "\"from\":\"MAKER\",\"ref\":\"x\",\"substance\":\"morphine\","
               "\"lot\":\"M1\",\"qty\":\"100\",\"unit\":\"unit\","
               "\"handler\":\"王五\",\"checker\":\"赵六\"")
                EV("receipt", "c2", "PH", "2026-03-01T10:00:00+08:00",
                   "\"from\":\"MAKER\",\"ref\":\"y\",\"substance\":"
                   "\"morphine\",\"lot\":\"M2\",\"qty\":\"50\",\"unit\":"
                   "\"unit\",\"site\":\"safe\",\"spec\":\"5mg×20片\"")
                    EV("transfer", "t1", "PH", "2026-03-03T08:00:00+08:00",
                       "\"from_site\":\"main\",\"to_site\":\"safe\","
                       "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":"
                       "\"40\",\"unit\":\"unit\"")
                        DISPENSE_M("d1", "2026-03-03T09:00:00+08:00", "M1",
                                   "10",
                                   ",\"handler\":\"张三\",\"checker\":\"李四\"")
                            DISPENSE_M("d2", "2026-03-03T10:00:00+08:00", "M2",
                                       "5", ",\"spec\":\"5mg\"");

    assert_int_equal(fixture_import(f, events, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    assert_int_equal(trace_ledger_parse_time(f->l, "2026-03-01", 0, &from),
                     TRACE_OK);
    assert_int_equal(trace_ledger_parse_time(f->l, "2026-03-03", 0, &to),
                     TRACE_OK);
    memset(&e, 0, sizeof(e));
    assert_int_equal(
        trace_register(f->l, "PH", "morphine", from, to, keep_entries, &e),
        TRACE_OK);
    assert_int_equal(e.days, 3); /* the 2nd too, without lines */
    assert_int_equal(e.n, 4);    /* the transfer is not a line */
    assert_string_equal(
        e.line[0], "2026-03-01 receipt 100 100=100000 王五/赵六 10mg×10片");
    assert_string_equal(e.line[1],
                        "2026-03-01 receipt 50 150=150000 -/- 5mg×20片");
    assert_string_equal(
        e.line[2], "2026-03-03 dispense -10 140=140000 张三/李四 10mg×10片");
    assert_string_equal(e.line[3], "2026-03-03 dispense -5 135=135000 -/- 5mg");
    assert_string_equal(e.spec, "10mg×10片; 5mg×20片");
    assert_string_equal(e.totals,
                        "2026-03-03: ?>135 in 150 disp 15 destr 0 out 0");
    assert_string_equal(e.names, "Morphine 吗啡 drug");

    /* from the 3rd: the opening balance is 150, the first entry 140 */
    assert_int_equal(trace_ledger_parse_time(f->l, "2026-03-03", 0, &from),
                     TRACE_OK);
    memset(&e, 0, sizeof(e));
    assert_int_equal(
        trace_register(f->l, "PH", "morphine", from, to, keep_entries, &e),
        TRACE_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(
        e.line[0], "2026-03-03 dispense -10 140=140000 张三/李四 10mg×10片");
    assert_string_equal(e.totals,
                        "2026-03-03: 150>135 in 0 disp 15 destr 0 out 0");
}

/* Checks at entry on prescriptions (check.c, the rx index of state.c) */

#define DISP(id, party, at, rx, prescriber)                                    \
    EV("dispense", id, party, at,                                              \
       "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":\"1\",\"unit\":"     \
       "\"unit\",\"rx\":{\"id\":\"" rx "\",\"prescriber\":\"" prescriber       \
       "\",\"patient\":\"310101195001011234\",\"written\":\"2026-01-05\","     \
       "\"days_supply\":1,\"form\":\"oral\"}")

#define DISP_OBJ(id, party, at, rx, prescriber)                                \
    "{\"type\":\"dispense\",\"id\":\"" id "\",\"party\":\"" party              \
    "\",\"at\":\"" at "\",\"substance\":\"morphine\",\"lot\":\"M1\","          \
    "\"qty\":\"1\",\"unit\":\"unit\",\"rx\":{\"id\":\"" rx                     \
    "\",\"prescriber\":\"" prescriber "\",\"patient\":\"P\","                  \
    "\"written\":\"2026-01-05\",\"days_supply\":1,\"form\":\"oral\"}}"

struct rx_found {
    int n;
    char msg[512];
};

static int keep_rx_finding(const trace_finding *f, void *ctx)
{
    struct rx_found *x = ctx;
    if (strcmp(f->code, "RX_REUSE") == 0) {
        x->n++;
        snprintf(x->msg, sizeof(x->msg), "%s", f->message);
    }
    return 0;
}

/* The RX_REUSE findings of checking one event (a JSON line). */
static int rx_reuse(fixture *f, const char *line, struct rx_found *x)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(trace_check_json(f->l, line, strlen(line),
                                      TRACE_CHECK_SKEW_US, keep_rx_finding, x),
                     TRACE_OK);
    return x->n;
}

/* Records filed in the rx index, or -1 if the ledger has none. */
static int rx_records(fixture *f)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    int n = -1;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    if (mdb_dbi_open(txn, "rx", 0, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0)
        n = (int)st.ms_entries;
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* Makes the ledger one written before the rx index existed. */
static void drop_rx_index(fixture *f)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    raw_begin(f, "rx", &env, &txn, &dbi);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Two dispensings of one prescription through a streaming import (the
 * checks at entry run there); the last warning into w. */
static int import_two(fixture *f, unsigned flags, trace_append_result *r,
                      struct rx_found *w)
{
    static const char *const lines[] = {
        DISP("z1", "PH", "2026-01-09T10:00:00+08:00", "RX-5", "DR-A"),
        DISP("z2", "PH2", "2026-01-09T11:00:00+08:00", "RX-5", "DR-A")};
    const char *m;
    trace_import *im;
    int rc;

    assert_int_equal(trace_import_begin(&im, f->l, f->ring, NULL, flags, 0),
                     TRACE_OK);
    for (int i = 0; i < 2; i++)
        trace_import_line(im, lines[i], strlen(lines[i]) - 1, i + 1);
    if (trace_import_next_error(im) != TRACE_OK && w)
        snprintf(w->msg, sizeof(w->msg), "%s", trace_error_last());
    rc = trace_import_commit(im, r);
    while (w && (m = trace_import_next_warning(im)))
        snprintf(w->msg, sizeof(w->msg), "%s", m);
    trace_import_free(im);
    return rc;
}

static const char *const rx_world =
    REG("r9", "PH", "pharmacy") REG("r10", "PH2", "pharmacy") EV(
        "produce", "m9", "PH", "2026-01-04T08:00:00+08:00",
        "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":\"100\","
        "\"unit\":\"unit\"")
        EV("produce", "m10", "PH2", "2026-01-04T08:00:00+08:00",
           "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":\"100\","
           "\"unit\":\"unit\"")
            DISP("x1", "PH", "2026-01-05T10:00:00+08:00", "RX-1", "DR-A")
                DISP("x2", "PH", "2026-01-05T11:00:00+08:00", "RX-3", "DR-A");

static void test_rx_reuse_at_entry(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    struct rx_found x;
    char longa[512], longb[512], line[2048];

    assert_int_equal(
        fixture_import(f, rx_world, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    assert_int_equal(rx_records(f), 2);
    /* fires: another pharmacy, another day, the same prescription id */
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-06T10:00:00+08:00", "RX-1", "DR-A"),
                 &x),
        1);
    assert_non_null(strstr(x.msg, "RX-1"));
    assert_non_null(strstr(x.msg, "by PH as x1 on 2026-01-05"));
    /* the key is the id alone (RX_REUSE in rules_drugs.c): another prescriber
     * naming the same id fires too */
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-06T10:00:00+08:00", "RX-1", "DR-B"),
                 &x),
        1);
    /* near misses: the same prescriber and patient with another
     * prescription id, an id that only begins like one, and the
     * dispensing itself submitted again */
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-06T10:00:00+08:00", "RX-2", "DR-A"),
                 &x),
        0);
    assert_int_equal(rx_reuse(f,
                              DISP("y1", "PH2", "2026-01-06T10:00:00+08:00",
                                   "RX-10", "DR-A"),
                              &x),
                     0);
    assert_int_equal(
        rx_reuse(f,
                 DISP("x1", "PH", "2026-01-05T10:00:00+08:00", "RX-1", "DR-A"),
                 &x),
        0);
    /* ids longer than the index's key: filed under their first bytes,
     * told apart by the whole id */
    memset(longa, 'L', 450);
    longa[450] = '\0';
    memcpy(longb, longa, sizeof(longa));
    longa[449] = 'a';
    longb[449] = 'b';
    snprintf(line, sizeof(line),
             EV("dispense", "x3", "PH", "2026-01-05T12:00:00+08:00",
                "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":\"1\","
                "\"unit\":\"unit\",\"rx\":{\"id\":\"%s\",\"prescriber\":"
                "\"DR-A\",\"patient\":\"P\",\"written\":\"2026-01-05\","
                "\"days_supply\":1,\"form\":\"oral\"}"),
             longa);
    assert_int_equal(fixture_import(f, line, 0, &r), TRACE_OK);
    snprintf(line, sizeof(line),
             EV("dispense", "y3", "PH2", "2026-01-06T12:00:00+08:00",
                "\"substance\":\"morphine\",\"lot\":\"M1\",\"qty\":\"1\","
                "\"unit\":\"unit\",\"rx\":{\"id\":\"%s\",\"prescriber\":"
                "\"DR-A\",\"patient\":\"P\",\"written\":\"2026-01-05\","
                "\"days_supply\":1,\"form\":\"oral\"}"),
             longb);
    assert_int_equal(rx_reuse(f, line, &x), 0);
    memcpy(strstr(line, longb), longa, 450);
    assert_int_equal(rx_reuse(f, line, &x), 1);

    /* a voided dispensing does not count; a replaced one counts as its
     * replacement (RX-3 became RX-4) */
    assert_int_equal(
        fixture_import(f,
                       EV("correction", "k9", "PH", "2026-01-07T09:00:00+08:00",
                          "\"corrects\":\"x1\",\"reason\":\"never happened\"")
                           EV("correction", "k10", "PH",
                              "2026-01-07T09:00:00+08:00",
                              "\"corrects\":\"x2\",\"reason\":\"typo\","
                              "\"replacement\":" DISP_OBJ("x2", "PH",
                                                          "2026-01-05T11:00:"
                                                          "00+08:00",
                                                          "RX-4", "DR-A")),
                       0, &r),
        TRACE_OK);
    assert_int_equal(rx_records(f), 2); /* RX-4 and the long one */
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-1", "DR-A"),
                 &x),
        0);
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-3", "DR-A"),
                 &x),
        0);
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-4", "DR-A"),
                 &x),
        1);
    assert_non_null(strstr(x.msg, "by PH as x2 on 2026-01-05"));

    /* an import checks each line against the lines before it (indexed,
     * not yet written): a warning, or a refusal with strict checks */
    assert_int_equal(import_two(f, TRACE_APPEND_STRICT, &r, &x), TRACE_EINVAL);
    if (!strstr(x.msg, "line 2: RX_REUSE"))
        fail_msg("strict import: %s", x.msg);
    assert_int_equal(import_two(f, TRACE_APPEND_CHECK, &r, &x), TRACE_OK);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.warnings, 1);
    assert_non_null(strstr(x.msg, "line 2: RX_REUSE"));
    assert_non_null(strstr(x.msg, "by PH as z1 on 2026-01-09"));
}

/* A ledger without the index (written before it existed) gets it built
 * from the journal when opened by a process that may write; opened
 * while another process writes, the check scans the journal and finds
 * the same, and the index is built before this process's first write. */
static void test_rx_index_of_older_ledgers(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    struct rx_found x;
    char path[600], go;
    int up[2], down[2];
    pid_t child;

    assert_int_equal(
        fixture_import(f, rx_world, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    assert_int_equal(
        fixture_import(f,
                       EV("correction", "k9", "PH", "2026-01-07T09:00:00+08:00",
                          "\"corrects\":\"x1\",\"reason\":\"never happened\"")
                           EV("correction", "k10", "PH",
                              "2026-01-07T09:00:00+08:00",
                              "\"corrects\":\"x2\",\"reason\":\"typo\","
                              "\"replacement\":" DISP_OBJ("x2", "PH",
                                                          "2026-01-05T11:00:"
                                                          "00+08:00",
                                                          "RX-4", "DR-A")),
                       0, &r),
        TRACE_OK);
    drop_rx_index(f);
    assert_int_equal(rx_records(f), -1);
    assert_int_equal(trace_ledger_open(&f->l, f->dir), TRACE_OK);
    assert_int_equal(f->l->rx_ready, 1);
    assert_int_equal(rx_records(f), 1); /* x2 as RX-4; x1 voided */
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-4", "DR-A"),
                 &x),
        1);
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-1", "DR-A"),
                 &x),
        0);

    /* again, with another process holding the writer lock */
    trace_ledger_close(f->l);
    f->l = NULL;
    drop_rx_index(f);
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    snprintf(path, sizeof(path), "%s/writer.lock", f->dir);
    if ((child = fork()) == 0) {
        struct flock fl;
        int fd = open(path, O_RDWR | O_CREAT, 0600);
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        go = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
        close(up[0]);
        close(down[1]);
        if (write(up[1], &go, 1) != 1 || read(down[0], &go, 1) < 0)
            _exit(1);
        _exit(0);
    }
    assert_true(child > 0);
    close(up[1]);
    close(down[0]);
    assert_int_equal(read(up[0], &go, 1), 1);
    assert_int_equal(go, 'y');
    assert_int_equal(trace_ledger_open(&f->l, f->dir), TRACE_OK);
    assert_int_equal(f->l->rx_ready, 0);
    assert_int_equal(rx_records(f), -1);
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-4", "DR-A"),
                 &x),
        1);
    assert_non_null(strstr(x.msg, "by PH as x2 on 2026-01-05"));
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-08T10:00:00+08:00", "RX-1", "DR-A"),
                 &x),
        0);
    close(down[1]); /* the other process ends, and its lock with it */
    close(up[0]);
    assert_int_equal(waitpid(child, NULL, 0), child);
    assert_int_equal(
        fixture_import(
            f, DISP("z1", "PH", "2026-01-09T10:00:00+08:00", "RX-5", "DR-A"), 0,
            &r),
        TRACE_OK);
    assert_int_equal(f->l->rx_ready, 1);
    assert_int_equal(rx_records(f), 2); /* RX-4, RX-5 */
    assert_int_equal(
        rx_reuse(f,
                 DISP("y1", "PH2", "2026-01-09T11:00:00+08:00", "RX-5", "DR-A"),
                 &x),
        1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_balance_boundaries),
        T(test_units_convert_exactly),
        T(test_corrections),
        T(test_backdated_event_shifts_later_balances),
        T(test_trace_through_transformation),
        T(test_unknowns),
        T(test_permit_write_off),
        T(test_permit_suspension_applies_from_its_time),
        T(test_history_paging),
        T(test_trace_receipts_and_ends),
        T(test_trace_backward_from_holders),
        T(test_history_of_lot_keeps_corrections),
        T(test_register),
        T(test_register_entries),
        T(test_rx_reuse_at_entry),
        T(test_rx_index_of_older_ledgers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
