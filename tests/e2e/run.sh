#!/usr/bin/env bash
# End-to-end tests of `kvstream serve`: real servers on loopback, driven by Node (fetch, SSE, the
# openai client). Usage: tests/e2e/run.sh KVSTREAM_BINARY MODEL_PATH
# Installs the Node dependencies (package-lock.json) when they are missing or out of date, then
# runs every tests/e2e/*.test.mjs one file at a time. The exit code is node's.
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: $0 KVSTREAM_BINARY MODEL_PATH" >&2
  exit 2
fi
bin=$(realpath "$1")
model=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
for f in "$bin" "$model"; do
  [ -e "$f" ] || { echo "$0: $f does not exist" >&2; exit 2; }
done
command -v node >/dev/null || { echo "$0: node (18+) is required" >&2; exit 2; }

# npm ci rewrites node_modules; its .package-lock.json is newer than package-lock.json after it.
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund >&2
fi

# A model with a chat template for /v1/chat/completions: a 2-layer SmolLM2-135M shape twin
# (random weights, ChatML template), made once next to the binary.
chat_model="$(dirname "$bin")/test-models/smollm2-135m-2layer-chat-q8_0.gguf"
if [ ! -f "$chat_model" ]; then
  mkdir -p "$(dirname "$chat_model")"
  "$bin" make-model --shape smollm2-135m --layers 2 --type q8_0 --out "$chat_model" >&2
fi

cd "$here/../.."
export KVSTREAM_BIN="$bin" KVSTREAM_MODEL="$model" KVSTREAM_CHAT_MODEL="$chat_model"
# One file at a time: some files start several servers and many connections.
# A hung test fails by name after 2 minutes instead of running into ctest's timeout.
concurrency=(--test-concurrency=1 --test-timeout=120000)
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  concurrency=()  # node 18 has neither option
fi
# KVS_E2E_FILES: which files (default: all); the slow suite runs crash.test.mjs alone, longer.
# shellcheck disable=SC2086
exec node --test "${concurrency[@]}" ${KVS_E2E_FILES:-tests/e2e/*.test.mjs}
