/* SPDX-License-Identifier: Apache-2.0 */
/*
 * call.c - how tracectl runs a typed operation (ops/ops.h): on a ledger
 * folder in this process, or through traced (remote_call), and renders
 * its rows with the same renderer either way.
 *
 * On a ledger folder the principal is the --as party (its rights as a
 * daemon would grant them), or the folder's owner without --as.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tracectl.h"
#include "trace/query.h"

struct embedded {
    ops_render r;
    const ops_call_t *call;
    int begun;
};

static int render_row(const ops_item_t *item, void *ctx)
{
    struct embedded *e = ctx;
    if (!e->begun) {
        ops_render_begin(&e->r, e->call);
        e->begun = 1;
    }
    return ops_render_item(&e->r, e->call, item) == 0 ? 0 : 6;
}

/* The principal of an embedded command: --as, with the rights the
 * ledger gives that party, or the owner of the folder. */
static int embedded_principal(struct globals *g, trace_ledger *l,
                              ops_principal *who)
{
    trace_party pi;

    memset(who, 0, sizeof(*who));
    if (!g->as)
        return 0;
    who->party = g->as;
    if (trace_party_info(l, g->as, &pi) == TRACE_OK)
        who->regulator = pi.regulator && !pi.suspended;
    return 0;
}

void ctl_print_status(const ops_status *st)
{
    if (st->code != 0 && st->msg[0])
        fprintf(ctl_err, "tracectl: %s\n", st->msg);
}

int ctl_call(struct globals *g, const ops_call_t *call)
{
    struct embedded e;
    ops_principal who;
    ops_status st;
    trace_ledger *l;
    int ret;

    if (g->connect && !g->ledger)
        return remote_call(g, call);
    ctl_args_done(g);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    memset(&e, 0, sizeof(e));
    e.r.out = ctl_out;
    e.r.json = g->json;
    e.call = call;
    if (g->principal) {
        who.party = g->principal;
        who.regulator = g->principal_regulator;
    } else {
        embedded_principal(g, l, &who);
    }
    ret = ops_call(l, &who, call, render_row, &e, &st);
    if (st.ran && !e.begun)
        ops_render_begin(&e.r, call);
    ops_render_end(&e.r, call, ret);
    ctl_print_status(&st);
    ctl_close(g, l);
    return ret;
}

struct follow {
    ops_render r;
    const ops_call_t *call;
    uint64_t shown;
};

static int print_new_head(const ops_item_t *item, void *ctx)
{
    struct follow *f = ctx;

    if (item->item_case != TRACE__OPS__V1__ITEM__ITEM_HEAD ||
        item->head->size == f->shown)
        return 0;
    f->shown = item->head->size;
    ops_render_item(&f->r, f->call, item);
    fflush(f->r.out);
    return 0;
}

int ctl_follow_head(struct globals *g, const ops_call_t *call)
{
    struct follow f;
    ops_principal who;
    ops_status st;
    trace_ledger *l;
    int ret;

    if (g->connect && !g->ledger)
        return remote_follow_heads(g);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    embedded_principal(g, l, &who);
    memset(&f, 0, sizeof(f));
    f.r.out = ctl_out;
    f.r.json = g->json;
    f.call = call;
    f.shown = UINT64_MAX;
    /* each new head as appends land, until interrupted */
    while ((ret = ops_call(l, &who, call, print_new_head, &f, &st)) == 0)
        sleep(1);
    ctl_print_status(&st);
    ctl_close(g, l);
    return ret;
}
