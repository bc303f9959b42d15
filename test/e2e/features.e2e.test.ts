import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { emulatorForFile, type RunningProcess, type Runtime, startGateway } from './processes.ts';
import { expectNoPieceOf, pemBody } from './secrets.ts';

// What gateway users expect beyond chat, on both runtimes, from outside: the model list, aliases,
// CORS for browser apps, request ids, server timing, and one JSON log line per request that
// carries usage and never a secret.

const CLIENT_KEY = 'e2e-features-key-5a1f09';
const APP_ORIGIN = 'https://chat.example.com';
const SECRET_PROMPT = 'the launch code is 0451-zebra';

const shared = emulatorForFile();

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('gateway features on %s', (runtime) => {
  let gateway: RunningProcess;
  const openai = () =>
    new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });

  /** The gateway's JSON request-log lines printed so far. */
  function requestLogs(): Record<string, unknown>[] {
    return gateway
      .output()
      .split('\n')
      .map((line) => line.slice(line.indexOf('{')))
      .filter((line) => line.includes('"message":"request"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }
  async function logFor(requestId: string | null): Promise<Record<string, unknown> | undefined> {
    // Output arrives asynchronously from the child process; give it a moment.
    for (let i = 0; i < 40; i++) {
      const found = requestLogs().find((record) => record.request_id === requestId);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return undefined;
  }

  beforeAll(async () => {
    gateway = await startGateway(
      runtime,
      shared.gatewayEnv(CLIENT_KEY, {
        MODELS: 'google/gemini-2.5-flash,meta/llama-3.3-70b-instruct-maas',
        MODEL_ALIASES: '{"gpt-4o":"google/gemini-2.5-pro"}',
        CORS_ORIGINS: APP_ORIGIN,
      }),
    );
  });
  afterAll(async () => {
    await gateway?.stop();
  });
  beforeEach(async () => {
    await shared.emulator.admin('reset', { body: {} });
  });

  it('lists its models to the openai client, aliases included', async () => {
    const ids: string[] = [];
    for await (const model of openai().models.list()) ids.push(model.id);
    expect(ids).toEqual(['google/gemini-2.5-flash', 'meta/llama-3.3-70b-instruct-maas', 'gpt-4o']);
    const one = await openai().models.retrieve('meta/llama-3.3-70b-instruct-maas');
    expect(one.owned_by).toBe('meta');
  });

  it('applies a model alias before forwarding', async () => {
    const completion = await openai().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    const [forwarded] = await shared.emulator.requests();
    expect(forwarded?.body.model).toBe('google/gemini-2.5-pro');
  });

  it('answers a browser preflight from the allowed origin only', async () => {
    const preflight = (origin: string) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, x-stainless-os',
        },
      });
    const allowed = await preflight(APP_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).toContain('x-stainless-os');
    const refused = await preflight('https://evil.example.com');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();

    const chat = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        origin: APP_ORIGIN,
        authorization: `Bearer ${CLIENT_KEY}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.status).toBe(200);
    expect(chat.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(chat.headers.get('access-control-expose-headers')).toContain('x-request-id');
  });

  it("echoes the caller's x-request-id and reports server timing", async () => {
    const { response } = await openai()
      .chat.completions.create(
        { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-request-id': 'caller-trace-77' } },
      )
      .withResponse();
    expect(response.headers.get('x-request-id')).toBe('caller-trace-77');
    expect(response.headers.get('server-timing')).toMatch(
      /^gateway;dur=[\d.]+, upstream;dur=[\d.]+$/,
    );
  });

  it('writes one JSON log line per request, with usage from the stream, and no secrets', async () => {
    const { data: stream, response } = await openai()
      .chat.completions.create({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: SECRET_PROMPT }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) usage ??= chunk.usage;
    const requestId = response.headers.get('x-request-id');
    const record = await logFor(requestId);
    expect(record).toMatchObject({
      level: 'info',
      route: '/v1/chat/completions',
      model: 'gemini-2.5-flash',
      upstream_model: 'google/gemini-2.5-flash',
      stream: true,
      status: 200,
      upstream_status: 200,
      attempts: 1,
      stream_outcome: 'complete',
      usage: {
        prompt_tokens: usage?.prompt_tokens,
        completion_tokens: usage?.completion_tokens,
        total_tokens: usage?.total_tokens,
      },
    });
    expect(typeof record?.ttfb_ms).toBe('number');
    expect(typeof record?.total_ms).toBe('number');
    expect(requestLogs().filter((r) => r.request_id === requestId)).toHaveLength(1);

    const refused = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-wrong-key-1c9e', 'x-request-id': 'refused-1' },
      body: '{}',
    });
    expect(refused.status).toBe(401);
    expect(await logFor('refused-1')).toMatchObject({ status: 401, error_code: 'invalid_api_key' });

    const output = gateway.output();
    expect(output).not.toContain(CLIENT_KEY);
    expect(output).not.toContain('sk-wrong-key-1c9e');
    expect(output).not.toContain('0451-zebra');
    expect(output).not.toContain('ya29.');
    expectNoPieceOf(output, pemBody(shared.serviceAccountKey.private_key ?? ''));
    // The key as the gateway was given it: base64, in which no PEM text shows.
    expectNoPieceOf(output, shared.gatewayEnv(CLIENT_KEY).GOOGLE_SERVICE_ACCOUNT_KEY ?? '');
  });
});
