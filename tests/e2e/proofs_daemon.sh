#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proofs through traced (SPEC 8), with real processes on ipc:// only:
#   proofs_daemon.sh TRACECTL TRACED DEMO.jsonl
# traced signs the checkpoints of its commits with its `key` setting;
# checkpoint and prove through the daemon print what they print on the
# ledger folder; a party may not prove another party's event (exit 5);
# every write's reply carries a receipt that `record --receipt` and
# `import --receipt` save and check-proof accepts, and a forged one is
# refused (exit 3); the PUB feed publishes each new signed note, which
# `checkpoint --follow` prints and which verifies with the log key.
set -u
T=$1 TD=$2 DEMO=$3
W=$(mktemp -d /tmp/trace-proofsd-XXXXXX)
D=$W/ledger K=$W/ledger/keys
IPC=ipc://$W/traced.ipc PUB=ipc://$W/pub.ipc
DPID= FPID= HPID=
cleanup() {
  [ -n "$FPID" ] && kill -9 "$FPID" 2>/dev/null
  [ -n "$HPID" ] && kill -9 "$HPID" 2>/dev/null
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
C() { "$T" --connect "$IPC" --keys "$K" "$@"; }
E() { "$T" --data "$D" "$@"; }
start() {
  "$TD" --data "$D" --listen "$IPC" --pub "$PUB" --log-level debug \
    --max-message 65536 "$@" \
    2>>"$W/traced.log" &
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

# 1. the daemon's `key` setting is the log key: a key outside the folder
#    signs the checkpoints its commits store
"$T" witness --key "$W/daemon.key" --public-key >/dev/null 2>&1 # makes a key
printf 'key = %s\n' "$W/daemon.key" >"$W/traced.conf"
start --config "$W/traced.conf"
expect 0 "checkpoint --public-key through traced" -- C checkpoint --public-key
VK=$(cat "$W/out")
FOLDER_VK=$(E checkpoint --public-key)
[ "$VK" != "$FOLDER_VK" ] && ok || bad "the daemon's log key is the folder's traced.key"
loss() { C --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss "$@"; }
loss >/dev/null || bad "record through traced"
old=$(C checkpoint | sed -n 2p)
loss >/dev/null || bad "record through traced"
C checkpoint >"$W/cp.txt" && n=$(sed -n 2p "$W/cp.txt") && ok || bad "checkpoint through traced"
expect 0 "prove consistency through traced" -- C --as $DIST prove --consistency "$old" "$n" --out "$W/cons.json"
expect 0 "the new checkpoint verifies with the daemon's key" -- "$T" check-proof "$W/cons.json" --log-key "$VK"
expect 3 "... and not with the folder's" -- "$T" check-proof "$W/cons.json" --log-key "$FOLDER_VK"

# 2. the same output and exit codes as on the ledger folder (the ledger
#    folder's owner has every right; through traced the regulator)
for cmd in "checkpoint" "checkpoint --size 1" "checkpoint --size 2" "checkpoint --size $n" \
  "prove $MAN/sal-0001" "prove $MAN/nope" "prove --history $DIST" \
  "prove --consistency 1 $n" "prove --consistency $n 1" "prove $MAN" "checkpoint --size x"; do
  for j in "" "--json"; do
    E $j $cmd >"$W/e.out" 2>"$W/e.err"; ec=$?
    C $j $cmd >"$W/c.out" 2>"$W/c.err"; cc=$?
    if [ "$ec" = "$cc" ] && cmp -s "$W/e.out" "$W/c.out" && cmp -s "$W/e.err" "$W/c.err"; then ok; else
      bad "'$j $cmd' differs through the daemon (exit $ec vs $cc)"
      diff "$W/e.out" "$W/c.out" | head -4; diff "$W/e.err" "$W/c.err" | head -4
    fi
  done
done
# --public-key differs by design here (the daemon's own key): its form
grep -q "^trace/REGULATOR/[0-9a-f]\{32\}+[0-9a-f]\{8\}+A[A-Za-z0-9+/]\{43\}$" <<<"$VK" && ok || bad "vkey form: $VK"

# 3. rights: an event's proof for its recorder and regulators only
expect 0 "a party proves its own event" -- C --as $MAN prove "$MAN/sal-0001" --out "$W/own.json"
expect 0 "check-proof of it" -- "$T" check-proof "$W/own.json" --log-key "$VK"
expect 5 "a party proves another's event" -- C --as $DIST prove "$MAN/sal-0001"
grep -q "permission denied" "$W/err" && ok || bad "refusal: $(cat "$W/err")"
[ ! -s "$W/out" ] && ok || bad "a refused proof printed something"
expect 5 "a party proves another's chain" -- C --as $DIST prove --history "$MAN"
expect 0 "a party proves its own chain" -- C --as $DIST prove --history "$DIST" --out "$W/hist.json"
expect 0 "check-proof of the chain" -- "$T" check-proof "$W/hist.json" --log-key "$VK"
expect 0 "any party reads the checkpoint" -- C --as $DIST checkpoint
expect 0 "any party proves consistency" -- C --as $DIST prove --consistency 1 "$n"

# 4. receipts: every write's reply carries one; record and import save
#    it (--receipt), check-proof accepts it with the log key alone
loss --receipt "$W/rec.json" >/dev/null || bad "record --receipt through traced"
expect 0 "check-proof of a record's receipt" -- "$T" check-proof "$W/rec.json" --log-key "$VK"
last=$(C checkpoint | sed -n 2p)
grep -q "^ok: receipt of 1 entry (journal positions $last to $last) in 1 commit; 1 inclusion proof checked" "$W/out" && ok ||
  bad "record receipt: $(cat "$W/out")"
python3 - "$W/rec.json" <<'PY' && ok || bad "receipt fields: $(head -c 400 "$W/rec.json")"
import base64, hashlib, json, sys
b = json.load(open(sys.argv[1]))
assert b["bundle"] == "trace.v1.receipt" and b["count"] == 1 and b["first_seq"] == b["last_seq"]
(c,) = b["commits"]
(lf,) = c["leaves"]
assert lf["leaf_index"] == b["last_seq"] - 1 and c["tree_size"] == b["tree_size"] >= b["last_seq"]
assert lf["leaf_hash"] == hashlib.sha256(b"\0" + base64.b64decode(lf["entry"])).hexdigest()
assert all(len(h) == 64 for h in lf["inclusion"]) and "checkpoint" not in c
PY
# imports in chunks of three quarters of max-message: commits of more
# than 64 entries prove their first and last; small ones every entry
gen() { # N PREFIX
  python3 - "$1" "$2" "$DIST" <<'PY'
import json, sys
n, pre, party = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    print(json.dumps({"type": "loss", "id": "%s-%04d" % (pre, i), "party": party,
                      "at": "2026-03-01T10:00:00+08:00", "substance": "ephedrine",
                      "lot": "EPH-2601-A", "qty": "0.001", "unit": "kg", "reason": "loss"}))
PY
}
gen 400 big >"$W/big.jsonl"
gen 10 small >"$W/small.jsonl"
expect 0 "import --receipt through traced (several commits)" -- C --as $DIST import --receipt "$W/big.json" "$W/big.jsonl"
expect 0 "check-proof of the import's receipt" -- "$T" check-proof "$W/big.json" --log-key "$VK"
python3 - "$W/big.json" <<'PY' && ok || bad "import receipt: $(cat "$W/out")"
import json, sys
b = json.load(open(sys.argv[1]))
cs = b["commits"]
assert b["count"] == 400 and len(cs) >= 2, (b["count"], len(cs))
assert sum(c["last_seq"] - c["first_seq"] + 1 for c in cs) == 400
for c in cs:
    n = c["last_seq"] - c["first_seq"] + 1
    assert len(c["leaves"]) == (n if n <= 64 else 2), (n, len(c["leaves"]))
# each commit's own checkpoint, the last one at top level
assert all("checkpoint" in c for c in cs[:-1]) and "checkpoint" not in cs[-1]
PY
expect 0 "import --receipt of a few events through traced" -- C --as $DIST import --receipt "$W/small.json" "$W/small.jsonl"
expect 0 "check-proof of it" -- "$T" check-proof "$W/small.json" --log-key "$VK"
grep -q "receipt of 10 entries .* 10 inclusion proofs checked" "$W/out" && ok || bad "small import: $(cat "$W/out")"
expect 0 "importing it again: nothing appended" -- C --as $DIST import --receipt "$W/again.json" "$W/small.jsonl"
[ ! -e "$W/again.json" ] && grep -q "no receipt written" "$W/err" && ok || bad "a receipt of nothing: $(cat "$W/err")"

# forged receipts: refused with exit 3, naming what failed
forge() { # NAME FILE PYTHON-ON-b WANT-IN-MESSAGE
  python3 - "$2" "$W/forged.json" "$3" <<'PY'
import json, sys, base64
b = json.load(open(sys.argv[1]))
def flip_hex(s):
    return ("0" if s[0] != "0" else "1") + s[1:]
def flip_b64(s, i):
    raw = bytearray(base64.b64decode(s)); raw[i % len(raw)] ^= 1; return base64.b64encode(bytes(raw)).decode()
exec(sys.argv[3])
json.dump(b, open(sys.argv[2], "w"))
PY
  expect 3 "forged receipt: $1" -- "$T" check-proof "$W/forged.json" --log-key "$VK"
  grep -q "$4" "$W/err" && ok || bad "forged receipt $1: $(cat "$W/err")"
}
forge "a changed leaf hash" "$W/rec.json" 'lf = b["commits"][0]["leaves"][0]; lf["leaf_hash"] = flip_hex(lf["leaf_hash"])' "leaf_hash is not the hash of the entry"
forge "a changed proof hash" "$W/small.json" 'lf = b["commits"][0]["leaves"][3]; lf["inclusion"][0] = flip_hex(lf["inclusion"][0])' "inclusion proof does not lead"
forge "a changed entry" "$W/rec.json" 'import hashlib; lf = b["commits"][0]["leaves"][0]; lf["entry"] = flip_b64(lf["entry"], 30); lf["leaf_hash"] = hashlib.sha256(b"\0" + base64.b64decode(lf["entry"])).hexdigest()' "inclusion proof does not lead"
forge "an entry left out" "$W/small.json" 'del b["commits"][0]["leaves"][4]' "left out"
forge "a large commit's last entry left out" "$W/big.json" 'del b["commits"][0]["leaves"][-1]' "last entry is not proven"
forge "an earlier checkpoint changed" "$W/big.json" 'c = b["commits"][0]; lines = c["checkpoint"].split("\n"); lines[1] = str(int(lines[1]) + 1); c["checkpoint"] = "\n".join(lines)' "not signed by the log key"
forge "a wider range claimed" "$W/rec.json" 'b["commits"][0]["first_seq"] -= 1; b["first_seq"] -= 1; b["count"] += 1' "first entry is not proven\|left out"
expect 3 "a receipt under the folder's key" -- "$T" check-proof "$W/rec.json" --log-key "$FOLDER_VK"

# 5. the PUB feed: each commit's signed note, printed by checkpoint
#    --follow; two of them and the consistency proof between them check
#    with the log key alone
# (tracectl itself in the background, not the function C: killing the
# subshell that runs a function would leave tracectl following)
"$T" --connect "$IPC" --keys "$K" --json checkpoint --follow >"$W/follow.jsonl" 2>"$W/follow.err" &
FPID=$!
# and head --follow, a subscriber of the older "head " topic, beside it
"$T" --connect "$IPC" --keys "$K" head --follow >"$W/heads.txt" 2>&1 &
HPID=$!
for _ in $(seq 50); do [ -s "$W/follow.jsonl" ] && [ -s "$W/heads.txt" ] && break; sleep 0.1; done
loss >/dev/null && loss >/dev/null || bad "records while following"
for _ in $(seq 50); do [ "$(wc -l <"$W/follow.jsonl")" -ge 3 ] && break; sleep 0.1; done
for _ in $(seq 50); do [ "$(wc -l <"$W/heads.txt")" -ge 3 ] && break; sleep 0.1; done
kill "$FPID" "$HPID" 2>/dev/null; wait "$FPID" "$HPID" 2>/dev/null; FPID= HPID=
[ "$(grep -c "entries, head" "$W/heads.txt")" -eq 3 ] && ok || bad "head --follow printed: $(cat "$W/heads.txt")"
[ "$(wc -l <"$W/follow.jsonl")" -eq 3 ] && ok || bad "checkpoint --follow printed: $(cat "$W/follow.jsonl" "$W/follow.err")"
python3 - "$W/follow.jsonl" >"$W/sizes" <<'PY' && ok || bad "the followed checkpoints: $(cat "$W/follow.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sizes = [r["tree_size"] for r in rows]
assert sizes == sorted(sizes) and len(set(sizes)) == 3, sizes
for r in rows:
    lines = r["note"].split("\n")
    assert lines[0] == r["origin"] and int(lines[1]) == r["tree_size"] and lines[3] == "", lines
print(sizes[1], sizes[2])
PY
read -r s1 s2 <"$W/sizes"
C --as $DIST prove --consistency "$s1" "$s2" --out "$W/c12.json" || bad "prove --consistency $s1 $s2"
python3 - "$W/follow.jsonl" "$W/c12.json" "$W/fed.json" <<'PY' || bad "a bundle of the published notes"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = json.load(open(sys.argv[2]))
# the notes as published, not as the proof came
b["old_checkpoint"], b["new_checkpoint"] = rows[1]["note"], rows[2]["note"]
json.dump(b, open(sys.argv[3], "w"))
PY
expect 0 "the published notes verify with the log key" -- "$T" check-proof "$W/fed.json" --log-key "$VK"
expect 3 "... and not with another" -- "$T" check-proof "$W/fed.json" --log-key "$FOLDER_VK"
grep -q "checkpoint.*was ignored" "$W/follow.err" && bad "a published note was ignored: $(cat "$W/follow.err")" || ok

stop
# 6. on the ledger folder: the same bundle, read from the ledger after
#    the append, signed with the folder's log key
gen 100 emb >"$W/emb.jsonl"
expect 0 "import --receipt on the folder" -- E --as $DIST import --receipt "$W/emb.json" "$W/emb.jsonl"
expect 0 "check-proof of it (the folder's log key)" -- "$T" check-proof "$W/emb.json" --log-key "$FOLDER_VK"
grep -q "receipt of 100 entries .* in 1 commit; 2 inclusion proofs checked" "$W/out" && ok || bad "embedded import receipt: $(cat "$W/out")"
expect 0 "record --receipt on the folder" -- E --as $DIST record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss --receipt "$W/erec.json"
expect 0 "check-proof of it" -- "$T" check-proof "$W/erec.json" --log-key "$FOLDER_VK"
expect 1 "import --dry-run --receipt" -- E --as $DIST import --dry-run --receipt "$W/x.json" "$W/emb.jsonl"

checks_done proofs_daemon
