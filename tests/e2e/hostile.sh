#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hostile clients against traced (issue: security and integrity defects):
#   hostile.sh TRACECTL TRACED RAWREQ DEMO.jsonl [CASE...]
# Cases (all by default):
#   time      a request signed at INT64_MIN: refused, the daemon lives;
#             balance --at and reconcile --as-of past 9999: refused (exit 2)
#   historic  `historic` set by a non-regulator: refused (exit 5), also
#             embedded; a regulator may
#   overflow  quantities that would overflow a running balance: refused
#             (exit 2) through the daemon, nothing stored
#   replay    a request signed ahead of the daemon's clock is refused when
#             resent for the whole time it stays in the clock window, and
#             after a restart; replays do not spend the party's rate
#   flood     one party floods the replay cache: regulators and other
#             parties are still served
#   silent    300 silent connections over tcp:// and 300 over ipc://:
#             `head` still answered within 5 s on both; silent ones closed;
#             connections that only send unsigned Hellos do not hold slots
#   memory    24 connections sending max-size junk, and 240 connections from
#             4 addresses each holding an unfinished max-size request:
#             traced's peak RSS stays <= 512 MiB and a regulator's `head`
#             is answered within 2 s
# Each case prints what it measured; the script ends with "N passed, M
# failed".
set -u
T=$1 TD=$2 RAW=$3 DEMO=$4
shift 4
CASES=${*:-time historic overflow replay session flood silent memory}
W=$(mktemp -d /tmp/trace-hostile-XXXXXX)
D=$W/ledger K=$W/ledger/keys
# below the ephemeral range that the attacks' own connections use
PORT=$((20000 + ($$ * 7) % 10000))
IPC=ipc://$W/traced.ipc TCP=tcp://127.0.0.1:$PORT
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
CS() { TRACECTL_SESSIONS=0 "$T" --connect "$IPC" --keys "$K" "$@"; } # signed
CT() { "$T" --connect "$TCP" --keys "$K" "$@"; }
E() { "$T" --data "$D" "$@"; }
size() { E --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
start() {
  "$TD" --data "$D" --listen "$IPC" --listen "$TCP" --log-level info \
    --reconcile-at off "$@" 2>>"$W/traced.log" &
  DPID=$!
  for _ in $(seq 100); do
    C head >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  bad "traced did not start"; cat "$W/traced.log"; exit 1
}
stop() {
  kill -TERM "$DPID" 2>/dev/null
  local st=0
  wait "$DPID" || st=$?
  DPID=
  [ "$st" -eq 0 ] && ok || { bad "traced exited $st on SIGTERM"; tail -20 "$W/traced.log"; }
  grep -q "runtime error\|Sanitizer" "$W/traced.log" &&
    { bad "a sanitizer report in traced's log"; grep -m3 "runtime error\|Sanitizer" "$W/traced.log"; } || ok
  : >"$W/traced.log"
}
alive() { # the daemon still runs and answers
  kill -0 "$DPID" 2>/dev/null && C --timeout 5 head >/dev/null 2>&1
}
has() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }

MAN=91310000MA1K000001 DIST=91320000MA1K000002 PHARM=12310000MB0000005
"$T" --data "$D" init >/dev/null && "$T" --data "$D" import --provision-keys "$DEMO" >/dev/null ||
  { echo "FAIL: setup"; exit 1; }

if has time; then
  start
  expect 0 "a request signed at INT64_MIN" -- "$RAW" "$IPC" signed "$K/$PHARM.key" "$PHARM" \
    --time-us -9223372036854775808 -- head
  grep -q "code=5.*clock" "$W/out" && ok || bad "INT64_MIN time: $(head -1 "$W/out")"
  expect 0 "a request signed at INT64_MAX" -- "$RAW" "$IPC" signed "$K/$PHARM.key" "$PHARM" \
    --time-us 9223372036854775807 -- head
  grep -q "code=5.*clock" "$W/out" && ok || bad "INT64_MAX time: $(head -1 "$W/out")"
  alive && ok || bad "traced died on an extreme request time"
  # times asked about at the edge of years 1-9999 (the raw int64 edges
  # are test_ops' test_times_at_edges): answered up to the last
  # microsecond of 9999 UTC, refused past it (a zone west of UTC)
  expect 0 "balance at the end of 9999 through traced" -- C balance "$MAN" --at 9999-12-31T23:59:59Z
  expect 2 "balance past 9999 through traced" -- C balance "$MAN" --at 9999-12-31T23:59:59-08:00
  grep -q "out of range" "$W/err" && ok || bad "balance past 9999: $(cat "$W/err")"
  expect 0 "reconcile as of the end of 9999 through traced" -- C reconcile --dry-run --as-of 9999-12-31T23:59:59Z
  expect 2 "reconcile as of past 9999 through traced" -- C reconcile --dry-run --as-of 9999-12-31T23:59:59-08:00
  grep -q "out of range" "$W/err" && ok || bad "reconcile past 9999: $(cat "$W/err")"
  alive && ok || bad "traced died on an extreme time asked about"
  stop
fi

if has historic; then
  start
  late=$W/late.jsonl
  printf '{"type":"produce","id":"hist-1","party":"%s","at":"2025-01-10T08:00:00+08:00","substance":"morphine","lot":"HIST-1","qty":"5","unit":"unit"}\n' "$PHARM" >"$late"
  n0=$(size)
  expect 5 "import --historic by a pharmacy through traced" -- C --as "$PHARM" import --historic "$late"
  grep -q "regulator" "$W/err" && ok || bad "historic refusal does not say why: $(cat "$W/err")"
  [ "$(size)" = "$n0" ] && ok || bad "a refused historic import stored something"
  expect 0 "the same import without --historic" -- C --as "$PHARM" import "$late"
  expect 0 "import --historic by the regulator" -- C import --historic "$W/late.jsonl"
  stop
  # embedded (with the daemon stopped: it is the folder's one writer)
  sed 's/hist-1/hist-2/' "$late" >"$W/late2.jsonl"
  n0=$(size)
  expect 5 "import --historic by a pharmacy, embedded" -- E --as "$PHARM" import --historic "$W/late2.jsonl"
  [ "$(size)" = "$n0" ] && ok || bad "a refused historic import stored something"
fi

if has overflow; then
  start
  big=$W/big.jsonl
  for i in 1 2; do
    printf '{"type":"produce","id":"big-%s","party":"%s","at":"2026-03-01T08:00:00+08:00","substance":"acetone","lot":"BIG-1","qty":"9223372036854775.807","unit":"mL"}\n' "$i" "$MAN"
  done >"$big"
  n0=$(size)
  expect 2 "two INT64_MAX produce events through traced" -- C --as "$MAN" import "$big"
  grep -qi "overflow\|too large\|exceeds" "$W/err" && ok || bad "overflow refusal does not say why: $(cat "$W/err")"
  [ "$(size)" = "$n0" ] && ok || bad "an overflowing import stored something"
  alive && ok || bad "traced died on an overflowing import"
  expect 0 "balance after the refused import" -- C balance "$MAN"
  grep -q "BIG-1" "$W/out" && bad "the refused lot shows in the balance" || ok
  stop
  expect 2 "two INT64_MAX produce events, embedded" -- E --as "$MAN" import "$big"
  [ "$(size)" = "$n0" ] && ok || bad "an overflowing embedded import stored something"
fi

if has session; then
  # A session (MACed, numbered requests on one connection): each number
  # is served once, in any order within the window; a bad MAC, another
  # connection, an OpenSession inside it and an expired session are
  # refused; tracectl works in sessions and after they expire.
  start --session-idle 1
  expect 0 "requests in a session" -- "$RAW" "$IPC" session "$K/$PHARM.key" "$PHARM" 2 -- head
  for want in "open code=0" "first code=0 gone=0" "again code=5 gone=0" \
              "skip code=0 gone=0" "back code=0 gone=0" "badmac code=5 gone=0" \
              "other code=5 gone=1" "reopen code=5 gone=0" "later code=5 gone=1"; do
    grep -qx "$want" "$W/out" && ok || bad "session: wanted '$want' in: $(tr '\n' ' ' <"$W/out")"
  done
  grep -q "replayed request of $PHARM (session)" "$W/traced.log" && ok ||
    bad "the replay in a session is not logged"
  expect 0 "tracectl balance in a session" -- C --as "$PHARM" balance "$PHARM"
  expect 0 "tracectl balance signing each request" -- CS --as "$PHARM" balance "$PHARM"
  cmp -s "$W/out" <(C --as "$PHARM" balance "$PHARM" 2>/dev/null) && ok ||
    bad "a session answers otherwise than signed requests"
  printf '{"type":"produce","id":"ses-1","party":"%s","at":"2026-03-02T08:00:00+08:00","substance":"acetone","lot":"SES-1","qty":"1","unit":"L"}\n' "$MAN" >"$W/ses.jsonl"
  expect 0 "an import in a session" -- C --as "$MAN" import "$W/ses.jsonl"
  opened=$(grep -c "opened a session for $PHARM" "$W/traced.log")
  expect 0 "tracectl's client across an expired session" -- "$RAW" "$IPC" client "$K" "$PHARM" 2
  grep -qx "client 0 0" "$W/out" && ok || bad "the client did not open its session again: $(cat "$W/out" "$W/err")"
  [ "$(grep -c "opened a session for $PHARM" "$W/traced.log")" = $((opened + 2)) ] && ok ||
    bad "the client did not open two sessions (one, then another after the expiry)"
  # a one-request command signs its request and opens no session
  opened=$(grep -c "opened a session for $PHARM" "$W/traced.log")
  expect 0 "a single balance" -- C --as "$PHARM" balance "$PHARM"
  [ "$(grep -c "opened a session for $PHARM" "$W/traced.log")" = "$opened" ] && ok ||
    bad "a single request opened a session"
  alive && ok || bad "traced died in the session case"
  # health without a party key: an unauthenticated Hello
  expect 0 "status without a key" -- "$T" --connect "$IPC" --keys "$W/no-keys" status
  grep -q "^ledger: $(size) entries, head " "$W/out" && grep -q "^last commit: 20" "$W/out" &&
    ok || bad "status says: $(cat "$W/out")"
  expect 0 "status --json" -- "$T" --connect "$IPC" --keys "$W/no-keys" --json status
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["running"] and d["entries"] > 0 and d["last_commit"] and d["jobs"] == 0' "$W/out" &&
    ok || bad "status --json says: $(cat "$W/out")"
  stop
  expect 6 "status of a stopped daemon" -- "$T" --connect "$IPC" --keys "$W/no-keys" --json status
  grep -q '"running":false' "$W/out" && ok || bad "status of a stopped daemon says: $(cat "$W/out")"
fi

if has replay; then
  # A request signed 3.9 s ahead of the clock stays acceptable until
  # 7.9 s from now: resent every 250 ms for 9 s, only the first is served.
  start --clock-window 4
  # a cache that turns over by arrival time would forget the request
  # while it is still acceptable when a turn falls just after it: make
  # one fall there (a request 4.2 s after the start turns it, the next
  # turn is due 4 s later; ours arrives 3.5 s after the first)
  sleep 4.2
  C head >/dev/null 2>&1
  sleep 3.5
  expect 0 "a request signed 3.9 s ahead" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR \
    --skew-ms 3900 --save "$W/ahead.bin" -- head
  grep -q "code=0" "$W/out" && ok || bad "request ahead of the clock: $(head -1 "$W/out")"
  timeout 60 "$RAW" "$IPC" resend "$W/ahead.bin" 9 250 >"$W/resend.out" 2>&1
  served=$(grep -c "code=0" "$W/resend.out")
  refused=$(grep -c "code=5" "$W/resend.out")
  echo "replay: $refused resends refused, $served served, over $(tail -1 "$W/resend.out" | cut -d' ' -f1) ms"
  [ "$served" -eq 0 ] && ok || bad "a replayed request was served again: $(grep -m1 code=0 "$W/resend.out")"
  [ "$refused" -ge 20 ] && ok || bad "too few resends answered: $refused"
  stop
  # signed 20 s ahead with a 30 s window: still acceptable after a restart
  start --clock-window 30 --rate 20 --burst 20
  expect 0 "a request signed 20 s ahead" -- "$RAW" "$IPC" signed "$K/REGULATOR.key" REGULATOR \
    --skew 20 --save "$W/ahead20.bin" -- head
  grep -q "code=0" "$W/out" && ok || bad "request 20 s ahead: $(head -1 "$W/out")"
  # replays are refused before the rate limit: 3 s of replays at 50/s
  # (over the rate of 20/s) leave the regulator its own tokens
  timeout 60 "$RAW" "$IPC" resend "$W/ahead20.bin" 3 20 >"$W/drain.out" 2>&1
  grep -q "code=6" "$W/drain.out" && bad "a replay was refused as over the rate: it spent a token" || ok
  expect 0 "the regulator is served during replays of its request" -- C --timeout 5 head
  stop
  start --clock-window 30
  expect 0 "the request signed ahead, after a restart" -- "$RAW" "$IPC" file "$W/ahead20.bin"
  grep -q "code=5" "$W/out" && ok || bad "replayed after a restart: $(head -1 "$W/out")"
  expect 0 "a fresh request after the restart" -- C head
  stop
fi

if has flood; then
  # a small cache and no rate limit: only the per-party share stops it
  start --replay-cache 4096 --rate 0
  timeout 60 "$RAW" "$IPC" flood "$K/$PHARM.key" "$PHARM" 4 >"$W/flood.out" 2>&1
  echo "flood by $PHARM: $(tr '\n' ' ' <"$W/flood.out")"
  grep -q "^code=6 [1-9]" "$W/flood.out" && ok || bad "the flood was never refused: $(cat "$W/flood.out")"
  expect 0 "the regulator is served after the flood" -- C --timeout 5 head
  expect 0 "another party is served after the flood" -- C --as "$DIST" --timeout 5 balance "$DIST"
  grep -q "share of the replay cache" "$W/traced.log" && ok || bad "the share refusal is not logged"
  stop
  # with the default rate limit the flood is refused as too fast and
  # takes no place in the cache
  start --rate 100 --burst 100
  timeout 60 "$RAW" "$IPC" flood "$K/$PHARM.key" "$PHARM" 3 >"$W/flood.out" 2>&1
  echo "flood by $PHARM, rate 100/s: $(tr '\n' ' ' <"$W/flood.out")"
  grep -q "^code=6 [1-9]" "$W/flood.out" && ok || bad "the flood was never refused as too fast"
  grep -q "share of the replay cache" "$W/traced.log" && bad "the rate limit did not act first" || ok
  expect 0 "the regulator is served after a rate-limited flood" -- C --timeout 5 head
  stop
fi

if has silent; then
  start --first-request-timeout 4000
  timeout 60 "$RAW" "$TCP" hold 300 7 >"$W/hold-tcp.out" 2>&1 &
  H1=$!
  timeout 60 "$RAW" "$IPC" hold 300 7 >"$W/hold-ipc.out" 2>&1 &
  H2=$!
  sleep 1.5 # connected, and idle past idle-grace
  expect 0 "head over tcp:// beside 300 silent connections" -- CT --timeout 5 head
  expect 0 "head over ipc:// beside 300 silent connections" -- C --timeout 5 head
  expect 0 "another party over tcp:// too" -- CT --as "$DIST" --timeout 5 balance "$DIST"
  wait "$H1" "$H2"
  echo "silent: tcp: $(tr '\n' ' ' <"$W/hold-tcp.out"); ipc: $(tr '\n' ' ' <"$W/hold-ipc.out")"
  # everything the daemon accepted was closed: to make room, or after
  # first-request-timeout
  for f in tcp ipc; do
    up=$(sed -n 's/^connected //p' "$W/hold-$f.out")
    gone=$(sed -n 's/^closed by the daemon //p' "$W/hold-$f.out")
    [ -n "$up" ] && [ "$up" -gt 0 ] && [ "$gone" = "$up" ] && ok ||
      bad "$f: $up silent connections, $gone closed by the daemon"
  done
  grep -q "no admitted request within first-request-timeout" "$W/traced.log" && ok || bad "silent connections not closed in time"
  grep -q "max-peer-connections\|make room" "$W/traced.log" && ok || bad "the connection limits did not act"
  stop
  # connections that keep sending unsigned Hellos are idle all the same
  start --max-connections 16
  timeout 60 "$RAW" "$TCP" chatty 16 5 >"$W/chatty.out" 2>&1 &
  H1=$!
  sleep 1.5
  expect 0 "head over tcp:// beside 16 chatty connections at max-connections 16" -- CT --timeout 5 head
  wait "$H1"
  echo "chatty: $(cat "$W/chatty.out")"
  stop
fi

if has memory; then
  # on a sanitizer build freed memory waits in a quarantine: keep it small
  # so that the peak measures what traced holds
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16 start
  max=$("$RAW" "$IPC" hello)
  echo "memory: 24 connections x $((max - 64)) bytes of junk; 240 unfinished requests from 4 addresses"
  timeout 60 "$RAW" "$TCP" junk 24 $((max - 64)) 15 >"$W/junk.out" 2>&1 &
  J=$!
  timeout 60 "$RAW" "$TCP" junk 240 "$max" 15 partial 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 >"$W/partial.out" 2>&1 &
  J2=$!
  sleep 2
  slow=0
  for _ in $(seq 10); do
    s0=$(date +%s%N)
    C --timeout 2 head >/dev/null 2>&1 || slow=$((slow + 1))
    echo $((($(date +%s%N) - s0) / 1000000)) >>"$W/head.ms"
    sleep 0.3
  done
  wait "$J" "$J2"
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
  echo "memory: junk $(cat "$W/junk.out"), unfinished $(cat "$W/partial.out"); traced VmHWM $((hwm / 1024)) MiB; regulator head: 10 asked, $slow not answered within 2 s, slowest $(sort -n "$W/head.ms" | tail -1) ms"
  [ "$slow" -eq 0 ] && ok || bad "the regulator was not served within 2 s: $slow of 10"
  [ "$hwm" -le $((512 * 1024)) ] && ok || bad "traced's VmHWM $((hwm / 1024)) MiB > 512 MiB"
  grep -q "sent 0 " "$W/junk.out" && bad "no junk message was sent" || ok
  stop
fi

checks_done hostile
