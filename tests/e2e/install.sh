#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a scratch prefix and builds a program against
# it twice: with CMake's find_package(trace) and with pkg-config.
#   install.sh BUILD_DIR
set -eu
B=$1
W=$(mktemp -d /tmp/trace-install-XXXXXX)
trap 'rm -rf "$W"' EXIT
cmake --install "$B" --prefix "$W/prefix" >/dev/null
mkdir -p "$W/app"
cat >"$W/app/main.c" <<'C'
#include <stdio.h>
#include <trace/trace.h>
int main(void)
{
    printf("%s\n", trace_strerror(TRACE_EPERM));
    return 0;
}
C
cat >"$W/app/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.18)
project(app C)
find_package(trace REQUIRED)
add_executable(app main.c)
target_link_libraries(app PRIVATE libtrace::trace)
C
pass=0 fail=0
# a sanitized libtrace needs sanitized programs (SAN_FLAGS from ctest)
if cmake -S "$W/app" -B "$W/app/build" -DCMAKE_PREFIX_PATH="$W/prefix" \
      -DCMAKE_C_FLAGS="${SAN_FLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${SAN_FLAGS:-}" >/dev/null &&
   cmake --build "$W/app/build" >/dev/null && "$W/app/build/app" | grep -q "permission denied"; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL: find_package(trace)"
fi
pc=$(find "$W/prefix" -name trace.pc -printf '%h')
# shellcheck disable=SC2046
if cc "$W/app/main.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs --static trace) \
 ${SAN_FLAGS:-} -o "$W/app/app2" && "$W/app/app2" | grep -q "permission denied"; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL: pkg-config trace"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
