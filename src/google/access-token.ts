import { SignJWT } from 'jose';
import { GatewayError } from '../errors.ts';
import { readPrefix } from '../read-prefix.ts';
import { parseRetryAfterMs, retryDelayMs, sleep } from '../vertex/retry-policy.ts';
import {
  type AccessTokenSource,
  type CachedToken,
  createCachedCredential,
  refreshWindow,
} from './cached-credential.ts';
import type { ServiceAccountKey } from './service-account-key.ts';
import { createSigningKey } from './signing-key.ts';

export type { AccessTokenSource, KeepAlive } from './cached-credential.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ASSERTION_LIFETIME_S = 3600;
// Google's tokens live an hour (12 at most, by org policy); never trust a larger promise.
const MAX_TOKEN_LIFETIME_S = 12 * 3600;

export interface TokenSourceOptions {
  fetch?: typeof fetch;
  now?: () => number;
  /** Bounds one exchange, retries included, so a stalled endpoint cannot hold requests forever. */
  timeoutMs?: number;
  /** Retries of a transient token-endpoint failure (5xx, 408, 429, temporarily_unavailable). */
  maxRetries?: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** The imported key, shared with the self-signed JWT source when both exist. */
  signingKey?: () => Promise<CryptoKey>;
  /** Told of a refresh that failed while the old token still served (createCachedCredential). */
  onRefreshFailed?: (error: unknown) => void;
}

/**
 * Service-account credentials: an RS256 assertion signed with the key, exchanged at the key's
 * `token_uri` for an access token, which is cached per isolate and shared by concurrent cold
 * requests (see createCachedCredential).
 */
export function createServiceAccountTokenSource(
  key: ServiceAccountKey,
  options: TokenSourceOptions = {},
): AccessTokenSource {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxRetries = options.maxRetries ?? 2;
  const random = options.random ?? Math.random;
  const wait = options.sleep ?? ((ms: number) => sleep(ms, NEVER_ABORTED));
  const signingKey = options.signingKey ?? createSigningKey(key);

  async function signAssertion(): Promise<string> {
    const issuedAt = Math.floor(now() / 1000);
    return new SignJWT({ scope: CLOUD_PLATFORM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.privateKeyId })
      .setIssuer(key.clientEmail)
      .setAudience(key.tokenUri)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ASSERTION_LIFETIME_S)
      .sign(await signingKey());
  }

  /**
   * One exchange, retrying transient failures with backoff inside the `timeoutMs` deadline.
   * Google's guidance: retry 5xx, 408, 429 and temporarily_unavailable; everything else (an
   * invalid_grant above all) will fail the same way again.
   */
  async function exchange(): Promise<CachedToken> {
    const startedAt = Date.now();
    for (let retry = 0; ; retry++) {
      const attempt = await exchangeOnce(timeoutMs - (Date.now() - startedAt));
      if ('token' in attempt) return attempt;
      if (!attempt.transient || retry >= maxRetries) throw attempt.error;
      const delay = retryDelayMs(retry, attempt.retryAfter, random, now);
      if (Date.now() - startedAt + delay >= timeoutMs) throw attempt.error;
      await wait(delay);
    }
  }

  async function exchangeOnce(
    remainingMs: number,
  ): Promise<CachedToken | { error: GatewayError; transient: boolean; retryAfter: string | null }> {
    const assertion = await signAssertion();
    const deadline = AbortSignal.timeout(Math.max(1, remainingMs));
    let response: Response;
    try {
      response = await doFetch(key.tokenUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
        signal: deadline,
        redirect: 'manual',
      });
    } catch (error) {
      return (error as Error)?.name === 'TimeoutError'
        ? { error: exchangeTimedOut(), transient: false, retryAfter: null }
        : {
            error: tokenExchangeError(502, 'the token endpoint could not be reached'),
            transient: true,
            retryAfter: null,
          };
    }
    const body = await readJson(response);
    // A body that stalled was cut off by the same deadline: that is a timeout, not a bad answer.
    if (deadline.aborted) return { error: exchangeTimedOut(), transient: false, retryAfter: null };
    if (!response.ok) {
      const code = oauthErrorCode(body);
      const transient =
        response.status >= 500 ||
        response.status === 408 ||
        response.status === 429 ||
        code === 'temporarily_unavailable' ||
        code === 'server_error';
      const retryAfter = response.headers.get('retry-after');
      return {
        error: failedExchange(response.status, code, body, transient, retryAfter, now),
        transient,
        retryAfter,
      };
    }
    const accessToken = body?.access_token;
    const expiresIn = Math.min(Number(body?.expires_in), MAX_TOKEN_LIFETIME_S);
    if (typeof accessToken !== 'string' || accessToken === '' || !(expiresIn > 0)) {
      return {
        error: tokenExchangeError(502, 'the token endpoint answered without an access token'),
        transient: false,
        retryAfter: null,
      };
    }
    const lifetimeMs = expiresIn * 1000;
    return { token: accessToken, ...refreshWindow(now() + lifetimeMs, lifetimeMs) };
  }

  return createCachedCredential(exchange, {
    now,
    timeoutMs,
    timedOut: exchangeTimedOut,
    onRefreshFailed: options.onRefreshFailed,
  });
}

const NEVER_ABORTED = new AbortController().signal;

// A token answer is a few hundred bytes; an endpoint that sends more is not read further.
const MAX_TOKEN_BODY_BYTES = 16 * 1024;

async function readJson(response: Response): Promise<Record<string, unknown> | null> {
  try {
    const value: unknown = JSON.parse(await readPrefix(response, MAX_TOKEN_BODY_BYTES));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The OAuth `error` code (RFC 6749 §5.2), if it looks like one: it goes into the message. */
function oauthErrorCode(body: Record<string, unknown> | null): string | null {
  const code = body?.error;
  return typeof code === 'string' && /^[\w.-]{1,64}$/.test(code) ? code : null;
}

/**
 * A failed exchange as the client sees it. A refusal (invalid_grant and the like) is worded as
 * one, to point at the key; a transient failure that outlasted the retries is worded as the
 * outage it is, and is a 503 with Google's Retry-After when Google says it will pass.
 */
function failedExchange(
  status: number,
  code: string | null,
  body: Record<string, unknown> | null,
  transient: boolean,
  retryAfter: string | null,
  now: () => number,
): GatewayError {
  const description =
    typeof body?.error_description === 'string' ? `: ${body.error_description.slice(0, 300)}` : '';
  const detail =
    transient || !code
      ? `the token endpoint answered HTTP ${status}${code ? ` (${code}${description})` : ''}`
      : `Google's token endpoint refused the service-account assertion (${code}${description})`;
  const unavailable = status === 503 || status === 429 || code === 'temporarily_unavailable';
  if (!unavailable) return tokenExchangeError(502, detail);
  const readable = retryAfter !== null && parseRetryAfterMs(retryAfter, now) !== null;
  return tokenExchangeError(503, detail, readable ? { 'retry-after': retryAfter.trim() } : {});
}

const exchangeTimedOut = () => tokenExchangeError(504, 'the token endpoint did not answer in time');

function tokenExchangeError(
  status: number,
  detail: string,
  headers: Record<string, string> = {},
): GatewayError {
  return new GatewayError(
    status,
    'api_error',
    'token_exchange_failed',
    `The gateway could not get a Google access token: ${detail}.`,
    { headers },
  );
}
