/* SPDX-License-Identifier: Apache-2.0 */
/* test_regime.c - the regime table (regime.c): the built-in table, a
 * malformed or unknown one refused before a ledger is made, the rules
 * reading it under a non-CN regime (a case that fires and a near miss),
 * the checks at entry, a rules file over the regime's deadlines, and a
 * ledger without a regime in its meta behaving as CN. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "helpers.h"
#include "internal.h"

#define EV(type, id, party, at, rest)                                          \
    "{\"type\":\"" type "\",\"id\":\"" id "\",\"party\":\"" party              \
    "\",\"at\":\"" at "\"," rest "}\n"
#define REG(subject, kind, lic)                                                \
    EV("party", "r-" subject, "REGULATOR", "2026-01-01T00:00:00Z",             \
       "\"subject\":\"" subject "\",\"name\":\"n\",\"kind\":\"" kind           \
       "\",\"region\":\"US-NY\",\"licenses\":[" lic "]")
#define PERMIT(id, kind, holder, sub, unit)                                    \
    EV("permit", "p-" id, "REGULATOR", "2026-01-01T00:00:00Z",                 \
       "\"permit\":\"" id "\",\"kind\":\"" kind "\",\"holder\":\"" holder      \
       "\",\"substance\":\"" sub "\",\"qty\":\"1000\",\"unit\":\"" unit        \
       "\",\"valid_from\":\"2026-01-01\",\"valid_until\":\"2026-12-31\","      \
       "\"uses\":\"multi\"")
#define PRODUCE(id, sub, lot, unit)                                            \
    EV("produce", id, "S", "2026-01-02T00:00:00Z",                             \
       "\"substance\":\"" sub "\",\"lot\":\"" lot                              \
       "\",\"qty\":\"100\",\"unit\":\"" unit "\"")
#define SALE(id, to, sub, lot, unit, extra)                                    \
    EV("sale", id, "S", "2026-01-05T00:00:00Z",                                \
       "\"to\":\"" to "\",\"substance\":\"" sub "\",\"lot\":\"" lot            \
       "\",\"qty\":\"1\",\"unit\":\"" unit "\"" extra)
#define US_SCOPES                                                              \
    "\"US-LIST-I\",\"US-CSA-II\",\"US-CSA-III\",\"US-CSA-IV\",\"US-CSA-V\""

/* 2026-06-01T00:00:00Z */
#define AS_OF 1780272000000000LL

/* A fresh ledger of `regime` in f (as fixture_setup, which makes CN). */
static fixture *regime_fixture(const char *code)
{
    fixture *f = calloc(1, sizeof(*f));
    trace_init_opts o = TRACE_INIT_OPTS_INIT;
    const trace_key *key;

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/trace-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    o.regime = code;
    if (trace_keyring_open(&f->ring, f->keys, 1) != TRACE_OK ||
        trace_keyring_generate(f->ring, "REGULATOR", &key) != TRACE_OK ||
        trace_ledger_init(&f->l, f->dir, key, &o) != TRACE_OK)
        fail_msg("setup: %s", trace_error_last());
    return f;
}

static void fixture_done(fixture *f)
{
    void *st = f;
    fixture_teardown(&st);
}

static void load(fixture *f, const char *jsonl, unsigned flags)
{
    trace_append_result r;
    if (fixture_import(f, jsonl, TRACE_APPEND_PROVISION_KEYS | flags, &r) !=
        TRACE_OK)
        fail_msg("import: %s", trace_error_last());
}

struct tally {
    const char *rule;
    int n;
    char detail[512];
};

static int collect(const trace_alert *a, void *ctx)
{
    struct tally *t = ctx;
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "  %s\n", a->json);
    if (strcmp(a->rule, t->rule) == 0) {
        if (t->n == 0)
            snprintf(t->detail, sizeof(t->detail), "%s", a->json);
        t->n++;
    }
    return 0;
}

/* The number of alerts of `rule`; with `id`, the first must name that
 * event as evidence. */
static int alerts_of(fixture *f, const char *rule, const char *id,
                     const char *rules_json)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    struct tally t = {rule, 0, ""};
    char want[96];
    o.as_of_us = AS_OF;
    o.rules_json = rules_json;
    o.rules_len = rules_json ? strlen(rules_json) : 0;
    snprintf(want, sizeof(want), "\"id\":\"%s\"", id ? id : "");
    if (trace_reconcile(f->l, &o, collect, &t, NULL) != TRACE_OK)
        fail_msg("reconcile: %s", trace_error_last());
    if (id && t.n && !strstr(t.detail, want))
        fail_msg("%s names other evidence: %s", rule, t.detail);
    return t.n;
}

/* ------------------------------------------------------------------ */
/* The table                                                            */

static void test_builtin_table(void **state)
{
    static const char *const codes[] = {"CN", "US", "EU", "UN"};
    (void)state;
    for (size_t i = 0; i < 4; i++)
        if (trace_regime_check(NULL, 0, codes[i]) != TRACE_OK)
            fail_msg("%s: %s", codes[i], trace_error_last());
    assert_int_equal(trace_regime_check(NULL, 0, NULL), TRACE_OK);
    assert_int_equal(trace_regime_check(NULL, 0, "XX"), TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "unknown regime XX"));
    assert_non_null(strstr(trace_error_last(), "CN, US, EU, UN"));
    assert_int_equal(trace_regime_check(NULL, 0, "cn"), TRACE_EINVAL);
}

/* A minimal valid table, and what breaking it says. */
#define T_HEAD        "{\"regimes\":[{\"regime\":\"ZZ\",\"scopes\":[\"ZZ-1\"],"
#define T_CLASS(body) "\"classes\":[{\"class\":\"ZZ-1\"" body "}]"
#define T_TAIL        "}]}"

static void test_malformed_tables(void **state)
{
    static const struct {
        const char *json, *says;
    } cases[] = {
        {"{", "regimes:"},
        {"[]", "non-empty \"regimes\""},
        {"{\"regimes\":[]}", "non-empty \"regimes\""},
        {"{\"regimes\":[],\"extra\":1}", "unknown key \"extra\""},
        {"{\"regimes\":[{\"scopes\":[]}]}", "no \"regime\" code"},
        {"{\"regimes\":[{\"regime\":\"Z\\\"Z\",\"scopes\":[]}]}",
         "no \"regime\" code"},
        {T_HEAD "\"classes\":[]" T_TAIL, "1 to 250 control classes"},
        {T_HEAD T_CLASS(",\"sale\":{\"permits\":[\"bogus\"]}") T_TAIL,
         "\"bogus\" is not a permit kind"},
        {T_HEAD T_CLASS(",\"sale\":{\"permits\":[],\"required\":true}") T_TAIL,
         "at least one permit kind"},
        {T_HEAD T_CLASS(",\"sale\":{\"permits\":[\"order_form\"],"
                        "\"required\":\"yes\"}") T_TAIL,
         "\"configurable\""},
        {T_HEAD T_CLASS(",\"sale\":{\"permit\":[\"order_form\"]}") T_TAIL,
         "unknown key \"permit\""},
        {T_HEAD T_CLASS(",\"licence\":\"ZZ-9\"") T_TAIL,
         "one of the regime's \"scopes\""},
        {T_HEAD T_CLASS(",\"deadline\":\"week\"") T_TAIL,
         "\"deadline\" must be"},
        {T_HEAD T_CLASS(",\"split\":\"cat9\"") T_TAIL, "\"split\" must be"},
        {T_HEAD "\"split_purchase\":{\"cat4\":1}," T_CLASS("") T_TAIL,
         "split_purchase.cat4"},
        {T_HEAD T_CLASS(",\"transprt\":{}") T_TAIL, "unknown key \"transprt\""},
        {T_HEAD "\"classes\":[{\"class\":\"A\"},{\"class\":\"A\"}]" T_TAIL,
         "class A is listed twice"},
        {T_HEAD "\"late_report\":{\"cat1_days\":-1}," T_CLASS("") T_TAIL,
         "late_report.cat1_days"},
        {T_HEAD "\"late_report\":{\"days\":5}," T_CLASS("") T_TAIL,
         "late_report.days"},
        {"{\"regimes\":[{\"regime\":\"ZZ\",\"scopes\":[\"A\",\"A\"],"
         "\"classes\":[{\"class\":\"A\"}]}]}",
         "named twice"},
        {"{\"regimes\":[{\"regime\":\"ZZ\",\"scopes\":[],\"classes\":[{"
         "\"class\":\"A\"}]},{\"regime\":\"ZZ\",\"scopes\":[],\"classes\":[{"
         "\"class\":\"A\"}]}]}",
         "ZZ is listed twice"},
        /* a broken entry other than the one chosen still refuses */
        {"{\"regimes\":[{\"regime\":\"ZZ\",\"scopes\":[],\"classes\":[{"
         "\"class\":\"A\"}]},{\"regime\":\"YY\",\"scopes\":[],\"classes\":[{"
         "\"class\":\"A\",\"licence\":\"B\"}]}]}",
         "YY A"},
    };
    const char *good = T_HEAD T_CLASS(
        ",\"sale\":{\"permits\":[\"order_form\"],\"required\":true},"
        "\"licence\":\"ZZ-1\",\"deadline\":\"cat1_days\"") T_TAIL;
    (void)state;
    if (trace_regime_check(good, strlen(good), "ZZ") != TRACE_OK)
        fail_msg("the good table: %s", trace_error_last());
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int rc = trace_regime_check(cases[i].json, strlen(cases[i].json), "ZZ");
        if (rc != TRACE_EINVAL || !strstr(trace_error_last(), cases[i].says))
            fail_msg("case %zu: rc %d, \"%s\" (want \"%s\")", i, rc,
                     trace_error_last(), cases[i].says);
    }
}

/* init refuses an unknown regime or a malformed table and makes nothing. */
static void test_init_refuses(void **state)
{
    char dir[64] = "/tmp/trace-test-XXXXXX", path[128];
    trace_init_opts o = TRACE_INIT_OPTS_INIT;
    trace_keyring *ring;
    const trace_key *key;
    trace_ledger *l = NULL;
    struct stat st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keys", dir);
    assert_int_equal(trace_keyring_open(&ring, path, 1), TRACE_OK);
    assert_int_equal(trace_keyring_generate(ring, "REGULATOR", &key), TRACE_OK);
    o.regime = "MARS";
    assert_int_equal(trace_ledger_init(&l, dir, key, &o), TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "unknown regime MARS"));
    o.regime = "CN";
    o.regimes_json = "{\"regimes\":[{\"regime\":\"CN\"}]}";
    o.regimes_len = strlen(o.regimes_json);
    assert_int_equal(trace_ledger_init(&l, dir, key, &o), TRACE_EINVAL);
    assert_null(l);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    assert_int_not_equal(stat(path, &st), 0);
    /* the same folder then takes a good one */
    o.regime = "EU";
    o.regimes_json = NULL;
    assert_int_equal(trace_ledger_init(&l, dir, key, &o), TRACE_OK);
    assert_string_equal(trace_ledger_regime(l), "EU");
    trace_ledger_close(l);
    assert_int_equal(trace_ledger_open(&l, dir), TRACE_OK);
    assert_string_equal(trace_ledger_regime(l), "EU");
    assert_non_null(
        strstr(trace_ledger_regime_json(l), "customer_declaration"));
    trace_ledger_close(l);
    trace_keyring_free(ring);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ */
/* Rules under the US regime                                            */

/* clang-format off */
#define US_PARTIES                                                             \
    REG("S", "manufacturer", US_SCOPES)                                        \
    REG("B", "distributor", US_SCOPES)                                         \
    REG("N", "distributor", "")                                                \
    REG("L1", "distributor", "\"US-LIST-I\"")
/* clang-format on */

/* PERMIT_MISSING and PERMIT_INVALID read the class's permit kinds: a
 * Schedule II sale needs an order form (Form 222/CSOS); a List I or II
 * sale needs none; a purchase licence (CN's kind) is the wrong kind. */
static void test_us_permits(void **state)
{
    fixture *f = regime_fixture("US");
    (void)state;
    load(f,
         US_PARTIES PERMIT("OF-1", "order_form", "B", "1-phenyl-2-propanone",
                           "kg")
             PERMIT("PL-1", "purchase_license", "B", "anpp", "kg")
                 PRODUCE("m1", "1-phenyl-2-propanone", "P1", "kg")
                     PRODUCE("m2", "anpp", "A1", "kg")
                         PRODUCE("m3", "ephedrine", "E1", "kg")
                             PRODUCE("m4", "acetone", "K1", "L")
         /* fires: Schedule II with no order form */
         SALE("s1", "B", "anpp", "A1", "kg", "")
         /* near miss: with one */
         SALE("s2", "B", "1-phenyl-2-propanone", "P1", "kg",
              ",\"permit\":\"OF-1\"")
         /* near misses: List I and List II need no per-sale permit */
         SALE("s3", "B", "ephedrine", "E1", "kg", "")
             SALE("s4", "B", "acetone", "K1", "L", "")
         /* fires PERMIT_INVALID: a CN purchase licence */
         SALE("s5", "B", "anpp", "A1", "kg", ",\"permit\":\"PL-1\""),
         TRACE_APPEND_HISTORIC);
    assert_int_equal(alerts_of(f, "PERMIT_MISSING", "s1", NULL), 1);
    assert_int_equal(alerts_of(f, "PERMIT_INVALID", "s5", NULL), 1);
    fixture_done(f);
}

static int count_finding(const trace_finding *fd, void *ctx)
{
    char *out = ctx;
    snprintf(out, 256, "%s: %s", fd->code, fd->message);
    return 0;
}

/* The checks at entry mirror the rule: the kind the class accepts. */
static void test_us_check_at_entry(void **state)
{
    fixture *f = regime_fixture("US");
    const char *bad = "{\"type\":\"sale\",\"id\":\"x1\",\"party\":\"S\","
                      "\"at\":\"2026-01-06T00:00:00Z\",\"to\":\"B\","
                      "\"substance\":\"anpp\",\"lot\":\"A1\",\"qty\":\"1\","
                      "\"unit\":\"kg\",\"permit\":\"PL-1\"}";
    const char *good = "{\"type\":\"sale\",\"id\":\"x2\",\"party\":\"S\","
                       "\"at\":\"2026-01-06T00:00:00Z\",\"to\":\"B\","
                       "\"substance\":\"1-phenyl-2-propanone\",\"lot\":"
                       "\"P1\",\"qty\":\"1\",\"unit\":\"kg\",\"permit\":"
                       "\"OF-1\"}";
    char got[256] = "";
    (void)state;
    load(f,
         US_PARTIES PERMIT("OF-1", "order_form", "B", "1-phenyl-2-propanone",
                           "kg")
             PERMIT("PL-1", "purchase_license", "B", "anpp", "kg")
                 PRODUCE("m1", "1-phenyl-2-propanone", "P1", "kg")
                     PRODUCE("m2", "anpp", "A1", "kg"),
         TRACE_APPEND_HISTORIC);
    assert_int_equal(trace_check_json(f->l, bad, strlen(bad),
                                      TRACE_CHECK_SKEW_US, count_finding, got),
                     TRACE_OK);
    assert_non_null(strstr(got, "PERMIT_INVALID"));
    assert_non_null(strstr(got, "does not cover"));
    got[0] = '\0';
    assert_int_equal(trace_check_json(f->l, good, strlen(good),
                                      TRACE_CHECK_SKEW_US, count_finding, got),
                     TRACE_OK);
    assert_string_equal(got, "");
    fixture_done(f);
}

/* UNLICENSED_PARTY asks the class's DEA registration scope; List II
 * buyers need none. */
static void test_us_unlicensed(void **state)
{
    fixture *f = regime_fixture("US");
    (void)state;
    load(f,
         US_PARTIES PRODUCE("m3", "ephedrine", "E1", "kg")
             PRODUCE("m4", "acetone", "K1", "L")
                 PRODUCE("m5", "safrole", "F1", "kg")
         /* fires: N holds no registration, ephedrine is List I */
         SALE("u1", "N", "ephedrine", "E1", "kg", "")
         /* near misses: List II to N, List I to a List I registrant */
         SALE("u2", "N", "acetone", "K1", "L", "")
             SALE("u3", "L1", "safrole", "F1", "kg", ""),
         TRACE_APPEND_HISTORIC);
    assert_int_equal(alerts_of(f, "UNLICENSED_PARTY", "u1", NULL), 1);
    fixture_done(f);
}

/* LATE_REPORT: the class's deadline (Schedule II: drug_days, 15 in the
 * US table); none for Schedule III; a rules file overrides the regime. */
static void test_us_late_report(void **state)
{
    fixture *f = regime_fixture("US");
    (void)state;
    load(f,
         US_PARTIES PERMIT("OF-1", "order_form", "B", "1-phenyl-2-propanone",
                           "kg")
             PRODUCE("m1", "1-phenyl-2-propanone", "P1", "kg")
                 PRODUCE("m6", "ketamine", "K1", "unit"),
         TRACE_APPEND_HISTORIC);
    /* recorded now, months after January: late */
    load(f,
         SALE("l1", "B", "1-phenyl-2-propanone", "P1", "kg",
              ",\"permit\":\"OF-1\"")
         /* near miss: Schedule III has no deadline */
         SALE("l2", "B", "ketamine", "K1", "unit", ""),
         0);
    assert_int_equal(alerts_of(f, "LATE_REPORT", "l1", NULL), 1);
    assert_int_equal(alerts_of(f, "LATE_REPORT", NULL,
                               "{\"LATE_REPORT\":{\"drug_days\":0}}"),
                     0);
    fixture_done(f);
}

/* SPLIT_PURCHASE under EU: the class's threshold (category 1: cat1,
 * 10 kg); a substance with no EU category is no split, whatever its CN
 * category; a rules file overrides the regime's threshold. */
#define BUY(id, seller, sub, lot, qty)                                         \
    EV("sale", id, seller, "2026-02-0" id "T00:00:00Z",                        \
       "\"to\":\"B\",\"substance\":\"" sub "\",\"lot\":\"" lot                 \
       "\",\"qty\":\"" qty "\",\"unit\":\"kg\"")
#define MADE(seller, sub, lot)                                                 \
    EV("produce", "m-" lot, seller, "2026-01-02T00:00:00Z",                    \
       "\"substance\":\"" sub "\",\"lot\":\"" lot                              \
       "\",\"qty\":\"500\",\"unit\":\"kg\"")
#define EU_SCOPES "\"EU-PC-1\",\"EU-PC-2A\",\"EU-PC-2B\""

static void test_eu_split(void **state)
{
    fixture *f = regime_fixture("EU");
    (void)state;
    load(f,
         REG("S1", "manufacturer",
             EU_SCOPES) REG("S2", "manufacturer",
                            EU_SCOPES) REG("S3", "manufacturer", EU_SCOPES)
             REG("B", "distributor", EU_SCOPES) MADE("S1", "ephedrine", "E1")
                 MADE("S2", "ephedrine", "E2") MADE("S3", "ephedrine", "E3")
                     MADE("S1", "chloroform", "C1")
                         MADE("S2", "chloroform", "C2")
                             MADE("S3", "chloroform", "C3")
         /* fires: 3 x 4 kg of a category 1 substance >= 10 kg */
         BUY("1", "S1", "ephedrine", "E1", "4")
             BUY("2", "S2", "ephedrine", "E2", "4")
                 BUY("3", "S3", "ephedrine", "E3", "4")
         /* near miss: chloroform (CN category 2, no EU category),
          * 3 x 40 kg >= CN's 100 kg */
         BUY("4", "S1", "chloroform", "C1", "40")
             BUY("5", "S2", "chloroform", "C2", "40")
                 BUY("6", "S3", "chloroform", "C3", "40"),
         TRACE_APPEND_HISTORIC);
    assert_int_equal(alerts_of(f, "SPLIT_PURCHASE", "1", NULL), 1);
    assert_int_equal(alerts_of(f, "SPLIT_PURCHASE", NULL,
                               "{\"SPLIT_PURCHASE\":{\"cat1\":20}}"),
                     0);
    fixture_done(f);
}

/* ------------------------------------------------------------------ */
/* A ledger without a regime in its meta is CN                          */

static void test_no_meta_regime_is_cn(void **state)
{
    fixture *f = regime_fixture("US");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k1 = {6, "regime"}, k2 = {7, "regimes"};
    trace_ledger *l;
    char dir[64] = "/tmp/trace-test-XXXXXX", cmd[256];
    (void)state;

    /* US: a List I sale needs no permit */
    load(f,
         US_PARTIES PRODUCE("m3", "ephedrine", "E1", "kg")
             SALE("c1", "B", "ephedrine", "E1", "kg", ""),
         TRACE_APPEND_HISTORIC);
    assert_int_equal(alerts_of(f, "PERMIT_MISSING", NULL, NULL), 0);
    /* the same ledger as one made before regimes existed */
    raw_begin(f, "meta", &env, &txn, &dbi);
    assert_int_equal(mdb_del(txn, dbi, &k1, NULL), 0);
    assert_int_equal(mdb_del(txn, dbi, &k2, NULL), 0);
    raw_end(f, env, txn);
    assert_string_equal(trace_ledger_regime(f->l), "CN");
    /* CN: ephedrine is category 1, its sale needs a purchase licence,
     * and B lacks CN-PC-1 */
    assert_int_equal(alerts_of(f, "PERMIT_MISSING", "c1", NULL), 1);
    assert_int_equal(alerts_of(f, "UNLICENSED_PARTY", "c1", NULL), 1);
    fixture_done(f);

    /* and a real ledger of the first storage format */
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "cp -r '%s'/. '%s'/ && chmod 600 '%s'/pseudonym.key",
             TRACE_TEST_DATA "/ledger-v1", dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(trace_ledger_open(&l, dir), TRACE_OK);
    assert_string_equal(trace_ledger_regime(l), "CN");
    assert_non_null(strstr(trace_ledger_regime_json(l), "\"CN-PC-1\""));
    trace_ledger_close(l);
    rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_table),
        cmocka_unit_test(test_malformed_tables),
        cmocka_unit_test(test_init_refuses),
        cmocka_unit_test(test_us_permits),
        cmocka_unit_test(test_us_check_at_entry),
        cmocka_unit_test(test_us_unlicensed),
        cmocka_unit_test(test_us_late_report),
        cmocka_unit_test(test_eu_split),
        cmocka_unit_test(test_no_meta_regime_is_cn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
