#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash trials of traced:
#   crash_daemon.sh TRACECTL TRACED DEMO.jsonl [TRIALS]
# Writers of three parties append through the daemon without pause and
# log the id of every event the daemon acknowledged; traced is killed
# with SIGKILL at random moments TRIALS times (default 5; the full count
# is 50) and restarted.  Afterwards every acknowledged event must be in
# the ledger and `verify` must pass.
set -u
T=$1 TD=$2 DEMO=$3 TRIALS=${4:-5}
W=$(mktemp -d /tmp/trace-crashd-XXXXXX)
D=$W/ledger K=$D/keys IPC=ipc://$W/traced.ipc
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  [ -f "$W/stop" ] || touch "$W/stop"
  jobs -p | xargs -r kill -9 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
fail=0

"$T" --data "$D" init >/dev/null && "$T" --data "$D" import --provision-keys "$DEMO" >/dev/null ||
  { echo "FAIL: setup"; exit 1; }
start() {
  "$TD" --data "$D" --listen "$IPC" --log-level error 2>>"$W/traced.log" &
  DPID=$!
}

# writer PARTY: appends produce events one request at a time (batches of
# 1 to 20 lines), logging the ids of each acknowledged request
writer() {
  local p=$1 n=0
  while [ ! -f "$W/stop" ]; do
    local k=$((RANDOM % 20 + 1)) f=$W/batch-$p.jsonl
    : >"$f"
    for _ in $(seq "$k"); do
      n=$((n + 1))
      printf '{"type":"produce","id":"w-%d","party":"%s","at":"2026-03-01T08:00:00+08:00","substance":"acetone","lot":"AC-%s","qty":"1","unit":"L"}\n' \
        "$n" "$p" "$p" >>"$f"
    done
    if "$T" --connect "$IPC" --keys "$K" --as "$p" --timeout 5 import "$f" >/dev/null 2>&1; then
      grep -o '"id":"w-[0-9]*"' "$f" | sed "s/^/$p /" >>"$W/acked-$p"
    else
      sleep 0.05
    fi
  done
}

start
sleep 0.5
for p in 91310000MA1K000001 91320000MA1K000002 91330000MA1K000003; do
  : >"$W/acked-$p"
  writer "$p" &
done
for i in $(seq "$TRIALS"); do
  # a random moment: 50 to 800 ms of writing
  sleep "0.$(printf '%03d' $((RANDOM % 750 + 50)))"
  kill -9 "$DPID"
  wait "$DPID" 2>/dev/null
  start
  sleep 0.2
done
touch "$W/stop"
wait $(jobs -p | grep -v "^$DPID$") 2>/dev/null
kill -TERM "$DPID"; wait "$DPID"; DPID=

"$T" --data "$D" export >"$W/export.jsonl" || { echo "FAIL: export"; fail=1; }
acked=$(cat "$W"/acked-* | wc -l)
lost=$(cat "$W"/acked-* | python3 -c '
import json, sys
have = set()
for line in open(sys.argv[1]):
    e = json.loads(line)
    have.add((e["party"], e["id"]))
print(sum(1 for l in sys.stdin
          if (l.split()[0], l.split()[1].split(":")[1].strip("\"")) not in have))
' "$W/export.jsonl")
if ! "$T" --data "$D" verify >/dev/null 2>"$W/verify.err"; then
  echo "FAIL: verify after the crashes: $(cat "$W/verify.err")"; fail=1
fi
[ "$acked" -gt 0 ] || { echo "FAIL: no append was acknowledged"; fail=1; }
[ "$lost" -eq 0 ] || { echo "FAIL: $lost of $acked acknowledged events lost"; fail=1; }
echo "crash_daemon: $TRIALS kills, $acked acknowledged events, $lost lost"
exit $fail
