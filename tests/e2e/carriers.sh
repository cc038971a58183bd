#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Carriers (SPEC 12), with real processes:
#   carriers.sh TRACECTL [TRACED]
# pickup, handover and delivery events citing a sale by {party, id}: the
# driver pseudonymised (never stored in clear), no stock moved, custody
# hops in `trace` (vehicle, zh labels, JSON), CUSTODY_GAP,
# TRANSIT_OVERDUE and QTY_MISMATCH along the chain, `record` with
# --ref.party/--ref.id, and refusals that store nothing; with TRACED, the
# same through the daemon (pseudonym made by traced, the vehicle on the
# wire, who may trace).
set -u
T=$1 TD=${2:-}
W=$(mktemp -d /tmp/trace-carriers-XXXXXX)
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
S=91310000MA1K0000S1 B=91320000MA1K0000B1 C=91310000MA1K0000C1 C2=91310000MA1K0000C2
DRIVER=310101198001011234
"$T" --data "$D" init >/dev/null || bad "init"
ref() { echo "\"ref\":{\"party\":\"$S\",\"id\":\"$1\"}"; }
cat >"$W/a.jsonl" <<JSONL
{"type":"party","id":"r-s","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$S","name":"华东精细化工","kind":"manufacturer","region":"CN-31","licenses":["CN-PC-3"]}
{"type":"party","id":"r-b","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$B","name":"江苏试剂","kind":"distributor","region":"CN-32","licenses":["CN-PC-3"]}
{"type":"party","id":"r-c","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$C","name":"安达物流","kind":"carrier","region":"CN-31","licenses":["CN-PC-3"]}
{"type":"party","id":"r-c2","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$C2","name":"苏通运输","kind":"carrier","region":"CN-32","licenses":["CN-PC-3"]}
{"type":"permit","id":"pm-1","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","permit":"PF-1","kind":"purchase_filing","holder":"$B","substance":"acetone","qty":"1000","unit":"L","valid_from":"2026-03-01","valid_until":"2026-12-31","uses":"multi"}
{"type":"produce","id":"prd-1","party":"$S","at":"2026-03-02T08:00:00+08:00","substance":"acetone","lot":"AC-1","qty":"500","unit":"L"}
{"type":"sale","id":"sal-1","party":"$S","at":"2026-03-03T09:00:00+08:00","to":"$B","substance":"acetone","lot":"AC-1","qty":"100","unit":"L","permit":"PF-1","carrier":"$C"}
{"type":"pickup","id":"pk-1","party":"$C","at":"2026-03-03T11:00:00+08:00",$(ref sal-1),"substance":"acetone","lot":"AC-1","qty":"100","unit":"L","vehicle":"沪A12345","driver":"$DRIVER","seal":"SEAL-9"}
{"type":"handover","id":"ho-1","party":"$C","at":"2026-03-03T20:00:00+08:00",$(ref sal-1),"to":"$C2","substance":"acetone","lot":"AC-1","qty":"100","unit":"L","seal":"SEAL-9"}
{"type":"delivery","id":"dl-1","party":"$C2","at":"2026-03-04T08:00:00+08:00",$(ref sal-1),"to":"$B","substance":"acetone","lot":"AC-1","qty":"100","unit":"L","seal":"SEAL-9"}
{"type":"receipt","id":"rcp-1","party":"$B","at":"2026-03-04T09:00:00+08:00","from":"$S","ref":"sal-1","substance":"acetone","lot":"AC-1","qty":"100","unit":"L"}
JSONL
expect 0 "import a carried sale" -- "$T" --data "$D" import --provision-keys "$W/a.jsonl"
# the driver: pseudonymised before storage, never in the ledger in clear
expect 0 "export" -- "$T" --data "$D" export
grep '"type":"pickup"' "$W/out" | grep -q '"driver":"hmac:[0-9a-f]\{64\}"' &&
  ! grep -q "$DRIVER" "$W/out" && ok || bad "driver not pseudonymised: $(grep pickup "$W/out")"
grep '"type":"pickup"' "$W/out" | grep -q "\"ref\":{\"party\":\"$S\",\"id\":\"sal-1\"}" && ok ||
  bad "ref not exported as an object: $(grep pickup "$W/out")"
! grep -rqa "$DRIVER" "$D" && ok || bad "the clear driver id is in the ledger files"
cp "$W/out" "$W/export.jsonl"
# re-importing the clear line or the exported pseudonym: the same event
expect 0 "re-import" -- "$T" --data "$D" import "$W/a.jsonl"
grep -q "0 events (11 already present" "$W/err" "$W/out" && ok || bad "re-import: $(cat "$W/err" "$W/out")"
expect 0 "import the export into a fresh ledger" -- "$T" --data "$W/l2" init
grep -v '"party":"REGULATOR"' "$W/export.jsonl" >"$W/rest.jsonl"
head -5 "$W/a.jsonl" >"$W/parties.jsonl"
expect 0 "import the parties" -- "$T" --data "$W/l2" import --provision-keys "$W/parties.jsonl"
expect 0 "import the exported pseudonym" -- "$T" --data "$W/l2" import --provision-keys "$W/rest.jsonl"
expect 0 "export the fresh ledger" -- "$T" --data "$W/l2" export
[ "$(grep '"type":"pickup"' "$W/out")" = "$(grep '"type":"pickup"' "$W/export.jsonl")" ] && ok ||
  bad "the pseudonym did not travel: $(grep pickup "$W/out")"
# custody is not ownership: the carriers hold nothing, B what it received
expect 0 "balance of the carrier" -- "$T" --data "$D" --lang en balance $C
grep -q "(no stock)" "$W/out" && ok || bad "carrier holds stock: $(cat "$W/out")"
expect 0 "balance of the seller" -- "$T" --data "$D" --json balance $S
grep -q '"qty":"400"' "$W/out" && ok || bad "seller stock: $(cat "$W/out")"
expect 0 "balance of the buyer" -- "$T" --data "$D" --json balance $B
grep -q '"qty":"100"' "$W/out" && ok || bad "buyer stock: $(cat "$W/out")"
# trace: the custody hops between the sale and its receipt
expect 0 "trace forward" -- "$T" --data "$D" --lang en trace AC-1 --forward
grep -n "" "$W/out" | grep -q "^2: *sale " &&
  grep -n "" "$W/out" | grep -q "^3: *pickup .*$S (华东精细化工) -> $C (安达物流)  100 L .*carrying sale sal-1  vehicle 沪A12345$" &&
  grep -n "" "$W/out" | grep -q "^4: *handover .*$C (安达物流) -> $C2 (苏通运输)" &&
  grep -n "" "$W/out" | grep -q "^5: *delivery .*$C2 (苏通运输) -> $B (江苏试剂)" &&
  grep -n "" "$W/out" | grep -q "^6: *receipt " && ok || bad "trace forward: $(cat "$W/out")"
expect 0 "trace --lang zh" -- "$T" --data "$D" --lang zh trace AC-1 --forward
grep -q "承运提货.*承运销售 sal-1  车辆 沪A12345" "$W/out" && grep -q "承运交接" "$W/out" &&
  grep -q "承运送达" "$W/out" && ok || bad "zh trace: $(cat "$W/out")"
expect 0 "trace backward --json" -- "$T" --data "$D" --json trace AC-1 --backward --party $B
grep '"kind":"pickup"' "$W/out" | grep -q '"vehicle":"沪A12345"' &&
  grep '"kind":"pickup"' "$W/out" | grep -q '"ref":"sal-1"' &&
  [ "$(grep -c '"kind":"\(pickup\|handover\|delivery\)"' "$W/out")" = 3 ] && ok ||
  bad "trace backward json: $(cat "$W/out")"
expect 0 "history of the lot" -- "$T" --data "$D" --json history AC-1
[ "$(grep -c '"type":"\(pickup\|handover\|delivery\)"' "$W/out")" = 3 ] && ok || bad "history: $(cat "$W/out")"
# a clean chain raises nothing of carriers
expect 0 "reconcile a clean chain" -- "$T" --data "$D" --json reconcile --as-of 2026-04-01T00:00:00+08:00
! grep -q "CUSTODY_GAP\|TRANSIT_OVERDUE\|QTY_MISMATCH" "$W/out" && ok || bad "clean chain: $(cat "$W/out")"
# record from the command line
expect 0 "record a sale" -- "$T" --data "$D" --as $S record sale --id sal-2 --at 2026-03-05T09:00:00+08:00 \
  --to $B --substance acetone --lot AC-1 --qty 50 --unit L --permit PF-1 --carrier $C
expect 0 "record a pickup" -- "$T" --data "$D" --as $C record pickup --id pk-2 --at 2026-03-05T10:00:00+08:00 \
  --ref.party $S --ref.id sal-2 --substance acetone --lot AC-1 --qty 48 --unit L --vehicle 沪B777 --driver $DRIVER
n0=$("$T" --data "$D" export | wc -l)
expect 2 "ref as a string" -- "$T" --data "$D" --as $C record pickup --ref sal-2 \
  --substance acetone --lot AC-1 --qty 5 --unit L --vehicle V --driver X
grep -q 'field "ref" must be an object' "$W/err" && ok || bad "ref shape: $(cat "$W/err")"
expect 2 "ref without id" -- "$T" --data "$D" --as $C record pickup --ref.party $S \
  --substance acetone --lot AC-1 --qty 5 --unit L --vehicle V --driver X
grep -q 'missing field "ref.id"' "$W/err" && ok || bad "ref.id: $(cat "$W/err")"
expect 2 "ref naming no party" -- "$T" --data "$D" --as $C record pickup --ref.party "no party" --ref.id sal-2 \
  --substance acetone --lot AC-1 --qty 5 --unit L --vehicle V --driver X
grep -q 'field "ref.party": "no party" is not a valid party id' "$W/err" && ok || bad "ref.party: $(cat "$W/err")"
expect 2 "pickup without a driver" -- "$T" --data "$D" --as $C record pickup --ref.party $S --ref.id sal-2 \
  --substance acetone --lot AC-1 --qty 5 --unit L --vehicle V
grep -q 'missing field "driver"' "$W/err" && ok || bad "driver: $(cat "$W/err")"
expect 2 "a malformed driver pseudonym" -- "$T" --data "$D" --as $C record pickup --ref.party $S --ref.id sal-2 \
  --substance acetone --lot AC-1 --qty 5 --unit L --vehicle V --driver hmac:abc
grep -q 'field "driver": a pseudonym is "hmac:" and 64 lowercase hex digits' "$W/err" && ok || bad "pseudonym: $(cat "$W/err")"
expect 2 "a negative quantity" -- "$T" --data "$D" --as $C record delivery --ref.party $S --ref.id sal-2 \
  --to $B --substance acetone --lot AC-1 --qty -5 --unit L
grep -q 'field "qty": negative quantity' "$W/err" && ok || bad "negative qty: $(cat "$W/err")"
expect 2 "a handover to nobody" -- "$T" --data "$D" --as $C record handover --ref.party $S --ref.id sal-2 \
  --substance acetone --lot AC-1 --qty 5 --unit L
grep -q 'missing field "to"' "$W/err" && ok || bad "handover to: $(cat "$W/err")"
expect 2 "a delivery in a wrong unit" -- "$T" --data "$D" --as $C record delivery --ref.party $S --ref.id sal-2 \
  --to $B --substance acetone --lot AC-1 --qty 5 --unit kg
grep -q 'unit "kg" is a mass unit' "$W/err" && ok || bad "unit: $(cat "$W/err")"
echo '{"type":"pickup","id":"pk-x","party":"'$C'","at":"2026-03-05T10:00:00+08:00","ref":{"party":"'$S'","id":"sal-2","x":1},"substance":"acetone","lot":"AC-1","qty":"5","unit":"L","vehicle":"V","driver":"X"}' >"$W/bad.jsonl"
expect 2 "an unknown field in ref" -- "$T" --data "$D" import "$W/bad.jsonl"
grep -q 'unknown field "ref.x"' "$W/err" && ok || bad "ref.x: $(cat "$W/err")"
[ "$("$T" --data "$D" export | wc -l)" = "$n0" ] && ok || bad "a refused event was stored"
# custody of a recorded sale is for its carrier and those it handed the
# load to: another party may not file itself under the seller's lot (and
# so read its history) or answer its CUSTODY_GAP
X=91310000MA1K0000X1
echo '{"type":"party","id":"r-x","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"'$X'","name":"x","kind":"distributor","region":"CN-31","licenses":["CN-PC-3"]}' >"$W/x.jsonl"
expect 0 "register another party" -- "$T" --data "$D" import --provision-keys "$W/x.jsonl"
n0=$("$T" --data "$D" export | wc -l)
xline() { # TYPE ID EXTRA: a custody line of sale sal-2 recorded by X
  echo '{"type":"'$1'","id":"'$2'","party":"'$X'","at":"2026-03-05T10:00:00+08:00","ref":{"party":"'$S'","id":"sal-2"},"substance":"acetone","lot":"AC-1","qty":"50","unit":"L",'"$3"'}' >"$W/xc.jsonl"
}
xline pickup pk-x1 '"vehicle":"V","driver":"'$DRIVER'"'
expect 5 "another party picks up a carried sale" -- "$T" --data "$D" import --provision-keys "$W/xc.jsonl"
grep -q "sale $S/sal-2 is carried by $C, not by $X" "$W/err" && ok || bad "pickup by another: $(cat "$W/err")"
expect 5 "the second carrier picks up without a handover" -- "$T" --data "$D" --as $C2 record pickup --id pk-x2 \
  --at 2026-03-05T10:00:00+08:00 --ref.party $S --ref.id sal-2 --substance acetone --lot AC-1 --qty 50 --unit L --vehicle V --driver $DRIVER
xline delivery dl-x1 '"to":"'$B'"'
expect 5 "another party delivers a carried sale" -- "$T" --data "$D" import --provision-keys "$W/xc.jsonl"
grep -q "or a carrier it handed the load to" "$W/err" && ok || bad "delivery by another: $(cat "$W/err")"
xline handover ho-x1 '"to":"'$C2'"'
expect 5 "another party hands over a carried sale" -- "$T" --data "$D" import --provision-keys "$W/xc.jsonl"
expect 2 "a pickup citing what is not a sale" -- "$T" --data "$D" --as $C record pickup --id pk-x4 \
  --at 2026-03-05T10:00:00+08:00 --ref.party $S --ref.id prd-1 --substance acetone --lot AC-1 --qty 50 --unit L --vehicle V --driver $DRIVER
grep -q "cites $S/prd-1, which is not a sale (a produce)" "$W/err" && ok || bad "not a sale: $(cat "$W/err")"
[ "$("$T" --data "$D" export | wc -l)" = "$n0" ] && ok || bad "a refused custody event was stored"
# a correction's replacement is judged the same: C2 delivered sal-1 (handed
# over to it) and may not turn that into a delivery of sal-2
echo '{"type":"correction","id":"c-dl1","party":"'$C2'","at":"2026-03-05T12:00:00+08:00","corrects":"dl-1","reason":"x","replacement":{"type":"delivery","id":"dl-1","party":"'$C2'","at":"2026-03-04T08:00:00+08:00","ref":{"party":"'$S'","id":"sal-2"},"to":"'$B'","substance":"acetone","lot":"AC-1","qty":"100","unit":"L"}}' >"$W/cdl.jsonl"
expect 5 "a delivery corrected into one of a sale not carried" -- "$T" --data "$D" import "$W/cdl.jsonl"
grep -q "sale $S/sal-2 is carried by $C" "$W/err" && ok || bad "corrected delivery: $(cat "$W/err")"
expect 5 "the other party still may not read the lot" -- "$T" --data "$D" --as $X history AC-1
grep -q "never held the lot\|no key" "$W/err" && ok || bad "history as X: $(cat "$W/err")"
# a pickup citing a sale not on record is refused: filed under the lot
# it would let its recorder read the lot, and show in the seller's trace
n0=$("$T" --data "$D" export | wc -l)
expect 2 "a pickup of an unknown sale" -- "$T" --data "$D" --as $C record pickup --id pk-3 \
  --at 2026-03-06T10:00:00+08:00 --ref.party $S --ref.id sal-404 --substance acetone --lot AC-1 \
  --qty 5 --unit L --vehicle V --driver X
grep -q "cites sale $S/sal-404, which is not recorded" "$W/err" && ok || bad "unknown sale: $(cat "$W/err")"
expect 2 "a pickup naming another lot than its sale" -- "$T" --data "$D" --as $C record pickup --id pk-4 \
  --at 2026-03-06T10:00:00+08:00 --ref.party $S --ref.id sal-2 --substance acetone --lot AC-OTHER \
  --qty 5 --unit L --vehicle V --driver X
grep -q "names lot AC-OTHER, but sale $S/sal-2 is of lot AC-1" "$W/err" && ok || bad "other lot: $(cat "$W/err")"
expect 2 "a pickup naming another substance than its sale" -- "$T" --data "$D" --as $C record pickup --id pk-5 \
  --at 2026-03-06T10:00:00+08:00 --ref.party $S --ref.id sal-2 --substance toluene --lot AC-1 \
  --qty 5 --unit L --vehicle V --driver X
grep -q "names substance toluene, but sale $S/sal-2 is of acetone" "$W/err" && ok || bad "other substance: $(cat "$W/err")"
[ "$("$T" --data "$D" export | wc -l)" = "$n0" ] && ok || bad "a refused pickup was stored"
# sal-2: 50 L sold, 48 L picked up, never delivered; sal-3: no pickup
expect 0 "record a sale with no pickup" -- "$T" --data "$D" --as $S record sale --id sal-3 \
  --at 2026-03-07T09:00:00+08:00 --to $B --substance acetone --lot AC-1 --qty 10 --unit L --permit PF-1 --carrier $C
expect 0 "reconcile" -- "$T" --data "$D" --lang en reconcile --as-of 2026-04-01T00:00:00+08:00
grep -q "QTY_MISMATCH .*sale sal-2: 50 L sold, 48 L picked up (pickup pk-2 by $C)" "$W/out" &&
  grep -q "CUSTODY_GAP .*sale sal-3 names carrier $C, but no pickup cites it within 24 h" "$W/out" &&
  grep -q "TRANSIT_OVERDUE .*sale sal-2 of $S: no delivery 72 h after pickup pk-2 by $C" "$W/out" &&
  [ "$(grep -c "CUSTODY_GAP\|TRANSIT_OVERDUE\|QTY_MISMATCH" "$W/out")" = 3 ] && ok || bad "reconcile: $(cat "$W/out")"
expect 0 "reconcile --json" -- "$T" --data "$D" --json reconcile --as-of 2026-04-01T00:00:00+08:00
grep '"rule":"CUSTODY_GAP"' "$W/out" | grep -q '"severity":"high"' &&
  grep '"rule":"TRANSIT_OVERDUE"' "$W/out" | grep -q '"severity":"medium"' && ok || bad "severities: $(cat "$W/out")"
# windows from the rules file
echo '{"CUSTODY_GAP":{"pickup_hours":24},"TRANSIT_OVERDUE":{"transit_hours":1000}}' >"$W/rules.json"
expect 0 "reconcile with a longer transit window" -- "$T" --data "$D" --json reconcile --dry-run --rules "$W/rules.json" --as-of 2026-04-01T00:00:00+08:00
! grep -q TRANSIT_OVERDUE "$W/out" && grep -q CUSTODY_GAP "$W/out" && ok || bad "rules file: $(cat "$W/out")"
# a carrier corrects its pickup: the chain agrees again
expect 0 "correct the pickup" -- "$T" --data "$D" --as $C correct pk-2 --qty 50 --reason "miscounted at loading"
expect 0 "reconcile after the correction" -- "$T" --data "$D" --json reconcile --dry-run --as-of 2026-04-01T00:00:00+08:00
! grep -q '"rule":"QTY_MISMATCH"' "$W/out" && grep -q '"rule":"TRANSIT_OVERDUE"' "$W/out" && ok ||
  bad "after the correction: $(cat "$W/out")"
expect 0 "trace after the correction" -- "$T" --data "$D" --lang en trace AC-1 --forward
grep -q "pickup .*50 L .*carrying sale sal-2" "$W/out" && ! grep -q " 48 L " "$W/out" && ok ||
  bad "trace after the correction: $(cat "$W/out")"
# incremental runs keep their index of citations; every index re-derived
expect 0 "reconcile --incremental" -- "$T" --data "$D" reconcile --incremental
expect 0 "verify --deep" -- "$T" --data "$D" verify --deep
# through traced
if [ -n "$TD" ]; then
  IPC=ipc://$W/traced.ipc
  Cn() { "$T" --connect "$IPC" --keys "$D/keys" "$@"; }
  "$TD" --data "$D" --listen "$IPC" 2>>"$W/traced.log" &
  DPID=$!
  for _ in $(seq 100); do Cn head >/dev/null 2>&1 && break; sleep 0.1; done
  expect 0 "record a sale through traced" -- Cn --as $S record sale --id sal-9 \
    --at 2026-03-08T09:00:00+08:00 --to $B --substance acetone --lot AC-1 --qty 10 --unit L --permit PF-1 --carrier $C
  expect 0 "record a pickup through traced" -- Cn --as $C record pickup --id pk-9 \
    --at 2026-03-08T10:00:00+08:00 --ref.party $S --ref.id sal-9 --substance acetone --lot AC-1 \
    --qty 10 --unit L --vehicle 苏E99999 --driver $DRIVER
  expect 2 "a pickup without a vehicle through traced" -- Cn --as $C record pickup \
    --ref.party $S --ref.id sal-9 --substance acetone --lot AC-1 --qty 10 --unit L --driver $DRIVER
  grep -q 'missing field "vehicle"' "$W/err" && ok || bad "vehicle through traced: $(cat "$W/err")"
  expect 0 "export through traced" -- Cn export
  grep '"id":"pk-9"' "$W/out" | grep -q '"driver":"hmac:[0-9a-f]\{64\}"' &&
    ! grep -q "$DRIVER" "$W/out" && ok || bad "pseudonym through traced: $(grep pk-9 "$W/out")"
  expect 0 "the carrier traces what it carried" -- Cn --as $C --json trace AC-1 --forward
  grep '"event":"pk-9"' "$W/out" | grep -q '"vehicle":"苏E99999"' && ok ||
    bad "vehicle over the wire: $(cat "$W/out")"
  kill -TERM "$DPID"
  wait "$DPID" && ok || bad "traced did not stop cleanly: $(tail -3 "$W/traced.log")"
  DPID=
fi
checks_done carriers
