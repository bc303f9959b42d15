import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RateLimitVerdict } from '../../src/limits/rate-limiter.ts';
import { admit, type WindowState } from '../../src/limits/sliding-window.ts';

// A realistic Unix time in ms, half-way through a second.
const T0 = 1_750_000_000_500;
const SECOND = 1000;

/** Runs requests through the algorithm the way a store would, round-tripping the state as JSON. */
function limiter(rpm: number) {
  let stored: unknown = null;
  return {
    take(nowMs: number): RateLimitVerdict {
      const { state, verdict } = admit(stored, nowMs, rpm);
      stored = JSON.parse(JSON.stringify(state));
      return verdict;
    },
    get state() {
      return stored;
    },
  };
}

function refusal(verdict: RateLimitVerdict): number {
  if (verdict.allowed) throw new Error('expected a refusal');
  return verdict.retryAfterSeconds;
}

describe('admit', () => {
  it('admits exactly rpm requests, counting remaining down to 0, then refuses', () => {
    const key = limiter(3);
    expect([key.take(T0), key.take(T0), key.take(T0 + 10)]).toEqual([
      { allowed: true, limit: 3, remaining: 2 },
      { allowed: true, limit: 3, remaining: 1 },
      { allowed: true, limit: 3, remaining: 0 },
    ]);
    expect(key.take(T0 + 20)).toMatchObject({ allowed: false, limit: 3, remaining: 0 });
  });

  it('reports the exact whole seconds until a request is admitted again', () => {
    const key = limiter(3);
    for (let i = 0; i < 3; i++) key.take(T0);
    // All three are in second s; the first second whose window [c-60, c] excludes s is s+61,
    // which begins 60.5 s after T0.
    const retry = refusal(key.take(T0));
    expect(retry).toBe(61);
    expect(key.take(T0 + (retry - 1) * SECOND).allowed).toBe(false);
    // All three left the window together.
    expect(key.take(T0 + retry * SECOND)).toEqual({ allowed: true, limit: 3, remaining: 2 });
  });

  it('waits only for as many old requests to expire as the limit needs', () => {
    const key = limiter(3);
    key.take(T0);
    key.take(T0 + 10 * SECOND);
    key.take(T0 + 20 * SECOND);
    const now = T0 + 30 * SECOND;
    // Only the request at T0 has to leave the window: 61 s after its second began.
    const retry = refusal(key.take(now));
    expect(retry).toBe(31);
    expect(key.take(now + 30 * SECOND).allowed).toBe(false);
    expect(key.take(now + 31 * SECOND).allowed).toBe(true);
    // And now the requests at +10 s and +20 s still hold the window: the next is at +10 s's expiry.
    expect(refusal(key.take(now + 31 * SECOND))).toBe(10);
  });

  it('does not count refused requests', () => {
    const key = limiter(2);
    key.take(T0);
    key.take(T0);
    const first = refusal(key.take(T0 + 1));
    for (let i = 0; i < 50; i++) expect(refusal(key.take(T0 + 1))).toBe(first);
    expect(key.take(T0 + first * SECOND)).toEqual({ allowed: true, limit: 2, remaining: 1 });
  });

  it('answers Retry-After of at least 1 even at the last millisecond of a second', () => {
    const key = limiter(1);
    const start = 1_750_000_000_000;
    key.take(start);
    expect(refusal(key.take(start + 60_999))).toBe(1);
    expect(key.take(start + 61_000).allowed).toBe(true);
  });

  it('drops expired seconds from the stored state', () => {
    const key = limiter(100);
    for (let i = 0; i < 10; i++) key.take(T0 + i * SECOND);
    key.take(T0 + 200 * SECOND);
    expect(key.state).toEqual([[Math.floor(T0 / SECOND) + 200, 1]]);
  });

  it('keeps one pair per second whatever the limit, so the state stays small', () => {
    const key = limiter(1_000_000);
    for (let i = 0; i < 5000; i++) key.take(T0 + i * 50);
    const state = key.state as WindowState;
    expect(state.length).toBeLessThanOrEqual(61);
    expect(JSON.stringify(state).length).toBeLessThan(2048);
    expect(structuredClone(state)).toEqual(state);
  });

  it('treats a corrupt or foreign stored value as no history', () => {
    const second = Math.floor(T0 / SECOND);
    const corrupt: unknown[] = [
      undefined,
      null,
      'garbage',
      42,
      { count: 5 },
      [[second]],
      [[second, 1, 2]],
      [['x', 1]],
      [[second, 0]],
      [[second, -3]],
      [[second + 0.5, 1]],
      [[second, 1.5]],
      [
        [second, 1],
        [second - 1, 1],
      ],
      [
        [second, 1],
        [second, 1],
      ],
      Array.from({ length: 62 }, (_, i) => [second - 61 + i, 1]),
      [[second, Number.POSITIVE_INFINITY]],
    ];
    for (const stored of corrupt) {
      expect(admit(stored, T0, 5).verdict, JSON.stringify(stored)).toEqual({
        allowed: true,
        limit: 5,
        remaining: 4,
      });
    }
  });

  it('counts into the newest stored second when the clock steps back a little', () => {
    const key = limiter(2);
    key.take(T0);
    expect(key.take(T0 - 3 * SECOND)).toEqual({ allowed: true, limit: 2, remaining: 0 });
    expect(key.state).toEqual([[Math.floor(T0 / SECOND), 2]]);
    // Truthful for the clock that asks: 61 s after T0's second, which is 3 s further away.
    const retry = refusal(key.take(T0 - 3 * SECOND));
    expect(retry).toBe(64);
    expect(key.take(T0 - 3 * SECOND + (retry - 1) * SECOND).allowed).toBe(false);
    expect(key.take(T0 - 3 * SECOND + retry * SECOND).allowed).toBe(true);
  });

  it('drops a state dated far in the future instead of locking the key out', () => {
    const future: WindowState = [[Math.floor(T0 / SECOND) + 3600, 1000]];
    expect(admit(future, T0, 5).verdict.allowed).toBe(true);
    expect(admit(future, T0, 5).state).toEqual([[Math.floor(T0 / SECOND), 1]]);
  });

  it('rejects a limit that is not a positive whole number and a clock that is not a number', () => {
    expect(() => admit(null, T0, 0)).toThrow(RangeError);
    expect(() => admit(null, T0, 2.5)).toThrow(RangeError);
    expect(() => admit(null, T0, Number.NaN)).toThrow(RangeError);
    expect(() => admit(null, Number.NaN, 5)).toThrow(RangeError);
  });
});

describe('admit, as properties over arbitrary request times', () => {
  // Non-decreasing request times: gaps from 0 ms to 20 s, often bunched within one second.
  const schedule = fc.record({
    rpm: fc.integer({ min: 1, max: 12 }),
    start: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
    gaps: fc.array(
      fc.oneof(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 20_000 })),
      { minLength: 1, maxLength: 300 },
    ),
  });

  const times = (start: number, gaps: number[]) => {
    let t = start;
    return gaps.map((gap) => (t += gap));
  };

  it('admits a request iff fewer than rpm were admitted in its second and the 60 before', () => {
    fc.assert(
      fc.property(schedule, ({ rpm, start, gaps }) => {
        const key = limiter(rpm);
        const admitted: number[] = [];
        for (const t of times(start, gaps)) {
          const second = Math.floor(t / SECOND);
          const inWindow = admitted.filter((a) => Math.floor(a / SECOND) >= second - 60).length;
          const verdict = key.take(t);
          expect(verdict.allowed).toBe(inWindow < rpm);
          if (verdict.allowed) {
            expect(verdict.remaining).toBe(rpm - inWindow - 1);
            admitted.push(t);
          }
        }
      }),
    );
  });

  it('never admits more than rpm requests in any 60 s interval', () => {
    fc.assert(
      fc.property(schedule, ({ rpm, start, gaps }) => {
        const key = limiter(rpm);
        const admitted = times(start, gaps).filter((t) => key.take(t).allowed);
        // The busiest 60 s interval can be taken to start at an admitted request.
        for (const from of admitted) {
          const inInterval = admitted.filter((t) => t >= from && t < from + 60_000).length;
          expect(inInterval).toBeLessThanOrEqual(rpm);
        }
      }),
    );
  });

  it('tells the truth in Retry-After: refused one second earlier, admitted at it', () => {
    fc.assert(
      fc.property(schedule, ({ rpm, start, gaps }) => {
        let stored: unknown = null;
        for (const t of times(start, gaps)) {
          const { state, verdict } = admit(stored, t, rpm);
          if (!verdict.allowed) {
            const retry = verdict.retryAfterSeconds;
            expect(retry).toBeGreaterThanOrEqual(1);
            expect(retry).toBeLessThanOrEqual(61);
            // With no other requests in between (the refused one is not counted):
            expect(admit(state, t + (retry - 1) * SECOND, rpm).verdict.allowed).toBe(false);
            expect(admit(state, t + retry * SECOND, rpm).verdict.allowed).toBe(true);
          }
          stored = state;
        }
      }),
    );
  });
});
