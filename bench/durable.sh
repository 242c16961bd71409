#!/usr/bin/env bash
# The durable sessions benchmark (`kvstream durable-bench`).
#
# On the SmolLM2-135M shape twin (Q8_0, the default model), 2 threads:
#   - store: 8 client threads append market bars to the data log alone and wait for each
#     acknowledgement, with sync off / normal / full: appends/s, latency p50/p99, appends per
#     group commit (what durability itself costs);
#   - appends: the same through the Runtime, each client its own rolling session, in memory and
#     with the store under each sync policy (an acknowledgement also waits for the engine step in
#     progress);
#   - restart: 32 sessions of 8,000 tokens (4 resident slots of 8,192) are fed and the runtime
#     stopped; then it starts again from the snapshots, and again from the data log alone: time
#     until Start returns, until every session's data is back (in the KV cache or in a checked
#     snapshot), and one session's first answer; snapshot bytes per token and write time.
#
# Usage: bench/durable.sh [--quick] [more `kvstream durable-bench` options]
#        (--quick: 8 sessions of 2,000 tokens; later options override the defaults above)
# Needs ~7 GB of free disk under $TMPDIR (the snapshots) and ~8 GB of RAM; takes ~45 minutes,
# most of it the log rebuild. Run it on an otherwise idle machine. Writes
# bench/results/durable-<UTC time>/{machine.txt,durable.json,durable.txt,report.md} and prints
# the report.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

args="$*"
sessions=32; tokens=8000
if [ "${1:-}" = "--quick" ]; then sessions=8; tokens=2000; shift; fi
threads=2

scripts/setup.sh build
bench_default_model smollm2-135m

out="bench/results/durable-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info "$threads" "$model" > "$out/machine.txt"
cat "$out/machine.txt"

cmd=(build/kvstream durable-bench --model "$model" --threads "$threads" --sessions "$sessions"
     --tokens "$tokens" --ctx 8192 --slots 4 --clients 8 --appends 50 --out "$out/durable.json"
     "$@")
echo "== ${cmd[*]}" >&2
"${cmd[@]}" 2>&1 | grep --line-buffered -v '^load\|^llama_context' | tee "$out/durable.txt"

{
  echo "# Durable sessions benchmark: $(basename "$out")"
  echo
  echo '```'
  cat "$out/machine.txt"
  echo '```'
  echo
  echo '```'
  cat "$out/durable.txt"
  echo '```'
  echo
  echo "## How to reproduce"
  echo
  echo '```sh'
  echo "bench/durable.sh $args"
  echo "# which runs:"
  echo "${cmd[*]}"
  echo '```'
} > "$out/report.md"
echo "report: $out/report.md" >&2
