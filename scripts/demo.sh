#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds tracectl and walks through the
# demo: a new ledger, the multi-party demo data, verification, export.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tracectl
t=./build/tracectl
data=${DEMO_DIR:-demo-ledger}
rm -rf "$data"
run() { echo "\$ tracectl $*"; "$t" "$@"; echo; }
run --data "$data" init
run --data "$data" import --provision-keys examples/demo.jsonl
run --data "$data" verify
echo "\$ tracectl --data $data export --party 12310000MB0000005"
"$t" --data "$data" export --party 12310000MB0000005
echo
run --data "$data" balance 91320000MA1K000002
run --data "$data" trace MOR-2601 --party 12310000MB0000005 --backward
run --data "$data" permit show CN-PL-2026-0001
run --data "$data" reconcile
echo "The ledger is in $data/ and its keys in $data/keys/."
echo "Try: ./build/tracectl --data $data --help"
