import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import {
  type AccessTokenSource,
  CLOUD_PLATFORM_SCOPE,
  createServiceAccountTokenSource,
  type KeepAlive,
} from '../../src/google/access-token.ts';
import { parseServiceAccountKey } from '../../src/google/service-account-key.ts';
import { waitUntil } from '../support/wait-until.ts';
import {
  CLIENT_EMAIL,
  type FakeHandler,
  fakeFetch,
  GOOGLE_TOKEN_URI,
  jsonResponse,
  keyFileJson,
  PRIVATE_KEY_ID,
  pemBody,
  type RecordedCall,
  testKeyPair,
  tokenResponse,
} from './helpers.ts';

const MINUTE = 60_000;

/** A settable clock starting at a real-looking instant. */
function clock(start = Date.UTC(2025, 5, 1, 12, 0, 0)) {
  let current = start;
  return {
    now: () => current,
    set: (ms: number) => {
      current = ms;
    },
    advance: (ms: number) => {
      current += ms;
    },
    start,
  };
}

/** Verifies the assertion exactly as Google would, with the real public key. */
async function verifyAssertion(call: RecordedCall, atMs: number) {
  expect(call.method).toBe('POST');
  expect(call.url).toBe(GOOGLE_TOKEN_URI);
  expect(call.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
  const form = new URLSearchParams(call.body);
  expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
  const assertion = form.get('assertion') ?? '';
  const header = decodeProtectedHeader(assertion);
  expect(header).toEqual({ alg: 'RS256', typ: 'JWT', kid: PRIVATE_KEY_ID });
  const { payload, protectedHeader } = await jwtVerify(assertion, testKeyPair().publicKey, {
    algorithms: ['RS256'],
    issuer: CLIENT_EMAIL,
    audience: GOOGLE_TOKEN_URI,
    currentDate: new Date(atMs),
  });
  expect(protectedHeader.kid).toBe(PRIVATE_KEY_ID);
  expect(payload.scope).toBe(CLOUD_PLATFORM_SCOPE);
  expect(payload.iat).toBe(Math.floor(atMs / 1000));
  expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
  return assertion;
}

function source(handler: FakeHandler, now = clock().now, key = keyFileJson()) {
  const fake = fakeFetch(handler);
  const delays: number[] = [];
  const tokens = createServiceAccountTokenSource(parseServiceAccountKey(key), {
    fetch: fake.fetch,
    now,
    random: () => 0.5,
    sleep: async (ms) => void delays.push(ms),
  });
  return { tokens, calls: fake.calls, delays };
}

async function rejection(tokens: AccessTokenSource): Promise<GatewayError> {
  try {
    await tokens.getToken();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected getToken to reject');
}

describe('createServiceAccountTokenSource', () => {
  it('exchanges a correctly signed RS256 assertion for the access token', async () => {
    const time = clock();
    let verified = 0;
    const { tokens, calls } = source(async (call) => {
      await verifyAssertion(call, time.now());
      verified++;
      return tokenResponse('ya29.first');
    }, time.now);
    await expect(tokens.getToken()).resolves.toBe('ya29.first');
    expect(calls).toHaveLength(1);
    expect(verified).toBe(1);
  });

  it('signs with a PKCS#1 key that was converted on load', async () => {
    const time = clock();
    const { tokens } = source(
      async (call) => {
        await verifyAssertion(call, time.now());
        return tokenResponse('ya29.pkcs1');
      },
      time.now,
      keyFileJson({ private_key: testKeyPair().pkcs1Pem }),
    );
    await expect(tokens.getToken()).resolves.toBe('ya29.pkcs1');
  });

  it('caches the token: a second call makes no fetch', async () => {
    const { tokens, calls } = source(() => tokenResponse(`ya29.n${calls.length}`));
    const first = await tokens.getToken();
    const second = await tokens.getToken();
    expect(first).toBe('ya29.n1');
    expect(second).toBe('ya29.n1');
    expect(calls).toHaveLength(1);
  });

  it('shares one exchange among 40 concurrent cold calls', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { tokens, calls } = source(async () => {
      await gate;
      return tokenResponse('ya29.shared');
    });
    const pending = Array.from({ length: 40 }, () => tokens.getToken());
    // Let every caller reach the token source before the exchange answers.
    await new Promise((resolve) => setTimeout(resolve, 0));
    release();
    const results = await Promise.all(pending);
    expect(new Set(results)).toEqual(new Set(['ya29.shared']));
    expect(calls).toHaveLength(1);
  });

  it('refreshes five minutes before expiry, by the injected clock, without making anyone wait', async () => {
    const time = clock();
    const { tokens, calls } = source(async (call) => {
      await verifyAssertion(call, time.now());
      return tokenResponse(`ya29.gen${calls.length}`, 3599);
    }, time.now);
    expect(await tokens.getToken()).toBe('ya29.gen1');
    time.set(time.start + 54 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.gen1');
    expect(calls).toHaveLength(1);
    // The first caller after the refresh point still gets the valid token and starts the refresh.
    time.set(time.start + 55 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.gen1');
    await waitUntil(async () => (await tokens.getToken()) === 'ya29.gen2');
    expect(calls).toHaveLength(2);
    // The new token is cached relative to when it was fetched.
    time.advance(54 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.gen2');
    expect(calls).toHaveLength(2);
  });

  it('uses expires_in rather than a fixed lifetime', async () => {
    const time = clock();
    const { tokens, calls } = source(
      () => tokenResponse(`ya29.short${calls.length}`, 900),
      time.now,
    );
    await tokens.getToken();
    time.advance(9 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.short1');
    expect(calls).toHaveLength(1);
    time.advance(1 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.short1');
    // Within a minute of its expiry a token is no longer handed out: the caller waits instead.
    time.advance(4 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.short2');
  });

  it('keeps serving the valid token while the early refresh fails, and takes the next one', async () => {
    const time = clock();
    let endpointUp = true;
    const { tokens, calls } = source(
      () =>
        endpointUp
          ? tokenResponse(`ya29.gen${calls.length}`, 3599)
          : jsonResponse({ error: 'temporarily_unavailable' }, 503),
      time.now,
    );
    expect(await tokens.getToken()).toBe('ya29.gen1');
    endpointUp = false;
    time.set(time.start + 56 * MINUTE);
    for (let i = 0; i < 5; i++) expect(await tokens.getToken()).toBe('ya29.gen1');
    await waitUntil(() => calls.length >= 3);
    for (let i = 0; i < 5; i++) expect(await tokens.getToken()).toBe('ya29.gen1');
    // Once the token is within a minute of expiry, the outage reaches the caller.
    time.set(time.start + 59 * MINUTE);
    await waitUntil(
      async () => (await tokens.getToken().catch((e: GatewayError) => e.status)) === 503,
    );
    endpointUp = true;
    await expect(tokens.getToken()).resolves.toMatch(/^ya29\.gen\d+$/);
    expect(await tokens.getToken()).not.toBe('ya29.gen1');
  });

  it('reports a failed early refresh, and pauses before the next instead of one per request', async () => {
    const time = clock();
    const failures: unknown[] = [];
    const fake = fakeFetch(() =>
      fake.calls.length === 1
        ? tokenResponse('ya29.first', 3599)
        : jsonResponse(
            { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
            400,
          ),
    );
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: fake.fetch,
      now: time.now,
      onRefreshFailed: (error) => failures.push(error),
    });
    expect(await tokens.getToken()).toBe('ya29.first');
    time.set(time.start + 56 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.first');
    await waitUntil(() => failures.length === 1);
    expect((failures[0] as GatewayError).message).toContain('Invalid JWT Signature.');
    // keepAlive learns of each start at once, before its fetch: none may start in the pause.
    const started: Promise<unknown>[] = [];
    const keepAlive = { waitUntil: (work: Promise<unknown>) => void started.push(work) };
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      for (let i = 0; i < 50; i++) expect(await tokens.getToken(keepAlive)).toBe('ya29.first');
      expect(started).toHaveLength(0);
      vi.setSystemTime(Date.now() + 5000);
      expect(await tokens.getToken(keepAlive)).toBe('ya29.first');
      expect(started).toHaveLength(1);
      await started[0];
      expect(failures).toHaveLength(2);
      expect(fake.calls).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps each exchange it starts alive with the caller's keepAlive, the one behind it too", async () => {
    const time = clock();
    const { tokens, calls } = source(
      () => tokenResponse(`ya29.gen${calls.length}`, 3599),
      time.now,
    );
    const kept: Promise<unknown>[] = [];
    const keepAlive = { waitUntil: (work: Promise<unknown>) => void kept.push(work) };
    expect(await tokens.getToken(keepAlive)).toBe('ya29.gen1');
    expect(kept).toHaveLength(1);
    expect(await tokens.getToken(keepAlive)).toBe('ya29.gen1');
    expect(kept).toHaveLength(1);
    time.set(time.start + 56 * MINUTE);
    expect(await tokens.getToken(keepAlive)).toBe('ya29.gen1');
    expect(kept).toHaveLength(2);
    await kept[1];
    expect(await tokens.getToken(keepAlive)).toBe('ya29.gen2');
    expect(kept).toHaveLength(2);
  });

  it('reports a refresh failure only while the old token still serves', async () => {
    const time = clock();
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const failures: unknown[] = [];
    const fake = fakeFetch(async () => {
      if (fake.calls.length === 1) return tokenResponse('ya29.first', 3599);
      await held;
      return jsonResponse({ error: 'invalid_grant' }, 400);
    });
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: fake.fetch,
      now: time.now,
      onRefreshFailed: (error) => failures.push(error),
    });
    const kept: Promise<unknown>[] = [];
    const keepAlive = { waitUntil: (work: Promise<unknown>) => void kept.push(work) };
    await tokens.getToken();
    time.set(time.start + 56 * MINUTE);
    expect(await tokens.getToken(keepAlive)).toBe('ya29.first');
    // By the time it fails, the old token is in its last minute: its waiters get the error.
    time.set(time.start + 59 * MINUTE + 30_000);
    const waiter = rejection(tokens);
    release();
    expect((await waiter).code).toBe('token_exchange_failed');
    await kept[0];
    expect(failures).toEqual([]);
  });

  it('survives a log sink that throws and a keepAlive that cannot keep anything', async () => {
    const time = clock();
    const fake = fakeFetch(() =>
      fake.calls.length === 1
        ? tokenResponse('ya29.first', 3599)
        : jsonResponse({ error: 'invalid_grant' }, 400),
    );
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: fake.fetch,
      now: time.now,
      onRefreshFailed: () => {
        throw new Error('the sink broke');
      },
    });
    const kept: Promise<unknown>[] = [];
    await tokens.getToken();
    time.set(time.start + 56 * MINUTE);
    expect(await tokens.getToken({ waitUntil: (work) => void kept.push(work) })).toBe('ya29.first');
    // Settles, where a throwing sink would have left a rejection nobody handles.
    await expect(kept[0]).resolves.toBeUndefined();
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 5001 });
    try {
      const broken = { waitUntil: 'not a function' } as unknown as KeepAlive;
      expect(await tokens.getToken(broken)).toBe('ya29.first');
      await waitUntil(() => fake.calls.length === 3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not hold callers on an early refresh that hangs', async () => {
    const time = clock();
    const fake = fakeFetch(() =>
      fake.calls.length === 1 ? tokenResponse('ya29.first', 3599) : new Promise<Response>(() => {}),
    );
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: fake.fetch,
      now: time.now,
      timeoutMs: 50,
    });
    expect(await tokens.getToken()).toBe('ya29.first');
    time.set(time.start + 56 * MINUTE);
    const served = await Promise.all([tokens.getToken(), tokens.getToken(), tokens.getToken()]);
    expect(served).toEqual(['ya29.first', 'ya29.first', 'ya29.first']);
    // One refresh for all of them, still under way.
    await waitUntil(() => fake.calls.length === 2);
    expect(fake.calls).toHaveLength(2);
    // Within a minute of expiry the old token is not sent: the caller waits, and here times out.
    time.set(time.start + 59 * MINUTE);
    expect((await rejection(tokens)).status).toBe(504);
  });

  it('does not cache a failed exchange: the next call fetches again and succeeds', async () => {
    const { tokens, calls } = source(() =>
      calls.length === 1
        ? jsonResponse({ error: 'invalid_grant', error_description: 'Clock skew.' }, 400)
        : tokenResponse('ya29.retry'),
    );
    const error = await rejection(tokens);
    expect(error.code).toBe('token_exchange_failed');
    await expect(tokens.getToken()).resolves.toBe('ya29.retry');
    expect(calls).toHaveLength(2);
    await expect(tokens.getToken()).resolves.toBe('ya29.retry');
    expect(calls).toHaveLength(2);
  });

  it("maps invalid_grant to 502 token_exchange_failed with Google's reason and no secrets", async () => {
    let assertion = '';
    const { tokens } = source((call) => {
      assertion = new URLSearchParams(call.body).get('assertion') ?? '';
      return jsonResponse(
        { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
        400,
      );
    });
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    expect(error.type).toBe('api_error');
    expect(error.code).toBe('token_exchange_failed');
    expect(error.message).toContain('Invalid JWT Signature.');
    expect(error.message).toContain('invalid_grant');
    const [jwtHeader, jwtPayload, jwtSignature] = assertion.split('.');
    for (const part of [jwtHeader, jwtPayload, jwtSignature?.slice(0, 24)]) {
      expect(part?.length).toBeGreaterThan(10);
      expect(error.message).not.toContain(part);
    }
    const keyBody = pemBody(testKeyPair().pkcs8Pem);
    for (let i = 0; i < keyBody.length - 16; i += 97) {
      expect(error.message).not.toContain(keyBody.slice(i, i + 16));
    }
    expect(JSON.stringify(error.toJSON())).not.toContain(assertion);
  });

  it('maps a 400 without a JSON body to 502', async () => {
    const { tokens } = source(() => new Response('<html>bad</html>', { status: 400 }));
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    expect(error.code).toBe('token_exchange_failed');
  });

  it.each([
    ['HTTP 503', () => jsonResponse({ error: 'backend_error' }, 503)],
    ['temporarily_unavailable', () => jsonResponse({ error: 'temporarily_unavailable' }, 400)],
    ['503 with no body', () => new Response(null, { status: 503 })],
  ])('maps %s to 503', async (_name, answer) => {
    const { tokens } = source(answer);
    const error = await rejection(tokens);
    expect(error.status).toBe(503);
    expect(error.code).toBe('token_exchange_failed');
  });

  it('maps a network failure to 502 after retrying it twice', async () => {
    const { tokens, calls, delays } = source(() => {
      throw new TypeError('fetch failed: connect ECONNREFUSED');
    });
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    expect(error.code).toBe('token_exchange_failed');
    expect(calls).toHaveLength(3);
    expect(delays).toEqual([125, 250]);
    expect(error.message).not.toContain('ECONNREFUSED');
  });

  it.each([
    ['HTTP 500', () => jsonResponse({ error: 'internal_failure' }, 500)],
    ['HTTP 503', () => new Response(null, { status: 503 })],
    ['HTTP 429', () => jsonResponse({ error: 'rate_limit_exceeded' }, 429)],
    ['HTTP 408', () => new Response(null, { status: 408 })],
    ['temporarily_unavailable', () => jsonResponse({ error: 'temporarily_unavailable' }, 400)],
  ])('retries a transient failure (%s) with backoff and then succeeds', async (_name, fail) => {
    const { tokens, calls, delays } = source(() =>
      calls.length <= 2 ? fail() : tokenResponse('ya29.after-retries'),
    );
    await expect(tokens.getToken()).resolves.toBe('ya29.after-retries');
    expect(calls).toHaveLength(3);
    // Full jitter with random() = 0.5: half of 250 ms, then half of 500 ms.
    expect(delays).toEqual([125, 250]);
  });

  it("honours the token endpoint's Retry-After", async () => {
    const { tokens, calls, delays } = source(() =>
      calls.length === 1
        ? jsonResponse({ error: 'rate_limit_exceeded' }, 429, { 'retry-after': '2' })
        : tokenResponse('ya29.later'),
    );
    await expect(tokens.getToken()).resolves.toBe('ya29.later');
    expect(delays).toEqual([2000]);
  });

  it('does not retry invalid_grant: it would fail the same way again', async () => {
    const { tokens, calls, delays } = source(() =>
      jsonResponse({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }, 400),
    );
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    expect(calls).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it('gives up without waiting when Retry-After is beyond its deadline', async () => {
    const { tokens, calls, delays } = source(() =>
      jsonResponse({ error: 'temporarily_unavailable' }, 503, { 'retry-after': '60' }),
    );
    const error = await rejection(tokens);
    expect(error.status).toBe(503);
    expect(error.message).toContain('temporarily_unavailable');
    expect(calls).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it.each([
    ['no access_token', { expires_in: 3599 }],
    ['empty access_token', { access_token: '', expires_in: 3599 }],
    ['no expires_in', { access_token: 'ya29.x' }],
    ['zero expires_in', { access_token: 'ya29.x', expires_in: 0 }],
  ])('rejects a 200 with %s instead of caching it', async (_name, body) => {
    const { tokens, calls } = source(() => jsonResponse(body));
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    await rejection(tokens);
    expect(calls).toHaveLength(2);
  });

  it('invalidate(token) drops the cached token so the next call exchanges again', async () => {
    const { tokens, calls } = source(() => tokenResponse(`ya29.v${calls.length}`));
    expect(await tokens.getToken()).toBe('ya29.v1');
    tokens.invalidate('ya29.v1');
    expect(await tokens.getToken()).toBe('ya29.v2');
    expect(calls).toHaveLength(2);
  });

  it('invalidate ignores a token that is not the cached one', async () => {
    const { tokens, calls } = source(() => tokenResponse(`ya29.v${calls.length}`));
    expect(await tokens.getToken()).toBe('ya29.v1');
    tokens.invalidate('ya29.someone-else');
    expect(await tokens.getToken()).toBe('ya29.v1');
    expect(calls).toHaveLength(1);
  });

  it("posts to the key's own token_uri", async () => {
    const fake = fakeFetch(() => tokenResponse('ya29.local'));
    const tokens = createServiceAccountTokenSource(
      parseServiceAccountKey(keyFileJson({ token_uri: 'http://127.0.0.1:4999/token' })),
      { fetch: fake.fetch },
    );
    await tokens.getToken();
    expect(fake.calls[0]?.url).toBe('http://127.0.0.1:4999/token');
    const assertion = new URLSearchParams(fake.calls[0]?.body).get('assertion') ?? '';
    const { payload } = await jwtVerify(assertion, testKeyPair().publicKey, {
      audience: 'http://127.0.0.1:4999/token',
    });
    expect(payload.iss).toBe(CLIENT_EMAIL);
  });

  it('stops waiting on an exchange that never settles and starts its own', async () => {
    // On Workers, a shared exchange dies with the request that started it; model that as a
    // fetch that never answers and ignores its abort signal.
    const fake = fakeFetch((call) =>
      fake.calls.length === 1
        ? new Promise<Response>(() => {})
        : tokenResponse(`ya29.after-${call.method}`),
    );
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: fake.fetch,
      timeoutMs: 50,
    });
    const waiters = await Promise.all([tokens.getToken(), tokens.getToken(), tokens.getToken()]);
    expect(waiters).toEqual(['ya29.after-POST', 'ya29.after-POST', 'ya29.after-POST']);
    // One stalled exchange, then exactly one replacement shared by every waiter.
    expect(fake.calls).toHaveLength(2);
  });

  it('waits for a shared exchange until its own deadline has ended it: one exchange, not two', async () => {
    // A fetch that honours its abort signal, as real ones do, and otherwise never answers.
    const hanging: typeof fetch = (_input, init) => {
      calls++;
      return new Promise((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      });
    };
    let calls = 0;
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: hanging,
      timeoutMs: 300,
    });
    const errors = await Promise.all([rejection(tokens), rejection(tokens)]);
    expect(errors.map((error) => error.status)).toEqual([504, 504]);
    expect(calls).toBe(1);
  });

  it('gives up with 504 when no exchange answers in time', async () => {
    const fake = fakeFetch(() => new Promise<Response>(() => {}));
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: fake.fetch,
      timeoutMs: 20,
    });
    const error = await rejection(tokens);
    expect(error.status).toBe(504);
    expect(error.code).toBe('token_exchange_failed');
  });

  it('reports a token endpoint slower than its timeout as 504', async () => {
    // A fetch that honours its abort signal, as real ones do, and otherwise never answers.
    const hanging: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      });
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: hanging,
      timeoutMs: 30,
    });
    const error = await rejection(tokens);
    expect(error.status).toBe(504);
    expect(error.message).toContain('did not answer in time');
  });

  it('reports a token answer whose body stalls past the deadline as 504, not as a bad answer', async () => {
    const stalling: typeof fetch = async (_input, init) =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"access_token":"ya29.'));
            init?.signal?.addEventListener('abort', () => controller.error(init.signal?.reason));
          },
        }),
        { status: 200 },
      );
    const tokens = createServiceAccountTokenSource(parseServiceAccountKey(keyFileJson()), {
      fetch: stalling,
      timeoutMs: 100,
    });
    const error = await rejection(tokens);
    expect(error.status).toBe(504);
    expect(error.message).toContain('did not answer in time');
  });

  it('does not trust an endless expires_in', async () => {
    const time = clock();
    const { tokens, calls } = source(
      () => jsonResponse({ access_token: `ya29.n${calls.length}`, expires_in: '1e400' }),
      time.now,
    );
    expect(await tokens.getToken()).toBe('ya29.n1');
    time.advance(13 * 60 * MINUTE);
    expect(await tokens.getToken()).toBe('ya29.n2');
  });

  it.each([
    ['429', () => jsonResponse({ error: 'rate_limit_exceeded' }, 429, { 'retry-after': '7' }), 503],
    ['400 server_error', () => jsonResponse({ error: 'server_error' }, 400), 502],
    ['408', () => jsonResponse({ error: 'request_timeout' }, 408), 502],
  ])(
    'describes a transient failure (%s) that outlasts the retries as an outage, not a refusal',
    async (_name, answer, status) => {
      const { tokens, calls } = source(answer);
      const error = await rejection(tokens);
      expect(calls).toHaveLength(3);
      expect(error.status).toBe(status);
      expect(error.message).toContain('the token endpoint answered HTTP');
      expect(error.message).not.toContain('refused');
      expect(error.headers['retry-after']).toBe(status === 503 ? '7' : undefined);
    },
  );

  it('keeps an unreadable Retry-After off the 503', async () => {
    const { tokens } = source(() =>
      jsonResponse({ error: 'temporarily_unavailable' }, 503, { 'retry-after': 'soon' }),
    );
    const error = await rejection(tokens);
    expect(error.status).toBe(503);
    expect(error.headers).toEqual({});
  });

  it('quotes no oversized or odd error code', async () => {
    for (const code of ['x'.repeat(1000), 'bad code\n<script>']) {
      const { tokens } = source(() => jsonResponse({ error: code, error_description: 'd' }, 400));
      const error = await rejection(tokens);
      expect(error.status).toBe(502);
      expect(error.message).not.toContain(code.slice(0, 65));
      expect(error.message).not.toContain('script');
    }
  });

  it('reads no more than the start of an endless token answer', async () => {
    let served = 0;
    const { tokens } = source(
      () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              // Only a reader that stops early gets an answer at all.
              served++;
              controller.enqueue(new TextEncoder().encode(`{"error":"${'x'.repeat(65536)}`));
            },
          }),
          { status: 400 },
        ),
    );
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    expect(served).toBeLessThan(5);
  });

  it('describes a token endpoint outage as an outage, not a refusal', async () => {
    const { tokens } = source(() => new Response('<html>oops</html>', { status: 500 }));
    const error = await rejection(tokens);
    expect(error.status).toBe(502);
    expect(error.message).toContain('HTTP 500');
    expect(error.message).not.toContain('refused');
  });
});

describe('the signing key', () => {
  it('is imported once per token source, however many assertions it signs', async () => {
    // A spy that calls through: the real WebCrypto import still runs.
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    try {
      const { tokens, calls } = source(() => tokenResponse(`ya29.k${calls.length}`));
      for (let i = 1; i <= 3; i++) {
        const token = await tokens.getToken();
        expect(token).toBe(`ya29.k${i}`);
        tokens.invalidate(token);
      }
      expect(calls).toHaveLength(3);
      expect(importKey.mock.calls.filter(([format]) => format === 'pkcs8')).toHaveLength(1);
    } finally {
      importKey.mockRestore();
    }
  });
});
