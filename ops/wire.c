/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.c - digests and helpers of the daemon protocol (see wire.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "trace/key.h"
#include "trace/trace.h"
#include "wire.h"

static void digest2(uint8_t out[32], const char *label, const void *a,
                    size_t alen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 32;

    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(c, label, strlen(label)) ||
        !EVP_DigestUpdate(c, a, alen) || !EVP_DigestFinal_ex(c, out, &n))
        memset(out, 0, 32); /* never matches a signature */
    EVP_MD_CTX_free(c);
}

void wire_request_digest(uint8_t out[32], const uint8_t *body, size_t len)
{
    digest2(out, "trace.v1.request\n", body, len);
}

void wire_checkpoint_digest(uint8_t out[32], uint64_t size,
                            const uint8_t head[32], int64_t time_us)
{
    uint8_t buf[8 + 32 + 8];
    uint64_t t = (uint64_t)time_us;

    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)(size >> (56 - 8 * i));
        buf[40 + i] = (uint8_t)(t >> (56 - 8 * i));
    }
    memcpy(buf + 8, head, 32);
    digest2(out, "trace.v1.checkpoint\n", buf, sizeof(buf));
}

int wire_hmac(uint8_t out[32], const uint8_t key[32], const void *data,
              size_t len)
{
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, 32, data, len, out, &n) ? 0 : -1;
}

int wire_random(uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

int64_t wire_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Packs rq into *out (from alloc) and frees `body`, the packed body it
 * points into; 0 on success. */
static int pack_request(const Trace__Wire__V1__Request *rq, uint8_t *body,
                        void *(*alloc)(size_t), uint8_t **out, size_t *len)
{
    *len = trace__wire__v1__request__get_packed_size(rq);
    if ((*out = alloc(*len ? *len : 1)) != NULL)
        trace__wire__v1__request__pack(rq, *out);
    free(body);
    return *out ? 0 : -1;
}

int wire_sign_request(const struct trace_key *key,
                      const Trace__Wire__V1__RequestBody *body, int bad_sig,
                      void *(*alloc)(size_t), uint8_t **out, size_t *len)
{
    Trace__Wire__V1__Request rq = TRACE__WIRE__V1__REQUEST__INIT;
    Trace__Wire__V1__SignedRequest sr = TRACE__WIRE__V1__SIGNED_REQUEST__INIT;
    uint8_t digest[32], sig[TRACE_SIG_LEN], *b;
    size_t blen = trace__wire__v1__request_body__get_packed_size(body);

    if (!(b = malloc(blen ? blen : 1)))
        return -1;
    trace__wire__v1__request_body__pack(body, b);
    wire_request_digest(digest, b, blen);
    if (trace_key_sign(key, digest, sizeof(digest), sig) != TRACE_OK) {
        free(b);
        return -1;
    }
    if (bad_sig)
        sig[10] ^= 1;
    sr.body.data = b;
    sr.body.len = blen;
    sr.sig.data = sig;
    sr.sig.len = sizeof(sig);
    rq.kind_case = TRACE__WIRE__V1__REQUEST__KIND_SIGNED;
    rq.signed_ = &sr;
    return pack_request(&rq, b, alloc, out, len);
}

int wire_x25519_new(uint8_t priv[WIRE_SHARE_LEN], uint8_t pub[WIRE_SHARE_LEN])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    size_t a = WIRE_SHARE_LEN, b = WIRE_SHARE_LEN;
    int ok = k && EVP_PKEY_get_raw_private_key(k, priv, &a) == 1 &&
             EVP_PKEY_get_raw_public_key(k, pub, &b) == 1 &&
             a == WIRE_SHARE_LEN && b == WIRE_SHARE_LEN;

    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

int wire_session_key(uint8_t key[32], const uint8_t priv[WIRE_SHARE_LEN],
                     const uint8_t peer[WIRE_SHARE_LEN],
                     const uint8_t id[WIRE_SESSION_ID_LEN],
                     const uint8_t client[WIRE_SHARE_LEN],
                     const uint8_t daemon[WIRE_SHARE_LEN])
{
    static const char label[] = "trace.v1.session\n";
    EVP_PKEY *me = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv,
                                                WIRE_SHARE_LEN);
    EVP_PKEY *them = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer,
                                                 WIRE_SHARE_LEN);
    EVP_PKEY_CTX *c = me ? EVP_PKEY_CTX_new(me, NULL) : NULL;
    uint8_t shared[32],
        msg[sizeof(label) - 1 + WIRE_SESSION_ID_LEN + 2 * WIRE_SHARE_LEN];
    size_t n = sizeof(shared), o = 0;
    int rc = -1;

    /* OpenSSL refuses a peer key of small order (an all-zero secret) */
    if (c && them && EVP_PKEY_derive_init(c) == 1 &&
        EVP_PKEY_derive_set_peer(c, them) == 1 &&
        EVP_PKEY_derive(c, shared, &n) == 1 && n == sizeof(shared)) {
        memcpy(msg, label, sizeof(label) - 1);
        o = sizeof(label) - 1;
        memcpy(msg + o, id, WIRE_SESSION_ID_LEN);
        o += WIRE_SESSION_ID_LEN;
        memcpy(msg + o, client, WIRE_SHARE_LEN);
        o += WIRE_SHARE_LEN;
        memcpy(msg + o, daemon, WIRE_SHARE_LEN);
        o += WIRE_SHARE_LEN;
        rc = wire_hmac(key, shared, msg, o);
    }
    OPENSSL_cleanse(shared, sizeof(shared));
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(me);
    EVP_PKEY_free(them);
    return rc;
}

int wire_seal_mac(uint8_t mac[32], const uint8_t key[32],
                  const uint8_t id[WIRE_SESSION_ID_LEN], uint64_t seq,
                  const uint8_t *body, size_t len)
{
    static const char label[] = "trace.v1.sealed\n";
    size_t head = sizeof(label) - 1 + WIRE_SESSION_ID_LEN + 8;
    uint8_t *buf = malloc(head + len + 1);
    int rc;

    if (!buf)
        return -1;
    memcpy(buf, label, sizeof(label) - 1);
    memcpy(buf + sizeof(label) - 1, id, WIRE_SESSION_ID_LEN);
    for (int i = 0; i < 8; i++)
        buf[head - 8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    if (len)
        memcpy(buf + head, body, len);
    rc = wire_hmac(mac, key, buf, head + len);
    free(buf);
    return rc;
}

int wire_seal_request(const uint8_t key[32],
                      const uint8_t id[WIRE_SESSION_ID_LEN], uint64_t seq,
                      const Trace__Wire__V1__RequestBody *body,
                      void *(*alloc)(size_t), uint8_t **out, size_t *len)
{
    Trace__Wire__V1__Request rq = TRACE__WIRE__V1__REQUEST__INIT;
    Trace__Wire__V1__SealedRequest sr = TRACE__WIRE__V1__SEALED_REQUEST__INIT;
    uint8_t mac[32], *b;
    size_t blen = trace__wire__v1__request_body__get_packed_size(body);

    if (!(b = malloc(blen ? blen : 1)))
        return -1;
    trace__wire__v1__request_body__pack(body, b);
    if (wire_seal_mac(mac, key, id, seq, b, blen) != 0) {
        free(b);
        return -1;
    }
    sr.session.data = (uint8_t *)id;
    sr.session.len = WIRE_SESSION_ID_LEN;
    sr.seq = seq;
    sr.body.data = b;
    sr.body.len = blen;
    sr.mac.data = mac;
    sr.mac.len = sizeof(mac);
    rq.kind_case = TRACE__WIRE__V1__REQUEST__KIND_SEALED;
    rq.sealed = &sr;
    return pack_request(&rq, b, alloc, out, len);
}
