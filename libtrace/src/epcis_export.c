/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epcis_export.c - the journal as one GS1 EPCIS 2.0 JSON-LD EPCISDocument
 * (SPEC 11), the inverse of the reader in epcis.c.
 *
 * Streaming.  The journal is walked as trace_ledger_export walks it (so
 * --party, --from and --to filter exactly as the JSON Lines export
 * does); each decoded event is written at once as EPCIS text, straight
 * from its stored fields (no JSON of the ledger event is built or
 * parsed): memory holds one event, never the document.
 *
 * What is written.  Only movements naming a `gtin` (recorded by product):
 * a movement recorded by substance has no GS1 identity, and guessing the
 * product of its substance would add a GTIN the record never had.
 *
 *   produce            ObjectEvent ADD, commissioning
 *   produce + inputs   TransformationEvent, transforming (inputs under the
 *                      first registered product of their substance, in
 *                      the substance unit: the reader keeps only the
 *                      substance, lot and quantity of an input)
 *   sale               ObjectEvent OBSERVE, shipping; owning_party source
 *                      and destination; permits in bizTransactionList
 *   receipt            ObjectEvent OBSERVE, receiving; the sale it refers
 *                      to as a bizTransaction of type upevt
 *   destroy            ObjectEvent DELETE, destroying
 *   dispense           ObjectEvent OBSERVE, dispensing; the prescription
 *                      in the extension member trace:rx
 *
 * Quantities: packs as uom EA, else the substance quantity in the UN/CEFACT
 * code of its unit (KGM, GRM, MGM, LTR, MLT), numbers written as stored.
 * Products as LGTIN classes, parties as PGLN (source, destination) and
 * SGLN (bizLocation) URNs with a 7-digit company prefix (the reader
 * rebuilds the GLN from the digits, whatever the split).  Ledger fields
 * EPCIS has no place for (method, witness, handler, checker, site,
 * carrier, spec) travel in the extension object trace:fields.  eventID:
 * the event id when it is already a URI, else TRACE_EPCIS_ID_PREFIX and
 * the id percent-encoded; the reader undoes both, so ids survive and a
 * second import is idempotent.
 *
 * Left out, counted by reason: entries that are no movement, movements
 * of other types, movements by substance, and movements that cannot be
 * expressed (a party without a GLN, a unit without a code, a lot with
 * characters an LGTIN cannot carry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "internal.h"
#include "trace/epcis.h"

#define GLN_CAP 14

/* One EPCIS event's text, built before it is known to be expressible. */
struct buf {
    char *p;
    size_t n, cap;
    int oom;
};

struct mv;

struct xp {
    FILE *out;
    strmap *glns;       /* party -> GLN */
    strmap *substances; /* substance -> first GTIN */
    strmap *sites;      /* party \x01 site -> SGLN */
    trace_epcis_export_summary *sum;
    struct buf b;
    struct mv *m;     /* the movement being written */
    char (*ibuf)[64]; /* its inputs' quantity texts */
};

static const struct {
    const char *unit, *code;
} uom_codes[] = {
    {"kg", "KGM"}, {"g", "GRM"}, {"mg", "MGM"}, {"L", "LTR"}, {"mL", "MLT"}};

static const char *const extra_fields[] = {
    "method", "witness", "handler", "checker", "site", "carrier", "spec", NULL};

static int add_site(struct xp *x, const char *party, const char *site,
                    const char *sgln)
{
    char key[512], *v;

    if (strlen(sgln) != 13 || (size_t)snprintf(key, sizeof(key), "%s\x01%s",
                                               party, site) >= sizeof(key))
        return 0; /* not written by site */
    if (!(v = strmap_get(x->sites, key, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(v, sgln, GLN_CAP);
    return 0;
}

static int load_party(const trace_party_row *p, void *ctx)
{
    struct xp *x = ctx;
    char *v;

    for (size_t i = 0; i < p->n_sites; i++)
        if (add_site(x, p->party, p->sites[i].site, p->sites[i].sgln) != 0)
            return TRACE_ENOMEM;

    if (!p->gln || strlen(p->gln) != 13)
        return 0;
    if (!(v = strmap_get(x->glns, p->party, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(v, p->gln, GLN_CAP);
    return 0;
}

static int load_product(const trace_product_row *p, void *ctx)
{
    struct xp *x = ctx;
    char *v;

    if (strmap_get(x->substances, p->substance, 0))
        return 0; /* the first, in GTIN order */
    if (!(v = strmap_get(x->substances, p->substance, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(v, p->gtin, 15);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Text                                                                 */

static void put_n(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        char *p;
        while (nc < b->n + n + 1)
            nc *= 2;
        if (!(p = realloc(b->p, nc))) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put(struct buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

/* s escaped for a JSON string, as jansson escapes it. */
static void put_esc(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put_n(b, run, (size_t)(s - run));
        run = s + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            put_n(b, esc, 2);
            break;
        case '\b':
            put_n(b, "\\b", 2);
            break;
        case '\f':
            put_n(b, "\\f", 2);
            break;
        case '\n':
            put_n(b, "\\n", 2);
            break;
        case '\r':
            put_n(b, "\\r", 2);
            break;
        case '\t':
            put_n(b, "\\t", 2);
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put_n(b, esc, 6);
        }
    }
    put_n(b, run, (size_t)(s - run));
}

/* s as a JSON string, quotes included. */
static void put_str(struct buf *b, const char *s)
{
    put_n(b, "\"", 1);
    put_esc(b, s);
    put_n(b, "\"", 1);
}

/* "urn:epc:id:sgln:CP.REF.0" or "urn:epc:id:pgln:CP.REF"; 0 if the
 * party has no GLN. */
static int put_gln_uri(struct xp *x, const char *party, int site)
{
    const char *g = party ? strmap_get(x->glns, party, 0) : NULL;
    char buf[48];

    if (!g)
        return 0;
    snprintf(buf, sizeof(buf), "\"urn:epc:id:%s:%.7s.%.5s%s\"",
             site ? "sgln" : "pgln", g, g + 7, site ? ".0" : "");
    put(&x->b, buf);
    return 1;
}

/* An LGTIN class: "urn:epc:class:lgtin:CP.IREF.LOT"; 0 if the lot has
 * characters the reader would not give back. */
static int lgtin_ok(const char *lot)
{
    return lot && lot[0] && strlen(lot) <= 128 &&
           strspn(lot, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-._:!'()*+,;=") == strlen(lot);
}

static void put_lgtin(struct buf *b, const char *gtin, const char *lot)
{
    char buf[64];

    snprintf(buf, sizeof(buf), "\"urn:epc:class:lgtin:%.7s.%c%.5s.", gtin + 1,
             gtin[0], gtin + 8);
    put(b, buf);
    put(b, lot);
    put_n(b, "\"", 1);
}

static int is_uri(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789+.-");
    if (n == 0 || s[n] != ':' || !s[n + 1] ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    if (strncmp(s, TRACE_EPCIS_ID_PREFIX, strlen(TRACE_EPCIS_ID_PREFIX)) == 0)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-._~:/?#[]@!$&'()*+,;=") == strlen(s);
}

/* An event id as a URI (see the essay). */
static void put_id_uri(struct buf *b, const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[3 * TRACE_MAX_ID + 64];
    size_t o;

    if (is_uri(id)) {
        put_str(b, id);
        return;
    }
    o = (size_t)snprintf(buf, sizeof(buf), "%s", TRACE_EPCIS_ID_PREFIX);
    for (const unsigned char *p = (const unsigned char *)id;
         *p && o + 4 < sizeof(buf); p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    buf[o] = '\0';
    put_str(b, buf);
}

/* A quantity element of class (gtin, lot): `packs` packs (EA) when
 * packs > 0, else the substance quantity (its text) in its unit's code.
 * 0: cannot be expressed. */
static const char *uom_code(const char *unit)
{
    for (size_t i = 0; unit && i < sizeof(uom_codes) / sizeof(*uom_codes); i++)
        if (strcmp(uom_codes[i].unit, unit) == 0)
            return uom_codes[i].code;
    return NULL;
}

static int put_qty_elem(struct buf *b, const char *gtin, const char *lot,
                        uint32_t packs, const char *qty, const char *unit)
{
    const char *code = uom_code(unit);
    char num[16];

    if (!packs && (!code || !qty || !qty[0]))
        return 0;
    put(b, "{\"epcClass\":");
    put_lgtin(b, gtin, lot);
    put(b, ",\"quantity\":");
    if (packs) {
        snprintf(num, sizeof(num), "%u", packs);
        put(b, num);
        put(b, ",\"uom\":\"EA\"}");
    } else {
        put(b, qty);
        put(b, ",\"uom\":\"");
        put(b, code);
        put(b, "\"}");
    }
    return 1;
}

/* eventTimeZoneOffset from the `at` text: its own offset. */
static const char *tz_of(const char *at)
{
    size_t n = strlen(at);
    if (n > 6 && (at[n - 6] == '+' || at[n - 6] == '-') && at[n - 3] == ':')
        return at + n - 6;
    return "+00:00";
}

#define EXTRA_SITE 4 /* extra_fields[4] */

/* The SGLN URI of the party's site when it has one, else its GLN's. */
static void put_location(struct xp *x, const char *party, const char *site)
{
    char key[512], buf[48];
    const char *g = NULL;

    if (site && (size_t)snprintf(key, sizeof(key), "%s\x01%s", party, site) <
                    sizeof(key))
        g = strmap_get(x->sites, key, 0);
    if (!g) {
        put_gln_uri(x, party, 1);
        return;
    }
    snprintf(buf, sizeof(buf), "\"urn:epc:id:sgln:%.7s.%.5s.0\"", g, g + 7);
    put(&x->b, buf);
}

enum left_out { OUT_NONE, OUT_NO_GLN, OUT_NOT_EXPRESSIBLE, OUT_NO_PRODUCT };

#define MAX_INPUTS 256
#define N_EXTRA    7

/* What the mapping reads of a ledger event, from its stored form or
 * from its JSON line (texts as the JSON line writes them). */
struct mv {
    const char *type, *id, *party, *at;
    const char *gtin, *lot, *qty, *unit; /* qty: the decimal text */
    uint32_t packs;                      /* 0: none */
    const char *other;                   /* to (sale), from (receipt) */
    const char *ref, *permit, *transport_permit;
    size_t n_inputs;
    struct {
        const char *lot, *substance, *qty, *unit;
    } inputs[MAX_INPUTS];
    int too_many_inputs;
    const char *rx;             /* a dispense's prescription, JSON */
    const char *extra[N_EXTRA]; /* values of extra_fields, or NULL */
};

/* Writes the EPCIS event of movement m into x->b; OUT_NONE, or why it
 * cannot be written. */
static enum left_out map_one(struct xp *x, const struct mv *m)
{
    struct buf *b = &x->b;
    int transform = strcmp(m->type, "produce") == 0 && m->n_inputs;
    int sale = strcmp(m->type, "sale") == 0;
    int receipt = strcmp(m->type, "receipt") == 0;
    const char *gpeer = NULL;
    size_t fields = 0;

    /* in the order the checks were always made: the event's own class
     * and quantity, its party's GLN, its inputs' products, the peer's
     * GLN */
    if (!m->at || !lgtin_ok(m->lot) || strlen(m->gtin) != 14 ||
        strspn(m->gtin, "0123456789") != 14 ||
        (!m->packs && (!uom_code(m->unit) || !m->qty)) || m->too_many_inputs)
        return OUT_NOT_EXPRESSIBLE;
    if (!strmap_get(x->glns, m->party, 0))
        return OUT_NO_GLN;
    put(b, "{\"type\":\"");
    put(b, transform ? "TransformationEvent" : "ObjectEvent");
    put(b, "\",\"eventTime\":");
    put_str(b, m->at);
    put(b, ",\"eventTimeZoneOffset\":\"");
    put(b, tz_of(m->at));
    put(b, "\",\"eventID\":");
    put_id_uri(b, m->id);
    if (transform) {
        put(b, ",\"inputQuantityList\":[");
        for (size_t i = 0; i < m->n_inputs; i++) {
            const char *g =
                m->inputs[i].substance
                    ? strmap_get(x->substances, m->inputs[i].substance, 0)
                    : NULL;
            if (!g)
                return OUT_NO_PRODUCT;
            if (!lgtin_ok(m->inputs[i].lot))
                return OUT_NOT_EXPRESSIBLE;
            if (i)
                put(b, ",");
            if (!put_qty_elem(b, g, m->inputs[i].lot, 0, m->inputs[i].qty,
                              m->inputs[i].unit))
                return OUT_NOT_EXPRESSIBLE;
        }
        put(b, "],\"outputQuantityList\":[");
        put_qty_elem(b, m->gtin, m->lot, m->packs, m->qty, m->unit);
        put(b, "],\"bizStep\":\"transforming\"");
    } else {
        const char *action = "OBSERVE", *step = "dispensing";
        if (strcmp(m->type, "produce") == 0)
            action = "ADD", step = "commissioning";
        else if (sale)
            step = "shipping";
        else if (receipt)
            step = "receiving";
        else if (strcmp(m->type, "destroy") == 0)
            action = "DELETE", step = "destroying";
        put(b, ",\"action\":\"");
        put(b, action);
        put(b, "\",\"quantityList\":[");
        put_qty_elem(b, m->gtin, m->lot, m->packs, m->qty, m->unit);
        put(b, "],\"bizStep\":\"");
        put(b, step);
        put(b, "\"");
        if ((sale || receipt) &&
            !(gpeer = m->other ? strmap_get(x->glns, m->other, 0) : NULL))
            return OUT_NO_GLN;
    }
    put(b, ",\"bizLocation\":{\"id\":");
    put_location(x, m->party, m->extra[EXTRA_SITE]);
    put(b, "}");
    if (sale || receipt) {
        put(b, ",\"sourceList\":[{\"type\":\"owning_party\",\"source\":");
        put_gln_uri(x, sale ? m->party : m->other, 0);
        put(b, "}],\"destinationList\":[{\"type\":\"owning_party\","
               "\"destination\":");
        put_gln_uri(x, sale ? m->other : m->party, 0);
        put(b, "}]");
    }
    if (sale) {
        /* urn:epcglobal:cbv:bt:GLN:PERMIT: the reader takes what follows
         * the last ':' */
        const char *permits[2] = {m->permit, m->transport_permit};
        int n = 0;
        for (int i = 0; i < 2; i++) {
            if (!permits[i])
                continue;
            put(b, n++ ? "," : ",\"bizTransactionList\":[");
            put(b, i ? "{\"type\":\"bol\"" : "{\"type\":\"po\"");
            put(b, ",\"bizTransaction\":\"urn:epcglobal:cbv:bt:");
            put(b, gpeer);
            put(b, ":");
            put_esc(b, permits[i]);
            put(b, "\"}");
        }
        if (n)
            put(b, "]");
    } else if (receipt && m->ref) {
        put(b, ",\"bizTransactionList\":[{\"type\":\"upevt\","
               "\"bizTransaction\":");
        put_id_uri(b, m->ref);
        put(b, "}]");
    }
    if (m->rx && strcmp(m->type, "dispense") == 0) {
        put(b, ",\"trace:rx\":");
        put(b, m->rx);
    }
    for (size_t i = 0; i < N_EXTRA; i++) {
        if (!m->extra[i])
            continue;
        put(b, fields++ ? "," : ",\"trace:fields\":{");
        put_str(b, extra_fields[i]);
        put(b, ":");
        put_str(b, m->extra[i]);
    }
    if (fields)
        put(b, "}");
    put(b, "}");
    return OUT_NONE;
}

static const char *const mapped_types[] = {"produce", "sale",     "receipt",
                                           "destroy", "dispense", NULL};

/* Counts and writes one movement (m->lot set: a movement). */
static int write_mv(struct xp *x, const struct mv *m)
{
    enum left_out why;
    int known = 0;

    for (size_t i = 0; mapped_types[i]; i++)
        known |= strcmp(mapped_types[i], m->type) == 0;
    if (!known) {
        x->sum->other_types++;
        return TRACE_OK;
    }
    if (!m->gtin) {
        x->sum->no_product++;
        return TRACE_OK;
    }
    x->b.n = 0;
    why = map_one(x, m);
    if (x->b.oom)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    switch (why) {
    case OUT_NONE:
        fputs(x->sum->written ? ",\n" : "\n", x->out);
        fwrite(x->b.p, 1, x->b.n, x->out);
        x->sum->written++;
        if (ferror(x->out))
            return trace_fail(TRACE_EUNAVAIL, "write error");
        break;
    case OUT_NO_GLN:
        x->sum->no_gln++;
        break;
    case OUT_NO_PRODUCT:
        x->sum->no_product++;
        break;
    default:
        x->sum->not_expressible++;
    }
    return TRACE_OK;
}

/* ------------------------------------------------------------------ */
/* From the stored events                                               */

static uint32_t packs_of(const ProtobufCMessage *body)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(body->descriptor,
                                                        "packs");
    if (!f || !*(const protobuf_c_boolean *)((const char *)body +
                                             f->quantifier_offset))
        return 0;
    return *(const uint32_t *)((const char *)body + f->offset);
}

/* A quantity's decimal text, into buf. */
static const char *qty_text(char *buf, size_t cap, const Trace__V1__Quantity *q)
{
    int64_t factor = 1;

    if (!q || !q->unit || unit_lookup(q->unit, NULL, &factor) != TRACE_OK ||
        qty_format(buf, cap, q->amount, factor) != TRACE_OK)
        return NULL;
    return buf;
}

static int on_event(uint64_t seq, const Trace__V1__Event *ev, void *ctx)
{
    struct xp *x = ctx;
    const ProtobufCMessage *body = event_body(ev);
    const Trace__V1__Quantity *q;
    char at[64], qbuf[64], (*ibuf)[64] = x->ibuf;
    char *rx = NULL;
    struct mv *m = x->m;
    int rc;

    (void)seq;
    x->sum->entries++;
    memset(m, 0, sizeof(*m));
    m->type = ev->type;
    m->lot = body ? msg_field(body, "lot") : NULL;
    if (!m->lot) { /* products carry a gtin, no lot */
        x->sum->not_movements++;
        return TRACE_OK;
    }
    m->id = ev->id;
    m->party = ev->party;
    m->at = time_format(at, sizeof(at), ev->at) == TRACE_OK ? at : NULL;
    m->gtin = msg_field(body, "gtin");
    q = msg_field(body, "qty");
    m->qty = qty_text(qbuf, sizeof(qbuf), q);
    m->unit = q ? q->unit : NULL;
    m->packs = packs_of(body);
    for (size_t i = 0; i < N_EXTRA; i++)
        m->extra[i] = msg_field(body, extra_fields[i]);
    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_PRODUCE_BODY:
        m->n_inputs = ev->produce_body->n_inputs;
        if (m->n_inputs > MAX_INPUTS) {
            m->too_many_inputs = 1;
            m->n_inputs = 0;
        }
        for (size_t i = 0; i < m->n_inputs; i++) {
            const Trace__V1__Input *in = ev->produce_body->inputs[i];
            m->inputs[i].lot = in->lot;
            m->inputs[i].substance = in->substance;
            m->inputs[i].qty = qty_text(ibuf[i], sizeof(ibuf[i]), in->qty);
            m->inputs[i].unit = in->qty ? in->qty->unit : NULL;
        }
        break;
    case TRACE__V1__EVENT__BODY_SALE_BODY:
        m->other = ev->sale_body->to;
        m->permit = ev->sale_body->permit;
        m->transport_permit = ev->sale_body->transport_permit;
        break;
    case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        m->other = ev->receipt_body->from;
        m->ref = ev->receipt_body->ref;
        break;
    case TRACE__V1__EVENT__BODY_DISPENSE_BODY:
        if (ev->dispense_body->rx) {
            json_t *j = msg_json(&ev->dispense_body->rx->base);
            rx = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(j);
            if (!rx)
                return trace_fail(TRACE_ENOMEM, "out of memory");
            m->rx = rx;
        }
        break;
    default:
        break;
    }
    rc = write_mv(x, m);
    free(rx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* From JSON lines (an export read through traced)                      */

/* A parsed value as compact JSON text, members in order. */
static void put_jt(struct buf *b, const jt *v)
{
    const jt *k;
    int first = 1;

    switch (v->type) {
    case JT_NULL:
        put(b, "null");
        break;
    case JT_TRUE:
        put(b, "true");
        break;
    case JT_FALSE:
        put(b, "false");
        break;
    case JT_NUM:
        put(b, v->s);
        break;
    case JT_STR:
        put_str(b, v->s);
        break;
    default:
        put(b, v->type == JT_ARR ? "[" : "{");
        jt_foreach(v, k)
        {
            if (!first)
                put(b, ",");
            first = 0;
            if (v->type == JT_OBJ) {
                put_str(b, k->key);
                put(b, ":");
            }
            put_jt(b, k);
        }
        put(b, v->type == JT_ARR ? "]" : "}");
    }
}

static uint32_t jt_packs(const jt *o)
{
    const jt *v = jt_get(o, "packs");
    unsigned long n;
    char *end;

    if (!v || v->type != JT_NUM)
        return 0;
    n = strtoul(v->s, &end, 10);
    return *end || n > UINT32_MAX ? 0 : (uint32_t)n;
}

struct trace_epcis_writer {
    struct xp x;
    trace_epcis_export_summary sum;
    arena *a;
    struct buf rx;
    int begun;
};

int trace_epcis_writer_new(trace_epcis_writer **out, FILE *f)
{
    trace_epcis_writer *w = calloc(1, sizeof(*w));

    if (!w || !(w->a = arena_new(0)) || !(w->x.glns = strmap_new(GLN_CAP)) ||
        !(w->x.sites = strmap_new(GLN_CAP)) ||
        !(w->x.substances = strmap_new(15)) ||
        !(w->x.m = malloc(sizeof(*w->x.m))) ||
        !(w->x.ibuf = malloc(MAX_INPUTS * sizeof(*w->x.ibuf)))) {
        trace_epcis_writer_free(w);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    w->x.out = f;
    w->x.sum = &w->sum;
    *out = w;
    return TRACE_OK;
}

void trace_epcis_writer_free(trace_epcis_writer *w)
{
    if (!w)
        return;
    arena_free(w->a);
    strmap_free(w->x.glns);
    strmap_free(w->x.sites);
    strmap_free(w->x.substances);
    free(w->x.m);
    free(w->x.ibuf);
    free(w->x.b.p);
    free(w->rx.p);
    free(w);
}

int trace_epcis_writer_add_party(trace_epcis_writer *w, const char *party,
                                 const char *gln)
{
    trace_party_row p = {0};
    p.party = party;
    p.gln = gln;
    return load_party(&p, &w->x);
}

int trace_epcis_writer_add_site(trace_epcis_writer *w, const char *party,
                                const char *site, const char *sgln)
{
    return add_site(&w->x, party, site, sgln);
}

int trace_epcis_writer_add_product(trace_epcis_writer *w, const char *gtin,
                                   const char *substance)
{
    trace_product_row p = {0};
    if (strlen(gtin) != 14)
        return trace_fail(TRACE_EINVAL, "bad GTIN %.40s", gtin);
    p.gtin = gtin;
    p.substance = substance;
    return load_product(&p, &w->x);
}

static void head(FILE *out)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(out,
            "{\"@context\":[\"https://ref.gs1.org/standards/epcis/2.0.0/"
            "epcis-context.jsonld\",{\"trace\":\"%s\"}],"
            "\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\","
            "\"creationDate\":\"%s\",\"epcisBody\":{\"eventList\":[",
            TRACE_EPCIS_VOCAB, when);
}

static int tail(FILE *out, const trace_epcis_export_summary *sum)
{
    fputs(sum->written ? "\n]}}\n" : "]}}\n", out);
    if (fflush(out) != 0 || ferror(out))
        return trace_fail(TRACE_EUNAVAIL, "write error");
    return TRACE_OK;
}

int trace_epcis_writer_line(trace_epcis_writer *w, const char *line, size_t len)
{
    struct mv *m = w->x.m;
    char err[160];
    const jt *o, *in, *v;

    if (!w->begun) {
        head(w->x.out);
        w->begun = 1;
    }
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (!len)
        return TRACE_OK;
    w->sum.entries++;
    arena_reset(w->a);
    if (!(o = jt_parse(w->a, line, len, err, sizeof(err))) ||
        o->type != JT_OBJ || !jt_str(o, "type"))
        return trace_fail(TRACE_EVERIFY, "an exported event is not JSON: %s",
                          err[0] ? err : "no type");
    memset(m, 0, sizeof(*m));
    if (!(m->lot = jt_str(o, "lot"))) {
        w->sum.not_movements++;
        return TRACE_OK;
    }
    m->type = jt_str(o, "type");
    m->id = jt_str(o, "id");
    m->party = jt_str(o, "party");
    m->at = jt_str(o, "at");
    m->gtin = jt_str(o, "gtin");
    m->qty = jt_str(o, "qty");
    m->unit = jt_str(o, "unit");
    m->packs = jt_packs(o);
    if (!m->id || !m->party)
        return trace_fail(TRACE_EVERIFY, "an exported event has no id");
    for (size_t i = 0; i < N_EXTRA; i++)
        m->extra[i] = jt_str(o, extra_fields[i]);
    if (strcmp(m->type, "sale") == 0) {
        m->other = jt_str(o, "to");
        m->permit = jt_str(o, "permit");
        m->transport_permit = jt_str(o, "transport_permit");
    } else if (strcmp(m->type, "receipt") == 0) {
        m->other = jt_str(o, "from");
        m->ref = jt_str(o, "ref");
    }
    if ((in = jt_get(o, "inputs")) && in->type == JT_ARR) {
        if (in->n > MAX_INPUTS)
            m->too_many_inputs = 1;
        else
            jt_foreach(in, v)
            {
                size_t i = m->n_inputs++;
                m->inputs[i].lot = jt_str(v, "lot");
                m->inputs[i].substance = jt_str(v, "substance");
                m->inputs[i].qty = jt_str(v, "qty");
                m->inputs[i].unit = jt_str(v, "unit");
            }
    }
    if ((v = jt_get(o, "rx")) && v->type == JT_OBJ) {
        w->rx.n = 0;
        put_jt(&w->rx, v);
        put_n(&w->rx, "", 1); /* NUL */
        if (w->rx.oom)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        m->rx = w->rx.p;
    }
    return write_mv(&w->x, m);
}

int trace_epcis_writer_end(trace_epcis_writer *w,
                           trace_epcis_export_summary *sum)
{
    if (!w->begun) {
        head(w->x.out);
        w->begun = 1;
    }
    *sum = w->sum;
    return tail(w->x.out, &w->sum);
}

/* ------------------------------------------------------------------ */
/* The ledger's own                                                     */

int trace_epcis_export(trace_ledger *l, const trace_export_opts *opts,
                       FILE *out, trace_epcis_export_summary *sum)
{
    struct xp x = {0};
    int rc;

    memset(sum, 0, sizeof(*sum));
    x.out = out;
    x.sum = sum;
    if (opts && opts->party && !trace_party_id_valid(opts->party))
        return trace_fail(TRACE_EINVAL, "invalid party id");
    if (!(x.glns = strmap_new(GLN_CAP)) || !(x.substances = strmap_new(15)) ||
        !(x.sites = strmap_new(GLN_CAP)) || !(x.m = malloc(sizeof(*x.m))) ||
        !(x.ibuf = malloc(MAX_INPUTS * sizeof(*x.ibuf)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = trace_parties(l, NULL, load_party, &x)) != TRACE_OK ||
        (rc = trace_products(l, NULL, load_product, &x)) != TRACE_OK)
        goto out;
    head(out);
    if ((rc = export_events(l, opts, on_event, &x)) != TRACE_OK)
        goto out;
    rc = tail(out, sum);
out:
    free(x.b.p);
    free(x.m);
    free(x.ibuf);
    strmap_free(x.glns);
    strmap_free(x.sites);
    strmap_free(x.substances);
    return rc;
}
