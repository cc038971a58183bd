/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.h - what tracectl --connect and traced share about the protocol
 * of proto/wire.proto: the digests that are signed and small helpers.
 */
#ifndef TRACE_WIRE_H
#define TRACE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.pb-c.h"

#define WIRE_VERSION    1
#define WIRE_NONCE_LEN  16
#define WIRE_HEAD_TOPIC "head "
/* || "new N": a notice that alerts were stored (N counts the notices of
 * the daemon's run); no alert travels on PUB, which cannot tell who
 * listens: subscribers fetch them with an authenticated alerts Call */
#define WIRE_ALERT_TOPIC          "alert "
#define WIRE_ALERT_NOTICE         "new "
#define WIRE_NOTE_TOPIC           "checkpoint " /* || a signed note (SPEC 8) */
#define WIRE_FEATURE_PARTY_GROUPS 0x1u /* Commit.party_groups understood */
#define WIRE_FEATURE_SESSIONS     0x2u /* OpenSession and SealedRequest */
#define WIRE_FEATURE_CALLS        0x4u /* RequestBody.call (ops.proto) */
#define WIRE_FEATURE_JOBS         0x8u /* RequestBody.job */
#define WIRE_SESSION_ID_LEN       16
#define WIRE_SHARE_LEN            32 /* an X25519 public or private key */

/* SHA-256("trace.v1.request\n" || body): what a requester signs. */
void wire_request_digest(uint8_t out[32], const uint8_t *body, size_t len);

/* SHA-256("trace.v1.checkpoint\n" || u64be size || head || i64be time):
 * what the daemon signs for a journal head. */
void wire_checkpoint_digest(uint8_t out[32], uint64_t size,
                            const uint8_t head[32], int64_t time_us);

struct trace_key;

/* Packs `body` (every field set), signs it with `key` and wraps it in a
 * Request; *out (from `alloc`: malloc, or nng_alloc to hand it to nng
 * without a copy; *len bytes) is what goes on the wire.  With `bad_sig`
 * the signature is spoiled (for tests).  0 on success. */
int wire_sign_request(const struct trace_key *key,
                      const Trace__Wire__V1__RequestBody *body, int bad_sig,
                      void *(*alloc)(size_t), uint8_t **out, size_t *len);

/* A fresh X25519 key pair; 0 on success. */
int wire_x25519_new(uint8_t priv[WIRE_SHARE_LEN], uint8_t pub[WIRE_SHARE_LEN]);
/* The session key (wire.proto) from my private key and the peer's
 * public one; `client` and `daemon` are the two public shares.  -1 if
 * the peer's share is not a usable key. */
int wire_session_key(uint8_t key[32], const uint8_t priv[WIRE_SHARE_LEN],
                     const uint8_t peer[WIRE_SHARE_LEN],
                     const uint8_t id[WIRE_SESSION_ID_LEN],
                     const uint8_t client[WIRE_SHARE_LEN],
                     const uint8_t daemon[WIRE_SHARE_LEN]);
/* The MAC of a sealed request; 0 on success. */
int wire_seal_mac(uint8_t mac[32], const uint8_t key[32],
                  const uint8_t id[WIRE_SESSION_ID_LEN], uint64_t seq,
                  const uint8_t *body, size_t len);
/* Like wire_sign_request, for a session: packs `body`, MACs it under
 * `key` with `seq` and wraps it in a Request.  0 on success. */
int wire_seal_request(const uint8_t key[32],
                      const uint8_t id[WIRE_SESSION_ID_LEN], uint64_t seq,
                      const Trace__Wire__V1__RequestBody *body,
                      void *(*alloc)(size_t), uint8_t **out, size_t *len);
/* HMAC-SHA256 of data under key; 0 on success. */
int wire_hmac(uint8_t out[32], const uint8_t key[32], const void *data,
              size_t len);

/* Cryptographically random bytes; 0 on success. */
int wire_random(uint8_t *out, size_t len);

/* Wall clock, microseconds since the epoch. */
int64_t wire_now_us(void);

#endif
