import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryRateLimiter } from '../../src/limits/memory-rate-limiter.ts';
import { waitUntil } from '../support/wait-until.ts';
import {
  CHAT_BODY,
  expectOpenAIError,
  GATEWAY_KEY,
  GOOGLE_TOKEN,
  googleError,
  harness,
  post,
} from './gateway-harness.ts';
import { jsonResponse, KEY_PROJECT } from './helpers.ts';

// Per-key policies from GATEWAY_KEYS, exercised through the whole gateway with a fake Google.

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

const TEAM_A = 'vgw-team-a-2b8c0d1e';
const TEAM_B = 'vgw-team-b-9f7e6d5c';
const LIMITED = 'vgw-limited-4a3b2c1d';

const KEYS = JSON.stringify([
  { name: 'team-a', sha256: sha256(TEAM_A), models: ['gemini-2.5-flash', 'google/gemini-2.0-*'] },
  { name: 'team-b', sha256: sha256(TEAM_B).toUpperCase(), projects: ['other-project'] },
  { name: 'limited', sha256: sha256(LIMITED), rpm: 2 },
]);

function governed(options: { now?: () => number; env?: Record<string, unknown> } = {}) {
  const lines: string[] = [];
  const h = harness(
    {
      GATEWAY_KEYS: KEYS,
      VERTEX_ALLOWED_PROJECTS: `${KEY_PROJECT},other-project`,
      MODEL_ALIASES: '{"fast":"gemini-2.5-flash","smart":"gemini-2.5-pro"}',
      ...options.env,
    },
    undefined,
    undefined,
    {
      log: (line) => lines.push(line),
      rateLimiter: createMemoryRateLimiter({ now: options.now }),
    },
  );
  const records = () =>
    lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((record) => record.message === 'request');
  return { ...h, lines, records };
}

const as = (key: string) => ({ authorization: `Bearer ${key}` });
const chatWith = (model: string) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
const VERTEX_PATH = (project: string) =>
  `/v1/projects/${project}/locations/us-central1/endpoints/openapi/chat/completions`;

describe('hashed client keys (GATEWAY_KEYS)', () => {
  it('admits the key whose SHA-256 is configured, alongside GATEWAY_API_KEYS', async () => {
    const h = governed();
    for (const key of [TEAM_A, LIMITED, GATEWAY_KEY]) {
      const response = await post(h, '/v1/chat/completions', CHAT_BODY, as(key));
      expect(response.status).toBe(200);
    }
    // Google sees the gateway's own token, never a client key.
    for (const call of h.vertexCalls()) {
      expect(call.headers.get('authorization')).toBe(`Bearer ${GOOGLE_TOKEN}`);
    }
  });

  it('refuses the hash presented as a key, and near misses', async () => {
    const h = governed();
    for (const key of [sha256(TEAM_A), `${TEAM_A}x`, TEAM_A.slice(0, -1), TEAM_A.toUpperCase()]) {
      const response = await post(h, '/v1/chat/completions', CHAT_BODY, as(key));
      await expectOpenAIError(response, 401, 'authentication_error', 'invalid_api_key');
    }
    expect(h.calls).toHaveLength(0);
  });

  it('names the key by its name in the log line, never by the key or its hash', async () => {
    const h = governed();
    await post(h, '/v1/chat/completions', CHAT_BODY, as(TEAM_A));
    await post(h, '/v1/chat/completions', CHAT_BODY, as(GATEWAY_KEY));
    await post(h, '/v1/chat/completions', CHAT_BODY, as('vgw-wrong-key'));
    const [named, plain, wrong] = h.records();
    expect(named?.key_name).toBe('team-a');
    expect(plain?.key_name).toBeUndefined();
    expect(wrong?.key_name).toBeUndefined();
    const all = h.lines.join('\n');
    for (const secret of [TEAM_A, sha256(TEAM_A), GATEWAY_KEY, 'vgw-wrong-key', GOOGLE_TOKEN]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe('a key in both GATEWAY_API_KEYS and GATEWAY_KEYS', () => {
  it('is held to its GATEWAY_KEYS policy', async () => {
    const h = governed({ env: { GATEWAY_API_KEYS: `${GATEWAY_KEY},${TEAM_A},${LIMITED}` } });
    const refused = await post(h, '/v1/chat/completions', chatWith('gemini-2.5-pro'), as(TEAM_A));
    await expectOpenAIError(refused, 403, 'permission_error', 'model_not_allowed');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED))).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(h.records().map((record) => record.key_name)).toEqual([
      'team-a',
      'limited',
      'limited',
      'limited',
    ]);
    // A plain key that no entry hashes to stays unrestricted.
    const plain = await post(
      h,
      '/v1/chat/completions',
      chatWith('gemini-2.5-pro'),
      as(GATEWAY_KEY),
    );
    expect(plain.status).toBe(200);
  });
});

describe('models policy', () => {
  it.each([
    ['gemini-2.5-flash', 'exact, after the google/ prefix'],
    ['google/gemini-2.5-flash', 'exact, already prefixed'],
    ['fast', 'through an alias'],
    ['gemini-2.0-flash-001', 'by a trailing * prefix'],
  ])('allows %s (%s)', async (model) => {
    const h = governed();
    const response = await post(h, '/v1/chat/completions', chatWith(model), as(TEAM_A));
    expect(response.status).toBe(200);
  });

  it.each([
    ['gemini-2.5-pro', "'gemini-2.5-pro' (google/gemini-2.5-pro)"],
    ['smart', "'smart' (google/gemini-2.5-pro)"],
    ['gemini-2.5-flash-lite', "'gemini-2.5-flash-lite' (google/gemini-2.5-flash-lite)"],
    ['meta/llama-3.3-70b-instruct-maas', "'meta/llama-3.3-70b-instruct-maas'"],
  ])('refuses %s with 403 and forwards nothing', async (model, named) => {
    const h = governed();
    const response = await post(h, '/v1/chat/completions', chatWith(model), as(TEAM_A));
    const error = await expectOpenAIError(response, 403, 'permission_error', 'model_not_allowed');
    expect(error.param).toBe('model');
    expect(error.message).toBe(`The key "team-a" may not use the model ${named}.`);
    expect(h.calls).toHaveLength(0);
    expect(h.records()[0]?.error_code).toBe('model_not_allowed');
  });

  it('keeps a key with a models list to the openapi endpoint', async () => {
    const h = governed();
    const selfDeployed = `/v1/projects/${KEY_PROJECT}/locations/us-central1/endpoints/1234567890/chat/completions`;
    const response = await post(h, selfDeployed, chatWith('gemini-2.5-flash'), as(TEAM_A));
    const error = await expectOpenAIError(
      response,
      403,
      'permission_error',
      'endpoint_not_allowed',
    );
    expect(error.message).toContain('openapi');
    expect(h.calls).toHaveLength(0);
    // A key without a models list may call a self-deployed endpoint.
    expect((await post(h, selfDeployed, CHAT_BODY, as(LIMITED))).status).toBe(200);
  });

  it('lists only the models a limited key may use', async () => {
    const h = governed();
    const list = async (key: string) => {
      const response = await h.app.request('/v1/models', { headers: as(key) });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { data: { id: string }[] };
      return body.data.map((entry) => entry.id);
    };
    expect(await list(TEAM_A)).toEqual(['google/gemini-2.5-flash', 'fast']);
    expect(await list(TEAM_B)).toEqual([
      'google/gemini-2.5-pro',
      'google/gemini-2.5-flash',
      'google/gemini-2.5-flash-lite',
      'fast',
      'smart',
    ]);
    const hidden = await h.app.request('/v1/models/smart', { headers: as(TEAM_A) });
    await expectOpenAIError(hidden, 404, 'not_found_error', 'model_not_found');
    const shown = await h.app.request('/v1/models/fast', { headers: as(TEAM_A) });
    expect(shown.status).toBe(200);
  });
});

/** The refusal of team-b's key, which is held to other projects, for `project`. */
async function expectTeamBRefused(response: Response, project: string): Promise<void> {
  const error = await expectOpenAIError(response, 403, 'permission_error', 'project_not_allowed');
  expect(error.message).toBe(`The key "team-b" may not use project "${project}".`);
}

describe('projects policy', () => {
  it('lets the key reach only its projects, by either route', async () => {
    const h = governed();
    const own = await post(h, VERTEX_PATH('other-project'), CHAT_BODY, as(TEAM_B));
    expect(own.status).toBe(200);
    for (const path of [VERTEX_PATH(KEY_PROJECT), '/v1/chat/completions']) {
      await expectTeamBRefused(await post(h, path, CHAT_BODY, as(TEAM_B)), KEY_PROJECT);
    }
    expect(h.vertexCalls()).toHaveLength(1);
    // A key without a projects list reaches what the gateway allows.
    expect((await post(h, VERTEX_PATH('other-project'), CHAT_BODY, as(TEAM_A))).status).toBe(200);
  });

  it('still refuses projects the gateway itself does not serve', async () => {
    const h = governed();
    const response = await post(h, VERTEX_PATH('third-project'), CHAT_BODY, as(TEAM_A));
    const error = await expectOpenAIError(response, 403, 'permission_error', 'project_not_allowed');
    expect(error.message).toMatch(/^This gateway does not serve project "third-project"/);
    expect(h.calls).toHaveLength(0);
  });

  it('does not tell a key held to some projects which others the gateway serves', async () => {
    const h = governed();
    // The key may use neither; one the gateway serves, one it does not: the same refusal.
    for (const project of [KEY_PROJECT, 'third-project']) {
      await expectTeamBRefused(await post(h, VERTEX_PATH(project), CHAT_BODY, as(TEAM_B)), project);
    }
    expect(h.calls).toHaveLength(0);
  });
});

describe('rpm limit', () => {
  it('says in the log when the counts are per isolate, and not when they are shared', () => {
    const perIsolate = governed();
    const warning = perIsolate.lines
      .map((line) => JSON.parse(line))
      .find((r) => r.level === 'warn');
    expect(warning?.event).toBe('rate_limits_per_isolate');

    const lines: string[] = [];
    const sharedStore = createMemoryRateLimiter();
    harness({ GATEWAY_KEYS: KEYS, VERTEX_ALLOWED_PROJECTS: '*' }, undefined, undefined, {
      log: (line) => lines.push(line),
      rateLimiter: { scope: 'shared', take: (key, rpm) => sharedStore.take(key, rpm) },
    });
    harness(
      { GATEWAY_KEYS: JSON.stringify([{ name: 'no-rpm', sha256: sha256('x') }]) },
      undefined,
      undefined,
      {
        log: (line) => lines.push(line),
      },
    );
    expect(lines).toEqual([]);
  });

  it("keeps one key's limit headers off another's answer when both share a failed token exchange", async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const h = harness(
      { GATEWAY_KEYS: KEYS, VERTEX_ALLOWED_PROJECTS: `${KEY_PROJECT},other-project` },
      undefined,
      async () => {
        await gate;
        return jsonResponse({ error: 'invalid_grant', error_description: 'Bad JWT.' }, 400);
      },
      { rateLimiter: createMemoryRateLimiter() },
    );
    const limited = post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED));
    const unlimited = post(h, '/v1/chat/completions', CHAT_BODY, as(TEAM_A));
    // The exchange is under way (the JWT signed, Google asked) and held open, so the other
    // request, sent at the same moment, joins it; then it fails for both.
    await waitUntil(() => h.tokenCalls().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    const [a, b] = await Promise.all([limited, unlimited]);
    expect(h.tokenCalls()).toHaveLength(1);
    expect([a.status, b.status]).toEqual([502, 502]);
    expect(a.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(b.headers.get('x-ratelimit-limit-requests')).toBeNull();
    expect(b.headers.get('x-ratelimit-remaining-requests')).toBeNull();
  });

  it('refuses the key at its limit with a truthful Retry-After, leaving other keys alone', async () => {
    let now = Date.UTC(2026, 10, 25, 12, 0, 10, 250);
    const h = governed({ now: () => now });
    for (let i = 0; i < 2; i++) {
      const response = await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED));
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2');
      expect(response.headers.get('x-ratelimit-remaining-requests')).toBe(String(1 - i));
    }
    const refused = await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED));
    const error = await expectOpenAIError(refused, 429, 'rate_limit_error', 'rate_limit_exceeded');
    // Admitted again from 12:01:11, 60.75 s away: the reset says 61 s, and Retry-After stops at
    // the 60 s the OpenAI SDKs still honour.
    expect(refused.headers.get('x-ratelimit-reset-requests')).toBe('61s');
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(error.message).toContain('limited to 2 requests per minute');
    expect(error.message).toContain('Try again in 61 s');
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(h.vertexCalls()).toHaveLength(2);
    expect(h.records().at(-1)).toMatchObject({ key_name: 'limited', status: 429 });

    // Another key, and the plain key, are not touched by this one's limit.
    for (const key of [TEAM_A, GATEWAY_KEY]) {
      expect((await post(h, '/v1/chat/completions', CHAT_BODY, as(key))).status).toBe(200);
    }
    // A client that waits the 60 s is told to wait one more; then it is admitted.
    now += 60_000;
    const early = await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED));
    expect(early.status).toBe(429);
    expect(early.headers.get('retry-after')).toBe('1');
    now += 1000;
    expect((await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED))).status).toBe(200);
  });

  it('reports the counted request on an upstream error too', async () => {
    const h = harness({ GATEWAY_KEYS: KEYS, VERTEX_ALLOWED_PROJECTS: '*' }, () =>
      googleError(400, 'INVALID_ARGUMENT'),
    );
    const response = await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED));
    expect(response.status).toBe(400);
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('1');
  });

  it('does not count requests refused for their own content', async () => {
    const h = governed();
    for (let i = 0; i < 5; i++) {
      const response = await post(h, '/v1/chat/completions', '{"model":1}', as(LIMITED));
      expect(response.status).toBe(400);
    }
    for (let i = 0; i < 2; i++) {
      expect((await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED))).status).toBe(200);
    }
    expect((await post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED))).status).toBe(429);
  });

  it('is shared by concurrent requests: exactly rpm of a burst get through', async () => {
    const h = governed();
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () =>
        post(h, '/v1/chat/completions', CHAT_BODY, as(LIMITED)).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(8);
  });
});
