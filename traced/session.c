/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - the session table (session.h).
 *
 * A fixed table of `session-max` places, searched whole (a few thousand
 * 16-byte comparisons cost less than one signature check, which is what
 * a session saves per request).  A sequence number is taken once: the
 * highest taken and a 64-bit window below it are kept, so requests of a
 * session answered out of order (several in flight) still pass while a
 * replay, or a number 64 or more below the highest, is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "session.h"

#define WINDOW 64

int sessions_init(struct sessions *s, size_t cap, int64_t idle_us,
                  int64_t life_us)
{
    memset(s, 0, sizeof(*s));
    if (!(s->t = calloc(cap ? cap : 1, sizeof(*s->t))))
        return -1;
    s->cap = cap ? cap : 1;
    s->idle_us = idle_us;
    s->life_us = life_us;
    pthread_mutex_init(&s->mu, NULL);
    return 0;
}

void sessions_free(struct sessions *s)
{
    if (!s->t)
        return;
    OPENSSL_cleanse(s->t, s->cap * sizeof(*s->t));
    free(s->t);
    s->t = NULL;
    pthread_mutex_destroy(&s->mu);
}

static int expired(const struct sessions *s, const struct session *x,
                   int64_t now)
{
    return now - x->used_us > s->idle_us || now - x->opened_us > s->life_us;
}

static void end(struct session *x)
{
    OPENSSL_cleanse(x, sizeof(*x));
}

int sessions_open(struct sessions *s, const char *party,
                  const uint8_t key_id[TRACE_KEY_ID_LEN], uint32_t pipe,
                  const uint8_t key[32], int64_t now_us,
                  const uint8_t id[WIRE_SESSION_ID_LEN])
{
    struct session *x = NULL, *mine = NULL;
    size_t n_mine = 0, share = s->cap / 8 > 16 ? s->cap / 8 : 16;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->cap; i++) {
        struct session *y = &s->t[i];
        if (y->live && expired(s, y, now_us))
            end(y);
        if (!y->live) {
            if (!x || x->live)
                x = y;
            continue;
        }
        if (strcmp(y->party, party) == 0) {
            n_mine++;
            if (!mine || y->used_us < mine->used_us)
                mine = y;
        }
        if (!x || (x->live && y->used_us < x->used_us))
            x = y; /* the one unused longest, if all are taken */
    }
    /* a party holding its share makes room from its own sessions: one
     * party cannot push everyone else's out */
    if (mine && n_mine >= share)
        x = mine;
    end(x);
    memcpy(x->id, id, WIRE_SESSION_ID_LEN);
    memcpy(x->key, key, 32);
    snprintf(x->party, sizeof(x->party), "%s", party);
    memcpy(x->key_id, key_id, TRACE_KEY_ID_LEN);
    x->pipe = pipe;
    x->opened_us = x->used_us = now_us;
    x->live = 1;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* The live session `id` on `pipe` (under s->mu), ending it if expired. */
static struct session *find(struct sessions *s,
                            const uint8_t id[WIRE_SESSION_ID_LEN],
                            uint32_t pipe, int64_t now)
{
    for (size_t i = 0; i < s->cap; i++) {
        struct session *x = &s->t[i];
        if (!x->live || memcmp(x->id, id, WIRE_SESSION_ID_LEN) != 0)
            continue;
        if (expired(s, x, now)) {
            end(x);
            return NULL;
        }
        return x->pipe == pipe ? x : NULL;
    }
    return NULL;
}

enum session_verdict
sessions_check(struct sessions *s, const uint8_t id[WIRE_SESSION_ID_LEN],
               uint32_t pipe, uint64_t seq, const uint8_t *body, size_t len,
               const uint8_t mac[32], int64_t now_us, char party[72],
               uint8_t key_id[TRACE_KEY_ID_LEN])
{
    struct session *x;
    uint8_t key[32], want[32];
    enum session_verdict v = SESSION_OK;

    pthread_mutex_lock(&s->mu);
    if (!(x = find(s, id, pipe, now_us))) {
        pthread_mutex_unlock(&s->mu);
        return SESSION_GONE;
    }
    memcpy(key, x->key, sizeof(key));
    pthread_mutex_unlock(&s->mu);
    /* the MAC outside the lock: it reads the whole body */
    if (wire_seal_mac(want, key, id, seq, body, len) != 0 ||
        CRYPTO_memcmp(want, mac, sizeof(want)) != 0) {
        OPENSSL_cleanse(key, sizeof(key));
        return SESSION_BAD_MAC;
    }
    OPENSSL_cleanse(key, sizeof(key));
    pthread_mutex_lock(&s->mu);
    if ((x = find(s, id, pipe, now_us)) != NULL) {
        snprintf(party, 72, "%s", x->party);
        memcpy(key_id, x->key_id, TRACE_KEY_ID_LEN);
    }
    if (!x) {
        v = SESSION_GONE;
    } else if (seq == 0 ||
               (seq <= x->top &&
                (x->top - seq >= WINDOW || (x->seen >> (x->top - seq)) & 1))) {
        v = SESSION_REPLAY;
    } else {
        if (seq > x->top) {
            uint64_t shift = seq - x->top;
            x->seen = shift >= WINDOW ? 0 : x->seen << shift;
            x->top = seq;
        }
        x->seen |= 1ull << (x->top - seq);
        x->used_us = now_us;
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

void sessions_forget_pipe(struct sessions *s, uint32_t pipe)
{
    if (!s->t)
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->cap; i++)
        if (s->t[i].live && s->t[i].pipe == pipe)
            end(&s->t[i]);
    pthread_mutex_unlock(&s->mu);
}

size_t sessions_count(struct sessions *s)
{
    size_t n = 0;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->cap; i++)
        n += s->t[i].live != 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}
