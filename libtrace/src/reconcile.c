/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reconcile.c - the rule engine.
 *
 * A run loads every effective event once (a corrected event is replaced
 * by its replacement, a voided one dropped) into compact records with
 * interned strings, then runs each enabled rule of the reconcile_rules[] table
 * over them.  Rules read events in `at` order (ties in journal order) where
 * order matters.  Each rule reports anomalies through raise(), which
 * derives the alert's stable id from the rule and its evidence.
 *
 * Alerts are stored in the "alerts" database (id -> JSON without status),
 * with a sequence index ("alertseq") to list them in the order they were
 * first found.  Status comes from the latest `alert_ack` event for the
 * alert (state.c files them in "acks").
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

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

/* What the rules ask of a substance, worked out once per name. */
struct subst_facts {
    const char *code; /* interned catalog code (or the name as recorded) */
    const subst_info *sub;
    uint8_t cls, rxcls;
};

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
/* Raising alerts                                                       */

void alert_id_make(char id[18], sha256_stream *s, const char *rule,
                   const trace_event_ref *ev, size_t n_ev, const char *permit,
                   const char *party)
{
    uint8_t h[32];

    sha256_stream_reset(s);
    sha256_stream_update(s, rule, strlen(rule) + 1);
    for (size_t i = 0; i < n_ev; i++) {
        sha256_stream_update(s, ev[i].party, strlen(ev[i].party) + 1);
        sha256_stream_update(s, ev[i].id, strlen(ev[i].id) + 1);
    }
    if (permit)
        sha256_stream_update(s, permit, strlen(permit) + 1);
    if (n_ev == 0 && party)
        sha256_stream_update(s, party, strlen(party) + 1);
    sha256_stream_final(s, h);
    id[0] = 'A';
    hex_encode(id + 1, h, 8);
}

int raise_alert(struct run *r, const struct rule *rule, const rec *const *ev,
                size_t n_ev, const char *party, const char *counterparty,
                const char *substance, const char *lot, const char *permit,
                const char *fmt, ...)
{
    struct alert *al;
    char detail[512];
    va_list ap;

    if (r->n_alerts == r->cap_alerts) {
        size_t nc = r->cap_alerts ? r->cap_alerts * 2 : 64;
        struct alert *p = realloc(r->alerts, nc * sizeof(*p));
        if (!p)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        r->alerts = p;
        r->cap_alerts = nc;
    }
    al = &r->alerts[r->n_alerts];
    memset(al, 0, sizeof(*al));
    al->rule = rule;
    al->severity = r->cfg[rule - reconcile_rules].severity;
    al->party = party;
    al->counterparty = counterparty;
    al->substance = substance;
    al->lot = lot;
    al->permit = permit;
    al->events = arena_alloc(r->a, (n_ev ? n_ev : 1) * sizeof(*al->events));
    if (!al->events)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    /* the id: rule and evidence, which do not change between runs */
    if (!r->digest && !(r->digest = sha256_stream_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_ev; i++) {
        al->events[i].party = ev[i]->party;
        al->events[i].id = ev[i]->id;
    }
    alert_id_make(al->id, r->digest, rule->code, al->events, n_ev, permit,
                  party);
    al->n_events = n_ev;
    al->pos = n_ev ? ev[0]->pos : 0;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    al->detail = arena_strdup(r->a, detail, strlen(detail));
    r->n_alerts++;
    return TRACE_OK;
}

#define RAISE(r, ...) raise_alert(r, self, __VA_ARGS__)

static const char *const severities[] = {"info", "low",      "medium",
                                         "high", "critical", NULL};

static int load_config(struct run *r, const trace_reconcile_opts *o)
{
    json_error_t jerr;
    json_t *root;
    const char *code;
    json_t *val;
    int rc = TRACE_OK;

    for (size_t i = 0; i < N_RULES; i++) {
        r->cfg[i].enabled = 1;
        r->cfg[i].severity = reconcile_rules[i].severity;
        memcpy(r->cfg[i].p, reconcile_rules[i].pdef, sizeof(r->cfg[i].p));
        /* the regime gives LATE_REPORT's deadlines and SPLIT_PURCHASE's
         * thresholds; the rules file may still override them */
        if (strcmp(reconcile_rules[i].code, "LATE_REPORT") == 0)
            for (int k = 0; k < REGIME_N_DEADLINES; k++)
                r->cfg[i].p[k] = r->l->regime->late[k];
        if (strcmp(reconcile_rules[i].code, "SPLIT_PURCHASE") == 0)
            for (int k = 0; k < REGIME_N_SPLITS; k++) /* cat1, cat2, cat3 */
                r->cfg[i].p[2 + k] = r->l->regime->split[k];
    }
    if (!o->rules_json)
        return TRACE_OK;
    root =
        json_loadb(o->rules_json, o->rules_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return trace_fail(TRACE_EINVAL, "rules file: %s (line %d)",
                          root ? "must be an object" : jerr.text, jerr.line);
    }
    json_object_foreach(root, code, val)
    {
        size_t i;
        const char *key;
        json_t *v;
        if (strcmp(code, "credit") == 0)
            continue; /* credit's weights (credit.c) */
        for (i = 0; i < N_RULES && strcmp(reconcile_rules[i].code, code) != 0;
             i++)
            ;
        if (i == N_RULES || !json_is_object(val)) {
            rc = trace_fail(TRACE_EINVAL,
                            "rules file: unknown rule %s or "
                            "not an object",
                            code);
            break;
        }
        json_object_foreach(val, key, v)
        {
            int k;
            if (strcmp(key, "enabled") == 0 && json_is_boolean(v)) {
                r->cfg[i].enabled = json_is_true(v);
                continue;
            }
            if (strcmp(key, "severity") == 0 && json_is_string(v)) {
                for (k = 0; severities[k]; k++)
                    if (strcmp(severities[k], json_string_value(v)) == 0)
                        r->cfg[i].severity = severities[k];
                if (r->cfg[i].severity != reconcile_rules[i].severity ||
                    strcmp(reconcile_rules[i].severity, json_string_value(v)) ==
                        0)
                    continue;
            }
            for (k = 0; k < MAX_PARAMS && reconcile_rules[i].pname[k]; k++)
                if (strcmp(reconcile_rules[i].pname[k], key) == 0 &&
                    json_is_number(v) && json_number_value(v) >= 0)
                    break;
            if (k == MAX_PARAMS || !reconcile_rules[i].pname[k]) {
                rc = trace_fail(TRACE_EINVAL,
                                "rules file: %s.%s is not a parameter of the "
                                "rule, or its value is wrong",
                                code, key);
                break;
            }
            r->cfg[i].p[k] = json_number_value(v);
        }
        if (rc != TRACE_OK)
            break;
    }
    json_decref(root);
    return rc;
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

static int sort_by_at(struct run *r)
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

static int cmp_seq(const void *a, const void *b)
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
static int load_events(struct run *r)
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

/* ------------------------------------------------------------------ */
/* Alerts: JSON, storage, status                                        */

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static char *alert_json(const struct alert *al, const char *status)
{
    json_t *o = json_object(), *evs = json_array();
    char *s;

    json_object_set_new(o, "id", json_string(al->id));
    json_object_set_new(o, "rule", json_string(al->rule->code));
    json_object_set_new(o, "severity", json_string(al->severity));
    json_object_set_new(o, "party", opt_str(al->party));
    json_object_set_new(o, "counterparty", opt_str(al->counterparty));
    json_object_set_new(o, "substance", opt_str(al->substance));
    json_object_set_new(o, "lot", opt_str(al->lot));
    json_object_set_new(o, "permit", opt_str(al->permit));
    for (size_t i = 0; i < al->n_events; i++) {
        json_t *ev = json_object();
        json_object_set_new(ev, "party", json_string(al->events[i].party));
        json_object_set_new(ev, "id", json_string(al->events[i].id));
        json_array_append_new(evs, ev);
    }
    json_object_set_new(o, "events", evs);
    json_object_set_new(o, "detail", json_string(al->detail));
    if (status)
        json_object_set_new(o, "status", json_string(status));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* An alert's acknowledgement, from the acks index (state.c). */
struct ack {
    char status[33];
    int64_t at_us; /* 0: never acknowledged */
    char by[80];
    char note[1024];
    int has_by;
};

static void alert_ack(MDB_txn *txn, const trace_ledger *l, const char *id,
                      struct ack *a)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    const char *p, *end;
    size_t n;

    memset(a, 0, sizeof(*a));
    snprintf(a->status, sizeof(a->status), "open");
    if (mdb_get(txn, l->dbi_acks, &k, &v) != 0 || v.mv_size <= 8)
        return;
    p = (const char *)v.mv_data + 8;
    end = (const char *)v.mv_data + v.mv_size;
    n = strnlen(p, (size_t)(end - p));
    if (n >= sizeof(a->status))
        return;
    memcpy(a->status, p, n);
    a->status[n] = '\0';
    a->at_us = (int64_t)be64_get(v.mv_data);
    if (p + n >= end)
        return; /* written before acks kept who and why */
    p += n + 1;
    n = strnlen(p, (size_t)(end - p));
    snprintf(a->by, sizeof(a->by), "%.*s", (int)n, p);
    a->has_by = 1;
    if (p + n < end) {
        p += n + 1;
        snprintf(a->note, sizeof(a->note), "%.*s", (int)(end - p), p);
    }
}

/* Status of an alert from the acks index (state.c). */
static const char *alert_status(MDB_txn *txn, const trace_ledger *l,
                                const char *id, char *buf, size_t cap)
{
    struct ack a;

    alert_ack(txn, l, id, &a);
    if (strlen(a.status) >= cap)
        return "open";
    memcpy(buf, a.status, strlen(a.status) + 1);
    return buf;
}

/* Stores the alerts not stored yet; marks which were new. */
static int store_alerts(struct run *r, int *is_new)
{
    MDB_txn *txn;
    MDB_val k, v, sk;
    uint64_t next = 0;
    uint8_t seqb[8];
    MDB_cursor *cur;
    int rc;

    if ((rc = ledger_txn_begin(r->l, 0, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, r->l->dbi_alertseq, &cur)) == 0) {
        if (mdb_cursor_get(cur, &sk, &v, MDB_LAST) == 0 && sk.mv_size == 8)
            next = be64_get(sk.mv_data);
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; i < r->n_alerts && rc == 0; i++) {
        struct alert *al = &r->alerts[i];
        char *json = alert_json(al, NULL);
        if (!json) {
            rc = ENOMEM;
            break;
        }
        k = (MDB_val){strlen(al->id), al->id};
        v = (MDB_val){strlen(json), json};
        rc = mdb_put(txn, r->l->dbi_alerts, &k, &v, MDB_NOOVERWRITE);
        if (rc == 0) {
            is_new[i] = 1;
            be64_put(seqb, ++next);
            sk = (MDB_val){8, seqb};
            rc = mdb_put(txn, r->l->dbi_alertseq, &sk, &k, MDB_APPEND);
        } else if (rc == MDB_KEYEXIST) {
            rc = 0;
        }
        free(json);
    }
    if (rc) {
        ledger_txn_abort(r->l, txn);
        return rc == ENOMEM ? trace_fail(TRACE_ENOMEM, "out of memory")
                            : trace_fail_mdb(rc, "alerts");
    }
    /* what the next incremental run starts from, with these alerts */
    if (r->incremental && (rc = inc_store(r, txn)) != TRACE_OK) {
        ledger_txn_abort(r->l, txn);
        return rc;
    }
    if (r->verify.state) {
        k = (MDB_val){strlen(VERIFY_STATE_KEY), VERIFY_STATE_KEY};
        v = (MDB_val){r->verify.state_len, r->verify.state};
        if ((rc = mdb_put(txn, r->l->dbi_meta, &k, &v, 0))) {
            ledger_txn_abort(r->l, txn);
            return trace_fail_mdb(rc, "verify state");
        }
    }
    if ((rc = ledger_txn_commit(r->l, txn)))
        return trace_fail_mdb(rc, "commit");
    return TRACE_OK;
}

/* The store of a run's alerts, run where trace_reconcile_opts.store_via
 * says. */
struct store_job {
    struct run *r;
    int *is_new;
    char err[512]; /* a failure's message, for the run's thread */
};

/* Stores the alerts; a full map is grown (no transaction of the run is
 * open by then) and the store tried again. */
static int store_job_run(void *arg)
{
    struct store_job *j = arg;
    int rc;

    for (int attempt = 0;; attempt++) {
        memset(j->is_new, 0, (j->r->n_alerts + 1) * sizeof(*j->is_new));
        rc = store_alerts(j->r, j->is_new);
        if (rc != TRACE_EFULL || last_mdb_error() != MDB_MAP_FULL ||
            attempt == 8 || ledger_grow_map(j->r->l) != TRACE_OK)
            break;
    }
    if (rc != TRACE_OK)
        snprintf(j->err, sizeof(j->err), "%s", trace_error_last());
    return rc;
}

static int emit_alert(struct run *r, const struct alert *al, int is_new,
                      trace_alert_fn fn, void *ctx)
{
    char buf[32];
    const char *status;
    char *json;

    if (!fn)
        return TRACE_OK;
    status = alert_status(r->txn, r->l, al->id, buf, sizeof(buf));
    json = alert_json(al, status);
    trace_alert a = {al->id,
                     al->rule->code,
                     al->severity,
                     al->party,
                     al->counterparty,
                     al->substance,
                     al->lot,
                     al->permit,
                     al->n_events,
                     al->events,
                     al->detail,
                     status,
                     is_new,
                     json,
                     0,
                     NULL,
                     NULL,
                     NULL};
    int rc;
    if (!json)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    rc = fn(&a, ctx);
    free(json);
    return rc;
}

static int cmp_alert(const void *a, const void *b)
{
    const struct alert *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return strcmp(x->id, y->id);
}

void *verify_job_run(void *arg)
{
    struct verify_job *j = arg;
    j->rc = j->keep ? ledger_verify_from(j->l, &j->res, j->resume, &j->state,
                                         &j->state_len)
                    : trace_ledger_verify(j->l, &j->res, NULL, NULL);
    if (j->rc != TRACE_OK)
        snprintf(j->err, sizeof(j->err), "%s", trace_error_last());
    return NULL;
}

/* The rules run on two threads: these on a second one, with a run of
 * their own for the alerts they raise (they read the records, intern no
 * string and look up no event by id), the others here. */
static int on_side(const struct rule *rule)
{
    return strcmp(rule->code, "NEGATIVE_STOCK") == 0 ||
           strcmp(rule->code, "RX_LIMIT") == 0 ||
           strcmp(rule->code, "DOCTOR_SHOPPING") == 0;
}

struct side {
    struct run r;
    pthread_t thread;
    int rc;
    char err[256];
};

/* Runs rule i's function if any rule of its group is enabled (a rule
 * without a function is raised by the function of the rule before it:
 * permits, two-way verification, stock). */
static int run_rule(struct run *r, size_t i)
{
    int any = r->cfg[i].enabled;
    for (size_t j = i + 1; j < N_RULES && !reconcile_rules[j].fn; j++)
        any |= r->cfg[j].enabled;
    return any ? reconcile_rules[i].fn(r, &r->cfg[i]) : TRACE_OK;
}

static void *side_run(void *arg)
{
    struct side *sd = arg;
    sd->rc = TRACE_OK;
    for (size_t i = 0; i < N_RULES && sd->rc == TRACE_OK; i++)
        if (reconcile_rules[i].fn && on_side(&reconcile_rules[i]))
            sd->rc = run_rule(&sd->r, i);
    if (sd->rc != TRACE_OK)
        snprintf(sd->err, sizeof(sd->err), "%s", trace_error_last());
    return NULL;
}

static int run_rules(struct run *r)
{
    struct side sd;
    int started = 0, rc = TRACE_OK;

    /* the side run shares the records and everything read-only; not the
     * verification job, which its thread writes meanwhile */
    memcpy(&sd.r, r, offsetof(struct run, verify));
    memset(&sd.r.verify, 0, sizeof(sd.r.verify));
    memcpy((char *)&sd.r + offsetof(struct run, verify) + sizeof(r->verify),
           (const char *)r + offsetof(struct run, verify) + sizeof(r->verify),
           sizeof(*r) - offsetof(struct run, verify) - sizeof(r->verify));
    sd.r.alerts = NULL;
    sd.r.n_alerts = sd.r.cap_alerts = 0;
    sd.r.digest = NULL;
    if ((sd.r.a = arena_new(0)))
        arena_set_block(sd.r.a, 4u << 20);
    if (sd.r.a && pthread_create(&sd.thread, NULL, side_run, &sd) == 0)
        started = 1;
    for (size_t i = 0; i < N_RULES && rc == TRACE_OK; i++)
        if (reconcile_rules[i].fn &&
            (!started || !on_side(&reconcile_rules[i])))
            rc = run_rule(r, i);
    if (!started) {
        arena_free(sd.r.a);
        return rc;
    }
    pthread_join(sd.thread, NULL);
    if (rc == TRACE_OK && sd.rc != TRACE_OK)
        rc = trace_fail(sd.rc, "%s", sd.err);
    if (rc == TRACE_OK && sd.r.n_alerts) {
        size_t n = r->n_alerts + sd.r.n_alerts;
        struct alert *p =
            n > r->cap_alerts ? realloc(r->alerts, n * sizeof(*p)) : r->alerts;
        if (!p)
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
        else {
            memcpy(p + r->n_alerts, sd.r.alerts, sd.r.n_alerts * sizeof(*p));
            r->alerts = p;
            r->cap_alerts = n > r->cap_alerts ? n : r->cap_alerts;
            r->n_alerts = n;
        }
    }
    free(sd.r.alerts);
    sha256_stream_free(sd.r.digest);
    /* the alerts' details and evidence live in the side's arena */
    if (rc == TRACE_OK) {
        r->a3 = sd.r.a;
        sd.r.a = NULL;
    }
    arena_free(sd.r.a);
    return rc;
}

int trace_reconcile(trace_ledger *l, const trace_reconcile_opts *opts,
                    trace_alert_fn fn, void *ctx,
                    trace_reconcile_summary *summary)
{
    trace_reconcile_opts def = TRACE_RECONCILE_OPTS_INIT;
    struct run r;
    int *is_new = NULL;
    struct timespec t0, t1;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!opts)
        opts = &def;
    if (!time_asked_ok(opts->as_of_us))
        return trace_fail(TRACE_EINVAL, "reconcile: the as-of time is out of "
                                        "range (years 1 to 9999)");
    memset(&r, 0, sizeof(r));
    r.l = l;
    r.as_of = opts->as_of_us == INT64_MAX ? time_now_us() : opts->as_of_us;
    if ((r.a = arena_new(0)))
        arena_set_block(r.a, 4u << 20);
    r.strings = strmap_new(0);
    r.subs = strmap_new(sizeof(struct subst_facts));
    if (!r.a || !r.strings || !r.subs) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load_config(&r, opts)) != TRACE_OK)
        goto out;
    /* CHAIN_BROKEN's verification needs nothing of the rest: it runs on
     * another core meanwhile (inline in rule_chain if no thread starts) */
    r.verify.l = l;
    r.verify.keep = opts->version >= 2 && opts->incremental;
    r.verify.resume = r.verify.keep && !opts->full;
    if (r.cfg[N_RULES - 1].enabled &&
        pthread_create(&r.verify.thread, NULL, verify_job_run, &r.verify) == 0)
        r.verify.started = 1;
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &r.txn))) {
        r.txn = NULL;
        rc = trace_fail_mdb(rc, "begin");
        goto out;
    }
    if (opts->version >= 2 && opts->incremental) {
        r.incremental = 1;
        if ((rc = inc_plan(&r)) != TRACE_OK)
            goto out;
        if (opts->full)
            r.partial = 0; /* read everything, keep the state */
    }
    if (r.partial && (rc = inc_load(&r)) != TRACE_OK)
        goto out;
    if (!r.partial) { /* a full run, or an incremental one that must be */
        big_free(r.recs);
        r.recs = NULL;
        r.n = r.cap = r.n_new = 0;
        if ((rc = load_events(&r)) != TRACE_OK)
            goto out;
    } else if (r.n) { /* loaded by scope: back into journal order */
        qsort(r.recs, r.n, sizeof(*r.recs), cmp_seq);
    }
    if ((rc = sort_by_at(&r)) != TRACE_OK)
        goto out;
    if ((rc = run_rules(&r)) != TRACE_OK)
        goto out;
    if (rc != TRACE_OK)
        goto out;
    /* the same order on every run: rule, then evidence in time */
    if (r.n_alerts)
        qsort(r.alerts, r.n_alerts, sizeof(*r.alerts), cmp_alert);
    /* drop alerts of disabled rules raised by shared functions */
    size_t kept = 0;
    for (size_t i = 0; i < r.n_alerts; i++)
        if (r.cfg[r.alerts[i].rule - reconcile_rules].enabled)
            r.alerts[kept++] = r.alerts[i];
    r.n_alerts = kept;
    if (!(is_new = calloc(r.n_alerts + 1, sizeof(*is_new)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if (!opts->dry_run) {
        struct store_job job = {&r, is_new, ""};
        /* the read transaction ends first: the store may wait for
         * another thread (store_via), which may have to grow the map */
        ledger_txn_abort(l, r.txn);
        r.txn = NULL;
        rc = opts->version >= 3 && opts->store_via
                 ? opts->store_via(store_job_run, &job, opts->store_ctx)
                 : store_job_run(&job);
        if (rc != TRACE_OK) {
            if (job.err[0])
                trace_fail(rc, "%s", job.err);
            goto out;
        }
        /* statuses as of now, the new alerts included */
        if ((rc = ledger_txn_begin(l, MDB_RDONLY, &r.txn))) {
            rc = trace_fail_mdb(rc, "begin");
            goto out;
        }
    }
    for (size_t i = 0; i < r.n_alerts && rc == TRACE_OK; i++)
        rc = emit_alert(&r, &r.alerts[i], is_new[i], fn, ctx);
    if (summary) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        summary->events = r.n;
        summary->partial = r.partial;
        summary->new_events = r.partial ? r.n_new : r.n;
        summary->alerts = r.n_alerts;
        summary->new_alerts = 0;
        for (size_t i = 0; i < r.n_alerts; i++)
            summary->new_alerts += (uint64_t)is_new[i];
        summary->seconds = (double)(t1.tv_sec - t0.tv_sec) +
                           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    }
out:
    if (r.verify.started)
        pthread_join(r.verify.thread, NULL);
    if (r.txn)
        ledger_txn_abort(l, r.txn);
    free(is_new);
    free(r.verify.state);
    arena_free(r.tmp);
    strmap_free(r.loaded);
    for (int i = 0; i < N_SCOPES; i++)
        strmap_free(r.scopes[i]);
    strmap_free(r.reopen);
    big_free(r.recs);
    big_free(r.by_at);
    big_free(r.by_id);
    strmap_free(r.custody);
    big_free(r.cnext);
    free(r.alerts);
    sha256_stream_free(r.digest);
    strmap_free(r.strings);
    strmap_free(r.subs);
    arena_free(r.a);
    arena_free(r.a2);
    arena_free(r.a3);
    return rc;
}

int trace_alerts(trace_ledger *l, const trace_alert_filter *f,
                 trace_alert_fn fn, void *ctx)
{
    trace_alert_filter def = TRACE_ALERT_FILTER_INIT;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v, av;
    int rc;

    if (!f)
        f = &def;
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, l->dbi_alertseq, &cur))) {
        rc = trace_fail_mdb(rc, "alerts");
        goto out;
    }
    if (f->after == UINT64_MAX) {
        rc = MDB_NOTFOUND; /* nothing is stored after the last position */
    } else if (f->after) {
        uint8_t start[8];
        be64_put(start, f->after + 1);
        k = (MDB_val){8, start};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *o, *evs;
        char buf[33], id[64], ack_at[64];
        const char *status;
        struct ack ack;
        trace_event_ref refs[64];
        size_t n = 0;

        if (k.mv_size != 8 || v.mv_size >= sizeof(id) ||
            mdb_get(txn, l->dbi_alerts, &v, &av) != 0)
            continue;
        memcpy(id, v.mv_data, v.mv_size);
        id[v.mv_size] = '\0';
        status = alert_status(txn, l, id, buf, sizeof(buf));
        if (!(o = json_loadb(av.mv_data, av.mv_size, 0, NULL)))
            continue;
#define S(key) json_string_value(json_object_get(o, key))
        if ((f->status && strcmp(f->status, status) != 0) ||
            (f->rule && (!S("rule") || strcmp(f->rule, S("rule")) != 0)) ||
            (f->party && !((S("party") && strcmp(S("party"), f->party) == 0) ||
                           (S("counterparty") &&
                            strcmp(S("counterparty"), f->party) == 0)))) {
            json_decref(o);
            continue;
        }
        evs = json_object_get(o, "events");
        for (size_t i = 0; i < json_array_size(evs) && n < 64; i++, n++) {
            refs[n].party = json_string_value(
                json_object_get(json_array_get(evs, i), "party"));
            refs[n].id = json_string_value(
                json_object_get(json_array_get(evs, i), "id"));
        }
        json_object_set_new(o, "status", json_string(status));
        alert_ack(txn, l, id, &ack);
        ack_at[0] = '\0';
        if (ack.at_us) {
            Trace__V1__Time t = TRACE__V1__TIME__INIT;
            json_t *ao = json_object();
            t.us = ack.at_us;
            t.has_offset_min = 1;
            t.offset_min = trace_ledger_tz(l);
            if (time_format(ack_at, sizeof(ack_at), &t) != TRACE_OK)
                ack_at[0] = '\0';
            json_object_set_new(ao, "by",
                                ack.has_by ? json_string(ack.by) : json_null());
            json_object_set_new(ao, "at", json_string(ack_at));
            json_object_set_new(
                ao, "note", ack.has_by ? json_string(ack.note) : json_null());
            json_object_set_new(o, "ack", ao);
        }
        char *json = json_dumps(o, JSON_COMPACT);
        trace_alert a = {id,
                         S("rule"),
                         S("severity"),
                         S("party"),
                         S("counterparty"),
                         S("substance"),
                         S("lot"),
                         S("permit"),
                         n,
                         refs,
                         S("detail"),
                         status,
                         0,
                         json,
                         be64_get(k.mv_data),
                         ack.at_us && ack.has_by ? ack.by : NULL,
                         ack.at_us ? ack_at : NULL,
                         ack.at_us && ack.has_by ? ack.note : NULL};
#undef S
        rc = json ? fn(&a, ctx) : TRACE_ENOMEM;
        free(json);
        json_decref(o);
        if (rc != 0)
            goto out;
    }
    rc = rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "alerts");
out:
    if (cur)
        mdb_cursor_close(cur);
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_rules_describe(trace_rule_info_fn fn, void *ctx)
{
    for (size_t i = 0; i < N_RULES; i++) {
        char params[256] = "";
        size_t o = 0;
        for (int k = 0; k < MAX_PARAMS && reconcile_rules[i].pname[k]; k++)
            o += (size_t)snprintf(params + o, sizeof(params) - o, "%s%s=%g",
                                  k ? " " : "", reconcile_rules[i].pname[k],
                                  reconcile_rules[i].pdef[k]);
        int rc = fn(reconcile_rules[i].code, reconcile_rules[i].severity,
                    params, reconcile_rules[i].summary, ctx);
        if (rc)
            return rc;
    }
    return TRACE_OK;
}
