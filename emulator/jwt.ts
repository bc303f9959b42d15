import { compactVerify, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import type { EmulatorState, RegisteredKey } from './state.ts';

export type SignedJwtCheck =
  | { ok: true; claims: JWTPayload; registered: RegisteredKey }
  | { ok: false; reason: 'malformed' | 'unknown-account' | 'bad-signature' };

/**
 * Checks a JWT the way Google does before looking at its claims: RS256, a `kid` naming a live
 * key of the account in `iss`, and a signature made by that key. Claim rules differ between the
 * token endpoint and self-signed bearer use, so callers check those.
 */
export async function verifyServiceAccountJwt(
  jwt: string,
  state: EmulatorState,
): Promise<SignedJwtCheck> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: JWTPayload;
  try {
    if (jwt.split('.').length !== 3) return { ok: false, reason: 'malformed' };
    header = decodeProtectedHeader(jwt);
    claims = decodeJwt(jwt);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof claims.iss !== 'string' || !state.hasAccount(claims.iss)) {
    return { ok: false, reason: 'unknown-account' };
  }
  const registered = typeof header.kid === 'string' ? state.keys.get(header.kid) : undefined;
  if (header.alg !== 'RS256' || !registered || registered.key.client_email !== claims.iss) {
    return { ok: false, reason: 'bad-signature' };
  }
  try {
    await compactVerify(jwt, registered.publicKey, { algorithms: ['RS256'] });
  } catch {
    return { ok: false, reason: 'bad-signature' };
  }
  return { ok: true, claims, registered };
}

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

export function scopes(claims: JWTPayload): string[] {
  return typeof claims.scope === 'string' ? claims.scope.split(/\s+/).filter(Boolean) : [];
}

/** Google's "short-lived and in a reasonable timeframe" rule; `now` in seconds. */
export function timeframeOk(claims: JWTPayload, nowSeconds: number): boolean {
  const { iat, exp } = claims;
  if (typeof iat !== 'number' || typeof exp !== 'number') return false;
  const maxFutureSkewSeconds = 300;
  return (
    exp > iat && exp - iat <= 3600 && exp > nowSeconds && iat <= nowSeconds + maxFutureSkewSeconds
  );
}
