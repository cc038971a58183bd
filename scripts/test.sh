#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up a fresh Debian machine, builds with warnings as errors under
# AddressSanitizer and UBSan, fuzzes the decoders of outside bytes for a
# short while, and runs every test (cmocka unit tests, end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTRACE_WERROR=ON \
      -DTRACE_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
cd "$build"
ctest --output-on-failure -j"$(nproc)"
