/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.h - typed operations on a ledger, shared by tracectl and traced.
 *
 * An operation is a row of one table (ops.c): its name, its request
 * (a Call of proto/ops.proto), flags, who may run it and its handler.
 * Every operation runs in three steps:
 *
 *   parse    argv -> Call                  tracectl only (clients/)
 *   execute  Call + principal -> Items      ops_call(): here, on libtrace
 *   render   Call + Items -> text or JSON   ops_render_*(): tracectl
 *
 * tracectl on a ledger folder executes in process; through traced the
 * Call travels in RequestBody.call and the Items come back in a Result,
 * rendered by the same code: the output is the same by construction.
 *
 * ops_call() checks the principal's rights before the handler reads
 * anything (and, where a right depends on what is read, as the handler
 * reads it, in this module too); nothing else decides who may read what.
 * It uses no FILE*, no global or thread-local state, and runs on any
 * number of threads at once, each query on its own read transaction.
 */
#ifndef TRACE_OPS_H
#define TRACE_OPS_H

#include <stdint.h>
#include <stdio.h>

#include "ops.pb-c.h"
#include "trace/ledger.h"

typedef Trace__Ops__V1__Call ops_call_t;
typedef Trace__Ops__V1__Item ops_item_t;

/* Who runs an operation. */
typedef struct ops_principal {
    const char *party; /* NULL: the owner of the ledger folder (all rights) */
    int regulator;     /* an active regulator: reads everything */
} ops_principal;

/* An operation's end: an exit code of tracectl (0 ok .. 6) and, when
 * not 0, why (printed after "tracectl: "). */
typedef struct ops_status {
    int code;
    int ran; /* got past authorization and began */
    char msg[1024];
} ops_status;

/* Receives each row of an answer; the item and its strings are borrowed
 * for the call.  Non-zero stops the operation, which ends with that code
 * (st->msg left to the callee, through ops_status_set). */
typedef int (*ops_item_fn)(const ops_item_t *item, void *ctx);

#define OPS_READ     0x1u /* reads only; runs beside other reads */
#define OPS_PER_ROWS 0x2u /* authorization per row read (see ops.c) */

typedef struct ops_op {
    const char *name;   /* the tracectl command */
    int op_case;        /* Call.op */
    unsigned flags;     /* OPS_* */
    const char *rights; /* who may run it, for --help and docs */
} ops_op;

/* The row of `name` (a tracectl command), or NULL. */
const ops_op *ops_find(const char *name);
/* The row of a Call, or NULL for an unknown or empty one. */
const ops_op *ops_of_call(const ops_call_t *call);
/* Row i of the table, or NULL past its end. */
const ops_op *ops_at(size_t i);

/* Runs `call` on `l` as `who`, passing each row to fn.  Fills st and
 * returns st->code. */
int ops_call(trace_ledger *l, const ops_principal *who, const ops_call_t *call,
             ops_item_fn fn, void *ctx, ops_status *st);

/* Sets st's code and message (printf-style); returns code. */
int ops_status_set(ops_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rendering: what tracectl prints.  begin before the first item when
 * the operation ran, item per row, end after the last with the code. */
typedef struct ops_render {
    FILE *out;
    int json;
    size_t rows;
    uint64_t last_seq; /* history: the last row's position */
} ops_render;

void ops_render_begin(ops_render *r, const ops_call_t *call);
int ops_render_item(ops_render *r, const ops_call_t *call,
                    const ops_item_t *item);
void ops_render_end(ops_render *r, const ops_call_t *call, int code);

/* JSON helpers the renderers use (also tracectl's): a string value with
 * escapes, or null for NULL; `,"key":value` (without the comma when
 * comma is 0). */
void ops_json_value(FILE *f, const char *val);
void ops_json_str(FILE *f, const char *key, const char *val, int comma);

#endif
