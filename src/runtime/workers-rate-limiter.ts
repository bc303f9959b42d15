import { DurableObject } from 'cloudflare:workers';
import {
  createFallbackRateLimiter,
  type FallbackRateLimiterOptions,
} from '../limits/fallback-rate-limiter.ts';
import type { RateLimiter, RateLimitVerdict } from '../limits/rate-limiter.ts';
import { admit, type WindowState } from '../limits/sliding-window.ts';

const WINDOW_KEY = 'window';

/**
 * One object per API key name (`idFromName`) counts that key's requests for every isolate in every
 * location: Cloudflare runs each object once, one call at a time, so the read-decide-write below
 * needs no lock.
 *
 * The window is written to the object's storage, not only kept in memory. Cloudflare's lifecycle
 * documentation: an idle object that meets the hibernation conditions (no setTimeout/setInterval,
 * no awaited fetch, no WebSocket standard API, no request in progress), as this one does between
 * calls, is hibernated after 10 s without requests, and hibernation discards in-memory state;
 * objects are also restarted by deployments, runtime updates and moves between hosts. Only an
 * object that cannot hibernate stays in memory for 70-140 s of inactivity. So memory alone would
 * forget a full window after 10 s of quiet. The SQLite backend's synchronous KV API keeps the write
 * cheap (at most one small row write per admitted request), and the output gate holds the answer
 * until the write is durable. The copy in memory spares a busy object the read.
 */
export class RateLimiterDurableObject extends DurableObject<Record<string, unknown>> {
  #window: WindowState | undefined;

  take(requestsPerMinute: number): RateLimitVerdict {
    const previous = this.#window ?? this.ctx.storage.kv.get(WINDOW_KEY);
    const { state, verdict } = admit(previous, Date.now(), requestsPerMinute);
    // A refused request changes no count: storage keeps what it has until the next admission.
    if (verdict.allowed) this.ctx.storage.kv.put(WINDOW_KEY, state);
    this.#window = state;
    return verdict;
  }
}

export type DurableObjectRateLimiterOptions = Omit<FallbackRateLimiterOptions, 'store'>;

/**
 * The gateway's RateLimiter over the `RATE_LIMITER` binding. When the object cannot be reached
 * (an outage, the free plan's daily request quota), requests are counted in this isolate instead.
 */
export function createDurableObjectRateLimiter(
  namespace: DurableObjectNamespace<RateLimiterDurableObject>,
  options: DurableObjectRateLimiterOptions = {},
): RateLimiter {
  const shared: RateLimiter = {
    // A stub per call: it is cheap (the id is a local hash) and never crosses requests.
    take: (key, requestsPerMinute) =>
      namespace.get(namespace.idFromName(key)).take(requestsPerMinute),
  };
  return createFallbackRateLimiter(shared, { ...options, store: 'durable_object' });
}
