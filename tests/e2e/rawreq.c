/*
 * rawreq - sends hand-made requests to traced, for the daemon's
 * end-to-end tests (bad signatures, replays, skewed clocks, garbage,
 * truncated and oversized messages, silent clients).
 *
 *   rawreq URL bytes HEX                    send these bytes
 *   rawreq URL random N                     N random bytes
 *   rawreq URL silent SECONDS               connect, send nothing, wait
 *   rawreq URL file PATH                    send a saved request again
 *   rawreq URL sub TOPIC SECONDS            print what a PUB socket
 *                                           publishes under TOPIC
 *   rawreq URL signed KEY PARTY [options] -- COMMAND ARGS...
 *       a signed Exec request; options:
 *       --save PATH      also write the request bytes to PATH
 *       --bad-sig        flip a bit of the signature
 *       --skew SECONDS   move the timestamp
 *       --truncate N     send only the first N bytes
 *
 * Prints the daemon's answer as `code=N message` and the Exec output,
 * and exits 0 if an answer came, 6 if none did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include "trace/key.h"
#include "trace/trace.h"
#include "wire.h"

static int send_and_print(nng_socket s, const uint8_t *buf, size_t len)
{
    Trace__Wire__V1__Response *resp;
    void *in = NULL;
    size_t inlen = 0;
    int rv;

    if ((rv = nng_send(s, (void *)buf, len, 0)) != 0) {
        printf("send: %s\n", nng_strerror(rv));
        return 6;
    }
    if ((rv = nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC)) != 0) {
        printf("recv: %s\n", nng_strerror(rv));
        return 6;
    }
    resp = trace__wire__v1__response__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    if (!resp) {
        printf("undecodable answer\n");
        return 6;
    }
    printf("code=%d %s\n", resp->code, resp->message ? resp->message : "");
    if (resp->has_out && resp->out.len)
        fwrite(resp->out.data, 1, resp->out.len, stdout);
    if (resp->has_err && resp->err.len)
        fwrite(resp->err.data, 1, resp->err.len, stdout);
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return 0;
}

static int signed_request(nng_socket s, int argc, char **argv)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__Exec ex = TRACE__WIRE__V1__EXEC__INIT;
    const char *save = NULL;
    int bad_sig = 0, i = 2;
    long skew = 0, truncate_to = -1;
    uint8_t nonce[WIRE_NONCE_LEN], *out;
    trace_key *key;
    size_t len;
    int ret;

    if (argc < 4 || trace_key_load(&key, argv[0]) != TRACE_OK) {
        fprintf(stderr, "rawreq: signed KEY PARTY [options] -- COMMAND\n");
        return 1;
    }
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--save") == 0 && i + 1 < argc)
            save = argv[++i];
        else if (strcmp(argv[i], "--bad-sig") == 0)
            bad_sig = 1;
        else if (strcmp(argv[i], "--skew") == 0 && i + 1 < argc)
            skew = atol(argv[++i]);
        else if (strcmp(argv[i], "--truncate") == 0 && i + 1 < argc)
            truncate_to = atol(argv[++i]);
    }
    if (i >= argc - 1)
        return 1;
    ex.n_argv = (size_t)(argc - i - 1);
    ex.argv = argv + i + 1;
    body.party = argv[1];
    body.key_id.data = (uint8_t *)trace_key_id(key);
    body.key_id.len = TRACE_KEY_ID_LEN;
    wire_random(nonce, sizeof(nonce));
    body.nonce.data = nonce;
    body.nonce.len = sizeof(nonce);
    body.time_us = wire_now_us() + (int64_t)skew * 1000000;
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_EXEC;
    body.exec = &ex;
    if (wire_sign_request(key, &body, bad_sig, malloc, &out, &len) != 0)
        return 1;
    if (save) {
        FILE *f = fopen(save, "wb");
        if (f) {
            fwrite(out, 1, len, f);
            fclose(f);
        }
    }
    if (truncate_to >= 0 && (size_t)truncate_to < len)
        len = (size_t)truncate_to;
    ret = send_and_print(s, out, len);
    free(out);
    trace_key_free(key);
    return ret;
}

int main(int argc, char **argv)
{
    nng_socket s;
    int rv, ret = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: see the comment at the top of rawreq.c\n");
        return 1;
    }
    atexit(nng_fini);
    if (strcmp(argv[2], "sub") == 0 && argc > 4) {
        /* one line per message: the topic, then the rest as text or, for
         * a checkpoint, its size */
        if (nng_sub0_open(&s) != 0 ||
            nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, argv[3],
                           strlen(argv[3])) ||
            nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 200) ||
            /* redial fast: the publisher may start after us */
            nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 10) ||
            nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 50) ||
            nng_dial(s, argv[1], NULL, NNG_FLAG_NONBLOCK))
            return 6;
        for (int i = 0; i < atoi(argv[4]) * 5; i++) {
            char *buf = NULL;
            size_t len = 0;
            if (nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) != 0)
                continue;
            if (strncmp(buf, WIRE_HEAD_TOPIC, strlen(WIRE_HEAD_TOPIC)) == 0) {
                Trace__Wire__V1__Checkpoint *cp =
                    trace__wire__v1__checkpoint__unpack(
                        NULL, len - strlen(WIRE_HEAD_TOPIC),
                        (uint8_t *)buf + strlen(WIRE_HEAD_TOPIC));
                printf("head %llu\n", cp ? (unsigned long long)cp->size : 0ULL);
                if (cp)
                    trace__wire__v1__checkpoint__free_unpacked(cp, NULL);
            } else {
                printf("%.*s\n", (int)len, buf);
            }
            fflush(stdout);
            nng_free(buf, len);
        }
        nng_close(s);
        return 0;
    }
    if ((rv = nng_req0_open(&s)) != 0)
        return 6;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 10000);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if ((rv = nng_dial(s, argv[1], NULL, 0)) != 0) {
        printf("dial: %s\n", nng_strerror(rv));
        return 6;
    }
    if (strcmp(argv[2], "bytes") == 0) {
        size_t n = strlen(argv[3]) / 2;
        uint8_t *buf = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            sscanf(argv[3] + 2 * i, "%2hhx", &buf[i]);
        ret = send_and_print(s, buf, n);
        free(buf);
    } else if (strcmp(argv[2], "random") == 0) {
        size_t n = (size_t)atol(argv[3]);
        uint8_t *buf = malloc(n + 1);
        wire_random(buf, n);
        ret = send_and_print(s, buf, n);
        free(buf);
    } else if (strcmp(argv[2], "silent") == 0) {
        sleep((unsigned)atoi(argv[3]));
        ret = 0;
    } else if (strcmp(argv[2], "file") == 0) {
        FILE *f = fopen(argv[3], "rb");
        uint8_t buf[1 << 16];
        size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
        if (f)
            fclose(f);
        ret = send_and_print(s, buf, n);
    } else if (strcmp(argv[2], "signed") == 0) {
        ret = signed_request(s, argc - 3, argv + 3);
    }
    nng_close(s);
    return ret;
}
