#!/usr/bin/env bash
# Reports which CPU variants the exactness model tests are rerun on (tests/CMakeLists.txt,
# KVSTREAM_TEST_VARIANTS). None: exit 77, which ctest shows as a skipped test with this reason,
# so a run without the reruns says so instead of dropping them silently.
# Usage: check_variant_reruns.sh "VARIANT;VARIANT..." BACKEND_DIR
set -euo pipefail
variants=$1 dir=$2
if [ -z "$variants" ]; then
  if compgen -G "$dir/libggml-cpu-*.so" >/dev/null; then
    why="KVSTREAM_TEST_VARIANTS was set empty for this build tree"
  else
    why="$dir has no runtime-loaded CPU variants (a llama.cpp with its CPU backend built in)"
  fi
  echo "SKIPPED: the exactness tests are not rerun on other CPU variants: $why" >&2
  exit 77
fi
for v in ${variants//;/ }; do
  [ -f "$dir/libggml-cpu-$v.so" ] || { echo "FAIL: variant $v is not built in $dir" >&2; exit 1; }
done
echo "the exactness tests are rerun on: ${variants//;/, }"
