/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - declarations shared by libtrace's source files; never
 * installed.  Everything here may change without notice.
 */
#ifndef TRACE_INTERNAL_H
#define TRACE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>

#include <lmdb.h>

#include "trace.pb-c.h"
#include "trace/key.h"
#include "trace/trace.h"

#define TRACE_HASH_LEN   32
#define TRACE_MAX_LINE   (1u << 20) /* longest JSON line accepted */
#define TRACE_MAX_STRING 1024       /* longest string field */
#define TRACE_MAX_ID     128        /* longest event id */
#define KEY_MAX          511        /* LMDB\'s default maximum key size */

/* error.c: set the thread-local message and return `err`. */
int trace_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "line N: ". */
int trace_fail_line(int err, unsigned long lineno);
/* Translate an LMDB return code. */
int trace_fail_mdb(int rc, const char *what);
void trace_error_clear(void);
/* The LMDB code behind the last trace_fail_mdb() on this thread. */
int last_mdb_error(void);

/* arena.c: a bump allocator for protobuf-c (one free for everything). */
typedef struct arena arena;
/* A zero-filled buffer; from 2 MiB on it is mapped with huge pages where
 * the kernel allows, so a pass over millions of records faults a page
 * per 2 MiB rather than per 4 KiB.  Freed with big_free() only. */
void *big_alloc(size_t n);
void big_free(void *p);
arena *arena_new(size_t limit); /* limit: byte budget, 0 = none */
/* Size of the blocks the arena takes from now on (default 16 KiB). */
void arena_set_block(arena *a, size_t size);
void arena_free(arena *a);
void arena_reset(arena *a);
void *arena_alloc(arena *a, size_t n);
char *arena_strdup(arena *a, const char *s, size_t n);
ProtobufCAllocator *arena_allocator(arena *a);

/* jtree.c: one JSON value parsed into an arena (strict, as jansson is by
 * default; numbers keep their exact text).  Members and elements are
 * the list kid -> next; `key` names a member. */
enum { JT_NULL, JT_TRUE, JT_FALSE, JT_NUM, JT_STR, JT_ARR, JT_OBJ };
typedef struct jt {
    uint8_t type;
    const char *key; /* in an object */
    const char *s;   /* a string (decoded) or a number's text */
    size_t len;      /* of s */
    size_t n;        /* members or elements */
    struct jt *kid, *next;
} jt;
/* NULL with the reason in err on malformed JSON or no memory. */
jt *jt_parse(arena *a, const char *text, size_t len, char *err, size_t errcap);
jt *jt_get(const jt *o, const char *key); /* NULL unless o is an object */
const char *jt_str(const jt *o, const char *key); /* a string member */
#define jt_foreach(container, x)                                               \
    for ((x) = (container) ? (container)->kid : NULL; (x); (x) = (x)->next)
/* Room for one more element in a growing array (*pp of *cap elements of
 * `elem` bytes, n used), doubling from `first`: TRACE_OK or
 * TRACE_ENOMEM. */
int room_for_one(void *pp, size_t *cap, size_t n, size_t elem, size_t first);

/* quantity.c */
typedef enum { DIM_MASS = 0, DIM_VOLUME = 1, DIM_COUNT = 2 } dimension;
#define N_DIMS 3

/* Checked quantity arithmetic: *out = a + b (a - b); non-zero,
 * with *out unspecified, if the exact result does not fit an int64.
 * Every sum or difference of quantities goes through these, so stock,
 * write-offs and register totals are refused or reported, never
 * wrapped. */
static inline int qty_add(int64_t *out, int64_t a, int64_t b)
{
    return __builtin_add_overflow(a, b, out);
}
static inline int qty_sub(int64_t *out, int64_t a, int64_t b)
{
    return __builtin_sub_overflow(a, b, out);
}
/* The change between two consecutive running balances of a holding,
 * or non-zero if no single stored quantity (0 < q <= INT64_MAX) can
 * make it: the later balance wrapped (an index written before sums were
 * checked, or forged). */
static inline int qty_step(int64_t *out, int64_t before, int64_t after)
{
    return __builtin_sub_overflow(after, before, out) || *out == INT64_MIN;
}
int unit_lookup(const char *unit, dimension *dim, int64_t *factor);
/* The canonical name of a unit given by a Chinese spelling (吨: t), else
 * `unit` itself. */
const char *unit_canonical(const char *unit);
const char *dimension_name(dimension d);
int qty_parse(int64_t *out, const char *text, int64_t factor, int allow_zero);
int qty_format(char *buf, size_t cap, int64_t base, int64_t factor);
/* Default per-event ceiling, in base units of every dimension: 10^18
 * (10^6 t in ug, 10^9 m3 in uL, 10^15 units in milli-units). */
#define TRACE_MAX_QTY_DEFAULT 1000000000000000000LL
/* Parses "QTY UNIT" into the dimension and amount in base units. */
int qty_spec_parse(const char *spec, dimension *dim, int64_t *amount);
/* Refuses (TRACE_EINVAL) a quantity above the ledger's ceiling for the
 * dimension of `unit`; `field` names it in the message. */
int qty_check_ceiling(const trace_ledger *l, const char *field, int64_t amount,
                      const char *unit);
/* Position of a unit in the unit table (stored in indexes), or -1. */
int unit_index(const char *unit);
/* The unit at a table position, or NULL. */
const char *unit_name(int index);

/* timefmt.c */
int time_parse(Trace__V1__Time *out, const char *text, int allow_date,
               int tz_offset_min);
int time_format(char *buf, size_t cap, const Trace__V1__Time *t);
/* End of the period a Time names: the instant, or the last microsecond
 * of a bare date. */
int64_t time_end_us(const Trace__V1__Time *t, int tz_offset_min);
int64_t time_now_us(void);
/* The times a caller may ask about (an `at`, an as-of): years 1 to 9999
 * in UTC, or TRACE_AT_NOW; what lies past them is refused (TRACE_EINVAL)
 * rather than computed with (time arithmetic stays inside int64). */
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z */
#define TIME_ASKED_MIN_US (-62135596800000000LL)
#define TIME_ASKED_MAX_US 253402300799999999LL
static inline int time_asked_ok(int64_t us)
{
    return us == INT64_MAX /* TRACE_AT_NOW */ ||
           (us >= TIME_ASKED_MIN_US && us <= TIME_ASKED_MAX_US);
}

/* crypto.c */
void sha256(uint8_t out[TRACE_HASH_LEN], const void *data, size_t len);
void leaf_hash(uint8_t out[TRACE_HASH_LEN], const void *data, size_t len);
int hmac_sha256(uint8_t out[32], const uint8_t *key, size_t keylen,
                const void *data, size_t len);
int random_bytes(uint8_t *out, size_t len);
void hex_encode(char *out, const uint8_t *in, size_t len);
int base64_encode(char *out, size_t cap, const uint8_t *in, size_t len);
int base64_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in);
/* Streaming SHA-256 for group digests. */
typedef struct sha256_stream sha256_stream;
sha256_stream *sha256_stream_new(void);
void sha256_stream_free(sha256_stream *s);
void sha256_stream_reset(sha256_stream *s);
void sha256_stream_update(sha256_stream *s, const void *data, size_t len);
void sha256_stream_final(sha256_stream *s, uint8_t out[TRACE_HASH_LEN]);
/* Digest signed for a group (see ledger.h). */
void group_digest_begin(sha256_stream *s, const char *party,
                        const uint8_t key_id[TRACE_KEY_ID_LEN]);
void group_digest_end(sha256_stream *s, uint32_t n,
                      uint8_t out[TRACE_HASH_LEN]);

/* strmap.c: string -> fixed-size value (zero-filled on creation). */
typedef struct strmap strmap;
strmap *strmap_new(size_t val_size);
void strmap_free(strmap *m);
/* The value of `key`; with `create`, added if missing (NULL: no memory). */
void *strmap_get(strmap *m, const char *key, int create);
/* The map's own copy of key, added if absent (NULL: out of memory); it
 * stays put until strmap_free(), so equal strings get equal pointers. */
/* The key of a value strmap_get(m, ...) returned: no look-up. */
const char *strmap_key_of(const strmap *m, const void *val);
const char *strmap_intern(strmap *m, const char *key);
/* How many keys m holds. */
size_t strmap_len(const strmap *m);
/* The value of a key returned by strmap_intern(m, ...): no look-up. */
void *strmap_val_of(const strmap *m, const char *key);
/* Calls fn for every entry (in no particular order) until it returns
 * non-zero, which is returned. */
int strmap_each(const strmap *m,
                int (*fn)(const char *key, void *val, void *ctx), void *ctx);
/* The 64-bit hash the map uses for a string. */
uint64_t strmap_hash(const char *s);

/* catalog.c */
typedef struct subst_info {
    char *code;
    char *cas;
    char *name;
    char *name_zh; /* or NULL */
    dimension dim;
    char **scopes; /* licence scopes implied by its controls, e.g. CN-PC-1 */
    size_t n_scopes;
} subst_info;
typedef struct catalog catalog;
int catalog_parse(catalog **out, const char *json, size_t len);
void catalog_free(catalog *c);
/* By code, CAS number, Chinese name or alias. */
const subst_info *catalog_find(const catalog *c, const char *code_or_cas);
size_t catalog_count(const catalog *c);
extern const unsigned char trace_builtin_catalog[];
extern const size_t trace_builtin_catalog_len;

/* regime.c: the regime table (data/regimes.json) */
enum { MOVE_SALE, MOVE_TRANSPORT, MOVE_IMPORT, MOVE_EXPORT, N_MOVES };
enum { REQ_NO, REQ_YES, REQ_CONFIGURABLE /* PERMIT_MISSING.cat3_transport */ };
/* LATE_REPORT's cat1_days, cat23_days, drug_days; SPLIT_PURCHASE's
 * cat1, cat2, cat3 */
#define REGIME_N_DEADLINES 3
#define REGIME_N_SPLITS    3
extern const char *const regime_move_names[N_MOVES];
struct regime_move {
    char **permits; /* permit kinds it accepts */
    size_t n;
    uint8_t required; /* REQ_* */
    uint8_t listed;   /* 0: not in the table: any kind, none required */
};
typedef struct regime_class {
    char *cls;     /* the control class, as a licence scope: CN-PC-1 */
    char *label;   /* for alert details: "category 1" */
    char *licence; /* the scope a buyer must hold, or NULL */
    int deadline;  /* LATE_REPORT parameter index, or -1: none */
    int split;     /* SPLIT_PURCHASE threshold index, or -1: none */
    struct regime_move move[N_MOVES];
} regime_class;
typedef struct regime {
    char *code, *name; /* "CN" */
    char *json;        /* its entry of the table, compact JSON */
    char **scopes;     /* the licence scopes that exist */
    size_t n_scopes;
    double late[REGIME_N_DEADLINES]; /* LATE_REPORT defaults */
    double split[REGIME_N_SPLITS];   /* SPLIT_PURCHASE defaults */
    regime_class *classes;           /* in table order */
    size_t n_classes;
    regime_class other; /* substances with no class of the regime */
} regime;
/* Parses a whole table and keeps the entry `code`; TRACE_EINVAL with the
 * place for a malformed table or an unknown code. */
int regime_parse(regime **out, const char *json, size_t len, const char *code);
void regime_free(regime *r);
/* The substance's class (the first of the table it has), or &r->other. */
const regime_class *regime_class_of(const regime *r, const subst_info *s);
/* 1 + the index of the substance's class, or 0 for none. */
int regime_class_index(const regime *r, const subst_info *s);
/* 1 if the class accepts a permit of `kind` for the movement MOVE_*. */
int regime_accepts(const regime_class *c, int move, const char *kind);
extern const unsigned char trace_builtin_regimes[];
extern const size_t trace_builtin_regimes_len;
/* event_schema.c: 1 if `kind` is a permit kind of SPEC section 3 or 12. */
int permit_kind_known(const char *kind);

/* ledger.c: the open ledger. */
struct trace_ledger {
    MDB_env *env;
    MDB_dbi dbi_meta;     /* "regulator", "head", "catalog", "tz" ... */
    MDB_dbi dbi_journal;  /* u64be seq -> Entry bytes */
    MDB_dbi dbi_ids;      /* party \0 id -> u64be seq */
    MDB_dbi dbi_pchain;   /* party \0 u64be party_seq -> u64be seq */
    MDB_dbi dbi_heads;    /* party -> u64be party_seq || leaf hash */
    MDB_dbi dbi_parties;  /* party -> PartyBody bytes (current state) */
    MDB_dbi dbi_keys;     /* key id -> party \0 pubkey */
    MDB_dbi dbi_bal;      /* stock changes with running balances (state.c) */
    MDB_dbi dbi_lots;     /* events per lot (state.c) */
    MDB_dbi dbi_permits;  /* permit id -> issuing entry */
    MDB_dbi dbi_pev;      /* status changes and citations per permit */
    MDB_dbi dbi_eff;      /* corrected event -> correction in force */
    MDB_dbi dbi_alerts;   /* alert id -> alert JSON (reconcile.c) */
    MDB_dbi dbi_alertseq; /* u64be n -> alert id, in order found */
    MDB_dbi dbi_acks;     /* alert id -> i64be at, status (latest ack) */
    MDB_dbi dbi_rcidx;    /* reconciliation's own indexes (reconcile_inc.c) */
    MDB_dbi dbi_tree;     /* Merkle subtrees: u8 height || u64be index ->
                             hash (merkle.c) */
    MDB_dbi dbi_ckpt;     /* u64be tree size -> signed checkpoint note */
    trace_key *ckpt_key;  /* signs checkpoints (checkpoint.c): DIR/traced.key,
                             loaded when the first commit needs it */
    const trace_key *ckpt_ext; /* or this one (traced's), if set */
    /* rcidx, tree or ckpt are missing (an older ledger opened while
     * another process writes): their handles are 0 until this process's
     * first write transaction makes them */
    _Atomic int late_missing;
    MDB_dbi dbi_rx; /* prescription id -> dispensings (state.c) */
    /* dbi_rx is open and kept by this process's appends; 0 in a ledger
     * written before it existed, until rx_index_build ran (ledger.c) */
    _Atomic int rx_ready;
    _Atomic int rx_failed; /* building it failed: not tried again */
    /* trace_ledger_set_map_limit: past it, appends release the mapped
     * ledger pages as they go (every 4,096 events, at most every 50 ms) */
    uint64_t map_limit;
    _Atomic int64_t map_checked_us;
    MDB_dbi dbi_products; /* gtin -> product in force (product.c); a late
                             database: 0 while missing */
    MDB_dbi dbi_apps;     /* permit applications and their answers
                             (state.c); a late database: 0 while missing */
    char *dir;
    char *regulator;
    catalog *cat;
    regime *regime; /* meta "regime" of meta "regimes"; CN if absent */
    int tz_offset_min;
    int64_t max_qty[N_DIMS]; /* per-event ceiling by dimension, base units
                                (meta "max_qty"; quantity.c) */
    uint8_t secret[32];      /* pseudonymisation key */
    /* open transactions and map growth (see "Transactions" in ledger.c) */
    pthread_mutex_t txn_mu;
    pthread_cond_t txn_cv; /* txn_open fell to 0, or growing ended */
    unsigned txn_open;     /* top-level transactions open */
    unsigned txn_growers;  /* threads waiting to grow the map */
    int txn_growing;       /* a thread is growing the map */
    int has_txn_lock;      /* txn_mu and txn_cv were initialised */
    /* DIR/writer.lock, locked (fcntl) while this process may write: -1
     * until the first write transaction or trace_ledger_claim_writer */
    int writer_fd;
    /* an import's index entries held back (bulk.c), or NULL, and its
     * transaction: other threads compare theirs with bulk_txn only */
    struct bulk *bulk;
    MDB_txn *bulk_txn;
};

/* json_region.c: between these, jansson allocates from a region of the
 * calling thread's own (begin returns 0 if it could not make one); what
 * was parsed must be freed before json_region_end. */
int json_region_begin(void);
void json_region_end(void);

/* crypto.c: trace_key_save, each file synced (durable) or not. */
int key_save(const trace_key *key, const char *path, int durable);
/* keyring.c: while deferred, generated keys are written without a sync
 * each; keyring_sync makes all written since durable at once (before
 * the transaction that registers them commits). */
void keyring_defer_sync(trace_keyring *r, int on);
int keyring_sync(trace_keyring *r);

/* bulk.c: an import's ids, bal and lots entries held back while its
 * transaction runs and put in key order at its end.  bulk_put holds an
 * entry (*held = 1) when txn is the import's and dbi one of the three;
 * bulk_sync writes what is held (every read of those databases in the
 * import's transaction calls it first); bulk_find_id looks an id up
 * among those held, then in ids; bulk_finish writes all before the
 * commit; bulk_end forgets (before the transaction commits or aborts:
 * LMDB hands the next write transaction, of any thread, the same
 * handle). */
int bulk_begin(trace_ledger *l, MDB_txn *txn);
int bulk_put(const trace_ledger *l, MDB_txn *txn, MDB_dbi dbi, const MDB_val *k,
             const MDB_val *v, int *held);
int bulk_sync(const trace_ledger *l, MDB_txn *txn);
int bulk_find_id(const trace_ledger *l, MDB_txn *txn, const MDB_val *k,
                 MDB_val *v);
int bulk_finish(const trace_ledger *l, MDB_txn *txn);
void bulk_end(trace_ledger *l);
/* What is held is written when it passes `bytes` (0: the default, 256
 * MiB); tests set it small. */
void bulk_set_budget(size_t bytes);
/* Between two events: writes what is held if it passed the budget
 * (*wrote = 1; the writer then lets its stock tails go, nothing being
 * held, so that their memory does not grow with the import either). */
int bulk_trim(const trace_ledger *l, MDB_txn *txn, int *wrote);

/* The journal's Merkle tree (merkle.c; RFC 9162 2.1) ----------------- */
#define TREE_STRIDE    4  /* heights of stored subtrees: multiples of this */
#define TREE_MAX_PROOF 64 /* hashes in any proof of a tree of < 2^64 */
/* The leaves of the newest block (less than 2^TREE_STRIDE), which the
 * append transaction adds to. */
struct tree_acc {
    uint64_t base; /* index of leaves[0] */
    unsigned n;
    uint8_t leaves[1u << TREE_STRIDE][32];
};
void merkle_node(uint8_t out[32], const uint8_t left[32],
                 const uint8_t right[32]);
/* Hash of the complete subtree of `height` at `index`. */
int tree_node(MDB_txn *txn, const trace_ledger *l, unsigned height,
              uint64_t index, uint8_t out[32]);
/* MTH of leaves [start, end). */
int tree_range(MDB_txn *txn, const trace_ledger *l, uint64_t start,
               uint64_t end, uint8_t out[32]);
/* MTH of the first `size` leaves (SHA-256 of nothing for 0). */
int tree_root(MDB_txn *txn, const trace_ledger *l, uint64_t size,
              uint8_t out[32]);
/* Inclusion proof of leaf `index` in the tree of `size` (RFC 9162
 * 2.1.3.1), *n hashes; proof has room for TREE_MAX_PROOF. */
int tree_inclusion(MDB_txn *txn, const trace_ledger *l, uint64_t index,
                   uint64_t size, uint8_t (*proof)[32], size_t *n);
/* Consistency proof from old_size to new_size (2.1.4.1). */
int tree_consistency(MDB_txn *txn, const trace_ledger *l, uint64_t old_size,
                     uint64_t new_size, uint8_t (*proof)[32], size_t *n);
/* 1 if the proofs hold (2.1.3.2, 2.1.4.2), 0 if not. */
int merkle_verify_inclusion(uint64_t index, uint64_t size,
                            const uint8_t leaf[32], const uint8_t (*proof)[32],
                            size_t n, const uint8_t root[32]);
int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                              const uint8_t root1[32], const uint8_t root2[32],
                              const uint8_t (*proof)[32], size_t n);
/* Reads the newest block's leaves for a journal of `size` entries,
 * building the stored tree first if the ledger predates it. */
int tree_load(MDB_txn *txn, const trace_ledger *l, uint64_t size,
              struct tree_acc *t);
/* Verification's recomputation of the tree (merkle.c): from `start`
 * leaves on (their subtrees read from the stored tree), each leaf added
 * in order; every stored subtree and checkpoint met is compared (and
 * the checkpoints' signatures checked with the log key when it is at
 * hand), and `ext` (a note, or NULL) when the journal reaches its size.
 * TRACE_EVERIFY naming what differs. */
struct tree_check;
int tree_check_begin(struct tree_check **out, MDB_txn *txn, trace_ledger *l,
                     uint64_t start, const char *ext, size_t ext_len);
int tree_check_leaf(struct tree_check *t, const uint8_t leaf[32]);
/* Or, when tree_check_can16 (16 leaves in, no checkpoint inside the next
 * 16), the hash of the next 16 leaves at once. */
int tree_check_can16(const struct tree_check *t);
int tree_check_add16(struct tree_check *t, const uint8_t hash[32]);
int tree_check_end(struct tree_check *t, uint64_t *checked);
void tree_check_free(struct tree_check *t);
/* The log key's public half (checkpoint.c), without making one:
 * TRACE_ENOTFOUND if there is none. */
int checkpoint_pubkey(trace_ledger *l, uint8_t pub[32]);
/* The keys that signed this ledger's checkpoints (meta "log_keys"). */
int checkpoint_log_keys(MDB_txn *txn, trace_ledger *l, uint8_t (*pubs)[32],
                        size_t cap, size_t *n);
/* The log's origin, or TRACE_ENOTFOUND before the first checkpoint. */
int checkpoint_origin_txn(MDB_txn *txn, trace_ledger *l, char *out, size_t cap);
/* Adds the next leaf, storing the subtrees it completes. */
int tree_add(MDB_txn *txn, const trace_ledger *l, struct tree_acc *t,
             const uint8_t leaf[32]);

/* Signs and stores the checkpoint of `size` entries (checkpoint.c), in
 * the append transaction, unless one is stored already. */
int checkpoint_commit(MDB_txn *txn, trace_ledger *l, uint64_t size);
/* The stored checkpoint note of `size` (0: latest) with its
 * cosignatures, malloc'd. */
int checkpoint_note_txn(MDB_txn *txn, trace_ledger *l, uint64_t size,
                        char **note, size_t *len);
/* The log's signature line "— NAME base64(keyid || sig)\n" over text
 * (note.c). */
int note_sign_line(const trace_key *key, const char *name, const char *text,
                   size_t len, char *line, size_t cap);
/* Makes the ledger id (meta "ledger_id") if there is none. */
int ledger_id_create(MDB_txn *txn, trace_ledger *l);
/* The ledger's sub-databases: name, where its handle sits in
 * trace_ledger and its flags (ledger.c).  rcidx, the last, is opened on
 * its own (it was added later). */
struct ledger_db {
    const char *name;
    size_t offset; /* of the MDB_dbi in trace_ledger */
    unsigned flags;
};
extern const struct ledger_db ledger_dbs[];
extern const size_t ledger_n_dbs;

void be64_put(uint8_t *p, uint64_t v);
uint64_t be64_get(const uint8_t *p);
/* strerror(e) for messages, safe on any thread (strerror_r into a
 * per-thread buffer). */
const char *errno_text(int e);

/* ledger_txn_begin's answer when another process holds the writer lock
 * (trace_fail_mdb then reports the lock's message). */
#define LEDGER_ELOCKED (-30700)
/* Key party \0 suffix into buf; returns length or 0 if too long. */
size_t compose_key(uint8_t *buf, size_t cap, const char *party,
                   const void *suffix, size_t suffix_len);

/* Top-level transactions, begun and ended only through these (they
 * count the transaction open, which holds map growth back; see
 * "Transactions" in ledger.c for the rules).  Begin and commit return
 * LMDB's code; commit and abort end the transaction whatever happens,
 * and abort of NULL is a no-op.  A nested transaction is begun with
 * mdb_txn_begin and its parent: the parent holds the share. */
int ledger_txn_begin(trace_ledger *l, unsigned flags, MDB_txn **out);
int ledger_txn_commit(trace_ledger *l, MDB_txn *txn);
void ledger_txn_abort(trace_ledger *l, MDB_txn *txn);
/* Until ledger_lend(l, NULL), this thread's read transactions of `l`
 * (ledger_txn_begin with MDB_RDONLY) are the write transaction `txn`
 * itself, so queries see what it wrote; ending one leaves it open.  The
 * checks at entry of an import run this way. */
void ledger_lend(const trace_ledger *l, MDB_txn *txn);
/* Grows the map so `bytes` more fit, once every other thread's
 * transactions have ended; refused (TRACE_EFULL) if the calling thread
 * holds a transaction. */
int ledger_ensure_room(trace_ledger *l, uint64_t bytes);
/* The error of a failed commit, telling a full disk apart. */
int ledger_commit_failed(const trace_ledger *l, int rc);
/* trace_ledger_trim() to the limit set (trace_ledger_set_map_limit) if
 * this process holds more of the map; no rate limit: for a writer
 * between events. */
void ledger_trim_over(trace_ledger *l);
/* Doubles the map size, as ledger_ensure_room. */
int ledger_grow_map(trace_ledger *l);
/* verify.c: verification that resumes where the previous one stopped.
 * With `resume`, the verifier's state kept by the previous call (meta
 * "verify.state": position, head, every party's chain and every key) is
 * loaded and only later entries are checked, after checking that the
 * entry it stopped at still hashes to the head it recorded; without it
 * (or with no usable state) everything is checked.  On success *state
 * (malloc'd) is the state to keep for the next call, which the caller
 * stores in the same transaction as its other results. */
int ledger_verify_from(trace_ledger *l, trace_verify_result *res, int resume,
                       uint8_t **state, size_t *state_len);
#define VERIFY_STATE_KEY "verify.state"

int ledger_head_get(MDB_txn *txn, trace_ledger *l, uint64_t *size,
                    uint8_t hash[32]);
int ledger_head_put(MDB_txn *txn, trace_ledger *l, uint64_t size,
                    const uint8_t hash[32]);
/* append.c: records the root regulator's self-registration. */
int ledger_genesis(trace_ledger *l, const trace_key *key);
/* Current state of a party, unpacked into `a`; TRACE_ENOTFOUND if the
 * party is not registered. */
int party_state_get(MDB_txn *txn, const trace_ledger *l, arena *a,
                    const char *party, Trace__V1__PartyState **out);
/* Stores the state of the party a `party` event describes (parties) and
 * its key changes (keys): the event, recorded by `recorder`, is journal
 * entry `seq`.  Refuses (TRACE_EINVAL) what a party event may not do.
 * The append path and verify --deep (deep.c) both call it. */
int party_apply(MDB_txn *txn, const trace_ledger *l, arena *tmp,
                const Trace__V1__PartyBody *body, const char *recorder,
                uint64_t seq);
/* The stored bytes of entry `seq` (an Entry, holding its event's bytes
 * as they are), or the event's bytes of one in the writer's window: for
 * a cheap look before entry_get. */
int entry_raw(MDB_txn *txn, const trace_ledger *l, uint64_t seq,
              const uint8_t **bytes, size_t *len);
/* Reads entry `seq` from the journal and unpacks it into `a`. */
int entry_get(MDB_txn *txn, const trace_ledger *l, arena *a, uint64_t seq,
              Trace__V1__Entry **out);

/* state.c: the domain indexes, maintained in the append transaction. */
enum lot_role {
    LOT_PRODUCE = 1,
    LOT_INPUT,
    LOT_SALE,
    LOT_RECEIPT,
    LOT_TRANSFER,
    LOT_CONSUME,
    LOT_DISPENSE,
    LOT_IMPORT,
    LOT_EXPORT,
    LOT_DESTROY,
    LOT_LOSS,
    LOT_STOCKTAKE,
    LOT_SALE_IN,   /* a sale, filed under its buyer */
    LOT_CUSTODY,   /* pickup, handover, delivery, under the carrier */
    LOT_CUSTODY_OF /* the same, under the seller of the sale it cites */
};
enum pev_role {
    PEV_STATUS = 1,
    PEV_PURCHASE,
    PEV_TRANSPORT,
    PEV_IMPORT,
    PEV_EXPORT
};
/* Roles in the apps index (state.c): applicant \0 id -> u64be seq, role */
enum app_role {
    APP_FILED = 1, /* the permit_application itself */
    APP_REJECTED,  /* an application_decision citing it */
    APP_PERMIT     /* a permit citing it (approval) */
};
typedef struct state_ctx {
    MDB_txn *txn;
    trace_ledger *l;
    arena *tmp;
    /* last stock record per holding, for appends at the end (the common
     * case); NULL disables it */
    strmap *tails;
    /* events appended but not yet written (the writer's window), which a
     * correction may name: from journal position `unwritten` on */
    uint64_t unwritten;
    int (*unwritten_by_id)(void *ctx, const char *party, const char *id,
                           uint64_t *seq, const uint8_t **bytes, size_t *len);
    int (*unwritten_by_seq)(void *ctx, uint64_t seq, const uint8_t **bytes,
                            size_t *len);
    void *unwritten_ctx;
} state_ctx;
/* A stock record: the sorted duplicate value under a holding's key
 * (party \0 substance \0 lot \0 site). */
#define BAL_ORDER 17 /* u64t at, u64be seq, u8 n: the sort part */
#define BAL_SIZE  26 /* + i64be running balance (17), u8 unit (25) */
int64_t bal_balance(const void *record);
/* Book stock of one lot of a party over all its sites as of `at` (the
 * last change at or before it of each site), in base units. */
int lot_stock(MDB_txn *txn, const trace_ledger *l, const char *party,
              const char *substance, const char *lot, int64_t at, int64_t *sum);
/* A new cache of stock index tails for state_ctx.tails. */
strmap *state_tails_new(void);
/* Applies an event's effects on the indexes; `seq` is its entry. */
int state_apply(state_ctx *sc, const Trace__V1__Event *ev, uint64_t seq);
/* Unpacks and sanity-checks an Event; NULL if it is not one. */
Trace__V1__Event *event_decode(arena *a, const uint8_t *bytes, size_t len);
/* A string or message field of a message by name (NULL if unset). */
const void *msg_field(const ProtobufCMessage *m, const char *name);
/* Catalog code for a code or CAS number (the input if unknown). */
const char *canonical_substance(const trace_ledger *l, const char *s);

/* The sale `ref` of `seller` and what the receipts of lot `lot` citing
 * it received (query.c; check.c's RECEIPT_EXCEEDS_SALE): found 0 when
 * there is no such sale in force, bad 1 on an overflow.  With `buyer`,
 * only its receipts are read (the lot's records of the seller and the
 * buyer, not of every holder). */
typedef struct sale_receipts_sum {
    int found, bad;
    int64_t shipped, received;
    char unit[16];
} sale_receipts_sum;
int sale_receipts(trace_ledger *l, const char *seller, const char *ref,
                  const char *lot, const char *buyer, sale_receipts_sum *out);
/* The rx index (see state.c): a dispensing in force is filed under the
 * first RX_KEY_MAX bytes of its prescription id. */
#define RX_KEY_MAX 400
/* Calls fn for every dispensing in force of prescription `rx_id`, read
 * in txn (the index, or a scan of the journal while the ledger has no
 * index): `seq` the entry it is filed under, ev the dispensing (the
 * replacement for a corrected one; valid during the call), `recorded`
 * the id it was recorded under.  A non-zero return of fn stops and is
 * returned. */
typedef int (*rx_fn)(void *ctx, uint64_t seq, const Trace__V1__Event *ev,
                     const char *recorded);
int rx_dispensings(MDB_txn *txn, const trace_ledger *l, const char *rx_id,
                   rx_fn fn, void *ctx);
/* Fills the empty rx index `dbi` from the journal, in the write
 * transaction txn. */
int rx_index_build(MDB_txn *txn, const trace_ledger *l, MDB_dbi dbi);
/* Builds the rx index of a ledger that has none, if this process can
 * write (ledger.c); TRACE_OK whether or not it could. */
void ledger_rx_ensure(trace_ledger *l, int at_open);
/* Times as sortable unsigned keys. */
uint64_t time_key(int64_t us);
int64_t time_unkey(uint64_t k);

/* gs1.c: GS1 keys and the EPC / Digital Link URIs of EPCIS. */
/* The check digit of the n digits before it. */
char gs1_check_digit(const char *digits, size_t n);
/* s is `len` digits whose last is the check digit of the others. */
int gs1_key_valid(const char *s, size_t len);
/* An SGTIN, LGTIN or SGTIN pattern URI, or a Digital Link with a GTIN:
 * the GTIN-14, the lot ("" if none) and whether it names one instance
 * (serial).  TRACE_ENOTFOUND if it is no such URI, TRACE_EINVAL if it
 * is one but malformed (a wrong check digit). */
int gs1_parse_item(const char *uri, char gtin[15], char *lot, size_t lot_cap,
                   int *serial);
/* An SGLN or PGLN URI or a Digital Link with AI 414/417: the GLN. */
int gs1_parse_gln(const char *uri, char gln[14]);

/* product.c: the product master. */
/* The product in force for gtin, its entry and first registrar (each
 * optional): TRACE_ENOTFOUND if none. */
int product_get(MDB_txn *txn, const trace_ledger *l, arena *a, const char *gtin,
                Trace__V1__ProductBody **out, uint64_t *seq,
                const char **registrar);
/* The same in a read transaction of its own (the one this thread was
 * lent, if any). */
int product_find(const trace_ledger *l, arena *a, const char *gtin,
                 Trace__V1__ProductBody **out);
/* packs x units_per_pack x content, in base units (overflow refused). */
int product_amount(const Trace__V1__ProductBody *p, uint64_t packs,
                   int64_t *out);
/* Files a `product` event (entry seq), checking who may record it. */
int product_apply(MDB_txn *txn, const trace_ledger *l, arena *tmp,
                  const Trace__V1__Event *ev, uint64_t seq);
/* append.c: an active regulator registered by the root regulator (or it). */
int party_is_regulator(const trace_ledger *l, const Trace__V1__PartyState *st);
/* A regulator's scopes (TRACE_SCOPE_*), 0 if it has none, is the root
 * regulator or is no regulator (access.c). */
unsigned party_scopes(const trace_ledger *l, const Trace__V1__PartyState *st);
struct json_t;
/* 1 if the alert object `al` (as stored) is within scopes, as
 * trace_alert_in_scope says; depth 0 unless asked for an event naming it
 * (access.c). */
int alert_in_scope(MDB_txn *txn, trace_ledger *l, arena *a, unsigned scopes,
                   const struct json_t *al, int depth);

/* application.c: the last microsecond (UTC) of the n-th working day
 * (Monday to Friday in the zone tz_min minutes east of UTC) after the
 * local day of `at`, and that day's local date (YYYY-MM-DD) in date;
 * the working days after the local day of `from` up to that of `to`
 * (0 if `to` is not later).  Public holidays are not known. */
int64_t workday_deadline(int64_t at, int tz_min, int n, char date[11]);
uint32_t workdays_between(int64_t from, int64_t to, int tz_min);

/* permit.c */
int subst_has_scope(const subst_info *s, const char *scope);

/* query.c */
int load_effective(MDB_txn *txn, const trace_ledger *l, arena *a, uint64_t seq,
                   Trace__V1__Event **out);
char *format_qty(arena *a, int64_t amount, const char *unit);
char *format_time(arena *a, const Trace__V1__Time *t);

/* event_schema.c */
typedef struct event_type {
    const char *name;
    uint32_t body_case; /* Trace__V1__Event__BodyCase */
    int regulator_only;
} event_type;
const event_type *event_type_find(const char *name);
const event_type *event_type_by_case(uint32_t body_case);
/* event_json.c */
/* Copies JSON text with every number token turned into a string whose
 * first byte is 0x01 (then the number's exact text), so jansson keeps
 * numbers exact; exponents are refused unless allowed.  *out malloc'd. */
int json_mark_numbers(char **out, const char *in, size_t len,
                      int allow_exponent);
/* Parses one JSON object into an Event allocated in `a`. */
int event_from_json(Trace__V1__Event **out, arena *a, const char *line,
                    size_t len, const trace_ledger *l);
/* The products of earlier lines of one file or request, so a movement
 * may name a GTIN registered a few lines before it: gtin -> its
 * ProductBody (products_seen_new/free; the bytes live in its arena). */
typedef struct products_seen products_seen;
products_seen *products_seen_new(void);
void products_seen_free(products_seen *ps);
/* event_from_json that also finds GTINs in `seen` (may be NULL) and adds
 * the product a `product` line registers to it. */
int event_from_json_in(Trace__V1__Event **out, arena *a, const char *line,
                       size_t len, const trace_ledger *l, products_seen *seen);
/* event_msg.c */
/* Checks the quantities of an event that did not come through
 * event_from_json (an encoded one): known units, not negative, at most
 * the ledger's ceiling.  TRACE_EINVAL with a message otherwise. */
int event_check_quantities(const trace_ledger *l, const Trace__V1__Event *ev);
/* Renders an Event as one JSON line into a malloc'd string. */
int event_to_json(char **out, size_t *outlen, const Trace__V1__Event *ev,
                  const trace_ledger *l);
/* The body message of an event (NULL if none). */
const ProtobufCMessage *event_body(const Trace__V1__Event *ev);
/* A message of an event (its rx, ...) as the JSON object event_to_json
 * writes for it; NULL on failure. */
struct json_t *msg_json(const ProtobufCMessage *m);
/* export.c: the events trace_ledger_export would write, decoded, in the
 * same order and with the same filters; the event lives until fn
 * returns. */
typedef int (*export_event_fn)(uint64_t seq, const Trace__V1__Event *ev,
                               void *ctx);
int export_events(trace_ledger *l, const trace_export_opts *opts,
                  export_event_fn fn, void *ctx);

#endif
