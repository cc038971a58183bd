/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch.c - batches of events to append: parsed from JSON Lines, added
 * already encoded (a daemon's own bytes on their way back from a
 * client), or synthesized key registrations; each keeps its exact
 * encoding, which is what is hashed and signed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"

int trace_batch_new(trace_batch **out, trace_ledger *l)
{
    trace_batch *b = calloc(1, sizeof(*b));

    if (!b || !(b->a = arena_new(0))) {
        free(b);
        return trace_fail(TRACE_ENOMEM, "out of memory");
    }
    b->l = l;
    *out = b;
    return TRACE_OK;
}

void trace_batch_free(trace_batch *b)
{
    if (!b)
        return;
    arena_free(b->a);
    free(b->items);
    products_seen_free(b->seen);
    free(b);
}

size_t trace_batch_count(const trace_batch *b)
{
    return b->n;
}

/* Drops a UTF-8 BOM and the line end; 0 if nothing but blanks is left. */
int trim_line(const char **line, size_t *len)
{
    const char *s = *line;
    size_t n = *len;

    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    *line = s;
    *len = n;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 1;
    return 0;
}

int trace_batch_add_json(trace_batch *b, const char *line, size_t len,
                         unsigned long lineno)
{
    Trace__V1__Event *ev;
    struct item *it;
    int rc;

    if (!trim_line(&line, &len))
        return TRACE_OK; /* blank */
    if ((rc = room_for_one(&b->items, &b->cap, b->n, sizeof(*b->items), 256)))
        return rc;
    if (!b->seen && !(b->seen = products_seen_new()))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    rc = event_from_json_in(&ev, b->a, line, len, b->l, b->seen);
    if (rc != TRACE_OK)
        return trace_fail_line(rc, lineno);
    it = &b->items[b->n];
    it->ev = ev;
    it->len = trace__v1__event__get_packed_size(ev);
    it->bytes = arena_alloc(b->a, it->len);
    if (!it->bytes)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    trace__v1__event__pack(ev, it->bytes);
    it->lineno = lineno;
    b->n++;
    return TRACE_OK;
}

int trace_batch_add_encoded(trace_batch *b, const uint8_t *bytes, size_t len,
                            unsigned long lineno)
{
    Trace__V1__Event *ev;
    struct item *it;
    uint8_t *copy;
    int rc;

    if (len == 0 || len > TRACE_MAX_LINE)
        return trace_fail(TRACE_EINVAL, "line %lu: event of %zu bytes", lineno,
                          len);
    if ((rc = room_for_one(&b->items, &b->cap, b->n, sizeof(*b->items), 256)))
        return rc;
    if (!(copy = arena_alloc(b->a, len)))
        return trace_fail(TRACE_ENOMEM, "out of memory");
    memcpy(copy, bytes, len);
    ev = event_decode(b->a, copy, len);
    /* only the canonical encoding is accepted: packing the decoded event
     * must give the same bytes back */
    if (!ev || !event_type_by_case(ev->body_case) ||
        trace__v1__event__get_packed_size(ev) != len)
        return trace_fail(TRACE_EINVAL, "line %lu: not an encoded event",
                          lineno);
    {
        uint8_t *re = arena_alloc(b->a, len);
        if (!re)
            return trace_fail(TRACE_ENOMEM, "out of memory");
        trace__v1__event__pack(ev, re);
        if (memcmp(re, copy, len) != 0)
            return trace_fail(TRACE_EINVAL,
                              "line %lu: event not in canonical encoding",
                              lineno);
    }
    /* quantities: within this ledger's ceiling, as when parsed */
    if (event_check_quantities(b->l, ev) != TRACE_OK)
        return trace_fail_line(TRACE_EINVAL, lineno);
    it = &b->items[b->n];
    it->ev = ev;
    it->bytes = copy;
    it->len = len;
    it->lineno = lineno;
    b->n++;
    return TRACE_OK;
}

int trace_batch_add_key_registration(trace_batch *b, const char *regulator,
                                     const char *party,
                                     const uint8_t pubkey[TRACE_PUBKEY_LEN])
{
    Trace__V1__Event ev = TRACE__V1__EVENT__INIT;
    Trace__V1__Time at = TRACE__V1__TIME__INIT;
    Trace__V1__PartyBody body;
    Trace__V1__PartyState *st;
    uint8_t kid[TRACE_KEY_ID_LEN], *bytes;
    char id[160], hex[2 * TRACE_KEY_ID_LEN + 1];
    MDB_txn *txn;
    arena *tmp = arena_new(0);
    size_t len;
    int rc;

    if (!tmp)
        return trace_fail(TRACE_ENOMEM, "out of memory");
    if ((rc = ledger_txn_begin(b->l, MDB_RDONLY, &txn))) {
        arena_free(tmp);
        return trace_fail_mdb(rc, "begin");
    }
    /* the party's registration as it stands - its latest `party` event in
     * this batch, or else the ledger's - with the key added: what
     * import --provision-keys records */
    const Trace__V1__PartyBody *in_batch = NULL;
    for (size_t i = b->n; i-- > 0 && !in_batch;)
        if (b->items[i].ev->body_case == TRACE__V1__EVENT__BODY_PARTY_BODY &&
            strcmp(b->items[i].ev->party_body->subject, party) == 0)
            in_batch = b->items[i].ev->party_body;
    if (in_batch) {
        rc =
            in_batch->has_pubkey
                ? trace_fail(TRACE_EEXIST, "%s is registered with a key", party)
                : TRACE_OK;
    } else {
        rc = party_state_get(txn, b->l, tmp, party, &st);
        if (rc == TRACE_OK && st->n_keys > 0)
            rc = trace_fail(TRACE_EEXIST, "%s already has a registered key",
                            party);
    }
    if (rc == TRACE_OK) {
        body = in_batch ? *in_batch : *st->body;
        body.has_pubkey = 1;
        body.pubkey.data = (uint8_t *)pubkey;
        body.pubkey.len = TRACE_PUBKEY_LEN;
        body.has_revoke = 0;
        trace_pubkey_id(kid, pubkey);
        hex_encode(hex, kid, sizeof(kid));
        snprintf(id, sizeof(id), "key:%s:%s", party, hex);
        at.us = time_now_us();
        ev.type = "party";
        ev.id = id;
        ev.party = (char *)regulator;
        ev.at = &at;
        ev.body_case = TRACE__V1__EVENT__BODY_PARTY_BODY;
        ev.party_body = &body;
        len = trace__v1__event__get_packed_size(&ev);
        if (!(bytes = arena_alloc(tmp, len)))
            rc = trace_fail(TRACE_ENOMEM, "out of memory");
        else {
            trace__v1__event__pack(&ev, bytes);
            rc = trace_batch_add_encoded(b, bytes, len, 0);
        }
    }
    ledger_txn_abort(b->l, txn);
    arena_free(tmp);
    return rc;
}

int trace_batch_event(const trace_batch *b, size_t i, const char **type,
                      const char **party, const uint8_t **bytes, size_t *len,
                      unsigned long *lineno)
{
    if (i >= b->n)
        return trace_fail(TRACE_ENOTFOUND, "no event %zu in the batch", i);
    if (type)
        *type = b->items[i].ev->type;
    if (party)
        *party = b->items[i].ev->party;
    if (bytes)
        *bytes = b->items[i].bytes;
    if (len)
        *len = b->items[i].len;
    if (lineno)
        *lineno = b->items[i].lineno;
    return TRACE_OK;
}
