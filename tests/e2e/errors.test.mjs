// Every error status for malformed or hostile requests, and that a rejected request changes
// nothing. The server runs with API keys for two tenants, a 4 KiB body limit and at most 3
// records per append. (429 is not triggered here, and the non-loopback 403 cannot be reached from
// loopback.)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';

import { client, metric, startServer, until, writeKeysFile } from './server.mjs';

const ALICE = 'sk-alice-0123456789';
const ALICE2 = 'sk-alice-second-key';  // a second key of the same tenant
const BOB = 'sk-bob-9876543210';
const MAX_BODY = 4096;

let server;
let alice;
let bob;
let anon;
let session;  // alice's

before(async () => {
  const keys = await writeKeysFile([
    { key: ALICE, tenant: 'alice' }, { key: BOB, tenant: 'bob' }, { key: ALICE2, tenant: 'alice' },
  ]);
  server = await startServer({
    args: ['--api-keys', keys, '--max-body-bytes', String(MAX_BODY), '--max-records', '3'],
  });
  alice = client(server.url, ALICE);
  bob = client(server.url, BOB);
  anon = client(server.url);
  const created = await alice.post('/v1/sessions', {
    prefix: 'Once upon a time, there was a little cat.',
    flash: [{ query: 'What did the cat do?', max_tokens: 4 }],
  });
  assert.equal(created.status, 201, created.text);
  session = created.json.id;
  const appended = await alice.post(`/v1/sessions/${session}/data`, { text: ' It ran.', wait: true });
  assert.equal(appended.status, 200, appended.text);
});
after(() => server?.kill());

// What a rejected request must leave as it was.
async function snapshot(id = session) {
  const r = await alice.get(`/v1/sessions/${id}`);
  assert.equal(r.status, 200, r.text);
  const s = r.json;
  return {
    tokens: s.tokens,
    version: s.version,
    accepted_version: s.accepted_version,
    pending_tokens: s.pending_tokens,
    flash: s.flash.map((f) => [f.flash_id, f.query, f.max_tokens]),
  };
}

// Runs fn (which sends requests that must be rejected) and checks that the session is as before.
async function unchanged(fn, id = session) {
  const before = await snapshot(id);
  await fn();
  assert.deepEqual(await snapshot(id), before, 'a rejected request changed the session');
}

function assertError(r, status, code, message) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.ok(r.json?.error, `an error body: ${r.text}`);
  assert.equal(r.json.error.code, code, r.text);
  const type = status === 401 || status === 403 ? 'authentication_error'
    : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  assert.equal(r.json.error.type, type);
  if (message !== undefined) {
    assert.match(r.json.error.message, message);
  }
}

// Sends raw bytes on a fresh connection; resolves with the whole response text once the server
// closes it (or after a response head and its Content-Length body arrived).
function rawHttp(bytes) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within 5 s: ${JSON.stringify(got)}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    socket.on('data', (d) => {
      got += d.toString('latin1');
      const head = got.indexOf('\r\n\r\n');
      const len = got.match(/\r\ncontent-length: *(\d+)/i);
      if (head >= 0 && len && got.length >= head + 4 + Number(len[1])) {
        finish();
      }
    });
    socket.on('end', finish);
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (got) {
        resolve(got);
      } else {
        reject(err);
      }
    });
    socket.write(bytes);
  });
}

test('400: malformed JSON', async () => {
  await unchanged(async () => {
    for (const body of ['{"text": "abc"', '{"text": abc}', '{text: "abc"}', '', 'null', '[]', '"text"']) {
      const r = await alice.post(`/v1/sessions/${session}/data`, body);
      assertError(r, 400, 'invalid_argument');
      assert.match(r.json.error.message, /malformed JSON|must be a JSON object/, `${JSON.stringify(body)}: ${r.text}`);
    }
    const r = await alice.post(`/v1/sessions/${session}/data`, '{"text": "a", "wait": tru}');
    assertError(r, 400, 'invalid_argument', /^malformed JSON at byte \d+/);
  });
});

test('400: a body that is not valid UTF-8', async () => {
  await unchanged(async () => {
    for (const bytes of [
      Buffer.concat([Buffer.from('{"text":"'), Buffer.from([0xff]), Buffer.from('"}')]),
      Buffer.concat([Buffer.from('{"text":"a'), Buffer.from([0xc3]), Buffer.from('","wait":true}')]),  // cut sequence
      Buffer.concat([Buffer.from('{"text":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),  // a surrogate
    ]) {
      const r = await alice.post(`/v1/sessions/${session}/data`, bytes);
      assertError(r, 400, 'invalid_argument', /not valid UTF-8/);
    }
  });
});

test('400: wrong types name the field', async () => {
  await unchanged(async () => {
    const cases = [
      [`/v1/sessions/${session}/query`, { query: 'Who?', max_tokens: 'x' }, /'max_tokens' must be an integer/],
      [`/v1/sessions/${session}/query`, { query: 'Who?', max_tokens: 1.5 }, /'max_tokens'/],
      [`/v1/sessions/${session}/query`, { query: 'Who?', max_tokens: 0 }, /'max_tokens'/],
      [`/v1/sessions/${session}/query`, { query: 42 }, /'query' must be a string/],
      [`/v1/sessions/${session}/query`, { query: 'Who?', stream: 'yes' }, /'stream' must be true or false/],
      [`/v1/sessions/${session}/query`, { query: 'Who?', temperature: '0' }, /'temperature'/],
      [`/v1/sessions/${session}/query`, { query: 'Who?', stop: [1] }, /'stop\[0\]'/],
      [`/v1/sessions/${session}/query`, { max_tokens: 3 }, /'query' is required/],
      [`/v1/sessions/${session}/data`, { text: 5 }, /'text' must be a string/],
      [`/v1/sessions/${session}/data`, { text: 'more', wait: 'yes' }, /'wait' must be true or false/],
      [`/v1/sessions/${session}/data`, { text: 'a\u0000b' }, /'text' contains a NUL/],
      [`/v1/sessions/${session}/data`, {}, /exactly one of 'text'/],
      [`/v1/sessions/${session}/data`, { text: 'a', records: [{ k: 1 }] }, /exactly one of 'text'/],
      [`/v1/sessions/${session}/data`, { records: {} }, /records/],
      [`/v1/sessions/${session}/data`, { records: [{ symbol: 'ETH', t: 1678700000, o: 1, h: 2, l: 0.5, c: 'x' }] },
        /records\[0\]: field 'c' must be a number/],
      [`/v1/sessions/${session}/flash`, { query: 'Q', max_tokens: 'many' }, /'max_tokens'/],
      [`/v1/sessions/${session}/flash`, { max_tokens: 4 }, /'query' is required/],
      ['/v1/sessions', { prefix: 7 }, /'prefix' must be a string/],
      ['/v1/sessions', { on_full: 'explode' }, /'on_full'/],
      ['/v1/sessions', { flash: 'What?' }, /'flash' must be an array/],
      ['/v1/sessions', { template: 'csv' }, /auto/],
      ['/v1/completions', { model: 'm', prompt: 'Hi', max_tokens: 'x' }, /'max_tokens'/],
      ['/v1/completions', { model: 'm', prompt: 'Hi', n: 2 }, /'n'/],
    ];
    for (const [p, body, message] of cases) {
      const r = await alice.post(p, body);
      assert.equal(r.status, 400, `${p} ${JSON.stringify(body)}: ${r.text}`);
      assertError(r, 400, 'invalid_argument', message);
    }
  });
});

test('400: a flash question registered twice', async () => {
  await unchanged(async () => {
    const r = await alice.post(`/v1/sessions/${session}/flash`, { query: 'What did the cat do?', max_tokens: 4 });
    assertError(r, 400, 'invalid_argument');
    // The same text up to surrounding whitespace is the same question.
    const spaced = await alice.post(`/v1/sessions/${session}/flash`, { query: '  What did the cat do? ', max_tokens: 4 });
    assertError(spaced, 400, 'invalid_argument');
    const tooLong = await alice.post(`/v1/sessions/${session}/flash`, { query: 'Other?', max_tokens: 257 });
    assertError(tooLong, 400, 'invalid_argument', /'max_tokens' must be an integer in 1\.\.256/);
  });
});

test('400: unknown fields are named', async () => {
  await unchanged(async () => {
    const cases = [
      [`/v1/sessions/${session}/data`, { text: ' more', bogus: 1 }],
      [`/v1/sessions/${session}/query`, { query: 'Who?', bogus: 1 }],
      [`/v1/sessions/${session}/flash`, { query: 'Who?', bogus: 1 }],
      ['/v1/sessions', { prefix: 'Hi', bogus: 1 }],
    ];
    for (const [p, body] of cases) {
      const r = await alice.post(p, body);
      assertError(r, 400, 'invalid_argument', /^unknown field 'bogus'; allowed: /);
    }
  });
});

test('400: JSON nested deeper than 32 levels', async () => {
  // The body object is level 1; n arrays inside it reach level n + 1.
  const nested = (n) => `{"text":" more","deep":${'['.repeat(n)}${']'.repeat(n)}}`;
  await unchanged(async () => {
    const deep = await alice.post(`/v1/sessions/${session}/data`, nested(32));
    assertError(deep, 400, 'invalid_argument', /nested deeper than 32/);
    const hostile = await alice.post(`/v1/sessions/${session}/data`, '['.repeat(3000));
    assertError(hostile, 400, 'invalid_argument', /nested deeper than 32/);
    // 32 levels parse; the unknown field is what is wrong then.
    const ok = await alice.post(`/v1/sessions/${session}/data`, nested(31));
    assertError(ok, 400, 'invalid_argument', /^unknown field 'deep'/);
  });
});

test('400: a malformed HTTP request', async () => {
  await unchanged(async () => {
    const res = await rawHttp('THIS IS NOT HTTP\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 400 /);
    assert.match(res, /"code":"invalid_argument"/);
  });
});

test('401: a missing or unknown API key', async () => {
  await unchanged(async () => {
    const missing = await anon.get(`/v1/sessions/${session}`);
    assertError(missing, 401, 'unauthenticated', /missing Authorization header/);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');

    const wrong = await client(server.url, 'sk-nobody').post(`/v1/sessions/${session}/data`, { text: ' more', wait: true });
    assertError(wrong, 401, 'unauthenticated', /unknown API key/);
    assert.equal(wrong.headers.get('www-authenticate'), 'Bearer');

    // A key that is a prefix or an extension of a real one is no key.
    for (const key of [ALICE.slice(0, -1), `${ALICE}x`, ALICE.toUpperCase()]) {
      const r = await client(server.url, key).post(`/v1/sessions/${session}/data`, { text: ' more' });
      assertError(r, 401, 'unauthenticated');
    }
    // Not a bearer token.
    const basic = await anon.get(`/v1/sessions/${session}`, { headers: { authorization: `Basic ${ALICE}` } });
    assertError(basic, 401, 'unauthenticated');

    // The openai client sees an AuthenticationError.
    const oa = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-nobody', maxRetries: 0 });
    await assert.rejects(oa.models.list(), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      return true;
    });
    const ok = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: BOB, maxRetries: 0 });
    assert.deepEqual((await ok.models.list()).data.map((m) => m.id), ['stories260K']);
  });
  // Alice's second key is Alice.
  const second = await client(server.url, ALICE2).get(`/v1/sessions/${session}`);
  assert.equal(second.status, 200, second.text);
  // /health and /metrics need no key, and both name the CPU backend variant the engine runs.
  const health = await anon.get('/health');
  assert.equal(health.status, 200);
  assert.match(health.json.cpu_backend.variant, /^[a-z0-9_.-]+$/, health.text);
  assert.ok(health.json.cpu_backend.features.length > 0, health.text);
  const metrics = await anon.get('/metrics');
  assert.equal(metrics.status, 200);
  assert.ok(metrics.text.includes(`kvs_cpu_backend_info{variant="${health.json.cpu_backend.variant}"`),
    metrics.text.slice(-400));
});

test('404: another tenant\'s session reads exactly like a missing one', async () => {
  await unchanged(async () => {
    const missingId = '987654321';
    const other = await bob.get(`/v1/sessions/${session}`);
    const missing = await bob.get(`/v1/sessions/${missingId}`);
    assertError(other, 404, 'not_found');
    assertError(missing, 404, 'not_found');
    assert.equal(other.json.error.message.replaceAll(session, 'ID'), missing.json.error.message.replaceAll(missingId, 'ID'));
    assert.deepEqual(Object.keys(other.json.error).sort(), Object.keys(missing.json.error).sort());

    for (const [method, suffix, body] of [
      ['DELETE', ''],
      ['POST', '/data', { text: ' bob was here', wait: true }],
      ['POST', '/data', { records: [{ symbol: 'ETH', t: 1678700000, o: 1, h: 2, l: 0.5, c: 1.5 }] }],
      ['POST', '/query', { query: 'What did the cat do?' }],
      ['GET', '/flash'],
      ['POST', '/flash', { query: 'Bob?' }],
      ['DELETE', '/flash/1'],
      ['GET', '/events'],
    ]) {
      const a = await bob.send(method, `/v1/sessions/${session}${suffix}`, body);
      const b = await bob.send(method, `/v1/sessions/${missingId}${suffix}`, body);
      assertError(a, 404, 'not_found');
      assertError(b, 404, 'not_found');
      assert.equal(a.json.error.message.replaceAll(session, 'ID'), b.json.error.message.replaceAll(missingId, 'ID'),
        `${method} ${suffix}`);
    }
  });
  // A streamed query is refused before its stream starts: a plain 404, the same for another
  // tenant's session as for a missing one.
  const streamed = async (id) => {
    const r = await bob.post(`/v1/sessions/${id}/query`, { query: 'What did the cat do?', stream: true });
    assertError(r, 404, 'not_found');
    return r.json.error.message.replaceAll(id, 'ID');
  };
  assert.equal(await streamed(session), await streamed('987654321'));
  // Alice still has it, and her own flash question.
  const mine = await alice.get(`/v1/sessions/${session}/flash`);
  assert.equal(mine.status, 200, mine.text);
  assert.equal(mine.json.flash.length, 1);
});

test('404: unknown routes and ids that are not ids', async () => {
  for (const [method, p] of [
    ['GET', '/dashboard/nope.js'],  // GET / is the dashboard (dashboard.test.mjs)
    ['GET', '/nope'],
    ['GET', '/v1'],
    ['GET', '/v1/nope'],
    ['POST', '/v1/sessions/1/nope'],
    ['GET', `/v1/sessions/${session}/flash/1/more`],
    ['GET', '/v1/sessions/abc'],
    ['GET', '/v1/sessions/0'],
    ['GET', '/v1/sessions/-1'],
    ['GET', '/v1/sessions/99999999999999999999999'],
  ]) {
    const r = await alice.send(method, p);
    assertError(r, 404, 'not_found');
  }
  const r = await alice.get('/v1/nope');
  assert.match(r.json.error.message, /no route \/v1\/nope/);
});

test('405: a wrong method names the allowed ones in Allow', async () => {
  await unchanged(async () => {
    for (const [method, p, allow] of [
      ['PUT', `/v1/sessions/${session}`, 'GET, DELETE'],
      ['POST', `/v1/sessions/${session}`, 'GET, DELETE'],
      ['PUT', '/v1/sessions', 'GET, POST'],
      ['PUT', `/v1/sessions/${session}/data`, 'GET, POST'],
      ['DELETE', `/v1/sessions/${session}/query`, 'POST'],
      ['POST', `/v1/sessions/${session}/events`, 'GET'],
      ['PUT', `/v1/sessions/${session}/flash`, 'GET, POST'],
      ['GET', `/v1/sessions/${session}/flash/1`, 'DELETE'],
      ['GET', '/v1/completions', 'POST'],
      ['GET', '/v1/chat/completions', 'POST'],
      ['POST', '/v1/models', 'GET'],
      ['POST', '/health', 'GET'],
      ['DELETE', '/metrics', 'GET'],
    ]) {
      const r = await alice.send(method, p, method === 'POST' || method === 'PUT' ? { text: ' more' } : undefined);
      assertError(r, 405, 'method_not_allowed');
      assert.equal(r.headers.get('allow'), allow, `${method} ${p}`);
      assert.match(r.json.error.message, new RegExp(`^${method} is not allowed here`));
    }
  });
});

test('409: an append that cannot fit a full session (on_full reject)', async () => {
  const created = await alice.post('/v1/sessions', { prefix: 'Once upon a time.', max_context: 64 });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  assert.equal(created.json.max_context, 64);
  const long = ' The little cat ran and ran and ran all day long in the big green park.'.repeat(4);
  await unchanged(async () => {
    const room = (await alice.get(`/v1/sessions/${id}`)).json.room;
    for (const wait of [true, false]) {
      const r = await alice.post(`/v1/sessions/${id}/data`, { text: long, wait });
      assertError(r, 409, 'context_full', new RegExp(`has room for ${room} more tokens`));
    }
    // The question and its answer must fit too.
    const q = await alice.post(`/v1/sessions/${id}/query`, { query: 'Who?', max_tokens: 100 });
    assertError(q, 409, 'context_full', /query \(question \+ max_tokens\)/);
  }, id);
  // A short one still fits.
  const fits = await alice.post(`/v1/sessions/${id}/data`, { text: ' Hi.', wait: true });
  assert.equal(fits.status, 200, fits.text);
  assert.ok(fits.json.tokens <= 64);
});

test('413: a body over --max-body-bytes, and too many records', async () => {
  await unchanged(async () => {
    const text = 'a'.repeat(MAX_BODY);
    const r = await alice.post(`/v1/sessions/${session}/data`, { text });
    assertError(r, 413, 'too_large', new RegExp(`larger than ${MAX_BODY} bytes`));
    // A body of exactly the limit is read (and then refused for its unknown field).
    const shell = '{"text":"","bogus":true}';
    const exact = `{"text":"${'b'.repeat(MAX_BODY - shell.length)}","bogus":true}`;
    assert.equal(Buffer.byteLength(exact), MAX_BODY);
    assertError(await alice.post(`/v1/sessions/${session}/data`, exact), 400, 'invalid_argument', /unknown field 'bogus'/);
    const over = `{"text":"${'b'.repeat(MAX_BODY + 1 - shell.length)}","bogus":true}`;
    assertError(await alice.post(`/v1/sessions/${session}/data`, over), 413, 'too_large');

    const bar = { symbol: 'ETH', t: 1678700000, o: 1, h: 2, l: 0.5, c: 1.5, v: 10 };
    const many = await alice.post(`/v1/sessions/${session}/data`, { records: [bar, bar, bar, bar] });
    assertError(many, 413, 'too_large', /4 records; at most 3/);
  });
  // The server still serves.
  assert.equal((await anon.get('/health')).status, 200);
});

test('431: a request head over 16 KiB', async () => {
  await unchanged(async () => {
    const r = await alice.post(`/v1/sessions/${session}/data`, { text: ' more', wait: true },
      { headers: { 'x-padding': 'p'.repeat(20 * 1024) } });
    assertError(r, 431, 'too_large', /16 KiB/);
    const raw = await rawHttp(`GET /v1/sessions/${session}/${'x'.repeat(17 * 1024)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 431 /);
  });
  assert.equal((await anon.get('/health')).status, 200);
});
// Hostile shapes that once reached a throwing JSON accessor: a 400, and the server lives on.
test('400: chat content parts of the wrong shape; the server keeps serving', async () => {
  for (const content of [[{ type: 1 }], [{ type: null }], [{ type: 'image_url' }], [{ type: 'text', text: 7 }], 5]) {
    const r = await alice.post('/v1/chat/completions', { messages: [{ role: 'user', content }] });
    assertError(r, 400, 'invalid_argument');
  }
  const health = await anon.get('/health');
  assert.equal(health.status, 200, health.text);
});

// HEAD gets the head of the answer and no body, and the connection stays usable.
test('HEAD: a status line and headers, no body', async () => {
  const r = await fetch(`${server.url}/health`, { method: 'HEAD' });
  assert.equal(r.status, 405);
  assert.equal(await r.text(), '');
  assert.ok(Number(r.headers.get('content-length')) > 0);
  const again = await anon.get('/health');
  assert.equal(again.status, 200);
});

// Another tenant's append is refused at once and does not hold the owner's cached answers back:
// the owner's registered flash question is answered from the cache (`cached: true`, the same
// answer at the same version) right before and right after the refused appends, and no query
// for it missed the cache meanwhile (kvs_flash_misses_total).
test('404: another tenant appending to a session leaves its cached answers alone', async () => {
  const flashQuery = { query: 'What did the cat do?' };  // the registered question, its max_tokens
  const ask = async () => {
    const r = await alice.post(`/v1/sessions/${session}/query`, flashQuery);
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const misses = async () => metric((await anon.get('/metrics')).text, 'kvs_flash_misses_total');
  // The flash answer is evaluated in idle time after the append in before(): wait until it is
  // current and served from the cache.
  const cached = await until(async () => {
    const a = await ask();
    return a.cached ? a : false;
  }, 20_000, 'the flash answer to be cached');
  const missesBefore = await misses();
  await unchanged(async () => {
    for (const wait of [false, true]) {
      const r = await bob.post(`/v1/sessions/${session}/data`, { text: 'intrusion', wait });
      assertError(r, 404, 'not_found');
    }
  });
  // Asked at once: still a cache hit, the same answer at the same version.
  const after = await ask();
  assert.equal(after.cached, true, `the cached answer is held back after the refused append: ${JSON.stringify(after)}`);
  // The same cached answer, not one evaluated anew for data the refused append brought in.
  assert.equal(after.flash_id, cached.flash_id, JSON.stringify(after));
  assert.equal(after.version, cached.version, `the cached answer moved to another version: ${JSON.stringify(after)}`);
  assert.equal(after.answer, cached.answer, JSON.stringify(after));
  assert.equal(await misses(), missesBefore, 'a query for the flash question missed the cache');
});


// GET /v1/sessions lists the caller's sessions only.
test('GET /v1/sessions: each tenant sees only its own sessions', async () => {
  const mine = await alice.get('/v1/sessions');
  assert.equal(mine.status, 200, mine.text);
  assert.ok(mine.json.sessions.some((s) => s.id === session), mine.text);
  const first = mine.json.sessions.find((s) => s.id === session);
  assert.equal(first.flash.length, 1);
  const theirs = await bob.get('/v1/sessions');
  assert.equal(theirs.status, 200, theirs.text);
  assert.ok(!theirs.json.sessions.some((s) => s.id === session), theirs.text);
  assertError(await anon.get('/v1/sessions'), 401, 'unauthenticated');
});

test('the server exits 0 on SIGTERM', async () => {
  assert.equal(await server.stop(), 0, server.output());
});
