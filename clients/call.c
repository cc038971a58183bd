/* SPDX-License-Identifier: Apache-2.0 */
/*
 * call.c - how tracectl runs a typed operation (ops/ops.h): on a ledger
 * folder in this process, or through traced (remote_call), and renders
 * its rows with the same renderer either way.
 *
 * On a ledger folder the principal is the --as party (its rights as a
 * daemon would grant them), or the folder's owner without --as.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tracectl.h"
#include "trace/query.h"

struct embedded {
    ops_render r;
    const ops_call_t *call;
    const ops_status *st; /* the party's name, set before the first row */
    int begun;
};

static int render_row(const ops_item_t *item, void *ctx)
{
    struct embedded *e = ctx;
    if (!e->begun) {
        if (e->st)
            snprintf(e->r.name, sizeof(e->r.name), "%s", e->st->name);
        ops_render_begin(&e->r, e->call);
        e->begun = 1;
    }
    return ops_render_item(&e->r, e->call, item) == 0 ? 0 : 6;
}

/* The principal of an embedded command: --as, with the rights the
 * ledger gives that party, or the owner of the folder. */
static void embedded_principal(struct globals *g, trace_ledger *l,
                               ops_principal *who)
{
    trace_party pi;

    memset(who, 0, sizeof(*who));
    if (!g->as)
        return;
    who->party = g->as;
    if (trace_party_info(l, g->as, &pi) == TRACE_OK) {
        who->regulator = pi.regulator && !pi.suspended;
        who->scopes = who->regulator ? pi.scopes : 0;
    }
}

static void verify_progress(uint64_t done, uint64_t total, void *ctx)
{
    (void)ctx;
    if (total)
        fprintf(ctl_err, "\rverified %llu of %llu entries",
                (unsigned long long)done, (unsigned long long)total);
    if (done == total)
        fputc('\n', ctl_err);
}

/* verify --deep: the journal, then the indexes (ops_checks.c reports both as
 * one, in thousandths of each half). */
static void deep_progress(uint64_t done, uint64_t total, void *ctx)
{
    (void)ctx;
    if (total)
        fprintf(ctl_err, "\rverify --deep: %s %3llu%%",
                done < total / 2 ? "journal" : "indexes",
                (unsigned long long)(done * 100 / total));
    if (done == total)
        fputc('\n', ctl_err);
}

void ctl_render_init(struct globals *g, ops_render *r)
{
    memset(r, 0, sizeof(*r));
    r->out = ctl_out;
    r->err = ctl_err;
    r->json = g->json;
    r->csv = g->csv;
    r->html = g->html;
    r->follow = g->follow;
    r->lang = g->lang;
}

int ctl_lang_of_locale(void)
{
    static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};

    /* the first one set decides, as setlocale would */
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && v[0])
            return strncmp(v, "zh", 2) == 0 ? OPS_LANG_ZH : OPS_LANG_EN;
    }
    return OPS_LANG_EN;
}

void ctl_print_status(const ops_status *st)
{
    if (st->code != 0 && st->msg[0])
        fprintf(ctl_err, "tracectl: %s\n", st->msg);
}

/* Output that could not be written (a full disk, a closed pipe) fails
 * the command. */
static int flushed(int ret)
{
    if (fflush(ctl_out) != 0) {
        fprintf(ctl_err, "tracectl: cannot write output: %s\n",
                strerror(errno));
        return 6;
    }
    return ret;
}

int ctl_call_on_into(struct globals *g, trace_ledger *l, const ops_call_t *call,
                     ops_render *into)
{
    struct embedded e;
    ops_principal who;
    ops_env env;
    ops_status st;
    int ret;

    memset(&e, 0, sizeof(e));
    e.r = *into;
    e.call = call;
    embedded_principal(g, l, &who);
    memset(&env, 0, sizeof(env));
    env.data_dir = g->data;
    if (call->op_case == TRACE__OPS__V1__CALL__OP_VERIFY && isatty(2))
        env.progress = call->verify->has_deep && call->verify->deep
                           ? deep_progress
                           : verify_progress;
    e.st = &st;
    ret = ops_call(l, &env, &who, call, render_row, &e, &st);
    if (st.ran && !e.begun) {
        snprintf(e.r.name, sizeof(e.r.name), "%s", st.name);
        ops_render_begin(&e.r, call);
    }
    ops_render_end(&e.r, call, ret);
    ctl_print_status(&st);
    *into = e.r;
    return flushed(ret);
}

int ctl_call_items(struct globals *g, trace_ledger *l, const ops_call_t *call,
                   ops_item_fn fn, void *ctx)
{
    const ops_op *op = ops_of_call(call);
    ops_principal who;
    ops_status st;
    int ret;

    if (op && (op->flags & OPS_PAGED)) {
        fprintf(ctl_err, "tracectl: %s answers in pages\n", op->name);
        return 6;
    }
    if (!l)
        return remote_call_items(g, call, fn, ctx);
    embedded_principal(g, l, &who);
    ret = ops_call(l, NULL, &who, call, fn, ctx, &st);
    ctl_print_status(&st);
    return ret;
}

int ctl_call_on(struct globals *g, trace_ledger *l, const ops_call_t *call)
{
    ops_render r;

    ctl_render_init(g, &r);
    return ctl_call_on_into(g, l, call, &r);
}

int ctl_call_into(struct globals *g, const ops_call_t *call, ops_render *r)
{
    trace_ledger *l;
    int ret;

    if (g->connect)
        return remote_call_into(g, call, r);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    ret = ctl_call_on_into(g, l, call, r);
    ctl_close(g, l);
    return ret;
}

int ctl_call(struct globals *g, const ops_call_t *call)
{
    ops_render r;

    ctl_render_init(g, &r);
    return ctl_call_into(g, call, &r);
}

/* head --follow and checkpoint --follow on a ledger folder: the
 * operation asked again every second, each item of `kind` shown when its
 * size changed. */
struct follow {
    ops_render r;
    const ops_call_t *call;
    int kind; /* ops item case followed */
    uint64_t shown;
};

static int print_new(const ops_item_t *item, void *ctx)
{
    struct follow *f = ctx;
    uint64_t size;

    if ((int)item->item_case != f->kind)
        return 0;
    size = f->kind == TRACE__OPS__V1__ITEM__ITEM_HEAD ? item->head->size
                                                      : item->note->tree_size;
    if (size == f->shown)
        return 0;
    f->shown = size;
    ops_render_item(&f->r, f->call, item);
    fflush(f->r.out);
    return 0;
}

static int follow_embedded(struct globals *g, const ops_call_t *call, int kind)
{
    struct follow f;
    ops_principal who;
    ops_status st;
    trace_ledger *l;
    int ret;

    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    embedded_principal(g, l, &who);
    memset(&f, 0, sizeof(f));
    ctl_render_init(g, &f.r);
    f.call = call;
    f.kind = kind;
    f.shown = UINT64_MAX;
    while ((ret = ops_call(l, NULL, &who, call, print_new, &f, &st)) == 0)
        sleep(1);
    ctl_print_status(&st);
    ctl_close(g, l);
    return ret;
}

int ctl_follow_head(struct globals *g, const ops_call_t *call)
{
    /* each new head as appends land, until interrupted */
    return g->connect
               ? remote_follow_heads(g)
               : follow_embedded(g, call, TRACE__OPS__V1__ITEM__ITEM_HEAD);
}

int ctl_follow_checkpoint(struct globals *g, const ops_call_t *call)
{
    /* the latest checkpoint, then each new one as appends land */
    return g->connect
               ? remote_follow_checkpoints(g, call)
               : follow_embedded(g, call, TRACE__OPS__V1__ITEM__ITEM_NOTE);
}

int ctl_follow_alerts(struct globals *g, const ops_call_t *call)
{
    struct embedded e;
    ops_principal who;
    ops_status st;
    ops_cont next;
    const ops_call_t *c = call;
    trace_ledger *l = NULL;
    int ret;

    if (g->connect)
        return remote_follow_alerts(g, call);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    embedded_principal(g, l, &who);
    memset(&e, 0, sizeof(e));
    ctl_render_init(g, &e.r);
    e.call = call;
    e.r.last_seq = call->alerts->after;
    /* the alerts listed, then every second those stored after the last */
    while ((ret = ops_call(l, NULL, &who, c, render_row, &e, &st)) == 0) {
        fflush(ctl_out);
        sleep(1);
        ops_continue(&next, call, e.r.last_seq, 0);
        c = &next.call;
    }
    ctl_print_status(&st);
    ctl_close(g, l);
    return ret;
}
