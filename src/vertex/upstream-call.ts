import type { UpstreamLimits } from '../config.ts';
import { GatewayError } from '../errors.ts';
import type { AccessTokenSource, KeepAlive } from '../google/access-token.ts';
import { forwardToVertex } from './forward.ts';
import { retryDelayMs } from './retry-policy.ts';
import { chatCompletionsUrl, type VertexTarget } from './upstream-url.ts';

/** Whose Google credential a request travels on. */
export type GoogleCredential =
  | { kind: 'service-account'; tokens: AccessTokenSource }
  | { kind: 'passthrough'; accessToken: string };

export interface UpstreamCall {
  /** The location-ordered targets: the first, then the fallbacks (default route only). */
  targets: readonly VertexTarget[];
  body: string;
  stream: boolean;
  signal: AbortSignal;
  credential: GoogleCredential;
  /** Keeps work that outlives the request (a token refresh) running: Workers' waitUntil. */
  keepAlive?: KeepAlive;
}

export interface UpstreamEnvironment {
  fetch: typeof fetch;
  now: () => number;
  random: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  limits: UpstreamLimits;
  upstreamOrigin: string | null;
}

interface CallReport {
  /** The location of the last attempt: the one that served the request, if it succeeded. */
  location: string;
  /** Requests sent to Vertex, retries included. */
  attempts: number;
}

type FailedCall = CallReport & { ok: false; error: GatewayError; upstreamStatus: number | null };

export type UpstreamResult =
  | (CallReport & { ok: true; response: Response; bytes: Uint8Array<ArrayBuffer> | null })
  | FailedCall;

/**
 * Calls Vertex until it answers with success or a final error. Transient failures (429, 5xx, no
 * connection) are retried with backoff, up to `maxRetries` per location while within the time
 * budget, then the next fallback location is tried. A 401 on the gateway's own token means
 * Google dropped it early: the token is refreshed and the request sent once more (a second 401
 * is the gateway's credential failing, a 502). Every retry happens before the client has
 * received a byte, since nothing is returned until a success.
 */
export async function callVertex(
  call: UpstreamCall,
  env: UpstreamEnvironment,
): Promise<UpstreamResult> {
  const { limits } = env;
  const startedAt = env.now();
  let attempts = 0;
  let last: FailedCall | null = null;

  for (const target of call.targets) {
    // A location is only tried while the budget lasts; the first one always is.
    if (last && env.now() - startedAt > limits.retryBudgetMs) break;
    let refreshedToken = false;
    for (let retry = 0; ; ) {
      let accessToken: string | GatewayError;
      try {
        accessToken = await tokenFor(call.credential, call.keepAlive);
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error;
        accessToken = error;
      }
      // Gone while we waited for the token: nothing is sent on its behalf, and whether the
      // exchange worked is not what happened to the request.
      if (call.signal.aborted) {
        const upstreamStatus = last?.upstreamStatus ?? null;
        return clientLeft({ upstreamStatus, location: target.location, attempts });
      }
      if (accessToken instanceof GatewayError) {
        return {
          ok: false,
          error: accessToken,
          upstreamStatus: null,
          location: target.location,
          attempts,
        };
      }
      attempts++;
      const outcome = await forwardToVertex(
        {
          url: chatCompletionsUrl(target, env.upstreamOrigin),
          accessToken,
          body: call.body,
          stream: call.stream,
          signal: call.signal,
          timeoutMs: limits.timeoutMs,
        },
        env.fetch,
      );
      if (outcome.ok) {
        return { ...outcome, location: target.location, attempts };
      }
      last = {
        ok: false,
        error: outcome.error,
        upstreamStatus: outcome.upstreamStatus,
        location: target.location,
        attempts,
      };
      // The client is gone, so nothing is retried. An answer Vertex gave stands in the log; with
      // none (the fetch was aborted on the client's behalf), the client's leaving is the story.
      if (call.signal.aborted) return outcome.upstreamStatus === null ? clientLeft(last) : last;

      // By Google's status, which a 200 carrying Google's error instead of a stream has too.
      if (outcome.error.status === 401 && call.credential.kind === 'service-account') {
        if (!refreshedToken) {
          call.credential.tokens.invalidate(accessToken);
          refreshedToken = true;
          continue;
        }
        return { ...last, error: credentialsRefused(outcome.error) };
      }
      if (!outcome.retryable) return last;
      if (retry >= limits.maxRetries) break;
      const delay = retryDelayMs(retry, outcome.retryAfter, env.random, env.now);
      // A wait past the budget (a long Retry-After, say) is not worth making the client sit
      // through: the next location, or the error with its Retry-After, serves it better.
      if (env.now() + delay - startedAt > limits.retryBudgetMs) break;
      await env.sleep(delay, call.signal);
      if (call.signal.aborted) return clientLeft(last);
      retry++;
    }
  }
  if (!last) throw new Error('unreachable: no Vertex target to call');
  return last;
}

/**
 * Vertex refused a fresh token of the gateway's own service account too. Passed on as a 401, it
 * would tell the client its own key is wrong (the OpenAI SDKs raise AuthenticationError and do
 * not retry), when it is the gateway's credential that needs its operator.
 */
function credentialsRefused(google: GatewayError): GatewayError {
  return new GatewayError(
    502,
    'api_error',
    'upstream_credentials_refused',
    `Vertex AI refused the gateway's own Google credentials, a fresh token too, so its operator must check the service account. Google said: ${google.message}`,
  );
}

/**
 * The client left before an answer: what went wrong upstream (a fetch aborted on its behalf, the
 * error between retries) is not Vertex's failure. Nobody reads this answer; the log line does,
 * as nginx's 499 "client closed request", with Vertex's last status kept beside it.
 */
function clientLeft(report: CallReport & { upstreamStatus: number | null }): UpstreamResult {
  return {
    ...report,
    ok: false,
    error: new GatewayError(
      499,
      'invalid_request_error',
      'client_cancelled',
      'The client closed the request before Vertex AI answered.',
    ),
  };
}

function tokenFor(
  credential: GoogleCredential,
  keepAlive: KeepAlive | undefined,
): Promise<string> | string {
  return credential.kind === 'passthrough'
    ? credential.accessToken
    : credential.tokens.getToken(keepAlive);
}
