#!/usr/bin/env bash
# The HTTP layer's benchmark (bench/http_load.mjs against `kvstream serve`, on loopback).
#
# stories260K (tiny real weights, so the engine's own time is negligible and the HTTP layer's
# cost shows), 1 compute thread, 2 I/O threads. Figures:
#   - GET /health and a cached flash hit: requests per second, p50/p99 latency, server CPU per
#     1,000 requests, at 32 keep-alive connections for 10 s each;
#   - 1,000 concurrent SSE subscribers on one session: connect time, the time until all of them
#     have the events of one append, server RSS per subscriber and CPU time.
# Usage: bench/http.sh [more bench/http_load.mjs options, e.g. --subscribers 2000]
# Writes bench/results/http-<UTC time>/{machine.txt,http.json,report.md} and prints the report.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

scripts/setup.sh build
shared="$(cd .. && pwd)/shared"
model="$shared/models/stories260K.gguf"
out="bench/results/http-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
bench_machine_info 1 "$model" > "$out/machine.txt"
cat "$out/machine.txt"

ulimit -n "$(ulimit -Hn)"  # 1,000 subscribers need more than 1,024 descriptors
build/kvstream serve --model "$model" --port 0 --port-file "$out/port" --threads 1 \
  --http-threads 2 --event-buffer 64 --data-dir "$out/data" > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$out/port" ] && curl -sf "http://127.0.0.1:$(cat "$out/port")/health" >/dev/null && break
  sleep 0.1
done
port=$(cat "$out/port")
node bench/http_load.mjs "http://127.0.0.1:$port" "$server" "$@" | tee "$out/http.json"
kill -TERM $server; wait $server || true
rm -rf "$out/data"  # the sessions it made
trap - EXIT

{
  echo "# HTTP benchmark: $(basename "$out")"
  echo
  echo '```'
  cat "$out/machine.txt"
  echo '```'
  echo
  echo '```json'
  cat "$out/http.json"
  echo '```'
  echo
  echo "Reproduce: \`bench/http.sh $*\` (server: \`kvstream serve --model stories260K.gguf"
  echo "--threads 1 --http-threads 2 --event-buffer 64\`; client: \`bench/http_load.mjs\`)."
} > "$out/report.md"
echo "report: $out/report.md" >&2
