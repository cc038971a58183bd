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

struct xp {
    FILE *out;
    strmap *glns;       /* party -> GLN */
    strmap *substances; /* substance -> first GTIN */
    trace_epcis_export_summary *sum;
    struct buf b;
};

static const struct {
    const char *unit, *code;
} uom_codes[] = {
    {"kg", "KGM"}, {"g", "GRM"}, {"mg", "MGM"}, {"L", "LTR"}, {"mL", "MLT"}};

static const char *const extra_fields[] = {
    "method", "witness", "handler", "checker", "site", "carrier", "spec", NULL};

static int load_party(const trace_party_row *p, void *ctx)
{
    struct xp *x = ctx;
    char *v;

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
 * packs > 0, else the substance quantity in its unit's code.  0: cannot
 * be expressed. */
static int put_qty_elem(struct buf *b, const char *gtin, const char *lot,
                        uint32_t packs, const Trace__V1__Quantity *q)
{
    char num[64];
    size_t i;
    int64_t factor = 1;

    if (!packs) {
        for (i = 0; q && q->unit && i < sizeof(uom_codes) / sizeof(*uom_codes);
             i++)
            if (strcmp(uom_codes[i].unit, q->unit) == 0)
                break;
        if (!q || !q->unit || i == sizeof(uom_codes) / sizeof(*uom_codes) ||
            unit_lookup(q->unit, NULL, &factor) != TRACE_OK ||
            qty_format(num, sizeof(num), q->amount, factor) != TRACE_OK)
            return 0;
    }
    put(b, "{\"epcClass\":");
    put_lgtin(b, gtin, lot);
    put(b, ",\"quantity\":");
    if (packs) {
        snprintf(num, sizeof(num), "%u", packs);
        put(b, num);
        put(b, ",\"uom\":\"EA\"}");
    } else {
        put(b, num);
        put(b, ",\"uom\":\"");
        put(b, uom_codes[i].code);
        put(b, "\"}");
    }
    return 1;
}

/* Whether put_qty_elem can write the quantity. */
static int qty_ok(uint32_t packs, const Trace__V1__Quantity *q)
{
    if (packs)
        return 1;
    for (size_t i = 0;
         q && q->unit && i < sizeof(uom_codes) / sizeof(*uom_codes); i++)
        if (strcmp(uom_codes[i].unit, q->unit) == 0)
            return 1;
    return 0;
}

/* eventTimeZoneOffset from the `at` text: its own offset. */
static const char *tz_of(const char *at)
{
    size_t n = strlen(at);
    if (n > 6 && (at[n - 6] == '+' || at[n - 6] == '-') && at[n - 3] == ':')
        return at + n - 6;
    return "+00:00";
}

enum left_out { OUT_NONE, OUT_NO_GLN, OUT_NOT_EXPRESSIBLE, OUT_NO_PRODUCT };

/* The movement fields the mapping reads, whatever the body's type. */
struct mv {
    const char *type, *gtin, *lot, *other; /* to (sale), from (receipt) */
    const Trace__V1__Quantity *qty;
    uint32_t packs;
    size_t n_inputs;
    Trace__V1__Input **inputs;
};

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

/* Writes the EPCIS event of ledger event ev (body, movement m) into
 * x->b; OUT_NONE, or why it cannot be written. */
static enum left_out map_one(struct xp *x, const Trace__V1__Event *ev,
                             const ProtobufCMessage *body, const struct mv *m)
{
    struct buf *b = &x->b;
    char at[64];
    int transform = strcmp(m->type, "produce") == 0 && m->n_inputs;
    int sale = strcmp(m->type, "sale") == 0;
    int receipt = strcmp(m->type, "receipt") == 0;
    const char *gpeer = NULL;
    size_t fields = 0;

    /* in the order the checks were always made: the event's own class
     * and quantity, its party's GLN, its inputs' products, the peer's GLN */
    if (time_format(at, sizeof(at), ev->at) != TRACE_OK || !lgtin_ok(m->lot) ||
        strlen(m->gtin) != 14 || !qty_ok(m->packs, m->qty))
        return OUT_NOT_EXPRESSIBLE;
    if (!strmap_get(x->glns, ev->party, 0))
        return OUT_NO_GLN;
    put(b, "{\"type\":\"");
    put(b, transform ? "TransformationEvent" : "ObjectEvent");
    put(b, "\",\"eventTime\":\"");
    put(b, at);
    put(b, "\",\"eventTimeZoneOffset\":\"");
    put(b, tz_of(at));
    put(b, "\",\"eventID\":");
    put_id_uri(b, ev->id);
    if (transform) {
        put(b, ",\"inputQuantityList\":[");
        for (size_t i = 0; i < m->n_inputs; i++) {
            const Trace__V1__Input *in = m->inputs[i];
            const char *g = strmap_get(x->substances, in->substance, 0);
            if (!g)
                return OUT_NO_PRODUCT;
            if (!lgtin_ok(in->lot))
                return OUT_NOT_EXPRESSIBLE;
            if (i)
                put(b, ",");
            if (!put_qty_elem(b, g, in->lot, 0, in->qty))
                return OUT_NOT_EXPRESSIBLE;
        }
        put(b, "],\"outputQuantityList\":[");
        if (!put_qty_elem(b, m->gtin, m->lot, m->packs, m->qty))
            return OUT_NOT_EXPRESSIBLE;
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
        if (!put_qty_elem(b, m->gtin, m->lot, m->packs, m->qty))
            return OUT_NOT_EXPRESSIBLE;
        put(b, "],\"bizStep\":\"");
        put(b, step);
        put(b, "\"");
        if ((sale || receipt) &&
            !(gpeer = m->other ? strmap_get(x->glns, m->other, 0) : NULL))
            return OUT_NO_GLN;
    }
    put(b, ",\"bizLocation\":{\"id\":");
    put_gln_uri(x, ev->party, 1);
    put(b, "}");
    if (sale || receipt) {
        put(b, ",\"sourceList\":[{\"type\":\"owning_party\",\"source\":");
        put_gln_uri(x, sale ? ev->party : m->other, 0);
        put(b, "}],\"destinationList\":[{\"type\":\"owning_party\","
               "\"destination\":");
        put_gln_uri(x, sale ? m->other : ev->party, 0);
        put(b, "}]");
    }
    if (sale) {
        /* urn:epcglobal:cbv:bt:GLN:PERMIT: the reader takes what follows
         * the last ':' */
        const char *permits[2] = {ev->sale_body->permit,
                                  ev->sale_body->transport_permit};
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
    } else if (receipt && ev->receipt_body->ref) {
        put(b, ",\"bizTransactionList\":[{\"type\":\"upevt\","
               "\"bizTransaction\":");
        put_id_uri(b, ev->receipt_body->ref);
        put(b, "}]");
    }
    if (ev->body_case == TRACE__V1__EVENT__BODY_DISPENSE_BODY &&
        ev->dispense_body->rx) {
        json_t *rx = msg_json(&ev->dispense_body->rx->base);
        char *s =
            rx ? json_dumps(rx, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(rx);
        if (!s) {
            b->oom = 1;
            return OUT_NONE;
        }
        put(b, ",\"trace:rx\":");
        put(b, s);
        free(s);
    }
    for (size_t i = 0; extra_fields[i]; i++) {
        const char *v = msg_field(body, extra_fields[i]);
        if (!v)
            continue;
        put(b, fields++ ? "," : ",\"trace:fields\":{");
        put_str(b, extra_fields[i]);
        put(b, ":");
        put_str(b, v);
    }
    if (fields)
        put(b, "}");
    put(b, "}");
    return OUT_NONE;
}

static int on_event(uint64_t seq, const Trace__V1__Event *ev, void *ctx)
{
    static const char *const mapped[] = {"produce", "sale",     "receipt",
                                         "destroy", "dispense", NULL};
    struct xp *x = ctx;
    const ProtobufCMessage *body = event_body(ev);
    enum left_out why;
    struct mv m = {0};
    int known = 0;

    (void)seq;
    x->sum->entries++;
    m.type = ev->type;
    m.lot = body ? msg_field(body, "lot") : NULL;
    if (!m.lot) { /* products carry a gtin, no lot */
        x->sum->not_movements++;
        return TRACE_OK;
    }
    for (size_t i = 0; mapped[i]; i++)
        known |= strcmp(mapped[i], m.type) == 0;
    if (!known) {
        x->sum->other_types++;
        return TRACE_OK;
    }
    if (!(m.gtin = msg_field(body, "gtin"))) {
        x->sum->no_product++;
        return TRACE_OK;
    }
    m.qty = msg_field(body, "qty");
    m.packs = packs_of(body);
    if (ev->body_case == TRACE__V1__EVENT__BODY_PRODUCE_BODY) {
        m.n_inputs = ev->produce_body->n_inputs;
        m.inputs = ev->produce_body->inputs;
    } else if (ev->body_case == TRACE__V1__EVENT__BODY_SALE_BODY) {
        m.other = ev->sale_body->to;
    } else if (ev->body_case == TRACE__V1__EVENT__BODY_RECEIPT_BODY) {
        m.other = ev->receipt_body->from;
    }
    x->b.n = 0;
    why = map_one(x, ev, body, &m);
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

int trace_epcis_export(trace_ledger *l, const trace_export_opts *opts,
                       FILE *out, trace_epcis_export_summary *sum)
{
    struct xp x = {out, NULL, NULL, sum, {NULL, 0, 0, 0}};
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    memset(sum, 0, sizeof(*sum));
    if (opts && opts->party && !trace_party_id_valid(opts->party))
        return trace_fail(TRACE_EINVAL, "invalid party id");
    if (!(x.glns = strmap_new(GLN_CAP)) || !(x.substances = strmap_new(15))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = trace_parties(l, NULL, load_party, &x)) != TRACE_OK ||
        (rc = trace_products(l, NULL, load_product, &x)) != TRACE_OK)
        goto out;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(out,
            "{\"@context\":[\"https://ref.gs1.org/standards/epcis/2.0.0/"
            "epcis-context.jsonld\",{\"trace\":\"%s\"}],"
            "\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\","
            "\"creationDate\":\"%s\",\"epcisBody\":{\"eventList\":[",
            TRACE_EPCIS_VOCAB, when);
    if ((rc = export_events(l, opts, on_event, &x)) != TRACE_OK)
        goto out;
    fputs(sum->written ? "\n]}}\n" : "]}}\n", out);
    if (fflush(out) != 0 || ferror(out))
        rc = trace_fail(TRACE_EUNAVAIL, "write error");
out:
    free(x.b.p);
    strmap_free(x.glns);
    strmap_free(x.substances);
    return rc;
}
