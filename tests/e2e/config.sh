#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The example configuration as shipped: it passes --check-config, and a
# traced started with exactly that file (its /run/trace socket made as
# the unit's RuntimeDirectory would) serves on loopback and its socket,
# answers status without a key, and stops cleanly.  Needs root for
# /run/trace (else skipped with exit 77) and the ports 7700-7701 free.
#   config.sh TRACECTL TRACED CONF
set -u
T=$1 TD=$2 CONF=$3
W=$(mktemp -d /tmp/trace-config-XXXXXX)
DPID=
MADE_RUN=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  [ -n "$MADE_RUN" ] && rm -rf /run/trace
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

"$T" --data "$W/ledger" init >/dev/null || { echo "FAIL: init"; exit 1; }
expect 0 "the example config checks" -- "$TD" --config "$CONF" --data "$W/ledger" --check-config
grep -q "tcp://127.0.0.1:7700" "$W/out" && ok || bad "the example does not listen on loopback"
grep -q "0\.0\.0\.0" "$W/out" && bad "the example listens on every address" || ok
if [ -e /run/trace ] || ! mkdir -m 0750 /run/trace 2>/dev/null; then
  echo "SKIP: /run/trace exists or cannot be made here"
  checks_done config
  exit 77
fi
MADE_RUN=1
if (exec 3<>/dev/tcp/127.0.0.1/7700) 2>/dev/null; then
  echo "SKIP: port 7700 is in use"
  exit 77
fi
"$TD" --config "$CONF" --data "$W/ledger" 2>"$W/traced.log" &
DPID=$!
up=0
for _ in $(seq 100); do
  "$T" --connect ipc:///run/trace/traced.ipc status >/dev/null 2>&1 && { up=1; break; }
  sleep 0.1
done
[ "$up" = 1 ] && ok || { bad "traced with the example config did not answer on /run/trace"; cat "$W/traced.log"; }
expect 0 "status over tcp on loopback" -- "$T" --connect tcp://127.0.0.1:7700 status
grep -q "^ledger: 1 entries" "$W/out" && ok || bad "status: $(cat "$W/out")"
expect 0 "a signed read over the local socket" -- "$T" --connect ipc:///run/trace/traced.ipc --keys "$W/ledger/keys" head
kill -TERM "$DPID"; wait "$DPID"; st=$?; DPID=
[ "$st" -eq 0 ] && ok || bad "traced exited $st on SIGTERM"
checks_done config
