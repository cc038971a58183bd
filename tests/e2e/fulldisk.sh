#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A full disk: a ledger on a small tmpfs (mounted here; needs root, else
# the test is skipped with exit 77), filled by imports embedded and
# through traced.  The import that does not fit fails with a clear error
# (exit 6) and stores nothing; the ledger still verifies and reads work;
# traced keeps serving.
#   fulldisk.sh TRACECTL TRACED
set -u
T=$1 TD=$2
M=$(mktemp -d /tmp/trace-full-XXXXXX)
W=$(mktemp -d /tmp/trace-fullw-XXXXXX)
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  umount "$M" 2>/dev/null
  rm -rf "$M" "$W"
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=1500k tmpfs "$M" 2>/dev/null; then
  echo "SKIP: cannot mount a small tmpfs here (not root?)"
  exit 77
fi
D=$M/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
size() { "$T" --data "$D" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }

"$T" --data "$D" --keys "$W/keys" init >/dev/null || { echo "FAIL: init"; exit 1; }
# traced runs on it all along (its own files are made before the disk fills)
"$TD" --data "$D" --listen "ipc://$W/d.ipc" --map-reserve 64 --log-level error 2>"$W/traced.log" &
DPID=$!
for _ in $(seq 50); do "$T" --connect "ipc://$W/d.ipc" --keys "$W/keys" head >/dev/null 2>&1 && break; sleep 0.1; done
# batches of 1,000 produce events until the disk is full
gen() {
  python3 - "$1" <<'PY'
import sys
b = int(sys.argv[1])
for i in range(1000):
    print('{"type":"produce","id":"f-%d-%d","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00",'
          '"substance":"acetone","lot":"AC-%d","qty":"1","unit":"L"}' % (b, i, i % 50))
PY
}
# through traced first (it is the folder's one writer while it runs):
# the commit that does not fit fails cleanly and the daemon serves on
full=0
for b in $(seq 1 200); do
  gen "$b" >"$W/batch.jsonl"
  before=$(size)
  "$T" --connect "ipc://$W/d.ipc" --keys "$W/keys" import "$W/batch.jsonl" >"$W/out" 2>"$W/err"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    full=1
    [ "$rc" -eq 6 ] && ok || bad "full disk through traced: exit $rc, wanted 6 ($(cat "$W/err"))"
    grep -qi "full" "$W/err" && ok || bad "traced's answer is not clear: $(cat "$W/err")"
    [ "$(size)" = "$before" ] && ok || bad "the failed commit left entries"
    break
  fi
done
[ "$full" = 1 ] && ok || bad "the disk never filled through traced"
"$T" --connect "ipc://$W/d.ipc" --keys "$W/keys" verify >/dev/null 2>"$W/err" && ok ||
  bad "traced does not serve after a full disk: $(cat "$W/err")"
kill -TERM "$DPID"; wait "$DPID"; st=$?; DPID=
[ "$st" -eq 0 ] && ok || bad "traced exited $st"

# then embedded, on the same full disk: the import fails with a clear
# error and stores nothing; the ledger verifies and reads work
before=$(size)
"$T" --data "$D" --keys "$W/keys" import "$W/batch.jsonl" >"$W/out" 2>"$W/err"
rc=$?
[ "$rc" -eq 6 ] && ok || bad "a full disk: exit $rc, wanted 6"
grep -qi "full\|space" "$W/err" && ok || bad "no clear message: $(cat "$W/err")"
[ "$(size)" = "$before" ] && ok || bad "the failed import left entries"
"$T" --data "$D" verify >/dev/null 2>"$W/err" && ok || bad "verify after a full disk: $(cat "$W/err")"
"$T" --data "$D" balance REGULATOR >/dev/null && ok || bad "reads fail after a full disk"

checks_done fulldisk
