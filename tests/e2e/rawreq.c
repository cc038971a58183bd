/* SPDX-License-Identifier: Apache-2.0 */
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
 *       a signed request (`head` a typed Call, any other command an
 *       Exec, which the daemon refuses); options:
 *       --save PATH      also write the request bytes to PATH
 *       --bad-sig        flip a bit of the signature
 *       --skew SECONDS   move the timestamp
 *       --skew-ms MS     move the timestamp by milliseconds
 *       --time-us T      sign this time (microseconds since the epoch)
 *       --truncate N     send only the first N bytes
 *   rawreq URL hello                        print the daemon's max-message
 *   rawreq URL resend PATH SECONDS MS       send a saved request again
 *                                           every MS ms for SECONDS; one
 *                                           line `MS-SINCE-START code=N`
 *                                           per answer
 *   rawreq URL flood KEY PARTY SECONDS      signed requests (an unknown
 *                                           command) as fast as answered,
 *                                           on 4 sockets; prints the count
 *                                           of each answer code
 *   rawreq URL hold N SECONDS               N raw connections that do the
 *                                           SP handshake as a REQ peer and
 *                                           then stay silent; prints how
 *                                           many connected and how many
 *                                           the daemon closed
 *   rawreq URL junk N BYTES SECONDS [partial] [FROM...]
 *                                           N raw connections, each sending
 *                                           BYTES of random junk as one
 *                                           message, again after each
 *                                           answer (partial: all but the
 *                                           last byte, then silence; FROM:
 *                                           local addresses to connect from,
 *                                           in turn); prints the counts
 *   rawreq URL chatty N SECONDS             N raw connections that send an
 *                                           unsigned Hello every 400 ms
 *   rawreq URL session KEY PARTY WAIT -- COMMAND ARGS...
 *                                           opens a session and sends the
 *                                           Exec in it: numbers 1, 1 again,
 *                                           3, 2, a bad MAC, from another
 *                                           connection, an OpenSession in
 *                                           the session, then after WAIT
 *                                           seconds once more; one line
 *                                           `STEP code=N gone=G` per answer
 *   rawreq URL jobs KEY PARTY OTHERKEY OTHERPARTY
 *                                           verify jobs: two started and
 *                                           cancelled, a third refused,
 *                                           polled by another party, then
 *                                           to their ends; one line
 *                                           `NAME code=N done=D
 *                                           cancelled=C MESSAGE` each
 *   rawreq URL client KEYS PARTY WAIT       tracectl's own client: `head`
 *                                           twice as PARTY (signed, then in
 *                                           a session), then again after
 *                                           WAIT seconds (its session
 *                                           expired: opened again); prints
 *                                           the exit codes
 *
 * Prints the daemon's answer as `code=N message` and the Exec output,
 * and exits 0 if an answer came, 6 if none did.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include "trace/key.h"
#include "tracectl.h"
#include "trace/trace.h"
#include "wire.h"

/* The request's operation: `head` is a typed Call (ops.proto), any
 * other command an Exec of its argv. */
static void set_op(Trace__Wire__V1__RequestBody *body,
                   Trace__Wire__V1__Exec *ex)
{
    static Trace__Ops__V1__Head hd = TRACE__OPS__V1__HEAD__INIT;
    static ops_call_t head = TRACE__OPS__V1__CALL__INIT;

    if (ex->n_argv == 1 && strcmp(ex->argv[0], "head") == 0) {
        head.op_case = TRACE__OPS__V1__CALL__OP_HEAD;
        head.head = &hd;
        body->op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_CALL;
        body->call = &head;
        return;
    }
    body->op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_EXEC;
    body->exec = ex;
}

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
    int bad_sig = 0, i = 2, has_time = 0;
    long skew = 0, skew_ms = 0, truncate_to = -1;
    long long time_us = 0;
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
        else if (strcmp(argv[i], "--skew-ms") == 0 && i + 1 < argc)
            skew_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--time-us") == 0 && i + 1 < argc) {
            time_us = strtoll(argv[++i], NULL, 10);
            has_time = 1;
        } else if (strcmp(argv[i], "--truncate") == 0 && i + 1 < argc)
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
    body.time_us = has_time ? (int64_t)time_us
                            : wire_now_us() + (int64_t)skew * 1000000 +
                                  (int64_t)skew_ms * 1000;
    set_op(&body, &ex);
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

static int64_t ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - t0->tv_sec) * 1000 +
           (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int answer_code(const void *buf, size_t len)
{
    Trace__Wire__V1__Response *resp =
        trace__wire__v1__response__unpack(NULL, len, buf);
    int code = resp ? resp->code : -1;
    if (resp)
        trace__wire__v1__response__free_unpacked(resp, NULL);
    return code;
}

static int hello(nng_socket s)
{
    static const uint8_t req[] = {0x12, 0x00}; /* Request{hello{}} */
    Trace__Wire__V1__Response *resp;
    void *in = NULL;
    size_t inlen = 0;

    if (nng_send(s, (void *)req, sizeof(req), 0) != 0 ||
        nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC) != 0)
        return 6;
    resp = trace__wire__v1__response__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    if (!resp || !resp->hello)
        return 6;
    printf("%llu\n", (unsigned long long)resp->hello->max_message);
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return 0;
}

static int resend(nng_socket s, const char *path, int seconds, int every_ms)
{
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    struct timespec t0;

    if (f)
        fclose(f);
    if (!n)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < (int64_t)seconds * 1000) {
        void *in = NULL;
        size_t inlen = 0;
        int64_t at = ms_since(&t0);
        if (nng_send(s, buf, n, 0) == 0 &&
            nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC) == 0) {
            printf("%lld code=%d\n", (long long)at, answer_code(in, inlen));
            fflush(stdout);
            nng_free(in, inlen);
        }
        struct timespec d = {every_ms / 1000, (every_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
    return 0;
}

/* flood: requests that are cheap to answer (an unknown command) */
static atomic_long flood_counts[8];

struct flood_arg {
    const char *url;
    trace_key *key;
    const char *party;
    int seconds;
};

static void *flood_main(void *p)
{
    struct flood_arg *fa = p;
    Trace__Wire__V1__Exec ex = TRACE__WIRE__V1__EXEC__INIT;
    char *argv[] = {"nothing"};
    struct timespec t0;
    nng_socket s;

    if (nng_req0_open(&s) != 0)
        return NULL;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (nng_dial(s, fa->url, NULL, 0) != 0) {
        nng_close(s);
        return NULL;
    }
    ex.n_argv = 1;
    ex.argv = argv;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < (int64_t)fa->seconds * 1000) {
        Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
        uint8_t nonce[WIRE_NONCE_LEN], *out;
        size_t len;
        nng_msg *m;
        int code;

        body.party = (char *)fa->party;
        body.key_id.data = (uint8_t *)trace_key_id(fa->key);
        body.key_id.len = TRACE_KEY_ID_LEN;
        wire_random(nonce, sizeof(nonce));
        body.nonce.data = nonce;
        body.nonce.len = sizeof(nonce);
        body.time_us = wire_now_us();
        set_op(&body, &ex);
        if (wire_sign_request(fa->key, &body, 0, malloc, &out, &len) != 0)
            break;
        if (nng_msg_alloc(&m, len) != 0) {
            free(out);
            break;
        }
        memcpy(nng_msg_body(m), out, len);
        free(out);
        if (nng_sendmsg(s, m, 0) != 0) {
            nng_msg_free(m);
            continue;
        }
        if (nng_recvmsg(s, &m, 0) != 0)
            continue;
        code = answer_code(nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
        atomic_fetch_add(&flood_counts[code >= 0 && code < 8 ? code : 7], 1);
    }
    nng_close(s);
    return NULL;
}

static int flood(const char *url, const char *keyfile, const char *party,
                 int seconds)
{
    struct flood_arg fa = {url, NULL, party, seconds};
    pthread_t t[4];

    if (trace_key_load(&fa.key, keyfile) != TRACE_OK)
        return 1;
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, flood_main, &fa);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++)
        printf("code=%d %ld\n", i, atomic_load(&flood_counts[i]));
    trace_key_free(fa.key);
    return 0;
}

/* A raw stream connection to an ipc:// or tcp:// URL; -1 on failure. */
static int raw_connect_from(const char *url, const char *from);

/* No socket operation of the attacks blocks for long: each of them
 * (connect included) gives up after 2 s. */
static void io_timeouts(int fd)
{
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int raw_connect(const char *url)
{
    return raw_connect_from(url, NULL);
}

static int raw_connect_from(const char *url, const char *from)
{
    int fd = -1;

    if (strncmp(url, "ipc://", 6) == 0) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", url + 6);
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0 &&
            (io_timeouts(fd),
             connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)) {
            close(fd);
            fd = -1;
        }
    } else if (strncmp(url, "tcp://", 6) == 0) {
        char host[64];
        const char *colon = strrchr(url + 6, ':');
        struct sockaddr_in sin;
        if (!colon || (size_t)(colon - url - 6) >= sizeof(host))
            return -1;
        memcpy(host, url + 6, (size_t)(colon - url - 6));
        host[colon - url - 6] = '\0';
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
            return -1;
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
            return -1;
        io_timeouts(fd);
        if (from) {
            struct sockaddr_in src;
            memset(&src, 0, sizeof(src));
            src.sin_family = AF_INET;
            if (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
                bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
                close(fd);
                return -1;
            }
        }
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
            close(fd);
            fd = -1;
        }
    }
    return fd;
}

static int io_all(int fd, void *buf, size_t len, int writing)
{
    uint8_t *b = buf;
    while (len) {
        ssize_t n =
            writing ? send(fd, b, len, MSG_NOSIGNAL) : recv(fd, b, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The SP handshake of a REQ peer (protocol 0x30) with a REP daemon. */
static int sp_handshake(int fd)
{
    static const uint8_t hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    uint8_t peer[8];
    struct timeval tv = {5, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return io_all(fd, (void *)hdr, 8, 1) || io_all(fd, peer, 8, 0) ||
                   peer[1] != 'S' || peer[2] != 'P'
               ? -1
               : 0;
}

static int hold(const char *url, int n, int seconds)
{
    int *fds = calloc((size_t)n, sizeof(*fds)), up = 0, closed = 0;
    struct timespec t0;

    for (int i = 0; i < n; i++) {
        fds[i] = raw_connect(url);
        if (fds[i] >= 0 && sp_handshake(fds[i]) == 0) {
            up++;
        } else if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    printf("connected %d\n", up);
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < (int64_t)seconds * 1000) {
        struct timespec d = {0, 100 * 1000000L};
        nanosleep(&d, NULL);
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        struct pollfd pf = {fds[i], POLLIN, 0};
        char c;
        if (poll(&pf, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)
            closed++;
        close(fds[i]);
    }
    printf("closed by the daemon %d\n", closed);
    free(fds);
    return 0;
}

struct junk_arg {
    const char *url;
    size_t bytes;
    int seconds;
    int partial;
    const char *from;
};
static atomic_long junk_sent, junk_answered;

static void *junk_main(void *p)
{
    struct junk_arg *ja = p;
    uint8_t *buf = malloc(ja->bytes + 8), len8[8];
    struct timespec t0;
    int fd = -1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    wire_random(buf + 8, ja->bytes > 4096 ? 4096 : ja->bytes);
    for (size_t i = 4096; i < ja->bytes; i++)
        buf[8 + i] = (uint8_t)(i * 131);
    for (int k = 0; k < 8; k++)
        buf[k] = (uint8_t)((uint64_t)ja->bytes >> (56 - 8 * k));
    while (ms_since(&t0) < (int64_t)ja->seconds * 1000) {
        uint64_t n = 0;
        if (fd < 0 && ((fd = raw_connect_from(ja->url, ja->from)) < 0 ||
                       sp_handshake(fd))) {
            if (fd >= 0)
                close(fd);
            fd = -1;
            struct timespec d = {0, 50 * 1000000L};
            nanosleep(&d, NULL);
            continue;
        }
        if (io_all(fd, buf, ja->bytes + 8 - (ja->partial ? 1 : 0), 1) != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        atomic_fetch_add(&junk_sent, 1);
        if (ja->partial) {
            /* hold it unfinished until the daemon closes the connection
             * or time is up */
            struct pollfd pf = {fd, POLLIN, 0};
            char c;
            while (ms_since(&t0) < (int64_t)ja->seconds * 1000)
                if (poll(&pf, 1, 100) == 1) {
                    if (recv(fd, &c, 1, 0) <= 0)
                        break;
                }
            close(fd);
            fd = -1;
            continue;
        }
        if (io_all(fd, len8, 8, 0) != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        for (int k = 0; k < 8; k++)
            n = (n << 8) | len8[k];
        if (n > (1u << 20)) {
            close(fd);
            fd = -1;
            continue;
        }
        uint8_t *ans = malloc(n + 1);
        if (io_all(fd, ans, n, 0) == 0)
            atomic_fetch_add(&junk_answered, 1);
        free(ans);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static int junk(const char *url, int n, size_t bytes, int seconds, int argc,
                char **argv)
{
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    struct junk_arg *ja = calloc((size_t)n, sizeof(*ja));
    int partial = argc > 0 && strcmp(argv[0], "partial") == 0;
    int n_from = argc - partial;

    for (int i = 0; i < n; i++) {
        ja[i] =
            (struct junk_arg){url, bytes, seconds, partial,
                              n_from > 0 ? argv[partial + i % n_from] : NULL};
        pthread_create(&t[i], NULL, junk_main, &ja[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(ja);
    printf("sent %ld answered %ld\n", atomic_load(&junk_sent),
           atomic_load(&junk_answered));
    free(t);
    return 0;
}

/* chatty: connections that keep sending unsigned Hello requests */
struct chatty_arg {
    const char *url;
    int seconds;
};
static atomic_long chatty_answered, chatty_closed;

static void *chatty_main(void *p)
{
    struct chatty_arg *ca = p;
    /* framed: u64be length 6, the REQ request id (high bit set), then
     * Request{hello{}} */
    static const uint8_t msg[14] = {0, 0,    0, 0, 0, 0,    0,
                                    6, 0x80, 0, 0, 1, 0x12, 0x00};
    struct timespec t0;
    uint8_t len8[8], ans[4096];
    int fd = raw_connect(ca->url);

    if (fd < 0 || sp_handshake(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < (int64_t)ca->seconds * 1000) {
        uint64_t n = 0;
        if (io_all(fd, (void *)msg, sizeof(msg), 1) != 0 ||
            io_all(fd, len8, 8, 0) != 0) {
            atomic_fetch_add(&chatty_closed, 1);
            break;
        }
        for (int k = 0; k < 8; k++)
            n = (n << 8) | len8[k];
        if (n > sizeof(ans) || io_all(fd, ans, n, 0) != 0) {
            atomic_fetch_add(&chatty_closed, 1);
            break;
        }
        atomic_fetch_add(&chatty_answered, 1);
        struct timespec d = {0, 400 * 1000000L};
        nanosleep(&d, NULL);
    }
    close(fd);
    return NULL;
}

static int chatty(const char *url, int n, int seconds)
{
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    struct chatty_arg ca = {url, seconds};

    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, chatty_main, &ca);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("hellos answered %ld, connections closed by the daemon %ld\n",
           atomic_load(&chatty_answered), atomic_load(&chatty_closed));
    free(t);
    return 0;
}

/* One request and its answer's code and session_gone; -1 if none. */
static int ask(nng_socket s, const uint8_t *buf, size_t len, int *gone)
{
    Trace__Wire__V1__Response *resp;
    void *in = NULL;
    size_t inlen = 0;
    int code;

    *gone = 0;
    if (nng_send(s, (void *)buf, len, 0) != 0 ||
        nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC) != 0)
        return -1;
    resp = trace__wire__v1__response__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    if (!resp)
        return -1;
    code = resp->code;
    *gone = resp->has_session_gone && resp->session_gone;
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return code;
}

static int session_steps(const char *url, int argc, char **argv)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__OpenSession os = TRACE__WIRE__V1__OPEN_SESSION__INIT;
    Trace__Wire__V1__Exec ex = TRACE__WIRE__V1__EXEC__INIT;
    Trace__Wire__V1__Response *resp;
    uint8_t nonce[WIRE_NONCE_LEN] = {0}, priv[32], pub[32], key[32];
    uint8_t id[WIRE_SESSION_ID_LEN], *buf;
    void *in = NULL;
    size_t len, inlen = 0;
    nng_socket s, s2;
    trace_key *k;
    int i, gone, code;

    if (argc < 5 || strcmp(argv[3], "--") != 0 ||
        trace_key_load(&k, argv[0]) != TRACE_OK) {
        fprintf(stderr, "rawreq: session KEY PARTY WAIT -- COMMAND\n");
        return 1;
    }
    if (nng_req0_open(&s) || nng_req0_open(&s2) ||
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000) ||
        nng_socket_set_ms(s2, NNG_OPT_RECVTIMEO, 10000) ||
        nng_dial(s, url, NULL, 0) || nng_dial(s2, url, NULL, 0))
        return 6;
    body.party = argv[1];
    body.key_id.data = (uint8_t *)trace_key_id(k);
    body.key_id.len = TRACE_KEY_ID_LEN;
    body.nonce.len = sizeof(nonce);
    body.nonce.data = nonce;
    body.time_us = wire_now_us();
    if (wire_random(nonce, sizeof(nonce)) || wire_x25519_new(priv, pub))
        return 6;
    os.share.data = pub;
    os.share.len = sizeof(pub);
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_OPEN_SESSION;
    body.open_session = &os;
    if (wire_sign_request(k, &body, 0, malloc, &buf, &len) ||
        nng_send(s, buf, len, 0) || nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC))
        return 6;
    free(buf);
    resp = trace__wire__v1__response__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    printf("open code=%d\n", resp ? resp->code : -1);
    if (!resp || !resp->session || resp->session->session.len != sizeof(id) ||
        resp->session->share.len != 32 ||
        wire_session_key(key, priv, resp->session->share.data,
                         resp->session->session.data, pub,
                         resp->session->share.data))
        return 6;
    memcpy(id, resp->session->session.data, sizeof(id));
    trace__wire__v1__response__free_unpacked(resp, NULL);
    memset(nonce, 0, sizeof(nonce));
    ex.n_argv = (size_t)(argc - 4);
    ex.argv = argv + 4;
    static const struct {
        const char *step;
        uint64_t seq;
        int bad_mac, other, open, wait;
    } steps[] = {{"first", 1, 0, 0, 0, 0},  {"again", 1, 0, 0, 0, 0},
                 {"skip", 3, 0, 0, 0, 0},   {"back", 2, 0, 0, 0, 0},
                 {"badmac", 4, 1, 0, 0, 0}, {"other", 5, 0, 1, 0, 0},
                 {"reopen", 6, 0, 0, 1, 0}, {"later", 7, 0, 0, 0, 1}};
    for (i = 0; i < (int)(sizeof(steps) / sizeof(steps[0])); i++) {
        if (steps[i].wait)
            sleep((unsigned)atoi(argv[2]));
        if (steps[i].open) {
            body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_OPEN_SESSION;
            body.open_session = &os;
        } else
            set_op(&body, &ex);
        if (wire_seal_request(key, id, steps[i].seq, &body, malloc, &buf, &len))
            return 6;
        if (steps[i].bad_mac)
            buf[len - 3] ^= 1; /* the MAC is the last field */
        code = ask(steps[i].other ? s2 : s, buf, len, &gone);
        free(buf);
        printf("%s code=%d gone=%d\n", steps[i].step, code, gone);
    }
    trace_key_free(k);
    nng_close(s);
    nng_close(s2);
    return 0;
}

/* tracectl's client (remote.c) across an expired session. */
static int client_steps(const char *url, char *keys, char *party, int wait)
{
    struct globals g;
    Trace__Ops__V1__Head hd = TRACE__OPS__V1__HEAD__INIT;
    ops_call_t head = TRACE__OPS__V1__CALL__INIT;
    int a, b;

    ctl_out = stdout;
    ctl_err = stderr;
    memset(&g, 0, sizeof(g));
    g.connect = url;
    g.keys = keys;
    g.as = party;
    if (remote_open(&g) != 0)
        return 6;
    head.op_case = TRACE__OPS__V1__CALL__OP_HEAD;
    head.head = &hd;
    /* the first request is signed, the second opens a session, which
     * expires during the wait: the third opens another */
    a = remote_call(&g, &head);
    if (a == 0)
        a = remote_call(&g, &head);
    sleep((unsigned)wait);
    b = remote_call(&g, &head);
    remote_close(&g);
    printf("client %d %d\n", a, b);
    return 0;
}

/* A JobControl signed by k as party; the answer or NULL. */
static Trace__Wire__V1__Response *job_send(nng_socket s, trace_key *k,
                                           const char *party,
                                           Trace__Wire__V1__JobControl *jc)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    uint8_t nonce[WIRE_NONCE_LEN], *buf;
    void *in = NULL;
    size_t len, inlen = 0;
    Trace__Wire__V1__Response *resp;

    body.party = (char *)party;
    body.key_id.data = (uint8_t *)trace_key_id(k);
    body.key_id.len = TRACE_KEY_ID_LEN;
    if (wire_random(nonce, sizeof(nonce)) != 0)
        return NULL;
    body.nonce.data = nonce;
    body.nonce.len = sizeof(nonce);
    body.time_us = wire_now_us();
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_JOB;
    body.job = jc;
    if (wire_sign_request(k, &body, 0, malloc, &buf, &len) != 0)
        return NULL;
    if (nng_send(s, buf, len, 0) != 0 ||
        nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC) != 0) {
        free(buf);
        return NULL;
    }
    free(buf);
    resp = trace__wire__v1__response__unpack(NULL, inlen, in);
    nng_free(in, inlen);
    return resp;
}

/* Prints `NAME code=N done=D cancelled=C MESSAGE` for an answer. */
static void job_line(const char *name, Trace__Wire__V1__Response *r)
{
    printf("%s code=%d done=%d cancelled=%d %s\n", name, r ? r->code : -1,
           r && r->job ? (int)r->job->done : -1,
           r && r->job ? (int)r->job->cancelled : -1,
           r && r->message ? r->message : "");
    fflush(stdout);
}

/* rawreq URL jobs KEY PARTY OTHERKEY OTHERPARTY: verify jobs as PARTY:
 * A started and at once cancelled, B started and cancelled, a third
 * refused (two per party), A polled by OTHERPARTY (not found), A and B
 * polled to their ends, A polled once more (forgotten). */
static int job_steps(const char *url, int argc, char **argv)
{
    static Trace__Ops__V1__Verify v = TRACE__OPS__V1__VERIFY__INIT;
    Trace__Wire__V1__JobControl jc = TRACE__WIRE__V1__JOB_CONTROL__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    Trace__Wire__V1__Response *r;
    trace_key *k, *other;
    uint64_t id[2] = {0, 0};
    nng_socket s;

    if (argc < 4 || trace_key_load(&k, argv[0]) != TRACE_OK ||
        trace_key_load(&other, argv[2]) != TRACE_OK) {
        fprintf(stderr, "rawreq: jobs KEY PARTY OTHERKEY OTHERPARTY\n");
        return 1;
    }
    if (nng_req0_open(&s) || nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 60000) ||
        nng_dial(s, url, NULL, 0))
        return 6;
    call.op_case = TRACE__OPS__V1__CALL__OP_VERIFY;
    call.verify = &v;
    for (int i = 0; i < 3; i++) {
        static const char *const names[] = {"A", "B", "C"};
        jc.what_case = TRACE__WIRE__V1__JOB_CONTROL__WHAT_START;
        jc.start = &call;
        r = job_send(s, k, argv[1], &jc);
        job_line(names[i], r);
        if (i < 2 && r && r->job)
            id[i] = r->job->id;
        if (r)
            trace__wire__v1__response__free_unpacked(r, NULL);
        if (i < 2) {
            jc.what_case = TRACE__WIRE__V1__JOB_CONTROL__WHAT_CANCEL;
            jc.cancel = id[i];
            r = job_send(s, k, argv[1], &jc);
            if (r)
                trace__wire__v1__response__free_unpacked(r, NULL);
        }
    }
    jc.what_case = TRACE__WIRE__V1__JOB_CONTROL__WHAT_POLL;
    jc.poll = id[0];
    r = job_send(s, other, argv[3], &jc);
    job_line("other", r);
    if (r)
        trace__wire__v1__response__free_unpacked(r, NULL);
    for (int i = 0; i < 2; i++) {
        for (int tries = 0; tries < 600; tries++) {
            struct timespec d = {0, 100 * 1000000};
            jc.poll = id[i];
            r = job_send(s, k, argv[1], &jc);
            if (!r || !r->job || r->job->done) {
                job_line(i ? "B end" : "A end", r);
                if (r)
                    trace__wire__v1__response__free_unpacked(r, NULL);
                break;
            }
            trace__wire__v1__response__free_unpacked(r, NULL);
            nanosleep(&d, NULL);
        }
    }
    jc.poll = id[0];
    r = job_send(s, k, argv[1], &jc);
    job_line("A again", r);
    if (r)
        trace__wire__v1__response__free_unpacked(r, NULL);
    nng_close(s);
    trace_key_free(k);
    trace_key_free(other);
    return 0;
}

int main(int argc, char **argv)
{
    nng_socket s;
    int rv, ret = 1;

    if (argc < 3 || (argc < 4 && strcmp(argv[2], "hello") != 0)) {
        fprintf(stderr, "usage: see the comment at the top of rawreq.c\n");
        return 1;
    }
    atexit(nng_fini);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[2], "hold") == 0 && argc > 4)
        return hold(argv[1], atoi(argv[3]), atoi(argv[4]));
    if (strcmp(argv[2], "flood") == 0 && argc > 5)
        return flood(argv[1], argv[3], argv[4], atoi(argv[5]));
    if (strcmp(argv[2], "junk") == 0 && argc > 5)
        return junk(argv[1], atoi(argv[3]), (size_t)atol(argv[4]),
                    atoi(argv[5]), argc - 6, argv + 6);
    if (strcmp(argv[2], "chatty") == 0 && argc > 4)
        return chatty(argv[1], atoi(argv[3]), atoi(argv[4]));
    if (strcmp(argv[2], "session") == 0)
        return session_steps(argv[1], argc - 3, argv + 3);
    if (strcmp(argv[2], "jobs") == 0)
        return job_steps(argv[1], argc - 3, argv + 3);
    if (strcmp(argv[2], "client") == 0 && argc > 5)
        return client_steps(argv[1], argv[3], argv[4], atoi(argv[5]));
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
    } else if (strcmp(argv[2], "hello") == 0) {
        ret = hello(s);
    } else if (strcmp(argv[2], "resend") == 0 && argc > 5) {
        ret = resend(s, argv[3], atoi(argv[4]), atoi(argv[5]));
    }
    nng_close(s);
    return ret;
}
