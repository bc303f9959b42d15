import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { newKey } from '../../scripts/new-key.ts';
import { allowsModel, parseKeyPolicies } from '../../src/auth/key-policy.ts';
import { parseConfig } from '../../src/config.ts';
import { createEnvGateway } from '../../src/env-gateway.ts';
import { configError } from './gateway-harness.ts';
import { KEY_PROJECT, keyFileJson } from './helpers.ts';

const HASH = 'a'.repeat(64);
const entry = (fields: Record<string, unknown>) =>
  JSON.stringify([{ name: 'team-a', sha256: HASH, ...fields }]);

function problem(text: string): string {
  try {
    parseKeyPolicies(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected parseKeyPolicies to throw');
}

describe('parseKeyPolicies', () => {
  it('parses every field, normalising the hash and the model names', () => {
    const [policy] = parseKeyPolicies(
      entry({
        sha256: HASH.toUpperCase(),
        models: ['gemini-2.5-flash', 'gemini-2.0-*', 'meta/llama-3.3-70b-instruct-maas', '*'],
        projects: ['proj-1'],
        rpm: 60,
      }),
    );
    expect(policy).toEqual({
      name: 'team-a',
      sha256: HASH,
      models: [
        'google/gemini-2.5-flash',
        'google/gemini-2.0-*',
        'meta/llama-3.3-70b-instruct-maas',
        '*',
      ],
      projects: new Set(['proj-1']),
      rpm: 60,
    });
    expect(parseKeyPolicies('[]')).toEqual([]);
    expect(parseKeyPolicies(entry({}))[0]).toMatchObject({
      models: null,
      projects: null,
      rpm: null,
    });
  });

  it.each([
    ['{}', 'must be a JSON array'],
    ['not json', 'must be a JSON array'],
    ['[1]', 'entry 0 must be an object'],
    ['[{"sha256":"x"}]', 'entry 0 needs a "name"'],
    [JSON.stringify([{ name: 'has space', sha256: HASH }]), 'entry 0 needs a "name"'],
    [entry({ sha256: 'abc' }), 'entry "team-a" needs "sha256"'],
    [entry({ sha256: 'g'.repeat(64) }), 'entry "team-a" needs "sha256"'],
    [entry({ rpms: 5 }), 'entry "team-a" has an unknown field "rpms"'],
    [entry({ rpm: 0 }), '"rpm" that is not a whole number'],
    [entry({ rpm: 1.5 }), '"rpm" that is not a whole number'],
    [entry({ rpm: '60' }), '"rpm" that is not a whole number'],
    [entry({ models: 'gemini-2.5-flash' }), '"models" that is not a non-empty array'],
    [entry({ models: ['bad model'] }), '"models" that is not a non-empty array'],
    [entry({ models: ['**'] }), '"models" that is not a non-empty array'],
    [entry({ projects: ['Not_A_Project'] }), '"projects" that is not a non-empty array'],
    [entry({ projects: [] }), '"projects" that is not a non-empty array'],
    [entry({ models: [] }), '"models" that is not a non-empty array'],
    [
      JSON.stringify([
        { name: 'a', sha256: HASH },
        { name: 'a', sha256: 'b'.repeat(64) },
      ]),
      'two entries named "a"',
    ],
    [
      JSON.stringify([
        { name: 'a', sha256: HASH },
        { name: 'b', sha256: HASH.toUpperCase() },
      ]),
      'entry "b" has the same sha256',
    ],
  ])('refuses %s: %s', (text, expected) => {
    const message = problem(text);
    expect(message).toContain(expected);
    expect(message).not.toContain(HASH);
  });

  it('gives bare Gemini patterns the google/ prefix the requests get', () => {
    const [policy] = parseKeyPolicies(
      entry({ models: ['gemini*', 'gem*', 'gemini-2.5-*', 'claude*', 'meta/*', '*'] }),
    );
    expect(policy?.models).toEqual([
      'google/gemini*',
      'gemini*',
      'google/gem*',
      'gem*',
      'google/gemini-2.5-*',
      'claude*',
      'meta/*',
      '*',
    ]);
    if (!policy) throw new Error('no policy');
    expect(allowsModel(policy, 'google/gemini-2.0-flash')).toBe(true);
  });

  it('lets a short bare prefix match Gemini names and other bare names alike', () => {
    const [policy] = parseKeyPolicies(entry({ models: ['g*'] }));
    if (!policy) throw new Error('no policy');
    expect(allowsModel(policy, 'google/gemini-2.5-flash')).toBe(true);
    expect(allowsModel(policy, 'gemma-3-27b-it')).toBe(true);
    expect(allowsModel(policy, 'claude-sonnet-4@20250514')).toBe(false);
    expect(allowsModel(policy, 'meta/llama-4')).toBe(false);
    // Its bare form is for bare names: the "g" of google/ is no way in.
    expect(allowsModel(policy, 'google/imagen-4.0')).toBe(false);
    const [other] = parseKeyPolicies(entry({ models: ['m*'] }));
    if (!other) throw new Error('no policy');
    expect(allowsModel(other, 'mistral-large')).toBe(true);
    expect(allowsModel(other, 'meta/llama-4')).toBe(false);
  });

  it('matches models exactly, or by the prefix before a trailing *', () => {
    const [policy] = parseKeyPolicies(entry({ models: ['gemini-2.5-flash', 'meta/*'] }));
    if (!policy) throw new Error('no policy');
    expect(allowsModel(policy, 'google/gemini-2.5-flash')).toBe(true);
    expect(allowsModel(policy, 'google/gemini-2.5-flash-lite')).toBe(false);
    expect(allowsModel(policy, 'meta/llama-4')).toBe(true);
    expect(allowsModel(policy, 'metal/x')).toBe(false);
    const [any] = parseKeyPolicies(entry({ models: ['*'] }));
    if (!any) throw new Error('no policy');
    expect(allowsModel(any, 'anything/at-all')).toBe(true);
  });

  it('vouches only for plain model names, so a prefix cannot be walked out of', () => {
    const [policy] = parseKeyPolicies(entry({ models: ['google/gemini-2.5-flash*', '*'] }));
    if (!policy) throw new Error('no policy');
    for (const model of [
      'google/gemini-2.5-flash/../gemini-2.5-pro',
      'google/gemini-2.5-flash..',
      'google/gemini-2.5-flash/x',
      'google/.hidden',
      'google//gemini-2.5-flash',
      'google/gemini-2.5-flash\n',
      'google/gemini-2.5-flash?x=1',
    ]) {
      expect(allowsModel(policy, model), model).toBe(false);
    }
    expect(allowsModel(policy, 'google/gemini-2.5-flash-lite')).toBe(true);
    expect(allowsModel(policy, 'claude-sonnet-4@20250514')).toBe(true);
  });
});

describe('GATEWAY_KEYS and GOOGLE_AUTH_MODE in the configuration', () => {
  const withKey = { GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson() };

  it('names the variable and never the hash', () => {
    const error = configError({ ...withKey, GATEWAY_KEYS: entry({ sha256: `${HASH}0` }) });
    expect(error.variable).toBe('GATEWAY_KEYS');
    // Callers see only the variable; the operator's log gets the entry.
    expect(error.message).toBe('GATEWAY_KEYS is not a valid list of client keys');
    expect(error.detail).toContain('entry "team-a" needs "sha256"');
    expect(error.detail).not.toContain(HASH);
  });

  it('tells callers only that GATEWAY_KEYS is invalid, and the operator which entry and why', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const handler = createEnvGateway()({
        ...withKey,
        GATEWAY_KEYS: entry({ projects: ['secret-project'] }),
      });
      const response = await handler(
        new Request('http://gateway.test/v1/chat/completions', {
          headers: { 'x-request-id': 'caller-7' },
        }),
      );
      expect(response.status).toBe(500);
      // Still observable like any answer: the request id, timing and a log line.
      expect(response.headers.get('x-request-id')).toBe('caller-7');
      expect(response.headers.get('server-timing')).toMatch(/^gateway;dur=/);
      const body = await response.text();
      expect(body).toContain('GATEWAY_KEYS is not a valid list of client keys');
      expect(body).not.toContain('secret-project');
      expect(body).not.toContain('team-a');
      const logged = errors.mock.calls.map((call) => String(call[0])).join('\n');
      expect(logged).toContain('entry \\"team-a\\" lists project \\"secret-project\\"');
    } finally {
      errors.mockRestore();
    }
  });

  it('gives each answer of a misconfigured gateway its log line, and still answers health checks', async () => {
    const lines: string[] = [];
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const handler = createEnvGateway({ log: (line) => lines.push(line) })({
        ...withKey,
        GATEWAY_KEYS: entry({ projects: ['secret-project'] }),
      });
      const refused = await handler(
        new Request('http://gateway.test/v1/chat/completions', { method: 'POST' }),
      );
      expect(refused.status).toBe(500);
      const health = await handler(new Request('http://gateway.test/healthz'));
      expect(health.status).toBe(200);
      expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      const records = lines.map((line) => JSON.parse(line));
      expect(records).toMatchObject([
        { message: 'request', method: 'POST', status: 500, error_code: 'gateway_misconfigured' },
        { message: 'request', method: 'GET', status: 200 },
      ]);
      expect(records[0].request_id).toBe(refused.headers.get('x-request-id'));
      expect(records[1].error_code).toBeUndefined();
      expect(lines.join('\n')).not.toContain('secret-project');
    } finally {
      errors.mockRestore();
    }
  });

  it('needs a service account to serve hashed keys', () => {
    expect(configError({ GATEWAY_KEYS: entry({}) }).variable).toBe('GATEWAY_KEYS');
  });

  it('refuses a key project the gateway does not serve, but accepts the default project', () => {
    const error = configError({ ...withKey, GATEWAY_KEYS: entry({ projects: ['elsewhere'] }) });
    expect(error.message).not.toContain('elsewhere');
    expect(error.detail).toContain('"elsewhere"');
    expect(error.detail).toContain('VERTEX_ALLOWED_PROJECTS');
    const config = parseConfig({
      ...withKey,
      VERTEX_ALLOWED_PROJECTS: 'elsewhere',
      GATEWAY_KEYS: entry({ projects: ['elsewhere', KEY_PROJECT] }),
    });
    expect(config.keyPolicies[0]?.projects).toEqual(new Set(['elsewhere', KEY_PROJECT]));
  });

  it('defaults GOOGLE_AUTH_MODE to exchange and accepts self-signed with a service account', () => {
    expect(parseConfig(withKey).googleAuthMode).toBe('exchange');
    expect(parseConfig({ ...withKey, GOOGLE_AUTH_MODE: 'self-signed' }).googleAuthMode).toBe(
      'self-signed',
    );
    expect(configError({ ...withKey, GOOGLE_AUTH_MODE: 'jwt' }).message).toBe(
      'GOOGLE_AUTH_MODE must be "exchange" or "self-signed"',
    );
    expect(
      configError({ ALLOW_TOKEN_PASSTHROUGH: 'true', GOOGLE_AUTH_MODE: 'self-signed' }).variable,
    ).toBe('GOOGLE_AUTH_MODE');
  });
});

describe('npm run new-key', () => {
  it('prints a fresh random key whose SHA-256 is in a valid entry', () => {
    const first = newKey([
      'team-a',
      '--models',
      'gemini-2.5-*, google/gemini-2.5-pro',
      '--rpm',
      '30',
    ]);
    const second = newKey(['team-a']);
    expect(first.key).toMatch(/^vgw-[A-Za-z0-9_-]{43}$/);
    expect(second.key).not.toBe(first.key);
    expect(first.entry).toEqual({
      name: 'team-a',
      sha256: createHash('sha256').update(first.key).digest('hex'),
      models: ['gemini-2.5-*', 'google/gemini-2.5-pro'],
      rpm: 30,
    });
    expect(parseKeyPolicies(JSON.stringify([first.entry]))).toHaveLength(1);
  });

  it('adds up repeated --models and --projects flags', () => {
    const { entry } = newKey([
      'team-b',
      '--models',
      'gemini-2.5-flash',
      '--models',
      'gemini-2.5-pro,claude*,gemini-2.5-flash',
      '--projects',
      'project-one-1',
      '--projects',
      'project-two-2',
    ]);
    expect(entry.models).toEqual(['gemini-2.5-flash', 'gemini-2.5-pro', 'claude*']);
    expect(entry.projects).toEqual(['project-one-1', 'project-two-2']);
  });

  it.each([[[]], [['a', 'b']], [['bad name']], [['team', '--rpm', 'many']], [['t', '--bogus']]])(
    'refuses %j',
    (args) => {
      expect(() => newKey(args)).toThrow();
    },
  );
});
