#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_query --reuse runs again on the ledger it built: each run's last
# step appends a lot no earlier run appended, and its incremental
# reconciliation judges it (a small ledger: a correctness check, not a
# measurement):   reuse.sh BENCH_QUERY
set -u
B=$1
W=$(mktemp -d /tmp/trace-bench-reuse-XXXXXX)
trap 'rm -rf "$W"' EXIT
fail=0
for run in build reuse reuse-again; do
  flag=; [ "$run" = build ] || flag=--reuse
  # shellcheck disable=SC2086
  "$B" --dir "$W" --events 5000 $flag >"$W/$run.out" 2>&1
  st=$?
  if [ $st -ne 0 ] || ! grep -q '^reconcile, incremental .* [1-9][0-9]* events appended' "$W/$run.out"; then
    echo "FAIL: $run (exit $st): $(tail -3 "$W/$run.out")"; fail=1
  fi
done
echo "bench_query --reuse: $([ $fail = 0 ] && echo ok || echo failed)"
exit $fail
