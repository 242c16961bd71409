// Durability under SIGKILL: a real server takes appends from several clients and is killed at a
// random moment, then restarted on the same data folder, KVS_CRASH_ROUNDS times (3 in the
// default suite; the slow suite runs 25: `scripts/test.sh -L slow`). After every restart:
//   - every acknowledged append is in its session's data log, at its version, in order, exactly
//     once; an entry that was never acknowledged is one whose request was in flight at the kill;
//   - every session answers exactly like a reference session made on the same server from the
//     same data (the log's entries, appended one by one), and holds the same tokens.
// Snapshots are taken often (--snapshot-interval-s 0) and only 2 of the sessions fit in the KV
// cache at once, so kills land during snapshot writes, parking and log replay alike.
// Every round checks that it tests what it names: the server was alive until the kill and died
// of that SIGKILL (not by itself: a request that fails before the kill fails the round), and every
// session came back (/metrics: restored from a snapshot or from the log, none failed). Over all
// rounds, some sessions must come back from their snapshots: rounds restored from the log alone
// would leave the snapshot path untested.

import assert from 'node:assert/strict';
import test from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { client, makeTempDir, metric, startServer } from './server.mjs';

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

// One client: appends unique lines to its session until the round stops or a request fails
// because the test killed the server. Records what was acknowledged and what was in flight. A
// request that fails before the kill fails the round: the server went away by itself.
async function feed(api, state, phase) {
  while (!phase.stopped) {
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
    } catch (err) {
      if (!phase.killed) {
        throw new Error(`client ${state.client}: an append failed before the kill ` +
          `(${err.message}${err.cause ? `: ${err.cause.message}` : ''})`);
      }
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
    const phase = { stopped: false, killed: false };
    const feeding = Promise.all(clients.map((state) => feed(api, state, phase)));
    feeding.catch(() => {});  // awaited after the kill; a failure before it must not go unheard
    await sleep(300 + random() * 1200);  // the kill's random moment (not a wait for a condition)
    // The kill: the server must still be running (one that crashed by itself would make the
    // round pass without a kill), and it must die of this SIGKILL, not of anything else.
    assert.equal(server.proc.exitCode, null,
      `round ${round}: the server exited by itself before the kill\n${server.output()}`);
    assert.equal(server.proc.signalCode, null,
      `round ${round}: the server died of a signal before the kill\n${server.output()}`);
    phase.killed = true;
    assert.ok(server.proc.kill('SIGKILL'), `round ${round}: SIGKILL could not be sent`);
    assert.equal(await server.exited, 'SIGKILL',
      `round ${round}: the server did not die of the SIGKILL\n${server.output()}`);
    phase.stopped = true;
    await feeding;

    server = await startServer({ args: SERVER_ARGS, ctx: CTX, dataDir, t });
    api = client(server.url);
    // Every stored session came back (restores finish before the server is ready), from its
    // snapshot or from its log alone; none failed.
    const m = (await api.get('/metrics')).text;
    const fromSnapshot = metric(m, 'kvs_restored_from_snapshot_total');
    const fromLog = metric(m, 'kvs_restored_from_log_total');
    assert.equal(metric(m, 'kvs_restore_failures_total'), 0, `round ${round}: restore failures`);
    assert.equal(fromSnapshot + fromLog, clients.length,
      `round ${round}: ${fromSnapshot} sessions restored from snapshots and ${fromLog} from ` +
      `logs; ${clients.length} were stored`);
    // The server's own account agrees with its metrics.
    const said = /restored (\d+) of (\d+) sessions from .* \((\d+) from snapshots\)/.exec(server.output());
    assert.ok(said, `round ${round}: no restore line in the server's output\n${server.output()}`);
    assert.deepEqual(said.slice(1).map(Number), [clients.length, clients.length, fromSnapshot],
      `round ${round}: ${said[0]}`);
    stats.snapshots += fromSnapshot;
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
  // Some sessions came back from their snapshots: the rounds did not all fall back to the log.
  assert.ok(stats.snapshots > 0,
    `no session was restored from a snapshot in ${ROUNDS} rounds: only log replay was tested`);
  assert.equal(await server.stop(), 0, server.output());
});
