#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The special register (专用账册) as drug inspectors read it, end to end:
#   register.sh TRACECTL DEMO.jsonl
# On the demo ledger a hospital pharmacy records dispensings (with and
# without handler and checker) and a receipt carrying the lot's spec;
# its register for a month has the opening balance as the first row, one
# row per entry with the running balance after it (worked out by hand
# below), no row for a day without movement, the period's totals, zh
# headings, CSV with a BOM, a header and per-entry columns, and a
# printable HTML page with every value escaped.
set -u
T=$1 DEMO=$2
W=$(mktemp -d /tmp/trace-register-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
PH=12310000MB0000005   # the hospital pharmacy of the demo
DIST=91310000MA1K000006 # its supplier of morphine (lot MOR-2601)
NP=91310000MA1K000099  # a pharmacy registered here, with a hostile name
R() { "$T" --data "$D" "$@"; }
# has FILE LINE: FILE holds exactly that line
has() { grep -qxF -- "$2" "$1"; }

expect 0 "init" -- R init
expect 0 "import demo" -- R import --provision-keys "$DEMO"

# dispense and receipt take handler and checker; --help says so
expect 0 "record dispense --help" -- "$T" record dispense --help
grep -q "^  --handler  *staff who handled it (经手人)" "$W/out" && ok || bad "record dispense --help lacks --handler: $(cat "$W/out")"
grep -q "^  --checker  *staff who checked it (复核人)" "$W/out" && ok || bad "record dispense --help lacks --checker"
grep -q "^  --spec " "$W/out" && ok || bad "record dispense --help lacks --spec"
expect 0 "record receipt --help" -- "$T" record receipt --help
grep -q "^  --handler " "$W/out" && ok || bad "record receipt --help lacks --handler"
expect 0 "register --help" -- "$T" register --help
grep -q -- "--html" "$W/out" && grep -q "spec" "$W/out" && grep -q "经手人" "$W/out" && ok ||
  bad "register --help does not explain --html, spec and handler: $(cat "$W/out")"

# The month of February 2026 at the hospital.  From the demo: 600 units
# of MOR-2601 received on 25 January; dsp-0001 21 units on 1 February,
# dsp-0002 1 unit on 2 February, a stocktake on 28 February (no
# movement) and a destruction of 2 units on 1 March.
rx() { # rx ID AT QTY [FIELDS...]
  local id=$1 at=$2 qty=$3; shift 3
  R --as $PH record dispense --id "$id" --at "$at" --substance morphine --lot MOR-2601 \
    --qty "$qty" --unit unit --rx-id "$id" --prescriber DR-9 --patient 110101199001011111 \
    --written "${at%%T*}" --days 3 --form oral "$@"
}
expect 0 "dispense with handler and checker" -- rx RX-REG-1 2026-02-01T11:00:00+08:00 10 --handler 张药师 --checker 李药师
expect 0 "dispense without handler" -- rx RX-REG-2 2026-02-03T09:30:00+08:00 4
expect 0 "a sale to the hospital" -- R --as $DIST record sale --id sal-reg-1 --at 2026-02-10T09:00:00+08:00 \
  --to $PH --substance morphine --lot MOR-2601 --qty 100 --unit unit
expect 0 "its receipt with handler, checker and spec" -- R --as $PH record receipt --id rcp-reg-1 \
  --at 2026-02-10T14:00:00+08:00 --from $DIST --ref sal-reg-1 --substance morphine --lot MOR-2601 \
  --qty 100 --unit unit --handler 张药师 --checker 李药师 --spec "10mg×10片"
expect 0 "dispense with other staff" -- rx RX-REG-3 2026-02-15T16:00:00+08:00 2 --handler 王药师 --checker 赵药师

# Worked out by hand: opening 600; 02-01 -21 = 579, -10 = 569; 02-02 -1 =
# 568; 02-03 -4 = 564; 02-10 +100 = 664; 02-15 -2 = 662.  Totals:
# received 100, dispensed 21+10+1+4+2 = 38, destroyed 0, other out 0,
# closing 662.  The spec is the lot's, from the hospital's receipt.
expect 0 "register --month" -- R --lang en register $PH --substance morphine --month 2026-02
cp "$W/out" "$W/feb.txt"
grep -q "^Special register of narcotic and psychotropic drugs$" "$W/feb.txt" && ok || bad "no title: $(cat "$W/feb.txt")"
grep -q "^party  *$PH Shanghai Sixth People's Hospital Pharmacy$" "$W/feb.txt" && ok || bad "no party heading"
grep -q "^drug  *Morphine (morphine)$" "$W/feb.txt" && ok || bad "no drug name"
grep -q "^spec  *10mg×10片$" "$W/feb.txt" && ok || bad "no spec in the heading"
grep -q "^period  *2026-02-01 \.\. 2026-02-28$" "$W/feb.txt" && ok || bad "no period"
grep -q "^DATE  *KIND  *ENTRY .* BALANCE  *HANDLER  *CHECKER$" "$W/feb.txt" && ok || bad "no column heading"
# the rows: date, kind, entry, rx or counterparty, ..., in, out, balance,
# handler, checker (columns split on blanks)
awk '/^2026-/ {print $1, $2, $(NF-3), $(NF-2), $(NF-1), $NF}' "$W/feb.txt" >"$W/rows"
awk '/^2026-/ && $2 == "opening" {print $1, $NF}' "$W/feb.txt" >"$W/opening"
has "$W/opening" "2026-02-01 600" && ok || bad "opening balance is not the first row: $(cat "$W/feb.txt")"
[ "$(grep -m1 '^2026-' "$W/feb.txt" | awk '{print $2}')" = opening ] && ok || bad "the first row is not the opening balance"
has "$W/rows" "2026-02-01 dispense 21 579 - -" && ok || bad "dsp-0001 row: $(cat "$W/rows")"
has "$W/rows" "2026-02-01 dispense 10 569 张药师 李药师" && ok || bad "RX-REG-1 row: $(cat "$W/rows")"
has "$W/rows" "2026-02-02 dispense 1 568 - -" && ok || bad "dsp-0002 row: $(cat "$W/rows")"
has "$W/rows" "2026-02-03 dispense 4 564 - -" && ok || bad "a dispense without handler: $(cat "$W/rows")"
has "$W/rows" "2026-02-10 receipt 100 664 张药师 李药师" && ok || bad "receipt row: $(cat "$W/rows")"
has "$W/rows" "2026-02-15 dispense 2 662 王药师 赵药师" && ok || bad "RX-REG-3 row: $(cat "$W/rows")"
grep -q "^2026-02-01 .*RX-REG-1 .*MOR-2601 *10mg×10片 " "$W/feb.txt" && ok || bad "a row lacks its rx, lot or spec"
grep -q "^2026-02-10 .*rcp-reg-1 *$DIST .*MOR-2601 " "$W/feb.txt" && ok || bad "the receipt row lacks its supplier"
# no row for a day without movement: 7 rows (opening + 6 entries), on 5 days
[ "$(grep -c '^2026-' "$W/feb.txt")" = 7 ] && ok || bad "February has $(grep -c '^2026-' "$W/feb.txt") rows, wanted 7"
[ "$(grep '^2026-' "$W/feb.txt" | cut -c1-10 | sort -u | tr '\n' ' ')" = "2026-02-01 2026-02-02 2026-02-03 2026-02-10 2026-02-15 " ] && ok ||
  bad "rows on days without movement: $(grep '^2026-' "$W/feb.txt" | cut -c1-10 | sort -u | tr '\n' ' ')"
grep -q "^2026-02-28" "$W/feb.txt" && bad "the stocktake day has a row" || ok
has "$W/feb.txt" "period totals:  received 100  dispensed 38  destroyed 0  other out 0  closing 662 unit" && ok ||
  bad "totals: $(tail -1 "$W/feb.txt")"
[ "$(tail -1 "$W/feb.txt" | cut -c1-14)" = "period totals:" ] && ok || bad "the totals are not last"

# month filter: March has the destruction only, from 662
expect 0 "register March" -- R --lang en register $PH --substance morphine --month 2026-03
[ "$(grep -c '^2026-' "$W/out")" = 2 ] && ok || bad "March rows: $(cat "$W/out")"
grep -q "^2026-03-01 opening .* 662$" "$W/out" && ok || bad "March opens at 662: $(cat "$W/out")"
grep -q "^2026-03-01 destroy .* 2  *660  " "$W/out" && ok || bad "the destruction row: $(cat "$W/out")"
grep -q "^2026-02" "$W/out" && bad "February rows in March" || ok
has "$W/out" "period totals:  received 0  dispensed 0  destroyed 2  other out 0  closing 660 unit" && ok ||
  bad "March totals: $(tail -1 "$W/out")"
# --from/--to: the 2nd and 3rd, opening 569
expect 0 "register --from --to" -- R --lang en register $PH --substance morphine --from 2026-02-02 --to 2026-02-03
grep -q "^2026-02-02 opening .* 569$" "$W/out" && ok || bad "opening on the 2nd: $(cat "$W/out")"
[ "$(grep -c '^2026-' "$W/out")" = 3 ] && ok || bad "the 2nd and 3rd: $(cat "$W/out")"
has "$W/out" "period totals:  received 0  dispensed 5  destroyed 0  other out 0  closing 564 unit" && ok ||
  bad "totals of the 2nd and 3rd: $(tail -1 "$W/out")"

# Chinese headings
expect 0 "register --lang zh" -- R --lang zh register $PH --substance morphine --month 2026-02
grep -q "^麻醉药品和精神药品专用账册$" "$W/out" && ok || bad "no zh title: $(head -3 "$W/out")"
grep -q "^品名  *吗啡 (morphine)$" "$W/out" && ok || bad "no Chinese drug name"
grep -q "^规格  *10mg×10片$" "$W/out" && ok || bad "no zh spec heading"
grep -q "^期间  *2026-02-01 至 2026-02-28$" "$W/out" && ok || bad "no zh period"
grep -q "^日期  *摘要  *凭证号 .*结存  *经手人  *复核人$" "$W/out" && ok || bad "no zh column heading: $(sed -n 7p "$W/out")"
grep -q "^2026-02-01 期初结存 .* 600$" "$W/out" && ok || bad "no zh opening row"
grep -q "^2026-02-01 发药 .* 10  *569  张药师  *李药师$" "$W/out" && ok || bad "no zh entry row"
has "$W/out" "本期合计：  收入 100  发药 38  销毁 0  其他发出 0  期末结存 662 unit" && ok || bad "zh totals: $(tail -1 "$W/out")"
# a precursor's register has the precursor title
expect 0 "a precursor's register" -- R --lang zh register 91320000MA1K000002 --substance ephedrine --month 2026-01
grep -q "^易制毒化学品专用账册$" "$W/out" && ok || bad "no precursor title: $(head -2 "$W/out")"

# CSV: BOM, header, the per-entry columns, opening and total rows
expect 0 "register --csv" -- R --lang zh register $PH --substance morphine --month 2026-02 --csv
[ "$(head -c 3 "$W/out" | od -An -tx1 | tr -d ' ')" = efbbbf ] && ok || bad "the register CSV has no BOM"
[ "$(head -1 "$W/out" | tail -c +4)" = "date,party,substance,unit,kind,id,at,counterparty,rx,lot,received,dispensed,destroyed,other_out,balance,handler,checker,spec" ] && ok ||
  bad "CSV header: $(head -1 "$W/out")"
has "$W/out" "2026-02-01,$PH,morphine,unit,opening,,,,,,,,,,600,,,10mg×10片" && ok || bad "CSV opening row: $(cat "$W/out")"
has "$W/out" "2026-02-01,$PH,morphine,unit,dispense,RX-REG-1,2026-02-01T11:00:00+08:00,DR-9,RX-REG-1,MOR-2601,,10,,,569,张药师,李药师,10mg×10片" && ok ||
  bad "CSV dispense row: $(cat "$W/out")"
has "$W/out" "2026-02-03,$PH,morphine,unit,dispense,RX-REG-2,2026-02-03T09:30:00+08:00,DR-9,RX-REG-2,MOR-2601,,4,,,564,,,10mg×10片" && ok ||
  bad "CSV row without handler: $(cat "$W/out")"
has "$W/out" "2026-02-10,$PH,morphine,unit,receipt,rcp-reg-1,2026-02-10T14:00:00+08:00,$DIST,,MOR-2601,100,,,,664,张药师,李药师,10mg×10片" && ok ||
  bad "CSV receipt row: $(cat "$W/out")"
has "$W/out" "2026-02-28,$PH,morphine,unit,total,,,,,,100,38,0,0,662,,," && ok || bad "CSV total row: $(tail -1 "$W/out")"
[ "$(wc -l <"$W/out")" = 9 ] && ok || bad "CSV has $(wc -l <"$W/out") lines, wanted header + opening + 6 entries + total"
python3 - "$W/out" <<'PY' && ok || bad "CSV rows do not all have the header's columns"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig")))
assert all(len(r) == len(rows[0]) == 18 for r in rows), [len(r) for r in rows]
PY

# --json keeps every day and the old fields, with the new ones
expect 0 "register --json" -- R --json register $PH --substance morphine --month 2026-02
[ "$(wc -l <"$W/out")" = 28 ] && ok || bad "--json has $(wc -l <"$W/out") days, wanted 28"
python3 - "$W/out" "$PH" <<'PY' && ok || bad "--json fields"
import json, sys
days = [json.loads(l) for l in open(sys.argv[1])]
old = {"date", "party", "substance", "unit", "opening", "received", "dispensed",
       "destroyed", "other_out", "closing", "entries"}
assert all(old <= set(d) for d in days)
first, last = days[0], days[-1]
assert first["opening"] == "600" and last["closing"] == "662", (first, last)
assert (last["period_received"], last["period_dispensed"], last["period_destroyed"],
        last["period_other_out"]) == ("100", "38", "0", "0"), last
assert last["substance_name_zh"] == "吗啡" and last["category"] == "drug"
assert last["spec"] == "10mg×10片"
e = [x for d in days for x in d["entries"]]
assert [x["balance"] for x in e] == ["579", "569", "568", "564", "664", "662"], e
r1 = [x for x in e if x["id"] == "RX-REG-1"][0]
assert (r1["handler"], r1["checker"], r1["rx"], r1["qty"]) == ("张药师", "李药师", "RX-REG-1", "-10"), r1
r2 = [x for x in e if x["id"] == "RX-REG-2"][0]
assert r2["handler"] is None and r2["checker"] is None, r2
old_entry = {"kind", "id", "at", "lot", "qty", "counterparty", "rx"}
assert all(old_entry <= set(x) for x in e)
PY
# the event keeps them: export shows handler and checker, never a patient
R export --party $PH >"$W/exp"
grep -q '"id":"RX-REG-1".*"handler":"张药师","checker":"李药师"' "$W/exp" && ok || bad "export lacks handler/checker: $(grep RX-REG-1 "$W/exp")"
grep -q "110101199001011111" "$W/exp" && bad "a clear patient id in the ledger" || ok

# A printable page: a pharmacy whose name carries markup
cat >"$W/np.jsonl" <<EOF
{"type":"party","id":"reg-np","party":"REGULATOR","at":"2026-02-01T09:00:00+08:00","subject":"$NP","name":"<script>alert(1)</script> & Sons 药房","kind":"pharmacy","region":"CN-31","licenses":["CN-NARC","CN-PSY-1","CN-PSY-2"]}
{"type":"sale","id":"sal-np-1","party":"$DIST","at":"2026-02-05T09:00:00+08:00","to":"$NP","substance":"morphine","lot":"MOR-2601","qty":"50","unit":"unit"}
{"type":"receipt","id":"rcp-np-1","party":"$NP","at":"2026-02-05T15:00:00+08:00","from":"$DIST","ref":"sal-np-1","substance":"morphine","lot":"MOR-2601","qty":"50","unit":"unit","handler":"A&B","checker":"<i>C</i>"}
EOF
expect 0 "import the pharmacy" -- R import --provision-keys "$W/np.jsonl"
expect 0 "a dispensing there" -- R --as $NP record dispense --id np-d1 --at 2026-02-06T10:00:00+08:00 --substance morphine \
  --lot MOR-2601 --qty 5 --unit unit --rx-id RX-NP-1 --prescriber "DR<1>" --patient 1 --written 2026-02-06 \
  --days 1 --form injection --handler "O'Brien \"x\"" --checker 李药师
expect 0 "register --html" -- R --lang zh register $NP --substance morphine --month 2026-02 --html
cp "$W/out" "$W/np.html"
head -1 "$W/np.html" | grep -q "^<!DOCTYPE html>$" && ok || bad "not an HTML page: $(head -2 "$W/np.html")"
grep -q '<meta charset="utf-8">' "$W/np.html" && grep -q "<style>" "$W/np.html" && ok || bad "no charset or inline CSS"
grep -q "<h1>麻醉药品和精神药品专用账册</h1>" "$W/np.html" && ok || bad "no title"
grep -qF "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons 药房 ($NP)" "$W/np.html" && ok || bad "party name not escaped: $(grep 单位 "$W/np.html")"
grep -qi "<script" "$W/np.html" && bad "markup from a value in the page" || ok
grep -q "<i>" "$W/np.html" && bad "markup from a handler in the page" || ok
grep -qF "<td>A&amp;B</td><td>&lt;i&gt;C&lt;/i&gt;</td>" "$W/np.html" && ok || bad "receipt staff not escaped"
grep -qF "<td>O&#39;Brien &quot;x&quot;</td><td>李药师</td>" "$W/np.html" && ok || bad "dispensing staff not escaped"
grep -qF '<td class="n">50</td>' "$W/np.html" && grep -qF '<td class="n">45</td>' "$W/np.html" && ok || bad "balances 50, 45 missing"
grep -qF "<th>期末结存</th><td class=\"n\">45</td>" "$W/np.html" && ok || bad "HTML totals"
grep -q "经手人（签字）" "$W/np.html" && grep -q "复核人（签字）" "$W/np.html" && ok || bad "no signature lines"
grep -q "^</html>$" "$W/np.html" && ok || bad "the page is not closed"
[ "$(grep -c '^<tr><td>' "$W/np.html")" = 2 ] && ok || bad "HTML entry rows: $(grep -c '^<tr><td>' "$W/np.html")"
expect 0 "register --format html" -- R --lang zh register $NP --substance morphine --month 2026-02 --format html
cmp -s "$W/out" "$W/np.html" && ok || bad "--format html differs from --html"
expect 1 "--csv and --html together" -- R register $NP --substance morphine --csv --html
expect 1 "--format pdf" -- R register $NP --substance morphine --format pdf

checks_done register
