/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_ledger.c - tracectl commands that create, copy and check a ledger:
 * init, keygen, verify, backup, status.  Filling and reading it out in
 * bulk (import, export) are in cmd_import.c and cmd_epcis.c.
 */
#include <ctype.h>
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
/* init                                                                 */

int cmd_init(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"regulator", required_argument, NULL, 'r'},
        {"catalog", required_argument, NULL, 'c'},
        {"tz", required_argument, NULL, 'z'},
        {"max-qty", required_argument, NULL, 'q'},
        {"regime", required_argument, NULL, 'g'},
        {"regimes", required_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_init_opts io = TRACE_INIT_OPTS_INIT;
    const char *max_qty[8]; /* "QTY UNIT" each; the last of a dimension wins */
    size_t n_max_qty = 0;
    trace_keyring *ring = NULL;
    trace_ledger *l = NULL;
    const trace_key *key = NULL;
    char *catalog = NULL, *regimes = NULL;
    size_t regimes_len = 0;
    int c, rc, ret = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            io.regulator = optarg;
            break;
        case 'c': {
            FILE *f = fopen(optarg, "rb");
            long n;
            if (!f) {
                fprintf(ctl_err, "tracectl: %s: %s\n", optarg, strerror(errno));
                free(regimes);
                return 4;
            }
            fseek(f, 0, SEEK_END);
            n = ftell(f);
            rewind(f);
            catalog = malloc((size_t)n + 1);
            if (!catalog || fread(catalog, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                free(catalog);
                free(regimes);
                fprintf(ctl_err, "tracectl: cannot read %s\n", optarg);
                return 6;
            }
            fclose(f);
            io.catalog_json = catalog;
            io.catalog_len = (size_t)n;
            break;
        }
        case 'z': {
            /* exactly +HH:MM or -HH:MM, as in an RFC 3339 time */
            const char *z = optarg;
            int hh, mm;
            if (strlen(z) != 6 || (z[0] != '+' && z[0] != '-') ||
                !isdigit((unsigned char)z[1]) ||
                !isdigit((unsigned char)z[2]) || z[3] != ':' ||
                !isdigit((unsigned char)z[4]) ||
                !isdigit((unsigned char)z[5]) ||
                (hh = (z[1] - '0') * 10 + (z[2] - '0')) > 14 ||
                (mm = (z[4] - '0') * 10 + (z[5] - '0')) > 59) {
                free(catalog);
                free(regimes);
                return ctl_usage("init", "--tz takes +HH:MM or -HH:MM, not %s",
                                 optarg);
            }
            io.tz_offset_min = (z[0] == '-' ? -1 : 1) * (hh * 60 + mm);
            io.has_tz = 1;
            break;
        }
        case 'g':
            io.regime = optarg;
            break;
        case 'G':
            free(regimes);
            regimes = NULL;
            if (ctl_read_file(optarg, &regimes, &regimes_len) != 0) {
                fprintf(ctl_err, "tracectl: cannot read %s: %s\n", optarg,
                        strerror(errno));
                free(catalog);
                return 4;
            }
            io.regimes_json = regimes;
            io.regimes_len = regimes_len;
            break;
        case 'q':
            if (n_max_qty == sizeof(max_qty) / sizeof(max_qty[0])) {
                free(catalog);
                free(regimes);
                return ctl_usage("init", "%s", "too many --max-qty");
            }
            max_qty[n_max_qty++] = optarg;
            break;
        case 'h':
            free(catalog);
            free(regimes);
            ctl_help(ctl_find_command("init"));
            return 0;
        default:
            return ctl_usage("init", "%s", "unknown option");
        }
    }
    if (optind != argc) {
        free(catalog);
        free(regimes);
        return ctl_usage("init", "unexpected argument %s", argv[optind]);
    }
    io.max_qty = max_qty;
    io.n_max_qty = n_max_qty;
    if (!io.regulator)
        io.regulator = "REGULATOR";
    if (!trace_party_id_valid(io.regulator)) {
        free(catalog);
        free(regimes);
        return ctl_usage("init", "invalid regulator id %s", io.regulator);
    }
    /* an unknown regime or a malformed table: refused before anything
     * (folder, key) is made */
    if ((rc = trace_regime_check(io.regimes_json, io.regimes_len, io.regime)) !=
        TRACE_OK) {
        fprintf(ctl_err, "tracectl: init: %s\n", trace_error_last());
        free(catalog);
        free(regimes);
        return 2;
    }
    if (mkdir(g->data, 0700) != 0 && errno != EEXIST) {
        fprintf(ctl_err, "tracectl: cannot create %s: %s\n", g->data,
                strerror(errno));
        free(catalog);
        free(regimes);
        return 6;
    }
    if ((rc = trace_keyring_open(&ring, ctl_keys_dir(g), 1)) != TRACE_OK)
        goto fail;
    rc = trace_keyring_get(ring, io.regulator, &key);
    if (rc == TRACE_ENOTFOUND)
        rc = trace_keyring_generate(ring, io.regulator, &key);
    if (rc != TRACE_OK)
        goto fail;
    if ((rc = trace_ledger_init(&l, g->data, key, &io)) != TRACE_OK)
        goto fail;
    /* the regime is named when it was chosen (`tracectl regime` shows
     * it, and its table, for any ledger) */
    if (g->json)
        fprintf(
            ctl_out,
            "{\"data\":\"%s\",\"regulator\":\"%s\",\"keys\":\"%s\"%s%s%s}\n",
            g->data, io.regulator, ctl_keys_dir(g),
            io.regime ? ",\"regime\":\"" : "",
            io.regime ? trace_ledger_regime(l) : "", io.regime ? "\"" : "");
    else
        fprintf(ctl_out,
                "initialised ledger in %s\nroot regulator: %s (key in "
                "%s/%s.key)\n%s%s%snext: tracectl --data %s import "
                "--provision-keys FILE\n",
                g->data, io.regulator, ctl_keys_dir(g), io.regulator,
                io.regime ? "regime: " : "",
                io.regime ? trace_ledger_regime(l) : "", io.regime ? "\n" : "",
                g->data);
    goto out;
fail:
    ret = ctl_fail(rc);
out:
    ctl_close(g, l);
    trace_keyring_free(ring);
    free(catalog);
    free(regimes);
    return ret;
}

/* ------------------------------------------------------------------ */
/* keygen                                                               */

int cmd_keygen(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    trace_keyring *ring = NULL;
    const trace_key *key;
    char b64[64];
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            ctl_help(ctl_find_command("keygen"));
            return 0;
        }
        return ctl_usage("keygen", "%s", "unknown option");
    }
    if (optind + 1 != argc)
        return ctl_usage("keygen", "%s", "needs exactly one PARTY");
    if (!trace_party_id_valid(argv[optind]))
        return ctl_usage("keygen", "invalid party id %s", argv[optind]);
    if ((rc = trace_keyring_open(&ring, ctl_keys_dir(g), 1)) != TRACE_OK)
        return ctl_fail(rc);
    rc = trace_keyring_generate(ring, argv[optind], &key);
    if (rc != TRACE_OK) {
        trace_keyring_free(ring);
        return ctl_fail(rc);
    }
    trace_pubkey_format(b64, sizeof(b64), trace_key_public(key));
    if (g->json)
        fprintf(ctl_out,
                "{\"party\":\"%s\",\"pubkey\":\"%s\",\"file\":\"%s/%s.key\"}\n",
                argv[optind], b64, ctl_keys_dir(g), argv[optind]);
    else
        fprintf(ctl_out,
                "new key for %s in %s/%s.key\npubkey: %s\n(a regulator "
                "registers it with a `party` event carrying this pubkey)\n",
                argv[optind], ctl_keys_dir(g), argv[optind], b64);
    trace_keyring_free(ring);
    return 0;
}

/* ------------------------------------------------------------------ */
/* verify                                                               */

/* Runs in a child process: a damaged file may crash LMDB itself. */
static int verify_child(struct globals *g, const ops_call_t *call)
{
    trace_ledger *l;
    int rc;

    rc = trace_ledger_open(&l, g->data);
    if (rc != TRACE_OK) {
        /* a ledger that exists but cannot be opened is damaged */
        if (rc != TRACE_ENOTFOUND && rc != TRACE_ENOMEM) {
            if (g->json)
                fprintf(ctl_out, "{\"ok\":false,\"reason\":\"ledger cannot be "
                                 "opened\"}\n");
            fprintf(ctl_err, "tracectl: verify FAILED: %s\n",
                    trace_error_last());
            return 3;
        }
        return ctl_fail(rc);
    }
    rc = ctl_call_on(g, l, call);
    trace_ledger_close(l);
    return rc;
}

static int verify_call(struct globals *g, int argc, char **argv,
                       Trace__Ops__V1__Verify *vp, ops_call_t *cp);

int cmd_verify(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from-checkpoint", required_argument, NULL, 'c'},
        {"deep", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Verify v = TRACE__OPS__V1__VERIFY__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char *note = NULL;
    size_t note_len;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            free(note);
            ctl_help(ctl_find_command("verify"));
            return 0;
        }
        if (c == 'c') {
            free(note);
            if (ctl_read_file(optarg, &note, &note_len) != 0) {
                fprintf(ctl_err, "tracectl: cannot read %s\n", optarg);
                return 4;
            }
            v.from_checkpoint = note;
            continue;
        }
        if (c == 'd') {
            v.has_deep = v.deep = 1;
            continue;
        }
        free(note);
        return ctl_usage("verify", "%s", "unknown option");
    }
    ret = verify_call(g, argc, argv, &v, &call);
    free(note);
    return ret;
}

static int verify_call(struct globals *g, int argc, char **argv,
                       Trace__Ops__V1__Verify *vp, ops_call_t *cp)
{
    Trace__Ops__V1__Verify v = *vp;
    ops_call_t call = *cp;
    int status;
    pid_t pid;

    if (optind != argc)
        return ctl_usage("verify", "unexpected argument %s", argv[optind]);
    call.op_case = TRACE__OPS__V1__CALL__OP_VERIFY;
    call.verify = &v;
    if (g->connect)
        return ctl_call(g, &call);
    fflush(ctl_out);
    pid = fork();
    if (pid < 0) {
        perror("tracectl: fork");
        return 6;
    }
    if (pid == 0) {
        int rc = verify_child(g, &call);
        fflush(ctl_out);
        _exit(rc);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("tracectl: waitpid");
            return 6;
        }
    /* the child exits 0, 3, 4, 5 or 6; anything else means reading the
     * storage crashed it (a signal, or a sanitizer that caught one) */
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0 || code == 3 || code == 4 || code == 5 || code == 6)
            return code;
    }
    if (g->json)
        fprintf(ctl_out, "{\"ok\":false,\"reason\":\"storage damaged\"}\n");
    fprintf(ctl_err,
            "tracectl: verify FAILED: the ledger's storage is damaged "
            "(reading it crashed: %s %d)\n",
            WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return 3;
}

/* ------------------------------------------------------------------ */
/* backup                                                               */

int cmd_backup(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    Trace__Ops__V1__Backup b = TRACE__OPS__V1__BACKUP__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            ctl_help(ctl_find_command("backup"));
            return 0;
        }
        return ctl_usage("backup", "%s", "unknown option");
    }
    if (optind + 1 != argc)
        return ctl_usage("backup", "%s", "needs exactly one DEST folder");
    b.dest = argv[optind];
    call.op_case = TRACE__OPS__V1__CALL__OP_BACKUP;
    call.backup = &b;
    return ctl_call(g, &call);
}

/* ------------------------------------------------------------------ */
/* status                                                               */

static void when_text(char *buf, size_t cap, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    if (us <= 0 || !gmtime_r(&t, &tm))
        snprintf(buf, cap, "none since start");
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void when_json(const char *key, int64_t us)
{
    char buf[40];

    if (us <= 0) {
        fprintf(ctl_out, ",\"%s\":null", key);
        return;
    }
    when_text(buf, sizeof(buf), us);
    ops_json_str(ctl_out, key, buf, 1);
}

int cmd_status(struct globals *g, int argc, char **argv)
{
    const struct remote_status *st;
    char hex[65] = "", a[40], b[40], c[40];
    struct timespec now;
    int ret;

    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        ctl_help(ctl_find_command("status"));
        return 0;
    }
    if (argc > 1)
        return ctl_usage("status", "unexpected argument %s", argv[1]);
    if (!g->connect) {
        /* a ledger folder: its size and head */
        Trace__Ops__V1__Head hd = TRACE__OPS__V1__HEAD__INIT;
        ops_call_t call = TRACE__OPS__V1__CALL__INIT;
        call.op_case = TRACE__OPS__V1__CALL__OP_HEAD;
        call.head = &hd;
        return ctl_call(g, &call);
    }
    g->hello_only = 1;
    if (!g->remote && (ret = remote_open(g)) != 0) {
        if (g->json) {
            fputc('{', ctl_out);
            ops_json_str(ctl_out, "url", g->connect, 0);
            fputs(",\"running\":false}\n", ctl_out);
        }
        return ret;
    }
    st = remote_status(g);
    for (int i = 0; st->has_size && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", st->head[i]);
    if (g->json) {
        fputc('{', ctl_out);
        ops_json_str(ctl_out, "url", g->connect, 0);
        fprintf(ctl_out, ",\"running\":true,\"protocol\":%u",
                (unsigned)st->version);
        ops_json_str(ctl_out, "regulator", st->regulator, 1);
        if (st->has_size)
            fprintf(ctl_out, ",\"entries\":%llu,\"head\":\"%s\"",
                    (unsigned long long)st->size, hex);
        when_json("started", st->started_us);
        when_json("last_commit", st->last_commit_us);
        when_json("last_reconciliation", st->last_reconcile_us);
        fprintf(ctl_out, ",\"jobs\":%u}\n", (unsigned)st->jobs);
        remote_close(g);
        return 0;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    when_text(a, sizeof(a), st->started_us);
    when_text(b, sizeof(b), st->last_commit_us);
    when_text(c, sizeof(c), st->last_reconcile_us);
    fprintf(ctl_out, "traced at %s: running since %s", g->connect, a);
    if (st->started_us > 0)
        fprintf(ctl_out, " (%lld s)",
                (long long)(now.tv_sec - st->started_us / 1000000));
    fprintf(ctl_out, ", protocol %u, root regulator %s\n",
            (unsigned)st->version, st->regulator);
    if (st->has_size)
        fprintf(ctl_out, "ledger: %llu entries, head %s\n",
                (unsigned long long)st->size, hex);
    fprintf(ctl_out, "last commit: %s\nlast reconciliation: %s\njobs: %u\n", b,
            c, (unsigned)st->jobs);
    remote_close(g);
    return 0;
}
