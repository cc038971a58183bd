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
#include <sys/mman.h>

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

void *big_alloc(size_t n)
{
    size_t len = n + BIG_HDR;
    unsigned char *p;

    if (n >= BIG_MIN) {
        len = (len + BIG_MIN - 1) & ~((size_t)BIG_MIN - 1);
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
    if (len)
        munmap(p, len);
    else
        free(p);
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
