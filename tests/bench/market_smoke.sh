#!/usr/bin/env bash
# Smoke run of `kvstream bench bench/scenarios/quick.json`: every system of the quick scenario
# (kvstream, kvstream-flash, stateless, llama-server, llama-server-shared) on stories260K for 10 s
# each, then checks that each one answered every question it was asked, that the results files
# are complete, and that the report names every system. Speed is not checked.
# Usage: market_smoke.sh KVSTREAM_BINARY SHARED_DIR
set -euo pipefail
kvstream="$1"
shared="$2"
cd "$(dirname "$0")/../.."
tools=$(scripts/build_llama.sh --with-tools 2>/dev/null | tail -n 1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$kvstream" bench bench/scenarios/quick.json --model "$shared/models/stories260K.gguf" \
  --market-dir "$shared/data/market" --duration-s 10 --out "$out" \
  --llama-server "$tools/bin/llama-server" --llama-bench "$tools/bin/llama-bench"
for f in report.md queries.csv summary.json latency_vs_context.svg; do
  [ -s "$out/$f" ] || { echo "missing $out/$f"; exit 1; }
done
node - "$out" <<'JS'
const fs = require("fs");
const dir = process.argv[2];
const summary = JSON.parse(fs.readFileSync(`${dir}/summary.json`, "utf8"));
const report = fs.readFileSync(`${dir}/report.md`, "utf8");
const rows = fs.readFileSync(`${dir}/queries.csv`, "utf8").trim().split("\n").slice(1);
const want = ["kvstream", "kvstream-flash", "stateless", "llama-server", "llama-server-shared"];
const fail = (m) => { console.error(`smoke: ${m}`); process.exit(1); };
if (summary.runs.map((r) => r.system).join() !== want.join()) fail(`systems ${summary.runs.map((r) => r.system)}`);
for (const r of summary.runs) {
  if (r.error) fail(`${r.system}: ${r.error}`);
  if (r.failed !== 0) fail(`${r.system}: ${r.failed} questions failed`);
  if (r.bars < 3) fail(`${r.system}: only ${r.bars} bars delivered`);
  if (!report.includes(`| ${r.system} |`)) fail(`the report has no row for ${r.system}`);
}
for (const system of want) {
  const mine = rows.filter((l) => l.startsWith(`${system},`) && l.split(",")[3] === "0");
  if (mine.length === 0) fail(`${system} answered no question`);
  for (const l of mine) {
    const c = l.split(",");
    if (!(Number(c[10]) > 0)) fail(`${system}: a question without a latency: ${l}`);
    if (!(Number(c[15]) > 0)) fail(`${system}: an answer without tokens: ${l}`);
    if (system === "kvstream") {  // every part of its time attributed (wait ... in the server)
      const [wait, inServer, total] = [Number(c[17]), Number(c[20]), Number(c[10])];
      if (!(wait >= 0 && inServer > 0 && inServer <= total)) fail(`kvstream: timings not attributed: ${l}`);
    }
  }
}
if (!report.includes("## Where a question's time goes")) fail("the report has no attribution");
const kv = summary.runs.find((r) => r.system === "kvstream");
if (!(kv.ingest_lag_ms_p50 > 0)) fail("kvstream reported no ingest lag");
// The server's metrics over the phase: kvstream ingested bars in it, and the flash run's work
// is reported next to what the data offered.
if (!(kv.metrics_delta?.["kvs_ingest_lag_ms_count"] > 0)) fail("kvstream: no ingest in its metrics over the phase");
const fl = summary.runs.find((r) => r.system === "kvstream-flash");
if (!(fl?.metrics_delta?.["kvs_flash_evaluations_total"] >= 0)) fail("kvstream-flash: no flash metrics over the phase");
if (!report.includes("## Flash work (kvstream-flash, measured phase)")) fail("the report has no flash work section");
console.log(`smoke: ${rows.length} questions over ${want.length} systems; report in order`);
JS
