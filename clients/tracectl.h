/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tracectl.h - what the command files of tracectl share: the global
 * options, the command table entry, output helpers and the commands.
 * Private to the program; the library's API is in libtrace/include.
 */
#ifndef TRACECTL_H
#define TRACECTL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "ops.h"
#include "wire.h"
#include "trace/ledger.h"
#include "trace/trace.h"

#define EXIT_USAGE 1

#define MAX_REPORTED_ERRORS   20 /* rejected lines shown of an import */
#define MAX_REPORTED_WARNINGS 50 /* findings at entry shown of an import */

struct remote;
struct ctl_receipts;

struct globals {
    const char *data;    /* --data DIR */
    const char *connect; /* --connect URL */
    const char *keys;    /* --keys DIR */
    const char *as;      /* --as PARTY */
    int json;            /* --json */
    int csv;             /* register --csv */
    int html;            /* register --html */
    int follow;          /* alerts --follow */
    int lang;            /* --lang: OPS_LANG_EN or OPS_LANG_ZH */
    int timeout_ms;      /* --timeout, for requests to a daemon */
    const char *tls_ca, *tls_cert, *tls_key; /* tls+tcp:// */
    char keys_buf[4096];
    int hello_only; /* status: --connect without a key */
    /* set by tracectl --connect */
    struct remote *remote;
    /* --receipt through traced: each commit's receipt is kept here */
    struct ctl_receipts *receipts;
};

/* What a daemon's Hello tells anyone who connects (tracectl status). */
struct remote_status {
    uint32_t version, features, jobs;
    char regulator[72];
    int has_size;
    uint64_t size;
    uint8_t head[32];
    int64_t started_us, last_commit_us, last_reconcile_us; /* 0: none */
    uint8_t pubkey[TRACE_PUBKEY_LEN]; /* the daemon's log key */
};

/* Where commands print (per thread: bench_daemon runs clients on
 * several). */
extern _Thread_local FILE *ctl_out;
extern _Thread_local FILE *ctl_err;
/* The ledger's zone, minutes east of UTC, for bare dates in options. */
extern _Thread_local int ctl_tz_min;

struct command {
    const char *name;
    int (*run)(struct globals *g, int argc, char **argv);
    const char *args;
    const char *summary;
    const char *help;
};

struct table {
    struct globals *g;
    size_t rows;
};

/* Prints the last library error and returns its exit code. */
int ctl_fail(int rc);
/* Prints a usage error for command `cmd` and returns EXIT_USAGE. */
int ctl_usage(const char *cmd, const char *fmt, const char *arg);
/* A time option ctl_parse_when refused, with the parser's reason: a
 * usage error (exit 1). */
int ctl_bad_time(const char *cmd, const char *opt, const char *text);
void ctl_help(const struct command *c);
const struct command *ctl_find_command(const char *name);
/* The key folder: --keys, or DIR/keys. */
const char *ctl_keys_dir(struct globals *g);
/* Opens --data (0) or prints why not (exit code); with --connect, NULL
 * (the command talks to the daemon through remote.c). */
int ctl_open(struct globals *g, trace_ledger **out);
/* Closes what ctl_open opened. */
void ctl_close(struct globals *g, trace_ledger *l);
/* The party a command acts as: --as, else the root regulator. */
const char *ctl_acting_party(struct globals *g, trace_ledger *l);
/* Runs the command of argv[0]; the global options are in g. */
int ctl_dispatch(struct globals *g, int argc, char **argv);
void ctl_main_usage(FILE *f);
/* Appends JSON Lines signed as their recorders (embedded: with keys
 * from the key folder; --connect: through the daemon) as one batch.
 * Prints nothing; returns a TRACE_E* code, described by ctl_errmsg(). */
int ctl_append_lines(struct globals *g, trace_ledger *l, char **lines,
                     const size_t *lens, const unsigned long *linenos, size_t n,
                     const char *as, unsigned flags, trace_append_result *res);
const char *ctl_errmsg(void);
/* After a failed ctl_append_lines through a daemon: lines rejected and
 * lines read (0, 0 when the failure was not about lines). */
void ctl_rejected(unsigned long *rejected, unsigned long *lines);
void ctl_set_rejected(unsigned long rejected, unsigned long lines);
/* remote.c sets the message of a failed request here. */
void ctl_set_errmsg(const char *msg);
/* RFC 3339 (fractions allowed) or a date: its start, or with
 * end_of_day its last microsecond, in the ledger's zone (ctl_tz_min);
 * trace_time_parse() decides.  0, or -1 for a time it refuses. */
int ctl_parse_when(const char *s, int end_of_day, int64_t *out);
int ctl_read_file(const char *path, char **out, size_t *len);
/* --rules FILE of `cmd` (reconcile, credit): reads FILE into *data (the
 * caller frees it; a previous one is freed first).  0, or the exit code
 * with its message: through traced (its own rules = FILE), unreadable. */
int ctl_rules_option(const struct globals *g, const char *cmd, const char *path,
                     ProtobufCBinaryData *data);
/* `t` as RFC 3339 in the ledger's zone (ctl_tz_min): what record and ack
 * put in `at` when none is given. */
void ctl_now_text(char *buf, size_t cap, time_t t);
/* Runs a typed operation (ops.h) parsed from the command line: on the
 * ledger folder, or through the daemon with --connect, and prints its
 * rows.  Returns the exit code. */
int ctl_call(struct globals *g, const ops_call_t *call);
/* The same on an open ledger. */
int ctl_call_on(struct globals *g, trace_ledger *l, const ops_call_t *call);
/* The same, rendering with `r` (its rows counted there). */
int ctl_call_into(struct globals *g, const ops_call_t *call, ops_render *r);
/* ctl_call_into on an open ledger (never open one twice in a process). */
int ctl_call_on_into(struct globals *g, trace_ledger *l, const ops_call_t *call,
                     ops_render *r);
/* Runs a typed operation that answers in one reply (not OPS_PAGED) on
 * `l` (a ledger folder, as its owner or --as) or, with l NULL, through
 * the daemon, and passes each row to fn instead of rendering it.  A
 * failure is printed ("tracectl: ...").  Returns the exit code. */
int ctl_call_items(struct globals *g, trace_ledger *l, const ops_call_t *call,
                   ops_item_fn fn, void *ctx);
/* OPS_LANG_ZH when the locale (LC_ALL, LC_MESSAGES, LANG) is zh_*. */
int ctl_lang_of_locale(void);
/* A renderer for ctl_out/ctl_err with the global options. */
void ctl_render_init(struct globals *g, ops_render *r);
/* head --follow: prints each new head until interrupted. */
int ctl_follow_head(struct globals *g, const ops_call_t *call);
/* checkpoint --follow: the latest checkpoint, then each new one until
 * interrupted (through traced: the notes of its PUB feed). */
int ctl_follow_checkpoint(struct globals *g, const ops_call_t *call);
/* alerts --follow: the alerts, then each new one until interrupted. */
int ctl_follow_alerts(struct globals *g, const ops_call_t *call);
/* Prints a failed operation's message ("tracectl: ..."). */
void ctl_print_status(const ops_status *st);

int cmd_ack(struct globals *g, int argc, char **argv);
int cmd_alerts(struct globals *g, int argc, char **argv);
int cmd_backup(struct globals *g, int argc, char **argv);
int cmd_catalog(struct globals *g, int argc, char **argv);
int cmd_regime(struct globals *g, int argc, char **argv);
int cmd_head(struct globals *g, int argc, char **argv);
int cmd_balance(struct globals *g, int argc, char **argv);
int cmd_export(struct globals *g, int argc, char **argv);
int cmd_history(struct globals *g, int argc, char **argv);
int cmd_import(struct globals *g, int argc, char **argv);
int cmd_init(struct globals *g, int argc, char **argv);
int cmd_keygen(struct globals *g, int argc, char **argv);
int cmd_permit(struct globals *g, int argc, char **argv);
int cmd_parties(struct globals *g, int argc, char **argv);
int cmd_products(struct globals *g, int argc, char **argv);
int cmd_credit(struct globals *g, int argc, char **argv);
int cmd_reconcile(struct globals *g, int argc, char **argv);
int cmd_record(struct globals *g, int argc, char **argv);
int cmd_check(struct globals *g, int argc, char **argv);
int cmd_correct(struct globals *g, int argc, char **argv);
int cmd_parcels(struct globals *g, int argc, char **argv);
int cmd_applications(struct globals *g, int argc, char **argv);
int cmd_checkpoint(struct globals *g, int argc, char **argv);
int cmd_prove(struct globals *g, int argc, char **argv);
int cmd_check_proof(struct globals *g, int argc, char **argv);
int cmd_witness(struct globals *g, int argc, char **argv);
int cmd_cosign(struct globals *g, int argc, char **argv);
int cmd_register(struct globals *g, int argc, char **argv);
int cmd_trace(struct globals *g, int argc, char **argv);
int cmd_verify(struct globals *g, int argc, char **argv);

/* cmd_import.c: an import's result on ctl_out ("imported N events"). */
void print_imported(struct globals *g, const trace_append_result *res);
/* cmd_epcis.c: import --format epcis into the import `im` on `l` at
 * `path`; 0 or the exit code (printed). */
int import_epcis(struct globals *g, trace_ledger *l, trace_import *im, FILE *in,
                 const char *path);
/* cmd_epcis.c: import --format epcis through traced; the exit code. */
int import_epcis_remote(struct globals *g, const char *path, unsigned flags,
                        const char *receipt);
/* cmd_epcis.c: export --format epcis to ctl_out; the exit code. */
int export_epcis(struct globals *g, const Trace__Ops__V1__Export *x);

/* receipt.c: --receipt FILE of record and import */
struct ctl_receipts *ctl_receipts_new(void);
void ctl_receipts_free(struct ctl_receipts *rs);
/* Keeps the receipt of a commit's reply (taking the reply), after
 * checking it against the `n` events the commit sent. */
void ctl_receipts_add(struct ctl_receipts *rs, Trace__Wire__V1__Response *resp,
                      const ProtobufCBinaryData *events, size_t n);
/* Writes the receipt of the write `res` to path, checked first: read
 * from `l` after the append, or (l NULL) the receipts g->receipts kept.
 * Prints why not; returns the exit code. */
int ctl_receipt_save(struct globals *g, trace_ledger *l, const char *path,
                     const trace_append_result *res);

/* remote.c: tracectl --connect */
int remote_open(struct globals *g);
void remote_close(struct globals *g);
/* After remote_open: the daemon's Hello. */
const struct remote_status *remote_status(struct globals *g);
int cmd_status(struct globals *g, int argc, char **argv);
const char *remote_regulator(struct globals *g);
/* Acts and signs as `party` from now on (its key from the key folder):
 * one connection serving several parties, as a counter system does.
 * TRACE_E* code. */
int remote_act_as(struct globals *g, const char *party);
/* Runs a typed operation on the daemon and renders its rows. */
int remote_call(struct globals *g, const ops_call_t *call);
int remote_call_into(struct globals *g, const ops_call_t *call, ops_render *r);
/* Runs a typed operation of one reply on the daemon, each row to fn. */
int remote_call_items(struct globals *g, const ops_call_t *call, ops_item_fn fn,
                      void *ctx);
/* Prepares, signs and commits lines as one batch; returns a TRACE_E*
 * code (message in ctl_errmsg()) and prints nothing. */
int remote_append(struct globals *g, char **lines, const size_t *lens,
                  const unsigned long *linenos, size_t n, const char *as,
                  unsigned flags, trace_append_result *res);
/* An import from `in` through the daemon, in chunks of three quarters
 * of its max-message: each chunk prepared (checked) as it is read and
 * kept in a temporary file until every chunk passed, then all committed
 * in order; memory does not grow with the input.  *read_failed is set
 * when `in` could not be read (nothing was sent to commit).  Returns a
 * TRACE_E* code, message in ctl_errmsg(). */
int remote_import(struct globals *g, FILE *in, const char *as, unsigned flags,
                  trace_append_result *res, int *read_failed);
/* The same through ctl's error state (ctl_rejected). */
int ctl_import_stream(struct globals *g, FILE *in, const char *as,
                      unsigned flags, trace_append_result *res,
                      int *read_failed);
/* TRACE_E* code for a tracectl exit code. */
int ctl_code_of_exit(int exit_code);
/* head --follow and alerts --follow against a daemon. */
int remote_follow_heads(struct globals *g);
/* checkpoint --follow against a daemon: the notes its PUB socket
 * publishes, each checked with the daemon's log key. */
int remote_follow_checkpoints(struct globals *g, const ops_call_t *call);
int remote_follow_alerts(struct globals *g, const ops_call_t *call);

#endif
