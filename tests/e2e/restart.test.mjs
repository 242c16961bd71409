// Durable sessions over HTTP: what survives a restart (owners by tenant name even when the keys
// file lists the tenants in another order, record formats, flash questions and their ids, data),
// the data log route, `storage_failed` (507) when the store is full while reads keep working, and
// a server started with --in-memory.

import assert from 'node:assert/strict';
import test from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { client, makeTempDir, startServer, writeKeysFile } from './server.mjs';

const ALICE = 'sk-alice-restart-1';
const BOB = 'sk-bob-restart-2';

test('a restart keeps owners, record formats, flash questions and data', async (t) => {
  const dataDir = await makeTempDir();
  const keys = await writeKeysFile([{ key: ALICE, tenant: 'alice' }, { key: BOB, tenant: 'bob' }]);
  let server = await startServer({ args: ['--api-keys', keys], dataDir, t });
  let alice = client(server.url, ALICE);
  let bob = client(server.url, BOB);
  const made = await alice.post('/v1/sessions', {
    prefix: 'Sensor log.\n',
    template: { format: '{sensor} reads {value}' },
    flash: [{ query: 'What does the sensor read?', max_tokens: 4 }],
  });
  assert.equal(made.status, 201, made.text);
  const id = made.json.id;
  const flashId = made.json.flash[0].flash_id;
  const bobs = (await bob.post('/v1/sessions', {})).json.id;
  const rec = await alice.post(`/v1/sessions/${id}/data`, { records: [{ sensor: 'T1', value: 20.5 }] });
  assert.equal(rec.status, 202, rec.text);
  const before = await alice.post(`/v1/sessions/${id}/query`, { query: ' T1 reads', max_tokens: 6 });
  assert.equal(before.status, 200, before.text);
  assert.equal(await server.stop(), 0);

  // The same tenants, listed the other way round: ids change, names do not.
  const swapped = await writeKeysFile([{ key: BOB, tenant: 'bob' }, { key: ALICE, tenant: 'alice' }]);
  server = await startServer({ args: ['--api-keys', swapped], dataDir, t });
  assert.match(server.output(), /restored 2 of 2 sessions/);
  alice = client(server.url, ALICE);
  bob = client(server.url, BOB);
  assert.equal((await bob.get(`/v1/sessions/${id}`)).status, 404, "bob cannot see alice's session");
  assert.equal((await alice.get(`/v1/sessions/${bobs}`)).status, 404);
  assert.equal((await bob.get(`/v1/sessions/${bobs}`)).status, 200);
  const info = await alice.get(`/v1/sessions/${id}`);
  assert.equal(info.status, 200, info.text);
  assert.equal(info.json.version, 1);
  assert.deepEqual(info.json.flash.map((f) => [f.flash_id, f.query]),
    [[flashId, 'What does the sensor read?']]);
  const after = await alice.post(`/v1/sessions/${id}/query`, { query: ' T1 reads', max_tokens: 6 });
  assert.equal(after.json.answer, before.json.answer);
  // The record format came back too.
  assert.equal((await alice.post(`/v1/sessions/${id}/data`, { records: [{ sensor: 'T2', value: 7 }] })).status, 202);
  const log = await alice.get(`/v1/sessions/${id}/data`);
  assert.equal(log.status, 200, log.text);
  assert.deepEqual(log.json.entries, [
    { version: 1, text: 'T1 reads 20.5\n' }, { version: 2, text: 'T2 reads 7\n' },
  ]);
  assert.equal(log.json.more, false);
  const first = await alice.get(`/v1/sessions/${id}/data?limit=1`);
  assert.deepEqual(first.json, { entries: [{ version: 1, text: 'T1 reads 20.5\n' }], more: true, next_after: 1 });
  const page = await alice.get(`/v1/sessions/${id}/data?after=1&limit=1`);
  assert.deepEqual(page.json, { entries: [{ version: 2, text: 'T2 reads 7\n' }], more: false, next_after: 2 });
  assert.equal((await bob.get(`/v1/sessions/${id}/data`)).status, 404);
  for (const bad of ['?limit=0', '?limit=x', '?after=-1', '?since=3']) {
    const r = await alice.get(`/v1/sessions/${id}/data${bad}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error.code, 'invalid_argument');
  }
  assert.equal(await server.stop(), 0);
});

test('a full store answers 507 storage_failed and changes nothing; reads keep working', async (t) => {
  const server = await startServer({ args: ['--store-max-pages', '10'], t });
  const api = client(server.url);
  const id = (await api.post('/v1/sessions', { on_full: 'roll' })).json.id;
  let failed;
  let acked = 0;
  for (let i = 0; i < 300 && !failed; ++i) {
    const r = await api.post(`/v1/sessions/${id}/data`, { text: ` Line ${i}: ${'data '.repeat(40)}` });
    if (r.status === 202) {
      acked += 1;
    } else if (r.status === 429) {  // ingest is behind: the server pushes back; wait and go on
      assert.equal(r.headers.get('retry-after'), '1');
      await sleep(50);
    } else {
      failed = r;
    }
  }
  assert.ok(failed, 'the store filled up');
  assert.equal(failed.status, 507, failed.text);
  assert.equal(failed.json.error.code, 'storage_failed');
  assert.match(failed.json.error.message, /full.*nothing was acknowledged/);
  const info = await api.get(`/v1/sessions/${id}`);
  assert.equal(info.status, 200);
  assert.equal(info.json.accepted_version, acked, 'the refused append left no version behind');
  assert.equal((await api.post(`/v1/sessions/${id}/query`, { query: ' Line', max_tokens: 2 })).status, 200);
  assert.equal((await api.get(`/v1/sessions/${id}/data?limit=10000`)).json.entries.length, acked);
});

test('--in-memory keeps nothing and has no data log', async (t) => {
  const server = await startServer({ args: ['--in-memory'], t });
  assert.match(server.output(), /--in-memory: sessions are lost/);
  const api = client(server.url);
  const id = (await api.post('/v1/sessions', {})).json.id;
  assert.equal((await api.post(`/v1/sessions/${id}/data`, { text: 'x' })).status, 202);
  const r = await api.get(`/v1/sessions/${id}/data`);
  assert.equal(r.status, 503);
  assert.match(r.json.error.message, /no data log/);
});
