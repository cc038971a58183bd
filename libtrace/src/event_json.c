/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_json.c - SPEC section 3 JSON Lines <-> Event messages.
 *
 * The mapping is driven by the protobuf-c descriptors of proto/trace.proto:
 * a JSON key is the name of a field of the event's body message, the
 * field's type says how to convert it, and `required` in the schema says
 * what must be present.  What the schema cannot say (allowed values,
 * which strings are party ids, which times may be bare dates) sits in the
 * tables below, so adding a field is a schema line plus at most a table
 * line.
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

#include "internal.h"

#define NUM_MARK '\x01'

/* Event types: the JSON `type` and the body it selects. */
static const event_type types[] = {
    {"party", TRACE__V1__EVENT__BODY_PARTY_BODY, 1},
    {"permit", TRACE__V1__EVENT__BODY_PERMIT_BODY, 1},
    {"permit_status", TRACE__V1__EVENT__BODY_PERMIT_STATUS_BODY, 1},
    {"produce", TRACE__V1__EVENT__BODY_PRODUCE_BODY, 0},
    {"sale", TRACE__V1__EVENT__BODY_SALE_BODY, 0},
    {"receipt", TRACE__V1__EVENT__BODY_RECEIPT_BODY, 0},
    {"transfer", TRACE__V1__EVENT__BODY_TRANSFER_BODY, 0},
    {"consume", TRACE__V1__EVENT__BODY_CONSUME_BODY, 0},
    {"dispense", TRACE__V1__EVENT__BODY_DISPENSE_BODY, 0},
    {"import", TRACE__V1__EVENT__BODY_IMPORT_BODY, 0},
    {"export", TRACE__V1__EVENT__BODY_EXPORT_BODY, 0},
    {"destroy", TRACE__V1__EVENT__BODY_DESTROY_BODY, 0},
    {"loss", TRACE__V1__EVENT__BODY_LOSS_BODY, 0},
    {"stocktake", TRACE__V1__EVENT__BODY_STOCKTAKE_BODY, 0},
    {"correction", TRACE__V1__EVENT__BODY_CORRECTION_BODY, 0},
    {"alert_ack", TRACE__V1__EVENT__BODY_ALERT_ACK_BODY, 0},
    {"product", TRACE__V1__EVENT__BODY_PRODUCT_BODY, 0},
    {"parcel", TRACE__V1__EVENT__BODY_PARCEL_BODY, 0},
    {"pickup", TRACE__V1__EVENT__BODY_PICKUP_BODY, 0},
    {"handover", TRACE__V1__EVENT__BODY_HANDOVER_BODY, 0},
    {"delivery", TRACE__V1__EVENT__BODY_DELIVERY_BODY, 0},
    {"permit_application", TRACE__V1__EVENT__BODY_PERMIT_APPLICATION_BODY, 0},
    {"application_decision", TRACE__V1__EVENT__BODY_APPLICATION_DECISION_BODY,
     1},
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

const event_type *event_type_find(const char *name)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

const event_type *event_type_by_case(uint32_t body_case)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].body_case == body_case)
            return &types[i];
    return NULL;
}

/* Allowed values of enumerated string fields. */
static const char *const party_kinds[] = {
    "manufacturer", "distributor", "user",      "enterprise",
    "pharmacy",     "hospital",    "carrier",   "warehouse",
    "importer",     "exporter",    "regulator", NULL};
static const char *const party_statuses[] = {"active", "suspended", NULL};
static const char *const permit_kinds[] = {
    "purchase_license", "purchase_filing", "transport_license",
    "transport_filing", "import_license", "export_license",
    /* other regimes (regimes.json) */
    "customer_declaration", "order_form", "import_authorisation",
    "export_authorisation", "import_declaration", "export_declaration", NULL};

int permit_kind_known(const char *kind)
{
    for (const char *const *p = permit_kinds; *p; p++)
        if (strcmp(*p, kind) == 0)
            return 1;
    return 0;
}
static const char *const permit_statuses[] = {"active", "suspended", "revoked",
                                              "exhausted", NULL};
static const char *const uses[] = {"single", "multi", NULL};
/* a regulator's departments (SPEC 12); trace_scope_mask() knows them */
static const char *const regulator_scopes[] = {"CN-PC",  "CN-NARC", "CN-PSY",
                                               "import", "export",  NULL};
static const char *const forms[] = {
    "injection", "controlled_release", "oral", "patch", "other", NULL};
static const char *const loss_reasons[] = {"theft", "loss", "damage",
                                           "in_transit", NULL};
static const char *const ack_statuses[] = {"open", "acknowledged", "resolved",
                                           NULL};
static const char *const decisions[] = {"rejected", NULL};

/* Chinese spellings accepted for enumerated values, stored as the
 * canonical English value (so exports, rules and comparisons see one
 * spelling). */
static const struct {
    const char *alias, *value;
} enum_aliases[] = {
    /* party kinds */
    {"生产企业", "manufacturer"},
    {"经营企业", "distributor"},
    {"批发企业", "distributor"},
    {"使用单位", "user"},
    {"企业", "enterprise"},
    {"药店", "pharmacy"},
    {"零售药店", "pharmacy"},
    {"医院", "hospital"},
    {"医疗机构", "hospital"},
    {"承运人", "carrier"},
    {"运输企业", "carrier"},
    {"仓库", "warehouse"},
    {"进口企业", "importer"},
    {"出口企业", "exporter"},
    {"监管部门", "regulator"},
    /* statuses */
    {"正常", "active"},
    {"有效", "active"},
    {"暂停", "suspended"},
    {"吊销", "revoked"},
    {"撤销", "revoked"},
    {"用完", "exhausted"},
    /* permit kinds */
    {"购买许可证", "purchase_license"},
    {"购买备案证明", "purchase_filing"},
    {"运输许可证", "transport_license"},
    {"运输备案证明", "transport_filing"},
    {"进口许可证", "import_license"},
    {"出口许可证", "export_license"},
    {"客户声明", "customer_declaration"}, /* EU: 273/2004 art. 4 */
    {"订货单", "order_form"},             /* US: DEA Form 222 / CSOS */
    {"进口授权", "import_authorisation"}, /* EU: 111/2005 art. 20 */
    {"出口授权", "export_authorisation"}, /* EU: 111/2005 art. 12 */
    {"进口申报", "import_declaration"},   /* US: DEA Form 486 / 236 */
    {"出口申报", "export_declaration"},   /* US: DEA Form 486 */
    /* regulators' scopes (departments) */
    {"易制毒化学品", "CN-PC"},
    {"麻醉药品", "CN-NARC"},
    {"精神药品", "CN-PSY"},
    {"进口", "import"},
    {"出口", "export"},
    /* uses */
    {"一次性", "single"},
    {"单次", "single"},
    {"多次", "multi"},
    /* dosage forms */
    {"注射剂", "injection"},
    {"缓控释制剂", "controlled_release"},
    {"缓释制剂", "controlled_release"},
    {"控释制剂", "controlled_release"},
    {"口服", "oral"},
    {"口服制剂", "oral"},
    {"贴剂", "patch"},
    {"其他", "other"},
    /* loss reasons */
    {"被盗", "theft"},
    {"盗窃", "theft"},
    {"丢失", "loss"},
    {"损坏", "damage"},
    {"破损", "damage"},
    {"运输途中", "in_transit"},
    {"在途", "in_transit"},
    /* alert acknowledgement */
    {"未处理", "open"},
    {"已确认", "acknowledged"},
    {"已解决", "resolved"},
    /* application decisions */
    {"驳回", "rejected"},
    {"不予批准", "rejected"},
};

/* Chinese names of values that have no accepted alias above: event types
 * and alert severities (shown, not parsed). */
static const struct {
    const char *value, *zh;
} display_zh[] = {
    {"party", "单位登记"},
    {"permit", "许可证签发"},
    {"permit_status", "许可证状态"},
    {"produce", "生产"},
    {"sale", "销售"},
    {"receipt", "收货"},
    {"transfer", "移库"},
    {"consume", "使用"},
    {"dispense", "发药"},
    {"import", "进口"},
    {"export", "出口"},
    {"destroy", "销毁"},
    {"loss", "丢失被盗"},
    {"stocktake", "盘点"},
    {"correction", "更正"},
    {"alert_ack", "预警处理"},
    {"product", "产品登记"},
    {"parcel", "寄递收寄"},
    {"pickup", "承运提货"},
    {"handover", "承运交接"},
    {"delivery", "承运送达"},
    {"permit_application", "许可申请"},
    {"application_decision", "审批决定"},
    {"info", "提示"},
    {"low", "低"},
    {"medium", "中"},
    {"high", "高"},
    {"critical", "严重"},
    {"active", "有效"},
    {"exhausted", "已用完"},
    {"expired", "已过期"},
    {"not_yet_valid", "未生效"},
    {"pending", "待审批"},
    {"approved", "已批准"},
    {"rejected", "已驳回"},
};

const char *trace_zh_name(const char *value)
{
    if (!value)
        return NULL;
    for (size_t i = 0; i < sizeof(display_zh) / sizeof(*display_zh); i++)
        if (strcmp(display_zh[i].value, value) == 0)
            return display_zh[i].zh;
    /* the first alias of a value is its name */
    for (size_t i = 0; i < sizeof(enum_aliases) / sizeof(*enum_aliases); i++)
        if (strcmp(enum_aliases[i].value, value) == 0)
            return enum_aliases[i].alias;
    return value;
}

/* The canonical value of `s` among `list`, accepting a Chinese spelling;
 * NULL if it is none of them. */
static const char *enum_value(const char *const *list, const char *s)
{
    for (const char *const *p = list; *p; p++)
        if (strcmp(*p, s) == 0)
            return *p;
    for (size_t i = 0; i < sizeof(enum_aliases) / sizeof(*enum_aliases); i++)
        if (strcmp(enum_aliases[i].alias, s) == 0)
            for (const char *const *p = list; *p; p++)
                if (strcmp(*p, enum_aliases[i].value) == 0)
                    return *p;
    return NULL;
}

enum check {
    CHECK_TEXT = 0,  /* any non-empty text without control characters */
    CHECK_ENUM,      /* one of `values` */
    CHECK_PARTY,     /* a party id */
    CHECK_SUBSTANCE, /* a catalog code or CAS number */
    CHECK_EVENT_ID,  /* names an event: as long as ids may be */
    CHECK_GTIN,      /* 14 digits with a GS1 check digit */
    CHECK_GLN        /* 13 digits with a GS1 check digit */
};

/* What the schema cannot say about a string field.  `msg` NULL matches
 * the field name in every message. */
static const struct field_rule {
    const ProtobufCMessageDescriptor *msg;
    const char *field;
    enum check check;
    const char *const *values;
} rules[] = {
    {&trace__v1__party_body__descriptor, "kind", CHECK_ENUM, party_kinds},
    {&trace__v1__party_body__descriptor, "status", CHECK_ENUM, party_statuses},
    {&trace__v1__party_body__descriptor, "scopes", CHECK_ENUM,
     regulator_scopes},
    {&trace__v1__permit_body__descriptor, "kind", CHECK_ENUM, permit_kinds},
    {&trace__v1__permit_body__descriptor, "uses", CHECK_ENUM, uses},
    {&trace__v1__permit_application_body__descriptor, "kind", CHECK_ENUM,
     permit_kinds},
    {&trace__v1__permit_application_body__descriptor, "uses", CHECK_ENUM, uses},
    {&trace__v1__application_decision_body__descriptor, "decision", CHECK_ENUM,
     decisions},
    {&trace__v1__application_ref__descriptor, "party", CHECK_PARTY, NULL},
    {&trace__v1__application_ref__descriptor, "id", CHECK_EVENT_ID, NULL},
    {&trace__v1__permit_status_body__descriptor, "status", CHECK_ENUM,
     permit_statuses},
    {&trace__v1__rx__descriptor, "form", CHECK_ENUM, forms},
    {&trace__v1__loss_body__descriptor, "reason", CHECK_ENUM, loss_reasons},
    {&trace__v1__alert_ack_body__descriptor, "status", CHECK_ENUM,
     ack_statuses},
    {NULL, "subject", CHECK_PARTY, NULL},
    {NULL, "holder", CHECK_PARTY, NULL},
    {NULL, "counterparty", CHECK_PARTY, NULL},
    {&trace__v1__sale_body__descriptor, "to", CHECK_PARTY, NULL},
    {&trace__v1__receipt_body__descriptor, "from", CHECK_PARTY, NULL},
    {&trace__v1__handover_body__descriptor, "to", CHECK_PARTY, NULL},
    {&trace__v1__delivery_body__descriptor, "to", CHECK_PARTY, NULL},
    {&trace__v1__event_ref__descriptor, "party", CHECK_PARTY, NULL},
    {&trace__v1__event_ref__descriptor, "id", CHECK_EVENT_ID, NULL},
    {NULL, "carrier", CHECK_PARTY, NULL},
    {NULL, "witness", CHECK_PARTY, NULL},
    {NULL, "substance", CHECK_SUBSTANCE, NULL},
    {NULL, "corrects", CHECK_EVENT_ID, NULL},
    {NULL, "ref", CHECK_EVENT_ID, NULL},
    {NULL, "permit", CHECK_EVENT_ID, NULL}, /* keys of indexes, too */
    {NULL, "transport_permit", CHECK_EVENT_ID, NULL},
    {NULL, "alert", CHECK_EVENT_ID, NULL},
    {NULL, "gtin", CHECK_GTIN, NULL},
    {NULL, "gln", CHECK_GLN, NULL},
    {NULL, "sgln", CHECK_GLN, NULL},
};

/* What a free-text field holds, for `record TYPE --help` (the schema
 * only says "text"). */
static const struct {
    const char *field, *what;
} field_help[] = {
    {"handler", "staff who handled it (经手人): a name or staff id, never "
                "a patient's"},
    {"checker", "staff who checked it (复核人): a name or staff id"},
    {"spec", "specification (规格) of the drug, e.g. 10mg×10片"},
    {"name", "its name (the party's, the product's)"},
    {"vehicle", "the vehicle (plate or fleet number)"},
    {"driver", "the driver's id (pseudonymised before storage, like a "
               "patient's)"},
    {"seal", "the seal number on the load"},
    {"form", "dosage form (free text: tablet, 片剂, ampoule ...)"},
};

/* Repeated fields the JSON must carry, even if empty. */
static const char *const required_lists[] = {"licenses", NULL};

/* Time fields that may be a bare date (that whole day). */
static const char *const date_fields[] = {"valid_from", "valid_until",
                                          "written", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

static const struct field_rule *rule_for(const ProtobufCMessageDescriptor *m,
                                         const char *field)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if ((!rules[i].msg || rules[i].msg == m) &&
            strcmp(rules[i].field, field) == 0)
            return &rules[i];
    return NULL;
}

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
    const char *text;
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

/* The quantities of an encoded message, checked as convert_quantity()
 * checks parsed ones: a known unit, more than zero (a count may be 0),
 * at most the ledger's ceiling.  A correction's replacement is checked
 * too. */
static int check_msg_quantities(const trace_ledger *l,
                                const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int rc;

    if (depth > 4)
        return trace_fail(TRACE_EINVAL, "event nested too deeply");
    if (d == &trace__v1__quantity__descriptor) {
        const Trace__V1__Quantity *q = (const Trace__V1__Quantity *)m;
        if (!q->unit || unit_lookup(q->unit, NULL, NULL) != TRACE_OK)
            return TRACE_EINVAL;
        if (q->amount < 0)
            return trace_fail(TRACE_EINVAL, "negative quantity");
        return qty_check_ceiling(l, "qty", q->amount, q->unit);
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *p = (const char *)m + f->offset;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)m + f->quantifier_offset) !=
                f->id)
            continue; /* members of a oneof share their storage */
        if (f->type == PROTOBUF_C_TYPE_BYTES &&
            d == &trace__v1__correction_body__descriptor &&
            strcmp(f->name, "replacement") == 0 &&
            ((const Trace__V1__CorrectionBody *)m)->has_replacement) {
            const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)p;
            Trace__V1__Event *rep =
                trace__v1__event__unpack(NULL, b->len, b->data);
            if (!rep)
                return trace_fail(TRACE_EINVAL, "replacement is not an event");
            rc = check_msg_quantities(l, &rep->base, depth + 1);
            trace__v1__event__free_unpacked(rep, NULL);
            if (rc != TRACE_OK)
                return rc;
            continue;
        }
        if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
            f->descriptor == &trace__v1__time__descriptor)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n =
                *(const size_t *)((const char *)m + f->quantifier_offset);
            const ProtobufCMessage *const *v =
                *(const ProtobufCMessage *const *const *)p;
            for (size_t k = 0; k < n; k++)
                if ((rc = check_msg_quantities(l, v[k], depth + 1)))
                    return rc;
        } else if (*(const ProtobufCMessage *const *)p &&
                   (rc = check_msg_quantities(
                        l, *(const ProtobufCMessage *const *)p, depth + 1))) {
            return rc;
        }
    }
    return TRACE_OK;
}

int event_check_quantities(const trace_ledger *l, const Trace__V1__Event *ev)
{
    return check_msg_quantities(l, &ev->base, 0);
}

/* ------------------------------------------------------------------ */
/* Message -> JSON                                                      */

const ProtobufCMessage *event_body(const Trace__V1__Event *ev)
{
    for (unsigned i = 0; i < trace__v1__event__descriptor.n_fields; i++) {
        const ProtobufCFieldDescriptor *f =
            &trace__v1__event__descriptor.fields[i];
        if (f->id == ev->body_case)
            return *(const ProtobufCMessage **)((const char *)ev + f->offset);
    }
    return NULL;
}

static json_t *msg_to_json(const ProtobufCMessage *msg, json_t *into);

static json_t *time_json(const Trace__V1__Time *t)
{
    char buf[64];
    if (time_format(buf, sizeof(buf), t) != TRACE_OK)
        return NULL;
    return json_string(buf);
}

static int field_to_json(json_t *obj, const ProtobufCMessage *msg,
                         const ProtobufCFieldDescriptor *f)
{
    const void *src = (const char *)msg + f->offset;
    const ProtobufCMessageDescriptor *m = msg->descriptor;
    json_t *v = NULL;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (!*(char *const *)src)
            return 0;
        v = json_string(*(char *const *)src);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
            !*(const protobuf_c_boolean *)((const char *)msg +
                                           f->quantifier_offset))
            return 0;
        v = json_boolean(*(const protobuf_c_boolean *)src);
        break;
    case PROTOBUF_C_TYPE_UINT32:
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
            !*(const protobuf_c_boolean *)((const char *)msg +
                                           f->quantifier_offset))
            return 0;
        v = json_integer(*(const uint32_t *)src);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = src;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
            !*(const protobuf_c_boolean *)((const char *)msg +
                                           f->quantifier_offset))
            return 0;
        if (m == &trace__v1__correction_body__descriptor) {
            Trace__V1__Event *ev =
                trace__v1__event__unpack(NULL, b->len, b->data);
            if (!ev)
                return -1;
            v = json_object();
            json_object_set_new(v, "type", json_string(ev->type));
            json_object_set_new(v, "id", json_string(ev->id));
            json_object_set_new(v, "party", json_string(ev->party));
            json_object_set_new(v, "at", time_json(ev->at));
            if (event_body(ev))
                msg_to_json(event_body(ev), v);
            if (ev->override)
                json_object_set_new(v, "override", json_string(ev->override));
            trace__v1__event__free_unpacked(ev, NULL);
        } else {
            char buf[128];
            if (base64_encode(buf, sizeof(buf), b->data, b->len) != TRACE_OK)
                return -1;
            v = json_string(buf);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)src;
        if (!sub)
            return 0;
        if (f->descriptor == &trace__v1__quantity__descriptor) {
            const Trace__V1__Quantity *q = (const void *)sub;
            int64_t factor = 1;
            char buf[64];
            unit_lookup(q->unit, NULL, &factor);
            if (qty_format(buf, sizeof(buf), q->amount, factor) != TRACE_OK)
                return -1;
            json_object_set_new(obj, f->name, json_string(buf));
            json_object_set_new(obj, "unit", json_string(q->unit));
            return 0;
        }
        if (f->descriptor == &trace__v1__time__descriptor)
            v = time_json((const void *)sub);
        else
            v = msg_to_json(sub, NULL);
        break;
    }
    default:
        return -1;
    }
    if (!v)
        return -1;
    return json_object_set_new(obj, f->name, v);
}

static json_t *msg_to_json(const ProtobufCMessage *msg, json_t *into)
{
    const ProtobufCMessageDescriptor *m = msg->descriptor;
    json_t *obj = into ? into : json_object();

    for (unsigned i = 0; obj && i < m->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n =
                *(const size_t *)((const char *)msg + f->quantifier_offset);
            void *const *arr =
                *(void *const *const *)((const char *)msg + f->offset);
            json_t *a;
            if (n == 0 && !in_list(required_lists, f->name))
                continue;
            a = json_array();
            for (size_t k = 0; k < n; k++)
                json_array_append_new(a, f->type == PROTOBUF_C_TYPE_STRING
                                             ? json_string(arr[k])
                                             : msg_to_json(arr[k], NULL));
            json_object_set_new(obj, f->name, a);
            continue;
        }
        if (field_to_json(obj, msg, f) != 0) {
            if (!into)
                json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *msg_json(const ProtobufCMessage *m)
{
    return msg_to_json(m, NULL);
}

int event_to_json(char **out, size_t *outlen, const Trace__V1__Event *ev,
                  const trace_ledger *l)
{
    json_t *obj = json_object();
    char *s;

    (void)l;
    if (!obj)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    json_object_set_new(obj, "type", json_string(ev->type));
    json_object_set_new(obj, "id", json_string(ev->id));
    json_object_set_new(obj, "party", json_string(ev->party));
    json_object_set_new(obj, "at", time_json(ev->at));
    if (!event_body(ev) || !msg_to_json(event_body(ev), obj)) {
        json_decref(obj);
        return trace_fail(TRACE_EVERIFY, "entry cannot be rendered as JSON");
    }
    /* the reason a finding at entry was overridden */
    if (ev->override)
        json_object_set_new(obj, "override", json_string(ev->override));
    s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *out = s;
    *outlen = strlen(s);
    return TRACE_OK;
}

/* Describes the fields of nested message m under prefix (rx.id, ...). */
static int describe(const ProtobufCMessageDescriptor *m, const char *prefix,
                    trace_field_fn fn, void *ctx)
{
    for (unsigned i = 0; i < m->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->fields[i];
        const struct field_rule *r = rule_for(m, f->name);
        int required = f->label == PROTOBUF_C_LABEL_REQUIRED;
        int list = f->label == PROTOBUF_C_LABEL_REPEATED;
        char name[96], what[160] = "";
        const char *kind = "text";
        int rc;

        snprintf(name, sizeof(name), "%s%s", prefix, f->name);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (f->descriptor == &trace__v1__quantity__descriptor) {
                kind = "quantity (with --unit)";
            } else if (f->descriptor == &trace__v1__time__descriptor) {
                kind = "time (RFC 3339 or a date)";
            } else if (!list) {
                char sub[112];
                snprintf(sub, sizeof(sub), "%s.", name);
                if ((rc = describe(f->descriptor, sub, fn, ctx)) != 0)
                    return rc;
                continue;
            } else {
                kind = "list of objects (import a JSON line)";
            }
        } else if (f->type == PROTOBUF_C_TYPE_BOOL) {
            kind = "true or false";
        } else if (f->type != PROTOBUF_C_TYPE_STRING) {
            kind = "number";
        } else if (list) {
            kind = "list (comma-separated)";
        } else if (r && r->check == CHECK_ENUM) {
            size_t o = 0;
            for (const char *const *v = r->values; *v && o < 140; v++)
                o += (size_t)snprintf(what + o, sizeof(what) - o, "%s%s",
                                      o ? ", " : "one of ", *v);
            kind = what;
        } else if (r && r->check == CHECK_PARTY) {
            kind = "a party id";
        } else if (r && r->check == CHECK_SUBSTANCE) {
            kind = "a substance (code, CAS number or Chinese name)";
        } else {
            for (size_t k = 0; k < sizeof(field_help) / sizeof(*field_help);
                 k++)
                if (strcmp(field_help[k].field, f->name) == 0)
                    kind = field_help[k].what;
        }
        if ((rc = fn(name, kind, required, ctx)) != 0)
            return rc;
    }
    return 0;
}

int trace_event_fields(const char *type, trace_field_fn fn, void *ctx)
{
    const event_type *t = event_type_find(type);
    const ProtobufCFieldDescriptor *bf = NULL;

    if (!t)
        return trace_fail(TRACE_ENOTFOUND, "unknown event type %s", type);
    for (unsigned i = 0; i < trace__v1__event__descriptor.n_fields; i++)
        if (trace__v1__event__descriptor.fields[i].id == t->body_case)
            bf = &trace__v1__event__descriptor.fields[i];
    if (!bf)
        return trace_fail(TRACE_ENOTFOUND, "unknown event type %s", type);
    return describe(bf->descriptor, "", fn, ctx);
}
