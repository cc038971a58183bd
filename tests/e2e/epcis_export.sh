#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of GS1 EPCIS 2.0 export (SPEC 11), with real processes:
#   epcis_export.sh TRACECTL DEMO.jsonl VECTORS-DIR TRACED
# A ledger with GLN parties and products records movements by GTIN
# (produce, produce with inputs, sale citing permits, receipt, destroy,
# dispense with a prescription); export --format epcis gives a document
# that validates against GS1's EPCIS 2.0 JSON schema (VECTORS-DIR, with
# python3's jsonschema; that step is skipped, saying so, without it);
# imported into a fresh ledger with the same parties and products it
# gives the same balances, traces and events; a second import adds
# nothing; --party and --from/--to filter; what EPCIS cannot carry is
# counted on stderr and left out.  Parties' sites carry SGLNs (checked
# as GLNs) that locate their movements both ways.  Through traced (--connect) export and
# import give what they give on the folder: the same document, the same
# events; rejected documents and refused events are named by their
# eventList index and store nothing.
set -u
T=$1 DEMO=$2 V=$3 TD=$4
W=$(mktemp -d /tmp/trace-e2e-XXXXXX)
DPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; rm -rf "$W"' EXIT
A=$W/a B=$W/b
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
size_of() { "$T" --data "$1" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
gs1() { # gtin|gln COMPANY-PREFIX REF: the key with its check digit
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
C4=91310000MA1K000004 H5=12310000MB0000005 N6=91310000MA1K000006
G_EPH=$(gs1 gtin 4012345 012345) # 1 kg packs
G_MOR=$(gs1 gtin 9520001 012346) # 10 tablets a pack

# The master data both ledgers share: the demo's parties and permits,
# GLNs for four parties (not N6), two products.
party() { # ID SUBJECT NAME KIND LICENCES GLN
  printf '{"type":"party","id":"%s","party":"'$REG'","at":"2026-01-05T12:00:00+08:00","subject":"%s","name":"%s","kind":"%s","region":"CN-31","licenses":[%s],"gln":"%s"}\n' "$@"
}
prod() { # ID GTIN SUBSTANCE QTY UNIT PER-PACK
  printf '{"type":"product","id":"%s","party":"%s","at":"2026-01-05T12:00:00+08:00","gtin":"%s","substance":"%s","content":{"qty":"%s","unit":"%s"},"units_per_pack":%s,"name":"%s %s","form":"tablet"}\n' \
    "$1" $REG "$2" "$3" "$4" "$5" "$6" "$3" "$1"
}
{
  grep -E '"type":"(party|permit)"' "$DEMO"
  party gln-1 $M1 "Huadong Fine Chemicals Co." manufacturer '"CN-PC-1","CN-PC-2","CN-PC-3"' "$(gs1 gln 4012345 00001)"
  party gln-2 $D2 "Jiangsu Reagent Distribution Ltd." distributor '"CN-PC-1","CN-PC-2","CN-PC-3"' "$(gs1 gln 0614141 00001)"
  party gln-3 $U3 "Zhejiang Pharma Manufacturing Co." user '"CN-PC-1","CN-PC-2","CN-NARC"' "$(gs1 gln 0614141 07346)"
  party gln-5 $H5 "Shanghai Sixth People's Hospital Pharmacy" hospital '"CN-NARC","CN-PSY-1","CN-PSY-2"' "$(gs1 gln 9520999 99999)"
  prod p-eph "$G_EPH" ephedrine 1 kg 1
  prod p-mor "$G_MOR" morphine 1 unit 10
} >"$W/master.jsonl"
for d in "$A" "$B"; do
  expect 0 "init $d" -- "$T" --data "$d" init
  expect 0 "master data into $d" -- "$T" --data "$d" import --provision-keys "$W/master.jsonl"
done

# Movements by GTIN (packs, or a substance quantity) in ledger A.
RX='{"id":"RX-EXP-1","prescriber":"DR-1","patient":"310101195001011234","written":"2026-02-05","days_supply":3,"form":"injection"}'
mv() { printf '{"type":"%s","id":"%s","party":"%s","at":"%s",%s}\n' "$@"; }
{
  mv produce x-prd-1 $M1 2026-02-01T08:00:00+08:00 "\"lot\":\"EPH-X\",\"gtin\":\"$G_EPH\",\"packs\":50"
  mv produce "x prd/2" $M1 2026-02-01T12:00:00Z "\"lot\":\"EPH-Y\",\"gtin\":\"$G_EPH\",\"packs\":4,\"inputs\":[{\"lot\":\"EPH-X\",\"substance\":\"ephedrine\",\"qty\":\"5\",\"unit\":\"kg\"}]"
  mv sale x-sal-1 $M1 2026-02-02T09:30:00+08:00 "\"to\":\"$D2\",\"lot\":\"EPH-X\",\"gtin\":\"$G_EPH\",\"packs\":20,\"permit\":\"CN-PL-2026-0001\",\"transport_permit\":\"CN-TL-2026-0001\",\"carrier\":\"$C4\""
  mv receipt x-rcp-1 $D2 2026-02-03T16:00:00+08:00 "\"from\":\"$M1\",\"ref\":\"x-sal-1\",\"lot\":\"EPH-X\",\"gtin\":\"$G_EPH\",\"qty\":\"19.95\",\"unit\":\"kg\""
  mv destroy x-dst-1 $D2 2026-02-04T10:00:00+08:00 "\"lot\":\"EPH-X\",\"gtin\":\"$G_EPH\",\"qty\":\"0.5\",\"unit\":\"kg\",\"witness\":\"$REG\",\"method\":\"incineration\""
  mv produce x-prd-3 $U3 2026-02-01T09:00:00+08:00 "\"lot\":\"MOR-X\",\"gtin\":\"$G_MOR\",\"packs\":100"
  mv sale x-sal-2 $U3 2026-02-04T10:00:00+08:00 "\"to\":\"$H5\",\"lot\":\"MOR-X\",\"gtin\":\"$G_MOR\",\"packs\":10"
  mv receipt x-rcp-2 $H5 2026-02-04T15:00:00+08:00 "\"from\":\"$U3\",\"ref\":\"x-sal-2\",\"lot\":\"MOR-X\",\"gtin\":\"$G_MOR\",\"packs\":10"
  mv dispense x-dsp-1 $H5 2026-02-05T10:12:00+08:00 "\"lot\":\"MOR-X\",\"gtin\":\"$G_MOR\",\"packs\":1,\"rx\":$RX"
} >"$W/moves.jsonl"
expect 0 "movements by GTIN" -- "$T" --data "$A" import --provision-keys "$W/moves.jsonl"

# 1. The export: a document of the nine movements.
expect 0 "export --format epcis" -- "$T" --data "$A" export --format epcis
cp "$W/out" "$W/doc.json"
grep -q "tracectl: EPCIS: 9 events written, 0 movements left out" "$W/err" && ok || bad "summary: $(cat "$W/err")"
python3 - "$W/doc.json" <<'PY' && ok || bad "document content"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["epcisBody"]["eventList"]
assert d["type"] == "EPCISDocument" and len(ev) == 9, len(ev)
steps = [e.get("bizStep") for e in ev]
assert steps == ["commissioning", "transforming", "shipping", "receiving", "destroying",
                 "commissioning", "shipping", "receiving", "dispensing"], steps
assert ev[1]["type"] == "TransformationEvent", ev[1]
assert ev[0]["quantityList"][0]["uom"] == "EA" and ev[0]["quantityList"][0]["quantity"] == 50
assert ev[0]["quantityList"][0]["epcClass"] == "urn:epc:class:lgtin:4012345.012345.EPH-X", ev[0]
assert ev[0]["eventID"] == "urn:x-trace:id:x-prd-1" and ev[0]["eventTimeZoneOffset"] == "+08:00"
assert ev[1]["eventID"] == "urn:x-trace:id:x%20prd%2F2" and ev[1]["eventTimeZoneOffset"] == "+00:00"
assert ev[3]["quantityList"][0]["quantity"] == 19.95 and ev[3]["quantityList"][0]["uom"] == "KGM"
assert ev[2]["sourceList"][0]["source"] == "urn:epc:id:pgln:4012345.00001"
assert ev[2]["destinationList"][0]["destination"] == "urn:epc:id:pgln:0614141.00001"
assert ev[2]["bizLocation"]["id"] == "urn:epc:id:sgln:4012345.00001.0"
assert any(b["bizTransaction"].endswith(":CN-PL-2026-0001") for b in ev[2]["bizTransactionList"])
assert ev[3]["bizTransactionList"] == [{"type": "upevt", "bizTransaction": "urn:x-trace:id:x-sal-1"}]
assert ev[8]["trace:rx"]["days_supply"] == 3 and ev[8]["trace:rx"]["patient"].startswith("hmac:")
assert ev[4]["trace:fields"]["method"] == "incineration"
# the schema's "uri" format is checked only with rfc3987 installed: here
import re
def uris(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k.startswith("trace:"):
                continue  # extensions: our own fields
            if k in ("eventID", "epcClass", "source", "destination", "id", "bizTransaction"):
                yield v
            yield from uris(v)
    elif isinstance(o, list):
        for v in o:
            yield from uris(v)
bad = [u for u in uris(ev) if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", u)]
assert not bad, bad
PY

# 2. Valid against GS1's EPCIS 2.0 JSON schema.
if python3 -c 'import jsonschema' 2>/dev/null; then
  python3 - "$V/EPCIS-JSON-Schema.json" "$W/doc.json" <<'PY' && ok || bad "the export does not validate against the EPCIS 2.0 schema"
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
errs = list(v.iter_errors(doc))
for e in errs[:5]:
    print("  schema:", list(e.absolute_path), e.message[:300])
sys.exit(1 if errs else 0)
PY
  echo '{"type":"EPCISDocument","epcisBody":{"eventList":[]}}' >"$W/invalid.json"
  python3 - "$V/EPCIS-JSON-Schema.json" "$W/invalid.json" <<'PY' && ok || bad "the schema check accepts an invalid document"
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if list(jsonschema.Draft7Validator(schema).iter_errors(doc)) else 1)
PY
else
  echo "epcis_export: SKIPPED schema validation: python3 module jsonschema missing (apt-get install python3-jsonschema, see scripts/deps.sh)"
fi

# 3. Into the fresh ledger B: the same events, balances and traces.
expect 0 "import the export" -- "$T" --data "$B" import --provision-keys --format epcis "$W/doc.json"
grep -q "events: 9 imported (9 ledger events), 0 skipped, 0 rejected" "$W/out" && ok || bad "import: $(cat "$W/out" "$W/err")"
norm() { # LEDGER: its movements as JSON lines, sorted
  "$T" --data "$1" export | grep -E '"type":"(produce|sale|receipt|destroy|dispense)"' | sort
}
[ "$(norm "$A")" = "$(norm "$B")" ] && ok || { bad "the movements differ"; diff <(norm "$A") <(norm "$B") | head -10; }
for p in $M1 $D2 $U3 $H5 $N6; do
  a=$("$T" --data "$A" --json balance $p) b=$("$T" --data "$B" --json balance $p)
  { [ -n "$a" ] || [ $p = $N6 ]; } && [ "$a" = "$b" ] && ok || bad "balance of $p: $a vs $b"
done
grep -q '"lot":"EPH-X"' <("$T" --data "$B" --json balance $D2) && ok || bad "no EPH-X at $D2"
for l in EPH-X EPH-Y MOR-X; do
  for dir in --forward --backward; do
    a=$("$T" --data "$A" --json trace $l $dir) b=$("$T" --data "$B" --json trace $l $dir)
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "trace $l $dir: $a vs $b"
  done
done
expect 0 "verify --deep" -- "$T" --data "$B" verify --deep

# 4. A second import adds nothing.
n0=$(size_of "$B")
expect 0 "import again" -- "$T" --data "$B" import --provision-keys --format epcis "$W/doc.json"
grep -q "imported 0 events (9 already present" "$W/out" && ok || bad "re-import: $(cat "$W/out")"
[ "$(size_of "$B")" = "$n0" ] && ok || bad "a second import stored entries"

# 5. Filters: --party, --from/--to.
ids() { python3 -c 'import json,sys; print(" ".join(e["eventID"].rsplit(":",1)[1] for e in json.load(sys.stdin)["epcisBody"]["eventList"]))'; }
got=$("$T" --data "$A" export --format epcis --party $D2 2>/dev/null | ids)
[ "$got" = "x-rcp-1 x-dst-1" ] && ok || bad "--party $D2: $got"
got=$("$T" --data "$A" export --format epcis --from 2026-02-04 --to 2026-02-04T23:59:59+08:00 2>/dev/null | ids)
[ "$got" = "x-dst-1 x-sal-2 x-rcp-2" ] && ok || bad "--from/--to: $got"
got=$("$T" --data "$A" export --format epcis --party $N6 2>"$W/err" | ids)
[ -z "$got" ] && grep -q "0 events written" "$W/err" && ok || bad "--party $N6: $got $(cat "$W/err")"
"$T" --data "$A" export --format epcis --party $N6 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)' && ok || bad "an empty export is no JSON"
expect 1 "an unknown format" -- "$T" --data "$A" export --format xml

# 6. What EPCIS cannot carry is counted and left out: a movement by
# substance, one of a party without a GLN (N6), another type (loss).
{
  mv produce x-prd-9 $M1 2026-02-06T08:00:00+08:00 '"substance":"ephedrine","lot":"EPH-Z","qty":"3","unit":"kg"'
  mv sale x-sal-9 $U3 2026-02-06T09:00:00+08:00 "\"to\":\"$N6\",\"lot\":\"MOR-X\",\"gtin\":\"$G_MOR\",\"packs\":5"
  mv loss x-los-9 $M1 2026-02-06T10:00:00+08:00 "\"substance\":\"ephedrine\",\"lot\":\"EPH-Y\",\"qty\":\"1\",\"unit\":\"kg\",\"reason\":\"damage\""
} >"$W/more.jsonl"
expect 0 "movements EPCIS cannot carry" -- "$T" --data "$A" import --provision-keys "$W/more.jsonl"
expect 0 "export with left-outs" -- "$T" --data "$A" export --format epcis --from 2026-02-06
grep -q "0 events written, 3 movements left out (1 of types EPCIS does not carry here, 1 without a product, 1 of a party without a GLN, 0 not expressible)" "$W/err" && ok ||
  bad "left-out summary: $(cat "$W/err")"

# 6b. Sites with SGLNs: a party's `sites` [{site, sgln}] (check digits
# as for GLNs, each site and SGLN once); movements at a site are located
# at its SGLN on export, and a location naming a site's SGLN maps to the
# party and the site on import.
SG1=$(gs1 gln 4012345 00002) SG2=$(gs1 gln 4012345 00003)
siteparty() { # ID SITES-JSON
  printf '{"type":"party","id":"%s","party":"'$REG'","at":"2026-02-05T07:00:00+08:00","subject":"%s","name":"Huadong Fine Chemicals Co.","kind":"manufacturer","region":"CN-31","licenses":["CN-PC-1","CN-PC-2","CN-PC-3"],"gln":"%s","sites":%s}\n' \
    "$1" $M1 "$(gs1 gln 4012345 00001)" "$2"
}
BADSG=${SG1%?}$(( (${SG1: -1} + 1) % 10 ))
siteparty s-bad "[{\"site\":\"plant-1\",\"sgln\":\"$BADSG\"}]" >"$W/sbad1.jsonl"
siteparty s-bad "[{\"site\":\"plant-1\",\"sgln\":\"$SG1\"},{\"site\":\"plant-1\",\"sgln\":\"$SG2\"}]" >"$W/sbad2.jsonl"
siteparty s-bad "[{\"site\":\"plant-1\",\"sgln\":\"$SG1\"},{\"site\":\"store\",\"sgln\":\"$SG1\"}]" >"$W/sbad3.jsonl"
n0=$(size_of "$A")
expect 2 "a site's SGLN with a bad check digit" -- "$T" --data "$A" import "$W/sbad1.jsonl"
grep -q 'field "sites\[0\].sgln": "'"$BADSG"'" is not 13 digits with a valid GS1 check digit' "$W/err" && ok || bad "bad SGLN: $(cat "$W/err")"
expect 2 "a site listed twice" -- "$T" --data "$A" import "$W/sbad2.jsonl"
grep -q 'field "sites": site "plant-1" is listed twice' "$W/err" && ok || bad "site twice: $(cat "$W/err")"
expect 2 "one SGLN for two sites" -- "$T" --data "$A" import "$W/sbad3.jsonl"
grep -q "field \"sites\": SGLN $SG1 names both \"plant-1\" and \"store\"" "$W/err" && ok || bad "SGLN twice: $(cat "$W/err")"
[ "$(size_of "$A")" = "$n0" ] && ok || bad "a refused party registration stored entries"
siteparty s-1 "[{\"site\":\"plant-1\",\"sgln\":\"$SG1\"},{\"site\":\"store\",\"sgln\":\"$SG2\"}]" >"$W/sites.jsonl"
for d in "$A" "$B"; do
  expect 0 "sites of $M1 in $d" -- "$T" --data "$d" import "$W/sites.jsonl"
done
"$T" --data "$A" --json parties | grep -q "\"sites\":\[{\"site\":\"plant-1\",\"sgln\":\"$SG1\"},{\"site\":\"store\",\"sgln\":\"$SG2\"}\]" && ok ||
  bad "parties --json: no sites: $("$T" --data "$A" --json parties | grep $M1)"
{
  mv produce x-prd-s1 $M1 2026-02-05T08:00:00+08:00 "\"lot\":\"EPH-S\",\"gtin\":\"$G_EPH\",\"packs\":5,\"site\":\"plant-1\""
  mv destroy x-dst-s1 $M1 2026-02-05T09:00:00+08:00 "\"lot\":\"EPH-S\",\"gtin\":\"$G_EPH\",\"packs\":1,\"site\":\"plant-1\",\"witness\":\"$REG\",\"method\":\"incineration\""
} >"$W/site-moves.jsonl"
expect 0 "movements at a site" -- "$T" --data "$A" import --provision-keys "$W/site-moves.jsonl"
expect 0 "export of the site's movements" -- "$T" --data "$A" export --format epcis --party $M1 --from 2026-02-05 --to 2026-02-05T23:59:59+08:00
cp "$W/out" "$W/site-doc.json"
python3 - "$W/site-doc.json" <<'PY' && ok || bad "site export: $(cat "$W/site-doc.json")"
import json, sys
ev = json.load(open(sys.argv[1]))["epcisBody"]["eventList"]
assert [e["bizLocation"]["id"] for e in ev] == ["urn:epc:id:sgln:4012345.00002.0"] * 2, ev
PY
expect 0 "import of the site's movements" -- "$T" --data "$B" import --provision-keys --format epcis "$W/site-doc.json"
a=$("$T" --data "$A" --json balance $M1 | grep EPH-S) b=$("$T" --data "$B" --json balance $M1 | grep EPH-S)
[ -n "$a" ] && [ "$a" = "$b" ] && echo "$b" | grep -q '"site":"plant-1"' && ok || bad "site balance: $a vs $b"
# someone else's document: commissioning at the store's SGLN, no GLN of
# the party anywhere
cat >"$W/store.json" <<EOF
{"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2026-02-05T00:00:00Z","epcisBody":{"eventList":[
{"type":"ObjectEvent","eventTime":"2026-02-05T10:00:00+08:00","eventTimeZoneOffset":"+08:00","eventID":"urn:uuid:5f0c2d9a-1111-4222-8333-944455556666","action":"ADD","bizStep":"urn:epcglobal:cbv:bizstep:commissioning","bizLocation":{"id":"urn:epc:id:sgln:4012345.00003.0"},"quantityList":[{"epcClass":"urn:epc:class:lgtin:4012345.012345.EPH-T","quantity":2,"uom":"EA"}]}]}}
EOF
expect 0 "commissioning at a site's SGLN" -- "$T" --data "$B" import --provision-keys --format epcis "$W/store.json"
"$T" --data "$B" --json balance $M1 | grep EPH-T | grep -q '"site":"store"' && ok || bad "store balance: $("$T" --data "$B" --json balance $M1)"

# 7. Through traced.  Export: the folder's document, line for line (but
# its creationDate), whole and filtered.
IPC=ipc://$W/traced.ipc
start() { # LEDGER
  "$TD" --data "$1" --listen "$IPC" 2>>"$W/traced.log" &
  DPID=$!
  for _ in $(seq 100); do
    "$T" --connect "$IPC" --keys "$1/keys" head >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  bad "traced did not start"; cat "$W/traced.log"; exit 1
}
stop() { kill -TERM "$DPID"; wait "$DPID"; DPID=; }
nodate() { sed 's/"creationDate":"[^"]*"//'; }
C() { "$T" --connect "$IPC" --keys "$1" "${@:2}"; }
start "$A"
for f in "" "--party $D2" "--from 2026-02-04 --to 2026-02-04T23:59:59+08:00" "--from 2026-02-06"; do
  # shellcheck disable=SC2086
  "$T" --data "$A" export --format epcis $f >"$W/emb.json" 2>"$W/emb.err"
  # shellcheck disable=SC2086
  C "$A/keys" export --format epcis $f >"$W/rem.json" 2>"$W/rem.err" && ok || bad "export through traced ($f): $(cat "$W/rem.err")"
  [ "$(nodate <"$W/emb.json")" = "$(nodate <"$W/rem.json")" ] && ok ||
    { bad "export through traced ($f) differs"; diff <(nodate <"$W/emb.json" | tr ',' '\n') <(nodate <"$W/rem.json" | tr ',' '\n') | head -6; }
  cmp -s "$W/emb.err" "$W/rem.err" && ok || bad "export summary through traced ($f): $(cat "$W/rem.err") vs $(cat "$W/emb.err")"
done
stop

# Import: into ledger R through traced and ledger E on the folder, the
# same document gives the same events and balances; again, nothing.
R=$W/r E=$W/e
for d in "$R" "$E"; do
  expect 0 "init $d" -- "$T" --data "$d" init
  expect 0 "master data into $d" -- "$T" --data "$d" import --provision-keys "$W/master.jsonl"
done
start "$R"
expect 0 "import --format epcis through traced" -- C "$R/keys" import --provision-keys --format epcis "$W/doc.json"
grep -q "EPCIS: 9 events: 9 imported (9 ledger events), 0 skipped, 0 rejected" "$W/out" && ok || bad "through traced: $(cat "$W/out" "$W/err")"
grep -q "imported 9 events (0 already present" "$W/out" && ok || bad "through traced: $(cat "$W/out")"
expect 0 "import --format epcis on the folder" -- "$T" --data "$E" import --provision-keys --format epcis "$W/doc.json"
expect 0 "import again through traced" -- C "$R/keys" import --provision-keys --format epcis "$W/doc.json"
grep -q "imported 0 events (9 already present" "$W/out" && ok || bad "re-import through traced: $(cat "$W/out")"
# a document with an event that cannot be mapped: rejected, by index
python3 - "$W/doc.json" "$W/bad.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["epcisBody"]["eventList"]
s = [e for e in ev if e.get("bizStep") == "shipping"][0]
s = dict(s, eventID="urn:x-trace:id:x-sal-bad")
del s["destinationList"]
d["epcisBody"]["eventList"] = [ev[0], s]
json.dump(d, open(sys.argv[2], "w"))
PY
n0=$(C "$R/keys" --json head | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
expect 2 "a rejected document through traced" -- C "$R/keys" import --format epcis "$W/bad.json"
grep -q "eventList\[1\]: rejected: a shipping event with no destination party" "$W/err" && grep -q "nothing was imported" "$W/err" && ok ||
  bad "rejected through traced: $(cat "$W/err")"
# a mapped event the ledger refuses (a prescription without its
# prescriber): the daemon's refusal names the EPCIS event
python3 - "$W/doc.json" "$W/refused.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["epcisBody"]["eventList"]
s = [e for e in ev if e.get("bizStep") == "dispensing"][0]
s = dict(s, eventID="urn:x-trace:id:x-dsp-bad", **{"trace:rx": dict(s["trace:rx"], id="RX-EXP-2")})
del s["trace:rx"]["prescriber"]
d["epcisBody"]["eventList"] = [ev[0], s]
json.dump(d, open(sys.argv[2], "w"))
PY
expect 2 "a refused event through traced" -- C "$R/keys" import --format epcis "$W/refused.json"
grep -q "eventList\[1\]: .*prescriber" "$W/err" && grep -q "nothing was imported" "$W/err" && ok || bad "refused through traced: $(cat "$W/err")"
n1=$(C "$R/keys" --json head | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
[ "$n0" = "$n1" ] && ok || bad "a refused document stored entries ($n0 -> $n1)"
# sites through traced: the daemon's parties give the SGLNs
expect 0 "sites through traced" -- C "$R/keys" import "$W/sites.jsonl"
expect 0 "commissioning at a site's SGLN through traced" -- C "$R/keys" import --provision-keys --format epcis "$W/store.json"
C "$R/keys" --json balance $M1 | grep EPH-T | grep -q '"site":"store"' && ok || bad "store balance through traced: $(C "$R/keys" --json balance $M1)"
stop
[ "$(norm "$R" | grep -v EPH-T)" = "$(norm "$E")" ] && [ "$(norm "$R" | wc -l)" = 10 ] && ok || { bad "through traced: the movements differ"; diff <(norm "$R") <(norm "$E") | head -6; }
for p in $M1 $D2 $U3 $H5; do
  a=$("$T" --data "$R" --json balance $p | grep -v EPH-T) b=$("$T" --data "$E" --json balance $p)
  [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "balance of $p through traced: $a vs $b"
done

checks_done epcis_export
