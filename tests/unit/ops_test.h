/* SPDX-License-Identifier: Apache-2.0 */
/* ops_test.h - what the tests of ops/ share: Calls of every operation
 * with their request messages (mk), and renderers writing to memory. */
#ifndef TRACE_OPS_TEST_H
#define TRACE_OPS_TEST_H

#include <stdint.h>
#include <stdio.h>

#include "ops.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x
#define I(x) TRACE__OPS__V1__ITEM__ITEM_##x

/* A Call and room for every request message it may point to. */
typedef struct callbuf {
    ops_call_t call;
    Trace__Ops__V1__Balance balance;
    Trace__Ops__V1__Trace trace;
    Trace__Ops__V1__PermitShow permit;
    Trace__Ops__V1__History history;
    Trace__Ops__V1__Head head;
    Trace__Ops__V1__Catalog catalog;
    Trace__Ops__V1__Register reg;
    Trace__Ops__V1__Export export_;
    Trace__Ops__V1__Alerts alerts;
    Trace__Ops__V1__Reconcile reconcile;
    Trace__Ops__V1__Verify verify;
    Trace__Ops__V1__Backup backup;
    Trace__Ops__V1__Parties parties;
    Trace__Ops__V1__PermitList permit_list;
    Trace__Ops__V1__Check check;
    Trace__Ops__V1__Checkpoint checkpoint;
    Trace__Ops__V1__Prove prove;
    Trace__Ops__V1__Cosign cosign;
    Trace__Ops__V1__Products products;
    Trace__Ops__V1__Applications applications;
    Trace__Ops__V1__Regime regime;
    char dest[400];
} callbuf;

/* An empty Call of `op_case` (its request message with defaults). */
ops_call_t *mk(callbuf *b, int op_case);
/* A history Call of a party or a lot with a page size. */
ops_call_t *history_of(callbuf *b, const char *party, const char *lot,
                       uint64_t limit);

/* Where a renderer writes: two memory streams. */
struct out {
    FILE *f, *e;
    char *buf, *ebuf;
    size_t len, elen;
};

/* A renderer (text, or JSON with json) writing to o's streams. */
void out_open(struct out *o, ops_render *r, int json);
void out_close(struct out *o);
void out_free(struct out *o);

#endif
