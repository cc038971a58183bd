/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_epcis.c - GS1 keys and URIs (gs1.c) and the EPCIS reader
 * (epcis.c) on documents in memory, with master data set by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "trace/epcis.h"

static void test_check_digits(void **state)
{
    (void)state;
    /* GS1's own example GTIN and GLN */
    assert_true(gs1_key_valid("09520123456788", 14));
    assert_false(gs1_key_valid("09520123456787", 14));
    assert_true(gs1_key_valid("0614141000012", 13));
    assert_false(gs1_key_valid("0614141000013", 13));
    assert_false(gs1_key_valid("061414100001", 13)); /* too short */
    assert_false(gs1_key_valid("06141410000a2", 13));
    assert_int_equal(gs1_check_digit("1061414107346", 13), '4');
}

static void test_uris(void **state)
{
    char gtin[15], lot[64], gln[14];
    int serial;

    (void)state;
    assert_int_equal(gs1_parse_item("urn:epc:id:sgtin:0614141.107346.2017",
                                    gtin, lot, sizeof(lot), &serial),
                     TRACE_OK);
    assert_string_equal(gtin, "10614141073464");
    assert_string_equal(lot, "");
    assert_int_equal(serial, 1);
    assert_int_equal(gs1_parse_item("urn:epc:class:lgtin:4012345.012345.998877",
                                    gtin, lot, sizeof(lot), &serial),
                     TRACE_OK);
    assert_string_equal(gtin, "04012345123456");
    assert_string_equal(lot, "998877");
    assert_int_equal(serial, 0);
    assert_int_equal(gs1_parse_item("urn:epc:idpat:sgtin:4012345.066666.*",
                                    gtin, lot, sizeof(lot), &serial),
                     TRACE_OK);
    assert_int_equal(
        gs1_parse_item("https://id.gs1.org/01/09520123456788/10/ABC/21/7", gtin,
                       lot, sizeof(lot), &serial),
        TRACE_OK);
    assert_string_equal(gtin, "09520123456788");
    assert_string_equal(lot, "ABC");
    assert_int_equal(serial, 1);
    assert_int_equal(gs1_parse_item("https://id.gs1.org/01/09520123456787",
                                    gtin, lot, sizeof(lot), &serial),
                     TRACE_EINVAL);
    assert_int_equal(gs1_parse_item("urn:epc:id:sscc:0614141.1234567890", gtin,
                                    lot, sizeof(lot), &serial),
                     TRACE_ENOTFOUND);
    assert_int_equal(gs1_parse_item("urn:epc:id:sgtin:0614141.10734.1", gtin,
                                    lot, sizeof(lot), &serial),
                     TRACE_EINVAL); /* 12 digits */
    assert_int_equal(gs1_parse_gln("urn:epc:id:sgln:0614141.07346.1234", gln),
                     TRACE_OK);
    assert_string_equal(gln, "0614141073467");
    assert_int_equal(gs1_parse_gln("urn:epc:id:pgln:9520001.11111", gln),
                     TRACE_OK);
    assert_string_equal(gln, "9520001111112");
    assert_int_equal(gs1_parse_gln("urn:epc:id:sgln:0614141.07346", gln),
                     TRACE_EINVAL); /* no extension */
    assert_int_equal(gs1_parse_gln("https://id.gs1.org/414/0614141000012", gln),
                     TRACE_OK);
    assert_int_equal(gs1_parse_gln("https://id.gs1.org/414/0614141000013", gln),
                     TRACE_EINVAL);
}

struct got {
    char lines[8][1024];
    int n;
    char notes[8][512];
    int n_notes;
};

static int on_line(void *ctx, const char *line, size_t len, unsigned long index)
{
    struct got *g = ctx;
    (void)index;
    if (g->n < 8)
        snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%.*s", (int)len, line);
    return 0;
}

static int on_note(void *ctx, unsigned long index, int rejected,
                   const char *reason)
{
    struct got *g = ctx;
    if (g->n_notes < 8)
        snprintf(g->notes[g->n_notes++], sizeof(g->notes[0]), "%lu %s %s",
                 index, rejected ? "rejected" : "skipped", reason);
    return 0;
}

static int read_doc(const trace_epcis_master *m, const char *doc, struct got *g,
                    trace_epcis_summary *sum)
{
    FILE *f = fmemopen((void *)doc, strlen(doc), "rb");
    int rc;

    assert_non_null(f);
    memset(g, 0, sizeof(*g));
    rc = trace_epcis_read(m, f, on_line, on_note, g, sum);
    fclose(f);
    return rc;
}

#define OBJ                                                                    \
    "{\"type\":\"ObjectEvent\",\"eventTime\":\"2026-02-01T10:00:00+08:00\","   \
    "\"action\":\"OBSERVE\","
#define SRC                                                                    \
    "\"sourceList\":[{\"type\":\"owning_party\",\"source\":"                   \
    "\"urn:epc:id:sgln:4012345.00001.0\"}]"
#define DST                                                                    \
    "\"destinationList\":[{\"type\":\"urn:epcglobal:cbv:sdt:owning_party\","   \
    "\"destination\":\"urn:epc:id:pgln:0614141.00001\"}]"

static void test_reader(void **state)
{
    trace_epcis_master *m;
    trace_epcis_summary sum;
    struct got g;

    (void)state;
    assert_int_equal(trace_epcis_master_new(&m), TRACE_OK);
    assert_int_equal(trace_epcis_master_add_product(m, "04012345123456",
                                                    "ephedrine", "1", "kg", 1),
                     TRACE_OK);
    assert_int_equal(trace_epcis_master_add_product(m, "04012345123457",
                                                    "ephedrine", "1", "kg", 1),
                     TRACE_EINVAL);
    assert_int_equal(trace_epcis_master_add_party(m, "4012345000016", "P1"),
                     TRACE_OK);
    assert_int_equal(trace_epcis_master_add_party(m, "0614141000012", "P2"),
                     TRACE_OK);
    assert_int_equal(
        trace_epcis_master_add_permit(m, "PL-1", "purchase_license"), TRACE_OK);

    /* shipping: a sale of 2.5 kg, its permit from the bizTransactions;
     * the type after the event list; a BOM */
    assert_int_equal(
        read_doc(m,
                 "\xef\xbb\xbf{\"epcisBody\":{\"eventList\":[" OBJ
                 "\"eventID\":\"e1\",\"bizStep\":\"urn:epcglobal:cbv:bizstep:"
                 "shipping\",\"quantityList\":[{\"epcClass\":\"urn:epc:class:"
                 "lgtin:4012345.012345.L1\",\"quantity\":2.5,\"uom\":\"KGM\"}"
                 "]," SRC "," DST ",\"bizTransactionList\":[{\"type\":\"po\","
                 "\"bizTransaction\":\"urn:epcglobal:cbv:bt:0614141000012:PL-"
                 "1\"}]}]},\"type\":\"EPCISDocument\"}",
                 &g, &sum),
        TRACE_OK);
    assert_int_equal(sum.events, 1);
    assert_int_equal(sum.mapped, 1);
    assert_int_equal(g.n, 1);
    assert_string_equal(
        g.lines[0],
        "{\"type\":\"sale\",\"id\":\"e1\",\"party\":\"P1\",\"at\":\"2026-02-"
        "01T10:00:00+08:00\",\"to\":\"P2\",\"lot\":\"L1\",\"gtin\":"
        "\"04012345123456\",\"qty\":\"2.5\",\"unit\":\"kg\",\"permit\":\"PL-"
        "1\"}");

    /* no registered product: skipped; an SSCC is no product */
    assert_int_equal(
        read_doc(m,
                 "{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":"
                 "[" OBJ "\"bizStep\":\"shipping\",\"epcList\":[\"urn:epc:id:"
                 "sscc:0614141.1234567890\"]}]}}",
                 &g, &sum),
        TRACE_OK);
    assert_int_equal(sum.skipped, 1);
    assert_int_equal(g.n, 0);
    assert_string_equal(g.notes[0], "0 skipped concerns no registered product");

    /* eventTime missing; a fraction of a pack */
    assert_int_equal(
        read_doc(m,
                 "{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":"
                 "[{\"type\":\"ObjectEvent\"}," OBJ
                 "\"bizStep\":\"shipping\",\"quantityList\":[{\"epcClass\":"
                 "\"urn:epc:class:lgtin:4012345.012345.L1\",\"quantity\":1.5,"
                 "\"uom\":\"EA\"}]," SRC "," DST "}]}}",
                 &g, &sum),
        TRACE_OK);
    assert_int_equal(sum.rejected, 2);
    assert_string_equal(g.notes[0], "0 rejected no eventTime");
    assert_non_null(
        strstr(g.notes[1], "1 rejected quantityList[0]: 1.5 packs"));

    /* malformed documents */
    assert_int_equal(read_doc(m, "", &g, &sum), TRACE_EINVAL);
    assert_int_equal(read_doc(m, "[]", &g, &sum), TRACE_EINVAL);
    assert_int_equal(read_doc(m, "{\"type\":\"EPCISDocument\"}", &g, &sum),
                     TRACE_EINVAL); /* no event list */
    assert_int_equal(read_doc(m,
                              "{\"type\":\"EPCISDocument\",\"epcisBody\":{"
                              "\"eventList\":[]}} x",
                              &g, &sum),
                     TRACE_EINVAL);
    assert_int_equal(read_doc(m,
                              "{\"type\":\"EPCISDocument\",\"epcisBody\":{"
                              "\"eventList\":[]}}",
                              &g, &sum),
                     TRACE_OK);
    trace_epcis_master_free(m);
    trace_epcis_master_free(NULL);
}

/* Sites by SGLN: a location names the party and the site; a location
 * of another party's site is no site of this event's party. */
static void test_sites(void **state)
{
    trace_epcis_master *m;
    trace_epcis_summary sum;
    struct got g;

    (void)state;
    assert_int_equal(trace_epcis_master_new(&m), TRACE_OK);
    assert_int_equal(trace_epcis_master_add_product(m, "04012345123456",
                                                    "ephedrine", "1", "kg", 1),
                     TRACE_OK);
    assert_int_equal(trace_epcis_master_add_party(m, "4012345000016", "P1"),
                     TRACE_OK);
    assert_int_equal(trace_epcis_master_add_party(m, "0614141000012", "P2"),
                     TRACE_OK);
    /* 4012345000023: P1's plant-1; 0614141000029: P2's store */
    assert_int_equal(
        trace_epcis_master_add_site(m, "4012345000023", "P1", "plant-1"),
        TRACE_OK);
    assert_int_equal(
        trace_epcis_master_add_site(m, "0614141000029", "P2", "store"),
        TRACE_OK);
    assert_int_equal(
        trace_epcis_master_add_site(m, "4012345000024", "P1", "bad"),
        TRACE_EINVAL); /* check digit */
    assert_int_equal(trace_epcis_master_add_site(m, "4012345000030", "P1", ""),
                     TRACE_EINVAL);

    /* commissioning at plant-1's SGLN: P1's produce at plant-1; shipping
     * from plant-1 to P2 named by its store's SGLN (a location) */
    assert_int_equal(
        read_doc(m,
                 "{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":"
                 "[" OBJ "\"eventID\":\"p1\",\"bizStep\":\"commissioning\","
                 "\"bizLocation\":{\"id\":\"urn:epc:id:sgln:4012345.00002."
                 "0\"},\"quantityList\":[{\"epcClass\":\"urn:epc:class:"
                 "lgtin:4012345.012345.L1\",\"quantity\":3,\"uom\":\"KGM\"}]"
                 "}," OBJ "\"eventID\":\"s1\",\"bizStep\":\"shipping\","
                 "\"bizLocation\":{\"id\":\"urn:epc:id:sgln:4012345.00002."
                 "0\"},\"quantityList\":[{\"epcClass\":\"urn:epc:class:"
                 "lgtin:4012345.012345.L1\",\"quantity\":1,\"uom\":\"KGM\"}],"
                 "\"destinationList\":[{\"type\":\"location\",\"destination"
                 "\":\"urn:epc:id:sgln:0614141.00002.0\"}]}," OBJ
                 "\"eventID\":\"r1\",\"bizStep\":\"receiving\","
                 "\"readPoint\":{\"id\":\"urn:epc:id:sgln:4012345.00002.0\"}"
                 ",\"quantityList\":[{\"epcClass\":\"urn:epc:class:"
                 "lgtin:4012345.012345.L1\",\"quantity\":1,\"uom\":\"KGM\"}],"
                 "\"sourceList\":[{\"type\":\"owning_party\",\"source\":"
                 "\"urn:epc:id:pgln:4012345.00001\"}],\"destinationList\":[{"
                 "\"type\":\"owning_party\",\"destination\":\"urn:epc:id:"
                 "pgln:0614141.00001\"}]}]}}",
                 &g, &sum),
        TRACE_OK);
    assert_int_equal(sum.mapped, 3);
    assert_int_equal(g.n, 3);
    assert_non_null(strstr(g.lines[0], "\"type\":\"produce\",\"id\":\"p1\","
                                       "\"party\":\"P1\""));
    assert_non_null(strstr(g.lines[0], "\"site\":\"plant-1\""));
    assert_non_null(strstr(g.lines[1], "\"party\":\"P1\""));
    assert_non_null(strstr(g.lines[1], "\"to\":\"P2\""));
    assert_non_null(strstr(g.lines[1], "\"site\":\"plant-1\""));
    /* read at P1's plant: P2's receipt has no site of P2 from it */
    assert_non_null(strstr(g.lines[2], "\"type\":\"receipt\""));
    assert_null(strstr(g.lines[2], "\"site\""));
    trace_epcis_master_free(m);
}

/* Each event is parsed strictly: duplicate members, bad escapes, bad
 * UTF-8, a bad number and deep nesting reject the event, not the
 * document. */
static void test_strict_events(void **state)
{
    static const char *const bad[] = {
        "{\"type\":\"ObjectEvent\",\"type\":\"ObjectEvent\"}",
        "{\"type\":\"Object\\u12\"}",
        "{\"type\":\"Object\\ud800\"}",
        "{\"type\":\"Object\\u0000\"}",
        "{\"type\":\"\xc3\x28\"}",
        "{\"type\":\"ObjectEvent\",\"x\":01}",
        "{\"type\":\"ObjectEvent\",\"x\":1.}",
        "{\"type\":\"ObjectEvent\",\"x\":-}",
    };
    trace_epcis_master *m;
    trace_epcis_summary sum;
    struct got g;
    char doc[512];

    (void)state;
    assert_int_equal(trace_epcis_master_new(&m), TRACE_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        snprintf(doc, sizeof(doc),
                 "{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":"
                 "[%s]}}",
                 bad[i]);
        int rc = read_doc(m, doc, &g, &sum);
        if (rc == TRACE_OK) { /* the scanner let it by: the event is refused */
            assert_int_equal(sum.rejected, 1);
            assert_non_null(strstr(g.notes[0], "0 rejected not JSON: "));
        } else {
            assert_int_equal(rc, TRACE_EINVAL);
        }
    }
    /* escapes and UTF-8 that are fine decode */
    assert_int_equal(
        read_doc(m,
                 "{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":"
                 "[{\"type\":\"\\u0041ggregation\\u0045vent\",\"eventTime\":"
                 "\"2026-01-01T00:00:00Z\",\"n\":\"\xe4\xb8\xad\\ud83d\\ude00"
                 "\",\"x\":-0.5e+3}]}}",
                 &g, &sum),
        TRACE_OK);
    assert_int_equal(sum.skipped, 1);
    assert_non_null(strstr(g.notes[0], "AggregationEvent: read"));
    trace_epcis_master_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_digits),  cmocka_unit_test(test_uris),
        cmocka_unit_test(test_reader),        cmocka_unit_test(test_sites),
        cmocka_unit_test(test_strict_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
