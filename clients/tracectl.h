/*
 * tracectl.h - what the command files of tracectl share: the global
 * options, the command table entry, output helpers and the commands.
 * Private to the program; the library's API is in libtrace/include.
 */
#ifndef TRACECTL_H
#define TRACECTL_H

#include <stdint.h>
#include <stdio.h>

#include "trace/trace.h"

#define EXIT_USAGE 1

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

struct table {
    struct globals *g;
    size_t rows;
};

/* Prints the last library error and returns its exit code. */
int ctl_fail(int rc);
/* Prints a usage error for command `cmd` and returns EXIT_USAGE. */
int ctl_usage(const char *cmd, const char *fmt, const char *arg);
void ctl_help(const struct command *c);
const struct command *ctl_find_command(const char *name);
/* The key folder: --keys, or DIR/keys. */
const char *ctl_keys_dir(struct globals *g);
/* Opens --data (0) or prints why not (exit code). */
int ctl_open(struct globals *g, trace_ledger **out);
/* RFC 3339 (fractions allowed) or a date: its start, or with
 * end_of_day its last microsecond, in +08:00. */
int ctl_parse_when(const char *s, int end_of_day, int64_t *out);
void ctl_json_value(FILE *f, const char *val);
void ctl_json_str(FILE *f, const char *key, const char *val, int comma);
int ctl_read_file(const char *path, char **out, size_t *len);

int cmd_ack(struct globals *g, int argc, char **argv);
int cmd_alerts(struct globals *g, int argc, char **argv);
int cmd_backup(struct globals *g, int argc, char **argv);
int cmd_catalog(struct globals *g, int argc, char **argv);
int cmd_head(struct globals *g, int argc, char **argv);
int cmd_balance(struct globals *g, int argc, char **argv);
int cmd_export(struct globals *g, int argc, char **argv);
int cmd_history(struct globals *g, int argc, char **argv);
int cmd_import(struct globals *g, int argc, char **argv);
int cmd_init(struct globals *g, int argc, char **argv);
int cmd_keygen(struct globals *g, int argc, char **argv);
int cmd_permit(struct globals *g, int argc, char **argv);
int cmd_reconcile(struct globals *g, int argc, char **argv);
int cmd_record(struct globals *g, int argc, char **argv);
int cmd_register(struct globals *g, int argc, char **argv);
int cmd_trace(struct globals *g, int argc, char **argv);
int cmd_verify(struct globals *g, int argc, char **argv);

#endif
