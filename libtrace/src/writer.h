/* SPDX-License-Identifier: Apache-2.0 */
/*
 * writer.h - what the append transaction's files share (private to
 * libtrace): batches (batch.c), the writer and its window (append.c),
 * appends signed elsewhere and group commits (commit.c).
 */
#ifndef TRACE_WRITER_H
#define TRACE_WRITER_H

#include "internal.h"
#include "trace/query.h"

struct item {
    Trace__V1__Event *ev; /* parsed event, in the batch arena */
    uint8_t *bytes;       /* its exact encoding */
    size_t len;
    unsigned long lineno;
};

struct trace_batch {
    trace_ledger *l;
    arena *a;
    struct item *items;
    size_t n, cap;
    products_seen *seen; /* products of the batch's earlier lines */
};

/* Strips a line's BOM, CR and surrounding blanks; 0 if nothing is left
 * (a blank line). */
int trim_line(const char **line, size_t *len);

struct phead {
    char *party;
    uint64_t pseq;
    uint8_t hash[TRACE_HASH_LEN];
};

/* An event to write: who, its id, the signing key id and its bytes. */
struct event_ref {
    const char *party;
    const char *id;
    const uint8_t *key_id;
    const uint8_t *bytes;
    size_t len;
};

/* An entry of the window (not yet written). */
struct went {
    struct event_ref p;           /* all in the writer's window arena */
    uint8_t hash[TRACE_HASH_LEN]; /* SHA-256 of the event bytes */
    size_t group;                 /* index in the writer's groups */
    size_t next;                  /* the group's next entry + 1 (0: last) */
};

/* A party's signature group in the window. */
struct wgroup {
    const char *party;
    const trace_key *key; /* signs, unless presig is set */
    uint8_t *kid;         /* in the window arena: entries point here */
    uint32_t count;
    size_t first, last;    /* its first and last entry */
    const uint8_t *presig; /* signed elsewhere (checked before) */
    uint8_t sig[TRACE_SIG_LEN];
};

/* A window is written when it holds this many entries or bytes: the
 * memory an append holds does not grow with its length, and a party
 * signs about once per window. */
#define WINDOW_ENTRIES 262144
/* WINDOW_ENTRIES unless a test sets fewer. */
extern size_t writer_window_entries;
#define WINDOW_BYTES (64u << 20)

struct writer {
    trace_ledger *l;
    MDB_txn *txn;
    arena *tmp;  /* per-event scratch, reset often */
    arena *keep; /* lives for the whole append */
    uint64_t size;
    uint8_t head[TRACE_HASH_LEN];
    int64_t now;
    int historic;
    struct phead *heads;
    size_t n_heads, cap_heads;
    strmap *head_ix; /* party -> index in heads + 1 */
    /* the window: events checked and indexed but not yet written, each
     * party's forming one signature group (see "Signatures" in ledger.h) */
    arena *win;        /* their bytes, ids and party names */
    struct went *went; /* in journal order */
    size_t n_went, cap_went, win_bytes;
    struct wgroup *groups; /* one per party (and key) in the window */
    size_t n_groups, cap_groups;
    strmap *gindex;  /* party -> group index + 1 */
    strmap *idindex; /* party \n id -> entry index + 1 */
    sha256_stream *gdigest;
    /* recorder checks already passed for this party and key */
    char auth_party[72]; /* "" when none */
    const trace_key *auth_key;
    int auth_regulator;
    unsigned auth_scopes; /* its departments (TRACE_SCOPE_*), 0: all */
    unsigned since_trim;  /* events processed (trace_ledger_trim_due) */
    uint8_t *buf;
    size_t bufcap;
    strmap *tails; /* stock index tails (state.c) */
    /* a batch signed by its recorder elsewhere: one group, this signature */
    const uint8_t *presig;
    const uint8_t *presig_key_id;
    trace_append_result *res;
    struct tree_acc tree; /* the Merkle tree's newest leaves (merkle.c) */
    /* the checks at entry (check.c) on each event before it is indexed,
     * unless historic: findings counted in res->warnings and passed to
     * on_finding, or under WRITER_CHECKS_STRICT refusing the event */
    int checks;
    int (*on_finding)(void *ctx, unsigned long lineno, const trace_finding *f);
    void *finding_ctx;
    int bulk; /* index entries held back to the commit (bulk.c) */
};
#define WRITER_CHECKS        1
#define WRITER_CHECKS_STRICT 2

/* The checks at entry on an event (check.c): each finding to fn. */
int check_event(trace_ledger *l, const Trace__V1__Event *ev, int64_t skew_us,
                trace_finding_fn fn, void *ctx);

int writer_begin(struct writer *w, trace_ledger *l, trace_append_result *res);
void writer_end(struct writer *w);
/* Processes one event of a batch: checks, indexes, adds it to the
 * window (see append.c). */
int process(struct writer *w, const struct item *it, trace_keyring *ring,
            const char *as, unsigned flags);
/* Signs the window's groups and writes its entries; forgets it. */
int window_flush(struct writer *w);
int window_reset(struct writer *w);
/* After an aborted child transaction: back to the parent's state. */
int writer_rewind(struct writer *w, uint64_t size,
                  const uint8_t head[TRACE_HASH_LEN]);
/* Stores the cached party chain heads in the current transaction. */
int writer_put_heads(struct writer *w);
/* Writes the window, the chain heads and the journal head, and commits. */
int writer_commit(struct writer *w);
/* As writer_commit up to the commit itself, which is left to writer_end
 * to abort: a dry run. */
int writer_check(struct writer *w);
/* A historic append (flags) needs a regulator: `as`, or without it the
 * root regulator's registered key in `ring`. */
int check_historic(struct writer *w, trace_keyring *ring, const char *as,
                   unsigned flags);

#endif
