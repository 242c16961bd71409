#!/usr/bin/env bash
# Sets everything up, then runs `kvstream demo` on the embedded default (a SmolLM2-135M-shaped
# model with random weights, made once and cached). Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/kvstream demo "$@"
