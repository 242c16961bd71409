// Shutting down on SIGTERM (or SIGINT): new work gets 503, requests in flight get up to
// --grace-s, open event streams end, and the process exits 0. What is checked is what the
// shutdown does, never how fast: each wait is for its condition, with a generous deadline that
// fails by name (a grace time far beyond it makes "the server waited for the grace time" fail).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { client, metric, openSse, startServer, until } from './server.mjs';

const PREFIX = 'Once upon a time, there was a little cat.';
const DEADLINE_MS = 20_000;  // for a condition to hold; not a time limit the test asserts
const LONG_GRACE_S = 3600;  // a grace time no test waits out: the server must not need it

async function newSession(api) {
  const r = await api.post('/v1/sessions', { prefix: PREFIX, flash: [{ query: 'Who?', max_tokens: 4 }] });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

// Starts a long non-streamed query and resolves once the engine runs it, with {pending}: the
// response to come, {status, json} or {error}. `ignore_eos`: the answer cannot end early by
// itself; it is exactly LONG_TOKENS long unless it is cut.
const LONG_TOKENS = 3000;
async function startLongQuery(api, id) {
  const pending = api.post(`/v1/sessions/${id}/query`,
    { query: 'Tell me a very long story.', max_tokens: LONG_TOKENS, ignore_eos: true })
    .catch((error) => ({ error }));
  await until(async () => metric((await api.get('/metrics')).text, 'kvs_queries_running') === 1,
    DEADLINE_MS, 'the long query to run');
  return { pending };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}

test('SIGTERM during open event streams: exit 0 without waiting out the grace time, the streams end', async (t) => {
  // Open event streams are not requests in flight: they must not hold the server for its grace
  // time. With a grace time of an hour, a server that waited it out would not exit before
  // stop()'s deadline (20 s), and stop() would answer "timeout".
  const server = await startServer({ args: ['--grace-s', String(LONG_GRACE_S)], t });
  const api = client(server.url);
  const id = await newSession(api);
  const streams = [
    await openSse(`${server.url}/v1/sessions/${id}/events`),
    await openSse(`${server.url}/v1/sessions/${id}/events?every=1`),
  ];
  t.after(() => streams.forEach((s) => s.close()));
  for (const s of streams) {
    assert.equal(s.status, 200);
  }
  // The streams are live: an append reaches them.
  const r = await api.post(`/v1/sessions/${id}/data`, { text: ' It ran.' });
  assert.equal(r.status, 202, r.text);
  await streams[1].waitFor((e) => e.event === 'data_ingested', DEADLINE_MS, 'data_ingested');

  const code = await server.stop('SIGTERM');
  assert.equal(code, 0, `exit ${code} (timeout: the open streams held the server)\n${server.output()}`);
  for (const s of streams) {
    const how = await withTimeout(s.ended, DEADLINE_MS, 'the end of the event stream');
    assert.equal(how, 'end', 'the stream ends cleanly when the server closes it');
  }
  assert.match(server.output(), /kvstream: SIGTERM: shutting down\n/);
  assert.match(server.output(), /kvstream: stopped\n/);
});

test('SIGINT stops the server too, with exit code 0', async (t) => {
  const server = await startServer({ t });
  const events = await openSse(`${server.url}/v1/sessions/${await newSession(client(server.url))}/events`);
  t.after(() => events.close());
  assert.equal(await server.stop('SIGINT'), 0, server.output());
  assert.equal(await withTimeout(events.ended, DEADLINE_MS, 'the end of the event stream'), 'end');
  assert.match(server.output(), /kvstream: SIGINT: shutting down\n/);
});

test('a request in flight finishes within the grace time; new requests get 503', async (t) => {
  // A grace time no answer here needs: the request finishes whole, then the server exits at once.
  const server = await startServer({ args: ['--grace-s', String(LONG_GRACE_S)], ctx: 4096, t });
  const api = client(server.url);
  const id = await newSession(api);
  const { pending: query } = await startLongQuery(api, id);

  server.proc.kill('SIGTERM');
  await until(() => server.output().includes('shutting down'), DEADLINE_MS, 'the shutdown to begin');
  for (const p of ['/health', `/v1/sessions/${id}`]) {
    const r = await api.get(p);
    assert.equal(r.status, 503, `${p}: ${r.text}`);
    assert.equal(r.json.error.code, 'unavailable');
    assert.equal(r.json.error.message, 'shutting down');
    assert.equal(r.headers.get('retry-after'), '1');
  }
  const r = await api.post(`/v1/sessions/${id}/data`, { text: ' More.', wait: true });
  assert.equal(r.status, 503, r.text);

  // The request in flight was not cut: its whole answer (ignore_eos: max_tokens long).
  const answered = await query;
  assert.equal(answered.error, undefined, String(answered.error));
  assert.equal(answered.status, 200, answered.text);
  assert.equal(answered.json.tokens, LONG_TOKENS, answered.text);
  assert.equal(answered.json.stop_reason, 'length', answered.text);
  // Then the server exits 0, without waiting out the rest of its grace time.
  assert.equal(await withTimeout(server.exited, DEADLINE_MS, 'the exit after the last request'), 0,
    server.output());
});

test('the grace time is a limit: a request that outlasts it is cut, and the exit code is 0', async (t) => {
  const server = await startServer({ args: ['--grace-s', '0'], ctx: 4096, t });
  const api = client(server.url);
  const { pending: query } = await startLongQuery(api, await newSession(api));
  assert.equal(await server.stop('SIGTERM'), 0, server.output());
  // The query (ignore_eos: it cannot end early by itself) was cut, not waited for:
  // either the connection closed without an answer or the engine answered 503 aborted.
  const cut = await query;
  if (cut.error === undefined) {
    assert.equal(cut.status, 503, cut.text);
  }
});

// docs/http_api.md, the events table: `closed` — "the session was deleted or the server stops;
// the stream ends".
test('an open events stream receives `closed` when the server stops', async (t) => {
  const server = await startServer({ t });
  const id = await newSession(client(server.url));
  const events = await openSse(`${server.url}/v1/sessions/${id}/events`);
  t.after(() => events.close());
  assert.equal(await server.stop('SIGTERM'), 0, server.output());
  assert.equal(await withTimeout(events.ended, DEADLINE_MS, 'the end of the event stream'), 'end');
  const last = events.events.at(-1);
  assert.equal(last?.event, 'closed', `events before the stream ended: ${JSON.stringify(events.events)}`);
  assert.equal(JSON.parse(last.data).session, id);
});
