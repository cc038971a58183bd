/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_append - durable append throughput, verification speed and disk
 * use of a ledger, through the public API.
 *
 *   bench_append [--dir DIR] [--events N]
 *
 * Events are realistic `sale` records of one party (a distributor
 * submitting its own batch), parsed before the clock starts; "import"
 * figures include JSON parsing.  Every append is a durable LMDB commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "trace/trace.h"

static unsigned long serial;

static int sale_line(char *buf, size_t cap, int party)
{
    unsigned long n = ++serial;
    return snprintf(
        buf, cap,
        "{\"type\":\"sale\",\"id\":\"S-%lu\",\"party\":\"P%d\",\"at\":"
        "\"2026-%02lu-%02luT%02lu:%02lu:00+08:00\",\"to\":\"B%lu\","
        "\"substance\":\"acetic-anhydride\",\"lot\":\"AA-%lu\",\"qty\":"
        "\"%lu.%03lu\",\"unit\":\"kg\",\"permit\":\"PF-%lu\",\"site\":"
        "\"main\"}",
        n, party, 1 + n % 12, 1 + n % 28, n % 24, n % 60, n % 500, n / 7,
        1 + n % 900, n % 1000, n % 5000);
}

static trace_batch *make_batch(trace_ledger *l, size_t n, int party)
{
    trace_batch *b;
    char line[512];

    if (trace_batch_new(&b, l) != TRACE_OK)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int len = sale_line(line, sizeof(line), party);
        if (trace_batch_add_json(b, line, (size_t)len, i + 1) != TRACE_OK) {
            fprintf(stderr, "bench: %s\n", trace_error_last());
            exit(1);
        }
    }
    return b;
}

static void append(trace_ledger *l, trace_keyring *ring, trace_batch *b)
{
    trace_append_result r;
    if (trace_ledger_append(l, b, ring, NULL, 0, &r) != TRACE_OK) {
        fprintf(stderr, "bench: %s\n", trace_error_last());
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    char tmpl[] = "/tmp/trace-bench-XXXXXX", path[512], keys[512];
    size_t total = 500000;
    trace_keyring *ring;
    trace_ledger *l;
    const trace_key *key;
    uint64_t size;
    uint8_t head[32];
    struct stat st;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            total = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_append [--dir DIR] [--events N]\n");
            return 1;
        }
    }
    int own = !dir;
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    if (trace_keyring_open(&ring, keys, 1) != TRACE_OK ||
        trace_keyring_generate(ring, "REGULATOR", &key) != TRACE_OK ||
        trace_ledger_init(&l, dir, key, NULL) != TRACE_OK) {
        fprintf(stderr, "bench: %s\n", trace_error_last());
        return 1;
    }
    /* Register four parties (keys provisioned by the regulator). */
    {
        trace_batch *b;
        trace_append_result r;
        char line[512];
        trace_batch_new(&b, l);
        for (int p = 1; p <= 4; p++) {
            int n = snprintf(line, sizeof(line),
                             "{\"type\":\"party\",\"id\":\"reg-%d\",\"party\":"
                             "\"REGULATOR\",\"at\":\"2026-01-01T00:00:00Z\","
                             "\"subject\":\"P%d\",\"name\":\"Party %d\","
                             "\"kind\":\"distributor\",\"region\":\"CN-31\","
                             "\"licenses\":[\"CN-PC-2\"]}",
                             p, p, p);
            trace_batch_add_json(b, line, (size_t)n, (unsigned long)p);
        }
        if (trace_ledger_append(l, b, ring, NULL, 0, &r) != TRACE_OK)
            return fprintf(stderr, "bench: %s\n", trace_error_last()), 1;
        trace_batch_free(b);
        trace_batch_new(&b, l);
        for (int p = 1; p <= 4; p++) {
            int n = sale_line(line, sizeof(line), p);
            trace_batch_add_json(b, line, (size_t)n, 1);
        }
        if (trace_ledger_append(l, b, ring, NULL, TRACE_APPEND_PROVISION_KEYS,
                                &r) != TRACE_OK)
            return fprintf(stderr, "bench: %s\n", trace_error_last()), 1;
        trace_batch_free(b);
    }

    printf("%-44s %14s\n", "workload", "result");
    static const size_t sizes[] = {1, 100, 10000};
    for (size_t s = 0; s < 3; s++) {
        size_t per = sizes[s];
        size_t rounds = per == 1 ? 300 : per == 100 ? 200 : total / per;
        trace_batch **bs = calloc(rounds, sizeof(*bs));
        for (size_t i = 0; i < rounds; i++)
            bs[i] = make_batch(l, per, 1 + (int)(i % 4));
        double t0 = bench_now();
        for (size_t i = 0; i < rounds; i++)
            append(l, ring, bs[i]);
        double dt = bench_now() - t0;
        for (size_t i = 0; i < rounds; i++)
            trace_batch_free(bs[i]);
        free(bs);
        char label[80];
        snprintf(label, sizeof(label), "durable append, batches of %zu", per);
        printf("%-44s %10.0f ev/s  (%zu commits, %.2f ms/commit)\n", label,
               (double)(rounds * per) / dt, rounds, dt * 1000 / rounds);
    }
    {
        /* parse + append: the import path */
        size_t rounds = 20, per = 10000;
        double t0 = bench_now();
        for (size_t i = 0; i < rounds; i++) {
            trace_batch *b = make_batch(l, per, 1 + (int)(i % 4));
            append(l, ring, b);
            trace_batch_free(b);
        }
        double dt = bench_now() - t0;
        printf("%-44s %10.0f ev/s\n", "JSON parse + durable append (10,000)",
               (double)(rounds * per) / dt);
    }
    {
        trace_verify_result res;
        double t0 = bench_now();
        if (trace_ledger_verify(l, &res, NULL, NULL) != TRACE_OK) {
            fprintf(stderr, "bench: verify: %s\n", trace_error_last());
            return 1;
        }
        double dt = bench_now() - t0;
        printf("%-44s %10.0f entries/s  (%llu entries, %llu signatures)\n",
               "full verification", (double)res.entries / dt,
               (unsigned long long)res.entries, (unsigned long long)res.groups);
    }
    trace_ledger_head(l, &size, head);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    stat(path, &st);
    printf("%-44s %10.1f bytes/event  (%llu entries, %lld bytes)\n",
           "disk use (data.mdb incl. indexes)",
           (double)st.st_size / (double)size, (unsigned long long)size,
           (long long)st.st_size);
    trace_ledger_close(l);
    trace_keyring_free(ring);
    if (own)
        bench_rmtree(dir);
    return 0;
}
