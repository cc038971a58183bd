/* SPDX-License-Identifier: Apache-2.0 */
/* test_ops.c - the typed operations (ops/ops.c): who may run what on a
 * small ledger, malformed Calls and the operation table, paged answers
 * and their continuation, and decoding truncated Results.  The
 * renderers are test_render.c's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "ops_test.h"
#include "trace/proof.h"
#include "trace/query.h"
#include "trace/reconcile.h"

#define EV(type, id, party, at, rest)                                          \
    "{\"type\":\"" type "\",\"id\":\"" id "\",\"party\":\"" party              \
    "\",\"at\":\"" at "\"," rest "}\n"
#define SCOPES                                                                 \
    "\"CN-PC-1\",\"CN-PC-2\",\"CN-PC-3\",\"CN-NARC\",\"CN-PSY-1\","            \
    "\"CN-PSY-2\""
#define REG(subject, kind)                                                     \
    EV("party", "r-" subject, "REGULATOR", "2026-01-01T00:00:00+08:00",        \
       "\"subject\":\"" subject "\",\"name\":\"n\",\"kind\":\"" kind           \
       "\",\"region\":\"CN-31\",\"licenses\":[" SCOPES "]")
#define PRODUCE(id, party, at, sub, lot, qty, unit)                            \
    EV("produce", id, party, at,                                               \
       "\"substance\":\"" sub "\",\"lot\":\"" lot "\",\"qty\":\"" qty          \
       "\",\"unit\":\"" unit "\"")
#define SALE(id, party, to, at, sub, lot, qty, unit, extra)                    \
    EV("sale", id, party, at,                                                  \
       "\"to\":\"" to "\",\"substance\":\"" sub "\",\"lot\":\"" lot            \
       "\",\"qty\":\"" qty "\",\"unit\":\"" unit "\"" extra)

/* A regulator, three parties; A produces lot L1 and sells some to B on
 * B's permit PL-B (A its counterparty); C has nothing to do with L1 or
 * PL-B.  Three sales are never received: alerts naming A and B, and C
 * and B. */
/* clang-format off */
static const char *const world =
    REG("A", "manufacturer")
    REG("B", "distributor")
    REG("C", "distributor")
    EV("permit", "p-PL-B", "REGULATOR", "2026-01-01T00:00:00+08:00",
       "\"permit\":\"PL-B\",\"kind\":\"purchase_license\",\"holder\":\"B\","
       "\"counterparty\":\"A\",\"substance\":\"ephedrine\",\"qty\":\"100\","
       "\"unit\":\"kg\",\"valid_from\":\"2026-01-01\","
       "\"valid_until\":\"2026-12-31\",\"uses\":\"multi\"")
    PRODUCE("m1", "A", "2026-01-02T00:00:00+08:00", "ephedrine", "L1", "100",
            "kg")
    PRODUCE("m2", "A", "2026-01-02T01:00:00+08:00", "acetone", "L2", "1000",
            "L")
    PRODUCE("m3", "C", "2026-01-02T00:00:00+08:00", "acetone", "Z1", "1000",
            "L")
    SALE("s1", "A", "B", "2026-01-05T00:00:00+08:00", "ephedrine", "L1", "10",
         "kg", ",\"permit\":\"PL-B\"")
    EV("receipt", "c1", "B", "2026-01-06T00:00:00+08:00",
       "\"from\":\"A\",\"ref\":\"s1\",\"substance\":\"ephedrine\","
       "\"lot\":\"L1\",\"qty\":\"10\",\"unit\":\"kg\"")
    SALE("s2", "A", "B", "2026-01-07T00:00:00+08:00", "acetone", "L2", "100",
         "L", "")
    SALE("s3", "A", "B", "2026-01-08T00:00:00+08:00", "acetone", "L2", "50",
         "L", "")
    SALE("s4", "C", "B", "2026-01-07T00:00:00+08:00", "acetone", "Z1", "100",
         "L", "");
/* clang-format on */

/* 2026-06-01T00:00:00Z */
#define AS_OF 1780272000000000LL
/* 2026-01-01T00:00:00+08:00 and 2026-01-10T00:00:00+08:00 */
#define REG_FROM 1767196800000000LL
#define REG_TO   (REG_FROM + 9 * 86400000000LL)

static int setup(void **state)
{
    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_append_result res;
    fixture *f;

    if (fixture_setup(state) != 0)
        return -1;
    f = *state;
    if (fixture_import(f, world,
                       TRACE_APPEND_PROVISION_KEYS | TRACE_APPEND_HISTORIC,
                       &res) != TRACE_OK) {
        fprintf(stderr, "setup: %s\n", trace_error_last());
        return -1;
    }
    /* the stored alerts the alerts operation lists */
    ro.as_of_us = AS_OF;
    if (trace_reconcile(f->l, &ro, NULL, NULL, NULL) != TRACE_OK) {
        fprintf(stderr, "setup: reconcile: %s\n", trace_error_last());
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Collecting rows                                                      */

#define MAXR 128

struct rows {
    size_t n;
    size_t cap; /* OPS_FULL for the row after `cap` rows; 0: never */
    int stop;   /* with cap: what to return instead of OPS_FULL */
    int kind[MAXR];
    uint64_t pos[MAXR];   /* an event's, line's or alert's position */
    char text[MAXR][512]; /* an export line, an alert's JSON */
    char id[MAXR][24];    /* an alert's id */
    char party[MAXR][24]; /* an alert's, holding's or event's party */
};

static int collect(const ops_item_t *it, void *ctx)
{
    struct rows *r = ctx;
    size_t i = r->n;

    if (r->cap && r->n >= r->cap)
        return r->stop ? r->stop : OPS_FULL;
    assert_true(i < MAXR);
    r->kind[i] = (int)it->item_case;
    r->pos[i] = 0;
    r->text[i][0] = r->id[i][0] = r->party[i][0] = '\0';
    switch (it->item_case) {
    case I(EVENT):
        r->pos[i] = it->event->seq;
        snprintf(r->party[i], sizeof(r->party[i]), "%s", it->event->party);
        snprintf(r->text[i], sizeof(r->text[i]), "%s", it->event->json);
        break;
    case I(LINE):
        r->pos[i] = it->line->seq;
        snprintf(r->text[i], sizeof(r->text[i]), "%s", it->line->json);
        break;
    case I(ALERT):
        r->pos[i] = it->alert->position;
        snprintf(r->id[i], sizeof(r->id[i]), "%s", it->alert->id);
        snprintf(r->text[i], sizeof(r->text[i]), "%s", it->alert->json);
        snprintf(r->party[i], sizeof(r->party[i]), "%s",
                 it->alert->party ? it->alert->party : "");
        break;
    case I(HOLDING):
        snprintf(r->party[i], sizeof(r->party[i]), "%s", it->holding->party);
        break;
    case I(BACKED_UP):
        snprintf(r->text[i], sizeof(r->text[i]), "%s", it->backed_up->dest);
        break;
    case I(CREDIT): /* its score, and the scopes it was counted within */
        r->pos[i] = it->credit->score;
        snprintf(r->text[i], sizeof(r->text[i]), "%s",
                 it->credit->scopes ? it->credit->scopes : "");
        break;
    default:
        break;
    }
    r->n++;
    return 0;
}

static int run(fixture *f, const ops_env *env, const ops_principal *who,
               const ops_call_t *call, struct rows *r, ops_status *st)
{
    memset(r, 0, sizeof(*r));
    return ops_call(f->l, env, who, call, collect, r, st);
}

/* Rows as `who`, which must succeed. */
static size_t rows_of(fixture *f, const ops_principal *who,
                      const ops_call_t *call, struct rows *r)
{
    ops_status st;
    int code = run(f, NULL, who, call, r, &st);
    if (code != 0)
        fail_msg("%s: code %d: %s", ops_of_call(call)->name, code, st.msg);
    return r->n;
}

static const ops_principal regulator = {"REGULATOR", 1, 0};
static const ops_principal party_a = {"A", 0, 0};
static const ops_principal party_b = {"B", 0, 0};
static const ops_principal party_c = {"C", 0, 0};
static const ops_principal owner = {NULL, 0, 0};

/* ------------------------------------------------------------------ */
/* 1. Authorization                                                     */

/* Operations on B's data (or the regulators' own), each run as a
 * regulator, as B, as C and as the folder's owner. */
enum {
    K_BALANCE,
    K_TRACE,
    K_PERMIT,
    K_HISTORY,
    K_HISTORY_LOT,
    K_REGISTER,
    K_EXPORT_PARTY,
    K_EXPORT_ALL,
    K_ALERTS_PARTY,
    K_RECONCILE,
    K_VERIFY,
    K_BACKUP,
    K_N
};

static const char *const k_name[K_N] = {
    "balance B",        "trace L1",   "permit PL-B",      "history B",
    "history --lot L1", "register B", "export --party B", "export",
    "alerts --party B", "reconcile",  "verify",           "backup",
};

static ops_call_t *build(callbuf *b, int k, const fixture *f, int n)
{
    ops_call_t *c = NULL;

    switch (k) {
    case K_BALANCE:
        c = mk(b, C(BALANCE));
        b->balance.party = "B";
        break;
    case K_TRACE:
        c = mk(b, C(TRACE));
        b->trace.lot = "L1";
        break;
    case K_PERMIT:
        c = mk(b, C(PERMIT_SHOW));
        b->permit.permit = "PL-B";
        break;
    case K_HISTORY:
        c = history_of(b, "B", NULL, 0);
        break;
    case K_HISTORY_LOT:
        c = history_of(b, NULL, "L1", 0);
        break;
    case K_REGISTER:
        c = mk(b, C(SPECIAL_REGISTER));
        b->reg.party = "B";
        b->reg.substance = "ephedrine";
        b->reg.from_us = REG_FROM;
        b->reg.to_us = REG_TO;
        break;
    case K_EXPORT_PARTY:
        c = mk(b, C(EXPORT));
        b->export_.party = "B";
        break;
    case K_EXPORT_ALL:
        c = mk(b, C(EXPORT));
        break;
    case K_ALERTS_PARTY:
        c = mk(b, C(ALERTS));
        b->alerts.party = "B";
        break;
    case K_RECONCILE:
        c = mk(b, C(RECONCILE));
        b->reconcile.has_as_of_us = 1;
        b->reconcile.as_of_us = AS_OF;
        b->reconcile.has_dry_run = 1;
        b->reconcile.dry_run = 1;
        break;
    case K_VERIFY:
        c = mk(b, C(VERIFY));
        break;
    case K_BACKUP:
        c = mk(b, C(BACKUP));
        snprintf(b->dest, sizeof(b->dest), "%s/backup-%d", f->dir, n);
        b->backup.dest = b->dest;
        break;
    default:
        fail_msg("case %d", k);
    }
    return c;
}

/* The code each principal gets: regulator, B, C, owner. */
static int expected_code(int k, int who)
{
    int regulators_only = k == K_RECONCILE || k == K_VERIFY || k == K_BACKUP;
    switch (who) {
    case 1: /* B itself */
        return regulators_only ? 5 : 0;
    case 2: /* C: only its own export */
        return k == K_EXPORT_ALL ? 0 : 5;
    default: /* a regulator, the owner */
        return 0;
    }
}

static void test_authorization_table(void **state)
{
    fixture *f = *state;
    const ops_principal *whos[4] = {&regulator, &party_b, &party_c, &owner};
    static const char *const who_name[4] = {"regulator", "B", "C", "owner"};
    int n = 0;

    for (int k = 0; k < K_N; k++) {
        for (int w = 0; w < 4; w++) {
            callbuf b;
            struct rows r;
            ops_status st;
            const ops_call_t *c = build(&b, k, f, n++);
            int want = expected_code(k, w);
            int code = run(f, NULL, whos[w], c, &r, &st);

            if (code != want)
                fail_msg("%s as %s: code %d (%s), expected %d", k_name[k],
                         who_name[w], code, st.msg, want);
            assert_int_equal(st.code, code);
            if (want == 5) {
                if (strncmp(st.msg, "permission denied", 17) != 0)
                    fail_msg("%s as %s: message \"%s\"", k_name[k], who_name[w],
                             st.msg);
                /* nothing read reaches the caller */
                assert_int_equal(r.n, 0);
                /* refused before the handler began, except where the
                 * right depends on the row read */
                if (k != K_PERMIT)
                    assert_int_equal(st.ran, 0);
            } else {
                if (r.n == 0)
                    fail_msg("%s as %s: no rows", k_name[k], who_name[w]);
                assert_int_equal(st.ran, 1);
                assert_string_equal(st.msg, "");
            }
        }
    }
    /* a regulator-only operation names why */
    {
        callbuf b;
        struct rows r;
        ops_status st;
        assert_int_equal(
            run(f, NULL, &party_b, build(&b, K_VERIFY, f, n++), &r, &st), 5);
        assert_string_equal(
            st.msg,
            "permission denied: only a regulator verifies the whole ledger");
    }
}

/* Who else may read what: the permit's counterparty; a history of
 * another party; balances of another party by name. */
static void test_authorization_details(void **state)
{
    fixture *f = *state;
    callbuf b;
    struct rows r;
    ops_status st;

    /* the permit's counterparty reads it; the holder's is B */
    mk(&b, C(PERMIT_SHOW));
    b.permit.permit = "PL-B";
    assert_int_equal(run(f, NULL, &party_a, &b.call, &r, &st), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 5);
    assert_string_equal(st.msg,
                        "permission denied: permit PL-B is not yours to read");

    /* B's balance: its own holdings only, A's refused to B */
    mk(&b, C(BALANCE));
    b.balance.party = "B";
    assert_true(rows_of(f, &party_b, &b.call, &r) > 0);
    for (size_t i = 0; i < r.n; i++)
        assert_string_equal(r.party[i], "B");
    b.balance.party = "A";
    assert_int_equal(run(f, NULL, &party_b, &b.call, &r, &st), 5);
    assert_string_equal(
        st.msg, "permission denied: the stock of A is not yours to read");

    /* B held L1, so reads its history by lot, but not A's events */
    history_of(&b, "A", NULL, 0);
    assert_int_equal(run(f, NULL, &party_b, &b.call, &r, &st), 5);
    assert_string_equal(
        st.msg, "permission denied: the events of A are not yours to read");
    history_of(&b, "L1", NULL, 0); /* `history L1`: a lot by that name */
    assert_int_equal(run(f, NULL, &party_b, &b.call, &r, &st), 0);
    assert_true(r.n > 0);
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 5);
    assert_string_equal(st.msg, "permission denied: C never held the lot");

    /* an invalid party id in an export is refused before the rights */
    mk(&b, C(EXPORT));
    b.export_.party = "no such/party";
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 1);
    assert_int_equal(st.ran, 0);
}

/* A party's export without --party gives its own events only. */
/* The registry is every registered party's to read; a permit list shows
 * a party the permits it holds or is the counterparty of, a regulator
 * all of them; another party's list is refused. */
static void test_parties_and_permit_list(void **state)
{
    fixture *f = *state;
    callbuf b;
    struct rows r;
    ops_status st;

    mk(&b, C(PARTIES));
    assert_int_equal(rows_of(f, &owner, &b.call, &r), 4); /* REGULATOR A B C */
    assert_int_equal(rows_of(f, &party_c, &b.call, &r), 4);
    b.parties.kind = "distributor";
    assert_int_equal(rows_of(f, &party_a, &b.call, &r), 2);
    b.parties.kind = "pharmacy";
    assert_int_equal(rows_of(f, &party_a, &b.call, &r), 0);

    mk(&b, C(PERMIT_LIST));
    assert_int_equal(rows_of(f, &owner, &b.call, &r), 1);
    assert_int_equal(rows_of(f, &regulator, &b.call, &r), 1);
    assert_int_equal(rows_of(f, &party_b, &b.call, &r), 1); /* holder */
    assert_int_equal(rows_of(f, &party_a, &b.call, &r), 1); /* counterparty */
    assert_int_equal(rows_of(f, &party_c, &b.call, &r), 0);
    b.permit_list.status = "revoked";
    assert_int_equal(rows_of(f, &regulator, &b.call, &r), 0);
    b.permit_list.status = NULL;
    b.permit_list.holder = "A";
    assert_int_equal(rows_of(f, &regulator, &b.call, &r), 0);
    b.permit_list.holder = "B";
    assert_int_equal(rows_of(f, &party_b, &b.call, &r), 1);
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 5);
    assert_non_null(strstr(st.msg, "permission denied"));
    assert_int_equal(r.n, 0);
}

/* applications: an applicant lists its own, a regulator all; --pending
 * leaves out the answered ones; another's are not a party's to list. */
#define APPLY(id, party)                                                       \
    EV("permit_application", id, party, "2026-03-02T09:00:00+08:00",           \
       "\"kind\":\"purchase_filing\",\"substance\":\"acetone\","               \
       "\"qty\":\"10\",\"unit\":\"L\",\"purpose\":\"p\","                      \
       "\"valid_from\":\"2026-04-01\",\"valid_until\":\"2026-12-31\","         \
       "\"uses\":\"multi\"")

static int keep_app(const ops_item_t *it, void *ctx)
{
    char *ids = ctx;
    size_t n = strlen(ids);
    snprintf(ids + n, 256 - n, "%s/%s:%s:%u ", it->application->party,
             it->application->id, it->application->state,
             (unsigned)it->application->days);
    return 0;
}

static void test_applications(void **state)
{
    fixture *f = *state;
    trace_append_result res;
    callbuf b;
    struct rows r;
    ops_status st;
    char ids[256] = "";

    assert_int_equal(
        fixture_import(f,
                       APPLY("ap1", "A") APPLY("ap2", "B") APPLY("ap3", "B")
                           EV("application_decision", "d2", "REGULATOR",
                              "2026-03-09T09:00:00+08:00",
                              "\"application\":{\"party\":\"B\",\"id\":"
                              "\"ap2\"},\"decision\":\"rejected\","
                              "\"reason\":\"r\""),
                       TRACE_APPEND_PROVISION_KEYS, &res),
        TRACE_OK);
    mk(&b, C(APPLICATIONS));
    assert_int_equal(rows_of(f, &regulator, &b.call, &r), 3);
    assert_int_equal(rows_of(f, &owner, &b.call, &r), 3);
    assert_int_equal(rows_of(f, &party_a, &b.call, &r), 1);
    assert_int_equal(rows_of(f, &party_b, &b.call, &r), 2);
    assert_int_equal(rows_of(f, &party_c, &b.call, &r), 0);
    /* the rows: who, state, the working days waited (Monday 03-02 to
     * Monday 03-09: 5; pending, to Friday 03-06 09:00 +08:00: 4) */
    b.applications.has_now_us = 1;
    b.applications.now_us = 1772758800000000LL;
    assert_int_equal(
        ops_call(f->l, NULL, &party_b, &b.call, keep_app, ids, &st), 0);
    assert_string_equal(ids, "B/ap2:rejected:5 B/ap3:pending:4 ");
    b.applications.now_us = AS_OF;
    b.applications.has_pending = 1;
    b.applications.pending = 1;
    ids[0] = '\0';
    assert_int_equal(
        ops_call(f->l, NULL, &regulator, &b.call, keep_app, ids, &st), 0);
    /* 2026-03-02 to 2026-06-01 (a Monday): 65 working days */
    assert_string_equal(ids, "A/ap1:pending:65 B/ap3:pending:65 ");
    b.applications.party = "B";
    assert_int_equal(rows_of(f, &regulator, &b.call, &r), 1);
    assert_int_equal(rows_of(f, &party_b, &b.call, &r), 1);
    assert_int_equal(run(f, NULL, &party_a, &b.call, &r, &st), 5);
    assert_non_null(strstr(st.msg,
                           "permission denied: the applications of B are not "
                           "yours to list"));
    assert_int_equal(r.n, 0);
    /* a request's now_us past what the ledger writes: refused, not
     * counted in days by overflowing the local day */
    static const int64_t bad[] = {INT64_MAX - 1, INT64_MIN,
                                  253402300800000000LL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        b.applications.now_us = bad[i];
        assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 2);
        assert_non_null(strstr(st.msg, "out of range"));
        assert_int_equal(r.n, 0);
    }
}

static void test_export_own_events(void **state)
{
    fixture *f = *state;
    const ops_principal *parties[3] = {&party_a, &party_b, &party_c};
    static const char *const ids[3] = {"A", "B", "C"};
    callbuf b;
    struct rows r;
    size_t all, sum = 0;

    mk(&b, C(EXPORT));
    all = rows_of(f, &owner, &b.call, &r);
    assert_int_equal(rows_of(f, &regulator, &b.call, &r), all);
    for (int p = 0; p < 3; p++) {
        char want[32];
        size_t mine, named;

        mk(&b, C(EXPORT));
        mine = rows_of(f, parties[p], &b.call, &r);
        snprintf(want, sizeof(want), "\"party\":\"%s\"", ids[p]);
        for (size_t i = 0; i < r.n; i++)
            if (!strstr(r.text[i], want))
                fail_msg("%s's export has %s", ids[p], r.text[i]);
        /* the same as the owner's export of that party */
        b.export_.party = (char *)ids[p];
        named = rows_of(f, &owner, &b.call, &r);
        assert_int_equal(mine, named);
        assert_true(mine > 0);
        assert_true(mine < all);
        sum += mine;
    }
    /* A: m1 m2 s1 s2 s3; B: c1; C: m3 s4 */
    assert_int_equal(sum, 8);
}

/* Departments (SPEC 12): what trace_in_scope() counts as within a
 * regulator's scopes, and a scoped principal's rows. */
static void test_scopes(void **state)
{
    fixture *f = *state;
    trace_ledger *l = f->l;
    static const char *const names[] = {"CN-NARC", "import", "CN-FOO"};
    ops_principal pc = {"REGULATOR", 1, TRACE_SCOPE_PC};
    ops_principal narc = {"REGULATOR", 1, TRACE_SCOPE_NARC};
    callbuf b;
    struct rows r;
    size_t all, mine;
    char buf[64];

    assert_int_equal(trace_scope_mask(names, 3),
                     TRACE_SCOPE_NARC | TRACE_SCOPE_IMPORT);
    trace_scope_names(TRACE_SCOPE_PC | TRACE_SCOPE_EXPORT, buf, sizeof(buf));
    assert_string_equal(buf, "CN-PC,export");
    /* unscoped: everything */
    assert_true(trace_in_scope(l, 0, "sale", "morphine"));
    /* a class and its categories, not a longer name */
    assert_true(trace_in_scope(l, TRACE_SCOPE_PC, "sale", "ephedrine"));
    assert_true(trace_in_scope(l, TRACE_SCOPE_PC, "sale", "acetone"));
    assert_false(trace_in_scope(l, TRACE_SCOPE_PC, "sale", "morphine"));
    assert_true(trace_in_scope(l, TRACE_SCOPE_NARC, "dispense", "morphine"));
    assert_true(trace_in_scope(l, TRACE_SCOPE_PSY, "sale", "diazepam"));
    assert_true(trace_in_scope(l, TRACE_SCOPE_PSY, "sale", "ketamine"));
    assert_false(trace_in_scope(l, TRACE_SCOPE_PSY, "sale", "ephedrine"));
    /* by CAS number or Chinese name as well */
    assert_true(trace_in_scope(l, TRACE_SCOPE_PC, "sale", "299-42-3"));
    assert_true(trace_in_scope(l, TRACE_SCOPE_PC, "sale", "麻黄碱"));
    /* imports and exports, also as permit kinds, whatever the substance */
    assert_true(trace_in_scope(l, TRACE_SCOPE_IMPORT, "import", "morphine"));
    assert_true(
        trace_in_scope(l, TRACE_SCOPE_EXPORT, "export_license", "acetone"));
    assert_false(trace_in_scope(l, TRACE_SCOPE_IMPORT, "export", "acetone"));
    assert_false(
        trace_in_scope(l, TRACE_SCOPE_IMPORT, "purchase_license", "acetone"));
    /* nothing named: within every scope, unless it is an import/export */
    assert_true(trace_in_scope(l, TRACE_SCOPE_NARC, "party", NULL));
    assert_true(trace_in_scope(l, TRACE_SCOPE_NARC, NULL, ""));
    assert_false(trace_in_scope(l, TRACE_SCOPE_NARC, "export", NULL));
    /* an unknown substance is within no scope */
    assert_false(
        trace_in_scope(l, TRACE_SCOPE_PC | TRACE_SCOPE_NARC | TRACE_SCOPE_PSY,
                       "sale", "no-such-substance"));
    /* events: a permit by its kind; what names an unknown record (a
     * permit, an alert, an application, a corrected event) is within
     * no scope; what is not an event object neither, unless unscoped */
#define IN_SCOPE(scopes, text)                                                 \
    trace_event_in_scope(l, scopes, text, strlen(text))
    assert_true(IN_SCOPE(TRACE_SCOPE_IMPORT, "{\"type\":\"permit\",\"kind\":"
                                             "\"import_license\",\"substance\":"
                                             "\"acetone\"}"));
    assert_false(IN_SCOPE(TRACE_SCOPE_IMPORT,
                          "{\"type\":\"sale\",\"substance\":"
                          "\"acetone\"}"));
    assert_true(IN_SCOPE(TRACE_SCOPE_PC, "{\"type\":\"sale\",\"substance\":"
                                         "\"acetone\"}"));
    assert_false(IN_SCOPE(TRACE_SCOPE_PC,
                          "{\"type\":\"permit_status\",\"permit\":"
                          "\"NO-SUCH\",\"status\":\"revoked\"}"));
    assert_false(IN_SCOPE(TRACE_SCOPE_PC, "{\"type\":\"alert_ack\",\"alert\":"
                                          "\"A-NO-SUCH\"}"));
    assert_false(IN_SCOPE(TRACE_SCOPE_PC, "{\"type\":\"application_decision\","
                                          "\"application\":{\"party\":\"X\","
                                          "\"id\":\"no\"}}"));
    assert_false(IN_SCOPE(TRACE_SCOPE_PC, "{\"type\":\"correction\",\"party\":"
                                          "\"X\",\"corrects\":\"no\"}"));
    assert_true(IN_SCOPE(TRACE_SCOPE_PC,
                         "{\"type\":\"correction\",\"party\":\"X\","
                         "\"corrects\":\"no\",\"replacement\":{"
                         "\"type\":\"sale\",\"substance\":"
                         "\"ephedrine\"}}"));
    assert_true(IN_SCOPE(TRACE_SCOPE_NARC, "{\"type\":\"party\"}"));
    assert_false(IN_SCOPE(TRACE_SCOPE_NARC, "[1]"));
    assert_false(IN_SCOPE(TRACE_SCOPE_NARC, "{\"type\":"));
    assert_true(IN_SCOPE(0, "{\"type\":"));
#undef IN_SCOPE

    /* the world's events are of ephedrine (CN-PC-1): a precursor
     * department sees the regulator's export, a narcotics one only
     * what names no substance */
    mk(&b, C(EXPORT));
    all = rows_of(f, &regulator, &b.call, &r);
    mk(&b, C(EXPORT));
    assert_int_equal(rows_of(f, &pc, &b.call, &r), all);
    mk(&b, C(EXPORT));
    mine = rows_of(f, &narc, &b.call, &r);
    assert_true(mine < all);
    for (size_t i = 0; i < r.n; i++)
        assert_null(strstr(r.text[i], "\"substance\""));
}

/* Departments and alerts: an alert about a substance is a class
 * department's by its substance and customs' when its evidence is an
 * import or export; an alert about no substance is judged by its
 * evidence; one with neither (CHAIN_BROKEN's journal entry) is for
 * unscoped regulators only. */
static void test_alert_scopes(void **state)
{
    fixture *f = *state;
    trace_ledger *l = f->l;
    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_append_result res;
    const ops_principal customs = {"REGULATOR", 1, TRACE_SCOPE_IMPORT};
    const ops_principal exports = {"REGULATOR", 1, TRACE_SCOPE_EXPORT};
    const ops_principal narc = {"REGULATOR", 1, TRACE_SCOPE_NARC};
    const unsigned every = TRACE_SCOPE_PC | TRACE_SCOPE_NARC | TRACE_SCOPE_PSY |
                           TRACE_SCOPE_IMPORT | TRACE_SCOPE_EXPORT;
    callbuf b;
    struct rows r;
    size_t n_import = 0;

    /* an import citing an unknown permit: PERMIT_MISSING of ephedrine */
    assert_int_equal(
        fixture_import(f,
                       EV("import", "i1", "A", "2026-01-03T00:00:00+08:00",
                          "\"substance\":\"ephedrine\",\"lot\":\"LI\","
                          "\"qty\":\"1\",\"unit\":\"kg\",\"permit\":"
                          "\"NO-SUCH\",\"country\":\"DE\""),
                       TRACE_APPEND_HISTORIC, &res),
        TRACE_OK);
    ro.as_of_us = AS_OF;
    assert_int_equal(trace_reconcile(l, &ro, NULL, NULL, NULL), TRACE_OK);
    mk(&b, C(ALERTS));
    rows_of(f, &regulator, &b.call, &r);
    for (size_t i = 0; i < r.n; i++)
        n_import += strstr(r.text[i], "\"id\":\"i1\"") != NULL;
    assert_true(n_import > 0);
    /* customs sees the import's alerts and nothing else; an export
     * office and the narcotics department none of them */
    mk(&b, C(ALERTS));
    assert_int_equal(rows_of(f, &customs, &b.call, &r), n_import);
    for (size_t i = 0; i < r.n; i++)
        assert_non_null(strstr(r.text[i], "\"id\":\"i1\""));
    mk(&b, C(ALERTS));
    assert_int_equal(rows_of(f, &exports, &b.call, &r), 0);
    mk(&b, C(ALERTS));
    assert_int_equal(rows_of(f, &narc, &b.call, &r), 0);

#define ALERT_IN(scopes, text)                                                 \
    trace_alert_in_scope(l, scopes, text, strlen(text))
    /* about a substance: by it, and customs by the evidence's type */
    assert_true(ALERT_IN(TRACE_SCOPE_PC, "{\"substance\":\"ephedrine\","
                                         "\"events\":[]}"));
    assert_false(ALERT_IN(TRACE_SCOPE_NARC, "{\"substance\":\"ephedrine\","
                                            "\"events\":[{\"party\":\"A\","
                                            "\"id\":\"i1\"}]}"));
    assert_true(ALERT_IN(TRACE_SCOPE_IMPORT, "{\"substance\":\"ephedrine\","
                                             "\"events\":[{\"party\":\"A\","
                                             "\"id\":\"m1\"},{\"party\":"
                                             "\"A\",\"id\":\"i1\"}]}"));
    assert_false(ALERT_IN(TRACE_SCOPE_IMPORT, "{\"substance\":\"ephedrine\","
                                              "\"events\":[{\"party\":\"A\","
                                              "\"id\":\"m1\"}]}"));
    /* about no substance: by its evidence (m1: a production of
     * ephedrine; a party's registration is within every scope) */
    assert_true(ALERT_IN(TRACE_SCOPE_PC, "{\"substance\":null,\"events\":"
                                         "[{\"party\":\"A\",\"id\":"
                                         "\"m1\"}]}"));
    assert_false(ALERT_IN(TRACE_SCOPE_NARC | TRACE_SCOPE_IMPORT,
                          "{\"substance\":null,\"events\":[{\"party\":"
                          "\"A\",\"id\":\"m1\"}]}"));
    assert_true(ALERT_IN(TRACE_SCOPE_IMPORT, "{\"events\":[{\"party\":"
                                             "\"A\",\"id\":\"i1\"}]}"));
    assert_true(ALERT_IN(TRACE_SCOPE_NARC, "{\"substance\":null,\"events\":"
                                           "[{\"party\":\"REGULATOR\","
                                           "\"id\":\"r-A\"}]}"));
    /* neither: a journal entry, no evidence, or evidence not stored */
    assert_false(ALERT_IN(every, "{\"rule\":\"CHAIN_BROKEN\",\"substance\":"
                                 "null,\"events\":[{\"party\":\"journal\","
                                 "\"id\":\"entry-3\"}]}"));
    assert_false(ALERT_IN(every, "{\"substance\":null,\"events\":[]}"));
    assert_false(ALERT_IN(every, "{\"substance\":null}"));
    assert_false(ALERT_IN(every, "[1]"));
    assert_true(ALERT_IN(0, "{\"substance\":null,\"events\":[]}"));
#undef ALERT_IN
}

/* A department's credit answer counts only what it may read: the
 * alerts within its scopes and the losses of its substances; the
 * answer says so.  The world's alerts are all of ephedrine and acetone
 * (CN-PC); A also loses morphine (CN-NARC). */
static unsigned credit_alerts(const trace_credit_score *c)
{
    unsigned n = 0;
    for (size_t i = 0; i < 8; i++) /* open_* and resolved_* */
        n += c->factors[i].count;
    return n;
}

static void test_credit_scoped(void **state)
{
    fixture *f = *state;
    trace_append_result res;
    const ops_principal pc = {"REGULATOR", 1, TRACE_SCOPE_PC};
    const ops_principal narc = {"REGULATOR", 1, TRACE_SCOPE_NARC};
    trace_credit_score all, c;
    struct rows r;
    ops_status st;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    Trace__Ops__V1__Credit cr = TRACE__OPS__V1__CREDIT__INIT;

    assert_int_equal(
        fixture_import(f,
                       EV("loss", "x1", "A", "2026-01-09T00:00:00+08:00",
                          "\"substance\":\"morphine\",\"lot\":\"LM\","
                          "\"qty\":\"1\",\"unit\":\"unit\","
                          "\"reason\":\"theft\""),
                       TRACE_APPEND_HISTORIC, &res),
        TRACE_OK);
    assert_int_equal(trace_credit(f->l, "A", AS_OF, NULL, 0, &all), TRACE_OK);
    assert_true(credit_alerts(&all) > 0);
    assert_int_equal(all.factors[10].count, 1); /* losses */
    /* the precursor department: every alert, not the morphine loss */
    assert_int_equal(
        trace_credit_within(f->l, "A", AS_OF, TRACE_SCOPE_PC, NULL, 0, &c),
        TRACE_OK);
    assert_int_equal(credit_alerts(&c), credit_alerts(&all));
    assert_int_equal(c.factors[10].count, 0);
    assert_true(c.score > all.score);
    /* the narcotics department: the loss, no alert */
    assert_int_equal(
        trace_credit_within(f->l, "A", AS_OF, TRACE_SCOPE_NARC, NULL, 0, &c),
        TRACE_OK);
    assert_int_equal(credit_alerts(&c), 0);
    assert_int_equal(c.factors[10].count, 1);
    /* unscoped: the same as trace_credit */
    assert_int_equal(trace_credit_within(f->l, "A", AS_OF, 0, NULL, 0, &c),
                     TRACE_OK);
    assert_int_equal(c.score, all.score);

    /* through the operation: a department's answer counts within its
     * scopes, and says which */
    call.op_case = C(CREDIT);
    call.credit = &cr;
    cr.party = "A";
    cr.has_at_us = 1;
    cr.at_us = AS_OF;
    assert_int_equal(run(f, NULL, &narc, &call, &r, &st), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.text[0], "CN-NARC");
    assert_int_equal(
        trace_credit_within(f->l, "A", AS_OF, TRACE_SCOPE_NARC, NULL, 0, &c),
        TRACE_OK);
    assert_int_equal(r.pos[0], c.score);
    assert_int_equal(run(f, NULL, &pc, &call, &r, &st), 0);
    assert_string_equal(r.text[0], "CN-PC");
    assert_int_equal(run(f, NULL, &regulator, &call, &r, &st), 0);
    assert_string_equal(r.text[0], "");
    assert_int_equal(r.pos[0], all.score);
}

/* credit: a time past what the ledger writes (a request's at_us may be
 * any int64) is refused, its window not computed by overflowing; the
 * edges of years 1 and 9999 are answered, INT64_MAX is now
 * (TRACE_AT_NOW). */
static void test_credit_at_edges(void **state)
{
    fixture *f = *state;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    Trace__Ops__V1__Credit cr = TRACE__OPS__V1__CREDIT__INIT;
    static const int64_t bad[] = {INT64_MIN, INT64_MIN + 1, INT64_MAX - 1,
                                  -62135596800000001LL, 253402300800000000LL};
    trace_credit_score c;
    struct rows r;
    ops_status st;

    call.op_case = C(CREDIT);
    call.credit = &cr;
    cr.party = "A";
    cr.has_at_us = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        cr.at_us = bad[i];
        assert_int_equal(run(f, NULL, &regulator, &call, &r, &st), 2);
        assert_non_null(strstr(st.msg, "out of range"));
        assert_int_equal(r.n, 0);
        assert_int_equal(trace_credit(f->l, "A", bad[i], NULL, 0, &c),
                         TRACE_EINVAL);
    }
    cr.at_us = -62135596800000000LL; /* 0001-01-01T00:00:00Z */
    assert_int_equal(run(f, NULL, &regulator, &call, &r, &st), 0);
    assert_int_equal(r.n, 1);
    cr.at_us = 253402300799999999LL; /* 9999-12-31T23:59:59.999999Z */
    assert_int_equal(run(f, NULL, &regulator, &call, &r, &st), 0);
    assert_int_equal(r.n, 1);
    cr.at_us = TRACE_AT_NOW;
    assert_int_equal(run(f, NULL, &regulator, &call, &r, &st), 0);
    assert_int_equal(r.n, 1);
}

/* Times near the int64 limits in a request (traced takes any int64):
 * each operation answers them or refuses them with exit 2, and never
 * computes past the limits (UBSan aborts the test if it does). */
static void test_times_at_edges(void **state)
{
    fixture *f = *state;
    static const int64_t edge[] = {INT64_MIN,
                                   INT64_MIN + 1,
                                   -9223372036854775LL * 1000, /* -292277 */
                                   -62135596800000001LL,
                                   -62135596800000000LL, /* 0001-01-01 */
                                   253402300799999999LL, /* 9999-12-31 */
                                   253402300800000000LL,
                                   INT64_MAX - 1,
                                   INT64_MAX};
    callbuf b;
    struct rows r;
    ops_status st;

    for (size_t i = 0; i < sizeof(edge) / sizeof(*edge); i++) {
        int64_t t = edge[i];
        ops_call_t *calls[8];
        size_t n = 0;
        callbuf bs[8];

        calls[n] = mk(&bs[n], C(BALANCE));
        bs[n].balance.party = "A";
        bs[n].balance.has_at_us = 1;
        bs[n++].balance.at_us = t;
        calls[n] = mk(&bs[n], C(RECONCILE));
        bs[n].reconcile.has_as_of_us = 1;
        bs[n++].reconcile.as_of_us = t;
        calls[n] = mk(&bs[n], C(RECONCILE));
        bs[n].reconcile.has_as_of_us = 1;
        bs[n].reconcile.as_of_us = t;
        bs[n].reconcile.has_dry_run = bs[n].reconcile.dry_run = 1;
        n++;
        calls[n] = mk(&bs[n], C(PERMIT_SHOW));
        bs[n].permit.permit = "PL-B";
        bs[n].permit.has_at_us = 1;
        bs[n++].permit.at_us = t;
        calls[n] = mk(&bs[n], C(PERMIT_LIST));
        bs[n].permit_list.has_at_us = 1;
        bs[n++].permit_list.at_us = t;
        calls[n] = mk(&bs[n], C(HISTORY));
        bs[n].history.party = "A";
        bs[n].history.has_from_us = bs[n].history.has_to_us = 1;
        bs[n].history.from_us = t;
        bs[n++].history.to_us = t;
        calls[n] = mk(&bs[n], C(EXPORT));
        bs[n].export_.has_from_us = bs[n].export_.has_to_us = 1;
        bs[n].export_.from_us = t;
        bs[n++].export_.to_us = t;
        for (size_t k = 0; k < n; k++) {
            int code = run(f, NULL, &regulator, calls[k], &r, &st);
            if (code != 0 && code != 2)
                fail_msg("%s at %lld: code %d: %s", ops_of_call(calls[k])->name,
                         (long long)t, code, st.msg);
            if (code == 2 && !strstr(st.msg, "out of range"))
                fail_msg("%s at %lld: %s", ops_of_call(calls[k])->name,
                         (long long)t, st.msg);
        }
    }
    (void)b;
    /* within years 1 to 9999: answered */
    mk(&b, C(BALANCE));
    b.balance.party = "A";
    b.balance.has_at_us = 1;
    b.balance.at_us = 253402300799999999LL;
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 0);
    assert_true(r.n > 0);
    mk(&b, C(RECONCILE));
    b.reconcile.has_as_of_us = 1;
    b.reconcile.as_of_us = -62135596800000000LL;
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 0);
    /* past them: refused, the message says why */
    mk(&b, C(BALANCE));
    b.balance.party = "A";
    b.balance.has_at_us = 1;
    b.balance.at_us = 253402300800000000LL;
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 2);
    assert_int_equal(r.n, 0);
    mk(&b, C(RECONCILE));
    b.reconcile.has_as_of_us = 1;
    b.reconcile.as_of_us = INT64_MIN;
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 2);
}

/* A party listing alerts sees those naming it only. */
static void test_alerts_naming_the_party(void **state)
{
    fixture *f = *state;
    const ops_principal *parties[3] = {&party_a, &party_b, &party_c};
    static const char *const ids[3] = {"A", "B", "C"};
    callbuf b;
    struct rows all, mine, named;

    mk(&b, C(ALERTS));
    rows_of(f, &owner, &b.call, &all);
    assert_true(all.n >= 3);
    for (int p = 0; p < 3; p++) {
        char want[32];

        mk(&b, C(ALERTS));
        rows_of(f, parties[p], &b.call, &mine);
        b.alerts.party = (char *)ids[p];
        rows_of(f, &owner, &b.call, &named);
        assert_int_equal(mine.n, named.n);
        assert_true(mine.n > 0);
        snprintf(want, sizeof(want), "\"%s\"", ids[p]);
        for (size_t i = 0; i < mine.n; i++) {
            assert_string_equal(mine.id[i], named.id[i]);
            if (!strstr(mine.text[i], want))
                fail_msg("%s sees an alert not naming it: %s", ids[p],
                         mine.text[i]);
        }
    }
    /* A's alerts are not all: C's unreceived sale names C and B only */
    mk(&b, C(ALERTS));
    rows_of(f, &party_a, &b.call, &mine);
    assert_true(mine.n < all.n);
    rows_of(f, &party_c, &b.call, &mine);
    assert_true(mine.n < all.n);
    /* another party's alerts by name: refused */
    b.alerts.party = "A";
    {
        ops_status st;
        assert_int_equal(run(f, NULL, &party_c, &b.call, &mine, &st), 5);
        assert_string_equal(
            st.msg, "permission denied: the alerts of A are not yours to read");
    }
}

/* traced's environment: no backups without a backup-dir, plain names
 * only inside it; rules belong to the daemon. */
static void test_daemon_env(void **state)
{
    fixture *f = *state;
    ops_env env;
    callbuf b;
    struct rows r;
    ops_status st;
    char dir[400], want[500];

    memset(&env, 0, sizeof(env));
    env.daemon = 1;
    mk(&b, C(BACKUP));
    b.backup.dest = "bk";
    assert_int_equal(run(f, &env, &regulator, &b.call, &r, &st), 5);
    assert_int_equal(strncmp(st.msg, "permission denied", 17), 0);
    snprintf(dir, sizeof(dir), "%s", f->dir);
    env.backup_dir = dir;
    b.backup.dest = "../escape";
    assert_int_equal(run(f, &env, &regulator, &b.call, &r, &st), 1);
    assert_int_equal(r.n, 0);
    b.backup.dest = "bk";
    assert_int_equal(run(f, &env, &regulator, &b.call, &r, &st), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kind[0], I(BACKED_UP));
    /* the copy is inside backup-dir, under that plain name */
    snprintf(want, sizeof(want), "%s/bk", dir);
    assert_string_equal(r.text[0], want);

    mk(&b, C(RECONCILE));
    b.reconcile.has_rules = 1;
    b.reconcile.rules.data = (uint8_t *)"{}";
    b.reconcile.rules.len = 2;
    assert_int_equal(run(f, &env, &regulator, &b.call, &r, &st), 1);
    assert_non_null(strstr(st.msg, "--rules"));
    assert_int_equal(run(f, &env, &party_b, &b.call, &r, &st), 5);
}

/* ------------------------------------------------------------------ */
/* 2. Malformed Calls, the table                                        */

static void test_malformed_calls(void **state)
{
    fixture *f = *state;
    callbuf b;
    struct rows r;
    ops_status st;

    /* no operation, an unknown one, none at all */
    mk(&b, 0);
    assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 1);
    assert_string_equal(st.msg, "unknown operation");
    assert_int_equal(st.ran, 0);
    mk(&b, 999);
    assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 1);
    assert_string_equal(st.msg, "unknown operation");
    assert_int_equal(run(f, NULL, &owner, NULL, &r, &st), 1);

    /* a Balance without its party */
    mk(&b, C(BALANCE));
    assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 1);
    assert_non_null(strstr(st.msg, "required field"));
    assert_string_equal(st.msg, "balance: a required field is missing");
    assert_int_equal(st.ran, 0);
    assert_int_equal(r.n, 0);

    /* every operation's Call without its request message; those whose
     * request has required strings, without them */
    for (size_t i = 0; ops_at(i); i++) {
        const ops_op *op = ops_at(i);
        mk(&b, op->op_case);
        b.call.balance = NULL; /* the oneof's pointer */
        assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 1);
        assert_non_null(strstr(st.msg, "required field"));
        assert_int_equal(r.n, 0);
    }
    {
        static const int need[] = {C(BALANCE), C(TRACE),  C(PERMIT_SHOW),
                                   C(HISTORY), C(BACKUP), C(SPECIAL_REGISTER)};
        for (size_t i = 0; i < sizeof(need) / sizeof(*need); i++) {
            mk(&b, need[i]);
            if (need[i] == C(HISTORY))
                b.history.limit = 0;
            assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 1);
            assert_non_null(strstr(st.msg, "required field"));
        }
        /* a register with its party but no substance */
        mk(&b, C(SPECIAL_REGISTER));
        b.reg.party = "B";
        assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 1);
    }
    /* the same for a party: the form is checked before the rights */
    mk(&b, C(BALANCE));
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 1);
}

static void test_table(void **state)
{
    int seen[64] = {0};
    size_t n = 0;
    callbuf b;

    (void)state;
    for (size_t i = 0; ops_at(i); i++, n++) {
        const ops_op *op = ops_at(i);
        assert_non_null(op->name);
        assert_non_null(op->rights);
        /* found by name and by Call, the same row */
        assert_ptr_equal(ops_find(op->name), op);
        assert_ptr_equal(ops_of_call(mk(&b, op->op_case)), op);
        assert_true(op->op_case > 0 && op->op_case < 64);
        assert_int_equal(seen[op->op_case], 0);
        seen[op->op_case] = 1;
        /* pages: export, history and alerts (proto/ops.proto) */
        assert_int_equal((op->flags & OPS_PAGED) != 0,
                         op->op_case == C(EXPORT) ||
                             op->op_case == C(HISTORY) ||
                             op->op_case == C(ALERTS));
        assert_int_equal((op->flags & OPS_REGULATOR) != 0,
                         op->op_case == C(RECONCILE) ||
                             op->op_case == C(VERIFY) ||
                             op->op_case == C(BACKUP));
    }
    assert_null(ops_at(n));
    /* every Call field has its row */
    assert_int_equal(n, 22);
    for (int c = C(BALANCE); c <= C(REGIME); c++)
        assert_int_equal(seen[c], 1);
    /* every name found maps back to the row of that name */
    for (size_t i = 0; i < n; i++) {
        const ops_op *op = ops_find(ops_at(i)->name);
        assert_string_equal(op->name, ops_at(i)->name);
        assert_int_equal(op->op_case, ops_at(i)->op_case);
    }
    assert_null(ops_find("nope"));
    assert_null(ops_find(""));
    assert_null(ops_find("Balance"));
    assert_null(ops_of_call(NULL));
    assert_null(ops_of_call(mk(&b, 0)));
    assert_null(ops_of_call(mk(&b, 23)));
    assert_string_equal(ops_find("register")->name, "register");
    assert_int_equal(ops_find("permit")->op_case, C(PERMIT_SHOW));
    assert_int_equal(ops_find("register")->op_case, C(SPECIAL_REGISTER));
}

/* checkpoint and prove: checkpoints and consistency for anyone; an
 * event's proof for its recorder and regulators; a chain's for the
 * party itself and regulators; exactly one form of prove. */
static void test_proofs(void **state)
{
    fixture *f = *state;
    callbuf b;
    struct rows r;
    ops_status st;
    const ops_principal *anyone[4] = {&regulator, &party_a, &party_c, &owner};

    for (int w = 0; w < 4; w++) {
        assert_int_equal(
            run(f, NULL, anyone[w], mk(&b, C(CHECKPOINT)), &r, &st), 0);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.kind[0], I(NOTE));
        mk(&b, C(CHECKPOINT));
        b.checkpoint.has_public_key = b.checkpoint.public_key = 1;
        assert_int_equal(run(f, NULL, anyone[w], &b.call, &r, &st), 0);
        mk(&b, C(PROVE));
        b.prove.has_consistency = b.prove.consistency = 1;
        b.prove.old_size = 1;
        b.prove.new_size = 1;
        assert_int_equal(run(f, NULL, anyone[w], &b.call, &r, &st), 0);
        assert_int_equal(r.kind[0], I(BUNDLE));
    }
    /* a checkpoint of a size no commit ended at */
    mk(&b, C(CHECKPOINT));
    b.checkpoint.has_size = 1;
    b.checkpoint.size = 2;
    assert_int_equal(run(f, NULL, &party_a, &b.call, &r, &st), 4);
    /* A's sale s1: A and regulators, not B (its buyer) nor C */
    mk(&b, C(PROVE));
    b.prove.party = "A";
    b.prove.id = "s1";
    assert_int_equal(run(f, NULL, &party_a, &b.call, &r, &st), 0);
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 0);
    assert_int_equal(run(f, NULL, &party_b, &b.call, &r, &st), 5);
    assert_int_equal(st.ran, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 5);
    b.prove.id = "nope";
    assert_int_equal(run(f, NULL, &party_a, &b.call, &r, &st), 4);
    /* B's chain: B and regulators */
    mk(&b, C(PROVE));
    b.prove.history = "B";
    assert_int_equal(run(f, NULL, &party_b, &b.call, &r, &st), 0);
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 0);
    assert_int_equal(run(f, NULL, &party_c, &b.call, &r, &st), 5);
    /* two forms at once, or none */
    b.prove.party = "A";
    b.prove.id = "s1";
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 1);
    mk(&b, C(PROVE));
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 1);
    b.prove.party = "A"; /* without an id */
    assert_int_equal(run(f, NULL, &regulator, &b.call, &r, &st), 1);
}

/* cosign: any party (and the owner) hands in a cosignature that
 * verifies under the witness key it names; it is stored through
 * env->store_via (traced's writer) and served with the checkpoint;
 * one that does not verify never reaches the store. */
static int via_calls;

static int count_via(int (*store)(void *arg), void *arg, void *ctx)
{
    (void)ctx;
    via_calls++;
    return store(arg);
}

static void test_cosign(void **state)
{
    fixture *f = *state;
    trace_checkpoint *cp = malloc(sizeof(*cp));
    char *note, line[512], vk[512], ovk[512], mine[2048], forged[2048];
    trace_key *wk, *other;
    ops_env env;
    callbuf b;
    struct rows r;
    ops_status st;
    size_t len;

    assert_non_null(cp);
    memset(&env, 0, sizeof(env));
    env.daemon = 1;
    env.store_via = count_via;
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(cp, note, len), TRACE_OK);
    free(note);
    assert_int_equal(trace_key_generate(&wk), TRACE_OK);
    assert_int_equal(trace_key_generate(&other), TRACE_OK);
    assert_int_equal(trace_checkpoint_cosign(cp, wk, "auditor", 1700000000,
                                             line, sizeof(line)),
                     TRACE_OK);
    snprintf(mine, sizeof(mine), "%.*s\n%s", (int)cp->text_len, cp->text, line);
    assert_int_equal(
        trace_vkey_format(vk, sizeof(vk), "auditor", trace_key_public(wk)),
        TRACE_OK);
    assert_int_equal(
        trace_vkey_format(ovk, sizeof(ovk), "auditor", trace_key_public(other)),
        TRACE_OK);

    /* both fields are required */
    mk(&b, C(COSIGN));
    b.cosign.note = mine;
    assert_int_equal(run(f, &env, &party_c, &b.call, &r, &st), 1);
    mk(&b, C(COSIGN));
    b.cosign.witness_vkey = vk;
    assert_int_equal(run(f, &env, &party_c, &b.call, &r, &st), 1);

    /* C, a party with nothing else to do with the ledger, hands it in:
     * stored through the writer, served with the checkpoint */
    b.cosign.note = mine;
    via_calls = 0;
    assert_int_equal(run(f, &env, &party_c, &b.call, &r, &st), 0);
    assert_int_equal(via_calls, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kind[0], I(COSIGNED));
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(cp, note, len), TRACE_OK);
    free(note);
    assert_int_equal(trace_checkpoint_verify_cosig(cp, "auditor",
                                                   trace_key_public(wk), NULL),
                     TRACE_OK);
    /* regulators and the folder's owner too (without a writer) */
    assert_int_equal(run(f, &env, &regulator, &b.call, &r, &st), 0);
    assert_int_equal(run(f, NULL, &owner, &b.call, &r, &st), 0);

    /* under a key it does not verify with: refused before the writer */
    b.cosign.witness_vkey = ovk;
    via_calls = 0;
    assert_int_equal(run(f, &env, &party_a, &b.call, &r, &st), 3);
    assert_int_equal(via_calls, 0);
    assert_int_equal(r.n, 0);
    b.cosign.witness_vkey = "auditor+nope";
    assert_int_equal(run(f, &env, &party_a, &b.call, &r, &st), 2);
    assert_int_equal(via_calls, 0);

    /* another key's cosignature under the stored name: the writer
     * refuses it (a name keeps its first key) */
    assert_int_equal(trace_checkpoint_cosign(cp, other, "auditor", 1700000001,
                                             line, sizeof(line)),
                     TRACE_OK);
    snprintf(forged, sizeof(forged), "%.*s\n%s", (int)cp->text_len, cp->text,
             line);
    b.cosign.note = forged;
    b.cosign.witness_vkey = ovk;
    assert_int_equal(run(f, &env, &party_a, &b.call, &r, &st), 2);
    assert_int_equal(via_calls, 1);
    assert_non_null(strstr(st.msg, "keeps its first key"));

    /* a checkpoint the ledger did not sign (another root), cosigned */
    {
        char *root = strchr(strchr(cp->text, '\n') + 1, '\n') + 1;
        root[0] = root[0] == 'A' ? 'B' : 'A';
        assert_int_equal(trace_checkpoint_cosign(cp, wk, "auditor", 1700000002,
                                                 line, sizeof(line)),
                         TRACE_OK);
        snprintf(forged, sizeof(forged), "%.*s\n%s", (int)cp->text_len,
                 cp->text, line);
    }
    b.cosign.witness_vkey = vk;
    assert_int_equal(run(f, &env, &party_a, &b.call, &r, &st), 3);
    assert_non_null(strstr(st.msg, "not the one this ledger stored"));
    trace_key_free(wk);
    trace_key_free(other);
    free(cp);
}

/* ------------------------------------------------------------------ */
/* 3. Paging                                                            */

/* All rows of `call` in pages of k (OPS_FULL at the row after k), each
 * page continuing the previous with ops_continue; their positions into
 * pos.  Returns the number of rows. */
static size_t run_paged(fixture *f, const ops_principal *who,
                        const ops_call_t *call, size_t k, uint64_t *pos,
                        size_t max, int *pages)
{
    const ops_call_t *page = call;
    ops_cont cont;
    size_t taken = 0;

    *pages = 0;
    for (;;) {
        struct rows r;
        ops_status st;
        int code;

        memset(&r, 0, sizeof(r));
        r.cap = k;
        code = ops_call(f->l, NULL, who, page, collect, &r, &st);
        if (code != 0)
            fail_msg("page %d: code %d: %s", *pages, code, st.msg);
        ++*pages;
        assert_true(*pages < 100);
        assert_true(r.n <= k);
        assert_true(taken + r.n <= max);
        memcpy(pos + taken, r.pos, r.n * sizeof(*pos));
        taken += r.n;
        if (st.next == 0)
            return taken;
        /* stopped for room: a full page, `next` its last row */
        assert_int_equal(r.n, k);
        assert_int_equal(st.next, r.pos[r.n - 1]);
        ops_continue(&cont, call, st.next, taken);
        page = &cont.call;
    }
}

/* Pages of 1, 2, 3 rows give what one run gives; the Call continuing
 * after the first page gives exactly the rest. */
static void check_paging(fixture *f, const ops_principal *who,
                         const ops_call_t *call, size_t min_rows)
{
    struct rows all, rest, first;
    uint64_t pos[MAXR];
    ops_status st;

    rows_of(f, who, call, &all);
    if (all.n < min_rows)
        fail_msg("%s: %zu rows", ops_of_call(call)->name, all.n);
    for (size_t i = 1; i < all.n; i++)
        assert_true(all.pos[i] > all.pos[i - 1]);
    for (size_t k = 1; k <= 3; k++) {
        ops_cont cont;
        int pages;
        size_t n = run_paged(f, who, call, k, pos, MAXR, &pages);

        assert_int_equal(n, all.n);
        for (size_t i = 0; i < n; i++)
            assert_true(pos[i] == all.pos[i]);
        assert_int_equal(pages, (int)((all.n + k - 1) / k));

        /* one page of k, then the rest in one */
        memset(&first, 0, sizeof(first));
        first.cap = k;
        assert_int_equal(ops_call(f->l, NULL, who, call, collect, &first, &st),
                         0);
        assert_int_equal(first.n, k);
        if (all.n == k) { /* all fitted: no next page */
            assert_true(st.next == 0);
            continue;
        }
        assert_true(st.next == all.pos[k - 1]);
        ops_continue(&cont, call, st.next, k);
        rows_of(f, who, &cont.call, &rest);
        assert_int_equal(rest.n, all.n - k);
        for (size_t i = 0; i < rest.n; i++)
            assert_true(rest.pos[i] == all.pos[k + i]);
        /* the original Call is untouched */
        assert_ptr_not_equal(&cont.call, call);
    }
}

static void test_paging(void **state)
{
    fixture *f = *state;
    callbuf b;

    mk(&b, C(EXPORT));
    check_paging(f, &owner, &b.call, 8);
    assert_false(b.export_.has_after);
    mk(&b, C(EXPORT)); /* a party's own, paged */
    check_paging(f, &party_a, &b.call, 5);
    history_of(&b, "A", NULL, 0);
    check_paging(f, &owner, &b.call, 5);
    history_of(&b, "L1", NULL, 0); /* a lot, by its name: m1 s1 c1 */
    check_paging(f, &party_b, &b.call, 3);
    mk(&b, C(ALERTS));
    check_paging(f, &owner, &b.call, 4);
    mk(&b, C(ALERTS)); /* a party's alerts */
    check_paging(f, &party_b, &b.call, 4);
}

/* A history with a limit stays within it over its pages. */
static void test_paging_history_limit(void **state)
{
    fixture *f = *state;
    callbuf b;
    struct rows all;
    uint64_t pos[MAXR];
    int pages;

    history_of(&b, "A", NULL, 4);
    rows_of(f, &owner, &b.call, &all);
    assert_int_equal(all.n, 4);
    for (size_t k = 1; k <= 3; k++) {
        size_t n = run_paged(f, &owner, &b.call, k, pos, MAXR, &pages);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++)
            assert_true(pos[i] == all.pos[i]);
    }
    /* after a full page, the continuation's limit is what remains */
    {
        ops_cont cont;
        ops_continue(&cont, &b.call, all.pos[2], 3);
        assert_int_equal(cont.call.history->limit, 1);
        assert_true(cont.call.history->has_after);
        assert_true(cont.call.history->after == all.pos[2]);
        assert_ptr_equal(cont.call.history->party, b.history.party);
        assert_int_equal(b.history.limit, 4);
        assert_false(b.history.has_after);
    }
}

static void test_full_without_paging(void **state)
{
    fixture *f = *state;
    callbuf b;
    struct rows r;
    ops_status st;

    /* a catalog larger than a reply: code 6, never a silent cut */
    mk(&b, C(CATALOG));
    memset(&r, 0, sizeof(r));
    r.cap = 2;
    assert_int_equal(ops_call(f->l, NULL, &owner, &b.call, collect, &r, &st),
                     6);
    assert_int_equal(st.code, 6);
    assert_non_null(strstr(st.msg, "max-reply"));
    assert_true(st.next == 0);
    /* the same for a balance, a trace */
    mk(&b, C(BALANCE));
    b.balance.party = "A";
    memset(&r, 0, sizeof(r));
    r.cap = 1;
    assert_int_equal(ops_call(f->l, NULL, &owner, &b.call, collect, &r, &st),
                     6);
    assert_non_null(strstr(st.msg, "max-reply"));
    mk(&b, C(TRACE));
    b.trace.lot = "L1";
    memset(&r, 0, sizeof(r));
    r.cap = 1;
    assert_int_equal(ops_call(f->l, NULL, &owner, &b.call, collect, &r, &st),
                     6);
    /* a paged operation whose first row does not fit: no page at all */
    mk(&b, C(EXPORT));
    memset(&r, 0, sizeof(r));
    r.cap = 1;
    r.n = 1; /* the first row already finds no room */
    assert_int_equal(ops_call(f->l, NULL, &owner, &b.call, collect, &r, &st),
                     6);
    assert_non_null(strstr(st.msg, "max-reply"));
    assert_true(st.next == 0);
    /* another code from the callback ends the operation with it */
    mk(&b, C(EXPORT));
    memset(&r, 0, sizeof(r));
    r.cap = 2;
    r.stop = 7;
    assert_int_equal(ops_call(f->l, NULL, &owner, &b.call, collect, &r, &st),
                     7);
    assert_int_equal(st.code, 7);
    assert_true(st.next == 0);
}

/* ------------------------------------------------------------------ */
/* 5. Decoding truncated Results                                        */

/* Items packed as they come (traced's add_row packs them so too). */
struct packed {
    size_t n;
    uint8_t *buf[MAXR];
    size_t len[MAXR];
};

static int pack_row(const ops_item_t *it, void *ctx)
{
    struct packed *p = ctx;
    size_t len = trace__ops__v1__item__get_packed_size(it);

    assert_true(p->n < MAXR);
    p->buf[p->n] = malloc(len ? len : 1);
    assert_non_null(p->buf[p->n]);
    assert_int_equal(trace__ops__v1__item__pack(it, p->buf[p->n]), len);
    p->len[p->n++] = len;
    return 0;
}

/* Renders every item of a decoded Result for `call`: each is one the
 * call renders, or (unless strict) an empty Item (cut before its field),
 * refused without printing. */
static void render_all(const ops_call_t *call,
                       const Trace__Ops__V1__Result *res, int json, int strict)
{
    struct out o;
    ops_render r;

    out_open(&o, &r, json);
    ops_render_begin(&r, call);
    for (size_t i = 0; i < res->n_items; i++) {
        const ops_item_t *it = res->items[i];
        size_t before;

        fflush(o.f);
        before = o.len;
        if (ops_render_item(&r, call, it) != 0) {
            assert_false(strict);
            assert_int_equal(it->item_case, 0);
            fflush(o.f);
            assert_int_equal(o.len, before);
        }
    }
    ops_render_end(&r, call, 0);
    out_close(&o);
    out_free(&o);
}

static void check_truncations(fixture *f, const ops_call_t *call,
                              size_t min_items)
{
    Trace__Ops__V1__Result res = TRACE__OPS__V1__RESULT__INIT, *got;
    Trace__Ops__V1__Item *items[MAXR];
    struct packed p;
    ops_status st;
    uint8_t *buf, *copy;
    size_t len, decoded = 0;

    memset(&p, 0, sizeof(p));
    assert_int_equal(ops_call(f->l, NULL, &owner, call, pack_row, &p, &st), 0);
    if (p.n < min_items)
        fail_msg("%s: %zu items", ops_of_call(call)->name, p.n);
    for (size_t i = 0; i < p.n; i++) {
        items[i] = trace__ops__v1__item__unpack(NULL, p.len[i], p.buf[i]);
        assert_non_null(items[i]);
    }
    res.n_items = p.n;
    res.items = items;
    res.has_ran = 1;
    res.ran = 1;
    res.has_next = 1;
    res.next = 1234567;
    len = trace__ops__v1__result__get_packed_size(&res);
    buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(trace__ops__v1__result__pack(&res, buf), len);

    /* the whole: every item back */
    got = trace__ops__v1__result__unpack(NULL, len, buf);
    assert_non_null(got);
    assert_int_equal(got->n_items, p.n);
    assert_true(got->ran && got->next == 1234567);
    render_all(call, got, 0, 1);
    trace__ops__v1__result__free_unpacked(got, NULL);

    /* every prefix, each in a buffer of its own size (ASan sees any read
     * past it): a message or NULL */
    for (size_t n = 0; n < len; n++) {
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        got = trace__ops__v1__result__unpack(NULL, n, copy);
        if (got) {
            decoded++;
            assert_true(got->n_items <= p.n);
            assert_false(got->has_next);
            render_all(call, got, (int)(n & 1), 1);
            trace__ops__v1__result__free_unpacked(got, NULL);
        }
        free(copy);
    }
    /* the prefixes that end between fields: before each item, after the
     * last, after `ran` */
    assert_int_equal(decoded, p.n + 2);

    /* each item cut short inside a well-formed Result */
    for (size_t i = 0; i < p.n; i++) {
        for (size_t n = 0; n < p.len[i]; n++) {
            uint8_t *m = malloc(n + 11);
            size_t h = 1;
            assert_non_null(m);
            m[0] = 0x0a; /* Result.items, n bytes long */
            for (size_t v = n; h == 1 || v; v >>= 7)
                m[h++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
            memcpy(m + h, p.buf[i], n);
            got = trace__ops__v1__result__unpack(NULL, n + h, m);
            if (got) {
                assert_int_equal(got->n_items, 1);
                render_all(call, got, (int)(n & 1), n > 0);
                trace__ops__v1__result__free_unpacked(got, NULL);
            }
            free(m);
        }
    }

    for (size_t i = 0; i < p.n; i++) {
        trace__ops__v1__item__free_unpacked(items[i], NULL);
        free(p.buf[i]);
    }
    free(buf);
}

static void test_truncated_results(void **state)
{
    fixture *f = *state;
    callbuf b;

    history_of(&b, "A", NULL, 0);
    check_truncations(f, &b.call, 5);
    mk(&b, C(PERMIT_SHOW));
    b.permit.permit = "PL-B";
    check_truncations(f, &b.call, 1);
    mk(&b, C(TRACE));
    b.trace.lot = "L1";
    check_truncations(f, &b.call, 2);
    mk(&b, C(SPECIAL_REGISTER));
    b.reg.party = "B";
    b.reg.substance = "ephedrine";
    b.reg.from_us = REG_FROM;
    b.reg.to_us = REG_TO;
    check_truncations(f, &b.call, 3);
    mk(&b, C(ALERTS));
    check_truncations(f, &b.call, 3);
    mk(&b, C(BALANCE));
    b.balance.party = "A"; /* L1 and L2 */
    check_truncations(f, &b.call, 2);
    mk(&b, C(VERIFY));
    check_truncations(f, &b.call, 1);
    mk(&b, C(HEAD));
    check_truncations(f, &b.call, 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_authorization_table),
        T(test_authorization_details),
        T(test_parties_and_permit_list),
        T(test_applications),
        T(test_export_own_events),
        T(test_alerts_naming_the_party),
        T(test_scopes),
        T(test_alert_scopes),
        T(test_credit_scoped),
        T(test_credit_at_edges),
        T(test_times_at_edges),
        T(test_daemon_env),
        T(test_malformed_calls),
        cmocka_unit_test(test_table),
        T(test_proofs),
        T(test_cosign),
        T(test_paging),
        T(test_paging_history_limit),
        T(test_full_without_paging),
        T(test_truncated_results),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
