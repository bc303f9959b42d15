import { exports } from 'cloudflare:workers';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import type { EmulatorStats } from '../../emulator/state.ts';
import { createEnvGateway } from '../../src/env-gateway.ts';
import { GatewayError } from '../../src/errors.ts';
import { createServiceAccountTokenSource } from '../../src/google/access-token.ts';
import { parseServiceAccountKey } from '../../src/google/service-account-key.ts';
import { guardEventStream } from '../../src/vertex/stream-guard.ts';

// These run inside workerd: the real Worker entry (wrangler.toml, bindings from vitest.config.mts)
// and fresh gateways built from src, calling the Node-side emulator over loopback.
const emulatorUrl = inject('emulatorUrl');
const serviceAccountKey = inject('serviceAccountKey');
const CLIENT_KEY = 'workers-test-key';

async function admin<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(`${emulatorUrl}/__emulator/${path}`, init);
  if (!response.ok) throw new Error(`emulator ${path}: ${response.status}`);
  return (await response.json()) as T;
}

const stats = () => admin<EmulatorStats>('stats');

function chat(body: unknown, init: { key?: string; path?: string } = {}): Request {
  return new Request(`https://gateway.test${init.path ?? '/v1/chat/completions'}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${init.key ?? CLIENT_KEY}`,
      cookie: 'session=caller-cookie',
    },
    body: JSON.stringify(body),
  });
}

const hello = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Why is the sky blue?' }],
};

const worker = () =>
  (exports as unknown as { default: { fetch(request: Request): Promise<Response> } }).default;

beforeEach(async () => {
  await admin('reset', { method: 'POST' });
});

describe('the Worker entry in workerd', () => {
  it('answers /healthz without auth and without revealing configuration', async () => {
    const response = await worker().fetch(new Request('https://gateway.test/healthz'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('completes a chat with a gateway key via the service account', async () => {
    const response = await worker().fetch(chat(hello));
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      object: string;
      choices: { message: { content: string } }[];
    };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]?.message.content).toContain('Why is the sky blue?');

    const [recorded] =
      await admin<{ path: string; headers: Record<string, string>; body: { model: string } }[]>(
        'requests',
      );
    expect(recorded?.path).toBe(
      '/v1/projects/emulator-project/locations/us-central1/endpoints/openapi/chat/completions',
    );
    expect(recorded?.body.model).toBe('google/gemini-2.5-flash');
    expect(recorded?.headers.authorization).toMatch(/^Bearer ya29\./);
    expect(recorded?.headers.cookie).toBeUndefined();
  });

  it('streams SSE chunks through', async () => {
    const response = await worker().fetch(
      chat({
        ...hello,
        stream: true,
        stream_options: { include_usage: true },
        emulator: { chunks: 4 },
      }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    expect(chunks.filter((c) => c.choices?.length > 0).length).toBeGreaterThanOrEqual(4);
    expect(chunks.at(-1).usage.total_tokens).toBeGreaterThan(0);
  });

  it('turns a Vertex error in array form into an OpenAI error', async () => {
    const response = await worker().fetch(
      chat({
        ...hello,
        emulator: { status: 429, errorShape: 'array', message: 'Quota exceeded.' },
      }),
    );
    expect(response.status).toBe(429);
    expect(await response.json()).toEqual({
      error: {
        message: 'Quota exceeded.',
        type: 'rate_limit_error',
        param: null,
        code: 'resource_exhausted',
      },
    });
  });

  it('forwards a caller-supplied Google token when passthrough is on, without an exchange', async () => {
    const { access_token } = await admin<{ access_token: string }>('access-tokens', {
      method: 'POST',
    });
    const before = await stats();
    const response = await worker().fetch(chat(hello, { key: access_token }));
    expect(response.status).toBe(200);
    const [recorded] = await admin<{ headers: Record<string, string> }[]>('requests');
    expect(recorded?.headers.authorization).toBe(`Bearer ${access_token}`);
    expect((await stats()).tokenExchanges).toBe(before.tokenExchanges);
  });

  it('rejects a bad path parameter before any upstream call', async () => {
    const response = await worker().fetch(
      chat(hello, {
        path: '/v1/projects/emulator-project/locations/us-central1.evil.com/endpoints/openapi/chat/completions',
      }),
    );
    expect(response.status).toBe(400);
    expect((await stats()).chatRequests).toBe(0);
  });
});

describe('a fresh gateway isolate in workerd', () => {
  const env = {
    GOOGLE_SERVICE_ACCOUNT_KEY: serviceAccountKey,
    GATEWAY_API_KEYS: CLIENT_KEY,
    VERTEX_BASE_URL: emulatorUrl,
  };

  it('makes exactly one token exchange for 40 concurrent cold requests', async () => {
    const handler = createEnvGateway()(env);
    const before = await stats();
    const responses = await Promise.all(Array.from({ length: 40 }, () => handler(chat(hello))));
    expect(responses.map((r) => r.status)).toEqual(Array(40).fill(200));
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    const after = await stats();
    expect(after.tokenExchanges - before.tokenExchanges).toBe(1);
    expect(after.chatRequests - before.chatRequests).toBe(40);
  });

  it("reports a token endpoint past the exchange's deadline as 504, as workerd's fetch times out", async () => {
    // workerd must reject a fetch on AbortSignal.timeout with a TimeoutError, which the exchange
    // reports as such instead of retrying it as a network failure.
    await admin('faults', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'token', headersDelayMs: 1200 }),
    });
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(serviceAccountKey), {
      timeoutMs: 300,
    });
    const error = await tokens.getToken().then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(504);
    expect((error as GatewayError).message).toContain('did not answer in time');
    // The emulator answers that exchange later, to nobody: wait, so no later test counts it.
    for (let i = 0; i < 40 && (await stats()).tokenExchanges === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('fails closed when nothing is configured', async () => {
    const handler = createEnvGateway()({});
    const response = await handler(chat(hello));
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'gateway_not_configured',
    );
    expect((await stats()).chatRequests).toBe(0);
  });
});

describe('the stream guard on a real fetch body in workerd', () => {
  it('lets go of an upstream body that broke off, after passing the error on', async () => {
    const { access_token } = await admin<{ access_token: string }>('access-tokens', {
      method: 'POST',
      body: '{}',
    });
    const upstream = await fetch(
      `${emulatorUrl}/v1/projects/emulator-project/locations/us-central1/endpoints/openapi/chat/completions`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          ...hello,
          stream: true,
          emulator: { chunks: 6, chunkDelayMs: 20, abortAfterChunks: 2 },
        }),
      },
    );
    const body = upstream.body as ReadableStream<Uint8Array>;
    let outcome = '';
    const guarded = guardEventStream(body, {
      idleTimeoutMs: 5000,
      onEnd: (summary) => {
        outcome = summary.outcome;
      },
    });
    const text = await new Response(guarded).text();
    expect(text).toContain('upstream_stream_interrupted');
    expect(outcome).toBe('interrupted');
    // A reader left locked to a broken fetch body keeps its request alive in workerd.
    expect(body.locked).toBe(false);
  });
});
