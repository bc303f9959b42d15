import { describe, expect, it } from 'vitest';
import { parseServiceAccountKey } from '../../src/google/service-account-key.ts';
import {
  CLIENT_EMAIL,
  GOOGLE_TOKEN_URI,
  KEY_PROJECT,
  keyFileJson,
  keyFileObject,
  PRIVATE_KEY_ID,
  pemBody,
  testKeyPair,
} from './helpers.ts';

function failure(raw: string): string {
  try {
    parseServiceAccountKey(raw);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected parseServiceAccountKey to throw');
}

describe('parseServiceAccountKey', () => {
  it('maps the key file fields', () => {
    const key = parseServiceAccountKey(keyFileJson());
    expect(key).toEqual({
      clientEmail: CLIENT_EMAIL,
      privateKeyId: PRIVATE_KEY_ID,
      privateKeyPem: testKeyPair().pkcs8Pem,
      projectId: KEY_PROJECT,
      tokenUri: GOOGLE_TOKEN_URI,
    });
  });

  it('tolerates surrounding whitespace and pretty-printed JSON', () => {
    const key = parseServiceAccountKey(`\n  ${JSON.stringify(keyFileObject(), null, 2)}\n`);
    expect(key.clientEmail).toBe(CLIENT_EMAIL);
  });

  it('decodes base64 and base64url, with or without line breaks', () => {
    const json = keyFileJson();
    for (const encoded of [
      Buffer.from(json).toString('base64'),
      Buffer.from(json).toString('base64url'),
      Buffer.from(json).toString('base64').replace(/.{60}/g, '$&\n'),
    ]) {
      expect(parseServiceAccountKey(encoded).privateKeyId).toBe(PRIVATE_KEY_ID);
    }
  });

  it('normalises PKCS#1 and literal \\n keys to the same PKCS#8 PEM', () => {
    const { pkcs1Pem, pkcs8Pem } = testKeyPair();
    for (const privateKey of [
      pkcs1Pem,
      pkcs1Pem.replace(/\n/g, '\\n'),
      pkcs8Pem.replace(/\n/g, '\\n'),
    ]) {
      expect(parseServiceAccountKey(keyFileJson({ private_key: privateKey })).privateKeyPem).toBe(
        pkcs8Pem,
      );
    }
  });

  it('defaults token_uri when missing or empty, and project to null when missing or empty', () => {
    for (const overrides of [
      { token_uri: undefined, project_id: undefined },
      { token_uri: '', project_id: '' },
    ]) {
      const key = parseServiceAccountKey(keyFileJson(overrides));
      expect(key.tokenUri).toBe(GOOGLE_TOKEN_URI);
      expect(key.projectId).toBeNull();
    }
  });

  it('keeps a loopback http token_uri for emulators', () => {
    const key = parseServiceAccountKey(keyFileJson({ token_uri: 'http://127.0.0.1:4000/token' }));
    expect(key.tokenUri).toBe('http://127.0.0.1:4000/token');
  });

  const cases: Array<[string, string, RegExp]> = [
    ['truncated JSON', '{"type":"service_account"', /neither JSON nor base64/],
    ['plain text', 'hello world', /neither JSON nor base64/],
    ['an authorized_user file', keyFileJson({ type: 'authorized_user' }), /"type"/],
    ['no client_email', keyFileJson({ client_email: undefined }), /client_email/],
    ['empty private_key_id', keyFileJson({ private_key_id: '' }), /private_key_id/],
    ['no private_key', keyFileJson({ private_key: undefined }), /private_key/],
    ['a private_key that is not PEM', keyFileJson({ private_key: 'MIIEvQIBADAN' }), /PEM/],
    [
      'an http token_uri',
      keyFileJson({ token_uri: 'http://oauth2.googleapis.com/token' }),
      /token_uri/,
    ],
  ];

  it.each(cases)('rejects %s with a message that explains it', (_name, raw, pattern) => {
    const message = failure(raw);
    expect(message).toMatch(pattern);
    expect(message).not.toContain(CLIENT_EMAIL);
    expect(message).not.toContain(PRIVATE_KEY_ID);
    expect(message).not.toContain(pemBody(testKeyPair().pkcs8Pem).slice(100, 120));
  });
});
