/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote.c - tracectl --connect: the connection to traced and its
 * requests.
 *
 * remote_open dials, says Hello (the daemon's features, zone and
 * health) and loads the acting party's key; remote_request sends one
 * RequestBody: signed by the acting party (--as, default the root
 * regulator) with a fresh nonce and the time, or, from a connection's
 * second request on, MACed in a session.  What is sent lives in
 * remote_ops.c (typed operations, jobs, following heads and alerts) and
 * remote_write.c (Prepare and Commit of imports and records).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <openssl/crypto.h>

#include "remote_int.h"

#define DEFAULT_TIMEOUT_MS 300000

/* A party's session on this connection. */
struct rsession {
    char party[72];
    uint8_t id[WIRE_SESSION_ID_LEN];
    uint8_t key[32];
    uint64_t seq; /* the last number used */
};

int remote_transport_error(const char *url, const char *what, int rv)
{
    fprintf(ctl_err, "tracectl: %s %s: %s\n", what, url, nng_strerror(rv));
    return 6;
}

/* TLS for tls+tcp:// URLs: --tls-ca checks the daemon, --tls-cert (a PEM
 * file with the certificate and its key) identifies us. */
static int tls_setup(struct globals *g, struct remote *r, nng_dialer d,
                     nng_tls_mode mode)
{
    int rv;

    if ((rv = nng_tls_config_alloc(&r->tls, mode)) != 0)
        return rv;
    if (g->tls_ca) {
        if ((rv = nng_tls_config_ca_file(r->tls, g->tls_ca)) != 0)
            return rv;
        nng_tls_config_auth_mode(r->tls, NNG_TLS_AUTH_MODE_REQUIRED);
    } else {
        nng_tls_config_auth_mode(r->tls, NNG_TLS_AUTH_MODE_NONE);
    }
    if (g->tls_cert &&
        (rv = nng_tls_config_cert_key_file(r->tls, g->tls_cert, NULL)) != 0)
        return rv;
    return nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, r->tls);
}

/* Sends request bytes (from nng_alloc; nng takes them) and unpacks the
 * Response (NULL: printed why); with `reset` non-NULL a connection the
 * daemon closed under the request sets *reset and prints nothing. */
static Trace__Wire__V1__Response *roundtrip_quiet(struct globals *g,
                                                  uint8_t *buf, size_t len,
                                                  int *ret, int *reset)
{
    struct remote *r = g->remote;
    Trace__Wire__V1__Response *resp;
    void *in = NULL;
    size_t inlen = 0;
    int rv;

    *ret = 6;
    if (r->max_message && len > r->max_message) {
        nng_free(buf, len);
        fprintf(ctl_err,
                "tracectl: the request (%zu bytes) is larger than the daemon "
                "accepts (%llu): split the input\n",
                len, (unsigned long long)r->max_message);
        *ret = 2;
        return NULL;
    }
    if ((rv = nng_send(r->sock, buf, len, NNG_FLAG_ALLOC)) != 0) {
        nng_free(buf, len);
        remote_transport_error(g->connect, "cannot send to", rv);
        return NULL;
    }
    if ((rv = nng_recv(r->sock, &in, &inlen, NNG_FLAG_ALLOC)) != 0) {
        if (reset && (rv == NNG_ECONNRESET || rv == NNG_ECLOSED ||
                      rv == NNG_ECONNSHUT)) {
            *reset = 1;
            return NULL;
        }
        remote_transport_error(g->connect, "no answer from", rv);
        return NULL;
    }
    resp = trace__wire__v1__response__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    if (!resp) {
        fprintf(ctl_err, "tracectl: the daemon's answer cannot be decoded\n");
        return NULL;
    }
    *ret = 0;
    return resp;
}

/* Sends request bytes (from nng_alloc; nng takes them) and unpacks the
 * Response (NULL: printed why). */
static Trace__Wire__V1__Response *
roundtrip_bytes(struct globals *g, uint8_t *buf, size_t len, int *ret)
{
    return roundtrip_quiet(g, buf, len, ret, NULL);
}

/* nng frees pipes on its own threads: let them finish at exit. */
static pthread_once_t fini_once = PTHREAD_ONCE_INIT;

static void register_fini(void)
{
    atexit(nng_fini);
}

int remote_open(struct globals *g)
{
    Trace__Wire__V1__Request rq = TRACE__WIRE__V1__REQUEST__INIT;
    Trace__Wire__V1__Hello hello = TRACE__WIRE__V1__HELLO__INIT;
    Trace__Wire__V1__Response *resp;
    struct remote *r;
    nng_dialer d;
    int rv, ret;

    if (g->remote)
        return 0;
    pthread_once(&fini_once, register_fini);
    if (!(r = calloc(1, sizeof(*r)))) {
        fprintf(ctl_err, "tracectl: out of memory\n");
        return 6;
    }
    g->remote = r;
    if ((rv = nng_req0_open(&r->sock)) != 0) {
        ret =
            remote_transport_error(g->connect, "cannot open a socket for", rv);
        goto fail;
    }
    nng_socket_set_ms(r->sock, NNG_OPT_SENDTIMEO,
                      g->timeout_ms ? g->timeout_ms : DEFAULT_TIMEOUT_MS);
    nng_socket_set_ms(r->sock, NNG_OPT_RECVTIMEO,
                      g->timeout_ms ? g->timeout_ms : DEFAULT_TIMEOUT_MS);
    /* a request is sent once: a resend could be taken for a replay */
    nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, 0);
    if ((rv = nng_dialer_create(&d, r->sock, g->connect)) != 0) {
        ret = remote_transport_error(g->connect, "cannot use", rv);
        goto fail;
    }
    if (strncmp(g->connect, "tls+", 4) == 0 &&
        (rv = tls_setup(g, r, d, NNG_TLS_MODE_CLIENT)) != 0) {
        ret = remote_transport_error(g->connect, "TLS setup for", rv);
        goto fail;
    }
    if ((rv = nng_dialer_start(d, 0)) != 0) {
        r->dial_failed = 1;
        ret = remote_transport_error(g->connect, "cannot reach traced at", rv);
        goto fail;
    }
    rq.kind_case = TRACE__WIRE__V1__REQUEST__KIND_HELLO;
    rq.hello = &hello;
    {
        size_t hl = trace__wire__v1__request__get_packed_size(&rq);
        uint8_t *hb = nng_alloc(hl ? hl : 1);
        if (!hb) {
            ret = 6;
            goto fail;
        }
        trace__wire__v1__request__pack(&rq, hb);
        if (!(resp = roundtrip_bytes(g, hb, hl, &ret)))
            goto fail;
    }
    if (resp->code != 0 || !resp->hello ||
        resp->hello->pubkey.len != TRACE_PUBKEY_LEN ||
        resp->hello->version != WIRE_VERSION) {
        fprintf(ctl_err, "tracectl: %s does not speak this protocol: %s\n",
                g->connect, resp->message ? resp->message : "bad hello");
        trace__wire__v1__response__free_unpacked(resp, NULL);
        ret = 6;
        goto fail;
    }
    snprintf(r->regulator, sizeof(r->regulator), "%s", resp->hello->regulator);
    memcpy(r->daemon_pub, resp->hello->pubkey.data, TRACE_PUBKEY_LEN);
    r->max_message = resp->hello->max_message;
    r->features = resp->hello->has_features ? resp->hello->features : 0;
    {
        const char *e = getenv("TRACECTL_SESSIONS");
        r->no_sessions = e && strcmp(e, "0") == 0;
    }
    if (resp->hello->has_tz_min && resp->hello->tz_min >= -1440 &&
        resp->hello->tz_min <= 1440)
        ctl_tz_min = resp->hello->tz_min; /* bare dates: the ledger's days */
    if (resp->hello->pub_url)
        snprintf(r->pub_url, sizeof(r->pub_url), "%s", resp->hello->pub_url);
    {
        Trace__Wire__V1__HelloReply *h = resp->hello;
        struct remote_status *st = &r->status;
        st->version = h->version;
        snprintf(st->regulator, sizeof(st->regulator), "%s", h->regulator);
        st->has_size = h->has_size && h->has_head && h->head.len == 32;
        st->size = h->size;
        if (st->has_size)
            memcpy(st->head, h->head.data, 32);
        st->started_us = h->has_started_us ? h->started_us : 0;
        st->last_commit_us = h->has_last_commit_us ? h->last_commit_us : 0;
        st->last_reconcile_us =
            h->has_last_reconcile_us ? h->last_reconcile_us : 0;
        st->jobs = h->has_jobs ? h->jobs : 0;
        st->features = r->features;
        memcpy(st->pubkey, r->daemon_pub, TRACE_PUBKEY_LEN);
    }
    trace__wire__v1__response__free_unpacked(resp, NULL);
    if (g->hello_only)
        return 0; /* tracectl status: no key needed */

    snprintf(r->party, sizeof(r->party), "%s", g->as ? g->as : r->regulator);
    if ((rv = trace_keyring_open(&r->ring, ctl_keys_dir(g), 0)) != TRACE_OK) {
        ret = ctl_fail(rv);
        goto fail;
    }
    rv = trace_keyring_get(r->ring, r->party, &r->key);
    if (rv != TRACE_OK) {
        fprintf(ctl_err,
                "tracectl: no key for %s in %s: requests to traced are "
                "signed by the acting party (--as, --keys)\n",
                r->party, trace_keyring_dir(r->ring));
        ret = 5;
        goto fail;
    }
    return 0;
fail:
    remote_close(g);
    return ret;
}

void remote_close(struct globals *g)
{
    struct remote *r = g->remote;

    if (!r)
        return;
    nng_close(r->sock);
    /* A failed TLS dial leaves its connection to nng's reaper thread, and
     * nng 1.5.2's nng_fini() (at exit) shuts TLS down before it drains
     * the reaper: a reaper still at work then locks a destroyed mutex and
     * nng panics.  Give it time to finish first. */
    if (r->tls && r->dial_failed)
        nng_msleep(200);
    if (r->tls)
        nng_tls_config_free(r->tls);
    trace_keyring_free(r->ring);
    if (r->sess)
        OPENSSL_cleanse(r->sess, r->n_sess * sizeof(*r->sess));
    free(r->sess);
    free(r);
    g->remote = NULL;
}

int remote_act_as(struct globals *g, const char *party)
{
    struct remote *r = g->remote;
    const trace_key *key;
    int rc;

    if ((rc = trace_keyring_get(r->ring, party, &key)) != TRACE_OK)
        return rc;
    snprintf(r->party, sizeof(r->party), "%s", party);
    r->key = key;
    return TRACE_OK;
}

const char *remote_regulator(struct globals *g)
{
    return g->remote ? g->remote->regulator : "REGULATOR";
}

/* Signs `body` (its op already set) as the acting party and sends it
 * once. */
static Trace__Wire__V1__Response *
signed_once(struct globals *g, Trace__Wire__V1__RequestBody *body, int *ret,
            int *reset)
{
    struct remote *r = g->remote;
    uint8_t nonce[WIRE_NONCE_LEN], *buf;
    size_t len;

    body->party = r->party;
    body->key_id.data = (uint8_t *)trace_key_id(r->key);
    body->key_id.len = TRACE_KEY_ID_LEN;
    if (wire_random(nonce, sizeof(nonce)) != 0) {
        fprintf(ctl_err, "tracectl: no randomness for a nonce\n");
        *ret = 6;
        return NULL;
    }
    body->nonce.data = nonce;
    body->nonce.len = sizeof(nonce);
    body->time_us = wire_now_us();
    if (wire_sign_request(r->key, body, 0, nng_alloc, &buf, &len) != 0) {
        fprintf(ctl_err, "tracectl: cannot sign the request\n");
        *ret = 6;
        return NULL;
    }
    return roundtrip_quiet(g, buf, len, ret, reset);
}

/* Opens a session for the acting party (one signed request); NULL if the
 * daemon does not give one (the request is then signed instead). */
static struct rsession *session_open(struct globals *g, int *ret, int *reset)
{
    struct remote *r = g->remote;
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__OpenSession os = TRACE__WIRE__V1__OPEN_SESSION__INIT;
    Trace__Wire__V1__Response *resp;
    uint8_t priv[WIRE_SHARE_LEN], pub[WIRE_SHARE_LEN], key[32];
    struct rsession *x = NULL, *grown;
    int ok;

    if (wire_x25519_new(priv, pub) != 0)
        return NULL;
    os.share.data = pub;
    os.share.len = sizeof(pub);
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_OPEN_SESSION;
    body.open_session = &os;
    if (!(resp = signed_once(g, &body, ret, reset))) {
        OPENSSL_cleanse(priv, sizeof(priv));
        return NULL;
    }
    ok = resp->code == 0 && resp->session &&
         resp->session->session.len == WIRE_SESSION_ID_LEN &&
         resp->session->share.len == WIRE_SHARE_LEN &&
         wire_session_key(key, priv, resp->session->share.data,
                          resp->session->session.data, pub,
                          resp->session->share.data) == 0;
    OPENSSL_cleanse(priv, sizeof(priv));
    if (ok) {
        for (size_t i = 0; i < r->n_sess && !x; i++)
            if (strcmp(r->sess[i].party, r->party) == 0)
                x = &r->sess[i];
        if (!x &&
            (grown = realloc(r->sess, (r->n_sess + 1) * sizeof(*r->sess)))) {
            r->sess = grown;
            x = &r->sess[r->n_sess++];
        }
        if (x) {
            snprintf(x->party, sizeof(x->party), "%s", r->party);
            memcpy(x->id, resp->session->session.data, WIRE_SESSION_ID_LEN);
            memcpy(x->key, key, sizeof(key));
            x->seq = 0;
        }
        OPENSSL_cleanse(key, sizeof(key));
    }
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return x;
}

/* MACs `body` in session x and sends it once. */
static Trace__Wire__V1__Response *
sealed_once(struct globals *g, struct rsession *x,
            Trace__Wire__V1__RequestBody *body, int *ret, int *reset)
{
    struct remote *r = g->remote;
    static const uint8_t nonce[WIRE_NONCE_LEN]; /* not checked in a session */
    uint8_t *buf;
    size_t len;

    body->party = r->party;
    body->key_id.data = (uint8_t *)trace_key_id(r->key);
    body->key_id.len = TRACE_KEY_ID_LEN;
    body->nonce.data = (uint8_t *)nonce;
    body->nonce.len = sizeof(nonce);
    body->time_us = wire_now_us();
    if (wire_seal_request(x->key, x->id, ++x->seq, body, nng_alloc, &buf,
                          &len) != 0) {
        fprintf(ctl_err, "tracectl: cannot seal the request\n");
        *ret = 6;
        return NULL;
    }
    return roundtrip_quiet(g, buf, len, ret, reset);
}

/* Sends `body` (its op already set) once as the acting party: in its
 * session on this connection when the daemon has sessions (opened on
 * first use, and again when the daemon says it is gone), else signed. */
static Trace__Wire__V1__Response *call_once(struct globals *g,
                                            Trace__Wire__V1__RequestBody *body,
                                            int *ret, int *reset)
{
    struct remote *r = g->remote;
    Trace__Wire__V1__Response *resp;
    struct rsession *x = NULL;

    if (r->no_sessions || !(r->features & WIRE_FEATURE_SESSIONS))
        return signed_once(g, body, ret, reset);
    for (size_t i = 0; i < r->n_sess && !x; i++)
        if (strcmp(r->sess[i].party, r->party) == 0)
            x = &r->sess[i];
    /* a connection's first request is signed: a command of one request
     * (a balance at the counter) does not pay for opening a session */
    if (!x && r->signed_requests++ == 0)
        return signed_once(g, body, ret, reset);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!x || attempt == 1) {
            int lost = 0;
            x = session_open(g, ret, reset ? &lost : NULL);
            if (lost && reset)
                *reset = 1;
            if (!x)
                return lost ? NULL : signed_once(g, body, ret, reset);
        }
        resp = sealed_once(g, x, body, ret, reset);
        if (!resp || !(resp->has_session_gone && resp->session_gone))
            return resp;
        trace__wire__v1__response__free_unpacked(resp, NULL);
    }
    fprintf(ctl_err, "tracectl: the daemon keeps ending this connection's "
                     "session\n");
    *ret = 6;
    return NULL;
}

/* Signs `body` (its op already set) as the acting party and sends it.
 * The daemon may close an idle-looking connection just as a request
 * arrives (it replaces idle connections when at its limits): a request
 * lost that way is signed again, with a new nonce, and sent once more.
 * Reads are harmless to repeat, and a commit is idempotent by event id
 * (a commit stored before the connection dropped is accepted again with
 * nothing new). */
Trace__Wire__V1__Response *
remote_request(struct globals *g, Trace__Wire__V1__RequestBody *body, int *ret)
{
    Trace__Wire__V1__Response *resp;
    int reset = 0;

    resp = call_once(g, body, ret, &reset);
    if (!resp && reset) {
        reset = 0;
        resp = call_once(g, body, ret, NULL);
    }
    return resp;
}
