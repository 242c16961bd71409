#!/usr/bin/env bash
# Fetch the pinned llama.cpp source (node-llama-cpp@3.21.1's git bundle), verify it, build only the
# libraries, and install them into a cache folder outside the repository keyed by everything that
# changes the binaries: the commit, the CMake flags, the AMX choice, the compiler and CMake.
# A second run with the same key does nothing but print the install prefix.
#
# The default build is portable (docs/architecture.md, "CPU backends"): ggml's CPU backend is built
# as runtime-loaded variants, one per x86-64 feature level (GGML_BACKEND_DL, GGML_CPU_ALL_VARIANTS,
# GGML_NATIVE off, as llama.cpp's own releases ship it), installed in <prefix>/lib/ggml/; kvstream
# loads the best one this CPU can run at start. The variant with ggml's AMX kernels
# (sapphirerapids) is left out: those kernels crash on AMX CPUs (llama.cpp #20824).
#
# Usage: scripts/build_llama.sh [--cuda] [--with-tools] [--native]
#   --cuda        build the CUDA backend too (needs nvcc)
#   --with-tools  build llama-bench and llama-server (for benchmarks: the floor and the peer
#                 server) against the cached libraries; prints the build folder, whose bin/ holds them
#   --native      the alternative the portable build replaced, for measurements only: one CPU
#                 backend compiled for this machine's CPU (-march=native), AMX off
# Env:   KVSTREAM_CACHE (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kvstream)
#        KVSTREAM_AMX=1 keep ggml's AMX variant (opt in once upstream fixes its AMX path)
# Prints the install prefix on the last line of stdout.
set -euo pipefail

readonly kPackage="node-llama-cpp@3.21.1"
readonly kIntegrity="sha512-E3N0Ev2Va0wzydvXYFwM9Hvyo07PoWjt8T/9GMc43Cvt8YkV/NU/tYUgEMC1grTPv2o9PRjQi0G3Wb5P/awiMg=="
readonly kCommit="80fb11ac"
readonly kAmxVariant="sapphirerapids"

cuda=OFF
tools=OFF
native=OFF
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=ON ;;
    --with-tools) tools=ON ;;
    --native) native=ON ;;
    *) echo "build_llama.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
amx=OFF
[ "${KVSTREAM_AMX:-0}" = 1 ] && amx=ON

cache="${KVSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvstream}"
flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_COMMON=OFF
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
       -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DGGML_CUDA="$cuda")
if [ "$native" = ON ]; then
  flags+=(-DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF)
  if [ "$amx" = OFF ]; then
    flags+=("-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
            "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
  fi
else
  flags+=(-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON)
fi
[ "$cuda" = ON ] && flags+=(-DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}")

# Everything that changes the binaries is in the key. A native build also depends on the CPU it
# was compiled on (-march=native), so its key covers this machine's CPU flags.
key_text=$(printf '%s\n' "${flags[@]}" "amx=$amx" "$(c++ --version | head -n 1)" \
           "$(cc --version | head -n 1)" "$(cmake --version | head -n 1)")
if [ "$native" = ON ]; then
  key_text+=$'\n'$(grep -m1 '^flags' /proc/cpuinfo)
  [ "$cuda" = ON ] && key_text+=$'\n'$(nvcc --version | tail -n 1)
fi
key="$kCommit-$(printf '%s' "$key_text" | sha256sum | cut -c1-12)"
prefix="$cache/llama/$key"
# Runtime-loaded backends live in one folder that libggml searches first (GGML_BACKEND_DIR).
[ "$native" = OFF ] && flags+=(-DGGML_BACKEND_DIR="$prefix/lib/ggml")

fetch_tree() {
  local work="$cache/llama/src"
  mkdir -p "$work"
  local tarball="$work/node-llama-cpp-3.21.1.tgz"
  if [ ! -f "$tarball" ]; then
    echo "llama.cpp: fetching $kPackage from the npm registry" >&2
    (cd "$work" && npm pack "$kPackage" --silent >/dev/null)
  fi
  local actual
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
  local head
  head=$(git -C "$tree" rev-parse HEAD)
  case "$head" in
    "$kCommit"*) ;;
    *) echo "llama.cpp: bundle HEAD is $head, expected $kCommit" >&2; exit 1 ;;
  esac
  if [ "$cuda" = ON ] && ! command -v nvcc >/dev/null; then
    echo "llama.cpp: --cuda needs nvcc on PATH" >&2
    exit 1
  fi
}

build_libraries() {
  fetch_tree
  local build="$cache/llama/src/build-$key"
  local what="portable CPU variants"
  [ "$native" = ON ] && what="native CPU backend"
  echo "llama.cpp $kCommit: building the libraries ($what) into $prefix (minutes, once per machine)" >&2
  rm -rf "$prefix"
  cmake -S "$tree" -B "$build" -G Ninja "${flags[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" >&2
  cmake --build "$build" -j"$(nproc)" >&2
  cmake --install "$build" >&2
  if [ "$amx" = OFF ]; then
    rm -f "$prefix/lib/ggml/libggml-cpu-$kAmxVariant.so"
  fi
  # Real tokenizers without weights, for `kvstream make-model` shape twins.
  mkdir -p "$prefix/share/llama-vocab"
  cp "$tree"/models/ggml-vocab-*.gguf "$prefix/share/llama-vocab/"
  # What `kvstream --version` reports about this build.
  {
    echo "commit=$kCommit"
    echo "amx=$amx"
    echo "native=$native"
    echo "flags=${flags[*]}"
  } >"$prefix/kvstream-build.txt"
  touch "$prefix/.complete"
  rm -rf "$build"
}

[ -f "$prefix/.complete" ] || build_libraries

if [ "$tools" = OFF ]; then
  echo "llama.cpp $kCommit: cached at $prefix" >&2
  echo "$prefix"
  exit 0
fi

# Tools (llama-bench for the benchmark floor, llama-server as the peer system) are built against
# the cached ggml (LLAMA_USE_SYSTEM_GGML), so they run the same CPU variants as kvstream. They are
# built, not installed: the build folder is the cached artifact.
tools_dir="$prefix-tools"
if [ ! -f "$tools_dir/.complete" ]; then
  fetch_tree
  echo "llama.cpp $kCommit: building llama-bench and llama-server into $tools_dir (minutes, once per machine)" >&2
  rm -rf "$tools_dir"
  cmake -S "$tree" -B "$tools_dir" -G Ninja "${flags[@]}" -DLLAMA_USE_SYSTEM_GGML=ON \
        -Dggml_DIR="$prefix/lib/cmake/ggml" -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_SERVER=ON >&2
  cmake --build "$tools_dir" -j"$(nproc)" --target llama-bench llama-server >&2
  touch "$tools_dir/.complete"
fi
echo "$tools_dir"
