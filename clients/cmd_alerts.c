/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_alerts.c - tracectl commands that record single events and work
 * with alerts: record, reconcile, alerts, ack.
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

#include <jansson.h>

#include "tracectl.h"

/* ------------------------------------------------------------------ */
/* record                                                               */

/* Short names for the fields of a dispensing at the counter. */
static const struct {
    const char *flag, *field;
} aliases[] = {
    {"rx-id", "rx.id"},
    {"prescriber", "rx.prescriber"},
    {"patient", "rx.patient"},
    {"written", "rx.written"},
    {"days", "rx.days_supply"},
    {"days-supply", "rx.days_supply"},
    {"form", "rx.form"},
    {"chronic", "rx.chronic"},
    {"from-site", "from_site"},
    {"to-site", "to_site"},
    {"transport-permit", "transport_permit"},
    /* a carrier's pickup, handover or delivery names the sale */
    {"ref-party", "ref.party"},
    {"ref-id", "ref.id"},
};

/* Appends `"name":value` to the JSON in `m`; "a.b" nests (one level). */
/* Fields that are lists of names: --licenses CN-PC-1,CN-PC-2 (commas;
 * an empty value is the empty list). */
static const char *const list_fields[] = {"licenses", "scopes"};

static void record_field(FILE *m, const char *name, const char *value,
                         int first)
{
    int boolean = strcmp(value, "true") == 0 || strcmp(value, "false") == 0;
    int list = 0;

    for (size_t i = 0; i < sizeof(list_fields) / sizeof(*list_fields); i++)
        list |= strcmp(name, list_fields[i]) == 0;
    fprintf(m, "%s\"", first ? "" : ",");
    for (const char *p = name; *p; p++)
        fputc(*p == '-' ? '_' : *p, m);
    fputs("\":", m);
    if (strcmp(name, "application") == 0 && strchr(value, '/')) {
        /* --application PARTY/ID: the application a permit or decision
         * answers (party ids hold no '/'; the id may) */
        const char *slash = strchr(value, '/');
        char who[256];
        snprintf(who, sizeof(who), "%.*s",
                 (int)((size_t)(slash - value) < 255 ? slash - value : 255),
                 value);
        fputc('{', m);
        ops_json_str(m, "party", who, 0);
        ops_json_str(m, "id", slash + 1, 1);
        fputc('}', m);
    } else if (list) {
        const char *p = value;
        fputc('[', m);
        while (*p) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            char item[256];
            snprintf(item, sizeof(item), "%.*s", (int)(n < 255 ? n : 255), p);
            fprintf(m, "%s", p == value ? "" : ",");
            ops_json_value(m, item);
            p += n;
            if (*p == ',')
                p++;
        }
        fputc(']', m);
    } else if (boolean) {
        fputs(value, m);
    } else {
        ops_json_value(m, value);
    }
}

/* Appends one JSON line as `as` (record and ack); prints why not and
 * returns the exit code. */
static int append_one(struct globals *g, trace_ledger *l, char *line,
                      size_t len, const char *as, trace_append_result *res)
{
    const unsigned long one = 1;
    const char *msg;
    int rc = ctl_append_lines(g, l, &line, &len, &one, 1, as, 0, res);

    if (rc == TRACE_OK)
        return 0;
    msg = ctl_errmsg();
    if (strncmp(msg, "line 1: ", 8) == 0)
        msg += 8;
    fprintf(ctl_err, "tracectl: %s\n", msg);
    return trace_error_exit_code(rc);
}

/* What record_or_check builds: an event from its fields (record,
 * check), or one from what the ledger holds with some fields changed. */
enum rmode {
    R_RECORD,
    R_CHECK,
    R_PARTY_UPDATE, /* record party update SUBJECT --FIELD VALUE ... */
    R_PARTY_KEY,    /* record party key SUBJECT --pubkey KEY [--revoke KEY] */
    R_CORRECT       /* correct EVENT-ID --reason R --FIELD VALUE ... */
};

static int record_or_check(struct globals *g, int argc, char **argv,
                           enum rmode mode);

static int print_field(const char *name, const char *what, int required,
                       void *ctx)
{
    (void)ctx;
    fprintf(ctl_out, "  --%-22s %s%s\n", name, what,
            required ? " (required)" : "");
    return 0;
}

/* record TYPE --help: the command's help, then TYPE's fields, from the
 * table that parses them. */
static int type_help(const char *cmd, const char *type)
{
    ctl_help(ctl_find_command(cmd));
    fprintf(ctl_out,
            "\nFields of %s (besides --id and --at, which default "
            "to a fresh id and now):\n",
            type);
    if (trace_event_fields(type, print_field, NULL) != TRACE_OK) {
        fprintf(ctl_err,
                "tracectl: %s is not an event type (party, permit, "
                "permit_status, produce, sale, receipt, transfer, "
                "consume, dispense, import, export, destroy, loss, "
                "stocktake, correction, alert_ack)\n",
                type);
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "record") == 0)
        fprintf(ctl_out, "  --%-22s %s\n", "override REASON",
                "record despite the checks at entry, saying why");
    return 0;
}

/* The checks at entry on the event in buf (ops "check"): with check_only
 * its findings are the output (exit 2 if any); for record they are
 * printed to stderr and refuse the event (exit 2) unless an override is
 * given.  0 to go on recording. */
static int run_checks(struct globals *g, trace_ledger *l, const char *buf,
                      int check_only, const char *override)
{
    Trace__Ops__V1__Check ck = TRACE__OPS__V1__CHECK__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    ops_render r;
    int ret;

    ck.line = (char *)buf;
    call.op_case = TRACE__OPS__V1__CALL__OP_CHECK;
    call.check = &ck;
    ctl_render_init(g, &r);
    if (!check_only) {
        r.out = ctl_err;
        r.json = 0;
        r.prefix = override ? "tracectl: warning: " : "tracectl: ";
    }
    ret = l ? ctl_call_on_into(g, l, &call, &r) : ctl_call_into(g, &call, &r);
    if (ret != 0)
        return ret;
    if (check_only)
        return r.rows ? 2 : 0;
    if (r.rows && !override) {
        fprintf(ctl_err, "tracectl: nothing was recorded; if it happened, "
                         "record it with --override REASON\n");
        return 2;
    }
    return 0;
}

int cmd_check(struct globals *g, int argc, char **argv)
{
    return record_or_check(g, argc, argv, R_CHECK);
}

int cmd_record(struct globals *g, int argc, char **argv)
{
    /* record party add|update|key: the registry's changes by name */
    if (argc >= 3 && strcmp(argv[1], "party") == 0) {
        if (strcmp(argv[2], "add") == 0) {
            argv[2] = argv[1];
            return record_or_check(g, argc - 1, argv + 1, R_RECORD);
        }
        if (strcmp(argv[2], "update") == 0 || strcmp(argv[2], "key") == 0) {
            enum rmode m = argv[2][0] == 'u' ? R_PARTY_UPDATE : R_PARTY_KEY;
            if (argc < 4 || strncmp(argv[3], "--", 2) == 0)
                return ctl_usage("record",
                                 "record party %s needs the "
                                 "party's id (SUBJECT)",
                                 argv[2]);
            /* argv[2] becomes the type's place: SUBJECT --FIELD ... */
            argv[2] = argv[1];
            return record_or_check(g, argc - 2, argv + 2, m);
        }
    }
    return record_or_check(g, argc, argv, R_RECORD);
}

int cmd_correct(struct globals *g, int argc, char **argv)
{
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("correct"));
        return 0;
    }
    if (argc < 2 || strncmp(argv[1], "--", 2) == 0)
        return ctl_usage("correct", "%s", "needs the EVENT-ID to correct");
    return record_or_check(g, argc, argv, R_CORRECT);
}

/* Rows of a read operation as JSON values (an array), or NULL with the
 * exit code in *ret. */
static json_t *call_rows(struct globals *g, trace_ledger *l,
                         const ops_call_t *call, int *ret)
{
    ops_render r;
    char *text = NULL, *line, *save = NULL;
    size_t n = 0;
    json_t *rows;
    FILE *m = open_memstream(&text, &n);

    if (!m) {
        *ret = 6;
        return NULL;
    }
    ctl_render_init(g, &r);
    r.out = m;
    r.json = 1;
    r.csv = 0;
    *ret = l ? ctl_call_on_into(g, l, call, &r) : ctl_call_into(g, call, &r);
    fclose(m);
    if (*ret != 0 || !(rows = json_array())) {
        free(text);
        if (*ret == 0)
            *ret = 6;
        return NULL;
    }
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *v = json_loads(line, 0, NULL);
        if (v)
            json_array_append_new(rows, v);
    }
    free(text);
    return rows;
}

/* Sets one --FIELD VALUE on obj, typed as record types it ("rx.x" in
 * obj's "rx", "ref.party" in obj's "ref": one level). */
static int set_field(json_t *obj, const char *name, const char *value)
{
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    json_t *v, *into = obj;
    int rc = -1;

    if (!m)
        return -1;
    const char *dot = strchr(name, '.');
    if (dot && dot > name && dot[1] && (size_t)(dot - name) < 64) {
        char outer[64];
        memcpy(outer, name, (size_t)(dot - name));
        outer[dot - name] = '\0';
        name = dot + 1;
        if (!json_is_object(into = json_object_get(obj, outer))) {
            into = json_object();
            json_object_set_new(obj, outer, into);
        }
    }
    fputc('{', m);
    record_field(m, name, value, 1);
    fputc('}', m);
    fclose(m);
    if ((v = json_loads(text, 0, NULL)) && into)
        rc = json_object_update(into, v);
    json_decref(v);
    free(text);
    return rc;
}

/* The party row of `subject` in the registry, as the fields of a party
 * event, or NULL (*ret: the exit code). */
static json_t *party_fields(struct globals *g, trace_ledger *l,
                            const char *subject, int *ret)
{
    Trace__Ops__V1__Parties q = TRACE__OPS__V1__PARTIES__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    json_t *rows, *row, *out = NULL;
    size_t i;

    call.op_case = TRACE__OPS__V1__CALL__OP_PARTIES;
    call.parties = &q;
    if (!(rows = call_rows(g, l, &call, ret)))
        return NULL;
    json_array_foreach(rows, i, row)
    {
        const char *p = json_string_value(json_object_get(row, "party"));
        if (p && strcmp(p, subject) == 0) {
            out = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O}", "subject", p,
                            "name", json_object_get(row, "name"), "kind",
                            json_object_get(row, "kind"), "region",
                            json_object_get(row, "region"), "licenses",
                            json_object_get(row, "licenses"), "status",
                            json_object_get(row, "status"));
            break;
        }
    }
    json_decref(rows);
    if (!out) {
        fprintf(ctl_err, "tracectl: %s is not a registered party\n", subject);
        *ret = 4;
    }
    return out;
}

/* The event `id` recorded by `party` as it stands (a replacement's
 * content if it was corrected with one), or NULL (*ret: the exit
 * code). */
static json_t *event_fields(struct globals *g, trace_ledger *l,
                            const char *party, const char *id, int *ret)
{
    Trace__Ops__V1__History q = TRACE__OPS__V1__HISTORY__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    json_t *rows, *row, *out = NULL;
    size_t i;
    int voided = 0;

    q.party = (char *)party;
    q.has_limit = 1;
    q.limit = 0;
    call.op_case = TRACE__OPS__V1__CALL__OP_HISTORY;
    call.history = &q;
    if (!(rows = call_rows(g, l, &call, ret)))
        return NULL;
    json_array_foreach(rows, i, row)
    {
        json_t *ev = json_object_get(row, "event");
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *eid = json_string_value(json_object_get(ev, "id"));
        if (!type || !eid)
            continue;
        if (strcmp(type, "correction") == 0) {
            const char *c = json_string_value(json_object_get(ev, "corrects"));
            json_t *rep = json_object_get(ev, "replacement");
            if (c && strcmp(c, id) == 0) {
                /* a later correction: its replacement is what stands */
                json_decref(out);
                out = json_is_object(rep) ? json_deep_copy(rep) : NULL;
                voided = !out;
            }
        } else if (strcmp(eid, id) == 0) {
            json_decref(out);
            out = json_deep_copy(ev);
            voided = 0;
        }
    }
    json_decref(rows);
    if (!out) {
        if (voided)
            fprintf(ctl_err, "tracectl: %s's event %s was voided\n", party, id);
        else
            fprintf(ctl_err, "tracectl: %s recorded no event %s\n", party, id);
        *ret = 4;
    }
    return out;
}

static int record_or_check(struct globals *g, int argc, char **argv,
                           enum rmode mode)
{
    int check_only = mode == R_CHECK;
    const char *cmd = check_only          ? "check"
                      : mode == R_CORRECT ? "correct"
                                          : "record",
               *override = NULL;
    int voiding = 0;
    char *buf = NULL, at[40], id[96];
    size_t len = 0;
    const char *type, *party, *user_id = NULL, *user_at = NULL;
    const char *target = NULL, *reason = NULL;
    const char *user_party = NULL, *receipt = NULL;
    const char *fields[64][2], *nested[64][2];
    size_t nf = 0, nn = 0;
    trace_ledger *l = NULL;
    trace_append_result res;
    struct timespec ts;
    int ret = 0;
    FILE *m;

    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command(cmd));
        return 0;
    }
    if (argc < 2)
        return ctl_usage(cmd, "%s", "needs an event TYPE");
    type = argv[1];
    if (mode == R_CORRECT || mode == R_PARTY_UPDATE || mode == R_PARTY_KEY) {
        target = argv[1]; /* the event id, or the party's id */
        type = mode == R_CORRECT ? "correction" : "party";
    }
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i], *value;
        if (strncmp(name, "--", 2) != 0)
            return ctl_usage(cmd, "expected --FIELD VALUE, got %s", name);
        name += 2;
        if (strcmp(name, "help") == 0)
            return mode == R_CORRECT ? (ctl_help(ctl_find_command(cmd)), 0)
                                     : type_help(cmd, type);
        if (strcmp(name, "void") == 0 && strcmp(type, "correction") == 0) {
            voiding = 1; /* a flag of tracectl, not a field */
            continue;
        }
        if (strcmp(name, "receipt") == 0 && !check_only) {
            /* an option of tracectl, not a field: where the receipt goes */
            if (i + 1 >= argc)
                return ctl_usage(cmd, "%s", "--receipt takes a FILE");
            receipt = argv[++i];
            continue;
        }
        if (strcmp(name, "chronic") == 0 &&
            (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true";
        } else {
            if (i + 1 >= argc)
                return ctl_usage(cmd, "--%s needs a value", name);
            value = argv[++i];
        }
        for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
            if (strcmp(aliases[k].flag, name) == 0)
                name = aliases[k].field;
        if (strcmp(name, "override") == 0) {
            if (check_only)
                return ctl_usage(cmd, "%s", "--override is for record");
            override = value;
        }
        if (mode == R_CORRECT && strcmp(name, "reason") == 0)
            reason = value;
        else if (mode == R_CORRECT && strcmp(name, "override") == 0)
            ; /* the correction's, not the replacement's */
        else if (mode == R_CORRECT &&
                 (strchr(name, '.') || strcmp(name, "id") != 0) && nf < 64)
            fields[nf][0] = name, fields[nf++][1] = value;
        else if (strcmp(name, "id") == 0)
            user_id = value;
        else if (strcmp(name, "party") == 0)
            user_party = value; /* must match --as: refused otherwise */
        else if (strcmp(name, "at") == 0)
            user_at = value;
        else if (strchr(name, '.') && nn < 64) /* rx.id, ref.party */
            nested[nn][0] = name, nested[nn++][1] = value;
        else if (nf < 64)
            fields[nf][0] = name, fields[nf++][1] = value;
        else
            return ctl_usage(cmd, "%s", "too many fields");
    }
    if (mode == R_CORRECT && !reason)
        return ctl_usage(cmd, "%s",
                         "--reason R is required: why the event "
                         "is corrected");
    if (mode == R_CORRECT && nf == 0)
        return ctl_usage(cmd, "%s",
                         "nothing to change: give the corrected fields "
                         "(--qty 98.5 ...), or void the event with record "
                         "correction --corrects ID --void");
    if (mode == R_PARTY_KEY) {
        int has_key = 0;
        for (size_t i = 0; i < nf; i++) {
            if (strcmp(fields[i][0], "pubkey") == 0)
                has_key = 1;
            else if (strcmp(fields[i][0], "revoke") != 0 &&
                     strcmp(fields[i][0], "override") != 0)
                return ctl_usage(cmd,
                                 "record party key takes --pubkey KEY "
                                 "and --revoke OLD-KEY, not --%s",
                                 fields[i][0]);
        }
        if (!has_key)
            return ctl_usage(cmd, "%s",
                             "record party key needs --pubkey KEY (the new "
                             "public key, as tracectl keygen prints it)");
    }
    if (mode == R_RECORD && strcmp(type, "correction") == 0) {
        /* a correction without a replacement voids the event: never by
         * accident */
        int has_replacement = 0;
        for (size_t i = 0; i < nf; i++)
            has_replacement |= strcmp(fields[i][0], "replacement") == 0;
        if (!has_replacement && !voiding)
            return ctl_usage(cmd, "%s",
                             "a correction without a replacement voids the "
                             "event it corrects: say --void to void it (or "
                             "import a correction line with its replacement)");
        if (has_replacement && voiding)
            return ctl_usage(cmd, "%s",
                             "--void and a replacement contradict each other");
    }
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    party = ctl_acting_party(g, l);
    clock_gettime(CLOCK_REALTIME, &ts);
    ctl_now_text(at, sizeof(at), ts.tv_sec);
    snprintf(id, sizeof(id), "%s-%lld%06ld", type, (long long)ts.tv_sec,
             ts.tv_nsec / 1000);
    if (!(m = open_memstream(&buf, &len))) {
        ret = 6;
        goto out;
    }
    if (mode == R_RECORD || mode == R_CHECK) {
        fputc('{', m);
        ops_json_str(m, "type", type, 0);
        ops_json_str(m, "id", user_id ? user_id : id, 1);
        ops_json_str(m, "party", user_party ? user_party : party, 1);
        ops_json_str(m, "at", user_at ? user_at : at, 1);
        for (size_t i = 0; i < nf; i++)
            record_field(m, fields[i][0], fields[i][1], 0);
        /* nested fields, one object per outer name in the order first
         * given: "rx":{...}, "ref":{...} */
        for (size_t i = 0; i < nn; i++) {
            size_t len_i = (size_t)(strchr(nested[i][0], '.') - nested[i][0]);
            int first = 1, done = 0;
            for (size_t j = 0; j < i && !done; j++)
                done = strncmp(nested[j][0], nested[i][0], len_i + 1) == 0;
            if (done)
                continue;
            fprintf(m, ",\"%.*s\":{", (int)len_i, nested[i][0]);
            for (size_t j = i; j < nn; j++)
                if (strncmp(nested[j][0], nested[i][0], len_i + 1) == 0) {
                    record_field(m, nested[j][0] + len_i + 1, nested[j][1],
                                 first);
                    first = 0;
                }
            fputc('}', m);
        }
        fputc('}', m);
    } else {
        /* what the ledger holds, with the given fields changed */
        json_t *base = mode == R_CORRECT
                           ? event_fields(g, l, party, target, &ret)
                           : party_fields(g, l, target, &ret);
        json_t *ev;
        char *text;
        if (!base) {
            fclose(m);
            goto out;
        }
        for (size_t i = 0; i < nf; i++)
            if (set_field(base, fields[i][0], fields[i][1]) != 0) {
                fprintf(ctl_err, "tracectl: --%s: cannot set it\n",
                        fields[i][0]);
                ret = 2;
            }
        for (size_t i = 0; i < nn; i++)
            if (set_field(base, nested[i][0], nested[i][1]) != 0)
                ret = 2;
        ev = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "id",
                       user_id ? user_id : id, "party",
                       user_party ? user_party : party, "at",
                       user_at && mode != R_CORRECT ? user_at : at);
        if (mode == R_CORRECT) {
            json_object_set_new(ev, "corrects", json_string(target));
            json_object_set_new(ev, "reason", json_string(reason));
            json_object_set_new(ev, "replacement", base);
        } else {
            json_object_update(ev, base);
            json_decref(base);
        }
        if (override)
            json_object_set_new(ev, "override", json_string(override));
        text = ret ? NULL : json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(ev);
        if (text)
            fputs(text, m);
        free(text);
        if (ret) {
            fclose(m);
            goto out;
        }
    }
    if (fclose(m) != 0) {
        ret = 6;
        goto out;
    }
    if ((ret = run_checks(g, l, buf, check_only, override)) != 0 || check_only)
        goto out;
    if (receipt && !l && !(g->receipts = ctl_receipts_new())) {
        ret = 6;
        goto out;
    }
    if ((ret = append_one(g, l, buf, len, party, &res)) != 0)
        goto out;
    if (g->json)
        fprintf(ctl_out, "{\"party\":\"%s\",\"id\":\"%s\",\"seq\":%llu}\n",
                party, user_id ? user_id : id,
                (unsigned long long)res.last_seq);
    else if (res.appended)
        fprintf(ctl_out, "recorded %s %s for %s (entry %llu)\n", type,
                user_id ? user_id : id, party,
                (unsigned long long)res.last_seq);
    else
        fprintf(ctl_out, "%s %s was already recorded\n", type,
                user_id ? user_id : id);
    if (receipt)
        ret = ctl_receipt_save(g, l, receipt, &res);
out:
    ctl_receipts_free(g->receipts);
    g->receipts = NULL;
    free(buf);
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* reconcile, alerts, ack                                               */

static int print_rule(const char *code, const char *severity,
                      const char *params, const char *summary, void *ctx)
{
    (void)ctx;
    fprintf(ctl_out, "  %-20s %-8s %s\n  %-20s          %s\n", code, severity,
            summary, "", params[0] ? params : "(no parameters)");
    return 0;
}

int cmd_reconcile(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"as-of", required_argument, NULL, 'a'},
        {"rules", required_argument, NULL, 'r'},
        {"dry-run", no_argument, NULL, 'n'},
        {"incremental", no_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Reconcile rq = TRACE__OPS__V1__RECONCILE__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (ctl_parse_when(optarg, 1, &rq.as_of_us) != 0) {
                free(rq.rules.data);
                return ctl_bad_time("reconcile", "--as-of", optarg);
            }
            rq.has_as_of_us = 1;
            break;
        case 'r':
            if ((ret = ctl_rules_option(g, "reconcile", optarg, &rq.rules)))
                return ret;
            rq.has_rules = 1;
            break;
        case 'n':
            rq.has_dry_run = rq.dry_run = 1;
            break;
        case 'i':
            rq.has_incremental = rq.incremental = 1;
            break;
        case 'h':
            free(rq.rules.data);
            ctl_help(ctl_find_command("reconcile"));
            fprintf(ctl_out,
                    "\nRules (code, default severity; parameters and defaults):"
                    "\n");
            trace_rules_describe(print_rule, NULL);
            return 0;
        default:
            free(rq.rules.data);
            return ctl_usage("reconcile", "%s", "unknown option");
        }
    }
    if (optind != argc) {
        free(rq.rules.data);
        return ctl_usage("reconcile", "unexpected argument %s", argv[optind]);
    }
    call.op_case = TRACE__OPS__V1__CALL__OP_RECONCILE;
    call.reconcile = &rq;
    ret = ctl_call(g, &call);
    free(rq.rules.data);
    return ret;
}

int cmd_alerts(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"open", no_argument, NULL, 'o'},
        {"status", required_argument, NULL, 's'},
        {"rule", required_argument, NULL, 'r'},
        {"party", required_argument, NULL, 'p'},
        {"follow", no_argument, NULL, 'f'},
        {"after", required_argument, NULL, 'A'},
        {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Alerts f = TRACE__OPS__V1__ALERTS__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            f.status = "open";
            break;
        case 's':
            f.status = optarg;
            break;
        case 'r':
            f.rule = optarg;
            break;
        case 'p':
            f.party = optarg;
            break;
        case 'f':
            g->follow = 1;
            break;
        case 'c':
            g->csv = 1;
            break;
        case 'A':
            /* alerts stored after position N, as a continuation of an
             * earlier listing: no header */
            f.after = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return ctl_usage("alerts", "bad --after %s", optarg);
            f.has_after = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("alerts"));
            return 0;
        default:
            return ctl_usage("alerts", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("alerts", "unexpected argument %s", argv[optind]);
    call.op_case = TRACE__OPS__V1__CALL__OP_ALERTS;
    call.alerts = &f;
    /* --follow: then the alerts reconciliation runs store (a nightly job
     * or another tracectl), until interrupted */
    return g->follow ? ctl_follow_alerts(g, &call) : ctl_call(g, &call);
}

struct find_alert {
    const char *id;
    int found;
};

static int match_alert(const trace_alert *a, void *ctx)
{
    struct find_alert *fa = ctx;
    if (strcmp(a->id, fa->id) == 0)
        fa->found = 1;
    return 0;
}

int cmd_ack(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 's'},
        {"note", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *status = "acknowledged", *note = NULL, *as;
    struct find_alert fa = {NULL, 0};
    trace_append_result res;
    trace_ledger *l = NULL;
    char line[4096], when[40], id[128];
    struct timespec ts;
    int c, rc, ret = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            status = optarg;
            break;
        case 'n':
            note = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("ack"));
            return 0;
        default:
            return ctl_usage("ack", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("ack", "%s", "needs exactly one ALERT id");
    if (strcmp(status, "acknowledged") != 0 &&
        strcmp(status, "resolved") != 0 && strcmp(status, "open") != 0)
        return ctl_usage("ack",
                         "--status must be acknowledged, resolved or "
                         "open, not %s",
                         status);
    if (!note)
        note = status; /* the event needs a note; say what was done */
    fa.id = argv[optind];
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    /* (a daemon checks this itself when it prepares the event) */
    if (l && (rc = trace_alerts(l, NULL, match_alert, &fa)) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    if (l && !fa.found) {
        fprintf(ctl_err, "tracectl: no alert %s (run reconcile first)\n",
                fa.id);
        ret = 4;
        goto out;
    }
    as = ctl_acting_party(g, l);
    clock_gettime(CLOCK_REALTIME, &ts);
    ctl_now_text(when, sizeof(when), ts.tv_sec);
    snprintf(id, sizeof(id), "ack-%s-%lld%06ld", fa.id, (long long)ts.tv_sec,
             ts.tv_nsec / 1000);
    /* the note is user text: let the JSON writer escape it */
    {
        FILE *m = fmemopen(line, sizeof(line), "w");
        if (!m) {
            ret = 6;
            goto out;
        }
        fputc('{', m);
        ops_json_str(m, "type", "alert_ack", 0);
        ops_json_str(m, "id", id, 1);
        ops_json_str(m, "party", as, 1);
        ops_json_str(m, "at", when, 1);
        ops_json_str(m, "alert", fa.id, 1);
        ops_json_str(m, "status", status, 1);
        ops_json_str(m, "note", note, 1);
        fputc('}', m);
        if (fclose(m) != 0 || strlen(line) >= sizeof(line) - 1) {
            fprintf(ctl_err, "tracectl: note too long\n");
            ret = 2;
            goto out;
        }
    }
    if ((ret = append_one(g, l, line, strlen(line), as, &res)) != 0)
        goto out;
    fprintf(ctl_out, "%s %s by %s (event %s)\n", fa.id, status, as, id);
out:
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* parcels: the three 100 % checks per courier outlet                   */

struct outlet_tally {
    char outlet[128];
    unsigned long n, sender, opened, scanned, all;
};

int cmd_parcels(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"outlet", required_argument, NULL, 'o'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Export x = TRACE__OPS__V1__EXPORT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    const char *outlet = NULL;
    struct outlet_tally *t = NULL;
    size_t nt = 0, i;
    trace_ledger *l = NULL;
    json_t *rows, *row;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outlet = optarg;
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &x.from_us) != 0)
                return ctl_bad_time("parcels", "--from", optarg);
            x.has_from_us = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 1, &x.to_us) != 0)
                return ctl_bad_time("parcels", "--to", optarg);
            x.has_to_us = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("parcels"));
            return 0;
        default:
            return ctl_usage("parcels", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("parcels", "unexpected argument %s", argv[optind]);
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    /* the parcels the caller may read: a regulator all, an outlet's
     * party its own (export's access) */
    call.op_case = TRACE__OPS__V1__CALL__OP_EXPORT;
    call.export = &x;
    if (!(rows = call_rows(g, l, &call, &ret))) {
        ctl_close(g, l);
        return ret;
    }
    json_array_foreach(rows, i, row)
    {
        json_t *ev =
            json_object_get(row, "event") ? json_object_get(row, "event") : row;
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *o = json_string_value(json_object_get(ev, "outlet"));
        struct outlet_tally *k = NULL;
        if (!type || strcmp(type, "parcel") != 0 || !o ||
            (outlet && strcmp(o, outlet) != 0))
            continue;
        for (size_t j = 0; j < nt && !k; j++)
            if (strcmp(t[j].outlet, o) == 0)
                k = &t[j];
        if (!k) {
            struct outlet_tally *nt2 = realloc(t, (nt + 1) * sizeof(*t));
            if (!nt2)
                break;
            t = nt2;
            k = &t[nt++];
            memset(k, 0, sizeof(*k));
            snprintf(k->outlet, sizeof(k->outlet), "%s", o);
        }
        int s = json_is_true(json_object_get(ev, "sender_verified"));
        int op = json_is_true(json_object_get(ev, "opened"));
        int sc = json_is_true(json_object_get(ev, "scanned"));
        k->n++;
        k->sender += s;
        k->opened += op;
        k->scanned += sc;
        k->all += s && op && sc;
    }
    json_decref(rows);
#define RATE(a, n) ((n) ? 100.0 * (double)(a) / (double)(n) : 0.0)
    /* (the zh heading padded by display width: a Chinese character is two
     * columns) */
    if (!g->json && g->lang == OPS_LANG_ZH)
        fprintf(ctl_out, "网点                     包裹     实名%%     开箱%%"
                         "     过机%%     全部%%\n");
    else if (!g->json)
        fprintf(ctl_out, "%-20s %8s %9s %9s %9s %9s\n", "outlet", "parcels",
                "sender%", "opened%", "x-ray%", "all%");
    for (i = 0; i < nt; i++) {
        const struct outlet_tally *k = &t[i];
        if (g->json) {
            fputc('{', ctl_out);
            ops_json_str(ctl_out, "outlet", k->outlet, 0);
            fprintf(ctl_out,
                    ",\"parcels\":%lu,\"sender_verified\":%lu,\"opened\":%lu,"
                    "\"scanned\":%lu,\"all_three\":%lu,\"rate_all\":%.1f}\n",
                    k->n, k->sender, k->opened, k->scanned, k->all,
                    RATE(k->all, k->n));
        } else {
            fprintf(ctl_out, "%-20s %8lu %8.1f%% %8.1f%% %8.1f%% %8.1f%%\n",
                    k->outlet, k->n, RATE(k->sender, k->n),
                    RATE(k->opened, k->n), RATE(k->scanned, k->n),
                    RATE(k->all, k->n));
        }
    }
#undef RATE
    if (!nt && !g->json)
        fprintf(ctl_out, "(no parcels)\n");
    free(t);
    ctl_close(g, l);
    return 0;
}
