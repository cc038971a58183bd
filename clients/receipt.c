/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receipt.c - `record ... --receipt FILE` and `import ... --receipt FILE`:
 * the receipt of a write (SPEC 8, trace/proof.h) saved as a JSON bundle
 * that `check-proof FILE --log-key VKEY` accepts.
 *
 * Through traced each commit's reply carries its receipt (wire.proto
 * Committed.checkpoint, .inclusions); an import commits in chunks, so
 * the receipts of all its commits are kept (the replies they borrow
 * from with them) and written as one bundle.  Before a receipt is
 * saved, tracectl checks what it can: each proven entry's leaf hash is
 * that of its entry bytes, and each entry holds, in order, one of the
 * exact event bytes this write sent (trace_receipt_match); then the
 * whole bundle as check-proof would, with the daemon's log key
 * (HelloReply.pubkey under the checkpoints' origin).  On a ledger folder
 * the receipt is read from the ledger after the append, and checked
 * with the folder's log key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_int.h"
#include "trace/proof.h"

struct ctl_receipts {
    trace_receipt *parts; /* one per commit, borrowing from resps */
    trace_receipt_leaf **leaves;
    Trace__Wire__V1__Response **resps;
    size_t n, cap;
    int missing;     /* a commit's reply carried no receipt */
    int failed;      /* a receipt does not match what was sent */
    char msg[512];   /* why */
    int fatal_nomem; /* out of memory while keeping one */
};

struct ctl_receipts *ctl_receipts_new(void)
{
    return calloc(1, sizeof(struct ctl_receipts));
}

void ctl_receipts_free(struct ctl_receipts *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->leaves[i]);
        trace__wire__v1__response__free_unpacked(rs->resps[i], NULL);
    }
    free(rs->parts);
    free(rs->leaves);
    free(rs->resps);
    free(rs);
}

/* The receipt in a commit's reply as a trace_receipt borrowing its
 * checkpoint and entries from the reply; its leaves and their proofs in
 * one block, *out, to free.  0, or -1 if the reply has none or a
 * malformed one. */
static int from_wire(const Trace__Wire__V1__Committed *c, trace_receipt *r,
                     trace_receipt_leaf **out)
{
    size_t hashes = 0, at = 0;
    trace_receipt_leaf *lv;
    uint8_t(*h)[32];

    *out = NULL;
    memset(r, 0, sizeof(*r));
    if (!c->checkpoint || !c->has_first_seq || !c->first_seq ||
        !c->has_last_seq || c->last_seq < c->first_seq)
        return -1;
    for (size_t i = 0; i < c->n_inclusions; i++) {
        const Trace__Wire__V1__Inclusion *in = c->inclusions[i];
        if (in->leaf_hash.len != 32 || in->n_hashes > 64)
            return -1;
        for (size_t k = 0; k < in->n_hashes; k++)
            if (in->hashes[k].len != 32)
                return -1;
        hashes += in->n_hashes;
    }
    if (!(lv = calloc(1, (c->n_inclusions + 1) * sizeof(*lv) + hashes * 32)))
        return -1;
    h = (uint8_t(*)[32])(lv + c->n_inclusions + 1);
    for (size_t i = 0; i < c->n_inclusions; i++) {
        const Trace__Wire__V1__Inclusion *in = c->inclusions[i];
        lv[i].leaf_index = in->leaf_index;
        memcpy(lv[i].leaf_hash, in->leaf_hash.data, 32);
        lv[i].entry = in->entry.data;
        lv[i].entry_len = in->entry.len;
        lv[i].proof = (const uint8_t(*)[32])(h + at);
        lv[i].n_proof = in->n_hashes;
        for (size_t k = 0; k < in->n_hashes; k++, at++)
            memcpy(h[at], in->hashes[k].data, 32);
    }
    r->checkpoint = c->checkpoint;
    r->checkpoint_len = strlen(c->checkpoint);
    r->first_seq = c->first_seq;
    r->last_seq = c->last_seq;
    r->n_leaves = c->n_inclusions;
    r->leaves = lv;
    *out = lv;
    return 0;
}

void ctl_receipts_add(struct ctl_receipts *rs, Trace__Wire__V1__Response *resp,
                      const ProtobufCBinaryData *events, size_t n)
{
    const Trace__Wire__V1__Committed *c = resp->committed;
    trace_receipt r;
    trace_receipt_leaf *lv;
    const uint8_t **evp = NULL;
    size_t *lens = NULL;

    if (!c->has_first_seq || !c->first_seq) { /* nothing appended */
        trace__wire__v1__response__free_unpacked(resp, NULL);
        return;
    }
    if (from_wire(c, &r, &lv) != 0) {
        rs->missing = 1;
        trace__wire__v1__response__free_unpacked(resp, NULL);
        return;
    }
    /* each proven entry holds, in order, an event this write sent */
    if (!rs->failed && (evp = calloc(n + 1, sizeof(*evp))) &&
        (lens = calloc(n + 1, sizeof(*lens)))) {
        for (size_t i = 0; i < n; i++) {
            evp[i] = events[i].data;
            lens[i] = events[i].len;
        }
        if (trace_receipt_match(&r, evp, lens, n) != TRACE_OK) {
            rs->failed = 1;
            snprintf(rs->msg, sizeof(rs->msg), "%s", trace_error_last());
        }
    }
    free(evp);
    free(lens);
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 8;
        trace_receipt *p = realloc(rs->parts, cap * sizeof(*p));
        trace_receipt_leaf **l =
            p ? realloc(rs->leaves, cap * sizeof(*l)) : NULL;
        Trace__Wire__V1__Response **q =
            l ? realloc(rs->resps, cap * sizeof(*q)) : NULL;
        if (p)
            rs->parts = p;
        if (l)
            rs->leaves = l;
        if (!q) {
            rs->fatal_nomem = 1;
            free(lv);
            trace__wire__v1__response__free_unpacked(resp, NULL);
            return;
        }
        rs->resps = q;
        rs->cap = cap;
    }
    rs->parts[rs->n] = r;
    rs->leaves[rs->n] = lv;
    rs->resps[rs->n] = resp;
    rs->n++;
}

/* Writes text to path. */
static int write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f) {
        fprintf(ctl_err, "tracectl: %s: %s\n", path, strerror(errno));
        return 4;
    }
    ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    ok &= fclose(f) == 0;
    if (!ok) {
        fprintf(ctl_err, "tracectl: cannot write %s\n", path);
        return 6;
    }
    return 0;
}

int ctl_receipt_save(struct globals *g, trace_ledger *l, const char *path,
                     const trace_append_result *res)
{
    trace_receipt *own = NULL;
    const trace_receipt *parts;
    trace_checkpoint *cp = NULL;
    char vkey[512], summary[1024], *json = NULL;
    size_t n, len;
    int rc, ret = 0;

    if (res->appended == 0 || res->first_seq == 0) {
        fprintf(ctl_err, "tracectl: nothing was appended (already recorded): "
                         "no receipt written; `prove PARTY/EVENT-ID` proves "
                         "an event that is in the ledger\n");
        return 0;
    }
    if (l) {
        if ((rc = trace_receipt_get(l, res->first_seq, res->last_seq, &own)) !=
                TRACE_OK ||
            (rc = trace_checkpoint_vkey(l, vkey, sizeof(vkey))) != TRACE_OK) {
            trace_receipt_free(own);
            fprintf(ctl_err,
                    "tracectl: the write is stored, but no receipt: "
                    "%s\n",
                    trace_error_last());
            return trace_error_exit_code(rc);
        }
        parts = own;
        n = 1;
    } else {
        struct ctl_receipts *rs = g->receipts;
        if (!rs || rs->fatal_nomem || rs->missing || rs->n == 0) {
            fprintf(ctl_err,
                    "tracectl: the write is stored, but the daemon's reply "
                    "carried no usable receipt%s\n",
                    rs && rs->fatal_nomem ? " (out of memory)"
                                          : " (a traced of before receipts?)");
            return 6;
        }
        if (rs->failed) {
            fprintf(ctl_err,
                    "tracectl: the write is stored, but its receipt does not "
                    "match what was sent: %s\n",
                    rs->msg);
            return 3;
        }
        parts = rs->parts;
        n = rs->n;
        /* the daemon's log key, named by its checkpoints' origin */
        if (!(cp = malloc(sizeof(*cp))) ||
            trace_checkpoint_parse(cp, parts[n - 1].checkpoint,
                                   parts[n - 1].checkpoint_len) != TRACE_OK ||
            trace_vkey_format(vkey, sizeof(vkey), cp->origin,
                              g->remote->daemon_pub) != TRACE_OK) {
            free(cp);
            fprintf(ctl_err, "tracectl: the write is stored, but the "
                             "receipt's checkpoint is malformed\n");
            return 3;
        }
        free(cp);
    }
    rc = trace_receipt_json(parts, n, &json, &len);
    trace_receipt_free(own);
    if (rc != TRACE_OK) {
        fprintf(ctl_err, "tracectl: the write is stored, but no receipt: %s\n",
                trace_error_last());
        return trace_error_exit_code(rc);
    }
    /* what check-proof will say of it */
    if (trace_check_bundle(json, len, vkey, NULL, 0, 0, summary,
                           sizeof(summary)) != TRACE_OK) {
        fprintf(ctl_err,
                "tracectl: the write is stored, but its receipt does not "
                "check: %s\n",
                trace_error_last());
        ret = 3;
    } else {
        ret = write_file(path, json, len);
    }
    free(json);
    return ret;
}
