#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The W2 file (w2.sh) loaded by PostgreSQL and SQLite with per-party hash
# chains, as one transaction each (like `tracectl import`, all or
# nothing):
#   - PostgreSQL 15, the chain computed by a trigger (COPY of party, body),
#   - PostgreSQL 15, the chain computed by the client and COPY,
#   - SQLite, WAL and synchronous=FULL, the chain computed by the client.
# The client's chaining is timed with its load.  Prints one line per
# system: "NAME EVENTS_PER_S BYTES_PER_EVENT" (the table and its index; for
# SQLite the database file with its WAL).
#
#   w2base.sh FILE
set -euo pipefail
F=$(realpath "${1:?W2 JSON Lines file}")
N=$(wc -l <"$F")
W=$(mktemp -d /tmp/trace-w2base-XXXXXX)
C=$(dirname "$0")/chain.py
. "$(dirname "$0")/pglib.sh"
cleanup() {
  pg_stop
  rm -rf "$W"
}
trap cleanup EXIT
rate() { python3 -c "print(round($1 / $2))"; }
now() { date +%s.%N; }
size() { psql -At -c "SELECT pg_total_relation_size('$1')"; }

pg_start
python3 "$C" trigger-csv "$F" >"$W/trigger.csv"
chown -R postgres "$W"
t0=$(now)
psql -c "\\copy ev_trigger(party, body) FROM '$W/trigger.csv' CSV"
t1=$(now)
echo "pg_trigger $(rate "$N" "$(echo "$t1 - $t0" | bc -l)") $(($(size ev_trigger) / N))"
t0=$(now)
python3 "$C" csv "$F" |
  psql -c "\\copy ev_client(party, party_seq, prev, hash, body) FROM STDIN CSV"
t1=$(now)
echo "pg_client $(rate "$N" "$(echo "$t1 - $t0" | bc -l)") $(($(size ev_client) / N))"
pg_stop
r=$(python3 "$C" sqlite "$W/sqlite.db" 0 "$F")
echo "sqlite $r $(($(du -cb "$W"/sqlite.db* | tail -1 | cut -f1) / N))"
