// Turns one bench/core.sh results folder into the markdown tables docs/benchmarks.md quotes.
// Usage: node bench/report.mjs bench/results/core-<time>
import { readFileSync } from "node:fs";

const dir = process.argv[2];
const read = (name) => JSON.parse(readFileSync(`${dir}/${name}`, "utf8"));
const machine = readFileSync(`${dir}/machine.txt`, "utf8").trim();
const fa0 = read("kvstream-fa0.json");
const fa1 = read("kvstream-fa1.json");
const lb = read("llama-bench.json");

// llama-bench: one record per (test, depth, flash attention); avg_ns covers the whole test.
// `adjusted`: our path decodes one token fewer than tg measures (the last answer token is sampled
// from the previous step's logits and never decoded), so its strict floor is pp + tg * (n-1)/n.
function floorMs(depth, fa, adjusted = false) {
  const pick = (p, g) => lb.find((r) => r.n_depth === depth && r.n_prompt === p &&
                                       r.n_gen === g && Boolean(r.flash_attn) === fa);
  const pp = pick(fa0.question_tokens, 0);
  const tg = pick(0, fa0.answer_tokens);
  const n = fa0.answer_tokens;
  const tg_ns = adjusted ? tg?.avg_ns * (n - 1) / n : tg?.avg_ns;
  return pp && tg ? (pp.avg_ns + tg_ns) / 1e6 : NaN;
}
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

const lines = [];
lines.push("```", machine, "```", "");
lines.push(`Question ${fa0.question_tokens} tokens, answer ${fa0.answer_tokens} tokens, ` +
           `${fa0.threads} threads, flash attention off. Medians.`, "");
lines.push("| depth | stateful ms | floor ms (pp+tg) | stateful / floor | adjusted floor ms | stateful / adjusted | stateless ms | stateless / stateful |");
lines.push("|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const d of fa0.depths) {
  const floor = floorMs(d.depth, false);
  const adj = floorMs(d.depth, false, true);
  lines.push(`| ${d.depth} | ${f(d.stateful_median_ms)} | ${f(floor)} | ` +
             `${f(d.stateful_median_ms / floor, 3)} | ${f(adj)} | ` +
             `${f(d.stateful_median_ms / adj, 3)} | ${f(d.stateless_median_ms)} | ` +
             `${f(d.stateless_median_ms / d.stateful_median_ms)}x |`);
}
lines.push("", "Flash attention on vs off (stateful path and floor, medians):", "");
lines.push("| depth | stateful ms FA off | stateful ms FA on | on / off | floor ms FA off | floor ms FA on |");
lines.push("|---:|---:|---:|---:|---:|---:|");
for (const d of fa0.depths) {
  const on = fa1.depths.find((x) => x.depth === d.depth);
  lines.push(`| ${d.depth} | ${f(d.stateful_median_ms)} | ${f(on?.stateful_median_ms)} | ` +
             `${f(on?.stateful_median_ms / d.stateful_median_ms, 2)} | ` +
             `${f(floorMs(d.depth, false))} | ${f(floorMs(d.depth, true))} |`);
}
console.log(lines.join("\n"));
