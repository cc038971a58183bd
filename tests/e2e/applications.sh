#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Online permit approval (SPEC 12, 网上审批), with real processes:
#   applications.sh TRACECTL TRACED
# A party applies (permit_application), a regulator approves with a
# permit citing the application or rejects it (application_decision).
# Refused at entry, nothing stored: a permit of another kind, substance
# or holder, or a larger budget than asked; an answer to an unknown
# application or to one already answered; a decision by a non-regulator.
# `tracectl applications`: an applicant sees its own, a regulator all
# (--pending: its queue), the same embedded and through traced;
# APPLICATION_OVERDUE after 5 working days, not over a weekend's 4.
set -u
T=$1 TD=$2
W=$(mktemp -d /tmp/trace-apps-XXXXXX)
D=$W/ledger
IPC=ipc://$W/traced.ipc
DPID=
cleanup() {
  [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
E() { "$T" --data "$D" "$@"; }
C() { "$T" --connect "$IPC" --keys "$D/keys" "$@"; }
A=91310000MA1K0000AA B=91310000MA1K0000BB
E init >/dev/null || bad "init"
cat >"$W/p.jsonl" <<JSONL
{"type":"party","id":"r-a","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$A","name":"甲化工","kind":"user","region":"CN-31","licenses":["CN-PC-1","CN-PC-2","CN-PC-3"]}
{"type":"party","id":"r-b","party":"REGULATOR","at":"2026-03-01T08:00:00+08:00","subject":"$B","name":"乙化工","kind":"user","region":"CN-31","licenses":["CN-PC-1","CN-PC-2","CN-PC-3"]}
{"type":"permit_application","id":"ap-1","party":"$A","at":"2026-03-02T09:00:00+08:00","kind":"purchase_license","substance":"ephedrine","qty":"50","unit":"kg","purpose":"生产","valid_from":"2026-03-10","valid_until":"2026-12-31","uses":"multi"}
{"type":"permit_application","id":"ap-2","party":"$B","at":"2026-03-02T09:00:00+08:00","kind":"purchase_filing","substance":"acetone","qty":"500","unit":"L","purpose":"清洗","valid_from":"2026-03-10","valid_until":"2026-12-31","uses":"multi"}
{"type":"permit_application","id":"ap-3","party":"$B","at":"2026-03-05T16:00:00+08:00","kind":"purchase_license","substance":"ephedrine","qty":"5","unit":"kg","counterparty":"$A","purpose":"试验","valid_from":"2026-03-10","valid_until":"2026-06-30","uses":"single"}
JSONL
expect 0 "import applications" -- E import --provision-keys "$W/p.jsonl"
# pm ID KIND SUBSTANCE QTY UNIT HOLDER APPLICATION: record a permit
pm() {
  E record permit --permit "$1" --kind "$2" --substance "$3" --qty "$4" --unit "$5" --holder "$6" \
    --valid_from 2026-03-10 --valid_until 2026-12-31 --uses multi --at 2026-03-04T09:00:00+08:00 --application "$7"
}
P="purchase_license ephedrine 40 kg"
# shellcheck disable=SC2086
{
  expect 2 "a permit of another kind" -- pm PL-X purchase_filing ephedrine 40 kg $A $A/ap-1
  grep -q "permit PL-X is a purchase_filing, but application $A/ap-1 asks for a purchase_license" "$W/err" && ok || bad "kind: $(cat "$W/err")"
  expect 2 "a permit for another substance" -- pm PL-X purchase_license pseudoephedrine 40 kg $A $A/ap-1
  grep -q "permit PL-X is for pseudoephedrine, but application $A/ap-1 asks for ephedrine" "$W/err" && ok || bad "substance: $(cat "$W/err")"
  expect 2 "a permit to another holder" -- pm PL-X $P $B $A/ap-1
  grep -q "permit PL-X is held by $B, but application $A/ap-1 was made by $A" "$W/err" && ok || bad "holder: $(cat "$W/err")"
  expect 2 "a permit granting more than asked" -- pm PL-X purchase_license ephedrine 60 kg $A $A/ap-1
  grep -q "permit PL-X grants 60 kg, more than the 50 kg application $A/ap-1 asks for" "$W/err" && ok || bad "budget: $(cat "$W/err")"
  expect 2 "a permit citing an unknown application" -- pm PL-X $P $A $A/ap-9
  grep -q "cites application $A/ap-9, which $A never recorded" "$W/err" && ok || bad "unknown: $(cat "$W/err")"
  expect 2 "a permit citing another event type" -- pm PL-X $P $A REGULATOR/r-a
  grep -q "which is a \`party\` event, not a permit_application" "$W/err" && ok || bad "not an application: $(cat "$W/err")"
  E export | grep -q '"PL-X"' && bad "a refused permit was stored" || ok
  # approval: a lower budget is fine
  expect 0 "approve ap-1 with a permit" -- pm PL-1 $P $A $A/ap-1
}
expect 0 "reject ap-2" -- E record application_decision --id d-2 --application $B/ap-2 --decision rejected --reason "用途不明" --at 2026-03-06T10:00:00+08:00
expect 2 "a second decision" -- E record application_decision --application $B/ap-2 --decision rejected --reason again
grep -q "application $B/ap-2 was already decided: rejected by REGULATOR's decision" "$W/err" && ok || bad "double decision: $(cat "$W/err")"
expect 2 "a permit for a rejected application" -- pm PL-Y purchase_filing acetone 100 L $B $B/ap-2
grep -q "already decided" "$W/err" && ok || bad "permit after rejection: $(cat "$W/err")"
expect 2 "a decision on an unknown application" -- E record application_decision --application $B/ap-7 --decision rejected --reason x
grep -q "cites application $B/ap-7, which $B never recorded" "$W/err" && ok || bad "unknown decision: $(cat "$W/err")"
expect 2 "a decision other than rejected" -- E record application_decision --application $B/ap-3 --decision approved --reason x
expect 5 "a non-regulator deciding" -- E --as $A record application_decision --application $B/ap-3 --decision rejected --reason x
grep -q "only a regulator may record \`application_decision\` events" "$W/err" && ok || bad "non-regulator: $(cat "$W/err")"
# a permit citing an application in the same batch as it
cat >"$W/batch.jsonl" <<JSONL
{"type":"permit_application","id":"ap-4","party":"$A","at":"2026-03-09T09:00:00+08:00","kind":"purchase_filing","substance":"acetone","qty":"100","unit":"L","purpose":"清洗","valid_from":"2026-03-10","valid_until":"2026-12-31","uses":"multi"}
{"type":"permit","id":"pm-4","party":"REGULATOR","at":"2026-03-10T09:00:00+08:00","permit":"PF-4","kind":"purchase_filing","holder":"$A","substance":"acetone","qty":"100","unit":"L","valid_from":"2026-03-10","valid_until":"2026-12-31","uses":"multi","application":{"party":"$A","id":"ap-4"}}
{"type":"application_decision","id":"d-4","party":"REGULATOR","at":"2026-03-10T09:00:00+08:00","application":{"party":"$A","id":"ap-4"},"decision":"rejected","reason":"twice"}
JSONL
expect 2 "a batch answering an application twice" -- E import "$W/batch.jsonl"
grep -q "line 3: application $A/ap-4 was already decided: approved by REGULATOR's permit PF-4" "$W/err" && ok || bad "batch: $(cat "$W/err")"
head -2 "$W/batch.jsonl" >"$W/batch2.jsonl"
expect 0 "an application and its permit in one batch" -- E import "$W/batch2.jsonl"

# the lists
expect 0 "applications (regulator)" -- E --lang en applications
grep -q "^$A  *ap-1  *purchase_license  *ephedrine  *50 kg  *approved  *2 permit PL-1 (REGULATOR, 2026-03-04T09:00:00+08:00)$" "$W/out" &&
  grep -q "^$B  *ap-2  *purchase_filing  *acetone  *500 L  *rejected  *4 用途不明 (REGULATOR, 2026-03-06T10:00:00+08:00)$" "$W/out" &&
  grep -q "^$B  *ap-3  *purchase_license  *ephedrine  *5 kg  *pending " "$W/out" &&
  grep -q "^$A  *ap-4  .*approved  *1 permit PF-4 " "$W/out" &&
  [ "$(wc -l <"$W/out")" = 5 ] && ok || bad "applications: $(cat "$W/out")"
expect 0 "applications --pending --lang zh" -- E --lang zh applications --pending
head -1 "$W/out" | grep -q "^申请单位 .*申请号 .*状态 .*工作日 .*审批结果$" &&
  grep -q "^$B  *ap-3  *购买许可证 .*待审批" "$W/out" && [ "$(wc -l <"$W/out")" = 2 ] && ok ||
  bad "zh pending: $(cat "$W/out")"
expect 0 "applications --lang zh" -- E --lang zh applications
grep -q "已批准 .*许可证 PL-1（REGULATOR" "$W/out" && grep -q "已驳回 .*用途不明（REGULATOR" "$W/out" && ok || bad "zh: $(cat "$W/out")"
expect 0 "applications --json" -- E --json applications --party $B
[ "$(head -1 "$W/out")" = '{"party":"'$B'","id":"ap-2","at":"2026-03-02T09:00:00+08:00","kind":"purchase_filing","substance":"acetone","qty":"500","unit":"L","counterparty":null,"purpose":"清洗","valid_from":"2026-03-10","valid_until":"2026-12-31","uses":"multi","state":"rejected","permit":null,"decided_by":"REGULATOR","decision":"d-2","decided_at":"2026-03-06T10:00:00+08:00","reason":"用途不明","days":4}' ] &&
  [ "$(wc -l <"$W/out")" = 2 ] && ok || bad "json: $(cat "$W/out")"
expect 0 "an applicant sees its own" -- E --as $A --lang en applications
grep -q "ap-1" "$W/out" && grep -q "ap-4" "$W/out" && ! grep -q "$B" "$W/out" && ok || bad "own: $(cat "$W/out")"
expect 5 "an applicant asking for another's" -- E --as $A applications --party $B
grep -q "permission denied: the applications of $B are not yours to list" "$W/err" && ok || bad "denied: $(cat "$W/err")"
expect 0 "applications --pending of A" -- E --as $A --lang en applications --pending
grep -q "^(no pending applications)$" "$W/out" && ok || bad "A pending: $(cat "$W/out")"

# APPLICATION_OVERDUE: ap-3 (Thursday 16:00) is due by the end of the
# next Thursday; the Wednesday is 4 working days on, over a weekend
expect 0 "reconcile on the 4th working day" -- E --json reconcile --as-of 2026-03-11T23:00:00+08:00 --dry-run
grep -q APPLICATION_OVERDUE "$W/out" && bad "overdue after 4 working days: $(cat "$W/out")" || ok
expect 0 "reconcile at the end of the 5th" -- E --json reconcile --as-of 2026-03-12T23:59:59+08:00 --dry-run
grep -q APPLICATION_OVERDUE "$W/out" && bad "overdue on its last day: $(cat "$W/out")" || ok
expect 0 "reconcile after the 5th working day" -- E --json reconcile --as-of 2026-03-13T00:00:01+08:00
[ "$(grep -c APPLICATION_OVERDUE "$W/out")" = 1 ] &&
  grep -q '"rule":"APPLICATION_OVERDUE".*"party":"'$B'".*"events":\[{"party":"'$B'","id":"ap-3"}\].*application ap-3 of '$B' (ephedrine) has neither a permit nor a decision after 5 working days (due by the end of 2026-03-12)' "$W/out" &&
  ok || bad "overdue: $(cat "$W/out")"

# through traced: the same lists, the same refusals
"$TD" --data "$D" --listen "$IPC" 2>>"$W/traced.log" &
DPID=$!
for _ in $(seq 100); do C head >/dev/null 2>&1 && break; sleep 0.1; done
for who in "" "--as $A" "--as $B"; do
  # shellcheck disable=SC2086
  for args in "applications" "applications --pending" "--json applications"; do
    E $who --lang en $args >"$W/embedded" 2>&1
    C $who --lang en $args >"$W/remote" 2>&1
    cmp -s "$W/embedded" "$W/remote" && ok || bad "traced differs for $who $args: $(diff "$W/embedded" "$W/remote")"
  done
done
expect 5 "through traced: another's applications" -- C --as $A applications --party $B
expect 0 "through traced: apply" -- C --as $A record permit_application --id ap-5 --kind purchase_filing --substance acetone --qty 10 --unit L --purpose 清洗 --valid_from 2026-04-01 --valid_until 2026-06-30 --uses single
expect 5 "through traced: a non-regulator deciding" -- C --as $B record application_decision --application $A/ap-5 --decision rejected --reason x
expect 0 "through traced: reject" -- C record application_decision --application $A/ap-5 --decision rejected --reason 资料不全
expect 2 "through traced: a second decision" -- C record application_decision --application $A/ap-5 --decision rejected --reason x
grep -q "already decided" "$W/err" && ok || bad "traced double: $(cat "$W/err")"
expect 0 "through traced: apply again" -- C --as $A record permit_application --id ap-6 --kind purchase_filing --substance acetone --qty 10 --unit L --purpose 清洗 --valid_from 2026-04-01 --valid_until 2026-06-30 --uses single
expect 0 "through traced: approve (--application.party, --application.id)" -- C record permit --permit PF-6 --kind purchase_filing --holder $A --substance acetone --qty 10 --unit L --valid_from 2026-04-01 --valid_until 2026-06-30 --uses single --application.party $A --application.id ap-6
expect 0 "through traced: A's list" -- C --as $A --lang en applications
grep -q "^$A  *ap-5  .*rejected  .*资料不全" "$W/out" && grep -q "^$A  *ap-6  .*approved  .*permit PF-6 (REGULATOR" "$W/out" && ok ||
  bad "traced A: $(cat "$W/out")"
kill -TERM "$DPID"; wait "$DPID"; DPID=
expect 0 "verify --deep (the apps index)" -- E verify --deep
checks_done applications
