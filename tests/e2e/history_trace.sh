#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of what an investigator reads in histories and traces:
#   history_trace.sh TRACECTL DEMO.jsonl [TRACED]
# On the demo ledger with one void (trf-0001) and the demo's replacement
# (cor-0001 of use-0001): a lot's history lists the corrected events and
# their corrections (text, --json, --csv); a trace shows receipts with the
# sale they match and names where goods leave the chain; `trace --backward`
# without --party walks back from every current holder; party names stand
# beside ids.  With TRACED, the same commands through the daemon print the
# same bytes.
set -u
T=$1 DEMO=$2 TD=${3:-}
W=$(mktemp -d /tmp/trace-ht-XXXXXX)
D=$W/ledger
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

MAN=91310000MA1K000001 DIST=91320000MA1K000002 USR=91330000MA1K000003
NARC=91310000MA1K000006 HOSP=12310000MB0000005
"$T" --data "$D" init >/dev/null && "$T" --data "$D" import --provision-keys "$DEMO" >/dev/null ||
  { echo "FAIL: setup"; exit 1; }
expect 0 "void trf-0001" -- "$T" --data "$D" --as $DIST record correction --id cor-trf \
  --corrects trf-0001 --reason "entered twice" --void --at 2026-01-13T09:00:00+08:00

# same WHAT FILE CMD...: CMD's output is exactly FILE
same() {
  local what=$1 want=$2; shift 2
  "$@" >"$W/got" 2>"$W/got.err" || { bad "$what: exit $? $(cat "$W/got.err")"; return; }
  if cmp -s "$want" "$W/got"; then ok; else
    bad "$what differs"; diff "$want" "$W/got" | head -8
  fi
}

# --- 1. a lot's history: the voided transfer and its void, in order ---
cat >"$W/hist-eph" <<'EOF'
     SEQ  AT                        TYPE          PARTY                ID               SUBSTANCE          LOT            QTY              NAME
      14  2026-01-08T08:00:00+08:00 produce       91310000MA1K000001   prd-0001         ephedrine          EPH-2601-A     250 kg           Huadong Fine Chemicals Co.
      16  2026-01-10T09:30:00+08:00 sale          91310000MA1K000001   sal-0001         ephedrine          EPH-2601-A     100 kg           Huadong Fine Chemicals Co.
      18  2026-01-11T16:00:00+08:00 receipt       91320000MA1K000002   rcp-0001         ephedrine          EPH-2601-A     99.95 kg         Jiangsu Reagent Distribution Ltd.
      19  2026-01-12T10:00:00+08:00 transfer      91320000MA1K000002   trf-0001         ephedrine          EPH-2601-A     40 kg            Jiangsu Reagent Distribution Ltd.  (voided by cor-trf)
      35  2026-02-10T07:45:00+08:00 loss          91320000MA1K000002   los-0001         ephedrine          EPH-2601-A     0.5 kg           Jiangsu Reagent Distribution Ltd.
      38  2026-03-05T11:00:00+08:00 export        91310000MA1K000001   exp-0001         ephedrine          EPH-2601-A     50 kg            Huadong Fine Chemicals Co.
      39  2026-01-13T09:00:00+08:00 correction    91320000MA1K000002   cor-trf          ephedrine          EPH-2601-A                      Jiangsu Reagent Distribution Ltd.  (voids trf-0001)
EOF
# a replacement: the original marked corrected, the correction with the
# replacement's quantity
cat >"$W/hist-aa" <<'EOF'
     SEQ  AT                        TYPE          PARTY                ID               SUBSTANCE          LOT            QTY              NAME
      15  2026-01-09T14:00:00+08:00 import        91310000MA1K000001   imp-0001         acetic-anhydride   AA-IMP-2601    3 t              Huadong Fine Chemicals Co.
      20  2026-01-15T09:00:00+08:00 sale          91310000MA1K000001   sal-0002         acetic-anhydride   AA-IMP-2601    800 kg           Huadong Fine Chemicals Co.
      22  2026-01-16T11:00:00+08:00 receipt       91330000MA1K000003   rcp-0002         acetic-anhydride   AA-IMP-2601    800 kg           Zhejiang Pharma Manufacturing Co.
      23  2026-01-20T08:30:00+08:00 consume       91330000MA1K000003   use-0001         acetic-anhydride   AA-IMP-2601    250.5 kg         Zhejiang Pharma Manufacturing Co.  (corrected by cor-0001)
      24  2026-01-20T18:00:00+08:00 produce       91330000MA1K000003   prd-0002         morphine           MOR-2601       10000 unit       Zhejiang Pharma Manufacturing Co.
      36  2026-01-21T09:00:00+08:00 correction    91330000MA1K000003   cor-0001         acetic-anhydride   AA-IMP-2601    205.5 kg         Zhejiang Pharma Manufacturing Co.  (corrects use-0001)
EOF
printf '\357\273\277' >"$W/hist-aa.csv"  # the UTF-8 BOM CSV starts with
cat >>"$W/hist-aa.csv" <<'EOF'
seq,at,type,party,id,substance,lot,qty,unit,corrected,voided,corrected_by,corrects,voids,party_name
15,2026-01-09T14:00:00+08:00,import,91310000MA1K000001,imp-0001,acetic-anhydride,AA-IMP-2601,3,t,false,false,,,false,Huadong Fine Chemicals Co.
20,2026-01-15T09:00:00+08:00,sale,91310000MA1K000001,sal-0002,acetic-anhydride,AA-IMP-2601,800,kg,false,false,,,false,Huadong Fine Chemicals Co.
22,2026-01-16T11:00:00+08:00,receipt,91330000MA1K000003,rcp-0002,acetic-anhydride,AA-IMP-2601,800,kg,false,false,,,false,Zhejiang Pharma Manufacturing Co.
23,2026-01-20T08:30:00+08:00,consume,91330000MA1K000003,use-0001,acetic-anhydride,AA-IMP-2601,250.5,kg,true,false,cor-0001,,false,Zhejiang Pharma Manufacturing Co.
24,2026-01-20T18:00:00+08:00,produce,91330000MA1K000003,prd-0002,morphine,MOR-2601,10000,unit,false,false,,,false,Zhejiang Pharma Manufacturing Co.
36,2026-01-21T09:00:00+08:00,correction,91330000MA1K000003,cor-0001,acetic-anhydride,AA-IMP-2601,205.5,kg,false,false,,use-0001,false,Zhejiang Pharma Manufacturing Co.
EOF
# what --json must say of the corrected events and their corrections
json_history() {
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
seqs = [r["seq"] for r in rows]
assert seqs == sorted(seqs), seqs
by = {r["event"]["id"]: r for r in rows}
t, v = by["trf-0001"], by["cor-trf"]
assert (t["corrected"], t["voided"], t["corrected_by"], t["corrects"]) == (True, True, "cor-trf", None), t
assert (v["corrects"], v["voids"], v["corrected"]) == ("trf-0001", True, False), v
assert v["event"]["type"] == "correction" and v["event"]["corrects"] == "trf-0001", v
assert t["party_name"] == v["party_name"] == "Jiangsu Reagent Distribution Ltd.", t
assert seqs.index(t["seq"]) < seqs.index(v["seq"])
assert by["prd-0001"]["corrected"] is False and by["prd-0001"]["corrected_by"] is None
PY
}
json_replacement() {
  python3 - "$1" <<'PY'
import json, sys
by = {}
for l in open(sys.argv[1]):
    r = json.loads(l); by[r["event"]["id"]] = r
u, c = by["use-0001"], by["cor-0001"]
assert (u["corrected"], u["voided"], u["corrected_by"]) == (True, False, "cor-0001"), u
assert (c["corrects"], c["voids"]) == ("use-0001", False), c
assert c["event"]["replacement"]["qty"] == "205.5", c
PY
}

# --- 2. traces: receipts beside their sales, where goods leave ---
cat >"$W/fwd-mor" <<'EOF'
produce   MOR-2601 (origin) -> 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.)  10000 unit  [2026-01-20T18:00:00+08:00 91330000MA1K000003/prd-0002]
  sale      MOR-2601 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.) -> 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution)  5000 unit  [2026-01-22T10:00:00+08:00 91330000MA1K000003/sal-0003]
  receipt   MOR-2601 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.) -> 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution)  5000 unit  [2026-01-23T09:00:00+08:00 91310000MA1K000006/rcp-0003]  receipt of sale sal-0003
    sale      MOR-2601 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution) -> 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy)  600 unit  [2026-01-25T10:00:00+08:00 91310000MA1K000006/sal-0004]
    receipt   MOR-2601 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution) -> 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy)  600 unit  [2026-01-25T15:00:00+08:00 12310000MB0000005/rcp-0004]  receipt of sale sal-0004
      dispense  MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (dispensed to patients)  21 unit  [2026-02-01T10:12:00+08:00 12310000MB0000005/dsp-0001]
      dispense  MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (dispensed to patients)  1 unit  [2026-02-02T15:40:00+08:00 12310000MB0000005/dsp-0002]
      destroy   MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (destroyed)  2 unit  [2026-03-01T10:00:00+08:00 12310000MB0000005/dst-0001]
EOF
# use in production (the replacement's 205.5 kg) and the lot it went into
cat >"$W/fwd-aa-usr" <<'EOF'
consume   AA-IMP-2601 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.) -> (used in production)  205.5 kg  [2026-01-20T08:30:00+08:00 91330000MA1K000003/use-0001]
produce   AA-IMP-2601 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.): into lot MOR-2601  20 kg  [2026-01-20T18:00:00+08:00 91330000MA1K000003/prd-0002]
  sale      MOR-2601 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.) -> 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution)  5000 unit  [2026-01-22T10:00:00+08:00 91330000MA1K000003/sal-0003]
  receipt   MOR-2601 91330000MA1K000003 (Zhejiang Pharma Manufacturing Co.) -> 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution)  5000 unit  [2026-01-23T09:00:00+08:00 91310000MA1K000006/rcp-0003]  receipt of sale sal-0003
    sale      MOR-2601 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution) -> 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy)  600 unit  [2026-01-25T10:00:00+08:00 91310000MA1K000006/sal-0004]
    receipt   MOR-2601 91310000MA1K000006 (Sinopharm Shanghai Narcotics Distribution) -> 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy)  600 unit  [2026-01-25T15:00:00+08:00 12310000MB0000005/rcp-0004]  receipt of sale sal-0004
      dispense  MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (dispensed to patients)  21 unit  [2026-02-01T10:12:00+08:00 12310000MB0000005/dsp-0001]
      dispense  MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (dispensed to patients)  1 unit  [2026-02-02T15:40:00+08:00 12310000MB0000005/dsp-0002]
      destroy   MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (destroyed)  2 unit  [2026-03-01T10:00:00+08:00 12310000MB0000005/dst-0001]
EOF
json_forward() {
  python3 - "$1" <<'PY'
import json, sys
hops = [json.loads(l) for l in open(sys.argv[1])]
kinds = [(h["kind"], h["event"]) for h in hops]
i = kinds.index(("sale", "sal-0004"))
r = hops[i + 1]
assert (r["kind"], r["event"], r["party"], r["ref"]) == ("receipt", "rcp-0004", "12310000MB0000005", "sal-0004"), r
assert (r["from"], r["to"], r["qty"], r["unit"], r["at"]) == ("91310000MA1K000006", "12310000MB0000005", "600", "unit", "2026-01-25T15:00:00+08:00"), r
assert r["depth"] == hops[i]["depth"], r
assert r["to_name"] == "Shanghai Sixth People's Hospital Pharmacy", r
assert r["from_name"] == "Sinopharm Shanghai Narcotics Distribution", r
ends = {h["event"]: h["leaves"] for h in hops if h["leaves"]}
assert ends == {"dsp-0001": "dispensed", "dsp-0002": "dispensed", "dst-0001": "destroyed"}, ends
assert all(h["to"] is None for h in hops if h["leaves"]), hops
assert hops[0]["holder"] is None
PY
}

# --- 3. backward without --party: from every current holder ---
cat >"$W/bwd-eph" <<'EOF'
91310000MA1K000001 (Huadong Fine Chemicals Co.) holds 100 kg of EPH-2601-A
  produce   EPH-2601-A (origin) -> 91310000MA1K000001 (Huadong Fine Chemicals Co.)  250 kg  [2026-01-08T08:00:00+08:00 91310000MA1K000001/prd-0001]
91320000MA1K000002 (Jiangsu Reagent Distribution Ltd.) holds 99.45 kg of EPH-2601-A
  sale      EPH-2601-A 91310000MA1K000001 (Huadong Fine Chemicals Co.) -> 91320000MA1K000002 (Jiangsu Reagent Distribution Ltd.)  100 kg  [2026-01-10T09:30:00+08:00 91310000MA1K000001/sal-0001]
  receipt   EPH-2601-A 91310000MA1K000001 (Huadong Fine Chemicals Co.) -> 91320000MA1K000002 (Jiangsu Reagent Distribution Ltd.)  99.95 kg  [2026-01-11T16:00:00+08:00 91320000MA1K000002/rcp-0001]  receipt of sale sal-0001
    produce   EPH-2601-A (origin) -> 91310000MA1K000001 (Huadong Fine Chemicals Co.)  250 kg  [2026-01-08T08:00:00+08:00 91310000MA1K000001/prd-0001]
EOF
json_backward() {
  python3 - "$1" <<'PY'
import json, sys
hops = [json.loads(l) for l in open(sys.argv[1])]
held = {}
for h in hops:
    held.setdefault(h["holder"], (h["holder_name"], h["held"], h["held_unit"]))
# every party with stock of MOR-2601 now, in id order, each walk whole
assert list(held) == ["12310000MB0000005", "91310000MA1K000006", "91330000MA1K000003"], held
assert held["12310000MB0000005"] == ("Shanghai Sixth People's Hospital Pharmacy", "576", "unit"), held
assert held["91310000MA1K000006"] == ("Sinopharm Shanghai Narcotics Distribution", "4400", "unit"), held
assert held["91330000MA1K000003"] == ("Zhejiang Pharma Manufacturing Co.", "5000", "unit"), held
for who in held:
    mine = [h for h in hops if h["holder"] == who]
    assert mine[0]["depth"] == 0
    # each walk reaches the producer and, through it, the imported input
    assert any(h["kind"] == "produce" and h["event"] == "prd-0002" for h in mine), who
    assert any(h["kind"] == "import" and h["event"] == "imp-0001" for h in mine), who
PY
}

# The checks, through one way of calling tracectl (embedded or daemon).
run_checks() {
  local how=$1; shift
  same "$how history EPH-2601-A" "$W/hist-eph" "$@" history EPH-2601-A
  same "$how history --lot EPH-2601-A" "$W/hist-eph" "$@" history --lot EPH-2601-A
  same "$how history AA-IMP-2601" "$W/hist-aa" "$@" history AA-IMP-2601
  same "$how history AA-IMP-2601 --csv" "$W/hist-aa.csv" "$@" history AA-IMP-2601 --csv
  "$@" --json history EPH-2601-A >"$W/h.json" && json_history "$W/h.json" && ok ||
    bad "$how history EPH-2601-A --json: $(cat "$W/h.json")"
  "$@" --json history AA-IMP-2601 >"$W/h.json" && json_replacement "$W/h.json" && ok ||
    bad "$how history AA-IMP-2601 --json: $(cat "$W/h.json")"
  # a party's history names the void's target too
  "$@" history $DIST >"$W/out" || bad "$how history $DIST failed"
  grep -q "^      39  2026-01-13T09:00:00+08:00 correction    $DIST   cor-trf          ephedrine          EPH-2601-A                      Jiangsu Reagent Distribution Ltd.  (voids trf-0001)$" "$W/out" &&
    grep -q "trf-0001 .*  (voided by cor-trf)$" "$W/out" && ok || bad "$how history $DIST: $(cat "$W/out")"
  same "$how trace MOR-2601 --forward" "$W/fwd-mor" "$@" trace MOR-2601 --forward
  same "$how trace AA-IMP-2601 --party $USR --forward" "$W/fwd-aa-usr" "$@" trace AA-IMP-2601 --party $USR --forward
  "$@" --json trace MOR-2601 --forward >"$W/t.json" && json_forward "$W/t.json" && ok ||
    bad "$how trace MOR-2601 --forward --json: $(head -c 600 "$W/t.json")"
  same "$how trace EPH-2601-A --backward" "$W/bwd-eph" "$@" trace EPH-2601-A --backward
  "$@" --json trace MOR-2601 --backward >"$W/t.json" && json_backward "$W/t.json" && ok ||
    bad "$how trace MOR-2601 --backward --json: $(head -c 600 "$W/t.json")"
  "$@" trace MOR-2601 --backward >"$W/out" || bad "$how trace MOR-2601 --backward failed"
  [ "$(grep -c '^[0-9]' "$W/out")" = 3 ] &&
    grep -qx "$HOSP (Shanghai Sixth People's Hospital Pharmacy) holds 576 unit of MOR-2601" "$W/out" &&
    grep -qx "$NARC (Sinopharm Shanghai Narcotics Distribution) holds 4400 unit of MOR-2601" "$W/out" &&
    grep -qx "$USR (Zhejiang Pharma Manufacturing Co.) holds 5000 unit of MOR-2601" "$W/out" && ok ||
    bad "$how trace MOR-2601 --backward: $(cat "$W/out")"
  # in Chinese, the kinds of the hops too
  "$@" --lang zh trace EPH-2601-A --backward >"$W/out" || bad "$how --lang zh trace failed"
  grep -q "^  销售      EPH-2601-A $MAN (Huadong Fine Chemicals Co.) -> $DIST " "$W/out" &&
    grep -q "^  收货      EPH-2601-A .*  对应销售 sal-0001$" "$W/out" &&
    grep -q "^    生产      EPH-2601-A (来源) -> $MAN " "$W/out" &&
    ! grep -Eq "^ *(sale|receipt|produce|transfer|consume|dispense|import|export|destroy|loss|stocktake) " "$W/out" && ok ||
    bad "$how --lang zh trace EPH-2601-A --backward: $(cat "$W/out")"
  # with --party, one holder's walk as before, the receipt beside its sale
  "$@" trace EPH-2601-A --party $DIST --backward >"$W/out" || bad "$how trace --party --backward failed"
  [ "$(cat "$W/out")" = "$(sed -n '4,$p' "$W/bwd-eph" | sed 's/^  //')" ] && ok ||
    bad "$how trace EPH-2601-A --party $DIST --backward: $(cat "$W/out")"
}

run_checks embedded "$T" --data "$D"

# Through traced: the same bytes (names, receipts, corrections travel in
# the Result's rows).
if [ -n "$TD" ]; then
  IPC=ipc://$W/traced.ipc
  "$TD" --data "$D" --listen "$IPC" --log-level error 2>>"$W/traced.log" &
  DPID=$!
  for _ in $(seq 100); do
    "$T" --connect "$IPC" --keys "$D/keys" head >/dev/null 2>&1 && break
    sleep 0.1
  done
  run_checks "through traced" "$T" --connect "$IPC" --keys "$D/keys"
  kill -TERM "$DPID"; wait "$DPID" 2>/dev/null; DPID=
fi

checks_done history_trace
