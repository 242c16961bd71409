#!/usr/bin/env bash
# The Flash Queries benchmark (`kvstream flash-bench`).
#
# One session on the Qwen2.5-0.5B shape twin (Q8_0), 2 threads, filled with real ETH 5-minute bars
# (../shared/data/market, Binance US, March 2023) to 512, 2,048 and 8,192 tokens; five market
# questions (12-token answers) are registered; then one new bar arrives every 4 s, 10 times per
# context. Figures per context size:
#   - a cached hit: Runtime::Query for a registered question whose answer is current, timed on the
#     caller's thread (p50/p99/max, microseconds; target < 1 ms at any context size);
#   - a live query of the same question at the same context (cached answers refused);
#   - the share of (update, question) pairs whose evaluation was published before the next update,
#     and the median time from an update to its evaluations;
#   - engine time used by flash work, against wall-clock time and against step time;
#   - the largest context again with the flash time cap off (--flash-share 1).
#
# Usage: bench/flash.sh [--quick] [more `kvstream flash-bench` options]
#        (--quick: contexts 512 and 2048, 5 updates; later options override the defaults above)
# Run it on an otherwise idle machine (ggml's worker threads spin).
# Writes bench/results/flash-<UTC time>/{machine.txt,flash.json,flash.txt,report.md} and prints
# the report.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

args="$*"
contexts=512,2048,8192; updates=10
if [ "${1:-}" = "--quick" ]; then contexts=512,2048; updates=5; shift; fi
threads=2

scripts/setup.sh build
bench_default_model
shared="$(cd .. && pwd)/shared"
csv="$shared/data/market/03_crypto_bars_ta4j/binanceus_ethusd_5m_20230313_20230315.csv"
bars=(); [ -f "$csv" ] && bars=(--csv "ETH=$csv")

out="bench/results/flash-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info "$threads" "$model" > "$out/machine.txt"
cat "$out/machine.txt"

cmd=(build/kvstream flash-bench --model "$model" --contexts "$contexts" --updates "$updates"
     --gap-ms 4000 --threads "$threads" "${bars[@]}" --json "$out/flash.json" "$@")
echo "== ${cmd[*]}" >&2
"${cmd[@]}" | tee "$out/flash.txt"
# The same at the largest context with the time cap off: what the default share of 0.5 costs.
uncapped=(build/kvstream flash-bench --model "$model" --contexts "${contexts##*,}"
          --updates "$updates" --gap-ms 4000 --threads "$threads" "${bars[@]}" --flash-share 1
          --json "$out/flash-uncapped.json" "$@")
echo "== ${uncapped[*]}" >&2
"${uncapped[@]}" | tee "$out/flash-uncapped.txt"

{
  echo "# Flash Queries benchmark: $(basename "$out")"
  echo
  echo '```'
  cat "$out/machine.txt"
  echo '```'
  echo
  echo '```'
  cat "$out/flash.txt"
  echo
  echo "time cap off (--flash-share 1):"
  tail -n 2 "$out/flash-uncapped.txt"
  echo '```'
  echo
  echo "## How to reproduce each figure"
  echo
  echo '```sh'
  echo "bench/flash.sh $args"
  echo "# which runs:"
  echo "${cmd[*]}"
  echo "${uncapped[*]}"
  echo '```'
  echo
  echo "- **hit**: microseconds from \`Runtime::Query\` to its answer for a registered question"
  echo "  whose cached answer is current: \`--hits\` times per update for one question (rotating)"
  echo "  once its answer for that version is out, and for each question after the stream;"
  echo "  answered on the caller's thread from the flash board (no HTTP yet)."
  echo "- **live**: milliseconds for each question with \`allow_cached = false\` after the stream,"
  echo "  at the same context as those hits (one live query per question; median of five)."
  echo "- **ready**: (update, question) pairs whose \`flash_ready\` event for that version arrived"
  echo "  before the next update, over all pairs; **ready p50**: update accepted to event."
  echo "- **flash/wall**, **flash/step**: \`kvs_flash_engine_ms\` (each step's decode time times the"
  echo "  flash share of its batch) over the streaming phase's wall time and over \`kvs_step_ms\`."
  echo "- **dropped** / **finished**: evaluations overtaken by the next bar (query/flash.h)."
} > "$out/report.md"
echo "report: $out/report.md" >&2
