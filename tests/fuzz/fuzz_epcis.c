/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_epcis - libFuzzer target for the EPCIS 2.0 reader (epcis.c), which
 * reads documents from outside the ledger's parties.
 *
 * The master data names the products and parties of the seed corpus
 * (GS1's examples), so inputs near the seeds reach the mapping, not
 * only the scanner.  Every line the reader gives must be one JSON
 * object; the counts must add up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "trace/epcis.h"

static trace_epcis_master *master;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const struct {
        const char *gtin, *substance, *content, *unit;
        uint32_t per_pack;
    } products[] = {
        {"10614141073464", "morphine", "1", "unit", 10},
        {"04012345123456", "ephedrine", "1", "kg", 1},
        {"04012345111118", "ephedrine", "1", "kg", 1},
        {"04012345778892", "ephedrine", "30", "mg", 10},
        {"09520001123467", "morphine", "1", "unit", 10},
    };
    static const struct {
        const char *gln, *party;
    } parties[] = {
        {"4012345000016", "91310000MA1K000001"},
        {"0614141000012", "91320000MA1K000002"},
        {"0614141073467", "91330000MA1K000003"},
        {"9520999999990", "12310000MB0000005"},
        {"9520001111112", "91310000MA1K000006"},
    };

    (void)argc;
    (void)argv;
    if (trace_epcis_master_new(&master) != TRACE_OK)
        abort();
    /* a GTIN or GLN whose check digit is wrong is refused: skip it */
    for (size_t i = 0; i < sizeof(products) / sizeof(*products); i++)
        (void)trace_epcis_master_add_product(
            master, products[i].gtin, products[i].substance,
            products[i].content, products[i].unit, products[i].per_pack);
    for (size_t i = 0; i < sizeof(parties) / sizeof(*parties); i++)
        (void)trace_epcis_master_add_party(master, parties[i].gln,
                                           parties[i].party);
    (void)trace_epcis_master_add_permit(master, "CN-PL-2026-0001",
                                        "purchase_license");
    return 0;
}

static int on_line(void *ctx, const char *line, size_t len, unsigned long index)
{
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);

    (void)ctx;
    (void)index;
    if (!json_is_object(o)) {
        fprintf(stderr, "the reader gave a line that is no object: %.*s\n",
                (int)len, line);
        abort();
    }
    json_decref(o);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trace_epcis_summary sum;
    FILE *f;

    if (size == 0)
        return 0;
    if (!(f = fmemopen((void *)data, size, "rb")))
        return 0;
    if (trace_epcis_read(master, f, on_line, NULL, NULL, &sum) == TRACE_OK &&
        sum.mapped + sum.skipped + sum.rejected > sum.events)
        abort();
    fclose(f);
    return 0;
}
