#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of GS1 EPCIS 2.0 import (SPEC 11), with real processes:
#   epcis.sh TRACECTL DEMO.jsonl VECTORS-DIR
# Every GS1 example in VECTORS-DIR (tests/data/epcis) gives a clear
# outcome - imported, skipped or rejected with its eventList index and
# reason - with no products registered, with products but no parties'
# GLNs, and with both; a rejected document stores nothing; re-importing
# is idempotent; malformed documents (not JSON, wrong type, no
# eventTime, a bad GTIN check digit, a quantity without uom) are
# refused; EPCISQueryDocument, dispensing with a prescription extension
# and shipping citing a permit map as SPEC 11 says.
set -u
T=$1 DEMO=$2 V=$3
W=$(mktemp -d /tmp/trace-e2e-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
size_of() { "$T" --data "$1" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
# GS1 keys of EPC URIs: gtin CP.ITEMREF, gln CP.LOCREF
gs1() {
  python3 - "$@" <<'PY'
import sys
def cd(s):
    t = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(s)))
    return str((10 - t % 10) % 10)
kind, cp, ref = sys.argv[1], sys.argv[2], sys.argv[3]
k = ref[0] + cp + ref[1:] if kind == "gtin" else cp + ref
print(k + cd(k))
PY
}
REG=REGULATOR
M1=91310000MA1K000001 D2=91320000MA1K000002 U3=91330000MA1K000003
H5=12310000MB0000005 N6=91310000MA1K000006
ev() { # FILE: the epcis import of a vector, output in $W/out, $W/err
  "$T" --data "$D" import --format epcis "$1" >"$W/out" 2>"$W/err"
}
outcome() { # DESC FILE EXIT IMPORTED SKIPPED REJECTED
  local desc=$1 f=$2 want=$3 n0 got
  n0=$(size_of "$D")
  ev "$f"
  got=$?
  [ "$got" = "$want" ] && ok || { bad "$desc: exit $got, wanted $want"; sed 's/^/  | /' "$W/err" "$W/out" | head -8; }
  grep -q "events: $4 imported .*, $5 skipped, $6 rejected" "$W/out" && ok ||
    bad "$desc: summary $(cat "$W/out") (wanted $4 imported, $5 skipped, $6 rejected)"
  if [ "$6" != 0 ]; then
    grep -q "nothing was imported" "$W/err" && ok || bad "$desc: $(cat "$W/err")"
    [ "$(size_of "$D")" = "$n0" ] && ok || bad "$desc: a rejected document stored entries"
  fi
}

expect 0 "init" -- "$T" --data "$D" init
expect 0 "import demo" -- "$T" --data "$D" import --provision-keys "$DEMO"

# 1. No product registered: every event is skipped (or read, for
# aggregations and associations); the schema is no EPCIS document.
for f in "$V"/*.jsonld; do
  n0=$(size_of "$D")
  ev "$f" && ok || bad "$(basename "$f") without products: exit $?: $(cat "$W/err")"
  grep -q "events: 0 imported (0 ledger events), [1-9][0-9]* skipped, 0 rejected" "$W/out" && ok ||
    bad "$(basename "$f") without products: $(cat "$W/out")"
  [ "$(size_of "$D")" = "$n0" ] && ok || bad "$(basename "$f") without products stored entries"
done
grep -q "eventList\[0\]: skipped: AggregationEvent: read, no custody change" <("$T" --data "$D" import --format epcis "$V/Example_9.6.3-AggregationEvent.jsonld" 2>&1) && ok ||
  bad "an aggregation is not reported as read"
expect 2 "the JSON schema is no EPCIS document" -- "$T" --data "$D" import --format epcis "$V/EPCIS-JSON-Schema.json"
grep -q 'not an EPCIS document: its "type" is "object"' "$W/err" && ok || bad "schema: $(cat "$W/err")"

# 2. Products registered, parties without GLNs.
G_MOR=$(gs1 gtin 0614141 107346)   # 9.6.1: serialised, shipping/receiving
G_EPH=$(gs1 gtin 4012345 012345)   # 9.6.2: 200 KGM received
G_IN=$(gs1 gtin 4012345 011111)    # 9.6.4: 10 KGM input
G_TAB=$(gs1 gtin 4012345 077889)   # 9.6.4: serialised outputs
G_IN2=$(gs1 gtin 4012345 022222)   # error declaration example
G_OUT2=$(gs1 gtin 4012345 044444)
G_PD=$(gs1 gtin 9520001 012346)    # persistent disposition: 10 EPCs
G_NOUOM=$(gs1 gtin 0614141 077777) # 9.6.4: quantity 30 without uom
prod() { # ID GTIN SUBSTANCE QTY UNIT PER-PACK
  printf '{"type":"product","id":"%s","party":"%s","at":"2000-01-01T00:00:00+08:00","gtin":"%s","substance":"%s","content":{"qty":"%s","unit":"%s"},"units_per_pack":%s,"name":"%s %s","form":"tablet"}\n' \
    "$1" $REG "$2" "$3" "$4" "$5" "$6" "$3" "$1"
}
{
  prod p-mor "$G_MOR" morphine 1 unit 10
  prod p-eph "$G_EPH" ephedrine 1 kg 1
  prod p-in "$G_IN" ephedrine 1 kg 1
  prod p-tab "$G_TAB" ephedrine 30 mg 10
  prod p-in2 "$G_IN2" ephedrine 1 kg 1
  prod p-out2 "$G_OUT2" ephedrine 1 kg 1
  prod p-pd "$G_PD" morphine 1 unit 10
} >"$W/products.jsonl"
expect 0 "register products" -- "$T" --data "$D" import "$W/products.jsonl"
expect 0 "products" -- "$T" --data "$D" products
[ "$(grep -c '^[0-9]\{14\} ' "$W/out")" = 7 ] && ok || bad "products lists: $(cat "$W/out")"
grep -q "^$G_TAB ephedrine *30 mg *10 tablet" "$W/out" && ok || bad "products row: $(cat "$W/out")"
expect 0 "products --json" -- "$T" --data "$D" --json products --substance morphine
[ "$(wc -l <"$W/out")" = 2 ] && grep -q "\"gtin\":\"$G_PD\",\"substance\":\"morphine\",\"content\":{\"qty\":\"1\",\"unit\":\"unit\"},\"units_per_pack\":10" "$W/out" && ok ||
  bad "products --json: $(cat "$W/out")"

outcome "9.6.1 (no parties)" "$V/Example_9.6.1-ObjectEvent.jsonld" 2 0 0 2
grep -q "eventList\[0\]: rejected: a shipping event with no destination party" "$W/err" && ok || bad "9.6.1: $(cat "$W/err")"
grep -q "eventList\[1\]: rejected: a receiving event with no source party" "$W/err" && ok || bad "9.6.1: $(cat "$W/err")"
outcome "9.6.2 (no parties)" "$V/Example_9.6.2-ObjectEvent.jsonld" 2 0 0 1
grep -q "eventList\[0\]: rejected: source GLN $(gs1 gln 4012345 00001) is no registered party's" "$W/err" && ok || bad "9.6.2: $(cat "$W/err")"
outcome "9.6.4 (no parties)" "$V/Example_9.6.4-TransformationEvent.jsonld" 2 0 0 1
grep -q "eventList\[0\]: rejected: location GLN" "$W/err" && ok || bad "9.6.4: $(cat "$W/err")"
outcome "error declaration (no parties)" "$V/ErrorDeclarationAndCorrectiveEvent.jsonld" 2 0 1 1
grep -q "eventList\[0\]: skipped: declared erroneous" "$W/err" && ok || bad "error declaration: $(cat "$W/err")"
outcome "persistent disposition (no parties)" "$V/PersistentDisposition-example.jsonld" 2 0 1 1
outcome "9.6.3 (no parties)" "$V/Example_9.6.3-AggregationEvent.jsonld" 0 0 1 0
outcome "association (no parties)" "$V/Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld" 0 0 1 0

# 3. Parties carry GLNs: the examples map.
party() { # ID SUBJECT NAME KIND LICENCES GLN
  printf '{"type":"party","id":"%s","party":"'$REG'","at":"2000-01-01T00:00:00+08:00","subject":"%s","name":"%s","kind":"%s","region":"CN-31","licenses":[%s],"gln":"%s"}\n' "$@"
}
{
  party gln-1 $M1 "Huadong Fine Chemicals Co." manufacturer '"CN-PC-1","CN-PC-2","CN-PC-3"' "$(gs1 gln 4012345 00001)"
  party gln-2 $D2 "Jiangsu Reagent Distribution Ltd." distributor '"CN-PC-1","CN-PC-2","CN-PC-3"' "$(gs1 gln 0614141 00001)"
  party gln-3 $U3 "Zhejiang Pharma Manufacturing Co." user '"CN-PC-1","CN-PC-2","CN-NARC"' "$(gs1 gln 0614141 07346)"
  party gln-5 $H5 "Shanghai Sixth People's Hospital Pharmacy" hospital '"CN-NARC","CN-PSY-1","CN-PSY-2"' "$(gs1 gln 9520999 99999)"
  party gln-6 $N6 "Sinopharm Shanghai Narcotics Distribution" distributor '"CN-NARC","CN-PSY-1","CN-PSY-2"' "$(gs1 gln 9520001 11111)"
} >"$W/glns.jsonl"
expect 0 "parties get GLNs" -- "$T" --data "$D" import "$W/glns.jsonl"
"$T" --data "$D" export --party $REG | grep '"id":"gln-1"' | grep -q "\"gln\":\"$(gs1 gln 4012345 00001)\"" && ok || bad "gln not exported"
expect 2 "a bad GLN check digit" -- "$T" --data "$D" import <(party gln-x $M1 x manufacturer '"CN-PC-1"' 4012345000017)
grep -q 'field "gln": "4012345000017" is not 13 digits with a valid GS1 check digit' "$W/err" && ok || bad "bad gln: $(cat "$W/err")"

outcome "9.6.1" "$V/Example_9.6.1-ObjectEvent.jsonld" 2 0 0 2
outcome "9.6.2" "$V/Example_9.6.2-ObjectEvent.jsonld" 0 1 0 0
"$T" --data "$D" export --party $D2 >"$W/x"
grep '"type":"receipt"' "$W/x" | grep -q "\"from\":\"$M1\",\"ref\":\"[^\"]*\",\"substance\":\"ephedrine\",\"lot\":\"998877\",\"qty\":\"200\",\"unit\":\"kg\",\"gtin\":\"$G_EPH\"" && ok ||
  bad "9.6.2 receipt: $(grep receipt "$W/x")"
grep -q '"id":"ni:///sha-256;a98f08ae6ac4de3482054314d637c07010b448d3802dccb028a06aafcc6a4b10?ver=CBV2.0"' "$W/x" && ok || bad "9.6.2: the eventID is not the id"
outcome "9.6.2 again (idempotent)" "$V/Example_9.6.2-ObjectEvent.jsonld" 0 1 0 0
grep -q "imported 0 events (1 already present" "$W/out" && ok || bad "re-import: $(cat "$W/out")"
outcome "9.6.3" "$V/Example_9.6.3-AggregationEvent.jsonld" 0 0 1 0
outcome "9.6.4" "$V/Example_9.6.4-TransformationEvent.jsonld" 0 1 0 0
"$T" --data "$D" export --party $M1 | grep '"type":"produce"' | grep "\"gtin\":\"$G_TAB\"" >"$W/x"
grep -q "\"qty\":\"1200\",\"unit\":\"mg\",.*\"inputs\":\[{\"lot\":\"4444\",\"substance\":\"ephedrine\",\"qty\":\"10\",\"unit\":\"kg\"}\],\"gtin\":\"$G_TAB\",\"packs\":4" "$W/x" && ok ||
  bad "9.6.4 produce: $(cat "$W/x")"
outcome "error declaration" "$V/ErrorDeclarationAndCorrectiveEvent.jsonld" 0 1 1 0
outcome "persistent disposition" "$V/PersistentDisposition-example.jsonld" 0 1 1 0
grep -q "eventList\[1\]: skipped: bizStep inspecting: no custody change" "$W/err" && ok || bad "inspecting: $(cat "$W/err")"
"$T" --data "$D" export --party $H5 | grep '"type":"receipt"' | grep -q "\"from\":\"$N6\",\"ref\":\"urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6#$G_PD/gtin:$G_PD\",\"substance\":\"morphine\",\"lot\":\"gtin:$G_PD\",\"qty\":\"100\",\"unit\":\"unit\",\"gtin\":\"$G_PD\",\"packs\":10" && ok ||
  bad "persistent disposition receipt: $("$T" --data "$D" export --party $H5 | grep receipt | tail -2)"
outcome "association" "$V/Example-Type-sourceOrDestination,measurement,bizTransaction.jsonld" 0 0 1 0
expect 0 "verify --deep" -- "$T" --data "$D" verify --deep

# A product whose quantity has no uom: the whole document is rejected.
expect 0 "register a product counted without uom" -- "$T" --data "$D" import <(prod p-nouom "$G_NOUOM" ephedrine 1 kg 1)
outcome "9.6.4 with a quantity without uom" "$V/Example_9.6.4-TransformationEvent.jsonld" 2 0 0 1
grep -q "eventList\[0\]: rejected: inputQuantityList\[1\]: quantity 30 of product $G_NOUOM without uom" "$W/err" && ok || bad "no uom: $(cat "$W/err")"

# 4. Malformed documents: refused, nothing stored.
doc() { # TYPE EVENT-JSON: a document of one event
  printf '{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"%s","schemaVersion":"2.0","creationDate":"2026-01-01T00:00:00Z","epcisBody":{"eventList":[%s]}}\n' "$1" "$2"
}
OBJ='"type":"ObjectEvent","eventTime":"2026-02-01T10:00:00+08:00","eventTimeZoneOffset":"+08:00","action":"OBSERVE"'
SGLN_D2='urn:epc:id:sgln:0614141.00001.0'
PGLN_M1='urn:epc:id:sgln:4012345.00001.0'
LG="urn:epc:class:lgtin:4012345.012345.L1"
malformed() { # DESC FILE MESSAGE
  local n0; n0=$(size_of "$D")
  expect 2 "$1" -- "$T" --data "$D" import --format epcis "$2"
  grep -qF "$3" "$W/err" && ok || bad "$1: $(cat "$W/err")"
  [ "$(size_of "$D")" = "$n0" ] && ok || bad "$1 stored entries"
}
printf '{"type":"EPCISDocument","epcisBody":{"eventList":[{"type":"ObjectEvent",' >"$W/trunc.json"
malformed "truncated JSON" "$W/trunc.json" "not a JSON EPCIS document"
echo 'hello' >"$W/text.json"
malformed "not JSON" "$W/text.json" "not a JSON EPCIS document"
doc EPCISMasterDataDocument "{$OBJ}" >"$W/type.json"
malformed "wrong type" "$W/type.json" '"type" is "EPCISMasterDataDocument"'
doc EPCISDocument '{"type":"ObjectEvent","action":"OBSERVE","epcList":[]}' >"$W/time.json"
malformed "no eventTime" "$W/time.json" "eventList[0]: rejected: no eventTime"
doc EPCISDocument "{$OBJ,\"bizStep\":\"receiving\",\"quantityList\":[{\"epcClass\":\"https://id.gs1.org/01/04012345123453/10/L1\",\"quantity\":1,\"uom\":\"KGM\"}]}" >"$W/check.json"
malformed "bad GTIN check digit" "$W/check.json" "GTIN 04012345123453 has a wrong check digit"
doc EPCISDocument "{$OBJ,\"bizStep\":\"receiving\",\"quantityList\":[{\"epcClass\":\"$LG\",\"quantity\":5}],\"sourceList\":[{\"type\":\"owning_party\",\"source\":\"$PGLN_M1\"}]}" >"$W/uom.json"
malformed "quantity without uom" "$W/uom.json" "quantity 5 of product $G_EPH without uom"
doc EPCISDocument "{$OBJ,\"bizStep\":\"receiving\",\"quantityList\":[{\"epcClass\":\"$LG\",\"quantity\":5,\"uom\":\"TNE\"}],\"sourceList\":[{\"type\":\"owning_party\",\"source\":\"$PGLN_M1\"}]}" >"$W/unit.json"
malformed "unknown unit" "$W/unit.json" 'unknown unit "TNE"'
doc EPCISDocument "{$OBJ,\"bizStep\":\"receiving\",\"quantityList\":[{\"epcClass\":\"$LG\",\"quantity\":5,\"uom\":\"LTR\"}],\"sourceList\":[{\"type\":\"owning_party\",\"source\":\"$PGLN_M1\"}],\"destinationList\":[{\"type\":\"owning_party\",\"destination\":\"$SGLN_D2\"}]}" >"$W/dim.json"
malformed "a volume of a mass substance" "$W/dim.json" 'eventList[0]: unit "L" is a volume unit but ephedrine is measured by mass'
doc EPCISDocument "{$OBJ,\"bizStep\":\"retail_selling\",\"quantityList\":[{\"epcClass\":\"$LG\",\"quantity\":5,\"uom\":\"KGM\"}]}" >"$W/step.json"
malformed "an unmapped bizStep" "$W/step.json" "bizStep retail_selling has no meaning"

# 5. Shipping then receiving in one EPCISQueryDocument, citing a permit
# (the demo's purchase licence of D2 from M1) through bizTransactionList.
SHIP="{$OBJ,\"eventID\":\"urn:uuid:e2e-ship-1\",\"bizStep\":\"shipping\",\"quantityList\":[{\"epcClass\":\"$LG\",\"quantity\":5,\"uom\":\"KGM\"}],\"sourceList\":[{\"type\":\"owning_party\",\"source\":\"$PGLN_M1\"}],\"destinationList\":[{\"type\":\"owning_party\",\"destination\":\"$SGLN_D2\"}],\"bizTransactionList\":[{\"type\":\"po\",\"bizTransaction\":\"urn:epcglobal:cbv:bt:0614141000012:CN-PL-2026-0001\"}]}"
RECV="{$OBJ,\"bizStep\":\"receiving\",\"quantityList\":[{\"epcClass\":\"$LG\",\"quantity\":5,\"uom\":\"KGM\"}],\"sourceList\":[{\"type\":\"owning_party\",\"source\":\"$PGLN_M1\"}],\"destinationList\":[{\"type\":\"owning_party\",\"destination\":\"$SGLN_D2\"}]}"
printf '{"type":"EPCISQueryDocument","schemaVersion":"2.0","creationDate":"2026-02-01T00:00:00Z","epcisBody":{"queryResults":{"queryName":"SimpleEventQuery","resultsBody":{"eventList":[%s,%s]}}}}\n' "$SHIP" "$RECV" >"$W/query.json"
outcome "query document" "$W/query.json" 0 2 0 0
"$T" --data "$D" export --party $M1 | grep -q "\"type\":\"sale\",\"id\":\"urn:uuid:e2e-ship-1\",\"party\":\"$M1\",.*\"to\":\"$D2\",\"substance\":\"ephedrine\",\"lot\":\"L1\",\"qty\":\"5\",\"unit\":\"kg\",\"permit\":\"CN-PL-2026-0001\"" && ok ||
  bad "sale: $("$T" --data "$D" export --party $M1 | grep e2e-ship)"
"$T" --data "$D" export --party $D2 | grep -q "\"type\":\"receipt\",.*\"ref\":\"urn:uuid:e2e-ship-1\"" && ok || bad "the receipt does not refer to the sale"

# 6. Dispensing: the prescription from an extension; without one, rejected.
RX='"example:rx":{"id":"RX-EPCIS-1","prescriber":"DR-1","patient":"310101195001011234","written":"2026-02-01","days_supply":3,"form":"injection"}'
DISP="{$OBJ,\"bizStep\":\"dispensing\",\"epcList\":[\"urn:epc:id:sgtin:9520001.012346.7\"],\"bizLocation\":{\"id\":\"urn:epc:id:pgln:9520999.99999\"}"
doc EPCISDocument "$DISP}" >"$W/norx.json"
malformed "dispensing without a prescription" "$W/norx.json" "a dispensing event needs the prescription"
doc EPCISDocument "$DISP,$RX}" >"$W/rx.json"
outcome "dispensing" "$W/rx.json" 0 1 0 0
"$T" --data "$D" export --party $H5 | grep '"type":"dispense"' | grep -q '"qty":"10","unit":"unit","rx":{"id":"RX-EPCIS-1","prescriber":"DR-1","patient":"hmac:[0-9a-f]\{64\}",.*"days_supply":3,"form":"injection"},"gtin":"'"$G_PD"'","packs":1' && ok ||
  bad "dispense: $("$T" --data "$D" export --party $H5 | grep dispense | tail -1)"
expect 0 "verify --deep at the end" -- "$T" --data "$D" verify --deep

checks_done epcis
