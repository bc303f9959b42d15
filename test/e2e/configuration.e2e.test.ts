import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProcess, type Runtime, startGateway } from './processes.ts';

// Deployments that are not (or not correctly) configured must refuse work, say why, and never
// show the offending value.

const SECRET_FRAGMENT = 'not-a-key-but-secret-9f8e7d';
const hello = JSON.stringify({
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'hi' }],
});

async function post(gateway: RunningProcess, authorization = 'Bearer anything') {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: hello,
  });
}

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('configuration on %s', (runtime) => {
  let unconfigured: RunningProcess;
  let malformed: RunningProcess;

  beforeAll(async () => {
    [unconfigured, malformed] = await Promise.all([
      startGateway(runtime, {}),
      startGateway(runtime, { GOOGLE_SERVICE_ACCOUNT_KEY: SECRET_FRAGMENT, GATEWAY_API_KEYS: 'k' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([unconfigured?.stop(), malformed?.stop()]);
  });

  it('fails closed with nothing configured', async () => {
    const response = await post(unconfigured);
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
});
