/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena.c - a bump allocator used to decode and build protobuf-c
 * messages.  Blocks are chained; arena_reset() keeps the first block for
 * reuse, so a loop that decodes one entry at a time allocates nothing in
 * the steady state.  An optional byte budget bounds what outside input
 * can make us allocate: past it, allocation returns NULL and protobuf-c
 * rejects the message.
 */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define BLOCK_MIN 16384

struct block {
    struct block *next;
    size_t size, used;
    max_align_t data[]; /* payload follows */
};

struct arena {
    struct block *head;
    size_t limit, total;
    size_t block; /* size of a new block */
    ProtobufCAllocator pa;
};

/* ------------------------------------------------------------------ */
/* Big buffers                                                          */

/* A header in front of every big buffer: its mapping's length, or 0 when
 * it came from malloc(). */
#define BIG_HDR 64
#define BIG_MIN (2u << 20)

/* Freed mappings kept for the next big_alloc() of a similar size.  A
 * reconciliation maps and frees gigabytes in a few hundred buffers of
 * recurring sizes; fresh anonymous memory costs a page fault and a
 * zeroing by the kernel per huge page (on a virtual machine also the
 * host's work to back it), which a reused mapping does not: it is
 * cleared with memset instead.  Bounded by count and by a quarter of
 * the machine's memory; big_trim() returns the memory to the system. */
#define BIG_CACHE_SLOTS 32
static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;
static struct big_cached {
    unsigned char *p;
    size_t len;
} big_cache[BIG_CACHE_SLOTS];
static size_t big_n, big_bytes, big_limit;

/* A cached mapping of at least len bytes and at most 4 times that (the
 * smallest such), or NULL. */
static unsigned char *big_reuse(size_t len)
{
    unsigned char *p = NULL;
    size_t best = BIG_CACHE_SLOTS;

    pthread_mutex_lock(&big_mu);
    for (size_t i = 0; i < big_n; i++)
        if (big_cache[i].len >= len && big_cache[i].len / 4 <= len &&
            (best == BIG_CACHE_SLOTS || big_cache[i].len < big_cache[best].len))
            best = i;
    if (best < BIG_CACHE_SLOTS) {
        p = big_cache[best].p;
        big_bytes -= big_cache[best].len;
        big_cache[best] = big_cache[--big_n];
    }
    pthread_mutex_unlock(&big_mu);
    return p;
}

/* Keeps a freed mapping if there is room; non-zero if it was kept. */
static int big_keep(unsigned char *p, size_t len)
{
    int kept = 0;

    pthread_mutex_lock(&big_mu);
    if (!big_limit) {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        big_limit = pages > 0 && psize > 0 ? (size_t)pages / 4 * (size_t)psize
                                           : (size_t)1 << 30;
    }
    if (big_n < BIG_CACHE_SLOTS && big_bytes + len <= big_limit) {
        big_cache[big_n++] = (struct big_cached){p, len};
        big_bytes += len;
        kept = 1;
    }
    pthread_mutex_unlock(&big_mu);
    return kept;
}

void big_trim(void)
{
    pthread_mutex_lock(&big_mu);
    while (big_n) {
        big_n--;
        munmap(big_cache[big_n].p, big_cache[big_n].len);
    }
    big_bytes = 0;
    pthread_mutex_unlock(&big_mu);
}

void *big_alloc(size_t n)
{
    size_t len = n + BIG_HDR;
    unsigned char *p;

    if (n >= BIG_MIN) {
        len = (len + BIG_MIN - 1) & ~((size_t)BIG_MIN - 1);
        if ((p = big_reuse(len))) {
            memcpy(&len, p, sizeof(len)); /* the mapping's own length */
            memset(p, 0, n + BIG_HDR);
            memcpy(p, &len, sizeof(len));
            return p + BIG_HDR;
        }
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
        if (p == MAP_FAILED)
            return NULL;
#ifdef MADV_HUGEPAGE
        /* a run over millions of records touches every page once: huge
         * pages take one fault where small ones take 512 */
        (void)madvise(p, len, MADV_HUGEPAGE);
#endif
    } else {
        if (!(p = calloc(1, len)))
            return NULL;
        len = 0;
    }
    memcpy(p, &len, sizeof(len));
    return p + BIG_HDR;
}

void big_free(void *ptr)
{
    unsigned char *p = ptr;
    size_t len;

    if (!p)
        return;
    p -= BIG_HDR;
    memcpy(&len, p, sizeof(len));
    if (!len)
        free(p);
    else if (!big_keep(p, len))
        munmap(p, len);
}

static void *pa_alloc(void *ctx, size_t n)
{
    return arena_alloc(ctx, n);
}

static void pa_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

arena *arena_new(size_t limit)
{
    arena *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->limit = limit;
    a->block = BLOCK_MIN;
    a->pa.alloc = pa_alloc;
    a->pa.free = pa_free;
    a->pa.allocator_data = a;
    return a;
}

void arena_set_block(arena *a, size_t size)
{
    a->block = size > BLOCK_MIN ? size : BLOCK_MIN;
}

void arena_reset(arena *a)
{
    struct block *b, *next;

    if (!a || !a->head)
        return;
    for (b = a->head->next; b; b = next) {
        next = b->next;
        big_free(b);
    }
    a->head->next = NULL;
    a->head->used = 0;
    a->total = 0;
}

void arena_free(arena *a)
{
    if (!a)
        return;
    arena_reset(a);
    big_free(a->head);
    free(a);
}

void *arena_alloc(arena *a, size_t n)
{
    struct block *b = a->head;
    size_t align = sizeof(max_align_t);

    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    if (a->limit && a->total + n > a->limit)
        return NULL;
    if (!b || b->size - b->used < n) {
        /* blocks of a->block bytes with their headers, or one that fits */
        size_t regular = a->block - sizeof(struct block) - BIG_HDR;
        size_t size = n > regular ? n : regular;
        struct block *nb = big_alloc(sizeof(*nb) + size);

        if (!nb)
            return NULL;
        nb->size = size;
        nb->used = 0;
        /* Keep the first (reusable) block at the head when it has room
         * for later small allocations. */
        if (b && n > regular) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    a->total += n;
    return p;
}

char *arena_strdup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

ProtobufCAllocator *arena_allocator(arena *a)
{
    return &a->pa;
}

int room_for_one(void *pp, size_t *cap, size_t n, size_t elem, size_t first)
{
    size_t c;
    void *arr, *p;

    if (n < *cap)
        return TRACE_OK;
    c = *cap ? *cap * 2 : first;
    memcpy(&arr, pp, sizeof(arr)); /* the array's pointer, whatever its type */
    if (!(p = realloc(arr, c * elem)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(pp, &p, sizeof(p));
    *cap = c;
    return TRACE_OK;
}
