import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  emulatorForFile,
  ROOT,
  type RunningProcess,
  type Runtime,
  startDenoWithKv,
  startGateway,
  waitForStats,
} from './processes.ts';
import { expectNoPieceOf } from './secrets.ts';

// Issue 6 from outside, on both runtimes, as a new user would try it: the gateway signs its own
// JWT for Vertex (no token exchange), falls back to the exchange when Vertex refuses it, and
// serves hashed client keys with their own models and per-minute limits.

const PLAIN_KEY = 'e2e-governance-plain-key';
const LIMITED_KEY = 'vgw-e2e-limited-7c1d2e3f';
const OTHER_KEY = 'vgw-e2e-other-0a9b8c7d';
const FLASH_ONLY_KEY = 'vgw-e2e-flash-only-5e6f7a8b';
const RPM = 3;

/** What `npm run new-key` prints, as the README tells an operator to run it. */
function newKeyFromCli(...args: string[]): { key: string; entry: Record<string, unknown> } {
  const run = spawnSync('npm', ['run', '-s', 'new-key', '--', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`npm run new-key failed: ${run.stderr}`);
  const key = /^ {2}(vgw-\S+)$/m.exec(run.stdout)?.[1];
  const entry = /^ {2}(\{.*\})$/m.exec(run.stdout)?.[1];
  if (!key || !entry) throw new Error(`unexpected new-key output:\n${run.stdout}`);
  return { key, entry: JSON.parse(entry) as Record<string, unknown> };
}

const CLI_KEY = newKeyFromCli('cli-team', '--models', 'gemini-2.5-pro', '--rpm', '100');

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const GATEWAY_KEYS = JSON.stringify([
  { name: 'limited-team', sha256: sha256(LIMITED_KEY), rpm: RPM },
  { name: 'other-team', sha256: sha256(OTHER_KEY) },
  { name: 'flash-team', sha256: sha256(FLASH_ONLY_KEY), models: ['gemini-2.5-flash*'] },
  CLI_KEY.entry,
]);

const shared = emulatorForFile();
const runtimes: Runtime[] = ['workerd', 'deno'];

const ask = (client: OpenAI, model = 'gemini-2.5-flash') =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

function decodeJwt(jwt: string) {
  const [header = '', payload = ''] = jwt.split('.');
  const part = (text: string) =>
    JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Record<string, unknown>;
  return { header: part(header), payload: part(payload) };
}

describe.each(runtimes)('edge auth and governance on %s', (runtime) => {
  let gateway: RunningProcess;
  const client = (apiKey: string) =>
    new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });
  const bearers = async () =>
    (await shared.emulator.requests()).map((r) => (r.headers.authorization ?? '').slice(7));

  beforeAll(async () => {
    await shared.emulator.admin('reset', { body: {} });
    await shared.emulator.admin('config', { body: { acceptSelfSignedJwt: true } });
    gateway = await startGateway(
      runtime,
      shared.gatewayEnv(PLAIN_KEY, { GOOGLE_AUTH_MODE: 'self-signed', GATEWAY_KEYS }),
    );
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('sends one self-signed JWT to Vertex for a burst of requests, and never exchanges', async () => {
    const streamed = await client(PLAIN_KEY).chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of streamed) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).not.toBe('');
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(client(PLAIN_KEY))));
    expect(answers.every((answer) => answer.choices[0]?.message.content)).toBe(true);

    expect((await shared.emulator.stats()).tokenExchanges).toBe(0);
    const sent = new Set(await bearers());
    expect(sent.size).toBe(1);
    const [jwt = ''] = sent;
    const { header, payload } = decodeJwt(jwt);
    const account = shared.serviceAccountKey;
    expect(header).toMatchObject({ alg: 'RS256', kid: account.private_key_id });
    expect(payload).toMatchObject({
      iss: account.client_email,
      sub: account.client_email,
      aud: 'https://aiplatform.googleapis.com/',
    });
    expect(Number(payload.exp) - Number(payload.iat)).toBe(3600);
  });

  it('refuses a limited key at its limit with a truthful Retry-After; other keys go on', async () => {
    const limited = client(LIMITED_KEY);
    for (let i = 0; i < RPM; i++) await ask(limited);
    const refused = await ask(limited).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const error = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.status).toBe(429);
    expect(error.code).toBe('rate_limit_exceeded');
    const retryAfter = Number(error.headers?.get('retry-after'));
    // The requests were made within the last few seconds: the minute frees up about a minute on.
    expect(retryAfter).toBeGreaterThanOrEqual(55);
    expect(retryAfter).toBeLessThanOrEqual(61);

    // The other hashed key and the plain key are not affected, before or after.
    for (const key of [OTHER_KEY, PLAIN_KEY, OTHER_KEY]) {
      expect((await ask(client(key))).choices[0]?.message.content).toBeTruthy();
    }
    await expect(ask(limited)).rejects.toBeInstanceOf(OpenAI.RateLimitError);

    if (runtime === 'workerd') {
      // The count lives in the RATE_LIMITER Durable Object (its storage is on disk under wrangler
      // dev), not in the isolate: that is what makes it hold across isolates and locations.
      const files = readdirSync(gateway.stateDir ?? '', { recursive: true, encoding: 'utf8' });
      const objects = files.filter((file) =>
        /RateLimiterDurableObject\/[0-9a-f]{64}\.sqlite$/.test(file),
      );
      expect(objects.length).toBeGreaterThanOrEqual(1);
    }
  });

  it('keeps a key to its models, refusing others with 403 before Vertex sees them', async () => {
    const flash = client(FLASH_ONLY_KEY);
    expect((await ask(flash, 'gemini-2.5-flash-lite')).choices[0]?.message.content).toBeTruthy();
    const before = (await shared.emulator.requests()).length;
    const refused = await ask(flash, 'gemini-2.5-pro').then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_allowed');
    expect((await shared.emulator.requests()).length).toBe(before);

    const ids: string[] = [];
    for await (const model of flash.models.list()) ids.push(model.id);
    expect(ids).toEqual(['google/gemini-2.5-flash', 'google/gemini-2.5-flash-lite']);
  });

  it('serves a key made by npm run new-key, with the policy given on its command line', async () => {
    const team = client(CLI_KEY.key);
    expect((await ask(team, 'gemini-2.5-pro')).choices[0]?.message.content).toBeTruthy();
    await expect(ask(team, 'gemini-2.5-flash')).rejects.toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
    const answer = await team.chat.completions
      .create({ model: 'gemini-2.5-pro', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(answer.response.headers.get('x-ratelimit-limit-requests')).toBe('100');
  });

  it('falls back to the token exchange when Vertex refuses the JWT, and the user sees a 200', async () => {
    await shared.emulator.admin('config', { body: { acceptSelfSignedJwt: false } });
    expect((await shared.emulator.stats()).tokenExchanges).toBe(0);
    const sentBefore = (await bearers()).length;
    const answers = await Promise.all(Array.from({ length: 5 }, () => ask(client(OTHER_KEY))));
    expect(answers.every((answer) => answer.choices[0]?.message.content)).toBe(true);
    const stats = await waitForStats(shared.emulator, (s) => s.tokenExchanges >= 1);
    expect(stats.tokenExchanges).toBe(1);

    // Later requests go straight to the exchanged token.
    await ask(client(PLAIN_KEY));
    const sent = (await bearers()).slice(sentBefore);
    expect(sent.at(-1)).toMatch(/^ya29\./);
    expect(sent.filter((bearer) => bearer.startsWith('ya29.')).length).toBe(6);
    // The JWT was tried (and refused) first: that is what triggered the exchange.
    expect(sent.filter((bearer) => bearer.startsWith('eyJ')).length).toBeGreaterThanOrEqual(1);
  });

  it('logs the fallback once and names keys by name, with no secret anywhere in its output', async () => {
    let output = '';
    for (let i = 0; i < 40; i++) {
      output = gateway.output();
      if (output.includes('self_signed_jwt_refused') && output.includes('flash-team')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(output.match(/self_signed_jwt_refused/g)).toHaveLength(1);
    expect(output).toContain('"key_name":"limited-team"');
    expect(output).toContain('"key_name":"flash-team"');
    // The shared store answered throughout: no request fell back to counting in the isolate.
    expect(output).not.toContain('counting in this isolate');
    // workerd has its Durable Object; `npm run serve:deno` has no KV, and says so.
    if (runtime === 'workerd') expect(output).not.toContain('rate_limits_per_isolate');
    else expect(output).toContain('rate_limits_per_isolate');
    // The shared JWT and token settle to plain strings: workerd never saw one request's promise
    // or I/O used by another.
    expect(output).not.toMatch(/different request context|on behalf of a different request/i);

    const sent = await bearers();
    const jwt = sent.find((bearer) => bearer.startsWith('eyJ')) ?? '';
    const accessToken = sent.find((bearer) => bearer.startsWith('ya29.')) ?? '';
    const pem = shared.serviceAccountKey.private_key ?? '';
    const pemLines = pem.split('\n').filter((line) => line.length > 40);
    const secrets = [
      CLI_KEY.key,
      PLAIN_KEY,
      LIMITED_KEY,
      OTHER_KEY,
      FLASH_ONLY_KEY,
      sha256(LIMITED_KEY),
      jwt,
      jwt.split('.')[2] ?? '',
      accessToken,
      ...pemLines,
    ];
    expect(jwt).not.toBe('');
    expect(accessToken).not.toBe('');
    expect(pemLines.length).toBeGreaterThan(5);
    for (const secret of secrets) expect(output).not.toContain(secret);
    // The key as the gateway was given it: base64, in which no PEM line shows.
    expectNoPieceOf(output, shared.gatewayEnv(PLAIN_KEY).GOOGLE_SERVICE_ACCOUNT_KEY ?? '');
  });
});

describe('rpm limits shared by two Deno processes through Deno KV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-kv-'));
  const gateways: RunningProcess[] = [];
  beforeAll(async () => {
    await shared.emulator.admin('reset', { body: {} });
    const env = shared.gatewayEnv(PLAIN_KEY, { GATEWAY_KEYS });
    for (let i = 0; i < 2; i++) gateways.push(await startDenoWithKv(env, join(dir, 'limits.db')));
  });
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts a key once across both instances, and leaves other keys alone', async () => {
    const [first, second] = gateways.map(
      (gateway) => (apiKey: string) =>
        new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 }),
    );
    if (!first || !second) throw new Error('two gateways expected');
    // RPM requests spread over both instances use up the one shared minute.
    for (let i = 0; i < RPM; i++) await ask((i % 2 === 0 ? first : second)(LIMITED_KEY));
    for (const instance of [first, second]) {
      await expect(ask(instance(LIMITED_KEY))).rejects.toBeInstanceOf(OpenAI.RateLimitError);
      expect((await ask(instance(OTHER_KEY))).choices[0]?.message.content).toBeTruthy();
    }
    expect((await shared.emulator.stats()).chatRequests).toBe(RPM + 2);
    for (const gateway of gateways) {
      expect(gateway.output()).not.toContain('counting in this isolate');
      expect(gateway.output()).not.toContain('rate_limits_per_isolate');
    }
  });
});
