import { importPKCS8 } from 'jose';
import { GatewayError } from '../errors.ts';
import type { ServiceAccountKey } from './service-account-key.ts';

/**
 * The service account's RS256 signing key, imported on first use and then kept. It is cached as
 * a value, not a promise: on Workers a promise created for one request must not be awaited by
 * another. Two first uses at once may both import it; the result is the same key.
 */
export function createSigningKey(key: ServiceAccountKey): () => Promise<CryptoKey> {
  let signingKey: CryptoKey | null = null;
  return async function signingKeyFor() {
    try {
      signingKey ??= await importPKCS8(key.privateKeyPem, 'RS256');
    } catch {
      throw new GatewayError(
        500,
        'server_error',
        'invalid_service_account_key',
        'The service-account private key could not be imported as an RSA key.',
      );
    }
    return signingKey;
  };
}
