// Many clients at once: 300 event subscribers on one session and 50 concurrent queries.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { client, metric, openSse, startServer, until } from './server.mjs';

const SUBSCRIBERS = 300;
const QUERIES = 50;
const QUESTIONS = ['Who is in the story?', 'Where did the cat go?', 'What happened next?', 'Why?', 'How did it end?'];

let server;
let api;

before(async () => {
  server = await startServer();
  api = client(server.url);
});
after(() => server?.kill());

async function streamsOpen() {
  return metric((await api.get('/metrics')).text, 'kvs_http_streams');
}

test(`${SUBSCRIBERS} subscribers all get the events of one append; ${QUERIES} concurrent queries all succeed`, async (t) => {
  const created = await api.post('/v1/sessions', {
    prefix: 'Once upon a time, there was a little cat.',
    flash: [{ query: 'What did the cat do?', max_tokens: 4 }],
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  await until(async () => (await api.get(`/v1/sessions/${id}`)).json.flash[0].current, 10_000, 'the first flash answer');

  // Each resolves once its stream is open, that is, subscribed.
  const subscribers = await Promise.all(Array.from({ length: SUBSCRIBERS },
    (_, i) => openSse(`${server.url}/v1/sessions/${id}/events${i % 2 ? '?every=1' : '?every=true'}`)));
  t.after(() => subscribers.forEach((s) => s.close()));
  assert.ok(subscribers.every((s) => s.status === 200));
  assert.equal(await streamsOpen(), SUBSCRIBERS);

  const appended = await api.post(`/v1/sessions/${id}/data`, { text: ' The cat ran to the big red house.' });
  assert.equal(appended.status, 202, appended.text);
  const version = appended.json.version;

  const queries = Promise.all(Array.from({ length: QUERIES }, (_, i) =>
    api.post(`/v1/sessions/${id}/query`, { query: QUESTIONS[i % QUESTIONS.length], max_tokens: 8 })));
  const seen = Promise.all(subscribers.map(async (s, i) => {
    const ingested = await s.waitFor((e) => e.event === 'data_ingested' && JSON.parse(e.data).version === version,
      15_000, `data_ingested for subscriber ${i}`);
    assert.equal(JSON.parse(ingested.data).session, id);
    const ready = await s.waitFor((e) => e.event === 'flash_ready' && JSON.parse(e.data).version === version,
      15_000, `flash_ready for subscriber ${i}`);
    return JSON.parse(ready.data).answer;
  }));

  const answers = await queries;
  for (const [i, r] of answers.entries()) {
    assert.equal(r.status, 200, `query ${i}: ${r.text}`);
    assert.equal(r.json.version, version, `query ${i} reads the append accepted before it`);
    assert.equal(typeof r.json.answer, 'string');
  }
  // Greedy: one answer per question, whatever the batching.
  for (const q of QUESTIONS) {
    const texts = new Set(answers.filter((_, i) => QUESTIONS[i % QUESTIONS.length] === q).map((r) => r.json.answer));
    assert.equal(texts.size, 1, `${q}: ${[...texts].join(' | ')}`);
  }

  const flashAnswers = await seen;
  assert.equal(new Set(flashAnswers).size, 1, 'every subscriber saw the same flash answer');
  const got = await api.get(`/v1/sessions/${id}`);
  assert.equal(got.json.flash[0].answer, flashAnswers[0]);
  assert.ok(subscribers.every((s) => !s.events.some((e) => e.event === 'missed')), 'no subscriber missed events');
  assert.equal(await streamsOpen(), SUBSCRIBERS, 'every stream is still open');

  // Gone subscribers are noticed.
  subscribers.forEach((s) => s.close());
  await until(async () => (await streamsOpen()) === 0, 5000, 'kvs_http_streams 0 after the clients left');
  assert.equal((await api.get('/health')).status, 200);
});

test('the server exits 0 on SIGTERM', async () => {
  assert.equal(await server.stop(), 0, server.output());
});
