# SPDX-License-Identifier: Apache-2.0
# checks.sh - counting checks for the end-to-end scripts (sourced; the
# script sets W, its scratch folder):
#   ok / bad MSG                 count a check that held / failed
#   expect CODE DESC -- CMD...   run CMD (output in $W/out, $W/err) and
#                                check its exit code
#   checks_done NAME             "NAME: N passed, M failed"; status 0 if
#                                none failed
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() {
  local want=$1 desc=$2; shift 3
  "$@" >"$W/out" 2>"$W/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok; else
    bad "$desc: exit $got, wanted $want"; sed 's/^/  | /' "$W/err" "$W/out" | head -6
  fi
}
checks_done() {
  echo "$1: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
