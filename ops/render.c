/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.c - what tracectl prints for the rows of a typed operation:
 * human-readable tables by default, JSON Lines with --json (SPEC 5's
 * field names).  The input is only the Call and its Items, whether they
 * were computed in process or came from traced, so both print the same
 * bytes.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "trace/trace.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x
#define I(x) TRACE__OPS__V1__ITEM__ITEM_##x

#define MAX_INDENT 64 /* levels of a trace's indentation */

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
 * width, a Chinese character taking two columns. */

#define L(r, en, zh) ((r)->lang == OPS_LANG_ZH ? (zh) : (en))

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

struct col {
    const char *en, *zh;
    int width; /* columns; negative: right-aligned */
    int sep;   /* spaces before it (0: one) */
};

/* A value as shown: its Chinese name in a --lang zh table. */
static const char *W(const ops_render *r, const char *v)
{
    return r->lang == OPS_LANG_ZH ? trace_zh_name(v) : v;
}

/* s left-aligned in `width` columns (a Chinese character takes two),
 * then a space. */
static void cell(FILE *o, const char *s, int width)
{
    int pad = width - display_width(s);
    fprintf(o, "%s%*s ", s, pad > 0 ? pad : 0, "");
}

/* A heading line: each column's word padded to its width (the last one
 * unpadded), separated as the rows are. */
static void heading(const ops_render *r, const char *lead, const struct col *c,
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

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static void csv_field(FILE *o, const char *v, int last)
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

static void holding(ops_render *r, const Trace__Ops__V1__Holding *h)
{
    FILE *o = r->out;
    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "party", h->party, 0);
        ops_json_str(o, "site", h->site, 1);
        ops_json_str(o, "substance", h->substance, 1);
        ops_json_str(o, "lot", h->lot, 1);
        ops_json_str(o, "qty", h->qty, 1);
        ops_json_str(o, "unit", h->unit, 1);
        fputs("}\n", o);
        return;
    }
    if (r->csv) {
        csv_field(o, h->party, 0);
        csv_field(o, h->site, 0);
        csv_field(o, h->substance, 0);
        csv_field(o, h->lot, 0);
        csv_field(o, h->qty, 0);
        csv_field(o, h->unit, 1);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {{"SUBSTANCE", "物质", 24, 0},
                                       {"LOT", "批号", 20, 0},
                                       {"SITE", "地点", 12, 0},
                                       {"QTY", "数量", -18, 0},
                                       {"UNIT", "单位", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-24s %-20s %-12s %18s %s\n", h->substance, h->lot, h->site,
            h->qty, h->unit);
}

/* Where a hop without a receiving party ends, by its kind. */
static const char *end_of_hop(const ops_render *r, const char *kind)
{
    static const struct {
        const char *kind, *en, *zh;
    } ends[] = {
        {"dispense", "(dispensed to patients)", "(发药给患者)"},
        {"consume", "(used in production)", "(生产使用)"},
        {"destroy", "(destroyed)", "(销毁)"},
        {"loss", "(lost)", "(丢失)"},
    };
    for (size_t i = 0; i < sizeof(ends) / sizeof(*ends); i++)
        if (strcmp(kind, ends[i].kind) == 0)
            return L(r, ends[i].en, ends[i].zh);
    return L(r, "(gone)", "(去向终点)");
}

/* A party id, with its registered name beside it when known. */
static void who(FILE *o, const char *id, const char *name)
{
    fputs(id, o);
    if (name && name[0])
        fprintf(o, " (%s)", name);
}

static void hop(ops_render *r, const Trace__Ops__V1__Hop *h)
{
    FILE *o = r->out;
    int depth;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "lot", h->lot, 0);
        ops_json_str(o, "substance", h->substance, 1);
        ops_json_str(o, "from", h->from, 1);
        ops_json_str(o, "to", h->to, 1);
        ops_json_str(o, "qty", h->qty, 1);
        ops_json_str(o, "unit", h->unit, 1);
        ops_json_str(o, "event", h->event, 1);
        ops_json_str(o, "at", h->at, 1);
        ops_json_str(o, "kind", h->kind, 1);
        ops_json_str(o, "party", h->party, 1);
        ops_json_str(o, "into_lot", h->into_lot, 1);
        fprintf(o, ",\"depth\":%d", (int)h->depth);
        ops_json_str(o, "from_name", h->from_name, 1);
        ops_json_str(o, "to_name", h->to_name, 1);
        ops_json_str(o, "ref", h->ref, 1);
        ops_json_str(o, "leaves", h->leaves, 1);
        ops_json_str(o, "holder", h->holder, 1);
        ops_json_str(o, "holder_name", h->holder_name, 1);
        ops_json_str(o, "held", h->held, 1);
        ops_json_str(o, "held_unit", h->held_unit, 1);
        if (h->vehicle)
            ops_json_str(o, "vehicle", h->vehicle, 1);
        fputs("}\n", o);
        return;
    }
    /* a walk back from one of several holders: a line naming it first */
    if (h->holder && strcmp(h->holder, r->holder) != 0) {
        snprintf(r->holder, sizeof(r->holder), "%s", h->holder);
        who(o, h->holder, h->holder_name);
        if (h->held)
            fprintf(o, L(r, " holds %s %s of %s\n", " 持有 %s %s（批号 %s）\n"),
                    h->held, or_empty(h->held_unit), h->lot);
        else
            fprintf(o, L(r, " held %s\n", " 曾持有 %s\n"), h->lot);
    }
    /* indent by depth, at most MAX_INDENT levels (a depth comes from the
     * ledger or a daemon: never a width that overflows) */
    depth = h->depth < 0            ? 0
            : h->depth > MAX_INDENT ? MAX_INDENT
                                    : (int)h->depth;
    if (h->holder && depth < MAX_INDENT)
        depth++;
    fprintf(o, "%*s", 2 * depth, "");
    cell(o, W(r, h->kind), 9); /* 销售, 收货 ... in zh */
    fprintf(o, "%s ", h->lot);
    if (h->into_lot) {
        who(o, or_empty(h->from), h->from_name);
        fprintf(o, ": %s %s", L(r, "into lot", "投入批号"), h->into_lot);
    } else {
        if (h->from)
            who(o, h->from, h->from_name);
        else
            fputs(L(r, "(origin)", "(来源)"), o);
        fputs(" -> ", o);
        if (h->to)
            who(o, h->to, h->to_name);
        else
            fputs(end_of_hop(r, h->kind), o);
    }
    fprintf(o, "  %s %s  [%s %s/%s]", or_empty(h->qty), or_empty(h->unit),
            h->at, h->party, h->event);
    if (h->ref && strcmp(h->kind, "receipt") == 0)
        fprintf(o, L(r, "  receipt of sale %s", "  对应销售 %s"), h->ref);
    else if (h->ref) /* a custody hop (SPEC 12) */
        fprintf(o, L(r, "  carrying sale %s", "  承运销售 %s"), h->ref);
    if (h->vehicle)
        fprintf(o, L(r, "  vehicle %s", "  车辆 %s"), h->vehicle);
    fputc('\n', o);
}

static void permit(ops_render *r, const Trace__Ops__V1__Permit *p)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "permit", p->permit, 0);
        ops_json_str(o, "kind", p->kind, 1);
        ops_json_str(o, "holder", p->holder, 1);
        ops_json_str(o, "counterparty", p->counterparty, 1);
        ops_json_str(o, "substance", p->substance, 1);
        ops_json_str(o, "uses", p->uses, 1);
        ops_json_str(o, "valid_from", p->valid_from, 1);
        ops_json_str(o, "valid_until", p->valid_until, 1);
        ops_json_str(o, "status", p->status, 1);
        ops_json_str(o, "budget", p->budget, 1);
        ops_json_str(o, "used", p->used, 1);
        ops_json_str(o, "remaining", p->remaining, 1);
        ops_json_str(o, "unit", p->unit, 1);
        ops_json_str(o, "issuer", p->issuer, 1);
        if (p->used_overflow)
            fputs(",\"used_overflow\":true", o);
        fputs(",\"events\":[", o);
        for (size_t i = 0; i < p->n_events; i++) {
            const Trace__Ops__V1__PermitUse *u = p->events[i];
            fputs(i ? ",{" : "{", o);
            ops_json_str(o, "party", u->party, 0);
            ops_json_str(o, "id", u->id, 1);
            ops_json_str(o, "role", u->role, 1);
            ops_json_str(o, "at", u->at, 1);
            ops_json_str(o, "qty", u->qty, 1);
            fprintf(o, ",\"counted\":%s", u->counted ? "true" : "false");
            ops_json_str(o, "reason", u->reason, 1);
            fputc('}', o);
        }
        fputs("]}\n", o);
        return;
    }
    if (r->lang == OPS_LANG_ZH) {
        fprintf(o, "许可证     %s (%s, %s)\n", p->permit, W(r, p->kind),
                W(r, p->uses));
        fprintf(o, "状态       %s\n", W(r, p->status));
        fprintf(o, "持证单位   %s\n", p->holder);
        fprintf(o, "对方单位   %s\n",
                p->counterparty ? p->counterparty : "(不限)");
        fprintf(o, "物质       %s\n", p->substance);
        fprintf(o, "有效期     %s .. %s\n", p->valid_from, p->valid_until);
        fprintf(o, "核定数量   %s %s\n已核销     %s %s\n剩余       %s %s\n",
                p->budget, p->unit, p->used, p->unit, p->remaining, p->unit);
        if (p->used_overflow)
            fprintf(o, "注         核销量之和超出可表示的最大数量：已核销与剩余"
                       "为界限值\n");
        fprintf(o, "签发       %s\n", p->issuer);
        fprintf(o, "引用       %zu\n", p->n_events);
        for (size_t i = 0; i < p->n_events; i++) {
            const Trace__Ops__V1__PermitUse *u = p->events[i];
            fprintf(o, "  %s  %-9s %s/%s  %s %s  %s%s\n", u->at, u->role,
                    u->party, u->id, u->qty, p->unit,
                    u->counted ? "已核销" : "未计入：",
                    u->counted ? "" : or_empty(u->reason));
        }
        return;
    }
    fprintf(o, "permit     %s (%s, %s-use)\n", p->permit, p->kind, p->uses);
    fprintf(o, "status     %s\n", p->status);
    fprintf(o, "holder     %s\n", p->holder);
    fprintf(o, "counter    %s\n", p->counterparty ? p->counterparty : "(any)");
    fprintf(o, "substance  %s\n", p->substance);
    fprintf(o, "valid      %s .. %s\n", p->valid_from, p->valid_until);
    fprintf(o, "budget     %s %s\nused       %s %s\nremaining  %s %s\n",
            p->budget, p->unit, p->used, p->unit, p->remaining, p->unit);
    if (p->used_overflow)
        fprintf(o, "note       the write-offs sum beyond the largest "
                   "representable quantity: used and remaining are "
                   "bounds\n");
    fprintf(o, "issued by  %s\n", p->issuer);
    fprintf(o, "citations  %zu\n", p->n_events);
    for (size_t i = 0; i < p->n_events; i++) {
        const Trace__Ops__V1__PermitUse *u = p->events[i];
        fprintf(o, "  %s  %-9s %s/%s  %s %s  %s%s\n", u->at, u->role, u->party,
                u->id, u->qty, p->unit,
                u->counted ? "written off" : "not counted: ",
                u->counted ? "" : or_empty(u->reason));
    }
}

static void party(ops_render *r, const Trace__Ops__V1__Party *p)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "party", p->party, 0);
        ops_json_str(o, "name", p->name, 1);
        ops_json_str(o, "kind", p->kind, 1);
        ops_json_str(o, "region", p->region, 1);
        fputs(",\"licenses\":[", o);
        for (size_t i = 0; i < p->n_licenses; i++) {
            if (i)
                fputc(',', o);
            ops_json_value(o, p->licenses[i]);
        }
        fputc(']', o);
        ops_json_str(o, "status", p->status, 1);
        fprintf(o, ",\"keys\":%u", (unsigned)p->keys);
        ops_json_str(o, "registered_by", p->registered_by, 1);
        if (p->gln)
            ops_json_str(o, "gln", p->gln, 1);
        if (p->n_sites) {
            fputs(",\"sites\":[", o);
            for (size_t i = 0; i < p->n_sites; i++) {
                fputs(i ? ",{" : "{", o);
                ops_json_str(o, "site", p->sites[i]->site, 0);
                ops_json_str(o, "sgln", p->sites[i]->sgln, 1);
                fputc('}', o);
            }
            fputc(']', o);
        }
        fputs("}\n", o);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {
            {"PARTY", "单位代码", 20, 0},    {"KIND", "类型", 12, 0},
            {"REGION", "地区", 8, 0},        {"STATUS", "状态", 9, 0},
            {"LICENCES", "许可范围", 26, 0}, {"NAME", "名称", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-20s ", p->party);
    cell(o, W(r, p->kind), 12);
    fprintf(o, "%-8s ", p->region);
    cell(o, W(r, p->status), 9);
    {
        int w = 0;
        for (size_t i = 0; i < p->n_licenses; i++)
            w += fprintf(o, "%s%s", i ? "," : "", p->licenses[i]);
        if (!p->n_licenses)
            w += fprintf(o, "-");
        fprintf(o, "%*s %s\n", w < 26 ? 26 - w : 0, "", p->name);
    }
}

/* products: a line per product */
static void product(ops_render *r, const Trace__Ops__V1__Product *p)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "gtin", p->gtin, 0);
        ops_json_str(o, "substance", p->substance, 1);
        fputs(",\"content\":{", o);
        ops_json_str(o, "qty", p->content, 0);
        ops_json_str(o, "unit", p->content_unit, 1);
        fprintf(o, "},\"units_per_pack\":%u", (unsigned)p->units_per_pack);
        ops_json_str(o, "name", p->name, 1);
        ops_json_str(o, "form", p->form, 1);
        ops_json_str(o, "registered_by", p->registered_by, 1);
        fputs("}\n", o);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {
            {"GTIN", "商品条码", 14, 0}, {"SUBSTANCE", "物质", 18, 0},
            {"CONTENT", "含量", -10, 0}, {"UNIT", "单位", 5, 0},
            {"PER PACK", "每包", -8, 0}, {"FORM", "剂型", 12, 0},
            {"NAME", "名称", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-14s %-18s %10s %-5s %8u ", p->gtin, p->substance, p->content,
            p->content_unit, (unsigned)p->units_per_pack);
    cell(o, p->form ? p->form : "-", 12);
    fprintf(o, "%s\n", p->name);
}

/* credit: the score and grade, then a line per factor */
static void credit(ops_render *r, const Trace__Ops__V1__CreditScore *c)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "party", c->party, 0);
        ops_json_str(o, "name", c->name, 1);
        ops_json_str(o, "from", c->from, 1);
        ops_json_str(o, "to", c->to, 1);
        fprintf(o, ",\"score\":%u", (unsigned)c->score);
        ops_json_str(o, "grade", c->grade, 1);
        if (c->scopes)
            ops_json_str(o, "scopes", c->scopes, 1);
        fputs(",\"factors\":[", o);
        for (size_t i = 0; i < c->n_factors; i++) {
            const Trace__Ops__V1__CreditFactor *f = c->factors[i];
            fputs(i ? ",{" : "{", o);
            ops_json_str(o, "factor", f->factor, 0);
            fprintf(o, ",\"count\":%u,\"weight\":%g,\"points\":%g}",
                    (unsigned)f->count, f->weight, f->points);
        }
        fputs("]}\n", o);
        return;
    }
    fprintf(o, "%s %s%s%s%s\n", L(r, "credit of", "信用评价"), c->party,
            c->name ? " (" : "", c->name ? c->name : "", c->name ? ")" : "");
    fprintf(o, "%s %s .. %s\n", L(r, "over", "评价期间"), c->from, c->to);
    if (c->scopes)
        fprintf(o, "%s %s\n",
                L(r, "counted within scopes", "仅统计本部门职责范围"),
                c->scopes);
    fprintf(o, "%s %u/100, %s %s\n", L(r, "score", "得分"), (unsigned)c->score,
            L(r, "grade", "信用等级"), c->grade);
    {
        static const struct col cols[] = {{"FACTOR", "因素", 24, 0},
                                          {"COUNT", "次数", -6, 0},
                                          {"WEIGHT", "权重", -7, 0},
                                          {"POINTS", "扣分", -7, 0}};
        heading(r, "", cols, sizeof(cols) / sizeof(*cols));
    }
    for (size_t i = 0; i < c->n_factors; i++) {
        const Trace__Ops__V1__CreditFactor *f = c->factors[i];
        cell(o, r->lang == OPS_LANG_ZH ? f->label_zh : f->factor, 24);
        fprintf(o, "%6u %7g %7g\n", (unsigned)f->count, f->weight, f->points);
    }
}

/* applications: a line per application, its answer last */
static void application(ops_render *r, const Trace__Ops__V1__Application *a)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "party", a->party, 0);
        ops_json_str(o, "id", a->id, 1);
        ops_json_str(o, "at", a->at, 1);
        ops_json_str(o, "kind", a->kind, 1);
        ops_json_str(o, "substance", a->substance, 1);
        ops_json_str(o, "qty", a->qty, 1);
        ops_json_str(o, "unit", a->unit, 1);
        ops_json_str(o, "counterparty", a->counterparty, 1);
        ops_json_str(o, "purpose", a->purpose, 1);
        ops_json_str(o, "valid_from", a->valid_from, 1);
        ops_json_str(o, "valid_until", a->valid_until, 1);
        ops_json_str(o, "uses", a->uses, 1);
        ops_json_str(o, "state", a->state, 1);
        ops_json_str(o, "permit", a->permit, 1);
        ops_json_str(o, "decided_by", a->decided_by, 1);
        ops_json_str(o, "decision", a->decision, 1);
        ops_json_str(o, "decided_at", a->decided_at, 1);
        ops_json_str(o, "reason", a->reason, 1);
        fprintf(o, ",\"days\":%u}\n", (unsigned)a->days);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {
            {"APPLICANT", "申请单位", 20, 0}, {"APPLICATION", "申请号", 12, 0},
            {"KIND", "种类", 17, 0},          {"SUBSTANCE", "物质", 18, 0},
            {"QTY", "数量", -10, 0},          {"UNIT", "单位", 5, 0},
            {"STATE", "状态", 9, 0},          {"DAYS", "工作日", -6, 0},
            {"ANSWER", "审批结果", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-20s ", a->party);
    cell(o, a->id, 12);
    cell(o, W(r, a->kind), 17);
    fprintf(o, "%-18s %10s %-5s ", a->substance, a->qty, a->unit);
    cell(o, W(r, a->state), 9);
    fprintf(o, "%6u ", (unsigned)a->days);
    if (a->permit)
        fprintf(o, L(r, "permit %s (%s, %s)\n", "许可证 %s（%s，%s）\n"),
                a->permit, or_empty(a->decided_by), or_empty(a->decided_at));
    else if (a->reason)
        fprintf(o, L(r, "%s (%s, %s)\n", "%s（%s，%s）\n"), a->reason,
                or_empty(a->decided_by), or_empty(a->decided_at));
    else
        fprintf(o, L(r, "- (made %s)\n", "-（%s 提交）\n"), a->at);
}

/* permit list: a line per permit (show prints the whole permit) */
static void permit_row(ops_render *r, const Trace__Ops__V1__Permit *p)
{
    if (r->rows == 0) {
        static const struct col c[] = {
            {"PERMIT", "许可证", 20, 0},   {"KIND", "种类", 17, 0},
            {"HOLDER", "持证单位", 20, 0}, {"SUBSTANCE", "物质", 18, 0},
            {"STATUS", "状态", 13, 0},     {"REMAINING", "剩余", -14, 0},
            {"UNIT", "单位", 5, 0},        {"VALID UNTIL", "有效期至", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(r->out, "%-20s ", p->permit);
    cell(r->out, W(r, p->kind), 17);
    fprintf(r->out, "%-20s %-18s ", p->holder, p->substance);
    cell(r->out, W(r, p->status), 13);
    fprintf(r->out, "%14s %-5s %s\n", p->remaining, p->unit, p->valid_until);
}

static void event(ops_render *r, const Trace__Ops__V1__Event *e)
{
    FILE *o = r->out;

    if (r->json) {
        fprintf(o, "{\"seq\":%llu,\"corrected\":%s,\"event\":%s",
                (unsigned long long)e->seq, e->corrected ? "true" : "false",
                e->json);
        fprintf(o, ",\"voided\":%s", e->voided ? "true" : "false");
        ops_json_str(o, "corrected_by", e->corrected_by, 1);
        ops_json_str(o, "corrects", e->corrects, 1);
        fprintf(o, ",\"voids\":%s", e->voids ? "true" : "false");
        ops_json_str(o, "party_name", e->party_name, 1);
        fputs("}\n", o);
        return;
    }
    if (r->csv) {
        char seq[24];
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)e->seq);
        csv_field(o, seq, 0);
        csv_field(o, e->at, 0);
        csv_field(o, e->type, 0);
        csv_field(o, e->party, 0);
        csv_field(o, e->id, 0);
        csv_field(o, e->substance, 0);
        csv_field(o, e->lot, 0);
        csv_field(o, e->qty, 0);
        csv_field(o, e->unit, 0);
        csv_field(o, e->corrected ? "true" : "false", 0);
        csv_field(o, e->voided ? "true" : "false", 0);
        csv_field(o, e->corrected_by, 0);
        csv_field(o, e->corrects, 0);
        csv_field(o, e->voids ? "true" : "false", 0);
        csv_field(o, e->party_name, 1);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {
            {"SEQ", "序号", -8, 0},  {"AT", "时间", 25, 2},
            {"TYPE", "类型", 13, 0}, {"PARTY", "单位", 20, 0},
            {"ID", "编号", 16, 0},   {"SUBSTANCE", "物质", 18, 0},
            {"LOT", "批号", 14, 0},  {"QTY", "数量", 16, 0},
            {"NAME", "名称", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%8llu  %-25s ", (unsigned long long)e->seq, e->at);
    cell(o, W(r, e->type), 13);
    fprintf(o, "%-20s %-16s %-18s %-14s ", e->party, e->id,
            e->substance ? e->substance : "-", e->lot ? e->lot : "-");
    {
        char q[96];
        snprintf(q, sizeof(q), "%s%s%s", or_empty(e->qty),
                 e->qty && e->unit ? " " : "", e->qty ? or_empty(e->unit) : "");
        cell(o, q, 16);
    }
    fputs(e->party_name && e->party_name[0] ? e->party_name : "-", o);
    /* what corrections did: to this event, and what this one does */
    if (e->corrected && e->corrected_by)
        fprintf(o,
                e->voided ? L(r, "  (voided by %s)", "  （已作废：%s）")
                          : L(r, "  (corrected by %s)", "  （已更正：%s）"),
                e->corrected_by);
    else if (e->corrected)
        fputs(L(r, "  (corrected)", "  （已更正）"), o);
    if (e->corrects)
        fprintf(o,
                e->voids ? L(r, "  (voids %s)", "  （作废 %s）")
                         : L(r, "  (corrects %s)", "  （更正 %s）"),
                e->corrects);
    fputc('\n', o);
}

static void head(ops_render *r, const Trace__Ops__V1__HeadState *h)
{
    char hex[65] = "";

    for (size_t i = 0; i < h->head.len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h->head.data[i]);
    if (r->json)
        fprintf(r->out, "{\"size\":%llu,\"head\":\"%s\"}\n",
                (unsigned long long)h->size, hex);
    else
        fprintf(r->out, "%llu entries, head %s\n", (unsigned long long)h->size,
                hex);
}

static void substance(ops_render *r, const Trace__Ops__V1__Substance *s)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "code", s->code, 0);
        ops_json_str(o, "cas", s->cas, 1);
        ops_json_str(o, "name", s->name, 1);
        ops_json_str(o, "dimension", s->dimension, 1);
        ops_json_str(o, "name_zh", s->name_zh, 1);
        fputs(",\"scopes\":[", o);
        for (size_t i = 0; i < s->n_scopes; i++) {
            if (i)
                fputc(',', o);
            ops_json_value(o, s->scopes[i]);
        }
        fputs("]}\n", o);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {{"CODE", "代码", 33, 0},
                                       {"CAS", "CAS号", 12, 0},
                                       {"DIM", "计量", 7, 0},
                                       {"CONTROLS", "管制类别", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-33s %-12s %-7s", s->code, s->cas ? s->cas : "-",
            s->dimension);
    for (size_t i = 0; i < s->n_scopes; i++)
        fprintf(o, " %s", s->scopes[i]);
    fputc('\n', o);
}

/* ------------------------------------------------------------------ */
/* The special register (专用账册): per-day items in, per-entry rows out.
 *
 * --json prints each day as it comes (with its entries).  The other forms
 * print what an inspector reads: a heading (at the first day), the
 * opening balance as the first row, one row per entry with the running
 * balance after it, no row for a day without entries, and the period's
 * totals at the end (ops_render_end, from the last day, kept in r->reg). */

/* The title of a register of a substance of `category`. */
static const char *register_title(const ops_render *r, const char *category)
{
    if (category && strcmp(category, "drug") == 0)
        return L(r, "Special register of narcotic and psychotropic drugs",
                 "麻醉药品和精神药品专用账册");
    if (category && strcmp(category, "precursor") == 0)
        return L(r, "Special register of precursor chemicals",
                 "易制毒化学品专用账册");
    return L(r, "Special register", "专用账册");
}

/* The substance's name in the chosen language. */
static const char *drug_name(const ops_render *r,
                             const Trace__Ops__V1__RegisterDay *d)
{
    if (r->lang == OPS_LANG_ZH && d->substance_name_zh)
        return d->substance_name_zh;
    return d->substance_name ? d->substance_name : d->substance;
}

/* An entry's "counterparty or prescription": the prescription id of a
 * dispensing, else the supplier, buyer or witness. */
static const char *entry_ref(const Trace__Ops__V1__RegisterLine *l)
{
    return l->rx ? l->rx : l->counterparty;
}

/* What went in or out by an entry: its quantity without the sign. */
static const char *qty_in(const Trace__Ops__V1__RegisterLine *l)
{
    return l->qty[0] == '-' ? "" : l->qty;
}

static const char *qty_out(const Trace__Ops__V1__RegisterLine *l)
{
    return l->qty[0] == '-' ? l->qty + 1 : "";
}

/* The period as the request named it, else from the first day on. */
static void period(const ops_call_t *call, const Trace__Ops__V1__RegisterDay *d,
                   const char **from, const char **to)
{
    const Trace__Ops__V1__Register *g = call->special_register;
    *from = g && g->from_text ? g->from_text : d->date;
    *to = g && g->to_text ? g->to_text : "";
}

static void html_text(FILE *o, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", o);
            break;
        case '<':
            fputs("&lt;", o);
            break;
        case '>':
            fputs("&gt;", o);
            break;
        case '"':
            fputs("&quot;", o);
            break;
        case '\'':
            fputs("&#39;", o);
            break;
        default:
            fputc(*p, o);
        }
    }
}

/* <td>value</td>, escaped; `num` right-aligns it. */
static void html_td(FILE *o, const char *v, int num)
{
    fputs(num ? "<td class=\"n\">" : "<td>", o);
    html_text(o, v);
    fputs("</td>", o);
}

static const struct col reg_cols[] = {
    {"DATE", "日期", 10, 0},     {"KIND", "摘要", 9, 0},
    {"ENTRY", "凭证号", 25, 0},  {"RX / FROM-TO", "处方号/来源去向", 20, 0},
    {"LOT", "批号", 12, 0},      {"SPEC", "规格", 12, 0},
    {"IN", "收入", -10, 0},      {"OUT", "发出", -10, 0},
    {"BALANCE", "结存", -12, 0}, {"HANDLER", "经手人", 10, 2},
    {"CHECKER", "复核人", 0, 0}};

/* The same columns' English headings on the printed page. */
static const char *const reg_cols_page[] = {
    "Date",    "Kind",    "Entry",  "Prescription / from-to",
    "Lot",     "Spec",    "In",     "Out",
    "Balance", "Handler", "Checker"};

/* The heading of a register: title, party, drug, spec, period, unit;
 * then the opening balance as the first row. */
static void register_heading(ops_render *r, const ops_call_t *call,
                             const Trace__Ops__V1__RegisterDay *d)
{
    FILE *o = r->out;
    const char *from, *to;

    period(call, d, &from, &to);
    if (r->html) {
        fputs("<!DOCTYPE html>\n<html lang=\"", o);
        fputs(L(r, "en", "zh-CN"), o);
        fputs("\">\n<head>\n<meta charset=\"utf-8\">\n<title>", o);
        html_text(o, register_title(r, d->category));
        fputs(" - ", o);
        html_text(o, d->party);
        fputs("</title>\n<style>\n"
              "body{font-family:\"Noto Serif CJK SC\",\"SimSun\",serif;"
              "margin:2em;color:#000;background:#fff}\n"
              "h1{text-align:center;font-size:1.5em;margin:0 0 .8em}\n"
              "table{border-collapse:collapse}\n"
              "table.head{margin-bottom:1em}\n"
              "table.head th{text-align:left;font-weight:normal;"
              "padding:.1em 1.2em .1em 0}\n"
              "table.reg{width:100%;font-size:.9em}\n"
              "table.reg th,table.reg td{border:1px solid #000;"
              "padding:.25em .4em}\n"
              "table.reg th{background:#eee}\n"
              "td.n{text-align:right;white-space:nowrap}\n"
              "tr.opening td,tr.total td{font-weight:bold}\n"
              "div.sign{margin-top:3em;display:flex;"
              "justify-content:space-between}\n"
              "div.sign span{display:inline-block;min-width:10em;"
              "border-bottom:1px solid #000}\n"
              "@media print{body{margin:0}"
              "@page{size:A4 landscape;margin:12mm}"
              "thead{display:table-header-group}"
              "tr{page-break-inside:avoid}}\n"
              "</style>\n</head>\n<body>\n<h1>",
              o);
        html_text(o, register_title(r, d->category));
        fputs("</h1>\n<table class=\"head\">\n<tr><th>", o);
        fputs(L(r, "Party", "单位"), o);
        fputs("</th><td>", o);
        html_text(o, r->name);
        fputs(r->name[0] ? " (" : "", o);
        html_text(o, d->party);
        fputs(r->name[0] ? ")" : "", o);
        fputs("</td></tr>\n<tr><th>", o);
        fputs(L(r, "Drug", "品名"), o);
        fputs("</th><td>", o);
        html_text(o, drug_name(r, d));
        fputs(" (", o);
        html_text(o, d->substance);
        fputs(")</td></tr>\n<tr><th>", o);
        fputs(L(r, "Specification", "规格"), o);
        fputs("</th><td>", o);
        html_text(o, d->spec ? d->spec : "-");
        fputs("</td></tr>\n<tr><th>", o);
        fputs(L(r, "Unit", "计量单位"), o);
        fputs("</th><td>", o);
        html_text(o, d->unit);
        fputs("</td></tr>\n<tr><th>", o);
        fputs(L(r, "Period", "期间"), o);
        fputs("</th><td>", o);
        html_text(o, from);
        fputs(L(r, " to ", " 至 "), o);
        html_text(o, to);
        fputs("</td></tr>\n</table>\n<table class=\"reg\">\n<thead><tr>", o);
        for (size_t i = 0; i < sizeof(reg_cols) / sizeof(*reg_cols); i++) {
            fputs("<th>", o);
            fputs(L(r, reg_cols_page[i], reg_cols[i].zh), o);
            fputs("</th>", o);
        }
        fputs("</tr></thead>\n<tbody>\n<tr class=\"opening\">", o);
        html_td(o, d->date, 0);
        html_td(o, L(r, "opening balance", "期初结存"), 0);
        for (int i = 0; i < 6; i++)
            html_td(o, "", 0);
        html_td(o, d->opening, 1);
        html_td(o, "", 0);
        html_td(o, "", 0);
        fputs("</tr>\n", o);
        return;
    }
    if (r->lang == OPS_LANG_ZH) {
        fprintf(o, "%s\n", register_title(r, d->category));
        fprintf(o, "单位      %s%s%s\n", d->party, r->name[0] ? " " : "",
                r->name);
        fprintf(o, "品名      %s (%s)\n", drug_name(r, d), d->substance);
        fprintf(o, "规格      %s\n", d->spec ? d->spec : "-");
        fprintf(o, "计量单位  %s\n", d->unit);
        fprintf(o, "期间      %s 至 %s\n", from, to);
    } else {
        fprintf(o, "%s\n", register_title(r, d->category));
        fprintf(o, "party     %s%s%s\n", d->party, r->name[0] ? " " : "",
                r->name);
        fprintf(o, "drug      %s (%s)\n", drug_name(r, d), d->substance);
        fprintf(o, "spec      %s\n", d->spec ? d->spec : "-");
        fprintf(o, "unit      %s\n", d->unit);
        fprintf(o, "period    %s .. %s\n", from, to);
    }
    heading(r, "", reg_cols, sizeof(reg_cols) / sizeof(*reg_cols));
    fprintf(o, "%-10s ", d->date);
    cell(o, L(r, "opening", "期初结存"), 9);
    fprintf(o, "%*s%10s %10s %12s\n", 25 + 20 + 12 + 12 + 4, "", "", "",
            d->opening);
}

static void register_entry(ops_render *r, const Trace__Ops__V1__RegisterDay *d,
                           const Trace__Ops__V1__RegisterLine *l)
{
    FILE *o = r->out;

    if (r->html) {
        fputs("<tr>", o);
        html_td(o, d->date, 0);
        html_td(o, W(r, l->kind), 0);
        html_td(o, l->id, 0);
        html_td(o, entry_ref(l), 0);
        html_td(o, l->lot, 0);
        html_td(o, l->spec, 0);
        html_td(o, qty_in(l), 1);
        html_td(o, qty_out(l), 1);
        html_td(o, l->balance, 1);
        html_td(o, l->handler, 0);
        html_td(o, l->checker, 0);
        fputs("</tr>\n", o);
        return;
    }
    fprintf(o, "%-10s ", d->date);
    cell(o, W(r, l->kind), 9);
    cell(o, l->id, 25);
    cell(o, l->rx || l->counterparty ? entry_ref(l) : "-", 20);
    cell(o, l->lot ? l->lot : "-", 12);
    cell(o, l->spec ? l->spec : "-", 12);
    fprintf(o, "%10s %10s %12s  ", qty_in(l), qty_out(l),
            l->balance ? l->balance : "?");
    cell(o, l->handler ? l->handler : "-", 10);
    fprintf(o, "%s\n", l->checker ? l->checker : "-");
}

static void keep(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v ? v : "");
}

static void day(ops_render *r, const ops_call_t *call,
                const Trace__Ops__V1__RegisterDay *d)
{
    FILE *o = r->out;

    if (r->json) {
        fputc('{', o);
        ops_json_str(o, "date", d->date, 0);
        ops_json_str(o, "party", d->party, 1);
        ops_json_str(o, "substance", d->substance, 1);
        ops_json_str(o, "unit", d->unit, 1);
        ops_json_str(o, "opening", d->opening, 1);
        ops_json_str(o, "received", d->received, 1);
        ops_json_str(o, "dispensed", d->dispensed, 1);
        ops_json_str(o, "destroyed", d->destroyed, 1);
        ops_json_str(o, "other_out", d->other_out, 1);
        ops_json_str(o, "closing", d->closing, 1);
        fputs(",\"entries\":[", o);
        for (size_t i = 0; i < d->n_entries; i++) {
            const Trace__Ops__V1__RegisterLine *l = d->entries[i];
            fputs(i ? ",{" : "{", o);
            ops_json_str(o, "kind", l->kind, 0);
            ops_json_str(o, "id", l->id, 1);
            ops_json_str(o, "at", l->at, 1);
            ops_json_str(o, "lot", l->lot, 1);
            ops_json_str(o, "qty", l->qty, 1);
            ops_json_str(o, "counterparty", l->counterparty, 1);
            ops_json_str(o, "rx", l->rx, 1);
            ops_json_str(o, "balance", l->balance, 1);
            ops_json_str(o, "handler", l->handler, 1);
            ops_json_str(o, "checker", l->checker, 1);
            ops_json_str(o, "spec", l->spec, 1);
            fputc('}', o);
        }
        fputc(']', o);
        ops_json_str(o, "substance_name", d->substance_name, 1);
        ops_json_str(o, "substance_name_zh", d->substance_name_zh, 1);
        ops_json_str(o, "category", d->category, 1);
        ops_json_str(o, "spec", d->spec, 1);
        ops_json_str(o, "period_received", d->period_received, 1);
        ops_json_str(o, "period_dispensed", d->period_dispensed, 1);
        ops_json_str(o, "period_destroyed", d->period_destroyed, 1);
        ops_json_str(o, "period_other_out", d->period_other_out, 1);
        fputs("}\n", o);
        return;
    }
    keep(r->reg.date, sizeof(r->reg.date), d->date);
    keep(r->reg.unit, sizeof(r->reg.unit), d->unit);
    keep(r->reg.received, sizeof(r->reg.received), d->period_received);
    keep(r->reg.dispensed, sizeof(r->reg.dispensed), d->period_dispensed);
    keep(r->reg.destroyed, sizeof(r->reg.destroyed), d->period_destroyed);
    keep(r->reg.other_out, sizeof(r->reg.other_out), d->period_other_out);
    keep(r->reg.closing, sizeof(r->reg.closing), d->closing);
    if (r->csv) {
        /* the opening row, then a row per entry (kinds and values as in
         * --json, whatever the language) */
        if (r->rows == 0) {
            csv_field(o, d->date, 0);
            csv_field(o, d->party, 0);
            csv_field(o, d->substance, 0);
            csv_field(o, d->unit, 0);
            csv_field(o, "opening", 0);
            for (int i = 0; i < 9; i++)
                csv_field(o, NULL, 0);
            csv_field(o, d->opening, 0);
            csv_field(o, NULL, 0);
            csv_field(o, NULL, 0);
            csv_field(o, d->spec, 1);
        }
        for (size_t i = 0; i < d->n_entries; i++) {
            const Trace__Ops__V1__RegisterLine *l = d->entries[i];
            int out = l->qty[0] == '-';
            int k = !out                               ? 0
                    : strcmp(l->kind, "dispense") == 0 ? 1
                    : strcmp(l->kind, "destroy") == 0  ? 2
                                                       : 3;
            csv_field(o, d->date, 0);
            csv_field(o, d->party, 0);
            csv_field(o, d->substance, 0);
            csv_field(o, d->unit, 0);
            csv_field(o, l->kind, 0);
            csv_field(o, l->id, 0);
            csv_field(o, l->at, 0);
            csv_field(o, l->counterparty, 0);
            csv_field(o, l->rx, 0);
            csv_field(o, l->lot, 0);
            for (int c = 0; c < 4; c++)
                csv_field(o, c == k ? (out ? l->qty + 1 : l->qty) : NULL, 0);
            csv_field(o, l->balance, 0);
            csv_field(o, l->handler, 0);
            csv_field(o, l->checker, 0);
            csv_field(o, l->spec, 1);
        }
        return;
    }
    if (r->rows == 0)
        register_heading(r, call, d);
    for (size_t i = 0; i < d->n_entries; i++)
        register_entry(r, d, d->entries[i]);
}

/* The period's totals and, for HTML, the end of the page. */
static void register_end(ops_render *r, const ops_call_t *call)
{
    FILE *o = r->out;
    const struct {
        const char *en, *zh, *v;
    } t[] = {{"received", "收入", r->reg.received},
             {"dispensed", "发药", r->reg.dispensed},
             {"destroyed", "销毁", r->reg.destroyed},
             {"other out", "其他发出", r->reg.other_out},
             {"closing", "期末结存", r->reg.closing}};
    const size_t nt = sizeof(t) / sizeof(*t);
    const Trace__Ops__V1__Register *g = call->special_register;

    if (r->rows == 0)
        return; /* no day: nothing was printed */
    if (r->csv) {
        /* total,received,dispensed,destroyed,other_out in their
         * columns, the closing balance as the balance */
        csv_field(o, r->reg.date, 0);
        csv_field(o, g->party, 0);
        csv_field(o, g->substance, 0);
        csv_field(o, r->reg.unit, 0);
        csv_field(o, "total", 0);
        for (int i = 0; i < 5; i++)
            csv_field(o, NULL, 0);
        for (size_t i = 0; i < nt; i++)
            csv_field(o, t[i].v, 0);
        csv_field(o, NULL, 0);
        csv_field(o, NULL, 0);
        csv_field(o, NULL, 1);
        return;
    }
    if (r->html) {
        fputs("</tbody>\n</table>\n<table class=\"reg\" "
              "style=\"width:auto;margin-top:1em\">\n<tr class=\"total\">"
              "<th>",
              o);
        fputs(L(r, "Period totals", "本期合计"), o);
        fputs("</th>", o);
        for (size_t i = 0; i < nt; i++) {
            fputs("<th>", o);
            fputs(L(r, t[i].en, t[i].zh), o);
            fputs("</th>", o);
            html_td(o, t[i].v, 1);
        }
        fputs("</tr>\n</table>\n<div class=\"sign\">\n", o);
        fprintf(o,
                "<p>%s<span></span></p>\n<p>%s<span></span></p>\n"
                "<p>%s<span></span></p>\n</div>\n</body>\n</html>\n",
                L(r, "Handler (signature): ", "经手人（签字）："),
                L(r, "Checker (signature): ", "复核人（签字）："),
                L(r, "Person in charge (signature): ", "负责人（签字）："));
        return;
    }
    fputs(L(r, "period totals:", "本期合计："), o);
    for (size_t i = 0; i < nt; i++)
        fprintf(o, "  %s %s", L(r, t[i].en, t[i].zh), t[i].v);
    fprintf(o, " %s\n", r->reg.unit);
}

static void alert(ops_render *r, const Trace__Ops__V1__Alert *a)
{
    FILE *o = r->out;

    if (r->json) {
        fprintf(o, "%s\n", a->json);
        return;
    }
    if (r->csv) {
        csv_field(o, a->id, 0);
        csv_field(o, a->rule, 0);
        csv_field(o, a->severity, 0);
        csv_field(o, a->status, 0);
        csv_field(o, a->party, 0);
        csv_field(o, a->detail, 0);
        csv_field(o, a->ack_by, 0);
        csv_field(o, a->ack_at, 0);
        csv_field(o, a->ack_note, 1);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {
            {"ID", "编号", 17, 0},      {"RULE", "规则", 20, 0},
            {"SEVERITY", "级别", 8, 0}, {"STATUS", "状态", 12, 0},
            {"PARTY", "单位", 20, 0},   {"DETAIL", "详情", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-17s %-20s ", a->id, a->rule);
    cell(o, W(r, a->severity), 8);
    cell(o, W(r, a->status), 12);
    fprintf(o, "%-20s %s\n", a->party ? a->party : "-", a->detail);
    if (a->ack_at && a->ack_by)
        fprintf(o, L(r, "%17s %s by %s at %s: %s\n", "%17s %s：%s 于 %s：%s\n"),
                "", W(r, a->status), a->ack_by, a->ack_at,
                or_empty(a->ack_note));
}

static void summary(ops_render *r, const Trace__Ops__V1__ReconcileSummary *m)
{
    FILE *e = r->err ? r->err : stderr;

    if (m->partial)
        fprintf(e,
                "%llu alerts (%llu new) over %llu events (%llu appended "
                "since the previous run) in %.2f s\n",
                (unsigned long long)m->alerts,
                (unsigned long long)m->new_alerts,
                (unsigned long long)m->events,
                (unsigned long long)m->new_events, m->seconds);
    else
        fprintf(e, "%llu alerts (%llu new) over %llu events in %.2f s\n",
                (unsigned long long)m->alerts,
                (unsigned long long)m->new_alerts,
                (unsigned long long)m->events, m->seconds);
}

static void hex32(char hex[65], const ProtobufCBinaryData *b)
{
    hex[0] = '\0';
    for (size_t i = 0; i < b->len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", b->data[i]);
}

/* verify --deep's fields, after the others of the JSON object. */
static void verified_deep_json(FILE *o, const Trace__Ops__V1__Verified *v)
{
    static const struct {
        const char *name;
        size_t offset;
    } strs[] = {
        {"index", offsetof(Trace__Ops__V1__Verified, index)},
        {"key", offsetof(Trace__Ops__V1__Verified, index_key)},
        {"problem", offsetof(Trace__Ops__V1__Verified, problem)},
        {"expected", offsetof(Trace__Ops__V1__Verified, expected)},
        {"found", offsetof(Trace__Ops__V1__Verified, found)},
    };

    if (!v->has_deep || !v->deep)
        return;
    fprintf(o, ",\"deep\":true,\"index_records\":%llu",
            (unsigned long long)v->index_records);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *x =
            *(const char *const *)((const char *)v + strs[i].offset);
        if (!x)
            continue;
        fprintf(o, ",\"%s\":", strs[i].name);
        ops_json_value(o, x);
    }
}

static void verified(ops_render *r, const Trace__Ops__V1__Verified *v)
{
    FILE *o = r->out;
    char hex[65];

    if (!v->ok) {
        if (r->json) {
            fprintf(o, "{\"ok\":false,\"bad_seq\":%llu,\"reason\":",
                    (unsigned long long)v->bad_seq);
            ops_json_value(o, or_empty(v->reason));
            verified_deep_json(o, v);
            fputs("}\n", o);
        }
        return;
    }
    hex32(hex, &v->head);
    if (r->json) {
        fprintf(o,
                "{\"ok\":true,\"entries\":%llu,\"signatures\":%llu,"
                "\"head\":\"%s\"",
                (unsigned long long)v->entries,
                (unsigned long long)v->signatures, hex);
        if (v->has_checkpoints)
            fprintf(o, ",\"checkpoints\":%llu",
                    (unsigned long long)v->checkpoints);
        verified_deep_json(o, v);
        fputs("}\n", o);
        return;
    }
    fprintf(o,
            L(r, "ok: %llu entries, %llu signatures verified\nhead: %s\n",
              "通过：%llu 条记录，%llu 个签名已验证\n链头：%s\n"),
            (unsigned long long)v->entries, (unsigned long long)v->signatures,
            hex);
    if (v->has_checkpoints && v->checkpoints)
        fprintf(o,
                L(r,
                  "checkpoints: %llu, each signed by the log key and "
                  "matching the Merkle tree\n",
                  "检查点：%llu 个，均由日志密钥签名且与默克尔树一致\n"),
                (unsigned long long)v->checkpoints);
    if (v->has_deep && v->deep)
        fprintf(o,
                L(r, "indexes: %llu records, each as the journal gives it\n",
                  "索引：%llu 条记录，均与日志重算一致\n"),
                (unsigned long long)v->index_records);
}

/* checkpoint: the note as signed (text), its fields (--json), or the
 * log's verifier key (--public-key, either way) */
static void note(ops_render *r, const Trace__Ops__V1__Note *n)
{
    FILE *o = r->out;
    char hex[65];

    if (n->vkey) {
        fprintf(o, "%s\n", n->vkey);
        return;
    }
    if (!r->json) {
        fputs(or_empty(n->note), o);
        return;
    }
    hex32(hex, &n->root);
    fputc('{', o);
    ops_json_str(o, "origin", or_empty(n->origin), 0);
    fprintf(o, ",\"tree_size\":%llu,\"root\":\"%s\"",
            (unsigned long long)n->tree_size, hex);
    ops_json_str(o, "note", or_empty(n->note), 1);
    fputs("}\n", o);
}

/* prove: the bundle as the library wrote it, ending with a newline */
static void bundle(ops_render *r, const Trace__Ops__V1__Bundle *b)
{
    size_t len = strlen(b->json);

    fwrite(b->json, 1, len, r->out);
    if (len == 0 || b->json[len - 1] != '\n')
        fputc('\n', r->out);
}

/* cosign: what was stored */
static void cosigned(ops_render *r, const Trace__Ops__V1__Cosigned *c)
{
    FILE *o = r->out;

    if (!r->json) {
        fprintf(o,
                "stored the cosignature of %s for the checkpoint of %llu "
                "entries of %s\n",
                c->witness, (unsigned long long)c->tree_size, c->origin);
        return;
    }
    fputc('{', o);
    ops_json_str(o, "origin", c->origin, 0);
    fprintf(o, ",\"tree_size\":%llu", (unsigned long long)c->tree_size);
    ops_json_str(o, "witness", c->witness, 1);
    fputs("}\n", o);
}

/* CSV: the header of each operation that has a CSV form (the --json
 * field names, in their order, but for the register's rows). */
static const struct {
    int op_case;
    const char *header;
} csv_headers[] = {
    {C(BALANCE), "party,site,substance,lot,qty,unit"},
    {C(HISTORY), "seq,at,type,party,id,substance,lot,qty,unit,corrected,"
                 "voided,corrected_by,corrects,voids,party_name"},
    {C(ALERTS), "id,rule,severity,status,party,detail,ack_by,ack_at,ack_note"},
    /* the register: a row per entry, after an opening row and before a
     * total row */
    {C(SPECIAL_REGISTER),
     "date,party,substance,unit,kind,id,at,counterparty,rx,lot,received,"
     "dispensed,destroyed,other_out,balance,handler,checker,spec"},
};

int ops_render_has_html(int op_case)
{
    return op_case == C(SPECIAL_REGISTER);
}

int ops_render_has_csv(int op_case)
{
    for (size_t i = 0; i < sizeof(csv_headers) / sizeof(*csv_headers); i++)
        if (csv_headers[i].op_case == op_case)
            return 1;
    return 0;
}

void ops_render_begin(ops_render *r, const ops_call_t *call)
{
    const Trace__Ops__V1__Balance *b;

    r->rows = 0;
    memset(&r->reg, 0, sizeof(r->reg));
    r->holder[0] = '\0';
    if (r->csv && !r->json) {
        /* a UTF-8 BOM: spreadsheet programs then read Chinese text right */
        for (size_t i = 0; i < sizeof(csv_headers) / sizeof(*csv_headers); i++)
            if (csv_headers[i].op_case == (int)call->op_case)
                fprintf(r->out, "\xEF\xBB\xBF%s\n", csv_headers[i].header);
        return;
    }
    /* alerts after a position continue an earlier listing: no heading */
    if (call->op_case == C(ALERTS) && call->alerts->has_after)
        r->rows = 1;
    if (call->op_case != C(BALANCE) || r->json)
        return;
    b = call->balance;
    if (r->lang == OPS_LANG_ZH)
        fprintf(r->out, "%s%s%s 的账面库存（%s%s）\n", b->party,
                r->name[0] ? " " : "", r->name, b->at_text ? "截至 " : "当前",
                b->at_text ? b->at_text : "");
    else
        fprintf(r->out, "book stock of %s%s%s%s %s%s\n", b->party,
                r->name[0] ? " (" : "", r->name, r->name[0] ? ")" : "",
                b->at_text ? "as of " : "now", b->at_text ? b->at_text : "");
}

int ops_render_item(ops_render *r, const ops_call_t *call, const ops_item_t *it)
{
    static const int want[] = {
        [C(BALANCE)] = I(HOLDING),
        [C(TRACE)] = I(HOP),
        [C(PERMIT_SHOW)] = I(PERMIT),
        [C(HISTORY)] = I(EVENT),
        [C(HEAD)] = I(HEAD),
        [C(CATALOG)] = I(SUBSTANCE),
        [C(SPECIAL_REGISTER)] = I(DAY),
        [C(EXPORT)] = I(LINE),
        [C(ALERTS)] = I(ALERT),
        [C(RECONCILE)] = I(ALERT),
        [C(PARTIES)] = I(PARTY),
        [C(PRODUCTS)] = I(PRODUCT),
        [C(CREDIT)] = I(CREDIT),
        [C(PERMIT_LIST)] = I(PERMIT),
        [C(CHECK)] = I(FINDING),
        [C(VERIFY)] = I(VERIFIED),
        [C(BACKUP)] = I(BACKED_UP),
        [C(CHECKPOINT)] = I(NOTE),
        [C(PROVE)] = I(BUNDLE),
        [C(COSIGN)] = I(COSIGNED),
        [C(APPLICATIONS)] = I(APPLICATION),
    };

    /* an item of another operation's kind (a confused or hostile
     * daemon): refused, never printed as something else */
    if ((size_t)call->op_case >= sizeof(want) / sizeof(*want) ||
        (want[call->op_case] != (int)it->item_case &&
         !(call->op_case == C(RECONCILE) && it->item_case == I(SUMMARY))))
        return -1;
    switch (it->item_case) {
    case I(HOLDING):
        holding(r, it->holding);
        break;
    case I(HOP):
        hop(r, it->hop);
        break;
    case I(PERMIT):
        if (call->op_case == C(PERMIT_LIST) && !r->json)
            permit_row(r, it->permit);
        else
            permit(r, it->permit);
        break;
    case I(PARTY):
        party(r, it->party);
        break;
    case I(PRODUCT):
        product(r, it->product);
        break;
    case I(CREDIT):
        credit(r, it->credit);
        break;
    case I(APPLICATION):
        application(r, it->application);
        break;
    case I(FINDING):
        if (r->json) {
            fputc('{', r->out);
            ops_json_str(r->out, "code", it->finding->code, 0);
            ops_json_str(r->out, "message", it->finding->message, 1);
            fputs("}\n", r->out);
        } else {
            fprintf(r->out, "%s%s: %s\n", r->prefix ? r->prefix : "",
                    it->finding->code, it->finding->message);
        }
        break;
    case I(EVENT):
        event(r, it->event);
        r->last_seq = it->event->seq;
        break;
    case I(HEAD):
        head(r, it->head);
        break;
    case I(SUBSTANCE):
        substance(r, it->substance);
        break;
    case I(DAY):
        day(r, call, it->day);
        break;
    case I(LINE):
        fprintf(r->out, "%s\n", it->line->json);
        break;
    case I(ALERT):
        alert(r, it->alert);
        if (it->alert->position > r->last_seq)
            r->last_seq = it->alert->position;
        break;
    case I(SUMMARY):
        summary(r, it->summary);
        return 0; /* not a row */
    case I(VERIFIED):
        verified(r, it->verified);
        break;
    case I(NOTE):
        note(r, it->note);
        break;
    case I(BUNDLE):
        bundle(r, it->bundle);
        break;
    case I(COSIGNED):
        cosigned(r, it->cosigned);
        break;
    case I(BACKED_UP):
        fprintf(r->out,
                "backed up %s to %s (check it with: tracectl --data %s "
                "verify)\n",
                it->backed_up->source, it->backed_up->dest,
                it->backed_up->dest);
        break;
    default:
        return -1;
    }
    r->rows++;
    return 0;
}

void ops_render_end(ops_render *r, const ops_call_t *call, int code)
{
    FILE *o = r->out;

    if (code == 0 && !r->json && call->op_case == C(SPECIAL_REGISTER)) {
        register_end(r, call);
        return;
    }
    if (code != 0 || r->json || (r->csv && ops_render_has_csv(call->op_case)))
        return;
    switch (call->op_case) {
    case C(BALANCE):
        if (r->rows == 0)
            fputs(L(r, "(no stock)\n", "（无库存）\n"), o);
        break;
    case C(TRACE):
        if (r->rows == 0)
            fprintf(o, "%s%s%s%s\n", L(r, "(no movements", "（无流向"),
                    call->trace->party ? L(r, " involving ", "，涉及 ") : "",
                    or_empty(call->trace->party), L(r, ")", "）"));
        break;
    case C(ALERTS):
        if (r->rows == 0 && !r->follow)
            fputs(L(r, "(no alerts)\n", "（无预警）\n"), o);
        break;
    case C(PARTIES):
        if (r->rows == 0)
            fputs(L(r, "(no parties)\n", "（无单位）\n"), o);
        break;
    case C(PRODUCTS):
        if (r->rows == 0)
            fputs(L(r, "(no products)\n", "（无产品）\n"), o);
        break;
    case C(CHECK):
        if (r->rows == 0 && !r->prefix)
            fputs(L(r, "(no findings)\n", "（未发现问题）\n"), o);
        break;
    case C(PERMIT_LIST):
        if (r->rows == 0)
            fputs(L(r, "(no permits)\n", "（无许可证）\n"), o);
        break;
    case C(APPLICATIONS):
        if (r->rows == 0)
            fputs(
                call->applications->pending
                    ? L(r, "(no pending applications)\n", "（无待审批申请）\n")
                    : L(r, "(no applications)\n", "（无申请）\n"),
                o);
        break;
    case C(HISTORY):
        if (call->history->limit && r->rows == call->history->limit)
            fprintf(o,
                    L(r, "(more: add --after %llu)\n",
                      "（还有更多：加 --after %llu）\n"),
                    (unsigned long long)r->last_seq);
        else if (r->rows == 0)
            fputs(L(r, "(no events)\n", "（无事件）\n"), o);
        break;
    default:
        break;
    }
}
