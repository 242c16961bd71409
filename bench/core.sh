#!/usr/bin/env bash
# The engine-core benchmark: stateful vs stateless query latency against llama-bench's floor.
#
# One question of 32 tokens and an answer of 16 tokens on a session holding exactly D tokens, for
# D in 512, 2048, 8192, on the Qwen2.5-0.5B shape twin (Q8_0), 2 threads. The floor is
# `llama-bench -p 32 -n 16 -d D` built from the same pinned llama.cpp tree: the time of pp32 plus
# tg16 at depth D. Also measures flash attention on vs off at depth (stateful path and floor).
#
# Usage: bench/core.sh [--quick]   (--quick: depths 512,2048 only, fewer repetitions)
# Writes bench/results/core-<UTC time>/{kvstream*.json,llama-bench*.json,report.md} and prints
# the report, which is what docs/benchmarks.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

depths="512,2048,8192"; reps=5; stateless_reps=2; lb_reps=3
if [ "${1:-}" = "--quick" ]; then depths="512,2048"; reps=3; stateless_reps=1; lb_reps=2; fi
threads=2

scripts/setup.sh build
bench_build=$(scripts/build_llama.sh --with-tools | tail -n 1)
llama_bench="$bench_build/bin/llama-bench"
bench_default_model

out="bench/results/core-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info "$threads" "$model" > "$out/machine.txt"
cat "$out/machine.txt"

echo "== kvstream core-bench, flash attention off" >&2
build/kvstream core-bench --model "$model" --depths "$depths" --threads "$threads" --reps "$reps" \
  --stateless-reps "$stateless_reps" --json "$out/kvstream-fa0.json"
echo "== llama-bench floor, flash attention off and on" >&2
"$llama_bench" -m "$model" -p 32 -n 16 -d "$depths" -t "$threads" -fa 0,1 -r "$lb_reps" \
  -o json > "$out/llama-bench.json"
echo "== kvstream core-bench, flash attention on (stateful path only)" >&2
build/kvstream core-bench --model "$model" --depths "$depths" --threads "$threads" --reps "$reps" \
  --stateless-reps 0 --flash-attn --json "$out/kvstream-fa1.json"

node bench/report.mjs "$out" | tee "$out/report.md"
