/** Whether one more request fits a key's per-minute limit. */
export type RateLimitVerdict =
  | { allowed: true; limit: number; remaining: number }
  | {
      allowed: false;
      limit: number;
      remaining: 0;
      /** Whole seconds until a request from this key would be admitted again. */
      retryAfterSeconds: number;
    };

/**
 * Counts requests per key over a sliding minute. `take` counts the request only when it is
 * admitted. Implementations: in memory (one isolate), a Durable Object (Workers), Deno KV.
 */
export interface RateLimiter {
  take(key: string, requestsPerMinute: number): Promise<RateLimitVerdict>;
  /**
   * `shared` when the counts hold across isolates and instances. Anything else counts per isolate,
   * which the gateway says in its log when a key has an `rpm`.
   */
  readonly scope?: 'isolate' | 'shared';
}
