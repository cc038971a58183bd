/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.c - the journal as SPEC section 3 JSON Lines, in journal order.
 *
 * With a party filter the party's chain index (pchain) is walked instead
 * of the whole journal.  Events are printed from their stored bytes, so
 * an export of an import reproduces its fields and values.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What each entry goes to: its JSON line, or its decoded event. */
struct sink {
    trace_line_at_fn emit;
    export_event_fn on_event;
    void *ctx;
};

static int emit_entry(trace_ledger *l, arena *a, const MDB_val *val,
                      const trace_export_opts *o, const struct sink *sk)
{
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    char *line;
    size_t len;
    int rc;

    arena_reset(a);
    e = trace__v1__entry__unpack(arena_allocator(a), val->mv_size,
                                 val->mv_data);
    if (!e)
        return trace_fail(TRACE_EVERIFY, "a journal entry cannot be decoded "
                                         "(run verify)");
    ev = trace__v1__event__unpack(arena_allocator(a), e->event.len,
                                  e->event.data);
    if (!ev || !ev->at)
        return trace_fail(TRACE_EVERIFY, "entry %llu: event cannot be decoded",
                          (unsigned long long)e->seq);
    if (o->party && strcmp(e->party, o->party) != 0)
        return TRACE_OK;
    if ((o->has_from && ev->at->us < o->from_us) ||
        (o->has_to && ev->at->us > o->to_us))
        return TRACE_OK;
    if (sk->on_event)
        return sk->on_event(e->seq, ev, sk->ctx);
    if ((rc = event_to_json(&line, &len, ev, l)) != TRACE_OK)
        return rc;
    rc = sk->emit(e->seq, line, len, sk->ctx);
    free(line);
    return rc;
}

struct plain {
    trace_line_fn emit;
    void *ctx;
};

static int plain_line(uint64_t seq, const char *line, size_t len, void *ctx)
{
    struct plain *p = ctx;
    (void)seq;
    return p->emit(line, len, p->ctx);
}

int trace_ledger_export(trace_ledger *l, const trace_export_opts *opts,
                        trace_line_fn emit, void *ctx)
{
    struct plain p = {emit, ctx};
    return trace_ledger_export_after(l, opts, 0, plain_line, &p);
}

static int walk(trace_ledger *l, const trace_export_opts *opts, uint64_t after,
                const struct sink *sk)
{
    uint8_t from[8];
    trace_export_opts def = TRACE_EXPORT_OPTS_INIT;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    arena *a = arena_new(64u << 20);
    int rc;

    if (!opts)
        opts = &def;
    if (!a)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if (opts->party) {
        if (!trace_party_id_valid(opts->party)) {
            rc = trace_fail(TRACE_EINVAL, "invalid party id");
            goto out;
        }
        if ((rc = mdb_cursor_open(txn, l->dbi_pchain, &cur))) {
            rc = trace_fail_mdb(rc, "pchain");
            goto out;
        }
        key = (MDB_val){strlen(opts->party), (void *)opts->party};
        be64_put(from, after + 1);
        val = (MDB_val){8, from};
        for (rc = after ? mdb_cursor_get(cur, &key, &val, MDB_GET_BOTH_RANGE)
                        : mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
             rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_DUP)) {
            MDB_val k2 = {8, val.mv_data}, v2;
            if ((rc = mdb_get(txn, l->dbi_journal, &k2, &v2))) {
                rc = trace_fail_mdb(rc, "journal");
                goto out;
            }
            if ((rc = emit_entry(l, a, &v2, opts, sk)) != TRACE_OK)
                goto out;
        }
    } else {
        if ((rc = mdb_cursor_open(txn, l->dbi_journal, &cur))) {
            rc = trace_fail_mdb(rc, "journal");
            goto out;
        }
        be64_put(from, after + 1);
        key = (MDB_val){8, from};
        for (rc = after ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)
                        : mdb_cursor_get(cur, &key, &val, MDB_FIRST);
             rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
            if ((rc = emit_entry(l, a, &val, opts, sk)) != TRACE_OK)
                goto out;
    }
    if (rc != MDB_NOTFOUND && rc != 0) {
        rc = trace_fail_mdb(rc, "export");
        goto out;
    }
    rc = TRACE_OK;
out:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}

int trace_ledger_export_after(trace_ledger *l, const trace_export_opts *opts,
                              uint64_t after, trace_line_at_fn emit, void *ctx)
{
    struct sink sk = {emit, NULL, ctx};
    return walk(l, opts, after, &sk);
}

int export_events(trace_ledger *l, const trace_export_opts *opts,
                  export_event_fn fn, void *ctx)
{
    struct sink sk = {NULL, fn, ctx};
    return walk(l, opts, 0, &sk);
}
