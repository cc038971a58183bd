#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of verify --deep, embedded and through traced:
#   deep.sh TRACECTL TRACED TAMPER DEMO.jsonl LEDGER-V1
# A byte changed inside a stored index record (a string of its key, or
# its value) or a deleted record leaves the journal intact: verify exits
# 0, verify --deep exits 3 naming the index and the record.  A clean
# ledger, and the first-format ledger, pass --deep; no scratch directory
# is left behind.
set -u
T=$1 TD=$2 TAMPER=$3 DEMO=$4 V1=$5
W=$(mktemp -d /tmp/trace-deep-XXXXXX)
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
no_scratch() { ! ls -a "$1" | grep -q '^\.deep-verify-' && ok || bad "scratch directory left in $1"; }

expect 0 "init" -- "$T" --data "$D" init
expect 0 "import demo" -- "$T" --data "$D" import --provision-keys "$DEMO"
expect 0 "verify --deep, clean" -- "$T" --data "$D" verify --deep
grep -q "^indexes: [0-9]* records, each as the journal gives it$" "$W/out" && ok ||
  bad "verify --deep said: $(cat "$W/out")"
expect 0 "verify --deep --json, clean" -- "$T" --data "$D" --json verify --deep
python3 - "$W/out" <<'PY' && ok || bad "verify --deep --json: $(cat "$W/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["ok"] is True and o["deep"] is True and o["index_records"] > 100
assert set(o) >= {"entries", "signatures", "head"}
PY
expect 0 "verify --help" -- "$T" verify --help
grep -q -- "--deep" "$W/out" && grep -q "consistency" "$W/out" && ok || bad "verify --help lacks --deep"
no_scratch "$D"

# One copy of the ledger per change: DB PREFIX what, the text the finding
# must hold.
check() {
  local db=$1 prefix=$2 what=$3 want=$4
  local L=$W/case-$db-$what
  rm -rf "$L"; cp -r "$D" "$L"
  "$TAMPER" "$L" index "$db" "$prefix" "$what" || { bad "tamper $db $what"; return; }
  expect 0 "verify after $db $what" -- "$T" --data "$L" verify
  expect 3 "verify --deep after $db $what" -- "$T" --data "$L" verify --deep
  grep -qF "index $db, record " "$W/err" && grep -qF -- "$want" "$W/err" && ok ||
    bad "$db $what: verify --deep said: $(cat "$W/err")"
  no_scratch "$L"
}
# strings inside keys: the holding's lot, a lot id, a permit id, a party id
check bal '91320000MA1K000002\0ephedrine\0EPH' key "record 91320000MA1K000002\0ephddrine\0EPH-2601-A\0main: unexpected (found at "
check lots 'EPH-2601-A' key "unexpected"
check permits 'CN-PL-2026-0001' key "CN-PL-2026-0001"
check parties '91310000MA1K000004' key "record 91310000M@1K000004: unexpected"
# values: a running balance's unit, a lot's role, a permit's entry, a
# party's state
check bal '91320000MA1K000002\0ephedrine\0EPH-2601-A\0main' value \
  'record 91320000MA1K000002\0ephedrine\0EPH-2601-A\0main: differs: expected at '
check lots 'MOR-2601' value "differs: expected entry "
check permits 'CN-TL-2026-0001' value "differs: expected entry "
check parties '91310000MA1K000006' value "differs"
# deleted records
check lots 'AA-IMP-2601' delete "missing (expected entry "
check pev 'CN-TL-2026-0001' delete "missing"

# --json names the record field by field
L=$W/case-json; rm -rf "$L"; cp -r "$D" "$L"
"$TAMPER" "$L" index bal '91320000MA1K000002\0ephedrine\0EPH-2601-A\0main' value
expect 3 "verify --deep --json, changed" -- "$T" --data "$L" --json verify --deep
python3 - "$W/out" <<'PY' && ok || bad "verify --deep --json: $(cat "$W/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["ok"] is False and o["deep"] is True, o
assert o["index"] == "bal" and o["problem"] == "differs", o
assert o["key"] == "91320000MA1K000002\\0ephedrine\\0EPH-2601-A\\0main", o
assert o["expected"] != o["found"] and "balance" in o["found"], o
assert o["reason"].startswith("index bal, record "), o
PY

# The first storage format's ledger: its indexes are what its journal gives.
cp -r "$V1" "$W/v1" && chmod 600 "$W/v1/pseudonym.key"
expect 0 "verify --deep, first-format ledger" -- "$T" --data "$W/v1" verify --deep
no_scratch "$W/v1"

# Through traced: verify runs as a job there; --deep too.
IPC=ipc://$W/traced.ipc
L=$W/case-json
"$TD" --data "$L" --listen "$IPC" --log-level warn 2>>"$W/traced.log" &
DPID=$!
for _ in $(seq 100); do
  "$T" --connect "$IPC" --keys "$L/keys" head >/dev/null 2>&1 && break
  sleep 0.1
done
expect 0 "verify through traced" -- "$T" --connect "$IPC" --keys "$L/keys" verify
expect 3 "verify --deep through traced" -- "$T" --connect "$IPC" --keys "$L/keys" verify --deep
grep -qF 'index bal, record 91320000MA1K000002\0ephedrine\0EPH-2601-A\0main: differs' "$W/err" && ok ||
  bad "verify --deep through traced said: $(cat "$W/err" "$W/out")"
expect 3 "verify --deep --json through traced" -- "$T" --connect "$IPC" --keys "$L/keys" --json verify --deep
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["index"]=="bal" and o["problem"]=="differs", o' "$W/out" &&
  ok || bad "through traced --json: $(cat "$W/out")"
kill -TERM "$DPID"; wait "$DPID"; DPID=
no_scratch "$L"

checks_done e2e_deep
