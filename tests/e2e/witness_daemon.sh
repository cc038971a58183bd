#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Witnesses through traced (SPEC 8), with real processes on ipc:// only:
#   witness_daemon.sh TRACECTL TRACED DEMO.jsonl
# `witness --log URL` reads the checkpoint and the consistency proof
# through the typed operations, pins the key traced says Hello with,
# cosigns, and hands the cosignature in (the cosign operation, stored by
# traced's writer); traced serves it with the checkpoint and check-proof
# counts it.  A second run after appends cosigns after checking
# consistency.  A cosignature of a checkpoint traced did not sign is
# refused and nothing is stored; an auditor without a party key cosigns
# a copy of the folder and a regulator hands the cosignature in
# (`cosign`); more than 31 witnesses per checkpoint are refused (exit
# 5); and the rollback drill: traced stopped, a backup restored, other
# events written through traced: the witness refuses with both signed
# notes as evidence (exit 3).
set -u
T=$1 TD=$2 DEMO=$3
W=$(mktemp -d /tmp/trace-witd-XXXXXX)
D=$W/ledger K=$W/keys
IPC=ipc://$W/traced.ipc
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
C() { "$T" --connect "$IPC" --keys "$K" "$@"; }
E() { "$T" --data "$D" "$@"; }
start() {
  "$TD" --data "$D" --listen "$IPC" --config "$W/traced.conf" \
    --log-level debug 2>>"$W/traced.log" &
  DPID=$!
  for _ in $(seq 100); do
    C head >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  bad "traced did not start"; cat "$W/traced.log"; exit 1
}
stop() {
  kill -TERM "$DPID"
  local st=0
  wait "$DPID" || st=$?
  DPID=
  [ "$st" -eq 0 ] && ok || bad "traced exited $st on SIGTERM"
}

MAN=91310000MA1K000001 DIST=91320000MA1K000002
"$T" --data "$D" init >/dev/null && "$T" --data "$D" import --provision-keys "$DEMO" >/dev/null 2>&1 ||
  { echo "FAIL: setup"; exit 1; }
# the parties' keys outside the folder (the drill replaces the folder)
cp -r "$D/keys" "$K"
# the daemon's log key outside the folder too, not the folder's
"$T" witness --key "$W/daemon.key" --public-key >/dev/null 2>&1
printf 'key = %s\n' "$W/daemon.key" >"$W/traced.conf"
FOLDER_VK=$(E checkpoint --public-key)
loss() { C --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss "$@" >/dev/null; }
theft() { C --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 5 --unit kg --reason theft >/dev/null; }
mkdir -p "$W/w"
"$T" witness --key "$W/w/auditor.key" --public-key >"$W/wv" 2>/dev/null || bad "witness key"
WV=$(cat "$W/wv")
# the witness through traced: requests signed as a registered party
WIT() { "$T" --keys "$K" --as $DIST witness --log "$IPC" --key "$W/w/auditor.key" --state "$W/wstate" "$@"; }
N0=$(E head | cut -d' ' -f1)

start
VK=$(C checkpoint --public-key)
[ -n "$VK" ] && [ "$VK" != "$FOLDER_VK" ] && ok || bad "the daemon's log key: $VK"

# 1. a witness through traced cosigns; traced serves the cosignature
loss || bad "record"
n1=$(C checkpoint | sed -n 2p)
expect 0 "the witness cosigns through traced" -- WIT
grep -q "^cosigned the checkpoint of $n1 entries of trace/REGULATOR/" "$W/out" && ok || bad "witness: $(cat "$W/out")"
[ "$(cat "$W/wstate"/*.vkey)" = "$VK" ] && ok || bad "the pinned key is not the daemon's: $(cat "$W/wstate"/*.vkey)"
C checkpoint >"$W/cp1.txt" && grep -q "^— auditor " "$W/cp1.txt" && ok || bad "traced does not serve the cosignature: $(cat "$W/cp1.txt")"
E checkpoint | grep -q "^— auditor " && ok || bad "the cosignature is not in the ledger folder"
expect 0 "prove through traced" -- C --as $MAN prove "$MAN/sal-0001" --out "$W/ev1.json"
expect 0 "check-proof with the witness" -- "$T" check-proof "$W/ev1.json" --log-key "$VK" --witness-key "auditor=$WV" --min-cosigs 1
expect 3 "... wanting 2 cosignatures" -- "$T" check-proof "$W/ev1.json" --log-key "$VK" --witness-key "$WV" --min-cosigs 2
expect 0 "the witness again: nothing new" -- WIT
grep -q "already cosigned" "$W/out" && ok || bad "again: $(cat "$W/out")"
# the log key is the daemon's: the folder's refused, another pinned refused
expect 3 "a witness given the folder's key" -- "$T" --keys "$K" --as $DIST witness --log "$IPC" --key "$W/w/auditor.key" --state "$W/other-state" --log-key "$FOLDER_VK"
grep -q "not signed by the log key" "$W/err" && ok || bad "folder key: $(cat "$W/err")"
mkdir -p "$W/pinned" && cp "$W/wstate"/* "$W/pinned/" && for f in "$W/pinned"/*.vkey; do echo "$FOLDER_VK" >"$f"; done
expect 3 "a witness that pinned another key" -- "$T" --keys "$K" --as $DIST witness --log "$IPC" --key "$W/w/auditor.key" --state "$W/pinned"
grep -q "not the one pinned" "$W/err" && ok || bad "pinned: $(cat "$W/err")"
mkdir -p "$W/nokeys"
expect 5 "a witness without a party key" -- "$T" --keys "$W/nokeys" --as NOBODY witness --log "$IPC" --key "$W/w/auditor.key" --state "$W/other-state"

# 2. after more appends, the witness cosigns again after checking the
#    consistency proof traced gives
loss && loss || bad "records"
n2=$(C checkpoint | sed -n 2p)
expect 0 "the witness cosigns the larger checkpoint" -- WIT
grep -q "^cosigned the checkpoint of $n2 entries" "$W/out" && ok || bad "second run: $(cat "$W/out")"
grep -q "debug.*ran prove: exit 0" "$W/traced.log" && ok || bad "no consistency proof was asked of traced"
expect 0 "prove after the second run" -- C --as $MAN prove "$MAN/sal-0001" --out "$W/ev2.json"
expect 0 "check-proof with the witness" -- "$T" check-proof "$W/ev2.json" --log-key "$VK" --witness-key "auditor=$WV" --min-cosigs 1
grep -q "\"tree_size\": *$n2" "$W/ev2.json" && ok || bad "the bundle's tree size is not $n2"

# 3. a cosignature of a checkpoint traced did not sign: another ledger's
#    checkpoint of the same size, cosigned by the same witness
"$T" --data "$W/other" init >/dev/null && "$T" --data "$W/other" import --provision-keys "$DEMO" >/dev/null 2>&1 || bad "other ledger"
[ "$("$T" --data "$W/other" head | cut -d' ' -f1)" = "$N0" ] && ok || bad "the other ledger's size"
expect 0 "the witness cosigns the other ledger" -- "$T" witness --log "$W/other" --key "$W/w/auditor.key" --state "$W/ostate"
C checkpoint --size "$N0" >"$W/before.txt" || bad "checkpoint --size $N0"
expect 3 "traced refuses a cosignature of a note it did not sign" -- C --as $DIST cosign "$W/ostate"/*.cosigned --witness-key "$WV"
grep -q "not the one this ledger stored" "$W/err" && ok || bad "foreign note: $(cat "$W/err")"
C checkpoint --size "$N0" | cmp -s - "$W/before.txt" && ok || bad "something was stored for a foreign note"
# a forged line, and the right note under another key: refused too
python3 - "$W/wstate"/*.cosigned "$W/forged.txt" <<'PY' || bad "forging"
import base64, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
for i, l in enumerate(lines):
    if l.startswith("\u2014 auditor "):
        raw = bytearray(base64.b64decode(l.split(" ")[2]))
        raw[20] ^= 1  # a byte of the signature
        lines[i] = "\u2014 auditor " + base64.b64encode(bytes(raw)).decode()
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
PY
cmp -s "$W/wstate"/*.cosigned "$W/forged.txt" && bad "nothing forged" || ok
expect 3 "a forged cosignature" -- C --as $DIST cosign "$W/forged.txt" --witness-key "$WV"
expect 3 "a cosignature under another witness key" -- C --as $DIST cosign "$W/wstate"/*.cosigned --witness-key "$FOLDER_VK"
expect 2 "a malformed witness key" -- C --as $DIST cosign "$W/wstate"/*.cosigned --witness-key "nope"

# 4. an outside auditor without a party key: it cosigns a copy of the
#    folder (the daemon's key given), a regulator hands the cosignature in
loss || bad "record"
n3=$(C checkpoint | sed -n 2p)
E backup "$W/copy" >/dev/null || bad "copy of the folder"
"$T" witness --key "$W/w/outside.key" --public-key >"$W/ov" 2>/dev/null || bad "outside key"
OV=$(cat "$W/ov")
expect 3 "the auditor on the copy without the daemon's key" -- "$T" witness --log "$W/copy" --key "$W/w/outside.key" --state "$W/xstate"
rm -rf "$W/xstate"
expect 0 "the auditor cosigns the copy" -- "$T" witness --log "$W/copy" --key "$W/w/outside.key" --state "$W/xstate" --log-key "$VK"
expect 0 "a regulator hands the auditor's cosignature in" -- C cosign "$W/xstate"/*.cosigned --witness-key "outside=$OV"
grep -q "^stored the cosignature of outside for the checkpoint of $n3 entries" "$W/out" && ok || bad "cosign: $(cat "$W/out")"
C checkpoint | grep -q "^— outside " && ok || bad "traced does not serve the auditor's cosignature"
expect 0 "prove" -- C --as $MAN prove "$MAN/sal-0001" --out "$W/ev3.json"
expect 0 "check-proof with the auditor" -- "$T" check-proof "$W/ev3.json" --log-key "$VK" --witness-key "$OV" --min-cosigs 1

# 5. flooding: at most 31 witnesses per checkpoint
loss || bad "record"
n4=$(C checkpoint | sed -n 2p)
for i in $(seq -w 1 32); do
  "$T" witness --key "$W/w/f$i.key" --public-key >/dev/null 2>&1 || bad "key f$i"
  "$T" --keys "$K" --as $MAN witness --log "$IPC" --key "$W/w/f$i.key" --state "$W/fstate$i" >"$W/out" 2>"$W/err"
  echo $? >>"$W/codes"
done
[ "$(head -31 "$W/codes" | sort -u)" = "0" ] && ok || bad "31 witnesses: $(tr '\n' ' ' <"$W/codes")"
[ "$(tail -1 "$W/codes")" = "5" ] && grep -q "31 witnesses, the most stored" "$W/err" && ok ||
  bad "the 32nd witness: $(tail -1 "$W/codes") $(cat "$W/err")"
C checkpoint --size "$n4" >"$W/cp4.txt"
[ "$(grep -c "^— f" "$W/cp4.txt")" -eq 31 ] && ! grep -q "^— f32 " "$W/cp4.txt" && ok || bad "stored: $(grep -c "^— f" "$W/cp4.txt")"
expect 0 "a checkpoint with 31 cosignatures still checks" -- C --as $MAN prove "$MAN/sal-0001" --out "$W/ev4.json"
F01=$("$T" witness --key "$W/w/f01.key" --public-key)
F31=$("$T" witness --key "$W/w/f31.key" --public-key)
expect 0 "check-proof of it" -- "$T" check-proof "$W/ev4.json" --log-key "$VK" --witness-key "$F01" --witness-key "$F31" --min-cosigs 2
# a stored witness hands its cosignature in again: allowed
expect 0 "a stored witness cosigns again" -- C --as $MAN cosign "$W/fstate01"/*.cosigned --witness-key "$F01"

# 6. the rollback drill: a backup taken before later cosigned
#    checkpoints is restored and other events written through traced
stop
E backup "$W/bk" >/dev/null || bad "backup"
start
loss && loss || bad "records"
expect 0 "the witness cosigns the later checkpoint" -- WIT
stop
rm -rf "$D" && cp -r "$W/bk" "$D"
start
theft || bad "a different event"
expect 3 "the witness refuses the rolled-back log" -- WIT
grep -q "rollback" "$W/err" && ok || bad "rollback: $(cat "$W/err")"
ev=$(ls "$W/wstate"/*evidence* 2>/dev/null | tail -1)
[ -n "$ev" ] && [ "$(grep -c "^— trace/REGULATOR/" "$ev")" -ge 2 ] && ok || bad "the evidence does not hold both notes: $(cat "$ev" 2>/dev/null)"
[ -n "$ev" ] && [ "$(grep -c "^trace/REGULATOR/" "$ev")" -eq 2 ] && ok || bad "evidence: two checkpoints"
theft && theft && theft || bad "more different events"
expect 3 "the witness refuses the rewritten log" -- WIT
grep -q "does not extend" "$W/err" && ok || bad "fork: $(cat "$W/err")"
stop

checks_done witness_daemon
