import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EmulatorStats } from '../../emulator/state.ts';
import {
  type EmulatorProcess,
  type RunningProcess,
  type Runtime,
  startEmulator,
  startGateway,
} from './processes.ts';
import { expectNoPieceOf, pemBody } from './secrets.ts';

// A new user's view: the gateway as a real process on each runtime, the emulator as Google, and
// the official openai client with only the base URL changed, as in Google's own samples.

const CLIENT_KEY = 'e2e-client-key-0123456789';
const PROJECT = 'emulator-project';
const SEED_BASE = `/v1beta1/projects/${PROJECT}/locations/us-central1/endpoints/openapi`;

let emulator: EmulatorProcess;
let serviceAccountKey: Record<string, string>;

beforeAll(async () => {
  emulator = await startEmulator();
  serviceAccountKey = await emulator.admin('service-accounts', { body: {} });
});
afterAll(async () => {
  await emulator?.stop();
});

/** Adds the emulator's directives: an unknown field, which the gateway must forward untouched. */
function steer<T extends object>(params: T, directives: Record<string, unknown>): T {
  return { ...params, emulator: directives };
}

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('the gateway on %s', (runtime) => {
  let gateway: RunningProcess;
  const stats = () => emulator.stats();
  /** Polls the emulator for up to two seconds: the bound the issue sets for a cancel to arrive. */
  async function waitForStats(done: (s: EmulatorStats) => boolean): Promise<EmulatorStats> {
    let current = await stats();
    for (let i = 0; i < 20 && !done(current); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      current = await stats();
    }
    return current;
  }
  const requests = () => emulator.requests();
  const client = (options: { base?: string; apiKey?: string } = {}) =>
    new OpenAI({
      baseURL: `${gateway.url}${options.base ?? '/v1'}`,
      apiKey: options.apiKey ?? CLIENT_KEY,
      maxRetries: 0,
    });

  beforeAll(async () => {
    gateway = await startGateway(runtime, {
      // Base64 on workerd (a dotenv file), raw JSON on Deno: both forms are accepted.
      GOOGLE_SERVICE_ACCOUNT_KEY:
        runtime === 'workerd'
          ? Buffer.from(JSON.stringify(serviceAccountKey)).toString('base64')
          : JSON.stringify(serviceAccountKey),
      GATEWAY_API_KEYS: `other-key, ${CLIENT_KEY}`,
      ALLOW_TOKEN_PASSTHROUGH: 'true',
      VERTEX_BASE_URL: emulator.url,
    });
  });
  afterAll(async () => {
    await gateway?.stop();
  });
  beforeEach(async () => {
    await emulator.admin('reset', { body: {} });
  });

  // First on purpose: the gateway process has not fetched a token yet.
  it('shares one token exchange among 40 concurrent cold requests', async () => {
    const openai = client();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        openai.chat.completions.create({
          model: 'gemini-2.5-flash',
          messages: [{ role: 'user', content: `question ${i}` }],
        }),
      ),
    );
    expect(answers.every((a) => a.object === 'chat.completion')).toBe(true);
    const after = await stats();
    expect(after.tokenExchanges).toBe(1);
    expect(after.chatRequests).toBe(40);
  });

  it("runs Google's text sample with only the host changed", async () => {
    const response = await client({ base: SEED_BASE }).chat.completions.create({
      model: 'google/gemini-1.5-flash-002',
      messages: [{ role: 'user', content: 'Why is the sky blue?' }],
    });
    expect(response.choices[0]?.message.content).toContain('Why is the sky blue?');
    const [recorded] = await requests();
    expect(recorded?.path).toBe(`${SEED_BASE}/chat/completions`);
    expect(recorded?.body.model).toBe('google/gemini-1.5-flash-002');
  });

  it("runs Google's image sample, with image_url as a string and as {url}", async () => {
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Describe the following image:' },
          {
            type: 'image_url',
            image_url: 'gs://cloud-samples-data/generative-ai/image/scones.jpg',
          },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        ],
      },
    ];
    const response = await client({ base: SEED_BASE }).chat.completions.create({
      model: 'google/gemini-1.5-flash-002',
      // Google's sample sends the bare-string form, which the SDK's types do not know.
      messages: messages as unknown as OpenAI.ChatCompletionMessageParam[],
    });
    expect(response.choices[0]?.message.content).toContain(
      'gs://cloud-samples-data/generative-ai/image/scones.jpg',
    );
    const [recorded] = await requests();
    expect(recorded?.body.messages).toEqual(messages);
  });

  it("streams Google's streaming sample chunk by chunk, with usage when asked", async () => {
    const stream = await client({ base: SEED_BASE }).chat.completions.create(
      steer(
        {
          model: 'google/gemini-1.5-flash-002',
          messages: [{ role: 'user', content: 'Why is the sky blue?' }],
          stream: true,
          stream_options: { include_usage: true },
        },
        { chunks: 5 },
      ),
    );
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(chunks.filter((c) => c.choices.length > 0).length).toBeGreaterThanOrEqual(5);
    expect(text).toContain('Why is the sky blue?');
    expect(chunks.at(-1)?.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('streams the image sample too', async () => {
    const stream = await client({ base: SEED_BASE }).chat.completions.create({
      model: 'google/gemini-1.5-flash-002',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe the following image:' },
            {
              type: 'image_url',
              image_url: 'gs://cloud-samples-data/generative-ai/image/scones.jpg',
            },
          ],
        },
      ] as unknown as OpenAI.ChatCompletionMessageParam[],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toContain('scones.jpg');
  });

  it('sends the first chunk on while the upstream is still streaming', async () => {
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      signal: controller.signal,
      method: 'POST',
      headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        emulator: { chunks: 8, firstChunkDelayMs: 0, chunkDelayMs: 400 },
      }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    if (!response.body) throw new Error('no body');
    const reader = response.body.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^data: \{/);
    // The upstream still has seconds of chunks to send: nothing waited for it to finish.
    expect((await stats()).openStreams).toBe(1);
    controller.abort();
    expect(await waitForStats((s) => s.openStreams === 0)).toMatchObject({
      openStreams: 0,
      cancelledStreams: 1,
    });
  });

  it('cancels the upstream within two seconds when the client disconnects', async () => {
    const controller = new AbortController();
    const stream = await client().chat.completions.create(
      steer(
        {
          model: 'gemini-2.5-flash',
          messages: [{ role: 'user', content: 'a long answer please' }],
          stream: true,
        },
        { chunks: 200, chunkDelayMs: 100 },
      ),
      { signal: controller.signal },
    );
    for await (const _chunk of stream) break;
    controller.abort();
    const after = await waitForStats((s) => s.cancelledStreams > 0);
    expect(after.cancelledStreams).toBe(1);
    expect(after.openStreams).toBe(0);
  });

  it('maps the default OpenAI route to the default project, v1 and the google/ prefix', async () => {
    await client().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const [recorded] = await requests();
    expect(recorded?.path).toBe(
      `/v1/projects/${PROJECT}/locations/us-central1/endpoints/openapi/chat/completions`,
    );
    expect(recorded?.body.model).toBe('google/gemini-2.5-flash');
  });

  it('forwards unknown fields, extra_body, tools and thought signatures unchanged', async () => {
    const body = {
      model: 'meta/llama-3.3-70b-instruct-maas',
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'weather', arguments: '{}' } },
          ],
          extra_content: { google: { thought_signature: 'c2lnbmF0dXJl' } },
        },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      ],
      tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }],
      extra_body: { google: { thinking_config: { thinking_budget: 1024 } } },
      some_future_field: { nested: [1, 2.5, 'x'] },
    };
    // A seed beyond float64 precision, a trailing zero and odd spacing: re-serialising the body
    // would change all three.
    const raw = JSON.stringify(body)
      .replace('2.5', '2.50')
      .replace(/}$/, ',  "seed" : 12345678901234567890 }');
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
      body: raw,
    });
    expect(response.status).toBe(200);
    const [recorded] = await requests();
    expect(recorded?.bodyText).toBe(raw);
  });

  it("returns Vertex's extra fields to the client unchanged", async () => {
    const answer = (await client().chat.completions.create(
      steer(
        { model: 'gemini-3-pro-preview', messages: [{ role: 'user', content: 'think first' }] },
        { thoughtSignature: 'dGhvdWdodC1zaWduYXR1cmU=' },
      ),
    )) as unknown as {
      choices: { message: { extra_content?: unknown } }[];
      usage: { extra_properties?: unknown };
    };
    expect(answer.choices[0]?.message.extra_content).toEqual({
      google: { thought_signature: 'dGhvdWdodC1zaWduYXR1cmU=' },
    });
    expect(answer.usage.extra_properties).toEqual({ google: { traffic_type: 'ON_DEMAND' } });
  });

  it('passes a safety block with no content on as the SDK expects, streamed or not', async () => {
    const blocked = { reply: '', finishReason: 'content_filter' };
    const params = {
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user' as const, content: 'x' }],
    };
    const answer = await client().chat.completions.create(steer(params, blocked));
    expect(answer.choices[0]?.finish_reason).toBe('content_filter');
    expect(answer.choices[0]?.message.content ?? null).toBeNull();
    const stream = await client().chat.completions.create({
      ...steer(params, blocked),
      stream: true,
    });
    const finishes: (string | null)[] = [];
    let text = '';
    for await (const chunk of stream) {
      finishes.push(chunk.choices[0]?.finish_reason ?? null);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(finishes).toEqual(['content_filter']);
    expect(text).toBe('');
  });

  it('sends Vertex only the Google bearer and content headers', async () => {
    await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${CLIENT_KEY}`,
        'content-type': 'application/json',
        cookie: 'session=secret-cookie',
        'x-goog-api-key': 'caller-google-key',
        'proxy-authorization': 'Basic abc',
        'x-forwarded-for': '203.0.113.9',
      },
      body: JSON.stringify({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    const [recorded] = await requests();
    const headers = recorded?.headers ?? {};
    expect(headers.authorization).toMatch(/^Bearer ya29\./);
    expect(JSON.stringify(headers)).not.toContain(CLIENT_KEY);
    for (const name of ['cookie', 'x-goog-api-key', 'proxy-authorization', 'x-forwarded-for']) {
      expect(headers[name], name).toBeUndefined();
    }
  });

  it("passes a caller's own Google token through, as in Google's samples", async () => {
    const { access_token } = await emulator.admin<{ access_token: string }>('access-tokens', {
      body: {},
    });
    const response = await client({
      base: SEED_BASE,
      apiKey: access_token,
    }).chat.completions.create({
      model: 'google/gemini-1.5-flash-002',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(response.choices).toHaveLength(1);
    const [recorded] = await requests();
    expect(recorded?.headers.authorization).toBe(`Bearer ${access_token}`);
    expect((await stats()).tokenExchanges).toBe(0);
  });

  it.each([
    [400, 'object', OpenAI.BadRequestError, 'invalid_request_error'],
    [400, 'array', OpenAI.BadRequestError, 'invalid_request_error'],
    [403, 'object', OpenAI.PermissionDeniedError, 'permission_error'],
    [404, 'array', OpenAI.NotFoundError, 'not_found_error'],
    [429, 'array', OpenAI.RateLimitError, 'rate_limit_error'],
    [500, 'object', OpenAI.InternalServerError, 'api_error'],
    [503, 'object', OpenAI.InternalServerError, 'api_error'],
  ] as const)(
    'raises the SDK error for Vertex %i (%s form)',
    async (status, errorShape, ErrorClass, type) => {
      const message = `Vertex says ${status} for this request.`;
      const call = client().chat.completions.create(
        steer(
          { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] },
          { status, errorShape, message },
        ),
      );
      const error = await call.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ErrorClass);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
      expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain(message);
      expect((error as InstanceType<typeof OpenAI.APIError>).type).toBe(type);
    },
  );

  it('answers client mistakes itself, in OpenAI shape, without calling Vertex', async () => {
    const wrongKey = await client({ apiKey: 'wrong' })
      .chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    // Passthrough is on here, so an unknown bearer is Google's to reject: it comes back as 401.
    expect(wrongKey).toBeInstanceOf(OpenAI.AuthenticationError);

    const raw = (body: string) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
        body,
      });
    const cases: [string, string | null][] = [
      ['{not json', null],
      ['[1,2]', null],
      ['{"messages":[{"role":"user","content":"hi"}]}', 'model'],
      ['{"model":"gemini-2.5-flash"}', 'messages'],
      [
        '{"model":"gemini-2.5-flash","messages":[{"role":"wizard","content":"hi"}]}',
        'messages[0].role',
      ],
      ['{"model":"gemini-2.5-flash","messages":[{"role":"user"}],"stream":"yes"}', 'stream'],
      ['{"model":7,"messages":[{"role":"user"}]}', 'model'],
    ];
    const before = (await stats()).chatRequests;
    for (const [body, param] of cases) {
      const response = await raw(body);
      expect(response.status, body).toBe(400);
      const json = (await response.json()) as { error: Record<string, unknown> };
      expect(json.error.type, body).toBe('invalid_request_error');
      expect(json.error.param, body).toBe(param);
      expect(typeof json.error.message).toBe('string');
    }
    // Only the wrong-key request (passed through as a caller token) reached Vertex.
    expect((await stats()).chatRequests - before).toBe(0);
  });

  it('refuses hostile or malformed path parameters before any request leaves', async () => {
    const paths = [
      `/v1/projects/evil.com%2Fx/locations/us-central1/endpoints/openapi/chat/completions`,
      `/v1/projects/${PROJECT}/locations/us-central1.evil.com/endpoints/openapi/chat/completions`,
      `/v1/projects/${PROJECT}/locations/us-central1@evil.com/endpoints/openapi/chat/completions`,
      `/v1/projects/${PROJECT}/locations/%2e%2e/endpoints/openapi/chat/completions`,
      `/v1/projects/${PROJECT}/locations/us-central1/endpoints/openapi%23/chat/completions`,
      `/v1/projects/EMULATOR-PROJECT/locations/us-central1/endpoints/openapi/chat/completions`,
      `/v1/projects/${PROJECT}/locations/us%20central1/endpoints/openapi/chat/completions`,
      `/v2/projects/${PROJECT}/locations/us-central1/endpoints/openapi/chat/completions`,
    ];
    for (const path of paths) {
      const response = await fetch(`${gateway.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'gemini-2.5-flash',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
      expect([400, 404], path).toContain(response.status);
      const json = (await response.json()) as { error: { type: string } };
      expect(json.error.type, path).toMatch(/invalid_request_error|not_found_error/);
    }
    expect((await stats()).chatRequests).toBe(0);
  });

  it('refuses projects outside the allow-list with 403', async () => {
    const error = await client({
      base: '/v1/projects/someone-elses/locations/us-central1/endpoints/openapi',
    })
      .chat.completions.create({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: 'hi' }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((await stats()).chatRequests).toBe(0);
  });

  it('serves /healthz, and 404 and 405 in OpenAI shape', async () => {
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const missing = await fetch(`${gateway.url}/v1/embeddings`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { type: string } }).error.type).toBe(
      'not_found_error',
    );

    const wrongMethod = await fetch(`${gateway.url}/v1/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('replaces a token Vertex rejects and retries once, so the user sees a 200', async () => {
    await emulator.admin('expire-tokens', { body: {} });
    const answer = await client().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'still there?' }],
    });
    expect(answer.choices[0]?.message.content).toContain('still there?');
    const after = await stats();
    expect(after.tokenExchanges).toBe(1);
    expect(after.chatRequests).toBe(2);
  });

  it("reports a refused token exchange with Google's reason, and does not cache the failure", async () => {
    await emulator.admin('expire-tokens', { body: {} });
    await emulator.admin('faults', {
      body: {
        target: 'token',
        status: 400,
        body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
      },
    });
    const error = await client()
      .chat.completions.create({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: 'hi' }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain(
      'Invalid JWT Signature.',
    );
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('token_exchange_failed');

    const retry = await client().chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'and now?' }],
    });
    expect(retry.choices[0]?.message.content).toContain('and now?');
    // One refused exchange, then one that succeeded: the failure was not remembered.
    expect(await stats()).toMatchObject({ tokenExchangeFailures: 1, tokenExchanges: 1 });
  });

  it('never prints the key, the client key or an access token', () => {
    const output = gateway.output();
    expect(output).not.toContain(CLIENT_KEY);
    expect(output).not.toContain('PRIVATE KEY');
    expect(output).not.toContain(serviceAccountKey.private_key_id as string);
    expect(output).not.toMatch(/ya29\./);
    expectNoPieceOf(output, pemBody(serviceAccountKey.private_key as string));
    // On workerd the key is given in base64, where none of the above would show.
    if (runtime === 'workerd') {
      expectNoPieceOf(output, Buffer.from(JSON.stringify(serviceAccountKey)).toString('base64'));
    }
  });
});
