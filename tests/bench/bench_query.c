/*
 * bench_query - query latency on a generated supply chain.
 *
 *   bench_query [--dir DIR] [--events N]
 *
 * Builds a ledger of N events (default 1,000,000): 4 manufacturers
 * produce lots, sell them to 20 distributors (with receipts), who sell
 * to 200 pharmacies (with receipts), who dispense.  Then times, over
 * random parties, lots and times: balance at a time, lot trace forward
 * and backward, printing p50/p99/max; then one full reconciliation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_util.h"
#include "trace/trace.h"

#define N_MFR        4
#define N_DIST       20
#define N_PHARM      200
#define LOTS_PER_MFR 50

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static trace_ledger *l;
static trace_keyring *ring;
static trace_batch *batch;
static size_t in_batch, total_events;
static unsigned long serial;

static void flush(void)
{
    trace_append_result r;
    if (!in_batch)
        return;
    if (trace_ledger_append(l, batch, ring, NULL, TRACE_APPEND_PROVISION_KEYS,
                            &r) != TRACE_OK) {
        fprintf(stderr, "bench: %s\n", trace_error_last());
        exit(1);
    }
    trace_batch_free(batch);
    trace_batch_new(&batch, l);
    total_events += in_batch;
    in_batch = 0;
}

static void add(const char *line)
{
    if (trace_batch_add_json(batch, line, strlen(line), ++serial) != TRACE_OK) {
        fprintf(stderr, "bench: %s\n", trace_error_last());
        exit(1);
    }
    if (++in_batch == 10000)
        flush();
}

/* A time in 2026: day d (0..364), second s of the day. */
static void when(char *buf, size_t cap, unsigned d, unsigned s)
{
    struct tm tm = {0};
    time_t t = 1767225600 + (time_t)d * 86400 + s - 8 * 3600;
    gmtime_r(&t, &tm);
    t += 8 * 3600;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, size_t n, double rows)
{
    qsort(t, n, sizeof(*t), cmp_d);
    printf("%-40s p50 %7.1f us  p99 %7.1f us  max %8.1f us  (%.1f rows avg)\n",
           what, t[n / 2] * 1e6, t[n * 99 / 100] * 1e6, t[n - 1] * 1e6,
           rows / (double)n);
}

static int count_row(const void *x, void *ctx)
{
    (void)x;
    (*(size_t *)ctx)++;
    return 0;
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/trace-qbench-XXXXXX", keys[512], line[1024], at[40];
    const char *dir = NULL;
    size_t target = 1000000;
    const trace_key *key;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            target = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_query [--dir DIR] [--events N]\n");
            return 1;
        }
    }
    int own = !dir;
    if (!dir && !(dir = mkdtemp(tmpl)))
        return perror("mkdtemp"), 1;
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    if (trace_keyring_open(&ring, keys, 1) != TRACE_OK ||
        trace_keyring_generate(ring, "REGULATOR", &key) != TRACE_OK ||
        trace_ledger_init(&l, dir, key, NULL) != TRACE_OK)
        return fprintf(stderr, "bench: %s\n", trace_error_last()), 1;
    trace_batch_new(&batch, l);

    double t0 = bench_now();
    static const struct {
        const char *prefix, *kind;
        int n;
    } groups[] = {{"MFR", "manufacturer", N_MFR},
                  {"DIST", "distributor", N_DIST},
                  {"PH", "pharmacy", N_PHARM}};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < groups[g].n; i++) {
            snprintf(line, sizeof(line),
                     "{\"type\":\"party\",\"id\":\"reg-%s%d\",\"party\":"
                     "\"REGULATOR\",\"at\":\"2026-01-01T00:00:00+08:00\","
                     "\"subject\":\"%s%d\",\"name\":\"%s %d\",\"kind\":\"%s\","
                     "\"region\":\"CN-31\",\"licenses\":[\"CN-NARC\"]}",
                     groups[g].prefix, i, groups[g].prefix, i, groups[g].prefix,
                     i, groups[g].kind);
            add(line);
        }
    flush();
    /* manufacturers produce */
    for (int m = 0; m < N_MFR; m++)
        for (int k = 0; k < LOTS_PER_MFR; k++) {
            when(at, sizeof(at), (unsigned)k * 7, 3600);
            snprintf(line, sizeof(line),
                     "{\"type\":\"produce\",\"id\":\"P%d\",\"party\":\"MFR%d\","
                     "\"at\":\"%s\",\"substance\":\"morphine\",\"lot\":"
                     "\"L%d-%d\",\"qty\":\"1000000\",\"unit\":\"unit\"}",
                     k, m, at, m, k);
            add(line);
        }
    flush();
    /* sales down the chain, each with its receipt; then dispensing */
    size_t per_stage = target / 10;
    for (int stage = 0; stage < 2; stage++) {
        int sellers = stage == 0 ? N_MFR : N_DIST;
        int buyers = stage == 0 ? N_DIST : N_PHARM;
        const char *sp = stage == 0 ? "MFR" : "DIST";
        const char *bp = stage == 0 ? "DIST" : "PH";
        size_t n = stage == 0 ? per_stage / 4 : per_stage * 3 / 2;
        for (int s = 0; s < sellers; s++) {
            for (size_t i = 0; i < n / (size_t)sellers; i++) {
                int b = (int)rnd((uint64_t)buyers);
                int m = stage == 0 ? s : (int)rnd(N_MFR);
                int k = (int)rnd(LOTS_PER_MFR);
                unsigned d = (unsigned)(k * 7 + 1 + rnd(14));
                when(at, sizeof(at), d > 364 ? 364 : d, (unsigned)rnd(80000));
                snprintf(line, sizeof(line),
                         "{\"type\":\"sale\",\"id\":\"S%zu\",\"party\":"
                         "\"%s%d\",\"at\":\"%s\",\"to\":\"%s%d\","
                         "\"substance\":\"morphine\",\"lot\":\"L%d-%d\","
                         "\"qty\":\"%d\",\"unit\":\"unit\"}",
                         i, sp, s, at, bp, b, m, k, 10 + (int)rnd(500));
                add(line);
            }
            flush();
        }
        (void)bp;
    }
    /* receipts are recorded by buyers; dispensing by pharmacies */
    size_t left = target > total_events ? target - total_events : 0;
    for (int p = 0; p < N_PHARM && left; p++) {
        size_t n = left / (size_t)(N_PHARM - p);
        for (size_t i = 0; i < n; i++) {
            int m = (int)rnd(N_MFR), k = (int)rnd(LOTS_PER_MFR);
            unsigned d = (unsigned)(k * 7 + 3 + rnd(30));
            when(at, sizeof(at), d > 364 ? 364 : d, (unsigned)rnd(80000));
            snprintf(line, sizeof(line),
                     "{\"type\":\"dispense\",\"id\":\"D%zu\",\"party\":"
                     "\"PH%d\",\"at\":\"%s\",\"substance\":\"morphine\","
                     "\"lot\":\"L%d-%d\",\"qty\":\"%d\",\"unit\":\"unit\","
                     "\"rx\":{\"id\":\"RX-%d-%zu\",\"prescriber\":\"DR%d\","
                     "\"patient\":\"PAT%d\",\"written\":\"2026-01-01\","
                     "\"days_supply\":3,\"form\":\"oral\"}}",
                     i, p, at, m, k, 1 + (int)rnd(30), p, i, (int)rnd(1000),
                     (int)rnd(100000));
            add(line);
        }
        left -= n;
        flush();
    }
    flush();
    uint64_t size;
    uint8_t head[32];
    trace_ledger_head(l, &size, head);
    printf("built %llu entries in %.1f s\n", (unsigned long long)size,
           bench_now() - t0);

    enum { N = 2000 };
    static double t[N];
    size_t rows = 0;
    char party[32], lot[32];
    for (int i = 0; i < N; i++) {
        snprintf(party, sizeof(party), "PH%d", (int)rnd(N_PHARM));
        int64_t when_us =
            (1767225600LL + (int64_t)rnd(365 * 86400)) * 1000000LL;
        double s = bench_now();
        trace_balance(l, party, when_us, NULL, (trace_holding_fn)count_row,
                      &rows);
        t[i] = bench_now() - s;
    }
    report("balance at time, pharmacy", t, N, (double)rows);
    rows = 0;
    for (int i = 0; i < N; i++) {
        snprintf(party, sizeof(party), "DIST%d", (int)rnd(N_DIST));
        int64_t when_us =
            (1767225600LL + (int64_t)rnd(365 * 86400)) * 1000000LL;
        double s = bench_now();
        trace_balance(l, party, when_us, NULL, (trace_holding_fn)count_row,
                      &rows);
        t[i] = bench_now() - s;
    }
    report("balance at time, distributor", t, N, (double)rows);
    rows = 0;
    for (int i = 0; i < N; i++) {
        snprintf(party, sizeof(party), "PH%d", (int)rnd(N_PHARM));
        snprintf(lot, sizeof(lot), "L%d-%d", (int)rnd(N_MFR),
                 (int)rnd(LOTS_PER_MFR));
        double s = bench_now();
        trace_lot(l, lot, party, TRACE_BACKWARD, (trace_hop_fn)count_row,
                  &rows);
        t[i] = bench_now() - s;
    }
    report("trace backward from a pharmacy", t, N, (double)rows);
    rows = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(lot, sizeof(lot), "L%d-%d", (int)rnd(N_MFR),
                 (int)rnd(LOTS_PER_MFR));
        double s = bench_now();
        trace_lot(l, lot, NULL, TRACE_FORWARD, (trace_hop_fn)count_row, &rows);
        t[i] = bench_now() - s;
    }
    report("trace forward, whole lot", t, 200, (double)rows);

    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    ro.dry_run = 1;
    double s0 = bench_now();
    if (trace_reconcile(l, &ro, NULL, NULL, &sum) != TRACE_OK) {
        fprintf(stderr, "bench: reconcile: %s\n", trace_error_last());
        return 1;
    }
    printf("%-40s %.2f s for %llu events (%llu alerts)\n",
           "reconcile, all rules", bench_now() - s0,
           (unsigned long long)sum.events, (unsigned long long)sum.alerts);
    trace_ledger_close(l);
    trace_keyring_free(ring);
    trace_batch_free(batch);
    if (own)
        bench_rmtree(dir);
    return 0;
}
