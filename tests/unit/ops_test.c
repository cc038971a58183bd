/* SPDX-License-Identifier: Apache-2.0 */
/* ops_test.c - helpers of the ops/ tests (ops_test.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops_test.h"

ops_call_t *mk(callbuf *b, int op_case)
{
    memset(b, 0, sizeof(*b));
    trace__ops__v1__call__init(&b->call);
    trace__ops__v1__balance__init(&b->balance);
    trace__ops__v1__trace__init(&b->trace);
    trace__ops__v1__permit_show__init(&b->permit);
    trace__ops__v1__history__init(&b->history);
    trace__ops__v1__head__init(&b->head);
    trace__ops__v1__catalog__init(&b->catalog);
    trace__ops__v1__register__init(&b->reg);
    trace__ops__v1__export__init(&b->export_);
    trace__ops__v1__alerts__init(&b->alerts);
    trace__ops__v1__reconcile__init(&b->reconcile);
    trace__ops__v1__verify__init(&b->verify);
    trace__ops__v1__backup__init(&b->backup);
    trace__ops__v1__parties__init(&b->parties);
    trace__ops__v1__permit_list__init(&b->permit_list);
    trace__ops__v1__check__init(&b->check);
    trace__ops__v1__checkpoint__init(&b->checkpoint);
    trace__ops__v1__prove__init(&b->prove);
    trace__ops__v1__cosign__init(&b->cosign);
    trace__ops__v1__products__init(&b->products);
    trace__ops__v1__applications__init(&b->applications);
    trace__ops__v1__regime__init(&b->regime);
    b->call.op_case = (Trace__Ops__V1__Call__OpCase)op_case;
    switch (op_case) {
    case C(BALANCE):
        b->call.balance = &b->balance;
        break;
    case C(TRACE):
        b->call.trace = &b->trace;
        break;
    case C(PERMIT_SHOW):
        b->call.permit_show = &b->permit;
        break;
    case C(HISTORY):
        b->call.history = &b->history;
        break;
    case C(HEAD):
        b->call.head = &b->head;
        break;
    case C(CATALOG):
        b->call.catalog = &b->catalog;
        break;
    case C(SPECIAL_REGISTER):
        b->call.special_register = &b->reg;
        break;
    case C(EXPORT):
        b->call.export = &b->export_;
        break;
    case C(ALERTS):
        b->call.alerts = &b->alerts;
        break;
    case C(RECONCILE):
        b->call.reconcile = &b->reconcile;
        break;
    case C(VERIFY):
        b->call.verify = &b->verify;
        break;
    case C(BACKUP):
        b->call.backup = &b->backup;
        break;
    case C(PARTIES):
        b->call.parties = &b->parties;
        break;
    case C(PERMIT_LIST):
        b->call.permit_list = &b->permit_list;
        break;
    case C(CHECK):
        b->call.check = &b->check;
        break;
    case C(CHECKPOINT):
        b->call.checkpoint = &b->checkpoint;
        break;
    case C(PROVE):
        b->call.prove = &b->prove;
        break;
    case C(COSIGN):
        b->call.cosign = &b->cosign;
        break;
    case C(PRODUCTS):
        b->call.products = &b->products;
        break;
    case C(APPLICATIONS):
        b->call.applications = &b->applications;
        break;
    case C(REGIME):
        b->call.regime = &b->regime;
        break;
    default:
        break;
    }
    return &b->call;
}

void out_open(struct out *o, ops_render *r, int json)
{
    memset(o, 0, sizeof(*o));
    o->f = open_memstream(&o->buf, &o->len);
    o->e = open_memstream(&o->ebuf, &o->elen);
    assert_non_null(o->f);
    assert_non_null(o->e);
    memset(r, 0, sizeof(*r));
    r->out = o->f;
    r->err = o->e;
    r->json = json;
}

void out_close(struct out *o)
{
    fclose(o->f);
    fclose(o->e);
}

void out_free(struct out *o)
{
    free(o->buf);
    free(o->ebuf);
}

ops_call_t *history_of(callbuf *b, const char *party, const char *lot,
                       uint64_t limit)
{
    ops_call_t *c = mk(b, C(HISTORY));
    b->history.party = (char *)party;
    b->history.lot = (char *)lot;
    b->history.has_limit = 1;
    b->history.limit = limit;
    return c;
}
