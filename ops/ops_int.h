/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops_int.h - what the operation table (ops.c) and the handlers
 * (ops_query.c, ops_checks.c) share: the state of a call, the rights,
 * the department filter rows pass through, and the handlers the table
 * names.  Private to ops/; the operations' API is in ops.h.
 */
#ifndef TRACE_OPS_INT_H
#define TRACE_OPS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "trace/query.h"

/* What a handler shares with its library callbacks. */
struct run {
    trace_ledger *l;
    const ops_env *env;
    const ops_principal *who;
    const ops_call_t *call;
    ops_item_fn fn;
    void *ctx;
    ops_status *st;
    size_t rows;
    uint64_t last; /* paged operations: position of the last row taken */
    int paged;     /* the row is OPS_PAGED */
};

/* ops.c: rights, the department filter, the ends of a handler */
/* A library error: its message and exit code. */
int failed(struct run *r, int rc);
/* Exit code 5, "permission denied: " and fmt with arg. */
int denied(struct run *r, const char *fmt, const char *arg);
/* 1 if the principal may read `party`'s own data. */
int reads_party(const ops_principal *who, const char *party);
/* 1 if the principal may read the permit (holder, counterparty, citer). */
int reads_permit(const ops_principal *who, const trace_permit_state *p);
/* Passes a row on, unless it is outside a scoped regulator's scopes. */
int emit(struct run *r, ops_item_t *it);
/* Emits a row of a paged operation at position pos. */
int emit_at(struct run *r, ops_item_t *it, uint64_t pos);
/* A stopped query: the callee's code, else the library's error. */
int ended(struct run *r, int rc);

/* ops_query.c: the ledger's queries; each returns 0 or an exit code in
 * r->st */
/* balance: a party's stock. */
int run_balance(struct run *r);
/* trace: a lot's movements, forward or backward. */
int run_trace(struct run *r);
/* permit show: a permit, its uses; read rights checked per row. */
int run_permit(struct run *r);
/* history: a party's or a lot's events, paged. */
int run_history(struct run *r);
/* head: the ledger's size and head hash. */
int run_head(struct run *r);
/* catalog: the substances. */
int run_catalog(struct run *r);
/* regime: the regime and its table. */
int run_regime(struct run *r);
/* register: the special register, day by day. */
int run_register(struct run *r);
/* export: events as JSON Lines, paged. */
int run_export(struct run *r);
/* parties: the registry. */
int run_parties(struct run *r);
/* products: the product master. */
int run_products(struct run *r);
/* applications: permit applications and their decisions. */
int run_applications(struct run *r);
/* permit list: the permits the principal may list. */
int run_permit_list(struct run *r);

/* ops_checks.c: the checks, verification and the log */
/* alerts: stored alerts, paged. */
int run_alerts(struct run *r);
/* reconcile: runs the rules; its alerts, then a summary. */
int run_reconcile(struct run *r);
/* verify: the journal (and with --deep the indexes). */
int run_verify(struct run *r);
/* backup: a copy of the ledger. */
int run_backup(struct run *r);
/* credit: a party's credit score and its factors. */
int run_credit(struct run *r);
/* check: an event's findings before it is recorded. */
int run_check(struct run *r);
/* checkpoint: a signed note of the log, or its verifier key. */
int run_checkpoint(struct run *r);
/* prove: an event's, a chain's or a consistency proof. */
int run_prove(struct run *r);
/* cosign: stores a witness's cosignature. */
int run_cosign(struct run *r);

#endif
