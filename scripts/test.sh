#!/usr/bin/env bash
# Sets everything up, then runs the test suite: ctest labels unit, model, lint and e2e. Extra
# arguments go to ctest instead of the default `-LE slow`, e.g. `scripts/test.sh -L unit`;
# `scripts/test.sh -L slow` runs the slow suite (the crash test with 25 kills).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
# llama-server and llama-bench for the market benchmark's smoke run (cached after the first time).
scripts/build_llama.sh --with-tools >/dev/null
[ -d tests/e2e/node_modules ] || npm ci --prefix tests/e2e --no-audit --no-fund >&2
cd build
if [ "$#" -eq 0 ]; then
  set -- -LE slow
fi
exec ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
