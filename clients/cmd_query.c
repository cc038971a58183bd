/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_query.c - tracectl commands that answer questions: balance, trace,
 * permit show, history and the special register.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracectl.h"

/* ------------------------------------------------------------------ */
/* balance                                                              */

static int print_holding(const trace_holding *h, void *ctx)
{
    struct table *t = ctx;
    if (t->g->json) {
        fputc('{', ctl_out);
        ctl_json_str(ctl_out, "party", h->party, 0);
        ctl_json_str(ctl_out, "site", h->site, 1);
        ctl_json_str(ctl_out, "substance", h->substance, 1);
        ctl_json_str(ctl_out, "lot", h->lot, 1);
        ctl_json_str(ctl_out, "qty", h->qty_text, 1);
        ctl_json_str(ctl_out, "unit", h->unit, 1);
        fputs("}\n", ctl_out);
    } else {
        if (t->rows == 0)
            fprintf(ctl_out, "%-24s %-20s %-12s %18s %s\n", "SUBSTANCE", "LOT",
                    "SITE", "QTY", "UNIT");
        fprintf(ctl_out, "%-24s %-20s %-12s %18s %s\n", h->substance, h->lot,
                h->site, h->qty_text, h->unit);
    }
    t->rows++;
    return 0;
}

int cmd_balance(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"at", required_argument, NULL, 'a'},
        {"substance", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *substance = NULL, *at_text = NULL, *party;
    int64_t at = TRACE_AT_NOW;
    struct table t = {g, 0};
    trace_ledger *l;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (ctl_parse_when(optarg, 1, &at) != 0)
                return ctl_bad_time("balance", "--at", optarg);
            at_text = optarg;
            break;
        case 's':
            substance = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("balance"));
            return 0;
        default:
            return ctl_usage("balance", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("balance", "%s", "needs exactly one PARTY");
    party = argv[optind];
    ctl_args_done(g);
    if (!ctl_may_read_party(g, party))
        return ctl_denied("the stock of %s is not yours to read", party);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    if (!g->json)
        fprintf(ctl_out, "book stock of %s %s%s\n", party,
                at_text ? "as of " : "now", at_text ? at_text : "");
    rc = trace_balance(l, party, at, substance, print_holding, &t);
    ret = rc == TRACE_OK ? 0 : ctl_fail(rc);
    if (rc == TRACE_OK && !g->json && t.rows == 0)
        fprintf(ctl_out, "(no stock)\n");
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* trace                                                                */

static int print_hop(const trace_hop *h, void *ctx)
{
    struct table *t = ctx;
    if (t->g->json) {
        fputc('{', ctl_out);
        ctl_json_str(ctl_out, "lot", h->lot, 0);
        ctl_json_str(ctl_out, "substance", h->substance, 1);
        ctl_json_str(ctl_out, "from", h->from, 1);
        ctl_json_str(ctl_out, "to", h->to, 1);
        ctl_json_str(ctl_out, "qty", h->qty_text, 1);
        ctl_json_str(ctl_out, "unit", h->unit, 1);
        ctl_json_str(ctl_out, "event", h->event, 1);
        ctl_json_str(ctl_out, "at", h->at_text, 1);
        ctl_json_str(ctl_out, "kind", h->kind, 1);
        ctl_json_str(ctl_out, "party", h->party, 1);
        ctl_json_str(ctl_out, "into_lot", h->into_lot, 1);
        fprintf(ctl_out, ",\"depth\":%d}\n", h->depth);
    } else {
        char route[160];
        if (h->into_lot)
            snprintf(route, sizeof(route), "%s: into lot %s", h->from,
                     h->into_lot);
        else
            snprintf(route, sizeof(route), "%s -> %s",
                     h->from ? h->from : "(origin)", h->to ? h->to : "(gone)");
        fprintf(ctl_out, "%*s%-9s %s %s  %s %s  [%s %s/%s]\n", 2 * h->depth, "",
                h->kind, h->lot, route, h->qty_text ? h->qty_text : "",
                h->unit ? h->unit : "", h->at_text, h->party, h->event);
    }
    t->rows++;
    return 0;
}

int cmd_trace(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"forward", no_argument, NULL, 'f'},
        {"backward", no_argument, NULL, 'b'},
        {"party", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *party = NULL, *lot;
    int dir = 0, c, rc, ret;
    struct table t = {g, 0};
    trace_ledger *l;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            dir = TRACE_FORWARD;
            break;
        case 'b':
            dir = TRACE_BACKWARD;
            break;
        case 'p':
            party = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("trace"));
            return 0;
        default:
            return ctl_usage("trace", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("trace", "%s", "needs exactly one LOT");
    if (!dir)
        return ctl_usage("trace", "%s", "say --forward or --backward");
    lot = argv[optind];
    ctl_args_done(g);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    if (!ctl_may_read_party(g, "") && !trace_lot_held(l, lot, g->principal)) {
        ctl_close(g, l);
        return ctl_denied("%s never held the lot", g->principal);
    }
    rc = trace_lot(l, lot, party, dir, print_hop, &t);
    ret = rc == TRACE_OK ? 0 : ctl_fail(rc);
    if (rc == TRACE_OK && !g->json && t.rows == 0)
        fprintf(ctl_out, "(no movements%s%s)\n", party ? " involving " : "",
                party ? party : "");
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* permit show                                                          */

/* In traced: the holder, the designated counterparty (or, for a
 * purchase permit without one, any seller, who must check it before
 * selling) and whoever cited it may read a permit. */
static int may_read_permit(struct globals *g, const trace_permit_state *p)
{
    int purchase = strcmp(p->kind, "purchase_license") == 0 ||
                   strcmp(p->kind, "purchase_filing") == 0;
    if (ctl_may_read_party(g, p->holder) || (purchase && !p->counterparty) ||
        (p->counterparty && strcmp(p->counterparty, g->principal) == 0))
        return 1;
    for (size_t i = 0; i < p->n_uses; i++)
        if (strcmp(p->use[i].party, g->principal) == 0)
            return 1;
    return 0;
}

static int print_permit(const trace_permit_state *p, void *ctx)
{
    struct globals *g = ctx;
    if (!may_read_permit(g, p))
        return 5;
    if (g->json) {
        fputc('{', ctl_out);
        ctl_json_str(ctl_out, "permit", p->permit, 0);
        ctl_json_str(ctl_out, "kind", p->kind, 1);
        ctl_json_str(ctl_out, "holder", p->holder, 1);
        ctl_json_str(ctl_out, "counterparty", p->counterparty, 1);
        ctl_json_str(ctl_out, "substance", p->substance, 1);
        ctl_json_str(ctl_out, "uses", p->uses, 1);
        ctl_json_str(ctl_out, "valid_from", p->valid_from, 1);
        ctl_json_str(ctl_out, "valid_until", p->valid_until, 1);
        ctl_json_str(ctl_out, "status", p->status, 1);
        ctl_json_str(ctl_out, "budget", p->budget_text, 1);
        ctl_json_str(ctl_out, "used", p->used_text, 1);
        ctl_json_str(ctl_out, "remaining", p->remaining_text, 1);
        ctl_json_str(ctl_out, "unit", p->unit, 1);
        ctl_json_str(ctl_out, "issuer", p->issuer, 1);
        if (p->used_overflow)
            fputs(",\"used_overflow\":true", ctl_out);
        fputs(",\"events\":[", ctl_out);
        for (size_t i = 0; i < p->n_uses; i++) {
            const trace_permit_use *u = &p->use[i];
            fputs(i ? ",{" : "{", ctl_out);
            ctl_json_str(ctl_out, "party", u->party, 0);
            ctl_json_str(ctl_out, "id", u->event, 1);
            ctl_json_str(ctl_out, "role", u->role, 1);
            ctl_json_str(ctl_out, "at", u->at_text, 1);
            ctl_json_str(ctl_out, "qty", u->qty_text, 1);
            fprintf(ctl_out, ",\"counted\":%s", u->valid ? "true" : "false");
            ctl_json_str(ctl_out, "reason", u->reason, 1);
            fputc('}', ctl_out);
        }
        fputs("]}\n", ctl_out);
        return 0;
    }
    fprintf(ctl_out, "permit     %s (%s, %s-use)\n", p->permit, p->kind,
            p->uses);
    fprintf(ctl_out, "status     %s\n", p->status);
    fprintf(ctl_out, "holder     %s\n", p->holder);
    fprintf(ctl_out, "counter    %s\n",
            p->counterparty ? p->counterparty : "(any)");
    fprintf(ctl_out, "substance  %s\n", p->substance);
    fprintf(ctl_out, "valid      %s .. %s\n", p->valid_from, p->valid_until);
    fprintf(ctl_out, "budget     %s %s\nused       %s %s\nremaining  %s %s\n",
            p->budget_text, p->unit, p->used_text, p->unit, p->remaining_text,
            p->unit);
    if (p->used_overflow)
        fprintf(ctl_out, "note       the write-offs sum beyond the largest "
                         "representable quantity: used and remaining are "
                         "bounds\n");
    fprintf(ctl_out, "issued by  %s\n", p->issuer);
    fprintf(ctl_out, "citations  %zu\n", p->n_uses);
    for (size_t i = 0; i < p->n_uses; i++) {
        const trace_permit_use *u = &p->use[i];
        fprintf(ctl_out, "  %s  %-9s %s/%s  %s %s  %s%s\n", u->at_text, u->role,
                u->party, u->event, u->qty_text, p->unit,
                u->valid ? "written off" : "not counted: ",
                u->valid ? "" : u->reason);
    }
    return 0;
}

int cmd_permit(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"at", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int64_t at = TRACE_AT_NOW;
    trace_ledger *l;
    const char *id;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (ctl_parse_when(optarg, 1, &at) != 0)
                return ctl_bad_time("permit", "--at", optarg);
            break;
        case 'h':
            ctl_help(ctl_find_command("permit"));
            return 0;
        default:
            return ctl_usage("permit", "%s", "unknown option");
        }
    }
    if (optind + 2 != argc || strcmp(argv[optind], "show") != 0)
        return ctl_usage("permit", "%s", "usage is: permit show ID");
    id = argv[optind + 1];
    ctl_args_done(g);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    rc = trace_permit_show(l, id, at, print_permit, g);
    if (rc == 5)
        ret = ctl_denied("permit %s is not yours to read", id);
    else
        ret = rc == TRACE_OK ? 0 : ctl_fail(rc);
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* history                                                              */

struct hist {
    struct globals *g;
    size_t rows;
    uint64_t last;
};

static int print_event(const trace_event_info *e, void *ctx)
{
    struct hist *h = ctx;
    if (h->g->json) {
        fprintf(ctl_out, "{\"seq\":%llu,\"corrected\":%s,\"event\":%s}\n",
                (unsigned long long)e->seq, e->corrected ? "true" : "false",
                e->json);
    } else {
        if (h->rows == 0)
            fprintf(ctl_out, "%8s  %-25s %-13s %-20s %-16s %-18s %-14s %s\n",
                    "SEQ", "AT", "TYPE", "PARTY", "ID", "SUBSTANCE", "LOT",
                    "QTY");
        fprintf(ctl_out, "%8llu  %-25s %-13s %-20s %-16s %-18s %-14s %s %s%s\n",
                (unsigned long long)e->seq, e->at_text, e->type, e->party,
                e->id, e->substance ? e->substance : "-", e->lot ? e->lot : "-",
                e->qty_text ? e->qty_text : "", e->unit ? e->unit : "",
                e->corrected ? "  (corrected)" : "");
    }
    h->rows++;
    h->last = e->seq;
    return 0;
}

int cmd_history(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"lot", required_argument, NULL, 'l'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"after", required_argument, NULL, 'A'},
        {"limit", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_history_opts ho = TRACE_HISTORY_OPTS_INIT;
    struct hist h = {g, 0, 0};
    trace_ledger *l;
    char *end;
    int c, rc, ret;

    ho.limit = 100;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            ho.lot = optarg;
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &ho.from_us) != 0)
                return ctl_bad_time("history", "--from", optarg);
            ho.has_from = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 1, &ho.to_us) != 0)
                return ctl_bad_time("history", "--to", optarg);
            ho.has_to = 1;
            break;
        case 'A':
            ho.after = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return ctl_usage("history", "bad --after %s", optarg);
            break;
        case 'n':
            ho.limit = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return ctl_usage("history", "bad --limit %s", optarg);
            break;
        case 'h':
            ctl_help(ctl_find_command("history"));
            return 0;
        default:
            return ctl_usage("history", "%s", "unknown option");
        }
    }
    if (ho.lot ? optind != argc : optind + 1 != argc)
        return ctl_usage("history", "%s", "needs a PARTY or --lot LOT");
    if (!ho.lot)
        ho.party = argv[optind];
    ctl_args_done(g);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    if (!ctl_may_read_party(g, "")) {
        /* in traced: one's own events, or those of a lot one held */
        trace_party pi;
        const char *what = ho.lot ? ho.lot : ho.party;
        if (ho.party && strcmp(ho.party, g->principal) != 0 &&
            trace_party_info(l, ho.party, &pi) == TRACE_OK) {
            ctl_close(g, l);
            return ctl_denied("the events of %s are not yours to read",
                              ho.party);
        }
        if ((ho.lot || strcmp(ho.party, g->principal) != 0) &&
            !trace_lot_held(l, what, g->principal)) {
            ctl_close(g, l);
            return ctl_denied("%s never held the lot", g->principal);
        }
    }
    rc = trace_history(l, &ho, print_event, &h);
    if (rc == TRACE_ENOTFOUND && ho.party && h.rows == 0) {
        /* `history X`: X may also be a lot */
        ho.lot = ho.party;
        ho.party = NULL;
        rc = trace_history(l, &ho, print_event, &h);
        if (rc == TRACE_ENOTFOUND) {
            fprintf(ctl_err, "tracectl: no party or lot named %s\n", ho.lot);
            ctl_close(g, l);
            return 4;
        }
    }
    ret = rc == TRACE_OK ? 0 : ctl_fail(rc);
    if (rc == TRACE_OK && !g->json && ho.limit && h.rows == ho.limit)
        fprintf(ctl_out, "(more: add --after %llu)\n",
                (unsigned long long)h.last);
    else if (rc == TRACE_OK && !g->json && h.rows == 0)
        fprintf(ctl_out, "(no events)\n");
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* register                                                             */

struct reg_out {
    struct globals *g;
    int csv;
    size_t rows;
};

static void csv_field(const char *v, int last)
{
    int quote = v && strpbrk(v, ",\"\n") != NULL;
    if (quote) {
        fputc('"', ctl_out);
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                fputc('"', ctl_out);
            fputc(*p, ctl_out);
        }
        fputc('"', ctl_out);
    } else if (v) {
        fputs(v, ctl_out);
    }
    fputc(last ? '\n' : ',', ctl_out);
}

static int print_register(const trace_register_day *d, void *ctx)
{
    struct reg_out *o = ctx;
    if (o->g->json) {
        fputc('{', ctl_out);
        ctl_json_str(ctl_out, "date", d->date, 0);
        ctl_json_str(ctl_out, "party", d->party, 1);
        ctl_json_str(ctl_out, "substance", d->substance, 1);
        ctl_json_str(ctl_out, "unit", d->unit, 1);
        ctl_json_str(ctl_out, "opening", d->opening_text, 1);
        ctl_json_str(ctl_out, "received", d->received_text, 1);
        ctl_json_str(ctl_out, "dispensed", d->dispensed_text, 1);
        ctl_json_str(ctl_out, "destroyed", d->destroyed_text, 1);
        ctl_json_str(ctl_out, "other_out", d->other_out_text, 1);
        ctl_json_str(ctl_out, "closing", d->closing_text, 1);
        fputs(",\"entries\":[", ctl_out);
        for (size_t i = 0; i < d->n_lines; i++) {
            const trace_register_line *l = &d->lines[i];
            fputs(i ? ",{" : "{", ctl_out);
            ctl_json_str(ctl_out, "kind", l->kind, 0);
            ctl_json_str(ctl_out, "id", l->event, 1);
            ctl_json_str(ctl_out, "at", l->at_text, 1);
            ctl_json_str(ctl_out, "lot", l->lot, 1);
            ctl_json_str(ctl_out, "qty", l->qty_text, 1);
            ctl_json_str(ctl_out, "counterparty", l->counterparty, 1);
            ctl_json_str(ctl_out, "rx", l->rx, 1);
            fputc('}', ctl_out);
        }
        fputs("]}\n", ctl_out);
    } else if (o->csv) {
        char ins[1024] = "", rxs[2048] = "";
        size_t a = 0, b = 0;
        if (o->rows == 0)
            fprintf(ctl_out,
                    "date,party,substance,unit,opening,received,dispensed,"
                    "destroyed,other_out,closing,received_from,"
                    "prescriptions\n");
        for (size_t i = 0; i < d->n_lines; i++) {
            const trace_register_line *l = &d->lines[i];
            if (l->rx && b < sizeof(rxs) - 1)
                b += (size_t)snprintf(rxs + b, sizeof(rxs) - b, "%s%s",
                                      b ? " " : "", l->rx);
            else if (l->qty_text[0] != '-' && a < sizeof(ins) - 1)
                a += (size_t)snprintf(ins + a, sizeof(ins) - a, "%s%s/%s",
                                      a ? " " : "",
                                      l->counterparty ? l->counterparty : "-",
                                      l->lot ? l->lot : "-");
        }
        csv_field(d->date, 0);
        csv_field(d->party, 0);
        csv_field(d->substance, 0);
        csv_field(d->unit, 0);
        csv_field(d->opening_text, 0);
        csv_field(d->received_text, 0);
        csv_field(d->dispensed_text, 0);
        csv_field(d->destroyed_text, 0);
        csv_field(d->other_out_text, 0);
        csv_field(d->closing_text, 0);
        csv_field(ins, 0);
        csv_field(rxs, 1);
    } else {
        fprintf(ctl_out, "%s  %s  %s (%s)\n", d->date, d->party, d->substance,
                d->unit);
        fprintf(ctl_out,
                "  opening %-12s received %-10s dispensed %-10s destroyed "
                "%-8s other out %-8s closing %s\n",
                d->opening_text, d->received_text, d->dispensed_text,
                d->destroyed_text, d->other_out_text, d->closing_text);
        for (size_t i = 0; i < d->n_lines; i++) {
            const trace_register_line *l = &d->lines[i];
            fprintf(ctl_out, "    %s  %-9s %-14s lot %-12s %10s  %s%s%s\n",
                    l->at_text, l->kind, l->event, l->lot ? l->lot : "-",
                    l->qty_text, l->counterparty ? l->counterparty : "",
                    l->rx ? "  rx " : "", l->rx ? l->rx : "");
        }
    }
    o->rows++;
    return 0;
}

int cmd_register(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"substance", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *substance = NULL, *party;
    int64_t from = 0, to = 0;
    int have_from = 0, have_to = 0, c, rc, ret;
    struct reg_out o = {g, 0, 0};
    trace_ledger *l;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            substance = optarg;
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &from) != 0)
                return ctl_bad_time("register", "--from", optarg);
            have_from = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 0, &to) != 0)
                return ctl_bad_time("register", "--to", optarg);
            have_to = 1;
            break;
        case 'c':
            o.csv = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("register"));
            return 0;
        default:
            return ctl_usage("register", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("register", "%s", "needs exactly one PARTY");
    if (!substance)
        return ctl_usage("register", "%s", "--substance S is required");
    if (!have_from && !have_to) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        from = to = (int64_t)ts.tv_sec * 1000000;
    } else if (!have_from || !have_to) {
        if (!have_from)
            from = to;
        else
            to = from;
    }
    party = argv[optind];
    ctl_args_done(g);
    if (!ctl_may_read_party(g, party))
        return ctl_denied("the register of %s is not yours to read", party);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    rc = trace_register(l, party, substance, from, to, print_register, &o);
    ret = rc == TRACE_OK ? 0 : ctl_fail(rc);
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* catalog, head                                                        */

static int print_substance(const trace_substance *s, void *ctx)
{
    struct table *t = ctx;
    if (t->g->json) {
        fputc('{', ctl_out);
        ctl_json_str(ctl_out, "code", s->code, 0);
        ctl_json_str(ctl_out, "cas", s->cas, 1);
        ctl_json_str(ctl_out, "name", s->name, 1);
        ctl_json_str(ctl_out, "dimension", s->dimension, 1);
        fputs(",\"scopes\":[", ctl_out);
        for (size_t i = 0; i < s->n_scopes; i++) {
            if (i)
                fputc(',', ctl_out);
            ctl_json_value(ctl_out, s->scopes[i]);
        }
        fputs("]}\n", ctl_out);
    } else {
        if (t->rows == 0)
            fprintf(ctl_out, "%-26s %-12s %-7s %s\n", "CODE", "CAS", "DIM",
                    "CONTROLS");
        fprintf(ctl_out, "%-26s %-12s %-7s", s->code, s->cas ? s->cas : "-",
                s->dimension);
        for (size_t i = 0; i < s->n_scopes; i++)
            fprintf(ctl_out, " %s", s->scopes[i]);
        fputc('\n', ctl_out);
    }
    t->rows++;
    return 0;
}

int cmd_catalog(struct globals *g, int argc, char **argv)
{
    struct table t = {g, 0};
    trace_ledger *l;
    int ret;

    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("catalog"));
        return 0;
    }
    if (argc > 1)
        return ctl_usage("catalog", "unexpected argument %s", argv[1]);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    trace_ledger_substances(l, print_substance, &t);
    ctl_close(g, l);
    return 0;
}

int cmd_head(struct globals *g, int argc, char **argv)
{
    trace_ledger *l;
    uint64_t size, shown = UINT64_MAX;
    uint8_t hash[32];
    char hex[65];
    int rc, ret, follow = 0;

    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("head"));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--follow") == 0)
        follow = 1;
    else if (argc > 1)
        return ctl_usage("head", "unexpected argument %s", argv[1]);
    if (argc > 2)
        return ctl_usage("head", "unexpected argument %s", argv[2]);
    if (follow && g->ledger)
        return ctl_usage("head", "%s", "--follow is for tracectl");
    ctl_args_done(g);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    /* with --follow, print each new head as appends land, until
     * interrupted */
    while ((rc = trace_ledger_head(l, &size, hash)) == TRACE_OK) {
        if (size != shown) {
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", hash[i]);
            if (g->json)
                fprintf(ctl_out, "{\"size\":%llu,\"head\":\"%s\"}\n",
                        (unsigned long long)size, hex);
            else
                fprintf(ctl_out, "%llu entries, head %s\n",
                        (unsigned long long)size, hex);
            fflush(ctl_out);
            shown = size;
        }
        if (!follow)
            break;
        sleep(1);
    }
    ret = rc == TRACE_OK ? 0 : ctl_fail(rc);
    ctl_close(g, l);
    return ret;
}
