/* SPDX-License-Identifier: Apache-2.0 */
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
 * distinct strings makes no allocation per string.  Chunks of CHUNK_BIG
 * bytes and more come from big_alloc (huge pages), smaller ones from
 * malloc (a map made per request pays no page clearing). */
#define CHUNK_BIG (2u << 20)
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
        /* chunks grow with the map, to 4 MiB: a map of millions of
         * strings keeps them on few (huge) pages, not thousands of
         * small ones a random look-up each misses the TLB on */
        size_t want = c ? 2 * c->cap : (1u << 16);
        if (want > (4u << 20))
            want = 4u << 20;
        size_t cap = n > want ? n : want;
        if (!(c = sizeof(*c) + cap >= CHUNK_BIG ? big_alloc(sizeof(*c) + cap)
                                                : malloc(sizeof(*c) + cap)))
            return NULL;
        c->next = m->chunks;
        c->used = 0;
        c->cap = cap;
        m->chunks = c;
    }
    c->used += n;
    return c->data + c->used - n;
}

/* A multiply-xorshift hash over 8 bytes at a time: pseudonyms and event
 * ids are long enough that a byte-at-a-time hash shows in profiles. */
static uint64_t str_hash(const char *s, size_t len)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    uint64_t h = (uint64_t)len * k, w;

    for (; len >= 8; s += 8, len -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    if (len) {
        w = 0;
        memcpy(&w, s, len);
        h = (h ^ w) * k;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    return h ^ (h >> 32);
}

uint64_t strmap_hash(const char *s)
{
    return str_hash(s, strlen(s));
}

strmap *strmap_new(size_t val_size)
{
    strmap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->val_size = val_size;
    m->cap = 64;
    m->slots = big_alloc(m->cap * sizeof(struct slot));
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
        if (sizeof(*m->chunks) + m->chunks->cap >= CHUNK_BIG)
            big_free(m->chunks);
        else
            free(m->chunks);
        m->chunks = next;
    }
    big_free(m->slots);
    free(m);
}

static int grow(strmap *m)
{
    size_t cap = m->cap * 2;
    struct slot *s = big_alloc(cap * sizeof(*s));

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
    big_free(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

/* Bytes before a key in its pool block: the value, 16-byte aligned. */
static size_t val_room(const strmap *m)
{
    return (m->val_size + 15) & ~(size_t)15;
}

static struct slot *find_slot(strmap *m, const char *key, int create)
{
    size_t kl = strlen(key);
    uint64_t h = str_hash(key, kl);
    size_t i;

    if (create && (m->n + 1) * 2 > m->cap && grow(m) != 0)
        return NULL;
    i = h & (m->cap - 1);
    while (m->slots[i].key) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!create)
        return NULL;
    {
        size_t vs = val_room(m);
        unsigned char *p = pool_alloc(m, vs + kl + 1);
        if (!p)
            return NULL;
        memset(p, 0, vs);
        memcpy(p + vs, key, kl + 1);
        m->slots[i].val = p;
        m->slots[i].key = (char *)p + vs;
        m->slots[i].hash = h;
    }
    m->n++;
    return &m->slots[i];
}

void *strmap_val_of(const strmap *m, const char *key)
{
    return (char *)key - val_room(m);
}

void *strmap_get(strmap *m, const char *key, int create)
{
    struct slot *s = find_slot(m, key, create);
    return s ? s->val : NULL;
}

const char *strmap_key_of(const strmap *m, const void *val)
{
    return (const char *)val + val_room(m);
}

size_t strmap_len(const strmap *m)
{
    return m->n;
}

const char *strmap_intern(strmap *m, const char *key)
{
    struct slot *s = find_slot(m, key, 1);
    return s ? s->key : NULL;
}

int strmap_each(const strmap *m,
                int (*fn)(const char *key, void *val, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++) {
        int rc;
        if (m->slots[i].key && (rc = fn(m->slots[i].key, m->slots[i].val, ctx)))
            return rc;
    }
    return 0;
}
