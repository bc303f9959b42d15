import {
  createFallbackRateLimiter,
  type FallbackRateLimiterOptions,
} from '../limits/fallback-rate-limiter.ts';
import type { RateLimiter, RateLimitVerdict } from '../limits/rate-limiter.ts';
import { admit } from '../limits/sliding-window.ts';

/** The part of a Deno.Kv the limiter uses; tests wrap one to watch its commits. */
export type RateLimitKv = Pick<Deno.Kv, 'get' | 'atomic'>;

export interface KvRateLimiterOptions extends Omit<FallbackRateLimiterOptions, 'store'> {
  now?: () => number;
  /** Commits tried for one request before it is counted in memory instead. */
  maxAttempts?: number;
}

const KEY_PREFIX = ['vertex-edge-gateway', 'rpm'];
// A window forgets requests after 61 s, so its entry may go then too; Deno KV deletes expired
// entries some time after expiry, never before, and `admit` drops stale seconds itself.
const EXPIRE_IN_MS = 62_000;
const DEFAULT_MAX_ATTEMPTS = 5;
// Deno Deploy rejects openKv when the app has no database assigned: no use asking each request.
const REOPEN_AFTER_MS = 60_000;

/**
 * The gateway's RateLimiter over Deno KV, shared by every instance that opens the same database
 * (Deno Deploy's, or one local SQLite file). Each request reads the key's window, decides, and
 * writes it back only if nothing changed in between (a versionstamp check); a conflict means
 * another instance counted first, so the request is decided again on the new window.
 *
 * `kv` may be a function that opens the database: it is called on first use, so a process can
 * build its handler synchronously at startup. A database that cannot be opened or written, or
 * that keeps conflicting, does not fail the request: it is counted in memory, with one warning.
 */
export function createKvRateLimiter(
  kv: RateLimitKv | (() => Promise<RateLimitKv>),
  options: KvRateLimiterOptions = {},
): RateLimiter {
  const now = options.now ?? Date.now;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const open = typeof kv === 'function' ? lazyOpener(kv, now) : () => Promise.resolve(kv);
  const queues = new Map<string, Promise<void>>();

  async function takeFromKv(key: string, requestsPerMinute: number): Promise<RateLimitVerdict> {
    const store = await open();
    const entryKey = [...KEY_PREFIX, key];
    let failure: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (attempt > 1) await pause(attempt);
      try {
        const entry = await store.get(entryKey);
        const { state, verdict } = admit(entry.value, now(), requestsPerMinute);
        // A refusal writes nothing: a concurrent writer can only have added requests.
        if (!verdict.allowed) return verdict;
        const result = await store
          .atomic()
          .check(entry)
          .set(entryKey, state, { expireIn: EXPIRE_IN_MS })
          .commit();
        if (result.ok) return verdict;
        failure = new Error('Deno KV commit kept conflicting with another writer');
      } catch (error) {
        // Transient too: a local SQLite file shared by two processes answers "database is locked"
        // while the other one writes.
        failure = error;
      }
    }
    throw failure;
  }

  // Requests in this process take turns per key, so they never conflict with each other; only
  // other instances can. Without it a burst on one key would mostly conflict and retry.
  function inTurn(key: string, requestsPerMinute: number): Promise<RateLimitVerdict> {
    const run = (queues.get(key) ?? Promise.resolve()).then(() =>
      takeFromKv(key, requestsPerMinute),
    );
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  }

  return createFallbackRateLimiter(
    { take: inTurn },
    { fallback: options.fallback, warn: options.warn, store: 'deno_kv' },
  );
}

/** Instances that collided would collide again in step: random, growing pauses part them. */
function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt));
}

/** Opens on first use; after a failure, tries again only once REOPEN_AFTER_MS have passed. */
function lazyOpener(
  openKv: () => Promise<RateLimitKv>,
  now: () => number,
): () => Promise<RateLimitKv> {
  let opening: Promise<RateLimitKv> | undefined;
  let reopenAt = Number.POSITIVE_INFINITY;
  return () => {
    if (opening === undefined || now() >= reopenAt) {
      reopenAt = Number.POSITIVE_INFINITY;
      const attempt = Promise.resolve().then(openKv);
      attempt.catch(() => {
        reopenAt = now() + REOPEN_AFTER_MS;
      });
      opening = attempt;
    }
    return opening;
  };
}
