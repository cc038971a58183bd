/* SPDX-License-Identifier: Apache-2.0 */
/*
 * credit.c - enterprise credit evaluation (企业信用评价, SPEC 12).
 *
 * A party's score is 100 less the weighted count of what the ledger
 * holds against it over the twelve months before the time asked:
 *
 *   stored alerts naming it as `party`, by severity, open (or only
 *   acknowledged) apart from resolved ones; LATE_REPORT and
 *   STOCKTAKE_VARIANCE alerts counted as their own factors (late reports,
 *   stocktake variances), not again by severity; and its `loss` events
 *   in force (not one a correction voided; a corrected one as corrected).
 *
 * An alert counts in the window of its first evidence event's `at`.
 * Asked for a department (trace_credit_within with scopes), only the
 * alerts and losses it may read count (trace_alert_in_scope,
 * trace_in_scope): its score is the one its own records justify.  The
 * score is floored at 0 and rounded to a whole number; the grade is A
 * (>= 90), B (>= 75), C (>= 60) or D.  Weights come from the rules file
 * (`{"credit": {"weights": {"open_high": 10, ...}}}`), the same file
 * reconciliation reads, so every place that shows the figure computes
 * it from one function with one set of weights.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "trace/query.h"
#include "trace/reconcile.h"

static const struct {
    const char *name, *zh;
    double weight;
} factor_defs[TRACE_CREDIT_FACTORS] = {
    {"open_critical", "严重预警（未处理）", 25},
    {"open_high", "高级预警（未处理）", 10},
    {"open_medium", "中级预警（未处理）", 4},
    {"open_low", "低级预警（未处理）", 1},
    {"resolved_critical", "严重预警（已处理）", 5},
    {"resolved_high", "高级预警（已处理）", 2},
    {"resolved_medium", "中级预警（已处理）", 1},
    {"resolved_low", "低级预警（已处理）", 0},
    {"late_reports", "迟报", 2},
    {"stocktake_variances", "盘点差异", 5},
    {"losses", "丢失、被盗", 5},
};
enum { F_LATE = 8, F_VARIANCE = 9, F_LOSS = 10 };

#define YEAR_US (365LL * 86400 * 1000000)

/* The weights of the rules file's "credit" object over the defaults. */
static int load_weights(trace_credit_score *c, const char *rules, size_t len)
{
    json_error_t jerr;
    json_t *root, *w;
    const char *key;
    json_t *v;
    int rc = TRACE_OK;

    for (size_t i = 0; i < TRACE_CREDIT_FACTORS; i++)
        c->factors[i].weight = factor_defs[i].weight;
    if (!rules)
        return TRACE_OK;
    if (!(root = json_loadb(rules, len, JSON_REJECT_DUPLICATES, &jerr)) ||
        !json_is_object(root)) {
        json_decref(root);
        return trace_fail(TRACE_EINVAL, "rules file: %s (line %d)",
                          root ? "must be an object" : jerr.text, jerr.line);
    }
    w = json_object_get(json_object_get(root, "credit"), "weights");
    if (json_object_get(root, "credit") && !json_is_object(w))
        rc = trace_fail(TRACE_EINVAL, "rules file: credit must be "
                                      "{\"weights\": {FACTOR: NUMBER, ...}}");
    json_object_foreach(w, key, v)
    {
        size_t i;
        for (i = 0; i < TRACE_CREDIT_FACTORS; i++)
            if (strcmp(factor_defs[i].name, key) == 0)
                break;
        if (i == TRACE_CREDIT_FACTORS || !json_is_number(v) ||
            json_number_value(v) < 0 || json_number_value(v) > 100) {
            rc = trace_fail(TRACE_EINVAL,
                            "rules file: credit.weights.%s is not a factor, "
                            "or not a number from 0 to 100",
                            key);
            break;
        }
        c->factors[i].weight = json_number_value(v);
    }
    json_decref(root);
    return rc;
}

struct walk {
    trace_ledger *l;
    MDB_txn *txn;
    arena *a;
    trace_credit_score *c;
    unsigned scopes; /* count only what these departments read; 0: all */
};

/* The `at` of event (party, id), or 0 and non-zero if the ledger has no
 * such event. */
static int event_at(struct walk *w, const char *party, const char *id,
                    int64_t *at)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;

    if (!klen || mdb_get(w->txn, w->l->dbi_ids, &k, &v) != 0 || v.mv_size != 8)
        return -1;
    if (entry_get(w->txn, w->l, w->a, be64_get(v.mv_data), &e) != TRACE_OK ||
        !(ev = event_decode(w->a, e->event.data, e->event.len)) || !ev->at)
        return -1;
    *at = ev->at->us;
    return 0;
}

static int on_alert(const trace_alert *a, void *ctx)
{
    struct walk *w = ctx;
    trace_credit_score *c = w->c;
    static const char *const sev[] = {"critical", "high", "medium", "low"};
    int64_t at;
    size_t f;

    if (!a->party || strcmp(a->party, c->party) != 0 || !a->n_events)
        return 0;
    arena_reset(w->a);
    if (event_at(w, a->events[0].party, a->events[0].id, &at) != 0 ||
        at <= c->from_us || at > c->to_us)
        return 0;
    if (w->scopes) {
        /* a department counts the alerts it may read (access.c) */
        json_t *j = json_loads(a->json, 0, NULL);
        int in = j && alert_in_scope(w->txn, w->l, w->a, w->scopes, j, 0);
        json_decref(j);
        if (!in)
            return 0;
    }
    if (strcmp(a->rule, "LATE_REPORT") == 0)
        f = F_LATE;
    else if (strcmp(a->rule, "STOCKTAKE_VARIANCE") == 0)
        f = F_VARIANCE;
    else {
        for (f = 0; f < 4 && strcmp(sev[f], a->severity) != 0; f++)
            ;
        if (f == 4)
            return 0; /* info */
        if (a->status && strcmp(a->status, "resolved") == 0)
            f += 4;
    }
    c->factors[f].count++;
    return 0;
}

/* A loss as in force: itself, the replacement of the correction in
 * force for it, or NULL if a correction voided it. */
static Trace__V1__Event *loss_in_force(struct walk *w, const char *party,
                                       Trace__V1__Event *ev)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, ev->id, strlen(ev->id));
    MDB_val k = {klen, key}, v;
    Trace__V1__Entry *e;
    Trace__V1__Event *c;

    if (!klen || mdb_get(w->txn, w->l->dbi_eff, &k, &v) != 0 || v.mv_size < 8 ||
        entry_get(w->txn, w->l, w->a, be64_get(v.mv_data), &e) != TRACE_OK ||
        !(c = event_decode(w->a, e->event.data, e->event.len)) ||
        c->body_case != TRACE__V1__EVENT__BODY_CORRECTION_BODY)
        return ev; /* not corrected */
    if (!c->correction_body->has_replacement)
        return NULL;
    c = event_decode(w->a, c->correction_body->replacement.data,
                     c->correction_body->replacement.len);
    return c && c->at ? c : NULL;
}

/* The party's loss events in force in the window. */
static int count_losses(struct walk *w)
{
    trace_credit_score *c = w->c;
    MDB_cursor *cur;
    MDB_val k = {strlen(c->party), (void *)c->party}, v;
    int rc;

    if ((rc = mdb_cursor_open(w->txn, w->l->dbi_pchain, &cur)))
        return trace_fail_mdb(rc, "pchain");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        Trace__V1__Entry *e;
        Trace__V1__Event *ev;
        arena_reset(w->a);
        if (v.mv_size != 8 ||
            (rc = entry_get(w->txn, w->l, w->a, be64_get(v.mv_data), &e)) !=
                TRACE_OK)
            break;
        if (!(ev = event_decode(w->a, e->event.data, e->event.len))) {
            rc = trace_fail(TRACE_EVERIFY, "entry %llu cannot be decoded",
                            (unsigned long long)be64_get(v.mv_data));
            break;
        }
        if (ev->body_case == TRACE__V1__EVENT__BODY_LOSS_BODY &&
            !(ev = loss_in_force(w, c->party, ev)))
            continue;
        if (ev->body_case == TRACE__V1__EVENT__BODY_LOSS_BODY &&
            ev->at->us > c->from_us && ev->at->us <= c->to_us &&
            trace_in_scope(w->l, w->scopes, "loss", ev->loss_body->substance))
            c->factors[F_LOSS].count++;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = TRACE_OK;
    else if (rc > 0)
        rc = trace_fail_mdb(rc, "pchain");
    return rc;
}

int trace_credit(trace_ledger *l, const char *party, int64_t at_us,
                 const char *rules_json, size_t rules_len,
                 trace_credit_score *out)
{
    return trace_credit_within(l, party, at_us, 0, rules_json, rules_len, out);
}

int trace_credit_within(trace_ledger *l, const char *party, int64_t at_us,
                        unsigned scopes, const char *rules_json,
                        size_t rules_len, trace_credit_score *out)
{
    trace_alert_filter f = TRACE_ALERT_FILTER_INIT;
    Trace__V1__PartyState *st;
    struct walk w = {l, NULL, NULL, out, scopes};
    double lost = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!party || !trace_party_id_valid(party))
        return trace_fail(TRACE_EINVAL, "credit: not a party id");
    if (!time_asked_ok(at_us))
        return trace_fail(TRACE_EINVAL,
                          "credit: the time is out of range (years 1 to "
                          "9999)");
    snprintf(out->party, sizeof(out->party), "%s", party);
    out->to_us = at_us == TRACE_AT_NOW ? time_now_us() : at_us;
    out->from_us = out->to_us - YEAR_US;
    out->n_factors = TRACE_CREDIT_FACTORS;
    for (size_t i = 0; i < TRACE_CREDIT_FACTORS; i++) {
        out->factors[i].factor = factor_defs[i].name;
        out->factors[i].label_zh = factor_defs[i].zh;
    }
    if ((rc = load_weights(out, rules_json, rules_len)) != TRACE_OK)
        return rc;
    if (!(w.a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &w.txn))) {
        arena_free(w.a);
        return trace_fail_mdb(rc, "begin");
    }
    rc = party_state_get(w.txn, l, w.a, party, &st);
    if (rc == TRACE_ENOTFOUND)
        rc = trace_fail(rc, "unknown party %s", party);
    if (rc == TRACE_OK)
        rc = count_losses(&w);
    ledger_txn_abort(l, w.txn);
    /* the alerts, each with the `at` of its first evidence (a read
     * transaction per look-up: trace_alerts holds its own) */
    if (rc == TRACE_OK) {
        f.party = party;
        if ((rc = ledger_txn_begin(l, MDB_RDONLY, &w.txn)))
            rc = trace_fail_mdb(rc, "begin");
        else {
            rc = trace_alerts(l, &f, on_alert, &w);
            ledger_txn_abort(l, w.txn);
        }
    }
    arena_free(w.a);
    if (rc != TRACE_OK)
        return rc;
    {
        Trace__V1__Time t = TRACE__V1__TIME__INIT;
        t.has_offset_min = 1;
        t.offset_min = l->tz_offset_min;
        t.us = out->from_us;
        time_format(out->from, sizeof(out->from), &t);
        t.us = out->to_us;
        time_format(out->to, sizeof(out->to), &t);
    }
    for (size_t i = 0; i < TRACE_CREDIT_FACTORS; i++) {
        out->factors[i].points = out->factors[i].count * out->factors[i].weight;
        lost += out->factors[i].points;
    }
    out->score = lost >= 100 ? 0 : (unsigned)(100 - lost + 0.5);
    out->grade = out->score >= 90   ? 'A'
                 : out->score >= 75 ? 'B'
                 : out->score >= 60 ? 'C'
                                    : 'D';
    return TRACE_OK;
}
