/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.c - digests and helpers of the daemon protocol (see wire.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    *len = trace__wire__v1__request__get_packed_size(&rq);
    if (!(*out = alloc(*len ? *len : 1))) {
        free(b);
        return -1;
    }
    trace__wire__v1__request__pack(&rq, *out);
    free(b);
    return 0;
}
