/* SPDX-License-Identifier: Apache-2.0 */
/* test_event_json.c - JSON Lines parsing and rendering (event_json.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "internal.h"

#define SALE_HEAD                                                              \
    "{\"type\":\"sale\",\"id\":\"s1\",\"party\":\"P1\",\"at\":"                \
    "\"2026-01-10T09:30:00+08:00\",\"to\":\"P2\",\"lot\":\"L1\","

/* Each line must be rejected; `why` is a fragment of the message. */
static const struct {
    const char *line, *why;
} bad[] = {
    {"{\"type\":\"sale\"", "malformed JSON"},
    {"[1,2]", "one JSON object"},
    {"{\"type\":\"teleport\",\"id\":\"x\",\"party\":\"P1\",\"at\":"
     "\"2026-01-10T09:30:00Z\"}",
     "unknown event type"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"5\",\"unit\":\"kg\","
               "\"colour\":\"red\"}",
     "unknown field"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"5\",\"unit\":\"lb\"}",
     "unknown unit"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"5\",\"unit\":\"L\"}",
     "volume unit"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"-5\",\"unit\":\"kg\"}",
     "negative"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":-5,\"unit\":\"kg\"}",
     "negative"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":0,\"unit\":\"kg\"}",
     "greater than zero"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":1e3,\"unit\":\"kg\"}",
     "exponent"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"abc\",\"unit\":\"kg\"}",
     "malformed quantity"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"0.0000000001\","
               "\"unit\":\"kg\"}",
     "more precise"},
    {SALE_HEAD "\"substance\":\"unobtainium\",\"qty\":\"5\",\"unit\":\"kg\"}",
     "unknown substance"},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"5\"}",
     "needs a \"unit\""},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"unit\":\"kg\"}",
     "missing field \"qty\""},
    {SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"5\",\"unit\":\"kg\","
               "\"qty\":\"6\"}",
     "duplicate"},
    {"{\"type\":\"sale\",\"id\":\"s1\",\"party\":\"P1\",\"at\":\"last "
     "tuesday\",\"to\":\"P2\",\"lot\":\"L1\",\"substance\":\"ephedrine\","
     "\"qty\":\"5\",\"unit\":\"kg\"}",
     "malformed time"},
    {"{\"type\":\"sale\",\"id\":\"s1\",\"party\":\"P1\",\"at\":"
     "\"2026-01-10\",\"to\":\"P2\",\"lot\":\"L1\",\"substance\":\"ephedrine\","
     "\"qty\":\"5\",\"unit\":\"kg\"}",
     "is a date"},
    {"{\"type\":\"sale\",\"id\":7,\"party\":\"P1\",\"at\":"
     "\"2026-01-10T09:30:00Z\",\"to\":\"P2\",\"lot\":\"L1\",\"substance\":"
     "\"ephedrine\",\"qty\":\"5\",\"unit\":\"kg\"}",
     "must be a string"},
    {"{\"type\":\"sale\",\"id\":\"s1\",\"party\":\"bad party!\",\"at\":"
     "\"2026-01-10T09:30:00Z\",\"to\":\"P2\",\"lot\":\"L1\",\"substance\":"
     "\"ephedrine\",\"qty\":\"5\",\"unit\":\"kg\"}",
     "not a valid party id"},
    {"{\"type\":\"loss\",\"id\":\"l1\",\"party\":\"P1\",\"at\":"
     "\"2026-01-10T09:30:00Z\",\"lot\":\"L1\",\"substance\":\"ephedrine\","
     "\"qty\":\"5\",\"unit\":\"kg\",\"reason\":\"aliens\"}",
     "is not one of"},
    {"{\"type\":\"dispense\",\"id\":\"d1\",\"party\":\"P1\",\"at\":"
     "\"2026-01-10T09:30:00Z\",\"lot\":\"L1\",\"substance\":\"morphine\","
     "\"qty\":\"5\",\"unit\":\"unit\",\"rx\":{\"id\":\"RX1\",\"prescriber\":"
     "\"D1\",\"patient\":\"X\",\"written\":\"2026-01-10\",\"form\":\"oral\"}}",
     "missing field \"rx.days_supply\""},
    {"{\"type\":\"correction\",\"id\":\"c1\",\"party\":\"P1\",\"at\":"
     "\"2026-01-10T09:30:00Z\",\"corrects\":\"x\",\"reason\":\"r\","
     "\"replacement\":{\"type\":\"correction\",\"id\":\"c2\",\"party\":\"P1\","
     "\"at\":\"2026-01-10T09:30:00Z\",\"corrects\":\"y\",\"reason\":\"r\"}}",
     "cannot itself be a correction"},
};

static void test_bad_lines(void **state)
{
    fixture *f = *state;
    trace_batch *b;

    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc =
            trace_batch_add_json(b, bad[i].line, strlen(bad[i].line), i + 1);
        if (rc != TRACE_EINVAL || !strstr(trace_error_last(), bad[i].why))
            fail_msg("case %zu: rc %d, message \"%s\", wanted \"%s\"", i, rc,
                     trace_error_last(), bad[i].why);
        /* the message names the line */
        char want[32];
        snprintf(want, sizeof(want), "line %zu:", i + 1);
        if (!strstr(trace_error_last(), want))
            fail_msg("case %zu: no line number in \"%s\"", i,
                     trace_error_last());
    }
    assert_int_equal(trace_batch_count(b), 0);
    trace_batch_free(b);
}

static void test_tolerated_forms(void **state)
{
    fixture *f = *state;
    trace_batch *b;
    const char *bom = "\xEF\xBB\xBF" SALE_HEAD
                      "\"substance\":\"299-42-3\",\"qty\":12.5,\"unit\":"
                      "\"kg\"}\r\n";

    assert_int_equal(trace_batch_new(&b, f->l), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, "   \r\n", 5, 1), TRACE_OK);
    assert_int_equal(trace_batch_add_json(b, bom, strlen(bom), 2), TRACE_OK);
    assert_int_equal(trace_batch_count(b), 1);
    trace_batch_free(b);
}

/* A string and a number for the same quantity parse to the same bytes. */
static void test_same_content_after_parsing(void **state)
{
    fixture *f = *state;
    arena *a = arena_new(0);
    Trace__V1__Event *e1, *e2;
    const char *l1 = SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":\"500\","
                               "\"unit\":\"kg\"}";
    const char *l2 = SALE_HEAD "\"substance\":\"ephedrine\",\"qty\":500,"
                               "\"unit\":\"kg\"}";
    uint8_t b1[512], b2[512];
    size_t n1, n2;

    assert_int_equal(event_from_json(&e1, a, l1, strlen(l1), f->l), TRACE_OK);
    assert_int_equal(event_from_json(&e2, a, l2, strlen(l2), f->l), TRACE_OK);
    n1 = trace__v1__event__pack(e1, b1);
    n2 = trace__v1__event__pack(e2, b2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    assert_true(e1->sale_body->qty->amount == 500000000000LL);
    arena_free(a);
}

static void test_patient_pseudonymised(void **state)
{
    fixture *f = *state;
    arena *a = arena_new(0);
    Trace__V1__Event *e;
    char *json;
    size_t len;
    const char *l =
        "{\"type\":\"dispense\",\"id\":\"d1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"lot\":\"L1\",\"substance\":"
        "\"morphine\",\"qty\":\"5\",\"unit\":\"unit\",\"rx\":{\"id\":\"RX1\","
        "\"prescriber\":\"D1\",\"patient\":\"310101195001011234\",\"written\":"
        "\"2026-01-10\",\"days_supply\":3,\"form\":\"oral\"}}";

    assert_int_equal(event_from_json(&e, a, l, strlen(l), f->l), TRACE_OK);
    assert_int_equal(strncmp(e->dispense_body->rx->patient, "hmac:", 5), 0);
    assert_int_equal(strlen(e->dispense_body->rx->patient), 69);
    assert_int_equal(event_to_json(&json, &len, e, f->l), TRACE_OK);
    assert_null(strstr(json, "310101195001011234"));
    assert_non_null(strstr(json, "\"patient\":\"hmac:"));
    assert_non_null(strstr(json, "\"days_supply\":3"));
    assert_non_null(strstr(json, "\"written\":\"2026-01-10\""));
    free(json);
    arena_free(a);
}

static void test_render_round_trip(void **state)
{
    fixture *f = *state;
    arena *a = arena_new(0);
    Trace__V1__Event *e;
    char *json;
    size_t len;
    const char *l =
        "{\"type\":\"produce\",\"id\":\"p1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-20T18:00:00+08:00\",\"substance\":\"morphine\",\"lot\":"
        "\"MOR-1\",\"qty\":\"10000\",\"unit\":\"unit\",\"site\":\"plant\","
        "\"inputs\":[{\"lot\":\"AA-1\",\"substance\":\"acetic-anhydride\","
        "\"qty\":\"20.5\",\"unit\":\"kg\"}]}";

    assert_int_equal(event_from_json(&e, a, l, strlen(l), f->l), TRACE_OK);
    assert_int_equal(event_to_json(&json, &len, e, f->l), TRACE_OK);
    assert_string_equal(json, l);
    free(json);
    arena_free(a);
}

/* Handler and checker (经手人, 复核人) and the spec (规格) are optional
 * fields of dispense, receipt, sale and destroy (spec: dispense, receipt,
 * produce): they round-trip by their proto names, an event without them
 * has none, and an empty one is refused like any empty text. */
#define HMAC64                                                                 \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
static void test_staff_fields(void **state)
{
    fixture *f = *state;
    arena *a = arena_new(0);
    Trace__V1__Event *e;
    char *json;
    size_t len;
    static const char *const lines[] = {
        "{\"type\":\"dispense\",\"id\":\"d1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"substance\":\"morphine\",\"lot\":"
        "\"L1\",\"qty\":\"5\",\"unit\":\"unit\",\"rx\":{\"id\":\"RX1\","
        "\"prescriber\":\"D1\",\"patient\":\"hmac:" HMAC64 "\",\"written\":"
        "\"2026-01-10\",\"days_supply\":3,\"form\":\"oral\"},\"handler\":"
        "\"张药师\",\"checker\":\"S-0042\",\"spec\":\"10mg×10片\"}",
        "{\"type\":\"receipt\",\"id\":\"c1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"from\":\"P2\",\"ref\":\"s1\","
        "\"substance\":\"morphine\",\"lot\":\"L1\",\"qty\":\"5\",\"unit\":"
        "\"unit\",\"handler\":\"H\",\"checker\":\"C\",\"spec\":\"10mg\"}",
        "{\"type\":\"sale\",\"id\":\"s1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"to\":\"P2\",\"substance\":"
        "\"morphine\",\"lot\":\"L1\",\"qty\":\"5\",\"unit\":\"unit\","
        "\"handler\":\"H\",\"checker\":\"C\"}",
        "{\"type\":\"destroy\",\"id\":\"x1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"substance\":\"morphine\",\"lot\":"
        "\"L1\",\"qty\":\"5\",\"unit\":\"unit\",\"method\":\"incineration\","
        "\"handler\":\"H\",\"checker\":\"C\"}",
        "{\"type\":\"produce\",\"id\":\"p1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"substance\":\"morphine\",\"lot\":"
        "\"L1\",\"qty\":\"5\",\"unit\":\"unit\",\"spec\":\"10mg\"}",
    };
    const char *plain =
        "{\"type\":\"dispense\",\"id\":\"d2\",\"party\":\"P1\",\"at\":"
        "\"2026-01-10T09:30:00+08:00\",\"substance\":\"morphine\",\"lot\":"
        "\"L1\",\"qty\":\"5\",\"unit\":\"unit\",\"rx\":{\"id\":\"RX2\","
        "\"prescriber\":\"D1\",\"patient\":\"hmac:" HMAC64 "\",\"written\":"
        "\"2026-01-10\",\"days_supply\":3,\"form\":\"oral\"}";
    char line[1024];

    for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
        if (event_from_json(&e, a, lines[i], strlen(lines[i]), f->l) !=
            TRACE_OK)
            fail_msg("%s refused: %s", lines[i], trace_error_last());
        assert_int_equal(event_to_json(&json, &len, e, f->l), TRACE_OK);
        assert_string_equal(json, lines[i]);
        free(json);
    }
    assert_int_equal(event_from_json(&e, a, lines[0], strlen(lines[0]), f->l),
                     TRACE_OK);
    assert_string_equal(e->dispense_body->handler, "张药师");
    assert_string_equal(e->dispense_body->checker, "S-0042");
    assert_string_equal(e->dispense_body->spec, "10mg×10片");
    /* without them: none, and the JSON has no such keys */
    snprintf(line, sizeof(line), "%s}", plain);
    assert_int_equal(event_from_json(&e, a, line, strlen(line), f->l),
                     TRACE_OK);
    assert_null(e->dispense_body->handler);
    assert_null(e->dispense_body->checker);
    assert_int_equal(event_to_json(&json, &len, e, f->l), TRACE_OK);
    assert_null(strstr(json, "handler"));
    free(json);
    snprintf(line, sizeof(line), "%s,\"handler\":\"\"}", plain);
    assert_int_equal(event_from_json(&e, a, line, strlen(line), f->l),
                     TRACE_EINVAL);
    assert_non_null(strstr(trace_error_last(), "\"handler\" is empty"));
    /* not a field of a loss */
    snprintf(line, sizeof(line),
             "{\"type\":\"loss\",\"id\":\"l1\",\"party\":\"P1\",\"at\":"
             "\"2026-01-10T09:30:00+08:00\",\"substance\":\"morphine\","
             "\"lot\":\"L1\",\"qty\":\"5\",\"unit\":\"unit\",\"reason\":"
             "\"theft\",\"handler\":\"H\"}");
    assert_int_equal(event_from_json(&e, a, line, strlen(line), f->l),
                     TRACE_EINVAL);
    arena_free(a);
}

/* A `party` event takes its pubkey as PEM (line breaks and all) or as
 * base64 of the raw 32 bytes; both register the same key. */
static void test_pubkey_forms(void **state)
{
    fixture *f = *state;
    const trace_key *key;
    char b64[64], pem[512], line[2048], esc[1024];
    arena *a = arena_new(0);
    Trace__V1__Event *e1, *e2;
    FILE *fp;
    size_t n, o = 0;

    assert_int_equal(trace_keyring_get(f->ring, "REGULATOR", &key), TRACE_OK);
    assert_int_equal(
        trace_pubkey_format(b64, sizeof(b64), trace_key_public(key)), TRACE_OK);
    snprintf(line, sizeof(line), "%s/REGULATOR.pub", f->keys);
    assert_non_null(fp = fopen(line, "r"));
    n = fread(pem, 1, sizeof(pem) - 1, fp);
    fclose(fp);
    pem[n] = '\0';
    for (size_t i = 0; i < n && o < sizeof(esc) - 3; i++) {
        if (pem[i] == '\n') {
            esc[o++] = '\\';
            esc[o++] = 'n';
        } else {
            esc[o++] = pem[i];
        }
    }
    esc[o] = '\0';
#define PARTY_WITH_KEY                                                         \
    "{\"type\":\"party\",\"id\":\"k\",\"party\":\"REGULATOR\",\"at\":"         \
    "\"2026-01-01T00:00:00Z\",\"subject\":\"X\",\"name\":\"x\",\"kind\":"      \
    "\"user\",\"region\":\"CN\",\"licenses\":[],\"pubkey\":\"%s\"}"
    snprintf(line, sizeof(line), PARTY_WITH_KEY, b64);
    assert_int_equal(event_from_json(&e1, a, line, strlen(line), f->l),
                     TRACE_OK);
    snprintf(line, sizeof(line), PARTY_WITH_KEY, esc);
    if (event_from_json(&e2, a, line, strlen(line), f->l) != TRACE_OK)
        fail_msg("PEM pubkey refused: %s", trace_error_last());
    assert_memory_equal(e1->party_body->pubkey.data,
                        e2->party_body->pubkey.data, TRACE_PUBKEY_LEN);
    snprintf(line, sizeof(line), PARTY_WITH_KEY, "bm90IGEga2V5");
    assert_int_equal(event_from_json(&e2, a, line, strlen(line), f->l),
                     TRACE_EINVAL);
    arena_free(a);
}

/* The allocators the decoders use: every size near a block's edge gets
 * room of its own (ASan reports any overrun), big buffers are zeroed. */
static void test_arena_and_big_buffers(void **state)
{
    (void)state;
    for (size_t block = 16384; block <= (4u << 20); block *= 256) {
        arena *a = arena_new(0);
        assert_non_null(a);
        arena_set_block(a, block);
        for (size_t n = block - 256; n <= block + 64; n += 8) {
            unsigned char *p = arena_alloc(a, n);
            assert_non_null(p);
            memset(p, 0xab, n);
        }
        arena_reset(a);
        assert_non_null(arena_alloc(a, 10));
        arena_free(a);
    }
    for (size_t n = 1; n <= (8u << 20); n *= 4) {
        unsigned char *p = big_alloc(n);
        assert_non_null(p);
        assert_int_equal(p[0], 0);
        assert_int_equal(p[n - 1], 0);
        memset(p, 0xcd, n);
        big_free(p);
    }
    big_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_tolerated_forms),
        cmocka_unit_test(test_same_content_after_parsing),
        cmocka_unit_test(test_patient_pseudonymised),
        cmocka_unit_test(test_render_round_trip),
        cmocka_unit_test(test_staff_fields),
        cmocka_unit_test(test_pubkey_forms),
        cmocka_unit_test(test_arena_and_big_buffers),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
