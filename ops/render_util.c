/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_util.c - the renderers' building blocks: the bump allocator
 * Results are decoded with, JSON strings, CSV fields, and table cells
 * padded by display width in English or Chinese.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "render_int.h"
#include "trace/trace.h"

struct bump_chunk {
    struct bump_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct bump {
    ProtobufCAllocator a;
    struct bump_chunk *head;
    size_t next_cap;
};

static void *bump_alloc(void *data, size_t n)
{
    struct bump *b = data;
    struct bump_chunk *c = b->head;
    size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

    if (!c || c->cap - c->used < need) {
        size_t cap = b->next_cap > need ? b->next_cap : need;
        if (!(c = malloc(sizeof(*c) + cap)))
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = b->head;
        b->head = c;
        b->next_cap = cap * 2;
    }
    c->used += need;
    return (char *)c->data + c->used - need;
}

static void bump_nofree(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator *ops_bump_new(size_t first)
{
    struct bump *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->a.alloc = bump_alloc;
    b->a.free = bump_nofree;
    b->a.allocator_data = b;
    b->next_cap = first < 4096 ? 4096 : first;
    return &b->a;
}

void ops_bump_free(ProtobufCAllocator *a)
{
    struct bump *b = a ? a->allocator_data : NULL;

    if (!b)
        return;
    while (b->head) {
        struct bump_chunk *c = b->head;
        b->head = c->next;
        free(c);
    }
    free(b);
}

void ops_json_value(FILE *f, const char *val)
{
    if (!val) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void ops_json_str(FILE *f, const char *key, const char *val, int comma)
{
    fprintf(f, "%s\"%s\":", comma ? "," : "", key);
    ops_json_value(f, val);
}

/* ------------------------------------------------------------------ */
/* Language: English or Chinese words in the human-readable output (the
 * --json field names never change).  Columns are padded by display
 * width, a Chinese character taking two columns.  L() and struct col
 * are in render_int.h. */

static int display_width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p < 0x80) {
            w++, p++;
        } else if ((*p & 0xE0) == 0xC0) {
            w++, p++;
            if (*p)
                p++;
        } else {
            int n = (*p & 0xF0) == 0xE0 ? 3 : 4;
            w += 2;
            for (int i = 0; i < n && *p; i++)
                p++;
        }
    }
    return w;
}

/* A value as shown: its Chinese name in a --lang zh table. */
const char *W(const ops_render *r, const char *v)
{
    return r->lang == OPS_LANG_ZH ? trace_zh_name(v) : v;
}

/* s left-aligned in `width` columns (a Chinese character takes two),
 * then a space. */
void cell(FILE *o, const char *s, int width)
{
    int pad = width - display_width(s);
    fprintf(o, "%s%*s ", s, pad > 0 ? pad : 0, "");
}

/* A heading line: each column's word padded to its width (the last one
 * unpadded), separated as the rows are. */
void heading(const ops_render *r, const char *lead, const struct col *c,
             size_t n)
{
    FILE *o = r->out;

    fputs(lead, o);
    for (size_t i = 0; i < n; i++) {
        const char *w = L(r, c[i].en, c[i].zh);
        int width = c[i].width < 0 ? -c[i].width : c[i].width;
        int pad = width - display_width(w);
        if (i)
            fprintf(o, "%*s", c[i].sep ? c[i].sep : 1, "");
        if (c[i].width < 0 && pad > 0)
            fprintf(o, "%*s", pad, "");
        fputs(w, o);
        if (c[i].width > 0 && pad > 0 && i + 1 < n)
            fprintf(o, "%*s", pad, "");
    }
    fputc('\n', o);
}

const char *or_empty(const char *s)
{
    return s ? s : "";
}

void csv_field(FILE *o, const char *v, int last)
{
    int quote = v && strpbrk(v, ",\"\n") != NULL;
    if (quote) {
        fputc('"', o);
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                fputc('"', o);
            fputc(*p, o);
        }
        fputc('"', o);
    } else if (v) {
        fputs(v, o);
    }
    fputc(last ? '\n' : ',', o);
}
