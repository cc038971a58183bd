/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epcis_int.h - what the EPCIS reader's files share: the master data
 * (epcis_master.c) the mapping reads, and the mapping's state
 * (epcis_map.c) that the document reader (epcis.c) sets up and hands
 * each event to.  Private to libtrace.
 */
#ifndef TRACE_EPCIS_INT_H
#define TRACE_EPCIS_INT_H

#include "internal.h"
#include "trace/epcis.h"

#define MAX_ITEMS 256 /* registered items per event */

struct mprod {
    char substance[64];
    char unit[8];
    int64_t content; /* base units per dosage unit or item */
    uint32_t per_pack;
};

#define PARTY_CAP 72
#define SITE_CAP  128

struct msite {
    char party[PARTY_CAP];
    char site[SITE_CAP];
};

struct trace_epcis_master {
    strmap *products; /* gtin -> struct mprod */
    strmap *parties;  /* gln -> party id */
    strmap *permits;  /* permit -> kind */
    strmap *sites;    /* sgln -> struct msite */
};

struct item {
    const struct mprod *p;
    char gtin[15];
    char lot[128];
    int64_t packs; /* count items: packs */
    char qty[48];  /* or a substance quantity as written */
    const char *unit;
};

struct ep {
    const trace_epcis_master *m;
    trace_epcis_line_fn on_line;
    trace_epcis_note_fn note;
    void *ctx;
    trace_epcis_summary *sum;
    strmap *sales;     /* seller \x01 buyer \x01 gtin \x01 lot -> sale id */
    strmap *old_sales; /* the generation before (or NULL) */
    size_t n_sales;    /* entries of sales */
    const jt *fields;  /* the event's "...:fields" extension, or NULL */
    arena *a;          /* the event's parsed tree, reset per event */
    const char *text;  /* the event's text */
    size_t text_len;
    struct item *in, *out; /* MAX_ITEMS each, reused from event to event */
    int cb_rc;             /* a callback's (or an allocation's) error: stop */
    char reason[512];
};

/* Maps the event of `text` (one element of the event list, at `index`):
 * 0 done (mapped, skipped or rejected: counted in e->sum and told to
 * e->note), -1 stop (e->cb_rc says why). */
int handle_event(struct ep *e, const char *text, size_t len,
                 unsigned long index);

#endif
