/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops_checks.c - the handlers of the checks: alerts, reconciliation,
 * credit and check; verify and backup; the log's checkpoints, proofs and
 * cosignatures.  Like ops_query.c's, they pass Items on through emit()
 * (ops.c) and keep no state; who may run them is decided in ops.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ops_int.h"
#include "trace/proof.h"
#include "trace/reconcile.h"
#include "trace/trace.h"

/* ------------------------------------------------------------------ */
/* alerts, reconcile                                                    */

static int on_alert(const trace_alert *a, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Alert m = TRACE__OPS__V1__ALERT__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.id = (char *)a->id;
    m.rule = (char *)a->rule;
    m.severity = (char *)a->severity;
    m.status = (char *)a->status;
    m.party = (char *)a->party;
    m.detail = (char *)a->detail;
    m.json = (char *)a->json;
    m.position = a->position;
    m.ack_by = (char *)a->ack_by;
    m.ack_at = (char *)a->ack_at;
    m.ack_note = (char *)a->ack_note;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_ALERT;
    it.alert = &m;
    return emit_at(r, &it, a->position);
}

int run_alerts(struct run *r)
{
    const Trace__Ops__V1__Alerts *x = r->call->alerts;
    trace_alert_filter f = TRACE_ALERT_FILTER_INIT;

    f.status = x->status;
    f.rule = x->rule;
    f.party = x->party;
    if (!reads_party(r->who, ""))
        f.party = r->who->party; /* alerts naming the requester */
    f.after = x->after;
    return ended(r, trace_alerts(r->l, &f, on_alert, r));
}

int run_reconcile(struct run *r)
{
    const Trace__Ops__V1__Reconcile *x = r->call->reconcile;
    Trace__Ops__V1__ReconcileSummary m =
        TRACE__OPS__V1__RECONCILE_SUMMARY__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum = {0};
    int rc;

    if (x->has_as_of_us)
        ro.as_of_us = x->as_of_us;
    ro.dry_run = x->has_dry_run && x->dry_run;
    ro.incremental = x->has_incremental && x->incremental;
    if (x->has_rules) {
        ro.rules_json = (const char *)x->rules.data;
        ro.rules_len = x->rules.len;
    } else if (r->env->rules_json) {
        ro.rules_json = r->env->rules_json;
        ro.rules_len = r->env->rules_len;
    }
    ro.store_via = r->env->store_via;
    ro.store_ctx = r->env->store_ctx;
    if ((rc = trace_reconcile(r->l, &ro, on_alert, r, &sum)) != TRACE_OK)
        return ended(r, rc);
    m.alerts = sum.alerts;
    m.new_alerts = sum.new_alerts;
    m.events = sum.events;
    m.new_events = sum.new_events;
    m.seconds = sum.seconds;
    m.partial = sum.partial != 0;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_SUMMARY;
    it.summary = &m;
    return ended(r, emit(r, &it));
}

/* ------------------------------------------------------------------ */
/* verify, backup                                                       */

/* verify --deep reports its two passes as one: the journal's entries
 * are the first half of the work, the indexes' the second. */
struct two_phase {
    const ops_env *env;
    int second;
};

static void phase_progress(uint64_t done, uint64_t total, void *ctx)
{
    const struct two_phase *p = ctx;
    if (!p->env->progress || !total)
        return;
    /* in units of 1/1000 of each half */
    p->env->progress(p->second * 1000 + done * 1000 / total, 2000,
                     p->env->progress_ctx);
}

static int phase_stop(void *ctx)
{
    const struct two_phase *p = ctx;
    return p->env->stop ? p->env->stop(p->env->progress_ctx) : 0;
}

int run_verify(struct run *r)
{
    Trace__Ops__V1__Verified m = TRACE__OPS__V1__VERIFIED__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    const int deep = r->call->verify->has_deep && r->call->verify->deep;
    struct two_phase ph = {r->env, 0};
    trace_verify_deep_result *dres = NULL;
    trace_verify_result res;
    uint8_t head[32];
    uint64_t size;
    int rc, erc;

    memset(&res, 0, sizeof(res));
    if (r->call->verify->from_checkpoint)
        rc = trace_ledger_verify_checkpoint(
            r->l, &res, r->call->verify->from_checkpoint,
            strlen(r->call->verify->from_checkpoint),
            deep ? (r->env->progress ? phase_progress : NULL)
                 : r->env->progress,
            deep ? (r->env->stop ? phase_stop : NULL) : r->env->stop,
            deep ? (void *)&ph : r->env->progress_ctx);
    else if (deep)
        rc = trace_ledger_verify_stoppable(
            r->l, &res, r->env->progress ? phase_progress : NULL,
            r->env->stop ? phase_stop : NULL, &ph);
    else
        rc = trace_ledger_verify_stoppable(r->l, &res, r->env->progress,
                                           r->env->stop, r->env->progress_ctx);
    if (rc == TRACE_OK && (rc = trace_ledger_head(r->l, &size, head)) != 0)
        return failed(r, rc);
    if (rc == TRACE_OK && deep) {
        /* the indexes, once the journal they derive from holds */
        if (!(dres = calloc(1, sizeof(*dres))))
            return failed(r, TRACE_ENOMEM);
        ph.second = 1;
        rc = trace_ledger_verify_deep(r->l, NULL, dres,
                                      r->env->progress ? phase_progress : NULL,
                                      r->env->stop ? phase_stop : NULL, &ph);
        if (rc != TRACE_OK && rc != TRACE_EVERIFY) {
            free(dres);
            return failed(r, rc);
        }
        m.has_deep = m.deep = 1;
        m.has_index_records = 1;
        m.index_records = dres->records;
        if (rc == TRACE_EVERIFY) {
            res.bad_seq = dres->bad_seq;
            if (dres->index[0]) {
                m.index = dres->index;
                m.index_key = dres->key;
                m.problem = dres->problem;
                m.expected = dres->expected;
                m.found = dres->found;
            }
        }
    }
    if (rc != TRACE_OK && rc != TRACE_EVERIFY)
        return failed(r, rc);
    m.ok = rc == TRACE_OK;
    m.has_entries = m.has_signatures = 1;
    m.entries = res.entries;
    m.signatures = res.groups;
    m.has_checkpoints = 1;
    m.checkpoints = res.checkpoints;
    if (m.ok) {
        m.has_head = 1;
        m.head.data = head;
        m.head.len = sizeof(head);
    } else {
        m.has_bad_seq = 1;
        m.bad_seq = res.bad_seq;
        m.reason = dres && dres->reason[0] ? dres->reason : res.reason;
    }
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_VERIFIED;
    it.verified = &m;
    if ((erc = emit(r, &it)) != 0) {
        free(dres);
        return ended(r, erc);
    }
    if (!m.ok) {
        erc = ops_status_set(r->st, 3, "verify FAILED: %s",
                             m.reason[0] ? m.reason : trace_error_last());
        free(dres);
        return erc;
    }
    free(dres);
    return 0;
}

int run_backup(struct run *r)
{
    const char *dest = r->call->backup->dest;
    Trace__Ops__V1__BackedUp m = TRACE__OPS__V1__BACKED_UP__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    char path[4096];
    int rc;

    if (r->env->daemon) {
        /* a plain name inside the daemon's backup-dir, never a path a
         * client chooses */
        if (!r->env->backup_dir)
            return denied(r, "%s",
                          "this daemon takes no backups (set backup-dir)");
        if (!trace_party_id_valid(dest))
            return ops_status_set(r->st, 1,
                                  "backup: DEST must be a plain name "
                                  "(letters, digits, . _ : -), not %.200s",
                                  dest);
        snprintf(path, sizeof(path), "%s/%s", r->env->backup_dir, dest);
        dest = path;
    }
    if ((rc = trace_ledger_backup(r->l, dest)) != TRACE_OK)
        return failed(r, rc);
    m.source = (char *)(r->env->data_dir ? r->env->data_dir : "");
    m.dest = (char *)dest;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_BACKED_UP;
    it.backed_up = &m;
    return ended(r, emit(r, &it));
}

/* ------------------------------------------------------------------ */
/* credit                                                               */

int run_credit(struct run *r)
{
    const Trace__Ops__V1__Credit *x = r->call->credit;
    Trace__Ops__V1__CreditScore m = TRACE__OPS__V1__CREDIT_SCORE__INIT;
    Trace__Ops__V1__CreditFactor f[TRACE_CREDIT_FACTORS],
        *fp[TRACE_CREDIT_FACTORS];
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    trace_credit_score c;
    char grade[2], name[256], scopes[64];
    int rc;

    /* a department's score counts what it may read (its scopes) */
    if (x->has_rules)
        rc = trace_credit_within(
            r->l, x->party, x->has_at_us ? x->at_us : TRACE_AT_NOW,
            r->who->scopes, (const char *)x->rules.data, x->rules.len, &c);
    else
        rc = trace_credit_within(
            r->l, x->party, x->has_at_us ? x->at_us : TRACE_AT_NOW,
            r->who->scopes, r->env->rules_json, r->env->rules_len, &c);
    if (rc != TRACE_OK)
        return ended(r, rc);
    grade[0] = c.grade;
    grade[1] = '\0';
    m.party = c.party;
    m.from = c.from;
    m.to = c.to;
    m.score = c.score;
    m.grade = grade;
    if (trace_party_name(r->l, c.party, name, sizeof(name)) == TRACE_OK)
        m.name = name;
    if (r->who->scopes) {
        trace_scope_names(r->who->scopes, scopes, sizeof(scopes));
        m.scopes = scopes;
    }
    for (size_t i = 0; i < c.n_factors; i++) {
        Trace__Ops__V1__CreditFactor z = TRACE__OPS__V1__CREDIT_FACTOR__INIT;
        z.factor = (char *)c.factors[i].factor;
        z.label_zh = (char *)c.factors[i].label_zh;
        z.count = c.factors[i].count;
        z.weight = c.factors[i].weight;
        z.points = c.factors[i].points;
        f[i] = z;
        fp[i] = &f[i];
    }
    m.n_factors = c.n_factors;
    m.factors = fp;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_CREDIT;
    it.credit = &m;
    return ended(r, emit(r, &it));
}

/* ------------------------------------------------------------------ */
/* check                                                                */

static int on_finding(const trace_finding *f, void *ctx)
{
    struct run *r = ctx;
    Trace__Ops__V1__Finding m = TRACE__OPS__V1__FINDING__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;

    m.code = (char *)f->code;
    m.message = (char *)f->message;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_FINDING;
    it.finding = &m;
    return emit(r, &it);
}

int run_check(struct run *r)
{
    const char *line = r->call->check->line;
    return ended(r, trace_check_json(r->l, line, strlen(line),
                                     TRACE_CHECK_SKEW_US, on_finding, r));
}

/* ------------------------------------------------------------------ */
/* checkpoint, prove                                                    */

/* The log's checkpoints and its key are for anyone: they prove nothing
 * about an event without a bundle. */
int run_checkpoint(struct run *r)
{
    const Trace__Ops__V1__Checkpoint *c = r->call->checkpoint;
    Trace__Ops__V1__Note m = TRACE__OPS__V1__NOTE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    trace_checkpoint *cp = NULL;
    char vkey[512], *note = NULL;
    size_t len;
    int rc;

    if (c->has_public_key && c->public_key) {
        if ((rc = trace_checkpoint_vkey(r->l, vkey, sizeof(vkey))) != TRACE_OK)
            return failed(r, rc);
        m.vkey = vkey;
    } else {
        if ((rc = trace_checkpoint_note(r->l, c->has_size ? c->size : 0, &note,
                                        &len)) != TRACE_OK)
            return failed(r, rc);
        if (!(cp = malloc(sizeof(*cp)))) {
            free(note);
            return ops_status_set(r->st, 6, "out of memory");
        }
        if ((rc = trace_checkpoint_parse(cp, note, len)) != TRACE_OK) {
            free(note);
            free(cp);
            return failed(r, rc);
        }
        m.note = note;
        m.origin = cp->origin;
        m.has_tree_size = 1;
        m.tree_size = cp->size;
        m.has_root = 1;
        m.root.data = cp->root;
        m.root.len = sizeof(cp->root);
    }
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_NOTE;
    it.note = &m;
    rc = ended(r, emit(r, &it));
    free(note);
    free(cp);
    return rc;
}

int run_prove(struct run *r)
{
    const Trace__Ops__V1__Prove *p = r->call->prove;
    Trace__Ops__V1__Bundle m = TRACE__OPS__V1__BUNDLE__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    char *json = NULL;
    size_t len;
    int rc;

    if (p->has_consistency && p->consistency)
        rc = trace_prove_consistency(r->l, p->old_size, p->new_size, &json,
                                     &len);
    else if (p->history)
        rc = trace_prove_history(r->l, p->history, &json, &len);
    else
        rc = trace_prove_event(r->l, p->party, p->id, &json, &len);
    if (rc != TRACE_OK)
        return failed(r, rc);
    m.json = json;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_BUNDLE;
    it.bundle = &m;
    rc = ended(r, emit(r, &it));
    free(json);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cosign                                                               */

/* A witness's cosignature: any registered party hands one in (an
 * outside auditor has no party key, and hands its cosignature to a
 * regulator); the cosignature itself, verifying under the vkey it
 * names, is the witness's authentication.  The library keeps a name's
 * first key and at most TRACE_CHECKPOINT_MAX_WITNESSES names per
 * checkpoint.  It is checked here first, so that nothing unsigned
 * reaches traced's writer, which stores it (env->store_via). */
struct cosign_job {
    trace_ledger *l;
    const Trace__Ops__V1__Cosign *x;
    char err[512]; /* a failure's message, for the handler's thread */
};

static int cosign_store(void *arg)
{
    struct cosign_job *j = arg;
    int rc = trace_checkpoint_add_cosig(j->l, j->x->note, strlen(j->x->note),
                                        j->x->witness_vkey);

    if (rc != TRACE_OK)
        snprintf(j->err, sizeof(j->err), "%s", trace_error_last());
    return rc;
}

int run_cosign(struct run *r)
{
    const Trace__Ops__V1__Cosign *x = r->call->cosign;
    Trace__Ops__V1__Cosigned m = TRACE__OPS__V1__COSIGNED__INIT;
    ops_item_t it = TRACE__OPS__V1__ITEM__INIT;
    struct cosign_job job = {r->l, x, ""};
    trace_checkpoint *cp = malloc(sizeof(*cp));
    uint8_t pub[32];
    char name[256];
    int rc;

    if (!cp)
        return ops_status_set(r->st, 6, "out of memory");
    if ((rc = trace_vkey_parse(x->witness_vkey, name, sizeof(name), pub)) !=
            TRACE_OK ||
        (rc = trace_checkpoint_parse(cp, x->note, strlen(x->note))) !=
            TRACE_OK ||
        (rc = trace_checkpoint_verify_cosig(cp, name, pub, NULL)) != TRACE_OK) {
        free(cp);
        return failed(r, rc);
    }
    rc = r->env->store_via
             ? r->env->store_via(cosign_store, &job, r->env->store_ctx)
             : cosign_store(&job);
    if (rc != TRACE_OK) {
        free(cp);
        return ops_status_set(r->st, trace_error_exit_code(rc), "%s",
                              job.err[0] ? job.err : trace_strerror(rc));
    }
    m.origin = cp->origin;
    m.tree_size = cp->size;
    m.witness = name;
    it.item_case = TRACE__OPS__V1__ITEM__ITEM_COSIGNED;
    it.cosigned = &m;
    rc = ended(r, emit(r, &it));
    free(cp);
    return rc;
}
