/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_import.c - tracectl import and export: JSON Lines and CSV into a
 * ledger (one import transaction, or chunk by chunk through traced),
 * JSON Lines out.  The EPCIS format of both is in cmd_epcis.c.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/csvmap.h"
#include "trace/reconcile.h"
#include "tracectl.h"

/* ------------------------------------------------------------------ */
/* import                                                               */

void print_imported(struct globals *g, const trace_append_result *res)
{
    if (g->json)
        fprintf(ctl_out,
                "{\"appended\":%llu,\"duplicates\":%llu,\"provisioned\":%llu,"
                "\"first_seq\":%llu,\"last_seq\":%llu,\"warnings\":%llu}\n",
                (unsigned long long)res->appended,
                (unsigned long long)res->duplicates,
                (unsigned long long)res->provisioned,
                (unsigned long long)res->first_seq,
                (unsigned long long)res->last_seq,
                (unsigned long long)res->warnings);
    else if (res->warnings)
        fprintf(ctl_out,
                "imported %llu events (%llu already present, %llu keys "
                "provisioned, %llu finding%s at entry)\n",
                (unsigned long long)(res->appended - res->provisioned),
                (unsigned long long)res->duplicates,
                (unsigned long long)res->provisioned,
                (unsigned long long)res->warnings,
                res->warnings == 1 ? "" : "s");
    else
        fprintf(ctl_out,
                "imported %llu events (%llu already present, %llu keys "
                "provisioned)\n",
                (unsigned long long)(res->appended - res->provisioned),
                (unsigned long long)res->duplicates,
                (unsigned long long)res->provisioned);
}

/* After an import with findings at entry: an incremental reconciliation
 * now, so their alerts are raised at once (traced does the same). */
static void reconcile_now(trace_ledger *l)
{
    trace_reconcile_opts o = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum;

    o.incremental = 1;
    if (trace_reconcile(l, &o, NULL, NULL, &sum) == TRACE_OK)
        fprintf(ctl_err,
                "tracectl: reconciliation: %llu new alerts (tracectl alerts "
                "--open)\n",
                (unsigned long long)sum.new_alerts);
    else
        fprintf(ctl_err,
                "tracectl: the import is stored, but reconciliation failed: "
                "%s\n",
                trace_error_last());
}

/* Prints the findings of the checks at entry waiting in `im`. */
static void print_warnings(trace_import *im, unsigned long *shown)
{
    const char *w;

    while ((w = trace_import_next_warning(im)) != NULL)
        if (++*shown <= MAX_REPORTED_WARNINGS)
            fprintf(ctl_err, "tracectl: warning: %s\n", w);
}

/* import through a daemon: the input is prepared chunk by chunk as it is
 * read, and committed once every chunk passed (remote_import). */
static int import_remote(struct globals *g, const char *path, unsigned flags,
                         const char *receipt)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    trace_append_result res;
    int rc, ret = 0, read_failed;

    if (!in) {
        fprintf(ctl_err, "tracectl: %s: %s\n", path, strerror(errno));
        return 4;
    }
    if (receipt && !(g->receipts = ctl_receipts_new())) {
        ret = 6;
        goto out;
    }
    rc = ctl_import_stream(g, in, g->as, flags, &res, &read_failed);
    if (read_failed) {
        fprintf(ctl_err, "tracectl: %s: read error; nothing was imported\n",
                path);
        ret = 6;
        goto out;
    }
    if (rc != TRACE_OK) {
        const char *m = ctl_errmsg(), *nl;
        unsigned long rejected, total;
        /* one message per rejected line, as an embedded import prints */
        for (; (nl = strchr(m, '\n')); m = nl + 1)
            fprintf(ctl_err, "tracectl: %.*s\n", (int)(nl - m), m);
        ctl_rejected(&rejected, &total);
        if (rejected)
            fprintf(ctl_err,
                    "tracectl: %s\ntracectl: %lu of %lu lines rejected; "
                    "nothing was imported\n",
                    m, rejected, total);
        else
            fprintf(ctl_err, "tracectl: %s\ntracectl: nothing was imported\n",
                    m);
        ret = trace_error_exit_code(rc);
        goto out;
    }
    print_imported(g, &res);
    if (receipt)
        ret = ctl_receipt_save(g, NULL, receipt, &res);
out:
    ctl_receipts_free(g->receipts);
    g->receipts = NULL;
    if (in != stdin)
        fclose(in);
    return ret;
}

/* A private copy of the key folder for a dry run's provisioned keys. */
static int copy_keys_tmp(const char *dir, char *tmp, size_t cap)
{
    char src[4096], dst[4096], buf[8192];
    struct dirent *e;
    DIR *d;

    snprintf(tmp, cap, "/tmp/trace-dry-keys-XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(ctl_err, "tracectl: cannot make a folder for the dry run: %s\n",
                strerror(errno));
        tmp[0] = '\0';
        return 6;
    }
    if (!(d = opendir(dir)))
        return 0; /* no keys yet */
    while ((e = readdir(d))) {
        FILE *in, *out;
        size_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(src, sizeof(src), "%s/%s", dir, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", tmp, e->d_name);
        if (!(in = fopen(src, "rb")))
            continue;
        if (!(out = fopen(dst, "wb"))) {
            fclose(in);
            continue;
        }
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(in);
        fclose(out);
        chmod(dst, 0600);
    }
    closedir(d);
    return 0;
}

static void remove_tmp_keys(const char *tmp)
{
    char path[4096];
    struct dirent *e;
    DIR *d = opendir(tmp);

    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(tmp);
}

/* import --format csv: each record of the CSV becomes one JSON line
 * given to the import, numbered by the line it starts on. */
struct csv_run {
    trace_import *im;
    unsigned long errors, warned;
    int first_err;
};

static void csv_error(struct csv_run *x, int rc, const char *msg)
{
    if (x->first_err == TRACE_OK)
        x->first_err = rc;
    if (++x->errors <= MAX_REPORTED_ERRORS)
        fprintf(ctl_err, "tracectl: %s\n", msg);
}

static int csv_line(void *ctx, const char *line, size_t len,
                    unsigned long lineno)
{
    struct csv_run *x = ctx;
    int rc = trace_import_line(x->im, line, len, lineno);

    print_warnings(x->im, &x->warned);
    if (rc != TRACE_OK)
        csv_error(x, rc, trace_error_last());
    return 0;
}

static int csv_reject(void *ctx, unsigned long lineno, const char *reason)
{
    (void)lineno;
    csv_error(ctx, TRACE_EINVAL, reason);
    return 0;
}

/* Reads the CSV through the mapping at `map` into the import `im`; 0 or
 * the exit code. */
static int import_csv(trace_import *im, FILE *in, const char *path,
                      const char *map)
{
    struct csv_run x = {im, 0, 0, TRACE_OK};
    trace_csvmap *m = NULL;
    FILE *mf = fopen(map, "rb");
    unsigned long rows = 0;
    int rc, ret = 0;

    if (!mf) {
        fprintf(ctl_err, "tracectl: %s: %s\n", map, strerror(errno));
        return 4;
    }
    rc = trace_csvmap_load(&m, mf);
    fclose(mf);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s: %s\ntracectl: nothing was imported\n",
                map, trace_error_last());
        return trace_error_exit_code(rc);
    }
    rc = trace_csvmap_read(m, in, csv_line, csv_reject, &x, &rows);
    while (rc == TRACE_OK && (rc = trace_import_next_error(im)) != TRACE_OK) {
        csv_error(&x, rc, trace_error_last());
        rc = TRACE_OK;
    }
    print_warnings(im, &x.warned);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s: %s\ntracectl: nothing was imported\n",
                path, trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    if (x.errors) {
        if (x.errors > MAX_REPORTED_ERRORS)
            fprintf(ctl_err, "tracectl: ... %lu more rejected rows\n",
                    x.errors - MAX_REPORTED_ERRORS);
        fprintf(ctl_err,
                "tracectl: %lu of %lu rows rejected; nothing was imported\n",
                x.errors, rows);
        ret = trace_error_exit_code(x.first_err);
    }
out:
    trace_csvmap_free(m);
    return ret;
}

int cmd_import(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"provision-keys", no_argument, NULL, 'p'},
        {"historic", no_argument, NULL, 'H'},
        {"dry-run", no_argument, NULL, 'n'},
        {"strict", no_argument, NULL, 's'},
        {"receipt", required_argument, NULL, 'r'},
        {"format", required_argument, NULL, 'F'},
        {"map", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    unsigned flags = 0, checks = TRACE_APPEND_CHECK;
    const char *receipt = NULL, *map = NULL;
    int dry_run = 0, epcis = 0, csv = 0;
    char tmp_keys[64] = "";
    trace_ledger *l = NULL;
    trace_keyring *ring = NULL;
    trace_import *im = NULL;
    trace_append_result res;
    struct stat st;
    uint64_t hint = 0;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0, errors = 0, warned = 0;
    int c, rc, ret = 0, first_err = TRACE_OK, tty = isatty(2);

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            flags |= TRACE_APPEND_PROVISION_KEYS;
            break;
        case 'H':
            flags |= TRACE_APPEND_HISTORIC;
            break;
        case 'n':
            dry_run = 1;
            break;
        case 's':
            checks = TRACE_APPEND_STRICT;
            break;
        case 'r':
            receipt = optarg;
            break;
        case 'F':
            epcis = strcmp(optarg, "epcis") == 0;
            csv = strcmp(optarg, "csv") == 0;
            if (!epcis && !csv && strcmp(optarg, "jsonl") != 0)
                return ctl_usage("import",
                                 "unknown --format %s (jsonl, epcis, csv)",
                                 optarg);
            break;
        case 'm':
            map = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("import"));
            return 0;
        default:
            return ctl_usage("import", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return ctl_usage("import", "%s", "needs exactly one FILE (or -)");
    if (csv != (map != NULL))
        return ctl_usage("import", "%s",
                         "--format csv needs --map MAP, and --map is for "
                         "--format csv");
    if ((flags & TRACE_APPEND_HISTORIC) && checks == TRACE_APPEND_STRICT)
        return ctl_usage("import", "%s",
                         "--historic records are not checked at entry: "
                         "--strict has nothing to refuse");
    if (dry_run && receipt)
        return ctl_usage("import", "%s",
                         "a dry run stores nothing: it has no receipt");
    if (!(flags & TRACE_APPEND_HISTORIC))
        flags |= checks;
    if ((ret = ctl_open(g, &l)) != 0)
        return ret;
    if (!l && dry_run) {
        fprintf(ctl_err, "tracectl: import --dry-run is for a ledger folder "
                         "(--data); through traced every chunk is checked "
                         "before anything is committed\n");
        return EXIT_USAGE;
    }
    if (!l && epcis)
        return import_epcis_remote(g, argv[optind], flags, receipt);
    if (!l && csv) {
        fprintf(ctl_err, "tracectl: import --format csv: use --data DIR "
                         "(not yet through traced)\n");
        return EXIT_USAGE;
    }
    if (!l)
        return import_remote(g, argv[optind], flags, receipt);
    /* a dry run provisions keys in a copy of the key folder, dropped after */
    if (dry_run && (flags & TRACE_APPEND_PROVISION_KEYS) &&
        (ret = copy_keys_tmp(ctl_keys_dir(g), tmp_keys, sizeof(tmp_keys))) != 0)
        goto out;
    if ((rc = trace_keyring_open(
             &ring, tmp_keys[0] ? tmp_keys : ctl_keys_dir(g), 0)) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    in = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    if (!in) {
        fprintf(ctl_err, "tracectl: %s: %s\n", argv[optind], strerror(errno));
        ret = 4;
        goto out;
    }
    if (in != stdin && fstat(fileno(in), &st) == 0)
        hint = (uint64_t)st.st_size;
    /* one transaction for the whole input, written as it is read */
    if ((rc = trace_import_begin(&im, l, ring, g->as, flags, hint)) !=
        TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    if (epcis) {
        if ((ret = import_epcis(g, l, im, in, argv[optind])) != 0)
            goto out;
        goto commit;
    }
    if (csv) {
        if ((ret = import_csv(im, in, argv[optind], map)) != 0)
            goto out;
        goto commit;
    }
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        rc = trace_import_line(im, line, (size_t)n, lineno);
        print_warnings(im, &warned);
        if (rc != TRACE_OK) {
            if (first_err == TRACE_OK)
                first_err = rc;
            if (++errors <= MAX_REPORTED_ERRORS)
                fprintf(ctl_err, "tracectl: %s\n", trace_error_last());
        }
        if (tty && lineno % 100000 == 0)
            fprintf(ctl_err, "\rread %lu lines", lineno);
    }
    if (tty && lineno >= 100000)
        fprintf(ctl_err, "\rread %lu lines\n", lineno);
    /* the lines given last are checked behind the reading */
    while ((rc = trace_import_next_error(im)) != TRACE_OK) {
        if (first_err == TRACE_OK)
            first_err = rc;
        if (++errors <= MAX_REPORTED_ERRORS)
            fprintf(ctl_err, "tracectl: %s\n", trace_error_last());
    }
    print_warnings(im, &warned);
    if (warned > MAX_REPORTED_WARNINGS)
        fprintf(ctl_err, "tracectl: warning: ... %lu more findings\n",
                warned - MAX_REPORTED_WARNINGS);
    if (ferror(in)) {
        fprintf(ctl_err, "tracectl: %s: read error; nothing was imported\n",
                argv[optind]);
        ret = 6;
        goto out;
    }
    if (errors) {
        if (errors > MAX_REPORTED_ERRORS)
            fprintf(ctl_err, "tracectl: ... %lu more rejected lines\n",
                    errors - MAX_REPORTED_ERRORS);
        fprintf(ctl_err,
                "tracectl: %lu of %lu lines rejected; nothing was imported\n",
                errors, lineno);
        ret = trace_error_exit_code(first_err);
        goto out;
    }
commit:
    rc = dry_run ? trace_import_check(im, &res) : trace_import_commit(im, &res);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: %s\ntracectl: nothing was imported\n",
                trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    if (dry_run) {
        if (g->json)
            fprintf(ctl_out,
                    "{\"dry_run\":true,\"appended\":%llu,\"duplicates\":%llu,"
                    "\"provisioned\":%llu,\"warnings\":%llu}\n",
                    (unsigned long long)res.appended,
                    (unsigned long long)res.duplicates,
                    (unsigned long long)res.provisioned,
                    (unsigned long long)res.warnings);
        else
            fprintf(ctl_out,
                    "dry run: %llu events would be imported (%llu already "
                    "present, %llu keys would be provisioned); nothing was "
                    "stored\n",
                    (unsigned long long)(res.appended - res.provisioned),
                    (unsigned long long)res.duplicates,
                    (unsigned long long)res.provisioned);
    } else {
        print_imported(g, &res);
        if (receipt)
            ret = ctl_receipt_save(g, l, receipt, &res);
        if (res.warnings) {
            trace_import_free(im); /* its transaction ended: free the writer */
            im = NULL;
            reconcile_now(l);
        }
    }
out:
    trace_import_free(im); /* aborts what was not committed */
    if (tmp_keys[0])
        remove_tmp_keys(tmp_keys);
    if (in && in != stdin)
        fclose(in);
    free(line);
    trace_keyring_free(ring);
    ctl_close(g, l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* export                                                               */

int cmd_export(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"party", required_argument, NULL, 'p'},
        {"format", required_argument, NULL, 'F'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Export x = TRACE__OPS__V1__EXPORT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c, epcis = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            x.party = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "epcis") == 0)
                epcis = 1;
            else if (strcmp(optarg, "jsonl") != 0)
                return ctl_usage("export", "unknown --format %s (jsonl, epcis)",
                                 optarg);
            break;
        case 'f':
            if (ctl_parse_when(optarg, 0, &x.from_us) != 0)
                return ctl_bad_time("export", "--from", optarg);
            x.has_from_us = 1;
            break;
        case 't':
            if (ctl_parse_when(optarg, 1, &x.to_us) != 0)
                return ctl_bad_time("export", "--to", optarg);
            x.has_to_us = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("export"));
            return 0;
        default:
            return ctl_usage("export", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("export", "unexpected argument %s", argv[optind]);
    if (x.party && !trace_party_id_valid(x.party))
        return ctl_usage("export", "invalid party id %s", x.party);
    if (epcis)
        return export_epcis(g, &x);
    call.op_case = TRACE__OPS__V1__CALL__OP_EXPORT;
    call.export = &x;
    return ctl_call(g, &call);
}
