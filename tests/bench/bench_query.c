/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_query - query latency on a generated supply chain.
 *
 *   bench_query [--dir DIR [--reuse]] [--events N] [--seed S] [--emit FILE]
 *
 * --seed picks the generator's random sequence (the same seed gives the
 * same ledger); --emit FILE only writes the workload as SPEC section 3
 * JSON Lines (import it with `tracectl import --provision-keys FILE`)
 * and measures nothing.  --dir keeps the ledger it builds in DIR; with
 * --reuse, a ledger built there before with the same --events and --seed
 * is measured again without building it (its last step appends a lot no
 * earlier run appended, so every re-run judges a new one).
 *
 * Builds a ledger of about N events (default 1,000,000): lot by lot
 * through a year, 4 manufacturers produce lots (one per ~5,000 events),
 * sell each to 5 of 20 distributors, who sell it on to 10 of 200
 * pharmacies (every sale with its receipt), who dispense it to their
 * patients.  Then times, over random parties, lots and times: balance at
 * a time, lot trace backward from a pharmacy that holds the lot and
 * forward over a whole lot, printing p50/p99/max; then one full
 * reconciliation (which should find little in this clean chain).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_util.h"
#include "trace/proof.h"
#include "trace/trace.h"

#define N_MFR   4
#define N_DIST  20
#define N_PHARM 200

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

/* (pharmacy, lot) pairs that exist, sampled for backward traces */
struct pair {
    int ph;
    size_t lot;
};
#define N_PAIRS 4096
static struct pair pairs[N_PAIRS];
static size_t n_pairs, n_lots_made;

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

static FILE *emit; /* --emit: write JSON Lines instead of appending */

static void add(const char *line)
{
    if (emit) {
        fprintf(emit, "%s\n", line);
        total_events++;
        return;
    }
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

/* One lot's whole history, from its production on `day`: a manufacturer
 * produces it, sells it to 5 distributors, each sells it on to 10
 * pharmacies (every sale with its receipt a day later), and each pharmacy
 * dispenses it over the next weeks to its own patients. */
static const size_t per_lot_dispense = 96; /* per pharmacy and lot */

static void gen_lot(size_t k, unsigned day)
{
    char line[1024], at[40];
    int m = (int)(k % N_MFR);
    unsigned long long units = 50ULL * per_lot_dispense * 5;
    char lotid[32];
    snprintf(lotid, sizeof(lotid), "L%zu", k);
    when(at, sizeof(at), day, 3600);
    snprintf(line, sizeof(line),
             "{\"type\":\"produce\",\"id\":\"P%zu\",\"party\":\"MFR%d\","
             "\"at\":\"%s\",\"substance\":\"morphine\",\"lot\":\"%s\","
             "\"qty\":\"%llu\",\"unit\":\"unit\"}",
             k, m, at, lotid, units);
    add(line);
    for (int di = 0; di < 5; di++) {
        int d = (int)((k * 5 + (size_t)di) % N_DIST);
        when(at, sizeof(at), day + 1, 3600 + (unsigned)di);
        snprintf(line, sizeof(line),
                 "{\"type\":\"sale\",\"id\":\"S%zu-%d\",\"party\":"
                 "\"MFR%d\",\"at\":\"%s\",\"to\":\"DIST%d\",\"substance\":"
                 "\"morphine\",\"lot\":\"%s\",\"qty\":\"%llu\",\"unit\":"
                 "\"unit\"}",
                 k, di, m, at, d, lotid, units / 5);
        add(line);
        when(at, sizeof(at), day + 2, 3600 + (unsigned)di);
        snprintf(line, sizeof(line),
                 "{\"type\":\"receipt\",\"id\":\"R%zu-%d\",\"party\":"
                 "\"DIST%d\",\"at\":\"%s\",\"from\":\"MFR%d\",\"ref\":"
                 "\"S%zu-%d\",\"substance\":\"morphine\",\"lot\":\"%s\","
                 "\"qty\":\"%llu\",\"unit\":\"unit\"}",
                 k, di, d, at, m, k, di, lotid, units / 5);
        add(line);
        for (int pi = 0; pi < 10; pi++) {
            int ph = (int)((k * 50 + (size_t)(di * 10 + pi)) % N_PHARM);
            unsigned long long q = per_lot_dispense * 5;
            when(at, sizeof(at), day + 3, 3600 + (unsigned)pi);
            snprintf(line, sizeof(line),
                     "{\"type\":\"sale\",\"id\":\"S%zu-%d-%d\",\"party\":"
                     "\"DIST%d\",\"at\":\"%s\",\"to\":\"PH%d\","
                     "\"substance\":\"morphine\",\"lot\":\"%s\",\"qty\":"
                     "\"%llu\",\"unit\":\"unit\"}",
                     k, di, pi, d, at, ph, lotid, q);
            add(line);
            when(at, sizeof(at), day + 4, 3600 + (unsigned)pi);
            snprintf(line, sizeof(line),
                     "{\"type\":\"receipt\",\"id\":\"R%zu-%d-%d\","
                     "\"party\":\"PH%d\",\"at\":\"%s\",\"from\":"
                     "\"DIST%d\",\"ref\":\"S%zu-%d-%d\",\"substance\":"
                     "\"morphine\",\"lot\":\"%s\",\"qty\":\"%llu\","
                     "\"unit\":\"unit\"}",
                     k, di, pi, ph, at, d, k, di, pi, lotid, q);
            add(line);
            if (n_pairs < N_PAIRS)
                pairs[n_pairs++] = (struct pair){ph, k};
            else if (rnd(k + 1) < 4)
                pairs[rnd(N_PAIRS)] = (struct pair){ph, k};
            for (size_t j = 0; j < per_lot_dispense; j++) {
                /* a pharmacy's patients see its own few doctors */
                when(at, sizeof(at),
                     day + 5 + (unsigned)(j * 30 / per_lot_dispense),
                     (unsigned)rnd(80000));
                snprintf(line, sizeof(line),
                         "{\"type\":\"dispense\",\"id\":\"D%zu-%d-%d-%zu\","
                         "\"party\":\"PH%d\",\"at\":\"%s\",\"substance\":"
                         "\"morphine\",\"lot\":\"%s\",\"qty\":\"%d\","
                         "\"unit\":\"unit\",\"rx\":{\"id\":"
                         "\"RX%zu-%d-%d-%zu\",\"prescriber\":\"DR%d-%d\","
                         "\"patient\":\"PAT%d-%d\",\"written\":"
                         "\"2026-01-01\",\"days_supply\":3,\"form\":"
                         "\"oral\"}}",
                         k, di, pi, j, ph, at, lotid, 1 + (int)rnd(5), k, di,
                         pi, j, ph, (int)rnd(4), ph, (int)rnd(2000));
                add(line);
            }
        }
    }
}

/* The number of the lot an incremental run appends: the first after the
 * workload's that no earlier run (--reuse) appended already (re-sent,
 * its events would be idempotent or, with other random picks, refused
 * as ids with other content; either way nothing new to judge). */
static size_t next_new_lot(size_t k)
{
    char lot[32];
    size_t rows;

    for (;; k++) {
        rows = 0;
        snprintf(lot, sizeof(lot), "L%zu", k);
        if (trace_lot(l, lot, NULL, TRACE_FORWARD, (trace_hop_fn)count_row,
                      &rows) == TRACE_ENOTFOUND)
            return k;
    }
}

/* Times one reconciliation (a dry run unless incremental) and prints it. */
static void time_reconcile(const char *what, int incremental)
{
    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    double s0 = bench_now();

    ro.dry_run = !incremental;
    ro.incremental = incremental;
    if (trace_reconcile(l, &ro, NULL, NULL, &sum) != TRACE_OK) {
        fprintf(stderr, "bench: reconcile: %s\n", trace_error_last());
        exit(1);
    }
    printf("%-40s %.2f s for %llu events", what, bench_now() - s0,
           (unsigned long long)(sum.partial ? sum.new_events : sum.events));
    if (sum.partial)
        printf(" appended, %llu read", (unsigned long long)sum.events);
    printf(" (%llu alerts)\n", (unsigned long long)sum.alerts);
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/trace-qbench-XXXXXX", keys[512], line[1024];
    const char *dir = NULL;
    size_t target = 1000000;
    int reuse = 0;
    const trace_key *key;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            rng = 0x9e3779b97f4a7c15ULL ^
                  (strtoull(argv[++i], NULL, 10) * 0xbf58476d1ce4e5b9ULL + 1);
        else if (strcmp(argv[i], "--emit") == 0 && i + 1 < argc) {
            if (!(emit = fopen(argv[++i], "w")))
                return perror(argv[i]), 1;
        } else if (strcmp(argv[i], "--reuse") == 0)
            reuse = 1;
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            target = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_query [--dir DIR] [--events N] "
                            "[--reuse] [--seed S] [--emit FILE]\n");
            return 1;
        }
    }
    if (reuse && (!dir || emit))
        return fprintf(stderr, "bench: --reuse needs --dir, not --emit\n"), 1;
    int own = !dir;
    if (!dir && !(dir = mkdtemp(tmpl)))
        return perror("mkdtemp"), 1;
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    if (reuse) {
        /* the generator runs again, writing nowhere, for the lots and
         * holders the queries sample */
        if (trace_ledger_open(&l, dir) != TRACE_OK ||
            trace_keyring_open(&ring, keys, 0) != TRACE_OK)
            return fprintf(stderr, "bench: %s\n", trace_error_last()), 1;
        if (!(emit = fopen("/dev/null", "w")))
            return perror("/dev/null"), 1;
    } else if (trace_keyring_open(&ring, keys, 1) != TRACE_OK ||
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
    /* Lot by lot, in time order through 2026: a manufacturer produces
     * the lot, sells it to 5 distributors, each sells it on to 10
     * pharmacies (every sale with its receipt a day later), and each
     * pharmacy dispenses it over the next weeks to its own patients.  The
     * number of lots grows with the target, so a lot's history keeps a
     * realistic size (~5,000 events) at any scale. */
    size_t per_lot = 1 + 10 + 100 + 50 * per_lot_dispense;
    size_t n_lots = target / per_lot ? target / per_lot : 1;
    for (size_t k = 0; k < n_lots; k++)
        gen_lot(k, (unsigned)(k * 330 / n_lots));
    flush();
    n_lots_made = n_lots;
    if (reuse) {
        fclose(emit);
        emit = NULL;
    } else if (emit) {
        int bad = fclose(emit) != 0;
        printf("wrote %zu events\n", total_events);
        trace_ledger_close(l);
        trace_keyring_free(ring);
        trace_batch_free(batch);
        if (own)
            bench_rmtree(dir);
        return bad;
    }
    uint64_t size;
    uint8_t head[32];
    trace_ledger_head(l, &size, head);
    printf("built %llu entries in %.1f s\n", (unsigned long long)size,
           bench_now() - t0);

    enum { N = 2000 };
    static double t[N];
    size_t rows = 0;
    char party[32], lot[32];
    /* a pass untimed first: a ledger opened just now (--reuse) faults
     * its pages into the map on first use, which a serving process has
     * long done (the random sequence of what follows stays the same) */
    uint64_t saved = rng;
    for (int i = 0; i < N; i++) {
        snprintf(party, sizeof(party), "PH%d", (int)rnd(N_PHARM));
        trace_balance(l, party,
                      (1767225600LL + (int64_t)rnd(365 * 86400)) * 1000000LL,
                      NULL, (trace_holding_fn)count_row, &rows);
    }
    rng = saved;
    rows = 0;
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
        struct pair pr = pairs[rnd(n_pairs)];
        snprintf(party, sizeof(party), "PH%d", pr.ph);
        snprintf(lot, sizeof(lot), "L%zu", pr.lot);
        double s = bench_now();
        trace_lot(l, lot, party, TRACE_BACKWARD, (trace_hop_fn)count_row,
                  &rows);
        t[i] = bench_now() - s;
    }
    report("trace backward from a pharmacy", t, N, (double)rows);
    rows = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(lot, sizeof(lot), "L%llu",
                 (unsigned long long)rnd(n_lots_made));
        double s = bench_now();
        trace_lot(l, lot, NULL, TRACE_FORWARD, (trace_hop_fn)count_row, &rows);
        t[i] = bench_now() - s;
    }
    report("trace forward, whole lot", t, 200, (double)rows);

    /* proofs of the Merkle tree (SPEC 8): a random entry's inclusion in
     * the whole tree, consistency of a random older size with it, and an
     * event's offline bundle built and checked */
    {
        uint8_t proof[64][32], root[32];
        size_t np;
        char vkey[512], summary[512], *json = NULL;
        size_t jlen;
        trace_ledger_head(l, &size, head);
        for (int i = 0; i < N; i++) {
            double s = bench_now();
            if (trace_inclusion_proof(l, rnd(size), size, proof, &np) !=
                TRACE_OK)
                fprintf(stderr, "inclusion: %s\n", trace_error_last());
            t[i] = bench_now() - s;
        }
        report("inclusion proof, random entry", t, N, 1);
        for (int i = 0; i < N; i++) {
            double s = bench_now();
            if (trace_consistency_proof(l, 1 + rnd(size - 1), size, proof,
                                        &np) != TRACE_OK)
                fprintf(stderr, "consistency: %s\n", trace_error_last());
            t[i] = bench_now() - s;
        }
        report("consistency proof, random older size", t, N, 1);
        double s = bench_now();
        int ok = trace_tree_root(l, size, root) == TRACE_OK;
        printf("%-40s %.1f ms\n", "tree root of the whole journal",
               (bench_now() - s) * 1e3);
        for (int i = 0; ok && i < 20; i++) {
            snprintf(party, sizeof(party), "PH%d", (int)rnd(N_PHARM));
            char id[48];
            snprintf(id, sizeof(id), "reg-%s", party);
            s = bench_now();
            ok = trace_prove_event(l, "REGULATOR", id, &json, &jlen) ==
                     TRACE_OK &&
                 trace_checkpoint_vkey(l, vkey, sizeof(vkey)) == TRACE_OK;
            t[i] = bench_now() - s;
            s = bench_now();
            ok = ok && trace_check_bundle(json, jlen, vkey, NULL, 0, 0, summary,
                                          sizeof(summary)) == TRACE_OK;
            t[20 + i] = bench_now() - s;
            free(json);
        }
        if (ok) {
            report("prove an event (bundle)", t, 20, 1);
            report("check-proof of that bundle", t + 20, 20, 1);
        } else {
            fprintf(stderr, "bundle: %s\n", trace_error_last());
        }
    }

    /* a full run; then incremental ones: the first reads everything and
     * files its index, then a new lot's whole history (~4,900 events: a
     * busy day's volume at this scale) is appended and judged */
    time_reconcile("reconcile, all rules", 0);
    time_reconcile("reconcile, first incremental (full)", 1);
    gen_lot(next_new_lot(n_lots_made), 331);
    flush();
    time_reconcile("reconcile, incremental", 1);
    trace_ledger_close(l);
    trace_keyring_free(ring);
    trace_batch_free(batch);
    if (own)
        bench_rmtree(dir);
    return 0;
}
