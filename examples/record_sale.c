/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record_sale - records a sale and the buyer's receipt through the
 * library, as an ERP integration would.
 *
 *   example_record_sale LEDGER_DIR
 *
 * Creates the ledger if the folder holds none, registers a seller and a
 * buyer (keys provisioned by the regulator), issues the buyer's purchase
 * licence, produces a lot, sells part of it and records the receipt.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <trace/trace.h>

static const char *const events[] = {
    "{\"type\":\"party\",\"id\":\"ex-reg-1\",\"party\":\"REGULATOR\","
    "\"at\":\"2026-03-01T09:00:00+08:00\",\"subject\":\"SELLER-1\","
    "\"name\":\"Example Chemicals\",\"kind\":\"manufacturer\",\"region\":"
    "\"CN-31\",\"licenses\":[\"CN-PC-2\"]}",
    "{\"type\":\"party\",\"id\":\"ex-reg-2\",\"party\":\"REGULATOR\","
    "\"at\":\"2026-03-01T09:00:00+08:00\",\"subject\":\"BUYER-1\","
    "\"name\":\"Example Distribution\",\"kind\":\"distributor\",\"region\":"
    "\"CN-32\",\"licenses\":[\"CN-PC-2\"]}",
    "{\"type\":\"permit\",\"id\":\"ex-pmt-1\",\"party\":\"REGULATOR\","
    "\"at\":\"2026-03-01T10:00:00+08:00\",\"permit\":\"EX-PF-1\",\"kind\":"
    "\"purchase_filing\",\"holder\":\"BUYER-1\",\"substance\":"
    "\"acetic-anhydride\",\"qty\":\"1\",\"unit\":\"t\",\"valid_from\":"
    "\"2026-03-01\",\"valid_until\":\"2026-12-31\",\"uses\":\"multi\"}",
    "{\"type\":\"produce\",\"id\":\"ex-prd-1\",\"party\":\"SELLER-1\","
    "\"at\":\"2026-03-02T08:00:00+08:00\",\"substance\":\"acetic-anhydride\","
    "\"lot\":\"EX-AA-1\",\"qty\":\"2\",\"unit\":\"t\"}",
    "{\"type\":\"sale\",\"id\":\"ex-sal-1\",\"party\":\"SELLER-1\",\"at\":"
    "\"2026-03-03T09:00:00+08:00\",\"to\":\"BUYER-1\",\"substance\":"
    "\"acetic-anhydride\",\"lot\":\"EX-AA-1\",\"qty\":\"400\",\"unit\":"
    "\"kg\",\"permit\":\"EX-PF-1\"}",
    "{\"type\":\"receipt\",\"id\":\"ex-rcp-1\",\"party\":\"BUYER-1\",\"at\":"
    "\"2026-03-04T10:00:00+08:00\",\"from\":\"SELLER-1\",\"ref\":\"ex-sal-1\","
    "\"substance\":\"acetic-anhydride\",\"lot\":\"EX-AA-1\",\"qty\":\"400\","
    "\"unit\":\"kg\"}",
};

int main(int argc, char **argv)
{
    trace_ledger *l = NULL;
    trace_keyring *ring = NULL;
    trace_batch *b = NULL;
    trace_append_result res;
    char keys[4096];
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s LEDGER_DIR\n", argv[0]);
        return 1;
    }
    snprintf(keys, sizeof(keys), "%s/keys", argv[1]);
    mkdir(argv[1], 0700); /* the key folder lives inside */
    if ((rc = trace_keyring_open(&ring, keys, 1)) != TRACE_OK)
        goto fail;
    rc = trace_ledger_open(&l, argv[1]);
    if (rc == TRACE_ENOTFOUND) {
        const trace_key *reg;
        if ((rc = trace_keyring_generate(ring, "REGULATOR", &reg)) ||
            (rc = trace_ledger_init(&l, argv[1], reg, NULL)))
            goto fail;
    } else if (rc != TRACE_OK) {
        goto fail;
    }
    if ((rc = trace_batch_new(&b, l)) != TRACE_OK)
        goto fail;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if ((rc = trace_batch_add_json(b, events[i], strlen(events[i]),
                                       i + 1)) != TRACE_OK)
            goto fail;
    /* one durable transaction; keys are created for the new parties */
    rc = trace_ledger_append(l, b, ring, NULL, TRACE_APPEND_PROVISION_KEYS,
                             &res);
    if (rc != TRACE_OK)
        goto fail;
    printf("appended %llu entries (%llu already there)\n",
           (unsigned long long)res.appended,
           (unsigned long long)res.duplicates);
    trace_batch_free(b);
    trace_ledger_close(l);
    trace_keyring_free(ring);
    return 0;
fail:
    fprintf(stderr, "error: %s (%s)\n", trace_error_last(), trace_strerror(rc));
    trace_batch_free(b);
    trace_ledger_close(l);
    trace_keyring_free(ring);
    return trace_error_exit_code(rc);
}
