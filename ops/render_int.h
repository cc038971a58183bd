/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_int.h - what the renderer's files (render.c, render_util.c,
 * render_register.c, render_checks.c) share: the language switch, table
 * columns and the row printers render.c's dispatch calls.  Private to
 * ops/; the renderer's API is in ops.h.
 */
#ifndef TRACE_RENDER_INT_H
#define TRACE_RENDER_INT_H

#include <stddef.h>
#include <stdio.h>

#include "ops.h"

/* Language: English or Chinese words in the human-readable output (the
 * --json field names never change). */
#define L(r, en, zh) ((r)->lang == OPS_LANG_ZH ? (zh) : (en))

struct col {
    const char *en, *zh;
    int width; /* columns; negative: right-aligned */
    int sep;   /* spaces before it (0: one) */
};

/* render_util.c */
/* A value as shown: its Chinese name in a --lang zh table. */
const char *W(const ops_render *r, const char *v);
/* s left-aligned in `width` columns (a Chinese character takes two). */
void cell(FILE *o, const char *s, int width);
/* A heading line: each column's word padded to its width. */
void heading(const ops_render *r, const char *lead, const struct col *c,
             size_t n);
/* s, or "" for NULL. */
const char *or_empty(const char *s);
/* One CSV field (quoted when needed), then ',' or, last, '\n'. */
void csv_field(FILE *o, const char *v, int last);

/* render_register.c: the special register */
/* A day of the register (--json: as it comes; else its entries' rows). */
void day(ops_render *r, const ops_call_t *call,
         const Trace__Ops__V1__RegisterDay *d);
/* The period's totals and, for HTML, the end of the page. */
void register_end(ops_render *r, const ops_call_t *call);

/* render_checks.c: alerts, reconciliation, verification, the log */
/* An alert: its JSON, a CSV row or a table row. */
void alert(ops_render *r, const Trace__Ops__V1__Alert *a);
/* reconcile's summary, on r->err (stderr when NULL). */
void summary(ops_render *r, const Trace__Ops__V1__ReconcileSummary *m);
/* verify's result. */
void verified(ops_render *r, const Trace__Ops__V1__Verified *v);
/* checkpoint: the note, its fields (--json) or the verifier key. */
void note(ops_render *r, const Trace__Ops__V1__Note *n);
/* prove: the bundle as the library wrote it. */
void bundle(ops_render *r, const Trace__Ops__V1__Bundle *b);
/* cosign: what was stored. */
void cosigned(ops_render *r, const Trace__Ops__V1__Cosigned *c);

#endif
