#!/usr/bin/env bash
# The multi-session scheduler benchmark (`kvstream load`).
#
# 32 sessions on the Qwen2.5-0.5B shape twin (Q8_0), 2 threads, each with a 1024-cell window that
# rolls when full, fed one synthetic market bar every 20 s per session (32 sessions: 1.6 bars/s,
# about a third of what 2 cores prefill on this model), while questions (8-token answers) arrive
# at random sessions on a seeded Poisson schedule, one every 2 s on average, for 60 s. (At
# `kvstream load`'s own defaults, 1 bar/s per session, 32 sessions offer about 6x what 2 cores
# can ingest: latency then measures the queue, not the scheduler.) Then the feed stops, the backlog drains and the same questions are asked one at a time
# on the idle engine. Figures:
#   - per-query latency p50/p99/mean, loaded vs idle, and the ratio of the p50s (target <= 1.5x);
#   - scheduler overhead (kvs_overhead_ms_sum / kvs_step_ms_sum) under load (target < 5%);
#   - park and restore time per session length (256, 1024, 4096 tokens; RAM, and disk through a
#     spill folder with a 1-byte host budget);
#   - sessions per KV budget (resident by formula, parked by measured blob size).
#
# Usage: bench/scheduler.sh [--quick] [more `kvstream load` options]
#        (--quick: 8 sessions for 20 s; later options override the defaults above)
# Run it on an otherwise idle machine: with 2 threads on a 2-core machine, any other process
# stalls ggml's spinning worker threads and the loaded latencies with them.
# Writes bench/results/scheduler-<UTC time>/{machine.txt,load.json,load.txt,report.md} and prints
# the report.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

args="$*"
sessions=32; duration=60
if [ "${1:-}" = "--quick" ]; then sessions=8; duration=20; shift; fi
threads=2

scripts/setup.sh build
bench_default_model

out="bench/results/scheduler-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info "$threads" "$model" > "$out/machine.txt"
cat "$out/machine.txt"

# The spill folder sits on the results disk (not /tmp, which may be RAM); the park store removes it.
cmd=(build/kvstream load --model "$model" --sessions "$sessions" --duration-s "$duration"
     --threads "$threads" --bars-per-second-per-session 0.05 --question-gap-ms 2000
     --park-dir "$out/park-spill" --json "$out/load.json" --metrics "$@")
echo "== ${cmd[*]}" >&2
"${cmd[@]}" | tee "$out/load.txt"

{
  echo "# Scheduler benchmark: $(basename "$out")"
  echo
  echo '```'
  cat "$out/machine.txt"
  echo '```'
  echo
  echo '```'
  sed '/^engine metrics (whole run)/,$d' "$out/load.txt"
  echo '```'
  echo
  echo "## How to reproduce each figure"
  echo
  echo "Every figure above comes from one run of:"
  echo
  echo '```sh'
  echo "bench/scheduler.sh $args"
  echo "# which runs:"
  echo "${cmd[*]}"
  echo '```'
  echo
  echo "- **Query latency, loaded vs idle** (\`loaded\`/\`idle\` in \`load.json\`): client-observed"
  echo "  milliseconds from \`Runtime::Query\` to its future being ready, p50/p99/mean; \`engine\`"
  echo "  is \`Answer::timings.total_ms\`, \`queued\` its \`queued_ms\`. Idle = the same question"
  echo "  on the same sessions, one at a time, after the feed stopped and the backlog drained."
  echo "- **Scheduler overhead**: the loaded phase's \`kvs_overhead_ms_sum / kvs_step_ms_sum\`"
  echo "  (differences of \`Runtime::MetricsPrometheus()\` before and after the phase)."
  echo "- **Park / restore**: a separate \`Engine\` with one session grown to each"
  echo "  \`--park-lengths\` length, \`Engine::Park\` + \`Engine::Restore\` \`--park-reps\` times,"
  echo "  medians of the engine's \`EngineEvent::ms\`; disk rows use \`--park-dir\` with a 1-byte"
  echo "  host budget. Only this phase: add \`--duration-s 1 --idle-queries 1\`."
  echo "- **Sessions per KV budget**: computed from the model header (\`InspectModelFile\`) and the"
  echo "  engine's reserved sequences; parked counts divide \`EngineOptions::park_host_bytes\` by"
  echo "  the measured blob size."
} > "$out/report.md"
echo "report: $out/report.md" >&2
