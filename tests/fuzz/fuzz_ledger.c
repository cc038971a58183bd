/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_ledger.c - a temporary ledger shared by a fuzz target's runs. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_ledger.h"

static trace_ledger *ledger;
static char dir[] = "/tmp/trace-fuzz-XXXXXX";

static void cleanup(void)
{
    char cmd[64];
    trace_ledger_close(ledger);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

trace_ledger *fuzz_ledger(void)
{
    char keys[64];
    trace_keyring *ring;
    const trace_key *key;

    if (ledger)
        return ledger;
    if (!mkdtemp(dir))
        abort();
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    if (trace_keyring_open(&ring, keys, 1) != TRACE_OK ||
        trace_keyring_generate(ring, "REGULATOR", &key) != TRACE_OK ||
        trace_ledger_init(&ledger, dir, key, NULL) != TRACE_OK)
        abort();
    trace_keyring_free(ring);
    atexit(cleanup);
    return ledger;
}
