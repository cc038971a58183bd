/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epcis_export.c - the journal as one GS1 EPCIS 2.0 JSON-LD EPCISDocument
 * (SPEC 11), the inverse of the reader in epcis.c.
 *
 * Streaming.  The journal is walked by trace_ledger_export (so --party,
 * --from and --to filter exactly as the JSON Lines export does); each
 * SPEC 3 line is parsed alone, mapped, and written at once: memory holds
 * one event, never the document.
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

#define NUM_MARK '\x01'
#define GLN_CAP  14

struct xp {
    FILE *out;
    strmap *glns;       /* party -> GLN */
    strmap *substances; /* substance -> first GTIN */
    trace_epcis_export_summary *sum;
    int io_err;
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

static const char *sv(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && s[0] != NUM_MARK ? s : NULL;
}

/* "urn:epc:id:sgln:CP.REF.0" or "urn:epc:id:pgln:CP.REF"; NULL if the
 * party has no GLN. */
static json_t *gln_uri(struct xp *x, const char *party, int site)
{
    const char *g = party ? strmap_get(x->glns, party, 0) : NULL;
    char buf[48];

    if (!g)
        return NULL;
    snprintf(buf, sizeof(buf), "urn:epc:id:%s:%.7s.%.5s%s",
             site ? "sgln" : "pgln", g, g + 7, site ? ".0" : "");
    return json_string(buf);
}

/* An LGTIN class: "urn:epc:class:lgtin:CP.IREF.LOT"; NULL if the lot
 * has characters the reader would not give back. */
static json_t *lgtin(const char *gtin, const char *lot)
{
    char buf[256];

    if (!lot || !lot[0] || strlen(lot) > 128 ||
        strspn(lot, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-._:!'()*+,;=") != strlen(lot))
        return NULL;
    snprintf(buf, sizeof(buf), "urn:epc:class:lgtin:%.7s.%c%.5s.%s", gtin + 1,
             gtin[0], gtin + 8, lot);
    return json_string(buf);
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
static json_t *id_uri(const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[3 * TRACE_MAX_ID + 64];
    size_t o;

    if (is_uri(id))
        return json_string(id);
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
    return json_string(buf);
}

/* A quantity element: packs (EA) if the event has them, else the
 * substance quantity in its unit's code.  NULL: cannot be expressed. */
static json_t *qty_elem(json_t *cls, json_t *ev, int use_packs)
{
    json_t *q = json_object(), *packs = json_object_get(ev, "packs");
    const char *unit = sv(ev, "unit");
    const char *qty = json_string_value(json_object_get(ev, "qty"));
    size_t i;

    json_object_set_new(q, "epcClass", cls);
    if (use_packs && packs) {
        json_object_set(q, "quantity", packs);
        json_object_set_new(q, "uom", json_string("EA"));
        return q;
    }
    for (i = 0; unit && i < sizeof(uom_codes) / sizeof(*uom_codes); i++)
        if (strcmp(uom_codes[i].unit, unit) == 0)
            break;
    if (!unit || !qty || i == sizeof(uom_codes) / sizeof(*uom_codes)) {
        json_decref(q);
        return NULL;
    }
    /* stored as a string: written as the number it is */
    if (qty[0] == NUM_MARK) {
        json_object_set_new(q, "quantity", json_string(qty));
    } else {
        size_t n = strlen(qty);
        char *m = malloc(n + 2);
        if (!m) {
            json_decref(q);
            return NULL;
        }
        m[0] = NUM_MARK;
        memcpy(m + 1, qty, n + 1);
        json_object_set_new(q, "quantity", json_string(m));
        free(m);
    }
    json_object_set_new(q, "uom", json_string(uom_codes[i].code));
    return q;
}

/* Writes s (jansson's text of the event) with every marked number
 * "\u0001TEXT" turned back into TEXT. */
static void write_unmarked(struct xp *x, const char *s)
{
    static const char mark[] = "\"\\u0001";
    const char *p;

    while ((p = strstr(s, mark)) != NULL) {
        const char *num = p + strlen(mark), *end = strchr(num, '"');
        if (!end)
            break;
        fwrite(s, 1, (size_t)(p - s), x->out);
        fwrite(num, 1, (size_t)(end - num), x->out);
        s = end + 1;
    }
    fputs(s, x->out);
}

static int emit(struct xp *x, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(o);
    if (!s)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    fputs(x->sum->written ? ",\n" : "\n", x->out);
    write_unmarked(x, s);
    free(s);
    x->sum->written++;
    if (ferror(x->out))
        return trace_fail(TRACE_EUNAVAIL, "write error");
    return TRACE_OK;
}

/* eventTimeZoneOffset from the `at` text: its own offset. */
static json_t *tz_of(const char *at)
{
    size_t n = strlen(at);
    if (n > 6 && (at[n - 6] == '+' || at[n - 6] == '-') && at[n - 3] == ':')
        return json_string(at + n - 6);
    return json_string("+00:00");
}

enum left_out { OUT_NONE, OUT_NO_GLN, OUT_NOT_EXPRESSIBLE, OUT_NO_PRODUCT };

/* The EPCIS event of one ledger event, or NULL with *why set. */
static json_t *map_one(struct xp *x, json_t *ev, enum left_out *why)
{
    const char *type = sv(ev, "type"), *party = sv(ev, "party");
    const char *at = sv(ev, "at"), *gtin = sv(ev, "gtin");
    json_t *inputs = json_object_get(ev, "inputs");
    json_t *o = json_object(), *cls, *q, *loc, *extra;
    int transform = strcmp(type, "produce") == 0 && json_array_size(inputs);

    *why = OUT_NOT_EXPRESSIBLE;
    if (!at || !(cls = lgtin(gtin, sv(ev, "lot"))))
        goto fail;
    if (!(q = qty_elem(cls, ev, 1)))
        goto fail;
    if (!(loc = gln_uri(x, party, 1))) {
        json_decref(q);
        *why = OUT_NO_GLN;
        goto fail;
    }
    json_object_set_new(
        o, "type",
        json_string(transform ? "TransformationEvent" : "ObjectEvent"));
    json_object_set_new(o, "eventTime", json_string(at));
    json_object_set_new(o, "eventTimeZoneOffset", tz_of(at));
    json_object_set_new(o, "eventID", id_uri(sv(ev, "id")));
    if (transform) {
        json_t *iql = json_array(), *x_in;
        size_t i;
        json_array_foreach(inputs, i, x_in)
        {
            const char *g =
                sv(x_in, "substance")
                    ? strmap_get(x->substances, sv(x_in, "substance"), 0)
                    : NULL;
            json_t *ic = g ? lgtin(g, sv(x_in, "lot")) : NULL, *iq;
            if (!g)
                *why = OUT_NO_PRODUCT;
            if (!ic || !(iq = qty_elem(ic, x_in, 0))) {
                json_decref(iql);
                json_decref(q);
                json_decref(loc);
                goto fail;
            }
            json_array_append_new(iql, iq);
        }
        json_object_set_new(o, "inputQuantityList", iql);
        json_object_set_new(o, "outputQuantityList", json_pack("[o]", q));
        json_object_set_new(o, "bizStep", json_string("transforming"));
    } else {
        const char *action = "OBSERVE", *step = NULL;
        if (strcmp(type, "produce") == 0)
            action = "ADD", step = "commissioning";
        else if (strcmp(type, "sale") == 0)
            step = "shipping";
        else if (strcmp(type, "receipt") == 0)
            step = "receiving";
        else if (strcmp(type, "destroy") == 0)
            action = "DELETE", step = "destroying";
        else if (strcmp(type, "dispense") == 0)
            step = "dispensing";
        json_object_set_new(o, "action", json_string(action));
        json_object_set_new(o, "quantityList", json_pack("[o]", q));
        json_object_set_new(o, "bizStep", json_string(step));
    }
    json_object_set_new(o, "bizLocation", json_pack("{s:O}", "id", loc));
    if (strcmp(type, "sale") == 0 || strcmp(type, "receipt") == 0) {
        int sale = type[0] == 's';
        const char *other = sv(ev, sale ? "to" : "from");
        json_t *peer = gln_uri(x, other, 0), *me = gln_uri(x, party, 0);
        json_t *bt = json_array();
        if (!peer) {
            json_decref(me);
            json_decref(bt);
            json_decref(loc);
            *why = OUT_NO_GLN;
            goto fail;
        }
        json_object_set_new(o, "sourceList",
                            json_pack("[{s:s,s:o}]", "type", "owning_party",
                                      "source", sale ? me : peer));
        json_object_set_new(o, "destinationList",
                            json_pack("[{s:s,s:o}]", "type", "owning_party",
                                      "destination", sale ? peer : me));
        if (sale) {
            /* urn:epcglobal:cbv:bt:GLN:PERMIT: the reader takes what
             * follows the last ':' */
            const char *gbuyer = strmap_get(x->glns, other, 0);
            static const char *const permits[] = {"permit", "transport_permit"};
            for (int i = 0; i < 2; i++) {
                const char *p = sv(ev, permits[i]);
                char buf[256];
                if (!p)
                    continue;
                snprintf(buf, sizeof(buf), "urn:epcglobal:cbv:bt:%s:%s", gbuyer,
                         p);
                json_array_append_new(bt, json_pack("{s:s,s:s}", "type",
                                                    i ? "bol" : "po",
                                                    "bizTransaction", buf));
            }
        } else if (sv(ev, "ref")) {
            json_array_append_new(bt, json_pack("{s:s,s:o}", "type", "upevt",
                                                "bizTransaction",
                                                id_uri(sv(ev, "ref"))));
        }
        if (json_array_size(bt))
            json_object_set_new(o, "bizTransactionList", bt);
        else
            json_decref(bt);
    }
    json_decref(loc);
    if (strcmp(type, "dispense") == 0 && json_object_get(ev, "rx"))
        json_object_set(o, "trace:rx", json_object_get(ev, "rx"));
    extra = json_object();
    for (size_t i = 0; extra_fields[i]; i++)
        if (sv(ev, extra_fields[i]))
            json_object_set(extra, extra_fields[i],
                            json_object_get(ev, extra_fields[i]));
    if (json_object_size(extra))
        json_object_set_new(o, "trace:fields", extra);
    else
        json_decref(extra);
    *why = OUT_NONE;
    return o;
fail:
    json_decref(o);
    return NULL;
}

static int on_line(const char *line, size_t len, void *ctx)
{
    static const char *const mapped[] = {"produce", "sale",     "receipt",
                                         "destroy", "dispense", NULL};
    struct xp *x = ctx;
    char *marked = NULL;
    json_t *ev = NULL, *o;
    const char *type;
    enum left_out why;
    int rc = TRACE_OK, known = 0;

    x->sum->entries++;
    if ((rc = json_mark_numbers(&marked, line, len, 0)) != TRACE_OK)
        goto out;
    if (!(ev = json_loads(marked, 0, NULL)) || !(type = sv(ev, "type"))) {
        rc = trace_fail(TRACE_EVERIFY, "an exported event is not JSON");
        goto out;
    }
    for (size_t i = 0; mapped[i]; i++)
        known |= strcmp(mapped[i], type) == 0;
    if (!json_object_get(ev, "lot")) { /* products carry a gtin, no lot */
        x->sum->not_movements++;
    } else if (!known) {
        x->sum->other_types++;
    } else if (!sv(ev, "gtin")) {
        x->sum->no_product++;
    } else if ((o = map_one(x, ev, &why)) != NULL) {
        rc = emit(x, o);
    } else if (why == OUT_NO_GLN) {
        x->sum->no_gln++;
    } else if (why == OUT_NO_PRODUCT) {
        x->sum->no_product++;
    } else {
        x->sum->not_expressible++;
    }
out:
    free(marked);
    json_decref(ev);
    return rc;
}

int trace_epcis_export(trace_ledger *l, const trace_export_opts *opts,
                       FILE *out, trace_epcis_export_summary *sum)
{
    struct xp x = {out, NULL, NULL, sum, 0};
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    memset(sum, 0, sizeof(*sum));
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
    if ((rc = trace_ledger_export(l, opts, on_line, &x)) != TRACE_OK)
        goto out;
    fputs(sum->written ? "\n]}}\n" : "]}}\n", out);
    if (fflush(out) != 0 || ferror(out))
        rc = trace_fail(TRACE_EUNAVAIL, "write error");
out:
    strmap_free(x.glns);
    strmap_free(x.substances);
    return rc;
}
