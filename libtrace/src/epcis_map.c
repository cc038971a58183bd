/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epcis_map.c - one EPCIS 2.0 event (an element of the document's event
 * list, parsed by jtree.c) mapped onto SPEC 3 JSON lines by its type and
 * bizStep (see trace/epcis.h for the mapping); epcis.c reads the
 * document and hands each event to handle_event().
 *
 * Identities.  Each ledger event gets a stable id, so importing a
 * document again is idempotent: the EPCIS eventID when present, else
 * "epcis:" and 40 hex digits of the SHA-256 of the event re-serialised
 * with sorted keys; an event giving several ledger events adds
 * "#GTIN/LOT" per item.  A sale of a shipping event with a despatch
 * advice (bizTransaction of type desadv) takes the id DESADV#GTIN/LOT
 * instead, and a receipt naming the same despatch advice refers to it,
 * so a buyer's document links to the seller's; without one, a receipt
 * refers to the sale of the same parties, product and lot met earlier
 * in the same document (among at least its last 100,000 sales: the
 * memory is bounded), else to its first bizTransaction.  An id longer
 * than an event id may be becomes "epcis:" and 40 hex digits of its
 * SHA-256.
 *
 * Lots: from an LGTIN or a Digital Link's AI 10, else the event's ilmd
 * member "...lotNumber", else "gtin:GTIN" (serialised items of no known
 * lot, all of one product pooled).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "epcis_int.h"

/* sales remembered for the receipts of the same document that name no
 * despatch advice and no shipping event (about 35 MB) */
#define MAX_SALES 100000

static const char *str(const jt *o, const char *key)
{
    return jt_str(o, key);
}

/* A CBV value written bare, as a URN or as a GS1 web vocabulary URI. */
static const char *cbv_bare(const char *s)
{
    static const char *const prefixes[] = {
        "urn:epcglobal:cbv:bizstep:",       "urn:epcglobal:cbv:sdt:",
        "urn:epcglobal:cbv:btt:",           "urn:epcglobal:cbv:disp:",
        "https://ref.gs1.org/cbv/BizStep-", "https://ref.gs1.org/cbv/SDT-",
        "https://ref.gs1.org/cbv/BTT-",     "https://gs1.org/voc/BizStep-",
    };
    if (!s)
        return NULL;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            return s + strlen(prefixes[i]);
    return s;
}

static int reject(struct ep *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int reject(struct ep *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
    va_end(ap);
    return 1;
}

/* Bounded id: s itself, or "epcis:" + 40 hex of its SHA-256. */
static void make_id(char out[TRACE_MAX_ID + 1], const char *s)
{
    uint8_t h[32];
    if (strlen(s) <= TRACE_MAX_ID) {
        memcpy(out, s, strlen(s) + 1);
        return;
    }
    sha256(h, s, strlen(s));
    memcpy(out, "epcis:", 6);
    hex_encode(out + 6, h, 20);
    out[46] = '\0';
}

/* An eventID (or upevt reference) as a ledger id: what follows
 * TRACE_EPCIS_ID_PREFIX percent-decoded (the writer's form of an id that
 * is no URI), else the URI itself. */
static void id_of_uri(char out[TRACE_MAX_ID + 1], const char *uri)
{
    size_t pl = strlen(TRACE_EPCIS_ID_PREFIX), o = 0;
    char buf[TRACE_MAX_ID + 1];

    if (strncmp(uri, TRACE_EPCIS_ID_PREFIX, pl) != 0) {
        make_id(out, uri);
        return;
    }
    for (const char *p = uri + pl; *p; p++) {
        unsigned v;
        if (o == TRACE_MAX_ID) {
            make_id(out, uri);
            return;
        }
        if (p[0] == '%' && sscanf(p + 1, "%2x", &v) == 1 && p[1] && p[2] &&
            strchr("0123456789abcdefABCDEF", p[1]) &&
            strchr("0123456789abcdefABCDEF", p[2]) && v != 0) {
            buf[o++] = (char)v;
            p += 2;
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    make_id(out, o ? buf : uri);
}

static void item_id(char out[TRACE_MAX_ID + 1], const char *base,
                    const struct item *it, int suffix)
{
    char buf[1024];
    if (!suffix) {
        make_id(out, base);
        return;
    }
    snprintf(buf, sizeof(buf), "%s#%s/%s", base, it->gtin, it->lot);
    make_id(out, buf);
}

/* The party of a GLN URI; NULL with the reason set if none. */
static const char *party_of(struct ep *e, const char *uri, const char *role)
{
    char gln[14];
    const char *p;
    int rc = uri ? gs1_parse_gln(uri, gln) : TRACE_ENOTFOUND;

    if (rc != TRACE_OK) {
        reject(e, "%s %.100s is not a GLN (sgln, pgln or Digital Link)", role,
               uri ? uri : "(none)");
        return NULL;
    }
    if (!(p = strmap_get((strmap *)e->m->parties, gln, 0))) {
        const struct msite *st = strmap_get((strmap *)e->m->sites, gln, 0);
        if (st)
            return st->party; /* the SGLN of one of its sites */
        reject(e,
               "%s GLN %s is no registered party's (register the party "
               "with \"gln\": \"%s\")",
               role, gln, gln);
        return NULL;
    }
    return p;
}

/* The owning (else possessing) party of a source or destination list. */
static const char *sd_uri(const jt *ev, const char *list, const char *member)
{
    static const char *const types[] = {"owning_party", "possessing_party",
                                        "location"};
    const jt *a = jt_get(ev, list), *x;

    if (a && a->type != JT_ARR)
        return NULL;
    for (int t = 0; t < 3; t++)
        jt_foreach(a, x)
        {
            const char *ty = cbv_bare(str(x, "type"));
            if (ty && strcmp(ty, types[t]) == 0 && str(x, member))
                return str(x, member);
        }
    return NULL;
}

/* The party at the event's location: bizLocation, else readPoint. */
static const char *location_party(struct ep *e, const jt *ev)
{
    const char *uri = str(jt_get(ev, "bizLocation"), "id");
    if (!uri)
        uri = str(jt_get(ev, "readPoint"), "id");
    if (!uri) {
        reject(e, "no bizLocation or readPoint says whose event it is");
        return NULL;
    }
    return party_of(e, uri, "location");
}

/* The site of `party` the event's location (bizLocation, else
 * readPoint) is the SGLN of, or NULL. */
static const char *location_site(struct ep *e, const jt *ev, const char *party)
{
    const char *uri = str(jt_get(ev, "bizLocation"), "id");
    const struct msite *st;
    char gln[14];

    if (!uri)
        uri = str(jt_get(ev, "readPoint"), "id");
    if (!uri || !party || gs1_parse_gln(uri, gln) != TRACE_OK ||
        !(st = strmap_get((strmap *)e->m->sites, gln, 0)) ||
        strcmp(st->party, party) != 0)
        return NULL;
    return st->site;
}

static void put_site(struct ep *e, json_t *o, const jt *ev, const char *party)
{
    const char *site = location_site(e, ev, party);
    if (site)
        json_object_set_new(o, "site", json_string(site));
}

static const char *ilmd_lot(const jt *ev)
{
    const jt *ilmd = jt_get(ev, "ilmd"), *v;

    if (!ilmd || ilmd->type != JT_OBJ)
        return NULL;
    jt_foreach(ilmd, v)
    {
        size_t n = strlen(v->key);
        if (n >= 9 && strcmp(v->key + n - 9, "lotNumber") == 0 &&
            v->type == JT_STR)
            return v->s;
    }
    return NULL;
}

static struct item *find_item(struct item *items, size_t n, const char *gtin,
                              const char *lot, int counted)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].gtin, gtin) == 0 &&
            strcmp(items[i].lot, lot) == 0 &&
            (items[i].unit == NULL) == counted)
            return &items[i];
    return NULL;
}

/* The registered items of an EPC list and a quantity list: 0, or 1
 * with the reason set (the event is rejected). */
static int collect(struct ep *e, const jt *ev, const char *epcs,
                   const char *qlist, struct item *items, size_t *n)
{
    static const struct {
        const char *code, *unit;
    } uoms[] = {{"KGM", "kg"}, {"GRM", "g"},  {"MGM", "mg"}, {"LTR", "L"},
                {"MLT", "mL"}, {"H87", NULL}, {"EA", NULL}};
    const char *dflt_lot = ilmd_lot(ev);
    const jt *a, *x;
    size_t i = 0;

    a = jt_get(ev, epcs);
    if (a && a->type != JT_ARR)
        return reject(e, "%s is not a list", epcs);
    for (x = a ? a->kid : NULL; x; x = x->next, i++) {
        const char *uri = x->type == JT_STR ? x->s : NULL;
        char gtin[15], lot[128];
        const struct mprod *p;
        struct item *it;
        int serial, rc;
        if (!uri)
            return reject(e, "%s[%zu] is not a string", epcs, i);
        rc = gs1_parse_item(uri, gtin, lot, sizeof(lot), &serial);
        if (rc == TRACE_ENOTFOUND)
            continue; /* an SSCC, GRAI, ...: no product */
        if (rc != TRACE_OK)
            return reject(e, "%s[%zu]: %s", epcs, i, trace_error_last());
        if (!(p = strmap_get((strmap *)e->m->products, gtin, 0)))
            continue;
        if (!serial)
            return reject(e, "%s[%zu] %.80s names a class, not an instance",
                          epcs, i, uri);
        if (!lot[0])
            snprintf(lot, sizeof(lot), dflt_lot ? "%s" : "gtin:%s",
                     dflt_lot ? dflt_lot : gtin);
        if (!(it = find_item(items, *n, gtin, lot, 1))) {
            if (*n == MAX_ITEMS)
                return reject(e, "more than %d products and lots", MAX_ITEMS);
            it = &items[(*n)++];
            memset(it, 0, sizeof(*it));
            it->p = p;
            memcpy(it->gtin, gtin, 15);
            snprintf(it->lot, sizeof(it->lot), "%s", lot);
        }
        it->packs++;
    }
    a = jt_get(ev, qlist);
    if (a && a->type != JT_ARR)
        return reject(e, "%s is not a list", qlist);
    i = 0;
    for (x = a ? a->kid : NULL; x; x = x->next, i++) {
        const char *cls = str(x, "epcClass"), *q, *uom = str(x, "uom");
        const jt *qv;
        char gtin[15], lot[128];
        const struct mprod *p;
        struct item *it;
        int serial, rc;
        size_t u;
        if (!cls)
            return reject(e, "%s[%zu] has no epcClass", qlist, i);
        rc = gs1_parse_item(cls, gtin, lot, sizeof(lot), &serial);
        if (rc == TRACE_ENOTFOUND)
            continue;
        if (rc != TRACE_OK)
            return reject(e, "%s[%zu]: %s", qlist, i, trace_error_last());
        if (!(p = strmap_get((strmap *)e->m->products, gtin, 0)))
            continue;
        qv = jt_get(x, "quantity");
        if (!qv || qv->type != JT_NUM)
            return reject(e, "%s[%zu]: product %s has no numeric quantity",
                          qlist, i, gtin);
        q = qv->s;
        if (!uom)
            return reject(e,
                          "%s[%zu]: quantity %s of product %s without uom "
                          "(H87 or EA for packs, KGM, GRM, MGM, LTR, MLT)",
                          qlist, i, q, gtin);
        for (u = 0; u < sizeof(uoms) / sizeof(*uoms); u++)
            if (strcmp(uoms[u].code, uom) == 0)
                break;
        if (u == sizeof(uoms) / sizeof(*uoms))
            return reject(e,
                          "%s[%zu]: unknown unit \"%.20s\" (H87, EA, KGM, "
                          "GRM, MGM, LTR, MLT)",
                          qlist, i, uom);
        if (!lot[0])
            snprintf(lot, sizeof(lot), dflt_lot ? "%s" : "gtin:%s",
                     dflt_lot ? dflt_lot : gtin);
        it = find_item(items, *n, gtin, lot, uoms[u].unit == NULL);
        if (it && uoms[u].unit)
            return reject(e, "%s[%zu]: product %s lot %s is listed twice",
                          qlist, i, gtin, lot);
        if (!it) {
            if (*n == MAX_ITEMS)
                return reject(e, "more than %d products and lots", MAX_ITEMS);
            it = &items[(*n)++];
            memset(it, 0, sizeof(*it));
            it->p = p;
            memcpy(it->gtin, gtin, 15);
            snprintf(it->lot, sizeof(it->lot), "%s", lot);
        }
        if (uoms[u].unit) {
            if (strlen(q) >= sizeof(it->qty))
                return reject(e, "%s[%zu]: quantity too long", qlist, i);
            memcpy(it->qty, q, strlen(q) + 1);
            it->unit = uoms[u].unit;
        } else {
            int64_t packs;
            if (qty_parse(&packs, q, 1, 0) != TRACE_OK ||
                __builtin_add_overflow(it->packs, packs, &it->packs) ||
                it->packs > 1000000000)
                return reject(e,
                              "%s[%zu]: %s packs of product %s: a whole "
                              "number from 1 to 1000000000",
                              qlist, i, q, gtin);
        }
    }
    return 0;
}

/* Sets the item's quantity members on a ledger event object. */
static void put_qty(json_t *o, const struct item *it)
{
    json_object_set_new(o, "gtin", json_string(it->gtin));
    if (it->unit) {
        json_object_set_new(o, "qty", json_string(it->qty));
        json_object_set_new(o, "unit", json_string(it->unit));
    } else {
        json_object_set_new(o, "packs", json_integer(it->packs));
    }
}

/* The substance quantity of an input item, as "qty" and "unit". */
static int input_json(struct ep *e, const struct item *it, json_t **out)
{
    json_t *o = json_object();
    char buf[64];
    int64_t amount, factor = 1;

    json_object_set_new(o, "lot", json_string(it->lot));
    json_object_set_new(o, "substance", json_string(it->p->substance));
    if (it->unit) {
        json_object_set_new(o, "qty", json_string(it->qty));
        json_object_set_new(o, "unit", json_string(it->unit));
    } else {
        unit_lookup(it->p->unit, NULL, &factor);
        if (__builtin_mul_overflow(it->packs, (int64_t)it->p->per_pack,
                                   &amount) ||
            __builtin_mul_overflow(amount, it->p->content, &amount) ||
            qty_format(buf, sizeof(buf), amount, factor) != TRACE_OK) {
            json_decref(o);
            return reject(e, "quantity overflow in the inputs");
        }
        json_object_set_new(o, "qty", json_string(buf));
        json_object_set_new(o, "unit", json_string(it->p->unit));
    }
    *out = o;
    return 0;
}

/* Ledger fields EPCIS has no place for, from a "...:fields" extension
 * (the writer's trace:fields); the import validates them per type. */
static const char *const extra_fields[] = {
    "method", "witness", "handler", "checker", "site", "carrier", "spec", NULL};

static int emit(struct ep *e, json_t *o, unsigned long index)
{
    char *s;
    int rc;

    for (size_t i = 0; e->fields && extra_fields[i]; i++) {
        const char *v = str(e->fields, extra_fields[i]);
        if (v)
            json_object_set_new(o, extra_fields[i], json_string(v));
    }
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(o);
    if (!s) {
        e->cb_rc = trace_fail(TRACE_ENOMEM, "out of memory");
        return -1;
    }
    rc = e->on_line(e->ctx, s, strlen(s), index);
    free(s);
    e->sum->lines++;
    if (rc != 0) {
        e->cb_rc = rc;
        return -1;
    }
    return 0;
}

static json_t *base_event(const char *type, const char *id, const char *party,
                          const char *at)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "party", json_string(party));
    json_object_set_new(o, "at", json_string(at));
    return o;
}

/* The bizTransaction values of the event, and the despatch advice. */
static const char *biz_tx(const jt *ev, const char *type)
{
    const jt *a = jt_get(ev, "bizTransactionList"), *x;

    if (a && a->type != JT_ARR)
        return NULL;
    jt_foreach(a, x)
    {
        const char *t = cbv_bare(str(x, "type"));
        if (!type || (t && strcmp(t, type) == 0))
            if (str(x, "bizTransaction"))
                return str(x, "bizTransaction");
    }
    return NULL;
}

/* Permits named by the bizTransactionList, as sale fields. */
static void put_permits(struct ep *e, json_t *o, const jt *ev)
{
    const jt *a = jt_get(ev, "bizTransactionList"), *x;

    if (a && a->type != JT_ARR)
        return;
    jt_foreach(a, x)
    {
        const char *v = str(x, "bizTransaction"), *kind, *id = v;
        if (!v)
            continue;
        if (!(kind = strmap_get((strmap *)e->m->permits, v, 0))) {
            /* urn:epcglobal:cbv:bt:GLN:ID names ID */
            const char *c = strrchr(v, ':');
            if (!c || !(kind = strmap_get((strmap *)e->m->permits, c + 1, 0)))
                continue;
            id = c + 1;
        }
        if (strncmp(kind, "transport_", 10) == 0) {
            if (!json_object_get(o, "transport_permit"))
                json_object_set_new(o, "transport_permit", json_string(id));
        } else if (strncmp(kind, "purchase_", 9) == 0) {
            if (!json_object_get(o, "permit"))
                json_object_set_new(o, "permit", json_string(id));
        }
    }
}

/* A member "...:NAME" (an extension) holding an object: "rx" the
 * prescription, "fields" other ledger fields. */
static const jt *extension(const jt *ev, const char *name)
{
    const jt *v;

    jt_foreach(ev, v)
    {
        const char *c = strrchr(v->key, ':');
        if (c && strcmp(c + 1, name) == 0 && v->type == JT_OBJ)
            return v;
    }
    return NULL;
}

/* A parsed value as jansson's, every number as its text (a string), for
 * the rx extension (days_supply is a JSON number there). */
static json_t *to_json(const jt *v)
{
    json_t *o;
    const jt *x;

    switch (v->type) {
    case JT_NULL:
        return json_null();
    case JT_TRUE:
        return json_true();
    case JT_FALSE:
        return json_false();
    case JT_NUM:
    case JT_STR:
        return json_stringn(v->s, v->len);
    case JT_ARR:
        o = json_array();
        jt_foreach(v, x) json_array_append_new(o, to_json(x));
        return o;
    default:
        o = json_object();
        jt_foreach(v, x) json_object_set_new(o, x->key, to_json(x));
        return o;
    }
}

/* The steps read but storing nothing: no custody or quantity change. */
static const char *const passive_steps[] = {"inspecting",
                                            "holding",
                                            "storing",
                                            "packing",
                                            "unpacking",
                                            "loading",
                                            "unloading",
                                            "arriving",
                                            "departing",
                                            "picking",
                                            "staging_outbound",
                                            "cycle_counting",
                                            "sensor_reporting",
                                            "encoding",
                                            "installing",
                                            "accepting",
                                            "other",
                                            NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* 0 mapped (or skipped: e->reason says why, e->sum updated by the
 * caller), 1 rejected with e->reason, < 0 an error of on_line. */
static int map_event(struct ep *e, const jt *ev, unsigned long index,
                     int *skipped)
{
    const char *type = str(ev, "type"), *at = str(ev, "eventTime");
    const char *step, *eid = str(ev, "eventID");
    struct item *in = e->in, *out = e->out;
    size_t n_in = 0, n_out = 0;
    char base[TRACE_MAX_ID + 1], id[TRACE_MAX_ID + 1];
    Trace__V1__Time t;
    int transform, rc = 0;

    *skipped = 0;
    e->reason[0] = '\0';
    e->fields = NULL;
    if (ev->type != JT_OBJ)
        return reject(e, "an event is not a JSON object");
    if (!type)
        return reject(e, "no event type");
    if (!at)
        return reject(e, "no eventTime");
    if (time_parse(&t, at, 0, 0) != TRACE_OK)
        return reject(e, "eventTime \"%.60s\": %s", at, trace_error_last());
    if (strcmp(type, "AggregationEvent") == 0 ||
        strcmp(type, "AssociationEvent") == 0 ||
        strcmp(type, "TransactionEvent") == 0) {
        *skipped = 1;
        return reject(e, "%s: read, no custody change", type);
    }
    transform = strcmp(type, "TransformationEvent") == 0;
    if (!transform && strcmp(type, "ObjectEvent") != 0)
        return reject(e, "unknown event type \"%.60s\"", type);
    if (jt_get(ev, "errorDeclaration")) {
        *skipped = 1;
        return reject(e, "declared erroneous (errorDeclaration)");
    }
    if (transform) {
        if ((rc = collect(e, ev, "inputEPCList", "inputQuantityList", in,
                          &n_in)) ||
            (rc = collect(e, ev, "outputEPCList", "outputQuantityList", out,
                          &n_out)))
            goto done;
    } else if ((rc = collect(e, ev, "epcList", "quantityList", out, &n_out))) {
        goto done;
    }
    if (n_in + n_out == 0) {
        *skipped = 1;
        rc = reject(e, "concerns no registered product");
        goto done;
    }
    step = cbv_bare(str(ev, "bizStep"));
    if (!step) {
        rc = reject(e, "no bizStep says what happened to a registered "
                       "product");
        goto done;
    }
    if (in_list(passive_steps, step)) {
        *skipped = 1;
        rc = reject(e, "bizStep %s: no custody change", step);
        goto done;
    }
    e->fields = extension(ev, "fields");
    if (eid) {
        id_of_uri(base, eid);
    } else {
        /* the hash of jansson's text of the event, keys sorted, numbers
         * marked (as it always was: ids stay stable) */
        char *marked = NULL, *s = NULL;
        json_t *j = NULL;
        uint8_t h[32];
        if (json_mark_numbers(&marked, e->text, e->text_len, 1) == TRACE_OK &&
            (j = json_loadb(marked, strlen(marked), 0, NULL)) != NULL)
            s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        free(marked);
        json_decref(j);
        if (!s) {
            e->cb_rc = trace_fail(TRACE_ENOMEM, "out of memory");
            rc = -1;
            goto done;
        }
        sha256(h, s, strlen(s));
        free(s);
        memcpy(base, "epcis:", 6);
        hex_encode(base + 6, h, 20);
        base[46] = '\0';
    }

    if (transform || strcmp(step, "commissioning") == 0 ||
        strcmp(step, "transforming") == 0) {
        const char *who = location_party(e, ev);
        json_t *inputs = NULL;
        if (!who) {
            rc = 1;
            goto done;
        }
        if (!transform && strcmp(step, "transforming") == 0) {
            rc = reject(e, "bizStep transforming on an ObjectEvent: use a "
                           "TransformationEvent");
            goto done;
        }
        if (n_in) {
            inputs = json_array();
            for (size_t i = 0; i < n_in; i++) {
                json_t *x = NULL;
                if ((rc = input_json(e, &in[i], &x))) {
                    json_decref(inputs);
                    goto done;
                }
                json_array_append_new(inputs, x);
            }
        }
        if (n_out == 0) {
            /* controlled inputs into no registered product: used up */
            for (size_t i = 0; i < n_in; i++) {
                json_t *o, *x = json_array_get(inputs, i);
                item_id(id, base, &in[i], n_in > 1);
                o = base_event("consume", id, who, at);
                json_object_set(o, "substance",
                                json_object_get(x, "substance"));
                json_object_set(o, "lot", json_object_get(x, "lot"));
                put_qty(o, &in[i]);
                json_object_set_new(o, "purpose",
                                    json_string("EPCIS transformation"));
                put_site(e, o, ev, who);
                if ((rc = emit(e, o, index)) != 0) {
                    json_decref(inputs);
                    goto done;
                }
            }
            json_decref(inputs);
            goto done;
        }
        for (size_t i = 0; i < n_out; i++) {
            json_t *o;
            item_id(id, base, &out[i], n_out > 1);
            o = base_event("produce", id, who, at);
            json_object_set_new(o, "lot", json_string(out[i].lot));
            put_qty(o, &out[i]);
            if (i == 0 && inputs)
                json_object_set(o, "inputs", inputs);
            put_site(e, o, ev, who);
            if ((rc = emit(e, o, index)) != 0)
                break;
        }
        json_decref(inputs);
        goto done;
    }
    if (n_in) { /* an ObjectEvent has no inputs */
        rc = reject(e, "inputs outside a TransformationEvent");
        goto done;
    }
    if (strcmp(step, "shipping") == 0) {
        const char *src = sd_uri(ev, "sourceList", "source");
        const char *dst = sd_uri(ev, "destinationList", "destination");
        const char *seller, *buyer, *desadv = biz_tx(ev, "desadv");
        if (!dst) {
            rc = reject(e, "a shipping event with no destination party "
                           "(destinationList owning_party)");
            goto done;
        }
        if (!(buyer = party_of(e, dst, "destination"))) {
            rc = 1;
            goto done;
        }
        seller = src ? party_of(e, src, "source") : location_party(e, ev);
        if (!seller) {
            rc = 1;
            goto done;
        }
        for (size_t i = 0; i < n_out && rc == 0; i++) {
            json_t *o;
            char key[512], *v;
            if (desadv)
                item_id(id, desadv, &out[i], 1);
            else
                item_id(id, base, &out[i], n_out > 1);
            o = base_event("sale", id, seller, at);
            json_object_set_new(o, "to", json_string(buyer));
            json_object_set_new(o, "lot", json_string(out[i].lot));
            put_qty(o, &out[i]);
            put_permits(e, o, ev);
            snprintf(key, sizeof(key), "%s\x01%s\x01%s\x01%s", seller, buyer,
                     out[i].gtin, out[i].lot);
            if (e->n_sales == MAX_SALES) { /* bounded memory: a generation */
                strmap *fresh = strmap_new(TRACE_MAX_ID + 1);
                if (fresh) {
                    strmap_free(e->old_sales);
                    e->old_sales = e->sales;
                    e->sales = fresh;
                    e->n_sales = 0;
                }
            }
            if ((v = strmap_get(e->sales, key, 1)) != NULL) {
                e->n_sales += v[0] == '\0';
                memcpy(v, id, strlen(id) + 1);
            }
            put_site(e, o, ev, seller);
            rc = emit(e, o, index);
        }
        goto done;
    }
    if (strcmp(step, "receiving") == 0) {
        const char *src = sd_uri(ev, "sourceList", "source");
        const char *dst = sd_uri(ev, "destinationList", "destination");
        const char *seller, *buyer, *desadv = biz_tx(ev, "desadv");
        const char *upevt = biz_tx(ev, "upevt");
        if (!src) {
            rc = reject(e, "a receiving event with no source party "
                           "(sourceList owning_party)");
            goto done;
        }
        if (!(seller = party_of(e, src, "source"))) {
            rc = 1;
            goto done;
        }
        buyer = dst ? party_of(e, dst, "destination") : location_party(e, ev);
        if (!buyer) {
            rc = 1;
            goto done;
        }
        for (size_t i = 0; i < n_out && rc == 0; i++) {
            char key[512], ref[TRACE_MAX_ID + 1];
            const char *sale;
            json_t *o;
            snprintf(key, sizeof(key), "%s\x01%s\x01%s\x01%s", seller, buyer,
                     out[i].gtin, out[i].lot);
            if (desadv)
                item_id(ref, desadv, &out[i], 1);
            else if (upevt)
                id_of_uri(ref, upevt); /* the shipping event itself */
            else if (((sale = strmap_get(e->sales, key, 0)) && sale[0]) ||
                     (e->old_sales &&
                      (sale = strmap_get(e->old_sales, key, 0)) && sale[0]))
                memcpy(ref, sale, strlen(sale) + 1);
            else
                make_id(ref, biz_tx(ev, NULL) ? biz_tx(ev, NULL) : base);
            item_id(id, base, &out[i], n_out > 1);
            o = base_event("receipt", id, buyer, at);
            json_object_set_new(o, "from", json_string(seller));
            json_object_set_new(o, "ref", json_string(ref));
            json_object_set_new(o, "lot", json_string(out[i].lot));
            put_qty(o, &out[i]);
            put_site(e, o, ev, buyer);
            rc = emit(e, o, index);
        }
        goto done;
    }
    if (strcmp(step, "destroying") == 0 || strcmp(step, "dispensing") == 0) {
        int destroy = step[1] == 'e';
        const char *src = sd_uri(ev, "sourceList", "source");
        const char *who =
            src ? party_of(e, src, "source") : location_party(e, ev);
        const jt *rx = destroy ? NULL : extension(ev, "rx");
        if (!who) {
            rc = 1;
            goto done;
        }
        if (!destroy && !rx) {
            rc = reject(e, "a dispensing event needs the prescription in an "
                           "extension member \"...:rx\" {id, prescriber, "
                           "patient, written, days_supply, form}");
            goto done;
        }
        for (size_t i = 0; i < n_out && rc == 0; i++) {
            json_t *o;
            item_id(id, base, &out[i], n_out > 1);
            o = base_event(destroy ? "destroy" : "dispense", id, who, at);
            json_object_set_new(o, "lot", json_string(out[i].lot));
            put_qty(o, &out[i]);
            if (destroy)
                json_object_set_new(o, "method",
                                    json_string("EPCIS destroying"));
            else
                json_object_set_new(o, "rx", to_json(rx));
            put_site(e, o, ev, who);
            rc = emit(e, o, index);
        }
        goto done;
    }
    rc = reject(e,
                "bizStep %.60s has no meaning in this ledger for a "
                "registered product",
                step);
done:
    return rc;
}

int handle_event(struct ep *e, const char *text, size_t len,
                 unsigned long index)
{
    char err[160];
    const jt *ev;
    int rc, skipped = 0;

    e->sum->events++;
    arena_reset(e->a);
    e->text = text;
    e->text_len = len;
    if (!(ev = jt_parse(e->a, text, len, err, sizeof(err)))) {
        rc = reject(e, "not JSON: %s", err);
    } else {
        uint64_t before = e->sum->lines;
        rc = map_event(e, ev, index, &skipped);
        if (rc == 0 && e->sum->lines > before)
            e->sum->mapped++;
    }
    if (rc < 0)
        return -1; /* e->cb_rc says why */
    if (rc == 1) {
        if (skipped)
            e->sum->skipped++;
        else
            e->sum->rejected++;
        if (e->note && (rc = e->note(e->ctx, index, !skipped, e->reason))) {
            e->cb_rc = rc;
            return -1;
        }
    }
    return 0;
}
