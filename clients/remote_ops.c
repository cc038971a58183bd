/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_ops.c - typed operations through traced (ops.h): the Call is
 * sent, the daemon runs it with the requester's rights, and its rows come
 * back (in pages where the operation pages, or as a background job for
 * the long ones) to the same renderer as embedded; and head --follow,
 * alerts --follow.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>
#include <openssl/crypto.h>

#include "remote_int.h"
#include "trace/proof.h"

/* Renders the result of a Call's reply into r (begun on the first page
 * that ran), prints its failure; *next: where a paged answer continues,
 * 0 at its end.  The exit code. */
static int render_reply(const ops_call_t *op,
                        const Trace__Wire__V1__Response *resp, ops_render *r,
                        int *begun, uint64_t *next)
{
    Trace__Ops__V1__Result *res = NULL;
    const ops_op *row = ops_of_call(op);
    ProtobufCAllocator *mem = NULL;
    int ret = resp->code;

    *next = 0;
    /* the rows decode into one arena: a row is a handful of strings */
    if (resp->has_result &&
        (!(mem = ops_bump_new(4 * resp->result.len)) ||
         !(res = trace__ops__v1__result__unpack(mem, resp->result.len,
                                                resp->result.data)))) {
        fprintf(ctl_err, "tracectl: the daemon's answer is %s\n",
                mem ? "malformed" : "too large for this machine's memory");
        ops_bump_free(mem);
        return 6;
    }
    if (res && res->party_name)
        snprintf(r->name, sizeof(r->name), "%s", res->party_name);
    if (res && res->ran && !*begun) {
        ops_render_begin(r, op);
        *begun = 1;
    }
    for (size_t i = 0; res && i < res->n_items; i++)
        if (ops_render_item(r, op, res->items[i]) != 0) {
            fprintf(ctl_err, "tracectl: the daemon answered with rows of "
                             "another operation\n");
            ret = 6;
            break;
        }
    if (ret == resp->code && ret != 0)
        fprintf(ctl_err, "tracectl: %s\n",
                resp->message ? resp->message : "the daemon failed");
    if (ret == 0 && res && res->has_next) {
        /* a page must bring rows, of an operation that pages */
        if (res->n_items == 0 || !row || !(row->flags & OPS_PAGED)) {
            fprintf(ctl_err, "tracectl: the daemon's answer is malformed\n");
            ret = 6;
        } else {
            *next = res->next;
        }
    }
    ops_bump_free(mem); /* and res with it */
    return ret;
}

/* One request of a Call, rendered into r. */
static int call_page(struct globals *g, const ops_call_t *op,
                     const ops_call_t *page, ops_render *r, int *begun,
                     uint64_t *next)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__Response *resp;
    int ret;

    *next = 0;
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_CALL;
    body.call = (ops_call_t *)page;
    if (!(resp = remote_request(g, &body, &ret)))
        return ret;
    ret = render_reply(op, resp, r, begun, next);
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return ret;
}

int remote_call_items(struct globals *g, const ops_call_t *call, ops_item_fn fn,
                      void *ctx)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__Response *resp;
    Trace__Ops__V1__Result *res = NULL;
    ProtobufCAllocator *mem = NULL;
    int ret;

    if (!g->remote && (ret = remote_open(g)) != 0)
        return ret;
    if (!(g->remote->features & WIRE_FEATURE_CALLS)) {
        fprintf(ctl_err,
                "tracectl: %s runs an older traced that does not take "
                "typed operations: upgrade it\n",
                g->connect);
        return 6;
    }
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_CALL;
    body.call = (ops_call_t *)call;
    if (!(resp = remote_request(g, &body, &ret)))
        return ret;
    ret = resp->code;
    if (resp->has_result &&
        (!(mem = ops_bump_new(4 * resp->result.len)) ||
         !(res = trace__ops__v1__result__unpack(mem, resp->result.len,
                                                resp->result.data)))) {
        fprintf(ctl_err, "tracectl: the daemon's answer is %s\n",
                mem ? "malformed" : "too large for this machine's memory");
        ret = 6;
    } else if (ret != 0) {
        fprintf(ctl_err, "tracectl: %s\n",
                resp->message ? resp->message : "the daemon failed");
    } else if (res && res->has_next) {
        fprintf(ctl_err, "tracectl: the daemon's answer is malformed\n");
        ret = 6;
    }
    for (size_t i = 0; ret == 0 && res && i < res->n_items; i++)
        ret = fn(res->items[i], ctx);
    ops_bump_free(mem); /* and res with it */
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return ret;
}

/* Runs `op` on the daemon, all its pages, rendering into r. */
static int call_all(struct globals *g, const ops_call_t *op, ops_render *r,
                    int *begun)
{
    const ops_call_t *page = op;
    ops_cont cont;
    uint64_t next;
    size_t taken = 0;
    int ret;

    if (!g->remote && (ret = remote_open(g)) != 0)
        return ret;
    if (!(g->remote->features & WIRE_FEATURE_CALLS)) {
        fprintf(ctl_err,
                "tracectl: %s runs an older traced that does not take "
                "typed operations: upgrade it\n",
                g->connect);
        return 6;
    }
    for (;;) {
        size_t before = r->rows;
        ret = call_page(g, op, page, r, begun, &next);
        taken += r->rows - before;
        if (ret != 0 || next == 0)
            return ret;
        ops_continue(&cont, op, next, taken);
        page = &cont.call;
    }
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* One JobControl request; the reply, or NULL with *ret set. */
static Trace__Wire__V1__Response *
job_request(struct globals *g, Trace__Wire__V1__JobControl *jc, int *ret)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__Response *resp;

    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_JOB;
    body.job = jc;
    if (!(resp = remote_request(g, &body, ret)))
        return NULL;
    if (resp->code != 0 && !resp->job) {
        fprintf(ctl_err, "tracectl: %s\n",
                resp->message ? resp->message : "the daemon failed");
        *ret = resp->code;
        trace__wire__v1__response__free_unpacked(resp, NULL);
        return NULL;
    }
    if (!resp->job) {
        fprintf(ctl_err, "tracectl: the daemon's answer is malformed\n");
        *ret = 6;
        trace__wire__v1__response__free_unpacked(resp, NULL);
        return NULL;
    }
    return resp;
}

/* A long operation as a daemon's job: started, polled with its progress
 * on a terminal, cancelled on the first Ctrl-C, then rendered as a Call
 * would be. */
static int remote_job(struct globals *g, const ops_call_t *op, ops_render *r,
                      int *begun)
{
    Trace__Wire__V1__JobControl jc = TRACE__WIRE__V1__JOB_CONTROL__INIT;
    Trace__Wire__V1__Response *resp;
    struct sigaction sa, old;
    int ret = 0, shown = 0, cancel_sent = 0, tty = isatty(2);
    uint64_t id, next;

    jc.what_case = TRACE__WIRE__V1__JOB_CONTROL__WHAT_START;
    jc.start = (ops_call_t *)op;
    if (!(resp = job_request(g, &jc, &ret)))
        return ret;
    id = resp->job->id;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    while (!resp->job->done) {
        struct timespec d = {0, 200 * 1000000};
        if (tty && resp->job->total) {
            if (op->op_case == TRACE__OPS__V1__CALL__OP_VERIFY &&
                op->verify->has_deep && op->verify->deep)
                /* the journal, then the indexes: thousandths (ops_checks.c) */
                fprintf(ctl_err, "\rverify --deep: %3llu%%",
                        (unsigned long long)(resp->job->progress * 100 /
                                             resp->job->total));
            else
                fprintf(ctl_err, "\r%llu of %llu entries",
                        (unsigned long long)resp->job->progress,
                        (unsigned long long)resp->job->total);
            shown = 1;
        }
        trace__wire__v1__response__free_unpacked(resp, NULL);
        nanosleep(&d, NULL);
        if (interrupted && !cancel_sent) {
            jc.what_case = TRACE__WIRE__V1__JOB_CONTROL__WHAT_CANCEL;
            jc.cancel = id;
            cancel_sent = 1;
            sigaction(SIGINT, &old, NULL); /* a second Ctrl-C ends us */
            fprintf(ctl_err,
                    "%stracectl: asking the daemon to stop job "
                    "%llu\n",
                    shown ? "\n" : "", (unsigned long long)id);
            shown = 0;
        } else {
            jc.what_case = TRACE__WIRE__V1__JOB_CONTROL__WHAT_POLL;
            jc.poll = id;
        }
        if (!(resp = job_request(g, &jc, &ret))) {
            if (!cancel_sent)
                sigaction(SIGINT, &old, NULL);
            return ret;
        }
    }
    if (!cancel_sent)
        sigaction(SIGINT, &old, NULL);
    if (shown)
        fputc('\n', ctl_err);
    if (resp->job->cancelled && resp->code == 0)
        fprintf(ctl_err, "tracectl: the job ended before it could stop\n");
    ret = render_reply(op, resp, r, begun, &next);
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return ret;
}

int remote_call(struct globals *g, const ops_call_t *op)
{
    ops_render r;

    ctl_render_init(g, &r);
    return remote_call_into(g, op, &r);
}

int remote_call_into(struct globals *g, const ops_call_t *op, ops_render *into)
{
    const ops_op *row = ops_of_call(op);
    ops_render r = *into;
    int begun = 0, ret;

    if (!g->remote && (ret = remote_open(g)) != 0)
        return ret;
    /* long operations run as jobs where the daemon has them */
    if (row && (row->flags & OPS_LONG) && !(row->flags & OPS_PAGED) &&
        (g->remote->features & WIRE_FEATURE_JOBS))
        ret = remote_job(g, op, &r, &begun);
    else
        ret = call_all(g, op, &r, &begun);
    if (begun || ret != 0)
        ops_render_end(&r, op, ret);
    *into = r;
    return ret;
}

int remote_follow_heads(struct globals *g)
{
    struct remote *r = g->remote;
    Trace__Ops__V1__Head hd = TRACE__OPS__V1__HEAD__INIT;
    ops_call_t head = TRACE__OPS__V1__CALL__INIT;
    nng_socket sub;
    uint64_t shown = 0;
    int rv, ret;

    if (!r->pub_url[0]) {
        fprintf(ctl_err, "tracectl: the daemon publishes no heads (start "
                         "traced with --pub URL)\n");
        return 6;
    }
    if ((rv = nng_sub0_open(&sub)) != 0)
        return remote_transport_error(r->pub_url, "cannot subscribe to", rv);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, WIRE_HEAD_TOPIC,
                   strlen(WIRE_HEAD_TOPIC));
    if ((rv = nng_dial(sub, r->pub_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        nng_close(sub);
        return remote_transport_error(r->pub_url, "cannot subscribe to", rv);
    }
    /* the current head first, as without --follow */
    head.op_case = TRACE__OPS__V1__CALL__OP_HEAD;
    head.head = &hd;
    if ((ret = remote_call(g, &head)) != 0) {
        nng_close(sub);
        return ret;
    }
    fflush(ctl_out);
    for (;;) {
        Trace__Wire__V1__Checkpoint *cp;
        size_t tl = strlen(WIRE_HEAD_TOPIC), len = 0;
        uint8_t digest[32];
        char hex[65];
        void *buf = NULL;

        if ((rv = nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
            nng_close(sub);
            return remote_transport_error(r->pub_url, "lost", rv);
        }
        cp = len > tl ? trace__wire__v1__checkpoint__unpack(NULL, len - tl,
                                                            (uint8_t *)buf + tl)
                      : NULL;
        nng_free(buf, len);
        if (!cp)
            continue;
        wire_checkpoint_digest(digest, cp->size,
                               cp->head.len == 32 ? cp->head.data
                                                  : (uint8_t *)digest,
                               cp->time_us);
        if (cp->head.len != 32 || cp->sig.len != TRACE_SIG_LEN ||
            trace_sig_verify(r->daemon_pub, digest, sizeof(digest),
                             cp->sig.data) != TRACE_OK) {
            fprintf(ctl_err, "tracectl: a checkpoint with a bad signature "
                             "was ignored\n");
        } else if (cp->size > shown) {
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", cp->head.data[i]);
            if (g->json)
                fprintf(ctl_out, "{\"size\":%llu,\"head\":\"%s\"}\n",
                        (unsigned long long)cp->size, hex);
            else
                fprintf(ctl_out, "%llu entries, head %s\n",
                        (unsigned long long)cp->size, hex);
            fflush(ctl_out);
            shown = cp->size;
        }
        trace__wire__v1__checkpoint__free_unpacked(cp, NULL);
    }
}

/* Shows `note` if it is a checkpoint of this log (its origin kept from
 * the first shown), signed with the daemon's log key and larger than
 * the last shown. */
static void show_note(struct remote *r, ops_render *out, const ops_call_t *call,
                      char *note, size_t len, trace_checkpoint *cp,
                      char *origin, size_t cap, uint64_t *shown)
{
    Trace__Ops__V1__Note m = TRACE__OPS__V1__NOTE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    if (trace_checkpoint_parse(cp, note, len) != TRACE_OK ||
        (origin[0] && strcmp(origin, cp->origin) != 0) ||
        trace_checkpoint_verify(cp, cp->origin, r->daemon_pub) != TRACE_OK) {
        fprintf(ctl_err, "tracectl: a checkpoint that is not signed by the "
                         "daemon's log key was ignored\n");
        return;
    }
    if (cp->size <= *shown)
        return;
    snprintf(origin, cap, "%s", cp->origin);
    m.note = note;
    m.origin = cp->origin;
    m.has_tree_size = m.has_root = 1;
    m.tree_size = cp->size;
    m.root.data = cp->root;
    m.root.len = sizeof(cp->root);
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_NOTE;
    it.note = &m;
    ops_render_item(out, call, &it);
    fflush(out->out);
    *shown = cp->size;
}

int remote_follow_checkpoints(struct globals *g, const ops_call_t *call)
{
    struct remote *r;
    trace_checkpoint *cp = malloc(sizeof(*cp));
    char origin[256] = "", *note = NULL;
    size_t len = 0;
    uint64_t shown = 0;
    ops_render out, first;
    nng_socket sub;
    int rv, ret = 6;

    if (!cp)
        return 6;
    if (!g->remote && (ret = remote_open(g)) != 0) {
        free(cp);
        return ret;
    }
    r = g->remote;
    if (!r->pub_url[0]) {
        free(cp);
        fprintf(ctl_err, "tracectl: the daemon publishes no checkpoints "
                         "(start traced with --pub URL)\n");
        return 6;
    }
    if ((rv = nng_sub0_open(&sub)) != 0) {
        free(cp);
        return remote_transport_error(r->pub_url, "cannot subscribe to", rv);
    }
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, WIRE_NOTE_TOPIC,
                   strlen(WIRE_NOTE_TOPIC));
    if ((rv = nng_dial(sub, r->pub_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        nng_close(sub);
        free(cp);
        return remote_transport_error(r->pub_url, "cannot subscribe to", rv);
    }
    /* the latest checkpoint first, as without --follow (its text asked
     * for, then shown as the feed's are) */
    ctl_render_init(g, &out);
    first = out;
    first.json = 0;
    if (!(first.out = open_memstream(&note, &len))) {
        nng_close(sub);
        free(cp);
        return 6;
    }
    ret = remote_call_into(g, call, &first);
    fclose(first.out);
    if (ret == 0)
        show_note(r, &out, call, note, len, cp, origin, sizeof(origin), &shown);
    free(note);
    while (ret == 0) {
        size_t tl = strlen(WIRE_NOTE_TOPIC);
        char *buf = NULL;

        if ((rv = nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
            ret = remote_transport_error(r->pub_url, "lost", rv);
            break;
        }
        if (len > tl && (note = malloc(len - tl + 1)) != NULL) {
            memcpy(note, buf + tl, len - tl);
            note[len - tl] = '\0';
            show_note(r, &out, call, note, len - tl, cp, origin, sizeof(origin),
                      &shown);
            free(note);
        }
        nng_free(buf, len);
    }
    nng_close(sub);
    free(cp);
    return ret;
}

/* How long alerts --follow waits for a notice on PUB before it asks
 * anyway (a notice lost by a slow subscriber, a PUB not yet connected),
 * and how often it asks when the daemon publishes none. */
#define FOLLOW_FALLBACK_MS 15000
#define FOLLOW_POLL_S      2

/* A SUB socket on the daemon's notices of new alerts, or -1 if it
 * publishes none (or the socket fails: then polling alone). */
static int alert_notices(struct remote *r, nng_socket *sub)
{
    if (!r->pub_url[0] || nng_sub0_open(sub) != 0)
        return -1;
    if (nng_socket_set(*sub, NNG_OPT_SUB_SUBSCRIBE, WIRE_ALERT_TOPIC,
                       strlen(WIRE_ALERT_TOPIC)) != 0 ||
        nng_socket_set_ms(*sub, NNG_OPT_RECVTIMEO, FOLLOW_FALLBACK_MS) != 0 ||
        nng_dial(*sub, r->pub_url, NULL, NNG_FLAG_NONBLOCK) != 0) {
        nng_close(*sub);
        return -1;
    }
    return 0;
}

int remote_follow_alerts(struct globals *g, const ops_call_t *op)
{
    const ops_call_t *c = op;
    ops_render r;
    ops_cont next;
    nng_socket sub;
    int begun = 0, ret, subscribed;

    if (!g->remote && (ret = remote_open(g)) != 0)
        return ret;
    /* PUB carries only a notice that alerts were stored (it cannot tell
     * who listens); the alerts themselves come from the daemon with an
     * authenticated request, with the requester's rights: the listing,
     * then, at each notice (or after FOLLOW_FALLBACK_MS without one;
     * every FOLLOW_POLL_S without PUB), those stored after the last */
    subscribed = alert_notices(g->remote, &sub) == 0;
    ctl_render_init(g, &r);
    r.last_seq = op->alerts->after;
    while ((ret = call_all(g, c, &r, &begun)) == 0) {
        fflush(ctl_out);
        if (subscribed) {
            void *buf;
            size_t len;
            int rv = nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC);
            if (rv == 0) {
                nng_free(buf, len);
                /* the notices queued meanwhile: one request for all */
                while (nng_recv(sub, &buf, &len,
                                NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) == 0)
                    nng_free(buf, len);
            } else if (rv != NNG_ETIMEDOUT) {
                nng_close(sub);
                subscribed = 0;
            }
        } else {
            sleep(FOLLOW_POLL_S);
        }
        ops_continue(&next, op, r.last_seq, 0);
        c = &next.call;
    }
    if (subscribed)
        nng_close(sub);
    return ret;
}

const struct remote_status *remote_status(struct globals *g)
{
    return g->remote ? &g->remote->status : NULL;
}
