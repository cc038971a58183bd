/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_int.h - what the rule files share: the rule functions that the
 * table (rules.c) names, and the helpers (rules.c) that more than one rule
 * file uses.  Private to libtrace.
 */
#ifndef TRACE_RULES_INT_H
#define TRACE_RULES_INT_H

#include "reconcile_int.h"

/* The rule at index i of reconcile_rules[] (a rule function's `self`). */
#define RULE(i) (&reconcile_rules[i])

/* An amount of base units as text in `unit`, in the run's arena. */
char *fmt_qty(struct run *r, int64_t amount, const char *unit);

/* Whether items a and b of ctx are equal (for group_items). */
typedef int (*same_fn)(const void *ctx, size_t a, size_t b);
/* A 64-bit hash of h, well mixed (inline: the rules call it per item). */
static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}
/* Items 0..n-1 into perm, grouped by hash and `same`, in order of first
 * item, each group in item order. */
int group_items(size_t n, const uint64_t *hash, same_fn same, const void *ctx,
                uint32_t *perm);

/* The event (party, id) of the run, or NULL. */
const rec *find_rec(struct run *r, const char *party, const char *id);

/* Builds r->custody (the custody events citing each sale) once. */
int custody_build(struct run *r);
/* The first custody event citing the sale (party, id): 1 + its by_at
 * index, 0 if none. */
uint32_t custody_first(struct run *r, const char *party, const char *id);

/* Walks of changes, one per string key (UNUSUAL_ORDER, SPLIT_PURCHASE). */
struct change {
    const rec *e;
    int64_t delta;
    int is_count;
    int input; /* 1 + index of the produce input it consumes, or 0 */
};

struct walk {
    struct change *c;
    size_t n, cap;
};

/* Walks in the order their keys were first seen (deterministic output). */
struct walks {
    strmap *m;
    const char **keys;
    size_t n, cap;
};

/* Appends ch to the walk of `key` (a walk, or a struct starting with one,
 * of ws->m's value size). */
int push_change(struct run *r, struct walks *ws, const char *key,
                struct change ch);
/* Frees the map and key list of ws (the walks live in the run arena). */
void walks_free(struct walks *ws);

/* The rule functions, in table order. */
/* rules_stock.c: PERMIT_MISSING, PERMIT_INVALID and PERMIT_EXCEEDED;
 * SHIPMENT_UNCONFIRMED, QTY_MISMATCH and RECEIPT_UNMATCHED; NEGATIVE_STOCK
 * and STOCKTAKE_VARIANCE. */
int rule_permits(struct run *r, const struct cfg *c);
int rule_two_way(struct run *r, const struct cfg *c);
int rule_stock(struct run *r, const struct cfg *c);
/* rules_party.c: UNUSUAL_ORDER, UNLICENSED_PARTY, DESTROY_UNWITNESSED,
 * LOSS_REPORTED, LATE_REPORT. */
int rule_unusual(struct run *r, const struct cfg *c);
int rule_unlicensed(struct run *r, const struct cfg *c);
int rule_destroy(struct run *r, const struct cfg *c);
int rule_loss(struct run *r, const struct cfg *c);
int rule_late(struct run *r, const struct cfg *c);
/* rules_drugs.c: RX_LIMIT, RX_REUSE, DOCTOR_SHOPPING. */
int rule_rx_limit(struct run *r, const struct cfg *c);
int rule_rx_reuse(struct run *r, const struct cfg *c);
int rule_doctor_shopping(struct run *r, const struct cfg *c);
/* rules_spec12.c: SPLIT_PURCHASE, PARCEL_CHECK_MISSING, CUSTODY_GAP and
 * TRANSIT_OVERDUE, APPLICATION_OVERDUE. */
int rule_split(struct run *r, const struct cfg *c);
int rule_parcel(struct run *r, const struct cfg *c);
int rule_custody(struct run *r, const struct cfg *c);
int rule_app_overdue(struct run *r, const struct cfg *c);

#endif
