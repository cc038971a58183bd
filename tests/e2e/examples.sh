#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the example programs against a fresh ledger and checks what they
# print.   examples.sh BUILD_DIR
set -u
B=$1/examples
W=$(mktemp -d /tmp/trace-examples-XXXXXX)
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
check() { if "${@:2}" >"$W/out" 2>&1 && grep -q -- "$1" "$W/out"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: ${*:2}"; sed 's/^/  | /' "$W/out"; fi; }
check "appended 8 entries" "$B/example_record_sale" "$W/l"
check "appended 0 entries (6 already there)" "$B/example_record_sale" "$W/l"
check "EX-AA-1 .* 400 kg" "$B/example_balance_at" "$W/l" BUYER-1 2026-03-04
check "sale EX-AA-1: SELLER-1 -> BUYER-1, 400 kg" "$B/example_trace_lot" "$W/l" EX-AA-1
check "produce EX-AA-1: origin -> SELLER-1" "$B/example_trace_lot" "$W/l" EX-AA-1 BUYER-1 --backward
check "alerts" "$B/example_reconcile_run" "$W/l"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
