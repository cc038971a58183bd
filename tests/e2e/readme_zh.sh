#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# README's Chinese walk-through works as written: every command between
# the zh-walkthrough markers, run in order on a fresh ledger (./build/
# tracectl replaced by the tracectl under test), exits 0; then the
# refused sale shown after it is refused (exit 2).
#   readme_zh.sh TRACECTL README
set -u
T=$1 README=$2
W=$(mktemp -d /tmp/trace-readme-zh-XXXXXX)
trap 'rm -rf "$W"' EXIT
# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
cp -r "$(dirname "$README")/examples" "$W/examples"
cd "$W" || exit 1
sed -n '/<!-- zh-walkthrough -->/,/<!-- \/zh-walkthrough -->/p' "$README" |
  sed -n 's/^    //p' | grep -v '^T=' >"$W/steps"
[ "$(wc -l <"$W/steps")" -ge 10 ] && ok || bad "the walk-through has $(wc -l <"$W/steps") steps"
while IFS= read -r step; do
  # shellcheck disable=SC2086
  (eval "${step//\$T/\"$T\"}") >"$W/out" 2>"$W/err"
  rc=$?
  [ "$rc" -eq 0 ] && ok || { bad "'$step' exited $rc"; sed 's/^/  | /' "$W/err" | head -3; }
done <"$W/steps"
grep -q "物质" <("$T" --data zhdemo --lang zh balance 91320000MA1K000002) && ok || bad "no Chinese heading"
[ "$(head -c 3 "专用账册.csv" | od -An -tx1 | tr -d ' ')" = efbbbf ] && ok || bad "the register CSV has no BOM"
refused=$(grep -m1 'record sale --to 91330000MA1K000003' "$README" | sed 's/^    //')
(eval "${refused//\$T/\"$T\"}") >"$W/out" 2>"$W/err"
[ $? -eq 2 ] && grep -q NEGATIVE_STOCK "$W/err" && ok || bad "the over-stock sale was not refused: $(cat "$W/err")"
checks_done readme_zh
