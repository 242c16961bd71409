// Durability under SIGKILL: a real server takes appends from several clients and is killed at a
// random moment, then restarted on the same data folder, KVS_CRASH_ROUNDS times (3 in the
// default suite; the slow suite runs 25: `scripts/test.sh -L slow`). After every restart:
//   - every acknowledged append is in its session's data log, at its version, in order, exactly
//     once; an entry that was never acknowledged is one whose request was in flight at the kill;
//   - every session answers exactly like a reference session made on the same server from the
//     same data (the log's entries, appended one by one), and holds the same tokens.
// Snapshots are taken often (--snapshot-interval-s 0) and only 2 of the sessions fit in the KV
// cache at once, so kills land during snapshot writes, parking and log replay alike.

import assert from 'node:assert/strict';
import test from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { client, makeTempDir, startServer } from './server.mjs';

const ROUNDS = Number(process.env.KVS_CRASH_ROUNDS ?? 3);
const CLIENTS = 4;
const ROTATE_AFTER = 60;  // entries; then the client moves to a new session (bounds the checks)
const QUESTION = { query: ' Then the', max_tokens: 8 };
const CTX = 4096;  // room for ROTATE_AFTER lines and the reference checks' questions
const SERVER_ARGS = ['--sessions', '2', '--snapshot-interval-s', '0', '--snapshot-min-tokens', '48'];

// Seeded, so a failing round can be replayed.
let seed = Number(process.env.KVS_CRASH_SEED ?? 12345);
function random() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}

async function readLog(api, id) {
  const entries = [];
  let after = 0;
  while (true) {
    const r = await api.get(`/v1/sessions/${id}/data?after=${after}&limit=1000`);
    assert.equal(r.status, 200, r.text);
    entries.push(...r.json.entries);
    if (!r.json.more) {
      return entries;
    }
    after = entries.at(-1).version;
  }
}

// One client: appends unique lines to its session until `stop` resolves or a request fails
// (the server died). Records what was acknowledged and what was in flight.
async function feed(api, state, stopped) {
  while (!stopped.value) {
    if (state.acked.length >= ROTATE_AFTER) {  // full enough: idle until the kill
      await sleep(20);
      continue;
    }
    const text = ` Client ${state.client} line ${state.next} says ${Math.floor(random() * 1000)}.`;
    state.next += 1;
    state.inflight = text;
    let r;
    try {
      r = await api.post(`/v1/sessions/${state.session}/data`, { text });
    } catch {
      return;  // killed: `inflight` may or may not have been stored
    }
    if (r.status === 429) {  // ingest is behind and the server pushes back: not stored
      state.inflight = undefined;
      state.next -= 1;
      await sleep(50);
      continue;
    }
    if (r.status !== 202) {
      throw new Error(`append answered ${r.status}: ${r.text}`);
    }
    state.inflight = undefined;
    state.acked.push({ version: r.json.version, text });
    await sleep(5 + random() * 30);
  }
}

test(`SIGKILL at random moments, ${ROUNDS} times: no acknowledged append is lost`, async (t) => {
  const dataDir = await makeTempDir();
  const clients = [];  // {client, session, acked: [{version, text}], next, inflight}
  const retired = [];  // sessions left behind by rotation, checked once more then deleted
  const stats = { inflightStored: 0, snapshots: 0 };
  let server = await startServer({ args: SERVER_ARGS, ctx: CTX, dataDir, t });
  let api = client(server.url);
  for (let c = 0; c < CLIENTS; ++c) {
    const r = await api.post('/v1/sessions', {});
    assert.equal(r.status, 201, r.text);
    clients.push({ client: c, session: r.json.id, acked: [], next: 0, inflight: undefined });
  }

  for (let round = 1; round <= ROUNDS; ++round) {
    const stopped = { value: false };
    const feeding = clients.map((state) => feed(api, state, stopped));
    await sleep(300 + random() * 1200);
    await server.kill();  // SIGKILL
    stopped.value = true;
    await Promise.all(feeding);

    server = await startServer({ args: SERVER_ARGS, ctx: CTX, dataDir, t });
    api = client(server.url);
    const restored = /\((\d+) from snapshots\)/.exec(server.output());
    stats.snapshots += restored ? Number(restored[1]) : 0;
    // Exactly the sessions whose creation was acknowledged and deletion was not.
    const listed = (await api.get('/v1/sessions')).json.sessions.map((s) => s.id).sort();
    assert.deepEqual(listed, clients.map((c) => c.session).sort(), `round ${round}: sessions`);
    const checked = [];
    for (const state of clients) {
      const where = `round ${round}, session ${state.session}`;
      const log = await readLog(api, state.session);
      // Versions strictly increase; every acknowledged entry is there, at its version.
      for (let i = 1; i < log.length; ++i) {
        assert.ok(log[i].version > log[i - 1].version, `${where}: versions out of order`);
      }
      const byVersion = new Map(log.map((e) => [e.version, e.text]));
      for (const a of state.acked) {
        assert.equal(byVersion.get(a.version), a.text, `${where}: acknowledged v${a.version} lost`);
      }
      // Nothing else, except the one append in flight at the kill; each text exactly once.
      const known = new Set(state.acked.map((a) => a.text));
      const extra = log.filter((e) => !known.has(e.text));
      assert.ok(extra.length <= 1, `${where}: ${extra.length} unacknowledged entries`);
      if (extra.length === 1) {
        assert.equal(extra[0].text, state.inflight, `${where}: an entry nobody sent`);
        assert.equal(extra[0].version, log.at(-1).version, `${where}: in-flight entry not last`);
        state.acked.push({ version: extra[0].version, text: extra[0].text });
        stats.inflightStored += 1;
      }
      assert.equal(new Set(log.map((e) => e.text)).size, log.length, `${where}: duplicates`);
      assert.equal(log.length, state.acked.length, `${where}: entries`);
      checked.push(log.length);
      state.inflight = undefined;

      // The same answer and tokens as a reference session fed the same data.
      const ref = await api.post('/v1/sessions', {});
      assert.equal(ref.status, 201, ref.text);
      for (const [i, e] of log.entries()) {
        const r = await api.post(`/v1/sessions/${ref.json.id}/data`,
          { text: e.text, wait: i === log.length - 1 });
        assert.ok(r.status === 200 || r.status === 202, r.text);
      }
      const [mine, theirs] = await Promise.all([
        api.post(`/v1/sessions/${state.session}/query`, QUESTION),
        api.post(`/v1/sessions/${ref.json.id}/query`, QUESTION),
      ]);
      assert.equal(mine.status, 200, mine.text);
      assert.equal(mine.json.answer, theirs.json.answer, `${where}: answers differ`);
      const [a, b] = await Promise.all([
        api.get(`/v1/sessions/${state.session}`),
        api.get(`/v1/sessions/${ref.json.id}`),
      ]);
      assert.equal(a.json.tokens, b.json.tokens, `${where}: token counts differ`);
      assert.equal((await api.del(`/v1/sessions/${ref.json.id}`)).status, 204);

      if (state.acked.length >= ROTATE_AFTER) {  // a fresh session keeps the checks short
        retired.push(state.session);
        const r = await api.post('/v1/sessions', {});
        assert.equal(r.status, 201, r.text);
        Object.assign(state, { session: r.json.id, acked: [] });
      }
    }
    t.diagnostic(`round ${round}: ${checked.join('/')} entries checked, ` +
      `${stats.inflightStored} in-flight appends stored so far, ${stats.snapshots} sessions ` +
      'restored from snapshots so far');
    for (const id of retired.splice(0)) {
      assert.equal((await api.del(`/v1/sessions/${id}`)).status, 204);
      assert.equal((await api.get(`/v1/sessions/${id}/data`)).status, 404);
    }
  }
  assert.equal(await server.stop(), 0);
});
