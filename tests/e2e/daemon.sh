#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of traced with real processes:
#   daemon.sh TRACECTL TRACED RAWREQ DEMO.jsonl
# The same commands through the daemon print what they print embedded;
# concurrent writers of several parties; refused cross-party writes and
# reads; bad signature, replay (also across a restart), skewed clock,
# garbage, truncated and oversized messages, a silent client: each gets a
# clear error, nothing is committed, and the daemon keeps serving.
# SIGTERM ends it with exit 0.
set -u
T=$1 TD=$2 RAW=$3 DEMO=$4
W=$(mktemp -d /tmp/trace-daemon-XXXXXX)
D=$W/ledger K=$W/ledger/keys
PORT=$((20000 + $$ % 20000))
IPC=ipc://$W/traced.ipc TCP=tcp://127.0.0.1:$PORT PUB=ipc://$W/pub.ipc
TLS=tls+tcp://127.0.0.1:$((PORT + 1))
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  jobs -p | xargs -r kill -9 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
C() { "$T" --connect "$IPC" --keys "$K" "$@"; }
E() { "$T" --data "$D" "$@"; }
size() { E --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
start() {
  # shellcheck disable=SC2086
  "$TD" --data "$D" --listen "$IPC" --pub "$PUB" $NET \
    --max-message 1048576 --log-level debug --backup-dir "$W/backups" \
    "$@" 2>>"$W/traced.log" &
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

# A small PKI for tls+tcp://: a CA, the daemon's certificate and a
# client's; and a client certificate from a CA the daemon does not trust.
mkdir -p "$W/pki"
pki() {
  local name=$1 ca=$2 cn=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$W/pki/$name.key" -subj "/CN=$cn" -out "$W/pki/$name.csr" 2>/dev/null &&
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$W/pki/$name.ext" &&
  openssl x509 -req -in "$W/pki/$name.csr" -CA "$W/pki/$ca.crt" -CAkey "$W/pki/$ca.key" \
    -CAcreateserial -days 2 -extfile "$W/pki/$name.ext" -out "$W/pki/$name.crt" 2>/dev/null &&
  cat "$W/pki/$name.crt" "$W/pki/$name.key" >"$W/pki/$name.pem"
}
for ca in ca rogue; do
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$W/pki/$ca.key" -subj "/CN=Test $ca" -days 2 -out "$W/pki/$ca.crt" 2>/dev/null ||
    { echo "FAIL: openssl cannot make a CA"; exit 1; }
done
pki server ca 127.0.0.1 && pki client ca client && pki stranger rogue stranger ||
  { echo "FAIL: openssl cannot make certificates"; exit 1; }

# a TCP listener for the first run only: a restart right after a
# stop may find the port still held by the kernel
NET="--listen $TCP"

MAN=91310000MA1K000001 DIST=91320000MA1K000002 USER=91330000MA1K000003
"$T" --data "$D" init >/dev/null && "$T" --data "$D" import --provision-keys "$DEMO" >/dev/null ||
  { echo "FAIL: setup"; exit 1; }

expect 0 "traced --help" -- "$TD" --help
grep -q -- "--max-message" "$W/out" || bad "--help lists no keys"
expect 0 "traced --check-config" -- "$TD" --data "$D" --listen "$IPC" --check-config
grep -q "clock-window = 300" "$W/out" || bad "--check-config does not print defaults"
expect 1 "traced without listen" -- "$TD" --data "$D"
expect 1 "traced with a bad value" -- "$TD" --data "$D" --listen "$IPC" --workers 0
printf 'listen = %s\nworkers = many\n' "$IPC" >"$W/bad.conf"
expect 1 "traced with a bad config file" -- "$TD" --data "$D" --config "$W/bad.conf"
grep -q "bad.conf:2" "$W/err" || bad "config error does not name the line"

start

# One writer per ledger folder: a second traced, or an embedded write
# beside the daemon, is refused naming the daemon's pid; embedded reads
# go on.
expect 6 "a second traced on the same folder" -- "$TD" --data "$D" --listen "ipc://$W/second.ipc"
grep -q "being written by process $DPID" "$W/err" && ok || bad "the second traced does not name the first: $(cat "$W/err")"
expect 6 "an embedded import beside the daemon" -- E import "$DEMO"
grep -q "being written by process $DPID" "$W/err" && ok || bad "the refusal does not name the daemon: $(cat "$W/err")"
expect 0 "an embedded read beside the daemon" -- E balance "$DIST"

# The same output and exit codes as embedded.
for cmd in "verify" "catalog" "head" "balance $DIST" "balance $DIST --at 2026-02-01" \
  "trace EPH-2601-A --forward" "trace EPH-2601-A --backward --party $DIST" \
  "permit show CN-PF-2026-0001" "history $DIST" "history EPH-2601-A" \
  "register $DIST --substance ephedrine --from 2026-01-01 --to 2026-03-31" \
  "register $DIST --substance ephedrine --month 2026-01 --csv" \
  "register $DIST --substance ephedrine --month 2026-01 --html" \
  "export" "export --party $MAN" "alerts" "balance NOBODY" "trace NO-LOT --forward" \
  "permit show NOPE" "balance" "frobnicate" "balance $DIST --at 2026-02-31" \
  "export --from 2026-02-31" "parties" "parties --kind distributor" \
  "permit list" "permit list --holder $USER" "permit list --status expired" \
  "balance $DIST --csv" "history $DIST --csv" "alerts --csv" \
  "check sale --id chk-d --to $USER --substance ephedrine --lot EPH-2601-A --qty 900 --unit kg"; do
  for j in "" "--json"; do
    E $j $cmd >"$W/e.out" 2>/dev/null; ec=$?
    C $j $cmd >"$W/c.out" 2>/dev/null; cc=$?
    if [ "$ec" = "$cc" ] && cmp -s "$W/e.out" "$W/c.out"; then ok; else
      bad "'$j $cmd' differs through the daemon (exit $ec vs $cc)"
      diff "$W/e.out" "$W/c.out" | head -4
    fi
  done
done
# Read commands run side by side (each parses alone, then runs on its
# own read transaction): many at once, with exports beside them, print
# what each prints alone.
conc_cmds=("balance $DIST" "trace EPH-2601-A --forward" "history $DIST"
  "permit show CN-PF-2026-0001" "export" "balance $MAN --at 2026-02-01")
for i in "${!conc_cmds[@]}"; do C ${conc_cmds[$i]} >"$W/alone.$i" 2>&1; done
conc_pids=()
for round in 1 2 3; do
  for i in "${!conc_cmds[@]}"; do
    C ${conc_cmds[$i]} >"$W/conc.$round.$i" 2>&1 &
    conc_pids+=($!)
  done
done
wait "${conc_pids[@]}"
same=1
for round in 1 2 3; do
  for i in "${!conc_cmds[@]}"; do
    cmp -s "$W/alone.$i" "$W/conc.$round.$i" || { same=0; bad "'${conc_cmds[$i]}' side by side differs"; }
  done
done
[ $same = 1 ] && ok
expect 1 "a day that does not exist, through the daemon" -- C balance "$DIST" --at 2026-02-31
# Answers larger than a reply come in pages (Result.next) and print the
# same; an answer that does not page (catalog) is refused with the reason.
# (on a copy of the folder: the running daemon is its one writer)
E backup "$W/small-ledger" >/dev/null && cp "$D/traced.key" "$W/small-ledger/" ||
  bad "cannot copy the ledger for a second daemon"
"$TD" --data "$W/small-ledger" --listen "ipc://$W/small.ipc" --max-reply 1024 \
  --log-level error 2>>"$W/traced-small.log" &
SMALLPID=$!
S() { "$T" --connect "ipc://$W/small.ipc" --keys "$K" "$@"; }
for _ in $(seq 100); do S head >/dev/null 2>&1 && break; sleep 0.1; done
for cmd in "export" "export --party $MAN" "history $DIST --limit 0" \
  "history EPH-2601-A --limit 0" "history $DIST --limit 7" "alerts" \
  "register $DIST --substance ephedrine --from 2026-01-01 --to 2026-01-05"; do
  for j in "" "--json"; do
    E $j $cmd >"$W/e.out" 2>/dev/null; ec=$?
    S $j $cmd >"$W/c.out" 2>"$W/c.err"; cc=$?
    if [ "$ec" = "$cc" ] && [ "$ec" = 0 ] && cmp -s "$W/e.out" "$W/c.out"; then ok; else
      bad "'$j $cmd' in pages differs (exit $ec vs $cc): $(head -c 300 "$W/c.err")"
      diff "$W/e.out" "$W/c.out" | head -4
    fi
  done
done
[ "$(E export | wc -l)" -gt 20 ] && ok || bad "the export is too short to need pages"
expect 6 "an answer larger than a reply that does not page" -- S catalog
grep -q "larger than the daemon's max-reply" "$W/err" && ok || bad "no reason for the refused answer: $(cat "$W/err")"
kill -TERM "$SMALLPID"; wait "$SMALLPID" 2>/dev/null
expect 0 "tcp:// works too" -- "$T" --connect "$TCP" --keys "$K" head
# TLS against a traced of its own: after refused handshakes nng's poller
# may spin on a dead socket (seen once under load), which must not stall
# the daemon the rest of this test talks to
E backup "$W/tls-ledger" >/dev/null || bad "cannot copy the ledger for the TLS daemon"
"$TD" --data "$W/tls-ledger" --listen "$TLS" --tls-cert "$W/pki/server.pem" --tls-ca "$W/pki/ca.crt" \
  --log-level error 2>>"$W/traced-tls.log" &
TLSPID=$!
sleep 1
expect 0 "tls+tcp:// with a client certificate" -- "$T" --connect "$TLS" --keys "$K" \
  --tls-ca "$W/pki/ca.crt" --tls-cert "$W/pki/client.pem" --timeout 5 head
expect 6 "tls+tcp:// without a client certificate" -- "$T" --connect "$TLS" --keys "$K" \
  --tls-ca "$W/pki/ca.crt" --timeout 3 head
expect 6 "tls+tcp:// with a certificate of another CA" -- "$T" --connect "$TLS" --keys "$K" \
  --tls-ca "$W/pki/ca.crt" --tls-cert "$W/pki/stranger.pem" --timeout 3 head
expect 6 "tls+tcp:// to a daemon of another CA" -- "$T" --connect "$TLS" --keys "$K" \
  --tls-ca "$W/pki/rogue.crt" --tls-cert "$W/pki/client.pem" --timeout 3 head
kill -TERM "$TLSPID" 2>/dev/null
for _ in $(seq 50); do kill -0 "$TLSPID" 2>/dev/null || break; sleep 0.1; done
kill -9 "$TLSPID" 2>/dev/null; wait "$TLSPID" 2>/dev/null

# Writes: record and import, idempotent, atomic.
n0=$(size)
expect 0 "record through the daemon" -- C --as "$DIST" record loss --substance ephedrine \
  --lot EPH-2601-A --qty 0.1 --unit kg --reason theft
[ "$(size)" = $((n0 + 1)) ] && ok || bad "record did not append one entry"
python3 - "$W" "$MAN" <<'PY'
import sys
w, man = sys.argv[1], sys.argv[2]
with open(f"{w}/man.jsonl", "w") as f:
    for i in range(50):
        f.write('{"type":"produce","id":"d-%d","party":"%s","at":"2026-03-01T08:00:00+08:00",'
                '"substance":"ephedrine","lot":"EPH-D","qty":"1","unit":"kg"}\n' % (i, man))
PY
expect 0 "import through the daemon" -- C import "$W/man.jsonl"
grep -q "imported 50 events" "$W/out" || bad "import did not say 50: $(cat "$W/out")"
expect 0 "import again: idempotent" -- C import "$W/man.jsonl"
grep -q "imported 0 events (50 already present" "$W/out" || bad "re-import: $(cat "$W/out")"
n1=$(size)
sed 's/"d-7","party"/"d-x7","party"/; s/"qty":"1"/"qty":"-1"/' "$W/man.jsonl" | sed 's/"d-\([0-9]*\)"/"e-\1"/' >"$W/bad.jsonl"
expect 2 "a bad line: rejected" -- C import "$W/bad.jsonl"
grep -q "line 1: " "$W/err" || bad "rejected import names no line"
grep -q "nothing was imported" "$W/err" || bad "rejected import does not say nothing was imported"
[ "$(size)" = "$n1" ] && ok || bad "rejected import left entries"

# import --provision-keys through a daemon: a fresh ledger loads the whole
# multi-party demo file, keys made here and registered by the regulator,
# with the output of the embedded import
"$T" --data "$W/l2" init >/dev/null
"$TD" --data "$W/l2" --listen "ipc://$W/l2.ipc" --log-level info 2>>"$W/traced2.log" &
D2PID=$!
for _ in $(seq 50); do "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" head >/dev/null 2>&1 && break; sleep 0.1; done
expect 5 "import without keys through a daemon" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" import "$DEMO"
expect 0 "import --provision-keys through a daemon" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" import --provision-keys "$DEMO"
grep -q "imported 32 events (0 already present, 5 keys provisioned, 1 finding at entry)" "$W/out" && ok || bad "provisioning import said: $(cat "$W/out")"
# the checks at entry run in the daemon's commit: the demo's export cites
# a permit never issued; its alert is raised at once, not at night
grep -q "^tracectl: warning: line 32: PERMIT_MISSING: exp-0001 cites permit CN-EL-2026-0007, which was never issued$" "$W/err" && ok ||
  bad "no finding at entry through traced: $(cat "$W/err")"
for _ in $(seq 100); do
  "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" alerts --rule PERMIT_MISSING 2>/dev/null | grep -q "exp-0001" && break; sleep 0.1
done
"$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" alerts --rule PERMIT_MISSING | grep -q "exp-0001" && ok ||
  bad "traced did not raise the finding's alert: $(tail -3 "$W/traced2.log")"
expect 0 "provisioned ledger verifies" -- "$T" --data "$W/l2" verify
expect 0 "a provisioned party signs its own requests" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" --as "$DIST" balance "$DIST"
# A file of many chunks (W2: 40,000 events of 300 parties, ~8 MB): each
# chunk checked as it is read, kept in a temporary file, then all
# committed; a bad last line leaves nothing; then the whole file loads
# and exports as the same file loaded embedded does.
python3 "$(dirname "$0")/../bench/w2gen.py" 40000 --parties 300 >"$W/w2.jsonl"
cp "$W/w2.jsonl" "$W/w2bad.jsonl"
echo '{"type":"produce","id":"last","party":"NOBODY"' >>"$W/w2bad.jsonl"
n2=$("$T" --data "$W/l2" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
expect 2 "a many-chunk import with a bad last line" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" import --provision-keys --historic "$W/w2bad.jsonl"
grep -q "line 40001" "$W/err" && ok || bad "the bad last line is not named: $(head -3 "$W/err")"
[ "$("$T" --data "$W/l2" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')" = "$n2" ] && ok ||
  bad "a refused many-chunk import left entries"
# the bad line in the second chunk (~3,400 lines each), which is prepared
# on a second connection while the first is: named, nothing left
{ head -5000 "$W/w2.jsonl"; echo '{"type":"produce","id":"early","party":"NOBODY"'; tail -n +5001 "$W/w2.jsonl"; } >"$W/w2bad2.jsonl"
expect 2 "a many-chunk import with a bad line in its second chunk" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" import --provision-keys --historic "$W/w2bad2.jsonl"
grep -q "line 5001" "$W/err" && ok || bad "the bad line of the second chunk is not named: $(head -3 "$W/err")"
[ "$("$T" --data "$W/l2" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')" = "$n2" ] && ok ||
  bad "a refused many-chunk import (second chunk) left entries"
expect 0 "a many-chunk import through a daemon" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" import --provision-keys --historic "$W/w2.jsonl"
grep -q "imported 40000 events (0 already present, 300 keys provisioned)" "$W/out" && ok || bad "many-chunk import said: $(cat "$W/out")"
"$T" --data "$W/l3" init >/dev/null
"$T" --data "$W/l3" import --provision-keys --historic "$W/w2.jsonl" >/dev/null
for p in $(python3 -c 'import json,sys
seen = []
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["type"] == "party" and len(seen) < 3:
        seen.append(e["subject"])
print(" ".join(seen))' "$W/w2.jsonl"); do
  "$T" --data "$W/l2" export --party "$p" >"$W/x2" && "$T" --data "$W/l3" export --party "$p" >"$W/x3" &&
    cmp -s "$W/x2" "$W/x3" && ok || bad "party $p exports differently after the many-chunk import"
done
expect 0 "the many-chunk ledger verifies" -- "$T" --data "$W/l2" verify
# Long operations as jobs: verify through the daemon runs as one (in the
# log); jobs cancelled at once end cancelled, two per party at most, a
# job is its starter's only, and an end is told once.
expect 0 "verify through the daemon (a job)" -- "$T" --connect "ipc://$W/l2.ipc" --keys "$W/l2/keys" verify
grep -Eq "^ok: [0-9]+ entries" "$W/out" && ok || bad "verify as a job said: $(cat "$W/out" "$W/err")"
grep -q "started job [0-9]* (verify)" "$W/traced2.log" && ok || bad "the verify was not a job: $(tail -3 "$W/traced2.log")"
expect 0 "jobs started, cancelled and polled" -- "$RAW" "ipc://$W/l2.ipc" jobs "$W/l2/keys/REGULATOR.key" REGULATOR \
  "$W/l2/keys/$DIST.key" "$DIST"
for want in "^A code=0 done=0" "^B code=0 done=0" "^C code=6 .*busy" "^other code=4 " \
  "^A end code=6 done=1 cancelled=1 (verification stopped|cancelled before it began)" \
  "^B end code=6 done=1 cancelled=1 (verification stopped|cancelled before it began)" "^A again code=4 "; do
  grep -Eq "$want" "$W/out" && ok || bad "jobs: wanted '$want' in: $(tr '\n' '|' <"$W/out")"
done
kill -TERM "$D2PID"; wait "$D2PID" && ok || bad "second traced did not stop cleanly"

# A party writes and reads only its own.
sed "s/\"party\":\"$MAN\"/\"party\":\"$MAN\"/; s/\"d-/\"x-/" "$W/man.jsonl" >"$W/other.jsonl"
expect 5 "import another party's events" -- C --as "$DIST" import "$W/other.jsonl"
[ "$(size)" = "$n1" ] && ok || bad "cross-party import left entries"
grep -q "$W" "$W/traced.log" 2>/dev/null; grep -q "refused\|rejected" "$W/traced.log" && ok || bad "refusals are not logged"
n_chk=$(size)
expect 2 "record beyond the stock through traced" -- C --as "$DIST" record sale --to "$USER" --substance ephedrine --lot EPH-2601-A --qty 900 --unit kg
grep -q "NEGATIVE_STOCK" "$W/err" && ok || bad "no finding through traced: $(cat "$W/err")"
[ "$(size)" = "$n_chk" ] && ok || bad "a refused record through traced stored something"
# correct and record party update through traced: built from what the
# daemon answers, written as any record
expect 0 "correct through traced" -- C --as "$USER" correct use-0001 --reason "re-weighed" --qty 205
C --as "$USER" export --party "$USER" | grep '"corrects":"use-0001","reason":"re-weighed"' | grep -q '"qty":"205","unit":"kg","purpose"' && ok ||
  bad "correct through traced: $(cat "$W/out" "$W/err")"
expect 0 "record party update through traced" -- C record party update "$USER" --region CN-34
C --json parties | grep "\"party\":\"$USER\"" | grep -q '"region":"CN-34"' && ok || bad "party update through traced: $(cat "$W/err")"
expect 5 "list another party's permits" -- C --as "$DIST" permit list --holder "$USER"
expect 0 "a party lists its own permits" -- C --as "$USER" permit list
grep -q "CN-PF-2026-0001" "$W/out" && ok || bad "the holder's permit list lacks its permit: $(cat "$W/out")"
expect 0 "a party reads the registry" -- C --as "$USER" --json parties
grep -q "\"party\":\"$MAN\"" "$W/out" && ok || bad "the registry lacks $MAN"
expect 5 "read another party's stock" -- C --as "$DIST" balance "$MAN"
grep -q "permission denied" "$W/err" || bad "no 'permission denied' message"
expect 0 "read own stock" -- C --as "$DIST" balance "$DIST"
expect 5 "trace a lot never held" -- C --as 12310000MB0000005 trace EPH-2601-A --forward
expect 0 "trace a lot held" -- C --as "$DIST" trace EPH-2601-A --forward
expect 5 "history of another party" -- C --as "$DIST" history "$MAN"
expect 5 "reconcile as a party" -- C --as "$DIST" reconcile
expect 5 "backup as a party" -- C --as "$DIST" backup b1
expect 5 "verify as a party" -- C --as "$DIST" verify
grep -q "permission denied" "$W/err" || bad "verify as a party: $(cat "$W/err")"
expect 5 "verify --json as a party" -- C --as "$DIST" --json verify
[ ! -s "$W/out" ] && ok || bad "a refused verify printed $(cat "$W/out")"
mkdir -p "$W/backups"
expect 1 "backup to a path of the client's choosing" -- C backup /tmp/elsewhere
expect 0 "online backup through the daemon" -- C backup b1
E export >"$W/orig.jsonl"; "$T" --data "$W/backups/b1" export >"$W/copy.jsonl"
cmp -s "$W/orig.jsonl" "$W/copy.jsonl" && ok || bad "the backup exports differently"
expect 0 "the backup verifies" -- "$T" --data "$W/backups/b1" verify
expect 0 "export as a party: own events" -- C --as "$DIST" export
if grep -v "\"party\":\"$DIST\"" "$W/out" | grep -q .; then bad "party export shows others' events"; else ok; fi
"$T" --keys "$W/stranger" keygen STRANGER >/dev/null 2>&1
expect 5 "a key the ledger does not know" -- "$T" --connect "$IPC" --keys "$W/stranger" --as STRANGER head

# Alerts: reconcile and ack through the daemon.
expect 1 "reconcile --rules names no file on the daemon's host" -- C reconcile --rules /etc/passwd
expect 0 "reconcile through the daemon" -- C reconcile --as-of 2026-06-01
# the alerts the daemon's writer stored, as an embedded run prints them
C --json reconcile --as-of 2026-06-01 >"$W/rc.c" 2>/dev/null
E --json reconcile --as-of 2026-06-01 --dry-run >"$W/rc.e" 2>/dev/null
[ -s "$W/rc.c" ] && cmp -s "$W/rc.c" "$W/rc.e" && ok ||
  bad "reconcile through the daemon differs from embedded: $(diff "$W/rc.c" "$W/rc.e" | head -4)"
expect 0 "alerts listed" -- C --json alerts
A=$(head -1 "$W/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
AP=$(head -1 "$W/out" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a["party"] or "")' 2>/dev/null)
if [ -n "$A" ]; then
  OTHER=$USER; [ "$AP" = "$USER" ] && OTHER=$DIST
  expect 5 "ack another party's alert" -- C --as "$OTHER" ack "$A" --note "not mine"
  expect 0 "ack by the regulator" -- C ack "$A" --status resolved --note "checked"
  expect 0 "ack shows" -- C alerts --status resolved
  grep -q "$A" "$W/out" || bad "resolved alert not listed"
else
  bad "no alert to acknowledge"
fi
expect 4 "ack an unknown alert" -- C ack A0000000000000000 --note x
# alerts --follow through the daemon: the listing, then alerts stored
# later.  PUB carries only a notice that there are new alerts (anyone
# may subscribe); each follower then fetches them with its own signed
# request, so a party sees only the alerts naming it.  (tracectl asks
# without a notice only after 15 s: the new alert within 3 s came by
# the notice.)
"$RAW" "$PUB" sub "alert " 6 >"$W/sub1.out" 2>&1 &
SUB1=$!
"$T" --connect "$IPC" --keys "$K" --json alerts --follow >"$W/af.out" 2>"$W/af.err" &
AFPID=$!
"$T" --connect "$IPC" --keys "$K" --as "$USER" --json alerts --follow >"$W/afu.out" 2>"$W/afu.err" &
AFUPID=$!
sleep 1
n_before=$(wc -l <"$W/af.out")
C --as "$DIST" record loss --substance ephedrine --lot EPH-2601-A --qty 0.3 --unit kg --reason theft >/dev/null
C reconcile --as-of 2026-06-01 >/dev/null 2>&1
C reconcile >/dev/null 2>&1
sleep 3
kill "$AFPID" "$AFUPID" 2>/dev/null; wait "$AFPID" "$AFUPID" 2>/dev/null
wait "$SUB1"
[ "$n_before" -gt 0 ] && [ "$(wc -l <"$W/af.out")" -gt "$n_before" ] && ok ||
  bad "alerts --follow: $n_before then $(wc -l <"$W/af.out") lines ($(cat "$W/af.err"))"
if sort "$W/af.out" | uniq -d | grep -q .; then bad "alerts --follow printed an alert twice"; else ok; fi
python3 - "$W/af.out" "$W/afu.out" "$USER" "$DIST" <<'PY' && ok || bad "a party's alerts --follow: $(head -c 600 "$W/afu.out") $(cat "$W/afu.err")"
import json, sys
every = [json.loads(l) for l in open(sys.argv[1])]
mine = [json.loads(l) for l in open(sys.argv[2])]
user, dist = sys.argv[3], sys.argv[4]
assert mine, "the party's follow printed nothing"
for a in mine:
    assert user in (a["party"], a["counterparty"]), a
# the loss just recorded is the distributor's, not the user's
new = [a for a in every if a["rule"] == "LOSS_REPORTED" and a["party"] == dist]
assert new and not [a for a in mine if a["id"] in {x["id"] for x in new}]
PY
grep -q '^alert new [0-9][0-9]*$' "$W/sub1.out" && ok || bad "no notice of new alerts on PUB: $(head -3 "$W/sub1.out")"
grep -v '^alert new [0-9][0-9]*$' "$W/sub1.out" | grep -q . &&
  bad "PUB carried more than notices: $(head -c 300 "$W/sub1.out")" || ok

# Raw requests: each refused with a clear error, nothing committed.
n2=$(size)
expect 0 "signed request" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR --save "$W/req.bin" -- head
grep -q "code=0" "$W/out" || bad "signed request: $(head -1 "$W/out")"
expect 0 "replayed request" -- "$RAW" "$IPC" file "$W/req.bin"
grep -q "code=5.*replayed" "$W/out" || bad "replay not refused: $(head -1 "$W/out")"
expect 0 "bad signature" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR --bad-sig -- head
grep -q "code=5.*bad signature" "$W/out" || bad "bad signature: $(head -1 "$W/out")"
expect 0 "signed as another party" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" "$DIST" -- head
grep -q "code=5" "$W/out" || bad "key of another party: $(head -1 "$W/out")"
expect 0 "clock an hour off" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR --skew 3600 -- head
grep -q "code=5.*clock" "$W/out" || bad "skewed clock: $(head -1 "$W/out")"
expect 0 "garbage" -- "$RAW" "$IPC" random 5000
grep -q "code=2" "$W/out" || bad "garbage: $(head -1 "$W/out")"
expect 0 "empty message" -- "$RAW" "$IPC" bytes ""
expect 0 "truncated request" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR --truncate 40 -- head
grep -q "code=2" "$W/out" || bad "truncated: $(head -1 "$W/out")"
expect 0 "a command the daemon does not run" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR -- init
grep -q "code=1" "$W/out" || bad "init through daemon: $(head -1 "$W/out")"
# (an oversized message is sent to the daemon of the limits below: nng
# may stop accepting after it)
"$RAW" "$IPC" silent 3 >/dev/null 2>&1 &
expect 0 "serving beside a silent client" -- C head
[ "$(size)" = "$n2" ] && ok || bad "refused requests changed the ledger"

# Concurrent writers of four parties, through ipc and tcp.
python3 - "$W" "$MAN" "$DIST" "$USER" 91310000MA1K000006 <<'PY'
import sys
w, parties = sys.argv[1], sys.argv[2:]
for p in parties:
    with open(f"{w}/{p}.jsonl", "w") as f:
        for i in range(500):
            f.write('{"type":"produce","id":"c-%d","party":"%s","at":"2026-03-02T08:00:00+08:00",'
                    '"substance":"acetone","lot":"AC-%s","qty":"1","unit":"L"}\n' % (i, p, p))
PY
n3=$(size)
pids=
for p in $MAN $DIST $USER 91310000MA1K000006; do
  url=$IPC; [ "$p" = "$USER" ] && url=$TCP
  for k in 1 2 3; do
    # three rounds of the same file per party: the later ones are no-ops
    "$T" --connect "$url" --keys "$K" --as "$p" import "$W/$p.jsonl" >"$W/w-$p-$k.out" 2>&1 &
    pids="$pids $!"
  done
done
sleep 0.3
C backup b2 >"$W/b2.out" 2>&1 || bad "backup during the writes: $(cat "$W/b2.out")"
for p in $pids; do wait "$p" || bad "a concurrent writer failed: $(cat "$W"/w-*.out | grep -v imported | head -3)"; done
[ "$(size)" = $((n3 + 2000)) ] && ok || bad "concurrent writers: $(size) entries, wanted $((n3 + 2000))"
expect 0 "verify after concurrent writes" -- E verify
# the copy taken while they wrote is the ledger of one moment: it verifies
# and its export is a prefix of the ledger's
expect 0 "backup taken during the writes verifies" -- "$T" --data "$W/backups/b2" verify
E export >"$W/orig.jsonl"; "$T" --data "$W/backups/b2" export >"$W/copy.jsonl"
[ "$(head -c "$(stat -c %s "$W/copy.jsonl")" "$W/orig.jsonl" | cmp - "$W/copy.jsonl" && echo same)" = same ] &&
  ok || bad "the online backup is not a prefix of the ledger"

# A regulator's import whose lines alternate between two parties: one
# signature per party for the whole request, not one per line.
python3 - "$MAN" "$DIST" >"$W/mixed.jsonl" <<'PY'
import sys
a, b = sys.argv[1:]
for i in range(40):
    p = (a, b)[i % 2]
    print('{"type":"produce","id":"mix-%d","party":"%s","at":"2026-03-03T08:00:00+08:00",'
          '"substance":"acetone","lot":"MIX-%s","qty":"1","unit":"L"}' % (i, p, p))
PY
sig() { E --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["signatures"])'; }
s0=$(sig) n0=$(size)
expect 0 "an interleaved import through the daemon" -- C import "$W/mixed.jsonl"
[ "$(size)" = $((n0 + 40)) ] && ok || bad "interleaved import: $(size) entries, wanted $((n0 + 40))"
[ "$(sig)" = $((s0 + 2)) ] && ok || bad "interleaved import: $(( $(sig) - s0 )) new signatures, wanted 2"

# Signed heads on PUB.
"$T" --connect "$IPC" --keys "$K" --json head --follow >"$W/follow.out" 2>"$W/follow.err" &
FPID=$!
sleep 1
C --as "$DIST" record loss --substance ephedrine --lot EPH-2601-A --qty 0.1 --unit kg --reason loss >/dev/null
sleep 1
kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null
[ "$(wc -l <"$W/follow.out")" -ge 2 ] && ok || bad "head --follow saw no new head: $(cat "$W/follow.out" "$W/follow.err")"
tail -1 "$W/follow.out" | grep -q "\"size\":$(size)" && ok || bad "followed head is not the ledger's"
# new alerts need a run that finds some: make one (a loss) and keep the
# reconciliation for the restart below
C --as "$DIST" record loss --substance ephedrine --lot EPH-2601-A --qty 0.2 --unit kg --reason theft >/dev/null

# Key rotation: a new key registered and the old one revoked by the
# regulator; requests and events signed with the old key are refused.
"$T" --keys "$W/newkeys" keygen "$USER" >/dev/null
python3 - "$DEMO" "$USER" "$K/$USER.pub" "$W/newkeys/$USER.pub" >"$W/rotate.jsonl" <<'PY'
import json, sys
demo, who, old, new = sys.argv[1:]
for line in open(demo):
    e = json.loads(line)
    if e["type"] == "party" and e["subject"] == who:
        e["id"] = "rotate-" + who
        e["pubkey"] = open(new).read()
        e["revoke"] = open(old).read()
        print(json.dumps(e))
PY
expect 0 "rotate a party's key" -- C import "$W/rotate.jsonl"
expect 5 "a request signed with the revoked key" -- C --as "$USER" balance "$USER"
cp "$K"/REGULATOR.* "$W/newkeys/"
expect 0 "a request signed with the new key" -- "$T" --connect "$IPC" --keys "$W/newkeys" --as "$USER" balance "$USER"
expect 0 "verify after the rotation" -- E verify

# Clean shutdown, then a request saved before the restart is refused.
stop
NET=
grep -q "stopped" "$W/traced.log" && ok || bad "no 'stopped' in the log"
# the restart also runs the nightly reconciliation now (this minute) and
# publishes a notice of the new alerts on PUB (not the alerts)
[ "$(date +%S)" -ge 57 ] && sleep 4
"$RAW" "$PUB" sub "alert " 5 >"$W/sub.out" 2>&1 &
SUBPID=$!
sleep 1
start --reconcile-at "$(date +%H:%M)" --full-every 1
wait "$SUBPID"
grep -q "nightly reconciliation (full): .* alerts" "$W/traced.log" && ok || bad "no full nightly reconciliation in the log"
grep -q '^alert new [0-9][0-9]*$' "$W/sub.out" && ! grep -q '{' "$W/sub.out" && ok || bad "no notice of the new alerts, or more: $(head -3 "$W/sub.out")"
# the nightly run (full tonight: --full-every 1) keeps the incremental
# state: a regulator's incremental run after it reads only what was
# appended since (nothing), and finds no new alert
expect 0 "incremental reconcile after the nightly run" -- C reconcile --incremental
grep -q "(0 new) over .* (0 appended since the previous run)" "$W/err" && ok || bad "not an incremental run: $(cat "$W/err")"
expect 0 "replay across a restart" -- "$RAW" "$IPC" file "$W/req.bin"
grep -q "code=5" "$W/out" || bad "replay after restart not refused: $(head -1 "$W/out")"
expect 0 "serving after the restart" -- C verify
stop

# Limits: per-party request rate, connections at once, an oversized
# message; and listeners that nng stopped.  (Not leak-checked: when a
# client hangs up while connecting, or after an oversized message, nng
# 1.5.2 may stop accepting on that listener and never frees the
# connections left waiting on it; traced closes it and listens again.)
# (idle-grace: the silent clients below are not replaced by newcomers)
ASAN_OPTIONS=detect_leaks=0 start --rate 1 --burst 3 --max-connections 3 --idle-grace 60000
sleep 1.5 # refill what start's readiness probes used
for i in 1 2 3 4 5 6; do C head >/dev/null 2>"$W/rate-$i.err"; echo $? >>"$W/rate.codes"; done
grep -q "^6$" "$W/rate.codes" && ok || bad "no request refused over the rate: $(tr '\n' ' ' <"$W/rate.codes")"
grep -q "rate limit" "$W"/rate-*.err && ok || bad "rate refusal does not say why"
grep -q "^0$" "$W/rate.codes" && ok || bad "the burst was not served"
expect 0 "another party has its own budget" -- C --as "$DIST" balance "$DIST"
sleep 2
"$RAW" "$IPC" silent 4 >/dev/null 2>&1 &
"$RAW" "$IPC" silent 4 >/dev/null 2>&1 &
"$RAW" "$IPC" silent 4 >/dev/null 2>&1 &
sleep 0.5
# (the refused client's nng teardown is not what is tested here: leak
# checks off for that one tracectl)
ASAN_OPTIONS=detect_leaks=0 expect 6 "a connection over max-connections" -- C --timeout 2 head
grep -q "max-connections" "$W/traced.log" && ok || bad "refused connection not logged"
sleep 5
expect 0 "served again once connections close" -- C --timeout 5 head
# larger than max-message: nng drops it and the connection, no answer.
# nng 1.5.2 then sometimes stops accepting on that listener, as below
# (about one run in five on a loaded machine: a client after it fails,
# and the connections left on the listener leak)
timeout 12 "$RAW" "$IPC" random 2000000 >"$W/out" 2>&1
[ $? -ne 0 ] && ok || bad "an oversized message got an answer: $(head -1 "$W/out")"
# a client that connects and hangs up at once, before the SP handshake
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.close()' "$W/traced.ipc"
sleep 5 # two unanswered probes of 2 s each, then it listens again
expect 0 "served after a client hung up while connecting" -- C --timeout 5 head
stop
grep -q "Sanitizer" "$W/traced.log" && bad "a sanitizer report in traced's log" || ok

checks_done daemon
