/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_schema.c - what the protobuf schema cannot say about an event's
 * JSON (SPEC section 3): the event types and the body each selects, the
 * allowed values of enumerated fields with their Chinese spellings and
 * names, which strings are party ids, substances, event ids or GS1 keys,
 * which lists must be present and which times may be bare dates.
 * event_json.c converts by these tables, event_msg.c renders by them, and
 * `record TYPE --help` describes the fields from them
 * (trace_event_fields).  Adding a field is a schema line plus at most a
 * table line here.
 */
#include <stdio.h>
#include <string.h>

#include "event_int.h"

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
const char *enum_value(const char *const *list, const char *s)
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

/* What the schema cannot say about a string field.  `msg` NULL matches
 * the field name in every message. */
static const struct field_rule rules[] = {
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
const char *const required_lists[] = {"licenses", NULL};

/* Time fields that may be a bare date (that whole day). */
const char *const date_fields[] = {"valid_from", "valid_until", "written",
                                   NULL};

int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

const struct field_rule *rule_for(const ProtobufCMessageDescriptor *m,
                                  const char *field)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if ((!rules[i].msg || rules[i].msg == m) &&
            strcmp(rules[i].field, field) == 0)
            return &rules[i];
    return NULL;
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
