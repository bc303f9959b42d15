import type { RateLimitVerdict } from './rate-limiter.ts';

/**
 * One key's recent requests: `[second, count]` pairs for the whole seconds (Unix time) that had
 * admitted requests, oldest first. At most 61 pairs whatever the limit, so it stays a small
 * JSON / structured-clone value (Deno KV caps values at 64 KiB).
 */
export type WindowState = readonly (readonly [second: number, count: number])[];

export interface Admission {
  /** What to store for the key; expired seconds are already gone. */
  state: WindowState;
  verdict: RateLimitVerdict;
}

/**
 * A request in second b is counted against seconds b-60..b. Any real 60 s interval touches at
 * most 61 whole seconds, and the last request admitted in it saw every earlier one in its window,
 * so no 60 s interval ever holds more than the limit.
 */
const WINDOW_SECONDS = 61;

/**
 * How far in the future a stored second may lie and still be this key's history, counted as if
 * it were now. Instances' clocks differ a little and one may step back; a state further ahead is
 * foreign (another clock, a bug) and is dropped, or it would lock the key out until that time.
 */
const MAX_CLOCK_LEAD_SECONDS = 60;

/**
 * Decides one request at `nowMs` against the key's state and returns the state to store. A
 * refused request is not counted. `previous` is whatever the store held: anything that is not a
 * well-formed state (absent, corrupt, from another version) counts as no history.
 */
export function admit(previous: unknown, nowMs: number, requestsPerMinute: number): Admission {
  if (!Number.isFinite(nowMs)) throw new RangeError('nowMs must be a finite number');
  if (!Number.isInteger(requestsPerMinute) || requestsPerMinute < 1) {
    throw new RangeError('requestsPerMinute must be a whole number of at least 1');
  }
  const nowSecond = Math.floor(nowMs / 1000);
  let buckets = readState(previous);
  const newest = buckets.at(-1)?.[0];
  if (newest !== undefined && newest > nowSecond + MAX_CLOCK_LEAD_SECONDS) buckets = [];
  // A clock slightly behind the one that wrote the state counts into the newest second, so the
  // window never loses requests it already holds.
  const second = Math.max(nowSecond, buckets.at(-1)?.[0] ?? nowSecond);
  const live = buckets.filter(([s]) => s > second - WINDOW_SECONDS);
  const inWindow = live.reduce((sum, [, count]) => sum + count, 0);

  if (inWindow < requestsPerMinute) {
    const last = live.at(-1);
    const state: WindowState =
      last?.[0] === second ? [...live.slice(0, -1), [second, last[1] + 1]] : [...live, [second, 1]];
    return {
      state,
      verdict: {
        allowed: true,
        limit: requestsPerMinute,
        remaining: requestsPerMinute - inWindow - 1,
      },
    };
  }

  return {
    state: live,
    verdict: {
      allowed: false,
      limit: requestsPerMinute,
      remaining: 0,
      retryAfterSeconds: secondsUntilAdmitted(live, inWindow, requestsPerMinute, nowMs),
    },
  };
}

/**
 * With no further requests, the window's count only falls as its oldest seconds expire. The first
 * second c whose window holds fewer than the limit is 61 s after the second whose expiry brings
 * the count below it; Retry-After is the whole seconds from now until c begins.
 */
function secondsUntilAdmitted(
  live: WindowState,
  inWindow: number,
  requestsPerMinute: number,
  nowMs: number,
): number {
  let remaining = inWindow;
  for (const [second, count] of live) {
    remaining -= count;
    if (remaining < requestsPerMinute) {
      return Math.max(1, Math.ceil(((second + WINDOW_SECONDS) * 1000 - nowMs) / 1000));
    }
  }
  // Unreachable while inWindow >= requestsPerMinute >= 1; a whole window is a safe answer.
  return WINDOW_SECONDS;
}

/** The stored value as a state when it is one: ascending whole seconds, positive whole counts. */
function readState(value: unknown): WindowState {
  return isWindowState(value) ? value : [];
}

function isWindowState(value: unknown): value is WindowState {
  if (!Array.isArray(value) || value.length > WINDOW_SECONDS) return false;
  let previous = -Infinity;
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2) return false;
    const [second, count]: unknown[] = pair;
    if (typeof second !== 'number' || !Number.isSafeInteger(second) || second <= previous) {
      return false;
    }
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) return false;
    previous = second;
  }
  return true;
}
