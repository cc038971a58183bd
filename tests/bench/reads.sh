#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Reads through traced beside a long one: a W2 ledger of N events (default
# 300,000; tests/bench/w2gen.py), one party's `balance` timed 100 times,
# alone and while a regulator exports everything in a loop (the export of
# a large ledger comes in pages of max-reply; it runs the whole time); then the
# throughput of 4 readers at once against one (200 balances each way).
# Each call is a tracectl process, start-up included.  Prints p50/p99 in
# ms and calls/s; then the same from clients inside one process
# (bench_daemon --reads), which leaves the start-up out.
#
#   reads.sh BUILD_DIR [EVENTS]
set -euo pipefail
B=${1:?build dir (a Release build)}
N=${2:-300000}
W=$(mktemp -d /tmp/trace-reads-XXXXXX)
TP= EP=
cleanup() {
  [ -n "$EP" ] && kill "$EP" 2>/dev/null
  [ -n "$TP" ] && kill "$TP" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
python3 "$(dirname "$0")/w2gen.py" "$N" >"$W/w2.jsonl"
"$B/tracectl" --data "$W/l" init >/dev/null
"$B/tracectl" --data "$W/l" import --provision-keys --historic "$W/w2.jsonl" >/dev/null
P=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["subject"])' "$W/w2.jsonl")
"$B/traced" --data "$W/l" --listen "ipc://$W/r.ipc" --log-level error --reconcile-at off 2>/dev/null &
TP=$!
C() { "$B/tracectl" --connect "ipc://$W/r.ipc" --keys "$W/l/keys" "$@"; }
for _ in $(seq 100); do C head >/dev/null 2>&1 && break; sleep 0.1; done
run() {
  for _ in $(seq 100); do
    t0=$(date +%s%N)
    C --as "$P" balance "$P" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done | sort -n |
    awk '{a[NR] = $1} END {printf "p50 %.1f ms, p99 %.1f ms", a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000}'
}
loop() { for _ in $(seq "$1"); do C --as "$P" balance "$P" >/dev/null; done; }
rate() { python3 -c "import sys; print('%.0f' % (int(sys.argv[1]) / float(sys.argv[2])))" "$@"; }
t0=$(date +%s.%N)
loop 200
t1=$(date +%s.%N)
one=$(rate 200 "$(echo "$t1 - $t0" | bc -l)")
t0=$(date +%s.%N)
pids=()
for _ in 1 2 3 4; do
  loop 50 &
  pids+=($!)
done
wait "${pids[@]}"
t1=$(date +%s.%N)
four=$(rate 200 "$(echo "$t1 - $t0" | bc -l)")
echo "reads ($N-event W2 ledger): balances by one reader $one/s, by four at once $four/s ($(python3 -c "print('%.2f' % ($four / $one))")x)"
echo "reads ($N-event W2 ledger): a party's balance through traced alone: $(run)"
(while true; do C export >/dev/null 2>&1 || true; done) &
EP=$!
sleep 0.5
echo "reads: the same beside a regulator's export loop: $(run)"
kill "$EP" 2>/dev/null
wait "$EP" 2>/dev/null || true
EP=
kill "$TP"
wait "$TP" 2>/dev/null || true
TP=
"$B/tests/bench/bench_daemon" "$B/traced" --reads "$W/l" "$P"
