/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_int.h - what traced's request handling (requests.c) and its
 * sockets, threads and writer (server.c) share.  Private to traced.
 */
#ifndef TRACED_SERVER_INT_H
#define TRACED_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "trace/ledger.h"
#include "trace/query.h"
#include "admit.h"
#include "ops.h"
#include "session.h"
#include "ahead.h"
#include "traced.h"
#include "wire.h"

struct server;

/* One connection (nng pipe) of the REP socket. */
struct conn {
    uint32_t id;
    int listener;       /* index in s->listeners; -1 if not known */
    char peer[64];      /* "127.0.0.1", "::1", "ipc uid 1000", ... */
    int64_t since_us;   /* connected */
    int64_t active_us;  /* last admitted request answered (0: none yet) */
    unsigned in_flight; /* requests received and not yet answered */
};

/* One nng context and the request it is working on. */
struct work {
    struct server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
    int admitted; /* the request passed authentication and admission */
    nng_msg *req;
    int64_t received_us;
    uint32_t pipe;     /* the connection the request came on (0: none) */
    size_t bytes;      /* its size, counted in s->queued_bytes */
    struct work *next; /* in a queue */
    /* a commit on its way through the writer */
    trace_batch *batch;
    trace_signed_group *groups;
    size_t n_groups;
    unsigned flags;
    char principal[72];
    /* a write run by the writer for this work's thread, which waits for
     * it (store_on_writer) */
    int (*job)(void *arg);
    void *job_arg;
    int job_rc;
    int job_done; /* under s->job_mu */
};

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct work *head, *tail;
    size_t n;
    int closed;
};

/* One listen address of the REP socket (see "Listener supervision" in
 * server.c). */
struct listener {
    const char *url; /* as configured */
    nng_listener l;
    int open;         /* l was started and is not closed */
    uint64_t errors;  /* its "other" + "canceled" counts, last looked at */
    int suspect;      /* errors were counted: is it still accepting? */
    int failed;       /* probes in a row it did not answer */
    uint64_t accepts; /* connections it had accepted by then */
};

struct server {
    const struct config *cfg;
    trace_ledger *l;
    trace_key *key; /* signs checkpoints */
    uint8_t ticket_key[32];
    int64_t start_us;
    nng_socket rep, pub;
    int has_pub;
    struct listener listeners[CFG_MAX_LISTEN];
    size_t n_listeners;
    atomic_int listener_ids[CFG_MAX_LISTEN]; /* nng ids, read by pipe_cb */
    nng_tls_config *tls;
    nng_socket probe; /* dials our tls+tcp:// listeners (supervision) */
    int has_probe;
    nng_tls_config *probe_tls; /* the probe's: no certificate */
    atomic_int probing;        /* a probe of ipc:// or tcp:// is on */
    nng_sockaddr probe_from;   /* where that tcp:// probe comes from */
    struct work *works;
    size_t n_works;
    struct queue inq, commitq;
    pthread_t *threads;
    size_t n_threads;
    pthread_t writer;
    pthread_mutex_t recon_mu; /* reconciliations run one at a time */
    pthread_mutex_t job_mu;   /* the writer finished a work's job */
    pthread_cond_t job_cv;
    struct admit admit; /* rate limits and the replay cache */
    int has_admit;
    struct sessions sessions; /* of connections (session.c) */
    int has_sessions;
    struct ahead ahead; /* requests signed ahead, across restarts */
    int has_ahead;
    int64_t floor_us; /* requests signed before it are refused */
    pthread_mutex_t pub_mu;
    uint64_t published_size;
    uint64_t alert_pos;     /* the last stored alert noticed */
    uint64_t alert_notices; /* notices of new alerts published */
    int direct; /* no sockets or threads: requests handled in the caller
                   (the fuzz target's harness) */
    atomic_int stopping;
    atomic_int busy; /* requests received and not yet answered */
    /* the pipes counted against the connection limits: added when
     * ADD_PRE accepts the pipe, removed at its REM_POST (conn.c) */
    pthread_mutex_t conn_mu;
    struct conn *conns;
    size_t n_conns, cap_conns;
    size_t sweep_from; /* where the next look for freed pipes starts */
    /* bytes of requests received and not yet handled (queue-bytes) */
    atomic_size_t queued_bytes;
    struct jobs *jobs; /* long operations in the background (jobs.c) */
    /* health (HelloReply): when the last commit and reconciliation ended */
    _Atomic int64_t last_commit_us, last_reconcile_us;
    /* commits since the last summary in the log (the main thread's) */
    atomic_uint_fast64_t stat_events, stat_requests;
    /* a commit had findings of the checks at entry: reconcile soon */
    atomic_int recheck;
};

/* server.c */
void queue_push(struct queue *q, struct work *w);
/* Sends the answer of the work's request and lets its context go on. */
void reply(struct work *w, Trace__Wire__V1__Response *resp);
void reply_error(struct work *w, int code, const char *msg);
/* Commits the works of `list` (linked by next) and answers each. */
void write_all(struct server *s, struct work *list);
/* Releases the resident ledger pages past map-resident (rate-limited). */
void server_trim(struct server *s);
/* trace_reconcile_opts.store_via for traced (`ctx` a struct work whose
 * srv is set): the writer runs store(arg) between its group commits, as
 * the one thread that writes, while the calling thread waits; it must
 * hold no transaction of the ledger. */
int store_on_writer(int (*store)(void *arg), void *arg, void *ctx);
/* The rules file at path (malloc'd, *len bytes), or NULL. */
char *traced_read_rules(const char *path, size_t *len);

/* A request of `bytes` counted against queue-bytes was freed. */
void queue_bytes_release(struct server *s, size_t bytes);

/* 1 if the pipe is a probe of listener supervision (closed, uncounted). */
int is_probe(struct server *s, nng_pipe p);

/* jobs.c: long operations (verify, reconcile, backup) on a thread of
 * their own, started, polled and cancelled by JobControl requests */
int jobs_init(struct server *s);
/* Cancels what runs, drops what waits and joins the thread. */
void jobs_stop(struct server *s);
void jobs_handle(struct work *w, const Trace__Wire__V1__JobControl *jc,
                 const char *party, const trace_party *pi);
/* Jobs queued or running. */
unsigned jobs_active(struct server *s);

/* conn.c */
/* nng's pipe notifications (ADD_PRE, REM_POST) for the REP socket. */
void conn_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg);
/* A request arrived on the pipe (delta 1) or its answer was sent (-1);
 * `admitted`: it passed authentication and admission. */
void conn_activity(struct server *s, uint32_t pipe, int delta, int admitted);
/* Main loop: closes silent and idle connections, forgets freed pipes. */
void conn_sweep(struct server *s);

/* requests.c */
/* The rows of a Call's answer, encoded as a trace.ops.v1.Result as they
 * come (field 1, one length-delimited Item each), up to max bytes. */
struct rows_out {
    uint8_t *buf;
    size_t len, cap, max;
};
/* ops_item_fn appending to a struct rows_out (OPS_FULL when it is). */
int rows_add(const ops_item_t *item, void *ctx);
/* Ends the Result: its `ran` and `next` after the rows. */
void rows_finish(struct rows_out *o, int code, const ops_status *st);
/* The daemon's ops_env for a Call (*rules: the rules file read for a
 * reconciliation, to free after).  -1 if the rules cannot be read. */
int call_env(struct server *s, const ops_call_t *call, ops_env *env,
             char **rules);
/* ops_call, with reconciliations one at a time. */
int call_run(struct server *s, const ops_env *env, const ops_principal *who,
             const ops_call_t *call, ops_item_fn fn, void *ctx, ops_status *st);
/* Logs a Call's end (refusals as warnings). */
void call_log(const char *party, const ops_call_t *call, int code,
              const ops_status *st);

/* Decodes, authenticates, authorises and runs the work's request; a
 * commit goes on to the writer, everything else is answered here. */
void handle(struct work *w);

#endif
