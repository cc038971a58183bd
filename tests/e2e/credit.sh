#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Enterprise credit (企业信用评价, SPEC 12), with real processes:
#   credit.sh TRACECTL TRACED
# A manufacturer with alerts of each kind, a late report, a stocktake
# variance and losses: `credit` counts each factor as the stored alerts
# and the journal say (recomputed here from `alerts --json` and
# `export`), weights from a rules file, the window, rights, bad input,
# and the same answer through traced.
set -u
T=$1 TD=$2
W=$(mktemp -d /tmp/trace-credit-XXXXXX)
D=$W/ledger K=$W/ledger/keys
IPC=ipc://$W/traced.ipc
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
E() { "$T" --data "$D" "$@"; }
C() { "$T" --connect "$IPC" --keys "$K" "$@"; }
MAN=91310000MA1K000001 DIST=91320000MA1K000002 OTHER=91320000MA1K000003
"$T" --data "$D" init >/dev/null || { echo "FAIL: init"; exit 1; }
p() { printf '{"type":"party","id":"r-%s","party":"REGULATOR","at":"2026-01-01T08:00:00+08:00","subject":"%s","name":"%s","kind":"%s","region":"CN-31","licenses":["CN-PC-1","CN-PC-3"]}\n' "$1" "$1" "$2" "$3"; }
{
  p $MAN "华东精细化工" manufacturer
  p $DIST "Distributor" distributor
  p $OTHER "Other" distributor
  echo '{"type":"produce","id":"m1","party":"'$MAN'","at":"2026-02-01T08:00:00+08:00","substance":"ephedrine","lot":"E1","site":"plant","qty":"100","unit":"kg"}'
  echo '{"type":"produce","id":"m2","party":"'$MAN'","at":"2026-02-01T08:00:00+08:00","substance":"acetone","lot":"A1","site":"plant","qty":"1000","unit":"L"}'
  # two ephedrine sales without a permit (PERMIT_MISSING, high) and never
  # received (SHIPMENT_UNCONFIRMED, medium)
  echo '{"type":"sale","id":"s1","party":"'$MAN'","at":"2026-02-02T08:00:00+08:00","substance":"ephedrine","lot":"E1","qty":"1","unit":"kg","to":"'$DIST'"}'
  echo '{"type":"sale","id":"s2","party":"'$MAN'","at":"2026-02-03T08:00:00+08:00","substance":"ephedrine","lot":"E1","qty":"1","unit":"kg","to":"'$DIST'"}'
  # a stocktake that finds less than the book (STOCKTAKE_VARIANCE) and
  # two losses
  echo '{"type":"stocktake","id":"st1","party":"'$MAN'","at":"2026-02-10T08:00:00+08:00","substance":"acetone","lot":"A1","site":"plant","counted":"900","unit":"L"}'
  echo '{"type":"loss","id":"l1","party":"'$MAN'","at":"2026-02-11T08:00:00+08:00","substance":"acetone","lot":"A1","site":"plant","qty":"10","unit":"L","reason":"damage"}'
  echo '{"type":"loss","id":"l2","party":"'$MAN'","at":"2026-02-12T08:00:00+08:00","substance":"acetone","lot":"A1","site":"plant","qty":"5","unit":"L","reason":"theft"}'
} >"$W/h.jsonl"
expect 0 "import (historic)" -- E import --provision-keys --historic "$W/h.jsonl"
# a sale reported months late: LATE_REPORT
echo '{"type":"sale","id":"s3","party":"'$MAN'","at":"2026-02-15T08:00:00+08:00","substance":"acetone","lot":"A1","qty":"1","unit":"L","to":"'$DIST'"}' >"$W/late.jsonl"
expect 0 "import a late report" -- E import "$W/late.jsonl"
expect 0 "reconcile" -- E reconcile
expect 0 "alerts" -- E --json alerts --party $MAN
A=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    a = json.loads(l)
    if a["rule"] == "PERMIT_MISSING": print(a["id"]); break' "$W/out")
expect 0 "resolve one high alert" -- E ack "$A" --status resolved --note "permit filed late"
expect 0 "alerts again" -- E --json alerts --party $MAN
cp "$W/out" "$W/alerts.json"
expect 0 "export" -- E export --party $MAN
cp "$W/out" "$W/export.jsonl"

# what the factors must be, from the alerts and the journal
cat >"$W/expect.py" <<'PY'
import json, sys
alerts, export, party, weights = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
got = json.load(open(sys.argv[5]))
n = {f["factor"]: 0 for f in got["factors"]}
for a in map(json.loads, open(alerts)):
    if a["party"] != party:
        continue
    if a["rule"] == "LATE_REPORT":
        n["late_reports"] += 1
    elif a["rule"] == "STOCKTAKE_VARIANCE":
        n["stocktake_variances"] += 1
    elif a["severity"] != "info":
        st = "resolved" if a["status"] == "resolved" else "open"
        n[st + "_" + a["severity"]] += 1
n["losses"] = sum(1 for e in map(json.loads, open(export)) if e["type"] == "loss")
lost = 0
for f in got["factors"]:
    assert f["count"] == n[f["factor"]], (f, n[f["factor"]])
    assert f["weight"] == weights.get(f["factor"], f["weight"]), f
    assert f["points"] == f["count"] * f["weight"], f
    lost += f["points"]
assert got["score"] == max(0, round(100 - lost)), (got["score"], lost)
s = got["score"]
assert got["grade"] == ("A" if s >= 90 else "B" if s >= 75 else "C" if s >= 60 else "D")
print(got["score"], got["grade"], {k: v for k, v in n.items() if v})
PY
expect 0 "credit --json" -- E --json credit $MAN --at 2026-03-01
cp "$W/out" "$W/c1.json"
python3 "$W/expect.py" "$W/alerts.json" "$W/export.jsonl" $MAN '{}' "$W/c1.json" >"$W/x" && ok || bad "credit factors: $(cat "$W/c1.json")"
# something of every kind was counted (or the test proves little)
python3 -c 'import json,sys
c = json.load(open(sys.argv[1])); n = {f["factor"]: f["count"] for f in c["factors"]}
assert n["open_high"] >= 1 and n["resolved_high"] == 1 and n["open_medium"] >= 2, n
assert n["late_reports"] == 1 and n["stocktake_variances"] == 1 and n["losses"] == 2, n
assert c["score"] < 75, c["score"]' "$W/c1.json" && ok || bad "factors not all present: $(cat "$W/x")"
expect 0 "credit in Chinese" -- E --lang zh credit $MAN --at 2026-03-01
grep -q "^信用评价 $MAN (华东精细化工)" "$W/out" && grep -q "^得分 [0-9]*/100, 信用等级 [ABCD]$" "$W/out" &&
  grep -q "^丢失、被盗 *2 *5 *10$" "$W/out" && ok || bad "zh: $(cat "$W/out")"
# weights from the rules file
echo '{"credit":{"weights":{"losses":0,"open_medium":0.5}},"LATE_REPORT":{"severity":"low"}}' >"$W/rules.json"
expect 0 "credit with weights" -- E --json credit $MAN --at 2026-03-01 --rules "$W/rules.json"
python3 "$W/expect.py" "$W/alerts.json" "$W/export.jsonl" $MAN '{"losses":0,"open_medium":0.5}' "$W/out" >/dev/null && ok ||
  bad "weights: $(cat "$W/out")"
# reconciliation reads the same file (its "credit" object is not a rule)
expect 0 "reconcile --rules with a credit object" -- E reconcile --dry-run --as-of 2026-03-01T00:00:00+08:00 --rules "$W/rules.json"
# the window: nothing of 2026 counts as of 2025
expect 0 "credit before anything happened" -- E --json credit $MAN --at 2025-12-31
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); assert c["score"] == 100 and c["grade"] == "A" and not any(f["count"] for f in c["factors"]), c' "$W/out" &&
  ok || bad "window: $(cat "$W/out")"
expect 0 "a year later, nothing counts" -- E --json credit $MAN --at 2027-03-01
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); assert c["score"] == 100, c' "$W/out" && ok || bad "a year later: $(cat "$W/out")"
# bad input: nothing half-done, clear errors
echo '{"credit":{"weights":{"bribes":3}}}' >"$W/bad1.json"
expect 2 "an unknown factor" -- E credit $MAN --rules "$W/bad1.json"
grep -q "credit.weights.bribes" "$W/err" && ok || bad "unknown factor: $(cat "$W/err")"
echo '{"credit":{"weights":{"losses":-1}}}' >"$W/bad2.json"
expect 2 "a negative weight" -- E credit $MAN --rules "$W/bad2.json"
echo '{"credit":[1]}' >"$W/bad3.json"
expect 2 "credit not an object" -- E credit $MAN --rules "$W/bad3.json"
expect 4 "an unknown party" -- E credit 91310000MA1K0000ZZ
expect 2 "not a party id" -- E credit 'a b'
expect 1 "no party" -- E credit
expect 1 "a bad time" -- E credit $MAN --at yesterday
# rights: the party itself and regulators
expect 0 "the party reads its own" -- E --as $MAN credit $MAN
expect 5 "another party may not" -- E --as $OTHER credit $MAN

# through traced: the same bytes
"$TD" --data "$D" --listen "$IPC" --log-level error 2>>"$W/traced.log" &
DPID=$!
for _ in $(seq 100); do C head >/dev/null 2>&1 && break; sleep 0.1; done
expect 0 "credit through traced" -- C --json credit $MAN --at 2026-03-01
cmp -s "$W/out" "$W/c1.json" && ok || bad "through traced: $(cat "$W/out")"
expect 5 "another party through traced" -- C --as $OTHER credit $MAN
expect 1 "--rules through traced" -- C credit $MAN --rules "$W/rules.json"
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null; DPID=
# a loss voided by its recorder no longer counts; a corrected one once
{
  echo '{"type":"correction","id":"c-l2","party":"'$MAN'","at":"2026-02-20T08:00:00+08:00","corrects":"l2","reason":"found again"}'
  echo '{"type":"correction","id":"c-l1","party":"'$MAN'","at":"2026-02-20T09:00:00+08:00","corrects":"l1","reason":"qty","replacement":{"type":"loss","id":"l1","party":"'$MAN'","at":"2026-02-11T08:00:00+08:00","substance":"acetone","lot":"A1","site":"plant","qty":"8","unit":"L","reason":"damage"}}'
} >"$W/corr.jsonl"
expect 0 "void one loss, correct the other" -- E import "$W/corr.jsonl"
expect 0 "credit after the corrections" -- E --json credit $MAN --at 2026-03-01
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); n = {f["factor"]: f["count"] for f in c["factors"]}; assert n["losses"] == 1, n' "$W/out" &&
  ok || bad "losses after a void: $(cat "$W/out")"
checks_done credit
