/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gs1.c - GS1 identifiers: GTIN-14 and GLN check digits, and the EPC
 * URIs of EPCIS (SGTIN, LGTIN and SGTIN patterns, SGLN, PGLN) and GS1
 * Digital Link URIs reduced to the GTIN, lot and GLN they name.
 *
 * Check digit (GS1 General Specifications 7.9): the digits before it,
 * weighted 3, 1, 3, ... from the right, summed; the check digit takes
 * the sum up to the next multiple of ten.
 *
 * An EPC URI splits the GS1 key at the company prefix:
 *   urn:epc:id:sgtin:CP.IR.SERIAL   GTIN = IR[0] CP IR[1..] check
 *   urn:epc:class:lgtin:CP.IR.LOT   same GTIN, and the lot
 *   urn:epc:idpat:sgtin:CP.IR.*     same GTIN, no lot
 *   urn:epc:id:sgln:CP.LOC.EXT      GLN = CP LOC check
 *   urn:epc:id:pgln:CP.PARTY        GLN = CP PARTY check
 * so CP and IR together hold 13 digits (12 for a GLN).  The check digit
 * is computed: an EPC URI cannot carry a wrong one.  A Digital Link
 * (https://HOST/01/GTIN14[/10/LOT][/21/SERIAL], /414/GLN, /417/GLN)
 * carries it and is refused when it is wrong.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n > 0;
}

char gs1_check_digit(const char *digits, size_t n)
{
    unsigned sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += (unsigned)(digits[n - 1 - i] - '0') * (i % 2 == 0 ? 3u : 1u);
    return (char)('0' + (10 - sum % 10) % 10);
}

int gs1_key_valid(const char *s, size_t len)
{
    return s && strlen(s) == len && all_digits(s, len) &&
           gs1_check_digit(s, len - 1) == s[len - 1];
}

/* "CP.REF" (and a third part after another '.'), CP and REF digits
 * making `total` digits: their lengths; 0 if it is not that. */
static int split_key(const char *p, size_t total, size_t *cp, size_t *ref,
                     const char **rest)
{
    const char *dot = strchr(p, '.'), *end;

    if (!dot)
        return 0;
    *cp = (size_t)(dot - p);
    end = strchr(dot + 1, '.');
    *ref = end ? (size_t)(end - dot - 1) : strlen(dot + 1);
    *rest = end ? end + 1 : NULL;
    if (*cp < 6 || *cp + *ref != total || !all_digits(p, *cp) ||
        (*ref && !all_digits(dot + 1, *ref)))
        return 0;
    return 1;
}

/* A Digital Link's path after its host: the value of application
 * identifier `ai`, copied to buf; 0 if absent. */
static int dl_value(const char *uri, const char *ai, char *buf, size_t cap)
{
    const char *p = strstr(uri, "://");
    size_t alen = strlen(ai);

    if (!p || !(p = strchr(p + 3, '/')))
        return 0;
    while (p && *p == '/') {
        const char *seg = p + 1, *next = strchr(seg, '/');
        size_t slen = next ? (size_t)(next - seg) : strcspn(seg, "?#");
        if (slen == alen && strncmp(seg, ai, alen) == 0 && next) {
            const char *v = next + 1;
            size_t vlen = strcspn(v, "/?#");
            if (vlen == 0 || vlen >= cap)
                return 0;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return 1;
        }
        p = next ? strchr(next + 1, '/') : NULL;
    }
    return 0;
}

int gs1_parse_item(const char *uri, char gtin[15], char *lot, size_t lot_cap,
                   int *serial)
{
    static const struct {
        const char *prefix;
        int kind; /* 0 serial, 1 lot, 2 pattern */
    } schemes[] = {
        {"urn:epc:id:sgtin:", 0},
        {"urn:epc:class:lgtin:", 1},
        {"urn:epc:idpat:sgtin:", 2},
    };
    size_t cp, ref;
    const char *rest;

    lot[0] = '\0';
    *serial = 0;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++) {
        size_t pl = strlen(schemes[i].prefix);
        const char *p = uri + pl;
        if (strncmp(uri, schemes[i].prefix, pl) != 0)
            continue;
        if (!split_key(p, 13, &cp, &ref, &rest) || ref < 1 || !rest || !*rest)
            return trace_fail(TRACE_EINVAL, "\"%.80s\" is not a valid %s URI",
                              uri, schemes[i].kind == 1 ? "LGTIN" : "SGTIN");
        gtin[0] = p[cp + 1]; /* the indicator digit */
        memcpy(gtin + 1, p, cp);
        memcpy(gtin + 1 + cp, p + cp + 2, ref - 1);
        gtin[13] = gs1_check_digit(gtin, 13);
        gtin[14] = '\0';
        if (schemes[i].kind == 1) {
            if (strlen(rest) >= lot_cap)
                return trace_fail(TRACE_EINVAL, "lot of \"%.80s\" is too long",
                                  uri);
            memcpy(lot, rest, strlen(rest) + 1);
        } else if (schemes[i].kind == 0) {
            *serial = 1;
        } else if (strcmp(rest, "*") != 0) {
            return trace_fail(TRACE_EINVAL,
                              "\"%.80s\": an SGTIN pattern ends in \".*\"",
                              uri);
        }
        return TRACE_OK;
    }
    if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
        char g[32], s[128];
        if (!dl_value(uri, "01", g, sizeof(g)))
            return TRACE_ENOTFOUND;
        if (strlen(g) != 14 || !all_digits(g, 14))
            return trace_fail(TRACE_EINVAL,
                              "\"%.80s\": a GTIN is 14 digits in a Digital "
                              "Link",
                              uri);
        if (!gs1_key_valid(g, 14))
            return trace_fail(TRACE_EINVAL,
                              "\"%.80s\": GTIN %s has a wrong check digit "
                              "(expected %c)",
                              uri, g, gs1_check_digit(g, 13));
        memcpy(gtin, g, 15);
        if (dl_value(uri, "10", lot, lot_cap) == 0)
            lot[0] = '\0';
        *serial = dl_value(uri, "21", s, sizeof(s));
        return TRACE_OK;
    }
    return TRACE_ENOTFOUND;
}

int gs1_parse_gln(const char *uri, char gln[14])
{
    size_t cp, ref, pl;
    const char *rest, *p;

    if (strncmp(uri, "urn:epc:id:sgln:", 16) == 0 ||
        strncmp(uri, "urn:epc:id:pgln:", 16) == 0) {
        p = uri + 16;
        pl = 16;
        if (!split_key(p, 12, &cp, &ref, &rest) ||
            (uri[pl - 5] == 's' && !rest))
            return trace_fail(TRACE_EINVAL, "\"%.80s\" is not a valid %s URI",
                              uri, uri[pl - 5] == 's' ? "SGLN" : "PGLN");
        memcpy(gln, p, cp);
        memcpy(gln + cp, p + cp + 1, ref);
        gln[12] = gs1_check_digit(gln, 12);
        gln[13] = '\0';
        return TRACE_OK;
    }
    if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
        char g[32];
        if (!dl_value(uri, "414", g, sizeof(g)) &&
            !dl_value(uri, "417", g, sizeof(g)))
            return TRACE_ENOTFOUND;
        if (!gs1_key_valid(g, 13))
            return trace_fail(TRACE_EINVAL,
                              "\"%.80s\": not a GLN with a valid check digit",
                              uri);
        memcpy(gln, g, 14);
        return TRACE_OK;
    }
    return TRACE_ENOTFOUND;
}
