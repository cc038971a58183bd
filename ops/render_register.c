/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_register.c - the special register (专用账册) as printed: --json
 * day by day, a text table, CSV rows or an HTML page to print, in
 * English or Chinese.
 */
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "render_int.h"

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

void day(ops_render *r, const ops_call_t *call,
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
void register_end(ops_render *r, const ops_call_t *call)
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
