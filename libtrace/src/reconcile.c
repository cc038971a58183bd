/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile.c - the rule engine.
 *
 * A run loads every effective event once (a corrected event is replaced
 * by its replacement, a voided one dropped) into compact records with
 * interned strings (reconcile_load.c), then runs each enabled rule of the
 * reconcile_rules[] table over them.  Rules read events in `at` order
 * (ties in journal order) where order matters.  Each rule reports
 * anomalies through raise(), which derives the alert's stable id from the
 * rule and its evidence.
 *
 * Alerts are stored in the "alerts" database (id -> JSON without status),
 * with a sequence index ("alertseq") to list them in the order they were
 * first found.  Status comes from the latest `alert_ack` event for the
 * alert (state.c files them in "acks").
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "reconcile_int.h"

/* ------------------------------------------------------------------ */
/* Raising alerts                                                       */

void alert_id_make(char id[18], sha256_stream *s, const char *rule,
                   const trace_event_ref *ev, size_t n_ev, const char *permit,
                   const char *party)
{
    uint8_t h[32];

    sha256_stream_reset(s);
    sha256_stream_update(s, rule, strlen(rule) + 1);
    for (size_t i = 0; i < n_ev; i++) {
        sha256_stream_update(s, ev[i].party, strlen(ev[i].party) + 1);
        sha256_stream_update(s, ev[i].id, strlen(ev[i].id) + 1);
    }
    if (permit)
        sha256_stream_update(s, permit, strlen(permit) + 1);
    if (n_ev == 0 && party)
        sha256_stream_update(s, party, strlen(party) + 1);
    sha256_stream_final(s, h);
    id[0] = 'A';
    hex_encode(id + 1, h, 8);
}

int raise_alert(struct run *r, const struct rule *rule, const rec *const *ev,
                size_t n_ev, const char *party, const char *counterparty,
                const char *substance, const char *lot, const char *permit,
                const char *fmt, ...)
{
    struct alert *al;
    char detail[512];
    va_list ap;

    if (r->n_alerts == r->cap_alerts) {
        size_t nc = r->cap_alerts ? r->cap_alerts * 2 : 64;
        struct alert *p = realloc(r->alerts, nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        r->alerts = p;
        r->cap_alerts = nc;
    }
    al = &r->alerts[r->n_alerts];
    memset(al, 0, sizeof(*al));
    al->rule = rule;
    al->severity = r->cfg[rule - reconcile_rules].severity;
    al->party = party;
    al->counterparty = counterparty;
    al->substance = substance;
    al->lot = lot;
    al->permit = permit;
    al->events = arena_alloc(r->a, (n_ev ? n_ev : 1) * sizeof(*al->events));
    if (!al->events)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    /* the id: rule and evidence, which do not change between runs */
    if (!r->digest && !(r->digest = sha256_stream_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_ev; i++) {
        al->events[i].party = ev[i]->party;
        al->events[i].id = ev[i]->id;
    }
    alert_id_make(al->id, r->digest, rule->code, al->events, n_ev, permit,
                  party);
    al->n_events = n_ev;
    al->pos = n_ev ? ev[0]->pos : 0;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    al->detail = arena_strdup(r->a, detail, strlen(detail));
    r->n_alerts++;
    return TRACE_OK;
}

#define RAISE(r, ...) raise_alert(r, self, __VA_ARGS__)

static const char *const severities[] = {"info", "low",      "medium",
                                         "high", "critical", NULL};

static int load_config(struct run *r, const trace_reconcile_opts *o)
{
    json_error_t jerr;
    json_t *root;
    const char *code;
    json_t *val;
    int rc = TRACE_OK;

    for (size_t i = 0; i < N_RULES; i++) {
        r->cfg[i].enabled = 1;
        r->cfg[i].severity = reconcile_rules[i].severity;
        memcpy(r->cfg[i].p, reconcile_rules[i].pdef, sizeof(r->cfg[i].p));
        /* the regime gives LATE_REPORT's deadlines and SPLIT_PURCHASE's
         * thresholds; the rules file may still override them */
        if (strcmp(reconcile_rules[i].code, "LATE_REPORT") == 0)
            for (int k = 0; k < REGIME_N_DEADLINES; k++)
                r->cfg[i].p[k] = r->l->regime->late[k];
        if (strcmp(reconcile_rules[i].code, "SPLIT_PURCHASE") == 0)
            for (int k = 0; k < REGIME_N_SPLITS; k++) /* cat1, cat2, cat3 */
                r->cfg[i].p[2 + k] = r->l->regime->split[k];
    }
    if (!o->rules_json)
        return TRACE_OK;
    root =
        json_loadb(o->rules_json, o->rules_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return trace_fail(TRACE_EINVAL, "rules file: %s (line %d)",
                          root ? "must be an object" : jerr.text, jerr.line);
    }
    json_object_foreach(root, code, val)
    {
        size_t i;
        const char *key;
        json_t *v;
        if (strcmp(code, "credit") == 0)
            continue; /* credit's weights (credit.c) */
        for (i = 0; i < N_RULES && strcmp(reconcile_rules[i].code, code) != 0;
             i++)
            ;
        if (i == N_RULES || !json_is_object(val)) {
            rc = trace_fail(TRACE_EINVAL,
                            "rules file: unknown rule %s or "
                            "not an object",
                            code);
            break;
        }
        json_object_foreach(val, key, v)
        {
            int k;
            if (strcmp(key, "enabled") == 0 && json_is_boolean(v)) {
                r->cfg[i].enabled = json_is_true(v);
                continue;
            }
            if (strcmp(key, "severity") == 0 && json_is_string(v)) {
                for (k = 0; severities[k]; k++)
                    if (strcmp(severities[k], json_string_value(v)) == 0)
                        r->cfg[i].severity = severities[k];
                if (r->cfg[i].severity != reconcile_rules[i].severity ||
                    strcmp(reconcile_rules[i].severity, json_string_value(v)) ==
                        0)
                    continue;
            }
            for (k = 0; k < MAX_PARAMS && reconcile_rules[i].pname[k]; k++)
                if (strcmp(reconcile_rules[i].pname[k], key) == 0 &&
                    json_is_number(v) && json_number_value(v) >= 0)
                    break;
            if (k == MAX_PARAMS || !reconcile_rules[i].pname[k]) {
                rc = trace_fail(TRACE_EINVAL,
                                "rules file: %s.%s is not a parameter of the "
                                "rule, or its value is wrong",
                                code, key);
                break;
            }
            r->cfg[i].p[k] = json_number_value(v);
        }
        if (rc != TRACE_OK)
            break;
    }
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Alerts: JSON, storage, status                                        */

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static char *alert_json(const struct alert *al, const char *status)
{
    json_t *o = json_object(), *evs = json_array();
    char *s;

    json_object_set_new(o, "id", json_string(al->id));
    json_object_set_new(o, "rule", json_string(al->rule->code));
    json_object_set_new(o, "severity", json_string(al->severity));
    json_object_set_new(o, "party", opt_str(al->party));
    json_object_set_new(o, "counterparty", opt_str(al->counterparty));
    json_object_set_new(o, "substance", opt_str(al->substance));
    json_object_set_new(o, "lot", opt_str(al->lot));
    json_object_set_new(o, "permit", opt_str(al->permit));
    for (size_t i = 0; i < al->n_events; i++) {
        json_t *ev = json_object();
        json_object_set_new(ev, "party", json_string(al->events[i].party));
        json_object_set_new(ev, "id", json_string(al->events[i].id));
        json_array_append_new(evs, ev);
    }
    json_object_set_new(o, "events", evs);
    json_object_set_new(o, "detail", json_string(al->detail));
    if (status)
        json_object_set_new(o, "status", json_string(status));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* An alert's acknowledgement, from the acks index (state.c). */
struct ack {
    char status[33];
    int64_t at_us; /* 0: never acknowledged */
    char by[80];
    char note[1024];
    int has_by;
};

static void alert_ack(MDB_txn *txn, const trace_ledger *l, const char *id,
                      struct ack *a)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    const char *p, *end;
    size_t n;

    memset(a, 0, sizeof(*a));
    snprintf(a->status, sizeof(a->status), "open");
    if (mdb_get(txn, l->dbi_acks, &k, &v) != 0 || v.mv_size <= 8)
        return;
    p = (const char *)v.mv_data + 8;
    end = (const char *)v.mv_data + v.mv_size;
    n = strnlen(p, (size_t)(end - p));
    if (n >= sizeof(a->status))
        return;
    memcpy(a->status, p, n);
    a->status[n] = '\0';
    a->at_us = (int64_t)be64_get(v.mv_data);
    if (p + n >= end)
        return; /* written before acks kept who and why */
    p += n + 1;
    n = strnlen(p, (size_t)(end - p));
    snprintf(a->by, sizeof(a->by), "%.*s", (int)n, p);
    a->has_by = 1;
    if (p + n < end) {
        p += n + 1;
        snprintf(a->note, sizeof(a->note), "%.*s", (int)(end - p), p);
    }
}

/* Status of an alert from the acks index (state.c). */
static const char *alert_status(MDB_txn *txn, const trace_ledger *l,
                                const char *id, char *buf, size_t cap)
{
    struct ack a;

    alert_ack(txn, l, id, &a);
    if (strlen(a.status) >= cap)
        return "open";
    memcpy(buf, a.status, strlen(a.status) + 1);
    return buf;
}

/* Stores the alerts not stored yet; marks which were new. */
static int store_alerts(struct run *r, int *is_new)
{
    MDB_txn *txn;
    MDB_val k, v, sk;
    uint64_t next = 0;
    uint8_t seqb[8];
    MDB_cursor *cur;
    int rc;

    if ((rc = ledger_txn_begin(r->l, 0, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, r->l->dbi_alertseq, &cur)) == 0) {
        if (mdb_cursor_get(cur, &sk, &v, MDB_LAST) == 0 && sk.mv_size == 8)
            next = be64_get(sk.mv_data);
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; i < r->n_alerts && rc == 0; i++) {
        struct alert *al = &r->alerts[i];
        char *json = alert_json(al, NULL);
        if (!json) {
            rc = ENOMEM;
            break;
        }
        k = (MDB_val){strlen(al->id), al->id};
        v = (MDB_val){strlen(json), json};
        rc = mdb_put(txn, r->l->dbi_alerts, &k, &v, MDB_NOOVERWRITE);
        if (rc == 0) {
            is_new[i] = 1;
            be64_put(seqb, ++next);
            sk = (MDB_val){8, seqb};
            rc = mdb_put(txn, r->l->dbi_alertseq, &sk, &k, MDB_APPEND);
        } else if (rc == MDB_KEYEXIST) {
            rc = 0;
        }
        free(json);
    }
    if (rc) {
        ledger_txn_abort(r->l, txn);
        return rc == ENOMEM ? trace_fail(TRACE_ENOMEM, "out of memory")
                            : trace_fail_mdb(rc, "alerts");
    }
    /* what the next incremental run starts from, with these alerts */
    if (r->incremental && (rc = inc_store(r, txn)) != TRACE_OK) {
        ledger_txn_abort(r->l, txn);
        return rc;
    }
    if (r->verify.state) {
        k = (MDB_val){strlen(VERIFY_STATE_KEY), VERIFY_STATE_KEY};
        v = (MDB_val){r->verify.state_len, r->verify.state};
        if ((rc = mdb_put(txn, r->l->dbi_meta, &k, &v, 0))) {
            ledger_txn_abort(r->l, txn);
            return trace_fail_mdb(rc, "verify state");
        }
    }
    if ((rc = ledger_txn_commit(r->l, txn)))
        return trace_fail_mdb(rc, "commit");
    return TRACE_OK;
}

/* The store of a run's alerts, run where trace_reconcile_opts.store_via
 * says. */
struct store_job {
    struct run *r;
    int *is_new;
    char err[512]; /* a failure's message, for the run's thread */
};

/* Stores the alerts; a full map is grown (no transaction of the run is
 * open by then) and the store tried again. */
static int store_job_run(void *arg)
{
    struct store_job *j = arg;
    int rc;

    for (int attempt = 0;; attempt++) {
        memset(j->is_new, 0, (j->r->n_alerts + 1) * sizeof(*j->is_new));
        rc = store_alerts(j->r, j->is_new);
        if (rc != TRACE_EFULL || last_mdb_error() != MDB_MAP_FULL ||
            attempt == 8 || ledger_grow_map(j->r->l) != TRACE_OK)
            break;
    }
    if (rc != TRACE_OK)
        snprintf(j->err, sizeof(j->err), "%s", trace_error_last());
    return rc;
}

static int emit_alert(struct run *r, const struct alert *al, int is_new,
                      trace_alert_fn fn, void *ctx)
{
    char buf[32];
    const char *status;
    char *json;

    if (!fn)
        return TRACE_OK;
    status = alert_status(r->txn, r->l, al->id, buf, sizeof(buf));
    json = alert_json(al, status);
    trace_alert a = {al->id,
                     al->rule->code,
                     al->severity,
                     al->party,
                     al->counterparty,
                     al->substance,
                     al->lot,
                     al->permit,
                     al->n_events,
                     al->events,
                     al->detail,
                     status,
                     is_new,
                     json,
                     0,
                     NULL,
                     NULL,
                     NULL};
    int rc;
    if (!json)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    rc = fn(&a, ctx);
    free(json);
    return rc;
}

static int cmp_alert(const void *a, const void *b)
{
    const struct alert *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return strcmp(x->id, y->id);
}

void *verify_job_run(void *arg)
{
    struct verify_job *j = arg;
    j->rc = j->keep ? ledger_verify_from(j->l, &j->res, j->resume, &j->state,
                                         &j->state_len)
                    : trace_ledger_verify(j->l, &j->res, NULL, NULL);
    if (j->rc != TRACE_OK)
        snprintf(j->err, sizeof(j->err), "%s", trace_error_last());
    return NULL;
}

/* The rules run on two threads: these on a second one, with a run of
 * their own for the alerts they raise (they read the records, intern no
 * string and look up no event by id), the others here. */
static int on_side(const struct rule *rule)
{
    return strcmp(rule->code, "NEGATIVE_STOCK") == 0 ||
           strcmp(rule->code, "RX_LIMIT") == 0 ||
           strcmp(rule->code, "DOCTOR_SHOPPING") == 0;
}

struct side {
    struct run r;
    pthread_t thread;
    int rc;
    char err[256];
};

/* Runs rule i's function if any rule of its group is enabled (a rule
 * without a function is raised by the function of the rule before it:
 * permits, two-way verification, stock). */
static int run_rule(struct run *r, size_t i)
{
    int any = r->cfg[i].enabled;
    for (size_t j = i + 1; j < N_RULES && !reconcile_rules[j].fn; j++)
        any |= r->cfg[j].enabled;
    return any ? reconcile_rules[i].fn(r, &r->cfg[i]) : TRACE_OK;
}

static void *side_run(void *arg)
{
    struct side *sd = arg;
    sd->rc = TRACE_OK;
    for (size_t i = 0; i < N_RULES && sd->rc == TRACE_OK; i++)
        if (reconcile_rules[i].fn && on_side(&reconcile_rules[i]))
            sd->rc = run_rule(&sd->r, i);
    if (sd->rc != TRACE_OK)
        snprintf(sd->err, sizeof(sd->err), "%s", trace_error_last());
    return NULL;
}

static int run_rules(struct run *r)
{
    struct side sd;
    int started = 0, rc = TRACE_OK;

    /* the side run shares the records and everything read-only; not the
     * verification job, which its thread writes meanwhile */
    memcpy(&sd.r, r, offsetof(struct run, verify));
    memset(&sd.r.verify, 0, sizeof(sd.r.verify));
    memcpy((char *)&sd.r + offsetof(struct run, verify) + sizeof(r->verify),
           (const char *)r + offsetof(struct run, verify) + sizeof(r->verify),
           sizeof(*r) - offsetof(struct run, verify) - sizeof(r->verify));
    sd.r.alerts = NULL;
    sd.r.n_alerts = sd.r.cap_alerts = 0;
    sd.r.digest = NULL;
    if ((sd.r.a = arena_new(0)))
        arena_set_block(sd.r.a, 4u << 20);
    if (sd.r.a && pthread_create(&sd.thread, NULL, side_run, &sd) == 0)
        started = 1;
    for (size_t i = 0; i < N_RULES && rc == TRACE_OK; i++)
        if (reconcile_rules[i].fn &&
            (!started || !on_side(&reconcile_rules[i])))
            rc = run_rule(r, i);
    if (!started) {
        arena_free(sd.r.a);
        return rc;
    }
    pthread_join(sd.thread, NULL);
    if (rc == TRACE_OK && sd.rc != TRACE_OK)
        rc = trace_fail(sd.rc, "%s", sd.err);
    if (rc == TRACE_OK && sd.r.n_alerts) {
        size_t n = r->n_alerts + sd.r.n_alerts;
        struct alert *p =
            n > r->cap_alerts ? realloc(r->alerts, n * sizeof(*p)) : r->alerts;
        if (!p)
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
        else {
            memcpy(p + r->n_alerts, sd.r.alerts, sd.r.n_alerts * sizeof(*p));
            r->alerts = p;
            r->cap_alerts = n > r->cap_alerts ? n : r->cap_alerts;
            r->n_alerts = n;
        }
    }
    free(sd.r.alerts);
    sha256_stream_free(sd.r.digest);
    /* the alerts' details and evidence live in the side's arena */
    if (rc == TRACE_OK) {
        r->a3 = sd.r.a;
        sd.r.a = NULL;
    }
    arena_free(sd.r.a);
    return rc;
}

int trace_reconcile(trace_ledger *l, const trace_reconcile_opts *opts,
                    trace_alert_fn fn, void *ctx,
                    trace_reconcile_summary *summary)
{
    trace_reconcile_opts def = TRACE_RECONCILE_OPTS_INIT;
    struct run r;
    int *is_new = NULL;
    struct timespec t0, t1;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!opts)
        opts = &def;
    if (!time_asked_ok(opts->as_of_us))
        return trace_fail(TRACE_EINVAL, "reconcile: the as-of time is out of "
                                        "range (years 1 to 9999)");
    memset(&r, 0, sizeof(r));
    r.l = l;
    r.as_of = opts->as_of_us == INT64_MAX ? time_now_us() : opts->as_of_us;
    if ((r.a = arena_new(0)))
        arena_set_block(r.a, 4u << 20);
    r.strings = strmap_new(0);
    r.subs = strmap_new(sizeof(struct subst_facts));
    if (!r.a || !r.strings || !r.subs) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load_config(&r, opts)) != TRACE_OK)
        goto out;
    /* CHAIN_BROKEN's verification needs nothing of the rest: it runs on
     * another core meanwhile (inline in rule_chain if no thread starts) */
    r.verify.l = l;
    r.verify.keep = opts->version >= 2 && opts->incremental;
    r.verify.resume = r.verify.keep && !opts->full;
    if (r.cfg[N_RULES - 1].enabled &&
        pthread_create(&r.verify.thread, NULL, verify_job_run, &r.verify) == 0)
        r.verify.started = 1;
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &r.txn))) {
        r.txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if (opts->version >= 2 && opts->incremental) {
        r.incremental = 1;
        if ((rc = inc_plan(&r)) != TRACE_OK)
            goto out;
        if (opts->full)
            r.partial = 0; /* read everything, keep the state */
    }
    if (r.partial && (rc = inc_load(&r)) != TRACE_OK)
        goto out;
    if (!r.partial) { /* a full run, or an incremental one that must be */
        big_free(r.recs);
        r.recs = NULL;
        r.n = r.cap = r.n_new = 0;
        if ((rc = load_events(&r)) != TRACE_OK)
            goto out;
    } else if (r.n) { /* loaded by scope: back into journal order */
        qsort(r.recs, r.n, sizeof(*r.recs), cmp_seq);
    }
    if ((rc = sort_by_at(&r)) != TRACE_OK)
        goto out;
    if ((rc = run_rules(&r)) != TRACE_OK)
        goto out;
    if (rc != TRACE_OK)
        goto out;
    /* the same order on every run: rule, then evidence in time */
    if (r.n_alerts)
        qsort(r.alerts, r.n_alerts, sizeof(*r.alerts), cmp_alert);
    /* drop alerts of disabled rules raised by shared functions */
    size_t kept = 0;
    for (size_t i = 0; i < r.n_alerts; i++)
        if (r.cfg[r.alerts[i].rule - reconcile_rules].enabled)
            r.alerts[kept++] = r.alerts[i];
    r.n_alerts = kept;
    if (!(is_new = calloc(r.n_alerts + 1, sizeof(*is_new)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if (!opts->dry_run) {
        struct store_job job = {&r, is_new, ""};
        /* the read transaction ends first: the store may wait for
         * another thread (store_via), which may have to grow the map */
        ledger_txn_abort(l, r.txn);
        r.txn = NULL;
        rc = opts->version >= 3 && opts->store_via
                 ? opts->store_via(store_job_run, &job, opts->store_ctx)
                 : store_job_run(&job);
        if (rc != TRACE_OK) {
            if (job.err[0])
                trace_fail(rc, "%s", job.err);
            goto out;
        }
        /* statuses as of now, the new alerts included */
        if ((rc = ledger_txn_begin(l, MDB_RDONLY, &r.txn))) {
            rc = trace_fail_mdb(rc, "begin");
            goto out;
        }
    }
    for (size_t i = 0; i < r.n_alerts && rc == TRACE_OK; i++)
        rc = emit_alert(&r, &r.alerts[i], is_new[i], fn, ctx);
    if (summary) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        summary->events = r.n;
        summary->partial = r.partial;
        summary->new_events = r.partial ? r.n_new : r.n;
        summary->alerts = r.n_alerts;
        summary->new_alerts = 0;
        for (size_t i = 0; i < r.n_alerts; i++)
            summary->new_alerts += (uint64_t)is_new[i];
        summary->seconds = (double)(t1.tv_sec - t0.tv_sec) +
                           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    }
out:
    if (r.verify.started)
        pthread_join(r.verify.thread, NULL);
    if (r.txn)
        ledger_txn_abort(l, r.txn);
    free(is_new);
    free(r.verify.state);
    arena_free(r.tmp);
    strmap_free(r.loaded);
    for (int i = 0; i < N_SCOPES; i++)
        strmap_free(r.scopes[i]);
    strmap_free(r.reopen);
    big_free(r.recs);
    big_free(r.by_at);
    big_free(r.by_id);
    strmap_free(r.custody);
    big_free(r.cnext);
    free(r.alerts);
    sha256_stream_free(r.digest);
    strmap_free(r.strings);
    strmap_free(r.subs);
    arena_free(r.a);
    arena_free(r.a2);
    arena_free(r.a3);
    return rc;
}

int trace_alerts(trace_ledger *l, const trace_alert_filter *f,
                 trace_alert_fn fn, void *ctx)
{
    trace_alert_filter def = TRACE_ALERT_FILTER_INIT;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v, av;
    int rc;

    if (!f)
        f = &def;
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, l->dbi_alertseq, &cur))) {
        rc = trace_fail_mdb(rc, "alerts");
        goto out;
    }
    if (f->after == UINT64_MAX) {
        rc = MDB_NOTFOUND; /* nothing is stored after the last position */
    } else if (f->after) {
        uint8_t start[8];
        be64_put(start, f->after + 1);
        k = (MDB_val){8, start};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *o, *evs;
        char buf[33], id[64], ack_at[64];
        const char *status;
        struct ack ack;
        trace_event_ref refs[64];
        size_t n = 0;

        if (k.mv_size != 8 || v.mv_size >= sizeof(id) ||
            mdb_get(txn, l->dbi_alerts, &v, &av) != 0)
            continue;
        memcpy(id, v.mv_data, v.mv_size);
        id[v.mv_size] = '\0';
        status = alert_status(txn, l, id, buf, sizeof(buf));
        if (!(o = json_loadb(av.mv_data, av.mv_size, 0, NULL)))
            continue;
#define S(key) json_string_value(json_object_get(o, key))
        if ((f->status && strcmp(f->status, status) != 0) ||
            (f->rule && (!S("rule") || strcmp(f->rule, S("rule")) != 0)) ||
            (f->party && !((S("party") && strcmp(S("party"), f->party) == 0) ||
                           (S("counterparty") &&
                            strcmp(S("counterparty"), f->party) == 0)))) {
            json_decref(o);
            continue;
        }
        evs = json_object_get(o, "events");
        for (size_t i = 0; i < json_array_size(evs) && n < 64; i++, n++) {
            refs[n].party = json_string_value(
                json_object_get(json_array_get(evs, i), "party"));
            refs[n].id = json_string_value(
                json_object_get(json_array_get(evs, i), "id"));
        }
        json_object_set_new(o, "status", json_string(status));
        alert_ack(txn, l, id, &ack);
        ack_at[0] = '\0';
        if (ack.at_us) {
            Trace__V1__Time t = TRACE__V1__TIME__INIT;
            json_t *ao = json_object();
            t.us = ack.at_us;
            t.has_offset_min = 1;
            t.offset_min = trace_ledger_tz(l);
            if (time_format(ack_at, sizeof(ack_at), &t) != TRACE_OK)
                ack_at[0] = '\0';
            json_object_set_new(ao, "by",
                                ack.has_by ? json_string(ack.by) : json_null());
            json_object_set_new(ao, "at", json_string(ack_at));
            json_object_set_new(
                ao, "note", ack.has_by ? json_string(ack.note) : json_null());
            json_object_set_new(o, "ack", ao);
        }
        char *json = json_dumps(o, JSON_COMPACT);
        trace_alert a = {id,
                         S("rule"),
                         S("severity"),
                         S("party"),
                         S("counterparty"),
                         S("substance"),
                         S("lot"),
                         S("permit"),
                         n,
                         refs,
                         S("detail"),
                         status,
                         0,
                         json,
                         be64_get(k.mv_data),
                         ack.at_us && ack.has_by ? ack.by : NULL,
                         ack.at_us ? ack_at : NULL,
                         ack.at_us && ack.has_by ? ack.note : NULL};
#undef S
        rc = json ? fn(&a, ctx) : TRACE_ENOMEM;
        free(json);
        json_decref(o);
        if (rc != 0)
            goto out;
    }
    rc = rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "alerts");
out:
    if (cur)
        mdb_cursor_close(cur);
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_rules_describe(trace_rule_info_fn fn, void *ctx)
{
    for (size_t i = 0; i < N_RULES; i++) {
        char params[256] = "";
        size_t o = 0;
        for (int k = 0; k < MAX_PARAMS && reconcile_rules[i].pname[k]; k++)
            o += (size_t)snprintf(params + o, sizeof(params) - o, "%s%s=%g",
                                  k ? " " : "", reconcile_rules[i].pname[k],
                                  reconcile_rules[i].pdef[k]);
        int rc = fn(reconcile_rules[i].code, reconcile_rules[i].severity,
                    params, reconcile_rules[i].summary, ctx);
        if (rc)
            return rc;
    }
    return TRACE_OK;
}
