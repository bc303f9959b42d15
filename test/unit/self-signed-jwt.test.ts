import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { createSelfSignedJwtSource, VERTEX_AUDIENCE } from '../../src/google/self-signed-jwt.ts';
import { parseServiceAccountKey } from '../../src/google/service-account-key.ts';
import { createSigningKey } from '../../src/google/signing-key.ts';
import { CHAT_BODY, GOOGLE_TOKEN, googleError, harness, post } from './gateway-harness.ts';
import { CLIENT_EMAIL, jsonResponse, keyFileJson, PRIVATE_KEY_ID, testKeyPair } from './helpers.ts';

const MINUTE = 60_000;
const START = Date.UTC(2026, 10, 25, 9, 0, 0);

/** Checks a bearer as Google would for AIP-4111: signed by the account's key, for Vertex. */
async function verifySelfSigned(jwt: string, atMs: number) {
  expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'RS256', typ: 'JWT', kid: PRIVATE_KEY_ID });
  const { payload } = await jwtVerify(jwt, testKeyPair().publicKey, {
    algorithms: ['RS256'],
    issuer: CLIENT_EMAIL,
    subject: CLIENT_EMAIL,
    audience: VERTEX_AUDIENCE,
    currentDate: new Date(atMs),
  });
  expect(payload.iat).toBe(Math.floor(atMs / 1000));
  expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
  return payload;
}

function source(now: () => number) {
  const key = parseServiceAccountKey(keyFileJson());
  const load = createSigningKey(key);
  let signatures = 0;
  const tokens = createSelfSignedJwtSource(key, {
    now,
    signingKey: () => {
      signatures++;
      return load();
    },
  });
  return { tokens, signatures: () => signatures };
}

describe('createSelfSignedJwtSource', () => {
  it('signs a JWT Google accepts for Vertex: iss = sub = client_email, kid, aud, one hour', async () => {
    const { tokens } = source(() => START);
    await verifySelfSigned(await tokens.getToken(), START);
  });

  it('signs once for a burst, and again 5 minutes before expiry without making anyone wait', async () => {
    let now = START;
    const { tokens, signatures } = source(() => now);
    const burst = await Promise.all(Array.from({ length: 25 }, () => tokens.getToken()));
    expect(new Set(burst).size).toBe(1);
    expect(signatures()).toBe(1);

    now = START + 55 * MINUTE - 1;
    expect(await tokens.getToken()).toBe(burst[0]);
    expect(signatures()).toBe(1);

    // Still good for five minutes: it serves at once while its successor is signed.
    now = START + 55 * MINUTE;
    expect(await tokens.getToken()).toBe(burst[0]);
    expect(signatures()).toBe(2);

    // A minute before expiry the old JWT is no longer sent; the one signed at 55 minutes is.
    now = START + 59 * MINUTE;
    const fresh = await tokens.getToken();
    expect(fresh).not.toBe(burst[0]);
    expect(signatures()).toBe(2);
    await verifySelfSigned(fresh, START + 55 * MINUTE);
  });
});

const isJwt = (authorization: string | null) => /^Bearer eyJ/.test(authorization ?? '');

describe('GOOGLE_AUTH_MODE=self-signed through the gateway', () => {
  it('sends the self-signed JWT to Vertex and never calls the token endpoint', async () => {
    const h = harness({ GOOGLE_AUTH_MODE: 'self-signed' }, undefined, undefined, {
      now: () => START,
    });
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () => post(h, '/v1/chat/completions').then((r) => r.status)),
    );
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(h.tokenCalls()).toHaveLength(0);
    const bearers = new Set(h.vertexCalls().map((call) => call.headers.get('authorization')));
    expect(bearers.size).toBe(1);
    const [bearer] = bearers;
    await verifySelfSigned((bearer ?? '').replace('Bearer ', ''), START);
  });

  it('falls back to the exchange on a 401, once per isolate, and the caller sees a 200', async () => {
    const lines: string[] = [];
    const h = harness(
      { GOOGLE_AUTH_MODE: 'self-signed' },
      (call) =>
        isJwt(call.headers.get('authorization'))
          ? googleError(401, 'UNAUTHENTICATED')
          : jsonResponse({ id: 'ok', object: 'chat.completion', choices: [] }),
      undefined,
      { log: (line) => lines.push(line) },
    );
    const first = await Promise.all(
      Array.from({ length: 5 }, () => post(h, '/v1/chat/completions').then((r) => r.status)),
    );
    expect(first).toEqual([200, 200, 200, 200, 200]);
    expect(h.tokenCalls()).toHaveLength(1);
    const jwtAttempts = h.vertexCalls().filter((c) => isJwt(c.headers.get('authorization')));
    expect(jwtAttempts.length).toBeGreaterThanOrEqual(1);

    // From now on the exchanged token goes first; the JWT is not tried again.
    const before = h.vertexCalls().length;
    expect((await post(h, '/v1/chat/completions', CHAT_BODY)).status).toBe(200);
    const after = h.vertexCalls().slice(before);
    expect(after.map((c) => c.headers.get('authorization'))).toEqual([`Bearer ${GOOGLE_TOKEN}`]);

    const warnings = lines.filter((line) => line.includes('self_signed_jwt_refused'));
    expect(warnings).toHaveLength(1);
    const jwt = jwtAttempts[0]?.headers.get('authorization')?.replace('Bearer ', '') ?? '';
    const all = lines.join('\n');
    for (const secret of [jwt, jwt.split('.')[2] ?? '', GOOGLE_TOKEN]) {
      expect(secret.length).toBeGreaterThan(10);
      expect(all).not.toContain(secret);
    }
  });
});
