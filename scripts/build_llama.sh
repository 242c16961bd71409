#!/usr/bin/env bash
# Fetch the pinned llama.cpp source (node-llama-cpp@3.21.1's git bundle), verify it, build only the
# libraries, and install them into a cache folder outside the repository keyed by commit and flags.
# A second run with the same commit and flags does nothing but print the install prefix.
#
# Usage: scripts/build_llama.sh [--cuda] [--with-tools]
#   --cuda        build the CUDA backend too (needs nvcc)
#   --with-tools  build llama-bench and llama-server instead (for benchmarks: the floor and the
#                 peer server); prints the build folder, whose bin/ holds them
# Env:   KVSTREAM_CACHE (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kvstream)
# Prints the install prefix on the last line of stdout.
set -euo pipefail

readonly kPackage="node-llama-cpp@3.21.1"
readonly kIntegrity="sha512-E3N0Ev2Va0wzydvXYFwM9Hvyo07PoWjt8T/9GMc43Cvt8YkV/NU/tYUgEMC1grTPv2o9PRjQi0G3Wb5P/awiMg=="
readonly kCommit="80fb11ac"

cuda=OFF
tools=OFF
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=ON ;;
    --with-tools) tools=ON ;;
    *) echo "build_llama.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

cache="${KVSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvstream}"
flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=OFF
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
       -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DGGML_CUDA="$cuda")
if [ "$tools" = ON ]; then
  flags+=(-DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON)
else
  flags+=(-DLLAMA_BUILD_TOOLS=OFF)
fi
[ "$cuda" = ON ] && flags+=(-DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}")

key="$kCommit-$(printf '%s\n' "${flags[@]}" | sha256sum | cut -c1-12)"
prefix="$cache/llama/$key"
if [ -f "$prefix/.complete" ]; then
  echo "llama.cpp $kCommit: cached at $prefix" >&2
  echo "$prefix"
  exit 0
fi

work="$cache/llama/src"
mkdir -p "$work"
tarball="$work/node-llama-cpp-3.21.1.tgz"
if [ ! -f "$tarball" ]; then
  echo "llama.cpp: fetching $kPackage from the npm registry" >&2
  (cd "$work" && npm pack "$kPackage" --silent >/dev/null)
fi
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$kIntegrity" ]; then
  echo "llama.cpp: integrity mismatch for $tarball" >&2
  echo "  expected $kIntegrity" >&2
  echo "  actual   $actual" >&2
  rm -f "$tarball"
  exit 1
fi

tree="$work/llama.cpp-$kCommit"
if [ ! -d "$tree/.git" ]; then
  rm -rf "$work/unpacked" "$tree"
  mkdir -p "$work/unpacked"
  tar -xzf "$tarball" -C "$work/unpacked" package/llama/gitRelease.bundle
  git clone --quiet "$work/unpacked/package/llama/gitRelease.bundle" "$tree"
  rm -rf "$work/unpacked"
fi
head=$(git -C "$tree" rev-parse HEAD)
case "$head" in
  "$kCommit"*) ;;
  *) echo "llama.cpp: bundle HEAD is $head, expected $kCommit" >&2; exit 1 ;;
esac

if [ "$cuda" = ON ] && ! command -v nvcc >/dev/null; then
  echo "llama.cpp: --cuda needs nvcc on PATH" >&2
  exit 1
fi

if [ "$tools" = ON ]; then
  # Tools (llama-bench for the benchmark floor, llama-server as the peer system) are built, not
  # installed: the build folder is the cached artifact, and the binaries find their libraries
  # through the build tree's RPATH.
  echo "llama.cpp $kCommit: building llama-bench and llama-server into $prefix (several minutes, once per machine)" >&2
  cmake -S "$tree" -B "$prefix" -G Ninja "${flags[@]}" >&2
  cmake --build "$prefix" -j"$(nproc)" --target llama-bench llama-server >&2
  touch "$prefix/.complete"
  echo "$prefix"
  exit 0
fi

build="$work/build-$key"
echo "llama.cpp $kCommit: building into $prefix (takes a few minutes once per machine)" >&2
cmake -S "$tree" -B "$build" -G Ninja "${flags[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" >&2
cmake --build "$build" -j"$(nproc)" >&2
cmake --install "$build" >&2
# Real tokenizers without weights, for `kvstream make-model` shape twins.
mkdir -p "$prefix/share/llama-vocab"
cp "$tree"/models/ggml-vocab-*.gguf "$prefix/share/llama-vocab/"
touch "$prefix/.complete"
rm -rf "$build"
echo "$prefix"
