/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import.c - streaming imports (tracectl import) on two threads.
 *
 * The caller's thread reads and parses lines (JSON, units, catalog,
 * pseudonyms) into batches; a thread of the import's own checks,
 * indexes, hashes, signs and writes them in one write transaction (the
 * writer of append.c), and commits or aborts it.  A bounded number of
 * batches is in flight (N_BATCHES, each at most BATCH_LINES lines or
 * BATCH_BYTES bytes of input), so memory does not grow with the input.
 *
 * Errors keep line order: a line that fails to parse travels to the
 * writer thread as a failed item, and the writer thread records errors
 * in the order of the items it meets, whether parsing or its own checks
 * refused them.  After the first error nothing more is checked or
 * written, but later lines are still parsed, to report more.  The
 * caller receives the recorded errors one per call of trace_import_line
 * (so an error may come back a few lines late, always with its own line
 * number) and the rest from trace_import_next_error.
 *
 * LMDB ties a write transaction to the thread that began it: the import
 * thread begins, commits and aborts it, and only it touches the writer.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"

/* deep enough that lines are parsed on while the writer thread signs
 * and writes a window of entries (~0.6 s for 262,144 of them) */
#define N_BATCHES   24
#define BATCH_LINES 2048
#define BATCH_BYTES (1u << 20)

struct iitem {
    struct item it;  /* it.ev NULL: the line failed to parse */
    int rc;          /* its parse error */
    const char *msg; /* ("line N: ...") in the batch arena */
};

struct ibatch {
    arena *a;
    struct iitem *items;
    size_t n, bytes;
    struct ibatch *next;
};

/* An error the writer thread recorded and the caller has not yet taken. */
struct ierr {
    int rc;
    struct ierr *next;
    char msg[];
};

enum { RUN, COMMIT, ABORT, CHECK };

struct trace_import {
    trace_ledger *l;
    trace_keyring *ring;
    products_seen *seen; /* products of the file's earlier lines */
    char as[72];
    int has_as;
    unsigned flags;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: */
    struct ibatch *todo, *todo_tail; /* for the writer thread, in order */
    struct ibatch *spare;            /* processed, to be filled again */
    int working;                     /* the writer thread holds a batch */
    int end;                         /* RUN, COMMIT, CHECK or ABORT */
    int ready, done;                 /* the thread began; it finished */
    int begin_rc, commit_rc;
    char begin_msg[1024], commit_msg[1024];
    struct ierr *errs, *errs_tail;
    struct ierr *warns, *warns_tail; /* findings of the checks at entry */
    int bad; /* code of the first rejected line, 0 if none (set by the
                import thread only) */
    /* the caller's: */
    struct ibatch *cur;
    struct ierr *warn_taken; /* the warning last returned */
    struct ibatch all[N_BATCHES];
    /* the writer thread's: */
    struct writer w;
    trace_append_result res;
};

static void record_error(trace_import *im, int rc, const char *msg)
{
    size_t n = strlen(msg);
    struct ierr *e = malloc(sizeof(*e) + n + 1);

    pthread_mutex_lock(&im->mu);
    if (!im->bad)
        im->bad = rc;
    if (e) {
        e->rc = rc;
        e->next = NULL;
        memcpy(e->msg, msg, n + 1);
        if (im->errs_tail)
            im->errs_tail->next = e;
        else
            im->errs = e;
        im->errs_tail = e;
    }
    pthread_mutex_unlock(&im->mu);
}

/* A finding of the checks at entry, queued for the caller. */
static int import_finding(void *ctx, unsigned long lineno,
                          const trace_finding *f)
{
    trace_import *im = ctx;
    char msg[1024];
    size_t n;
    struct ierr *e;

    n = (size_t)snprintf(msg, sizeof(msg), "line %lu: %s: %s", lineno, f->code,
                         f->message);
    if (n >= sizeof(msg))
        n = sizeof(msg) - 1;
    if (!(e = malloc(sizeof(*e) + n + 1)))
        return 0; /* counted in the result all the same */
    e->rc = TRACE_OK;
    e->next = NULL;
    memcpy(e->msg, msg, n);
    e->msg[n] = '\0';
    pthread_mutex_lock(&im->mu);
    if (im->warns_tail)
        im->warns_tail->next = e;
    else
        im->warns = e;
    im->warns_tail = e;
    pthread_mutex_unlock(&im->mu);
    return 0;
}

/* The writer thread's part of one batch. */
static void run_batch(trace_import *im, struct ibatch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct iitem *x = &b->items[i];
        int rc;

        if (!x->it.ev) {
            record_error(im, x->rc, x->msg);
            continue;
        }
        if (im->bad)  /* only this thread sets it */
            continue; /* only parsed, to report more */
        rc = process(&im->w, &x->it, im->ring, im->has_as ? im->as : NULL,
                     im->flags);
        if (rc != TRACE_OK) {
            trace_fail_line(rc, x->it.lineno);
            record_error(im, rc, trace_error_last());
        }
    }
}

static void *import_main(void *arg)
{
    trace_import *im = arg;
    int rc;

    rc = writer_begin(&im->w, im->l, &im->res);
    if (rc == TRACE_OK)
        rc = check_historic(&im->w, im->ring, im->has_as ? im->as : NULL,
                            im->flags);
    im->w.historic = (im->flags & TRACE_APPEND_HISTORIC) != 0;
    im->w.checks = (im->flags & TRACE_APPEND_STRICT)  ? WRITER_CHECKS_STRICT
                   : (im->flags & TRACE_APPEND_CHECK) ? WRITER_CHECKS
                                                      : 0;
    /* one transaction of many events: its index entries put in key order
     * at the end (bulk.c), unless the checks at entry read them after
     * each event */
    if (rc == TRACE_OK && (!im->w.checks || im->w.historic) &&
        (rc = bulk_begin(im->l, im->w.txn)) == TRACE_OK)
        im->w.bulk = 1;
    im->w.on_finding = import_finding;
    im->w.finding_ctx = im;
    pthread_mutex_lock(&im->mu);
    im->ready = 1;
    im->begin_rc = rc;
    if (rc != TRACE_OK)
        snprintf(im->begin_msg, sizeof(im->begin_msg), "%s",
                 trace_error_last());
    pthread_cond_broadcast(&im->cv);
    while (rc == TRACE_OK) {
        struct ibatch *b;
        while (!im->todo && im->end == RUN)
            pthread_cond_wait(&im->cv, &im->mu);
        if (im->end == ABORT || !(b = im->todo))
            break; /* everything given is done: the caller decided */
        if (!(im->todo = b->next))
            im->todo_tail = NULL;
        im->working = 1;
        pthread_mutex_unlock(&im->mu);
        run_batch(im, b);
        pthread_mutex_lock(&im->mu);
        arena_reset(b->a);
        b->n = b->bytes = 0;
        b->next = im->spare;
        im->spare = b;
        im->working = 0;
        pthread_cond_broadcast(&im->cv);
    }
    if (rc == TRACE_OK && (im->end == COMMIT || im->end == CHECK)) {
        if (im->bad) {
            rc = trace_fail(im->bad, "the input has rejected lines; nothing "
                                     "was imported");
        } else {
            int check = im->end == CHECK;
            /* every line was handed over and processed: the batches'
             * memory goes back before the commit's peak */
            for (int i = 0; i < N_BATCHES; i++) {
                arena_free(im->all[i].a);
                im->all[i].a = NULL;
            }
            pthread_mutex_unlock(&im->mu);
            /* the keys it made are on disk before the ledger names them */
            if (im->ring)
                rc = keyring_sync(im->ring);
            if (rc == TRACE_OK)
                rc = check ? writer_check(&im->w) : writer_commit(&im->w);
            pthread_mutex_lock(&im->mu);
        }
        im->commit_rc = rc;
        if (rc != TRACE_OK)
            snprintf(im->commit_msg, sizeof(im->commit_msg), "%s",
                     trace_error_last());
    }
    pthread_mutex_unlock(&im->mu);
    writer_end(&im->w); /* aborts what was not committed */
    pthread_mutex_lock(&im->mu);
    im->done = 1;
    pthread_cond_broadcast(&im->cv);
    pthread_mutex_unlock(&im->mu);
    return NULL;
}

int trace_import_begin(trace_import **out, trace_ledger *l, trace_keyring *ring,
                       const char *as, unsigned flags, uint64_t size_hint)
{
    trace_import *im;
    int rc;

    if (!(im = calloc(1, sizeof(*im))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    im->l = l;
    im->ring = ring;
    im->flags = flags;
    if (!(im->seen = products_seen_new())) {
        free(im);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    if (as) {
        snprintf(im->as, sizeof(im->as), "%s", as);
        im->has_as = 1;
    }
    pthread_mutex_init(&im->mu, NULL);
    pthread_cond_init(&im->cv, NULL);
    for (int i = 0; i < N_BATCHES; i++) {
        struct ibatch *b = &im->all[i];
        if (!(b->a = arena_new(0)) ||
            !(b->items = calloc(BATCH_LINES, sizeof(*b->items)))) {
            trace_import_free(im);
            return trace_fail(TRACE_ENOMEM, "out of memory");
        }
        arena_set_block(b->a, 4u << 20);
        if (i > 0) {
            b->next = im->spare;
            im->spare = b;
        }
    }
    im->cur = &im->all[0];
    /* room for the whole input in one transaction (no transaction may be
     * open while the map grows) */
    if ((rc = ledger_ensure_room(l, size_hint * 4)) != TRACE_OK) {
        trace_import_free(im);
        return rc;
    }
    if (ring)
        keyring_defer_sync(ring, 1);
    if (pthread_create(&im->th, NULL, import_main, im) != 0) {
        trace_import_free(im);
        return trace_fail(TRACE_ENOMEM, "cannot start the import's thread");
    }
    im->started = 1;
    pthread_mutex_lock(&im->mu);
    while (!im->ready)
        pthread_cond_wait(&im->cv, &im->mu);
    rc = im->begin_rc;
    pthread_mutex_unlock(&im->mu);
    if (rc != TRACE_OK) {
        char msg[sizeof(im->begin_msg)];
        memcpy(msg, im->begin_msg, sizeof(msg));
        trace_import_free(im);
        return trace_fail(rc, "%s", msg);
    }
    *out = im;
    return TRACE_OK;
}

/* Hands the batch being filled to the writer thread and takes a spare
 * one, waiting for it if all are in flight. */
static void hand_over(trace_import *im)
{
    struct ibatch *b = im->cur;

    pthread_mutex_lock(&im->mu);
    if (b->n) {
        b->next = NULL;
        if (im->todo_tail)
            im->todo_tail->next = b;
        else
            im->todo = b;
        im->todo_tail = b;
        pthread_cond_broadcast(&im->cv);
        while (!im->spare)
            pthread_cond_wait(&im->cv, &im->mu);
        im->cur = im->spare;
        im->spare = im->cur->next;
    }
    pthread_mutex_unlock(&im->mu);
}

/* The oldest error not yet returned, made the thread's last error. */
static int take_error(trace_import *im)
{
    struct ierr *e;
    int rc = TRACE_OK;

    pthread_mutex_lock(&im->mu);
    if ((e = im->errs) != NULL && !(im->errs = e->next))
        im->errs_tail = NULL;
    pthread_mutex_unlock(&im->mu);
    if (e) {
        rc = trace_fail(e->rc, "%s", e->msg);
        free(e);
    }
    return rc;
}

int trace_import_line(trace_import *im, const char *line, size_t len,
                      unsigned long lineno)
{
    struct ibatch *b = im->cur;
    struct iitem *x;
    int rc;

    if (!im->started || !b->a)
        return trace_fail(TRACE_EINVAL, "the import has already ended");
    if (!trim_line(&line, &len))
        return take_error(im); /* blank */
    x = &b->items[b->n++];
    memset(x, 0, sizeof(*x));
    x->it.lineno = lineno;
    rc = event_from_json_in(&x->it.ev, b->a, line, len, im->l, im->seen);
    if (rc == TRACE_OK) {
        x->it.len = trace__v1__event__get_packed_size(x->it.ev);
        if (!(x->it.bytes = arena_alloc(b->a, x->it.len)))
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
        else
            trace__v1__event__pack(x->it.ev, x->it.bytes);
    }
    if (rc != TRACE_OK) {
        const char *m;
        trace_fail_line(rc, lineno);
        m = trace_error_last();
        x->it.ev = NULL;
        x->rc = rc;
        if (!(x->msg = arena_strdup(b->a, m, strlen(m))))
            x->msg = "out of memory";
    }
    b->bytes += len;
    if (b->n == BATCH_LINES || b->bytes >= BATCH_BYTES)
        hand_over(im);
    return take_error(im);
}

const char *trace_import_next_warning(trace_import *im)
{
    struct ierr *e;

    free(im->warn_taken);
    pthread_mutex_lock(&im->mu);
    if ((e = im->warns) != NULL && !(im->warns = e->next))
        im->warns_tail = NULL;
    pthread_mutex_unlock(&im->mu);
    im->warn_taken = e;
    return e ? e->msg : NULL;
}

int trace_import_next_error(trace_import *im)
{
    hand_over(im);
    pthread_mutex_lock(&im->mu);
    while ((im->todo || im->working) && !im->done)
        pthread_cond_wait(&im->cv, &im->mu);
    pthread_mutex_unlock(&im->mu);
    return take_error(im);
}

/* Tells the writer thread how to end and waits for it. */
static void finish(trace_import *im, int how)
{
    if (!im->started)
        return;
    pthread_mutex_lock(&im->mu);
    if (im->end == RUN)
        im->end = how;
    pthread_cond_broadcast(&im->cv);
    pthread_mutex_unlock(&im->mu);
    pthread_join(im->th, NULL);
    im->started = 0;
}

static int import_end(trace_import *im, int how, trace_append_result *res)
{
    int rc;

    if (!im->started) {
        rc = trace_fail(TRACE_EINVAL, "the import has already ended");
    } else {
        hand_over(im);
        finish(im, how);
        rc = im->commit_rc;
        if (rc != TRACE_OK)
            trace_fail(rc, "%s", im->commit_msg);
    }
    if (res)
        *res = rc == TRACE_OK ? im->res : (trace_append_result){0};
    return rc;
}

int trace_import_commit(trace_import *im, trace_append_result *res)
{
    return import_end(im, COMMIT, res);
}

int trace_import_check(trace_import *im, trace_append_result *res)
{
    return import_end(im, CHECK, res);
}

void trace_import_free(trace_import *im)
{
    if (!im)
        return;
    finish(im, ABORT);
    if (im->ring) {
        /* keys made by an import that did not commit may be used later */
        (void)keyring_sync(im->ring);
        keyring_defer_sync(im->ring, 0);
    }
    while (im->errs) {
        struct ierr *e = im->errs;
        im->errs = e->next;
        free(e);
    }
    while (im->warns) {
        struct ierr *e = im->warns;
        im->warns = e->next;
        free(e);
    }
    free(im->warn_taken);
    for (int i = 0; i < N_BATCHES; i++) {
        arena_free(im->all[i].a);
        free(im->all[i].items);
    }
    pthread_mutex_destroy(&im->mu);
    pthread_cond_destroy(&im->cv);
    products_seen_free(im->seen);
    free(im);
}
