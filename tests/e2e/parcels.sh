#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Parcels at courier outlets (SPEC 12, 三个100%), with real processes:
#   parcels.sh TRACECTL
# parcel events, PARCEL_CHECK_MISSING naming the missing checks, and
# `tracectl parcels` rates per outlet (text, zh, JSON, one outlet, a
# time window); an outlet's party sees only its own parcels.
set -u
T=$1
W=$(mktemp -d /tmp/trace-parcels-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
CR=91310000MA1K0000CR CR2=91310000MA1K0000C2
"$T" --data "$D" init >/dev/null || bad "init"
cat >"$W/p.jsonl" <<JSONL
{"type":"party","id":"r-cr","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$CR","name":"顺丰某网点","kind":"carrier","region":"CN-31","licenses":[]}
{"type":"party","id":"r-cr2","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$CR2","name":"另一网点","kind":"carrier","region":"CN-31","licenses":[]}
{"type":"parcel","id":"pc-1","party":"$CR","at":"2026-03-02T08:00:00+08:00","waybill":"SF100","outlet":"OUT-SH-01","sender_verified":true,"opened":true,"scanned":false,"declared":"化妆品"}
{"type":"parcel","id":"pc-2","party":"$CR","at":"2026-03-02T09:00:00+08:00","waybill":"SF101","outlet":"OUT-SH-01","sender_verified":true,"opened":true,"scanned":true}
{"type":"parcel","id":"pc-3","party":"$CR","at":"2026-03-05T10:00:00+08:00","waybill":"SF102","outlet":"OUT-SH-02","sender_verified":false,"opened":false,"scanned":true}
{"type":"parcel","id":"pc-4","party":"$CR2","at":"2026-03-05T10:00:00+08:00","waybill":"YT1","outlet":"OUT-SH-09","sender_verified":true,"opened":true,"scanned":true}
JSONL
expect 0 "import parcels" -- "$T" --data "$D" import --provision-keys "$W/p.jsonl"
echo '{"type":"parcel","id":"pc-x","party":"'$CR'","at":"2026-03-02T08:00:00+08:00","waybill":"SF9","outlet":"OUT-SH-01"}' >"$W/bad.jsonl"
expect 2 "a parcel without its checks" -- "$T" --data "$D" import "$W/bad.jsonl"
grep -q "sender_verified" "$W/err" && ok || bad "the missing check is not named: $(cat "$W/err")"
expect 0 "reconcile" -- "$T" --data "$D" reconcile
grep -q "PARCEL_CHECK_MISSING.*parcel SF100 at outlet OUT-SH-01 accepted, not X-rayed" "$W/out" &&
  grep -q "PARCEL_CHECK_MISSING.*parcel SF102 at outlet OUT-SH-02 accepted, sender not verified by real name, not opened for inspection" "$W/out" &&
  [ "$(grep -c PARCEL_CHECK_MISSING "$W/out")" = 2 ] && ok || bad "parcel alerts: $(cat "$W/out")"
expect 0 "parcels" -- "$T" --data "$D" --lang en parcels
grep -q "^OUT-SH-01  *2  *100.0%  *100.0%  *50.0%  *50.0%$" "$W/out" &&
  grep -q "^OUT-SH-02  *1  *0.0%  *0.0%  *100.0%  *0.0%$" "$W/out" &&
  grep -q "^OUT-SH-09  *1  *100.0%  *100.0%  *100.0%  *100.0%$" "$W/out" && ok || bad "parcels: $(cat "$W/out")"
expect 0 "parcels --lang zh" -- "$T" --data "$D" --lang zh parcels
head -1 "$W/out" | grep -q "^网点 .*实名% .*开箱% .*过机% .*全部%$" && ok || bad "zh heading: $(head -1 "$W/out")"
expect 0 "parcels --outlet --json" -- "$T" --data "$D" --json parcels --outlet OUT-SH-02
[ "$(cat "$W/out")" = '{"outlet":"OUT-SH-02","parcels":1,"sender_verified":0,"opened":0,"scanned":1,"all_three":0,"rate_all":0.0}' ] && ok ||
  bad "parcels --json: $(cat "$W/out")"
expect 0 "parcels in a window" -- "$T" --data "$D" --lang en parcels --to 2026-03-03
grep -q "^OUT-SH-01 " "$W/out" && ! grep -q "OUT-SH-02\|OUT-SH-09" "$W/out" && ok || bad "window: $(cat "$W/out")"
expect 0 "an outlet's party sees its own" -- "$T" --data "$D" --as $CR2 --lang en parcels
grep -q "^OUT-SH-09 " "$W/out" && ! grep -q "OUT-SH-01" "$W/out" && ok || bad "own parcels: $(cat "$W/out")"
expect 1 "parcels --from nonsense" -- "$T" --data "$D" parcels --from yesterday
checks_done parcels
