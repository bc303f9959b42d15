import { generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { normalizePrivateKeyPem } from '../../src/google/pem.ts';
import { pemBody, testKeyPair } from './helpers.ts';

const ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

function importPkcs8(pem: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('pkcs8', Buffer.from(pemBody(pem), 'base64'), ALGORITHM, false, [
    'sign',
  ]);
}

async function signsVerifiably(pem: string): Promise<boolean> {
  const data = new TextEncoder().encode(`payload ${crypto.randomUUID()}`);
  const signature = await crypto.subtle.sign(ALGORITHM, await importPkcs8(pem), data);
  return verify('sha256', data, testKeyPair().publicKey, Buffer.from(signature));
}

describe('normalizePrivateKeyPem', () => {
  it('passes a PKCS#8 key through as the same PEM', async () => {
    const { pkcs8Pem } = testKeyPair();
    const out = normalizePrivateKeyPem(pkcs8Pem);
    expect(out).toBe(pkcs8Pem);
    expect(await signsVerifiably(out ?? '')).toBe(true);
  });

  it('undoes literal \\n and \\r\\n line breaks', () => {
    const { pkcs8Pem } = testKeyPair();
    expect(normalizePrivateKeyPem(pkcs8Pem.replace(/\n/g, '\\n'))).toBe(pkcs8Pem);
    expect(normalizePrivateKeyPem(pkcs8Pem.replace(/\n/g, '\\r\\n'))).toBe(pkcs8Pem);
    expect(normalizePrivateKeyPem(pkcs8Pem.replace(/\n/g, '\r\n'))).toBe(pkcs8Pem);
  });

  it('rewraps a PEM whose body is on one line, with surrounding text', () => {
    const { pkcs8Pem } = testKeyPair();
    const oneLine = `  -----BEGIN PRIVATE KEY-----${pemBody(pkcs8Pem)}-----END PRIVATE KEY-----\n\n`;
    const out = normalizePrivateKeyPem(oneLine);
    expect(out).toBe(pkcs8Pem);
    expect(out?.split('\n').every((line) => line.length <= 64)).toBe(true);
  });

  it('converts PKCS#1 to a PKCS#8 key that WebCrypto imports and that signs verifiably', async () => {
    const { pkcs1Pem, pkcs8Pem } = testKeyPair();
    expect(pkcs1Pem).toContain('-----BEGIN RSA PRIVATE KEY-----');
    const out = normalizePrivateKeyPem(pkcs1Pem);
    expect(out).not.toBeNull();
    expect(out).toContain('-----BEGIN PRIVATE KEY-----');
    expect(out).not.toContain('RSA PRIVATE KEY');
    // The same DER that node:crypto produces for this key as PKCS#8.
    expect(pemBody(out ?? '')).toBe(pemBody(pkcs8Pem));
    expect(await signsVerifiably(out ?? '')).toBe(true);
  });

  it('converts a PKCS#1 key with literal \\n', async () => {
    const out = normalizePrivateKeyPem(testKeyPair().pkcs1Pem.replace(/\n/g, '\\n'));
    expect(await signsVerifiably(out ?? '')).toBe(true);
  });

  it('converts a small PKCS#1 key whose DER lengths use the short form', () => {
    // 40 bytes shaped like PKCS#1 (a SEQUENCE of version 0 and an INTEGER): the wrapper must
    // use one-byte DER lengths.
    const der = new Uint8Array(40).fill(7);
    der.set([0x30, 38, 0x02, 0x01, 0x00, 0x02, 0x21]);
    const pkcs1 = `-----BEGIN RSA PRIVATE KEY-----\n${Buffer.from(der).toString('base64')}\n-----END RSA PRIVATE KEY-----`;
    const out = Buffer.from(pemBody(normalizePrivateKeyPem(pkcs1) ?? ''), 'base64');
    const expected = Buffer.concat([
      Buffer.from([0x30, 3 + 15 + 2 + 40, 0x02, 0x01, 0x00]),
      Buffer.from('300d06092a864886f70d0101010500', 'hex'),
      Buffer.from([0x04, 40]),
      Buffer.from(der),
    ]);
    expect(out.equals(expected)).toBe(true);
  });

  it.each([
    [
      'PKCS#8 armour around bytes that are not DER',
      `-----BEGIN PRIVATE KEY-----\n${btoa('not a DER sequence at all')}\n-----END PRIVATE KEY-----`,
    ],
    ['garbage', 'this is not a key'],
    ['empty', ''],
    [
      'a public key',
      '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----',
    ],
    [
      'an encrypted key',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG\n-----END ENCRYPTED PRIVATE KEY-----',
    ],
    [
      'an EC key',
      '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----',
    ],
    [
      'mismatched armour',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----',
    ],
    ['no END line', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n'],
    ['non-base64 body', '-----BEGIN PRIVATE KEY-----\nMIIE$vQIB*ADAN\n-----END PRIVATE KEY-----'],
    ['only the base64 body', pemBody(testKeyPair().pkcs8Pem)],
  ])('returns null for %s', (_name, input) => {
    expect(normalizePrivateKeyPem(input)).toBeNull();
  });

  it('returns null for a key that is not RSA, or lost a line on the way', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(
      normalizePrivateKeyPem(ec.export({ type: 'pkcs8', format: 'pem' }).toString()),
    ).toBeNull();
    for (const pem of [testKeyPair().pkcs8Pem, testKeyPair().pkcs1Pem]) {
      const lines = pem.trim().split('\n');
      expect(normalizePrivateKeyPem(pem)).not.toBeNull();
      // Every line of the body is 64 base64 characters, so the rest still decodes.
      const pasted = [...lines.slice(0, 5), ...lines.slice(6)].join('\n');
      expect(normalizePrivateKeyPem(pasted)).toBeNull();
    }
  });

  it('returns null for a PKCS#1 PEM whose body is not decodable base64', () => {
    expect(
      normalizePrivateKeyPem('-----BEGIN RSA PRIVATE KEY-----\nA\n-----END RSA PRIVATE KEY-----'),
    ).toBeNull();
  });
});
