/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_admit.c - traced's admission of authenticated requests (admit.c):
 * replays refused for as long as the request's own time is in the clock
 * window, whatever the phase of the cache; rate limits before the cache;
 * one party's flood refuses only that party; regulators keep a reserve.
 * Times are the test's own, so nothing here waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admit.h"

#define SEC 1000000LL
#define W   (4 * SEC) /* clock window */

static const uint8_t kid[TRACE_KEY_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};

static void nonce_of(uint8_t n[WIRE_NONCE_LEN], uint64_t i)
{
    memset(n, 0, WIRE_NONCE_LEN);
    memcpy(n, &i, sizeof(i));
    n[15] = 0x5a;
}

static void setup(struct admit *a, size_t cache, long long rate)
{
    struct admit_opts o = {.window_us = W,
                           .cache = cache,
                           .share = 10,
                           .rate = rate,
                           .burst = 100000};
    assert_int_equal(admit_init(a, &o), 0);
}

/* A request signed 3.9 s ahead, resent every 250 ms while other requests
 * (with their own, later times) keep the buckets turning: refused until
 * its time has left the window, for every start phase of the buckets. */
static void test_replay_whole_window(void **state)
{
    (void)state;
    for (int64_t phase = 0; phase < W; phase += W / 16) {
        struct admit a;
        uint8_t n[WIRE_NONCE_LEN], other[WIRE_NONCE_LEN];
        int64_t t0 = 1800000000LL * SEC + phase, t = t0 + 3900000;
        uint64_t k = 1000;

        setup(&a, 4096, 0);
        nonce_of(n, 1);
        assert_int_equal(admit_request(&a, "P", 0, kid, n, t, t0), ADMIT_OK);
        for (int64_t now = t0 + 250000; now <= t + W; now += 250000) {
            nonce_of(other, k++);
            /* someone else's request, signed up to the window ahead */
            assert_int_equal(
                admit_request(&a, "Q", 0, kid, other, now + W - 1000, now),
                ADMIT_OK);
            assert_int_equal(admit_request(&a, "P", 0, kid, n, t, now),
                             ADMIT_REPLAY);
        }
        admit_free(&a);
    }
}

/* Old buckets are reused once everything in them left the window. */
static void test_buckets_turn(void **state)
{
    struct admit a;
    uint8_t n[WIRE_NONCE_LEN];
    int64_t now = 1800000000LL * SEC;
    size_t held;

    (void)state;
    setup(&a, 1024, 0);
    for (uint64_t i = 0; i < 100; i++) {
        nonce_of(n, i);
        assert_int_equal(admit_request(&a, "P", 0, kid, n, now, now), ADMIT_OK);
        now += W / 10;
    }
    /* at most four buckets are ever held: ~40 of the 100 */
    held = admit_held(&a, "P", now, NULL);
    assert_true(held <= 41);
    assert_true(held >= 30);
    /* a time behind every bucket kept: refused, not remembered */
    nonce_of(n, 7777);
    assert_int_equal(admit_request(&a, "P", 0, kid, n, now - 20 * W, now),
                     ADMIT_TOO_OLD);
    admit_free(&a);
}

/* One party fills its share; others, and regulators, are still served;
 * non-regulators together stop at 60 %, regulators at 80 %. */
static void test_fair_share(void **state)
{
    struct admit a;
    uint8_t n[WIRE_NONCE_LEN];
    int64_t now = 1800000000LL * SEC;
    uint64_t k = 0;
    size_t by;
    int i, got = 0;

    (void)state;
    setup(&a, 1000, 0);
    for (i = 0; i < 500; i++) {
        nonce_of(n, k++);
        if (admit_request(&a, "FLOOD", 0, kid, n, now, now) == ADMIT_OK)
            got++;
    }
    assert_int_equal(got, 100); /* 10 % of 1000 */
    admit_held(&a, "FLOOD", now, &by);
    assert_int_equal(by, 100);
    nonce_of(n, k++);
    assert_int_equal(admit_request(&a, "FLOOD", 0, kid, n, now, now),
                     ADMIT_SHARE);
    nonce_of(n, k++);
    assert_int_equal(admit_request(&a, "OTHER", 0, kid, n, now, now), ADMIT_OK);
    /* five more flooding parties: 600 held, non-regulators stop */
    for (int p = 0; p < 5; p++) {
        char name[16];
        snprintf(name, sizeof(name), "F%d", p);
        for (i = 0; i < 100; i++) {
            nonce_of(n, k++);
            admit_request(&a, name, 0, kid, n, now, now);
        }
    }
    nonce_of(n, k++);
    assert_int_equal(admit_request(&a, "NEWCOMER", 0, kid, n, now, now),
                     ADMIT_FULL);
    nonce_of(n, k++);
    assert_int_equal(admit_request(&a, "REGULATOR", 1, kid, n, now, now),
                     ADMIT_OK);
    /* the regulator's reserve ends at 80 % */
    for (i = 0; i < 300; i++) {
        nonce_of(n, k++);
        admit_request(&a, "REGULATOR", 1, kid, n, now, now);
    }
    nonce_of(n, k++);
    assert_int_equal(admit_request(&a, "REGULATOR", 1, kid, n, now, now),
                     ADMIT_FULL);
    /* a replay is still called a replay when the cache is full */
    nonce_of(n, 0);
    assert_int_equal(admit_request(&a, "FLOOD", 0, kid, n, now, now),
                     ADMIT_REPLAY);
    admit_free(&a);
}

/* Rate limits come first: a refused request takes no place. */
static void test_rate_first(void **state)
{
    struct admit a;
    struct admit_opts o = {
        .window_us = W, .cache = 1024, .share = 50, .rate = 10, .burst = 5};
    uint8_t n[WIRE_NONCE_LEN];
    int64_t now = 1800000000LL * SEC;
    size_t by;
    int ok = 0, limited = 0;

    (void)state;
    assert_int_equal(admit_init(&a, &o), 0);
    for (uint64_t i = 0; i < 20; i++) {
        enum admit_verdict v;
        nonce_of(n, i);
        v = admit_request(&a, "P", 0, kid, n, now, now);
        ok += v == ADMIT_OK;
        limited += v == ADMIT_RATE;
    }
    assert_int_equal(ok, 5);
    assert_int_equal(limited, 15);
    admit_held(&a, "P", now, &by);
    assert_int_equal(by, 5);
    /* 100 ms later one token is back */
    nonce_of(n, 100);
    assert_int_equal(
        admit_request(&a, "P", 0, kid, n, now + 100000, now + 100000),
        ADMIT_OK);
    /* another party has its own bucket */
    nonce_of(n, 101);
    assert_int_equal(admit_request(&a, "Q", 0, kid, n, now, now), ADMIT_OK);
    admit_free(&a);
}

/* Replays of a captured request are refused without spending the
 * party's tokens: the party itself is still served. */
static void test_replay_spends_no_token(void **state)
{
    struct admit a;
    struct admit_opts o = {
        .window_us = W, .cache = 1024, .share = 50, .rate = 1, .burst = 2};
    uint8_t n[WIRE_NONCE_LEN];
    int64_t now = 1800000000LL * SEC;

    (void)state;
    assert_int_equal(admit_init(&a, &o), 0);
    nonce_of(n, 1);
    assert_int_equal(admit_request(&a, "REG", 1, kid, n, now, now), ADMIT_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(admit_request(&a, "REG", 1, kid, n, now, now),
                         ADMIT_REPLAY);
    nonce_of(n, 2);
    assert_int_equal(admit_request(&a, "REG", 1, kid, n, now, now), ADMIT_OK);
    admit_free(&a);
}

/* Thousands of parties: each keeps its own limit (the table grows). */
static void test_many_parties(void **state)
{
    struct admit a;
    struct admit_opts o = {
        .window_us = W, .cache = 65536, .share = 1, .rate = 1, .burst = 1};
    uint8_t n[WIRE_NONCE_LEN];
    int64_t now = 1800000000LL * SEC;
    char name[32];
    uint64_t k = 0;

    (void)state;
    assert_int_equal(admit_init(&a, &o), 0);
    for (int p = 0; p < 5000; p++) {
        snprintf(name, sizeof(name), "91310000MA%08d", p);
        nonce_of(n, k++);
        assert_int_equal(admit_request(&a, name, 0, kid, n, now, now),
                         ADMIT_OK);
        nonce_of(n, k++);
        assert_int_equal(admit_request(&a, name, 0, kid, n, now, now),
                         ADMIT_RATE);
    }
    admit_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_whole_window),
        cmocka_unit_test(test_buckets_turn),
        cmocka_unit_test(test_fair_share),
        cmocka_unit_test(test_rate_first),
        cmocka_unit_test(test_replay_spends_no_token),
        cmocka_unit_test(test_many_parties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
