#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of the prescription re-use check at entry (RX_REUSE,
# check.c, the rx index of state.c), with real processes:
#   rx_entry.sh TRACECTL DEMO.jsonl LEDGER-V1
# record refuses a second dispensing of one prescription (exit 2,
# nothing stored) unless --override, check reports it, import warns on
# the line that re-uses one (and --strict refuses), and an old-format
# ledger gets the index built when it is opened for writing, catching a
# re-use of its own prescriptions before and after.
set -u
T=$1 DEMO=$2 V1=$3
W=$(mktemp -d /tmp/trace-e2e-XXXXXX)
LOCKER=
trap '[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null; rm -rf "$W"' EXIT
D=$W/ledger
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
size_of() { "$T" --data "$1" --json verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'; }
# The named databases of a ledger's LMDB environment ("" if mdb_stat is
# not installed).
dbs() { command -v mdb_stat >/dev/null && mdb_stat -a "$1" | sed -n 's/^Status of //p' | tr '\n' ' '; }
PH=12310000MB0000005
disp() { # LEDGER ID RX record|check [more args]: a dispensing of one unit
  local d=$1 id=$2 rx=$3 cmd=$4; shift 4
  "$T" --data "$d" --as $PH "$cmd" dispense "$@" --id "$id" --substance morphine --lot MOR-2601 \
    --qty 1 --unit unit --rx-id "$rx" --prescriber DR-31-0999 --patient 110101199001019999 \
    --written 2026-02-03 --days 1 --form oral --at 2026-02-03T10:00:00+08:00
}

expect 0 "init" -- "$T" --data "$D" init
expect 0 "import demo" -- "$T" --data "$D" import --provision-keys "$DEMO"
n0=$(size_of "$D")

# record: the demo's first dispensing used RX-SH6-2026-000101.
expect 2 "record a re-used prescription" -- disp "$D" rx-1 RX-SH6-2026-000101 record
grep -q "RX_REUSE: prescription RX-SH6-2026-000101 was dispensed already: by $PH as dsp-0001 on 2026-02-01" "$W/err" && ok ||
  bad "record's refusal does not name the earlier dispensing: $(cat "$W/err")"
grep -q "nothing was recorded" "$W/err" && ok || bad "record's refusal: $(cat "$W/err")"
[ "$(size_of "$D")" = "$n0" ] && ok || bad "a refused record stored an entry"
expect 2 "check a re-used prescription" -- disp "$D" rx-1 RX-SH6-2026-000101 check
grep -q "^RX_REUSE: .*dsp-0001" "$W/out" && ok || bad "check: $(cat "$W/out")"
expect 0 "check a new prescription" -- disp "$D" rx-1 RX-E2E-NEW check
grep -q RX_REUSE "$W/out" && bad "check of a new prescription: $(cat "$W/out")" || ok
expect 0 "record --override" -- disp "$D" rx-1 RX-SH6-2026-000101 record --override "prescription re-issued by the hospital"
grep -q "tracectl: warning: RX_REUSE" "$W/err" && ok || bad "record --override gives no warning: $(cat "$W/err")"
[ "$(size_of "$D")" = $((n0 + 1)) ] && ok || bad "record --override stored nothing"
"$T" --data "$D" export | grep '"id":"rx-1"' | grep -q '"override":"prescription re-issued by the hospital"' && ok ||
  bad "the override reason is not stored"
# the earliest dispensing is named, not the overriding one
expect 2 "check after the override" -- disp "$D" rx-2 RX-SH6-2026-000101 check
grep -q "as dsp-0001 on" "$W/out" && ok || bad "check names: $(cat "$W/out")"

# import: a file with two dispensings of one prescription warns on the
# second line only; --strict refuses it, storing nothing.
line() { # ID RX AT
  printf '{"type":"dispense","id":"%s","party":"%s","at":"%s","substance":"morphine","lot":"MOR-2601","qty":"1","unit":"unit","rx":{"id":"%s","prescriber":"DR-31-0457","patient":"310101195001011234","written":"2026-02-04","days_supply":1,"form":"oral"}}\n' "$1" $PH "$3" "$2"
}
{ line imp-1 RX-E2E-IMP 2026-02-04T10:00:00+08:00; line imp-2 RX-E2E-IMP 2026-02-04T11:00:00+08:00; } >"$W/two.jsonl"
{ line str-1 RX-E2E-STR 2026-02-04T10:00:00+08:00; line str-2 RX-E2E-STR 2026-02-04T11:00:00+08:00; } >"$W/strict.jsonl"
n1=$(size_of "$D")
expect 2 "import --strict of a re-use" -- "$T" --data "$D" import --strict "$W/strict.jsonl"
grep -q "line 2: RX_REUSE" "$W/err" && ok || bad "import --strict: $(cat "$W/err")"
[ "$(size_of "$D")" = "$n1" ] && ok || bad "a refused import stored entries"
expect 0 "import of a re-use" -- "$T" --data "$D" import "$W/two.jsonl"
grep -q "warning: line 2: RX_REUSE: prescription RX-E2E-IMP was dispensed already: by $PH as imp-1 on 2026-02-04" "$W/err" && ok ||
  bad "import does not warn on line 2: $(cat "$W/err")"
grep -q "line 1: RX_REUSE" "$W/err" && bad "import warns on line 1" || ok
[ "$(size_of "$D")" = $((n1 + 2)) ] && ok || bad "import did not store both lines"
case "$(dbs "$D")" in "" | *" rx "*) ok ;; *) bad "a new ledger has no rx index: $(dbs "$D")" ;; esac

# An old-format ledger (no rx index).  Opened while another process
# holds its writer lock, it cannot be built: check scans the journal and
# still finds the re-use.  Then the first process that opens it able to
# write builds it, and the check reads it.
O=$W/v1
mkdir "$O" && cp -r "$V1"/. "$O"/ && chmod 600 "$O/pseudonym.key"
case "$(dbs "$O")" in *" rx "*) bad "the old ledger already has an rx index" ;; *) ok ;; esac
python3 - "$O/writer.lock" "$W/locked" <<'PY' &
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
open(sys.argv[2], "w").close()
time.sleep(120)
PY
LOCKER=$!
for _ in $(seq 100); do [ -e "$W/locked" ] && break; sleep 0.1; done
[ -e "$W/locked" ] && ok || bad "could not hold the writer lock"
expect 2 "check on an old ledger being written elsewhere" -- disp "$O" rx-v1 RX-SH6-2026-000102 check
grep -q "RX_REUSE: prescription RX-SH6-2026-000102 was dispensed already: by $PH as dsp-0002 on 2026-02-02" "$W/out" && ok ||
  bad "check without the index: $(cat "$W/out")"
case "$(dbs "$O")" in *" rx "*) bad "built although another process held the writer lock" ;; *) ok ;; esac
kill "$LOCKER"; wait "$LOCKER" 2>/dev/null; LOCKER=
n2=$(size_of "$O")
expect 2 "record a re-use on the old ledger" -- disp "$O" rx-v1 RX-SH6-2026-000101 record
grep -q "as dsp-0001 on 2026-02-01" "$W/err" && ok || bad "old ledger record: $(cat "$W/err")"
case "$(dbs "$O")" in "" | *" rx "*) ok ;; *) bad "the old ledger opened for writing got no rx index: $(dbs "$O")" ;; esac
command -v mdb_dump >/dev/null && {
  [ "$(mdb_dump -p -s rx "$O" | grep -c '^ RX-SH6')" = 2 ] && ok || bad "rx index of the old ledger: $(mdb_dump -p -s rx "$O")"
}
expect 0 "record a new prescription on the old ledger" -- disp "$O" rx-v1 RX-E2E-V1 record
[ "$(size_of "$O")" = $((n2 + 1)) ] && ok || bad "old ledger: record stored nothing"
expect 2 "check a re-use of the new prescription" -- disp "$O" rx-v2 RX-E2E-V1 check
grep -q "as rx-v1 on 2026-02-03" "$W/out" && ok || bad "old ledger, new prescription: $(cat "$W/out")"
expect 2 "check a re-use of an old prescription" -- disp "$O" rx-v2 RX-SH6-2026-000102 check
expect 0 "verify the old ledger" -- "$T" --data "$O" verify

checks_done rx_entry
