#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GS1 EPCIS interchange (SPEC 11), the quality bars of issue 16: import of
# an N-event EPCISDocument (tests/bench/epcisgen.py: commissioning,
# shipping, receiving, destroying of one product among 520 parties) into
# a fresh ledger holding its master data, with the checks at entry
# (the default) and --historic, then export --format epcis of the same
# ledger; for comparison the JSON Lines import of the same events.
# Prints events/s, wall and CPU seconds and peak RSS of each run; the
# machine may be shared: RUNS repeats give a range.
#
#   epcis.sh BUILD_DIR [EVENTS] [RUNS]   (default 1000000, 3; a Release build)
set -euo pipefail
B=${1:?build dir (a Release build)}
N=${2:-1000000}
RUNS=${3:-3}
W=$(mktemp -d /tmp/trace-epcis-XXXXXX)
trap 'rm -rf "$W"' EXIT
T=$B/tracectl
rate() { python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); print('%.0f' % (n / s))" "$@"; }
timed() { # LABEL OUT-FILE CMD...: runs CMD, prints its figures
  local label=$1 out=$2 s u k rss; shift 2
  /usr/bin/time -f "%e %U %S %M" -o "$W/t" "$@" >"$out"
  read -r s u k rss <"$W/t"
  echo "$label: $(rate "$N" "$s") events/s ($s s wall, $(python3 -c "print('%.1f' % ($u + $k))") s CPU), peak RSS $((rss / 1024)) MiB"
}
fresh() { # LEDGER: init, the master data, the parties' keys
  rm -rf "$1"
  "$T" --data "$1" init >/dev/null
  "$T" --data "$1" import --provision-keys "$W/master.jsonl" >/dev/null
}

python3 "$(dirname "$0")/epcisgen.py" "$N" --master "$W/master.jsonl" >"$W/doc.json"
echo "EPCIS: $N events, $(du -m "$W/doc.json" | cut -f1) MB; machine load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$RUNS"); do
  echo "-- run $r (load $(cut -d' ' -f1-3 /proc/loadavg))"
  fresh "$W/l"
  timed "EPCIS import (checks at entry)" /dev/null "$T" --data "$W/l" import --provision-keys --format epcis "$W/doc.json"
  timed "EPCIS export" "$W/out.json" "$T" --data "$W/l" export --format epcis
  fresh "$W/h"
  timed "EPCIS import --historic" /dev/null "$T" --data "$W/h" import --provision-keys --historic --format epcis "$W/doc.json"
  if [ "$r" = 1 ]; then
    "$T" --data "$W/l" export | grep -v '"type":"\(party\|product\|key\)' >"$W/moves.jsonl"
  fi
  fresh "$W/j"
  timed "JSON Lines import of the same events (checks)" /dev/null "$T" --data "$W/j" import --provision-keys "$W/moves.jsonl"
done
