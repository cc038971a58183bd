/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_daemon - durable signed appends through traced.
 *
 *   bench_daemon TRACED [EVENTS] [BATCH] [PRELOAD]
 *   bench_daemon TRACED --w3 [EVENTS]
 *   bench_daemon TRACED --reads LEDGER_DIR PARTY
 *
 * Makes a ledger in a temporary folder with 16 parties and their keys,
 * starts TRACED on it (ipc://), and measures, with clients that are
 * threads of this process doing what `tracectl --connect import` does
 * (send JSON Lines, sign the prepared events with the party's key,
 * commit):
 *   - throughput with 1, 4 and 16 concurrent clients, each a party,
 *     sending batches of BATCH events (default 10,000);
 *   - latency of single-event appends from one client at light load
 *     (p50, p99, max over 500 requests);
 *   - the daemon's peak resident memory (PRELOAD events recorded before
 *     the daemon starts show that it does not grow with the ledger).
 * With --w3, SPEC 6's counter traffic instead: 200 parties, 16
 * connections, each serving its parties in turn with one event per
 * request (prepare + sign + commit), EVENTS in all (default 20,000):
 * throughput and per-event p50/p99; then the ledger so built is verified
 * and its rate set beside this machine's Ed25519 verifications per second
 * on one and on both cores, measured in the same run.
 * With --reads, reads on an existing ledger (its keys in LEDGER_DIR/keys,
 * the regulator REGULATOR): PARTY's `balance` 500 times from one client
 * (p50/p99), 500 times by four clients at once (throughput against one),
 * and 3,000 times beside a regulator's export of everything in a loop:
 * what the daemon takes, without a process start per call.
 * Every acknowledged append is durable (fsync'd) before its answer.
 * The clients share the machine's cores with the daemon.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "trace/ledger.h"
#include "tracectl.h"

#define MAX_CLIENTS 16
#define W3_PARTIES  200

static char dir[256], url[300], keys[300];
static long per_client = 40000, batch = 10000, preload = 0;
static int n_parties = MAX_CLIENTS;

struct client {
    int idx;
    long events;
    int failed;
    double *lat; /* single-event latencies, if measuring them */
    long n_lat;
    char tag[16];
};

static void party_id(char *out, size_t cap, int i)
{
    snprintf(out, cap, "BENCH-P%03d", i);
}

static int setup(void)
{
    trace_key *rk;
    trace_ledger *l;
    trace_keyring *ring;
    trace_import *im;
    trace_append_result res;
    char path[400], line[512];
    unsigned long n = 0;

    snprintf(dir, sizeof(dir), "/tmp/trace-bench-daemon-%d", (int)getpid());
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(url, sizeof(url), "ipc://%s/traced.ipc", dir);
    if (mkdir(dir, 0700) != 0 ||
        trace_keyring_open(&ring, keys, 1) != TRACE_OK ||
        trace_key_generate(&rk) != TRACE_OK)
        return -1;
    snprintf(path, sizeof(path), "%s/REGULATOR.key", keys);
    if (trace_key_save(rk, path) != TRACE_OK ||
        trace_ledger_init(&l, dir, rk, NULL) != TRACE_OK)
        return -1;
    trace_key_free(rk);
    if (trace_import_begin(&im, l, ring, NULL, TRACE_APPEND_PROVISION_KEYS,
                           0) != TRACE_OK)
        return -1;
    for (int i = 0; i < n_parties; i++) {
        char p[32];
        party_id(p, sizeof(p), i);
        snprintf(
            line, sizeof(line),
            "{\"type\":\"party\",\"id\":\"reg-%s\",\"party\":\"REGULATOR\","
            "\"at\":\"2026-01-01T00:00:00Z\",\"subject\":\"%s\","
            "\"name\":\"Bench %d\",\"kind\":\"manufacturer\",\"region\":"
            "\"CN-31\",\"licenses\":[\"CN-PC-3\"]}",
            p, p, i);
        if (trace_import_line(im, line, strlen(line), ++n) != TRACE_OK)
            return -1;
        snprintf(line, sizeof(line),
                 "{\"type\":\"produce\",\"id\":\"first\",\"party\":\"%s\","
                 "\"at\":\"2026-01-02T00:00:00Z\",\"substance\":\"acetone\","
                 "\"lot\":\"L-%s\",\"qty\":\"1\",\"unit\":\"L\"}",
                 p, p);
        if (trace_import_line(im, line, strlen(line), ++n) != TRACE_OK)
            return -1;
    }
    for (long i = 0; i < preload; i++) {
        snprintf(
            line, sizeof(line),
            "{\"type\":\"produce\",\"id\":\"pre-%ld\",\"party\":"
            "\"BENCH-P%03ld\",\"at\":\"2026-01-03T00:00:00Z\",\"substance\":"
            "\"acetone\",\"lot\":\"PRE-%ld\",\"qty\":\"1\",\"unit\":\"L\"}",
            i, i % MAX_CLIENTS, i % 1000);
        if (trace_import_line(im, line, strlen(line), ++n) != TRACE_OK)
            return -1;
    }
    if (trace_import_commit(im, &res) != TRACE_OK)
        return -1;
    trace_import_free(im);
    trace_keyring_free(ring);
    trace_ledger_close(l);
    return 0;
}

static pid_t start_daemon(const char *traced)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(traced, traced, "--data", dir, "--listen", url, "--log-level",
              "error", "--contexts", "64", "--rate", "0", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static long peak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* A client thread's connection to the daemon, acting as party `idx`
 * (its id in party[]).  0 or -1. */
static int connect_party(struct globals *g, const char *party, FILE *out)
{
    ctl_out = out;
    ctl_err = stderr;
    memset(g, 0, sizeof(*g));
    g->connect = url;
    g->keys = keys;
    g->as = party;
    return remote_open(g) != 0 ? -1 : 0;
}

static int connect_as(struct globals *g, char *party, size_t cap, int idx)
{
    party_id(party, cap, idx);
    return connect_party(g, party, stdout);
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct globals g;
    char party[32];
    char **lines = NULL;
    size_t *lens = NULL;
    unsigned long *linenos = NULL;
    long n = c->lat ? 1 : batch;
    trace_append_result res;

    if (connect_as(&g, party, sizeof(party), c->idx) != 0) {
        c->failed = 1;
        return NULL;
    }
    lines = calloc((size_t)n, sizeof(*lines));
    lens = calloc((size_t)n, sizeof(*lens));
    linenos = calloc((size_t)n, sizeof(*linenos));
    for (long i = 0; i < n; i++) {
        lines[i] = malloc(320);
        linenos[i] = (unsigned long)i + 1;
    }
    for (long done = 0, round = 0; done < c->events; round++) {
        double t0;
        for (long i = 0; i < n; i++)
            lens[i] = (size_t)snprintf(
                lines[i], 320,
                "{\"type\":\"produce\",\"id\":\"%s-%ld-%ld\",\"party\":\"%s\","
                "\"at\":\"2026-02-01T08:00:00+08:00\",\"substance\":"
                "\"acetone\",\"lot\":\"L-%s\",\"qty\":\"1.5\",\"unit\":\"L\"}",
                c->tag, round, i, party, party);
        t0 = bench_now();
        if (remote_append(&g, lines, lens, linenos, (size_t)n, party, 0,
                          &res) != TRACE_OK ||
            res.appended != (uint64_t)n) {
            fprintf(stderr, "bench_daemon: client %d: %s\n", c->idx,
                    ctl_errmsg());
            c->failed = 1;
            break;
        }
        if (c->lat)
            c->lat[c->n_lat++] = bench_now() - t0;
        done += n;
    }
    for (long i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(lens);
    free(linenos);
    remote_close(&g);
    return NULL;
}

static int run_clients(int n, long events_each, const char *tag, double *secs)
{
    pthread_t th[MAX_CLIENTS];
    struct client cs[MAX_CLIENTS];
    double t0 = bench_now();
    int failed = 0;

    for (int i = 0; i < n; i++) {
        memset(&cs[i], 0, sizeof(cs[i]));
        cs[i].idx = i;
        cs[i].events = events_each;
        snprintf(cs[i].tag, sizeof(cs[i].tag), "%s", tag);
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        failed |= cs[i].failed;
    }
    *secs = bench_now() - t0;
    return failed ? -1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* W3: one connection serving the parties idx, idx + 16, ... in turn, one
 * event per request. */
struct w3client {
    int idx;
    long events;
    int failed;
    double *lat;
};

static void *w3_main(void *arg)
{
    struct w3client *c = arg;
    struct globals g;
    char party[32], line[320], *lines[1] = {line};
    size_t lens[1];
    unsigned long linenos[1] = {1};
    trace_append_result res;

    if (connect_as(&g, party, sizeof(party), c->idx) != 0) {
        c->failed = 1;
        return NULL;
    }
    for (long i = 0; i < c->events; i++) {
        int p =
            c->idx +
            (int)(i % ((W3_PARTIES - c->idx + MAX_CLIENTS - 1) / MAX_CLIENTS)) *
                MAX_CLIENTS;
        double t0;
        party_id(party, sizeof(party), p);
        if (remote_act_as(&g, party) != TRACE_OK) {
            c->failed = 1;
            break;
        }
        lens[0] = (size_t)snprintf(
            line, sizeof(line),
            "{\"type\":\"produce\",\"id\":\"w3-%d-%ld\",\"party\":\"%s\","
            "\"at\":\"2026-02-01T08:00:00+08:00\",\"substance\":\"acetone\","
            "\"lot\":\"L-%s\",\"qty\":\"1\",\"unit\":\"L\"}",
            c->idx, i, party, party);
        t0 = bench_now();
        if (remote_append(&g, lines, lens, linenos, 1, party, 0, &res) !=
                TRACE_OK ||
            res.appended != 1) {
            fprintf(stderr, "bench_daemon: w3 client %d: %s\n", c->idx,
                    ctl_errmsg());
            c->failed = 1;
            break;
        }
        c->lat[i] = bench_now() - t0;
    }
    remote_close(&g);
    return NULL;
}

/* Ed25519 verifications per second on `threads` threads at once. */
struct vcap {
    trace_key *key;
    uint8_t sig[TRACE_SIG_LEN], digest[32];
    long n;
};

static void *vcap_main(void *arg)
{
    struct vcap *v = arg;
    for (long i = 0; i < v->n; i++)
        if (trace_sig_verify(trace_key_public(v->key), v->digest, 32, v->sig) !=
            TRACE_OK)
            abort();
    return NULL;
}

static double verify_capacity(int threads)
{
    struct vcap v;
    pthread_t th[2];
    double t0;

    memset(&v, 0, sizeof(v));
    v.n = 20000;
    if (trace_key_generate(&v.key) != TRACE_OK ||
        trace_key_sign(v.key, v.digest, 32, v.sig) != TRACE_OK)
        return 0;
    t0 = bench_now();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, vcap_main, &v);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    t0 = bench_now() - t0;
    trace_key_free(v.key);
    return (double)v.n * threads / t0;
}

static int run_w3(const char *traced, long total)
{
    pthread_t th[MAX_CLIENTS];
    struct w3client cs[MAX_CLIENTS];
    double *all, secs, t0;
    long each = total / MAX_CLIENTS, n = 0;
    trace_ledger *l;
    trace_verify_result vr;
    pid_t pid;
    int status, failed = 0;

    n_parties = W3_PARTIES;
    if (setup() != 0) {
        fprintf(stderr, "bench_daemon: setup failed: %s\n", trace_error_last());
        return 1;
    }
    pid = start_daemon(traced);
    for (int i = 0; i < 100; i++) {
        char sock[400];
        snprintf(sock, sizeof(sock), "%s/traced.ipc", dir);
        if (access(sock, F_OK) == 0)
            break;
        usleep(50000);
    }
    usleep(300000); /* traced serves 200 ms after it starts */
    all = calloc((size_t)(each * MAX_CLIENTS), sizeof(*all));
    t0 = bench_now();
    for (int i = 0; i < MAX_CLIENTS; i++) {
        memset(&cs[i], 0, sizeof(cs[i]));
        cs[i].idx = i;
        cs[i].events = each;
        cs[i].lat = all + (size_t)i * (size_t)each;
        pthread_create(&th[i], NULL, w3_main, &cs[i]);
    }
    for (int i = 0; i < MAX_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        failed |= cs[i].failed;
    }
    secs = bench_now() - t0;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    if (failed) {
        printf("W3 failed\n");
        return 1;
    }
    n = each * MAX_CLIENTS;
    qsort(all, (size_t)n, sizeof(double), cmp_double);
    printf("W3 (%d parties, %d connections, one event per request): %ld "
           "events in %.2f s: %.0f events/s, p50 %.2f ms, p99 %.2f ms\n",
           W3_PARTIES, MAX_CLIENTS, n, secs, (double)n / secs, all[n / 2] * 1e3,
           all[(n * 99) / 100] * 1e3);
    free(all);
    if (trace_ledger_open(&l, dir) != TRACE_OK)
        return 1;
    t0 = bench_now();
    if (trace_ledger_verify(l, &vr, NULL, NULL) != TRACE_OK) {
        printf("W3 verify failed: %s\n", vr.reason);
        return 1;
    }
    secs = bench_now() - t0;
    trace_ledger_close(l);
    {
        double one = verify_capacity(1), two = verify_capacity(2);
        printf("W3 verify: %llu entries, %llu signatures in %.2f s: %.0f "
               "signatures/s; this machine's Ed25519 verifications: %.0f/s on "
               "one core, %.0f/s on two (verify at %.0f %% of two)\n",
               (unsigned long long)vr.entries, (unsigned long long)vr.groups,
               secs, (double)vr.groups / secs, one, two,
               100.0 * (double)vr.groups / secs / two);
    }
    bench_rmtree(dir);
    return 0;
}

/* --reads: clients reading beside each other and beside an export. */
struct reader {
    const char *party;
    long n;
    double *lat;
    int failed;
};

static atomic_int stop_export;

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct globals g;
    Trace__Ops__V1__Balance b = TRACE__OPS__V1__BALANCE__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    FILE *null = fopen("/dev/null", "w");

    if (!null || connect_party(&g, rd->party, null) != 0) {
        rd->failed = 1;
        return NULL;
    }
    b.party = (char *)rd->party;
    call.op_case = TRACE__OPS__V1__CALL__OP_BALANCE;
    call.balance = &b;
    for (long i = 0; i < rd->n; i++) {
        double t0 = bench_now();
        if (remote_call(&g, &call) != 0) {
            rd->failed = 1;
            break;
        }
        rd->lat[i] = bench_now() - t0;
    }
    remote_close(&g);
    fclose(ctl_out);
    return NULL;
}

static void *export_main(void *arg)
{
    struct globals g;
    Trace__Ops__V1__Export x = TRACE__OPS__V1__EXPORT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    long *rounds = arg;
    FILE *null = fopen("/dev/null", "w");

    if (!null || connect_party(&g, "REGULATOR", null) != 0)
        return NULL;
    call.op_case = TRACE__OPS__V1__CALL__OP_EXPORT;
    call.export = &x;
    while (!atomic_load(&stop_export)) {
        remote_call(&g, &call); /* every page of the whole journal */
        (*rounds)++;
    }
    remote_close(&g);
    fclose(ctl_out);
    return NULL;
}

/* n calls spread over `threads` readers; the rate, and p50/p99 in lat. */
static double read_round(const char *party, int threads, long n, double *p50,
                         double *p99)
{
    struct reader rd[4];
    pthread_t th[4];
    double *all = calloc((size_t)n, sizeof(*all)), t0, secs;
    long k = 0;
    int failed = 0;

    for (int i = 0; i < threads; i++) {
        rd[i] = (struct reader){party, n / threads, all + k, 0};
        k += n / threads;
    }
    t0 = bench_now();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, reader_main, &rd[i]);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failed |= rd[i].failed;
    }
    secs = bench_now() - t0;
    qsort(all, (size_t)k, sizeof(*all), cmp_double);
    *p50 = all[k / 2] * 1e3;
    *p99 = all[k * 99 / 100] * 1e3;
    free(all);
    return failed ? -1 : (double)k / secs;
}

static int run_reads(const char *traced, const char *ledger, const char *party)
{
    double r1, r4, rx, p50, p99, q50, q99, x50, x99;
    long rounds = 0;
    pthread_t ex;
    pid_t pid;
    int status;

    snprintf(dir, sizeof(dir), "%s", ledger);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(url, sizeof(url), "ipc://%s/traced.ipc", dir);
    pid = start_daemon(traced);
    for (int i = 0; i < 100; i++) {
        char sock[400];
        snprintf(sock, sizeof(sock), "%s/traced.ipc", dir);
        if (access(sock, F_OK) == 0)
            break;
        usleep(50000);
    }
    usleep(300000);
    r1 = read_round(party, 1, 500, &p50, &p99);
    r4 = read_round(party, 4, 500, &q50, &q99);
    pthread_create(&ex, NULL, export_main, &rounds);
    usleep(300000);
    rx = read_round(party, 1, 3000, &x50, &x99);
    atomic_store(&stop_export, 1);
    pthread_join(ex, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    if (r1 < 0 || r4 < 0 || rx < 0) {
        printf("reads failed\n");
        return 1;
    }
    printf("reads in one process: balance of %s, one client %.0f/s (p50 %.2f "
           "ms, p99 %.2f ms); four clients %.0f/s (%.2fx one; p50 %.2f ms, "
           "p99 %.2f ms); beside a regulator exporting all along (%ld exports "
           "finished meanwhile) %.0f/s (p50 "
           "%.2f ms, p99 %.2f ms)\n",
           party, r1, p50, p99, r4, r4 / r1, q50, q99, rounds, rx, x50, x99);
    return 0;
}

int main(int argc, char **argv)
{
    static const int clients[] = {1, 4, 16};
    struct client lc;
    pthread_t th;
    pid_t pid;
    int status;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_daemon TRACED [EVENTS] "
                        "[BATCH] [PRELOAD]\n"
                        "       bench_daemon TRACED --w3 [EVENTS]\n"
                        "       bench_daemon TRACED --reads LEDGER_DIR "
                        "PARTY\n");
        return 1;
    }
    if (argc > 2 && strcmp(argv[2], "--w3") == 0)
        return run_w3(argv[1], argc > 3 ? atol(argv[3]) : 20000);
    if (argc > 4 && strcmp(argv[2], "--reads") == 0)
        return run_reads(argv[1], argv[3], argv[4]);
    if (argc > 2)
        per_client = atol(argv[2]);
    if (argc > 3)
        batch = atol(argv[3]);
    if (argc > 4)
        preload = atol(argv[4]);
    if (per_client < batch)
        per_client = batch;
    if (setup() != 0) {
        fprintf(stderr, "bench_daemon: setup failed: %s\n", trace_error_last());
        return 1;
    }
    pid = start_daemon(argv[1]);
    for (int i = 0; i < 100; i++) { /* wait for the socket */
        char sock[400];
        snprintf(sock, sizeof(sock), "%s/traced.ipc", dir);
        if (access(sock, F_OK) == 0)
            break;
        usleep(50000);
    }
    printf("traced: durable signed appends, batches of %ld, %ld events per "
           "row (at least 2 batches per client), ledger of %ld events "
           "before\n",
           batch, per_client, preload + 2 * MAX_CLIENTS + 1);
    printf("%-10s %12s %10s\n", "clients", "events/s", "seconds");
    for (size_t k = 0; k < sizeof(clients) / sizeof(*clients); k++) {
        char tag[16];
        double secs;
        /* the same total for each row, at least two batches a client */
        long each = per_client / clients[k];
        each = (each / batch) * batch;
        if (each < 2 * batch)
            each = 2 * batch;
        snprintf(tag, sizeof(tag), "c%d", clients[k]);
        if (run_clients(clients[k], each, tag, &secs) != 0) {
            printf("%-10d failed\n", clients[k]);
            continue;
        }
        printf("%-10d %12.0f %10.2f\n", clients[k],
               (double)(each * clients[k]) / secs, secs);
        fflush(stdout);
    }

    /* single events, one client, light load */
    memset(&lc, 0, sizeof(lc));
    lc.idx = 0;
    lc.events = 500;
    lc.lat = calloc(500, sizeof(double));
    snprintf(lc.tag, sizeof(lc.tag), "one");
    pthread_create(&th, NULL, client_main, &lc);
    pthread_join(th, NULL);
    if (!lc.failed && lc.n_lat > 0) {
        qsort(lc.lat, (size_t)lc.n_lat, sizeof(double), cmp_double);
        printf("single-event append (prepare + sign + commit, fsync), %ld "
               "requests: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               lc.n_lat, lc.lat[lc.n_lat / 2] * 1e3,
               lc.lat[(lc.n_lat * 99) / 100] * 1e3, lc.lat[lc.n_lat - 1] * 1e3);
    } else {
        printf("single-event append failed\n");
    }
    free(lc.lat);
    printf("traced peak RSS: %ld kB\n", peak_rss_kb(pid));
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    printf("traced exit status on SIGTERM: %d\n",
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    bench_rmtree(dir);
    return 0;
}
