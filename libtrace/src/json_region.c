/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_region.c - jansson's allocations while a line is parsed.
 *
 * While a line is parsed (event_from_json_in, between json_region_begin
 * and json_region_end), jansson's allocations (a W2 line makes about
 * forty) come from a region of the thread's own, reused for every line,
 * rather than from malloc and free one by one.  The functions are set
 * for the process before main runs; outside a parse they are malloc and
 * free, and a block freed that lies in the region (every value of the
 * parsed line) is left for the next line to reuse.  Nothing parsed may
 * outlive json_region_end.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

#define JREGION (256u << 10)

#if defined(__SANITIZE_ADDRESS__)
#define JR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JR_SANITIZED 1
#endif
#endif
#ifdef JR_SANITIZED
/* AddressSanitizer sees the region as it sees malloc: what is not handed
 * out is poisoned, and a poisoned gap follows each block handed out */
#include <sanitizer/asan_interface.h>
#define JR_GAP 16
#else
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define JR_GAP                            0
#endif

static pthread_key_t jr_key;
static __thread unsigned char *jr_base;
static __thread size_t jr_used;
static __thread int jr_on;

static void *jr_malloc(size_t n)
{
    if (jr_on) {
        size_t m = ((n + 15) & ~(size_t)15) + JR_GAP;
        if (m >= n && JREGION - jr_used >= m) {
            void *p = jr_base + jr_used;
            jr_used += m;
            ASAN_UNPOISON_MEMORY_REGION(p, n);
            return p;
        }
    }
    return malloc(n);
}

static void jr_free(void *p)
{
    const unsigned char *c = p;
    if (jr_base && c >= jr_base && c < jr_base + JREGION)
        return;
    free(p);
}

__attribute__((constructor)) static void jr_init(void)
{
    if (pthread_key_create(&jr_key, free) == 0)
        json_set_alloc_funcs(jr_malloc, jr_free);
}

/* Starts a line's parse on this thread's region (0 if there is none:
 * then malloc serves). */
int json_region_begin(void)
{
    if (!jr_base) {
        if (!(jr_base = malloc(JREGION)))
            return 0;
        if (pthread_setspecific(jr_key, jr_base) != 0) {
            free(jr_base);
            jr_base = NULL;
            return 0;
        }
    }
    ASAN_POISON_MEMORY_REGION(jr_base, JREGION);
    jr_used = 0;
    jr_on = 1;
    return 1;
}

/* Ends it: nothing handed out stays usable. */
void json_region_end(void)
{
    ASAN_POISON_MEMORY_REGION(jr_base, JREGION);
    jr_on = 0;
    jr_used = 0;
}
