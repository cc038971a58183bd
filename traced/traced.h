/* SPDX-License-Identifier: Apache-2.0 */
/*
 * traced.h - what the daemon's source files share: its configuration
 * (one table in config.c), logging and the server entry point.
 */
#ifndef TRACED_H
#define TRACED_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_LISTEN 16

struct config {
    char *data;                   /* ledger folder */
    char *listen[CFG_MAX_LISTEN]; /* REQ/REP addresses */
    size_t n_listen;
    char *pub;              /* PUB address for checkpoints and alerts */
    char *key;              /* the daemon's checkpoint key (PEM) */
    char *tls_cert;         /* PEM: certificate and key, for tls+tcp:// */
    char *tls_ca;           /* PEM: CA of client certificates */
    char *log_level;        /* error, warn, info, debug */
    char *reconcile_at;     /* HH:MM local time of the nightly run, or "off" */
    long long full_every;   /* every Nth night a full run (0: never) */
    char *rules;            /* rules file (JSON) for reconciliation */
    char *backup_dir;       /* where a regulator's `backup NAME` writes */
    long long workers;      /* threads that decode, check and run requests */
    long long contexts;     /* requests in flight at once */
    long long max_message;  /* bytes */
    long long clock_window; /* seconds a request's time may be off */
    long long request_timeout;      /* ms a request may wait for its turn */
    long long max_connections;      /* per listener */
    long long max_peer_connections; /* per IP address or ipc uid */
    long long idle_grace;           /* ms before a connection may be replaced */
    long long first_request_timeout; /* ms */
    long long idle_timeout;          /* s */
    long long max_reply;             /* bytes of a command's output */
    long long queue_bytes;           /* MiB of large requests waiting */
    long long rate;          /* requests per second per party (0: none) */
    long long burst;         /* requests a party may send at once */
    long long commit_events; /* most events in one group commit */
    long long replay_cache;  /* nonces remembered per clock window */
    long long replay_share;  /* percent of it one non-regulator may hold */
    long long map_reserve;   /* MiB of map room kept ahead */
    long long map_resident;  /* MiB of mapped ledger pages kept resident */
    long long session_max;   /* sessions open at once */
    long long session_idle;  /* s a session may stay unused */
    long long session_life;  /* s a session may live */
    long long syslog;        /* log to syslog instead of stderr */
};

void config_defaults(struct config *c);
void config_free(struct config *c);
/* Sets one key from text; 0, or -1 with a message in err. */
int config_set(struct config *c, const char *key, const char *value, char *err,
               size_t errlen);
/* 1 if `key` names a configuration key (for the command line). */
int config_known(const char *key);
/* Reads "key = value" lines (# comments); 0, or -1 with err. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* Checks the whole configuration; 0, or -1 with err. */
int config_check(const struct config *c, char *err, size_t errlen);
void config_help(FILE *f);
void config_print(FILE *f, const struct config *c);

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
void log_init(const char *level, int use_syslog);
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Runs the daemon until SIGTERM/SIGINT; returns the exit status. */
int server_run(const struct config *c);

/* The request handler without sockets or threads, for the fuzz target:
 * each request is handled (and a commit committed) in the caller. */
struct server;
struct server *server_direct_open(const struct config *c);
void server_direct_request(struct server *s, const uint8_t *data, size_t len);
void server_direct_close(struct server *s);
/* Opens a session with `key` and `id` for (party, key_id) on the direct
 * handler's connection (pipe 0), as a signed OpenSession would: the fuzz
 * target's way to reach requests in a session.  0 on success. */
int server_direct_session(struct server *s, const char *party,
                          const uint8_t key_id[8], const uint8_t key[32],
                          const uint8_t id[16]);

#endif
