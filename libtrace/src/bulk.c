/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulk.c - an import's index entries held back and written in key order
 * when it commits.
 *
 * An import files, per event, an id (ids), one or two stock changes
 * (bal) and a lot reference (lots) under keys that arrive in no order:
 * put one by one into LMDB's B-trees, each lands on a random page, and
 * pages split in halves stay about two thirds full.  Held back and put
 * in key order with MDB_APPEND, the same entries fill their pages and
 * each page is written once.
 *
 * While entries are held, anything in the import's transaction that
 * reads one of those three databases calls bulk_sync() first, which
 * writes what is held (in key order, as plain puts unless they go at
 * the end); the two reads an import makes on every event are served
 * without it: an id already filed (bulk_find_id) and a holding's last
 * stock change (state.c keeps every holding it changes in its tails).
 * At the end, an index that is small next to what is held is read out,
 * emptied and written again with everything, all appended.
 *
 * Only the import's own thread calls these; other threads' transactions
 * only compare their handle with the import's (l->bulk_txn).  What is
 * held is forgotten before the import's transaction commits or aborts:
 * LMDB gives the next write transaction, of any thread, the same handle.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { L_IDS, L_BAL, L_LOTS, N_LISTS };

/* An entry: u16 key length, u8 value length, the key, the value; stored
 * one after another in chunks of the list's own, so that each list's
 * memory goes back as soon as it is written.  Chunks grow from
 * CHUNK_MIN to CHUNK: an import that holds few entries, or writes them
 * at every back-dated change, maps no large ones. */
#define CHUNK_MIN (64u << 10)
#define CHUNK     (4u << 20)

struct chunk {
    struct chunk *next;
    size_t used, cap; /* bytes of data[] */
    uint8_t data[];
};

struct list {
    const uint8_t **rec;
    size_t n, cap;
    struct chunk *chunks;
};

/* What is held is written once it takes this much memory, so that an
 * import's memory does not grow with its length (the first write fills
 * pages as the last does; later ones go among the entries written). */
static size_t budget = 256u << 20;

void bulk_set_budget(size_t bytes)
{
    budget = bytes ? bytes : 256u << 20;
}

struct bulk {
    size_t bytes; /* held: entries and their pointers */
    struct list lists[N_LISTS];
    /* ids held: open addressing over indexes into lists[L_IDS] + 1 */
    uint32_t *ids;
    size_t ids_cap; /* a power of two, or 0 */
};

static inline size_t rec_klen(const uint8_t *r)
{
    return (size_t)r[0] << 8 | r[1];
}

static inline MDB_val rec_key(const uint8_t *r)
{
    return (MDB_val){rec_klen(r), (void *)(r + 3)};
}

static inline MDB_val rec_val(const uint8_t *r)
{
    return (MDB_val){r[2], (void *)(r + 3 + rec_klen(r))};
}

/* The import's entries if txn is its transaction.  Other threads compare
 * only the handle: the import's thread frees what it holds (bulk_end)
 * before its transaction ends, so while the handles are equal the caller
 * is the import's thread. */
static struct bulk *held_for(const trace_ledger *l, MDB_txn *txn)
{
    if (!txn || __atomic_load_n(&l->bulk_txn, __ATOMIC_ACQUIRE) != txn)
        return NULL;
    return __atomic_load_n(&l->bulk, __ATOMIC_ACQUIRE);
}

int bulk_begin(trace_ledger *l, MDB_txn *txn)
{
    struct bulk *b = calloc(1, sizeof(*b));

    if (!b)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    __atomic_store_n(&l->bulk, b, __ATOMIC_RELEASE);
    __atomic_store_n(&l->bulk_txn, txn, __ATOMIC_RELEASE);
    return TRACE_OK;
}

/* Frees a list's entries (once written, or with the import). */
static void list_free(struct list *ls)
{
    struct chunk *c, *next;

    for (c = ls->chunks; c; c = next) {
        next = c->next;
        big_free(c);
    }
    free(ls->rec);
    memset(ls, 0, sizeof(*ls));
}

/* Empties a list that was written, keeping its newest chunk and its
 * array for the entries to come. */
static void list_clear(struct list *ls)
{
    struct chunk *keep = ls->chunks, *c, *next;

    if (keep) {
        for (c = keep->next; c; c = next) {
            next = c->next;
            big_free(c);
        }
        keep->next = NULL;
        keep->used = 0;
    }
    ls->n = 0;
}

static uint8_t *list_alloc(struct list *ls, size_t n)
{
    struct chunk *c = ls->chunks;

    if (!c || c->cap - c->used < n) {
        size_t size = c ? 2 * (sizeof(*c) + c->cap) : CHUNK_MIN;
        if (size > CHUNK)
            size = CHUNK;
        if (!(c = big_alloc(size)))
            return NULL;
        c->next = ls->chunks;
        c->used = 0;
        c->cap = size - sizeof(*c);
        ls->chunks = c;
    }
    c->used += n;
    return c->data + c->used - n;
}

/* Adds an entry to a list; -1 when out of memory. */
static int list_add(struct list *ls, const MDB_val *k, const MDB_val *v)
{
    uint8_t *r;

    if (ls->n == ls->cap) {
        size_t nc = ls->cap ? ls->cap * 2 : 1024;
        const uint8_t **p = realloc(ls->rec, nc * sizeof(*p));
        if (!p)
            return -1;
        ls->rec = p;
        ls->cap = nc;
    }
    if (!(r = list_alloc(ls, 3 + k->mv_size + v->mv_size)))
        return -1;
    r[0] = (uint8_t)(k->mv_size >> 8);
    r[1] = (uint8_t)k->mv_size;
    r[2] = (uint8_t)v->mv_size;
    memcpy(r + 3, k->mv_data, k->mv_size);
    memcpy(r + 3 + k->mv_size, v->mv_data, v->mv_size);
    ls->rec[ls->n++] = r;
    return 0;
}

void bulk_end(trace_ledger *l)
{
    struct bulk *b = __atomic_load_n(&l->bulk, __ATOMIC_ACQUIRE);

    if (!b)
        return;
    __atomic_store_n(&l->bulk_txn, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&l->bulk, NULL, __ATOMIC_RELEASE);
    for (int i = 0; i < N_LISTS; i++)
        list_free(&b->lists[i]);
    free(b->ids);
    free(b);
}

static int which(const trace_ledger *l, MDB_dbi dbi)
{
    return dbi == l->dbi_ids    ? L_IDS
           : dbi == l->dbi_bal  ? L_BAL
           : dbi == l->dbi_lots ? L_LOTS
                                : -1;
}

static uint64_t key_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ h >> 29;
}

/* An id's first slot in a table of `cap` (a power of two) slots. */
static size_t id_home(const MDB_val *k, size_t cap)
{
    return key_hash(k->mv_data, k->mv_size) & (cap - 1);
}

static int ids_grow(struct bulk *b)
{
    struct list *ls = &b->lists[L_IDS];
    size_t cap = b->ids_cap ? b->ids_cap * 2 : 1024;
    uint32_t *t = calloc(cap, sizeof(*t));

    if (!t)
        return -1;
    for (size_t i = 0; i < ls->n; i++) {
        MDB_val k = rec_key(ls->rec[i]);
        size_t s = id_home(&k, cap);
        while (t[s])
            s = (s + 1) & (cap - 1);
        t[s] = (uint32_t)(i + 1);
    }
    free(b->ids);
    b->ids = t;
    b->ids_cap = cap;
    return 0;
}

int bulk_put(const trace_ledger *l, MDB_txn *txn, MDB_dbi dbi, const MDB_val *k,
             const MDB_val *v, int *held)
{
    struct bulk *b = held_for(l, txn);
    int w = which(l, dbi);
    struct list *ls;

    *held = 0;
    if (!b || w < 0)
        return TRACE_OK;
    if (k->mv_size > KEY_MAX || k->mv_size == 0 || v->mv_size > 255)
        return TRACE_OK; /* put as it is: LMDB says what is wrong */
    ls = &b->lists[w];
    if (w == L_IDS && (ls->n + 1) * 2 > b->ids_cap && ids_grow(b))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (list_add(ls, k, v))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if (w == L_IDS) {
        size_t s = id_home(k, b->ids_cap);
        while (b->ids[s])
            s = (s + 1) & (b->ids_cap - 1);
        b->ids[s] = (uint32_t)ls->n;
    }
    *held = 1;
    b->bytes += 3 + k->mv_size + v->mv_size + 2 * sizeof(*ls->rec);
    return TRACE_OK;
}

int bulk_find_id(const trace_ledger *l, MDB_txn *txn, const MDB_val *k,
                 MDB_val *v)
{
    struct bulk *b = held_for(l, txn);

    if (b && b->ids_cap) {
        const struct list *ls = &b->lists[L_IDS];
        size_t s = id_home(k, b->ids_cap);
        for (; b->ids[s]; s = (s + 1) & (b->ids_cap - 1)) {
            const uint8_t *r = ls->rec[b->ids[s] - 1];
            MDB_val rk = rec_key(r);
            if (rk.mv_size == k->mv_size &&
                memcmp(rk.mv_data, k->mv_data, k->mv_size) == 0) {
                *v = rec_val(r);
                return 0;
            }
        }
    }
    return mdb_get(txn, l->dbi_ids, (MDB_val *)k, v);
}

/* LMDB's default order: bytes, then the shorter first; keys, then
 * values. */
static int val_cmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = memcmp(a->mv_data, b->mv_data, n);
    return c ? c : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

static int rec_cmp(const void *x, const void *y)
{
    const uint8_t *a = *(const uint8_t *const *)x,
                  *b = *(const uint8_t *const *)y;
    MDB_val ka = rec_key(a), kb = rec_key(b);
    int c = val_cmp(&ka, &kb);
    if (c)
        return c;
    MDB_val va = rec_val(a), vb = rec_val(b);
    return val_cmp(&va, &vb);
}

static void *sort_list(void *arg)
{
    struct list *ls = arg;
    if (ls->n > 1)
        qsort(ls->rec, ls->n, sizeof(*ls->rec), rec_cmp);
    return NULL;
}

static const char *list_name(int w)
{
    return w == L_IDS ? "ids" : w == L_BAL ? "bal" : "lots";
}

/* Reads the whole database into the list and empties it, so that all is
 * written again in order. */
static int take_back(struct bulk *b, MDB_txn *txn, MDB_dbi dbi, int w)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, dbi, &cur)))
        return trace_fail_mdb(rc, list_name(w));
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > KEY_MAX || v.mv_size > 255) {
            mdb_cursor_close(cur);
            return trace_fail(TRACE_EVERIFY,
                              "%s holds an entry of a size it cannot",
                              list_name(w));
        }
        if (list_add(&b->lists[w], &k, &v)) {
            mdb_cursor_close(cur);
            return trace_fail(TRACE_ENOMEM, "out of memory");
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return trace_fail_mdb(rc, list_name(w));
    if ((rc = mdb_drop(txn, dbi, 0)))
        return trace_fail_mdb(rc, list_name(w));
    return TRACE_OK;
}

/* Puts a sorted list: at the end of the database with MDB_APPEND (new
 * key) or MDB_APPENDDUP (the same key again) while that holds, else as
 * the direct puts would (ids: never over an existing id; dups: a value
 * already filed is refused, except in lots, where it is filed
 * already). */
static int put_sorted(struct list *ls, MDB_txn *txn, MDB_dbi dbi, int w)
{
    MDB_cursor *cur;
    MDB_val pk = {0, NULL};
    int rc;

    if ((rc = mdb_cursor_open(txn, dbi, &cur)))
        return trace_fail_mdb(rc, list_name(w));
    for (size_t i = 0; i < ls->n; i++) {
        MDB_val k = rec_key(ls->rec[i]), v = rec_val(ls->rec[i]);
        int same = pk.mv_data && val_cmp(&k, &pk) == 0;
        if (same && w == L_LOTS && rec_cmp(&ls->rec[i], &ls->rec[i - 1]) == 0)
            continue; /* the same reference twice */
        if (same && w == L_IDS) {
            rc = MDB_KEYEXIST;
            break;
        }
        rc = mdb_cursor_put(cur, &k, &v, same ? MDB_APPENDDUP : MDB_APPEND);
        if (rc == MDB_KEYEXIST) /* not at the end */
            rc = mdb_cursor_put(cur, &k, &v,
                                w == L_IDS ? MDB_NOOVERWRITE : MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST && w == L_LOTS)
            rc = 0;
        if (rc)
            break;
        pk = k;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_KEYEXIST)
        return trace_fail(TRACE_EVERIFY, "%s: an entry was filed twice",
                          list_name(w));
    return rc ? trace_fail_mdb(rc, list_name(w)) : TRACE_OK;
}

/* Forgets the held ids once written: their slots cleared one by one when
 * few (an entry sits at or after its home slot, so the scan skips the
 * slots cleared before it), else the whole table. */
static void ids_clear(struct bulk *b)
{
    const struct list *ls = &b->lists[L_IDS];

    if (!b->ids_cap)
        return;
    if (ls->n * 16 > b->ids_cap) {
        memset(b->ids, 0, b->ids_cap * sizeof(*b->ids));
        return;
    }
    for (size_t i = 0; i < ls->n; i++) {
        MDB_val k = rec_key(ls->rec[i]);
        size_t s = id_home(&k, b->ids_cap);
        while (b->ids[s] != (uint32_t)(i + 1))
            s = (s + 1) & (b->ids_cap - 1);
        b->ids[s] = 0;
    }
}

/* Writes what is held.  With `done` (the import's end), each list's
 * memory is freed once written; else it is kept for the entries to come:
 * an import that writes at every back-dated stock change would otherwise
 * map and clear new pages each time. */
static int write_held(const trace_ledger *l, struct bulk *b, MDB_txn *txn,
                      int rebuild, int done)
{
    MDB_dbi dbis[N_LISTS] = {l->dbi_ids, l->dbi_bal, l->dbi_lots};
    pthread_t th;
    int rc, threaded;

    /* the ids' slots are found through the entries, before they are
     * sorted or joined by those read back */
    if (!done)
        ids_clear(b);
    for (int w = 0; rebuild && w < N_LISTS; w++) {
        MDB_stat st;
        if (!b->lists[w].n)
            continue;
        if ((rc = mdb_stat(txn, dbis[w], &st)))
            return trace_fail_mdb(rc, list_name(w));
        /* small next to what is held: all of it written again, in order */
        if (st.ms_entries && st.ms_entries <= b->lists[w].n / 8 &&
            (rc = take_back(b, txn, dbis[w], w)) != TRACE_OK)
            return rc;
    }
    /* the largest list sorted on a second thread */
    threaded = b->lists[L_BAL].n > 65536 &&
               pthread_create(&th, NULL, sort_list, &b->lists[L_BAL]) == 0;
    sort_list(&b->lists[L_IDS]);
    sort_list(&b->lists[L_LOTS]);
    if (threaded)
        pthread_join(th, NULL);
    else
        sort_list(&b->lists[L_BAL]);
    /* the largest first: each list's memory is freed once written */
    static const int order[N_LISTS] = {L_BAL, L_IDS, L_LOTS};
    for (int i = 0; i < N_LISTS; i++) {
        int w = order[i];
        if ((rc = put_sorted(&b->lists[w], txn, dbis[w], w)) != TRACE_OK)
            return rc;
        if (!done) {
            list_clear(&b->lists[w]);
            continue;
        }
        list_free(&b->lists[w]);
        if (w == L_IDS) {
            free(b->ids);
            b->ids = NULL;
            b->ids_cap = 0;
        }
    }
    b->bytes = 0;
    return TRACE_OK;
}

int bulk_trim(const trace_ledger *l, MDB_txn *txn, int *wrote)
{
    struct bulk *b = held_for(l, txn);

    *wrote = 0;
    if (!b || b->bytes <= budget)
        return TRACE_OK;
    *wrote = 1;
    return write_held(l, b, txn, 1, 0);
}

int bulk_sync(const trace_ledger *l, MDB_txn *txn)
{
    struct bulk *b = held_for(l, txn);

    if (!b)
        return TRACE_OK;
    if (!b->lists[L_IDS].n && !b->lists[L_BAL].n && !b->lists[L_LOTS].n)
        return TRACE_OK;
    return write_held(l, b, txn, 0, 0);
}

int bulk_finish(const trace_ledger *l, MDB_txn *txn)
{
    struct bulk *b = held_for(l, txn);

    return b ? write_held(l, b, txn, 1, 1) : TRACE_OK;
}
