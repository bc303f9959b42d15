/**
 * Shared fixtures for the unit suite: a fresh RSA key per test file (real crypto, never stubbed),
 * service-account key JSON built around it, and a recording fake fetch.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

export const KEY_PROJECT = 'key-project-4242';
export const CLIENT_EMAIL = 'edge-gateway@key-project-4242.iam.gserviceaccount.com';
export const PRIVATE_KEY_ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

export interface TestKeyPair {
  /** PKCS#8 PEM (`BEGIN PRIVATE KEY`). */
  pkcs8Pem: string;
  /** PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`) of the same key. */
  pkcs1Pem: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

let keyPair: TestKeyPair | null = null;

export function testKeyPair(): TestKeyPair {
  if (!keyPair) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    keyPair = {
      pkcs8Pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      pkcs1Pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      publicKey,
      privateKey,
    };
  }
  return keyPair;
}

export { pemBody } from '../support/pem-body.ts';

export function keyFileObject(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'service_account',
    project_id: KEY_PROJECT,
    private_key_id: PRIVATE_KEY_ID,
    private_key: testKeyPair().pkcs8Pem,
    client_email: CLIENT_EMAIL,
    client_id: '109876543210987654321',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: 'https://www.googleapis.com/robot/v1/metadata/x509/edge-gateway',
    universe_domain: 'googleapis.com',
    ...overrides,
  };
}

export function keyFileJson(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(keyFileObject(overrides));
}

export interface RecordedCall {
  url: string;
  method: string;
  headers: Headers;
  body: string;
  /** What the caller asked fetch to do with a redirect (this fake follows none itself). */
  redirect: RequestRedirect;
}

export type FakeHandler = (call: RecordedCall) => Response | Promise<Response>;

export interface FakeFetch {
  fetch: typeof fetch;
  calls: RecordedCall[];
}

/** A fetch that records every request (body read as text) and answers with `handler`. */
export function fakeFetch(handler: FakeHandler): FakeFetch {
  const calls: RecordedCall[] = [];
  const fn = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const call: RecordedCall = {
      url: request.url,
      method: request.method,
      headers: request.headers,
      body: await request.text(),
      redirect: request.redirect,
    };
    calls.push(call);
    return handler(call);
  };
  return { fetch: fn as typeof fetch, calls };
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A successful Google token response. */
export function tokenResponse(accessToken: string, expiresIn = 3599): Response {
  return jsonResponse({ access_token: accessToken, expires_in: expiresIn, token_type: 'Bearer' });
}

/** The form fields of a token-exchange request body. */
export function formFields(body: string): URLSearchParams {
  return new URLSearchParams(body);
}
