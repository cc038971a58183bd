/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_proof.c - tracectl commands for proofs anyone can check (SPEC 8):
 * checkpoint, prove, check-proof, witness.
 *
 * check-proof needs no ledger: the bundle and the keys it is given.  The
 * witness keeps, per log origin, the last checkpoint it cosigned in its
 * state folder (ORIGIN with '/' as '_' + ".checkpoint"), and cosigns a
 * newer one only after a consistency proof from it checks; a smaller or
 * inconsistent one is refused with both notes written to an evidence
 * file there (exit 3).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "trace/proof.h"
#include "tracectl.h"

/* Writes len bytes to `out` (a path, or stdout for NULL or "-"). */
static int write_out(const char *out, const char *text, size_t len)
{
    FILE *f = !out || strcmp(out, "-") == 0 ? ctl_out : fopen(out, "wb");
    int ok;

    if (!f) {
        fprintf(ctl_err, "tracectl: %s: %s\n", out, strerror(errno));
        return 4;
    }
    ok = fwrite(text, 1, len, f) == len;
    if (len && text[len - 1] != '\n')
        ok &= fputc('\n', f) != EOF;
    if (f != ctl_out)
        ok &= fclose(f) == 0;
    if (!ok) {
        fprintf(ctl_err, "tracectl: cannot write %s\n", out ? out : "output");
        return 6;
    }
    return 0;
}

/* checkpoint [--size N] [--public-key] [--follow]: a typed operation (ops.c),
 * on the ledger folder or through traced */
int cmd_checkpoint(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {{"size", required_argument, NULL, 's'},
                                         {"public-key", no_argument, NULL, 'p'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    Trace__Ops__V1__Checkpoint x = TRACE__OPS__V1__CHECKPOINT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    unsigned long long size = 0;
    char *end;
    int c, follow = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            errno = 0;
            size = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg || optarg[0] == '-' || size == 0)
                return ctl_usage("checkpoint",
                                 "--size takes a tree size "
                                 "(1, 2, ...), not %s",
                                 optarg);
            x.has_size = 1;
            x.size = size;
            break;
        case 'p':
            x.has_public_key = x.public_key = 1;
            break;
        case 'f':
            follow = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("checkpoint"));
            return 0;
        default:
            return ctl_usage("checkpoint", "%s", "unknown option");
        }
    }
    if (optind != argc)
        return ctl_usage("checkpoint", "unexpected argument %s", argv[optind]);
    if (follow && (x.has_size || x.public_key))
        return ctl_usage("checkpoint", "%s",
                         "--follow prints each new checkpoint: not with "
                         "--size or --public-key");
    call.op_case = TRACE__OPS__V1__CALL__OP_CHECKPOINT;
    call.checkpoint = &x;
    return follow ? ctl_follow_checkpoint(g, &call) : ctl_call(g, &call);
}

/* prove PARTY/EVENT-ID | --history PARTY | --consistency OLD NEW
 * [--out FILE]: a typed operation; the bundle goes to FILE only when the
 * operation succeeded */
int cmd_prove(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"history", required_argument, NULL, 'H'},
        {"consistency", no_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Prove x = TRACE__OPS__V1__PROVE__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    const char *out = NULL;
    char party[128], *buf = NULL;
    size_t len = 0;
    ops_render r;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            x.history = optarg;
            break;
        case 'c':
            x.has_consistency = x.consistency = 1;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            ctl_help(ctl_find_command("prove"));
            return 0;
        default:
            return ctl_usage("prove", "%s", "unknown option");
        }
    }
    if (x.consistency ? optind + 2 != argc
        : x.history   ? optind != argc
                      : optind + 1 != argc)
        return ctl_usage("prove", "%s",
                         "give PARTY/EVENT-ID, --history PARTY or "
                         "--consistency OLD NEW");
    if (x.consistency) {
        char *e1, *e2;
        x.has_old_size = x.has_new_size = 1;
        errno = 0;
        x.old_size = strtoull(argv[optind], &e1, 10);
        x.new_size = strtoull(argv[optind + 1], &e2, 10);
        if (errno || *e1 || *e2 || !argv[optind][0] || !argv[optind + 1][0] ||
            argv[optind][0] == '-' || argv[optind + 1][0] == '-')
            return ctl_usage("prove", "%s",
                             "--consistency takes two tree sizes");
    } else if (!x.history) {
        const char *slash = strchr(argv[optind], '/');
        if (!slash || slash == argv[optind] || !slash[1] ||
            (size_t)(slash - argv[optind]) >= sizeof(party))
            return ctl_usage("prove", "%s", "name the event as PARTY/EVENT-ID");
        memcpy(party, argv[optind], (size_t)(slash - argv[optind]));
        party[slash - argv[optind]] = '\0';
        x.party = party;
        x.id = (char *)slash + 1;
    }
    call.op_case = TRACE__OPS__V1__CALL__OP_PROVE;
    call.prove = &x;
    if (!out || strcmp(out, "-") == 0)
        return ctl_call(g, &call);
    /* into memory first: a failed proof leaves no file behind */
    ctl_render_init(g, &r);
    if (!(r.out = open_memstream(&buf, &len)))
        return 6;
    ret = ctl_call_into(g, &call, &r);
    if (fclose(r.out) != 0 && ret == 0)
        ret = 6;
    if (ret == 0)
        ret = write_out(out, buf, len);
    free(buf);
    return ret;
}

/* check-proof FILE --log-key VKEY [--witness-key [NAME=]VKEY ...]
 * [--min-cosigs K] */
int cmd_check_proof(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"log-key", required_argument, NULL, 'l'},
        {"witness-key", required_argument, NULL, 'w'},
        {"min-cosigs", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *log_key = NULL, *wit[32];
    size_t n_wit = 0, min = 0;
    char *text = NULL, summary[1024], *end;
    size_t len;
    int c, rc;

    (void)g;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            log_key = optarg;
            break;
        case 'w': {
            /* NAME=VKEY or the vkey alone (it names itself) */
            const char *eq = strchr(optarg, '='), *plus = strchr(optarg, '+');
            if (n_wit == 32)
                return ctl_usage("check-proof", "%s", "at most 32 witnesses");
            wit[n_wit++] = eq && (!plus || eq < plus) ? eq + 1 : optarg;
            break;
        }
        case 'm':
            min = strtoul(optarg, &end, 10);
            if (*end || !*optarg || optarg[0] == '-')
                return ctl_usage("check-proof",
                                 "--min-cosigs takes a count, "
                                 "not %s",
                                 optarg);
            break;
        case 'h':
            ctl_help(ctl_find_command("check-proof"));
            return 0;
        default:
            return ctl_usage("check-proof", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc || !log_key)
        return ctl_usage("check-proof", "%s",
                         "needs FILE and --log-key (the log's verifier key, "
                         "from tracectl checkpoint --public-key)");
    if (ctl_read_file(argv[optind], &text, &len) != 0) {
        fprintf(ctl_err, "tracectl: cannot read %s\n", argv[optind]);
        return 4;
    }
    rc = trace_check_bundle(text, len, log_key, wit, n_wit, min, summary,
                            sizeof(summary));
    free(text);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: proof refused: %s\n", trace_error_last());
        return 3; /* whatever failed: the proof does not hold */
    }
    fprintf(ctl_out, "ok: %s\n", summary);
    return 0;
}

/* The witness ---------------------------------------------------------- */

static void state_path(char *buf, size_t cap, const char *dir,
                       const char *origin, const char *suffix)
{
    size_t n = (size_t)snprintf(buf, cap, "%s/", dir);
    for (const char *p = origin; *p && n + 1 < cap; p++)
        buf[n++] = *p == '/' ? '_' : *p;
    snprintf(buf + n, cap - n, "%s", suffix);
}

/* Writes both notes as evidence; exit 3. */
static int evidence(const char *dir, const char *origin, const char *old,
                    size_t olen, const char *new, size_t nlen, const char *why,
                    uint64_t old_size, uint64_t new_size)
{
    char path[4096], suffix[96];
    FILE *f;

    snprintf(suffix, sizeof(suffix), ".evidence-%lld-%llu-%llu.txt",
             (long long)time(NULL), (unsigned long long)old_size,
             (unsigned long long)new_size);
    state_path(path, sizeof(path), dir, origin, suffix);
    if ((f = fopen(path, "wb"))) {
        fprintf(f, "# %s\n# the checkpoint cosigned before:\n", why);
        fwrite(old, 1, olen, f);
        fprintf(f, "# the checkpoint refused:\n");
        fwrite(new, 1, nlen, f);
        fclose(f);
    }
    fprintf(ctl_err,
            "tracectl: witness refuses: %s; both signed checkpoints are in "
            "%s\n",
            why, f ? path : "(cannot write the evidence file)");
    return 3;
}

int cmd_witness(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"log", required_argument, NULL, 'l'},
        {"key", required_argument, NULL, 'k'},
        {"state", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"log-key", required_argument, NULL, 'L'},
        {"public-key", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    const char *log = NULL, *keyfile = NULL, *state = NULL, *name = NULL,
               *log_vkey = NULL;
    char namebuf[256], lname[256], vkey[512], path[4096], line[512];
    char *note = NULL, *old = NULL, *proof = NULL, *both = NULL;
    size_t len, olen = 0, plen;
    trace_checkpoint *cp = NULL, *ocp = NULL;
    trace_key *key = NULL;
    trace_ledger *l = NULL;
    uint8_t lpub[32];
    int c, pub = 0, ret = 0, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            log = optarg;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'L':
            log_vkey = optarg;
            break;
        case 'p':
            pub = 1;
            break;
        case 'h':
            ctl_help(ctl_find_command("witness"));
            return 0;
        default:
            return ctl_usage("witness", "%s", "unknown option");
        }
    }
    if (optind != argc || !keyfile || (!pub && (!log || !state)))
        return ctl_usage("witness", "%s",
                         "needs --log DIR, --key FILE and --state DIR (or "
                         "--key FILE --public-key)");
    if (!name) { /* the key file's name without .key */
        const char *b = strrchr(keyfile, '/');
        snprintf(namebuf, sizeof(namebuf), "%s", b ? b + 1 : keyfile);
        if (strlen(namebuf) > 4 &&
            strcmp(namebuf + strlen(namebuf) - 4, ".key") == 0)
            namebuf[strlen(namebuf) - 4] = '\0';
        name = namebuf;
    }
    rc = trace_key_load(&key, keyfile);
    if (rc == TRACE_ENOTFOUND && pub) {
        /* first use: make the witness's key */
        if ((rc = trace_key_generate(&key)) == TRACE_OK &&
            (rc = trace_key_save(key, keyfile)) == TRACE_OK)
            fprintf(ctl_err, "tracectl: made the witness key %s\n", keyfile);
    }
    if (rc != TRACE_OK)
        return ctl_fail(rc);
    if (pub) {
        /* cosignature keys are Ed25519 note keys of the same form */
        rc = trace_vkey_format(vkey, sizeof(vkey), name, trace_key_public(key));
        trace_key_free(key);
        if (rc != TRACE_OK)
            return ctl_fail(rc);
        fprintf(ctl_out, "%s\n", vkey);
        return 0;
    }
    if (strstr(log, "://")) {
        trace_key_free(key);
        fprintf(ctl_err, "tracectl: witness --log takes a ledger folder; "
                         "through traced, run it on the daemon's machine "
                         "against its folder\n");
        return EXIT_USAGE;
    }
    if (mkdir(state, 0700) != 0 && errno != EEXIST) {
        trace_key_free(key);
        fprintf(ctl_err, "tracectl: %s: %s\n", state, strerror(errno));
        return 4;
    }
    g->data = log;
    if ((ret = ctl_open(g, &l)) != 0) {
        trace_key_free(key);
        return ret;
    }
    cp = malloc(sizeof(*cp));
    ocp = malloc(sizeof(*ocp));
    if (!cp || !ocp) {
        ret = 6;
        goto out;
    }
    /* the log's key: given, remembered, or (first contact) the ledger's */
    if (!log_vkey) {
        if ((rc = trace_checkpoint_vkey(l, vkey, sizeof(vkey))) != TRACE_OK) {
            ret = ctl_fail(rc);
            goto out;
        }
        log_vkey = vkey;
    }
    if ((rc = trace_vkey_parse(log_vkey, lname, sizeof(lname), lpub)) !=
            TRACE_OK ||
        (rc = trace_checkpoint_note(l, 0, &note, &len)) != TRACE_OK ||
        (rc = trace_checkpoint_parse(cp, note, len)) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    {
        /* pin the log key at first contact */
        char kpath[4096];
        char *known = NULL;
        size_t klen;
        state_path(kpath, sizeof(kpath), state, cp->origin, ".vkey");
        if (ctl_read_file(kpath, &known, &klen) == 0) {
            while (klen && (known[klen - 1] == '\n'))
                known[--klen] = '\0';
            if (strcmp(known, log_vkey) != 0) {
                free(known);
                fprintf(ctl_err,
                        "tracectl: witness refuses: the log key is "
                        "not the one pinned in %s\n",
                        kpath);
                ret = 3;
                goto out;
            }
            free(known);
        } else {
            FILE *f = fopen(kpath, "wb");
            if (f) {
                fprintf(f, "%s\n", log_vkey);
                fclose(f);
            }
        }
    }
    if (strcmp(cp->origin, lname) != 0 ||
        trace_checkpoint_verify(cp, lname, lpub) != TRACE_OK) {
        fprintf(ctl_err, "tracectl: witness refuses: the checkpoint is not "
                         "signed by the log key\n");
        ret = 3;
        goto out;
    }
    state_path(path, sizeof(path), state, cp->origin, ".checkpoint");
    if (ctl_read_file(path, &old, &olen) == 0) {
        if ((rc = trace_checkpoint_parse(ocp, old, olen)) != TRACE_OK) {
            fprintf(ctl_err, "tracectl: %s: %s\n", path, trace_error_last());
            ret = 3;
            goto out;
        }
        if (cp->size < ocp->size) {
            ret = evidence(state, cp->origin, old, olen, note, len,
                           "the log's checkpoint is smaller than one "
                           "cosigned before (a rollback)",
                           ocp->size, cp->size);
            goto out;
        }
        if (cp->size == ocp->size) {
            if (memcmp(cp->root, ocp->root, 32) != 0)
                ret = evidence(state, cp->origin, old, olen, note, len,
                               "two different trees of the same size",
                               ocp->size, cp->size);
            else
                fprintf(ctl_out,
                        "checkpoint of %llu entries already "
                        "cosigned\n",
                        (unsigned long long)cp->size);
            goto out;
        }
        /* the log's proof that the new tree extends the old one */
        json_t *j = NULL, *arr, *x;
        uint8_t pr[64][32];
        size_t np = 0, i;
        int ok = 0;
        if (trace_prove_consistency(l, ocp->size, cp->size, &proof, &plen) ==
                TRACE_OK &&
            (j = json_loadb(proof, plen, 0, NULL)) &&
            json_is_array(arr = json_object_get(j, "proof")) &&
            json_array_size(arr) <= 64) {
            ok = 1;
            json_array_foreach(arr, i, x)
            {
                const char *h = json_string_value(x);
                for (int b = 0; ok && b < 32; b++) {
                    unsigned v;
                    ok = h && strlen(h) == 64 &&
                         sscanf(h + 2 * b, "%2x", &v) == 1;
                    pr[np][b] = (uint8_t)v;
                }
                np++;
            }
        }
        json_decref(j);
        if (!ok || !trace_merkle_verify_consistency(
                       ocp->size, cp->size, ocp->root, cp->root,
                       (const uint8_t(*)[32])pr, np)) {
            ret = evidence(state, cp->origin, old, olen, note, len,
                           "the log's tree does not extend the one cosigned "
                           "before (no valid consistency proof)",
                           ocp->size, cp->size);
            goto out;
        }
    }
    /* cosign, hand the cosignature to the log, remember the checkpoint */
    if ((rc = trace_checkpoint_cosign(cp, key, name, (uint64_t)time(NULL), line,
                                      sizeof(line))) != TRACE_OK ||
        (rc = trace_vkey_format(vkey, sizeof(vkey), name,
                                trace_key_public(key))) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    if (!(both = malloc(len + strlen(line) + 1))) {
        ret = 6;
        goto out;
    }
    memcpy(both, note, len);
    memcpy(both + len, line, strlen(line) + 1);
    if ((rc = trace_checkpoint_add_cosig(l, both, strlen(both), vkey)) !=
        TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    {
        char tmp[4200];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if (!(f = fopen(tmp, "wb")) || fwrite(note, 1, len, f) != len ||
            fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 ||
            rename(tmp, path) != 0) {
            fprintf(ctl_err, "tracectl: cannot keep the state in %s\n", path);
            ret = 6;
            goto out;
        }
    }
    fprintf(ctl_out, "cosigned the checkpoint of %llu entries of %s as %s\n",
            (unsigned long long)cp->size, cp->origin, name);
out:
    free(note);
    free(old);
    free(proof);
    free(both);
    free(cp);
    free(ocp);
    trace_key_free(key);
    ctl_close(g, l);
    return ret;
}
