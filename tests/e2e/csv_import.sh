#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of CSV import through a column mapping (SPEC 11):
#   csv_import.sh TRACECTL DEMO.jsonl EXAMPLES-CSV-DIR
# The two examples (sales with Chinese headers, a BOM, CRLF and quoted
# fields; receipts by column number) move the balances as expected;
# re-importing adds nothing; a mapping naming a column the header lacks,
# an unknown event type, a row with too few columns, an unparsable date
# and a row the import refuses are each refused with their line, and
# nothing is stored; quoting (delimiters, line breaks, doubled quotes)
# and a BOM before a quoted header work.
set -u
T=$1 DEMO=$2 X=$3
W=$(mktemp -d /tmp/trace-e2e-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
M1=91310000MA1K000001 D2=91320000MA1K000002
size_of() { "$T" --data "$D" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
qty() { # PARTY SITE: ephedrine EPH-2601-A at that site
  "$T" --data "$D" --json balance "$1" --substance ephedrine |
    python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    if r["site"] == sys.argv[1] and r["lot"] == "EPH-2601-A": print(r["qty"] + " " + r["unit"])' "$2"
}
csv() { "$T" --data "$D" import --format csv --map "$1" "$2"; }
refused() { # DESC LINE-PATTERN MAP CSV
  local n0 got
  n0=$(size_of)
  csv "$3" "$4" >"$W/out" 2>"$W/err"
  got=$?
  [ "$got" = 2 ] && ok || bad "$1: exit $got, wanted 2: $(cat "$W/err")"
  grep -q -- "$2" "$W/err" && ok || bad "$1: no \"$2\" in: $(cat "$W/err")"
  grep -q "nothing was imported" "$W/err" && ok || bad "$1: $(cat "$W/err")"
  [ "$(size_of)" = "$n0" ] && ok || bad "$1: entries stored"
}

expect 0 "init" -- "$T" --data "$D" init
expect 0 "import demo" -- "$T" --data "$D" import --provision-keys "$DEMO"
[ "$(qty $M1 plant-1)" = "150 kg" ] && ok || bad "seller before: $(qty $M1 plant-1)"
[ "$(qty $D2 main)" = "59.95 kg" ] && ok || bad "buyer before: $(qty $D2 main)"

# 1. The examples: sales (M1 -> D2, 50.5 kg from plant-1), then receipts.
expect 0 "import sales" -- csv "$X/sales.map.json" "$X/sales.csv"
grep -q "imported 2 events" "$W/out" && ok || bad "sales: $(cat "$W/out")"
[ "$(qty $M1 plant-1)" = "99.5 kg" ] && ok || bad "seller after: $(qty $M1 plant-1)"
expect 0 "import receipts" -- csv "$X/receipts.map.json" "$X/receipts.csv"
grep -q "imported 2 events" "$W/out" && ok || bad "receipts: $(cat "$W/out")"
[ "$(qty $D2 main)" = "110.45 kg" ] && ok || bad "buyer after: $(qty $D2 main)"
"$T" --data "$D" export >"$W/all"
grep -q '"id":"XS-2026-0202".*"at":"2026-02-05T14:00:00+08:00"' "$W/all" && ok || bad "sale time: $(grep XS-2026-0202 "$W/all")"
grep -q '"id":"SH-0201".*"at":"2026-02-04T10:15:00+08:00"' "$W/all" && ok || bad "receipt time: $(grep SH-0201 "$W/all")"

# 2. Re-importing adds nothing.
n=$(size_of)
expect 0 "re-import sales" -- csv "$X/sales.map.json" "$X/sales.csv"
grep -q "imported 0 events (2 already present" "$W/out" && ok || bad "re-import sales: $(cat "$W/out")"
expect 0 "re-import receipts" -- csv "$X/receipts.map.json" "$X/receipts.csv"
grep -q "imported 0 events (2 already present" "$W/out" && ok || bad "re-import receipts: $(cat "$W/out")"
[ "$(size_of)" = "$n" ] && ok || bad "re-import stored entries"

# 3. Bad input: refused with its line, nothing stored.
MAP='{"type": "%s", "columns": {"id": "单号", "at": "%s", "to": "客户", "substance": "品名", "lot": "批号", "qty": "数量", "unit": "单位"}, "fixed": {"party": "'$M1'", "site": "plant-1", "permit": "CN-PL-2026-0001"}, "at_format": "%%Y-%%m-%%d %%H:%%M"}'
# shellcheck disable=SC2059
printf "$MAP" sale 日期 >"$W/ok.map"
# shellcheck disable=SC2059
printf "$MAP" sale 交货日期 >"$W/nocol.map"
# shellcheck disable=SC2059
printf "$MAP" sell 日期 >"$W/type.map"
H='单号,日期,客户,品名,批号,数量,单位'
row() { echo "B-$1,2026-02-0$2 10:00,$D2,ephedrine,EPH-2601-A,1,kg"; }
{ echo "$H"; row 1 6; row 2 7; } >"$W/good.csv"
refused "header lacks a column" 'line 1: the header has no column "交货日期"' "$W/nocol.map" "$W/good.csv"
refused "unknown event type" 'unknown event type "sell"' "$W/type.map" "$W/good.csv"
{ echo "$H"; row 1 6; echo "B-2,2026-02-07 10:00,$D2,ephedrine"; row 3 8; } >"$W/short.csv"
refused "too few columns" "line 3: 4 columns" "$W/ok.map" "$W/short.csv"
{ echo "$H"; row 1 6; row 2 7; echo "B-3,2026-02-31x,$D2,ephedrine,EPH-2601-A,1,kg"; } >"$W/date.csv"
refused "unparsable date" 'line 4: field at: "2026-02-31x" is no date' "$W/ok.map" "$W/date.csv"
# a row the import refuses, after a quoted field over two lines: its
# physical line is named
{ echo "$H,备注"; echo "B-1,2026-02-06 10:00,$D2,ephedrine,EPH-2601-A,1,kg,\"two"; echo "lines\""
  echo "B-2,2026-02-07 10:00,$D2,ephedrine,EPH-2601-A,-1,kg,"; } >"$W/qty.csv"
refused "import refuses a row" "line 4: " "$W/ok.map" "$W/qty.csv"
printf '{"type": "sale", "columns": {"id": "单号"}, "colums": {}}' >"$W/key.map"
refused "unknown mapping key" 'unknown key "colums"' "$W/key.map" "$W/good.csv"
expect 1 "--format csv without --map" -- "$T" --data "$D" import --format csv "$W/good.csv"

# 4. Quoting and a BOM: a quoted first header after the BOM, a quoted
# field holding the delimiter, a line break and doubled quotes; CRLF.
{ printf '\xEF\xBB\xBF"单号",日期,客户,"备注",品名,批号,数量,单位\r\n'
  printf 'Q-1,2026-02-09 08:00,%s,"a, b\r\nand ""c""",ephedrine,"EPH-2601-A","1.25",kg\r\n' "$D2"
  printf '\r\n'
  printf '"Q-2",2026-02-09 09:00,%s,,ephedrine,EPH-2601-A,2,kg' "$D2"; } >"$W/quoted.csv"
expect 0 "quoted fields and a BOM" -- csv "$W/ok.map" "$W/quoted.csv"
grep -q "imported 2 events" "$W/out" && ok || bad "quoted: $(cat "$W/out" "$W/err")"
[ "$(qty $M1 plant-1)" = "96.25 kg" ] && ok || bad "seller after quoted: $(qty $M1 plant-1)"
"$T" --data "$D" export | grep -q '"id":"Q-1".*"qty":"1.25"' && ok || bad "Q-1 not stored as given"

checks_done csv_import
