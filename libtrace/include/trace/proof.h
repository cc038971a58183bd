/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proof.h - proofs anyone can check (SPEC section 8): the journal as an
 * RFC 9162 Merkle tree, checkpoints as C2SP signed notes, cosignatures
 * of witnesses (C2SP tlog-cosignature, cosignature/v1), and offline
 * proof bundles.
 *
 * Tree: leaf i (from 0) is journal entry i + 1, leaf hash SHA-256(0x00 ||
 * exact Entry bytes), node hash SHA-256(0x01 || left || right), tree
 * size = number of entries.
 *
 * Checkpoint (signed note):
 *
 *   trace/<root regulator>/<ledger id>\n
 *   <tree size, decimal>\n
 *   <root hash, standard base64>\n
 *   \n
 *   — <key name> <base64(key id[4] || Ed25519 signature[64])>\n
 *   ...one line per signer or cosigner
 *
 * The signature covers the text before the blank line (its three lines
 * with their newlines).  The log's key name is the origin, its key id
 * SHA-256(name || "\n" || 0x01 || public key)[:4], and its verifier key
 * (vkey) is NAME+KEYID(8 hex)+base64(0x01 || public key).  A witness
 * cosignature line carries base64(key id[4] || u64be time || signature),
 * key id SHA-256(name || "\n" || 0x04 || public key)[:4], over
 * "cosignature/v1\ntime <time>\n" || the checkpoint text.  A checkpoint
 * is stored in the same transaction as the entries it covers: one per
 * commit, with the log key of the ledger folder (DIR/traced.key, made
 * when first needed; traced may name another with its `key` setting).
 */
#ifndef TRACE_PROOF_H
#define TRACE_PROOF_H

#include <stddef.h>
#include <stdint.h>

#include "trace/key.h"
#include "trace/ledger.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRACE_NOTE_MAX_SIGS 32

typedef struct trace_note_sig {
    char name[256];
    uint8_t key_id[4];
    uint8_t sig[8 + 64]; /* cosignatures: u64be time || signature */
    size_t sig_len;      /* 64, or 72 for a cosignature */
} trace_note_sig;

typedef struct trace_checkpoint {
    char origin[256];
    uint64_t size;
    uint8_t root[32];
    char text[1024]; /* the signed text: the lines before the blank line */
    size_t text_len;
    size_t n_sigs;
    trace_note_sig sigs[TRACE_NOTE_MAX_SIGS];
} trace_checkpoint;

/* Parses a signed checkpoint note (at most 64 KiB; unknown signature
 * lines are kept, extension lines are part of the text).  TRACE_EINVAL
 * naming what is malformed. */
int trace_checkpoint_parse(trace_checkpoint *cp, const char *note, size_t len);

/* The verifier key NAME+KEYID+base64(0x01||pub) of an Ed25519 note
 * signer, and its parse (TRACE_EINVAL if malformed, or if its key id
 * does not match its name and key). */
int trace_vkey_format(char *out, size_t cap, const char *name,
                      const uint8_t pub[TRACE_PUBKEY_LEN]);
int trace_vkey_parse(const char *vkey, char *name, size_t cap,
                     uint8_t pub[TRACE_PUBKEY_LEN]);

/* TRACE_OK if `cp` carries a valid Ed25519 note signature by (name,
 * pub); TRACE_EVERIFY otherwise. */
int trace_checkpoint_verify(const trace_checkpoint *cp, const char *name,
                            const uint8_t pub[TRACE_PUBKEY_LEN]);
/* TRACE_OK if `cp` carries a valid cosignature/v1 by (name, pub); its
 * time (seconds since the epoch) in *time if not NULL. */
int trace_checkpoint_verify_cosig(const trace_checkpoint *cp, const char *name,
                                  const uint8_t pub[TRACE_PUBKEY_LEN],
                                  uint64_t *time);
/* A cosignature/v1 line ("— NAME base64\n") by `key` under `name` over
 * cp's text at `time`. */
int trace_checkpoint_cosign(const trace_checkpoint *cp, const trace_key *key,
                            const char *name, uint64_t time, char *line,
                            size_t cap);

/* RFC 9162 checks: 1 if the proof holds, 0 if not. */
int trace_merkle_verify_inclusion(uint64_t index, uint64_t size,
                                  const uint8_t leaf[32],
                                  const uint8_t (*proof)[32], size_t n,
                                  const uint8_t root[32]);
int trace_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                    const uint8_t root1[32],
                                    const uint8_t root2[32],
                                    const uint8_t (*proof)[32], size_t n);

/* ------------------------------------------------------------------ */
/* The ledger's side                                                    */

/* Uses `key` (borrowed; it must outlive the ledger handle) as the log
 * key instead of DIR/traced.key. */
void trace_ledger_set_checkpoint_key(trace_ledger *l, const trace_key *key);
/* The log's origin and verifier key. */
int trace_checkpoint_origin(trace_ledger *l, char *out, size_t cap);
int trace_checkpoint_vkey(trace_ledger *l, char *out, size_t cap);
/* The stored checkpoint of tree size `size` (0: the latest), with the
 * cosignatures stored for it, as a malloc'd note.  TRACE_ENOTFOUND if no
 * commit ended at that size. */
int trace_checkpoint_note(trace_ledger *l, uint64_t size, char **note,
                          size_t *len);
/* The most witnesses whose cosignatures are stored for one checkpoint:
 * the note served with them and the log's signature stays within
 * TRACE_NOTE_MAX_SIGS lines. */
#define TRACE_CHECKPOINT_MAX_WITNESSES 31

/* Stores a witness's cosignature for the stored checkpoint of its size:
 * `note` is the checkpoint (its text as the log stored it) with at
 * least the witness's cosignature line, which must verify under
 * `witness_vkey`; that line alone is stored, under the vkey's name, and
 * served by trace_checkpoint_note.  A write transaction: in traced, run
 * it on the writer thread.  Returns TRACE_OK (also when the same
 * witness cosigns again: its newer line replaces the older);
 * TRACE_EINVAL for a malformed vkey or note; TRACE_EVERIFY when the
 * cosignature does not verify or the checkpoint is not the one stored
 * for its size; TRACE_ENOTFOUND when no checkpoint of that size is
 * stored; TRACE_EEXIST when another key's cosignature is stored under
 * the same name; TRACE_EPERM when TRACE_CHECKPOINT_MAX_WITNESSES other
 * names are stored for it; TRACE_EFULL, TRACE_EUNAVAIL, TRACE_ENOMEM. */
int trace_checkpoint_add_cosig(trace_ledger *l, const char *note, size_t len,
                               const char *witness_vkey);

/* The RFC 9162 inclusion proof of leaf `index` (entry index + 1) in the
 * tree of `size` entries, and the consistency proof from `old_size` to
 * `new_size`: *n hashes into proof (room for 64).  TRACE_EINVAL for
 * sizes the journal does not have or out of order. */
int trace_inclusion_proof(trace_ledger *l, uint64_t index, uint64_t size,
                          uint8_t (*proof)[32], size_t *n);
int trace_consistency_proof(trace_ledger *l, uint64_t old_size,
                            uint64_t new_size, uint8_t (*proof)[32], size_t *n);
/* MTH of the first `size` entries. */
int trace_tree_root(trace_ledger *l, uint64_t size, uint8_t root[32]);

/* Bundles (JSON, malloc'd): an event's inclusion, with what checking the
 * recorder's signature needs; a party's whole chain; a consistency
 * proof.  The checkpoint is the latest stored one. */
int trace_prove_event(trace_ledger *l, const char *party, const char *id,
                      char **json, size_t *len);
int trace_prove_history(trace_ledger *l, const char *party, char **json,
                        size_t *len);
int trace_prove_consistency(trace_ledger *l, uint64_t old_size,
                            uint64_t new_size, char **json, size_t *len);

/* ------------------------------------------------------------------ */
/* Receipts (SPEC 8)                                                    */
/*
 * A write's receipt: the checkpoint stored by the commit that appended
 * its entries (or a later one) and inclusion proofs in that
 * checkpoint's tree.  The cost is bounded: a write of at most
 * TRACE_RECEIPT_MAX_PROOFS entries gets a proof of every entry; a larger
 * one (an import) the proofs of its first and last entry only, the
 * entries between being covered by the same signed root (`prove
 * PARTY/EVENT-ID` proves any of them later).
 *
 * The JSON form ("bundle": "trace.v1.receipt", checked by
 * trace_check_bundle) holds one receipt per commit of the write, in
 * order (an import through traced commits in chunks):
 *
 *   origin, tree_size, checkpoint   the last commit's checkpoint
 *   first_seq, last_seq, count      the write's entries (journal
 *                                   positions, from 1) and their number
 *   commits: [{first_seq, last_seq, tree_size,
 *              checkpoint           only where not the top-level one
 *              leaves: [{leaf_index, leaf_hash (hex), entry (base64 of
 *                        the exact Entry bytes), inclusion ([hex])}]}]
 *
 * The check: every checkpoint is signed by the log key under its
 * origin and covers its commit (tree_size >= last_seq); commits follow
 * each other; each leaf's hash is SHA-256(0x00 || entry), its inclusion
 * proof leads to its checkpoint's root and its entry decodes as journal
 * entry leaf_index + 1 within its commit's range; the first and last
 * entry of each commit are proven, and every one of a commit of at most
 * TRACE_RECEIPT_MAX_PROOFS entries.
 */
#define TRACE_RECEIPT_MAX_PROOFS 64

typedef struct trace_receipt_leaf {
    uint64_t leaf_index; /* journal position - 1 */
    uint8_t leaf_hash[32];
    const uint8_t *entry; /* the exact Entry bytes */
    size_t entry_len;
    const uint8_t (*proof)[32]; /* inclusion in the checkpoint's tree */
    size_t n_proof;
} trace_receipt_leaf;

typedef struct trace_receipt {
    const char *checkpoint; /* the signed note, cosignatures included */
    size_t checkpoint_len;
    uint64_t first_seq, last_seq; /* the entries (0, 0: none appended) */
    size_t n_leaves;
    const trace_receipt_leaf *leaves; /* in journal order */
} trace_receipt;

/* The receipt of journal entries first_seq..last_seq (0, 0: the latest
 * checkpoint alone) against the latest stored checkpoint, read in one
 * transaction: right after the commit that appended them (traced's
 * writer, or tracectl after an append), the one that commit stored.
 * *out is the caller's, for trace_receipt_free.  TRACE_EINVAL for a bad
 * range, TRACE_ENOTFOUND if no checkpoint covers last_seq. */
int trace_receipt_get(trace_ledger *l, uint64_t first_seq, uint64_t last_seq,
                      trace_receipt **out);
void trace_receipt_free(trace_receipt *r);
/* The JSON bundle of the receipts of a write's commits, in order (parts
 * without entries are left out; TRACE_ENOTFOUND if none has any).
 * *json is malloc'd.  The parts are not checked here. */
int trace_receipt_json(const trace_receipt *parts, size_t n, char **json,
                       size_t *len);
/* For a writer that knows what it sent: TRACE_OK if each leaf's hash is
 * that of its entry and each entry, in order, carries one of `events`
 * (the exact event bytes the write sent, in order); TRACE_EVERIFY
 * naming the first leaf that does not. */
int trace_receipt_match(const trace_receipt *r, const uint8_t *const *events,
                        const size_t *lens, size_t n);

/* Checks a bundle offline.  TRACE_OK when everything holds;
 * TRACE_EVERIFY (or TRACE_EINVAL for a malformed bundle) with the first
 * failure named in trace_error_last(). */
int trace_check_bundle(const char *json, size_t len, const char *log_vkey,
                       const char *const *witness_vkeys, size_t n_witnesses,
                       size_t min_cosigs, char *summary, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
