// GET /v1/sessions/{id}/data in byte-bounded pages: each page holds at most `max_bytes` of text
// (or one entry larger than that), `more` and `next_after` say how to go on, and the pages
// together are the whole log, in order, exactly once.

import assert from 'node:assert/strict';
import test from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { client, startServer } from './server.mjs';

async function appendAll(api, id, texts) {
  for (const text of texts) {
    for (;;) {
      const r = await api.post(`/v1/sessions/${id}/data`, { text });
      if (r.status === 202) {
        break;
      }
      assert.equal(r.status, 429, r.text);  // ingest is behind: wait and retry
      await sleep(50);
    }
  }
}

test('the data log comes back in byte-bounded pages that together equal the log', async (t) => {
  const server = await startServer({ t });
  const api = client(server.url);
  const id = (await api.post('/v1/sessions', { on_full: 'roll' })).json.id;
  const texts = [];
  for (let i = 0; i < 40; ++i) {
    texts.push(` Line ${i}: ${'tick '.repeat(10 + (i * 37) % 120)}\n`);
  }
  texts[17] = ` Long line: ${'tick '.repeat(180)}\n`;  // larger than a page: a page of its own
  await appendAll(api, id, texts);
  const maxBytes = 600;
  const seen = [];
  let after = 0;
  for (let pages = 0; ; ++pages) {
    assert.ok(pages < 100, 'the pages end');
    const r = await api.get(`/v1/sessions/${id}/data?after=${after}&max_bytes=${maxBytes}`);
    assert.equal(r.status, 200, r.text);
    const bytes = r.json.entries.reduce((n, e) => n + Buffer.byteLength(e.text), 0);
    assert.ok(bytes <= maxBytes || r.json.entries.length === 1, `a page holds ${bytes} bytes`);
    assert.ok(r.json.entries.length > 0 || !r.json.more, 'a page that says more holds something');
    seen.push(...r.json.entries);
    if (!r.json.more) {
      break;
    }
    assert.equal(r.json.next_after, r.json.entries.at(-1).version);
    after = r.json.next_after;
  }
  assert.deepEqual(seen.map((e) => e.text), texts);
  assert.deepEqual(seen.map((e) => e.version), texts.map((_, i) => i + 1));
  for (const bad of ['?max_bytes=0', '?max_bytes=2000000', '?max_bytes=x']) {
    assert.equal((await api.get(`/v1/sessions/${id}/data${bad}`)).status, 400, bad);
  }
  assert.equal(await server.stop(), 0);
});
