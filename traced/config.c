/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - traced's configuration: one table gives every key its type,
 * default, bounds and help, and drives the config file, the command
 * line, --help and --check-config alike.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "traced.h"

enum cfg_type { T_STRING, T_INT, T_BOOL, T_LIST };

struct cfg_key {
    const char *name;
    enum cfg_type type;
    const char *def; /* NULL: unset */
    long long min, max;
    size_t off;
    const char *help;
};

#define S(f) offsetof(struct config, f)
static const struct cfg_key keys[] = {
    {"data", T_STRING, NULL, 0, 0, S(data),
     "ledger folder (made with `tracectl --data DIR init`)"},
    {"listen", T_LIST, NULL, 0, 0, S(listen),
     "REQ/REP address: ipc:///path, tcp://host:port or tls+tcp://host:port "
     "(repeat for several)"},
    {"pub", T_STRING, NULL, 0, 0, S(pub),
     "PUB address for signed checkpoints and heads and notices of new "
     "alerts (no alert: tracectl alerts --follow fetches them; none if "
     "unset)"},
    {"key", T_STRING, NULL, 0, 0, S(key),
     "the daemon's Ed25519 log key: signs the checkpoints its commits store "
     "(default DATA/traced.key, made on first start)"},
    {"tls-cert", T_STRING, NULL, 0, 0, S(tls_cert),
     "PEM file with the certificate and private key for tls+tcp://"},
    {"tls-ca", T_STRING, NULL, 0, 0, S(tls_ca),
     "PEM file with the CA of client certificates (required for tls+tcp://)"},
    {"backup-dir", T_STRING, NULL, 0, 0, S(backup_dir),
     "folder where a regulator's `backup NAME` writes copies (none if unset)"},
    {"log-level", T_STRING, "info", 0, 0, S(log_level),
     "error, warn, info or debug"},
    {"syslog", T_BOOL, "false", 0, 1, S(syslog),
     "log to syslog (daemon facility) instead of stderr"},
    {"reconcile-at", T_STRING, "02:00", 0, 0, S(reconcile_at),
     "local time HH:MM of the nightly reconciliation, or off"},
    {"full-every", T_INT, "7", 0, 366, S(full_every),
     "every Nth night the reconciliation reads and verifies the whole "
     "ledger (0: never; other nights read what was appended)"},
    {"rules", T_STRING, NULL, 0, 0, S(rules),
     "reconciliation rules file (JSON overrides, see tracectl reconcile)"},
    {"workers", T_INT, "2", 1, 64, S(workers),
     "threads that check and run requests (the writer has its own)"},
    {"contexts", T_INT, "64", 1, 4096, S(contexts),
     "requests in flight at once"},
    {"max-message", T_INT, "3145728", 1024, 1073741824, S(max_message),
     "largest request accepted, bytes (read whole before it is "
     "authenticated; clients send large imports in several requests)"},
    {"max-reply", T_INT, "67108864", 1024, 1073741824, S(max_reply),
     "largest answer to an authenticated request (a command's output), "
     "bytes"},
    {"queue-bytes", T_INT, "64", 1, 65536, S(queue_bytes),
     "MiB of requests over 64 KiB that may wait for a worker at once; "
     "more are refused as busy"},
    {"clock-window", T_INT, "300", 1, 86400, S(clock_window),
     "seconds a request's timestamp may differ from the daemon's clock"},
    {"request-timeout", T_INT, "30000", 10, 3600000, S(request_timeout),
     "milliseconds a request may wait for its turn before it is refused"},
    {"max-connections", T_INT, "64", 1, 65536, S(max_connections),
     "connections accepted at once on each listen address; a newcomer "
     "then replaces the connection idle longest, or is closed"},
    {"max-peer-connections", T_INT, "32", 1, 65536, S(max_peer_connections),
     "connections one peer (IP address; user id on ipc://) may hold at "
     "once"},
    {"idle-grace", T_INT, "1000", 0, 3600000, S(idle_grace),
     "milliseconds a connection must be idle before a newcomer over a "
     "connection limit may replace it"},
    {"first-request-timeout", T_INT, "30000", 0, 3600000,
     S(first_request_timeout),
     "milliseconds a new connection has to send an authenticated request "
     "before it is closed (0: no limit)"},
    {"idle-timeout", T_INT, "300", 0, 86400, S(idle_timeout),
     "seconds a connection may stay idle before it is closed (0: no "
     "limit)"},
    {"rate", T_INT, "1000", 0, 1000000, S(rate),
     "requests per second allowed per party (0: no limit)"},
    {"burst", T_INT, "2000", 1, 10000000, S(burst),
     "requests a party may send in a burst above the rate"},
    {"commit-events", T_INT, "200000", 1, 10000000, S(commit_events),
     "most events in one group commit"},
    {"replay-cache", T_INT, "262144", 1024, 67108864, S(replay_cache),
     "request nonces remembered per clock window of request time (four "
     "windows are kept; more requests are refused until the window turns)"},
    {"replay-share", T_INT, "10", 1, 60, S(replay_share),
     "percent of the replay cache one non-regulator party may fill in a "
     "window (non-regulators together stop at 60 %, regulators at 80 %)"},
    {"map-reserve", T_INT, "4096", 64, 1048576, S(map_reserve),
     "MiB of LMDB map kept free ahead of the data"},
    {"map-resident", T_INT, "64", 0, 1048576, S(map_resident),
     "MiB of ledger pages read through the map that may stay in traced's "
     "resident set; past it they are released after a commit or job "
     "(they stay in the page cache); 0: never released"},
    {"session-max", T_INT, "1024", 1, 1048576, S(session_max),
     "sessions open at once (a party's requests on one connection MACed "
     "instead of signed; when full, the one unused longest ends)"},
    {"session-idle", T_INT, "300", 1, 86400, S(session_idle),
     "seconds a session may stay unused"},
    {"session-life", T_INT, "3600", 1, 604800, S(session_life),
     "seconds a session may live"},
};
#undef S
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct cfg_key *find(const char *name)
{
    /* underscores too, as in a config file written by hand */
    char key[64];
    size_t n = strlen(name);

    if (n >= sizeof(key))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        key[i] = name[i] == '_' ? '-' : name[i];
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, key) == 0)
            return &keys[i];
    return NULL;
}

int config_known(const char *key)
{
    return find(key) != NULL;
}

int config_set(struct config *c, const char *key, const char *value, char *err,
               size_t errlen)
{
    const struct cfg_key *k = find(key);
    char *p = (char *)c;

    if (!k) {
        snprintf(err, errlen, "unknown key %s", key);
        return -1;
    }
    p += k->off;
    switch (k->type) {
    case T_STRING: {
        char **s = (char **)p;
        free(*s);
        *s = strdup(value);
        return *s ? 0 : -1;
    }
    case T_LIST: {
        if (c->n_listen == CFG_MAX_LISTEN) {
            snprintf(err, errlen, "%s: at most %d addresses", key,
                     CFG_MAX_LISTEN);
            return -1;
        }
        if (!(c->listen[c->n_listen] = strdup(value)))
            return -1;
        c->n_listen++;
        return 0;
    }
    case T_BOOL: {
        long long *v = (long long *)p;
        if (!strcasecmp(value, "true") || !strcmp(value, "1") ||
            !strcasecmp(value, "yes") || !strcasecmp(value, "on"))
            *v = 1;
        else if (!strcasecmp(value, "false") || !strcmp(value, "0") ||
                 !strcasecmp(value, "no") || !strcasecmp(value, "off"))
            *v = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, not %s", key,
                     value);
            return -1;
        }
        return 0;
    }
    case T_INT: {
        long long *v = (long long *)p;
        char *end;
        errno = 0;
        long long x = strtoll(value, &end, 10);
        if (errno || end == value || *end || x < k->min || x > k->max) {
            snprintf(err, errlen,
                     "%s: expected an integer from %lld to %lld, "
                     "not %s",
                     key, k->min, k->max, value);
            return -1;
        }
        *v = x;
        return 0;
    }
    }
    return -1;
}

void config_defaults(struct config *c)
{
    char err[128];

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].def)
            config_set(c, keys[i].name, keys[i].def, err, sizeof(err));
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].type == T_STRING)
            free(*(char **)((char *)c + keys[i].off));
    for (size_t i = 0; i < c->n_listen; i++)
        free(c->listen[i]);
    memset(c, 0, sizeof(*c));
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[4096], msg[256];
    unsigned lineno = 0;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *s = trim(line), *eq, *key, *val;
        lineno++;
        if (!*s || *s == '#')
            continue;
        if (!(eq = strchr(s, '='))) {
            snprintf(err, errlen, "%s:%u: expected key = value", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
        if (strlen(val) >= 2 && val[0] == '"' && val[strlen(val) - 1] == '"') {
            val[strlen(val) - 1] = '\0';
            val++;
        }
        if (config_set(c, key, val, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

int config_check(const struct config *c, char *err, size_t errlen)
{
    int h, m, n = 0;

    if (!c->data || !*c->data) {
        snprintf(err, errlen, "no ledger folder: set data (--data DIR)");
        return -1;
    }
    if (c->n_listen == 0) {
        snprintf(err, errlen,
                 "no address to serve: set listen (--listen "
                 "URL)");
        return -1;
    }
    for (size_t i = 0; i < c->n_listen; i++) {
        const char *u = c->listen[i];
        if (strncmp(u, "ipc://", 6) && strncmp(u, "tcp://", 6) &&
            strncmp(u, "tls+tcp://", 10) && strncmp(u, "inproc://", 9)) {
            snprintf(err, errlen,
                     "listen %s: use ipc://, tcp:// or "
                     "tls+tcp://",
                     u);
            return -1;
        }
        if (!strncmp(u, "tls+tcp://", 10) && (!c->tls_cert || !c->tls_ca)) {
            snprintf(err, errlen,
                     "listen %s: tls+tcp:// needs tls-cert and "
                     "tls-ca (clients must show a certificate)",
                     u);
            return -1;
        }
    }
    if (strcmp(c->log_level, "error") && strcmp(c->log_level, "warn") &&
        strcmp(c->log_level, "info") && strcmp(c->log_level, "debug")) {
        snprintf(err, errlen, "log-level: error, warn, info or debug, not %s",
                 c->log_level);
        return -1;
    }
    if (strcmp(c->reconcile_at, "off") != 0 &&
        (sscanf(c->reconcile_at, "%2d:%2d%n", &h, &m, &n) != 2 ||
         n != (int)strlen(c->reconcile_at) || h < 0 || h > 23 || m < 0 ||
         m > 59)) {
        snprintf(err, errlen, "reconcile-at: HH:MM or off, not %s",
                 c->reconcile_at);
        return -1;
    }
    return 0;
}

void config_help(FILE *f)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &keys[i];
        char arg[80];
        snprintf(arg, sizeof(arg), "--%s %s", k->name,
                 k->type == T_INT    ? "N"
                 : k->type == T_BOOL ? "BOOL"
                                     : "VALUE");
        fprintf(f, "  %-26s %s", arg, k->help);
        if (k->def && k->type == T_INT)
            fprintf(f, " (default %s; %lld..%lld)", k->def, k->min, k->max);
        else if (k->def)
            fprintf(f, " (default %s)", k->def);
        fputc('\n', f);
    }
}

void config_print(FILE *f, const struct config *c)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &keys[i];
        const char *p = (const char *)c + k->off;
        switch (k->type) {
        case T_STRING:
            if (*(char *const *)p)
                fprintf(f, "%s = %s\n", k->name, *(char *const *)p);
            break;
        case T_LIST:
            for (size_t j = 0; j < c->n_listen; j++)
                fprintf(f, "%s = %s\n", k->name, c->listen[j]);
            break;
        case T_BOOL:
            fprintf(f, "%s = %s\n", k->name,
                    *(const long long *)p ? "true" : "false");
            break;
        case T_INT:
            fprintf(f, "%s = %lld\n", k->name, *(const long long *)p);
            break;
        }
    }
}

/* Logging ----------------------------------------------------------- */

static enum log_level log_threshold = LOG_LVL_INFO;
static int log_syslog;

void log_init(const char *level, int use_syslog)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, names[i]) == 0)
            log_threshold = (enum log_level)i;
    log_syslog = use_syslog;
    if (use_syslog)
        openlog("traced", LOG_PID, LOG_DAEMON);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *tags[] = {"error", "warn", "info", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char msg[2048], when[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (lvl > log_threshold)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_syslog) {
        syslog(prio[lvl], "%s", msg);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ traced %s: %s\n", when, ts.tv_nsec / 1000000,
            tags[lvl], msg);
}
