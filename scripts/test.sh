#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds with warnings as errors under
# AddressSanitizer and UBSan, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTRACE_WERROR=ON \
      -DTRACE_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)"
# A short fuzzing run of every decoder of outside bytes (clang/libFuzzer).
cd ..
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
