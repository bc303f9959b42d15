import { SignJWT } from 'jose';
import { GatewayError } from '../errors.ts';
import {
  type AccessTokenSource,
  createCachedCredential,
  refreshWindow,
} from './cached-credential.ts';
import type { ServiceAccountKey } from './service-account-key.ts';

/** The audience Google accepts on a self-signed JWT for Vertex AI (AIP-4111). */
export const VERTEX_AUDIENCE = 'https://aiplatform.googleapis.com/';
const LIFETIME_S = 3600;

export interface SelfSignedJwtOptions {
  now?: () => number;
  signingKey: () => Promise<CryptoKey>;
  onRefreshFailed?: (error: unknown) => void;
}

/**
 * Google AIP-4111: the service account signs a JWT for Vertex AI and sends it as the bearer,
 * so no request ever waits for the token endpoint. One RSA signature per isolate per 55 minutes,
 * shared by every request that arrives while it is made.
 */
export function createSelfSignedJwtSource(
  key: ServiceAccountKey,
  options: SelfSignedJwtOptions,
): AccessTokenSource {
  const now = options.now ?? Date.now;
  return createCachedCredential(
    async () => {
      const issuedAt = Math.floor(now() / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.privateKeyId })
        .setIssuer(key.clientEmail)
        .setSubject(key.clientEmail)
        .setAudience(VERTEX_AUDIENCE)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + LIFETIME_S)
        .sign(await options.signingKey());
      // Re-signed well before expiry and never sent in its last minute, so a request in flight
      // never carries a JWT that lapses on the way.
      return { token, ...refreshWindow((issuedAt + LIFETIME_S) * 1000, LIFETIME_S * 1000) };
    },
    {
      now,
      onRefreshFailed: options.onRefreshFailed,
      timeoutMs: 10_000,
      timedOut: () =>
        new GatewayError(
          504,
          'api_error',
          'self_signed_jwt_failed',
          'The gateway could not sign a JWT for Vertex AI in time.',
        ),
    },
  );
}
