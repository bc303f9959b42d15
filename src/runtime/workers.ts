import { createEnvGateway, type FetchHandler } from '../env-gateway.ts';
import { createMemoryRateLimiter } from '../limits/memory-rate-limiter.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import {
  createDurableObjectRateLimiter,
  type RateLimiterDurableObject,
} from './workers-rate-limiter.ts';

// wrangler.toml binds this class as RATE_LIMITER; Workers finds it among the entry's exports.
export { RateLimiterDurableObject } from './workers-rate-limiter.ts';

// One per isolate: the parsed config, the imported key and the token cache live here. Built on the
// first request, because bindings (the rate limiter's namespace) arrive only with `env`.
let gatewayFor: ((env: Record<string, unknown>) => FetchHandler) | undefined;

export default {
  fetch(
    request: Request,
    env: Record<string, unknown>,
    ctx: ExecutionContext,
  ): Response | Promise<Response> {
    gatewayFor ??= createEnvGateway({ rateLimiter: rateLimiterFor(env.RATE_LIMITER) });
    return gatewayFor(env)(request, ctx);
  },
} satisfies ExportedHandler<Record<string, unknown>>;

/** The shared limit when the binding is declared (wrangler.toml); per isolate otherwise. */
function rateLimiterFor(binding: unknown): RateLimiter {
  return isNamespace(binding) ? createDurableObjectRateLimiter(binding) : createMemoryRateLimiter();
}

function isNamespace(value: unknown): value is DurableObjectNamespace<RateLimiterDurableObject> {
  return (
    typeof value === 'object' &&
    value !== null &&
    'idFromName' in value &&
    typeof value.idFromName === 'function' &&
    'get' in value &&
    typeof value.get === 'function'
  );
}
