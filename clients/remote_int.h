/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_int.h - what the files of tracectl --connect share: the
 * connection (remote.c) and its request function.  Private to them.
 */
#ifndef TRACECTL_REMOTE_INT_H
#define TRACECTL_REMOTE_INT_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "tracectl.h"
#include "wire.h"

struct remote {
    nng_socket sock;
    nng_tls_config *tls;
    trace_keyring *ring;
    const trace_key *key; /* the acting party's */
    char party[72];
    char regulator[72];
    char pub_url[256];
    uint8_t daemon_pub[TRACE_PUBKEY_LEN];
    uint64_t max_message;
    uint32_t features; /* WIRE_FEATURE_* of the daemon */
    int dial_failed;
    /* sessions of the parties acted as on this connection (wire.proto);
     * none if TRACECTL_SESSIONS=0 or the daemon has none */
    struct rsession *sess;
    size_t n_sess;
    int no_sessions;
    unsigned signed_requests;    /* before the first session */
    struct remote_status status; /* from the Hello */
};

/* Sends `body` (its op set) as the acting party, signed or in a session,
 * once more after a connection the daemon closed; the Response, or NULL
 * with the exit code in *ret (the reason printed). */
Trace__Wire__V1__Response *
remote_request(struct globals *g, Trace__Wire__V1__RequestBody *body, int *ret);

/* Prints "tracectl: WHAT URL: nng's reason" and returns 6. */
int remote_transport_error(const char *url, const char *what, int rv);

#endif
