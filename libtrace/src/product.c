/* SPDX-License-Identifier: Apache-2.0 */
/*
 * product.c - the product master (SPEC 11): GTIN -> product, and what a
 * movement named by GTIN and packs amounts to in its substance.
 *
 * Index (kept in the append transaction, like state.c's):
 *
 *   products  gtin (14 digits) -> u64be seq || registrar \0 || ProductBody
 *             the `product` event in force for the GTIN (the latest, at
 *             entry seq) and the party that first registered it; it is
 *             replaced only by that party or a regulator
 *
 * Added after the first ledgers were made: created like the other late
 * databases (ledger.c), and as no earlier version could record a product
 * it is complete whenever it exists.  While its handle is 0 (an older
 * ledger opened while another process writes) look-ups find nothing.
 *
 * Conversion: packs x units_per_pack x content, in the content's unit,
 * with checked arithmetic; a movement so named stores the result as its
 * substance and qty beside the gtin and packs as written, so stock,
 * rules and queries read substance quantities only.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "trace/query.h"

static int product_decode(arena *a, const MDB_val *v,
                          Trace__V1__ProductBody **out, uint64_t *seq,
                          const char **registrar)
{
    const uint8_t *b = v->mv_data;
    Trace__V1__ProductBody *p;
    size_t rlen;

    if (v->mv_size < 9 ||
        (rlen = strnlen((const char *)b + 8, v->mv_size - 8)) == v->mv_size - 8)
        return trace_fail(TRACE_EVERIFY, "product record is damaged");
    p = trace__v1__product_body__unpack(arena_allocator(a),
                                        v->mv_size - 9 - rlen, b + 9 + rlen);
    if (!p || !p->content || !p->content->qty)
        return trace_fail(TRACE_EVERIFY, "product record is damaged");
    if (seq)
        *seq = be64_get(b);
    if (registrar && !(*registrar = arena_strdup(a, (const char *)b + 8, rlen)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    *out = p;
    return TRACE_OK;
}

int product_get(MDB_txn *txn, const trace_ledger *l, arena *a, const char *gtin,
                Trace__V1__ProductBody **out, uint64_t *seq,
                const char **registrar)
{
    MDB_val k = {strlen(gtin), (void *)gtin}, v;
    int rc;

    if (!l->dbi_products)
        return TRACE_ENOTFOUND;
    rc = mdb_get(txn, l->dbi_products, &k, &v);
    if (rc == MDB_NOTFOUND)
        return TRACE_ENOTFOUND;
    if (rc)
        return trace_fail_mdb(rc, "products");
    return product_decode(a, &v, out, seq, registrar);
}

int product_find(const trace_ledger *cl, arena *a, const char *gtin,
                 Trace__V1__ProductBody **out)
{
    trace_ledger *l = (trace_ledger *)cl; /* counts the read transaction */
    MDB_txn *txn;
    int rc;

    if ((rc = ledger_txn_begin(l, MDB_RDONLY, &txn)))
        return trace_fail_mdb(rc, "begin");
    rc = product_get(txn, l, a, gtin, out, NULL, NULL);
    ledger_txn_abort(l, txn);
    return rc;
}

int product_amount(const Trace__V1__ProductBody *p, uint64_t packs,
                   int64_t *out)
{
    int64_t n;

    if (__builtin_mul_overflow((int64_t)packs, (int64_t)p->units_per_pack,
                               &n) ||
        __builtin_mul_overflow(n, p->content->qty->amount, out))
        return trace_fail(TRACE_EINVAL, "quantity overflow: %llu packs of %s",
                          (unsigned long long)packs, p->gtin);
    return TRACE_OK;
}

/* Recorded by a regulator, or a manufacturer registering its own
 * products; a registered GTIN is changed by its registrar or a
 * regulator only. */
int product_apply(MDB_txn *txn, const trace_ledger *l, arena *tmp,
                  const Trace__V1__Event *ev, uint64_t seq)
{
    const Trace__V1__ProductBody *p = ev->product_body;
    Trace__V1__PartyState *st;
    Trace__V1__ProductBody *old;
    const subst_info *sub;
    const char *registrar = ev->party;
    dimension d;
    uint8_t *val;
    size_t len, rlen;
    MDB_val k, v;
    int rc, regulator;

    if (!l->dbi_products)
        return trace_fail(TRACE_EUNAVAIL, "the products index is missing");
    if (!gs1_key_valid(p->gtin, 14))
        return trace_fail(TRACE_EINVAL,
                          "gtin %.40s is not 14 digits with a "
                          "valid GS1 check digit",
                          p->gtin);
    if (!(sub = catalog_find(l->cat, p->substance)))
        return trace_fail(TRACE_EINVAL, "product %s: unknown substance %.64s",
                          p->gtin, p->substance);
    if (!p->content || !p->content->qty ||
        unit_lookup(p->content->qty->unit, &d, NULL) != TRACE_OK ||
        p->content->qty->amount <= 0)
        return trace_fail(TRACE_EINVAL,
                          "product %s: content needs a "
                          "quantity and unit",
                          p->gtin);
    if (d != sub->dim)
        return trace_fail(TRACE_EINVAL,
                          "product %s: content in %s, a %s unit, but %s is "
                          "measured by %s",
                          p->gtin, p->content->qty->unit, dimension_name(d),
                          sub->code, dimension_name(sub->dim));
    if (p->units_per_pack == 0)
        return trace_fail(TRACE_EINVAL,
                          "product %s: units_per_pack must be "
                          "at least 1",
                          p->gtin);
    rc = party_state_get(txn, l, tmp, ev->party, &st);
    if (rc == TRACE_ENOTFOUND)
        return trace_fail(TRACE_EPERM, "%s is not a registered party",
                          ev->party);
    if (rc != TRACE_OK)
        return rc;
    regulator = party_is_regulator(l, st);
    if (!regulator && strcmp(st->body->kind, "manufacturer") != 0)
        return trace_fail(TRACE_EPERM,
                          "products are registered by a regulator or their "
                          "manufacturer; %s is a %s",
                          ev->party, st->body->kind);
    rc = product_get(txn, l, tmp, p->gtin, &old, NULL, &registrar);
    if (rc == TRACE_OK && !regulator && strcmp(registrar, ev->party) != 0)
        return trace_fail(TRACE_EPERM,
                          "product %s was registered by %s: only it or a "
                          "regulator changes it",
                          p->gtin, registrar);
    if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
        return rc;
    if (rc == TRACE_ENOTFOUND)
        registrar = ev->party;
    len = trace__v1__product_body__get_packed_size(p);
    rlen = strlen(registrar);
    if (!(val = arena_alloc(tmp, 9 + rlen + len)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    be64_put(val, seq);
    memcpy(val + 8, registrar, rlen + 1);
    trace__v1__product_body__pack(p, val + 9 + rlen);
    k = (MDB_val){strlen(p->gtin), p->gtin};
    v = (MDB_val){9 + rlen + len, val};
    if ((rc = mdb_put(txn, l->dbi_products, &k, &v, 0)))
        return trace_fail_mdb(rc, "products");
    return TRACE_OK;
}

int trace_products(trace_ledger *l, const char *substance,
                   trace_product_row_fn fn, void *ctx)
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
    if (!l->dbi_products) {
        rc = TRACE_OK; /* an older ledger another process writes */
        goto out;
    }
    if (substance)
        substance = canonical_substance(l, substance);
    if ((rc = mdb_cursor_open(txn, l->dbi_products, &cur))) {
        rc = trace_fail_mdb(rc, "products");
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Trace__V1__ProductBody *p = NULL;
        const char *registrar;
        trace_product_row row;
        uint64_t seq = 0;
        int64_t factor = 1;
        char content[64];
        int frc;

        arena_reset(a);
        if ((rc = product_decode(a, &v, &p, &seq, &registrar)) != TRACE_OK)
            goto out;
        if (substance &&
            strcmp(canonical_substance(l, p->substance), substance) != 0)
            continue;
        unit_lookup(p->content->qty->unit, NULL, &factor);
        if (qty_format(content, sizeof(content), p->content->qty->amount,
                       factor) != TRACE_OK)
            snprintf(content, sizeof(content), "?");
        row.gtin = p->gtin;
        row.substance = canonical_substance(l, p->substance);
        row.content = content;
        row.content_unit = p->content->qty->unit;
        row.units_per_pack = p->units_per_pack;
        row.name = p->name;
        row.form = p->form;
        row.registered_by = registrar;
        row.seq = seq;
        if ((frc = fn(&row, ctx)) != 0) {
            rc = frc;
            goto out;
        }
    }
    rc = rc == MDB_NOTFOUND ? TRACE_OK : trace_fail_mdb(rc, "products");
out:
    if (cur)
        mdb_cursor_close(cur);
    ledger_txn_abort(l, txn);
    arena_free(a);
    return rc;
}
