import { describe, expect, it, vi } from 'vitest';
import { createGateway } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { parseRetryAfterMs } from '../../src/vertex/retry-policy.ts';
import { waitUntil } from '../support/wait-until.ts';
import {
  CHAT_BODY,
  COMPLETION,
  expectOpenAIError,
  GATEWAY_KEY,
  googleError,
  harness,
  post,
} from './gateway-harness.ts';
import { GOOGLE_TOKEN_URI, jsonResponse, keyFileJson, tokenResponse } from './helpers.ts';

const STREAM_BODY =
  '{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}';
const sse = (...chunks: string[]) =>
  new Response(
    new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    }),
    { headers: { 'content-type': 'text/event-stream' } },
  );
const event = (content: string) =>
  `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${content}"}}]}\n\n`;

/** The parsed `data:` payloads of an SSE text, `[DONE]` left as a string. */
function dataEvents(text: string): unknown[] {
  return text
    .split(/\r\n\r\n|\n\n/)
    .filter((block) => block.startsWith('data:'))
    .map((block) => block.slice(5).trim())
    .map((data) => (data === '[DONE]' ? data : JSON.parse(data)));
}

describe('retries', () => {
  it.each([429, 500, 502, 503, 504])('retries HTTP %i with backoff and jitter', async (status) => {
    const h = harness({}, () =>
      h.vertexCalls().length <= 2 ? googleError(status, 'UNAVAILABLE') : jsonResponse(COMPLETION),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(COMPLETION);
    expect(h.vertexCalls()).toHaveLength(3);
    // Full jitter with random() = 0.5: half of 250 ms, then half of 500 ms.
    expect(h.delays).toEqual([125, 250]);
    // Every attempt carried the same body and the same cached token.
    expect(new Set(h.vertexCalls().map((call) => call.body)).size).toBe(1);
    expect(h.tokenCalls()).toHaveLength(1);
  });

  it('retries a network failure', async () => {
    const h = harness({}, () => {
      if (h.vertexCalls().length === 1) throw new TypeError('fetch failed');
      return jsonResponse(COMPLETION);
    });
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.vertexCalls()).toHaveLength(2);
  });

  it('honours Retry-After in seconds', async () => {
    const h = harness({}, () =>
      h.vertexCalls().length === 1
        ? jsonResponse({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } }, 429, {
            'retry-after': '2',
          })
        : jsonResponse(COMPLETION),
    );
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.delays).toEqual([2000]);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const h = harness({}, () =>
      h.vertexCalls().length === 1
        ? jsonResponse({ error: { code: 503, status: 'UNAVAILABLE' } }, 503, {
            'retry-after': new Date(Date.now() + 4000).toUTCString(),
          })
        : jsonResponse(COMPLETION),
    );
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.delays).toHaveLength(1);
    // HTTP dates have one-second resolution.
    expect(h.delays[0]).toBeGreaterThan(2500);
    expect(h.delays[0]).toBeLessThanOrEqual(4000);
  });

  it.each(['1.5', '-1', 'soon'])(
    'backs off as usual when Retry-After is neither seconds nor an HTTP date (%s)',
    async (retryAfter) => {
      const h = harness({}, () =>
        h.vertexCalls().length === 1
          ? jsonResponse({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } }, 429, {
              'retry-after': retryAfter,
            })
          : jsonResponse(COMPLETION),
      );
      expect((await post(h, '/v1/chat/completions')).status).toBe(200);
      expect(h.delays).toEqual([125]);
    },
  );

  it('reads all three HTTP-date forms of RFC 9110', () => {
    const now = () => Date.UTC(1994, 10, 6, 8, 49, 30);
    for (const date of [
      'Sun, 06 Nov 1994 08:49:37 GMT',
      'Sunday, 06-Nov-94 08:49:37 GMT',
      'Sun Nov  6 08:49:37 1994',
    ]) {
      expect(parseRetryAfterMs(date, now)).toBe(7000);
    }
  });

  it('gives the last error to the client once retries run out, 429 staying 429', async () => {
    const h = harness({}, () =>
      jsonResponse(
        { error: { code: 429, message: 'Quota exceeded.', status: 'RESOURCE_EXHAUSTED' } },
        429,
        { 'retry-after': '1' },
      ),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.headers.get('retry-after')).toBe('1');
    const error = await expectOpenAIError(response, 429, 'rate_limit_error', 'resource_exhausted');
    expect(error.message).toBe('Quota exceeded.');
    expect(h.vertexCalls()).toHaveLength(3);
    expect(h.delays).toEqual([1000, 1000]);
  });

  it('makes at most UPSTREAM_MAX_RETRIES retries', async () => {
    const none = harness({ UPSTREAM_MAX_RETRIES: '0' }, () => googleError(503, 'UNAVAILABLE'));
    await expectOpenAIError(await post(none, '/v1/chat/completions'), 503, 'api_error');
    expect(none.vertexCalls()).toHaveLength(1);
    const five = harness({ UPSTREAM_MAX_RETRIES: '5' }, () => googleError(500, 'INTERNAL'));
    await expectOpenAIError(await post(five, '/v1/chat/completions'), 500, 'api_error');
    expect(five.vertexCalls()).toHaveLength(6);
    expect(five.delays).toEqual([125, 250, 500, 1000, 2000]);
  });

  it('does not wait past the retry budget: a long Retry-After goes back to the client', async () => {
    const h = harness({}, () =>
      jsonResponse({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } }, 429, {
        'retry-after': '120',
      }),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('120');
    expect(h.vertexCalls()).toHaveLength(1);
    expect(h.delays).toEqual([]);
  });

  it.each([400, 403, 404])('does not retry HTTP %i', async (status) => {
    const h = harness({}, () => googleError(status, 'INVALID_ARGUMENT'));
    expect((await post(h, '/v1/chat/completions')).status).toBe(status);
    expect(h.vertexCalls()).toHaveLength(1);
  });

  it('retries a stream before committing it, so the client sees only the good one', async () => {
    const h = harness({}, () =>
      h.vertexCalls().length === 1
        ? googleError(503, 'UNAVAILABLE')
        : sse(event('Hel'), event('lo'), 'data: [DONE]\n\n'),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(`${event('Hel')}${event('lo')}data: [DONE]\n\n`);
    expect(h.vertexCalls()).toHaveLength(2);
  });

  it('refreshes the token once on a 401 and keeps the new one cached', async () => {
    const h = harness(
      {},
      (call) =>
        call.headers.get('authorization') === 'Bearer ya29.first'
          ? googleError(401, 'UNAUTHENTICATED')
          : jsonResponse(COMPLETION),
      () => tokenResponse(h.tokenCalls().length === 1 ? 'ya29.first' : 'ya29.second'),
    );
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.tokenCalls()).toHaveLength(2);
    expect(h.vertexCalls().map((call) => call.headers.get('authorization'))).toEqual([
      'Bearer ya29.first',
      'Bearer ya29.second',
      'Bearer ya29.second',
    ]);
  });
});

describe('timeouts', () => {
  /** A Vertex that never answers until the request is aborted. */
  function silentVertex() {
    let aborted = 0;
    let called = 0;
    const silentFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input) === GOOGLE_TOKEN_URI) return tokenResponse('ya29.t');
      called++;
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => {
          aborted++;
          reject(new DOMException('aborted', 'AbortError'));
        });
      });
    }) as typeof fetch;
    return { fetch: silentFetch, aborted: () => aborted, called: () => called };
  }

  it('answers 504 upstream_timeout when Vertex sends no headers within UPSTREAM_TIMEOUT_MS', async () => {
    const vertex = silentVertex();
    const app = createGateway(
      parseConfig({
        GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
        GATEWAY_API_KEYS: GATEWAY_KEY,
        UPSTREAM_TIMEOUT_MS: '50',
      }),
      { fetch: vertex.fetch },
    );
    // Fake timers: the deadline is checked to the millisecond, whatever the machine's load.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const pending = app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${GATEWAY_KEY}` },
        body: CHAT_BODY,
      });
      await waitUntil(() => vertex.called() === 1);
      await vi.advanceTimersByTimeAsync(49);
      expect(vertex.aborted()).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      const response = await pending;
      const error = await expectOpenAIError(response, 504, 'api_error', 'upstream_timeout');
      expect(error.message).toContain('UPSTREAM_TIMEOUT_MS');
      // The hung request was cancelled, and a timeout is not retried.
      expect(vertex.aborted()).toBe(1);
      expect(vertex.called()).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not wait on an error body that stalls: the status is answered within the deadline', async () => {
    const stallingFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input) === GOOGLE_TOKEN_URI) return tokenResponse('ya29.t');
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"error":{"code":503,'));
          init?.signal?.addEventListener('abort', () => controller.error(init.signal?.reason));
        },
      });
      return new Response(body, { status: 503, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const app = createGateway(
      parseConfig({
        GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
        GATEWAY_API_KEYS: GATEWAY_KEY,
        UPSTREAM_TIMEOUT_MS: '50',
        UPSTREAM_MAX_RETRIES: '0',
      }),
      { fetch: stallingFetch },
    );
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      body: CHAT_BODY,
    });
    const error = await expectOpenAIError(response, 503, 'api_error', 'http_503');
    expect(error.message).toBe('Vertex AI answered HTTP 503 without an error message.');
  });

  it('reads at most 64 KiB of an error body, and no more of it', async () => {
    let pulled = 0;
    const h = harness({ UPSTREAM_MAX_RETRIES: '0' }, () => {
      const piece = new TextEncoder().encode(' '.repeat(16 * 1024));
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            pulled++;
            controller.enqueue(piece.slice());
          },
        }),
        { status: 500 },
      );
    });
    const response = await post(h, '/v1/chat/completions');
    await expectOpenAIError(response, 500, 'api_error', 'http_500');
    expect(pulled).toBeLessThanOrEqual(6);
  });

  it('ends a stream that goes silent past STREAM_IDLE_TIMEOUT_MS with an error event', async () => {
    let cancelled = false;
    const h = harness(
      { STREAM_IDLE_TIMEOUT_MS: '50' },
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(event('partial')));
            },
            cancel() {
              cancelled = true;
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
    );
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let text = '';
    try {
      const response = await post(h, '/v1/chat/completions', STREAM_BODY);
      expect(response.status).toBe(200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      text += decoder.decode((await reader.read()).value);
      await vi.advanceTimersByTimeAsync(49);
      expect(cancelled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(cancelled).toBe(true);
      for (let part = await reader.read(); !part.done; part = await reader.read()) {
        text += decoder.decode(part.value);
      }
    } finally {
      vi.useRealTimers();
    }
    const events = dataEvents(text);
    expect(events).toHaveLength(2);
    expect(events[1]).toEqual({
      error: {
        message: expect.stringContaining('STREAM_IDLE_TIMEOUT_MS'),
        type: 'api_error',
        param: null,
        code: 'stream_idle_timeout',
      },
    });
  });

  it('keeps a slow but steady stream alive past the idle timeout in total', async () => {
    const h = harness(
      { STREAM_IDLE_TIMEOUT_MS: '200' },
      () =>
        new Response(
          new ReadableStream({
            async start(controller) {
              for (let i = 0; i < 6; i++) {
                controller.enqueue(new TextEncoder().encode(event(`part${i}`)));
                await new Promise((resolve) => setTimeout(resolve, 60));
              }
              controller.close();
            },
          }),
        ),
    );
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(dataEvents(text)).toHaveLength(6);
    expect(text).not.toContain('error');
  });
});

describe('broken streams', () => {
  it('turns an upstream stream that breaks off into an error event and a clean end', async () => {
    const h = harness(
      {},
      () =>
        new Response(
          new ReadableStream({
            pulls: 0,
            pull(controller) {
              // The first read gets a chunk; the next finds the connection gone.
              if (this.pulls++ === 0) controller.enqueue(new TextEncoder().encode(event('Hel')));
              else controller.error(new TypeError('connection reset'));
            },
          } as UnderlyingDefaultSource<Uint8Array> & { pulls: number }),
        ),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    const text = await response.text();
    expect(text.startsWith(event('Hel'))).toBe(true);
    expect(dataEvents(text)[1]).toEqual({
      error: {
        message: 'The Vertex AI stream broke off before the answer was complete.',
        type: 'api_error',
        param: null,
        code: 'upstream_stream_interrupted',
      },
    });
    expect(text).not.toContain('connection reset');
  });

  const googleEvent = (end: string) =>
    `data: {"error":{"code":429,"message":"Resource exhausted.","status":"RESOURCE_EXHAUSTED"}}${end}`;
  it.each([
    ['and forwards nothing after it', [googleEvent('\n\n'), event('never'), 'data: [DONE]\n\n']],
    ['that EOF cuts off before its blank line', [googleEvent('\n')]],
  ])("translates Google's in-stream error event %s", async (_, rest) => {
    const h = harness({}, () => sse(event('Hel'), ...rest));
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(dataEvents(text)).toEqual([
      JSON.parse(event('Hel').slice(6)),
      {
        error: {
          message: 'Resource exhausted.',
          type: 'rate_limit_error',
          param: null,
          code: 'resource_exhausted',
        },
      },
    ]);
  });

  it('finds an error event inside a chunk that carries other events too', async () => {
    const h = harness({}, () =>
      sse(`${event('a')}data: {"choices":[],"error":{"message":"Internal error"}}\r\n\r\n`),
    );
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(text.startsWith(event('a'))).toBe(true);
    expect(dataEvents(text)[1]).toMatchObject({
      error: { message: 'Internal error', type: 'api_error', code: 'upstream_stream_error' },
    });
  });

  it('finds an error event that Vertex wraps in a one-element array', async () => {
    const h = harness({}, () =>
      sse(
        event('a'),
        'data: [{"error":{"code":503,"message":"Overloaded.","status":"UNAVAILABLE"}}]\n\n',
      ),
    );
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(dataEvents(text)).toEqual([
      JSON.parse(event('a').slice(6)),
      { error: { message: 'Overloaded.', type: 'api_error', param: null, code: 'unavailable' } },
    ]);
  });

  it.each([
    ['no line end', 'data: [DONE]', 'data: [DONE]\n\n'],
    ['LF', 'data: [DONE]\n', 'data: [DONE]\n\n'],
    ['CRLF', 'data: [DONE]\r\n', 'data: [DONE]\r\n\r\n'],
  ])(
    'gives a last event cut off by EOF (%s) its blank line, so parsers deliver it',
    async (_, tail, ended) => {
      const h = harness({}, () => sse(event('a'), tail));
      const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
      expect(text).toBe(`${event('a')}${ended}`);
    },
  );

  it('passes content that merely mentions "error" untouched', async () => {
    const chunks = [
      event('an \\"error\\" here'),
      'data: {"usage":{"error":1}}\n\n',
      'data: [DONE]\n\n',
    ];
    const h = harness({}, () => sse(...chunks));
    expect(await (await post(h, '/v1/chat/completions', STREAM_BODY)).text()).toBe(chunks.join(''));
  });

  it('relays events split across chunks, and CRLF events, byte for byte', async () => {
    const whole = `${event('one')}${event('two').replace(/\n/g, '\r\n')}data: [DONE]\n\n`;
    const pieces = [whole.slice(0, 7), whole.slice(7, 90), whole.slice(90, 91), whole.slice(91)];
    const h = harness({}, () => sse(...pieces));
    expect(await (await post(h, '/v1/chat/completions', STREAM_BODY)).text()).toBe(whole);
  });

  it.each([
    [
      "a JSON error document: Google's own status and message",
      () =>
        jsonResponse({
          error: { code: 429, message: 'Quota exceeded.', status: 'RESOURCE_EXHAUSTED' },
        }),
      429,
      'resource_exhausted',
    ],
    ['a JSON completion', () => jsonResponse(COMPLETION), 502, 'upstream_not_a_stream'],
    ['no body', () => new Response(null, { status: 200 }), 502, 'upstream_not_a_stream'],
  ])(
    'refuses a 200 that answers a stream with %s, before committing',
    async (_name, answer, status, code) => {
      const h = harness({ UPSTREAM_MAX_RETRIES: '0' }, answer);
      const response = await post(h, '/v1/chat/completions', STREAM_BODY);
      expect(response.status).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    },
  );

  it("retries a 200 that carries Google's retryable error instead of a stream, as that error", async () => {
    let calls = 0;
    const h = harness({ UPSTREAM_MAX_RETRIES: '1' }, () =>
      ++calls === 1
        ? jsonResponse({ error: { code: 503, message: 'Busy.', status: 'UNAVAILABLE' } })
        : sse(event('Hello')),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(event('Hello'));
    expect(h.vertexCalls()).toHaveLength(2);
    // A JSON completion instead of a stream is no transient failure: not retried.
    const completion = harness({ UPSTREAM_MAX_RETRIES: '1' }, () => jsonResponse(COMPLETION));
    expect((await post(completion, '/v1/chat/completions', STREAM_BODY)).status).toBe(502);
    expect(completion.vertexCalls()).toHaveLength(1);
  });

  it("treats a 200 carrying Google's 401 instead of a stream as a 401: a fresh token, then 502", async () => {
    const refused = () =>
      jsonResponse({ error: { code: 401, message: 'Bad token.', status: 'UNAUTHENTICATED' } });
    const h = harness({}, refused);
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    await expectOpenAIError(response, 502, 'api_error', 'upstream_credentials_refused');
    expect(h.tokenCalls()).toHaveLength(2);
    expect(h.vertexCalls()).toHaveLength(2);
  });

  it('ends a stream that brings no event at all with an error, not as a finished answer', async () => {
    const h = harness({}, () => sse());
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(dataEvents(text)).toEqual([
      { error: expect.objectContaining({ code: 'upstream_stream_interrupted' }) },
    ]);
  });

  it('ends a stream whose last event EOF cuts inside its JSON with an error, dropping the piece', async () => {
    const cutOff = 'data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"wor';
    const h = harness({}, () => sse(event('Hello'), cutOff));
    const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
    expect(text.startsWith(event('Hello'))).toBe(true);
    expect(text).not.toContain('"wor');
    const last = dataEvents(text).at(-1) as { error: { code: string } };
    expect(last.error.code).toBe('upstream_stream_interrupted');
  });

  it.each([
    ['an empty data line', 'data: '],
    ['a bare data field', 'data'],
  ])('ends a stream whose cut-off last event is %s with an error', async (_name, tail) => {
    const h = harness({}, () => sse(event('Hello'), tail));
    const last = dataEvents(await (await post(h, '/v1/chat/completions', STREAM_BODY)).text()).at(
      -1,
    ) as { error: { code: string } };
    expect(last.error.code).toBe('upstream_stream_interrupted');
  });

  it.each([
    ['comments alone', () => sse(': keepalive\n\n', ': still here\n\n')],
    [
      'a JSON error with no content type',
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('{"error":{"code":503}}'));
              controller.close();
            },
          }),
        ),
    ],
  ])('does not take %s for an answer', async (_name, answer) => {
    const h = harness({}, answer);
    const last = dataEvents(await (await post(h, '/v1/chat/completions', STREAM_BODY)).text()).at(
      -1,
    ) as { error: { code: string } };
    expect(last.error.code).toBe('upstream_stream_interrupted');
  });

  describe('an event past the 4 MiB the guard holds', () => {
    const huge = `data: {"c":"${'x'.repeat(4.5 * 1024 * 1024)}"}`;

    it('still finds a blank line split across reads, and the error event after it', async () => {
      const error = 'data: {"error":{"code":503,"message":"busy","status":"UNAVAILABLE"}}';
      const h = harness({}, () => sse(`${huge}\n`, `\n${error}`, '\n\n'));
      const text = await (await post(h, '/v1/chat/completions', STREAM_BODY)).text();
      expect(text.startsWith(`${huge}\n\n`)).toBe(true);
      const events = dataEvents(text) as { error?: { code: string } }[];
      expect(events).toHaveLength(2);
      expect(events[1]?.error?.code).toBe('unavailable');
    });

    it('gets its blank line when EOF ends it', async () => {
      const h = harness({}, () => sse(huge));
      expect(await (await post(h, '/v1/chat/completions', STREAM_BODY)).text()).toBe(`${huge}\n\n`);
    });
  });

  it('does not blame Vertex for the silence of a client that is slow to read', async () => {
    const h = harness({ STREAM_IDLE_TIMEOUT_MS: '50' }, () =>
      sse(...Array.from({ length: 20 }, (_, i) => event(`w${i}`))),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    const reader = response.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    let text = new TextDecoder().decode((await reader.read()).value);
    // Four idle timeouts' worth of a client not reading; Vertex had everything ready.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text += new TextDecoder().decode(chunk.value);
    }
    expect(text).toBe(Array.from({ length: 20 }, (_, i) => event(`w${i}`)).join(''));
  });

  it('reassembles an event split over many reads, blank lines split across them too', async () => {
    const big = `data: {"choices":[{"delta":{"content":"${'x'.repeat(300_000)}"}}]}\r\n\r\n`;
    const whole = `${big}${event('after')}`;
    // Pieces of 1,000 bytes, then the blank line cut after each of its bytes.
    const pieces = whole.match(/[\s\S]{1,1000}/g) ?? [];
    const end = big.length;
    const splitEnd = [
      whole.slice(0, end - 3),
      whole.slice(end - 3, end - 2),
      whole.slice(end - 2, end - 1),
      whole.slice(end - 1),
    ];
    for (const chunks of [pieces, splitEnd]) {
      const h = harness({}, () => sse(...chunks));
      expect(await (await post(h, '/v1/chat/completions', STREAM_BODY)).text()).toBe(
        chunks.join(''),
      );
    }
  });

  it('cancels the upstream when the client cancels', async () => {
    let cancelled = false;
    const h = harness(
      {},
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(event('x')));
            },
            cancel() {
              cancelled = true;
            },
          }),
        ),
    );
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    const reader = response.body?.getReader();
    await reader?.read();
    await reader?.cancel();
    expect(cancelled).toBe(true);
  });
});

describe('request size', () => {
  it('refuses a declared Content-Length over MAX_REQUEST_BYTES with 413 before reading', async () => {
    const h = harness({ MAX_REQUEST_BYTES: '100' });
    const response = await post(h, '/v1/chat/completions', `${CHAT_BODY}${' '.repeat(200)}`);
    const error = await expectOpenAIError(
      response,
      413,
      'invalid_request_error',
      'request_too_large',
    );
    expect(error.message).toContain('MAX_REQUEST_BYTES');
    expect(h.calls).toHaveLength(0);
  });

  const chunkedRequest = (body: ReadableStream<Uint8Array>) =>
    new Request('http://gateway/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      body,
      duplex: 'half',
    } as RequestInit);
  const chunkedPost = (h: ReturnType<typeof harness>, body: ReadableStream<Uint8Array>) =>
    h.app.request(chunkedRequest(body));

  it('refuses a chunked body at the limit, reading the rest to its end so its sender sees the 413', async () => {
    const h = harness({ MAX_REQUEST_BYTES: '1000' });
    let pulled = 0;
    let ended = false;
    const over = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 50) {
          ended = true;
          return controller.close();
        }
        controller.enqueue(new TextEncoder().encode(' '.repeat(100)));
      },
    });
    const response = await chunkedPost(h, over);
    await expectOpenAIError(response, 413, 'invalid_request_error', 'request_too_large');
    expect(ended).toBe(true);
    expect(h.calls).toHaveLength(0);
  });

  it('gives up on an endless chunked body 32 MiB past the limit', async () => {
    const h = harness({ MAX_REQUEST_BYTES: '1000' });
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const response = await chunkedPost(h, endless);
    await expectOpenAIError(response, 413, 'invalid_request_error', 'request_too_large');
    // One read over the limit, then 32 MiB in 64 KiB reads (the stream may pull one ahead).
    expect(pulled).toBeGreaterThanOrEqual(1 + 512);
    expect(pulled).toBeLessThanOrEqual(1 + 512 + 2);
    expect(h.calls).toHaveLength(0);
  });

  it('answers 413 to a chunked body that breaks off past the limit, and lets go of it', async () => {
    const h = harness({ MAX_REQUEST_BYTES: '1000' });
    let sent = 0;
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 20) return controller.enqueue(new Uint8Array(100));
        controller.error(new TypeError('Network connection lost.'));
      },
    });
    const request = chunkedRequest(broken);
    const response = await h.app.request(request);
    await expectOpenAIError(response, 413, 'invalid_request_error', 'request_too_large');
    expect(request.body?.locked).toBe(false);
  });

  it('answers 413 after 10 s of a chunked body that stalls past the limit, and cancels it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const h = harness({ MAX_REQUEST_BYTES: '1000' });
      let sent = 0;
      let cancelled = false;
      const stalled = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 11) return controller.enqueue(new Uint8Array(100));
          return new Promise<void>(() => {});
        },
        cancel() {
          cancelled = true;
        },
      });
      const answer = chunkedPost(h, stalled);
      await vi.advanceTimersByTimeAsync(9_999);
      expect(cancelled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await expectOpenAIError(await answer, 413, 'invalid_request_error', 'request_too_large');
      expect(cancelled).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it.each([
    ['a declared length', { 'content-length': '1000' }],
    ['a chunked body', {}],
  ])('answers 400, not 500, when %s breaks off before its end', async (_name, headers) => {
    const h = harness();
    const logged: string[] = [];
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"model":"g'));
        controller.error(new TypeError('Network connection lost.'));
      },
    });
    const spy = vi.spyOn(console, 'error').mockImplementation((line) => void logged.push(line));
    const request = new Request('http://gateway/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, ...headers },
      body: broken,
      duplex: 'half',
    } as RequestInit);
    try {
      const response = await h.app.request(request);
      await expectOpenAIError(response, 400, 'invalid_request_error', 'request_body_incomplete');
    } finally {
      spy.mockRestore();
    }
    // The gateway's own reader lets go of the broken body (workerd would keep it otherwise).
    if (!('content-length' in headers)) expect(request.body?.locked).toBe(false);
    // The client's doing, not the gateway's: no error-level line.
    expect(logged).toEqual([]);
    expect(h.calls).toHaveLength(0);
  });

  it('answers 415 to a compressed body instead of calling it bad JSON', async () => {
    const h = harness();
    const gzipped = await new Response(
      new Blob([CHAT_BODY]).stream().pipeThrough(new CompressionStream('gzip')),
    ).arrayBuffer();
    const response = await h.app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-encoding': 'gzip' },
      body: gzipped,
    });
    const error = await expectOpenAIError(
      response,
      415,
      'invalid_request_error',
      'unsupported_content_encoding',
    );
    expect(error.message).toContain('Content-Encoding');
    expect(h.calls).toHaveLength(0);
    const identity = await post(h, '/v1/chat/completions', CHAT_BODY, {
      'content-encoding': 'identity',
    });
    expect(identity.status).toBe(200);
  });

  it('accepts a body of exactly MAX_REQUEST_BYTES', async () => {
    const h = harness({ MAX_REQUEST_BYTES: String(new TextEncoder().encode(CHAT_BODY).length) });
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
  });

  it('defaults to 20 MiB', async () => {
    const h = harness();
    const image = 'A'.repeat(20 * 1024 * 1024);
    const big = `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"${image}"}]}`;
    expect((await post(h, '/v1/chat/completions', big)).status).toBe(413);
    const fits = big.replace(image, image.slice(0, 19 * 1024 * 1024));
    expect((await post(h, '/v1/chat/completions', fits)).status).toBe(200);
  });
});

describe('region failover', () => {
  const host = (url: string) => new URL(url).host;

  it('tries the fallback locations in order on the default route, naming the one that served', async () => {
    const h = harness(
      { VERTEX_FALLBACK_LOCATIONS: 'europe-west4, us-east5', UPSTREAM_MAX_RETRIES: '1' },
      (call) =>
        call.url.includes('/locations/us-east5/')
          ? jsonResponse(COMPLETION)
          : googleError(429, 'RESOURCE_EXHAUSTED'),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-vertex-location')).toBe('us-east5');
    expect(h.vertexCalls().map((call) => host(call.url))).toEqual([
      'us-central1-aiplatform.googleapis.com',
      'us-central1-aiplatform.googleapis.com',
      'europe-west4-aiplatform.googleapis.com',
      'europe-west4-aiplatform.googleapis.com',
      'us-east5-aiplatform.googleapis.com',
    ]);
  });

  it('names the default location when it serves', async () => {
    const h = harness({ VERTEX_FALLBACK_LOCATIONS: 'europe-west4' });
    const response = await post(h, '/v1/chat/completions');
    expect(response.headers.get('x-vertex-location')).toBe('us-central1');
    expect(h.vertexCalls()).toHaveLength(1);
  });

  it('never fails over an explicit location path: data residency', async () => {
    const h = harness({ VERTEX_FALLBACK_LOCATIONS: 'us-east5', UPSTREAM_MAX_RETRIES: '0' }, () =>
      googleError(503, 'UNAVAILABLE'),
    );
    const response = await post(
      h,
      '/v1/projects/key-project-4242/locations/europe-west4/endpoints/openapi/chat/completions',
    );
    expect(response.status).toBe(503);
    expect(response.headers.get('x-vertex-location')).toBe('europe-west4');
    expect(h.vertexCalls()).toHaveLength(1);
  });

  it('does not fail over on a client error', async () => {
    const h = harness({ VERTEX_FALLBACK_LOCATIONS: 'us-east5' }, () =>
      googleError(400, 'INVALID_ARGUMENT'),
    );
    expect((await post(h, '/v1/chat/completions')).status).toBe(400);
    expect(h.vertexCalls()).toHaveLength(1);
  });

  it('returns the last location’s error when every location fails', async () => {
    const h = harness({ VERTEX_FALLBACK_LOCATIONS: 'us-east5', UPSTREAM_MAX_RETRIES: '0' }, () =>
      googleError(503, 'UNAVAILABLE'),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(503);
    expect(response.headers.get('x-vertex-location')).toBe('us-east5');
    expect(h.vertexCalls()).toHaveLength(2);
  });

  it('refuses a fallback list that is not locations', () => {
    expect(() => parseConfig({ VERTEX_FALLBACK_LOCATIONS: 'europe-west4,../evil' })).toThrow(
      /VERTEX_FALLBACK_LOCATIONS/,
    );
  });
});

describe('byte-stream bodies', () => {
  it('relays a fetch-style byte stream byte for byte, across reads that split events', async () => {
    const whole = `${event('x'.repeat(20_000))}${event('two')}data: [DONE]\n\n`;
    const bytes = new TextEncoder().encode(whole);
    const h = harness({}, () => {
      let offset = 0;
      return new Response(
        new ReadableStream({
          type: 'bytes',
          pull(controller) {
            if (offset >= bytes.length) {
              controller.close();
              // A byte source completes a pending BYOB read with zero bytes when it closes.
              return controller.byobRequest?.respond(0);
            }
            // Odd-sized pieces, so reads end mid-event and mid-line.
            controller.enqueue(bytes.slice(offset, offset + 7_777));
            offset += 7_777;
          },
        }),
      );
    });
    const response = await post(h, '/v1/chat/completions', STREAM_BODY);
    expect(await response.text()).toBe(whole);
  });
});
