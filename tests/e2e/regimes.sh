#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regimes as data (SPEC 12), with real processes:
#   regimes.sh TRACECTL DATA_DIR TRACED
# init --regime and --regimes (an unknown regime or a malformed table
# refused with nothing made), `tracectl regime` (text, zh, JSON), a CN
# ledger by default, the regime's permit kinds in record, check and
# reconcile, the catalog's EU categories, and `regime` through traced
# (the same table as embedded).
set -u
T=$1 DATA=$2 TD=$3
W=$(mktemp -d /tmp/trace-regimes-XXXXXX)
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

# refused: nothing made, not even the folder or a key
expect 2 "init --regime XX" -- "$T" --data "$W/xx" init --regime XX
grep -q "unknown regime XX: the regime table has CN, US, EU, UN" "$W/err" && ok || bad "unknown regime: $(cat "$W/err")"
[ ! -e "$W/xx" ] && ok || bad "init --regime XX left $(ls -R "$W/xx")"
printf '{"regimes":[{"regime":"CN","scopes":["A"],"classes":[{"class":"A","licence":"B"}]}]}' >"$W/bad.json"
expect 2 "init --regimes with a licence outside its scopes" -- "$T" --data "$W/bad" init --regimes "$W/bad.json"
grep -q "regimes: CN A: \"licence\" must be one of the regime's \"scopes\"" "$W/err" && ok || bad "malformed table: $(cat "$W/err")"
[ ! -e "$W/bad" ] && ok || bad "a malformed table left a folder"
printf '{"regimes":' >"$W/trunc.json"
expect 2 "init --regimes truncated" -- "$T" --data "$W/bad" init --regimes "$W/trunc.json"
expect 4 "init --regimes missing file" -- "$T" --data "$W/bad" init --regimes "$W/nope.json"
[ ! -e "$W/bad" ] && ok || bad "a refused table left a folder"

# default: CN, and init says nothing new
expect 0 "init" -- "$T" --data "$W/cn" init
grep -q "^regime" "$W/out" && bad "plain init names a regime: $(cat "$W/out")" || ok
expect 0 "regime of a CN ledger" -- "$T" --data "$W/cn" regime
head -1 "$W/out" | grep -q "^regime CN: China" && ok || bad "regime: $(head -1 "$W/out")"
grep -A2 "^CN-PC-1 (category 1)" "$W/out" | grep -q "sale  *purchase_license (required)" && ok || bad "CN-PC-1: $(cat "$W/out")"
grep -A2 "^CN-PC-3 (category 3)" "$W/out" | grep -q "transport  *transport_license/transport_filing (if configured)" && ok || bad "CN-PC-3 transport: $(cat "$W/out")"

# US
expect 0 "init --regime US" -- "$T" --data "$W/us" init --regime US
grep -q "^regime: US$" "$W/out" && ok || bad "init output: $(cat "$W/out")"
expect 0 "regime --json" -- "$T" --data "$W/us" --json regime
python3 - "$W/out" <<'PY' && ok || bad "regime --json: $(cat "$W/out")"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["class"]: x for x in r["classes"]}
assert r["regime"] == "US"
assert c["US-CSA-II"]["sale"] == {"permits": ["order_form"], "required": True}
assert c["US-LIST-I"]["licence"] == "US-LIST-I" and c["US-LIST-II"]["licence"] is None
PY
expect 0 "regime --lang zh" -- "$T" --data "$W/us" --lang zh regime
grep -q "销售  *订货单 (必须)" "$W/out" && ok || bad "zh: $(cat "$W/out")"
cat >"$W/us.jsonl" <<'JSONL'
{"type":"party","id":"r-s","party":"REGULATOR","at":"2026-03-01T08:00:00Z","subject":"S1","name":"Seller","kind":"manufacturer","region":"US-NJ","licenses":["US-CSA-II","US-LIST-I"]}
{"type":"party","id":"r-b","party":"REGULATOR","at":"2026-03-01T08:00:00Z","subject":"B1","name":"Buyer","kind":"distributor","region":"US-NY","licenses":["US-CSA-II"]}
{"type":"permit","id":"p-1","party":"REGULATOR","at":"2026-03-01T08:00:00Z","permit":"DEA222-1","kind":"订货单","holder":"B1","counterparty":"S1","substance":"anpp","qty":"50","unit":"kg","valid_from":"2026-03-01","valid_until":"2026-12-31","uses":"multi"}
{"type":"permit","id":"p-2","party":"REGULATOR","at":"2026-03-01T08:00:00Z","permit":"PL-1","kind":"purchase_license","holder":"B1","counterparty":"S1","substance":"anpp","qty":"50","unit":"kg","valid_from":"2026-03-01","valid_until":"2026-12-31","uses":"multi"}
{"type":"produce","id":"m-1","party":"S1","at":"2026-03-02T08:00:00Z","substance":"anpp","lot":"A1","qty":"100","unit":"kg"}
{"type":"produce","id":"m-2","party":"S1","at":"2026-03-02T08:00:00Z","substance":"ephedrine","lot":"E1","qty":"100","unit":"kg"}
JSONL
expect 0 "import US parties and permits" -- "$T" --data "$W/us" import --provision-keys --historic "$W/us.jsonl"
expect 0 "permit show: the kind as stored" -- "$T" --data "$W/us" --json permit show DEA222-1
grep -q '"kind":"order_form"' "$W/out" && ok || bad "order form: $(cat "$W/out")"
expect 0 "permit show --lang zh" -- "$T" --data "$W/us" --lang zh permit show DEA222-1
grep -q "^许可证  *DEA222-1 (订货单, 多次)$" "$W/out" && ok || bad "zh permit kind: $(head -2 "$W/out")"
expect 0 "check a Schedule II sale with its order form" -- "$T" --data "$W/us" --as S1 check sale --id c-1 --to B1 --substance anpp --lot A1 --qty 5 --unit kg --permit DEA222-1 --at 2026-03-03T08:00:00Z
expect 2 "record a Schedule II sale citing a purchase licence" -- "$T" --data "$W/us" --as S1 record sale --id c-2 --to B1 --substance anpp --lot A1 --qty 5 --unit kg --permit PL-1 --at 2026-03-03T08:00:00Z
grep -q "PERMIT_INVALID: permit PL-1 is a purchase_license, which does not cover this movement" "$W/err" && ok || bad "wrong kind at entry: $(cat "$W/err")"
expect 0 "record a List I sale without a permit" -- "$T" --data "$W/us" --as S1 record sale --id c-3 --to B1 --substance ephedrine --lot E1 --qty 5 --unit kg --at 2026-03-03T08:00:00Z
expect 0 "reconcile" -- "$T" --data "$W/us" --json reconcile --as-of 2026-03-04T00:00:00Z
grep -q '"rule":"UNLICENSED_PARTY".*"detail":"B1 lacks the licence scope US-LIST-I for ephedrine (sale c-3)"' "$W/out" && ok || bad "US-LIST-I: $(cat "$W/out")"
grep -q '"rule":"PERMIT_MISSING"' "$W/out" && bad "PERMIT_MISSING for a List I sale: $(cat "$W/out")" || ok

# EU, UN
expect 0 "init --regime EU" -- "$T" --data "$W/eu" init --regime EU
expect 0 "regime EU" -- "$T" --data "$W/eu" regime
grep -A1 "^EU-PC-1 (category 1)" "$W/out" | grep -q "sale  *customer_declaration (required)" && ok || bad "EU-PC-1: $(cat "$W/out")"
expect 0 "init --regime UN" -- "$T" --data "$W/un" init --regime UN
expect 0 "regime UN" -- "$T" --data "$W/un" regime
grep -q "^licence scopes: UN1988-I UN1988-II$" "$W/out" && ok || bad "UN scopes: $(cat "$W/out")"

# a custom table: the built-in one with CN's category 1 deadline at 2 days
python3 - "$DATA/regimes.json" "$W/mine.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["regimes"][0]["late_report"]["cat1_days"] = 2
json.dump(t, open(sys.argv[2], "w"), ensure_ascii=False)
PY
expect 0 "init --regimes FILE" -- "$T" --data "$W/mine" init --regimes "$W/mine.json" --regime CN
expect 0 "regime of a custom table" -- "$T" --data "$W/mine" regime
grep -q "cat1_days 2 " "$W/out" && ok || bad "custom deadline: $(cat "$W/out")"

# the catalog carries the EU categories
expect 0 "catalog" -- "$T" --data "$W/us" --json catalog
python3 - "$W/out" <<'PY' && ok || bad "EU categories in the catalog"
import json, sys
got = {s["code"]: s["scopes"] for s in map(json.loads, open(sys.argv[1]))}
for code, eu in (("ephedrine", "EU-PC-1"), ("apaan", "EU-PC-1"), ("acetic-anhydride", "EU-PC-2A"),
                 ("potassium-permanganate", "EU-PC-2B"), ("acetone", "EU-PC-3")):
    assert eu in got[code], (code, got[code])
assert got["acetone"][0] == "CN-PC-3" and "US-LIST-II" in got["acetone"]
PY
# through traced: a typed operation, the same table as embedded
expect 0 "regime --json embedded" -- "$T" --data "$W/us" --json regime
cp "$W/out" "$W/us.json"
"$TD" --data "$W/us" --listen "ipc://$W/d.ipc" --log-level error 2>>"$W/traced.log" &
DPID=$!
for _ in $(seq 100); do "$T" --connect "ipc://$W/d.ipc" --keys "$W/us/keys" head >/dev/null 2>&1 && break; sleep 0.1; done
expect 0 "regime --json through traced" -- "$T" --connect "ipc://$W/d.ipc" --keys "$W/us/keys" --json regime
cmp -s "$W/out" "$W/us.json" && ok || bad "regime through traced differs: $(head -c 300 "$W/out")"
expect 0 "regime through traced" -- "$T" --connect "ipc://$W/d.ipc" --keys "$W/us/keys" regime
grep -q "^regime US: " "$W/out" && ok || bad "regime text through traced: $(head -3 "$W/out")"
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null; DPID=
expect 6 "regime with no daemon" -- "$T" --connect ipc:///nonexistent regime
checks_done regimes
