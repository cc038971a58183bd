/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merkle.c - the journal as a Merkle tree (RFC 9162 section 2.1; SPEC 8).
 *
 * Leaf i (from 0) is journal entry i + 1: its hash SHA-256(0x00 || exact
 * Entry bytes) is the leaf hash the entries already chain by.  A node is
 * SHA-256(0x01 || left || right).  The tree of size n is MTH(D[0:n]).
 *
 * Storage: the "tree" database keeps the hash of every complete subtree
 * whose height is a multiple of TREE_STRIDE (4): key u8 height || u64be
 * index (the subtree covers leaves [index << height, (index + 1) <<
 * height)), value its 32-byte hash.  Leaves themselves are the journal's
 * (hashed when needed), so the tree adds about 2 bytes per entry, and
 * any node is at most 15 combinations of stored hashes or 8 leaves away:
 * a proof of a tree of 2^k leaves reads O(k) records.  The append
 * transaction adds each new leaf (tree_add), writing a height-4 node
 * every 16 leaves and the nodes above it as they complete, so the tree
 * always covers exactly the journal.  A ledger written before the tree
 * existed gets its nodes at its next append (tree_load).  Everything
 * here can be recomputed from the journal alone (verify does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace/proof.h"

#define STRIDE     TREE_STRIDE
#define BLOCK      (1u << STRIDE) /* leaves under a height-4 node */
#define MAX_HEIGHT 64

void merkle_node(uint8_t out[32], const uint8_t left[32],
                 const uint8_t right[32])
{
    uint8_t buf[1 + 64];

    buf[0] = 0x01;
    memcpy(buf + 1, left, 32);
    memcpy(buf + 33, right, 32);
    sha256(out, buf, sizeof(buf));
}

static void tree_key(uint8_t key[9], unsigned height, uint64_t index)
{
    key[0] = (uint8_t)height;
    be64_put(key + 1, index);
}

/* Hash of leaf i: its journal entry hashed. */
static int leaf_at(MDB_txn *txn, const trace_ledger *l, uint64_t i,
                   uint8_t out[32])
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    be64_put(kb, i + 1);
    if ((rc = mdb_get(txn, l->dbi_journal, &k, &v)))
        return trace_fail_mdb(rc, "journal");
    leaf_hash(out, v.mv_data, v.mv_size);
    return TRACE_OK;
}

/* The hashes of n consecutive nodes at `height` combined pairwise into
 * one (n a power of two); `h` is overwritten. */
static void fold(uint8_t (*h)[32], size_t n)
{
    for (; n > 1; n /= 2)
        for (size_t i = 0; i < n / 2; i++)
            merkle_node(h[i], h[2 * i], h[2 * i + 1]);
}

int tree_node(MDB_txn *txn, const trace_ledger *l, unsigned height,
              uint64_t index, uint8_t out[32])
{
    unsigned base = height - height % STRIDE;
    uint8_t h[BLOCK][32];
    size_t n;
    int rc;

    if (height >= MAX_HEIGHT)
        return trace_fail(TRACE_EINVAL, "no tree node of height %u", height);
    if (height == 0)
        return leaf_at(txn, l, index, out);
    if (base == height && l->late_missing) {
        base -= STRIDE; /* no stored tree in this process yet */
    } else if (base == height) {
        uint8_t key[9];
        MDB_val k = {9, key}, v;
        tree_key(key, height, index);
        rc = mdb_get(txn, l->dbi_tree, &k, &v);
        if (rc == 0 && v.mv_size == 32) {
            memcpy(out, v.mv_data, 32);
            return TRACE_OK;
        }
        if (rc && rc != MDB_NOTFOUND)
            return trace_fail_mdb(rc, "tree");
        /* not stored (a ledger the tree has not caught up with yet):
         * from the level below */
        base -= STRIDE;
    }
    n = (size_t)1 << (height - base);
    for (size_t i = 0; i < n; i++)
        if ((rc = tree_node(txn, l, base, (index << (height - base)) + i,
                            h[i])) != TRACE_OK)
            return rc;
    fold(h, n);
    memcpy(out, h[0], 32);
    return TRACE_OK;
}

/* The largest power of two smaller than n (n > 1). */
static uint64_t split_of(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

static int is_pow2(uint64_t n)
{
    return n && !(n & (n - 1));
}

static unsigned log2_of(uint64_t n)
{
    unsigned k = 0;
    while (n > 1)
        n >>= 1, k++;
    return k;
}

int tree_range(MDB_txn *txn, const trace_ledger *l, uint64_t start,
               uint64_t end, uint8_t out[32])
{
    uint64_t n = end - start, k;
    uint8_t a[32], b[32];
    int rc;

    if (end <= start)
        return trace_fail(TRACE_EINVAL, "empty range");
    if (is_pow2(n) && start % n == 0)
        return tree_node(txn, l, log2_of(n), start / n, out);
    k = split_of(n);
    if ((rc = tree_range(txn, l, start, start + k, a)) != TRACE_OK ||
        (rc = tree_range(txn, l, start + k, end, b)) != TRACE_OK)
        return rc;
    merkle_node(out, a, b);
    return TRACE_OK;
}

int tree_root(MDB_txn *txn, const trace_ledger *l, uint64_t size,
              uint8_t out[32])
{
    if (size == 0) {
        sha256(out, "", 0);
        return TRACE_OK;
    }
    return tree_range(txn, l, 0, size, out);
}

/* Proofs (RFC 9162 2.1.3.1 PATH and 2.1.4.1 SUBPROOF) ------------------ */

static int push(uint8_t (*proof)[32], size_t *n, const uint8_t h[32])
{
    if (*n >= TREE_MAX_PROOF)
        return trace_fail(TRACE_EINVAL, "proof too long");
    memcpy(proof[(*n)++], h, 32);
    return TRACE_OK;
}

/* PATH(m, D[start:end]) */
static int path(MDB_txn *txn, const trace_ledger *l, uint64_t m, uint64_t start,
                uint64_t end, uint8_t (*proof)[32], size_t *n)
{
    uint64_t len = end - start, k;
    uint8_t h[32];
    int rc;

    if (len <= 1)
        return TRACE_OK;
    k = split_of(len);
    if (m < k) {
        if ((rc = path(txn, l, m, start, start + k, proof, n)) != TRACE_OK ||
            (rc = tree_range(txn, l, start + k, end, h)) != TRACE_OK)
            return rc;
    } else {
        if ((rc = path(txn, l, m - k, start + k, end, proof, n)) != TRACE_OK ||
            (rc = tree_range(txn, l, start, start + k, h)) != TRACE_OK)
            return rc;
    }
    return push(proof, n, h);
}

int tree_inclusion(MDB_txn *txn, const trace_ledger *l, uint64_t index,
                   uint64_t size, uint8_t (*proof)[32], size_t *n)
{
    *n = 0;
    if (index >= size)
        return trace_fail(TRACE_EINVAL,
                          "leaf %llu is not in a tree of %llu entries",
                          (unsigned long long)index, (unsigned long long)size);
    return path(txn, l, index, 0, size, proof, n);
}

/* SUBPROOF(m, D[start:end], b) */
static int subproof(MDB_txn *txn, const trace_ledger *l, uint64_t m,
                    uint64_t start, uint64_t end, int b, uint8_t (*proof)[32],
                    size_t *n)
{
    uint64_t len = end - start, k;
    uint8_t h[32];
    int rc;

    if (m == len) {
        if (b)
            return TRACE_OK;
        if ((rc = tree_range(txn, l, start, end, h)) != TRACE_OK)
            return rc;
        return push(proof, n, h);
    }
    k = split_of(len);
    if (m <= k) {
        if ((rc = subproof(txn, l, m, start, start + k, b, proof, n)) !=
                TRACE_OK ||
            (rc = tree_range(txn, l, start + k, end, h)) != TRACE_OK)
            return rc;
    } else {
        if ((rc = subproof(txn, l, m - k, start + k, end, 0, proof, n)) !=
                TRACE_OK ||
            (rc = tree_range(txn, l, start, start + k, h)) != TRACE_OK)
            return rc;
    }
    return push(proof, n, h);
}

int tree_consistency(MDB_txn *txn, const trace_ledger *l, uint64_t old_size,
                     uint64_t new_size, uint8_t (*proof)[32], size_t *n)
{
    *n = 0;
    if (old_size == 0 || old_size > new_size)
        return trace_fail(TRACE_EINVAL,
                          "no consistency proof from %llu to %llu entries "
                          "(0 < OLD <= NEW)",
                          (unsigned long long)old_size,
                          (unsigned long long)new_size);
    if (old_size == new_size)
        return TRACE_OK;
    return subproof(txn, l, old_size, 0, new_size, 1, proof, n);
}

/* Verification (RFC 9162 2.1.3.2 and 2.1.4.2) --------------------------- */

int merkle_verify_inclusion(uint64_t index, uint64_t size,
                            const uint8_t leaf[32], const uint8_t (*proof)[32],
                            size_t n, const uint8_t root[32])
{
    uint64_t fn = index, sn;
    uint8_t r[32];

    if (index >= size)
        return 0;
    sn = size - 1;
    memcpy(r, leaf, 32);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            merkle_node(r, proof[i], r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node(r, r, proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, 32) == 0;
}

int merkle_verify_consistency(uint64_t size1, uint64_t size2,
                              const uint8_t root1[32], const uint8_t root2[32],
                              const uint8_t (*proof)[32], size_t n)
{
    uint64_t fn, sn;
    uint8_t fr[32], sr[32];
    size_t i = 0;

    if (size1 == 0 || size2 < size1)
        return 0;
    if (size1 == size2)
        return n == 0 && memcmp(root1, root2, 32) == 0;
    if (n == 0)
        return 0;
    fn = size1 - 1;
    sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    if (is_pow2(size1)) {
        memcpy(fr, root1, 32);
    } else {
        memcpy(fr, proof[0], 32);
        i = 1;
    }
    memcpy(sr, fr, 32);
    for (; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            merkle_node(fr, proof[i], fr);
            merkle_node(sr, proof[i], sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node(sr, sr, proof[i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, root1, 32) == 0 && memcmp(sr, root2, 32) == 0;
}

/* Growing the stored tree ----------------------------------------------- */

/* Stores the height-4 node of the block just completed and every node
 * above it that completes with it. */
static int store_up(MDB_txn *txn, const trace_ledger *l, unsigned height,
                    uint64_t index, const uint8_t hash[32])
{
    uint8_t key[9], h[BLOCK][32];
    MDB_val k = {9, key}, v = {32, (void *)hash};
    int rc;

    tree_key(key, height, index);
    if ((rc = mdb_put(txn, l->dbi_tree, &k, &v, 0)))
        return trace_fail_mdb(rc, "tree");
    if ((index + 1) % BLOCK != 0 || height + STRIDE >= MAX_HEIGHT)
        return TRACE_OK;
    /* the 16th node of its parent: the parent completes */
    for (unsigned i = 0; i < BLOCK; i++) {
        MDB_val pv;
        tree_key(key, height, index + 1 - BLOCK + i);
        if ((rc = mdb_get(txn, l->dbi_tree, &k, &pv)) || pv.mv_size != 32)
            return rc ? trace_fail_mdb(rc, "tree")
                      : trace_fail(TRACE_EVERIFY, "tree node damaged");
        memcpy(h[i], pv.mv_data, 32);
    }
    fold(h, BLOCK);
    return store_up(txn, l, height + STRIDE, index / BLOCK, h[0]);
}

int tree_add(MDB_txn *txn, const trace_ledger *l, struct tree_acc *t,
             const uint8_t leaf[32])
{
#ifdef TRACE_BENCH_NO_TREE
    /* a build for measuring what the tree costs appends (tests/bench);
     * its ledgers have no tree */
    (void)txn, (void)l, (void)t, (void)leaf;
    return TRACE_OK;
#endif
    memcpy(t->leaves[t->n++], leaf, 32);
    if (t->n < BLOCK)
        return TRACE_OK;
    fold(t->leaves, BLOCK);
    t->n = 0;
    t->base += BLOCK;
    return store_up(txn, l, STRIDE, t->base / BLOCK - 1, t->leaves[0]);
}

int tree_load(MDB_txn *txn, const trace_ledger *l, uint64_t size,
              struct tree_acc *t)
{
#ifdef TRACE_BENCH_NO_TREE
    (void)txn, (void)l, (void)size, (void)t;
    return TRACE_OK;
#endif
    uint64_t blocks = size / BLOCK;
    uint8_t key[9], leaf[32];
    MDB_val k = {9, key}, v;
    int rc;

    t->n = 0;
    t->base = blocks * BLOCK;
    if (blocks) {
        tree_key(key, STRIDE, blocks - 1);
        rc = mdb_get(txn, l->dbi_tree, &k, &v);
        if (rc == MDB_NOTFOUND) {
            /* a ledger from before the tree: built once, from the start */
            t->base = 0;
            for (uint64_t i = 0; i < blocks * BLOCK; i++)
                if ((rc = leaf_at(txn, l, i, leaf)) != TRACE_OK ||
                    (rc = tree_add(txn, l, t, leaf)) != TRACE_OK)
                    return rc;
        } else if (rc) {
            return trace_fail_mdb(rc, "tree");
        }
    }
    for (uint64_t i = t->base; i < size; i++) {
        if ((rc = leaf_at(txn, l, i, leaf)) != TRACE_OK)
            return rc;
        memcpy(t->leaves[t->n++], leaf, 32);
    }
    return TRACE_OK;
}

/* Verification's side: the tree recomputed from the journal ------------ */

struct tree_check {
    MDB_txn *txn;
    trace_ledger *l;
    uint64_t n;                  /* leaves added */
    unsigned depth;              /* nodes on the stack */
    unsigned height[MAX_HEIGHT]; /* of each complete subtree, left first */
    uint8_t hash[MAX_HEIGHT][32];
    int stored_tree;     /* the ledger stores tree nodes */
    int have_pub;        /* checkpoints' signatures checked */
    uint8_t more[8][32]; /* other keys that signed checkpoints here */
    size_t n_more;
    uint8_t pub[32];
    char origin[256];
    MDB_cursor *ckpt;           /* the next stored checkpoint */
    uint64_t next_size;         /* its size (0: none left) */
    trace_checkpoint *cp, *ext; /* parsed note; the outside one */
    uint64_t checked;
};

/* Moves to the next stored checkpoint (keys of 8 bytes; longer ones are
 * cosignatures). */
static int next_ckpt(struct tree_check *t, int op)
{
    MDB_val k, v;
    int rc;

    t->next_size = 0;
    for (rc = mdb_cursor_get(t->ckpt, &k, &v, op); rc == 0;
         rc = mdb_cursor_get(t->ckpt, &k, &v, MDB_NEXT))
        if (k.mv_size == 8 && be64_get(k.mv_data) > t->n) {
            t->next_size = be64_get(k.mv_data);
            return TRACE_OK;
        }
    return rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "ckpt");
}

void tree_check_free(struct tree_check *t)
{
    if (!t)
        return;
    if (t->ckpt)
        mdb_cursor_close(t->ckpt);
    free(t->cp);
    free(t->ext);
    free(t);
}

int tree_check_begin(struct tree_check **out, MDB_txn *txn, trace_ledger *l,
                     uint64_t start, const char *ext, size_t ext_len)
{
    struct tree_check *t = calloc(1, sizeof(*t));
    MDB_stat st;
    int rc;

    *out = NULL;
    if (!t || !(t->cp = malloc(sizeof(*t->cp))))
        goto nomem;
    t->txn = txn;
    t->l = l;
    t->stored_tree = !l->late_missing && mdb_stat(txn, l->dbi_tree, &st) == 0 &&
                     st.ms_entries;
    t->have_pub = checkpoint_pubkey(l, t->pub) == TRACE_OK;
    if (!l->late_missing &&
        checkpoint_log_keys(txn, l, t->more, 8, &t->n_more) != TRACE_OK)
        t->n_more = 0;
    if (!t->have_pub && t->n_more) { /* the folder's key is not at hand */
        memcpy(t->pub, t->more[0], 32);
        t->have_pub = 1;
    }
    if (checkpoint_origin_txn(txn, l, t->origin, sizeof(t->origin)) != TRACE_OK)
        t->origin[0] = '\0'; /* no checkpoint yet */
    if (ext) {
        if (!(t->ext = malloc(sizeof(*t->ext))))
            goto nomem;
        if ((rc = trace_checkpoint_parse(t->ext, ext, ext_len)) != TRACE_OK)
            goto fail;
        int ok = t->have_pub && strcmp(t->ext->origin, t->origin) == 0 &&
                 trace_checkpoint_verify(t->ext, t->origin, t->pub) == TRACE_OK;
        for (size_t i = 0; !ok && i < t->n_more; i++)
            ok = strcmp(t->ext->origin, t->origin) == 0 &&
                 trace_checkpoint_verify(t->ext, t->origin, t->more[i]) ==
                     TRACE_OK;
        if (!ok) {
            rc = trace_fail(TRACE_EVERIFY,
                            "the checkpoint given is not one this ledger's "
                            "log key signed (origin %s)",
                            t->ext->origin);
            goto fail;
        }
    }
    /* the stack of complete subtrees of the first `start` leaves */
    for (int h = MAX_HEIGHT - 1; h >= 0; h--)
        if (start & ((uint64_t)1 << h)) {
            uint64_t idx = (t->n >> h);
            if ((rc = tree_node(txn, l, (unsigned)h, idx, t->hash[t->depth])) !=
                TRACE_OK)
                goto fail;
            t->height[t->depth++] = (unsigned)h;
            t->n += (uint64_t)1 << h;
        }
    if (!l->late_missing) { /* else no checkpoint stored yet */
        if ((rc = mdb_cursor_open(txn, l->dbi_ckpt, &t->ckpt))) {
            t->ckpt = NULL;
            rc = trace_fail_mdb(rc, "ckpt");
            goto fail;
        }
        if ((rc = next_ckpt(t, MDB_FIRST)) != TRACE_OK)
            goto fail;
    }
    *out = t;
    return TRACE_OK;
nomem:
    rc = trace_fail(TRACE_ENOMEM, "out of memory");
fail:
    tree_check_free(t);
    return rc;
}

/* The root of the leaves so far. */
static void stack_root(const struct tree_check *t, uint8_t out[32])
{
    memcpy(out, t->hash[t->depth - 1], 32);
    for (unsigned i = t->depth - 1; i-- > 0;)
        merkle_node(out, t->hash[i], out);
}

static int check_note(struct tree_check *t, const trace_checkpoint *cp,
                      const char *what)
{
    uint8_t root[32];

    stack_root(t, root);
    if (memcmp(root, cp->root, 32) != 0)
        return trace_fail(TRACE_EVERIFY,
                          "%s of %llu entries does not match the tree of "
                          "the journal",
                          what, (unsigned long long)t->n);
    return TRACE_OK;
}

int tree_check_can16(const struct tree_check *t)
{
    return t->n % BLOCK == 0 &&
           !(t->next_size > t->n && t->next_size < t->n + BLOCK) &&
           !(t->ext && t->ext->size > t->n && t->ext->size < t->n + BLOCK);
}

static int check_push(struct tree_check *t, const uint8_t hash[32],
                      unsigned height);

int tree_check_leaf(struct tree_check *t, const uint8_t leaf[32])
{
    return check_push(t, leaf, 0);
}

int tree_check_add16(struct tree_check *t, const uint8_t hash[32])
{
    return check_push(t, hash, STRIDE);
}

/* Adds a complete subtree of `height` (0: a leaf) after the ones so far;
 * its stored copy (a height-4 one) is compared by the caller's merges
 * only from height 8 on, so compare it here. */
static int check_push(struct tree_check *t, const uint8_t hash[32],
                      unsigned height)
{
    int rc;

    if (t->depth == MAX_HEIGHT)
        return trace_fail(TRACE_EVERIFY, "tree too large");
    memcpy(t->hash[t->depth], hash, 32);
    t->height[t->depth++] = height;
    t->n += (uint64_t)1 << height;
    if (height && height % STRIDE == 0 && t->stored_tree) {
        uint8_t key[9];
        MDB_val k = {9, key}, v;
        tree_key(key, height, (t->n >> height) - 1);
        rc = mdb_get(t->txn, t->l->dbi_tree, &k, &v);
        if (rc == 0 && (v.mv_size != 32 || memcmp(v.mv_data, hash, 32) != 0))
            return trace_fail(TRACE_EVERIFY,
                              "the stored Merkle subtree of height %u "
                              "ending here does not match the journal",
                              height);
        if (rc == MDB_NOTFOUND)
            return trace_fail(TRACE_EVERIFY,
                              "the stored Merkle subtree of height %u "
                              "ending here is missing",
                              height);
        if (rc)
            return trace_fail_mdb(rc, "tree");
    }
    while (t->depth >= 2 &&
           t->height[t->depth - 1] == t->height[t->depth - 2]) {
        unsigned h = t->height[t->depth - 1] + 1;
        merkle_node(t->hash[t->depth - 2], t->hash[t->depth - 2],
                    t->hash[t->depth - 1]);
        t->height[t->depth - 2] = h;
        t->depth--;
        if (h % STRIDE == 0 && t->stored_tree) {
            uint8_t key[9];
            MDB_val k = {9, key}, v;
            tree_key(key, h, (t->n >> h) - 1);
            rc = mdb_get(t->txn, t->l->dbi_tree, &k, &v);
            if (rc == 0 && (v.mv_size != 32 ||
                            memcmp(v.mv_data, t->hash[t->depth - 1], 32) != 0))
                return trace_fail(TRACE_EVERIFY,
                                  "the stored Merkle subtree of height %u "
                                  "ending here does not match the journal",
                                  h);
            if (rc == MDB_NOTFOUND)
                return trace_fail(TRACE_EVERIFY,
                                  "the stored Merkle subtree of height %u "
                                  "ending here is missing",
                                  h);
            if (rc)
                return trace_fail_mdb(rc, "tree");
        }
    }
    if (t->ext && t->ext->size == t->n &&
        (rc = check_note(t, t->ext, "the checkpoint given")) != TRACE_OK)
        return rc;
    if (t->next_size == t->n) {
        MDB_val k, v;
        if ((rc = mdb_cursor_get(t->ckpt, &k, &v, MDB_GET_CURRENT)))
            return trace_fail_mdb(rc, "ckpt");
        if (trace_checkpoint_parse(t->cp, v.mv_data, v.mv_size) != TRACE_OK ||
            t->cp->size != t->n || strcmp(t->cp->origin, t->origin) != 0)
            return trace_fail(TRACE_EVERIFY,
                              "the stored checkpoint of %llu entries is "
                              "damaged",
                              (unsigned long long)t->n);
        int signed_ok =
            !t->have_pub ||
            trace_checkpoint_verify(t->cp, t->origin, t->pub) == TRACE_OK;
        for (size_t i = 0; !signed_ok && i < t->n_more; i++)
            signed_ok = trace_checkpoint_verify(t->cp, t->origin, t->more[i]) ==
                        TRACE_OK;
        if (!signed_ok)
            return trace_fail(TRACE_EVERIFY,
                              "the stored checkpoint of %llu entries is not "
                              "signed by the log key",
                              (unsigned long long)t->n);
        if ((rc = check_note(t, t->cp, "the stored checkpoint")) != TRACE_OK)
            return rc;
        t->checked++;
        if ((rc = next_ckpt(t, MDB_NEXT)) != TRACE_OK)
            return rc;
    }
    return TRACE_OK;
}

int tree_check_end(struct tree_check *t, uint64_t *checked)
{
    *checked = t->checked;
    if (t->next_size)
        return trace_fail(TRACE_EVERIFY,
                          "a checkpoint of %llu entries is stored, but the "
                          "journal has %llu",
                          (unsigned long long)t->next_size,
                          (unsigned long long)t->n);
    if (t->ext && t->ext->size > t->n)
        return trace_fail(TRACE_EVERIFY,
                          "the checkpoint given covers %llu entries; the "
                          "journal has %llu (rolled back?)",
                          (unsigned long long)t->ext->size,
                          (unsigned long long)t->n);
    return TRACE_OK;
}
