/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admit.c - admission of authenticated requests: per-party rate limits
 * and the replay cache.
 *
 * A request carries its signed time t and a random nonce; the daemon
 * accepts t only within [now - W, now + W] (W: the clock window), so a
 * captured request can be replayed for as long as its own t is in the
 * window, i.e. until now > t + W.  The cache therefore keeps each nonce
 * by the bucket of its request time, b = floor(t / W), not by when it
 * arrived: a replay carries the same signed t, so it is looked up in the
 * same bucket.  ADMIT_GENS (4) tables are kept, table b mod 4 holding
 * bucket b.  A table is cleared when a request of a newer bucket b' =
 * b + 4k needs it; that is safe because t' >= b'W >= (b + 4)W and
 * now >= t' - W, so now >= (b + 3)W > t + W for every t of bucket b:
 * all of them have left the window.  Requests span at most three buckets
 * ([now - W, now + W]), so a table never holds a bucket newer than the
 * request that looks into it; if it did the request is refused.
 *
 * Fairness: a replay is refused before the rate limit is consulted (so
 * replaying a captured request cannot spend its party's tokens); then the
 * party's token bucket, so a limited request leaves nothing behind.  A
 * non-regulator party may hold at most `share` percent of a bucket, and
 * non-regulators together stop at 60 % of it, which leaves the rest to
 * regulators (who stop at 80 %, where linear probing is still short).  So one
 * party's flood refuses only that party, and no crowd of parties can lock a
 * regulator out.
 *
 * The slot of a nonce comes from a hash keyed with a random secret, so a
 * party cannot choose nonces that collide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define PARTY_MAX   72
#define FILL_ALL    80 /* percent of a bucket anyone may fill */
#define FILL_NONREG 60 /* percent non-regulators may fill */

struct admit_party {
    char party[PARTY_MAX]; /* "" for a free slot */
    double tokens;
    int64_t last_us;
    int64_t qbucket[ADMIT_GENS]; /* the bucket qcount counts */
    uint32_t qcount[ADMIT_GENS]; /* nonces held there */
    uint8_t qvalid[ADMIT_GENS];
};

static uint64_t secret;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t key_hash(const uint8_t *k)
{
    uint64_t h = secret, w;
    for (size_t i = 0; i + 8 <= ADMIT_KEY_LEN; i += 8) {
        memcpy(&w, k + i, 8);
        h = mix(h ^ w);
    }
    return h;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

int admit_init(struct admit *a, const struct admit_opts *o)
{
    memset(a, 0, sizeof(*a));
    a->o = *o;
    if (a->o.window_us < 1 || a->o.cache < 16)
        return -1;
    if (!secret && wire_random((uint8_t *)&secret, sizeof(secret)) != 0)
        return -1;
    if (pthread_mutex_init(&a->mu, NULL))
        return -1;
    for (int i = 0; i < ADMIT_GENS; i++) {
        a->gen[i].keys = calloc(a->o.cache, sizeof(*a->gen[i].keys));
        a->gen[i].used = calloc(a->o.cache, 1);
        a->gen[i].bucket = INT64_MIN;
        if (!a->gen[i].keys || !a->gen[i].used) {
            admit_free(a);
            return -1;
        }
    }
    a->cap_parties = 256;
    if (!(a->parties = calloc(a->cap_parties, sizeof(*a->parties)))) {
        admit_free(a);
        return -1;
    }
    return 0;
}

void admit_free(struct admit *a)
{
    for (int i = 0; i < ADMIT_GENS; i++) {
        free(a->gen[i].keys);
        free(a->gen[i].used);
    }
    free(a->parties);
    pthread_mutex_destroy(&a->mu);
    memset(a, 0, sizeof(*a));
}

static struct admit_party *party_slot(struct admit *a, const char *party)
{
    size_t i;

    if (!party[0] || strlen(party) >= PARTY_MAX)
        return NULL;
    if ((a->n_parties + 1) * 2 > a->cap_parties) {
        size_t cap = a->cap_parties * 2;
        struct admit_party *p = calloc(cap, sizeof(*p));
        if (!p)
            return NULL;
        for (size_t k = 0; k < a->cap_parties; k++) {
            if (!a->parties[k].party[0])
                continue;
            i = (size_t)(name_hash(a->parties[k].party) % cap);
            while (p[i].party[0])
                i = (i + 1) % cap;
            p[i] = a->parties[k];
        }
        free(a->parties);
        a->parties = p;
        a->cap_parties = cap;
    }
    i = (size_t)(name_hash(party) % a->cap_parties);
    while (a->parties[i].party[0] && strcmp(a->parties[i].party, party) != 0)
        i = (i + 1) % a->cap_parties;
    if (!a->parties[i].party[0]) {
        snprintf(a->parties[i].party, PARTY_MAX, "%s", party);
        a->parties[i].tokens = (double)a->o.burst;
        a->parties[i].last_us = INT64_MIN;
        a->n_parties++;
    }
    return &a->parties[i];
}

static int rate_take(const struct admit *a, struct admit_party *p, int64_t now)
{
    if (a->o.rate == 0)
        return 0;
    if (p->last_us != INT64_MIN && now > p->last_us)
        p->tokens += (double)(now - p->last_us) * (double)a->o.rate / 1e6;
    if (p->tokens > (double)a->o.burst)
        p->tokens = (double)a->o.burst;
    if (p->last_us == INT64_MIN || now > p->last_us)
        p->last_us = now;
    if (p->tokens < 1.0)
        return -1;
    p->tokens -= 1.0;
    return 0;
}

static int64_t bucket_of(const struct admit *a, int64_t t)
{
    int64_t b = t / a->o.window_us;
    if (t % a->o.window_us < 0)
        b--;
    return b;
}

static size_t gen_index(int64_t b)
{
    return (size_t)(((b % ADMIT_GENS) + ADMIT_GENS) % ADMIT_GENS);
}

/* The slot of k in g: where it is (*found) or where it would go. */
static size_t slot_of(const struct admit *a, const struct admit_gen *g,
                      const uint8_t *k, int *found)
{
    size_t i = (size_t)(key_hash(k) % a->o.cache);
    for (;;) {
        if (!g->used[i]) {
            *found = 0;
            return i;
        }
        if (memcmp(g->keys[i], k, ADMIT_KEY_LEN) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) % a->o.cache;
    }
}

/* The table of bucket b, cleared if it held an older bucket; NULL if it
 * holds a newer one (b is behind every bucket kept).  mu held. */
static struct admit_gen *gen_for(struct admit *a, int64_t b)
{
    struct admit_gen *g = &a->gen[gen_index(b)];

    if (g->bucket != b) {
        if (g->bucket != INT64_MIN && g->bucket > b)
            return NULL;
        memset(g->used, 0, a->o.cache);
        g->n = 0;
        g->bucket = b;
    }
    return g;
}

static void key_of(uint8_t k[ADMIT_KEY_LEN], const uint8_t *key_id,
                   const uint8_t *nonce)
{
    memcpy(k, key_id, TRACE_KEY_ID_LEN);
    memcpy(k + TRACE_KEY_ID_LEN, nonce, WIRE_NONCE_LEN);
}

static void put(struct admit_gen *g, size_t i, const uint8_t *k)
{
    memcpy(g->keys[i], k, ADMIT_KEY_LEN);
    g->used[i] = 1;
    g->n++;
}

enum admit_verdict admit_request(struct admit *a, const char *party,
                                 int regulator, const uint8_t *key_id,
                                 const uint8_t *nonce, int64_t time_us,
                                 int64_t now_us)
{
    uint8_t k[ADMIT_KEY_LEN];
    int64_t b = bucket_of(a, time_us);
    size_t gi = gen_index(b), i;
    struct admit_gen *g;
    struct admit_party *p;
    enum admit_verdict v = ADMIT_OK;
    int found;

    key_of(k, key_id, nonce);
    pthread_mutex_lock(&a->mu);
    if (!(p = party_slot(a, party))) {
        v = ADMIT_NOMEM;
        goto out;
    }
    if (!(g = gen_for(a, b))) {
        v = ADMIT_TOO_OLD;
        goto out;
    }
    i = slot_of(a, g, k, &found);
    if (found) {
        /* before the rate limit: replays of a captured request must not
         * spend its party's tokens */
        v = ADMIT_REPLAY;
        goto out;
    }
    if (rate_take(a, p, now_us) != 0) {
        v = ADMIT_RATE;
        goto out;
    }
    if (!p->qvalid[gi] || p->qbucket[gi] != b) {
        p->qvalid[gi] = 1;
        p->qbucket[gi] = b;
        p->qcount[gi] = 0;
    }
    if (g->n * 100 >= a->o.cache * FILL_ALL ||
        (!regulator && g->n * 100 >= a->o.cache * FILL_NONREG)) {
        v = ADMIT_FULL;
        goto out;
    }
    if (!regulator && (size_t)p->qcount[gi] * 100 >= a->o.cache * a->o.share) {
        v = ADMIT_SHARE;
        goto out;
    }
    put(g, i, k);
    p->qcount[gi]++;
out:
    pthread_mutex_unlock(&a->mu);
    return v;
}

enum admit_verdict admit_rate(struct admit *a, const char *party,
                              int64_t now_us)
{
    struct admit_party *p;
    enum admit_verdict v = ADMIT_OK;

    pthread_mutex_lock(&a->mu);
    if (!(p = party_slot(a, party)))
        v = ADMIT_NOMEM;
    else if (rate_take(a, p, now_us) != 0)
        v = ADMIT_RATE;
    pthread_mutex_unlock(&a->mu);
    return v;
}

int admit_remember(struct admit *a, const uint8_t *key_id, const uint8_t *nonce,
                   int64_t time_us)
{
    uint8_t k[ADMIT_KEY_LEN];
    struct admit_gen *g;
    size_t i;
    int found, rc = -1;

    key_of(k, key_id, nonce);
    pthread_mutex_lock(&a->mu);
    if ((g = gen_for(a, bucket_of(a, time_us))) != NULL) {
        i = slot_of(a, g, k, &found);
        if (found)
            rc = 0;
        else if (g->n * 100 < a->o.cache * 95) {
            put(g, i, k);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

size_t admit_held(struct admit *a, const char *party, int64_t time_us,
                  size_t *by_party)
{
    size_t n = 0;
    int64_t b = bucket_of(a, time_us);
    size_t gi = gen_index(b);

    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < ADMIT_GENS; i++)
        if (a->gen[i].bucket != INT64_MIN)
            n += a->gen[i].n;
    if (by_party) {
        *by_party = 0;
        for (size_t i = 0; i < a->cap_parties; i++)
            if (strcmp(a->parties[i].party, party) == 0 &&
                a->parties[i].qvalid[gi] && a->parties[i].qbucket[gi] == b)
                *by_party = a->parties[i].qcount[gi];
    }
    pthread_mutex_unlock(&a->mu);
    return n;
}
