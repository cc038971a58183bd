/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admit.h - what an authenticated request must pass before the daemon
 * remembers anything of it: its party's rate limit, then the replay cache
 * with its per-party share.  Private to traced; no nng or LMDB here, so
 * the unit test drives it with times of its own.
 */
#ifndef TRACED_ADMIT_H
#define TRACED_ADMIT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/key.h"
#include "wire.h"

#define ADMIT_GENS    4 /* buckets of request time kept (see admit.c) */
#define ADMIT_KEY_LEN (TRACE_KEY_ID_LEN + WIRE_NONCE_LEN)

struct admit_opts {
    int64_t window_us; /* clock window: a request's time is within
                          [now - window, now + window] */
    size_t cache;      /* nonces remembered per bucket of request time */
    unsigned share;    /* percent of a bucket one non-regulator may fill */
    long long rate;    /* requests per second per party (0: no limit) */
    long long burst;   /* requests a party may send at once */
};

enum admit_verdict {
    ADMIT_OK,      /* new nonce, now remembered */
    ADMIT_RATE,    /* the party's rate limit: nothing remembered */
    ADMIT_REPLAY,  /* (key, nonce) already seen */
    ADMIT_SHARE,   /* the party filled its share of the cache */
    ADMIT_FULL,    /* the cache is full (for non-regulators: its part) */
    ADMIT_TOO_OLD, /* the request's time is behind every kept bucket */
    ADMIT_NOMEM
};

struct admit_gen {
    int64_t bucket; /* floor(time / window); INT64_MIN: not used yet */
    uint8_t (*keys)[ADMIT_KEY_LEN]; /* key id || nonce */
    uint8_t *used;
    size_t n;
};

struct admit_party;

struct admit {
    pthread_mutex_t mu;
    struct admit_opts o;
    struct admit_gen gen[ADMIT_GENS];
    struct admit_party *parties; /* open addressing, grown at half load */
    size_t n_parties, cap_parties;
};

int admit_init(struct admit *a, const struct admit_opts *o);
void admit_free(struct admit *a);

/*
 * Admits one authenticated request of `party` (a regulator when
 * `regulator`) whose signed time is `time_us`, the daemon's clock being
 * `now_us`: a (key_id, nonce) already in the bucket of `time_us` is a
 * replay; otherwise the party's token bucket, its share, and then the
 * nonce is remembered.  The caller has checked that time_us lies within
 * the clock window of now_us.  Thread-safe.
 */
enum admit_verdict admit_request(struct admit *a, const char *party,
                                 int regulator, const uint8_t *key_id,
                                 const uint8_t *nonce, int64_t time_us,
                                 int64_t now_us);

/* The rate limit alone, for a request in a session (whose sequence
 * numbers, not the replay cache, refuse replays): ADMIT_OK, ADMIT_RATE
 * or ADMIT_NOMEM.  Thread-safe. */
enum admit_verdict admit_rate(struct admit *a, const char *party,
                              int64_t now_us);

/* Remembers (key_id, nonce) of a request admitted earlier (by another
 * process: ahead.c), outside any share or limit.  A full bucket skips
 * it: -1. */
int admit_remember(struct admit *a, const uint8_t *key_id, const uint8_t *nonce,
                   int64_t time_us);

/* Nonces held now (all buckets) and by `party` in the bucket of time_us:
 * for tests and logs. */
size_t admit_held(struct admit *a, const char *party, int64_t time_us,
                  size_t *by_party);

#endif
