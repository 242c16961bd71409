// Helpers for the end-to-end tests: a real `kvstream serve` on loopback, JSON requests, and a
// server-sent events reader. The binary and the model come from the environment (run.sh sets
// them): KVSTREAM_BIN, KVSTREAM_MODEL.

import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 20_000;

const live = new Set();  // servers not yet exited: killed if this process exits first
const tempDirs = new Set();  // removed when this process exits
process.on('exit', () => {
  for (const proc of live) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of tempDirs) {
    rmSync(dir, { recursive: true, force: true });
  }
});
// A test process stopped by a signal (the runner cancelling it, ^C) takes its servers along.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(signal, () => process.exit(128 + number));
}

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set (run the tests through tests/e2e/run.sh)`);
  }
  return value;
}

// A fresh temporary folder, removed when this process exits.
export async function makeTempDir(prefix = 'kvs-e2e-data-') {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

// Writes a keys file ({"keys":[{"key","tenant"}]}) into a fresh temporary folder; returns its path.
export async function writeKeysFile(keys) {
  const dir = await mkdtemp(path.join(tmpdir(), 'kvs-e2e-keys-'));
  tempDirs.add(dir);
  const file = path.join(dir, 'keys.json');
  await writeFile(file, JSON.stringify({ keys }));
  return file;
}

// Starts `kvstream serve` on 127.0.0.1 with a free port and waits for /health to answer 200.
// Returns {url, port, proc, output(), exited, stop(signal?), kill()}: stop() sends SIGTERM (or
// `signal`) and resolves with the exit code (the signal's name when it died of one, "timeout"
// when it did not exit within 20 s, after which it is killed). kill() is for cleanup: SIGKILL
// unless it already exited. Pass a test context `t` to kill it after the test in any case.
// `ctx`: tokens per session slot (--ctx, 1024 unless given). `dataDir`: the data folder (a
// server restarted on the same folder gets its sessions back; see makeTempDir); without it each
// server gets a fresh one, removed when it exits.
export async function startServer({ args = [], ctx = 1024, t, dataDir } = {}) {
  const bin = required('KVSTREAM_BIN');
  const model = required('KVSTREAM_MODEL');
  const dir = await mkdtemp(path.join(tmpdir(), 'kvs-e2e-'));
  const portFile = path.join(dir, 'port');
  const proc = spawn(bin, [
    'serve', '--host', '127.0.0.1', '--port', '0', '--port-file', portFile, '--threads', '1',
    '--ctx', String(ctx), '--model', model, '--data-dir', dataDir ?? path.join(dir, 'data'),
    ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let log = '';
  proc.stdout.setEncoding('utf8').on('data', (s) => { log += s; });
  proc.stderr.setEncoding('utf8').on('data', (s) => { log += s; });
  let exitCode;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      exitCode = code ?? signal;
      resolve(exitCode);
    });
    proc.on('error', (err) => {
      live.delete(proc);
      exitCode = `spawn error: ${err.message}`;
      resolve(exitCode);
    });
  });
  exited.then(() => rm(dir, { recursive: true, force: true }).catch(() => {}));

  const kill = () => {
    if (exitCode === undefined) {
      proc.kill('SIGKILL');
    }
    return exited;
  };
  if (t) {
    t.after(kill);
  }
  const stop = async (signal = 'SIGTERM') => {
    if (exitCode !== undefined) {
      return exitCode;
    }
    proc.kill(signal);
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
    });
    const result = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      await kill();
    }
    return result;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let port;
  let lastError = 'no port file yet';
  try {
    while (true) {
      if (exitCode !== undefined) {
        throw new Error(`kvstream serve exited (${exitCode}) before it was ready`);
      }
      if (Date.now() > deadline) {
        throw new Error(`kvstream serve was not ready within ${READY_TIMEOUT_MS} ms: ${lastError}`);
      }
      if (port === undefined) {
        const text = await readFile(portFile, 'utf8').catch(() => '');
        if (/^\d+\n$/.test(text)) {
          port = Number(text.trim());
        }
      }
      if (port !== undefined) {
        try {
          // A bounded wait: a server that never answers fails by the deadline, with its output.
          const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
          await r.arrayBuffer();
          if (r.status === 200) {
            break;
          }
          lastError = `/health answered ${r.status}`;
        } catch (err) {
          lastError = err.message;
        }
      }
      await sleep(25);
    }
  } catch (err) {
    await kill();
    err.message += `\n--- server output ---\n${log}`;
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    proc,
    exited,
    output: () => log,
    stop,
    kill,
  };
}

// One request with an optional JSON body. Returns {status, headers, text, json} (json: the parsed
// body, or undefined when it is not JSON). `body` may be an object (sent as JSON), a string or a
// Buffer (sent as is).
export async function request(url, method, body, { headers = {}, key } = {}) {
  const h = { ...headers };
  if (key !== undefined) {
    h.authorization = `Bearer ${key}`;
  }
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    h['content-type'] ??= 'application/json';
  }
  const r = await fetch(url, { method, headers: h, body: payload });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

// A client bound to a server's URL (and optionally an API key): api.get('/v1/sessions/1'),
// api.post('/v1/sessions', {...}), api.del(...), api.send('PUT', ...).
export function client(url, key) {
  const send = (method, p, body, opts = {}) => request(url + p, method, body, { key, ...opts });
  return {
    send,
    get: (p, opts) => send('GET', p, undefined, opts),
    post: (p, body, opts) => send('POST', p, body, opts),
    del: (p, opts) => send('DELETE', p, undefined, opts),
  };
}

// Server-sent events of a fetch Response's body, as {event, data} objects ("message" when no
// event line came; data lines joined with "\n"). Comment lines (":...") are skipped.
export async function* readSse(response) {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data = [];
  const reader = response.body.getReader();
  let finished = false;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith('\r')) {
          line = line.slice(0, -1);
        }
        if (line === '') {
          if (data.length > 0) {
            yield { event: event || 'message', data: data.join('\n') };
          }
          event = '';
          data = [];
        } else if (line.startsWith(':')) {
          // a comment (": subscribed ...", ": keep-alive")
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) {
            value = value.slice(1);
          }
          if (field === 'event') {
            event = value;
          } else if (field === 'data') {
            data.push(value);
          }
        }
      }
    }
  } finally {
    if (!finished) {
      await reader.cancel().catch(() => {});  // the consumer stopped early: close the stream
    }
    reader.releaseLock();
  }
}

// Opens an SSE stream (GET unless `init` says otherwise) and collects its events in the
// background. Resolves once the response head arrived (for /events: once subscribed).
// Returns {status, response, events, ended, waitFor(pred, ms), close()}:
//   events  every {event, data} so far, in order
//   ended   resolves to "end" when the server closes the stream, or "error: ..." on a failure
//   waitFor the first event (from the start) matching pred; rejects after ms
//   close   aborts the request
export async function openSse(url, init = {}) {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  const events = [];
  const waiters = new Set();
  const notify = () => {
    for (const w of waiters) {
      w();
    }
  };
  let finished = false;
  const ended = (async () => {
    if (response.status !== 200) {
      await response.text().catch(() => {});
      return `status ${response.status}`;
    }
    try {
      for await (const e of readSse(response)) {
        events.push(e);
        notify();
      }
      return 'end';
    } catch (err) {
      return `error: ${err.name}: ${err.message}`;
    } finally {
      finished = true;
      notify();
    }
  })();
  const waitFor = (pred, ms = 5000, what = 'the event') => new Promise((resolve, reject) => {
    const check = () => {
      const found = events.find(pred);
      if (found) {
        done();
        resolve(found);
      } else if (finished) {
        done();
        reject(new Error(`the stream ended without ${what}; got ${JSON.stringify(events)}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(events)}`));
    }, ms);
    const done = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
  return {
    status: response.status,
    response,
    events,
    ended,
    waitFor,
    close: () => controller.abort(),
  };
}

// The value of one unlabelled Prometheus sample, or undefined.
export function metric(text, name) {
  const m = text.match(new RegExp(`^${name} ([^\\s]+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

// Polls fn() until it returns a truthy value; returns it, or throws after ms.
export async function until(fn, ms = 5000, what = 'the condition') {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) {
      return last;
    }
    await sleep(20);
  }
  throw new Error(`${what} did not hold within ${ms} ms (last: ${JSON.stringify(last)})`);
}
