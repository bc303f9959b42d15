import type { Config } from '../config.ts';
import { GatewayError } from '../errors.ts';
import { secretsEqual } from './constant-time.ts';
import type { KeyPolicy } from './key-policy.ts';

/**
 * Whose Google credential pays for a request. A gateway key from GATEWAY_KEYS brings its policy;
 * one from GATEWAY_API_KEYS has none (it may do whatever the gateway allows).
 */
export type UpstreamCredential =
  | { kind: 'service-account'; policy: KeyPolicy | null }
  | { kind: 'passthrough'; accessToken: string };

export type ClientAuthenticator = (
  authorization: string | undefined,
) => Promise<UpstreamCredential>;

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const PLAIN_KEY: UpstreamCredential = { kind: 'service-account', policy: null };

/**
 * Decides who the caller is from `Authorization: Bearer <key>`. A gateway key means the gateway's
 * service account pays: GATEWAY_API_KEYS are compared in constant time, GATEWAY_KEYS by SHA-256.
 * With ALLOW_TOKEN_PASSTHROUGH any other bearer is taken as the caller's own Google access token.
 * With none of them configured, every request is refused: the gateway fails closed.
 */
export function createClientAuthenticator(config: Config): ClientAuthenticator {
  const encoder = new TextEncoder();
  const knownKeys = config.clientKeys.map((key) => encoder.encode(key));
  const configured =
    config.clientKeys.length > 0 || config.keyPolicies.length > 0 || config.allowTokenPassthrough;
  const policiesByHash = new Map(config.keyPolicies.map((policy) => [policy.sha256, policy]));
  // Keys already seen to match, so each costs one digest per isolate rather than per request.
  // Only matches are kept: there are as many as configured entries, however many guesses arrive.
  const matchedKeys = new Map<string, UpstreamCredential>();

  /**
   * A hashed key is found by the SHA-256 of what was presented. A lookup by digest reveals
   * nothing usable about the key through timing: the digest of a near miss is unrelated to it.
   */
  async function hashedKey(
    presented: string,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<UpstreamCredential | null> {
    if (policiesByHash.size === 0) return null;
    const known = matchedKeys.get(presented);
    if (known) return known;
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    const policy = policiesByHash.get(toHex(digest));
    if (!policy) return null;
    const credential: UpstreamCredential = { kind: 'service-account', policy };
    matchedKeys.set(presented, credential);
    return credential;
  }

  // A key listed in both variables gets its GATEWAY_KEYS policy: an operator who moved a team to
  // GATEWAY_KEYS and forgot the old entry must not have lifted its limits. Settled once per key.
  const plainKeyVerdicts = new Map<string, UpstreamCredential>();
  async function plainKey(
    presented: string,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<UpstreamCredential> {
    if (policiesByHash.size === 0) return PLAIN_KEY;
    let credential = plainKeyVerdicts.get(presented);
    if (!credential) {
      credential = (await hashedKey(presented, bytes)) ?? PLAIN_KEY;
      plainKeyVerdicts.set(presented, credential);
    }
    return credential;
  }

  return async function authenticateClient(authorization) {
    if (!configured) {
      throw new GatewayError(
        503,
        'server_error',
        'gateway_not_configured',
        'This gateway is not configured to accept requests: set GATEWAY_KEYS or GATEWAY_API_KEYS (with GOOGLE_SERVICE_ACCOUNT_KEY), or ALLOW_TOKEN_PASSTHROUGH=true.',
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
    if (matched) return plainKey(presented, presentedBytes);
    const hashed = await hashedKey(presented, presentedBytes);
    if (hashed) return hashed;
    if (config.allowTokenPassthrough) return { kind: 'passthrough', accessToken: presented };
    throw new GatewayError(
      401,
      'authentication_error',
      'invalid_api_key',
      'Incorrect API key provided.',
    );
  };
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += HEX_DIGITS[byte];
  return hex;
}
