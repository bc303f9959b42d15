import { createMemoryRateLimiter } from './memory-rate-limiter.ts';
import type { RateLimiter, RateLimitVerdict } from './rate-limiter.ts';

export interface FallbackRateLimiterOptions {
  /** Names the shared store in the warning (`durable_object`, `deno_kv`). */
  store: string;
  /** Answers while the shared store fails; an isolate-local memory limiter unless given. */
  fallback?: RateLimiter;
  /** Receives the warning line; console.warn unless given. */
  warn?: (line: string) => void;
  /** How long a request waits for the shared store before it is counted here instead. */
  timeoutMs?: number;
  /** The clock refusals are held by; Date.now unless given. */
  now?: () => number;
}

// A limiter answers in milliseconds when healthy; a chat request must not hang on one that stalls.
const DEFAULT_TIMEOUT_MS = 2_000;

// Held refusals are per key name, which the configuration bounds; past this many, lapsed ones go.
const MAX_HELD_REFUSALS = 64;

class StoreTimeout extends Error {
  override readonly name = 'StoreTimeout';
}

/**
 * A shared store that fails must not fail the chat request it guards: the request is counted in
 * this isolate instead, which still limits a key per isolate. The shared store is tried again on
 * every request, so counting returns to it as soon as it recovers. A store that does not answer
 * within `timeoutMs` counts as failed for that request. One warning per outage: a store that is
 * down would otherwise log once per request.
 */
export function createFallbackRateLimiter(
  shared: RateLimiter,
  options: FallbackRateLimiterOptions,
): RateLimiter {
  const fallback = options.fallback ?? createMemoryRateLimiter();
  const warn = options.warn ?? ((line: string) => console.warn(line));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  let warned = false;
  // A refusal from the shared store stands until its Retry-After: meanwhile the window can only
  // fill further (from other isolates), so the store would refuse again. Asking it anyway would let
  // one key's flood of refused requests spend the store's daily quota or its single thread, and
  // push every key onto per-isolate counting. Keyed with the limit, which a new config may change.
  const refusedUntil = new Map<string, number>();
  const holdRefusal = (held: string, until: number) => {
    // Entries of keys that went quiet, or of a limit a new config replaced, go once they lapse.
    if (refusedUntil.size >= MAX_HELD_REFUSALS) {
      const time = now();
      for (const [name, end] of refusedUntil) if (end <= time) refusedUntil.delete(name);
    }
    refusedUntil.set(held, until);
  };

  return {
    scope: 'shared',
    async take(key, requestsPerMinute) {
      const held = `${requestsPerMinute} ${key}`;
      const until = refusedUntil.get(held);
      if (until !== undefined) {
        const waitMs = until - now();
        if (waitMs > 0) return refusal(requestsPerMinute, Math.ceil(waitMs / 1000));
        refusedUntil.delete(held);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const verdict = await Promise.race([
          shared.take(key, requestsPerMinute),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new StoreTimeout(`no answer within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
        // Recovered: the next outage is news again.
        warned = false;
        if (verdict.allowed) refusedUntil.delete(held);
        else holdRefusal(held, now() + verdict.retryAfterSeconds * 1000);
        return verdict;
      } catch (error) {
        if (!warned) {
          warned = true;
          warn(warningLine(options.store, error));
        }
        return fallback.take(key, requestsPerMinute);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

const refusal = (limit: number, retryAfterSeconds: number): RateLimitVerdict => ({
  allowed: false,
  limit,
  remaining: 0,
  retryAfterSeconds,
});

// The key name and the limit stay out: only the store and what it said. Neither store is given a
// secret, so its error message cannot carry one.
function warningLine(store: string, error: unknown): string {
  return JSON.stringify({
    level: 'warn',
    message: 'rate limiter: shared store failed; counting in this isolate until it recovers',
    store,
    error: error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : typeof error,
  });
}
