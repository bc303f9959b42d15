import type { Config } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { digestsEqual, sha256 } from './constant-time.ts';

/** Whose Google credential pays for a request. */
export type UpstreamCredential =
  | { kind: 'service-account' }
  | { kind: 'passthrough'; accessToken: string };

export type ClientAuthenticator = (
  authorization: string | undefined,
) => Promise<UpstreamCredential>;

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Decides who the caller is from `Authorization: Bearer <key>`. A gateway key (compared in
 * constant time) means the gateway's service account pays; with ALLOW_TOKEN_PASSTHROUGH any other
 * bearer is taken as the caller's own Google access token. With neither configured, every request
 * is refused: the gateway fails closed rather than run open.
 */
export function createClientAuthenticator(config: Config): ClientAuthenticator {
  // Kept as plain data once computed: on Workers, a promise from one request's context must not
  // be awaited by another.
  let keyDigests: ArrayBuffer[] | null = null;
  const configured = config.clientKeys.length > 0 || config.allowTokenPassthrough;

  return async function authenticateClient(authorization) {
    if (!configured) {
      throw new GatewayError(
        503,
        'server_error',
        'gateway_not_configured',
        'This gateway is not configured to accept requests: set GATEWAY_API_KEYS (with GOOGLE_SERVICE_ACCOUNT_KEY) or ALLOW_TOKEN_PASSTHROUGH=true.',
      );
    }
    if (!authorization) {
      throw new GatewayError(
        401,
        'authentication_error',
        'missing_api_key',
        'Missing API key: send it as "Authorization: Bearer <key>".',
      );
    }
    const presented = BEARER.exec(authorization)?.[1];
    if (!presented) {
      throw new GatewayError(
        401,
        'authentication_error',
        'invalid_api_key',
        'The Authorization header must be "Bearer <key>".',
      );
    }
    const digest = await sha256(presented);
    let matched = false;
    keyDigests ??= await Promise.all(config.clientKeys.map(sha256));
    for (const known of keyDigests) matched = digestsEqual(digest, known) || matched;
    if (matched) return { kind: 'service-account' };
    if (config.allowTokenPassthrough) return { kind: 'passthrough', accessToken: presented };
    throw new GatewayError(
      401,
      'authentication_error',
      'invalid_api_key',
      'Incorrect API key provided.',
    );
  };
}
