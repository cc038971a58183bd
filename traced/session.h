/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.h - sessions of traced (wire.proto): after one signed
 * OpenSession, a party's requests on that connection are MACed with a
 * session key and numbered, instead of each being signed.
 */
#ifndef TRACED_SESSION_H
#define TRACED_SESSION_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/trace.h"
#include "wire.h"

struct session {
    uint8_t id[WIRE_SESSION_ID_LEN];
    uint8_t key[32];
    char party[72];
    uint8_t key_id[TRACE_KEY_ID_LEN];
    uint32_t pipe; /* the connection it belongs to */
    int64_t opened_us, used_us;
    uint64_t top;  /* highest sequence number taken */
    uint64_t seen; /* bit i: top - i taken */
    int live;
};

struct sessions {
    pthread_mutex_t mu;
    struct session *t;
    size_t cap;
    int64_t idle_us, life_us;
};

enum session_verdict {
    SESSION_OK,
    SESSION_GONE,    /* unknown, expired, or of another connection */
    SESSION_BAD_MAC, /* the MAC does not hold */
    SESSION_REPLAY   /* the sequence number was taken (or is too old) */
};

/* Room for `cap` sessions, each ending when idle `idle_us` or older than
 * `life_us`.  0 on success. */
int sessions_init(struct sessions *s, size_t cap, int64_t idle_us,
                  int64_t life_us);
void sessions_free(struct sessions *s);
/* A new session `id` (random, from the caller) of (party, key_id) on
 * `pipe` with `key`.  A party holding its share (an eighth of the table,
 * at least 16) ends its own session unused longest; otherwise a free
 * place is taken or, when all are taken, the session unused longest
 * ends.  0 on success. */
int sessions_open(struct sessions *s, const char *party,
                  const uint8_t key_id[TRACE_KEY_ID_LEN], uint32_t pipe,
                  const uint8_t key[32], int64_t now_us,
                  const uint8_t id[WIRE_SESSION_ID_LEN]);
/* Checks a sealed request received on `pipe`: the session, the MAC over
 * (id, seq, body), then takes seq.  On SESSION_OK and SESSION_REPLAY
 * `party` and `key_id` receive the session's owner.  Thread-safe. */
enum session_verdict
sessions_check(struct sessions *s, const uint8_t id[WIRE_SESSION_ID_LEN],
               uint32_t pipe, uint64_t seq, const uint8_t *body, size_t len,
               const uint8_t mac[32], int64_t now_us, char party[72],
               uint8_t key_id[TRACE_KEY_ID_LEN]);
/* Ends the sessions of a closed connection. */
void sessions_forget_pipe(struct sessions *s, uint32_t pipe);
/* Sessions open now (for tests and logs). */
size_t sessions_count(struct sessions *s);

#endif
