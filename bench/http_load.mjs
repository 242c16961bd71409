// The HTTP layer's own cost, on loopback, against a running `kvstream serve` (bench/http.sh):
//   1. GET /health (a trivial route) and a cached flash hit (POST /v1/sessions/{id}/query for a
//      registered question whose answer is current): requests per second and latency
//      percentiles at a fixed number of keep-alive connections;
//   2. 200 live queries in flight at once (one connection each): all answered;
//   3. 1,000 concurrent SSE subscribers on one session: all connected, one append, the time until
//      every subscriber has its data_ingested and flash_ready events; the server's memory (RSS)
//      and CPU time before and after.
// Usage: node bench/http_load.mjs URL SERVER_PID [--seconds 10] [--connections 32] [--subscribers 1000]
// Prints a JSON object with every figure.
import http from 'node:http';
import fs from 'node:fs';

const [url, pidText, ...rest] = process.argv.slice(2);
const opt = { seconds: 10, connections: 32, subscribers: 1000 };
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = Number(rest[i + 1]);
const pid = Number(pidText);
const base = new URL(url);

function proc() {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss_kib = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);  // utime + stime
  return { rss_mib: rss_kib / 1024, cpu_s: ticks / 100 };
}

function request(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
}

async function closedLoop(name, method, path, body, check) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opt.connections });
  const latencies = [];
  let errors = 0;
  const end = performance.now() + opt.seconds * 1000;
  const cpu0 = proc().cpu_s;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opt.connections }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      const r = await request(agent, method, path, body);
      latencies.push(performance.now() - s);
      if (!check(r)) errors++;
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu = proc().cpu_s - cpu0;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { name, requests: latencies.length, errors, rps: latencies.length / wall,
    p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
    server_cpu_s_per_1k: (cpu / latencies.length) * 1000 };
}

async function subscribers(id) {
  const before = proc();
  const t0 = performance.now();
  const waiters = [];
  const sockets = [];
  let connected = 0;
  for (let i = 0; i < opt.subscribers; i++) {
    waiters.push(new Promise((resolve, reject) => {
      const req = http.request({ host: base.hostname, port: base.port, path: `/v1/sessions/${id}/events?every=1`,
        agent: false }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        connected++;
        let text = '';
        const seen = new Set();
        res.on('data', (c) => {
          text += c.toString();
          for (const ev of ['data_ingested', 'flash_ready']) if (text.includes(`event: ${ev}`)) seen.add(ev);
          if (seen.size === 2) resolve(performance.now());
        });
      });
      req.on('error', reject);
      sockets.push(req);
      req.end();
    }));
  }
  while (connected < opt.subscribers) await new Promise((r) => setTimeout(r, 20));
  const connect_s = (performance.now() - t0) / 1000;
  const held = proc();
  const a0 = performance.now();
  const ack = await request(false, 'POST', `/v1/sessions/${id}/data`, { text: 'One more line of data.\n' });
  if (ack.status !== 202) throw new Error(`append: ${ack.status} ${ack.body}`);
  const done = await Promise.all(waiters);
  const last_ms = Math.max(...done) - a0;
  const after = proc();
  for (const s of sockets) s.destroy();
  return { subscribers: opt.subscribers, connect_s, all_events_ms: last_ms,
    rss_mib_before: before.rss_mib, rss_mib_with_subscribers: held.rss_mib,
    rss_kib_per_subscriber: ((held.rss_mib - before.rss_mib) * 1024) / opt.subscribers,
    server_cpu_s_connect: held.cpu_s - before.cpu_s, server_cpu_s_fanout: after.cpu_s - held.cpu_s };
}

const agent = new http.Agent({ keepAlive: true });
const question = 'What happened next?';
const created = await request(agent, 'POST', '/v1/sessions',
  { prefix: 'A story.', flash: [{ query: question, max_tokens: 8 }] });
const id = JSON.parse(created.body).id;
await request(agent, 'POST', `/v1/sessions/${id}/data`, { text: 'Once upon a time there was a cat.', wait: true });
for (let i = 0; i < 500; i++) {  // until the registered answer is current
  const s = JSON.parse((await request(agent, 'GET', `/v1/sessions/${id}`)).body);
  if (s.flash[0].current) break;
  await new Promise((r) => setTimeout(r, 10));
}
const health = await closedLoop('GET /health', 'GET', '/health', undefined, (r) => r.status === 200);
const hit = await closedLoop('cached flash hit', 'POST', `/v1/sessions/${id}/query`, { query: question },
  (r) => r.status === 200 && JSON.parse(r.body).cached === true);
// 200 requests in flight at once: live queries (cached answers refused), one connection each.
async function inFlight(n) {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, () =>
    request(false, 'POST', `/v1/sessions/${id}/query`, { query: 'And then?', max_tokens: 4, cached: false })));
  const ok = results.filter((r) => r.status === 200).length;
  return { in_flight: n, ok, failed: n - ok, all_done_s: (performance.now() - t0) / 1000 };
}
const concurrent = await inFlight(200);
const sse = await subscribers(id);
agent.destroy();
console.log(JSON.stringify({ connections: opt.connections, seconds: opt.seconds, health, hit, concurrent, sse }, null, 2));
process.exit(0);
