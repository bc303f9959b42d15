import { GatewayError } from '../errors.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { allowsModel, allowsProject, type KeyPolicy } from './key-policy.ts';

/** Refuses a project the key may not reach: 403, before anything is read or forwarded. */
export function enforceProject(policy: KeyPolicy, project: string): void {
  if (allowsProject(policy, project)) return;
  throw new GatewayError(
    403,
    'permission_error',
    'project_not_allowed',
    `The key "${policy.name}" may not use project "${project}".`,
  );
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
        'retry-after': String(verdict.retryAfterSeconds),
        'x-ratelimit-reset-requests': `${verdict.retryAfterSeconds}s`,
      },
    },
  );
}
