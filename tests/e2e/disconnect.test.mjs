// A client that disconnects mid-stream: the query is cancelled, its sequence rolled back, and the
// session and server carry on as if it had never been asked. The cancelled questions ask for
// LONG_TOKENS tokens with `ignore_eos`, so an answer that was not cancelled runs to its full
// length (long enough that it is still running when the disconnect arrives: a 200-token answer
// of the test model is done in some 50 ms, before the cancellation could land). That it never
// finished (GET /v1/queries records every session answer that finished) and that it put fewer
// tokens into batches than a whole answer does (kvs_batch_tokens_total) is what proves the
// cancellation. No check here is a time limit: each waits for its condition, with a generous
// deadline that fails by name.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { client, metric, readSse, startServer, until } from './server.mjs';

const LONG_TOKENS = 3000;

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

const IDLE_DEADLINE_MS = 20_000;  // generous: a deadline for a condition, not a time limit

async function idle() {
  // Nothing left running: no query running or waiting, no open stream.
  let last;
  try {
    await until(async () => {
      const m = await metricsText();
      last = {
        kvs_queries_running: metric(m, 'kvs_queries_running'),
        kvs_queries_waiting: metric(m, 'kvs_queries_waiting'),
        kvs_http_streams: metric(m, 'kvs_http_streams'),
      };
      return Object.values(last).every((v) => v === 0);
    }, IDLE_DEADLINE_MS);
  } catch {
    assert.fail('/metrics did not show kvs_queries_running, kvs_queries_waiting and kvs_http_streams 0 ' +
      `within ${IDLE_DEADLINE_MS} ms: ${JSON.stringify(last)}`);
  }
}

// The query tokens put into batches so far, read once the engine is idle (every query it was
// given has finished or was dropped, so the counter holds still).
async function queryTokensWhenIdle() {
  await idle();
  return queryTokens(await metricsText());
}

// The answers the server finished for this session (GET /v1/queries records each session answer
// that finished, and nothing else: a cancelled query is not there).
async function finishedAnswers(id) {
  const r = await api.get('/v1/queries');
  assert.equal(r.status, 200, r.text);
  return r.json.queries.filter((q) => q.session === id);
}

test('a disconnect mid-stream frees the query; the session is unchanged', async (t) => {
  const created = await api.post('/v1/sessions', { prefix: 'Once upon a time, there was a little cat.' });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const appended = await api.post(`/v1/sessions/${id}/data`, { text: ' The cat liked to run in the park.', wait: true });
  assert.equal(appended.status, 200, appended.text);
  const beforeQuery = (await api.get(`/v1/sessions/${id}`)).json;
  const probe = { query: 'Where did the cat run?', max_tokens: 24 };
  // What one probe and one whole long answer put into batches, measured uncancelled.
  let mark = await queryTokensWhenIdle();
  const baseline = await api.post(`/v1/sessions/${id}/query`, probe);
  assert.equal(baseline.status, 200, baseline.text);
  const probeCost = (await queryTokensWhenIdle()) - mark;
  const long = { query: 'Tell me everything about the cat.', max_tokens: LONG_TOKENS, ignore_eos: true };
  mark = await queryTokensWhenIdle();
  const whole = await api.post(`/v1/sessions/${id}/query`, long);
  assert.equal(whole.status, 200, whole.text);
  assert.equal(whole.json.tokens, long.max_tokens, 'ignore_eos: the whole answer is max_tokens long');
  const wholeCost = (await queryTokensWhenIdle()) - mark;
  let finished = (await finishedAnswers(id)).length;

  for (const [round, abortAfter] of [[1, 1], [2, 1], [3, 0], [4, 3], [5, 1]]) {
    mark = await queryTokensWhenIdle();
    const seen = await streamThenAbort(`/v1/sessions/${id}/query`, { ...long, stream: true }, abortAfter);
    if (abortAfter > 0) {
      assert.equal(seen.length, abortAfter, `round ${round}`);
      assert.ok(seen.every((e) => e.event === 'token'), `round ${round}: ${JSON.stringify(seen)}`);
    }
    // The cancelled query is gone (nothing runs, no stream is open) and left nothing behind.
    await idle();
    const health = await api.get('/health');
    assert.equal(health.status, 200, `round ${round}: ${health.text}`);
    const now = (await api.get(`/v1/sessions/${id}`)).json;
    assert.equal(now.tokens, beforeQuery.tokens, `round ${round}: tokens`);
    assert.equal(now.version, beforeQuery.version, `round ${round}: version`);
    assert.equal(now.pending_tokens, 0, `round ${round}: pending`);

    // The next query on the session is answered and sees the same context as before.
    const answer = await api.post(`/v1/sessions/${id}/query`, probe);
    assert.equal(answer.status, 200, `round ${round}: ${answer.text}`);
    assert.equal(answer.json.answer, baseline.json.answer, `round ${round}: the context changed`);
    assert.equal(answer.json.timings.context_tokens, beforeQuery.tokens);

    // The cancellation, proven: the long answer never finished (the only answer the round
    // finished is the probe's), and it stopped early: the round put fewer tokens into batches
    // than the probe and a whole long answer do.
    const answers = await finishedAnswers(id);
    const added = answers.slice(finished);
    assert.deepEqual(added.map((q) => q.answer_tokens), [answer.json.tokens],
      `round ${round}: answers finished besides the probe: ${JSON.stringify(added)}`);
    finished = answers.length;
    const cancelledCost = (await queryTokensWhenIdle()) - mark - probeCost;
    t.diagnostic(`round ${round}: the cancelled query put ${cancelledCost} tokens into batches; ` +
      `a whole answer puts ${wholeCost}`);
    assert.ok(cancelledCost < wholeCost,
      `round ${round}: decoding went on after the disconnect: ${cancelledCost} tokens, a whole ` +
      `answer is ${wholeCost}`);
  }
  t.diagnostic(`query tokens in all: ${queryTokens(await metricsText())}`);

  // Appends still work after the cancelled queries.
  const more = await api.post(`/v1/sessions/${id}/data`, { text: ' Then it slept.', wait: true });
  assert.equal(more.status, 200, more.text);
  assert.equal(more.json.tokens, beforeQuery.tokens + more.json.accepted_tokens);
});

// A LONG_TOKENS answer (ignore_eos: it cannot end early by itself) cancelled after its first token.
async function abortLongAnswer() {
  const created = await api.post('/v1/sessions', { prefix: 'Once upon a time, there was a little cat.' });
  assert.equal(created.status, 201, created.text);
  const before = await queryTokensWhenIdle();
  const seen = await streamThenAbort(`/v1/sessions/${created.json.id}/query`,
    { query: 'Tell me a very long story.', max_tokens: LONG_TOKENS, ignore_eos: true, stream: true }, 1);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].event, 'token');
  return { session: created.json, before };
}

test('a disconnect stops a long answer early', async (t) => {
  const { session, before } = await abortLongAnswer();
  // Once idle (the query gone, the stream closed) the counter holds what the query decoded.
  const decoded = (await queryTokensWhenIdle()) - before;
  t.diagnostic(`the cancelled query took ${decoded} tokens (prompt and answer) of up to ${LONG_TOKENS}`);
  // Uncancelled, it would have decoded all of them; the disconnect came after the first.
  assert.ok(decoded < LONG_TOKENS / 2, `decoding went on after the disconnect: ${decoded} tokens`);
  assert.deepEqual(await finishedAnswers(session.id), [], 'the cancelled answer finished');
  const now = await api.get(`/v1/sessions/${session.id}`);
  assert.equal(now.json.tokens, session.tokens);
  assert.equal(now.json.version, session.version);
});

// With nothing else to do after the cancellation, the gauge must still come back to 0 (it counts
// "queries started, not finished").
test('kvs_queries_running comes back to 0 after a cancelled query, with no other work', async () => {
  await abortLongAnswer();
  await idle();
});

// A stateless request's prompt counts as kind="stateless", its answer's tokens as kind="query".
async function statelessTokensWhenIdle() {
  await idle();
  const m = await metricsText();
  const v = m.match(/^kvs_batch_tokens_total\{kind="stateless"\} (\S+)$/m);
  assert.ok(v, 'kvs_batch_tokens_total{kind="stateless"} in /metrics');
  return Number(v[1]) + queryTokens(m);
}

test('a disconnect mid-stream of /v1/completions frees the request', async (t) => {
  const body = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 };
  // What one short completion and one whole long completion (ignore_eos: it cannot end early)
  // put into batches, measured uncancelled.
  let mark = await statelessTokensWhenIdle();
  const baseline = await api.post('/v1/completions', body);
  assert.equal(baseline.status, 200, baseline.text);
  const baselineCost = (await statelessTokensWhenIdle()) - mark;
  const long = { ...body, max_tokens: LONG_TOKENS, ignore_eos: true };
  mark = await statelessTokensWhenIdle();
  const whole = await api.post('/v1/completions', long);
  assert.equal(whole.status, 200, whole.text);
  assert.equal(whole.json.usage.completion_tokens, long.max_tokens, whole.text);
  const wholeCost = (await statelessTokensWhenIdle()) - mark;
  for (const abortAfter of [1, 0, 2]) {
    mark = await statelessTokensWhenIdle();
    await streamThenAbort('/v1/completions', { ...long, stream: true }, abortAfter);
    // The next request is answered as before (the engine takes requests in order: the cancelled
    // one reached it first).
    const next = await api.post('/v1/completions', body);
    assert.equal(next.status, 200, next.text);
    assert.equal(next.json.choices[0].text, baseline.json.choices[0].text);
    // The cancellation, proven: once idle, the cancelled request put fewer tokens into batches
    // than a whole completion does.
    const cancelledCost = (await statelessTokensWhenIdle()) - mark - baselineCost;
    t.diagnostic(`abort after ${abortAfter}: ${cancelledCost} tokens; a whole completion ${wholeCost}`);
    assert.ok(cancelledCost < wholeCost,
      `abort after ${abortAfter}: decoding went on after the disconnect: ${cancelledCost} tokens, ` +
      `a whole completion is ${wholeCost}`);
  }
  assert.equal((await api.get('/health')).status, 200);
});

test('the server exits 0 on SIGTERM', async () => {
  assert.equal(await server.stop(), 0, server.output());
});
