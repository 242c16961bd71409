// The dashboard at `/`, in a real browser: Debian's Chromium, headless, driven by playwright-core.
// A real server with API keys; the test creates a session and registers a question through the
// API, opens the page, enters a wrong key (the page says so), then the right one, selects the
// session, pushes data through the API and waits for the page to show the new flash answer
// without a reload; it asks a question in the page and sees the answer and its timings, and
// saves a screenshot (build/test-artifacts/dashboard.png). The page must load nothing from
// anywhere but the server.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

import { client, startServer, until, writeKeysFile } from './server.mjs';

const CHROMIUM = process.env.KVSTREAM_CHROMIUM ?? '/usr/bin/chromium';
// As the machine's probe runs it: without the background-networking flags Chromium keeps trying
// to reach Google's hosts, which this closed network refuses.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];

test('the dashboard shows sessions, live flash answers and asked answers', async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (scripts/setup.sh installs chromium)`);
  const keys = await writeKeysFile([{ key: 'k-alice', tenant: 'alice' }, { key: 'k-bob', tenant: 'bob' }]);
  const server = await startServer({ args: ['--api-keys', keys], t });
  const alice = client(server.url, 'k-alice');
  const created = await alice.post('/v1/sessions', {
    prefix: 'Once upon a time',
    flash: [{ query: ' Lily saw a', max_tokens: 8 }],
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  await client(server.url, 'k-bob').post('/v1/sessions', { prefix: 'Bob has his own.' });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url)) foreign.push(r.url());
  });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url + '/');

  // A wrong key: the page says the key was rejected.
  await page.fill('#api-key', 'not-a-key');
  await page.press('#api-key', 'Enter');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /API key was rejected/);

  // The right key (kept in the tab's session storage): alice's session, not bob's.
  await page.fill('#api-key', 'k-alice');
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector(`#sessions tr[data-id="${id}"]`);
  assert.equal(await page.locator('#sessions tbody tr').count(), 1);
  assert.ok(await page.isHidden('#error'));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('kvstream.apiKey')), 'k-alice');

  // Select it by keyboard; its flash question is listed.
  await page.focus(`#sessions tr[data-id="${id}"]`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#flash tr[data-flash-id] td.answer');
  assert.equal(await page.textContent('#flash tbody tr td:first-child'), 'Lily saw a');  // trimmed
  await page.waitForFunction(() => document.querySelector('#detail-events')?.textContent
    .includes('following'));

  // New data through the API: the flash answer for that version appears without a reload.
  const appended = await alice.post(`/v1/sessions/${id}/data`, { text: ' Lily saw a big red ball.' });
  assert.equal(appended.status, 202, appended.text);
  const version = appended.json.version;
  const current = await until(async () => {
    const s = await alice.get(`/v1/sessions/${id}`);
    const f = s.json.flash[0];
    return f.current && f.version === version ? f : null;
  }, 20_000, 'the flash answer of the new version');
  await page.waitForFunction((v) =>
    document.querySelector('#flash td.answer')?.dataset.version === String(v), version,
  { timeout: 20_000 });
  assert.equal(await page.textContent('#flash td.answer'), current.answer);

  // Ask in the page: the answer streams in, with the server's timings, and reaches the chart.
  await page.fill('#question', ' The ball was');
  await page.fill('#max-tokens', '6');
  await page.click('#ask-form button[type=submit]');
  await page.waitForFunction(() => /context \d+ tokens/.test(
    document.querySelector('#answer-timings')?.textContent ?? ''), null, { timeout: 20_000 });
  assert.ok((await page.textContent('#answer')).length > 0);
  await page.waitForSelector('#chart circle');

  // The engine view is filled from the metrics.
  assert.match(await page.textContent('#engine'), /KV cells used/);

  const dir = path.join(path.dirname(process.env.KVSTREAM_BIN), 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, 'dashboard.png'), fullPage: true });

  assert.deepEqual(foreign, [], 'the page must load everything from the server');
  assert.deepEqual(pageErrors, []);
});

test('the dashboard files are served without a key, and nothing else is', async (t) => {
  const keys = await writeKeysFile([{ key: 'k', tenant: 'a' }]);
  const server = await startServer({ args: ['--api-keys', keys], t });
  for (const [p, type] of [['/', 'text/html'], ['/index.html', 'text/html'],
    ['/dashboard/app.js', 'text/javascript'], ['/dashboard/style.css', 'text/css']]) {
    const r = await fetch(server.url + p);
    assert.equal(r.status, 200, p);
    assert.ok(r.headers.get('content-type').startsWith(type), p);
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
    await r.arrayBuffer();
  }
  assert.equal((await fetch(server.url + '/dashboard/missing.js')).status, 404);
  assert.equal((await fetch(server.url + '/', { method: 'POST' })).status, 405);
  assert.equal((await fetch(server.url + '/v1/queries')).status, 401);  // the data needs a key
});
