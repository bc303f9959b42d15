import type { Config } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { secretsEqual } from './constant-time.ts';

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
  const encoder = new TextEncoder();
  const knownKeys = config.clientKeys.map((key) => encoder.encode(key));
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
    const presentedBytes = encoder.encode(presented);
    let matched = false;
    // Every key is compared, so the time does not tell which one (if any) was close.
    for (const known of knownKeys) matched = secretsEqual(presentedBytes, known) || matched;
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
