/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE /* fopencookie */
/*
 * cmd_epcis.c - import --format epcis and export --format epcis: the
 * EPCIS reader feeding an import (on a thread of its own, or spooled to
 * a file through traced) and the EPCIS writer fed by an export; messages
 * about a line name its EPCIS event.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/epcis.h"
#include "tracectl.h"

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
int import_epcis(struct globals *g, trace_ledger *l, trace_import *im, FILE *in,
                 const char *path)
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

int import_epcis_remote(struct globals *g, const char *path, unsigned flags,
                        const char *receipt)
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

/* ------------------------------------------------------------------ */
/* export --format epcis                                                */

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
int export_epcis(struct globals *g, const Trace__Ops__V1__Export *x)
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
