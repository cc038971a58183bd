# SPDX-License-Identifier: Apache-2.0
# PostgreSQL for the side-by-side benchmarks, sourced by baseline.sh and
# w2base.sh: a throw-away cluster in folder $W (from a temporary folder,
# on a Unix socket only, fsync and synchronous commit on) and two tables
# of hash-chained events, one chained by a trigger, one by the client.
# Needs the postgresql package (installed if missing, as root).
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || true)
if [ -z "$PGBIN" ]; then
  apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
fi

pg_stop() {
  [ -f "$W/pg/postmaster.pid" ] &&
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg" -m fast stop >/dev/null 2>&1 || true
}

psql() { runuser -u postgres -- "$PGBIN/psql" -h "$W" -d postgres -q -v ON_ERROR_STOP=1 "$@"; }

pg_start() {
  chown -R postgres "$W"
  runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg" -A trust >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" \
    -o "-c listen_addresses='' -k $W -c synchronous_commit=on -c fsync=on" \
    start >/dev/null
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
}
