#!/usr/bin/env bash
# Speculative decoding by prompt lookup, on and off, for 1, 4 and 16 concurrent decoders
# (`kvstream spec-bench`): stories260K (real weights: its acceptance rate means something) and
# the Qwen2.5-0.5B shape twin (random weights: what verifying drafts costs at that size, when
# they are rejected). Writes bench/results/spec-<UTC time>/ with one JSON per model and the
# tables the command prints.
# Usage: bench/spec.sh [--quick]   (--quick: 1 and 4 decoders, one repetition)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

decoders="1,4,16"; reps=3
if [ "${1:-}" = "--quick" ]; then decoders="1,4"; reps=1; fi
scripts/setup.sh build
bench_default_model
shared="${KVSTREAM_SHARED_DIR:-../shared}"
out="bench/results/spec-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info 2 "$model" > "$out/machine.txt"
cat "$out/machine.txt"
for m in "$shared/models/stories260K.gguf" "$model"; do
  name=$(basename "$m" .gguf)
  echo "== $name" | tee -a "$out/tables.txt"
  build/kvstream spec-bench --model "$m" --decoders "$decoders" --reps "$reps" --threads 2 \
    --json "$out/$name.json" | tee -a "$out/tables.txt"
done
echo "results: $out"
