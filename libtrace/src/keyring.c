/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyring.c - a folder of party keys (PARTY.key / PARTY.pub).
 *
 * Keys are loaded on first use and cached in a small list; a keyring is
 * used by one thread at a time.
 */
#define _GNU_SOURCE /* syncfs */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct cached {
    char *party;
    trace_key *key; /* NULL: looked up and absent */
};

struct trace_keyring {
    char *dir;
    struct cached *items;
    size_t n, cap;
    strmap *ix;   /* party -> index in items + 1 */
    int deferred; /* keyring_defer_sync: new keys written, not yet synced */
    int unsynced; /* keys written since the last keyring_sync */
};

int trace_keyring_open(trace_keyring **out, const char *dir, int create)
{
    struct stat st;
    trace_keyring *r;

    if (stat(dir, &st) != 0) {
        if (!create || errno != ENOENT)
            return trace_fail(TRACE_ENOTFOUND, "key folder %s: %s", dir,
                              errno_text(errno));
        if (mkdir(dir, 0700) != 0)
            return trace_fail(TRACE_EIO, "cannot create key folder %s: %s", dir,
                              errno_text(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return trace_fail(TRACE_EINVAL, "%s is not a folder", dir);
    }
    r = calloc(1, sizeof(*r));
    if (!r || !(r->dir = strdup(dir))) {
        free(r);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    *out = r;
    return TRACE_OK;
}

void trace_keyring_free(trace_keyring *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].party);
        trace_key_free(r->items[i].key);
    }
    free(r->items);
    strmap_free(r->ix);
    free(r->dir);
    free(r);
}

const char *trace_keyring_dir(const trace_keyring *r)
{
    return r->dir;
}

static struct cached *remember(trace_keyring *r, const char *party,
                               trace_key *key)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct cached *p = realloc(r->items, cap * sizeof(*p));
        if (!p)
            return NULL;
        r->items = p;
        r->cap = cap;
    }
    size_t *ix;

    if (!r->ix && !(r->ix = strmap_new(sizeof(size_t))))
        return NULL;
    if (!(ix = strmap_get(r->ix, party, 1)))
        return NULL;
    r->items[r->n].party = strdup(party);
    if (!r->items[r->n].party)
        return NULL;
    r->items[r->n].key = key;
    *ix = r->n + 1;
    return &r->items[r->n++];
}

static int key_path(char *buf, size_t cap, const trace_keyring *r,
                    const char *party)
{
    if (!trace_party_id_valid(party))
        return trace_fail(TRACE_EINVAL, "invalid party id \"%.64s\"", party);
    if ((size_t)snprintf(buf, cap, "%s/%s.key", r->dir, party) >= cap)
        return trace_fail(TRACE_EINVAL, "key folder path too long");
    return TRACE_OK;
}

/* What the ring knows of `party` (a key, or that it has none), or NULL. */
static struct cached *cached_of(trace_keyring *r, const char *party)
{
    size_t *ix = r->ix ? strmap_get(r->ix, party, 0) : NULL;
    return ix && *ix ? &r->items[*ix - 1] : NULL;
}

int trace_keyring_get(trace_keyring *r, const char *party,
                      const trace_key **out)
{
    char path[4096];
    trace_key *key = NULL;
    struct cached *c = cached_of(r, party);
    int rc;

    *out = NULL;
    if (c) {
        if (!c->key)
            return trace_fail(TRACE_ENOTFOUND, "no key for %s in %s", party,
                              r->dir);
        *out = c->key;
        return TRACE_OK;
    }
    if ((rc = key_path(path, sizeof(path), r, party)) != TRACE_OK)
        return rc;
    rc = trace_key_load(&key, path);
    if (rc != TRACE_OK && rc != TRACE_ENOTFOUND)
        return rc;
    if (!remember(r, party, key)) {
        trace_key_free(key);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    if (!key)
        return trace_fail(TRACE_ENOTFOUND, "no key for %s in %s", party,
                          r->dir);
    *out = key;
    return TRACE_OK;
}

int trace_keyring_generate(trace_keyring *r, const char *party,
                           const trace_key **out)
{
    char path[4096];
    trace_key *key = NULL;
    struct cached *c;
    int rc;

    if ((rc = key_path(path, sizeof(path), r, party)) != TRACE_OK)
        return rc;
    if ((rc = trace_key_generate(&key)) != TRACE_OK)
        return rc;
    if ((rc = key_save(key, path, !r->deferred)) != TRACE_OK) {
        trace_key_free(key);
        return rc;
    }
    r->unsynced |= r->deferred;
    if ((c = cached_of(r, party)) != NULL) {
        trace_key_free(c->key);
        c->key = key;
        *out = key;
        return TRACE_OK;
    }
    if (!remember(r, party, key)) {
        trace_key_free(key);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    *out = key;
    return TRACE_OK;
}

void keyring_defer_sync(trace_keyring *r, int on)
{
    r->deferred = on;
}

int keyring_sync(trace_keyring *r)
{
    int fd, ok;

    if (!r->unsynced)
        return TRACE_OK;
    /* one call for all the key files written, then their folder */
    if ((fd = open(r->dir, O_RDONLY | O_DIRECTORY)) < 0)
        return trace_fail(TRACE_EIO, "key folder %s: %s", r->dir,
                          errno_text(errno));
    ok = syncfs(fd) == 0 && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return trace_fail(TRACE_EIO, "key folder %s: cannot sync: %s", r->dir,
                          errno_text(errno));
    r->unsynced = 0;
    return TRACE_OK;
}
