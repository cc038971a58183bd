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
    unsigned scopes;   /* a regulator's departments (TRACE_SCOPE_*): it
                          reads only within them; 0: everything */
} ops_principal;

/* Where an operation runs: what tracectl on a ledger folder and traced
 * set differently.  All fields may be 0. */
typedef struct ops_env {
    int daemon;             /* for a client of traced: no path it names is
                               opened, no rules it sends are used */
    const char *data_dir;   /* the ledger folder (backup's message) */
    const char *backup_dir; /* traced: backups go here, under plain names */
    const char *rules_json; /* traced: its reconciliation rules */
    size_t rules_len;
    /* traced: reconciliation's alerts (trace_reconcile_opts.store_via)
     * and witnesses' cosignatures are stored through its writer: runs
     * store(arg) there and returns its result; NULL: in this thread */
    int (*store_via)(int (*store)(void *arg), void *arg, void *store_ctx);
    void *store_ctx;
    /* progress of long operations (verify), or NULL; stop(progress_ctx)
     * non-zero ends them early (code 6) */
    void (*progress)(uint64_t done, uint64_t total, void *ctx);
    int (*stop)(void *ctx);
    void *progress_ctx;
} ops_env;

/* An operation's end: an exit code of tracectl (0 ok .. 6) and, when
 * not 0, why (printed after "tracectl: "). */
typedef struct ops_status {
    int code;
    int ran;       /* got past authorization and began */
    uint64_t next; /* stopped for room (OPS_FULL): continue after this */
    char msg[1024];
    char name[256]; /* balance, register: the party's name, set before
                       the first row ("" if unknown) */
} ops_status;

/* Receives each row of an answer; the item and its strings are borrowed
 * for the call.  Non-zero stops the operation, which ends with that code
 * (st->msg left to the callee, through ops_status_set); OPS_FULL says
 * that this row did not fit: an operation that pages (OPS_PAGED) then
 * ends with code 0 and st->next set, others with code 6. */
typedef int (*ops_item_fn)(const ops_item_t *item, void *ctx);
#define OPS_FULL 100

#define OPS_READ      0x01u /* reads only; runs beside other reads */
#define OPS_PER_ROWS  0x02u /* authorization per row read (ops_query.c) */
#define OPS_REGULATOR 0x04u /* regulators only */
#define OPS_WRITE     0x08u /* stores something (through the writer) */
#define OPS_PAGED     0x10u /* answers larger than a reply come in pages */
#define OPS_LONG      0x20u /* may take minutes on a large ledger */

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

/* Runs `call` on `l` as `who` in `env` (NULL: a ledger folder's owner's
 * defaults), passing each row to fn.  Fills st and returns st->code. */
int ops_call(trace_ledger *l, const ops_env *env, const ops_principal *who,
             const ops_call_t *call, ops_item_fn fn, void *ctx, ops_status *st);

/* Only the checks of ops_call: the request's form and the principal's
 * rights that do not depend on what the operation reads.  0 or the
 * code in st. */
int ops_authorize(trace_ledger *l, const ops_env *env, const ops_principal *who,
                  const ops_call_t *call, ops_status *st);

/* The Call that continues a paged answer (an OPS_PAGED row's) after
 * position `next`, `taken` rows into it: c->call, which borrows the
 * strings of `call`. */
typedef struct ops_cont {
    ops_call_t call;
    union {
        Trace__Ops__V1__Export export_;
        Trace__Ops__V1__Alerts alerts;
        Trace__Ops__V1__History history;
    } u;
} ops_cont;
void ops_continue(ops_cont *c, const ops_call_t *call, uint64_t next,
                  size_t taken);

/* Sets st's code and message (printf-style); returns code. */
int ops_status_set(ops_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rendering: what tracectl prints.  begin before the first item when
 * the operation ran, item per row, end after the last with the code. */
#define OPS_LANG_EN 0
#define OPS_LANG_ZH 1

typedef struct ops_render {
    FILE *out, *err; /* err: summaries (reconcile), as tracectl prints */
    int json;
    int csv;            /* --csv (operations with ops_render_has_csv) */
    int html;           /* register --html: a printable page */
    int follow;         /* alerts --follow: no "(no alerts)" */
    int lang;           /* OPS_LANG_EN or OPS_LANG_ZH (words, not --json) */
    const char *prefix; /* before each finding line (record's warnings) */
    char name[256]; /* the party's name (ops_status.name, Result's), or "" */
    size_t rows;
    uint64_t last_seq; /* history: the last row's position; alerts: the
                          last alert's */
    struct {           /* register: its last day, for the totals that
                          ops_render_end prints */
        char date[16], unit[24];
        char received[48], dispensed[48], destroyed[48], other_out[48],
            closing[48];
    } reg;
    char holder[256]; /* trace: the holder last named ("" none) */
} ops_render;

void ops_render_begin(ops_render *r, const ops_call_t *call);
/* 1 if the operation has a CSV form (r->csv): balance, history, alerts,
 * register.  CSV starts with a UTF-8 BOM and a header line. */
int ops_render_has_csv(int op_case);
/* 1 if the operation has a printable HTML form (r->html): register.  A
 * whole page (UTF-8, inline CSS), every value HTML-escaped. */
int ops_render_has_html(int op_case);
int ops_render_item(ops_render *r, const ops_call_t *call,
                    const ops_item_t *item);
void ops_render_end(ops_render *r, const ops_call_t *call, int code);

/* A protobuf-c allocator for decoding answers of many rows: memory comes
 * from chunks of at least `first` bytes and is released all at once by
 * ops_bump_free (free calls in between do nothing).  NULL if out of
 * memory. */
ProtobufCAllocator *ops_bump_new(size_t first);
void ops_bump_free(ProtobufCAllocator *a);

/* JSON helpers the renderers use (also tracectl's): a string value with
 * escapes, or null for NULL; `,"key":value` (without the comma when
 * comma is 0). */
void ops_json_value(FILE *f, const char *val);
void ops_json_str(FILE *f, const char *key, const char *val, int comma);

#endif
