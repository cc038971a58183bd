#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every benchmark in one run, for the README's Performance table:
#   tests/bench/run.sh BUILD_DIR [QUERY_EVENTS] [BASELINE_EVENTS]
# (defaults 1,000,000 and 200,000; SPEC section 6 asks 10,000,000 for the
# query and reconciliation figures: give 10000000, ~10 minutes here).
# Prints the machine, then library appends / verify / disk (W1), W2 (the
# national load, embedded and through traced; W2_EVENTS, default
# 1,000,000), the daemon
# with 1, 4 and 16 clients, query latency and reconciliation on a
# generated supply chain, and the PostgreSQL/SQLite baselines.
set -euo pipefail
B=${1:?build dir (a Release build)}
QN=${2:-1000000}
BN=${3:-200000}
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB," \
  "$(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r)"
echo "== library: durable appends, verification, disk"
"$B/tests/bench/bench_append"
echo
echo "== W2: the national load (1,000 parties, interleaved)"
bash "$(dirname "$0")/w2.sh" "$B" "${W2_EVENTS:-1000000}"
echo
echo "== reads through traced beside an export"
bash "$(dirname "$0")/reads.sh" "$B"
echo
echo "== daemon: durable signed appends through traced"
"$B/tests/bench/bench_daemon" "$B/traced" 160000
echo
echo "== W3: counter traffic through traced"
"$B/tests/bench/bench_daemon" "$B/traced" --w3 20000
echo
echo "== queries and reconciliation on a generated supply chain of $QN events"
"$B/tests/bench/bench_query" --events "$QN"
echo
echo "== side by side with PostgreSQL and SQLite ($BN events)"
bash "$(dirname "$0")/baseline.sh" "$B/tracectl" "$BN"
