/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs.c - long operations in the background (wire.proto, JobControl).
 *
 * A verification, reconciliation or backup of a large ledger takes
 * seconds to minutes: run as a Call it would hold a worker and its
 * client's connection for all that time, with no word on how far it
 * got and no way to stop it.  As a job it is queued for the one job
 * thread here, and its requester polls it: progress while it runs, then
 * exactly what a Call would have answered.
 *
 * Invariants: at most JOBS_MAX jobs exist (queued, running or ended and
 * not yet collected), JOBS_PER_PARTY per party; only the party that
 * started a job polls or cancels it; an ended job is forgotten once its
 * end was polled, or JOB_KEEP_US after it ended.  The table is under
 * jobs.mu; a job's progress and cancel flag are atomics the job thread
 * and the workers share.  The Call a job runs is its own copy (packed
 * and unpacked at the start), so the request that started it can go.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define JOBS_MAX       16
#define JOBS_PER_PARTY 2
#define JOB_KEEP_US    (600LL * 1000000)

enum { J_FREE, J_QUEUED, J_RUNNING, J_ENDED };

struct job {
    int state; /* J_*, under jobs.mu */
    uint64_t id;
    char party[72];
    int regulator;
    unsigned scopes;
    ops_call_t *call; /* its own copy */
    atomic_int cancel;
    atomic_uint_fast64_t progress, total;
    /* when ended (J_ENDED): */
    int code, cancelled;
    ops_status st;
    struct rows_out out;
    int64_t ended_us;
    struct job *next; /* in the queue */
};

struct jobs {
    struct server *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job slot[JOBS_MAX];
    struct job *head, *tail; /* queued, in order */
    uint64_t last_id;
    pthread_t th;
    int started, stop;
    struct work store; /* for store_on_writer (srv set) */
};

static void job_clear(struct job *j)
{
    if (j->call)
        trace__ops__v1__call__free_unpacked(j->call, NULL);
    free(j->out.buf);
    memset(j, 0, sizeof(*j));
}

static void job_progress(uint64_t done, uint64_t total, void *ctx)
{
    struct job *j = ctx;
    atomic_store(&j->progress, done);
    atomic_store(&j->total, total);
}

static int job_stop(void *ctx)
{
    return atomic_load(&((struct job *)ctx)->cancel);
}

/* Runs one job on the job thread. */
static void job_run(struct jobs *js, struct job *j)
{
    struct server *s = js->s;
    ops_principal who = {j->party, j->regulator, j->scopes};
    ops_env env;
    ops_status st;
    char *rules;
    int code;

    memset(&st, 0, sizeof(st));
    j->out.max = (size_t)s->cfg->max_reply;
    if (call_env(s, j->call, &env, &rules) != 0) {
        code = ops_status_set(&st, 6, "the daemon cannot read its rules file");
    } else {
        env.store_ctx = &js->store;
        env.progress = job_progress;
        env.stop = job_stop;
        env.progress_ctx = j;
        code = call_run(s, &env, &who, j->call, rows_add, &j->out, &st);
        free(rules);
    }
    rows_finish(&j->out, code, &st);
    call_log(j->party, j->call, code, &st);
    pthread_mutex_lock(&js->mu);
    j->code = code;
    j->st = st;
    j->cancelled = atomic_load(&j->cancel) != 0;
    j->ended_us = wire_now_us();
    j->state = J_ENDED;
    pthread_mutex_unlock(&js->mu);
}

static void *job_main(void *arg)
{
    struct jobs *js = arg;

    pthread_mutex_lock(&js->mu);
    for (;;) {
        struct job *j;
        while (!js->head && !js->stop)
            pthread_cond_wait(&js->cv, &js->mu);
        if (js->stop)
            break;
        j = js->head;
        js->head = j->next;
        if (!js->head)
            js->tail = NULL;
        j->next = NULL;
        j->state = J_RUNNING;
        pthread_mutex_unlock(&js->mu);
        job_run(js, j);
        pthread_mutex_lock(&js->mu);
    }
    pthread_mutex_unlock(&js->mu);
    return NULL;
}

int jobs_init(struct server *s)
{
    struct jobs *js = calloc(1, sizeof(*js));

    if (!js)
        return -1;
    js->s = s;
    js->store.srv = s;
    if (pthread_mutex_init(&js->mu, NULL) || pthread_cond_init(&js->cv, NULL)) {
        free(js);
        return -1;
    }
    if (!s->direct) {
        if (pthread_create(&js->th, NULL, job_main, js) != 0) {
            pthread_mutex_destroy(&js->mu);
            pthread_cond_destroy(&js->cv);
            free(js);
            return -1;
        }
        js->started = 1;
    }
    s->jobs = js;
    return 0;
}

void jobs_stop(struct server *s)
{
    struct jobs *js = s->jobs;

    if (!js)
        return;
    pthread_mutex_lock(&js->mu);
    js->stop = 1;
    for (size_t i = 0; i < JOBS_MAX; i++)
        if (js->slot[i].state == J_RUNNING)
            atomic_store(&js->slot[i].cancel, 1);
    pthread_cond_broadcast(&js->cv);
    pthread_mutex_unlock(&js->mu);
    if (js->started)
        pthread_join(js->th, NULL);
    for (size_t i = 0; i < JOBS_MAX; i++)
        job_clear(&js->slot[i]);
    pthread_mutex_destroy(&js->mu);
    pthread_cond_destroy(&js->cv);
    free(js);
    s->jobs = NULL;
}

/* Ended jobs nobody collected in time go (under mu). */
static void sweep(struct jobs *js, int64_t now)
{
    for (size_t i = 0; i < JOBS_MAX; i++)
        if (js->slot[i].state == J_ENDED &&
            now - js->slot[i].ended_us > JOB_KEEP_US)
            job_clear(&js->slot[i]);
}

/* The requester's job `id` (under mu), or NULL. */
static struct job *find(struct jobs *js, uint64_t id, const char *party)
{
    for (size_t i = 0; i < JOBS_MAX; i++)
        if (js->slot[i].state != J_FREE && js->slot[i].id == id &&
            strcmp(js->slot[i].party, party) == 0)
            return &js->slot[i];
    return NULL;
}

static void reply_state(struct work *w, struct job *j)
{
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__JobState js = TRACE__WIRE__V1__JOB_STATE__INIT;

    js.id = j->id;
    js.done = j->state == J_ENDED;
    js.has_progress = js.has_total = 1;
    js.progress = atomic_load(&j->progress);
    js.total = atomic_load(&j->total);
    js.has_cancelled = 1;
    js.cancelled =
        j->state == J_ENDED ? j->cancelled != 0 : atomic_load(&j->cancel) != 0;
    resp.job = &js;
    if (j->state == J_ENDED) {
        resp.code = j->code;
        resp.message = j->code ? j->st.msg : NULL;
        resp.has_result = 1;
        resp.result.data = j->out.buf;
        resp.result.len = j->out.len;
    }
    reply(w, &resp);
}

static void start(struct work *w, const ops_call_t *call, const char *party,
                  const trace_party *pi)
{
    struct server *s = w->srv;
    struct jobs *js = s->jobs;
    const ops_op *op = ops_of_call(call);
    ops_principal who = {party, pi->regulator, pi->scopes};
    ops_env env = {.daemon = 1}; /* what job_run will check again */
    struct job *j = NULL;
    ops_status st;
    size_t mine = 0, len;
    uint8_t *buf;
    int code;

    if ((code = ops_authorize(s->l, &env, &who, call, &st)) != 0) {
        call_log(party, call, code, &st);
        reply_error(w, code, st.msg);
        return;
    }
    /* authorize checked that it is a known operation */
    if (!(op->flags & OPS_LONG) || (op->flags & OPS_PAGED)) {
        reply_error(w, 1, "only verify, reconcile and backup run as jobs");
        return;
    }
    len = trace__ops__v1__call__get_packed_size(call);
    if (!(buf = malloc(len ? len : 1))) {
        reply_error(w, 6, "out of memory");
        return;
    }
    trace__ops__v1__call__pack(call, buf);
    pthread_mutex_lock(&js->mu);
    sweep(js, wire_now_us());
    for (size_t i = 0; i < JOBS_MAX; i++) {
        if (js->slot[i].state == J_FREE && !j)
            j = &js->slot[i];
        else if (js->slot[i].state != J_FREE &&
                 strcmp(js->slot[i].party, party) == 0)
            mine++;
    }
    if (!j || mine >= JOBS_PER_PARTY || js->stop) {
        pthread_mutex_unlock(&js->mu);
        free(buf);
        reply_error(w, 6,
                    mine >= JOBS_PER_PARTY
                        ? "busy: this party has two jobs; poll them first"
                        : "busy: the daemon runs as many jobs as it takes");
        return;
    }
    if (!(j->call = trace__ops__v1__call__unpack(NULL, len, buf))) {
        pthread_mutex_unlock(&js->mu);
        free(buf);
        reply_error(w, 6, "out of memory");
        return;
    }
    free(buf);
    j->id = ++js->last_id;
    snprintf(j->party, sizeof(j->party), "%s", party);
    j->regulator = pi->regulator;
    j->scopes = pi->scopes;
    atomic_store(&j->cancel, 0);
    atomic_store(&j->progress, 0);
    atomic_store(&j->total, 0);
    j->state = J_QUEUED;
    if (js->tail)
        js->tail->next = j;
    else
        js->head = j;
    js->tail = j;
    log_msg(LOG_LVL_INFO, "%s started job %llu (%s)", party,
            (unsigned long long)j->id, op->name);
    pthread_cond_signal(&js->cv);
    if (s->direct) {
        /* no job thread (the fuzz harness): run it here */
        js->head = js->tail = NULL;
        j->state = J_RUNNING;
        pthread_mutex_unlock(&js->mu);
        job_run(js, j);
        pthread_mutex_lock(&js->mu);
    }
    reply_state(w, j);
    pthread_mutex_unlock(&js->mu);
}

/* Takes a queued job out of the queue (under mu). */
static void unqueue(struct jobs *js, struct job *j)
{
    struct job **p = &js->head, *prev = NULL;

    while (*p && *p != j) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        return;
    *p = j->next;
    if (js->tail == j)
        js->tail = prev;
    j->next = NULL;
}

void jobs_handle(struct work *w, const Trace__Wire__V1__JobControl *jc,
                 const char *party, const trace_party *pi)
{
    struct jobs *js = w->srv->jobs;
    struct job *j;
    uint64_t id;

    if (!js) {
        reply_error(w, 6, "this daemon runs no jobs");
        return;
    }
    switch (jc->what_case) {
    case TRACE__WIRE__V1__JOB_CONTROL__WHAT_START:
        start(w, jc->start, party, pi);
        return;
    case TRACE__WIRE__V1__JOB_CONTROL__WHAT_POLL:
        id = jc->poll;
        break;
    case TRACE__WIRE__V1__JOB_CONTROL__WHAT_CANCEL:
        id = jc->cancel;
        break;
    default:
        reply_error(w, 1, "a job request says start, poll or cancel");
        return;
    }
    pthread_mutex_lock(&js->mu);
    sweep(js, wire_now_us());
    if (!(j = find(js, id, party))) {
        pthread_mutex_unlock(&js->mu);
        reply_error(w, 4,
                    "no such job of yours (ended jobs are kept ten "
                    "minutes, until polled)");
        return;
    }
    if (jc->what_case == TRACE__WIRE__V1__JOB_CONTROL__WHAT_CANCEL) {
        atomic_store(&j->cancel, 1);
        if (j->state == J_QUEUED) {
            unqueue(js, j);
            j->code = ops_status_set(&j->st, 6, "cancelled before it began");
            j->cancelled = 1;
            j->ended_us = wire_now_us();
            j->state = J_ENDED;
        }
        log_msg(LOG_LVL_INFO, "%s cancelled job %llu", party,
                (unsigned long long)id);
    }
    reply_state(w, j);
    /* an end is told once */
    if (j->state == J_ENDED &&
        jc->what_case == TRACE__WIRE__V1__JOB_CONTROL__WHAT_POLL)
        job_clear(j);
    pthread_mutex_unlock(&js->mu);
}

unsigned jobs_active(struct server *s)
{
    struct jobs *js = s->jobs;
    unsigned n = 0;

    if (!js)
        return 0;
    pthread_mutex_lock(&js->mu);
    for (size_t i = 0; i < JOBS_MAX; i++)
        n += js->slot[i].state == J_QUEUED || js->slot[i].state == J_RUNNING;
    pthread_mutex_unlock(&js->mu);
    return n;
}
