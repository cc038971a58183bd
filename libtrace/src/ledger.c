/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ledger.c - creating and opening a ledger folder.
 *
 * Layout of a ledger folder:
 *
 *   DIR/data.mdb, DIR/lock.mdb   the LMDB environment (named databases
 *                                listed in struct trace_ledger)
 *   DIR/pseudonym.key            32 random bytes keying patient pseudonyms
 *   DIR/keys/                    default key folder (tracectl)
 *
 * The "meta" database holds: "format" ("1"), "regulator" (root regulator
 * id), "tz" (minutes east of UTC, decimal), "catalog" (catalog JSON),
 * "regime" (CN, US, EU, UN ...) and "regimes" (the regime table JSON, of
 * which "regime" names one entry; both absent in ledgers made before
 * regimes existed, which are CN with the built-in table: regime.c),
 * "max_qty" (the per-event quantity ceilings of mass, volume and count in
 * base units, three decimals separated by spaces; absent in ledgers made
 * before it existed: TRACE_MAX_QTY_DEFAULT each) and "head" (u64be size ||
 * 32-byte leaf hash of the last entry), the last one rewritten in every
 * append transaction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"

/* Virtual; the file grows as used, and the map doubles when it fills.
 * TRACE_MAPSIZE (bytes) overrides it, for tests of the growth. */
#define MAP_SIZE (64ULL << 30)

void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

size_t compose_key(uint8_t *buf, size_t cap, const char *party,
                   const void *suffix, size_t suffix_len)
{
    size_t n = strlen(party);

    if (n + 1 + suffix_len > cap)
        return 0;
    memcpy(buf, party, n);
    buf[n] = '\0';
    memcpy(buf + n + 1, suffix, suffix_len);
    return n + 1 + suffix_len;
}

static int meta_get(MDB_txn *txn, trace_ledger *l, const char *key,
                    MDB_val *out)
{
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_get(txn, l->dbi_meta, &k, out);
    return rc ? trace_fail_mdb(rc, key) : TRACE_OK;
}

static int meta_put(MDB_txn *txn, trace_ledger *l, const char *key,
                    const void *data, size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)data};
    int rc = mdb_put(txn, l->dbi_meta, &k, &v, 0);
    return rc ? trace_fail_mdb(rc, key) : TRACE_OK;
}

/* Position lists (a key with many fixed-size, sorted values) are LMDB
 * DUPSORT|DUPFIXED databases: the key is stored once and the values pack
 * densely. */
#define DUPS (MDB_DUPSORT | MDB_DUPFIXED)

const struct ledger_db ledger_dbs[] = {
    {"meta", offsetof(trace_ledger, dbi_meta), 0},
    {"journal", offsetof(trace_ledger, dbi_journal), 0},
    {"ids", offsetof(trace_ledger, dbi_ids), 0},
    {"pchain", offsetof(trace_ledger, dbi_pchain), DUPS},
    {"heads", offsetof(trace_ledger, dbi_heads), 0},
    {"parties", offsetof(trace_ledger, dbi_parties), 0},
    {"keys", offsetof(trace_ledger, dbi_keys), 0},
    {"bal", offsetof(trace_ledger, dbi_bal), DUPS},
    {"lots", offsetof(trace_ledger, dbi_lots), DUPS},
    {"permits", offsetof(trace_ledger, dbi_permits), 0},
    {"pev", offsetof(trace_ledger, dbi_pev), DUPS},
    {"eff", offsetof(trace_ledger, dbi_eff), 0},
    {"alerts", offsetof(trace_ledger, dbi_alerts), 0},
    {"alertseq", offsetof(trace_ledger, dbi_alertseq), 0},
    {"acks", offsetof(trace_ledger, dbi_acks), 0},
    {"rcidx", offsetof(trace_ledger, dbi_rcidx), 0}, /* opened on its own */
};
const size_t ledger_n_dbs = sizeof(ledger_dbs) / sizeof(ledger_dbs[0]);

/* Added after the first ledgers were made: created when first opened
 * (or, opened read-only, by a short write transaction). */
static const struct {
    const char *name;
    size_t offset;
    unsigned flags;
} late[] = {
    {"rcidx", offsetof(trace_ledger, dbi_rcidx), 0},
    {"tree", offsetof(trace_ledger, dbi_tree), 0},
    {"ckpt", offsetof(trace_ledger, dbi_ckpt), 0},
    {"products", offsetof(trace_ledger, dbi_products), 0},
    {"apps", offsetof(trace_ledger, dbi_apps), DUPS},
};

static int secret_path(char *buf, size_t cap, const char *dir)
{
    if ((size_t)snprintf(buf, cap, "%s/pseudonym.key", dir) >= cap)
        return trace_fail(TRACE_EINVAL, "ledger path too long");
    return TRACE_OK;
}

static int read_secret(trace_ledger *l)
{
    char path[4096];
    int fd, rc;
    ssize_t n;

    if ((rc = secret_path(path, sizeof(path), l->dir)) != TRACE_OK)
        return rc;
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return trace_fail(TRACE_EUNAVAIL, "%s: %s", path, errno_text(errno));
    n = read(fd, l->secret, sizeof(l->secret));
    close(fd);
    if (n != (ssize_t)sizeof(l->secret))
        return trace_fail(TRACE_EUNAVAIL, "%s: short or unreadable", path);
    return TRACE_OK;
}

static int write_secret(const char *dir, uint8_t secret[32])
{
    char path[4096];
    int fd, rc, ok;

    if ((rc = secret_path(path, sizeof(path), dir)) != TRACE_OK)
        return rc;
    if ((rc = random_bytes(secret, 32)) != TRACE_OK)
        return rc;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return trace_fail(errno == EEXIST ? TRACE_EEXIST : TRACE_EIO, "%s: %s",
                          path, errno_text(errno));
    ok = write(fd, secret, 32) == 32 && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path);
        return trace_fail(TRACE_EIO, "%s: cannot write", path);
    }
    return TRACE_OK;
}

static size_t map_size(void)
{
    const char *s = getenv("TRACE_MAPSIZE");
    unsigned long long v = s ? strtoull(s, NULL, 10) : 0;
    return v >= (1u << 20) ? (size_t)v : (size_t)MAP_SIZE;
}

/* Transactions ------------------------------------------------------------
 *
 * LMDB lets the map grow (mdb_env_set_mapsize) only while no transaction
 * of the process is open: the map may move, and a reader still using the
 * old one crashes or reads freed memory.  Readers run beside appends (a
 * daemon serves reads on worker threads while its writer appends), so
 * every top-level transaction of a ledger is begun and ended here, and
 * counted in txn_open while it is open; the map grows only while that
 * count is 0 and with new transactions held back, after the failed write
 * transaction was aborted.  In effect a reader-writer lock whose readers
 * are transactions:
 *
 *    begin:  wait while the map grows or a grower waits (unless this
 *            thread holds a transaction already), then txn_open++
 *    end:    txn_open--, wake growers at 0
 *    grow:   txn_growers++, wait until txn_open == 0 and nobody grows,
 *            txn_growers--, growing = 1 ... grow ... growing = 0, wake all
 *
 * The rules that keep it free of deadlocks and starvation:
 *
 *  - A thread may hold several transactions at once (a query's read,
 *    then an append in its callback).  A thread that holds one never
 *    waits to begin another
 *    (txns_held counts them per thread), so it never waits for a grower
 *    that waits for it.  (A glibc rwlock would give this by preferring
 *    readers, but then readers that overlap without a pause, as a busy
 *    daemon's workers do, keep a grower out for ever.)
 *  - Other threads wait while a grower waits: a grower waits only for
 *    the transactions open when it came, so a long read (export,
 *    verify) delays it, but later reads do not.
 *  - A thread grows the map only while it holds no transaction (of any
 *    ledger).  Otherwise the growth is refused and the append reports
 *    the map full.
 *  - A thread that holds a transaction never waits for another thread
 *    that may grow the map (a daemon's writer): it ends its transactions
 *    first, or each would wait for the other.
 *  - Nested transactions need no count of their own: the parent holds
 *    one.
 */

static _Thread_local unsigned txns_held;

static void txn_enter(trace_ledger *l)
{
    pthread_mutex_lock(&l->txn_mu);
    while (txns_held == 0 && (l->txn_growing || l->txn_growers))
        pthread_cond_wait(&l->txn_cv, &l->txn_mu);
    l->txn_open++;
    pthread_mutex_unlock(&l->txn_mu);
    txns_held++;
}

static void txn_leave(trace_ledger *l)
{
    txns_held--;
    pthread_mutex_lock(&l->txn_mu);
    if (--l->txn_open == 0)
        pthread_cond_broadcast(&l->txn_cv);
    pthread_mutex_unlock(&l->txn_mu);
}

/* Waits until no transaction is open, then holds new ones back; refused
 * if this thread holds a transaction (it would wait for itself). */
static int grow_enter(trace_ledger *l)
{
    if (txns_held)
        return trace_fail(TRACE_EFULL,
                          "the ledger map is full and cannot grow while "
                          "this thread holds a transaction");
    pthread_mutex_lock(&l->txn_mu);
    l->txn_growers++;
    while (l->txn_open || l->txn_growing)
        pthread_cond_wait(&l->txn_cv, &l->txn_mu);
    l->txn_growers--;
    l->txn_growing = 1;
    pthread_mutex_unlock(&l->txn_mu);
    return TRACE_OK;
}

static void grow_leave(trace_ledger *l)
{
    pthread_mutex_lock(&l->txn_mu);
    l->txn_growing = 0;
    pthread_cond_broadcast(&l->txn_cv);
    pthread_mutex_unlock(&l->txn_mu);
}

/* One writer per ledger folder: a process that writes holds an fcntl
 * lock on DIR/writer.lock (taken at its first write transaction, or by
 * trace_ledger_claim_writer, kept until the ledger is closed).  LMDB
 * would serialise two writers, but a daemon keeps what it serves (heads
 * it published, tickets, sessions, reconciliation state) on the
 * assumption that it alone appends; a second traced or an embedded
 * writer beside it is refused, naming the process that writes.  Readers
 * take no lock. */
static int writer_lock(trace_ledger *l)
{
    char path[4096], pid[32];
    struct flock fl;
    int fd, n;

    if (l->writer_fd >= 0)
        return 0;
    snprintf(path, sizeof(path), "%s/writer.lock", l->dir);
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        trace_fail(TRACE_EUNAVAIL, "cannot open %s: %s", path,
                   errno_text(errno));
        return LEDGER_ELOCKED;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if ((e == EACCES || e == EAGAIN) && fcntl(fd, F_GETLK, &fl) == 0 &&
            fl.l_type != F_UNLCK)
            trace_fail(TRACE_EUNAVAIL,
                       "the ledger in %s is being written by process %ld "
                       "(traced, or another tracectl): send writes through "
                       "it (tracectl --connect URL), or stop it first",
                       l->dir, (long)fl.l_pid);
        else
            trace_fail(TRACE_EUNAVAIL, "cannot lock %s: %s", path,
                       errno_text(e));
        close(fd);
        return LEDGER_ELOCKED;
    }
    /* for people looking: which process writes */
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the lock holds without the note */
    }
    l->writer_fd = fd;
    return 0;
}

int trace_ledger_claim_writer(trace_ledger *l)
{
    int rc;

    pthread_mutex_lock(&l->txn_mu);
    rc = writer_lock(l);
    pthread_mutex_unlock(&l->txn_mu);
    return rc == 0 ? TRACE_OK : TRACE_EUNAVAIL;
}

/* A write transaction this thread lends to its own reads (ledger_lend). */
static __thread struct {
    const trace_ledger *l;
    MDB_txn *txn;
} lent;

void ledger_lend(const trace_ledger *l, MDB_txn *txn)
{
    lent.l = txn ? l : NULL;
    lent.txn = txn;
}

int ledger_txn_begin(trace_ledger *l, unsigned flags, MDB_txn **out)
{
    int rc;

    if ((flags & MDB_RDONLY) && lent.txn && lent.l == l) {
        *out = lent.txn;
        return 0;
    }
    if (!(flags & MDB_RDONLY)) {
        pthread_mutex_lock(&l->txn_mu);
        rc = writer_lock(l);
        pthread_mutex_unlock(&l->txn_mu);
        if (rc) {
            *out = NULL;
            return rc;
        }
        if (!l->rx_ready && !l->rx_failed)
            ledger_rx_ensure(l, 0); /* before this process's first write */
    }
    txn_enter(l);
    if (!(flags & MDB_RDONLY) && l->late_missing && txns_held == 1) {
        /* the databases added later, missing at open: made first */
        MDB_txn *t;
        if ((rc = mdb_txn_begin(l->env, NULL, 0, &t)) == 0) {
            for (size_t i = 0; rc == 0 && i < sizeof(late) / sizeof(*late); i++)
                rc = mdb_dbi_open(t, late[i].name, late[i].flags | MDB_CREATE,
                                  (MDB_dbi *)((char *)l + late[i].offset));
            if (rc == 0)
                rc = mdb_txn_commit(t);
            else
                mdb_txn_abort(t);
            if (rc == 0)
                l->late_missing = 0;
        }
        if (rc) {
            *out = NULL;
            txn_leave(l);
            return rc;
        }
    }
    rc = mdb_txn_begin(l->env, NULL, flags, out);
    if (rc == MDB_MAP_RESIZED && txns_held == 1) {
        /* another process grew the map: take its size, then begin */
        txn_leave(l);
        grow_enter(l); /* holding nothing now: cannot be refused */
        rc = mdb_env_set_mapsize(l->env, 0);
        grow_leave(l);
        txn_enter(l);
        if (rc == 0)
            rc = mdb_txn_begin(l->env, NULL, flags, out);
    }
    if (rc) {
        *out = NULL;
        txn_leave(l);
    }
    return rc;
}

int ledger_txn_commit(trace_ledger *l, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);

    txn_leave(l);
    return rc;
}

void ledger_txn_abort(trace_ledger *l, MDB_txn *txn)
{
    if (!txn || txn == lent.txn)
        return; /* lent: its owner ends it */
    mdb_txn_abort(txn);
    txn_leave(l);
}

int ledger_ensure_room(trace_ledger *l, uint64_t bytes)
{
    MDB_envinfo info;
    MDB_stat st;
    uint64_t used, need = bytes + (64u << 20);
    int rc;

    if ((rc = grow_enter(l)) != TRACE_OK)
        return rc;
    mdb_env_info(l->env, &info);
    mdb_env_stat(l->env, &st);
    used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    rc = info.me_mapsize >= used + need
             ? 0
             : mdb_env_set_mapsize(l->env, (size_t)(used + need * 2));
    grow_leave(l);
    return rc ? trace_fail_mdb(rc, "growing the map") : TRACE_OK;
}

int ledger_grow_map(trace_ledger *l)
{
    MDB_envinfo info;
    int rc;

    if ((rc = grow_enter(l)) != TRACE_OK)
        return rc;
    mdb_env_info(l->env, &info);
    rc = mdb_env_set_mapsize(l->env, info.me_mapsize * 2);
    grow_leave(l);
    return rc ? trace_fail_mdb(rc, "growing the map") : TRACE_OK;
}

/* The rx index (state.c) of a ledger written before it existed.
 *
 * It is built from the journal once, by the first process that opens
 * the ledger able to write (it takes the writer lock for the build,
 * and gives it back at once if it held it not before) or, if another
 * process was writing when it opened, before its own first write (the
 * writer lock held: no other process writes in between).  Until then
 * l->rx_ready is 0: appends file nothing in it, and the check of a
 * dispensing (check.c) scans the journal instead, which finds the same.
 * As the index exists only once it was built whole, and every process
 * that writes while it exists keeps it, it is complete whenever it
 * exists.  A build that fails (a damaged journal, a full disk) leaves
 * no index behind and is not tried again by this process, so a damaged
 * ledger still opens for verification. */
void ledger_rx_ensure(trace_ledger *l, int at_open)
{
    static _Thread_local int busy;
    int had_lock = l->writer_fd >= 0, rc;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;

    if (l->rx_ready || l->rx_failed || busy)
        return;
    busy = 1;
    if ((rc = ledger_txn_begin(l, 0, &txn)) != 0)
        goto out; /* another process writes: it has to wait */
    rc = mdb_dbi_open(txn, "rx", DUPS, &dbi);
    if (rc == MDB_NOTFOUND &&
        (rc = mdb_dbi_open(txn, "rx", DUPS | MDB_CREATE, &dbi)) == 0 &&
        rx_index_build(txn, l, dbi) != TRACE_OK)
        rc = -1;
    if (rc == 0) {
        rc = ledger_txn_commit(l, txn);
        txn = NULL;
    }
    if (rc == 0) {
        l->dbi_rx = dbi;
        l->rx_ready = 1;
    } else {
        l->rx_failed = 1;
    }
out:
    if (txn)
        ledger_txn_abort(l, txn);
    if (at_open && !had_lock && l->writer_fd >= 0) {
        pthread_mutex_lock(&l->txn_mu);
        close(l->writer_fd);
        l->writer_fd = -1;
        pthread_mutex_unlock(&l->txn_mu);
    }
    trace_error_clear();
    busy = 0;
}

static int env_open(trace_ledger **out, const char *dir, int create)
{
    trace_ledger *l = calloc(1, sizeof(*l));
    MDB_txn *txn = NULL;
    int rc, dead;

    if (!l || !(l->dir = strdup(dir))) {
        free(l);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    l->writer_fd = -1;
    if (pthread_mutex_init(&l->txn_mu, NULL) != 0) {
        free(l->dir);
        free(l);
        return trace_fail(TRACE_ENOMEM, "cannot make the ledger's lock");
    }
    if (pthread_cond_init(&l->txn_cv, NULL) != 0) {
        pthread_mutex_destroy(&l->txn_mu);
        free(l->dir);
        free(l);
        return trace_fail(TRACE_ENOMEM, "cannot make the ledger's lock");
    }
    l->has_txn_lock = 1;
    l->tz_offset_min = 480;
    for (int d = 0; d < N_DIMS; d++)
        l->max_qty[d] = TRACE_MAX_QTY_DEFAULT;
    if ((rc = mdb_env_create(&l->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(l->env, 32)) != 0 ||
        (rc = mdb_env_set_mapsize(l->env, map_size())) != 0 ||
        (rc = mdb_env_set_maxreaders(l->env, 256)) != 0 ||
        (rc = mdb_env_open(l->env, dir, MDB_NOTLS, 0600)) != 0) {
        rc = trace_fail_mdb(rc, dir);
        goto fail;
    }
    mdb_reader_check(l->env, &dead);
    if ((rc = ledger_txn_begin(l, create ? 0 : MDB_RDONLY, &txn))) {
        rc = trace_fail_mdb(rc, "begin");
        goto fail;
    }
    for (size_t i = 0; i + 1 < ledger_n_dbs; i++) { /* but rcidx */
        MDB_dbi *dbi = (MDB_dbi *)((char *)l + ledger_dbs[i].offset);
        rc = mdb_dbi_open(txn, ledger_dbs[i].name,
                          ledger_dbs[i].flags | (create ? MDB_CREATE : 0), dbi);
        if (rc == MDB_NOTFOUND && i > 0) /* meta is there: damage */
            rc = trace_fail(TRACE_EVERIFY,
                            "%s: the ledger is damaged: its %s database is "
                            "missing",
                            dir, ledger_dbs[i].name);
        else if (rc)
            rc = rc == MDB_NOTFOUND
                     ? trace_fail(TRACE_ENOTFOUND, "%s holds no ledger", dir)
                     : trace_fail_mdb(rc, ledger_dbs[i].name);
        if (rc)
            goto fail;
    }
    /* Added after the first ledgers were made: created at the first open
     * that may write; while another process holds the writer lock they
     * stay missing here (late_missing) and this process's first write
     * transaction makes them (ledger_txn_begin). */
    l->late_missing = 0;
    for (size_t i = 0; i < sizeof(late) / sizeof(*late); i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)l + late[i].offset);
        rc = mdb_dbi_open(txn, late[i].name,
                          late[i].flags | (create ? MDB_CREATE : 0), dbi);
        if (rc == MDB_NOTFOUND) {
            l->late_missing = 1;
            *dbi = 0;
        } else if (rc) {
            rc = trace_fail_mdb(rc, late[i].name);
            goto fail;
        }
    }
    /* Added later still, and built from the journal (ledger_rx_ensure). */
    rc = mdb_dbi_open(txn, "rx", DUPS | (create ? MDB_CREATE : 0), &l->dbi_rx);
    if (rc == 0)
        l->rx_ready = 1;
    else if (rc != MDB_NOTFOUND) {
        rc = trace_fail_mdb(rc, "rx");
        goto fail;
    }
    /* Commit even when read-only: handles opened in an aborted
     * transaction are closed with it. */
    rc = ledger_txn_commit(l, txn);
    txn = NULL;
    if (rc) {
        rc = trace_fail_mdb(rc, "commit");
        goto fail;
    }
    if (l->late_missing) {
        MDB_txn *w = NULL;
        /* a write transaction makes them, unless another process writes */
        if ((rc = ledger_txn_begin(l, 0, &w)) == 0)
            ledger_txn_commit(l, w);
        else if (rc != LEDGER_ELOCKED) {
            rc = trace_fail_mdb(rc, "begin");
            goto fail;
        }
    }
    if (!l->rx_ready)
        ledger_rx_ensure(l, 1);
    *out = l;
    return TRACE_OK;
fail:
    if (txn)
        ledger_txn_abort(l, txn);
    trace_ledger_close(l);
    return rc;
}

/* "max_qty": three decimals; anything else is a damaged ledger. */
static int max_qty_decode(trace_ledger *l, const MDB_val *v)
{
    char buf[80], *p = buf, *end;
    int64_t m[N_DIMS];

    if (v->mv_size >= sizeof(buf))
        return trace_fail(TRACE_EVERIFY, "meta max_qty is damaged");
    memcpy(buf, v->mv_data, v->mv_size);
    buf[v->mv_size] = '\0';
    for (int d = 0; d < N_DIMS; d++) {
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x <= 0)
            return trace_fail(TRACE_EVERIFY, "meta max_qty is damaged");
        m[d] = x;
        p = end;
    }
    if (*p)
        return trace_fail(TRACE_EVERIFY, "meta max_qty is damaged");
    memcpy(l->max_qty, m, sizeof(m));
    return TRACE_OK;
}

static int max_qty_put(MDB_txn *txn, trace_ledger *l, const int64_t *m)
{
    char buf[80];
    int n = snprintf(buf, sizeof(buf), "%lld %lld %lld", (long long)m[0],
                     (long long)m[1], (long long)m[2]);
    return meta_put(txn, l, "max_qty", buf, (size_t)n);
}

/* Applies "QTY UNIT" specs to a copy of the ceilings. */
static int max_qty_apply(int64_t *m, const char *const *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dimension dim;
        int64_t amount;
        int rc = qty_spec_parse(specs[i], &dim, &amount);
        if (rc != TRACE_OK)
            return rc;
        m[dim] = amount;
    }
    return TRACE_OK;
}

static int load_meta(trace_ledger *l)
{
    MDB_txn *txn;
    MDB_val v;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = meta_get(txn, l, "format", &v)) != TRACE_OK) {
        rc = trace_fail(TRACE_ENOTFOUND, "%s holds no ledger", l->dir);
        goto out;
    }
    if (v.mv_size != 1 || *(char *)v.mv_data != '1') {
        rc =
            trace_fail(TRACE_EUNAVAIL, "%s: unsupported ledger format", l->dir);
        goto out;
    }
    if ((rc = meta_get(txn, l, "regulator", &v)) != TRACE_OK)
        goto out;
    if (!(l->regulator = strndup(v.mv_data, v.mv_size))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = meta_get(txn, l, "tz", &v)) != TRACE_OK)
        goto out;
    char tz[16] = "";
    memcpy(tz, v.mv_data, v.mv_size < 15 ? v.mv_size : 15);
    l->tz_offset_min = atoi(tz);
    {
        MDB_val mk = {7, "max_qty"};
        int mrc = mdb_get(txn, l->dbi_meta, &mk, &v);
        if (mrc == 0 && (rc = max_qty_decode(l, &v)) != TRACE_OK)
            goto out;
        if (mrc && mrc != MDB_NOTFOUND) {
            rc = trace_fail_mdb(mrc, "max_qty");
            goto out;
        }
    }
    if ((rc = meta_get(txn, l, "catalog", &v)) != TRACE_OK)
        goto out;
    if ((rc = catalog_parse(&l->cat, v.mv_data, v.mv_size)) != TRACE_OK)
        goto out;
    {
        /* a ledger made before regimes existed: CN, built-in table */
        MDB_val rk = {6, "regime"}, tk = {7, "regimes"}, t;
        char code[32] = "CN";
        int mrc = mdb_get(txn, l->dbi_meta, &rk, &v);
        if (mrc == 0) {
            if (v.mv_size == 0 || v.mv_size >= sizeof(code)) {
                rc = trace_fail(TRACE_EVERIFY, "meta regime is damaged");
                goto out;
            }
            memcpy(code, v.mv_data, v.mv_size);
            code[v.mv_size] = '\0';
            mrc = mdb_get(txn, l->dbi_meta, &tk, &t);
            if (mrc) {
                rc = mrc == MDB_NOTFOUND
                         ? trace_fail(TRACE_EVERIFY, "meta regimes is missing")
                         : trace_fail_mdb(mrc, "regimes");
                goto out;
            }
            rc = regime_parse(&l->regime, t.mv_data, t.mv_size, code);
        } else if (mrc == MDB_NOTFOUND) {
            rc = regime_parse(&l->regime, (const char *)trace_builtin_regimes,
                              trace_builtin_regimes_len, code);
        } else {
            rc = trace_fail_mdb(mrc, "regime");
        }
    }
out:
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_ledger_open(trace_ledger **out, const char *dir)
{
    trace_ledger *l;
    struct stat st;
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &st) != 0)
        return trace_fail(TRACE_ENOTFOUND,
                          "%s holds no ledger (run `tracectl --data %s init` "
                          "first)",
                          dir, dir);
    if ((rc = env_open(&l, dir, 0)) != TRACE_OK)
        return rc;
    if ((rc = load_meta(l)) != TRACE_OK || (rc = read_secret(l)) != TRACE_OK) {
        trace_ledger_close(l);
        return rc;
    }
    *out = l;
    return TRACE_OK;
}

int trace_ledger_init(trace_ledger **out, const char *dir,
                      const trace_key *regulator_key,
                      const trace_init_opts *opts)
{
    trace_init_opts def = TRACE_INIT_OPTS_INIT;
    const char *reg, *cat_json, *reg_code = "CN";
    const char *reg_json = (const char *)trace_builtin_regimes;
    size_t cat_len, reg_len = trace_builtin_regimes_len;
    char path[4096], tz[16];
    trace_ledger *l = NULL;
    MDB_txn *txn = NULL;
    struct stat st;
    int rc;

    if (!opts)
        opts = &def;
    reg = opts->regulator ? opts->regulator : "REGULATOR";
    cat_json = opts->catalog_json ? opts->catalog_json
                                  : (const char *)trace_builtin_catalog;
    cat_len =
        opts->catalog_json ? opts->catalog_len : trace_builtin_catalog_len;
    if (opts->version >= 3 && opts->regime)
        reg_code = opts->regime;
    if (opts->version >= 3 && opts->regimes_json) {
        reg_json = opts->regimes_json;
        reg_len = opts->regimes_len;
    }
    if (!trace_party_id_valid(reg))
        return trace_fail(TRACE_EINVAL, "invalid regulator id \"%.64s\"", reg);
    {
        /* refused before anything is made: an unknown regime or a
         * malformed table leaves no folder content behind */
        regime *probe = NULL;
        if ((rc = regime_parse(&probe, reg_json, reg_len, reg_code)) !=
            TRACE_OK)
            return rc;
        regime_free(probe);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return trace_fail(TRACE_EIO, "cannot create %s: %s", dir,
                          errno_text(errno));
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &st) == 0)
        return trace_fail(TRACE_EEXIST, "%s already holds a ledger", dir);
    if ((rc = env_open(&l, dir, 1)) != TRACE_OK)
        return rc;
    if ((rc = catalog_parse(&l->cat, cat_json, cat_len)) != TRACE_OK)
        goto fail;
    if ((rc = regime_parse(&l->regime, reg_json, reg_len, reg_code)) !=
        TRACE_OK)
        goto fail;
    if (!(l->regulator = strdup(reg))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto fail;
    }
    if (opts->has_tz)
        l->tz_offset_min = opts->tz_offset_min;
    if (opts->version >= 2 && (rc = max_qty_apply(l->max_qty, opts->max_qty,
                                                  opts->n_max_qty)) != TRACE_OK)
        goto fail;
    if ((rc = write_secret(dir, l->secret)) != TRACE_OK)
        goto fail;
    if ((rc = ledger_txn_begin(l, 0, &txn))) {
        rc = trace_fail_mdb(rc, "begin");
        goto fail;
    }
    snprintf(tz, sizeof(tz), "%d", l->tz_offset_min);
    if ((rc = meta_put(txn, l, "format", "1", 1)) ||
        (rc = meta_put(txn, l, "regulator", reg, strlen(reg))) ||
        (rc = meta_put(txn, l, "tz", tz, strlen(tz))) ||
        (rc = meta_put(txn, l, "catalog", cat_json, cat_len)) ||
        (rc = meta_put(txn, l, "regime", reg_code, strlen(reg_code))) ||
        (rc = meta_put(txn, l, "regimes", reg_json, reg_len)) ||
        (rc = max_qty_put(txn, l, l->max_qty)) ||
        (rc = ledger_id_create(txn, l)))
        goto fail;
    if ((rc = ledger_txn_commit(l, txn))) {
        txn = NULL;
        rc = trace_fail_mdb(rc, "commit");
        goto fail;
    }
    txn = NULL;
    if ((rc = ledger_genesis(l, regulator_key)) != TRACE_OK)
        goto fail;
    *out = l;
    return TRACE_OK;
fail:
    if (txn)
        ledger_txn_abort(l, txn);
    trace_ledger_close(l);
    /* Leave no half-made ledger behind. */
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/pseudonym.key", dir);
    if (rc != TRACE_EEXIST)
        unlink(path);
    return rc;
}

void trace_ledger_close(trace_ledger *l)
{
    if (!l)
        return;
    if (l->env)
        mdb_env_close(l->env);
    if (l->writer_fd >= 0)
        close(l->writer_fd); /* and the lock with it */
    if (l->has_txn_lock) {
        pthread_cond_destroy(&l->txn_cv);
        pthread_mutex_destroy(&l->txn_mu);
    }
    catalog_free(l->cat);
    regime_free(l->regime);
    trace_key_free(l->ckpt_key);
    free(l->regulator);
    free(l->dir);
    memset(l->secret, 0, sizeof(l->secret));
    free(l);
}

/* Copies the file src to dst (new, mode 0600) and syncs it.  0 when src
 * does not exist. */
static int copy_private(const char *src, const char *dst)
{
    char buf[65536];
    int in, out, rc = TRACE_OK;
    ssize_t n;

    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? TRACE_OK
                               : trace_fail(TRACE_EIO, "cannot read %s: %s",
                                            src, errno_text(errno));
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        close(in);
        return trace_fail(TRACE_EIO, "cannot create %s: %s", dst,
                          errno_text(errno));
    }
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (n < 0 || fsync(out) != 0)
        rc = trace_fail(TRACE_EIO, "cannot copy %s to %s: %s", src, dst,
                        errno_text(errno));
    close(in);
    if (close(out) != 0 && rc == TRACE_OK)
        rc = trace_fail(TRACE_EIO, "cannot write %s", dst);
    return rc;
}

/* The key folder and the daemon's key go with a backup, private to the
 * owner (0700 folder, 0600 files): a restored copy can record and serve. */
static int backup_keys(const trace_ledger *l, const char *dest)
{
    static const char *const own[] = {"traced.key", "traced.pub"};
    char src[4096], dst[4096];
    struct dirent *e;
    DIR *d;
    int rc;

    for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++) {
        snprintf(src, sizeof(src), "%s/%s", l->dir, own[i]);
        snprintf(dst, sizeof(dst), "%s/%s", dest, own[i]);
        if ((rc = copy_private(src, dst)) != TRACE_OK)
            return rc;
    }
    snprintf(src, sizeof(src), "%s/keys", l->dir);
    if (!(d = opendir(src)))
        return TRACE_OK; /* keys kept elsewhere (--keys) */
    snprintf(dst, sizeof(dst), "%s/keys", dest);
    if (mkdir(dst, 0700) != 0 && errno != EEXIST) {
        closedir(d);
        return trace_fail(TRACE_EIO, "cannot create %s: %s", dst,
                          errno_text(errno));
    }
    rc = TRACE_OK;
    while (rc == TRACE_OK && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' ||
            !(n > 4 && (strcmp(e->d_name + n - 4, ".key") == 0 ||
                        strcmp(e->d_name + n - 4, ".pub") == 0)))
            continue;
        snprintf(src, sizeof(src), "%s/keys/%s", l->dir, e->d_name);
        snprintf(dst, sizeof(dst), "%s/keys/%s", dest, e->d_name);
        rc = copy_private(src, dst);
    }
    closedir(d);
    return rc;
}

int trace_ledger_backup(trace_ledger *l, const char *dest)
{
    char path[4096];
    struct stat st;
    int rc, fd;

    if (mkdir(dest, 0700) != 0 && errno != EEXIST)
        return trace_fail(TRACE_EIO, "cannot create %s: %s", dest,
                          errno_text(errno));
    snprintf(path, sizeof(path), "%s/data.mdb", dest);
    if (stat(path, &st) == 0)
        return trace_fail(TRACE_EEXIST, "%s already holds a ledger", dest);
    /* the copy reads in a transaction of its own: count it */
    txn_enter(l);
    rc = mdb_env_copy2(l->env, dest, MDB_CP_COMPACT);
    txn_leave(l);
    if (rc) {
        unlink(path);
        return trace_fail_mdb(rc, dest);
    }
    /* the ledger is as private as its folder */
    if (chmod(path, 0600) != 0)
        return trace_fail(TRACE_EIO, "%s: %s", path, errno_text(errno));
    snprintf(path, sizeof(path), "%s/pseudonym.key", dest);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 ||
        write(fd, l->secret, sizeof(l->secret)) != (ssize_t)sizeof(l->secret) ||
        fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return trace_fail(TRACE_EIO, "%s: cannot write", path);
    }
    close(fd);
    return backup_keys(l, dest);
}

int trace_ledger_parse_time(const trace_ledger *l, const char *text,
                            int end_of_day, int64_t *out_us)
{
    return trace_time_parse(out_us, text, l->tz_offset_min, end_of_day);
}

const char *trace_ledger_regulator(const trace_ledger *l)
{
    return l->regulator;
}

int ledger_head_get(MDB_txn *txn, trace_ledger *l, uint64_t *size,
                    uint8_t hash[32])
{
    MDB_val v;
    MDB_val k = {4, "head"};
    int rc = mdb_get(txn, l->dbi_meta, &k, &v);

    if (rc == MDB_NOTFOUND) {
        *size = 0;
        memset(hash, 0, 32);
        return TRACE_OK;
    }
    if (rc)
        return trace_fail_mdb(rc, "head");
    if (v.mv_size != 40)
        return trace_fail(TRACE_EVERIFY, "stored head is damaged");
    *size = be64_get(v.mv_data);
    memcpy(hash, (uint8_t *)v.mv_data + 8, 32);
    return TRACE_OK;
}

int ledger_head_put(MDB_txn *txn, trace_ledger *l, uint64_t size,
                    const uint8_t hash[32])
{
    uint8_t buf[40];
    be64_put(buf, size);
    memcpy(buf + 8, hash, 32);
    return meta_put(txn, l, "head", buf, sizeof(buf));
}

int trace_ledger_head(trace_ledger *l, uint64_t *size, uint8_t hash[32])
{
    MDB_txn *txn;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = ledger_head_get(txn, l, size, hash);
    ledger_txn_abort(l, txn);
    return rc;
}

int trace_ledger_reserve(trace_ledger *l, uint64_t bytes)
{
    return ledger_ensure_room(l, bytes);
}

/* Resident pages of the map --------------------------------------------
 *
 * Pages of data.mdb that a process has read through LMDB's map count in
 * its resident set although they belong to the page cache, which the
 * kernel may reclaim and other processes share: a daemon that has read
 * every page of a large ledger shows the whole file as its own memory.
 * trace_ledger_trim() drops this process's mappings of those pages
 * (madvise MADV_DONTNEED on the read-only shared mapping: the page cache
 * keeps them, and a later read maps them again with a minor fault) once
 * more than `limit` bytes of file pages are resident.  The map cannot
 * move meanwhile: a read transaction is held while it runs (the map
 * grows only while none is open). */

/* Resident file-backed bytes of this process (statm's "shared"), or 0. */
static uint64_t resident_file_bytes(void)
{
    unsigned long size, resident, shared;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%lu %lu %lu", &size, &resident, &shared);
    fclose(f);
    return n == 3 ? (uint64_t)shared * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

int trace_ledger_trim(trace_ledger *l, uint64_t limit, int *released)
{
    char path[4096], line[4096 + 256];
    struct stat st;
    MDB_txn *txn;
    FILE *f;
    int rc;

    *released = 0;
    if (resident_file_bytes() <= limit)
        return TRACE_OK;
    snprintf(path, sizeof(path), "%s/data.mdb", l->dir);
    if (stat(path, &st) != 0)
        return TRACE_OK;
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((f = fopen("/proc/self/maps", "r")) != NULL) {
        while (fgets(line, sizeof(line), f)) {
            unsigned long lo, hi, ino;
            unsigned maj, mnr;
            char perms[8];
            if (sscanf(line, "%lx-%lx %7s %*x %x:%x %lu", &lo, &hi, perms, &maj,
                       &mnr, &ino) != 6 ||
                ino != (unsigned long)st.st_ino ||
                makedev(maj, mnr) != st.st_dev || perms[1] == 'w')
                continue;
            /* LMDB's map of data.mdb (read-only: writes go by pwrite) */
            if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
                *released = 1;
        }
        fclose(f);
    }
    ledger_txn_abort(l, txn);
    return TRACE_OK;
}

void trace_ledger_set_map_limit(trace_ledger *l, uint64_t limit)
{
    l->map_limit = limit;
}

void trace_ledger_trim_due(trace_ledger *l)
{
    int64_t now, last;
    int released;

    if (!l->map_limit)
        return;
    now = time_now_us();
    last = atomic_load(&l->map_checked_us);
    if (now - last < 50000 ||
        !atomic_compare_exchange_strong(&l->map_checked_us, &last, now))
        return;
    (void)trace_ledger_trim(l, l->map_limit, &released);
}

void ledger_trim_over(trace_ledger *l)
{
    int released;

    if (l->map_limit && resident_file_bytes() > l->map_limit)
        (void)trace_ledger_trim(l, l->map_limit, &released);
}

int ledger_commit_failed(const trace_ledger *l, int rc)
{
    struct statvfs st;

    /* LMDB reports a write that found no room as EIO or ENOSPC; say
     * which it was, since the remedy differs */
    if ((rc == EIO || rc == ENOSPC) && statvfs(l->dir, &st) == 0 &&
        (uint64_t)st.f_bavail * st.f_frsize < (16u << 20)) {
        trace_fail_mdb(rc, "commit");
        return trace_fail(TRACE_EFULL,
                          "the disk holding %s is full (%llu bytes free): "
                          "nothing of this batch was stored",
                          l->dir,
                          (unsigned long long)st.f_bavail * st.f_frsize);
    }
    return trace_fail_mdb(rc, "commit");
}

int trace_ledger_set_max_qty(trace_ledger *l, const char *spec)
{
    int64_t m[N_DIMS];
    MDB_txn *txn;
    int rc;

    memcpy(m, l->max_qty, sizeof(m));
    if ((rc = max_qty_apply(m, &spec, 1)) != TRACE_OK)
        return rc;
    if ((rc = ledger_txn_begin(l, 0, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = max_qty_put(txn, l, m)) != TRACE_OK) {
        ledger_txn_abort(l, txn);
        return rc;
    }
    if ((rc = ledger_txn_commit(l, txn)))
        return ledger_commit_failed(l, rc);
    memcpy(l->max_qty, m, sizeof(m));
    return TRACE_OK;
}

int trace_ledger_tz(const trace_ledger *l)
{
    return l->tz_offset_min;
}
