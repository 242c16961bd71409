#!/usr/bin/env bash
# CPU backend variants (docs/architecture.md, "CPU backends"; docs/benchmarks.md).
#  1. For each variant: `kvstream demo` (its time and "same answer" column), the exactness model
#     tests with that variant (every comparison's largest logit difference, near ties), and
#     `kvstream core-bench` on the Qwen2.5-0.5B twin at depth 512.
#  2. The alternatives the portable build replaced, Q8_0 and Q4_0, core-bench at depth 512 side by
#     side: the best variant as built (weights repacked), the same with `--no-repack`
#     (use_extra_bufts = false, the other way to keep AMX out), and a native build
#     (`scripts/build_llama.sh --native`, -march=native with AMX off; built once, ~3 minutes).
# Usage: bench/variants.sh [--alternatives-only] [VARIANT ...]
#        (default variants: this CPU's best, haswell, x64)
# Writes bench/results/variants-<UTC time>/ (raw outputs and report.md) and prints the report.
# About 35 minutes on 2 cores (the x64 variant is 4-8x slower than the others).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh
threads=2

scripts/setup.sh build
bench_default_model
q4="$cache/models/qwen2.5-0.5b-q4_0.gguf"
[ -f "$q4" ] || build/kvstream make-model --shape qwen2.5-0.5b --type q4_0 --out "$q4"
best=$(build/kvstream --version | sed -n 's/^variants this CPU can run, best first: //p' | cut -d' ' -f1)
only_alternatives=0
if [ "${1:-}" = --alternatives-only ]; then only_alternatives=1; shift; fi
variants=("$@")
[ "${#variants[@]}" -gt 0 ] || variants=("$best" haswell x64)
[ "$only_alternatives" = 0 ] || variants=()

out="bench/results/variants-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info "$threads" "$model" > "$out/machine.txt"
cat "$out/machine.txt"
filter='Models/Equivalence.*:Models/Interleave.*:Models/Speculation.*:Models/Scheduler.SixtyFourSessionsOverEightSlots/*:Models/Flash.CachedAnswerEqualsLiveQuery/*:Models/RuntimeTest.ConcurrentClientsMatchASequentialEngine/*'

report="$out/report.md"
{
  echo "# CPU backend variants"
  echo
  sed 's/^/    /' "$out/machine.txt"
  echo
  echo "| variant | demo s | demo same answer | model tests | largest logit diff, stories260K | largest logit diff, twin | near ties | core-bench 512 stateful ms | stateless ms |"
  echo "|---|---:|---|---|---:|---:|---:|---:|---:|"
} > "$report"

for v in ${variants[@]+"${variants[@]}"}; do
  echo "== variant $v" >&2
  start=$(date +%s%N)
  build/kvstream --cpu-variant "$v" demo --threads "$threads" > "$out/demo-$v.txt"
  demo_s=$(( ($(date +%s%N) - start) / 1000000000 ))
  same=$(awk '/^ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x/ {printf "%s%s of %s", sep, $5, $7; sep=", "}' "$out/demo-$v.txt")
  set +e
  (cd build && KVSTREAM_CPU_VARIANT="$v" ./tests/model_tests --gtest_filter="$filter") > "$out/model-$v.txt" 2>&1
  rc=$?
  set -e
  tests=$(grep -o '\[  PASSED  \] [0-9]* tests\?' "$out/model-$v.txt" | grep -o '[0-9]*' || echo 0)
  failed=$(grep -c '^\[  FAILED  \] Models' "$out/model-$v.txt" || true)
  worst() { grep "^\[$v\] $1" "$out/model-$v.txt" | grep -v "other side's logits" | grep -o '(\([0-9.]*\)% of the largest' | tr -d '(%' | cut -d' ' -f1 | sort -g | tail -n 1; }
  abs() { grep "^\[$v\] $1" "$out/model-$v.txt" | grep -v "other side's logits" | sed 's/.*largest logit difference \([0-9.e+-]*\).*/\1/' | sort -g | tail -n 1; }
  d_stories=$(abs stories260K); d_twin=$(abs smollm2-twin)  # nothing printed: all bit-identical
  ties=$(grep -c "^\[$v\] .*near tie at" "$out/model-$v.txt" || true)
  build/kvstream --cpu-variant "$v" core-bench --model "$model" --depths 512 --threads "$threads" \
    --reps 3 --stateless-reps 1 --json "$out/core-$v.json" > /dev/null
  sf=$(grep -o '"stateful_median_ms":[0-9.]*' "$out/core-$v.json" | cut -d: -f2)
  sl=$(grep -o '"stateless_median_ms":[0-9.]*' "$out/core-$v.json" | cut -d: -f2)
  echo "| $v | $demo_s | $same | $tests passed, $failed failed (rc $rc) | ${d_stories:-0} (${d_stories:+$(worst stories260K)%}) | ${d_twin:-0} (${d_twin:+$(worst smollm2-twin)%}) | $ties | $sf | $sl |" >> "$report"
done

echo "== the rejected alternatives, depth 512, Q8_0 and Q4_0" >&2
native_prefix=$(scripts/build_llama.sh --native | tail -n 1)
cmake --fresh -S . -B build-native -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DKVSTREAM_LLAMA_PREFIX="$native_prefix" -DKVSTREAM_BUILD_TESTS=OFF > /dev/null
cmake --build build-native -j"$(nproc)" --target kvstream > /dev/null
rounds=3  # the builds alternate, round after round: this VM's speed drifts by 10-20% in minutes
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
alternatives=("portable $best" "portable $best --no-repack" "native")
for ((r = 1; r <= rounds; ++r)); do
  for m in "$model" "$q4"; do
    name=$(basename "$m" .gguf)
    for run in "${alternatives[@]}"; do
      read -r kind variant extra <<<"$run"
      json="$out/alt-$name-${run// /_}-$r.json"
      if [ "$kind" = native ]; then
        build-native/kvstream core-bench --model "$m" --depths 512 --threads "$threads" \
          --json "$json" > /dev/null
      else
        # shellcheck disable=SC2086
        build/kvstream --cpu-variant "$variant" core-bench --model "$m" --depths 512 \
          --threads "$threads" $extra --json "$json" > /dev/null
      fi
    done
  done
done
{
  echo
  echo "Alternatives, core-bench depth 512 (32-token question, 16-token answer): medians over"
  echo "$rounds alternating rounds of each run's median (5 stateful, 2 stateless queries):"
  echo
  echo "| weights | build | stateful ms | stateless ms (544-token prefill) | stateful / portable |"
  echo "|---|---|---:|---:|---:|"
} >> "$report"
for m in "$model" "$q4"; do
  name=$(basename "$m" .gguf)
  base=""
  for run in "${alternatives[@]}"; do
    files=("$out/alt-$name-${run// /_}"-*.json)
    sf=$(grep -ho '"stateful_median_ms":[0-9.]*' "${files[@]}" | cut -d: -f2 | median)
    sl=$(grep -ho '"stateless_median_ms":[0-9.]*' "${files[@]}" | cut -d: -f2 | median)
    [ -n "$base" ] || base=$sf
    ratio=$(awk -v a="$sf" -v b="$base" 'BEGIN {printf "%.2f", a / b}')
    printf '| %s | %s | %.1f | %.1f | %s |\n' "$name" "$run" "$sf" "$sl" "$ratio" >> "$report"
  done
done
cat "$report"
