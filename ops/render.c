/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.c - what tracectl prints for the rows of a typed operation:
 * human-readable tables by default, JSON Lines with --json (SPEC 5's
 * field names).  The input is only the Call and its Items, whether they
 * were computed in process or came from traced, so both print the same
 * bytes.
 *
 * Here: the rows of the ledger's queries and ops_render_begin, _item and
 * _end, which pass each Item to its printer.  The building blocks (JSON,
 * CSV, columns, the language) are in render_util.c, the special register
 * in render_register.c, alerts and the log's rows in render_checks.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "render_int.h"
#include "trace/trace.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x
#define I(x) TRACE__OPS__V1__ITEM__ITEM_##x

#define MAX_INDENT 64 /* levels of a trace's indentation */

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
