// The OpenAI-compatible endpoints, through the official `openai` client and through raw fetch.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { client, openSse, startServer } from './server.mjs';

const MODEL = 'stories260K';
const PROMPT = 'Once upon a time';

let server;
let openai;
let api;

before(async () => {
  server = await startServer();
  api = client(server.url);
  // Without --api-keys the server serves loopback clients; any key string is accepted.
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
});
after(() => server?.kill());

test('openai: completions.create answers with text, usage and finish_reason', async () => {
  const c = await openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.model, MODEL);
  assert.match(c.id, /^cmpl-/);
  assert.equal(typeof c.created, 'number');
  assert.equal(c.choices.length, 1);
  const [choice] = c.choices;
  assert.equal(choice.index, 0);
  assert.equal(typeof choice.text, 'string');
  assert.ok(choice.text.length > 0);
  assert.ok(c.usage.prompt_tokens > 0);
  assert.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 8);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  assert.equal(choice.finish_reason, c.usage.completion_tokens === 8 ? 'length' : 'stop');

  // temperature 0 is greedy: the same request gives the same text.
  const again = await openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 });
  assert.equal(again.choices[0].text, choice.text);
  // A longer answer starts with the shorter one.
  const longer = await openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 16, temperature: 0 });
  assert.ok(longer.choices[0].text.startsWith(choice.text), `${longer.choices[0].text} / ${choice.text}`);
  assert.ok(longer.usage.completion_tokens > c.usage.completion_tokens || longer.choices[0].finish_reason === 'stop');
});

test('openai: streamed completions concatenate to the plain answer', async () => {
  const plain = await openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 12, temperature: 0 });
  const stream = await openai.completions.create({
    model: MODEL, prompt: PROMPT, max_tokens: 12, temperature: 0, stream: true,
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    assert.equal(chunk.model, MODEL);
    if (chunk.usage) {
      usage = chunk.usage;
    }
    for (const choice of chunk.choices) {
      text += choice.text;
      if (choice.finish_reason) {
        assert.equal(finish, null, 'one finish_reason');
        finish = choice.finish_reason;
      }
      chunks += 1;
    }
  }
  assert.ok(chunks > 1, 'several chunks');
  assert.equal(text, plain.choices[0].text);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.deepEqual(usage, plain.usage);
});

test('openai: models.list contains the model', async () => {
  const page = await openai.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [MODEL]);
  assert.equal(page.data[0].object, 'model');
  assert.equal(page.data[0].owned_by, 'kvstream');
  const model = page.data[0];
  assert.equal(typeof model.created, 'number');
});

test('openai: chat.completions.create is a 400 for a model without a chat template', async () => {
  for (const stream of [false, true]) {
    await assert.rejects(
      openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Tell me a story.' }],
        max_tokens: 8,
        temperature: 0,
        stream,
      }),
      (err) => {
        assert.ok(err instanceof OpenAI.APIError, `an APIError, not ${err}`);
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.status, 400);
        assert.match(err.message, /chat template/);
        assert.equal(err.code, 'invalid_argument');
        assert.equal(err.type, 'invalid_request_error');
        return true;
      },
      `stream: ${stream}`,
    );
  }
});

test('openai: a bad parameter is a BadRequestError naming the field', async () => {
  await assert.rejects(
    openai.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 5 }),
    (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /'temperature'/);
      return true;
    },
  );
  await assert.rejects(
    openai.completions.create({ model: MODEL, prompt: '', max_tokens: 8 }),
    (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /'prompt'/);
      return true;
    },
  );
});

test('raw: GET /health and /v1/models', async () => {
  const health = await api.get('/health');
  assert.equal(health.status, 200);
  assert.deepEqual(Object.keys(health.json).sort(), ['cpu_backend', 'model', 'status']);
  assert.equal(health.json.status, 'ok');
  assert.equal(health.json.model, MODEL);
  assert.deepEqual(Object.keys(health.json.cpu_backend).sort(),
    ['features', 'other_backends', 'variant', 'weight_buffers']);

  const models = await api.get('/v1/models');
  assert.equal(models.status, 200, models.text);
  assert.match(models.headers.get('content-type'), /^application\/json/);
  assert.equal(models.json.object, 'list');
  assert.deepEqual(models.json.data.map((m) => m.id), [MODEL]);
});

test('raw: POST /v1/completions, plain', async () => {
  const body = { model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 };
  const r = await api.post('/v1/completions', body);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.equal(r.json.object, 'text_completion');
  assert.equal(r.json.choices[0].logprobs, null);
  assert.ok(r.json.usage.completion_tokens > 0);
  // The same as the client saw.
  const c = await openai.completions.create(body);
  assert.equal(r.json.choices[0].text, c.choices[0].text);
  // A one-string array prompt is the same prompt.
  const arr = await api.post('/v1/completions', { ...body, prompt: [PROMPT] });
  assert.equal(arr.status, 200, arr.text);
  assert.equal(arr.json.choices[0].text, r.json.choices[0].text);
});

test('raw: POST /v1/completions, streamed: chunks, a usage chunk, then [DONE]', async () => {
  const body = { model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 };
  const plain = await api.post('/v1/completions', body);
  assert.equal(plain.status, 200, plain.text);
  const s = await openSse(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(s.status, 200);
  assert.match(s.response.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(await s.ended, 'end');
  assert.ok(s.events.every((e) => e.event === 'message'), 'data-only events');
  assert.equal(s.events.at(-1).data, '[DONE]');
  const chunks = s.events.slice(0, -1).map((e) => JSON.parse(e.data));
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, plain.json.usage);
  const textChunks = chunks.slice(0, -1);
  assert.equal(textChunks.map((c) => c.choices[0].text).join(''), plain.json.choices[0].text);
  assert.equal(textChunks.at(-1).choices[0].finish_reason, plain.json.choices[0].finish_reason);
  assert.ok(textChunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
});

test('raw: POST /v1/chat/completions is a 400 naming the chat template', async () => {
  const r = await api.post('/v1/chat/completions', {
    model: MODEL, messages: [{ role: 'user', content: 'Hi' }], temperature: 0,
  });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.code, 'invalid_argument');
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, /chat template/);
  // Malformed messages are caught before the template is needed.
  const bad = await api.post('/v1/chat/completions', { model: MODEL, messages: [] });
  assert.equal(bad.status, 400, bad.text);
  assert.match(bad.json.error.message, /'messages'/);
});

test('the server exits 0 on SIGTERM', async () => {
  assert.equal(await server.stop(), 0, server.output());
});

// A model with a chat template (the SmolLM2 twin's ChatML): chat completions through the client,
// plain and streamed; greedy, so the streamed deltas spell the plain answer.
test('openai: chat.completions.create with a chat template, plain and streamed', async (t) => {
  const chatModel = process.env.KVSTREAM_CHAT_MODEL;
  assert.ok(chatModel, 'run.sh sets KVSTREAM_CHAT_MODEL');
  const chatServer = await startServer({ args: ['--model', chatModel], t });
  t.after(() => {  // say what the server did when the test failed
    if (process.exitCode) console.error(chatServer.output());
  });
  const chat = new OpenAI({ baseURL: `${chatServer.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
  const request = { model: 'twin', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }],
    max_tokens: 6, temperature: 0 };
  const c = await chat.chat.completions.create(request);
  assert.equal(c.object, 'chat.completion');
  assert.match(c.id, /^chatcmpl-/);
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(typeof c.choices[0].message.content, 'string');
  assert.ok(c.usage.prompt_tokens > 10, 'the template wraps the messages');
  assert.ok(c.usage.completion_tokens >= 1 && c.usage.completion_tokens <= 6);
  const stream = await chat.chat.completions.create({ ...request, stream: true });
  let text = '';
  let finish = null;
  let role = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    const choice = chunk.choices[0];
    if (!choice) continue;  // the usage chunk
    role ??= choice.delta.role ?? null;
    text += choice.delta.content ?? '';
    finish = choice.finish_reason ?? finish;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, c.choices[0].message.content);
  assert.equal(finish, c.choices[0].finish_reason);
});
