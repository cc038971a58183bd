/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c - traced's connections (nng pipes of the REP socket): who holds
 * them, the limits, and closing the silent and the idle.
 *
 * A pipe counts as a connection from its ADD_PRE, if that accepts it, to
 * its REM_POST: it is in s->conns meanwhile.  nng 1.5 reports REM_POST for
 * every pipe that had an ADD_PRE, those closed at ADD_PRE included; they
 * were never in the table, so their removal changes nothing.  The probes
 * of listener supervision (server.c) are closed at ADD_PRE too, and not
 * counted.
 *
 * Limits, so that nobody can hold every connection without a key:
 *   - each listener accepts at most max-connections, so clients of one
 *     address (tcp://) cannot starve another (the regulator's ipc://);
 *   - one peer (an IP address; on ipc:// a user id) holds at most
 *     max-peer-connections;
 *   - at a limit, a newcomer takes the place of the connection that has
 *     been idle longest (no request in flight, no admitted request for
 *     idle-grace ms; unsigned Hellos and refused requests do not count),
 *     else it is refused: silent connections cannot lock clients out;
 *   - a connection that makes no admitted request within
 *     first-request-timeout ms, or stays idle for idle-timeout s, is
 *     closed (the main loop's conn_sweep).  A client's REQ socket simply
 *     dials again.
 *   - nothing is replaced or swept while every context is busy: requests
 *     may then wait inside nng, where traced cannot see them.
 * Bytes held are bounded apart from connections: large requests wait for
 * a worker only while queue-bytes allows (server.c, work_cb).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "server_int.h"

static int listener_index(struct server *s, nng_pipe p)
{
    int id = nng_listener_id(nng_pipe_listener(p));
    for (size_t i = 0; i < CFG_MAX_LISTEN; i++)
        if (id > 0 && atomic_load(&s->listener_ids[i]) == id)
            return (int)i;
    return -1;
}

static void peer_of(nng_pipe p, char *out, size_t cap)
{
    nng_sockaddr sa;
    uint64_t uid;
    char a[INET6_ADDRSTRLEN];

    if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0) {
        snprintf(out, cap, "ipc uid %llu", (unsigned long long)uid);
        return;
    }
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
        if (sa.s_family == NNG_AF_INET &&
            inet_ntop(AF_INET, &sa.s_in.sa_addr, a, sizeof(a))) {
            snprintf(out, cap, "%s", a);
            return;
        }
        if (sa.s_family == NNG_AF_INET6 &&
            inet_ntop(AF_INET6, sa.s_in6.sa_addr, a, sizeof(a))) {
            snprintf(out, cap, "%s", a);
            return;
        }
        if (sa.s_family == NNG_AF_IPC) {
            snprintf(out, cap, "ipc");
            return;
        }
    }
    snprintf(out, cap, "unknown");
}

/* The connection, among those `same` selects, that has been idle longest
 * (at least idle-grace ms, nothing in flight); -1 if none. */
static ssize_t idlest(const struct server *s, const struct conn *c, int by_peer,
                      ssize_t skip, int64_t now)
{
    int64_t grace = s->cfg->idle_grace * 1000LL, best_idle = -1;
    ssize_t best = -1;

    for (size_t i = 0; i < s->n_conns; i++) {
        const struct conn *o = &s->conns[i];
        int64_t idle = now - (o->active_us ? o->active_us : o->since_us);
        if ((ssize_t)i == skip || o->in_flight)
            continue;
        if (by_peer ? strcmp(o->peer, c->peer) != 0
                    : o->listener != c->listener)
            continue;
        if (idle >= grace && idle > best_idle) {
            best_idle = idle;
            best = (ssize_t)i;
        }
    }
    return best;
}

/* Removes entry i of the connection table (conn_mu held). */
static void conn_remove(struct server *s, size_t i)
{
    s->conns[i] = s->conns[--s->n_conns];
}

/* Adds c under the limits (conn_mu held).  0 if added, with up to two
 * connections to close in victims[] (0: none), already out of the table
 * (their REM_POST finds nothing); -1 if refused, with the limit in *why.
 * While every context is busy, requests may wait inside nng on any
 * connection, so none is replaced then. */
static int conn_add(struct server *s, const struct conn *c, uint32_t victims[2],
                    const char **why)
{
    size_t n_listener = 0, n_peer = 0;
    ssize_t v1 = -1, v2 = -1;
    int may_replace = (size_t)atomic_load(&s->busy) < s->n_works;

    victims[0] = victims[1] = 0;
    for (size_t i = 0; i < s->n_conns; i++) {
        const struct conn *o = &s->conns[i];
        n_listener += o->listener == c->listener;
        n_peer += strcmp(o->peer, c->peer) == 0;
    }
    if (n_peer >= (size_t)s->cfg->max_peer_connections) {
        if (!may_replace || (v1 = idlest(s, c, 1, -1, c->since_us)) < 0) {
            *why = "max-peer-connections";
            return -1;
        }
        if (s->conns[v1].listener == c->listener)
            n_listener--;
    }
    if (n_listener >= (size_t)s->cfg->max_connections) {
        if (!may_replace || (v2 = idlest(s, c, 0, v1, c->since_us)) < 0) {
            *why = "max-connections";
            return -1;
        }
    }
    if (v1 >= 0)
        victims[0] = s->conns[v1].id;
    if (v2 >= 0)
        victims[1] = s->conns[v2].id;
    /* remove the higher index first: the lower stays valid */
    if (v1 >= 0 && v2 >= 0 && v2 > v1) {
        conn_remove(s, (size_t)v2);
        conn_remove(s, (size_t)v1);
    } else {
        if (v1 >= 0)
            conn_remove(s, (size_t)v1);
        if (v2 >= 0)
            conn_remove(s, (size_t)v2);
    }
    if (s->n_conns == s->cap_conns) {
        *why = "the connection table";
        return -1;
    }
    s->conns[s->n_conns++] = *c;
    return 0;
}

static void close_pipe(uint32_t id)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = id;
    nng_pipe_close(p);
}

void conn_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct server *s = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p), victims[2] = {0, 0};
    const char *why = NULL;
    struct conn c;
    size_t before;
    int refuse = 0, counted = 0;

    if (ev == NNG_PIPE_EV_ADD_PRE && is_probe(s, p)) {
        nng_pipe_close(p);
        return;
    }
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        memset(&c, 0, sizeof(c));
        c.id = id;
        c.listener = listener_index(s, p);
        c.since_us = wire_now_us();
        peer_of(p, c.peer, sizeof(c.peer));
    }
    pthread_mutex_lock(&s->conn_mu);
    before = s->n_conns;
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        refuse = conn_add(s, &c, victims, &why) != 0;
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        for (size_t i = 0; i < s->n_conns; i++)
            if (s->conns[i].id == id) {
                conn_remove(s, i);
                counted = 1;
                break;
            }
    }
    pthread_mutex_unlock(&s->conn_mu);
    if (ev == NNG_PIPE_EV_REM_POST && s->has_sessions)
        sessions_forget_pipe(&s->sessions, id);

    if (ev == NNG_PIPE_EV_ADD_PRE)
        log_msg(LOG_LVL_DEBUG, "pipe %u from %s added (%zu connections before)",
                id, c.peer, before);
    else if (counted)
        log_msg(LOG_LVL_DEBUG, "pipe %u removed (%zu connections before)", id,
                before);
    for (int i = 0; i < 2; i++)
        if (victims[i]) {
            log_msg(LOG_LVL_INFO,
                    "closed idle connection %u to make room for one from %s",
                    victims[i], c.peer);
            close_pipe(victims[i]);
        }
    if (refuse) {
        log_msg(LOG_LVL_WARN,
                "connection from %s refused: %s reached (none idle for "
                "%lld ms)",
                c.peer, why, s->cfg->idle_grace);
        nng_pipe_close(p);
    }
}

/* A request arrived on the pipe (delta 1), or its answer was sent (-1);
 * only an admitted request (authenticated, not refused) makes the
 * connection active: Hello or refused requests keep it idle. */
void conn_activity(struct server *s, uint32_t pipe, int delta, int admitted)
{
    if (!pipe || s->direct)
        return;
    pthread_mutex_lock(&s->conn_mu);
    for (size_t i = 0; i < s->n_conns; i++)
        if (s->conns[i].id == pipe) {
            struct conn *c = &s->conns[i];
            if (delta > 0)
                c->in_flight++;
            else if (c->in_flight)
                c->in_flight--;
            if (admitted)
                c->active_us = wire_now_us();
            break;
        }
    pthread_mutex_unlock(&s->conn_mu);
}

/* Called from the main loop: closes connections that made no admitted
 * request in time, or stayed idle too long, and forgets pipes nng has
 * already freed (a REM_POST can run before its ADD_PRE added the pipe).
 * Not while every context is busy: requests may be waiting inside nng. */
void conn_sweep(struct server *s)
{
    int64_t now = wire_now_us(), first = s->cfg->first_request_timeout * 1000LL,
            idle = s->cfg->idle_timeout * 1000000LL;
    uint32_t ids[64], all[256];
    char peers[64][64];
    int silent[64];
    size_t n = 0, n_all = 0, gone = 0;

    if ((size_t)atomic_load(&s->busy) >= s->n_works)
        return;
    pthread_mutex_lock(&s->conn_mu);
    for (size_t i = 0; i < s->n_conns && n_all < 256; i++)
        all[n_all++] = s->conns[(s->sweep_from + i) % s->n_conns].id;
    if (s->n_conns)
        s->sweep_from = (s->sweep_from + n_all) % s->n_conns;
    for (size_t i = 0; i < s->n_conns && n < 64;) {
        struct conn *c = &s->conns[i];
        if (!c->in_flight &&
            ((!c->active_us && first && now - c->since_us >= first) ||
             (c->active_us && idle && now - c->active_us >= idle))) {
            silent[n] = !c->active_us;
            memcpy(peers[n], c->peer, sizeof(peers[n]));
            ids[n++] = c->id;
            conn_remove(s, i);
            continue;
        }
        i++;
    }
    pthread_mutex_unlock(&s->conn_mu);
    for (size_t i = 0; i < n; i++) {
        log_msg(LOG_LVL_INFO, "closed connection %u from %s: %s", ids[i],
                peers[i],
                silent[i] ? "no admitted request within first-request-timeout"
                          : "idle for idle-timeout");
        close_pipe(ids[i]);
    }
    /* pipes nng no longer knows (looked up without conn_mu) */
    for (size_t i = 0; i < n_all; i++) {
        nng_pipe p = NNG_PIPE_INITIALIZER;
        nng_sockaddr sa;
        p.id = all[i];
        if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != NNG_ENOENT)
            continue;
        pthread_mutex_lock(&s->conn_mu);
        for (size_t k = 0; k < s->n_conns; k++)
            if (s->conns[k].id == all[i]) {
                conn_remove(s, k);
                gone++;
                break;
            }
        pthread_mutex_unlock(&s->conn_mu);
    }
    if (gone)
        log_msg(LOG_LVL_DEBUG, "forgot %zu connections nng had closed", gone);
}
