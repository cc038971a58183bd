#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash trials: kill -9 tracectl in the middle of imports, then check the
# ledger verifies and holds each batch either whole or not at all.
#   crash.sh TRACECTL [ROUNDS]
set -u
T=$1 ROUNDS=${2:-5}
W=$(mktemp -d /tmp/trace-crash-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
pass=0 fail=0 killed=0
"$T" --data "$D" init >/dev/null || { echo "init failed"; exit 1; }
printf '%s\n' '{"type":"party","id":"r1","party":"REGULATOR","at":"2026-01-01T00:00:00Z","subject":"P1","name":"one","kind":"manufacturer","region":"CN-31","licenses":["CN-PC-1"]}' >"$W/reg.jsonl"
"$T" --data "$D" import --provision-keys "$W/reg.jsonl" >/dev/null || exit 1
"$T" --data "$D" import --provision-keys "$W/reg.jsonl" >/dev/null
entries() { "$T" --data "$D" --json verify 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
N=60000
for r in $(seq 1 "$ROUNDS"); do
  python3 - "$W/batch.jsonl" "$r" "$N" <<'PY'
import sys
path, r, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    for i in range(n):
        f.write('{"type":"produce","id":"r%d-%d","party":"P1","at":"2026-02-01T00:00:00Z","substance":"ephedrine","lot":"L%d","qty":"1","unit":"kg"}\n' % (r, i, r))
PY
  before=$(entries)
  "$T" --data "$D" import "$W/batch.jsonl" >/dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  if ! "$T" --data "$D" verify >/dev/null 2>"$W/err"; then
    fail=$((fail + 1)); echo "round $r: verify failed: $(cat "$W/err")"; continue
  fi
  after=$(entries)
  if [ "$after" = "$before" ]; then
    pass=$((pass + 1)); killed=$((killed + 1))
  elif [ "$after" = $((before + N)) ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "round $r: $before -> $after entries: a partial batch"
  fi
done
echo "$killed of $ROUNDS imports were killed before their commit"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
