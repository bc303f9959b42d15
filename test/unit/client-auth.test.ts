import { describe, expect, it } from 'vitest';
import { createClientAuthenticator } from '../../src/auth/client-auth.ts';
import { type Config, parseConfig } from '../../src/config.ts';
import { GatewayError } from '../../src/errors.ts';

function config(overrides: Partial<Config>): Config {
  return { ...parseConfig({ VERTEX_PROJECT: 'my-project' }), ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected the authenticator to reject');
}

const KEY_A = 'gw-key-alpha-5e1f';
const KEY_B = 'gw-key-bravo-77c0';

describe('createClientAuthenticator', () => {
  it('fails closed with 503 gateway_not_configured when neither keys nor passthrough are set', async () => {
    const authenticate = createClientAuthenticator(config({}));
    for (const header of [undefined, `Bearer ${KEY_A}`, 'Bearer ya29.token']) {
      const error = await rejection(authenticate(header));
      expect(error.status).toBe(503);
      expect(error.code).toBe('gateway_not_configured');
    }
  });

  describe('with gateway keys', () => {
    const authenticate = createClientAuthenticator(config({ clientKeys: [KEY_A, KEY_B] }));

    it.each([undefined, ''])('answers %j with 401 missing_api_key', async (header) => {
      const error = await rejection(authenticate(header));
      expect(error.status).toBe(401);
      expect(error.type).toBe('authentication_error');
      expect(error.code).toBe('missing_api_key');
    });

    it.each([
      'Bearer',
      'Bearer ',
      `Basic ${btoa(`user:${KEY_A}`)}`,
      KEY_A,
      `Bearer ${KEY_A} extra`,
      `Token ${KEY_A}`,
    ])('answers the malformed header %j with 401 invalid_api_key', async (header) => {
      const error = await rejection(authenticate(header));
      expect(error.status).toBe(401);
      expect(error.type).toBe('authentication_error');
      expect(error.code).toBe('invalid_api_key');
      expect(error.message).not.toContain(KEY_A);
    });

    it.each([
      'sk-wrong-key-d15t1nct',
      KEY_A.slice(0, -1),
      `${KEY_A}x`,
      KEY_A.toUpperCase(),
      `${KEY_A},${KEY_B}`,
    ])('answers a wrong key (%s) with 401 invalid_api_key without echoing it', async (key) => {
      const error = await rejection(authenticate(`Bearer ${key}`));
      expect(error.status).toBe(401);
      expect(error.type).toBe('authentication_error');
      expect(error.code).toBe('invalid_api_key');
      expect(error.message).not.toContain(key);
      expect(error.message).not.toContain('d15t1nct');
      expect(JSON.stringify(error.toJSON())).not.toContain(key);
    });

    it('accepts every configured key as the service account', async () => {
      await expect(authenticate(`Bearer ${KEY_A}`)).resolves.toEqual({
        kind: 'service-account',
        policy: null,
      });
      await expect(authenticate(`Bearer ${KEY_B}`)).resolves.toEqual({
        kind: 'service-account',
        policy: null,
      });
    });

    it('accepts any case of the scheme and surrounding blanks', async () => {
      await expect(authenticate(`bearer ${KEY_A}`)).resolves.toEqual({
        kind: 'service-account',
        policy: null,
      });
      await expect(authenticate(`BEARER \t${KEY_B}  `)).resolves.toEqual({
        kind: 'service-account',
        policy: null,
      });
    });
  });

  describe('with token passthrough', () => {
    it('turns an unknown bearer into a passthrough credential carrying the token', async () => {
      const authenticate = createClientAuthenticator(config({ allowTokenPassthrough: true }));
      await expect(authenticate('Bearer ya29.caller-google-token')).resolves.toEqual({
        kind: 'passthrough',
        accessToken: 'ya29.caller-google-token',
      });
    });

    it('still requires a bearer', async () => {
      const authenticate = createClientAuthenticator(config({ allowTokenPassthrough: true }));
      const error = await rejection(authenticate(undefined));
      expect(error.status).toBe(401);
      expect(error.code).toBe('missing_api_key');
    });

    it('lets a gateway key win over passthrough', async () => {
      const authenticate = createClientAuthenticator(
        config({ clientKeys: [KEY_A], allowTokenPassthrough: true }),
      );
      await expect(authenticate(`Bearer ${KEY_A}`)).resolves.toEqual({
        kind: 'service-account',
        policy: null,
      });
      await expect(authenticate('Bearer ya29.other')).resolves.toEqual({
        kind: 'passthrough',
        accessToken: 'ya29.other',
      });
    });
  });
});
