/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deep.c - verify --deep: the indexes re-derived from the journal and
 * compared with the stored ones, record by record.
 *
 * trace_ledger_verify checks the journal (hashes, links, signatures);
 * queries are answered from the indexes, which it does not read.  Here
 * every entry is replayed, in journal order, through the code that
 * built the indexes - the append path's ids, pchain, heads and party
 * updates (party_apply, append.c) and the domain indexes (state_apply,
 * state.c) - into a scratch LMDB environment made for the purpose (a
 * different environment, so one process may hold both), with a
 * trace_ledger whose handles are the scratch ones.  Then each stored
 * sub-database is walked beside its re-derived twin in key order (and
 * value order for sorted duplicates); the first record that is not in
 * both, or differs, is named.
 *
 * Invariants:
 *   - the ledger is only read, in one read transaction, so the journal
 *     and the indexes compared are one snapshot;
 *   - memory is bounded: the scratch transaction is committed every
 *     DEEP_BATCH entries (its dirty pages are the only thing that grows)
 *     and the stock tails cache is dropped with it;
 *   - the scratch directory is removed on every path out.
 *
 * Not everything is derived from the journal alone:
 *   - rcidx holds reconciliation's keys for the events in force at the
 *     position of its last incremental run (P, meta "reconcile.state"):
 *     a second pass files the keys of entries 1..P into the scratch
 *     rcidx (inc_index_rec), with eff as it was at P - the first value
 *     a later correction replaced is kept in the scratch-only "effp";
 *   - alerts and alertseq are what reconciliation runs found, at their
 *     as-of times under the rules configured then: they are checked for
 *     consistency only (see check_alerts).
 * The tolerances for what older versions wrote are in `tolerated`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "reconcile_int.h"

#define DEEP_BATCH 4096 /* entries per scratch transaction */

/* The sub-databases compared, in the order they are compared. */
enum {
    DB_IDS,
    DB_PCHAIN,
    DB_HEADS,
    DB_PARTIES,
    DB_KEYS,
    DB_BAL,
    DB_LOTS,
    DB_PERMITS,
    DB_PEV,
    DB_EFF,
    DB_ACKS,
    DB_ALERTS,
    DB_RCIDX,
    DB_RX,       /* compared when the ledger has built it (rx_ready) */
    DB_PRODUCTS, /* compared when the ledger has it (a late database) */
    DB_APPS,     /* compared when the ledger has it (a late database) */
    DB_ALERTSEQ, /* checked with the alerts (check_alerts), not compared */
    N_DB
};

/* How a key or value reads. */
enum fmt {
    F_TEXT,    /* strings: text, \0 between fields, \xHH */
    F_HEX,     /* binary */
    F_U64,     /* u64be number */
    F_SEQ,     /* u64be entry */
    F_SEQROLE, /* u64be entry, u8 role */
    F_HEAD,    /* u64be party_seq, leaf hash */
    F_PARTY,   /* PartyState */
    F_BAL,     /* stock record (state.c) */
    F_ACK,     /* i64be at, status \0 party \0 note */
    F_RCIDX,   /* tag, names, u64be entry */
    F_RCVAL    /* empty, or the position under "\0" */
};

static const struct cmp_db {
    const char *name;
    size_t offset; /* of the handle in trace_ledger */
    enum fmt key, val;
    /* sorted duplicates: the bytes of a value that say which record it
     * is (the rest is what the record says) */
    size_t ident;
} cmp_dbs[N_DB] = {
    [DB_IDS] = {"ids", offsetof(trace_ledger, dbi_ids), F_TEXT, F_SEQ, 0},
    [DB_PCHAIN] = {"pchain", offsetof(trace_ledger, dbi_pchain), F_TEXT, F_SEQ,
                   8},
    [DB_HEADS] = {"heads", offsetof(trace_ledger, dbi_heads), F_TEXT, F_HEAD,
                  0},
    [DB_PARTIES] = {"parties", offsetof(trace_ledger, dbi_parties), F_TEXT,
                    F_PARTY, 0},
    [DB_KEYS] = {"keys", offsetof(trace_ledger, dbi_keys), F_HEX, F_TEXT, 0},
    [DB_BAL] = {"bal", offsetof(trace_ledger, dbi_bal), F_TEXT, F_BAL,
                BAL_ORDER},
    [DB_LOTS] = {"lots", offsetof(trace_ledger, dbi_lots), F_TEXT, F_SEQROLE,
                 8},
    [DB_PERMITS] = {"permits", offsetof(trace_ledger, dbi_permits), F_TEXT,
                    F_SEQ, 0},
    [DB_PEV] = {"pev", offsetof(trace_ledger, dbi_pev), F_TEXT, F_SEQROLE, 8},
    [DB_EFF] = {"eff", offsetof(trace_ledger, dbi_eff), F_TEXT, F_SEQ, 0},
    [DB_ACKS] = {"acks", offsetof(trace_ledger, dbi_acks), F_TEXT, F_ACK, 0},
    [DB_ALERTS] = {"alerts", offsetof(trace_ledger, dbi_alerts), F_TEXT, F_TEXT,
                   0},
    [DB_RCIDX] = {"rcidx", offsetof(trace_ledger, dbi_rcidx), F_RCIDX, F_RCVAL,
                  0},
    [DB_RX] = {"rx", offsetof(trace_ledger, dbi_rx), F_TEXT, F_SEQROLE, 8},
    [DB_PRODUCTS] = {"products", offsetof(trace_ledger, dbi_products), F_TEXT,
                     F_HEX, 0},
    [DB_APPS] = {"apps", offsetof(trace_ledger, dbi_apps), F_TEXT, F_SEQROLE,
                 8},
    [DB_ALERTSEQ] = {"alertseq", offsetof(trace_ledger, dbi_alertseq), F_U64,
                     F_TEXT, 0},
};

struct deep {
    trace_ledger *l;  /* the ledger verified */
    trace_ledger sl;  /* the scratch environment, as a ledger */
    MDB_dbi dbi_effp; /* scratch only: party \0 id -> eff at P ("": none) */
    MDB_txn *rtxn;    /* read transaction of l: the snapshot */
    MDB_txn *stxn;    /* the scratch write transaction */
    arena *tmp;       /* per entry */
    strmap *tails;    /* stock tails (state.c), per scratch transaction */
    uint64_t size;    /* entries in the journal */
    uint64_t rc_pos;  /* P: rcidx's position (0: none) */
    int rc_skip;      /* rcidx written by another state version */
    uint64_t done, total;
    char dir[4096]; /* the scratch directory ("" until made) */
    trace_verify_deep_result *res;
    trace_progress_fn progress;
    int (*stop)(void *ctx);
    void *ctx;
};

/* ------------------------------------------------------------------ */
/* Reading records                                                      */

static int lexcmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = n ? memcmp(a->mv_data, b->mv_data, n) : 0;
    return c ? c : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

/* Appends s (n bytes) readably to out: printable ASCII and valid UTF-8
 * as they are, NUL as \0, anything else as \xHH. */
static void put_text(char *out, size_t cap, const uint8_t *s, size_t n)
{
    size_t o = strlen(out);

    for (size_t i = 0; i < n && o + 8 < cap;) {
        uint8_t c = s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        int ok = len > 1 && i + len <= n;
        for (size_t j = 1; ok && j < len; j++)
            ok = (s[i + j] & 0xc0) == 0x80;
        if (ok) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
            continue;
        }
        if (c == 0)
            o += (size_t)snprintf(out + o, cap - o, "\\0");
        else if (c == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\\\");
        else if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        i++;
    }
    if (o + 8 >= cap && o < cap)
        snprintf(out + (cap > 4 ? cap - 4 : o), 4, "...");
    else
        out[o] = '\0';
}

static void put_hex(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t o = strlen(out);
    for (size_t i = 0; i < n && o + 3 < cap; i++, o += 2)
        snprintf(out + o, cap - o, "%02x", p[i]);
}

static void put_fmt(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_fmt(char *out, size_t cap, const char *fmt, ...)
{
    size_t o = strlen(out);
    va_list ap;
    if (o + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(out + o, cap - o, fmt, ap);
    va_end(ap);
}

static void put_time(char *out, size_t cap, int64_t us)
{
    time_t t = (time_t)(us / 1000000 - (us % 1000000 < 0));
    long frac = (long)(us - (int64_t)t * 1000000);
    struct tm tm;
    char buf[40];

    if (!gmtime_r(&t, &tm) ||
        !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm)) {
        put_fmt(out, cap, "%lld us", (long long)us);
        return;
    }
    if (frac)
        put_fmt(out, cap, "%s.%06ldZ", buf, frac);
    else
        put_fmt(out, cap, "%sZ", buf);
}

/* A key or value of format f, readably, into out. */
static void show(char *out, size_t cap, enum fmt f, const MDB_val *x)
{
    const uint8_t *p = x->mv_data;
    size_t n = x->mv_size;

    out[0] = '\0';
    switch (f) {
    case F_TEXT:
        put_text(out, cap, p, n);
        return;
    case F_U64:
        if (n == 8) {
            put_fmt(out, cap, "%llu", (unsigned long long)be64_get(p));
            return;
        }
        break;
    case F_SEQ:
        if (n == 8) {
            put_fmt(out, cap, "entry %llu", (unsigned long long)be64_get(p));
            return;
        }
        break;
    case F_SEQROLE:
        if (n == 9) {
            put_fmt(out, cap, "entry %llu role %u",
                    (unsigned long long)be64_get(p), p[8]);
            return;
        }
        break;
    case F_HEAD:
        if (n == 8 + TRACE_HASH_LEN) {
            put_fmt(out, cap, "party_seq %llu hash ",
                    (unsigned long long)be64_get(p));
            put_hex(out, cap, p + 8, TRACE_HASH_LEN);
            return;
        }
        break;
    case F_BAL:
        if (n == BAL_SIZE) {
            const char *u = unit_name(p[25]);
            put_fmt(out, cap, "at ");
            put_time(out, cap, time_unkey(be64_get(p)));
            put_fmt(out, cap, " entry %llu n %u balance %lld unit %s",
                    (unsigned long long)be64_get(p + 8), p[16],
                    (long long)bal_balance(p), u ? u : "?");
            return;
        }
        break;
    case F_ACK:
        if (n >= 8) {
            put_fmt(out, cap, "at ");
            put_time(out, cap, (int64_t)be64_get(p));
            put_fmt(out, cap, " ");
            put_text(out, cap, p + 8, n - 8);
            return;
        }
        break;
    case F_RCIDX:
        if (n > 8) {
            put_text(out, cap, p, n - 8);
            put_fmt(out, cap, " entry %llu",
                    (unsigned long long)be64_get(p + n - 8));
            return;
        }
        put_text(out, cap, p, n);
        return;
    case F_RCVAL:
        if (n == 0) {
            put_fmt(out, cap, "(empty)");
            return;
        }
        if (n == 8) {
            put_fmt(out, cap, "position %llu", (unsigned long long)be64_get(p));
            return;
        }
        break;
    case F_PARTY: {
        Trace__V1__PartyState *st = trace__v1__party_state__unpack(NULL, n, p);
        if (st && st->body) {
            const Trace__V1__PartyBody *b = st->body;
            put_fmt(out, cap,
                    "subject %.80s kind %.20s status %.20s name \"%.100s\" "
                    "keys %zu revoked %zu registered_by %.80s seq %llu",
                    b->subject ? b->subject : "?", b->kind ? b->kind : "?",
                    b->status ? b->status : "-", b->name ? b->name : "",
                    st->n_keys, st->n_revoked,
                    st->registered_by ? st->registered_by : "-",
                    (unsigned long long)st->seq);
            trace__v1__party_state__free_unpacked(st, NULL);
            return;
        }
        if (st)
            trace__v1__party_state__free_unpacked(st, NULL);
        put_fmt(out, cap, "(does not decode) ");
        put_text(out, cap, p, n);
        return;
    }
    case F_HEX:
        break;
    }
    put_hex(out, cap, p, n);
}

/* ------------------------------------------------------------------ */
/* Findings                                                             */

static int finding(struct deep *d, int db, const char *problem,
                   const MDB_val *key, const MDB_val *expected,
                   const MDB_val *found, const char *note)
{
    trace_verify_deep_result *r = d->res;
    const struct cmp_db *c = &cmp_dbs[db];

    snprintf(r->index, sizeof(r->index), "%s", c->name);
    snprintf(r->problem, sizeof(r->problem), "%s", problem);
    show(r->key, sizeof(r->key), c->key, key);
    r->expected[0] = r->found[0] = '\0';
    if (expected)
        show(r->expected, sizeof(r->expected), c->val, expected);
    if (found)
        show(r->found, sizeof(r->found), c->val, found);
    if (note)
        snprintf(r->reason, sizeof(r->reason), "index %s, record %s: %s",
                 c->name, r->key, note);
    else if (expected && found)
        snprintf(r->reason, sizeof(r->reason),
                 "index %s, record %s: differs: expected %s, found %s", c->name,
                 r->key, r->expected, r->found);
    else if (expected)
        snprintf(r->reason, sizeof(r->reason),
                 "index %s, record %s: missing (expected %s)", c->name, r->key,
                 r->expected);
    else
        snprintf(r->reason, sizeof(r->reason),
                 "index %s, record %s: unexpected (found %s)", c->name, r->key,
                 r->found);
    return trace_fail(TRACE_EVERIFY, "%s", r->reason);
}

/* An entry the replay cannot re-apply: its indexes cannot be derived. */
static int replay_failed(struct deep *d, uint64_t seq, const char *why)
{
    d->res->bad_seq = seq;
    snprintf(d->res->reason, sizeof(d->res->reason),
             "entry %llu cannot be re-applied to the indexes: %s",
             (unsigned long long)seq, why);
    return trace_fail(TRACE_EVERIFY, "%s", d->res->reason);
}

/* ------------------------------------------------------------------ */
/* The scratch environment                                              */

static int scratch_open(struct deep *d, const char *tmpdir)
{
    const char *tries[3] = {tmpdir, NULL, NULL};
    MDB_envinfo info;
    MDB_stat st;
    MDB_txn *txn;
    size_t map;
    int rc;

    if (!tmpdir) {
        tries[0] = d->l->dir;
        tries[1] =
            getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    }
    for (int i = 0; i < 3 && tries[i] && !d->dir[0]; i++) {
        if ((size_t)snprintf(d->dir, sizeof(d->dir), "%s/.deep-verify-XXXXXX",
                             tries[i]) >= sizeof(d->dir) ||
            !mkdtemp(d->dir))
            d->dir[0] = '\0';
    }
    if (!d->dir[0])
        return trace_fail(TRACE_EUNAVAIL,
                          "verify --deep: cannot make a scratch directory "
                          "in %s: %s",
                          tries[0], errno_text(errno));
    /* room for the indexes however they pack: twice what the ledger
     * uses, and 1 GiB (the map is address space; the file grows as
     * pages are used) */
    if (mdb_env_info(d->l->env, &info) || mdb_env_stat(d->l->env, &st))
        return trace_fail(TRACE_EUNAVAIL, "verify --deep: ledger size");
    map = (size_t)(info.me_last_pgno + 1) * st.ms_psize * 2 + (1u << 30);
    d->sl = *d->l;
    d->sl.has_txn_lock = 0;
    d->sl.writer_fd = -1;
    d->sl.dir = d->dir;
    /* a scratch copy: nothing to keep after a crash, one thread */
    if ((rc = mdb_env_create(&d->sl.env)) != 0) {
        d->sl.env = NULL;
        return trace_fail_mdb(rc, "scratch");
    }
    if ((rc = mdb_env_set_maxdbs(d->sl.env, 32)) != 0 ||
        (rc = mdb_env_set_mapsize(d->sl.env, map)) != 0 ||
        (rc = mdb_env_open(d->sl.env, d->dir,
                           MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOLOCK, 0600)))
        return trace_fail_mdb(rc, "scratch");
    if ((rc = mdb_txn_begin(d->sl.env, NULL, 0, &txn)))
        return trace_fail_mdb(rc, "scratch");
    for (size_t i = 0; i < ledger_n_dbs && rc == 0; i++)
        rc = mdb_dbi_open(txn, ledger_dbs[i].name,
                          ledger_dbs[i].flags | MDB_CREATE,
                          (MDB_dbi *)((char *)&d->sl + ledger_dbs[i].offset));
    if (rc == 0)
        rc = mdb_dbi_open(txn, "effp", MDB_CREATE, &d->dbi_effp);
    /* the prescription index, when the ledger keeps one (state.c) */
    if (rc == 0 && d->sl.rx_ready)
        rc = mdb_dbi_open(txn, "rx", MDB_DUPSORT | MDB_DUPFIXED | MDB_CREATE,
                          &d->sl.dbi_rx);
    /* the product master (product.c) */
    if (rc == 0)
        rc = mdb_dbi_open(txn, "products", MDB_CREATE, &d->sl.dbi_products);
    /* permit applications and their answers (state.c) */
    if (rc == 0)
        rc = mdb_dbi_open(txn, "apps", MDB_DUPSORT | MDB_DUPFIXED | MDB_CREATE,
                          &d->sl.dbi_apps);
    if (rc) {
        mdb_txn_abort(txn);
        return trace_fail_mdb(rc, "scratch");
    }
    if ((rc = mdb_txn_commit(txn)))
        return trace_fail_mdb(rc, "scratch");
    return TRACE_OK;
}

static void scratch_remove(struct deep *d)
{
    char path[4200];

    if (d->stxn)
        mdb_txn_abort(d->stxn);
    d->stxn = NULL;
    if (d->sl.env)
        mdb_env_close(d->sl.env);
    d->sl.env = NULL;
    if (!d->dir[0])
        return;
    snprintf(path, sizeof(path), "%s/data.mdb", d->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", d->dir);
    unlink(path);
    rmdir(d->dir);
    d->dir[0] = '\0';
}

/* Commits the scratch transaction and begins the next; reports progress
 * and asks `stop`. */
static int next_batch(struct deep *d)
{
    int rc;

    if (d->stxn) {
        rc = mdb_txn_commit(d->stxn);
        d->stxn = NULL;
        if (rc)
            return rc == MDB_MAP_FULL
                       ? trace_fail(TRACE_EFULL, "verify --deep: the scratch "
                                                 "environment is full")
                       : trace_fail_mdb(rc, "scratch");
    }
    if ((rc = mdb_txn_begin(d->sl.env, NULL, 0, &d->stxn))) {
        d->stxn = NULL;
        return trace_fail_mdb(rc, "scratch");
    }
    strmap_free(d->tails);
    if (!(d->tails = state_tails_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (d->progress)
        d->progress(d->done, d->total, d->ctx);
    if (d->stop && d->stop(d->ctx))
        return trace_fail(TRACE_EUNAVAIL, "verification stopped at entry %llu",
                          (unsigned long long)d->done);
    return TRACE_OK;
}

/* ------------------------------------------------------------------ */
/* Replaying the journal                                                */

/* state.c reads events it is told about by position (a correction's
 * target) through this: from the snapshot's journal. */
static int journal_event(void *ctx, uint64_t seq, const uint8_t **bytes,
                         size_t *len)
{
    struct deep *d = ctx;
    Trace__V1__Entry *e;

    if (entry_get(d->rtxn, d->l, d->tmp, seq, &e) != TRACE_OK)
        return TRACE_ENOTFOUND;
    *bytes = e->event.data;
    *len = e->event.len;
    return TRACE_OK;
}

/* eff of (party, id) as it was at P: *seq, or 0 if not corrected. */
static int eff_at_pos(struct deep *d, const char *party, const char *id,
                      uint64_t *seq)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), party, id, strlen(id));
    MDB_val k = {klen, key}, v;
    int rc;

    *seq = 0;
    if (!klen)
        return TRACE_OK;
    rc = mdb_get(d->stxn, d->dbi_effp, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = mdb_get(d->stxn, d->sl.dbi_eff, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        *seq = be64_get(v.mv_data);
    return rc == 0 || rc == MDB_NOTFOUND ? TRACE_OK
                                         : trace_fail_mdb(rc, "scratch");
}

/* A correction after P: keeps what eff held for its target before. */
static int keep_eff(struct deep *d, const Trace__V1__Event *ev)
{
    const char *target = ev->correction_body->corrects;
    uint8_t key[KEY_MAX];
    size_t klen =
        compose_key(key, sizeof(key), ev->party, target, strlen(target));
    MDB_val k = {klen, key}, v, none = {0, ""};
    int rc;

    if (!klen)
        return TRACE_OK;
    rc = mdb_get(d->stxn, d->sl.dbi_eff, &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, "scratch");
    rc = mdb_put(d->stxn, d->dbi_effp, &k, rc ? &none : &v, MDB_NOOVERWRITE);
    return rc == 0 || rc == MDB_KEYEXIST ? TRACE_OK
                                         : trace_fail_mdb(rc, "scratch");
}

/* What the append path stores for one entry. */
static int replay_entry(struct deep *d, uint64_t seq, const MDB_val *raw)
{
    state_ctx sc = {d->stxn, &d->sl, d->tmp,        d->tails,
                    0,       NULL,   journal_event, d};
    uint8_t key[TRACE_MAX_ID + 80], seqb[8], head[8 + TRACE_HASH_LEN];
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    MDB_val k, v;
    size_t klen;
    int rc;

    arena_reset(d->tmp);
    e = trace__v1__entry__unpack(arena_allocator(d->tmp), raw->mv_size,
                                 raw->mv_data);
    if (!e || !e->party ||
        !(ev = event_decode(d->tmp, e->event.data, e->event.len)))
        return replay_failed(d, seq, "it does not decode");
    be64_put(seqb, seq);
    /* ids, pchain, heads: write_entry and writer_put_heads (append.c) */
    klen = compose_key(key, sizeof(key), ev->party, ev->id, strlen(ev->id));
    k = (MDB_val){klen, key};
    v = (MDB_val){8, seqb};
    rc = klen ? mdb_put(d->stxn, d->sl.dbi_ids, &k, &v, MDB_NOOVERWRITE)
              : MDB_BAD_VALSIZE;
    if (rc == MDB_KEYEXIST)
        return replay_failed(d, seq, "its id was recorded before");
    if (rc)
        return trace_fail_mdb(rc, "scratch ids");
    k = (MDB_val){strlen(e->party), e->party};
    if ((rc = mdb_put(d->stxn, d->sl.dbi_pchain, &k, &v, MDB_APPENDDUP)) ==
        MDB_KEYEXIST)
        rc = mdb_put(d->stxn, d->sl.dbi_pchain, &k, &v, 0);
    be64_put(head, e->party_seq);
    leaf_hash(head + 8, raw->mv_data, raw->mv_size);
    v = (MDB_val){sizeof(head), head};
    if (rc == 0)
        rc = mdb_put(d->stxn, d->sl.dbi_heads, &k, &v, 0);
    if (rc)
        return trace_fail_mdb(rc, "scratch");
    /* parties and keys (append.c), then the domain indexes (state.c) */
    if (ev->body_case == TRACE__V1__EVENT__BODY_PARTY_BODY &&
        (rc = party_apply(d->stxn, &d->sl, d->tmp, ev->party_body, ev->party,
                          seq)) != TRACE_OK)
        return rc == TRACE_EINVAL || rc == TRACE_EVERIFY
                   ? replay_failed(d, seq, trace_error_last())
                   : rc;
    if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY &&
        seq > d->rc_pos && (rc = keep_eff(d, ev)) != TRACE_OK)
        return rc;
    if ((rc = state_apply(&sc, ev, seq)) != TRACE_OK)
        return rc == TRACE_EINVAL || rc == TRACE_EVERIFY
                   ? replay_failed(d, seq, trace_error_last())
                   : rc;
    return TRACE_OK;
}

/* The keys reconciliation filed in rcidx for entry `seq` (index_rec in
 * reconcile_inc.c), with the event in force at P. */
static int rcidx_entry(struct deep *d, uint64_t seq, const MDB_val *raw)
{
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    const ProtobufCMessage *body;
    const char *sub;
    uint64_t in_force;
    rec x;
    int rc;

    arena_reset(d->tmp);
    e = trace__v1__entry__unpack(arena_allocator(d->tmp), raw->mv_size,
                                 raw->mv_data);
    if (!e || !(ev = event_decode(d->tmp, e->event.data, e->event.len)))
        return TRACE_OK; /* reconciliation leaves damage out too */
    if (ev->body_case == TRACE__V1__EVENT__BODY_CORRECTION_BODY) {
        const Trace__V1__CorrectionBody *c = ev->correction_body;
        if ((rc = eff_at_pos(d, ev->party, c->corrects, &in_force)) != TRACE_OK)
            return rc;
        if (in_force != seq || !c->has_replacement ||
            !(ev = event_decode(d->tmp, c->replacement.data,
                                c->replacement.len)))
            return TRACE_OK;
    } else {
        if ((rc = eff_at_pos(d, ev->party, ev->id, &in_force)) != TRACE_OK)
            return rc;
        if (in_force)
            return TRACE_OK; /* corrected: its replacement stands */
    }
    memset(&x, 0, sizeof(x));
    x.seq = seq;
    x.kind = (uint8_t)ev->body_case;
    body = event_body(ev);
    switch (ev->body_case) {
    case TRACE__V1__EVENT__BODY_SALE_BODY:
        x.to = ev->sale_body->to;
        sub = msg_field(body, "substance");
        x.substance = sub ? canonical_substance(d->l, sub) : NULL;
        break;
    case TRACE__V1__EVENT__BODY_RECEIPT_BODY:
        x.from = ev->receipt_body->from;
        x.ref = ev->receipt_body->ref;
        break;
    case TRACE__V1__EVENT__BODY_DESTROY_BODY:
        x.witness = ev->destroy_body->witness;
        break;
    case TRACE__V1__EVENT__BODY_PICKUP_BODY:
    case TRACE__V1__EVENT__BODY_HANDOVER_BODY:
    case TRACE__V1__EVENT__BODY_DELIVERY_BODY: {
        const Trace__V1__EventRef *ref = msg_field(body, "ref");
        x.from = ref ? ref->party : NULL;
        x.ref = ref ? ref->id : NULL;
        break;
    }
    case TRACE__V1__EVENT__BODY_DISPENSE_BODY:
        x.patient = ev->dispense_body->rx->patient;
        x.rx = ev->dispense_body->rx->id;
        break;
    default:
        break;
    }
    return inc_index_rec(d->stxn, d->sl.dbi_rcidx, &x);
}

/* One pass over entries 1..last of the snapshot's journal. */
static int journal_pass(struct deep *d, uint64_t last,
                        int (*fn)(struct deep *d, uint64_t seq,
                                  const MDB_val *raw))
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    if ((mrc = mdb_cursor_open(d->rtxn, d->l->dbi_journal, &cur)))
        return trace_fail_mdb(mrc, "journal");
    rc = TRACE_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
        if (seq > last)
            break;
        if ((rc = fn(d, seq, &v)) != TRACE_OK)
            break;
        d->done++;
        if ((d->done % DEEP_BATCH) == 0 && (rc = next_batch(d)) != TRACE_OK)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == TRACE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = trace_fail_mdb(mrc, "journal");
    return rc;
}

/* P: the position meta "reconcile.state" records (reconcile_inc.c: a
 * version byte, then u64be position), which rcidx repeats under "\0". */
static int rcidx_position(struct deep *d)
{
    MDB_val k = {strlen("reconcile.state"), "reconcile.state"}, v;
    int rc = mdb_get(d->rtxn, d->l->dbi_meta, &k, &v);

    d->rc_pos = 0;
    if (rc == 0 && v.mv_size >= 9 && *(const uint8_t *)v.mv_data != 2) {
        d->rc_skip = 1; /* another version's layout: not derived here */
    } else if (rc == 0 && v.mv_size >= 9) {
        d->rc_pos = be64_get((const uint8_t *)v.mv_data + 1);
        if (d->rc_pos > d->size)
            d->rc_pos = d->size; /* the stored "\0" will differ */
    } else if (rc && rc != MDB_NOTFOUND) {
        return trace_fail_mdb(rc, "meta");
    }
    return TRACE_OK;
}

/* ------------------------------------------------------------------ */
/* Alerts: consistency, as they are not derived from the journal alone  */

static int rule_known(const char *code)
{
    for (size_t i = 0; i < N_RULES; i++)
        if (strcmp(reconcile_rules[i].code, code) == 0)
            return 1;
    return 0;
}

static const char *opt_string(json_t *o, const char *name, int *bad)
{
    json_t *x = json_object_get(o, name);
    if (!x || json_is_null(x))
        return NULL;
    if (!json_is_string(x))
        *bad = 1;
    return json_string_value(x);
}

/* One stored alert, named by alertseq entry n: its JSON, id, rule and
 * evidence.  A note for the finding, or NULL if it holds. */
static const char *alert_problem(struct deep *d, sha256_stream *s,
                                 const MDB_val *id, const MDB_val *json,
                                 char *note, size_t cap)
{
    json_t *o = json_loadb(json->mv_data, json->mv_size, 0, NULL), *evs;
    trace_event_ref *refs = NULL;
    const char *rule, *permit, *party, *jid;
    char want[18];
    size_t n = 0;
    int bad = 0;

    note[0] = '\0';
    if (!o || !json_is_object(o)) {
        snprintf(note, cap, "inconsistent: the alert is not a JSON object");
        goto out;
    }
    jid = opt_string(o, "id", &bad);
    rule = opt_string(o, "rule", &bad);
    permit = opt_string(o, "permit", &bad);
    party = opt_string(o, "party", &bad);
    evs = json_object_get(o, "events");
    if (bad || !jid || !rule || !json_is_array(evs)) {
        snprintf(note, cap,
                 "inconsistent: the alert lacks its id, rule or "
                 "events");
        goto out;
    }
    if (strlen(jid) != id->mv_size || memcmp(jid, id->mv_data, id->mv_size)) {
        snprintf(note, cap, "inconsistent: the alert's JSON names id %.40s",
                 jid);
        goto out;
    }
    if (!rule_known(rule)) {
        snprintf(note, cap, "inconsistent: unknown rule %.40s", rule);
        goto out;
    }
    if (!(refs = calloc(json_array_size(evs) + 1, sizeof(*refs)))) {
        snprintf(note, cap, "out of memory");
        goto out;
    }
    for (n = 0; n < json_array_size(evs); n++) {
        json_t *ev = json_array_get(evs, n);
        uint8_t key[KEY_MAX];
        size_t klen;
        MDB_val k, v;
        refs[n].party = json_string_value(json_object_get(ev, "party"));
        refs[n].id = json_string_value(json_object_get(ev, "id"));
        if (!refs[n].party || !refs[n].id) {
            snprintf(note, cap,
                     "inconsistent: evidence %zu lacks its party "
                     "or id",
                     n + 1);
            goto out;
        }
        klen = compose_key(key, sizeof(key), refs[n].party, refs[n].id,
                           strlen(refs[n].id));
        k = (MDB_val){klen, key};
        if (!klen || mdb_get(d->stxn, d->sl.dbi_ids, &k, &v) != 0) {
            snprintf(note, cap,
                     "inconsistent: evidence %.80s/%.80s is not "
                     "in the journal",
                     refs[n].party, refs[n].id);
            goto out;
        }
    }
    alert_id_make(want, s, rule, refs, n, permit, party);
    if (strlen(want) != id->mv_size || memcmp(want, id->mv_data, id->mv_size))
        snprintf(note, cap,
                 "inconsistent: its rule and evidence give the id "
                 "%s",
                 want);
out:
    free(refs);
    json_decref(o);
    return note[0] ? note : NULL;
}

/* Every alertseq entry is the next number and names a stored alert that
 * holds; each is filed in the scratch alerts index, which is then
 * compared with the stored one (an alert no entry names is unexpected). */
static int check_alerts(struct deep *d)
{
    sha256_stream *s = sha256_stream_new();
    MDB_cursor *cur = NULL;
    MDB_val k, v, av;
    uint64_t n = 0;
    char note[300];
    int rc = TRACE_OK, mrc;

    if (!s)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((mrc = mdb_cursor_open(d->rtxn, d->l->dbi_alertseq, &cur))) {
        sha256_stream_free(s);
        return trace_fail_mdb(mrc, "alertseq");
    }
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        d->res->records++;
        if (k.mv_size != 8 || be64_get(k.mv_data) != ++n) {
            snprintf(note, sizeof(note),
                     "inconsistent: alertseq numbers the alerts 1, 2, 3 "
                     "...; %llu was expected here",
                     (unsigned long long)n);
            rc = finding(d, DB_ALERTSEQ, "inconsistent", &k, NULL, NULL, note);
            break;
        }
        mrc = mdb_get(d->rtxn, d->l->dbi_alerts, &v, &av);
        if (mrc == MDB_NOTFOUND) {
            rc = finding(d, DB_ALERTS, "inconsistent", &v, NULL, NULL,
                         "inconsistent: named by alertseq, not stored");
            break;
        }
        if (mrc) {
            rc = trace_fail_mdb(mrc, "alerts");
            break;
        }
        if (alert_problem(d, s, &v, &av, note, sizeof(note))) {
            rc = finding(d, DB_ALERTS, "inconsistent", &v, NULL, NULL, note);
            break;
        }
        mrc = mdb_put(d->stxn, d->sl.dbi_alerts, &v, &av, MDB_NOOVERWRITE);
        if (mrc == MDB_KEYEXIST) {
            rc = finding(d, DB_ALERTSEQ, "inconsistent", &k, NULL, NULL,
                         "inconsistent: names an alert named before");
            break;
        }
        if (mrc) {
            rc = trace_fail_mdb(mrc, "scratch");
            break;
        }
        mrc = 0;
    }
    mdb_cursor_close(cur);
    sha256_stream_free(s);
    if (rc == TRACE_OK && mrc && mrc != MDB_NOTFOUND)
        rc = trace_fail_mdb(mrc, "alertseq");
    return rc;
}

/* ------------------------------------------------------------------ */
/* Comparing                                                            */

/* Differences older versions made that are not damage:
 *   - parties: a state's seq was the first entry of the append's window
 *     rather than the party event's own entry; it is taken when it is
 *     the only difference, is not later than the event, and that entry
 *     was recorded in the same append (same recorded_us);
 *   - acks: before the party and note were kept the value was i64be at
 *     || status only. */
static int tolerated(struct deep *d, int db, const MDB_val *want,
                     const MDB_val *got)
{
    int ok = 0;

    if (db == DB_ACKS)
        return got->mv_size > 8 && got->mv_size < want->mv_size &&
               memcmp(got->mv_data, want->mv_data, got->mv_size) == 0 &&
               ((const uint8_t *)want->mv_data)[got->mv_size] == 0;
    if (db != DB_PARTIES)
        return 0;
    Trace__V1__PartyState *w =
        trace__v1__party_state__unpack(NULL, want->mv_size, want->mv_data);
    Trace__V1__PartyState *g =
        trace__v1__party_state__unpack(NULL, got->mv_size, got->mv_data);
    if (w && g && g->has_seq && w->has_seq && g->seq && g->seq < w->seq) {
        uint64_t gseq = g->seq;
        size_t len = trace__v1__party_state__get_packed_size(g);
        uint8_t *buf = malloc(len ? len : 1);
        g->seq = w->seq;
        if (buf && trace__v1__party_state__pack(g, buf) == want->mv_size &&
            memcmp(buf, want->mv_data, len) == 0) {
            Trace__V1__Entry *a, *b;
            arena_reset(d->tmp);
            ok = entry_get(d->rtxn, d->l, d->tmp, gseq, &a) == TRACE_OK &&
                 entry_get(d->rtxn, d->l, d->tmp, w->seq, &b) == TRACE_OK &&
                 a->recorded_us == b->recorded_us;
        }
        free(buf);
    }
    if (w)
        trace__v1__party_state__free_unpacked(w, NULL);
    if (g)
        trace__v1__party_state__free_unpacked(g, NULL);
    return ok;
}

/* Walks the stored index and its re-derived twin side by side. */
static int compare_db(struct deep *d, MDB_txn *stxn, int db)
{
    const struct cmp_db *c = &cmp_dbs[db];
    MDB_dbi want_dbi = *(const MDB_dbi *)((const char *)&d->sl + c->offset);
    MDB_dbi got_dbi = *(const MDB_dbi *)((const char *)d->l + c->offset);
    MDB_cursor *wc = NULL, *gc = NULL;
    MDB_val wk, wv, gk, gv;
    int wr, gr, rc = TRACE_OK;

    if ((wr = mdb_cursor_open(stxn, want_dbi, &wc)) ||
        (wr = mdb_cursor_open(d->rtxn, got_dbi, &gc))) {
        if (wc)
            mdb_cursor_close(wc);
        return trace_fail_mdb(wr, c->name);
    }
    wr = mdb_cursor_get(wc, &wk, &wv, MDB_FIRST);
    gr = mdb_cursor_get(gc, &gk, &gv, MDB_FIRST);
    while (rc == TRACE_OK && (wr == 0 || gr == 0)) {
        int kc;
        if ((wr && wr != MDB_NOTFOUND) || (gr && gr != MDB_NOTFOUND)) {
            rc = trace_fail_mdb(wr && wr != MDB_NOTFOUND ? wr : gr, c->name);
            break;
        }
        kc = wr ? 1 : gr ? -1 : lexcmp(&wk, &gk);
        if (kc < 0) {
            rc = finding(d, db, "missing", &wk, &wv, NULL, NULL);
        } else if (kc > 0) {
            d->res->records++;
            rc = finding(d, db, "unexpected", &gk, NULL, &gv, NULL);
        } else if (c->ident && lexcmp(&wv, &gv) != 0 &&
                   (wv.mv_size < c->ident || gv.mv_size < c->ident ||
                    memcmp(wv.mv_data, gv.mv_data, c->ident) != 0)) {
            /* sorted duplicates, not the same record: the first in
             * order is the one the other side lacks */
            d->res->records++;
            rc = lexcmp(&wv, &gv) < 0
                     ? finding(d, db, "missing", &wk, &wv, NULL, NULL)
                     : finding(d, db, "unexpected", &gk, NULL, &gv, NULL);
        } else {
            d->res->records++;
            if (lexcmp(&wv, &gv) != 0 && !tolerated(d, db, &wv, &gv))
                rc = finding(d, db, "differs", &gk, &wv, &gv, NULL);
            wr = mdb_cursor_get(wc, &wk, &wv, MDB_NEXT);
            gr = mdb_cursor_get(gc, &gk, &gv, MDB_NEXT);
        }
    }
    mdb_cursor_close(wc);
    mdb_cursor_close(gc);
    return rc;
}

static int compare_all(struct deep *d)
{
    MDB_txn *stxn;
    int rc;

    if ((rc = mdb_txn_begin(d->sl.env, NULL, MDB_RDONLY, &stxn)))
        return trace_fail_mdb(rc, "scratch");
    rc = TRACE_OK;
    for (int db = 0; db < N_DB && rc == TRACE_OK; db++)
        if (db != DB_ALERTSEQ && (db != DB_RCIDX || !d->rc_skip) &&
            (db != DB_RX || d->l->rx_ready) &&
            (db != DB_PRODUCTS || d->l->dbi_products) &&
            (db != DB_APPS || d->l->dbi_apps))
            rc = compare_db(d, stxn, db);
    mdb_txn_abort(stxn);
    return rc;
}

/* ------------------------------------------------------------------ */

static int deep_run(struct deep *d, const char *tmpdir)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = ledger_txn_begin(d->l, MDB_RDONLY, &d->rtxn))) {
        d->rtxn = NULL;
        return trace_fail_mdb(rc, "begin");
    }
    if ((rc = mdb_cursor_open(d->rtxn, d->l->dbi_journal, &cur)))
        return trace_fail_mdb(rc, "journal");
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
        d->size = be64_get(k.mv_data);
    mdb_cursor_close(cur);
    if ((rc = rcidx_position(d)) != TRACE_OK ||
        (rc = scratch_open(d, tmpdir)) != TRACE_OK)
        return rc;
    d->total = d->size + d->rc_pos;
    if (!(d->tmp = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = next_batch(d)) != TRACE_OK ||
        (rc = journal_pass(d, d->size, replay_entry)) != TRACE_OK)
        return rc;
    d->res->entries = d->done;
    if (d->rc_pos) {
        /* reconciliation's keys, and its position under "\0" */
        uint8_t pos[8];
        MDB_val pk = {1, "\0"}, pv = {8, pos};
        be64_put(pos, d->rc_pos);
        if ((rc = journal_pass(d, d->rc_pos, rcidx_entry)) != TRACE_OK)
            return rc;
        if ((rc = mdb_put(d->stxn, d->sl.dbi_rcidx, &pk, &pv, 0)))
            return trace_fail_mdb(rc, "scratch");
    }
    if ((rc = check_alerts(d)) != TRACE_OK)
        return rc;
    rc = mdb_txn_commit(d->stxn);
    d->stxn = NULL;
    if (rc)
        return rc == MDB_MAP_FULL
                   ? trace_fail(TRACE_EFULL, "verify --deep: the scratch "
                                             "environment is full")
                   : trace_fail_mdb(rc, "scratch");
    if ((rc = compare_all(d)) != TRACE_OK)
        return rc;
    if (d->progress)
        d->progress(d->total, d->total, d->ctx);
    return TRACE_OK;
}

int trace_ledger_verify_deep(trace_ledger *l, const char *tmpdir,
                             trace_verify_deep_result *res,
                             trace_progress_fn progress, int (*stop)(void *ctx),
                             void *ctx)
{
    struct deep d;
    int rc;

    memset(res, 0, sizeof(*res));
    memset(&d, 0, sizeof(d));
    d.l = l;
    d.res = res;
    d.progress = progress;
    d.stop = stop;
    d.ctx = ctx;
    trace_error_clear();
    rc = deep_run(&d, tmpdir);
    scratch_remove(&d);
    if (d.rtxn)
        ledger_txn_abort(l, d.rtxn);
    arena_free(d.tmp);
    strmap_free(d.tails);
    if (rc == TRACE_EVERIFY && !res->reason[0])
        snprintf(res->reason, sizeof(res->reason), "%s", trace_error_last());
    return rc;
}
