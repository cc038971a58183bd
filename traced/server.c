/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - traced's sockets, threads, writer and main loop (what one
 * request goes through is in requests.c).
 *
 * One REP socket with `contexts` nng contexts, each a small state machine
 * driven by its aio callback: receive a request, hand it to a worker,
 * send the reply the worker (or the writer) attached, receive again.  The
 * callbacks only move pointers between queues; the work happens on
 *
 *   workers (`workers` threads): decode, authenticate (signature, clock
 *       window, nonce, rate), authorise, then run a read command, or
 *       parse JSON Lines for signing (Prepare), or check a signed Commit
 *       and queue it for the writer;
 *   the writer (one thread): takes every queued commit, appends each in
 *       a nested transaction of one LMDB transaction, commits once
 *       (durable), and only then answers each request (with its
 *       receipt: the checkpoint the commit stored and the inclusion
 *       proofs of its entries) and publishes the new signed note; it
 *       also stores reconciliation's alerts, queued by the thread that
 *       ran the rules (store_on_writer), so that nothing else in traced
 *       writes to the ledger;
 *   the main thread: signals, the nightly reconciliation, publishing
 *       heads and notices of alerts that other processes stored, closing
 *       silent or idle connections (conn.c), and listening again where nng
 *       stopped accepting (see "Listener supervision").
 *
 * Shutdown (SIGTERM/SIGINT): listeners close, queued requests are
 * finished and answered (commits included), then contexts, sockets and
 * the ledger close in that order, and the process exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "trace/ledger.h"
#include "trace/proof.h"
#include "trace/query.h"
#include "trace/reconcile.h"
#include "traced.h"
#include "server_int.h"
#include "wire.h"

/* Queues --------------------------------------------------------------- */

static int queue_init(struct queue *q)
{
    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL))
        return -1;
    return pthread_cond_init(&q->cv, NULL) ? -1 : 0;
}

void queue_push(struct queue *q, struct work *w)
{
    pthread_mutex_lock(&q->mu);
    w->next = NULL;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Takes up to `max` works (all if 0); NULL once closed and empty. */
static struct work *queue_take(struct queue *q, size_t max)
{
    struct work *w, *last;
    size_t n = 1;

    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->closed)
        pthread_cond_wait(&q->cv, &q->mu);
    w = q->head;
    if (w) {
        last = w;
        while (last->next && (max == 0 || n < max)) {
            last = last->next;
            n++;
        }
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
        q->n -= n;
    }
    pthread_mutex_unlock(&q->mu);
    return w;
}

static void queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Replies ---------------------------------------------------------------- */

/* Requests larger than this (bytes) count against queue-bytes. */
#define QUEUE_SMALL (64u << 10)

void reply_error(struct work *w, int code, const char *msg)
{
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    resp.code = code;
    resp.message = (char *)msg;
    reply(w, &resp);
}

void reply(struct work *w, Trace__Wire__V1__Response *resp)
{
    size_t len = trace__wire__v1__response__get_packed_size(resp);
    nng_msg *m;

    if (nng_msg_alloc(&m, len) != 0) {
        Trace__Wire__V1__Response oom = TRACE__WIRE__V1__RESPONSE__INIT;
        oom.code = 6;
        oom.message = "out of memory";
        len = trace__wire__v1__response__get_packed_size(&oom);
        if (nng_msg_alloc(&m, len) != 0) {
            /* nothing to send: the client times out; the context goes on */
            w->sending = 0;
            if (w->srv->direct)
                return;
            conn_activity(w->srv, w->pipe, -1, w->admitted);
            w->pipe = 0;
            w->admitted = 0;
            atomic_fetch_sub(&w->srv->busy, 1);
            if (!atomic_load(&w->srv->stopping))
                nng_ctx_recv(w->ctx, w->aio);
            return;
        }
        trace__wire__v1__response__pack(&oom, nng_msg_body(m));
    } else {
        trace__wire__v1__response__pack(resp, nng_msg_body(m));
    }
    if (w->srv->direct) {
        nng_msg_free(m);
        return;
    }
    w->sending = 1;
    nng_aio_set_msg(w->aio, m);
    nng_ctx_send(w->ctx, w->aio);
}

/* The aio callback: never blocks, only moves the request along. */
static void work_cb(void *arg)
{
    struct work *w = arg;
    struct server *s = w->srv;
    int rv = nng_aio_result(w->aio);

    if (w->sending) {
        if (rv != 0)
            nng_msg_free(nng_aio_get_msg(w->aio));
        w->sending = 0;
        conn_activity(s, w->pipe, -1, w->admitted);
        w->pipe = 0;
        w->admitted = 0;
        atomic_fetch_sub(&s->busy, 1);
        if (!atomic_load(&s->stopping))
            nng_ctx_recv(w->ctx, w->aio);
        return;
    }
    if (rv != 0) {
        if (rv != NNG_ECLOSED && rv != NNG_ECANCELED &&
            !atomic_load(&s->stopping))
            nng_ctx_recv(w->ctx, w->aio);
        return;
    }
    w->req = nng_aio_get_msg(w->aio);
    w->received_us = wire_now_us();
    w->pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(w->req));
    w->bytes = nng_msg_len(w->req);
    w->admitted = 0;
    conn_activity(s, w->pipe, 1, 0);
    atomic_fetch_add(&s->busy, 1);
    /* large requests wait for a worker only while queue-bytes allows:
     * bytes held before authentication stay bounded */
    if (w->bytes > QUEUE_SMALL &&
        atomic_fetch_add(&s->queued_bytes, w->bytes) + w->bytes >
            (size_t)s->cfg->queue_bytes << 20) {
        atomic_fetch_sub(&s->queued_bytes, w->bytes);
        nng_msg_free(w->req);
        w->req = NULL;
        w->bytes = 0;
        log_msg(LOG_LVL_INFO, "refused a large request: queue-bytes reached");
        reply_error(w, 6, "busy: too many large requests at once; try again");
        return;
    }
    if (w->bytes <= QUEUE_SMALL)
        w->bytes = 0;
    queue_push(&s->inq, w);
}

void queue_bytes_release(struct server *s, size_t bytes)
{
    if (bytes)
        atomic_fetch_sub(&s->queued_bytes, bytes);
}

static void *worker_main(void *arg)
{
    struct server *s = arg;
    struct work *w;

    while ((w = queue_take(&s->inq, 1)) != NULL) {
        handle(w);
        server_trim(s);
    }
    return NULL;
}

/* The writer -------------------------------------------------------------- */

static void publish_head(struct server *s, int force);

/* Findings of the checks at entry kept for one request's answer. */
#define MAX_FINDINGS 100

/* The receipt's fields of Committed, borrowing from `r`; *mem to free
 * after the reply is packed.  Without memory the reply goes without. */
static void receipt_fields(Trace__Wire__V1__Committed *c,
                           const trace_receipt *r, void **mem)
{
    Trace__Wire__V1__Inclusion *inc, **ip;
    ProtobufCBinaryData *h;
    size_t hashes = 0;
    char *m;

    *mem = NULL;
    if (!r)
        return;
    for (size_t i = 0; i < r->n_leaves; i++)
        hashes += r->leaves[i].n_proof;
    /* one block: the messages, their pointers, the hashes' descriptors */
    m = calloc(1, r->n_leaves * (sizeof(*inc) + sizeof(*ip)) +
                      hashes * sizeof(*h) + 1);
    if (!m)
        return;
    inc = (Trace__Wire__V1__Inclusion *)m;
    ip = (Trace__Wire__V1__Inclusion **)(inc + r->n_leaves);
    h = (ProtobufCBinaryData *)(ip + r->n_leaves);
    for (size_t i = 0; i < r->n_leaves; i++) {
        const trace_receipt_leaf *lf = &r->leaves[i];
        trace__wire__v1__inclusion__init(&inc[i]);
        inc[i].leaf_index = lf->leaf_index;
        inc[i].leaf_hash.data = (uint8_t *)lf->leaf_hash;
        inc[i].leaf_hash.len = 32;
        inc[i].entry.data = (uint8_t *)lf->entry;
        inc[i].entry.len = lf->entry_len;
        inc[i].n_hashes = lf->n_proof;
        inc[i].hashes = h;
        for (size_t k = 0; k < lf->n_proof; k++, h++) {
            h->data = (uint8_t *)lf->proof[k];
            h->len = 32;
        }
        ip[i] = &inc[i];
    }
    c->checkpoint = (char *)r->checkpoint;
    c->n_inclusions = r->n_leaves;
    c->inclusions = ip;
    *mem = m;
}

static void answer_commit(struct work *w, int rc, const char *msg,
                          const trace_append_result *res, char **finds,
                          size_t n_finds, const trace_receipt *receipt)
{
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__Committed c = TRACE__WIRE__V1__COMMITTED__INIT;
    void *mem = NULL;

    if (rc == TRACE_OK) {
        receipt_fields(&c, receipt, &mem);
        c.has_warnings = res->warnings > 0;
        c.warnings = res->warnings;
        c.n_findings = n_finds;
        c.findings = finds;
        c.appended = res->appended;
        c.duplicates = res->duplicates;
        c.has_first_seq = c.has_last_seq = 1;
        c.first_seq = res->first_seq;
        c.last_seq = res->last_seq;
        resp.committed = &c;
        resp.code = 0;
    } else {
        resp.code = trace_error_exit_code(rc);
        resp.message = (char *)msg;
        if (rc == TRACE_EPERM)
            log_msg(LOG_LVL_WARN, "refused %s a commit: %s", w->principal, msg);
    }
    trace_batch_free(w->batch);
    w->batch = NULL;
    free(w->groups);
    w->groups = NULL;
    reply(w, &resp);
    free(mem);
}

struct outcome {
    int rc;
    char msg[512];
    trace_append_result res;
    char *finds[MAX_FINDINGS];
    size_t n_finds;
};

static int keep_finding(void *ctx, unsigned long lineno, const trace_finding *f)
{
    struct outcome *o = ctx;
    char buf[1024];

    if (o->n_finds < MAX_FINDINGS) {
        snprintf(buf, sizeof(buf), "line %lu: %s: %s", lineno, f->code,
                 f->message);
        if ((o->finds[o->n_finds] = strdup(buf)))
            o->n_finds++;
    }
    return 0;
}

static void outcome_clear(struct outcome *o)
{
    for (size_t i = 0; i < o->n_finds; i++)
        free(o->finds[i]);
    o->n_finds = 0;
}

/* One group commit of the works in `list`; 1 if the map was full. */
static int commit_round(struct server *s, struct work *list, size_t n,
                        struct outcome *out)
{
    trace_commit *c = NULL;
    size_t i = 0;
    int rc, full = 0;

    rc = trace_commit_begin(&c, s->l);
    for (struct work *w = list; w; w = w->next, i++) {
        if (rc != TRACE_OK) {
            out[i].rc = rc;
            snprintf(out[i].msg, sizeof(out[i].msg), "%s", trace_error_last());
            continue;
        }
        trace_commit_on_finding(c, keep_finding, &out[i]);
        out[i].rc = trace_commit_add(c, w->batch, w->groups, w->n_groups,
                                     w->flags, &out[i].res);
        if (out[i].rc != TRACE_OK) {
            snprintf(out[i].msg, sizeof(out[i].msg), "%s", trace_error_last());
            outcome_clear(&out[i]);
        }
        if (out[i].rc == TRACE_EFULL)
            full = 1;
    }
    if (rc == TRACE_OK) {
        rc = trace_commit_end(c, NULL);
        if (rc == TRACE_OK)
            atomic_store(&s->last_commit_us, wire_now_us());
        if (rc != TRACE_OK) {
            /* nothing of the round is stored */
            for (size_t k = 0; k < n; k++)
                if (out[k].rc == TRACE_OK) {
                    out[k].rc = rc;
                    snprintf(out[k].msg, sizeof(out[k].msg), "%s",
                             trace_error_last());
                }
            if (rc == TRACE_EFULL)
                full = 1;
        }
    }
    trace_commit_free(c);
    return full;
}

/* Commits the works of `list` in rounds of at most commit-events events
 * and answers each. */
void write_all(struct server *s, struct work *list)
{
    while (list) {
        struct work *w = list, *rest, *prev = NULL;
        size_t n = 0, events = 0, i = 0;
        uint64_t appended = 0, warnings = 0;
        struct outcome *out;

        for (; w && (n == 0 || events + trace_batch_count(w->batch) <=
                                   (size_t)s->cfg->commit_events);
             prev = w, w = w->next) {
            events += trace_batch_count(w->batch);
            n++;
        }
        rest = w;
        if (prev)
            prev->next = NULL;
        if (!(out = calloc(n, sizeof(*out)))) {
            for (w = list; w; w = list) {
                list = w->next;
                answer_commit(w, TRACE_ENOMEM, "out of memory", NULL, NULL, 0,
                              NULL);
            }
            list = rest;
            continue;
        }
        if (commit_round(s, list, n, out)) {
            /* the map filled: grow it (libtrace holds every reader back
             * meanwhile), then try the round once more */
            if (trace_ledger_reserve(s->l, (uint64_t)s->cfg->map_reserve
                                               << 20) == TRACE_OK)
                log_msg(LOG_LVL_INFO, "grew the ledger map");
            for (size_t k = 0; k < n; k++)
                outcome_clear(&out[k]);
            memset(out, 0, n * sizeof(*out));
            commit_round(s, list, n, out);
        }
        for (w = list; w; i++) {
            struct work *next = w->next;
            trace_receipt *receipt = NULL;
            if (out[i].rc == TRACE_OK) {
                appended += out[i].res.appended;
                warnings += out[i].res.warnings;
                /* the receipt: read after the durable commit, whose
                 * checkpoint is the latest (this thread alone appends) */
                if (out[i].res.first_seq &&
                    trace_receipt_get(s->l, out[i].res.first_seq,
                                      out[i].res.last_seq,
                                      &receipt) != TRACE_OK)
                    log_msg(LOG_LVL_WARN,
                            "no receipt for entries %llu to %llu: %s",
                            (unsigned long long)out[i].res.first_seq,
                            (unsigned long long)out[i].res.last_seq,
                            trace_error_last());
            }
            answer_commit(w, out[i].rc, out[i].msg, &out[i].res, out[i].finds,
                          out[i].n_finds, receipt);
            trace_receipt_free(receipt);
            outcome_clear(&out[i]);
            w = next;
        }
        if (appended) {
            log_msg(LOG_LVL_DEBUG, "committed %llu events from %zu requests",
                    (unsigned long long)appended, n);
            atomic_fetch_add(&s->stat_events, appended);
            atomic_fetch_add(&s->stat_requests, n);
            publish_head(s, 0);
        }
        if (warnings) /* raise their alerts now, not at night */
            atomic_store(&s->recheck, 1);
        free(out);
        list = rest;
    }
}

int store_on_writer(int (*store)(void *arg), void *arg, void *ctx)
{
    struct work *w = ctx;
    struct server *s = w->srv;
    int rc;

    if (s->direct) /* no writer thread: this is the one that writes */
        return store(arg);
    w->job = store;
    w->job_arg = arg;
    w->job_done = 0;
    queue_push(&s->commitq, w);
    pthread_mutex_lock(&s->job_mu);
    while (!w->job_done)
        pthread_cond_wait(&s->job_cv, &s->job_mu);
    rc = w->job_rc;
    pthread_mutex_unlock(&s->job_mu);
    w->job = NULL;
    return rc;
}

/* Runs a waiting thread's job and wakes it. */
static void run_job(struct server *s, struct work *w)
{
    int rc = w->job(w->job_arg);

    pthread_mutex_lock(&s->job_mu);
    w->job_rc = rc;
    w->job_done = 1;
    pthread_cond_broadcast(&s->job_cv);
    pthread_mutex_unlock(&s->job_mu);
}

/* Keeps the ledger pages mapped into traced under map-resident MiB
 * (trace_ledger_trim): the daemon's resident set does not grow with the
 * ledger as reads, jobs and appends touch more of it.  Called after each
 * request, commit round and job step, it looks at most every 50 ms. */
void server_trim(struct server *s)
{
    trace_ledger_trim_due(s->l); /* the limit set at start (map-resident) */
}

static void *writer_main(void *arg)
{
    struct server *s = arg;
    struct work *list;

    /* commits and jobs in the order they were queued: the commits
     * before a job are committed (and answered) before it runs */
    while ((list = queue_take(&s->commitq, 0)) != NULL) {
        struct work *commits = NULL, **tail = &commits;
        while (list) {
            struct work *w = list;
            list = w->next;
            w->next = NULL;
            if (!w->job) {
                *tail = w;
                tail = &w->next;
                continue;
            }
            if (commits)
                write_all(s, commits);
            commits = NULL;
            tail = &commits;
            run_job(s, w);
            server_trim(s);
        }
        if (commits)
            write_all(s, commits);
        server_trim(s);
    }
    return NULL;
}

/* Publishing ----------------------------------------------------------------
 */

/* The latest stored checkpoint (SPEC 8: the log's signed note) on the
 * "checkpoint " topic; under pub_mu. */
static void publish_note(struct server *s)
{
    size_t tl = strlen(WIRE_NOTE_TOPIC), len;
    char *note, *buf;

    if (trace_checkpoint_note(s->l, 0, &note, &len) != TRACE_OK)
        return; /* a ledger of before: no checkpoint until its next append */
    if ((buf = malloc(tl + len)) != NULL) {
        memcpy(buf, WIRE_NOTE_TOPIC, tl);
        memcpy(buf + tl, note, len);
        nng_send(s->pub, buf, tl + len, NNG_FLAG_NONBLOCK);
        free(buf);
    }
    free(note);
}

static void publish_head(struct server *s, int force)
{
    Trace__Wire__V1__Checkpoint cp = TRACE__WIRE__V1__CHECKPOINT__INIT;
    uint8_t head[32], digest[32], sig[TRACE_SIG_LEN];
    size_t tl = strlen(WIRE_HEAD_TOPIC), len;
    uint64_t size;
    char *buf;
    int rc;

    if (!s->has_pub)
        return;
    pthread_mutex_lock(&s->pub_mu);
    rc = trace_ledger_head(s->l, &size, head);
    if (rc != TRACE_OK || (size == s->published_size && !force)) {
        pthread_mutex_unlock(&s->pub_mu);
        return;
    }
    cp.size = size;
    cp.head.data = head;
    cp.head.len = 32;
    cp.time_us = wire_now_us();
    wire_checkpoint_digest(digest, size, head, cp.time_us);
    if (trace_key_sign(s->key, digest, sizeof(digest), sig) != TRACE_OK) {
        pthread_mutex_unlock(&s->pub_mu);
        return;
    }
    cp.key_id.data = (uint8_t *)trace_key_id(s->key);
    cp.key_id.len = TRACE_KEY_ID_LEN;
    cp.sig.data = sig;
    cp.sig.len = sizeof(sig);
    len = tl + trace__wire__v1__checkpoint__get_packed_size(&cp);
    if ((buf = malloc(len)) != NULL) {
        memcpy(buf, WIRE_HEAD_TOPIC, tl);
        trace__wire__v1__checkpoint__pack(&cp, (uint8_t *)buf + tl);
        /* PUB never blocks: a slow subscriber loses messages, not us */
        nng_send(s->pub, buf, len, NNG_FLAG_NONBLOCK);
        free(buf);
        s->published_size = size;
    }
    publish_note(s);
    pthread_mutex_unlock(&s->pub_mu);
}

static int note_alert(const trace_alert *a, void *ctx)
{
    struct server *s = ctx;
    if (a->position > s->alert_pos)
        s->alert_pos = a->position;
    return 0;
}

/* Alerts stored since the last look (by any process): PUB says only
 * that there are new ones ("alert new N").  PUB cannot authenticate a
 * subscriber, and an alert names parties, substances and lots a
 * subscriber may not read; tracectl alerts --follow fetches them with
 * an authenticated request (ops.c applies the requester's rights). */
static void publish_alerts(struct server *s)
{
    trace_alert_filter f = TRACE_ALERT_FILTER_INIT;
    uint64_t before;
    char buf[64];
    int n;

    if (!s->has_pub)
        return;
    pthread_mutex_lock(&s->pub_mu);
    before = s->alert_pos;
    f.after = s->alert_pos;
    trace_alerts(s->l, &f, note_alert, s);
    if (s->alert_pos != before) {
        n = snprintf(buf, sizeof(buf), "%s%s%llu", WIRE_ALERT_TOPIC,
                     WIRE_ALERT_NOTICE, (unsigned long long)++s->alert_notices);
        if (n > 0 && (size_t)n < sizeof(buf))
            nng_send(s->pub, buf, (size_t)n, NNG_FLAG_NONBLOCK);
    }
    pthread_mutex_unlock(&s->pub_mu);
}

/* Nightly reconciliation ----------------------------------------------------
 */

char *traced_read_rules(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* An incremental reconciliation; `nightly` may make it a full one (the
 * other is run when commits had findings of the checks at entry, so that
 * their alerts are raised at once). */
static void reconcile_run(struct server *s, int nightly)
{
    const char *what = nightly ? "nightly reconciliation"
                               : "reconciliation after findings at entry";
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    struct work job;
    trace_reconcile_summary sum;
    char *rules = NULL;
    size_t rlen = 0;
    int rc;

    if (s->cfg->rules && !(rules = traced_read_rules(s->cfg->rules, &rlen))) {
        log_msg(LOG_LVL_ERROR, "%s: cannot read %s", what, s->cfg->rules);
        return;
    }
    o.rules_json = rules;
    o.rules_len = rlen;
    o.incremental = 1; /* what was appended since last night, in scope */
    /* every Nth day (counted from the epoch, so restarts do not move it)
     * the whole journal is read and verified again: an incremental run
     * does not look at entries verified before */
    o.full = nightly && s->cfg->full_every > 0 &&
             (time(NULL) / 86400) % s->cfg->full_every == 0;
    /* the alerts are stored by the writer, which this thread waits for */
    memset(&job, 0, sizeof(job));
    job.srv = s;
    o.store_via = store_on_writer;
    o.store_ctx = &job;
    log_msg(LOG_LVL_INFO, "%s started", what);
    pthread_mutex_lock(&s->recon_mu);
    rc = trace_reconcile(s->l, &o, NULL, NULL, &sum);
    pthread_mutex_unlock(&s->recon_mu);
    if (rc == TRACE_OK)
        atomic_store(&s->last_reconcile_us, wire_now_us());
    if (rc == TRACE_OK)
        log_msg(LOG_LVL_INFO,
                "%s (%s): %llu alerts (%llu new) over "
                "%llu events (%llu appended since the previous run) in "
                "%.2f s",
                what, sum.partial ? "incremental" : "full",
                (unsigned long long)sum.alerts,
                (unsigned long long)sum.new_alerts,
                (unsigned long long)sum.events,
                (unsigned long long)sum.new_events, sum.seconds);
    else
        log_msg(LOG_LVL_ERROR, "%s failed: %s", what, trace_error_last());
    free(rules);
    publish_alerts(s);
}

/* Listener supervision --------------------------------------------------------
 *
 * nng 1.5.2 can stop accepting on a listener for good.  When a peer hangs
 * up while its connection is still negotiated (the SP header exchange,
 * which the accepting side starts by writing its header: to a peer already
 * gone that write fails with EPIPE, which nng reports as NNG_ECLOSED), the
 * transport hands the error to the listener's pending accept, and the
 * listener takes NNG_ECLOSED for its own closing: it never accepts again
 * (nng issue #1518, fixed after 1.5.2).  Its transport goes on accepting
 * and negotiating, so clients connect, and then wait forever.  Any client
 * that connects and exits at once does this; clients refused at
 * max-connections redial at once and give up at their timeout, so after
 * refusals it happens often.
 *
 * So the main loop watches each listener's nng statistics.  Such an error
 * is counted ("other", or "canceled"), and afterwards no connection is
 * accepted; a connection that breaks counts there too, so an error is only
 * a suspicion, cleared when the listener accepts a connection after it.
 * A listener that accepted none by the next look is probed: a connection
 * of our own that completes the SP header exchange.  A listener that still
 * accepts hands it to the socket, where ADD_PRE closes it (uncounted); one
 * that stopped leaves it waiting.  (tls+tcp:// is probed by nng without a
 * client certificate: the handshake fails, which a listener that accepts
 * counts.)  A listener that does not answer PROBES_FAILED probes in a row,
 * each within PROBE_MS, is closed, with the connections it had accepted,
 * and opened again on the same address.  (A busy machine - a sanitizer
 * build beside other tests - can leave one probe unanswered for a second;
 * closing a listener that still works drops its clients.)
 */

#define PROBE_MS      2000
#define PROBES_FAILED 2

static int listener_open(struct server *s, struct listener *ls, int quiet)
{
    const struct config *c = s->cfg;
    const char *what = "listen";
    int rv;

    if ((rv = nng_listener_create(&ls->l, s->rep, ls->url)) != 0)
        goto fail;
    if (strncmp(ls->url, "tls+", 4) == 0) {
        what = "TLS for";
        if ((!s->tls &&
             ((rv = nng_tls_config_alloc(&s->tls, NNG_TLS_MODE_SERVER)) ||
              (rv = nng_tls_config_cert_key_file(s->tls, c->tls_cert, NULL)) ||
              (rv = nng_tls_config_ca_file(s->tls, c->tls_ca)) ||
              (rv = nng_tls_config_auth_mode(s->tls,
                                             NNG_TLS_AUTH_MODE_REQUIRED)))) ||
            (rv = nng_listener_set_ptr(ls->l, NNG_OPT_TLS_CONFIG, s->tls)))
            goto fail_close;
        what = "listen";
    }
    atomic_store(&s->listener_ids[ls - s->listeners], nng_listener_id(ls->l));
    if ((rv = nng_listener_start(ls->l, 0)) != 0)
        goto fail_close;
    ls->open = 1;
    ls->suspect = 0;
    ls->errors = 0;
    return 0;

fail_close:
    nng_listener_close(ls->l);
fail:
    if (!quiet)
        log_msg(LOG_LVL_ERROR, "%s %s: %s", what, ls->url, nng_strerror(rv));
    return -1;
}

/* The statistics scope of the listener with this id.  (nng 1.5.2's
 * nng_stat_find_listener can return another listener's.) */
static nng_stat *listener_stats(nng_stat *st, int id)
{
    for (; st; st = nng_stat_next(st)) {
        nng_stat *c;
        if (nng_stat_type(st) == NNG_STAT_SCOPE &&
            strcmp(nng_stat_name(st), "listener") == 0 &&
            (c = nng_stat_find(st, "id")) != NULL) {
            /* an id is kept at the start of the value's storage */
            uint64_t v = nng_stat_value(c);
            int sid;
            memcpy(&sid, &v, sizeof(sid));
            if (sid == id)
                return st;
        }
        if ((c = listener_stats(nng_stat_child(st), id)) != NULL)
            return c;
    }
    return NULL;
}

static uint64_t stat_count(nng_stat *scope, const char *name)
{
    nng_stat *c = nng_stat_find(scope, name);
    return c ? nng_stat_value(c) : 0;
}

/* What a listener counted (nng statistics): errors that may have stopped
 * it ("other": connections that broke, or failed before they were
 * accepted; "canceled"), connections accepted, handshakes refused. */
struct counts {
    uint64_t errors, accepts, auth;
};

/* -1 if nng keeps no statistics of the listener. */
static int listener_counts(const struct listener *ls, struct counts *c)
{
    nng_stat *st, *scope;

    if (nng_stats_get(&st) != 0)
        return -1;
    if (!(scope = listener_stats(st, nng_listener_id(ls->l)))) {
        nng_stats_free(st);
        return -1;
    }
    c->errors = stat_count(scope, "other") + stat_count(scope, "canceled");
    c->accepts = stat_count(scope, "accept");
    c->auth = stat_count(scope, "auth");
    nng_stats_free(st);
    return 0;
}

/* 1 if the pipe is a probe's: from this process (ipc://), or from the
 * address the probe connects from (tcp://). */
int is_probe(struct server *s, nng_pipe p)
{
    nng_sockaddr sa;
    int pid, probe = 0;

    if (!atomic_load(&s->probing))
        return 0;
    if (nng_pipe_get_int(p, NNG_OPT_IPC_PEER_PID, &pid) == 0)
        return pid == (int)getpid();
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
        return 0;
    pthread_mutex_lock(&s->conn_mu);
    if (sa.s_family == NNG_AF_INET && s->probe_from.s_family == NNG_AF_INET)
        probe = sa.s_in.sa_addr == s->probe_from.s_in.sa_addr &&
                sa.s_in.sa_port == s->probe_from.s_in.sa_port;
    else if (sa.s_family == NNG_AF_INET6 &&
             s->probe_from.s_family == NNG_AF_INET6)
        probe =
            memcmp(sa.s_in6.sa_addr, s->probe_from.s_in6.sa_addr, 16) == 0 &&
            sa.s_in6.sa_port == s->probe_from.s_in6.sa_port;
    pthread_mutex_unlock(&s->conn_mu);
    return probe;
}

/* Reads or writes all `len` bytes, within the socket's timeouts. */
static int io_full(int fd, void *buf, size_t len, int writing)
{
    uint8_t *b = buf;

    while (len > 0) {
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

/* The ipc:// and tcp:// probe: 1 if the listener hands our connection to
 * the socket within PROBE_MS, 0 if not. */
static int probe_plain(struct server *s, const nng_sockaddr *sa)
{
    /* the SP header of a PAIR0 peer, which REP does not talk to */
    static const uint8_t hello[8] = {0, 'S', 'P', 0, 0x00, 0x10, 0, 0};
    struct timeval tv = {PROBE_MS / 1000, (PROBE_MS % 1000) * 1000};
    struct sockaddr_storage ss, from;
    socklen_t sl, fl = sizeof(from);
    uint8_t head[8];
    int fd, alive = 0;
    ssize_t n;

    memset(&ss, 0, sizeof(ss));
    if (sa->s_family == NNG_AF_IPC) {
        struct sockaddr_un *u = (struct sockaddr_un *)&ss;
        if (strlen(sa->s_ipc.sa_path) >= sizeof(u->sun_path))
            return -1;
        u->sun_family = AF_UNIX;
        memcpy(u->sun_path, sa->s_ipc.sa_path, strlen(sa->s_ipc.sa_path) + 1);
        sl = sizeof(*u);
    } else if (sa->s_family == NNG_AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = sa->s_in.sa_port;
        in->sin_addr.s_addr =
            sa->s_in.sa_addr ? sa->s_in.sa_addr : htonl(INADDR_LOOPBACK);
        sl = sizeof(*in);
    } else if (sa->s_family == NNG_AF_INET6) {
        static const uint8_t any6[16];
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = sa->s_in6.sa_port;
        if (memcmp(sa->s_in6.sa_addr, any6, 16) == 0)
            in6->sin6_addr = in6addr_loopback;
        else
            memcpy(&in6->sin6_addr, sa->s_in6.sa_addr, 16);
        sl = sizeof(*in6);
    } else {
        return -1;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&from, &fl) != 0) {
        close(fd);
        return -1;
    }
    pthread_mutex_lock(&s->conn_mu);
    memset(&s->probe_from, 0, sizeof(s->probe_from));
    if (from.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&from;
        s->probe_from.s_in.sa_family = NNG_AF_INET;
        s->probe_from.s_in.sa_addr = in->sin_addr.s_addr;
        s->probe_from.s_in.sa_port = in->sin_port;
    } else if (from.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&from;
        s->probe_from.s_in6.sa_family = NNG_AF_INET6;
        memcpy(s->probe_from.s_in6.sa_addr, &in6->sin6_addr, 16);
        s->probe_from.s_in6.sa_port = in6->sin6_port;
    }
    pthread_mutex_unlock(&s->conn_mu);
    /* Their header first: a transport that accepted has written it, so
     * closing afterwards never hangs up in the middle of the exchange.
     * Then ours, and the end of file when the socket closes the pipe. */
    if (io_full(fd, head, sizeof(head), 0) == 0 &&
        io_full(fd, (void *)hello, sizeof(hello), 1) == 0) {
        do
            n = recv(fd, head, sizeof(head), 0);
        while (n > 0 || (n < 0 && errno == EINTR));
        alive = n == 0 || errno == ECONNRESET;
    }
    close(fd);
    return alive;
}

/* The tls+tcp:// probe: 1 if the listener counts our failed handshake
 * within PROBE_MS, 0 if not, -1 if it cannot be probed. */
static int probe_tls(struct server *s, const struct listener *ls,
                     const nng_sockaddr *sa)
{
    char url[128], host[INET6_ADDRSTRLEN];
    static const uint8_t any6[16];
    struct counts c0, c;
    nng_dialer d;
    int alive = 0;

    if (sa->s_family == NNG_AF_INET) {
        struct in_addr a;
        a.s_addr = sa->s_in.sa_addr ? sa->s_in.sa_addr : htonl(INADDR_LOOPBACK);
        inet_ntop(AF_INET, &a, host, sizeof(host));
        snprintf(url, sizeof(url), "tls+tcp://%s:%u", host,
                 (unsigned)ntohs(sa->s_in.sa_port));
    } else if (sa->s_family == NNG_AF_INET6) {
        if (memcmp(sa->s_in6.sa_addr, any6, 16) == 0)
            snprintf(host, sizeof(host), "::1");
        else
            inet_ntop(AF_INET6, sa->s_in6.sa_addr, host, sizeof(host));
        snprintf(url, sizeof(url), "tls+tcp://[%s]:%u", host,
                 (unsigned)ntohs(sa->s_in6.sa_port));
    } else {
        return -1;
    }
    if (!s->has_probe) {
        if (nng_req0_open(&s->probe) != 0)
            return -1;
        s->has_probe = 1;
    }
    if (!s->probe_tls &&
        (nng_tls_config_alloc(&s->probe_tls, NNG_TLS_MODE_CLIENT) != 0 ||
         nng_tls_config_auth_mode(s->probe_tls, NNG_TLS_AUTH_MODE_NONE) != 0)) {
        if (s->probe_tls)
            nng_tls_config_free(s->probe_tls);
        s->probe_tls = NULL;
        return -1;
    }
    /* twice: a failure in the 100 ms that a listener rests after an
     * error is not counted */
    for (int attempt = 0; attempt < 2 && !alive; attempt++) {
        if (listener_counts(ls, &c0) != 0 ||
            nng_dialer_create(&d, s->probe, url) != 0)
            return -1;
        if (nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, s->probe_tls) != 0) {
            nng_dialer_close(d);
            return -1;
        }
        /* blocking, one attempt: the handshake fails on the listener's
         * side (no certificate), then the dialer closes before it could
         * dial again */
        nng_dialer_start(d, 0);
        nng_dialer_close(d);
        for (int waited = 0; waited < PROBE_MS / 2 && !alive; waited += 20) {
            struct timespec ms20 = {0, 20 * 1000000};
            nanosleep(&ms20, NULL);
            alive = listener_counts(ls, &c) == 0 &&
                    (c.auth != c0.auth || c.accepts != c0.accepts);
        }
    }
    return alive;
}

/* 1 if the listener still accepts, 0 if not, -1 if it cannot be told. */
static int listener_probe(struct server *s, const struct listener *ls)
{
    nng_sockaddr sa;
    int alive;

    if (nng_listener_get_addr(ls->l, NNG_OPT_LOCADDR, &sa) != 0)
        return -1;
    if (strncmp(ls->url, "tls+", 4) == 0)
        return probe_tls(s, ls, &sa);
    atomic_store(&s->probing, 1);
    alive = probe_plain(s, &sa);
    atomic_store(&s->probing, 0);
    return alive;
}

/* Called from the main loop: finds listeners that stopped accepting and
 * opens them again. */
static void supervise_listeners(struct server *s)
{
    for (size_t i = 0; i < s->n_listeners; i++) {
        struct listener *ls = &s->listeners[i];
        struct counts c;
        int alive;

        if (!ls->open) {
            /* closed by an earlier round, and could not listen again */
            if (listener_open(s, ls, 1) == 0)
                log_msg(LOG_LVL_INFO, "listening on %s again", ls->url);
            continue;
        }
        if (listener_counts(ls, &c) != 0)
            continue;
        if (ls->suspect && c.accepts != ls->accepts) {
            ls->suspect = 0; /* it accepted a connection after the errors */
            ls->failed = 0;
        }
        if (ls->suspect) {
            if ((alive = listener_probe(s, ls)) != 0) {
                log_msg(LOG_LVL_DEBUG, "%s %s", ls->url,
                        alive > 0 ? "accepts connections" : "cannot be probed");
                ls->suspect = 0;
                ls->failed = 0;
                continue;
            }
            if (++ls->failed < PROBES_FAILED) {
                log_msg(LOG_LVL_DEBUG, "%s did not answer a probe", ls->url);
                continue; /* still suspect: probed again next round */
            }
            ls->suspect = 0;
            ls->failed = 0;
            log_msg(LOG_LVL_WARN,
                    "%s stopped accepting connections (a client hung up "
                    "while connecting): listening again",
                    ls->url);
            nng_listener_close(ls->l);
            ls->open = 0;
            if (listener_open(s, ls, 0) == 0)
                log_msg(LOG_LVL_INFO, "listening on %s again", ls->url);
            continue;
        }
        if (c.errors != ls->errors) {
            /* looked at again next round */
            ls->errors = c.errors;
            ls->accepts = c.accepts;
            ls->suspect = 1;
        }
    }
}

/* Setup and the main loop -------------------------------------------------- */

static int load_key(struct server *s)
{
    char path[4096];
    int rc;

    if (s->cfg->key)
        snprintf(path, sizeof(path), "%s", s->cfg->key);
    else
        snprintf(path, sizeof(path), "%s/traced.key", s->cfg->data);
    rc = trace_key_load(&s->key, path);
    if (rc == TRACE_ENOTFOUND) {
        if ((rc = trace_key_generate(&s->key)) == TRACE_OK &&
            (rc = trace_key_save(s->key, path)) == TRACE_OK)
            log_msg(LOG_LVL_INFO, "made the checkpoint key %s", path);
    }
    if (rc != TRACE_OK) {
        log_msg(LOG_LVL_ERROR, "checkpoint key %s: %s", path,
                trace_error_last());
        return rc;
    }
    /* every checkpoint the commits store is signed with this key: the
     * one HelloReply.pubkey names and the PUB feed's notes carry */
    trace_ledger_set_checkpoint_key(s->l, s->key);
    return TRACE_OK;
}

static int start_listeners(struct server *s)
{
    const struct config *c = s->cfg;

    for (size_t i = 0; i < c->n_listen; i++) {
        struct listener *ls = &s->listeners[s->n_listeners];
        ls->url = c->listen[i];
        if (listener_open(s, ls, 0) != 0)
            return -1;
        s->n_listeners++;
        log_msg(LOG_LVL_INFO, "listening on %s", ls->url);
    }
    return 0;
}

/* What both the daemon and the direct handler need besides the ledger
 * and the key: locks, queues, the replay and rate tables, the ticket key
 * and the start time. */
static int server_init_state(struct server *s)
{
    struct admit_opts ao = {
        .window_us = s->cfg->clock_window * 1000000LL,
        .cache = (size_t)s->cfg->replay_cache,
        .share = (unsigned)s->cfg->replay_share,
        .rate = s->cfg->rate,
        .burst = s->cfg->burst,
    };

    if (wire_random(s->ticket_key, 32) != 0 || queue_init(&s->inq) ||
        queue_init(&s->commitq) || pthread_mutex_init(&s->recon_mu, NULL) ||
        pthread_mutex_init(&s->job_mu, NULL) ||
        pthread_cond_init(&s->job_cv, NULL) ||
        pthread_mutex_init(&s->pub_mu, NULL) ||
        pthread_mutex_init(&s->conn_mu, NULL) || admit_init(&s->admit, &ao))
        return -1;
    s->has_admit = 1;
    if (sessions_init(&s->sessions, (size_t)s->cfg->session_max,
                      s->cfg->session_idle * 1000000LL,
                      s->cfg->session_life * 1000000LL) != 0)
        return -1;
    s->has_sessions = 1;
    s->start_us = wire_now_us();
    if (ahead_open(&s->ahead, s->cfg->data, &s->admit, s->start_us,
                   ao.window_us) != 0) {
        log_msg(LOG_LVL_ERROR, "%s/traced.ahead cannot be read or written",
                s->cfg->data);
        return -1;
    }
    s->has_ahead = 1;
    /* requests admitted by an earlier process at most AHEAD_SLACK ahead
     * of its clock are refused by time (see ahead.c) */
    s->floor_us = s->start_us + AHEAD_SLACK;
    return 0;
}

static int local_minutes(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

#define CLOSE_GRACE_S 5

static atomic_int close_done;

static void *close_watchdog(void *arg)
{
    int status = (int)(intptr_t)arg;
    for (int i = 0; i < CLOSE_GRACE_S * 10; i++) {
        struct timespec d = {0, 100 * 1000000};
        if (atomic_load(&close_done))
            return NULL;
        nanosleep(&d, NULL);
    }
    log_msg(LOG_LVL_WARN,
            "nng did not close its sockets within %d s (a known nng 1.5.2 "
            "hang); the ledger is closed and every answered request is "
            "durable: exiting",
            CLOSE_GRACE_S);
    log_msg(status == 0 ? LOG_LVL_INFO : LOG_LVL_ERROR, "stopped");
    _exit(status);
}

static void start_close_watchdog(int status)
{
    pthread_t t;
    pthread_attr_t at;

    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, close_watchdog, (void *)(intptr_t)status) != 0)
        log_msg(LOG_LVL_WARN, "no watchdog for closing the sockets");
    pthread_attr_destroy(&at);
}

int server_run(const struct config *c)
{
    struct server *s = calloc(1, sizeof(*s));
    sigset_t sigs;
    int status = 1, rv, at_min = -1, h, m, writer_started = 0;
    long last_day = -1;
    time_t last_stats = time(NULL);

    if (!s)
        return 1;
    s->cfg = c;
    if (strcmp(c->reconcile_at, "off") != 0 &&
        sscanf(c->reconcile_at, "%d:%d", &h, &m) == 2)
        at_min = h * 60 + m;
    /* signals are taken by the main thread alone */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (trace_ledger_open(&s->l, c->data) != TRACE_OK) {
        log_msg(LOG_LVL_ERROR, "%s: %s", c->data, trace_error_last());
        free(s);
        return 1;
    }
    /* one writer per ledger folder: a second traced, or a tracectl
     * writing to the folder, is refused */
    if (trace_ledger_claim_writer(s->l) != TRACE_OK) {
        log_msg(LOG_LVL_ERROR, "%s", trace_error_last());
        trace_ledger_close(s->l);
        free(s);
        return 6;
    }
    trace_ledger_set_map_limit(s->l, (uint64_t)c->map_resident << 20);
    if (trace_ledger_reserve(s->l, (uint64_t)c->map_reserve << 20) != TRACE_OK)
        log_msg(LOG_LVL_WARN, "cannot reserve map room: %s",
                trace_error_last());
    if (load_key(s) != TRACE_OK)
        goto out_ledger;
    if (server_init_state(s) != 0) {
        log_msg(LOG_LVL_ERROR, "out of memory");
        goto out_ledger;
    }
    {
        trace_alert_filter f = TRACE_ALERT_FILTER_INIT;
        trace_alerts(s->l, &f, note_alert, s); /* publish only new ones */
    }

    if ((rv = nng_rep0_open(&s->rep)) != 0) {
        log_msg(LOG_LVL_ERROR, "socket: %s", nng_strerror(rv));
        goto out_ledger;
    }
    nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ,
                        (size_t)c->max_message + 4096);
    s->cap_conns = (size_t)c->max_connections * c->n_listen;
    if (!(s->conns = calloc(s->cap_conns, sizeof(*s->conns)))) {
        log_msg(LOG_LVL_ERROR, "out of memory");
        goto out_sock;
    }
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_PRE, conn_pipe_cb, s);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_REM_POST, conn_pipe_cb, s);
    if (c->pub) {
        if ((rv = nng_pub0_open(&s->pub)) != 0 ||
            (rv = nng_listen(s->pub, c->pub, NULL, 0)) != 0) {
            log_msg(LOG_LVL_ERROR, "pub %s: %s", c->pub, nng_strerror(rv));
            goto out_sock;
        }
        s->has_pub = 1;
        log_msg(LOG_LVL_INFO,
                "publishing checkpoints, heads and notices of new alerts "
                "on %s",
                c->pub);
    }

    s->n_threads = (size_t)c->workers;
    s->threads = calloc(s->n_threads, sizeof(*s->threads));
    s->n_works = (size_t)c->contexts;
    s->works = calloc(s->n_works, sizeof(*s->works));
    if (!s->threads || !s->works)
        goto out_sock;
    for (size_t i = 0; i < s->n_threads; i++)
        if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0) {
            s->n_threads = i;
            goto out_threads;
        }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        goto out_threads;
    writer_started = 1;
    if (jobs_init(s) != 0)
        goto out_threads;
    for (size_t i = 0; i < s->n_works; i++) {
        struct work *w = &s->works[i];
        w->srv = s;
        if ((rv = nng_aio_alloc(&w->aio, work_cb, w)) != 0 ||
            (rv = nng_ctx_open(&w->ctx, s->rep)) != 0) {
            log_msg(LOG_LVL_ERROR, "context: %s", nng_strerror(rv));
            s->n_works = i + (w->aio ? 1 : 0);
            goto out_works;
        }
        nng_ctx_recv(w->ctx, w->aio);
    }
    /* serve only from floor_us on (see ahead.c) */
    for (int64_t now = wire_now_us(); now < s->floor_us; now = wire_now_us()) {
        int64_t left = s->floor_us - now;
        struct timespec d = {(time_t)(left / 1000000),
                             (long)(left % 1000000) * 1000};
        nanosleep(&d, NULL);
    }
    if (start_listeners(s) != 0)
        goto out_works;
    publish_head(s, 1);
    log_msg(LOG_LVL_INFO, "serving %s (%lld workers, %lld contexts)", c->data,
            c->workers, c->contexts);
    /* what unauthenticated clients can make traced hold: every connection
     * reading a request of max-message, and the queue of large ones */
    log_msg(LOG_LVL_INFO,
            "requests not yet authenticated can hold up to %lld MiB "
            "(%zu listeners x max-connections %lld x max-message %lld "
            "bytes, + queue-bytes %lld MiB)",
            (long long)((double)c->n_listen * (double)c->max_connections *
                        (double)(c->max_message + 4096) / 1048576.0) +
                c->queue_bytes,
            c->n_listen, c->max_connections, c->max_message, c->queue_bytes);

    for (;;) {
        struct timespec tick = {0, 200 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        time_t now;

        if (sig == SIGTERM || sig == SIGINT) {
            log_msg(LOG_LVL_INFO, "%s: finishing in-flight requests",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        supervise_listeners(s);
        conn_sweep(s);
        publish_head(s, 0);
        publish_alerts(s);
        now = time(NULL);
        if (at_min >= 0 && local_minutes(now) == at_min &&
            now / 86400 != last_day) {
            last_day = now / 86400;
            reconcile_run(s, 1);
        }
        if (atomic_exchange(&s->recheck, 0))
            reconcile_run(s, 0);
        if (now - last_stats >= 60) {
            /* one line a minute, not one per commit */
            uint64_t ev = atomic_exchange(&s->stat_events, 0);
            uint64_t rq = atomic_exchange(&s->stat_requests, 0);
            if (ev)
                log_msg(LOG_LVL_INFO,
                        "committed %llu events from %llu requests in the "
                        "last %lld s",
                        (unsigned long long)ev, (unsigned long long)rq,
                        (long long)(now - last_stats));
            last_stats = now;
        }
    }
    status = 0;

out_works:
    /* no new connections; then let queued requests finish and answer */
    atomic_store(&s->stopping, 1);
    for (size_t i = 0; i < s->n_listeners; i++)
        if (s->listeners[i].open)
            nng_listener_close(s->listeners[i].l);
    for (int waited = 0; atomic_load(&s->busy) > 0 && waited < 3000; waited++) {
        struct timespec ms10 = {0, 10 * 1000000};
        nanosleep(&ms10, NULL);
    }
    for (size_t i = 0; i < s->n_works; i++)
        if (s->works[i].aio)
            nng_aio_stop(s->works[i].aio);
    for (size_t i = 0; i < s->n_works; i++) {
        nng_ctx_close(s->works[i].ctx);
        if (s->works[i].aio)
            nng_aio_free(s->works[i].aio);
        if (s->works[i].req)
            nng_msg_free(s->works[i].req);
    }
out_threads:
    /* the workers first: a request they finish may still queue a commit
     * or a job for the writer */
    queue_close(&s->inq);
    for (size_t i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    /* then the jobs, which may still wait for the writer */
    jobs_stop(s);
    queue_close(&s->commitq);
    if (writer_started)
        pthread_join(s->writer, NULL);
out_sock:
    /* Every request was answered and every commit is durable (the writer
     * has been joined): the ledger can close before the sockets.  nng
     * 1.5.2's nng_close can wait for ever for a connection that was
     * receiving when the socket closed (seen with a few dozen clients
     * sending at SIGTERM); past CLOSE_GRACE_S the process exits anyway. */
    trace_ledger_close(s->l);
    s->l = NULL;
    start_close_watchdog(status);
    if (s->has_probe)
        nng_close(s->probe);
    nng_close(s->rep);
    if (s->has_pub)
        nng_close(s->pub);
    atomic_store(&close_done, 1);
    if (s->tls)
        nng_tls_config_free(s->tls);
    if (s->probe_tls)
        nng_tls_config_free(s->probe_tls);
out_ledger:
    free(s->conns);
    free(s->threads);
    free(s->works);
    if (s->has_admit)
        admit_free(&s->admit);
    if (s->has_sessions)
        sessions_free(&s->sessions);
    if (s->has_ahead)
        ahead_free(&s->ahead);
    trace_ledger_close(s->l); /* before the key it borrows */
    trace_key_free(s->key);
    log_msg(status == 0 ? LOG_LVL_INFO : LOG_LVL_ERROR, "stopped");
    free(s);
    return status;
}

/* Direct use, for the fuzz target: the whole request handler on a ledger
 * folder, without sockets or threads. ------------------------------------ */

struct server *server_direct_open(const struct config *c)
{
    struct server *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->cfg = c;
    s->direct = 1;
    if (trace_ledger_open(&s->l, c->data) != TRACE_OK ||
        trace_key_generate(&s->key) != TRACE_OK || server_init_state(s) != 0 ||
        jobs_init(s) != 0) {
        server_direct_close(s);
        return NULL;
    }
    trace_ledger_set_checkpoint_key(s->l, s->key);
    s->floor_us = s->start_us - 1; /* no restart: any time now is fine */
    return s;
}

void server_direct_request(struct server *s, const uint8_t *data, size_t len)
{
    struct work w;
    nng_msg *m;

    memset(&w, 0, sizeof(w));
    w.srv = s;
    if (nng_msg_alloc(&m, len) != 0)
        return;
    if (len)
        memcpy(nng_msg_body(m), data, len);
    w.req = m;
    w.received_us = wire_now_us();
    handle(&w);
}

int server_direct_session(struct server *s, const char *party,
                          const uint8_t key_id[8], const uint8_t key[32],
                          const uint8_t id[16])
{
    return sessions_open(&s->sessions, party, key_id, 0, key, wire_now_us(),
                         id);
}

void server_direct_close(struct server *s)
{
    if (!s)
        return;
    jobs_stop(s);
    if (s->has_admit)
        admit_free(&s->admit);
    if (s->has_sessions)
        sessions_free(&s->sessions);
    if (s->has_ahead)
        ahead_free(&s->ahead);
    trace_ledger_close(s->l); /* before the key it borrows */
    trace_key_free(s->key);
    free(s);
}
