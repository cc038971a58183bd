#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages needed to build and test (run as root or
# with sudo available).  Safe to run again.
set -euo pipefail
pkgs=(build-essential cmake pkg-config liblmdb-dev lmdb-utils libssl-dev
      libprotobuf-c-dev protobuf-c-compiler libnng-dev libcmocka-dev
      libjansson-dev python3 python3-jsonschema clang libclang-rt-14-dev openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
