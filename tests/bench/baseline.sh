#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Side-by-side ingest benchmark: the same events, in durable batches of
# 10,000, into
#   - this ledger (tracectl import: JSON parsing, signing, hash chains and
#     every index),
#   - PostgreSQL 15 with a per-party hash chain computed by a trigger,
#   - PostgreSQL 15 with the chain computed by the client and COPY,
#   - SQLite (WAL, synchronous=FULL) with the chain computed by the client.
# PostgreSQL runs from a temporary folder on a Unix socket only.
#
#   baseline.sh TRACECTL [EVENTS]      (default 200000)
#
# PostgreSQL comes from pglib.sh.
set -euo pipefail
T=$1
N=${2:-200000}
BATCH=10000
W=$(mktemp -d /tmp/trace-baseline-XXXXXX)
. "$(dirname "$0")/pglib.sh"
C=$(dirname "$0")/chain.py
cleanup() {
  pg_stop
  rm -rf "$W"
}
trap cleanup EXIT

python3 - "$W" "$N" "$BATCH" <<'PY'
import json, os, sys
w, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(w + "/parts")
with open(w + "/parties.jsonl", "w") as f:
    for p in range(1, 5):
        f.write(json.dumps({"type": "party", "id": "reg-%d" % p,
                            "party": "REGULATOR", "at": "2026-01-01T00:00:00Z",
                            "subject": "P%d" % p, "name": "Party %d" % p,
                            "kind": "distributor", "region": "CN-31",
                            "licenses": ["CN-PC-2"]}) + "\n")
for b in range(n // batch):
    p = b % 4 + 1     # each batch is one party's, as a client would send
    with open(w + "/parts/%05d.jsonl" % b, "w") as f:
        for i in range(batch):
            k = b * batch + i
            f.write(json.dumps({
                "type": "sale", "id": "S-%d" % k, "party": "P%d" % p,
                "at": "2026-%02d-%02dT%02d:%02d:00+08:00" % (
                    1 + k % 12, 1 + k % 28, k % 24, k % 60),
                "to": "B%d" % (k % 500), "substance": "acetic-anhydride",
                "lot": "AA-%d" % (k // 7), "qty": "%d.%03d" % (1 + k % 900,
                                                              k % 1000),
                "unit": "kg", "permit": "PF-%d" % (k % 5000),
                "site": "main"}, separators=(",", ":")) + "\n")
PY

rate() { python3 -c "print(round($1 / $2))"; }
now() { date +%s.%N; }

# --- this ledger ---------------------------------------------------------
"$T" --data "$W/ledger" init >/dev/null
"$T" --data "$W/ledger" import --provision-keys "$W/parties.jsonl" >/dev/null
# one event per party first, so keys exist before the timed run
for p in 1 2 3 4; do
  printf '{"type":"loss","id":"warm-%d","party":"P%d","at":"2026-01-02T00:00:00Z","substance":"acetic-anhydride","lot":"W","qty":"1","unit":"kg","reason":"damage"}\n' $p $p
done >"$W/warm.jsonl"
"$T" --data "$W/ledger" import --provision-keys "$W/warm.jsonl" >/dev/null
t0=$(now)
for f in "$W"/parts/*.jsonl; do
  "$T" --data "$W/ledger" import "$f" >/dev/null
done
t1=$(now)
ours=$(rate "$N" "$(echo "$t1 - $t0" | bc -l)")

# --- PostgreSQL -----------------------------------------------------------
pg_start
# trigger: COPY party and body; the database chains
for f in "$W"/parts/*.jsonl; do
  python3 "$C" trigger-csv "$f" >"$f.csv"
done
chown -R postgres "$W"
t0=$(now)
for f in "$W"/parts/*.jsonl; do
  psql -c "\\copy ev_trigger(party, body) FROM '$f.csv' CSV"
done
t1=$(now)
pg_trigger=$(rate "$N" "$(echo "$t1 - $t0" | bc -l)")

# client: the client chains (timed too) and COPYs every column, one
# transaction per batch
t0=$(now)
for f in "$W"/parts/*.jsonl; do
  python3 "$C" csv "$f" "$W/heads.json" |
    psql -c "\\copy ev_client(party, party_seq, prev, hash, body) FROM STDIN CSV"
done
t1=$(now)
pg_client=$(rate "$N" "$(echo "$t1 - $t0" | bc -l)")

# --- SQLite -------------------------------------------------------------------
sqlite=$(python3 "$C" sqlite "$W/sqlite.db" 0 "$W"/parts/*.jsonl)

printf '\nDurable ingest of %d sale events in batches of %d (events/s)\n' "$N" "$BATCH"
printf '%-58s %10s %8s\n' "system" "events/s" "ours/it"
printf '%-58s %10s %8s\n' "this ledger (tracectl import: parse, sign, chain, indexes)" "$ours" "1.00"
for row in "PostgreSQL, chain computed by a trigger:$pg_trigger" \
           "PostgreSQL, chain computed by the client, COPY:$pg_client" \
           "SQLite WAL synchronous=FULL, client chain:$sqlite"; do
  name=${row%%:*} v=${row##*:}
  printf '%-58s %10s %8s\n' "$name" "$v" "$(python3 -c "print('%.2f' % ($ours / $v))")"
done
