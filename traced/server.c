/*
 * server.c - traced's request loop.
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
 *       (durable), and only then answers each request and publishes the
 *       new signed head;
 *   the main thread: signals, the nightly reconciliation, and publishing
 *       heads and alerts that other processes stored.
 *
 * Shutdown (SIGTERM/SIGINT): listeners close, queued requests are
 * finished and answered (commits included), then contexts, sockets and
 * the ledger close in that order, and the process exits 0.
 */
#define _GNU_SOURCE /* fopencookie */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/crypto.h>

#include "trace/ledger.h"
#include "trace/query.h"
#include "trace/reconcile.h"
#include "traced.h"
#include "tracectl.h"
#include "wire.h"

#define TICKET_LIFETIME_US (600LL * 1000000) /* prepare -> commit */
#define MAX_REPORTED_ERRORS 20
#define MAX_EXEC_ARGS 64
#define MAX_ARG_LEN 4096

struct server;

/* One nng context and the request it is working on. */
struct work {
    struct server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
    nng_msg *req;
    int64_t received_us;
    struct work *next; /* in a queue */
    /* a commit on its way through the writer */
    trace_batch *batch;
    trace_signed_group *groups;
    size_t n_groups;
    unsigned flags;
    char principal[72];
};

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct work *head, *tail;
    size_t n;
    int closed;
};

/* Nonces seen in this clock window and the one before. */
struct replay_gen {
    uint8_t (*keys)[TRACE_KEY_ID_LEN + WIRE_NONCE_LEN];
    uint8_t *used;
    size_t cap, n;
};

struct rate {
    char party[72];
    double tokens;
    int64_t last_us;
};
#define RATE_SLOTS 4096

struct server {
    const struct config *cfg;
    trace_ledger *l;
    trace_key *key; /* signs checkpoints */
    uint8_t ticket_key[32];
    int64_t start_us;
    nng_socket rep, pub;
    int has_pub;
    nng_listener listeners[CFG_MAX_LISTEN];
    size_t n_listeners;
    nng_tls_config *tls;
    struct work *works;
    size_t n_works;
    struct queue inq, commitq;
    pthread_t *threads;
    size_t n_threads;
    pthread_t writer;
    pthread_mutex_t exec_mu; /* commands run one at a time */
    /* held for reading around any use of the ledger; the writer takes it
     * for writing to grow the map (no transaction may be open then) */
    pthread_rwlock_t map_lock;
    pthread_mutex_t replay_mu;
    struct replay_gen gen[2];
    int64_t turned_us;
    pthread_mutex_t rate_mu;
    struct rate *rates;
    pthread_mutex_t pub_mu;
    uint64_t published_size;
    uint64_t alert_pos;
    int direct; /* no sockets or threads: requests handled in the caller
                   (the fuzz target's harness) */
    atomic_int stopping;
    atomic_int busy; /* requests received and not yet answered */
    atomic_int connections;
};

static void reply(struct work *w, Trace__Wire__V1__Response *resp);

/* Queues --------------------------------------------------------------- */

static int queue_init(struct queue *q)
{
    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL))
        return -1;
    return pthread_cond_init(&q->cv, NULL) ? -1 : 0;
}

static void queue_push(struct queue *q, struct work *w)
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

static void reply_error(struct work *w, int code, const char *msg)
{
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    resp.code = code;
    resp.message = (char *)msg;
    reply(w, &resp);
}

static void reply(struct work *w, Trace__Wire__V1__Response *resp)
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
    atomic_fetch_add(&s->busy, 1);
    queue_push(&s->inq, w);
}

/* A protobuf-c allocator with a byte budget, for outside bytes. */
struct budget {
    ProtobufCAllocator a;
    size_t left;
};

static void *budget_alloc(void *data, size_t n)
{
    struct budget *b = data;
    if (n > b->left)
        return NULL;
    b->left -= n;
    return malloc(n);
}

static void budget_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static void budget_init(struct budget *b, size_t msg_len)
{
    b->a.alloc = budget_alloc;
    b->a.free = budget_free;
    b->a.allocator_data = b;
    b->left = 4 * msg_len + (1u << 16);
}

/* Authentication --------------------------------------------------------- */

static int replay_gen_init(struct replay_gen *g, size_t cap)
{
    g->keys = calloc(cap, sizeof(*g->keys));
    g->used = calloc(cap, 1);
    g->cap = cap;
    g->n = 0;
    return g->keys && g->used ? 0 : -1;
}

static size_t replay_find(const struct replay_gen *g, const uint8_t *k,
                          int *found)
{
    uint64_t h = 0;
    memcpy(&h, k + TRACE_KEY_ID_LEN, sizeof(h)); /* the nonce is random */
    size_t i = (size_t)(h % g->cap);
    for (;;) {
        if (!g->used[i]) {
            *found = 0;
            return i;
        }
        if (memcmp(g->keys[i], k, TRACE_KEY_ID_LEN + WIRE_NONCE_LEN) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) % g->cap;
    }
}

/* 0 if (key, nonce) is new (and now remembered), 1 if seen, -1 if the
 * cache is full for this window. */
static int replay_check(struct server *s, const uint8_t *key_id,
                        const uint8_t *nonce, int64_t now)
{
    uint8_t k[TRACE_KEY_ID_LEN + WIRE_NONCE_LEN];
    int found, ret = 0;
    size_t i;

    memcpy(k, key_id, TRACE_KEY_ID_LEN);
    memcpy(k + TRACE_KEY_ID_LEN, nonce, WIRE_NONCE_LEN);
    pthread_mutex_lock(&s->replay_mu);
    if (now - s->turned_us > s->cfg->clock_window * 1000000LL) {
        /* the older generation is past any accepted time: forget it */
        struct replay_gen old = s->gen[1];
        s->gen[1] = s->gen[0];
        s->gen[0] = old;
        memset(s->gen[0].used, 0, s->gen[0].cap);
        s->gen[0].n = 0;
        s->turned_us = now;
    }
    replay_find(&s->gen[1], k, &found);
    if (found) {
        ret = 1;
    } else {
        i = replay_find(&s->gen[0], k, &found);
        if (found) {
            ret = 1;
        } else if (s->gen[0].n * 10 >= s->gen[0].cap * 7) {
            ret = -1;
        } else {
            memcpy(s->gen[0].keys[i], k, sizeof(k));
            s->gen[0].used[i] = 1;
            s->gen[0].n++;
        }
    }
    pthread_mutex_unlock(&s->replay_mu);
    return ret;
}

/* Token bucket per party: 0 if the request may go on. */
static int rate_check(struct server *s, const char *party, int64_t now)
{
    uint64_t h = 1469598103934665603ULL;
    int ret = 0;

    if (s->cfg->rate == 0)
        return 0;
    for (const char *p = party; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    pthread_mutex_lock(&s->rate_mu);
    for (size_t n = 0, i = (size_t)(h % RATE_SLOTS); n < RATE_SLOTS;
         n++, i = (i + 1) % RATE_SLOTS) {
        struct rate *r = &s->rates[i];
        if (r->party[0] && strcmp(r->party, party) != 0)
            continue;
        if (!r->party[0]) {
            snprintf(r->party, sizeof(r->party), "%s", party);
            r->tokens = (double)s->cfg->burst;
            r->last_us = now;
        }
        r->tokens += (double)(now - r->last_us) * (double)s->cfg->rate / 1e6;
        if (r->tokens > (double)s->cfg->burst)
            r->tokens = (double)s->cfg->burst;
        r->last_us = now;
        if (r->tokens < 1.0)
            ret = -1;
        else
            r->tokens -= 1.0;
        break;
    }
    pthread_mutex_unlock(&s->rate_mu);
    return ret;
}

/* Exec ------------------------------------------------------------------- */

struct capbuf {
    char *data;
    size_t len, cap, limit;
    int overflow;
};

static ssize_t cap_write(void *cookie, const char *buf, size_t n)
{
    struct capbuf *c = cookie;
    if (c->len + n > c->limit) {
        c->overflow = 1;
        return -1;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        char *p = realloc(c->data, cap);
        if (!p) {
            c->overflow = 1;
            return -1;
        }
        c->data = p;
        c->cap = cap;
    }
    memcpy(c->data + c->len, buf, n);
    c->len += n;
    return (ssize_t)n;
}

static FILE *cap_open(struct capbuf *c, size_t limit)
{
    cookie_io_functions_t io = {NULL, cap_write, NULL, NULL};
    memset(c, 0, sizeof(*c));
    c->limit = limit;
    return fopencookie(c, "w", io);
}

static const char *const exec_allowed[] = {
    "balance", "trace",  "permit",    "history", "register", "catalog",
    "head",    "export", "reconcile", "alerts",  "verify",   "backup"};

static void run_exec(struct work *w, const Trace__Wire__V1__Exec *ex,
                     const char *party, const trace_party *pi)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    char *argv[MAX_EXEC_ARGS + 1];
    struct globals g;
    struct capbuf out, err;
    size_t allowed = 0;
    int code;

    if (ex->n_argv == 0 || ex->n_argv > MAX_EXEC_ARGS) {
        reply_error(w, 1, "a command and at most 64 arguments");
        return;
    }
    for (size_t i = 0; i < ex->n_argv; i++)
        if (strlen(ex->argv[i]) > MAX_ARG_LEN) {
            reply_error(w, 1, "argument too long");
            return;
        }
    for (size_t i = 0; i < sizeof(exec_allowed) / sizeof(*exec_allowed); i++)
        if (strcmp(ex->argv[0], exec_allowed[i]) == 0)
            allowed = 1;
    if (!allowed) {
        char msg[256];
        snprintf(msg, sizeof(msg), "`%.64s` is not run by the daemon",
                 ex->argv[0]);
        reply_error(w, 1, msg);
        return;
    }
    /* getopt permutes argv: give it copies */
    for (size_t i = 0; i < ex->n_argv; i++)
        argv[i] = ex->argv[i];
    argv[ex->n_argv] = NULL;
    memset(&g, 0, sizeof(g));
    g.data = s->cfg->data;
    g.ledger = s->l;
    g.principal = party;
    g.principal_regulator = pi->regulator;
    g.backup_dir = s->cfg->backup_dir;
    g.rules_file = s->cfg->rules;
    g.json = ex->has_json && ex->json;
    ctl_out = cap_open(&out, (size_t)s->cfg->max_message);
    ctl_err = cap_open(&err, 1u << 20);
    if (!ctl_out || !ctl_err) {
        if (ctl_out)
            fclose(ctl_out);
        if (ctl_err)
            fclose(ctl_err);
        free(out.data);
        free(err.data);
        reply_error(w, 6, "out of memory");
        return;
    }
    pthread_mutex_lock(&s->exec_mu);
    pthread_rwlock_rdlock(&s->map_lock);
    code = ctl_dispatch(&g, (int)ex->n_argv, argv);
    pthread_rwlock_unlock(&s->map_lock);
    pthread_mutex_unlock(&s->exec_mu);
    fclose(ctl_out);
    fclose(ctl_err);
    ctl_out = ctl_err = NULL;
    if (out.overflow) {
        code = 6;
        resp.message = "the output is larger than the daemon's max-message: "
                       "narrow the request (--party, --from, --to)";
    } else {
        resp.has_out = 1;
        resp.out.data = (uint8_t *)out.data;
        resp.out.len = out.len;
    }
    resp.has_err = 1;
    resp.err.data = (uint8_t *)err.data;
    resp.err.len = err.len;
    resp.code = code;
    if (strcmp(ex->argv[0], "alerts") == 0) {
        resp.has_cursor = 1;
        resp.cursor = g.cursor;
    }
    if (code == 5)
        log_msg(LOG_LVL_WARN, "refused %s the command %s: %.*s", party,
                ex->argv[0], (int)(err.len > 200 ? 200 : err.len),
                err.data ? err.data : "");
    else
        log_msg(LOG_LVL_DEBUG, "%s ran %s: exit %d", party, ex->argv[0], code);
    reply(w, &resp);
    free(out.data);
    free(err.data);
}

/* Prepare and commit ----------------------------------------------------- */

static void write_all(struct server *s, struct work *list);

/* ticket = u64be issued_us || HMAC(key, issued_us || requester || 0 ||
 * for each event: u32be len || bytes) */
static int ticket_mac(struct server *s, uint8_t mac[32], int64_t issued,
                      const char *principal, const ProtobufCBinaryData *ev,
                      size_t n)
{
    size_t len = 8 + strlen(principal) + 1;
    uint8_t *buf, *p;
    int rc;

    for (size_t i = 0; i < n; i++)
        len += 4 + ev[i].len;
    if (!(buf = malloc(len)))
        return -1;
    p = buf;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)((uint64_t)issued >> (56 - 8 * i));
    memcpy(p, principal, strlen(principal) + 1);
    p += strlen(principal) + 1;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++)
            *p++ = (uint8_t)(ev[i].len >> (24 - 8 * k));
        memcpy(p, ev[i].data, ev[i].len);
        p += ev[i].len;
    }
    rc = wire_hmac(mac, s->ticket_key, buf, len);
    free(buf);
    return rc;
}

struct find_alert {
    const char *id;
    const char *party;
    int found, names_party;
};

static int match_alert(const trace_alert *a, void *ctx)
{
    struct find_alert *fa = ctx;
    if (strcmp(a->id, fa->id) != 0)
        return 0;
    fa->found = 1;
    fa->names_party = (a->party && strcmp(a->party, fa->party) == 0) ||
                      (a->counterparty && strcmp(a->counterparty, fa->party) == 0);
    return 1;
}

/* An alert_ack line must name a stored alert, and one about the
 * requester unless a regulator acknowledges it.  0 or an exit code with
 * msg. */
static int check_ack(struct server *s, const char *line, size_t len,
                     const char *party, const trace_party *pi, char *msg,
                     size_t cap)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *alert;
    struct find_alert fa = {NULL, party, 0, 0};
    int ret = 0;

    if (!j)
        return 0; /* the parser has already accepted it; nothing to add */
    alert = json_string_value(json_object_get(j, "alert"));
    if (alert) {
        fa.id = alert;
        trace_alerts(s->l, NULL, match_alert, &fa);
        if (!fa.found) {
            snprintf(msg, cap, "no alert %.128s (run reconcile first)", alert);
            ret = 4;
        } else if (!pi->regulator && !fa.names_party) {
            snprintf(msg, cap,
                     "permission denied: alert %.128s is not about %s", alert,
                     party);
            ret = 5;
        }
    }
    json_decref(j);
    return ret;
}

/* Keys to provision for parties registered by lines of the batch: each
 * key's registration follows its party's line. */
struct provctx {
    char *pending;  /* per provision entry: 1 waiting for its line, 2 done */
    char **keyed;   /* subjects of party lines that carry a pubkey */
    size_t n_keyed;
};

static void provctx_free(struct provctx *pc)
{
    for (size_t i = 0; i < pc->n_keyed; i++)
        free(pc->keyed[i]);
    free(pc->keyed);
    free(pc->pending);
}

static int after_party_line(trace_batch *b, const Trace__Wire__V1__Prepare *pr,
                            struct provctx *pc, const char *requester,
                            const Trace__Wire__V1__Line *ln, char *msg,
                            size_t cap)
{
    json_t *j = json_loadb((const char *)ln->text.data, ln->text.len, 0, NULL);
    const char *subject;
    int rc = TRACE_OK;

    if (!j)
        return TRACE_OK;
    subject = json_string_value(json_object_get(j, "subject"));
    if (subject) {
        if (json_object_get(j, "pubkey")) {
            char **p = realloc(pc->keyed, (pc->n_keyed + 1) * sizeof(*p));
            if (p && (p[pc->n_keyed] = strdup(subject)))
                pc->keyed = p, pc->n_keyed++;
            else if (p)
                pc->keyed = p;
        }
        for (size_t i = 0; pc->pending && i < pr->n_provision; i++) {
            const Trace__Wire__V1__ProvisionKey *pk = pr->provision[i];
            if (pc->pending[i] != 1 || strcmp(pk->party, subject) != 0 ||
                pk->pubkey.len != TRACE_PUBKEY_LEN)
                continue;
            rc = trace_batch_add_key_registration(b, requester, pk->party,
                                                  pk->pubkey.data);
            if (rc != TRACE_OK)
                snprintf(msg, cap, "line %llu: %s",
                         (unsigned long long)ln->lineno, trace_error_last());
            pc->pending[i] = 2;
        }
    }
    json_decref(j);
    return rc;
}

static void run_prepare(struct work *w, const Trace__Wire__V1__Prepare *pr,
                        const char *party, const trace_party *pi)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__Prepared prep = TRACE__WIRE__V1__PREPARED__INIT;
    ProtobufCBinaryData *evs = NULL;
    char **parties = NULL, *msgs = NULL, **need = NULL;
    size_t n_need = 0;
    struct provctx pc = {NULL, NULL, 0};
    uint64_t *linenos = NULL;
    uint8_t ticket[8 + 32];
    size_t mlen = 0, n;
    unsigned long errors = 0, lines = 0;
    int first = 0, rc;
    FILE *m = open_memstream(&msgs, &mlen);
    trace_batch *b = NULL;
    int64_t issued = wire_now_us();

    if (!m || trace_batch_new(&b, s->l) != TRACE_OK) {
        if (m)
            fclose(m);
        free(msgs);
        reply_error(w, 6, "out of memory");
        return;
    }
    pthread_rwlock_rdlock(&s->map_lock);
    /* import --provision-keys: a regulator registers keys first */
    if (pr->n_provision && !(pc.pending = calloc(pr->n_provision, 1))) {
        pthread_rwlock_unlock(&s->map_lock);
        fclose(m);
        free(msgs);
        trace_batch_free(b);
        reply_error(w, 6, "out of memory");
        return;
    }
    for (size_t i = 0; i < pr->n_provision; i++) {
        const Trace__Wire__V1__ProvisionKey *pk = pr->provision[i];
        const char *why = NULL;
        trace_party known;
        int code = 0;
        if (pi->regulator && trace_party_id_valid(pk->party) &&
            trace_party_info(s->l, pk->party, &known) != TRACE_OK) {
            pc.pending[i] = 1; /* registered by a line of this batch */
            continue;
        }
        if (!pi->regulator) {
            code = 5;
            why = "permission denied: only a regulator registers keys";
        } else if (!trace_party_id_valid(pk->party) ||
                   pk->pubkey.len != TRACE_PUBKEY_LEN) {
            code = 2;
            why = "malformed key to provision";
        } else if ((rc = trace_batch_add_key_registration(
                        b, party, pk->party, pk->pubkey.data)) != TRACE_OK) {
            code = trace_error_exit_code(rc);
            why = trace_error_last();
        }
        if (why) {
            pthread_rwlock_unlock(&s->map_lock);
            fclose(m);
            free(msgs);
            provctx_free(&pc);
            trace_batch_free(b);
            reply_error(w, code, why);
            return;
        }
    }
    for (size_t i = 0; i < pr->n_lines; i++) {
        const Trace__Wire__V1__Line *ln = pr->lines[i];
        size_t before = trace_batch_count(b);
        char amsg[300];
        int arc;

        lines++;
        rc = trace_batch_add_json(b, (const char *)ln->text.data, ln->text.len,
                                  (unsigned long)ln->lineno);
        if (rc == TRACE_OK && trace_batch_count(b) > before) {
            const char *rec, *type;
            trace_batch_event(b, before, &type, &rec, NULL, NULL, NULL);
            if (!pi->regulator && strcmp(rec, party) != 0) {
                rc = TRACE_EPERM;
                snprintf(amsg, sizeof(amsg),
                         "line %llu: event recorded by %s, but acting as %s: "
                         "a party writes only its own ledger",
                         (unsigned long long)ln->lineno, rec, party);
            } else if (strcmp(type, "alert_ack") == 0 &&
                       (arc = check_ack(s, (const char *)ln->text.data,
                                        ln->text.len, party, pi, amsg,
                                        sizeof(amsg))) != 0) {
                rc = arc == 4 ? TRACE_ENOTFOUND : TRACE_EPERM;
            } else if (strcmp(type, "party") == 0) {
                rc = after_party_line(b, pr, &pc, party, ln, amsg,
                                      sizeof(amsg));
            }
            if (rc != TRACE_OK && errors < MAX_REPORTED_ERRORS)
                fprintf(m, "%s%s", errors ? "\n" : "", amsg);
        } else if (rc != TRACE_OK && errors < MAX_REPORTED_ERRORS) {
            fprintf(m, "%s%s", errors ? "\n" : "", trace_error_last());
        }
        if (rc != TRACE_OK) {
            if (!first)
                first = trace_error_exit_code(rc);
            errors++;
        }
    }
    pthread_rwlock_unlock(&s->map_lock);
    for (size_t i = 0; !errors && pc.pending && i < pr->n_provision; i++)
        if (pc.pending[i] == 1) {
            fprintf(m, "%s is not a registered party (a regulator registers "
                       "it with a `party` event first)",
                    pr->provision[i]->party);
            first = 5;
            errors++;
        }
    if (errors) {
        if (errors > MAX_REPORTED_ERRORS)
            fprintf(m, "\n... %lu more rejected lines",
                    errors - MAX_REPORTED_ERRORS);
        fclose(m);
        resp.has_rejected = resp.has_lines = 1;
        resp.rejected = errors;
        resp.lines = lines;
        resp.code = first;
        resp.message = msgs;
        log_msg(LOG_LVL_INFO, "prepare for %s: %lu of %lu lines rejected",
                party, errors, lines);
        reply(w, &resp);
        free(msgs);
        provctx_free(&pc);
        trace_batch_free(b);
        return;
    }
    fclose(m);
    free(msgs);
    n = trace_batch_count(b);
    evs = calloc(n + 1, sizeof(*evs));
    parties = calloc(n + 1, sizeof(*parties));
    linenos = calloc(n + 1, sizeof(*linenos));
    if (!evs || !parties || !linenos) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *bytes;
        const char *rec;
        unsigned long ln;
        trace_batch_event(b, i, NULL, &rec, &bytes, &evs[i].len, &ln);
        evs[i].data = (uint8_t *)bytes;
        parties[i] = (char *)rec;
        linenos[i] = ln;
    }
    for (int i = 0; i < 8; i++)
        ticket[i] = (uint8_t)((uint64_t)issued >> (56 - 8 * i));
    if (ticket_mac(s, ticket + 8, issued, party, evs, n) != 0) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    prep.n_events = n;
    prep.events = evs;
    prep.n_parties = n;
    prep.parties = parties;
    prep.n_linenos = n;
    prep.linenos = linenos;
    prep.ticket.data = ticket;
    prep.ticket.len = sizeof(ticket);
    if (pr->has_want_provision && pr->want_provision &&
        !(need = calloc(n + 1, sizeof(*need)))) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    for (size_t i = 0; need && i < n; i++) {
        /* recorders registered without any key, once each */
        trace_party info;
        size_t k = 0;
        while (k < n_need && strcmp(need[k], parties[i]) != 0)
            k++;
        if (k < n_need)
            continue;
        for (k = 0; k < pc.n_keyed && strcmp(pc.keyed[k], parties[i]); k++)
            ;
        if (k < pc.n_keyed)
            continue; /* registered with its key in this batch */
        pthread_rwlock_rdlock(&s->map_lock);
        if (trace_party_info(s->l, parties[i], &info) != TRACE_OK ||
            info.n_keys == 0)
            need[n_need++] = parties[i];
        pthread_rwlock_unlock(&s->map_lock);
    }
    prep.n_need_keys = n_need;
    prep.need_keys = need;
    resp.code = 0;
    resp.prepared = &prep;
    reply(w, &resp);
out:
    free(evs);
    free(parties);
    free(linenos);
    free(need);
    provctx_free(&pc);
    trace_batch_free(b);
}

/* Checks a commit and hands it to the writer (which answers it). */
static void run_commit(struct work *w, const Trace__Wire__V1__Commit *cm,
                       const char *party, const trace_party *pi)
{
    struct server *s = w->srv;
    uint8_t mac[32];
    int64_t issued = 0;
    size_t total = 0;
    char msg[256];

    if (cm->ticket.len != 40) {
        reply_error(w, 2, "malformed ticket");
        return;
    }
    for (int i = 0; i < 8; i++)
        issued = (int64_t)(((uint64_t)issued << 8) | cm->ticket.data[i]);
    if (ticket_mac(s, mac, issued, party, cm->events, cm->n_events) != 0) {
        reply_error(w, 6, "out of memory");
        return;
    }
    if (CRYPTO_memcmp(mac, cm->ticket.data + 8, 32) != 0) {
        log_msg(LOG_LVL_WARN, "refused %s a commit: events not as prepared",
                party);
        reply_error(w, 5, "permission denied: the events are not what this "
                          "daemon prepared for you (prepare them again)");
        return;
    }
    if (wire_now_us() - issued > TICKET_LIFETIME_US) {
        reply_error(w, 2, "the prepared events expired: prepare them again");
        return;
    }
    if (cm->n_groups == 0 || cm->n_events == 0) {
        reply_error(w, 2, "nothing to commit");
        return;
    }
    w->groups = calloc(cm->n_groups, sizeof(*w->groups));
    if (!w->groups || trace_batch_new(&w->batch, s->l) != TRACE_OK) {
        free(w->groups);
        w->groups = NULL;
        reply_error(w, 6, "out of memory");
        return;
    }
    for (size_t i = 0; i < cm->n_groups; i++) {
        const Trace__Wire__V1__Group *g = cm->groups[i];
        if (strlen(g->party) >= sizeof(w->groups[i].party) ||
            g->key_id.len != TRACE_KEY_ID_LEN || g->sig.len != TRACE_SIG_LEN ||
            g->count == 0) {
            reply_error(w, 2, "malformed signature group");
            goto fail;
        }
        if (!pi->regulator && strcmp(g->party, party) != 0) {
            snprintf(msg, sizeof(msg),
                     "permission denied: %s may not send events of %s", party,
                     g->party);
            log_msg(LOG_LVL_WARN, "refused %s a commit of %s's events", party,
                    g->party);
            reply_error(w, 5, msg);
            goto fail;
        }
        snprintf(w->groups[i].party, sizeof(w->groups[i].party), "%s",
                 g->party);
        memcpy(w->groups[i].key_id, g->key_id.data, TRACE_KEY_ID_LEN);
        memcpy(w->groups[i].sig, g->sig.data, TRACE_SIG_LEN);
        w->groups[i].count = g->count;
        total += g->count;
    }
    if (total != cm->n_events) {
        reply_error(w, 2, "the signature groups do not cover the events");
        goto fail;
    }
    for (size_t i = 0; i < cm->n_events; i++) {
        unsigned long ln =
            cm->n_linenos == cm->n_events ? (unsigned long)cm->linenos[i] : i + 1;
        if (trace_batch_add_encoded(w->batch, cm->events[i].data,
                                    cm->events[i].len, ln) != TRACE_OK) {
            reply_error(w, 2, trace_error_last());
            goto fail;
        }
    }
    w->n_groups = cm->n_groups;
    w->flags = cm->has_historic && cm->historic ? TRACE_APPEND_HISTORIC : 0;
    snprintf(w->principal, sizeof(w->principal), "%s", party);
    w->next = NULL;
    if (s->direct)
        write_all(s, w);
    else
        queue_push(&s->commitq, w);
    return;
fail:
    free(w->groups);
    w->groups = NULL;
    trace_batch_free(w->batch);
    w->batch = NULL;
}

/* Requests ---------------------------------------------------------------- */

static void handle_hello(struct work *w)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__HelloReply h = TRACE__WIRE__V1__HELLO_REPLY__INIT;

    h.version = WIRE_VERSION;
    h.regulator = (char *)trace_ledger_regulator(s->l);
    h.pubkey.data = (uint8_t *)trace_key_public(s->key);
    h.pubkey.len = TRACE_PUBKEY_LEN;
    h.max_message = (uint64_t)s->cfg->max_message;
    h.pub_url = s->has_pub ? s->cfg->pub : NULL;
    resp.code = 0;
    resp.hello = &h;
    reply(w, &resp);
}

static void handle_signed(struct work *w, const Trace__Wire__V1__SignedRequest *sr,
                          size_t msg_len)
{
    struct server *s = w->srv;
    Trace__Wire__V1__RequestBody *body;
    struct budget bud;
    char owner[72], msg[300];
    uint8_t pub[TRACE_PUBKEY_LEN], digest[32];
    int64_t now = wire_now_us(), window = s->cfg->clock_window * 1000000LL;
    trace_party pi;
    int rc;

    budget_init(&bud, msg_len);
    if (sr->sig.len != TRACE_SIG_LEN) {
        reply_error(w, 5, "permission denied: malformed signature");
        return;
    }
    body = trace__wire__v1__request_body__unpack(&bud.a, sr->body.len,
                                                 sr->body.data);
    if (!body) {
        reply_error(w, 2, "malformed request body");
        return;
    }
    if (body->key_id.len != TRACE_KEY_ID_LEN ||
        body->nonce.len != WIRE_NONCE_LEN || !trace_party_id_valid(body->party)) {
        reply_error(w, 2, "malformed request: key id, nonce or party");
        goto out;
    }
    pthread_rwlock_rdlock(&s->map_lock);
    rc = trace_key_owner(s->l, body->key_id.data, owner, sizeof(owner), pub);
    if (rc == TRACE_OK)
        rc = trace_party_info(s->l, owner, &pi);
    pthread_rwlock_unlock(&s->map_lock);
    if (rc != TRACE_OK || strcmp(owner, body->party) != 0) {
        log_msg(LOG_LVL_WARN, "refused a request as %s: key not registered "
                              "to it", body->party);
        reply_error(w, 5, "permission denied: the key is not registered to "
                          "that party");
        goto out;
    }
    wire_request_digest(digest, sr->body.data, sr->body.len);
    if (trace_sig_verify(pub, digest, sizeof(digest), sr->sig.data) !=
        TRACE_OK) {
        log_msg(LOG_LVL_WARN, "refused a request as %s: bad signature",
                body->party);
        reply_error(w, 5, "permission denied: bad signature");
        goto out;
    }
    if (body->time_us > now + window || body->time_us < now - window) {
        snprintf(msg, sizeof(msg),
                 "permission denied: the request's time is %+.0f s from the "
                 "daemon's clock (window %lld s): check the clock",
                 (double)(body->time_us - now) / 1e6, s->cfg->clock_window);
        log_msg(LOG_LVL_WARN, "refused a request of %s: clock off by %+.0f s",
                body->party, (double)(body->time_us - now) / 1e6);
        reply_error(w, 5, msg);
        goto out;
    }
    if (body->time_us < s->start_us) {
        log_msg(LOG_LVL_WARN, "refused a request of %s signed before the "
                              "daemon started", body->party);
        reply_error(w, 5, "permission denied: the request was signed before "
                          "the daemon started (a replay?); send it again");
        goto out;
    }
    rc = replay_check(s, body->key_id.data, body->nonce.data, now);
    if (rc == 1) {
        log_msg(LOG_LVL_WARN, "refused a replayed request of %s", body->party);
        reply_error(w, 5, "permission denied: replayed request");
        goto out;
    }
    if (rc < 0) {
        reply_error(w, 6, "busy: too many requests in this clock window");
        goto out;
    }
    if (pi.suspended) {
        log_msg(LOG_LVL_WARN, "refused a request of suspended %s", owner);
        reply_error(w, 5, "permission denied: the party is suspended");
        goto out;
    }
    if (rate_check(s, owner, now) != 0) {
        reply_error(w, 6, "busy: request rate limit; slow down");
        goto out;
    }
    switch (body->op_case) {
    case TRACE__WIRE__V1__REQUEST_BODY__OP_EXEC:
        run_exec(w, body->exec, owner, &pi);
        break;
    case TRACE__WIRE__V1__REQUEST_BODY__OP_PREPARE:
        run_prepare(w, body->prepare, owner, &pi);
        break;
    case TRACE__WIRE__V1__REQUEST_BODY__OP_COMMIT:
        run_commit(w, body->commit, owner, &pi);
        break;
    default:
        reply_error(w, 1, "unknown request");
        break;
    }
out:
    trace__wire__v1__request_body__free_unpacked(body, &bud.a);
}

static void handle(struct work *w)
{
    struct server *s = w->srv;
    nng_msg *m = w->req;
    size_t len = nng_msg_len(m);
    Trace__Wire__V1__Request *rq;
    struct budget bud;

    w->req = NULL;
    if (wire_now_us() - w->received_us > s->cfg->request_timeout * 1000LL) {
        nng_msg_free(m);
        reply_error(w, 6, "busy: the request waited too long; try again");
        return;
    }
    budget_init(&bud, len);
    rq = trace__wire__v1__request__unpack(&bud.a, len, nng_msg_body(m));
    if (!rq) {
        nng_msg_free(m);
        log_msg(LOG_LVL_INFO, "malformed request of %zu bytes", len);
        reply_error(w, 2, "malformed request");
        return;
    }
    if (rq->kind_case == TRACE__WIRE__V1__REQUEST__KIND_HELLO)
        handle_hello(w);
    else if (rq->kind_case == TRACE__WIRE__V1__REQUEST__KIND_SIGNED)
        handle_signed(w, rq->signed_, len);
    else
        reply_error(w, 1, "unknown request");
    trace__wire__v1__request__free_unpacked(rq, &bud.a);
    nng_msg_free(m);
}

static void *worker_main(void *arg)
{
    struct server *s = arg;
    struct work *w;

    while ((w = queue_take(&s->inq, 1)) != NULL)
        handle(w);
    return NULL;
}

/* The writer -------------------------------------------------------------- */

static void publish_head(struct server *s, int force);

static void answer_commit(struct work *w, int rc, const char *msg,
                          const trace_append_result *res)
{
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__Committed c = TRACE__WIRE__V1__COMMITTED__INIT;

    if (rc == TRACE_OK) {
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
}

struct outcome {
    int rc;
    char msg[512];
    trace_append_result res;
};

/* One group commit of the works in `list`; 1 if the map was full. */
static int commit_round(struct server *s, struct work *list, size_t n,
                        struct outcome *out)
{
    trace_commit *c = NULL;
    size_t i = 0;
    int rc, full = 0;

    pthread_rwlock_rdlock(&s->map_lock);
    rc = trace_commit_begin(&c, s->l);
    for (struct work *w = list; w; w = w->next, i++) {
        if (rc != TRACE_OK) {
            out[i].rc = rc;
            snprintf(out[i].msg, sizeof(out[i].msg), "%s", trace_error_last());
            continue;
        }
        out[i].rc = trace_commit_add(c, w->batch, w->groups, w->n_groups,
                                     w->flags, &out[i].res);
        if (out[i].rc != TRACE_OK)
            snprintf(out[i].msg, sizeof(out[i].msg), "%s", trace_error_last());
        if (out[i].rc == TRACE_EFULL)
            full = 1;
    }
    if (rc == TRACE_OK) {
        rc = trace_commit_end(c, NULL);
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
    pthread_rwlock_unlock(&s->map_lock);
    return full;
}

/* Commits the works of `list` in rounds of at most commit-events events
 * and answers each. */
static void write_all(struct server *s, struct work *list)
{
    while (list) {
        struct work *w = list, *rest, *prev = NULL;
        size_t n = 0, events = 0, i = 0;
        uint64_t appended = 0;
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
                answer_commit(w, TRACE_ENOMEM, "out of memory", NULL);
            }
            list = rest;
            continue;
        }
        if (commit_round(s, list, n, out)) {
            /* the map filled: grow it with every reader held back, then
             * try the round once more */
            pthread_rwlock_wrlock(&s->map_lock);
            if (trace_ledger_reserve(s->l, (uint64_t)s->cfg->map_reserve
                                               << 20) == TRACE_OK)
                log_msg(LOG_LVL_INFO, "grew the ledger map");
            pthread_rwlock_unlock(&s->map_lock);
            memset(out, 0, n * sizeof(*out));
            commit_round(s, list, n, out);
        }
        for (w = list; w; i++) {
            struct work *next = w->next;
            appended += out[i].rc == TRACE_OK ? out[i].res.appended : 0;
            answer_commit(w, out[i].rc, out[i].msg, &out[i].res);
            w = next;
        }
        if (appended) {
            log_msg(LOG_LVL_DEBUG, "committed %llu events from %zu requests",
                    (unsigned long long)appended, n);
            publish_head(s, 0);
        }
        free(out);
        list = rest;
    }
}

static void *writer_main(void *arg)
{
    struct server *s = arg;
    struct work *list;

    while ((list = queue_take(&s->commitq, 0)) != NULL)
        write_all(s, list);
    return NULL;
}

/* Publishing ---------------------------------------------------------------- */

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
    pthread_rwlock_rdlock(&s->map_lock);
    rc = trace_ledger_head(s->l, &size, head);
    pthread_rwlock_unlock(&s->map_lock);
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
    pthread_mutex_unlock(&s->pub_mu);
}

static int publish_alert(const trace_alert *a, void *ctx)
{
    struct server *s = ctx;
    size_t tl = strlen(WIRE_ALERT_TOPIC), jl = strlen(a->json);
    char *buf = malloc(tl + jl);

    if (a->position > s->alert_pos)
        s->alert_pos = a->position;
    if (!buf)
        return 0;
    memcpy(buf, WIRE_ALERT_TOPIC, tl);
    memcpy(buf + tl, a->json, jl);
    nng_send(s->pub, buf, tl + jl, NNG_FLAG_NONBLOCK);
    free(buf);
    return 0;
}

static int note_alert(const trace_alert *a, void *ctx)
{
    struct server *s = ctx;
    if (a->position > s->alert_pos)
        s->alert_pos = a->position;
    return 0;
}

/* Alerts stored since the last look (by any process) go out on PUB. */
static void publish_alerts(struct server *s)
{
    trace_alert_filter f = TRACE_ALERT_FILTER_INIT;

    if (!s->has_pub)
        return;
    f.after = s->alert_pos;
    pthread_rwlock_rdlock(&s->map_lock);
    trace_alerts(s->l, &f, publish_alert, s);
    pthread_rwlock_unlock(&s->map_lock);
}

/* Nightly reconciliation ---------------------------------------------------- */

static char *read_rules(const char *path, size_t *len)
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

static void nightly(struct server *s)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;
    char *rules = NULL;
    size_t rlen = 0;
    int rc;

    if (s->cfg->rules && !(rules = read_rules(s->cfg->rules, &rlen))) {
        log_msg(LOG_LVL_ERROR, "nightly reconciliation: cannot read %s",
                s->cfg->rules);
        return;
    }
    o.rules_json = rules;
    o.rules_len = rlen;
    log_msg(LOG_LVL_INFO, "nightly reconciliation started");
    pthread_mutex_lock(&s->exec_mu);
    pthread_rwlock_rdlock(&s->map_lock);
    rc = trace_reconcile(s->l, &o, NULL, NULL, &sum);
    pthread_rwlock_unlock(&s->map_lock);
    pthread_mutex_unlock(&s->exec_mu);
    if (rc == TRACE_OK)
        log_msg(LOG_LVL_INFO,
                "nightly reconciliation: %llu alerts (%llu new) over %llu "
                "events in %.2f s",
                (unsigned long long)sum.alerts,
                (unsigned long long)sum.new_alerts,
                (unsigned long long)sum.events, sum.seconds);
    else
        log_msg(LOG_LVL_ERROR, "nightly reconciliation failed: %s",
                trace_error_last());
    free(rules);
    publish_alerts(s);
}

/* Connections ---------------------------------------------------------------- */

/* Pipes refused at ADD_PRE: nng 1.5 may still report their removal,
 * which must not count as a connection closing. */
#define REFUSED_RING 1024
static uint32_t refused[REFUSED_RING];
static size_t refused_next;
static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct server *s = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);

    log_msg(LOG_LVL_DEBUG, "pipe %u %s (%d connections before)", id,
            ev == NNG_PIPE_EV_ADD_PRE ? "added" : "removed",
            atomic_load(&s->connections));

    if (ev == NNG_PIPE_EV_ADD_PRE) {
        if (atomic_fetch_add(&s->connections, 1) >= s->cfg->max_connections) {
            atomic_fetch_sub(&s->connections, 1);
            pthread_mutex_lock(&refused_mu);
            refused[refused_next++ % REFUSED_RING] = id;
            pthread_mutex_unlock(&refused_mu);
            log_msg(LOG_LVL_WARN, "connection refused: max-connections (%lld) "
                                  "reached",
                    s->cfg->max_connections);
            nng_pipe_close(p);
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        int was_refused = 0;
        pthread_mutex_lock(&refused_mu);
        for (size_t i = 0; i < REFUSED_RING; i++)
            if (refused[i] == id && id != 0) {
                refused[i] = 0;
                was_refused = 1;
                break;
            }
        pthread_mutex_unlock(&refused_mu);
        if (!was_refused)
            atomic_fetch_sub(&s->connections, 1);
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
    if (rc != TRACE_OK)
        log_msg(LOG_LVL_ERROR, "checkpoint key %s: %s", path,
                trace_error_last());
    return rc;
}

static int start_listeners(struct server *s)
{
    const struct config *c = s->cfg;
    int rv;

    for (size_t i = 0; i < c->n_listen; i++) {
        nng_listener *ls = &s->listeners[s->n_listeners];
        const char *url = c->listen[i];
        if ((rv = nng_listener_create(ls, s->rep, url)) != 0) {
            log_msg(LOG_LVL_ERROR, "listen %s: %s", url, nng_strerror(rv));
            return -1;
        }
        if (strncmp(url, "tls+", 4) == 0) {
            if (!s->tls &&
                ((rv = nng_tls_config_alloc(&s->tls, NNG_TLS_MODE_SERVER)) ||
                 (rv = nng_tls_config_cert_key_file(s->tls, c->tls_cert,
                                                    NULL)) ||
                 (rv = nng_tls_config_ca_file(s->tls, c->tls_ca)) ||
                 (rv = nng_tls_config_auth_mode(s->tls,
                                                NNG_TLS_AUTH_MODE_REQUIRED)))) {
                log_msg(LOG_LVL_ERROR, "TLS for %s: %s", url,
                        nng_strerror(rv));
                return -1;
            }
            if ((rv = nng_listener_set_ptr(*ls, NNG_OPT_TLS_CONFIG, s->tls))) {
                log_msg(LOG_LVL_ERROR, "TLS for %s: %s", url,
                        nng_strerror(rv));
                return -1;
            }
        }
        if ((rv = nng_listener_start(*ls, 0)) != 0) {
            log_msg(LOG_LVL_ERROR, "listen %s: %s", url, nng_strerror(rv));
            nng_listener_close(*ls);
            return -1;
        }
        s->n_listeners++;
        log_msg(LOG_LVL_INFO, "listening on %s", url);
    }
    return 0;
}

/* What both the daemon and the direct handler need besides the ledger
 * and the key: locks, queues, the replay and rate tables, the ticket key
 * and the start time. */
static int server_init_state(struct server *s)
{
    if (wire_random(s->ticket_key, 32) != 0 || queue_init(&s->inq) ||
        queue_init(&s->commitq) || pthread_mutex_init(&s->exec_mu, NULL) ||
        pthread_rwlock_init(&s->map_lock, NULL) ||
        pthread_mutex_init(&s->replay_mu, NULL) ||
        pthread_mutex_init(&s->rate_mu, NULL) ||
        pthread_mutex_init(&s->pub_mu, NULL) ||
        replay_gen_init(&s->gen[0], (size_t)s->cfg->replay_cache) ||
        replay_gen_init(&s->gen[1], (size_t)s->cfg->replay_cache) ||
        !(s->rates = calloc(RATE_SLOTS, sizeof(*s->rates))))
        return -1;
    s->start_us = wire_now_us();
    s->turned_us = s->start_us;
    return 0;
}

static int local_minutes(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

int server_run(const struct config *c)
{
    struct server *s = calloc(1, sizeof(*s));
    sigset_t sigs;
    int status = 1, rv, at_min = -1, h, m, writer_started = 0;
    long last_day = -1;

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
    if (trace_ledger_reserve(s->l, (uint64_t)c->map_reserve << 20) !=
        TRACE_OK)
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
    nng_pipe_notify(s->rep, NNG_PIPE_EV_ADD_PRE, pipe_cb, s);
    nng_pipe_notify(s->rep, NNG_PIPE_EV_REM_POST, pipe_cb, s);
    if (c->pub) {
        if ((rv = nng_pub0_open(&s->pub)) != 0 ||
            (rv = nng_listen(s->pub, c->pub, NULL, 0)) != 0) {
            log_msg(LOG_LVL_ERROR, "pub %s: %s", c->pub, nng_strerror(rv));
            goto out_sock;
        }
        s->has_pub = 1;
        log_msg(LOG_LVL_INFO, "publishing heads and alerts on %s", c->pub);
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
    if (start_listeners(s) != 0)
        goto out_works;
    publish_head(s, 1);
    log_msg(LOG_LVL_INFO, "serving %s (%lld workers, %lld contexts)", c->data,
            c->workers, c->contexts);

    for (;;) {
        struct timespec tick = {0, 200 * 1000000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        time_t now;

        if (sig == SIGTERM || sig == SIGINT) {
            log_msg(LOG_LVL_INFO, "%s: finishing in-flight requests",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        publish_head(s, 0);
        publish_alerts(s);
        now = time(NULL);
        if (at_min >= 0 && local_minutes(now) == at_min &&
            now / 86400 != last_day) {
            last_day = now / 86400;
            nightly(s);
        }
    }
    status = 0;

out_works:
    /* no new connections; then let queued requests finish and answer */
    atomic_store(&s->stopping, 1);
    for (size_t i = 0; i < s->n_listeners; i++)
        nng_listener_close(s->listeners[i]);
    for (int waited = 0; atomic_load(&s->busy) > 0 && waited < 3000;
         waited++) {
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
    queue_close(&s->inq);
    queue_close(&s->commitq);
    for (size_t i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    if (writer_started)
        pthread_join(s->writer, NULL);
out_sock:
    nng_close(s->rep);
    if (s->has_pub)
        nng_close(s->pub);
    if (s->tls)
        nng_tls_config_free(s->tls);
out_ledger:
    free(s->threads);
    free(s->works);
    free(s->gen[0].keys);
    free(s->gen[0].used);
    free(s->gen[1].keys);
    free(s->gen[1].used);
    free(s->rates);
    trace_key_free(s->key);
    trace_ledger_close(s->l);
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
        trace_key_generate(&s->key) != TRACE_OK || server_init_state(s) != 0) {
        server_direct_close(s);
        return NULL;
    }
    s->start_us -= 1; /* requests signed in this microsecond are fine */
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

void server_direct_close(struct server *s)
{
    if (!s)
        return;
    free(s->gen[0].keys);
    free(s->gen[0].used);
    free(s->gen[1].keys);
    free(s->gen[1].used);
    free(s->rates);
    trace_key_free(s->key);
    trace_ledger_close(s->l);
    free(s);
}
