import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type EmulatorProcess,
  type RunningProcess,
  type Runtime,
  startEmulator,
  startGateway,
} from './processes.ts';

// Deployments configured in each way the README describes, and not configured at all: each must
// do what it says, refuse what it should, and never show a secret.

const SECRET_FRAGMENT = 'not-a-key-but-secret-9f8e7d';
const CLIENT_KEY = 'keys-only-client-key';
const hello = { model: 'gemini-2.5-flash', messages: [{ role: 'user' as const, content: 'hi' }] };

function post(gateway: RunningProcess, authorization?: string) {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(hello),
  });
}

let emulator: EmulatorProcess;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});
beforeEach(async () => {
  await emulator.admin('reset', { body: {} });
});

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('configuration on %s', (runtime) => {
  let unconfigured: RunningProcess;
  let malformed: RunningProcess;
  let keysOnly: RunningProcess;
  let passthroughOnly: RunningProcess;

  beforeAll(async () => {
    const key = await emulator.admin<Record<string, string>>('service-accounts', { body: {} });
    [unconfigured, malformed, keysOnly, passthroughOnly] = await Promise.all([
      startGateway(runtime, {}),
      startGateway(runtime, { GOOGLE_SERVICE_ACCOUNT_KEY: SECRET_FRAGMENT, GATEWAY_API_KEYS: 'k' }),
      startGateway(runtime, {
        GOOGLE_SERVICE_ACCOUNT_KEY: Buffer.from(JSON.stringify(key)).toString('base64'),
        GATEWAY_API_KEYS: CLIENT_KEY,
        VERTEX_BASE_URL: emulator.url,
      }),
      startGateway(runtime, {
        ALLOW_TOKEN_PASSTHROUGH: 'true',
        VERTEX_PROJECT: 'caller-project',
        VERTEX_LOCATION: 'europe-west4',
        VERTEX_BASE_URL: emulator.url,
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([unconfigured, malformed, keysOnly, passthroughOnly].map((g) => g?.stop()));
  });

  it('fails closed with nothing configured', async () => {
    const response = await post(unconfigured, 'Bearer anything');
    expect(response.status).toBe(503);
    const { error } = (await response.json()) as { error: Record<string, unknown> };
    expect(error.code).toBe('gateway_not_configured');
    expect(error.message).toMatch(/GATEWAY_API_KEYS/);
    // Health checks still answer, and say nothing about configuration.
    const health = await fetch(`${unconfigured.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('names a malformed variable without echoing its value, in answers and logs', async () => {
    const response = await post(malformed, 'Bearer k');
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text).error.message).toMatch(/GOOGLE_SERVICE_ACCOUNT_KEY/);
    expect(text).not.toContain(SECRET_FRAGMENT);
    expect(malformed.output()).not.toContain(SECRET_FRAGMENT);
  });

  it('with gateway keys only, refuses a missing or wrong key itself with 401', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-key',
      'Basic abc',
      `Bearer ${CLIENT_KEY}x`,
    ]) {
      const response = await post(keysOnly, authorization);
      expect(response.status, String(authorization)).toBe(401);
      const { error } = (await response.json()) as { error: Record<string, unknown> };
      expect(error.type).toBe('authentication_error');
      expect(JSON.stringify(error)).not.toContain('wrong-key');
    }
    const openai = new OpenAI({
      baseURL: `${keysOnly.url}/v1`,
      apiKey: 'wrong-key',
      maxRetries: 0,
    });
    await expect(openai.chat.completions.create(hello)).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    expect((await emulator.stats()).chatRequests).toBe(0);

    const ok = new OpenAI({ baseURL: `${keysOnly.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    expect((await ok.chat.completions.create(hello)).object).toBe('chat.completion');
  });

  it('with passthrough only, needs no service-account key and uses the caller token', async () => {
    const { access_token } = await emulator.admin<{ access_token: string }>('access-tokens', {
      body: {},
    });
    const openai = new OpenAI({
      baseURL: `${passthroughOnly.url}/v1`,
      apiKey: access_token,
      maxRetries: 0,
    });
    expect((await openai.chat.completions.create(hello)).object).toBe('chat.completion');
    const [recorded] = await emulator.requests();
    expect(recorded?.path).toBe(
      '/v1/projects/caller-project/locations/europe-west4/endpoints/openapi/chat/completions',
    );
    expect(recorded?.headers.authorization).toBe(`Bearer ${access_token}`);
    expect((await emulator.stats()).tokenExchanges).toBe(0);

    // A token Google does not know is Google's to refuse; the gateway does not retry it.
    const stranger = new OpenAI({
      baseURL: `${passthroughOnly.url}/v1`,
      apiKey: 'ya29.unknown',
      maxRetries: 0,
    });
    await expect(stranger.chat.completions.create(hello)).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    expect((await emulator.stats()).chatRequests).toBe(2);
  });
});
