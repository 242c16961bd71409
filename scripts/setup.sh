#!/usr/bin/env bash
# Sets up everything kvstream needs on Debian 12 and builds it. Idempotent: installs only the
# missing Debian packages, reuses the cached llama.cpp build, and rebuilds kvstream incrementally.
#
# Usage: scripts/setup.sh [build-dir [cmake options...]]   (default: build)
#        e.g. scripts/setup.sh build-asan -DKVSTREAM_SANITIZE=address (what scripts/test.sh does)
# Env:   KVSTREAM_LLAMA_PREFIX  use an existing llama.cpp install instead of building the pinned one
#        KVSTREAM_CUDA=1        build the pinned llama.cpp with its CUDA backend (needs nvcc)
#        KVSTREAM_AMX=1         keep ggml's AMX CPU variant (left out: it crashes, llama.cpp #20824)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages and why:
#   build-essential cmake ninja-build  compilers and the build
#   git nodejs npm openssl             fetch (npm pack), verify (sha512) and unpack the pinned llama.cpp
#   libcli11-dev                       command-line parsing
#   googletest                         the test suite (GoogleTest / GoogleMock sources and CMake config)
#   libgtest-dev                       prebuilt GoogleTest libraries
#   clang-format                       the lint test checks formatting (.clang-format)
#   nlohmann-json3-dev                 JSON bodies of the HTTP API
#   libboost1.81-dev                   Boost.Asio and Boost.Beast: the HTTP server (headers only)
#   libssl-dev                         SHA-256 digests of API keys (OpenSSL's libcrypto)
#   curl                               the benchmark scripts wait for /health with it
#   libsqlite3-dev                     the durable session store (SQLite, WAL mode)
#   chromium                           the dashboard's browser test (driven by playwright-core)
packages=(build-essential cmake ninja-build git openssl ca-certificates
          libcli11-dev googletest libgtest-dev clang-format nlohmann-json3-dev
          libboost1.81-dev libssl-dev curl libsqlite3-dev chromium)
# Node.js may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with Debian's npm):
# any working node + npm will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if [ -n "${KVSTREAM_LLAMA_PREFIX:-}" ]; then
  prefix="$KVSTREAM_LLAMA_PREFIX"
else
  cuda_flag=()
  [ "${KVSTREAM_CUDA:-0}" = 1 ] && cuda_flag=(--cuda)
  prefix=$(scripts/build_llama.sh "${cuda_flag[@]}" | tail -n 1)
fi

build="${1:-build}"
shift || true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DKVSTREAM_LLAMA_PREFIX="$prefix" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/kvstream (libllama from $prefix)" >&2
