import {
  createFallbackRateLimiter,
  type FallbackRateLimiterOptions,
} from '../limits/fallback-rate-limiter.ts';
import type { RateLimiter, RateLimitVerdict } from '../limits/rate-limiter.ts';
import { admit } from '../limits/sliding-window.ts';

/** The part of a Deno.Kv the limiter uses; tests wrap one to watch its commits. */
export type RateLimitKv = Pick<Deno.Kv, 'get' | 'atomic'>;

export interface KvRateLimiterOptions extends Omit<FallbackRateLimiterOptions, 'store'> {
  /** The clock of the window and of held refusals; Date.now unless given. */
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
 * (Deno Deploy's, or one local SQLite file). The requests waiting for a key are decided together:
 * read the key's window, decide each in arrival order, and write it back only if nothing changed
 * in between (a versionstamp check); a conflict means another instance counted first, so the
 * batch is decided again on the new window.
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
  const batches = new Map<string, Waiter[]>();

  /** Decides a batch of requests for one key in one read-modify-write. */
  async function decideInKv(key: string, limits: number[]): Promise<RateLimitVerdict[]> {
    const store = await open();
    const entryKey = [...KEY_PREFIX, key];
    let failure: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (attempt > 1) await pause(attempt);
      try {
        const entry = await store.get(entryKey);
        let state: unknown = entry.value;
        let admitted = false;
        const verdicts = limits.map((requestsPerMinute) => {
          const decided = admit(state, now(), requestsPerMinute);
          state = decided.state;
          admitted ||= decided.verdict.allowed;
          return decided.verdict;
        });
        // Refusals write nothing: a concurrent writer can only have added requests.
        if (!admitted) return verdicts;
        const result = await store
          .atomic()
          .check(entry)
          .set(entryKey, state, { expireIn: EXPIRE_IN_MS })
          .commit();
        if (result.ok) return verdicts;
        failure = new Error('Deno KV commit kept conflicting with another writer');
      } catch (error) {
        // Transient too: a local SQLite file shared by two processes answers "database is locked"
        // while the other one writes.
        failure = error;
      }
    }
    throw failure;
  }

  // One KV round trip per key at a time in this process, carrying every request that arrived
  // meanwhile: a burst costs two round trips, not one per request, so a slow database does not
  // make requests queue behind each other (and in-process requests never conflict).
  async function drain(key: string, waiting: Waiter[]): Promise<void> {
    while (waiting.length > 0) {
      const batch = waiting.splice(0);
      try {
        const verdicts = await decideInKv(
          key,
          batch.map((waiter) => waiter.requestsPerMinute),
        );
        for (const [i, waiter] of batch.entries()) waiter.resolve(verdicts[i] as RateLimitVerdict);
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
    batches.delete(key);
  }

  function take(key: string, requestsPerMinute: number): Promise<RateLimitVerdict> {
    return new Promise((resolve, reject) => {
      const waiting = batches.get(key);
      if (waiting) {
        waiting.push({ requestsPerMinute, resolve, reject });
        return;
      }
      const started: Waiter[] = [{ requestsPerMinute, resolve, reject }];
      batches.set(key, started);
      void drain(key, started);
    });
  }

  return createFallbackRateLimiter({ take }, { ...options, store: 'deno_kv' });
}

interface Waiter {
  requestsPerMinute: number;
  resolve: (verdict: RateLimitVerdict) => void;
  reject: (error: unknown) => void;
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
