/* SPDX-License-Identifier: Apache-2.0 */
/*
 * catalog.c - the substance catalog: codes, CAS numbers, dimension and
 * controls per regime (data/catalog.json, SPEC section 7).
 *
 * Each control {"REGIME": "CLASS"} implies the licence scope
 * "REGIME-CLASS" (e.g. CN-PC-1); a class-less control {"CN-NARC": true}
 * implies the scope "CN-NARC".  Lookups accept a code, a CAS number, the
 * Chinese name (`name_zh`) or an alias (`aliases`: other names in use,
 * such as 乙酸酐 for 醋酸酐); no two substances may share one.
 * The catalog is small (hundreds of entries), so a linear scan is fine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

struct catalog {
    subst_info *items;
    size_t n;
    strmap *index; /* code and CAS number -> subst_info * */
};

static void substance_clear(subst_info *s)
{
    free(s->code);
    free(s->cas);
    free(s->name);
    free(s->name_zh);
    for (size_t i = 0; i < s->n_scopes; i++)
        free(s->scopes[i]);
    free(s->scopes);
}

void catalog_free(catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        substance_clear(&c->items[i]);
    free(c->items);
    strmap_free(c->index);
    free(c);
}

static int valid_code(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-'))
            return 0;
    return 1;
}

static int parse_one(subst_info *s, json_t *o, size_t idx)
{
    const char *code = json_string_value(json_object_get(o, "code"));
    const char *cas = json_string_value(json_object_get(o, "cas"));
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *name_zh = json_string_value(json_object_get(o, "name_zh"));
    const char *dim = json_string_value(json_object_get(o, "dimension"));
    json_t *controls = json_object_get(o, "controls");
    const char *reg;
    json_t *cls;

    if (!code || !valid_code(code))
        return trace_fail(TRACE_EINVAL,
                          "catalog entry %zu: code must be a lowercase slug",
                          idx);
    if (!dim)
        return trace_fail(TRACE_EINVAL, "catalog %s: no dimension", code);
    if (strcmp(dim, "mass") == 0)
        s->dim = DIM_MASS;
    else if (strcmp(dim, "volume") == 0)
        s->dim = DIM_VOLUME;
    else if (strcmp(dim, "count") == 0)
        s->dim = DIM_COUNT;
    else
        return trace_fail(TRACE_EINVAL, "catalog %s: unknown dimension %s",
                          code, dim);
    if (controls && !json_is_object(controls))
        return trace_fail(TRACE_EINVAL,
                          "catalog %s: controls must be an "
                          "object",
                          code);
    s->code = strdup(code);
    s->cas = cas ? strdup(cas) : NULL;
    s->name = strdup(name ? name : code);
    s->name_zh = name_zh ? strdup(name_zh) : NULL;
    if (!s->code || !s->name || (cas && !s->cas) || (name_zh && !s->name_zh))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    s->scopes = calloc(json_object_size(controls) + 1, sizeof(char *));
    if (!s->scopes)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    json_object_foreach(controls, reg, cls)
    {
        char buf[64];
        if (json_is_true(cls))
            snprintf(buf, sizeof(buf), "%s", reg);
        else if (json_is_string(cls))
            snprintf(buf, sizeof(buf), "%s-%s", reg, json_string_value(cls));
        else
            return trace_fail(TRACE_EINVAL,
                              "catalog %s: control %s must be a class string "
                              "or true",
                              code, reg);
        if (!(s->scopes[s->n_scopes++] = strdup(buf)))
            return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    return TRACE_OK;
}

int catalog_parse(catalog **out, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr = root ? json_object_get(root, "substances") : NULL;
    catalog *c = NULL;
    int rc = TRACE_OK;

    if (!root)
        return trace_fail(TRACE_EINVAL, "catalog: %s (line %d)", jerr.text,
                          jerr.line);
    if (!json_is_array(arr)) {
        rc = trace_fail(TRACE_EINVAL, "catalog: no \"substances\" array");
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c ||
        !(c->items = calloc(json_array_size(arr) + 1, sizeof(subst_info))) ||
        !(c->index = strmap_new(sizeof(subst_info *)))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        subst_info *s = &c->items[c->n++];
        if ((rc = parse_one(s, json_array_get(arr, i), i)) != TRACE_OK)
            goto out;
        const subst_info **by_code = strmap_get(c->index, s->code, 1);
        const subst_info **by_cas =
            s->cas ? strmap_get(c->index, s->cas, 1) : NULL;
        json_t *aliases = json_object_get(json_array_get(arr, i), "aliases");
        if (!by_code || (s->cas && !by_cas)) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        if (*by_code || (by_cas && *by_cas)) {
            rc = trace_fail(TRACE_EINVAL,
                            "catalog: %s or its CAS number is listed twice",
                            s->code);
            goto out;
        }
        *by_code = s;
        if (by_cas)
            *by_cas = s;
        if (aliases && !json_is_array(aliases)) {
            rc = trace_fail(TRACE_EINVAL,
                            "catalog %s: aliases must be a list of names",
                            s->code);
            goto out;
        }
        /* the Chinese name and the aliases: more names for lookups */
        for (size_t k = 0; k <= json_array_size(aliases); k++) {
            const char *nm =
                k == 0 ? s->name_zh
                       : json_string_value(json_array_get(aliases, k - 1));
            const subst_info **by_name;
            if (k > 0 && !nm) {
                rc = trace_fail(TRACE_EINVAL,
                                "catalog %s: aliases must be strings", s->code);
                goto out;
            }
            if (!nm || !nm[0])
                continue;
            if (!(by_name = strmap_get(c->index, nm, 1))) {
                rc = trace_fail(TRACE_ENOMEM, "out of memory");
                goto out;
            }
            if (*by_name && *by_name != s) {
                rc = trace_fail(TRACE_EINVAL,
                                "catalog: the name %s is given to %s and %s",
                                nm, (*by_name)->code, s->code);
                goto out;
            }
            *by_name = s;
        }
    }
out:
    json_decref(root);
    if (rc != TRACE_OK) {
        catalog_free(c);
        return rc;
    }
    *out = c;
    return TRACE_OK;
}

const subst_info *catalog_find(const catalog *c, const char *key)
{
    const subst_info **s = strmap_get(c->index, key, 0);
    return s ? *s : NULL;
}

int trace_ledger_substances(const trace_ledger *l,
                            int (*fn)(const trace_substance *s, void *ctx),
                            void *ctx)
{
    for (size_t i = 0; i < l->cat->n; i++) {
        const subst_info *s = &l->cat->items[i];
        trace_substance t = {s->code,
                             s->cas,
                             s->name,
                             dimension_name(s->dim),
                             (const char *const *)s->scopes,
                             s->n_scopes,
                             s->name_zh};
        int rc = fn(&t, ctx);
        if (rc)
            return rc;
    }
    return TRACE_OK;
}

size_t catalog_count(const catalog *c)
{
    return c->n;
}
