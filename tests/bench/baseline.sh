#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Side-by-side ingest benchmark: the same events, in durable batches of
# 10,000, into
#   - this ledger (tracectl import: JSON parsing, signing, hash chains and
#     every index),
#   - PostgreSQL 15 with a per-party hash chain computed by a trigger,
#   - PostgreSQL 15 with the chain computed by the client and COPY,
#   - SQLite (WAL, synchronous=FULL) with the chain computed by the client.
# PostgreSQL runs from a temporary folder on a Unix socket only.
#
#   baseline.sh TRACECTL [EVENTS]      (default 200000)
#
# Needs the postgresql package (installed if missing, as root).
set -euo pipefail
T=$1
N=${2:-200000}
BATCH=10000
W=$(mktemp -d /tmp/trace-baseline-XXXXXX)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || true)
cleanup() {
  [ -n "${PGBIN:-}" ] && [ -f "$W/pg/postmaster.pid" ] &&
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
if [ -z "$PGBIN" ]; then
  apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
fi

python3 - "$W" "$N" "$BATCH" <<'PY'
import json, os, sys
w, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(w + "/parts")
with open(w + "/parties.jsonl", "w") as f:
    for p in range(1, 5):
        f.write(json.dumps({"type": "party", "id": "reg-%d" % p,
                            "party": "REGULATOR", "at": "2026-01-01T00:00:00Z",
                            "subject": "P%d" % p, "name": "Party %d" % p,
                            "kind": "distributor", "region": "CN-31",
                            "licenses": ["CN-PC-2"]}) + "\n")
for b in range(n // batch):
    p = b % 4 + 1     # each batch is one party's, as a client would send
    with open(w + "/parts/%05d.jsonl" % b, "w") as f:
        for i in range(batch):
            k = b * batch + i
            f.write(json.dumps({
                "type": "sale", "id": "S-%d" % k, "party": "P%d" % p,
                "at": "2026-%02d-%02dT%02d:%02d:00+08:00" % (
                    1 + k % 12, 1 + k % 28, k % 24, k % 60),
                "to": "B%d" % (k % 500), "substance": "acetic-anhydride",
                "lot": "AA-%d" % (k // 7), "qty": "%d.%03d" % (1 + k % 900,
                                                              k % 1000),
                "unit": "kg", "permit": "PF-%d" % (k % 5000),
                "site": "main"}, separators=(",", ":")) + "\n")
PY

rate() { python3 -c "print(round($1 / $2))"; }
now() { date +%s.%N; }

# --- this ledger ---------------------------------------------------------
"$T" --data "$W/ledger" init >/dev/null
"$T" --data "$W/ledger" import --provision-keys "$W/parties.jsonl" >/dev/null
# one event per party first, so keys exist before the timed run
for p in 1 2 3 4; do
  printf '{"type":"loss","id":"warm-%d","party":"P%d","at":"2026-01-02T00:00:00Z","substance":"acetic-anhydride","lot":"W","qty":"1","unit":"kg","reason":"damage"}\n' $p $p
done >"$W/warm.jsonl"
"$T" --data "$W/ledger" import --provision-keys "$W/warm.jsonl" >/dev/null
t0=$(now)
for f in "$W"/parts/*.jsonl; do
  "$T" --data "$W/ledger" import "$f" >/dev/null
done
t1=$(now)
ours=$(rate "$N" "$(echo "$t1 - $t0" | bc -l)")

# --- PostgreSQL -----------------------------------------------------------
chown -R postgres "$W"
runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg" -A trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" \
  -o "-c listen_addresses='' -k $W -c synchronous_commit=on -c fsync=on" \
  start >/dev/null
psql() { runuser -u postgres -- "$PGBIN/psql" -h "$W" -d postgres -q -v ON_ERROR_STOP=1 "$@"; }
psql <<'SQL'
CREATE TABLE ev_trigger (seq bigserial PRIMARY KEY, party text NOT NULL,
  party_seq bigint NOT NULL, prev bytea NOT NULL, hash bytea NOT NULL,
  body text NOT NULL);
CREATE UNIQUE INDEX ON ev_trigger (party, party_seq);
CREATE FUNCTION chain() RETURNS trigger AS $$
DECLARE p_hash bytea; p_seq bigint;
BEGIN
  SELECT hash, party_seq INTO p_hash, p_seq FROM ev_trigger
   WHERE party = NEW.party ORDER BY party_seq DESC LIMIT 1;
  NEW.party_seq := coalesce(p_seq, 0) + 1;
  NEW.prev := coalesce(p_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  NEW.hash := sha256(NEW.prev || convert_to(NEW.body, 'UTF8'));
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chain BEFORE INSERT ON ev_trigger FOR EACH ROW EXECUTE FUNCTION chain();
CREATE TABLE ev_client (seq bigserial PRIMARY KEY, party text NOT NULL,
  party_seq bigint NOT NULL, prev bytea NOT NULL, hash bytea NOT NULL,
  body text NOT NULL);
CREATE UNIQUE INDEX ON ev_client (party, party_seq);
SQL
# trigger: COPY party and body; the database chains
for f in "$W"/parts/*.jsonl; do
  python3 - "$f" >"$f.csv" <<'PY'
import csv, json, sys
w = csv.writer(sys.stdout)
for line in open(sys.argv[1]):
    w.writerow([json.loads(line)["party"], line.rstrip("\n")])
PY
done
chown -R postgres "$W"
t0=$(now)
for f in "$W"/parts/*.jsonl; do
  psql -c "\\copy ev_trigger(party, body) FROM '$f.csv' CSV"
done
t1=$(now)
pg_trigger=$(rate "$N" "$(echo "$t1 - $t0" | bc -l)")

# client: the client chains (timed too) and COPYs every column, one
# transaction per batch
t0=$(now)
for f in "$W"/parts/*.jsonl; do
  python3 - "$f" "$W/heads.json" <<'PY' | psql -c "\\copy ev_client(party, party_seq, prev, hash, body) FROM STDIN CSV"
import csv, hashlib, json, os, sys
path, state = sys.argv[1], sys.argv[2]
heads = {}
if os.path.exists(state):
    heads = {k: (v[0], bytes.fromhex(v[1])) for k, v in json.load(open(state)).items()}
w = csv.writer(sys.stdout)
for line in open(path):
    body = line.rstrip("\n")
    party = json.loads(body)["party"]
    seq, prev = heads.get(party, (0, b"\0" * 32))
    h = hashlib.sha256(prev + body.encode()).digest()
    heads[party] = (seq + 1, h)
    w.writerow([party, seq + 1, "\\x" + prev.hex(), "\\x" + h.hex(), body])
json.dump({k: [v[0], v[1].hex()] for k, v in heads.items()}, open(state, "w"))
PY
done
t1=$(now)
pg_client=$(rate "$N" "$(echo "$t1 - $t0" | bc -l)")

# --- SQLite -------------------------------------------------------------------
sqlite=$(python3 - "$W" <<'PY'
import glob, hashlib, json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1] + "/sqlite.db", isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE ev (seq INTEGER PRIMARY KEY, party TEXT NOT NULL, "
           "party_seq INTEGER NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL, "
           "body TEXT NOT NULL, UNIQUE (party, party_seq))")
files = sorted(glob.glob(sys.argv[1] + "/parts/*.jsonl"))
heads, n = {}, 0
t0 = time.time()
for f in files:
    rows = []
    for line in open(f):
        body = line.rstrip("\n")
        party = json.loads(body)["party"]
        seq, prev = heads.get(party, (0, b"\0" * 32))
        h = hashlib.sha256(prev + body.encode()).digest()
        heads[party] = (seq + 1, h)
        rows.append((party, seq + 1, prev, h, body))
    db.execute("BEGIN")
    db.executemany("INSERT INTO ev (party, party_seq, prev, hash, body) "
                   "VALUES (?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    n += len(rows)
print(round(n / (time.time() - t0)))
PY
)

printf '\nDurable ingest of %d sale events in batches of %d (events/s)\n' "$N" "$BATCH"
printf '%-58s %10s %8s\n' "system" "events/s" "ours/it"
printf '%-58s %10s %8s\n' "this ledger (tracectl import: parse, sign, chain, indexes)" "$ours" "1.00"
for row in "PostgreSQL, chain computed by a trigger:$pg_trigger" \
           "PostgreSQL, chain computed by the client, COPY:$pg_client" \
           "SQLite WAL synchronous=FULL, client chain:$sqlite"; do
  name=${row%%:*} v=${row##*:}
  printf '%-58s %10s %8s\n' "$name" "$v" "$(python3 -c "print('%.2f' % ($ours / $v))")"
done
