import { type ExecutionContext, Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import type { GatewayApp } from '../../src/app.ts';
import { usageOfCompletion } from '../../src/openai/usage.ts';
import { type RequestRecord, requestLogLine } from '../../src/request-log.ts';
import { waitUntil } from '../support/wait-until.ts';
import { GATEWAY_KEY, GOOGLE_TOKEN, harness, post } from './gateway-harness.ts';
import { jsonResponse, pemBody, testKeyPair } from './helpers.ts';

const SECRET_PROMPT = 'my bank password is hunter2-7f3a';
const BODY = `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"${SECRET_PROMPT}"}]}`;
const STREAM_BODY = BODY.replace(/}$/, ',"stream":true}');

let logSpy: MockInstance<typeof console.log>;
beforeEach(() => {
  logSpy = vi.spyOn(console, 'log').mockImplementation(() => {});
});
afterEach(() => {
  logSpy.mockRestore();
});

const logLines = () => logSpy.mock.calls.map((call) => String(call[0]));
const records = () => logLines().map((line) => JSON.parse(line) as Record<string, unknown>);

function expectNoSecrets() {
  const all = logLines().join('\n');
  expect(all).not.toContain(GATEWAY_KEY);
  expect(all).not.toContain(GOOGLE_TOKEN);
  expect(all).not.toContain('hunter2');
  const key = pemBody(testKeyPair().pkcs8Pem);
  for (let i = 0; i < key.length - 16; i += 61) expect(all).not.toContain(key.slice(i, i + 16));
}

describe('requestLogLine', () => {
  it.each<RequestRecord>([
    { request_id: 'r1', method: 'POST', route: null },
    {
      request_id: 'r2',
      method: 'POST',
      route: '/v1/chat/completions',
      model: 'a "quoted"\n\u2028 model…',
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
      status: 200,
      ttfb_ms: 1.25,
    },
  ])('is the record as one JSON line led by level and message', (record) => {
    const line = requestLogLine(record);
    expect(line).toBe(JSON.stringify({ level: 'info', message: 'request', ...record }));
    expect(JSON.parse(line)).toEqual({ level: 'info', message: 'request', ...record });
  });
});

describe('request log', () => {
  it('writes one JSON line per request with ids, route, model, status, attempts, timings and usage', async () => {
    const h = harness({ MODEL_ALIASES: '{"gemini-2.5-flash":"google/gemini-2.5-pro"}' });
    const response = await post(h, '/v1/chat/completions', BODY);
    expect(response.status).toBe(200);
    expect(records()).toHaveLength(1);
    const record = records()[0] ?? {};
    expect(record).toMatchObject({
      level: 'info',
      message: 'request',
      method: 'POST',
      route: '/v1/chat/completions',
      model: 'gemini-2.5-flash',
      upstream_model: 'google/gemini-2.5-pro',
      stream: false,
      status: 200,
      upstream_status: 200,
      attempts: 1,
      location: 'us-central1',
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    });
    expect(record.request_id).toBe(response.headers.get('x-request-id'));
    for (const field of ['ttfb_ms', 'total_ms', 'upstream_ms']) {
      expect(typeof record[field]).toBe('number');
    }
    expectNoSecrets();
  });

  it('counts retries in attempts and logs the final upstream status', async () => {
    const h = harness({}, () =>
      h.vertexCalls().length === 1
        ? jsonResponse({ error: { code: 503, status: 'UNAVAILABLE' } }, 503)
        : jsonResponse({ choices: [] }),
    );
    await post(h, '/v1/chat/completions', BODY);
    expect(records()[0]).toMatchObject({ attempts: 2, upstream_status: 200, status: 200 });
  });

  it('logs refusals with their code and no key', async () => {
    const h = harness();
    await post(h, '/v1/chat/completions', BODY, { authorization: 'Bearer sk-not-the-key-9d2e' });
    expect(records()[0]).toMatchObject({
      status: 401,
      error_code: 'invalid_api_key',
      route: '/v1/chat/completions',
    });
    expect(logLines().join('')).not.toContain('sk-not-the-key-9d2e');
    expectNoSecrets();
  });

  it('logs a stream when it ends, with the final usage chunk, without holding the stream back', async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const encoder = new TextEncoder();
    const h = harness(
      {},
      () =>
        new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(
                encoder.encode(
                  'data: {"choices":[{"index":0,"delta":{"content":"Hello"}}],"usage":null}\n\n',
                ),
              );
              await released;
              controller.enqueue(
                encoder.encode(
                  'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\ndata: [DONE]\n\n',
                ),
              );
              controller.close();
            },
          }),
        ),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    const reader = response.body?.getReader();
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain('Hello');
    // The first chunk reached the client while the upstream is still open: nothing logged yet.
    expect(records()).toHaveLength(0);
    release();
    while (!(await reader?.read())?.done) {}
    expect(records()).toHaveLength(1);
    expect(records()[0]).toMatchObject({
      stream: true,
      status: 200,
      stream_outcome: 'complete',
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
    expectNoSecrets();
  });

  it('keeps a huge model name from making a huge log line', async () => {
    const model = `gemini-${'x'.repeat(100_000)}`;
    const h = harness({}, () => jsonResponse({ error: { code: 404, status: 'NOT_FOUND' } }, 404));
    const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
    expect((await post(h, '/v1/chat/completions', body)).status).toBe(404);
    expect(logLines()).toHaveLength(1);
    expect(logLines()[0]?.length).toBeLessThan(1000);
    expect(records()[0]).toMatchObject({ model: `${model.slice(0, 200)}…`, status: 404 });
  });

  it('reads usage from a last event that ends at EOF without its blank line', async () => {
    const tail =
      'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}';
    const h = harness(
      {},
      () =>
        new Response(`data: {"choices":[]}\n\n${tail}`, {
          headers: { 'content-type': 'text/event-stream' },
        }),
    );
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(text.endsWith(`${tail}\n\n`)).toBe(true);
    expect(records()[0]).toMatchObject({
      stream_outcome: 'complete',
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    });
  });

  it('logs the error code of a failed stream, and usage that came just before the error', async () => {
    const usage =
      '{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}';
    const h = harness(
      {},
      () =>
        new Response(`data: ${usage}\n\ndata: {"error":{"code":503,"status":"UNAVAILABLE"}}\n\n`, {
          headers: { 'content-type': 'text/event-stream' },
        }),
    );
    await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(records()[0]).toMatchObject({
      stream_outcome: 'upstream_error_event',
      error_code: 'unavailable',
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    });
  });

  it('keeps usage logged earlier when an error event names usage too', async () => {
    const h = harness(
      {},
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              // Two reads: the usage, then an event and an error event that names usage too.
              for (const chunk of [
                'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}\n\n',
                'data: {"choices":[]}\n\ndata: {"error":{"code":500,"usage":{}}}\n\n',
              ]) {
                controller.enqueue(new TextEncoder().encode(chunk));
              }
              controller.close();
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    );
    await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(records()[0]).toMatchObject({
      stream_outcome: 'upstream_error_event',
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    });
  });

  it('logs a stream the client abandons', async () => {
    const h = harness(
      {},
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('data: {"choices":[]}\n\n'));
            },
          }),
        ),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    const reader = response.body?.getReader();
    await reader?.read();
    await reader?.cancel();
    expect(records()[0]).toMatchObject({ stream_outcome: 'client_cancelled' });
  });
});

describe('a token refresh that fails while the old token serves', () => {
  it('is a warning in the log, and the request is served with the old token', async () => {
    let now = Date.UTC(2026, 10, 30, 12);
    let exchanges = 0;
    const h = harness(
      {},
      undefined,
      () =>
        ++exchanges === 1
          ? jsonResponse({ access_token: GOOGLE_TOKEN, expires_in: 3599 })
          : jsonResponse(
              { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
              400,
            ),
      { now: () => now },
    );
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    now += 56 * 60_000;
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    await waitUntil(() => logLines().some((line) => line.includes('token_refresh_failed')));
    const warning = records().find((record) => record.event === 'token_refresh_failed');
    expect(warning).toMatchObject({ level: 'warn' });
    expect(String(warning?.message)).toContain('Invalid JWT Signature.');
    expect(h.vertexCalls().map((call) => call.headers.get('authorization'))).toEqual([
      `Bearer ${GOOGLE_TOKEN}`,
      `Bearer ${GOOGLE_TOKEN}`,
    ]);
    expectNoSecrets();
  });
});

describe("the runtime's ExecutionContext keeps a refresh behind the request alive", () => {
  const APP = 'https://app.example.com';
  const VERTEX_PATH =
    '/v1/projects/p-1234/locations/us-central1/endpoints/openapi/chat/completions';
  const cases: [
    string,
    Record<string, string>,
    (app: GatewayApp, ctx: ExecutionContext) => Response | Promise<Response>,
  ][] = [
    [
      'the chat route',
      {},
      (app, ctx) => app.fetch(chatRequest('/v1/chat/completions'), undefined, ctx),
    ],
    [
      'the chat route, through CORS',
      { CORS_ORIGINS: APP },
      (app, ctx) => app.fetch(chatRequest('/v1/chat/completions', { origin: APP }), undefined, ctx),
    ],
    ['the Vertex route', {}, (app, ctx) => app.fetch(chatRequest(VERTEX_PATH), undefined, ctx)],
    [
      'the gateway mounted in a host app',
      {},
      (app, ctx) => {
        const host = new Hono();
        host.route('/ai', app);
        return host.fetch(chatRequest('/ai/v1/chat/completions'), undefined, ctx);
      },
    ],
    [
      'self-signed JWTs',
      { GOOGLE_AUTH_MODE: 'self-signed' },
      (app, ctx) => app.fetch(chatRequest('/v1/chat/completions'), undefined, ctx),
    ],
  ];

  function chatRequest(path: string, headers: Record<string, string> = {}) {
    return new Request(`http://gateway${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, ...headers },
      body: BODY,
    });
  }

  it.each(cases)('on %s', async (_name, env, send) => {
    let now = Date.UTC(2026, 10, 30, 12);
    const h = harness({ VERTEX_PROJECT: 'p-1234', ...env }, undefined, undefined, {
      now: () => now,
    });
    const kept: Promise<unknown>[] = [];
    const ctx = {
      waitUntil: (work: Promise<unknown>) => void kept.push(work),
      passThroughOnException() {},
      props: {},
    };
    expect((await send(h.app, ctx)).status).toBe(200);
    kept.length = 0;
    now += 56 * 60_000;
    expect((await send(h.app, ctx)).status).toBe(200);
    expect(kept).toHaveLength(1);
  });
});

describe('a client that leaves before the answer', () => {
  function request(signal: AbortSignal) {
    return new Request('http://gateway/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      body: BODY,
      signal,
    });
  }

  it('is logged as client_cancelled (499), not as Vertex unreachable, while Vertex is silent', async () => {
    const client = new AbortController();
    let vertexCalled = false;
    const silentVertex = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input).includes('oauth2'))
        return jsonResponse({ access_token: GOOGLE_TOKEN, expires_in: 3599 });
      vertexCalled = true;
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () =>
          reject(new DOMException('aborted', 'AbortError')),
        );
      });
    }) as typeof fetch;
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const h = harness({}, undefined, undefined, { fetch: silentVertex });
      const pending = h.app.request(request(client.signal));
      await waitUntil(() => vertexCalled);
      client.abort();
      expect((await pending).status).toBe(499);
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
    expect(records()[0]).toMatchObject({
      status: 499,
      error_code: 'client_cancelled',
      attempts: 1,
    });
  });

  it('costs no Vertex call when it leaves while the token is fetched', async () => {
    const client = new AbortController();
    const h = harness({}, undefined, () => {
      client.abort();
      return jsonResponse({ access_token: GOOGLE_TOKEN, expires_in: 3599 });
    });
    expect((await h.app.request(request(client.signal))).status).toBe(499);
    expect(h.vertexCalls()).toHaveLength(0);
    expect(records()[0]).toMatchObject({
      status: 499,
      error_code: 'client_cancelled',
      attempts: 0,
    });
  });

  it('is client_cancelled, not a token failure, when the exchange fails after it left', async () => {
    const client = new AbortController();
    const h = harness({}, undefined, () => {
      client.abort();
      return jsonResponse({ error: 'temporarily_unavailable' }, 503);
    });
    expect((await h.app.request(request(client.signal))).status).toBe(499);
    expect(h.vertexCalls()).toHaveLength(0);
    expect(records()[0]).toMatchObject({ status: 499, error_code: 'client_cancelled' });
  });

  it("keeps Vertex's own error when it answered as the client left", async () => {
    const client = new AbortController();
    const h = harness({}, () => {
      client.abort();
      return jsonResponse(
        { error: { code: 400, message: 'bad', status: 'INVALID_ARGUMENT' } },
        400,
      );
    });
    expect((await h.app.request(request(client.signal))).status).toBe(400);
    expect(records()[0]).toMatchObject({ status: 400, error_code: 'invalid_argument' });
  });

  it("is logged as client_cancelled while a retry waits, with Vertex's status beside it", async () => {
    const client = new AbortController();
    let waiting = false;
    const h = harness(
      {},
      () => jsonResponse({ error: { code: 503, message: 'busy', status: 'UNAVAILABLE' } }, 503),
      undefined,
      {
        sleep: (_ms, signal) =>
          new Promise<void>((resolve) => {
            waiting = true;
            signal.addEventListener('abort', () => resolve());
          }),
      },
    );
    const pending = h.app.request(request(client.signal));
    await waitUntil(() => waiting);
    client.abort();
    expect((await pending).status).toBe(499);
    expect(h.vertexCalls()).toHaveLength(1);
    expect(records()[0]).toMatchObject({
      status: 499,
      error_code: 'client_cancelled',
      upstream_status: 503,
    });
  });
});

describe('x-request-id and server-timing', () => {
  it("accepts the caller's request id and echoes it", async () => {
    const h = harness();
    const response = await post(h, '/v1/chat/completions', BODY, { 'x-request-id': 'trace-42.a' });
    expect(response.headers.get('x-request-id')).toBe('trace-42.a');
    expect(records()[0]?.request_id).toBe('trace-42.a');
  });

  it.each(['has spaces in it', 'x'.repeat(129), 'quote"d', ''])(
    'replaces an unusable caller id (%s) with its own',
    async (id) => {
      const h = harness();
      const response = await post(h, '/v1/chat/completions', BODY, { 'x-request-id': id });
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    },
  );

  it('makes an id for every answer, errors and health checks included', async () => {
    const h = harness();
    const ids = new Set<string | null>();
    for (const response of [
      await h.app.request('/healthz'),
      await h.app.request('/nope'),
      await post(h, '/v1/chat/completions', '{'),
    ]) {
      ids.add(response.headers.get('x-request-id'));
    }
    expect(ids.size).toBe(3);
    expect(ids.has(null)).toBe(false);
  });

  it('reports gateway and upstream time in server-timing', async () => {
    const h = harness();
    const response = await post(h, '/v1/chat/completions', BODY);
    expect(response.headers.get('server-timing')).toMatch(
      /^gateway;dur=\d+(\.\d+)?, upstream;dur=\d+(\.\d+)?$/,
    );
    const refused = await post(h, '/v1/chat/completions', BODY, { authorization: 'Bearer x' });
    expect(refused.headers.get('server-timing')).toMatch(/^gateway;dur=\d+(\.\d+)?$/);
  });
});

describe('usageOfCompletion', () => {
  it('reads the last usage object, skipping braces inside strings', () => {
    const json =
      '{"choices":[{"message":{"content":"a \\"usage\\": {\\"x\\"} }"}}],"usage": {"prompt_tokens":5,"completion_tokens":6,"total_tokens":11,"extra_properties":{"k":"}"}}}';
    expect(usageOfCompletion(new TextEncoder().encode(json))).toEqual({
      prompt_tokens: 5,
      completion_tokens: 6,
      total_tokens: 11,
    });
  });

  it.each(['{"choices":[]}', '{"usage":null}', '{"usage":{"prompt_tokens":"x"}}', '{"usage":{'])(
    'gives nothing for %s',
    (json) => {
      expect(usageOfCompletion(new TextEncoder().encode(json))).toBeUndefined();
    },
  );
});
