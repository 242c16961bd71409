// Shutting down on SIGTERM (or SIGINT): new work gets 503, requests in flight get up to
// --grace-s, open event streams end, and the process exits 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { client, metric, openSse, startServer, until } from './server.mjs';

const PREFIX = 'Once upon a time, there was a little cat.';

async function newSession(api) {
  const r = await api.post('/v1/sessions', { prefix: PREFIX, flash: [{ query: 'Who?', max_tokens: 4 }] });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

// Starts a long non-streamed query and resolves once the engine runs it, with {pending}: the
// response to come, {status, json} or {error}.
async function startLongQuery(api, id) {
  const pending = api.post(`/v1/sessions/${id}/query`, { query: 'Tell me a very long story.', max_tokens: 3000 })
    .catch((error) => ({ error }));
  await until(async () => metric((await api.get('/metrics')).text, 'kvs_queries_running') === 1,
    5000, 'the long query to run');
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

test('SIGTERM during open event streams: exit 0 within the grace time, the streams end', async (t) => {
  const grace = 3;
  const server = await startServer({ args: ['--grace-s', String(grace)], t });
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
  await streams[1].waitFor((e) => e.event === 'data_ingested', 5000, 'data_ingested');

  const started = Date.now();
  const code = await server.stop('SIGTERM');
  const elapsed = Date.now() - started;
  assert.equal(code, 0, server.output());
  // Open streams do not hold the server for the grace time.
  assert.ok(elapsed < grace * 1000, `exited after ${elapsed} ms; the grace time is ${grace} s`);
  for (const s of streams) {
    const how = await withTimeout(s.ended, 2000, 'the end of the event stream');
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
  assert.equal(await withTimeout(events.ended, 2000, 'the end of the event stream'), 'end');
  assert.match(server.output(), /kvstream: SIGINT: shutting down\n/);
});

test('a request in flight finishes within the grace time; new requests get 503', async (t) => {
  const server = await startServer({ args: ['--grace-s', '20'], ctx: 4096, t });
  const api = client(server.url);
  const id = await newSession(api);
  const { pending: query } = await startLongQuery(api, id);

  server.proc.kill('SIGTERM');
  await until(() => server.output().includes('shutting down'), 5000, 'the shutdown to begin');
  for (const p of ['/health', `/v1/sessions/${id}`]) {
    const r = await api.get(p);
    assert.equal(r.status, 503, `${p}: ${r.text}`);
    assert.equal(r.json.error.code, 'unavailable');
    assert.equal(r.json.error.message, 'shutting down');
    assert.equal(r.headers.get('retry-after'), '1');
  }
  const r = await api.post(`/v1/sessions/${id}/data`, { text: ' More.', wait: true });
  assert.equal(r.status, 503, r.text);

  const answered = await query;
  assert.equal(answered.error, undefined, String(answered.error));
  assert.equal(answered.status, 200, answered.text);
  assert.ok(answered.json.tokens > 0);
  assert.equal(await withTimeout(server.exited, 5000, 'the exit after the last request'), 0, server.output());
});

test('the grace time is a limit: a request that outlasts it is cut, and the exit code is 0', async (t) => {
  const server = await startServer({ args: ['--grace-s', '0'], ctx: 4096, t });
  const api = client(server.url);
  const { pending: query } = await startLongQuery(api, await newSession(api));
  const started = Date.now();
  assert.equal(await server.stop('SIGTERM'), 0, server.output());
  assert.ok(Date.now() - started < 5000, `exited after ${Date.now() - started} ms`);
  const cut = await query;
  // Either the connection closed without an answer or the engine answered 503 aborted.
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
  assert.equal(await withTimeout(events.ended, 2000, 'the end of the event stream'), 'end');
  const last = events.events.at(-1);
  assert.equal(last?.event, 'closed', `events before the stream ended: ${JSON.stringify(events.events)}`);
  assert.equal(JSON.parse(last.data).session, id);
});
