import { compactVerify, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import type { EmulatorState, RegisteredKey } from './state.ts';

export type SignedJwtCheck =
  | { ok: true; claims: JWTPayload; registered: RegisteredKey }
  | { ok: false; reason: 'malformed' | 'unknown-account' | 'bad-signature' };

/**
 * Checks a JWT the way Google does before looking at its claims: RS256, and a signature made by
 * a live key of the account in `iss`: the key its `kid` names, or, without a `kid` (Google's own
 * gtoken sends none), any of the account's keys. Claim rules differ between the token endpoint
 * and self-signed bearer use, so callers check those.
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
  if (header.alg !== 'RS256') return { ok: false, reason: 'bad-signature' };
  const named = header.kid === undefined ? undefined : state.keys.get(String(header.kid));
  const candidates = header.kid === undefined ? [...state.keys.values()] : named ? [named] : [];
  for (const registered of candidates) {
    if (registered.key.client_email !== claims.iss) continue;
    try {
      await compactVerify(jwt, registered.publicKey, { algorithms: ['RS256'] });
      return { ok: true, claims, registered };
    } catch {
      // Not this key: try the account's next one, if the JWT named none.
    }
  }
  return { ok: false, reason: 'bad-signature' };
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
