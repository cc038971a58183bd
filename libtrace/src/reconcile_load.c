/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile_load.c - what a reconciliation run reads: every event in
 * force (a corrected event replaced by its replacement, a voided one
 * dropped) as a compact record with interned strings, the journal read
 * by two threads a half each, then the records put in `at` order.
 * The rules (rules*.c) and the engine (reconcile.c) read only these
 * records.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile_int.h"

const char *intern(struct run *r, const char *s)
{
    return s ? strmap_intern(r->strings, s) : NULL;
}

/* The fields rec_add interns through r->last. */
enum {
    LAST_PARTY,
    LAST_LOT,
    LAST_SITE,
    LAST_TO,
    LAST_FROM,
    LAST_PERMIT,
    LAST_PRESCRIBER,
    LAST_PATIENT,
    LAST_FORM,
    N_LAST
};
_Static_assert(N_LAST <= sizeof(((struct run *)0)->last) / sizeof(char *),
               "room for every field");

/* intern(), asked first of the string interned last for the field. */
static const char *intern_last(struct run *r, int field, const char *s)
{
    const char *p = r->last[field];

    if (!s)
        return NULL;
    if (p && strcmp(p, s) == 0)
        return p;
    return r->last[field] = intern(r, s);
}

static const struct subst_facts *substance_facts(struct run *r,
                                                 const char *name)
{
    struct subst_facts *f;
    const subst_info *s;

    /* the name recorded is the map's key of the facts */
    if (r->last_facts &&
        strcmp(strmap_key_of(r->subs, r->last_facts), name) == 0)
        return r->last_facts;
    f = strmap_get(r->subs, name, 1);
    if (!f || f->code)
        return r->last_facts = f;
    s = catalog_find(r->l->cat, name);
    f->sub = s;
    if (!(f->code = intern(r, s ? s->code : name)))
        return NULL;
    /* its control class in the ledger's regime (regime.c) */
    f->cls = (uint8_t)regime_class_index(r->l->regime, s);
    if (s && (subst_has_scope(s, "CN-NARC") || subst_has_scope(s, "CN-PSY-1")))
        f->rxcls = 1;
    else if (s && subst_has_scope(s, "CN-PSY-2"))
        f->rxcls = 2;
    return r->last_facts = f;
}

static int field_offset(const ProtobufCMessageDescriptor *d, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, name);
    return f ? (int)f->offset : -1;
}

static const void *at_offset(const ProtobufCMessage *m, int off)
{
    return off < 0 ? NULL : *(const void *const *)((const char *)m + off);
}

/* ------------------------------------------------------------------ */
/* Loading the effective events                                         */

const char *rec_type(const rec *x)
{
    return event_type_by_case(x->kind)->name;
}

int rec_add(struct run *r, const Trace__V1__Event *ev,
            const Trace__V1__Entry *e, uint64_t seq)
{
    const ProtobufCMessage *body = event_body(ev);
    struct body_layout *bl;
    const Trace__V1__Quantity *q;
    const char *sub;
    rec *x;

    if (!body || ev->body_case >= 64)
        return TRACE_OK;
    bl = &r->layouts[ev->body_case];
    if (!bl->known) {
        bl->qty = field_offset(body->descriptor, "qty");
        bl->substance = field_offset(body->descriptor, "substance");
        bl->lot = field_offset(body->descriptor, "lot");
        bl->site = field_offset(body->descriptor, "site");
        bl->known = 1;
    }
    q = at_offset(body, bl->qty);
    if (r->n == r->cap) { /* a full run sizes it once; a partial one grows */
        size_t nc = r->cap ? r->cap * 2 : 64;
        rec *p = big_alloc(nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (r->n)
            memcpy(p, r->recs, r->n * sizeof(*p));
        big_free(r->recs);
        r->recs = p;
        r->cap = nc;
    }
    x = &r->recs[r->n];
    memset(x, 0, sizeof(*x));
    x->seq = seq;
    x->at = ev->at->us;
    x->recorded = e->recorded_us;
    x->historic = e->has_historic && e->historic;
    x->kind = (uint8_t)ev->body_case;
    x->party = intern_last(r, LAST_PARTY, ev->party);
    x->id = arena_strdup(r->a, ev->id, strlen(ev->id));
    if ((sub = at_offset(body, bl->substance))) {
        const struct subst_facts *f = substance_facts(r, sub);
        if (!f)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        x->substance = f->code;
        x->sub = f->sub;
        x->cls = f->cls;
        x->rxcls = f->rxcls;
    }
    x->lot = intern_last(r, LAST_LOT, at_offset(body, bl->lot));
    x->site = intern_last(r, LAST_SITE, at_offset(body, bl->site));
    if (!x->site)
        x->site = intern_last(r, LAST_SITE, "main");
    if (!q && ev->body_case == TRACE__V1__EVENT__BODY_STOCKTAKE_BODY)
        q = ev->stocktake_body->counted;
    if (q) {
        x->qty = q->amount;
        x->unit = unit_name(unit_index(q->unit));
    }
    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_SALE_BODY:
        x->to = intern_last(r, LAST_TO, ev->sale_body->to);
        x->permit = intern_last(r, LAST_PERMIT, ev->sale_body->permit);
        x->tpermit = intern(r, ev->sale_body->transport_permit);
        x->carrier = intern(r, ev->sale_body->carrier);
        break;
    case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        x->from = intern_last(r, LAST_FROM, ev->receipt_body->from);
        x->ref = arena_strdup(r->a, ev->receipt_body->ref,
                              strlen(ev->receipt_body->ref));
        break;
    case TRACE__V1__EVENT__BODY_TRANSFER_BODY:
        x->from = intern(r, ev->transfer_body->from_site);
        x->to = intern(r, ev->transfer_body->to_site);
        break;
    case TRACE__V1__EVENT__BODY_IMPORT_BODY:
        x->permit = intern(r, ev->import_body->permit);
        break;
    case TRACE__V1__EVENT__BODY_PERMIT_BODY:
        x->permit = intern(r, ev->permit_body->permit);
        if (ev->permit_body->application) {
            const Trace__V1__ApplicationRef *a = ev->permit_body->application;
            x->app_party = intern(r, a->party);
            x->app_id = arena_strdup(r->a, a->id, strlen(a->id));
            if (!x->app_id)
                return trace_fail(TRACE_ENOMEM, "out of memory");
        }
        break;
    case TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY: {
        const Trace__V1__ApplicationRef *a =
            ev->application_decision_body->application;
        x->app_party = intern(r, a->party);
        x->app_id = arena_strdup(r->a, a->id, strlen(a->id));
        if (!x->app_id)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        break;
    }
    case TRACE__V1__EVENT__BODY_PERMIT_STATUS_BODY:
        x->permit = intern(r, ev->permit_status_body->permit);
        break;
    case TRACE__V1__EVENT__BODY_EXPORT_BODY:
        x->permit = intern(r, ev->export_body->permit);
        break;
    case TRACE__V1__EVENT__BODY_DESTROY_BODY:
        x->witness = intern(r, ev->destroy_body->witness);
        break;
    case TRACE__V1__EVENT__BODY_LOSS_BODY:
        x->reason = intern(r, ev->loss_body->reason);
        break;
    case TRACE__V1__EVENT__BODY_PICKUP_BODY:
    case TRACE__V1__EVENT__BODY_HANDOVER_BODY:
    case TRACE__V1__EVENT__BODY_DELIVERY_BODY: {
        /* from, ref: the sale cited; to: the next carrier or the buyer */
        const Trace__V1__EventRef *ref = msg_field(body, "ref");
        x->from = intern(r, ref->party);
        x->ref = arena_strdup(r->a, ref->id, strlen(ref->id));
        if (!x->ref)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (ev->body_case == TRACE__V1__EVENT__BODY_HANDOVER_BODY)
            x->to = intern(r, ev->handover_body->to);
        else if (ev->body_case == TRACE__V1__EVENT__BODY_DELIVERY_BODY)
            x->to = intern(r, ev->delivery_body->to);
        break;
    }
    case TRACE__V1__EVENT__BODY_PARCEL_BODY: {
        const Trace__V1__ParcelBody *pb = ev->parcel_body;
        x->waybill = arena_strdup(r->a, pb->waybill, strlen(pb->waybill));
        x->outlet = intern(r, pb->outlet);
        if (!x->waybill)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        x->pchecks = (uint8_t)((pb->sender_verified ? PCHECK_SENDER : 0) |
                               (pb->opened ? PCHECK_OPENED : 0) |
                               (pb->scanned ? PCHECK_SCANNED : 0));
        break;
    }
    case TRACE__V1__EVENT__BODY_DISPENSE_BODY: {
        const Trace__V1__Rx *rx = ev->dispense_body->rx;
        x->rx = arena_strdup(r->a, rx->id, strlen(rx->id)); /* unique */
        if (!x->rx)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        x->prescriber = intern_last(r, LAST_PRESCRIBER, rx->prescriber);
        x->patient = intern_last(r, LAST_PATIENT, rx->patient);
        x->form = intern_last(r, LAST_FORM, rx->form);
        x->days = rx->days_supply;
        x->chronic = rx->has_chronic && rx->chronic;
        break;
    }
    case TRACE__V1__EVENT__BODY_PRODUCE_BODY: {
        const Trace__V1__ProduceBody *p = ev->produce_body;
        if (p->n_inputs > UINT32_MAX)
            return trace_fail(TRACE_EINVAL, "too many inputs");
        x->n_inputs = (uint32_t)p->n_inputs;
        x->inputs = arena_alloc(r->a, (p->n_inputs + 1) * sizeof(*x->inputs));
        if (!x->inputs)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_inputs; i++) {
            x->inputs[i].lot = intern(r, p->inputs[i]->lot);
            const struct subst_facts *f =
                substance_facts(r, p->inputs[i]->substance);
            if (!f)
                return trace_fail(TRACE_ENOMEM, "out of memory");
            x->inputs[i].substance = f->code;
            x->inputs[i].qty = p->inputs[i]->qty->amount;
        }
        break;
    }
    case TRACE__V1__EVENT__BODY_PARTY_BODY: {
        const Trace__V1__PartyBody *p = ev->party_body;
        x->subject = intern(r, p->subject);
        x->pkind = intern(r, p->kind);
        x->pscopes = (uint8_t)trace_scope_mask((const char *const *)p->scopes,
                                               p->n_scopes);
        x->pstatus = intern(r, p->status);
        if (p->n_licenses > UINT32_MAX)
            return trace_fail(TRACE_EINVAL, "too many licences");
        x->n_licenses = (uint32_t)p->n_licenses;
        x->licenses = arena_alloc(r->a, (p->n_licenses + 1) * sizeof(char *));
        if (!x->licenses)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_licenses; i++)
            x->licenses[i] = (char *)intern(r, p->licenses[i]);
        break;
    }
    default:
        break;
    }
    r->n++;
    return TRACE_OK;
}

/* r->by_at: the records in (at, seq) order.  The records are in journal
 * order, so a stable sort by `at` alone gives it: a least significant
 * digit radix sort, 16 bits a pass, skipping the passes whose digit is
 * the same for every record (the top bits of times a few years apart).
 * A large run sorts its two halves on two threads and merges them (ties
 * go to the earlier half: journal order). */
struct at_key {
    uint64_t at; /* sign bit flipped: unsigned order is time order */
    uint32_t i;
};

struct at_sort {
    struct at_key *a, *b; /* the keys, a buffer as large */
    size_t n;
    size_t *count;      /* 65536 */
    struct at_key *out; /* a or b: where the sorted keys ended */
};

static void *at_sort_run(void *arg)
{
    struct at_sort *s = arg;
    struct at_key *a = s->a, *b = s->b;

    for (int shift = 0; shift < 64; shift += 16) {
        size_t sum = 0;
        memset(s->count, 0, 65536 * sizeof(*s->count));
        for (size_t i = 0; i < s->n; i++)
            s->count[(a[i].at >> shift) & 0xffff]++;
        if (s->n && s->count[(a[0].at >> shift) & 0xffff] == s->n)
            continue; /* one digit for all: the order stays */
        for (size_t d = 0; d < 65536; d++) {
            size_t c = s->count[d];
            s->count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < s->n; i++)
            b[s->count[(a[i].at >> shift) & 0xffff]++] = a[i];
        struct at_key *t = a;
        a = b;
        b = t;
    }
    s->out = a;
    return NULL;
}

int sort_by_at(struct run *r)
{
    struct at_key *a = big_alloc((r->n + 1) * sizeof(*a)),
                  *b = big_alloc((r->n + 1) * sizeof(*b));
    size_t *count = malloc(2 * 65536 * sizeof(*count));
    struct at_sort lo, hi;
    pthread_t th;
    int rc = TRACE_OK, two = 0;

    if (r->n >= UINT32_MAX) { /* rec.pos */
        rc = trace_fail(TRACE_ENOMEM, "too many events for one run");
        goto out;
    }
    if (!a || !b || !count ||
        !(r->by_at = big_alloc((r->n + 1) * sizeof(*r->by_at)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->n; i++)
        a[i] = (struct at_key){(uint64_t)r->recs[i].at ^ (1ULL << 63),
                               (uint32_t)i};
    lo = (struct at_sort){a, b, r->n, count, NULL};
    if (r->n >= 2 * reconcile_split_min) {
        size_t h = r->n / 2;
        hi = (struct at_sort){a + h, b + h, r->n - h, count + 65536, NULL};
        lo.n = h;
        two = pthread_create(&th, NULL, at_sort_run, &hi) == 0;
        if (!two)
            lo.n = r->n;
    }
    at_sort_run(&lo);
    if (!two) {
        for (size_t i = 0; i < r->n; i++) {
            r->by_at[i] = &r->recs[lo.out[i].i];
            r->by_at[i]->pos = (uint32_t)i;
        }
        goto out;
    }
    pthread_join(th, NULL);
    for (size_t i = 0, x = 0, y = 0; i < r->n; i++) {
        const struct at_key *k =
            y == hi.n || (x < lo.n && lo.out[x].at <= hi.out[y].at)
                ? &lo.out[x++]
                : &hi.out[y++];
        r->by_at[i] = &r->recs[k->i];
        r->by_at[i]->pos = (uint32_t)i;
    }
out:
    big_free(a);
    big_free(b);
    free(count);
    return rc;
}

int cmp_seq(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The records of the journal's entries from `first` to `last` (keys),
 * every event in force, corrections applied: appended to r->recs. */
/* What loading needs of a journal entry (trace.proto Entry): the time of
 * its append, whether it is historic and its event's bytes (pointing into
 * the stored entry), read from the wire format without decoding and
 * copying the whole Entry.  1 when every required field is there with
 * its wire type and nothing runs past the end; 0 otherwise, and the
 * caller decodes the entry in full (which then decides, as before,
 * whether it is damaged). */

static int peek_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

int entry_peek(const uint8_t *p, size_t n, struct entry_peek *out)
{
    const uint8_t *end = p + n;
    unsigned seen = 0;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        uint64_t tag, v;
        if (!peek_varint(&p, end, &tag) || tag >> 3 == 0 || tag >> 3 > 12)
            return 0;
        unsigned field = (unsigned)(tag >> 3), wire = (unsigned)(tag & 7);
        /* varints: version, seq, party_seq, recorded_us, historic,
         * sig_count; the others are length-delimited */
        int is_varint = field == 1 || field == 2 || field == 4 || field == 7 ||
                        field == 10 || field == 11;
        if (wire != (is_varint ? 0u : 2u) || !peek_varint(&p, end, &v))
            return 0;
        if (!is_varint) {
            if (v > (uint64_t)(end - p))
                return 0;
            if (field == 9) {
                out->event = p;
                out->event_len = (size_t)v;
            }
            p += v;
        } else if (field == 7) {
            out->recorded_us = (int64_t)v;
        } else if (field == 10) {
            out->historic = v != 0;
        }
        seen |= 1u << field;
    }
    return (seen & 0x3fe) == 0x3fe; /* fields 1 to 9, all required */
}

static int load_range(struct run *r, MDB_txn *txn, const strmap *eff,
                      uint64_t first, uint64_t last)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    arena *tmp = arena_new(64u << 20);
    uint8_t start[8];
    int rc = TRACE_OK, mrc;
    /* no correction in force: no event to look up */
    int any_eff = strmap_len(eff) > 0;

    if (!tmp)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((mrc = mdb_cursor_open(txn, r->l->dbi_journal, &cur))) {
        arena_free(tmp);
        return trace_fail_mdb(mrc, "journal");
    }
    be64_put(start, first);
    k.mv_data = start;
    k.mv_size = 8;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Trace__V1__Entry *e, peeked = TRACE__V1__ENTRY__INIT;
        Trace__V1__Event *ev;
        struct entry_peek pk;
        char key[KEY_MAX];
        uint64_t seq = be64_get(k.mv_data);
        const uint64_t *in_force;

        if (seq > last)
            break;
        arena_reset(tmp);
        if (entry_peek(v.mv_data, v.mv_size, &pk)) {
            peeked.recorded_us = pk.recorded_us;
            peeked.has_historic = pk.historic;
            peeked.historic = pk.historic;
            e = &peeked;
            ev = event_decode(tmp, pk.event, pk.event_len);
        } else {
            e = trace__v1__entry__unpack(arena_allocator(tmp), v.mv_size,
                                         v.mv_data);
            ev = e ? event_decode(tmp, e->event.data, e->event.len) : NULL;
        }
        /* a damaged entry is left out; CHAIN_BROKEN reports it */
        if (!e || !ev)
            continue;
        if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY) {
            const Trace__V1__CorrectionBody *c = ev->correction_body;
            snprintf(key, sizeof(key), "%s\x01%s", ev->party, c->corrects);
            in_force = strmap_get((strmap *)eff, key, 0);
            if (!in_force || *in_force != seq || !c->has_replacement)
                continue;
            ev = event_decode(tmp, c->replacement.data, c->replacement.len);
            if (!ev)
                continue;
        } else if (any_eff) {
            snprintf(key, sizeof(key), "%s\x01%s", ev->party, ev->id);
            if (strmap_get((strmap *)eff, key, 0))
                continue; /* corrected: its replacement stands instead */
        }
        if ((rc = rec_add(r, ev, e, seq)) != TRACE_OK)
            break;
    }
    if (rc == TRACE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = trace_fail_mdb(mrc, "journal");
    mdb_cursor_close(cur);
    arena_free(tmp);
    return rc;
}

/* The second loader: the later half of the journal on another core, into
 * its own part of r->recs, with its own strings (merged after). */
struct loader {
    struct run *main, r;
    MDB_txn *txn; /* begun and ended by the main thread (MDB_NOTLS) */
    const strmap *eff;
    uint64_t first, last;
    pthread_t thread;
    int rc;
    char err[256];
};

static void *loader_run(void *arg)
{
    struct loader *ld = arg;
    int rc = load_range(&ld->r, ld->txn, ld->eff, ld->first, ld->last);

    if ((ld->rc = rc) != TRACE_OK)
        snprintf(ld->err, sizeof(ld->err), "%s", trace_error_last());
    return NULL;
}

/* The run's interned copy of a string the second loader interned. */
static const char *canon(const struct loader *ld, const char *s)
{
    return s ? *(const char *const *)strmap_val_of(ld->r.strings, s) : NULL;
}

static int canon_one(const char *key, void *val, void *ctx)
{
    struct loader *ld = ctx;
    const char *c = intern(ld->main, key);
    if (!c)
        return TRACE_ENOMEM;
    *(const char **)val = c;
    return 0;
}

/* Appends the second loader's records to the run's, its interned strings
 * replaced by the run's (rules compare interned strings by pointer). */
static int loader_merge(struct loader *ld, size_t at)
{
    struct run *r = ld->main;

    if (strmap_each(ld->r.strings, canon_one, ld))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (at != r->n)
        memmove(r->recs + r->n, r->recs + at, ld->r.n * sizeof(*r->recs));
    for (size_t i = r->n; i < r->n + ld->r.n; i++) {
        rec *x = &r->recs[i];
        x->party = canon(ld, x->party);
        x->substance = canon(ld, x->substance);
        x->lot = canon(ld, x->lot);
        x->site = canon(ld, x->site);
        x->permit = canon(ld, x->permit);
        switch (x->kind) {
        case TRACE__V1__EVENT__BODY_SALE_BODY:
            x->to = canon(ld, x->to);
            x->carrier = canon(ld, x->carrier);
            x->tpermit = canon(ld, x->tpermit);
            break;
        case TRACE__V1__EVENT__BODY_RECEIPT_BODY: /* ref: not interned */
            x->from = canon(ld, x->from);
            break;
        case TRACE__V1__EVENT__BODY_TRANSFER_BODY:
        case TRACE__V1__EVENT__BODY_PICKUP_BODY: /* ref: not interned */
        case TRACE__V1__EVENT__BODY_HANDOVER_BODY:
        case TRACE__V1__EVENT__BODY_DELIVERY_BODY:
            x->from = canon(ld, x->from);
            x->to = canon(ld, x->to);
            break;
        case TRACE__V1__EVENT__BODY_DESTROY_BODY:
            x->witness = canon(ld, x->witness);
            break;
        case TRACE__V1__EVENT__BODY_LOSS_BODY:
            x->reason = canon(ld, x->reason);
            break;
        case TRACE__V1__EVENT__BODY_DISPENSE_BODY: /* rx: not interned */
            x->prescriber = canon(ld, x->prescriber);
            x->patient = canon(ld, x->patient);
            x->form = canon(ld, x->form);
            break;
        case TRACE__V1__EVENT__BODY_PRODUCE_BODY:
            for (uint32_t k = 0; k < x->n_inputs; k++) {
                x->inputs[k].lot = canon(ld, x->inputs[k].lot);
                x->inputs[k].substance = canon(ld, x->inputs[k].substance);
            }
            break;
        case TRACE__V1__EVENT__BODY_PARCEL_BODY: /* waybill: not interned */
            x->outlet = canon(ld, x->outlet);
            break;
        case TRACE__V1__EVENT__BODY_PERMIT_BODY: /* app_id: not interned */
        case TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY:
            x->app_party = canon(ld, x->app_party);
            break;
        case TRACE__V1__EVENT__BODY_PARTY_BODY:
            x->subject = canon(ld, x->subject);
            x->pkind = canon(ld, x->pkind);
            x->pstatus = canon(ld, x->pstatus);
            for (uint32_t k = 0; k < x->n_licenses; k++)
                x->licenses[k] = (char *)canon(ld, x->licenses[k]);
            break;
        default:
            break;
        }
    }
    r->n += ld->r.n;
    return TRACE_OK;
}

size_t reconcile_split_min = 1024;
size_t reconcile_split_runs;

/* Reads the journal once: every event in force, corrections applied. */
int load_events(struct run *r)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_stat st;
    strmap *eff = strmap_new(sizeof(uint64_t));
    struct loader ld;
    uint64_t first = 0, last = 0;
    int rc;

    memset(&ld, 0, sizeof(ld));
    if (!eff) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    /* the corrections in force, by corrected (party, id) */
    if ((rc = mdb_cursor_open(r->txn, r->l->dbi_eff, &cur))) {
        cur = NULL;
        rc = trace_fail_mdb(rc, "eff");
        goto out;
    }
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        char key[KEY_MAX];
        uint64_t *slot;
        if (k.mv_size >= sizeof(key) || v.mv_size != 8)
            continue;
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        key[strlen(key)] = '\x01'; /* party \0 id -> party \1 id */
        if (!(slot = strmap_get(eff, key, 1))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        *slot = be64_get(v.mv_data);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    /* one allocation for every record: no copying as the array grows */
    if ((rc = mdb_stat(r->txn, r->l->dbi_journal, &st)) ||
        (rc = mdb_cursor_open(r->txn, r->l->dbi_journal, &cur))) {
        cur = NULL;
        rc = trace_fail_mdb(rc, "journal");
        goto out;
    }
    if (!(r->recs = big_alloc((st.ms_entries + 1) * sizeof(*r->recs)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    r->cap = st.ms_entries + 1;
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8) {
        first = be64_get(k.mv_data);
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0 && k.mv_size == 8)
            last = be64_get(k.mv_data);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc == MDB_NOTFOUND) {
        rc = TRACE_OK;
        goto out;
    }
    if (rc) {
        rc = trace_fail_mdb(rc, "journal");
        goto out;
    }
    /* the later half on a second thread (its own read transaction, cut
     * at this snapshot's last entry), the earlier half here */
    size_t half = st.ms_entries / 2;
    if (st.ms_entries >= reconcile_split_min &&
        last - first + 1 == st.ms_entries) {
        ld.main = r;
        ld.r.l = r->l;
        ld.r.recs = r->recs + half;
        ld.r.cap = r->cap - half;
        ld.eff = eff;
        ld.first = first + half;
        ld.last = last;
        if ((ld.r.a = arena_new(0)))
            arena_set_block(ld.r.a, 4u << 20);
        ld.r.strings = strmap_new(sizeof(const char *));
        ld.r.subs = strmap_new(sizeof(struct subst_facts));
        if (!ld.r.a || !ld.r.strings || !ld.r.subs) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        /* this thread begins the loader's transaction: one that holds a
         * transaction never waits for the map to grow, where the loader
         * would wait for a grower waiting for this thread's to end */
        ld.txn = NULL;
        if (ledger_txn_begin(r->l, MDB_RDONLY, &ld.txn) == 0 &&
            pthread_create(&ld.thread, NULL, loader_run, &ld) == 0) {
            __atomic_fetch_add(&reconcile_split_runs, 1, __ATOMIC_RELAXED);
            rc = load_range(r, r->txn, eff, first, first + half - 1);
            pthread_join(ld.thread, NULL);
            ledger_txn_abort(r->l, ld.txn);
            if (rc == TRACE_OK && ld.rc != TRACE_OK)
                rc = trace_fail(ld.rc, "%s", ld.err);
            if (rc == TRACE_OK)
                rc = loader_merge(&ld, half);
            r->a2 = ld.r.a;
            ld.r.a = NULL;
            goto out;
        }
        if (ld.txn)
            ledger_txn_abort(r->l, ld.txn);
        trace_error_clear();
    }
    rc = load_range(r, r->txn, eff, first, last);
out:
    if (cur)
        mdb_cursor_close(cur);
    arena_free(ld.r.a);
    strmap_free(ld.r.strings);
    strmap_free(ld.r.subs);
    strmap_free(eff);
    return rc;
}
