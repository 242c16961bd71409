#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (ctest labels: unit, model).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
[ -d tests/e2e/node_modules ] || npm ci --prefix tests/e2e --no-audit --no-fund >&2
cd build
exec ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
