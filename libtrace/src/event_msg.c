/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_msg.c - encoded Event messages: the checks of their quantities
 * (for events that did not come through event_from_json) and their JSON
 * (SPEC section 3), the inverse of event_json.c, driven by the same
 * protobuf-c descriptors.  A quantity is written as its exact decimal
 * text with its unit, a time in RFC 3339, a correction's replacement as
 * the event object it encodes; empty lists are left out unless the JSON
 * must carry them (required_lists).
 */
#include <string.h>

#include <jansson.h>

#include "event_int.h"

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
