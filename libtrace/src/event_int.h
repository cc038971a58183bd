/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_int.h - what the event JSON files share: the tables of
 * event_schema.c that event_json.c converts by and event_msg.c renders
 * by.  Private to libtrace.
 */
#ifndef TRACE_EVENT_INT_H
#define TRACE_EVENT_INT_H

#include "internal.h"

enum check {
    CHECK_TEXT = 0,  /* any non-empty text without control characters */
    CHECK_ENUM,      /* one of `values` */
    CHECK_PARTY,     /* a party id */
    CHECK_SUBSTANCE, /* a catalog code or CAS number */
    CHECK_EVENT_ID,  /* names an event: as long as ids may be */
    CHECK_GTIN,      /* 14 digits with a GS1 check digit */
    CHECK_GLN        /* 13 digits with a GS1 check digit */
};

/* What the schema cannot say about a string field (a row of
 * event_schema.c's table). */
struct field_rule {
    const ProtobufCMessageDescriptor *msg;
    const char *field;
    enum check check;
    const char *const *values;
};

/* The rule for `field` of message `m`, or NULL (plain text). */
const struct field_rule *rule_for(const ProtobufCMessageDescriptor *m,
                                  const char *field);
/* The canonical value of `s` among `list`, accepting a Chinese spelling;
 * NULL if it is none of them. */
const char *enum_value(const char *const *list, const char *s);
/* 1 if `s` is in the NULL-terminated `list`. */
int in_list(const char *const *list, const char *s);
/* Repeated fields the JSON must carry, even if empty. */
extern const char *const required_lists[];
/* Time fields that may be a bare date (that whole day). */
extern const char *const date_fields[];

#endif
