/* SPDX-License-Identifier: Apache-2.0 */
/*
 * access.c - what a daemon needs to authenticate and authorise a
 * request: who owns a key, what a party is, and which lots it held.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "trace/query.h"

int trace_key_owner(trace_ledger *l, const uint8_t key_id[TRACE_KEY_ID_LEN],
                    char *party, size_t cap, uint8_t pub[TRACE_PUBKEY_LEN])
{
    MDB_txn *txn;
    MDB_val k = {TRACE_KEY_ID_LEN, (void *)key_id}, v;
    const char *p;
    size_t plen;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = mdb_get(txn, l->dbi_keys, &k, &v);
    if (rc == MDB_NOTFOUND) {
        ledger_txn_abort(l, txn);
        return trace_fail(TRACE_ENOTFOUND, "unknown key");
    }
    if (rc) {
        ledger_txn_abort(l, txn);
        return trace_fail_mdb(rc, "keys");
    }
    p = v.mv_data;
    plen = strnlen(p, v.mv_size);
    if (plen + 1 + TRACE_PUBKEY_LEN != v.mv_size || plen + 1 > cap) {
        ledger_txn_abort(l, txn);
        return trace_fail(TRACE_EVERIFY, "key record is damaged");
    }
    memcpy(party, p, plen + 1);
    memcpy(pub, p + plen + 1, TRACE_PUBKEY_LEN);
    ledger_txn_abort(l, txn);
    return TRACE_OK;
}

int trace_party_info(trace_ledger *l, const char *party, trace_party *out)
{
    Trace__V1__PartyState *st;
    MDB_txn *txn;
    arena *a;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!(a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        arena_free(a);
        return trace_fail_mdb(rc, "begin");
    }
    rc = party_state_get(txn, l, a, party, &st);
    if (rc == TRACE_OK) {
        const Trace__V1__PartyBody *b = st->body;
        snprintf(out->kind, sizeof(out->kind), "%s", b->kind ? b->kind : "");
        out->suspended = b->status && strcmp(b->status, "suspended") == 0;
        out->regulator = strcmp(out->kind, "regulator") == 0 &&
                         !out->suspended &&
                         (strcmp(b->subject, l->regulator) == 0 ||
                          (st->registered_by &&
                           strcmp(st->registered_by, l->regulator) == 0));
        out->n_keys = st->n_keys;
        out->scopes = party_scopes(l, st);
    }
    ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}

int trace_party_name(trace_ledger *l, const char *party, char *buf, size_t cap)
{
    Trace__V1__PartyState *st;
    MDB_txn *txn;
    arena *a;
    int rc;

    if (cap)
        buf[0] = '\0';
    if (!(a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        arena_free(a);
        return trace_fail_mdb(rc, "begin");
    }
    rc = party_state_get(txn, l, a, party, &st);
    if (rc == TRACE_OK && cap) {
        size_t n = strlen(st->body->name);
        if (n >= cap) {
            n = cap - 1;
            /* not inside a UTF-8 sequence */
            while (n > 0 && ((unsigned char)st->body->name[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(buf, st->body->name, n);
        buf[n] = '\0';
    }
    ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}

int trace_lot_held(trace_ledger *l, const char *lot, const char *party)
{
    uint8_t key[KEY_MAX];
    size_t klen = compose_key(key, sizeof(key), lot, party, strlen(party));
    MDB_val k = {klen, key}, v;
    MDB_txn *txn;
    int rc;

    if (!klen)
        return 0;
    if (ledger_txn_begin(l, MDB_RDONLY, &txn))
        return 0;
    rc = mdb_get(txn, l->dbi_lots, &k, &v);
    ledger_txn_abort(l, txn);
    return rc == 0;
}

int trace_parties(trace_ledger *l, const char *kind, trace_party_row_fn fn,
                  void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    arena *a;
    int rc;

    if (!(a = arena_new(0)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn))) {
        arena_free(a);
        return trace_fail_mdb(rc, "begin");
    }
    if ((rc = mdb_cursor_open(txn, l->dbi_parties, &cur))) {
        rc = trace_fail_mdb(rc, "parties");
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Trace__V1__PartyState *st;
        const Trace__V1__PartyBody *b;
        trace_party_row row;
        int frc;

        arena_reset(a);
        st = trace__v1__party_state__unpack(arena_allocator(a), v.mv_size,
                                            v.mv_data);
        if (!st || !st->body) {
            rc = trace_fail(TRACE_EVERIFY, "state of party %.*s is damaged",
                            (int)(k.mv_size > 64 ? 64 : k.mv_size),
                            (const char *)k.mv_data);
            goto out;
        }
        b = st->body;
        if (kind && strcmp(b->kind, kind) != 0)
            continue;
        row.party = b->subject;
        row.name = b->name;
        row.kind = b->kind;
        row.region = b->region;
        row.n_licenses = b->n_licenses;
        row.licenses = (const char *const *)b->licenses;
        row.status = b->status && strcmp(b->status, "suspended") == 0
                         ? "suspended"
                         : "active";
        row.n_keys = st->n_keys;
        row.registered_by = st->registered_by;
        row.gln = b->gln;
        row.n_sites = 0;
        row.sites = NULL;
        if (b->n_sites) {
            struct trace_party_site *ps =
                arena_alloc(a, b->n_sites * sizeof(*ps));
            if (!ps) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < b->n_sites; i++) {
                ps[i].site = b->sites[i]->site;
                ps[i].sgln = b->sites[i]->sgln;
            }
            row.n_sites = b->n_sites;
            row.sites = ps;
        }
        if ((frc = fn(&row, ctx)) != 0) {
            rc = frc;
            goto out;
        }
    }
    rc = rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "parties");
out:
    if (cur)
        mdb_cursor_close(cur);
    ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}

int trace_permit_ids(trace_ledger *l, int (*fn)(const char *permit, void *ctx),
                     void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    char id[512];
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    if ((rc = mdb_cursor_open(txn, l->dbi_permits, &cur))) {
        rc = trace_fail_mdb(rc, "permits");
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int frc;
        if (k.mv_size >= sizeof(id))
            continue;
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        if ((frc = fn(id, ctx)) != 0) {
            rc = frc;
            goto out;
        }
    }
    rc = rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "permits");
out:
    if (cur)
        mdb_cursor_close(cur);
    ledger_txn_abort(l, txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Departments                                                          */

static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {
    {"CN-PC", TRACE_SCOPE_PC},      {"CN-NARC", TRACE_SCOPE_NARC},
    {"CN-PSY", TRACE_SCOPE_PSY},    {"import", TRACE_SCOPE_IMPORT},
    {"export", TRACE_SCOPE_EXPORT},
};
#define N_SCOPE_NAMES (sizeof(scope_names) / sizeof(*scope_names))

unsigned trace_scope_mask(const char *const *names, size_t n)
{
    unsigned m = 0;

    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; names[i] && j < N_SCOPE_NAMES; j++)
            if (strcmp(names[i], scope_names[j].name) == 0)
                m |= scope_names[j].bit;
    return m;
}

void trace_scope_names(unsigned scopes, char *buf, size_t cap)
{
    size_t used = 0;

    if (cap)
        buf[0] = '\0';
    for (size_t j = 0; j < N_SCOPE_NAMES && used < cap; j++)
        if (scopes & scope_names[j].bit) {
            int n = snprintf(buf + used, cap - used, "%s%s", used ? "," : "",
                             scope_names[j].name);
            if (n < 0)
                break;
            used += (size_t)n;
        }
}

unsigned party_scopes(const trace_ledger *l, const Trace__V1__PartyState *st)
{
    const Trace__V1__PartyBody *b = st->body;

    if (!b || strcmp(b->kind, "regulator") != 0 ||
        strcmp(b->subject, l->regulator) == 0)
        return 0;
    return trace_scope_mask((const char *const *)b->scopes, b->n_scopes);
}

/* 1 if the control class `cls` (CN-PC-1, CN-NARC, ...) is of department
 * `dept` (CN-PC ...): equal to it or a category of it. */
static int class_of(const char *cls, const char *dept)
{
    size_t n = strlen(dept);
    return strncmp(cls, dept, n) == 0 && (cls[n] == '\0' || cls[n] == '-');
}

int trace_in_scope(const trace_ledger *l, unsigned scopes, const char *type,
                   const char *substance)
{
    const subst_info *s;

    if (!scopes)
        return 1;
    if (type &&
        ((scopes & TRACE_SCOPE_IMPORT) &&
         (strcmp(type, "import") == 0 || strcmp(type, "import_license") == 0)))
        return 1;
    if (type &&
        ((scopes & TRACE_SCOPE_EXPORT) &&
         (strcmp(type, "export") == 0 || strcmp(type, "export_license") == 0)))
        return 1;
    if (!substance || !substance[0])
        return !type ||
               (strcmp(type, "import") != 0 && strcmp(type, "export") != 0 &&
                strcmp(type, "import_license") != 0 &&
                strcmp(type, "export_license") != 0);
    if (!(s = catalog_find(l->cat, substance)))
        return 0;
    for (size_t i = 0; i < s->n_scopes; i++)
        for (size_t j = 0; j < 3; j++) /* the control classes */
            if ((scopes & scope_names[j].bit) &&
                class_of(s->scopes[i], scope_names[j].name))
                return 1;
    return 0;
}
