/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.c - SHA-256, HMAC, Ed25519 keys and encodings, through OpenSSL.
 *
 * OpenSSL types stay in this file.  One-shot hashes use a context per
 * thread and a cached EVP_MD; long-lived streams reuse their EVP_MD_CTX.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "internal.h"

struct trace_key {
    EVP_PKEY *pkey;
    uint8_t pub[TRACE_PUBKEY_LEN];
    uint8_t id[TRACE_KEY_ID_LEN];
};

struct sha256_stream {
    EVP_MD_CTX *ctx;
};

/* Fetched once for the process: a fetched EVP_MD is safe to share. */
static EVP_MD *sha256_md;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md_sha256(void)
{
    pthread_once(&md_once, md_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* Hashes run once or twice per entry on every append and verify: keep
 * one context per thread instead of allocating one per call.  A thread key
 * frees it when the thread ends (a daemon's workers come and go). */
static pthread_key_t leaf_key;
static pthread_once_t leaf_once = PTHREAD_ONCE_INIT;

static void leaf_ctx_free(void *p)
{
    EVP_MD_CTX_free(p);
}

static void leaf_key_make(void)
{
    (void)pthread_key_create(&leaf_key, leaf_ctx_free);
}

/* This thread's hashing context, made on first use. */
static EVP_MD_CTX *thread_ctx(void)
{
    static _Thread_local EVP_MD_CTX *ctx;

    if (!ctx) {
        pthread_once(&leaf_once, leaf_key_make);
        ctx = EVP_MD_CTX_new();
        pthread_setspecific(leaf_key, ctx);
    }
    return ctx;
}

void sha256(uint8_t out[TRACE_HASH_LEN], const void *data, size_t len)
{
    EVP_MD_CTX *ctx = thread_ctx();

    EVP_DigestInit_ex(ctx, md_sha256(), NULL);
    EVP_DigestUpdate(ctx, data, len);
    EVP_DigestFinal_ex(ctx, out, NULL);
}

void leaf_hash(uint8_t out[TRACE_HASH_LEN], const void *data, size_t len)
{
    EVP_MD_CTX *ctx = thread_ctx();
    static const uint8_t zero = 0;

    EVP_DigestInit_ex(ctx, md_sha256(), NULL);
    EVP_DigestUpdate(ctx, &zero, 1);
    EVP_DigestUpdate(ctx, data, len);
    EVP_DigestFinal_ex(ctx, out, NULL);
}

sha256_stream *sha256_stream_new(void)
{
    sha256_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ctx = EVP_MD_CTX_new();
    if (!s->ctx) {
        free(s);
        return NULL;
    }
    sha256_stream_reset(s);
    return s;
}

void sha256_stream_free(sha256_stream *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}

void sha256_stream_reset(sha256_stream *s)
{
    EVP_DigestInit_ex(s->ctx, md_sha256(), NULL);
}

void sha256_stream_update(sha256_stream *s, const void *data, size_t len)
{
    EVP_DigestUpdate(s->ctx, data, len);
}

void sha256_stream_final(sha256_stream *s, uint8_t out[TRACE_HASH_LEN])
{
    EVP_DigestFinal_ex(s->ctx, out, NULL);
}

void group_digest_begin(sha256_stream *s, const char *party,
                        const uint8_t key_id[TRACE_KEY_ID_LEN])
{
    static const char tag[] = "trace.v1.group\n";
    uint8_t plen = (uint8_t)strlen(party);

    sha256_stream_reset(s);
    sha256_stream_update(s, tag, sizeof(tag) - 1);
    sha256_stream_update(s, &plen, 1);
    sha256_stream_update(s, party, plen);
    sha256_stream_update(s, key_id, TRACE_KEY_ID_LEN);
}

void group_digest_end(sha256_stream *s, uint32_t n, uint8_t out[TRACE_HASH_LEN])
{
    uint8_t nb[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                     (uint8_t)n};
    sha256_stream_update(s, nb, sizeof(nb));
    sha256_stream_final(s, out);
}

int hmac_sha256(uint8_t out[32], const uint8_t *key, size_t keylen,
                const void *data, size_t len)
{
    unsigned int olen = 32;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &olen))
        return trace_fail(TRACE_EUNAVAIL, "HMAC-SHA256 failed");
    return TRACE_OK;
}

int random_bytes(uint8_t *out, size_t len)
{
    if (RAND_bytes(out, (int)len) != 1)
        return trace_fail(TRACE_EUNAVAIL, "no random bytes available");
    return TRACE_OK;
}

void hex_encode(char *out, const uint8_t *in, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int base64_encode(char *out, size_t cap, const uint8_t *in, size_t len)
{
    if (cap < 4 * ((len + 2) / 3) + 1)
        return TRACE_EINVAL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return TRACE_OK;
}

int base64_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in)
{
    size_t len = strlen(in), pad = 0;
    uint8_t tmp[4096];
    int n;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
        return TRACE_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              (c == '=' && i >= len - 2)))
            return TRACE_EINVAL;
    }
    if (in[len - 1] == '=')
        pad++;
    if (in[len - 2] == '=')
        pad++;
    n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n < pad || (size_t)n - pad > cap)
        return TRACE_EINVAL;
    memcpy(out, tmp, (size_t)n - pad);
    *outlen = (size_t)n - pad;
    return TRACE_OK;
}

/* Keys ----------------------------------------------------------------- */

static int key_wrap(trace_key **out, EVP_PKEY *pkey)
{
    trace_key *k = calloc(1, sizeof(*k));
    size_t len = TRACE_PUBKEY_LEN;

    if (!k) {
        EVP_PKEY_free(pkey);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    if (EVP_PKEY_get_raw_public_key(pkey, k->pub, &len) != 1 ||
        len != TRACE_PUBKEY_LEN) {
        EVP_PKEY_free(pkey);
        free(k);
        return trace_fail(TRACE_EINVAL, "not an Ed25519 key");
    }
    k->pkey = pkey;
    trace_pubkey_id(k->id, k->pub);
    *out = k;
    return TRACE_OK;
}

int trace_key_generate(trace_key **out)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    int ok = ctx && EVP_PKEY_keygen_init(ctx) == 1 &&
             EVP_PKEY_keygen(ctx, &pkey) == 1;

    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return trace_fail(TRACE_EUNAVAIL, "Ed25519 key generation failed");
    return key_wrap(out, pkey);
}

int trace_key_load(trace_key **out, const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *pkey;

    if (!f)
        return trace_fail(errno == ENOENT ? TRACE_ENOTFOUND : TRACE_EIO,
                          "%s: %s", path, errno_text(errno));
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pkey || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        return trace_fail(TRACE_EINVAL, "%s: not an Ed25519 private key", path);
    }
    return key_wrap(out, pkey);
}

static int write_pem(const char *path, mode_t mode, const trace_key *key,
                     int private, int durable)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    FILE *f;
    int ok;

    if (fd < 0)
        return trace_fail(errno == EEXIST ? TRACE_EEXIST : TRACE_EIO, "%s: %s",
                          path, errno_text(errno));
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return trace_fail(TRACE_EIO, "%s: %s", path, errno_text(errno));
    }
    ok = private ? PEM_write_PrivateKey(f, key->pkey, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_PUBKEY(f, key->pkey);
    ok = ok && fflush(f) == 0 && (!durable || fsync(fileno(f)) == 0);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        unlink(path);
        return trace_fail(TRACE_EIO, "%s: cannot write key", path);
    }
    return TRACE_OK;
}

int trace_key_save(const trace_key *key, const char *path)
{
    return key_save(key, path, 1);
}

int key_save(const trace_key *key, const char *path, int durable)
{
    char pub[4096];
    size_t len = strlen(path);
    int rc;

    if (len < 4 || strcmp(path + len - 4, ".key") != 0 || len >= sizeof(pub))
        return trace_fail(TRACE_EINVAL, "%s: key file names end in .key", path);
    snprintf(pub, sizeof(pub), "%.*s.pub", (int)(len - 4), path);
    if ((rc = write_pem(path, 0600, key, 1, durable)) != TRACE_OK)
        return rc;
    if ((rc = write_pem(pub, 0644, key, 0, durable)) != TRACE_OK &&
        rc != TRACE_EEXIST) {
        unlink(path);
        return rc;
    }
    return TRACE_OK;
}

void trace_key_free(trace_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

const uint8_t *trace_key_public(const trace_key *key)
{
    return key->pub;
}

const uint8_t *trace_key_id(const trace_key *key)
{
    return key->id;
}

int trace_key_sign(const trace_key *key, const void *msg, size_t len,
                   uint8_t sig[TRACE_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = TRACE_SIG_LEN;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 &&
             siglen == TRACE_SIG_LEN;

    EVP_MD_CTX_free(ctx);
    return ok ? TRACE_OK : trace_fail(TRACE_EUNAVAIL, "Ed25519 sign failed");
}

int trace_sig_verify(const uint8_t pub[TRACE_PUBKEY_LEN], const void *msg,
                     size_t len, const uint8_t sig[TRACE_SIG_LEN])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
                                                 TRACE_PUBKEY_LEN);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = pkey && ctx &&
             EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, TRACE_SIG_LEN, msg, len) == 1;

    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok ? TRACE_OK : trace_fail(TRACE_EVERIFY, "bad signature");
}

int trace_pubkey_parse(uint8_t out[TRACE_PUBKEY_LEN], const char *text)
{
    size_t len = 0;

    if (strncmp(text, "-----BEGIN", 10) == 0) {
        BIO *bio = BIO_new_mem_buf(text, -1);
        EVP_PKEY *pkey =
            bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        int ok;

        BIO_free(bio);
        len = TRACE_PUBKEY_LEN;
        ok = pkey && EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519 &&
             EVP_PKEY_get_raw_public_key(pkey, out, &len) == 1 &&
             len == TRACE_PUBKEY_LEN;
        EVP_PKEY_free(pkey);
        if (ok)
            return TRACE_OK;
        return trace_fail(TRACE_EINVAL, "pubkey is not an Ed25519 PEM key");
    }
    if (base64_decode(out, TRACE_PUBKEY_LEN, &len, text) != TRACE_OK ||
        len != TRACE_PUBKEY_LEN)
        return trace_fail(TRACE_EINVAL,
                          "pubkey must be PEM or base64 of 32 raw bytes");
    return TRACE_OK;
}

int trace_pubkey_format(char *out, size_t cap,
                        const uint8_t pub[TRACE_PUBKEY_LEN])
{
    return base64_encode(out, cap, pub, TRACE_PUBKEY_LEN);
}

void trace_pubkey_id(uint8_t out[TRACE_KEY_ID_LEN],
                     const uint8_t pub[TRACE_PUBKEY_LEN])
{
    uint8_t h[TRACE_HASH_LEN];
    sha256(h, pub, TRACE_PUBKEY_LEN);
    memcpy(out, h, TRACE_KEY_ID_LEN);
}

int trace_party_id_valid(const char *id)
{
    size_t n = 0;

    if (!id || id[0] == '.' || id[0] == '\0')
        return 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              c == ':'))
            return 0;
    }
    return n <= 64;
}
