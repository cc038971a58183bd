/*
 * fuzz_entry - libFuzzer target for the decoders of stored records: an
 * Entry, the Event inside it and a correction's replacement are decoded
 * with the same byte budget as verify and export use, then rendered as
 * JSON.  A damaged or forged data file must give errors, never crashes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static trace_ledger *ledger;
static char dir[] = "/tmp/trace-fuzz-entry-XXXXXX";

static void cleanup(void)
{
    char cmd[64];
    trace_ledger_close(ledger);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char keys[64];
    trace_keyring *ring;
    const trace_key *key;

    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    if (trace_keyring_open(&ring, keys, 1) != TRACE_OK ||
        trace_keyring_generate(ring, "REGULATOR", &key) != TRACE_OK ||
        trace_ledger_init(&ledger, dir, key, NULL) != TRACE_OK)
        abort();
    trace_keyring_free(ring);
    atexit(cleanup);
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
