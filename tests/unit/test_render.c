/* SPDX-License-Identifier: Apache-2.0 */
/* test_render.c - the renderers (ops/render*.c): exact text, JSON and CSV
 * of every kind of row, JSON escaping, rows of another operation's kind
 * refused, and what begin and end print. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops_test.h"
#include "trace/trace.h"

#define TEXT 0
#define JSON 1
#define CSV  2

/* Renders `it` for `call` as row `row` (0: the first) and compares what
 * it printed with `want`. */
static void expect_render(const ops_call_t *call, const ops_item_t *it,
                          int mode, size_t row, const char *want)
{
    struct out o;
    ops_render r;

    out_open(&o, &r, mode == JSON);
    r.csv = mode == CSV;
    r.rows = row;
    assert_int_equal(ops_render_item(&r, call, it), 0);
    assert_int_equal(r.rows, row + 1);
    out_close(&o);
    if (strcmp(o.buf, want) != 0)
        fail_msg("%s rendered\n[%s]\nexpected\n[%s]", ops_of_call(call)->name,
                 o.buf, want);
    assert_string_equal(o.ebuf, "");
    out_free(&o);
}

static const uint8_t hash32[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
#define HEX32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* One item of each kind (hand-built), kind-indexed. */
struct items {
    Trace__Ops__V1__Holding holding;
    Trace__Ops__V1__Hop hop;
    Trace__Ops__V1__PermitUse use[2];
    Trace__Ops__V1__PermitUse *uses[2];
    Trace__Ops__V1__Permit permit;
    Trace__Ops__V1__Event event;
    Trace__Ops__V1__HeadState head;
    char *scopes[2];
    Trace__Ops__V1__Substance substance;
    Trace__Ops__V1__RegisterLine line[2];
    Trace__Ops__V1__RegisterLine *lines[2];
    Trace__Ops__V1__RegisterDay day;
    Trace__Ops__V1__ExportLine export_line;
    Trace__Ops__V1__Alert alert;
    Trace__Ops__V1__ReconcileSummary summary;
    Trace__Ops__V1__Verified verified;
    Trace__Ops__V1__BackedUp backed_up;
    ops_item_t it[13]; /* by item_case */
};

static void items_init(struct items *x)
{
    memset(x, 0, sizeof(*x));
    for (int k = 0; k < 13; k++)
        trace__ops__v1__item__init(&x->it[k]);

    trace__ops__v1__holding__init(&x->holding);
    x->holding.party = "B";
    x->holding.site = "main";
    x->holding.substance = "ephedrine";
    x->holding.lot = "L1";
    x->holding.qty = "10";
    x->holding.unit = "kg";
    x->it[I(HOLDING)].item_case = I(HOLDING);
    x->it[I(HOLDING)].holding = &x->holding;

    trace__ops__v1__hop__init(&x->hop);
    x->hop.lot = "L1";
    x->hop.substance = "ephedrine";
    x->hop.from = "A";
    x->hop.to = "B";
    x->hop.qty = "10";
    x->hop.unit = "kg";
    x->hop.event = "s1";
    x->hop.at = "2026-01-05T00:00:00+08:00";
    x->hop.kind = "sale";
    x->hop.party = "A";
    x->hop.depth = 1;
    x->it[I(HOP)].item_case = I(HOP);
    x->it[I(HOP)].hop = &x->hop;

    for (int i = 0; i < 2; i++) {
        trace__ops__v1__permit_use__init(&x->use[i]);
        x->uses[i] = &x->use[i];
        x->use[i].party = "A";
        x->use[i].role = "purchase";
    }
    x->use[0].id = "s1";
    x->use[0].at = "2026-01-05T00:00:00+08:00";
    x->use[0].qty = "10";
    x->use[0].counted = 1;
    x->use[1].id = "s9";
    x->use[1].at = "2026-01-09T00:00:00+08:00";
    x->use[1].qty = "5";
    x->use[1].counted = 0;
    x->use[1].reason = "expired";
    trace__ops__v1__permit__init(&x->permit);
    x->permit.permit = "PL-B";
    x->permit.kind = "purchase_license";
    x->permit.holder = "B";
    x->permit.counterparty = "A";
    x->permit.substance = "ephedrine";
    x->permit.uses = "multi";
    x->permit.valid_from = "2026-01-01";
    x->permit.valid_until = "2026-12-31";
    x->permit.status = "active";
    x->permit.budget = "100";
    x->permit.used = "10";
    x->permit.remaining = "90";
    x->permit.unit = "kg";
    x->permit.issuer = "REGULATOR";
    x->permit.n_events = 2;
    x->permit.events = x->uses;
    x->it[I(PERMIT)].item_case = I(PERMIT);
    x->it[I(PERMIT)].permit = &x->permit;

    trace__ops__v1__event__init(&x->event);
    x->event.seq = 42;
    x->event.type = "sale";
    x->event.id = "s1";
    x->event.party = "A";
    x->event.substance = "ephedrine";
    x->event.lot = "L1";
    x->event.qty = "10";
    x->event.unit = "kg";
    x->event.at = "2026-01-05T00:00:00+08:00";
    x->event.corrected = 1;
    x->event.json = "{\"type\":\"sale\"}";
    x->it[I(EVENT)].item_case = I(EVENT);
    x->it[I(EVENT)].event = &x->event;

    trace__ops__v1__head_state__init(&x->head);
    x->head.size = 7;
    x->head.head.data = (uint8_t *)hash32;
    x->head.head.len = 32;
    x->it[I(HEAD)].item_case = I(HEAD);
    x->it[I(HEAD)].head = &x->head;

    trace__ops__v1__substance__init(&x->substance);
    x->scopes[0] = "CN-PC-1";
    x->scopes[1] = "CN-X";
    x->substance.code = "ephedrine";
    x->substance.cas = "299-42-3";
    x->substance.name = "Ephedrine";
    x->substance.dimension = "mass";
    x->substance.name_zh = "麻黄碱";
    x->substance.n_scopes = 2;
    x->substance.scopes = x->scopes;
    x->it[I(SUBSTANCE)].item_case = I(SUBSTANCE);
    x->it[I(SUBSTANCE)].substance = &x->substance;

    for (int i = 0; i < 2; i++) {
        trace__ops__v1__register_line__init(&x->line[i]);
        x->lines[i] = &x->line[i];
    }
    x->line[0].kind = "receipt";
    x->line[0].id = "c1";
    x->line[0].at = "2026-01-05T09:00:00+08:00";
    x->line[0].lot = "L1";
    x->line[0].qty = "10";
    x->line[0].counterparty = "A";
    x->line[0].balance = "10";
    x->line[0].spec = "10mg";
    x->line[1].kind = "dispense";
    x->line[1].id = "x1";
    x->line[1].at = "2026-01-05T10:00:00+08:00";
    x->line[1].qty = "-1";
    x->line[1].counterparty = "DR";
    x->line[1].rx = "RX1";
    x->line[1].balance = "9";
    x->line[1].handler = "张三";
    x->line[1].checker = "Li";
    trace__ops__v1__register_day__init(&x->day);
    x->day.date = "2026-01-05";
    x->day.party = "B";
    x->day.substance = "ephedrine";
    x->day.unit = "kg";
    x->day.opening = "0";
    x->day.received = "10";
    x->day.dispensed = "1";
    x->day.destroyed = "0";
    x->day.other_out = "-2";
    x->day.closing = "7";
    x->day.n_entries = 2;
    x->day.entries = x->lines;
    x->day.substance_name = "Ephedrine";
    x->day.substance_name_zh = "麻黄碱";
    x->day.category = "precursor";
    x->day.spec = "10mg";
    x->day.period_received = "10";
    x->day.period_dispensed = "1";
    x->day.period_destroyed = "0";
    x->day.period_other_out = "2";
    x->it[I(DAY)].item_case = I(DAY);
    x->it[I(DAY)].day = &x->day;

    trace__ops__v1__export_line__init(&x->export_line);
    x->export_line.seq = 3;
    x->export_line.json = "{\"a\":\"b\"}";
    x->it[I(LINE)].item_case = I(LINE);
    x->it[I(LINE)].line = &x->export_line;

    trace__ops__v1__alert__init(&x->alert);
    x->alert.id = "A0123456789abcdef";
    x->alert.rule = "SHIPMENT_UNCONFIRMED";
    x->alert.severity = "medium";
    x->alert.status = "open";
    x->alert.detail = "no receipt";
    x->alert.json = "{\"id\":\"A0123456789abcdef\"}";
    x->alert.position = 5;
    x->it[I(ALERT)].item_case = I(ALERT);
    x->it[I(ALERT)].alert = &x->alert;

    trace__ops__v1__reconcile_summary__init(&x->summary);
    x->summary.alerts = 3;
    x->summary.new_alerts = 1;
    x->summary.events = 20;
    x->summary.new_events = 5;
    x->summary.seconds = 0.5;
    x->it[I(SUMMARY)].item_case = I(SUMMARY);
    x->it[I(SUMMARY)].summary = &x->summary;

    trace__ops__v1__verified__init(&x->verified);
    x->verified.ok = 1;
    x->verified.has_entries = x->verified.has_signatures = 1;
    x->verified.entries = 10;
    x->verified.signatures = 4;
    x->verified.has_head = 1;
    x->verified.head.data = (uint8_t *)hash32;
    x->verified.head.len = 32;
    x->it[I(VERIFIED)].item_case = I(VERIFIED);
    x->it[I(VERIFIED)].verified = &x->verified;

    trace__ops__v1__backed_up__init(&x->backed_up);
    x->backed_up.source = "/data/l";
    x->backed_up.dest = "/backups/b1";
    x->it[I(BACKED_UP)].item_case = I(BACKED_UP);
    x->it[I(BACKED_UP)].backed_up = &x->backed_up;
}

static void test_render_holding(void **state)
{
    struct items x;
    callbuf b;

    (void)state;
    items_init(&x);
    mk(&b, C(BALANCE));
    expect_render(&b.call, &x.it[I(HOLDING)], TEXT, 0,
                  "SUBSTANCE                LOT                  SITE        "
                  "                QTY UNIT\n"
                  "ephedrine                L1                   main        "
                  "                 10 kg\n");
    expect_render(&b.call, &x.it[I(HOLDING)], TEXT, 1,
                  "ephedrine                L1                   main        "
                  "                 10 kg\n");
    expect_render(&b.call, &x.it[I(HOLDING)], JSON, 0,
                  "{\"party\":\"B\",\"site\":\"main\",\"substance\":"
                  "\"ephedrine\",\"lot\":\"L1\",\"qty\":\"10\",\"unit\":"
                  "\"kg\"}\n");
    /* quotes, backslashes and control characters escaped; DEL and UTF-8
     * as they are */
    x.holding.site = "a\"b\\c\n\t\x01\x1f\x7f\xc3\xa9";
    expect_render(&b.call, &x.it[I(HOLDING)], JSON, 0,
                  "{\"party\":\"B\",\"site\":\"a\\\"b\\\\c\\u000a\\u0009"
                  "\\u0001\\u001f\x7f\xc3\xa9\",\"substance\":\"ephedrine\","
                  "\"lot\":\"L1\",\"qty\":\"10\",\"unit\":\"kg\"}\n");
}

static void test_render_hop(void **state)
{
    struct items x;
    callbuf b;

    (void)state;
    items_init(&x);
    mk(&b, C(TRACE));
    expect_render(
        &b.call, &x.it[I(HOP)], TEXT, 0,
        "  sale      L1 A -> B  10 kg  [2026-01-05T00:00:00+08:00 A/s1]\n");
    expect_render(
        &b.call, &x.it[I(HOP)], JSON, 0,
        "{\"lot\":\"L1\",\"substance\":\"ephedrine\",\"from\":\"A\","
        "\"to\":\"B\",\"qty\":\"10\",\"unit\":\"kg\",\"event\":"
        "\"s1\",\"at\":\"2026-01-05T00:00:00+08:00\",\"kind\":"
        "\"sale\",\"party\":\"A\",\"into_lot\":null,\"depth\":1,"
        "\"from_name\":null,\"to_name\":null,\"ref\":null,\"leaves\":null,"
        "\"holder\":null,\"holder_name\":null,\"held\":null,"
        "\"held_unit\":null}\n");
    /* into a produced lot, no quantity */
    x.hop.kind = "produce";
    x.hop.from = "B";
    x.hop.to = NULL;
    x.hop.into_lot = "X1";
    x.hop.qty = x.hop.unit = NULL;
    x.hop.depth = 0;
    x.hop.event = "d1";
    x.hop.party = "B";
    x.hop.at = "2026-01-12T09:00:00+08:00";
    expect_render(
        &b.call, &x.it[I(HOP)], TEXT, 3,
        "produce   L1 B: into lot X1     [2026-01-12T09:00:00+08:00 B/d1]\n");
    expect_render(
        &b.call, &x.it[I(HOP)], JSON, 0,
        "{\"lot\":\"L1\",\"substance\":\"ephedrine\",\"from\":\"B\","
        "\"to\":null,\"qty\":null,\"unit\":null,\"event\":\"d1\","
        "\"at\":\"2026-01-12T09:00:00+08:00\",\"kind\":\"produce\","
        "\"party\":\"B\",\"into_lot\":\"X1\",\"depth\":0,"
        "\"from_name\":null,\"to_name\":null,\"ref\":null,\"leaves\":null,"
        "\"holder\":null,\"holder_name\":null,\"held\":null,"
        "\"held_unit\":null}\n");
    /* from its origin, to nobody */
    x.hop.into_lot = NULL;
    x.hop.from = NULL;
    x.hop.depth = 2;
    expect_render(
        &b.call, &x.it[I(HOP)], TEXT, 0,
        "    produce   L1 (origin) -> (gone)     [2026-01-12T09:00:00+08:00 "
        "B/d1]\n");
    /* a long lot id is printed whole; a huge depth (from a confused
     * daemon) indents 64 levels and no more */
    {
        char lot[201], want[600];
        memset(lot, 'x', 200);
        lot[200] = '\0';
        x.hop.into_lot = lot;
        x.hop.from = "B";
        x.hop.depth = 1073741824;
        snprintf(want, sizeof(want),
                 "%128sproduce   L1 B: into lot %s     "
                 "[2026-01-12T09:00:00+08:00 B/d1]\n",
                 "", lot);
        expect_render(&b.call, &x.it[I(HOP)], TEXT, 0, want);
        x.hop.depth = -5;
        snprintf(want, sizeof(want),
                 "produce   L1 B: into lot %s     "
                 "[2026-01-12T09:00:00+08:00 B/d1]\n",
                 lot);
        expect_render(&b.call, &x.it[I(HOP)], TEXT, 0, want);
    }
    /* a receipt: names beside ids, the sale it matches */
    x.hop.into_lot = NULL;
    x.hop.kind = "receipt";
    x.hop.from = "A";
    x.hop.from_name = "Maker Co.";
    x.hop.to = "B";
    x.hop.to_name = "药房";
    x.hop.ref = "s1";
    x.hop.qty = "9.5";
    x.hop.unit = "kg";
    x.hop.depth = 1;
    expect_render(&b.call, &x.it[I(HOP)], TEXT, 0,
                  "  receipt   L1 A (Maker Co.) -> B (药房)  9.5 kg  "
                  "[2026-01-12T09:00:00+08:00 B/d1]  receipt of sale s1\n");
    /* where it leaves the chain, in a walk back from one holder of
     * several: the holder is named once, before its first hop */
    x.hop.kind = "dispense";
    x.hop.to = x.hop.to_name = x.hop.ref = NULL;
    x.hop.leaves = "dispensed";
    x.hop.holder = "B";
    x.hop.holder_name = "药房";
    x.hop.held = "3";
    x.hop.held_unit = "kg";
    x.hop.depth = 0;
    expect_render(&b.call, &x.it[I(HOP)], TEXT, 0,
                  "B (药房) holds 3 kg of L1\n"
                  "  dispense  L1 A (Maker Co.) -> (dispensed to patients)  "
                  "9.5 kg  [2026-01-12T09:00:00+08:00 B/d1]\n");
    expect_render(&b.call, &x.it[I(HOP)], JSON, 0,
                  "{\"lot\":\"L1\",\"substance\":\"ephedrine\",\"from\":\"A\","
                  "\"to\":null,\"qty\":\"9.5\",\"unit\":\"kg\",\"event\":"
                  "\"d1\",\"at\":\"2026-01-12T09:00:00+08:00\",\"kind\":"
                  "\"dispense\",\"party\":\"B\",\"into_lot\":null,"
                  "\"depth\":0,\"from_name\":\"Maker Co.\",\"to_name\":null,"
                  "\"ref\":null,\"leaves\":\"dispensed\",\"holder\":\"B\","
                  "\"holder_name\":\"药房\",\"held\":\"3\",\"held_unit\":"
                  "\"kg\"}\n");
    {
        struct out o;
        ops_render r;
        out_open(&o, &r, 0);
        assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(HOP)]), 0);
        assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(HOP)]), 0);
        out_close(&o);
        assert_non_null(strstr(o.buf, "holds"));
        assert_null(strstr(strstr(o.buf, "holds") + 1, "holds"));
        out_free(&o);
    }
    /* in Chinese, the kinds too (trace_zh_name), padded by display width
     * (a Chinese character takes two columns) */
    {
        static const struct {
            const char *kind, *want;
        } zh[] = {
            {"dispense",
             "  发药      L1 A (Maker Co.) -> (发药给患者)  9.5 kg  "
             "[2026-01-12T09:00:00+08:00 B/d1]\n"},
            {"sale", "  销售      L1 A (Maker Co.) -> (去向终点)  9.5 kg  "
                     "[2026-01-12T09:00:00+08:00 B/d1]\n"},
            {"loss", "  丢失被盗  L1 A (Maker Co.) -> (丢失)  9.5 kg  "
                     "[2026-01-12T09:00:00+08:00 B/d1]\n"},
            {"receipt", "  收货      L1 A (Maker Co.) -> B (药房)  9.5 kg  "
                        "[2026-01-12T09:00:00+08:00 B/d1]  对应销售 s1\n"},
        };
        for (size_t i = 0; i < sizeof(zh) / sizeof(*zh); i++) {
            struct out o;
            ops_render r;
            x.hop.kind = (char *)zh[i].kind;
            x.hop.to = i == 3 ? "B" : NULL;
            x.hop.to_name = i == 3 ? "药房" : NULL;
            x.hop.ref = i == 3 ? "s1" : NULL;
            out_open(&o, &r, 0);
            r.lang = OPS_LANG_ZH;
            snprintf(r.holder, sizeof(r.holder), "B"); /* named already */
            assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(HOP)]), 0);
            out_close(&o);
            if (strcmp(o.buf, zh[i].want) != 0)
                fail_msg("zh hop rendered\n[%s]\nexpected\n[%s]", o.buf,
                         zh[i].want);
            out_free(&o);
        }
    }
    /* a custody hop (SPEC 12): the sale it carries and the vehicle, in
     * both languages; the JSON gains "vehicle" only when there is one */
    x.hop.kind = "pickup";
    x.hop.from = "A";
    x.hop.to = "C";
    x.hop.to_name = "安达物流";
    x.hop.ref = "s1";
    x.hop.vehicle = "沪A12345";
    x.hop.holder = x.hop.holder_name = x.hop.held = x.hop.held_unit = NULL;
    x.hop.leaves = NULL;
    x.hop.depth = 1;
    expect_render(&b.call, &x.it[I(HOP)], TEXT, 0,
                  "  pickup    L1 A (Maker Co.) -> C (安达物流)  9.5 kg  "
                  "[2026-01-12T09:00:00+08:00 B/d1]  carrying sale s1  "
                  "vehicle 沪A12345\n");
    {
        struct out o;
        ops_render r;
        out_open(&o, &r, 0);
        r.lang = OPS_LANG_ZH;
        assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(HOP)]), 0);
        out_close(&o);
        assert_string_equal(o.buf,
                            "  承运提货  L1 A (Maker Co.) -> C (安达物流)  9.5 "
                            "kg  [2026-01-12T09:00:00+08:00 B/d1]  承运销售 "
                            "s1  车辆 沪A12345\n");
        out_free(&o);
    }
    {
        struct out o;
        ops_render r;
        out_open(&o, &r, 1);
        assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(HOP)]), 0);
        out_close(&o);
        assert_non_null(strstr(o.buf, "\"held_unit\":null,\"vehicle\":"
                                      "\"沪A12345\"}\n"));
        out_free(&o);
    }
}

static void test_render_permit(void **state)
{
    struct items x;
    callbuf b;

    (void)state;
    items_init(&x);
    mk(&b, C(PERMIT_SHOW));
    expect_render(
        &b.call, &x.it[I(PERMIT)], TEXT, 0,
        "permit     PL-B (purchase_license, multi-use)\n"
        "status     active\n"
        "holder     B\n"
        "counter    A\n"
        "substance  ephedrine\n"
        "valid      2026-01-01 .. 2026-12-31\n"
        "budget     100 kg\n"
        "used       10 kg\n"
        "remaining  90 kg\n"
        "issued by  REGULATOR\n"
        "citations  2\n"
        "  2026-01-05T00:00:00+08:00  purchase  A/s1  10 kg  written off\n"
        "  2026-01-09T00:00:00+08:00  purchase  A/s9  5 kg  not counted: "
        "expired\n");
    expect_render(
        &b.call, &x.it[I(PERMIT)], JSON, 0,
        "{\"permit\":\"PL-B\",\"kind\":\"purchase_license\",\"holder\":\"B\","
        "\"counterparty\":\"A\",\"substance\":\"ephedrine\",\"uses\":"
        "\"multi\",\"valid_from\":\"2026-01-01\",\"valid_until\":"
        "\"2026-12-31\",\"status\":\"active\",\"budget\":\"100\",\"used\":"
        "\"10\",\"remaining\":\"90\",\"unit\":\"kg\",\"issuer\":"
        "\"REGULATOR\",\"events\":[{\"party\":\"A\",\"id\":\"s1\",\"role\":"
        "\"purchase\",\"at\":\"2026-01-05T00:00:00+08:00\",\"qty\":\"10\","
        "\"counted\":true,\"reason\":null},{\"party\":\"A\",\"id\":\"s9\","
        "\"role\":\"purchase\",\"at\":\"2026-01-09T00:00:00+08:00\","
        "\"qty\":\"5\",\"counted\":false,\"reason\":\"expired\"}]}\n");
    /* any counterparty, write-offs beyond an int64, no citations */
    x.permit.counterparty = NULL;
    x.permit.has_used_overflow = 1;
    x.permit.used_overflow = 1;
    x.permit.status = "exhausted";
    x.permit.used = ">9";
    x.permit.remaining = "<1";
    x.permit.n_events = 0;
    expect_render(&b.call, &x.it[I(PERMIT)], TEXT, 0,
                  "permit     PL-B (purchase_license, multi-use)\n"
                  "status     exhausted\n"
                  "holder     B\n"
                  "counter    (any)\n"
                  "substance  ephedrine\n"
                  "valid      2026-01-01 .. 2026-12-31\n"
                  "budget     100 kg\n"
                  "used       >9 kg\n"
                  "remaining  <1 kg\n"
                  "note       the write-offs sum beyond the largest "
                  "representable quantity: used and remaining are bounds\n"
                  "issued by  REGULATOR\n"
                  "citations  0\n");
    expect_render(
        &b.call, &x.it[I(PERMIT)], JSON, 0,
        "{\"permit\":\"PL-B\",\"kind\":\"purchase_license\",\"holder\":\"B\","
        "\"counterparty\":null,\"substance\":\"ephedrine\",\"uses\":"
        "\"multi\",\"valid_from\":\"2026-01-01\",\"valid_until\":"
        "\"2026-12-31\",\"status\":\"exhausted\",\"budget\":\"100\","
        "\"used\":\">9\",\"remaining\":\"<1\",\"unit\":\"kg\",\"issuer\":"
        "\"REGULATOR\",\"used_overflow\":true,\"events\":[]}\n");
}

static void test_render_event(void **state)
{
    struct items x;
    callbuf b;
    struct out o;
    ops_render r;

    (void)state;
    items_init(&x);
    mk(&b, C(HISTORY));
    expect_render(&b.call, &x.it[I(EVENT)], TEXT, 0,
                  "     SEQ  AT                        TYPE          PARTY    "
                  "            ID               SUBSTANCE          LOT        "
                  "    QTY              NAME\n"
                  "      42  2026-01-05T00:00:00+08:00 sale          A        "
                  "            s1               ephedrine          L1         "
                  "    10 kg            -  (corrected)\n");
    expect_render(&b.call, &x.it[I(EVENT)], JSON, 0,
                  "{\"seq\":42,\"corrected\":true,\"event\":{\"type\":"
                  "\"sale\"},\"voided\":false,\"corrected_by\":null,"
                  "\"corrects\":null,\"voids\":false,\"party_name\":null}\n");
    /* no substance, lot or quantity; not corrected */
    x.event.seq = 7;
    x.event.type = "party";
    x.event.party = "REGULATOR";
    x.event.id = "r-A";
    x.event.substance = x.event.lot = x.event.qty = x.event.unit = NULL;
    x.event.corrected = 0;
    x.event.at = "2026-01-01T00:00:00+08:00";
    expect_render(&b.call, &x.it[I(EVENT)], TEXT, 1,
                  "       7  2026-01-01T00:00:00+08:00 party         REGULATOR"
                  "            r-A              -                  -          "
                  "                     -\n");
    expect_render(&b.call, &x.it[I(EVENT)], JSON, 1,
                  "{\"seq\":7,\"corrected\":false,\"event\":{\"type\":"
                  "\"sale\"},\"voided\":false,\"corrected_by\":null,"
                  "\"corrects\":null,\"voids\":false,\"party_name\":null}\n");
    /* voided by a correction, with the recorder's name */
    x.event.corrected = 1;
    x.event.voided = 1;
    x.event.has_voided = 1;
    x.event.corrected_by = "k1";
    x.event.party_name = "Reg";
    expect_render(&b.call, &x.it[I(EVENT)], TEXT, 1,
                  "       7  2026-01-01T00:00:00+08:00 party         REGULATOR"
                  "            r-A              -                  -          "
                  "                     Reg  (voided by k1)\n");
    expect_render(&b.call, &x.it[I(EVENT)], CSV, 1,
                  "7,2026-01-01T00:00:00+08:00,party,REGULATOR,r-A,,,,,true,"
                  "true,k1,,false,Reg\n");
    /* the correction itself: what it corrects */
    x.event.corrected = x.event.voided = 0;
    x.event.corrected_by = NULL;
    x.event.type = "correction";
    x.event.corrects = "s1";
    x.event.voids = 1;
    x.event.has_voids = 1;
    x.event.lot = "L1";
    expect_render(&b.call, &x.it[I(EVENT)], TEXT, 1,
                  "       7  2026-01-01T00:00:00+08:00 correction    REGULATOR"
                  "            r-A              -                  L1         "
                  "                     Reg  (voids s1)\n");
    expect_render(&b.call, &x.it[I(EVENT)], JSON, 1,
                  "{\"seq\":7,\"corrected\":false,\"event\":{\"type\":"
                  "\"sale\"},\"voided\":false,\"corrected_by\":null,"
                  "\"corrects\":\"s1\",\"voids\":true,\"party_name\":"
                  "\"Reg\"}\n");
    x.event.voids = 0;
    expect_render(&b.call, &x.it[I(EVENT)], TEXT, 1,
                  "       7  2026-01-01T00:00:00+08:00 correction    REGULATOR"
                  "            r-A              -                  L1         "
                  "                     Reg  (corrects s1)\n");
    /* the renderer keeps the last row's position */
    out_open(&o, &r, 0);
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(EVENT)]), 0);
    assert_true(r.last_seq == 7);
    out_close(&o);
    out_free(&o);
}

/* --lang zh: enumerated values by their Chinese names, padded by display
 * width (a Chinese character takes two columns); JSON keeps the values. */
static void test_render_zh_values(void **state)
{
    struct items x;
    callbuf b;
    struct out o;
    ops_render r;

    (void)state;
    items_init(&x);
    mk(&b, C(HISTORY));
    out_open(&o, &r, 0);
    r.lang = OPS_LANG_ZH;
    r.rows = 1; /* no heading */
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(EVENT)]), 0);
    out_close(&o);
    assert_string_equal(o.buf,
                        "      42  2026-01-05T00:00:00+08:00 销售          A   "
                        "                 s1               ephedrine          "
                        "L1             10 kg            -  （已更正）\n");
    out_free(&o);
    out_open(&o, &r, 1);
    r.lang = OPS_LANG_ZH;
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(EVENT)]), 0);
    out_close(&o);
    assert_non_null(strstr(o.buf, "\"type\":\"sale\""));
    out_free(&o);
    assert_string_equal(trace_zh_name("purchase_license"), "购买许可证");
    assert_string_equal(trace_zh_name("manufacturer"), "生产企业");
    assert_string_equal(trace_zh_name("acknowledged"), "已确认");
    assert_string_equal(trace_zh_name("critical"), "严重");
    assert_string_equal(trace_zh_name("no-such-value"), "no-such-value");
    assert_null(trace_zh_name(NULL));
}

/* applications: a line per application with its answer (en, zh) and
 * the JSON object with nulls where nothing applies. */
static void test_render_application(void **state)
{
    Trace__Ops__V1__Application a = TRACE__OPS__V1__APPLICATION__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT,
               wrong = TRACE__OPS__V1__ITEM__INIT;
    struct items x;
    callbuf b;
    struct out o;
    ops_render r;

    (void)state;
    items_init(&x);
    a.party = "B";
    a.id = "ap-2";
    a.at = "2026-03-02T09:00:00+08:00";
    a.kind = "purchase_filing";
    a.substance = "acetone";
    a.qty = "500";
    a.unit = "L";
    a.purpose = "清洗";
    a.valid_from = "2026-03-10";
    a.valid_until = "2026-12-31";
    a.uses = "multi";
    a.state = "rejected";
    a.decided_by = "REGULATOR";
    a.decision = "d-2";
    a.decided_at = "2026-03-06T10:00:00+08:00";
    a.reason = "用途不明";
    a.days = 4;
    it.item_case = I(APPLICATION);
    it.application = &a;
    mk(&b, C(APPLICATIONS));
    expect_render(&b.call, &it, TEXT, 1,
                  "B                    ap-2         purchase_filing   "
                  "acetone                   500 L     rejected       4 "
                  "用途不明 (REGULATOR, 2026-03-06T10:00:00+08:00)\n");
    expect_render(
        &b.call, &it, JSON, 0,
        "{\"party\":\"B\",\"id\":\"ap-2\",\"at\":\"2026-03-02T09:00:00+08:00\","
        "\"kind\":\"purchase_filing\",\"substance\":\"acetone\",\"qty\":"
        "\"500\",\"unit\":\"L\",\"counterparty\":null,\"purpose\":\"清洗\","
        "\"valid_from\":\"2026-03-10\",\"valid_until\":\"2026-12-31\","
        "\"uses\":\"multi\",\"state\":\"rejected\",\"permit\":null,"
        "\"decided_by\":\"REGULATOR\",\"decision\":\"d-2\",\"decided_at\":"
        "\"2026-03-06T10:00:00+08:00\",\"reason\":\"用途不明\",\"days\":4}\n");
    /* approved, in Chinese, with the heading */
    a.state = "approved";
    a.permit = "PF-2";
    a.reason = NULL;
    out_open(&o, &r, 0);
    r.lang = OPS_LANG_ZH;
    assert_int_equal(ops_render_item(&r, &b.call, &it), 0);
    out_close(&o);
    assert_string_equal(
        o.buf, "申请单位             申请号       种类              物质      "
               "               数量 单位  状态      工作日 审批结果\n"
               "B                    ap-2         购买备案证明      acetone   "
               "                500 L     已批准         4 许可证 PF-2"
               "（REGULATOR，2026-03-06T10:00:00+08:00）\n");
    out_free(&o);
    /* pending: when it was made */
    a.state = "pending";
    a.permit = a.decided_by = a.decision = a.decided_at = NULL;
    expect_render(&b.call, &it, TEXT, 1,
                  "B                    ap-2         purchase_filing   "
                  "acetone                   500 L     pending        4 "
                  "- (made 2026-03-02T09:00:00+08:00)\n");
    assert_string_equal(trace_zh_name("pending"), "待审批");
    assert_string_equal(trace_zh_name("rejected"), "已驳回");
    /* another operation's item is refused, never printed */
    wrong = x.it[I(HOLDING)];
    out_open(&o, &r, 0);
    assert_int_equal(ops_render_item(&r, &b.call, &wrong), -1);
    out_close(&o);
    assert_string_equal(o.buf, "");
    out_free(&o);
}

static void test_render_head_substance(void **state)
{
    struct items x;
    callbuf b;
    static const uint8_t two[2] = {0xab, 0xcd};

    (void)state;
    items_init(&x);
    mk(&b, C(HEAD));
    expect_render(&b.call, &x.it[I(HEAD)], TEXT, 0,
                  "7 entries, head " HEX32 "\n");
    expect_render(&b.call, &x.it[I(HEAD)], JSON, 0,
                  "{\"size\":7,\"head\":\"" HEX32 "\"}\n");
    x.head.head.data = (uint8_t *)two;
    x.head.head.len = 2;
    x.head.size = 18446744073709551615ULL;
    expect_render(&b.call, &x.it[I(HEAD)], TEXT, 0,
                  "18446744073709551615 entries, head abcd\n");

    mk(&b, C(CATALOG));
    expect_render(&b.call, &x.it[I(SUBSTANCE)], TEXT, 0,
                  "CODE                              CAS          DIM     "
                  "CONTROLS\n"
                  "ephedrine                         299-42-3     mass    "
                  "CN-PC-1 "
                  "CN-X\n");
    expect_render(&b.call, &x.it[I(SUBSTANCE)], JSON, 0,
                  "{\"code\":\"ephedrine\",\"cas\":\"299-42-3\",\"name\":"
                  "\"Ephedrine\",\"dimension\":\"mass\",\"name_zh\":"
                  "\"麻黄碱\",\"scopes\":[\"CN-PC-1\",\"CN-X\"]}\n");
    x.substance.code = "acetone";
    x.substance.cas = NULL;
    x.substance.name = NULL;
    x.substance.name_zh = NULL;
    x.substance.dimension = "volume";
    x.substance.n_scopes = 0;
    expect_render(&b.call, &x.it[I(SUBSTANCE)], TEXT, 1,
                  "acetone                           -            volume \n");
    expect_render(&b.call, &x.it[I(SUBSTANCE)], JSON, 1,
                  "{\"code\":\"acetone\",\"cas\":null,\"name\":null,"
                  "\"dimension\":\"volume\",\"name_zh\":null,\"scopes\":[]}"
                  "\n");
}

/* A whole register as tracectl prints it: begin, the days, end. */
static char *render_register(const ops_call_t *call, const ops_item_t **days,
                             size_t n, int mode, int lang, int html,
                             const char *name)
{
    struct out o;
    ops_render r;
    char *s;

    out_open(&o, &r, mode == JSON);
    r.csv = mode == CSV;
    r.html = html;
    r.lang = lang;
    snprintf(r.name, sizeof(r.name), "%s", name);
    ops_render_begin(&r, call);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ops_render_item(&r, call, days[i]), 0);
    ops_render_end(&r, call, 0);
    out_close(&o);
    assert_string_equal(o.ebuf, "");
    s = o.buf;
    free(o.ebuf);
    return s;
}

static void expect_str(const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "rendered\n[%s]\nexpected\n[%s]\n", got, want);
        fail();
    }
}

static void test_render_register_day(void **state)
{
    struct items x;
    callbuf b;
    Trace__Ops__V1__RegisterDay empty, last;
    ops_item_t it_empty = TRACE__OPS__V1__ITEM__INIT,
               it_last = TRACE__OPS__V1__ITEM__INIT;
    Trace__Ops__V1__RegisterLine more[2], *lines[4];
    const ops_item_t *days[3];
    char *s;

    (void)state;
    items_init(&x);
    mk(&b, C(SPECIAL_REGISTER));
    b.reg.party = "B";
    b.reg.substance = "ephedrine";
    b.reg.from_text = "2026-01-05";
    b.reg.to_text = "2026-01-07";
    /* a day without entries, then one more with the period's totals */
    empty = x.day;
    empty.date = "2026-01-06";
    empty.opening = empty.closing = "7";
    empty.received = empty.dispensed = empty.destroyed = "0";
    empty.other_out = "0";
    empty.n_entries = 0;
    empty.entries = NULL;
    last = empty;
    last.date = "2026-01-07";
    last.period_received = "10";
    last.period_dispensed = "1";
    last.period_destroyed = "0";
    last.period_other_out = "2";
    it_empty.item_case = it_last.item_case = I(DAY);
    it_empty.day = &empty;
    it_last.day = &last;
    days[0] = &x.it[I(DAY)];
    days[1] = &it_empty;
    days[2] = &it_last;

    /* text: heading, the opening balance, a row per entry with its
     * running balance, nothing for the days without entries, totals */
    s = render_register(&b.call, days, 3, TEXT, OPS_LANG_EN, 0, "Bee & Co");
    expect_str(
        s,
        "Special register of precursor chemicals\n"
        "party     B Bee & Co\n"
        "drug      Ephedrine (ephedrine)\n"
        "spec      10mg\n"
        "unit      kg\n"
        "period    2026-01-05 .. 2026-01-07\n"
        "DATE       KIND      ENTRY                     RX / FROM-TO         "
        "LOT          SPEC                 IN        OUT      BALANCE  "
        "HANDLER    CHECKER\n"
        "2026-01-05 opening                                                  "
        "                                                           0\n"
        "2026-01-05 receipt   c1                        A                    "
        "L1           10mg                 10                      10  -   "
        "       -\n"
        "2026-01-05 dispense  x1                        RX1                  "
        "-            -                                1            9  张三 "
        "      Li\n"
        "period totals:  received 10  dispensed 1  destroyed 0  other out 2  "
        "closing 7 kg\n");
    free(s);
    s = render_register(&b.call, days, 3, TEXT, OPS_LANG_ZH, 0, "");
    expect_str(
        s,
        "易制毒化学品专用账册\n"
        "单位      B\n"
        "品名      麻黄碱 (ephedrine)\n"
        "规格      10mg\n"
        "计量单位  kg\n"
        "期间      2026-01-05 至 2026-01-07\n"
        "日期       摘要      凭证号                    处方号/来源去向      "
        "批号         规格               收入       发出         结存  "
        "经手人     复核人\n"
        "2026-01-05 期初结存                                                 "
        "                                                           0\n"
        "2026-01-05 收货      c1                        A                    "
        "L1           10mg                 10                      10  -   "
        "       -\n"
        "2026-01-05 发药      x1                        RX1                  "
        "-            -                                1            9  张三 "
        "      Li\n"
        "本期合计：  收入 10  发药 1  销毁 0  其他发出 2  期末结存 7 kg\n");
    free(s);

    /* --json: every day, the same fields as before and the new ones */
    expect_render(
        &b.call, &x.it[I(DAY)], JSON, 0,
        "{\"date\":\"2026-01-05\",\"party\":\"B\",\"substance\":"
        "\"ephedrine\",\"unit\":\"kg\",\"opening\":\"0\",\"received\":"
        "\"10\",\"dispensed\":\"1\",\"destroyed\":\"0\",\"other_out\":"
        "\"-2\",\"closing\":\"7\",\"entries\":[{\"kind\":\"receipt\","
        "\"id\":\"c1\",\"at\":\"2026-01-05T09:00:00+08:00\",\"lot\":\"L1\","
        "\"qty\":\"10\",\"counterparty\":\"A\",\"rx\":null,\"balance\":"
        "\"10\",\"handler\":null,\"checker\":null,\"spec\":\"10mg\"},"
        "{\"kind\":"
        "\"dispense\",\"id\":\"x1\",\"at\":\"2026-01-05T10:00:00+08:00\","
        "\"lot\":null,\"qty\":\"-1\",\"counterparty\":\"DR\",\"rx\":"
        "\"RX1\",\"balance\":\"9\",\"handler\":\"张三\",\"checker\":"
        "\"Li\",\"spec\":null}],\"substance_name\":\"Ephedrine\","
        "\"substance_name_zh\":\"麻黄碱\",\"category\":\"precursor\","
        "\"spec\":\"10mg\",\"period_received\":\"10\",\"period_dispensed\":"
        "\"1\",\"period_destroyed\":\"0\",\"period_other_out\":\"2\"}\n");
    s = render_register(&b.call, days, 3, JSON, OPS_LANG_ZH, 0, "");
    assert_int_equal(strlen(s) > 0 && s[strlen(s) - 1] == '\n', 1);
    {
        int n = 0;
        for (const char *p = s; *p; p++)
            n += *p == '\n';
        assert_int_equal(n, 3); /* one line per day, no totals line */
    }
    free(s);

    /* CSV: BOM and header, an opening row, a row per entry (its quantity
     * in the column of its kind), a total row; quoting */
    for (int i = 0; i < 2; i++)
        trace__ops__v1__register_line__init(&more[i]);
    more[0].kind = "receipt";
    more[0].id = "c2";
    more[0].at = "2026-01-05T11:00:00+08:00";
    more[0].qty = "3";
    more[0].balance = "12";
    more[1].kind = "sale";
    more[1].id = "s5";
    more[1].at = "2026-01-05T12:00:00+08:00";
    more[1].qty = "-2";
    more[1].counterparty = "C";
    more[1].balance = "9";
    x.line[0].counterparty = "A,\"1";
    lines[0] = &x.line[0];
    lines[1] = &more[0];
    lines[2] = &x.line[1];
    lines[3] = &more[1];
    x.day.entries = lines;
    x.day.n_entries = 4;
    s = render_register(&b.call, days, 3, CSV, OPS_LANG_ZH, 0, "");
    expect_str(s, "\xEF\xBB\xBF"
                  "date,party,substance,unit,kind,id,at,counterparty,rx,lot,"
                  "received,dispensed,destroyed,other_out,balance,handler,"
                  "checker,spec\n"
                  "2026-01-05,B,ephedrine,kg,opening,,,,,,,,,,0,,,10mg\n"
                  "2026-01-05,B,ephedrine,kg,receipt,c1,"
                  "2026-01-05T09:00:00+08:00,\"A,\"\"1\",,L1,10,,,,10,,,10mg\n"
                  "2026-01-05,B,ephedrine,kg,receipt,c2,"
                  "2026-01-05T11:00:00+08:00,,,,3,,,,12,,,\n"
                  "2026-01-05,B,ephedrine,kg,dispense,x1,"
                  "2026-01-05T10:00:00+08:00,DR,RX1,,,1,,,9,张三,Li,\n"
                  "2026-01-05,B,ephedrine,kg,sale,s5,"
                  "2026-01-05T12:00:00+08:00,C,,,,,,2,9,,,\n"
                  "2026-01-07,B,ephedrine,kg,total,,,,,,10,1,0,2,7,,,\n");
    free(s);
}

/* The printable page: a whole HTML document, every value escaped. */
static void test_render_register_html(void **state)
{
    struct items x;
    callbuf b;
    const ops_item_t *days[1];
    char *s;

    (void)state;
    items_init(&x);
    mk(&b, C(SPECIAL_REGISTER));
    b.reg.party = "B";
    b.reg.substance = "ephedrine";
    b.reg.from_text = "2026-01-05";
    b.reg.to_text = "2026-01-05";
    x.day.category = "drug";
    x.day.spec = "10mg×10片 <i>";
    x.line[1].handler = "<script>alert(1)</script>";
    x.line[1].checker = "A & B \"q\" 'x'";
    days[0] = &x.it[I(DAY)];
    s = render_register(&b.call, days, 1, TEXT, OPS_LANG_ZH, 1,
                        "<script>evil()</script> & Sons");
    assert_non_null(strstr(s, "<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
    assert_non_null(strstr(s, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(s, "<style>"));
    assert_non_null(strstr(s, "<h1>麻醉药品和精神药品专用账册</h1>"));
    assert_non_null(
        strstr(s, "<tr><th>单位</th><td>&lt;script&gt;evil()&lt;/script&gt; "
                  "&amp; Sons (B)</td></tr>"));
    assert_non_null(strstr(s, "<tr><th>品名</th><td>麻黄碱 (ephedrine)"));
    assert_non_null(strstr(s, "<td>10mg×10片 &lt;i&gt;</td>"));
    assert_non_null(strstr(s, "<td>2026-01-05 至 2026-01-05</td>"));
    assert_non_null(strstr(s, "<th>经手人</th><th>复核人</th>"));
    assert_non_null(strstr(
        s, "<tr class=\"opening\"><td>2026-01-05</td><td>期初结存</td>"));
    assert_non_null(strstr(
        s, "<tr><td>2026-01-05</td><td>发药</td><td>x1</td><td>RX1</td>"
           "<td></td><td></td><td class=\"n\"></td><td class=\"n\">1</td>"
           "<td class=\"n\">9</td><td>&lt;script&gt;alert(1)&lt;/script&gt;"
           "</td><td>A &amp; B &quot;q&quot; &#39;x&#39;</td></tr>"));
    assert_non_null(strstr(s, "<th>本期合计</th>"));
    assert_non_null(strstr(s, "<th>期末结存</th><td class=\"n\">7</td>"));
    assert_non_null(strstr(s, "经手人（签字）："));
    assert_non_null(strstr(s, "复核人（签字）："));
    /* nothing the values brought in is markup */
    assert_null(strstr(s, "<script"));
    assert_null(strstr(s, "<i>"));
    assert_int_equal(strcmp(s + strlen(s) - 8, "</html>\n"), 0);
    free(s);
    /* English */
    s = render_register(&b.call, days, 1, TEXT, OPS_LANG_EN, 1, "");
    assert_non_null(strstr(s, "<html lang=\"en\">"));
    assert_non_null(
        strstr(s, "<h1>Special register of narcotic and psychotropic drugs"));
    assert_non_null(strstr(s, "<th>Handler</th><th>Checker</th>"));
    assert_non_null(strstr(s, "<tr><th>Party</th><td>B</td></tr>"));
    free(s);
    assert_int_equal(ops_render_has_html(C(SPECIAL_REGISTER)), 1);
    assert_int_equal(ops_render_has_html(C(BALANCE)), 0);
}

static void test_render_line_alert_verified(void **state)
{
    struct items x;
    callbuf b;
    struct out o;
    ops_render r;

    (void)state;
    items_init(&x);
    mk(&b, C(EXPORT));
    expect_render(&b.call, &x.it[I(LINE)], TEXT, 0, "{\"a\":\"b\"}\n");
    expect_render(&b.call, &x.it[I(LINE)], JSON, 0, "{\"a\":\"b\"}\n");

    mk(&b, C(ALERTS));
    expect_render(&b.call, &x.it[I(ALERT)], TEXT, 0,
                  "ID                RULE                 SEVERITY STATUS     "
                  "  PARTY                DETAIL\n"
                  "A0123456789abcdef SHIPMENT_UNCONFIRMED medium   open       "
                  "  -                    no receipt\n");
    expect_render(&b.call, &x.it[I(ALERT)], JSON, 0,
                  "{\"id\":\"A0123456789abcdef\"}\n");
    x.alert.id = "A00000000000000ff";
    x.alert.rule = "QTY_MISMATCH";
    x.alert.severity = "high";
    x.alert.status = "acknowledged";
    x.alert.party = "B";
    x.alert.detail = "x";
    expect_render(&b.call, &x.it[I(ALERT)], TEXT, 1,
                  "A00000000000000ff QTY_MISMATCH         high     "
                  "acknowledged B                    x\n");
    /* a reconciliation's alerts print as alerts; its summary goes to err
     * and is not a row */
    mk(&b, C(RECONCILE));
    expect_render(&b.call, &x.it[I(ALERT)], JSON, 0,
                  "{\"id\":\"A0123456789abcdef\"}\n");
    out_open(&o, &r, 0);
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(SUMMARY)]), 0);
    assert_int_equal(r.rows, 0);
    x.summary.partial = 1;
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(SUMMARY)]), 0);
    out_close(&o);
    assert_string_equal(o.buf, "");
    assert_string_equal(o.ebuf, "3 alerts (1 new) over 20 events in 0.50 s\n"
                                "3 alerts (1 new) over 20 events (5 appended "
                                "since the previous run) in 0.50 s\n");
    out_free(&o);

    /* the last alert's position is kept, the largest seen */
    mk(&b, C(ALERTS));
    out_open(&o, &r, 1);
    x.alert.position = 9;
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(ALERT)]), 0);
    x.alert.position = 4;
    assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(ALERT)]), 0);
    assert_true(r.last_seq == 9);
    out_close(&o);
    out_free(&o);

    mk(&b, C(VERIFY));
    expect_render(&b.call, &x.it[I(VERIFIED)], TEXT, 0,
                  "ok: 10 entries, 4 signatures verified\nhead: " HEX32 "\n");
    expect_render(&b.call, &x.it[I(VERIFIED)], JSON, 0,
                  "{\"ok\":true,\"entries\":10,\"signatures\":4,\"head\":"
                  "\"" HEX32 "\"}\n");
    x.verified.ok = 0;
    x.verified.has_head = 0;
    x.verified.has_bad_seq = 1;
    x.verified.bad_seq = 3;
    x.verified.reason = "bad \"sig\"\n";
    /* the failure's text is the status message, not a row's */
    expect_render(&b.call, &x.it[I(VERIFIED)], TEXT, 0, "");
    expect_render(&b.call, &x.it[I(VERIFIED)], JSON, 0,
                  "{\"ok\":false,\"bad_seq\":3,\"reason\":\"bad \\\"sig\\\""
                  "\\u000a\"}\n");

    mk(&b, C(BACKUP));
    expect_render(&b.call, &x.it[I(BACKED_UP)], TEXT, 0,
                  "backed up /data/l to /backups/b1 (check it with: tracectl "
                  "--data /backups/b1 verify)\n");
}

static void test_json_value(void **state)
{
    struct out o;
    ops_render r;

    (void)state;
    out_open(&o, &r, 1);
    ops_json_value(o.f, NULL);
    fputc('|', o.f);
    ops_json_value(o.f, "");
    fputc('|', o.f);
    ops_json_value(o.f, "\"\\/\b\f\n\r\t\x1f\x20~");
    fputc('|', o.f);
    ops_json_str(o.f, "k", "v", 0);
    ops_json_str(o.f, "n", NULL, 1);
    out_close(&o);
    assert_string_equal(o.buf, "null|\"\"|\"\\\"\\\\/\\u0008\\u000c\\u000a"
                               "\\u000d\\u0009\\u001f ~\"|\"k\":\"v\","
                               "\"n\":null");
    out_free(&o);
}

/* Which item kinds each operation renders; anything else is refused and
 * prints nothing. */
static int renders(int op_case, int item_case)
{
    switch (op_case) {
    case C(BALANCE):
        return item_case == I(HOLDING);
    case C(TRACE):
        return item_case == I(HOP);
    case C(PERMIT_SHOW):
        return item_case == I(PERMIT);
    case C(HISTORY):
        return item_case == I(EVENT);
    case C(HEAD):
        return item_case == I(HEAD);
    case C(CATALOG):
        return item_case == I(SUBSTANCE);
    case C(SPECIAL_REGISTER):
        return item_case == I(DAY);
    case C(EXPORT):
        return item_case == I(LINE);
    case C(ALERTS):
        return item_case == I(ALERT);
    case C(RECONCILE):
        return item_case == I(ALERT) || item_case == I(SUMMARY);
    case C(VERIFY):
        return item_case == I(VERIFIED);
    case C(BACKUP):
        return item_case == I(BACKED_UP);
    default:
        return 0;
    }
}

static void test_render_wrong_kind(void **state)
{
    static const int cases[] = {0, 1, 2,  3,  4,  5,  6,  7,
                                8, 9, 10, 11, 12, 13, 99, 100000};
    struct items x;

    (void)state;
    items_init(&x);
    for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
        for (int k = 0; k <= 12; k++) {
            callbuf b;
            struct out o;
            ops_render r;
            int want = renders(cases[c], k), rc;

            mk(&b, cases[c]);
            out_open(&o, &r, 0);
            r.rows = 3;
            rc = ops_render_item(&r, &b.call, &x.it[k]);
            out_close(&o);
            if (want) {
                assert_int_equal(rc, 0);
            } else {
                if (rc != -1)
                    fail_msg("op %d rendered item %d", cases[c], k);
                assert_string_equal(o.buf, "");
                assert_string_equal(o.ebuf, "");
                assert_int_equal(r.rows, 3);
            }
            out_free(&o);
        }
    }
    /* the brief's example: a Hop for a Balance */
    {
        callbuf b;
        struct out o;
        ops_render r;
        mk(&b, C(BALANCE));
        out_open(&o, &r, 1);
        assert_int_equal(ops_render_item(&r, &b.call, &x.it[I(HOP)]), -1);
        out_close(&o);
        assert_int_equal(o.len, 0);
        out_free(&o);
    }
}

/* What begin and end print around the rows. */
static char *begin_end(const ops_call_t *call, int json, int follow,
                       size_t n_items, const ops_item_t *it, int code)
{
    struct out o;
    ops_render r;

    out_open(&o, &r, json);
    r.follow = follow;
    ops_render_begin(&r, call);
    for (size_t i = 0; i < n_items; i++)
        assert_int_equal(ops_render_item(&r, call, &it[i]), 0);
    ops_render_end(&r, call, code);
    out_close(&o);
    free(o.ebuf);
    return o.buf;
}

#define EXPECT_OUT(expr, want)                                                 \
    do {                                                                       \
        char *got_ = (expr);                                                   \
        if (strcmp(got_, (want)) != 0)                                         \
            fail_msg("%s:\n[%s]\nexpected\n[%s]", #expr, got_, (want));        \
        free(got_);                                                            \
    } while (0)

static void test_render_begin_end(void **state)
{
    struct items x;
    callbuf b;
    ops_item_t events[3];
    Trace__Ops__V1__Event ev[3];

    (void)state;
    items_init(&x);

    /* balance: its heading; no rows: (no stock) */
    mk(&b, C(BALANCE));
    b.balance.party = "B";
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0),
               "book stock of B now\n(no stock)\n");
    b.balance.at_text = "2026-01-05";
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0),
               "book stock of B as of 2026-01-05\n(no stock)\n");
    EXPECT_OUT(begin_end(&b.call, 0, 0, 1, &x.it[I(HOLDING)], 0),
               "book stock of B as of 2026-01-05\n"
               "SUBSTANCE                LOT                  SITE        "
               "                QTY UNIT\n"
               "ephedrine                L1                   main        "
               "                 10 kg\n");
    EXPECT_OUT(begin_end(&b.call, 1, 0, 0, NULL, 0), "");
    /* a failed operation: nothing after the heading */
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 4),
               "book stock of B as of 2026-01-05\n");

    /* history: a page that reaches its limit says how to go on */
    for (int i = 0; i < 3; i++) {
        ev[i] = x.event;
        ev[i].seq = (uint64_t)(5 + 2 * i);
        events[i] = x.it[I(EVENT)];
        events[i].event = &ev[i];
    }
    history_of(&b, "A", NULL, 3);
    {
        char *out = begin_end(&b.call, 0, 0, 3, events, 0);
        const char *more = strstr(out, "(more: add --after 9)\n");
        assert_non_null(more);
        assert_string_equal(more, "(more: add --after 9)\n");
        free(out);
    }
    EXPECT_OUT(begin_end(&b.call, 1, 0, 3, events, 0),
               "{\"seq\":5,\"corrected\":true,\"event\":{\"type\":\"sale\"},"
               "\"voided\":false,\"corrected_by\":null,\"corrects\":null,"
               "\"voids\":false,\"party_name\":null}\n"
               "{\"seq\":7,\"corrected\":true,\"event\":{\"type\":\"sale\"},"
               "\"voided\":false,\"corrected_by\":null,\"corrects\":null,"
               "\"voids\":false,\"party_name\":null}\n"
               "{\"seq\":9,\"corrected\":true,\"event\":{\"type\":\"sale\"},"
               "\"voided\":false,\"corrected_by\":null,\"corrects\":null,"
               "\"voids\":false,\"party_name\":null}\n");
    {
        /* fewer rows than the limit: no note */
        char *out = begin_end(&b.call, 0, 0, 2, events, 0);
        assert_null(strstr(out, "(more"));
        free(out);
    }
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0), "(no events)\n");
    b.history.limit = 0;
    {
        char *out = begin_end(&b.call, 0, 0, 3, events, 0);
        assert_null(strstr(out, "(more"));
        free(out);
    }
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0), "(no events)\n");

    /* alerts: none, unless following */
    mk(&b, C(ALERTS));
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0), "(no alerts)\n");
    EXPECT_OUT(begin_end(&b.call, 0, 1, 0, NULL, 0), "");
    EXPECT_OUT(begin_end(&b.call, 1, 0, 0, NULL, 0), "");
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 5), "");
    /* alerts after a position continue a listing: no heading */
    b.alerts.has_after = 1;
    b.alerts.after = 4;
    EXPECT_OUT(begin_end(&b.call, 0, 0, 1, &x.it[I(ALERT)], 0),
               "A0123456789abcdef SHIPMENT_UNCONFIRMED medium   open       "
               "  -                    no receipt\n");

    /* trace: no movements (involving the party) */
    mk(&b, C(TRACE));
    b.trace.lot = "L1";
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0), "(no movements)\n");
    b.trace.party = "B";
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0),
               "(no movements involving B)\n");
    EXPECT_OUT(begin_end(&b.call, 1, 0, 0, NULL, 0), "");
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 4), "");
    /* other operations print nothing around their rows */
    mk(&b, C(CATALOG));
    EXPECT_OUT(begin_end(&b.call, 0, 0, 0, NULL, 0), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_holding),
        cmocka_unit_test(test_render_hop),
        cmocka_unit_test(test_render_permit),
        cmocka_unit_test(test_render_event),
        cmocka_unit_test(test_render_zh_values),
        cmocka_unit_test(test_render_application),
        cmocka_unit_test(test_render_head_substance),
        cmocka_unit_test(test_render_register_day),
        cmocka_unit_test(test_render_register_html),
        cmocka_unit_test(test_render_line_alert_verified),
        cmocka_unit_test(test_json_value),
        cmocka_unit_test(test_render_wrong_kind),
        cmocka_unit_test(test_render_begin_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
