/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_query.c - tracectl commands that answer questions: balance, trace,
 * permit show, history, the special register, catalog and head.  Each
 * parses its arguments into a Call (ops.h) and hands it to ctl_call.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tracectl.h"

/* ------------------------------------------------------------------ */
/* balance                                                              */

int cmd_balance(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"at", required_argument, NULL, 'a'},
        {"substance", required_argument, NULL, 's'},
        {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Balance b = TRACE__OPS__V1__BALANCE__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (ctl_parse_when(optarg, 1, &b.at_us) != 0)
                return ctl_bad_time("balance", "--at", optarg);
            b.has_at_us = 1;
            b.at_text = optarg;
            break;
        case 's':
            b.substance = optarg;
            break;
        case 'c':
            g->csv = 1;
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
    b.party = argv[optind];
    call.op_case = TRACE__OPS__V1__CALL__OP_BALANCE;
    call.balance = &b;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* trace                                                                */

int cmd_trace(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"forward", no_argument, NULL, 'f'},
        {"backward", no_argument, NULL, 'b'},
        {"party", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Trace t = TRACE__OPS__V1__TRACE__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int dir = 0, c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            dir = TRACE_FORWARD;
            break;
        case 'b':
            dir = TRACE_BACKWARD;
            break;
        case 'p':
            t.party = optarg;
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
    t.lot = argv[optind];
    t.backward = dir == TRACE_BACKWARD;
    call.op_case = TRACE__OPS__V1__CALL__OP_TRACE;
    call.trace = &t;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* permit show                                                          */

int cmd_permit(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"at", required_argument, NULL, 'a'},
        {"holder", required_argument, NULL, 'H'},
        {"status", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__PermitShow p = TRACE__OPS__V1__PERMIT_SHOW__INIT;
    Trace__Ops__V1__PermitList pl = TRACE__OPS__V1__PERMIT_LIST__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    const char *holder = NULL, *status = NULL;
    int64_t at = 0;
    int has_at = 0, c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (ctl_parse_when(optarg, 1, &at) != 0)
                return ctl_bad_time("permit", "--at", optarg);
            has_at = 1;
            break;
        case 'H':
            holder = optarg;
            break;
        case 's':
            status = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("permit"));
            return 0;
        default:
            return ctl_usage("permit", "%s", "unknown option");
        }
    }
    if (optind + 1 == argc && strcmp(argv[optind], "list") == 0) {
        pl.holder = (char *)holder;
        pl.status = (char *)status;
        pl.has_at_us = has_at;
        pl.at_us = at;
        call.op_case = TRACE__OPS__V1__CALL__OP_PERMIT_LIST;
        call.permit_list = &pl;
        return ctl_call(g, &call);
    }
    if (optind + 2 != argc || strcmp(argv[optind], "show") != 0)
        return ctl_usage("permit", "%s",
                         "usage is: permit show ID, or permit list");
    if (holder || status)
        return ctl_usage("permit", "%s",
                         "--holder and --status are for permit list");
    p.permit = argv[optind + 1];
    p.has_at_us = has_at;
    p.at_us = at;
    call.op_case = TRACE__OPS__V1__CALL__OP_PERMIT_SHOW;
    call.permit_show = &p;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* parties                                                              */

int cmd_parties(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    Trace__Ops__V1__Parties pq = TRACE__OPS__V1__PARTIES__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            pq.kind = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("parties"));
            return 0;
        default:
            return ctl_usage("parties", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("parties", "unexpected argument %s", argv[optind]);
    call.op_case = TRACE__OPS__V1__CALL__OP_PARTIES;
    call.parties = &pq;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* products                                                             */

int cmd_products(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"substance", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Products pq = TRACE__OPS__V1__PRODUCTS__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            pq.substance = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("products"));
            return 0;
        default:
            return ctl_usage("products", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("products", "unexpected argument %s", argv[optind]);
    call.op_case = TRACE__OPS__V1__CALL__OP_PRODUCTS;
    call.products = &pq;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* credit                                                               */

int cmd_credit(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"at", required_argument, NULL, 'a'},
        {"rules", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Credit cq = TRACE__OPS__V1__CREDIT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (ctl_parse_when(optarg, 1, &cq.at_us) != 0) {
                free(cq.rules.data);
                return ctl_bad_time("credit", "--at", optarg);
            }
            cq.has_at_us = 1;
            break;
        case 'r':
            if ((ret = ctl_rules_option(g, "credit", optarg, &cq.rules)))
                return ret;
            cq.has_rules = 1;
            break;
        case 'h':
            free(cq.rules.data);
            ctl_help(ctl_find_command("credit"));
            return 0;
        default:
            free(cq.rules.data);
            return ctl_usage("credit", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc) {
        free(cq.rules.data);
        return ctl_usage("credit", "%s", "one PARTY");
    }
    cq.party = argv[optind];
    call.op_case = TRACE__OPS__V1__CALL__OP_CREDIT;
    call.credit = &cq;
    ret = ctl_call(g, &call);
    free(cq.rules.data);
    return ret;
}

/* ------------------------------------------------------------------ */
/* applications                                                         */

int cmd_applications(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"pending", no_argument, NULL, 'p'},
        {"party", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Applications aq = TRACE__OPS__V1__APPLICATIONS__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            aq.has_pending = 1;
            aq.pending = 1;
            break;
        case 'P':
            aq.party = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("applications"));
            return 0;
        default:
            return ctl_usage("applications", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("applications", "unexpected argument %s",
                         argv[optind]);
    call.op_case = TRACE__OPS__V1__CALL__OP_APPLICATIONS;
    call.applications = &aq;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* history                                                              */

int cmd_history(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"lot", required_argument, NULL, 'l'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"after", required_argument, NULL, 'A'},
        {"limit", required_argument, NULL, 'n'},
        {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__History h = TRACE__OPS__V1__HISTORY__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char *end;
    int c;

    h.has_limit = 1;
    h.limit = 100;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            h.lot = optarg;
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &h.from_us) != 0)
                return ctl_bad_time("history", "--from", optarg);
            h.has_from_us = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 1, &h.to_us) != 0)
                return ctl_bad_time("history", "--to", optarg);
            h.has_to_us = 1;
            break;
        case 'A':
            h.after = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return ctl_usage("history", "bad --after %s", optarg);
            h.has_after = 1;
            break;
        case 'n':
            h.limit = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return ctl_usage("history", "bad --limit %s", optarg);
            break;
        case 'c':
            g->csv = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("history"));
            return 0;
        default:
            return ctl_usage("history", "%s", "unknown option");
        }
    }
    if (h.lot ? optind != argc : optind + 1 != argc)
        return ctl_usage("history", "%s", "needs a PARTY or --lot LOT");
    if (!h.lot)
        h.party = argv[optind];
    call.op_case = TRACE__OPS__V1__CALL__OP_HISTORY;
    call.history = &h;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* register                                                             */

int cmd_register(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"substance", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"csv", no_argument, NULL, 'c'},
        {"html", no_argument, NULL, 'H'},
        {"format", required_argument, NULL, 'F'},
        {"month", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Register r = TRACE__OPS__V1__REGISTER__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char first[24], last[24];
    int have_from = 0, have_to = 0, c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            r.substance = optarg;
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &r.from_us) != 0)
                return ctl_bad_time("register", "--from", optarg);
            r.from_text = optarg;
            have_from = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 0, &r.to_us) != 0)
                return ctl_bad_time("register", "--to", optarg);
            r.to_text = optarg;
            have_to = 1;
            break;
        case 'c':
            g->csv = 1;
            break;
        case 'H':
            g->html = 1;
            break;
        case 'F':
            if (strcmp(optarg, "html") == 0)
                g->html = 1;
            else if (strcmp(optarg, "csv") == 0)
                g->csv = 1;
            else if (strcmp(optarg, "json") == 0)
                g->json = 1;
            else if (strcmp(optarg, "text") != 0)
                return ctl_usage("register",
                                 "--format takes text, csv, json or html, "
                                 "not %s",
                                 optarg);
            break;
        case 'm': {
            /* YYYY-MM: its first and last day */
            static const int days[] = {31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
            int y, mo, n = 0, d;
            if (strlen(optarg) != 7 ||
                sscanf(optarg, "%4d-%2d%n", &y, &mo, &n) != 2 || n != 7 ||
                mo < 1 || mo > 12 || y < 1)
                return ctl_usage("register", "--month takes YYYY-MM, not %s",
                                 optarg);
            d = days[mo - 1] +
                (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
            snprintf(first, sizeof(first), "%04d-%02d-01", y, mo);
            snprintf(last, sizeof(last), "%04d-%02d-%02d", y, mo, d);
            if (ctl_parse_when(first, 0, &r.from_us) != 0 ||
                ctl_parse_when(last, 0, &r.to_us) != 0)
                return ctl_bad_time("register", "--month", optarg);
            r.from_text = first;
            r.to_text = last;
            have_from = have_to = 1;
            break;
        }
        case 'h':
            ctl_help(ctl_find_command("register"));
            return 0;
        default:
            return ctl_usage("register", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("register", "%s", "needs exactly one PARTY");
    if (!r.substance)
        return ctl_usage("register", "%s", "--substance S is required");
    if (g->csv + g->html + g->json > 1)
        return ctl_usage("register", "%s",
                         "one form at a time: --csv, --html or --json");
    if (!have_from && !have_to) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r.from_us = r.to_us = (int64_t)ts.tv_sec * 1000000;
        ctl_now_text(first, sizeof(first), ts.tv_sec);
        first[10] = '\0'; /* the date */
        r.from_text = r.to_text = first;
    } else if (!have_from) {
        r.from_us = r.to_us;
        r.from_text = r.to_text;
    } else if (!have_to) {
        r.to_us = r.from_us;
        r.to_text = r.from_text;
    }
    r.party = argv[optind];
    call.op_case = TRACE__OPS__V1__CALL__OP_SPECIAL_REGISTER;
    call.special_register = &r;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* catalog, head                                                        */

int cmd_catalog(struct globals *g, int argc, char **argv)
{
    Trace__Ops__V1__Catalog cat = TRACE__OPS__V1__CATALOG__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;

    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("catalog"));
        return 0;
    }
    if (argc > 1)
        return ctl_usage("catalog", "unexpected argument %s", argv[1]);
    call.op_case = TRACE__OPS__V1__CALL__OP_CATALOG;
    call.catalog = &cat;
    return ctl_call(g, &call);
}

int cmd_head(struct globals *g, int argc, char **argv)
{
    Trace__Ops__V1__Head hd = TRACE__OPS__V1__HEAD__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int follow = 0, ret;

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
    call.op_case = TRACE__OPS__V1__CALL__OP_HEAD;
    call.head = &hd;
    if (!follow)
        return ctl_call(g, &call);
    /* print each new head as appends land, until interrupted (through
     * a daemon: remote_follow_heads, on its PUB socket) */
    ret = ctl_follow_head(g, &call);
    return ret;
}

/* ------------------------------------------------------------------ */
/* regime                                                               */

/* One movement of a class: "purchase_license (required)". */
static void print_move(struct globals *g, json_t *m)
{
    json_t *p = json_object_get(m, "permits");
    json_t *req = json_object_get(m, "required");
    size_t i;
    json_t *k;

    if (!m) {
        fputs(g->lang == OPS_LANG_ZH ? "不限" : "any", ctl_out);
        return;
    }
    if (json_array_size(p) == 0)
        fputs(g->lang == OPS_LANG_ZH ? "无" : "none", ctl_out);
    json_array_foreach(p, i, k)
    {
        const char *v = json_string_value(k);
        fprintf(ctl_out, "%s%s", i ? "/" : "",
                g->lang == OPS_LANG_ZH ? trace_zh_name(v) : v);
    }
    if (json_is_true(req))
        fputs(g->lang == OPS_LANG_ZH ? " (必须)" : " (required)", ctl_out);
    else if (json_is_string(req))
        fputs(g->lang == OPS_LANG_ZH ? " (按规则配置)" : " (if configured)",
              ctl_out);
}

static void print_class(struct globals *g, json_t *c, const char *name)
{
    static const char *const moves[] = {"sale", "transport", "import",
                                        "export"};
    static const char *const moves_zh[] = {"销售", "运输", "进口", "出口"};
    const char *lic = json_string_value(json_object_get(c, "licence"));
    const char *dl = json_string_value(json_object_get(c, "deadline"));
    const char *label = json_string_value(json_object_get(c, "label"));

    fprintf(ctl_out, "%s", name);
    if (label)
        fprintf(ctl_out, " (%s)", label);
    fputc('\n', ctl_out);
    for (int m = 0; m < 4; m++) {
        fprintf(ctl_out, "  %-10s ",
                g->lang == OPS_LANG_ZH ? moves_zh[m] : moves[m]);
        print_move(g, json_object_get(c, moves[m]));
        fputc('\n', ctl_out);
    }
    fprintf(ctl_out, "  %-10s %s\n",
            g->lang == OPS_LANG_ZH ? "买方资质" : "licence", lic ? lic : "-");
    fprintf(ctl_out, "  %-10s %s\n",
            g->lang == OPS_LANG_ZH ? "报告时限" : "deadline", dl ? dl : "-");
}

/* The one row of a regime call, kept. */
struct regime_got {
    char *regime, *table;
};

static int got_regime(const ops_item_t *it, void *ctx)
{
    struct regime_got *x = ctx;

    if (it->item_case != TRACE__OPS__V1__ITEM__ITEM_REGIME || x->regime)
        return 0;
    x->regime = strdup(it->regime->regime);
    x->table = strdup(it->regime->table);
    return x->regime && x->table ? 0 : TRACE_ENOMEM;
}

int cmd_regime(struct globals *g, int argc, char **argv)
{
    Trace__Ops__V1__Regime rg = TRACE__OPS__V1__REGIME__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    struct regime_got got = {NULL, NULL};
    trace_ledger *l = NULL;
    json_t *root = NULL, *classes, *c, *late;
    const char *k;
    json_t *v;
    size_t i;
    int ret;

    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("regime"));
        return 0;
    }
    if (argc > 1)
        return ctl_usage("regime", "unexpected argument %s", argv[1]);
    call.op_case = TRACE__OPS__V1__CALL__OP_REGIME;
    call.regime = &rg;
    if (!g->connect && (ret = ctl_open(g, &l)) != 0)
        return ret;
    if ((ret = ctl_call_items(g, l, &call, got_regime, &got)) != 0)
        goto out;
    if (!got.regime) {
        fprintf(ctl_err, "tracectl: the answer holds no regime\n");
        ret = 6;
        goto out;
    }
    if (g->json) {
        fprintf(ctl_out, "%s\n", got.table);
        goto out;
    }
    root = json_loads(got.table, 0, NULL);
    if (!root) {
        fprintf(ctl_err, "tracectl: the regime table is not JSON\n");
        ret = 6;
        goto out;
    }
    fprintf(ctl_out, "%s %s: %s\n",
            g->lang == OPS_LANG_ZH ? "监管制度" : "regime", got.regime,
            json_string_value(json_object_get(root, "name")));
    fprintf(ctl_out,
            "%s:", g->lang == OPS_LANG_ZH ? "资质范围" : "licence scopes");
    json_array_foreach(json_object_get(root, "scopes"), i, v)
        fprintf(ctl_out, " %s", json_string_value(v));
    fprintf(ctl_out, "\n%s:",
            g->lang == OPS_LANG_ZH ? "LATE_REPORT 时限 (天)"
                                   : "LATE_REPORT deadlines (days)");
    late = json_object_get(root, "late_report");
    json_object_foreach(late, k, v)
        fprintf(ctl_out, " %s %g", k, json_number_value(v));
    fputs("\n\n", ctl_out);
    classes = json_object_get(root, "classes");
    json_array_foreach(classes, i, c)
        print_class(g, c, json_string_value(json_object_get(c, "class")));
    if ((c = json_object_get(root, "other")))
        print_class(g, c,
                    g->lang == OPS_LANG_ZH ? "其他物质" : "other substances");
out:
    json_decref(root);
    free(got.regime);
    free(got.table);
    if (l)
        ctl_close(g, l);
    return ret;
}
