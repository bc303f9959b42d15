import { GatewayError } from '../errors.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { MODEL_GARDEN_ENDPOINT } from '../vertex/path-params.ts';
import type { VertexTarget } from '../vertex/upstream-url.ts';
import { allowsModel, allowsProject, type KeyPolicy } from './key-policy.ts';

/**
 * Refuses a target the key may not reach: 403, before anything is read or forwarded. A key held
 * to some models may only call the `openapi` endpoint: on a self-deployed endpoint the model name
 * means whatever its deployer chose, so a model list could not guard what it runs.
 */
export function enforceTarget(policy: KeyPolicy, target: VertexTarget): void {
  if (!allowsProject(policy, target.project)) {
    throw new GatewayError(
      403,
      'permission_error',
      'project_not_allowed',
      `The key "${policy.name}" may not use project "${target.project}".`,
    );
  }
  if (policy.models !== null && target.endpoint !== MODEL_GARDEN_ENDPOINT) {
    throw new GatewayError(
      403,
      'permission_error',
      'endpoint_not_allowed',
      `The key "${policy.name}" is limited to certain models, so it may only use the ${MODEL_GARDEN_ENDPOINT} endpoint, not endpoint "${target.endpoint}".`,
    );
  }
}

/** Refuses a model the key may not use, named as the client sent it and as Vertex would get it. */
export function enforceModel(policy: KeyPolicy, requested: string, model: string): void {
  if (allowsModel(policy, model)) return;
  const named = requested === model ? `'${model}'` : `'${requested}' (${model})`;
  throw new GatewayError(
    403,
    'permission_error',
    'model_not_allowed',
    `The key "${policy.name}" may not use the model ${named.slice(0, 420)}.`,
    { param: 'model' },
  );
}

// The OpenAI SDKs ignore a Retry-After over 60 s and fall back to retrying within seconds, which
// spends their retries on more 429s. A burst that filled the 61-second window is admitted again
// up to 61 s later, so a client that waits 60 s may meet one more 429, with Retry-After: 1.
const MAX_RETRY_AFTER_SECONDS = 60;

/**
 * Counts the request against the key's per-minute limit. Returns OpenAI's rate-limit headers for
 * the answer, or throws the 429 whose Retry-After says when a request will be admitted again.
 */
export async function enforceRateLimit(
  limiter: RateLimiter,
  policy: KeyPolicy,
  rpm: number,
): Promise<Record<string, string>> {
  const verdict = await limiter.take(policy.name, rpm);
  const headers = {
    'x-ratelimit-limit-requests': String(verdict.limit),
    'x-ratelimit-remaining-requests': String(verdict.remaining),
  };
  if (verdict.allowed) return headers;
  throw new GatewayError(
    429,
    'rate_limit_error',
    'rate_limit_exceeded',
    `The key "${policy.name}" is limited to ${rpm} requests per minute. Try again in ${verdict.retryAfterSeconds} s.`,
    {
      headers: {
        ...headers,
        'retry-after': String(Math.min(verdict.retryAfterSeconds, MAX_RETRY_AFTER_SECONDS)),
        'x-ratelimit-reset-requests': `${verdict.retryAfterSeconds}s`,
      },
    },
  );
}
