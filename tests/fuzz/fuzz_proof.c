/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_proof.c - the readers of outside proof material: checkpoint notes
 * (trace_checkpoint_parse), verifier keys (trace_vkey_parse) and proof
 * bundles (trace_check_bundle), which check-proof and witnesses run on
 * bytes from anyone.  The first byte picks the reader; the seeds in
 * corpus/proof were made from the demo ledger whose log key is LOG_VKEY,
 * so mutated bundles reach the inclusion, signature and chain checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace/proof.h"
#include "trace/trace.h"

#define LOG_VKEY                                                               \
    "trace/REGULATOR/d0850ee9beb6b794a9815bfce845f826+7ae7f1da+"               \
    "AcKdXAa/3rkdfUTMsnGN779dsCQHpsEmtR9WZ36P6PIz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const witnesses[] = {LOG_VKEY};
    trace_checkpoint cp;
    char summary[512], name[256];
    uint8_t pub[32] = {0};
    char *s;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        if (trace_checkpoint_parse(&cp, (const char *)data + 1, size - 1) ==
            TRACE_OK) {
            uint64_t t;
            trace_checkpoint_verify(&cp, cp.origin, pub);
            trace_checkpoint_verify_cosig(&cp, cp.origin, pub, &t);
        }
        break;
    case 1:
        trace_check_bundle((const char *)data + 1, size - 1, LOG_VKEY,
                           witnesses, 1, 0, summary, sizeof(summary));
        break;
    case 2:
        if (!(s = malloc(size)))
            return 0;
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0';
        trace_vkey_parse(s, name, sizeof(name), pub);
        free(s);
        break;
    }
    return 0;
}
