// Disk use of one streaming session over a simulated week (issue 16, defect 10: the data log is
// never truncated). A real `kvstream serve` on loopback; one on_full=roll session receives one
// market bar per simulated minute (7 x 24 x 60 = 10,080 appends, as fast as it takes them);
// after each simulated day the data folder's bytes are measured (kvstream.db + -wal + -shm,
// snapshots/). Figures are bytes, not times.
//
// Usage: node bench/log_growth.mjs KVSTREAM_BINARY MODEL [DAYS]
// Writes bench/results/log-growth-<UTC time>/{machine.txt,log_growth.json} and prints a table.

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const [bin, model, daysArg] = process.argv.slice(2);
if (!bin || !model) {
  console.error('usage: node bench/log_growth.mjs KVSTREAM_BINARY MODEL [DAYS]');
  process.exit(2);
}
const days = Number(daysArg ?? 7);
const threads = 1;

function bytesUnder(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? bytesUnder(p) : statSync(p).size;
  }
  return n;
}

const work = mkdtempSync(path.join(tmpdir(), 'kvs-log-growth-'));
const dataDir = path.join(work, 'data');
const portFile = path.join(work, 'port');
const server = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', '0', '--port-file', portFile,
  '--threads', String(threads), '--model', model, '--data-dir', dataDir, '--sync', 'normal',
  '--snapshot-interval-s', '1', '--snapshot-min-tokens', '256'], { stdio: ['ignore', 'ignore', 'inherit'] });
let port;
for (let i = 0; i < 600 && !port; ++i) {
  await sleep(100);
  try { port = readFileSync(portFile, 'utf8').trim(); } catch { /* not yet */ }
}
const url = `http://127.0.0.1:${port}`;
const post = async (p, body) => {
  const r = await fetch(url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
};
const id = (await post('/v1/sessions', { on_full: 'roll' })).json.id;
let price = 100;
let seed = 1;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const rows = [];
let logTextBytes = 0;
for (let day = 1; day <= days; ++day) {
  for (let minute = 0; minute < 24 * 60; ++minute) {
    const o = price; price = Math.max(1, price + (rnd() - 0.5)); const c = price;
    const t = new Date(Date.UTC(2026, 0, day, 0, minute)).toISOString().slice(0, 16);
    const text = `BTC ${t} O=${o.toFixed(2)} H=${(Math.max(o, c) + rnd()).toFixed(2)} L=${(Math.min(o, c) - rnd()).toFixed(2)} C=${c.toFixed(2)} V=${Math.round(rnd() * 1000)}\n`;
    for (;;) {
      const r = await post(`/v1/sessions/${id}/data`, { text });
      if (r.status === 202) break;
      if (r.status !== 429) throw new Error(`append: ${r.status} ${JSON.stringify(r.json)}`);
      await sleep(20);
    }
    logTextBytes += Buffer.byteLength(text);
  }
  await sleep(1500);  // a snapshot of the day's end
  const db = ['kvstream.db', 'kvstream.db-wal', 'kvstream.db-shm']
    .map((f) => { try { return statSync(path.join(dataDir, f)).size; } catch { return 0; } })
    .reduce((a, b) => a + b, 0);
  const snapshots = bytesUnder(path.join(dataDir, 'snapshots'));
  rows.push({ day, appends: day * 1440, log_text_bytes: logTextBytes, store_bytes: db, snapshot_bytes: snapshots });
  console.log(`day ${day}: ${day * 1440} appends, log text ${logTextBytes} B, store ${db} B, snapshots ${snapshots} B`);
}
server.kill('SIGTERM');
await new Promise((resolve) => server.on('exit', resolve));
const final = ['kvstream.db', 'kvstream.db-wal'].map((f) => { try { return statSync(path.join(dataDir, f)).size; } catch { return 0; } });
const out = path.join('bench/results', `log-growth-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`);
mkdirSync(out, { recursive: true });
const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
writeFileSync(path.join(out, 'machine.txt'), `${lscpu}\nthreads: ${threads}\nmodel: ${model}\n`);
writeFileSync(path.join(out, 'log_growth.json'), JSON.stringify({ model, threads, days, rows, after_shutdown: { db_bytes: final[0], wal_bytes: final[1] } }, null, 2));
console.log(`wrote ${out}`);
