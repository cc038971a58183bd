/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_entry - libFuzzer target for the decoders of stored records: an
 * Entry, the Event inside it and a correction's replacement are decoded
 * with the same byte budget as verify and export use, then rendered as
 * JSON.  A damaged or forged data file must give errors, never crashes.
 * Reconciliation's direct reading of an entry (entry_peek) must agree
 * with the decoder wherever both accept the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ledger.h"
#include "internal.h"
#include "reconcile_int.h"

static trace_ledger *ledger;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ledger = fuzz_ledger();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena *a = arena_new(64u << 20);
    Trace__V1__Entry *e;
    Trace__V1__Event *ev;
    char *json;
    size_t len;

    e = trace__v1__entry__unpack(arena_allocator(a), size, data);
    /* reconciliation's reading of the same bytes: where both read them,
     * the same time, flag and event */
    {
        struct entry_peek pk;
        if (entry_peek(data, size, &pk) && e &&
            (pk.recorded_us != e->recorded_us ||
             pk.historic != (e->has_historic && e->historic) ||
             pk.event_len != e->event.len ||
             (pk.event_len &&
              memcmp(pk.event, e->event.data, pk.event_len) != 0)))
            abort();
    }
    if (e && (ev = event_decode(a, e->event.data, e->event.len))) {
        if (event_to_json(&json, &len, ev, ledger) == TRACE_OK)
            free(json);
    }
    /* the same bytes taken as an Event directly */
    if ((ev = event_decode(a, data, size)) &&
        event_to_json(&json, &len, ev, ledger) == TRACE_OK)
        free(json);
    arena_free(a);
    return 0;
}
