/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_json.c - SPEC section 3 JSON Lines -> Event messages.
 *
 * The mapping is driven by the protobuf-c descriptors of proto/trace.proto:
 * a JSON key is the name of a field of the event's body message, the
 * field's type says how to convert it, and `required` in the schema says
 * what must be present.  What the schema cannot say (allowed values,
 * which strings are party ids, which times may be bare dates) sits in the
 * tables of event_schema.c, so adding a field is a schema line plus at
 * most a table line.  The other direction, and the checks of encoded
 * events, are in event_msg.c.
 *
 * Numbers.  JSON libraries turn numbers into doubles, losing the exact
 * text a quantity must be parsed from.  Before jansson sees a line, a
 * small scanner rewrites every number token into a string that starts
 * with the byte 0x01 (which no accepted string may contain), rejecting
 * exponents on the way.  Quantity and count fields take either form;
 * string fields refuse a marked number.  Every quantity (qty, counted,
 * an input's qty, a permit's budget) is held to the ledger's ceiling for
 * its dimension as it is converted (qty_check_ceiling); encoded events
 * that skip this conversion get the same check from
 * event_check_quantities().
 *
 * Patients and drivers.  rx.patient and a pickup's driver are replaced by
 * "hmac:" + hex(HMAC-SHA256(secret, clear id)) while converting, so no
 * clear identifier reaches the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_int.h"

#define NUM_MARK '\x01'

/* ------------------------------------------------------------------ */
/* Number pre-scan                                                      */

/*
 * Copies `in` to a new buffer with every number token turned into a
 * marked string.  Rejects exponents and anything JSON would not take as
 * a number start.  Strings are copied verbatim (escapes included).
 */
int json_mark_numbers(char **out, const char *in, size_t len,
                      int allow_exponent)
{
    size_t cap = len * 9 + 16, o = 0; /* a 1-byte number grows to 9 */
    char *buf = malloc(cap);
    int in_str = 0;

    if (!buf)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (in_str) {
            buf[o++] = c;
            if (c == '\\' && i + 1 < len)
                buf[o++] = in[++i];
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            buf[o++] = c;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < len && (in[j] == '-' || in[j] == '.' || in[j] == '+' ||
                               in[j] == 'e' || in[j] == 'E' ||
                               (in[j] >= '0' && in[j] <= '9')))
                j++;
            for (size_t k = i; k < j && !allow_exponent; k++)
                if (in[k] == 'e' || in[k] == 'E' || in[k] == '+') {
                    free(buf);
                    return trace_fail(TRACE_EINVAL,
                                      "number \"%.*s\" has an exponent; "
                                      "write plain decimals",
                                      (int)(j - i > 40 ? 40 : j - i), in + i);
                }
            buf[o++] = '"';
            buf[o++] = '\\';
            buf[o++] = 'u';
            memcpy(buf + o, "0001", 4);
            o += 4;
            memcpy(buf + o, in + i, j - i);
            o += j - i;
            buf[o++] = '"';
            i = j - 1;
        } else if (c == '.' || c == '+') {
            free(buf);
            return trace_fail(TRACE_EINVAL,
                              "malformed number at column %zu (no leading "
                              "'+' or '.')",
                              i + 1);
        } else {
            buf[o++] = c;
        }
    }
    buf[o] = '\0';
    *out = buf;
    return TRACE_OK;
}

/* ------------------------------------------------------------------ */
/* JSON -> message                                                      */

struct conv {
    arena *a;
    const trace_ledger *l;
    const char *path;    /* field path prefix for messages, e.g. "rx." */
    products_seen *seen; /* products of earlier lines, or NULL */
};

struct products_seen {
    strmap *map; /* gtin -> struct seen_product */
    arena *a;
};

struct seen_product {
    uint8_t *bytes; /* a packed ProductBody */
    size_t len;
};

products_seen *products_seen_new(void)
{
    products_seen *ps = calloc(1, sizeof(*ps));

    if (ps && (!(ps->map = strmap_new(sizeof(struct seen_product))) ||
               !(ps->a = arena_new(0)))) {
        products_seen_free(ps);
        return NULL;
    }
    return ps;
}

void products_seen_free(products_seen *ps)
{
    if (!ps)
        return;
    strmap_free(ps->map);
    arena_free(ps->a);
    free(ps);
}

/* Keeps the product a parsed `product` line registers. */
static int products_seen_add(products_seen *ps, const Trace__V1__Event *ev)
{
    const Trace__V1__ProductBody *p = ev->product_body;
    struct seen_product *sp;

    if (!ps || ev->body_case != TRACE__V1__EVENT__BODY_PRODUCT_BODY || !p ||
        !p->gtin)
        return TRACE_OK;
    if (!(sp = strmap_get(ps->map, p->gtin, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    sp->len = trace__v1__product_body__get_packed_size(p);
    if (!(sp->bytes = arena_alloc(ps->a, sp->len ? sp->len : 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    trace__v1__product_body__pack(p, sp->bytes);
    return TRACE_OK;
}

#define FIELD_PTR(msg, f) ((char *)(msg) + (f)->offset)
#define QUANT_PTR(msg, f) ((char *)(msg) + (f)->quantifier_offset)

static int get_text(const char **out, json_t *v, const char *path,
                    const char *name, int allow_number)
{
    const char *s = json_string_value(v);
    size_t n;

    if (!s)
        return trace_fail(TRACE_EINVAL, "field \"%s%s\" must be a string", path,
                          name);
    if (s[0] == NUM_MARK) {
        if (!allow_number)
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\" must be a string, not a number",
                              path, name);
        s++;
    }
    n = json_string_length(v);
    if (n == 0 || s[0] == '\0')
        return trace_fail(TRACE_EINVAL, "field \"%s%s\" is empty", path, name);
    if (n > TRACE_MAX_STRING)
        return trace_fail(TRACE_EINVAL,
                          "field \"%s%s\" is longer than %u "
                          "bytes",
                          path, name, TRACE_MAX_STRING);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\" contains a control character",
                              path, name);
    if (strlen(s) != (size_t)(n - (json_string_value(v)[0] == NUM_MARK)))
        return trace_fail(TRACE_EINVAL, "field \"%s%s\" contains a NUL", path,
                          name);
    *out = s;
    return TRACE_OK;
}

/* A party's sites: each named once, each SGLN once. */
static int check_sites(const struct conv *cv, const Trace__V1__PartyBody *b)
{
    if (b->n_sites > 64)
        return trace_fail(TRACE_EINVAL,
                          "field \"%ssites\": at most 64 sites (%zu given)",
                          cv->path, b->n_sites);
    for (size_t i = 0; i < b->n_sites; i++) {
        if (!b->sites[i]->site[0])
            return trace_fail(TRACE_EINVAL,
                              "field \"%ssites[%zu].site\" is "
                              "empty",
                              cv->path, i);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(b->sites[k]->site, b->sites[i]->site) == 0)
                return trace_fail(TRACE_EINVAL,
                                  "field \"%ssites\": site \"%.60s\" is "
                                  "listed twice",
                                  cv->path, b->sites[i]->site);
            if (strcmp(b->sites[k]->sgln, b->sites[i]->sgln) == 0)
                return trace_fail(TRACE_EINVAL,
                                  "field \"%ssites\": SGLN %s names both "
                                  "\"%.60s\" and \"%.60s\"",
                                  cv->path, b->sites[i]->sgln,
                                  b->sites[k]->site, b->sites[i]->site);
        }
    }
    return TRACE_OK;
}

/* Checks a string field; *sp may be replaced by the canonical spelling
 * of what it names (an enumerated value or a substance given by a
 * Chinese name or alias). */
static int check_string(const struct conv *cv,
                        const ProtobufCMessageDescriptor *m, const char *name,
                        const char **sp)
{
    const struct field_rule *r = rule_for(m, name);
    const char *s = *sp;

    if (!r)
        return TRACE_OK;
    switch (r->check) {
    case CHECK_ENUM:
        if (enum_value(r->values, s)) {
            *sp = enum_value(r->values, s);
        } else {
            char allowed[256] = "";
            size_t o = 0;
            for (const char *const *v = r->values; *v && o < 200; v++)
                o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s%s",
                                      o ? ", " : "", *v);
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\": \"%.40s\" is not one of %s",
                              cv->path, name, s, allowed);
        }
        break;
    case CHECK_PARTY:
        if (!trace_party_id_valid(s))
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\": \"%.64s\" is not a valid "
                              "party id",
                              cv->path, name, s);
        break;
    case CHECK_SUBSTANCE: {
        const subst_info *sub = catalog_find(cv->l->cat, s);
        if (!sub)
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\": unknown substance \"%.64s\" "
                              "(use a catalog code, CAS number or Chinese "
                              "name)",
                              cv->path, name, s);
        /* a Chinese name or alias is stored as the code */
        if (strcmp(s, sub->code) != 0 && (!sub->cas || strcmp(s, sub->cas)))
            *sp = sub->code;
        break;
    }
    case CHECK_EVENT_ID:
        if (strlen(s) > TRACE_MAX_ID)
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\" is longer than an event id "
                              "may be (%u bytes)",
                              cv->path, name, TRACE_MAX_ID);
        break;
    case CHECK_GTIN:
    case CHECK_GLN: {
        size_t n = r->check == CHECK_GTIN ? 14 : 13;
        if (!gs1_key_valid(s, n))
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\": \"%.40s\" is not %zu digits "
                              "with a valid GS1 check digit",
                              cv->path, name, s, n);
        break;
    }
    case CHECK_TEXT:
        break;
    }
    return TRACE_OK;
}

static int convert_msg(const struct conv *cv,
                       const ProtobufCMessageDescriptor *m, json_t *obj,
                       ProtobufCMessage **out, int top);
static int event_from_obj(Trace__V1__Event **out, const struct conv *cv,
                          json_t *obj, int depth);

static int convert_quantity(const struct conv *cv, json_t *obj,
                            const char *name, json_t *v,
                            Trace__V1__Quantity **out)
{
    const char *text, *unit;
    int64_t factor;
    Trace__V1__Quantity *q;
    int rc;

    if ((rc = get_text(&text, v, cv->path, name, 1)) != TRACE_OK)
        return rc;
    json_t *u = json_object_get(obj, "unit");
    if (!u)
        return trace_fail(TRACE_EINVAL, "field \"%s%s\" needs a \"unit\"",
                          cv->path, name);
    if ((rc = get_text(&unit, u, cv->path, "unit", 0)) != TRACE_OK)
        return rc;
    if ((rc = unit_lookup(unit, NULL, &factor)) != TRACE_OK)
        return rc;
    unit = unit_canonical(unit); /* 吨 is stored as t */
    q = arena_alloc(cv->a, sizeof(*q));
    if (!q)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    trace__v1__quantity__init(q);
    rc = qty_parse(&q->amount, text, factor, strcmp(name, "counted") == 0);
    if (rc != TRACE_OK)
        return trace_fail(rc, "field \"%s%s\": %s", cv->path, name,
                          trace_error_last());
    {
        char field[96];
        snprintf(field, sizeof(field), "%s%s", cv->path, name);
        if ((rc = qty_check_ceiling(cv->l, field, q->amount, unit)))
            return rc;
    }
    q->unit = arena_strdup(cv->a, unit, strlen(unit));
    if (!q->unit)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *out = q;
    return TRACE_OK;
}

static int convert_time(const struct conv *cv, const char *name, json_t *v,
                        Trace__V1__Time **out)
{
    const char *text = NULL;
    Trace__V1__Time *t;
    int rc;

    if ((rc = get_text(&text, v, cv->path, name, 0)) != TRACE_OK)
        return rc;
    t = arena_alloc(cv->a, sizeof(*t));
    if (!t)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    rc = time_parse(t, text, in_list(date_fields, name), cv->l->tz_offset_min);
    if (rc != TRACE_OK)
        return trace_fail(rc, "field \"%s%s\": %s", cv->path, name,
                          trace_error_last());
    *out = t;
    return TRACE_OK;
}

static int pseudonymise(const struct conv *cv, const char *field,
                        const char *clear, const char **out)
{
    uint8_t mac[32];
    char *p;

    if (strncmp(clear, "hmac:", 5) == 0) {
        size_t n = strlen(clear + 5);
        for (size_t i = 0; i < n; i++)
            if (!strchr("0123456789abcdef", clear[5 + i]))
                n = 0;
        if (n != 64)
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\": a pseudonym is \"hmac:\" "
                              "and 64 lowercase hex digits",
                              cv->path, field);
        *out = clear;
        return TRACE_OK;
    }
    if (hmac_sha256(mac, cv->l->secret, sizeof(cv->l->secret), clear,
                    strlen(clear)) != TRACE_OK)
        return TRACE_EUNAVAIL;
    p = arena_alloc(cv->a, 5 + 64 + 1);
    if (!p)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(p, "hmac:", 5);
    hex_encode(p + 5, mac, sizeof(mac));
    *out = p;
    return TRACE_OK;
}

static int convert_bytes(const struct conv *cv,
                         const ProtobufCMessageDescriptor *m,
                         const ProtobufCFieldDescriptor *f, json_t *v,
                         ProtobufCBinaryData *out)
{
    if (m == &trace__v1__party_body__descriptor &&
        (strcmp(f->name, "pubkey") == 0 || strcmp(f->name, "revoke") == 0)) {
        /* PEM has line breaks, so not get_text(): only the length and
         * the key parser judge it */
        const char *text = json_string_value(v);
        if (!text || text[0] == NUM_MARK)
            return trace_fail(TRACE_EINVAL, "field \"%s\" must be a string",
                              f->name);
        if (json_string_length(v) > 4096 ||
            strlen(text) != json_string_length(v))
            return trace_fail(TRACE_EINVAL,
                              "field \"%s\" is too long or "
                              "holds a NUL",
                              f->name);
        out->data = arena_alloc(cv->a, TRACE_PUBKEY_LEN);
        if (!out->data)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        out->len = TRACE_PUBKEY_LEN;
        return trace_pubkey_parse(out->data, text);
    }
    if (m == &trace__v1__correction_body__descriptor &&
        strcmp(f->name, "replacement") == 0) {
        Trace__V1__Event *ev;
        struct conv sub = *cv;
        int rc;

        if (!json_is_object(v))
            return trace_fail(TRACE_EINVAL,
                              "field \"replacement\" must be an event object");
        sub.path = "replacement.";
        if ((rc = event_from_obj(&ev, &sub, v, 1)) != TRACE_OK)
            return rc;
        out->len = trace__v1__event__get_packed_size(ev);
        out->data = arena_alloc(cv->a, out->len);
        if (!out->data)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        trace__v1__event__pack(ev, out->data);
        return TRACE_OK;
    }
    return trace_fail(TRACE_EINVAL, "field \"%s%s\" cannot be set from JSON",
                      cv->path, f->name);
}

/* Converts one JSON value into the field `f` of message `msg`. */
static int convert_field(const struct conv *cv,
                         const ProtobufCMessageDescriptor *m,
                         ProtobufCMessage *msg,
                         const ProtobufCFieldDescriptor *f, json_t *obj,
                         json_t *v)
{
    void *dst = FIELD_PTR(msg, f);
    const char *s;
    int rc;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if ((rc = get_text(&s, v, cv->path, f->name, 0)) != TRACE_OK)
            return rc;
        if ((rc = check_string(cv, m, f->name, &s)) != TRACE_OK)
            return rc;
        if ((m == &trace__v1__rx__descriptor &&
             strcmp(f->name, "patient") == 0) ||
            (m == &trace__v1__pickup_body__descriptor &&
             strcmp(f->name, "driver") == 0)) {
            if ((rc = pseudonymise(cv, f->name, s, &s)) != TRACE_OK)
                return rc;
        }
        if (!(*(char **)dst = arena_strdup(cv->a, s, strlen(s))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
        return TRACE_OK;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\" must be true or "
                              "false",
                              cv->path, f->name);
        *(protobuf_c_boolean *)dst = json_is_true(v);
        break;
    case PROTOBUF_C_TYPE_UINT32: {
        int64_t n;
        if ((rc = get_text(&s, v, cv->path, f->name, 1)) != TRACE_OK)
            return rc;
        /* counts of packs and units may be large; days are not */
        int64_t max = strcmp(f->name, "packs") == 0 ||
                              strcmp(f->name, "units_per_pack") == 0
                          ? 1000000000
                          : 100000;
        if (qty_parse(&n, s, 1, 0) != TRACE_OK || n > max)
            return trace_fail(TRACE_EINVAL,
                              "field \"%s%s\" must be a whole number from 1 "
                              "to %lld",
                              cv->path, f->name, (long long)max);
        *(uint32_t *)dst = (uint32_t)n;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if ((rc = convert_bytes(cv, m, f, v, dst)) != TRACE_OK)
            return rc;
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (f->descriptor == &trace__v1__quantity__descriptor)
            return convert_quantity(cv, obj, f->name, v, dst);
        if (f->descriptor == &trace__v1__time__descriptor)
            return convert_time(cv, f->name, v, dst);
        if (!json_is_object(v))
            return trace_fail(TRACE_EINVAL, "field \"%s%s\" must be an object",
                              cv->path, f->name);
        {
            struct conv sub = *cv;
            char path[64];
            snprintf(path, sizeof(path), "%s%s.", cv->path, f->name);
            sub.path = path;
            rc = convert_msg(&sub, f->descriptor, v, dst, 0);
            if (rc != TRACE_OK)
                return rc;
        }
        return TRACE_OK;
    default:
        return trace_fail(TRACE_EINVAL,
                          "field \"%s%s\" has an unsupported "
                          "type",
                          cv->path, f->name);
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        *(protobuf_c_boolean *)QUANT_PTR(msg, f) = 1;
    return TRACE_OK;
}

static int convert_repeated(const struct conv *cv,
                            const ProtobufCMessageDescriptor *m,
                            ProtobufCMessage *msg,
                            const ProtobufCFieldDescriptor *f, json_t *v)
{
    size_t n = json_array_size(v), elem;
    void *arr;
    int rc;

    if (!json_is_array(v))
        return trace_fail(TRACE_EINVAL, "field \"%s%s\" must be an array",
                          cv->path, f->name);
    if (n > 1000)
        return trace_fail(TRACE_EINVAL,
                          "field \"%s%s\" has more than 1000 "
                          "items",
                          cv->path, f->name);
    elem = f->type == PROTOBUF_C_TYPE_STRING ? sizeof(char *)
                                             : sizeof(ProtobufCMessage *);
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
        return trace_fail(TRACE_EINVAL,
                          "field \"%s%s\" has an unsupported "
                          "type",
                          cv->path, f->name);
    arr = arena_alloc(cv->a, n * elem + 1);
    if (!arr)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(v, i);
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *s;
            if ((rc = get_text(&s, item, cv->path, f->name, 0)) != TRACE_OK)
                return rc;
            if ((rc = check_string(cv, m, f->name, &s)) != TRACE_OK)
                return rc;
            if (!(((char **)arr)[i] = arena_strdup(cv->a, s, strlen(s))))
                return trace_fail(TRACE_ENOMEM, "out of memory");
        } else {
            struct conv sub = *cv;
            char path[64];
            if (!json_is_object(item))
                return trace_fail(TRACE_EINVAL,
                                  "field \"%s%s\" must hold objects", cv->path,
                                  f->name);
            snprintf(path, sizeof(path), "%s%s[%zu].", cv->path, f->name, i);
            sub.path = path;
            rc = convert_msg(&sub, f->descriptor, item,
                             &((ProtobufCMessage **)arr)[i], 0);
            if (rc != TRACE_OK)
                return rc;
        }
    }
    *(size_t *)QUANT_PTR(msg, f) = n;
    *(void **)FIELD_PTR(msg, f) = arr;
    return TRACE_OK;
}

static int has_quantity(const ProtobufCMessageDescriptor *m)
{
    for (unsigned i = 0; i < m->n_fields; i++)
        if (m->fields[i].descriptor == &trace__v1__quantity__descriptor)
            return 1;
    return 0;
}

/* What a movement named by product must come to (SPEC 11). */
struct by_product {
    int set;
    const char *substance; /* catalog code */
    int64_t amount;        /* base units; 0: qty as written, not packs */
    char gtin[15];
};

/*
 * A movement may name `gtin` and `packs` instead of substance, qty and
 * unit: they are filled in from the registered product (packs x
 * units_per_pack x content, in the content's unit), and the gtin and
 * packs are kept as written.  Given together with substance and qty
 * (an exported event), these must agree with the product; `gtin` with
 * a qty and no packs says which product a substance quantity was of.
 */
static int resolve_gtin(const struct conv *cv, json_t *obj,
                        struct by_product *bp)
{
    json_t *g = json_object_get(obj, "gtin"),
           *pk = json_object_get(obj, "packs");
    Trace__V1__ProductBody *p;
    const char *gtin, *text;
    int64_t packs = 0;
    int rc;

    bp->set = 0;
    if (!g || json_is_null(g)) {
        if (pk && !json_is_null(pk))
            return trace_fail(TRACE_EINVAL,
                              "field \"%spacks\" needs a "
                              "\"gtin\"",
                              cv->path);
        return TRACE_OK;
    }
    if ((rc = get_text(&gtin, g, cv->path, "gtin", 1)) != TRACE_OK)
        return rc;
    if (!gs1_key_valid(gtin, 14))
        return trace_fail(TRACE_EINVAL,
                          "field \"%sgtin\": \"%.40s\" is not 14 digits with "
                          "a valid GS1 check digit",
                          cv->path, gtin);
    rc = product_find(cv->l, cv->a, gtin, &p);
    if (rc == TRACE_ENOTFOUND && cv->seen) {
        /* registered by an earlier line of this file or request */
        const struct seen_product *sp = strmap_get(cv->seen->map, gtin, 0);
        if (sp && (p = trace__v1__product_body__unpack(arena_allocator(cv->a),
                                                       sp->len, sp->bytes)))
            rc = TRACE_OK;
    }
    if (rc == TRACE_ENOTFOUND)
        return trace_fail(TRACE_EINVAL,
                          "field \"%sgtin\": no product %s is registered "
                          "(record a `product` event for it first)",
                          cv->path, gtin);
    if (rc != TRACE_OK)
        return rc;
    memcpy(bp->gtin, gtin, 15);
    bp->substance = canonical_substance(cv->l, p->substance);
    bp->amount = 0;
    bp->set = 1;
    if (pk && !json_is_null(pk)) {
        if ((rc = get_text(&text, pk, cv->path, "packs", 1)) != TRACE_OK)
            return rc;
        if (qty_parse(&packs, text, 1, 0) != TRACE_OK || packs > 1000000000)
            return trace_fail(TRACE_EINVAL,
                              "field \"%spacks\" must be a whole number "
                              "from 1 to 1000000000",
                              cv->path);
        if ((rc = product_amount(p, (uint64_t)packs, &bp->amount)))
            return rc;
        if (!json_object_get(obj, "qty")) {
            char buf[64];
            int64_t factor = 1;
            unit_lookup(p->content->qty->unit, NULL, &factor);
            if (json_object_get(obj, "unit"))
                return trace_fail(TRACE_EINVAL,
                                  "field \"%sunit\" without \"qty\": with "
                                  "packs the unit is the product's",
                                  cv->path);
            if (qty_format(buf, sizeof(buf), bp->amount, factor) != TRACE_OK)
                return trace_fail(TRACE_EINVAL, "quantity overflow");
            json_object_set_new(obj, "qty", json_string(buf));
            json_object_set_new(obj, "unit",
                                json_string(p->content->qty->unit));
        }
    } else if (!json_object_get(obj, "qty")) {
        return trace_fail(TRACE_EINVAL,
                          "field \"%sgtin\" needs \"packs\" (or a \"qty\" "
                          "and \"unit\" of the substance)",
                          cv->path);
    }
    if (!json_object_get(obj, "substance"))
        json_object_set_new(obj, "substance", json_string(bp->substance));
    return TRACE_OK;
}

/* After conversion: what was written agrees with the product. */
static int check_by_product(const struct conv *cv, ProtobufCMessage *msg,
                            const struct by_product *bp)
{
    const char *sub = msg_field(msg, "substance");
    const Trace__V1__Quantity *q = msg_field(msg, "qty");

    if (!bp->set)
        return TRACE_OK;
    if (!sub || strcmp(canonical_substance(cv->l, sub), bp->substance) != 0)
        return trace_fail(TRACE_EINVAL,
                          "product %s is %s, but the event names %.64s",
                          bp->gtin, bp->substance, sub ? sub : "nothing");
    if (bp->amount && (!q || q->amount != bp->amount))
        return trace_fail(TRACE_EINVAL,
                          "\"%sqty\" differs from the packs of product %s "
                          "(packs x units_per_pack x content)",
                          cv->path, bp->gtin);
    return TRACE_OK;
}

static const char *const common_keys[] = {"type", "id",       "party",
                                          "at",   "override", NULL};

/*
 * Builds message `m` from the JSON object.  With `top`, the common event
 * keys are skipped (the caller handles them).  Every key must name a
 * field; every required field must be present.
 */
static int convert_msg(const struct conv *cv,
                       const ProtobufCMessageDescriptor *m, json_t *obj,
                       ProtobufCMessage **out, int top)
{
    ProtobufCMessage *msg = arena_alloc(cv->a, m->sizeof_message);
    struct by_product bp = {0};
    const char *key;
    json_t *v;
    int rc;

    if (!msg)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    m->message_init(msg);
    if (protobuf_c_message_descriptor_get_field_by_name(m, "gtin") &&
        protobuf_c_message_descriptor_get_field_by_name(m, "qty") &&
        (rc = resolve_gtin(cv, obj, &bp)) != TRACE_OK)
        return rc;
    json_object_foreach(obj, key, v)
    {
        if (top && in_list(common_keys, key))
            continue;
        if (strcmp(key, "unit") == 0 && has_quantity(m))
            continue;
        if (!protobuf_c_message_descriptor_get_field_by_name(m, key))
            return trace_fail(TRACE_EINVAL, "unknown field \"%s%.40s\"",
                              cv->path, key);
    }
    for (unsigned i = 0; i < m->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->fields[i];
        v = json_object_get(obj, f->name);
        if (!v || json_is_null(v)) {
            if (f->label == PROTOBUF_C_LABEL_REQUIRED ||
                (f->label == PROTOBUF_C_LABEL_REPEATED &&
                 in_list(required_lists, f->name)))
                return trace_fail(TRACE_EINVAL, "missing field \"%s%s\"",
                                  cv->path, f->name);
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            rc = convert_repeated(cv, m, msg, f, v);
        else
            rc = convert_field(cv, m, msg, f, obj, v);
        if (rc != TRACE_OK)
            return rc;
    }
    /* A quantity's unit must fit the substance's dimension. */
    const ProtobufCFieldDescriptor *sf =
        protobuf_c_message_descriptor_get_field_by_name(m, "substance");
    if (sf) {
        const subst_info *sub =
            catalog_find(cv->l->cat, *(char **)FIELD_PTR(msg, sf));
        for (unsigned i = 0; i < m->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &m->fields[i];
            Trace__V1__Quantity *q;
            dimension d;
            if (f->descriptor != &trace__v1__quantity__descriptor)
                continue;
            q = *(Trace__V1__Quantity **)FIELD_PTR(msg, f);
            if (q && unit_lookup(q->unit, &d, NULL) == TRACE_OK &&
                d != sub->dim)
                return trace_fail(TRACE_EINVAL,
                                  "unit \"%s\" is a %s unit but %s is "
                                  "measured by %s",
                                  q->unit, dimension_name(d), sub->code,
                                  dimension_name(sub->dim));
        }
    }
    if ((rc = check_by_product(cv, msg, &bp)) != TRACE_OK)
        return rc;
    if (m == &trace__v1__party_body__descriptor &&
        (rc = check_sites(cv, (const Trace__V1__PartyBody *)msg)) != TRACE_OK)
        return rc;
    *out = msg;
    return TRACE_OK;
}

static int event_from_obj(Trace__V1__Event **out, const struct conv *cv,
                          json_t *obj, int depth)
{
    Trace__V1__Event *ev = arena_alloc(cv->a, sizeof(*ev));
    const ProtobufCFieldDescriptor *bf = NULL;
    const event_type *t;
    const char *s;
    json_t *v;
    int rc;

    if (!ev)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    trace__v1__event__init(ev);
    v = json_object_get(obj, "type");
    if (!v)
        return trace_fail(TRACE_EINVAL, "missing field \"%stype\"", cv->path);
    if ((rc = get_text(&s, v, cv->path, "type", 0)) != TRACE_OK)
        return rc;
    if (!(t = event_type_find(s)))
        return trace_fail(TRACE_EINVAL, "unknown event type \"%.40s\"", s);
    if (depth > 0 && t->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY)
        return trace_fail(TRACE_EINVAL,
                          "a replacement cannot itself be a correction");
    ev->type = arena_strdup(cv->a, t->name, strlen(t->name));

    static const char *const ids[] = {"id", "party"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(obj, ids[i]);
        if (!v)
            return trace_fail(TRACE_EINVAL, "missing field \"%s%s\"", cv->path,
                              ids[i]);
        if ((rc = get_text(&s, v, cv->path, ids[i], 0)) != TRACE_OK)
            return rc;
        if (i == 0 && strlen(s) > TRACE_MAX_ID)
            return trace_fail(TRACE_EINVAL,
                              "field \"%sid\" is longer than "
                              "%u bytes",
                              cv->path, TRACE_MAX_ID);
        if (i == 1 && !trace_party_id_valid(s))
            return trace_fail(TRACE_EINVAL,
                              "field \"%sparty\": \"%.64s\" is not a valid "
                              "party id",
                              cv->path, s);
        char *copy = arena_strdup(cv->a, s, strlen(s));
        if (!copy)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        if (i == 0)
            ev->id = copy;
        else
            ev->party = copy;
    }
    v = json_object_get(obj, "at");
    if (!v)
        return trace_fail(TRACE_EINVAL, "missing field \"%sat\"", cv->path);
    if ((rc = convert_time(cv, "at", v, &ev->at)) != TRACE_OK)
        return rc;
    if ((v = json_object_get(obj, "override"))) {
        if ((rc = get_text(&s, v, cv->path, "override", 0)) != TRACE_OK)
            return rc;
        if (!(ev->override = arena_strdup(cv->a, s, strlen(s))))
            return trace_fail(TRACE_ENOMEM, "out of memory");
    }

    for (unsigned i = 0; i < trace__v1__event__descriptor.n_fields; i++)
        if (trace__v1__event__descriptor.fields[i].id == t->body_case)
            bf = &trace__v1__event__descriptor.fields[i];
    rc = convert_msg(cv, bf->descriptor, obj,
                     (ProtobufCMessage **)FIELD_PTR(ev, bf), 1);
    if (rc != TRACE_OK)
        return rc;
    ev->body_case = t->body_case;
    *out = ev;
    return TRACE_OK;
}

int event_from_json(Trace__V1__Event **out, arena *a, const char *line,
                    size_t len, const trace_ledger *l)
{
    return event_from_json_in(out, a, line, len, l, NULL);
}

int event_from_json_in(Trace__V1__Event **out, arena *a, const char *line,
                       size_t len, const trace_ledger *l, products_seen *seen)
{
    struct conv cv = {a, l, "", seen};
    json_error_t jerr;
    char *marked = NULL;
    json_t *obj = NULL;
    int rc;

    if (len > TRACE_MAX_LINE)
        return trace_fail(TRACE_EINVAL, "line longer than 1 MiB");
    if (memchr(line, '\0', len))
        return trace_fail(TRACE_EINVAL, "line contains a NUL byte");
    if ((rc = json_mark_numbers(&marked, line, len, 0)) != TRACE_OK)
        return rc;
    /* nothing of the parsed tree outlives this call */
    int region = json_region_begin();
    obj = json_loads(marked, JSON_REJECT_DUPLICATES, &jerr);
    free(marked);
    if (!obj) {
        rc = trace_fail(TRACE_EINVAL, "malformed JSON: %s (column %d)",
                        jerr.text, jerr.column);
        goto out;
    }
    if (!json_is_object(obj)) {
        rc = trace_fail(TRACE_EINVAL, "a line must hold one JSON object");
        goto out;
    }
    rc = event_from_obj(out, &cv, obj, 0);
    if (rc == TRACE_OK)
        rc = products_seen_add(seen, *out);
out:
    json_decref(obj);
    if (region)
        json_region_end();
    return rc;
}
