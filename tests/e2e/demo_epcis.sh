#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo data set as a GS1 EPCIS 2.0 document (examples/epcis):
#   demo_epcis.sh TRACECTL DEMO.jsonl MASTER.jsonl DOC.jsonld VECTORS-DIR
# MASTER is the demo's parties with GLNs (and the SGLN of a site), its
# permits and a product per substance moved.  The demo's movements are
# recorded by product (GTIN; morphine counted in tablets, one tablet an
# item) in a ledger with that master data; its `export --format epcis`
# must be DOC as committed (but the creationDate and the patients'
# pseudonyms, which are the writing ledger's: REGEN=1 writes it anew); DOC validates against GS1's EPCIS 2.0 JSON schema; imported
# into a fresh ledger with the master data it gives the same balances,
# traces and movements.  EPCIS carries produce, sale, receipt, dispense
# and destroy: the demo's import, transfer, consume, loss, stocktake,
# export and correction stay out of the document (counted by export).
set -u
T=$1 DEMO=$2 MASTER=$3 DOC=$4 V=$5
W=$(mktemp -d /tmp/trace-e2e-XXXXXX)
trap 'rm -rf "$W"' EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
X=$W/x Y=$W/y

# The demo's movements by product, as EPCIS carries them.
python3 - "$DEMO" "$MASTER" >"$W/moves.jsonl" <<'PY'
import json, sys
gtins = {}
for line in open(sys.argv[2]):
    e = json.loads(line)
    if e["type"] == "product":
        gtins[e["substance"]] = (e["gtin"], e["content"]["unit"])
alias = {"57-27-2": "morphine"}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] not in ("produce", "sale", "receipt", "dispense", "destroy"):
        continue
    sub = alias.get(e["substance"], e["substance"])
    gtin, unit = gtins[sub]
    e["gtin"] = gtin
    e["substance"] = sub
    if unit == "unit":  # one tablet an item: counted in packs
        e["packs"] = int(e.pop("qty"))
        del e["unit"]
    print(json.dumps(e, ensure_ascii=False, separators=(",", ":")))
PY
[ "$(wc -l <"$W/moves.jsonl")" = 13 ] && ok || bad "the demo has $(wc -l <"$W/moves.jsonl") movements EPCIS carries, not 13"
for d in "$X" "$Y"; do
  expect 0 "init $d" -- "$T" --data "$d" init
  expect 0 "master data into $d" -- "$T" --data "$d" import --provision-keys "$MASTER"
done
expect 0 "the demo's movements by product" -- "$T" --data "$X" import --provision-keys "$W/moves.jsonl"

# 1. The committed document is the export of those movements.
expect 0 "export --format epcis" -- "$T" --data "$X" export --format epcis
grep -q "EPCIS: 13 events written, 0 movements left out" "$W/err" && ok || bad "export: $(cat "$W/err")"
# (and but the patients' pseudonyms: each ledger has its own secret)
nodate() { sed 's/"creationDate":"[^"]*"//; s/"patient":"hmac:[0-9a-f]*"/"patient":"hmac:"/g' "$1"; }
if [ "${REGEN:-0}" = 1 ]; then
  cp "$W/out" "$DOC" && echo "demo_epcis: wrote $DOC"
fi
[ "$(nodate "$W/out")" = "$(nodate "$DOC")" ] && ok ||
  { bad "$DOC is not the export of the demo (REGEN=1 writes it anew)"; diff <(nodate "$W/out" | tr ',' '\n') <(nodate "$DOC" | tr ',' '\n') | head -8; }

# 2. Valid against GS1's EPCIS 2.0 JSON schema.
if python3 -c 'import jsonschema' 2>/dev/null; then
  python3 - "$V/EPCIS-JSON-Schema.json" "$DOC" <<'PY' && ok || bad "$DOC does not validate against the EPCIS 2.0 schema"
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
errs = list(v.iter_errors(doc))
for e in errs[:5]:
    print("  schema:", list(e.absolute_path), e.message[:300])
sys.exit(1 if errs else 0)
PY
else
  echo "demo_epcis: SKIPPED schema validation: python3 module jsonschema missing (apt-get install python3-jsonschema, see scripts/deps.sh)"
fi

# 3. Imported into a fresh ledger: the same movements, balances, traces.
expect 0 "import the document" -- "$T" --data "$Y" import --provision-keys --format epcis "$DOC"
grep -q "EPCIS: 13 events: 13 imported (13 ledger events), 0 skipped, 0 rejected" "$W/out" && ok || bad "import: $(cat "$W/out" "$W/err")"
norm() { "$T" --data "$1" export | grep -E '"type":"(produce|sale|receipt|destroy|dispense)"' | sed 's/"patient":"hmac:[0-9a-f]*"/"patient":"hmac:"/' | sort; }
[ "$(norm "$X")" = "$(norm "$Y")" ] && ok || { bad "the movements differ"; diff <(norm "$X") <(norm "$Y") | head -6; }
for p in 91310000MA1K000001 91320000MA1K000002 91330000MA1K000003 12310000MB0000005 91310000MA1K000006; do
  a=$("$T" --data "$X" --json balance $p) b=$("$T" --data "$Y" --json balance $p)
  [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "balance of $p: $a vs $b"
done
"$T" --data "$Y" --json balance 91310000MA1K000001 | grep '"lot":"EPH-2601-A"' | grep -q '"site":"plant-1"' && ok ||
  bad "the produce at plant-1's SGLN lost its site: $("$T" --data "$Y" --json balance 91310000MA1K000001)"
for t in "EPH-2601-A --forward" "MOR-2601 --forward" "MOR-2601 --backward"; do
  # shellcheck disable=SC2086
  a=$("$T" --data "$X" --json trace $t) b=$("$T" --data "$Y" --json trace $t)
  [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "trace $t: $a vs $b"
done
checks_done demo_epcis
