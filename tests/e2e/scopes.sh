#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Departments (SPEC 12): regulators with scopes, with real processes:
#   scopes.sh TRACECTL TRACED
# A narcotics department (CN-NARC), a precursor department (CN-PC), a
# customs office (import, export) and an unscoped regulator, each
# reading, issuing and acknowledging; embedded (--as) and through
# traced; scopes refused where they do not belong.
set -u
T=$1 TD=$2
W=$(mktemp -d /tmp/trace-scopes-XXXXXX)
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
NARC=91110000MA1K00NARC PC=91110000MA1K0000PC CUS=91110000MA1K000CUS
ALL=91110000MA1K000ALL MAN=91310000MA1K000001 PH=91310000MA1K000PH1
"$T" --data "$D" init >/dev/null || { echo "FAIL: init"; exit 1; }
at=2026-03-01T08:00:00+08:00
reg() { # ID SUBJECT KIND [SCOPES-JSON]
  printf '{"type":"party","id":"%s","party":"REGULATOR","at":"%s","subject":"%s","name":"%s","kind":"%s","region":"CN-11","licenses":%s%s}\n' \
    "$1" "$at" "$2" "$1" "$3" "${5:-[]}" "${4:+,\"scopes\":$4}"
}
{
  reg narc $NARC regulator '["CN-NARC"]'
  reg pc $PC regulator '["易制毒化学品"]'
  reg cus $CUS regulator '["import","export"]'
  reg all $ALL regulator
  reg man $MAN manufacturer "" '["CN-PC-1","CN-PC-3","CN-NARC","CN-PSY-1"]'
  reg ph $PH pharmacy "" '["CN-NARC"]'
  # each department registers a party of its own (which also gives it a
  # key with --provision-keys): registrations are within every scope
  for d in $NARC $PC $CUS $ALL; do
    printf '{"type":"party","id":"by-%s","party":"%s","at":"%s","subject":"%s","name":"x","kind":"pharmacy","region":"CN-11","licenses":[]}\n' \
      "$d" "$d" "$at" "9131000${d:7:11}"
  done
  for s in ephedrine:kg morphine:unit ketamine:unit acetone:L; do
    printf '{"type":"produce","id":"p-%s","party":"%s","at":"2026-03-02T08:00:00+08:00","substance":"%s","lot":"L-%s","site":"plant","qty":"100","unit":"%s"}\n' \
      "${s%%:*}" $MAN "${s%%:*}" "${s%%:*}" "${s##*:}"
  done
  # a sale of morphine that is never received, one of ephedrine without
  # a permit: alerts of each department
  printf '{"type":"sale","id":"s-mor","party":"%s","at":"2026-03-03T08:00:00+08:00","substance":"morphine","lot":"L-morphine","qty":"10","unit":"unit","to":"%s"}\n' $MAN $PH
  # destructions of morphine witnessed by the narcotics department (in
  # scope) and by the precursor department (not: DESTROY_UNWITNESSED)
  printf '{"type":"destroy","id":"d-ok","party":"%s","at":"2026-03-03T10:00:00+08:00","substance":"morphine","lot":"L-morphine","qty":"1","unit":"unit","witness":"%s","method":"incineration"}\n' $MAN $NARC
  printf '{"type":"destroy","id":"d-out","party":"%s","at":"2026-03-03T11:00:00+08:00","substance":"morphine","lot":"L-morphine","qty":"1","unit":"unit","witness":"%s","method":"incineration"}\n' $MAN $PC
  printf '{"type":"sale","id":"s-eph","party":"%s","at":"2026-03-03T09:00:00+08:00","substance":"ephedrine","lot":"L-ephedrine","qty":"1","unit":"kg","to":"%s"}\n' $MAN $PH
} >"$W/setup.jsonl"
expect 0 "import the parties and events" -- E import --provision-keys "$W/setup.jsonl"

# ---- scopes where they do not belong: refused, nothing stored
head0=$(E head | head -1)
bad_party() { # DESC JSON-LINE MESSAGE-PART
  echo "$2" >"$W/bad.jsonl"
  expect 2 "$1" -- E import "$W/bad.jsonl"
  grep -q "$3" "$W/err" && ok || bad "$1: $(cat "$W/err")"
}
bad_party "scopes on a manufacturer" "$(reg m2 $MAN manufacturer '["CN-PC"]')" "only a regulator"
bad_party "an unknown scope" "$(reg x 91110000MA1K0000XX regulator '["CN-FOO"]')" "scopes"
bad_party "scopes on the root regulator" "$(reg root REGULATOR regulator '["CN-PC"]')" "root regulator"
bad_party "a scope named twice" "$(reg x 91110000MA1K0000XX regulator '["import","import"]')" "named twice"
[ "$(E head | head -1)" = "$head0" ] && ok || bad "a refused party line changed the ledger"

# ---- reads, embedded
expect 0 "export as the narcotics department" -- E --as $NARC export
grep -q '"substance":"morphine"' "$W/out" && ! grep -q '"substance":"ephedrine"\|"substance":"ketamine"\|"substance":"acetone"' "$W/out" &&
  grep -q '"type":"party"' "$W/out" && ok || bad "NARC export: $(cut -c1-120 "$W/out")"
expect 0 "export as the precursor department" -- E --as $PC export
grep -q '"substance":"ephedrine"' "$W/out" && grep -q '"substance":"acetone"' "$W/out" &&
  ! grep -q '"substance":"morphine"\|"substance":"ketamine"' "$W/out" && ok || bad "PC export: $(cut -c1-120 "$W/out")"
expect 0 "export as customs" -- E --as $CUS export
! grep -q '"substance":' "$W/out" && grep -q '"type":"party"' "$W/out" && ok || bad "customs export: $(cut -c1-120 "$W/out")"
expect 0 "export as an unscoped regulator" -- E --as $ALL export
[ "$(grep -c '"substance":' "$W/out")" = 8 ] && ok || bad "unscoped export: $(grep -c '"substance":' "$W/out") events with a substance"
expect 0 "balance of the manufacturer as NARC" -- E --as $NARC --json balance $MAN
grep -q morphine "$W/out" && ! grep -q 'ephedrine\|ketamine\|acetone' "$W/out" && ok || bad "NARC balance: $(cat "$W/out")"
expect 0 "trace of an ephedrine lot as NARC" -- E --as $NARC --json trace L-ephedrine --forward
! grep -q ephedrine "$W/out" && ok || bad "NARC sees an ephedrine trace: $(cat "$W/out")"
expect 0 "trace of a morphine lot as NARC" -- E --as $NARC --json trace L-morphine --forward
grep -q morphine "$W/out" && ok || bad "NARC trace of morphine: $(cat "$W/out")"
expect 0 "reconcile as the unscoped regulator" -- E --as $ALL --json reconcile --as-of 2026-03-20T00:00:00+08:00
grep -q morphine "$W/out" && grep -q ephedrine "$W/out" && ok || bad "alerts: $(cat "$W/out")"
python3 - "$W/out" <<'PY' && ok || bad "DESTROY_UNWITNESSED: $(grep DESTROY "$W/out")"
import json, sys
d = [a for a in map(json.loads, open(sys.argv[1])) if a["rule"] == "DESTROY_UNWITNESSED"]
assert len(d) == 1 and d[0]["events"][0]["id"] == "d-out", d
assert "scopes do not cover" in d[0]["detail"], d
PY
expect 0 "alerts as NARC" -- E --as $NARC --json alerts
grep -q '"substance":"morphine"' "$W/out" && ! grep -q '"substance":"ephedrine"' "$W/out" && ok || bad "NARC alerts: $(cat "$W/out")"
expect 0 "alerts as PC" -- E --as $PC --json alerts
grep -q '"substance":"ephedrine"' "$W/out" && ! grep -q '"substance":"morphine"' "$W/out" && ok || bad "PC alerts: $(cat "$W/out")"
EPH_ALERT=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    a = json.loads(l)
    if a.get("substance") == "ephedrine":
        print(a["id"]); break' "$W/out")
expect 5 "reconcile as a department" -- E --as $NARC reconcile
grep -q "whole ledger" "$W/err" && ok || bad "reconcile as NARC: $(cat "$W/err")"
expect 5 "backup as a department" -- E --as $PC backup "$W/bk"
[ ! -e "$W/bk" ] && ok || bad "a department's backup was written"

# ---- issuing and acknowledging, embedded
permit() { # ID RECORDER KIND SUBSTANCE UNIT
  printf '{"type":"permit","id":"%s","party":"%s","at":"2026-03-04T08:00:00+08:00","permit":"%s","kind":"%s","holder":"%s","substance":"%s","qty":"5","unit":"%s","valid_from":"2026-03-01","valid_until":"2026-12-31","uses":"multi"}\n' \
    "$1" "$2" "$1" "$3" $PH "$4" "$5"
}
try_permit() { # EXIT DESC RECORDER KIND SUBSTANCE UNIT ID
  permit "$7" "$3" "$4" "$5" "$6" >"$W/p.jsonl"
  expect "$1" "$2" -- E --as "$3" import "$W/p.jsonl"
}
try_permit 0 "PC issues an ephedrine licence" $PC purchase_license ephedrine kg PM-PC-1
try_permit 5 "NARC issues an ephedrine licence" $NARC purchase_license ephedrine kg PM-NARC-1
grep -q "scopes CN-NARC and may not issue permit PM-NARC-1 of ephedrine" "$W/err" && ok || bad "NARC's permit: $(cat "$W/err")"
try_permit 0 "customs issues an import licence" $CUS import_license acetone L PM-CUS-1
try_permit 5 "customs issues a purchase licence" $CUS purchase_license acetone L PM-CUS-2
printf '{"type":"permit_status","id":"ps-1","party":"%s","at":"2026-03-05T08:00:00+08:00","permit":"PM-PC-1","status":"suspended","reason":"audit"}\n' $NARC >"$W/ps.jsonl"
expect 5 "NARC suspends a precursor permit" -- E --as $NARC import "$W/ps.jsonl"
sed -i "s/$NARC/$PC/" "$W/ps.jsonl"
expect 0 "PC suspends its permit" -- E --as $PC import "$W/ps.jsonl"
expect 5 "NARC acknowledges an ephedrine alert" -- E --as $NARC ack "$EPH_ALERT" --status resolved --note checked
expect 0 "PC acknowledges it" -- E --as $PC ack "$EPH_ALERT" --status resolved --note checked
# a correction's replacement is judged as the event itself: NARC's ack
# of a morphine alert does not become one of an ephedrine alert
E --as $NARC --json alerts >"$W/na.json"
MOR_ALERT=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    a = json.loads(l)
    if a.get("substance") == "morphine":
        print(a["id"]); break' "$W/na.json")
printf '{"type":"alert_ack","id":"ack-n","party":"%s","at":"2026-03-09T08:00:00+08:00","alert":"%s","status":"acknowledged","note":"x"}\n' $NARC "$MOR_ALERT" >"$W/an.jsonl"
expect 0 "NARC acknowledges a morphine alert" -- E --as $NARC import "$W/an.jsonl"
printf '{"type":"correction","id":"c-ack","party":"%s","at":"2026-03-09T09:00:00+08:00","corrects":"ack-n","reason":"x","replacement":{"type":"alert_ack","id":"ack-n","party":"%s","at":"2026-03-09T08:00:00+08:00","alert":"%s","status":"resolved","note":"y"}}\n' $NARC $NARC "$EPH_ALERT" >"$W/can.jsonl"
expect 5 "NARC corrects it into an ack of an ephedrine alert" -- E --as $NARC import "$W/can.jsonl"
grep -q "may not acknowledge alert $EPH_ALERT of ephedrine" "$W/err" && ok || bad "corrected ack: $(cat "$W/err")"
sed -i "s/$EPH_ALERT/$MOR_ALERT/" "$W/can.jsonl"
expect 0 "NARC corrects it within its scope" -- E --as $NARC import "$W/can.jsonl"
expect 0 "permit list as NARC" -- E --as $NARC --json permit list
! grep -q PM-PC-1 "$W/out" && ok || bad "NARC sees a precursor permit: $(cat "$W/out")"
expect 0 "permit list as customs" -- E --as $CUS --json permit list
grep -q PM-CUS-1 "$W/out" && ! grep -q PM-PC-1 "$W/out" && ok || bad "customs' permits: $(cat "$W/out")"

# ---- permit applications: a department sees and decides its own
app() { # ID SUBSTANCE UNIT
  printf '{"type":"permit_application","id":"%s","party":"%s","at":"2026-03-06T08:00:00+08:00","kind":"purchase_license","substance":"%s","qty":"5","unit":"%s","purpose":"production","valid_from":"2026-04-01","valid_until":"2026-12-31","uses":"multi"}\n' "$1" $PH "$2" "$3"
}
{ app ap-eph ephedrine kg; app ap-mor morphine unit; } >"$W/apps.jsonl"
# --as acts as a party only with its private key in the key folder
# (SPEC 5), reads and writes alike: refused, nothing stored
head2=$(E head | head -1)
expect 5 "the pharmacy applies without its key" -- E --as $PH import --provision-keys "$W/apps.jsonl"
grep -q "needs $PH's private key in the key folder" "$W/err" && ok || bad "no key: $(cat "$W/err")"
expect 5 "the pharmacy reads its stock without its key" -- E --as $PH balance $PH
[ "$(E head | head -1)" = "$head2" ] && ok || bad "a refused --as changed the ledger"
# the pharmacy makes a key and the regulator registers it
PHPUB=$("$T" --keys "$K" keygen $PH | grep -o '[A-Za-z0-9+/]\{43\}=' | head -1)
printf '{"type":"party","id":"kph","party":"REGULATOR","at":"%s","subject":"%s","name":"ph","kind":"pharmacy","region":"CN-11","licenses":["CN-NARC"],"pubkey":"%s"}\n' "$at" $PH "$PHPUB" >"$W/kph.jsonl"
expect 0 "the regulator registers the pharmacy's key" -- E import "$W/kph.jsonl"
expect 0 "the pharmacy applies" -- E --as $PH import "$W/apps.jsonl"
expect 0 "applications as NARC" -- E --as $NARC --json applications
grep -q '"id":"ap-mor"' "$W/out" && ! grep -q '"id":"ap-eph"' "$W/out" && ok || bad "NARC's queue: $(cat "$W/out")"
decide() { # ID RECORDER APPLICATION
  printf '{"type":"application_decision","id":"%s","party":"%s","at":"2026-03-07T08:00:00+08:00","application":{"party":"%s","id":"%s"},"decision":"rejected","reason":"incomplete"}\n' "$1" "$2" $PH "$3" >"$W/d.jsonl"
}
decide dec-1 $NARC ap-eph
expect 5 "NARC rejects an ephedrine application" -- E --as $NARC import "$W/d.jsonl"
grep -q "may not decide on application ap-eph of ephedrine" "$W/err" && ok || bad "NARC's decision: $(cat "$W/err")"
decide dec-2 $PC ap-eph
expect 0 "PC rejects it" -- E --as $PC import "$W/d.jsonl"

# ---- a department may not widen scopes with a `party` event: not drop
# its own (which would make it see everything), not widen them, not
# make another regulator unscoped; the same scopes or narrower are fine
self() { # ID SUBJECT NAME [SCOPES-JSON]
  printf '{"type":"party","id":"%s","party":"%s","at":"2026-03-09T08:00:00+08:00","subject":"%s","name":"%s","kind":"regulator","region":"CN-11","licenses":[]%s}\n' \
    "$1" $NARC "$2" "$3" "${4:+,\"scopes\":$4}" >"$W/self.jsonl"
}
head1=$(E head | head -1)
self self-1 $NARC narc
expect 5 "NARC drops its own scopes" -- E --as $NARC import "$W/self.jsonl"
grep -q "may not make $NARC a regulator of every scope" "$W/err" && ok || bad "dropping scopes: $(cat "$W/err")"
self self-2 $NARC narc '["CN-NARC","CN-PC"]'
expect 5 "NARC widens its scopes" -- E --as $NARC import "$W/self.jsonl"
grep -q "may not make $NARC a regulator of scopes CN-PC,CN-NARC" "$W/err" && ok || bad "widening: $(cat "$W/err")"
self self-3 $ALL all
expect 5 "NARC rewrites the unscoped regulator" -- E --as $NARC import "$W/self.jsonl"
self self-4 $PC pc '["CN-PC"]'
expect 5 "NARC rewrites the precursor department" -- E --as $NARC import "$W/self.jsonl"
self self-5 REGULATOR root
expect 5 "NARC rewrites the root regulator" -- E --as $NARC import "$W/self.jsonl"
# nor registers or revokes a key of a party it did not register (it
# could then act as that enterprise, all its substances included)
mkdir -p "$W/k2"
PUB=$("$T" --keys "$W/k2" keygen $MAN | grep -o '[A-Za-z0-9+/]\{43\}=' | head -1)
printf '{"type":"party","id":"kman","party":"%s","at":"2026-03-09T08:00:00+08:00","subject":"%s","name":"man","kind":"manufacturer","region":"CN-11","licenses":["CN-PC-1","CN-PC-3","CN-NARC","CN-PSY-1"],"pubkey":"%s"}\n' $NARC $MAN "$PUB" >"$W/kman.jsonl"
expect 5 "NARC registers a key for the manufacturer" -- E --as $NARC import "$W/kman.jsonl"
grep -q "may not change $MAN, which it did not register" "$W/err" && ok || bad "key for MAN: $(cat "$W/err")"
# nor suspends, or changes the licences of, a party it did not register
printf '{"type":"party","id":"sman","party":"%s","at":"2026-03-09T08:00:00+08:00","subject":"%s","name":"man","kind":"manufacturer","region":"CN-11","licenses":["CN-NARC"],"status":"suspended"}\n' $NARC $MAN >"$W/sman.jsonl"
expect 5 "NARC suspends the manufacturer" -- E --as $NARC import "$W/sman.jsonl"
grep -q "may not change $MAN, which it did not register" "$W/err" && ok || bad "suspend MAN: $(cat "$W/err")"
[ "$(E head | head -1)" = "$head1" ] && ok || bad "a refused party line changed the ledger"
expect 0 "export as NARC after the refusals" -- E --as $NARC export
! grep -q '"substance":"ephedrine"' "$W/out" && ok || bad "NARC sees ephedrine"
self self-6 $NARC "narcotics dept" '["CN-NARC"]'
expect 0 "NARC renames itself within its scope" -- E --as $NARC import "$W/self.jsonl"

# ---- a product registered within one department's scope is changed
# (a new product event for its GTIN) only within that scope
product() { # ID RECORDER SUBSTANCE QTY UNIT
  printf '{"type":"product","id":"%s","party":"%s","at":"2026-03-09T10:00:00+08:00","gtin":"06901234567892","substance":"%s","content":{"qty":"%s","unit":"%s"},"units_per_pack":10,"name":"p","form":"tablet"}\n' \
    "$1" "$2" "$3" "$4" "$5" >"$W/pr.jsonl"
}
product pr-1 $PC ephedrine 10 mg
expect 0 "PC registers an ephedrine product" -- E --as $PC import "$W/pr.jsonl"
product pr-2 $NARC morphine 1 unit
expect 5 "NARC turns it into a morphine product" -- E --as $NARC import "$W/pr.jsonl"
grep -q "may not register product 06901234567892 of ephedrine" "$W/err" && ok || bad "NARC's product: $(cat "$W/err")"
expect 0 "products" -- E --json products
grep -q '"substance":"ephedrine"' "$W/out" && ok || bad "the product changed: $(cat "$W/out")"
product pr-3 $PC ephedrine 20 mg
expect 0 "PC changes its product" -- E --as $PC import "$W/pr.jsonl"

# ---- events naming another record are judged by that record: a status
# change of a precursor permit, an answer to an ephedrine application,
# an ack of an ephedrine alert and a void of an ephedrine sale are the
# precursor department's, not the narcotics department's
printf '{"type":"correction","id":"c-eph","party":"%s","at":"2026-03-08T08:00:00+08:00","corrects":"s-eph","reason":"entered twice"}\n' $MAN >"$W/c.jsonl"
expect 0 "the manufacturer voids its ephedrine sale" -- E --as $MAN import "$W/c.jsonl"
named='"type":"permit_status"\|"type":"alert_ack"\|"type":"application_decision"\|"type":"correction"'
expect 0 "export as NARC after PC's changes" -- E --as $NARC export
! grep "$named" "$W/out" | grep -v '"id":"ack-n"\|"id":"c-ack"' | grep -q . &&
  [ "$(grep -c '"id":"ack-n"\|"id":"c-ack"' "$W/out")" = 2 ] && ok || bad "NARC reads PC's records: $(grep "$named" "$W/out")"
expect 0 "export as PC after its changes" -- E --as $PC export
[ "$(grep -c "$named" "$W/out")" = 4 ] && ok || bad "PC's own records: $(grep "$named" "$W/out")"
expect 0 "history of PC as NARC" -- E --as $NARC --json history $PC
! grep -q 'ps-1\|dec-2\|alert_ack' "$W/out" && ok || bad "NARC reads PC's history: $(cat "$W/out")"
expect 0 "history of the manufacturer as NARC" -- E --as $NARC --json history $MAN
! grep -q c-eph "$W/out" && grep -q d-ok "$W/out" && ok || bad "NARC history of MAN: $(cut -c1-200 "$W/out")"
expect 0 "history of PC as PC" -- E --as $PC --json history $PC
grep -q ps-1 "$W/out" && grep -q dec-2 "$W/out" && ok || bad "PC's own history: $(cat "$W/out")"
E --as $NARC --json prove $PC/ps-1 >"$W/out" 2>"$W/err"
! grep -q PM-PC-1 "$W/out" && ok || bad "NARC proves PC's permit status: $(head -c 300 "$W/out")"
expect 0 "PC proves its permit status" -- E --as $PC --json prove $PC/ps-1
grep -q PM-PC-1 "$W/out" && ok || bad "PC's proof: $(head -c 300 "$W/out")"
expect 0 "export as customs after its import licence" -- E --as $CUS export
grep -q '"permit":"PM-CUS-1"' "$W/out" && ! grep -q '"permit":"PM-PC-1"' "$W/out" && ok || bad "customs export: $(grep permit "$W/out")"
# the checks at entry tell stock: a department checks only within scopes
chk() { E --as "$1" check sale --party $MAN --id x --at 2026-03-08T09:00:00+08:00 --substance "$2" --lot "L-$2" --qty 1000 --unit "$3" --to $PH; }
expect 5 "NARC checks an ephedrine sale" -- chk $NARC ephedrine kg
! grep -q "holds\|NEGATIVE_STOCK" "$W/out" "$W/err" && grep -q "scopes CN-NARC" "$W/err" && ok || bad "NARC's check: $(cat "$W/out" "$W/err")"
expect 2 "PC checks an ephedrine sale" -- chk $PC ephedrine kg
grep -q NEGATIVE_STOCK "$W/out" "$W/err" && ok || bad "PC's check: $(cat "$W/out" "$W/err")"
expect 2 "NARC checks a morphine sale" -- chk $NARC morphine unit
grep -q NEGATIVE_STOCK "$W/out" "$W/err" && ok || bad "NARC's morphine check: $(cat "$W/out" "$W/err")"

# ---- alerts by their evidence: customs reads the alerts of an import
# (of acetone, a precursor), the precursor department too, the
# narcotics department not; a department's credit counts what it may
# read, and says so
printf '{"type":"import","id":"imp-1","party":"%s","at":"2026-03-10T08:00:00+08:00","substance":"acetone","lot":"L-imp","qty":"10","unit":"L","permit":"NO-SUCH","country":"DE"}\n' $MAN >"$W/imp.jsonl"
expect 0 "the manufacturer imports on an unknown permit" -- E --as $MAN import "$W/imp.jsonl"
expect 0 "reconcile after the import" -- E --as $ALL reconcile --as-of 2026-03-20T00:00:00+08:00
for who in $CUS $PC $NARC; do
  E --as $who --json alerts >"$W/al-$who.json" || bad "alerts as $who"
done
grep -q '"id":"imp-1"' "$W/al-$CUS.json" && ok || bad "customs does not see the import's alert: $(cat "$W/al-$CUS.json")"
! grep -v '"id":"imp-1"' "$W/al-$CUS.json" | grep -q . && ok || bad "customs sees more than imports: $(cat "$W/al-$CUS.json")"
grep -q '"id":"imp-1"' "$W/al-$PC.json" && ok || bad "PC does not see the acetone import's alert"
! grep -q '"id":"imp-1"' "$W/al-$NARC.json" && ok || bad "NARC sees the acetone import's alert"
expect 0 "credit of the manufacturer as an unscoped regulator" -- E --as $ALL --json credit $MAN --at 2026-03-20
cp "$W/out" "$W/credit-all.json"
expect 0 "credit of the manufacturer as NARC" -- E --as $NARC --json credit $MAN --at 2026-03-20
python3 - "$W/credit-all.json" "$W/out" <<'PY' && ok || bad "NARC's credit: $(cat "$W/out")"
import json, sys
every, narc = (json.load(open(p)) for p in sys.argv[1:])
assert "scopes" not in every and narc["scopes"] == "CN-NARC", (every, narc)
count = lambda c: {f["factor"]: f["count"] for f in c["factors"]}
assert all(count(narc)[k] <= v for k, v in count(every).items())
assert count(narc) != count(every) and narc["score"] >= every["score"]
PY
expect 0 "credit as NARC in Chinese" -- E --as $NARC --lang zh credit $MAN --at 2026-03-20
grep -q "仅统计本部门职责范围 CN-NARC" "$W/out" && ok || bad "zh credit: $(cat "$W/out")"

# an unscoped regulator still sets a department's scopes
expect 0 "the unscoped regulator widens a department" -- E --as $ALL import "$(
  printf '{"type":"party","id":"w-1","party":"%s","at":"2026-03-09T09:00:00+08:00","subject":"%s","name":"cus","kind":"regulator","region":"CN-11","licenses":[],"scopes":["import","export","CN-PC"]}\n' $ALL $CUS >"$W/w.jsonl"; echo "$W/w.jsonl")"

# ---- through traced: the same rights
"$TD" --data "$D" --listen "$IPC" --log-level error 2>>"$W/traced.log" &
DPID=$!
for _ in $(seq 100); do C head >/dev/null 2>&1 && break; sleep 0.1; done
expect 0 "export as NARC through traced" -- C --as $NARC export
grep -q '"substance":"morphine"' "$W/out" && ! grep -q '"substance":"ephedrine"' "$W/out" && ok || bad "NARC export via traced: $(cut -c1-120 "$W/out")"
expect 0 "balance as PC through traced" -- C --as $PC --json balance $MAN
grep -q ephedrine "$W/out" && ! grep -q morphine "$W/out" && ok || bad "PC balance via traced: $(cat "$W/out")"
expect 5 "reconcile as NARC through traced" -- C --as $NARC reconcile
expect 0 "alerts as NARC through traced" -- C --as $NARC --json alerts
grep -q '"substance":"morphine"' "$W/out" && ! grep -q '"id":"imp-1"\|"substance":"ephedrine"' "$W/out" && ok || bad "NARC's alerts via traced: $(cat "$W/out")"
expect 0 "credit as NARC through traced" -- C --as $NARC credit $MAN --at 2026-03-20
grep -q "counted within scopes CN-NARC" "$W/out" && ok || bad "NARC's credit via traced: $(cat "$W/out")"
permit PM-NARC-2 $NARC purchase_license ephedrine kg >"$W/p.jsonl"
expect 5 "NARC issues an ephedrine licence through traced" -- C --as $NARC import "$W/p.jsonl"
grep -q "may not issue permit PM-NARC-2" "$W/err" && ok || bad "through traced: $(cat "$W/err")"
permit PM-NARC-3 $NARC purchase_license morphine unit >"$W/p.jsonl"
expect 0 "NARC issues a morphine licence through traced" -- C --as $NARC import "$W/p.jsonl"
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null; DPID=
expect 0 "verify" -- E verify
checks_done scopes
