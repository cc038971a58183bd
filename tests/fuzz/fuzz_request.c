/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_request.c - libFuzzer target for traced's whole request handler
 * (decoding, authentication, Call, jobs, Prepare, Commit) on a temporary
 * ledger with a regulator and one party.
 *
 * The first input byte picks the mode:
 *   even: the rest is a raw Request, sent as is (decoding, refusals);
 *   odd:  the rest is a RequestBody; if it decodes, the harness gives it
 *         a fresh nonce and time, signs it with the key of the regulator
 *         (bit 1 clear) or of the party (bit 1 set) and sends it, so the
 *         fuzzer reaches the commands, the JSON Lines parser and the
 *         commit checks behind authentication.  With bit 2 set the body
 *         keeps its own time (extreme or skewed times, checked after the
 *         signature), with bit 3 its own nonce (replays).  With bit 4 set
 *         the body goes in a session of that party instead (opened by the
 *         harness), MACed with the next number, or with bit 3 the last
 *         one again (a replay).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/ledger.h"
#include "traced.h"
#include "tracectl.h"
#include "wire.h"

static struct server *srv;
static struct config cfg;
static trace_keyring *ring;
static const trace_key *keys[2];
static const char *parties[2] = {"REGULATOR", "P1"};
static char dir[] = "/tmp/trace-fuzzreq-XXXXXX";
static uint64_t counter;

static void cleanup(void)
{
    char cmd[64];
    server_direct_close(srv);
    trace_keyring_free(ring);
    config_free(&cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void setup(void)
{
    static const char *lines[] = {
        "{\"type\":\"party\",\"id\":\"r1\",\"party\":\"REGULATOR\",\"at\":"
        "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P1\",\"name\":\"One\","
        "\"kind\":\"distributor\",\"region\":\"CN-32\",\"licenses\":"
        "[\"CN-PC-1\"]}",
        "{\"type\":\"produce\",\"id\":\"p1\",\"party\":\"P1\",\"at\":"
        "\"2026-01-08T08:00:00+08:00\",\"substance\":\"ephedrine\",\"lot\":"
        "\"L1\",\"qty\":\"5\",\"unit\":\"kg\"}"};
    char path[128], err[128];
    trace_ledger *l;
    trace_import *im;

    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/keys", dir);
    if (trace_keyring_open(&ring, path, 1) != TRACE_OK ||
        trace_keyring_generate(ring, "REGULATOR", &keys[0]) != TRACE_OK ||
        trace_ledger_init(&l, dir, keys[0], NULL) != TRACE_OK ||
        trace_import_begin(&im, l, ring, NULL, TRACE_APPEND_PROVISION_KEYS,
                           0) != TRACE_OK)
        abort();
    for (int i = 0; i < 2; i++)
        if (trace_import_line(im, lines[i], strlen(lines[i]), 1) != TRACE_OK)
            abort();
    if (trace_import_commit(im, NULL) != TRACE_OK)
        abort();
    trace_import_free(im);
    trace_ledger_close(l);
    if (trace_keyring_get(ring, "P1", &keys[1]) != TRACE_OK)
        abort();
    config_defaults(&cfg);
    config_set(&cfg, "data", dir, err, sizeof(err));
    config_set(&cfg, "rate", "0", err, sizeof(err));
    config_set(&cfg, "clock-window", "1", err, sizeof(err));
    config_set(&cfg, "replay-cache", "1048576", err, sizeof(err));
    config_set(&cfg, "max-message", "1048576", err, sizeof(err));
    log_init("error", 0);
    if (!(srv = server_direct_open(&cfg)))
        abort();
    atexit(cleanup);
}

static void send_signed(const uint8_t *data, size_t len, int who, int own_time,
                        int own_nonce, int sealed)
{
    Trace__Wire__V1__RequestBody *body;
    uint8_t nonce[WIRE_NONCE_LEN] = {0}, *out;
    size_t olen;

    body = trace__wire__v1__request_body__unpack(NULL, len, data);
    if (!body)
        return;
    char *party0 = body->party;
    ProtobufCBinaryData key0 = body->key_id, nonce0 = body->nonce;
    counter++;
    memcpy(nonce, &counter, sizeof(counter));
    body->party = (char *)parties[who];
    body->key_id.data = (uint8_t *)trace_key_id(keys[who]);
    body->key_id.len = TRACE_KEY_ID_LEN;
    if (!own_nonce || nonce0.len != WIRE_NONCE_LEN) {
        body->nonce.data = nonce;
        body->nonce.len = sizeof(nonce);
    }
    if (!own_time)
        body->time_us = wire_now_us();
    if (sealed) {
        /* one session per party, opened on first use */
        static uint8_t skey[2][32], sid[2][WIRE_SESSION_ID_LEN];
        static uint64_t seq[2];
        static int opened[2];
        if (!opened[who]) {
            if (wire_random(skey[who], 32) || wire_random(sid[who], 16) ||
                server_direct_session(srv, parties[who],
                                      trace_key_id(keys[who]), skey[who],
                                      sid[who]))
                abort();
            opened[who] = 1;
        }
        if (!own_nonce || seq[who] == 0)
            seq[who]++;
        if (wire_seal_request(skey[who], sid[who], seq[who], body, malloc, &out,
                              &olen) == 0) {
            server_direct_request(srv, out, olen);
            free(out);
        }
    } else if (wire_sign_request(keys[who], body, 0, malloc, &out, &olen) ==
               0) {
        server_direct_request(srv, out, olen);
        free(out);
    }
    /* give back what was unpacked before freeing it */
    body->party = party0;
    body->key_id = key0;
    body->nonce = nonce0;
    trace__wire__v1__request_body__free_unpacked(body, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv)
        setup();
    if (size == 0 || size > (1u << 20))
        return 0;
    if ((data[0] & 1) == 0)
        server_direct_request(srv, data + 1, size - 1);
    else
        send_signed(data + 1, size - 1, (data[0] >> 1) & 1, (data[0] >> 2) & 1,
                    (data[0] >> 3) & 1, (data[0] >> 4) & 1);
    return 0;
}
