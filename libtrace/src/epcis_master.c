/* SPDX-License-Identifier: Apache-2.0 */
/*
 * epcis_master.c - what the EPCIS reader knows of the ledger: products
 * by GTIN (substance, content, units per pack), parties by GLN, sites by
 * SGLN and permits by id with their kind, added one by one or loaded
 * from a ledger (trace_epcis_master_load).  epcis_map.c maps events by
 * it; an event naming no registered product is left out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epcis_int.h"

#define KIND_CAP 24

int trace_epcis_master_new(trace_epcis_master **out)
{
    trace_epcis_master *m = calloc(1, sizeof(*m));

    if (!m || !(m->products = strmap_new(sizeof(struct mprod))) ||
        !(m->parties = strmap_new(PARTY_CAP)) ||
        !(m->permits = strmap_new(KIND_CAP)) ||
        !(m->sites = strmap_new(sizeof(struct msite)))) {
        trace_epcis_master_free(m);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    *out = m;
    return TRACE_OK;
}

void trace_epcis_master_free(trace_epcis_master *m)
{
    if (!m)
        return;
    strmap_free(m->products);
    strmap_free(m->parties);
    strmap_free(m->permits);
    strmap_free(m->sites);
    free(m);
}

int trace_epcis_master_add_product(trace_epcis_master *m, const char *gtin,
                                   const char *substance, const char *content,
                                   const char *content_unit,
                                   uint32_t units_per_pack)
{
    struct mprod *p;
    int64_t factor, amount;

    if (!gs1_key_valid(gtin, 14))
        return trace_fail(TRACE_EINVAL, "bad GTIN %.40s", gtin);
    if (strlen(substance) >= sizeof(p->substance) ||
        strlen(content_unit) >= sizeof(p->unit) ||
        unit_lookup(content_unit, NULL, &factor) != TRACE_OK ||
        qty_parse(&amount, content, factor, 0) != TRACE_OK ||
        units_per_pack == 0)
        return trace_fail(TRACE_EINVAL, "bad product %s", gtin);
    if (!(p = strmap_get(m->products, gtin, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    snprintf(p->substance, sizeof(p->substance), "%s", substance);
    snprintf(p->unit, sizeof(p->unit), "%s", content_unit);
    p->content = amount;
    p->per_pack = units_per_pack;
    return TRACE_OK;
}

int trace_epcis_master_add_party(trace_epcis_master *m, const char *gln,
                                 const char *party)
{
    char *v;

    if (!gs1_key_valid(gln, 13) || strlen(party) >= PARTY_CAP)
        return trace_fail(TRACE_EINVAL, "bad GLN %.40s or party", gln);
    if (!(v = strmap_get(m->parties, gln, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(v, party, strlen(party) + 1);
    return TRACE_OK;
}

int trace_epcis_master_add_site(trace_epcis_master *m, const char *sgln,
                                const char *party, const char *site)
{
    struct msite *v;

    if (!gs1_key_valid(sgln, 13) || strlen(party) >= PARTY_CAP ||
        strlen(site) >= SITE_CAP || !site[0])
        return trace_fail(TRACE_EINVAL, "bad SGLN %.40s or site", sgln);
    if (!(v = strmap_get(m->sites, sgln, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(v->party, party, strlen(party) + 1);
    memcpy(v->site, site, strlen(site) + 1);
    return TRACE_OK;
}

int trace_epcis_master_add_permit(trace_epcis_master *m, const char *permit,
                                  const char *kind)
{
    char *v;

    if (strlen(kind) >= KIND_CAP)
        return trace_fail(TRACE_EINVAL, "bad permit kind %.40s", kind);
    if (!(v = strmap_get(m->permits, permit, 1)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(v, kind, strlen(kind) + 1);
    return TRACE_OK;
}

static int load_product(const trace_product_row *p, void *ctx)
{
    return trace_epcis_master_add_product(ctx, p->gtin, p->substance,
                                          p->content, p->content_unit,
                                          p->units_per_pack);
}

static int load_party(const trace_party_row *p, void *ctx)
{
    int rc;

    for (size_t i = 0; i < p->n_sites; i++)
        if ((rc = trace_epcis_master_add_site(ctx, p->sites[i].sgln, p->party,
                                              p->sites[i].site)) != TRACE_OK &&
            rc != TRACE_EINVAL) /* a site name too long to map: left out */
            return rc;
    if (!p->gln)
        return 0;
    return trace_epcis_master_add_party(ctx, p->gln, p->party);
}

struct load_permits {
    trace_epcis_master *m;
    trace_ledger *l;
};

static int add_permit(const trace_permit_state *p, void *ctx)
{
    struct load_permits *lp = ctx;
    return trace_epcis_master_add_permit(lp->m, p->permit, p->kind);
}

static int load_permit(const char *permit, void *ctx)
{
    struct load_permits *lp = ctx;
    return trace_permit_show(lp->l, permit, INT64_MAX, add_permit, lp);
}

int trace_epcis_master_load(trace_epcis_master *m, trace_ledger *l)
{
    struct load_permits lp = {m, l};
    int rc;

    if ((rc = trace_products(l, NULL, load_product, m)) != TRACE_OK ||
        (rc = trace_parties(l, NULL, load_party, m)) != TRACE_OK)
        return rc;
    return trace_permit_ids(l, load_permit, &lp);
}
