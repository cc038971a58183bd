/* SPDX-License-Identifier: Apache-2.0 */
/*
 * key.h - Ed25519 signing keys and key folders.
 *
 * A key folder holds one private key per party, PARTY.key (PKCS#8 PEM,
 * mode 0600), and its public half PARTY.pub (PEM).  Party ids are limited
 * to [A-Za-z0-9._:-], 1 to 64 characters, not starting with '.', so they
 * are safe file names.
 *
 * A key id is the first 8 bytes of SHA-256 over the raw 32-byte public
 * key; it names the key in every journal entry.
 */
#ifndef TRACE_KEY_H
#define TRACE_KEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRACE_KEY_ID_LEN 8
#define TRACE_PUBKEY_LEN 32
#define TRACE_SIG_LEN    64

typedef struct trace_key trace_key;
typedef struct trace_keyring trace_keyring;

/* Generates a new Ed25519 key.  TRACE_ENOMEM or TRACE_EUNAVAIL on failure. */
int trace_key_generate(trace_key **out);

/* Loads a private key from a PEM file.  TRACE_ENOTFOUND if the file is
 * missing, TRACE_EINVAL if it is not an Ed25519 private key. */
int trace_key_load(trace_key **out, const char *path);

/* Writes the private key (0600) to `path` and its public half to the
 * same path with ".pub" in place of ".key".  Fails with TRACE_EEXIST
 * rather than overwrite an existing file. */
int trace_key_save(const trace_key *key, const char *path);

void trace_key_free(trace_key *key);

/* The raw public key (32 bytes) and key id (8 bytes); borrowed. */
const uint8_t *trace_key_public(const trace_key *key);
const uint8_t *trace_key_id(const trace_key *key);

/* Signs msg; sig receives TRACE_SIG_LEN bytes. */
int trace_key_sign(const trace_key *key, const void *msg, size_t len,
                   uint8_t sig[TRACE_SIG_LEN]);

/* Checks an Ed25519 signature with a raw public key.  TRACE_OK or
 * TRACE_EVERIFY. */
int trace_sig_verify(const uint8_t pub[TRACE_PUBKEY_LEN], const void *msg,
                     size_t len, const uint8_t sig[TRACE_SIG_LEN]);

/* Parses a public key given as PEM (SubjectPublicKeyInfo) or as base64
 * of the raw 32 bytes.  TRACE_EINVAL on anything else. */
int trace_pubkey_parse(uint8_t out[TRACE_PUBKEY_LEN], const char *text);

/* Writes a public key as base64 of its 32 raw bytes (45 bytes with the
 * NUL).  TRACE_EINVAL if `cap` is too small. */
int trace_pubkey_format(char *out, size_t cap,
                        const uint8_t pub[TRACE_PUBKEY_LEN]);

/* Computes the key id of a raw public key. */
void trace_pubkey_id(uint8_t out[TRACE_KEY_ID_LEN],
                     const uint8_t pub[TRACE_PUBKEY_LEN]);

/* Returns 1 if `id` is an acceptable party id (see above), else 0. */
int trace_party_id_valid(const char *id);

/*
 * Opens a key folder, creating it (0700) if `create` is non-zero.
 * Keys are loaded lazily and cached for the life of the keyring.
 */
int trace_keyring_open(trace_keyring **out, const char *dir, int create);
void trace_keyring_free(trace_keyring *ring);

/* Sets *out to the borrowed key of `party`.  TRACE_ENOTFOUND (and *out
 * NULL) if the folder has none; TRACE_EINVAL if its file is unreadable
 * or not an Ed25519 key. */
int trace_keyring_get(trace_keyring *ring, const char *party,
                      const trace_key **out);

/* Generates, saves and caches a new key for `party`.  TRACE_EEXIST if
 * the folder already has one.  *out is borrowed from the ring. */
int trace_keyring_generate(trace_keyring *ring, const char *party,
                           const trace_key **out);

/* The folder path; borrowed. */
const char *trace_keyring_dir(const trace_keyring *ring);

#ifdef __cplusplus
}
#endif

#endif
