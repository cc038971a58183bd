/* SPDX-License-Identifier: Apache-2.0 */
/*
 * application.c - permit applications (SPEC 12, 网上审批): where each
 * stands, and the working-day arithmetic that APPLICATION_OVERDUE and
 * `tracectl applications` share.
 *
 * The apps index (state.c) files under "applicant \0 id" the entry of
 * the application in force (APP_FILED; a correction's entry when the
 * applicant corrected it) and the entry of its answer in force, a
 * rejection (APP_REJECTED) or an approving permit (APP_PERMIT).  The
 * append path refuses a second answer, so a key holds at most one.
 * Listing is one walk of that index; nothing here reads the journal but
 * the few entries the index names.
 *
 * Working days are Monday to Friday of the ledger's zone; public
 * holidays and make-up working days (调休) are not known to the ledger.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "trace/query.h"

#define US_PER_DAY 86400000000LL

/* The local day number (days since 1970-01-01) of an instant. */
static int64_t local_day(int64_t us, int tz_min)
{
    int64_t local = us + (int64_t)tz_min * 60 * 1000000;
    return local / US_PER_DAY - (local % US_PER_DAY < 0);
}

/* 1 on Monday to Friday: 1970-01-01 was a Thursday. */
static int workday(int64_t day)
{
    return (((day + 3) % 7) + 7) % 7 < 5;
}

int64_t workday_deadline(int64_t at, int tz_min, int n, char date[11])
{
    int64_t day = local_day(at, tz_min);
    struct tm tm;
    time_t t;

    for (int k = 0; k < n;)
        k += workday(++day);
    t = (time_t)(day * 86400);
    if (!gmtime_r(&t, &tm) || strftime(date, 11, "%Y-%m-%d", &tm) == 0)
        snprintf(date, 11, "?");
    return (day + 1) * US_PER_DAY - 1 - (int64_t)tz_min * 60 * 1000000;
}

uint32_t workdays_between(int64_t from, int64_t to, int tz_min)
{
    int64_t d = local_day(from, tz_min), end = local_day(to, tz_min);
    uint32_t n = 0;

    if (end - d > 366 * 100)
        end = d + 366 * 100; /* a century is plenty */
    while (d < end)
        n += (uint32_t)workday(++d);
    return n;
}

/* One application: its entries in the index, the answer's if any. */
static int one(trace_ledger *l, MDB_txn *txn, arena *a, const char *party,
               uint64_t filed, uint64_t answer, int64_t now_us,
               trace_application_fn fn, void *ctx)
{
    const Trace__V1__PermitApplicationBody *b;
    trace_application_row row;
    Trace__V1__Event *ev, *ans = NULL;
    int64_t until = now_us;
    int rc;

    if ((rc = load_effective(txn, l, a, filed, &ev)) != TRACE_OK)
        return rc;
    if (ev->body_case != TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY ||
        strcmp(ev->party, party) != 0)
        return trace_fail(TRACE_EVERIFY,
                          "apps index: entry %llu is not an application of %s",
                          (unsigned long long)filed, party);
    if (answer && (rc = load_effective(txn, l, a, answer, &ans)) != TRACE_OK)
        return rc;
    b = ev->permit_application_body;
    memset(&row, 0, sizeof(row));
    row.party = ev->party;
    row.id = ev->id;
    row.at = format_time(a, ev->at);
    row.kind = b->kind;
    row.substance = canonical_substance(l, b->substance);
    row.qty = format_qty(a, b->qty->amount, b->qty->unit);
    row.unit = b->qty->unit;
    row.counterparty = b->counterparty;
    row.purpose = b->purpose;
    row.valid_from = format_time(a, b->valid_from);
    row.valid_until = format_time(a, b->valid_until);
    row.uses = b->uses;
    row.state = "pending";
    if (ans) {
        row.decided_by = ans->party;
        row.decision = ans->id;
        row.decided_at = format_time(a, ans->at);
        until = ans->at->us;
        if (ans->body_case == TRACE__V1__EVENT__BODY_PERMIT_BODY) {
            row.state = "approved";
            row.permit = ans->permit_body->permit;
        } else if (ans->body_case ==
                   TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY) {
            row.state = ans->application_decision_body->decision;
            row.reason = ans->application_decision_body->reason;
        }
    }
    if (!row.at || !row.qty || !row.valid_from || !row.valid_until ||
        (ans && !row.decided_at))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (until == TRACE_AT_NOW)
        until = (int64_t)time(NULL) * 1000000;
    row.days = workdays_between(ev->at->us, until, l->tz_offset_min);
    return fn(&row, ctx);
}

int trace_applications(trace_ledger *l, const char *party, int64_t now_us,
                       trace_application_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t plen = party ? strlen(party) + 1 : 0; /* with its NUL */
    arena *a;
    int rc;

    if (!time_asked_ok(now_us))
        return trace_fail(TRACE_EINVAL, "applications: the time is out of "
                                        "range (years 1 to 9999)");
    if (!(a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        arena_free(a);
        return trace_fail_mdb(rc, "begin");
    }
    if (!l->dbi_apps) {
        rc = TRACE_OK; /* an older ledger another process writes */
        goto out;
    }
    if ((rc = mdb_cursor_open(txn, l->dbi_apps, &cur))) {
        rc = trace_fail_mdb(rc, "apps");
        goto out;
    }
    k = (MDB_val){plen, (void *)party};
    rc = mdb_cursor_get(cur, &k, &v, party ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        char who[256];
        uint64_t filed = 0, answer = 0;
        const char *kp = k.mv_data;
        size_t n = strnlen(kp, k.mv_size);
        int frc;

        if (party && (k.mv_size < plen || memcmp(kp, party, plen) != 0))
            break;
        if (n >= sizeof(who) || n == k.mv_size) {
            rc = trace_fail(TRACE_EVERIFY, "apps index: a damaged key");
            goto out;
        }
        memcpy(who, kp, n);
        who[n] = '\0';
        for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
            if (v.mv_size != 9)
                continue;
            if (((const uint8_t *)v.mv_data)[8] == APP_FILED)
                filed = be64_get(v.mv_data);
            else
                answer = be64_get(v.mv_data);
        }
        if (rc != MDB_NOTFOUND) {
            rc = trace_fail_mdb(rc, "apps");
            goto out;
        }
        arena_reset(a);
        if (filed &&
            (frc = one(l, txn, a, who, filed, answer, now_us, fn, ctx)) != 0) {
            rc = frc;
            goto out;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
    }
    rc = rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "apps");
out:
    if (cur)
        mdb_cursor_close(cur);
    ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}
