#!/usr/bin/env bash
# Sets everything up, then runs the test suite: ctest labels unit, model, lint and e2e, then the
# sanitizer run (below). Extra arguments go to ctest instead of the default `-LE slow`, e.g.
# `scripts/test.sh -L unit` (the sanitizer run is left out then); `scripts/test.sh -L slow` runs
# the slow suite (the crash test with 25 kills).
#
# The sanitizer run: a second tree, build-asan, with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DKVSTREAM_SANITIZE=address: -fsanitize=address,undefined -fno-sanitize-recover=undefined, so
# undefined behaviour fails the test; libllama and ggml stay uninstrumented), running the unit,
# model and e2e labels again (docs/architecture.md, "Sanitizers"). KVSTREAM_ASAN=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
# llama-server and llama-bench for the market benchmark's smoke run (cached after the first time).
scripts/build_llama.sh --with-tools >/dev/null
[ -d tests/e2e/node_modules ] || npm ci --prefix tests/e2e --no-audit --no-fund >&2
if [ "$#" -ne 0 ]; then
  cd build
  exec ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
fi

status=0
(cd build && ctest --output-on-failure --timeout 600 -j"$(nproc)" -LE slow) || status=$?
if [ "${KVSTREAM_ASAN:-1}" != 0 ]; then
  # Debug: the fastest build; the compute is in the (optimized, uninstrumented) libllama anyway.
  # The exactness reruns on other CPU variants test kernels, not our memory: left out here.
  # The shape twins the tests make are shared with the first tree (made once).
  scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DKVSTREAM_SANITIZE=address \
    -DKVSTREAM_TEST_VARIANTS= -DKVSTREAM_TEST_MODEL_DIR="$PWD/build/test-models"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
  # The market benchmark's smoke run mostly measures llama-server; the e2e tests cover our server.
  (cd build-asan && ctest --output-on-failure --timeout 1200 -j"$(nproc)" -L 'unit|model|e2e' \
    -LE slow -E '^bench\.market_smoke$') || status=$?
fi
exit "$status"
