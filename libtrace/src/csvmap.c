/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csvmap.c - CSV records into SPEC 3 JSON lines through a column mapping
 * (see trace/csvmap.h for the mapping's form).
 *
 * The reader is a byte-at-a-time RFC 4180 state machine: a record is
 * read into one buffer (fields NUL-terminated, their offsets kept
 * beside), mapped, handed on and forgotten, so memory is bounded by the
 * largest record (TRACE_MAX_LINE).  Line numbers are physical: a record
 * is named by the line it starts on, and a quoted field's line breaks
 * count, so a message points at the line an editor shows.
 *
 * Invariants: a mapping holds resolved fields only once its header (or
 * its column numbers) is known; a row never sees a field both fixed and
 * mapped (refused when the mapping is loaded); the `type` of every line
 * is the mapping's, never a column's.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "internal.h"
#include "trace/csvmap.h"

struct field {
    char *name;      /* event field, maybe dotted ("rx.id") */
    char *column;    /* header name, or NULL when given by number */
    long index;      /* 0-based column once resolved, else -1 */
    const char *fmt; /* strptime format (borrowed from the JSON), or NULL */
    int is_unit;     /* the unit column: values go through "units" */
};

struct trace_csvmap {
    json_t *doc;      /* the mapping as read (owns the strings borrowed) */
    const char *type; /* event type */
    int header;       /* first record names the columns */
    char delim;       /* field delimiter */
    char tz[8];       /* "Z" or +HH:MM */
    json_t *fixed;    /* borrowed from doc, or NULL */
    json_t *units;    /* borrowed from doc, or NULL */
    struct field *f;  /* mapped columns */
    size_t nf;
};

void trace_csvmap_free(trace_csvmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nf; i++) {
        free(m->f[i].name);
        free(m->f[i].column);
    }
    free(m->f);
    json_decref(m->doc);
    free(m);
}

static int valid_tz(const char *s)
{
    if (strcmp(s, "Z") == 0)
        return 1;
    return strlen(s) == 6 && (s[0] == '+' || s[0] == '-') &&
           isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
           s[3] == ':' && isdigit((unsigned char)s[4]) &&
           isdigit((unsigned char)s[5]) &&
           (s[1] - '0') * 10 + s[2] - '0' < 24 && s[4] < '6';
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static const char *const known_keys[] = {
    "type",      "header",  "delimiter", "columns", "fixed",
    "at_format", "formats", "tz",        "units",
};

int trace_csvmap_load(trace_csvmap **out, FILE *in)
{
    trace_csvmap *m = NULL;
    json_error_t jerr;
    json_t *doc, *v, *cols, *formats;
    const char *key;
    int rc = TRACE_OK;

    *out = NULL;
    if (!(doc = json_loadf(in, JSON_REJECT_DUPLICATES, &jerr)))
        return trace_fail(TRACE_EINVAL, "mapping: line %d: %s", jerr.line,
                          jerr.text);
    if (!(m = calloc(1, sizeof(*m)))) {
        json_decref(doc);
        return trace_fail(TRACE_ENOMEM, "mapping: out of memory");
    }
    m->doc = doc;
    m->header = 1;
    m->delim = ',';
    snprintf(m->tz, sizeof(m->tz), "%s", "+08:00");
    if (!json_is_object(doc)) {
        rc = trace_fail(TRACE_EINVAL, "mapping: not a JSON object");
        goto out;
    }
    json_object_foreach(doc, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
            if (strcmp(key, known_keys[i]) == 0)
                break;
        if (i == sizeof(known_keys) / sizeof(known_keys[0])) {
            rc = trace_fail(TRACE_EINVAL, "mapping: unknown key \"%s\"", key);
            goto out;
        }
    }
    v = json_object_get(doc, "type");
    if (!json_is_string(v) || !event_type_find(json_string_value(v))) {
        rc = trace_fail(TRACE_EINVAL, "mapping: unknown event type \"%s\"",
                        json_is_string(v) ? json_string_value(v) : "(none)");
        goto out;
    }
    m->type = json_string_value(v);
    if ((v = json_object_get(doc, "header"))) {
        if (!json_is_boolean(v)) {
            rc = trace_fail(TRACE_EINVAL,
                            "mapping: \"header\" is true or false");
            goto out;
        }
        m->header = json_is_true(v);
    }
    if ((v = json_object_get(doc, "delimiter"))) {
        const char *d = json_string_value(v);
        if (!d || strlen(d) != 1 || d[0] == '"' || d[0] == '\n' ||
            d[0] == '\r') {
            rc = trace_fail(TRACE_EINVAL,
                            "mapping: \"delimiter\" is one character");
            goto out;
        }
        m->delim = d[0];
    }
    if ((v = json_object_get(doc, "tz"))) {
        if (!json_is_string(v) || !valid_tz(json_string_value(v))) {
            rc = trace_fail(TRACE_EINVAL,
                            "mapping: \"tz\" is Z or +HH:MM / -HH:MM");
            goto out;
        }
        snprintf(m->tz, sizeof(m->tz), "%s", json_string_value(v));
    }
    m->fixed = json_object_get(doc, "fixed");
    if (m->fixed && !json_is_object(m->fixed)) {
        rc = trace_fail(TRACE_EINVAL, "mapping: \"fixed\" is an object");
        goto out;
    }
    m->units = json_object_get(doc, "units");
    if (m->units && !json_is_object(m->units)) {
        rc = trace_fail(TRACE_EINVAL, "mapping: \"units\" is an object");
        goto out;
    }
    formats = json_object_get(doc, "formats");
    if (formats && !json_is_object(formats)) {
        rc = trace_fail(TRACE_EINVAL, "mapping: \"formats\" is an object");
        goto out;
    }
    cols = json_object_get(doc, "columns");
    if (!json_is_object(cols) || json_object_size(cols) == 0) {
        rc = trace_fail(TRACE_EINVAL,
                        "mapping: \"columns\" is an object naming at least "
                        "one column");
        goto out;
    }
    if (!(m->f = calloc(json_object_size(cols), sizeof(*m->f)))) {
        rc = trace_fail(TRACE_ENOMEM, "mapping: out of memory");
        goto out;
    }
    json_object_foreach(cols, key, v)
    {
        struct field *f = &m->f[m->nf];
        const char *fmt = NULL;
        json_t *fv;

        if (!*key || strcmp(key, "type") == 0 || key[0] == '.' ||
            key[strlen(key) - 1] == '.') {
            rc =
                trace_fail(TRACE_EINVAL, "mapping: bad field name \"%s\"", key);
            goto out;
        }
        if (m->fixed && json_object_get(m->fixed, key)) {
            rc = trace_fail(TRACE_EINVAL,
                            "mapping: field \"%s\" is both fixed and mapped",
                            key);
            goto out;
        }
        if (!(f->name = strdup(key))) {
            rc = trace_fail(TRACE_ENOMEM, "mapping: out of memory");
            goto out;
        }
        m->nf++;
        f->index = -1;
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 1 || json_integer_value(v) > 65536) {
                rc = trace_fail(TRACE_EINVAL,
                                "mapping: field \"%s\": column numbers start "
                                "at 1",
                                key);
                goto out;
            }
            f->index = (long)json_integer_value(v) - 1;
        } else if (json_is_string(v) && !m->header) {
            const char *s = json_string_value(v);
            if (!all_digits(s) || atol(s) < 1 || strlen(s) > 5) {
                rc = trace_fail(TRACE_EINVAL,
                                "mapping: field \"%s\": without a header, "
                                "columns are numbers from 1, not \"%s\"",
                                key, s);
                goto out;
            }
            f->index = atol(s) - 1;
        } else if (json_is_string(v) && *json_string_value(v)) {
            if (!(f->column = strdup(json_string_value(v)))) {
                rc = trace_fail(TRACE_ENOMEM, "mapping: out of memory");
                goto out;
            }
        } else {
            rc = trace_fail(TRACE_EINVAL,
                            "mapping: field \"%s\": a column name or number",
                            key);
            goto out;
        }
        if (strcmp(key, "at") == 0 &&
            (fv = json_object_get(doc, "at_format"))) {
            if (!json_is_string(fv)) {
                rc = trace_fail(TRACE_EINVAL,
                                "mapping: \"at_format\" is a string");
                goto out;
            }
            fmt = json_string_value(fv);
        }
        if (formats && (fv = json_object_get(formats, key))) {
            if (!json_is_string(fv)) {
                rc = trace_fail(TRACE_EINVAL,
                                "mapping: format of \"%s\" is a string", key);
                goto out;
            }
            fmt = json_string_value(fv);
        }
        f->fmt = fmt;
        f->is_unit = strcmp(key, "unit") == 0;
    }
    if (formats) {
        json_object_foreach(formats, key, v) if (!json_object_get(cols, key))
        {
            rc = trace_fail(TRACE_EINVAL,
                            "mapping: a format for \"%s\", which no column "
                            "holds",
                            key);
            goto out;
        }
    }
    if (json_object_get(doc, "at_format") && !json_object_get(cols, "at")) {
        rc = trace_fail(TRACE_EINVAL,
                        "mapping: \"at_format\" but no column holds \"at\"");
        goto out;
    }
    if (m->fixed && json_object_get(m->fixed, "type")) {
        rc = trace_fail(TRACE_EINVAL,
                        "mapping: the type is \"type\", not a fixed field");
        goto out;
    }
    *out = m;
    m = NULL;
out:
    trace_csvmap_free(m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading records                                                      */

struct rec {
    char *buf; /* fields, each NUL-terminated */
    size_t len, cap;
    size_t *off; /* start of each field in buf */
    size_t n, ncap;
};

static int rec_add(struct rec *r, char c)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        char *b;
        if (r->len >= TRACE_MAX_LINE)
            return TRACE_EINVAL;
        if (!(b = realloc(r->buf, cap)))
            return TRACE_ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    r->buf[r->len++] = c;
    return TRACE_OK;
}

static int rec_field(struct rec *r)
{
    if (r->n == r->ncap) {
        size_t cap = r->ncap ? r->ncap * 2 : 32;
        size_t *o = realloc(r->off, cap * sizeof(*o));
        if (!o)
            return TRACE_ENOMEM;
        r->off = o;
        r->ncap = cap;
    }
    r->off[r->n++] = r->len;
    return TRACE_OK;
}

static int rec_fail(int rc, unsigned long line)
{
    if (rc == TRACE_ENOMEM)
        return trace_fail(rc, "line %lu: out of memory", line);
    return trace_fail(rc, "line %lu: a record longer than %u bytes", line,
                      TRACE_MAX_LINE);
}

/* One record into r: 1, 0 at the end of the input, or an error.  *line
 * counts the line breaks consumed. */
static int read_record(struct rec *r, FILE *in, char delim, unsigned long *line,
                       int *bom)
{
    unsigned long start = *line + 1;
    int c, d, quoted = 0, was_quoted = 0, any = 0, rc;
    size_t flen = 0;

    r->len = r->n = 0;
    if ((rc = rec_field(r)) != TRACE_OK)
        return rec_fail(rc, start);
    for (;;) {
        c = getc(in);
        if (c == EOF) {
            if (ferror(in))
                return trace_fail(TRACE_EUNAVAIL, "line %lu: read error",
                                  *line + 1);
            if (quoted)
                return trace_fail(TRACE_EINVAL,
                                  "line %lu: a quoted field is never closed",
                                  start);
            if (!any)
                return 0;
            break;
        }
        any = 1;
        if (quoted) {
            if (c == '"') {
                if ((d = getc(in)) == '"')
                    c = '"';
                else {
                    quoted = 0;
                    if (d != EOF)
                        ungetc(d, in);
                    continue;
                }
            } else if (c == '\r') {
                if ((d = getc(in)) == '\n')
                    c = '\n'; /* CRLF inside quotes: one line break */
                else if (d != EOF)
                    ungetc(d, in);
                if (c == '\n')
                    ++*line;
            } else if (c == '\n')
                ++*line;
        } else if (c == '"' && flen == 0 && !was_quoted) {
            quoted = was_quoted = 1;
            continue;
        } else if (c == delim) {
            if ((rc = rec_add(r, '\0')) != TRACE_OK ||
                (rc = rec_field(r)) != TRACE_OK)
                return rec_fail(rc, start);
            flen = 0;
            was_quoted = 0;
            continue;
        } else if (c == '\r' || c == '\n') {
            if (c == '\r' && (d = getc(in)) != '\n' && d != EOF)
                ungetc(d, in);
            ++*line;
            break;
        }
        if ((rc = rec_add(r, (char)c)) != TRACE_OK)
            return rec_fail(rc, start);
        flen++;
        if (*bom && r->len == 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) {
            r->len = flen = 0; /* the UTF-8 BOM, dropped */
            *bom = 0;
        }
    }
    *bom = 0;
    if ((rc = rec_add(r, '\0')) != TRACE_OK)
        return rec_fail(rc, start);
    return 1;
}

static const char *cell(const struct rec *r, size_t i)
{
    return r->buf + r->off[i];
}

/* A local time in `fmt` -> RFC 3339 with the mapping's offset. */
static int convert_time(char *out, size_t cap, const char *s, const char *fmt,
                        const char *tz)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = 1;
    end = strptime(s, fmt, &tm);
    while (end && *end == ' ')
        end++;
    if (!end || *end)
        return -1;
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec > 59 ? 59 : tm.tm_sec, tz);
    return 0;
}

/* Sets obj[name] (a dotted name goes one object down per dot). */
static int set_path(json_t *obj, const char *name, json_t *v)
{
    const char *dot;

    while ((dot = strchr(name, '.'))) {
        char key[256];
        json_t *sub;
        size_t n = (size_t)(dot - name);
        if (n >= sizeof(key)) {
            json_decref(v);
            return -1;
        }
        memcpy(key, name, n);
        key[n] = '\0';
        sub = json_object_get(obj, key);
        if (!sub) {
            if (!(sub = json_object())) {
                json_decref(v);
                return -1;
            }
            if (json_object_set_new(obj, key, sub) != 0) {
                json_decref(v);
                return -1;
            }
        } else if (!json_is_object(sub)) {
            json_decref(v);
            return -1;
        }
        obj = sub;
        name = dot + 1;
    }
    return json_object_set_new(obj, name, v);
}

/* Resolves header names to column numbers; TRACE_EINVAL for one missing. */
static int resolve_header(struct field *f, size_t nf, const struct rec *r,
                          unsigned long line)
{
    for (size_t i = 0; i < nf; i++) {
        if (!f[i].column)
            continue;
        f[i].index = -1;
        for (size_t j = 0; j < r->n; j++) {
            const char *h = cell(r, j);
            size_t hl;
            while (*h == ' ' || *h == '\t')
                h++;
            hl = strlen(h);
            while (hl && (h[hl - 1] == ' ' || h[hl - 1] == '\t'))
                hl--;
            if (hl == strlen(f[i].column) && memcmp(h, f[i].column, hl) == 0) {
                f[i].index = (long)j;
                break;
            }
        }
        if (f[i].index < 0)
            return trace_fail(TRACE_EINVAL,
                              "line %lu: the header has no column \"%s\" "
                              "(mapped to field %s)",
                              line, f[i].column, f[i].name);
    }
    return TRACE_OK;
}

static int reject_row(trace_csvmap_reject_fn reject, void *ctx,
                      unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reject_row(trace_csvmap_reject_fn reject, void *ctx,
                      unsigned long line, const char *fmt, ...)
{
    char msg[1024];
    int n = snprintf(msg, sizeof(msg), "line %lu: ", line);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    return reject ? reject(ctx, line, msg) : 0;
}

/* One data record -> one line; 0, a callback's return, or TRACE_ENOMEM. */
static int map_row(const trace_csvmap *m, const struct field *f,
                   const struct rec *r, unsigned long line,
                   trace_csvmap_line_fn on_line, trace_csvmap_reject_fn reject,
                   void *ctx)
{
    json_t *obj = m->fixed ? json_deep_copy(m->fixed) : json_object();
    char *s = NULL;
    int rc = 0;

    if (!obj || json_object_set_new(obj, "type", json_string(m->type)) != 0) {
        rc = trace_fail(TRACE_ENOMEM, "line %lu: out of memory", line);
        goto out;
    }
    for (size_t i = 0; i < m->nf; i++) {
        const char *v;
        char when[64];
        json_t *u;

        if ((size_t)f[i].index >= r->n) {
            rc = reject_row(reject, ctx, line,
                            "%zu columns, but field %s is in column %ld", r->n,
                            f[i].name, f[i].index + 1);
            goto out;
        }
        v = cell(r, (size_t)f[i].index);
        if (!*v)
            continue; /* an empty cell: the field is absent */
        if (f[i].fmt) {
            if (convert_time(when, sizeof(when), v, f[i].fmt, m->tz) != 0) {
                rc = reject_row(reject, ctx, line,
                                "field %s: \"%.200s\" is no date in the "
                                "format \"%s\"",
                                f[i].name, v, f[i].fmt);
                goto out;
            }
            v = when;
        } else if (f[i].is_unit && m->units &&
                   (u = json_object_get(m->units, v))) {
            if (!json_is_string(u)) {
                rc = reject_row(reject, ctx, line,
                                "unit \"%.200s\": the map's \"units\" gives "
                                "no string",
                                v);
                goto out;
            }
            v = json_string_value(u);
        }
        if (set_path(obj, f[i].name, json_string(v)) != 0) {
            rc = reject_row(reject, ctx, line,
                            "field %s cannot be set (a fixed value is in "
                            "the way, or the value is not UTF-8)",
                            f[i].name);
            goto out;
        }
    }
    if (!(s = json_dumps(obj, JSON_COMPACT))) {
        rc = trace_fail(TRACE_ENOMEM, "line %lu: out of memory", line);
        goto out;
    }
    rc = on_line(ctx, s, strlen(s), line);
out:
    free(s);
    json_decref(obj);
    return rc;
}

int trace_csvmap_read(const trace_csvmap *m, FILE *in,
                      trace_csvmap_line_fn on_line,
                      trace_csvmap_reject_fn reject, void *ctx,
                      unsigned long *rows)
{
    struct rec r = {0};
    struct field *f = NULL;
    unsigned long line = 0, start, nrows = 0;
    int rc, first = 1, got, bom = 1;

    if (rows)
        *rows = 0;
    /* a private copy of the fields: resolving a header writes indexes */
    if (!(f = calloc(m->nf, sizeof(*f)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(f, m->f, m->nf * sizeof(*f));
    for (;;) {
        start = line + 1;
        if ((got = read_record(&r, in, m->delim, &line, &bom)) <= 0) {
            rc = got;
            break;
        }
        if (r.n == 1 && !*cell(&r, 0))
            continue; /* a blank line */
        if (first && m->header) {
            first = 0;
            if ((rc = resolve_header(f, m->nf, &r, start)) != TRACE_OK)
                break;
            continue;
        }
        first = 0;
        nrows++;
        if ((rc = map_row(m, f, &r, start, on_line, reject, ctx)) != 0)
            break;
    }
    if (rc == TRACE_OK && first && m->header)
        rc = trace_fail(TRACE_EINVAL, "line 1: no header: the file is empty");
out:
    if (rows)
        *rows = nrows;
    free(f);
    free(r.buf);
    free(r.off);
    return rc;
}
