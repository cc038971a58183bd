#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of tracectl in embedded mode, with real processes:
#   cli.sh TRACECTL TAMPER DEMO.jsonl
# init, import of the multi-party demo data set, export round trip, each
# bad-input class rejected with nothing committed, exit codes, and a byte
# changed inside a stored record caught by verify.
set -u
T=$1 TAMPER=$2 DEMO=$3
W=$(mktemp -d /tmp/trace-e2e-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
size() { "$T" --data "$D" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
size_of() { "$T" --data "$1" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }

expect 0 "init" -- "$T" --data "$D" init
expect 2 "init twice" -- "$T" --data "$D" init
expect 4 "open missing ledger" -- "$T" --data "$W/none" export
expect 1 "unknown command" -- "$T" --data "$D" frobnicate
expect 1 "import without file" -- "$T" --data "$D" import
expect 0 "import --help" -- "$T" import --help
for c in init import export record trace balance history permit parties verify reconcile alerts ack register catalog head backup keygen correct; do
  "$T" help "$c" >"$W/h1" 2>&1; "$T" "$c" --help >"$W/h2" 2>&1
  cmp -s "$W/h1" "$W/h2" && ok || bad "help $c and $c --help differ"
done
grep -q -- "--provision-keys" "$W/out" || bad "import --help does not explain --provision-keys"
expect 0 "record sale --help" -- "$T" record sale --help
grep -q "^  --to  *a party id (required)$" "$W/out" && grep -q "^  --rx" "$W/out" && bad "record sale --help lists rx fields" || ok
grep -q "^  --to  *a party id (required)$" "$W/out" && grep -q "^  --override REASON" "$W/out" && ok || bad "record sale --help: $(tail -5 "$W/out")"
expect 0 "record dispense --help" -- "$T" record dispense --help
grep -q "^  --rx.form  *one of injection, controlled_release, oral, patch, other (required)$" "$W/out" && ok || bad "record dispense --help lacks rx.form"
expect 1 "record nope --help" -- "$T" record nope --help

# Without --provision-keys the demo's parties have no keys: refused, 5.
ls "$D/keys" >"$W/keys.before"
expect 0 "import --dry-run" -- "$T" --data "$D" import --provision-keys --dry-run "$DEMO"
grep -q "^dry run: 32 events would be imported (0 already present, 5 keys would be provisioned); nothing was stored$" "$W/out" && ok ||
  bad "import --dry-run said: $(cat "$W/out")"
ls "$D/keys" | cmp -s - "$W/keys.before" && ok || bad "a dry run left keys in the key folder"
[ "$("$T" --data "$D" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')" = 1 ] && ok ||
  bad "a dry run stored entries"
expect 5 "import without keys" -- "$T" --data "$D" import "$DEMO"
grep -q "provision-keys" "$W/err" || bad "no hint about --provision-keys"
[ "$(size)" = 1 ] && ok || bad "refused import left entries behind"

expect 0 "import demo" -- "$T" --data "$D" import --provision-keys "$DEMO"
expect 0 "verify" -- "$T" --data "$D" verify
n_after=$(size)

# Export round trip: the events of the demo file come back with the same
# fields and values (provisioned key registrations are extra events).
"$T" --data "$D" export >"$W/export.jsonl" || bad "export failed"
python3 - "$DEMO" "$W/export.jsonl" <<'PY' && ok || bad "export round trip"
import json, sys
from decimal import Decimal
def norm(o):
    if isinstance(o, dict):
        return {k: norm(v) for k, v in o.items()}
    if isinstance(o, list):
        return [norm(v) for v in o]
    if isinstance(o, (int, float)) and not isinstance(o, bool):
        return Decimal(str(o))
    if isinstance(o, str):
        try:
            return Decimal(o) if o.replace('.', '', 1).isdigit() else o
        except Exception:
            return o
    return o
src = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = {(e["party"], e["id"]): e for e in map(json.loads, open(sys.argv[2]))}
for e in src:
    got = out.get((e["party"], e["id"]))
    if got is None:
        sys.exit("missing %s/%s" % (e["party"], e["id"]))
    if e["type"] == "dispense":   # patient is pseudonymised on the way in
        assert got["rx"]["patient"].startswith("hmac:"), got
        e = json.loads(json.dumps(e)); e["rx"]["patient"] = got["rx"]["patient"]
    if e["type"] == "party":
        got = dict(got); got.pop("pubkey", None)
    if norm(e) != norm(got):
        sys.exit("differs:\n%s\n%s" % (e, got))
PY
# The export re-imports as a no-op.
expect 0 "re-import export" -- "$T" --data "$D" --json import "$W/export.jsonl"
grep -q '"appended":0' "$W/out" || bad "re-import appended events"

# No clear patient identifier anywhere in the ledger folder.
if grep -rq "310101195001011234" "$D"; then bad "clear patient id stored"; else ok; fi

# Each bad-input class is rejected with its line number, exit 2, nothing
# committed.  A valid line precedes each bad one to prove atomicity.
GOOD='{"type":"produce","id":"new-1","party":"91310000MA1K000001","at":"2026-04-01T08:00:00+08:00","substance":"ephedrine","lot":"EPH-NEW","qty":"1","unit":"kg"}'
H='"party":"91310000MA1K000001","at":"2026-04-01T09:00:00+08:00"'
while IFS='|' read -r name line; do
  [ -z "$name" ] && continue
  printf '%s\n%s\n' "$GOOD" "$line" >"$W/bad.jsonl"
  expect 2 "bad input: $name" -- "$T" --data "$D" import "$W/bad.jsonl"
  grep -q "line 2:" "$W/err" || bad "$name: no line number in: $(cat "$W/err")"
done <<EOF2
malformed json|{"type":"loss",
unknown type|{"type":"teleport","id":"b1",$H}
unknown field|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"1","unit":"kg","reason":"theft","colour":"red"}
wrong unit|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"1","unit":"L","reason":"theft"}
unknown unit|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"1","unit":"lb","reason":"theft"}
negative qty|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"-1","unit":"kg","reason":"theft"}
zero qty|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":0,"unit":"kg","reason":"theft"}
malformed qty|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"1,5","unit":"kg","reason":"theft"}
exponent|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":1e2,"unit":"kg","reason":"theft"}
too precise|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"0.0000000001","unit":"kg","reason":"theft"}
bad timestamp|{"type":"loss","id":"b1","party":"91310000MA1K000001","at":"2026-04-31T09:00:00+08:00","substance":"ephedrine","lot":"L","qty":"1","unit":"kg","reason":"theft"}
no zone|{"type":"loss","id":"b1","party":"91310000MA1K000001","at":"2026-04-01T09:00:00","substance":"ephedrine","lot":"L","qty":"1","unit":"kg","reason":"theft"}
duplicate key|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"1","qty":"2","unit":"kg","reason":"theft"}
duplicate id|{"type":"produce","id":"new-1","party":"91310000MA1K000001","at":"2026-04-01T08:00:00+08:00","substance":"ephedrine","lot":"EPH-NEW","qty":"2","unit":"kg"}
reused id|{"type":"produce","id":"prd-0001","party":"91310000MA1K000001","at":"2026-01-08T08:00:00+08:00","substance":"ephedrine","lot":"EPH-2601-A","qty":"251","unit":"kg","site":"plant-1"}
unknown substance|{"type":"loss","id":"b1",$H,"substance":"unobtainium","lot":"L","qty":"1","unit":"kg","reason":"theft"}
missing field|{"type":"loss","id":"b1",$H,"substance":"ephedrine","lot":"L","qty":"1","unit":"kg"}
EOF2
[ "$(size)" = "$n_after" ] && ok || bad "a rejected batch changed the ledger"

# Errors of a long input come in line order, each once, whichever check
# found them (the import checks lines a few thousand behind its parsing):
# a reused id at line 3001, malformed JSON at 4001, the rest only parsed.
python3 - "$W/many.jsonl" <<'EOF2'
import json, sys
ev = lambda i, q: json.dumps({"type": "produce", "id": "many-%d" % i,
    "party": "91310000MA1K000001", "at": "2026-04-02T08:00:00+08:00",
    "substance": "ephedrine", "lot": "EPH-MANY", "qty": q, "unit": "g"})
lines = [ev(i, "1") for i in range(5000)]
lines[3000] = ev(5, "2")
lines[4000] = '{"type":"loss"'
lines.append(ev(9999, "0"))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF2
expect 2 "many lines, three bad" -- "$T" --data "$D" import "$W/many.jsonl"
grep -o '^tracectl: line [0-9]*' "$W/err" | tr '\n' ' ' >"$W/order"
[ "$(cat "$W/order")" = "tracectl: line 3001 tracectl: line 4001 tracectl: line 5001 " ] && ok ||
  bad "errors not in line order, or not each once: $(cat "$W/order")"
grep -q "3 of 5001 lines rejected; nothing was imported" "$W/err" && ok ||
  bad "wrong summary: $(tail -1 "$W/err")"
[ "$(size)" = "$n_after" ] && ok || bad "a rejected long input changed the ledger"

# Permission: only regulators record permits (exit 5), nothing committed.
printf '%s\n' '{"type":"permit","id":"x1","party":"91310000MA1K000001","at":"2026-04-01T10:00:00+08:00","permit":"PL-X","kind":"purchase_license","holder":"91310000MA1K000001","substance":"ephedrine","qty":"5","unit":"kg","valid_from":"2026-04-01","valid_until":"2026-12-31","uses":"multi"}' >"$W/perm.jsonl"
expect 5 "permit by a manufacturer" -- "$T" --data "$D" import "$W/perm.jsonl"
# --as: a party writes only its own ledger.
expect 5 "import as another party" -- "$T" --data "$D" --as 91320000MA1K000002 import "$DEMO"
[ "$(size)" = "$n_after" ] && ok || bad "a refused batch changed the ledger"

# Queries: balances (kg in, g out), traces, permits, history; unknowns
# are exit 4 with a message.
"$T" --data "$D" balance 91330000MA1K000003 --substance acetic-anhydride --json >"$W/bal" || bad "balance failed"
grep -q '"qty":"574.5","unit":"kg"' "$W/bal" && ok || bad "balance after correction: $(cat "$W/bal")"
"$T" --data "$D" balance 91320000MA1K000002 --at 2026-01-11 --json >"$W/bal" || bad "balance --at failed"
grep -q '"qty":"99.95"' "$W/bal" && ok || bad "balance at a date: $(cat "$W/bal")"
expect 4 "balance of unknown party" -- "$T" --data "$D" balance NOBODY
grep -q "unknown party NOBODY" "$W/err" && ok || bad "no message for unknown party"
expect 4 "trace unknown lot" -- "$T" --data "$D" trace NOLOT --forward
expect 1 "trace without direction" -- "$T" --data "$D" trace MOR-2601
"$T" --data "$D" trace MOR-2601 --party 12310000MB0000005 --backward --json >"$W/tr" || bad "trace failed"
grep -q '"kind":"import".*"lot":"AA-IMP-2601"\|"lot":"AA-IMP-2601".*"kind":"import"' "$W/tr" && ok || bad "backward trace does not reach the import of the input lot"
expect 4 "unknown permit" -- "$T" --data "$D" permit show NOPERMIT
"$T" --data "$D" --json permit show CN-TL-2026-0001 >"$W/pm" || bad "permit show failed"
grep -q '"status":"revoked"' "$W/pm" && ok || bad "permit status: $(cat "$W/pm")"
expect 0 "history" -- "$T" --data "$D" history 12310000MB0000005 --limit 2
grep -q "more: add --after" "$W/out" && ok || bad "history does not offer the next page"

# A pharmacy records a dispensing at the counter and prints its register.
PH=12310000MB0000005
expect 0 "record dispense" -- "$T" --data "$D" --as $PH record dispense --substance morphine --lot MOR-2601 --qty 10 --unit unit --rx-id RX-E2E-1 --prescriber DR-9 --patient 110101199001011111 --written 2026-02-01 --days 3 --form oral --at 2026-02-01T11:00:00+08:00
expect 2 "record dispense without days" -- "$T" --data "$D" --as $PH record dispense --substance morphine --lot MOR-2601 --qty 1 --unit unit --rx-id RX-E2E-2 --prescriber DR-9 --patient X --written 2026-02-01 --form oral
grep -q 'missing field "rx.days_supply"' "$W/err" && ok || bad "no clear error for a missing prescription field: $(cat "$W/err")"
expect 5 "record for another party's ledger" -- "$T" --data "$D" --as $PH record loss --party 91310000MA1K000001 --substance morphine --lot MOR-2601 --qty 1 --unit unit --reason theft
"$T" --data "$D" register $PH --substance morphine --from 2026-02-01 --to 2026-02-02 --csv >"$W/reg" || bad "register failed"
grep -q '^2026-02-01,12310000MB0000005,morphine,unit,dispense,[^,]*,2026-02-01T11:00:00+08:00,DR-9,RX-E2E-1,MOR-2601,,10,,,569,' "$W/reg" && ok || bad "register entry: $(cat "$W/reg")"
grep -q '^2026-02-02,12310000MB0000005,morphine,unit,total,,,,,,0,32,0,0,568,' "$W/reg" && ok || bad "register totals: $(cat "$W/reg")"
if grep -rq "110101199001011111" "$D"; then bad "clear patient id stored by record"; else ok; fi

# Reconciliation: alerts with stable ids, acknowledged with an event.
"$T" --data "$D" --json reconcile >"$W/rec1" 2>/dev/null || bad "reconcile failed"
"$T" --data "$D" --json reconcile >"$W/rec2" 2>/dev/null || bad "reconcile again failed"
cmp -s "$W/rec1" "$W/rec2" && ok || bad "re-running reconcile changed the alerts"
grep -q '"rule":"LOSS_REPORTED"' "$W/rec1" && ok || bad "no LOSS_REPORTED alert"
AID=$(python3 -c 'import json,sys; print([a["id"] for a in map(json.loads, open(sys.argv[1])) if a["rule"]=="LOSS_REPORTED"][0])' "$W/rec1")
expect 0 "ack" -- "$T" --data "$D" ack "$AID" --status resolved --note "breakage confirmed on site"
"$T" --data "$D" --json alerts --status resolved >"$W/al" || bad "alerts failed"
grep -q "\"id\":\"$AID\"" "$W/al" && ok || bad "acknowledged alert not resolved: $(cat "$W/al")"
grep "\"id\":\"$AID\"" "$W/al" | grep -q '"ack":{"by":"REGULATOR","at":"20[0-9T:+-]*","note":"breakage confirmed on site"}' && ok ||
  bad "alerts --json does not say who acknowledged, when and why: $(cat "$W/al")"
"$T" --data "$D" alerts --status resolved | grep -q "^ *resolved by REGULATOR at 20.*: breakage confirmed on site$" && ok ||
  bad "alerts does not show the acknowledgement"
expect 4 "ack unknown alert" -- "$T" --data "$D" ack A0000000000000000 --note x

# Backup: the copy verifies and exports the same events.
expect 0 "backup" -- "$T" --data "$D" backup "$W/backup"
expect 0 "verify backup" -- "$T" --data "$W/backup" verify
# private to the owner, with the key folder: a restored copy records
[ "$(stat -c %a "$W/backup")" = 700 ] && [ "$(stat -c %a "$W/backup/data.mdb")" = 600 ] &&
  [ "$(stat -c %a "$W/backup/keys")" = 700 ] && [ "$(stat -c %a "$W/backup/keys/REGULATOR.key")" = 600 ] &&
  ok || bad "backup permissions: $(stat -c '%a %n' "$W/backup" "$W/backup"/* "$W/backup/keys"/REGULATOR.*)"
cmp -s "$D/keys/REGULATOR.key" "$W/backup/keys/REGULATOR.key" && ok || bad "the backup lacks the regulator's key"
cp -a "$W/backup" "$W/restored"
printf '%s\n' '{"type":"party","id":"restore-1","party":"REGULATOR","at":"2026-03-01T09:00:00+08:00","subject":"91440000MA1K000099","name":"Restored Test","kind":"distributor","region":"CN-44","licenses":["CN-PC-3"]}' >"$W/restore.jsonl"
expect 0 "a restored copy records with its keys" -- "$T" --data "$W/restored" import "$W/restore.jsonl"
"$T" --data "$D" export >"$W/e1"; "$T" --data "$W/backup" export >"$W/e2"
cmp -s "$W/e1" "$W/e2" && ok || bad "backup exports differently"
expect 2 "backup over a ledger" -- "$T" --data "$D" backup "$W/backup"

# A ledger whose map is full grows it and the import succeeds.
python3 - "$W/big.jsonl" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write('{"type":"party","id":"r1","party":"REGULATOR","at":"2026-01-01T00:00:00Z","subject":"P1","name":"one","kind":"manufacturer","region":"CN-31","licenses":["CN-PC-1"]}\n')
    for i in range(20000):
        f.write('{"type":"produce","id":"p%d","party":"P1","at":"2026-02-01T00:00:00Z","substance":"ephedrine","lot":"L%d","qty":"1","unit":"kg"}\n' % (i, i))
PY
TRACE_MAPSIZE=1048576 "$T" --data "$W/small" init >/dev/null
expect 0 "import into a full map" -- env TRACE_MAPSIZE=1048576 "$T" --data "$W/small" import --provision-keys "$W/big.jsonl"
expect 0 "verify after growth" -- "$T" --data "$W/small" verify

# The catalog lists the 54 seed substances; head matches verify.
[ "$("$T" --data "$D" --json catalog | wc -l)" = 54 ] && ok || bad "catalog does not list 54 substances"
# the substances added to China's list (易制毒化学品品种目录) since 2005,
# with their category and CAS number (none entered for
# N-甲基-1-苯基-1-氯-2-丙胺)
"$T" --data "$D" --json catalog >"$W/cat.json"
python3 - "$W/cat.json" <<'PY' && ok || bad "catalog additions"
import json, sys
got = {s["name_zh"]: s for s in map(json.loads, open(sys.argv[1]))}
want = [("羟亚胺", "90717-16-1", 1), ("邻氯苯基环戊酮", "6740-85-8", 1),
        ("1-苯基-2-溴-1-丙酮", "2114-00-3", 1), ("N-甲基-1-苯基-1-氯-2-丙胺", None, 1),
        ("α-苯乙酰乙酸甲酯", "16648-44-5", 2), ("α-乙酰乙酰苯胺", "4433-77-6", 2),
        ("3,4-亚甲基二氧苯基-2-丙酮缩水甘油酸", "2167189-50-4", 2),
        ("3,4-亚甲基二氧苯基-2-丙酮缩水甘油酯", "13605-48-6", 2),
        ("氰化苄", "140-29-4", 3), ("γ-丁内酯", "96-48-0", 3)]
for zh, cas, cat in want:
    s = got.get(zh)
    assert s, "%s is not listed" % zh
    assert s.get("cas") == cas, (zh, s)
    # their CN category (other regimes' controls may follow: US List I)
    assert [x for x in s["scopes"] if x.startswith("CN-")] == ["CN-PC-%d" % cat], (zh, s)
    assert s["dimension"] == "mass", (zh, s)
PY
"$T" --data "$D" catalog >"$W/cat.txt"
for c in hydroxylimine 2-chlorophenyl-cyclopentyl-ketone 2-bromopropiophenone chloroephedrine mapa apaa pmk-glycidic-acid pmk-methyl-glycidate; do
  grep -q "^$c  *[-0-9]*  *mass  *CN-PC-[12]$" "$W/cat.txt" || bad "catalog does not list $c: $(grep "^$c" "$W/cat.txt")"
done
expect 0 "record --substance 羟亚胺" -- "$T" --data "$D" --as 91310000MA1K000001 record produce --substance 羟亚胺 --lot HYD-1 --qty 2 --unit kg --at 2026-02-10T08:00:00+08:00
expect 0 "balance --substance 羟亚胺" -- "$T" --data "$D" --json balance 91310000MA1K000001 --substance 羟亚胺
grep -q '"substance":"hydroxylimine","lot":"HYD-1"' "$W/out" && ok || bad "balance of 羟亚胺: $(cat "$W/out")"
expect 0 "record --substance 苯乙腈" -- "$T" --data "$D" --as 91310000MA1K000001 record produce --substance 苯乙腈 --lot BC-1 --qty 1 --unit kg --at 2026-02-10T08:00:00+08:00
"$T" --data "$D" --json catalog | grep -q '"code":"morphine","cas":"57-27-2","name":"Morphine","dimension":"count","name_zh":"吗啡","scopes":\["CN-NARC"' && ok || bad "catalog entry of morphine"
h1=$("$T" --data "$D" --json head | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])')
h2=$("$T" --data "$D" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])')
[ -n "$h1" ] && [ "$h1" = "$h2" ] && ok || bad "head $h1 differs from verify's $h2"

# --follow: new alerts and heads appear as another process stores them.
timeout 6 "$T" --data "$D" --json alerts --follow --rule LOSS_REPORTED >"$W/fa" 2>&1 &
timeout 6 "$T" --data "$D" --json head --follow >"$W/fh" 2>&1 &
sleep 2
n_before=$(wc -l <"$W/fa")
"$T" --data "$D" --as 91320000MA1K000002 record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason theft >/dev/null
"$T" --data "$D" reconcile >/dev/null 2>&1
wait
[ "$(wc -l <"$W/fa")" -gt "$n_before" ] && ok || bad "alerts --follow did not print the new alert"
[ "$(wc -l <"$W/fh")" -ge 2 ] && ok || bad "head --follow did not print the new head"

# keygen
expect 0 "keygen" -- "$T" --data "$D" keygen NEWPARTY
[ -f "$D/keys/NEWPARTY.key" ] && ok || bad "keygen wrote no key"
expect 2 "keygen twice" -- "$T" --data "$D" keygen NEWPARTY

# A changed byte inside a stored record is caught, naming the entry.
cp -r "$D" "$W/copy"
"$TAMPER" "$D" 20 flip || bad "tamper failed"
expect 3 "verify after tampering" -- "$T" --data "$D" verify
grep -q "entry 20" "$W/err" && ok || bad "verify did not name entry 20: $(cat "$W/err")"
# Garbage in place of the data file: reported as damage, never a crash.
cp -r "$W/copy" "$W/garbage"
python3 - "$W/garbage/data.mdb" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096 * 2)
    f.write(b"\xff" * 4096 * 8)
PY
expect 3 "verify on a damaged file" -- "$T" --data "$W/garbage" verify
# Random damage anywhere in the file: verify reports it or finds the
# damage harmless (free space), and never crashes or hangs.
for i in $(seq 1 16); do
  rm -rf "$W/rnd"; cp -r "$W/copy" "$W/rnd"
  python3 - "$W/rnd/data.mdb" "$i" <<'PY'
import os, random, sys
path, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
size = os.path.getsize(path)
with open(path, "r+b") as f:
    for _ in range(4):
        f.seek(r.randrange(size))
        f.write(bytes(r.randrange(256) for _ in range(r.randint(1, 64))))
PY
  timeout 20 "$T" --data "$W/rnd" verify >/dev/null 2>&1
  rc=$?
  if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then ok; else bad "verify on random damage $i: exit $rc"; fi
done

# Times in options are read by the library's parser: a day that does
# not exist (2026-02-31, or 29 February of 2026) and out-of-range fields
# are usage errors (exit 1), never rolled over into the next month.
P2=91320000MA1K000002
for args in "balance $P2 --at 2026-02-31" "balance $P2 --at 2026-02-31T10:00:00+08:00" \
  "balance $P2 --at 2026-02-28T24:00:00+08:00" "reconcile --dry-run --as-of 2026-02-31" \
  "export --from 2026-02-31" "export --to 2026-13-01" "history $P2 --to 2026-04-31" \
  "register $P2 --substance ephedrine --from 2026-02-29 --to 2026-03-01" \
  "permit show CN-PF-2026-0001 --at 2026-02-30" "balance $P2 --at 2026-03-01T10:00:00"; do
  # shellcheck disable=SC2086
  expect 1 "$args is refused" -- "$T" --data "$D" $args
  grep -q "bad --.*time.*: .*RFC 3339" "$W/err" || bad "$args: no word on the bad time and why: $(cat "$W/err")"
done
# Valid times read as before: a bare date is that whole day in the
# ledger's zone (+08:00 here), the same as its last microsecond written
# out; fractions and other zones are accepted.
"$T" --data "$D" --json balance $P2 --at 2026-01-11 >"$W/d1" &&
  "$T" --data "$D" --json balance $P2 --at 2026-01-11T23:59:59.999999+08:00 >"$W/d2" &&
  cmp -s "$W/d1" "$W/d2" && [ -s "$W/d1" ] && ok || bad "balance --at a bare date is not the end of that day"
"$T" --data "$D" export --from 2026-01-11 --to 2026-01-11 >"$W/x1" &&
  "$T" --data "$D" export --from 2026-01-10T16:00:00Z --to 2026-01-11T15:59:59.999999Z >"$W/x2" &&
  cmp -s "$W/x1" "$W/x2" && ok || bad "export --from/--to bare dates are not whole days in +08:00"
expect 0 "reconcile --as-of a bare date" -- "$T" --data "$D" reconcile --dry-run --as-of 2026-02-28
expect 0 "balance --at 2028-02-29 (a leap day)" -- "$T" --data "$D" balance $P2 --at 2028-02-29

# Bare dates in options mean days in the ledger's zone (init --tz).
TZD=$W/tz
expect 0 "init --tz" -- "$T" --data "$TZD" init --tz -05:00
expect 1 "init --tz malformed" -- "$T" --data "$W/tz2" init --tz 5
for z in "+ 8:00" "+08:60" "+15:00" "08:00" "+08:00x" "+8:00"; do
  expect 1 "init --tz '$z'" -- "$T" --data "$W/tz3" init --tz "$z"
  [ ! -e "$W/tz3/data.mdb" ] && ok || bad "init --tz '$z' made a ledger"
done
printf '%s\n' '{"type":"party","id":"r1","party":"REGULATOR","at":"2026-01-05T09:00:00Z","subject":"P1","name":"One","kind":"manufacturer","region":"US","licenses":["CN-PC-1"]}' \
  '{"type":"produce","id":"p1","party":"P1","at":"2026-01-08T23:00:00-05:00","substance":"ephedrine","lot":"L1","qty":"5","unit":"kg"}' >"$W/tz.jsonl"
expect 0 "import in -05:00" -- "$T" --data "$TZD" import --provision-keys "$W/tz.jsonl"
expect 0 "balance at a bare date" -- "$T" --data "$TZD" --json balance P1 --at 2026-01-08
grep -q '"qty":"5"' "$W/out" && ok || bad "--at 2026-01-08 is not the end of that day in -05:00"

# Chinese on input: substances by Chinese name or alias, units and
# enumerated values in Chinese, all stored in the canonical spelling; a
# Chinese substance name in query options.
ZH=$W/zh
"$T" --data "$ZH" init >/dev/null
printf '%s\n' '{"type":"party","id":"r1","party":"REGULATOR","at":"2026-01-05T09:00:00+08:00","subject":"P1","name":"一号化工","kind":"生产企业","region":"CN-31","licenses":["CN-PC-2"]}' \
  '{"type":"produce","id":"z1","party":"P1","at":"2026-03-01T08:00:00+08:00","substance":"醋酸酐","lot":"ZH-1","qty":"1.5","unit":"吨"}' \
  '{"type":"produce","id":"z2","party":"P1","at":"2026-03-01T09:00:00+08:00","substance":"乙酸酐","lot":"ZH-2","qty":"20","unit":"公斤"}' \
  '{"type":"loss","id":"z3","party":"P1","at":"2026-03-02T08:00:00+08:00","substance":"108-24-7","lot":"ZH-1","qty":"2","unit":"千克","reason":"被盗"}' >"$W/zh.jsonl"
expect 0 "import in Chinese" -- "$T" --data "$ZH" import --provision-keys "$W/zh.jsonl"
"$T" --data "$ZH" export --party P1 >"$W/zh.out"
grep -q '"id":"z1",.*"substance":"acetic-anhydride",.*"qty":"1.5","unit":"t"' "$W/zh.out" && ok || bad "醋酸酐/吨 not stored as acetic-anhydride/t: $(cat "$W/zh.out")"
grep -q '"id":"z2",.*"substance":"acetic-anhydride",.*"unit":"kg"' "$W/zh.out" && ok || bad "the alias 乙酸酐 is not acetic-anhydride"
grep -q '"reason":"theft"' "$W/zh.out" && ok || bad "被盗 not stored as theft"
"$T" --data "$ZH" export --party REGULATOR | grep -q '"kind":"manufacturer"' && ok || bad "生产企业 not stored as manufacturer"
expect 0 "balance --substance 醋酸酐" -- "$T" --data "$ZH" --json balance P1 --substance 醋酸酐
grep -q '"lot":"ZH-1","qty":"1.498","unit":"t"' "$W/out" && ok || bad "balance by the Chinese name: $(cat "$W/out")"
printf '%s\n' '{"type":"produce","id":"z4","party":"P1","at":"2026-03-03T08:00:00+08:00","substance":"醋酸酐","lot":"ZH-3","qty":"1","unit":"升"}' >"$W/zh2.jsonl"
expect 2 "a volume unit in Chinese for a mass substance" -- "$T" --data "$ZH" import "$W/zh2.jsonl"
printf '%s\n' '{"type":"loss","id":"z5","party":"P1","at":"2026-03-03T08:00:00+08:00","substance":"醋酸酐","lot":"ZH-1","qty":"1","unit":"kg","reason":"蒸发"}' >"$W/zh3.jsonl"
expect 2 "an unknown Chinese loss reason" -- "$T" --data "$ZH" import "$W/zh3.jsonl"
"$T" --data "$ZH" --json catalog | grep -q '"code":"npp".*"scopes":\["CN-PC-1"' && ok || bad "NPP is not in CN category 1"
# record without --at: now in the ledger's zone (+08:00), not UTC
expect 0 "record without --at" -- "$T" --data "$ZH" --as P1 record produce --substance acetone --lot NOW-1 --qty 1 --unit L
"$T" --data "$ZH" export --party P1 | grep '"lot":"NOW-1"' | grep -q '"at":"20[0-9-]*T[0-9:]*+08:00"' && ok ||
  bad "record without --at is not in the ledger's zone: $("$T" --data "$ZH" export --party P1 | grep NOW-1)"

# the special register for a month: every day of it
expect 0 "register --month" -- "$T" --data "$D" --json register $P2 --substance ephedrine --month 2026-02
[ "$(wc -l <"$W/out")" = 28 ] && ok || bad "register --month 2026-02 has $(wc -l <"$W/out") days"
"$T" --data "$D" --json register $P2 --substance ephedrine --from 2026-02-01 --to 2026-02-28 | cmp -s - "$W/out" && ok ||
  bad "register --month differs from --from/--to"
expect 1 "register --month 2026-13" -- "$T" --data "$D" register $P2 --substance ephedrine --month 2026-13
# CSV for spreadsheets: a UTF-8 BOM, a header, one row per holding
expect 0 "balance --csv" -- "$T" --data "$ZH" balance P1 --csv
[ "$(head -c 3 "$W/out" | od -An -tx1 | tr -d ' ')" = efbbbf ] && ok || bad "balance --csv has no UTF-8 BOM"
[ "$(sed -n 1p "$W/out" | tail -c +4)" = "party,site,substance,lot,qty,unit" ] && ok || bad "balance --csv header: $(head -1 "$W/out")"
grep -q "^P1,main,acetic-anhydride,ZH-1,1.498,t$" "$W/out" && ok || bad "balance --csv row: $(cat "$W/out")"
# Chinese words with --lang zh (and by default in a zh_* locale); --json
# keeps its field names
expect 0 "balance --lang zh" -- "$T" --data "$ZH" --lang zh balance P1
grep -q "^P1 一号化工 的账面库存（当前）$" "$W/out" && grep -q "^物质 *批号 *地点 *数量 单位$" "$W/out" && ok ||
  bad "balance --lang zh: $(head -2 "$W/out")"
LC_ALL= LC_MESSAGES= LANG=zh_CN.UTF-8 "$T" --data "$ZH" balance P1 | grep -q "的账面库存" && ok || bad "a zh_CN locale does not give Chinese"
LC_ALL=zh_CN.UTF-8 "$T" --data "$ZH" --lang en balance P1 | grep -q "^book stock of P1 (一号化工) now" && ok || bad "--lang en does not override the locale"
[ "$(LC_ALL=zh_CN.UTF-8 "$T" --data "$ZH" --json balance P1)" = "$("$T" --data "$ZH" --json balance P1)" ] && ok ||
  bad "--json differs in a zh locale"
expect 1 "--lang fr" -- "$T" --data "$ZH" --lang fr balance P1
# Checks at entry: record refuses what would take stock negative, exceed
# a permit or over-receive a sale, or lie in the future, unless an
# override (stored) says why; check only reports.
CK=$W/ck
"$T" --data "$CK" init >/dev/null && "$T" --data "$CK" import --provision-keys "$DEMO" >/dev/null
# a correction without a replacement voids only with --void
expect 1 "record correction without a replacement" -- "$T" --data "$CK" --as 91320000MA1K000002 record correction --corrects trf-0001 --reason "entered twice"
grep -q "say --void" "$W/err" && ok || bad "no word on --void: $(cat "$W/err")"
expect 0 "record correction --void" -- "$T" --data "$CK" --as 91320000MA1K000002 record correction --corrects trf-0001 --reason "entered twice" --void
"$T" --data "$CK" export --party 91320000MA1K000002 | grep -q '"type":"correction",.*"corrects":"trf-0001"' && ok || bad "the void is not stored"

# a trace names where goods leave the chain: dispensed, destroyed
"$T" --data "$CK" trace MOR-2601 --forward >"$W/tr"
grep -q "^ *dispense  MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (dispensed to patients) " "$W/tr" &&
  grep -q "^ *destroy   MOR-2601 12310000MB0000005 (Shanghai Sixth People's Hospital Pharmacy) -> (destroyed) " "$W/tr" && ok ||
  bad "trace does not name dispensing and destruction: $(cat "$W/tr")"

MAN=91310000MA1K000001 DIST=91320000MA1K000002 USR=91330000MA1K000003
n0=$("$T" --data "$CK" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
expect 2 "record a sale beyond the stock" -- "$T" --data "$CK" --as $DIST record sale --to $USR --substance ephedrine --lot EPH-2601-A --qty 900 --unit kg
grep -q "NEGATIVE_STOCK: .* to -800.55 kg (it holds 99.45 kg)" "$W/err" && grep -q "nothing was recorded" "$W/err" && ok ||
  bad "negative stock refusal: $(cat "$W/err")"
[ "$("$T" --data "$CK" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')" = "$n0" ] && ok ||
  bad "a refused record stored something"
expect 2 "check a sale beyond the permit" -- "$T" --data "$CK" --as $MAN check sale --id chk-1 --to $DIST --substance ephedrine --lot EPH-2601-A --qty 500 --unit kg --permit CN-PL-2026-0001
grep -q "^PERMIT_EXCEEDED: chk-1 would write off 500 kg of permit CN-PL-2026-0001, which has 400 kg left$" "$W/out" && ok ||
  bad "permit check: $(cat "$W/out")"
expect 2 "check a revoked transport licence as a purchase permit" -- "$T" --data "$CK" --as $MAN check sale --id chk-2 --to $DIST --substance ephedrine --lot EPH-2601-A --qty 1 --unit kg --permit CN-TL-2026-0001
grep -q "^PERMIT_INVALID: permit CN-TL-2026-0001 is revoked" "$W/out" && ok || bad "invalid permit check: $(cat "$W/out")"
expect 2 "check a permit never issued" -- "$T" --data "$CK" --as $MAN check sale --id chk-3 --to $DIST --substance ephedrine --lot EPH-2601-A --qty 1 --unit kg --permit NOPE-1
grep -q "^PERMIT_MISSING: chk-3 cites permit NOPE-1" "$W/out" && ok || bad "missing permit check: $(cat "$W/out")"
expect 2 "check a second receipt of a sale" -- "$T" --data "$CK" --as $DIST check receipt --from $MAN --ref sal-0001 --substance ephedrine --lot EPH-2601-A --qty 5 --unit kg
grep -q "^RECEIPT_EXCEEDS_SALE: the receipts of $MAN's sale sal-0001 would total 104.95 kg, more than the 100 kg it shipped$" "$W/out" && ok ||
  bad "receipt check: $(cat "$W/out")"
expect 2 "check an event in 2031" -- "$T" --data "$CK" --as $DIST check produce --substance acetone --lot F-1 --qty 1 --unit L --at 2031-01-01T00:00:00+08:00
grep -q "^FUTURE_TIME: " "$W/out" && ok || bad "future check: $(cat "$W/out")"
expect 0 "check a fine sale" -- "$T" --data "$CK" --as $MAN check sale --to $DIST --substance ephedrine --lot EPH-2601-A --qty 10 --unit kg --permit CN-PL-2026-0001
grep -q "^(no findings)$" "$W/out" && ok || bad "a fine sale has findings: $(cat "$W/out")"
expect 0 "record with --override" -- "$T" --data "$CK" --as $DIST record sale --id ovr-1 --to $USR --substance ephedrine --lot EPH-2601-A --qty 900 --unit kg --override "count pending, goods left"
grep -q "warning: NEGATIVE_STOCK" "$W/err" && ok || bad "the overridden finding is not shown: $(cat "$W/err")"
"$T" --data "$CK" export --party $DIST | grep '"id":"ovr-1"' | grep -q '"override":"count pending, goods left"' && ok ||
  bad "the override is not stored in the event"
expect 5 "check another party's event" -- "$T" --data "$CK" --as $USR check sale --party $DIST --to $USR --substance ephedrine --lot EPH-2601-A --qty 1 --unit kg
expect 1 "check --override" -- "$T" --data "$CK" --as $DIST check loss --substance ephedrine --lot EPH-2601-A --qty 1 --unit kg --reason loss --override x
# licence sanity: a retail pharmacy with narcotics, a purchase licence to
# a party without the category's scope; --licenses takes a list
expect 2 "register a pharmacy with CN-NARC" -- "$T" --data "$CK" record party --subject 91310000MA1K000088 --name 测试药店 --kind pharmacy --region CN-31 --licenses CN-NARC,CN-PSY-2
grep -q "LICENCE_SCOPE: 91310000MA1K000088 is registered as a pharmacy with the scope CN-NARC" "$W/err" && ok || bad "pharmacy scope: $(cat "$W/err")"
expect 0 "register a pharmacy with CN-PSY-2" -- "$T" --data "$CK" record party --subject 91310000MA1K000089 --name 零售药店 --kind 药店 --region CN-31 --licenses CN-PSY-2
"$T" --data "$CK" --json parties --kind pharmacy | grep -q '"party":"91310000MA1K000089","name":"零售药店","kind":"pharmacy","region":"CN-31","licenses":\["CN-PSY-2"\]' && ok ||
  bad "the pharmacy is not registered as given: $("$T" --data "$CK" --json parties --kind pharmacy)"
expect 2 "a purchase licence for a party without the scope" -- "$T" --data "$CK" record permit --permit PL-X --kind purchase_license --holder 91310000MA1K000089 --substance ephedrine --qty 1 --unit kg --valid-from 2026-01-01 --valid-until 2026-12-31 --uses single
grep -q "LICENCE_SCOPE: permit PL-X goes to 91310000MA1K000089, which holds no licence scope for ephedrine" "$W/err" && ok || bad "permit scope: $(cat "$W/err")"

# record party add|update|key and correct: changes by name, built from
# what the ledger holds
"$T" --data "$CK" --json parties | grep "\"party\":\"$USR\"" >"$W/p0"
expect 0 "record party update" -- "$T" --data "$CK" record party update $USR --name 新名化工
"$T" --data "$CK" --json parties | grep "\"party\":\"$USR\"" >"$W/p1"
python3 - "$W/p0" "$W/p1" <<'PY' && ok || bad "record party update changed more than the name: $(cat "$W/p0" "$W/p1")"
import json, sys
a, b = (json.loads(open(f).read()) for f in sys.argv[1:])
assert b.pop("name") == "新名化工" and a.pop("name") != "新名化工"
assert a == b and b["licenses"], (a, b)
PY
expect 4 "record party update of an unknown party" -- "$T" --data "$CK" record party update 91000000NOBODY0000 --name x
grep -q "91000000NOBODY0000 is not a registered party" "$W/err" && ok || bad "unknown party update: $(cat "$W/err")"
expect 1 "record party key without --pubkey" -- "$T" --data "$CK" record party key $USR
expect 1 "record party update without an id" -- "$T" --data "$CK" record party update --name x
NEWKEY=$("$T" --data "$CK" --keys "$W/k-new" keygen $USR | sed -n 's/^pubkey: //p')
expect 0 "record party key" -- "$T" --data "$CK" record party key $USR --pubkey "$NEWKEY"
"$T" --data "$CK" --json parties | grep "\"party\":\"$USR\"" | grep -q '"name":"新名化工".*"keys":2' && ok || bad "the key rotation lost fields or the key"
expect 0 "the new key signs" -- "$T" --data "$CK" --keys "$W/k-new" --as $USR record produce --id kk-1 --substance acetone --lot KK-1 --qty 1 --unit L
expect 0 "record party add" -- "$T" --data "$CK" record party add --subject 91310000MA1K000077 --name 新增药店 --kind pharmacy --region CN-31 --licenses CN-PSY-2
"$T" --data "$CK" --json parties --kind pharmacy | grep -q '"party":"91310000MA1K000077","name":"新增药店"' && ok || bad "record party add did not register"
expect 0 "correct an event by fields" -- "$T" --data "$CK" --as $USR correct use-0001 --reason "re-weighed" --qty 205
"$T" --data "$CK" export --party $USR | grep '"type":"correction"' | tail -1 >"$W/cor"
python3 - "$W/cor" <<'PY' && ok || bad "correct built the wrong replacement: $(cat "$W/cor")"
import json, sys
c = json.loads(open(sys.argv[1]).read())
r = c["replacement"]
# built from the event as it stood (demo's correction: 205.5 kg), qty changed
assert c["corrects"] == "use-0001" and c["reason"] == "re-weighed", c
assert r["id"] == "use-0001" and r["qty"] == "205" and r["unit"] == "kg", r
assert r["purpose"] == "acetylation batch B-2026-014" and r["at"] == "2026-01-20T08:30:00+08:00", r
PY
expect 1 "correct without changes" -- "$T" --data "$CK" --as $USR correct use-0001 --reason r
expect 1 "correct without a reason" -- "$T" --data "$CK" --as $USR correct use-0001 --qty 1
expect 4 "correct an unknown event" -- "$T" --data "$CK" --as $USR correct nope-1 --reason r --qty 1
expect 4 "correct a voided event" -- "$T" --data "$CK" --as $DIST correct trf-0001 --reason r --qty 1
grep -q "trf-0001 was voided" "$W/err" && ok || bad "voided correction: $(cat "$W/err")"

# Checks at entry on import: a file of what already happened is stored,
# each finding a warning with its line, judged against the ledger plus the
# file's earlier lines (the produce of line 1 covers the sale of line 2;
# the receipt of line 3 counts against line 4's); its alerts are raised at
# once.  --strict refuses the same file whole; --historic is not checked.
cat >"$W/chk.jsonl" <<JSONL
{"type":"produce","id":"ic-1","party":"$MAN","at":"2026-02-01T08:00:00+08:00","substance":"acetone","lot":"IC-A","qty":"100","unit":"L","site":"plant-1"}
{"type":"sale","id":"ic-2","party":"$MAN","at":"2026-02-02T08:00:00+08:00","to":"$DIST","substance":"acetone","lot":"IC-A","qty":"60","unit":"L","site":"plant-1"}
{"type":"receipt","id":"ic-3","party":"$DIST","at":"2026-02-03T08:00:00+08:00","from":"$MAN","ref":"ic-2","substance":"acetone","lot":"IC-A","qty":"60","unit":"L"}
{"type":"receipt","id":"ic-4","party":"$DIST","at":"2026-02-04T08:00:00+08:00","from":"$MAN","ref":"ic-2","substance":"acetone","lot":"IC-A","qty":"10","unit":"L"}
{"type":"consume","id":"ic-5","party":"$MAN","at":"2026-02-05T08:00:00+08:00","substance":"acetone","lot":"IC-A","qty":"50","unit":"L","site":"plant-1","purpose":"production"}
JSONL
n0=$(size_of "$CK")
expect 2 "import --strict of a file with findings" -- "$T" --data "$CK" import --strict "$W/chk.jsonl"
grep -q "^tracectl: line 4: RECEIPT_EXCEEDS_SALE: the receipts of $MAN's sale ic-2 would total 70 L, more than the 60 L it shipped (refused by --strict" "$W/err" &&
  grep -q "nothing was imported" "$W/err" && ok || bad "import --strict: $(cat "$W/err")"
[ "$(size_of "$CK")" = "$n0" ] && ok || bad "a refused --strict import stored entries"
expect 0 "import --dry-run of a file with findings" -- "$T" --data "$CK" import --dry-run "$W/chk.jsonl"
grep -c "^tracectl: warning: line " "$W/err" | grep -qx 2 && ok || bad "dry run findings: $(cat "$W/err")"
[ "$(size_of "$CK")" = "$n0" ] && ok || bad "a dry run stored entries"
expect 0 "import of a file with findings" -- "$T" --data "$CK" import "$W/chk.jsonl"
grep -q "^imported 5 events (0 already present, 0 keys provisioned, 2 findings at entry)$" "$W/out" && ok || bad "import said: $(cat "$W/out")"
grep -q "^tracectl: warning: line 4: RECEIPT_EXCEEDS_SALE: the receipts of $MAN's sale ic-2 would total 70 L, more than the 60 L it shipped$" "$W/err" &&
  grep -q "^tracectl: warning: line 5: NEGATIVE_STOCK: ic-5 would take $MAN's book stock of lot IC-A (acetone) to -10 L (it holds 40 L)$" "$W/err" &&
  [ "$(grep -c "warning: line" "$W/err")" = 2 ] && ok || bad "import findings: $(cat "$W/err")"
grep -q "^tracectl: reconciliation: [1-9][0-9]* new alerts" "$W/err" && ok || bad "no reconciliation after findings: $(cat "$W/err")"
"$T" --data "$CK" --json alerts --open --rule NEGATIVE_STOCK | grep -q '"lot":"IC-A"' && ok || bad "the negative stock alert was not raised at once"
[ "$(size_of "$CK")" = "$((n0 + 5))" ] && ok || bad "the import with findings did not store its 5 events"
expect 0 "the same file again" -- "$T" --data "$CK" import "$W/chk.jsonl"
grep -q "^imported 0 events (5 already present, 0 keys provisioned)$" "$W/out" && [ ! -s "$W/err" ] && ok ||
  bad "re-import of checked events: $(cat "$W/out" "$W/err")"
sed 's/"ic-/"ih-/g; s/IC-A/IH-A/g' "$W/chk.jsonl" >"$W/chk-h.jsonl"
expect 0 "import --historic is not checked" -- "$T" --data "$CK" import --historic "$W/chk-h.jsonl"
grep -q "warning" "$W/err" && bad "a historic import was checked: $(cat "$W/err")" || ok
expect 1 "import --historic --strict" -- "$T" --data "$CK" import --historic --strict "$W/chk-h.jsonl"

# a catalog that gives one Chinese name to two substances is refused
cat >"$W/dup-cat.json" <<'JSON'
{"version": 1, "substances": [
 {"code": "a-one", "name_zh": "甲", "dimension": "mass", "controls": {}},
 {"code": "b-two", "aliases": ["甲"], "dimension": "mass", "controls": {}}]}
JSON
expect 2 "a catalog with one name for two substances" -- "$T" --data "$W/dupcat" init --catalog "$W/dup-cat.json"
grep -q "甲 is given to a-one and b-two" "$W/err" && ok || bad "the shared name is not named: $(cat "$W/err")"

checks_done cli
