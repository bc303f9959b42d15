import type { IncomingMessage, ServerResponse } from 'node:http';
import { type OAuthError, TOKEN_ERRORS, tokenErrorForStatus } from './google-errors.ts';
import { readBody, sendJsonWithStall, sleep } from './http-io.ts';
import { CLOUD_PLATFORM_SCOPE, scopes, timeframeOk, verifyServiceAccountJwt } from './jwt.ts';
import type { EmulatorState } from './state.ts';

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

type Outcome = { ok: true; token: string; ttl: number } | { ok: false; error: OAuthError };

/** Google's OAuth2 token endpoint, restricted to the service-account JWT-bearer grant. */
export async function handleTokenRequest(
  req: IncomingMessage,
  res: ServerResponse,
  state: EmulatorState,
  tokenUri: string,
): Promise<void> {
  const bodyText = await readBody(req);
  const fault = state.faults.take('token');
  if (fault) {
    state.stats.faultsApplied += 1;
    await sleep(fault.headersDelayMs ?? 0);
    if (fault.status !== undefined) {
      state.stats.tokenExchangeFailures += 1;
      const headers: Record<string, string> =
        fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) };
      return sendJsonWithStall(
        res,
        fault.status,
        fault.body ?? tokenErrorForStatus(fault.status, fault.message),
        headers,
        fault.bodyStallMs ?? 0,
      );
    }
  }
  const stallMs = fault?.bodyStallMs ?? 0;
  const outcome = await exchange(req, bodyText, state, tokenUri);
  if (!outcome.ok) {
    state.stats.tokenExchangeFailures += 1;
    return sendJsonWithStall(res, 400, outcome.error, {}, stallMs);
  }
  state.stats.tokenExchanges += 1;
  return sendJsonWithStall(
    res,
    200,
    { access_token: outcome.token, expires_in: outcome.ttl, token_type: 'Bearer' },
    { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate' },
    stallMs,
  );
}

async function exchange(
  req: IncomingMessage,
  bodyText: string,
  state: EmulatorState,
  tokenUri: string,
): Promise<Outcome> {
  const fail = (error: OAuthError): Outcome => ({ ok: false, error });
  if (req.method !== 'POST')
    return fail(TOKEN_ERRORS.invalidRequest('Token requests must use POST.'));
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType !== 'application/x-www-form-urlencoded') {
    return fail(
      TOKEN_ERRORS.invalidRequest('Content-Type must be application/x-www-form-urlencoded.'),
    );
  }
  const form = new URLSearchParams(bodyText);
  const grantType = form.get('grant_type');
  if (!grantType)
    return fail(TOKEN_ERRORS.invalidRequest('Missing required parameter: grant_type'));
  if (grantType !== JWT_BEARER_GRANT) return fail(TOKEN_ERRORS.unsupportedGrant(grantType));
  const assertion = form.get('assertion');
  if (!assertion) return fail(TOKEN_ERRORS.invalidRequest('Missing required parameter: assertion'));

  const checked = await verifyServiceAccountJwt(assertion, state);
  if (!checked.ok) {
    if (checked.reason === 'malformed') {
      return fail(
        TOKEN_ERRORS.invalidRequest('Invalid JWT: the assertion is not a well-formed JWT.'),
      );
    }
    return fail(
      checked.reason === 'unknown-account'
        ? TOKEN_ERRORS.unknownAccount
        : TOKEN_ERRORS.invalidSignature,
    );
  }
  const { claims } = checked;
  if (claims.aud !== tokenUri) return fail(TOKEN_ERRORS.badAudience(tokenUri));
  const granted = scopes(claims);
  if (granted.length === 0) return fail(TOKEN_ERRORS.missingScope);
  if (!granted.includes(CLOUD_PLATFORM_SCOPE)) return fail(TOKEN_ERRORS.badScope);
  if (!timeframeOk(claims, Math.floor(state.now() / 1000))) return fail(TOKEN_ERRORS.badTimeframe);

  const ttl = state.config.tokenTtlSeconds;
  return { ok: true, token: state.issueToken(ttl, checked.registered.key.client_email), ttl };
}
