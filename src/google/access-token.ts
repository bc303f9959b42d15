import { importPKCS8, SignJWT } from 'jose';
import { GatewayError } from '../errors.ts';
import type { ServiceAccountKey } from './service-account-key.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// Google's Node library refreshes this long before expiry; so do we.
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
const ASSERTION_LIFETIME_S = 3600;

export interface AccessTokenSource {
  /** A valid Google access token, from the cache or one fresh exchange shared by all callers. */
  getToken(): Promise<string>;
  /** Forget `token` if it is the cached one (Vertex said it is no longer valid). */
  invalidate(token: string): void;
}

export interface TokenSourceOptions {
  fetch?: typeof fetch;
  now?: () => number;
  /** Bounds one exchange so a stalled token endpoint cannot hold requests forever. */
  timeoutMs?: number;
}

interface CachedToken {
  token: string;
  refreshAt: number;
}

/**
 * Service-account credentials: an RS256 assertion signed with the key (imported once), exchanged
 * at the key's `token_uri`. The token is cached in memory per isolate. Concurrent cold requests
 * share one exchange; the shared promise settles to plain data, read entirely inside the
 * exchange, so no I/O object crosses from one request to another (which Workers forbids).
 * A failed exchange is not cached: the next request tries again.
 */
export function createServiceAccountTokenSource(
  key: ServiceAccountKey,
  options: TokenSourceOptions = {},
): AccessTokenSource {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 15_000;
  let signingKey: Promise<CryptoKey> | null = null;
  let cached: CachedToken | null = null;
  let inflight: Promise<CachedToken> | null = null;

  function importSigningKey(): Promise<CryptoKey> {
    signingKey ??= importPKCS8(key.privateKeyPem, 'RS256').catch(() => {
      throw new GatewayError(
        500,
        'server_error',
        'invalid_service_account_key',
        'The service-account private key could not be imported as an RSA key.',
      );
    });
    return signingKey;
  }

  async function signAssertion(): Promise<string> {
    const issuedAt = Math.floor(now() / 1000);
    return new SignJWT({ scope: CLOUD_PLATFORM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.privateKeyId })
      .setIssuer(key.clientEmail)
      .setAudience(key.tokenUri)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ASSERTION_LIFETIME_S)
      .sign(await importSigningKey());
  }

  async function exchange(): Promise<CachedToken> {
    const assertion = await signAssertion();
    let response: Response;
    try {
      response = await doFetch(key.tokenUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch {
      throw tokenExchangeError(502, 'the token endpoint could not be reached');
    }
    const body = await readJson(response);
    if (!response.ok) throw rejectedExchange(response.status, body);
    const accessToken = body?.access_token;
    const expiresIn = Number(body?.expires_in);
    if (typeof accessToken !== 'string' || accessToken === '' || !(expiresIn > 0)) {
      throw tokenExchangeError(502, 'the token endpoint answered without an access token');
    }
    const lifetimeMs = expiresIn * 1000;
    // Short-lived tokens (emulators) still get cached for half their life.
    const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
    return { token: accessToken, refreshAt: now() + lifetimeMs - margin };
  }

  return {
    async getToken() {
      if (cached && now() < cached.refreshAt) return cached.token;
      if (!inflight) {
        inflight = exchange().then(
          (fresh) => {
            cached = fresh;
            inflight = null;
            return fresh;
          },
          (error: unknown) => {
            inflight = null;
            throw error;
          },
        );
      }
      return (await inflight).token;
    },
    invalidate(token) {
      if (cached?.token === token) cached = null;
    },
  };
}

async function readJson(response: Response): Promise<Record<string, unknown> | null> {
  try {
    const value: unknown = await response.json();
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function rejectedExchange(status: number, body: Record<string, unknown> | null): GatewayError {
  const code = typeof body?.error === 'string' ? body.error : `HTTP ${status}`;
  const description =
    typeof body?.error_description === 'string' ? `: ${body.error_description.slice(0, 300)}` : '';
  const unavailable = status === 503 || code === 'temporarily_unavailable';
  return tokenExchangeError(
    unavailable ? 503 : 502,
    `Google's token endpoint refused the service-account assertion (${code}${description})`,
  );
}

function tokenExchangeError(status: number, detail: string): GatewayError {
  return new GatewayError(
    status,
    'api_error',
    'token_exchange_failed',
    `The gateway could not get a Google access token: ${detail}.`,
  );
}
