/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.c - what tracectl prints for the rows of a typed operation:
 * human-readable tables by default, JSON Lines with --json (SPEC 5's
 * field names).  The input is only the Call and its Items, whether they
 * were computed in process or came from traced, so both print the same
 * bytes.
 */
#include <stdio.h>
#include <string.h>

#include "ops.h"

#define C(x) TRACE__OPS__V1__CALL__OP_##x
#define I(x) TRACE__OPS__V1__ITEM__ITEM_##x

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

static const char *or_empty(const char *s)
{
    return s ? s : "";
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
    if (r->rows == 0)
        fprintf(o, "%-24s %-20s %-12s %18s %s\n", "SUBSTANCE", "LOT", "SITE",
                "QTY", "UNIT");
    fprintf(o, "%-24s %-20s %-12s %18s %s\n", h->substance, h->lot, h->site,
            h->qty, h->unit);
}

static void hop(ops_render *r, const Trace__Ops__V1__Hop *h)
{
    FILE *o = r->out;
    char route[160];

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
        fprintf(o, ",\"depth\":%d}\n", (int)h->depth);
        return;
    }
    if (h->into_lot)
        snprintf(route, sizeof(route), "%s: into lot %s", or_empty(h->from),
                 h->into_lot);
    else
        snprintf(route, sizeof(route), "%s -> %s",
                 h->from ? h->from : "(origin)", h->to ? h->to : "(gone)");
    fprintf(o, "%*s%-9s %s %s  %s %s  [%s %s/%s]\n", 2 * (int)h->depth, "",
            h->kind, h->lot, route, or_empty(h->qty), or_empty(h->unit), h->at,
            h->party, h->event);
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

static void event(ops_render *r, const Trace__Ops__V1__Event *e)
{
    FILE *o = r->out;

    if (r->json) {
        fprintf(o, "{\"seq\":%llu,\"corrected\":%s,\"event\":%s}\n",
                (unsigned long long)e->seq, e->corrected ? "true" : "false",
                e->json);
        return;
    }
    if (r->rows == 0)
        fprintf(o, "%8s  %-25s %-13s %-20s %-16s %-18s %-14s %s\n", "SEQ", "AT",
                "TYPE", "PARTY", "ID", "SUBSTANCE", "LOT", "QTY");
    fprintf(o, "%8llu  %-25s %-13s %-20s %-16s %-18s %-14s %s %s%s\n",
            (unsigned long long)e->seq, e->at, e->type, e->party, e->id,
            e->substance ? e->substance : "-", e->lot ? e->lot : "-",
            or_empty(e->qty), or_empty(e->unit),
            e->corrected ? "  (corrected)" : "");
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
        fputs(",\"scopes\":[", o);
        for (size_t i = 0; i < s->n_scopes; i++) {
            if (i)
                fputc(',', o);
            ops_json_value(o, s->scopes[i]);
        }
        fputs("]}\n", o);
        return;
    }
    if (r->rows == 0)
        fprintf(o, "%-26s %-12s %-7s %s\n", "CODE", "CAS", "DIM", "CONTROLS");
    fprintf(o, "%-26s %-12s %-7s", s->code, s->cas ? s->cas : "-",
            s->dimension);
    for (size_t i = 0; i < s->n_scopes; i++)
        fprintf(o, " %s", s->scopes[i]);
    fputc('\n', o);
}

void ops_render_begin(ops_render *r, const ops_call_t *call)
{
    const Trace__Ops__V1__Balance *b;

    r->rows = 0;
    r->last_seq = 0;
    if (call->op_case != C(BALANCE) || r->json)
        return;
    b = call->balance;
    fprintf(r->out, "book stock of %s %s%s\n", b->party,
            b->at_text ? "as of " : "now", b->at_text ? b->at_text : "");
}

int ops_render_item(ops_render *r, const ops_call_t *call, const ops_item_t *it)
{
    static const int want[] = {
        [C(BALANCE)] = I(HOLDING),    [C(TRACE)] = I(HOP),
        [C(PERMIT_SHOW)] = I(PERMIT), [C(HISTORY)] = I(EVENT),
        [C(HEAD)] = I(HEAD),          [C(CATALOG)] = I(SUBSTANCE),
    };

    /* an item of another operation's kind (a confused or hostile
     * daemon): refused, never printed as something else */
    if ((size_t)call->op_case >= sizeof(want) / sizeof(*want) ||
        want[call->op_case] != (int)it->item_case)
        return -1;
    switch (it->item_case) {
    case I(HOLDING):
        holding(r, it->holding);
        break;
    case I(HOP):
        hop(r, it->hop);
        break;
    case I(PERMIT):
        permit(r, it->permit);
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
    default:
        return -1;
    }
    r->rows++;
    return 0;
}

void ops_render_end(ops_render *r, const ops_call_t *call, int code)
{
    FILE *o = r->out;

    if (code != 0 || r->json)
        return;
    switch (call->op_case) {
    case C(BALANCE):
        if (r->rows == 0)
            fputs("(no stock)\n", o);
        break;
    case C(TRACE):
        if (r->rows == 0)
            fprintf(o, "(no movements%s%s)\n",
                    call->trace->party ? " involving " : "",
                    or_empty(call->trace->party));
        break;
    case C(HISTORY):
        if (call->history->limit && r->rows == call->history->limit)
            fprintf(o, "(more: add --after %llu)\n",
                    (unsigned long long)r->last_seq);
        else if (r->rows == 0)
            fputs("(no events)\n", o);
        break;
    default:
        break;
    }
}
