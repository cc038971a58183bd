#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proofs anyone can check (SPEC 8), with real processes:
#   proofs.sh TRACECTL DEMO.jsonl
# checkpoints after every append, the log's verifier key, event, history
# and consistency bundles checked offline with no ledger, forged bundles
# refused (exit 3) naming what failed, a witness cosigning, and the
# rollback drill: a ledger restored from a backup and written again is
# refused by the witness with both signed checkpoints as evidence.
set -u
T=$1 DEMO=$2
W=$(mktemp -d /tmp/trace-proofs-XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
MAN=91310000MA1K000001 DIST=91320000MA1K000002

"$T" --data "$D" init >/dev/null && "$T" --data "$D" import --provision-keys "$DEMO" >/dev/null 2>&1 || bad "setup"
size() { "$T" --data "$D" head | cut -d' ' -f1; }

# the checkpoint: origin, size, root, blank line, the log's signature
expect 0 "checkpoint" -- "$T" --data "$D" checkpoint
n=$(size)
sed -n 1p "$W/out" | grep -q "^trace/REGULATOR/[0-9a-f]\{32\}$" && sed -n 2p "$W/out" | grep -qx "$n" &&
  sed -n 4p "$W/out" | grep -qx "" && sed -n 5p "$W/out" | grep -q "^— trace/REGULATOR/" && ok ||
  bad "checkpoint note: $(cat "$W/out")"
expect 0 "checkpoint --public-key" -- "$T" --data "$D" checkpoint --public-key
VK=$(cat "$W/out")
echo "$VK" | grep -q "^trace/REGULATOR/[0-9a-f]\{32\}+[0-9a-f]\{8\}+A[A-Za-z0-9+/]\{43\}$" && ok || bad "vkey form: $VK"
expect 0 "checkpoint --size 1 (init's)" -- "$T" --data "$D" checkpoint --size 1
expect 4 "checkpoint of a size no commit ended at" -- "$T" --data "$D" checkpoint --size 2
expect 1 "checkpoint --size x" -- "$T" --data "$D" checkpoint --size x
expect 0 "checkpoint --json" -- "$T" --data "$D" --json checkpoint
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tree_size"] == int(sys.argv[2]) and len(d["root"]) == 64' "$W/out" "$n" && ok ||
  bad "checkpoint --json: $(cat "$W/out")"

# an event's bundle, checked with nothing but the log key
expect 0 "prove an event" -- "$T" --data "$D" prove "$MAN/sal-0001" --out "$W/ev.json"
python3 - "$W/ev.json" <<'PY' && ok || bad "bundle fields"
import json, sys
b = json.load(open(sys.argv[1]))
for f in ("leaf_index", "tree_size", "leaf_hash", "inclusion", "entry", "checkpoint", "event", "event_bytes", "signature", "registration"):
    assert f in b, f
assert b["event"]["id"] == "sal-0001" and all(len(h) == 64 for h in b["inclusion"])
PY
expect 0 "check-proof of an event" -- "$T" check-proof "$W/ev.json" --log-key "$VK"
grep -q "^ok: event $MAN/sal-0001 (sale) is leaf [0-9]* of the $n-entry tree; signed by $MAN" "$W/out" && ok || bad "check-proof said: $(cat "$W/out")"

# forged bundles: each refused with exit 3, naming what failed
forge() { # NAME PYTHON-EXPRESSION-ON-b WANT-IN-MESSAGE
  python3 - "$W/ev.json" "$W/forged.json" "$2" <<'PY'
import json, sys, base64
b = json.load(open(sys.argv[1]))
def flip_b64(s, i):
    raw = bytearray(base64.b64decode(s)); raw[i % len(raw)] ^= 1; return base64.b64encode(bytes(raw)).decode()
def flip_hex(s):
    return ("0" if s[0] != "0" else "1") + s[1:]
exec(sys.argv[3])
json.dump(b, open(sys.argv[2], "w"))
PY
  expect 3 "forged: $1" -- "$T" check-proof "$W/forged.json" --log-key "$VK"
  grep -q "$3" "$W/err" && ok || bad "forged $1: $(cat "$W/err")"
}
forge "a changed entry byte" 'b["entry"] = flip_b64(b["entry"], 40)' "event: leaf_hash is not the hash of the entry"
forge "a changed entry, leaf hash recomputed" 'import hashlib; b["entry"] = flip_b64(b["entry"], 40); b["leaf_hash"] = hashlib.sha256(b"\0" + base64.b64decode(b["entry"])).hexdigest()' "inclusion proof does not lead"
forge "a changed proof hash" 'b["inclusion"][0] = flip_hex(b["inclusion"][0])' "inclusion proof does not lead"
forge "a wrong leaf index" 'b["leaf_index"] += 1' "event: "
forge "a wrong tree size" 'b["tree_size"] += 1' "tree_size: not the checkpoint"
forge "an edited event" 'b["event"]["qty"] = "1"' "the JSON is not the stored event"
forge "a changed checkpoint root" 'lines = b["checkpoint"].split("\n"); lines[2] = base64.b64encode(b"\1" * 32).decode(); b["checkpoint"] = "\n".join(lines)' "not signed by the log key"
forge "another signature" 'b["signature"]["sig"] = flip_b64(b["signature"]["sig"], 3)' "recorder's signature over the group does not verify"
forge "another key" 'b["signature"]["pubkey"] = base64.b64encode(b"\7" * 32).decode()' "signature: the key is not the one the entry names"
forge "a group without the event" 'b["signature"]["group"][b["signature"]["position"]] = "00" * 32' "the group does not hold the event"
forge "a registration of something else" 'b["registration"] = b["signature"]["signer"]' "registration"
echo '{"bundle":"trace.v1.event","checkpoint":"x' >"$W/trunc.json"
expect 3 "a truncated bundle" -- "$T" check-proof "$W/trunc.json" --log-key "$VK"
echo 'not json' >"$W/nj.json"
expect 3 "not JSON" -- "$T" check-proof "$W/nj.json" --log-key "$VK"
# a checkpoint signed by another log key: the same bundle under another
# ledger's key is refused
"$T" --data "$W/other" init >/dev/null
OVK=$("$T" --data "$W/other" checkpoint --public-key)
expect 3 "another log's key" -- "$T" check-proof "$W/ev.json" --log-key "$OVK"
grep -q "origin is not the log key's name\|not signed by the log key" "$W/err" && ok || bad "other log key: $(cat "$W/err")"
expect 1 "check-proof without --log-key" -- "$T" check-proof "$W/ev.json"
expect 4 "check-proof of a missing file" -- "$T" check-proof "$W/none.json" --log-key "$VK"
expect 4 "prove an unknown event" -- "$T" --data "$D" prove "$MAN/nope"
expect 1 "prove without a slash" -- "$T" --data "$D" prove "$MAN"

# a party's whole chain
expect 0 "prove --history" -- "$T" --data "$D" prove --history "$DIST" --out "$W/hist.json"
expect 0 "check-proof of a history" -- "$T" check-proof "$W/hist.json" --log-key "$VK"
grep -q "^ok: $DIST's chain: entries 1 to [0-9]*, linked" "$W/out" && ok || bad "history: $(cat "$W/out")"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); del b["entries"][1]; json.dump(b, open(sys.argv[2], "w"))' "$W/hist.json" "$W/hist-gap.json"
expect 3 "a history with an entry left out" -- "$T" check-proof "$W/hist-gap.json" --log-key "$VK"
grep -q "chain is broken" "$W/err" && ok || bad "gap: $(cat "$W/err")"

# consistency between two checkpoints
old=$n
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss >/dev/null
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss >/dev/null
new=$(size)
expect 0 "prove --consistency" -- "$T" --data "$D" prove --consistency "$old" "$new"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["old_size"] == int(sys.argv[2]) and b["new_size"] == int(sys.argv[3]) and all(len(h) == 64 for h in b["proof"])' "$W/out" "$old" "$new" && ok || bad "consistency fields"
cp "$W/out" "$W/cons.json"
expect 0 "check-proof of consistency" -- "$T" check-proof "$W/cons.json" --log-key "$VK"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["proof"][0] = ("0" if b["proof"][0][0] != "0" else "1") + b["proof"][0][1:]; json.dump(b, open(sys.argv[2], "w"))' "$W/cons.json" "$W/cons-bad.json"
expect 3 "a forged consistency proof" -- "$T" check-proof "$W/cons-bad.json" --log-key "$VK"

# a witness cosigns; its cosignature is served with the checkpoint
mkdir -p "$W/w"
expect 0 "witness key" -- "$T" witness --key "$W/w/auditor.key" --public-key
WV=$(cat "$W/out")
expect 0 "witness cosigns" -- "$T" witness --log "$D" --key "$W/w/auditor.key" --state "$W/wstate"
"$T" --data "$D" checkpoint | grep -q "^— auditor " && ok || bad "the cosignature is not served with the checkpoint"
"$T" --data "$D" prove "$MAN/sal-0001" --out "$W/ev2.json"
expect 0 "check-proof with the witness" -- "$T" check-proof "$W/ev2.json" --log-key "$VK" --witness-key "auditor=$WV" --min-cosigs 1
expect 3 "check-proof wanting 2 cosignatures" -- "$T" check-proof "$W/ev2.json" --log-key "$VK" --witness-key "$WV" --min-cosigs 2
expect 3 "check-proof wanting an unknown witness" -- "$T" check-proof "$W/ev.json" --log-key "$VK" --witness-key "$WV" --min-cosigs 1

# the rollback drill: back up, the witness cosigns later checkpoints,
# restore the backup and write other events: refused with evidence
"$T" --data "$D" backup "$W/bk" >/dev/null || bad "backup"
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss >/dev/null
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss >/dev/null
expect 0 "witness cosigns the later checkpoint" -- "$T" witness --log "$D" --key "$W/w/auditor.key" --state "$W/wstate"
rm -rf "$D" && cp -r "$W/bk" "$D"
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 5 --unit kg --reason theft >/dev/null
expect 3 "witness refuses a rolled-back ledger" -- "$T" witness --log "$D" --key "$W/w/auditor.key" --state "$W/wstate"
grep -q "rollback" "$W/err" && ls "$W/wstate"/*evidence* >/dev/null 2>&1 && ok || bad "rollback: $(cat "$W/err")"
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 5 --unit kg --reason theft >/dev/null
"$T" --data "$D" --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 5 --unit kg --reason theft >/dev/null
expect 3 "witness refuses a rewritten ledger" -- "$T" witness --log "$D" --key "$W/w/auditor.key" --state "$W/wstate"
grep -q "does not extend" "$W/err" && ok || bad "fork: $(cat "$W/err")"
ev=$(ls "$W/wstate"/*evidence* | tail -1)
[ "$(grep -c "^— trace/REGULATOR/" "$ev")" -ge 2 ] && ok || bad "the evidence does not hold both signed checkpoints: $(cat "$ev")"

checks_done proofs
