import type { GoogleAuthMode } from '../config.ts';
import { type AccessTokenSource, createServiceAccountTokenSource } from './access-token.ts';
import { createSelfSignedJwtSource } from './self-signed-jwt.ts';
import type { ServiceAccountKey } from './service-account-key.ts';
import { createSigningKey } from './signing-key.ts';

export interface GoogleAuthOptions {
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Called once, when Vertex refuses the self-signed JWT and the exchange takes over. */
  onSelfSignedRefused?: () => void;
  /** Told of a refresh that failed while the old token or JWT still served. */
  onRefreshFailed?: (error: unknown) => void;
}

/**
 * The service account's bearers for Vertex. In `exchange` mode, access tokens from Google's
 * token endpoint. In `self-signed` mode, a JWT the account signs itself; if Vertex answers 401
 * to it, the caller invalidates it and this isolate uses the exchange from then on, so the retry
 * (and every later request) carries an access token. Both share one imported key.
 */
export function createGoogleAuth(
  key: ServiceAccountKey,
  mode: GoogleAuthMode,
  options: GoogleAuthOptions = {},
): AccessTokenSource {
  const signingKey = createSigningKey(key);
  const exchange = createServiceAccountTokenSource(key, { ...options, signingKey });
  if (mode === 'exchange') return exchange;

  const selfSigned = createSelfSignedJwtSource(key, {
    now: options.now,
    signingKey,
    onRefreshFailed: options.onRefreshFailed,
  });
  let active = selfSigned;
  return {
    getToken: (keepAlive) => active.getToken(keepAlive),
    invalidate(token) {
      // A refusal of a JWT signed before the switch must not drop a good exchanged token.
      if (active === exchange) return exchange.invalidate(token);
      active = exchange;
      options.onSelfSignedRefused?.();
    },
  };
}
