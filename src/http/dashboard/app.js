// The kvstream dashboard: the caller's sessions, the engine's state, a selected session's flash
// answers (live, from its event stream), a question box, and the server's own query latencies.
// Plain browser JavaScript with no dependencies; every request goes to the server that served it.
'use strict';

const KEY_STORAGE = 'kvstream.apiKey';
const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || '',
  selected: null,       // session id
  events: null,         // AbortController of the selected session's event stream
  previous: new Map(),  // id -> {tokens, at}: for the ingest rate
  lines: new Map(),     // id -> {version, text}: the last data lines read
};

// ---- requests ----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  return state.key ? { Authorization: `Bearer ${state.key}`, ...extra } : extra;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = `${response.status} ${body.error?.code ?? ''}: ${body.error?.message ?? message}`;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

// Reads a server-sent event stream from a fetch response: onEvent(name, data) per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    pending += decoder.decode(value, { stream: true }).replaceAll('\r', '');
    let end;
    while ((end = pending.indexOf('\n\n')) >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) onEvent(name, data.join('\n'));
    }
  }
}

// ---- messages ----------------------------------------------------------------------------

function showError(e) {
  const box = $('error');
  if (!e) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  let text = e.message;
  if (e.status === 401) text = `The API key was rejected: ${e.message}. Enter a valid key above.`;
  else if (e.status === 403) text = `Access refused: ${e.message}.`;
  box.textContent = text;
  box.hidden = false;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

const fmt = (n, digits = 0) => Number(n).toLocaleString('en-US', { maximumFractionDigits: digits });

// ---- engine ------------------------------------------------------------------------------

function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const name = line.slice(0, space);
    values.set(name, (values.get(name) ?? 0) + Number(line.slice(space + 1)));
  }
  return values;
}

async function refreshEngine() {
  const m = parseMetrics(await (await api('/metrics')).text());
  const get = (name) => m.get(name) ?? 0;
  const steps = get('kvs_step_ms_count');
  const items = [
    ['KV cells used', fmt(get('kvs_kv_cells_used'))],
    ['KV cells free', fmt(get('kvs_kv_cells_total') - get('kvs_kv_cells_used'))],
    ['sessions resident', fmt(get('kvs_sessions_resident'))],
    ['sessions parked', fmt(get('kvs_sessions') - get('kvs_sessions_resident'))],
    ['mean step', steps > 0 ? `${fmt(get('kvs_step_ms_sum') / steps, 1)} ms` : '-'],
    ['queries waiting', fmt(get('kvs_queries_waiting'))],
    ['queries running', fmt(get('kvs_queries_running'))],
    ['data waiting for ingest', `${fmt(get('kvs_pending_ingest_tokens'))} tokens`],
  ];
  const dl = $('engine');
  dl.replaceChildren(...items.map(([label, value]) => {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = value;
    div.append(dt, dd);
    return div;
  }));
}

// ---- sessions ----------------------------------------------------------------------------

// A session's last data lines, read again only when its version moved.
async function lastLines(session) {
  const known = state.lines.get(session.id);
  if (known && known.version === session.version) {
    return known.text;
  }
  let text;
  try {
    const after = Math.max(0, session.version - 3);
    const r = await api(`/v1/sessions/${session.id}/data?after=${after}&limit=3`);
    const { entries } = await r.json();
    text = entries.map((e) => e.text.replace(/\n$/, '')).join('\n') || '-';
  } catch (e) {
    return e.status === 503 ? '(not kept: in-memory server)' : `(${e.message})`;
  }
  state.lines.set(session.id, { version: session.version, text });
  return text;
}

function ingestRate(session, now) {
  const before = state.previous.get(session.id);
  state.previous.set(session.id, { tokens: session.tokens, at: now });
  if (!before || now <= before.at) return '-';
  const rate = (session.tokens - before.tokens) / ((now - before.at) / 1000);
  return rate > 0 ? `${fmt(rate, 1)} tokens/s` : 'idle';
}

async function refreshSessions() {
  const { sessions } = await (await api('/v1/sessions')).json();
  const now = Date.now();
  const lines = await Promise.all(sessions.slice(0, 50).map(lastLines));
  const body = $('sessions').tBodies[0];
  body.replaceChildren();
  sessions.forEach((s, i) => {
    const row = body.insertRow();
    row.dataset.id = s.id;
    row.tabIndex = 0;
    row.setAttribute('aria-selected', String(s.id === state.selected));
    cell(row, s.id);
    cell(row, fmt(s.tokens), 'num');
    cell(row, fmt(s.version), 'num');
    cell(row, s.resident ? 'resident' : 'parked');
    cell(row, ingestRate(s, now), 'num');
    cell(row, lines[i] ?? '', 'lines');
    row.addEventListener('click', () => select(s.id));
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        select(s.id);
      }
    });
  });
  $('no-sessions').hidden = sessions.length > 0;
  if (state.selected && !sessions.some((s) => s.id === state.selected)) {
    closeDetail();
  }
}

// ---- the selected session ----------------------------------------------------------------

function flashRow(flashId) {
  return $('flash').querySelector(`tr[data-flash-id="${CSS.escape(flashId)}"]`);
}

function showFlashResult(row, answer, confidence, version) {
  row.cells[1].textContent = answer ?? '(not evaluated yet)';
  row.cells[1].dataset.version = version ?? '';
  row.cells[2].textContent = confidence == null ? '-' : fmt(confidence, 2);
  row.cells[3].textContent = version ?? '-';
  row.classList.remove('updated');
  void row.offsetWidth;  // restart the highlight
  row.classList.add('updated');
}

function renderFlash(flash) {
  const body = $('flash').tBodies[0];
  body.replaceChildren();
  for (const f of flash) {
    const row = body.insertRow();
    row.dataset.flashId = f.flash_id;
    cell(row, f.query);
    cell(row, '', 'answer');
    cell(row, '', 'num');
    cell(row, '', 'num');
    showFlashResult(row, f.answer, f.confidence, f.version);
  }
  $('no-flash').hidden = flash.length > 0;
}

function closeDetail() {
  state.events?.abort();
  state.events = null;
  state.selected = null;
  $('detail').hidden = true;
}

async function select(id) {
  closeDetail();
  state.selected = id;
  for (const row of $('sessions').tBodies[0].rows) {
    row.setAttribute('aria-selected', String(row.dataset.id === id));
  }
  $('detail').hidden = false;
  $('detail-title').textContent = `Session ${id}`;
  $('answer').textContent = '';
  $('answer-timings').textContent = '';
  try {
    const session = await (await api(`/v1/sessions/${id}`)).json();
    renderFlash(session.flash);
    await refreshChart();
    followEvents(id);
  } catch (e) {
    showError(e);
  }
}

async function followEvents(id) {
  const controller = new AbortController();
  state.events = controller;
  $('detail-events').textContent = 'following the session\'s events';
  try {
    const response = await api(`/v1/sessions/${id}/events`, { signal: controller.signal });
    await readEvents(response, (name, data) => {
      const e = JSON.parse(data);
      if (name === 'flash_ready') {
        const row = flashRow(e.flash_id);
        if (row) showFlashResult(row, e.answer, e.confidence, e.version);
      } else if (name === 'data_ingested') {
        $('detail-events').textContent = `data ingested up to version ${e.version}`;
      } else if (name === 'closed') {
        $('detail-events').textContent = 'the session was closed';
      }
    });
  } catch (e) {
    if (!controller.signal.aborted) showError(e);
  }
}

async function ask(event) {
  event.preventDefault();
  const id = state.selected;
  const out = $('answer');
  const timings = $('answer-timings');
  out.textContent = '';
  timings.textContent = 'asking...';
  const body = {
    query: $('question').value,
    max_tokens: Number($('max-tokens').value),
    stream: true,
  };
  try {
    const response = await api(`/v1/sessions/${id}/query`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    await readEvents(response, (name, data) => {
      const e = JSON.parse(data);
      if (name === 'token') {
        out.textContent += e.text;
      } else if (name === 'done') {
        const t = e.timings;
        timings.textContent = e.cached
          ? `cached flash answer (version ${e.version}, ${fmt(e.cached_age_ms)} ms old)`
          : `context ${fmt(t.context_tokens)} tokens, question ${t.prompt_tokens}, answer ` +
            `${t.answer_tokens}: ${fmt(t.total_ms, 1)} ms (waited ${fmt(t.queued_ms, 1)} ms)`;
      } else if (name === 'error') {
        timings.textContent = '';
        showError(new ApiError(0, `the query failed: ${e.error?.message ?? data}`));
      }
    });
    await refreshChart();
  } catch (e) {
    timings.textContent = '';
    showError(e);
  }
}

// ---- the latency chart -------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

async function refreshChart() {
  const { queries } = await (await api('/v1/queries')).json();
  const points = queries.filter((q) => !q.cached);
  const chart = $('chart');
  chart.replaceChildren();
  const [w, h, left, bottom, top, right] = [640, 240, 56, 36, 12, 16];
  if (points.length === 0) {
    chart.append(svg('text', { x: 20, y: 40 }, 'No live queries yet: ask one above.'));
    return;
  }
  const maxX = Math.max(...points.map((p) => p.context_tokens), 1) * 1.05;
  const maxY = Math.max(...points.map((p) => p.total_ms), 1) * 1.1;
  const x = (v) => left + (v / maxX) * (w - left - right);
  const y = (v) => h - bottom - (v / maxY) * (h - bottom - top);
  for (let i = 0; i <= 4; i += 1) {
    const vy = (maxY * i) / 4;
    chart.append(svg('line', { x1: left, x2: w - right, y1: y(vy), y2: y(vy), class: 'grid' }));
    chart.append(svg('text', { x: left - 6, y: y(vy) + 4, 'text-anchor': 'end' },
      fmt(vy, maxY < 10 ? 1 : 0)));
    const vx = (maxX * i) / 4;
    chart.append(svg('text', { x: x(vx), y: h - bottom + 16, 'text-anchor': 'middle' }, fmt(vx)));
  }
  chart.append(svg('line', { x1: left, x2: left, y1: top, y2: h - bottom, class: 'axis' }));
  chart.append(svg('line', { x1: left, x2: w - right, y1: h - bottom, y2: h - bottom, class: 'axis' }));
  chart.append(svg('text', { x: (w + left) / 2, y: h - 4, 'text-anchor': 'middle' }, 'context (tokens)'));
  chart.append(svg('text', { x: 12, y: top + 8 }, 'ms'));
  for (const p of points) {
    const dot = svg('circle', { cx: x(p.context_tokens), cy: y(p.total_ms), r: 4 });
    dot.append(svg('title', {}, `session ${p.session}: ${fmt(p.context_tokens)} tokens, ` +
                                `${fmt(p.total_ms, 1)} ms`));
    chart.append(dot);
  }
}

// ---- start -------------------------------------------------------------------------------

async function refresh() {
  try {
    await Promise.all([refreshEngine(), refreshSessions()]);
    showError(null);
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    showError(e);
  }
}

function start() {
  $('api-key').value = state.key;
  // Another key may be another tenant: forget what the last one saw.
  const useKey = (key) => {
    state.key = key;
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    $('api-key').value = key;
    closeDetail();
    state.previous.clear();
    state.lines.clear();
    refresh();
  };
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    useKey($('api-key').value.trim());
  });
  $('forget-key').addEventListener('click', () => useKey(''));
  $('ask-form').addEventListener('submit', ask);
  refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
