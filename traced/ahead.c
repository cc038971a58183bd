/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ahead.c - replay protection across restarts for requests signed ahead
 * of the daemon's clock.
 *
 * The replay cache (admit.c) lives in memory.  After a restart a request
 * is refused if it was signed before the new process may serve (its
 * start plus AHEAD_SLACK: server.c does not listen earlier), which covers
 * every request whose time was at most AHEAD_SLACK ahead of the old
 * process's clock when it was admitted.  A request signed further ahead
 * (a client whose clock runs fast) can carry a time after the restart,
 * so it is written down - key id, nonce, time - and synced before it is
 * answered.  At start the records still within the clock window go into
 * the replay cache, where a replay finds them; the file is rewritten with
 * only those (and again whenever it passes REWRITE_BYTES).
 *
 * Record: key id (8 bytes) | nonce (16) | time (i64 big-endian).  A torn
 * last record (a crash while appending) is ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ahead.h"

#define REC_LEN       (TRACE_KEY_ID_LEN + WIRE_NONCE_LEN + 8)
#define REWRITE_BYTES (1u << 20)

static int64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static void put64(uint8_t *p, int64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)x >> (56 - 8 * i));
}

/* Rewrites the file with its records still in the window; with `cache`
 * also gives them to it.  Leaves a->fd open for appending.  0 or -1. */
static int rewrite(struct ahead *a, struct admit *cache, int64_t now)
{
    char tmp[sizeof(a->path) + 8];
    uint8_t rec[REC_LEN];
    FILE *in = fopen(a->path, "rb");
    int out, ok = 1;

    if (!in && errno != ENOENT)
        return -1;
    snprintf(tmp, sizeof(tmp), "%s.new", a->path);
    if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
        if (in)
            fclose(in);
        return -1;
    }
    a->bytes = 0;
    while (in && ok && fread(rec, 1, REC_LEN, in) == REC_LEN) {
        int64_t t = get64(rec + TRACE_KEY_ID_LEN + WIRE_NONCE_LEN);
        if (t < now - a->window)
            continue; /* it has left the window: refused by its time */
        if (cache)
            admit_remember(cache, rec, rec + TRACE_KEY_ID_LEN, t);
        ok = write(out, rec, REC_LEN) == REC_LEN;
        a->bytes += REC_LEN;
    }
    if (in)
        fclose(in);
    ok = ok && fsync(out) == 0;
    if (!ok || rename(tmp, a->path) != 0) {
        close(out);
        unlink(tmp);
        return -1;
    }
    if (a->fd >= 0)
        close(a->fd);
    a->fd = out; /* positioned at the end */
    return 0;
}

int ahead_open(struct ahead *a, const char *dir, struct admit *cache,
               int64_t now, int64_t window)
{
    memset(a, 0, sizeof(*a));
    a->fd = -1;
    a->window = window;
    if (pthread_mutex_init(&a->mu, NULL))
        return -1;
    snprintf(a->path, sizeof(a->path), "%s/traced.ahead", dir);
    return rewrite(a, cache, now);
}

void ahead_free(struct ahead *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    pthread_mutex_destroy(&a->mu);
}

int ahead_note(struct ahead *a, const uint8_t *kid, const uint8_t *nonce,
               int64_t t, int64_t now)
{
    uint8_t rec[REC_LEN];
    int rc = 0;

    if (t <= now + AHEAD_SLACK)
        return 0;
    memcpy(rec, kid, TRACE_KEY_ID_LEN);
    memcpy(rec + TRACE_KEY_ID_LEN, nonce, WIRE_NONCE_LEN);
    put64(rec + TRACE_KEY_ID_LEN + WIRE_NONCE_LEN, t);
    pthread_mutex_lock(&a->mu);
    if (a->bytes >= REWRITE_BYTES && rewrite(a, NULL, now) != 0)
        rc = -1;
    if (rc == 0 && (a->fd < 0 || write(a->fd, rec, REC_LEN) != REC_LEN ||
                    fdatasync(a->fd) != 0))
        rc = -1;
    if (rc == 0)
        a->bytes += REC_LEN;
    pthread_mutex_unlock(&a->mu);
    return rc;
}
