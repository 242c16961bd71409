// A client that disconnects mid-stream: the query is cancelled, its sequence rolled back, and the
// session and server carry on as if it had never been asked.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { client, metric, readSse, startServer, until } from './server.mjs';

let server;
let api;

before(async () => {
  server = await startServer({ ctx: 4096 });  // room for one long answer
  api = client(server.url);
});
after(() => server?.kill());

// Starts a streamed request and aborts it once `abortAfter` events arrived (0: right after the
// response head). Returns the events seen.
async function streamThenAbort(p, body, abortAfter) {
  const controller = new AbortController();
  const r = await fetch(server.url + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  assert.equal(r.status, 200);
  const seen = [];
  if (abortAfter === 0) {
    controller.abort();
    return seen;
  }
  try {
    for await (const e of readSse(r)) {
      seen.push(e);
      if (seen.length >= abortAfter) {
        controller.abort();
        break;
      }
    }
  } catch (err) {
    if (err.name !== 'AbortError') {
      throw err;
    }
  }
  return seen;
}

async function metricsText() {
  const r = await api.get('/metrics');
  assert.equal(r.status, 200);
  return r.text;
}

function queryTokens(m) {
  const v = m.match(/^kvs_batch_tokens_total\{kind="query"\} (\S+)$/m);
  assert.ok(v, 'kvs_batch_tokens_total{kind="query"} in /metrics');
  return Number(v[1]);
}

async function idle() {
  // Nothing left running: no query, no open stream.
  let last;
  try {
    await until(async () => {
      const m = await metricsText();
      last = { kvs_queries_running: metric(m, 'kvs_queries_running'), kvs_http_streams: metric(m, 'kvs_http_streams') };
      return last.kvs_queries_running === 0 && last.kvs_http_streams === 0;
    }, 2000);
  } catch {
    assert.fail(`/metrics did not show kvs_queries_running 0 and kvs_http_streams 0 within 2 s: ${JSON.stringify(last)}`);
  }
}

test('a disconnect mid-stream frees the query; the session is unchanged', async (t) => {
  const created = await api.post('/v1/sessions', { prefix: 'Once upon a time, there was a little cat.' });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const appended = await api.post(`/v1/sessions/${id}/data`, { text: ' The cat liked to run in the park.', wait: true });
  assert.equal(appended.status, 200, appended.text);
  const beforeQuery = (await api.get(`/v1/sessions/${id}`)).json;
  const probe = { query: 'Where did the cat run?', max_tokens: 24 };
  const baseline = await api.post(`/v1/sessions/${id}/query`, probe);
  assert.equal(baseline.status, 200, baseline.text);

  for (const [round, abortAfter] of [[1, 1], [2, 1], [3, 0], [4, 3], [5, 1]]) {
    const seen = await streamThenAbort(`/v1/sessions/${id}/query`,
      { query: 'Tell me everything about the cat.', max_tokens: 200, stream: true }, abortAfter);
    if (abortAfter > 0) {
      assert.equal(seen.length, abortAfter, `round ${round}`);
      assert.ok(seen.every((e) => e.event === 'token'), `round ${round}: ${JSON.stringify(seen)}`);
    }

    const health = await api.get('/health');
    assert.equal(health.status, 200, `round ${round}: ${health.text}`);
    const now = (await api.get(`/v1/sessions/${id}`)).json;
    assert.equal(now.tokens, beforeQuery.tokens, `round ${round}: tokens`);
    assert.equal(now.version, beforeQuery.version, `round ${round}: version`);
    assert.equal(now.pending_tokens, 0, `round ${round}: pending`);

    // The next query on the session is prompt and sees the same context as before.
    const started = Date.now();
    const next = await fetch(`${server.url}/v1/sessions/${id}/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(probe),
      signal: AbortSignal.timeout(5000),
    });
    const answer = await next.json();
    assert.equal(next.status, 200, `round ${round}: ${JSON.stringify(answer)}`);
    assert.ok(Date.now() - started < 5000);
    assert.equal(answer.answer, baseline.json.answer, `round ${round}: the context changed`);
    assert.equal(answer.timings.context_tokens, beforeQuery.tokens);
    await idle();
  }
  t.diagnostic(`query tokens in all: ${queryTokens(await metricsText())}`);

  // Appends still work after the cancelled queries.
  const more = await api.post(`/v1/sessions/${id}/data`, { text: ' Then it slept.', wait: true });
  assert.equal(more.status, 200, more.text);
  assert.equal(more.json.tokens, beforeQuery.tokens + more.json.accepted_tokens);
});

// Waits until the engine decodes no more query tokens (the counter holds still for 300 ms).
async function queryTokensSettled() {
  let last = -1;
  let since = Date.now();
  return until(async () => {
    const n = queryTokens(await metricsText());
    if (n !== last) {
      last = n;
      since = Date.now();
      return false;
    }
    return Date.now() - since >= 300 ? n : false;
  }, 10_000, 'the query token counter to hold still');
}

async function abortLongAnswer() {
  const created = await api.post('/v1/sessions', { prefix: 'Once upon a time, there was a little cat.' });
  assert.equal(created.status, 201, created.text);
  const before = await queryTokensSettled();
  const seen = await streamThenAbort(`/v1/sessions/${created.json.id}/query`,
    { query: 'Tell me a very long story.', max_tokens: 3000, stream: true }, 1);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].event, 'token');
  return { session: created.json, before };
}

test('a disconnect stops a long answer early', async (t) => {
  const { session, before } = await abortLongAnswer();
  await until(async () => metric(await metricsText(), 'kvs_http_streams') === 0, 2000, 'kvs_http_streams 0');
  const decoded = (await queryTokensSettled()) - before;
  t.diagnostic(`the cancelled query took ${decoded} tokens (prompt and answer) of up to 3000`);
  // Decoding 3000 tokens takes seconds; the disconnect came after the first.
  assert.ok(decoded < 1500, `decoding went on after the disconnect: ${decoded} tokens`);
  const now = await api.get(`/v1/sessions/${session.id}`);
  assert.equal(now.json.tokens, session.tokens);
  assert.equal(now.json.version, session.version);
});

// With nothing else to do after the cancellation, the gauge must still come back to 0 (it counts
// "queries started, not finished").
test('kvs_queries_running is 0 soon after a cancelled query, with no other work', async () => {
  await abortLongAnswer();
  await idle();
});

test('a disconnect mid-stream of /v1/completions frees the request', async () => {
  const body = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
  const baseline = await api.post('/v1/completions', body);
  assert.equal(baseline.status, 200, baseline.text);
  for (const abortAfter of [1, 0, 2]) {
    await streamThenAbort('/v1/completions', { ...body, max_tokens: 200, stream: true }, abortAfter);
    const next = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const json = await next.json();
    assert.equal(next.status, 200, JSON.stringify(json));
    assert.equal(json.choices[0].text, baseline.json.choices[0].text);
    await idle();
  }
  assert.equal((await api.get('/health')).status, 200);
});

test('the server exits 0 on SIGTERM', async () => {
  assert.equal(await server.stop(), 0, server.output());
});
