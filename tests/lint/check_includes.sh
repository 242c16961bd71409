#!/usr/bin/env bash
# The include rule (docs/architecture.md): libllama/ggml headers only in src/engine/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bad=$(grep -rnE '#include\s*[<"](llama|ggml|gguf)[^>"]*\.h[>"]' src tests \
        --include='*.cpp' --include='*.h' | grep -v '^src/engine/' || true)
if [ -n "$bad" ]; then
  echo "llama.h/ggml.h/gguf.h included outside src/engine/:"
  echo "$bad"
  exit 1
fi
echo "include rule holds"
