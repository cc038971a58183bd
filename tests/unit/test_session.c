/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_session.c - traced's sessions (session.c) and their keys
 * (wire.c): both ends derive one key; a sequence number is served once,
 * in any order within the window; a bad MAC takes no number; a session
 * lives on its own connection only, ends when idle or old, when its
 * connection closes, or when the table is full and it was unused
 * longest; a party past its share pushes out only its own.  Times are the
 * test's own, so nothing here waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "session.h"

#define SEC 1000000LL

static const uint8_t kid[TRACE_KEY_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t body[] = "a request body";

struct pair {
    uint8_t id[WIRE_SESSION_ID_LEN];
    uint8_t client_key[32], daemon_key[32];
};

/* What OpenSession does on both ends. */
static void handshake(struct pair *p)
{
    uint8_t cpriv[32], cpub[32], dpriv[32], dpub[32];

    assert_int_equal(wire_x25519_new(cpriv, cpub), 0);
    assert_int_equal(wire_x25519_new(dpriv, dpub), 0);
    assert_int_equal(wire_random(p->id, sizeof(p->id)), 0);
    assert_int_equal(
        wire_session_key(p->daemon_key, dpriv, cpub, p->id, cpub, dpub), 0);
    assert_int_equal(
        wire_session_key(p->client_key, cpriv, dpub, p->id, cpub, dpub), 0);
}

static enum session_verdict send(struct sessions *s, const struct pair *p,
                                 uint32_t pipe, uint64_t seq, int64_t now,
                                 int spoil)
{
    uint8_t mac[32];
    char party[72];
    uint8_t k[TRACE_KEY_ID_LEN];

    assert_int_equal(
        wire_seal_mac(mac, p->client_key, p->id, seq, body, sizeof(body)), 0);
    mac[0] ^= (uint8_t)spoil;
    return sessions_check(s, p->id, pipe, seq, body, sizeof(body), mac, now,
                          party, k);
}

static void test_keys_agree(void **state)
{
    struct pair p;
    uint8_t zero[32] = {0}, priv[32], pub[32], key[32];

    (void)state;
    handshake(&p);
    assert_memory_equal(p.client_key, p.daemon_key, 32);
    /* a share of small order gives no key */
    assert_int_equal(wire_x25519_new(priv, pub), 0);
    assert_int_equal(wire_session_key(key, priv, zero, p.id, zero, pub), -1);
}

static void test_numbers_once(void **state)
{
    struct sessions s;
    struct pair p;
    char party[72];
    uint8_t k[TRACE_KEY_ID_LEN], mac[32];

    (void)state;
    assert_int_equal(sessions_init(&s, 8, 60 * SEC, 3600 * SEC), 0);
    handshake(&p);
    assert_int_equal(sessions_open(&s, "P1", kid, 7, p.daemon_key, 0, p.id), 0);
    assert_int_equal(send(&s, &p, 7, 1, 1, 0), SESSION_OK);
    assert_int_equal(send(&s, &p, 7, 1, 2, 0), SESSION_REPLAY);
    assert_int_equal(send(&s, &p, 7, 0, 2, 0), SESSION_REPLAY);
    assert_int_equal(send(&s, &p, 7, 5, 3, 0), SESSION_OK);
    assert_int_equal(send(&s, &p, 7, 3, 4, 0), SESSION_OK); /* late, unused */
    assert_int_equal(send(&s, &p, 7, 3, 5, 0), SESSION_REPLAY);
    /* a bad MAC takes no number: the right one is served after it */
    assert_int_equal(send(&s, &p, 7, 4, 6, 1), SESSION_BAD_MAC);
    assert_int_equal(send(&s, &p, 7, 4, 7, 0), SESSION_OK);
    /* 64 below the highest is too old, even if never used */
    assert_int_equal(send(&s, &p, 7, 100, 8, 0), SESSION_OK);
    assert_int_equal(send(&s, &p, 7, 36, 9, 0), SESSION_REPLAY);
    assert_int_equal(send(&s, &p, 7, 37, 9, 0), SESSION_OK);
    /* the MAC covers the body */
    assert_int_equal(
        wire_seal_mac(mac, p.client_key, p.id, 101, body, sizeof(body)), 0);
    assert_int_equal(sessions_check(&s, p.id, 7, 101, body, sizeof(body) - 1,
                                    mac, 10, party, k),
                     SESSION_BAD_MAC);
    assert_int_equal(
        sessions_check(&s, p.id, 7, 101, body, sizeof(body), mac, 10, party, k),
        SESSION_OK);
    assert_string_equal(party, "P1");
    assert_memory_equal(k, kid, sizeof(kid));
    sessions_free(&s);
}

static void test_connection_and_expiry(void **state)
{
    struct sessions s;
    struct pair p, q;

    (void)state;
    assert_int_equal(sessions_init(&s, 8, 10 * SEC, 100 * SEC), 0);
    handshake(&p);
    handshake(&q);
    assert_int_equal(sessions_open(&s, "P1", kid, 7, p.daemon_key, 0, p.id), 0);
    assert_int_equal(sessions_open(&s, "P2", kid, 8, q.daemon_key, 0, q.id), 0);
    /* another connection: gone for it, still fine on its own */
    assert_int_equal(send(&s, &p, 8, 1, SEC, 0), SESSION_GONE);
    assert_int_equal(send(&s, &p, 7, 1, SEC, 0), SESSION_OK);
    /* idle for longer than 10 s: ended */
    assert_int_equal(send(&s, &p, 7, 2, 9 * SEC, 0), SESSION_OK);
    assert_int_equal(send(&s, &p, 7, 3, 20 * SEC, 0), SESSION_GONE);
    assert_int_equal(send(&s, &p, 7, 4, 21 * SEC, 0), SESSION_GONE);
    /* used every 5 s, it still ends at 100 s */
    assert_int_equal(
        sessions_open(&s, "P1", kid, 7, p.daemon_key, 30 * SEC, p.id), 0);
    for (int64_t t = 35; t < 145; t += 5)
        assert_int_equal(send(&s, &p, 7, (uint64_t)t, t * SEC, 0),
                         t - 30 <= 100 ? SESSION_OK : SESSION_GONE);
    /* the connection closes: its sessions end */
    assert_int_equal(
        sessions_open(&s, "P2", kid, 8, q.daemon_key, 200 * SEC, q.id), 0);
    assert_int_equal(send(&s, &q, 8, 1, 201 * SEC, 0), SESSION_OK);
    sessions_forget_pipe(&s, 8);
    assert_int_equal(send(&s, &q, 8, 2, 202 * SEC, 0), SESSION_GONE);
    assert_int_equal(sessions_count(&s), 0);
    sessions_free(&s);
}

static void test_full_table(void **state)
{
    struct sessions s;
    struct pair p[3];

    (void)state;
    assert_int_equal(sessions_init(&s, 2, 60 * SEC, 3600 * SEC), 0);
    for (int i = 0; i < 3; i++)
        handshake(&p[i]);
    assert_int_equal(
        sessions_open(&s, "P0", kid, 1, p[0].daemon_key, 0, p[0].id), 0);
    assert_int_equal(
        sessions_open(&s, "P1", kid, 1, p[1].daemon_key, 1, p[1].id), 0);
    assert_int_equal(send(&s, &p[0], 1, 1, 2, 0), SESSION_OK);
    /* full: the one unused longest (P1) makes room */
    assert_int_equal(
        sessions_open(&s, "P2", kid, 1, p[2].daemon_key, 3, p[2].id), 0);
    assert_int_equal(sessions_count(&s), 2);
    assert_int_equal(send(&s, &p[1], 1, 1, 4, 0), SESSION_GONE);
    assert_int_equal(send(&s, &p[0], 1, 2, 4, 0), SESSION_OK);
    assert_int_equal(send(&s, &p[2], 1, 1, 4, 0), SESSION_OK);
    sessions_free(&s);
}

/* One party opening sessions without end pushes out only its own. */
static void test_party_share(void **state)
{
    struct sessions s;
    struct pair other, p;

    (void)state;
    assert_int_equal(sessions_init(&s, 32, 60 * SEC, 3600 * SEC), 0);
    handshake(&other);
    assert_int_equal(
        sessions_open(&s, "P0", kid, 1, other.daemon_key, 0, other.id), 0);
    for (int i = 0; i < 100; i++) {
        handshake(&p);
        assert_int_equal(
            sessions_open(&s, "P9", kid, 2, p.daemon_key, 1 + i, p.id), 0);
    }
    assert_int_equal(sessions_count(&s), 17); /* P0's and P9's 16 */
    assert_int_equal(send(&s, &other, 1, 1, 200, 0), SESSION_OK);
    assert_int_equal(send(&s, &p, 2, 1, 200, 0), SESSION_OK);
    sessions_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_agree),
        cmocka_unit_test(test_numbers_once),
        cmocka_unit_test(test_connection_and_expiry),
        cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_party_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
