/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epcis.c - GS1 EPCIS 2.0 JSON documents into SPEC 3 JSON lines (see
 * trace/epcis.h for the mapping): reading the document.
 *
 * Streaming.  A small scanner walks the document's JSON without building
 * it: every value is checked for JSON syntax as it passes, the top-level
 * "type" is kept, and each element of epcisBody.eventList (or, in a
 * query document, epcisBody.queryResults.resultsBody.eventList) is
 * copied out, at most TRACE_MAX_LINE bytes, and parsed alone into an
 * arena (jtree.c; numbers keep their exact text).  Everything else
 * (contexts, headers, master data) is checked and dropped.  So memory is
 * bounded by the largest event, not by the document.
 *
 * Each event is mapped by epcis_map.c, by the master data of
 * epcis_master.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epcis_int.h"

#define MAX_DEPTH 64

/* ------------------------------------------------------------------ */
/* The scanner                                                          */

struct rd {
    FILE *f;
    unsigned char *buf; /* read ahead from f */
    size_t at, len;
    int eof;
    int peeked; /* a byte read ahead, or -2 */
    unsigned long pos;
    char *cap; /* the copy of the value being captured */
    size_t n, size;
    int capturing;
    char err[160];
};

#define RD_BUF 65536

/* The next byte of the input, or EOF (at its end or on a read error:
 * ferror tells). */
static int rd_byte(struct rd *r)
{
    if (r->at == r->len) {
        if (r->eof)
            return EOF;
        r->len = fread(r->buf, 1, RD_BUF, r->f);
        r->at = 0;
        if (r->len == 0) {
            r->eof = 1;
            return EOF;
        }
    }
    return r->buf[r->at++];
}

static int rd_get(struct rd *r)
{
    int c = r->peeked != -2 ? r->peeked : rd_byte(r);

    r->peeked = -2;
    if (c == EOF)
        return EOF;
    r->pos++;
    if (r->capturing) {
        if (r->n + 2 > r->size) {
            size_t ns = r->size ? r->size * 2 : 4096;
            char *p;
            if (ns > TRACE_MAX_LINE + 2u)
                ns = TRACE_MAX_LINE + 2u;
            if (r->n + 2 > ns) {
                snprintf(r->err, sizeof(r->err),
                         "an event is larger than 1 MiB");
                return -3;
            }
            if (!(p = realloc(r->cap, ns))) {
                snprintf(r->err, sizeof(r->err), "out of memory");
                return -3;
            }
            r->cap = p;
            r->size = ns;
        }
        r->cap[r->n++] = (char)c;
    }
    return c;
}

static int rd_peek(struct rd *r)
{
    if (r->peeked == -2)
        r->peeked = rd_byte(r);
    return r->peeked;
}

static int rd_fail(struct rd *r, const char *what)
{
    if (!r->err[0])
        snprintf(r->err, sizeof(r->err), "%s at byte %lu", what, r->pos);
    return -1;
}

static void ws(struct rd *r)
{
    int c;
    while ((c = rd_peek(r)) == ' ' || c == '\t' || c == '\n' || c == '\r')
        rd_get(r);
}

static int expect(struct rd *r, int want, const char *what)
{
    ws(r);
    if (rd_get(r) != want)
        return rd_fail(r, what);
    return 0;
}

/* A string after its opening quote; its raw text (escapes as written)
 * into buf when given, truncated to cap - 1. */
static int string_rest(struct rd *r, char *buf, size_t cap)
{
    size_t o = 0;
    int c;

    for (;;) {
        /* a run of plain bytes straight from the buffer, captured in one
         * copy (what rd_get would do byte by byte) */
        if (!buf && r->peeked == -2) {
            size_t i = r->at, lim = r->len;
            if (r->capturing) { /* as far as the copy has room */
                size_t room = r->size > r->n + 2 ? r->size - r->n - 2 : 0;
                if (lim - r->at > room)
                    lim = r->at + room;
            }
            while (i < lim && r->buf[i] != '"' && r->buf[i] != '\\' &&
                   r->buf[i] >= 0x20)
                i++;
            if (r->capturing) {
                memcpy(r->cap + r->n, r->buf + r->at, i - r->at);
                r->n += i - r->at;
            }
            r->pos += i - r->at;
            r->at = i;
        }
        if ((c = rd_get(r)) < 0)
            return rd_fail(r, "unterminated string");
        if (c == '"')
            break;
        if (c < 0x20)
            return rd_fail(r, "control character in a string");
        if (buf && o + 1 < cap)
            buf[o++] = (char)c;
        if (c == '\\') {
            c = rd_get(r);
            if (c < 0 || !strchr("\"\\/bfnrtu", c))
                return rd_fail(r, "bad escape in a string");
            if (buf && o + 1 < cap)
                buf[o++] = (char)c;
        }
    }
    if (buf)
        buf[o] = '\0';
    return 0;
}

static int value(struct rd *r, int depth);

static int container(struct rd *r, int close, int depth)
{
    int c;

    if (depth > MAX_DEPTH)
        return rd_fail(r, "nested too deeply");
    ws(r);
    if (rd_peek(r) == close) {
        rd_get(r);
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (expect(r, '"', "expected a member name") ||
                string_rest(r, NULL, 0) || expect(r, ':', "expected ':'"))
                return -1;
        }
        if (value(r, depth + 1))
            return -1;
        ws(r);
        c = rd_get(r);
        if (c == close)
            return 0;
        if (c != ',')
            return rd_fail(r, close == '}' ? "expected ',' or '}'"
                                           : "expected ',' or ']'");
        ws(r);
    }
}

static int literal(struct rd *r, const char *rest)
{
    for (; *rest; rest++)
        if (rd_get(r) != *rest)
            return rd_fail(r, "bad literal");
    return 0;
}

static int number(struct rd *r)
{
    int c, digits = 0;

    while ((c = rd_peek(r)) == '-' || c == '+' || c == '.' || c == 'e' ||
           c == 'E' || (c >= '0' && c <= '9')) {
        digits += c >= '0' && c <= '9';
        rd_get(r);
    }
    return digits ? 0 : rd_fail(r, "bad number");
}

static int value(struct rd *r, int depth)
{
    int c;

    ws(r);
    c = rd_peek(r);
    switch (c) {
    case '{':
    case '[':
        rd_get(r);
        return container(r, c == '{' ? '}' : ']', depth);
    case '"':
        rd_get(r);
        return string_rest(r, NULL, 0);
    case 't':
        rd_get(r);
        return literal(r, "rue");
    case 'f':
        rd_get(r);
        return literal(r, "alse");
    case 'n':
        rd_get(r);
        return literal(r, "ull");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return number(r);
        return rd_fail(r, c == EOF ? "unexpected end" : "not JSON");
    }
}

/* ------------------------------------------------------------------ */
/* The document                                                         */

/* An object's members, calling fn for each named member (the value is
 * next), skipping the others. */
typedef int (*member_fn)(void *ctx, struct rd *r, const char *name, int *used);

static int members(struct rd *r, member_fn fn, void *ctx)
{
    char name[64];
    int c;

    if (expect(r, '{', "expected an object"))
        return -1;
    ws(r);
    if (rd_peek(r) == '}') {
        rd_get(r);
        return 0;
    }
    for (;;) {
        int used = 0, rc;
        if (expect(r, '"', "expected a member name") ||
            string_rest(r, name, sizeof(name)) ||
            expect(r, ':', "expected ':'"))
            return -1;
        if ((rc = fn(ctx, r, name, &used)) != 0)
            return rc;
        if (!used && value(r, 1))
            return -1;
        ws(r);
        c = rd_get(r);
        if (c == '}')
            return 0;
        if (c != ',')
            return rd_fail(r, "expected ',' or '}'");
    }
}

struct doc {
    struct ep *e;
    char type[64];
    int has_type, lists;
    unsigned long index;
};

static int event_list(struct doc *d, struct rd *r)
{
    int c, rc;

    d->lists++;
    if (expect(r, '[', "eventList is not a list"))
        return -1;
    ws(r);
    if (rd_peek(r) == ']') {
        rd_get(r);
        return 0;
    }
    for (;;) {
        ws(r);
        r->n = 0;
        r->capturing = 1;
        rc = value(r, 2);
        r->capturing = 0;
        if (rc)
            return -1;
        if ((rc = handle_event(d->e, r->cap, r->n, d->index++)) != 0)
            return rc;
        ws(r);
        c = rd_get(r);
        if (c == ']')
            return 0;
        if (c != ',')
            return rd_fail(r, "expected ',' or ']'");
    }
}

static int in_results(void *ctx, struct rd *r, const char *name, int *used)
{
    if (strcmp(name, "eventList") != 0)
        return 0;
    *used = 1;
    return event_list(ctx, r);
}

static int in_query(void *ctx, struct rd *r, const char *name, int *used)
{
    if (strcmp(name, "resultsBody") != 0)
        return 0;
    *used = 1;
    return members(r, in_results, ctx);
}

static int in_body(void *ctx, struct rd *r, const char *name, int *used)
{
    if (strcmp(name, "eventList") == 0) {
        *used = 1;
        return event_list(ctx, r);
    }
    if (strcmp(name, "queryResults") == 0) {
        *used = 1;
        return members(r, in_query, ctx);
    }
    return 0;
}

static int in_doc(void *ctx, struct rd *r, const char *name, int *used)
{
    struct doc *d = ctx;

    if (strcmp(name, "type") == 0) {
        *used = 1;
        if (expect(r, '"', "\"type\" is not a string") ||
            string_rest(r, d->type, sizeof(d->type)))
            return -1;
        d->has_type = 1;
        return 0;
    }
    if (strcmp(name, "epcisBody") == 0) {
        *used = 1;
        return members(r, in_body, ctx);
    }
    return 0;
}

int trace_epcis_read(const trace_epcis_master *m, FILE *in,
                     trace_epcis_line_fn on_line, trace_epcis_note_fn note,
                     void *ctx, trace_epcis_summary *sum)
{
    struct ep e = {m,    on_line, note, ctx, sum,  NULL, NULL, 0,
                   NULL, NULL,    NULL, 0,   NULL, NULL, 0,    ""};
    struct rd r = {in, NULL, 0, 0, 0, -2, 0, NULL, 0, 0, 0, ""};
    struct doc d = {&e, "", 0, 0, 0};
    int rc, c;

    memset(sum, 0, sizeof(*sum));
    if (!(e.sales = strmap_new(TRACE_MAX_ID + 1)) ||
        !(r.buf = malloc(RD_BUF)) || !(e.a = arena_new(0)) ||
        !(e.in = malloc(MAX_ITEMS * sizeof(*e.in))) ||
        !(e.out = malloc(MAX_ITEMS * sizeof(*e.out)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    /* a UTF-8 byte order mark */
    if (rd_peek(&r) == 0xef) {
        rd_get(&r);
        if (rd_get(&r) != 0xbb || rd_get(&r) != 0xbf) {
            rc = trace_fail(TRACE_EINVAL, "not JSON: a stray byte at the "
                                          "start");
            goto out;
        }
    }
    rc = members(&r, in_doc, &d);
    if (e.cb_rc) {
        rc = e.cb_rc; /* a callback's code */
        goto out;
    }
    if (rc == 0) {
        ws(&r);
        if ((c = rd_get(&r)) != EOF) {
            (void)c;
            rd_fail(&r, "text after the document");
            rc = -1;
        }
    }
    if (ferror(in)) {
        rc = trace_fail(TRACE_EUNAVAIL, "read error");
        goto out;
    }
    if (rc < 0) {
        rc = trace_fail(TRACE_EINVAL, "not a JSON EPCIS document: %s", r.err);
        goto out;
    }
    if (!d.has_type || (strcmp(d.type, "EPCISDocument") != 0 &&
                        strcmp(d.type, "EPCISQueryDocument") != 0)) {
        rc = trace_fail(TRACE_EINVAL,
                        "not an EPCIS document: its \"type\" is %s%.60s%s, "
                        "not EPCISDocument or EPCISQueryDocument",
                        d.has_type ? "\"" : "", d.has_type ? d.type : "missing",
                        d.has_type ? "\"" : "");
        goto out;
    }
    if (!d.lists) {
        rc = trace_fail(TRACE_EINVAL, "the document has no epcisBody "
                                      "eventList");
        goto out;
    }
    rc = TRACE_OK;
out:
    free(r.cap);
    free(r.buf);
    free(e.in);
    free(e.out);
    arena_free(e.a);
    strmap_free(e.sales);
    strmap_free(e.old_sales);
    return rc;
}
