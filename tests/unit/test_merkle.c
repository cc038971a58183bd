/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_merkle.c - the journal's Merkle tree, proofs and checkpoints
 * (merkle.c, note.c, checkpoint.c): RFC 9162 probe vectors
 * (tests/data/merkle, from ../shared/vectors/merkle as published), the
 * stored tree against an independent computation at many sizes, signed
 * notes and cosignatures.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "helpers.h"
#include "internal.h"
#include "trace/proof.h"

/* RFC 9162 probe vectors ---------------------------------------------- */

struct tally {
    int files, happy, refused;
};

/* base64 field into out; 0 if absent/null or not 32 bytes (a 32-byte
 * verifier cannot take it) */
static int b64_32(json_t *v, uint8_t out[32], size_t *len)
{
    const char *s = json_string_value(v);
    uint8_t buf[256];
    size_t n = 0;

    *len = 0;
    if (!s)
        return 0;
    if (!*s)
        return 0;
    if (base64_decode(buf, sizeof(buf), &n, s) != TRACE_OK)
        return 0;
    *len = n;
    if (n != 32)
        return 0;
    memcpy(out, buf, 32);
    return 1;
}

/* The proof array: 0 if an element is not 32 bytes. */
static int proof_of(json_t *arr, uint8_t (*proof)[32], size_t *n)
{
    size_t i, len;
    json_t *v;

    *n = 0;
    if (json_is_null(arr) || !arr)
        return 1;
    json_array_foreach(arr, i, v)
    {
        if (i >= TREE_MAX_PROOF || !b64_32(v, proof[i], &len))
            return 0;
        (*n)++;
    }
    return 1;
}

/* A size or index; the probes go up to 2^64 - 1, which jansson reads
 * only as a real. */
static uint64_t u64_of(json_t *v)
{
    double d = json_number_value(v);
    if (d >= 18446744073709551615.0)
        return UINT64_MAX;
    return d <= 0 ? 0 : (uint64_t)d;
}

static void run_inclusion(json_t *j, struct tally *t)
{
    uint8_t leaf[32], root[32], proof[TREE_MAX_PROOF][32];
    size_t n, ll, rl;
    int want_err = json_is_true(json_object_get(j, "wantErr")), ok;
    uint64_t idx = u64_of(json_object_get(j, "leafIdx"));
    uint64_t size = u64_of(json_object_get(j, "treeSize"));

    ok = b64_32(json_object_get(j, "leafHash"), leaf, &ll) &&
         b64_32(json_object_get(j, "root"), root, &rl) &&
         proof_of(json_object_get(j, "proof"), proof, &n) &&
         trace_merkle_verify_inclusion(idx, size, leaf,
                                       (const uint8_t(*)[32])proof, n, root);
    if (ok == want_err)
        fail_msg("inclusion vector %s: got %s",
                 json_string_value(json_object_get(j, "desc")),
                 ok ? "valid" : "invalid");
    t->happy += ok;
    t->refused += !ok;
}

static void run_consistency(json_t *j, struct tally *t)
{
    uint8_t r1[32], r2[32], proof[TREE_MAX_PROOF][32];
    size_t n, l1, l2;
    int want_err = json_is_true(json_object_get(j, "wantErr")), ok;
    uint64_t s1 = u64_of(json_object_get(j, "size1"));
    uint64_t s2 = u64_of(json_object_get(j, "size2"));
    const char *a = json_string_value(json_object_get(j, "root1"));
    const char *b = json_string_value(json_object_get(j, "root2"));
    int h1 = b64_32(json_object_get(j, "root1"), r1, &l1);
    int h2 = b64_32(json_object_get(j, "root2"), r2, &l2);

    if (!proof_of(json_object_get(j, "proof"), proof, &n))
        ok = 0;
    else if (s1 == s2 && s1 != 0 && n == 0 && (!h1 || !h2))
        /* equal sizes compare the roots as given, whatever their length */
        ok = a && b && strcmp(a, b) == 0;
    else
        ok = h1 && h2 &&
             trace_merkle_verify_consistency(s1, s2, r1, r2,
                                             (const uint8_t(*)[32])proof, n);
    if (ok == want_err)
        fail_msg("consistency vector %s (%llu -> %llu): got %s",
                 json_string_value(json_object_get(j, "desc")),
                 (unsigned long long)s1, (unsigned long long)s2,
                 ok ? "valid" : "invalid");
    t->happy += ok;
    t->refused += !ok;
}

static void walk(const char *dir, int inclusion, struct tally *t)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];

    assert_non_null(d);
    while ((e = readdir(d))) {
        json_error_t err;
        json_t *j;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (!strstr(e->d_name, ".json")) {
            walk(path, inclusion, t);
            continue;
        }
        j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
        if (!j)
            fail_msg("%s: %s", path, err.text);
        t->files++;
        if (inclusion)
            run_inclusion(j, t);
        else
            run_consistency(j, t);
        json_decref(j);
    }
    closedir(d);
}

static void test_vectors(void **state)
{
    struct tally inc = {0}, con = {0};
    (void)state;

    walk(TRACE_TEST_DATA "/merkle/inclusion", 1, &inc);
    walk(TRACE_TEST_DATA "/merkle/consistency", 0, &con);
    /* every published probe ran, and both verdicts occurred */
    print_message("%d inclusion and %d consistency probes\n", inc.files,
                  con.files);
    assert_true(inc.files >= 60 && con.files >= 90);
    assert_true(inc.happy >= 5 && inc.refused >= 50);
    assert_true(con.happy >= 5 && con.refused >= 80);
}

/* The stored tree against the RFC definition ------------------------- */

/* MTH(D[start:end]) straight from the definition. */
static void mth(uint8_t (*leaves)[32], uint64_t start, uint64_t end,
                uint8_t out[32])
{
    uint64_t n = end - start, k = 1;
    uint8_t a[32], b[32];

    if (n == 1) {
        memcpy(out, leaves[start], 32);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    mth(leaves, start, start + k, a);
    mth(leaves, start + k, end, b);
    merkle_node(out, a, b);
}

static char *produce_lines(int from, int n)
{
    size_t cap = (size_t)n * 200 + 1, len = 0;
    char *s = malloc(cap);
    for (int i = from; i < from + n; i++)
        len += (size_t)snprintf(
            s + len, cap - len,
            "%s{\"type\":\"produce\",\"id\":\"m%d\",\"party\":\"P1\","
            "\"at\":\"2026-01-08T08:00:00+08:00\",\"substance\":\"acetone\","
            "\"lot\":\"L%d\",\"qty\":\"1\",\"unit\":\"L\"}",
            len ? "\n" : "", i, i % 7);
    return s;
}

static const char *const party_p1 =
    "{\"type\":\"party\",\"id\":\"r1\",\"party\":\"REGULATOR\",\"at\":"
    "\"2026-01-05T09:00:00+08:00\",\"subject\":\"P1\",\"name\":\"One\","
    "\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":[]}\n"
    "{\"type\":\"produce\",\"id\":\"m-first\",\"party\":\"P1\","
    "\"at\":\"2026-01-08T08:00:00+08:00\",\"substance\":\"acetone\","
    "\"lot\":\"L0\",\"qty\":\"1\",\"unit\":\"L\"}";

/* Appends events in commits of varied sizes until the journal holds
 * `total` entries. */
static uint64_t grow(fixture *f, uint64_t total, int *next)
{
    static const int steps[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144};
    trace_append_result r;
    uint64_t size;
    uint8_t head[32];

    for (int s = 0;; s++) {
        assert_int_equal(trace_ledger_head(f->l, &size, head), TRACE_OK);
        if (size >= total)
            return size;
        int n = steps[s % 11];
        if ((uint64_t)n > total - size)
            n = (int)(total - size);
        char *lines = produce_lines(*next, n);
        *next += n;
        if (fixture_import(f, lines, 0, &r) != TRACE_OK)
            fail_msg("import: %s", trace_error_last());
        free(lines);
    }
}

static void test_tree(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    uint8_t(*leaves)[32];
    uint8_t root[32], want[32], proof[TREE_MAX_PROOF][32];
    uint64_t size;
    MDB_txn *txn;
    size_t n;
    int next = 0;

    assert_int_equal(
        fixture_import(f, party_p1, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    size = grow(f, 4200, &next);
    leaves = calloc(size, 32);
    assert_int_equal(ledger_txn_begin(f->l, MDB_RDONLY, &txn), 0);
    for (uint64_t i = 0; i < size; i++) {
        uint8_t kb[8];
        MDB_val k = {8, kb}, v;
        be64_put(kb, i + 1);
        assert_int_equal(mdb_get(txn, f->l->dbi_journal, &k, &v), 0);
        leaf_hash(leaves[i], v.mv_data, v.mv_size);
    }
    /* roots at every size to 300, around every power of two, the end */
    for (uint64_t s = 1; s <= size; s++) {
        int pow = (s & (s - 1)) == 0 || ((s + 1) & s) == 0 ||
                  ((s - 1) & (s - 2)) == 0;
        if (s > 300 && !pow && s != size && s % 97 != 0)
            continue;
        mth(leaves, 0, s, want);
        assert_int_equal(tree_root(txn, f->l, s, root), TRACE_OK);
        assert_memory_equal(root, want, 32);
        /* inclusion of every leaf up to 300, some beyond */
        for (uint64_t m = 0; m < s; m += s <= 300 ? 1 : s / 13 + 1) {
            assert_int_equal(tree_inclusion(txn, f->l, m, s, proof, &n),
                             TRACE_OK);
            assert_true(merkle_verify_inclusion(
                m, s, leaves[m], (const uint8_t(*)[32])proof, n, want));
            if (n) { /* a changed proof hash, another leaf */
                proof[n / 2][7] ^= 1;
                assert_false(merkle_verify_inclusion(
                    m, s, leaves[m], (const uint8_t(*)[32])proof, n, want));
                proof[n / 2][7] ^= 1;
                assert_false(merkle_verify_inclusion(
                    m, s, leaves[(m + 1) % s], (const uint8_t(*)[32])proof, n,
                    want));
            }
        }
        /* consistency from a few older sizes */
        for (uint64_t o = 1; o <= s; o += s <= 64 ? 1 : s / 7 + 1) {
            uint8_t old[32];
            mth(leaves, 0, o, old);
            assert_int_equal(tree_consistency(txn, f->l, o, s, proof, &n),
                             TRACE_OK);
            assert_true(merkle_verify_consistency(
                o, s, old, want, (const uint8_t(*)[32])proof, n));
            if (n) {
                proof[0][0] ^= 1;
                assert_false(merkle_verify_consistency(
                    o, s, old, want, (const uint8_t(*)[32])proof, n));
            }
            if (o < s)
                assert_false(merkle_verify_consistency(
                    o, s, want, want, (const uint8_t(*)[32])proof, n));
        }
    }
    ledger_txn_abort(f->l, txn);
    free(leaves);
}

/* Checkpoints --------------------------------------------------------- */

static void test_checkpoints(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_checkpoint cp;
    char vkey[256], name[256], *note, bad[2048], line[512];
    uint8_t pub[32], root[32], head[32];
    trace_key *wkey, *other;
    uint64_t size, t;
    MDB_txn *txn;
    size_t len;
    int next = 0;

    assert_int_equal(
        fixture_import(f, party_p1, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    grow(f, 40, &next);
    assert_int_equal(trace_ledger_head(f->l, &size, head), TRACE_OK);
    assert_int_equal(trace_checkpoint_vkey(f->l, vkey, sizeof(vkey)), TRACE_OK);
    assert_int_equal(trace_vkey_parse(vkey, name, sizeof(name), pub), TRACE_OK);
    assert_non_null(strstr(name, "trace/REGULATOR/"));
    /* the latest is the head's size, signed by the log key, its root the
     * tree's */
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(&cp, note, len), TRACE_OK);
    assert_int_equal(cp.size, size);
    assert_string_equal(cp.origin, name);
    assert_int_equal(trace_checkpoint_verify(&cp, name, pub), TRACE_OK);
    assert_int_equal(ledger_txn_begin(f->l, MDB_RDONLY, &txn), 0);
    assert_int_equal(tree_root(txn, f->l, size, root), TRACE_OK);
    ledger_txn_abort(f->l, txn);
    assert_memory_equal(cp.root, root, 32);
    /* a changed byte of the text, or another key: refused */
    memcpy(bad, note, len);
    bad[strlen(name) + 1] ^= 1; /* the size */
    if (trace_checkpoint_parse(&cp, bad, len) == TRACE_OK)
        assert_int_equal(trace_checkpoint_verify(&cp, name, pub),
                         TRACE_EVERIFY);
    assert_int_equal(trace_checkpoint_parse(&cp, note, len), TRACE_OK);
    assert_int_equal(trace_key_generate(&other), TRACE_OK);
    assert_int_equal(
        trace_checkpoint_verify(&cp, name, trace_key_public(other)),
        TRACE_EVERIFY);
    /* a checkpoint of every commit's size, none of others */
    free(note);
    assert_int_equal(trace_checkpoint_note(f->l, 1, &note, &len), TRACE_OK);
    free(note);
    assert_int_equal(trace_checkpoint_note(f->l, size + 1, &note, &len),
                     TRACE_ENOTFOUND);
    /* a witness cosigns; the ledger keeps the line and serves it */
    assert_int_equal(trace_checkpoint_note(f->l, size, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(&cp, note, len), TRACE_OK);
    assert_int_equal(trace_key_generate(&wkey), TRACE_OK);
    assert_int_equal(trace_checkpoint_cosign(&cp, wkey, "witness.example/w1",
                                             1700000000, line, sizeof(line)),
                     TRACE_OK);
    snprintf(bad, sizeof(bad), "%s%s", note, line);
    assert_int_equal(trace_checkpoint_parse(&cp, bad, strlen(bad)), TRACE_OK);
    assert_int_equal(trace_checkpoint_verify_cosig(&cp, "witness.example/w1",
                                                   trace_key_public(wkey), &t),
                     TRACE_OK);
    assert_int_equal(t, 1700000000);
    assert_int_equal(trace_checkpoint_verify_cosig(&cp, "witness.example/w1",
                                                   trace_key_public(other),
                                                   NULL),
                     TRACE_EVERIFY);
    char wvkey[256];
    assert_int_equal(trace_vkey_format(wvkey, sizeof(wvkey),
                                       "witness.example/w1",
                                       trace_key_public(wkey)),
                     TRACE_OK);
    assert_int_equal(trace_checkpoint_add_cosig(f->l, bad, strlen(bad), wvkey),
                     TRACE_OK);
    free(note);
    assert_int_equal(trace_checkpoint_note(f->l, size, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(&cp, note, len), TRACE_OK);
    assert_int_equal(cp.n_sigs, 2);
    assert_int_equal(trace_checkpoint_verify_cosig(&cp, "witness.example/w1",
                                                   trace_key_public(wkey),
                                                   NULL),
                     TRACE_OK);
    /* a cosigned checkpoint this ledger did not sign (another root under
     * its origin and size): refused */
    free(note);
    assert_int_equal(trace_checkpoint_note(f->l, size, &note, &len), TRACE_OK);
    char *nl = strchr(strchr(note, '\n') + 1, '\n') + 1; /* the root line */
    nl[0] = nl[0] == 'A' ? 'B' : 'A';
    assert_int_equal(trace_checkpoint_parse(&cp, note, len), TRACE_OK);
    assert_int_equal(trace_checkpoint_cosign(&cp, wkey, "witness.example/w1",
                                             1700000001, line, sizeof(line)),
                     TRACE_OK);
    snprintf(bad, sizeof(bad), "%s%s", note, line);
    assert_int_equal(trace_checkpoint_add_cosig(f->l, bad, strlen(bad), wvkey),
                     TRACE_EVERIFY);
    free(note);
    trace_key_free(wkey);
    trace_key_free(other);
}

/* Cosignatures handed in: a name keeps its first key; at most
 * TRACE_CHECKPOINT_MAX_WITNESSES names per checkpoint; the same witness
 * cosigns again; the note may carry only the witness's line, and only
 * that line is stored. */
static void test_cosig_limits(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_checkpoint *cp = malloc(sizeof(*cp));
    char *note, name[64], wvkey[256], line[512], text[1024], mine[2048];
    trace_key *keys[TRACE_CHECKPOINT_MAX_WITNESSES + 1], *other;
    size_t len;
    int next = 0;

    assert_non_null(cp);
    assert_int_equal(
        fixture_import(f, party_p1, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    grow(f, 3, &next);
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(cp, note, len), TRACE_OK);
    free(note);
    memcpy(text, cp->text, cp->text_len);
    text[cp->text_len] = '\0';
    for (int i = 0; i <= TRACE_CHECKPOINT_MAX_WITNESSES; i++) {
        snprintf(name, sizeof(name), "w%02d.example", i);
        assert_int_equal(trace_key_generate(&keys[i]), TRACE_OK);
        assert_int_equal(trace_checkpoint_cosign(cp, keys[i], name,
                                                 1700000000 + (uint64_t)i, line,
                                                 sizeof(line)),
                         TRACE_OK);
        assert_int_equal(trace_vkey_format(wvkey, sizeof(wvkey), name,
                                           trace_key_public(keys[i])),
                         TRACE_OK);
        /* the checkpoint's text and the witness's line alone */
        snprintf(mine, sizeof(mine), "%s\n%s", text, line);
        assert_int_equal(
            trace_checkpoint_add_cosig(f->l, mine, strlen(mine), wvkey),
            i < TRACE_CHECKPOINT_MAX_WITNESSES ? TRACE_OK : TRACE_EPERM);
    }
    assert_non_null(strstr(trace_error_last(), "the most stored"));
    /* served: the log's signature and every stored witness's, parsed */
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(cp, note, len), TRACE_OK);
    free(note);
    assert_int_equal(cp->n_sigs, TRACE_CHECKPOINT_MAX_WITNESSES + 1);
    /* the first witness again, later: its newer line replaces the older */
    assert_int_equal(trace_checkpoint_cosign(cp, keys[0], "w00.example",
                                             1800000000, line, sizeof(line)),
                     TRACE_OK);
    assert_int_equal(trace_vkey_format(wvkey, sizeof(wvkey), "w00.example",
                                       trace_key_public(keys[0])),
                     TRACE_OK);
    snprintf(mine, sizeof(mine), "%s\n%s", text, line);
    assert_int_equal(
        trace_checkpoint_add_cosig(f->l, mine, strlen(mine), wvkey), TRACE_OK);
    /* another key under a stored name: refused, the first one kept */
    assert_int_equal(trace_key_generate(&other), TRACE_OK);
    assert_int_equal(trace_checkpoint_cosign(cp, other, "w01.example",
                                             1800000000, line, sizeof(line)),
                     TRACE_OK);
    assert_int_equal(trace_vkey_format(wvkey, sizeof(wvkey), "w01.example",
                                       trace_key_public(other)),
                     TRACE_OK);
    snprintf(mine, sizeof(mine), "%s\n%s", text, line);
    assert_int_equal(
        trace_checkpoint_add_cosig(f->l, mine, strlen(mine), wvkey),
        TRACE_EEXIST);
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(cp, note, len), TRACE_OK);
    free(note);
    assert_int_equal(cp->n_sigs, TRACE_CHECKPOINT_MAX_WITNESSES + 1);
    {
        uint64_t t;
        assert_int_equal(trace_checkpoint_verify_cosig(
                             cp, "w00.example", trace_key_public(keys[0]), &t),
                         TRACE_OK);
        assert_int_equal(t, 1800000000);
        assert_int_equal(
            trace_checkpoint_verify_cosig(cp, "w01.example",
                                          trace_key_public(keys[1]), NULL),
            TRACE_OK);
        assert_int_equal(trace_checkpoint_verify_cosig(
                             cp, "w01.example", trace_key_public(other), NULL),
                         TRACE_EVERIFY);
    }
    /* the next checkpoint has room again */
    grow(f, cp->size + 1, &next);
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(cp, note, len), TRACE_OK);
    free(note);
    assert_int_equal(trace_checkpoint_cosign(cp, other, "w99.example",
                                             1800000000, line, sizeof(line)),
                     TRACE_OK);
    assert_int_equal(trace_vkey_format(wvkey, sizeof(wvkey), "w99.example",
                                       trace_key_public(other)),
                     TRACE_OK);
    memcpy(text, cp->text, cp->text_len);
    text[cp->text_len] = '\0';
    snprintf(mine, sizeof(mine), "%s\n%s", text, line);
    assert_int_equal(
        trace_checkpoint_add_cosig(f->l, mine, strlen(mine), wvkey), TRACE_OK);
    for (int i = 0; i <= TRACE_CHECKPOINT_MAX_WITNESSES; i++)
        trace_key_free(keys[i]);
    trace_key_free(other);
    free(cp);
}

/* verify recomputes the tree: a changed stored subtree or checkpoint is
 * named, a checkpoint of another key too; an intact ledger counts its
 * checkpoints. */
static void test_verify_tree(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_verify_result res;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t key[9] = {4, 0, 0, 0, 0, 0, 0, 0, 1}, hash[32];
    MDB_val k = {9, key}, v;
    char *note;
    size_t len;
    int next = 0;

    assert_int_equal(
        fixture_import(f, party_p1, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    grow(f, 60, &next);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    assert_true(res.checkpoints >= 10);
    /* an outside checkpoint the journal holds; then one it does not */
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(
        trace_ledger_verify_checkpoint(f->l, &res, note, len, NULL, NULL, NULL),
        TRACE_OK);
    char *nl = strchr(strchr(note, '\n') + 1, '\n') + 1;
    nl[0] = nl[0] == 'A' ? 'B' : 'A';
    assert_int_equal(
        trace_ledger_verify_checkpoint(f->l, &res, note, len, NULL, NULL, NULL),
        TRACE_EVERIFY);
    free(note);
    /* the second height-4 subtree (leaves 16..31) changed */
    raw_begin(f, "tree", &env, &txn, &dbi);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    memcpy(hash, v.mv_data, 32);
    hash[0] ^= 1;
    v = (MDB_val){32, hash};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_end(f, env, txn);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                     TRACE_EVERIFY);
    assert_int_equal(res.bad_seq, 32);
    assert_non_null(strstr(res.reason, "Merkle subtree of height 4"));
    hash[0] ^= 1;
    raw_begin(f, "tree", &env, &txn, &dbi);
    v = (MDB_val){32, hash};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    raw_end(f, env, txn);
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    /* one commit of 64 entries: verify takes its 16-leaf subtrees whole
     * (no checkpoint inside them); a changed one is still named at the
     * entry that ends it */
    {
        uint64_t size;
        uint8_t head[32];
        char *lines = produce_lines(next, 64);
        next += 64;
        assert_int_equal(fixture_import(f, lines, 0, &r), TRACE_OK);
        free(lines);
        assert_int_equal(trace_ledger_head(f->l, &size, head), TRACE_OK);
        uint64_t blk = (size - 17) / 16; /* a block inside the commit */
        key[8] = (uint8_t)blk;
        key[7] = (uint8_t)(blk >> 8);
        raw_begin(f, "tree", &env, &txn, &dbi);
        assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
        memcpy(hash, v.mv_data, 32);
        hash[5] ^= 1;
        v = (MDB_val){32, hash};
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        raw_end(f, env, txn);
        assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                         TRACE_EVERIFY);
        assert_int_equal(res.bad_seq, (blk + 1) * 16);
        hash[5] ^= 1;
        raw_begin(f, "tree", &env, &txn, &dbi);
        v = (MDB_val){32, hash};
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        raw_end(f, env, txn);
        assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL), TRACE_OK);
    }
    /* a stored checkpoint's root changed (and so its signature) */
    {
        uint8_t kb[8];
        MDB_val ck = {8, kb};
        char buf[1024];
        be64_put(kb, 1);
        raw_begin(f, "ckpt", &env, &txn, &dbi);
        assert_int_equal(mdb_get(txn, dbi, &ck, &v), 0);
        assert_true(v.mv_size < sizeof(buf));
        memcpy(buf, v.mv_data, v.mv_size);
        char *root = strchr(strchr(buf, '\n') + 1, '\n') + 1;
        root[0] = root[0] == 'A' ? 'B' : 'A';
        v.mv_data = buf;
        assert_int_equal(mdb_put(txn, dbi, &ck, &v, 0), 0);
        raw_end(f, env, txn);
    }
    assert_int_equal(trace_ledger_verify(f->l, &res, NULL, NULL),
                     TRACE_EVERIFY);
    assert_int_equal(res.bad_seq, 1);
    assert_non_null(strstr(res.reason, "checkpoint of 1 entries"));
}

/* A daemon configured with another log key than the folder's: the
 * checkpoints of both keys verify; one signed by neither does not. */
static void test_two_log_keys(void **state)
{
    fixture *f = *state;
    trace_append_result r;
    trace_verify_result res;
    trace_key *other;
    int next = 0;

    assert_int_equal(
        fixture_import(f, party_p1, TRACE_APPEND_PROVISION_KEYS, &r), TRACE_OK);
    grow(f, 20, &next);
    assert_int_equal(trace_key_generate(&other), TRACE_OK);
    trace_ledger_set_checkpoint_key(f->l, other);
    grow(f, 40, &next);
    if (trace_ledger_verify(f->l, &res, NULL, NULL) != TRACE_OK)
        fail_msg("verify: %s", res.reason);
    assert_true(res.checkpoints >= 4);
    trace_ledger_set_checkpoint_key(f->l, NULL);
    trace_ledger_close(f->l);
    f->l = NULL;
    assert_int_equal(trace_ledger_open(&f->l, f->dir), TRACE_OK);
    trace_key_free(other);
}

/* Malformed notes are refused, never read past their end. */
static void test_note_parse(void **state)
{
    static const char *const bad[] = {
        "",
        "origin\n1\n",
        "origin\n1\nAAAA\n\n",
        "origin\nx\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
        "\xe2\x80\x94 origin AAAAAAAA\n",
        "origin\n01\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
        "\xe2\x80\x94 origin AAAAAAAA\n",
        "origin\n1\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
        "- origin AAAAAAAA\n",
        "origin\n1\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
        "\xe2\x80\x94 origin AAAAAAAA",
        "or igin\n1\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
        "\xe2\x80\x94 origin AAAAAAAA\n",
    };
    trace_checkpoint cp;
    char name[64];
    uint8_t pub[32];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(trace_checkpoint_parse(&cp, bad[i], strlen(bad[i])),
                         TRACE_EINVAL);
    assert_int_equal(
        trace_vkey_parse("name+00000000+AQ==", name, sizeof(name), pub),
        TRACE_EINVAL);
    assert_int_equal(trace_vkey_parse("nokey", name, sizeof(name), pub),
                     TRACE_EINVAL);
}

/* A ledger written before the tree gets it at its next append. */
static void test_old_ledger(void **state)
{
    char dir[] = "/tmp/trace-merkle-old-XXXXXX", cmd[512];
    trace_ledger *l;
    trace_keyring *ring;
    trace_batch *b;
    trace_append_result r;
    uint8_t head[32], root[32], want[32];
    uint64_t size;
    MDB_txn *txn;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "cp -r %s/ledger-v1/. %s/", TRACE_TEST_DATA,
             dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(trace_ledger_open(&l, dir), TRACE_OK);
    snprintf(cmd, sizeof(cmd), "%s/keys", dir);
    assert_int_equal(trace_keyring_open(&ring, cmd, 0), TRACE_OK);
    assert_int_equal(trace_ledger_head(l, &size, head), TRACE_OK);
    assert_int_equal(trace_batch_new(&b, l), TRACE_OK);
    const char *line =
        "{\"type\":\"party\",\"id\":\"merkle-new\",\"party\":\"REGULATOR\","
        "\"at\":\"2026-03-05T09:00:00+08:00\",\"subject\":\"PX9\",\"name\":"
        "\"X\",\"kind\":\"manufacturer\",\"region\":\"CN-31\",\"licenses\":[]}";
    assert_int_equal(trace_batch_add_json(b, line, strlen(line), 1), TRACE_OK);
    if (trace_ledger_append(l, b, ring, NULL, 0, &r) != TRACE_OK)
        fail_msg("append to the old ledger: %s", trace_error_last());
    trace_batch_free(b);
    /* the stored tree of size+1 equals the one from the journal */
    uint8_t(*leaves)[32] = calloc(size + 1, 32);
    assert_int_equal(ledger_txn_begin(l, MDB_RDONLY, &txn), 0);
    for (uint64_t i = 0; i <= size; i++) {
        uint8_t kb[8];
        MDB_val k = {8, kb}, v;
        be64_put(kb, i + 1);
        assert_int_equal(mdb_get(txn, l->dbi_journal, &k, &v), 0);
        leaf_hash(leaves[i], v.mv_data, v.mv_size);
    }
    mth(leaves, 0, size + 1, want);
    assert_int_equal(tree_root(txn, l, size + 1, root), TRACE_OK);
    assert_memory_equal(root, want, 32);
    if (size >= 16) {
        uint8_t key[9] = {4, 0, 0, 0, 0, 0, 0, 0, 0};
        MDB_val k = {9, key}, v;
        assert_int_equal(mdb_get(txn, l->dbi_tree, &k, &v), 0);
    }
    ledger_txn_abort(l, txn);
    free(leaves);
    trace_keyring_free(ring);
    trace_ledger_close(l);
    rm_tree(dir);
}

/* Receipts: every entry of a small write proven, the first and last of
 * a large one; the bundle of several commits checks, out of order it
 * does not; the events sent match; another log key signs checkpoints
 * once set. */
static void check_leaves(fixture *f, const trace_receipt *rc)
{
    trace_checkpoint cp;

    (void)f;
    assert_int_equal(
        trace_checkpoint_parse(&cp, rc->checkpoint, rc->checkpoint_len),
        TRACE_OK);
    assert_true(cp.size >= rc->last_seq);
    for (size_t i = 0; i < rc->n_leaves; i++) {
        const trace_receipt_leaf *lf = &rc->leaves[i];
        uint8_t h[32];
        leaf_hash(h, lf->entry, lf->entry_len);
        assert_memory_equal(h, lf->leaf_hash, 32);
        assert_true(trace_merkle_verify_inclusion(lf->leaf_index, cp.size,
                                                  lf->leaf_hash, lf->proof,
                                                  lf->n_proof, cp.root));
    }
}

static void test_receipts(void **state)
{
    fixture *f = *state;
    trace_append_result r1, r2;
    trace_receipt *a = NULL, *b = NULL, *none = NULL;
    trace_receipt parts[2];
    trace_key *other;
    trace_checkpoint cp;
    char vkey[256], summary[512], *json, *note, name[256];
    const uint8_t *ev[5];
    size_t evl[5], len;
    uint8_t pub[32];
    Trace__V1__Entry *e[5];
    int next = 0;

    assert_int_equal(
        fixture_import(f, party_p1, TRACE_APPEND_PROVISION_KEYS, &r1),
        TRACE_OK);
    grow(f, 30, &next);
    /* a write of 5: each entry */
    {
        char *lines = produce_lines(1000, 5);
        assert_int_equal(fixture_import(f, lines, 0, &r1), TRACE_OK);
        free(lines);
    }
    assert_int_equal(r1.last_seq - r1.first_seq, 4);
    assert_int_equal(trace_receipt_get(f->l, r1.first_seq, r1.last_seq, &a),
                     TRACE_OK);
    assert_int_equal(a->n_leaves, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(a->leaves[i].leaf_index, r1.first_seq - 1 + i);
    check_leaves(f, a);
    /* the events it sent, in order: matched; one changed or missing: not */
    for (size_t i = 0; i < 5; i++) {
        e[i] = trace__v1__entry__unpack(NULL, a->leaves[i].entry_len,
                                        a->leaves[i].entry);
        assert_non_null(e[i]);
        ev[i] = e[i]->event.data;
        evl[i] = e[i]->event.len;
    }
    assert_int_equal(trace_receipt_match(a, ev, evl, 5), TRACE_OK);
    assert_int_equal(trace_receipt_match(a, ev + 1, evl + 1, 4), TRACE_EVERIFY);
    {
        const uint8_t *sw[5] = {ev[1], ev[0], ev[2], ev[3], ev[4]};
        size_t swl[5] = {evl[1], evl[0], evl[2], evl[3], evl[4]};
        assert_int_equal(trace_receipt_match(a, sw, swl, 5), TRACE_EVERIFY);
    }
    /* a write of 100: its first and last */
    {
        char *lines = produce_lines(2000, 100);
        assert_int_equal(fixture_import(f, lines, 0, &r2), TRACE_OK);
        free(lines);
    }
    assert_int_equal(trace_receipt_get(f->l, r2.first_seq, r2.last_seq, &b),
                     TRACE_OK);
    assert_int_equal(b->n_leaves, 2);
    assert_int_equal(b->leaves[0].leaf_index, r2.first_seq - 1);
    assert_int_equal(b->leaves[1].leaf_index, r2.last_seq - 1);
    check_leaves(f, b);
    /* both as the receipt of one write: each against its own checkpoint */
    assert_int_equal(trace_checkpoint_vkey(f->l, vkey, sizeof(vkey)), TRACE_OK);
    parts[0] = *a;
    parts[1] = *b;
    assert_int_equal(trace_receipt_json(parts, 2, &json, &len), TRACE_OK);
    assert_int_equal(trace_check_bundle(json, len, vkey, NULL, 0, 0, summary,
                                        sizeof(summary)),
                     TRACE_OK);
    assert_non_null(strstr(summary, "receipt of 105 entries"));
    assert_non_null(strstr(summary, "in 2 commits; 7 inclusion proofs"));
    free(json);
    /* out of order: refused */
    parts[0] = *b;
    parts[1] = *a;
    assert_int_equal(trace_receipt_json(parts, 2, &json, &len), TRACE_OK);
    assert_int_equal(trace_check_bundle(json, len, vkey, NULL, 0, 0, summary,
                                        sizeof(summary)),
                     TRACE_EVERIFY);
    assert_non_null(strstr(trace_error_last(), "larger than the last"));
    free(json);
    /* the same commit twice */
    parts[0] = parts[1] = *b;
    assert_int_equal(trace_receipt_json(parts, 2, &json, &len), TRACE_OK);
    assert_int_equal(trace_check_bundle(json, len, vkey, NULL, 0, 0, summary,
                                        sizeof(summary)),
                     TRACE_EVERIFY);
    assert_non_null(strstr(trace_error_last(), "out of order"));
    free(json);
    /* bad ranges; nothing appended; a range no checkpoint covers */
    assert_int_equal(trace_receipt_get(f->l, 5, 3, &none), TRACE_EINVAL);
    assert_int_equal(trace_receipt_get(f->l, 0, 3, &none), TRACE_EINVAL);
    assert_null(none);
    assert_int_equal(trace_receipt_get(f->l, 0, 0, &none), TRACE_OK);
    assert_int_equal(none->n_leaves, 0);
    assert_int_equal(trace_receipt_json(none, 1, &json, &len), TRACE_ENOTFOUND);
    {
        trace_receipt *x = NULL;
        assert_int_equal(
            trace_receipt_get(f->l, r2.last_seq + 1, r2.last_seq + 1, &x),
            TRACE_ENOTFOUND);
        assert_null(x);
    }
    trace_receipt_free(NULL);
    /* another log key, once set, signs the next commit's checkpoint */
    assert_int_equal(trace_key_generate(&other), TRACE_OK);
    trace_ledger_set_checkpoint_key(f->l, other);
    grow(f, r2.last_seq + 1, &next);
    assert_int_equal(trace_checkpoint_note(f->l, 0, &note, &len), TRACE_OK);
    assert_int_equal(trace_checkpoint_parse(&cp, note, len), TRACE_OK);
    free(note);
    assert_int_equal(trace_checkpoint_vkey(f->l, vkey, sizeof(vkey)), TRACE_OK);
    assert_int_equal(trace_vkey_parse(vkey, name, sizeof(name), pub), TRACE_OK);
    assert_memory_equal(pub, trace_key_public(other), 32);
    assert_int_equal(trace_checkpoint_verify(&cp, name, pub), TRACE_OK);
    trace_ledger_close(f->l); /* before the key it borrows */
    f->l = NULL;
    trace_key_free(other);
    for (size_t i = 0; i < 5; i++)
        trace__v1__entry__free_unpacked(e[i], NULL);
    trace_receipt_free(a);
    trace_receipt_free(b);
    trace_receipt_free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_note_parse),
        cmocka_unit_test_setup_teardown(test_tree, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_cosig_limits, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_verify_tree, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_two_log_keys, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_receipts, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_old_ledger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
