#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# W2, the national load of SPEC section 6: N events from 1,000 parties,
# interleaved in time order (tests/bench/w2gen.py), loaded with
#   import --provision-keys --historic
# into a fresh ledger, embedded and through traced with one client; then
# verify; then PostgreSQL and SQLite load the same file (w2base.sh).
# Prints events/s, entries/s, bytes per event (the whole ledger folder)
# and peak RSS of each process, and the ratios to the other systems.
#
#   w2.sh BUILD_DIR [EVENTS]        (default 1000000; a Release build)
set -euo pipefail
B=${1:?build dir (a Release build)}
N=${2:-1000000}
W=$(mktemp -d /tmp/trace-w2-XXXXXX)
DPID=
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
T=$B/tracectl
rate() { python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); print('%.0f' % (n / s))" "$@"; }
timed() { # OUT CMD...: runs CMD, writes "seconds maxrss_kB" to OUT
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" >/dev/null
}

python3 "$(dirname "$0")/w2gen.py" "$N" >"$W/w2.jsonl"
echo "W2: $N events from 1,000 parties ($(du -m "$W/w2.jsonl" | cut -f1) MB of JSON Lines)"

"$T" --data "$W/emb" init >/dev/null
timed "$W/t1" "$T" --data "$W/emb" import --provision-keys --historic "$W/w2.jsonl"
read -r s rss <"$W/t1"
echo "W2 embedded import: $(rate "$N" "$s") events/s ($s s), tracectl peak RSS $((rss / 1024)) MiB"
timed "$W/t2" "$T" --data "$W/emb" verify
read -r s rss <"$W/t2"
entries=$((N + 1001))
echo "W2 verify: $(rate "$entries" "$s") entries/s ($s s, $entries entries), peak RSS $((rss / 1024)) MiB"
bytes=$(du -sb "$W/emb" | cut -f1)
echo "W2 disk: $((bytes / N)) bytes/event (the whole ledger folder, $((bytes / 1048576)) MiB)"

"$T" --data "$W/dmn" init >/dev/null
"$B/traced" --data "$W/dmn" --listen "ipc://$W/d.ipc" --log-level error \
  --reconcile-at off 2>"$W/traced.log" &
DPID=$!
for _ in $(seq 100); do
  "$T" --connect "ipc://$W/d.ipc" --keys "$W/dmn/keys" head >/dev/null 2>&1 && break
  sleep 0.1
done
timed "$W/t3" "$T" --connect "ipc://$W/d.ipc" --keys "$W/dmn/keys" import \
  --provision-keys --historic "$W/w2.jsonl"
read -r s rss <"$W/t3"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
echo "W2 through traced, one client: $(rate "$N" "$s") events/s ($s s), traced peak RSS $((hwm / 1024)) MiB, tracectl $((rss / 1024)) MiB"
kill "$DPID"
wait "$DPID" || true
DPID=
bytes=$(du -sb "$W/dmn" | cut -f1)
echo "W2 disk through traced: $((bytes / N)) bytes/event (the whole ledger folder; each commit puts its index entries as they come)"

# The same file into PostgreSQL and SQLite, in the same run (W2_BASE=0
# skips them).
if [ "${W2_BASE:-1}" != 0 ]; then
  emb=$(rate "$N" "$(cut -d' ' -f1 "$W/t1")")
  bash "$(dirname "$0")/w2base.sh" "$W/w2.jsonl" >"$W/base"
  while read -r name r bpe; do
    case $name in
    pg_trigger) label="PostgreSQL 15, chain by a trigger, COPY" ;;
    pg_client) label="PostgreSQL 15, chain by the client, COPY" ;;
    sqlite) label="SQLite, WAL + synchronous=FULL, client chain" ;;
    esac
    echo "W2 $label: $r events/s, $bpe bytes/event; embedded import / it: $(python3 -c "print('%.2f' % ($emb / $r))")"
  done <"$W/base"
fi
