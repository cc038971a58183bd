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

/* Keys and values live in chunks freed together: a pass over millions of
 * distinct strings makes no allocation per string. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct strmap {
    struct slot *slots;
    size_t cap, n, val_size;
    struct chunk *chunks;
};

static void *pool_alloc(strmap *m, size_t n)
{
    struct chunk *c = m->chunks;

    n = (n + 15) & ~(size_t)15;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > (1u << 16) ? n : (1u << 16);
        if (!(c = malloc(sizeof(*c) + cap)))
            return NULL;
        c->next = m->chunks;
        c->used = 0;
        c->cap = cap;
        m->chunks = c;
    }
    c->used += n;
    return c->data + c->used - n;
}

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
    while (m->chunks) {
        struct chunk *next = m->chunks->next;
        free(m->chunks);
        m->chunks = next;
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
    {
        size_t vs = (m->val_size + 15) & ~(size_t)15, kl = strlen(key) + 1;
        unsigned char *p = pool_alloc(m, vs + kl);
        if (!p)
            return NULL;
        memset(p, 0, vs);
        memcpy(p + vs, key, kl);
        m->slots[i].val = p;
        m->slots[i].key = (char *)p + vs;
        m->slots[i].hash = h;
    }
    m->n++;
    return m->slots[i].val;
}
