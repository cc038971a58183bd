/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jsonl - libFuzzer target for the JSON Lines decoder, the main
 * door for outside bytes.
 *
 * Every input goes through trace_batch_add_json on a real (temporary)
 * ledger.  Inputs that parse must survive a round trip: rendering the
 * event as JSON and parsing that again gives the same encoded bytes;
 * otherwise the export of an import would not reproduce it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ledger.h"
#include "internal.h"

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
    arena *a = arena_new(0);
    Trace__V1__Event *e1, *e2;
    trace_batch *b;
    char *json;
    size_t len;

    /* the public entry point, with its blank-line and BOM handling */
    if (trace_batch_new(&b, ledger) != TRACE_OK)
        abort();
    (void)trace_batch_add_json(b, (const char *)data, size, 1);
    trace_batch_free(b);

    if (event_from_json(&e1, a, (const char *)data, size, ledger) == TRACE_OK) {
        size_t n1 = trace__v1__event__get_packed_size(e1);
        uint8_t *b1 = malloc(n1 + 1);
        trace__v1__event__pack(e1, b1);
        if (event_to_json(&json, &len, e1, ledger) != TRACE_OK)
            abort();
        if (event_from_json(&e2, a, json, len, ledger) != TRACE_OK) {
            fprintf(stderr, "rendered event does not parse: %s\n%s\n", json,
                    trace_error_last());
            abort();
        }
        size_t n2 = trace__v1__event__get_packed_size(e2);
        uint8_t *b2 = malloc(n2 + 1);
        trace__v1__event__pack(e2, b2);
        if (n1 != n2 || memcmp(b1, b2, n1) != 0) {
            fprintf(stderr, "round trip changed the event: %s\n", json);
            abort();
        }
        free(b1);
        free(b2);
        free(json);
    }
    arena_free(a);
    return 0;
}
