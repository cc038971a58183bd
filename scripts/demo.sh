#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up a fresh Debian machine, builds tracectl and traced, loads the
# multi-party demo data set into a new ledger, starts traced on it and
# walks through the commands a newcomer needs, through the daemon.
# traced then keeps running in the foreground: Ctrl-C stops it cleanly.
# DEMO_STOP=1 stops it right after the walk-through; DEMO_DIR names the
# ledger folder (default demo-ledger); DEMO_PORT the TCP port (7700).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tracectl traced
t=./build/tracectl
data=${DEMO_DIR:-demo-ledger}
port=${DEMO_PORT:-7700}
url=tcp://127.0.0.1:$port
pub=tcp://127.0.0.1:$((port + 1))
rm -rf "$data"
run() { echo "\$ tracectl $*"; "$t" "$@"; echo; }

echo "== a new ledger with the demo data (embedded: tracectl --data)"
run --data "$data" init
echo "\$ cat examples/demo.jsonl examples/demo-more.jsonl | tracectl --data $data import --provision-keys -"
cat examples/demo.jsonl examples/demo-more.jsonl |
  "$t" --data "$data" import --provision-keys -
echo

echo "== traced on it"
ipc=ipc://$(cd "$data" && pwd)/traced.ipc
./build/traced --data "$data" --listen "$url" --listen "$ipc" --pub "$pub" &
daemon=$!
stop() { kill -TERM "$daemon" 2>/dev/null; wait "$daemon"; }
trap 'stop; exit 0' INT TERM
up=0
for _ in $(seq 50); do
  "$t" --connect "$url" --keys "$data/keys" head >/dev/null 2>&1 && { up=1; break; }
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
[ "$up" = 1 ] || { echo "traced did not start (is port $port taken? DEMO_PORT=...)"; exit 1; }

echo
echo "== the same commands through the daemon (tracectl --connect)"
c=(--connect "$url" --keys "$data/keys")
run "${c[@]}" verify
run "${c[@]}" balance 91320000MA1K000002
run "${c[@]}" trace MOR-2601 --party 12310000MB0000005 --backward
run "${c[@]}" permit show CN-PL-2026-0001
run "${c[@]}" --as 12310000MB0000005 record dispense --substance morphine \
  --lot MOR-2601 --qty 10 --unit unit --rx-id RX-DEMO-1 --prescriber DR-1 \
  --patient 310101195001011234 --written 2026-02-01 --days 3 --form oral
echo "(a party reads only its own data:)"
run "${c[@]}" --as 12310000MB0000005 balance 91320000MA1K000002 || true
run "${c[@]}" reconcile
run "${c[@]}" head

echo "== more of the domain (SPEC 12)"
echo "(the carrier's pickup and delivery of sal-0001 in the lot's trace:)"
run "${c[@]}" trace EPH-2601-A --forward
echo "(online permit approval: one application approved, one rejected:)"
run "${c[@]}" --lang zh applications
echo "(a courier outlet's three checks: sender by real name, opened, X-rayed:)"
run --data "$data" parcels
echo "(enterprise credit, every factor with its weight:)"
run "${c[@]}" --lang zh credit 91310000MA1K000001
echo "(the narcotics department sees narcotic and psychotropic events only:)"
run "${c[@]}" --as 11310000MB0000008 history 91330000MA1K000003

echo "== proofs anyone can check, with no ledger (SPEC 8)"
run "${c[@]}" checkpoint
"$t" "${c[@]}" checkpoint --public-key >"$data/log.vkey"
echo "(the log's verifier key, to publish: $(cat "$data/log.vkey"))"
echo
run "${c[@]}" prove 91310000MA1K000001/sal-0001 --out "$data/sale.proof.json"
run check-proof "$data/sale.proof.json" --log-key "$(cat "$data/log.vkey")"

if [ "${DEMO_STOP:-0}" = 1 ]; then
  stop
  exit 0
fi
cat <<TXT
traced is serving $data on $url (and $ipc),
publishing signed heads and alerts on $pub.  Requests are signed with
the keys in $data/keys (the regulator's by default, --as PARTY for another):

  ./build/tracectl --connect $url --keys $data/keys balance 91320000MA1K000002
  ./build/tracectl --connect $url --keys $data/keys --as 12310000MB0000005 history 12310000MB0000005
  ./build/tracectl --connect $url --keys $data/keys head --follow
  ./build/tracectl --connect $url --keys $data/keys --help

Ctrl-C stops traced (it finishes what is in flight and exits 0).
TXT
wait "$daemon"
