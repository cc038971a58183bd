#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang and runs each for SECONDS
# (default 30) from the committed seed corpus.  New inputs go to a
# scratch folder; crashes are written to the working folder (crash-*).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
build=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang cmake -S . -B "$build" -DTRACE_FUZZ=ON -DTRACE_BUILD_TESTS=OFF \
      -DTRACE_BUILD_BENCH=OFF -DTRACE_BUILD_EXAMPLES=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
for target in jsonl entry request proof epcis; do
  scratch=$(mktemp -d)
  echo "fuzzing $target for ${secs}s"
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$secs" -max_len=65536 \
      -print_final_stats=1 "$scratch" "tests/fuzz/corpus/$target" 2>&1 |
    grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true
  rm -rf "$scratch"
  # libFuzzer exits non-zero on a finding; check for crash files too
  if compgen -G "crash-*" >/dev/null || compgen -G "leak-*" >/dev/null ||
     compgen -G "timeout-*" >/dev/null || compgen -G "oom-*" >/dev/null; then
    echo "fuzz_$target found a problem: see crash-*/leak-*/timeout-*"
    exit 1
  fi
done
