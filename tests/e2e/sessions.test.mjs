// A session's whole life over HTTP and server-sent events: create, inspect, append (text and
// records), query (plain, cached, streamed), the event stream, flash questions, delete.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { client, openSse, startServer, until } from './server.mjs';

const PREFIX = 'Once upon a time, there was a little cat.';
const FLASH_Q = 'What did the cat do?';
const BAR = { symbol: 'ETH', t: 1678700000, o: 1, h: 2, l: 0.5, c: 1.5, v: 10 };

let server;
let api;

before(async () => {
  server = await startServer();
  api = client(server.url);
});
after(() => server?.kill());

async function createSession(body) {
  const r = await api.post('/v1/sessions', body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function getSession(id) {
  const r = await api.get(`/v1/sessions/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// Waits until everything appended is in the KV cache and the first flash answer is current.
async function settled(id) {
  return until(async () => {
    const s = await getSession(id);
    const ingested = s.pending_tokens === 0 && s.accepted_version === s.version;
    const flashCurrent = s.flash.length === 0 || (s.flash[0].current && s.flash[0].version === s.version);
    return ingested && flashCurrent ? s : false;
  }, 10_000, `session ${id} to settle`);
}

test('create a session with a prefix, a flash question and a template; GET shows it', async () => {
  const created = await createSession({
    prefix: PREFIX,
    flash: [{ query: FLASH_Q, max_tokens: 8 }],
    template: 'auto',
  });
  assert.match(created.id, /^[1-9]\d*$/);
  assert.ok(created.tokens > 0, 'the prefix has tokens');
  assert.equal(created.prefix_tokens, created.tokens);
  assert.equal(created.version, 0);
  assert.equal(created.max_context, 1024);
  assert.equal(created.room, created.max_context - created.tokens);
  assert.equal(created.resident, true);
  assert.equal(created.dropped_tokens, 0);
  assert.equal(created.flash.length, 1);
  assert.equal(created.flash[0].query, FLASH_Q);
  assert.equal(created.flash[0].max_tokens, 8);
  assert.match(created.flash[0].flash_id, /^[1-9]\d*$/);

  const got = await getSession(created.id);
  assert.equal(got.id, created.id);
  assert.equal(got.tokens, created.tokens);
  assert.equal(got.prefix_tokens, created.prefix_tokens);
  assert.equal(got.version, 0);
  assert.deepEqual(got.flash.map((f) => [f.flash_id, f.query]), [[created.flash[0].flash_id, FLASH_Q]]);

  // Ids are per session: a second one gets another id, and the first is unchanged.
  const other = await createSession({ prefix: 'Hello' });
  assert.notEqual(other.id, created.id);
  assert.equal(other.flash.length, 0);
  assert.equal((await getSession(created.id)).tokens, created.tokens);
});

test('append text: wait:true answers 200 once ingested, without wait 202 at once', async () => {
  const s = await createSession({ prefix: PREFIX });

  const waited = await api.post(`/v1/sessions/${s.id}/data`, { text: ' The cat ran home.', wait: true });
  assert.equal(waited.status, 200, waited.text);
  assert.equal(waited.json.ingested, true);
  assert.ok(waited.json.accepted_tokens > 0);
  assert.equal(waited.json.version, 1);
  assert.equal(waited.json.tokens, s.tokens + waited.json.accepted_tokens);
  const afterWait = await getSession(s.id);
  assert.equal(afterWait.tokens, waited.json.tokens);
  assert.equal(afterWait.version, 1);
  assert.equal(afterWait.accepted_version, 1);
  assert.equal(afterWait.pending_tokens, 0);

  const queued = await api.post(`/v1/sessions/${s.id}/data`, { text: ' She was happy.' });
  assert.equal(queued.status, 202, queued.text);
  assert.equal(queued.json.ingested, false);
  assert.ok(queued.json.accepted_tokens > 0);
  assert.equal(queued.json.version, 2);
  assert.equal(queued.json.tokens, waited.json.tokens + queued.json.accepted_tokens);
  const done = await settled(s.id);
  assert.equal(done.tokens, queued.json.tokens);
  assert.equal(done.version, 2);
  assert.equal(done.room, done.max_context - done.tokens);
});

test('append records: the auto template renders an OHLCV bar like the ohlcv template', async () => {
  const auto = await createSession({ prefix: PREFIX, template: 'auto' });
  const ohlcv = await createSession({ prefix: PREFIX, template: 'ohlcv' });
  const kv = await createSession({ prefix: PREFIX, template: 'kv' });
  const results = [];
  for (const s of [auto, ohlcv, kv]) {
    const r = await api.post(`/v1/sessions/${s.id}/data`, { records: [BAR] });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.version, 1);
    assert.ok(r.json.accepted_tokens > 0);
    results.push(r.json);
    const settledSession = await settled(s.id);
    assert.equal(settledSession.tokens, s.tokens + r.json.accepted_tokens);
  }
  assert.equal(results[0].accepted_tokens, results[1].accepted_tokens, 'auto detects a bar');
  assert.notEqual(results[0].accepted_tokens, results[2].accepted_tokens, 'kv renders differently');

  // Same records, same answer: the two bar sessions now hold the same text.
  const q = { query: 'What is the price?', max_tokens: 12 };
  const a = await api.post(`/v1/sessions/${auto.id}/query`, q);
  const b = await api.post(`/v1/sessions/${ohlcv.id}/query`, q);
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.equal(a.json.answer, b.json.answer);
});

test('query: an answer, the version, cached:false for a question not registered, timings', async () => {
  const s = await createSession({ prefix: PREFIX, flash: [{ query: FLASH_Q, max_tokens: 8 }] });
  const appended = await api.post(`/v1/sessions/${s.id}/data`, { text: ' The cat ran home.', wait: true });
  assert.equal(appended.status, 200, appended.text);

  const r = await api.post(`/v1/sessions/${s.id}/query`, { query: 'Where did the cat go?', max_tokens: 10 });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const a = r.json;
  assert.equal(typeof a.answer, 'string');
  assert.ok(a.answer.length > 0);
  assert.equal(a.version, appended.json.version);
  assert.equal(a.cached, false);
  assert.equal(a.flash_id, undefined);
  assert.ok(a.tokens > 0 && a.tokens <= 10);
  assert.equal(a.stop_reason, a.tokens === 10 ? 'length' : 'eog');
  assert.equal(typeof a.confidence, 'number');
  const t = a.timings;
  for (const k of ['context_tokens', 'prompt_tokens', 'answer_tokens', 'wait_ms', 'queued_ms', 'prefill_ms', 'decode_ms', 'total_ms', 'server_ms']) {
    assert.equal(typeof t[k], 'number', `timings.${k}`);
    assert.ok(t[k] >= 0, `timings.${k} >= 0`);
  }
  assert.equal(a.joined, false);
  // The server's time for the question covers every part the engine measured.
  assert.ok(t.server_ms >= t.wait_ms + t.queued_ms + t.total_ms - 0.01, JSON.stringify(t));
  assert.equal(t.context_tokens, appended.json.tokens);
  assert.ok(t.prompt_tokens > 0);
  assert.equal(t.answer_tokens, a.tokens);

  // Greedy by default: the same question gives the same answer; a query leaves the session as is.
  const again = await api.post(`/v1/sessions/${s.id}/query`, { query: 'Where did the cat go?', max_tokens: 10 });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.answer, a.answer);
  assert.equal(again.json.cached, false);
  const got = await getSession(s.id);
  assert.equal(got.tokens, appended.json.tokens);
  assert.equal(got.version, appended.json.version);
});

test('a registered question asked again is answered from the flash cache', async () => {
  const s = await createSession({ prefix: PREFIX, flash: [{ query: FLASH_Q, max_tokens: 8 }] });
  const appended = await api.post(`/v1/sessions/${s.id}/data`, { text: ' The cat ran home.', wait: true });
  assert.equal(appended.status, 200, appended.text);
  const current = await settled(s.id);
  const flash = current.flash[0];
  assert.equal(flash.current, true);
  assert.equal(flash.version, appended.json.version);
  assert.equal(typeof flash.answer, 'string');

  const r = await api.post(`/v1/sessions/${s.id}/query`, { query: FLASH_Q });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.cached, true);
  assert.equal(r.json.flash_id, flash.flash_id);
  assert.equal(r.json.answer, flash.answer);
  assert.equal(r.json.version, appended.json.version);
  assert.equal(typeof r.json.cached_age_ms, 'number');

  // cached:false computes it afresh; greedy decoding reaches the same text.
  const fresh = await api.post(`/v1/sessions/${s.id}/query`, { query: FLASH_Q, cached: false });
  assert.equal(fresh.status, 200, fresh.text);
  assert.equal(fresh.json.cached, false);
  assert.equal(fresh.json.answer, flash.answer);
});

test('streaming query: token events concatenate to the done event\'s answer', async () => {
  const s = await createSession({ prefix: PREFIX });
  const appended = await api.post(`/v1/sessions/${s.id}/data`, { text: ' The cat ran home.', wait: true });
  assert.equal(appended.status, 200, appended.text);
  const body = { query: 'Who ran home?', max_tokens: 16 };
  const plain = await api.post(`/v1/sessions/${s.id}/query`, body);
  assert.equal(plain.status, 200, plain.text);

  const stream = await openSse(`${server.url}/v1/sessions/${s.id}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(stream.status, 200);
  assert.match(stream.response.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(await stream.ended, 'end');
  const names = stream.events.map((e) => e.event);
  assert.ok(names.length >= 2, JSON.stringify(stream.events));
  assert.equal(names.at(-1), 'done');
  assert.ok(names.slice(0, -1).every((n) => n === 'token'), names.join(','));
  const text = stream.events.slice(0, -1).map((e) => JSON.parse(e.data).text).join('');
  const done = JSON.parse(stream.events.at(-1).data);
  assert.equal(text, done.answer);
  assert.equal(done.answer, plain.json.answer);
  assert.equal(done.tokens, plain.json.tokens);
  assert.equal(done.cached, false);
  assert.equal(done.version, appended.json.version);
});

test('the events stream reports data_ingested and flash_ready after an append', async () => {
  const s = await createSession({ prefix: PREFIX, flash: [{ query: FLASH_Q, max_tokens: 6 }] });
  await settled(s.id);
  const events = await openSse(`${server.url}/v1/sessions/${s.id}/events?every=1`);
  try {
    assert.equal(events.status, 200);
    assert.match(events.response.headers.get('content-type'), /^text\/event-stream/);
    const r = await api.post(`/v1/sessions/${s.id}/data`, { text: ' The cat slept.' });
    assert.equal(r.status, 202, r.text);
    const ingested = await events.waitFor((e) => e.event === 'data_ingested' &&
      JSON.parse(e.data).version === r.json.version, 5000, 'data_ingested');
    assert.equal(JSON.parse(ingested.data).session, s.id);
    const ready = await events.waitFor((e) => e.event === 'flash_ready' &&
      JSON.parse(e.data).version === r.json.version, 5000, 'flash_ready');
    const f = JSON.parse(ready.data);
    assert.equal(f.session, s.id);
    assert.equal(f.flash_id, s.flash[0].flash_id);
    assert.equal(f.query, FLASH_Q);
    assert.equal(typeof f.answer, 'string');
    assert.equal(typeof f.changed, 'boolean');
    // The event's answer is the one GET shows.
    const got = await settled(s.id);
    assert.equal(got.flash[0].answer, f.answer);
    // Nothing but known events.
    const known = new Set(['data_ingested', 'flash_ready', 'parked', 'restored', 'rolled', 'missed']);
    assert.ok(events.events.every((e) => known.has(e.event)), JSON.stringify(events.events));
  } finally {
    events.close();
  }
});

test('flash questions: add (201), list, delete (204), unknown id 404', async () => {
  const s = await createSession({ prefix: PREFIX, flash: [{ query: FLASH_Q, max_tokens: 8 }] });
  const base = `/v1/sessions/${s.id}/flash`;

  const added = await api.post(base, { query: 'Where is the cat?', max_tokens: 6, temperature: 0 });
  assert.equal(added.status, 201, added.text);
  assert.match(added.json.flash_id, /^[1-9]\d*$/);
  assert.notEqual(added.json.flash_id, s.flash[0].flash_id);

  const listed = await api.get(base);
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(listed.json.flash.map((f) => [f.flash_id, f.query, f.max_tokens]).sort(),
    [[s.flash[0].flash_id, FLASH_Q, 8], [added.json.flash_id, 'Where is the cat?', 6]].sort());
  const got = await getSession(s.id);
  assert.equal(got.flash.length, 2);

  // The new question gets an answer of its own.
  const answered = await until(async () => {
    const l = (await api.get(base)).json.flash.find((f) => f.flash_id === added.json.flash_id);
    return l?.current ? l : false;
  }, 10_000, 'the added flash question to be answered');
  assert.equal(typeof answered.answer, 'string');

  const deleted = await api.del(`${base}/${added.json.flash_id}`);
  assert.equal(deleted.status, 204, deleted.text);
  assert.equal(deleted.text, '');
  const relisted = await api.get(base);
  assert.deepEqual(relisted.json.flash.map((f) => f.flash_id), [s.flash[0].flash_id]);

  for (const unknown of [added.json.flash_id, '999999', 'abc']) {
    const r = await api.del(`${base}/${unknown}`);
    assert.equal(r.status, 404, `${unknown}: ${r.text}`);
    assert.equal(r.json.error.code, 'not_found');
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
  assert.equal((await api.get(base)).json.flash.length, 1);
});

test('DELETE a session: 204, then GET 404, and an open events stream gets `closed`', async () => {
  const s = await createSession({ prefix: PREFIX, flash: [{ query: FLASH_Q, max_tokens: 4 }] });
  const events = await openSse(`${server.url}/v1/sessions/${s.id}/events`);
  try {
    assert.equal(events.status, 200);
    const r = await api.del(`/v1/sessions/${s.id}`);
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
    const closed = await events.waitFor((e) => e.event === 'closed', 5000, 'the closed event');
    assert.equal(JSON.parse(closed.data).session, s.id);
    assert.equal(await events.ended, 'end', 'the server ends the stream after `closed`');
    assert.equal(events.events.at(-1).event, 'closed');
  } finally {
    events.close();
  }
  const gone = await api.get(`/v1/sessions/${s.id}`);
  assert.equal(gone.status, 404, gone.text);
  assert.equal(gone.json.error.code, 'not_found');
  assert.match(gone.json.error.message, new RegExp(`\\b${s.id}\\b`));
  for (const [method, p, body] of [
    ['DELETE', `/v1/sessions/${s.id}`],
    ['POST', `/v1/sessions/${s.id}/data`, { text: 'more' }],
    ['POST', `/v1/sessions/${s.id}/query`, { query: 'Who?' }],
    ['GET', `/v1/sessions/${s.id}/flash`],
    ['GET', `/v1/sessions/${s.id}/events`],
  ]) {
    const again = await api.send(method, p, body);
    assert.equal(again.status, 404, `${method} ${p}: ${again.text}`);
  }
});

test('the server exits 0 on SIGTERM', async () => {
  assert.equal(await server.stop(), 0, server.output());
});
