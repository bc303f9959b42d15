import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  emulatorForFile,
  type RunningProcess,
  type Runtime,
  startGateway,
  waitForStats,
} from './processes.ts';

// Issue 3 from outside: the emulator's fault injection plays a misbehaving Google, and the
// official openai client (with its own retries off) shows what a user would see.

const CLIENT_KEY = 'e2e-resilience-key-0123456789';
const PROJECT = 'emulator-project';
const PINNED_PATH = `/v1/projects/${PROJECT}/locations/asia-northeast1/endpoints/openapi/chat/completions`;
const MESSAGES = [{ role: 'user' as const, content: 'Tell me about resilience.' }];

const shared = emulatorForFile({ projectId: PROJECT });

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('resilience on %s', (runtime) => {
  let gateway: RunningProcess;
  const openai = () =>
    new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  const fault = (body: Record<string, unknown>) => shared.emulator.admin('faults', { body });
  const chatRequests = async () => (await shared.emulator.requests()).filter((r) => r.path !== '');
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${CLIENT_KEY}`,
        'content-type': 'application/json',
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  /** Streams a completion, returning the text received and the error that ended it, if any. */
  async function streamUntilError(emulatorDirectives: Record<string, unknown>) {
    // An unknown field, forwarded untouched, steers the emulator.
    const params = { model: 'gemini-2.5-flash', messages: MESSAGES, stream: true as const };
    const stream = await openai().chat.completions.create({
      ...params,
      ...{ emulator: emulatorDirectives },
    });
    let text = '';
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    } catch (error) {
      return { text, error };
    }
    return { text, error: null };
  }

  beforeAll(async () => {
    gateway = await startGateway(
      runtime,
      shared.gatewayEnv(CLIENT_KEY, {
        VERTEX_FALLBACK_LOCATIONS: 'europe-west4',
        UPSTREAM_MAX_RETRIES: '1',
        UPSTREAM_TIMEOUT_MS: '1500',
        STREAM_IDLE_TIMEOUT_MS: '1500',
        MAX_REQUEST_BYTES: '65536',
      }),
    );
  });
  afterAll(async () => {
    await gateway?.stop();
  });
  beforeEach(async () => {
    await shared.emulator.admin('reset', { body: {} });
  });

  it('retries a 503 and answers from the retry', async () => {
    await fault({ target: 'chat', status: 503, times: 1 });
    const completion = await openai().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: MESSAGES,
    });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    expect((await chatRequests()).map((r) => r.status)).toEqual([503, 200]);
  });

  it('gives up after UPSTREAM_MAX_RETRIES with a 429 rate_limit_error, honouring Retry-After', async () => {
    await fault({ target: 'chat', status: 429, retryAfter: 1, times: 2 });
    const started = Date.now();
    const response = await post(PINNED_PATH, { model: 'gemini-2.5-flash', messages: MESSAGES });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('1');
    const body = (await response.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'rate_limit_error', code: 'resource_exhausted' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(await chatRequests()).toHaveLength(2);
  });

  it('raises RateLimitError in the openai SDK once retries are spent', async () => {
    await fault({ target: 'chat', status: 429, times: 4 });
    const error = await openai()
      .chat.completions.create({ model: 'gemini-2.5-flash', messages: MESSAGES })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    // Two attempts in the default location, two in the fallback.
    expect((await chatRequests()).map((r) => r.params.location)).toEqual([
      'us-central1',
      'us-central1',
      'europe-west4',
      'europe-west4',
    ]);
  });

  it('fails over to the next location on the default route and says which one served', async () => {
    await fault({ target: 'chat', status: 503, times: 2 });
    const { data, response } = await openai()
      .chat.completions.create({ model: 'gemini-2.5-flash', messages: MESSAGES })
      .withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(response.headers.get('x-vertex-location')).toBe('europe-west4');
    expect((await chatRequests()).map((r) => r.params.location)).toEqual([
      'us-central1',
      'us-central1',
      'europe-west4',
    ]);
  });

  it('never fails over a path that names its location', async () => {
    await fault({ target: 'chat', status: 503, times: 3 });
    const response = await post(PINNED_PATH, { model: 'gemini-2.5-flash', messages: MESSAGES });
    expect(response.status).toBe(503);
    expect(response.headers.get('x-vertex-location')).toBe('asia-northeast1');
    expect((await chatRequests()).map((r) => r.params.location)).toEqual([
      'asia-northeast1',
      'asia-northeast1',
    ]);
  });

  it('answers 504 when Vertex sends no headers within UPSTREAM_TIMEOUT_MS', async () => {
    const response = await post('/v1/chat/completions', {
      model: 'gemini-2.5-flash',
      messages: MESSAGES,
      emulator: { headersDelayMs: 4000 },
    });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'upstream_timeout',
    );
  });

  it('ends a stream that goes silent past STREAM_IDLE_TIMEOUT_MS with an error the SDK raises', async () => {
    const { text, error } = await streamUntilError({ chunks: 4, chunkDelayMs: 4000 });
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('stream_idle_timeout');
    expect(text).not.toBe('');
    // The silent upstream was hung up on, not left running.
    const stats = await waitForStats(shared.emulator, (s) => s.openStreams === 0);
    expect(stats.openStreams).toBe(0);
    expect(stats.completedStreams).toBe(0);
  });

  it('turns a stream that breaks off into an error the SDK raises, never a silent end', async () => {
    const { text, error } = await streamUntilError({
      chunks: 6,
      chunkDelayMs: 100,
      abortAfterChunks: 3,
    });
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe(
      'upstream_stream_interrupted',
    );
    expect(text).not.toBe('');
  });

  it('turns a stream that ends cleanly inside an event into an error, and drops the cut piece', async () => {
    const directives = { reply: 'one two three four', chunks: 4, truncateAfterChunks: 2 };
    const { text, error } = await streamUntilError(directives);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe(
      'upstream_stream_interrupted',
    );
    expect(text).toBe('one two ');
    // On the wire: two whole events, then the error event; nothing of the half event.
    const raw = await (
      await post('/v1/chat/completions', {
        model: 'gemini-2.5-flash',
        messages: MESSAGES,
        stream: true,
        emulator: directives,
      })
    ).text();
    const events = raw.split('\n\n');
    expect(events.pop()).toBe('');
    expect(events).toHaveLength(3);
    for (const event of events) JSON.parse(event.slice('data: '.length));
    expect(JSON.parse((events[2] as string).slice('data: '.length)).error.code).toBe(
      'upstream_stream_interrupted',
    );
  });

  it('refuses a JSON answer to a stream request before committing to a stream', async () => {
    const created = openai().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: MESSAGES,
      stream: true,
      ...{ emulator: { streamAsJson: true } },
    });
    const error = await created.then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_not_a_stream');
  });

  it('retries a non-streamed answer whose body breaks off, so the client gets a whole one', async () => {
    await fault({ target: 'chat', cutBody: true });
    const completion = await openai().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: MESSAGES,
    });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    expect(await chatRequests()).toHaveLength(2);
  });

  it('answers 504 when a non-streamed answer stalls in its body past UPSTREAM_TIMEOUT_MS', async () => {
    const response = await post('/v1/chat/completions', {
      model: 'gemini-2.5-flash',
      messages: MESSAGES,
      emulator: { bodyStallMs: 4000 },
    });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'upstream_timeout',
    );
  });

  it("passes Google's in-stream error event on in OpenAI shape", async () => {
    const { error } = await streamUntilError({ chunks: 6, errorEventAfterChunks: 2 });
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.code).toBe('internal');
    expect(apiError.message).toContain('Internal error encountered.');
  });

  it('relays CRLF-framed events byte for byte, and still finds an error event among them', async () => {
    const reply = 'One, two, three, four.';
    const raw = await (
      await post('/v1/chat/completions', {
        model: 'gemini-2.5-flash',
        messages: MESSAGES,
        stream: true,
        emulator: { reply, chunks: 4, lineEnding: 'crlf' },
      })
    ).text();
    const events = raw.split('\r\n\r\n');
    expect(events.pop()).toBe('');
    expect(events).toHaveLength(5);
    for (const event of events) expect(event).toMatch(/^data: [^\r\n]+$/);
    const content = events
      .slice(0, -1)
      .map((event) => JSON.parse(event.slice(6)).choices[0].delta.content)
      .join('');
    expect(content).toBe(reply);

    const { error } = await streamUntilError({
      chunks: 6,
      errorEventAfterChunks: 2,
      lineEnding: 'crlf',
    });
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('internal');
  });

  // The larger body is still being sent when the answer goes out.
  it.each([70_000, 3_000_000])(
    'refuses a %i-byte body over MAX_REQUEST_BYTES with 413, declared or chunked, forwarding nothing',
    async (size) => {
      const big = JSON.stringify({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: 'x'.repeat(size) }],
      });
      const declared = await post('/v1/chat/completions', big);
      expect(declared.status).toBe(413);
      expect(((await declared.json()) as { error: { code: string } }).error.code).toBe(
        'request_too_large',
      );
      const bytes = new TextEncoder().encode(big);
      const chunked = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 8192)
              controller.enqueue(bytes.slice(i, i + 8192));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      expect(chunked.status).toBe(413);
      expect(await chatRequests()).toHaveLength(0);
      // Still serving afterwards.
      expect((await post('/v1/chat/completions', { model: 'm', messages: MESSAGES })).status).toBe(
        200,
      );
    },
  );

  it('refreshes a token near its expiry behind the requests, and keeps the refresh alive after them', async () => {
    const stats = () => shared.emulator.admin<{ tokenExchanges: number }>('stats');
    const bearers = async () =>
      (await chatRequests()).map((request) => request.headers.authorization);
    const ask = async () =>
      expect((await post('/v1/chat/completions', { model: 'm', messages: MESSAGES })).status).toBe(
        200,
      );
    // A 12 s token: refreshed from 6 s on, sent until 9 s.
    await shared.emulator.admin('config', { body: { tokenTtlSeconds: 12 } });
    await shared.emulator.admin('expire-tokens', { body: {} });
    await ask();
    const first = (await bearers()).at(-1);
    expect((await stats()).tokenExchanges).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 6200));
    // The refresh answers 0.7 s late, long after the request that started it has ended: on
    // Workers only its waitUntil keeps it alive.
    await fault({ target: 'token', headersDelayMs: 700, times: 1 });
    await ask();
    expect((await bearers()).at(-1)).toBe(first);
    await waitForStats(shared.emulator, (now) => now.tokenExchanges === 2);
    // The gateway stores the new token just after the emulator counts it; it is sent from then on.
    for (let i = 0; i < 10 && (await bearers()).at(-1) === first; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await ask();
    }
    expect((await bearers()).at(-1)).not.toBe(first);
    expect((await stats()).tokenExchanges).toBe(2);
  });

  it("reports a refused token exchange as 502 with Google's reason, then recovers", async () => {
    await shared.emulator.admin('expire-tokens', { body: {} });
    await fault({
      target: 'token',
      status: 400,
      body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
    });
    const response = await post('/v1/chat/completions', { model: 'm', messages: MESSAGES });
    expect(response.status).toBe(502);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('token_exchange_failed');
    expect(error.message).toContain('token');
    expect(error.message).toContain('Invalid JWT Signature.');
    expect(error.message).not.toContain('PRIVATE KEY');
    // invalid_grant is permanent: tried once, not retried.
    expect((await shared.emulator.stats()).tokenExchangeFailures).toBe(1);
    // The endpoint is back: the next request gets a token and an answer.
    expect((await post('/v1/chat/completions', { model: 'm', messages: MESSAGES })).status).toBe(
      200,
    );
    expect((await shared.emulator.stats()).tokenExchanges).toBe(1);
  });

  it("answers 502 when Vertex refuses the gateway's fresh token too, never a 401 that blames the client", async () => {
    await fault({ target: 'chat', status: 401, times: 2 });
    const error = await openai()
      .chat.completions.create({ model: 'gemini-2.5-flash', messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe(
      'upstream_credentials_refused',
    );
    // The refused token was dropped and a fresh one tried, once.
    const bearers = (await chatRequests()).map((request) => request.headers.authorization);
    expect(bearers).toHaveLength(2);
    expect(bearers[1]).not.toBe(bearers[0]);
  });

  it('retries a token endpoint that is temporarily unavailable', async () => {
    await shared.emulator.admin('expire-tokens', { body: {} });
    await fault({ target: 'token', status: 503, times: 2 });
    const response = await post('/v1/chat/completions', { model: 'm', messages: MESSAGES });
    expect(response.status).toBe(200);
    const stats = await shared.emulator.stats();
    expect(stats.tokenExchangeFailures).toBe(2);
    expect(stats.tokenExchanges).toBe(1);
  });

  it('answers 503 when the token endpoint stays unavailable', async () => {
    await shared.emulator.admin('expire-tokens', { body: {} });
    await fault({ target: 'token', status: 503, times: 3 });
    const response = await post('/v1/chat/completions', { model: 'm', messages: MESSAGES });
    expect(response.status).toBe(503);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('token_exchange_failed');
    expect(error.message).toContain('access token');
  });

  it('answers 504 when the token endpoint stalls in its body past the exchange deadline', async () => {
    await shared.emulator.admin('expire-tokens', { body: {} });
    // The exchange's deadline is 10 s; the body would finish after 15.
    await fault({ target: 'token', bodyStallMs: 15_000 });
    const response = await post('/v1/chat/completions', { model: 'm', messages: MESSAGES });
    expect(response.status).toBe(504);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('token_exchange_failed');
    expect(error.message).toContain('did not answer in time');
    // Not retried, and nothing reached Vertex but, perhaps, the cached token it had expired.
    expect((await shared.emulator.stats()).tokenExchanges).toBe(1);
    for (const request of await chatRequests()) expect(request.status).toBe(401);
  }, 20_000);

  it('is still healthy after all of it', async () => {
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const completion = await openai().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: MESSAGES,
    });
    expect(completion.choices[0]?.message.content).toBeTruthy();
  });
});
