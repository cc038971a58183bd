/* SPDX-License-Identifier: Apache-2.0 */
/*
 * access.c - what a daemon needs to authenticate and authorise a
 * request: who owns a key, what a party is, and which lots it held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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
/* the scopes of control classes (the first three names) */
#define SCOPE_CLASSES (TRACE_SCOPE_PC | TRACE_SCOPE_NARC | TRACE_SCOPE_PSY)

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

/* The JSON object of the stored event `party`/`id`, or of the permit
 * `id` (party NULL); NULL if there is none. */
static json_t *stored_event(MDB_txn *txn, trace_ledger *l, arena *a,
                            const char *party, const char *id)
{
    uint8_t key[KEY_MAX];
    MDB_val k, v;
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    char *text = NULL;
    size_t len = 0;
    json_t *j;

    if (!id)
        return NULL;
    if (party) {
        k.mv_size = compose_key(key, sizeof(key), party, id, strlen(id));
        k.mv_data = key;
        if (!k.mv_size)
            return NULL;
    } else {
        k.mv_size = strlen(id);
        k.mv_data = (void *)id;
    }
    if (!k.mv_size ||
        (party ? bulk_find_id(l, txn, &k, &v)
               : mdb_get(txn, l->dbi_permits, &k, &v)) != 0 ||
        v.mv_size != 8 ||
        entry_get(txn, l, a, be64_get(v.mv_data), &e) != TRACE_OK ||
        !(ev = event_decode(a, e->event.data, e->event.len)) ||
        event_to_json(&text, &len, ev, l) != TRACE_OK)
        return NULL;
    j = json_loadb(text, len, 0, NULL);
    free(text);
    return j;
}

static int object_in_scope(MDB_txn *txn, trace_ledger *l, arena *a,
                           unsigned scopes, const json_t *o, int depth);

/* 1 if the event object `o` is an import or export (a permit: an
 * import_license or export_license) within the customs scopes of
 * `scopes`. */
static int customs_in_scope(unsigned scopes, const json_t *o)
{
    const char *t = json_string_value(json_object_get(o, "type"));

    if (t && strcmp(t, "permit") == 0)
        t = json_string_value(json_object_get(o, "kind"));
    if (!t)
        return 0;
    return ((scopes & TRACE_SCOPE_IMPORT) &&
            (strcmp(t, "import") == 0 || strcmp(t, "import_license") == 0)) ||
           ((scopes & TRACE_SCOPE_EXPORT) &&
            (strcmp(t, "export") == 0 || strcmp(t, "export_license") == 0));
}

/* 1 if the stored alert object `al` is within scopes (see
 * trace_alert_in_scope). */
int alert_in_scope(MDB_txn *txn, trace_ledger *l, arena *a, unsigned scopes,
                   const json_t *al, int depth)
{
    const char *sub = json_string_value(json_object_get(al, "substance"));
    const json_t *evs = json_object_get(al, "events"), *ref;
    size_t i;

    if (!scopes)
        return 1;
    if (sub && sub[0] && (scopes & SCOPE_CLASSES) &&
        trace_in_scope(l, scopes & SCOPE_CLASSES, NULL, sub))
        return 1;
    if (depth > 1)
        return 0;
    json_array_foreach(evs, i, ref)
    {
        json_t *ev = stored_event(
            txn, l, a, json_string_value(json_object_get(ref, "party")),
            json_string_value(json_object_get(ref, "id")));
        int in;
        if (!ev)
            continue; /* a journal entry (CHAIN_BROKEN), or not stored */
        /* about a substance: customs by the evidence's types; about none:
         * as its evidence */
        in = sub && sub[0] ? customs_in_scope(scopes, ev)
                           : object_in_scope(txn, l, a, scopes, ev, depth + 1);
        json_decref(ev);
        if (in)
            return 1;
    }
    return 0;
}

/* 1 if the event object `o` is about something within scopes: its type
 * (a permit's kind) and substance, or what it names (the permit of a
 * permit_status, the application of an application_decision, the alert
 * of an alert_ack, the event a correction corrects or its replacement). */
static int object_in_scope(MDB_txn *txn, trace_ledger *l, arena *a,
                           unsigned scopes, const json_t *o, int depth)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *party = json_string_value(json_object_get(o, "party"));
    json_t *named = NULL;
    int in = 0;

    if (!type)
        return trace_in_scope(
            l, scopes, NULL,
            json_string_value(json_object_get(o, "substance")));
    if (strcmp(type, "permit") == 0)
        return trace_in_scope(
            l, scopes, json_string_value(json_object_get(o, "kind")),
            json_string_value(json_object_get(o, "substance")));
    if (strcmp(type, "permit_status") == 0) {
        named = stored_event(txn, l, a, NULL,
                             json_string_value(json_object_get(o, "permit")));
    } else if (strcmp(type, "application_decision") == 0) {
        const json_t *ar = json_object_get(o, "application");
        named = stored_event(txn, l, a,
                             json_string_value(json_object_get(ar, "party")),
                             json_string_value(json_object_get(ar, "id")));
    } else if (strcmp(type, "alert_ack") == 0) {
        const char *alert = json_string_value(json_object_get(o, "alert"));
        MDB_val k = {alert ? strlen(alert) : 0, (void *)alert}, v;
        if (alert && k.mv_size && mdb_get(txn, l->dbi_alerts, &k, &v) == 0 &&
            (named = json_loadb(v.mv_data, v.mv_size, 0, NULL)))
            in = alert_in_scope(txn, l, a, scopes, named, depth + 1);
        json_decref(named);
        return in;
    } else if (strcmp(type, "correction") == 0) {
        const json_t *rep = json_object_get(o, "replacement");
        if (json_is_object(rep) && depth == 0 &&
            object_in_scope(txn, l, a, scopes, rep, depth + 1))
            return 1;
        named = party ? stored_event(
                            txn, l, a, party,
                            json_string_value(json_object_get(o, "corrects")))
                      : NULL;
    } else {
        return trace_in_scope(
            l, scopes, type,
            json_string_value(json_object_get(o, "substance")));
    }
    /* what it names, when it is stored: else nothing of a department's */
    in = named && depth == 0 &&
         object_in_scope(txn, l, a, scopes, named, depth + 1);
    json_decref(named);
    return in;
}

/* judge(the JSON object) in a read transaction of its own; 0 for text
 * that is not a JSON object. */
static int json_in_scope(trace_ledger *l, unsigned scopes, const char *json,
                         size_t len,
                         int (*judge)(MDB_txn *, trace_ledger *, arena *,
                                      unsigned, const json_t *, int))
{
    json_t *j;
    MDB_txn *txn;
    arena *a;
    int in = 0;

    if (!scopes)
        return 1;
    if (!json || !(j = json_loadb(json, len, 0, NULL)))
        return 0;
    if (!json_is_object(j) || !(a = arena_new(0))) {
        json_decref(j);
        return 0;
    }
    if (ledger_txn_begin(l, MDB_RDONLY, &txn) == 0) {
        in = judge(txn, l, a, scopes, j, 0);
        ledger_txn_abort(l, txn);
    }
    arena_free(a);
    json_decref(j);
    return in;
}

int trace_event_in_scope(trace_ledger *l, unsigned scopes, const char *json,
                         size_t len)
{
    return json_in_scope(l, scopes, json, len, object_in_scope);
}

int trace_alert_in_scope(trace_ledger *l, unsigned scopes, const char *json,
                         size_t len)
{
    return json_in_scope(l, scopes, json, len, alert_in_scope);
}
