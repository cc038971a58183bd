/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE /* fopencookie */
/*
 * cmd_ledger.c - tracectl commands that create, fill, copy and check a
 * ledger: init, keygen, import, export, verify, backup.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trace/csvmap.h"
#include "trace/epcis.h"
#include "trace/reconcile.h"
#include "tracectl.h"

#define MAX_REPORTED_ERRORS   20 /* rejected lines shown of an import */
#define MAX_REPORTED_WARNINGS 50 /* findings at entry shown of an import */

/* ------------------------------------------------------------------ */
/* init                                                                 */

int cmd_init(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"regulator", required_argument, NULL, 'r'},
        {"catalog", required_argument, NULL, 'c'},
        {"tz", required_argument, NULL, 'z'},
        {"max-qty", required_argument, NULL, 'q'},
        {"regime", required_argument, NULL, 'g'},
        {"regimes", required_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_init_opts io = TRACE_INIT_OPTS_INIT;
    const char *max_qty[8]; /* "QTY UNIT" each; the last of a dimension wins */
    size_t n_max_qty = 0;
    trace_keyring *ring = NULL;
    trace_ledger *l = NULL;
    const trace_key *key = NULL;
    char *catalog = NULL, *regimes = NULL;
    size_t regimes_len = 0;
    int c, rc, ret = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            io.regulator = optarg;
            break;
        case 'c': {
            FILE *f = fopen(optarg, "rb");
            long n;
            if (!f) {
                fprintf(ctl_err, "tracectl: %s: %s\n", optarg, strerror(errno));
                free(regimes);
                return 4;
            }
            fseek(f, 0, SEEK_END);
            n = ftell(f);
            rewind(f);
            catalog = malloc((size_t)n + 1);
            if (!catalog || fread(catalog, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                free(catalog);
                free(regimes);
                fprintf(ctl_err, "tracectl: cannot read %s\n", optarg);
                return 6;
            }
            fclose(f);
            io.catalog_json = catalog;
            io.catalog_len = (size_t)n;
            break;
        }
        case 'z': {
            /* exactly +HH:MM or -HH:MM, as in an RFC 3339 time */
            const char *z = optarg;
            int hh, mm;
            if (strlen(z) != 6 || (z[0] != '+' && z[0] != '-') ||
                !isdigit((unsigned char)z[1]) ||
                !isdigit((unsigned char)z[2]) || z[3] != ':' ||
                !isdigit((unsigned char)z[4]) ||
                !isdigit((unsigned char)z[5]) ||
                (hh = (z[1] - '0') * 10 + (z[2] - '0')) > 14 ||
                (mm = (z[4] - '0') * 10 + (z[5] - '0')) > 59) {
                free(catalog);
                free(regimes);
                return ctl_usage("init", "--tz takes +HH:MM or -HH:MM, not %s",
                                 optarg);
            }
            io.tz_offset_min = (z[0] == '-' ? -1 : 1) * (hh * 60 + mm);
            io.has_tz = 1;
            break;
        }
        case 'g':
            io.regime = optarg;
            break;
        case 'G':
            free(regimes);
            regimes = NULL;
            if (ctl_read_file(optarg, &regimes, &regimes_len) != 0) {
                fprintf(ctl_err, "tracectl: cannot read %s: %s\n", optarg,
                        strerror(errno));
                free(catalog);
                return 4;
            }
            io.regimes_json = regimes;
            io.regimes_len = regimes_len;
            break;
        case 'q':
            if (n_max_qty == sizeof(max_qty) / sizeof(max_qty[0])) {
                free(catalog);
                free(regimes);
                return ctl_usage("init", "%s", "too many --max-qty");
            }
            max_qty[n_max_qty++] = optarg;
            break;
        case 'h':
            free(catalog);
            free(regimes);
            ctl_help(ctl_find_command("init"));
            return 0;
        default:
            return ctl_usage("init", "%s", "unknown option");
        }
    }
    if (optind != argc) {
        free(catalog);
        free(regimes);
        return ctl_usage("init", "unexpected argument %s", argv[optind]);
    }
    io.max_qty = max_qty;
    io.n_max_qty = n_max_qty;
    if (!io.regulator)
        io.regulator = "REGULATOR";
    if (!trace_party_id_valid(io.regulator)) {
        free(catalog);
        free(regimes);
        return ctl_usage("init", "invalid regulator id %s", io.regulator);
    }
    /* an unknown regime or a malformed table: refused before anything
     * (folder, key) is made */
    if ((rc = trace_regime_check(io.regimes_json, io.regimes_len, io.regime)) !=
        TRACE_OK) {
        fprintf(ctl_err, "tracectl: init: %s\n", trace_error_last());
        free(catalog);
        free(regimes);
        return 2;
    }
    if (mkdir(g->data, 0700) != 0 && errno != EEXIST) {
        fprintf(ctl_err, "tracectl: cannot create %s: %s\n", g->data,
                strerror(errno));
        free(catalog);
        free(regimes);
        return 6;
    }
    if ((rc = trace_keyring_open(&ring, ctl_keys_dir(g), 1)) != TRACE_OK)
        goto fail;
    rc = trace_keyring_get(ring, io.regulator, &key);
    if (rc == TRACE_ENOTFOUND)
        rc = trace_keyring_generate(ring, io.regulator, &key);
    if (rc != TRACE_OK)
        goto fail;
    if ((rc = trace_ledger_init(&l, g->data, key, &io)) != TRACE_OK)
        goto fail;
    /* the regime is named when it was chosen (`tracectl regime` shows
     * it, and its table, for any ledger) */
    if (g->json)
        fprintf(
            ctl_out,
            "{\"data\":\"%s\",\"regulator\":\"%s\",\"keys\":\"%s\"%s%s%s}\n",
            g->data, io.regulator, ctl_keys_dir(g),
            io.regime ? ",\"regime\":\"" : "",
            io.regime ? trace_ledger_regime(l) : "", io.regime ? "\"" : "");
    else
        fprintf(ctl_out,
                "initialised ledger in %s\nroot regulator: %s (key in "
                "%s/%s.key)\n%s%s%snext: tracectl --data %s import "
                "--provision-keys FILE\n",
                g->data, io.regulator, ctl_keys_dir(g), io.regulator,
                io.regime ? "regime: " : "",
                io.regime ? trace_ledger_regime(l) : "", io.regime ? "\n" : "",
                g->data);
    goto out;
fail:
    ret = ctl_fail(rc);
out:
    ctl_close(g, l);
    trace_keyring_free(ring);
    free(catalog);
    free(regimes);
    return ret;
}

/* ------------------------------------------------------------------ */
/* keygen                                                               */

int cmd_keygen(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    trace_keyring *ring = NULL;
    const trace_key *key;
    char b64[64];
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            ctl_help(ctl_find_command("keygen"));
            return 0;
        }
        return ctl_usage("keygen", "%s", "unknown option");
    }
    if (optind + 1 != argc)
        return ctl_usage("keygen", "%s", "needs exactly one PARTY");
    if (!trace_party_id_valid(argv[optind]))
        return ctl_usage("keygen", "invalid party id %s", argv[optind]);
    if ((rc = trace_keyring_open(&ring, ctl_keys_dir(g), 1)) != TRACE_OK)
        return ctl_fail(rc);
    rc = trace_keyring_generate(ring, argv[optind], &key);
    if (rc != TRACE_OK) {
        trace_keyring_free(ring);
        return ctl_fail(rc);
    }
    trace_pubkey_format(b64, sizeof(b64), trace_key_public(key));
    if (g->json)
        fprintf(ctl_out,
                "{\"party\":\"%s\",\"pubkey\":\"%s\",\"file\":\"%s/%s.key\"}\n",
                argv[optind], b64, ctl_keys_dir(g), argv[optind]);
    else
        fprintf(ctl_out,
                "new key for %s in %s/%s.key\npubkey: %s\n(a regulator "
                "registers it with a `party` event carrying this pubkey)\n",
                argv[optind], ctl_keys_dir(g), argv[optind], b64);
    trace_keyring_free(ring);
    return 0;
}

/* ------------------------------------------------------------------ */
/* import                                                               */

static void print_imported(struct globals *g, const trace_append_result *res)
{
    if (g->json)
        fprintf(ctl_out,
                "{\"appended\":%llu,\"duplicates\":%llu,\"provisioned\":%llu,"
                "\"first_seq\":%llu,\"last_seq\":%llu,\"warnings\":%llu}\n",
                (unsigned long long)res->appended,
                (unsigned long long)res->duplicates,
                (unsigned long long)res->provisioned,
                (unsigned long long)res->first_seq,
                (unsigned long long)res->last_seq,
                (unsigned long long)res->warnings);
    else if (res->warnings)
        fprintf(ctl_out,
                "imported %llu events (%llu already present, %llu keys "
                "provisioned, %llu finding%s at entry)\n",
                (unsigned long long)(res->appended - res->provisioned),
                (unsigned long long)res->duplicates,
                (unsigned long long)res->provisioned,
                (unsigned long long)res->warnings,
                res->warnings == 1 ? "" : "s");
    else
        fprintf(ctl_out,
                "imported %llu events (%llu already present, %llu keys "
                "provisioned)\n",
                (unsigned long long)(res->appended - res->provisioned),
                (unsigned long long)res->duplicates,
                (unsigned long long)res->provisioned);
}

/* After an import with findings at entry: an incremental reconciliation
 * now, so their alerts are raised at once (traced does the same). */
static void reconcile_now(trace_ledger *l)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;

    o.incremental = 1;
    if (trace_reconcile(l, &o, NULL, NULL, &sum) == TRACE_OK)
        fprintf(ctl_err,
                "tracectl: reconciliation: %llu new alerts (tracectl alerts "
                "--open)\n",
                (unsigned long long)sum.new_alerts);
    else
        fprintf(ctl_err,
                "tracectl: the import is stored, but reconciliation failed: "
                "%s\n",
                trace_error_last());
}

/* Prints the findings of the checks at entry waiting in `im`. */
static void print_warnings(trace_import *im, unsigned long *shown)
{
    const char *w;

    while ((w = trace_import_next_warning(im)) != NULL)
        if (++*shown <= MAX_REPORTED_WARNINGS)
            fprintf(ctl_err, "tracectl: warning: %s\n", w);
}

/* import through a daemon: the input is prepared chunk by chunk as it is
 * read, and committed once every chunk passed (remote_import). */
static int import_remote(struct globals *g, const char *path, unsigned flags,
                         const char *receipt)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    trace_append_result res;
    int rc, ret = 0, read_failed;

    if (!in) {
        fprintf(ctl_err, "tracectl: %s: %s\n", path, strerror(errno));
        return 4;
    }
    if (receipt && !(g->receipts = ctl_receipts_new())) {
        ret = 6;
        goto out;
    }
    rc = ctl_import_stream(g, in, g->as, flags, &res, &read_failed);
    if (read_failed) {
        fprintf(ctl_err, "tracectl: %s: read error; nothing was imported\n",
                path);
        ret = 6;
        goto out;
    }
    if (rc != TRACE_OK) {
        const char *m = ctl_errmsg(), *nl;
        unsigned long rejected, total;
        /* one message per rejected line, as an embedded import prints */
        for (; (nl = strchr(m, '\n')); m = nl + 1)
            fprintf(ctl_err, "tracectl: %.*s\n", (int)(nl - m), m);
        ctl_rejected(&rejected, &total);
        if (rejected)
            fprintf(ctl_err,
                    "tracectl: %s\ntracectl: %lu of %lu lines rejected; "
                    "nothing was imported\n",
                    m, rejected, total);
        else
            fprintf(ctl_err, "tracectl: %s\ntracectl: nothing was imported\n",
                    m);
        ret = trace_error_exit_code(rc);
        goto out;
    }
    print_imported(g, &res);
    if (receipt)
        ret = ctl_receipt_save(g, NULL, receipt, &res);
out:
    ctl_receipts_free(g->receipts);
    g->receipts = NULL;
    if (in != stdin)
        fclose(in);
    return ret;
}

/* A private copy of the key folder for a dry run's provisioned keys. */
static int copy_keys_tmp(const char *dir, char *tmp, size_t cap)
{
    char src[4096], dst[4096], buf[8192];
    struct dirent *e;
    DIR *d;

    snprintf(tmp, cap, "/tmp/trace-dry-keys-XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(ctl_err, "tracectl: cannot make a folder for the dry run: %s\n",
                strerror(errno));
        tmp[0] = '\0';
        return 6;
    }
    if (!(d = opendir(dir)))
        return 0; /* no keys yet */
    while ((e = readdir(d))) {
        FILE *in, *out;
        size_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(src, sizeof(src), "%s/%s", dir, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", tmp, e->d_name);
        if (!(in = fopen(src, "rb")))
            continue;
        if (!(out = fopen(dst, "wb"))) {
            fclose(in);
            continue;
        }
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(in);
        fclose(out);
        chmod(dst, 0600);
    }
    closedir(d);
    return 0;
}

static void remove_tmp_keys(const char *tmp)
{
    char path[4096];
    struct dirent *e;
    DIR *d = opendir(tmp);

    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(tmp);
}

/* import --format epcis: the EPCIS reader's lines go to the import;
 * messages about a line name the EPCIS event (eventList[i]) instead. */
struct epcis_run {
    trace_import *im;
    unsigned long errors, notes, warned;
    int first_err;
};

/* "line N: rest" -> "eventList[N-1]: rest" */
static void print_relabelled(const char *prefix, const char *msg)
{
    unsigned long n;
    int used = 0;

    if (sscanf(msg, "line %lu: %n", &n, &used) == 1 && used > 0 && n > 0)
        fprintf(ctl_err, "tracectl: %seventList[%lu]: %s\n", prefix, n - 1,
                msg + used);
    else
        fprintf(ctl_err, "tracectl: %s%s\n", prefix, msg);
}

static void epcis_warnings(struct epcis_run *x)
{
    const char *w;

    while ((w = trace_import_next_warning(x->im)) != NULL)
        if (++x->warned <= MAX_REPORTED_WARNINGS)
            print_relabelled("warning: ", w);
}

static void epcis_error(struct epcis_run *x, int rc)
{
    if (x->first_err == TRACE_OK)
        x->first_err = rc;
    if (++x->errors <= MAX_REPORTED_ERRORS)
        print_relabelled("", trace_error_last());
}

static int epcis_line(void *ctx, const char *line, size_t len,
                      unsigned long index)
{
    struct epcis_run *x = ctx;
    int rc = trace_import_line(x->im, line, len, index + 1);

    epcis_warnings(x);
    if (rc != TRACE_OK)
        epcis_error(x, rc);
    return 0;
}

static int epcis_note(void *ctx, unsigned long index, int rejected,
                      const char *reason)
{
    struct epcis_run *x = ctx;

    if (rejected && x->first_err == TRACE_OK)
        x->first_err = TRACE_EINVAL;
    if (++x->notes <= MAX_REPORTED_ERRORS + MAX_REPORTED_WARNINGS)
        fprintf(ctl_err, "tracectl: eventList[%lu]: %s: %s\n", index,
                rejected ? "rejected" : "skipped", reason);
    return 0;
}

static void print_epcis_summary(struct globals *g,
                                const trace_epcis_summary *sum)
{
    if (g->json)
        fprintf(
            ctl_out,
            "{\"epcis_events\":%llu,\"imported\":%llu,\"skipped\":%llu,"
            "\"rejected\":%llu,\"ledger_events\":%llu}\n",
            (unsigned long long)sum->events, (unsigned long long)sum->mapped,
            (unsigned long long)sum->skipped, (unsigned long long)sum->rejected,
            (unsigned long long)sum->lines);
    else
        fprintf(ctl_out,
                "EPCIS: %llu events: %llu imported (%llu ledger events), "
                "%llu skipped, %llu rejected\n",
                (unsigned long long)sum->events,
                (unsigned long long)sum->mapped, (unsigned long long)sum->lines,
                (unsigned long long)sum->skipped,
                (unsigned long long)sum->rejected);
}

/* The EPCIS reader on a thread of its own, so that mapping the document
 * overlaps with parsing the mapped lines (on this thread) and writing
 * them (the import's writer thread).  Lines and notes travel in batches
 * of up to PIPE_BYTES, at most PIPE_DEPTH batches in flight: memory is
 * bounded whatever the size of the document. */
#define PIPE_BYTES (256u << 10)
#define PIPE_DEPTH 4

struct pipe_msg {
    unsigned long index;
    int kind; /* 0 a line, 1 a skipped note, 2 a rejected note */
    size_t off, len;
};

struct pipe_batch {
    char *text;
    size_t used, cap;
    struct pipe_msg *msgs;
    size_t n, mcap;
};

struct epcis_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pipe_batch *full[PIPE_DEPTH];
    size_t head, count;
    int done, rc, oom;
    char err[1024];
    struct pipe_batch *cur; /* the reader's */
    const trace_epcis_master *m;
    FILE *in;
    trace_epcis_summary sum;
};

static void batch_free(struct pipe_batch *b)
{
    if (b) {
        free(b->text);
        free(b->msgs);
        free(b);
    }
}

static int pipe_flush(struct epcis_pipe *p)
{
    struct pipe_batch *b = p->cur;

    if (!b || b->n == 0)
        return 0;
    pthread_mutex_lock(&p->mu);
    while (p->count == PIPE_DEPTH)
        pthread_cond_wait(&p->cv, &p->mu);
    p->full[(p->head + p->count) % PIPE_DEPTH] = b;
    p->count++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->cur = NULL;
    return 0;
}

static int pipe_put(struct epcis_pipe *p, int kind, unsigned long index,
                    const char *text, size_t len)
{
    struct pipe_batch *b = p->cur;

    if (!b && !(b = p->cur = calloc(1, sizeof(*b))))
        goto oom;
    if (b->used + len > b->cap) {
        size_t nc = b->cap ? b->cap : PIPE_BYTES;
        char *t;
        while (nc < b->used + len)
            nc *= 2;
        if (!(t = realloc(b->text, nc)))
            goto oom;
        b->text = t;
        b->cap = nc;
    }
    if (b->n == b->mcap) {
        size_t nc = b->mcap ? b->mcap * 2 : 1024;
        struct pipe_msg *m = realloc(b->msgs, nc * sizeof(*m));
        if (!m)
            goto oom;
        b->msgs = m;
        b->mcap = nc;
    }
    memcpy(b->text + b->used, text, len);
    b->msgs[b->n++] = (struct pipe_msg){index, kind, b->used, len};
    b->used += len;
    return b->used >= PIPE_BYTES ? pipe_flush(p) : 0;
oom:
    p->oom = 1;
    return TRACE_ENOMEM;
}

static int pipe_line(void *ctx, const char *line, size_t len,
                     unsigned long index)
{
    return pipe_put(ctx, 0, index, line, len);
}

static int pipe_note(void *ctx, unsigned long index, int rejected,
                     const char *reason)
{
    return pipe_put(ctx, rejected ? 2 : 1, index, reason, strlen(reason) + 1);
}

static void *pipe_reader(void *arg)
{
    struct epcis_pipe *p = arg;
    int rc = trace_epcis_read(p->m, p->in, pipe_line, pipe_note, p, &p->sum);

    if (rc == TRACE_OK)
        pipe_flush(p);
    batch_free(p->cur);
    p->cur = NULL;
    pthread_mutex_lock(&p->mu);
    p->rc = rc;
    if (rc != TRACE_OK)
        snprintf(p->err, sizeof(p->err), "%s",
                 p->oom ? "out of memory" : trace_error_last());
    p->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Runs the reader on its thread, each line to epcis_line and each note
 * to epcis_note here.  The reader's code; its message in p->err. */
static int read_piped(struct epcis_pipe *p, const trace_epcis_master *m,
                      FILE *in, struct epcis_run *x)
{
    pthread_t th;

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->m = m;
    p->in = in;
    if (pthread_create(&th, NULL, pipe_reader, p) != 0) {
        /* no thread: read here */
        p->rc = trace_epcis_read(m, in, epcis_line, epcis_note, x, &p->sum);
        if (p->rc != TRACE_OK)
            snprintf(p->err, sizeof(p->err), "%s", trace_error_last());
        return p->rc;
    }
    for (;;) {
        struct pipe_batch *b;
        pthread_mutex_lock(&p->mu);
        while (p->count == 0 && !p->done)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->count == 0) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        b = p->full[p->head];
        p->head = (p->head + 1) % PIPE_DEPTH;
        p->count--;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < b->n; i++) {
            const struct pipe_msg *mm = &b->msgs[i];
            if (mm->kind == 0)
                epcis_line(x, b->text + mm->off, mm->len, mm->index);
            else
                epcis_note(x, mm->index, mm->kind == 2, b->text + mm->off);
        }
        batch_free(b);
    }
    pthread_join(th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    return p->rc;
}

/* Reads the EPCIS document into the import `im`; 0 or the exit code. */
static int import_epcis(struct globals *g, trace_ledger *l, trace_import *im,
                        FILE *in, const char *path)
{
    struct epcis_run x = {im, 0, 0, 0, TRACE_OK};
    trace_epcis_master *m = NULL;
    struct epcis_pipe *p = NULL;
    trace_epcis_summary sum;
    int rc, ret = 0;

    if ((rc = trace_epcis_master_new(&m)) != TRACE_OK ||
        (rc = trace_epcis_master_load(m, l)) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    if (!(p = malloc(sizeof(*p)))) {
        ret = ctl_fail(TRACE_ENOMEM);
        goto out;
    }
    rc = read_piped(p, m, in, &x);
    sum = p->sum;
    while (rc == TRACE_OK && (rc = trace_import_next_error(im)) != TRACE_OK) {
        epcis_error(&x, rc);
        rc = TRACE_OK;
    }
    epcis_warnings(&x);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s: %s\ntracectl: nothing was imported\n",
                path, p->rc != TRACE_OK ? p->err : trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    print_epcis_summary(g, &sum);
    if (sum.rejected || x.errors) {
        fprintf(ctl_err,
                "tracectl: %llu EPCIS events rejected, %lu ledger events "
                "refused; nothing was imported\n",
                (unsigned long long)sum.rejected, x.errors);
        ret = trace_error_exit_code(x.first_err != TRACE_OK ? x.first_err
                                                            : TRACE_EINVAL);
    }
out:
    free(p);
    trace_epcis_master_free(m);
    return ret;
}

/* ------------------------------------------------------------------ */
/* EPCIS through traced                                                 */

/* The master data of the mapping and of the writer, read from traced:
 * parties with a GLN, products, the permits the caller may read. */
struct remote_master {
    trace_epcis_master *m;
    trace_epcis_writer *w;
};

static int rm_item(const ops_item_t *it, void *ctx)
{
    struct remote_master *x = ctx;
    int rc = TRACE_OK;

    if (it->item_case == TRACE__OPS__V1__ITEM__ITEM_PARTY) {
        const Trace__Ops__V1__Party *p = it->party;
        for (size_t i = 0; i < p->n_sites && rc == TRACE_OK; i++) {
            if (x->m) {
                rc = trace_epcis_master_add_site(x->m, p->sites[i]->sgln,
                                                 p->party, p->sites[i]->site);
                if (rc == TRACE_EINVAL) /* a site name too long to map */
                    rc = TRACE_OK;
            }
            if (x->w && rc == TRACE_OK)
                rc = trace_epcis_writer_add_site(
                    x->w, p->party, p->sites[i]->site, p->sites[i]->sgln);
        }
    }
    if (rc != TRACE_OK)
        ; /* said below */
    else if (it->item_case == TRACE__OPS__V1__ITEM__ITEM_PARTY &&
             it->party->gln) {
        if (x->m)
            rc = trace_epcis_master_add_party(x->m, it->party->gln,
                                              it->party->party);
        if (x->w && rc == TRACE_OK)
            rc = trace_epcis_writer_add_party(x->w, it->party->party,
                                              it->party->gln);
    } else if (it->item_case == TRACE__OPS__V1__ITEM__ITEM_PRODUCT) {
        const Trace__Ops__V1__Product *p = it->product;
        if (x->m)
            rc = trace_epcis_master_add_product(x->m, p->gtin, p->substance,
                                                p->content, p->content_unit,
                                                p->units_per_pack);
        if (x->w && rc == TRACE_OK)
            rc = trace_epcis_writer_add_product(x->w, p->gtin, p->substance);
    } else if (it->item_case == TRACE__OPS__V1__ITEM__ITEM_PERMIT && x->m) {
        rc = trace_epcis_master_add_permit(x->m, it->permit->permit,
                                           it->permit->kind);
    }
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: the daemon's master data: %s\n",
                trace_error_last());
        return 6;
    }
    return 0;
}

/* 0 or the exit code (printed). */
static int remote_master_load(struct globals *g, struct remote_master *x,
                              int permits)
{
    Trace__Ops__V1__Parties pq = TRACE__OPS__V1__PARTIES__INIT;
    Trace__Ops__V1__Products prq = TRACE__OPS__V1__PRODUCTS__INIT;
    Trace__Ops__V1__PermitList pl = TRACE__OPS__V1__PERMIT_LIST__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int ret;

    call.op_case = TRACE__OPS__V1__CALL__OP_PARTIES;
    call.parties = &pq;
    if ((ret = ctl_call_items(g, NULL, &call, rm_item, x)) != 0)
        return ret;
    call.op_case = TRACE__OPS__V1__CALL__OP_PRODUCTS;
    call.products = &prq;
    if ((ret = ctl_call_items(g, NULL, &call, rm_item, x)) != 0)
        return ret;
    if (!permits)
        return 0;
    call.op_case = TRACE__OPS__V1__CALL__OP_PERMIT_LIST;
    call.permit_list = &pl;
    return ctl_call_items(g, NULL, &call, rm_item, x);
}

/* The mapped lines go to a temporary file, each line's EPCIS event
 * index kept to name it in the daemon's messages. */
struct epcis_spool {
    struct epcis_run run; /* first: epcis_note's */
    FILE *f;
    unsigned long *index, n, cap;
    int oom;
};

static int spool_line(void *ctx, const char *line, size_t len,
                      unsigned long index)
{
    struct epcis_spool *x = ctx;

    if (x->n == x->cap) {
        unsigned long nc = x->cap ? x->cap * 2 : 4096;
        unsigned long *p = realloc(x->index, nc * sizeof(*p));
        if (!p) {
            x->oom = 1;
            return TRACE_ENOMEM;
        }
        x->index = p;
        x->cap = nc;
    }
    x->index[x->n++] = index;
    fwrite(line, 1, len, x->f);
    fputc('\n', x->f);
    return 0;
}

/* "line N: rest" (N a line of the spool) -> "eventList[I]: rest" */
static void print_spooled(const struct epcis_spool *x, const char *msg,
                          size_t len)
{
    unsigned long n;
    int used = 0;

    if (sscanf(msg, "line %lu: %n", &n, &used) == 1 && used > 0 && n > 0 &&
        n <= x->n && (size_t)used <= len)
        fprintf(ctl_err, "tracectl: eventList[%lu]: %.*s\n", x->index[n - 1],
                (int)(len - (size_t)used), msg + used);
    else
        fprintf(ctl_err, "tracectl: %.*s\n", (int)len, msg);
}

static int import_epcis_remote(struct globals *g, const char *path,
                               unsigned flags, const char *receipt)
{
    struct remote_master rm = {NULL, NULL};
    struct epcis_spool x;
    trace_epcis_summary sum;
    trace_append_result res;
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    int rc, ret = 0, read_failed = 0;

    memset(&x, 0, sizeof(x));
    x.run.first_err = TRACE_OK;
    if (!in) {
        fprintf(ctl_err, "tracectl: %s: %s\n", path, strerror(errno));
        return 4;
    }
    if (!(x.f = tmpfile())) {
        fprintf(ctl_err, "tracectl: cannot make a temporary file (TMPDIR)\n");
        ret = 6;
        goto out;
    }
    if (trace_epcis_master_new(&rm.m) != TRACE_OK) {
        ret = ctl_fail(TRACE_ENOMEM);
        goto out;
    }
    if ((ret = remote_master_load(g, &rm, 1)) != 0)
        goto out;
    rc = trace_epcis_read(rm.m, in, spool_line, epcis_note, &x, &sum);
    if (rc == TRACE_OK && (x.oom || fflush(x.f) != 0 || ferror(x.f))) {
        ctl_set_errmsg("cannot write the mapped events to a temporary file");
        rc = TRACE_EIO;
    }
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s: %s\ntracectl: nothing was imported\n",
                path,
                x.oom || rc == TRACE_EIO ? ctl_errmsg() : trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    print_epcis_summary(g, &sum);
    if (sum.rejected) {
        fprintf(ctl_err,
                "tracectl: %llu EPCIS events rejected; nothing was imported\n",
                (unsigned long long)sum.rejected);
        ret = trace_error_exit_code(TRACE_EINVAL);
        goto out;
    }
    if (x.n == 0) {
        memset(&res, 0, sizeof(res));
        print_imported(g, &res);
        goto out;
    }
    if (fseek(x.f, 0, SEEK_SET) != 0) {
        fprintf(ctl_err, "tracectl: cannot read the mapped events back\n");
        ret = 6;
        goto out;
    }
    if (receipt && !(g->receipts = ctl_receipts_new())) {
        ret = 6;
        goto out;
    }
    rc = ctl_import_stream(g, x.f, g->as, flags, &res, &read_failed);
    if (rc != TRACE_OK) {
        const char *m = ctl_errmsg(), *nl;
        unsigned long rejected, total;
        for (; (nl = strchr(m, '\n')); m = nl + 1)
            print_spooled(&x, m, (size_t)(nl - m));
        print_spooled(&x, m, strlen(m));
        ctl_rejected(&rejected, &total);
        if (rejected)
            fprintf(ctl_err,
                    "tracectl: %lu EPCIS events' ledger events refused; "
                    "nothing was imported\n",
                    rejected);
        else
            fprintf(ctl_err, "tracectl: nothing was imported\n");
        ret = trace_error_exit_code(rc);
        goto out;
    }
    print_imported(g, &res);
    if (receipt)
        ret = ctl_receipt_save(g, NULL, receipt, &res);
out:
    ctl_receipts_free(g->receipts);
    g->receipts = NULL;
    trace_epcis_master_free(rm.m);
    free(x.index);
    if (x.f)
        fclose(x.f);
    if (in != stdin)
        fclose(in);
    return ret;
}

/* import --format csv: each record of the CSV becomes one JSON line
 * given to the import, numbered by the line it starts on. */
struct csv_run {
    trace_import *im;
    unsigned long errors, warned;
    int first_err;
};

static void csv_error(struct csv_run *x, int rc, const char *msg)
{
    if (x->first_err == TRACE_OK)
        x->first_err = rc;
    if (++x->errors <= MAX_REPORTED_ERRORS)
        fprintf(ctl_err, "tracectl: %s\n", msg);
}

static int csv_line(void *ctx, const char *line, size_t len,
                    unsigned long lineno)
{
    struct csv_run *x = ctx;
    int rc = trace_import_line(x->im, line, len, lineno);

    print_warnings(x->im, &x->warned);
    if (rc != TRACE_OK)
        csv_error(x, rc, trace_error_last());
    return 0;
}

static int csv_reject(void *ctx, unsigned long lineno, const char *reason)
{
    (void)lineno;
    csv_error(ctx, TRACE_EINVAL, reason);
    return 0;
}

/* Reads the CSV through the mapping at `map` into the import `im`; 0 or
 * the exit code. */
static int import_csv(trace_import *im, FILE *in, const char *path,
                      const char *map)
{
    struct csv_run x = {im, 0, 0, TRACE_OK};
    trace_csvmap *m = NULL;
    FILE *mf = fopen(map, "rb");
    unsigned long rows = 0;
    int rc, ret = 0;

    if (!mf) {
        fprintf(ctl_err, "tracectl: %s: %s\n", map, strerror(errno));
        return 4;
    }
    rc = trace_csvmap_load(&m, mf);
    fclose(mf);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s: %s\ntracectl: nothing was imported\n",
                map, trace_error_last());
        return trace_error_exit_code(rc);
    }
    rc = trace_csvmap_read(m, in, csv_line, csv_reject, &x, &rows);
    while (rc == TRACE_OK && (rc = trace_import_next_error(im)) != TRACE_OK) {
        csv_error(&x, rc, trace_error_last());
        rc = TRACE_OK;
    }
    print_warnings(im, &x.warned);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s: %s\ntracectl: nothing was imported\n",
                path, trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    if (x.errors) {
        if (x.errors > MAX_REPORTED_ERRORS)
            fprintf(ctl_err, "tracectl: ... %lu more rejected rows\n",
                    x.errors - MAX_REPORTED_ERRORS);
        fprintf(ctl_err,
                "tracectl: %lu of %lu rows rejected; nothing was imported\n",
                x.errors, rows);
        ret = trace_error_exit_code(x.first_err);
    }
out:
    trace_csvmap_free(m);
    return ret;
}

int cmd_import(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"provision-keys", no_argument, NULL, 'p'},
        {"historic", no_argument, NULL, 'H'},
        {"dry-run", no_argument, NULL, 'n'},
        {"strict", no_argument, NULL, 's'},
        {"receipt", required_argument, NULL, 'r'},
        {"format", required_argument, NULL, 'F'},
        {"map", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    unsigned flags = 0, checks = TRACE_APPEND_CHECK;
    const char *receipt = NULL, *map = NULL;
    int dry_run = 0, epcis = 0, csv = 0;
    char tmp_keys[64] = "";
    trace_ledger *l = NULL;
    trace_keyring *ring = NULL;
    trace_import *im = NULL;
    trace_append_result res;
    struct stat st;
    uint64_t hint = 0;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0, errors = 0, warned = 0;
    int c, rc, ret = 0, first_err = TRACE_OK, tty = isatty(2);

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            flags |= TRACE_APPEND_PROVISION_KEYS;
            break;
        case 'H':
            flags |= TRACE_APPEND_HISTORIC;
            break;
        case 'n':
            dry_run = 1;
            break;
        case 's':
            checks = TRACE_APPEND_STRICT;
            break;
        case 'r':
            receipt = optarg;
            break;
        case 'F':
            epcis = strcmp(optarg, "epcis") == 0;
            csv = strcmp(optarg, "csv") == 0;
            if (!epcis && !csv && strcmp(optarg, "jsonl") != 0)
                return ctl_usage("import",
                                 "unknown --format %s (jsonl, epcis, csv)",
                                 optarg);
            break;
        case 'm':
            map = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("import"));
            return 0;
        default:
            return ctl_usage("import", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("import", "%s", "needs exactly one FILE (or -)");
    if (csv != (map != NULL))
        return ctl_usage("import", "%s",
                         "--format csv needs --map MAP, and --map is for "
                         "--format csv");
    if ((flags & TRACE_APPEND_HISTORIC) && checks == TRACE_APPEND_STRICT)
        return ctl_usage("import", "%s",
                         "--historic records are not checked at entry: "
                         "--strict has nothing to refuse");
    if (dry_run && receipt)
        return ctl_usage("import", "%s",
                         "a dry run stores nothing: it has no receipt");
    if (!(flags & TRACE_APPEND_HISTORIC))
        flags |= checks;
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    if (!l && dry_run) {
        fprintf(ctl_err, "tracectl: import --dry-run is for a ledger folder "
                         "(--data); through traced every chunk is checked "
                         "before anything is committed\n");
        return EXIT_USAGE;
    }
    if (!l && epcis)
        return import_epcis_remote(g, argv[optind], flags, receipt);
    if (!l && csv) {
        fprintf(ctl_err, "tracectl: import --format csv: use --data DIR "
                         "(not yet through traced)\n");
        return EXIT_USAGE;
    }
    if (!l)
        return import_remote(g, argv[optind], flags, receipt);
    /* a dry run provisions keys in a copy of the key folder, dropped after */
    if (dry_run && (flags & TRACE_APPEND_PROVISION_KEYS) &&
        (ret = copy_keys_tmp(ctl_keys_dir(g), tmp_keys, sizeof(tmp_keys))) != 0)
        goto out;
    if ((rc = trace_keyring_open(
             &ring, tmp_keys[0] ? tmp_keys : ctl_keys_dir(g), 0)) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    in = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    if (!in) {
        fprintf(ctl_err, "tracectl: %s: %s\n", argv[optind], strerror(errno));
        ret = 4;
        goto out;
    }
    if (in != stdin && fstat(fileno(in), &st) == 0)
        hint = (uint64_t)st.st_size;
    /* one transaction for the whole input, written as it is read */
    if ((rc = trace_import_begin(&im, l, ring, g->as, flags, hint)) !=
        TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    if (epcis) {
        if ((ret = import_epcis(g, l, im, in, argv[optind])) != 0)
            goto out;
        goto commit;
    }
    if (csv) {
        if ((ret = import_csv(im, in, argv[optind], map)) != 0)
            goto out;
        goto commit;
    }
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        rc = trace_import_line(im, line, (size_t)n, lineno);
        print_warnings(im, &warned);
        if (rc != TRACE_OK) {
            if (first_err == TRACE_OK)
                first_err = rc;
            if (++errors <= MAX_REPORTED_ERRORS)
                fprintf(ctl_err, "tracectl: %s\n", trace_error_last());
        }
        if (tty && lineno % 100000 == 0)
            fprintf(ctl_err, "\rread %lu lines", lineno);
    }
    if (tty && lineno >= 100000)
        fprintf(ctl_err, "\rread %lu lines\n", lineno);
    /* the lines given last are checked behind the reading */
    while ((rc = trace_import_next_error(im)) != TRACE_OK) {
        if (first_err == TRACE_OK)
            first_err = rc;
        if (++errors <= MAX_REPORTED_ERRORS)
            fprintf(ctl_err, "tracectl: %s\n", trace_error_last());
    }
    print_warnings(im, &warned);
    if (warned > MAX_REPORTED_WARNINGS)
        fprintf(ctl_err, "tracectl: warning: ... %lu more findings\n",
                warned - MAX_REPORTED_WARNINGS);
    if (ferror(in)) {
        fprintf(ctl_err, "tracectl: %s: read error; nothing was imported\n",
                argv[optind]);
        ret = 6;
        goto out;
    }
    if (errors) {
        if (errors > MAX_REPORTED_ERRORS)
            fprintf(ctl_err, "tracectl: ... %lu more rejected lines\n",
                    errors - MAX_REPORTED_ERRORS);
        fprintf(ctl_err,
                "tracectl: %lu of %lu lines rejected; nothing was imported\n",
                errors, lineno);
        ret = trace_error_exit_code(first_err);
        goto out;
    }
commit:
    rc = dry_run ? trace_import_check(im, &res) : trace_import_commit(im, &res);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s\ntracectl: nothing was imported\n",
                trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    if (dry_run) {
        if (g->json)
            fprintf(ctl_out,
                    "{\"dry_run\":true,\"appended\":%llu,\"duplicates\":%llu,"
                    "\"provisioned\":%llu,\"warnings\":%llu}\n",
                    (unsigned long long)res.appended,
                    (unsigned long long)res.duplicates,
                    (unsigned long long)res.provisioned,
                    (unsigned long long)res.warnings);
        else
            fprintf(ctl_out,
                    "dry run: %llu events would be imported (%llu already "
                    "present, %llu keys would be provisioned); nothing was "
                    "stored\n",
                    (unsigned long long)(res.appended - res.provisioned),
                    (unsigned long long)res.duplicates,
                    (unsigned long long)res.provisioned);
    } else {
        print_imported(g, &res);
        if (receipt)
            ret = ctl_receipt_save(g, l, receipt, &res);
        if (res.warnings) {
            trace_import_free(im); /* its transaction ended: free the writer */
            im = NULL;
            reconcile_now(l);
        }
    }
out:
    trace_import_free(im); /* aborts what was not committed */
    if (tmp_keys[0])
        remove_tmp_keys(tmp_keys);
    if (in && in != stdin)
        fclose(in);
    free(line);
    trace_keyring_free(ring);
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* export                                                               */

/* export --format epcis through traced: the daemon's JSON Lines export,
 * page by page, each line into the EPCIS writer as it arrives (a stdio
 * stream whose writes are cut into lines). */
struct line_sink {
    trace_epcis_writer *w;
    char *buf;
    size_t n, cap;
    int rc, oom;
};

static ssize_t sink_write(void *cookie, const char *data, size_t len)
{
    struct line_sink *k = cookie;
    size_t done = 0;

    while (done < len && k->rc == TRACE_OK) {
        const char *nl = memchr(data + done, '\n', len - done);
        size_t part = nl ? (size_t)(nl - (data + done)) : len - done;
        if (k->n + part + 1 > k->cap) {
            size_t nc = k->cap ? k->cap : 65536;
            char *p;
            while (nc < k->n + part + 1)
                nc *= 2;
            if (!(p = realloc(k->buf, nc))) {
                k->rc = TRACE_ENOMEM; /* the library's message is older */
                k->oom = 1;
                break;
            }
            k->buf = p;
            k->cap = nc;
        }
        memcpy(k->buf + k->n, data + done, part);
        k->n += part;
        done += part;
        if (nl) {
            done++;
            k->rc = trace_epcis_writer_line(k->w, k->buf, k->n);
            k->n = 0;
        }
    }
    return k->rc == TRACE_OK ? (ssize_t)len : -1;
}

static int export_epcis_remote(struct globals *g,
                               const Trace__Ops__V1__Export *x,
                               trace_epcis_export_summary *sum)
{
    cookie_io_functions_t io = {NULL, sink_write, NULL, NULL};
    struct remote_master rm = {NULL, NULL};
    struct line_sink k = {NULL, NULL, 0, 0, TRACE_OK, 0};
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    ops_render r;
    FILE *f = NULL;
    int ret;

    if (trace_epcis_writer_new(&rm.w, ctl_out) != TRACE_OK)
        return ctl_fail(TRACE_ENOMEM);
    k.w = rm.w;
    if ((ret = remote_master_load(g, &rm, 0)) != 0)
        goto out;
    if (!(f = fopencookie(&k, "w", io))) {
        fprintf(ctl_err, "tracectl: out of memory\n");
        ret = 6;
        goto out;
    }
    ctl_render_init(g, &r);
    r.out = f;
    r.json = 0;
    call.op_case = TRACE__OPS__V1__CALL__OP_EXPORT;
    call.export = (Trace__Ops__V1__Export *)x;
    ret = ctl_call_into(g, &call, &r);
    fclose(f); /* the last writes reach the sink: its rc says */
    f = NULL;
    if (ret != 0)
        goto out;
    if (k.oom) {
        fprintf(ctl_err, "tracectl: out of memory\n");
        ret = 6;
        goto out;
    }
    if (k.rc == TRACE_OK && k.n) /* a last line without its newline */
        k.rc = trace_epcis_writer_line(k.w, k.buf, k.n);
    if (k.rc == TRACE_OK)
        k.rc = trace_epcis_writer_end(rm.w, sum);
    if (k.rc != TRACE_OK)
        ret = ctl_fail(k.rc);
out:
    if (f)
        fclose(f);
    free(k.buf);
    trace_epcis_writer_free(rm.w);
    return ret;
}

/* export --format epcis: one EPCISDocument to stdout, streamed; what is
 * left out is summed up on stderr. */
static int export_epcis(struct globals *g, const Trace__Ops__V1__Export *x)
{
    trace_export_opts eo = TRACE_EXPORT_OPTS_INIT;
    trace_epcis_export_summary sum;
    trace_ledger *l = NULL;
    int rc, ret;
    uint64_t left;

    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    if (!l) {
        if ((ret = export_epcis_remote(g, x, &sum)) != 0)
            return ret;
    } else {
        eo.party = x->party;
        eo.has_from = x->has_from_us;
        eo.from_us = x->from_us;
        eo.has_to = x->has_to_us;
        eo.to_us = x->to_us;
        rc = trace_epcis_export(l, &eo, ctl_out, &sum);
        ctl_close(g, l);
        if (rc != TRACE_OK)
            return ctl_fail(rc);
    }
    left = sum.other_types + sum.no_product + sum.no_gln + sum.not_expressible;
    fprintf(ctl_err,
            "tracectl: EPCIS: %llu events written, %llu movements left out "
            "(%llu of types EPCIS does not carry here, %llu without a "
            "product, %llu of a party without a GLN, %llu not expressible), "
            "%llu other entries (registrations, permits, notes)\n",
            (unsigned long long)sum.written, (unsigned long long)left,
            (unsigned long long)sum.other_types,
            (unsigned long long)sum.no_product, (unsigned long long)sum.no_gln,
            (unsigned long long)sum.not_expressible,
            (unsigned long long)sum.not_movements);
    return 0;
}

int cmd_export(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"party", required_argument, NULL, 'p'},
        {"format", required_argument, NULL, 'F'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Export x = TRACE__OPS__V1__EXPORT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c, epcis = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            x.party = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "epcis") == 0)
                epcis = 1;
            else if (strcmp(optarg, "jsonl") != 0)
                return ctl_usage("export", "unknown --format %s (jsonl, epcis)",
                                 optarg);
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &x.from_us) != 0)
                return ctl_bad_time("export", "--from", optarg);
            x.has_from_us = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 1, &x.to_us) != 0)
                return ctl_bad_time("export", "--to", optarg);
            x.has_to_us = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("export"));
            return 0;
        default:
            return ctl_usage("export", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("export", "unexpected argument %s", argv[optind]);
    if (x.party && !trace_party_id_valid(x.party))
        return ctl_usage("export", "invalid party id %s", x.party);
    if (epcis)
        return export_epcis(g, &x);
    call.op_case = TRACE__OPS__V1__CALL__OP_EXPORT;
    call.export = &x;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* verify                                                               */

/* Runs in a child process: a damaged file may crash LMDB itself. */
static int verify_child(struct globals *g, const ops_call_t *call)
{
    trace_ledger *l;
    int rc;

    rc = trace_ledger_open(&l, g->data);
    if (rc != TRACE_OK) {
        /* a ledger that exists but cannot be opened is damaged */
        if (rc != TRACE_ENOTFOUND && rc != TRACE_ENOMEM) {
            if (g->json)
                fprintf(ctl_out, "{\"ok\":false,\"reason\":\"ledger cannot be "
                                 "opened\"}\n");
            fprintf(ctl_err, "tracectl: verify FAILED: %s\n",
                    trace_error_last());
            return 3;
        }
        return ctl_fail(rc);
    }
    rc = ctl_call_on(g, l, call);
    trace_ledger_close(l);
    return rc;
}

static int verify_call(struct globals *g, int argc, char **argv,
                       Trace__Ops__V1__Verify *vp, ops_call_t *cp);

int cmd_verify(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from-checkpoint", required_argument, NULL, 'c'},
        {"deep", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Verify v = TRACE__OPS__V1__VERIFY__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char *note = NULL;
    size_t note_len;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            free(note);
            ctl_help(ctl_find_command("verify"));
            return 0;
        }
        if (c == 'c') {
            free(note);
            if (ctl_read_file(optarg, &note, &note_len) != 0) {
                fprintf(ctl_err, "tracectl: cannot read %s\n", optarg);
                return 4;
            }
            v.from_checkpoint = note;
            continue;
        }
        if (c == 'd') {
            v.has_deep = v.deep = 1;
            continue;
        }
        free(note);
        return ctl_usage("verify", "%s", "unknown option");
    }
    ret = verify_call(g, argc, argv, &v, &call);
    free(note);
    return ret;
}

static int verify_call(struct globals *g, int argc, char **argv,
                       Trace__Ops__V1__Verify *vp, ops_call_t *cp)
{
    Trace__Ops__V1__Verify v = *vp;
    ops_call_t call = *cp;
    int status;
    pid_t pid;

    if (optind != argc)
        return ctl_usage("verify", "unexpected argument %s", argv[optind]);
    call.op_case = TRACE__OPS__V1__CALL__OP_VERIFY;
    call.verify = &v;
    if (g->connect)
        return ctl_call(g, &call);
    fflush(ctl_out);
    pid = fork();
    if (pid < 0) {
        perror("tracectl: fork");
        return 6;
    }
    if (pid == 0) {
        int rc = verify_child(g, &call);
        fflush(ctl_out);
        _exit(rc);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("tracectl: waitpid");
            return 6;
        }
    /* the child exits 0, 3, 4, 5 or 6; anything else means reading the
     * storage crashed it (a signal, or a sanitizer that caught one) */
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0 || code == 3 || code == 4 || code == 5 || code == 6)
            return code;
    }
    if (g->json)
        fprintf(ctl_out, "{\"ok\":false,\"reason\":\"storage damaged\"}\n");
    fprintf(ctl_err,
            "tracectl: verify FAILED: the ledger's storage is damaged "
            "(reading it crashed: %s %d)\n",
            WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return 3;
}

/* ------------------------------------------------------------------ */
/* backup                                                               */

int cmd_backup(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    Trace__Ops__V1__Backup b = TRACE__OPS__V1__BACKUP__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            ctl_help(ctl_find_command("backup"));
            return 0;
        }
        return ctl_usage("backup", "%s", "unknown option");
    }
    if (optind + 1 != argc)
        return ctl_usage("backup", "%s", "needs exactly one DEST folder");
    b.dest = argv[optind];
    call.op_case = TRACE__OPS__V1__CALL__OP_BACKUP;
    call.backup = &b;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* status                                                               */

static void when_text(char *buf, size_t cap, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    if (us <= 0 || !gmtime_r(&t, &tm))
        snprintf(buf, cap, "none since start");
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void when_json(const char *key, int64_t us)
{
    char buf[40];

    if (us <= 0) {
        fprintf(ctl_out, ",\"%s\":null", key);
        return;
    }
    when_text(buf, sizeof(buf), us);
    ops_json_str(ctl_out, key, buf, 1);
}

int cmd_status(struct globals *g, int argc, char **argv)
{
    const struct remote_status *st;
    char hex[65] = "", a[40], b[40], c[40];
    struct timespec now;
    int ret;

    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("status"));
        return 0;
    }
    if (argc > 1)
        return ctl_usage("status", "unexpected argument %s", argv[1]);
    if (!g->connect) {
        /* a ledger folder: its size and head */
        Trace__Ops__V1__Head hd = TRACE__OPS__V1__HEAD__INIT;
        ops_call_t call = TRACE__OPS__V1__CALL__INIT;
        call.op_case = TRACE__OPS__V1__CALL__OP_HEAD;
        call.head = &hd;
        return ctl_call(g, &call);
    }
    g->hello_only = 1;
    if (!g->remote && (ret = remote_open(g)) != 0) {
        if (g->json) {
            fputc('{', ctl_out);
            ops_json_str(ctl_out, "url", g->connect, 0);
            fputs(",\"running\":false}\n", ctl_out);
        }
        return ret;
    }
    st = remote_status(g);
    for (int i = 0; st->has_size && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", st->head[i]);
    if (g->json) {
        fputc('{', ctl_out);
        ops_json_str(ctl_out, "url", g->connect, 0);
        fprintf(ctl_out, ",\"running\":true,\"protocol\":%u",
                (unsigned)st->version);
        ops_json_str(ctl_out, "regulator", st->regulator, 1);
        if (st->has_size)
            fprintf(ctl_out, ",\"entries\":%llu,\"head\":\"%s\"",
                    (unsigned long long)st->size, hex);
        when_json("started", st->started_us);
        when_json("last_commit", st->last_commit_us);
        when_json("last_reconciliation", st->last_reconcile_us);
        fprintf(ctl_out, ",\"jobs\":%u}\n", (unsigned)st->jobs);
        remote_close(g);
        return 0;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    when_text(a, sizeof(a), st->started_us);
    when_text(b, sizeof(b), st->last_commit_us);
    when_text(c, sizeof(c), st->last_reconcile_us);
    fprintf(ctl_out, "traced at %s: running since %s", g->connect, a);
    if (st->started_us > 0)
        fprintf(ctl_out, " (%lld s)",
                (long long)(now.tv_sec - st->started_us / 1000000));
    fprintf(ctl_out, ", protocol %u, root regulator %s\n",
            (unsigned)st->version, st->regulator);
    if (st->has_size)
        fprintf(ctl_out, "ledger: %llu entries, head %s\n",
                (unsigned long long)st->size, hex);
    fprintf(ctl_out, "last commit: %s\nlast reconciliation: %s\njobs: %u\n", b,
            c, (unsigned)st->jobs);
    remote_close(g);
    return 0;
}
