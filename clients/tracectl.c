/*
 * tracectl - the command line for every user of the ledger.
 *
 * Uses only libtrace's public API.  One table (commands[]) drives
 * dispatch, usage lines and help, so they cannot drift apart.  Exit codes
 * follow SPEC section 5: 0 ok, 1 usage, 2 rejected input, 3 verification
 * failed, 4 not found, 5 permission denied, 6 unavailable.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trace/trace.h"

#define EXIT_USAGE          1
#define MAX_REPORTED_ERRORS 20

struct globals {
    const char *data;    /* --data DIR */
    const char *connect; /* --connect URL */
    const char *keys;    /* --keys DIR */
    const char *as;      /* --as PARTY */
    int json;            /* --json */
    char keys_buf[4096];
};

struct command {
    const char *name;
    int (*run)(struct globals *g, int argc, char **argv);
    const char *args;
    const char *summary;
    const char *help;
};

static const struct command *find_command(const char *name);

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static int fail(int rc)
{
    const char *msg = trace_error_last();
    fprintf(stderr, "tracectl: %s\n", msg[0] ? msg : trace_strerror(rc));
    return trace_error_exit_code(rc);
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    const struct command *c = find_command(cmd);
    fprintf(stderr, "tracectl %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: tracectl %s %s\n(see tracectl %s --help)\n", cmd,
            c ? c->args : "", cmd);
    return EXIT_USAGE;
}

static void print_help(const struct command *c)
{
    printf("usage: tracectl [global options] %s %s\n\n%s\n\n%s", c->name,
           c->args, c->summary, c->help);
}

static const char *keys_dir(struct globals *g)
{
    if (g->keys)
        return g->keys;
    snprintf(g->keys_buf, sizeof(g->keys_buf), "%s/keys", g->data);
    return g->keys_buf;
}

static int open_ledger(struct globals *g, trace_ledger **out)
{
    int rc;

    if (g->connect) {
        fprintf(stderr, "tracectl: --connect: this build has no daemon "
                        "client yet; use --data DIR\n");
        return 6;
    }
    if ((rc = trace_ledger_open(out, g->data)) != TRACE_OK)
        return fail(rc);
    return 0;
}

/* Parses a time for --from/--to/--at: RFC 3339 or a bare date (whole
 * day in the ledger's zone, +08:00 by default). */
static int parse_when(const char *s, int end_of_day, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, se = 0, oh = 8, om = 0, n = 0;
    int64_t us = 0;
    char sign = '+';

    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 &&
        n == 10) {
        if (end_of_day) {
            h = 23;
            mi = 59;
            se = 59;
        }
    } else if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se,
                      &n) == 6) {
        const char *z = s + n;
        if (*z == '.') { /* fraction of a second, down to a microsecond */
            int64_t scale = 100000;
            for (z++; *z >= '0' && *z <= '9'; z++, scale /= 10)
                if (scale)
                    us += (*z - '0') * scale;
                else if (*z != '0')
                    return -1;
        }
        if (strcmp(z, "Z") == 0)
            oh = om = 0;
        else if (sscanf(z, "%c%2d:%2d", &sign, &oh, &om) != 3 ||
                 (sign != '+' && sign != '-') || strlen(z) != 6)
            return -1;
    } else {
        return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    int64_t t = (int64_t)timegm(&tm) -
                (sign == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
    *out = t * 1000000 + us + (end_of_day && strlen(s) == 10 ? 999999 : 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* init                                                                 */

static int cmd_init(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"regulator", required_argument, NULL, 'r'},
        {"catalog", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_init_opts io = TRACE_INIT_OPTS_INIT;
    trace_keyring *ring = NULL;
    trace_ledger *l = NULL;
    const trace_key *key = NULL;
    char *catalog = NULL;
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
                fprintf(stderr, "tracectl: %s: %s\n", optarg, strerror(errno));
                return 4;
            }
            fseek(f, 0, SEEK_END);
            n = ftell(f);
            rewind(f);
            catalog = malloc((size_t)n + 1);
            if (!catalog || fread(catalog, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                free(catalog);
                fprintf(stderr, "tracectl: cannot read %s\n", optarg);
                return 6;
            }
            fclose(f);
            io.catalog_json = catalog;
            io.catalog_len = (size_t)n;
            break;
        }
        case 'h':
            print_help(find_command("init"));
            return 0;
        default:
            return usage_error("init", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return usage_error("init", "unexpected argument %s", argv[optind]);
    if (!io.regulator)
        io.regulator = "REGULATOR";
    if (!trace_party_id_valid(io.regulator)) {
        free(catalog);
        return usage_error("init", "invalid regulator id %s", io.regulator);
    }
    if (mkdir(g->data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "tracectl: cannot create %s: %s\n", g->data,
                strerror(errno));
        free(catalog);
        return 6;
    }
    if ((rc = trace_keyring_open(&ring, keys_dir(g), 1)) != TRACE_OK)
        goto fail;
    rc = trace_keyring_get(ring, io.regulator, &key);
    if (rc == TRACE_ENOTFOUND)
        rc = trace_keyring_generate(ring, io.regulator, &key);
    if (rc != TRACE_OK)
        goto fail;
    if ((rc = trace_ledger_init(&l, g->data, key, &io)) != TRACE_OK)
        goto fail;
    if (g->json)
        printf("{\"data\":\"%s\",\"regulator\":\"%s\",\"keys\":\"%s\"}\n",
               g->data, io.regulator, keys_dir(g));
    else
        printf("initialised ledger in %s\nroot regulator: %s (key in "
               "%s/%s.key)\nnext: tracectl --data %s import "
               "--provision-keys FILE\n",
               g->data, io.regulator, keys_dir(g), io.regulator, g->data);
    goto out;
fail:
    ret = fail(rc);
out:
    trace_ledger_close(l);
    trace_keyring_free(ring);
    free(catalog);
    return ret;
}

/* ------------------------------------------------------------------ */
/* keygen                                                               */

static int cmd_keygen(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    trace_keyring *ring = NULL;
    const trace_key *key;
    char b64[64];
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            print_help(find_command("keygen"));
            return 0;
        }
        return usage_error("keygen", "%s", "unknown option");
    }
    if (optind + 1 != argc)
        return usage_error("keygen", "%s", "needs exactly one PARTY");
    if (!trace_party_id_valid(argv[optind]))
        return usage_error("keygen", "invalid party id %s", argv[optind]);
    if ((rc = trace_keyring_open(&ring, keys_dir(g), 1)) != TRACE_OK)
        return fail(rc);
    rc = trace_keyring_generate(ring, argv[optind], &key);
    if (rc != TRACE_OK) {
        trace_keyring_free(ring);
        return fail(rc);
    }
    trace_pubkey_format(b64, sizeof(b64), trace_key_public(key));
    if (g->json)
        printf("{\"party\":\"%s\",\"pubkey\":\"%s\",\"file\":\"%s/%s.key\"}\n",
               argv[optind], b64, keys_dir(g), argv[optind]);
    else
        printf("new key for %s in %s/%s.key\npubkey: %s\n(a regulator "
               "registers it with a `party` event carrying this pubkey)\n",
               argv[optind], keys_dir(g), argv[optind], b64);
    trace_keyring_free(ring);
    return 0;
}

/* ------------------------------------------------------------------ */
/* import                                                               */

static int cmd_import(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"provision-keys", no_argument, NULL, 'p'},
        {"historic", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    unsigned flags = 0;
    trace_ledger *l = NULL;
    trace_keyring *ring = NULL;
    trace_batch *b = NULL;
    trace_append_result res;
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0, errors = 0;
    int c, rc, ret = 0, first_err = TRACE_OK, tty = isatty(2);

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            flags |= TRACE_APPEND_PROVISION_KEYS;
            break;
        case 'H':
            flags |= TRACE_APPEND_HISTORIC;
            break;
        case 'h':
            print_help(find_command("import"));
            return 0;
        default:
            return usage_error("import", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("import", "%s", "needs exactly one FILE (or -)");
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    if ((rc = trace_keyring_open(&ring, keys_dir(g), 0)) != TRACE_OK ||
        (rc = trace_batch_new(&b, l)) != TRACE_OK) {
        ret = fail(rc);
        goto out;
    }
    in = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    if (!in) {
        fprintf(stderr, "tracectl: %s: %s\n", argv[optind], strerror(errno));
        ret = 4;
        goto out;
    }
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        rc = trace_batch_add_json(b, line, (size_t)n, lineno);
        if (rc != TRACE_OK) {
            if (first_err == TRACE_OK)
                first_err = rc;
            if (++errors <= MAX_REPORTED_ERRORS)
                fprintf(stderr, "tracectl: %s\n", trace_error_last());
        }
        if (tty && lineno % 100000 == 0)
            fprintf(stderr, "\rread %lu lines", lineno);
    }
    if (tty && lineno >= 100000)
        fprintf(stderr, "\rread %lu lines\n", lineno);
    if (ferror(in)) {
        fprintf(stderr, "tracectl: %s: read error\n", argv[optind]);
        ret = 6;
        goto out;
    }
    if (errors) {
        if (errors > MAX_REPORTED_ERRORS)
            fprintf(stderr, "tracectl: ... %lu more rejected lines\n",
                    errors - MAX_REPORTED_ERRORS);
        fprintf(stderr,
                "tracectl: %lu of %lu lines rejected; nothing was imported\n",
                errors, lineno);
        ret = trace_error_exit_code(first_err);
        goto out;
    }
    if (tty && trace_batch_count(b) >= 100000)
        fprintf(stderr, "appending %zu events...\n", trace_batch_count(b));
    rc = trace_ledger_append(l, b, ring, g->as, flags, &res);
    if (rc != TRACE_OK) {
        fprintf(stderr, "tracectl: %s\ntracectl: nothing was imported\n",
                trace_error_last());
        ret = trace_error_exit_code(rc);
        goto out;
    }
    if (g->json)
        printf("{\"appended\":%llu,\"duplicates\":%llu,\"provisioned\":%llu,"
               "\"first_seq\":%llu,\"last_seq\":%llu}\n",
               (unsigned long long)res.appended,
               (unsigned long long)res.duplicates,
               (unsigned long long)res.provisioned,
               (unsigned long long)res.first_seq,
               (unsigned long long)res.last_seq);
    else
        printf("imported %llu events (%llu already present, %llu keys "
               "provisioned)\n",
               (unsigned long long)(res.appended - res.provisioned),
               (unsigned long long)res.duplicates,
               (unsigned long long)res.provisioned);
out:
    if (in && in != stdin)
        fclose(in);
    free(line);
    trace_batch_free(b);
    trace_keyring_free(ring);
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* export                                                               */

static int write_line(const char *line, size_t len, void *ctx)
{
    FILE *out = ctx;
    if (fwrite(line, 1, len, out) != len || fputc('\n', out) == EOF)
        return TRACE_EIO;
    return 0;
}

static int cmd_export(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"party", required_argument, NULL, 'p'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_export_opts eo = TRACE_EXPORT_OPTS_INIT;
    trace_ledger *l = NULL;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            eo.party = optarg;
            break;
        case 'f':
            if (parse_when(optarg, 0, &eo.from_us) != 0)
                return usage_error("export", "bad --from time %s", optarg);
            eo.has_from = 1;
            break;
        case 't':
            if (parse_when(optarg, 1, &eo.to_us) != 0)
                return usage_error("export", "bad --to time %s", optarg);
            eo.has_to = 1;
            break;
        case 'h':
            print_help(find_command("export"));
            return 0;
        default:
            return usage_error("export", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return usage_error("export", "unexpected argument %s", argv[optind]);
    if (eo.party && !trace_party_id_valid(eo.party))
        return usage_error("export", "invalid party id %s", eo.party);
    if (g->as)
        eo.party = g->as;
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_ledger_export(l, &eo, write_line, stdout);
    ret = 0;
    if (rc == TRACE_EIO)
        ret = 6;
    else if (rc != TRACE_OK)
        ret = fail(rc);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "tracectl: cannot write output: %s\n", strerror(errno));
        ret = 6;
    }
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* verify                                                               */

static void verify_progress(uint64_t done, uint64_t total, void *ctx)
{
    (void)ctx;
    if (total)
        fprintf(stderr, "\rverified %llu of %llu entries",
                (unsigned long long)done, (unsigned long long)total);
    if (done == total)
        fputc('\n', stderr);
}

/* Runs in a child process: a damaged file may crash LMDB itself. */
static int verify_child(struct globals *g)
{
    trace_verify_result res;
    trace_ledger *l;
    uint64_t size;
    uint8_t head[32];
    char hex[65];
    int rc;

    rc = trace_ledger_open(&l, g->data);
    if (rc != TRACE_OK) {
        /* a ledger that exists but cannot be opened is damaged */
        if (rc != TRACE_ENOTFOUND && rc != TRACE_ENOMEM) {
            if (g->json)
                printf("{\"ok\":false,\"reason\":\"ledger cannot be "
                       "opened\"}\n");
            fprintf(stderr, "tracectl: verify FAILED: %s\n",
                    trace_error_last());
            return 3;
        }
        return fail(rc);
    }
    rc = trace_ledger_verify(l, &res, isatty(2) ? verify_progress : NULL, NULL);
    if (rc == TRACE_OK && trace_ledger_head(l, &size, head) == TRACE_OK) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", head[i]);
        if (g->json)
            printf("{\"ok\":true,\"entries\":%llu,\"signatures\":%llu,"
                   "\"head\":\"%s\"}\n",
                   (unsigned long long)res.entries,
                   (unsigned long long)res.groups, hex);
        else
            printf("ok: %llu entries, %llu signatures verified\nhead: %s\n",
                   (unsigned long long)res.entries,
                   (unsigned long long)res.groups, hex);
    } else if (rc == TRACE_EVERIFY) {
        if (g->json)
            printf("{\"ok\":false,\"bad_seq\":%llu,\"reason\":\"%s\"}\n",
                   (unsigned long long)res.bad_seq, res.reason);
        fprintf(stderr, "tracectl: verify FAILED: %s\n",
                res.reason[0] ? res.reason : trace_error_last());
    }
    trace_ledger_close(l);
    return rc == TRACE_OK ? 0 : trace_error_exit_code(rc);
}

static int cmd_verify(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c, status;
    pid_t pid;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            print_help(find_command("verify"));
            return 0;
        }
        return usage_error("verify", "%s", "unknown option");
    }
    if (optind != argc)
        return usage_error("verify", "unexpected argument %s", argv[optind]);
    if (g->connect)
        return open_ledger(g, NULL);
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("tracectl: fork");
        return 6;
    }
    if (pid == 0) {
        int rc = verify_child(g);
        fflush(stdout);
        _exit(rc);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("tracectl: waitpid");
            return 6;
        }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (g->json)
        printf("{\"ok\":false,\"reason\":\"storage damaged\"}\n");
    fprintf(stderr,
            "tracectl: verify FAILED: the ledger's storage is damaged "
            "(reading it crashed with signal %d)\n",
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 3;
}

/* ------------------------------------------------------------------ */
/* balance                                                              */

static void json_value(FILE *f, const char *val)
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

static void json_str(FILE *f, const char *key, const char *val, int comma)
{
    fprintf(f, "%s\"%s\":", comma ? "," : "", key);
    json_value(f, val);
}

struct table {
    struct globals *g;
    size_t rows;
};

static int print_holding(const trace_holding *h, void *ctx)
{
    struct table *t = ctx;
    if (t->g->json) {
        fputc('{', stdout);
        json_str(stdout, "party", h->party, 0);
        json_str(stdout, "site", h->site, 1);
        json_str(stdout, "substance", h->substance, 1);
        json_str(stdout, "lot", h->lot, 1);
        json_str(stdout, "qty", h->qty_text, 1);
        json_str(stdout, "unit", h->unit, 1);
        fputs("}\n", stdout);
    } else {
        if (t->rows == 0)
            printf("%-24s %-20s %-12s %18s %s\n", "SUBSTANCE", "LOT", "SITE",
                   "QTY", "UNIT");
        printf("%-24s %-20s %-12s %18s %s\n", h->substance, h->lot, h->site,
               h->qty_text, h->unit);
    }
    t->rows++;
    return 0;
}

static int cmd_balance(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"at", required_argument, NULL, 'a'},
        {"substance", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *substance = NULL, *at_text = NULL;
    int64_t at = TRACE_AT_NOW;
    struct table t = {g, 0};
    trace_ledger *l;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (parse_when(optarg, 1, &at) != 0)
                return usage_error("balance", "bad --at time %s", optarg);
            at_text = optarg;
            break;
        case 's':
            substance = optarg;
            break;
        case 'h':
            print_help(find_command("balance"));
            return 0;
        default:
            return usage_error("balance", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("balance", "%s", "needs exactly one PARTY");
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    if (!g->json)
        printf("book stock of %s %s%s\n", argv[optind],
               at_text ? "as of " : "now", at_text ? at_text : "");
    rc = trace_balance(l, argv[optind], at, substance, print_holding, &t);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    if (rc == TRACE_OK && !g->json && t.rows == 0)
        printf("(no stock)\n");
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* trace                                                                */

static int print_hop(const trace_hop *h, void *ctx)
{
    struct table *t = ctx;
    if (t->g->json) {
        fputc('{', stdout);
        json_str(stdout, "lot", h->lot, 0);
        json_str(stdout, "substance", h->substance, 1);
        json_str(stdout, "from", h->from, 1);
        json_str(stdout, "to", h->to, 1);
        json_str(stdout, "qty", h->qty_text, 1);
        json_str(stdout, "unit", h->unit, 1);
        json_str(stdout, "event", h->event, 1);
        json_str(stdout, "at", h->at_text, 1);
        json_str(stdout, "kind", h->kind, 1);
        json_str(stdout, "party", h->party, 1);
        json_str(stdout, "into_lot", h->into_lot, 1);
        printf(",\"depth\":%d}\n", h->depth);
    } else {
        char route[160];
        if (h->into_lot)
            snprintf(route, sizeof(route), "%s: into lot %s", h->from,
                     h->into_lot);
        else
            snprintf(route, sizeof(route), "%s -> %s",
                     h->from ? h->from : "(origin)", h->to ? h->to : "(gone)");
        printf("%*s%-9s %s %s  %s %s  [%s %s/%s]\n", 2 * h->depth, "", h->kind,
               h->lot, route, h->qty_text ? h->qty_text : "",
               h->unit ? h->unit : "", h->at_text, h->party, h->event);
    }
    t->rows++;
    return 0;
}

static int cmd_trace(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"forward", no_argument, NULL, 'f'},
        {"backward", no_argument, NULL, 'b'},
        {"party", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *party = NULL;
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
            print_help(find_command("trace"));
            return 0;
        default:
            return usage_error("trace", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("trace", "%s", "needs exactly one LOT");
    if (!dir)
        return usage_error("trace", "%s", "say --forward or --backward");
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_lot(l, argv[optind], party, dir, print_hop, &t);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    if (rc == TRACE_OK && !g->json && t.rows == 0)
        printf("(no movements%s%s)\n", party ? " involving " : "",
               party ? party : "");
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* permit show                                                          */

static int print_permit(const trace_permit_state *p, void *ctx)
{
    struct globals *g = ctx;
    if (g->json) {
        fputc('{', stdout);
        json_str(stdout, "permit", p->permit, 0);
        json_str(stdout, "kind", p->kind, 1);
        json_str(stdout, "holder", p->holder, 1);
        json_str(stdout, "counterparty", p->counterparty, 1);
        json_str(stdout, "substance", p->substance, 1);
        json_str(stdout, "uses", p->uses, 1);
        json_str(stdout, "valid_from", p->valid_from, 1);
        json_str(stdout, "valid_until", p->valid_until, 1);
        json_str(stdout, "status", p->status, 1);
        json_str(stdout, "budget", p->budget_text, 1);
        json_str(stdout, "used", p->used_text, 1);
        json_str(stdout, "remaining", p->remaining_text, 1);
        json_str(stdout, "unit", p->unit, 1);
        json_str(stdout, "issuer", p->issuer, 1);
        fputs(",\"events\":[", stdout);
        for (size_t i = 0; i < p->n_uses; i++) {
            const trace_permit_use *u = &p->use[i];
            fputs(i ? ",{" : "{", stdout);
            json_str(stdout, "party", u->party, 0);
            json_str(stdout, "id", u->event, 1);
            json_str(stdout, "role", u->role, 1);
            json_str(stdout, "at", u->at_text, 1);
            json_str(stdout, "qty", u->qty_text, 1);
            printf(",\"counted\":%s", u->valid ? "true" : "false");
            json_str(stdout, "reason", u->reason, 1);
            fputc('}', stdout);
        }
        fputs("]}\n", stdout);
        return 0;
    }
    printf("permit     %s (%s, %s-use)\n", p->permit, p->kind, p->uses);
    printf("status     %s\n", p->status);
    printf("holder     %s\n", p->holder);
    printf("counter    %s\n", p->counterparty ? p->counterparty : "(any)");
    printf("substance  %s\n", p->substance);
    printf("valid      %s .. %s\n", p->valid_from, p->valid_until);
    printf("budget     %s %s\nused       %s %s\nremaining  %s %s\n",
           p->budget_text, p->unit, p->used_text, p->unit, p->remaining_text,
           p->unit);
    printf("issued by  %s\n", p->issuer);
    printf("citations  %zu\n", p->n_uses);
    for (size_t i = 0; i < p->n_uses; i++) {
        const trace_permit_use *u = &p->use[i];
        printf("  %s  %-9s %s/%s  %s %s  %s%s\n", u->at_text, u->role, u->party,
               u->event, u->qty_text, p->unit,
               u->valid ? "written off" : "not counted: ",
               u->valid ? "" : u->reason);
    }
    return 0;
}

static int cmd_permit(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"at", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int64_t at = TRACE_AT_NOW;
    trace_ledger *l;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (parse_when(optarg, 1, &at) != 0)
                return usage_error("permit", "bad --at time %s", optarg);
            break;
        case 'h':
            print_help(find_command("permit"));
            return 0;
        default:
            return usage_error("permit", "%s", "unknown option");
        }
    }
    if (optind + 2 != argc || strcmp(argv[optind], "show") != 0)
        return usage_error("permit", "%s", "usage is: permit show ID");
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_permit_show(l, argv[optind + 1], at, print_permit, g);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    trace_ledger_close(l);
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
        printf("{\"seq\":%llu,\"corrected\":%s,\"event\":%s}\n",
               (unsigned long long)e->seq, e->corrected ? "true" : "false",
               e->json);
    } else {
        if (h->rows == 0)
            printf("%8s  %-25s %-13s %-20s %-16s %-18s %-14s %s\n", "SEQ", "AT",
                   "TYPE", "PARTY", "ID", "SUBSTANCE", "LOT", "QTY");
        printf("%8llu  %-25s %-13s %-20s %-16s %-18s %-14s %s %s%s\n",
               (unsigned long long)e->seq, e->at_text, e->type, e->party, e->id,
               e->substance ? e->substance : "-", e->lot ? e->lot : "-",
               e->qty_text ? e->qty_text : "", e->unit ? e->unit : "",
               e->corrected ? "  (corrected)" : "");
    }
    h->rows++;
    h->last = e->seq;
    return 0;
}

static int cmd_history(struct globals *g, int argc, char **argv)
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
            if (parse_when(optarg, 0, &ho.from_us) != 0)
                return usage_error("history", "bad --from time %s", optarg);
            ho.has_from = 1;
            break;
        case 't':
            if (parse_when(optarg, 1, &ho.to_us) != 0)
                return usage_error("history", "bad --to time %s", optarg);
            ho.has_to = 1;
            break;
        case 'A':
            ho.after = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return usage_error("history", "bad --after %s", optarg);
            break;
        case 'n':
            ho.limit = strtoull(optarg, &end, 10);
            if (*end || !*optarg)
                return usage_error("history", "bad --limit %s", optarg);
            break;
        case 'h':
            print_help(find_command("history"));
            return 0;
        default:
            return usage_error("history", "%s", "unknown option");
        }
    }
    if (ho.lot ? optind != argc : optind + 1 != argc)
        return usage_error("history", "%s", "needs a PARTY or --lot LOT");
    if (!ho.lot)
        ho.party = argv[optind];
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_history(l, &ho, print_event, &h);
    if (rc == TRACE_ENOTFOUND && ho.party && h.rows == 0) {
        /* `history X`: X may also be a lot */
        ho.lot = ho.party;
        ho.party = NULL;
        rc = trace_history(l, &ho, print_event, &h);
        if (rc == TRACE_ENOTFOUND) {
            fprintf(stderr, "tracectl: no party or lot named %s\n", ho.lot);
            trace_ledger_close(l);
            return 4;
        }
    }
    ret = rc == TRACE_OK ? 0 : fail(rc);
    if (rc == TRACE_OK && !g->json && ho.limit && h.rows == ho.limit)
        printf("(more: add --after %llu)\n", (unsigned long long)h.last);
    else if (rc == TRACE_OK && !g->json && h.rows == 0)
        printf("(no events)\n");
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* reconcile, alerts, ack                                               */

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || !(*out = malloc((size_t)n + 1))) {
        fclose(f);
        return -1;
    }
    if (fread(*out, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(*out);
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

static int print_alert(const trace_alert *a, void *ctx)
{
    struct table *t = ctx;
    if (t->g->json) {
        printf("%s\n", a->json);
    } else {
        if (t->rows == 0)
            printf("%-17s %-20s %-8s %-12s %-20s %s\n", "ID", "RULE",
                   "SEVERITY", "STATUS", "PARTY", "DETAIL");
        printf("%-17s %-20s %-8s %-12s %-20s %s\n", a->id, a->rule, a->severity,
               a->status, a->party ? a->party : "-", a->detail);
    }
    t->rows++;
    return 0;
}

static int print_rule(const char *code, const char *severity,
                      const char *params, const char *summary, void *ctx)
{
    (void)ctx;
    printf("  %-20s %-8s %s\n  %-20s          %s\n", code, severity, summary,
           "", params[0] ? params : "(no parameters)");
    return 0;
}

static int cmd_reconcile(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"as-of", required_argument, NULL, 'a'},
        {"rules", required_argument, NULL, 'r'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_reconcile_opts ro = TRACE_RECONCILE_OPTS_INIT;
    trace_reconcile_summary sum = {0};
    struct table t = {g, 0};
    char *rules = NULL;
    trace_ledger *l;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (parse_when(optarg, 1, &ro.as_of_us) != 0)
                return usage_error("reconcile", "bad --as-of time %s", optarg);
            break;
        case 'r':
            free(rules);
            if (read_file(optarg, &rules, &ro.rules_len) != 0) {
                fprintf(stderr, "tracectl: cannot read %s\n", optarg);
                return 4;
            }
            ro.rules_json = rules;
            break;
        case 'n':
            ro.dry_run = 1;
            break;
        case 'h':
            print_help(find_command("reconcile"));
            printf("\nRules (code, default severity; parameters and defaults):"
                   "\n");
            trace_rules_describe(print_rule, NULL);
            return 0;
        default:
            free(rules);
            return usage_error("reconcile", "%s", "unknown option");
        }
    }
    if (optind != argc) {
        free(rules);
        return usage_error("reconcile", "unexpected argument %s", argv[optind]);
    }
    if ((ret = open_ledger(g, &l)) != 0) {
        free(rules);
        return ret;
    }
    rc = trace_reconcile(l, &ro, print_alert, &t, &sum);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    if (rc == TRACE_OK)
        fprintf(stderr, "%llu alerts (%llu new) over %llu events in %.2f s\n",
                (unsigned long long)sum.alerts,
                (unsigned long long)sum.new_alerts,
                (unsigned long long)sum.events, sum.seconds);
    trace_ledger_close(l);
    free(rules);
    return ret;
}

static int cmd_alerts(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"open", no_argument, NULL, 'o'},
        {"status", required_argument, NULL, 's'},
        {"rule", required_argument, NULL, 'r'},
        {"party", required_argument, NULL, 'p'},
        {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    trace_alert_filter f = TRACE_ALERT_FILTER_INIT;
    struct table t = {g, 0};
    trace_ledger *l;
    int c, rc, ret;

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
            fprintf(stderr, "tracectl: alerts --follow needs a daemon "
                            "(--connect), which this build does not have "
                            "yet\n");
            return 6;
        case 'h':
            print_help(find_command("alerts"));
            return 0;
        default:
            return usage_error("alerts", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return usage_error("alerts", "unexpected argument %s", argv[optind]);
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_alerts(l, &f, print_alert, &t);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    if (rc == TRACE_OK && !g->json && t.rows == 0)
        printf("(no alerts)\n");
    trace_ledger_close(l);
    return ret;
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

static int cmd_ack(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 's'},
        {"note", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *status = "acknowledged", *note = NULL, *as;
    struct find_alert fa = {NULL, 0};
    trace_keyring *ring = NULL;
    trace_batch *b = NULL;
    trace_append_result res;
    trace_ledger *l = NULL;
    char line[4096], when[40], id[128];
    struct timespec ts;
    struct tm tm;
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
            print_help(find_command("ack"));
            return 0;
        default:
            return usage_error("ack", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("ack", "%s", "needs exactly one ALERT id");
    if (strcmp(status, "acknowledged") != 0 &&
        strcmp(status, "resolved") != 0 && strcmp(status, "open") != 0)
        return usage_error("ack",
                           "--status must be acknowledged, resolved or "
                           "open, not %s",
                           status);
    if (!note)
        note = status; /* the event needs a note; say what was done */
    fa.id = argv[optind];
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    if ((rc = trace_alerts(l, NULL, match_alert, &fa)) != TRACE_OK) {
        ret = fail(rc);
        goto out;
    }
    if (!fa.found) {
        fprintf(stderr, "tracectl: no alert %s (run reconcile first)\n", fa.id);
        ret = 4;
        goto out;
    }
    as = g->as ? g->as : trace_ledger_regulator(l);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
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
        json_str(m, "type", "alert_ack", 0);
        json_str(m, "id", id, 1);
        json_str(m, "party", as, 1);
        json_str(m, "at", when, 1);
        json_str(m, "alert", fa.id, 1);
        json_str(m, "status", status, 1);
        json_str(m, "note", note, 1);
        fputc('}', m);
        if (fclose(m) != 0 || strlen(line) >= sizeof(line) - 1) {
            fprintf(stderr, "tracectl: note too long\n");
            ret = 2;
            goto out;
        }
    }
    if ((rc = trace_keyring_open(&ring, keys_dir(g), 0)) != TRACE_OK ||
        (rc = trace_batch_new(&b, l)) != TRACE_OK ||
        (rc = trace_batch_add_json(b, line, strlen(line), 1)) != TRACE_OK ||
        (rc = trace_ledger_append(l, b, ring, as, 0, &res)) != TRACE_OK) {
        ret = fail(rc);
        goto out;
    }
    printf("%s %s by %s (event %s)\n", fa.id, status, as, id);
out:
    trace_batch_free(b);
    trace_keyring_free(ring);
    trace_ledger_close(l);
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
        fputc('"', stdout);
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                fputc('"', stdout);
            fputc(*p, stdout);
        }
        fputc('"', stdout);
    } else if (v) {
        fputs(v, stdout);
    }
    fputc(last ? '\n' : ',', stdout);
}

static int print_register(const trace_register_day *d, void *ctx)
{
    struct reg_out *o = ctx;
    if (o->g->json) {
        fputc('{', stdout);
        json_str(stdout, "date", d->date, 0);
        json_str(stdout, "party", d->party, 1);
        json_str(stdout, "substance", d->substance, 1);
        json_str(stdout, "unit", d->unit, 1);
        json_str(stdout, "opening", d->opening_text, 1);
        json_str(stdout, "received", d->received_text, 1);
        json_str(stdout, "dispensed", d->dispensed_text, 1);
        json_str(stdout, "destroyed", d->destroyed_text, 1);
        json_str(stdout, "other_out", d->other_out_text, 1);
        json_str(stdout, "closing", d->closing_text, 1);
        fputs(",\"entries\":[", stdout);
        for (size_t i = 0; i < d->n_lines; i++) {
            const trace_register_line *l = &d->lines[i];
            fputs(i ? ",{" : "{", stdout);
            json_str(stdout, "kind", l->kind, 0);
            json_str(stdout, "id", l->event, 1);
            json_str(stdout, "at", l->at_text, 1);
            json_str(stdout, "lot", l->lot, 1);
            json_str(stdout, "qty", l->qty_text, 1);
            json_str(stdout, "counterparty", l->counterparty, 1);
            json_str(stdout, "rx", l->rx, 1);
            fputc('}', stdout);
        }
        fputs("]}\n", stdout);
    } else if (o->csv) {
        char ins[1024] = "", rxs[2048] = "";
        size_t a = 0, b = 0;
        if (o->rows == 0)
            printf("date,party,substance,unit,opening,received,dispensed,"
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
        printf("%s  %s  %s (%s)\n", d->date, d->party, d->substance, d->unit);
        printf("  opening %-12s received %-10s dispensed %-10s destroyed "
               "%-8s other out %-8s closing %s\n",
               d->opening_text, d->received_text, d->dispensed_text,
               d->destroyed_text, d->other_out_text, d->closing_text);
        for (size_t i = 0; i < d->n_lines; i++) {
            const trace_register_line *l = &d->lines[i];
            printf("    %s  %-9s %-14s lot %-12s %10s  %s%s%s\n", l->at_text,
                   l->kind, l->event, l->lot ? l->lot : "-", l->qty_text,
                   l->counterparty ? l->counterparty : "", l->rx ? "  rx " : "",
                   l->rx ? l->rx : "");
        }
    }
    o->rows++;
    return 0;
}

static int cmd_register(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"substance", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *substance = NULL;
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
            if (parse_when(optarg, 0, &from) != 0)
                return usage_error("register", "bad --from date %s", optarg);
            have_from = 1;
            break;
        case 't':
            if (parse_when(optarg, 0, &to) != 0)
                return usage_error("register", "bad --to date %s", optarg);
            have_to = 1;
            break;
        case 'c':
            o.csv = 1;
            break;
        case 'h':
            print_help(find_command("register"));
            return 0;
        default:
            return usage_error("register", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("register", "%s", "needs exactly one PARTY");
    if (!substance)
        return usage_error("register", "%s", "--substance S is required");
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
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_register(l, argv[optind], substance, from, to, print_register,
                        &o);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    trace_ledger_close(l);
    return ret;
}

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
};

/* Appends `"name":value` to the JSON in `m`; "a.b" nests (one level). */
static void record_field(FILE *m, const char *name, const char *value,
                         int first)
{
    int boolean = strcmp(value, "true") == 0 || strcmp(value, "false") == 0;
    fprintf(m, "%s\"", first ? "" : ",");
    for (const char *p = name; *p; p++)
        fputc(*p == '-' ? '_' : *p, m);
    fputs("\":", m);
    if (boolean)
        fputs(value, m);
    else
        json_value(m, value);
}

static int cmd_record(struct globals *g, int argc, char **argv)
{
    char *buf = NULL, at[40], id[96];
    size_t len = 0;
    const char *type, *party, *user_id = NULL, *user_at = NULL;
    const char *user_party = NULL;
    const char *fields[64][2], *nested[64][2];
    size_t nf = 0, nn = 0;
    trace_keyring *ring = NULL;
    trace_batch *b = NULL;
    trace_ledger *l = NULL;
    trace_append_result res;
    struct timespec ts;
    struct tm tm;
    int rc, ret = 0;
    FILE *m;

    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_help(find_command("record"));
        return 0;
    }
    if (argc < 2)
        return usage_error("record", "%s", "needs an event TYPE");
    type = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i], *value;
        if (strncmp(name, "--", 2) != 0)
            return usage_error("record", "expected --FIELD VALUE, got %s",
                               name);
        name += 2;
        if (strcmp(name, "help") == 0) {
            print_help(find_command("record"));
            return 0;
        }
        if (strcmp(name, "chronic") == 0 &&
            (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true";
        } else {
            if (i + 1 >= argc)
                return usage_error("record", "--%s needs a value", name);
            value = argv[++i];
        }
        for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
            if (strcmp(aliases[k].flag, name) == 0)
                name = aliases[k].field;
        if (strcmp(name, "id") == 0)
            user_id = value;
        else if (strcmp(name, "party") == 0)
            user_party = value; /* must match --as: refused otherwise */
        else if (strcmp(name, "at") == 0)
            user_at = value;
        else if (strncmp(name, "rx.", 3) == 0 && nn < 64)
            nested[nn][0] = name + 3, nested[nn++][1] = value;
        else if (nf < 64)
            fields[nf][0] = name, fields[nf++][1] = value;
        else
            return usage_error("record", "%s", "too many fields");
    }
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    party = g->as ? g->as : trace_ledger_regulator(l);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(id, sizeof(id), "%s-%lld%06ld", type, (long long)ts.tv_sec,
             ts.tv_nsec / 1000);
    if (!(m = open_memstream(&buf, &len))) {
        ret = 6;
        goto out;
    }
    fputc('{', m);
    json_str(m, "type", type, 0);
    json_str(m, "id", user_id ? user_id : id, 1);
    json_str(m, "party", user_party ? user_party : party, 1);
    json_str(m, "at", user_at ? user_at : at, 1);
    for (size_t i = 0; i < nf; i++)
        record_field(m, fields[i][0], fields[i][1], 0);
    if (nn) {
        fputs(",\"rx\":{", m);
        for (size_t i = 0; i < nn; i++)
            record_field(m, nested[i][0], nested[i][1], i == 0);
        fputc('}', m);
    }
    fputc('}', m);
    if (fclose(m) != 0) {
        ret = 6;
        goto out;
    }
    if ((rc = trace_keyring_open(&ring, keys_dir(g), 0)) != TRACE_OK ||
        (rc = trace_batch_new(&b, l)) != TRACE_OK ||
        (rc = trace_batch_add_json(b, buf, len, 1)) != TRACE_OK ||
        (rc = trace_ledger_append(l, b, ring, party, 0, &res)) != TRACE_OK) {
        const char *msg = trace_error_last();
        if (strncmp(msg, "line 1: ", 8) == 0)
            msg += 8;
        fprintf(stderr, "tracectl: %s\n", msg);
        ret = trace_error_exit_code(rc);
        goto out;
    }
    if (g->json)
        printf("{\"party\":\"%s\",\"id\":\"%s\",\"seq\":%llu}\n", party,
               user_id ? user_id : id, (unsigned long long)res.last_seq);
    else if (res.appended)
        printf("recorded %s %s for %s (entry %llu)\n", type,
               user_id ? user_id : id, party, (unsigned long long)res.last_seq);
    else
        printf("%s %s was already recorded\n", type, user_id ? user_id : id);
out:
    free(buf);
    trace_batch_free(b);
    trace_keyring_free(ring);
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* backup                                                               */

static int cmd_backup(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    trace_ledger *l;
    int c, rc, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            print_help(find_command("backup"));
            return 0;
        }
        return usage_error("backup", "%s", "unknown option");
    }
    if (optind + 1 != argc)
        return usage_error("backup", "%s", "needs exactly one DEST folder");
    if ((ret = open_ledger(g, &l)) != 0)
        return ret;
    rc = trace_ledger_backup(l, argv[optind]);
    ret = rc == TRACE_OK ? 0 : fail(rc);
    if (rc == TRACE_OK)
        printf("backed up %s to %s (check it with: tracectl --data %s "
               "verify)\n",
               g->data, argv[optind], argv[optind]);
    trace_ledger_close(l);
    return ret;
}

/* ------------------------------------------------------------------ */
/* The command table                                                    */

static int cmd_help(struct globals *g, int argc, char **argv);

static const struct command commands[] = {
    {"init", cmd_init, "[--regulator ID] [--catalog FILE]",
     "Create a new ledger in --data DIR with its root regulator.",
     "  --regulator ID   root regulator party id (default REGULATOR)\n"
     "  --catalog FILE   substance catalog JSON (default: the built-in one\n"
     "                   with the substances of SPEC section 7)\n\n"
     "The regulator's key is created in the key folder (DIR/keys unless\n"
     "--keys is given) unless that folder already holds ID.key.\n"},
    {"keygen", cmd_keygen, "PARTY",
     "Create a new Ed25519 key for PARTY in the key folder.",
     "Writes PARTY.key (private, mode 0600) and PARTY.pub and prints the\n"
     "public key in base64, the form a `party` event's pubkey takes.\n"},
    {"import", cmd_import, "[--provision-keys] [--historic] FILE|-",
     "Append the events of a JSON Lines file (SPEC section 3).",
     "  --provision-keys  create and register a key (signed by the root\n"
     "                    regulator, whose key must be in the key folder)\n"
     "                    for every registered party that has none\n"
     "  --historic        mark the events as migrated records (no\n"
     "                    LATE_REPORT)\n\n"
     "Each event is signed with its recording party's key from the key\n"
     "folder.  The whole file is one atomic batch: any rejected line is\n"
     "reported with its number and nothing is imported.  Re-importing the\n"
     "same events is harmless: identical ids and contents are skipped.\n"
     "With --as PARTY every event must be recorded by PARTY.\n"},
    {"export", cmd_export, "[--party P] [--from T] [--to T]",
     "Write events as JSON Lines, in journal order.",
     "  --party P   only events recorded by P\n"
     "  --from T    only events whose `at` is at or after T\n"
     "  --to T      only events whose `at` is at or before T\n"
     "T is RFC 3339 (2026-03-01T08:00:00+08:00) or a date (the whole day,\n"
     "+08:00).\n"},
    {"balance", cmd_balance, "PARTY [--at T] [--substance S]",
     "Book stock of a party per site, substance and lot.",
     "  --at T          stock as of T (RFC 3339, or a date: the end of that\n"
     "                  day, +08:00); default now\n"
     "  --substance S   one substance (catalog code or CAS number)\n"
     "--json prints one line per holding: party, site, substance, lot, qty\n"
     "(exact decimal in unit), unit.  Holdings at zero are not shown.\n"},
    {"trace", cmd_trace, "LOT [--party P] --forward|--backward",
     "Where a lot went, or where it came from.",
     "  --forward    every party that received the lot, and onward, also\n"
     "               through `produce` events into new lots\n"
     "  --backward   how the lot reached P (or its origin), back to its\n"
     "               producer or importer and through a product's inputs\n"
     "  --party P    start from P's holding of the lot\n"
     "--json prints one line per hop: lot, substance, from, to, qty, unit,\n"
     "event, at (and kind, party, into_lot, depth).\n"},
    {"permit", cmd_permit, "show ID [--at T]",
     "A permit's budget, write-off, remaining quantity and status.",
     "  --at T   the state as of T (default now)\n"
     "Lists every citation and whether it was written off (a citation\n"
     "counts only if the permit was valid for it).\n"},
    {"history", cmd_history,
     "PARTY|LOT [--from T] [--to T] [--after SEQ] [--limit N]",
     "Events recorded by a party, or naming a lot, in journal order.",
     "  PARTY|LOT     a party's own events, or (if no party has that id)\n"
     "                every event naming the lot\n"
     "  --lot LOT     events naming LOT, even if a party has that id\n"
     "  --from/--to   `at` window (inclusive)\n"
     "  --limit N     page size (default 100, 0: all)\n"
     "  --after SEQ   next page: events after journal position SEQ\n"},
    {"reconcile", cmd_reconcile, "[--as-of T] [--rules FILE] [--dry-run]",
     "Run every reconciliation rule over the ledger and store the alerts.",
     "  --as-of T      judge as of T (default now): windows such as the\n"
     "                 receipt window count up to T\n"
     "  --rules FILE   JSON overrides, e.g. "
     "{\"UNUSUAL_ORDER\":{\"factor\":4},\n"
     "                 "
     "\"LATE_REPORT\":{\"enabled\":false,\"severity\":\"low\"}}\n"
     "  --dry-run      print the alerts without storing them\n"
     "--json prints one alert per line: id, rule, severity, party,\n"
     "counterparty, substance, lot, permit, events [{party,id}], detail,\n"
     "status.  The same ledger gives the same alerts with the same ids.\n"},
    {"alerts", cmd_alerts, "[--open] [--status S] [--rule R] [--party P]",
     "List stored alerts.",
     "  --open        only alerts nobody acknowledged or resolved\n"
     "  --status S    open, acknowledged or resolved\n"
     "  --rule R      one rule code\n"
     "  --party P     alerts naming P as party or counterparty\n"},
    {"ack", cmd_ack, "ALERT [--status acknowledged|resolved] [--note TEXT]",
     "Acknowledge or resolve an alert (records an alert_ack event).",
     "Recorded and signed as --as PARTY, by default the root regulator.\n"},
    {"record", cmd_record, "TYPE --FIELD VALUE ...",
     "Record one event, signed as --as PARTY (e.g. a dispensing at the "
     "counter).",
     "Every --FIELD VALUE becomes a field of the SPEC section 3 event; id\n"
     "and at default to a fresh id and now.  A dispensing takes short\n"
     "flags for its prescription:\n"
     "  tracectl --as PHARMACY record dispense --substance morphine \\\n"
     "      --lot MOR-2601 --qty 10 --unit unit --rx-id RX-1 \\\n"
     "      --prescriber DR-1 --patient 310101195001011234 \\\n"
     "      --written 2026-02-01 --days 3 --form oral [--chronic]\n"
     "The patient id is pseudonymised before anything is stored.  A missing\n"
     "or malformed field is named in the error (exit 2); nothing is stored.\n"},
    {"register", cmd_register,
     "PARTY --substance S [--from DATE] [--to DATE] [--csv]",
     "The special register (专用账册): per day, opening, receipts, "
     "dispensings, destructions, closing.",
     "  --substance S   the drug or chemical (code or CAS number)\n"
     "  --from/--to     first and last day (default today; one alone means\n"
     "                  that day), in the ledger's zone (+08:00)\n"
     "  --csv           one row per day; --json one object per day with\n"
     "                  its entries (supplier and lot, prescription ids)\n"},
    {"backup", cmd_backup, "DEST",
     "Write a consistent, compacted copy of the ledger to DEST.",
     "Safe while others append: the copy is the ledger at one moment.  The\n"
     "pseudonymisation secret is copied; key folders are not.  Restore by\n"
     "pointing --data at the copy (or copying it back).\n"},
    {"verify", cmd_verify, "",
     "Recompute every hash, link and signature of the ledger.",
     "Exit 0 if everything holds; exit 3 naming the first bad entry, or\n"
     "when the storage itself is damaged.\n"},
    {"help", cmd_help, "[COMMAND]", "Show help for a command.", ""},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void main_usage(FILE *f)
{
    fprintf(
        f, "usage: tracectl [--data DIR | --connect URL] [--keys DIR] "
           "[--as PARTY] [--json] COMMAND ...\n\n"
           "Global options:\n"
           "  --data DIR     ledger folder (default ./ledger, or $TRACE_DATA)\n"
           "  --connect URL  talk to a traced daemon instead (not yet)\n"
           "  --keys DIR     key folder (default DIR/keys)\n"
           "  --as PARTY     act and sign as PARTY\n"
           "  --json         JSON Lines output\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %-40s %s\n", commands[i].name, commands[i].args,
                commands[i].summary);
    fprintf(f, "\nFirst try:\n"
               "  tracectl --data demo init\n"
               "  tracectl --data demo import --provision-keys "
               "examples/demo.jsonl\n"
               "  tracectl --data demo verify\n"
               "Exit codes: 0 ok, 1 usage, 2 rejected input, 3 verification "
               "failed,\n4 not found, 5 permission denied, 6 unavailable.\n");
}

static int cmd_help(struct globals *g, int argc, char **argv)
{
    (void)g;
    if (argc > 1) {
        const struct command *c = find_command(argv[1]);
        if (!c)
            return usage_error("help", "unknown command %s", argv[1]);
        print_help(c);
        return 0;
    }
    main_usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"connect", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'k'},
        {"as", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0}};
    struct globals g = {0};
    const struct command *cmd;
    int c;

    signal(SIGPIPE, SIG_IGN);
    g.data = getenv("TRACE_DATA");
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            g.data = optarg;
            break;
        case 'c':
            g.connect = optarg;
            break;
        case 'k':
            g.keys = optarg;
            break;
        case 'a':
            g.as = optarg;
            break;
        case 'j':
            g.json = 1;
            break;
        case 'h':
            main_usage(stdout);
            return 0;
        case 'V':
            printf("tracectl %s\n", TRACE_VERSION_STRING);
            return 0;
        default:
            main_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!g.data || !g.data[0])
        g.data = "ledger";
    if (g.as && !trace_party_id_valid(g.as)) {
        fprintf(stderr, "tracectl: --as: invalid party id %s\n", g.as);
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    cmd = find_command(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "tracectl: unknown command %s\n\n", argv[optind]);
        main_usage(stderr);
        return EXIT_USAGE;
    }
    argc -= optind;
    argv += optind;
    /* --json may also follow the command */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--json") == 0) {
            g.json = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
            argc--;
            i--;
        }
    }
    optind =
        0; /* glibc: 0 re-initialises getopt for the command's own options */
    return cmd->run(&g, argc, argv);
}
