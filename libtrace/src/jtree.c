/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jtree.c - one JSON value parsed into an arena, for readers that look at
 * many small documents (the EPCIS reader's events).
 *
 * Cheaper than building jansson objects: members are a linked list (no
 * hash tables), strings are decoded into the arena, numbers keep their
 * exact text.  Strict as jansson is by default: valid UTF-8, no \u0000,
 * surrogates in pairs, no duplicate member names, nothing after the
 * value; nesting at most JT_MAX_DEPTH.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define JT_MAX_DEPTH 64

struct jp {
    arena *a;
    const char *p, *end;
    char *err;
    size_t errcap;
};

static jt *fail(struct jp *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static jt *fail(struct jp *j, const char *fmt, ...)
{
    va_list ap;

    if (j->err[0])
        return NULL;
    va_start(ap, fmt);
    vsnprintf(j->err, j->errcap, fmt, ap);
    va_end(ap);
    return NULL;
}

static void ws(struct jp *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static jt *node(struct jp *j, uint8_t type)
{
    jt *v = arena_alloc(j->a, sizeof(*v));

    if (!v)
        return fail(j, "out of memory");
    memset(v, 0, sizeof(*v));
    v->type = type;
    return v;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p, 0 if none. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], cp;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string after its opening quote, decoded into the arena. */
static const char *string(struct jp *j, size_t *len)
{
    const char *start = j->p, *q;
    char *out, *o;

    /* the common case: no escape, all ASCII */
    for (q = start; q < j->end && *q != '"' && *q != '\\' &&
                    (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x80;
         q++)
        ;
    if (q < j->end && *q == '"') {
        j->p = q + 1;
        *len = (size_t)(q - start);
        return arena_strdup(j->a, start, *len);
    }
    /* decoded text is never longer than the raw text */
    for (q = start; q < j->end && *q != '"'; q++)
        if (*q == '\\' && q + 1 < j->end)
            q++;
    if (!(out = arena_alloc(j->a, (size_t)(q - start) + 1))) {
        fail(j, "out of memory");
        return NULL;
    }
    o = out;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20) {
            fail(j, "control character in a string");
            return NULL;
        }
        if (c == '\\') {
            unsigned cp, lo;
            if (++j->p >= j->end)
                break;
            switch (*j->p++) {
            case '"':
                *o++ = '"';
                break;
            case '\\':
                *o++ = '\\';
                break;
            case '/':
                *o++ = '/';
                break;
            case 'b':
                *o++ = '\b';
                break;
            case 'f':
                *o++ = '\f';
                break;
            case 'n':
                *o++ = '\n';
                break;
            case 'r':
                *o++ = '\r';
                break;
            case 't':
                *o++ = '\t';
                break;
            case 'u':
                if (hex4(j->p, j->end, &cp)) {
                    fail(j, "invalid \\u escape");
                    return NULL;
                }
                j->p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (j->end - j->p < 6 || j->p[0] != '\\' ||
                        j->p[1] != 'u' || hex4(j->p + 2, j->end, &lo) ||
                        lo < 0xdc00 || lo > 0xdfff) {
                        fail(j, "invalid Unicode surrogate pair");
                        return NULL;
                    }
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    fail(j, "invalid Unicode surrogate");
                    return NULL;
                } else if (cp == 0) {
                    fail(j, "\\u0000 is not allowed");
                    return NULL;
                }
                o += put_utf8(o, cp);
                break;
            default:
                fail(j, "invalid escape");
                return NULL;
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)j->p,
                            (const unsigned char *)j->end);
        if (!n) {
            fail(j, "invalid UTF-8 in a string");
            return NULL;
        }
        memcpy(o, j->p, n);
        o += n;
        j->p += n;
    }
    if (j->p >= j->end) {
        fail(j, "unterminated string");
        return NULL;
    }
    j->p++;
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

static jt *value(struct jp *j, int depth);

static jt *container(struct jp *j, int obj, int depth)
{
    jt *v = node(j, obj ? JT_OBJ : JT_ARR), *last = NULL, *kid;
    const char *key = NULL;
    size_t klen;

    if (!v)
        return NULL;
    if (depth > JT_MAX_DEPTH)
        return fail(j, "nested too deeply");
    ws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
        j->p++;
        return v;
    }
    for (;;) {
        ws(j);
        if (obj) {
            if (j->p >= j->end || *j->p != '"')
                return fail(j, "expected a member name");
            j->p++;
            if (!(key = string(j, &klen)))
                return NULL;
            if (strlen(key) != klen)
                return fail(j, "a member name with a NUL");
            for (jt *k = v->kid; k; k = k->next)
                if (strcmp(k->key, key) == 0)
                    return fail(j, "duplicate member \"%.60s\"", key);
            ws(j);
            if (j->p >= j->end || *j->p != ':')
                return fail(j, "expected ':'");
            j->p++;
        }
        if (!(kid = value(j, depth + 1)))
            return NULL;
        kid->key = key;
        if (last)
            last->next = kid;
        else
            v->kid = kid;
        last = kid;
        v->n++;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            return v;
        }
        return fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static jt *literal(struct jp *j, const char *word, uint8_t type)
{
    size_t n = strlen(word);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return fail(j, "invalid literal");
    j->p += n;
    return node(j, type);
}

/* A number as JSON writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static jt *number(struct jp *j)
{
    const char *s = j->p, *p = s, *e = j->end;
    jt *v;

    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0')
        p++;
    else if (p < e && *p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return fail(j, "invalid number");
    if (p < e && *p == '.') {
        if (++p >= e || *p < '0' || *p > '9')
            return fail(j, "invalid number");
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return fail(j, "invalid number");
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (!(v = node(j, JT_NUM)))
        return NULL;
    v->len = (size_t)(p - s);
    if (!(v->s = arena_strdup(j->a, s, v->len)))
        return fail(j, "out of memory");
    j->p = p;
    return v;
}

static jt *value(struct jp *j, int depth)
{
    jt *v;

    ws(j);
    if (j->p >= j->end)
        return fail(j, "unexpected end");
    switch (*j->p) {
    case '{':
    case '[':
        j->p++;
        return container(j, j->p[-1] == '{', depth);
    case '"':
        j->p++;
        if (!(v = node(j, JT_STR)))
            return NULL;
        if (!(v->s = string(j, &v->len)))
            return NULL;
        return v;
    case 't':
        return literal(j, "true", JT_TRUE);
    case 'f':
        return literal(j, "false", JT_FALSE);
    case 'n':
        return literal(j, "null", JT_NULL);
    default:
        return number(j);
    }
}

jt *jt_parse(arena *a, const char *text, size_t len, char *err, size_t errcap)
{
    struct jp j = {a, text, text + len, err, errcap};
    jt *v;

    err[0] = '\0';
    if (!(v = value(&j, 1)))
        return NULL;
    ws(&j);
    if (j.p != j.end)
        return fail(&j, "text after the value");
    return v;
}

jt *jt_get(const jt *o, const char *key)
{
    if (!o || o->type != JT_OBJ)
        return NULL;
    for (jt *k = o->kid; k; k = k->next)
        if (strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

const char *jt_str(const jt *o, const char *key)
{
    const jt *v = jt_get(o, key);
    return v && v->type == JT_STR ? v->s : NULL;
}
