/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ahead.h - requests signed ahead of the daemon's clock, remembered
 * across restarts (see ahead.c).  Private to traced.
 */
#ifndef TRACED_AHEAD_H
#define TRACED_AHEAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "admit.h"

#define AHEAD_SLACK 200000LL /* us: ahead by more is written down */

struct ahead {
    pthread_mutex_t mu;
    char path[4096];
    int fd;         /* the file, open for appending; -1 if not */
    int64_t window; /* us */
    size_t bytes;   /* in the file */
};

/* Opens DIR/traced.ahead (made if absent), gives the requests in it whose
 * time is still within the window to `cache` (refused as replays from
 * now on), and rewrites it with only those.  0 or -1. */
int ahead_open(struct ahead *a, const char *dir, struct admit *cache,
               int64_t now, int64_t window);
void ahead_free(struct ahead *a);

/* Notes an admitted request: one signed more than AHEAD_SLACK ahead of
 * now is appended to the file and synced before it may be answered.  0,
 * or -1 if it could not be written (the request must then be refused). */
int ahead_note(struct ahead *a, const uint8_t *kid, const uint8_t *nonce,
               int64_t t, int64_t now);

#endif
