import { createMemoryRateLimiter } from './memory-rate-limiter.ts';
import type { RateLimiter } from './rate-limiter.ts';

export interface FallbackRateLimiterOptions {
  /** Names the shared store in the warning (`durable_object`, `deno_kv`). */
  store: string;
  /** Answers while the shared store fails; an isolate-local memory limiter unless given. */
  fallback?: RateLimiter;
  /** Receives the warning line; console.warn unless given. */
  warn?: (line: string) => void;
  /** How long a request waits for the shared store before it is counted here instead. */
  timeoutMs?: number;
}

// A limiter answers in milliseconds when healthy; a chat request must not hang on one that stalls.
const DEFAULT_TIMEOUT_MS = 2_000;

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
  let warned = false;

  return {
    scope: 'shared',
    async take(key, requestsPerMinute) {
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
