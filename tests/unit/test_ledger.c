/* SPDX-License-Identifier: Apache-2.0 */
/* test_ledger.c - appending batches: registration, keys, permissions,
 * idempotency, atomicity, export (append.c, ledger.c, export.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

#define REG_P1                                                                 \
    "{\"type\":\"party\",\"id\":\"r1\",\"party\":\"REGULATOR\",\"at\":"        \
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P1\",\"name\":\"One\","       \
    "\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":"             \
    "[\"CN-PC-1\"]}"
#define REG_P2                                                                 \
    "{\"type\":\"party\",\"id\":\"r2\",\"party\":\"REGULATOR\",\"at\":"        \
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P2\",\"name\":\"Two\","       \
    "\"kind\":\"distributor\",\"region\":\"CN-32\",\"licenses\":"              \
    "[\"CN-PC-1\"]}"
#define PRODUCE(id, qty)                                                       \
    "{\"type\":\"produce\",\"id\":\"" id "\",\"party\":\"P1\",\"at\":"         \
    "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"       \
    "\"L1\",\"qty\":\"" qty "\",\"unit\":\"kg\"}"

static uint64_t head_size(fixture *f)
{
    uint64_t n;
    uint8_t h[32];
    assert_int_equal(trace_ledger_head(f->l, &n, h), TRACE_OK);
    return n;
}

/* Resident bytes of file pages of this process (statm's "shared"). */
static uint64_t file_resident(void)
{
    unsigned long size, resident, shared;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;
    assert_non_null(f);
    n = fscanf(f, "%lu %lu %lu", &size, &resident, &shared);
    fclose(f);
    assert_int_equal(n, 3);
    return (uint64_t)shared * 4096;
}

static int count_line(const char *line, size_t len, void *ctx)
{
    (void)line;
    (void)len;
    ++*(size_t *)ctx;
    return 0;
}

/* trace_ledger_trim: the ledger pages read through the map leave the
 * resident set past the limit, and the ledger reads the same after. */
static void test_trim(void **state)
{
    fixture *f = *state;
    trace_export_opts eo = TRACE_EXPORT_OPTS_INIT;
    trace_verify_result vr;
    trace_append_result r;
    char *big;
    size_t len = 0, cap = 4u << 20, n1 = 0, n2 = 0;
    uint64_t before, after;
    int released = -1;

    /* some 2,000 events: a few MB of ledger pages */
    assert_non_null(big = malloc(cap));
    len += (size_t)snprintf(big, cap, "%s\n", REG_P1);
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(
            big + len, cap - len,
            "{\"type\":\"produce\",\"id\":\"p%d\",\"party\":\"P1\","
            "\"at\":\"2026-01-08T08:00:00+08:00\",\"substance\":"
            "\"ephedrine\",\"lot\":\"L%d-with-a-long-lot-name-to-fill-"
            "pages\",\"qty\":\"5\",\"unit\":\"kg\"}\n",
            i, i);
    assert_int_equal(fixture_import(f, big, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    free(big);
    assert_int_equal(trace_ledger_export(f->l, &eo, count_line, &n1), TRACE_OK);
    /* under the limit: nothing released */
    assert_int_equal(trace_ledger_trim(f->l, UINT64_MAX, &released), TRACE_OK);
    assert_int_equal(released, 0);
    before = file_resident();
    assert_int_equal(trace_ledger_trim(f->l, 0, &released), TRACE_OK);
    assert_int_equal(released, 1);
    after = file_resident();
    assert_true(after < before);
    /* everything reads back the same */
    assert_int_equal(trace_ledger_export(f->l, &eo, count_line, &n2), TRACE_OK);
    assert_int_equal(n1, n2);
    assert_int_equal(n1, 2003); /* genesis, P1, its key, 2,000 */
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);

    /* appends that release the pages as they go (looked at every 256
     * events) store and read back the same */
    trace_ledger_set_map_limit(f->l, 1);
    assert_non_null(big = malloc(cap));
    len = 0;
    for (int i = 0; i < 9000; i++)
        len += (size_t)snprintf(
            big + len, cap - len,
            "{\"type\":\"produce\",\"id\":\"q%d\",\"party\":\"P1\","
            "\"at\":\"2026-01-09T08:00:00+08:00\",\"substance\":"
            "\"ephedrine\",\"lot\":\"M%d\",\"qty\":\"5\",\"unit\":"
            "\"kg\"}\n",
            i, i);
    assert_int_equal(fixture_import(f, big, 0, &r), TRACE_OK);
    free(big);
    assert_int_equal(r.appended, 9000);
    n2 = 0;
    assert_int_equal(trace_ledger_export(f->l, &eo, count_line, &n2), TRACE_OK);
    assert_int_equal(n2, 2003 + 9000);
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);
    trace_ledger_set_map_limit(f->l, 0);
}

/* A movement may name the GTIN of a product registered by an earlier
 * line of the same file; not by a later one. */
static int find_pg(const char *line, size_t len, void *ctx)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
    if (strstr(buf, "\"id\":\"pg\""))
        snprintf(ctx, 1024, "%s", buf);
    return 0;
}

static void test_product_in_same_file(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_export_opts eo = TRACE_EXPORT_OPTS_INIT;
    char buf[2048], pg[1024] = "";
    static const char product[] =
        "{\"type\":\"product\",\"id\":\"g1\",\"party\":\"REGULATOR\","
        "\"at\":\"2026-01-05T12:00:00+08:00\",\"gtin\":\"06901234000016\","
        "\"substance\":\"ephedrine\",\"content\":{\"qty\":\"10\","
        "\"unit\":\"mg\"},\"units_per_pack\":20,\"name\":\"Eph 10 mg\"}";
    static const char by_gtin[] =
        "{\"type\":\"produce\",\"id\":\"pg\",\"party\":\"P1\",\"at\":"
        "\"2026-01-08T08:00:00+08:00\",\"gtin\":\"06901234000016\","
        "\"packs\":\"50\",\"lot\":\"LG\"}";

    /* the movement before the product: refused, nothing stored */
    snprintf(buf, sizeof(buf), "%s\n%s\n%s", REG_P1, by_gtin, product);
    assert_int_equal(fixture_import(f, buf, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "no product"));
    assert_int_equal(head_size(f), 1);
    /* after it, in the same file: stored in the substance's units */
    snprintf(buf, sizeof(buf), "%s\n%s\n%s", REG_P1, product, by_gtin);
    assert_int_equal(fixture_import(f, buf, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    assert_int_equal(trace_ledger_export(f->l, &eo, find_pg, pg), TRACE_OK);
    assert_non_null(strstr(pg, "\"gtin\":\"06901234000016\""));
    assert_non_null(strstr(pg, "\"substance\":\"ephedrine\""));
    /* 50 packs of 20 x 10 mg */
    assert_non_null(strstr(pg, "\"qty\":\"10000\",\"unit\":\"mg\""));
    assert_non_null(strstr(pg, "\"packs\":50"));
}

static void test_genesis(void **state)
{
    fixture *f = *state;
    assert_int_equal(head_size(f), 1);
    assert_string_equal(trace_ledger_regulator(f->l), "REGULATOR");
}

static void test_provision_and_append(void **state)
{
    fixture *f = *state;
    trace_append_result r;

    /* P1 has no key: refused without provisioning, nothing stored */
    assert_int_equal(fixture_import(f, REG_P1 "\n" PRODUCE("p1", "5"), 0, &r),
                     TRACE_EPERM);
    assert_non_null(strstr(trace_error_last(), "line 2:"));
    assert_non_null(strstr(trace_error_last(), "no key for P1"));
    assert_int_equal(head_size(f), 1);

    assert_int_equal(fixture_import(f, REG_P1 "\n" PRODUCE("p1", "5"),
                                    TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    assert_int_equal(r.appended, 3); /* party, provisioned key, produce */
    assert_int_equal(r.provisioned, 1);
    assert_int_equal(head_size(f), 4);

    /* the same again is idempotent; a different body under the same id
     * is refused */
    assert_int_equal(fixture_import(f, PRODUCE("p1", "5.000"), 0, &r),
                     TRACE_OK);
    assert_int_equal(r.appended, 0);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(fixture_import(f, PRODUCE("p1", "6"), 0, &r),
                     TRACE_EEXIST);
    assert_non_null(strstr(trace_error_last(), "different content"));
    assert_int_equal(head_size(f), 4);
}

static void test_regulator_only(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    const char *permit_by_p1 =
        "{\"type\":\"permit\",\"id\":\"x1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-06T10:00:00+08:00\",\"permit\":\"PL-1\",\"kind\":"
        "\"purchase_license\",\"holder\":\"P1\",\"substance\":\"ephedrine\","
        "\"qty\":\"500\",\"unit\":\"kg\",\"valid_from\":\"2026-01-06\","
        "\"valid_until\":\"2026-12-31\",\"uses\":\"multi\"}";

    assert_int_equal(fixture_import(f, REG_P1, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    assert_int_equal(
        fixture_import(f, PRODUCE("p1", "1"), TRACE_APPEND_PROVISION_KEYS, &r),
        TRACE_OK);
    uint64_t before = head_size(f);
    assert_int_equal(fixture_import(f, permit_by_p1, 0, &r), TRACE_EPERM);
    assert_non_null(strstr(trace_error_last(), "only a regulator"));
    assert_int_equal(head_size(f), before);
}

static void test_unregistered_recorder(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    assert_int_equal(
        fixture_import(f, PRODUCE("p1", "1"), TRACE_APPEND_PROVISION_KEYS, &r),
        TRACE_EPERM);
    assert_non_null(strstr(trace_error_last(), "not a registered party"));
}

static void test_batch_is_atomic(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    /* line 3 is recorded by an unregistered party: the registrations of
     * lines 1 and 2 must not be stored either */
    const char *batch =
        REG_P1 "\n" REG_P2 "\n"
               "{\"type\":\"loss\",\"id\":\"l1\",\"party\":\"P9\","
               "\"at\":\"2026-01-10T09:30:00Z\",\"lot\":\"L1\","
               "\"substance\":\"ephedrine\",\"qty\":\"5\",\"unit\":"
               "\"kg\",\"reason\":\"theft\"}";
    assert_int_equal(fixture_import(f, batch, TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_EPERM);
    assert_int_equal(head_size(f), 1);
    assert_int_equal(r.appended, 0);
}

static void test_acting_as_other_party(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_batch *b;
    const char *line = PRODUCE("p1", "1");

    assert_int_equal(
        fixture_import(f, REG_P1 "\n" REG_P2, TRACE_APPEND_PROVISION_KEYS, &r),
        TRACE_OK);
    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, line, strlen(line), 1), TRACE_OK);
    assert_int_equal(trace_ledger_append(f->l, b, f->ring, "P2",
                                         TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_EPERM);
    assert_non_null(strstr(trace_error_last(), "acting as P2"));
    trace_batch_free(b);
}

static void test_foreign_key_refused(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    char path[400];
    const trace_key *k;

    assert_int_equal(fixture_import(f, REG_P1 "\n" PRODUCE("p1", "1"),
                                    TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    /* replace P1's key file with a key the ledger never registered */
    snprintf(path, sizeof(path), "%s/P1.key", f->keys);
    remove(path);
    snprintf(path, sizeof(path), "%s/P1.pub", f->keys);
    remove(path);
    trace_keyring_free(f->ring);
    assert_int_equal(trace_keyring_open(&f->ring, f->keys, 0), TRACE_OK);
    assert_int_equal(trace_keyring_generate(f->ring, "P1", &k), TRACE_OK);
    assert_int_equal(
        fixture_import(f, PRODUCE("p2", "1"), TRACE_APPEND_PROVISION_KEYS, &r),
        TRACE_EPERM);
    assert_non_null(strstr(trace_error_last(), "not registered to P1"));
}

static int collect(const char *line, size_t len, void *ctx)
{
    char **buf = ctx;
    size_t old = *buf ? strlen(*buf) : 0;
    *buf = realloc(*buf, old + len + 2);
    memcpy(*buf + old, line, len);
    (*buf)[old + len] = '\n';
    (*buf)[old + len + 1] = '\0';
    return 0;
}

/* Answers to permit applications (SPEC 12): refused unless they name a
 * recorded, unanswered application and, for a permit, grant what it
 * asks; nothing of a refused batch is stored; voiding an answer reopens
 * the application. */
#define APP_P1(id)                                                             \
    "{\"type\":\"permit_application\",\"id\":\"" id "\",\"party\":\"P1\","     \
    "\"at\":\"2026-01-06T09:00:00+08:00\",\"kind\":\"purchase_license\","      \
    "\"substance\":\"ephedrine\",\"qty\":\"50\",\"unit\":\"kg\","              \
    "\"purpose\":\"p\",\"valid_from\":\"2026-02-01\",\"valid_until\":"         \
    "\"2026-12-31\",\"uses\":\"multi\"}\n"
#define PERMIT_FOR(id, kind, holder, qty, app)                                 \
    "{\"type\":\"permit\",\"id\":\"" id "\",\"party\":\"REGULATOR\","          \
    "\"at\":\"2026-01-07T09:00:00+08:00\",\"permit\":\"" id                    \
    "\",\"kind\":\"" kind "\",\"holder\":\"" holder                            \
    "\",\"substance\":\"ephedrine\","                                          \
    "\"qty\":\"" qty "\",\"unit\":\"kg\",\"valid_from\":\"2026-02-01\","       \
    "\"valid_until\":\"2026-12-31\",\"uses\":\"multi\",\"application\":"       \
    "{\"party\":\"P1\",\"id\":\"" app "\"}}\n"
#define REJECT_P1(id, app)                                                     \
    "{\"type\":\"application_decision\",\"id\":\"" id "\",\"party\":"          \
    "\"REGULATOR\",\"at\":\"2026-01-07T09:00:00+08:00\",\"application\":"      \
    "{\"party\":\"P1\",\"id\":\"" app "\"},\"decision\":\"rejected\","         \
    "\"reason\":\"r\"}\n"

struct app_state {
    char text[256];
};

static int keep_state(const trace_application_row *a, void *ctx)
{
    struct app_state *s = ctx;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "%s:%s:%s ", a->id, a->state,
             a->permit   ? a->permit
             : a->reason ? a->reason
                         : "-");
    return 0;
}

static const char *states(fixture *f, struct app_state *s)
{
    s->text[0] = '\0';
    assert_int_equal(
        trace_applications(f->l, NULL, TRACE_AT_NOW, keep_state, s), TRACE_OK);
    return s->text;
}

static void test_application_answers(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    struct app_state s;
    uint64_t n;
    static const char *const refused[][2] = {
        {PERMIT_FOR("PX", "purchase_filing", "P1", "50", "ap1"),
         "permit PX is a purchase_filing, but application P1/ap1 asks for a "
         "purchase_license"},
        {PERMIT_FOR("PX", "purchase_license", "P2", "50", "ap1"),
         "permit PX is held by P2, but application P1/ap1 was made by P1"},
        {PERMIT_FOR("PX", "purchase_license", "P1", "50.001", "ap1"),
         "permit PX grants 50.001 kg, more than the 50 kg application P1/ap1 "
         "asks for"},
        {PERMIT_FOR("PX", "purchase_license", "P1", "50", "ap9"),
         "PX cites application P1/ap9, which P1 never recorded"},
        {REJECT_P1("dX", "r1"),
         "dX cites application P1/r1, which P1 never recorded"},
        /* the application and two answers in one batch */
        {APP_P1("ap2") PERMIT_FOR("PX", "purchase_license", "P1", "5", "ap2")
             REJECT_P1("dX", "ap2"),
         "application P1/ap2 was already decided: approved by REGULATOR's "
         "permit PX"},
    };

    assert_int_equal(fixture_import(f, REG_P1 "\n" REG_P2 "\n" APP_P1("ap1"),
                                    TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    n = head_size(f);
    for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
        assert_int_equal(fixture_import(f, refused[i][0], 0, &r), TRACE_EINVAL);
        if (!strstr(trace_error_last(), refused[i][1]))
            fail_msg("case %zu: %s", i, trace_error_last());
        assert_int_equal(head_size(f), n); /* nothing stored */
    }
    assert_string_equal(states(f, &s), "ap1:pending:- ");
    /* a lower budget approves it; then no second answer */
    assert_int_equal(
        fixture_import(
            f, PERMIT_FOR("PL1", "purchase_license", "P1", "40", "ap1"), 0, &r),
        TRACE_OK);
    assert_string_equal(states(f, &s), "ap1:approved:PL1 ");
    assert_int_equal(fixture_import(f, REJECT_P1("d1", "ap1"), 0, &r),
                     TRACE_EINVAL);
    /* a rejection, voided by its recorder: pending again, then approved */
    assert_int_equal(
        fixture_import(f, APP_P1("ap3") REJECT_P1("d3", "ap3"), 0, &r),
        TRACE_OK);
    assert_string_equal(states(f, &s), "ap1:approved:PL1 ap3:rejected:r ");
    assert_int_equal(
        fixture_import(
            f,
            "{\"type\":\"correction\",\"id\":\"c3\",\"party\":\"REGULATOR\","
            "\"at\":\"2026-01-08T09:00:00+08:00\",\"corrects\":\"d3\","
            "\"reason\":\"wrong application\"}",
            0, &r),
        TRACE_OK);
    assert_string_equal(states(f, &s), "ap1:approved:PL1 ap3:pending:- ");
    assert_int_equal(
        fixture_import(
            f, PERMIT_FOR("PL3", "purchase_license", "P1", "50", "ap3"), 0, &r),
        TRACE_OK);
    assert_string_equal(states(f, &s), "ap1:approved:PL1 ap3:approved:PL3 ");
    /* the applicant withdraws an application: no answer to it */
    assert_int_equal(
        fixture_import(
            f,
            APP_P1("ap4") "{\"type\":\"correction\",\"id\":\"c4\","
                          "\"party\":\"P1\",\"at\":"
                          "\"2026-01-08T09:00:00+08:00\",\"corrects\":"
                          "\"ap4\",\"reason\":\"withdrawn\"}",
            0, &r),
        TRACE_OK);
    assert_int_equal(fixture_import(f, REJECT_P1("d4", "ap4"), 0, &r),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "which P1 withdrew"));
    assert_string_equal(states(f, &s), "ap1:approved:PL1 ap3:approved:PL3 ");
    /* the apps index is what the journal gives */
    trace_verify_deep_result dres;
    if (trace_ledger_verify_deep(f->l, NULL, &dres, NULL, NULL, NULL) !=
        TRACE_OK)
        fail_msg("verify --deep: %s", dres.reason);
}

static void test_export(void **state)
{
    fixture *f = *state;
    trace_export_opts o = TRACE_EXPORT_OPTS_INIT;
    trace_append_result r;
    char *out = NULL;

    assert_int_equal(fixture_import(f, REG_P1 "\n" PRODUCE("p1", "12.5"),
                                    TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    o.party = "P1";
    assert_int_equal(trace_ledger_export(f->l, &o, collect, &out), TRACE_OK);
    int same = strcmp(out, PRODUCE("p1", "12.5") "\n") == 0;
    free(out);
    assert_true(same);
    out = NULL;
    /* time window: the produce is at 2026-01-08T00:00Z */
    o.has_from = 1;
    o.from_us = 1767830400000000LL + 1;
    assert_int_equal(trace_ledger_export(f->l, &o, collect, &out), TRACE_OK);
    assert_null(out);
}

static trace_batch *batch_of(fixture *f, const char *const *lines, size_t n)
{
    trace_batch *b;
    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            trace_batch_add_json(b, lines[i], strlen(lines[i]), i + 1),
            TRACE_OK);
    return b;
}

/* A client signs its batch; the ledger checks and stores it. */
static void test_signed_elsewhere(void **state)
{
    fixture *f = *state;
    static const char *const lines[] = {PRODUCE("s1", "1"), PRODUCE("s2", "2"),
                                        PRODUCE("s3", "3")};
    static const char *const mixed[] = {PRODUCE("s3", "3"), PRODUCE("s4", "4")};
    trace_append_result r;
    const trace_key *key;
    trace_key *stranger;
    uint8_t digest[32], sig[TRACE_SIG_LEN];
    trace_batch *b;

    assert_int_equal(fixture_import(f,
                                    REG_P1 "\n" REG_P2 "\n" PRODUCE("p0", "1"),
                                    TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    uint64_t before = head_size(f);
    assert_int_equal(trace_keyring_get(f->ring, "P1", &key), TRACE_OK);
    b = batch_of(f, lines, 3);
    assert_int_equal(trace_batch_digest(b, "P1", trace_key_id(key), digest),
                     TRACE_OK);
    assert_int_equal(trace_key_sign(key, digest, sizeof(digest), sig),
                     TRACE_OK);

    /* a wrong signature, or a key P1 does not have: refused */
    sig[5] ^= 1;
    assert_int_equal(trace_ledger_append_signed(f->l, b, "P1",
                                                trace_key_id(key), sig, 0, &r),
                     TRACE_EPERM);
    sig[5] ^= 1;
    assert_int_equal(trace_key_generate(&stranger), TRACE_OK);
    assert_int_equal(trace_ledger_append_signed(
                         f->l, b, "P1", trace_key_id(stranger), sig, 0, &r),
                     TRACE_EPERM);
    trace_key_free(stranger);
    /* signed as another party */
    assert_int_equal(trace_ledger_append_signed(f->l, b, "P2",
                                                trace_key_id(key), sig, 0, &r),
                     TRACE_EPERM);
    assert_true(head_size(f) == before);

    assert_int_equal(trace_ledger_append_signed(f->l, b, "P1",
                                                trace_key_id(key), sig, 0, &r),
                     TRACE_OK);
    assert_int_equal(r.appended, 3);
    /* a retry of the same request is harmless */
    assert_int_equal(trace_ledger_append_signed(f->l, b, "P1",
                                                trace_key_id(key), sig, 0, &r),
                     TRACE_OK);
    assert_int_equal(r.appended, 0);
    assert_int_equal(r.duplicates, 3);
    trace_batch_free(b);

    /* partly recorded already: refused, since the signature covers all */
    b = batch_of(f, mixed, 2);
    assert_int_equal(trace_batch_digest(b, "P1", trace_key_id(key), digest),
                     TRACE_OK);
    assert_int_equal(trace_key_sign(key, digest, sizeof(digest), sig),
                     TRACE_OK);
    assert_int_equal(trace_ledger_append_signed(f->l, b, "P1",
                                                trace_key_id(key), sig, 0, &r),
                     TRACE_EEXIST);
    trace_batch_free(b);

    /* it all verifies */
    trace_verify_result vr;
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);
    assert_true(vr.entries == before + 3);
}

#define P2_PRODUCE                                                             \
    "{\"type\":\"produce\",\"id\":\"q0\",\"party\":\"P2\",\"at\":"             \
    "\"2026-01-08T00:00:00Z\",\"substance\":\"ephedrine\",\"lot\":\"Q\","      \
    "\"qty\":\"1\",\"unit\":\"kg\"}"

/* Signs events [first, first + n) of b as one group of `party`. */
static void sign_group(trace_batch *b, size_t first, size_t n,
                       const char *party, const trace_key *key,
                       trace_signed_group *g)
{
    const uint8_t *ev[8];
    size_t lens[8];
    uint8_t digest[32];

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            trace_batch_event(b, first + i, NULL, NULL, &ev[i], &lens[i], NULL),
            TRACE_OK);
    memset(g, 0, sizeof(*g));
    snprintf(g->party, sizeof(g->party), "%s", party);
    memcpy(g->key_id, trace_key_id(key), TRACE_KEY_ID_LEN);
    g->count = n;
    assert_int_equal(trace_group_digest(party, g->key_id, ev, lens, n, digest),
                     TRACE_OK);
    assert_int_equal(trace_key_sign(key, digest, sizeof(digest), g->sig),
                     TRACE_OK);
}

/* Several requests in one commit: a bad one in the middle leaves no
 * trace, the others are stored, and the result verifies. */
static void test_group_commit(void **state)
{
    fixture *f = *state;
    static const char *const one[] = {PRODUCE("g1", "1"), PRODUCE("g2", "2")};
    static const char *const two[] = {PRODUCE("g3", "3")};
    static const char *const mixed[] = {PRODUCE("g4", "4"),
                                        "{\"type\":\"produce\",\"id\":\"q1\","
                                        "\"party\":\"P2\",\"at\":\"2026-01-08T"
                                        "00:00:00Z\",\"substance\":\"ephedrine"
                                        "\",\"lot\":\"Q\",\"qty\":\"1\","
                                        "\"unit\":\"kg\"}"};
    trace_append_result r, total;
    const trace_key *k1, *k2;
    trace_signed_group g[2], bad;
    trace_batch *b1, *b2, *b3, *b4;
    trace_commit *c;

    assert_int_equal(
        fixture_import(
            f, REG_P1 "\n" REG_P2 "\n" PRODUCE("p0", "1") "\n" P2_PRODUCE,
            TRACE_APPEND_PROVISION_KEYS, &r),
        TRACE_OK);
    uint64_t before = head_size(f);
    assert_int_equal(trace_keyring_get(f->ring, "P1", &k1), TRACE_OK);
    assert_int_equal(trace_keyring_get(f->ring, "P2", &k2), TRACE_OK);
    b1 = batch_of(f, one, 2);
    b2 = batch_of(f, two, 1);
    b3 = batch_of(f, two, 1);
    b4 = batch_of(f, mixed, 2);

    assert_int_equal(trace_commit_begin(&c, f->l), TRACE_OK);
    sign_group(b1, 0, 2, "P1", k1, &g[0]);
    assert_int_equal(trace_commit_add(c, b1, g, 1, 0, &r), TRACE_OK);
    assert_int_equal(r.appended, 2);
    /* signed by P2's key for P1's events: refused, nothing of it kept */
    sign_group(b2, 0, 1, "P1", k2, &bad);
    assert_int_equal(trace_commit_add(c, b2, &bad, 1, 0, &r), TRACE_EPERM);
    assert_int_equal(r.appended, 0);
    /* a group naming the wrong party for its events */
    sign_group(b4, 0, 2, "P1", k1, &bad);
    assert_int_equal(trace_commit_add(c, b4, &bad, 1, 0, &r), TRACE_EPERM);
    /* two parties' groups in one request */
    sign_group(b4, 0, 1, "P1", k1, &g[0]);
    sign_group(b4, 1, 1, "P2", k2, &g[1]);
    assert_int_equal(trace_commit_add(c, b4, g, 2, 0, &r), TRACE_OK);
    assert_int_equal(r.appended, 2);
    /* the same id again with other content (b3 is g3 again: fine) */
    sign_group(b3, 0, 1, "P1", k1, &g[0]);
    assert_int_equal(trace_commit_add(c, b3, g, 1, 0, &r), TRACE_OK);
    assert_int_equal(r.appended, 1);
    /* nothing is visible before the end */
    assert_true(head_size(f) == before);
    assert_int_equal(trace_commit_end(c, &total), TRACE_OK);
    trace_commit_free(c);
    assert_int_equal(total.appended, 5);
    assert_true(head_size(f) == before + 5);

    /* a retried request in a new commit: accepted, nothing new */
    assert_int_equal(trace_commit_begin(&c, f->l), TRACE_OK);
    sign_group(b1, 0, 2, "P1", k1, &g[0]);
    assert_int_equal(trace_commit_add(c, b1, g, 1, 0, &r), TRACE_OK);
    assert_int_equal(r.duplicates, 2);
    assert_int_equal(trace_commit_end(c, &total), TRACE_OK);
    trace_commit_free(c);

    /* a commit given up stores nothing */
    trace_batch *b5 = batch_of(f, (const char *const[]){PRODUCE("g9", "9")}, 1);
    assert_int_equal(trace_commit_begin(&c, f->l), TRACE_OK);
    sign_group(b5, 0, 1, "P1", k1, &g[0]);
    assert_int_equal(trace_commit_add(c, b5, g, 1, 0, &r), TRACE_OK);
    trace_commit_free(c);
    assert_true(head_size(f) == before + 5);

    /* encoded bytes round-trip; anything else is refused */
    const uint8_t *bytes;
    size_t len;
    trace_batch *b6;
    assert_int_equal(trace_batch_event(b5, 0, NULL, NULL, &bytes, &len, NULL),
                     TRACE_OK);
    assert_int_equal(trace_batch_new(&b6, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_encoded(b6, bytes, len, 1), TRACE_OK);
    assert_int_equal(trace_batch_add_encoded(b6, bytes, len - 1, 2),
                     TRACE_EINVAL);
    assert_int_equal(
        trace_batch_add_encoded(b6, (const uint8_t *)"\x0a\x01", 2, 3),
        TRACE_EINVAL);
    assert_int_equal(trace_batch_count(b6), 1);
    trace_batch_free(b6);

    trace_verify_result vr;
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);
    assert_true(vr.entries == before + 5);
    trace_batch_free(b1);
    trace_batch_free(b2);
    trace_batch_free(b3);
    trace_batch_free(b4);
    trace_batch_free(b5);
}

/* Key rotation: a new key registered, the old one revoked; events signed
 * with the old key are refused from then on, the old entries still
 * verify, and a revoked key cannot come back. */
static void test_key_rotation(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    const trace_key *old;
    trace_key *fresh;
    trace_keyring *ring2;
    char line[1024], pub_new[64], pub_old[64], dir2[300];
    uint8_t digest[32], sig[TRACE_SIG_LEN];
    trace_batch *b;

    assert_int_equal(fixture_import(f, REG_P1 "\n" PRODUCE("k1", "1"),
                                    TRACE_APPEND_PROVISION_KEYS, &r),
                     TRACE_OK);
    assert_int_equal(trace_keyring_get(f->ring, "P1", &old), TRACE_OK);
    assert_int_equal(trace_key_generate(&fresh), TRACE_OK);
    trace_pubkey_format(pub_new, sizeof(pub_new), trace_key_public(fresh));
    trace_pubkey_format(pub_old, sizeof(pub_old), trace_key_public(old));
    snprintf(line, sizeof(line),
             "{\"type\":\"party\",\"id\":\"rot\",\"party\":\"REGULATOR\","
             "\"at\":\"2026-01-09T09:00:00+08:00\",\"subject\":\"P1\","
             "\"name\":\"One\",\"kind\":\"manufacturer\",\"region\":\"CN-31\","
             "\"licenses\":[\"CN-PC-1\"],\"pubkey\":\"%s\",\"revoke\":\"%s\"}",
             pub_new, pub_old);
    assert_int_equal(fixture_import(f, line, 0, &r), TRACE_OK);

    /* the old key (still in the folder) is refused, with the reason */
    assert_int_equal(fixture_import(f, PRODUCE("k2", "1"), 0, &r), TRACE_EPERM);
    assert_non_null(strstr(trace_error_last(), "revoked"));
    /* also for a batch signed elsewhere */
    b = batch_of(f, (const char *const[]){PRODUCE("k3", "1")}, 1);
    assert_int_equal(trace_batch_digest(b, "P1", trace_key_id(old), digest),
                     TRACE_OK);
    assert_int_equal(trace_key_sign(old, digest, sizeof(digest), sig),
                     TRACE_OK);
    assert_int_equal(trace_ledger_append_signed(f->l, b, "P1",
                                                trace_key_id(old), sig, 0, &r),
                     TRACE_EPERM);
    /* the new key works */
    assert_int_equal(trace_batch_digest(b, "P1", trace_key_id(fresh), digest),
                     TRACE_OK);
    assert_int_equal(trace_key_sign(fresh, digest, sizeof(digest), sig),
                     TRACE_OK);
    assert_int_equal(trace_ledger_append_signed(
                         f->l, b, "P1", trace_key_id(fresh), sig, 0, &r),
                     TRACE_OK);
    trace_batch_free(b);
    /* a key folder holding the new key signs imports again */
    snprintf(dir2, sizeof(dir2), "%s/keys2", f->dir);
    assert_int_equal(trace_keyring_open(&ring2, dir2, 1), TRACE_OK);
    {
        char path[400];
        snprintf(path, sizeof(path), "%s/P1.key", dir2);
        assert_int_equal(trace_key_save(fresh, path), TRACE_OK);
    }
    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, PRODUCE("k4", "1"),
                                          strlen(PRODUCE("k4", "1")), 1),
                     TRACE_OK);
    assert_int_equal(trace_ledger_append(f->l, b, ring2, NULL, 0, &r),
                     TRACE_OK);
    trace_batch_free(b);
    trace_keyring_free(ring2);

    /* the revoked key cannot be registered again */
    snprintf(line, sizeof(line),
             "{\"type\":\"party\",\"id\":\"back\",\"party\":\"REGULATOR\","
             "\"at\":\"2026-01-10T09:00:00+08:00\",\"subject\":\"P1\","
             "\"name\":\"One\",\"kind\":\"manufacturer\",\"region\":\"CN-31\","
             "\"licenses\":[\"CN-PC-1\"],\"pubkey\":\"%s\"}",
             pub_old);
    assert_int_equal(fixture_import(f, line, 0, &r), TRACE_EINVAL);
    /* nor a key P1 never had be revoked */
    snprintf(line, sizeof(line),
             "{\"type\":\"party\",\"id\":\"bad\",\"party\":\"REGULATOR\","
             "\"at\":\"2026-01-10T09:00:00+08:00\",\"subject\":\"P1\","
             "\"name\":\"One\",\"kind\":\"manufacturer\",\"region\":\"CN-31\","
             "\"licenses\":[\"CN-PC-1\"],\"revoke\":\"%s\"}",
             pub_old);
    assert_int_equal(fixture_import(f, line, 0, &r), TRACE_EINVAL);

    /* everything recorded verifies: k1 under the old key, k3 and k4 under
     * the new one */
    trace_verify_result vr;
    assert_int_equal(trace_ledger_verify(f->l, &vr, NULL, NULL), TRACE_OK);
    trace_key_free(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trim, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_product_in_same_file,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_genesis, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_provision_and_append,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_regulator_only, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_recorder,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_batch_is_atomic, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_acting_as_other_party,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_key_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_application_answers, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_export, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_signed_elsewhere, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
