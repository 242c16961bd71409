#!/usr/bin/env bash
# The streaming market benchmark (docs/benchmarks.md): a scenario replayed against kvstream's
# stateful sessions and flash questions, its stateless endpoint, and llama.cpp's llama-server
# (built once from the same pinned tree into the cache), one system after another.
#
# Usage: bench/market.sh [SCENARIO] [kvstream bench options...]
#   SCENARIO defaults to bench/scenarios/quick.json (under 5 minutes on 2 cores);
#   bench/scenarios/targets.json is the reference case (about 30 minutes);
#   bench/scenarios/full.json is the 16-session deployment (hours on 2 cores).
# Writes bench/results/market-<name>-<UTC time>/: report.md, queries.csv, summary.json, SVG plots,
# machine.txt and the servers' logs.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:-bench/scenarios/quick.json}"
[ "$#" -gt 0 ] && shift
scripts/setup.sh build
tools=$(scripts/build_llama.sh --with-tools | tail -n 1)
name=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).name)' "$scenario")
out="bench/results/market-$name-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
{
  echo "scenario: $scenario"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kvstream: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "llama.cpp: 80fb11ac (llama-server and llama-bench from $tools)"
} | tee "$out/machine.txt"
build/kvstream bench "$scenario" --out "$out" --llama-server "$tools/bin/llama-server" \
  --llama-bench "$tools/bin/llama-bench" "$@"
echo "report: $out/report.md"
