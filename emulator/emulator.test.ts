import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importPKCS8, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../test/support/wait-until.ts';
import { defaultAnswer, deterministicText } from './completion.ts';
import { UNAUTHENTICATED_MESSAGE } from './google-errors.ts';
import { type Emulator, startEmulator } from './server.ts';
import { generateServiceAccountKey, type ServiceAccountKey } from './service-account.ts';
import { EmulatorState } from './state.ts';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const CHAT_PATH =
  '/v1/projects/emulator-project/locations/global/endpoints/openapi/chat/completions';
const SHORT_LIVED =
  'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';

interface Completion {
  id: string;
  object: string;
  model: string;
  choices: [
    {
      finish_reason: string;
      message: {
        role: string;
        content: string;
        extra_content?: { google: { thought_signature: string } };
      };
    },
  ];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface GoogleErrorBody {
  error: { code: number; message: string; status: string };
}

let emulator: Emulator;
let account: ServiceAccountKey;

beforeAll(async () => {
  emulator = await startEmulator();
  account = emulator.createServiceAccount();
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());

interface AssertionOverrides {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  signingKey?: string;
}

async function assertion(key: ServiceAccountKey, overrides: AssertionOverrides = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: key.client_email,
    scope: SCOPE,
    aud: key.token_uri,
    iat: now,
    exp: now + 3600,
  };
  return new SignJWT({ ...claims, ...overrides.claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id, ...overrides.header })
    .sign(await importPKCS8(overrides.signingKey ?? key.private_key, 'RS256'));
}

function exchange(jwt: string, grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
  return fetch(emulator.tokenUri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantType, assertion: jwt }),
  });
}

async function expectTokenError(response: Response, error: string, description?: string) {
  expect(response.status).toBe(400);
  const body = (await response.json()) as { error: string; error_description: string };
  expect(body.error).toBe(error);
  if (description !== undefined) expect(body.error_description).toBe(description);
}

function chat(body: unknown, token?: string, extraHeaders: Record<string, string> = {}) {
  return fetch(`${emulator.url}${CHAT_PATH}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...extraHeaders,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The standard question, with a fresh token, to another chat path. */
const chatAt = (path: string) =>
  fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${emulator.issueAccessToken()}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(hello()),
  });

const hello = (extra: Record<string, unknown> = {}) => ({
  model: 'google/gemini-2.5-flash',
  messages: [{ role: 'user', content: 'What is the capital of France?' }],
  ...extra,
});

/** Splits an SSE body on any blank line and returns the data payloads. */
function sseData(text: string): string[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((event) => event.startsWith('data: '))
    .map((event) => event.slice('data: '.length));
}

describe('service-account keys', () => {
  it('have Google key JSON fields and a PKCS#8 key', () => {
    const { key, publicKeyPem } = generateServiceAccountKey({ tokenUri: 'http://x/token' });
    expect(key.type).toBe('service_account');
    expect(key.project_id).toBe('emulator-project');
    expect(key.private_key_id).toMatch(/^[0-9a-f]{40}$/);
    expect(key.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(key.client_email).toBe('gateway@emulator-project.iam.gserviceaccount.com');
    expect(key.client_id).toMatch(/^\d{21}$/);
    expect(key.token_uri).toBe('http://x/token');
    expect(key.universe_domain).toBe('googleapis.com');
    expect(publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
  });
});

describe('token endpoint', () => {
  it('exchanges a correctly signed assertion for a working token', async () => {
    const response = await exchange(await assertion(account));
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toEqual({
      access_token: expect.stringMatching(/^ya29\.emu\./),
      expires_in: 3599,
      token_type: 'Bearer',
    });
    expect((await chat(hello(), body.access_token as string)).status).toBe(200);
    expect(emulator.stats.tokenExchanges).toBe(1);
  });

  it('rejects a signature from an unregistered key, or a kid/key mismatch', async () => {
    const stranger = generateServiceAccountKey({ tokenUri: emulator.tokenUri }).key;
    await expectTokenError(
      await exchange(await assertion(stranger)),
      'invalid_grant',
      'Invalid JWT Signature.',
    );
    const forged = await assertion(account, { signingKey: stranger.private_key });
    await expectTokenError(await exchange(forged), 'invalid_grant', 'Invalid JWT Signature.');
    expect(emulator.stats.tokenExchangeFailures).toBe(2);
    expect(emulator.stats.tokenExchanges).toBe(0);
  });

  it('accepts an assertion without a kid, as Google does, if a key of the account signed it', async () => {
    const second = emulator.createServiceAccount({ clientEmail: account.client_email });
    for (const key of [account, second]) {
      const jwt = await assertion(key, { header: { kid: undefined } });
      expect((await exchange(jwt)).status).toBe(200);
    }
    const stranger = generateServiceAccountKey({ tokenUri: emulator.tokenUri }).key;
    const forged = await assertion(account, {
      header: { kid: undefined },
      signingKey: stranger.private_key,
    });
    await expectTokenError(await exchange(forged), 'invalid_grant', 'Invalid JWT Signature.');
    expect(emulator.deleteServiceAccount(second.private_key_id)).toBe(true);
  });

  it('rejects a deleted key', async () => {
    // An account of its own, so that deleting its only key leaves no other key of the account.
    const doomed = emulator.createServiceAccount({
      clientEmail: 'doomed@emulator-project.iam.gserviceaccount.com',
    });
    expect(emulator.deleteServiceAccount(doomed.private_key_id)).toBe(true);
    await expectTokenError(
      await exchange(await assertion(doomed)),
      'invalid_grant',
      'Invalid JWT Signature.',
    );
  });

  it('enforces short-lived, current assertions', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const claims of [
      { iat: now, exp: now + 3601 },
      { iat: now - 7200, exp: now - 3600 },
      { iat: now + 600, exp: now + 1200 },
      { iat: undefined },
    ]) {
      await expectTokenError(
        await exchange(await assertion(account, { claims })),
        'invalid_grant',
        SHORT_LIVED,
      );
    }
  });

  it('rejects the wrong audience, scope, grant type, content type and garbage', async () => {
    const wrongAud = await assertion(account, {
      claims: { aud: 'https://oauth2.googleapis.com/token' },
    });
    await expectTokenError(
      await exchange(wrongAud),
      'invalid_grant',
      `Invalid JWT: Failed audience check. The right audience is ${emulator.tokenUri}`,
    );
    const noScope = await assertion(account, { claims: { scope: undefined } });
    await expectTokenError(await exchange(noScope), 'invalid_scope');
    const otherScope = await assertion(account, {
      claims: { scope: 'https://www.googleapis.com/auth/userinfo.email' },
    });
    await expectTokenError(await exchange(otherScope), 'invalid_scope');
    await expectTokenError(
      await exchange(await assertion(account), 'client_credentials'),
      'unsupported_grant_type',
      'Invalid grant_type: client_credentials',
    );
    await expectTokenError(await exchange('not-a-jwt'), 'invalid_request');
    const asJson = await fetch(emulator.tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion: await assertion(account),
      }),
    });
    await expectTokenError(asJson, 'invalid_request');
  });

  it('honours the emulator clock when checking assertion times', async () => {
    emulator.advanceClock(2 * 3600);
    await expectTokenError(await exchange(await assertion(account)), 'invalid_grant', SHORT_LIVED);
  });
});

describe('chat authentication', () => {
  it('answers an expired token with ACCESS_TOKEN_EXPIRED', async () => {
    const token = emulator.issueAccessToken(60);
    expect((await chat(hello(), token)).status).toBe(200);
    emulator.advanceClock(61);
    const response = await chat(hello(), token);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      error: {
        code: 401,
        message: UNAUTHENTICATED_MESSAGE,
        status: 'UNAUTHENTICATED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'ACCESS_TOKEN_EXPIRED',
            domain: 'googleapis.com',
            metadata: {
              service: 'aiplatform.googleapis.com',
              method: 'google.cloud.aiplatform.v1.PredictionService.ChatCompletions',
            },
          },
        ],
      },
    });
  });

  it('rejects unknown and missing tokens', async () => {
    const unknown = await chat(hello(), 'ya29.not-issued-here');
    expect(unknown.status).toBe(401);
    expect(JSON.stringify(await unknown.json())).toContain('ACCESS_TOKEN_TYPE_UNSUPPORTED');
    const missing = await chat(hello());
    expect(missing.status).toBe(401);
    expect(JSON.stringify(await missing.json())).toContain('CREDENTIALS_MISSING');
    expect(emulator.stats.chatErrors).toBe(2);
  });

  it('accepts self-signed JWTs only when configured', async () => {
    const now = Math.floor(Date.now() / 1000);
    const selfSigned = await assertion(account, {
      claims: {
        sub: account.client_email,
        aud: 'https://aiplatform.googleapis.com/',
        scope: undefined,
        iat: now,
        exp: now + 3600,
      },
    });
    expect((await chat(hello(), selfSigned)).status).toBe(401);
    emulator.configure({ acceptSelfSignedJwt: true });
    expect((await chat(hello(), selfSigned)).status).toBe(200);
  });
});

describe('chat completions', () => {
  it('returns an OpenAI completion with a Google id, quoting the user text and naming images', async () => {
    const token = emulator.issueAccessToken();
    const response = await chat(
      {
        model: 'google/gemini-2.5-flash',
        messages: [
          { role: 'user', content: 'earlier question' },
          { role: 'assistant', content: 'earlier answer' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Describe these pictures.' },
              { type: 'image_url', image_url: 'gs://bucket/cat.png' },
              { type: 'image_url', image_url: { url: 'https://example.com/dog.jpg' } },
            ],
          },
        ],
      },
      token,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as Completion;
    expect(body.id).toMatch(/^[A-Za-z0-9_-]{23}$/);
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('google/gemini-2.5-flash');
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0].finish_reason).toBe('stop');
    expect(body.choices[0].message.role).toBe('assistant');
    const content: string = body.choices[0].message.content;
    expect(content).toContain('Describe these pictures.');
    expect(content).not.toContain('earlier question');
    expect(content).toContain('(gs://bucket/cat.png)');
    expect(content).toContain('(https://example.com/dog.jpg)');
    expect(content).toMatch(
      /local Vertex emulator, standing in for google\/gemini-2\.5-flash\.\)$/,
    );
    expect(body.choices[0].message.extra_content).toBeUndefined();
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
  });

  it('round-trips thought signatures', async () => {
    const token = emulator.issueAccessToken();
    const first = (await (
      await chat(hello({ emulator: { thoughtSignature: 'sig-1' } }), token)
    ).json()) as Completion;
    expect(first.choices[0].message.extra_content).toEqual({
      google: { thought_signature: 'sig-1' },
    });
    const second = (await (
      await chat(
        {
          model: 'google/gemini-3-pro-preview',
          messages: [
            { role: 'user', content: 'one' },
            {
              role: 'assistant',
              content: 'two',
              extra_content: first.choices[0].message.extra_content,
            },
            { role: 'user', content: 'three' },
          ],
        },
        token,
      )
    ).json()) as Completion;
    expect(second.choices[0]?.message.extra_content?.google.thought_signature).toMatch(/^emu-sig-/);
  });

  it.each([
    ['a location of no known format', 'locations/US_Central/endpoints/openapi', 400],
    ['an endpoint id Vertex never makes', 'locations/us-central1/endpoints/Bad_Endpoint!', 400],
    [
      'a self-deployed endpoint in global, which has none',
      'locations/global/endpoints/1234567890',
      404,
    ],
  ])('refuses %s', async (_, target, status) => {
    const response = await chatAt(`/v1/projects/emulator-project/${target}/chat/completions`);
    expect(response.status).toBe(status);
    const { error } = (await response.json()) as { error: { code: number; status: string } };
    expect(error.code).toBe(status);
    expect(error.status).toBe(status === 400 ? 'INVALID_ARGUMENT' : 'NOT_FOUND');
  });

  it.each([
    'locations/global/endpoints/openapi',
    'locations/eu/endpoints/my-vllm-1',
    'locations/europe-west4/endpoints/987654321',
  ])('serves %s', async (target) => {
    const response = await chatAt(`/v1beta1/projects/emulator-project/${target}/chat/completions`);
    expect(response.status).toBe(200);
  });

  it('records exactly what arrived', async () => {
    const token = emulator.issueAccessToken();
    const raw =
      '{"model":"m","messages":[{"role":"user","content":"hi"}],"store":false,"x_unknown":{"a":[1,2]}}';
    await chat(raw, token, { cookie: 'session=1', 'X-Custom': 'Yes' });
    const [recorded] = emulator.requests;
    expect(recorded?.method).toBe('POST');
    expect(recorded?.path).toBe(CHAT_PATH);
    expect(recorded?.params).toEqual({
      version: 'v1',
      project: 'emulator-project',
      location: 'global',
      endpoint: 'openapi',
    });
    expect(recorded?.bodyText).toBe(raw);
    expect((recorded?.body as { x_unknown?: unknown } | undefined)?.x_unknown).toEqual({
      a: [1, 2],
    });
    expect(recorded?.headers.cookie).toBe('session=1');
    expect(recorded?.headers['x-custom']).toBe('Yes');
    expect(recorded?.headers.authorization).toBe(`Bearer ${token}`);
    expect(recorded?.status).toBe(200);
  });

  it('rejects bodies without model or messages, and unknown directives', async () => {
    const token = emulator.issueAccessToken();
    for (const body of ['{not json', { messages: [] }, { model: 'm' }]) {
      const response = await chat(body, token);
      expect(response.status).toBe(400);
      expect(((await response.json()) as GoogleErrorBody).error.status).toBe('INVALID_ARGUMENT');
    }
    const typo = await chat(hello({ emulator: { stauts: 500 } }), token);
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as GoogleErrorBody).error.message).toContain('stauts');
  });

  it('answers error directives in object and array shapes', async () => {
    const token = emulator.issueAccessToken();
    const quota = await chat(hello({ emulator: { status: 429, retryAfter: 7 } }), token);
    expect(quota.status).toBe(429);
    expect(quota.headers.get('retry-after')).toBe('7');
    const quotaBody = (await quota.json()) as GoogleErrorBody;
    expect(quotaBody.error.status).toBe('RESOURCE_EXHAUSTED');
    expect(quotaBody.error.code).toBe(429);
    const wrapped = await chat(
      hello({
        stream: true,
        emulator: { status: 400, message: 'Unknown name "store"', errorShape: 'array' },
      }),
      token,
    );
    expect(wrapped.status).toBe(400);
    expect(await wrapped.json()).toEqual([
      { error: { code: 400, message: 'Unknown name "store"', status: 'INVALID_ARGUMENT' } },
    ]);
  });
});

describe('streaming', () => {
  it('blocks for safety with no content at all, streamed or not', async () => {
    const token = emulator.issueAccessToken();
    const blocked = { reply: '', finishReason: 'content_filter' };
    const whole = (await (await chat(hello({ emulator: blocked }), token)).json()) as {
      choices: { message: Record<string, unknown>; finish_reason: string }[];
    };
    expect(whole.choices[0]).toEqual({
      index: 0,
      message: { role: 'assistant' },
      finish_reason: 'content_filter',
    });
    const events = sseData(
      await (await chat(hello({ stream: true, emulator: blocked }), token)).text(),
    );
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
    expect(chunks.map((chunk) => chunk.choices[0])).toEqual([
      { index: 0, delta: { role: 'assistant' }, finish_reason: 'content_filter' },
    ]);
  });

  it('frames events with CRLF when asked, as Google does on some paths', async () => {
    const token = emulator.issueAccessToken();
    const text = await (
      await chat(
        hello({ stream: true, emulator: { reply: 'a b c', chunks: 3, lineEnding: 'crlf' } }),
        token,
      )
    ).text();
    const events = text.split('\r\n\r\n');
    expect(events.pop()).toBe('');
    expect(events).toHaveLength(4);
    for (const event of events) expect(event).toMatch(/^data: [^\r\n]+$/);
    expect(events.at(-1)).toBe('data: [DONE]');
  });

  it('streams several chunks, then usage when asked, then [DONE]', async () => {
    const token = emulator.issueAccessToken();
    const reply = 'The capital of France is Paris.';
    const response = await chat(
      hello({
        stream: true,
        stream_options: { include_usage: true },
        emulator: { reply, chunks: 5 },
      }),
      token,
    );
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = sseData(await response.text());
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
    const contentChunks = chunks.filter((chunk) => chunk.choices.length > 0);
    expect(contentChunks).toHaveLength(5);
    expect(contentChunks.map((chunk) => chunk.choices[0].delta.content).join('')).toBe(reply);
    expect(contentChunks[0].choices[0].delta.role).toBe('assistant');
    expect(contentChunks.at(-1).choices[0].finish_reason).toBe('stop');
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(chunks.at(-1).choices).toEqual([]);
    expect(chunks.at(-1).usage.total_tokens).toBeGreaterThan(0);
    expect(emulator.stats.completedStreams).toBe(1);
  });

  it('streams the default answer in several chunks that end at word boundaries', async () => {
    const token = emulator.issueAccessToken();
    const body = hello({ stream: true });
    const events = sseData(await (await chat(body, token)).text());
    const pieces = events
      .filter((event) => event !== '[DONE]')
      .map((event) => JSON.parse(event).choices[0]?.delta.content as string);
    expect(pieces.length).toBeGreaterThanOrEqual(6);
    expect(pieces.join('')).toBe(defaultAnswer(body));
    for (const piece of pieces.slice(0, -1)) expect(piece).toMatch(/\s$/);
  });

  it('omits the usage chunk unless include_usage is set, and can omit [DONE]', async () => {
    const token = emulator.issueAccessToken();
    const events = sseData(
      await (await chat(hello({ stream: true, emulator: { omitDone: true } }), token)).text(),
    );
    expect(events).not.toContain('[DONE]');
    expect(events.length).toBeGreaterThan(1);
    for (const event of events) expect(JSON.parse(event).usage).toBeUndefined();
  });

  it('produces byte-exact deterministic content for totalBytes', async () => {
    const token = emulator.issueAccessToken();
    const events = sseData(
      await (await chat(hello({ stream: true, emulator: { totalBytes: 100_000 } }), token)).text(),
    );
    const text = events
      .filter((event) => event !== '[DONE]')
      .map((event) => JSON.parse(event).choices[0]?.delta.content ?? '')
      .join('');
    expect(text.length).toBe(100_000);
    expect(text).toBe(deterministicText(100_000));
    expect(events.length).toBeGreaterThan(50);
  });

  it('sends an error event after N chunks and ends', async () => {
    const token = emulator.issueAccessToken();
    const events = sseData(
      await (
        await chat(
          hello({
            stream: true,
            emulator: { chunks: 4, errorEventAfterChunks: 2, message: 'boom' },
          }),
          token,
        )
      ).text(),
    );
    expect(events).toHaveLength(3);
    expect(JSON.parse(events[2] as string)).toEqual({
      error: { code: 500, message: 'boom', status: 'INTERNAL' },
    });
  });

  it('aborts the connection after N chunks, once those N have gone out', async () => {
    const token = emulator.issueAccessToken();
    // node:http hands over every byte that arrived before it reports the cut; a fetch body
    // stream may drop what it queued once it errors.
    const body = JSON.stringify(
      hello({ stream: true, emulator: { chunks: 4, abortAfterChunks: 2 } }),
    );
    const { received, cut } = await new Promise<{ received: string; cut: boolean }>((resolve) => {
      let text = '';
      const request = httpRequest(`${emulator.url}${CHAT_PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });
      request.on('response', (response) => {
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ received: text, cut: false }));
        response.on('error', () => resolve({ received: text, cut: true }));
        response.on('aborted', () => resolve({ received: text, cut: true }));
      });
      request.on('error', () => resolve({ received: text, cut: true }));
      request.end(body);
    });
    expect(cut).toBe(true);
    expect(sseData(received)).toHaveLength(2);
    await waitUntil(() => emulator.stats.abortedStreams === 1, 2000);
    expect(emulator.stats.cancelledStreams).toBe(0);
    expect(emulator.stats.clientDisconnects).toBe(0);
  });

  it('ends a stream cleanly inside an event after N chunks, for truncateAfterChunks', async () => {
    const token = emulator.issueAccessToken();
    const response = await chat(
      hello({ stream: true, emulator: { chunks: 4, truncateAfterChunks: 2 } }),
      token,
    );
    // The body ends without a network error: only its last event is cut.
    const text = await response.text();
    const events = text.split('\n\n');
    expect(events).toHaveLength(3);
    for (const event of events.slice(0, 2)) JSON.parse(event.slice('data: '.length));
    const cut = events[2] as string;
    expect(cut.startsWith('data: {')).toBe(true);
    expect(() => JSON.parse(cut.slice('data: '.length))).toThrow();
    expect(emulator.stats.abortedStreams).toBe(1);
    // Past the last chunk, the [DONE] event is the one cut.
    const whole = await (
      await chat(hello({ stream: true, emulator: { chunks: 2, truncateAfterChunks: 2 } }), token)
    ).text();
    expect(whole.endsWith('\n\ndata: [DO')).toBe(true);
    // With usage asked for, the usage event comes next, so it is the one cut.
    const withUsage = await (
      await chat(
        hello({
          stream: true,
          stream_options: { include_usage: true },
          emulator: { chunks: 2, truncateAfterChunks: 2 },
        }),
        token,
      )
    ).text();
    const last = withUsage.split('\n\n').at(-1) as string;
    expect(last.startsWith('data: {')).toBe(true);
    expect(last).not.toContain('choices":[{');
  });

  it('answers a stream request with a JSON completion, for streamAsJson', async () => {
    const token = emulator.issueAccessToken();
    const response = await chat(
      hello({ stream: true, emulator: { reply: 'plain', streamAsJson: true } }),
      token,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    const completion = (await response.json()) as Completion;
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0].message.content).toBe('plain');
  });

  it('sends half a JSON answer, then the rest after bodyStallMs', async () => {
    const token = emulator.issueAccessToken();
    const started = Date.now();
    const response = await chat(hello({ emulator: { reply: 'late', bodyStallMs: 300 } }), token);
    // The headers and half the body come first; the rest only after the stall.
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first.length).toBeGreaterThan(0);
    expect(() => JSON.parse(first)).toThrow();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      rest += new TextDecoder().decode(chunk.value);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect((JSON.parse(first + rest) as Completion).choices[0].message.content).toBe('late');
    // Or the connection is cut after the half.
    const cut = await chat(hello({ emulator: { reply: 'lost', cutBody: true } }), token);
    expect(cut.status).toBe(200);
    await expect(cut.text()).rejects.toThrow();
    // Errors stall the same way.
    const failed = await chat(hello({ emulator: { status: 429, bodyStallMs: 50 } }), token);
    expect(failed.status).toBe(429);
    expect(((await failed.json()) as GoogleErrorBody).error.code).toBe(429);
  });

  it('counts a client that leaves mid-stream as a cancelled stream', async () => {
    const token = emulator.issueAccessToken();
    const controller = new AbortController();
    const response = await fetch(`${emulator.url}${CHAT_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(hello({ stream: true, emulator: { chunks: 50, chunkDelayMs: 20 } })),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    expect(emulator.stats.openStreams).toBe(1);
    controller.abort();
    await waitUntil(() => emulator.stats.cancelledStreams === 1, 2000);
    expect(emulator.stats.openStreams).toBe(0);
    expect(emulator.stats.completedStreams).toBe(0);
    expect(emulator.stats.clientDisconnects).toBe(1);
  });
});

describe('recorded requests', () => {
  it('keeps at most 64 MiB of bodies, dropping the oldest, but always the newest', () => {
    const state = new EmulatorState({
      tokenTtlSeconds: 3599,
      acceptSelfSignedJwt: false,
      clockOffsetMs: 0,
      chunkDelayMs: 0,
    });
    const request = (bodyText: string) => ({
      method: 'POST',
      path: CHAT_PATH,
      params: { version: 'v1', project: 'p', location: 'global', endpoint: 'openapi' },
      headers: {},
      bodyText,
      body: undefined,
    });
    const mib = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 70; i++) state.record(request(mib));
    expect(state.requests).toHaveLength(64);
    expect(state.requests.at(-1)?.seq).toBe(70);
    const huge = state.record(request('y'.repeat(65 * 1024 * 1024)));
    expect(state.requests).toEqual([huge]);
    state.record(request('small'));
    expect(state.requests.map((recorded) => recorded.bodyText)).toEqual(['small']);
  });
});

describe('configured pacing', () => {
  it('pauses chunkDelayMs between chunks when a request does not say otherwise', async () => {
    emulator.configure({ chunkDelayMs: 40 });
    try {
      const token = emulator.issueAccessToken();
      const started = Date.now();
      const response = await fetch(`${emulator.url}${CHAT_PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(hello({ stream: true, emulator: { chunks: 5 } })),
      });
      await response.text();
      // Four pauses between five chunks, at the least.
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    } finally {
      emulator.configure({ chunkDelayMs: 0 });
    }
  });
});

describe('fault queue', () => {
  it('fails the next token exchanges, then recovers', async () => {
    emulator.faults.add({ target: 'token', status: 503, times: 2 });
    const jwt = await assertion(account);
    const failed = await exchange(jwt);
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: string }).error).toBe('temporarily_unavailable');
    expect((await exchange(jwt)).status).toBe(503);
    expect((await exchange(jwt)).status).toBe(200);
  });

  it('stalls the body of the next token answer, failed or not', async () => {
    emulator.faults.add({ target: 'token', bodyStallMs: 300 });
    const jwt = await assertion(account);
    const started = Date.now();
    const response = await exchange(jwt);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { access_token: string }).access_token).toBeTruthy();
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    emulator.faults.add({ target: 'token', status: 503, bodyStallMs: 50 });
    const failed = await exchange(jwt);
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: string }).error).toBe('temporarily_unavailable');
  });

  it('applies chat faults with custom bodies before the request directives', async () => {
    const token = emulator.issueAccessToken();
    emulator.faults.add({ target: 'chat', status: 500, body: { custom: true } });
    const faulted = await chat(hello({ emulator: { reply: 'fine' } }), token);
    expect(faulted.status).toBe(500);
    expect(await faulted.json()).toEqual({ custom: true });
    const next = (await (
      await chat(hello({ emulator: { reply: 'fine' } }), token)
    ).json()) as Completion;
    expect(next.choices[0].message.content).toBe('fine');
    expect(emulator.stats.faultsApplied).toBe(1);
  });
});

describe('admin API', () => {
  const admin = async <T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ) => {
    const response = await fetch(`${emulator.url}/__emulator/${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: response.status, body: (await response.json()) as T };
  };

  it('drives keys, tokens, config, faults, stats, requests and reset', async () => {
    const created = await admin<ServiceAccountKey>('POST', 'service-accounts', {
      projectId: 'other-project',
    });
    expect(created.body.client_email).toBe('gateway@other-project.iam.gserviceaccount.com');
    expect(created.body.token_uri).toBe(emulator.tokenUri);
    expect((await exchange(await assertion(created.body))).status).toBe(200);

    expect((await admin('POST', 'config', { tokenTtlSeconds: 120 })).body.tokenTtlSeconds).toBe(
      120,
    );
    const exchanged = (await (await exchange(await assertion(account))).json()) as {
      expires_in: number;
    };
    expect(exchanged.expires_in).toBe(120);

    const { body: issued } = await admin<{ access_token: string }>('POST', 'access-tokens', {
      ttlSeconds: 30,
    });
    expect((await chat(hello(), issued.access_token)).status).toBe(200);
    expect((await admin('POST', 'expire-tokens')).body.expired).toBeGreaterThan(0);
    expect((await chat(hello(), issued.access_token)).status).toBe(401);

    const fresh = emulator.issueAccessToken();
    expect((await admin('POST', 'faults', [{ target: 'chat', status: 503 }])).body.queued).toBe(1);
    expect((await admin('POST', 'faults', { target: 'nowhere' })).status).toBe(400);
    expect((await chat(hello(), fresh)).status).toBe(503);

    const stats = (await admin('GET', 'stats')).body;
    expect(stats).toMatchObject({
      tokenExchanges: 2,
      chatRequests: 3,
      chatErrors: 2,
      faultsApplied: 1,
      openStreams: 0,
    });
    expect((await admin('GET', 'requests')).body).toHaveLength(3);
    expect((await admin('POST', 'config', { tokenTtl: 1 })).status).toBe(400);

    await admin('POST', 'reset');
    expect((await admin('GET', 'stats')).body.chatRequests).toBe(0);
    expect((await admin('GET', 'requests')).body).toEqual([]);
    expect((await admin('GET', 'config')).body.tokenTtlSeconds).toBe(3599);
    expect((await admin('GET', 'nope')).status).toBe(404);
  });

  it('lists a request whose body is nested too deep to serialise, by its text', async () => {
    const token = emulator.issueAccessToken();
    const deep = `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}],"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    await chat(deep, token);
    const { status, body } = await admin<{ bodyText: string; body?: unknown }[]>('GET', 'requests');
    expect(status).toBe(200);
    expect(body).toHaveLength(1);
    expect(body[0]?.bodyText).toBe(deep);
    expect(body[0]?.body).toBeUndefined();
  });
});

describe('CLI', () => {
  // The emulator needs Node 22's type stripping; vitest itself may run under another node.
  const projectNode = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
  const node = existsSync(projectNode) ? projectNode : process.execPath;

  it('prints the ready line with the real port, writes a usable key, and exits on SIGTERM', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'vertex-emulator-'));
    const keyFile = join(keyDir, 'key.json');
    const child = spawn(
      node,
      [join(import.meta.dirname, 'main.ts'), '--port', '0', '--write-key', keyFile],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const [line] = (await Promise.race([
        once(child.stdout, 'data'),
        once(child, 'exit').then(([code]) => Promise.reject(new Error(`emulator exited: ${code}`))),
      ])) as [Buffer];
      const url = /^vertex-emulator listening on (http:\/\/127\.0\.0\.1:(\d+))\n$/.exec(
        line.toString(),
      )?.[1];
      expect(url).toBeDefined();
      expect(url).not.toMatch(/:0$/);
      const key = JSON.parse(readFileSync(keyFile, 'utf8')) as ServiceAccountKey;
      expect(key.token_uri).toBe(`${url}/token`);
      const response = await fetch(key.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
          assertion: await assertion(key),
        }),
      });
      expect(response.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      // The key file holds a private key, if only an emulator's: none is left behind.
      rmSync(keyDir, { recursive: true, force: true });
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
