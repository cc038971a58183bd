/* SPDX-License-Identifier: Apache-2.0 */
/* test_reconcile.c - every rule of SPEC section 4: a case that must fire
 * and a near miss that must not (reconcile.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <cmocka.h>

#include "helpers.h"
#include "internal.h"
#include "reconcile_int.h"

#define EV(type, id, party, at, rest)                                          \
    "{\"type\":\"" type "\",\"id\":\"" id "\",\"party\":\"" party              \
    "\",\"at\":\"" at "\"," rest "}\n"
#define REG(subject, kind, lic)                                                \
    EV("party", "r-" subject, "REGULATOR", "2026-01-01T00:00:00+08:00",        \
       "\"subject\":\"" subject "\",\"name\":\"n\",\"kind\":\"" kind           \
       "\",\"region\":\"CN-31\",\"licenses\":[" lic "]")
#define ALL_SCOPES                                                             \
    "\"CN-PC-1\",\"CN-PC-2\",\"CN-PC-3\",\"CN-NARC\",\"CN-PSY-1\","            \
    "\"CN-PSY-2\""
/* clang-format off */
#define PARTIES                                                                \
    REG("S", "manufacturer", ALL_SCOPES)                                       \
    REG("B", "distributor", ALL_SCOPES)                                        \
    REG("N", "distributor", "")                                                \
    REG("W", "warehouse", ALL_SCOPES)                                          \
    REG("PH1", "pharmacy", ALL_SCOPES)                                         \
    REG("PH2", "pharmacy", ALL_SCOPES)                                         \
    REG("PH3", "pharmacy", ALL_SCOPES)                                         \
    REG("PH4", "pharmacy", ALL_SCOPES)                                         \
    REG("PH5", "pharmacy", ALL_SCOPES)
/* clang-format on */
#define PERMIT(id, kind, holder, sub, qty, unit, from, until, uses)            \
    EV("permit", "p-" id, "REGULATOR", "2026-01-01T00:00:00+08:00",            \
       "\"permit\":\"" id "\",\"kind\":\"" kind "\",\"holder\":\"" holder      \
       "\",\"substance\":\"" sub "\",\"qty\":\"" qty "\",\"unit\":\"" unit     \
       "\",\"valid_from\":\"" from "\",\"valid_until\":\"" until               \
       "\",\"uses\":\"" uses "\"")
#define PRODUCE(id, sub, lot, qty, unit)                                       \
    EV("produce", id, "S", "2026-01-02T00:00:00+08:00",                        \
       "\"substance\":\"" sub "\",\"lot\":\"" lot "\",\"qty\":\"" qty          \
       "\",\"unit\":\"" unit "\"")
#define SALE(id, to, at, sub, lot, qty, unit, extra)                           \
    EV("sale", id, "S", at,                                                    \
       "\"to\":\"" to "\",\"substance\":\"" sub "\",\"lot\":\"" lot            \
       "\",\"qty\":\"" qty "\",\"unit\":\"" unit "\"" extra)
#define RECEIPT(id, party, ref, at, sub, lot, qty, unit)                       \
    EV("receipt", id, party, at,                                               \
       "\"from\":\"S\",\"ref\":\"" ref "\",\"substance\":\"" sub               \
       "\",\"lot\":\"" lot "\",\"qty\":\"" qty "\",\"unit\":\"" unit "\"")

/* 2026-06-01T00:00:00Z */
#define AS_OF 1780272000000000LL

struct tally {
    const char *rule; /* the rule counted */
    int n;
    char ids[64][18];
    char status[64][16];
};

static int collect(const trace_alert *a, void *ctx)
{
    struct tally *t = ctx;
    const char *rule = t->rule;
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "  %s\n", a->json);
    if (strcmp(a->rule, rule) != 0)
        return 0;
    if (t->n < 64) {
        snprintf(t->ids[t->n], 18, "%s", a->id);
        snprintf(t->status[t->n], 16, "%s", a->status);
    }
    t->n++;
    return 0;
}

/* Number of alerts of `rule` found as of `as_of`. */
static int alerts_of(fixture *f, const char *rule, int64_t as_of,
                     struct tally *out)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    struct tally local;
    struct tally *t = out ? out : &local;
    memset(t, 0, sizeof(*t));
    t->rule = rule;
    o.as_of_us = as_of;
    if (trace_reconcile(f->l, &o, collect, t, NULL) != TRACE_OK)
        fail_msg("reconcile: %s", trace_error_last());
    return t->n;
}

static void load(fixture *f, const char *jsonl)
{
    trace_append_result r;
    if (fixture_import(f, jsonl,
                       TRACE_APPEND_PROVISION_KEYS | TRACE_APPEND_HISTORIC,
                       &r) != TRACE_OK)
        fail_msg("import: %s", trace_error_last());
}

#define SETUP(...)                                                             \
    fixture *f = *state;                                                       \
    load(f, PARTIES);                                                          \
    load(f, __VA_ARGS__)

static void test_permit_missing(void **state)
{
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100",
                  "kg") PRODUCE("m2", "morphine", "M1", "100", "unit")
              SALE("s1", "B", "2026-01-05T00:00:00+08:00", "ephedrine", "E1",
                   "10", "kg", "") SALE("s2", "B", "2026-01-05T00:00:00+08:00",
                                        "morphine", "M1", "10", "unit", "")
                  SALE("s3", "B", "2026-01-05T00:00:00+08:00", "ephedrine",
                       "E1", "10", "kg", ",\"permit\":\"GHOST\""));
    /* s1 cites none (category 1), s3 an unknown permit; the drug sale
     * needs no permit */
    assert_int_equal(alerts_of(f, "PERMIT_MISSING", AS_OF, NULL), 2);
}

static void test_permit_invalid_and_exceeded(void **state)
{
    SETUP(PERMIT("PL", "purchase_license", "B", "ephedrine", "20", "kg",
                 "2026-01-01", "2026-01-31", "multi")
              PERMIT("PF", "purchase_filing", "B", "ephedrine", "20", "kg",
                     "2026-01-01", "2026-12-31", "multi")
                  PRODUCE("m1", "ephedrine", "E1", "100", "kg")
          /* last valid day (inclusive bound): counts */
          SALE("s1", "B", "2026-01-31T23:00:00+08:00", "ephedrine", "E1", "10",
               "kg", ",\"permit\":\"PL\"")
          /* a day after: expired */
          SALE("s2", "B", "2026-02-01T01:00:00+08:00", "ephedrine", "E1", "10",
               "kg", ",\"permit\":\"PL\"")
          /* a filing is the wrong kind for category 1 */
          SALE("s3", "B", "2026-01-10T00:00:00+08:00", "ephedrine", "E1", "10",
               "kg", ",\"permit\":\"PF\"")
          /* exactly the budget: 10 (s1) + 10 (s4) = 20 */
          SALE("s4", "B", "2026-01-11T00:00:00+08:00", "ephedrine", "E1", "10",
               "kg", ",\"permit\":\"PL\""));
    assert_int_equal(alerts_of(f, "PERMIT_INVALID", AS_OF, NULL), 2);
    assert_int_equal(alerts_of(f, "PERMIT_EXCEEDED", AS_OF, NULL), 0);
    load(f, SALE("s5", "B", "2026-01-12T00:00:00+08:00", "ephedrine", "E1",
                 "0.001", "kg", ",\"permit\":\"PL\""));
    assert_int_equal(alerts_of(f, "PERMIT_EXCEEDED", AS_OF, NULL), 1);
}

static void test_shipment_and_quantities(void **state)
{
    SETUP(PRODUCE("m1", "acetone", "A1", "1000", "L")
              PRODUCE("m2", "morphine", "M1", "100", "unit")
          /* no receipt at all */
          SALE("s1", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "100",
               "L", "")
          /* receipt 71 hours later: confirmed */
          SALE("s2", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "100",
               "L", "") RECEIPT("c2", "B", "s2", "2026-01-07T23:00:00+08:00",
                                "acetone", "A1", "100", "L")
          /* 0.05 % short: within tolerance */
          SALE("s3", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "100",
               "L", "") RECEIPT("c3", "B", "s3", "2026-01-06T00:00:00+08:00",
                                "acetone", "A1", "99.95", "L")
          /* 1 % short: a mismatch, not an unconfirmed shipment */
          SALE("s4", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "100",
               "L", "") RECEIPT("c4", "B", "s4", "2026-01-06T00:00:00+08:00",
                                "acetone", "A1", "99", "L")
          /* counts: any difference */
          SALE("s5", "B", "2026-01-05T00:00:00+08:00", "morphine", "M1", "10",
               "unit", "") RECEIPT("c5", "B", "s5", "2026-01-06T00:00:00+08:00",
                                   "morphine", "M1", "9", "unit")
          /* a receipt citing no sale, and one for another lot */
          RECEIPT("c6", "B", "nope", "2026-01-06T00:00:00+08:00", "acetone",
                  "A1", "1", "L")
              RECEIPT("c7", "B", "s2", "2026-01-06T00:00:00+08:00", "acetone",
                      "A9", "1", "L"));
    assert_int_equal(alerts_of(f, "SHIPMENT_UNCONFIRMED", AS_OF, NULL), 1);
    /* as of 71 hours after the sale the window is still open */
    assert_int_equal(alerts_of(f, "SHIPMENT_UNCONFIRMED",
                               1767542400000000LL + 71 * 3600000000LL, NULL),
                     0);
    assert_int_equal(alerts_of(f, "QTY_MISMATCH", AS_OF, NULL), 2);
    assert_int_equal(alerts_of(f, "RECEIPT_UNMATCHED", AS_OF, NULL), 2);
}

static int keep_split(const trace_alert *a, void *ctx)
{
    if (strcmp(a->rule, "SPLIT_PURCHASE") == 0)
        snprintf(ctx, 1024, "%s", a->json);
    return 0;
}

/* Receipts of one sale are added up: two receipts of a 1,000 L sale
 * totalling 1,750 L are one anomaly, one alert with the sale and both
 * receipts; a sale delivered in two parts that add up is none. */
static int keep_json(const trace_alert *a, void *ctx)
{
    if (strcmp(a->rule, "QTY_MISMATCH") == 0)
        snprintf(ctx, 1024, "%s", a->json);
    return 0;
}

static void test_receipts_summed(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[1024] = "";

    SETUP(PRODUCE("m1", "acetone", "A1", "5000", "L")
          /* over-received across two receipts */
          SALE("s1", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "1000",
               "L", "") RECEIPT("c1", "B", "s1", "2026-01-06T00:00:00+08:00",
                                "acetone", "A1", "1000", "L")
              RECEIPT("c1b", "B", "s1", "2026-01-07T00:00:00+08:00", "acetone",
                      "A1", "750", "L")
          /* delivered in two parts: 600 + 400 */
          SALE("s2", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "1000",
               "L", "") RECEIPT("c2", "B", "s2", "2026-01-06T00:00:00+08:00",
                                "acetone", "A1", "600", "L")
              RECEIPT("c2b", "B", "s2", "2026-01-07T00:00:00+08:00", "acetone",
                      "A1", "400", "L"));
    assert_int_equal(alerts_of(f, "QTY_MISMATCH", AS_OF, NULL), 1);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_json, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "1750 L received in 2 receipts"));
    assert_non_null(strstr(json, "\"c1\""));
    assert_non_null(strstr(json, "\"c1b\""));
    assert_null(strstr(json, "\"c2\""));
}

/* SPLIT_PURCHASE: three sellers, 4 kg of ephedrine each within 30 days
 * (category 1 threshold 10 kg) is one alert naming the three purchases;
 * near misses: two sellers only, a purchase at the threshold, purchases
 * spread beyond the window. */
#define BUY(id, seller, buyer, at, qty)                                        \
    EV("sale", id, seller, at,                                                 \
       "\"to\":\"" buyer "\",\"substance\":\"ephedrine\",\"lot\":\"E1\","      \
       "\"qty\":\"" qty "\",\"unit\":\"kg\"")

static void test_split_purchase(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[1024] = "";

    SETUP(REG("S2", "manufacturer", ALL_SCOPES)
              REG("S3", "manufacturer", ALL_SCOPES)
          /* B: three sellers within 30 days, 12 kg together */
          BUY("b1", "S", "B", "2026-02-01T00:00:00+08:00", "4")
              BUY("b2", "S2", "B", "2026-02-10T00:00:00+08:00", "4")
                  BUY("b3", "S3", "B", "2026-02-20T00:00:00+08:00", "4")
          /* W: two sellers only */
          BUY("w1", "S", "W", "2026-02-01T00:00:00+08:00", "4")
              BUY("w2", "S2", "W", "2026-02-10T00:00:00+08:00", "4")
                  BUY("w3", "S2", "W", "2026-02-20T00:00:00+08:00", "4")
          /* PH1: three sellers, but 40 days apart */
          BUY("p1", "S", "PH1", "2026-01-01T00:00:00+08:00", "4")
              BUY("p2", "S2", "PH1", "2026-02-10T00:00:00+08:00", "4")
                  BUY("p3", "S3", "PH1", "2026-03-22T00:00:00+08:00", "4")
          /* PH2: one purchase at the threshold and two small ones */
          BUY("q1", "S", "PH2", "2026-02-01T00:00:00+08:00", "10")
              BUY("q2", "S2", "PH2", "2026-02-02T00:00:00+08:00", "1")
                  BUY("q3", "S3", "PH2", "2026-02-03T00:00:00+08:00", "1"));
    assert_int_equal(alerts_of(f, "SPLIT_PURCHASE", AS_OF, NULL), 1);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_split, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "B bought 12 kg of ephedrine from 3 sellers "
                                 "in 3 purchases within 30 days"));
    assert_non_null(strstr(json, "\"b1\""));
    assert_non_null(strstr(json, "\"b3\""));
    /* a rules file lowers the sellers needed: W's two sellers count */
    o.rules_json = "{\"SPLIT_PURCHASE\":{\"sellers\":2}}";
    o.rules_len = strlen(o.rules_json);
    o.dry_run = 1;
    struct tally t = {"SPLIT_PURCHASE", 0, {{0}}, {{0}}};
    assert_int_equal(trace_reconcile(f->l, &o, collect, &t, NULL), TRACE_OK);
    assert_int_equal(t.n, 2); /* B and W; PH1 and PH2 still not */
}

/* PARCEL_CHECK_MISSING: one alert per parcel short of a check, naming
 * which; a parcel with all three checks raises none. */
#define PARCEL(id, waybill, s, o, x)                                           \
    EV("parcel", id, "W", "2026-02-01T00:00:00+08:00",                         \
       "\"waybill\":\"" waybill "\",\"outlet\":\"OUT-1\","                     \
       "\"sender_verified\":" s ",\"opened\":" o ",\"scanned\":" x)

static int keep_parcel(const trace_alert *a, void *ctx)
{
    if (strcmp(a->rule, "PARCEL_CHECK_MISSING") == 0)
        strncat(ctx, a->json, 4000 - strlen(ctx) - 1);
    return 0;
}

static void test_parcel_checks(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[4000] = "";

    SETUP(PARCEL("pc1", "SF1", "true", "true", "true")
              PARCEL("pc2", "SF2", "true", "true", "false")
                  PARCEL("pc3", "SF3", "false", "false", "true"));
    assert_int_equal(alerts_of(f, "PARCEL_CHECK_MISSING", AS_OF, NULL), 2);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_parcel, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "parcel SF2 at outlet OUT-1 accepted, not "
                                 "X-rayed"));
    assert_non_null(strstr(json, "parcel SF3 at outlet OUT-1 accepted, sender "
                                 "not verified by real name, not opened for "
                                 "inspection"));
    assert_null(strstr(json, "SF1"));
}

/* Carriers (SPEC 12): pickups, handovers and deliveries of S's sales
 * by C (and C2), cited by {party, id}. */
#define CUSTODY(type, id, party, sale, at, qty, extra)                         \
    EV(type, id, party, at,                                                    \
       "\"ref\":{\"party\":\"S\",\"id\":\"" sale "\"},\"substance\":"          \
       "\"ephedrine\",\"lot\":\"E1\",\"qty\":\"" qty                           \
       "\",\"unit\":\"kg\"" extra)
#define PICKUP(id, sale, at, qty)                                              \
    CUSTODY("pickup", id, "C", sale, at, qty,                                  \
            ",\"vehicle\":\"沪A12345\",\"driver\":\"310101198001011234\"")
#define HANDOVER(id, sale, at, qty)                                            \
    CUSTODY("handover", id, "C", sale, at, qty, ",\"to\":\"C2\"")
#define DELIVERY(id, party, sale, at, qty)                                     \
    CUSTODY("delivery", id, party, sale, at, qty, ",\"to\":\"B\"")
#define CSALE(id, at, qty, extra)                                              \
    SALE(id, "B", at, "ephedrine", "E1", qty, "kg", extra)
#define CARRIED ",\"carrier\":\"C\""
#define CRECEIPT(id, sale, at, qty)                                            \
    RECEIPT(id, "B", sale, at, "ephedrine", "E1", qty, "kg")

/* 2026-01-05T00:00:00+08:00, when the sales happen */
#define T0   1767542400000000LL
#define HOUR 3600000000LL

static int add_held(const trace_holding *h, void *ctx)
{
    *(int64_t *)ctx += h->qty;
    return 0;
}

static int keep_rules(const trace_alert *a, void *ctx)
{
    if (strcmp(a->rule, "CUSTODY_GAP") == 0 ||
        strcmp(a->rule, "TRANSIT_OVERDUE") == 0 ||
        strcmp(a->rule, "QTY_MISMATCH") == 0)
        strncat(ctx, a->json, 8000 - strlen(ctx) - 1);
    return 0;
}

/* CUSTODY_GAP: no pickup within 24 h of a carried sale (one alert, the
 * sale), or a receipt with no delivery at or before it (the sale and the
 * receipt); near misses: a pickup at exactly 24 h, a sale without a
 * carrier, a clean chain. */
static void test_custody_gap(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[8000] = "";

    SETUP(REG("C", "carrier", ALL_SCOPES) REG("C2", "carrier", ALL_SCOPES)
              PRODUCE("m1", "ephedrine", "E1", "1000", "kg")
          /* clean: picked up, delivered, received */
          CSALE("s1", "2026-01-05T00:00:00+08:00", "10", CARRIED)
              PICKUP("p1", "s1", "2026-01-05T02:00:00+08:00", "10")
                  DELIVERY("d1", "C", "s1", "2026-01-05T20:00:00+08:00", "10")
                      CRECEIPT("c1", "s1", "2026-01-05T22:00:00+08:00", "10")
          /* no pickup at all: one gap, not two */
          CSALE("s2", "2026-01-05T00:00:00+08:00", "10", CARRIED)
              CRECEIPT("c2", "s2", "2026-01-05T22:00:00+08:00", "10")
          /* picked up 25 h after the sale */
          CSALE("s3", "2026-01-05T00:00:00+08:00", "10", CARRIED)
              PICKUP("p3", "s3", "2026-01-06T01:00:00+08:00", "10")
                  DELIVERY("d3", "C", "s3", "2026-01-06T06:00:00+08:00", "10")
          /* picked up at exactly 24 h: in time */
          CSALE("s4", "2026-01-05T00:00:00+08:00", "10", CARRIED)
              PICKUP("p4", "s4", "2026-01-06T00:00:00+08:00", "10")
                  DELIVERY("d4", "C", "s4", "2026-01-06T06:00:00+08:00", "10")
          /* received an hour before the carrier says it delivered */
          CSALE("s5", "2026-01-05T00:00:00+08:00", "10",
                CARRIED) PICKUP("p5", "s5", "2026-01-05T01:00:00+08:00", "10")
              CRECEIPT("c5", "s5", "2026-01-05T20:00:00+08:00", "10")
                  DELIVERY("d5", "C", "s5", "2026-01-05T21:00:00+08:00", "10")
          /* no carrier named: no custody expected */
          CSALE("s6", "2026-01-05T00:00:00+08:00", "10", "")
              CRECEIPT("c6", "s6", "2026-01-05T22:00:00+08:00", "10"));
    assert_int_equal(alerts_of(f, "CUSTODY_GAP", AS_OF, NULL), 3);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_rules, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "sale s2 names carrier C, but no pickup "
                                 "cites it within 24 h"));
    assert_non_null(strstr(json, "sale s3 names carrier C, whose first "
                                 "pickup p3 came 25.0 h after it"));
    assert_non_null(strstr(json, "receipt c5 of sale s5 (carrier C): no "
                                 "delivery cites the sale at or before it"));
    assert_null(strstr(json, "\"s1\""));
    assert_null(strstr(json, "\"s4\""));
    assert_null(strstr(json, "\"s6\""));
    /* the custody events moved no stock: B holds what it received */
    /* as of 23 h after the sales, no pickup window has closed, and the
     * receipt of s5 is judged already */
    assert_int_equal(alerts_of(f, "CUSTODY_GAP", T0 + 23 * HOUR, NULL), 1);
    /* the window is a parameter of the rules file */
    o.rules_json = "{\"CUSTODY_GAP\":{\"pickup_hours\":26}}";
    o.rules_len = strlen(o.rules_json);
    o.dry_run = 1;
    struct tally t = {"CUSTODY_GAP", 0, {{0}}, {{0}}};
    assert_int_equal(trace_reconcile(f->l, &o, collect, &t, NULL), TRACE_OK);
    assert_int_equal(t.n, 2); /* s3's pickup is now in time */
}

/* TRANSIT_OVERDUE: a delivery more than 72 h after the pickup, or none
 * 72 h after it; near misses: delivered at exactly 72 h, a pickup whose
 * 72 h have not passed. */
static void test_transit_overdue(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[8000] = "";

    SETUP(REG("C", "carrier", ALL_SCOPES) REG("C2", "carrier", ALL_SCOPES)
              PRODUCE("m1", "ephedrine", "E1", "1000", "kg")
          /* delivered 72 h 1 min after the pickup */
          CSALE("s1", "2026-01-05T00:00:00+08:00", "10", CARRIED)
              PICKUP("p1", "s1", "2026-01-05T01:00:00+08:00", "10")
                  DELIVERY("d1", "C", "s1", "2026-01-08T01:01:00+08:00", "10")
          /* delivered at exactly 72 h, by the second carrier */
          CSALE("s2", "2026-01-05T00:00:00+08:00", "10",
                CARRIED) PICKUP("p2", "s2", "2026-01-05T01:00:00+08:00", "10")
              HANDOVER("h2", "s2", "2026-01-06T01:00:00+08:00", "10")
                  DELIVERY("d2", "C2", "s2", "2026-01-08T01:00:00+08:00", "10")
          /* never delivered */
          CSALE("s3", "2026-01-05T00:00:00+08:00", "10", CARRIED)
              PICKUP("p3", "s3", "2026-01-05T01:00:00+08:00", "10"));
    assert_int_equal(alerts_of(f, "TRANSIT_OVERDUE", AS_OF, NULL), 2);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_rules, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "sale s1 of S: delivery d1 came 72.0 h "
                                 "after pickup p1"));
    assert_non_null(strstr(json, "sale s3 of S: no delivery 72 h after "
                                 "pickup p3 by C"));
    assert_null(strstr(json, "\"p2\""));
    /* 71 h after the pickups nothing is overdue yet (the late delivery
     * is dated after that), 72 h 1 min after them s1 and s3 are */
    assert_int_equal(alerts_of(f, "TRANSIT_OVERDUE", T0 + 72 * HOUR, NULL), 0);
    assert_int_equal(
        alerts_of(f, "TRANSIT_OVERDUE", T0 + 73 * HOUR + 60000000LL, NULL), 2);
    /* none of it is CUSTODY_GAP or QTY_MISMATCH */
    assert_int_equal(alerts_of(f, "CUSTODY_GAP", AS_OF, NULL), 0);
    assert_int_equal(alerts_of(f, "QTY_MISMATCH", AS_OF, NULL), 0);
}

/* QTY_MISMATCH along the custody chain: one alert per sale, at the first
 * step that differs; a difference within tolerance is none. */
static void test_custody_quantities(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[8000] = "";

    SETUP(
        REG("C", "carrier", ALL_SCOPES) REG("C2", "carrier", ALL_SCOPES)
            PRODUCE("m1", "ephedrine", "E1", "1000", "kg")
        /* 1 kg lost between the handover and the delivery, and
         * received as delivered: one alert, at the delivery */
        CSALE("q1", "2026-01-05T00:00:00+08:00", "10", CARRIED)
            PICKUP("p1", "q1", "2026-01-05T01:00:00+08:00", "10")
                HANDOVER("h1", "q1", "2026-01-05T05:00:00+08:00", "10")
                    DELIVERY("d1", "C2", "q1", "2026-01-05T09:00:00+08:00", "9")
                        CRECEIPT("c1", "q1", "2026-01-05T10:00:00+08:00", "9")
        /* 0.05 % short from the pickup on: within tolerance */
        CSALE("q2", "2026-01-05T00:00:00+08:00", "10", CARRIED)
            PICKUP("p2", "q2", "2026-01-05T01:00:00+08:00", "9.995")
                DELIVERY("d2", "C", "q2", "2026-01-05T09:00:00+08:00", "9.995")
                    CRECEIPT("c2", "q2", "2026-01-05T10:00:00+08:00", "9.995")
        /* short at the pickup already */
        CSALE("q3", "2026-01-05T00:00:00+08:00", "10", CARRIED)
            PICKUP("p3", "q3", "2026-01-05T01:00:00+08:00", "8")
                DELIVERY("d3", "C", "q3", "2026-01-05T09:00:00+08:00", "8")
                    CRECEIPT("c3", "q3", "2026-01-05T10:00:00+08:00", "8")
        /* the chain agrees, the buyer received less */
        CSALE("q4", "2026-01-05T00:00:00+08:00", "10", CARRIED)
            PICKUP("p4", "q4", "2026-01-05T01:00:00+08:00", "10")
                DELIVERY("d4", "C", "q4", "2026-01-05T09:00:00+08:00", "10")
                    CRECEIPT("c4", "q4", "2026-01-05T10:00:00+08:00", "7"));
    assert_int_equal(alerts_of(f, "QTY_MISMATCH", AS_OF, NULL), 3);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_rules, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "sale q1: 10 kg handed over, 9 kg delivered "
                                 "(delivery d1 by C2)"));
    assert_non_null(strstr(json, "sale q3: 10 kg sold, 8 kg picked up "
                                 "(pickup p3 by C)"));
    assert_non_null(strstr(json, "sale q4: 10 kg delivered, 7 kg received "
                                 "(receipt c4 by B)"));
    assert_null(strstr(json, "q2"));
    /* custody moves no stock: S holds 1000 - 40 kg, C and C2 nothing */
    int64_t held[3] = {0, 0, 0};
    const char *who[3] = {"S", "C", "C2"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            trace_balance(f->l, who[i], TRACE_AT_NOW, NULL, add_held, &held[i]),
            TRACE_OK);
    assert_true(held[0] == 960000000000LL); /* in ug */
    assert_true(held[1] == 0 && held[2] == 0);
}

/* APPLICATION_OVERDUE: an application with neither a permit nor a
 * decision by the end of the 5th working day after it was made. */
#define APPLY(id, party, at)                                                   \
    EV("permit_application", id, party, at,                                    \
       "\"kind\":\"purchase_license\",\"substance\":\"ephedrine\","            \
       "\"qty\":\"10\",\"unit\":\"kg\",\"purpose\":\"p\","                     \
       "\"valid_from\":\"2026-04-01\",\"valid_until\":\"2026-12-31\","         \
       "\"uses\":\"multi\"")
#define REJECT(id, party, app, at)                                             \
    EV("application_decision", id, "REGULATOR", at,                            \
       "\"application\":{\"party\":\"" party "\",\"id\":\"" app "\"},"         \
       "\"decision\":\"rejected\",\"reason\":\"r\"")
#define APPROVE(id, party, app, at)                                            \
    EV("permit", id, "REGULATOR", at,                                          \
       "\"permit\":\"P-" id                                                    \
       "\",\"kind\":\"purchase_license\",\"holder\":\"" party                  \
       "\",\"substance\":\"ephedrine\",\"qty\":\"8\",\"unit\":\"kg\","         \
       "\"valid_from\":\"2026-04-01\",\"valid_until\":\"2026-12-31\","         \
       "\"uses\":\"multi\",\"application\":{\"party\":\"" party                \
       "\",\"id\":\"" app "\"}")

/* An instant written in +08:00, in microseconds (UTC). */
static int64_t at08(const char *text)
{
    Trace__V1__Time t = TRACE__V1__TIME__INIT;
    if (time_parse(&t, text, 0, 480) != TRACE_OK)
        fail_msg("time %s", text);
    return t.us;
}

static int keep_rule(const trace_alert *a, void *ctx)
{
    if (strcmp(a->rule, "APPLICATION_OVERDUE") == 0)
        strncat(ctx, a->json, 4000 - strlen(ctx) - 1);
    return 0;
}

static void test_workdays(void **state)
{
    char date[11];
    (void)state;
    /* Thursday 2026-03-05: the 5th working day after is Thursday 03-12 */
    assert_true(
        workday_deadline(at08("2026-03-05T16:00:00+08:00"), 480, 5, date) ==
        at08("2026-03-13T00:00:00+08:00") - 1);
    assert_string_equal(date, "2026-03-12");
    /* a Saturday: the next week's Monday to Friday */
    workday_deadline(at08("2026-03-07T10:00:00+08:00"), 480, 5, date);
    assert_string_equal(date, "2026-03-13");
    /* the local day decides: Friday 23:30 +08:00 is Friday, not Saturday */
    workday_deadline(at08("2026-03-06T23:30:00+08:00"), 480, 1, date);
    assert_string_equal(date, "2026-03-09");
    assert_int_equal(workdays_between(at08("2026-03-05T16:00:00+08:00"),
                                      at08("2026-03-11T09:00:00+08:00"), 480),
                     4);
    assert_int_equal(workdays_between(at08("2026-03-06T09:00:00+08:00"),
                                      at08("2026-03-08T09:00:00+08:00"), 480),
                     0);
    assert_int_equal(workdays_between(at08("2026-03-06T09:00:00+08:00"),
                                      at08("2026-03-01T09:00:00+08:00"), 480),
                     0);
}

static void test_application_overdue(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char json[4000] = "";
    struct tally t;

    SETUP(APPLY("ap1", "B", "2026-03-05T16:00:00+08:00")
              APPLY("ap2", "B", "2026-03-02T09:00:00+08:00")
                  REJECT("d2", "B", "ap2", "2026-03-06T09:00:00+08:00")
                      APPLY("ap3", "W", "2026-03-02T09:00:00+08:00") APPROVE(
                          "pm3", "W", "ap3", "2026-03-09T23:59:00+08:00")
                          APPLY("ap4", "W", "2026-03-02T09:00:00+08:00") REJECT(
                              "d4", "W", "ap4", "2026-03-10T00:00:01+08:00"));
    /* the 4th working day over a weekend: only ap4, due on Monday 03-09 */
    assert_int_equal(alerts_of(f, "APPLICATION_OVERDUE",
                               at08("2026-03-11T23:00:00+08:00"), &t),
                     1);
    /* the last moment of the 5th working day: still not ap1 */
    assert_int_equal(alerts_of(f, "APPLICATION_OVERDUE",
                               at08("2026-03-12T23:59:59+08:00"), NULL),
                     1);
    /* past it: ap1 too; ap2 (rejected) and ap3 (approved) in time never */
    assert_int_equal(alerts_of(f, "APPLICATION_OVERDUE",
                               at08("2026-03-13T00:00:01+08:00"), NULL),
                     2);
    o.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(f->l, &o, keep_rule, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "application ap1 of B (ephedrine) has "
                                 "neither a permit nor a decision after 5 "
                                 "working days (due by the end of "
                                 "2026-03-12)\""));
    assert_non_null(strstr(json, "application ap4 of W (ephedrine) has "
                                 "neither a permit nor a decision after 5 "
                                 "working days (due by the end of "
                                 "2026-03-09); answered late"));
    assert_null(strstr(json, "ap2"));
    assert_null(strstr(json, "ap3"));
    /* the days are a rule parameter */
    o.rules_json = "{\"APPLICATION_OVERDUE\":{\"days\":10}}";
    o.rules_len = strlen(o.rules_json);
    o.dry_run = 1;
    json[0] = '\0';
    assert_int_equal(trace_reconcile(f->l, &o, keep_rule, json, NULL),
                     TRACE_OK);
    assert_non_null(strstr(json, "after 10 working days (due by the end of "
                                 "2026-03-19)"));
}

/* Incremental runs judge an application whose answer was not due yet at
 * the previous run again, with answers appended since, as a full run. */
static int inc_at(fixture *f, int64_t as_of, int *partial)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    struct tally t;
    memset(&t, 0, sizeof(t));
    t.rule = "APPLICATION_OVERDUE";
    o.as_of_us = as_of;
    o.incremental = 1;
    if (trace_reconcile(f->l, &o, collect, &t, &sum) != TRACE_OK)
        fail_msg("reconcile: %s", trace_error_last());
    *partial = sum.partial;
    return t.n;
}

static void test_application_overdue_incremental(void **state)
{
    int partial;
    SETUP(APPLY("ap1", "B", "2026-03-05T16:00:00+08:00")
              APPLY("ap6", "W", "2026-03-09T09:00:00+08:00"));
    assert_int_equal(inc_at(f, at08("2026-03-11T23:00:00+08:00"), &partial), 0);
    assert_false(partial);
    /* nothing appended: ap1 comes due and is judged again */
    assert_int_equal(inc_at(f, at08("2026-03-13T09:00:00+08:00"), &partial), 1);
    assert_true(partial);
    /* ap6 answered in time by a decision appended now: no alert, and ap1
     * is not raised twice */
    load(f, REJECT("d6", "W", "ap6", "2026-03-16T09:00:00+08:00")
                APPLY("ap7", "W", "2026-03-02T09:00:00+08:00"));
    assert_int_equal(inc_at(f, at08("2026-03-20T09:00:00+08:00"), &partial),
                     1); /* ap7, made long ago, appended now */
    assert_true(partial);
    /* a full run at that time finds ap1 and ap7, not ap6 */
    assert_int_equal(alerts_of(f, "APPLICATION_OVERDUE",
                               at08("2026-03-20T09:00:00+08:00"), NULL),
                     2);
    /* an approval of an old application appended: nothing new */
    load(f, APPROVE("pm1", "B", "ap1", "2026-03-25T09:00:00+08:00"));
    assert_int_equal(inc_at(f, at08("2026-03-26T09:00:00+08:00"), &partial),
                     1); /* ap1, judged again with its late answer */
    assert_true(partial);
    assert_int_equal(alerts_of(f, "APPLICATION_OVERDUE",
                               at08("2026-03-26T09:00:00+08:00"), NULL),
                     2);
}

static void test_stock(void **state)
{
    SETUP(PRODUCE("m1", "ephedrine", "E1", "10", "kg")
              PRODUCE("m2", "ephedrine", "E2", "10", "kg")
          /* E1 sold out exactly; E2 oversold twice (two crossings) */
          SALE("s1", "B", "2026-01-05T00:00:00+08:00", "ephedrine", "E1", "10",
               "kg", "") SALE("s2", "B", "2026-01-05T00:00:00+08:00",
                              "ephedrine", "E2", "11", "kg", "")
              EV("produce", "m3", "S", "2026-01-06T00:00:00+08:00",
                 "\"substance\":\"ephedrine\",\"lot\":\"E2\",\"qty\":"
                 "\"5\",\"unit\":\"kg\"")
                  SALE("s3", "B", "2026-01-07T00:00:00+08:00", "ephedrine",
                       "E2", "5", "kg", "")
          /* counts: equal to book (0 at E1); 5 where book is 0 */
          EV("stocktake", "k1", "S", "2026-01-08T00:00:00+08:00",
             "\"substance\":\"ephedrine\",\"lot\":\"E1\",\"counted\":\"0\","
             "\"unit\":\"kg\"")
              EV("stocktake", "k2", "B", "2026-01-04T00:00:00+08:00",
                 "\"substance\":\"ephedrine\",\"lot\":\"E1\",\"counted\":"
                 "\"5\",\"unit\":\"kg\""));
    assert_int_equal(alerts_of(f, "NEGATIVE_STOCK", AS_OF, NULL), 2);
    assert_int_equal(alerts_of(f, "STOCKTAKE_VARIANCE", AS_OF, NULL), 1);
}

static void test_unusual_order(void **state)
{
    SETUP(PRODUCE("m1", "acetone", "A1", "1000", "L") SALE(
        "o1", "B", "2026-01-05T00:00:00+08:00", "acetone", "A1", "10", "L", "")
              SALE("o2", "B", "2026-01-06T00:00:00+08:00", "acetone", "A1",
                   "10", "L", "") SALE("o3", "B", "2026-01-07T00:00:00+08:00",
                                       "acetone", "A1", "10", "L", "")
          /* 2.5 x the mean of 10: no alert */
          SALE("o4", "B", "2026-01-08T00:00:00+08:00", "acetone", "A1", "25",
               "L", ""));
    assert_int_equal(alerts_of(f, "UNUSUAL_ORDER", AS_OF, NULL), 0);
    /* mean of 10, 10, 10, 25 is 13.75: 45 is 3.27 x */
    load(f, SALE("o5", "B", "2026-01-09T00:00:00+08:00", "acetone", "A1", "45",
                 "L", ""));
    assert_int_equal(alerts_of(f, "UNUSUAL_ORDER", AS_OF, NULL), 1);
}

static void test_unlicensed(void **state)
{
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg")
              SALE("s1", "B", "2026-01-05T00:00:00+08:00", "ephedrine", "E1",
                   "1", "kg", "") SALE("s2", "N", "2026-01-05T00:00:00+08:00",
                                       "ephedrine", "E1", "1", "kg", "")
                  SALE("s3", "GHOST", "2026-01-05T00:00:00+08:00", "ephedrine",
                       "E1", "1", "kg", "")
          /* B is suspended from March on */
          EV("party", "r-B2", "REGULATOR", "2026-03-01T00:00:00+08:00",
             "\"subject\":\"B\",\"name\":\"n\",\"kind\":\"distributor\","
             "\"region\":\"CN-31\",\"licenses\":[" ALL_SCOPES
             "],\"status\":\"suspended\"")
              SALE("s4", "B", "2026-03-05T00:00:00+08:00", "ephedrine", "E1",
                   "1", "kg", ""));
    assert_int_equal(alerts_of(f, "UNLICENSED_PARTY", AS_OF, NULL), 3);
}

#define DESTROY(id, witness)                                                   \
    EV("destroy", id, "S", "2026-01-05T00:00:00+08:00",                        \
       "\"substance\":\"ephedrine\",\"lot\":\"E1\",\"qty\":\"1\",\"unit\":"    \
       "\"kg\",\"method\":\"incineration\"" witness)

static void test_destroy_loss(void **state)
{
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg") DESTROY("d1", "")
              DESTROY("d2", ",\"witness\":\"REGULATOR\"")
                  DESTROY("d3", ",\"witness\":\"W\"")
                      DESTROY("d4", ",\"witness\":\"NOBODY\"")
                          EV("loss", "l1", "S", "2026-01-05T00:00:00+08:00",
                             "\"substance\":\"ephedrine\",\"lot\":\"E1\","
                             "\"qty\":\"1\",\"unit\":\"kg\",\"reason\":"
                             "\"in_transit\""));
    assert_int_equal(alerts_of(f, "DESTROY_UNWITNESSED", AS_OF, NULL), 3);
    assert_int_equal(alerts_of(f, "LOSS_REPORTED", AS_OF, NULL), 1);
}

static void test_late_report(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    char buf[4096], at[40];
    time_t t = time(NULL) - 10 * 86400;
    struct tm tm;

    load(f, PARTIES PRODUCE("m1", "ephedrine", "E1", "100", "kg")
                PRODUCE("m2", "acetone", "A1", "100", "L"));
    gmtime_r(&t, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* recorded 10 days late: over category 1's 5 days, within category
     * 3's 30 days */
    snprintf(buf, sizeof(buf),
             "{\"type\":\"sale\",\"id\":\"late1\",\"party\":\"S\",\"at\":"
             "\"%s\",\"to\":\"B\",\"substance\":\"ephedrine\",\"lot\":\"E1\","
             "\"qty\":\"1\",\"unit\":\"kg\"}\n"
             "{\"type\":\"sale\",\"id\":\"late3\",\"party\":\"S\",\"at\":"
             "\"%s\",\"to\":\"B\",\"substance\":\"acetone\",\"lot\":\"A1\","
             "\"qty\":\"1\",\"unit\":\"L\"}",
             at, at);
    assert_int_equal(fixture_import(f, buf, 0, &r), TRACE_OK);
    assert_int_equal(alerts_of(f, "LATE_REPORT", TRACE_AT_NOW, NULL), 1);
}

#define DISPENSE(id, ph, at, sub, rx, dr, patient, days, form, chronic)        \
    EV("dispense", id, ph, at,                                                 \
       "\"substance\":\"" sub "\",\"lot\":\"L\",\"qty\":\"1\",\"unit\":"       \
       "\"unit\",\"rx\":{\"id\":\"" rx "\",\"prescriber\":\"" dr               \
       "\",\"patient\":\"" patient "\",\"written\":\"2026-01-01\","            \
       "\"days_supply\":" days ",\"form\":\"" form "\"" chronic "}")

static void test_rx_limits(void **state)
{
    SETUP(
        /* at the limit: no alert */
        DISPENSE("d1", "PH1", "2026-01-05T00:00:00+08:00", "morphine", "R1",
                 "D1", "P1", "1", "injection", "")
            DISPENSE("d2", "PH1", "2026-01-05T00:00:00+08:00", "morphine", "R2",
                     "D1", "P2", "7", "controlled_release",
                     "") DISPENSE("d3", "PH1", "2026-01-05T00:00:00+08:00",
                                  "ketamine", "R3", "D1", "P3", "3", "oral", "")
                DISPENSE("d4", "PH1", "2026-01-05T00:00:00+08:00", "morphine",
                         "R4", "D1", "P4", "15", "patch", ",\"chronic\":true")
                    DISPENSE("d5", "PH1", "2026-01-05T00:00:00+08:00",
                             "diazepam", "R5", "D1", "P5", "7", "oral", "")
        /* one over: alerts */
        DISPENSE("e1", "PH1", "2026-01-05T00:00:00+08:00", "morphine", "S1",
                 "D1", "P1", "2", "injection", "")
            DISPENSE("e2", "PH1", "2026-01-05T00:00:00+08:00", "oxycodone",
                     "S2", "D1", "P2", "8", "controlled_release",
                     "") DISPENSE("e3", "PH1", "2026-01-05T00:00:00+08:00",
                                  "ketamine", "S3", "D1", "P3", "4", "oral", "")
                DISPENSE("e4", "PH1", "2026-01-05T00:00:00+08:00", "morphine",
                         "S4", "D1", "P4", "16", "patch", ",\"chronic\":true")
                    DISPENSE("e5", "PH1", "2026-01-05T00:00:00+08:00",
                             "diazepam", "S5", "D1", "P5", "8", "oral",
                             ",\"chronic\":true")
                        DISPENSE("e6", "PH1", "2026-01-05T00:00:00+08:00",
                                 "fentanyl", "S6", "D1", "P6", "4", "injection",
                                 ",\"chronic\":true"));
    assert_int_equal(alerts_of(f, "RX_LIMIT", AS_OF, NULL), 6);
}

static void test_rx_reuse_and_shopping(void **state)
{
    SETUP(
        /* one prescription twice, at two pharmacies */
        DISPENSE("d1", "PH1", "2026-01-05T00:00:00+08:00", "morphine", "R1",
                 "D1", "X", "1", "oral", "")
            DISPENSE("d1", "PH2", "2026-01-06T00:00:00+08:00", "morphine", "R1",
                     "D1", "X", "1", "oral", "")
        /* patient Y: 5 prescribers, 5 pharmacies within 90 days */
        DISPENSE("y1", "PH1", "2026-02-01T00:00:00+08:00", "diazepam", "Y1",
                 "D1", "Y", "1", "oral", "")
            DISPENSE("y2", "PH2", "2026-02-11T00:00:00+08:00", "diazepam", "Y2",
                     "D2", "Y", "1", "oral", "")
                DISPENSE("y3", "PH3", "2026-02-21T00:00:00+08:00", "diazepam",
                         "Y3", "D3", "Y", "1", "oral", "")
                    DISPENSE("y4", "PH4", "2026-03-01T00:00:00+08:00",
                             "diazepam", "Y4", "D4", "Y", "1", "oral", "")
                        DISPENSE("y5", "PH5", "2026-05-02T00:00:00+08:00",
                                 "diazepam", "Y5", "D5", "Y", "1", "oral", ""));
    load(f,
         /* patient Z: only 4 pharmacies */
         DISPENSE("z1", "PH1", "2026-02-01T00:00:00+08:00", "diazepam", "Z1",
                  "D1", "Z", "1", "oral", "")
             DISPENSE("z2", "PH2", "2026-02-02T00:00:00+08:00", "diazepam",
                      "Z2", "D2", "Z", "1", "oral", "")
                 DISPENSE("z3", "PH3", "2026-02-03T00:00:00+08:00", "diazepam",
                          "Z3", "D3", "Z", "1", "oral", "")
                     DISPENSE("z4", "PH4", "2026-02-04T00:00:00+08:00",
                              "diazepam", "Z4", "D4", "Z", "1", "oral", "")
                         DISPENSE("z5", "PH4", "2026-02-05T00:00:00+08:00",
                                  "diazepam", "Z5", "D5", "Z", "1", "oral", "")
         /* patient V: 5 and 5, but over 91 days */
         DISPENSE("v1", "PH1", "2026-02-01T00:00:00+08:00", "diazepam", "V1",
                  "D1", "V", "1", "oral",
                  "") DISPENSE("v2", "PH2", "2026-02-02T00:00:00+08:00",
                               "diazepam", "V2", "D2", "V", "1", "oral", "")
             DISPENSE("v3", "PH3", "2026-02-03T00:00:00+08:00", "diazepam",
                      "V3", "D3", "V", "1", "oral", "")
                 DISPENSE("v4", "PH4", "2026-02-04T00:00:00+08:00", "diazepam",
                          "V4", "D4", "V", "1", "oral", "")
                     DISPENSE("v5", "PH5", "2026-05-03T00:00:00+08:00",
                              "diazepam", "V5", "D5", "V", "1", "oral", ""));
    assert_int_equal(alerts_of(f, "RX_REUSE", AS_OF, NULL), 1);
    /* Y: 2026-02-01 to 2026-05-02 is exactly 90 days */
    assert_int_equal(alerts_of(f, "DOCTOR_SHOPPING", AS_OF, NULL), 1);
}

static void test_stable_ids_and_ack(void **state)
{
    struct tally a, b;
    trace_append_result r;
    char ack[512];
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg")
              EV("loss", "l1", "S", "2026-01-05T00:00:00+08:00",
                 "\"substance\":\"ephedrine\",\"lot\":\"E1\",\"qty\":\"1\","
                 "\"unit\":\"kg\",\"reason\":\"theft\""));
    assert_int_equal(alerts_of(f, "LOSS_REPORTED", AS_OF, &a), 1);
    assert_int_equal(alerts_of(f, "LOSS_REPORTED", AS_OF, &b), 1);
    assert_string_equal(a.ids[0], b.ids[0]);
    assert_string_equal(a.status[0], "open");
    snprintf(ack, sizeof(ack),
             "{\"type\":\"alert_ack\",\"id\":\"ack1\",\"party\":\"REGULATOR\","
             "\"at\":\"2026-06-02T00:00:00Z\",\"alert\":\"%s\",\"status\":"
             "\"resolved\",\"note\":\"police report filed\"}",
             a.ids[0]);
    assert_int_equal(fixture_import(f, ack, 0, &r), TRACE_OK);
    assert_int_equal(alerts_of(f, "LOSS_REPORTED", AS_OF, &b), 1);
    assert_string_equal(b.status[0], "resolved");
}

/* Changes a byte of entry `seq` behind the library's back. */
static void tamper(fixture *f, uint8_t seq)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, seq};
    MDB_val k = {8, key}, v;
    raw_begin(f, "journal", &env, &txn, &dbi);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    uint8_t *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size / 2] ^= 0x20;
    v.mv_data = copy;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    free(copy);
    raw_end(f, env, txn);
}

static void test_chain_broken(void **state)
{
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg"));
    assert_int_equal(alerts_of(f, "CHAIN_BROKEN", AS_OF, NULL), 0);
    tamper(f, 5);
    struct tally t;
    assert_int_equal(alerts_of(f, "CHAIN_BROKEN", AS_OF, &t), 1);
}

/* An incremental run: what was appended since the previous one (with
 * `full`: everything, keeping the state). */
static int incremental_run(fixture *f, const char *rule, int full, int *partial)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    struct tally t;
    memset(&t, 0, sizeof(t));
    t.rule = rule;
    o.as_of_us = AS_OF;
    o.incremental = 1;
    o.full = full;
    if (trace_reconcile(f->l, &o, collect, &t, &sum) != TRACE_OK)
        fail_msg("reconcile: %s", trace_error_last());
    *partial = sum.partial;
    return t.n;
}

static int incremental(fixture *f, const char *rule, int *partial)
{
    return incremental_run(f, rule, 0, partial);
}

static void test_incremental_periodic_full(void **state)
{
    int partial;
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg"));
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    load(f, PRODUCE("m2", "ephedrine", "E2", "5", "kg"));
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    /* an entry verified before is changed: incremental runs do not read
     * it again (documented); the periodic full one does */
    tamper(f, 5);
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    assert_int_equal(incremental_run(f, "CHAIN_BROKEN", 1, &partial), 1);
    assert_false(partial);
}

static void test_incremental(void **state)
{
    int partial;
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg"));
    /* the first run reads everything */
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    assert_false(partial);
    /* then only what is new and what it touches: a sale of more than the
     * lot holds, judged with the lot's earlier history */
    load(f, SALE("s1", "B", "2026-02-01T00:00:00+08:00", "ephedrine", "E1",
                 "150", "kg", ""));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 1);
    assert_true(partial);
    /* the same alert from a full run */
    assert_int_equal(alerts_of(f, "NEGATIVE_STOCK", AS_OF, NULL), 1);
    /* a change to the entry the last verification stopped at is found */
    load(f, PRODUCE("m2", "ephedrine", "E2", "5", "kg"));
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    uint64_t size;
    uint8_t head[32];
    assert_int_equal(trace_ledger_head(f->l, &size, head), TRACE_OK);
    tamper(f, (uint8_t)size);
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 1);
}

/* Empties reconciliation's own index behind the library's back. */
static void empty_rcidx(fixture *f)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    raw_begin(f, "rcidx", &env, &txn, &dbi);
    assert_int_equal(mdb_drop(txn, dbi, 0), 0);
    raw_end(f, env, txn);
}

static void test_incremental_index_lost(void **state)
{
    int partial;
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg"));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    load(f, PRODUCE("m2", "ephedrine", "E2", "5", "kg"));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    assert_true(partial);
    /* an index that is not the one filed with the state: read all */
    empty_rcidx(f);
    load(f, PRODUCE("m3", "ephedrine", "E3", "5", "kg"));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    assert_false(partial);
    load(f, PRODUCE("m4", "ephedrine", "E4", "5", "kg"));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    assert_true(partial);
}

/* Overwrites a meta value behind the library's back. */
static void put_meta(fixture *f, const char *key, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    raw_begin(f, "meta", &env, &txn, &dbi);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_end(f, env, txn);
}

static void test_incremental_bad_verify_state(void **state)
{
    int partial;
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg"));
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    /* a kept state that does not match the journal (garbage, or a head
     * that is not the entry's) is not a broken chain: the run verifies
     * everything instead, finds it sound and keeps a good state */
    put_meta(f, "verify.state", "V\1garbage", 9);
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    uint8_t bad[2 + 8 + 32 + 8] = {'V', 1};
    uint64_t size;
    uint8_t head[32];
    assert_int_equal(trace_ledger_head(f->l, &size, head), TRACE_OK);
    for (int i = 0; i < 8; i++)
        bad[2 + i] = (uint8_t)(size >> (56 - 8 * i));
    put_meta(f, "verify.state", bad, sizeof(bad));
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
    load(f, PRODUCE("m2", "ephedrine", "E2", "5", "kg"));
    assert_int_equal(incremental(f, "CHAIN_BROKEN", &partial), 0);
}

static void test_incremental_correction(void **state)
{
    int partial;
    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg")
              SALE("s1", "B", "2026-02-01T00:00:00+08:00", "ephedrine", "E1",
                   "150", "kg", ""));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 1);
    /* a correction can change any verdict on the event it corrects: the
     * next run reads everything (and the corrected sale stands) */
    load(f, EV("correction", "c1", "S", "2026-02-02T00:00:00+08:00",
               "\"corrects\":\"s1\",\"reason\":\"typo\",\"replacement\":"
               "{\"type\":\"sale\",\"id\":\"s1\",\"party\":\"S\",\"at\":"
               "\"2026-02-01T00:00:00+08:00\",\"to\":\"B\",\"substance\":"
               "\"ephedrine\",\"lot\":\"E1\",\"qty\":\"50\",\"unit\":"
               "\"kg\"}"));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    assert_false(partial);
    /* and the run after that is incremental again */
    load(f, PRODUCE("m3", "ephedrine", "E3", "5", "kg"));
    assert_int_equal(incremental(f, "NEGATIVE_STOCK", &partial), 0);
    assert_true(partial);
}

/* store_via: the store runs where the caller says (here on a thread of
 * its own, as traced's writer), once, after the run's read; the alerts
 * and their statuses come out as without it. */
struct via {
    int calls;
    pthread_t caller;
    int other_thread; /* store ran on another thread */
};

struct via_call {
    int (*store)(void *arg);
    void *arg;
    int rc;
    pthread_t caller;
    int other_thread;
};

static void *via_thread(void *arg)
{
    struct via_call *c = arg;
    c->other_thread = !pthread_equal(pthread_self(), c->caller);
    c->rc = c->store(c->arg);
    return NULL;
}

static int store_elsewhere(int (*store)(void *arg), void *arg, void *ctx)
{
    struct via *v = ctx;
    struct via_call c = {store, arg, TRACE_EUNAVAIL, v->caller, 0};
    pthread_t t;

    v->calls++;
    if (pthread_create(&t, NULL, via_thread, &c) != 0)
        return TRACE_EUNAVAIL;
    pthread_join(t, NULL);
    v->other_thread = c.other_thread;
    return c.rc;
}

static int count_alert(const trace_alert *a, void *ctx)
{
    (void)a;
    ++*(int *)ctx;
    return 0;
}

static void test_store_via(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    struct via v = {0, pthread_self(), 0};
    int emitted = 0, stored = 0;

    SETUP(PRODUCE("m1", "ephedrine", "E1", "100", "kg") DESTROY("d1", "")
              DESTROY("d2", ",\"witness\":\"NOBODY\""));
    o.as_of_us = AS_OF;
    o.store_via = store_elsewhere;
    o.store_ctx = &v;
    o.dry_run = 1; /* nothing to store: never called */
    assert_int_equal(trace_reconcile(f->l, &o, count_alert, &emitted, &sum),
                     TRACE_OK);
    assert_int_equal(v.calls, 0);
    assert_int_equal(emitted, 2);
    o.dry_run = 0;
    emitted = 0;
    assert_int_equal(trace_reconcile(f->l, &o, count_alert, &emitted, &sum),
                     TRACE_OK);
    assert_int_equal(v.calls, 1);
    assert_true(v.other_thread);
    assert_int_equal(emitted, 2);
    assert_int_equal(sum.new_alerts, 2);
    assert_int_equal(trace_alerts(f->l, NULL, count_alert, &stored), TRACE_OK);
    assert_int_equal(stored, 2);
    /* again: the same alerts, none new */
    assert_int_equal(trace_reconcile(f->l, &o, NULL, NULL, &sum), TRACE_OK);
    assert_int_equal(v.calls, 2);
    assert_int_equal(sum.alerts, 2);
    assert_int_equal(sum.new_alerts, 0);
}

/* Every alert of a run as JSON lines, in output order. */
static int append_json(const trace_alert *a, void *ctx)
{
    char **out = ctx;
    size_t have = *out ? strlen(*out) : 0, add = strlen(a->json);
    char *p = realloc(*out, have + add + 2);
    if (!p)
        return TRACE_ENOMEM;
    memcpy(p + have, a->json, add);
    p[have + add] = '\n';
    p[have + add + 1] = '\0';
    *out = p;
    return 0;
}

static char *all_alerts(fixture *f)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    char *out = NULL;
    o.as_of_us = AS_OF;
    o.dry_run = 1;
    if (trace_reconcile(f->l, &o, append_json, &out, NULL) != TRACE_OK)
        fail_msg("reconcile: %s", trace_error_last());
    return out;
}

/* A journal loaded by two threads, a half each, gives the alerts of one
 * loader: every rule that matches strings by their interned pointer
 * (patients, prescribers, buyers, lots, sites) sees events of both
 * halves. */
static void test_split_load(void **state)
{
    fixture *f = *state;
    char *buf = calloc(1, 1 << 20), *one = NULL, *two;
    size_t len = 0;

    assert_non_null(buf);
    load(f, PARTIES);
    for (int i = 0; i < 40; i++) {
#define ADD(...)                                                               \
    len += (size_t)snprintf(buf + len, (1u << 20) - len, __VA_ARGS__)
        int day = 2 + i;
        /* a lot, sold without permit (PERMIT_MISSING), to B or to the
         * unlicensed N, received short (QTY_MISMATCH) or never */
        ADD("{\"type\":\"produce\",\"id\":\"m%d\",\"party\":\"S\","
            "\"at\":\"2026-01-%02dT01:00:00+08:00\",\"substance\":"
            "\"ephedrine\",\"lot\":\"E%d\",\"qty\":\"100\",\"unit\":"
            "\"kg\"%s}\n",
            i, day % 28 + 1, i,
            i % 7 == 3 ? ",\"inputs\":[{\"lot\":\"E0\",\"substance\":"
                         "\"ephedrine\",\"qty\":\"1\",\"unit\":\"kg\"}]"
                       : "");
        ADD("{\"type\":\"sale\",\"id\":\"s%d\",\"party\":\"S\",\"at\":"
            "\"2026-01-%02dT02:00:00+08:00\",\"to\":\"%s\",\"substance\":"
            "\"ephedrine\",\"lot\":\"E%d\",\"qty\":\"%d\",\"unit\":"
            "\"kg\"}\n",
            i, day % 28 + 1, i % 9 == 4 ? "N" : "B", i % 3 ? i : 0,
            i == 33 ? 200 : 10);
        if (i % 4)
            ADD("{\"type\":\"receipt\",\"id\":\"r%d\",\"party\":\"B\","
                "\"at\":\"2026-01-%02dT03:00:00+08:00\",\"from\":\"S\","
                "\"ref\":\"s%d\",\"substance\":\"ephedrine\",\"lot\":"
                "\"E%d\",\"qty\":\"%d\",\"unit\":\"kg\"}\n",
                i, day % 28 + 1, i, i % 3 ? i : 0, i % 5 ? 10 : 9);
        /* a parcel at one of two outlets, every third short of a check */
        ADD("{\"type\":\"parcel\",\"id\":\"pc%d\",\"party\":\"W\","
            "\"at\":\"2026-01-%02dT05:00:00+08:00\",\"waybill\":\"SF%d\","
            "\"outlet\":\"OUT-%d\",\"sender_verified\":true,\"opened\":"
            "true,\"scanned\":%s}\n",
            i, day % 28 + 1, i, i % 2, i % 3 ? "true" : "false");
        ADD("{\"type\":\"transfer\",\"id\":\"t%d\",\"party\":\"S\","
            "\"at\":\"2026-01-%02dT04:00:00+08:00\",\"from_site\":\"main\","
            "\"to_site\":\"w%d\",\"substance\":\"ephedrine\",\"lot\":"
            "\"E%d\",\"qty\":\"%d\",\"unit\":\"kg\"}\n",
            i, day % 28 + 1, i % 2, i, i == 20 ? 500 : 5);
        /* patients seen by many prescribers and pharmacies; one
         * prescription dispensed twice */
        ADD("{\"type\":\"dispense\",\"id\":\"d%d\",\"party\":\"PH%d\","
            "\"at\":\"2026-02-%02dT05:00:00+08:00\",\"substance\":"
            "\"diazepam\",\"lot\":\"L\",\"qty\":\"1\",\"unit\":"
            "\"unit\",\"rx\":{\"id\":\"R%d\",\"prescriber\":\"D%d\","
            "\"patient\":\"P%d\",\"written\":\"2026-01-01\","
            "\"days_supply\":%d,\"form\":\"oral\"}}\n",
            i, 1 + i % 5, day % 28 + 1, i == 37 ? 2 : i, i % 7, i % 3,
            i % 11 == 5 ? 30 : 1);
        /* parties registered along the way (one suspended, all without
         * category 1), later buyers; counts at a second site; sales
         * citing permits never issued, with a carrier */
        if (i % 5 == 2)
            ADD("{\"type\":\"party\",\"id\":\"g%d\",\"party\":"
                "\"REGULATOR\",\"at\":\"2026-01-01T00:00:00+08:00\","
                "\"subject\":\"Q%d\",\"name\":\"q\",\"kind\":"
                "\"distributor\",\"region\":\"CN-31\",\"licenses\":"
                "[\"CN-PC-3\"]%s}\n",
                i, i, i % 10 == 7 ? ",\"status\":\"suspended\"" : "");
        if (i % 5 == 4)
            ADD("{\"type\":\"sale\",\"id\":\"q%d\",\"party\":\"S\","
                "\"at\":\"2026-01-%02dT06:00:00+08:00\",\"to\":\"Q%d\","
                "\"substance\":\"ephedrine\",\"lot\":\"E%d\",\"qty\":"
                "\"1\",\"unit\":\"kg\",\"permit\":\"PL%d\",\"carrier\":"
                "\"B\",\"transport_permit\":\"TP%d\"}\n",
                i, day % 28 + 1, i - 2, i, i % 3, i % 2);
        /* carriers: some of those sales picked up by B (some short),
         * half of the pickups delivered; the others are overdue */
        if (i % 5 == 4 && i % 10 == 9)
            ADD("{\"type\":\"pickup\",\"id\":\"u%d\",\"party\":\"B\","
                "\"at\":\"2026-01-%02dT%02d:00:00+08:00\",\"ref\":{"
                "\"party\":\"S\",\"id\":\"q%d\"},\"substance\":"
                "\"ephedrine\",\"lot\":\"E%d\",\"qty\":\"%s\",\"unit\":"
                "\"kg\",\"vehicle\":\"V%d\",\"driver\":\"D%d\"}\n",
                i, day % 28 + 1, i % 20 == 9 ? 8 : 22, i, i,
                i % 3 ? "1" : "0.5", i % 2, i % 3);
        if (i % 5 == 4 && i % 20 == 9)
            ADD("{\"type\":\"delivery\",\"id\":\"v%d\",\"party\":"
                "\"B\",\"at\":\"2026-01-%02dT23:00:00+08:00\",\"ref\":{"
                "\"party\":\"S\",\"id\":\"q%d\"},\"to\":\"Q%d\","
                "\"substance\":\"ephedrine\",\"lot\":\"E%d\",\"qty\":"
                "\"1\",\"unit\":\"kg\"}\n",
                i, day % 28 + 1, i, i - 2, i);
        if (i % 6 == 1)
            ADD("{\"type\":\"stocktake\",\"id\":\"k%d\",\"party\":"
                "\"S\",\"at\":\"2026-01-%02dT07:00:00+08:00\",\"site\":"
                "\"w%d\",\"substance\":\"ephedrine\",\"lot\":\"E%d\","
                "\"counted\":\"%d\",\"unit\":\"kg\"}\n",
                i, day % 28 + 1, i % 2, i, i % 12 == 7 ? 7 : 5);
        if (i % 13 == 6)
            ADD("{\"type\":\"loss\",\"id\":\"x%d\",\"party\":\"B\","
                "\"at\":\"2026-03-01T00:00:00+08:00\",\"substance\":"
                "\"ephedrine\",\"lot\":\"E%d\",\"qty\":\"1\",\"unit\":"
                "\"kg\",\"reason\":\"theft\"}\n",
                i, i);
        if (i % 13 == 7)
            ADD("{\"type\":\"destroy\",\"id\":\"y%d\",\"party\":\"S\","
                "\"at\":\"2026-03-01T00:00:00+08:00\",\"substance\":"
                "\"ephedrine\",\"lot\":\"E%d\",\"qty\":\"1\",\"unit\":"
                "\"kg\",\"method\":\"burn\",\"witness\":\"%s\"}\n",
                i, i, i % 2 ? "N" : "REGULATOR");
#undef ADD
        if (i % 10 != 9)
            continue;
        /* four loads: the halves meet at four places */
        load(f, buf);
        len = 0;
        reconcile_split_min = SIZE_MAX; /* one loader */
        one = all_alerts(f);
        reconcile_split_min = 2;
        size_t splits = reconcile_split_runs;
        two = all_alerts(f);
        assert_true(reconcile_split_runs == splits + 1);
        assert_non_null(one);
        assert_non_null(two);
        assert_string_equal(one, two);
        free(two);
        if (i < 39)
            free(one);
    }
    free(buf);
    for (const char *rule = "PERMIT_MISSING|QTY_MISMATCH|NEGATIVE_STOCK|"
                            "UNUSUAL_ORDER|UNLICENSED_PARTY|RX_REUSE|"
                            "DOCTOR_SHOPPING|RX_LIMIT|LOSS_REPORTED|"
                            "DESTROY_UNWITNESSED|SHIPMENT_UNCONFIRMED|"
                            "STOCKTAKE_VARIANCE|PARCEL_CHECK_MISSING|"
                            "CUSTODY_GAP|TRANSIT_OVERDUE";
         *rule; rule += strcspn(rule, "|") + (rule[strcspn(rule, "|")] != 0)) {
        char code[64];
        snprintf(code, sizeof(code), "\"rule\":\"%.*s\"",
                 (int)strcspn(rule, "|"), rule);
        if (!strstr(one, code))
            fail_msg("no %s alert in the data set", code);
    }
    reconcile_split_min = 1024;
    free(one);
}

static void test_rules_file(void **state)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    static const char bad[] = "{\"NO_SUCH_RULE\":{}}";
    static const char bad2[] = "{\"UNUSUAL_ORDER\":{\"factr\":2}}";
    fixture *f = *state;
    o.rules_json = bad;
    o.rules_len = sizeof(bad) - 1;
    assert_int_equal(trace_reconcile(f->l, &o, NULL, NULL, NULL), TRACE_EINVAL);
    o.rules_json = bad2;
    o.rules_len = sizeof(bad2) - 1;
    assert_int_equal(trace_reconcile(f->l, &o, NULL, NULL, NULL), TRACE_EINVAL);
}

/* entry_peek reads what loading needs straight from an entry's bytes: the
 * same values the full decoding gives, and 0 (decode in full) for bytes
 * it cannot vouch for: every truncation, a wrong wire type, a missing
 * required field. */
static void test_entry_peek(void **state)
{
    Trace__V1__Entry e = TRACE__V1__ENTRY__INIT;
    uint8_t hash[32] = {1}, kid[8] = {2}, event[40], *buf, *bad;
    struct entry_peek pk;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(event); i++)
        event[i] = (uint8_t)(0x80 | i); /* bytes that look like varints */
    e.version = 2;
    e.seq = 300;
    e.party = "91310000MA1K000001";
    e.party_seq = 7;
    e.prev_hash = (ProtobufCBinaryData){32, hash};
    e.prev_party_hash = (ProtobufCBinaryData){32, hash};
    e.recorded_us = -1234567; /* negative: a ten-byte varint */
    e.key_id = (ProtobufCBinaryData){8, kid};
    e.event = (ProtobufCBinaryData){sizeof(event), event};
    e.has_historic = 1;
    e.historic = 1;
    len = trace__v1__entry__get_packed_size(&e);
    assert_non_null(buf = malloc(len));
    trace__v1__entry__pack(&e, buf);
    assert_int_equal(entry_peek(buf, len, &pk), 1);
    assert_true(pk.recorded_us == -1234567);
    assert_int_equal(pk.historic, 1);
    assert_int_equal(pk.event_len, sizeof(event));
    assert_memory_equal(pk.event, event, sizeof(event));
    assert_true(pk.event >= buf && pk.event + pk.event_len <= buf + len);
    /* every truncation is refused (the required fields end the entry
     * but historic, which is optional: cut before it, it is absent) */
    for (size_t n = 0; n < len; n++) {
        int ok = entry_peek(buf, n, &pk);
        if (ok) {
            assert_true(n == len - 2); /* without the historic field */
            assert_int_equal(pk.historic, 0);
        }
    }
    /* a wrong wire type for recorded_us (field 7, varint) */
    assert_non_null(bad = malloc(len));
    memcpy(bad, buf, len);
    for (size_t i = 0; i < len; i++)
        if (bad[i] == (7 << 3)) {
            bad[i] = (7 << 3) | 2;
            break;
        }
    assert_int_equal(entry_peek(bad, len, &pk), 0);
    /* a required field missing */
    e.key_id = (ProtobufCBinaryData){0, NULL};
    e.has_historic = 0;
    free(buf);
    len = trace__v1__entry__get_packed_size(&e);
    assert_non_null(buf = malloc(len));
    trace__v1__entry__pack(&e, buf);
    assert_int_equal(entry_peek(buf, len, &pk), 1); /* empty bytes: there */
    {
        /* drop field 8 entirely: tag 0x42, length 0 */
        size_t j = 0, w = 0;
        uint8_t *cut = malloc(len);
        assert_non_null(cut);
        for (j = 0; j < len; j++) {
            if (buf[j] == 0x42 && j + 1 < len && buf[j + 1] == 0) {
                j++;
                continue;
            }
            cut[w++] = buf[j];
        }
        assert_true(w == len - 2);
        assert_int_equal(entry_peek(cut, w, &pk), 0);
        free(cut);
    }
    free(bad);
    free(buf);
}

int main(void)
{
#define T(fn)                                                                  \
    cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_entry_peek),
        T(test_permit_missing),
        T(test_permit_invalid_and_exceeded),
        T(test_shipment_and_quantities),
        T(test_receipts_summed),
        T(test_split_purchase),
        T(test_parcel_checks),
        T(test_custody_gap),
        T(test_transit_overdue),
        T(test_custody_quantities),
        T(test_workdays),
        T(test_application_overdue),
        T(test_application_overdue_incremental),
        T(test_stock),
        T(test_unusual_order),
        T(test_unlicensed),
        T(test_destroy_loss),
        T(test_late_report),
        T(test_rx_limits),
        T(test_rx_reuse_and_shopping),
        T(test_stable_ids_and_ack),
        T(test_chain_broken),
        T(test_incremental),
        T(test_incremental_correction),
        T(test_incremental_index_lost),
        T(test_incremental_bad_verify_state),
        T(test_incremental_periodic_full),
        T(test_rules_file),
        T(test_split_load),
        T(test_store_via),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
