/*
 * strmap.c - a small open-addressing hash map from strings to fixed-size
 * values, used where a pass over the journal keeps per-party state.
 * Keys are copied; values are zero-filled on first lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct slot {
    char *key;
    void *val;
    uint64_t hash; /* compared before the key */
};

struct strmap {
    struct slot *slots;
    size_t cap, n, val_size;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

strmap *strmap_new(size_t val_size)
{
    strmap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->val_size = val_size;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof(struct slot));
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void strmap_free(strmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
        free(m->slots[i].val);
    }
    free(m->slots);
    free(m);
}

static int grow(strmap *m)
{
    size_t cap = m->cap * 2;
    struct slot *s = calloc(cap, sizeof(*s));

    if (!s)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (s[j].key)
            j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

void *strmap_get(strmap *m, const char *key, int create)
{
    uint64_t h = fnv1a(key);
    size_t i;

    if (create && (m->n + 1) * 2 > m->cap && grow(m) != 0)
        return NULL;
    i = h & (m->cap - 1);
    while (m->slots[i].key) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
            return m->slots[i].val;
        i = (i + 1) & (m->cap - 1);
    }
    if (!create)
        return NULL;
    m->slots[i].key = strdup(key);
    m->slots[i].val = calloc(1, m->val_size);
    m->slots[i].hash = h;
    if (!m->slots[i].key || !m->slots[i].val) {
        free(m->slots[i].key);
        free(m->slots[i].val);
        m->slots[i].key = NULL;
        m->slots[i].val = NULL;
        return NULL;
    }
    m->n++;
    return m->slots[i].val;
}
