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
 * file there (exit 3).  It talks to the log (a ledger folder, or traced
 * at a URL) only through the typed operations checkpoint, prove
 * --consistency and cosign, and checks everything itself: the log key
 * is pinned at first contact (ORIGIN.vkey; through traced the key the
 * daemon says Hello with), and its cosigned note is kept beside
 * (ORIGIN.cosigned) for `cosign`, which hands one in: how an outside
 * auditor, who has no party key to connect with, gets its cosignature
 * to the ledger through a party that has one.
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

/* The log a witness watches: a ledger folder (l), or traced (l NULL,
 * g->remote); either way through the typed operations checkpoint,
 * prove --consistency and cosign. */
struct wlog {
    struct globals *g;
    trace_ledger *l;
};

/* The text of the one row of a checkpoint or prove: *out, malloc'd. */
static int take_text(const ops_item_t *it, void *ctx)
{
    char **out = ctx;
    const char *t =
        it->item_case == TRACE__OPS__V1__ITEM__ITEM_NOTE     ? it->note->note
        : it->item_case == TRACE__OPS__V1__ITEM__ITEM_BUNDLE ? it->bundle->json
                                                             : NULL;

    if (!t || *out) {
        fprintf(ctl_err, "tracectl: the log answered with another row\n");
        return 6;
    }
    return (*out = strdup(t)) ? 0 : 6;
}

static int take_cosigned(const ops_item_t *it, void *ctx)
{
    (void)ctx;
    if (it->item_case == TRACE__OPS__V1__ITEM__ITEM_COSIGNED)
        return 0;
    fprintf(ctl_err, "tracectl: the log answered with another row\n");
    return 6;
}

/* The log's latest checkpoint (with the cosignatures it serves). */
static int wlog_note(struct wlog *w, char **note, size_t *len)
{
    Trace__Ops__V1__Checkpoint x = TRACE__OPS__V1__CHECKPOINT__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    int ret;

    *note = NULL;
    call.op_case = TRACE__OPS__V1__CALL__OP_CHECKPOINT;
    call.checkpoint = &x;
    if ((ret = ctl_call_items(w->g, w->l, &call, take_text, note)) == 0 &&
        !*note) {
        fprintf(ctl_err, "tracectl: the log sent no checkpoint\n");
        ret = 6;
    }
    if (ret == 0)
        *len = strlen(*note);
    return ret;
}

/* The log's verifier key: the folder's (checkpoint --public-key), or
 * the key traced said Hello with, named by the checkpoint's origin. */
static int wlog_vkey(struct wlog *w, const char *origin, char *out, size_t cap)
{
    int rc =
        w->l ? trace_checkpoint_vkey(w->l, out, cap)
             : trace_vkey_format(out, cap, origin, remote_status(w->g)->pubkey);

    return rc == TRACE_OK ? 0 : ctl_fail(rc);
}

/* The log's consistency proof from old_size to new_size: the hashes in
 * pr, their number in *np; 0, or -1 when the log gave none that parses
 * (its refusal printed). */
static int wlog_consistency(struct wlog *w, uint64_t old_size,
                            uint64_t new_size, uint8_t (*pr)[32], size_t *np)
{
    Trace__Ops__V1__Prove x = TRACE__OPS__V1__PROVE__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char *proof = NULL;
    json_t *j = NULL, *arr, *v;
    size_t i;
    int ok = 0;

    x.has_consistency = x.consistency = 1;
    x.has_old_size = x.has_new_size = 1;
    x.old_size = old_size;
    x.new_size = new_size;
    call.op_case = TRACE__OPS__V1__CALL__OP_PROVE;
    call.prove = &x;
    *np = 0;
    if (ctl_call_items(w->g, w->l, &call, take_text, &proof) == 0 && proof &&
        (j = json_loads(proof, 0, NULL)) &&
        json_is_array(arr = json_object_get(j, "proof")) &&
        json_array_size(arr) <= 64) {
        ok = 1;
        json_array_foreach(arr, i, v)
        {
            const char *h = json_string_value(v);
            for (int b = 0; ok && b < 32; b++) {
                unsigned c = 0;
                ok = h && strlen(h) == 64 && sscanf(h + 2 * b, "%2x", &c) == 1;
                pr[*np][b] = (uint8_t)c;
            }
            (*np)++;
        }
    }
    json_decref(j);
    free(proof);
    return ok ? 0 : -1;
}

/* Hands the cosigned note to the log, which stores the cosignature. */
static int wlog_cosign(struct wlog *w, const char *note, const char *vkey)
{
    Trace__Ops__V1__Cosign x = TRACE__OPS__V1__COSIGN__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;

    x.note = (char *)note;
    x.witness_vkey = (char *)vkey;
    call.op_case = TRACE__OPS__V1__CALL__OP_COSIGN;
    call.cosign = &x;
    return ctl_call_items(w->g, w->l, &call, take_cosigned, NULL);
}

/* Writes len bytes to path through a temporary file (fsync'd). */
static int keep_file(const char *path, const char *text, size_t len)
{
    char tmp[4200];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "wb")) || fwrite(text, 1, len, f) != len ||
        fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        fprintf(ctl_err, "tracectl: cannot keep the state in %s\n", path);
        return 6;
    }
    return 0;
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
    char namebuf[256], lname[256], vkey[512], wvkey[512], path[4096],
        cpath[4096], line[512];
    char *note = NULL, *old = NULL, *mine = NULL;
    size_t len = 0, olen = 0, mlen;
    trace_checkpoint *cp = NULL, *ocp = NULL;
    trace_key *key = NULL;
    struct wlog w = {g, NULL};
    uint8_t lpub[32];
    int c, pub = 0, ret = 0, rc, remote, opened = 0, again = 0;

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
    if (!log && g->connect)
        log = g->connect;
    if (optind != argc || !keyfile || (!pub && (!log || !state)))
        return ctl_usage("witness", "%s",
                         "needs --log URL|DIR, --key FILE and --state DIR "
                         "(or --key FILE --public-key)");
    remote = log && strstr(log, "://") != NULL;
    if (!pub && g->connect && (!remote || strcmp(log, g->connect) != 0))
        return ctl_usage("witness", "%s",
                         "--log names the log: give either it or --connect");
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
    /* cosignature keys are Ed25519 note keys of the same form */
    if ((rc = trace_vkey_format(wvkey, sizeof(wvkey), name,
                                trace_key_public(key))) != TRACE_OK) {
        trace_key_free(key);
        return ctl_fail(rc);
    }
    if (pub) {
        trace_key_free(key);
        fprintf(ctl_out, "%s\n", wvkey);
        return 0;
    }
    if (mkdir(state, 0700) != 0 && errno != EEXIST) {
        trace_key_free(key);
        fprintf(ctl_err, "tracectl: %s: %s\n", state, strerror(errno));
        return 4;
    }
    if (remote) {
        /* through traced: requests signed by the acting party (--as,
         * --keys), whatever its rights; the cosignature speaks for the
         * witness */
        opened = !g->remote;
        g->connect = log;
    } else {
        g->data = log;
    }
    if ((ret = ctl_open(g, &w.l)) != 0) {
        trace_key_free(key);
        return ret;
    }
    cp = malloc(sizeof(*cp));
    ocp = malloc(sizeof(*ocp));
    if (!cp || !ocp) {
        ret = 6;
        goto out;
    }
    if ((ret = wlog_note(&w, &note, &len)) != 0)
        goto out;
    if ((rc = trace_checkpoint_parse(cp, note, len)) != TRACE_OK) {
        fprintf(ctl_err,
                "tracectl: witness refuses: the log's checkpoint: %s\n",
                trace_error_last());
        ret = 3;
        goto out;
    }
    /* the log's key: given, or the log's own (pinned at first contact) */
    if (!log_vkey) {
        if ((ret = wlog_vkey(&w, cp->origin, vkey, sizeof(vkey))) != 0)
            goto out;
        log_vkey = vkey;
    }
    if ((rc = trace_vkey_parse(log_vkey, lname, sizeof(lname), lpub)) !=
        TRACE_OK) {
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
            if (memcmp(cp->root, ocp->root, 32) != 0) {
                ret = evidence(state, cp->origin, old, olen, note, len,
                               "two different trees of the same size",
                               ocp->size, cp->size);
                goto out;
            }
            if (trace_checkpoint_verify_cosig(cp, name, trace_key_public(key),
                                              NULL) == TRACE_OK) {
                fprintf(ctl_out,
                        "checkpoint of %llu entries already "
                        "cosigned\n",
                        (unsigned long long)cp->size);
                goto out;
            }
            again = 1; /* cosigned, but the log does not serve it: again */
        } else {
            /* the log's proof that the new tree extends the old one */
            uint8_t pr[64][32];
            size_t np;
            if (wlog_consistency(&w, ocp->size, cp->size, pr, &np) != 0 ||
                !trace_merkle_verify_consistency(
                    ocp->size, cp->size, ocp->root, cp->root,
                    (const uint8_t(*)[32])pr, np)) {
                ret = evidence(state, cp->origin, old, olen, note, len,
                               "the log's tree does not extend the one "
                               "cosigned before (no valid consistency "
                               "proof)",
                               ocp->size, cp->size);
                goto out;
            }
        }
    }
    /* cosign: the checkpoint's text and this witness's line, kept in the
     * state (ORIGIN.cosigned, for `tracectl cosign` elsewhere) with the
     * checkpoint, then handed to the log */
    if ((rc = trace_checkpoint_cosign(cp, key, name, (uint64_t)time(NULL), line,
                                      sizeof(line))) != TRACE_OK) {
        ret = ctl_fail(rc);
        goto out;
    }
    mlen = cp->text_len + 1 + strlen(line);
    if (!(mine = malloc(mlen + 1))) {
        ret = 6;
        goto out;
    }
    memcpy(mine, cp->text, cp->text_len);
    mine[cp->text_len] = '\n';
    memcpy(mine + cp->text_len + 1, line, strlen(line) + 1);
    state_path(cpath, sizeof(cpath), state, cp->origin, ".cosigned");
    if ((ret = keep_file(cpath, mine, mlen)) != 0 ||
        (ret = keep_file(path, note, len)) != 0)
        goto out;
    if ((ret = wlog_cosign(&w, mine, wvkey)) != 0) {
        fprintf(ctl_err,
                "tracectl: the log did not store the cosignature (it is "
                "in %s; run the witness again, or hand it in with "
                "tracectl cosign)\n",
                cpath);
        goto out;
    }
    fprintf(ctl_out, "cosigned the checkpoint of %llu entries of %s as %s%s\n",
            (unsigned long long)cp->size, cp->origin, name,
            again ? " (again: the log did not serve the cosignature)" : "");
out:
    free(note);
    free(old);
    free(mine);
    free(cp);
    free(ocp);
    trace_key_free(key);
    ctl_close(g, w.l);
    if (opened)
        remote_close(g);
    return ret;
}

/* cosign FILE --witness-key VKEY: hands in a witness's cosigned note
 * (witness --state keeps it as ORIGIN.cosigned) */
int cmd_cosign(struct globals *g, int argc, char **argv)
{
    static const struct option opts[] = {
        {"witness-key", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {0}};
    Trace__Ops__V1__Cosign x = TRACE__OPS__V1__COSIGN__INIT;
    ops_call_t call = TRACE__OPS__V1__CALL__INIT;
    char *text = NULL;
    size_t len;
    int c, ret;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': {
            /* NAME=VKEY or the vkey alone, as check-proof takes it */
            const char *eq = strchr(optarg, '='), *plus = strchr(optarg, '+');
            x.witness_vkey =
                (char *)(eq && (!plus || eq < plus) ? eq + 1 : optarg);
            break;
        }
        case 'h':
            ctl_help(ctl_find_command("cosign"));
            return 0;
        default:
            return ctl_usage("cosign", "%s", "unknown option");
        }
    }
    if (optind + 1 != argc || !x.witness_vkey)
        return ctl_usage("cosign", "%s",
                         "needs FILE (a cosigned checkpoint) and "
                         "--witness-key VKEY");
    if (ctl_read_file(argv[optind], &text, &len) != 0) {
        fprintf(ctl_err, "tracectl: cannot read %s\n", argv[optind]);
        return 4;
    }
    if (strlen(text) != len) {
        free(text);
        fprintf(ctl_err, "tracectl: %s is not a signed note\n", argv[optind]);
        return 2;
    }
    x.note = text;
    call.op_case = TRACE__OPS__V1__CALL__OP_COSIGN;
    call.cosign = &x;
    ret = ctl_call(g, &call);
    free(text);
    return ret;
}
