/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regime.c - the regime table (data/regimes.json, SPEC sections 1 and 12):
 * which movement of which control class needs which permit, which
 * licence scope a counterparty must hold, which reporting deadline
 * applies, and which licence scopes exist, per regime (CN, US, EU, UN).
 *
 * A ledger chooses its regime at init; the table and the choice are kept
 * in the ledger's meta ("regimes", "regime"), so the rules of a ledger do
 * not change when the built-in table does.  A ledger made before regimes
 * existed has neither and is CN with the built-in table.
 *
 * A substance's class in a regime is the first class of the table (in
 * table order) among the licence scopes its catalog controls imply
 * (catalog.c: {"CN-PC": "1"} gives CN-PC-1).  A substance with no class
 * of the regime gets the regime's "other" entry: its movements need no
 * permit, and a permit cited for a movement that entry does not list is
 * accepted whatever its kind.
 *
 * Parsing is strict (unknown keys, unknown permit kinds, a licence that
 * is not one of the regime's scopes, a class named twice: TRACE_EINVAL
 * with the place), so a typing error in a table is refused at init and
 * never silently weakens a rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

const char *const regime_move_names[N_MOVES] = {
    [MOVE_SALE] = "sale",
    [MOVE_TRANSPORT] = "transport",
    [MOVE_IMPORT] = "import",
    [MOVE_EXPORT] = "export",
};

/* LATE_REPORT's parameters, in the rule table's order (rules.c). */
static const char *const deadline_names[REGIME_N_DEADLINES] = {
    "cat1_days", "cat23_days", "drug_days"};
/* SPLIT_PURCHASE's thresholds (rules.c: its parameters cat1, cat2, cat3,
 * in kg or, for volumes, L). */
static const char *const split_names[REGIME_N_SPLITS] = {"cat1", "cat2",
                                                         "cat3"};

/* The index of `name` among names[n], or -1. */
static int name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* Reads {"NAME": number >= 0, ...} into out[] by names[]. */
static int parse_numbers(double *out, const char *const *names, int n,
                         json_t *o, const char *code, const char *what)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o))
        return trace_fail(TRACE_EINVAL, "regimes: %s: \"%s\" must be an object",
                          code, what);
    json_object_foreach(o, k, v)
    {
        int d = name_index(names, n, k);
        if (d < 0 || !json_is_number(v) || json_number_value(v) < 0)
            return trace_fail(TRACE_EINVAL,
                              "regimes: %s: %s.%s is not one of its "
                              "parameters, or not a number >= 0",
                              code, what, k);
        out[d] = json_number_value(v);
    }
    return TRACE_OK;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void class_clear(regime_class *c)
{
    free(c->cls);
    free(c->label);
    free(c->licence);
    for (int m = 0; m < N_MOVES; m++)
        free_strings(c->move[m].permits, c->move[m].n);
}

void regime_free(regime *r)
{
    if (!r)
        return;
    free(r->code);
    free(r->name);
    free(r->json);
    free_strings(r->scopes, r->n_scopes);
    for (size_t i = 0; i < r->n_classes; i++)
        class_clear(&r->classes[i]);
    free(r->classes);
    class_clear(&r->other);
    free(r);
}

/* 1 if every key of object o is one of the NULL-ended names, else fails
 * naming the first other key. */
static int keys_known(json_t *o, const char *const *names, const char *where)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        (void)v;
        for (i = 0; names[i] && strcmp(names[i], k) != 0; i++)
            ;
        if (!names[i])
            return trace_fail(TRACE_EINVAL, "regimes: %s: unknown key \"%s\"",
                              where, k);
    }
    return TRACE_OK;
}

static int dup_string(char **out, const char *s)
{
    if (!(*out = strdup(s)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    return TRACE_OK;
}

static int parse_move(struct regime_move *m, json_t *o, const char *where)
{
    static const char *const keys[] = {"permits", "required", NULL};
    json_t *p = json_object_get(o, "permits");
    json_t *req = json_object_get(o, "required");
    int rc;

    if (!json_is_object(o))
        return trace_fail(TRACE_EINVAL, "regimes: %s must be an object", where);
    if ((rc = keys_known(o, keys, where)) != TRACE_OK)
        return rc;
    if (!json_is_array(p))
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: \"permits\" must be a list of permit "
                          "kinds",
                          where);
    if (!req || json_is_false(req))
        m->required = REQ_NO;
    else if (json_is_true(req))
        m->required = REQ_YES;
    else if (json_is_string(req) &&
             strcmp(json_string_value(req), "configurable") == 0)
        m->required = REQ_CONFIGURABLE;
    else
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: \"required\" must be true, false or "
                          "\"configurable\"",
                          where);
    if (m->required != REQ_NO && json_array_size(p) == 0)
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: a required permit needs at least one "
                          "permit kind",
                          where);
    if (!(m->permits = calloc(json_array_size(p) + 1, sizeof(char *))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(p); i++) {
        const char *k = json_string_value(json_array_get(p, i));
        if (!k || !permit_kind_known(k))
            return trace_fail(TRACE_EINVAL,
                              "regimes: %s: \"%s\" is not a permit kind", where,
                              k ? k : "(not a string)");
        if ((rc = dup_string(&m->permits[m->n], k)) != TRACE_OK)
            return rc;
        m->n++;
    }
    m->listed = 1;
    return TRACE_OK;
}

static int has_scope(const regime *r, const char *s)
{
    for (size_t i = 0; i < r->n_scopes; i++)
        if (strcmp(r->scopes[i], s) == 0)
            return 1;
    return 0;
}

static int parse_class(regime *r, regime_class *c, json_t *o, int other)
{
    static const char *const keys[] = {
        "class",   "label",    "sale",  "transport", "import", "export",
        "licence", "deadline", "split", "note",      NULL};
    const char *cls =
        other ? "other" : json_string_value(json_object_get(o, "class"));
    const char *label = json_string_value(json_object_get(o, "label"));
    json_t *lic = json_object_get(o, "licence");
    json_t *dl = json_object_get(o, "deadline");
    json_t *sp = json_object_get(o, "split");
    char where[128];
    int rc;

    c->deadline = -1;
    c->split = -1;
    if (!json_is_object(o))
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: a class must be an object", r->code);
    if (!cls || !cls[0])
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: a class has no \"class\" name",
                          r->code);
    snprintf(where, sizeof(where), "%s %s", r->code, cls);
    if ((rc = keys_known(o, keys, where)) != TRACE_OK)
        return rc;
    if (other && json_object_get(o, "class"))
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: \"other\" takes no class name",
                          r->code);
    if ((rc = dup_string(&c->cls, cls)) != TRACE_OK ||
        (rc = dup_string(&c->label, label ? label : cls)) != TRACE_OK)
        return rc;
    for (int m = 0; m < N_MOVES; m++) {
        json_t *mv = json_object_get(o, regime_move_names[m]);
        char w[160];
        if (!mv)
            continue; /* any kind accepted, none required */
        snprintf(w, sizeof(w), "%s %s", where, regime_move_names[m]);
        if ((rc = parse_move(&c->move[m], mv, w)) != TRACE_OK)
            return rc;
    }
    if (lic && !json_is_null(lic)) {
        if (!json_is_string(lic) || !has_scope(r, json_string_value(lic)))
            return trace_fail(TRACE_EINVAL,
                              "regimes: %s: \"licence\" must be one of the "
                              "regime's \"scopes\" or null",
                              where);
        if ((rc = dup_string(&c->licence, json_string_value(lic))) != TRACE_OK)
            return rc;
    }
    if (dl && !json_is_null(dl)) {
        const char *d = json_string_value(dl);
        for (int k = 0; d && k < REGIME_N_DEADLINES; k++)
            if (strcmp(deadline_names[k], d) == 0)
                c->deadline = k;
        if (c->deadline < 0)
            return trace_fail(TRACE_EINVAL,
                              "regimes: %s: \"deadline\" must be cat1_days, "
                              "cat23_days, drug_days or null",
                              where);
    }
    if (sp && !json_is_null(sp) &&
        (c->split = name_index(split_names, REGIME_N_SPLITS,
                               json_string_value(sp))) < 0)
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: \"split\" must be cat1, cat2, cat3 "
                          "or null",
                          where);
    return TRACE_OK;
}

static int parse_regime(regime *r, json_t *o)
{
    static const char *const keys[] = {
        "regime",  "name",  "scopes", "late_report", "split_purchase",
        "classes", "other", "note",   NULL};
    const char *code = json_string_value(json_object_get(o, "regime"));
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *scopes = json_object_get(o, "scopes");
    json_t *late = json_object_get(o, "late_report");
    json_t *split = json_object_get(o, "split_purchase");
    json_t *classes = json_object_get(o, "classes");
    json_t *other = json_object_get(o, "other");
    int rc;

    r->late[0] = 5; /* LATE_REPORT's own defaults (rules.c) */
    r->late[1] = 30;
    r->late[2] = 0;
    r->split[0] = 10; /* SPLIT_PURCHASE's own defaults (rules.c) */
    r->split[1] = 100;
    r->split[2] = 1000;
    if ((rc = dup_string(&r->code, code)) != TRACE_OK ||
        (rc = dup_string(&r->name, name ? name : code)) != TRACE_OK)
        return rc;
    if ((rc = keys_known(o, keys, code)) != TRACE_OK)
        return rc;
    if (!json_is_array(scopes))
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: \"scopes\" must be a list of licence "
                          "scopes",
                          code);
    if (!(r->scopes = calloc(json_array_size(scopes) + 1, sizeof(char *))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(scopes); i++) {
        const char *s = json_string_value(json_array_get(scopes, i));
        if (!s || !s[0] || has_scope(r, s))
            return trace_fail(TRACE_EINVAL,
                              "regimes: %s: scope %zu is empty, not a string "
                              "or named twice",
                              code, i + 1);
        if ((rc = dup_string(&r->scopes[r->n_scopes], s)) != TRACE_OK)
            return rc;
        r->n_scopes++;
    }
    if (late && (rc = parse_numbers(r->late, deadline_names, REGIME_N_DEADLINES,
                                    late, code, "late_report")) != TRACE_OK)
        return rc;
    if (split &&
        (rc = parse_numbers(r->split, split_names, REGIME_N_SPLITS, split, code,
                            "split_purchase")) != TRACE_OK)
        return rc;
    if (!json_is_array(classes) || json_array_size(classes) == 0 ||
        json_array_size(classes) > 250)
        return trace_fail(TRACE_EINVAL,
                          "regimes: %s: \"classes\" must be a list of 1 to "
                          "250 control classes",
                          code);
    if (!(r->classes = calloc(json_array_size(classes), sizeof(regime_class))))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(classes); i++) {
        regime_class *c = &r->classes[r->n_classes++];
        if ((rc = parse_class(r, c, json_array_get(classes, i), 0)) != TRACE_OK)
            return rc;
        for (size_t j = 0; j + 1 < r->n_classes; j++)
            if (strcmp(r->classes[j].cls, c->cls) == 0)
                return trace_fail(TRACE_EINVAL,
                                  "regimes: %s: class %s is listed twice", code,
                                  c->cls);
    }
    if (other)
        return parse_class(r, &r->other, other, 1);
    r->other.deadline = -1;
    r->other.split = -1;
    if ((rc = dup_string(&r->other.cls, "other")) != TRACE_OK)
        return rc;
    return dup_string(&r->other.label, "not controlled in this regime");
}

static int code_valid(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > 16)
        return 0;
    for (; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
              (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return 0;
    return 1;
}

int regime_parse(regime **out, const char *text, size_t len, const char *code)
{
    static const char *const keys[] = {"version", "regimes", "note", NULL};
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr = root ? json_object_get(root, "regimes") : NULL;
    json_t *mine = NULL;
    regime *r = NULL;
    char known[128] = "";
    size_t o = 0;
    int rc = TRACE_OK;

    if (!root)
        return trace_fail(TRACE_EINVAL, "regimes: %s (line %d)", jerr.text,
                          jerr.line);
    if (!json_is_object(root) ||
        (rc = keys_known(root, keys, "the table")) != TRACE_OK ||
        !json_is_array(arr) || json_array_size(arr) == 0) {
        if (rc == TRACE_OK)
            rc = trace_fail(TRACE_EINVAL,
                            "regimes: the table must be an object with a "
                            "non-empty \"regimes\" list");
        goto out;
    }
    /* every entry is checked, not only the one chosen: a table is
     * accepted whole or not at all */
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        const char *c = json_string_value(json_object_get(e, "regime"));
        regime *t;
        if (!json_is_object(e) || !c || !code_valid(c)) {
            rc = trace_fail(TRACE_EINVAL,
                            "regimes: entry %zu has no \"regime\" code (1 to "
                            "16 letters, digits, - or _)",
                            i + 1);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(
                           json_object_get(json_array_get(arr, j), "regime")),
                       c) == 0) {
                rc = trace_fail(TRACE_EINVAL, "regimes: %s is listed twice", c);
                goto out;
            }
        if (!(t = calloc(1, sizeof(*t)))) {
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
            goto out;
        }
        rc = parse_regime(t, e);
        if (rc == TRACE_OK && strcmp(c, code) == 0) {
            mine = e;
            regime_free(r);
            r = t;
        } else {
            regime_free(t);
        }
        if (rc != TRACE_OK)
            goto out;
        if (o < sizeof(known))
            o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s",
                                  i ? ", " : "", c);
    }
    if (!mine) {
        rc = trace_fail(TRACE_EINVAL,
                        "unknown regime %s: the regime table has %s", code,
                        known);
        goto out;
    }
    if (!(r->json = json_dumps(mine, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        rc = trace_fail(TRACE_ENOMEM, "out of memory");
        goto out;
    }
out:
    json_decref(root);
    if (rc != TRACE_OK) {
        regime_free(r);
        return rc;
    }
    *out = r;
    return TRACE_OK;
}

const regime_class *regime_class_of(const regime *r, const subst_info *s)
{
    int i = regime_class_index(r, s);
    return i ? &r->classes[i - 1] : &r->other;
}

int regime_class_index(const regime *r, const subst_info *s)
{
    for (size_t i = 0; s && i < r->n_classes; i++)
        for (size_t k = 0; k < s->n_scopes; k++)
            if (strcmp(s->scopes[k], r->classes[i].cls) == 0)
                return (int)i + 1;
    return 0;
}

int regime_accepts(const regime_class *c, int move, const char *kind)
{
    const struct regime_move *m = &c->move[move];
    if (!m->listed)
        return 1;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->permits[i], kind) == 0)
            return 1;
    return 0;
}

const char *trace_ledger_regime(const trace_ledger *l)
{
    return l->regime->code;
}

const char *trace_ledger_regime_json(const trace_ledger *l)
{
    return l->regime->json;
}

int trace_regime_check(const char *regimes_json, size_t regimes_len,
                       const char *code)
{
    regime *r = NULL;
    int rc = regime_parse(
        &r, regimes_json ? regimes_json : (const char *)trace_builtin_regimes,
        regimes_json ? regimes_len : trace_builtin_regimes_len,
        code ? code : "CN");
    regime_free(r);
    return rc;
}
