/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write.c - writes through traced.  The daemon parses the JSON
 * Lines (it holds the catalog and the pseudonymisation secret) and
 * returns the canonical event bytes (Prepare); tracectl signs each
 * party's events with that party's key from the key folder and sends the
 * signatures (Commit).  An import is read, prepared and spooled chunk by
 * chunk, then committed in order, signing one chunk while the one before
 * commits.
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

/* A failed write request: its message for ctl_errmsg(), its code. */
static int append_failed(Trace__Wire__V1__Response *resp)
{
    int rc = ctl_code_of_exit(resp->code);
    ctl_set_errmsg(resp->message ? resp->message : trace_strerror(rc));
    if (resp->has_rejected)
        ctl_set_rejected((unsigned long)resp->rejected,
                         (unsigned long)resp->lines);
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return rc;
}

/* qsort's view of the parties of the events being grouped (per thread:
 * bench_daemon's clients commit on several threads at once). */
static _Thread_local char **sort_parties;

/* Orders event indexes by party, then by position. */
static int by_party(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(sort_parties[x], sort_parties[y]);
    return c ? c : (x > y) - (x < y);
}

/* A prepared chunk's groups, signed (per party, or per run of one
 * party's consecutive events for a daemon of the first protocol). */
struct signed_chunk {
    Trace__Wire__V1__Prepared *p;
    Trace__Wire__V1__Group *groups, **gp;
    uint8_t (*sigs)[TRACE_SIG_LEN];
    size_t ng;
    int party_groups;
    int rc;        /* of signing */
    char msg[512]; /* why it failed */
};

static void signed_chunk_free(struct signed_chunk *sc)
{
    free(sc->groups);
    free(sc->gp);
    free(sc->sigs);
    memset(sc, 0, sizeof(*sc));
}

/* Signs sc->p's events (r's keyring is only read).  Runs on a thread of
 * its own beside the commit of the chunk before: sets sc->rc and sc->msg,
 * not ctl_errmsg(). */
static int sign_chunk(struct remote *r, struct signed_chunk *sc)
{
    Trace__Wire__V1__Prepared *p = sc->p;
    const uint8_t **evp = NULL, **gev = NULL;
    size_t *lens = NULL, *glen = NULL, *order = NULL;
    int rc = TRACE_OK;

    sc->ng = 0;
    sc->msg[0] = '\0';
    if (p->n_events == 0)
        return sc->rc = TRACE_OK;
    if (p->n_parties != p->n_events || p->n_linenos != p->n_events) {
        snprintf(sc->msg, sizeof(sc->msg),
                 "the daemon's prepared events are malformed");
        return sc->rc = TRACE_EUNAVAIL;
    }
    sc->groups = calloc(p->n_events, sizeof(*sc->groups));
    sc->gp = calloc(p->n_events, sizeof(*sc->gp));
    sc->sigs = calloc(p->n_events, sizeof(*sc->sigs));
    evp = calloc(p->n_events, sizeof(*evp));
    lens = calloc(p->n_events, sizeof(*lens));
    order = calloc(p->n_events, sizeof(*order));
    gev = calloc(p->n_events, sizeof(*gev));
    glen = calloc(p->n_events, sizeof(*glen));
    if (!sc->groups || !sc->gp || !sc->sigs || !evp || !lens || !order ||
        !gev || !glen) {
        snprintf(sc->msg, sizeof(sc->msg), "out of memory");
        rc = TRACE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < p->n_events; i++) {
        evp[i] = p->events[i].data;
        lens[i] = p->events[i].len;
    }
    /* one signature per party over all of its events in this request
     * (in order), or, for a daemon of the first protocol, one per run of
     * a party's consecutive events: the events' indexes ordered by party
     * (then position) give each party's events side by side */
    sc->party_groups = (r->features & WIRE_FEATURE_PARTY_GROUPS) != 0;
    for (size_t i = 0; i < p->n_events; i++)
        order[i] = i;
    if (sc->party_groups) {
        sort_parties = p->parties;
        qsort(order, p->n_events, sizeof(*order), by_party);
    }
    for (size_t i = 0; i < p->n_events;) {
        const char *party = p->parties[order[i]];
        const trace_key *key;
        uint8_t digest[32];
        size_t n = 0, first = order[i];
        Trace__Wire__V1__Group *gr = &sc->groups[sc->ng];

        for (; i < p->n_events && strcmp(p->parties[order[i]], party) == 0;
             i++) {
            gev[n] = evp[order[i]];
            glen[n++] = lens[order[i]];
        }
        if (trace_keyring_get(r->ring, party, &key) != TRACE_OK) {
            snprintf(sc->msg, sizeof(sc->msg),
                     "line %llu: no key for %s in %s (create one with "
                     "`tracectl keygen %s` and have it registered)",
                     (unsigned long long)p->linenos[first], party,
                     trace_keyring_dir(r->ring), party);
            rc = TRACE_EPERM;
            goto out;
        }
        if ((rc = trace_group_digest(party, trace_key_id(key), gev, glen, n,
                                     digest)) != TRACE_OK ||
            (rc = trace_key_sign(key, digest, sizeof(digest),
                                 sc->sigs[sc->ng]))) {
            snprintf(sc->msg, sizeof(sc->msg), "%s", trace_error_last());
            goto out;
        }
        trace__wire__v1__group__init(gr);
        gr->party = (char *)party;
        gr->key_id.data = (uint8_t *)trace_key_id(key);
        gr->key_id.len = TRACE_KEY_ID_LEN;
        gr->sig.data = sc->sigs[sc->ng];
        gr->sig.len = TRACE_SIG_LEN;
        gr->count = (uint32_t)n;
        sc->gp[sc->ng++] = gr;
    }
out:
    free(evp);
    free(lens);
    free(gev);
    free(glen);
    free(order);
    return sc->rc = rc;
}

/* Commits a signed chunk. */
static int send_chunk(struct globals *g, struct signed_chunk *sc,
                      unsigned flags, trace_append_result *res)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__Commit cm = TRACE__WIRE__V1__COMMIT__INIT;
    Trace__Wire__V1__Prepared *p = sc->p;
    Trace__Wire__V1__Response *resp;
    int ret;

    if (p->n_events == 0)
        return TRACE_OK;
    cm.n_events = p->n_events;
    cm.events = p->events;
    cm.n_linenos = p->n_linenos;
    cm.linenos = p->linenos;
    cm.ticket = p->ticket;
    cm.n_groups = sc->ng;
    cm.groups = sc->gp;
    cm.has_party_groups = sc->party_groups;
    cm.party_groups = sc->party_groups;
    cm.has_historic = 1;
    cm.historic = (flags & TRACE_APPEND_HISTORIC) != 0;
    cm.has_checks = (flags & (TRACE_APPEND_CHECK | TRACE_APPEND_STRICT)) != 0;
    cm.checks = (flags & TRACE_APPEND_STRICT) ? 2 : cm.has_checks ? 1 : 0;
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_COMMIT;
    body.commit = &cm;
    if (!(resp = remote_request(g, &body, &ret))) {
        ctl_set_errmsg("the commit got no answer: run the import again (what "
                       "was committed is skipped as already present)");
        return ctl_code_of_exit(ret);
    }
    if (resp->code != 0 || !resp->committed)
        return append_failed(resp);
    res->appended += resp->committed->appended;
    res->duplicates += resp->committed->duplicates;
    res->warnings += resp->committed->warnings;
    for (size_t i = 0; i < resp->committed->n_findings; i++)
        fprintf(ctl_err, "tracectl: warning: %s\n",
                resp->committed->findings[i]);
    if (resp->committed->warnings > resp->committed->n_findings)
        fprintf(ctl_err, "tracectl: warning: ... %llu more in this chunk\n",
                (unsigned long long)(resp->committed->warnings -
                                     resp->committed->n_findings));
    if (resp->committed->first_seq && !res->first_seq)
        res->first_seq = resp->committed->first_seq;
    if (resp->committed->last_seq)
        res->last_seq = resp->committed->last_seq;
    if (g->receipts) /* --receipt: kept with the reply it borrows from */
        ctl_receipts_add(g->receipts, resp, p->events, p->n_events);
    else
        trace__wire__v1__response__free_unpacked(resp, NULL);
    return TRACE_OK;
}

struct sign_job {
    struct remote *r;
    struct signed_chunk *sc;
};

static void *sign_job_run(void *arg)
{
    struct sign_job *j = arg;
    sign_chunk(j->r, j->sc);
    return NULL;
}

/* Where commit_all takes the prepared chunks from, in order: next()
 * gives the next (NULL at the end, or on failure with *rc set), done()
 * lets it go. */
struct chunk_source {
    Trace__Wire__V1__Prepared *(*next)(struct chunk_source *src, int *rc);
    void (*done)(struct chunk_source *src, Trace__Wire__V1__Prepared *p);
};

/* The chunks of an array of Prepare answers. */
struct array_source {
    struct chunk_source src;
    Trace__Wire__V1__Response **preps;
    size_t n, i;
};

static Trace__Wire__V1__Prepared *array_next(struct chunk_source *src, int *rc)
{
    struct array_source *a = (struct array_source *)src;
    (void)rc;
    return a->i < a->n ? a->preps[a->i++]->prepared : NULL;
}

static void array_done(struct chunk_source *src, Trace__Wire__V1__Prepared *p)
{
    (void)src;
    (void)p; /* the array's owner frees them */
}

/* Commits the prepared chunks in order, each signed while the one before
 * is on its way (signing a chunk of a thousand parties takes as long as
 * the daemon's commit of it). */
static int commit_all(struct globals *g, struct chunk_source *src,
                      unsigned flags, trace_append_result *res)
{
    struct remote *r = g->remote;
    struct signed_chunk sc[2];
    int rc = TRACE_OK, next_rc = TRACE_OK;

    memset(sc, 0, sizeof(sc));
    if (!(sc[0].p = src->next(src, &rc)))
        return rc;
    sign_chunk(r, &sc[0]);
    for (size_t i = 0;; i++) {
        struct signed_chunk *cur = &sc[i % 2], *next = &sc[(i + 1) % 2];
        struct sign_job job = {r, next};
        pthread_t t;
        int threaded = 0;

        if (cur->rc != TRACE_OK) {
            ctl_set_errmsg(cur->msg);
            rc = cur->rc;
            break;
        }
        if ((next->p = src->next(src, &next_rc)) != NULL)
            threaded = pthread_create(&t, NULL, sign_job_run, &job) == 0;
        rc = send_chunk(g, cur, flags, res);
        if (threaded)
            pthread_join(t, NULL);
        else if (next->p)
            sign_chunk(r, next);
        src->done(src, cur->p);
        signed_chunk_free(cur);
        if (rc == TRACE_OK && !next->p)
            rc = next_rc; /* the source's own failure, if any */
        if (rc != TRACE_OK || !next->p)
            break;
    }
    for (int k = 0; k < 2; k++) {
        if (sc[k].p)
            src->done(src, sc[k].p);
        signed_chunk_free(&sc[k]);
    }
    return rc;
}

/* Sends the Prepare of lines [from, to), after registrations of the
 * keys in `prov` (n_prov of them): the daemon's answer, or NULL with the
 * exit code in *ret.  Sets no message: prepared() reads the answer on
 * the thread that reports. */
static Trace__Wire__V1__Response *
prepare_send(struct globals *g, char **lines, const size_t *lens,
             const unsigned long *linenos, size_t from, size_t to,
             Trace__Wire__V1__ProvisionKey **prov, size_t n_prov,
             int want_provision, int *ret)
{
    Trace__Wire__V1__RequestBody body = TRACE__WIRE__V1__REQUEST_BODY__INIT;
    Trace__Wire__V1__Prepare pr = TRACE__WIRE__V1__PREPARE__INIT;
    Trace__Wire__V1__Line *ls = calloc(to - from + 1, sizeof(*ls));
    Trace__Wire__V1__Line **lp = calloc(to - from + 1, sizeof(*lp));
    Trace__Wire__V1__Response *resp;

    if (!ls || !lp) {
        free(ls);
        free(lp);
        *ret = -1; /* out of memory: nothing sent */
        return NULL;
    }
    for (size_t i = from; i < to; i++) {
        trace__wire__v1__line__init(&ls[i - from]);
        ls[i - from].lineno = linenos[i];
        ls[i - from].text.data = (uint8_t *)lines[i];
        ls[i - from].text.len = lens[i];
        lp[i - from] = &ls[i - from];
    }
    pr.n_lines = to - from;
    pr.lines = lp;
    pr.n_provision = n_prov;
    pr.provision = prov;
    pr.has_want_provision = 1;
    pr.want_provision = want_provision != 0;
    body.op_case = TRACE__WIRE__V1__REQUEST_BODY__OP_PREPARE;
    body.prepare = &pr;
    resp = remote_request(g, &body, ret);
    free(ls);
    free(lp);
    return resp;
}

/* What prepare_send() got: TRACE_OK with the answer in *prep, or the
 * failure (its message and rejected lines set for ctl_errmsg()). */
static int prepared(Trace__Wire__V1__Response *resp, int ret,
                    Trace__Wire__V1__Response **prep)
{
    *prep = NULL;
    if (!resp && ret == -1) {
        ctl_set_errmsg("out of memory");
        return TRACE_ENOMEM;
    }
    if (!resp) {
        ctl_set_errmsg("nothing was sent");
        return ctl_code_of_exit(ret);
    }
    if (resp->code != 0 || !resp->prepared)
        return append_failed(resp);
    *prep = resp;
    return TRACE_OK;
}

/* Prepares lines [from, to); *prep receives the daemon's answer. */
static int prepare(struct globals *g, char **lines, const size_t *lens,
                   const unsigned long *linenos, size_t from, size_t to,
                   Trace__Wire__V1__ProvisionKey **prov, size_t n_prov,
                   int want_provision, Trace__Wire__V1__Response **prep)
{
    int ret = 0;
    Trace__Wire__V1__Response *resp = prepare_send(
        g, lines, lens, linenos, from, to, prov, n_prov, want_provision, &ret);
    return prepared(resp, ret, prep);
}

/* --provision-keys: a key made here for every recorder the daemon says
 * has none; *out receives their registrations to prepare. */
static int make_key(struct globals *g, const char *party,
                    Trace__Wire__V1__ProvisionKey **out, size_t *n_out,
                    size_t cap);

static int make_keys(struct globals *g, Trace__Wire__V1__Response **preps,
                     size_t nprep, Trace__Wire__V1__ProvisionKey **out,
                     size_t *n_out, size_t cap)
{
    int rc;

    *n_out = 0;
    for (size_t i = 0; i < nprep; i++) {
        Trace__Wire__V1__Prepared *p = preps[i]->prepared;
        for (size_t j = 0; j < p->n_need_keys; j++)
            if ((rc = make_key(g, p->need_keys[j], out, n_out, cap)))
                return rc;
    }
    return TRACE_OK;
}

/* A key for `party` (made, or one in the folder never registered) added
 * to out[] unless there already or out[] is full; a linear search, as
 * the list holds the recorders of one import that have no key. */
static int make_key(struct globals *g, const char *party,
                    Trace__Wire__V1__ProvisionKey **out, size_t *n_out,
                    size_t cap)
{
    struct remote *r = g->remote;
    const trace_key *key;
    char msg[512];
    size_t k = 0;

    while (k < *n_out && strcmp(out[k]->party, party) != 0)
        k++;
    if (k < *n_out || *n_out == cap)
        return TRACE_OK;
    /* a key already in the folder but never registered is used */
    if (trace_keyring_get(r->ring, party, &key) != TRACE_OK &&
        trace_keyring_generate(r->ring, party, &key) != TRACE_OK) {
        snprintf(msg, sizeof(msg), "cannot make a key for %s: %s", party,
                 trace_error_last());
        ctl_set_errmsg(msg);
        return TRACE_EIO;
    }
    if (!(out[*n_out] = calloc(1, sizeof(**out)))) {
        ctl_set_errmsg("out of memory");
        return TRACE_ENOMEM;
    }
    trace__wire__v1__provision_key__init(out[*n_out]);
    out[*n_out]->party = strdup(party);
    out[*n_out]->pubkey.data = (uint8_t *)trace_key_public(key);
    out[*n_out]->pubkey.len = TRACE_PUBKEY_LEN;
    if (!out[*n_out]->party) {
        free(out[*n_out]);
        ctl_set_errmsg("out of memory");
        return TRACE_ENOMEM;
    }
    (*n_out)++;
    return TRACE_OK;
}

/* The recorders of a prepared chunk must all be `as` (but the first
 * `exempt`: key registrations). */
static int check_as(const Trace__Wire__V1__Prepared *p, const char *as,
                    size_t exempt)
{
    char msg[512];

    for (size_t j = exempt; as && j < p->n_parties; j++)
        if (strcmp(p->parties[j], as) != 0) {
            snprintf(msg, sizeof(msg),
                     "line %llu: event recorded by %s, but acting as %s: a "
                     "party writes only its own ledger",
                     (unsigned long long)(j < p->n_linenos ? p->linenos[j] : 0),
                     p->parties[j], as);
            ctl_set_errmsg(msg);
            return TRACE_EPERM;
        }
    return TRACE_OK;
}

/* After a failed import of which earlier parts were committed: says so
 * after the reason. */
static void note_partial(const trace_append_result *res)
{
    char msg[1024];

    if (!res->appended)
        return;
    snprintf(msg, sizeof(msg),
             "%.700s\n(the input was sent in parts; %llu events of the first "
             "parts were committed: running the import again skips them)",
             ctl_errmsg(), (unsigned long long)res->appended);
    ctl_set_errmsg(msg);
}

int remote_append(struct globals *g, char **lines, const size_t *lens,
                  const unsigned long *linenos, size_t n, const char *as,
                  unsigned flags, trace_append_result *res)
{
    struct remote *r = g->remote;
    Trace__Wire__V1__Response **preps = NULL;
    Trace__Wire__V1__ProvisionKey **prov = NULL;
    size_t nprep = 0, n_prov = 0, from, max_prov = n + 1, first_to = 0;
    /* a request holds at most three quarters of what the daemon accepts:
     * a commit carries the events (smaller than their JSON lines) and a
     * signature per party (about 100 bytes each) */
    uint64_t budget = r->max_message ? r->max_message / 4 * 3 : (16u << 20);
    int provision = (flags & TRACE_APPEND_PROVISION_KEYS) != 0;
    int rc = TRACE_OK;

    memset(res, 0, sizeof(*res));
    if (!(preps = calloc(n + 1, sizeof(*preps))) ||
        !(prov = calloc(max_prov, sizeof(*prov)))) {
        free(preps);
        ctl_set_errmsg("out of memory");
        return TRACE_ENOMEM;
    }
    /* every chunk is prepared (checked) before any is committed, so a
     * rejected line anywhere leaves the ledger untouched; with
     * --provision-keys the first part is prepared once more, with the
     * registrations of the keys the daemon found missing */
    for (from = 0; from < n && rc == TRACE_OK;) {
        size_t to = from, bytes = 0;
        while (to < n && (to == from || bytes + lens[to] + 32 <= budget))
            bytes += lens[to++] + 32;
        rc = prepare(g, lines, lens, linenos, from, to, NULL, 0, provision,
                     &preps[nprep]);
        if (rc == TRACE_OK)
            nprep++;
        if (from == 0)
            first_to = to;
        from = to;
    }
    if (rc == TRACE_OK && provision &&
        (rc = make_keys(g, preps, nprep, prov, &n_prov, max_prov)) ==
            TRACE_OK &&
        n_prov > 0) {
        /* only the first part changes: it carries the registrations (the
         * others' events do not depend on them) */
        trace__wire__v1__response__free_unpacked(preps[0], NULL);
        rc = prepare(g, lines, lens, linenos, 0, first_to, prov, n_prov, 0,
                     &preps[0]);
        if (rc != TRACE_OK) {
            /* preps[0] is gone: free the others only */
            for (size_t i = 1; i < nprep; i++)
                trace__wire__v1__response__free_unpacked(preps[i], NULL);
            nprep = 0;
        }
    }
    for (size_t i = 0; i < nprep && rc == TRACE_OK; i++)
        rc = check_as(preps[i]->prepared, as, i == 0 ? n_prov : 0);
    if (rc == TRACE_OK) {
        struct array_source a = {{array_next, array_done}, preps, nprep, 0};
        rc = commit_all(g, &a.src, flags, res);
    }
    if (rc == TRACE_OK)
        res->provisioned = n_prov;
    for (size_t i = 0; i < nprep; i++)
        trace__wire__v1__response__free_unpacked(preps[i], NULL);
    for (size_t i = 0; i < n_prov; i++) {
        free(prov[i]->party);
        free(prov[i]);
    }
    free(prov);
    free(preps);
    if (rc != TRACE_OK)
        note_partial(res);
    return rc;
}

/* Prepared chunks kept on disk between the checks of an import and its
 * commits: the first in memory (it may be prepared again with key
 * registrations), the others in a temporary file, each as u64be length
 * and the packed Prepared. */
struct spool_source {
    struct chunk_source src;
    Trace__Wire__V1__Prepared *first;
    int first_given;
    FILE *f;
};

static Trace__Wire__V1__Prepared *spool_next(struct chunk_source *src, int *rc)
{
    struct spool_source *sp = (struct spool_source *)src;
    Trace__Wire__V1__Prepared *p;
    uint8_t lb[8], *buf;
    uint64_t len = 0;
    size_t got;

    if (!sp->first_given) {
        sp->first_given = 1;
        return sp->first;
    }
    if ((got = fread(lb, 1, sizeof(lb), sp->f)) == 0 && feof(sp->f))
        return NULL;
    for (int i = 0; i < 8; i++)
        len = (len << 8) | lb[i];
    if (got != sizeof(lb) || len > (1ull << 31) ||
        !(buf = malloc(len ? len : 1))) {
        ctl_set_errmsg("the spooled prepared events cannot be read");
        *rc = TRACE_EIO;
        return NULL;
    }
    p = fread(buf, 1, len, sp->f) == len
            ? trace__wire__v1__prepared__unpack(NULL, len, buf)
            : NULL;
    free(buf);
    if (!p) {
        ctl_set_errmsg("the spooled prepared events cannot be read");
        *rc = TRACE_EIO;
    }
    return p;
}

static void spool_done(struct chunk_source *src, Trace__Wire__V1__Prepared *p)
{
    if (p != ((struct spool_source *)src)->first)
        trace__wire__v1__prepared__free_unpacked(p, NULL);
}

static int spool_put(FILE *f, const Trace__Wire__V1__Prepared *p)
{
    size_t len = trace__wire__v1__prepared__get_packed_size(p);
    uint8_t lb[8], *buf = malloc(len ? len : 1);
    int ok;

    if (!buf)
        return -1;
    trace__wire__v1__prepared__pack(p, buf);
    for (int i = 0; i < 8; i++)
        lb[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    ok = fwrite(lb, 1, sizeof(lb), f) == sizeof(lb) &&
         fwrite(buf, 1, len, f) == len;
    free(buf);
    return ok ? 0 : -1;
}

struct chunk {
    char **lines;
    size_t *lens;
    unsigned long *linenos;
    size_t n, cap;
};

static void chunk_clear(struct chunk *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
    c->n = 0;
}

static int chunk_add(struct chunk *c, char *line, size_t len,
                     unsigned long lineno)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        char **nl = realloc(c->lines, nc * sizeof(*nl));
        size_t *nlen = nl ? realloc(c->lens, nc * sizeof(*nlen)) : NULL;
        unsigned long *nno =
            nlen ? realloc(c->linenos, nc * sizeof(*nno)) : NULL;
        if (nl)
            c->lines = nl;
        if (nlen)
            c->lens = nlen;
        if (!nno)
            return -1;
        c->linenos = nno;
        c->cap = nc;
    }
    c->lines[c->n] = line;
    c->lens[c->n] = len;
    c->linenos[c->n++] = lineno;
    return 0;
}

/* Recorders without a key, each once: `sorted` to find them, `order`
 * (the same strings) in the order the daemon named them, which is the
 * order their keys are registered in. */
struct needs {
    char **sorted, **order;
    size_t n, cap;
};

static int need_add(struct needs *nd, const char *party)
{
    size_t lo = 0, hi = nd->n;
    char *copy;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(nd->sorted[mid], party);
        if (c == 0)
            return 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (nd->n == nd->cap) {
        size_t nc = nd->cap ? nd->cap * 2 : 64;
        char **a = realloc(nd->sorted, nc * sizeof(*a));
        char **b = a ? realloc(nd->order, nc * sizeof(*b)) : NULL;
        if (a)
            nd->sorted = a;
        if (!b)
            return -1;
        nd->order = b;
        nd->cap = nc;
    }
    if (!(copy = strdup(party)))
        return -1;
    memmove(nd->sorted + lo + 1, nd->sorted + lo,
            (nd->n - lo) * sizeof(*nd->sorted));
    nd->sorted[lo] = copy;
    nd->order[nd->n++] = copy;
    return 0;
}

/* Reading the file chunk by chunk: a line read but not yet taken. */
struct reader {
    FILE *in;
    char *pending;
    size_t plen;
    unsigned long pno, lineno;
    int eof;
};

/* Adds the next lines to `c` up to `budget` bytes (at least one line, if
 * any is left); -1 when out of memory. */
static int read_chunk(struct reader *rd, struct chunk *c, uint64_t budget)
{
    uint64_t bytes = 0;

    for (;;) {
        if (!rd->pending) {
            char *line = NULL;
            size_t lcap = 0;
            ssize_t len = getline(&line, &lcap, rd->in);
            if (len < 0) {
                free(line);
                rd->eof = 1;
                return 0;
            }
            rd->pending = line;
            rd->plen = (size_t)len;
            rd->pno = ++rd->lineno;
        }
        if (c->n > 0 && bytes + rd->plen + 32 > budget)
            return 0;
        if (chunk_add(c, rd->pending, rd->plen, rd->pno) != 0)
            return -1;
        bytes += rd->plen + 32;
        rd->pending = NULL;
    }
}

/* Takes a chunk's prepared events: its recorders checked, the parties
 * it needs keys for noted, then kept (the first chunk) or spooled. */
static int take_prepared(Trace__Wire__V1__Response *resp, const char *as,
                         struct needs *need, int is_first,
                         Trace__Wire__V1__Response **first, FILE *spool)
{
    int rc = check_as(resp->prepared, as, 0);

    for (size_t j = 0; rc == TRACE_OK && j < resp->prepared->n_need_keys; j++)
        if (need_add(need, resp->prepared->need_keys[j]) != 0) {
            ctl_set_errmsg("out of memory");
            rc = TRACE_ENOMEM;
        }
    if (rc == TRACE_OK && is_first) {
        *first = resp;
        return TRACE_OK;
    }
    if (rc == TRACE_OK && spool_put(spool, resp->prepared) != 0) {
        ctl_set_errmsg("cannot write the prepared events to a temporary "
                       "file");
        rc = TRACE_EIO;
    }
    trace__wire__v1__response__free_unpacked(resp, NULL);
    return rc;
}

/* The Prepare of every second chunk, sent on a second connection from a
 * thread of its own: the daemon parses two chunks at once. */
struct prep_job {
    struct globals *g;
    struct chunk *c;
    int provision, ret, tz;
    FILE *out, *err;
    Trace__Wire__V1__Response *resp;
};

static void *prep_job_run(void *arg)
{
    struct prep_job *j = arg;

    ctl_out = j->out;
    ctl_err = j->err;
    ctl_tz_min = j->tz;
    j->resp = prepare_send(j->g, j->c->lines, j->c->lens, j->c->linenos, 0,
                           j->c->n, NULL, 0, j->provision, &j->ret);
    return NULL;
}

/* A second connection acting as the same party; -1 if it cannot be
 * made (the import then prepares on one). */
static int open_second(struct globals *g, struct globals *g2)
{
    FILE *err = ctl_err, *quiet = fopen("/dev/null", "w");
    int rc;

    *g2 = *g;
    g2->remote = NULL;
    g2->receipts = NULL;
    /* one that cannot be made is no error of the import's: nothing said */
    if (quiet)
        ctl_err = quiet;
    rc = remote_open(g2);
    ctl_err = err;
    if (quiet)
        fclose(quiet);
    if (rc != 0)
        return -1;
    if (strcmp(g2->remote->party, g->remote->party) != 0 &&
        remote_act_as(g2, g->remote->party) != TRACE_OK) {
        remote_close(g2);
        return -1;
    }
    return 0;
}

int remote_import(struct globals *g, FILE *in, const char *as, unsigned flags,
                  trace_append_result *res, int *read_failed)
{
    struct remote *r = g->remote;
    uint64_t budget = r->max_message ? r->max_message / 4 * 3 : (16u << 20);
    int provision = (flags & TRACE_APPEND_PROVISION_KEYS) != 0;
    struct chunk c0 = {0}, c = {0}, c2 = {0};
    struct reader rd = {in, NULL, 0, 0, 0, 0};
    struct globals g2;
    int have_g2 = 0, no_g2 = 0;
    Trace__Wire__V1__Response *first = NULL, *resp = NULL;
    Trace__Wire__V1__ProvisionKey **prov = NULL;
    struct needs need = {0};
    size_t n_prov = 0, chunks = 0;
    FILE *spool = tmpfile();
    int rc = TRACE_OK;

    memset(res, 0, sizeof(*res));
    *read_failed = 0;
    if (!spool) {
        ctl_set_errmsg("cannot make a temporary file for the prepared "
                       "events (TMPDIR)");
        return TRACE_EIO;
    }
    /* every chunk is prepared (checked) before any is committed, so a
     * rejected line anywhere leaves the ledger untouched; the first stays
     * in memory (with --provision-keys it is prepared once more, with the
     * registrations of the keys the daemon found missing), the others
     * wait in the temporary file.  Two chunks at a time: the second on a
     * second connection meanwhile, taken after the first (in order). */
    while (!rd.eof && rc == TRACE_OK) {
        struct chunk *cur = chunks == 0 ? &c0 : &c;
        struct prep_job job;
        pthread_t t;
        int threaded = 0;

        if (read_chunk(&rd, cur, budget) != 0 ||
            (!rd.eof && cur->n > 0 && read_chunk(&rd, &c2, budget) != 0)) {
            ctl_set_errmsg("out of memory");
            rc = TRACE_ENOMEM;
            break;
        }
        if (cur->n == 0)
            break;
        if (c2.n > 0 && !have_g2 && !no_g2) {
            if (open_second(g, &g2) == 0)
                have_g2 = 1;
            else
                no_g2 = 1;
        }
        if (c2.n > 0 && have_g2) {
            job = (struct prep_job){&g2,        &c2,     provision, 0,
                                    ctl_tz_min, ctl_out, ctl_err,   NULL};
            threaded = pthread_create(&t, NULL, prep_job_run, &job) == 0;
        }
        rc = prepare(g, cur->lines, cur->lens, cur->linenos, 0, cur->n, NULL, 0,
                     provision, &resp);
        if (rc == TRACE_OK)
            rc = take_prepared(resp, as, &need, chunks == 0, &first, spool);
        resp = NULL;
        if (cur == &c)
            chunk_clear(&c);
        chunks++;
        if (threaded) {
            pthread_join(t, NULL);
            if (rc == TRACE_OK)
                rc = prepared(job.resp, job.ret, &resp);
            else if (job.resp)
                trace__wire__v1__response__free_unpacked(job.resp, NULL);
        } else if (rc == TRACE_OK && c2.n > 0) {
            rc = prepare(g, c2.lines, c2.lens, c2.linenos, 0, c2.n, NULL, 0,
                         provision, &resp);
        }
        if (rc == TRACE_OK && resp)
            rc = take_prepared(resp, as, &need, 0, &first, spool);
        resp = NULL;
        if (c2.n > 0)
            chunks++;
        chunk_clear(&c2);
    }
    if (have_g2)
        remote_close(&g2);
    free(rd.pending);
    if (rc == TRACE_OK && ferror(in)) {
        *read_failed = 1;
        rc = TRACE_EIO;
    }
    if (rc == TRACE_OK && provision && need.n > 0) {
        if (!(prov = calloc(need.n, sizeof(*prov)))) {
            ctl_set_errmsg("out of memory");
            rc = TRACE_ENOMEM;
        }
        for (size_t i = 0; rc == TRACE_OK && i < need.n; i++)
            rc = make_key(g, need.order[i], prov, &n_prov, need.n);
        if (rc == TRACE_OK && n_prov > 0) {
            trace__wire__v1__response__free_unpacked(first, NULL);
            first = NULL;
            rc = prepare(g, c0.lines, c0.lens, c0.linenos, 0, c0.n, prov,
                         n_prov, 0, &first);
            if (rc == TRACE_OK)
                rc = check_as(first->prepared, as, n_prov);
        }
    }
    if (rc == TRACE_OK && first) {
        struct spool_source sp = {
            {spool_next, spool_done}, first->prepared, 0, spool};
        if (fflush(spool) != 0 || fseek(spool, 0, SEEK_SET) != 0) {
            ctl_set_errmsg("cannot read the prepared events back");
            rc = TRACE_EIO;
        } else {
            rc = commit_all(g, &sp.src, flags, res);
        }
        if (rc == TRACE_OK)
            res->provisioned = n_prov;
    }
    if (rc != TRACE_OK)
        note_partial(res);
    if (first)
        trace__wire__v1__response__free_unpacked(first, NULL);
    for (size_t i = 0; i < n_prov; i++) {
        free(prov[i]->party);
        free(prov[i]);
    }
    free(prov);
    for (size_t i = 0; i < need.n; i++)
        free(need.order[i]);
    free(need.order);
    free(need.sorted);
    chunk_clear(&c0);
    chunk_clear(&c);
    chunk_clear(&c2);
    free(c0.lines);
    free(c0.lens);
    free(c0.linenos);
    free(c.lines);
    free(c.lens);
    free(c.linenos);
    free(c2.lines);
    free(c2.lens);
    free(c2.linenos);
    fclose(spool);
    return rc;
}
