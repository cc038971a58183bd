/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ledger.h - opening a ledger folder, appending signed batches of events,
 * exporting them as JSON Lines and verifying the whole journal.
 *
 * Storage model
 * -------------
 * A ledger folder holds one LMDB environment (data.mdb, lock.mdb), the
 * pseudonymisation secret (pseudonym.key, 0600, never exported) and by
 * default the key folder keys/.  The journal is a totally ordered list of
 * entries numbered from 1.  Each entry stores the exact encoded bytes of
 * one event (proto/trace.proto, message Event) and links:
 *
 *   leaf(e)          = SHA-256(0x00 || exact Entry bytes)    (RFC 9162)
 *   e.prev_hash       = leaf of entry e.seq - 1 (32 zero bytes for seq 1)
 *   e.prev_party_hash = leaf of the recording party's previous entry
 *
 * so the journal head (last leaf) covers every entry and each party's
 * entries also form a chain of their own.
 *
 * Signatures
 * ----------
 * Ed25519 verification costs far more than hashing, so a party signs a
 * group of its events, not each event.  A group is a party's entries from
 * the one after its last signed entry on, in the party's own chain
 * (party_seq order); the entry that closes it carries sig_count (the
 * group's size n) and sig, an Ed25519 signature by the key named in every
 * entry's key_id over the 32-byte digest
 *
 *   SHA-256( "trace.v1.group\n" || u8(len(party)) || party || key_id[8] ||
 *            SHA-256(event_1) || ... || SHA-256(event_n) || u32be(n) )
 *
 * where event_i are the exact encoded Event bytes of the group's entries,
 * in order.  The signature depends only on the events, so a remote client
 * can sign before the ledger assigns sequence numbers.
 *
 * Entry version 2 (written since the national-load work): an append
 * writes its events in windows of up to 65,536 entries (or 32 MiB), and
 * every party with events in a window gets one group there, closed by its
 * last entry of the window, whatever other parties' entries lie between
 * its own; a daemon's commit is one window, signed by each party once
 * (wire.proto, Commit.party_groups).  A key change within a window starts
 * a new group.  Version 1 entries (older ledgers) form groups of
 * consecutive journal entries of one party; they still verify.
 *
 * Verification recomputes every leaf and link, keeps one open group per
 * party, and checks one signature per group against the keys registered
 * by `party` events earlier in the same journal (a group that begins
 * after the entry revoking its key fails).  Every group is closed at the
 * end of each append, so the journal never ends with unsigned entries.
 *
 * Atomicity: one append is one LMDB write transaction.  Either every
 * event of the batch is stored with all its indexes, or none is.
 */
#ifndef TRACE_LEDGER_H
#define TRACE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "trace/key.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trace_ledger trace_ledger;
typedef struct trace_batch trace_batch;

/* Reports progress of long work: `done` of `total` (total 0: unknown). */
typedef void (*trace_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/* ------------------------------------------------------------------ */
/* Opening                                                              */

#define TRACE_INIT_OPTS_VERSION 3
typedef struct trace_init_opts {
    unsigned version;         /* TRACE_INIT_OPTS_VERSION */
    const char *regulator;    /* root regulator party id; NULL: "REGULATOR" */
    const char *catalog_json; /* catalog file contents; NULL: built-in */
    size_t catalog_len;
    int tz_offset_min; /* zone for bare dates; default +480 (+08:00) */
    int has_tz;        /* non-zero if tz_offset_min is set */
    /* version 2: per-event quantity ceilings, each "QTY UNIT" (e.g.
     * "5000 t"); the unit names the dimension it applies to (mass,
     * volume or count), a later spec of a dimension wins.  Dimensions
     * not named keep TRACE_MAX_QTY_DEFAULT_TEXT. */
    const char *const *max_qty;
    size_t n_max_qty;
    /* version 3: the regime (SPEC 12, "Regimes as data"): its code in the
     * regime table (NULL: "CN") and the table (NULL: the built-in one,
     * data/regimes.json); both are stored in the ledger */
    const char *regime;
    const char *regimes_json;
    size_t regimes_len;
} trace_init_opts;
#define TRACE_INIT_OPTS_INIT                                                   \
    {                                                                          \
        TRACE_INIT_OPTS_VERSION, NULL, NULL, 0, 0, 0, NULL, 0, NULL, NULL, 0   \
    }

/*
 * Checks a regime table and a regime code as trace_ledger_init() would,
 * without making anything: TRACE_OK, or TRACE_EINVAL with a message
 * naming the place (a malformed table, an unknown permit kind, a licence
 * that is not one of the regime's scopes, an unknown regime code).
 * regimes_json NULL: the built-in table; regime NULL: "CN".  Thread-safe.
 */
int trace_regime_check(const char *regimes_json, size_t regimes_len,
                       const char *regime);

/*
 * Quantity ceilings.  Every quantity of an event (qty, a stocktake's
 * counted, a produce input's qty, a permit's budget) must be at most the
 * ledger's ceiling for its dimension; a larger one is refused when the
 * event is parsed (TRACE_EINVAL, "line N: field ...", exit 2), like any
 * malformed quantity.  The default is 10^18 base units for every
 * dimension: 10^6 t of mass (in ug), 10^9 m3 of volume (in uL), 10^15
 * dosage units (in milli-units) - far above any real movement, while
 * nine of them still sum without overflowing an int64.
 *
 * Sums are checked as well: an event whose effect would take a running
 * stock of a (party, substance, lot, site) beyond an int64 of base units
 * (about 9.2 * 10^18) is refused at append (TRACE_EINVAL, "line N:
 * quantity overflow: ..."), whatever the ceiling.  Queries and rules
 * that meet a sum they cannot represent (a ledger written by an older
 * version, or per-lot totals over several sites) report it instead of
 * wrapping: see trace_balance(), trace_register(), trace_permit_show()
 * and NEGATIVE_STOCK in reconcile.h.
 */
#define TRACE_MAX_QTY_DEFAULT_TEXT                                             \
    "1000000 t, 1000000000 m3, 1000000000000000 unit"

/*
 * Sets the per-event ceiling of one dimension, "QTY UNIT" (e.g.
 * "5000 t" sets the mass ceiling to 5 * 10^15 ug), and stores it in the
 * ledger.  Events stored before keep counting even when above a lowered
 * ceiling; only new events are checked against it.  Other processes
 * that have the ledger open keep the ceiling they read until they open
 * it again.  TRACE_EINVAL for a malformed spec.  No transaction of this
 * process may be open.
 */
int trace_ledger_set_max_qty(trace_ledger *l, const char *spec);

/*
 * Creates a new ledger in `dir` (created if missing; must not already
 * hold a ledger: TRACE_EEXIST), stores the catalog, creates the
 * pseudonymisation secret and records the genesis `party` event of the
 * root regulator, signed with `regulator_key`.  The ledger stays open in
 * *out.
 */
int trace_ledger_init(trace_ledger **out, const char *dir,
                      const trace_key *regulator_key,
                      const trace_init_opts *opts);

/* Opens an existing ledger.  TRACE_ENOTFOUND if `dir` holds none. */
int trace_ledger_open(trace_ledger **out, const char *dir);

/* Closes the ledger.  NULL is a no-op. */
void trace_ledger_close(trace_ledger *l);

/* Claims the ledger folder for writing by this process: a lock on
 * DIR/writer.lock, held until the ledger is closed.  A writer takes it
 * by itself at its first write transaction; a daemon claims it at start.
 * TRACE_EUNAVAIL, naming the process, if another process writes to the
 * folder (its write transactions, through any function of this
 * library, fail the same way until that process closes the ledger).
 * Readers take no lock. */
int trace_ledger_claim_writer(trace_ledger *l);

/*
 * Writes a consistent, compacted copy of the ledger into the folder
 * `dest` (created; must not hold a ledger), while others may go on
 * appending: the copy is the state of one moment.  The pseudonymisation
 * secret, the folder's key folder (DIR/keys: the keys made there by init
 * and --provision-keys) and the daemon's key (traced.key, traced.pub)
 * are copied too, so a restored copy can record and serve; everything is
 * private to the owner (files 0600, folders 0700).  Keys kept in other
 * folders (--keys) are not copied.  TRACE_EEXIST if `dest` already holds
 * a ledger.
 */
int trace_ledger_backup(trace_ledger *l, const char *dest);

/*
 * trace_time_parse (trace.h) in the ledger's zone: an RFC 3339 time
 * (fractions of a second allowed, down to a microsecond) or a bare date,
 * which means the start of that day in the ledger's zone, or with
 * `end_of_day` its last microsecond.  TRACE_EINVAL with a message for
 * anything else (2026-02-31 included).
 */
int trace_ledger_parse_time(const trace_ledger *l, const char *text,
                            int end_of_day, int64_t *out_us);

/*
 * Grows the memory map so that `bytes` more data fit without growing it
 * again (appends grow it by themselves when it fills; a daemon may
 * reserve room up front).  Waits until the transactions other threads
 * have open end, and holds new ones back meanwhile.  TRACE_EFULL if the
 * calling thread has an import or a group commit open (it would wait
 * for itself).
 */
int trace_ledger_reserve(trace_ledger *l, uint64_t bytes);

/* The ledger's zone for bare dates, in minutes east of UTC. */
int trace_ledger_tz(const trace_ledger *l);

/* Pages of the ledger file read through LMDB's memory map count in the
 * process's resident set although they are page cache.  Once more than
 * `limit` bytes of file pages are resident, drops this process's
 * mappings of the ledger's pages (they stay cached; a later read maps
 * them again): a long-running process (traced) keeps its resident set
 * independent of the ledger's size.  *released is 1 if it did.  Linux
 * (reads /proc/self); elsewhere does nothing.  TRACE_OK or an LMDB
 * error. */
int trace_ledger_trim(trace_ledger *l, uint64_t limit, int *released);
/* Makes appends call trace_ledger_trim(l, limit) as they go (every 4,096
 * events, at most every 50 ms): a large commit reads pages of every
 * index.  0 (the default) turns it off. */
void trace_ledger_set_map_limit(trace_ledger *l, uint64_t limit);
/* trace_ledger_trim with that limit, if one is set and 50 ms have passed
 * since the last look (any thread). */
void trace_ledger_trim_due(trace_ledger *l);

/* Root regulator id; borrowed, valid while the ledger is open. */
const char *trace_ledger_regulator(const trace_ledger *l);

/* The ledger's regime code ("CN", "US", "EU", "UN" or a custom table's;
 * "CN" for a ledger made before regimes existed) and its entry of the
 * regime table as compact JSON (its control classes, the permit kinds
 * each movement needs, licence scopes, reporting deadlines).  Borrowed:
 * valid until the ledger is closed. */
const char *trace_ledger_regime(const trace_ledger *l);
const char *trace_ledger_regime_json(const trace_ledger *l);

/* A substance of the ledger's catalog (strings borrowed from the ledger). */
typedef struct trace_substance {
    const char *code, *cas, *name;
    const char *dimension;     /* mass, volume or count */
    const char *const *scopes; /* licence scopes its controls imply */
    size_t n_scopes;
    const char *name_zh; /* Chinese name, or NULL */
} trace_substance;

/* Calls fn for every substance of the catalog, in catalog order; a
 * non-zero return stops and is returned. */
int trace_ledger_substances(const trace_ledger *l,
                            int (*fn)(const trace_substance *s, void *ctx),
                            void *ctx);

/* Number of entries in the journal and the current head leaf hash. */
int trace_ledger_head(trace_ledger *l, uint64_t *size, uint8_t hash[32]);

/* ------------------------------------------------------------------ */
/* Batches                                                              */

/* A new, empty batch for `l` (which resolves substances and keys). */
int trace_batch_new(trace_batch **out, trace_ledger *l);
void trace_batch_free(trace_batch *b);

/*
 * Parses one JSON Lines line (SPEC section 3) and adds it to the batch.
 * `lineno` is used in messages.  Blank lines (only whitespace, a BOM or a
 * CR) are skipped and return TRACE_OK.  On TRACE_EINVAL the batch is
 * unchanged and trace_error_last() reads "line N: reason".
 * Patient identifiers are pseudonymised here, before anything else sees
 * them.
 */
int trace_batch_add_json(trace_batch *b, const char *line, size_t len,
                         unsigned long lineno);

/* The fields an event of `type` carries beyond type, id, party and at,
 * as its JSON names them (nested ones as rx.id), with what each takes
 * and whether it is required: for help texts.  TRACE_ENOTFOUND for an
 * unknown type; a non-zero return of fn stops and is returned. */
typedef int (*trace_field_fn)(const char *name, const char *what, int required,
                              void *ctx);
int trace_event_fields(const char *type, trace_field_fn fn, void *ctx);

/* Number of events in the batch. */
size_t trace_batch_count(const trace_batch *b);

/* Flags for trace_ledger_append. */
#define TRACE_APPEND_PROVISION_KEYS 0x1u /* create keys for parties without */
#define TRACE_APPEND_PARTY_GROUPS                                              \
    0x4u /* trace_commit_add: one signed                                       \
              group per party, covering                                        \
              all of its events in the                                         \
              batch, in order */
#define TRACE_APPEND_HISTORIC                                                  \
    0x2u /* migrated records: LATE_REPORT                                      \
              spares them.  Regulators                                         \
              only: `as` must be one, or                                       \
              without `as` the key folder                                      \
              must hold the root                                               \
              regulator's registered key                                       \
              (TRACE_EPERM otherwise) */

#define TRACE_APPEND_CHECK                                                     \
    0x8u /* trace_import_*, trace_commit_add: the                              \
              checks at entry (query.h) on each                                \
              event against the ledger as the                                  \
              transaction holds it, earlier                                    \
              events of the same input included;                               \
              findings are warnings (counted in                                \
              trace_append_result.warnings).  Not                              \
              with TRACE_APPEND_HISTORIC */
#define TRACE_APPEND_STRICT                                                    \
    0x10u /* as TRACE_APPEND_CHECK, but a                                      \
               finding rejects its event                                       \
               (TRACE_EINVAL, "line N: CODE: ...") */

typedef struct trace_append_result {
    uint64_t appended;    /* new entries, including provisioned keys */
    uint64_t duplicates;  /* idempotent re-submissions skipped */
    uint64_t provisioned; /* keys created by TRACE_APPEND_PROVISION_KEYS */
    uint64_t first_seq;   /* first new journal position (0: none) */
    uint64_t last_seq;    /* last new journal position */
    uint64_t warnings;    /* findings of TRACE_APPEND_CHECK */
} trace_append_result;

/*
 * Appends every event of the batch in one durable transaction, signing
 * each run of consecutive events of one party with that party's key from
 * `ring`.  If `as` is not NULL every event must be recorded by that party
 * (TRACE_EPERM otherwise).
 *
 * Checks, each naming the offending line: the recording party is
 * registered; `party`, `permit` and `permit_status` are recorded by a
 * regulator (TRACE_EPERM); the folder's key of the recorder is one the
 * ledger registered for it (TRACE_EPERM), or, with
 * TRACE_APPEND_PROVISION_KEYS and the root regulator's key in `ring`, a
 * key is created and registered for a party that has none; an id already
 * used by the party with different content is TRACE_EEXIST, with the same
 * content the event is skipped.  On any error nothing is stored.
 * Returns only after the commit is on disk.
 */
int trace_ledger_append(trace_ledger *l, trace_batch *b, trace_keyring *ring,
                        const char *as, unsigned flags,
                        trace_append_result *res);

/*
 * For batches signed by their recorder elsewhere (a client of a daemon):
 * the digest that party signs, over every event of the batch (all must be
 * recorded by `party`) as one group, with the key `key_id` (see the
 * signature scheme above).
 */
int trace_batch_digest(const trace_batch *b, const char *party,
                       const uint8_t key_id[TRACE_KEY_ID_LEN],
                       uint8_t digest[32]);

/*
 * Appends a batch signed elsewhere: `sig` is `party`'s Ed25519 signature
 * over trace_batch_digest() with its registered key `key_id`.  Checks the
 * signature first (TRACE_EPERM if it fails or the key is not registered
 * to `party`), then everything trace_ledger_append checks.  The batch is
 * one signature group, so it is stored whole, or, when every event is
 * already recorded (a retried request), accepted with nothing new; a
 * batch only partly recorded already is TRACE_EEXIST.
 * TRACE_APPEND_PROVISION_KEYS is not allowed here.
 */
int trace_ledger_append_signed(trace_ledger *l, trace_batch *b,
                               const char *party,
                               const uint8_t key_id[TRACE_KEY_ID_LEN],
                               const uint8_t sig[TRACE_SIG_LEN], unsigned flags,
                               trace_append_result *res);

/*
 * Adds an event already encoded (proto Event bytes) to the batch, as
 * produced by trace_batch_event() on a batch this ledger parsed.  Only the
 * canonical encoding is accepted.  The content is not checked again as
 * trace_batch_add_json checks it: a daemon uses this for bytes it parsed
 * itself and authenticated (with a MAC) on their way through a client.
 * `lineno` is used in messages.
 */
int trace_batch_add_encoded(trace_batch *b, const uint8_t *bytes, size_t len,
                            unsigned long lineno);

/* Adds a `party` event recorded by `regulator` that registers `pubkey`
 * for `party` (its registration as it stands - its latest `party` event
 * in the batch, else the ledger's - with the key added), as
 * import --provision-keys does.  TRACE_ENOTFOUND for an unregistered
 * party, TRACE_EEXIST if it already has a key. */
int trace_batch_add_key_registration(trace_batch *b, const char *regulator,
                                     const char *party,
                                     const uint8_t pubkey[TRACE_PUBKEY_LEN]);

/* Event `i` of the batch: its type ("sale" ...), recording party, exact
 * bytes (what is hashed and signed) and line number; all borrowed from
 * the batch.  Any output may be NULL. */
int trace_batch_event(const trace_batch *b, size_t i, const char **type,
                      const char **party, const uint8_t **bytes, size_t *len,
                      unsigned long *lineno);

/* The digest a party signs for a group of n encoded events (see the
 * signature scheme above), computed from the bytes alone. */
int trace_group_digest(const char *party,
                       const uint8_t key_id[TRACE_KEY_ID_LEN],
                       const uint8_t *const *events, const size_t *lens,
                       size_t n, uint8_t digest[32]);

/*
 * Group commit: many signed batches (the requests of many clients) in one
 * durable LMDB commit.  Each trace_commit_add runs in a nested
 * transaction: it is stored whole or, on error, leaves no trace while the
 * batches added before and after it are kept.  Nothing is durable before
 * trace_commit_end returns TRACE_OK; trace_commit_free aborts what was
 * not committed.  One group commit at a time per ledger (LMDB has one
 * writer); readers go on meanwhile.
 *
 * A batch is cut into consecutive signature groups: groups[i] covers the
 * next groups[i].count events, recorded by groups[i].party and signed with
 * its registered key key_id over trace_group_digest().  Each group must be
 * entirely new or (a retried request) entirely recorded already.
 */
typedef struct trace_signed_group {
    char party[72];
    uint8_t key_id[TRACE_KEY_ID_LEN];
    uint8_t sig[TRACE_SIG_LEN];
    size_t count;
} trace_signed_group;

typedef struct trace_commit trace_commit;
int trace_commit_begin(trace_commit **out, trace_ledger *l);
int trace_commit_add(trace_commit *c, trace_batch *b,
                     const trace_signed_group *groups, size_t n_groups,
                     unsigned flags, trace_append_result *res);
/* With TRACE_APPEND_CHECK, the next trace_commit_add calls give each
 * finding of the checks at entry to fn (lineno: the event's line), which
 * returns 0; fn NULL: only counted. */
struct trace_finding;
void trace_commit_on_finding(trace_commit *c,
                             int (*fn)(void *ctx, unsigned long lineno,
                                       const struct trace_finding *f),
                             void *ctx);
/* `total` (may be NULL) receives the sum over the batches added. */
int trace_commit_end(trace_commit *c, trace_append_result *total);
void trace_commit_free(trace_commit *c);

/*
 * Streaming import: like one trace_ledger_append of the whole input, but
 * each line is parsed, checked and written as it comes, so memory does not
 * grow with the input.  The write transaction stays open from begin to
 * commit (other writers wait).  `size_hint` (bytes of input, 0 if
 * unknown) lets the map grow beforehand.
 *
 * Two threads share the work: the caller's parses each line as it is
 * given; a thread of the import's checks, signs and writes the lines
 * parsed before (a few thousand behind at most).  So an error may be
 * found after its line was given: trace_import_line returns TRACE_OK or
 * one error of this or an earlier line ("line N: ..."), errors in line
 * order and each once; trace_import_next_error waits until every line
 * given is checked and returns the next error not yet returned, or
 * TRACE_OK when none is left.  After a rejected line the rest is still
 * parsed, so more errors can be reported, but nothing is written and
 * commit fails with the first line's code.  Call the functions of one
 * import from one thread.  trace_import_free aborts what was not
 * committed.
 */
typedef struct trace_import trace_import;
int trace_import_begin(trace_import **out, trace_ledger *l, trace_keyring *ring,
                       const char *as, unsigned flags, uint64_t size_hint);
int trace_import_line(trace_import *im, const char *line, size_t len,
                      unsigned long lineno);
int trace_import_next_error(trace_import *im);
/* With TRACE_APPEND_CHECK: the next finding of the lines checked so far
 * ("line N: CODE: message"), valid until the next call or
 * trace_import_free, or NULL when none is waiting (call it again after
 * trace_import_next_error has drained the errors for the last ones). */
const char *trace_import_next_warning(trace_import *im);
int trace_import_commit(trace_import *im, trace_append_result *res);
/* As trace_import_commit, but nothing is stored: every line parsed,
 * checked, signed and indexed in the import's transaction, which is then
 * aborted; *res says what a commit would have appended (a dry run). */
int trace_import_check(trace_import *im, trace_append_result *res);
void trace_import_free(trace_import *im);

/* ------------------------------------------------------------------ */
/* Export                                                               */

#define TRACE_EXPORT_OPTS_VERSION 1
typedef struct trace_export_opts {
    unsigned version;  /* TRACE_EXPORT_OPTS_VERSION */
    const char *party; /* only events recorded by this party; NULL: all */
    int64_t from_us;   /* only events with at >= from_us, if has_from */
    int64_t to_us;     /* only events with at <= to_us, if has_to */
    int has_from;
    int has_to;
} trace_export_opts;
#define TRACE_EXPORT_OPTS_INIT                                                 \
    {                                                                          \
        TRACE_EXPORT_OPTS_VERSION, NULL, 0, 0, 0, 0                            \
    }

/* Receives one JSON line (no newline); non-zero stops the export and is
 * returned by trace_ledger_export. */
typedef int (*trace_line_fn)(const char *line, size_t len, void *ctx);

/* Writes the matching events in journal order as SPEC section 3 JSON. */
int trace_ledger_export(trace_ledger *l, const trace_export_opts *opts,
                        trace_line_fn emit, void *ctx);

/* A line with its entry's journal position. */
typedef int (*trace_line_at_fn)(uint64_t seq, const char *line, size_t len,
                                void *ctx);

/* As trace_ledger_export, for the entries after journal position `after`
 * (0: all), each line with its position: an export stopped by `emit`
 * continues with `after` set to the last position it took. */
int trace_ledger_export_after(trace_ledger *l, const trace_export_opts *opts,
                              uint64_t after, trace_line_at_fn emit, void *ctx);

/* ------------------------------------------------------------------ */
/* Verification                                                         */

typedef struct trace_verify_result {
    uint64_t entries;     /* entries checked */
    uint64_t groups;      /* signatures checked */
    uint64_t bad_seq;     /* first bad entry (0: none or not attributable) */
    char reason[256];     /* what was wrong, "" when all holds */
    uint64_t checkpoints; /* stored checkpoints checked against the tree */
} trace_verify_result;

/*
 * Recomputes every leaf hash, link and group signature from the first
 * entry on, and checks the stored head.  TRACE_OK if all holds,
 * TRACE_EVERIFY with res->bad_seq and res->reason naming the first bad
 * entry otherwise.  Damage LMDB reports (corrupted pages) is also
 * TRACE_EVERIFY.  A damaged file can still crash LMDB itself: callers
 * that must survive that run verification in a child process, as
 * tracectl does.
 */
int trace_ledger_verify(trace_ledger *l, trace_verify_result *res,
                        trace_progress_fn progress, void *ctx);

/* As trace_ledger_verify; `stop(ctx)`, asked every 4,096 entries, ends
 * the work early with
 * TRACE_EUNAVAIL ("verification stopped ...") when it returns non-zero.
 * `stop` and `progress` may be NULL. */
int trace_ledger_verify_stoppable(trace_ledger *l, trace_verify_result *res,
                                  trace_progress_fn progress,
                                  int (*stop)(void *ctx), void *ctx);

/* As trace_ledger_verify_stoppable, and the journal must also hold the
 * tree of the signed checkpoint `note` (kept outside the ledger; signed
 * by this ledger's log key): TRACE_EVERIFY if it does not (a rewrite, or
 * a journal rolled back below its size). */
int trace_ledger_verify_checkpoint(trace_ledger *l, trace_verify_result *res,
                                   const char *note, size_t len,
                                   trace_progress_fn progress,
                                   int (*stop)(void *ctx), void *ctx);
/* ------------------------------------------------------------------ */
/* Deep verification: the indexes against the journal                   */

/*
 * What trace_ledger_verify_deep found.  When an index record differs,
 * `index` names its sub-database, `key` its key (strings as text, with
 * \0 between the fields and \xHH for other bytes; binary keys as hex),
 * `problem` says how ("differs", "missing": the journal implies it and
 * it is not stored, "unexpected": stored and not implied,
 * "inconsistent": a record that is not derived from the journal alone
 * contradicts itself or the journal), `expected` and `found` the values
 * readably ("" where there is none), and `reason` all of that in one
 * line.  When an entry cannot be re-applied, bad_seq names it.
 */
typedef struct trace_verify_deep_result {
    uint64_t entries; /* journal entries replayed */
    uint64_t records; /* stored index records compared */
    uint64_t bad_seq; /* entry that cannot be re-applied (0: none) */
    char index[16];   /* "" when all holds */
    char problem[16]; /* differs, missing, unexpected, inconsistent */
    char key[400];
    char expected[400];
    char found[400];
    char reason[1400]; /* "" when all holds */
} trace_verify_deep_result;

/*
 * Re-derives every index from the journal and compares it with the
 * stored one, record by record, in key order; stops at the first
 * difference.  Call it after trace_ledger_verify: it trusts the journal.
 *
 * Re-derived: ids, pchain, heads, parties, keys (the append path's party
 * and key updates), bal, lots, permits, pev, eff, acks, rx, products and
 * apps (state.c),
 * by replaying every entry into a scratch LMDB environment; rcidx (the
 * keys reconciliation files for the events in force at the position of
 * its last incremental run).  Alerts come from reconciliation runs (at
 * their as-of times, under the rules configured then), not from the
 * journal alone, so they are checked for consistency only: every
 * alertseq entry is the next number and names a stored alert, every
 * stored alert is named by exactly one, its JSON parses, its id is the
 * key and is the one its rule and evidence give, and its evidence
 * events are in the journal.  Not checked: meta (the head is checked by
 * trace_ledger_verify; the rest is configuration), an alert's severity
 * and detail.  A party state written before entry numbers were kept
 * exactly may name the first entry of the append that wrote it.
 *
 * The scratch environment lives in a new directory in `tmpdir` (NULL:
 * the ledger's directory, else $TMPDIR or /tmp if that is not
 * writable) and is removed before returning, whatever happens; it takes
 * about as much disk as the indexes, and memory stays bounded (the
 * scratch transaction is committed every few thousand entries).
 * `progress` (may be NULL) receives (done, total) in entries; `stop(ctx)`
 * (may be NULL), asked every 4,096 entries, ends the work early with
 * TRACE_EUNAVAIL.
 *
 * Returns TRACE_OK if every index matches, TRACE_EVERIFY with `res`
 * filled otherwise, TRACE_EUNAVAIL if stopped or the scratch
 * environment cannot be made, TRACE_EFULL if it runs out of room,
 * TRACE_ENOMEM.  Not to be called while this thread holds a transaction
 * of `l`.
 */
int trace_ledger_verify_deep(trace_ledger *l, const char *tmpdir,
                             trace_verify_deep_result *res,
                             trace_progress_fn progress, int (*stop)(void *ctx),
                             void *ctx);

#ifdef __cplusplus
}
#endif

#endif
